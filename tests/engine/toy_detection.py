"""A tiny detector that follows the detector contract (training: a loss dict; eval: a list of
BoxList), its data, config and the do_train call tools/train_net.py makes: the engine tests run the
real training loop in a fraction of a second per iteration."""
import math
import random

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.sampler import BatchSampler

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.data.collate_batch import BatchCollator
from maskrcnn_benchmark.data.samplers import DistributedSampler, IterationBasedBatchSampler
from maskrcnn_benchmark.engine.trainer import do_train
from maskrcnn_benchmark.modeling.sampling_free.head import SamplingFreeHead
from maskrcnn_benchmark.modeling.sampling_free.settings import StageSettings
from maskrcnn_benchmark.solver import make_lr_scheduler, make_optimizer
from maskrcnn_benchmark.structures.bounding_box import BoxList
from maskrcnn_benchmark.utils.checkpoint import Checkpointer


class SquaresDataset(Dataset):
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


class _InfiniteGradient(torch.autograd.Function):
    """Identity forward, infinite gradient backward: a finite loss whose step ruins the weights."""

    @staticmethod
    def forward(ctx, value):
        return value.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * math.inf


class ToyDetector(SamplingFreeHead):
    """Regresses the one box per image. Faults on chosen forward calls: ``nan_at_call`` makes the
    loss NaN, ``inf_grad_at_call`` keeps it finite but makes its gradient infinite,
    ``stop_at_call`` raises KeyboardInterrupt (a killed process).

    It is also a Sampling-Free head named "toy" (its score layer is the classification layer; 16
    samples per image, one foreground per box); with ``sampling_free`` it asks for the optimal bias."""

    def __init__(self, nan_at_call=None, stop_at_call=None, inf_grad_at_call=None, sampling_free=False):
        settings = StageSettings("ONE_STAGE", "all", "ce", bias_init="optimal" if sampling_free else "default")
        super().__init__("toy", settings, "sigmoid", 1)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.dropout = nn.Dropout(0.2)  # consumes torch's RNG during training
        self.box = nn.Linear(64, 4)
        self.score = nn.Linear(64, 1)
        self.calls = 0
        self.nan_at_call = nan_at_call
        self.stop_at_call = stop_at_call
        self.inf_grad_at_call = inf_grad_at_call

    def labels_for_counting(self, target, image_size):
        labels = torch.zeros(16, dtype=torch.int64)
        labels[: len(target)] = 1
        return labels

    def classification_layer(self):
        return self.score

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
            if self.inf_grad_at_call == self.calls:
                loss_cls = _InfiniteGradient.apply(loss_cls)
            # a diagnostic that must be logged but never optimised
            return {"loss_reg": loss_reg, "loss_cls": loss_cls, "sf_test_g": (loss_reg / loss_cls).detach()}
        results = []
        for box, score, size in zip(boxes, scores.sigmoid(), images.image_sizes):
            result = BoxList(box[None].detach(), (size[1], size[0]))
            result.add_field("scores", score[None].detach())
            result.add_field("labels", torch.tensor([1]))
            results.append(result)
        return results


def toy_cfg(output_dir, max_iter=8, checkpoint_period=4, *options):
    """The default config for the toy: lr 0.05 with a 2-iteration warm-up and a step at 6, batch 4,
    a log line every 2 iterations, then ``options`` (KEY value pairs)."""
    cfg = global_cfg.clone()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "SOLVER.BASE_LR", 0.05, "SOLVER.MAX_ITER", max_iter,
        "SOLVER.STEPS", (6,), "SOLVER.WARMUP_ITERS", 2, "SOLVER.IMS_PER_BATCH", 4,
        "SOLVER.CHECKPOINT_PERIOD", checkpoint_period, "SOLVER.LOG_PERIOD", 2, "OUTPUT_DIR", str(output_dir),
        *options,
    ])
    return cfg


def toy_loader(cfg, start_iter=0, dataset=None):
    dataset = SquaresDataset() if dataset is None else dataset
    sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=cfg.SEED)
    batches = IterationBasedBatchSampler(BatchSampler(sampler, 4, drop_last=False), cfg.SOLVER.MAX_ITER, start_iter)
    return DataLoader(dataset, batch_sampler=batches, collate_fn=BatchCollator(0), num_workers=0)


def train_toy(cfg, model, resume=True, data_loader_val=None, test_period=0):
    """What tools/train_net.py does around do_train (``resume``: from the folder's last
    checkpoint, which must fit exactly). Returns the trainer."""
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = Checkpointer(model, optimizer, scheduler, cfg.OUTPUT_DIR, save_to_disk=True)
    arguments = {"iteration": 0}
    if resume:
        arguments.update(checkpointer.load(match="exact"))
    loader = toy_loader(cfg, arguments["iteration"])
    return do_train(cfg, model, loader, data_loader_val, optimizer, scheduler, checkpointer, torch.device("cpu"),
                    cfg.SOLVER.CHECKPOINT_PERIOD, test_period, arguments)


def seed_everything(seed):
    random.seed(seed)
    torch.manual_seed(seed)
