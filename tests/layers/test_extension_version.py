"""maskrcnn_benchmark._C knows the torch it was compiled against and refuses another one."""
import pytest
import torch

from maskrcnn_benchmark import _C
from maskrcnn_benchmark.layers._ops import check_built_with


def test_the_loaded_extension_was_built_with_the_running_torch():
    major, minor = torch.__version__.split(".")[:2]
    assert _C.built_with_torch == f"{major}.{minor}"


@pytest.mark.parametrize("running", ["2.14.0", "2.14.1+cu130", "2.14.0a0+git1234"])
def test_patch_releases_and_local_tags_are_accepted(running):
    check_built_with(running, "2.14")


@pytest.mark.parametrize("running, built", [("2.15.0", "2.14"), ("2.11.0+cpu", "2.14"), ("3.14.0", "2.14")])
def test_another_release_is_refused_with_both_versions_named(running, built):
    with pytest.raises(ImportError, match=rf"compiled against torch {built} but torch {running.replace('+', '[+]')}"):
        check_built_with(running, built)


def test_an_extension_from_older_sources_is_refused():
    with pytest.raises(ImportError, match="older sources"):
        check_built_with(torch.__version__, None)
