"""Where datasets (and pretrained models) live on disk.

Dataset roots: ``$MASKRCNN_DATA_DIR`` if set, else ``datasets`` relative to the current directory.
The real COCO slice ``tiny_coco_*`` lives at ``$TINY_COCO_DIR``, default
``../shared/datasets/tiny_coco`` relative to the project root. The generated ``shapes_*`` splits
are created under ``<data root>/shapes/`` the first time they are asked for.

Datasets of one's own are registered by name, from Python (``register_coco_instances``,
``register_voc_instances`` in ``maskrcnn_benchmark.data.datasets``) or from the config
(``DATASETS.REGISTER``); see docs/USE_YOUR_OWN_DATA.md. They live in ``DatasetCatalog.REGISTERED``.
"""
import os

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def data_root():
    return os.environ.get("MASKRCNN_DATA_DIR", "datasets")


def tiny_coco_root():
    default = os.path.join(PROJECT_ROOT, "..", "shared", "datasets", "tiny_coco")
    return os.path.normpath(os.environ.get("TINY_COCO_DIR", default))


class DatasetCatalog(object):
    """Maps a dataset name to the factory (a class of ``maskrcnn_benchmark.data.datasets``) and
    the constructor arguments that build it. Paths in DATASETS are relative to the data root."""

    DATASETS = {
        "coco_2017_train": {
            "img_dir": "coco/train2017",
            "ann_file": "coco/annotations/instances_train2017.json",
        },
        "coco_2017_val": {
            "img_dir": "coco/val2017",
            "ann_file": "coco/annotations/instances_val2017.json",
        },
        "coco_2014_train": {
            "img_dir": "coco/train2014",
            "ann_file": "coco/annotations/instances_train2014.json",
        },
        "coco_2014_val": {
            "img_dir": "coco/val2014",
            "ann_file": "coco/annotations/instances_val2014.json",
        },
        # COCO test-dev: images without annotations (an image-info json); the evaluation writes the
        # results file of the evaluation server
        "coco_2017_test_dev": {
            "img_dir": "coco/test2017",
            "ann_file": "coco/annotations/image_info_test-dev2017.json",
        },
        "coco_2014_minival": {
            "img_dir": "coco/val2014",
            "ann_file": "coco/annotations/instances_minival2014.json",
        },
        "coco_2014_valminusminival": {
            "img_dir": "coco/val2014",
            "ann_file": "coco/annotations/instances_valminusminival2014.json",
        },
        "voc_2007_train": {"data_dir": "voc/VOC2007", "split": "train"},
        "voc_2007_val": {"data_dir": "voc/VOC2007", "split": "val"},
        "voc_2007_trainval": {"data_dir": "voc/VOC2007", "split": "trainval"},
        "voc_2007_test": {"data_dir": "voc/VOC2007", "split": "test"},
        "voc_2012_train": {"data_dir": "voc/VOC2012", "split": "train"},
        "voc_2012_val": {"data_dir": "voc/VOC2012", "split": "val"},
        "voc_2012_trainval": {"data_dir": "voc/VOC2012", "split": "trainval"},
        "voc_2012_test": {"data_dir": "voc/VOC2012", "split": "test"},
    }

    # the real COCO 2017 slice shipped beside the project (absolute paths)
    TINY_COCO = {
        "tiny_coco_train": ("train2017", "annotations/instances_train2017.json"),
        "tiny_coco_val": ("val2017", "annotations/instances_val2017.json"),
    }

    # name -> {"factory", "args", "source" (who registered it), "metadata"}; see register()
    REGISTERED = {}

    @staticmethod
    def names():
        from maskrcnn_benchmark.data.datasets.shapes import SHAPES_SPLITS

        return sorted(list(DatasetCatalog.DATASETS) + list(DatasetCatalog.TINY_COCO)
                      + list(SHAPES_SPLITS) + list(DatasetCatalog.REGISTERED))

    @staticmethod
    def register(name, factory, args, source, metadata=None):
        """Make ``name`` build ``factory(**args)`` (a class name of maskrcnn_benchmark.data.datasets).
        Registering the same name again with the same factory and arguments does nothing; with
        different ones, or over a built-in name, it is an error."""
        entry = dict(factory=factory, name=name, args=dict(args), source=source, metadata=dict(metadata or {}))
        if name in DatasetCatalog.DATASETS or name in DatasetCatalog.TINY_COCO or name.startswith("shapes_"):
            raise ValueError("cannot register dataset {!r} ({}): the name is built into the DatasetCatalog; "
                             "choose another name".format(name, source))
        previous = DatasetCatalog.REGISTERED.get(name)
        if previous is not None:
            if (previous["factory"], previous["args"]) == (factory, entry["args"]):
                return
            raise ValueError("dataset {!r} is already registered ({}: {} {}); {} registers it again as {} {}".format(
                name, previous["source"], previous["factory"], previous["args"], source, factory, entry["args"]))
        DatasetCatalog.REGISTERED[name] = entry

    @staticmethod
    def how_to_fix(name):
        """What a user can change when the files of dataset ``name`` are missing."""
        if name in DatasetCatalog.REGISTERED:
            return "check the paths of its registration ({})".format(DatasetCatalog.REGISTERED[name]["source"])
        if name in DatasetCatalog.TINY_COCO:
            return "set TINY_COCO_DIR to the folder holding tiny_coco (now {})".format(tiny_coco_root())
        return ("catalog paths are relative to the data root, $MASKRCNN_DATA_DIR ({}, which is {}): set "
                "MASKRCNN_DATA_DIR to the folder holding coco/ and voc/, or register the dataset's files under a "
                "name of your own (DATASETS.REGISTER or register_coco_instances, see docs/USE_YOUR_OWN_DATA.md)"
                .format("set" if "MASKRCNN_DATA_DIR" in os.environ else "unset, default 'datasets'",
                        os.path.abspath(data_root())))

    @staticmethod
    def get(name):
        if name in DatasetCatalog.REGISTERED:
            return dict(DatasetCatalog.REGISTERED[name])
        if name in DatasetCatalog.TINY_COCO:
            img_dir, ann_file = DatasetCatalog.TINY_COCO[name]
            root = tiny_coco_root()
            return dict(factory="COCODataset", name=name, args=dict(
                root=os.path.join(root, img_dir), ann_file=os.path.join(root, ann_file)))
        if name.startswith("shapes_"):
            return DatasetCatalog._get_shapes(name)
        if name not in DatasetCatalog.DATASETS:
            raise KeyError("Dataset {!r} is not in the DatasetCatalog; known names: {}. A dataset of your own is "
                           "registered with DATASETS.REGISTER or register_coco_instances / register_voc_instances "
                           "(docs/USE_YOUR_OWN_DATA.md)".format(name, ", ".join(DatasetCatalog.names())))
        attrs = DatasetCatalog.DATASETS[name]
        root = data_root()
        if "coco" in name:
            return dict(factory="COCODataset", name=name, args=dict(
                root=os.path.join(root, attrs["img_dir"]),
                ann_file=os.path.join(root, attrs["ann_file"])))
        return dict(factory="PascalVOCDataset", name=name, args=dict(
            data_dir=os.path.join(root, attrs["data_dir"]), split=attrs["split"]))

    @staticmethod
    def _get_shapes(name):
        from maskrcnn_benchmark.data.datasets.shapes import SHAPES_SPLITS, ensure_shapes_dataset

        if name not in SHAPES_SPLITS:
            raise KeyError("Dataset {!r} is not in the DatasetCatalog; shapes splits are {}".format(
                name, ", ".join(sorted(SHAPES_SPLITS))))
        split = SHAPES_SPLITS[name]
        out_dir = os.path.join(data_root(), "shapes", name[len("shapes_"):])
        img_dir, ann_file = ensure_shapes_dataset(out_dir, split["num_images"], split["seed"])
        return dict(factory="COCODataset", name=name, args=dict(root=img_dir, ann_file=ann_file))


