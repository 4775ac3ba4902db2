"""Directions: normalizations against plain loops, the ignore rule, seeds, files, interpolation."""

from __future__ import annotations

import math

import pytest
import torch

from landscape.directions.sampling import interpolation_direction, normalize_, random_directions
from landscape.errors import LandscapeError
from landscape.io.directions_file import load_directions, save_directions
from landscape.models import build_model
from landscape.space.params import Mover, snapshot


def origin_of(dir_type="weights"):
    torch.manual_seed(0)
    return snapshot(build_model("digits_cnn", num_classes=10, in_channels=1), dir_type)


def raw_like(origin, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=g) for k, v in origin.items()}


def test_filter_norm_equals_a_plain_loop_over_filters():
    origin = origin_of()
    raw = raw_like(origin)
    d = normalize_({k: v.clone() for k, v in raw.items()}, origin, "filter", "none")
    for name, w in origin.items():
        if w.dim() <= 1:  # ignore="none": a 1-D tensor is one filter
            expected = raw[name] / raw[name].norm() * w.norm()
            torch.testing.assert_close(d[name], expected, rtol=1e-5, atol=1e-7)
            continue
        for i in range(w.shape[0]):
            di, wi = raw[name][i], w[i]
            expected = [float(v) for v in (di / math.sqrt(float((di**2).sum())) * math.sqrt(
                float((wi**2).sum()))).flatten()]
            assert d[name][i].flatten().tolist() == pytest.approx(expected, rel=1e-5, abs=1e-7)
            assert float(d[name][i].norm()) == pytest.approx(float(wi.norm()), rel=1e-5)


def test_layer_and_weight_norms():
    origin = origin_of()
    raw = raw_like(origin)
    d = normalize_({k: v.clone() for k, v in raw.items()}, origin, "layer", "biasbn")
    for name, w in origin.items():
        if w.dim() > 1:
            assert float(d[name].norm()) == pytest.approx(float(w.norm()), rel=1e-5)
    d = normalize_({k: v.clone() for k, v in raw.items()}, origin, "weight", "biasbn")
    active = [k for k, w in origin.items() if w.dim() > 1]
    dn = math.sqrt(sum(float((d[k] ** 2).sum()) for k in active))
    wn = math.sqrt(sum(float((origin[k] ** 2).sum()) for k in active))
    assert dn == pytest.approx(wn, rel=1e-5)
    # one common factor for every tensor, so the shape of the raw direction is kept
    ratios = [float(d[k].flatten()[0] / raw[k].flatten()[0]) for k in active]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-5)
    d = normalize_({k: v.clone() for k, v in raw.items()}, origin, "none", "none")
    for name in origin:
        torch.testing.assert_close(d[name], raw[name])


def test_ignore_biasbn_zeroes_every_1d_tensor_and_states_cover_bn_statistics():
    origin = origin_of("states")
    assert any(k.endswith("running_var") for k in origin)
    (d,) = random_directions(origin, 1, "filter", "biasbn", seed=3)
    for name, w in origin.items():
        if w.dim() <= 1:
            assert not d[name].any(), name
        else:
            assert d[name].abs().sum() > 0, name
    (d2,) = random_directions(origin, 1, "filter", "none", seed=3)
    bn_var = next(k for k in origin if k.endswith("running_var"))
    assert float(d2[bn_var].norm()) == pytest.approx(float(origin[bn_var].norm()), rel=1e-5)
    assert not d2[next(k for k in origin if k.endswith("num_batches_tracked"))].any()


def test_seed_reproduces_and_two_directions_differ():
    origin = origin_of()
    a = random_directions(origin, 2, seed=7)
    b = random_directions(origin, 2, seed=7)
    c = random_directions(origin, 2, seed=8)
    name = "features.0.weight"
    assert torch.equal(a[0][name], b[0][name]) and torch.equal(a[1][name], b[1][name])
    assert not torch.equal(a[0][name], a[1][name])
    assert not torch.equal(a[0][name], c[0][name])


def test_save_and_load_round_trip(tmp_path):
    origin = origin_of()
    dirs = random_directions(origin, 2, seed=0)
    save_directions(tmp_path / "d.h5", dirs, {"norm": "filter"})
    loaded, attrs = load_directions(tmp_path / "d.h5")
    assert attrs["norm"] == "filter"
    assert len(loaded) == 2
    for d, e in zip(dirs, loaded, strict=True):
        assert list(d) == list(e)
        for k in d:
            assert torch.equal(d[k], e[k])


def test_load_rejects_a_file_that_is_not_directions(tmp_path):
    (tmp_path / "x.h5").write_text("not hdf5")
    with pytest.raises(LandscapeError, match="not a readable HDF5"):
        load_directions(tmp_path / "x.h5")
    with pytest.raises(LandscapeError, match="does not exist"):
        load_directions(tmp_path / "missing.h5")


def test_interpolation_direction_reaches_the_second_model():
    a = origin_of()
    torch.manual_seed(5)
    b = snapshot(build_model("digits_cnn", num_classes=10, in_channels=1))
    d = interpolation_direction(a, b)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    model.load_state_dict(a, strict=False)
    mover = Mover(model, a, [d])
    mover.move_([1.0])
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.data, b[k], rtol=0, atol=1e-6)
    mover.move_([0.5])
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.data, (a[k] + b[k]) / 2, rtol=0, atol=1e-6)


def test_interpolation_refuses_another_architecture():
    a = origin_of()
    b = snapshot(build_model("mlp", num_classes=10, in_channels=1))
    with pytest.raises(LandscapeError, match="same architecture|differs"):
        interpolation_direction(a, b)


