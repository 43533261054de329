"""Tests of saliency_widget.classroom: transposed-convolution tools and the teaching explorers."""
