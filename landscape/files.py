"""Writing files so that a crash at any moment leaves the old file or the new one, never half."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from landscape.errors import LandscapeError


def _temporary(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp{os.getpid()}")


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write; it replaces ``path`` when the block ends
    without error and is removed otherwise. An ``OSError`` becomes a :class:`LandscapeError`."""
    path = os.fspath(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise LandscapeError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> str:
    """Write ``text`` to ``path`` through :func:`replacing`; return the path."""
    with replacing(path) as tmp, open(tmp, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return os.fspath(path)


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Delete the temporaries of ``path`` left by a writer killed mid-write (``kill -9``)."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    for entry in os.listdir(folder):
        if entry.startswith(f".{name}.tmp"):
            try:
                os.remove(os.path.join(folder, entry))
            except OSError:
                pass
