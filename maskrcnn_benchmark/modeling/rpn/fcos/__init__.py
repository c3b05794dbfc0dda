"""FCOS: anchor-free one-stage detector (focal-loss baseline and the Sampling-Free CE path)."""
