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

import atexit
import ctypes
import hashlib
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import h5py
import numpy as np

from landscape.errors import LandscapeError, one_line
from landscape.io.files import replacing, write_bytes


class DamagedFile(LandscapeError):
    """A file of ours that fails its checksums or lacks a part: it is damaged, not another kind."""

    def __init__(self, path: str, reason: str | None = None):
        super().__init__(path if reason is None else f"{path!r} is damaged ({one_line(reason)})")


STREAMED = 1 << 22  # a numeric dataset of more values is read (and hashed) in blocks of rows
IN_MEMORY = 64 << 20  # bytes: a file at most this large is built in memory, a larger one on disk


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
        if isinstance(obj, h5py.Dataset) and obj.ndim and obj.dtype.kind in "fiub" and obj.size > STREAMED:
            h.update(f"{name}|{obj.dtype}|{obj.shape}|".encode())  # as below, the bytes read in row blocks
            h.update(b"n" + str(obj.dtype).encode() + str(obj.shape).encode())
            rows = max(1, STREAMED // max(1, obj.size // obj.shape[0]))
            for start in range(0, obj.shape[0], rows):
                h.update(obj[start:start + rows].tobytes())
        elif isinstance(obj, h5py.Dataset):
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
def writing(path: str | os.PathLike, size: int = 0) -> Iterator[h5py.File]:
    """A new HDF5 file for ``path``: built in memory, sealed (:func:`seal`), then written with
    :func:`landscape.io.files.write_bytes` to a temporary that replaces ``path``, only when the block
    ends without an error. The HDF5 library never writes to disk itself, so a full disk is one
    clean error (it crashed HDF5 when it ran out of space mid-file). A file expected to be larger
    than ``IN_MEMORY`` (``size``: its data's bytes; a large model's directions) is written by HDF5
    to the temporary itself, so that it is never held in memory whole."""
    if size > IN_MEMORY:
        try:
            with replacing(path) as tmp, h5py.File(tmp, "w") as f:
                yield f
                seal(f)
        except OSError as exc:
            raise LandscapeError(f"cannot write {os.fspath(path)!r}: {one_line(exc.strerror or exc)}") from None
        return
    try:
        with h5py.File(f"in-memory:{os.fspath(path)}", "w", driver="core", backing_store=False) as f:
            yield f
            seal(f)
            f.flush()
            image = f.id.get_file_image()
    except OSError as exc:
        raise LandscapeError(f"cannot write {os.fspath(path)!r}: {one_line(exc.strerror or exc)}") from None
    write_bytes(path, image)


def utf8(text: str) -> str:
    """``text`` as HDF5 can store it (UTF-8): a file name of bytes that are not UTF-8 (Python holds
    them as surrogates) with those bytes written ``\\xe9``, as Python writes bytes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def attr(v):
    """A value as an HDF5 attribute: booleans as 0/1, None as "", mappings as JSON, string arrays as
    HDF5 strings (every string as UTF-8, :func:`utf8`)."""
    if isinstance(v, bool | np.bool_):
        return int(v)
    if v is None:
        return ""
    if isinstance(v, str):
        return utf8(str(v))
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, default=str)
    arr = np.asarray(v)
    if arr.dtype.kind in "UO":
        return np.vectorize(lambda x: utf8(str(x)), otypes=[object])(arr).astype(h5py.string_dtype())
    return arr if arr.ndim else v


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """One row per chunk, so damage costs one row and --repair can read around it."""
    if len(shape) == 1:
        return (max(1, min(shape[0], 4096)),)
    return (1,) * (len(shape) - 1) + (shape[-1],)


def empty_dataset(f, name: str, shape: tuple[int, ...], dtype="<f4") -> h5py.Dataset:
    """An empty numeric dataset laid out as :func:`dataset` lays one out, to be filled in parts."""
    return f.create_dataset(name, shape=tuple(shape), dtype=dtype, chunks=_chunks(tuple(shape)), fletcher32=True)


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


@dataclass(frozen=True)
class Probe:
    """What reading a whole HDF5 file in the reader process found: ``status`` "ok",
    "unopenable" (not an HDF5 file), "unreadable" (an error inside), "crashed" (the HDF5
    library took the reader down) or "hung" (it did not finish in :func:`read_limit` seconds:
    damaged metadata can make the library loop); ``verified``: its content checksum matched
    (None: it has none); ``reason``: the error's first line."""

    status: str
    verified: bool | None = None
    reason: str = ""


READ_LIMIT_S = 30.0  # seconds the reader may take for any file, plus one per READ_RATE bytes
READ_RATE = 4 << 20  # bytes per second: 60 times slower than a busy 2-core machine reads our files from its cache


def read_limit(size: int) -> float:
    """Seconds the reader child may take to read a file of ``size`` bytes before it is ended and
    the file called damaged: ``READ_LIMIT_S + size / READ_RATE`` (30 s, plus 1 s per 4 MiB)."""
    return READ_LIMIT_S + max(0, size) / READ_RATE


def _examine(path: str) -> Probe:
    """Open ``path``, touch every attribute of every object (where damaged metadata crashes the
    library) and every dataset (the content checksum reads them all)."""
    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001 - any failure to open: not an HDF5 file we can read
        return Probe("unopenable", reason=one_line(exc))
    try:
        with f:
            list(f.attrs), list(f)  # the names that decide whether a file is ours, first
            for k in f.attrs:
                f.attrs[k]
            f.visititems(lambda name, obj: [obj.attrs[k] for k in obj.attrs] and None)
            digest = content_checksum(f)
            stored = plain(f.attrs["content_sha256"]) if "content_sha256" in f.attrs else None
            return Probe("ok", None if stored is None else stored == digest)
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file raises any kind of error
        return Probe("unreadable", reason=one_line(exc))


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int, libc) -> None:
    """In the reader child: be killed when the parent ends, however it ends (``kill -9``
    included), even while the HDF5 library loops; leave at once if it has ended already."""
    if libc is not None:
        try:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (AttributeError, OSError):
            pass
    if os.getppid() != parent:
        os._exit(0)


