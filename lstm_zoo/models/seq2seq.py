"""Encoder-decoder with attention for translation, built from :class:`lstm_zoo.layers.LSTM`.

Architecture (Luong et al. 2015 global attention without input feeding; the score is additive
(Bahdanau et al. 2015) or Luong's "general" dot score):

* source tokens -> embedding -> bidirectional LSTM encoder (``units`` per direction);
* the decoder LSTM (``2 * units``) starts from the concatenated final encoder states
  (``bridge=True``) or from zeros, and reads the target shifted right (teacher forcing);
* each decoder output attends over the encoder outputs (``keras.layers.Attention`` or
  ``keras.layers.AdditiveAttention`` on keys projected by a ``Dense``),
  ``tanh(W [context; output])`` -> dropout -> vocabulary logits (an output layer, or the
  target embedding table with ``tie_embeddings``).

Without input feeding the decoder's recurrence does not depend on the attention, so training
runs the decoder LSTM over the whole target at once (the fast path of the layer), and decoding
steps the very same cell (``decoder.cell``) one token at a time.

The model carries its vocabularies and tokenisation (:mod:`lstm_zoo.data.text`), so
:meth:`Seq2SeqTranslator.translate` maps raw ``tf.string`` sentences to translated strings
entirely in core TensorFlow ops (tokenise -> encode -> greedy or beam search in a
``tf.while_loop`` -> detokenise); an exported SavedModel needs nothing else.  Beam search is
written here (about 60 lines of TF ops) because keras-hub's ``BeamSampler`` pulls in
tensorflow-text and ranks beams without length normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from lstm_zoo.data import text
from lstm_zoo.layers import LSTM

PAD_ID, UNK_ID = 0, 1
SOURCE_SPECIALS = (text.EOS,)  # every source ends with </s>: never an empty sequence
TARGET_SPECIALS = (text.BOS, text.EOS)
SOURCE_EOS_ID = 2
BOS_ID, EOS_ID = 2, 3
NEG = -1e9  # "minus infinity" that stays finite under arithmetic
ATTENTION_SCORES = ("luong", "bahdanau")


@keras.saving.register_keras_serializable(package="lstm_zoo")
class Seq2SeqTranslator(keras.Model):
    """Bidirectional-LSTM encoder, attention LSTM decoder, in-graph text processing.

    Args:
        source_vocabulary / target_vocabulary: tokens without ``PAD``/``UNK``; they must start
            with ``("</s>",)`` / ``("<s>", "</s>")`` (see :func:`make_vocabularies`).
        embedding_dim, units: embedding width and encoder LSTM units per direction (the
            decoder has ``2 * units``).
        dropout: on embeddings and the attentional hidden state (training only).
        max_source_length: longer sources are truncated to this many tokens (documented
            behaviour, the same in Python and in the serving graph).
        max_target_length: decoding stops after this many tokens.
        source_scheme / target_scheme: ``"words"`` or ``"chars"`` (:mod:`lstm_zoo.data.text`).
        lowercase_source / lowercase_target: lowercase before tokenising.
        label_smoothing: used by the recipe's loss; stored with the model.
        attention: ``"luong"`` (dot score on projected keys, Luong et al. 2015) or
            ``"bahdanau"`` (additive score ``v . tanh(W_q q + W_k k)``, Bahdanau et al. 2015).
            With the bridge, both scores ended up on Multi30k putting every output word's
            weight on the source ``</s>``; it was the bridge, not the score (see ``bridge``).
        attention_units: width of the additive score's hidden layer (``"bahdanau"`` only).
        bridge: start the decoder from the encoder's final states (``True``) or from zeros
            (``False``).  Without the bridge the decoder learns about the source only through
            the attention, which keeps the attention from settling on a fixed "sink" position
            and reading the sentence summary from there instead of aligning.
        tie_embeddings: compute the output logits with the target embedding matrix (its
            transpose, plus a bias; Press & Wolf 2017) instead of a separate output layer; the
            attentional hidden state is then ``embedding_dim`` wide.  It removes the largest
            weight matrix (``2 * units x vocabulary``), so the model is a fraction of the size.
        xla_recurrence: let the LSTM's fused CPU path XLA-compile its loops.  Off by default:
            XLA compiles once per input shape (seconds each on a busy CPU), and translation
            batches come in many lengths.
    """

    def __init__(
        self,
        source_vocabulary: Sequence[str],
        target_vocabulary: Sequence[str],
        embedding_dim: int = 256,
        units: int = 256,
        dropout: float = 0.3,
        max_source_length: int = 100,
        max_target_length: int = 100,
        source_scheme: str = "words",
        target_scheme: str = "words",
        lowercase_source: bool = True,
        lowercase_target: bool = False,
        label_smoothing: float = 0.1,
        xla_recurrence: bool = False,
        attention: str = "luong",
        attention_units: int = 256,
        bridge: bool = True,
        tie_embeddings: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if tuple(source_vocabulary[:1]) != SOURCE_SPECIALS:
            raise ValueError(f"source_vocabulary must start with {SOURCE_SPECIALS}")
        if tuple(target_vocabulary[:2]) != TARGET_SPECIALS:
            raise ValueError(f"target_vocabulary must start with {TARGET_SPECIALS}")
        if attention not in ATTENTION_SCORES:
            raise ValueError(f"attention must be one of {ATTENTION_SCORES}, got {attention!r}")
        if max_source_length < 1 or max_target_length < 1:
            raise ValueError("max_source_length and max_target_length must be >= 1")
        self.source_vocabulary = list(source_vocabulary)
        self.target_vocabulary = list(target_vocabulary)
        self.embedding_dim, self.units, self.dropout_rate = embedding_dim, units, dropout
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.source_scheme = text.check_scheme(source_scheme)
        self.target_scheme = text.check_scheme(target_scheme)
        self.lowercase_source, self.lowercase_target = lowercase_source, lowercase_target
        self.label_smoothing = label_smoothing
        self.xla_recurrence = xla_recurrence
        self.attention_score, self.attention_units = attention, int(attention_units)
        self.bridge = bool(bridge)
        self.tie_embeddings = bool(tie_embeddings)

        self.source_lookup = text.lookup_layer(self.source_vocabulary, name="source_lookup")
        self.target_lookup = text.lookup_layer(self.target_vocabulary, name="target_lookup")
        self.target_words = text.lookup_layer(self.target_vocabulary, invert=True,
                                              name="target_words")
        self.source_embedding = keras.layers.Embedding(
            self.source_vocab_size, embedding_dim, mask_zero=True, name="source_embedding")
        self.target_embedding = keras.layers.Embedding(
            self.target_vocab_size, embedding_dim, mask_zero=True, name="target_embedding")
        self.embedding_dropout = keras.layers.Dropout(dropout)
        self.encoder = keras.layers.Bidirectional(
            LSTM(units, return_sequences=True, return_state=True), name="encoder")
        self.decoder = LSTM(2 * units, return_sequences=True, return_state=True, name="decoder")
        for lstm in (self.encoder.forward_layer, self.encoder.backward_layer, self.decoder):
            lstm.fused_jit = xla_recurrence  # read by lstm_zoo.layers.fused
        key_width = 2 * units if attention == "luong" else self.attention_units
        self.attention_keys = keras.layers.Dense(key_width, use_bias=False, name="attention_keys")
        if attention == "luong":
            self.attention_queries = None
            self.attention = keras.layers.Attention(name="attention")
        else:
            self.attention_queries = keras.layers.Dense(key_width, name="attention_queries")
            self.attention = keras.layers.AdditiveAttention(name="attention")
        hidden_width = embedding_dim if self.tie_embeddings else 2 * units
        self.combine = keras.layers.Dense(hidden_width, activation="tanh", name="combine")
        self.output_dropout = keras.layers.Dropout(dropout)
        self.logits = (None if self.tie_embeddings
                       else keras.layers.Dense(self.target_vocab_size, name="logits"))

    # ------------------------------------------------------------------ sizes and config
    @property
    def source_vocab_size(self) -> int:
        return len(self.source_vocabulary) + 2  # + PAD, UNK

    @property
    def target_vocab_size(self) -> int:
        return len(self.target_vocabulary) + 2

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "source_vocabulary": self.source_vocabulary,
            "target_vocabulary": self.target_vocabulary,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "dropout": self.dropout_rate,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "source_scheme": self.source_scheme,
            "target_scheme": self.target_scheme,
            "lowercase_source": self.lowercase_source,
            "lowercase_target": self.lowercase_target,
            "label_smoothing": self.label_smoothing,
            "xla_recurrence": self.xla_recurrence,
            "attention": self.attention_score,
            "attention_units": self.attention_units,
            "bridge": self.bridge,
            "tie_embeddings": self.tie_embeddings,
        }

    def build(self, input_shape: Any = None) -> None:
        """Create every weight (also what ``.keras`` loading calls before reading them)."""
        if self.built:
            return
        e, h = self.embedding_dim, 2 * self.units
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        self.encoder.build((None, None, e))
        self.decoder.build((None, None, e))
        self.attention_keys.build((None, None, h))
        k = self.attention_keys.units
        if self.attention_queries is not None:
            self.attention_queries.build((None, None, h))
        self.attention.build([(None, None, k), (None, None, h), (None, None, k)])
        self.combine.build((None, None, 2 * h))
        if self.logits is None:
            self.logits_bias = self.add_weight(shape=(self.target_vocab_size,),
                                               initializer="zeros", name="logits_bias")
        else:
            self.logits.build((None, None, h))
        self.built = True

    # ------------------------------------------------------------------ text <-> ids
    def encode_source_text(self, sentences: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """See :func:`encode_source`; uses this model's vocabulary and settings, padded."""
        ids, n_tokens = encode_source(sentences, self.source_lookup, self.source_scheme,
                                      self.lowercase_source, self.max_source_length)
        ids = ids.to_tensor(PAD_ID)
        # pad time to a multiple of 8 (masked, so results are unchanged): few distinct shapes
        # to trace (and to XLA-compile with xla_recurrence); an empty batch still gets 8
        # steps, as the recurrence cannot run over zero
        width = tf.shape(ids)[1]
        pad = -width % 8 + 8 * tf.cast(tf.equal(width, 0), tf.int32)
        return tf.pad(ids, [[0, 0], [0, pad]]), n_tokens

    def encode_target_text(self, sentences: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """See :func:`encode_target`, padded to ``[batch, time]``."""
        target_in, target_out = encode_target(sentences, self.target_lookup, self.target_scheme,
                                              self.lowercase_target, self.max_target_length)
        return target_in.to_tensor(PAD_ID), target_out.to_tensor(PAD_ID)

    def decode_target_ids(self, ids: tf.Tensor) -> tf.Tensor:
        """Token ids ``[batch, time]`` -> detokenised strings; stops at the first ``</s>`` and
        drops padding, ``<s>`` and ``[UNK]``."""
        ids = tf.cast(ids, tf.int64)
        before_eos = tf.equal(tf.cumsum(tf.cast(tf.equal(ids, EOS_ID), tf.int32), axis=1), 0)
        keep = tf.logical_and(before_eos, ids > EOS_ID)
        return text.detokenize(tf.ragged.boolean_mask(self.target_words(ids), keep),
                               self.target_scheme)

    # ------------------------------------------------------------------ network
    def encode(self, source_ids: tf.Tensor, training: bool = False):
        """Encoder outputs, attention keys, source mask and the decoder's initial state."""
        mask = tf.not_equal(source_ids, PAD_ID)
        x = self.embedding_dropout(self.source_embedding(source_ids), training=training)
        outputs, fh, fc, bh, bc = self.encoder(x, mask=mask, training=training)
        keys = self.attention_keys(outputs)
        if not self.bridge:
            zeros = tf.zeros_like(tf.concat([fh, bh], -1))
            return outputs, keys, mask, [zeros, zeros]
        return outputs, keys, mask, [tf.concat([fh, bh], -1), tf.concat([fc, bc], -1)]

    def attend(self, decoder_outputs, memory, keys, source_mask, training: bool = False):
        """Logits ``[batch, time, vocab]`` and attention weights ``[batch, time, source]``."""
        queries = (decoder_outputs if self.attention_queries is None
                   else self.attention_queries(decoder_outputs))
        context, weights = self.attention(
            [queries, memory, keys], mask=[None, source_mask],
            return_attention_scores=True, training=training)
        hidden = self.combine(tf.concat([context, decoder_outputs], -1))
        hidden = self.output_dropout(hidden, training=training)
        if self.logits is None:  # tied: scores against every target embedding
            table = tf.convert_to_tensor(self.target_embedding.embeddings)
            return tf.einsum("bte,ve->btv", hidden, table) + self.logits_bias, weights
        return self.logits(hidden), weights

    def call(self, inputs, training: bool = False):
        """Teacher forcing: ``(source_ids, decoder_input_ids)`` -> logits for every position."""
        source_ids, target_in = inputs
        memory, keys, source_mask, state = self.encode(source_ids, training)
        y = self.embedding_dropout(self.target_embedding(target_in), training=training)
        outputs, _, _ = self.decoder(y, initial_state=state, mask=tf.not_equal(target_in, PAD_ID),
                                     training=training)
        return self.attend(outputs, memory, keys, source_mask, training)[0]

    def step(self, tokens, state, memory, keys, source_mask):
        """One decoding step: previous tokens ``[n]`` -> log-probabilities ``[n, vocab]``,
        the new state and the attention weights ``[n, source]``."""
        y = tf.gather(self.target_embedding.embeddings, tokens)  # no Keras mask at one step
        h, state = self.decoder.cell(y, state, training=False)
        logits, weights = self.attend(h[:, None, :], memory, keys, source_mask)
        return tf.nn.log_softmax(logits[:, 0, :]), list(state), weights[:, 0, :]

    # ------------------------------------------------------------------ decoding
    def greedy_decode(self, source_ids: tf.Tensor, max_length: int | None = None):
        """Greedy decoding: ``(token ids [batch, time], attention [batch, time, source])``."""
        max_length = max_length or self.max_target_length
        memory, keys, mask, state = self.encode(source_ids)
        batch = tf.shape(source_ids)[0]
        tokens = tf.fill([batch], tf.constant(BOS_ID, tf.int64))
        finished = tf.zeros([batch], tf.bool)
        out_ids = tf.TensorArray(tf.int64, size=0, dynamic_size=True)
        out_att = tf.TensorArray(tf.float32, size=0, dynamic_size=True)

        def body(t, tokens, finished, state, out_ids, out_att):
            log_probs, state, weights = self.step(tokens, state, memory, keys, mask)
            nxt = tf.argmax(log_probs, axis=-1, output_type=tf.int64)
            nxt = tf.where(finished, tf.constant(PAD_ID, tf.int64), nxt)
            return (t + 1, nxt, finished | tf.equal(nxt, EOS_ID), state,
                    out_ids.write(t, nxt), out_att.write(t, weights))

        def cond(t, tokens, finished, *_):  # at least one step, so an empty batch stacks
            return tf.logical_and(t < max_length,
                                  tf.logical_or(t == 0, tf.logical_not(tf.reduce_all(finished))))

        units = 2 * self.units
        _, _, _, _, out_ids, out_att = tf.while_loop(
            cond, body, (tf.constant(0), tokens, finished, state, out_ids, out_att),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None]),
                              [tf.TensorShape([None, units])] * 2, tf.TensorShape(None),
                              tf.TensorShape(None)))
        return tf.transpose(out_ids.stack(), [1, 0]), tf.transpose(out_att.stack(), [1, 0, 2])

    def beam_decode(self, source_ids: tf.Tensor, beam_size: int = 5, length_penalty: float = 0.6,
                    max_length: int | None = None) -> tf.Tensor:
        """Beam search with GNMT length normalisation ``score / ((5 + len) / 6) ** alpha``.

        Finished hypotheses stay in the beam with a frozen score and length and compete with
        the live ones on normalised score; the search stops when every beam has finished or
        after ``max_length`` steps.  Returns the best hypothesis' ids ``[batch, time]``.
        """
        max_length = max_length or self.max_target_length
        k = beam_size
        memory, keys, mask, state = self.encode(source_ids)
        batch = tf.shape(source_ids)[0]
        vocab = self.target_vocab_size

        def tile(x):  # [batch, ...] -> [batch * k, ...]
            return tf.repeat(x, k, axis=0)

        memory, keys, mask, state = tile(memory), tile(keys), tile(mask), [tile(s) for s in state]
        scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], NEG)], 0)[None], [batch, 1])
        lengths = tf.zeros([batch, k], tf.float32)
        finished = tf.zeros([batch, k], tf.bool)
        seqs = tf.fill([batch, k, 1], tf.constant(BOS_ID, tf.int64))
        only_pad = tf.concat([[0.0], tf.fill([vocab - 1], NEG)], 0)  # a finished beam's next

        def normalise(s, n):
            return s / tf.pow((5.0 + n) / 6.0, length_penalty)

        def body(t, seqs, scores, lengths, finished, state):
            log_probs, state, _ = self.step(tf.reshape(seqs[:, :, -1], [-1]), state,
                                            memory, keys, mask)
            log_probs = tf.reshape(log_probs, [batch, k, vocab])
            log_probs = tf.where(finished[:, :, None], only_pad, log_probs)
            total = scores[:, :, None] + log_probs
            cand_len = tf.where(finished, lengths, tf.cast(t + 1, tf.float32))[:, :, None]
            cand_len = tf.broadcast_to(cand_len, tf.shape(total))
            flat = tf.reshape(normalise(total, cand_len), [batch, k * vocab])
            _, index = tf.math.top_k(flat, k)
            beam, token = index // vocab, tf.cast(index % vocab, tf.int64)
            scores = tf.gather(tf.reshape(total, [batch, -1]), index, batch_dims=1)
            lengths = tf.gather(tf.reshape(cand_len, [batch, -1]), index, batch_dims=1)
            finished = tf.gather(finished, beam, batch_dims=1) | tf.equal(token, EOS_ID)
            seqs = tf.concat([tf.gather(seqs, beam, batch_dims=1), token[:, :, None]], 2)
            flat_beam = tf.reshape(beam + k * tf.range(batch)[:, None], [-1])
            state = [tf.gather(s, flat_beam) for s in state]
            return t + 1, seqs, scores, lengths, finished, state

        def cond(t, seqs, scores, lengths, finished, state):
            return tf.logical_and(t < max_length, tf.logical_not(tf.reduce_all(finished)))

        units = 2 * self.units
        _, seqs, scores, lengths, _, _ = tf.while_loop(
            cond, body, (tf.constant(0), seqs, scores, lengths, finished, state),
            shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, k, None]),
                              tf.TensorShape([None, k]), tf.TensorShape([None, k]),
                              tf.TensorShape([None, k]),
                              [tf.TensorShape([None, units]), tf.TensorShape([None, units])]))
        best = tf.argmax(normalise(scores, tf.maximum(lengths, 1.0)), axis=1)
        return tf.gather(seqs, best, batch_dims=1)[:, 1:]

    def translate(self, sentences: Any, beam_size: int = 1,
                  length_penalty: float = 0.6) -> tf.Tensor:
        """Raw sentences ``tf.string [batch]`` -> translations ``tf.string [batch]``.

        ``beam_size=1`` decodes greedily.  Empty (or whitespace-only) input translates to an
        empty string; unknown words and characters become the OOV token; sources longer than
        ``max_source_length`` tokens are truncated to it.  All in core TF ops, so it traces
        into a serving graph.
        """
        sentences = tf.convert_to_tensor(sentences, tf.string)
        source_ids, n_tokens = self.encode_source_text(sentences)
        if beam_size <= 1:
            ids, _ = self.greedy_decode(source_ids)
        else:
            ids = self.beam_decode(source_ids, beam_size, length_penalty)
        translations = self.decode_target_ids(ids)
        return tf.where(n_tokens > 0, translations, tf.constant("", tf.string))


