"""Issue 24 (hub, data and sweep items): bad input and faults found by a hostile test.

Each test names its item.  The hub tests build a hand-made hub (an index, a manifest and one
"weights" file; no TensorFlow) and serve it from a thread on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path

import pytest

from lstm_zoo.hub import pretrained as hub
from lstm_zoo.hub.manifest import (
    INDEX_FILE,
    MANIFEST_FORMAT,
    MANIFEST_PATH,
    HubError,
    IntegrityError,
    build_index,
    file_table,
    read_manifest,
    verify_version_dir,
)

WEIGHTS = "variables/variables.data-00000-of-00001"


# ---- a hand-made hub ---------------------------------------------------------------------------
def _make_hub(root: Path, weights: bytes = bytes(range(256)) * 40) -> Path:
    """``root`` as a hub holding ``toy/1`` (one weights file, a manifest, the index)."""
    version_dir = root / "toy" / "1"
    (version_dir / WEIGHTS).parent.mkdir(parents=True)
    (version_dir / WEIGHTS).write_bytes(weights)
    (version_dir / "saved_model.pb").write_bytes(b"pb")
    manifest = {"format": MANIFEST_FORMAT, "name": "toy", "version": "1",
                "files": file_table(version_dir)}
    (version_dir / MANIFEST_PATH).parent.mkdir(parents=True, exist_ok=True)
    (version_dir / MANIFEST_PATH).write_text(json.dumps(manifest))
    (root / INDEX_FILE).write_text(json.dumps(build_index(root)))
    return root


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def html_hub(tmp_path):
    """A hub over HTTP whose server answers the weights file with an HTML page (status 200),
    as a login wall or a misconfigured proxy does; every other file is served as published."""
    root = _make_hub(tmp_path / "hub")
    page = b"<!DOCTYPE html><html><body>Please sign in to continue.</body></html>\n" * 1

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):  # noqa: N802 - http.server's naming
            if self.path.endswith(WEIGHTS.rsplit("/", 1)[1]):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- 24.9 -------------------------------------------------------------------------------------
def test_unlisted_symlinked_folder_in_a_version_is_refused(tmp_path):
    """24.9: a symlinked folder (to /etc) the manifest does not list made verification pass."""
    root = _make_hub(tmp_path / "hub")
    version_dir = root / "toy" / "1"
    manifest = read_manifest(version_dir)
    verify_version_dir(version_dir, manifest)  # the clean version passes
    (version_dir / "assets").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(IntegrityError, match=r"assets: is a symbolic link .*/etc"):
        verify_version_dir(version_dir, manifest)
    with pytest.raises(IntegrityError, match="symbolic link"):
        hub.pull("toy", hub=root)


def test_symlinked_listed_file_and_unlisted_folder_are_refused(tmp_path):
    """24.9: a listed file replaced by a link, or an unlisted folder with files, is refused."""
    root = _make_hub(tmp_path / "hub")
    version_dir = root / "toy" / "1"
    manifest = read_manifest(version_dir)
    real = tmp_path / "elsewhere.pb"
    real.write_bytes(b"pb")  # the same bytes: only the link gives it away
    (version_dir / "saved_model.pb").unlink()
    (version_dir / "saved_model.pb").symlink_to(real)
    with pytest.raises(IntegrityError, match="saved_model.pb: is a symbolic link"):
        verify_version_dir(version_dir, manifest)
    (version_dir / "saved_model.pb").unlink()
    (version_dir / "saved_model.pb").write_bytes(b"pb")
    (version_dir / "extra").mkdir()
    (version_dir / "extra" / "payload.so").write_bytes(b"x")
    with pytest.raises(IntegrityError, match=r"not listed in the manifest: extra/"):
        verify_version_dir(version_dir, manifest)


# ---- 24.14 ------------------------------------------------------------------------------------
def test_html_page_served_for_a_weights_file_is_named_and_not_resumed(html_hub, tmp_path):
    """24.14: an HTML page with status 200 was reported as a cut connection ("run the pull
    again to resume"); it is the wrong content, and pulling again cannot help."""
    from lstm_zoo.hub.download import WrongContentError

    cache = tmp_path / "cache"
    with pytest.raises(WrongContentError) as caught:
        hub.pull("toy", hub=html_hub, cache_dir=cache)
    message = str(caught.value)
    assert "returned something else" in message
    assert "text/html" in message and "10240-byte file" in message
    assert "resume" not in message
    leftovers = [p for p in cache.rglob("*") if p.is_file()
                 and p.name not in ("HUB_URL",) and not p.name.endswith(".lock")]
    assert leftovers == []  # nothing of the page was kept


# ---- 24.15 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["ftp://127.0.0.1/x", "s3://bucket/saved_models"])
def test_unsupported_url_scheme_is_named(location, tmp_path, monkeypatch):
    """24.15: an ftp:// hub was taken for a folder "ftp:/127.0.0.1/x" without an index."""
    with pytest.raises(HubError) as caught:
        hub.pull("toy", hub=location, cache_dir=tmp_path)
    message = str(caught.value)
    assert "unsupported URL scheme" in message and location.split(":")[0] + "://" in message
    assert all(s in message for s in ("http://", "https://", "file://"))
    assert "no index.json" not in message
    monkeypatch.setenv("LSTM_ZOO_HUB", location)
    with pytest.raises(HubError, match="unsupported URL scheme"):
        hub.available()


# ---- 24.8, 24.12, 24.13: CSV messages ------------------------------------------------------------
def _hourly(hours: range) -> list[str]:
    return [f"2020-01-01 {h:02d}:00,{h}" for h in hours]


def test_line_numbers_are_physical_lines_despite_blank_lines_and_quoted_breaks(tmp_path):
    """24.8: blank lines and a multi-line quoted cell shifted the reported line (151 for 153)."""
    from lstm_zoo.data import timeseries as ts
    from lstm_zoo.errors import DataError

    rows = _hourly(range(20))
    lines = ["time,a", *rows[:5], "", "   ", *rows[5:8], '2020-01-01 08:00,"multi', 'line"',
             *rows[9:12], '2020-01-01 12:00,oops', *rows[13:]]
    path = tmp_path / "gappy.csv"
    path.write_text("\n".join(lines) + "\n")
    assert lines.index("2020-01-01 12:00,oops") + 1 == 17  # pandas' row 12 (row + 2 = 14)
    with pytest.raises(DataError, match=r"'multi\\nline' at lines 12, 17 "):
        ts.load_series_csv(path, time="time", columns=["a"])
    lines[11:13] = ["2020-01-01 08:00,8"]  # now line 16 holds the bad cell
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'oops' at line 16 "):
        ts.load_series_csv(path, time="time", columns=["a"])
    lines[15] = "2020-01-01 11:00,12"  # a duplicated timestamp on line 16
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"duplicated timestamp .* at line 16 "):
        ts.load_series_csv(path, time="time", columns=["a"])


