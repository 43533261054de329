"""Tests of saliency_widget.viz: rendering maps to images and HTML reports."""
