"""RetinaNet inference: the dense post-processor ranking anchors by their class probability and
decoding them with the box coder (``modeling/dense_heads/postprocess.py``)."""
from maskrcnn_benchmark.modeling.box_coder import BoxCoder
from maskrcnn_benchmark.modeling.dense_heads.postprocess import DensePostProcessor, class_probability

BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class RetinaNetPostProcessor(DensePostProcessor):
    """maskrcnn-benchmark's RetinaNet post-processor: called with per image a list of per-level
    anchor BoxLists (RetinaNetModule itself calls the dense post-processor with anchor tensors);
    in the box convention of ``box_coder``."""

    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size,
                 num_classes, box_coder=None):
        box_coder = box_coder or BoxCoder(weights=BOX_CODER_WEIGHTS)
        convention = box_coder.convention
        super().__init__(box_coder.decode, class_probability, pre_nms_thresh, pre_nms_top_n, nms_thresh,
                         fpn_post_nms_top_n, min_size, num_classes, convention=convention,
                         nms_suppresses_ties=convention.nms_suppresses_ties)
        self.box_coder = box_coder

    def add_gt_proposals(self, proposals, targets):
        # maskrcnn-benchmark's surface (inherited there from the RPN's post-processor).
        raise NotImplementedError("RetinaNet detections are final outputs; they are never extended with ground truth")

    @staticmethod
    def _image_sizes(anchors_per_image):
        return [(level.size[1], level.size[0]) for level in anchors_per_image]

    def forward_for_single_feature_map(self, anchors, box_cls, box_regression):
        """``anchors``: this level's BoxList per image; ``box_cls``: ``N x A*C x H x W``."""
        return self.detections_for_level(anchors[0].bbox, box_cls, box_regression, None, self._image_sizes(anchors))

    def forward(self, anchors, box_cls, box_regression, targets=None):
        """``anchors``: per image, a list of per-level BoxLists; returns one BoxList per image."""
        positions = [level.bbox for level in anchors[0]]
        image_sizes = self._image_sizes([per_image[0] for per_image in anchors])
        return super().forward(positions, box_cls, box_regression, None, image_sizes)


def make_retinanet_postprocessor(config, rpn_box_coder, is_train):
    return RetinaNetPostProcessor(
        box_coder=rpn_box_coder, **DensePostProcessor.settings_from(config.MODEL.RETINANET, config.TEST)
    )
