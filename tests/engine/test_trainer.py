"""The trainer and its hooks, with a tiny model that follows the detector contract (training: a
loss dict; eval: a list of BoxList): exact resume, NaN stop, logging, loss selection, autocast,
periodic evaluation, hook order and the Sampling-Free hooks."""
import json
import logging

import pytest
import torch
from torch.utils.data import DataLoader

from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.engine.inference import inference
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError, do_train, optimised_loss
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.checkpoint import Checkpointer

from toy_detection import SquaresDataset, ToyDetector, seed_everything, toy_cfg, toy_loader, train_toy



def test_resume_after_kill_gives_identical_weights(tmp_path):
    seed_everything(0)
    straight = train_toy(toy_cfg(tmp_path / "straight"), ToyDetector()).model

    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        train_toy(toy_cfg(tmp_path / "resumed"), ToyDetector(stop_at_call=6))  # killed in iteration 6
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_0000004.pth"
    seed_everything(123)  # a restarted process starts from other generator states
    resumed = train_toy(toy_cfg(tmp_path / "resumed"), ToyDetector()).model

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_final.pth"


def test_resume_without_rng_restore_would_differ(tmp_path):
    """Control for the test above: the data flips and dropout do depend on the RNG states."""
    seed_everything(0)
    straight = train_toy(toy_cfg(tmp_path / "straight"), ToyDetector()).model
    seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        train_toy(toy_cfg(tmp_path / "resumed"), ToyDetector(stop_at_call=6))
    checkpoint = tmp_path / "resumed" / "model_0000004.pth"
    data = torch.load(checkpoint, weights_only=True)
    data.pop("rng_states")
    torch.save(data, checkpoint)
    seed_everything(123)
    resumed = train_toy(toy_cfg(tmp_path / "resumed"), ToyDetector()).model
    assert not all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    cfg = toy_cfg(tmp_path, max_iter=8, checkpoint_period=2)
    seed_everything(0)
    with pytest.raises(NonFiniteLossError, match=r"iteration 3\b") as error:
        train_toy(cfg, ToyDetector(nan_at_call=3))
    assert "loss_cls=nan" in str(error.value) and "loss_reg=0." in str(error.value)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert not (tmp_path / "model_0000003.pth").exists() and not (tmp_path / "model_final.pth").exists()
    saved = torch.load(tmp_path / "model_0000002.pth", weights_only=True)
    assert saved["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_metrics_json_and_log_records(tmp_path, caplog):
    seed_everything(0)
    with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark.trainer"):
        train_toy(toy_cfg(tmp_path, 6, 0, "SOLVER.STEPS", (5,)), ToyDetector())
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    for key in ("loss", "loss_reg", "loss_cls", "sf_test_g", "sf_toy_cls_grad_norm", "time", "data", "lr",
                "max_mem_mb", "eta_seconds"):
        assert key in records[0], key
    # the lr each logged iteration used: base 0.05, linear warm-up from 1/3 over 2 iterations (iteration 2
    # runs at step 1 of it), x 0.1 from step 5 on (iteration 6)
    assert [r["lr"] for r in records] == pytest.approx([0.05 * (1 / 3 * 0.5 + 0.5), 0.05, 0.005])
    # one short console line per log period: losses, lr, times, eta, memory; no sf_* diagnostics
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iter: ")]
    assert [line.split()[1] for line in lines] == ["2/6", "4/6", "6/6"]
    assert all("sf_" not in line and "reg " in line and "cls " in line and "eta: " in line and "mem: " in line
               for line in lines)
    assert max(len(line) for line in lines) < 160
    assert records[-1]["loss"] == pytest.approx(records[-1]["loss_reg"] + records[-1]["loss_cls"], rel=0.3)
    assert (tmp_path / "model_final.pth").exists()
    assert list((tmp_path / "tensorboard").iterdir())


def test_only_loss_prefixed_entries_are_optimised():
    value = torch.tensor(2.0, requires_grad=True)
    total = optimised_loss({"loss_a": value * 3, "loss_b": value, "sf_g": value * 100})
    total.backward()
    assert total.item() == pytest.approx(8.0) and value.grad.item() == pytest.approx(4.0)
    with pytest.raises(KeyError, match="sf_g"):
        optimised_loss({"sf_g": value})


def test_bfloat16_autocast_trains_on_cpu(tmp_path):
    cfg = toy_cfg(tmp_path, max_iter=4, checkpoint_period=0)
    cfg.merge_from_list(["DTYPE", "bfloat16"])
    seed_everything(0)
    toy = ToyDetector()
    # the convolution runs in bfloat16 only if the trainer really entered autocast
    feature_dtypes = []
    toy.features[0].register_forward_hook(lambda module, inputs, output: feature_dtypes.append(output.dtype))
    model = train_toy(cfg, toy).model
    assert feature_dtypes and set(feature_dtypes) == {torch.bfloat16}
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.parameters())
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert all(r["loss"] == r["loss"] for r in records)


