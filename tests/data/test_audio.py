"""WAV reading (validation, downmix, resampling) and the in-graph log-mel layer."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from lstm_zoo.data.audio import (
    LogMelSpectrogram,
    mel_weight_matrix,
    read_wav,
    resample,
    trim_silence,
    valid_lengths,
    vtlp_warp,
    write_wav,
)
from lstm_zoo.errors import DataError


def _tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()])


def test_mono_8khz_round_trip(tmp_path):
    audio = _tone(440, 0.25, 8000)
    path = write_wav(tmp_path / "a.wav", audio, 8000)
    read = read_wav(path)
    assert read.dtype == np.float32 and read.shape == audio.shape
    np.testing.assert_allclose(read, audio, atol=1 / 32000)


def test_stereo_is_downmixed_to_the_channel_mean(tmp_path):
    left, right = _tone(440, 0.2, 8000, 0.6), _tone(440, 0.2, 8000, 0.2)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 8000)
    with wave.open(str(path)) as handle:
        assert handle.getnchannels() == 2
    np.testing.assert_allclose(read_wav(path), (left + right) / 2, atol=1 / 16000)


def test_other_sample_rates_are_resampled_to_8khz(tmp_path):
    path = write_wav(tmp_path / "hi.wav", _tone(700, 0.5, 16000), 16000)
    read = read_wav(path, sample_rate=8000)
    assert len(read) == 4000
    assert abs(_dominant_hz(read, 8000) - 700) < 5
    path = write_wav(tmp_path / "cd.wav", _tone(300, 0.5, 22050), 22050)
    read = read_wav(path)
    assert abs(len(read) - 4000) <= 1 and abs(_dominant_hz(read, 8000) - 300) < 5


def test_resample_removes_content_above_the_new_nyquist():
    mixed = _tone(500, 1.0, 16000) + _tone(6000, 1.0, 16000)  # 6 kHz cannot exist at 8 kHz
    out = resample(mixed, 16000, 8000)
    spectrum = np.abs(np.fft.rfft(out))
    freqs = np.fft.rfftfreq(len(out), 1 / 8000)
    assert spectrum[np.abs(freqs - 500) < 5].max() > 50 * spectrum[np.abs(freqs - 2000) < 5].max()


@pytest.mark.parametrize("width", [1, 3, 4])
def test_8_24_32_bit_pcm(tmp_path, width):
    audio = _tone(440, 0.1, 8000, 0.5)
    scale = {1: 127, 3: 2**23 - 1, 4: 2**31 - 1}[width]
    ints = np.round(audio * scale).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        u = ints & 0xFFFFFF
        raw = np.stack([u & 255, (u >> 8) & 255, (u >> 16) & 255], 1).astype(np.uint8).tobytes()
    else:
        raw = ints.astype("<i4").tobytes()
    path = tmp_path / f"w{width}.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(width)
        handle.setframerate(8000)
        handle.writeframes(raw)
    np.testing.assert_allclose(read_wav(path), audio, atol=2.0 / scale)


def test_empty_file_names_the_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.wav.*empty"):
        read_wav(path)


def test_header_without_samples_is_rejected(tmp_path):
    path = write_wav(tmp_path / "nosamples.wav", np.zeros(0, np.float32))
    with pytest.raises(DataError, match=r"nosamples\.wav.*no audio samples"):
        read_wav(path)


def test_corrupt_file_names_the_file(tmp_path):
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"this is not a RIFF file at all" * 10)
    with pytest.raises(DataError, match=r"corrupt\.wav.*corrupt"):
        read_wav(path)


def test_truncated_file_is_rejected(tmp_path):
    path = write_wav(tmp_path / "cut.wav", _tone(440, 0.2, 8000))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.wav.*truncated"):
        read_wav(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_wav(tmp_path / "nope.wav")


def test_trim_silence_keeps_the_voiced_part():
    voiced = _tone(300, 0.3, 8000)
    audio = np.concatenate([np.zeros(4000, np.float32), voiced, np.zeros(4000, np.float32)])
    trimmed = trim_silence(audio, 8000, margin_s=0.0)
    assert 2300 <= len(trimmed) <= 2500
    assert len(trim_silence(np.zeros(800, np.float32))) == 800  # all quiet: unchanged


def test_valid_lengths_reads_trailing_zero_padding():
    batch = np.zeros((3, 10), np.float32)
    batch[0, :7] = 1.0
    batch[1, [2, 5]] = -0.5  # an interior zero does not end the example
    assert valid_lengths(batch).numpy().tolist() == [7, 6, 0]


def test_log_mel_shape_mask_and_padding_invariance():
    rng = np.random.default_rng(0)
    layer = LogMelSpectrogram(num_mel_bins=20)
    short = rng.normal(0, 0.1, 1000).astype(np.float32)
    batch = np.zeros((2, 2400), np.float32)
    batch[0, :1000] = short
    batch[1] = rng.normal(0, 0.1, 2400)
    features = layer(batch).numpy()
    mask = layer.compute_mask(batch).numpy()
    assert features.shape == (2, 30, 20)  # ceil(2400 / 80) frames
    assert mask[0].sum() == 13 and mask[1].sum() == 30  # ceil(1000 / 80)
    assert np.all(features[0, 13:] == 0)
    alone = layer(short[None, :]).numpy()[0]
    np.testing.assert_allclose(features[0, :13], alone, atol=1e-4)
    valid = features[1]
    np.testing.assert_allclose(valid.mean(axis=0), 0, atol=1e-4)  # per-utterance CMVN


def test_log_mel_config_round_trip():
    layer = LogMelSpectrogram(sample_rate=16000, frame_length=400, frame_step=160, fft_length=512)
    clone = LogMelSpectrogram.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_mfcc_features_are_the_normalised_cepstra_of_the_log_mel():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    audio = np.zeros((2, 1600), np.float32)
    audio[0, :900] = rng.normal(0, 0.1, 900)
    audio[1] = rng.normal(0, 0.1, 1600)
    log_mel = LogMelSpectrogram(normalize=False)(audio).numpy()
    cepstra = LogMelSpectrogram(normalize=False, num_mfcc=13)(audio).numpy()
    assert cepstra.shape == (2, 20, 13)
    expected = tf.signal.mfccs_from_log_mel_spectrograms(log_mel[1])[:, :13].numpy()
    np.testing.assert_allclose(cepstra[1], expected, rtol=1e-4, atol=1e-4)
    assert np.all(cepstra[0, 12:] == 0)  # frames past the valid length stay masked
    layer = LogMelSpectrogram(num_mfcc=13)
    normalised = layer(audio).numpy()
    np.testing.assert_allclose(normalised[0, :12].mean(axis=0), 0, atol=1e-4)  # CMVN
    assert layer.compute_output_shape((2, 1600)) == (2, 20, 13)
    assert LogMelSpectrogram.from_config(layer.get_config()).num_mfcc == 13
    with pytest.raises(ValueError, match="num_mfcc must be between 0 .* and num_mel_bins"):
        LogMelSpectrogram(num_mel_bins=20, num_mfcc=30)


def test_unwarped_mel_matrix_is_tensorflows():
    import tensorflow as tf

    ours = mel_weight_matrix(40, 129, 8000, 20.0, 4000.0)
    theirs = tf.signal.linear_to_mel_weight_matrix(40, 129, 8000, 20.0, 4000.0).numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_vtlp_warp_scales_low_frequencies_and_keeps_the_band_edges():
    freqs = np.linspace(0, 4000, 129)
    for alpha in (0.9, 1.1):
        warped = vtlp_warp(freqs, alpha, 4000.0)
        assert warped[0] == 0 and abs(warped[-1] - 4000) < 1e-9  # still spans [0, nyquist]
        assert np.all(np.diff(warped) > 0)  # monotonic: no band folds back
        np.testing.assert_allclose(warped[freqs < 2000], alpha * freqs[freqs < 2000])
    # a tone's energy moves to higher mel bands when the axis is stretched (alpha > 1)
    tone = np.zeros(129)
    tone[40] = 1.0
    bands = [int((tone @ mel_weight_matrix(40, 129, 8000, 20.0, 4000.0, warp=a)).argmax())
             for a in (0.9, 1.0, 1.1)]
    assert bands[0] < bands[1] < bands[2]


def test_vtlp_only_in_training_and_round_trips():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, (4, 1600)).astype(np.float32)
    plain, warped = LogMelSpectrogram(), LogMelSpectrogram(vtlp=0.1, seed=3)
    np.testing.assert_allclose(warped(audio).numpy(), plain(audio).numpy(), atol=1e-6)
    trained = warped(audio, training=True).numpy()
    assert np.abs(trained - plain(audio).numpy()).max() > 1e-2  # warped in training
    assert np.isfinite(trained).all() and trained.shape == (4, 20, 40)
    clone = LogMelSpectrogram.from_config(warped.get_config())
    assert clone.get_config() == warped.get_config() and clone.vtlp == 0.1
    with pytest.raises(ValueError, match="vtlp"):
        LogMelSpectrogram(vtlp=0.6)
