"""One import path per name: inside the package a name is imported from the module that defines it,
or, from outside its subsystem, from the subsystem's face (the ``__init__`` of hessian, prune, quant,
training, sharpness, connect, lowrank, models, plot); no other module re-exports a name
(docs/architecture.md).
Read from the source, imports inside functions included."""

from __future__ import annotations

import ast
import os

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "landscape")
FACES = {f"landscape.{s}" for s in ("hessian", "prune", "quant", "training", "sharpness", "connect", "lowrank",
                                     "models", "plot")}


def modules() -> dict[str, str]:
    """Every module of the package by dotted name -> its file."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, f), os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[rel[: -len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(folder, f)
    return out


def bindings(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The names a module defines at its top level (def, class, assignment) and those it imports."""
    defined: set[str] = set()
    imported: set[str] = set()

    def targets(node) -> list[str]:
        if isinstance(node, ast.Name):
            return [node.id]
        if isinstance(node, ast.Tuple | ast.List):
            return [n for e in node.elts for n in targets(e)]
        return []

    def walk(body):
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(n for t in node.targets for n in targets(t))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign):
                defined.update(targets(node.target))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                imported.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for part in ("body", "orelse", "finalbody"):
                    walk(getattr(node, part, []))
                for handler in getattr(node, "handlers", []):
                    walk(handler.body)

    walk(tree.body)
    return defined, imported


def subsystem(module: str) -> str:
    return ".".join(module.split(".")[:2])


def violations() -> list[str]:
    mods = modules()
    trees = {m: ast.parse(open(path).read(), path) for m, path in mods.items()}
    names = {m: bindings(t) for m, t in trees.items()}
    bad = []
    for importer, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("landscape"):
                continue
            source = node.module
            for alias in node.names:
                if f"{source}.{alias.name}" in mods:
                    continue  # a module, imported by its name
                defined, _ = names.get(source, (set(), set()))
                if alias.name in defined:
                    continue
                if source in FACES and subsystem(importer) != source:
                    continue  # a subsystem's face, from outside the subsystem
                bad.append(f"{importer}:{node.lineno} imports {alias.name} from {source}, which does not define it")
        if not mods[importer].endswith("__init__.py"):
            defined, imported = names[importer]
            exported = next((n.value for n in tree.body if isinstance(n, ast.Assign)
                             and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)), None)
            for elt in getattr(exported, "elts", []):
                if isinstance(elt, ast.Constant) and elt.value in imported and elt.value not in defined:
                    bad.append(f"{importer} re-exports {elt.value} in __all__")
    return bad


def test_every_name_is_imported_from_the_module_that_defines_it():
    assert violations() == []


def test_the_package_s_public_names_point_at_their_defining_modules():
    """``landscape.X`` (landscape/__init__.py's table) names the module that defines X, or a face."""
    import landscape

    mods = modules()
    for name, module in landscape._EXPORTS.items():
        defined, _ = bindings(ast.parse(open(mods[module]).read()))
        assert name in defined or module in FACES, (name, module)


def test_the_checker_finds_a_re_export(tmp_path, monkeypatch):
    """A module importing a name from a module that only imports it, and a non-face module listing an
    imported name in __all__, are both found."""
    pkg = tmp_path / "landscape"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "prune").mkdir()
    for init in (pkg / "__init__.py", pkg / "engine" / "__init__.py", pkg / "prune" / "__init__.py"):
        init.write_text("")
    (pkg / "engine" / "a.py").write_text("def f():\n    pass\n")
    (pkg / "engine" / "b.py").write_text("from landscape.engine.a import f\n__all__ = ['f']\n")
    (pkg / "engine" / "c.py").write_text("from landscape.engine.b import f\nfrom landscape.engine.a import f as g\n")
    (pkg / "prune" / "d.py").write_text("from landscape.prune import e\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(pkg))
    found = violations()
    assert any("landscape.engine.c:1 imports f from landscape.engine.b" in v for v in found)
    assert any("landscape.engine.b re-exports f" in v for v in found)
    assert any("landscape.prune.d:1 imports e from landscape.prune" in v for v in found)  # a face, from inside
    assert len(found) == 3
