"""The options of a run that writes a grid's values to a file: :class:`Output` (where, resume, repair,
flushes, provenance); and where a surface's own directions go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from landscape.errors import LandscapeError, is_int

MAX_POINTS = 1_000_000


@dataclass(frozen=True)
class Output:
    """Where the surface goes and how the run writes it. ``path``: the surface file (None: none;
    resumed when it exists and matches; a damaged one is refused, or with ``repair`` its verified
    points are kept; ``overwrite`` replaces one of another configuration). ``chunk_size``: points
    per work unit under MPI; ``flush_seconds``: how often the file is written; ``max_points``: a
    larger grid is refused with its estimated time (None: no limit). ``provenance``: attributes
    recorded in the file. ``progress``: progress lines (True, named after what is computed; a name:
    named so, e.g. "minimum 2 (b.pt), 1D curve"; False: none). ``directions_file``: where the
    directions are written (None: ``PATH.dirs.h5``; "": not written, e.g. when they came from a
    file named in ``provenance``).
    ``arrays``: arrays stored with the surface (e.g. ``sample_indices``)."""

    path: str | os.PathLike | None = None
    overwrite: bool = False
    repair: bool = False
    chunk_size: int = 1
    flush_seconds: float = 2.0
    max_points: int | None = MAX_POINTS
    progress: bool | str = True
    provenance: Mapping | None = None
    directions_file: str | None = None
    arrays: Mapping[str, np.ndarray] | None = None

    def __post_init__(self):
        if self.path is not None:
            if not isinstance(self.path, str | os.PathLike):
                raise LandscapeError(f"`path` must be a file name, got {self.path!r}")
            object.__setattr__(self, "path", os.fspath(self.path))
            if self.path == "":
                raise LandscapeError("the output file name is empty (`path`)")
        for name in ("overwrite", "repair"):
            if not isinstance(getattr(self, name), bool):
                raise LandscapeError(f"`{name}` must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.progress, bool | str) or self.progress == "":
            raise LandscapeError(f"`progress` must be True, False or the name of the progress lines, got "
                                 f"{self.progress!r}")
        if not is_int(self.chunk_size) or self.chunk_size < 1:
            raise LandscapeError(f"`chunk_size` must be a positive integer, got {self.chunk_size!r}")
        if not isinstance(self.flush_seconds, int | float) or not 0 <= self.flush_seconds < float("inf"):
            raise LandscapeError(f"`flush_seconds` must be a non-negative number, got {self.flush_seconds!r}")
        if self.max_points is not None and (not is_int(self.max_points) or self.max_points < 1):
            raise LandscapeError(f"`max_points` must be a positive integer or None, got {self.max_points!r}")
        for name in ("provenance", "arrays"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Mapping):
                raise LandscapeError(f"`{name}` must be a dict, got {type(getattr(self, name)).__name__}")
        if self.directions_file is not None and not isinstance(self.directions_file, str):
            raise LandscapeError(f"`directions_file` must be a file name, \"\" or None, got {self.directions_file!r}")


def directions_path(out: str) -> str:
    """Where a surface's own directions go: ``surface.h5`` -> ``surface.dirs.h5``."""
    root, ext = os.path.splitext(out)
    return f"{root}.dirs{ext or '.h5'}"