def encode_source(sentences: Any, lookup: Any, scheme: str, lowercase: bool,
                  max_length: int) -> tuple[tf.RaggedTensor, tf.Tensor]:
    """``tf.string [batch]`` -> (ragged source ids ending in ``</s>``, at most ``max_length``
    per row; the number of tokens each sentence had before truncation ``[batch]``)."""
    tokens = text.tokenize(sentences, scheme, lowercase)
    n_tokens = tokens.row_lengths()
    ids = lookup(tokens[:, : max_length - 1])
    eos = tf.fill([ids.nrows(), 1], tf.constant(SOURCE_EOS_ID, ids.dtype))
    return tf.concat([ids, eos], axis=1), n_tokens


def encode_target(sentences: Any, lookup: Any, scheme: str, lowercase: bool,
                  max_length: int) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
    """``tf.string [batch]`` -> ragged (decoder input ``<s> y``, decoder target ``y </s>``);
    targets longer than ``max_length - 1`` tokens are truncated."""
    tokens = text.tokenize(sentences, scheme, lowercase)
    ids = lookup(tokens[:, : max_length - 1])
    n = ids.nrows()
    bos = tf.fill([n, 1], tf.constant(BOS_ID, ids.dtype))
    eos = tf.fill([n, 1], tf.constant(EOS_ID, ids.dtype))
    return tf.concat([bos, ids], 1), tf.concat([ids, eos], 1)


