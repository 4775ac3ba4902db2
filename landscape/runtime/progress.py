"""Progress bars: tqdm's on a terminal; in a log (stderr not a terminal), one whole line every few
seconds instead of hundreds of ``\\r`` updates. Every progress bar of the package is made here.

A stage of work whose items differ in cost (a comparison's jobs, a surface's points) is a
:class:`Work`: it names itself, shows the share of the cost done and the item last finished, takes
its ETA from the cost done per second (not from the items), and, when its estimated time is long
(:data:`ESTIMATE_SECONDS`), says so in one line as soon as it can estimate it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import IO

import numpy as np

LOG_SECONDS = 10.0  # how often a bar writes its line into a log ($LANDSCAPE_PROGRESS_SECONDS)
ESTIMATE_SECONDS = 60.0  # work estimated to take longer says so before it goes on ($LANDSCAPE_ESTIMATE_SECONDS)


def _seconds(variable: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(variable, default)))
    except ValueError:
        return default


def _log_seconds() -> float:
    return _seconds("LANDSCAPE_PROGRESS_SECONDS", LOG_SECONDS)


def _is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """The part of tqdm's interface the package uses, writing ``desc: n/total (pct %), rate, ETA``
    as one line at most every ``seconds`` (and at the end when ``leave``)."""

    def __init__(self, total: float | None = None, initial: float = 0, desc: str = "", unit: str = "it",
                 leave: bool = True, file: IO | None = None, seconds: float | None = None, weighted: bool = False):
        self.total, self.n, self.desc, self.unit, self.leave = total, initial, desc, unit, leave
        self.file = file if file is not None else sys.stderr
        self.seconds = _log_seconds() if seconds is None else seconds
        self.weighted = weighted  # n and total are costs: show the share done and the postfix, not n/total
        self.postfix = ""
        self._emitted: float | None = None  # n when the last line was written
        self._start_n, self._t0 = initial, time.monotonic()
        self._last = self._t0
        self._closed = False

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: " if self.desc else ""
        if self.weighted:  # "45 % (17/36 jobs; last: ...)"
            text += (f"{100 * self.n / self.total:.0f} %" if self.total else "") + (f" ({self.postfix})"
                                                                                    if self.postfix else "")
        else:
            text += f"{self.n}" + (f"/{self.total} ({100 * self.n / self.total:.0f} %)" if self.total else "")
            text += f", {rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0 else f", {1 / rate:.3g} s/{self.unit}"
            text += f", {self.postfix}" if self.postfix else ""
        if self.total and rate > 0 and self.n < self.total:
            text += f", about {_duration((self.total - self.n) / rate)} left"
        return text + f" ({_duration(elapsed)} elapsed)"

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text

    def _emit(self) -> None:
        self.file.write(self.line() + "\n")
        self.file.flush()
        self._last = time.monotonic()
        self._emitted = self.n

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.seconds:
            self._emit()

    def reset(self, total: int | None = None) -> None:
        self.n = self._start_n = 0
        self.total = total
        self._t0 = time.monotonic()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def write(self, text: str, file: IO | None = None) -> None:
        stream = file if file is not None else self.file
        stream.write(text + "\n")
        stream.flush()

    def close(self) -> None:
        if not self._closed and self.leave and self.n > self._start_n and self.n != self._emitted:
            self._emit()
        self._closed = True


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(total: float | None = None, initial: float = 0, desc: str = "", unit: str = "it", leave: bool = True,
                 file: IO | None = None, weighted: bool = False):
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a :class:`LineProgress`.
    ``weighted``: ``total`` and the updates are costs, shown as the share done (and the bar's
    postfix, e.g. the items done), not as counts."""
    file = file if file is not None else sys.stderr
    if not _is_terminal(file):
        return LineProgress(total, initial, desc, unit, leave, file, weighted=weighted)
    from tqdm import tqdm

    fmt = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]" if weighted else None  # ", 3/36 jobs"
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=file, dynamic_ncols=True,
                bar_format=fmt)


