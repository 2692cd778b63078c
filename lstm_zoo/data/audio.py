"""Audio input for speech recipes: validated WAV reading and log-mel features in ``tf.signal``.

Two halves with different jobs:

* :func:`read_wav` turns a file into a float32 mono waveform at the rate a model expects.
  Stereo (or more channels) is averaged down to mono; another sample rate is resampled with a
  polyphase filter (``scipy.signal.resample_poly``), so a 16 kHz or 44.1 kHz file works with an
  8 kHz model.  Empty, truncated or non-PCM files raise :class:`lstm_zoo.errors.DataError`
  naming the file and what was wrong.
* :class:`LogMelSpectrogram` is a Keras layer that computes per-utterance normalised log-mel
  features *inside the model graph* from a zero-padded batch of raw waveforms, and the frame
  mask from each example's valid length (everything up to its last non-zero sample).  Because
  the features live in the model, a saved ``.keras`` file and its SavedModel export both take
  raw audio.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lstm_zoo.errors import DataError

_PCM_SCALE = {1: 128.0, 2: 32768.0, 3: 8388608.0, 4: 2147483648.0}


def resample(audio: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a 1-D waveform from ``orig_rate`` to ``target_rate`` Hz (polyphase, anti-aliased)."""
    if orig_rate == target_rate:
        return np.asarray(audio, dtype=np.float32)
    if orig_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {target_rate}")
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(target_rate))
    out = resample_poly(np.asarray(audio, dtype=np.float64), target_rate // g, orig_rate // g)
    return out.astype(np.float32)


def read_wav(path: str | Path, sample_rate: int = 8000) -> np.ndarray:
    """Read a PCM WAV file as float32 mono in [-1, 1] at ``sample_rate`` Hz.

    Multi-channel audio is downmixed by averaging the channels; any other sample rate is
    resampled to ``sample_rate`` (see :func:`resample`).  Raises :class:`DataError` naming the
    file when it is missing, empty (no samples), corrupt or truncated, or not integer PCM
    (8/16/24/32-bit).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"WAV file {path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"WAV file {path} is empty (0 bytes); expected a RIFF/WAVE PCM file")
    try:
        with wave.open(str(path), "rb") as handle:
            channels = handle.getnchannels()
            width = handle.getsampwidth()
            rate = handle.getframerate()
            frames = handle.getnframes()
            raw = handle.readframes(frames)
    except (wave.Error, EOFError, OSError, ValueError) as exc:
        raise DataError(
            f"WAV file {path} is corrupt or not PCM WAV ({exc}); expected a RIFF/WAVE "
            "file with 8/16/24/32-bit integer samples"
        ) from None
    if channels < 1 or width not in _PCM_SCALE or rate <= 0:
        raise DataError(
            f"WAV file {path} has an unsupported layout ({channels} channels, {8 * width}-bit, "
            f"{rate} Hz); expected integer PCM of 8/16/24/32 bits"
        )
    frame_bytes = channels * width
    usable = len(raw) // frame_bytes
    if usable == 0:
        raise DataError(f"WAV file {path} holds no audio samples (header says {frames} frames)")
    if usable < frames:
        raise DataError(
            f"WAV file {path} is truncated: header says {frames} frames, data holds {usable}"
        )
    samples = _decode_pcm(raw[: usable * frame_bytes], width).reshape(usable, channels)
    mono = samples.mean(axis=1) if channels > 1 else samples[:, 0]
    audio = resample(mono, rate, sample_rate)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def _decode_pcm(raw: bytes, width: int) -> np.ndarray:
    """Little-endian PCM bytes -> float64 in [-1, 1] (8-bit WAV is unsigned, others signed)."""
    if width == 1:
        values = np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)).astype(np.int64)
        values = np.where(values >= 1 << 23, values - (1 << 24), values).astype(np.float64)
    else:
        values = np.frombuffer(raw, dtype=f"<i{width}").astype(np.float64)
    return values / _PCM_SCALE[width]


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int = 8000) -> Path:
    """Write float audio (``[samples]`` or ``[samples, channels]``) as 16-bit PCM WAV."""
    audio = np.asarray(audio, dtype=np.float64)
    channels = 1 if audio.ndim == 1 else audio.shape[1]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(channels)
        handle.setsampwidth(2)
        handle.setframerate(sample_rate)
        handle.writeframes(pcm.tobytes())
    return Path(path)


def trim_silence(
    audio: np.ndarray, sample_rate: int = 8000, threshold_db: float = -35.0, margin_s: float = 0.03
) -> np.ndarray:
    """Cut leading and trailing stretches quieter than ``threshold_db`` below the loudest 20 ms.

    Keeps ``margin_s`` seconds around the voiced part; returns the input when it is all quiet.
    """
    hop = max(1, int(0.02 * sample_rate))
    n = len(audio) // hop
    if n == 0:
        return audio
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (threshold_db / 20))
    margin = int(margin_s * sample_rate)
    start = max(0, loud[0] * hop - margin)
    end = min(len(audio), (loud[-1] + 1) * hop + margin)
    return audio[start:end]


# ---- in-graph features -------------------------------------------------------------------------


def valid_sample_mask(audio: Any) -> Any:
    """Boolean ``[B, samples]``: True up to and including each example's last non-zero sample.

    Batches are zero-padded at the end, so this recovers each example's true extent.  Written
    with ``keras.ops`` (a reversed cumulative sum) so it also works on symbolic inputs.
    """
    ops = keras.ops
    nonzero = ops.cast(ops.not_equal(audio, 0.0), "int32")
    return ops.flip(ops.cumsum(ops.flip(nonzero, axis=1), axis=1), axis=1) > 0


def valid_lengths(audio: Any) -> Any:
    """Per-example valid length in samples (int32 ``[B]``), see :func:`valid_sample_mask`."""
    return keras.ops.sum(keras.ops.cast(valid_sample_mask(audio), "int32"), axis=1)


def vtlp_warp(freqs: np.ndarray, alpha: float, nyquist: float,
              boundary: float = 0.8) -> np.ndarray:
    """Vocal tract length perturbation's piecewise-linear frequency warp (Jaitly & Hinton
    2013): ``f -> alpha * f`` up to a cut-off, then a straight line to ``nyquist``, so the
    warped axis still spans ``[0, nyquist]``.  The cut-off is ``boundary * nyquist *
    min(alpha, 1) / alpha``."""
    freqs = np.asarray(freqs, np.float64)
    cut = boundary * nyquist * min(alpha, 1.0) / alpha
    upper = nyquist - (nyquist - boundary * nyquist * min(alpha, 1.0)) / (nyquist - cut) * (
        nyquist - freqs)
    return np.where(freqs <= cut, alpha * freqs, upper)


def mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int,
                      lower_hz: float, upper_hz: float, warp: float = 1.0) -> np.ndarray:
    """``[num_spectrogram_bins, num_mel_bins]`` triangular mel filterbank (HTK mel scale),
    the matrix of ``tf.signal.linear_to_mel_weight_matrix``, read on a frequency axis
    warped by :func:`vtlp_warp` (``warp=1``: no warp, the same matrix as TensorFlow's)."""
    nyquist = sample_rate / 2.0
    freqs = vtlp_warp(np.linspace(0.0, nyquist, num_spectrogram_bins)[1:], warp, nyquist)

    def mel(hz):
        return 1127.0 * np.log1p(np.asarray(hz) / 700.0)

    edges = np.linspace(mel(lower_hz), mel(upper_hz), num_mel_bins + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    bins = mel(freqs)[:, None]
    weights = np.maximum(0.0, np.minimum((bins - lower) / (center - lower),
                                         (upper - bins) / (upper - center)))
    return np.pad(weights, [[1, 0], [0, 0]]).astype(np.float32)  # the DC bin feeds no band


@keras.saving.register_keras_serializable(package="lstm_zoo")
class LogMelSpectrogram(keras.layers.Layer):
    """Raw zero-padded waveforms ``[B, samples]`` -> normalised log-mel ``[B, frames, mels]``
    (or MFCCs ``[B, frames, num_mfcc]``).

    STFT (``frame_length``/``frame_step``/``fft_length`` samples, Hann window, end padded)
    -> power -> mel filterbank (``num_mel_bins`` bands from ``lower_hz`` to ``upper_hz``)
    -> ``log(mel + 1e-6)`` -> mean/variance normalisation per utterance and band over the
    valid frames (cancels gain and channel differences between speakers).  Frames past an
    example's valid length are zeroed and masked out (the mask propagates to the LSTMs).

    ``vtlp`` (training only): vocal tract length perturbation - each utterance's frequency
    axis is warped by a random factor in ``[1 - vtlp, 1 + vtlp]`` (:func:`vtlp_warp`, drawn
    from ``vtlp_steps`` evenly spaced factors) before the mel filterbank, which imitates
    speakers with shorter or longer vocal tracts.  Inference always uses the unwarped
    filterbank, so ``vtlp`` changes nothing in a trained model's outputs.

    ``num_mfcc`` > 0 returns that many mel-frequency cepstral coefficients instead of the
    log-mel bands (``tf.signal.mfccs_from_log_mel_spectrograms``: the DCT of the log-mel,
    truncated), normalised the same way (cepstral mean and variance normalisation).  The first
    coefficients describe the spectral envelope (formants) and smooth away finer detail; on
    FSDD's held-out speakers they generalised much better than the bands (README, speech).
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        frame_length: int = 200,
        frame_step: int = 80,
        fft_length: int = 256,
        num_mel_bins: int = 40,
        lower_hz: float = 20.0,
        upper_hz: float | None = None,
        normalize: bool = True,
        vtlp: float = 0.0,
        vtlp_steps: int = 9,
        seed: int | None = None,
        num_mfcc: int = 0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if not 0 <= int(num_mfcc) <= int(num_mel_bins):
            raise ValueError(f"num_mfcc must be between 0 (log-mel features) and num_mel_bins "
                             f"({num_mel_bins}), got {num_mfcc}")
        self.num_mfcc = int(num_mfcc)
        if not 0.0 <= float(vtlp) < 0.5:
            raise ValueError(f"vtlp must be in [0, 0.5) (a warp factor range), got {vtlp}")
        if int(vtlp_steps) < 2:
            raise ValueError(f"vtlp_steps must be >= 2, got {vtlp_steps}")
        self.vtlp, self.vtlp_steps, self.seed = float(vtlp), int(vtlp_steps), seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.vtlp else None
        self.sample_rate = int(sample_rate)
        self.frame_length = int(frame_length)
        self.frame_step = int(frame_step)
        self.fft_length = int(fft_length)
        self.num_mel_bins = int(num_mel_bins)
        self.lower_hz = float(lower_hz)
        self.upper_hz = float(upper_hz) if upper_hz is not None else self.sample_rate / 2
        self.normalize = bool(normalize)
        self.supports_masking = True

    def _mask(self, audio: Any) -> Any:
        # frame j starts at sample j * frame_step: valid iff that sample is (ceil(S/step) frames)
        return valid_sample_mask(audio)[:, :: self.frame_step]

    def _warped_mel(self, power: Any) -> Any:
        """Mel energies of ``power`` [B, T, F] through one random VTLP-warped filterbank per
        example."""
        factors = np.linspace(1.0 - self.vtlp, 1.0 + self.vtlp, self.vtlp_steps)
        banks = tf.constant(np.stack([
            mel_weight_matrix(self.num_mel_bins, self.fft_length // 2 + 1, self.sample_rate,
                              self.lower_hz, self.upper_hz, warp=float(a)) for a in factors]))
        pick = keras.random.randint([tf.shape(power)[0]], 0, self.vtlp_steps,
                                    seed=self.seed_generator)
        return tf.einsum("btf,bfm->btm", power, tf.gather(banks, pick))

    def call(self, audio: Any, training: bool | None = None) -> Any:
        audio = tf.cast(audio, tf.float32)
        stft = tf.signal.stft(
            audio,
            frame_length=self.frame_length,
            frame_step=self.frame_step,
            fft_length=self.fft_length,
            pad_end=True,
        )
        power = tf.math.square(tf.abs(stft))
        mel_matrix = tf.signal.linear_to_mel_weight_matrix(
            self.num_mel_bins, self.fft_length // 2 + 1, self.sample_rate,
            self.lower_hz, self.upper_hz,
        )
        if training and self.vtlp:
            mel = self._warped_mel(power)
        else:
            mel = tf.tensordot(power, mel_matrix, 1)
        log_mel = tf.math.log(mel + 1e-6)
        mask = tf.cast(self._mask(audio), tf.float32)[..., tf.newaxis]
        features = log_mel[:, : tf.shape(mask)[1], :]
        if self.num_mfcc:
            features = tf.signal.mfccs_from_log_mel_spectrograms(features)[..., : self.num_mfcc]
        if self.normalize:
            count = tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)
            mean = tf.reduce_sum(features * mask, axis=1, keepdims=True) / count
            var = tf.reduce_sum(tf.square(features - mean) * mask, axis=1, keepdims=True) / count
            features = (features - mean) * tf.math.rsqrt(var + 1e-3)
        return features * mask

    def compute_mask(self, audio: Any, mask: Any = None) -> Any:
        return self._mask(audio)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        samples = input_shape[1]
        frames = None if samples is None else -(-samples // self.frame_step)
        return (input_shape[0], frames, self.num_mfcc or self.num_mel_bins)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "sample_rate": self.sample_rate,
            "frame_length": self.frame_length,
            "frame_step": self.frame_step,
            "fft_length": self.fft_length,
            "num_mel_bins": self.num_mel_bins,
            "lower_hz": self.lower_hz,
            "upper_hz": self.upper_hz,
            "normalize": self.normalize,
            "vtlp": self.vtlp,
            "vtlp_steps": self.vtlp_steps,
            "seed": self.seed,
            "num_mfcc": self.num_mfcc,
        }
