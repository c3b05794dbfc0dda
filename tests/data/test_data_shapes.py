"""The generated shapes dataset: determinism, exact masks, atomic generation, catalog and CLI."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
from maskrcnn_benchmark.data.datasets.shapes import (
    CLASS_NAMES, SHAPES_SPLITS, ensure_shapes_dataset, generate_shapes)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    generate_shapes(tmp_path / "a", num_images=6, seed=3)
    generate_shapes(tmp_path / "b", num_images=6, seed=3)
    generate_shapes(tmp_path / "c", num_images=6, seed=4)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_annotations_are_consistent_with_the_pixels(tmp_path):
    ann_file = generate_shapes(tmp_path, num_images=12, seed=11)
    coco = COCO(ann_file)
    assert [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))] == list(CLASS_NAMES)
    for img_id, info in coco.imgs.items():
        anns = coco.imgToAnns[img_id]
        assert 1 <= len(anns) <= 4
        pixels = np.asarray(Image.open(os.path.join(tmp_path, "images", info["file_name"])))
        assert pixels.shape == (128, 128, 3)
        union = np.zeros((128, 128), dtype=np.uint8)
        for ann in anns:
            mask = coco.annToMask(ann)
            assert ann["area"] == mask.sum() > 0
            union += mask
            # the bbox encloses the mask exactly (up to the pixel grid)
            ys, xs = np.nonzero(mask)
            x, y, w, h = ann["bbox"]
            assert x - 1 <= xs.min() and xs.max() <= x + w
            assert y - 1 <= ys.min() and ys.max() <= y + h
            # each object is painted in one colour plus mild noise: far from the background
            inside = pixels[mask.astype(bool)].astype(float)
            assert inside.std(axis=0).max() < 12
        assert union.max() == 1, "objects must not share pixels"


def test_ensure_is_idempotent_and_refuses_a_half_written_folder(tmp_path):
    image_dir, ann_file = ensure_shapes_dataset(tmp_path / "split", 4, seed=1)
    stamp = os.stat(ann_file).st_mtime_ns
    assert ensure_shapes_dataset(tmp_path / "split", 4, seed=1) == (image_dir, ann_file)
    assert os.stat(ann_file).st_mtime_ns == stamp  # not regenerated
    assert [p for p in os.listdir(tmp_path) if p.startswith(".tmp")] == []

    (tmp_path / "broken").mkdir()
    with pytest.raises(RuntimeError, match="broken"):
        ensure_shapes_dataset(tmp_path / "broken", 4, seed=1)


def test_catalog_generates_shapes_under_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKRCNN_DATA_DIR", str(tmp_path))
    entry = DatasetCatalog.get("shapes_val")
    assert entry["factory"] == "COCODataset"
    assert entry["args"]["ann_file"] == str(tmp_path / "shapes" / "val" / "annotations.json")
    with open(entry["args"]["ann_file"]) as f:
        assert len(json.load(f)["images"]) == SHAPES_SPLITS["shapes_val"]["num_images"]


def test_command_line_entry_point(tmp_path):
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "maskrcnn_benchmark.data.datasets.shapes",
                    "--out", str(out), "--num", "3", "--seed", "5"],
                   check=True, cwd=PROJECT_ROOT, capture_output=True)
    generate_shapes(tmp_path / "direct", num_images=3, seed=5)
    assert _digest(out) == _digest(tmp_path / "direct")