# ModelCatalog (pretrained weights) is appended below by its owner.


class ModelCatalog(object):
    """Pretrained-weight names (``catalog://<name>`` in MODEL.WEIGHT) -> download URL.

    ``ImageNetPretrained/...`` are the Caffe2 ImageNet backbones of Detectron; ``Caffe2Detectron/
    COCO/<id>/<config>`` are Detectron's 12_2017 COCO baselines.
    """

    S3_C2_DETECTRON_URL = "https://dl.fbaipublicfiles.com/detectron"
    C2_IMAGENET_MODELS = {
        "MSRA/R-50": "ImageNetPretrained/MSRA/R-50.pkl",
        "MSRA/R-50-GN": "ImageNetPretrained/47261647/R-50-GN.pkl",
        "MSRA/R-101": "ImageNetPretrained/MSRA/R-101.pkl",
        "MSRA/R-101-GN": "ImageNetPretrained/47592356/R-101-GN.pkl",
        "FAIR/20171220/X-101-32x8d": "ImageNetPretrained/20171220/X-101-32x8d.pkl",
        "FAIR/20171220/X-101-64x4d": "ImageNetPretrained/FBResNeXt/X-101-64x4d.pkl",
    }
    # run id/config -> the time-stamped signature in the published output path
    C2_DETECTRON_SUFFIX = "output/train/{}coco_2014_train%3A{}coco_2014_valminusminival/generalized_rcnn/model_final.pkl"
    C2_DETECTRON_MODELS = {
        "35857197/e2e_faster_rcnn_R-50-C4_1x": "01_33_49.iAX0mXvW",
        "35857345/e2e_faster_rcnn_R-50-FPN_1x": "01_36_30.cUF7QR7I",
        "35857890/e2e_faster_rcnn_R-101-FPN_1x": "01_38_50.sNxI7sX7",
        "36761737/e2e_faster_rcnn_X-101-32x8d-FPN_1x": "06_31_39.5MIHi1fZ",
        "35858791/e2e_mask_rcnn_R-50-C4_1x": "01_45_57.ZgkA7hPB",
        "35858933/e2e_mask_rcnn_R-50-FPN_1x": "01_48_14.DzEQe4wC",
        "35861795/e2e_mask_rcnn_R-101-FPN_1x": "02_31_37.KqyEK4tT",
        "36761843/e2e_mask_rcnn_X-101-32x8d-FPN_1x": "06_35_59.RZotkLKI",
    }

    @staticmethod
    def get(name):
        if name.startswith("Caffe2Detectron/COCO"):
            return ModelCatalog.get_c2_detectron_12_2017_baselines(name)
        if name.startswith("ImageNetPretrained"):
            return ModelCatalog.get_c2_imagenet_pretrained(name)
        raise KeyError("model {!r} is not in the ModelCatalog; names start with 'ImageNetPretrained/' "
                       "(one of {}) or 'Caffe2Detectron/COCO/'".format(
                           name, ", ".join(sorted(ModelCatalog.C2_IMAGENET_MODELS))))

    @staticmethod
    def get_c2_imagenet_pretrained(name):
        short_name = name[len("ImageNetPretrained/"):]
        if short_name not in ModelCatalog.C2_IMAGENET_MODELS:
            raise KeyError("ImageNet-pretrained model {!r} is not in the ModelCatalog; known: {}".format(
                short_name, ", ".join(sorted(ModelCatalog.C2_IMAGENET_MODELS))))
        return "/".join([ModelCatalog.S3_C2_DETECTRON_URL, ModelCatalog.C2_IMAGENET_MODELS[short_name]])

    @staticmethod
    def get_c2_detectron_12_2017_baselines(name):
        # e.g. Caffe2Detectron/COCO/35857197/e2e_faster_rcnn_R-50-C4_1x
        short_name = name[len("Caffe2Detectron/COCO/"):]
        if short_name not in ModelCatalog.C2_DETECTRON_MODELS:
            raise KeyError("Detectron baseline {!r} is not in the ModelCatalog; known: {}".format(
                short_name, ", ".join(sorted(ModelCatalog.C2_DETECTRON_MODELS))))
        model_id, config_name = short_name.split("/")
        signature = ModelCatalog.C2_DETECTRON_MODELS[short_name]
        # keypoint runs (out of scope here) would carry a "keypoints_" dataset tag
        suffix = ModelCatalog.C2_DETECTRON_SUFFIX.format("", "")
        return "/".join([ModelCatalog.S3_C2_DETECTRON_URL, model_id, "12_2017_baselines",
                         "{}.yaml.{}".format(config_name, signature), suffix])
