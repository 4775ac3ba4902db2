"""Absurd values end in one line and exit code 2, never a traceback, a MemoryError or minutes of
work: huge seeds, grid bounds and point counts, resolutions, NaN limits, level counts, non-UTF-8
output names, NaN weights, and absurd checkpoint metadata."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import save_digits_cnn

from landscape.cli import hessian as hessian_cli
from landscape.cli import plot as plot_cli
from landscape.cli import prune as prune_cli
from landscape.cli import surf as surf_cli
from landscape.cli import traj as traj_cli
from landscape.cli._common import run_cli

BAD_NAME = os.fsdecode(b"bad\xff.h5")  # bytes that are not UTF-8, as the shell passes them


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    model = save_digits_cnn(d / "m.pt")
    surface = str(d / "s.h5")
    assert surf_cli.main(["--model", model, "--arch", "digits_cnn", "--samples", "16", "--x=-1:1:3", "--y=-1:1:3",
                          "--out", surface, "--no-progress"]) == 0
    sd = torch.load(model, weights_only=True)
    nan = {k: v.clone() for k, v in sd.items()}
    nan["features.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan, d / "nan.pt")
    for name, meta in (("nc_text", {"num_classes": "ten"}), ("nc_huge", {"num_classes": 10**12}),
                       ("w_text", {"widths": {"features.0": "x"}}), ("w_huge", {"widths": {"features.0": 10**12}})):
        torch.save({"state_dict": sd, "in_channels": 1, **meta}, d / f"{name}.pt")
    run = d / "run"
    run.mkdir()
    for e in range(4):
        s = {k: v + 0.01 * e * (1 + e % 2 * k.count("0")) if v.is_floating_point() else v for k, v in sd.items()}
        if e == 2:
            s["features.0.weight"][0, 0, 0, 0] = float("inf")
        torch.save({"state_dict": s, "in_channels": 1, "num_classes": 10}, run / f"model_{e}.pt")
    return {"dir": d, "model": model, "surface": surface}


def one_line(capsys, code: int, prog: str, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{prog}: error:"), err
    for f in fragments:
        assert f in err, err
    return err


SURF = ["--arch", "digits_cnn", "--samples", "16", "--no-progress"]


@pytest.mark.parametrize("args, fragments", [
    (["--seed", "99999999999999999999", "--x=-1:1:2"], ["--seed"]),
    (["--x=-1e308:1e308:3"], ["beyond"]),
    (["--x=-1:1:1000000000000"], ["more than"]),
    (["--x=-1:1:1000000000000", "--allow-large"], ["more than"]),
    (["--x=-1:1:100000", "--y=-1:1:100000", "--allow-large"], ["fit in memory"]),
    (["--x=-1:1:2", "--out", BAD_NAME], ["UTF-8"]),
])
def test_surf(files, tmp_path, capsys, args, fragments):
    args = args if "--out" in args else [*args, "--out", str(tmp_path / "o.h5")]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = surf_cli.main(["--model", files["model"], *SURF, *args])
    finally:
        os.chdir(cwd)
    one_line(capsys, code, "landscape-surf", *fragments)
    assert not any(n.endswith(".h5") for n in os.listdir(tmp_path))


@pytest.mark.parametrize("args, fragments", [
    (["--dpi", "100000"], ["--dpi"]),
    (["--vmax", "nan"], ["--vmax"]),
    (["--vmin", "-inf"], ["--vmin"]),
    (["--levels", "100000000"], ["levels"]),
])
def test_plot(files, capsys, args, fragments):
    code = plot_cli.main([files["surface"], *args, "--formats", "png", "--kinds", "contour",
                          "--out", str(files["dir"] / "fig")])
    one_line(capsys, code, "landscape-plot", *fragments)


def test_non_utf8_outputs_are_refused_before_any_work(files, tmp_path, capsys):
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = prune_cli.main(["--model", files["model"], "--arch", "digits_cnn", "--sensitivity", "--samples", "16",
                               "--ratios", "0.5", "--out", BAD_NAME])
        one_line(capsys, code, "landscape-prune", "UTF-8")
        code = hessian_cli.main(["--model", files["model"], "--arch", "digits_cnn", "--samples", "16",
                                 "--out", BAD_NAME])
        one_line(capsys, code, "landscape-hessian", "UTF-8")
    finally:
        os.chdir(cwd)
    assert [n for n in os.listdir(tmp_path) if not n.endswith(".lock")] == []


def test_nan_weights(files, tmp_path, capsys):
    d = files["dir"]
    code = prune_cli.main(["--model", str(d / "nan.pt"), "--arch", "digits_cnn", "--sensitivity", "--samples", "16",
                           "--ratios", "0.5", "--out", str(tmp_path / "p.h5")])
    one_line(capsys, code, "landscape-prune", "NaN or infinite")
    code = traj_cli.main(["--checkpoints", str(d / "run" / "model_*.pt"), "--final", str(d / "run" / "model_3.pt"),
                          "--arch", "digits_cnn", "--out", str(tmp_path / "t.h5")])
    one_line(capsys, code, "landscape-traj", "NaN or infinite", "model_2.pt")
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")]


@pytest.mark.parametrize("name", ["nc_text", "nc_huge", "w_text", "w_huge"])
def test_absurd_checkpoint_metadata(files, tmp_path, capsys, name):
    ckpt = str(files["dir"] / f"{name}.pt")
    for prog, main, args in (
        ("landscape-surf", surf_cli.main, ["--model", ckpt, *SURF, "--x=-1:1:2", "--out", str(tmp_path / "s.h5")]),
        ("landscape-hessian", hessian_cli.main, ["--model", ckpt, "--arch", "digits_cnn", "--samples", "16",
                                                 "--out", str(tmp_path / "h.h5")]),
        ("landscape-prune", prune_cli.main, ["--model", ckpt, "--arch", "digits_cnn", "--sensitivity", "--samples",
                                             "16", "--ratios", "0.5", "--out", str(tmp_path / "p.h5")]),
        ("landscape-traj", traj_cli.main, ["--checkpoints", str(files["dir"] / "run" / "model_[01].pt"), ckpt,
                                           "--final", ckpt, "--arch", "digits_cnn", "--out", str(tmp_path / "t.h5")]),
    ):
        code = main(args)
        err = capsys.readouterr().err
        assert "Traceback" not in err and code in (0, 2), err
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and err.startswith(f"{prog}: error:")


def test_out_of_memory_is_one_line(capsys):
    def body() -> int:
        raise MemoryError

    assert run_cli("landscape-x", body) == 2
    assert capsys.readouterr().err.startswith("landscape-x: error: out of memory")


def test_a_warning_is_one_line_naming_the_command(capsys):
    import warnings

    def body() -> int:
        warnings.warn("the run continues,\n  but not bit for bit", UserWarning, stacklevel=1)
        return 0

    before = warnings.showwarning
    assert run_cli("landscape-x", body) == 0
    assert capsys.readouterr().err == "landscape-x: warning: the run continues, but not bit for bit\n"
    assert warnings.showwarning is before  # given back


def test_a_resumed_eig_map_may_differ_by_the_eigen_tolerance_documented():
    from landscape.cli.surf import build_parser

    text = build_parser().format_help()
    assert "warm start" in " ".join(text.split()) and "resumed run" in " ".join(text.split())


# -- issue 32, part 6: allocations estimated first, any allocation failure one line, user code's
# sys.exit, non-UTF-8 input names, absurd thread and step counts ----------------------------------

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_commands(*commands: tuple[str, list[str]], cwd=None) -> list[tuple[int, str]]:
    """Commands run one after another in one child process (values that hang or crash today's code
    must not take the test run with them); each one's exit code and stderr."""
    import json
    import subprocess
    import sys

    code = ("import contextlib, importlib, io, json, sys\nout = []\n"
            f"for module, args in {[list(c) for c in commands]!r}:\n"
            "    err = io.StringIO()\n"
            "    with contextlib.redirect_stderr(err):\n"
            "        rc = importlib.import_module('landscape.cli.' + module).main(args)\n"
            "    out.append([rc, err.getvalue()])\n"
            "print(json.dumps(out))\n")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return [tuple(x) for x in json.loads(r.stdout.strip().splitlines()[-1])]


