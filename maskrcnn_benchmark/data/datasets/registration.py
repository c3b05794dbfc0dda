"""Datasets of one's own, registered by name without editing paths_catalog.py.

From Python (before building the data loader)::

    register_coco_instances("my_train", {}, "/data/my/train.json", "/data/my/images")
    register_voc_instances("my_voc_train", "/data/VOCdevkit/MyVOC", "trainval", ["cat", "dog"])

From a yaml file or the command line, ``DATASETS.REGISTER`` holds one string per dataset::

    "NAME=coco:ANNOTATION_JSON:IMAGE_DIR"
    "NAME=voc:DATA_DIR:SPLIT"                    the 20 PASCAL VOC classes
    "NAME=voc:DATA_DIR:SPLIT:CLASS1,CLASS2,..."  classes of one's own (background not listed)

Relative paths are taken from the current directory (they are not under the data root).
``register_datasets_from_config(cfg)`` registers them; ``make_data_loader`` and the tools'
config loading call it.
"""
import os

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog

FORMATS = ("coco", "voc")
_SYNTAX = "'NAME=coco:ANNOTATION_JSON:IMAGE_DIR' or 'NAME=voc:DATA_DIR:SPLIT[:CLASS1,CLASS2,...]'"


def register_coco_instances(name, metadata, json_file, image_root, source=None):
    """Register a COCO-format dataset (a json of images / annotations / categories and the folder
    its ``file_name`` entries are relative to) as ``name``; ``metadata`` (a dict) is kept on the
    catalog entry and on the built dataset as ``dataset.metadata``."""
    DatasetCatalog.register(
        name, "COCODataset", dict(ann_file=os.path.abspath(os.fspath(json_file)),
                                  root=os.path.abspath(os.fspath(image_root))),
        source=source or "register_coco_instances", metadata=metadata)


def register_voc_instances(name, data_dir, split, class_names=None, source=None):
    """Register a dataset in the PASCAL VOC layout (``Annotations/*.xml``, ``JPEGImages/*.jpg``,
    ``ImageSets/Main/<split>.txt`` under ``data_dir``); ``class_names`` (without the background)
    default to the 20 VOC classes."""
    args = dict(data_dir=os.path.abspath(os.fspath(data_dir)), split=split)
    if class_names is not None:
        args["class_names"] = tuple(class_names)
    DatasetCatalog.register(name, "PascalVOCDataset", args, source=source or "register_voc_instances")


def parse_registration(entry):
    """``(name, format, fields)`` of one DATASETS.REGISTER string; errors name the entry."""
    if not isinstance(entry, str) or "=" not in entry:
        raise ValueError("DATASETS.REGISTER entry {!r} is not of the form {}".format(entry, _SYNTAX))
    name, spec = (part.strip() for part in entry.split("=", 1))
    kind, _, rest = spec.partition(":")
    fields = rest.split(":") if rest else []
    if not name or kind not in FORMATS:
        raise ValueError("DATASETS.REGISTER entry {!r}: expected {}".format(entry, _SYNTAX))
    expected = {"coco": (2,), "voc": (2, 3)}[kind]
    if len(fields) not in expected or not all(fields):
        raise ValueError("DATASETS.REGISTER entry {!r}: a {} dataset takes {} ':'-separated fields after "
                         "'{}:', got {}; expected {}".format(entry, kind, " or ".join(map(str, expected)), kind,
                                                             len(fields), _SYNTAX))
    return name, kind, fields


def register_datasets_from_config(cfg):
    """Register every ``DATASETS.REGISTER`` entry of ``cfg`` (idempotent)."""
    for entry in cfg.DATASETS.REGISTER:
        name, kind, fields = parse_registration(entry)
        source = "DATASETS.REGISTER entry {!r}".format(entry)
        if kind == "coco":
            register_coco_instances(name, {}, fields[0], fields[1], source=source)
        else:
            classes = [c.strip() for c in fields[2].split(",") if c.strip()] if len(fields) == 3 else None
            register_voc_instances(name, fields[0], fields[1], classes, source=source)
