"""The train / test transform pipelines from the ``INPUT.*`` config keys and MODEL.BOX_CONVENTION."""
from maskrcnn_benchmark.structures.box_convention import box_convention_from_config

from . import transforms as T


def build_transforms(cfg, is_train=True):
    if is_train:
        min_size, max_size = cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN
        horizontal_flip = cfg.INPUT.HORIZONTAL_FLIP_PROB_TRAIN
        vertical_flip = cfg.INPUT.VERTICAL_FLIP_PROB_TRAIN
        jitter = (cfg.INPUT.BRIGHTNESS, cfg.INPUT.CONTRAST, cfg.INPUT.SATURATION, cfg.INPUT.HUE)
    else:
        min_size, max_size = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST
        horizontal_flip = vertical_flip = 0.0
        jitter = (0.0, 0.0, 0.0, 0.0)

    convention = box_convention_from_config(cfg)
    steps = [T.ToBoxConvention(convention)]
    if any(jitter):
        steps.append(T.ColorJitter(*jitter))
    steps.append(T.Resize(min_size, max_size, convention))
    if horizontal_flip > 0:
        steps.append(T.RandomHorizontalFlip(horizontal_flip, convention))
    if vertical_flip > 0:
        steps.append(T.RandomVerticalFlip(vertical_flip, convention))
    steps.append(T.ToTensor())
    steps.append(T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD, cfg.INPUT.TO_BGR255))
    return T.Compose(steps)
