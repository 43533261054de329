"""Tests of saliency_widget.analysis: top-k activations, sanity checks, pointing game."""
