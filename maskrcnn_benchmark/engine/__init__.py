"""Training (``trainer.SimpleTrainer`` with ``hooks``, ``events`` and ``writers``; ``do_train``
assembles them), dataset evaluation (``inference``), and what the tools share (``cli``, ``launch``,
``resume``, ``run_lock``)."""
