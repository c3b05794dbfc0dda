"""Loads the compiled operators and teaches PyTorch how to differentiate and trace them.

The kernels are registered by ``maskrcnn_benchmark._C`` as ``torch.ops.maskrcnn_benchmark.*``.
This module adds, with ``torch.library``, the autograd formulas (so ``gradcheck`` and training
work) and shape-only "fake" implementations (so ``torch.compile`` can trace through them).
"""
import torch

_REBUILD = ("Build it with `python setup.py build_ext --inplace` or "
            "`pip install --no-build-isolation -e .` from the repository root; see INSTALL.md.")

try:
    from maskrcnn_benchmark import _C  # importing registers the operators
except ImportError as error:  # pragma: no cover - depends on the build state
    raise ImportError(
        f"maskrcnn_benchmark._C is not built or does not match the installed torch ({error}). {_REBUILD}"
    ) from error


def check_built_with(running_torch, built_with):
    """Refuse an extension compiled against another torch release (``major.minor``): its C++ ABI
    is not guaranteed to match, and a mismatch can load and then misbehave."""
    running = ".".join(running_torch.split("+")[0].split(".")[:2])
    if built_with is None:
        raise ImportError(f"maskrcnn_benchmark._C ({_C.__file__}) was built from older sources. {_REBUILD}")
    if built_with != running:
        raise ImportError(
            f"maskrcnn_benchmark._C was compiled against torch {built_with} but torch {running_torch} "
            f"is running ({_C.__file__}). Rebuild it: remove build/ and the old _C*.so. {_REBUILD}"
        )


check_built_with(torch.__version__, getattr(_C, "built_with_torch", None))

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