def test_fraud_line_numbers_count_blank_lines(tmp_path):
    """24.8: the fraud recipe's own checks report the physical line too."""
    from lstm_zoo.data import timeseries as ts
    from lstm_zoo.errors import DataError
    from lstm_zoo.recipes.fraud import COLUMNS, validate_transactions

    header = ",".join(COLUMNS)
    good = {"account_id": "a1", "timestamp": "2020-01-01 00:00", "amount": "1.5",
            "category": "2", "is_online": "0", "is_fraud": "0"}
    row = ",".join(good.get(c, "") for c in COLUMNS)
    bad = ",".join({**good, "is_online": "7", "timestamp": "2020-01-02"}.get(c, "")
                   for c in COLUMNS)
    path = tmp_path / "tx.csv"
    path.write_text("\n".join([header, row, "", "", bad]) + "\n")
    with pytest.raises(DataError, match=r"'is_online' has value \S*7\.0\)? at line 5;"):
        validate_transactions(ts.read_csv(path, dtype={"account_id": str}), source=str(path))


def test_a_huge_cell_is_quoted_as_a_short_excerpt(tmp_path):
    """24.12: a 50 MB text cell was echoed whole into the error (52 MB of stderr)."""
    from lstm_zoo.data import timeseries as ts
    from lstm_zoo.errors import DataError, excerpt

    huge = "x" * 5_000_000
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(["time,a", *_hourly(range(3)), f"2020-01-01 03:00,{huge}",
                               *_hourly(range(4, 8))]) + "\n")
    with pytest.raises(DataError) as caught:
        ts.load_series_csv(path, time="time", columns=["a"])
    message = str(caught.value)
    assert len(message) < 400, len(message)
    assert "'xxxxxxxx" in message and "5,000,000 characters" in message and "line 5" in message
    path.write_text("\n".join(["time,a", *_hourly(range(3)), f"{huge},3"]) + "\n")
    with pytest.raises(DataError) as caught:
        ts.load_series_csv(path, time="time", columns=["a"])
    assert len(str(caught.value)) < 400
    assert excerpt("short") == "'short'" and excerpt(3.5) == "3.5"


