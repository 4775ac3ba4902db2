"""The options of a surface: few parameters, each option declared once in a frozen object that
refuses a bad value when it is built, with one line naming the parameter."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

import landscape as ls
from landscape.cli import surf as surf_cli
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.jobs.surf import SurfConfig
from landscape.space.grid import Axis, Grid


def test_surface_takes_at_most_14_parameters():
    params = inspect.signature(ls.surface).parameters
    assert len(params) <= 14, list(params)
    assert list(params)[:3] == ["model", "data", "grid"]
    assert all(p.kind is p.KEYWORD_ONLY for p in list(params.values())[3:])


@pytest.mark.parametrize("make, fragment", [
    (lambda: Grid((1, -1, 5)), "needs MIN < MAX"),
    (lambda: Grid("-1:1"), "is not MIN:MAX:NUM"),
    (lambda: Grid((-1, 1, 3), None, (0, 1, 2)), "a z axis needs a y axis"),
    (lambda: Grid((-1, 1, 1), (-1, 1, 3)), "at least 2 points"),
    (lambda: Directions(dir_type="biases"), "`dir_type` must be one of weights, states"),
    (lambda: Directions(norm="unit"), "`norm` must be one of filter"),
    (lambda: Directions(norm=("filter", "unit")), "`norm` must be one of"),
    (lambda: Directions(ignore="all"), "`ignore` must be one of"),
    (lambda: Directions(seed=-1), "`seed` must be a non-negative integer"),
    (lambda: Directions(semantics="new"), "`semantics` must be one of landscape, original"),
    (lambda: Directions(tensors={"w": torch.zeros(2)}), "`tensors` must be a list of directions"),
    (lambda: EvalOptions(loss_fn="hinge"), "`loss_fn` must be one of crossentropy, mse"),
    (lambda: EvalOptions(loss_fn=3), "`loss_fn` must be a name or a function"),
    (lambda: EvalOptions(accuracy_fn="top5"), "`accuracy_fn` must be a function, 'auto' or None"),
    (lambda: EvalOptions(batch_size=0), "`batch_size` must be a positive integer"),
    (lambda: EvalOptions(device="gpu0"), "device 'gpu0' is not a device"),
    (lambda: EvalOptions(precision="fp16"), "`precision` must be one of fp32, bf16"),
    (lambda: EvalOptions(compile="yes"), "`compile` must be True or False"),
    (lambda: EvalOptions(threads=0), "`threads` must be a positive integer"),
    (lambda: EvalOptions(bn_recompute=-2), "`bn_recompute` must be a non-negative number"),
    (lambda: EvalOptions(forward_fn="model"), "`forward_fn` must be a function"),
    (lambda: Output(""), "the output file name is empty (`path`)"),
    (lambda: Output(3), "`path` must be a file name"),
    (lambda: Output(overwrite="no"), "`overwrite` must be True or False"),
    (lambda: Output(chunk_size=0), "`chunk_size` must be a positive integer"),
    (lambda: Output(flush_seconds=-1.0), "`flush_seconds` must be a non-negative number"),
    (lambda: Output(max_points=0), "`max_points` must be a positive integer or None"),
    (lambda: Output(provenance=["a"]), "`provenance` must be a dict"),
    (lambda: SurfConfig(evaluation={"batch_size": 3}), "`evaluation` must be a landscape.EvalOptions"),
    (lambda: SurfConfig(directions=Directions(tensors=[{}])), "`directions` of a SurfConfig are made from"),
])
def test_each_option_object_refuses_a_bad_value_in_one_line(make, fragment):
    with pytest.raises(LandscapeError) as info:
        make()
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


def test_option_objects_are_frozen_and_normalize_their_values():
    grid = Grid(x=(-1, 1, 3), y="0:2:5")
    assert grid.y == Axis(0.0, 2.0, 5) and grid.shape == (5, 3)
    d = Directions(norm=["filter", "layer"])
    assert d.norm == ("filter", "layer") and Output("a.h5").path == "a.h5"
    for obj, name in ((grid, "x"), (d, "seed"), (EvalOptions(), "batch_size"), (Output(), "path")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, name, None)


def test_the_parser_defaults_are_the_objects_defaults():
    ns = surf_cli.build_parser().parse_args([])
    cfg = surf_cli.config_from_args(ns, [])
    default = SurfConfig()
    assert cfg.directions == default.directions and cfg.evaluation == default.evaluation
    assert dataclasses.replace(cfg.output, provenance=None) == default.output
    assert cfg.grid is None and cfg.metrics == default.metrics


def test_flags_become_option_objects():
    argv = surf_cli.join_negative_values(
        ["--model", "m.pt", "--arch", "mlp", "--x", "-2:2:5", "--y=-1:1:3", "--ynorm", "layer", "--seed", "4",
         "--batch-size", "32", "--precision", "bf16", "--out", "s.h5", "--overwrite", "--chunk-size", "3",
         "--allow-large", "--directions", "d.h5", "--no-progress"], surf_cli.GRID_OPTIONS)
    cfg = surf_cli.config_from_args(surf_cli.build_parser().parse_args(argv), argv)
    assert cfg.grid == Grid("-2:2:5", "-1:1:3")
    assert cfg.directions == Directions(norm=("filter", "layer", "filter"), ignore=("biasbn",) * 3, seed=4)
    assert cfg.evaluation == EvalOptions(loss_fn="crossentropy", device="cpu", batch_size=32, precision="bf16")
    assert cfg.output == Output("s.h5", overwrite=True, chunk_size=3, max_points=None, progress=False,
                                provenance={"command": "landscape-surf " + " ".join(argv)})
    assert cfg.directions_file == "d.h5" and cfg.model == "m.pt" and cfg.arch == "mlp"
