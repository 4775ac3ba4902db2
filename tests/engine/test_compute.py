"""End-to-end surfaces against independent answers: closed form, the model itself, scale
invariance under filter normalization, and resume versus an uninterrupted run."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import quadratic
import torch
import torch.nn.functional as F
from helpers import save_digits_cnn, surf_config

from landscape.data.datasets import load_dataset
from landscape.directions.options import Directions
from landscape.engine.options import Output, directions_path
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import read_surface
from landscape.jobs.surf import SurfConfig, surf
from landscape.models import build_model
from landscape.space.grid import Grid


def cfg(tmp_path, model, **kw) -> SurfConfig:
    base = dict(model=model, arch="digits_cnn", dataset="digits", samples=150, grid=Grid("-1:1:5", "-1:1:5"),
                output=quiet(str(tmp_path / "s.h5")), evaluation=EvalOptions(batch_size=64))
    base.update(kw)
    return surf_config(**base)


def quiet(path) -> Output:
    return Output(path, progress=False)


def test_quadratic_model_matches_its_closed_form(tmp_path):
    torch.manual_seed(0)
    torch.save(quadratic.model().state_dict(), tmp_path / "q.pt")
    c = cfg(tmp_path, str(tmp_path / "q.pt"), arch="quadratic:model", dataset="quadratic:data",
            evaluation=EvalOptions(loss_fn="mse", batch_size=64), samples=None,
            grid=Grid("-2:1:4", "-1:1:3"))
    s = surf(c).surface
    w0 = torch.load(tmp_path / "q.pt")["weight"].double().numpy()
    with h5py.File(directions_path(c.output.path)) as f:
        d1, d2 = f["xdirection/0"][()].astype(float), f["ydirection/0"][()].astype(float)
    # filter normalization: every row of a direction has the norm of the same row of W0
    np.testing.assert_allclose(np.linalg.norm(d1, axis=1), np.linalg.norm(w0, axis=1), rtol=1e-5)
    x, t = (v.double().numpy() for v in quadratic.data())
    expected = np.empty((4, 3))
    for i, a in enumerate(np.linspace(-2, 1, 4)):
        for j, b in enumerate(np.linspace(-1, 1, 3)):
            w = w0 + a * d1 + b * d2
            expected[i, j] = np.mean(np.sum((x @ w.T - t) ** 2, axis=1)) / quadratic.K
    np.testing.assert_allclose(s.loss, expected.T, rtol=1e-5)  # arrays are [j, i] at (x[i], y[j])
    assert "train_acc" not in s.values  # a regression has no accuracy


def test_cross_entropy_of_a_linear_model_matches_numpy(tmp_path):
    torch.manual_seed(1)
    model = quadratic.model()
    torch.save(model.state_dict(), tmp_path / "lin.pt")
    c = cfg(tmp_path, str(tmp_path / "lin.pt"), arch="quadratic:model",
            dataset="quadratic:classes", samples=None, grid=Grid("-1:1:3"), directions=Directions(norm="layer"))
    s = surf(c).surface
    w0 = model.weight.detach().double().numpy()
    with h5py.File(directions_path(c.output.path)) as f:
        d = f["xdirection/0"][()].astype(float)
    x, y = quadratic.classes()
    x, y = x.double().numpy(), y.numpy()
    for i, a in enumerate([-1.0, 0.0, 1.0]):
        logits = x @ (w0 + a * d).T
        m = logits.max(1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(1, keepdims=True))
        assert s.loss[i] == pytest.approx(-logp[np.arange(len(y)), y].mean(), rel=1e-5)
        assert s.acc[i] == pytest.approx(100 * np.mean(logits.argmax(1) == y), abs=1e-9)


def test_centre_of_the_surface_is_the_models_own_loss(tmp_path, digits_ckpt):
    s = surf(cfg(tmp_path, digits_ckpt, samples=None)).surface
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    model.load_state_dict(torch.load(digits_ckpt))
    model.eval()
    data = load_dataset("digits", split="train")
    with torch.no_grad():
        out = model(data.x)
    assert s.loss[2, 2] == pytest.approx(float(F.cross_entropy(out, data.y)), rel=1e-5)
    assert s.acc[2, 2] == pytest.approx(100 * float((out.argmax(1) == data.y).double().mean()))
    assert s.completed.all() and np.isfinite(s.loss).all()
    assert s.attrs["samples"] == len(data) and s.attrs["norm"] == "filter"
    assert len(s.attrs["model_sha256"]) == 64 and s.attrs["torch_version"] == torch.__version__
    assert s.loss[2, 2] < s.loss[0, 0]  # the random init is still a better point than far away


def test_filter_normalization_removes_the_scale_of_a_layer_before_batchnorm(tmp_path):
    a = save_digits_cnn(tmp_path / "a.pt", seed=0)
    b = save_digits_cnn(tmp_path / "b.pt", seed=0, scale_first_conv=10.0)
    loss = {}
    for norm in ("filter", "none"):
        for name, path in (("a", a), ("b", b)):
            c = cfg(tmp_path, path, directions=Directions(norm=norm),
                    output=quiet(str(tmp_path / f"{name}_{norm}.h5")))
            loss[name, norm] = surf(c).surface.loss
    np.testing.assert_allclose(loss["a", "filter"], loss["b", "filter"], rtol=1e-4)
    np.testing.assert_allclose(loss["a", "none"][2, 2], loss["b", "none"][2, 2], rtol=1e-4)
    assert np.max(np.abs(loss["a", "none"] - loss["b", "none"]) / loss["a", "none"]) > 0.05


def test_interrupted_run_resumes_to_the_same_file(tmp_path, digits_ckpt, monkeypatch):
    whole = surf(cfg(tmp_path, digits_ckpt, output=quiet(str(tmp_path / "whole.h5")))).surface
    calls = {"n": 0}
    original = Evaluator.__call__

    def counting(self):
        calls["n"] += 1
        if calls["n"] > 9:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Evaluator, "__call__", counting)
    c = cfg(tmp_path, digits_ckpt, output=quiet(str(tmp_path / "part.h5")))
    with pytest.raises(KeyboardInterrupt):
        surf(c)
    part = read_surface(c.output.path)
    assert part.completed.sum() == 9 and np.isnan(part.loss.ravel()[9:]).all()

    calls["n"] = -1000  # no more interruptions; count what the rerun computes
    resumed = surf(c).surface
    assert calls["n"] == -1000 + 25 - 9  # only the 16 unfinished points
    np.testing.assert_array_equal(resumed.loss, whole.loss)
    np.testing.assert_array_equal(read_surface(c.output.path).acc, whole.acc)


def test_shared_directions_file_gives_the_same_surface(tmp_path, digits_ckpt):
    first = surf(cfg(tmp_path, digits_ckpt, directions=Directions(seed=5))).surface
    c = cfg(tmp_path, digits_ckpt, directions=Directions(seed=0),
            directions_file=directions_path(str(tmp_path / "s.h5")),
            output=quiet(str(tmp_path / "again.h5")))
    again = surf(c).surface
    np.testing.assert_array_equal(first.loss, again.loss)
    assert again.attrs["directions_sha256"] == first.attrs["directions_sha256"]


def test_states_directions_test_split_and_sample_indices(tmp_path, digits_ckpt):
    c = cfg(tmp_path, digits_ckpt, directions=Directions(dir_type="states"), split="test", samples=40,
            grid=Grid("-0.5:0.5:3"))
    s = surf(c).surface
    with h5py.File(c.output.path) as f:
        assert "test_loss" in f and "train_loss" not in f
        idx = f["sample_indices"][()]
    assert len(idx) == 40 and len(set(idx.tolist())) == 40
    assert s.loss.shape == (3,) and np.isfinite(s.loss).all()
    assert s.attrs["dir_type"] == "states" and s.attrs["split"] == "test"


def test_interpolation_between_two_models(tmp_path):
    a = save_digits_cnn(tmp_path / "a.pt", seed=0)
    b = save_digits_cnn(tmp_path / "b.pt", seed=1)
    c = cfg(tmp_path, a, model2=b, grid=Grid("0:1:2"), samples=None)
    s = surf(c).surface
    data = load_dataset("digits", split="train")
    for i, path in enumerate((a, b)):
        model = build_model("digits_cnn", num_classes=10, in_channels=1)
        sd = torch.load(path)
        if i == 1:  # interpolation moves the parameters only: BN statistics stay model a's
            sd = {k: (torch.load(a)[k] if "running" in k else v) for k, v in sd.items()}
        model.load_state_dict(sd)
        loss = Evaluator(model, data, EvalOptions(batch_size=256))()["loss"]
        assert s.loss[i] == pytest.approx(loss, rel=1e-5)


def test_a_temporary_left_by_a_killed_writer_is_cleaned_up(tmp_path, digits_ckpt):
    stale = tmp_path / ".s.h5.tmp99999"
    stale.write_bytes(b"half-written")
    s = surf(cfg(tmp_path, digits_ckpt, grid=Grid("-1:1:3"))).surface
    assert not stale.exists() and (tmp_path / "s.h5").exists()
    written = read_surface(tmp_path / "s.h5")  # the run's own file, whole, where the stale one was cleared
    assert written.completed.all() and np.array_equal(written.loss, s.loss)


def test_plane_through_three_models(tmp_path):
    a, b, c = (save_digits_cnn(tmp_path / f"{n}.pt", seed=k) for k, n in enumerate("abc"))
    s = surf(cfg(tmp_path, a, model2=b, model3=c, directions=Directions(dir_type="states"),
                            grid=Grid("0:1:2", "0:1:2"), samples=None, split="test")).surface
    data = load_dataset("digits", split="test")
    for (j, i), path in (((0, 0), a), ((0, 1), b), ((1, 0), c)):
        model = build_model("digits_cnn", num_classes=10, in_channels=1)
        model.load_state_dict(torch.load(path))
        assert s.loss[j, i] == pytest.approx(Evaluator(model, data, EvalOptions(batch_size=256))()["loss"], rel=1e-5)
    assert s.attrs["model3_sha256"] and s.attrs["directions_from"] == "model2, model3"


def test_same_direction_for_both_axes(tmp_path, digits_ckpt):
    s = surf(cfg(tmp_path, digits_ckpt, same_dir=True, grid=Grid("-1:1:5", "-1:1:5"))).surface
    np.testing.assert_allclose(s.loss, s.loss.T, rtol=1e-6)  # f(a, b) = L(theta + (a + b) d)
    np.testing.assert_allclose(s.loss[0, 4], s.loss[2, 2], rtol=1e-6)  # (1, -1) and (0, 0)
    with h5py.File(s.path) as f:  # meshgrid layout on disk too: row j is y[j]
        np.testing.assert_array_equal(f["train_loss"][()], s.loss)


def test_file_layout_against_the_closed_form(tmp_path):
    """file[j, i] is the loss at (x[i], y[j]) on a non-square grid, read with plain h5py."""
    torch.manual_seed(0)
    torch.save(quadratic.model().state_dict(), tmp_path / "q.pt")
    c = cfg(tmp_path, str(tmp_path / "q.pt"), arch="quadratic:model", dataset="quadratic:data",
            evaluation=EvalOptions(loss_fn="mse", batch_size=64), samples=None, grid=Grid("-2:1:4", "0:1:3"),
            output=quiet(str(tmp_path / "q.h5")))
    surf(c)
    w0 = torch.load(tmp_path / "q.pt")["weight"].double().numpy()
    with h5py.File(directions_path(c.output.path)) as f:
        d1, d2 = f["xdirection/0"][()].astype(float), f["ydirection/0"][()].astype(float)
    x, t = (v.double().numpy() for v in quadratic.data())
    with h5py.File(c.output.path) as f:
        z, xs, ys = f["train_loss"][()], f["xcoordinates"][()], f["ycoordinates"][()]
    assert z.shape == (3, 4)
    for i, a in enumerate(xs):
        for j, b in enumerate(ys):
            w = w0 + a * d1 + b * d2
            assert z[j, i] == pytest.approx(np.mean(np.sum((x @ w.T - t) ** 2, axis=1)) / quadratic.K, rel=1e-5)


def test_train_and_test_in_one_file(tmp_path, digits_ckpt):
    both = surf(cfg(tmp_path, digits_ckpt, split="train,test", output=quiet(tmp_path / "both.h5"))).surface
    assert {"train_loss", "train_acc", "test_loss", "test_acc"} == set(both.values)
    alone = surf(cfg(tmp_path, digits_ckpt, split="test", output=quiet(tmp_path / "test.h5"))).surface
    np.testing.assert_allclose(both.values["test_loss"], alone.values["test_loss"], rtol=1e-6)
    assert both.split == "train" and both.label("test_loss") == "test loss"
