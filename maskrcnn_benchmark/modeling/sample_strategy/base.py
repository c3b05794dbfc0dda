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
    (``samples x classes``) / the per-sample loss (classification + localisation), computed by the
    head without gradient on every candidate. ``classification_losses``: the same, classification
    only. ``predicted_boxes``: a callable ``(classes per image) -> per image samples x 4``, each
    candidate's decoded box prediction for the given class (int64 per sample). They are evaluated
    only when a strategy calls them (the head runs its forward once for all of them); None where
    the head cannot provide them (the dense heads and the RPN).
    """

    labels: List[torch.Tensor]
    ious: Optional[List[torch.Tensor]] = None
    scores: Optional[Callable[[], List[torch.Tensor]]] = None
    losses: Optional[Callable[[], List[torch.Tensor]]] = None
    classification_losses: Optional[Callable[[], List[torch.Tensor]]] = None
    predicted_boxes: Optional[Callable[[List[torch.Tensor]], List[torch.Tensor]]] = None

    def require(self, name, strategy):
        """``getattr(self, name)``, or an error naming the strategy that needs it."""
        value = getattr(self, name)
        if value is None:
            raise ValueError(f"hard strategy {strategy!r} needs the candidates' {name}, which this head does not "
                             "give (only the RoI box head scores its candidates)")
        return value


@dataclass
class Selection:
    """A hard strategy's answer: per image a bool mask of the trained samples, and the two
    divisors (>= 1) of the summed classification and localisation losses.

    ``weights`` (optional): per image, one classification-loss weight per candidate (only the
    trained ones are used), for strategies that sample and weight at once (ISR-N); None means
    weight 1 for every sample."""

    masks: List[torch.Tensor]
    cls_normalizer: float
    loc_normalizer: float
    weights: Optional[List[torch.Tensor]] = None


@dataclass
class TrainedSamples:
    """The ``context`` the RoI box head gives its soft strategy, one entry per trained sample.

    ``ious``: each sample's (proposal's) best IoU with the ground truth. ``ground_truth``: int64,
    the matched ground-truth box, numbered across the whole batch (-1 for background). And
    ``predicted_ious()``: the IoU of each sample's decoded box prediction (for its labelled class)
    with its ground-truth box (0 for background), computed on first call, without gradient.
    """

    ious: torch.Tensor
    ground_truth: torch.Tensor
    predicted_ious: Callable[[], torch.Tensor]


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
    # A strategy whose loss is already normalised as its method defines it (GHM-C: a mean over its
    # valid entries) sets this: the head then does not divide it by the hard strategy's divisor.
    normalises_itself = False

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


def built_from_options(settings, which, build):
    """``build()`` (a strategy made from its ``which`` = "HARD" / "SOFT" options), a ValueError it
    raises prefixed with the options key, e.g. ``MODEL.SAMPLING_FREE.ROI.HARD_OPTIONS: ...``."""
    try:
        return build()
    except ValueError as error:
        raise ValueError(f"{settings.key(which + '_OPTIONS')}: {error}") from None


def check_range(strategy, name, value, low, high, high_open=False):
    """``value`` as a float in [low, high] (or [low, high)), else a ValueError naming the option."""
    value = float(value)
    if not (low <= value and (value < high if high_open else value <= high)):
        raise ValueError(f"{strategy}: {name} must be in [{low}, {high}{')' if high_open else ']'}, got {value:g}")
    return value


def normalised_classification_loss(soft_strategy, logits, labels, divisor, weights=None, context=None):
    """The classification loss a head optimises: the soft strategy's summed loss over ``divisor()``
    (the hard strategy's divisor, a zero-argument callable, so that a cross-process divisor is only
    all-reduced when it is used), or, for a strategy that ``normalises_itself``, its own loss."""
    loss = soft_strategy(logits, labels, weights, context)
    return loss if soft_strategy.normalises_itself else loss / divisor()


def foreground_count(labels):
    """Number of foreground samples over a list of per-image labels."""
    return sum(int((labels_per_image > 0).sum()) for labels_per_image in labels)
