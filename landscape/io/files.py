"""Writing files safely: atomic replacement, one writer per output, and clean-up after crashes.

- :func:`replacing` writes a temporary file beside the target and renames it over the target, so
  a crash at any moment leaves the old file or the new one, never half of one. Temporaries are
  named ``.NAME.tmp.HOST.PID``: start-up removes only those whose writer is dead
  (:func:`remove_stale_temporaries`), never one that a live run on this or another host writes.
- :class:`OutputLock` holds an OS lock (``fcntl.flock``) on ``.NAME.lock`` beside an output for a
  run's whole life; a second run on the same output is refused at once, naming the owner.
  :func:`owned_output` is what every command that writes a file does first: lock it, then refuse
  it if it exists (unless told to replace it).
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from landscape.errors import LandscapeError, OutputExists, one_line

HOST = socket.gethostname().replace(".", "_") or "host"
OWNER_WAIT = 5.0  # seconds a refused run waits for the lock's owner to record itself (it does so at once)


def check_name(path: str | os.PathLike) -> str:
    """Refuse an output whose name is not UTF-8 (bytes that Python holds as surrogates): our files
    record their own paths and outputs' names, which HDF5 keeps as UTF-8; return the path."""
    path = os.fspath(path)
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise LandscapeError(f"output {path!r} is not a UTF-8 file name (the files record their paths); "
                             "choose another name") from None
    return path


