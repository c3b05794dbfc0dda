"""Pretrained weights in foreign formats, renamed to this code base's parameter names.

- Caffe2 Detectron ``.pkl`` files (``{"blobs": {name: ndarray}}`` or a flat ``{name: ndarray}``):
  ``load_c2_format(cfg, path) -> {"model": state_dict}``. The pickle is read with an unpickler that
  only admits numpy arrays / dtypes and builtin containers, so a weights file cannot run code.
- torchvision ResNet state dicts: ``load_torchvision_resnet(state_dict) -> state_dict``.

The produced names are suffixes of the model's full names (``stem.conv1.weight``,
``layer1.0.conv1.weight``, ``fpn_inner2.weight``, ``rpn.head.conv.weight``); the checkpointer
matches them by suffix, which also places res5 weights into the RoI head of C4 detectors.
"""
import logging
import pickle
import re
from collections import OrderedDict

import numpy as np
import torch

from maskrcnn_benchmark.modeling.backbone.resnet import _STAGE_SPECS, BLOCKS_PER_STAGE, depth_of
from maskrcnn_benchmark.utils.registry import Registry

logger = logging.getLogger(__name__)

# Detectron's name for the last block of each stage res2..res5 (its FPN blobs are named after them).
_C2_STAGE_NAMES = {
    depth: tuple(f"res{stage}_{count - 1}" for stage, count in enumerate(counts, 2))
    for depth, counts in BLOCKS_PER_STAGE.items()
}


class UnsafePickleError(pickle.UnpicklingError):
    """A weights pickle referenced something other than numpy arrays and builtin containers."""


def _latin1_bytes(text, encoding):
    """What Python 3 pickles (protocol < 3) call to rebuild ``bytes``; only that use is admitted."""
    if encoding != "latin1":
        raise UnsafePickleError(f"refusing _codecs.encode with encoding {encoding!r} (only latin1 rebuilds bytes)")
    return text.encode("latin1")


