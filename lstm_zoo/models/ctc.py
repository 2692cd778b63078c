"""CTC acoustic model: raw waveform -> log-mel -> (bi)LSTM stack -> per-frame label logits.

The architecture is shared, not registered (recipes register it under their own names).  The
model takes zero-padded raw audio ``[batch, samples]`` and returns logits ``[batch, frames,
num_labels + 1]`` whose last class is the CTC blank (the convention of
``tf.nn.ctc_greedy_decoder`` / ``tf.nn.ctc_beam_search_decoder``).  Frames past an example's
valid length are pinned to "certainly blank" (:class:`BlankPadding`), so the loss and the
decoders can run over the full padded length and still see exactly each example's frames.

Decoding helpers turn logits into label sequences (greedy or beam search) and into strings
in-graph, and :func:`edit_distance` / :func:`error_rates` score them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lstm_zoo.data.audio import LogMelSpectrogram
from lstm_zoo.layers import LSTM

_PINNED_LOGIT = 30.0  # blank logit on padded frames: softmax gives blank ~ 1 - 1e-13
# ensemble fusion works on segments of at most about twice this many logit frames (15 s at
# the speech recipe's 33 frames/s): longer clips are cut where every member hears silence
FUSION_WINDOW_FRAMES = 512


@keras.saving.register_keras_serializable(package="lstm_zoo")
class SpectralConv(keras.layers.Layer):
    """2-D convolutions over (time, frequency) of features ``[B, T, F]`` before the LSTMs
    (a CLDNN-style front end): ``layers`` ReLU convolutions of ``channels`` maps, each followed
    by max-pooling by 2 along frequency only, flattened back to ``[B, T, ceil(F / 2**layers) *
    channels]``.  Small shifts of formants along frequency (one speaker's vocal tract against
    another's) move a pattern by a bin or two, which the pooled maps absorb.

    The time resolution is kept and the mask passes through; frames past an example's valid
    length are zeroed after every convolution, so the next one sees there the zeros its "same"
    padding gives an unpadded example (a padded batch gives each example what it alone would).
    """

    def __init__(self, channels: int = 16, layers: int = 2, kernel_size: int = 3, **kwargs: Any):
        super().__init__(**kwargs)
        if int(channels) < 1 or int(layers) < 1:
            raise ValueError(f"channels and layers must be >= 1, got {channels}, {layers}")
        self.channels, self.layers, self.kernel_size = int(channels), int(layers), int(kernel_size)
        self.convs = [keras.layers.Conv2D(self.channels, self.kernel_size, padding="same",
                                          activation="relu", name=f"conv_{i}")
                      for i in range(self.layers)]
        self.supports_masking = True

    @staticmethod
    def _pooled(features: int) -> int:
        """Frequency bands left after one ``SAME`` max-pool by 2: ``ceil(features / 2)``."""
        return -(-features // 2)

    def _bands(self, features: int) -> int:
        for _ in range(self.layers):
            features = self._pooled(features)
        return features

    def build(self, input_shape: Any) -> None:
        features, depth = int(input_shape[-1]), 1
        for conv in self.convs:
            conv.build((None, None, features, depth))
            features, depth = self._pooled(features), self.channels

    def call(self, x: Any, mask: Any = None) -> Any:
        keep = None if mask is None else tf.cast(mask, x.dtype)[:, :, tf.newaxis, tf.newaxis]
        y = x[..., tf.newaxis]
        for conv in self.convs:
            y = tf.nn.max_pool2d(conv(y), ksize=(1, 2), strides=(1, 2), padding="SAME")
            if keep is not None:  # after every layer: the next one must see zeros past the end
                y = y * keep
        shape = tf.shape(y)
        return tf.reshape(y, [shape[0], shape[1], y.shape[2] * self.channels])

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return (input_shape[0], input_shape[1], self._bands(input_shape[2]) * self.channels)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "channels": self.channels, "layers": self.layers,
                "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="lstm_zoo")
class FrameStacking(keras.layers.Layer):
    """Concatenate ``factor`` consecutive frames: ``[B, T, F] -> [B, ceil(T/factor), F*factor]``.

    Lowers the frame rate the LSTMs run at (100 -> 33 frames/s for ``factor=3``), halving their
    cost; a stacked frame is valid when its first frame is (as masks are prefixes, when any is).
    """

    def __init__(self, factor: int = 2, **kwargs: Any):
        super().__init__(**kwargs)
        self.factor = int(factor)
        self.supports_masking = True

    def _pad(self, x: Any) -> Any:
        extra = (-tf.shape(x)[1]) % self.factor
        paddings = [[0, 0], [0, extra]] + [[0, 0]] * (len(x.shape) - 2)
        return tf.pad(x, paddings)

    def call(self, x: Any, mask: Any = None) -> Any:
        x = self._pad(x)
        shape = tf.shape(x)
        return tf.reshape(x, [shape[0], shape[1] // self.factor, x.shape[-1] * self.factor])

    def compute_mask(self, x: Any, mask: Any = None) -> Any:
        if mask is None:
            return None
        return mask[:, :: self.factor]  # masks are prefixes: a group is valid iff its first frame is

    def compute_output_shape(self, input_shape: Any) -> tuple:
        frames = input_shape[1]
        frames = None if frames is None else -(-frames // self.factor)
        return (input_shape[0], frames, input_shape[2] * self.factor)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="lstm_zoo")
class SpecAugment(keras.layers.Layer):
    """SpecAugment-style masking of features ``[B, T, F]``, in training only.

    Each example gets ``freq_masks`` bands of up to ``freq_width`` features and ``time_masks``
    spans of up to ``time_width`` frames set to zero (the per-utterance mean after
    normalisation).  It makes the LSTMs rely on no single band or instant, a cheap regulariser
    that helps most when few speakers are seen in training.  At inference it is the identity.
    """

    def __init__(self, freq_masks: int = 2, freq_width: int = 6, time_masks: int = 2,
                 time_width: int = 8, seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _spans(self, count: int, width: int, size: Any, batch: Any) -> Any:
        """A float ``[B, size]`` keep-mask with ``count`` random zeroed spans per row."""
        positions = tf.range(size)[tf.newaxis, :]
        keep = tf.ones([batch, size], tf.bool)
        for _ in range(count):
            w = tf.cast(keras.random.uniform([batch, 1], 0, width + 1, seed=self.seed_generator),
                        tf.int32)
            top = tf.cast(tf.maximum(size - w, 1), tf.float32)
            start = tf.cast(keras.random.uniform([batch, 1], seed=self.seed_generator) * top,
                            tf.int32)
            keep &= ~((positions >= start) & (positions < start + w))
        return tf.cast(keep, self.compute_dtype)

    def call(self, x: Any, training: bool | None = None, mask: Any = None) -> Any:
        if not training:
            return x
        batch, frames, feats = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        keep_f = self._spans(self.freq_masks, self.freq_width, feats, batch)[:, tf.newaxis, :]
        keep_t = self._spans(self.time_masks, self.time_width, frames, batch)[:, :, tf.newaxis]
        return x * keep_f * keep_t

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "freq_masks": self.freq_masks,
                "freq_width": self.freq_width, "time_masks": self.time_masks,
                "time_width": self.time_width, "seed": self.seed}


@keras.saving.register_keras_serializable(package="lstm_zoo")
class BlankPadding(keras.layers.Layer):
    """Pin masked (padded) frames to the blank class, then drop the mask.

    On a padded frame the blank logit is set to a large value and the others to zero, so CTC
    over the full padded length equals CTC over the valid frames (blank probability ~1 there)
    and no gradient flows through padding.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, logits: Any, mask: Any = None) -> Any:
        if mask is None:
            return logits
        classes = logits.shape[-1]
        pinned = tf.one_hot(classes - 1, classes, on_value=_PINNED_LOGIT, dtype=logits.dtype)
        keep = tf.cast(mask, tf.bool)[..., tf.newaxis]
        return tf.where(keep, logits, tf.broadcast_to(pinned, tf.shape(logits)))

    def compute_mask(self, logits: Any, mask: Any = None) -> Any:
        return None

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