def test_a_failed_torch_allocation_is_the_out_of_memory_line(capsys):
    def body() -> int:
        torch.empty(10**15)  # 4 PB: torch raises RuntimeError ("DefaultCPUAllocator: can't allocate memory")
        return 0

    assert run_cli("landscape-x", body) == 2
    err = capsys.readouterr().err
    assert err.startswith("landscape-x: error: out of memory") and len(err.splitlines()) == 1, err

    def other() -> int:
        raise RuntimeError("an error of another kind")

    with pytest.raises(RuntimeError, match="another kind"):  # not every RuntimeError is the memory's
        run_cli("landscape-x", other)


@pytest.mark.parametrize("size, shape", [("100000000000", "1,8,8"), ("2048", "1,100000,100000")])
def test_synthetic_data_too_large_is_refused_before_it_is_allocated(files, tmp_path, capsys, size, shape):
    code = surf_cli.main(["--model", files["model"], *SURF, "--x=-1:1:2", "--dataset", "synthetic",
                          "--synthetic-size", size, "--synthetic-shape", shape, "--out", str(tmp_path / "s.h5")])
    one_line(capsys, code, "landscape-surf", "out of memory", "--synthetic-size", "available")


def test_thread_counts_and_simulations_beyond_the_machine_are_refused_first():
    from landscape.errors import LandscapeError
    from landscape.quant.markov import Toy, check_work
    from landscape.runtime.threads import PER_CORE, choose_threads, usable_cores, using_threads

    most = PER_CORE * usable_cores()
    assert choose_threads(most) == most
    for call in (lambda: choose_threads(most + 1), lambda: using_threads(100000).__enter__()):
        with pytest.raises(LandscapeError, match=f"`threads` [0-9]+ is more than {most} "):
            call()
    check_work(Toy(), steps=20_000, chains=2000, rates=4)  # the default
    with pytest.raises(LandscapeError, match=r"`steps` x `chains` = 2e\+15 chain steps per rate, 4 rate\(s\): about"):
        check_work(Toy(), steps=10**12, chains=2000, rates=4)
    with pytest.raises(LandscapeError, match=r"out of memory: 100000000000 chains \(`chains`\) would take 6.4 TB"):
        check_work(Toy(), steps=10, chains=10**11)


