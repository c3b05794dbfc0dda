"""SOLVER.CLIP_GRADIENTS: the GradientClipping hook against hand-computed gradients, its config
checks, and a train_net run that logs the pre-clipping norm."""
import math
import os
from types import SimpleNamespace

import pytest
import torch
from helpers import SHAPES_CONFIGS, read_metrics

from maskrcnn_benchmark.engine.events import EventStorage
from maskrcnn_benchmark.engine.hooks import GradientClipping
from maskrcnn_benchmark.engine.launch import load_config
from maskrcnn_benchmark.solver import check_solver_config


def hooked(model, hook):
    hook.trainer = SimpleNamespace(model=model, storage=EventStorage())
    return hook


def two_parameter_model(first, second):
    """A module whose two parameters hold the given gradients (and one parameter without any)."""
    model = torch.nn.Module()
    model.a = torch.nn.Parameter(torch.zeros(len(first)))
    model.b = torch.nn.Parameter(torch.zeros(len(second)))
    model.unused = torch.nn.Parameter(torch.zeros(3))
    model.a.grad, model.b.grad = torch.tensor(first), torch.tensor(second)
    return model


def test_norm_clipping_rescales_all_gradients_together_to_the_limit():
    model = two_parameter_model([3.0, 0.0], [0.0, 4.0])  # L2 norm 5 over both
    hook = hooked(model, GradientClipping("norm", 2.5))
    hook.after_backward()
    torch.testing.assert_close(model.a.grad, torch.tensor([1.5, 0.0]))  # x 2.5 / 5, direction kept
    torch.testing.assert_close(model.b.grad, torch.tensor([0.0, 2.0]))
    assert model.unused.grad is None
    value, _ = hook.trainer.storage.latest()["grad_norm"]
    assert value == pytest.approx(5.0)


def test_norm_below_the_limit_is_left_alone_and_other_norms_are_used():
    model = two_parameter_model([3.0, 0.0], [0.0, -4.0])
    hook = hooked(model, GradientClipping("norm", 10.0, norm_type=1.0))  # L1 norm 7 < 10
    hook.after_backward()
    torch.testing.assert_close(model.b.grad, torch.tensor([0.0, -4.0]))
    assert hook.trainer.storage.latest()["grad_norm"][0] == pytest.approx(7.0)
    clipped = hooked(two_parameter_model([3.0, 0.0], [0.0, -4.0]), GradientClipping("norm", 3.5, norm_type=1.0))
    clipped.after_backward()
    torch.testing.assert_close(clipped.trainer.model.b.grad, torch.tensor([0.0, -2.0]))  # x 3.5 / 7


def test_value_clipping_clamps_every_entry():
    model = two_parameter_model([3.0, -0.5], [0.0, -4.0])
    hooked(model, GradientClipping("value", 1.0)).after_backward()
    torch.testing.assert_close(model.a.grad, torch.tensor([1.0, -0.5]))
    torch.testing.assert_close(model.b.grad, torch.tensor([0.0, -1.0]))


def test_off_by_default_and_bad_values_are_named_before_anything_is_written(train_net, tmp_path):
    assert GradientClipping.from_config(load_config(None, [])) is None
    hook = GradientClipping.from_config(load_config(None, ["SOLVER.CLIP_GRADIENTS.ENABLED", "True"]))
    assert (hook.clip_type, hook.clip_value, hook.norm_type) == ("norm", 35.0, 2.0)
    for key, value, culprit in (("CLIP_TYPE", "full_model", "CLIP_TYPE.*full_model"),
                                ("CLIP_VALUE", "0.0", "CLIP_VALUE.*> 0"),
                                ("NORM_TYPE", "-1.0", "NORM_TYPE.*> 0")):
        overrides = ["SOLVER.CLIP_GRADIENTS.ENABLED", "True", f"SOLVER.CLIP_GRADIENTS.{key}", value]
        with pytest.raises(ValueError, match=culprit):
            check_solver_config(load_config(None, overrides))
    output = tmp_path / "refused"
    with pytest.raises(ValueError, match="CLIP_VALUE"):
        train_net(output, "SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "-1.0")
    assert not output.exists()


def test_train_net_with_clipping_logs_the_norm_and_bounds_the_step(train_net, tmp_path):
    """Through tools/train_net.py: a limit far below the gradients' norm clips every step (the
    logged norm is the pre-clipping one, finite and above the limit)."""
    output = tmp_path / "run"
    train_net(output, "SOLVER.MAX_ITER", "4", "SOLVER.CLIP_GRADIENTS.ENABLED", "True",
              "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", "1e-3",
              config=os.path.join(SHAPES_CONFIGS, "retinanet_R-18-FPN_shapes_ghm.yaml"))
    norms = [record["grad_norm"] for record in read_metrics(output) if "grad_norm" in record]
    assert len(norms) == 2  # iterations 2 and 4
    assert all(math.isfinite(norm) and norm > 1e-3 for norm in norms)
