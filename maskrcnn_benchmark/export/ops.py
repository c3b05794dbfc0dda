"""The operators of the exported detectors and their ONNX translations.

``nms_keep`` is NMS with a fixed-shape result: a keep mask over its N boxes instead of a list of
kept indices whose length is only known at run time. It lets every tensor of an exported
detector have a size fixed at export time, which both ``torch.export`` and ONNX need (an
exported graph cannot branch on how many boxes survived). It runs the project's own NMS kernel,
so its decisions are those of ``layers.nms``.

The ONNX translations map ``nms_keep`` onto ``NonMaxSuppression`` and the compiled RoIAlign onto
``RoiAlign``, and the stable sort that orders the boxes onto ``TopK`` (whose ties go to
the lower index, as a stable sort's do). ONNX's NMS has continuous widths and suppresses above the threshold: maskrcnn-benchmark's
convention (``legacy``: widths ``x2 - x1 + 1``, suppression at or above the threshold) is given to
it as boxes one pixel larger and the float32 just below the threshold; RoIAlign's ``aligned=False``
is ONNX's ``output_half_pixel``. onnxruntime's results agree with PyTorch's to float rounding (an
IoU within rounding of the threshold can be decided otherwise).
"""
import numpy
import torch

from maskrcnn_benchmark.layers.nms import batched_nms, nms


@torch.library.custom_op("maskrcnn_benchmark_export::nms_keep", mutates_args=())
def nms_keep(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, iou_threshold: float,
             legacy: bool = False) -> torch.Tensor:
    """Boolean mask of the boxes that NMS keeps among the ``valid`` ones (``boxes`` N x 4 xyxy,
    ``scores`` N, ``valid`` N booleans; invalid boxes neither survive nor suppress). ``iou_threshold``
    and ``legacy`` are ``layers.nms``'s (``BoxConvention.nms_arguments`` gives them)."""
    rows = torch.nonzero(valid).squeeze(1)
    keep = torch.zeros_like(valid)
    keep[rows[nms(boxes[rows], scores[rows], iou_threshold, legacy=legacy)]] = True
    return keep


@nms_keep.register_fake
def _nms_keep_fake(boxes, scores, valid, iou_threshold, legacy=False):
    return torch.empty_like(valid)


@torch.library.custom_op("maskrcnn_benchmark_export::batched_nms_keep", mutates_args=())
def batched_nms_keep(boxes: torch.Tensor, scores: torch.Tensor, valid: torch.Tensor, categories: torch.Tensor,
                     iou_threshold: float, legacy: bool = False) -> torch.Tensor:
    """``nms_keep`` within each of the ``categories`` (N ints): ``layers.batched_nms``, so the
    decisions are the eager post-processors' exactly."""
    rows = torch.nonzero(valid).squeeze(1)
    keep = torch.zeros_like(valid)
    kept = batched_nms(boxes[rows], scores[rows], categories[rows], iou_threshold, legacy=legacy)
    keep[rows[kept]] = True
    return keep


@batched_nms_keep.register_fake
def _batched_nms_keep_fake(boxes, scores, valid, categories, iou_threshold, legacy=False):
    return torch.empty_like(valid)


# ONNX's NonMaxSuppression drops boxes whose score is not above score_threshold: invalid boxes get
# -inf, the threshold is the lowest finite float, so every valid box (finite score) takes part.
_LOWEST_FLOAT32 = -3.4028234663852886e38


def onnx_translation_table():
    """``custom_translation_table`` for ``torch.onnx.export(..., dynamo=True)``: the project's
    operators as ONNX operators (needs onnxscript)."""
    import onnx
    from onnxscript import opset18 as op

    def nms_keep_onnx(boxes, scores, valid, iou_threshold: float, legacy: bool = False):
        count = op.Shape(scores)
        if legacy:  # widths x2 - x1 + 1 are the continuous widths of boxes one pixel larger
            boxes = op.Add(boxes, op.CastLike(op.Constant(value_floats=[0.0, 0.0, 1.0, 1.0]), boxes))
            # the kernel suppresses at IoU >= threshold, ONNX above it: the float32 just below
            iou_threshold = float(numpy.nextafter(numpy.float32(iou_threshold), numpy.float32(-1)))
        masked = op.Where(valid, scores, op.CastLike(op.Constant(value_float=float("-inf")), scores))
        selected = op.NonMaxSuppression(
            op.Unsqueeze(boxes, [0]), op.Unsqueeze(masked, [0, 1]), count,
            op.Constant(value_float=iou_threshold), op.Constant(value_float=_LOWEST_FLOAT32),
        )
        kept_rows = op.Slice(selected, [2], [3], [1])  # (batch, class, box) triples -> box column
        false = onnx.helper.make_tensor("false", onnx.TensorProto.BOOL, [1], [False])
        true = onnx.helper.make_tensor("true", onnx.TensorProto.BOOL, [1], [True])
        updates = op.Expand(op.Constant(value=true), op.Shape(kept_rows, start=0, end=1))
        return op.ScatterND(op.ConstantOfShape(count, value=false), kept_rows, updates)

    def batched_nms_keep_onnx(boxes, scores, valid, categories, iou_threshold: float, legacy: bool = False):
        # one pass over boxes moved apart by category: an offset above the span of all coordinates
        span = op.Add(op.Sub(op.ReduceMax(boxes, keepdims=0), op.ReduceMin(boxes, keepdims=0)),
                      op.CastLike(op.Constant(value_float=2.0), boxes))
        offsets = op.Mul(op.CastLike(categories, boxes), span)
        shifted = op.Add(boxes, op.Unsqueeze(offsets, [1]))
        return nms_keep_onnx(shifted, scores, valid, iou_threshold, legacy)

    def roi_align_onnx(input, rois, spatial_scale: float, pooled_height: int, pooled_width: int,
                       sampling_ratio: int, aligned: bool):
        from onnxscript import opset16

        # rois rows are (image index, x1, y1, x2, y2); ONNX takes the index as a separate input
        image_index = op.Cast(op.Squeeze(op.Slice(rois, [0], [1], [1]), [1]), to=onnx.TensorProto.INT64)
        boxes = op.Slice(rois, [1], [5], [1])
        return opset16.RoiAlign(
            input, boxes, image_index, mode="avg", output_height=pooled_height, output_width=pooled_width,
            sampling_ratio=sampling_ratio, spatial_scale=spatial_scale,
            coordinate_transformation_mode="half_pixel" if aligned else "output_half_pixel",
        )

    def stable_sort_onnx(self, stable: bool = True, dim: int = -1, descending: bool = False):
        # ONNX's TopK breaks ties by index, lower first: a stable sort when k is the whole axis.
        count = op.Shape(self, start=dim) if dim == -1 else op.Shape(self, start=dim, end=dim + 1)
        values, indices = op.TopK(self, count, axis=dim, largest=1 if descending else 0, sorted=1)
        return values, indices

    return {
        torch.ops.aten.sort.stable: stable_sort_onnx,
        torch.ops.maskrcnn_benchmark_export.nms_keep.default: nms_keep_onnx,
        torch.ops.maskrcnn_benchmark_export.batched_nms_keep.default: batched_nms_keep_onnx,
        torch.ops.maskrcnn_benchmark.roi_align_forward.default: roi_align_onnx,
    }