@pytest.mark.slow
def test_markov_chains_steps_and_threads_beyond_the_machine_are_refused(files, tmp_path):
    png = str(tmp_path / "m.png")
    results = run_commands(
        ("markov", ["--chains", "100000000000", "--out", png]),
        ("markov", ["--steps", "1000000000000", "--out", png]),  # today: it never ends
        ("markov", ["--steps", "10", "--chains", "10", "--threads", "100000", "--out", png]),  # today: libgomp's OOM
        ("surf", ["--model", files["model"], *SURF, "--x=-1:1:2", "--threads", "100000",
                  "--out", str(tmp_path / "s.h5")]),
    )
    expected = [("out of memory", "--chains"), ("--steps", "chain steps", "at most"),
                ("--threads 100000 is more than",), ("--threads 100000 is more than",)]
    for (rc, err), words in zip(results, expected, strict=True):
        assert rc == 2 and len(err.strip().splitlines()) == 1, err[-2000:]
        assert all(w in err for w in words), err
    assert os.listdir(tmp_path) == []  # nothing written, not even a lock file (removed when a run ends)


def test_an_hf_config_too_large_is_refused_before_it_is_built(tmp_path):
    transformers = pytest.importorskip("transformers")
    transformers.GPT2Config(vocab_size=10**11, n_positions=16, n_embd=32, n_layer=1, n_head=2).save_pretrained(tmp_path)
    from landscape.errors import LandscapeError
    from landscape.models.hf import build_hf

    with pytest.raises(LandscapeError, match=r"out of memory: hf:.*model \(3.2e\+12 parameters\) would take 12.8 TB"):
        build_hf(str(tmp_path))


@pytest.mark.parametrize("flag", ["--arch", "--dataset"])
def test_user_code_that_calls_sys_exit_is_one_line(files, tmp_path, capsys, monkeypatch, flag):
    module = f"exits_{flag.strip('-')}"
    (tmp_path / f"{module}.py").write_text("import sys\n\ndef make(*args, **kwargs):\n    sys.exit(0)\n")
    monkeypatch.chdir(tmp_path)
    args = {"--arch": ["--arch", f"{module}:make"],
            "--dataset": ["--arch", "digits_cnn", "--dataset", f"{module}:make"]}
    code = surf_cli.main(["--model", files["model"], *args[flag], "--samples", "16", "--no-progress", "--x=-1:1:2",
                          "--out", str(tmp_path / "s.h5")])
    one_line(capsys, code, "landscape-surf", f"{module}:make", "called sys.exit(0)")


