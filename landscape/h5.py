"""Our HDF5 files, one concept in one place: every file of ours (surfaces, directions, trajectories,
Hessian summaries) is written whole to a temporary that then replaces it, carries HDF5's
fletcher32 checksum on every numeric dataset and a SHA-256 over all its datasets and attributes
(``content_sha256``), and is verified when it is opened.

- :func:`writing` opens a temporary for a new file and seals and renames it on success;
- :func:`dataset` writes an array (chunked, fletcher32); :func:`attr` encodes an attribute value
  (booleans as 0/1, mappings as JSON, None as ""), :func:`plain` decodes one;
- :func:`opened` opens a file to read and verifies it; whatever fails inside ends as one
  :class:`DamagedFile` (a file of ours) or one "not a readable ..." line (another tool's).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import h5py
import numpy as np

from landscape.errors import LandscapeError, one_line
from landscape.files import write_bytes


class DamagedFile(LandscapeError):
    """A file of ours that fails its checksums or lacks a part: it is damaged, not another kind."""

    def __init__(self, path: str, reason: str | None = None):
        super().__init__(path if reason is None else f"{path!r} is damaged ({one_line(reason)})")


def _canon(v) -> bytes:
    if isinstance(v, bytes):
        return b"s" + v
    if isinstance(v, str):
        return b"s" + v.encode()
    arr = np.asarray(v)
    if arr.dtype.kind in "OSU":
        return b"a" + "\x1f".join(x.decode() if isinstance(x, bytes) else str(x) for x in arr.ravel()).encode()
    return b"n" + str(arr.dtype).encode() + str(arr.shape).encode() + arr.tobytes()


def content_checksum(f: h5py.File) -> str:
    """SHA-256 over every dataset (name, dtype, shape, bytes) and attribute of an open file, except
    the ``content_sha256`` attribute itself."""
    h = hashlib.sha256()
    names: list[str] = []
    f.visit(names.append)
    for name in sorted(names):
        obj = f[name]
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            h.update(f"{name}|{data.dtype}|{data.shape}|".encode())
            h.update(_canon(data))
    for k in sorted(f.attrs):
        if k != "content_sha256":
            h.update(f"@{k}=".encode())
            h.update(_canon(f.attrs[k]))
    return h.hexdigest()


def seal(f: h5py.File) -> None:
    """Record the content checksum of an open file of ours."""
    f.attrs["content_sha256"] = content_checksum(f)


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[h5py.File]:
    """A new HDF5 file for ``path``: built in memory, sealed (:func:`seal`), then written with
    :func:`landscape.files.write_bytes` to a temporary that replaces ``path``, only when the block
    ends without an error. The HDF5 library never writes to disk itself, so a full disk is one
    clean error (it crashed HDF5 when it ran out of space mid-file)."""
    try:
        with h5py.File(f"in-memory:{os.fspath(path)}", "w", driver="core", backing_store=False) as f:
            yield f
            seal(f)
            f.flush()
            image = f.id.get_file_image()
    except OSError as exc:
        raise LandscapeError(f"cannot write {os.fspath(path)!r}: {one_line(exc.strerror or exc)}") from None
    write_bytes(path, image)


def attr(v):
    """A value as an HDF5 attribute: booleans as 0/1, None as "", mappings as JSON, string arrays as HDF5 strings."""
    if isinstance(v, bool | np.bool_):
        return int(v)
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, default=str)
    arr = np.asarray(v)
    if arr.dtype.kind in "UO":
        return arr.astype(h5py.string_dtype())
    return arr if arr.ndim else v


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One row per chunk, so damage costs one row and --repair can read around it."""
    if len(shape) == 1:
        return (max(1, min(shape[0], 4096)),)
    return (1,) * (len(shape) - 1) + (shape[-1],)


def dataset(f, name: str, data) -> h5py.Dataset:
    """``data`` as dataset ``name`` of ``f`` (a file or group); numeric arrays chunked by rows with fletcher32."""
    data = np.asarray(data)
    if data.ndim == 0 or data.size == 0 or data.dtype.kind not in "fiub":
        return f.create_dataset(name, data=data)
    return f.create_dataset(name, data=data, chunks=_chunks(data.shape), fletcher32=True)


def plain(v):
    """An HDF5 attribute as plain Python: str for bytes, lists for arrays, numbers for scalars."""
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()] if v.dtype.kind in "OS" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


@contextmanager
def opened(path: str, what: str, ours: Callable[[h5py.File], bool]) -> Iterator[tuple[h5py.File, bool]]:
    """An HDF5 file opened to read, and whether it is one of ours (``ours(file)``). A file of ours
    that holds a content checksum is verified first. Whatever fails inside the block ends as one
    :class:`LandscapeError`: :class:`DamagedFile` for a file of ours (a damaged HDF5 file raises
    any kind of error), "not a readable ..." for another tool's."""
    if not os.path.isfile(path):
        raise LandscapeError(f"{what} {path!r} does not exist")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise LandscapeError(f"{path!r} is not a readable HDF5 file ({one_line(exc)})") from None
    try:
        mine = ours(f)
    except Exception:  # noqa: BLE001 - unreadable attributes: not provably ours
        mine = False
    try:
        with f:
            if "content_sha256" in f.attrs and plain(f.attrs["content_sha256"]) != content_checksum(f):
                raise DamagedFile(path, "its contents do not match their checksum")
            yield f, mine
    except LandscapeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file raises any kind of error
        if mine:
            raise DamagedFile(path, str(exc)) from None
        raise LandscapeError(f"{path!r} is not a readable {what} ({one_line(exc)})") from None


