"""Entry-point plugins: a real package pip-installed into this environment registers a model;
a broken one only produces a warning naming it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

GOOD = "lstm-zoo-test-plugin-good"
BROKEN = "lstm-zoo-test-plugin-broken"


def _write_plugin(root: Path, dist: str, module: str, body: str, target: str) -> Path:
    pkg = root / dist
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(textwrap.dedent(body))
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.0.1"

            [project.entry-points."lstm_zoo.plugins"]
            {module} = "{target}"

            [tool.setuptools]
            packages = ["{module}"]
            """
        )
    )
    return pkg


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def installed_plugins(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    good = _write_plugin(
        root,
        GOOD,
        "zoo_test_plugin_good",
        """
        import keras
        from lstm_zoo import register_model

        def register():
            @register_model("plugin-tiny", task="testing", description="from a plugin")
            def build(units: int = 2):
                inputs = keras.Input((None, 1))
                outputs = keras.layers.Dense(units)(inputs)
                return keras.Model(inputs, outputs)
        """,
        "zoo_test_plugin_good:register",
    )
    broken = _write_plugin(
        root,
        BROKEN,
        "zoo_test_plugin_broken",
        """
        from lstm_zoo import register_model

        @register_model("plugin-half", task="testing", description="registered before the crash")
        def build():
            return None

        raise RuntimeError("this plugin is broken on purpose")
        """,
        "zoo_test_plugin_broken",
    )
    _pip("install", "--no-deps", "--no-build-isolation", str(good), str(broken))
    yield
    _pip("uninstall", "-y", GOOD, BROKEN)


def test_plugin_model_listed_and_built_broken_plugin_warns(installed_plugins):
    script = textwrap.dedent(
        """
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import lstm_zoo
            names = lstm_zoo.list_models()
        model = lstm_zoo.get_model("plugin-tiny", units=3)
        print("NAMES", names)
        print("OUTPUT", model.output.shape)
        print("WARN", [str(w.message) for w in caught if "plugin" in str(w.message)])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    out = result.stdout
    assert "'plugin-tiny'" in out.split("NAMES", 1)[1].splitlines()[0]
    assert "(None, None, 3)" in out
    warn_line = out.split("WARN", 1)[1]
    assert "zoo_test_plugin_broken" in warn_line and "broken on purpose" in warn_line
    # what the broken plugin registered before failing was rolled back
    assert "plugin-half" not in out.split("NAMES", 1)[1].splitlines()[0]


def test_cli_lists_plugin_model(installed_plugins):
    result = subprocess.run(
        [sys.executable, "-m", "lstm_zoo", "list", "plugin-*"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "plugin-tiny" in result.stdout and "from a plugin" in result.stdout
    assert "zoo_test_plugin_broken" in result.stderr