def check_folder(path: str | os.PathLike) -> str:
    """Refuse an output whose name is not UTF-8 (:func:`check_name`) or whose folder is missing or
    read-only; return the folder."""
    check_name(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LandscapeError(f"output folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise LandscapeError(f"output folder {folder!r} is not writable")
    return folder


def check_output(path: str | os.PathLike, overwrite: bool = True) -> str:
    """Refuse, before any work, an output that cannot be written: its folder missing or read-only,
    the path a folder, a name that is not UTF-8, or (unless ``overwrite``) a file already there
    (:class:`OutputExists`)."""
    path = os.fspath(path)
    check_folder(path)
    if os.path.isdir(path):
        raise LandscapeError(f"output {path!r} is a folder")
    if os.path.exists(path) and not overwrite:
        raise OutputExists(f"{path!r} exists")
    return path


def _temporary(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.tmp.{HOST}.{os.getpid()}")


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path`` to write; it replaces ``path`` when the block ends
    without error and is removed otherwise. An ``OSError`` becomes a :class:`LandscapeError`
    naming ``path`` (not the temporary)."""
    path = os.fspath(path)
    tmp = _temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # HDF5's messages name the file it opened: the temporary, not the output
        reason = one_line(exc.strerror or exc).replace(tmp, path).replace(os.path.basename(tmp), os.path.basename(path))
        raise LandscapeError(f"cannot write {path!r}: {reason}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_all(fd: int, data) -> None:
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view[: 1 << 30]):]


def write_bytes(path: str | os.PathLike, data) -> str:
    """Write ``data`` (bytes) to ``path`` through :func:`replacing`, synced to disk; return the path.

    Everything we write goes to disk through here as plain writes (HDF5 files are built in memory,
    checkpoints serialized first), so a full disk is an ``OSError`` (ENOSPC) that ends as one
    :class:`LandscapeError` with the temporary removed, never a crash inside a library that cannot
    write."""
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    return os.fspath(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> str:
    """Write ``text`` to ``path`` through :func:`write_bytes`; return the path."""
    return write_bytes(path, text.encode(encoding))


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from /proc; None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/stat", encoding="ascii") as f:
            boot = next(float(t.split()[1]) for t in f if t.startswith("btime"))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` runs and could have written a file last modified at ``since``: a
    killed writer not yet reaped (a zombie) is dead, and so is a pid now reused by a process that
    started after the file was written."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _zombie(pid):
        return False
    started = _started(pid) if since is not None else None
    return not (started is not None and started > since + 2.0)  # /proc's start time is in clock ticks


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporaries of ``path`` whose writer, on this host, is dead (killed mid-write).

    Temporaries of live processes and of other hosts (a shared file system) are left alone.
    Returns the paths removed.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    removed = []
    try:
        entries = os.listdir(folder)
    except OSError:
        return removed
    prefix = f".{name}.tmp"
    for entry in entries:
        if not entry.startswith(prefix):
            continue
        rest = entry[len(prefix):]
        if rest.startswith("."):  # .tmp.HOST.PID
            host, _, pid = rest[1:].rpartition(".")
        else:  # the older .tmpPID, written on this host
            host, pid = HOST, rest
        try:
            since = os.path.getmtime(os.path.join(folder, entry))
        except OSError:
            continue
        if host != HOST or not pid.isdigit() or _alive(int(pid), since):
            continue
        try:
            os.remove(os.path.join(folder, entry))
            removed.append(entry)
        except OSError:
            pass
    return removed


class OutputLock:
    """An exclusive OS lock on ``.NAME.lock`` beside ``path``, held until :meth:`release`.

    The lock file records the owner as one line, ``pid PID on HOST``; a second :meth:`acquire`
    anywhere (another process, another host on a file system with working ``flock``) fails at once
    with a :class:`LandscapeError` that names them. The owner writes that line just after taking
    the lock, so a run refused in between waits for it (up to :data:`OWNER_WAIT` seconds; a line
    left by a dead owner on this host does not count) and never reports an unknown owner. The lock
    dies with its process, so a killed run never leaves an output locked. (The small lock file
    itself stays: removing it could let two runs lock different files of one name.)
    """

    def __init__(self, path: str | os.PathLike):
        folder, name = os.path.split(os.path.abspath(os.fspath(path)))
        self.path = os.fspath(path)
        self.lock_path = os.path.join(folder, f".{name}.lock")
        self._fd: int | None = None

    def acquire(self) -> OutputLock:
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LandscapeError(f"cannot write beside {self.path!r}: {one_line(exc.strerror or exc)}") from None
        try:
            taken = _try_lock(fd)
            deadline = time.monotonic() + OWNER_WAIT
            owner = None if taken else _owner(fd)
            while not taken and owner is None and time.monotonic() < deadline:
                time.sleep(0.01)  # the owner is between taking the lock and recording itself
                taken = _try_lock(fd)  # or it has just released it
                owner = None if taken else _owner(fd)
        except OSError as exc:
            os.close(fd)
            raise LandscapeError(f"cannot lock {self.path!r}: {one_line(exc.strerror or exc)}") from None
        if not taken:
            os.close(fd)
            owner = owner or f"which has not recorded its pid in {OWNER_WAIT:g} s"
            raise LandscapeError(f"{self.path!r} is being written by another run ({owner}); wait for it to finish "
                                 "or choose another output")
        record = f"pid {os.getpid()} on {socket.gethostname()}\n".encode()
        try:
            os.pwrite(fd, record, 0)  # whole line first, then the tail of a longer old record cut off
            os.ftruncate(fd, len(record))
        except OSError as exc:  # a full disk: the lock is ours, but say so rather than run on
            os.close(fd)
            raise LandscapeError(f"cannot write beside {self.path!r}: {one_line(exc.strerror or exc)}") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)  # a lock nobody holds names nobody
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    """Take the exclusive ``flock`` on ``fd`` without waiting: True, or False while another holds it
    (any other failure raises its ``OSError``)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _owner(fd: int) -> str | None:
    """The owner a lock file records (``pid PID on HOST``), or None while there is none: an empty
    or half-written line, or the line of a dead process of this host (a killed earlier owner)."""
    line, newline, _ = os.pread(fd, 512, 0).decode(errors="replace").partition("\n")
    words = line.split()
    if not newline or len(words) != 4 or words[0] != "pid" or words[2] != "on" or not words[1].isdigit():
        return None
    if words[3] == socket.gethostname() and not _alive(int(words[1])):
        return None
    return line.strip()
@contextmanager
def owned_output(*paths: str | os.PathLike, overwrite: bool = False) -> Iterator[tuple[str, ...]]:
    """One writer per output: lock every path of ``paths`` (:class:`OutputLock`) for the block,
    then refuse (:func:`check_output`) an output that cannot be written or, unless ``overwrite``,
    exists. Locking first means that of two runs started together, one is refused as "being
    written by another run", never both allowed because neither file existed yet."""
    locks: list[OutputLock] = []
    for path in paths:
        check_output(path, overwrite)  # before a lock file is made beside it
    try:
        for path in paths:
            locks.append(OutputLock(path).acquire())
        yield tuple(check_output(p, overwrite) for p in paths)
    finally:
        for lock in locks:
            lock.release()
