"""The command line, declared once and read before torch (issue 27, item 6; issue 31, part 2):

- the option groups every computing command shares (model, data, run), one help text each;
- the parsers read the library's choices and defaults from its source (landscape.cli._declared),
  equal to the imported ones, so ``--help`` and the checks of the arguments never import torch;
- ``landscape-plot`` never imports torch, whatever file it draws.

What a command imports is read from ``sys.modules`` in a fresh interpreter, never timed.
"""

from __future__ import annotations

import dataclasses
import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import ROOT, TIMEOUT, make_surface

from landscape.cli import _declared
from landscape.cli._common import Parser

COMPUTING = ("surf", "train", "traj", "hessian", "prune", "markov", "compare", "connect", "align", "lowrank")
EVERY = (*COMPUTING, "plot")
RUN = ("--device", "--threads", "--batch-size", "--overwrite", "--no-progress")
MODEL = ("--arch", "--num-classes", "--unsafe-pickle")


def parser(name: str) -> Parser:
    return importlib.import_module(f"landscape.cli.{name}").build_parser()


def helps(name: str) -> dict[str, str]:
    """Each option of the command's parser -> its help text."""
    return {s: a.help or "" for a in parser(name)._actions for s in a.option_strings}


def fresh(code: str, cwd=None) -> subprocess.CompletedProcess:
    """``code`` in a new interpreter (this checkout first on the path)."""
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=TIMEOUT, cwd=cwd)


def test_every_computing_command_has_the_run_options_with_one_help_text_each():
    texts: dict[str, set[str]] = {}
    for name in COMPUTING:
        h = helps(name)
        assert {"--threads", "--overwrite"} <= set(h), name
        for flag in (*RUN, *MODEL):
            if flag in h:
                texts.setdefault(flag, set()).add(h[flag].split(" (default")[0])
    for flag in RUN + MODEL:
        assert len(texts[flag]) == 1, (flag, texts[flag])  # one text (the default named after it may differ)
    assert {"--no-progress", "--device", "--batch-size"} <= set(helps("compare"))  # compare had no --no-progress
    for name in ("surf", "train", "hessian", "prune", "compare", "connect", "align"):
        assert set(RUN) - {"--no-progress"} <= set(helps(name)), name
        assert set(MODEL) <= set(helps(name)), name


def test_the_parsers_read_the_librarys_declarations_as_the_library_has_them():
    _declared.READ.clear()
    for name in EVERY:
        parser(name)
    assert len(_declared.READ) >= 20
    for module, name in sorted(_declared.READ):
        real = getattr(importlib.import_module(module), name)
        if name == "LOSSES":
            assert _declared.declared_names(module, name) == tuple(real)
        elif isinstance(real, type):
            assert_same_defaults(_declared._value(module, name), real, f"{module}.{name}")
        else:
            assert _declared._value(module, name) == real, (module, name)


def field_defaults(cls: type) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def assert_same_defaults(read: _declared.Defaults, cls: type, what: str) -> None:
    """Every field default read from the source is the dataclass's own; a nested option object's,
    its class's field default or what its factory made of it (``EvalOptions(loss_fn="crossentropy")``)."""
    defaults = field_defaults(cls)
    fields = read.as_dict()
    assert fields, what
    for field, value in fields.items():
        assert_same_value(value, defaults[field], f"{what}.{field}")


def assert_same_value(value, have, what: str) -> None:
    if isinstance(value, _declared.Defaults):  # nested, at any depth
        own = field_defaults(type(have))
        for k, v in value.as_dict().items():
            if isinstance(v, _declared.Defaults):
                assert_same_value(v, getattr(have, k), f"{what}.{k}")
            else:
                assert v in (getattr(have, k), own[k]), (what, k, v)
    else:
        assert have == value, (what, have, value)


def test_help_imports_no_torch():
    code = f"""
        import contextlib, io, sys
        for name in {EVERY!r}:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                code = __import__(f"landscape.cli.{{name}}", fromlist=["main"]).main(["--help"])
            assert code == 0 and "--" in out.getvalue(), name
            assert "torch" not in sys.modules, f"landscape-{{name}} --help imported torch"
        print("ok")
    """
    proc = fresh(code)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_missing_file_or_an_unwritable_output_is_reported_before_torch_is_imported(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"")
    cases = [
        ("surf", ["--model", "missing.pt", "--arch", "mlp"], "argument --model: 'missing.pt' does not exist"),
        ("hessian", ["--model", "missing.pt", "--arch", "mlp"], "'missing.pt' does not exist"),
        ("compare", ["ckpt.pt", "missing.pt", "--arch", "mlp"], "'missing.pt' does not exist"),
        ("connect", ["ckpt.pt", "missing.pt", "--arch", "mlp"], "'missing.pt' does not exist"),
        ("align", ["ckpt.pt", "missing.pt", "--arch", "mlp"], "'missing.pt' does not exist"),
        ("train", ["--arch", "mlp", "--init-from", "missing.pt"], "'missing.pt' does not exist"),
        ("traj", ["--checkpoints", "m_*.pt", "--final", "ckpt.pt", "--arch", "mlp", "--out", "t.h5"],
         "no checkpoint file matches 'm_*.pt'"),
        ("prune", ["--model", "missing.pt", "--arch", "mlp", "--count"], "'missing.pt' does not exist"),
        ("compare", ["ckpt.pt", "ckpt.pt", "--arch", "mlp", "--out", "/proc/nope"], "cannot write '/proc/nope'"),
        ("surf", ["--model", "ckpt.pt", "--arch", "mlp", "--out", "/proc/s.h5"], "cannot write '/proc/s.h5'"),
        ("compare", ["ckpt.pt", "ckpt.pt", "--arch", "mlp", "--tol", "-1"], "argument --tol: invalid"),
        ("surf", ["--model", "ckpt.pt", "--arch", "mlp", "--norm", "unit"], "invalid choice: 'unit'"),
    ]
    code = f"""
        import contextlib, io, sys
        for name, args, fragment in {cases!r}:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                code = __import__(f"landscape.cli.{{name}}", fromlist=["main"]).main(args)
            lines = err.getvalue().strip().splitlines()
            assert code == 2 and len(lines) == 1 and fragment in lines[0], (name, err.getvalue())
            assert "torch" not in sys.modules, f"landscape-{{name}} imported torch before it refused {{args}}"
        print("ok")
    """
    proc = fresh(code, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]  # nothing written


