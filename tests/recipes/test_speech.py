"""The speech recipe: utterance building, FSDD loading and validation, eSpeak NG synthesis,
speaker-independent splits, and a tiny train -> evaluate -> serve run through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from lstm_zoo.recipes import speech_synth
from lstm_zoo.recipes.speech import (
    SpeechRecipe,
    build_speech_lstm_ctc,
    build_utterances,
    load_fsdd_bank,
    pad_batch,
)

from lstm_zoo.data.audio import write_wav
from lstm_zoo.errors import DataError

SPEAKERS = ("ann", "bob", "cy", "di")


def _digit_clip(digit: int, speaker: int, rate: int = 8000) -> np.ndarray:
    """A 0.15 s two-tone 'word' per digit (pitch shifted per speaker)."""
    t = np.arange(int(0.15 * rate)) / rate
    f1, f2 = 300 + 60 * digit + 15 * speaker, 1200 + 100 * digit
    return (0.3 * np.sin(2 * np.pi * f1 * t) + 0.2 * np.sin(2 * np.pi * f2 * t)).astype(np.float32)


@pytest.fixture
def fake_fsdd(tmp_path):
    """A tiny FSDD-shaped folder: 4 speakers x 10 digits x 2 takes, one stereo, one 16 kHz."""
    folder = tmp_path / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    for s, speaker in enumerate(SPEAKERS):
        for digit in range(10):
            for take in range(2):
                write_wav(folder / f"{digit}_{speaker}_{take}.wav", _digit_clip(digit, s))
    clip = _digit_clip(3, 0)
    write_wav(folder / "3_ann_2.wav", np.stack([clip, clip * 0.5], axis=1))  # stereo
    write_wav(folder / "4_ann_2.wav", np.repeat(_digit_clip(4, 0), 2), 16000)  # 16 kHz
    return tmp_path / "fsdd"


def test_build_utterances_is_seeded_and_well_formed():
    bank = {"x": {d: [_digit_clip(d, 0)] for d in range(10)}}
    a = build_utterances(bank, 20, np.random.default_rng(3), max_digits=7)
    b = build_utterances(bank, 20, np.random.default_rng(3), max_digits=7)
    c = build_utterances(bank, 20, np.random.default_rng(4), max_digits=7)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert not all(len(x) == len(y) and np.array_equal(x, y) for x, y in zip(a[0], c[0]))
    lengths = [len(lab) for lab in a[1]]
    assert min(lengths) >= 1 and max(lengths) <= 7 and len(set(lengths)) > 2
    for audio, labels in zip(*a):
        assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
        assert len(audio) >= len(labels) * 0.15 * 8000  # every digit clip is in there
        assert audio[-1] != 0.0  # noise: no accidental trailing-zero "padding"
    padded = pad_batch(a[0][:3])
    assert padded.shape == (3, max(len(x) for x in a[0][:3]))


def test_speed_perturbation_changes_duration():
    bank = {"x": {d: [_digit_clip(d, 0)] for d in range(10)}}
    ratios = []
    for seed in range(20):  # the speed factor is drawn after the content: same first utterance
        plain = build_utterances(bank, 1, np.random.default_rng(seed), max_digits=3)
        fast = build_utterances(bank, 1, np.random.default_rng(seed), max_digits=3,
                                speed_perturb=0.1)
        ratios.append(len(fast[0][0]) / len(plain[0][0]))
    assert 0.85 < min(ratios) and max(ratios) < 1.15 and np.std(ratios) > 0.01


def test_load_fsdd_bank_reads_downmixes_and_resamples(fake_fsdd):
    bank = load_fsdd_bank(fake_fsdd, ["ann", "bob"])
    assert set(bank) == {"ann", "bob"}
    assert len(bank["ann"][3]) == 3 and len(bank["ann"][4]) == 3 and len(bank["bob"][3]) == 2
    resampled = bank["ann"][4][2]
    assert abs(len(resampled) - len(bank["ann"][4][0])) < 0.2 * len(resampled)


def test_corrupt_and_empty_recordings_name_the_file(fake_fsdd):
    (fake_fsdd / "recordings" / "5_bob_7.wav").write_bytes(b"garbage, not RIFF" * 4)
    with pytest.raises(DataError, match=r"5_bob_7\.wav"):
        load_fsdd_bank(fake_fsdd, ["bob"])
    (fake_fsdd / "recordings" / "5_bob_7.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"5_bob_7\.wav.*empty"):
        load_fsdd_bank(fake_fsdd, ["bob"])


def test_bad_names_missing_digits_and_missing_folders(fake_fsdd, tmp_path):
    (fake_fsdd / "recordings" / "hello.wav").write_bytes(b"")
    with pytest.raises(DataError, match=r"hello\.wav.*\{digit\}_\{speaker\}_\{index\}"):
        load_fsdd_bank(fake_fsdd, ["ann"])
    (fake_fsdd / "recordings" / "hello.wav").unlink()
    with pytest.raises(DataError, match=r"'zed' has no recordings of digit\(s\) \[0, 1"):
        load_fsdd_bank(fake_fsdd, ["zed"])
    with pytest.raises(DataError, match="does not exist"):
        load_fsdd_bank(tmp_path / "nowhere", ["ann"])


def test_splits_are_speaker_independent(fake_fsdd):
    recipe = SpeechRecipe()
    data = recipe.load(fake_fsdd, seed=0, train_speakers="ann,bob", val_speakers="cy",
                       test_speakers="di", train_utterances=12, eval_utterances=5)
    assert data.info["train_speakers"] == ["ann", "bob"]
    assert data.info["test_speakers"] == ["di"] and data.info["val_speakers"] == ["cy"]
    assert len(data.train[0]) == 12 and len(data.test[0]) == 5 and len(data.val[1]) == 5
    assert [list(x) for x in data.val[1]] != [list(x) for x in data.test[1]]
    with pytest.raises(DataError, match=r"\['bob'\] are in more than one split"):
        recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="bob", test_speakers="di")


def test_val_takes_hold_out_recordings_of_the_training_speakers(fake_fsdd):
    """``--val-takes 1``: take 0 of each training speaker validates and never trains, so every
    speaker but the test one can train; the test speaker stays unseen."""
    bank = load_fsdd_bank(fake_fsdd, ["ann"], takes=lambda take: take >= 1)
    assert len(bank["ann"][3]) == 2 and len(bank["ann"][0]) == 1
    data = SpeechRecipe().load(fake_fsdd, seed=0, train_speakers="ann,bob,cy", val_speakers="",
                               test_speakers="di", train_utterances=6, eval_utterances=4,
                               val_takes=1)
    assert data.info["val_speakers"] == [] and data.info["test_speakers"] == ["di"]
    assert data.info["val_held_out_takes"] == {"speakers": ["ann", "bob", "cy"], "takes": [0, 0]}
    assert len(data.val[0]) == 4 and len(data.train[0]) == 6
    with pytest.raises(DataError, match="no validation data"):
        SpeechRecipe().load(fake_fsdd, train_speakers="ann,bob", val_speakers="",
                            test_speakers="di")
    with pytest.raises(DataError, match="--val-takes"):
        SpeechRecipe().load(fake_fsdd, train_speakers="ann", val_speakers="cy",
                            test_speakers="di", val_takes=-1)


def test_synthetic_voices_take_a_share_of_fsdd_training(fake_fsdd):
    data = SpeechRecipe().load(fake_fsdd, seed=0, train_speakers="ann,bob", val_speakers="cy",
                               test_speakers="di", train_utterances=8, eval_utterances=2,
                               synthetic_voices=1, synthetic_share=0.5)
    assert data.info["utterances"]["train_synthetic"] == 4 and len(data.train[0]) == 8
    assert data.info["train_speakers"] == ["ann", "bob", speech_synth.default_voices(1)[0]]
    assert data.info["test_speakers"] == ["di"]  # evaluation stays on the human speakers
    with pytest.raises(DataError, match="synthetic-share"):
        SpeechRecipe().load(fake_fsdd, train_speakers="ann", val_speakers="cy",
                            test_speakers="di", synthetic_voices=1, synthetic_share=1.0)


def test_espeak_synthesis_gives_8khz_speech():
    clip = speech_synth.synthesize("seven", "en-us+f3", rate=165, pitch=50)
    assert clip.dtype == np.float32 and 0.2 * 8000 < len(clip) < 1.5 * 8000
    assert 0.05 < np.abs(clip).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(clip))
    assert np.fft.rfftfreq(len(clip), 1 / 8000)[spectrum.argmax()] < 3000  # voiced, not noise
    other = speech_synth.synthesize("seven", "en-gb-scotland+m3", rate=130, pitch=35)
    assert len(other) != len(clip)
    bank = speech_synth.digit_bank(["en-us+m1"], rates=(165,), pitches=(50,))
    assert sorted(bank["en-us+m1"]) == list(range(10))
    with pytest.raises(ValueError, match="no voice"):
        speech_synth.synthesize("one", "xx-nonexistent")


def test_embedded_default_uses_disjoint_synthetic_voices():
    data = SpeechRecipe().load(None, seed=0, train_speakers="en-us+m1,en+f2",
                               val_speakers="en-029+m5", test_speakers="en-gb-x-rp+m3",
                               train_utterances=4, eval_utterances=2)
    assert data.info["test_speakers"] == ["en-gb-x-rp+m3"]
    assert "eSpeak NG" in data.info["source"]
    assert len(data.train[0]) == 4
    defaults = speech_synth.default_voices(10)
    assert len(set(defaults)) == 10


def test_train_evaluate_and_serve_through_the_cli(fake_fsdd, tmp_path):
    import keras
    import tensorflow as tf

    from lstm_zoo.cli import main
    from lstm_zoo.training.driver import load_model

    out = tmp_path / "run"
    common = ["--data", str(fake_fsdd), "--train-speakers", "ann,bob", "--val-speakers", "cy",
              "--test-speakers", "di", "--eval-utterances", "6", "--max-digits", "2"]
    code = main(["train", "speech", *common, "--out", str(out), "--epochs", "1",
                 "--train-utterances", "24", "--batch-size", "8",
                 "--hparam", "units=8", "--hparam", "num_layers=1", "--hparam", "proj_units=4"])
    assert code == 0
    for name in ("model.keras", "metrics.json", "history.csv", "training_curves.png",
                 "ctc_alignment.png"):
        assert (out / name).exists(), name
    record = json.loads((out / "metrics.json").read_text())
    test = record["test"]
    assert test["test_speakers"] == ["di"]
    for method in ("greedy", "beam"):
        assert 0 <= test[method]["utterance_accuracy"] <= 1
        assert test[method]["digit_error_rate"] >= 0 and test[method]["reference_digits"] > 0
    assert test["baselines"]["empty_transcript"]["digit_error_rate"] == 1.0
    assert "validation" in test and record["data_info"]["val_speakers"] == ["cy"]

    # a different training size must not change the evaluation utterances
    assert main(["evaluate", "speech", *common, "--train-utterances", "3", "--model", str(out), "--out",
                 str(tmp_path / "eval")]) == 0
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())["test"]
    assert again["greedy"] == test["greedy"]  # same splits, same model, same numbers

    recipe = SpeechRecipe()
    model = load_model(out)  # safe mode
    assert isinstance(model, keras.Model)
    contract = recipe.serving_contract(model)
    assert contract["outputs"] == {"transcript": ("string", (None,))}
    spec = {k: tf.TensorSpec(shape, dtype) for k, (dtype, shape) in contract["inputs"].items()}
    serve = tf.function(recipe.serving_function(model), input_signature=[spec])
    data = recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                       test_speakers="di", train_utterances=2, eval_utterances=6, max_digits=2)
    audio = recipe.sample_inputs(model, data, n=4)["audio"]
    transcripts = serve({"audio": tf.constant(audio)})["transcript"].numpy()
    assert transcripts.shape == (4,)
    assert all(set(t.decode()) <= set("0123456789") for t in transcripts)
    greedy = recipe.transcribe(model, data.test[0][:4], "greedy")
    assert [t.decode() for t in transcripts] == ["".join(map(str, g)) for g in greedy]
    silent = serve({"audio": tf.zeros([2, 0])})["transcript"].numpy()  # no samples at all
    assert silent.tolist() == [b"", b""]
    audio[0] = 0.0  # an all-zero (fully padded) row in a batch
    assert serve({"audio": tf.constant(audio)})["transcript"].numpy()[0] == b""


def test_importing_the_recipe_registers_every_layer_of_its_model():
    """``lstm-zoo evaluate speech --model`` imports the recipe, then loads in safe mode."""
    import subprocess
    import sys

    code = ("import keras, lstm_zoo.recipes.speech\n"
            "names = ['LogMelSpectrogram', 'FrameStacking', 'SpecAugment', 'BlankPadding', 'CTCLoss']\n"
            "missing = [n for n in names if keras.saving.get_registered_object('lstm_zoo>' + n) is None]\n"
            "assert not missing, missing\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_real_fsdd_speaker_loads(shared_data):
    bank = load_fsdd_bank(shared_data / "fsdd", ["theo"])
    assert all(len(bank["theo"][d]) == 50 for d in range(10))
    lengths = [len(c) for clips in bank["theo"].values() for c in clips]
    assert 0.1 * 8000 < np.median(lengths) < 1.0 * 8000  # trimmed single digits at 8 kHz


def test_fit_with_steps_per_epoch_and_vtlp_runs_full_epochs(fake_fsdd):
    """Bucketed batches repeat, so each epoch has steps_per_epoch batches (Keras alone ended
    an epoch early whenever the finite pipeline ran out); VTLP trains in-graph."""
    import keras

    recipe = SpeechRecipe()
    data = recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                       test_speakers="di", train_utterances=10, eval_utterances=4, max_digits=2)
    model = recipe.build_model(data, units=4, num_layers=1, vtlp=0.1)
    config = recipe.train_config.replace(epochs=2, steps_per_epoch=4, batch_size=4)
    recipe.compile(model, config)
    counts = []
    counter = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: counts.append(0),
        on_train_batch_end=lambda batch, logs: counts.__setitem__(-1, counts[-1] + 1),
    )
    history = recipe.fit(model, data, config, [counter], verbose=0)
    assert counts == [4, 4]
    assert np.isfinite(history.history["loss"]).all()
    assert model.get_layer("log_mel").vtlp == 0.1


def test_an_ensemble_transcribes_and_serves_like_one_model(fake_fsdd, tmp_path):
    """Stacked members: transcribe, evaluate and the serving graph decode them with
    sequence-level fusion; the alignment plot shows their mean posterior."""
    import tensorflow as tf

    from lstm_zoo.models.ctc import decode_to_lists, error_rates
    from lstm_zoo.models.ensemble import build_ensemble

    recipe = SpeechRecipe()
    data = recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                       test_speakers="di", train_utterances=2, eval_utterances=4, max_digits=3)
    members = [recipe.build_model(data, units=4, num_layers=1) for _ in range(2)]
    ensemble = build_ensemble(members, recipe.ensemble_combine, name="speech_ensemble")
    audios = data.test[0]
    stacked = np.asarray(ensemble(pad_batch(audios), training=False))
    assert stacked.shape[:2] == (len(audios), 2)
    expected = decode_to_lists(stacked, "greedy")
    assert recipe.transcribe(ensemble, audios, "greedy") == [
        decode_to_lists(np.asarray(ensemble(a[None], training=False)), "greedy")[0]
        for a in audios]  # batched by length or alone: the same transcripts
    assert len(expected) == len(audios)
    metrics = recipe.evaluate(ensemble, data)
    rates = error_rates([list(map(int, lab)) for lab in data.test[1]], expected)
    assert metrics["greedy"]["digit_errors"] == rates["edit_distance"]
    contract = recipe.serving_contract(ensemble)
    spec = {k: tf.TensorSpec(shape, dtype) for k, (dtype, shape) in contract["inputs"].items()}
    serve = tf.function(recipe.serving_function(ensemble), input_signature=[spec])
    out = serve({"audio": tf.constant(pad_batch(audios))})["transcript"].numpy()
    assert [t.decode() for t in out] == ["".join(map(str, e)) for e in expected]
    assert recipe.plot(ensemble, data, tmp_path)[0].read_bytes()[:4] == b"\x89PNG"


def test_search_space_covers_the_model_switches_and_builds():
    import keras_tuner

    space = SpeechRecipe().search_space(keras_tuner.HyperParameters())
    assert {"units", "num_layers", "proj_units", "conv_channels", "num_mfcc", "dropout",
            "spec_augment", "learning_rate"} <= set(space)
    model_args = {k: v for k, v in space.items() if k != "learning_rate"}
    for num_mfcc in (0, 13):
        model = build_speech_lstm_ctc(**{**model_args, "units": 8, "conv_channels": 4,
                                         "proj_units": 4, "num_mfcc": num_mfcc})
        logits = model(np.zeros((1, 4000), np.float32))
        assert logits.shape[-1] == 11 and np.isfinite(np.asarray(logits)).all()


def test_channel_augmentation_changes_only_training_utterances_and_is_validated(fake_fsdd):
    bank = load_fsdd_bank(fake_fsdd, ["ann"])
    plain = build_utterances(bank, 6, np.random.default_rng(3))
    off = build_utterances(bank, 6, np.random.default_rng(3), channel_augment=0.0)
    on = build_utterances(bank, 6, np.random.default_rng(3), channel_augment=1.0)
    for a, b in zip(plain[0], off[0]):
        np.testing.assert_array_equal(a, b)  # off draws nothing: old runs' data is unchanged
    np.testing.assert_array_equal(plain[1][0], on[1][0])  # same first transcript
    assert not np.allclose(plain[0][0], on[0][0])
    recipe = SpeechRecipe()
    with pytest.raises(DataError, match="--channel-augment must be in"):
        recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                    test_speakers="di", channel_augment=1.5)
    loaded = recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                         test_speakers="di", channel_augment=1.0, train_utterances=8,
                         eval_utterances=4)
    reference = recipe.load(fake_fsdd, train_speakers="ann,bob", val_speakers="cy",
                            test_speakers="di", train_utterances=8, eval_utterances=4)
    assert loaded.info["channel_augment"] == 1.0
    for a, b in zip(loaded.test[0] + loaded.val[0], reference.test[0] + reference.val[0]):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(loaded.train[0], reference.train[0]))
