"""Training loop (``do_train``) and dataset evaluation (``inference``)."""
