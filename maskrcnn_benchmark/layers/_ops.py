"""Loads the compiled operators and teaches PyTorch how to differentiate and trace them.

The kernels are registered by ``maskrcnn_benchmark._C`` as ``torch.ops.maskrcnn_benchmark.*``.
This module adds, with ``torch.library``, the autograd formulas (so ``gradcheck`` and training
work) and shape-only "fake" implementations (so ``torch.compile`` can trace through them).
"""
import torch

try:
    from maskrcnn_benchmark import _C  # noqa: F401  (importing registers the operators)
except ImportError as error:  # pragma: no cover - depends on the build state
    raise ImportError(
        "maskrcnn_benchmark._C is not built or does not match the installed torch "
        f"({error}). Build it with `python setup.py build_ext --inplace` or `pip install -e .` "
        "from the repository root; see INSTALL.md."
    ) from error

ops = torch.ops.maskrcnn_benchmark


def compiled_with_cuda():
    """True when the loaded maskrcnn_benchmark._C carries the CUDA kernels."""
    return bool(ops.compiled_with_cuda())


# ---------------------------------------------------------------------------------------------
# Shape-only implementations, used when tracing with fake tensors.
# ---------------------------------------------------------------------------------------------
@torch.library.register_fake("maskrcnn_benchmark::roi_align_forward")
def _roi_align_forward_fake(input, rois, spatial_scale, pooled_height, pooled_width,
                            sampling_ratio, aligned):
    return input.new_empty((rois.shape[0], input.shape[1], pooled_height, pooled_width))


@torch.library.register_fake("maskrcnn_benchmark::roi_align_backward")
def _roi_align_backward_fake(grad_output, rois, spatial_scale, pooled_height, pooled_width,
                             batch_size, channels, height, width, sampling_ratio, aligned, rows=None):
    return grad_output.new_empty((batch_size, channels, height, width))


@torch.library.register_fake("maskrcnn_benchmark::roi_align_forward_into")
def _roi_align_forward_into_fake(input, rois, rows, output, spatial_scale, pooled_height,
                                 pooled_width, sampling_ratio, aligned):
    return None  # writes into ``output``


@torch.library.register_fake("maskrcnn_benchmark::roi_pool_forward")
def _roi_pool_forward_fake(input, rois, spatial_scale, pooled_height, pooled_width):
    shape = (rois.shape[0], input.shape[1], pooled_height, pooled_width)
    return input.new_empty(shape), input.new_empty(shape, dtype=torch.long)


@torch.library.register_fake("maskrcnn_benchmark::roi_pool_backward")
def _roi_pool_backward_fake(grad_output, argmax, batch_size, channels, height, width):
    return grad_output.new_empty((batch_size, channels, height, width))


@torch.library.register_fake("maskrcnn_benchmark::nms")
def _nms_fake(boxes, scores, iou_threshold, legacy=False):
    # How many boxes survive is only known at run time.
    kept = torch.library.get_ctx().new_dynamic_size()
    return boxes.new_empty((kept,), dtype=torch.long)


@torch.library.register_fake("maskrcnn_benchmark::sigmoid_focal_loss_forward")
def _focal_forward_fake(logits, targets, gamma, alpha):
    return torch.empty_like(logits)


@torch.library.register_fake("maskrcnn_benchmark::sigmoid_focal_loss_backward")
def _focal_backward_fake(logits, targets, grad_loss, gamma, alpha):
    return torch.empty_like(logits)


# ---------------------------------------------------------------------------------------------
# Autograd formulas. Only the feature map (RoI ops) and the logits (focal loss) get gradients;
# box coordinates, labels and hyper-parameters are treated as constants.
# ---------------------------------------------------------------------------------------------
def _roi_align_setup(ctx, inputs, output):
    input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = inputs
    ctx.save_for_backward(rois)
    ctx.input_shape = tuple(input.shape)
    ctx.params = (spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)


def _roi_align_backward(ctx, grad_output):
    (rois,) = ctx.saved_tensors
    spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned = ctx.params
    batch_size, channels, height, width = ctx.input_shape
    grad_input = ops.roi_align_backward(
        grad_output, rois, spatial_scale, pooled_height, pooled_width,
        batch_size, channels, height, width, sampling_ratio, aligned,
    )
    return grad_input, None, None, None, None, None, None


torch.library.register_autograd(
    "maskrcnn_benchmark::roi_align_forward", _roi_align_backward, setup_context=_roi_align_setup
)


def _roi_pool_setup(ctx, inputs, output):
    input = inputs[0]
    _, argmax = output
    ctx.save_for_backward(argmax)
    ctx.input_shape = tuple(input.shape)
    ctx.mark_non_differentiable(argmax)


def _roi_pool_backward(ctx, grad_output, grad_argmax):
    (argmax,) = ctx.saved_tensors
    grad_input = ops.roi_pool_backward(grad_output, argmax, *ctx.input_shape)
    return grad_input, None, None, None, None


torch.library.register_autograd(
    "maskrcnn_benchmark::roi_pool_forward", _roi_pool_backward, setup_context=_roi_pool_setup
)


def _focal_setup(ctx, inputs, output):
    logits, targets, gamma, alpha = inputs
    ctx.save_for_backward(logits, targets)
    ctx.params = (gamma, alpha)


def _focal_backward(ctx, grad_loss):
    logits, targets = ctx.saved_tensors
    gamma, alpha = ctx.params
    grad_logits = ops.sigmoid_focal_loss_backward(logits, targets, grad_loss, gamma, alpha)
    return grad_logits, None, None, None


torch.library.register_autograd(
    "maskrcnn_benchmark::sigmoid_focal_loss_forward", _focal_backward, setup_context=_focal_setup
)
