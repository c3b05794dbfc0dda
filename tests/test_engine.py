"""Training loop and inference with a tiny model that follows the detector contract (training:
a loss dict; eval: a list of BoxList): exact resume, NaN stop, logging, loss selection, autocast."""
import json
import random

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.sampler import BatchSampler

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.data.samplers import DistributedSampler, IterationBasedBatchSampler
from maskrcnn_benchmark.engine.inference import inference
from maskrcnn_benchmark.engine.trainer import NonFiniteLossError, do_train, optimised_loss
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.checkpoint import Checkpointer


class _SquaresDataset(Dataset):
    """A bright square on a dark 16x16 image; the target is its box. A random horizontal flip
    (python ``random``) makes the data depend on the RNG state, as real augmentation does."""

    def __init__(self, size=12):
        generator = torch.Generator().manual_seed(0)
        self.corners = torch.randint(0, 8, (size, 2), generator=generator)

    def __len__(self):
        return len(self.corners)

    def __getitem__(self, idx):
        x, y = self.corners[idx].tolist()
        image = torch.zeros(3, 16, 16)
        image[:, y:y + 8, x:x + 8] = 1.0
        box = torch.tensor([[x, y, x + 8, y + 8]], dtype=torch.float32)
        target = BoxList(box, (16, 16))
        if random.random() < 0.5:
            image = image.flip(-1)
            target = target.transpose(0)
        target.add_field("labels", torch.tensor([1]))
        return image, target, idx


class _ToyDetector(nn.Module):
    """Regresses the one box per image; ``nan_at_call`` makes the loss NaN on that forward call."""

    def __init__(self, nan_at_call=None, stop_at_call=None):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.dropout = nn.Dropout(0.2)  # consumes torch's RNG during training
        self.box = nn.Linear(64, 4)
        self.score = nn.Linear(64, 1)
        self.calls = 0
        self.nan_at_call = nan_at_call
        self.stop_at_call = stop_at_call

    def forward(self, images, targets=None):
        self.calls += 1
        if self.stop_at_call == self.calls:
            raise KeyboardInterrupt("simulated kill")
        features = self.dropout(self.features(images.tensors))
        boxes = self.box(features) * 16
        scores = self.score(features).squeeze(1)
        if self.training:
            gt = torch.stack([t.bbox[0] for t in targets])
            loss_reg = nn.functional.smooth_l1_loss(boxes, gt) / 16
            loss_cls = nn.functional.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))
            if self.nan_at_call == self.calls:
                loss_cls = loss_cls * float("nan")
            # a diagnostic that must be logged but never optimised
            return {"loss_reg": loss_reg, "loss_cls": loss_cls, "sf_test_g": (loss_reg / loss_cls).detach()}
        results = []
        for box, score, size in zip(boxes, scores.sigmoid(), images.image_sizes):
            result = BoxList(box[None].detach(), (size[1], size[0]))
            result.add_field("scores", score[None].detach())
            result.add_field("labels", torch.tensor([1]))
            results.append(result)
        return results


def _cfg(output_dir, max_iter=8, checkpoint_period=4):
    cfg = global_cfg.clone()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "SOLVER.BASE_LR", 0.05, "SOLVER.MAX_ITER", max_iter,
        "SOLVER.STEPS", (6,), "SOLVER.WARMUP_ITERS", 2, "SOLVER.IMS_PER_BATCH", 4,
        "SOLVER.CHECKPOINT_PERIOD", checkpoint_period, "SOLVER.LOG_PERIOD", 2, "OUTPUT_DIR", str(output_dir),
    ])
    return cfg


def _loader(cfg, start_iter=0):
    dataset = _SquaresDataset()
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=cfg.SEED)
    batches = IterationBasedBatchSampler(BatchSampler(sampler, 4, drop_last=False), cfg.SOLVER.MAX_ITER, start_iter)
    return DataLoader(dataset, batch_sampler=batches, collate_fn=BatchCollator(0), num_workers=0)


