"""Default configuration.

Every key and default of maskrcnn-benchmark's schema is present, so that a maskrcnn-benchmark yaml
file merges unchanged; the keys this project adds are grouped at the end of the file. Yaml files only
override values: a key that is not declared here is an error (see ``config/__init__.py``).
"""
import os

from yacs.config import CfgNode as CN

_C = CN()
# ---------------------------------------------------------------------------
# Model: which detector is built and on which device
# ---------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.RPN_ONLY = False
_C.MODEL.MASK_ON = False
_C.MODEL.RETINANET_ON = False
_C.MODEL.KEYPOINT_ON = False
# 'auto': CUDA when available, else the CPU (maskrcnn-benchmark's default was 'cuda'); read
# through maskrcnn_benchmark.utils.device.resolve_device
_C.MODEL.DEVICE = 'auto'
_C.MODEL.META_ARCHITECTURE = 'GeneralizedRCNN'
_C.MODEL.CLS_AGNOSTIC_BBOX_REG = False
_C.MODEL.WEIGHT = ''

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.CONV_BODY = 'R-50-C4'
_C.MODEL.BACKBONE.FREEZE_CONV_BODY_AT = 2

_C.MODEL.FPN = CN()
_C.MODEL.FPN.USE_GN = False
_C.MODEL.FPN.USE_RELU = False

_C.MODEL.GROUP_NORM = CN()
_C.MODEL.GROUP_NORM.DIM_PER_GP = -1
_C.MODEL.GROUP_NORM.NUM_GROUPS = 32
_C.MODEL.GROUP_NORM.EPSILON = 1e-05

# Region proposal network (two-stage detectors)
_C.MODEL.RPN = CN()
_C.MODEL.RPN.USE_FPN = False
_C.MODEL.RPN.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RPN.ANCHOR_STRIDE = (16,)
_C.MODEL.RPN.ASPECT_RATIOS = (0.5, 1.0, 2.0)
_C.MODEL.RPN.STRADDLE_THRESH = 0
_C.MODEL.RPN.FG_IOU_THRESHOLD = 0.7
_C.MODEL.RPN.BG_IOU_THRESHOLD = 0.3
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
_C.MODEL.RPN.PRE_NMS_TOP_N_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOP_N_TEST = 6000
_C.MODEL.RPN.POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOP_N_TEST = 1000
_C.MODEL.RPN.NMS_THRESH = 0.7
_C.MODEL.RPN.MIN_SIZE = 0
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TRAIN = 2000
_C.MODEL.RPN.FPN_POST_NMS_TOP_N_TEST = 2000
_C.MODEL.RPN.FPN_POST_NMS_PER_BATCH = True
_C.MODEL.RPN.RPN_HEAD = 'SingleConvRPNHead'

# RoI heads: proposal matching, sampling and post-processing
_C.MODEL.ROI_HEADS = CN()
_C.MODEL.ROI_HEADS.USE_FPN = False
_C.MODEL.ROI_HEADS.FG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BG_IOU_THRESHOLD = 0.5
_C.MODEL.ROI_HEADS.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
_C.MODEL.ROI_HEADS.SCORE_THRESH = 0.05
_C.MODEL.ROI_HEADS.NMS = 0.5
_C.MODEL.ROI_HEADS.DETECTIONS_PER_IMG = 100

_C.MODEL.ROI_BOX_HEAD = CN()
_C.MODEL.ROI_BOX_HEAD.FEATURE_EXTRACTOR = 'ResNet50Conv5ROIFeatureExtractor'
_C.MODEL.ROI_BOX_HEAD.PREDICTOR = 'FastRCNNPredictor'
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_BOX_HEAD.POOLER_SCALES = (0.0625,)
_C.MODEL.ROI_BOX_HEAD.NUM_CLASSES = 81
_C.MODEL.ROI_BOX_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_BOX_HEAD.USE_GN = False
_C.MODEL.ROI_BOX_HEAD.DILATION = 1
_C.MODEL.ROI_BOX_HEAD.CONV_HEAD_DIM = 256
_C.MODEL.ROI_BOX_HEAD.NUM_STACKED_CONVS = 4

