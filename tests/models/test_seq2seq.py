"""The attention encoder-decoder: teacher forcing vs stepping, greedy and beam decoding (beam
search checked against brute force), bad input, safe-mode save/load, the loss, and that the
translate graph holds only core TensorFlow ops."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from lstm_zoo.data import text
from lstm_zoo.errors import DataError
from lstm_zoo.models import seq2seq
from lstm_zoo.models.seq2seq import (
    BOS_ID,
    EOS_ID,
    MaskedSequenceLoss,
    Seq2SeqTranslator,
)

SOURCES = ["a red car .", "two dogs run", "a dog"]
TARGETS = ["ein rotes Auto.", "zwei Hunde rennen", "ein Hund"]


def tiny_model(max_target_length: int = 12, dropout: float = 0.0, seed: int = 0,
               **kwargs) -> Seq2SeqTranslator:
    keras.utils.set_random_seed(seed)
    src = text.tokens_as_lists(text.tokenize(SOURCES, lowercase=True))
    tgt = text.tokens_as_lists(text.tokenize(TARGETS))
    sv, tv = seq2seq.make_vocabularies(src, tgt)
    model = Seq2SeqTranslator(sv, tv, embedding_dim=8, units=8, dropout=dropout,
                              max_target_length=max_target_length, **kwargs)
    model.build()
    return model


@pytest.fixture(scope="module")
def trained():
    """A tiny model that has memorised the three pairs."""
    return memorise(tiny_model(seed=1))


def memorise(model: Seq2SeqTranslator) -> Seq2SeqTranslator:
    """Fit ``model`` on the three pairs until it has learnt them by heart."""
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    target_in, target_out = model.encode_target_text(tf.constant(TARGETS))
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss=MaskedSequenceLoss(0.0))
    batches = tf.data.Dataset.from_tensors(((source, target_in), target_out)).repeat(120)
    model.fit(batches, epochs=1, verbose=0)  # one epoch of 120 steps: little per-epoch overhead
    return model


def assert_round_trip(model: Seq2SeqTranslator, path) -> Seq2SeqTranslator:
    """Save ``model`` to ``path``, load it in safe mode, check it computes the same logits."""
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    target_in, _ = model.encode_target_text(tf.constant(TARGETS))
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded((source, target_in)), model((source, target_in)), atol=1e-6)
    return loaded


def sequence_log_probs(model, source_ids, sequences):
    """log p(sequence | source) by teacher forcing, for many sequences at once."""
    length = max(len(seq) for seq in sequences)
    target_in = np.zeros((len(sequences), length), np.int64)
    target_out = np.zeros((len(sequences), length), np.int64)
    for i, seq in enumerate(sequences):
        target_in[i, : len(seq)] = [BOS_ID, *seq[:-1]]
        target_out[i, : len(seq)] = seq
    sources = tf.repeat(source_ids, len(sequences), axis=0)
    log_probs = tf.nn.log_softmax(model((sources, tf.constant(target_in)), training=False))
    picked = np.take_along_axis(log_probs.numpy(), target_out[..., None], -1)[..., 0]
    lengths = np.array([len(seq) for seq in sequences])
    return np.where(np.arange(length)[None] < lengths[:, None], picked, 0.0).sum(1)


@pytest.mark.parametrize("attention", ["luong", "bahdanau"])
def test_stepping_the_cell_matches_teacher_forcing(attention):
    model = tiny_model(attention=attention, attention_units=6)
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    target_in, _ = model.encode_target_text(tf.constant(TARGETS))
    full = tf.nn.log_softmax(model((source, target_in))).numpy()
    memory, keys, mask, state = model.encode(source)
    for t in range(target_in.shape[1]):
        step, state, weights = model.step(tf.cast(target_in[:, t], tf.int64), state, memory,
                                          keys, mask)
        real = target_in.numpy()[:, t] != 0  # padded positions are masked in the full pass
        np.testing.assert_allclose(step.numpy()[real], full[real, t], atol=1e-5)
        np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-5)
        # attention never lands on padding
        assert np.all(weights.numpy()[~mask.numpy()] < 1e-6)


def test_beam_search_finds_the_brute_force_optimum():
    """With a beam wide enough to keep every prefix, beam search must return the sequence
    with the best length-normalised score among all sequences up to the length limit."""
    model = tiny_model(max_target_length=3, seed=3)
    source, _ = model.encode_source_text(tf.constant(["a red car ."]))
    vocab, alpha = model.target_vocab_size, 0.6
    candidates = [[EOS_ID]]
    candidates += [[a, EOS_ID] for a in range(vocab) if a != EOS_ID]
    candidates += [[a, b, c] for a, b in itertools.product(range(vocab), repeat=2)
                   if EOS_ID not in (a, b) for c in range(vocab)]

    def normalised(seqs):
        lengths = np.array([len(seq) for seq in seqs], np.float64)
        return sequence_log_probs(model, source, seqs) / ((5 + lengths) / 6) ** alpha

    best = float(normalised(candidates).max())
    found = model.beam_decode(source, beam_size=len(candidates), length_penalty=alpha,
                              max_length=3).numpy()[0]
    found = [int(t) for t in found]
    if EOS_ID in found:
        found = found[: found.index(EOS_ID) + 1]
    assert float(normalised([found])[0]) == pytest.approx(best, abs=1e-5)


def test_beam_of_one_is_greedy():
    model = tiny_model(seed=4)
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    greedy, attention = model.greedy_decode(source)
    beam = model.beam_decode(source, beam_size=1)
    g, b = greedy.numpy(), beam.numpy()
    n = min(g.shape[1], b.shape[1])
    for row_g, row_b in zip(g, b):  # equal up to the first </s> (greedy pads after it)
        stop = list(row_g).index(EOS_ID) + 1 if EOS_ID in row_g else n
        np.testing.assert_array_equal(row_g[:stop], row_b[:stop])
    assert attention.shape[:2] == g.shape


def test_memorised_pairs_translate_back_greedy_and_beam(trained):
    assert seq2seq.compiled_translate(trained, 1)(tf.constant(SOURCES)).numpy().tolist() == [
        t.encode() for t in TARGETS]
    assert seq2seq.compiled_translate(trained, 3)(tf.constant(SOURCES)).numpy().tolist() == [
        t.encode() for t in TARGETS]


def test_bad_input_is_handled(trained):
    from lstm_zoo.recipes.translation import translate

    out = translate(trained, ["", "   ", "xyzzy ☃ \u0000 quux", "a dog"], beam_size=2)
    assert out[:2] == ["", ""]  # empty input -> empty translation
    assert isinstance(out[2], str)  # out-of-vocabulary words and characters: no crash
    assert out[3] == "ein Hund"
    ids, n_tokens = trained.encode_source_text(tf.constant(["xyzzy ☃ dog"]))
    assert ids.numpy()[0, :3].tolist() == [1, 1, trained.source_vocabulary.index("dog") + 2]


def test_an_empty_batch_translates_to_an_empty_batch():
    model = tiny_model()
    for beam in (1, 2):
        out = seq2seq.compiled_translate(model, beam)(tf.constant([], tf.string))
        assert out.shape == (0,)


def test_long_sources_are_truncated_or_rejected():
    from lstm_zoo.recipes.translation import translate

    model = tiny_model(max_source_length=4)
    long = "a red car . a dog a dog two dogs run"
    ids, n_tokens = model.encode_source_text(tf.constant([long]))
    assert int(n_tokens[0]) == 11
    kept = [int(i) for i in ids.numpy()[0] if i != 0]
    assert len(kept) == 4 and kept[-1] == 2  # 3 tokens, then </s>
    assert translate(model, long, beam_size=1) == translate(model, "a red car", beam_size=1)
    with pytest.raises(DataError, match="sentence 1 has 11 tokens.*at most 3"):
        translate(model, ["a dog", long], strict=True)
    with pytest.raises(DataError, match="sentence 0 is a int"):
        translate(model, [3])


def test_safe_mode_round_trip(trained, tmp_path):
    loaded = assert_round_trip(trained, tmp_path / "m.keras")
    assert isinstance(loaded, Seq2SeqTranslator)
    assert loaded.get_config()["target_vocabulary"] == trained.target_vocabulary
    assert loaded.translate(tf.constant(SOURCES), beam_size=2).numpy().tolist() == [
        t.encode() for t in TARGETS]


def test_additive_attention_learns_and_round_trips(tmp_path):
    """The additive (Bahdanau) score: it memorises the pairs like the dot score, has its own
    query projection and scale, and comes back from a safe-mode ``.keras`` file."""
    model = tiny_model(seed=1, attention="bahdanau", attention_units=6)
    assert model.attention_queries is not None and model.attention_keys.units == 6
    memorise(model)
    assert model.translate(tf.constant(SOURCES)).numpy().tolist() == [t.encode() for t in TARGETS]
    loaded = assert_round_trip(model, tmp_path / "additive.keras")
    assert loaded.get_config()["attention"] == "bahdanau"


def test_without_the_bridge_the_decoder_starts_from_zeros(tmp_path):
    """``bridge=False``: the decoder's initial state is zero whatever the source, so the source
    reaches the decoder through the attention only; stepping still matches teacher forcing."""
    model = tiny_model(attention="bahdanau", attention_units=6, bridge=False)
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    _, _, _, state = model.encode(source)
    assert all(np.all(s.numpy() == 0.0) for s in state)
    with_bridge = tiny_model(attention="bahdanau", attention_units=6)
    assert not np.all(with_bridge.encode(source)[3][0].numpy() == 0.0)
    assert assert_round_trip(model, tmp_path / "nobridge.keras").get_config()["bridge"] is False


def test_tied_embeddings_share_the_target_table(tmp_path):
    """``tie_embeddings``: no output layer; the logits are the attentional state against the
    target embeddings (one table learns both roles), and the model still memorises and
    round-trips."""
    model = tiny_model(seed=1, attention="bahdanau", attention_units=6, tie_embeddings=True)
    assert model.logits is None and model.combine.units == model.embedding_dim
    untied = tiny_model(seed=1, attention="bahdanau", attention_units=6)
    assert model.count_params() < untied.count_params()
    source, _ = model.encode_source_text(tf.constant(SOURCES))
    target_in, target_out = model.encode_target_text(tf.constant(TARGETS))
    with tf.GradientTape() as tape:
        loss = MaskedSequenceLoss(0.0)(target_out, model((source, target_in)))
    table_grad = tape.gradient(loss, model.target_embedding.embeddings)
    # the output side reaches rows the decoder input never reads (e.g. </s>)
    assert float(tf.reduce_sum(tf.abs(tf.convert_to_tensor(table_grad)[EOS_ID]))) > 0
    memorise(model)
    assert model.translate(tf.constant(SOURCES)).numpy().tolist() == [t.encode() for t in TARGETS]
    assert_round_trip(model, tmp_path / "tied.keras")


def test_unknown_attention_score_is_refused():
    with pytest.raises(ValueError, match="attention must be one of"):
        tiny_model(attention="cosine")


def test_masked_loss_ignores_padding_and_smooths():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[4, 2, 0], [3, 0, 0]])
    plain = MaskedSequenceLoss(0.0)(labels, logits).numpy()
    keep = labels != 0
    expected = keras.losses.sparse_categorical_crossentropy(
        labels[keep], logits[keep], from_logits=True).numpy().mean()
    assert plain == pytest.approx(expected, rel=1e-5)
    changed = logits.copy()
    changed[0, 2] += 100.0  # logits at a padded position do not matter
    assert MaskedSequenceLoss(0.0)(labels, changed).numpy() == pytest.approx(plain, rel=1e-6)
    assert MaskedSequenceLoss(0.1)(labels, logits).numpy() != pytest.approx(plain, rel=1e-3)


def test_translate_graph_uses_core_ops_only():
    """Tokenising, the decoding loops and detokenising trace to ops every TensorFlow has
    (no tensorflow-text or sentencepiece custom ops), so a SavedModel serves anywhere."""
    model = tiny_model()
    for beam in (1, 3):
        fn = seq2seq.compiled_translate(model, beam)
        graph = fn.get_concrete_function().graph
        op_types = {op.type for op in graph.get_operations()}
        for function in graph.as_graph_def().library.function:
            op_types |= {node.op for node in function.node_def}
        assert "While" in op_types or "StatelessWhile" in op_types
        assert "StaticRegexReplace" in op_types or "RegexReplace" in op_types
        unknown = sorted(t for t in op_types if not hasattr(tf.raw_ops, t)
                         and not t.startswith("__inference"))
        function_names = {f.signature.name for f in graph.as_graph_def().library.function}
        assert [t for t in unknown if t not in function_names] == []


def test_vocabularies_put_specials_first():
    sv, tv = seq2seq.make_vocabularies([["b", "a", "a"]], [["x", "</s>"]], min_frequency=1)
    assert sv == ["</s>", "a", "b"] and tv == ["<s>", "</s>", "x"]
    with pytest.raises(ValueError, match="source_vocabulary must start"):
        Seq2SeqTranslator(["a"], tv)