def duration(seconds: float) -> str:
    """``seconds`` as a person reads it: ``45 s``, ``3 min 05 s``, ``2 h 10 min``."""
    return _duration(seconds)


def announce(line: str, file: IO | None = None) -> None:
    """Write ``line`` whole, above a terminal's running bar (stderr by default)."""
    file = file if file is not None else sys.stderr
    if _is_terminal(file):
        from tqdm import tqdm

        tqdm.write(line, file=file)
    else:
        file.write(line + "\n")
        file.flush()


def is_long(seconds: float) -> bool:
    """Whether work estimated at ``seconds`` is long enough to say so before it goes on."""
    return seconds >= _seconds("LANDSCAPE_ESTIMATE_SECONDS", ESTIMATE_SECONDS)


class Work:
    """Progress through the items of one named stage whose costs differ (counted: forward passes,
    Hessian-vector products; or equal). ``costs[i]``: item i's cost; ``done``: the items finished
    before (a resumed file's); ``describe(i)``: what item i is (shown when it finishes); ``unit``:
    what the items are (``points``). Shows the share of
    the cost done, the items done, the last one, and an ETA from the cost done per second. When the
    first finished item puts the rest above :data:`ESTIMATE_SECONDS` (``workers``: processes
    sharing them), one line states the estimate (``estimate=False``: the caller stated
    one already). ``bound``: the costs are upper bounds (iterations that may stop early): the
    estimate says "at most"."""

    def __init__(self, desc: str, costs: Sequence[float], done: Iterable[int] = (), unit: str = "points",
                 describe: Callable[[int], str] | None = None, file: IO | None = None, bound: bool = False,
                 workers: int = 1, estimate: bool = True):
        self.desc, self.unit, self.describe, self.bound = desc, unit, describe, bound
        self.costs = np.asarray(costs, dtype=float)
        done = np.unique(np.fromiter(done, dtype=np.int64))
        self.items_done, self.items = len(done), len(self.costs)
        self.remaining = float(self.costs.sum() - self.costs[done].sum())
        self.file = file if file is not None else sys.stderr
        self.workers = max(1, workers)
        self._t0 = time.monotonic()
        self._said, self._measured = not estimate, False
        total = float(self.costs.sum())
        self.bar = progress_bar(total=total or 1.0, initial=total - self.remaining, desc=desc, unit="cost",
                                file=self.file, weighted=True)
        self._postfix(None)

    def _postfix(self, item: int | None) -> None:
        text = f"{self.items_done}/{self.items} {self.unit}"
        if item is not None and self.describe is not None:
            text += f"; last: {self.describe(item)}"
        self.bar.set_postfix_str(text, refresh=False)

    def _estimate(self, seconds: float) -> None:
        if self._said or not is_long(seconds):
            return
        self._said = True
        announce(f"{self.desc}: {self.items - self.items_done} {self.unit} to go, "
                 f"{'at most' if self.bound else 'about'} {_duration(seconds)}"
                 + (f" on {self.workers} ranks" if self.workers > 1 else "")
                 + ("" if self.bound else " (estimated from the first)"), self.file)

    def finish(self, item: int) -> None:
        """Item ``item`` is done."""
        cost = float(self.costs[item])
        self.items_done += 1
        self.remaining -= cost
        self._postfix(item)
        if not self._measured and cost > 0:  # the first item of this run: the time of the rest
            self._measured = True
            self._estimate((time.monotonic() - self._t0) / cost * self.remaining / self.workers)
        self.bar.update(cost)

    def close(self, failed: bool = False) -> None:
        """The stage has ended; ``failed``: by an error, whose line follows with no last progress
        line before it."""
        if failed:
            self.bar.leave = False
        self.bar.close()

    def __enter__(self) -> Work:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(failed=kind is not None)


__all__ = ["ESTIMATE_SECONDS", "LineProgress", "Work", "announce", "duration", "is_long", "progress_bar"]
