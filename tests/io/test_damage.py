"""A corpus of damaged files: never a traceback, never a rewritten file, never wrong values (issue:
trustworthy surface files).

Damage: truncation, zero bytes, text, random bit flips (20 seeds), each dataset deleted, wrong
shapes and dtypes, attributes deleted or edited. A flip may land in unused bytes: then the file
must read exactly as before.

Every damaged copy goes through the readers in-process (the surface reader and the point runner
that resumes an output, the directions reader, the trajectory reader with landscape-plot's check of
a path's directions): exactly the original values, or one line. The commands turn that line into
``PROG: error: ...`` and exit 2 alike for every file, so each runs once per file kind here; the
slow tests run every damaged copy through every command and view.
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
from landscape.engine.points import compute_points
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.io.trajectory_file import Trajectory, read_trajectory, write_trajectory
from landscape.jobs.plot import check_same_directions
from landscape.jobs.surf import SurfConfig, surf
from landscape.runtime.parallel import SerialComm
from landscape.space.grid import Grid

SEEDS = range(20)
QUICK_SEEDS = range(4)
KEY_ATTRIBUTES = ("content_sha256", "format_version", "inputs", "landscape_version", "split", "directions_sha256",
                  "dir_type", "proj_xcoord")


@pytest.fixture
def full(request) -> bool:
    """The whole corpus with --slow; otherwise 4 seeds and the attributes that matter most."""
    return bool(request.config.getoption("--slow"))


@pytest.fixture(autouse=True)
def _subfolder(tmp_path):
    (tmp_path / "t").mkdir()


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


def refused(read, label: str):
    """``read()``, or None when it refused the file with a one-line :class:`LandscapeError`."""
    try:
        return read()
    except LandscapeError as exc:
        assert "\n" not in str(exc) and str(exc), (label, str(exc))
        return None


def resume(path: Path, originals: dict):
    """What landscape-surf does with an existing output: the point runner opens it with the
    original run's inputs and computes what is pending (here: the original values)."""
    original = ls.read_surface(originals["surface"])
    values = {k: v.reshape(-1) for k, v in originals["values"].items()}
    metrics = [type("Metric", (), {"names": (name,)})() for name in values]
    return compute_points(original.coords, metrics, lambda p, needed: {n: values[n][p] for n in values},
                          inputs=original.inputs(), attrs={}, output=Output(str(path), progress=False),
                          comm=SerialComm())


def test_damaged_surfaces_at_the_readers(originals, tmp_path, full):
    """Every damaged copy: read exactly, or refused in one line; resumed as an output when intact,
    else refused in one line and left as it was."""
    unreadable = 0
    for label, path in corpus(originals["surface"], tmp_path, full):
        before = path.read_bytes()
        read = refused(lambda p=path: ls.read_surface(p), label)
        assert read is None or same_values(path, originals["values"]), f"{label}: wrong values read"
        resumed = refused(lambda p=path: resume(p, originals), label)
        if read is None:
            unreadable += 1
            assert resumed is None, f"{label}: a damaged output was resumed"
            assert path.read_bytes() == before, f"{label}: the damaged file was rewritten"
        else:
            assert resumed is not None and resumed.completed.all(), label
            assert same_values(path, originals["values"]), label
    assert unreadable >= 15  # most damage is noticed (a flip in unused bytes is not damage)


def test_damaged_directions_and_trajectories_at_the_readers(originals, tmp_path, full):
    good = ls.load_directions(originals["dirs"])[0]
    unreadable = 0
    for label, path in corpus(originals["dirs"], tmp_path, full):
        dirs = refused(lambda p=path: ls.load_directions(p)[0], label)
        unreadable += dirs is None
        assert dirs is None or (len(dirs) == len(good) and all(torch.equal(dirs[i][k], good[i][k])
                                                               for i in range(2) for k in good[i])), label
    assert unreadable >= 15
    good_t = read_trajectory(originals["traj"])
    surface = ls.read_surface(originals["path_surface"])
    unreadable = 0
    for label, path in corpus(originals["traj"], tmp_path / "t", full):
        t = refused(lambda p=path: read_trajectory(p), label)
        intact = t is not None and np.array_equal(t.xcoord, good_t.xcoord) and np.array_equal(t.ycoord, good_t.ycoord)
        assert t is None or intact, f"{label}: wrong path read"
        unreadable += t is None
        if intact:  # what landscape-plot --trajectory reads besides (by this reader): the path's directions
            check_same_directions(surface, str(originals["path_surface"]), str(path))
    assert unreadable >= 15


def test_each_command_refuses_a_damaged_file_of_each_kind_in_one_line(originals, tmp_path, capsys):
    """One command run per file kind, on a copy the readers refuse: their line, exit 2, nothing
    written or rewritten."""
    def damaged(original: Path, name: str, read) -> tuple[Path, str]:
        raw = original.read_bytes()
        (tmp_path / name).write_bytes(raw[: len(raw) // 2])
        with pytest.raises(LandscapeError) as refusal:
            read(tmp_path / name)
        return tmp_path / name, str(refusal.value)

    surface, surface_says = damaged(originals["surface"], "s.h5", ls.read_surface)
    dirs, dirs_say = damaged(originals["dirs"], "d.h5", ls.load_directions)
    traj, traj_says = damaged(originals["traj"], "t.h5", read_trajectory)
    before = surface.read_bytes()
    model = ["--model", originals["args"]["model"], "--arch", "digits_cnn", "--samples", "40", "--x=-1:1:3",
             "--y=-1:1:3", "--batch-size", "40", "--no-progress"]
    runs = [(surf_cli.main, [*model, "--out", str(surface)], "landscape-surf", surface_says),
            (surf_cli.main, [*model, "--directions", str(dirs), "--out", str(tmp_path / "new.h5")], "landscape-surf",
             dirs_say),
            (plot_cli.main, [str(surface), "--formats", "png"], "landscape-plot", surface_says),
            (plot_cli.main, [str(originals["path_surface"]), "--trajectory", str(traj), "--formats", "png",
                             "--out", str(tmp_path / "fig")], "landscape-plot", traj_says)]
    for main, argv, prog, says in runs:
        code = main(argv)
        err = capsys.readouterr().err
        assert one_line_error(code, err), (argv, err)
        assert err.startswith(f"{prog}: error: {says}"), (err, says)
    assert surface.read_bytes() == before
    assert not (tmp_path / "new.h5").exists() and not list(tmp_path.glob("*.png"))


@pytest.mark.slow
def test_damaged_surfaces_through_every_command_and_view(originals, tmp_path, capsys, full):
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


@pytest.mark.slow
def test_damaged_directions_and_trajectories_through_the_commands(originals, tmp_path, capsys, full):
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