def _allowed_pickle_globals():
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): OrderedDict,
        ("_codecs", "encode"): _latin1_bytes,
    }
    # Pickles name numpy's array helpers by the module path of the numpy that wrote them.
    for package in ("numpy.core", "numpy._core"):
        allowed[(package + ".multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(package + ".multiarray", "scalar")] = multiarray.scalar
        allowed[(package + ".numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


_ALLOWED_PICKLE_GLOBALS = _allowed_pickle_globals()


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        # latin1 decodes the raw array bytes of Python 2 pickles (all Detectron files) unchanged.
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module, name):
        allowed = _ALLOWED_PICKLE_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafePickleError(
                f"{self._path}: refusing to load {module}.{name} from this pickle; a Caffe2 weights "
                "file may only contain numpy arrays, dtypes and builtin containers"
            )
        return allowed


def _load_c2_pickled_weights(path):
    """{blob name: float tensor} from a Detectron .pkl (``_momentum`` optimizer blobs dropped)."""
    with open(path, "rb") as handle:
        try:
            data = _WeightsUnpickler(handle, path).load()
        except UnsafePickleError:
            raise
        except Exception as err:
            raise ValueError(f"{path}: not a readable Caffe2 weights pickle ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict of weight arrays, found a {type(data).__name__}")
    blobs = data.get("blobs", data)
    if not isinstance(blobs, dict):
        raise ValueError(f"{path}: 'blobs' should be a dict of weight arrays, found a {type(blobs).__name__}")
    weights = {}
    for name, value in blobs.items():
        if name.endswith("_momentum") or not isinstance(value, np.ndarray):
            continue
        weights[name] = torch.from_numpy(np.array(value))
    if not weights:
        raise ValueError(f"{path}: contains no weight arrays")
    return weights


_PARAM_OF_SUFFIX = {"w": "weight", "s": "weight", "b": "bias"}
_BLOCK_CONV = {"1": "downsample.0", "2a": "conv1", "2b": "conv2", "2c": "conv3"}
_BLOCK_NORM = {"1": "downsample.1", "2a": "bn1", "2b": "bn2", "2c": "bn3"}

_RES_BLOCK_BLOB = re.compile(
    r"^res(?P<stage>[2-5])_(?P<block>\d+)_branch(?P<branch>1|2a|2b|2c)(?P<norm>_bn|_gn)?_(?P<kind>[wsb])$"
)
_STEM_BLOB = re.compile(r"^(?:conv1|res_conv1)(?P<norm>_bn|_gn)?_(?P<kind>[wsb])$")
_FPN_LATERAL_BLOB = re.compile(r"^fpn_inner_res(?P<stage>[2-5])_\d+_sum(?:_lateral)?_(?P<kind>[wb])$")
_FPN_OUTPUT_BLOB = re.compile(r"^fpn_res(?P<stage>[2-5])_\d+_sum_(?P<kind>[wb])$")
_FPN_EXTRA_BLOB = re.compile(r"^fpn_(?P<level>[67])_(?P<kind>[wb])$")
# Other Detectron layers and the modules they correspond to here (shared RPN weights sit at fpn2).
_HEAD_BLOB = re.compile(
    r"^(?P<layer>conv_rpn|rpn_cls_logits|rpn_bbox_pred|fc6|fc7|cls_score|bbox_pred|"
    r"mask_fcn[1-4]|conv5_mask|mask_fcn_logits)(?:_fpn2)?_(?P<kind>[wb])$"
)
_HEAD_MODULE = {
    "conv_rpn": "rpn.head.conv",
    "rpn_cls_logits": "rpn.head.cls_logits",
    "rpn_bbox_pred": "rpn.head.bbox_pred",
    "fc6": "roi_heads.box.feature_extractor.fc6",
    "fc7": "roi_heads.box.feature_extractor.fc7",
    "cls_score": "roi_heads.box.predictor.cls_score",
    "bbox_pred": "roi_heads.box.predictor.bbox_pred",
    "conv5_mask": "roi_heads.mask.predictor.conv5_mask",
    "mask_fcn_logits": "roi_heads.mask.predictor.mask_fcn_logits",
}


def _rename_c2_blob(name):
    """Our (suffix) parameter name for a Detectron blob name, or None for blobs we have no use for
    (the ImageNet classifier fc1000, unknown layers)."""
    match = _RES_BLOCK_BLOB.match(name)
    if match:
        table = _BLOCK_NORM if match["norm"] else _BLOCK_CONV
        stage_index = int(match["stage"]) - 1  # res2 is layer1
        return f"layer{stage_index}.{match['block']}.{table[match['branch']]}.{_PARAM_OF_SUFFIX[match['kind']]}"
    match = _STEM_BLOB.match(name)
    if match:
        module = "stem.bn1" if match["norm"] else "stem.conv1"
        return f"{module}.{_PARAM_OF_SUFFIX[match['kind']]}"
    match = _FPN_LATERAL_BLOB.match(name)
    if match:
        return f"fpn_inner{int(match['stage']) - 1}.{_PARAM_OF_SUFFIX[match['kind']]}"
    match = _FPN_OUTPUT_BLOB.match(name)
    if match:
        return f"fpn_layer{int(match['stage']) - 1}.{_PARAM_OF_SUFFIX[match['kind']]}"
    match = _FPN_EXTRA_BLOB.match(name)
    if match:
        return f"top_blocks.p{match['level']}.{_PARAM_OF_SUFFIX[match['kind']]}"
    match = _HEAD_BLOB.match(name)
    if match:
        layer = match["layer"]
        module = _HEAD_MODULE.get(layer, f"roi_heads.mask.feature_extractor.{layer}")
        return f"{module}.{_PARAM_OF_SUFFIX[match['kind']]}"
    return None


def _check_depth(blobs, conv_body, path):
    """Refuse a file whose stage lengths do not match the configured depth (e.g. R-101 weights for R-50)."""
    depth = depth_of(conv_body)
    last_block = {}
    for name in blobs:
        match = _RES_BLOCK_BLOB.match(name)
        if match:
            stage = int(match["stage"])
            last_block[stage] = max(last_block.get(stage, 0), int(match["block"]))
    for stage, found in sorted(last_block.items()):
        expected = _C2_STAGE_NAMES[depth][stage - 2]
        if f"res{stage}_{found}" != expected:
            raise ValueError(
                f"{path}: its last res{stage} block is res{stage}_{found}, but MODEL.BACKBONE.CONV_BODY="
                f"{conv_body!r} ends res{stage} with {expected}; the file is for another depth"
            )


_CONV2_WEIGHT = re.compile(r"^layer(?P<stage>[1-4])\.(?P<block>\d+)\.conv2\.weight$")


def _rename_dcn_stages(state_dict, stage_with_dcn):
    """In deformable stages the 3x3 conv's weight lives one level down (conv2.conv.weight)."""
    renamed = OrderedDict()
    for key, value in state_dict.items():
        match = _CONV2_WEIGHT.match(key)
        if match and stage_with_dcn[int(match["stage"]) - 1]:
            key = f"layer{match['stage']}.{match['block']}.conv2.conv.weight"
        renamed[key] = value
    return renamed


def load_resnet_c2_format(cfg, f):
    conv_body = cfg.MODEL.BACKBONE.CONV_BODY
    blobs = _load_c2_pickled_weights(f)
    _check_depth(blobs, conv_body, f)
    state_dict = OrderedDict()
    unused = []
    for name in sorted(blobs):
        our_name = _rename_c2_blob(name)
        if our_name is None:
            unused.append(name)
        else:
            state_dict[our_name] = blobs[name]
    if not state_dict:
        raise ValueError(f"{f}: none of its blob names is a Detectron ResNet / FPN / head name")
    if unused:
        logger.info("%s: %d blobs without a counterpart here, skipped: %s", f, len(unused), ", ".join(unused))
    state_dict = _rename_dcn_stages(state_dict, tuple(cfg.MODEL.RESNETS.STAGE_WITH_DCN))
    return {"model": state_dict}


C2_FORMAT_LOADER = Registry()
for _conv_body in _STAGE_SPECS:
    C2_FORMAT_LOADER.register(_conv_body, load_resnet_c2_format)


def load_c2_format(cfg, f):
    """{"model": state_dict} from the Detectron .pkl ``f``, for the body named by cfg."""
    conv_body = cfg.MODEL.BACKBONE.CONV_BODY
    if conv_body not in C2_FORMAT_LOADER:
        raise KeyError(
            f"MODEL.BACKBONE.CONV_BODY={conv_body!r} has no Caffe2 weight mapping; "
            f"known bodies: {sorted(C2_FORMAT_LOADER)}"
        )
    return C2_FORMAT_LOADER[conv_body](cfg, f)


_TORCHVISION_RESNET_KEY = re.compile(
    r"^(?:conv1|bn1|layer[1-4]\.\d+\.(?:conv[1-3]|bn[1-3]|downsample\.[01]))"
    r"\.(?:weight|bias|running_mean|running_var|num_batches_tracked)$"
)


def load_torchvision_resnet(state_dict, stage_with_dcn=(False, False, False, False), fold_bn_eps=1e-5):
    """Rename a torchvision ResNet / ResNeXt state dict (conv1, bn1, layer1.0.conv1, fc, ...) to our
    body's names (stem.conv1, stem.bn1, layer1.0.conv1, ...); the classifier and BN step counters
    are dropped. Note torchvision strides in the 3x3 conv: build the body with STRIDE_IN_1X1 False.

    ``fold_bn_eps``: torchvision's BatchNorm eps, added to every ``running_var`` because
    FrozenBatchNorm2d (like maskrcnn-benchmark's) normalizes with eps = 0; with it the body's
    features equal torchvision's. Pass 0 to keep the statistics untouched.
    """
    renamed = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith("fc.") or key.endswith(".num_batches_tracked"):
            continue
        if not _TORCHVISION_RESNET_KEY.match(key):
            raise ValueError(f"not a torchvision ResNet state dict: unexpected key {key!r}")
        if key.endswith(".running_var"):
            value = value + fold_bn_eps
        if key.startswith(("conv1.", "bn1.")):
            key = "stem." + key
        renamed[key] = value
    return _rename_dcn_stages(renamed, tuple(stage_with_dcn))
