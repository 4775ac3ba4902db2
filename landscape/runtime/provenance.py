"""Where and with what a result was made: the provenance every output file records."""

from __future__ import annotations

import platform
import time

from landscape._version import __version__


def now() -> str:
    """The local time as every file of ours records it (ISO 8601 with the UTC offset)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def environment() -> dict:
    """The package versions, Python, host and time of this run (``landscape_version``,
    ``torch_version``, ``numpy_version``, ``h5py_version``, ``python_version``, ``hostname``,
    ``created``)."""
    import h5py
    import numpy as np
    import torch

    return {
        "landscape_version": __version__, "torch_version": torch.__version__, "numpy_version": np.__version__,
        "h5py_version": h5py.__version__, "python_version": platform.python_version(),
        "hostname": platform.node(), "created": now(),
    }
