"""landscape.training: the loop against a plain torch loop, the hook protocol, the run folder,
quantization in a loop of one's own, resume after kill -9, and the import graph."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.quant import QuantConfig, quantize_
from landscape.training import Loop, LoopConfig, Milestones, RunFolder, TrainHook

ROOT = Path(__file__).resolve().parents[2]


def net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 16), nn.Tanh(), nn.Linear(16, 3))


def data(n: int = 96, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 10, generator=g), torch.randint(0, 3, (n,), generator=g)


def batches(x, y, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(y), size)]


def assert_close(a: nn.Module, b: nn.Module, tol: float = 1e-6) -> None:
    for (k, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(p, q, rtol=0, atol=tol), (k, (p - q).abs().max())


# ------------------------------------------------------------------ the loop against torch


def test_sgd_nesterov_weight_decay_milestones_equal_a_plain_torch_loop():
    x, y = data()
    parts = batches(x, y, 32)
    ours, ref = net(), net()
    kw = dict(lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-3)
    loop = Loop(ours, parts, torch.optim.SGD(ours.parameters(), **kw), schedule=Milestones(0.2, 0.1, [2, 3]),
                config=LoopConfig(epochs=4))
    history = loop.run()

    opt = torch.optim.SGD(ref.parameters(), **kw)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 3], gamma=0.1)
    for _ in range(4):
        for xb, yb in parts:
            opt.zero_grad()
            nn.functional.cross_entropy(ref(xb), yb).backward()
            opt.step()
        sched.step()
    assert_close(ours, ref)
    assert [r["lr"] for r in history] == pytest.approx([0.2, 0.2, 0.2, 0.02, 0.002])
    assert loop.step == 4 * len(parts)
    assert not torch.equal(net().state_dict()["0.weight"], ours.state_dict()["0.weight"])


def test_adam_on_tensors_equals_a_plain_torch_loop():
    x, y = data()
    ours, ref = net(), net()
    loop = Loop(ours, (x, y), torch.optim.Adam(ours.parameters(), lr=0.01, weight_decay=1e-3),
                config=LoopConfig(epochs=5, batch_size=len(y)))  # one batch: the shuffle only reorders it
    loop.run()
    opt = torch.optim.Adam(ref.parameters(), lr=0.01, weight_decay=1e-3)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(x), y).backward()
        opt.step()
    assert_close(ours, ref)
    assert loop.history[-1]["train_loss"] < loop.history[0]["train_loss"]


def test_data_forms_the_engine_takes_train_alike():
    from torch.utils.data import DataLoader, TensorDataset

    from landscape.data.datasets import Dataset

    x, y = data(64)
    forms = {"tensors": (x, y), "dataset": Dataset(x, y, 3, "toy"), "torch dataset": TensorDataset(x, y),
             "loader": DataLoader(TensorDataset(x, y), batch_size=64), "list": [(x, y)]}
    finals = {}
    for name, d in forms.items():
        model = net()
        Loop(model, d, torch.optim.SGD(model.parameters(), lr=0.1), test_data=d,
             config=LoopConfig(epochs=2, batch_size=64)).run()
        finals[name] = model
    for name, model in finals.items():
        assert_close(model, finals["list"]), name


def test_every_epoch_sees_every_sample_once_in_a_new_order():
    x, y = data(50)
    seen: list[list[int]] = []

    class Batches(TrainHook):
        def before_forward(self, loop, batch):
            rows = (batch[0][:, None, :] == x[None]).all(-1).float().argmax(1)
            while len(seen) < loop.epoch:
                seen.append([])
            seen[loop.epoch - 1] += rows.tolist()

    model = net()
    Loop(model, (x, y), torch.optim.SGD(model.parameters(), lr=0.0), hooks=[Batches()],
         config=LoopConfig(epochs=2, batch_size=16)).run()
    assert [sorted(s) for s in seen] == [list(range(50))] * 2 and seen[0] != seen[1]


# -------------------------------------------------------------------------------- hooks


class Recorder(TrainHook):
    """Records every call, and checks what the loop promises at each one."""

    name = "recorder"

    def __init__(self, setting: int = 1):
        self.calls: list[str] = []
        self.setting, self.count = setting, 0

    def config(self):
        return {"setting": self.setting}

    def on_start(self, loop):
        self.calls.append("on_start")

    def before_forward(self, loop, batch):
        self.before = [p.detach().clone() for p in loop.model.parameters()]
        self.calls.append("before_forward")

    def after_backward(self, loop):
        assert all(p.grad is not None for p in loop.model.parameters())
        assert all(torch.equal(p, b) for p, b in zip(loop.model.parameters(), self.before, strict=True))
        self.calls.append("after_backward")

    def after_step(self, loop):
        assert any(not torch.equal(p, b) for p, b in zip(loop.model.parameters(), self.before, strict=True))
        self.count += 1
        assert loop.step == self.count
        self.calls.append("after_step")

    def on_epoch_end(self, loop, epoch, row):
        row["recorded"] = self.count
        self.calls.append(f"on_epoch_end {epoch}")

    def on_checkpoint(self, loop, state):
        state["recorder_note"] = self.count
        self.calls.append(f"on_checkpoint {state['epoch']}")

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]
        self.calls.append("load_state_dict")


def test_hook_call_order_and_what_each_call_sees(tmp_path):
    x, y = data(40)
    model, hook = net(), Recorder()
    with RunFolder(tmp_path / "run", {"lr": 0.1}) as folder:
        Loop(model, batches(x, y, 20), torch.optim.SGD(model.parameters(), lr=0.1), hooks=[hook],
             config=LoopConfig(epochs=2), folder=folder).run()
    step = ["before_forward", "after_backward", "after_step"]
    assert hook.calls == (["on_start", "on_epoch_end 0", "on_checkpoint 0"]
                          + step * 2 + ["on_epoch_end 1", "on_checkpoint 1"]
                          + step * 2 + ["on_epoch_end 2", "on_checkpoint 2"])
    last = torch.load(tmp_path / "run" / "model_2.pt", weights_only=True)
    assert last["hooks"] == {"0:recorder": {"count": 4}} and last["hook_config"] == {"0:recorder": {"setting": 1}}
    assert last["recorder_note"] == 4 and last["args"] == {"lr": 0.1}
    assert "recorded" in (tmp_path / "run" / "log.csv").read_text().splitlines()[0]


def test_a_hook_state_comes_back_on_resume_and_its_settings_are_checked(tmp_path):
    x, y = data(40)

    class Stop(Exception):
        pass

    def run(hook, epochs, resume, stop_at=None):
        model = net()
        with RunFolder(tmp_path / "run", {"lr": 0.1}, resume=resume) as folder:
            loop = Loop(model, batches(x, y, 20), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        hooks=[hook], config=LoopConfig(epochs=epochs, save_every=10), folder=folder)

            def stop(epoch, row):
                if epoch == stop_at:
                    raise Stop

            loop.run(stop)
        return model

    with pytest.raises(Stop):
        run(Recorder(), 3, resume=False, stop_at=2)
    with pytest.raises(LandscapeError, match="different settings of hook 'recorder': setting 1 -> 2"):
        run(Recorder(setting=2), 3, resume=True)
    again = Recorder()
    resumed = run(again, 3, resume=True)
    assert again.calls[:2] == ["load_state_dict", "on_start"] and again.count == 6
    full_hook = Recorder()
    full = net()
    Loop(full, batches(x, y, 20), torch.optim.SGD(full.parameters(), lr=0.1, momentum=0.9), hooks=[full_hook],
         config=LoopConfig(epochs=3)).run()
    for a, b in zip(full.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_from_the_initial_checkpoint_alone(tmp_path):
    x, y = data(40)

    def loop(hook, folder, epochs=2):
        model = net()
        return Loop(model, batches(x, y, 20), torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                    hooks=[hook], config=LoopConfig(epochs=epochs, save_every=10), folder=folder)

    with RunFolder(tmp_path / "run", {}) as folder, pytest.raises(KeyboardInterrupt):
        loop(Recorder(), folder).run(lambda epoch, row: (_ for _ in ()).throw(KeyboardInterrupt))
    os.remove(tmp_path / "run" / "resume.pt")  # as if killed while epoch 1 was written: model_0.pt is left
    hook = Recorder()
    with RunFolder(tmp_path / "run", {}, resume=True) as folder:
        resumed = loop(hook, folder)
        history = resumed.run()
    assert hook.calls[:3] == ["load_state_dict", "on_start", "before_forward"]  # epoch 0 is not redone
    assert [r["epoch"] for r in history] == [0, 1, 2]
    full = loop(Recorder(), None)
    full.run()
    for a, b in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resuming_with_another_thread_count_says_it_is_not_bit_for_bit(tmp_path):
    import warnings

    x, y = data(40)

    def loop(folder):
        model = net()
        return Loop(model, batches(x, y, 20), torch.optim.SGD(model.parameters(), lr=0.1),
                    config=LoopConfig(epochs=2, save_every=10), folder=folder)

    with RunFolder(tmp_path / "run", {}) as folder, pytest.raises(KeyboardInterrupt):
        loop(folder).run(lambda epoch, row: (_ for _ in ()).throw(KeyboardInterrupt))
    assert torch.load(tmp_path / "run" / "resume.pt", weights_only=True)["threads"] == 1  # conftest's count
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with RunFolder(tmp_path / "run", {}, resume=True) as folder, pytest.warns(UserWarning, match="1 torch thr"):
            loop(folder).run(lambda epoch, row: (_ for _ in ()).throw(KeyboardInterrupt) if epoch == 1 else None)
        # epoch 1 was saved with 2 threads: resuming with 2 is silent
        with RunFolder(tmp_path / "run", {}, resume=True) as folder, warnings.catch_warnings():
            warnings.simplefilter("error")
            assert [r["epoch"] for r in loop(folder).run()] == [0, 1, 2]
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------------- the run folder


def test_one_writer_per_run_folder(tmp_path):
    with RunFolder(tmp_path / "run", {}):
        with pytest.raises(LandscapeError, match="being written by another run"):
            RunFolder(tmp_path / "run", {})
    RunFolder(tmp_path / "run", {}).close()  # released: the next one opens it


KILLED_RUN = """
import os, signal, sys
from landscape.jobs.train import TrainConfig, train

