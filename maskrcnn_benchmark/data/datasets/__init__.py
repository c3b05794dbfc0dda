"""Data pipeline: datasets, transforms, samplers, loaders, evaluation."""