_C.MODEL.ROI_MASK_HEAD = CN()
_C.MODEL.ROI_MASK_HEAD.FEATURE_EXTRACTOR = 'ResNet50Conv5ROIFeatureExtractor'
_C.MODEL.ROI_MASK_HEAD.PREDICTOR = 'MaskRCNNC4Predictor'
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_MASK_HEAD.POOLER_SCALES = (0.0625,)
_C.MODEL.ROI_MASK_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_MASK_HEAD.CONV_LAYERS = (256, 256, 256, 256)
_C.MODEL.ROI_MASK_HEAD.RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS = False
_C.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS_THRESHOLD = 0.5
_C.MODEL.ROI_MASK_HEAD.DILATION = 1
_C.MODEL.ROI_MASK_HEAD.USE_GN = False

# Keypoint keys are kept so that maskrcnn-benchmark files load; keypoint heads are not built
_C.MODEL.ROI_KEYPOINT_HEAD = CN()
_C.MODEL.ROI_KEYPOINT_HEAD.FEATURE_EXTRACTOR = 'KeypointRCNNFeatureExtractor'
_C.MODEL.ROI_KEYPOINT_HEAD.PREDICTOR = 'KeypointRCNNPredictor'
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SAMPLING_RATIO = 0
_C.MODEL.ROI_KEYPOINT_HEAD.POOLER_SCALES = (0.0625,)
_C.MODEL.ROI_KEYPOINT_HEAD.MLP_HEAD_DIM = 1024
_C.MODEL.ROI_KEYPOINT_HEAD.CONV_LAYERS = (512, 512, 512, 512, 512, 512, 512, 512)
_C.MODEL.ROI_KEYPOINT_HEAD.RESOLUTION = 14
_C.MODEL.ROI_KEYPOINT_HEAD.NUM_CLASSES = 17
_C.MODEL.ROI_KEYPOINT_HEAD.SHARE_BOX_FEATURE_EXTRACTOR = True

# ResNet / ResNeXt bodies (NUM_GROUPS > 1 gives ResNeXt)
_C.MODEL.RESNETS = CN()
_C.MODEL.RESNETS.NUM_GROUPS = 1
_C.MODEL.RESNETS.WIDTH_PER_GROUP = 64
_C.MODEL.RESNETS.STRIDE_IN_1X1 = True
_C.MODEL.RESNETS.TRANS_FUNC = 'BottleneckWithFixedBatchNorm'
_C.MODEL.RESNETS.STEM_FUNC = 'StemWithFixedBatchNorm'
_C.MODEL.RESNETS.RES5_DILATION = 1
_C.MODEL.RESNETS.BACKBONE_OUT_CHANNELS = 1024
_C.MODEL.RESNETS.RES2_OUT_CHANNELS = 256
_C.MODEL.RESNETS.STEM_OUT_CHANNELS = 64
_C.MODEL.RESNETS.STAGE_WITH_DCN = (False, False, False, False)
_C.MODEL.RESNETS.WITH_MODULATED_DCN = False
_C.MODEL.RESNETS.DEFORMABLE_GROUPS = 1

# RetinaNet (one-stage, anchor based)
_C.MODEL.RETINANET = CN()
_C.MODEL.RETINANET.NUM_CLASSES = 81
_C.MODEL.RETINANET.ANCHOR_SIZES = (32, 64, 128, 256, 512)
_C.MODEL.RETINANET.ASPECT_RATIOS = (0.5, 1.0, 2.0)
_C.MODEL.RETINANET.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.RETINANET.STRADDLE_THRESH = 0
_C.MODEL.RETINANET.OCTAVE = 2.0
_C.MODEL.RETINANET.SCALES_PER_OCTAVE = 3
_C.MODEL.RETINANET.USE_C5 = True
_C.MODEL.RETINANET.NUM_CONVS = 4
_C.MODEL.RETINANET.BBOX_REG_WEIGHT = 4.0
_C.MODEL.RETINANET.BBOX_REG_BETA = 0.11
_C.MODEL.RETINANET.PRE_NMS_TOP_N = 1000
_C.MODEL.RETINANET.FG_IOU_THRESHOLD = 0.5
_C.MODEL.RETINANET.BG_IOU_THRESHOLD = 0.4
_C.MODEL.RETINANET.LOSS_ALPHA = 0.25
_C.MODEL.RETINANET.LOSS_GAMMA = 2.0
_C.MODEL.RETINANET.PRIOR_PROB = 0.01
_C.MODEL.RETINANET.INFERENCE_TH = 0.05
_C.MODEL.RETINANET.NMS_TH = 0.4

