"""The SavedModel an export writes: layout, signature, manifest, portability, verification."""

from __future__ import annotations

import stat

import numpy as np
import pytest

from lstm_zoo.serving.savedmodel import (
    ExportError,
    export,
    list_versions,
    next_version,
    read_export_manifest,
    servable_models,
    write_models_config,
)
from lstm_zoo.serving.verify import (
    VerificationError,
    compare_outputs,
    cudnn_ops,
    graph_op_types,
)
from lstm_zoo.serving.warmup import read_warmup, warmup_path


def test_layout_is_servable_as_is(tiny_export):
    result, base = tiny_export
    assert result.path == base / "export-test-tiny" / "1"
    assert result.model_base_path == base / "export-test-tiny"
    for name in ("saved_model.pb", "variables", "assets.extra/lstm_zoo.json",
                 "assets.extra/tf_serving_warmup_requests"):
        assert (result.path / name).exists(), name
    # nothing else (no hidden temp dir) beside the version; everything readable by a server user
    assert [p.name for p in result.model_base_path.iterdir()] == ["1"]
    for path in [result.path, *result.path.rglob("*")]:
        assert path.stat().st_mode & stat.S_IROTH, path
    assert servable_models(base) == {"export-test-tiny": [1]}


def test_signature_names_keys_dtypes_and_dynamic_dims(tiny_export):
    import tensorflow as tf

    result, _ = tiny_export
    fn = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    (inputs,) = [fn.structured_input_signature[1]]
    assert {k: (v.dtype, v.shape.as_list()) for k, v in inputs.items()} == {
        "history": (tf.float32, [None, None, 3])
    }
    assert {k: (v.dtype, v.shape.as_list()) for k, v in fn.structured_outputs.items()} == {
        "forecast": (tf.float32, [None, 2]),
        "spread": (tf.float32, [None]),
    }
    out = fn(history=tf.zeros([3, 7, 3]))  # any batch, any length
    assert out["forecast"].shape == (3, 2) and out["spread"].shape == (3,)


def test_manifest_records_device_contract_and_paths(tiny_export):
    result, _ = tiny_export
    manifest = read_export_manifest(result.path)
    assert manifest == result.manifest
    assert manifest["recipe"] == "export-test-tiny" and manifest["version"] == 1
    assert manifest["device"] == "cpu" and manifest["portable"] is True
    assert manifest["signature"]["inputs"] == {"history": {"dtype": "float32",
                                                           "shape": [None, None, 3]}}
    assert set(manifest["signature"]["outputs"]) == {"forecast", "spread"}
    assert manifest["cudnn_ops"] == [] and manifest["xla_must_compile"] is False
    assert manifest["warmup_requests"] == 2 and manifest["sample_inputs"] == "recipe data"
    assert [p["path"] for p in manifest["lstm_layers"]] == ["fused"]  # without XLA
    assert set(manifest["versions"]) >= {"tensorflow", "keras", "lstm_zoo"}


def test_portable_graph_holds_no_cudnn_or_xla(tiny_export):
    result, _ = tiny_export
    ops, xla = graph_op_types(result.path)
    assert {"While", "StatelessWhile"} & ops and "MatMul" in ops  # the recurrence is in the graph
    assert cudnn_ops(ops) == [] and not xla


def test_op_scan_finds_cudnn_ops(tmp_path):
    """The portability check can fail: a graph with a cuDNN op is reported (traced, not run)."""
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(
        lambda x: tf.raw_ops.CudnnRNNV3(
            input=x, input_h=tf.zeros([1, 2, 4]), input_c=tf.zeros([1, 2, 4]),
            params=tf.zeros([112]), sequence_lengths=tf.constant([3, 3]), rnn_mode="lstm",
        )[0],
        input_signature=[tf.TensorSpec([3, 2, 4], tf.float32)],
    )
    tf.saved_model.save(module, str(tmp_path), signatures=module.f.get_concrete_function())
    ops, _ = graph_op_types(tmp_path)
    assert cudnn_ops(ops) == ["CudnnRNNV3"]


def test_verified_in_tensorflow_only_process(tiny_export):
    result, _ = tiny_export
    v = result.verification
    assert v["tensorflow_only_process"] is True
    assert set(v["max_abs_diff"]) == {"forecast", "spread"}
    assert max(v["max_abs_diff"].values()) <= 1e-4
    assert v["warmup_requests_replayed"] == 2
    assert "serving_default" in v["saved_model_cli_signatures"]  # saved_model_cli show --all
    assert v["signature"]["inputs"] == {"history": ["float32", [None, None, 3]]}


