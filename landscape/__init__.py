"""landscape: loss landscapes of neural networks.

    import landscape as ls
    surf = ls.surface(model, loader, ls.Grid(x=(-1, 1, 41), y=(-1, 1, 41)), output=ls.Output("surface.h5"))
    ls.plot.contour(ax, surf)

Everything is loaded on first use, so ``import landscape`` is cheap and does not import torch.
"""

from __future__ import annotations

import importlib

from landscape._version import __version__

# public name -> the module that defines it
_EXPORTS = {
    "surface": "landscape.engine.surface", "Directions": "landscape.directions.options",
    "EvalOptions": "landscape.evaluation.options", "Output": "landscape.engine.options",
    "surf": "landscape.jobs.surf", "SurfConfig": "landscape.jobs.surf",
    "Surface": "landscape.io.surface_file", "read_surface": "landscape.io.surface_file",
    "write_surface": "landscape.io.surface_file", "DamagedFile": "landscape.io.h5",
    "Dataset": "landscape.data.datasets", "load_dataset": "landscape.data.datasets",
    "interpolation_direction": "landscape.directions.sampling", "load_directions": "landscape.io.directions_file",
    "normalize_": "landscape.directions.sampling", "random_direction": "landscape.directions.sampling",
    "random_directions": "landscape.directions.sampling", "save_directions": "landscape.io.directions_file",
    "LandscapeError": "landscape.errors",
    "Evaluator": "landscape.evaluation.evaluator", "Evaluation": "landscape.evaluation.evaluator",
    "Metric": "landscape.evaluation.metrics",
    "Axis": "landscape.space.grid", "Grid": "landscape.space.grid", "parse_axis": "landscape.space.grid",
    "build_model": "landscape.models", "list_models": "landscape.models",
    "load_into_": "landscape.io.checkpoint", "load_state_dict": "landscape.io.checkpoint",
    "load_model": "landscape.jobs.network",
    "Mover": "landscape.space.params", "live_tensors": "landscape.space.params", "snapshot": "landscape.space.params",
    "Trajectory": "landscape.io.trajectory_file", "path_extent": "landscape.io.trajectory_file",
    "pca_directions": "landscape.directions.pca", "read_trajectory": "landscape.io.trajectory_file",
    "write_trajectory": "landscape.io.trajectory_file",
    "TrainConfig": "landscape.jobs.train", "train": "landscape.jobs.train", "TrainHook": "landscape.training",
    "Loop": "landscape.training", "LoopConfig": "landscape.training", "RunFolder": "landscape.training",
    "quantize_": "landscape.quant", "QuantConfig": "landscape.quant",
    "DataSpec": "landscape.data.datasets",
}
_SUBMODULES = ("plot", "hessian", "prune", "quant", "models", "training", "sharpness", "connect")

__all__ = ["__version__", *sorted(_EXPORTS), *_SUBMODULES]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"landscape.{name}")
    else:
        raise AttributeError(f"module 'landscape' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