@keras.saving.register_keras_serializable(package="lstm_zoo")
class CTCLoss(keras.losses.Loss):
    """CTC loss for labels padded with ``-1`` (``[B, L]`` int) and logits ``[B, T, C]``.

    The blank is the last class.  Logit length is the full ``T`` (padding is pinned to blank
    by :class:`BlankPadding`); label length is the count of non-negative labels.
    """

    def __init__(self, name: str = "ctc_loss", **kwargs: Any):
        super().__init__(name=name, **kwargs)

    def call(self, y_true: Any, y_pred: Any) -> Any:
        labels = tf.cast(y_true, tf.int32)
        label_length = tf.reduce_sum(tf.cast(labels >= 0, tf.int32), axis=1)
        logits = tf.cast(y_pred, tf.float32)
        batch, frames = tf.shape(logits)[0], tf.shape(logits)[1]
        return tf.nn.ctc_loss(
            labels=tf.maximum(labels, 0),
            logits=logits,
            label_length=label_length,
            logit_length=tf.fill([batch], frames),
            logits_time_major=False,
            blank_index=logits.shape[-1] - 1,
        )


def build_ctc_acoustic_model(
    num_labels: int = 10,
    units: int = 96,
    num_layers: int = 2,
    bidirectional: bool = True,
    proj_units: int | None = None,
    dropout: float = 0.1,
    frame_stack: int = 3,
    spec_augment: bool = False,
    freq_mask_width: int = 6,
    time_mask_width: int = 8,
    vtlp: float = 0.0,
    conv_channels: int = 0,
    conv_layers: int = 2,
    sample_rate: int = 8000,
    num_mel_bins: int = 40,
    num_mfcc: int = 0,
    frame_length_ms: float = 25.0,
    frame_step_ms: float = 10.0,
    implementation: str = "auto",
    name: str = "ctc_acoustic_model",
) -> keras.Model:
    """Raw audio ``[B, samples]`` -> CTC logits ``[B, frames, num_labels + 1]`` (blank last).

    ``units``/``num_layers``/``bidirectional``/``proj_units`` shape the LSTM stack (each layer
    an :class:`lstm_zoo.layers.LSTM`, optionally with a projection to ``proj_units``);
    ``frame_stack`` consecutive feature frames are concatenated before the LSTMs;
    ``spec_augment`` masks random bands and spans of the features while training (two
    bands of up to ``freq_mask_width`` features, two spans of up to ``time_mask_width`` frames);
    ``vtlp`` warps each training utterance's frequency axis by a random factor in
    ``[1 - vtlp, 1 + vtlp]`` (vocal tract length perturbation, see ``LogMelSpectrogram``);
    ``conv_channels`` > 0 puts a :class:`SpectralConv` front end of ``conv_layers``
    convolutions before the frame stacking (0: none); ``num_mfcc`` > 0 feeds that many MFCCs
    instead of the ``num_mel_bins`` log-mel bands.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    frame_length = int(round(sample_rate * frame_length_ms / 1000))
    frame_step = int(round(sample_rate * frame_step_ms / 1000))
    fft_length = 1 << (frame_length - 1).bit_length()
    audio = keras.Input(shape=(None,), dtype="float32", name="audio")
    x = LogMelSpectrogram(
        sample_rate=sample_rate, frame_length=frame_length, frame_step=frame_step,
        fft_length=fft_length, num_mel_bins=num_mel_bins, vtlp=vtlp, num_mfcc=num_mfcc,
        name="log_mel",
    )(audio)
    if spec_augment:
        x = SpecAugment(freq_width=freq_mask_width, time_width=time_mask_width,
                        name="spec_augment")(x)
    if conv_channels:
        x = SpectralConv(conv_channels, conv_layers, name="spectral_conv")(x)
    if frame_stack > 1:
        x = FrameStacking(frame_stack, name="frame_stacking")(x)
    for i in range(num_layers):
        rnn = LSTM(
            units, return_sequences=True, proj_units=proj_units or None,
            implementation=implementation, name=f"lstm_{i}",
        )
        x = keras.layers.Bidirectional(rnn, name=f"bilstm_{i}")(x) if bidirectional else rnn(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(num_labels + 1, name="logits")(x)
    logits = BlankPadding(name="blank_padding")(logits)
    return keras.Model(audio, logits, name=name)


# ---- decoding ----------------------------------------------------------------------------------


def _blank_frames(logits: Any, shape: Any) -> Any:
    """Logits of ``shape`` whose every frame is certainly blank (as padding is pinned)."""
    classes = logits.shape[-1]
    blank = tf.one_hot(classes - 1, classes, on_value=_PINNED_LOGIT, dtype=logits.dtype)
    return tf.broadcast_to(blank, shape)


def _at_least_one(logits: Any, axis: int) -> Any:
    """``logits`` with one blank-pinned entry appended along ``axis`` if that axis is empty."""
    shape = tf.shape(logits)
    extra = tf.tensor_scatter_nd_update(shape, [[axis]], [tf.maximum(0, 1 - shape[axis])])
    return tf.concat([logits, _blank_frames(logits, extra)], axis=axis)


def _nonempty(logits: Any) -> Any:
    """Logits ``[B, (N,) T, C]`` padded to at least one example and one frame.

    TF's CTC decoders refuse empty inputs ("inputs must not be empty"); the padding is
    certainly blank, so it decodes to nothing and the caller restores the batch size.
    """
    return _at_least_one(_at_least_one(logits, logits.shape.rank - 2), 0)


def _with_batch(sparse: tf.SparseTensor, batch: Any) -> tf.SparseTensor:
    """``sparse`` with ``batch`` rows (entries of padded rows are never produced)."""
    return tf.SparseTensor(sparse.indices, sparse.values,
                           tf.stack([tf.cast(batch, tf.int64), sparse.dense_shape[1]]))


def decode(logits: Any, method: str = "greedy", beam_width: int = 8) -> tf.SparseTensor:
    """CTC-decode logits ``[B, T, C]`` (blank last) into a ``SparseTensor`` of label ids.

    ``method`` is ``"greedy"`` (best path, repeats merged, blanks dropped) or ``"beam"``
    (prefix beam search, ``beam_width`` beams, best beam kept).  Logits ``[B, N, T, C]`` of
    an ensemble's N members (``combine="stack"``) are decoded by :func:`decode_ensemble`.
    An empty batch, or examples of no frames, decode to no labels.
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    if logits.shape.rank == 4:
        if tf.executing_eagerly():  # its CTC scoring is many small ops: run them as a graph
            return _compiled_decode_ensemble(logits.shape[1], logits.shape[-1], method,
                                             beam_width)(logits)
        return decode_ensemble(logits, method, beam_width)
    batch = tf.shape(logits)[0]
    logits = _nonempty(logits)
    time_major = tf.transpose(logits, [1, 0, 2])
    lengths = tf.fill([tf.shape(logits)[0]], tf.shape(logits)[1])
    if method == "greedy":
        decoded, _ = tf.nn.ctc_greedy_decoder(time_major, lengths, merge_repeated=True)
    elif method == "beam":
        decoded, _ = tf.nn.ctc_beam_search_decoder(
            time_major, lengths, beam_width=beam_width, top_paths=1
        )
    else:
        raise ValueError(f"unknown CTC decoding method {method!r}; expected 'greedy' or 'beam'")
    return _with_batch(decoded[0], batch)


