"""What every command shares: one-line errors with exit code 2, and grid options that start with '-'."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

from landscape.errors import LandscapeError, one_line
from landscape.parallel import launcher_rank

GRID_OPTIONS = ("--x", "--y")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes are :class:`LandscapeError`: one line, exit code 2."""

    def error(self, message: str):  # argparse's default prints the usage block, then exits
        raise LandscapeError(f"{message} (see {self.prog} --help)")


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def non_negative(text: str) -> int:
    """An argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


positive.__name__ = "positive integer"  # argparse names the type in its message
non_negative.__name__ = "non-negative integer"


def join_negative_values(argv: Sequence[str], options: Sequence[str] = GRID_OPTIONS) -> list[str]:
    """Turn ``--x -1:1:51`` into ``--x=-1:1:51`` so argparse does not read ``-1:1:51`` as an option."""
    out: list[str] = []
    it = iter(argv)
    for token in it:
        if token in options:
            value = next(it, None)
            out.append(token if value is None else f"{token}={value}")
        else:
            out.append(token)
    return out


def say(line: str) -> None:
    """One whole line on stderr in one write, so lines of several MPI ranks never interleave."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_cli(prog: str, body: Callable[[], int], hints: Mapping[str, str] | None = None) -> int:
    """Run ``body``; a :class:`LandscapeError` becomes one stderr line (multi-line messages folded)
    and exit code 2, Ctrl-C ``interrupted`` and exit code 130. ``hints`` maps the name of an error
    class (``DamagedFile``, ``ConfigMismatch``) to what the user can do about it with this command,
    in its flags; it is added to the message.

    Under MPI every rank meets the same bad input; only rank 0 reports it.
    """
    import signal

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from now on: KeyboardInterrupt
    try:
        return body()
    except LandscapeError as exc:
        if launcher_rank() == 0:
            hint = (hints or {}).get(type(exc).__name__)
            say(f"{prog}: error: {one_line(exc)}" + (f"; {hint}" if hint else ""))
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        if launcher_rank() == 0:
            say(f"{prog}: interrupted")
        return 130
