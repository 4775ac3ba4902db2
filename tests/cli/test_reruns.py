"""No clutter (issue 31, part 9): no hidden lock files left beside outputs, no empty run folder after
a refused --resume, and a rerun that computes nothing says "already complete", not "wrote"."""

from __future__ import annotations

import os

from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli


def test_a_rerun_that_computes_nothing_says_so_and_no_lock_file_stays(tmp_path, digits_ckpt, capsys):
    args = ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "32", "--x=-1:1:3", "--no-progress",
            "--out", str(tmp_path / "s.h5")]
    assert surf_cli.main(args) == 0
    assert capsys.readouterr().out.startswith("landscape-surf: wrote ")
    assert surf_cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"landscape-surf: already complete: {tmp_path / 's.h5'} (3/3 points") and "wrote" not in out
    assert out.rstrip().endswith("; nothing computed")
    assert surf_cli.main([*args[:-2], "--seed", "1", "--out", str(tmp_path / "s.h5")]) == 2  # refused: other inputs
    assert "differ" in capsys.readouterr().err
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".lock")], os.listdir(tmp_path)


def test_a_refused_resume_leaves_no_empty_run_folder(tmp_path, capsys):
    out = tmp_path / "runs" / "new"
    code = train_cli.main(["--arch", "mlp", "--dataset", "digits", "--epochs", "1", "--out", str(out), "--resume",
                           "--no-progress"])
    assert code == 2 and "holds no checkpoint to resume" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []  # neither runs/new nor runs, nor a lock file beside them
