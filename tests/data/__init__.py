"""Tests of saliency_widget.data: the shapes-in-clutter generator and the shipped sample images."""
