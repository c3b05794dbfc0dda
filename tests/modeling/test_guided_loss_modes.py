"""The guided loss scaler's modes: the paper's eq. 23 (and delta's equilibrium), and the authors'
2020 and 2021 releases reproduced under their own names (the facts of each release are in
modeling/sampling_free/guided_loss.py); the old name "ratio_frozen" still works, deprecated."""
import math
import warnings

import pytest
import torch
from gloo_group import run_in_gloo_group

from maskrcnn_benchmark.config import cfg as default_cfg
from maskrcnn_benchmark.modeling.sampling_free import GuidedLossScaler, stage_settings


def scaler(mode, stage="ONE_STAGE", **kwargs):
    return GuidedLossScaler("head", mode=mode, stage=stage, **kwargs).train()


@pytest.mark.parametrize("stage,factor", [("ONE_STAGE", 1.0), ("RPN", 1.0), ("ROI", 2.0)])
def test_release_2020_is_the_ratio_with_a_factor_2_on_the_roi_head(stage, factor):
    module = scaler("release_2020", stage)
    loss_cls = torch.tensor(4.0, requires_grad=True)
    scaled, extras = module(loss_cls, torch.tensor(0.5))
    assert scaled.item() == pytest.approx(0.5 * factor)  # (0.5 / 4) * 4 * factor
    scaled.backward()
    assert loss_cls.grad.item() == pytest.approx(0.125 * factor)  # the ratio is a constant
    assert list(module.parameters()) == [] and "loss_head_log_delta" not in extras


@pytest.mark.parametrize("stage,factor", [("RPN", 1.0), ("ROI", 2.0)])
def test_release_2021_two_stage_heads_scale_by_the_batch_ratio_without_uncertainties(stage, factor):
    module = scaler("release_2021", stage, ratio_warmup_iters=2)
    for loss_cls, loss_loc in ((4.0, 0.5), (2.0, 1.0), (1.0, 3.0)):  # never frozen
        scaled, _ = module(torch.tensor(loss_cls), torch.tensor(loss_loc))
        assert scaled.item() == pytest.approx(loss_loc * factor)
    losses = {"loss_cls": torch.tensor(1.0), "loss_reg": torch.tensor(2.0)}
    assert module.reweight(losses) is losses
    assert list(module.parameters()) == []


def test_release_2021_one_stage_ratio_follows_the_batch_then_freezes():
    module = scaler("release_2021", num_loss_terms=3, ratio_warmup_iters=3)
    # ratio = mean(L_loc, L_quality) / L_cls
    batches = [(4.0, 1.0, 3.0), (2.0, 1.0, 1.0), (1.0, 0.5, 1.5), (8.0, 1.0, 1.0), (3.0, 9.0, 9.0)]
    ratios = []
    for loss_cls, loss_loc, loss_quality in batches:
        _, extras = module(torch.tensor(loss_cls), torch.tensor(loss_loc), (torch.tensor(loss_quality),))
        ratios.append(extras["sf_head_g"].item())
    assert ratios[:3] == pytest.approx([0.5, 0.5, 1.0])  # the current batch's during the warm-up
    assert ratios[3:] == pytest.approx([1.0, 1.0])  # frozen at the last warm-up batch's
    assert int(module.ratio_count) == 3

    restored = scaler("release_2021", num_loss_terms=3, ratio_warmup_iters=3)
    restored.load_state_dict(module.state_dict())
    _, extras = restored(torch.tensor(5.0), torch.tensor(1.0), (torch.tensor(1.0),))
    assert extras["sf_head_g"].item() == pytest.approx(1.0)


def test_release_2021_weighs_every_loss_by_a_learned_uncertainty():
    module = scaler("release_2021", num_loss_terms=3)
    with torch.no_grad():
        module.sigmas.copy_(torch.tensor([1.0, 2.0, 0.5]))
    losses = {"loss_cls": torch.tensor(3.0), "loss_reg": torch.tensor(2.0), "loss_centerness": torch.tensor(1.0)}
    weighted = module.reweight(losses)
    assert weighted["loss_cls"].item() == pytest.approx(3.0 / 2)
    assert weighted["loss_reg"].item() == pytest.approx(2.0 / 8)
    assert weighted["loss_centerness"].item() == pytest.approx(1.0 / 0.5)
    assert weighted["loss_head_log_sigma"].item() == pytest.approx(math.log(1.0 * 2.0 * 0.5))
    # d/dsigma [L / (2 sigma^2) + log sigma] = 0 at sigma^2 = L: descending it learns each loss' scale
    total = sum(v for k, v in weighted.items() if k.startswith("loss"))
    total.backward()
    expected = [-loss / s ** 3 + 1 / s for loss, s in zip((3.0, 2.0, 1.0), (1.0, 2.0, 0.5))]
    assert module.sigmas.grad.tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="built for 3"):
        module.reweight({"loss_cls": torch.tensor(1.0), "loss_reg": torch.tensor(1.0)})