# FBNet keys are kept so that maskrcnn-benchmark files load; FBNet itself is not built
_C.MODEL.FBNET = CN()
_C.MODEL.FBNET.ARCH = 'default'
_C.MODEL.FBNET.ARCH_DEF = ''
_C.MODEL.FBNET.BN_TYPE = 'bn'
_C.MODEL.FBNET.SCALE_FACTOR = 1.0
_C.MODEL.FBNET.WIDTH_DIVISOR = 1
_C.MODEL.FBNET.DW_CONV_SKIP_BN = True
_C.MODEL.FBNET.DW_CONV_SKIP_RELU = True
_C.MODEL.FBNET.DET_HEAD_LAST_SCALE = 1.0
_C.MODEL.FBNET.DET_HEAD_BLOCKS = []
_C.MODEL.FBNET.DET_HEAD_STRIDE = 0
_C.MODEL.FBNET.KPTS_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.KPTS_HEAD_BLOCKS = []
_C.MODEL.FBNET.KPTS_HEAD_STRIDE = 0
_C.MODEL.FBNET.MASK_HEAD_LAST_SCALE = 0.0
_C.MODEL.FBNET.MASK_HEAD_BLOCKS = []
_C.MODEL.FBNET.MASK_HEAD_STRIDE = 0
_C.MODEL.FBNET.RPN_HEAD_BLOCKS = 0
_C.MODEL.FBNET.RPN_BN_TYPE = ''

# ---------------------------------------------------------------------------
# Input pipeline
# ---------------------------------------------------------------------------
_C.INPUT = CN()
_C.INPUT.MIN_SIZE_TRAIN = (800,)
_C.INPUT.MAX_SIZE_TRAIN = 1333
_C.INPUT.MIN_SIZE_TEST = 800
_C.INPUT.MAX_SIZE_TEST = 1333
_C.INPUT.PIXEL_MEAN = [102.9801, 115.9465, 122.7717]
_C.INPUT.PIXEL_STD = [1.0, 1.0, 1.0]
_C.INPUT.TO_BGR255 = True
_C.INPUT.BRIGHTNESS = 0.0
_C.INPUT.CONTRAST = 0.0
_C.INPUT.SATURATION = 0.0
_C.INPUT.HUE = 0.0
_C.INPUT.HORIZONTAL_FLIP_PROB_TRAIN = 0.5
_C.INPUT.VERTICAL_FLIP_PROB_TRAIN = 0.0

# Dataset names from the catalog (maskrcnn_benchmark/config/paths_catalog.py)
_C.DATASETS = CN()
_C.DATASETS.TRAIN = ()
_C.DATASETS.TEST = ()
# datasets of one's own, registered by name: "NAME=coco:ANNOTATION_JSON:IMAGE_DIR" or
# "NAME=voc:DATA_DIR:SPLIT[:CLASS1,CLASS2,...]" (docs/USE_YOUR_OWN_DATA.md)
_C.DATASETS.REGISTER = ()

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4
_C.DATALOADER.SIZE_DIVISIBILITY = 0
_C.DATALOADER.ASPECT_RATIO_GROUPING = True

