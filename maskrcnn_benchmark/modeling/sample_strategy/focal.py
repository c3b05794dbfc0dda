""""focal": the sigmoid focal loss of RetinaNet (down-weights easy samples by (1 - p_t)^gamma)."""
from maskrcnn_benchmark.layers.sigmoid_focal_loss import sigmoid_focal_loss

from .base import SIGMOID, SOFT_STRATEGIES, SoftStrategy


@SOFT_STRATEGIES.register("focal")
class FocalLoss(SoftStrategy):
    """``alpha`` weights the foreground terms (1 - alpha the background ones); samples labelled
    -1 contribute nothing. Computed by the compiled kernel."""

    kinds = (SIGMOID,)

    def __init__(self, kind=SIGMOID, gamma=2.0, alpha=0.25):
        super().__init__(kind)
        self.gamma = float(gamma)
        self.alpha = float(alpha)

    @classmethod
    def from_settings(cls, settings, kind):
        settings.options("SOFT", {})  # gamma and alpha are the head's LOSS_GAMMA / LOSS_ALPHA
        return cls(kind, settings.focal_gamma, settings.focal_alpha)

    def per_sample(self, logits, labels, context=None):
        return sigmoid_focal_loss(logits, labels, self.gamma, self.alpha).sum(dim=1)

    def forward(self, logits, labels, weights=None, context=None):
        if weights is not None:
            return super().forward(logits, labels, weights, context)
        return sigmoid_focal_loss(logits, labels, self.gamma, self.alpha).sum()

    def extra_repr(self):
        return f"kind={self.kind}, gamma={self.gamma}, alpha={self.alpha}"
