"""A corpus of damaged files through every reader: one line and exit 2, never a traceback, never a
rewritten file, never wrong values (issue: trustworthy surface files).

Damage: truncation, zero bytes, text, random bit flips (20 seeds), each dataset deleted, wrong
shapes and dtypes, attributes deleted or edited. A flip may land in unused bytes: then the file
must read exactly as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import landscape as ls
from landscape.cli import plot as plot_cli
from landscape.cli import surf as surf_cli
from landscape.data.datasets import DataSpec
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.trajectory_file import Trajectory, read_trajectory, write_trajectory
from landscape.jobs.surf import SurfConfig, surf
from landscape.space.grid import Grid

SEEDS = range(20)
QUICK_SEEDS = range(4)
KEY_ATTRIBUTES = ("content_sha256", "format_version", "inputs", "landscape_version", "split", "directions_sha256",
                  "dir_type", "proj_xcoord")


@pytest.fixture
def full(request) -> bool:
    """The whole corpus with --slow; otherwise 4 seeds and the attributes that matter most."""
    return bool(request.config.getoption("--slow"))


@pytest.fixture(scope="module")
def originals(tmp_path_factory, model_path):
    folder = tmp_path_factory.mktemp("originals")
    s = surf(SurfConfig(model=model_path, arch="digits_cnn", data=DataSpec(dataset="digits", samples=40),
                        grid=Grid("-1:1:3", "-1:1:3"), evaluation=EvalOptions(batch_size=40),
                        output=Output(folder / "s.h5", progress=False))).surface
    net = ls.load_model("digits_cnn", model_path, in_channels=1)
    origin = ls.snapshot(net)
    dirs = ls.random_directions(origin, 2, seed=1)
    traj = Trajectory(directions=dirs, xcoord=np.array([1.0, 0.5, 0.0]), ycoord=np.array([0.3, -0.2, 0.0]),
                      explained_variance_ratio=np.array([0.7, 0.2]), residual=np.zeros(3), checkpoints=["a", "b", "c"],
                      epochs=np.array([0, 1, 2]), explained_variance=np.array([2.0, 0.5]),
                      attrs={"method": "pca", "dir_type": "weights", "landscape_version": "test"})
    write_trajectory(folder / "t.h5", traj)
    surf(SurfConfig(model=model_path, arch="digits_cnn", data=DataSpec(dataset="digits", samples=40),
                    grid=Grid("-1:1:3", "-1:1:3"), directions_file=str(folder / "t.h5"),
                    evaluation=EvalOptions(batch_size=40),
                    output=Output(folder / "ts.h5", progress=False)))  # the path's own plane
    return {"surface": folder / "s.h5", "dirs": folder / "s.dirs.h5", "traj": folder / "t.h5",
            "path_surface": folder / "ts.h5",
            "args": {"model": model_path},
            "values": {k: v.copy() for k, v in s.values.items()}}


def structural(path: Path, full: bool):
    """(name, mutate(h5py.File)) for deleted datasets, wrong shapes and dtypes, attribute edits."""
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
        attrs = [a for a in f.attrs if full or a in KEY_ATTRIBUTES]
    out = [(f"delete {n}", lambda f, n=n: f.__delitem__(n)) for n in names]
    out += [(f"drop attribute {a}", lambda f, a=a: f.attrs.__delitem__(a)) for a in attrs]
    out += [(f"edit attribute {a}", lambda f, a=a: f.attrs.__setitem__(a, "edited")) for a in attrs[:6]]
    for n in names[:6]:
        def reshape(f, n=n):
            del f[n]
            f[n] = np.zeros((2, 2, 2))

        def retype(f, n=n):
            del f[n]
            f[n] = np.array(["text"], dtype=h5py.string_dtype())

        out += [(f"reshape {n}", reshape), (f"retype {n}", retype)]
    return out


def corpus(original: Path, folder: Path, full: bool = True):
    """Damaged copies of ``original`` in ``folder``: yields (label, path)."""
    raw = original.read_bytes()
    simple = {"truncated half": raw[: len(raw) // 2], "truncated 100": raw[:100], "zero bytes": b"",
              "text": b"not an HDF5 file\n" * 20}
    for k, (label, data) in enumerate(simple.items()):
        p = folder / f"simple{k}{original.suffix}"
        p.write_bytes(data)
        yield label, p
    for seed in SEEDS if full else QUICK_SEEDS:
        rng = np.random.default_rng(seed)
        data = bytearray(raw)
        for _ in range(3):
            data[int(rng.integers(len(data)))] ^= 1 << int(rng.integers(8))
        p = folder / f"flip{seed}{original.suffix}"
        p.write_bytes(bytes(data))
        yield f"bit flips seed {seed}", p
    for k, (label, mutate) in enumerate(structural(original, full)):
        p = folder / f"struct{k}{original.suffix}"
        shutil.copy(original, p)
        with h5py.File(p, "a") as f:
            mutate(f)
        yield label, p


def one_line_error(code: int, err: str) -> bool:
    lines = err.strip().splitlines()
    return code == 2 and len(lines) == 1 and "Traceback" not in err and ": error: " in lines[0]


def same_values(path: Path, values: dict) -> bool:
    got = ls.read_surface(path).values
    return set(got) == set(values) and all(np.array_equal(got[k], v, equal_nan=True) for k, v in values.items())


def test_damaged_surfaces_through_every_reader(originals, tmp_path, capsys, full):
    refused = 0
    for label, path in corpus(originals["surface"], tmp_path, full):
        before = path.read_bytes()
        try:  # the Python reader: a LandscapeError of one line, or exactly the right values
            ok = same_values(path, originals["values"])
        except LandscapeError as exc:
            assert "\n" not in str(exc), label
            ok = False
        refused += not ok
        args = originals["args"]
        code = surf_cli.main(["--model", args["model"], "--arch", "digits_cnn", "--samples", "40", "--x=-1:1:3",
                              "--y=-1:1:3", "--batch-size", "40", "--out", str(path), "--no-progress"])
        out, err = capsys.readouterr()
        if ok:
            assert code == 0, (label, err)
            continue
        assert one_line_error(code, err), (label, err)
        assert path.read_bytes() == before, f"{label}: the damaged file was rewritten"
        for view in (["--kinds", "contour", "--formats", "png"], ["--html"], ["--vtk"],
                     ["--trajectory", str(originals["traj"])]):
            code = plot_cli.main([str(path), *view, "--out", str(tmp_path / "fig")])
            assert one_line_error(code, capsys.readouterr().err), (label, view)
        code = plot_cli.main([str(originals["surface"]), str(path), "--compare", "--out", str(tmp_path / "cmp")])
        assert one_line_error(code, capsys.readouterr().err), (label, "compare")
    assert refused >= 15  # most damage is noticed (a flip in unused bytes is not damage)


def test_damaged_directions_and_trajectories(originals, tmp_path, capsys, full):
    args = originals["args"]
    base = ["--model", args["model"], "--arch", "digits_cnn", "--samples", "40", "--x=-1:1:3", "--y=-1:1:3",
            "--no-progress", "--out", str(tmp_path / "new.h5")]
    good = ls.load_directions(originals["dirs"])[0]
    for label, path in corpus(originals["dirs"], tmp_path, full):
        try:
            dirs = ls.load_directions(path)[0]
            ok = len(dirs) == len(good) and all(torch.equal(dirs[i][k], good[i][k]) for i in range(2) for k in good[i])
        except LandscapeError as exc:
            assert "\n" not in str(exc), label
            ok = False
        code = surf_cli.main(base + ["--directions", str(path), "--overwrite"])
        err = capsys.readouterr().err
        assert code == 0 if ok else one_line_error(code, err), (label, err)
    good_t = read_trajectory(originals["traj"])
    for label, path in corpus(originals["traj"], tmp_path / "t", full):
        try:
            t = read_trajectory(path)
            ok = np.array_equal(t.xcoord, good_t.xcoord) and np.array_equal(t.ycoord, good_t.ycoord)
        except LandscapeError as exc:
            assert "\n" not in str(exc), label
            ok = False
        code = plot_cli.main([str(originals["path_surface"]), "--trajectory", str(path), "--formats", "png",
                              "--out", str(tmp_path / "tfig")])
        err = capsys.readouterr().err
        assert code == 0 if ok else one_line_error(code, err), (label, err)


@pytest.fixture(autouse=True)
def _subfolder(tmp_path):
    (tmp_path / "t").mkdir()


def test_damaged_checkpoints_through_landscape_traj(tmp_path, capsys):
    from landscape.cli import traj as traj_cli
    from landscape.models import build_model

    for k in range(3):
        torch.manual_seed(k)
        torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), tmp_path / f"m{k}.pt")
    raw = (tmp_path / "m1.pt").read_bytes()
    for label, data in (("truncated", raw[: len(raw) // 2]), ("zero bytes", b""), ("text", b"epoch 3\n" * 9)):
        (tmp_path / "m1.pt").write_bytes(data)
        code = traj_cli.main(["--checkpoints", str(tmp_path / "m*.pt"), "--final", str(tmp_path / "m2.pt"),
                              "--arch", "mlp", "--in-channels", "1", "--out", str(tmp_path / "t.h5")])
        assert one_line_error(code, capsys.readouterr().err), label
        assert not (tmp_path / "t.h5").exists()
