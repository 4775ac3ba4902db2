"""The library's declarations read from its source, for the parsers: a constant (``NORMS``) or the
defaults of an option object's fields (``EvalOptions``), without importing the module that
declares them. A command's ``--help`` and the checks of its arguments then run before torch is
imported (which takes seconds, tens of them on a loaded machine), while every choice and default
stays declared once, where the library declares it.

Only declarations the source spells as values are read: literals, names of other such
declarations (followed through ``from ... import``), tuples, lists and dicts of them, paths
joined from them (``os.path.join``), and a dataclass field's ``field(default=...)`` or
``field(default_factory=Class)`` (or ``lambda: Class(name=literal, ...)``, or a function without
arguments returning that), base classes included. Anything else is taken from the imported
module: correct, only slower (``tests/cli/test_parsers.py`` keeps every command's ``--help`` free of
torch, and compares every declaration read here with the imported one).
"""

from __future__ import annotations

import ast
import importlib
import os
from functools import cache
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the landscape package's folder
READ: set[tuple[str, str]] = set()  # every (module, name) looked up, for the tests


class _Unknown(Exception):
    """A declaration that is not a value in the source."""


class Defaults:
    """The defaults of an option object's fields, by attribute (``Defaults.radius``); a field
    whose default the source does not spell as a value is the imported class's own."""

    def __init__(self, module: str, cls: str, values: dict[str, Any]):
        self._module, self._cls, self._values = module, cls, values

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(_imported(self._module, self._cls), name)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


def declared_names(module: str, name: str) -> tuple[str, ...]:
    """The keys of the dict ``module`` declares as ``name`` (``LOSSES``: the loss functions by
    name), read from the source, else from the imported module."""
    READ.add((module, name))
    try:
        kind, node = _bindings(module).get(name, (None, None))
        if kind == "import":
            return declared_names(*node)
        if kind == "value" and isinstance(node, ast.Dict) and None not in node.keys:
            return tuple(_evaluate(module, k) for k in node.keys)
    except _Unknown:
        pass
    return tuple(getattr(importlib.import_module(module), name))


def declared(module: str, name: str) -> Any:
    """The value ``module`` declares as ``name`` (a constant, or a class: its :class:`Defaults`),
    read from the source, else from the imported module."""
    READ.add((module, name))
    try:
        return _value(module, name)
    except _Unknown:
        return _imported(module, name)


def _imported(module: str, name: str) -> Any:
    value = getattr(importlib.import_module(module), name)
    return value() if isinstance(value, type) else value


@cache
def _bindings(module: str) -> dict[str, tuple[str, Any]]:
    """The top-level names of ``module``: ("value", node), ("class", node) or ("import", (module, name))."""
    parts = module.split(".")[1:]
    for path in (os.path.join(ROOT, *parts) + ".py", os.path.join(ROOT, *parts, "__init__.py")):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            break
    else:
        raise _Unknown(module)
    out: dict[str, tuple[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            out[node.targets[0].id] = ("value", node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            out[node.target.id] = ("value", node.value)
        elif isinstance(node, ast.ClassDef):
            out[node.name] = ("class", node)
        elif isinstance(node, ast.FunctionDef) and not node.args.args and isinstance(node.body[-1], ast.Return):
            out[node.name] = ("factory", node.body[-1].value)  # a default factory: def f(): return Class(...)
        elif isinstance(node, ast.ImportFrom):
            source = ".".join(module.split(".")[: len(module.split(".")) - node.level + (path.endswith("__init__.py"))]
                              + ([node.module] if node.module else [])) if node.level else node.module
            for alias in node.names:
                out[alias.asname or alias.name] = ("import", (source, alias.name))
    return out


@cache
def _value(module: str, name: str) -> Any:
    kind, what = _bindings(module).get(name, (None, None))
    if kind == "import":
        return _value(*what)
    if kind == "class":
        return Defaults(module, name, _fields(module, what))
    if kind == "value":
        return _evaluate(module, what)
    raise _Unknown(f"{module}.{name}")


def _evaluate(module: str, node: ast.AST) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(module, node.operand)
    if isinstance(node, ast.Name | ast.Attribute):
        value = _named(module, node)
        if isinstance(value, Defaults):
            raise _Unknown(ast.unparse(node))  # a class, not a value
        return value
    if isinstance(node, ast.Tuple):
        return tuple(_evaluate(module, e) for e in node.elts)
    if isinstance(node, ast.List):
        return [_evaluate(module, e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_evaluate(module, k): _evaluate(module, v) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join" and not node.keywords:
        return os.path.join(*(_evaluate(module, a) for a in node.args))
    raise _Unknown(ast.dump(node))


def _fields(module: str, cls: ast.ClassDef) -> dict[str, Any]:
    """The field defaults of the dataclass ``cls`` that the source spells as values, bases first."""
    values: dict[str, Any] = {}
    for base in cls.bases:
        try:
            values.update(_class(module, base).as_dict())
        except _Unknown:
            pass
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            continue
        try:
            values[node.target.id] = _default(module, node.value)
        except _Unknown:
            values.pop(node.target.id, None)  # the imported class's own default, when asked for
    return values


def _default(module: str, node: ast.AST) -> Any:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "field"):
        return _evaluate(module, node)
    keywords = {k.arg: k.value for k in node.keywords}
    if "default" in keywords:
        return _evaluate(module, keywords["default"])
    factory = keywords.get("default_factory")
    overrides: dict[str, Any] = {}
    if isinstance(factory, ast.Name) and _bindings(module).get(factory.id, (None,))[0] == "factory":
        factory = ast.Lambda(args=None, body=_bindings(module)[factory.id][1])
    if isinstance(factory, ast.Lambda) and isinstance(factory.body, ast.Call) and not factory.body.args:
        overrides = {k.arg: _evaluate(module, k.value) for k in factory.body.keywords}
        factory = factory.body.func
    if isinstance(factory, ast.Name) and factory.id in ("tuple", "list", "dict") and not overrides:
        return {"tuple": (), "list": [], "dict": {}}[factory.id]
    made = _class(module, factory)
    return Defaults(made._module, made._cls, {**made.as_dict(), **overrides})


def _named(module: str, node: ast.AST) -> Any:
    """What ``node`` names: ``NAME``, or ``package.NAME`` of a module imported by name."""
    if isinstance(node, ast.Name):
        return _value(module, node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        kind, what = _bindings(module).get(node.value.id, (None, None))
        if kind == "import":
            return _value(".".join(what), node.attr)
    raise _Unknown(ast.unparse(node))


def _class(module: str, node: ast.AST) -> Defaults:
    """The class ``node`` names: ``Class``, or ``package.Class`` of a module imported by name."""
    found = _named(module, node)
    if not isinstance(found, Defaults):
        raise _Unknown(ast.unparse(node))
    return found
