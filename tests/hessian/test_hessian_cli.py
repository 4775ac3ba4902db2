"""landscape-hessian: a valid file and PNG, and one-line refusals (exit code 2) of bad input."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from landscape.cli.hessian import main
from landscape.hessian import read_summary

FAST = ["--arch", "digits_cnn", "--samples", "40", "--top-k", "2", "--threads", "1"]


def test_writes_a_summary_and_a_density_plot(digits_ckpt, tmp_path, capsys):
    out = tmp_path / "h.h5"
    code = main(["--model", digits_ckpt, *FAST, "--trace", "--trace-max-samples", "12", "--density",
                 "--density-runs", "2", "--density-iters", "12", "--out", str(out), "--save-vectors"])
    assert code == 0, capsys.readouterr().err
    png = tmp_path / "h.png"
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with h5py.File(out, "r") as f:
        top = f["top_eigenvalues"][()]
        assert top.shape == (2,) and top[0] >= top[1]
        assert f["max_eig"][()] == top[0] and f["min_eig"][()] <= top[1]
        assert f["eig_ratio"][()] == pytest.approx(abs(f["min_eig"][()] / f["max_eig"][()]))
        assert f["top_eigenvectors"].shape[1] == 2
        assert f["sample_indices"].shape == (40,)
        assert f["density/nodes"].shape == (2, 12) and f["trace_samples"].shape[0] <= 12
        a = dict(f.attrs)
    for key in ("landscape_version", "torch_version", "model_sha256", "arch", "dataset", "samples", "params",
                "convention", "dtype", "tol", "trace_tol", "density_runs", "time_eigenpairs_s", "command"):
        assert key in a, key
    assert a["params"] == "all" and a["convention"] == "mean" and a["samples"] == 40
    attrs, summary = read_summary(str(out))
    np.testing.assert_array_equal(summary.top_eigenvalues, top)
    assert summary.trace is not None and summary.density is not None
    assert "wrote" in capsys.readouterr().out


def test_original_conventions_are_recorded(digits_ckpt, tmp_path):
    out = tmp_path / "o.h5"
    assert main(["--model", digits_ckpt, *FAST, "--params", "original", "--convention", "batch_sum",
                 "--batch-size", "16", "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["params"] == "original" and f.attrs["convention"] == "batch_sum"
        assert f.attrs["batch_sizes"] == "16,16,8"
        assert "density" not in f and "trace" not in f
    assert not os.path.exists(tmp_path / "o.png")


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.pt", "--arch", "digits_cnn"], "does not exist"),
    (["--arch", "digits_cnn"], "--model"),
    (["--model", "{ckpt}", "--arch", "no_such_net"], "unknown architecture"),
    (["--model", "{ckpt}", "--arch", "resnet20"], "does not fit"),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--top-k", "0"], "top-k"),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--tol", "-1"], "tol"),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--png", "x.png"], "--density"),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--dataset", "nope"], "unknown dataset"),
    (["--model", "{ckpt}", "--arch", "digits_cnn", "--out", "/no/such/folder/h.h5"], "does not exist"),
    (["--model", "{text}", "--arch", "digits_cnn"], "not a PyTorch checkpoint"),
])
def test_bad_input_is_one_line_and_exit_2(digits_ckpt, tmp_path, capsys, monkeypatch, args, message):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    args = [a.format(ckpt=digits_ckpt, text=text) for a in args]
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landscape-hessian: error:") and message in err, err
    assert not os.path.exists(tmp_path / "hessian.h5")


def test_an_existing_output_is_kept(digits_ckpt, tmp_path, capsys):
    out = tmp_path / "h.h5"
    out.write_bytes(b"precious")
    assert main(["--model", digits_ckpt, *FAST, "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert main(["--model", digits_ckpt, *FAST, "--out", str(out), "--overwrite"]) == 0
    assert h5py.is_hdf5(out)


def test_density_plot_function_takes_an_ax():
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from landscape.hessian import Density
    from landscape.plot.hessian import spectral_density

    grid = np.linspace(-1, 5, 200)
    values = np.exp(-((grid - 0.1) ** 2) / 0.02) + 1e-3 * np.exp(-((grid - 4) ** 2) / 0.02)
    dens = Density(grid, values, np.zeros((1, 1)), np.ones((1, 1)), 0.1, 1)
    ax = Figure().add_subplot()
    line = spectral_density(ax, dens, eigenvalues=[4.0, 3.5])
    assert isinstance(line, Line2D) and ax.get_yscale() == "log"
    assert len(ax.collections) == 1  # the eigenvalue bars
    assert ax.get_xlim()[1] >= 5
    ax = Figure().add_subplot()
    line = spectral_density(ax, (grid, values), log=False)
    assert ax.get_yscale() == "linear" and np.allclose(line.get_ydata(), values)


DENSITY = ["--density", "--density-runs", "2", "--density-iters", "12"]


def test_a_rerun_keeps_the_summary_and_draws_the_missing_figure(digits_ckpt, tmp_path, capsys, monkeypatch):
    """Killed between the summary and its figure, or out of space for the figure: the same command
    again draws the figure from the summary it keeps, computing nothing (issue 32, part 4)."""
    import landscape.jobs.hessian as job
    from landscape.errors import LandscapeError

    out, png = tmp_path / "h.h5", tmp_path / "h.png"
    argv = ["--model", digits_ckpt, *FAST, *DENSITY, "--out", str(out)]

    def full_disk(*args, **kwargs):
        raise LandscapeError(f"cannot write {str(png)!r}: No space left on device")

    with monkeypatch.context() as m:
        m.setattr(job, "replacing", full_disk)
        assert main(argv) == 2
    assert "No space left" in capsys.readouterr().err and out.exists() and not png.exists()
    before = out.read_bytes()

    def computed(*args, **kwargs):
        raise AssertionError("the summary was computed again")

    monkeypatch.setattr(job, "summarize", computed)
    assert main(argv) == 0, capsys.readouterr().err
    assert f"kept {out}" in capsys.readouterr().out
    assert out.read_bytes() == before and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 0  # nothing missing: nothing to do
    assert out.read_bytes() == before


@pytest.mark.parametrize("change, named", [
    (["--top-k", "3"], "options"), (["--loss", "mse"], "loss"), (["--samples", "30"], "data")])
def test_a_summary_of_other_inputs_is_refused_not_kept(digits_ckpt, tmp_path, capsys, change, named):
    out = tmp_path / "h.h5"
    assert main(["--model", digits_ckpt, *FAST, "--out", str(out)]) == 0
    before = out.read_bytes()
    capsys.readouterr()
    argv = ["--model", digits_ckpt, *FAST, *change, "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "computed from other inputs" in err and named in err and "--overwrite" in err
    assert out.read_bytes() == before
