"""The two halves of a sample strategy and their registries.

A *hard* strategy decides which samples (anchors, points, proposals) enter a head's
classification loss and by what the head divides its losses; a *soft* strategy is the
classification loss itself, i.e. how the chosen samples are weighted. A head combines one of
each, named by ``MODEL.SAMPLING_FREE.<STAGE>.HARD`` / ``SOFT``:

    selection = hard.select(candidates)                 # which samples, which divisors
    loss_cls = soft(logits[chosen], labels[chosen]) / selection.cls_normalizer
    loss_loc = box_loss(positives among chosen) / selection.loc_normalizer

Labels follow one convention everywhere: int64, -1 ignored, 0 background, > 0 a foreground class
(1 for the RPN's "object").
"""
from dataclasses import dataclass
from typing import Callable, List, Optional

import torch
from torch import nn

from maskrcnn_benchmark.modeling.utils import registered
from maskrcnn_benchmark.utils.registry import Registry

HARD_STRATEGIES = Registry()
SOFT_STRATEGIES = Registry()

SIGMOID, SOFTMAX = "sigmoid", "softmax"
CLASSIFIER_KINDS = (SIGMOID, SOFTMAX)


@dataclass
class Candidates:
    """What a hard strategy chooses from, one entry per image.

    ``labels``: int64 per sample (-1 ignored, 0 background, > 0 foreground).
    ``ious``: each sample's highest IoU with the image's ground truth (None where the head has no
    IoU, e.g. point heads).
    ``scores`` / ``losses``: callables returning, per image, the classification scores
    (``samples x classes``) / the per-sample loss, computed by the head without gradient on every
    candidate. They are evaluated only when a strategy calls them (and once: the head caches them);
    None where the head cannot provide them.
    """

    labels: List[torch.Tensor]
    ious: Optional[List[torch.Tensor]] = None
    scores: Optional[Callable[[], List[torch.Tensor]]] = None
    losses: Optional[Callable[[], List[torch.Tensor]]] = None


@dataclass
class Selection:
    """A hard strategy's answer: per image a bool mask of the trained samples, and the two
    divisors (>= 1) of the summed classification and localisation losses."""

    masks: List[torch.Tensor]
    cls_normalizer: float
    loc_normalizer: float


class HardStrategy(object):
    """Base of the hard strategies. Subclasses implement ``select``; those with parameters build
    themselves from the stage settings in ``from_settings`` (the config boundary), reading their
    own ones with ``settings.options("HARD", defaults)`` (``MODEL.SAMPLING_FREE.<STAGE>.HARD_OPTIONS``)."""

    @classmethod
    def from_settings(cls, settings):
        settings.options("HARD", {})  # no parameters: any HARD_OPTIONS entry is a mistake
        return cls()

    def select(self, candidates):
        raise NotImplementedError


class SoftStrategy(nn.Module):
    """Base of the soft strategies: ``forward(logits, labels, weights=None, context=None)`` returns
    the *summed* classification loss (the head divides by ``Selection.cls_normalizer``).

    ``kind`` is the classifier it expects. ``sigmoid``: logits ``N x C`` (one column per foreground
    class), labels 0..C with 0 background and -1 ignored. ``softmax``: logits ``N x (C + 1)``,
    labels 0..C. ``weights`` (optional, one per sample) multiply each sample's loss; ``context``
    carries what a strategy may need beyond logits and labels (e.g. IoUs), see the head that calls it.
    ``per_sample`` gives each sample's loss (summed over classes), e.g. for a hard strategy that ranks
    candidates by loss.
    """

    kinds = CLASSIFIER_KINDS

    def __init__(self, kind):
        super().__init__()
        if kind not in type(self).kinds:
            raise ValueError(f"{type(self).__name__} serves {type(self).kinds} classifiers, not {kind!r}")
        self.kind = kind

    @classmethod
    def from_settings(cls, settings, kind):
        """Parameters of its own a strategy reads with ``settings.options("SOFT", defaults)``."""
        settings.options("SOFT", {})  # no parameters: any SOFT_OPTIONS entry is a mistake
        return cls(kind)

    def per_sample(self, logits, labels, context=None):
        raise NotImplementedError

    def forward(self, logits, labels, weights=None, context=None):
        losses = self.per_sample(logits, labels, context)
        if weights is not None:
            losses = losses * weights
        return losses.sum()

    def extra_repr(self):
        return f"kind={self.kind}"


def _lookup(registry, base, name, key):
    strategy = registered(registry, name, key)
    if not (isinstance(strategy, type) and issubclass(strategy, base)):
        raise TypeError(f"{key}: {name!r} is registered as {strategy!r}, not a {base.__name__} subclass")
    return strategy


def hard_strategy_class(name, key):
    """The registered hard strategy ``name``; ``key`` (the config key) names the culprit on error."""
    return _lookup(HARD_STRATEGIES, HardStrategy, name, key)


def soft_strategy_class(name, key):
    """The registered soft strategy ``name``; ``key`` (the config key) names the culprit on error."""
    return _lookup(SOFT_STRATEGIES, SoftStrategy, name, key)


def build_hard_strategy(settings):
    """The hard strategy named by ``settings.hard``, built from the stage settings."""
    return hard_strategy_class(settings.hard, settings.key("HARD")).from_settings(settings)


def build_soft_strategy(settings, kind):
    """The soft strategy named by ``settings.soft`` for a ``kind`` ("sigmoid"/"softmax") classifier."""
    key = settings.key("SOFT")
    strategy = soft_strategy_class(settings.soft, key)
    if kind not in strategy.kinds:
        raise ValueError(f"{key}: {settings.soft!r} needs a {'/'.join(strategy.kinds)} classifier; "
                         f"this stage's classifier is {kind}")
    return strategy.from_settings(settings, kind)


def foreground_count(labels):
    """Number of foreground samples over a list of per-image labels."""
    return sum(int((labels_per_image > 0).sum()) for labels_per_image in labels)
