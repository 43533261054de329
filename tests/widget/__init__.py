"""Tests of saliency_widget.widget: the explorer, its canvas module and the analysis panel."""