def kill(epoch, row):
    if epoch == 3:
        os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig.from_args(**eval(sys.argv[1])), on_epoch_end=kill)
"""


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sgd", "sam", "asam+teacher+lowrank"])
def test_resume_after_kill_9_equals_an_uninterrupted_run(tmp_path, method):
    from helpers import save_checkpoint_of, save_lowrank

    from landscape.jobs.train import TrainConfig, train

    kw = dict(arch="digits_cnn", dataset="digits", epochs=4, lr=0.05, batch_size=64, save_every=2, subset=200,
              augment=True, milestones=[2], progress=False, threads=1)
    if method == "sam":
        kw.update(sam=0.05)
    elif method != "sgd":  # every other new option at once: ASAM, a teacher, a low-rank start
        kw.update(sam=0.5, sam_adaptive=True, teacher=save_checkpoint_of(tmp_path / "teacher.pt", seed=5),
                  kd_temperature=3.0, kd_alpha=0.5, init_from=save_lowrank(tmp_path / "lowrank.pt"))
    # One thread in every run: torch splits a reduction by thread count, so runs with different
    # counts differ in the last bits (CI's in-process run picked the idle cores, the cut run 1).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cut = subprocess.run([sys.executable, "-c", KILLED_RUN, repr({**kw, "out": str(tmp_path / "cut")})],
                         env=env, capture_output=True, text=True, timeout=300)
    assert cut.returncode == -signal.SIGKILL, cut.stderr
    assert sorted(os.listdir(tmp_path / "cut")) == ["log.csv", "model_0.pt", "model_2.pt", "resume.pt"]
    resumed = train(TrainConfig.from_args(**kw, out=str(tmp_path / "cut"), resume=True))
    train(TrainConfig.from_args(**kw, out=str(tmp_path / "full")))
    a = torch.load(tmp_path / "full" / "model_4.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "model_4.pt", weights_only=True)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert a["step"] == b["step"] and a["test_loss"] == b["test_loss"]
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3, 4]
    assert not os.path.exists(tmp_path / "cut" / "resume.pt")


# ----------------------------------------------------- quantization in a loop of one's own


def docs_snippet() -> str:
    text = (ROOT / "docs" / "training.md").read_text()
    marker = r"<!-- test: tests/training/test_training.py runs this block -->"
    block = re.search(marker + r"\n```python\n(.*?)```", text, re.S)
    assert block, "docs/training.md lost its tested snippet"
    return block.group(1)


def test_the_docs_own_loop_with_the_quant_hook_equals_the_project_loop():
    ns: dict = {}
    exec(compile(docs_snippet(), "docs/training.md", "exec"), ns)  # the user's own loop, as written
    mine, hook = ns["model"], ns["hook"]
    for w, grid in zip(hook.params, hook.grids, strict=True):  # binary weights, full precision kept apart
        assert w.unique().numel() <= 2 and torch.allclose(w.abs(), torch.full_like(w, grid.hi))
    assert any(not torch.equal(r, p) for r, p in zip(hook.real, hook.params, strict=True))

    torch.manual_seed(0)
    x, y = torch.randn(256, 20), torch.randint(0, 3, (256,))
    model = nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    theirs = quantize_(model, QuantConfig(method="bc", bits=1))
    Loop(model, batches(x, y, 64), optimizer, hooks=[theirs], config=LoopConfig(epochs=3)).run()
    for a, b in zip(mine.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(hook.real, theirs.real, strict=True):
        assert torch.equal(a, b)


def test_stochastic_rounding_in_a_plain_loop_equals_the_project_loop():
    x, y = data()
    parts = batches(x, y, 32)
    results = []
    for own in (True, False):
        model = net()
        hook = quantize_(model, QuantConfig(method="sr", bits=2))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        if own:
            for _ in range(2):
                for xb, yb in parts:
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(xb), yb).backward()
                    hook.after_backward(None)
                    opt.step()
                    hook.after_step(None)
        else:
            Loop(model, parts, opt, hooks=[hook], config=LoopConfig(epochs=2)).run()
        results.append((model, hook.changed()))
    assert results[0][1] > 0
    assert_close(results[0][0], results[1][0], tol=0.0)


# ------------------------------------------------------------------------- bad input, imports


def test_bad_loop_input_is_a_user_error():
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LandscapeError, match="`batch_size` must be a positive integer"):
        LoopConfig(batch_size=0)
    with pytest.raises(LandscapeError, match="training data must be"):
        Loop(model, iter([data()]), opt)
    with pytest.raises(LandscapeError, match=r"\(X, y\) tensors, got 3"):
        Loop(model, (*data(), torch.zeros(96)), opt)


def test_the_loop_imports_neither_quantization_nor_pruning_and_there_is_no_cycle():
    code = textwrap.dedent("""
        import sys, landscape.training
        bad = sorted(m for m in sys.modules if m.startswith(("landscape.quant", "landscape.prune", "landscape.jobs",
                                                             "landscape.cli", "landscape.plot")))
        assert not bad, bad
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    import grimp  # import-linter's graph builder (a test extra): missing, the test fails

    graph = grimp.build_graph("landscape", cache_dir=None)
    for a, b in [("landscape.training", "landscape.quant"), ("landscape.training", "landscape.prune"),
                 ("landscape.training", "landscape.jobs"), ("landscape.quant", "landscape.jobs")]:
        assert not graph.chain_exists(importer=a, imported=b, as_packages=True), (a, b)
    for m in ("landscape.training", "landscape.quant", "landscape.jobs.train"):
        mods = [m] if m == "landscape.jobs.train" else sorted(graph.find_descendants(m) | {m})
        for mod in mods:  # no module of these reaches itself again
            for imported in graph.find_modules_directly_imported_by(mod):
                assert not graph.chain_exists(importer=imported, imported=mod), (mod, imported)