def test_non_utf8_input_names_are_read_and_recorded(files, tmp_path, capsys):
    import h5py

    model = tmp_path / os.fsdecode(b"m\xe9.pt")
    model.write_bytes(open(files["model"], "rb").read())
    out = tmp_path / "s.h5"
    assert surf_cli.main(["--model", str(model), *SURF, "--x=-1:1:2", "--out", str(out)]) == 0, capsys.readouterr()
    with h5py.File(out, "r") as f:
        assert f.attrs["model"].endswith("m\\xe9.pt")  # the bytes that are not UTF-8, written as Python writes them
    dirs = tmp_path / os.fsdecode(b"d\xe9.h5")
    os.rename(tmp_path / "s.dirs.h5", dirs)
    assert surf_cli.main(["--model", files["model"], *SURF, "--x=-1:1:2", "--directions", str(dirs),
                          "--out", str(tmp_path / "s2.h5")]) == 0, capsys.readouterr()
    assert hessian_cli.main(["--model", str(model), "--arch", "digits_cnn", "--samples", "16", "--top-k", "1",
                             "--threads", "1", "--out", str(tmp_path / "h.h5")]) == 0, capsys.readouterr()
    assert "Traceback" not in capsys.readouterr().err


def test_plot_and_train_refuse_non_utf8_outputs(files, tmp_path, capsys):
    from landscape.cli import train as train_cli

    one_line(capsys, plot_cli.main([files["surface"], "--formats", "png", "--out", str(tmp_path / BAD_NAME)]),
             "landscape-plot", "UTF-8")
    one_line(capsys, train_cli.main(["--arch", "mlp", "--dataset", "digits", "--epochs", "1", "--no-progress",
                                     "--out", str(tmp_path / BAD_NAME)]), "landscape-train", "UTF-8")
    assert os.listdir(tmp_path) == []


def test_hostile_checkpoints_and_data_are_refused_or_said_in_one_line(files, tmp_path, capsys, monkeypatch):
    """NaN, inf or integer weights and a dataset of NaN are refused (a surface of them would be NaN
    everywhere, or of other numbers than the trained ones); half-precision weights load exactly into
    the float32 network, with one warning saying so."""
    sd = torch.load(files["model"], weights_only=True)
    torch.save({k: v.clone().fill_(float("inf")) if k == "fc.weight" else v for k, v in sd.items()},
               tmp_path / "inf.pt")
    torch.save({k: (v * 10).round().to(torch.int8) if v.is_floating_point() else v for k, v in sd.items()},
               tmp_path / "int.pt")
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in sd.items()}, tmp_path / "half.pt")
    (tmp_path / "nandata.py").write_text(
        "import torch\n\ndef make():\n    x = torch.zeros(32, 1, 8, 8)\n    x[5, 0, 1, 1] = float('nan')\n"
        "    return x, torch.arange(32) % 10\n")
    monkeypatch.chdir(tmp_path)
    out = ["--x=-1:1:3", "--out", str(tmp_path / "o.h5")]
    for model, extra, fragments in (
        (str(files["dir"] / "nan.pt"), [], ["nan.pt' holds NaN or infinite weights (1 NaN; the first in "
                                            "features.0.weight: 1 of"]),
        ("inf.pt", [], ["inf.pt' holds NaN or infinite weights (", " infinite; the first in fc.weight"]),
        ("int.pt", [], ["int.pt' stores float weights as integers (features.0.weight (int8)"]),
        (files["model"], ["--model2", str(files["dir"] / "nan.pt")], ["nan.pt' holds NaN or infinite weights"]),
        (files["model"], ["--dataset", "nandata:make"],
         ["dataset 'nandata:make' has 1 NaN or infinite value in its inputs (the first in sample 5)"]),
    ):
        code = surf_cli.main(["--model", model, *SURF, *extra, *out])
        one_line(capsys, code, "landscape-surf", *fragments)
        assert not (tmp_path / "o.h5").exists()
    assert surf_cli.main(["--model", "half.pt", *SURF, *out]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["landscape-surf: warning: checkpoint 'half.pt' stores its weights in float16: they are loaded "
                   "into the float32 network exactly as stored, and the surface is computed in float32"]
