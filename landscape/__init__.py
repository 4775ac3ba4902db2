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
    "surface": "landscape.engine", "Directions": "landscape.engine", "EvalOptions": "landscape.engine",
    "Output": "landscape.engine",
    "compute_surface": "landscape.jobs.surface", "SurfaceConfig": "landscape.jobs.surface",
    "Surface": "landscape.surface_file", "read_surface": "landscape.surface_file",
    "write_surface": "landscape.surface_file", "DamagedFile": "landscape.surface_file",
    "Dataset": "landscape.data", "load_dataset": "landscape.data",
    "interpolation_direction": "landscape.directions", "load_directions": "landscape.directions_file",
    "normalize_": "landscape.directions", "random_direction": "landscape.directions",
    "random_directions": "landscape.directions", "save_directions": "landscape.directions_file",
    "LandscapeError": "landscape.errors",
    "Evaluator": "landscape.evaluate", "Evaluation": "landscape.evaluate",
    "Metric": "landscape.metrics",
    "Axis": "landscape.grid", "Grid": "landscape.grid", "parse_axis": "landscape.grid",
    "build_model": "landscape.models", "list_models": "landscape.models",
    "load_into_": "landscape.checkpoint", "load_state_dict": "landscape.checkpoint",
    "load_model": "landscape.jobs.network",
    "Mover": "landscape.params", "live_tensors": "landscape.params", "snapshot": "landscape.params",
    "Trajectory": "landscape.trajectory", "path_extent": "landscape.trajectory",
    "pca_directions": "landscape.trajectory", "read_trajectory": "landscape.trajectory",
    "write_trajectory": "landscape.trajectory",
    "TrainConfig": "landscape.jobs.train", "train": "landscape.jobs.train", "TrainHook": "landscape.training",
    "Loop": "landscape.training", "LoopConfig": "landscape.training", "RunFolder": "landscape.training",
    "quantize_": "landscape.quant", "QuantConfig": "landscape.quant",
    "DataSpec": "landscape.data",
}
_SUBMODULES = ("plot", "hessian", "prune", "quant", "models", "data", "training", "parallel", "sharpness",
               "connect")

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
