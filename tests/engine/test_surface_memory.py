"""Surfaces within the model's memory: regenerated directions equal held ones, and the peak stays
within 1.3x the model's bytes (a fresh subprocess, benchmarks/bench_memory.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import landscape
from landscape.directions.options import Directions
from landscape.directions.sampling import (
    Difference,
    SeededDirection,
    directions_checksum,
    interpolation_direction,
    random_directions,
)
from landscape.evaluation.options import EvalOptions
from landscape.models import build_model
from landscape.space.params import Mover, snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cnn():
    torch.manual_seed(0)
    return build_model("digits_cnn", num_classes=10, in_channels=1)


@pytest.mark.parametrize("semantics", ["landscape", "original"])
@pytest.mark.parametrize("norm", ["filter", "layer", "weight", "dfilter", "dlayer", "none"])
@pytest.mark.parametrize("ignore", ["biasbn", "none"])
def test_regenerated_directions_equal_held_ones_to_the_bit(norm, ignore, semantics):
    origin = snapshot(cnn(), "states")
    held = random_directions(origin, 2, norm, ignore, seed=5, semantics=semantics)
    lazy = random_directions(origin, 2, norm, ignore, seed=5, semantics=semantics, lazy=True)
    assert all(isinstance(d, SeededDirection) for d in lazy)
    for h, z in zip(held, lazy, strict=True):
        assert list(h) == list(z)
        for k in h:
            assert torch.equal(h[k], z[k]), k
            assert torch.equal(h[k], z[k]), "read twice: the same"
    assert directions_checksum(held) == directions_checksum(lazy)


def test_difference_equals_the_held_difference():
    a, b = snapshot(cnn()), {k: v + 0.5 * torch.randn_like(v) for k, v in snapshot(cnn()).items()}
    held, lazy = interpolation_direction(a, b), interpolation_direction(a, b, lazy=True)
    assert isinstance(lazy, Difference)
    assert all(torch.equal(held[k], lazy[k]) for k in held)


def test_mover_with_regenerated_directions_equals_a_plain_sum():
    model = cnn()
    origin = snapshot(model)
    dirs = random_directions(origin, 2, seed=1, lazy=True)
    mover = Mover(model, origin, dirs)
    mover.move_((0.3, -0.7))
    for name, p in model.named_parameters():
        expected = origin[name] + 0.3 * dirs[0][name] + -0.7 * dirs[1][name]
        torch.testing.assert_close(p.data, expected, rtol=0, atol=1e-6)
    mover.restore_()
    assert all(torch.equal(p.data, origin[n]) for n, p in model.named_parameters())


def test_surface_regenerated_equals_the_held_path():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    data = (torch.tensor(x[:200], dtype=torch.float32).view(-1, 1, 8, 8) / 16, torch.tensor(y[:200]))
    grid = landscape.Grid((-1, 1, 4), (-1, 1, 3))
    ev = EvalOptions(batch_size=100, device="cpu")
    new = landscape.surface(cnn(), data, grid, evaluation=ev)
    old = landscape.surface(cnn(), data, grid, directions=Directions(hold=True), evaluation=ev)
    for name in ("train_loss", "train_acc"):
        torch.testing.assert_close(torch.tensor(new.values[name]), torch.tensor(old.values[name]), rtol=0, atol=1e-6)
    assert new.attrs["directions_sha256"] == old.attrs["directions_sha256"]


@pytest.mark.slow  # a 20M-parameter surface in a child process; the quick suite checks the parts below
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc to measure peak RSS")
def test_peak_memory_of_a_surface_is_within_1_3x_the_model():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_memory.py"), "--sizes", "20M",
                          "--modes", "new"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "BENCH_DOCS": "0"})
    ratio = float(out.stdout.split("ratio ")[1].split(",")[0])
    assert ratio <= 1.3, out.stdout


def test_directions_streamed_from_their_file_equal_the_loaded_ones(tmp_path):
    from landscape.io.directions_file import FileDirection, load_directions, save_directions

    origin = snapshot(cnn(), "states")
    save_directions(tmp_path / "d.h5", random_directions(origin, 2, seed=3, lazy=True))
    held, _ = load_directions(tmp_path / "d.h5")
    streamed, _ = load_directions(tmp_path / "d.h5", stream=True)
    assert all(isinstance(d, FileDirection) for d in streamed)
    for h, s in zip(held, streamed, strict=True):
        assert list(h) == list(s) and all(torch.equal(h[k], s[k]) for k in h)
    assert directions_checksum(held) == directions_checksum(streamed)
    model = cnn()
    a, b = Mover(model, origin, held, "states"), Mover(cnn(), origin, streamed, "states")
    a.move_((0.5, -0.25))
    b.move_((0.5, -0.25))
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values(),
                                                  strict=True))


@pytest.mark.parametrize("rows,cols,block", [(1000, 768, 100 * 768), (50257, 64, 997 * 64), (1001, 7, 112),
                                             (37, 3, 16), (40, 48, 100)])
def test_row_blocks_draw_what_one_draw_of_the_whole_tensor_does(rows, cols, block):
    """Gaussian draws block after block from one generator equal one draw of the whole tensor
    (torch's CPU sampler) when every block but the last holds a multiple of 16 values: the rule
    row_blocks keeps, checked here against the whole draw itself."""
    from landscape.space.params import row_blocks

    plan = row_blocks((rows, cols), block)
    assert plan is not None and plan[0][0] == 0 and plan[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(plan, plan[1:], strict=False))
    assert all((stop - start) * cols % 16 == 0 for start, stop in plan[:-1])
    assert (plan[-1][1] - plan[-1][0]) * cols >= 16
    whole = torch.randn(rows, cols, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    parts = torch.cat([torch.randn(stop - start, cols, generator=g) for start, stop in plan])
    assert torch.equal(whole, parts)


@pytest.mark.parametrize("norm", ["filter", "layer", "weight", "dfilter", "dlayer", "none"])
@pytest.mark.parametrize("semantics", ["landscape", "original"])
def test_large_tensors_made_in_row_blocks_equal_the_held_directions(monkeypatch, tmp_path, norm, semantics):
    """With the block size forced small, every 2-D+ tensor of the network is made block by block
    (drawn, read from its file, or subtracted): the same directions, moves, checksums and file."""
    import landscape.io.h5 as h5
    import landscape.space.params as params
    from landscape.io.directions_file import load_directions, save_directions

    monkeypatch.setattr(params, "BLOCK", 64)
    origin = snapshot(cnn(), "states")
    blocked = [k for k, v in origin.items() if params.row_blocks(tuple(v.shape)) is not None]
    assert len(blocked) >= 2, blocked  # really made in blocks
    held = random_directions(origin, 2, norm, "biasbn", seed=5, semantics=semantics)
    lazy = random_directions(origin, 2, norm, "biasbn", seed=5, semantics=semantics, lazy=True)
    exact = norm not in ("layer", "dlayer", "weight")  # a whole-tensor norm summed over the blocks
    for h, z in zip(held, lazy, strict=True):
        for k in h:
            blocks = torch.cat([b.reshape(-1).clone() for _, b in z.blocks(k, params.scratch([z]))])
            for got in (z[k].reshape(-1), blocks):
                if exact:
                    assert torch.equal(h[k].reshape(-1), got), k
                else:
                    torch.testing.assert_close(got, h[k].reshape(-1), rtol=1e-6, atol=1e-7)
    if exact:
        assert directions_checksum(held) == directions_checksum(lazy)
    model_a, model_b = cnn(), cnn()
    Mover(model_a, origin, held, "states").move_((0.5, -0.25))
    Mover(model_b, origin, lazy, "states").move_((0.5, -0.25))
    for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(h5, "IN_MEMORY", 0)  # the file written by HDF5 itself, block by block
    save_directions(tmp_path / "lazy.h5", lazy)
    save_directions(tmp_path / "held.h5", held)
    streamed, _ = load_directions(tmp_path / "lazy.h5", stream=True)
    loaded, _ = load_directions(tmp_path / "held.h5")
    for z, s, h in zip(lazy, streamed, loaded, strict=True):
        for k in z:
            assert torch.equal(z[k], s[k]), k
            assert torch.equal(torch.cat([b.reshape(-1).clone() for _, b in s.blocks(k, params.scratch([s]))]),
                               z[k].reshape(-1)), k
            if exact:
                assert torch.equal(h[k], s[k]), k
    a, b = snapshot(cnn()), {k: v + 0.5 * torch.randn_like(v) for k, v in snapshot(cnn()).items()}
    diff = interpolation_direction(a, b, lazy=True)
    for k, v in interpolation_direction(a, b).items():
        assert torch.equal(torch.cat([x.reshape(-1).clone() for _, x in diff.blocks(k, params.scratch([diff]))]),
                           v.reshape(-1)), k


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc to measure peak RSS")
def test_peak_memory_within_1_3x_when_one_tensor_is_two_thirds_of_the_model():
    """A language model's embedding can be a third of it or more: its direction is made in row
    blocks, so the bound holds whatever the largest tensor's share."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_memory.py"), "--sizes", "20M",
                          "--modes", "new", "--shape", "head"], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1", "BENCH_DOCS": "0"})
    assert "| head | 20.0M | 67% |" in out.stdout
    ratio = float(out.stdout.split("ratio ")[1].split(",")[0])
    assert ratio <= 1.3, out.stdout


def test_directions_from_a_file_held_or_streamed_give_the_same_surface(tmp_path, monkeypatch):
    """A small model's file directions are held (reading them at every point costs more than the
    point), a large one's streamed: both give the same values."""
    import landscape.jobs.surf as job
    from landscape.data.datasets import DataSpec
    from landscape.engine.options import Output
    from landscape.io.directions_file import save_directions
    from landscape.space.grid import Grid

    model = cnn()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    save_directions(tmp_path / "d.h5", random_directions(snapshot(model), 2, seed=2))

    def run(name):
        return job.surf(job.SurfConfig(
            model=str(tmp_path / "m.pt"), arch="digits_cnn", data=DataSpec(dataset="digits", samples=60),
            grid=Grid("-1:1:3", "-1:1:3"), directions_file=str(tmp_path / "d.h5"),
            evaluation=EvalOptions(loss_fn="crossentropy", batch_size=60, device="cpu"),
            output=Output(tmp_path / name, progress=False, directions_file=""))).surface

    held = run("held.h5")
    monkeypatch.setattr(job, "STREAM_ABOVE", 0)
    streamed = run("streamed.h5")
    assert torch.equal(torch.tensor(held.values["train_loss"]), torch.tensor(streamed.values["train_loss"]))
