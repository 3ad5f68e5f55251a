"""Every module-level name of every websocket-client 1.9.2 module exists in the same module
here, with the same signature (issue 13, part 2).

How: tests/surface_dump.py runs once with the reference venv's Python (``.venv-ref``, or
``$VENV-ref`` as scripts/test names it; websocket-client 1.9.2 installed there) and once with
this interpreter, and dumps each module's names as JSON. The test then compares, module by
module, the reference's *surface* against what this package has.

Which names make a module's surface (decided from the reference's source, with ``ast``):

1. what ``from module import *`` yields: ``__all__``, or every public name when the module
   has no ``__all__``. This is how typing's ``Any`` and ``Optional`` leak from ``_exceptions``
   into ``websocket`` itself (REFERENCE.md 1.2), and why ``_dispatcher.Callable`` counts;
2. every name the module binds itself at top level: ``def``, ``class``, assignment (also
   inside ``try``/``if``, but not under ``if TYPE_CHECKING``), public or private
   (``_abnf._mask``, ``_logging._logger``, ``_handshake._validate``);
3. every name imported from within the package (``from ._socket import send``): code and
   tests patch those where they are used (``mock.patch("websocket._dispatcher.send")``);
4. every module imported with a plain ``import`` (``socket``, ``ssl``, ``os``): tests patch
   through them (``mock.patch("websocket._http.socket.getaddrinfo")``).

Names that ``from X import name`` takes from the standard library or a third party are left
out unless rule 1 exports them: nobody should import ``websocket._url.urlparse``.

For each name of the surface the test compares: that it exists; its kind (module, class,
callable, plain value); for classes and callables the ``inspect.signature`` (parameter names,
kinds and defaults, annotations ignored); for classes the qualified name (the same class
object, so ``except``/``isinstance`` work across modules), the base classes, and the methods,
properties and class attributes the reference's class defines (with their signatures); for
plain values (constants, ``__all__`` as a set) the value. ``__version__`` only has to exist
(it is this package's own version, docs/migration.md). A class's members are compared in the
module that defines it; where it is re-exported only its identity is.

A signature matches when it has the reference's parameters in the same order with the same
kinds and defaults, plus, at most, parameters of this package's own that have a default and
that no call valid for the reference can reach: keyword-only ones, ``*args``/``**kwargs``, or
positional ones after the reference's last (``run_forever(..., *, compression=False,
max_size=None)``, ``_wsdump.main(argv=None)``, README "Beyond websocket-client").

What this package has in addition (names, ``__all__`` entries) is not checked.

``_core``, ``_app``, ``_http`` and ``_handshake`` belong to the Python-socket driver work:
their known gaps are listed in ``EXPECTED_GAPS`` and the test of such a module is a strict
xfail, so it turns red both when a new gap appears and when the driver closes the last one
(then delete the entry). On websocket-client itself the test compares the reference with
itself: it must pass there, so the xfails apply to this package only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any, Dict, List

import pytest

import surface_dump
import websocket

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DUMP = os.path.join(HERE, "surface_dump.py")
STRICT = hasattr(websocket, "_native")


def _reference_python() -> str:
    """The reference venv's interpreter, found as scripts/test makes it: ``${VENV:-.venv}-ref``."""
    venv = os.environ.get("VENV", ".venv") + "-ref"
    if not os.path.isabs(venv):
        venv = os.path.join(ROOT, venv)
    return os.path.join(venv, "bin", "python")


