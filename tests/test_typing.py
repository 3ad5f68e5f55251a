"""Typing: ``mypy --strict`` passes on the package and on examples/ (including
examples/typing_sample.py, which uses every public name), the stub of the compiled module
matches it (``mypy.stubtest``), ``py.typed`` is there, and the typed sample also runs.

The configuration is ``[tool.mypy]`` in pyproject.toml; run ``mypy`` in the repository
root to see the same report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import websocket

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    not hasattr(websocket, "_native"), reason="typing checks of websocket-rust itself"
)
# requirements-test.txt installs mypy (2.x, which needs Python 3.10) from Python 3.10 on.
needs_mypy = pytest.mark.skipif(sys.version_info < (3, 10), reason="mypy 2.x needs Python 3.10")


def _mypy_env() -> dict:
    env = dict(os.environ)
    env["MYPYPATH"] = str(ROOT / "python")
    env.pop("MYPY_FORCE_COLOR", None)
    return env


@needs_mypy
def test_mypy_strict_on_package_and_examples(tmp_path):
    proc = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tmp_path / "mypy-cache"),
            "--no-color-output", "--no-error-summary",
            "python/websocket", "examples",
        ],
        cwd=ROOT,
        env=_mypy_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"mypy --strict found errors:\n{proc.stdout}{proc.stderr}"


@needs_mypy
def test_native_stub_matches_the_compiled_module(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "websocket._native"],
        cwd=tmp_path,
        env=_mypy_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"_native.pyi differs from the module:\n{proc.stdout}{proc.stderr}"


def test_py_typed_and_stub_ship_with_the_package():
    pkg = Path(websocket.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "_native.pyi").is_file()


def test_typing_sample_runs(echo_url, child_env):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "typing_sample.py"), echo_url + "/"],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "typing sample: ok" in proc.stdout