# ---------------------------------------------------------------------------
# Optimisation; IMS_PER_BATCH is global and split across processes
# ---------------------------------------------------------------------------
_C.SOLVER = CN()
_C.SOLVER.MAX_ITER = 40000
_C.SOLVER.BASE_LR = 0.001
_C.SOLVER.BIAS_LR_FACTOR = 2
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.WEIGHT_DECAY = 0.0005
_C.SOLVER.WEIGHT_DECAY_BIAS = 0
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEPS = (30000,)
_C.SOLVER.WARMUP_FACTOR = 0.3333333333333333
_C.SOLVER.WARMUP_ITERS = 500
_C.SOLVER.WARMUP_METHOD = 'linear'
_C.SOLVER.CHECKPOINT_PERIOD = 2500
_C.SOLVER.TEST_PERIOD = 0
_C.SOLVER.IMS_PER_BATCH = 16

# ---------------------------------------------------------------------------
# Inference; IMS_PER_BATCH is global and split across processes
# ---------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.EXPECTED_RESULTS = []
_C.TEST.EXPECTED_RESULTS_SIGMA_TOL = 4
_C.TEST.IMS_PER_BATCH = 8
_C.TEST.DETECTIONS_PER_IMG = 100
# COCO AP computed by "pycocotools" or by "faster_coco_eval" (same numbers, faster at COCO scale)
_C.TEST.COCO_EVALUATOR = "pycocotools"

_C.TEST.BBOX_AUG = CN()
_C.TEST.BBOX_AUG.ENABLED = False
_C.TEST.BBOX_AUG.H_FLIP = False
_C.TEST.BBOX_AUG.SCALES = ()
_C.TEST.BBOX_AUG.MAX_SIZE = 4000
_C.TEST.BBOX_AUG.SCALE_H_FLIP = False

# ---------------------------------------------------------------------------
# One-stage heads of the FCOS / ATSS / PAA family
# ---------------------------------------------------------------------------
# PAA: probabilistic anchor assignment
_C.MODEL.PAA = CN()
_C.MODEL.PAA.NUM_CLASSES = 81
_C.MODEL.PAA.ANCHOR_SIZES = (64, 128, 256, 512, 1024)
_C.MODEL.PAA.ASPECT_RATIOS = (1.0,)
_C.MODEL.PAA.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.PAA.STRADDLE_THRESH = 0
_C.MODEL.PAA.OCTAVE = 2.0
_C.MODEL.PAA.SCALES_PER_OCTAVE = 1
_C.MODEL.PAA.NUM_CONVS = 4
_C.MODEL.PAA.USE_DCN_IN_TOWER = False
_C.MODEL.PAA.LOSS_ALPHA = 0.25
_C.MODEL.PAA.LOSS_GAMMA = 2.0
_C.MODEL.PAA.IOU_THRESHOLD = 0.1
_C.MODEL.PAA.TOPK = 9
_C.MODEL.PAA.REG_LOSS_WEIGHT = 1.3
_C.MODEL.PAA.PRIOR_PROB = 0.01
_C.MODEL.PAA.INFERENCE_TH = 0.05
_C.MODEL.PAA.NMS_TH = 0.6
_C.MODEL.PAA.PRE_NMS_TOP_N = 1000
_C.MODEL.PAA.IOU_LOSS_WEIGHT = 0.5
_C.MODEL.PAA.INFERENCE_SCORE_VOTING = False
_C.MODEL.PAA.REG_LOSS_TYPE = 'iou'
# PAA's code base: the head's quality branch predicts the IoU of the decoded box with its ground
# truth (named iou_pred in its checkpoints), which enters the score and the loss. Only True is
# implemented (every released PAA config sets it); the key is here so that their yaml files load.
_C.MODEL.PAA.USE_IOU_PRED = True

