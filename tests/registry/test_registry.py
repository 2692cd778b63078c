"""The model registry: registration, lookup, wildcards, errors naming origins and matches."""

from __future__ import annotations

import pytest

from lstm_zoo import registry
from lstm_zoo.errors import DuplicateNameError, UnknownNameError


@pytest.fixture
def scratch_names():
    created: list[str] = []
    yield created
    for name in created:
        registry.unregister(name)


def _register(name, scratch_names, **meta):
    scratch_names.append(name)
    meta.setdefault("task", "testing")
    meta.setdefault("description", "a test model")

    @registry.register_model(name, **meta)
    def build(units: int = 3, depth: int = 1):
        return {"units": units, "depth": depth}

    return build


def test_register_get_and_info(scratch_names):
    _register("zz-test-alpha", scratch_names, inputs="x [B,T,1]", outputs="y [B]")
    assert registry.get_model("zz-test-alpha") == {"units": 3, "depth": 1}
    assert registry.get_model("zz-test-alpha", units=7) == {"units": 7, "depth": 1}
    info = registry.model_info("zz-test-alpha")
    assert info["default_hparams"] == {"units": 3, "depth": 1}
    assert info["task"] == "testing" and info["inputs"] == "x [B,T,1]"
    assert "test_registry" in info["origin"]


def test_list_models_wildcards_task_and_pretrained(scratch_names):
    _register("zz-test-b", scratch_names, task="t1")
    _register("zz-test-a", scratch_names, task="t2", pretrained=["1"])
    assert registry.list_models("zz-test-*") == ["zz-test-a", "zz-test-b"]
    assert registry.list_models("zz-test-*", task="t1") == ["zz-test-b"]
    assert registry.list_models("zz-test-*", pretrained=True) == ["zz-test-a"]
    assert registry.list_models("zz-test-*", pretrained=False) == ["zz-test-b"]
    assert registry.list_models("nothing-like-this*") == []


def test_unknown_name_suggests_closest(scratch_names):
    _register("zz-test-forecaster", scratch_names)
    with pytest.raises(UnknownNameError, match="zz-test-forecaster"):
        registry.get_model("zz-test-forecastr")


def test_duplicate_names_both_origins(scratch_names):
    _register("zz-test-dup", scratch_names)
    with pytest.raises(DuplicateNameError) as err:

        @registry.register_model("zz-test-dup", task="t", description="d")
        def other():
            return None

    message = str(err.value)
    assert message.count("test_registry") == 2 and "other" in message


def test_unknown_override_lists_accepted(scratch_names):
    _register("zz-test-hp", scratch_names)
    with pytest.raises(TypeError, match="units, depth"):
        registry.get_model("zz-test-hp", widht=3)
