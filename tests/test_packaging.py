"""Packaging: the sdist (``maturin sdist``) installs with pip into a fresh venv, where the
package imports, talks to a server, ships its typing files and the ``wsdump`` script, and
reports the one version (Cargo.toml's).

This compiles the crate (release profile). It runs by default and in CI; set
``WEBSOCKET_RUST_SKIP_PACKAGING=1`` to skip it locally (or deselect with ``-m "not packaging"``).

Build cache: cargo's target directory is ``$WEBSOCKET_RUST_PACKAGING_TARGET_DIR`` if set,
else ``target/`` itself under CI (``$CI`` set: the compiled dependencies of the normal build
are reused), else ``target/packaging-test`` (kept between runs). Locally it is not
``target/`` because the crate built from the sdist would then replace the uplifted library
of the working tree with a build whose timestamp can hide edits made while it compiled.
The sdist's file times are set to now, so the crate is always compiled from the sdist's
own sources; only the dependencies are reused.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

import websocket

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.packaging,
    # The installed package runs in a child process (the fresh venv): the driver choice of
    # this process does not reach it, so the test runs once, not once per driver.
    pytest.mark.own_driver,
    pytest.mark.skipif(
        os.environ.get("WEBSOCKET_RUST_SKIP_PACKAGING", "") not in ("", "0"),
        reason="WEBSOCKET_RUST_SKIP_PACKAGING is set",
    ),
    pytest.mark.skipif(not hasattr(websocket, "_native"), reason="packaging of websocket-rust"),
    pytest.mark.skipif(sys.platform == "win32", reason="venv layout differs on Windows"),
]


def _cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    package = text.split("[package]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', package, re.M)
    assert match, "no version in Cargo.toml [package]"
    return match.group(1)


def _target_dir() -> str:
    explicit = os.environ.get("WEBSOCKET_RUST_PACKAGING_TARGET_DIR")
    if explicit:
        return explicit
    if os.environ.get("CI"):
        return os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return str(ROOT / "target" / "packaging-test")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


def _touch_tarball(src: Path, dst: Path) -> None:
    """Copy of the sdist whose files are dated now (see the module docstring)."""
    now = time.time()
    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member) if member.isfile() else None
            member.mtime = now
            tout.addfile(member, data)


@pytest.mark.timeout(1800)
def test_sdist_installs_into_a_fresh_venv(tmp_path, echo_url):
    if shutil.which("cargo") is None:
        pytest.skip("cargo is not installed")
    maturin = shutil.which("maturin", path=os.path.dirname(sys.executable)) or shutil.which("maturin")
    assert maturin is not None, "maturin is not installed (requirements-test.txt)"

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["CARGO_TARGET_DIR"] = _target_dir()

    # 1. The sdist.
    _run([maturin, "sdist", "--out", str(tmp_path / "dist")], cwd=ROOT, env=env, timeout=300)
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    version = _cargo_version()
    assert sdist.name == f"websocket_rust-{version}.tar.gz"
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md", "src/lib.rs",
                   "python/websocket/__init__.py", "python/websocket/py.typed",
                   "python/websocket/_native.pyi"):
        assert needed in names, f"{needed} missing from the sdist"
    fresh = tmp_path / sdist.name
    _touch_tarball(sdist, fresh)

    # 2. A fresh venv, pip only, and `pip install <sdist>` (isolated build, as users do).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], env=env, timeout=300)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
          str(fresh)], env=env, timeout=1500, cwd=tmp_path)

    # 3. It works from there, without this checkout on the path.
    check = textwrap.dedent(
        """
        import importlib.metadata, os, sys
        import websocket
        ws = websocket.create_connection(sys.argv[1], timeout=10)
        assert ws.send("packaged") == 14
        assert ws.recv() == "packaged"
        ws.close()
        pkg = os.path.dirname(websocket.__file__)
        assert os.path.isfile(os.path.join(pkg, "py.typed"))
        assert os.path.isfile(os.path.join(pkg, "_native.pyi"))
        print(websocket.__version__, importlib.metadata.version("websocket-rust"), pkg)
        """
    )
    out = _run([str(py), "-c", check, echo_url + "/"], env=env, cwd=tmp_path, timeout=60).stdout.split()
    assert out[0] == version and out[1] == version
    assert Path(out[2]).resolve().is_relative_to(venv.resolve())
    usage = _run([str(venv / "bin" / "wsdump"), "--help"], env=env, timeout=60).stdout
    assert "ws_url" in usage
