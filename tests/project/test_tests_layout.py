"""The tests' own layout: folders that mirror the package, no test module importing another (shared
code lives in tests/helpers.py, fixtures in conftest.py), unique module names, docs that name test
files that exist, and a run that leaves nothing in the checkout."""

from __future__ import annotations

import ast
import re
import subprocess

from helpers import ROOT, checkout_changes

TESTS = ROOT / "tests"
SHARED = {"helpers", "quadratic", "bumps"}  # quadratic: the user-code module of "quadratic:model" specs; bumps: the
# closed-form landscapes of the adaptive grids' tests and benchmarks/bench_adaptive.py


def local_modules() -> dict[str, list]:
    """Every Python file of tests/ by module name (what ``import NAME`` would find)."""
    out: dict[str, list] = {}
    for path in sorted(TESTS.rglob("*.py")):
        out.setdefault(path.stem, []).append(path)
    return out


def imported_names(tree: ast.Module) -> set[str]:
    """Top-level names of every module imported anywhere in ``tree`` (inside functions too)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and ast.unparse(node.func) in ("importlib.import_module", "import_module")
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names.add(node.args[0].value.split(".")[0])
    return names


def test_no_test_module_imports_another():
    local = set(local_modules())
    bad = []
    for path in sorted(TESTS.rglob("*.py")):
        for name in sorted(imported_names(ast.parse(path.read_text())) & local - SHARED):
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "shared code belongs in tests/helpers.py, fixtures in conftest.py:\n" + "\n".join(bad)


def test_the_import_check_sees_imports_inside_functions():
    tree = ast.parse("import os\ndef f():\n    from test_other import x\n    import helpers.sub\n"
                     "    importlib.import_module('test_third')\nfrom . import rel\n")
    assert imported_names(tree) == {"os", "test_other", "helpers", "test_third"}


def test_test_module_names_are_unique():
    """pytest imports test modules by their base name (no __init__.py, rootdir-relative "prepend"
    mode): two files of one name in two folders stop the whole run at collection."""
    same = {name: [str(p.relative_to(ROOT)) for p in paths] for name, paths in local_modules().items()
            if len(paths) > 1 and name != "conftest"}
    assert not same, same


def test_the_test_folders_mirror_the_package():
    package = {p.name for p in (ROOT / "landscape").iterdir() if (p / "__init__.py").is_file()}
    folders = {p.parent.relative_to(TESTS).parts[0] for p in TESTS.rglob("test_*.py")}
    assert "" not in folders and not list(TESTS.glob("test_*.py")), "a test module directly in tests/"
    assert folders - package == {"project"}, folders - package  # project: docs, layers, notebooks, the tests


def test_docs_name_test_files_that_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    named = {(page.name, m) for page in pages for m in re.findall(r"tests/[\w/]+\.py", page.read_text())}
    assert named, "no page names a test file: the pattern is wrong"
    missing = sorted(f"{page}: {path}" for page, path in named if not (ROOT / path).is_file())
    assert not missing, missing


def test_pytest_benchmark_cannot_write_into_the_checkout(request):
    # pyproject.toml's addopts block the plugin (installed or not), whose .benchmarks/ it would make here
    assert request.config.pluginmanager.is_blocked("benchmark")


def test_lint_imports_runs_without_a_cache():
    ci = (ROOT / ".ci" / "run").read_text()
    runs = [line for line in ci.splitlines() if line.startswith("lint-imports")]
    assert runs and all("--no-cache" in line for line in runs), runs


def test_checkout_changes_sees_new_files_ignored_files_and_empty_folders(tmp_path):
    """The check conftest.py runs after every session, on a checkout of its own."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=300)
    (tmp_path / ".gitignore").write_text("*.h5\n")
    (tmp_path / "kept.h5").write_text("there before")
    before = checkout_changes(tmp_path)
    assert before == {"?? .gitignore", "!! kept.h5"}
    (tmp_path / "s.h5").write_text("left by a test")
    (tmp_path / ".benchmarks").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "new.txt").write_text("x")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m.pyc").write_bytes(b"")
    (tmp_path / ".pytest_cache").mkdir()
    assert checkout_changes(tmp_path) - before == {"!! s.h5", "empty folder .benchmarks/", "?? sub/"}
    assert checkout_changes(tmp_path / "no checkout") is None