def test_latin1_file_names_the_line_and_byte_and_says_to_resave_as_utf8(tmp_path):
    """24.13: "byte 0xe9 in position 4" pointed at the wrong byte and gave no remedy."""
    from lstm_zoo.data import timeseries as ts
    from lstm_zoo.errors import DataError

    data = "date,humidity,temp\xe9rature\n2020-01-01,1,2\n".encode("latin-1")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    with pytest.raises(DataError) as caught:
        ts.read_csv(path)
    message = str(caught.value)
    offset = data.index(b"\xe9")
    assert f"byte 0xe9 at byte offset {offset} " in message and "line 1 " in message
    assert "not UTF-8" in message and "re-save it as UTF-8" in message
    path.write_bytes(b"a,b\n" + b"1,2\n" * 100_000 + b"3,caf\xe9\n")  # past pandas' buffer
    with pytest.raises(DataError) as caught:
        ts.read_csv(path)
    assert "line 100002 " in str(caught.value) and "column 6 " in str(caught.value)


def test_weather_unknown_format_quotes_a_huge_header_cell_shortly(tmp_path):
    """24.12: the weather recipe listed the header's columns whole in its format error."""
    from lstm_zoo.errors import DataError
    from lstm_zoo.recipes.weather import WeatherRecipe

    path = tmp_path / "wide.csv"
    path.write_text(f"when,{'h' * 2_000_000}\n2020-01-01,1\n")
    with pytest.raises(DataError, match="not a known weather format") as caught:
        WeatherRecipe().load(path)
    assert len(str(caught.value)) < 600 and "2,000,000 characters" in str(caught.value)


# ---- 24.7: text preprocessing --------------------------------------------------------------------
WHITESPACE_ONLY = ["", "   ", "\t\n ", "\r\n", "\u00a0", "\u3000 \u2003", "\u200b\ufeff", "\x0b\x0c"]


def test_whitespace_only_text_has_no_tokens():
    """24.7: tabs, newlines and Unicode spaces became U+FFFD or "punctuation" tokens, so
    whitespace-only input was translated (to ".") instead of giving ""."""
    from lstm_zoo.data import text

    for scheme in text.TOKEN_SCHEMES:
        assert text.tokens_as_lists(text.tokenize(WHITESPACE_ONLY, scheme)) == [[]] * len(
            WHITESPACE_ONLY), scheme
    assert text.tokens_as_lists(text.tokenize(["a\u00a0b\tc\u3000d"])) == [["a", "b", "c", "d"]]


def test_invalid_utf8_inside_a_sentence_keeps_the_rest():
    """24.7: bad bytes inside a sentence became a run of OOV tokens and the translation
    stopped there ("A man \\xff... is riding." -> "Ein Mann."); they are replaced, and every
    word of the sentence is kept."""
    import tensorflow as tf

    from lstm_zoo.data import text

    clean = text.tokens_as_lists(text.tokenize(["A man is riding."]))[0]
    for bad in (b"A man \xff\xfe\xfd is riding.", b"A man \xff is \xc0\xaf riding.",
                b"A man \xe2\x82 is riding.\xff"):
        tokens = text.tokens_as_lists(text.tokenize(tf.constant([bad])))[0]
        assert tokens == clean, bad
    assert text.tokens_as_lists(text.tokenize(tf.constant([b"ri\xffding"]))) == [["ri", "ding"]]


@pytest.fixture(scope="module")
def dot_translator():
    """An untrained tiny translator whose output layer always says "." (so any sentence with
    a token translates to dots; only input with no token gives "")."""
    import keras

    from lstm_zoo.recipes.translation import build_translation_lstm_attention

    keras.utils.set_random_seed(0)
    model = build_translation_lstm_attention(
        ["</s>", "hello"], ["<s>", "</s>", "Hallo", "."], embedding_dim=8, units=8,
        attention_units=8, max_target_length=6, tie_embeddings=False)
    kernel, bias = model.logits.get_weights()
    bias[:] = -10.0
    bias[model.target_vocabulary.index(".") + 2] = 10.0  # after PAD and UNK
    model.logits.set_weights([kernel, bias])
    return model


def test_whitespace_only_input_translates_to_an_empty_string(dot_translator):
    """24.7: the README promises "" for empty input; whitespace-only input gave "."."""
    from lstm_zoo.recipes.translation import translate

    out = translate(dot_translator, ["hello", *WHITESPACE_ONLY], beam_size=1)
    assert out[0].startswith(".")  # a real token is translated
    assert out[1:] == [""] * len(WHITESPACE_ONLY)
    assert translate(dot_translator, "\t \u00a0\n", beam_size=2) == ""


def test_python_strings_with_undecodable_bytes_are_translated(dot_translator):
    """24.7: a str holding invalid UTF-8 as surrogate escapes (how Python reads it from argv
    or a surrogateescape file) failed the whole batch in TensorFlow; its bad bytes are now
    replaced like any other and the sentence is translated."""
    from lstm_zoo.recipes.translation import translate

    sentence = b"hello \xff\xfe there".decode("utf-8", "surrogateescape")
    assert translate(dot_translator, [sentence, "\udcff\ud800"], beam_size=1) == ["......", ""]


