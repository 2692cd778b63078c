"""Bad input, each with a clear error; failed exports leave nothing a server could pick up."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lstm_zoo.serving.contract import ContractError, ServingContract
from lstm_zoo.serving.savedmodel import ExportError, export, list_versions


def _entries(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_base_dir_under_a_regular_file(tmp_path, tiny_recipe, tiny_model):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ExportError,
                       match=r"cannot create export folder .*file/serving/export-test-tiny: Not a"):
        export(tiny_model, blocker / "serving", recipe=tiny_recipe)
    assert blocker.read_text() == "not a folder"


def test_base_dir_not_writable(tmp_path, tiny_recipe, tiny_model, monkeypatch):
    # tests run as root, which may write anywhere: simulate a read-only mount
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode == os.W_OK
                        else real_access(p, mode, **kw))
    with pytest.raises(ExportError, match="is not writable"):
        export(tiny_model, tmp_path / "base", recipe=tiny_recipe)
    assert _entries(tmp_path) == []  # the folders it had made are removed again


def test_model_without_serving_contract(tmp_path, no_contract_recipe, tiny_model):
    with pytest.raises(ExportError, match="has no serving contract"):
        export(tiny_model, tmp_path, recipe=no_contract_recipe)
    assert _entries(tmp_path) == []


def test_no_gpu_for_gpu_export(tmp_path, tiny_recipe, tiny_model):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    with pytest.raises(ExportError, match="needs a visible GPU.*--device cpu"):
        export(tiny_model, tmp_path, recipe=tiny_recipe, device="gpu")
    with pytest.raises(ExportError, match="device must be one of cpu, gpu"):
        export(tiny_model, tmp_path, recipe=tiny_recipe, device="tpu")


@pytest.mark.parametrize("stage", ["savedmodel", "warmup"])
def test_failure_mid_write_leaves_nothing(tmp_path, tiny_recipe, tiny_model, monkeypatch, stage):
    """A crash while writing (half a SavedModel on disk) leaves no version and no temp dir."""
    import lstm_zoo.serving.savedmodel as export_module

    real_write = export_module._write_savedmodel

    def half_written(recipe, model, contract, out, device):
        paths = real_write(recipe, model, contract, out, device)
        assert out.name.startswith(".") and not out.name.isdigit()  # hidden temp dir
        (tmp_path / "seen").write_text(str(out))
        if stage == "savedmodel":
            os.truncate(out / "saved_model.pb", 10)
            raise OSError("disk full (simulated)")
        return paths

    def failing_warmup(*args, **kwargs):
        raise OSError("killed while writing warmup (simulated)")

    monkeypatch.setattr(export_module, "_write_savedmodel", half_written)
    if stage == "warmup":
        monkeypatch.setattr(export_module, "write_warmup", failing_warmup)
    with pytest.raises(OSError, match="simulated"):
        export(tiny_model, tmp_path / "base", recipe=tiny_recipe)
    assert (tmp_path / "seen").exists()
    assert not (tmp_path / "base").exists()  # no version, no temp dir, no folder it made


def test_stale_temp_dir_of_a_killed_export_is_ignored(tmp_path, tiny_recipe, tiny_model):
    """A process killed with SIGKILL cannot clean up: its hidden, non-numeric temp dir stays,
    and neither TF Serving (numeric versions only) nor the next export treats it as a version."""
    stale = tmp_path / "export-test-tiny" / ".1.abc123.tmp"
    stale.mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"partial")
    assert list_versions(tmp_path / "export-test-tiny") == []
    result = export(tiny_model, tmp_path, recipe=tiny_recipe, warmup=False)
    assert result.version == 1


def test_serving_function_output_keys_must_match_contract(tmp_path, tiny_recipe, tiny_model,
                                                          monkeypatch):
    monkeypatch.setattr(type(tiny_recipe), "serving_function",
                        lambda self, model: lambda inputs: {"output_0": model(inputs["history"])})
    with pytest.raises(ExportError, match=r"returned \['output_0'\].*\['forecast', 'spread'\]"):
        export(tiny_model, tmp_path, recipe=tiny_recipe)
    assert _entries(tmp_path / "export-test-tiny") == []


def test_sample_inputs_are_checked_against_the_contract(tmp_path, tiny_recipe, tiny_model):
    with pytest.raises(ContractError, match=r"dimension 2 must be 3"):
        export(tiny_model, tmp_path, recipe=tiny_recipe,
               sample_inputs={"history": np.zeros((2, 4, 5), np.float32)})
    with pytest.raises(ContractError, match=r"keys \['x'\].*\['history'\]"):
        export(tiny_model, tmp_path, recipe=tiny_recipe, sample_inputs={"x": np.zeros((2, 4, 3))})


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        ({"inputs": {"x": ("float32", (4, 3))}, "outputs": {"y": ("float32", (None,))}},
         "batch\\) dimension must be None"),
        ({"inputs": {"x": ("complex64", (None,))}, "outputs": {"y": ("float32", (None,))}},
         "dtype 'complex64'"),
        ({"inputs": {"bad key": ("float32", (None,))}, "outputs": {"y": ("float32", (None,))}},
         "not a valid signature name"),
        ({"inputs": {"x": "float32"}, "outputs": {"y": ("float32", (None,))}},
         "must be \\(dtype, shape\\)"),
        ({"inputs": {"x": ("float32", (None,))}}, "keys 'inputs' and 'outputs'"),
    ],
)
def test_contract_validation(contract, message):
    with pytest.raises(ContractError, match=message):
        ServingContract.from_mapping(contract)


def test_contract_accepts_tf_dtypes_and_makes_synthetic_inputs():
    import tensorflow as tf

    contract = ServingContract.from_mapping(
        {"inputs": {"text": (tf.string, (None,)), "audio": (tf.float32, [None, None])},
         "outputs": {"y": ("float32", (None,))}})
    made = contract.check_inputs(contract.synthetic_inputs(3, length=5))
    assert made["text"].shape == (3,) and isinstance(made["text"][0], bytes)
    assert made["audio"].shape == (3, 5) and made["audio"].dtype == np.float32
    assert np.abs(made["audio"]).max() <= 1


def test_embedded_samples_that_do_not_fit_fall_back_to_synthetic(tiny_recipe, tiny_model):
    """A model trained on other data (Beijing hourly) than the embedded default (Seattle daily):
    warmup/verification inputs come from the contract instead, and the manifest says why."""
    from lstm_zoo.serving.savedmodel import EMBEDDED_DEFAULT, _sample_inputs

    contract = ServingContract.from_mapping(
        {"inputs": {"history": ("float32", (None, 7, 3))}, "outputs": {"y": ("float32", (None,))}})
    inputs, source = _sample_inputs(tiny_recipe, tiny_model, contract, EMBEDDED_DEFAULT, None, 4)
    assert inputs["history"].shape == (4, 7, 3)
    assert source.startswith("synthetic (embedded data unusable") and "must be 7" in source
    with pytest.raises(ContractError, match="must be 7"):  # explicit data must fit
        _sample_inputs(tiny_recipe, tiny_model, contract, tiny_recipe.load(), None, 4)


@pytest.mark.slow
def test_export_command_uses_the_pretrained_model(tmp_path, capsys):
    """No --model: the pulled pretrained model (lstm_zoo.hub.pretrained) is exported."""
    from lstm_zoo.cli import main
    from lstm_zoo.hub import pretrained as hub

    if not any(row.get("name") == "weather" for row in hub.available()):
        pytest.skip("no published weather model in this checkout")
    assert main(["export", "weather", "--out", str(tmp_path), "--synthetic-samples"]) == 0
    assert "wrote " + str(tmp_path / "weather" / "1") in capsys.readouterr().out
    assert list_versions(tmp_path / "weather") == [1]