def test_release_2021_on_a_dense_head_learns_one_sigma_per_loss():
    from maskrcnn_benchmark.modeling.rpn.atss import build_atss

    cfg = default_cfg.clone()
    cfg.MODEL.ATSS.NUM_CONVS = 1
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.GUIDED = "release_2021"
    module = build_atss(cfg, 32)
    assert module.loss_scaler.sigmas.shape == (3,)
    assert "loss_scaler.sigmas" in module.state_dict()
    losses = module.scaled_losses("loss_cls", torch.tensor(2.0), "loss_reg", torch.tensor(1.0),
                                  loss_centerness=torch.tensor(0.5))
    assert losses["loss_cls"].item() == pytest.approx((0.75 / 2.0) * 2.0 / 2)  # ratio (1 + 0.5) / 2 / 2
    assert losses["loss_reg"].item() == pytest.approx(0.5) and losses["loss_centerness"].item() == pytest.approx(0.25)
    assert losses["loss_atss_log_sigma"].item() == 0.0


def _freeze_in_group(rank, world_size):
    module = scaler("release_2021", ratio_warmup_iters=2)
    loss_loc = {0: 1.0, 1: 3.0}[rank]  # ratios 1 and 3 at the last warm-up iteration
    seen = []
    for _ in range(3):
        _, extras = module(torch.tensor(1.0), torch.tensor(loss_loc))
        seen.append(extras["sf_head_g"].item())
    return seen


def test_release_2021_freezes_the_ratio_averaged_over_processes(tmp_path):
    seen = run_in_gloo_group(_freeze_in_group, tmp_path)
    assert seen[0] == pytest.approx([1.0, 2.0, 2.0])  # own ratio, then the mean of 1 and 3
    assert seen[1] == pytest.approx([3.0, 2.0, 2.0])


def test_the_old_ratio_frozen_value_still_works_as_ratio_warmup_mean():
    cfg = default_cfg.clone()
    cfg.MODEL.SAMPLING_FREE.ONE_STAGE.GUIDED = "ratio_frozen"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = stage_settings(cfg, "ONE_STAGE")
    assert settings.guided == "ratio_warmup_mean"
    assert any("MODEL.SAMPLING_FREE.ONE_STAGE.GUIDED" in str(w.message) and issubclass(w.category, FutureWarning)
               for w in caught)
    new = scaler("ratio_warmup_mean", ratio_warmup_iters=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        old = scaler("ratio_frozen", ratio_warmup_iters=2)
    for loss_cls, loss_loc in ((4.0, 1.0), (2.0, 1.0), (1.0, 5.0)):
        assert old(torch.tensor(loss_cls), torch.tensor(loss_loc))[0] == new(torch.tensor(loss_cls),
                                                                               torch.tensor(loss_loc))[0]


def test_delta_settles_at_one_over_the_localisation_loss():
    # Eq. 23 with constant losses: dL/d delta = g * L_cls - 1 / delta = L_loc - 1 / delta, so SGD
    # drives delta to 1 / L_loc and the scaled classification term g * delta * L_cls to 1.
    module = scaler("guided")
    optimizer = torch.optim.SGD(module.parameters(), lr=0.05)
    loss_cls, loss_loc = torch.tensor(6.0), torch.tensor(0.4)
    for _ in range(2000):
        scaled, extras = module(loss_cls, loss_loc)
        optimizer.zero_grad()
        (loss_loc + scaled + extras["loss_head_log_delta"]).backward()
        optimizer.step()
    assert module.delta.item() == pytest.approx(1 / 0.4, rel=1e-3)
    assert scaled.item() == pytest.approx(1.0, rel=1e-3)
