"""Checkpointer: atomic saves, the last_checkpoint pointer, corrupt files, RNG states, weight
sources (local path, file:// URL, catalog names) and state-dict alignment."""
import os
import random

import numpy as np
import pytest
import torch
from torch import nn

from maskrcnn_benchmark.config import cfg as global_cfg
from maskrcnn_benchmark.config.paths_catalog import ModelCatalog
from maskrcnn_benchmark.utils import checkpoint as checkpoint_module
from maskrcnn_benchmark.utils.checkpoint import (
    Checkpointer,
    DetectronCheckpointer,
    capture_rng_state,
    restore_rng_state,
)
from maskrcnn_benchmark.utils.model_serialization import align_and_update_state_dicts, load_state_dict, strip_prefix_if_present
from maskrcnn_benchmark.utils.model_zoo import cache_url


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def _same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_save_load_round_trip_with_optimizer_scheduler_and_extras(tmp_path):
    model = _model(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    scheduler.step()
    Checkpointer(model, optimizer, scheduler, str(tmp_path), save_to_disk=True).save("model_0000001", iteration=1)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"

    restored = _model(1)
    optimizer2 = torch.optim.SGD(restored.parameters(), lr=0.5, momentum=0.9)
    scheduler2 = torch.optim.lr_scheduler.StepLR(optimizer2, 2)
    extra = Checkpointer(restored, optimizer2, scheduler2, str(tmp_path)).load()
    assert extra == {"iteration": 1}
    assert _same_weights(model, restored)
    assert optimizer2.param_groups[0]["lr"] == pytest.approx(0.1)
    assert scheduler2.last_epoch == 1
    momentum = optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert torch.equal(optimizer2.state_dict()["state"][0]["momentum_buffer"], momentum)


def test_no_checkpoint_gives_empty_extras(tmp_path):
    checkpointer = Checkpointer(_model(0), save_dir=str(tmp_path))
    assert not checkpointer.has_checkpoint()
    assert checkpointer.load() == {}


def test_save_interrupted_before_rename_keeps_old_checkpoint_and_pointer(tmp_path, monkeypatch):
    model = _model(0)
    checkpointer = Checkpointer(model, save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_0000002", iteration=2)
    old_bytes = (tmp_path / "model_0000002.pth").read_bytes()

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    with torch.no_grad():
        model[0].weight.add_(1.0)
    monkeypatch.setattr(checkpoint_module.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        checkpointer.save("model_0000002", iteration=4)  # overwriting the same name
    with pytest.raises(OSError, match="simulated crash"):
        checkpointer.save("model_0000004", iteration=4)
    monkeypatch.undo()

    assert (tmp_path / "model_0000002.pth").read_bytes() == old_bytes
    assert not (tmp_path / "model_0000004.pth").exists()
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000002.pth"]  # no temp files left
    extra = Checkpointer(_model(5), save_dir=str(tmp_path)).load()
    assert extra["iteration"] == 2


def test_pointer_written_only_after_the_checkpoint(tmp_path, monkeypatch):
    """A crash while updating the pointer leaves it naming the previous, complete checkpoint."""
    checkpointer = Checkpointer(_model(0), save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_a", iteration=1)
    real_replace = os.replace

    def crash_on_pointer(src, dst):
        if os.path.basename(dst) == "last_checkpoint":
            raise OSError("simulated crash while tagging")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "replace", crash_on_pointer)
    with pytest.raises(OSError):
        checkpointer.save("model_b", iteration=2)
    monkeypatch.undo()
    assert (tmp_path / "last_checkpoint").read_text() == "model_a.pth"
    assert Checkpointer(_model(1), save_dir=str(tmp_path)).load()["iteration"] == 1


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    checkpointer = Checkpointer(_model(0), save_dir=str(tmp_path), save_to_disk=True)
    checkpointer.save("model_final", iteration=3)
    path = tmp_path / "model_final.pth"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RuntimeError, match="model_final.pth.*truncated"):
        Checkpointer(_model(1), save_dir=str(tmp_path)).load()
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        Checkpointer(_model(1)).load(str(tmp_path / "nowhere.pth"), use_latest=False)


def test_rng_state_round_trip_through_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    state = capture_rng_state()
    torch.save({"rng": state}, tmp_path / "rng.pth")
    expected = (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist())

    random.seed(10), np.random.seed(20), torch.manual_seed(30)
    restore_rng_state(torch.load(tmp_path / "rng.pth", weights_only=True)["rng"])
    assert (random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()) == expected


def test_state_dict_alignment_by_suffix_and_report():
    model_state = {"backbone.body.conv.weight": torch.zeros(2, 2), "backbone.body.conv.bias": torch.zeros(2),
                   "head.cls.weight": torch.zeros(3, 2)}
    loaded = {"body.conv.weight": torch.ones(2, 2), "conv.bias": torch.ones(2),
              "head.cls.weight": torch.ones(5, 2), "fc.weight": torch.ones(1)}
    report = align_and_update_state_dicts(model_state, loaded)
    assert torch.equal(model_state["backbone.body.conv.weight"], torch.ones(2, 2))
    assert torch.equal(model_state["backbone.body.conv.bias"], torch.ones(2))
    assert torch.equal(model_state["head.cls.weight"], torch.zeros(3, 2))  # shape conflict: kept
    assert report["missing"] == ["head.cls.weight"]
    assert report["unexpected"] == ["fc.weight"]
    assert "head.cls.weight" in report["mismatched"][0]


def test_strip_prefix_and_load_ddp_style_state_dict():
    source, target = _model(0), _model(1)
    wrapped = {"module." + k: v for k, v in source.state_dict().items()}
    assert list(strip_prefix_if_present(wrapped, "module.")) == list(source.state_dict())
    mixed = dict(wrapped, other=torch.zeros(1))
    assert strip_prefix_if_present(mixed, "module.") is mixed
    load_state_dict(target, wrapped)
    assert _same_weights(source, target)


def test_cache_url_downloads_once_from_file_url(tmp_path):
    source = tmp_path / "src" / "weights.pth"
    source.parent.mkdir()
    source.write_bytes(b"0123456789" * 1000)
    cache = tmp_path / "cache"
    cached = cache_url(source.as_uri(), model_dir=str(cache), progress=False)
    assert cached == str(cache / "weights.pth")
    assert open(cached, "rb").read() == source.read_bytes()
    source.unlink()  # the second call must reuse the cached file
    assert cache_url(source.as_uri(), model_dir=str(cache), progress=False) == cached
    with pytest.raises(RuntimeError, match="missing.pth"):
        cache_url((tmp_path / "missing.pth").as_uri(), model_dir=str(cache), progress=False)


def test_cache_url_default_folder_follows_torch_home(tmp_path, monkeypatch):
    source = tmp_path / "w.bin"
    source.write_bytes(b"abc")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    assert cache_url(source.as_uri(), progress=False) == str(tmp_path / "home" / "models" / "w.bin")


def test_detectron_checkpointer_loads_plain_state_dict_from_file_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    source = _model(0)
    torch.save(source.state_dict(), tmp_path / "plain.pth")
    target = _model(1)
    extra = DetectronCheckpointer(global_cfg, target).load((tmp_path / "plain.pth").as_uri(), use_latest=False)
    assert extra == {}
    assert _same_weights(source, target)


def test_catalog_names_resolve_and_unknown_names_are_named():
    assert ModelCatalog.get("ImageNetPretrained/MSRA/R-50").endswith("/ImageNetPretrained/MSRA/R-50.pkl")
    assert ModelCatalog.get("ImageNetPretrained/FAIR/20171220/X-101-32x8d").endswith("X-101-32x8d.pkl")
    with pytest.raises(KeyError, match="MSRA/R-999"):
        DetectronCheckpointer(global_cfg, _model(0)).load("catalog://ImageNetPretrained/MSRA/R-999", use_latest=False)


def test_every_catalog_weight_named_by_a_config_resolves():
    import glob
    import re as regex

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    names = set()
    for path in glob.glob(os.path.join(root, "configs", "**", "*.yaml"), recursive=True):
        names.update(regex.findall(r"catalog://([^\"'\s]+)", open(path).read()))
    for name in names:
        assert ModelCatalog.get(name).startswith("https://dl.fbaipublicfiles.com/detectron/"), name
