"""Assign each prediction (anchor or proposal) to at most one ground-truth box by IoU."""
import torch


class Matcher(object):
    """Turns an IoU matrix into one ground-truth index per prediction.

    ``match_quality_matrix`` is ``G x N`` (ground truth x predictions). The result is a length-N
    LongTensor holding the matched ground-truth index, or one of two negative codes:

    * ``BELOW_LOW_THRESHOLD`` (-1): best IoU < ``low_threshold`` -> background.
    * ``BETWEEN_THRESHOLDS`` (-2): ``low_threshold <= IoU < high_threshold`` -> ignored.

    With ``allow_low_quality_matches`` every ground-truth box also keeps the predictions that reach
    its highest IoU, even when that IoU is below ``high_threshold``, so no object goes unmatched.
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches=False):
        if low_threshold > high_threshold:
            raise ValueError(
                "Matcher: low_threshold ({}) must not exceed high_threshold ({})".format(
                    low_threshold, high_threshold
                )
            )
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix):
        num_gt, num_predictions = match_quality_matrix.shape
        if num_gt == 0:
            # An image without objects: every prediction is background.
            return torch.full(
                (num_predictions,),
                self.BELOW_LOW_THRESHOLD,
                dtype=torch.int64,
                device=match_quality_matrix.device,
            )

        best_iou, matches = match_quality_matrix.max(dim=0)
        all_matches = matches.clone() if self.allow_low_quality_matches else None

        below_low = best_iou < self.low_threshold
        between = (best_iou >= self.low_threshold) & (best_iou < self.high_threshold)
        matches[below_low] = self.BELOW_LOW_THRESHOLD
        matches[between] = self.BETWEEN_THRESHOLDS

        if self.allow_low_quality_matches:
            self.set_low_quality_matches_(matches, all_matches, match_quality_matrix)
        return matches

    def set_low_quality_matches_(self, matches, all_matches, match_quality_matrix):
        """Restore the match of every prediction that is some ground truth's best (ties included)."""
        best_iou_per_gt, _ = match_quality_matrix.max(dim=1)
        # A ground truth that overlaps nothing (IoU 0) must not claim every prediction.
        is_best = (match_quality_matrix == best_iou_per_gt[:, None]) & (best_iou_per_gt[:, None] > 0)
        prediction_ids = is_best.any(dim=0).nonzero().squeeze(1)
        matches[prediction_ids] = all_matches[prediction_ids]