def test_warmup_requests_parse_back_to_the_samples(tiny_export, tiny_recipe, tiny_model):
    result, _ = tiny_export
    requests = read_warmup(warmup_path(result.path))
    samples = tiny_recipe.sample_inputs(tiny_model, tiny_recipe.load())["history"]
    assert [r["history"].shape[0] for r in requests] == [1, len(samples)]
    np.testing.assert_array_equal(requests[1]["history"], samples)


def test_compare_outputs_rejects_differences():
    want = {"y": np.zeros(3, np.float32), "t": np.array([b"a"], dtype=object)}
    assert compare_outputs(want, {"y": want["y"] + 5e-5, "t": want["t"]}) == {
        "y": pytest.approx(5e-5), "t": 0.0}
    with pytest.raises(VerificationError, match="differs .* by 0.001"):
        compare_outputs(want, {"y": want["y"] + 1e-3, "t": want["t"]})
    with pytest.raises(VerificationError, match="'t'"):
        compare_outputs(want, {"y": want["y"], "t": np.array([b"b"], dtype=object)})
    with pytest.raises(VerificationError, match="outputs"):
        compare_outputs(want, {"y": want["y"]})


def test_versions_increment_and_force_replaces(tmp_path, tiny_recipe, tiny_model):
    first = export(tiny_model, tmp_path, recipe=tiny_recipe, warmup=False)
    second = export(tiny_model, tmp_path, recipe=tiny_recipe, warmup=False)
    assert (first.version, second.version) == (1, 2)
    assert list_versions(tmp_path / "export-test-tiny") == [1, 2]
    assert next_version(tmp_path / "export-test-tiny") == 3
    assert not (second.path / "assets.extra" / "tf_serving_warmup_requests").exists()
    with pytest.raises(ExportError, match="version 1 .* already exists .*--force"):
        export(tiny_model, tmp_path, recipe=tiny_recipe, version=1)
    before = (first.path / "saved_model.pb").stat().st_mtime_ns
    again = export(tiny_model, tmp_path, recipe=tiny_recipe, version=1, force=True,
                   name="export-test-tiny")
    assert again.version == 1 and (again.path / "saved_model.pb").stat().st_mtime_ns != before
    assert sorted(p.name for p in (tmp_path / "export-test-tiny").iterdir()) == ["1", "2"]


def test_models_config_lists_every_model(tmp_path, tiny_recipe, tiny_model):
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    export(tiny_model, tmp_path, "alpha", recipe=tiny_recipe, warmup=False)
    export(tiny_model, tmp_path, "beta", recipe=tiny_recipe, warmup=False)
    (tmp_path / "not-a-model").mkdir()
    path = write_models_config(tmp_path)
    config = text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())
    entries = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert entries == [("alpha", str(tmp_path.resolve() / "alpha"), "tensorflow"),
                       ("beta", str(tmp_path.resolve() / "beta"), "tensorflow")]


def test_models_config_on_empty_base_is_an_error(tmp_path):
    with pytest.raises(ExportError, match="no exported models"):
        write_models_config(tmp_path)


def test_keras_lstm_is_traced_without_cudnn(tmp_path, tiny_recipe):
    """Models built on keras.layers.LSTM export portably too (use_cudnn=False while tracing,
    restored afterwards)."""
    import keras

    inputs = keras.Input((None, 3))
    layer = keras.layers.LSTM(4)
    model = keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))
    result = export(model, tmp_path, recipe=tiny_recipe, warmup=False)
    assert result.manifest["lstm_layers"] == [{"layer": layer.name, "class": "LSTM",
                                               "path": "generic"}]
    assert layer.use_cudnn == "auto"
    ops, _ = graph_op_types(result.path)
    assert cudnn_ops(ops) == [] and {"While", "StatelessWhile"} & ops


def test_each_weight_is_written_once(tiny_export, tiny_model):
    """Keras 3.15's ExportArchive wrote every weight twice (its Keras variable and the wrapped
    TensorFlow variable); the export lists the TensorFlow variables only."""
    import tensorflow as tf

    result, _ = tiny_export
    reader = tf.train.load_checkpoint(str(result.path / "variables" / "variables"))
    stored = [name for name in reader.get_variable_to_shape_map()
              if name.endswith(".ATTRIBUTES/VARIABLE_VALUE")]
    assert len(stored) == len(tiny_model.variables)  # was twice as many
    revived = tf.saved_model.load(str(result.path))
    assert len(revived.variables) == len(tiny_model.variables)
