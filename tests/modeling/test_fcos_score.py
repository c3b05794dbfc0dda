"""FCOS reports sqrt(class probability x centerness), as the official FCOS code does."""
import torch

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.rpn.fcos.fcos import build_fcos
from maskrcnn_benchmark.structures.image_list import ImageList

CHANNELS = 32


def test_the_fcos_module_reports_the_geometric_mean_of_class_and_centerness():
    cfg = default_cfg.clone()
    cfg.MODEL.FCOS.NUM_CLASSES = 4
    cfg.MODEL.FCOS.NUM_CONVS = 1
    module = build_fcos(cfg, CHANNELS).eval()
    generator = torch.Generator().manual_seed(0)
    features = [torch.randn(1, CHANNELS, 256 // s, 256 // s, generator=generator) for s in (8, 16, 32, 64, 128)]
    images = ImageList(torch.zeros(1, 3, 256, 256), [(256, 256)])
    with torch.no_grad():
        module.head.cls_logits.bias.fill_(-2.0)
        module.head.centerness.bias.fill_(-1.0)
        (results,), _ = module(images, features)
        box_cls, _, centerness = module.head(features)
    probs = torch.cat([c[0].permute(1, 2, 0).reshape(-1, 3) for c in box_cls]).sigmoid()
    ctr = torch.cat([c[0].permute(1, 2, 0).reshape(-1) for c in centerness]).sigmoid()
    candidates = probs > cfg.MODEL.FCOS.INFERENCE_TH
    expected = torch.sqrt(probs * ctr[:, None])[candidates]
    scores = results.get_field("scores")
    assert len(results) > 0
    assert torch.isclose(scores.max(), expected.max())
    # every reported score is one of the candidates' geometric means (none is the bare product)
    assert all(torch.isclose(expected, s).any() for s in scores)
