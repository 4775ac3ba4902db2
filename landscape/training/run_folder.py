"""The run folder of a training run: checkpoints, ``log.csv`` and resume.

A folder holds ``model_0.pt`` (the start), ``model_{E}.pt`` (kept epochs), ``resume.pt`` (the
newest state when it is not a kept epoch; removed when the run finishes) and ``log.csv`` (one row
per epoch). Every file is written to a temporary beside it and renamed over it, so a run killed at
any moment (``kill -9`` included) leaves whole files only and resumes from the newest one, bit for
bit on the CPU. One process writes a folder: an OS lock (``.NAME.lock`` beside it) refuses a
second run at once, and dies with its process.

The run's settings are saved as ``"args"`` in every checkpoint; a resumed run whose settings
(the keys in ``check``) differ is refused with the list of differences. ``upgrade`` reads the
settings an earlier version saved as the current version writes them (or refuses them in one line).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence

from landscape.errors import LandscapeError, is_int
from landscape.io.checkpoint import read_checkpoint_dict, save_checkpoint
from landscape.io.files import OutputLock, check_name, remove_stale_temporaries, replacing

CHECKPOINT_RE = re.compile(r"^model_(\d+)\.pt$")
RESUME_FILE = "resume.pt"
LOG_FILE = "log.csv"
LOG_COLUMNS = ["epoch", "lr", "train_loss", "train_err", "test_loss", "test_err", "seconds"]  # hooks may add


def read_saved(path: str) -> dict:
    """A training checkpoint, verified (its archive's CRC-32 and the checksum of its entries) and
    whole (a state dict, an integer epoch and the optimizer's state), or a :class:`LandscapeError`
    saying why not."""
    obj = read_checkpoint_dict(path, needs=("state_dict", "epoch", "optimizer"), what="landscape-train checkpoint")
    if not is_int(obj["epoch"]) or obj["epoch"] < 0:
        raise LandscapeError(f"cannot resume from {path!r}: its epoch is {obj['epoch']!r}, not a whole number")
    return obj


def _missing(path: str) -> list[str]:
    """The folders that making ``path`` creates, deepest first."""
    out, folder = [], os.path.abspath(path)
    while not os.path.exists(folder) and os.path.dirname(folder) != folder:
        out.append(folder)
        folder = os.path.dirname(folder)
    return out


class RunFolder:
    """The folder ``path`` of one training run, checked and locked for writing.

    ``settings`` (plain values) go into every checkpoint as ``"args"``; on ``resume`` those named
    in ``check`` (default: all) must equal the saved ones. Without ``resume`` a folder that
    already holds a run is refused, unless ``overwrite``: then its files are deleted, but only at
    :meth:`begin`, once the caller knows that its data and model work. ``own_files`` are other
    files of the run (deleted by ``overwrite`` too). ``upgrade(saved_args) -> args`` turns the
    settings of a run written by an earlier version into today's before they are compared (a
    :class:`LandscapeError` it raises refuses the resume). :attr:`resume_state` is the checkpoint to
    continue from, or None. Call :meth:`close` (or use ``with``) to release the lock.
    """

    def __init__(self, path: str | os.PathLike, settings: dict | None = None, *, resume: bool = False,
                 overwrite: bool = False, check: Sequence[str] | None = None, own_files: Sequence[str] = (),
                 upgrade: Callable[[dict], dict] | None = None):
        if resume and overwrite:
            raise LandscapeError("`resume` and `overwrite` exclude each other")
        self.path = os.fspath(path)
        self.settings = dict(settings or {})
        self.check = tuple(self.settings if check is None else check)
        self.own_files = tuple(own_files)
        self.upgrade = upgrade
        self.lock: OutputLock | None = None
        self.resume_state: dict | None = None
        self._doomed: list[str] = []
        self._open(resume, overwrite)

    # -- opening ---------------------------------------------------------------------------

    def _open(self, resume: bool, overwrite: bool) -> None:
        out = check_name(self.path)
        if os.path.exists(out) and not os.path.isdir(out):
            raise LandscapeError(f"`out` {out!r} exists and is not a folder")
        made = _missing(out)  # the folders made here: removed again when the run is refused
        try:
            os.makedirs(out, exist_ok=True)
            probe = os.path.join(out, ".write_test")
            with open(probe, "w"):
                pass
            os.remove(probe)
        except OSError as exc:
            raise LandscapeError(f"cannot write to `out` {out!r} ({exc.strerror or exc})") from None
        try:
            self.lock = OutputLock(out).acquire()
            self._check(resume, overwrite)
        except BaseException:
            self.close()
            for folder in made:  # deepest first; a refused run leaves no empty run folder
                try:
                    os.rmdir(folder)
                except OSError:
                    break
            raise

    def _check(self, resume: bool, overwrite: bool) -> None:
        out = self.path
        ours = [n for n in os.listdir(out) if CHECKPOINT_RE.match(n) or n in (RESUME_FILE, LOG_FILE, *self.own_files)]
        if overwrite:
            self._doomed, ours = [os.path.join(out, n) for n in ours], []
        latest = self.latest() if ours else None
        if ours and latest is None:
            # a run killed before it saved its start (a log, no checkpoint): nothing to keep or continue,
            # so with or without `resume` it starts again (its files go at begin())
            self._doomed = [os.path.join(out, n) for n in ours]
            return
        if ours and not resume:
            saved = read_saved(latest[1]).get("args", {}).get("epochs")
            state = "finished" if saved is not None and latest[0] >= saved else "unfinished"
            raise LandscapeError(f"{out!r} already holds a training run ({state}, last saved epoch {latest[0]}); "
                                 "pass `resume` to continue it or `overwrite` to start again")
        if latest is None:
            if resume:
                raise LandscapeError(f"`resume`: {out!r} holds no checkpoint to resume from; drop `resume` "
                                     "to start a new run there")
            return
        ckpt = read_saved(latest[1])
        saved = ckpt.get("args", {})
        if self.upgrade is not None:
            try:
                saved = self.upgrade(saved)
            except LandscapeError as exc:
                raise LandscapeError(f"cannot resume {out!r}: {exc}") from None
        differ = [k for k in self.check if k in saved and saved[k] != self.settings.get(k)]
        if differ:
            shown = ", ".join(f"{k} {saved[k]!r} -> {self.settings.get(k)!r}" for k in differ)
            raise LandscapeError(f"cannot resume {out!r} with different settings: {shown}")
        self.resume_state = ckpt

    # -- reading ---------------------------------------------------------------------------

    def checkpoints(self) -> dict[int, str]:
        """``{epoch: path}`` of the ``model_E.pt`` files in the folder."""
        found = {}
        if os.path.isdir(self.path):
            for name in os.listdir(self.path):
                m = CHECKPOINT_RE.match(name)
                if m:
                    found[int(m.group(1))] = os.path.join(self.path, name)
        return found

    def latest(self) -> tuple[int, str] | None:
        """The newest state: ``(epoch, path)`` of the highest model_E.pt, or of resume.pt if newer."""
        ckpts = self.checkpoints()
        best = max(ckpts.items()) if ckpts else None
        resume = os.path.join(self.path, RESUME_FILE)
        if os.path.isfile(resume):
            epoch = int(read_saved(resume)["epoch"])
            if best is None or epoch > best[0]:
                best = (epoch, resume)
        return best

    def read_log(self, upto: int) -> list[dict]:
        """The log's rows up to epoch ``upto`` (numbers as int/float)."""
        path = os.path.join(self.path, LOG_FILE)
        if not os.path.isfile(path):
            return []
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("epoch", "").isdigit()]
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v not in ("", None)}
                for r in rows if int(r["epoch"]) <= upto]

    # -- writing ---------------------------------------------------------------------------

    def begin(self) -> None:
        """Delete what ``overwrite`` replaces and the temporaries of killed writers (idempotent)."""
        for path in self._doomed:
            if os.path.exists(path):
                os.remove(path)
        self._doomed = []
        names = [n for n in os.listdir(self.path) if ".tmp" in n]
        for name in {n.split(".tmp")[0].lstrip(".") for n in names}:
            remove_stale_temporaries(os.path.join(self.path, name))

    def save(self, epoch: int, state: dict, keep: bool) -> str:
        """Write ``state`` (plus ``"args"``) as ``model_{epoch}.pt`` (``keep``) or ``resume.pt``."""
        path = os.path.join(self.path, f"model_{epoch}.pt" if keep else RESUME_FILE)
        return save_checkpoint(path, {**state, "args": self.settings})

    def write_log(self, rows: list[dict]) -> None:
        """Replace ``log.csv`` with ``rows`` (the standard columns first, then any hook's)."""
        columns = list(dict.fromkeys(LOG_COLUMNS + [k for r in rows for k in r]))
        with replacing(os.path.join(self.path, LOG_FILE)) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            for r in rows:
                w.writerow({k: r.get(k, "") for k in columns})

    def finish(self) -> None:
        """The run is complete: the newest model_E.pt holds the newest state; drop resume.pt."""
        path = os.path.join(self.path, RESUME_FILE)
        if os.path.isfile(path):
            os.remove(path)

    def close(self) -> None:
        """Release the folder's lock (also released when the process ends)."""
        if getattr(self, "lock", None) is not None:  # None too when __init__ failed early
            self.lock.release()
            self.lock = None

    def __del__(self) -> None:
        self.close()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["CHECKPOINT_RE", "LOG_COLUMNS", "LOG_FILE", "RESUME_FILE", "RunFolder", "read_saved"]
