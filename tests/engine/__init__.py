"""Tests of saliency_widget.engine: maps, projections, methods, errors, model hygiene."""
