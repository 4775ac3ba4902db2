"""Progress in logs: whole lines every few seconds when stderr is not a terminal, never tqdm's \\r."""

from __future__ import annotations

import contextlib
import io

import pytest
import torch

from landscape.cli import compare as compare_cli
from landscape.cli import hessian as hessian_cli
from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli
from landscape.models import build_model
from landscape.runtime import progress
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
    assert "\r" not in err and "surface: 100 % (9/9 points)" in err
    assert train_cli.main(["--arch", "digits_cnn", "--dataset", "digits", "--subset", "64", "--epochs", "1",
                           "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "epoch 1: " in err


class Clock:
    """A clock the test moves: no test waits on the real one."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c.monotonic)
    return c


def test_the_eta_weighs_each_item_by_its_cost_not_by_their_number(clock):
    """A cheap item first and an expensive one after: the ETA after the first is the expensive one's
    time (the issue's "about 47 s left" and then 8 minutes), the share done its cost's."""
    log = io.StringIO()
    work = progress.Work("comparison table", [1.0, 20.0], unit="jobs", describe=lambda i: ("train", "trace")[i],
                         file=log)
    work.bar.seconds = 0.0  # a line at every update
    clock.now += 2.0  # the cheap job took 2 s
    work.finish(0)
    line = log.getvalue().splitlines()[-1]
    assert line.startswith("comparison table: 5 % (1/2 jobs; last: train)"), line
    assert "about 40 s left" in line  # 20 cost units at 1 unit per 2 s; counted by items it would say 2 s
    clock.now += 40.0
    work.finish(1)
    work.close()
    assert log.getvalue().splitlines()[-1].startswith("comparison table: 100 % (2/2 jobs; last: trace)")


def test_long_work_states_its_estimate_once_its_first_item_is_done(clock, monkeypatch):
    monkeypatch.delenv("LANDSCAPE_ESTIMATE_SECONDS", raising=False)
    log = io.StringIO()
    work = progress.Work("surface", [1.0] * 100, done=range(10), file=log)
    work.bar.seconds = 3600.0  # no progress line: only the estimate
    clock.now += 6.0
    work.finish(10)  # 89 points of 6 s each are left
    clock.now += 6.0
    work.finish(11)
    assert log.getvalue().splitlines() == ["surface: 89 points to go, about 8 min 54 s (estimated from the first)"]
    short = io.StringIO()
    quick = progress.Work("surface", [1.0] * 5, file=short)
    quick.bar.seconds = 3600.0
    clock.now += 1.0
    quick.finish(0)  # 4 s left: nothing to announce
    assert short.getvalue() == ""
    bound = io.StringIO()
    lanczos = progress.Work("Hessian eigenvalues", [1.0] * 500, unit="products", file=bound, bound=True)
    lanczos.bar.seconds = 3600.0
    clock.now += 1.0
    lanczos.finish(0)
    assert bound.getvalue() == "Hessian eigenvalues: 499 products to go, at most 8 min 19 s\n"


def test_hessian_shows_its_products_and_says_what_the_density_costs(tmp_path, capsys, monkeypatch):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        hessian_cli.main(["--help"])
    assert "(default 10 x 80 = 800)" in " ".join(out.getvalue().split())  # --density's runs x products
    torch.manual_seed(0)
    torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), tmp_path / "m.pt")
    monkeypatch.setenv("LANDSCAPE_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("LANDSCAPE_ESTIMATE_SECONDS", "0")  # every run is a long one
    assert hessian_cli.main(["--model", str(tmp_path / "m.pt"), "--arch", "mlp", "--samples", "64", "--top-k", "1",
                             "--max-iter", "6", "--trace", "--trace-max-samples", "4", "--density", "--density-runs",
                             "2", "--density-iters", "3", "--out", str(tmp_path / "h.h5")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("Hessian: up to 16 Hessian-vector products (eigenvalues up to 6, trace up to 4, "
                             "density 6) at "), err[0]
    for stage, total in (("eigenvalues", 6), ("trace", 4), ("density", 6)):
        assert any(line.startswith(f"Hessian {stage}: ") and f"/{total} products" in line for line in err), stage
    assert "Hessian density: 100 % (6/6 products)" in "\n".join(err)


def test_compare_names_its_stages_and_states_its_estimate_first(tmp_path, capsys, monkeypatch):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(str(tmp_path / f"mlp{seed}.pt"))
        torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), paths[-1])
    monkeypatch.setenv("LANDSCAPE_PROGRESS_SECONDS", "0")
    monkeypatch.setenv("LANDSCAPE_ESTIMATE_SECONDS", "0")
    assert compare_cli.main([*paths, "--arch", "mlp", "--samples", "48", "--measures", "avg_filter,curvature",
                             "--mc-samples", "2", "--curvature-points", "3", "--line=-1:1:3", "--plane=-1:1:2",
                             "--out", str(tmp_path / "cmp")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("comparison: about ") and "2 minima x 4 jobs and 7 surface points each" in err[0], err[0]
    table = [line for line in err if line.startswith("comparison table: ")]
    assert table[-1].startswith("comparison table: 100 % (8/8 jobs; last: minimum 2 (mlp1.pt), curvature)")
    assert any("(1/8 jobs; last: minimum 1 (mlp0.pt), train)" in line for line in table)
    for k, name in ((1, "mlp0.pt"), (2, "mlp1.pt")):
        for stage in ("1D curve", "2D contours"):
            assert any(line.startswith(f"minimum {k} ({name}), {stage}: 100 %") for line in err), (k, stage)
    assert not any(line.startswith("surface:") for line in err)  # every stage says what it is


def test_on_a_terminal_the_stage_is_a_bar_with_its_items():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    work = progress.Work("comparison table", [1.0, 20.0], unit="jobs", describe=lambda i: ("train", "trace")[i],
                         file=screen)
    work.finish(0)
    work.finish(1)
    work.close()
    last = screen.getvalue().split("\r")[-1]
    assert last.startswith("comparison table: 100%|") and last.rstrip().endswith(", 2/2 jobs; last: trace]"), last