class _Reader:
    """A child process, forked once and reused, that reads whole files for :func:`probe`: a file
    that crashes the HDF5 library kills the child, never the caller (the next probe forks a new
    one), and one that makes it loop is ended after :func:`read_limit` seconds. Paths go in and
    findings come out through pipes, one JSON line each. The child never outlives the caller: it
    is killed when the caller leaves (on Linux by the kernel, ``kill -9`` included; elsewhere at
    exit) and when a probe is interrupted; a Ctrl-C is the caller's to handle, not the child's."""

    def __init__(self):
        self.pid = 0
        self.lock = threading.Lock()

    def _start(self) -> None:
        import faulthandler
        import warnings

        try:
            libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
        except OSError:
            libc = None
        parent = os.getpid()
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        with warnings.catch_warnings(), _h5py_lock():  # no other thread holds h5py's lock in the child
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: the child only reads files
            pid = os.fork()
        if pid == 0:  # the child: serve until the parent goes, then leave without the parent's exit handlers
            try:
                _die_with_parent(parent, libc)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _close_all_but(down_r, up_w)  # a lock the caller holds must not live on in the reader
                faulthandler.disable()
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)  # a crash prints nothing
                with os.fdopen(down_r, "rb") as paths:
                    for line in paths:
                        found = _examine(json.loads(line))
                        _write_line(up_w, [found.status, found.verified, found.reason[:2000]])
            finally:
                os._exit(0)
        os.close(down_r)
        os.close(up_w)
        self.pid, self.owner, self.down, self.up = pid, parent, os.fdopen(down_w, "wb"), up_r

    def _close_pipes(self) -> None:
        self.pid = 0
        for close in (self.down.close, lambda: os.close(self.up)):
            try:
                close()
            except OSError:
                pass

    def _stop(self, kill: bool = False) -> int:
        """Close the pipes and reap the child (killed first with ``kill``); its wait status."""
        pid = self.pid
        if kill:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._close_pipes()
        try:
            return os.waitpid(pid, 0)[1]
        except ChildProcessError:
            return 0

    def close(self) -> None:
        """End the child, if this process started one (at exit: it must not outlive the caller)."""
        with self.lock:
            if self.pid and self.owner == os.getpid():
                self._stop(kill=True)

    def probe(self, path: str) -> Probe:
        with self.lock:
            if self.pid and self.owner != os.getpid():  # a forked copy of the caller: its own reader
                self.pid = 0
            if self.pid and not _running(self.pid):  # ended, and reaped, since (the thread that started it ended)
                self._close_pipes()
            if not self.pid:
                self._start()
            limit = read_limit(os.path.getsize(path) if os.path.isfile(path) else 0)
            try:
                self.down.write(json.dumps(path).encode() + b"\n")
                self.down.flush()
                line = _read_line(self.up, time.monotonic() + limit)
            except OSError:
                line = b""
            except BaseException:  # interrupted while it reads: it must not read on alone
                self._stop(kill=True)
                raise
            if line is None:
                self._stop(kill=True)
                return Probe("hung", reason=f"the HDF5 library did not finish reading it in {limit:.0f} s; "
                             "damaged metadata makes it loop")
            if line:
                status, verified, reason = json.loads(line)
                return Probe(status, verified, reason)
            status = self._stop()
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            return Probe("crashed", reason=f"the HDF5 library crashed reading it (signal {sig})" if sig else
                         "reading it failed in a child process")


