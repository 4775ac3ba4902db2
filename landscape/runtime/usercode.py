"""Running the user's own code named on a command line: ``package.module:callable`` specs for
architectures, datasets and optimizers, with their failures turned into one-line errors."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

from landscape.errors import LandscapeError, one_line


def load_callable(spec: str, what: str) -> Callable:
    """Import ``package.module:callable`` (modules in the current folder included, as ``python -m``
    finds them); a bad spec is a :class:`LandscapeError`. Calling what it returns through
    :func:`call_user` turns the user code's own failures into one line too."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise LandscapeError(f"{what} {spec!r} is not of the form package.module:callable")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # after the installed packages: the current folder never shadows them
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        raise LandscapeError(f"cannot import {module_name!r} for {what} {spec!r}: it {_exited(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - the user's module may fail in any way while importing
        raise LandscapeError(f"cannot import {module_name!r} for {what} {spec!r}: {type(exc).__name__}: "
                             f"{one_line(exc)}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise LandscapeError(f"{module_name!r} has no callable {attr!r} ({what} {spec!r})")
    return fn


def _exited(exc: SystemExit) -> str:
    return f"called sys.exit({exc.code!r}) instead of returning" if exc.code is not None else \
        "called sys.exit() instead of returning"


def call_user(fn: Callable, what: str, *args, **kwargs):
    """Call a user's function; an exception in it, or a ``sys.exit`` (which would end the command
    with its code and no word), becomes a :class:`LandscapeError` naming it."""
    try:
        return fn(*args, **kwargs)
    except LandscapeError:
        raise
    except SystemExit as exc:
        raise LandscapeError(f"{what} {_exited(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - whatever the user's code raises is reported, not a traceback
        raise LandscapeError(f"{what} raised {type(exc).__name__}: {one_line(exc)}") from None
