"""Tests of saliency_widget.models: the bundled shapes CNN, its checkpoint and training, torchvision helper."""