def decode_ensemble(logits: Any, method: str = "greedy", beam_width: int = 8,
                    top_paths: int = 4,
                    window: int = FUSION_WINDOW_FRAMES) -> tf.SparseTensor:
    """The best transcript per example for the stacked logits ``[B, N, T, C]`` of N models.

    Sequence-level fusion: every member proposes candidates (its greedy path, or its
    ``top_paths`` best beams for ``"beam"``), and the candidate with the highest summed CTC
    log-likelihood over all members wins - a product of the members' sequence
    probabilities, each summed over all of that member's alignments.  Averaging the
    members' per-frame posteriors instead fails for CTC: each member puts a label's spike on
    its own frame, and where the spikes do not coincide the average is blank (on a held-out
    speaker it turned 3 members of 11-14 % digit error rate into 20 %, almost all deletions;
    sequence fusion gave 10.9 %).  Core TF ops only, so it runs in a serving graph.

    Scoring a candidate costs frames x labels, and both grow with the audio, so a long clip
    is fused in segments (:func:`_segments`): up to ``window`` frames in one piece (the
    result is then exactly the whole-utterance fusion), longer ones cut at frames every
    member calls blank, so the cost stays linear in the length.
    """
    logits = tf.convert_to_tensor(logits, tf.float32)
    if logits.shape[1] is None:
        raise ValueError("decode_ensemble needs the number of members (axis 1) known statically")
    batch = tf.shape(logits)[0]
    segments, per_example = _segments(_nonempty(logits), window)
    fused = tf.RaggedTensor.from_sparse(_fuse(segments, method, beam_width, top_paths))
    joined = tf.RaggedTensor.from_uniform_row_length(
        fused, tf.cast(per_example, tf.int64)).merge_dims(1, 2)
    return _with_batch(joined.to_sparse(), batch)


