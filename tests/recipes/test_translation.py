"""The translation recipe: embedded number words, Multi30k loading and its errors, a tiny
train -> interrupt -> resume -> evaluate run through the generic driver and the CLI, plots,
the Python ``translate`` API on the saved model, and the serving contract."""

from __future__ import annotations

import csv
import gzip
import json

import pytest
from lstm_zoo.recipes import translation
from lstm_zoo.recipes.translation import TranslationRecipe, number_pairs, read_parallel

from lstm_zoo.errors import DataError

TINY = {"units": 8, "embedding_dim": 8, "steps_per_epoch": 2, "dropout": 0.0,
        "max_target_length": 24}
TINY_OPTIONS = {"limit": 48, "eval_limit": 6, "val_bleu_sentences": 4}


def test_number_words_are_real_and_deterministic():
    pairs = number_pairs(50, seed=7)
    assert pairs == number_pairs(50, seed=7)
    assert pairs != number_pairs(50, seed=8)
    assert number_pairs(1, max_number=0, max_numbers_per_line=1) == [("zero", "null")]
    assert all(s.count(",") == t.count(",") for s, t in pairs)  # aligned lists of numbers


def test_default_load_splits_and_vocabularies_do_not_depend_on_the_seed():
    recipe = TranslationRecipe()
    a = recipe.load(None, seed=0, limit=200, eval_limit=20)
    b = recipe.load(None, seed=5, limit=200, eval_limit=20)
    assert a.model_args["source_vocabulary"] == b.model_args["source_vocabulary"]
    assert a.extras["test_pairs"] == b.extras["test_pairs"]
    assert a.model_args["target_scheme"] == "chars"
    (source, target_in), target_out = next(iter(a.train))
    assert source.shape[0] == target_in.shape[0] == target_out.shape[0] <= 64
    assert (target_in.numpy()[:, 0] == 2).all()  # <s>
    assert a.info["n_train"] == 200 and a.info["n_test"] == 20


