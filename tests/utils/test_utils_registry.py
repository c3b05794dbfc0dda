import pytest

from maskrcnn_benchmark.utils.registry import Registry


def test_register_as_call_and_as_decorator():
    registry = Registry()

    def build_a():
        return "a"

    assert registry.register("A", build_a) is build_a

    @registry.register("B")
    def build_b():
        return "b"

    assert build_b() == "b"  # the decorator hands back the function itself
    assert registry["A"] is build_a and registry["B"] is build_b
    assert isinstance(registry, dict) and sorted(registry) == ["A", "B"]


def test_initial_entries_and_duplicate_names_are_errors():
    registry = Registry({"R-50-FPN": len})
    with pytest.raises(KeyError, match="R-50-FPN"):
        registry.register("R-50-FPN", print)
    with pytest.raises(KeyError, match="R-50-FPN"):
        registry.register("R-50-FPN")(print)
    assert registry["R-50-FPN"] is len


def test_unknown_name_lists_the_known_ones():
    registry = Registry({"FPN2MLPFeatureExtractor": 1, "ResNet50Conv5ROIFeatureExtractor": 2})
    with pytest.raises(KeyError, match="FPN2MLP.*ResNet50Conv5"):
        registry["FPN3MLPFeatureExtractor"]
    assert registry.get("missing") is None
    assert "missing" not in registry