# ATSS: adaptive training sample selection
_C.MODEL.ATSS = CN()
_C.MODEL.ATSS.NUM_CLASSES = 81
_C.MODEL.ATSS.ANCHOR_SIZES = (64, 128, 256, 512, 1024)
_C.MODEL.ATSS.ASPECT_RATIOS = (1.0,)
_C.MODEL.ATSS.ANCHOR_STRIDES = (8, 16, 32, 64, 128)
_C.MODEL.ATSS.STRADDLE_THRESH = 0
_C.MODEL.ATSS.OCTAVE = 2.0
_C.MODEL.ATSS.SCALES_PER_OCTAVE = 1
_C.MODEL.ATSS.NUM_CONVS = 4
_C.MODEL.ATSS.USE_DCN_IN_TOWER = False
_C.MODEL.ATSS.LOSS_ALPHA = 0.25
_C.MODEL.ATSS.LOSS_GAMMA = 2.0
_C.MODEL.ATSS.POSITIVE_TYPE = 'ATSS'
_C.MODEL.ATSS.FG_IOU_THRESHOLD = 0.5
_C.MODEL.ATSS.BG_IOU_THRESHOLD = 0.4
_C.MODEL.ATSS.TOPK = 9
_C.MODEL.ATSS.REGRESSION_TYPE = 'BOX'
_C.MODEL.ATSS.REG_LOSS_WEIGHT = 2.0
_C.MODEL.ATSS.PRIOR_PROB = 0.01
_C.MODEL.ATSS.INFERENCE_TH = 0.05
_C.MODEL.ATSS.NMS_TH = 0.6
_C.MODEL.ATSS.PRE_NMS_TOP_N = 1000

# FCOS: anchor-free points
_C.MODEL.FCOS = CN()
_C.MODEL.FCOS.NUM_CLASSES = 81
_C.MODEL.FCOS.FPN_STRIDES = [8, 16, 32, 64, 128]
_C.MODEL.FCOS.PRIOR_PROB = 0.01
_C.MODEL.FCOS.INFERENCE_TH = 0.05
_C.MODEL.FCOS.NMS_TH = 0.6
_C.MODEL.FCOS.PRE_NMS_TOP_N = 1000
_C.MODEL.FCOS.LOSS_ALPHA = 0.25
_C.MODEL.FCOS.LOSS_GAMMA = 2.0
_C.MODEL.FCOS.NUM_CONVS = 4
_C.MODEL.FCOS.CENTER_SAMPLING_RADIUS = 0.0
_C.MODEL.FCOS.IOU_LOSS_TYPE = 'iou'
_C.MODEL.FCOS.NORM_REG_TARGETS = False
_C.MODEL.FCOS.CENTERNESS_ON_REG = False
_C.MODEL.FCOS.USE_DCN_IN_TOWER = False

# ---------------------------------------------------------------------------
# Keys this project adds
# ---------------------------------------------------------------------------
# Dense (one-stage) detectors: like maskrcnn-benchmark's RETINANET_ON, each switch selects the
# DenseDetector meta-architecture with that head (modeling/architecture.py)
_C.MODEL.FCOS_ON = False
_C.MODEL.ATSS_ON = False
_C.MODEL.PAA_ON = False
# Or name a head of registry.DENSE_HEADS directly (with META_ARCHITECTURE "DenseDetector")
_C.MODEL.DENSE_HEAD = ""

# What box corners mean, for the whole pipeline (anchors, box coding, IoU, clipping, NMS, FPN level
# mapping, mask pasting, resizing, evaluation): "maskrcnn_benchmark" (inclusive pixel indices,
# width x2 - x1 + 1, whole-pixel anchors, truncated resize; the convention of maskrcnn-benchmark and
# of the FCOS / ATSS / PAA / Sampling-Free releases, so their yaml files and weights give their
# detections), "maskrcnn_benchmark_cuda" (the same, with NMS keeping a box whose IoU equals the
# threshold, as maskrcnn-benchmark's CUDA kernel) or "continuous" (torchvision / detectron2: no +1,
# exact anchors, rounded resize). structures/box_convention.py; docs/BOX_CONVENTION.md
_C.MODEL.BOX_CONVENTION = "maskrcnn_benchmark"

# Python modules imported before the model is built, so that a yaml can name what they register
# (a dense head, a sample strategy, ...), e.g. ("my_project.heads",)
_C.CUSTOM_IMPORTS = ()

# Sampling-Free (the paper's Sec. IV). The defaults reproduce the heuristic-sampling baselines;
# configs under configs/sampling_free/ switch each part on, one stage at a time.
_C.MODEL.SAMPLING_FREE = CN()
# Training images visited to count N and N^f for the optimal bias (no network forward is needed)
_C.MODEL.SAMPLING_FREE.SAMPLE_IMAGES = 500
# Warm-up of the frozen-ratio variants: "ratio_warmup_mean" averages L_loc / L_cls over these
# iterations, "release_2021" freezes the ratio of the last of them (averaged over processes)
_C.MODEL.SAMPLING_FREE.RATIO_WARMUP_ITERS = 100


