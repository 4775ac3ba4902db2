"""One writer per output: every command refuses an output another run is writing, in one line,
writing nothing; an existing figure is replaced only with --overwrite."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("command", ["hessian", "traj", "prune", "markov", "train"])
def test_a_second_writer_is_refused_by_every_command(tmp_path, digits_ckpt, capsys, command):
    from landscape.io.files import OutputLock

    out = tmp_path / {"hessian": "h.h5", "traj": "t.h5", "prune": "p.pt", "markov": "m.png", "train": "run"}[command]
    argv = {
        "hessian": ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "40", "--top-k", "1"],
        "traj": ["--checkpoints", digits_ckpt, "--final", digits_ckpt, "--arch", "digits_cnn", "--in-channels", "1"],
        "prune": ["--model", digits_ckpt, "--arch", "digits_cnn", "--plan", "features.0=0.5"],
        "markov": ["--steps", "20", "--chains", "20", "--rates", "1"],
        "train": ["--arch", "mlp", "--dataset", "digits", "--epochs", "1", "--subset", "100", "--no-progress"],
    }[command] + ["--out", str(out)]
    main = importlib.import_module(f"landscape.cli.{command}").main
    with OutputLock(out):  # another run holds the output: deterministic, no race to lose
        assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "being written by another run (pid" in err[0], err
    assert not out.exists() or not any(out.iterdir())  # nothing written (a run folder may be made)


def test_markov_replaces_its_figure_only_with_overwrite(tmp_path, capsys):
    from landscape.cli.markov import main

    out = tmp_path / "m.png"
    out.write_bytes(b"mine")
    assert main(["--steps", "20", "--chains", "20", "--rates", "1", "--out", str(out)]) == 2
    assert out.read_bytes() == b"mine" and "exists" in capsys.readouterr().err
    assert main(["--steps", "20", "--chains", "20", "--rates", "1", "--out", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
