"""Detector construction by ``MODEL.META_ARCHITECTURE``."""
from .generalized_rcnn import GeneralizedRCNN

_DETECTION_META_ARCHITECTURES = {"GeneralizedRCNN": GeneralizedRCNN}


def build_detection_model(cfg):
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in _DETECTION_META_ARCHITECTURES:
        raise KeyError(
            "MODEL.META_ARCHITECTURE: unknown {!r}; known: {}".format(
                name, sorted(_DETECTION_META_ARCHITECTURES)
            )
        )
    return _DETECTION_META_ARCHITECTURES[name](cfg)
