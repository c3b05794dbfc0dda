"""The classifier size of the config against the categories of the data it reads."""
import logging

logger = logging.getLogger(__name__)

# (switch under MODEL, the head's config node): the one-stage detector whose switch is on owns
# the class count; otherwise the RoI box head does
_ONE_STAGE_HEADS = (("RETINANET_ON", "RETINANET"), ("FCOS_ON", "FCOS"), ("ATSS_ON", "ATSS"), ("PAA_ON", "PAA"))


def one_stage_head(cfg):
    """The config node name of the active one-stage head (``"RETINANET"``, ...), or None."""
    for switch, head in _ONE_STAGE_HEADS:
        if getattr(cfg.MODEL, switch, False):
            return head
    return None


def active_num_classes_key(cfg):
    """The full name of the NUM_CLASSES key the built model reads, e.g.
    ``"MODEL.RETINANET.NUM_CLASSES"``; None for a proposal-only model (RPN_ONLY two-stage)."""
    head = one_stage_head(cfg)
    if head is not None:
        return "MODEL.{}.NUM_CLASSES".format(head)
    if cfg.MODEL.RPN_ONLY:
        return None
    return "MODEL.ROI_BOX_HEAD.NUM_CLASSES"


def num_classes_of(cfg):
    """``(key, value)`` of the active head's NUM_CLASSES (background included); (None, None) for a
    proposal-only model."""
    key = active_num_classes_key(cfg)
    if key is None:
        return None, None
    return key, int(getattr(cfg.MODEL, key.split(".")[1]).NUM_CLASSES)


def check_num_classes(cfg, dataset, name):
    """Raise when the active head has fewer outputs than ``dataset`` (catalog name ``name``) has
    categories plus background (a label past the classifier would otherwise end in an IndexError
    inside the loss); log when it has more (those outputs are never trained as positives)."""
    key, value = num_classes_of(cfg)
    if key is None:
        return
    for member in getattr(dataset, "datasets", [dataset]):
        if not hasattr(member, "num_categories"):
            continue
        needed = member.num_categories() + 1
        names = [n for i, n in sorted(getattr(member, "categories", {}).items()) if n != "__background__"]
        shown = ", ".join(map(str, names[:8])) + (", ..." if len(names) > 8 else "")
        if value < needed:
            raise ValueError(
                "{key} is {value}, but dataset {name!r} has {count} categories ({shown}); NUM_CLASSES counts the "
                "background too: set {key} {needed}".format(key=key, value=value, name=name, count=needed - 1,
                                                          shown=shown, needed=needed))
        if value > needed:
            logger.warning("%s is %d but dataset %r has %d categories (+1 background = %d): the extra outputs are "
                           "never positives", key, value, name, needed - 1, needed)


def check_masks_available(cfg, dataset, name):
    """A mask model (MODEL.MASK_ON) needs a mask for every object: refuse a dataset with box-only
    annotations (none, or only polygons of fewer than 3 points), naming a few of them."""
    if not cfg.MODEL.MASK_ON:
        return
    for member in getattr(dataset, "datasets", [dataset]):
        missing = getattr(member, "annotations_without_mask", [])
        if missing and getattr(member, "has_annotations", True):
            raise ValueError(
                "MODEL.MASK_ON is set, but {} annotations of dataset {!r} ({}) have no polygon of 3 or more points "
                "(ids {}{}): give them a segmentation, or train a box-only model".format(
                    len(missing), name, getattr(member, "ann_file", "?"), ", ".join(map(str, missing[:5])),
                    ", ..." if len(missing) > 5 else ""))
