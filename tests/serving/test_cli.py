"""``lstm-zoo export`` and ``lstm-zoo train --export`` end to end, and the top-level API."""

from __future__ import annotations

import sys

import pytest

from lstm_zoo.cli import main


def test_top_level_api_is_lazy_and_callable():
    import subprocess

    code = ("import sys, lstm_zoo; assert 'tensorflow' not in sys.modules; "
            "assert callable(lstm_zoo.export); import lstm_zoo.serving.savedmodel; "
            "assert callable(lstm_zoo.export) and 'tensorflow' not in sys.modules; "
            "import lstm_zoo.serving; assert lstm_zoo.serving.export is lstm_zoo.export; "
            "assert all(callable(getattr(lstm_zoo, n)) for n in "
            "('train', 'evaluate', 'pull', 'load_pretrained', 'tune'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_export_command(tmp_path, registered_tiny, tiny_model, capsys):
    model_path = tmp_path / "model.keras"
    tiny_model.save(model_path)
    base = tmp_path / "serving"
    argv = ["export", registered_tiny, "--out", str(base), "--model", str(model_path),
            "--synthetic-samples", "--models-config"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"wrote {base / registered_tiny / '1'}" in out
    assert f"--model_base_path={base.resolve() / registered_tiny}" in out
    assert "--model_config_file=" in out and (base / "models.config").is_file()
    assert (base / registered_tiny / "1" / "assets.extra" / "tf_serving_warmup_requests").is_file()

    # the same version again without --force: one clear line, exit 1, nothing replaced
    assert main([*argv[:6], "--version", "1", "--synthetic-samples"]) == 1
    err = capsys.readouterr().err
    assert "version 1 of 'export-test-tiny' already exists" in err and "--force" in err
    assert main(["export", "--out", str(base), "--models-config"]) == 0  # config alone
    assert main(["export", "--out", str(base)]) == 1
    assert "NAME (a recipe) is required" in capsys.readouterr().err


def test_export_command_gpu_without_gpu(tmp_path, registered_tiny, tiny_model, capsys):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    tiny_model.save(tmp_path / "m.keras")
    code = main(["export", registered_tiny, "--out", str(tmp_path / "s"), "--model",
                 str(tmp_path / "m.keras"), "--device", "gpu"])
    assert code == 1
    assert "needs a visible GPU" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # trains, exports and verifies: three TensorFlow processes
def test_train_then_export(tmp_path, registered_tiny, capsys):
    """``lstm-zoo train RECIPE --export DIR``: the trained model lands in DIR/RECIPE/1, verified."""
    from lstm_zoo.serving.savedmodel import read_export_manifest

    code = main(["train", registered_tiny, "--epochs", "1", "--out", str(tmp_path / "run"),
                 "--export", str(tmp_path / "serving")])
    assert code == 0, capsys.readouterr().err
    version_dir = tmp_path / "serving" / registered_tiny / "1"
    assert f"exported {version_dir}" in capsys.readouterr().out
    manifest = read_export_manifest(version_dir)
    assert manifest["verification"]["max_abs_diff"]["forecast"] <= 1e-4
    assert manifest["sample_inputs"] == "recipe data"
