"""The command line: help for every command, one-line errors, --debug tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lstm_zoo import cli


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_zoo", *args], capture_output=True, text=True
    )


def test_every_command_has_help(capsys):
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert {"list", "info"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: lstm-zoo" in capsys.readouterr().out


def test_unknown_model_is_one_clear_line():
    result = _run("info", "no-such-model")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("lstm-zoo info: error: unknown model 'no-such-model'")
    assert "Traceback" not in result.stderr


def test_debug_shows_traceback():
    result = _run("--debug", "info", "no-such-model")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_no_command_prints_help():
    result = _run()
    assert result.returncode == 2 and "COMMAND" in result.stdout


def test_quiet_by_default_without_tensorflow_chatter():
    """Issue 18: no TensorFlow/absl start-up lines and no CUDA probe error unless --debug."""
    result = _run("info", "weather-lstm")
    assert result.returncode == 0, result.stderr
    assert '"name": "weather-lstm"' in result.stdout
    for noise in ("I0000", "E0000", "cuInit", "absl::InitializeLog", "oneDNN"):
        assert noise not in result.stderr, result.stderr


def test_quiet_mode_does_not_import_tensorflow_for_commands_that_need_none():
    """Quieting TensorFlow takes effect at its import, so ``pull`` stays free of it."""
    code = ("import sys\nfrom lstm_zoo.cli import main\n"
            "assert main(['pull', 'weather']) == 0\n"
            "assert 'tensorflow' not in sys.modules, 'pull imported TensorFlow'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if "no published" in result.stderr or "unknown" in result.stderr:
        pytest.skip("no published weather model here")
    assert result.returncode == 0, result.stderr
