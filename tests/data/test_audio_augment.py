"""Random channel (microphone) augmentation of waveforms."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_zoo.data.audio_augment import random_channel

RATE = 8000


def _band_power(audio: np.ndarray, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1.0 / RATE)
    return float(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_a_channel_reshapes_the_spectrum_but_keeps_level_and_length():
    audio = np.random.default_rng(0).normal(0, 0.1, RATE).astype(np.float32)  # white noise
    out = random_channel(audio, np.random.default_rng(1), RATE, highpass_hz=(400, 400),
                         lowpass_hz=(2000, 2000), tilt_db_per_octave=(0, 0))
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(audio**2)), rel=1e-3)
    # the corners cut what lies beyond them, relative to the passband
    ratio_in = _band_power(audio, 50, 150) / _band_power(audio, 800, 1200)
    ratio_out = _band_power(out, 50, 150) / _band_power(out, 800, 1200)
    assert ratio_out < ratio_in / 50
    assert _band_power(out, 3500, 4000) < _band_power(audio, 3500, 4000) / 20


def test_channels_are_drawn_from_the_generator():
    audio = np.random.default_rng(0).normal(0, 0.1, 4000).astype(np.float32)
    a = random_channel(audio, np.random.default_rng(5))
    np.testing.assert_array_equal(a, random_channel(audio, np.random.default_rng(5)))
    assert not np.allclose(a, random_channel(audio, np.random.default_rng(6)))


def test_silence_and_bad_shapes():
    silence = np.zeros(800, np.float32)
    np.testing.assert_array_equal(random_channel(silence, np.random.default_rng(0)), silence)
    assert random_channel(np.zeros(0, np.float32), np.random.default_rng(0)).shape == (0,)
    with pytest.raises(ValueError, match="1-D waveform"):
        random_channel(np.zeros((2, 100), np.float32), np.random.default_rng(0))
