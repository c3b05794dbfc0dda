"""Demo: a predictor for single images and a command that draws its detections."""
