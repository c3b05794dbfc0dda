"""The foreground-background imbalance each Sampling-Free head of a model trains under, per pyramid
level, from the counting code the optimal bias uses (``SamplingFreeHead.count_samples_by_level``).

Per head and level: the samples (anchors, points, proposals), N (sigmoid heads: samples x classes,
one binary problem each; softmax: samples), N^f, the foreground fraction N^f / N, the optimal bias
b* = log(N^f / (N - N^f)) of that level alone, and the initial classification loss (cross-entropy
summed and divided by N^f, eq. 13) under the bias training starts from: the head's optimal one
(measured over all its levels) and the head's default one (PRIOR_PROB, or the layer's init).
"""
import math
from dataclasses import asdict, dataclass

import torch

from maskrcnn_benchmark.modeling.sample_strategy import SIGMOID

from .head import SamplingFreeHead
from .priors import sigmoid_initial_loss, softmax_bias_from_counts, softmax_initial_loss

ALL_LEVELS = "all"


@dataclass
class ImbalanceRow:
    head: str
    level: str
    samples: float
    total: float  # N
    foreground: float  # N^f
    fraction: float  # N^f / N
    optimal_bias: float  # log(N^f / (N - N^f)) of this level
    loss_at_optimal_bias: float  # the head's optimal bias (all levels), / N^f of this level
    loss_at_default_bias: float

    def as_dict(self):
        return asdict(self)


def _log_odds(foreground, total):
    if foreground <= 0 or foreground >= total:
        return math.nan
    return math.log(foreground / (total - foreground))


def _sigmoid_rows(name, levels, counts, head_counts, num_classes, default_bias):
    total, foreground = head_counts.tolist()
    prior = foreground / total if 0 < foreground < total else math.nan
    default_prior = 1.0 / (1.0 + math.exp(-default_bias))
    rows = []
    for level, (n, nf) in zip(levels, counts.tolist()):
        rows.append(ImbalanceRow(
            name, level, n / num_classes, n, nf, nf / n if n else math.nan, _log_odds(nf, n),
            sigmoid_initial_loss(n, nf, prior) if not math.isnan(prior) else math.nan,
            sigmoid_initial_loss(n, nf, default_prior),
        ))
    return rows


def _softmax_rows(name, levels, counts, head_counts, default_bias):
    optimal = torch.softmax(softmax_bias_from_counts(head_counts), dim=0)
    default = torch.softmax(default_bias.double(), dim=0)
    rows = []
    for level, row in zip(levels, counts):
        n, nf = float(row.sum()), float(row[1:].sum())
        rows.append(ImbalanceRow(
            name, level, n, n, nf, nf / n if n else math.nan, _log_odds(nf, n),
            softmax_initial_loss(row, optimal), softmax_initial_loss(row, default),
        ))
    return rows


@torch.no_grad()
def imbalance_rows(model, targets):
    """Rows (``ImbalanceRow``) for every ``SamplingFreeHead`` of ``model``, counted over ``targets``
    (``(index, target)`` pairs as ``bias_init.load_targets`` gives them, after the training
    transforms): per level, then "all" for a head with several levels."""
    boxes = [target for _, target in targets]
    sizes = [(target.size[1], target.size[0]) for target in boxes]
    rows = []
    for head in (m for m in model.modules() if isinstance(m, SamplingFreeHead)):
        levels, counts = head.count_samples_by_level(boxes, sizes)
        head_counts = counts.sum(dim=0)
        if len(levels) > 1:
            levels, counts = levels + [ALL_LEVELS], torch.cat([counts, head_counts[None]])
        bias = head.classification_layer().bias.detach().cpu()
        if head.classifier_kind == SIGMOID:
            rows += _sigmoid_rows(head.sampling_free_name, levels, counts, head_counts,
                                  head.num_foreground_classes, float(bias.mean()))
        else:
            rows += _softmax_rows(head.sampling_free_name, levels, counts, head_counts, bias)
    return rows


COLUMNS = ("head", "level", "samples", "N", "N^f", "N^f / N", "b*", "L_cls(b*)", "L_cls(default)")


def markdown_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| {} | {} | {:.0f} | {:.0f} | {:.0f} | {:.3g} | {:.2f} | {:.3f} | {:.3g} |".format(
            r.head, r.level, r.samples, r.total, r.foreground, r.fraction, r.optimal_bias,
            r.loss_at_optimal_bias, r.loss_at_default_bias))
    return "\n".join(lines)