_COMPILED: Any = None  # WeakKeyDictionary model -> {(beam, penalty): tf.function}


def compiled_translate(model: Seq2SeqTranslator, beam_size: int = 1,
                       length_penalty: float = 0.6) -> Any:
    """A cached ``tf.function`` ``sentences -> translations`` for ``model`` (eager
    ``translate`` would run the decoding loop in Python, step by step).  No autograph: the
    loops are explicit ``tf.while_loop``s."""
    global _COMPILED
    import weakref

    if _COMPILED is None:
        _COMPILED = weakref.WeakKeyDictionary()
    per_model = _COMPILED.setdefault(model, {})
    key = (int(beam_size), float(length_penalty))
    if key not in per_model:
        ref = weakref.ref(model)  # the cached function must not keep the model alive
        per_model[key] = tf.function(
            lambda sentences: ref().translate(sentences, key[0], key[1]),
            input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    return per_model[key]


def make_vocabularies(
    source_tokens: Sequence[Sequence[str]],
    target_tokens: Sequence[Sequence[str]],
    min_frequency: int = 1,
    max_size: int | None = None,
) -> tuple[list[str], list[str]]:
    """Source and target vocabularies (with their special tokens first) from training tokens."""
    source = text.build_vocabulary(source_tokens, min_frequency, max_size, SOURCE_SPECIALS)
    target = text.build_vocabulary(target_tokens, min_frequency, max_size, TARGET_SPECIALS)
    return source, target


@keras.saving.register_keras_serializable(package="lstm_zoo")
class MaskedSequenceLoss(keras.losses.Loss):
    """Token cross-entropy from logits with label smoothing, averaged over non-padding
    positions (targets equal to ``PAD_ID`` are ignored)."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_sequence_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        total, count = self.sum_and_count(y_true, y_pred)
        return total / tf.maximum(count, 1.0)

    def sum_and_count(self, y_true, y_pred):
        """The summed per-token loss over non-padding positions and their count (``call`` is
        their ratio); data-parallel training adds both up over all workers, so its loss is
        the exact mean over the global batch's tokens (:mod:`lstm_zoo.training.distributed.losses`)."""
        y_true = tf.cast(y_true, tf.int64)
        log_probs = tf.nn.log_softmax(tf.cast(y_pred, tf.float32))
        nll = -tf.gather(log_probs, y_true, batch_dims=2)
        smooth = -tf.reduce_mean(log_probs, axis=-1)
        eps = self.label_smoothing
        per_token = (1.0 - eps) * nll + eps * smooth
        mask = tf.cast(tf.not_equal(y_true, PAD_ID), tf.float32)
        return tf.reduce_sum(per_token * mask), tf.reduce_sum(mask)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="lstm_zoo")
def masked_accuracy(y_true, y_pred):
    """Share of non-padding target tokens predicted exactly (teacher forcing)."""
    y_true = tf.cast(y_true, tf.int64)
    mask = tf.not_equal(y_true, PAD_ID)
    hit = tf.logical_and(tf.equal(tf.argmax(y_pred, -1), y_true), mask)
    return tf.reduce_sum(tf.cast(hit, tf.float32)) / tf.maximum(
        tf.reduce_sum(tf.cast(mask, tf.float32)), 1.0)