def _segments(logits: Any, window: int) -> tuple[Any, Any]:
    """Cut stacked logits ``[B, N, T, C]`` into ``[B * K, N, <= 2 * window, C]`` segments.

    The frames are split into ``K = ceil(T / window)`` windows; each window but the last
    ends a segment at its last frame where every member's best class is blank (or at its end
    when there is none), so a segment never cuts through a label every member hears, and a
    member's greedy paths of the segments, joined, are its greedy path of the whole.  Shorter
    segments are padded with certainly-blank frames (the convention of ``BlankPadding``).
    Returns the segments and ``K`` (segments per example, in order).
    """
    classes = logits.shape[-1]
    batch, frames = tf.shape(logits)[0], tf.shape(logits)[2]
    per_example = (frames + window - 1) // window
    ends = _segment_ends(logits, window, per_example)
    positions = tf.broadcast_to(tf.range(frames)[tf.newaxis, :], [batch, frames])
    segment = tf.searchsorted(ends, positions, side="left")  # ends before the frame
    rows = segment + tf.range(batch)[:, tf.newaxis] * per_example
    by_frame = tf.reshape(tf.transpose(logits, [0, 2, 1, 3]), [-1, logits.shape[1], classes])
    ragged = tf.RaggedTensor.from_value_rowids(by_frame, tf.reshape(rows, [-1]),
                                               nrows=batch * per_example)
    padded = ragged.to_tensor(default_value=_blank_frames(logits, [logits.shape[1], classes]))
    return tf.transpose(padded, [0, 2, 1, 3]), per_example