def test_mover_sets_origin_plus_combination_and_restores():
    torch.manual_seed(0)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    origin = snapshot(model, "states")
    d1, d2 = random_directions(origin, 2, "filter", "none", seed=1)
    mover = Mover(model, origin, [d1, d2], "states")
    mover.move_([0.3, -0.7])
    state = model.state_dict()
    for k, v in origin.items():
        if v.is_floating_point():
            torch.testing.assert_close(state[k], v + 0.3 * d1[k] - 0.7 * d2[k], rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(state[k], v)  # integer buffers never move
    mover.restore_()
    for k, v in origin.items():
        assert torch.equal(model.state_dict()[k], v)


def original_rule(d: torch.Tensor, w: torch.Tensor, norm: str, ignore: str) -> torch.Tensor:
    """The original tool's net_plotter.normalize_directions_for_weights, written out per tensor."""
    d = d.clone()
    if d.dim() <= 1:
        return torch.zeros_like(d) if ignore == "biasbn" else w.clone()
    if norm == "filter":
        for i in range(d.shape[0]):
            d[i] = d[i] * (w[i].norm() / (d[i].norm() + 1e-10))
    elif norm == "layer":
        d = d * (w.norm() / d.norm())
    elif norm == "weight":
        d = d * w
    elif norm == "dfilter":
        for i in range(d.shape[0]):
            d[i] = d[i] / (d[i].norm() + 1e-10)
    elif norm == "dlayer":
        d = d / d.norm()
    return d


@pytest.mark.parametrize("norm", ["filter", "layer", "weight", "dfilter", "dlayer", "none"])
@pytest.mark.parametrize("ignore", ["biasbn", "none"])
def test_original_semantics_equal_the_original_rule(norm, ignore):
    origin = origin_of("states")
    raw = raw_like(origin)
    d = normalize_({k: v.clone() for k, v in raw.items()}, origin, norm, ignore, semantics="original")
    for name, w in origin.items():
        if not w.is_floating_point():
            continue
        torch.testing.assert_close(d[name], original_rule(raw[name], w, norm, ignore), rtol=1e-5, atol=1e-7)


def test_ours_and_the_originals_differ_where_documented():
    origin = origin_of()
    raw = raw_like(origin)
    ours = normalize_({k: v.clone() for k, v in raw.items()}, origin, "weight", "none")
    theirs = normalize_({k: v.clone() for k, v in raw.items()}, origin, "weight", "none", semantics="original")
    bias = "features.1.bias"
    assert torch.equal(theirs[bias], origin[bias]) and not torch.equal(ours[bias], origin[bias])
    w = "features.0.weight"
    torch.testing.assert_close(theirs[w], raw[w] * origin[w])  # element-wise
    total = math.sqrt(sum(float((ours[k].double() ** 2).sum()) for k in ours))
    wnorm = math.sqrt(sum(float((origin[k].double() ** 2).sum()) for k in origin))
    assert total == pytest.approx(wnorm, rel=1e-5)  # ours: one scale over the whole model


def test_per_axis_normalization_and_ignore():
    origin = origin_of()
    x, y = random_directions(origin, 2, norm=["filter", "none"], ignore=["biasbn", "none"], seed=3)
    fx, fy = random_directions(origin, 2, norm="filter", ignore="biasbn", seed=3)
    assert all(torch.equal(x[k], fx[k]) for k in x)  # the same draws, axis by axis
    g = torch.Generator().manual_seed(3)
    for v in origin.values():  # the raw Gaussian of the y axis follows the x axis's draws
        torch.randn(v.shape, generator=g)
    raw_y = {k: torch.randn(v.shape, generator=g) for k, v in origin.items()}
    assert all(torch.equal(y[k], raw_y[k]) for k in y)  # none, nothing ignored
    assert not torch.equal(y["fc.bias"], fy["fc.bias"])


def test_elementwise_norm_scales_each_entry_by_the_model_and_perturbs_every_tensor_by_default():
    """``elementwise``: d_i * |theta_i| (the sharpness measures' adaptive scale), the same values held
    or streamed block by block; its default ignore rule is ``none`` (every tensor), the others'
    ``biasbn``, on the command line too."""
    from landscape.cli import surf as surf_cli
    from landscape.directions.options import Directions
    from landscape.directions.sampling import SeededDirection, random_direction

    origin = origin_of()
    d = random_direction(origin, "elementwise", "none", torch.Generator().manual_seed(4))
    raw = raw_like(origin, seed=4)
    assert all(torch.equal(d[k], raw[k] * origin[k].abs()) for k in origin)
    big = {"w": torch.randn(600, 700), "b": torch.randn(7)}  # streamed in row blocks
    held = random_direction(big, "elementwise", "none", torch.Generator().manual_seed(5))
    lazy = SeededDirection(big, "elementwise", "none", torch.Generator().manual_seed(5))
    out = torch.empty(big["w"].numel())
    assert torch.equal(torch.cat([b.clone() for _, b in lazy.blocks("w", out)]), held["w"])
    assert Directions().ignore == "biasbn" and Directions(norm="none").ignore == "biasbn"
    assert Directions(norm="elementwise").ignore == "none"
    assert Directions(norm=("filter", "elementwise")).ignore == ("biasbn", "none")
    assert Directions(norm="elementwise", ignore="biasbn").ignore == "biasbn"  # given: kept
    for argv, ignore in ((["--norm", "elementwise"], "none"), (["--norm", "filter"], "biasbn"),
                         (["--norm", "elementwise", "--ignore", "biasbn"], "biasbn"),
                         (["--xnorm", "elementwise"], ("none", "biasbn", "biasbn"))):
        cfg = surf_cli.config_from_args(surf_cli.build_parser().parse_args(argv), argv)
        assert cfg.directions.ignore == ignore, argv