def _sampling_free_stage(**legacy_keys):
    """The Sampling-Free keys of one detector stage: its older keys first, then those all share."""
    stage = CN()
    for key, value in legacy_keys.items():
        stage[key] = value
    # The sample strategy. HARD picks the samples trained (registry HARD_STRATEGIES of
    # modeling/sample_strategy: "biased", "all", ...), SOFT is the classification loss
    # (SOFT_STRATEGIES: "ce", "focal", ...). "" derives them from the older keys: RPN / ROI
    # SAMPLER True -> "biased", False -> "all", SOFT "ce"; ONE_STAGE HARD "all", SOFT = CLS_LOSS.
    stage.HARD = ""
    stage.SOFT = ""
    # The chosen strategy's own parameters (the keys it declares, given in a yaml)
    stage.HARD_OPTIONS = CN(new_allowed=True)
    stage.SOFT_OPTIONS = CN(new_allowed=True)
    # "default" (the head's usual init; PRIOR_PROB for one-stage heads) or "optimal" (pi measured
    # from data, eq. 19)
    stage.BIAS_INIT = "default"
    # "none" (cls loss x LOSS_SCALE), "guided" (eq. 23), "ratio" (g only, eq. 22),
    # "ratio_warmup_mean", "release_2020", "release_2021" (the authors' releases; see
    # modeling/sampling_free/guided_loss.py); "ratio_frozen" is a deprecated "ratio_warmup_mean"
    stage.GUIDED = "none"
    # The fixed scale s of Table I, used when GUIDED is "none"
    stage.LOSS_SCALE = 1.0
    return stage


# RetinaNet, FCOS, ATSS and PAA heads. CLS_LOSS: "focal" (baseline) or "ce" (per-class sigmoid
# cross-entropy over every valid sample)
_C.MODEL.SAMPLING_FREE.ONE_STAGE = _sampling_free_stage(CLS_LOSS="focal")
# Region proposal network: SAMPLER False trains every valid anchor
_C.MODEL.SAMPLING_FREE.RPN = _sampling_free_stage(SAMPLER=True)
# RoI box head: SAMPLER False trains every valid proposal (plus the ground truth)
_C.MODEL.SAMPLING_FREE.ROI = _sampling_free_stage(SAMPLER=True)

# Corrupt or unreadable images: False raises an error naming the file, True skips it with a warning
_C.DATALOADER.SKIP_CORRUPT_IMAGES = False

# Iterations between two log lines (console, log.txt, metrics.json, TensorBoard)
_C.SOLVER.LOG_PERIOD = 20

# Gradient clipping after the backward pass (detectron2's keys), off by default as in
# maskrcnn-benchmark: CLIP_TYPE "norm" rescales all gradients together so that their NORM_TYPE norm is
# at most CLIP_VALUE (torch.nn.utils.clip_grad_norm_; GHM-C's published setting: 35, L2), "value"
# clamps every gradient entry to [-CLIP_VALUE, CLIP_VALUE]. The norm before clipping is logged as
# grad_norm.
_C.SOLVER.CLIP_GRADIENTS = CN()
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 35.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0

# Seed for python, numpy and torch; data order and initialisation follow from it
_C.SEED = 0

# ---------------------------------------------------------------------------
# Run-wide settings
# ---------------------------------------------------------------------------
_C.OUTPUT_DIR = '.'
_C.PATHS_CATALOG = os.path.join(os.path.dirname(__file__), "paths_catalog.py")
# "float16" or "bfloat16" trains under torch.autocast; "float32" disables it
_C.DTYPE = 'float32'
_C.AMP_VERBOSE = False
# Minutes a collective operation (all-reduce, barrier) waits for the other processes before the
# run stops with an error; a stopped or hung process would otherwise block the others for 30.
_C.DIST_TIMEOUT_MINUTES = 10.0
