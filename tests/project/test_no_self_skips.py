"""No test skips itself because the project's own code is missing or broken.

``pytest.importorskip`` and ``try: import ... except ImportError`` are for optional third-party
packages (vtk, plotly, torch_pruning, ...). Applied to ``landscape`` itself they turn a module
that no longer imports into a green "skipped": the test must fail instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _imports_landscape(node: ast.AST) -> bool:
    for n in ast.walk(node):
        if isinstance(n, ast.Import) and any(a.name.split(".")[0] == "landscape" for a in n.names):
            return True
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "landscape":
            return True
    return False


def _caught(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return {"BaseException"}
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in types}


def self_skips(source: str) -> list[str]:
    """Where ``source`` skips on the project's own imports: ``importorskip("landscape...")``,
    a ``try`` importing ``landscape`` that catches an import error, ``skip`` on a missing attribute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "importorskip" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and str(arg.value).split(".")[0] == "landscape":
                found.append(f"line {node.lineno}: importorskip({arg.value!r})")
        if isinstance(node, ast.Try) and any(_imports_landscape(s) for s in node.body):
            if any(_caught(h) & IMPORT_ERRORS for h in node.handlers):
                found.append(f"line {node.lineno}: try/except around an import of landscape")
        if isinstance(node, ast.If) and any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "hasattr"
                                            for n in ast.walk(node.test)):
            if any(isinstance(n, ast.Call) and getattr(n.func, "attr", None) in ("skip", "xfail")
                   for s in node.body for n in ast.walk(s)):
                found.append(f"line {node.lineno}: skipped when an attribute is missing")
    return found


def test_the_checker_finds_each_kind_of_self_skip():
    assert self_skips('import pytest\nengine = pytest.importorskip("landscape.engine")\n')
    assert self_skips("try:\n    from landscape import x\nexcept ImportError:\n    x = None\n")
    assert self_skips("import m\nif not hasattr(m, 'f'):\n    pytest.skip('not yet')\n")
    assert not self_skips('import pytest\nvtk = pytest.importorskip("vtk")\n')
    assert not self_skips("try:\n    import mpi4py\nexcept ImportError:\n    pass\n")


def test_no_test_skips_on_the_projects_own_modules():
    found = {p.name: hits for p in sorted(TESTS.rglob("*.py")) if (hits := self_skips(p.read_text()))}
    assert not found, found
