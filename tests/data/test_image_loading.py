"""The one image reader (datasets and demo): pixels equal the source for every PIL mode, computed
here from the numpy arrays the files were written from; EXIF orientation applied; 16-bit
grayscale no longer reads as a white frame in a dataset."""
import json

import numpy as np
import pytest
from PIL import Image

from demo.predictor import read_image as demo_read_image
from maskrcnn_benchmark.data.datasets import COCODataset
from maskrcnn_benchmark.data.datasets.image_loading import read_image

RNG = np.random.default_rng(0)
H, W = 7, 11


def _gray3(gray):
    return np.repeat(np.asarray(gray, dtype=np.uint8)[:, :, None], 3, axis=2)


def _case_1():
    bits = RNG.random((H, W)) > 0.5
    return Image.fromarray(bits), _gray3(bits * 255)


def _case_L():
    gray = RNG.integers(0, 256, (H, W), dtype=np.uint8)
    return Image.fromarray(gray, "L"), _gray3(gray)


def _case_P():
    indices = RNG.integers(0, 16, (H, W), dtype=np.uint8)
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.ravel().tolist())
    return image, palette[indices]


def _case_RGB():
    rgb = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return Image.fromarray(rgb, "RGB"), rgb


def _case_RGBA():
    rgba = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    return Image.fromarray(rgba, "RGBA"), rgba[:, :, :3]


def _case_LA():
    la = RNG.integers(0, 256, (H, W, 2), dtype=np.uint8)
    return Image.fromarray(la, "LA"), _gray3(la[:, :, 0])


def _case_I16():
    values = RNG.integers(0, 65536, (H, W)).astype(np.uint16)
    values[0, :3] = (0, 65535, 300)  # a 16-bit value above 255 must not saturate
    return Image.fromarray(values), _gray3(np.rint(values / 257.0))


def _case_I():
    values = RNG.integers(0, 65536, (H, W)).astype(np.int32)
    values[0, :3] = (-7, 70000, 65535)  # clipped to the 16-bit scale
    expected = np.rint(np.clip(values, 0, 65535) / 257.0)
    return Image.fromarray(values, "I"), _gray3(expected)


def _case_F():
    values = RNG.uniform(0, 255, (H, W)).astype(np.float32)
    values[0, :3] = (-3.0, 300.0, 254.6)
    return Image.fromarray(values, "F"), _gray3(np.rint(np.clip(values, 0, 255)))


def _case_CMYK():
    cmyk = RNG.integers(0, 256, (H, W, 4), dtype=np.uint8)
    c, m, y, k = (cmyk[:, :, i].astype(np.float64) for i in range(4))
    rgb = np.stack([(255 - v) * (255 - k) / 255.0 for v in (c, m, y)], axis=2)
    return Image.fromarray(cmyk, "CMYK"), np.rint(rgb).astype(np.uint8)


CASES = {"1": (_case_1, "png"), "L": (_case_L, "png"), "P": (_case_P, "png"), "RGB": (_case_RGB, "png"),
         "RGBA": (_case_RGBA, "png"), "LA": (_case_LA, "png"), "I;16": (_case_I16, "png"),
         "I": (_case_I, "tiff"), "F": (_case_F, "tiff"), "CMYK": (_case_CMYK, "tiff")}


@pytest.mark.parametrize("mode", list(CASES))
def test_every_mode_reads_as_the_source_pixels(tmp_path, mode):
    make, extension = CASES[mode]
    image, expected = make()
    path = tmp_path / "image.{}".format(extension)
    image.save(path)
    assert Image.open(path).mode == mode  # the file really holds that mode
    loaded = read_image(path)
    assert loaded.mode == "RGB" and loaded.size == (W, H)
    tolerance = 1 if mode == "CMYK" else 0  # PIL's integer arithmetic for CMYK
    np.testing.assert_allclose(np.asarray(loaded).astype(int), expected.astype(int), atol=tolerance, rtol=0)
    # the demo reads the same pixels (as BGR)
    np.testing.assert_array_equal(demo_read_image(str(path))[:, :, ::-1], np.asarray(loaded))


def _displayed(stored, orientation):
    """The displayed frame of ``stored`` for an EXIF orientation, from the tag's definition: where
    the stored row 0 and column 0 are shown."""
    h, w = stored.shape[:2]
    if orientation in (5, 6, 7, 8):  # a quarter turn: the displayed image is w x h
        y, x = np.indices((w, h))
        source = {5: (x, y), 6: (h - 1 - x, y), 7: (h - 1 - x, w - 1 - y), 8: (x, w - 1 - y)}[orientation]
    else:
        y, x = np.indices((h, w))
        source = {1: (y, x), 2: (y, w - 1 - x), 3: (h - 1 - y, w - 1 - x), 4: (h - 1 - y, x)}[orientation]
    return stored[source[0], source[1]]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = RNG.integers(0, 256, (H, W, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.png"
    Image.fromarray(stored).save(path, exif=exif.tobytes())
    np.testing.assert_array_equal(np.asarray(read_image(path)), _displayed(stored, orientation))


def test_sixteen_bit_png_in_a_dataset_is_not_a_white_frame(tmp_path):
    values = (np.arange(H * W, dtype=np.float64).reshape(H, W) * 800).astype(np.uint16)
    (tmp_path / "images").mkdir()
    Image.fromarray(values).save(tmp_path / "images" / "a.png")
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 3], "area": 12,
                             "iscrowd": 0, "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]]}],
            "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "a.json").write_text(json.dumps(coco))
    image, _, _ = COCODataset(str(tmp_path / "a.json"), str(tmp_path / "images"), False)[0]
    np.testing.assert_array_equal(np.asarray(image), _gray3(np.rint(values / 257.0)))
    assert np.asarray(image).min() == 0 and np.asarray(image).max() < 255
