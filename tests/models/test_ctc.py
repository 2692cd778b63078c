"""The CTC acoustic model: padding handling, loss, decoding, scoring and safe-mode saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.models.ctc import (
    CTCLoss,
    FrameStacking,
    SpectralConv,
    build_ctc_acoustic_model,
    decode_to_lists,
    decode_to_strings,
    edit_distance,
    error_rates,
)

BLANK = 10


def _logits_for(path: list[int], classes: int = 11) -> np.ndarray:
    """Logits whose best path is ``path`` (one frame per entry), confidently."""
    logits = np.full((len(path), classes), -5.0, np.float32)
    logits[np.arange(len(path)), path] = 5.0
    return logits


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return build_ctc_acoustic_model(units=8, num_layers=1, proj_units=4, num_mel_bins=16)


def test_output_shape_and_padding_pinned_to_blank(tiny_model):
    rng = np.random.default_rng(0)
    batch = np.zeros((2, 4000), np.float32)
    batch[0, :1500] = rng.normal(0, 0.1, 1500)
    batch[1] = rng.normal(0, 0.1, 4000)
    logits = tiny_model(batch).numpy()
    assert logits.shape == (2, 17, 11)  # ceil(ceil(4000 / 80) / 3) frames, 10 digits + blank
    valid = -(-(-(-1500 // 80)) // 3)  # 7 frames hold audio in the first example
    assert np.all(logits[0, valid:].argmax(-1) == BLANK)
    assert np.all(logits[0, valid:, BLANK] > 20)


def test_padding_does_not_change_valid_frames(tiny_model):
    rng = np.random.default_rng(1)
    short = rng.normal(0, 0.1, 2000).astype(np.float32)
    padded = np.zeros((1, 6000), np.float32)
    padded[0, :2000] = short
    alone = tiny_model(short[None, :]).numpy()[0]
    in_batch = tiny_model(padded).numpy()[0, : len(alone)]
    np.testing.assert_allclose(in_batch, alone, atol=1e-4)


def test_frame_stacking_shapes_and_mask():
    x = np.arange(2 * 7 * 2, dtype=np.float32).reshape(2, 7, 2)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], bool)
    layer = FrameStacking(3)
    out = layer(x).numpy()
    assert out.shape == (2, 3, 6)
    np.testing.assert_array_equal(out[0, 0], x[0, :3].reshape(-1))
    np.testing.assert_array_equal(out[0, 2], np.concatenate([x[0, 6], [0, 0, 0, 0]]))
    assert np.asarray(layer.compute_mask(x, mask)).tolist() == [[True] * 3, [True, True, False]]


@pytest.fixture(scope="module")
def conv_model():
    keras.utils.set_random_seed(0)
    return build_ctc_acoustic_model(units=8, num_layers=1, num_mel_bins=16, conv_channels=4)


def test_spectral_conv_front_end_shapes_mask_and_padding(conv_model):
    """With the conv front end a padded example still gets exactly what it alone gets: every
    convolution sees zeros past the end (the bidirectional LSTM would carry any leak back to
    the first frame)."""
    layer = conv_model.get_layer("spectral_conv")
    assert layer.compute_output_shape((None, None, 16)) == (None, None, 16)  # 16 / 2 / 2 * 4
    rng = np.random.default_rng(4)
    short = rng.normal(0, 0.1, 2000).astype(np.float32)
    padded = np.zeros((2, 6000), np.float32)
    padded[0, :2000] = short
    padded[1] = rng.normal(0, 0.1, 6000)
    alone = conv_model(short[None, :]).numpy()[0]
    in_batch = conv_model(padded).numpy()[0, : len(alone)]
    np.testing.assert_allclose(in_batch, alone, atol=1e-5)
    features = np.ones((1, 5, 16), np.float32)
    mask = np.array([[True, True, True, False, False]])
    out = layer(features, mask=mask).numpy()
    assert out.shape == (1, 5, 16) and not out[0, 3:].any() and out[0, :3].any()
    assert np.asarray(layer.compute_mask(features, mask)).tolist() == mask.tolist()
    with pytest.raises(ValueError, match="channels and layers must be >= 1"):
        SpectralConv(channels=0)


def test_spectral_conv_model_round_trips_in_safe_mode(conv_model, tmp_path):
    audio = np.random.default_rng(5).normal(0, 0.1, (2, 3000)).astype(np.float32)
    audio[1, 2200:] = 0
    conv_model.save(tmp_path / "conv.keras")
    loaded = keras.saving.load_model(tmp_path / "conv.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(audio).numpy(), conv_model(audio).numpy(), atol=1e-6)


def test_ctc_loss_prefers_the_right_transcript():
    logits = _logits_for([1, BLANK, 2, 2, BLANK, BLANK])[None]
    loss = CTCLoss()
    right = float(loss(np.array([[1, 2, -1]]), logits))
    wrong = float(loss(np.array([[3, 4, -1]]), logits))
    assert right < 0.1 < wrong
    # padded frames pinned to blank do not change the loss of the valid ones
    longer = np.concatenate([logits, _logits_for([BLANK] * 4)[None] * 6], axis=1)
    assert abs(float(loss(np.array([[1, 2, -1]]), longer)) - right) < 1e-3


def test_greedy_and_beam_decoding_merge_repeats_and_drop_blanks():
    batch = np.stack([
        _logits_for([1, 1, BLANK, 1, 4, BLANK, BLANK, BLANK]),
        _logits_for([BLANK] * 8),
        _logits_for([0, 9, 9, 9, BLANK, 0, 0, 7]),
    ])
    for method in ("greedy", "beam"):
        assert decode_to_lists(batch, method) == [[1, 1, 4], [], [0, 9, 0, 7]]
        strings = decode_to_strings(batch, method).numpy().tolist()
        assert strings == [b"114", b"", b"0907"]
    with pytest.raises(ValueError, match="unknown CTC decoding"):
        decode_to_lists(batch, "viterbi")


def test_decode_to_strings_runs_in_a_graph():
    fn = tf.function(decode_to_strings, input_signature=[tf.TensorSpec([None, None, 11])])
    out = fn(_logits_for([3, BLANK, 2])[None])
    assert out.numpy().tolist() == [b"32"]


def test_edit_distance_and_error_rates():
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([1, 2, 3], [4, 5, 6, 7]) == 4
    assert edit_distance([], [1, 2]) == 2
    rates = error_rates([[1, 2, 3], [4, 5]], [[1, 2, 3], [5]])
    assert rates["error_rate"] == pytest.approx(1 / 5)
    assert rates["exact_match"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        error_rates([[1]], [])


def test_safe_mode_save_and_load_round_trip(tiny_model, tmp_path):
    audio = np.random.default_rng(2).normal(0, 0.1, (2, 3000)).astype(np.float32)
    audio[1, 2000:] = 0
    path = tmp_path / "ctc.keras"
    tiny_model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(audio).numpy(), tiny_model(audio).numpy(), atol=1e-5)


def test_training_step_reduces_the_loss():
    keras.utils.set_random_seed(1)
    model = build_ctc_acoustic_model(units=8, num_layers=1, num_mel_bins=16)
    model.compile(keras.optimizers.Adam(1e-2), CTCLoss())
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, (4, 4000)).astype(np.float32)
    y = np.array([[1, 2, -1], [3, -1, -1], [4, 5, 6], [7, -1, -1]])
    first = model.train_on_batch(x, y)
    for _ in range(5):
        last = model.train_on_batch(x, y)
    assert np.isfinite(first) and last < first


def test_spec_augment_masks_only_in_training():
    from lstm_zoo.models.ctc import SpecAugment

    x = np.ones((3, 40, 20), np.float32)
    layer = SpecAugment(freq_masks=2, freq_width=5, time_masks=2, time_width=6, seed=1)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    out = layer(x, training=True).numpy()
    assert set(np.unique(out)) <= {0.0, 1.0} and 0 < (out == 0).mean() < 0.6
    zero_bands = (out == 0).all(axis=1).sum(axis=1)  # per example, fully zeroed features
    assert np.all(zero_bands <= 10)
    clone = SpecAugment.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_spec_augment_widths_are_model_hyperparameters():
    """``freq_mask_width``/``time_mask_width`` reach the SpecAugment layer (``--hparam``)."""
    from lstm_zoo.models.ctc import build_ctc_acoustic_model

    model = build_ctc_acoustic_model(units=8, num_layers=1, spec_augment=True,
                                     freq_mask_width=12, time_mask_width=15)
    config = model.get_layer("spec_augment").get_config()
    assert (config["freq_width"], config["time_width"]) == (12, 15)


def test_mfcc_features_feed_the_lstms_and_survive_safe_mode(tmp_path):
    """``num_mfcc`` (``--hparam num_mfcc=13``) swaps the log-mel bands for cepstra."""
    keras.utils.set_random_seed(0)
    model = build_ctc_acoustic_model(units=8, num_layers=1, num_mfcc=13)
    assert model.get_layer("log_mel").output.shape[-1] == 13
    audio = np.random.default_rng(0).normal(0, 0.1, (2, 1600)).astype(np.float32)
    logits = model(audio).numpy()
    path = tmp_path / "mfcc.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    assert loaded.get_layer("log_mel").num_mfcc == 13
    np.testing.assert_allclose(loaded(audio).numpy(), logits, atol=1e-5)


def test_ensemble_decoding_fuses_transcripts_not_frames():
    """Two members spike the same digits on different frames: averaging their frame
    posteriors loses the digits, sequence-level fusion keeps them; where members disagree,
    the transcript with the higher summed likelihood wins."""
    from lstm_zoo.models.ctc import decode_ensemble

    def spikes(path):  # a label's frame also leaves the blank some weight, as CTC models do
        logits = _logits_for(path)
        logits[logits == 5.0] = np.where(np.array(path) == BLANK, 6.0, 3.0)
        for t, label in enumerate(path):
            if label != BLANK:
                logits[t, BLANK] = 0.0
        return logits

    early = spikes([3, BLANK, BLANK, 5, BLANK, BLANK])
    late = spikes([BLANK, 3, BLANK, BLANK, 5, BLANK])
    stacked = np.stack([early, late])[None]  # [B=1, N=2, T, C]
    mean_log_probs = np.asarray(tf.nn.log_softmax(stacked)).mean(axis=1)
    assert decode_to_lists(mean_log_probs) == [[]]  # frame averaging: blank everywhere
    for method in ("greedy", "beam"):
        assert decode_to_lists(stacked, method) == [[3, 5]]
        assert decode_to_strings(stacked, method).numpy().tolist() == [b"35"]
    # member 0 is sure of 3-5, member 1 weakly prefers 3-6: the product favours 3-5
    unsure = _logits_for([BLANK, 3, BLANK, BLANK, 6, BLANK]) * 0.2
    assert decode_to_lists(np.stack([early, unsure])[None]) == [[3, 5]]
    # an empty transcript is a candidate too, and a batch mixes lengths
    silent = _logits_for([BLANK] * 6)
    batch = np.stack([np.stack([silent, silent]), np.stack([early, late])])
    assert decode_to_lists(batch, "beam") == [[], [3, 5]]
    fn = tf.function(decode_to_strings, input_signature=[tf.TensorSpec([None, 2, None, 11])])
    assert fn(batch).numpy().tolist() == [b"", b"35"]  # in a graph (serving)
    unknown_members = tf.function(decode_ensemble,
                                  input_signature=[tf.TensorSpec([None, None, None, 11])])
    with pytest.raises(ValueError, match="number of members"):
        unknown_members.get_concrete_function()
    with pytest.raises(ValueError, match="unknown CTC decoding"):
        decode_to_lists(stacked, "viterbi")
