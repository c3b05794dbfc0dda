"""Detection models: backbones, FPN, proposal and RoI heads, one-stage heads and the detectors that join them."""