def _segment_ends(logits: Any, window: int, windows: Any) -> Any:
    """``[B, windows]``: the last frame of each segment (see :func:`_segments`); the last
    segment ends at the last frame."""
    batch, frames = tf.shape(logits)[0], tf.shape(logits)[2]
    blank = tf.reduce_all(tf.argmax(logits, -1, output_type=tf.int32) == logits.shape[-1] - 1,
                          axis=1)  # [B, T]: every member's best class is blank
    blank = tf.reshape(tf.pad(blank, [[0, 0], [0, windows * window - frames]]),
                       [batch, windows, window])
    last_blank = window - 1 - tf.argmax(tf.cast(blank[:, :, ::-1], tf.int32), axis=2,
                                        output_type=tf.int32)
    ends = tf.range(windows)[tf.newaxis, :] * window + tf.where(
        tf.reduce_any(blank, axis=2), last_blank, window - 1)
    return tf.concat([ends[:, :-1], tf.fill([batch, 1], frames - 1)], axis=1)


def _fuse(logits: Any, method: str, beam_width: int, top_paths: int) -> tf.SparseTensor:
    """Sequence-level fusion of whole (non-empty) stacked logits, see :func:`decode_ensemble`."""
    members, classes = logits.shape[1], logits.shape[-1]
    batch, frames = tf.shape(logits)[0], tf.shape(logits)[2]
    candidates = []  # dense [B, length] label ids, -1 after the end
    for m in range(members):
        if method == "greedy":
            paths = [decode(logits[:, m], "greedy")]
        elif method == "beam":
            paths, _ = tf.nn.ctc_beam_search_decoder(
                tf.transpose(logits[:, m], [1, 0, 2]), tf.fill([batch], frames),
                beam_width=max(beam_width, top_paths), top_paths=top_paths)
        else:
            raise ValueError(f"unknown CTC decoding method {method!r}; expected 'greedy' or "
                             "'beam'")
        for path in paths:
            shape = tf.stack([tf.cast(batch, tf.int64), path.dense_shape[1]])
            candidates.append(tf.sparse.to_dense(
                tf.SparseTensor(path.indices, path.values, shape), default_value=-1))
    length = tf.maximum(1, tf.reduce_max([tf.shape(c)[1] for c in candidates]))
    stacked = tf.stack([tf.pad(c, [[0, 0], [0, length - tf.shape(c)[1]]], constant_values=-1)
                        for c in candidates], axis=1)  # [B, K, L]
    count = len(candidates)
    flat = tf.reshape(stacked, [-1, length])
    empty = tf.reduce_all(flat < 0, axis=1)
    # TF's C++ CTC loss (sparse labels) is ~10x faster than the dense one, but refuses empty
    # label sequences: those get a stand-in label, and their cost is the all-blank path's
    first = tf.range(length)[tf.newaxis, :] == 0
    flat = tf.where(empty[:, tf.newaxis] & first, tf.zeros_like(flat), flat)
    where = tf.where(flat >= 0)
    sparse = tf.SparseTensor(where, tf.cast(tf.gather_nd(flat, where), tf.int32),
                             tf.shape(flat, out_type=tf.int64))
    cost = tf.zeros([batch * count])
    for m in range(members):  # -log p(candidate | member m), summed over the members
        loss = tf.nn.ctc_loss(labels=sparse, logits=tf.repeat(logits[:, m], count, axis=0),
                              label_length=None, logit_length=tf.fill([batch * count], frames),
                              logits_time_major=False, blank_index=classes - 1)
        blank_path = -tf.reduce_sum(tf.nn.log_softmax(logits[:, m])[:, :, classes - 1], axis=1)
        cost += tf.where(empty, tf.repeat(blank_path, count, axis=0), loss)
    best = tf.gather(stacked, tf.argmin(tf.reshape(cost, [batch, count]), axis=1), batch_dims=1)
    indices = tf.where(best >= 0)
    return tf.SparseTensor(indices, tf.cast(tf.gather_nd(best, indices), tf.int64),
                           tf.cast(tf.shape(best), tf.int64))