def path_file(path) -> None:
    """A landscape-connect --eval path file: loss and accuracy of the curve and the line along t."""
    from landscape.io.surface_file import write_surface

    t = np.linspace(0, 1, 5)
    bump = 1 + np.sin(np.pi * t)
    values = {"train_loss": 0.1 + 0.1 * bump, "train_acc": 99 - bump, "line_train_loss": 0.1 + bump,
              "line_train_acc": 95 - 5 * bump}
    write_surface(path, make_surface([t], values, {"kind": "connect_path", "split": "train", "curve_kind": "bezier"}))


def test_landscape_plot_imports_no_torch_for_any_file_kind(tmp_path):
    from landscape.io.surface_file import write_surface
    from landscape.io.trajectory_file import Trajectory, write_trajectory

    x, y, z = np.linspace(-1, 1, 5), np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)
    bowl = 0.1 + x[None, :] ** 2 + y[:, None] ** 2
    write_surface(tmp_path / "s2.h5", make_surface([x, y], {"train_loss": bowl, "train_acc": 90 - bowl}))
    write_surface(tmp_path / "t2.h5", make_surface([x, y], {"train_loss": 2 * bowl, "train_acc": 80 - bowl}))
    write_surface(tmp_path / "s1.h5", make_surface([x], {"train_loss": 0.1 + x ** 2, "train_acc": 90 - x ** 2,
                                                          "test_loss": 0.2 + x ** 2, "test_acc": 85 - x ** 2}))
    volume = 0.1 + x[None, None, :] ** 2 + y[None, :, None] ** 2 + z[:, None, None] ** 2
    write_surface(tmp_path / "s3.h5", make_surface([x, y, z], {"train_loss": volume}))
    adaptive = make_surface([x, y], {"train_loss": bowl, "train_acc": 90 - bowl}, {"adaptive_tol": 0.01})
    adaptive.arrays["evaluated"] = (np.arange(bowl.size).reshape(bowl.shape) % 2).astype(np.uint8)
    write_surface(tmp_path / "adaptive.h5", adaptive)
    write_surface(tmp_path / "eig.h5", make_surface([x, y], {"max_eig": 1 + bowl, "min_eig": -0.1 * bowl}))
    path_file(tmp_path / "path.h5")
    write_trajectory(tmp_path / "traj.h5", Trajectory(
        directions=[{"w": torch.ones(3)}, {"w": torch.zeros(3)}], xcoord=np.linspace(-0.5, 0, 4),
        ycoord=np.linspace(0.5, 0, 4), explained_variance_ratio=np.array([0.7, 0.2]), residual=np.zeros(4),
        checkpoints=["a", "b", "c", "d"], epochs=np.arange(4)))
    kinds = [["s2.h5"], ["s1.h5"], ["s3.h5", "--vtk"], ["s2.h5", "--vtk"], ["s2.h5", "--html"], ["s3.h5", "--html"],
             ["adaptive.h5", "--mark-evaluated"], ["eig.h5"], ["path.h5"], ["s2.h5", "t2.h5", "--compare"],
             ["s1.h5", "s1.h5", "--compare", "--out", "c1"], ["s2.h5", "--trajectory", "traj.h5", "--out", "tr"]]
    code = f"""
        import sys
        from landscape.cli.plot import main
        for args in {kinds!r}:
            assert main([*args, "--formats", "png"]) == 0, args
            assert "torch" not in sys.modules, f"landscape-plot {{args}} imported torch"
        print("ok")
    """
    proc = fresh(code, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
    assert (tmp_path / "path_path.png").exists() and (tmp_path / "s3.vti").exists()


def test_a_path_files_barriers_read_without_torch_are_the_recorded_definitions(tmp_path):
    """The path file's reading moved out of landscape.connect (which imports torch): the same barriers."""
    from landscape import connect
    from landscape.io.path_file import path_result
    from landscape.io.surface_file import read_surface

    path_file(tmp_path / "path.h5")
    r = path_result(read_surface(tmp_path / "path.h5"))
    t = np.linspace(0, 1, 5)
    line = 0.1 + 1 + np.sin(np.pi * t)
    assert r.barrier["line"] == pytest.approx(line.max() - (line[0] + line[-1]) / 2)
    assert r.chord_barrier["line"] == pytest.approx(np.max(line - ((1 - t) * line[0] + t * line[-1])))
    assert connect.path_result is path_result and connect.barrier(line) == r.barrier["line"]  # one definition
