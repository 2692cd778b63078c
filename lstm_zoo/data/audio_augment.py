"""Waveform augmentation that imitates recording conditions a training set does not cover.

Speakers of a small corpus are each recorded with their own microphone and room: one speaker's
clips may lack everything below 300 Hz, another's be dark and bassy.  A model trained on a few
such channels learns them along with the voices.  :func:`random_channel` passes a waveform
through a random microphone-like frequency response (a high-pass corner, a low-pass corner and
a spectral tilt), so that training sees many channels per voice.  Per-utterance mean
normalisation of log-mel features removes a fixed gain per band, but not what a channel cuts
below the noise floor, nor the way it interacts with added noise; this covers both.
"""

from __future__ import annotations

import numpy as np


def random_channel(
    audio: np.ndarray,
    rng: np.random.Generator,
    sample_rate: int = 8000,
    *,
    highpass_hz: tuple[float, float] = (0.0, 400.0),
    lowpass_hz: tuple[float, float] = (2400.0, 4000.0),
    tilt_db_per_octave: tuple[float, float] = (-4.0, 4.0),
) -> np.ndarray:
    """``audio`` filtered by a random channel, at the same RMS level (float32).

    The response (zero phase, applied in the frequency domain) is the product of a 2nd-order
    Butterworth-shaped high-pass with its corner drawn from ``highpass_hz``, a 4th-order
    low-pass with its corner from ``lowpass_hz`` (a corner at or above Nyquist leaves the top
    open), and a tilt of ``tilt_db_per_octave`` decibels per octave around 1 kHz.  DC is
    removed.  Silence stays silence; the circular wrap of the zero-phase filter is a few
    milliseconds, which the silences around an utterance absorb.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"random_channel takes a 1-D waveform, got shape {audio.shape}")
    n = audio.shape[0]
    samples = audio.astype(np.float64)
    power = float(np.mean(samples**2)) if n else 0.0
    if power == 0.0:
        return audio.copy()
    freqs = np.maximum(np.fft.rfftfreq(n, 1.0 / sample_rate), 1.0)
    highpass = rng.uniform(*highpass_hz)
    lowpass = rng.uniform(*lowpass_hz)
    tilt = rng.uniform(*tilt_db_per_octave)
    gain = 10.0 ** (tilt * np.log2(freqs / 1000.0) / 20.0)
    gain /= np.sqrt(1.0 + (highpass / freqs) ** 4)
    gain /= np.sqrt(1.0 + (freqs / lowpass) ** 8)
    gain[0] = 0.0
    out = np.fft.irfft(np.fft.rfft(samples) * gain, n)
    out_power = float(np.mean(out**2))
    if out_power > 0.0:
        out *= np.sqrt(power / out_power)
    return out.astype(np.float32)