@functools.lru_cache(maxsize=32)
def _compiled_decode_ensemble(members: int, classes: int, method: str, beam_width: int) -> Any:
    """:func:`decode_ensemble` as a ``tf.function`` for eager callers (its decoding and
    candidate scoring are many small ops, which run several times faster as one graph)."""
    return tf.function(lambda logits: decode_ensemble(logits, method, beam_width),
                       input_signature=[tf.TensorSpec([None, members, None, classes])])


def decode_to_strings(
    logits: Any, method: str = "greedy", beam_width: int = 8, alphabet: str = "0123456789"
) -> tf.Tensor:
    """CTC-decode logits into one ``tf.string`` per example (label ``i`` -> ``alphabet[i]``).

    Core TF ops only (usable in a serving graph); an example with no label gives ``""``.
    """
    sparse = decode(logits, method, beam_width)
    batch = tf.shape(logits, out_type=tf.int64)[0]
    sparse = tf.SparseTensor(sparse.indices, sparse.values, [batch, sparse.dense_shape[1]])
    ragged = tf.RaggedTensor.from_sparse(sparse)
    symbols = tf.constant(list(alphabet))
    return tf.strings.reduce_join(tf.gather(symbols, ragged), axis=1)


def decode_to_lists(logits: Any, method: str = "greedy", beam_width: int = 8) -> list[list[int]]:
    """CTC-decode logits into Python lists of label ids (one per example)."""
    sparse = decode(logits, method, beam_width)
    batch = int(tf.shape(logits)[0])
    out: list[list[int]] = [[] for _ in range(batch)]
    for (row, _), value in zip(sparse.indices.numpy(), sparse.values.numpy()):
        out[int(row)].append(int(value))
    return out


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def error_rates(
    references: Sequence[Sequence[Any]], hypotheses: Sequence[Sequence[Any]]
) -> dict[str, float]:
    """Token error rate (total edit distance / total reference tokens) and exact-match rate."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    tokens = sum(len(r) for r in references)
    exact = sum(list(r) == list(h) for r, h in zip(references, hypotheses))
    return {
        "error_rate": errors / max(tokens, 1),
        "exact_match": exact / max(len(references), 1),
        "edit_distance": int(errors),
        "reference_tokens": int(tokens),
        "utterances": len(references),
    }


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (numpy, for plots)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)
