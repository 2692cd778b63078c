"""The layout's rules, checked: imports run one way (import-linter contracts in pyproject.toml),
every package ships, and Python started at the repository root sees what an install sees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def lint_imports(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    """import-linter on ``config`` in its own process (it takes over the console)."""
    code = ("import sys\nfrom importlinter.cli import lint_imports\n"
            f"sys.exit(lint_imports(config_filename={str(config)!r}, no_cache=True, no_logo=True))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_COLOR": "1"})


def test_import_contracts_are_kept():
    """Layers import only downward (function-level imports count); see pyproject.toml."""
    result = lint_imports(REPO_ROOT / "pyproject.toml", REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_contracts_fail_on_an_upward_import(tmp_path):
    """The contract can fail: in a renamed copy of the package, one function-level import of the
    CLI from the layers breaks it."""
    copy = tmp_path / "zoo_copy"
    shutil.copytree(REPO_ROOT / "lstm_zoo", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):
        path.write_text(path.read_text().replace("lstm_zoo", "zoo_copy"))
    with (copy / "layers" / "masks.py").open("a") as f:
        f.write("\n\ndef _upward():\n    from zoo_copy import cli  # noqa: F401\n")
    config = tmp_path / "contracts.toml"
    config.write_text((REPO_ROOT / "pyproject.toml").read_text().replace("lstm_zoo", "zoo_copy"))
    result = lint_imports(config, tmp_path)  # the copy is first on sys.path there
    assert result.returncode == 1, result.stdout + result.stderr
    assert "zoo_copy.layers.masks -> zoo_copy.cli" in result.stdout, result.stdout


def test_every_package_is_installed():
    """setuptools finds every folder with an __init__.py under lstm_zoo/ (no package left out)."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == ["lstm_zoo", "lstm_zoo.*"]
    assert config["package-dir"]["lstm_zoo.recipes"] == "recipes"
    link = REPO_ROOT / "lstm_zoo" / "recipes"
    assert link.is_symlink() and link.resolve() == (REPO_ROOT / "recipes").resolve()


@pytest.mark.slow
def test_repository_root_imports_like_the_install(tmp_path):
    """A fresh clone, installed without -e, then Python started at its root: the source tree's
    lstm_zoo is imported (it is first on sys.path) and must find the recipes and the registry."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    clone = tmp_path / "clone"
    for name in filter(None, tracked):
        source, target = REPO_ROOT / name, clone / name
        if name.startswith("saved_models/") or not (source.exists() or source.is_symlink()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(site), str(clone)], check=True, capture_output=True)
    code = ("import json, warnings, lstm_zoo\n"
            "warnings.simplefilter('error')\n"
            "print(json.dumps({'file': lstm_zoo.__file__, 'models': lstm_zoo.list_models(),"
            " 'recipes': lstm_zoo.list_recipes()}))\n")
    env = {**os.environ, "PYTHONPATH": str(site), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=clone, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["file"] == str(clone / "lstm_zoo" / "__init__.py")
    assert found["recipes"] == ["finance", "fraud", "speech", "translation", "weather"]
    assert "weather-lstm" in found["models"] and "speech-lstm-ctc" in found["models"]