def _running(pid: int) -> bool:
    """Whether our child ``pid`` still runs (reaped if it has ended)."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == 0
    except ChildProcessError:  # reaped already (SIGCHLD ignored)
        return False


def _read_line(fd: int, deadline: float) -> bytes | None:
    """One line from ``fd``; ``b""`` when the writer has gone, None when ``deadline`` passes first."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        block = os.read(fd, 65536)
        if not block:
            return b""
        data += block
    return data


def _close_all_but(*keep: int) -> None:
    """Close every file descriptor above 2 except ``keep`` (in a forked child: an ``flock`` lives
    as long as any descriptor of it, so the parent's output locks would outlive their release)."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 4096))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _write_line(fd: int, value) -> None:
    data = json.dumps(value).encode() + b"\n"
    while data:
        data = data[os.write(fd, data):]


@contextmanager
def _h5py_lock():
    try:
        from h5py._objects import phil
    except ImportError:  # pragma: no cover - h5py moved it
        yield
        return
    with phil:
        yield


_READER = _Reader()
atexit.register(_READER.close)


def probe(path: str) -> Probe:
    """Read all of the HDF5 file ``path`` (every attribute, every dataset, its content checksum)
    in a child process, so that a file whose damaged metadata crashes the HDF5 library (a
    segmentation fault) cannot take the caller down: a child killed by a signal is "crashed",
    and one that does not answer within :func:`read_limit` seconds (the library looping) is
    killed and the file "hung". The child is forked once per process and reused; a probe costs the reading plus about a
    millisecond of messages (the first one also the fork, 20-30 ms with torch loaded). Where
    there is no ``fork``, the file is read in-process."""
    if not hasattr(os, "fork"):
        return _examine(path)
    return _READER.probe(os.path.abspath(path))


MADE_BY = {"surface file": "landscape-surf", "trajectory file": "landscape-traj",
           "directions file": "landscape-surf", "Hessian summary file": "landscape-hessian",
           "pruning sensitivity file": "landscape-prune --sensitivity"}


def kind_of(f: h5py.File) -> str:
    """What a file of ours is, from what it holds: a key of :data:`MADE_BY`, or "" when unknown."""
    a = f.attrs
    if plain(a.get("kind", "")) == "pruning sensitivity":
        return "pruning sensitivity file"
    if plain(a.get("format", "")) == "landscape-hessian":
        return "Hessian summary file"
    if "proj_xcoord" in f:
        return "trajectory file"
    if "xcoordinates" in f:
        return "surface file"
    if "xdirection" in f:
        return "directions file"
    return ""


@contextmanager
def opened(path: str, what: str, ours: Callable[[h5py.File], bool]) -> Iterator[tuple[h5py.File, bool]]:
    """An HDF5 file opened to read, and whether it is one of ours (``ours(file)``). The file is
    first read whole in a child process (:func:`probe`): a file that crashes the HDF5 library, or
    that it does not finish reading in :func:`read_limit` seconds, is damaged, not the end (or the
    hang) of the process, and a file of ours is verified against its content
    checksum there. Whatever fails ends as one :class:`LandscapeError`: :class:`DamagedFile` for
    a file of ours or one that crashes the library (a damaged HDF5 file raises any kind of error),
    "not a readable ..." for another tool's."""
    if not os.path.isfile(path):
        raise LandscapeError(f"{what} {path!r} does not exist")
    found = probe(path)
    if found.status in ("crashed", "hung"):
        raise DamagedFile(path, found.reason)
    if found.status == "unopenable":
        raise LandscapeError(f"{path!r} is not a readable HDF5 file ({found.reason})")
    try:  # the child opened it and read its attributes before any error: safe here too
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise LandscapeError(f"{path!r} is not a readable HDF5 file ({one_line(exc)})") from None
    try:
        mine = ours(f)
    except Exception:  # noqa: BLE001 - unreadable attributes: not provably ours
        mine = False
    if found.status == "unreadable" or found.verified is False:
        f.close()
        reason = found.reason if found.status == "unreadable" else "its contents do not match their checksum"
        if mine or found.verified is False:
            raise DamagedFile(path, reason)
        raise LandscapeError(f"{path!r} is not a readable {what} ({reason})")
    try:
        with f:
            try:
                yield f, mine
            except LandscapeError:
                kind = kind_of(f) if found.verified else ""
                if kind and kind != what:  # intact, of another kind: say what it is, not "damaged"
                    raise LandscapeError(f"{path!r} is a {kind} ({MADE_BY[kind]}), not a {what}") from None
                raise
    except LandscapeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged HDF5 file raises any kind of error
        if mine:
            raise DamagedFile(path, str(exc)) from None
        raise LandscapeError(f"{path!r} is not a readable {what} ({one_line(exc)})") from None