def _write_split(folder, split, en, de):
    for lang, lines in (("en", en), ("de", de)):
        with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def test_multi30k_style_folder_loads_and_bad_folders_fail_clearly(tmp_path):
    en = ["A dog runs .", "Two men sit .", "", "A dog sits ."]
    de = ["Ein Hund rennt.", "Zwei Männer sitzen.", "", "Ein Hund sitzt."]
    for split in ("train", "val", "test_2016_flickr"):
        _write_split(tmp_path, split, en, de)
    data = TranslationRecipe().load(tmp_path, min_frequency=1, val_bleu_sentences=0)
    assert data.info["n_train"] == 3 and data.info["n_train_blank_pairs_removed"] == 1
    assert "Männer" in data.model_args["target_vocabulary"]
    assert "dog" in data.model_args["source_vocabulary"]  # lowercased source
    assert "Ein" in data.model_args["target_vocabulary"]  # cased target

    with pytest.raises(DataError, match=r"has 4 lines but .*train\.de has 2"):
        (tmp_path / "train.de.gz").unlink()
        with open(tmp_path / "train.de", "w", encoding="utf-8") as handle:
            handle.write("a\nb\n")
        read_parallel(tmp_path, "train")
    (tmp_path / "train.de").unlink()
    _write_split(tmp_path, "train", en, de)
    (tmp_path / "val.en.gz").unlink()
    with pytest.raises(DataError, match=r"missing .*val\.en\.gz"):
        TranslationRecipe().load(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        TranslationRecipe().load(tmp_path / "nope")


def test_train_interrupt_resume_evaluate_and_translate(tmp_path, monkeypatch):
    """A run killed after its first epoch resumes from the backup and finishes; the saved
    model evaluates through the CLI and translates through the Python API."""
    import keras

    from lstm_zoo.cli import main
    from lstm_zoo.training.driver import load_model, train

    class Kill(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt("simulated kill")

    original_fit = TranslationRecipe.fit

    def killed_fit(self, model, data, config, callbacks, verbose="auto"):
        return original_fit(self, model, data, config, callbacks + [Kill()], verbose)

    out = tmp_path / "run"
    monkeypatch.setattr(TranslationRecipe, "fit", killed_fit)
    with pytest.raises(KeyboardInterrupt):
        train("translation", out_dir=out, epochs=2, hparams=TINY, verbose=0, **TINY_OPTIONS)
    assert any((out / "backup").iterdir())
    monkeypatch.setattr(TranslationRecipe, "fit", original_fit)
    result = train("translation", out_dir=out, epochs=2, hparams=TINY, verbose=0, **TINY_OPTIONS)

    with open(out / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1]  # epoch 1 ran after the resume
    assert "val_bleu" in rows[0]
    test = json.loads((out / "metrics.json").read_text())["test"]
    for key in ("bleu_greedy", "bleu_beam", "baseline_copy_source_bleu", "chrf_beam"):
        assert 0.0 <= test[key] <= 100.0
    assert test["n_sentences"] == 6 and len(test["examples"]) == 5
    assert "tok:char" in test["sacrebleu_signature"]  # number words: BLEU over characters
    for png in ("attention.png", "training_curves.png", "val_bleu.png"):
        assert (out / png).stat().st_size > 1000

    assert main(["evaluate", "translation", "--model", str(out), "--eval-limit", "6",
                 "--limit", "48", "--out", str(tmp_path / "eval")]) == 0
    again = json.loads((tmp_path / "eval" / "metrics.json").read_text())["test"]
    assert again["bleu_beam"] == test["bleu_beam"]  # the saved model decodes as trained

    model = load_model(out)
    assert translation.translate(model, "") == ""
    assert isinstance(translation.translate(model, "three hundred and twenty-one"), str)
    assert result.model_path.exists()


def test_serving_contract_and_function(tmp_path):
    import numpy as np
    import tensorflow as tf

    from lstm_zoo.registry import get_model

    recipe = TranslationRecipe()
    data = recipe.load(None, limit=40, eval_limit=4)
    model = recipe.build_model(data, units=8, embedding_dim=8)
    contract = recipe.serving_contract(model)
    assert contract == {"inputs": {"text": ("string", (None,))},
                        "outputs": {"translation": ("string", (None,))}}
    serve = tf.function(recipe.serving_function(model),
                        input_signature=[{"text": tf.TensorSpec([None], tf.string)}])
    samples = recipe.sample_inputs(model, data, n=3)
    out = serve({"text": tf.constant(list(samples["text"]) + [""])})["translation"]
    assert out.shape == (4,) and out.dtype == tf.string and out.numpy()[-1] == b""
    # the registered builder works without data (special tokens only)
    bare = get_model("translation-lstm-attention", units=4, embedding_dim=4)
    assert bare.target_vocab_size == 4
    assert np.asarray(bare.translate(tf.constant([""]), beam_size=2)).tolist() == [b""]


@pytest.mark.slow
def test_multi30k_loads(shared_data):
    data = TranslationRecipe().load(shared_data / "multi30k", eval_limit=10, val_bleu_sentences=0)
    assert data.info["n_train"] == 29000 and data.info["n_test"] == 10
    assert 4000 < data.info["source_vocab_size"] < 12000
    assert 5000 < data.info["target_vocab_size"] < 15000
    source, reference = data.extras["test_pairs"][0]
    assert source and reference


@pytest.mark.slow
def test_saved_model_loads_and_translates_in_a_fresh_process(tmp_path):
    """What ``load_pretrained("translation")`` does: a new interpreter, ``load_model`` only."""
    import subprocess
    import sys

    from lstm_zoo.recipes.translation import build_translation_lstm_attention

    model = build_translation_lstm_attention(["</s>", "dog"], ["<s>", "</s>", "Hund"],
                                             units=4, embedding_dim=4, max_target_length=5)
    model.save(tmp_path / "model.keras")
    code = ("from lstm_zoo.training.driver import load_model\n"
            f"m = load_model({str(tmp_path)!r})\n"  # nothing of the recipe imported before
            "from lstm_zoo.recipes.translation import translate\n"
            "print(type(m).__name__, repr(translate(m, ['', 'dog'], beam_size=2)[0]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "Seq2SeqTranslator ''"
