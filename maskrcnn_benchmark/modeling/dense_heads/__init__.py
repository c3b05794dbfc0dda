"""The dense-head kit: what RetinaNet, FCOS, ATSS, PAA (and a head of your own) share.

- ``tower``: conv towers, the per-level ``Scale``, the head initialisation;
- ``layout``: per-level maps -> one row per position (``flatten_level(s)``);
- ``points``: the points of anchor-free heads (anchors: ``rpn/anchor_generator.py``; both give
  ``positions_for_image_size`` there);
- ``box_losses``: IoU / GIoU losses of aligned boxes; ``centerness``: centre-ness targets;
- ``normalizer``: the one cross-process foreground normaliser;
- ``postprocess``: the one post-processor, parameterised by a score and a decode function;
- ``head``: ``DenseHead``, the base of every dense head (the Sampling-Free protocol plus the
  training / inference plumbing);
- ``build``: ``build_dense_head(cfg, in_channels)`` through ``registry.DENSE_HEADS``.
"""