def _train(cfg, model, resume=True):
    """What tools/train_net.py does around do_train."""
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = Checkpointer(model, optimizer, scheduler, cfg.OUTPUT_DIR, save_to_disk=True)
    arguments = {"iteration": 0}
    if resume:
        arguments.update(checkpointer.load())
    loader = _loader(cfg, arguments["iteration"])
    do_train(cfg, model, loader, None, optimizer, scheduler, checkpointer, torch.device("cpu"),
             cfg.SOLVER.CHECKPOINT_PERIOD, 0, arguments)
    return model


def _seed_everything(seed):
    random.seed(seed)
    torch.manual_seed(seed)


def test_resume_after_kill_gives_identical_weights(tmp_path):
    _seed_everything(0)
    straight = _train(_cfg(tmp_path / "straight"), _ToyDetector())

    _seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        _train(_cfg(tmp_path / "resumed"), _ToyDetector(stop_at_call=6))  # killed in iteration 6
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_0000004.pth"
    _seed_everything(123)  # a restarted process starts from other generator states
    resumed = _train(_cfg(tmp_path / "resumed"), _ToyDetector())

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert (tmp_path / "resumed" / "last_checkpoint").read_text() == "model_final.pth"


def test_resume_without_rng_restore_would_differ(tmp_path):
    """Control for the test above: the data flips and dropout do depend on the RNG states."""
    _seed_everything(0)
    straight = _train(_cfg(tmp_path / "straight"), _ToyDetector())
    _seed_everything(0)
    with pytest.raises(KeyboardInterrupt):
        _train(_cfg(tmp_path / "resumed"), _ToyDetector(stop_at_call=6))
    checkpoint = tmp_path / "resumed" / "model_0000004.pth"
    data = torch.load(checkpoint, weights_only=True)
    data.pop("rng_states")
    torch.save(data, checkpoint)
    _seed_everything(123)
    resumed = _train(_cfg(tmp_path / "resumed"), _ToyDetector())
    assert not all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    cfg = _cfg(tmp_path, max_iter=8, checkpoint_period=2)
    _seed_everything(0)
    with pytest.raises(NonFiniteLossError, match=r"iteration 3\b") as error:
        _train(cfg, _ToyDetector(nan_at_call=3))
    assert "loss_cls=nan" in str(error.value) and "loss_reg=0." in str(error.value)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert not (tmp_path / "model_0000003.pth").exists() and not (tmp_path / "model_final.pth").exists()
    saved = torch.load(tmp_path / "model_0000002.pth", weights_only=True)
    assert saved["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_metrics_json_and_log_records(tmp_path):
    _seed_everything(0)
    _train(_cfg(tmp_path, max_iter=6, checkpoint_period=0), _ToyDetector())
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [2, 4, 6]
    for key in ("loss", "loss_reg", "loss_cls", "sf_test_g", "time", "data", "lr", "max_mem_mb", "eta_seconds"):
        assert key in records[0], key
    # lr at the logged iteration follows the schedule: base 0.05, warm-up over 2 iterations, step at 6
    assert records[1]["lr"] == pytest.approx(0.05) and records[2]["lr"] == pytest.approx(0.005)
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
    cfg = _cfg(tmp_path, max_iter=4, checkpoint_period=0)
    cfg.merge_from_list(["DTYPE", "bfloat16"])
    _seed_everything(0)
    model = _train(cfg, _ToyDetector())
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
    dataset = _SquaresDataset(size=5)
    loader = DataLoader(dataset, batch_size=2, collate_fn=BatchCollator(0))
    model = _ToyDetector()
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
    cfg = _cfg(tmp_path, max_iter=6, checkpoint_period=0)
    cfg.merge_from_list(["DATASETS.TEST", ("squares",)])
    model = _ToyDetector()
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = Checkpointer(model, optimizer, scheduler, str(tmp_path), save_to_disk=True)
    val_loader = DataLoader(_SquaresDataset(size=5), batch_size=2, collate_fn=BatchCollator(0))
    _seed_everything(0)
    do_train(cfg, model, _loader(cfg), val_loader, optimizer, scheduler, checkpointer, torch.device("cpu"),
             0, 3, {"iteration": 0})
    assert calls == [5, 5]  # at iterations 3 and 6, every validation image
    assert model.training
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    evaluations = [(r["iteration"], r["val/bbox/AP"]) for r in records if "val/bbox/AP" in r]
    assert evaluations == [(3, pytest.approx(0.1)), (6, pytest.approx(0.2))]
