"""Mask head inference: per-detection mask probabilities, optionally pasted into the image."""
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from maskrcnn_benchmark.structures.box_convention import (
    DEFAULT_BOX_CONVENTION,
    box_convention,
    box_convention_from_config,
)


class MaskPostProcessor(nn.Module):
    """Adds a "mask" field to each detection: the ``1 x M x M`` probability map of its class,
    or, with a ``masker``, the ``1 x H x W`` mask pasted into the image."""

    def __init__(self, masker=None):
        super(MaskPostProcessor, self).__init__()
        self.masker = masker

    def forward(self, x, boxes):
        mask_prob = x.sigmoid()
        labels = torch.cat([box.get_field("labels") for box in boxes]).to(torch.int64)
        rows = torch.arange(labels.numel(), device=labels.device)
        mask_prob = mask_prob[rows, labels][:, None]

        results = []
        for prob, box in zip(mask_prob.split([len(box) for box in boxes], dim=0), boxes):
            result = box.copy_with_fields(box.fields())
            result.add_field("mask", prob)
            results.append(result)
        if self.masker is not None:
            pasted = self.masker([r.get_field("mask") for r in results], results)
            for result, masks in zip(results, pasted):
                result.add_field("mask", masks)
        return results


class MaskPostProcessorCOCOFormat(MaskPostProcessor):
    """As MaskPostProcessor, with each pasted mask also run-length encoded for COCO."""

    def forward(self, x, boxes):
        import pycocotools.mask as mask_util

        results = super(MaskPostProcessorCOCOFormat, self).forward(x, boxes)
        for result in results:
            masks = result.get_field("mask").cpu()
            rles = [
                mask_util.encode(np.array(mask[0, :, :, np.newaxis], dtype=np.uint8, order="F"))[0]
                for mask in masks
            ]
            for rle in rles:
                rle["counts"] = rle["counts"].decode("utf-8")
            result.add_field("mask", rles)
        return results


def expand_boxes(boxes, scale):
    """Grow ``N x 4`` boxes about their centres by ``scale``."""
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    ctr_x = (boxes[:, 2] + boxes[:, 0]) * 0.5
    ctr_y = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack((ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h), dim=1)


def expand_masks(mask, padding):
    """Zero-pad ``N x 1 x M x M`` masks by ``padding`` on each side; returns them and the scale
    by which their boxes must grow so that the padded mask covers the same pixels."""
    M = mask.shape[-1]
    scale = float(M + 2 * padding) / M
    return F.pad(mask, (padding, padding, padding, padding)), scale


def paste_mask_in_image(mask, box, im_h, im_w, thresh=0.5, padding=1, convention=DEFAULT_BOX_CONVENTION):
    """Resize an ``M x M`` mask (probabilities) to its box and place it in an ``im_h x im_w``
    image; binary (uint8) when ``thresh >= 0``, probabilities otherwise. The pixels the box covers
    are the box ``convention``'s (``BoxConvention.paste_bounds``)."""
    padded, scale = expand_masks(mask[None, None].float(), padding)
    box = expand_boxes(box[None].float(), scale)[0]
    x1, y1, x_end, y_end = box_convention(convention).paste_bounds(box.tolist())
    width, height = max(x_end - x1, 1), max(y_end - y1, 1)

    resized = F.interpolate(padded, size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    if thresh >= 0:
        resized = (resized > thresh).to(torch.uint8)
    image = torch.zeros((im_h, im_w), dtype=resized.dtype, device=mask.device)

    dst_x1, dst_y1 = max(x1, 0), max(y1, 0)
    dst_x2, dst_y2 = min(x_end, im_w), min(y_end, im_h)
    if dst_x2 > dst_x1 and dst_y2 > dst_y1:
        image[dst_y1:dst_y2, dst_x1:dst_x2] = resized[dst_y1 - y1 : dst_y2 - y1, dst_x1 - x1 : dst_x2 - x1]
    return image


class Masker(object):
    """Pastes ``N x 1 x M x M`` mask probabilities into images at their boxes (in ``convention``)."""

    def __init__(self, threshold=0.5, padding=1, convention=DEFAULT_BOX_CONVENTION):
        self.threshold = threshold
        self.padding = padding
        self.convention = box_convention(convention)

    def forward_single_image(self, masks, boxes):
        boxes = boxes.convert("xyxy")
        im_w, im_h = (int(round(float(v))) for v in boxes.size)
        pasted = [
            paste_mask_in_image(mask[0], box, im_h, im_w, self.threshold, self.padding, self.convention)
            for mask, box in zip(masks, boxes.bbox)
        ]
        if not pasted:
            dtype = torch.uint8 if self.threshold >= 0 else masks.dtype
            return masks.new_zeros((0, 1, im_h, im_w), dtype=dtype)
        return torch.stack(pasted, dim=0)[:, None]

    def __call__(self, masks, boxes):
        """``masks``: per image ``N x 1 x M x M`` (or one tensor for a single BoxList)."""
        if not isinstance(boxes, (list, tuple)):
            boxes = [boxes]
            masks = [masks]
        if len(masks) != len(boxes):
            raise ValueError("Masker: {} mask tensors for {} images".format(len(masks), len(boxes)))
        return [self.forward_single_image(m, b) for m, b in zip(masks, boxes)]


def make_roi_mask_post_processor(cfg):
    """Pasting happens here only with ``MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS``; otherwise the
    evaluation pastes the ``M x M`` masks at the original image size."""
    if cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS:
        masker = Masker(threshold=cfg.MODEL.ROI_MASK_HEAD.POSTPROCESS_MASKS_THRESHOLD, padding=1,
                        convention=box_convention_from_config(cfg))
    else:
        masker = None
    return MaskPostProcessor(masker)
