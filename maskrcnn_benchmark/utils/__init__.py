"""Utilities: registry, distributed helpers, logging, metrics, checkpoints, environment info."""
