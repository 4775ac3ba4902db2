"""The one exception type that means "the user gave us something wrong", one-line messages, and the
checks of option values that raise it (every option object uses them, so a value is refused in one
wording everywhere)."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral


class LandscapeError(Exception):
    """A user-facing error: the CLIs print its message as one line and exit with code 2."""


class OutputExists(LandscapeError):
    """An output file that exists and is not to be replaced without being told so."""


class GridTooLarge(LandscapeError):
    """A grid of more points than a run computes without being told so."""


def one_line(message: object) -> str:
    """``message`` folded onto one line (HDF5 and torch messages often span several)."""
    return " ".join(str(message).split())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none (torch's and
    HDF5's messages often go on for pages)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def error_line(exc: BaseException) -> str:
    """One line for a failure of any kind: ``interrupted`` for Ctrl-C, else ``Type: message`` folded."""
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else one_line(f"{type(exc).__name__}: {exc}")


def is_int(value) -> bool:
    """An integer (Python's or numpy's), and not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)  # numpy's integers are Integral


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    if value not in choices:
        raise LandscapeError(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")


def check_per_axis(name: str, value, choices: Sequence[str]) -> str | tuple[str, ...]:
    """One setting for every axis (a string) or one per axis (a sequence of strings)."""
    values = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value]
    if not values:
        raise LandscapeError(f"`{name}` is empty: give one of {', '.join(choices)}, or one per axis")
    for v in values:
        check_choice(name, v, choices)
    return value if isinstance(value, str) else tuple(values)
