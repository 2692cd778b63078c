"""from_pretrained: one call from a published name to answers, the same as its SavedModel's."""

from __future__ import annotations

import wave

import numpy as np
import pandas as pd
import pytest

import lstm_zoo
from lstm_zoo.errors import DataError
from lstm_zoo.hub.manifest import HubError
from lstm_zoo.hub.task import PretrainedTask

pytestmark = pytest.mark.slow


def _published(name: str) -> PretrainedTask:
    try:
        return lstm_zoo.from_pretrained(name)
    except HubError as exc:
        pytest.skip(f"no published {name} here: {exc}")


def _serving_default(task: PretrainedTask, **feeds):
    import tensorflow as tf

    signature = tf.saved_model.load(str(task.path)).signatures["serving_default"]
    return {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feeds.items()})
            .items()}


def _beijing_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2014-03-01", periods=rows, freq="h")
    return pd.DataFrame({
        "No": np.arange(rows), "year": times.year, "month": times.month, "day": times.day,
        "hour": times.hour, "DEWP": rng.normal(-5, 3, rows), "TEMP": rng.normal(5, 4, rows),
        "PRES": rng.normal(1020, 5, rows), "Iws": rng.uniform(0, 20, rows),
        "Is": np.zeros(rows), "Ir": np.zeros(rows)})


@pytest.fixture(scope="module")
def weather():
    return _published("weather")


def test_weather_forecasts_the_window_after_a_csv(weather, tmp_path):
    frame = _beijing_frame(100)
    path = tmp_path / "mine.csv"
    frame.to_csv(path, index=False)
    forecast = weather.predict(str(path))
    assert list(forecast.columns) == ["TEMP"] and len(forecast) == 24
    assert forecast.index[0] == pd.Timestamp("2014-03-05 04:00")  # the hour after the last row
    window = frame[["DEWP", "TEMP", "PRES", "Iws", "Is", "Ir"]].to_numpy("float32")[-72:]
    served = _serving_default(weather, history=window[None])["forecast"][0]
    np.testing.assert_allclose(forecast["TEMP"].to_numpy(), served, atol=1e-5)
    np.testing.assert_allclose(weather.predict(window)[0], served, atol=1e-5)  # raw window too
    np.testing.assert_allclose(weather.predict(frame)["TEMP"], served, atol=1e-5)  # DataFrame
    np.testing.assert_allclose(weather.model.predict(window[None], verbose=0)[0], served,
                               atol=1e-4)
    assert "DEWP, TEMP, PRES, Iws, Is, Ir" in weather.describe()
    assert weather.input_spec == {"history": {"dtype": "float32", "shape": [None, 72, 6]}}


def test_weather_bad_tables_are_clear(weather, tmp_path):
    short = tmp_path / "short.csv"
    _beijing_frame(30).to_csv(short, index=False)
    with pytest.raises(DataError, match="30 rows .* needs the last 72 steps"):
        weather.predict(str(short))
    wrong = tmp_path / "wrong.csv"
    _beijing_frame(100).drop(columns=["PRES"]).to_csv(wrong, index=False)
    with pytest.raises(DataError, match="not those of a known weather format"):
        weather.predict(str(wrong))
    with pytest.raises(DataError, match=r"shape \[1, 10, 6\]; expected \[None, 72, 6\]"):
        weather.predict(np.zeros((10, 6)))


def test_model_name_resolves_to_its_published_recipe():
    task = _published("weather-lstm")
    assert (task.name, task.recipe_name) == ("weather", "weather")


def test_translation_answers_strings_like_its_savedmodel():
    task = _published("translation")
    sentences = ["A man rides a bike.", "Two dogs play in the snow."]
    answers = task.predict(sentences)
    served = _serving_default(task, text=np.array([s.encode() for s in sentences], dtype=object))
    assert answers == [t.decode() for t in served["translation"]]
    assert all(isinstance(a, str) and a for a in answers)
    with pytest.raises(DataError, match="item 0 is int, expected text"):
        task.predict([3])


def _tone_wav(path, seconds: float = 0.6, rate: int = 8000) -> None:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


def test_speech_transcribes_waveforms_of_different_lengths(tmp_path):
    from lstm_zoo.data.audio import read_wav

    task = _published("speech")
    _tone_wav(tmp_path / "a.wav", 0.6)
    _tone_wav(tmp_path / "b.wav", 0.9)
    waves = [read_wav(tmp_path / "a.wav"), read_wav(tmp_path / "b.wav")]
    answers = task.predict(waves)
    padded = np.zeros((2, len(waves[1])), "float32")
    padded[0, :len(waves[0])], padded[1] = waves[0], waves[1]
    served = _serving_default(task, audio=padded)
    assert answers == [t.decode() for t in served["transcript"]]
    assert all(set(a) <= set("0123456789") for a in answers)
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    with pytest.raises(DataError, match="bad.wav"):
        read_wav(bad)


def test_predict_command(tmp_path, capsys):
    from lstm_zoo.cli import main

    frame_path = tmp_path / "mine.csv"
    _beijing_frame(80).to_csv(frame_path, index=False)
    if not any(r["name"] == "weather" for r in lstm_zoo.hub.available()):
        pytest.skip("no published weather model")
    assert main(["predict", "weather", "--data", str(frame_path), "--json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 24 and set(rows[0]) == {"time", "TEMP"}
    assert main(["predict", "translation", ""]) == 1
    assert "an input sentence is empty" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["predict", "translation", str(empty)]) == 1
    assert "holds no text" in capsys.readouterr().err
