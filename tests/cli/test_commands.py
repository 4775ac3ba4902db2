"""What a user copies from the commands' own output and help: values that start with '-',
the retraining command landscape-prune prints, the grid landscape-traj suggests, the refusal of
a large grid."""

from __future__ import annotations

import shlex

import h5py
import numpy as np
import torch
from helpers import train_mlp

from landscape.cli import plot as plot_cli
from landscape.cli import prune as prune_cli
from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli
from landscape.cli import traj as traj_cli
from landscape.cli._common import Parser, join_negative_values
from landscape.models import build_model


def test_every_single_value_option_takes_a_value_starting_with_minus():
    p = Parser(prog="t")
    p.add_argument("--xlim")
    p.add_argument("--vmin", type=float)
    p.add_argument("--flag", action="store_true")
    ns = p.parse_args(["--xlim", "-0.5:1.5", "--vmin", "-1e-3", "--flag"])
    assert ns.xlim == "-0.5:1.5" and ns.vmin == -1e-3 and ns.flag
    assert join_negative_values(["--x", "-1:1:3", "--", "--x", "-2"], ("--x",)) == ["--x=-1:1:3", "--", "--x", "-2"]
    assert join_negative_values(["--x", "--y"], ("--x",)) == ["--x", "--y"]  # an option is not a value


def test_plot_xlim_and_vmin_with_a_space_like_x(tmp_path, capsys, monkeypatch):
    from helpers import make_surface, saved_figures

    from landscape.io.surface_file import write_surface

    x = np.linspace(-1, 2, 7)
    path = str(tmp_path / "s.h5")
    write_surface(path, make_surface([x], {"train_loss": (x - 0.5) ** 2 + 0.1, "train_acc": 50 + 0 * x}))
    figures = saved_figures(monkeypatch)
    for extra in (["--xlim", "-0.5:1.5"], ["--vmin", "-0.5"]):
        code = plot_cli.main([path, *extra, "--formats", "png", "--out", str(tmp_path / extra[0][2:])])
        assert code == 0, capsys.readouterr().err
        assert (tmp_path / f"{extra[0][2:]}_1d.png").exists()
    assert figures["xlim_1d.png"].axes[0].get_xlim() == (-0.5, 1.5)  # the values were taken, not the flags
    assert figures["vmin_1d.png"].axes[0].get_ylim()[0] == -0.5
    np.testing.assert_allclose(figures["vmin_1d.png"].axes[0].lines[0].get_ydata(), (x - 0.5) ** 2 + 0.1)


def test_the_printed_retraining_command_runs_as_printed(tmp_path, capsys):
    torch.manual_seed(0)
    src = tmp_path / "digits.pt"
    torch.save({"state_dict": build_model("digits_cnn", in_channels=1).state_dict(), "dataset": "digits",
                "num_classes": 10, "in_channels": 1}, src)
    out = tmp_path / "p.pt"
    assert prune_cli.main(["--model", str(src), "--arch", "digits_cnn", "--plan", "features.0=0.5",
                           "--out", str(out)]) == 0
    line = next(t for t in capsys.readouterr().out.splitlines() if "retrain it:" in t)
    words = shlex.split(line.split("retrain it:", 1)[1])
    assert words[0] == "landscape-train" and "..." not in words
    assert words[words.index("--dataset") + 1] == "digits"
    args = words[1:]
    args[args.index("--epochs") + 1] = "1"  # the same command, shorter
    assert train_cli.main(args + ["--subset", "64", "--no-progress"]) == 0, capsys.readouterr().err
    assert (tmp_path / "p_retrained" / "model_1.pt").exists()


def test_traj_suggests_the_grid_that_surf_then_computes(tmp_path, capsys):
    from landscape.jobs.surf import path_grid

    train_mlp(tmp_path, steps=6)
    out = tmp_path / "pca.h5"
    assert traj_cli.main(["--checkpoints", str(tmp_path / "model_*.pt"), "--final", str(tmp_path / "model_5.pt"),
                          "--arch", "mlp", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    grid = path_grid(str(out))
    assert f"--x={grid.x}" in text and f"--y={grid.y}" in text


def test_the_large_grid_refusal_names_allow_large(tmp_path, digits_ckpt, capsys):
    code = surf_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "16", "--x", "-1:1:1001",
                          "--y", "-1:1:1001", "--out", str(tmp_path / "s.h5"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--allow-large" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s.h5").exists() or h5py.is_hdf5(tmp_path / "s.h5")