def test_inference_gathers_every_image_in_order(tmp_path, monkeypatch):
    import maskrcnn_benchmark.engine.inference as inference_module

    seen = {}

    def fake_evaluate(dataset, predictions, output_folder, **kwargs):
        seen.update(predictions=predictions, kwargs=kwargs)
        return "evaluated"

    monkeypatch.setattr(inference_module, "evaluate", fake_evaluate)
    dataset = SquaresDataset(size=5)
    loader = DataLoader(dataset, batch_size=2, collate_fn=BatchCollator(0))
    model = ToyDetector()
    result = inference(model, loader, "squares", iou_types=("bbox",), device="cpu", output_folder=str(tmp_path))
    assert result == "evaluated"
    assert len(seen["predictions"]) == 5 and not model.training
    assert all(isinstance(p, BoxList) and p.has_field("scores") for p in seen["predictions"])
    assert seen["kwargs"]["iou_types"] == ("bbox",)
    assert (tmp_path / "predictions.pth").exists()
    with pytest.raises(NotImplementedError, match="BBOX_AUG"):
        inference(model, loader, "squares", bbox_aug=True, device="cpu")


class _FakeResults(object):
    def __init__(self, ap):
        self.ap = ap

    def as_dict(self):
        return {"bbox/AP": self.ap}


def test_periodic_evaluation_every_test_period(tmp_path, monkeypatch):
    import maskrcnn_benchmark.engine.inference as inference_module

    calls = []

    def fake_evaluate(dataset, predictions, output_folder, **kwargs):
        calls.append(len(predictions))
        return _FakeResults(0.1 * len(calls)), []

    monkeypatch.setattr(inference_module, "evaluate", fake_evaluate)
    cfg = toy_cfg(tmp_path, max_iter=6, checkpoint_period=0)
    cfg.merge_from_list(["DATASETS.TEST", ("squares",)])
    model = ToyDetector()
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = Checkpointer(model, optimizer, scheduler, str(tmp_path), save_to_disk=True)
    val_loader = DataLoader(SquaresDataset(size=5), batch_size=2, collate_fn=BatchCollator(0))
    seed_everything(0)
    do_train(cfg, model, toy_loader(cfg), val_loader, optimizer, scheduler, checkpointer, torch.device("cpu"),
             0, 3, {"iteration": 0})
    assert calls == [5, 5]  # at iterations 3 and 6, every validation image
    assert model.training
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    evaluations = [(r["iteration"], r["val/bbox/AP"]) for r in records if "val/bbox/AP" in r]
    assert evaluations == [(3, pytest.approx(0.1)), (6, pytest.approx(0.2))]


class _Recorder(object):
    """A hook that records the stages it sees, and at after_backward whether the gradients are
    there and the weights still those before the step."""

    def __init__(self):
        self.calls = []
        self.trainer = None

    def before_train(self):
        self.calls.append(("before_train", self.trainer.iter))

    def before_step(self):
        self.calls.append(("before_step", self.trainer.iter))
        self._weights = self.trainer.model.box.weight.detach().clone()

    def after_backward(self):
        grad = self.trainer.model.box.weight.grad
        unchanged = torch.equal(self._weights, self.trainer.model.box.weight)
        self.calls.append(("after_backward", self.trainer.iter, grad is not None and bool(grad.abs().sum() > 0), unchanged))

    def after_step(self):
        changed = not torch.equal(self._weights, self.trainer.model.box.weight)
        self.calls.append(("after_step", self.trainer.iter, changed, self.trainer.model.box.weight.grad is None))

    def after_train(self):
        self.calls.append(("after_train", self.trainer.iter))


