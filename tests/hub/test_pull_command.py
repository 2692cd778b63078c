"""``lstm-zoo pull``: the verified path is the last line; errors are one clear line."""

from __future__ import annotations

from lstm_zoo import cli


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_pull_prints_the_verified_path_last(published_hub, capsys):
    assert cli.main(["pull", "tiny", "--hub", str(published_hub), "--version", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == str(published_hub / "tiny" / "1")
    assert lines[0].startswith("tiny:1  model=zz-hub-tiny  mae=")


def test_pull_over_http_shows_progress_then_offline_needs_no_server(hub_server, tmp_path,
                                                                    capsys):
    cache = str(tmp_path / "cache")
    assert cli.main(["pull", "tiny", "--hub", hub_server.url, "--cache-dir", cache]) == 0
    captured = capsys.readouterr()
    path = captured.out.strip().splitlines()[-1]
    assert path.startswith(cache) and path.endswith("/tiny/2")
    assert "saved_model.pb" in captured.err and "100%" in captured.err  # the progress bar
    hub_server.log.clear()
    assert cli.main(["pull", "tiny", "--hub", hub_server.url, "--cache-dir", cache,
                     "--offline"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == path
    assert hub_server.log == []


def test_tampered_download_is_one_clear_error(hub_server, tmp_path, capsys):
    _flip_last_byte(hub_server.root / "tiny" / "2" / "saved_model.pb")
    code = cli.main(["pull", "tiny", "--hub", hub_server.url, "--cache-dir",
                     str(tmp_path / "cache"), "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lstm-zoo pull: error: ") and "sha256" in err[-1]
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()
                and p.name not in ("HUB_URL", ".2.lock")]


def test_pull_list_shows_versions_and_headlines(published_hub, capsys):
    assert cli.main(["pull", "--list", "--hub", str(published_hub)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["tiny:1", "tiny:2"]
    assert "mae=" in lines[0] and lines[1].endswith("(latest)")


def test_pull_without_name_or_with_unknown_name(published_hub, capsys):
    assert cli.main(["pull", "--hub", str(published_hub)]) == 1
    assert "NAME is required" in capsys.readouterr().err
    assert cli.main(["pull", "nope", "--hub", str(published_hub)]) == 1
    assert "no pretrained model 'nope'" in capsys.readouterr().err
