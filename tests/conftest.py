"""Shared pytest settings (the ``slow`` marker: training runs; CI runs them too) and fixtures."""
import contextlib
import os

import pytest
import torch


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains a model for up to a few minutes on CPU")
    # pycocotools (not us) passes copy=False to numpy 2 on every mask decode: thousands of lines of noise
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(autouse=True)
def grad_mode_is_left_as_found():
    """A test (or an in-process tool main) that switches autograd off globally breaks every later
    test that trains; restore the mode and fail the test that leaked it."""
    yield
    if not torch.is_grad_enabled():
        torch.set_grad_enabled(True)
        pytest.fail("the test left autograd disabled (torch.set_grad_enabled(False) without restoring)")


@contextlib.contextmanager
def torch_threads(count):
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test, as the measured timings and numbers in docstrings were."""
    with torch_threads(1):
        yield


@pytest.fixture
def two_threads():
    """Torch on two threads (kernels that split their work across threads)."""
    with torch_threads(2):
        yield


@pytest.fixture(scope="module")
def shapes_train(tmp_path_factory):
    """The "shapes_train" split of the catalog, generated under a temporary data root (once per
    test module); test-time transforms (no random flip), which every shapes config shares."""
    # Imported here so that collecting the other tests does not depend on the data pipeline.
    from helpers import shapes_cfg
    from maskrcnn_benchmark.config.paths_catalog import DatasetCatalog
    from maskrcnn_benchmark.data.build import build_dataset
    from maskrcnn_benchmark.data.transforms import build_transforms

    cfg = shapes_cfg("retinanet_R-18-FPN_shapes.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MASKRCNN_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        return build_dataset(["shapes_train"], build_transforms(cfg, is_train=False), DatasetCatalog, True)[0]


@pytest.fixture(scope="session")
def train_net_data_dir(tmp_path_factory):
    """Where in-process train_net runs generate the shapes dataset (once per session)."""
    return str(tmp_path_factory.mktemp("train_net_data"))


@pytest.fixture
def train_net(train_net_data_dir, monkeypatch, one_thread):
    """``train_net(output_dir, *overrides, flags=(), config=<shapes RetinaNet>)``: tools/train_net.py's
    main in this process, a few iterations on the CPU (see helpers.short_train_net_argv)."""
    from helpers import SHAPES_CONFIGS, ROOT, short_train_net_argv

    monkeypatch.setenv("MASKRCNN_DATA_DIR", train_net_data_dir)
    monkeypatch.syspath_prepend(os.path.join(ROOT, "tools"))
    import train_net as tool

    def run(output_dir, *overrides, flags=(), config=os.path.join(SHAPES_CONFIGS, "retinanet_R-18-FPN_shapes.yaml")):
        tool.main(short_train_net_argv(config, output_dir, *overrides, flags=flags))

    return run