def test_hooks_see_each_stage_in_order_with_gradients_before_the_step(tmp_path):
    from maskrcnn_benchmark.engine.trainer import SimpleTrainer

    cfg = toy_cfg(tmp_path, 3, 0)
    model = ToyDetector()
    trainer = SimpleTrainer(model, toy_loader(cfg, start_iter=1), make_optimizer(cfg, model))
    recorder = _Recorder()
    trainer.register_hooks([recorder])
    trainer.train(1, 3)  # a resumed run: iterations 2 and 3
    assert recorder.calls == [
        ("before_train", 1),
        ("before_step", 2), ("after_backward", 2, True, True), ("after_step", 2, True, True),
        ("before_step", 3), ("after_backward", 3, True, True), ("after_step", 3, True, True),
        ("after_train", 3),
    ]
    assert set(trainer.last_loss_dict) == {"loss_reg", "loss_cls", "sf_test_g"}


def test_optimal_bias_hook_runs_on_a_fresh_start_only(tmp_path):
    options = ("MODEL.SAMPLING_FREE.ONE_STAGE.BIAS_INIT", "optimal", "MODEL.SAMPLING_FREE.SAMPLE_IMAGES", 12)
    seed_everything(0)
    model = ToyDetector(sampling_free=True, stop_at_call=4)
    with pytest.raises(KeyboardInterrupt):
        train_toy(toy_cfg(tmp_path, 6, 2, *options), model)
    # every image holds one object among the toy's 16 samples: pi = 1/16, bias = log(pi / (1 - pi))
    cache = json.loads((tmp_path / "sampling_free_counts.json").read_text())
    assert list(cache.values()) == [{"toy": [16.0 * 12, 12.0]}]
    saved_bias = torch.load(tmp_path / "model_0000002.pth", weights_only=True)["model"]["score.bias"]

    resumed = ToyDetector(sampling_free=True)
    with torch.no_grad():
        resumed.score.bias.fill_(7.0)  # what a re-measurement would overwrite
    trainer = train_toy(toy_cfg(tmp_path, 2, 2, *options), resumed)  # resumes at 2 of 2: no step
    assert trainer._hooks[0].applied == {}  # not measured again: the checkpoint's (trained) bias is kept
    assert torch.equal(resumed.score.bias.detach(), saved_bias)

    fresh = ToyDetector(sampling_free=True)
    trainer = train_toy(toy_cfg(tmp_path / "fresh", 1, 0, *options), fresh)
    assert trainer._hooks[0].applied["toy"]["pi"] == pytest.approx(1 / 16)


def test_diagnostics_reach_metrics_json_but_not_the_console(tmp_path, caplog):
    seed_everything(0)
    with caplog.at_level(logging.INFO, logger="maskrcnn_benchmark.trainer"):
        train_toy(toy_cfg(tmp_path, 2, 0), ToyDetector())
    record = json.loads((tmp_path / "metrics.json").read_text().splitlines()[-1])
    assert record["sf_test_g"] == pytest.approx(record["loss_reg"] / record["loss_cls"], rel=1e-4)
    assert record["sf_toy_cls_grad_norm"] > 0
    assert not any("sf_" in r.getMessage() for r in caplog.records)


def test_a_changed_schedule_applies_from_the_resumed_iteration(tmp_path):
    """Resuming with another BASE_LR / STEPS trains on the new schedule (the checkpoint only says
    where it is), as the resume rule states; unchanged, resume is exact (tests above)."""
    seed_everything(0)
    train_toy(toy_cfg(tmp_path, 4, 4), ToyDetector())
    resumed = toy_cfg(tmp_path, 8, 4, "SOLVER.BASE_LR", 0.02, "SOLVER.STEPS", (7,))
    trainer = train_toy(resumed, ToyDetector())
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [(r["iteration"], r["lr"]) for r in records] == [
        (2, pytest.approx(0.05 * (1 / 3 * 0.5 + 0.5))), (4, pytest.approx(0.05)),   # first run
        (6, pytest.approx(0.02)), (8, pytest.approx(0.002))]                        # new BASE_LR, step at 7
    groups = trainer.optimizer.param_groups
    assert {g["initial_lr"] for g in groups if not g["name"].endswith("bias")} == {0.02}


def test_an_error_before_training_is_not_masked_by_the_hooks_cleaning_up(tmp_path):
    """The bias counting fails (no foreground): that error surfaces, not a hook's after_train."""
    class NoForeground(ToyDetector):
        def labels_for_counting(self, target, image_size):
            return torch.zeros(16, dtype=torch.int64)

    cfg = toy_cfg(tmp_path, 2, 0, "MODEL.SAMPLING_FREE.ONE_STAGE.BIAS_INIT", "optimal")
    with pytest.raises(ValueError, match="gave no foreground"):
        train_toy(cfg, NoForeground(sampling_free=True))
