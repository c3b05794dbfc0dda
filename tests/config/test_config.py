"""The config accepts every maskrcnn-benchmark key, names bad keys, and the shipped yaml files
cover every detector family and are the ones the READMEs name."""
import ast
import glob
import os
import re

import pytest

from maskrcnn_benchmark.config import ConfigError, cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA = os.path.join(ROOT, "..", "shared", "reference", "config_schema.txt")


def _schema_entries():
    with open(SCHEMA) as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                key, value = line.split(": ", 1)
                yield key, value


def _lookup(node, dotted):
    for part in dotted.split("."):
        node = node[part]
    return node


@pytest.mark.skipif(not os.path.exists(SCHEMA), reason="shared reference schema not present")
def test_every_maskrcnn_benchmark_key_exists_with_its_default():
    checked = 0
    for key, text in _schema_entries():
        value = _lookup(cfg, key)
        if key == "PATHS_CATALOG":
            assert os.path.basename(value) == "paths_catalog.py"
        elif key == "MODEL.DEVICE":  # ours picks CUDA when there is one, the CPU otherwise
            assert value == "auto"
        else:
            expected = ast.literal_eval(text)
            assert value == expected, f"{key}: {value!r} != {expected!r}"
            assert type(value) is type(expected), f"{key}: type {type(value)} != {type(expected)}"
        checked += 1
    assert checked > 200


def test_unknown_key_in_yaml_names_key_and_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("MODEL:\n  RPN:\n    NOT_A_KEY: 3\n")
    with pytest.raises(ConfigError) as info:
        cfg.clone().merge_from_file(str(path))
    message = str(info.value)
    assert "MODEL.RPN.NOT_A_KEY" in message and str(path) in message


def test_wrong_type_override_names_key():
    with pytest.raises(ConfigError) as info:
        cfg.clone().merge_from_list(["SOLVER.BASE_LR", "fast"])
    assert "SOLVER.BASE_LR" in str(info.value)


def test_maskrcnn_benchmark_style_yaml_merges(tmp_path):
    # The shape of maskrcnn-benchmark's e2e_faster_rcnn_R_50_FPN_1x.yaml (values as its public file).
    path = tmp_path / "e2e_faster_rcnn_R_50_FPN_1x.yaml"
    path.write_text(
        "MODEL:\n"
        "  META_ARCHITECTURE: \"GeneralizedRCNN\"\n"
        "  WEIGHT: \"catalog://ImageNetPretrained/MSRA/R-50\"\n"
        "  BACKBONE:\n    CONV_BODY: \"R-50-FPN\"\n"
        "  RESNETS:\n    BACKBONE_OUT_CHANNELS: 256\n"
        "  RPN:\n    USE_FPN: True\n    ANCHOR_STRIDE: (4, 8, 16, 32, 64)\n"
        "    PRE_NMS_TOP_N_TRAIN: 2000\n    PRE_NMS_TOP_N_TEST: 1000\n"
        "    POST_NMS_TOP_N_TEST: 1000\n    FPN_POST_NMS_TOP_N_TEST: 1000\n"
        "  ROI_HEADS:\n    USE_FPN: True\n"
        "  ROI_BOX_HEAD:\n    POOLER_RESOLUTION: 7\n    POOLER_SCALES: (0.25, 0.125, 0.0625, 0.03125)\n"
        "    POOLER_SAMPLING_RATIO: 2\n    FEATURE_EXTRACTOR: \"FPN2MLPFeatureExtractor\"\n"
        "    PREDICTOR: \"FPNPredictor\"\n"
        "DATASETS:\n  TRAIN: (\"coco_2014_train\", \"coco_2014_valminusminival\")\n"
        "  TEST: (\"coco_2014_minival\",)\n"
        "DATALOADER:\n  SIZE_DIVISIBILITY: 32\n"
        "SOLVER:\n  BASE_LR: 0.02\n  WEIGHT_DECAY: 0.0001\n  STEPS: (60000, 80000)\n  MAX_ITER: 90000\n"
    )
    merged = cfg.clone()
    merged.merge_from_file(str(path))
    assert merged.MODEL.RPN.ANCHOR_STRIDE == (4, 8, 16, 32, 64)
    assert merged.DATASETS.TRAIN == ("coco_2014_train", "coco_2014_valminusminival")
    assert merged.SOLVER.STEPS == (60000, 80000)


CONFIG_FILES = sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
# (Every shipped yaml merging and building is tests/config/test_all_configs_build.py's job.)
FAMILIES = ("retinanet", "fcos", "atss", "paa", "faster_rcnn", "mask_rcnn")
DATASET_KINDS = ("coco", "voc", "shapes")


