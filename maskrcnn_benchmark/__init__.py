"""Object detection in PyTorch, shaped like maskrcnn-benchmark, with Sampling-Free training.

The compiled operators live in ``maskrcnn_benchmark._C``; they are loaded on first use by
``maskrcnn_benchmark.layers`` so that configuration and data code import without a build.
"""

__version__ = "0.1.0"
