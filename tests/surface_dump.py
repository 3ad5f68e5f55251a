"""Dumps the module-level surface of the ``websocket`` package importable by this Python as
JSON (stdout), for tests/test_module_surface.py, which runs it once with the reference venv's
Python and once with this package's.

Usage: ``python surface_dump.py`` (prints ``{"modules": {name: {...}}}``).

For each module it records:

- ``selected``: the names that make up the module's surface by the rule documented in
  test_module_surface.py, computed from the module's source (``ast``); only the reference's
  selection is used by the test;
- ``all``: ``__all__`` sorted, or None; ``star``: what ``from module import *`` binds;
- ``names``: a description of every non-dunder attribute of the module (plus ``__all__``
  and ``__version__``): its kind, and for callables and classes the signature
  (parameter names, kinds, defaults), for classes also the base classes and the methods
  they define, for plain data the value.

Only the standard library is used, so it runs in any venv.
"""

import ast
import importlib
import importlib.util
import inspect
import json
import re
import sys
import types

MODULES = (
    "websocket",
    "websocket._abnf",
    "websocket._app",
    "websocket._cookiejar",
    "websocket._core",
    "websocket._dispatcher",
    "websocket._exceptions",
    "websocket._handshake",
    "websocket._http",
    "websocket._logging",
    "websocket._socket",
    "websocket._ssl_compat",
    "websocket._url",
    "websocket._utils",
    "websocket._wsdump",
)

_SIMPLE = (int, float, str, bytes, bool, type(None))
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _bound_names(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _bound_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _bound_names(target.value)


def select_names(module):
    """The names of ``module``'s surface: see test_module_surface.py's docstring."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return sorted(n for n in vars(module) if not n.startswith("__"))
    # What `from module import *` yields: __all__, or else every public name (this is how
    # typing's Any and Optional leak out of _exceptions into the package namespace).
    star = getattr(module, "__all__", None)
    if star is None:
        star = [n for n in vars(module) if not n.startswith("_")]
    selected = set(star)
    package = module.__name__.split(".")[0]

    def walk(stmts):
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                selected.add(node.name)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    selected.update(_bound_names(t))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                selected.update(_bound_names(node.target))
            elif isinstance(node, ast.Import):
                # `import socket`: a module attribute that tests patch through
                # ("websocket._http.socket.getaddrinfo").
                for alias in node.names:
                    selected.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                internal = node.level > 0 or (node.module or "").split(".")[0] == package
                for alias in node.names:
                    if alias.name == "*":
                        if internal:
                            src = importlib.import_module(
                                importlib.util.resolve_name(
                                    "." * node.level + (node.module or ""), module.__package__
                                )
                            )
                            selected.update(
                                getattr(src, "__all__", None)
                                or [n for n in vars(src) if not n.startswith("_")]
                            )
                    elif internal:
                        selected.add(alias.asname or alias.name)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    walk(node.body)
                walk(node.orelse)
            elif isinstance(node, ast.Try):
                walk(node.body)
                for h in node.handlers:
                    walk(h.body)
                walk(node.orelse)
                walk(node.finalbody)
            elif isinstance(node, ast.With):
                walk(node.body)

    walk(ast.parse(source).body)
    return sorted(n for n in selected if hasattr(module, n))


def _default(value):
    if value is inspect.Parameter.empty:
        return None
    if isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType)):
        return f"<{getattr(value, '__module__', '?')}.{value.__qualname__}>"
    return _ADDRESS.sub("", repr(value))


def signature(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, p.kind.name, _default(p.default)] for p in sig.parameters.values()]


def _value(value):
    if isinstance(value, _SIMPLE):
        return repr(value)
    if isinstance(value, (tuple, list)) and all(_value(v) is not None for v in value):
        return type(value).__name__ + ":" + repr([_value(v) for v in value])
    if isinstance(value, (set, frozenset)) and all(isinstance(v, _SIMPLE) for v in value):
        return type(value).__name__ + ":" + repr(sorted(map(repr, value)))
    if isinstance(value, dict) and all(
        isinstance(k, _SIMPLE) and _value(v) is not None for k, v in value.items()
    ):
        return "dict:" + repr(sorted((repr(k), _value(v)) for k, v in value.items()))
    return None


def _members(cls):
    """Methods, properties and class attributes defined by the package's classes in the MRO."""
    out = {}
    for klass in reversed(cls.__mro__):
        if not (getattr(klass, "__module__", "") or "").startswith("websocket"):
            continue
        for name, raw in vars(klass).items():
            if name.startswith("__") and name not in ("__init__", "__iter__", "__next__"):
                continue
            if isinstance(raw, (staticmethod, classmethod)):
                out[name] = {"kind": type(raw).__name__, "signature": signature(getattr(cls, name))}
            elif isinstance(raw, property):
                out[name] = {"kind": "property"}
            elif callable(raw):
                out[name] = {"kind": "method", "signature": signature(raw)}
            else:
                out[name] = {"kind": "attribute", "value": _value(raw)}
    return out


def describe(value):
    if isinstance(value, types.ModuleType):
        return {"kind": "module", "module": value.__name__}
    if isinstance(value, type):
        return {
            "kind": "class",
            "module": value.__module__,
            "qualname": f"{value.__module__}.{value.__qualname__}",
            "signature": signature(value),
            "mro": [f"{k.__module__}.{k.__qualname__}" for k in value.__mro__],
            "members": _members(value),
        }
    if callable(value):
        return {
            "kind": "callable",
            "qualname": f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', '?')}",
            "signature": signature(value),
        }
    return {"kind": "value", "type": type(value).__name__, "value": _value(value)}


def dump():
    out = {}
    for name in MODULES:
        module = importlib.import_module(name)
        names = {}
        for attr, value in vars(module).items():
            if attr.startswith("__") and attr not in ("__all__", "__version__"):
                continue
            names[attr] = describe(value)
        star = getattr(module, "__all__", None)
        out[name] = {
            "selected": select_names(module),
            "names": names,
            "all": None if star is None else sorted(star),
            "star": sorted(star if star is not None else (n for n in vars(module) if not n.startswith("_"))),
        }
    package = importlib.import_module("websocket")
    return {"modules": out, "file": package.__file__, "native": hasattr(package, "_native")}


if __name__ == "__main__":
    json.dump(dump(), sys.stdout, indent=1, sort_keys=True)
