"""landscape: loss-landscape visualization for PyTorch networks."""

__version__ = "0.1.0"

from landscape.checkpoint import load_into_, load_state_dict  # noqa: E402
from landscape.compute import SurfaceConfig, compute_surface  # noqa: E402
from landscape.data import Dataset, load_dataset  # noqa: E402
from landscape.directions import (  # noqa: E402
    interpolation_direction,
    load_directions,
    normalize_,
    random_direction,
    random_directions,
    save_directions,
)
from landscape.errors import LandscapeError  # noqa: E402
from landscape.evaluate import Evaluator  # noqa: E402
from landscape.grid import Axis, Grid, parse_axis  # noqa: E402
from landscape.models import build_model, list_models  # noqa: E402
from landscape.params import Mover, live_tensors, snapshot  # noqa: E402
from landscape.surface import Surface, read_surface, write_surface  # noqa: E402
from landscape.trajectory import (  # noqa: E402
    Trajectory,
    path_extent,
    pca_directions,
    read_trajectory,
    write_trajectory,
)

__all__ = [
    "Axis", "Dataset", "Evaluator", "Grid", "LandscapeError", "Mover", "Surface", "SurfaceConfig",
    "Trajectory", "build_model", "compute_surface", "interpolation_direction", "list_models",
    "live_tensors", "load_dataset", "load_directions", "load_into_", "load_state_dict",
    "normalize_", "parse_axis", "path_extent", "pca_directions", "random_direction",
    "random_directions", "read_surface", "read_trajectory", "save_directions", "snapshot",
    "write_surface", "write_trajectory",
]
