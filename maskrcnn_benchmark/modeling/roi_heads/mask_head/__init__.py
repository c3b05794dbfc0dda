"""Mask head of Mask R-CNN: features, predictor, loss and mask pasting."""
