"""Progress in logs: whole lines every few seconds when stderr is not a terminal, never tqdm's \\r."""

from __future__ import annotations

import io

from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli
from landscape.runtime.progress import LineProgress, progress_bar


def test_a_log_gets_whole_lines_at_most_every_interval():
    log = io.StringIO()
    bar = progress_bar(total=4, desc="surface", unit="pt", file=log)
    assert isinstance(bar, LineProgress)
    bar.seconds = 3600.0  # nothing before the end
    for _ in range(4):
        bar.update()
    assert log.getvalue() == ""
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("surface: 4/4 (100 %)") and "\r" not in log.getvalue()
    log = io.StringIO()
    bar = LineProgress(total=3, desc="d", file=log, seconds=0.0)
    for _ in range(3):
        bar.update()
    assert [t.split(" (")[0] for t in log.getvalue().splitlines()] == ["d: 1/3", "d: 2/3", "d: 3/3"]


def test_surface_and_training_write_lines_into_a_log(tmp_path, digits_ckpt, capsys, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_PROGRESS_SECONDS", "0")
    assert surf_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "32", "--x=-1:1:3",
                          "--y=-1:1:3", "--out", str(tmp_path / "s.h5")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "surface: 9/9 (100 %)" in err
    assert train_cli.main(["--arch", "digits_cnn", "--dataset", "digits", "--subset", "64", "--epochs", "1",
                           "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "epoch 1: " in err