def _dump(python: str) -> Dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    # Run from a directory without a `websocket` package, so each interpreter imports its own.
    out = subprocess.run(
        [python, DUMP], cwd=HERE, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"{python} {DUMP} failed:\n{out.stderr}"
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def surfaces():
    ref_python = _reference_python()
    if not os.path.exists(ref_python):
        pytest.skip(
            f"no reference venv at {os.path.dirname(os.path.dirname(ref_python))}: "
            "create it as scripts/test does (pip install websocket-client==1.9.2)"
        )
    ref = _dump(ref_python)
    assert not ref["native"], f"{ref_python} imports websocket-rust ({ref['file']}), not websocket-client"
    ours = _dump(sys.executable)
    return ref["modules"], ours["modules"]


def _sig_text(sig: List[List[Any]] | None) -> str:
    if sig is None:
        return "<no signature>"
    parts = []
    for name, kind, default in sig:
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        text = prefix + name + ("" if default is None else "=" + default)
        if kind == "POSITIONAL_ONLY":
            text += " (positional-only)"
        elif kind == "KEYWORD_ONLY":
            text += " (keyword-only)"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def _compatible(ref: List[List[Any]], ours: List[List[Any]]) -> bool:
    """Same parameters (names, kinds, defaults, order), plus optional extras that no call
    valid for the reference can bind: see the module docstring."""
    ref_names = {p[0] for p in ref}
    if ours[:1] == [["self", "POSITIONAL_ONLY", None]] and ref[:1] == [["self", "POSITIONAL_OR_KEYWORD", None]]:
        # A method of a compiled base class (WebSocket.recv and .send are WebSocketBase's):
        # its `self` is positional-only, as for every C method. Only a call that passes
        # the instance by name, `WebSocket.send(self=ws, ...)`, could tell.
        ours = [ref[0]] + ours[1:]
    if [p for p in ours if p[0] in ref_names] != ref:
        return False
    last_positional = max(
        (i for i, p in enumerate(ours) if p[0] in ref_names and p[1] in _POSITIONAL), default=-1
    )
    for i, (name, kind, default) in enumerate(ours):
        if name in ref_names or kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        if default is None or (kind in _POSITIONAL and i < last_positional):
            return False
    return True


_POSITIONAL = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")


def _compare_signature(where: str, ref: Any, ours: Any, out: List[str]) -> None:
    if ref is None:
        return
    if ours is None or not _compatible(ref, ours):
        out.append(f"{where}: signature {_sig_text(ours)}, reference {_sig_text(ref)}")


def _compare_value(where: str, name: str, ref: Dict[str, Any], ours: Dict[str, Any], out: List[str]) -> None:
    if name == "__version__":
        return
    if ref["type"] != ours.get("type"):
        out.append(f"{where}: a {ours.get('type')}, reference a {ref['type']}")
    elif ref["value"] is not None and ref["value"] != ours["value"]:
        out.append(f"{where}: value {ours['value']}, reference {ref['value']}")


def _compare_class(where: str, module: str, ref: Dict[str, Any], ours: Dict[str, Any], out: List[str]) -> None:
    if ref["qualname"] != ours["qualname"]:
        out.append(f"{where}: is {ours['qualname']}, reference {ref['qualname']}")
        return
    if ref["module"] != module:
        return  # a re-export: its members are compared in the module that defines it
    _compare_signature(where, ref["signature"], ours["signature"], out)
    missing_bases = [b for b in ref["mro"] if b not in ours["mro"]]
    if missing_bases:
        out.append(f"{where}: does not derive from {missing_bases}")
    for member, rdesc in sorted(ref["members"].items()):
        mwhere = f"{where}.{member}"
        odesc = ours["members"].get(member)
        if odesc is None:
            out.append(f"{mwhere}: missing")
            continue
        if rdesc["kind"] != odesc["kind"]:
            out.append(f"{mwhere}: a {odesc['kind']}, reference a {rdesc['kind']}")
            continue
        if "signature" in rdesc:
            _compare_signature(mwhere, rdesc["signature"], odesc["signature"], out)
        elif rdesc["kind"] == "attribute" and rdesc["value"] is not None and rdesc["value"] != odesc["value"]:
            out.append(f"{mwhere}: value {odesc['value']}, reference {rdesc['value']}")


def differences(module: str, ref: Dict[str, Any], ours: Dict[str, Any]) -> List[str]:
    """One readable line per difference of ``module``'s surface from the reference's."""
    out: List[str] = []
    for name in ref["selected"]:
        where = f"{module}.{name}"
        rdesc = ref["names"][name]
        odesc = ours["names"].get(name)
        if odesc is None:
            out.append(f"{where}: missing")
            continue
        if rdesc["kind"] != odesc["kind"]:
            out.append(f"{where}: a {odesc['kind']}, reference a {rdesc['kind']}")
            continue
        if rdesc["kind"] == "module":
            if rdesc["module"] != odesc["module"]:
                out.append(f"{where}: module {odesc['module']}, reference {rdesc['module']}")
        elif rdesc["kind"] == "class":
            _compare_class(where, module, rdesc, odesc, out)
        elif rdesc["kind"] == "callable":
            _compare_signature(where, rdesc["signature"], odesc["signature"], out)
        elif name == "__all__":
            missing = sorted(set(ref["all"]) - set(ours["all"] or ()))
            if missing:
                out.append(f"{where}: lacks {missing}")
        else:
            _compare_value(where, name, rdesc, odesc, out)
    not_starred = sorted(set(ref["star"]) - set(ours["star"]))
    if not_starred and "__all__" not in ref["selected"]:
        out.append(f"{module}: `from {module} import *` does not bind {not_starred}")
    return out


#: The gaps the Python-socket driver will close (modules this work does not own). Each
#: entry is the exact list the test prints; when the driver closes one, delete its line.
EXPECTED_GAPS: Dict[str, List[str]] = {
    "websocket._http": [
        # Deliberate: SOCKS is spoken by the Rust core, so it is always available here (the
        # reference venv has no python-socks).
        "websocket._http.HAVE_PYTHON_SOCKS: value True, reference False",
    ],
}

MODULES = list(surface_dump.MODULES)


class KnownGaps(Exception):
    """Raised when a module has exactly its EXPECTED_GAPS: the only failure the xfail accepts."""


def _params():
    for m in MODULES:
        marks = []
        if m in EXPECTED_GAPS:
            marks.append(
                pytest.mark.xfail(
                    STRICT,
                    raises=KnownGaps,
                    strict=True,
                    reason=f"{m} belongs to the Python-socket driver work; gaps listed in EXPECTED_GAPS",
                )
            )
        yield pytest.param(m, marks=marks, id=m)


@pytest.mark.parametrize("module", list(_params()))
def test_module_surface(surfaces, module):
    ref, ours = surfaces
    found = differences(module, ref[module], ours[module])
    expected = EXPECTED_GAPS.get(module) if STRICT else None
    if expected is not None:
        # Strict xfail that accepts KnownGaps only: the exact listed gaps are the expected
        # failure; a new gap fails (AssertionError), no gap at all is an XPASS(strict).
        if found == expected:
            raise KnownGaps(f"{module}: the {len(found)} known gaps:\n  " + "\n  ".join(found))
        if not found:
            return  # XPASS(strict) -> the list must be emptied
        raise AssertionError(
            f"{module}: the gaps changed; update EXPECTED_GAPS[{module!r}] to:\n"
            + json.dumps(found, indent=4)
        )
    assert not found, f"{module} differs from websocket-client 1.9.2:\n  " + "\n  ".join(found)
