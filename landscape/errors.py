"""The one exception type that means "the user gave us something wrong", and one-line messages."""


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
