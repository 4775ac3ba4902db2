"""Every mistake a user makes ends in one line and exit 2 (130 for Ctrl-C), and degenerate figure
requests are refused rather than drawn as garbage."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import make_surface

from landscape.cli import plot as plot_cli
from landscape.cli import surf as surf_cli
from landscape.cli import train as train_cli
from landscape.cli import traj as traj_cli
from landscape.io.surface_file import write_surface
from landscape.runtime.threads import default_threads, using_threads


def one_line(code, capsys, *fragments):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err
    return err


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Modules in the current folder, as a user's own code would be."""
    (tmp_path / "mynets.py").write_text(
        "import torch\n"
        "def broken():\n    raise ValueError('no such layer size')\n"
        "def net():\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))\n"
        "def bad_data(split='train'):\n    raise OSError('cannot reach the data server')\n"
        "def empty(split='train'):\n    return torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_module_in_the_current_folder_is_found(user_modules, capsys):
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).state_dict(), "net.pt")
    code = surf_cli.main(["--model", "net.pt", "--arch", "mynets:net", "--x=-1:1:3", "--samples", "30",
                          "--no-progress"])
    assert code == 0, capsys.readouterr().err
    from landscape.io.surface_file import read_surface

    s = read_surface(user_modules / "surface.h5")  # the default output, in the current folder
    assert s.attrs["arch"] == "mynets:net" and s.attrs["samples"] == 30
    assert s.completed.all() and np.isfinite(s.loss).all()


@pytest.mark.parametrize("args, fragment", [
    (["--arch", "mynets:broken"], "architecture 'mynets:broken' raised ValueError: no such layer size"),
    (["--arch", "mynets:net", "--dataset", "mynets:bad_data"], "raised OSError: cannot reach the data server"),
    (["--arch", "mynets:net", "--dataset", "mynets:empty"], "empty"),
])
def test_user_code_that_fails_is_one_line(user_modules, capsys, args, fragment):
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).state_dict(), "net.pt")
    one_line(surf_cli.main(["--model", "net.pt", *args, "--no-progress"]), capsys, fragment)
    train_args = args + (["--epochs", "1"] if "--dataset" in args else ["--dataset", "digits"])
    one_line(train_cli.main([*train_args, "--out", "run", "--no-progress"]), capsys, fragment)


def test_empty_output_name_leaves_nothing(tmp_path, digits_ckpt, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line(surf_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--out", "", "--no-progress"]),
             capsys, "empty")
    assert not [p for p in os.listdir(tmp_path) if ".h5" in p]  # no stray .dirs.h5 or lock


def test_huge_grid_is_refused_with_its_size_and_time(digits_ckpt, tmp_path, capsys):
    code = surf_cli.main(["--model", digits_ckpt, "--arch", "digits_cnn", "--x=-1:1:1001", "--y=-1:1:1001",
                          "--samples", "20", "--out", str(tmp_path / "big.h5"), "--no-progress"])
    one_line(code, capsys, "1,002,001 points", "hours", "allow it")
    assert not (tmp_path / "big.h5").exists()


def test_resume_with_nothing_to_resume(tmp_path, capsys):
    code = train_cli.main(["--arch", "mlp", "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "r"),
                           "--resume", "--no-progress"])
    one_line(code, capsys, "holds no checkpoint to resume")


def test_a_diverged_run_stops_keeps_its_checkpoints_and_fails(tmp_path, capsys):
    out = tmp_path / "r"
    code = train_cli.main(["--arch", "mlp", "--dataset", "digits", "--epochs", "5", "--lr", "1e6",
                           "--save-every", "1", "--out", str(out), "--no-progress"])
    err = one_line(code, capsys, "diverged in epoch")
    epoch = int(err.split("diverged in epoch ")[1].split(":")[0])
    kept = sorted(int(p[6:-3]) for p in os.listdir(out) if p.startswith("model_"))
    assert kept == list(range(epoch))  # model_0 .. the last good epoch, none after


def test_traj_write_error_names_the_output(tmp_path, capsys):
    import torch

    from landscape.models import build_model

    for k in range(3):
        torch.manual_seed(k)
        torch.save(build_model("mlp", num_classes=10, in_channels=1).state_dict(), tmp_path / f"m{k}.pt")
    target = "/proc/landscape_test_t.h5"  # a folder no one can write in, root included
    code = traj_cli.main(["--checkpoints", str(tmp_path / "m*.pt"), "--final", str(tmp_path / "m2.pt"),
                          "--arch", "mlp", "--in-channels", "1", "--out", target])
    err = one_line(code, capsys, target)
    assert ".tmp" not in err


def test_list_archs_is_in_the_help(capsys):
    assert train_cli.main(["--help"]) == 0
    assert "--list-archs" in capsys.readouterr().out


def nan_surface(tmp_path, values):
    x, y = np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)
    s = make_surface([x, y], {"train_loss": values, "train_acc": np.full((3, 4), 50.0)},
                     {"split": "train", "inputs": json.dumps({"metrics": {}})})
    path = tmp_path / "s.h5"
    write_surface(path, s)
    return str(path)


@pytest.mark.parametrize("values, args, fragment", [
    (np.full((3, 4), np.nan), [], "no finite value"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--vmax", "0.5"], "below every value"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--vmin", "20"], "above every value"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--vmin", "-5", "--log"], "positive lower limit"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--vmax", "-1", "--log"], "positive upper limit"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--vmax", "3", "--vmin", "5"], "must be above"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--level-step", "-1"], "step must be positive"),
    (np.arange(1.0, 13.0).reshape(3, 4), ["--quantity", "eig_ratio"], "has no 'eig_ratio'"),
])
def test_degenerate_figure_requests_are_refused(tmp_path, capsys, values, args, fragment):
    path = nan_surface(tmp_path, values)
    one_line(plot_cli.main([path, "--formats", "png", *args]), capsys, fragment)
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="measures /proc/stat")
def test_busy_cores_sees_a_competing_process_at_once():
    import subprocess
    import sys

    from landscape.runtime.threads import busy_cores

    spinner = subprocess.Popen([sys.executable, "-c", "print('spinning', flush=True)\nwhile True: pass"],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert spinner.stdout.readline() == "spinning\n"  # it runs: no wait for its start-up
        assert busy_cores(window=0.3) >= 0.7  # one core taken, seconds before the load average would say so
    finally:
        spinner.kill()
        spinner.wait()


def test_busy_cores_without_proc_stat_uses_the_load_average(monkeypatch):
    from landscape.runtime import threads as t

    monkeypatch.setattr(t, "_measured", [])
    monkeypatch.setattr(t, "_cpu_times", lambda cpus: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 0.0, 0.0))
    assert t.busy_cores() >= 1.25


def test_threads_honour_the_environment_and_are_given_back(monkeypatch):
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads(1) == 3
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr("landscape.runtime.threads.busy_cores", lambda: 1.7)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert default_threads(1) == 2  # two of four cores are busy
    assert default_threads(2) == 1
    before = torch.get_num_threads()
    with using_threads(before + 2) as n:
        assert torch.get_num_threads() == n == before + 2
    assert torch.get_num_threads() == before
