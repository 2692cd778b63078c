"""Issue 24: serving inputs a hostile client sends (NaN, inf, empty batches, long audio) and
models exported under the wrong recipe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from lstm_zoo.serving.contract import ContractError, ServingContract
from lstm_zoo.serving.savedmodel import ExportError, export

_SERVING_CONFTEST = Path(__file__).resolve().parents[1] / "serving" / "conftest.py"


def _serving_fixtures():
    """The tiny export-test recipe and model of tests/serving/conftest.py (not duplicated)."""
    spec = importlib.util.spec_from_file_location("serving_conftest_tiny", _SERVING_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_signature(tmp_path_factory):
    """``serving_default`` of the tiny forecaster, exported and reloaded with TensorFlow only."""
    import tensorflow as tf

    fixtures = _serving_fixtures()
    recipe = fixtures.TinyRecipe()
    result = export(fixtures.build_tiny_model(), tmp_path_factory.mktemp("export"),
                    recipe=recipe, data=recipe.load())
    return tf.saved_model.load(str(result.path)).signatures["serving_default"]


@pytest.fixture(scope="module")
def tiny_speech():
    import lstm_zoo
    from lstm_zoo.recipes.speech import SpeechRecipe

    model = lstm_zoo.get_model("speech-lstm-ctc", units=4, num_layers=1, spec_augment=False)
    return SpeechRecipe(), model


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_exported_signature_rejects_non_finite_input(tiny_signature, bad):
    """24.2: NaN or +-inf in a request fail with InvalidArgumentError naming the input (TF
    Serving's INVALID_ARGUMENT) instead of a finite, confident answer; finite requests pass."""
    import tensorflow as tf

    history = np.zeros((2, 5, 3), np.float32)
    assert np.isfinite(tiny_signature(history=tf.constant(history))["forecast"]).all()
    history[1, 2, 0] = bad
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input history must hold finite values only.*\[1\]"):
        tiny_signature(history=tf.constant(history))


def test_contract_rejects_non_finite_sample_inputs():
    """24.2: sample inputs (warmup records TF Serving replays on load) must be finite too."""
    contract = ServingContract.from_mapping({"inputs": {"x": ("float32", (None, 2))},
                                             "outputs": {"y": ("float32", (None,))}})
    with pytest.raises(ContractError, match=r"sample input 'x' holds 2 NaN or infinite"):
        contract.check_inputs({"x": [[np.nan, 1.0], [np.inf, 0.0]]})


def test_speech_export_rejects_nan_audio(tiny_speech, tmp_path):
    """24.2: the speech signature answers NaN audio with an error, not the transcript "0"."""
    import tensorflow as tf

    recipe, model = tiny_speech
    result = export(model, tmp_path, recipe=recipe, warmup=False)
    serve = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    audio = np.full((1, 4000), 0.1, np.float32)
    audio[0, 100:200] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"input audio must hold finite.*\[100\]"):
        serve(audio=tf.constant(audio))


def test_speech_transcribe_rejects_non_finite_audio(tiny_speech):
    """24.2: ``transcribe`` (behind ``evaluate``) names the utterance holding NaN or inf."""
    from lstm_zoo.errors import DataError

    recipe, model = tiny_speech
    audios = [np.full(800, 0.1, np.float32), np.full(900, 0.1, np.float32)]
    audios[1][5] = np.inf
    with pytest.raises(DataError, match=r"utterance 1 .*1 NaN or infinite sample"):
        recipe.transcribe(model, audios)


def test_model_of_another_recipe_is_named_as_a_contract_mismatch(tmp_path):
    """24.17: a weather model exported as finance says it does not match finance's contract
    (its input shape against the contract's), without Keras' ANSI escape codes."""
    import lstm_zoo

    weather = lstm_zoo.get_model("weather-lstm", lookback=8, n_features=3, horizon=2, units=4)
    with pytest.raises(ExportError) as caught:
        export(weather, tmp_path, recipe="finance", warmup=False)
    message = str(caught.value)
    assert "does not match recipe 'finance''s serving contract" in message
    assert "prices float32 (None, 8)" in message and "history (None, 8, 3)" in message
    assert "\x1b" not in message
    assert list(tmp_path.iterdir()) == []  # nothing written


def _one_hot_logits(path: list[int], classes: int = 11) -> np.ndarray:
    """Logits ``[T, C]`` whose best class per frame is ``path`` (blank = the last class)."""
    logits = np.zeros((len(path), classes), np.float32)
    logits[np.arange(len(path)), path] = 5.0
    return logits


@pytest.mark.parametrize("method", ["greedy", "beam"])
@pytest.mark.parametrize("shape", [(0, 5, 11), (2, 0, 11), (0, 2, 5, 11), (2, 2, 0, 11)])
def test_ctc_decoding_of_empty_batches_and_empty_utterances(method, shape):
    """24.10: no utterances, or utterances of no frames, decode to nothing (CTCGreedyDecoder
    used to fail with "inputs must not be empty"), eagerly and in a graph."""
    import tensorflow as tf

    from lstm_zoo.models.ctc import decode_to_lists, decode_to_strings

    logits = np.zeros(shape, np.float32)
    assert decode_to_lists(logits, method) == [[] for _ in range(shape[0])]
    spec = tf.TensorSpec([None, *([shape[1]] if len(shape) == 4 else []), None, 11])
    graph = tf.function(lambda x: decode_to_strings(x, method), input_signature=[spec])
    assert graph(logits).numpy().tolist() == [b""] * shape[0]


def test_speech_export_answers_an_empty_batch(tiny_speech, tmp_path):
    """24.10: the exported speech signature answers a batch of 0 utterances with 0
    transcripts, like translation; ``transcribe([])`` is ``[]``."""
    import tensorflow as tf

    recipe, model = tiny_speech
    result = export(model, tmp_path, recipe=recipe, warmup=False)
    serve = tf.saved_model.load(str(result.path)).signatures["serving_default"]
    for samples in (800, 0):
        out = serve(audio=tf.zeros([0, samples]))["transcript"]
        assert out.shape == (0,) and out.dtype == tf.string
    assert recipe.transcribe(model, []) == []


def test_long_ensemble_fusion_is_segmented_at_common_blanks():
    """24.11: ensemble fusion scores candidates in segments of at most ~2 windows (CTC scoring
    costs frames x labels, so whole-clip fusion grew quadratically: 364 s and 2.5 GB for 10
    minutes); cuts fall where every member hears blank, so two utterances joined by silence
    fuse to the two transcripts joined, and a clip within one window is fused whole."""
    import tensorflow as tf

    from lstm_zoo.models.ctc import _segments, decode_ensemble

    blank = 10
    first = _one_hot_logits([3, blank, blank, 5, blank])
    second = _one_hot_logits([blank, 7, blank, 7, blank])
    silence = _one_hot_logits([blank] * 40)
    joined = np.concatenate([first, silence, second], axis=0)
    stacked = np.stack([joined, np.roll(joined, 1, axis=0)])[None]  # [B=1, N=2, T, C]
    for method in ("greedy", "beam"):
        for window in (16, 1000):  # segmented / in one piece
            fused = tf.sparse.to_dense(decode_ensemble(stacked, method, window=window))
            assert fused.numpy().tolist() == [[3, 5, 7, 7]]
    long = np.tile(stacked, [1, 1, 20, 1])  # 1000 frames
    segments, per_example = _segments(tf.constant(long), 64)
    assert int(per_example) == 16 and segments.shape[0] == 16
    assert segments.shape[2] <= 2 * 64