def _family(merged):
    if merged.MODEL.RETINANET_ON:
        return "retinanet"
    for family in ("fcos", "atss", "paa"):
        if merged.MODEL[family.upper() + "_ON"]:
            return family
    return "mask_rcnn" if merged.MODEL.MASK_ON else "faster_rcnn"


def _dataset_kind(merged):
    kinds = {name.split("_")[0] for name in merged.DATASETS.TRAIN}
    assert len(kinds) == 1, f"mixed training sets {merged.DATASETS.TRAIN}"
    return kinds.pop()


def _is_sampling_free(merged):
    """Every part of the mechanism on, for the stages the detector has (paper Sec. IV)."""
    stages = ("ONE_STAGE",) if _family(merged) in ("retinanet", "fcos", "atss", "paa") else ("RPN", "ROI")
    for stage in stages:
        node = merged.MODEL.SAMPLING_FREE[stage]
        no_sampling = node.CLS_LOSS == "ce" if stage == "ONE_STAGE" else not node.SAMPLER
        if not (no_sampling and node.BIAS_INIT == "optimal" and node.GUIDED == "guided"):
            return False
    return True


def test_every_family_has_baseline_and_sampling_free_configs_for_each_dataset():
    found = set()
    for path in CONFIG_FILES:
        merged = cfg.clone()
        merged.merge_from_file(path)
        found.add((_family(merged), _dataset_kind(merged), _is_sampling_free(merged)))
    expected = {
        (family, kind, sampling_free)
        for family in FAMILIES
        for kind in DATASET_KINDS
        for sampling_free in (False, True)
        if not (family == "mask_rcnn" and kind == "voc")  # VOC has no instance masks
    }
    assert expected - found == set()


def _expand_braces(pattern):
    """``a_{x,y}.yaml`` -> ``a_x.yaml``, ``a_y.yaml`` (as the shell would)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    return [
        expanded
        for option in match.group(1).split(",")
        for expanded in _expand_braces(pattern[: match.start()] + option + pattern[match.end():])
    ]


def _documented_yaml_mentions():
    """(markdown file, mentioned path) for every ``*.yaml`` a markdown file of the repository
    names; placeholders written with "..." and the user's own files of the examples (``my_*.yaml``)
    are prose, not files of the repository."""
    markdown = glob.glob(os.path.join(ROOT, "*.md")) + glob.glob(os.path.join(ROOT, "docs", "*.md"))
    markdown += glob.glob(os.path.join(ROOT, "benchmarks", "*.md"))
    markdown += glob.glob(os.path.join(ROOT, "configs", "**", "*.md"), recursive=True)
    for path in sorted(markdown):
        with open(path) as handle:
            text = handle.read()
        for mention in sorted(set(re.findall(r"[\w./{},*-]+\.yaml", text))):
            if "..." not in mention and not os.path.basename(mention).startswith("my_"):
                yield path, mention


def _resolves(readme, mention):
    candidates = [os.path.join(os.path.dirname(readme), mention), os.path.join(ROOT, mention)]
    if "/" not in mention:  # a bare file name: anywhere under configs/
        candidates.append(os.path.join(ROOT, "configs", "**", mention))
    return any(glob.glob(candidate, recursive=True) for candidate in candidates)


def test_every_yaml_a_readme_mentions_exists():
    mentions = list(_documented_yaml_mentions())
    assert len(mentions) > 20  # the README tables are read
    missing = [
        f"{os.path.relpath(readme, ROOT)}: {name}"
        for readme, mention in mentions
        for name in _expand_braces(mention)
        if not _resolves(readme, name)
    ]
    assert missing == []


def test_base_file_is_merged_first_and_overridden(tmp_path):
    (tmp_path / "base.yaml").write_text("SOLVER:\n  BASE_LR: 0.5\n  MAX_ITER: 10\n")
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "child.yaml"
    child.write_text("_BASE_: ../base.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    merged = cfg.clone()
    merged.merge_from_file(str(child))
    assert merged.SOLVER.BASE_LR == 0.5 and merged.SOLVER.MAX_ITER == 20


def test_bad_key_in_base_names_the_base_file(tmp_path):
    (tmp_path / "base.yaml").write_text("SOLVER:\n  NOPE: 1\n")
    child = tmp_path / "child.yaml"
    child.write_text("_BASE_: base.yaml\n")
    with pytest.raises(ConfigError, match="base.yaml.*SOLVER.NOPE"):
        cfg.clone().merge_from_file(str(child))


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.yaml"):
        cfg.clone().merge_from_file(str(tmp_path / "nothere.yaml"))