# ---- 24.5: a sweep's retrain line --------------------------------------------------------------
def _custom_weather_csv(path: Path, rows: int = 120) -> Path:
    import math

    lines = ["time,a,b,y"]
    for i in range(rows):
        lines.append(f"2021-03-{1 + i // 24:02d} {i % 24:02d}:00,{math.sin(i / 5):.4f},"
                     f"{math.cos(i / 7):.4f},{math.sin(i / 5) + 0.1 * math.cos(i / 3):.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_retrain_line_reproduces_the_sweeps_data_and_recipe_options(tmp_path, capsys,
                                                                    monkeypatch):
    """24.5: the printed "retrain it" line left out --data and the recipe options, so it
    trained on the embedded Seattle data; the line now parses back to the sweep's settings."""
    import shlex

    from lstm_zoo import cli
    from lstm_zoo.commands import train as train_command

    data = _custom_weather_csv(tmp_path / "big data.csv")
    options = ["--time-col", "time", "--features", "a,b", "--target", "y", "--lookback", "6",
               "--season", "3", "--horizon", "2"]
    code = cli.main(["tune", "weather", "--data", str(data), *options, "--max-trials", "1",
                     "--epochs", "1", "--seed", "3", "--directory", str(tmp_path / "sweep"),
                     "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "retrain it:" in x).split("retrain it: ", 1)[1]
    assert "--data" in line and all(flag in line for flag in options[::2])

    seen = {}

    def fake_train(recipe, args, parsed_options):
        seen.update(recipe=recipe.name, args=args, options=parsed_options)
        return 0

    monkeypatch.setattr(train_command, "_train", fake_train)
    argv = shlex.split(line)
    assert argv[:3] == ["lstm-zoo", "train", "weather"]
    assert cli.main(argv[1:]) == 0
    assert seen["recipe"] == "weather" and seen["args"].data == str(data)
    assert seen["args"].seed == 3 and seen["args"].epochs == 1 and seen["args"].hparam
    assert {k: v for k, v in seen["options"].items() if v is not None} == {
        "time_col": "time", "features": "a,b", "target": "y", "lookback": 6, "horizon": 2,
        "season": 3}
    record = json.loads((tmp_path / "sweep" / "results.json").read_text())
    assert record["data"] == str(data) and record["options"]["time_col"] == "time"
    assert record["best"]["retrain_command"] == line


# ---- 24.4: one chief per sweep directory, and a taken oracle port --------------------------------
def test_a_second_chief_or_local_sweep_on_a_held_directory_is_refused(tmp_path):
    """24.4: three chiefs on one directory all started and ran the same trials twice; the
    directory is now locked, and a second chief (or local sweep) refuses, naming the holder."""
    import socket

    from lstm_zoo.tuning.oracle import SweepError
    from lstm_zoo.tuning.sweep import LOCK_FILE, sweep_lock, tune

    directory = tmp_path / "sweep"
    with sweep_lock(directory, "chief", "127.0.0.1:8123") as holder:
        assert holder["pid"] == os.getpid()
        for role in ("chief", "local"):
            with pytest.raises(SweepError) as caught:
                tune("weather", max_trials=1, epochs=1, directory=directory, role=role,
                     oracle="127.0.0.1:8124" if role == "chief" else None, verbose=0)
            message = str(caught.value)
            assert f"{directory} is in use by a chief process (pid {os.getpid()}" in message
            assert socket.gethostname() in message and "oracle 127.0.0.1:8123" in message
            assert "--directory" in message
        assert not (directory / "weather").exists()  # the refused sweep wrote nothing
    with sweep_lock(directory, "local"):  # released: the next one gets it
        assert json.loads((directory / LOCK_FILE).read_text())["role"] == "local"


def test_a_chief_on_a_port_another_chief_serves_fails_clearly(tmp_path):
    """24.4: a chief whose port was already served by another chief started anyway (gRPC's
    SO_REUSEPORT let both bind); it now fails, saying the port is in use."""
    from concurrent import futures

    import grpc

    from lstm_zoo.tuning.chief_worker import OracleAddressError
    from lstm_zoo.tuning.sweep import tune

    other = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # keras-tuner's defaults
    port = other.add_insecure_port("127.0.0.1:0")
    other.start()
    try:
        with pytest.raises(OracleAddressError, match=f"port {port} is already in use"):
            tune("weather", max_trials=1, epochs=1, directory=tmp_path / "sweep",
                 role="chief", oracle=f"127.0.0.1:{port}", verbose=0)
    finally:
        other.stop(0)
    with pytest.raises(OracleAddressError, match="not an address of this machine"):
        tune("weather", max_trials=1, epochs=1, directory=tmp_path / "sweep2", role="chief",
             oracle="192.0.2.1:8000", verbose=0)
