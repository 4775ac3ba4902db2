"""Progress bars: tqdm's on a terminal; in a log (stderr not a terminal), one whole line every few
seconds instead of hundreds of ``\\r`` updates. Every progress bar of the package is made here."""

from __future__ import annotations

import os
import sys
import time
from typing import IO

LOG_SECONDS = 10.0  # how often a bar writes its line into a log ($LANDSCAPE_PROGRESS_SECONDS)


def _log_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("LANDSCAPE_PROGRESS_SECONDS", LOG_SECONDS)))
    except ValueError:
        return LOG_SECONDS


def _is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class LineProgress:
    """The part of tqdm's interface the package uses, writing ``desc: n/total (pct %), rate, ETA``
    as one line at most every ``seconds`` (and at the end when ``leave``)."""

    def __init__(self, total: int | None = None, initial: int = 0, desc: str = "", unit: str = "it",
                 leave: bool = True, file: IO | None = None, seconds: float | None = None):
        self.total, self.n, self.desc, self.unit, self.leave = total, initial, desc, unit, leave
        self.file = file if file is not None else sys.stderr
        self.seconds = _log_seconds() if seconds is None else seconds
        self._start_n, self._t0 = initial, time.monotonic()
        self._last = self._t0
        self._closed = False

    def line(self) -> str:
        elapsed = time.monotonic() - self._t0
        done = self.n - self._start_n
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.n}" if self.desc else f"{self.n}"
        if self.total:
            text += f"/{self.total} ({100 * self.n / self.total:.0f} %)"
        text += f", {rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0 else f", {1 / rate:.3g} s/{self.unit}"
        if self.total and rate > 0 and self.n < self.total:
            text += f", about {_duration((self.total - self.n) / rate)} left"
        return text + f" ({_duration(elapsed)} elapsed)"

    def _emit(self) -> None:
        self.file.write(self.line() + "\n")
        self.file.flush()
        self._last = time.monotonic()

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
        if not self._closed and self.leave and self.n > self._start_n:
            self._emit()
        self._closed = True


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_bar(total: int | None = None, initial: int = 0, desc: str = "", unit: str = "it", leave: bool = True,
                 file: IO | None = None):
    """A tqdm bar when ``file`` (default stderr) is a terminal, else a :class:`LineProgress`."""
    file = file if file is not None else sys.stderr
    if not _is_terminal(file):
        return LineProgress(total, initial, desc, unit, leave, file)
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, file=file, dynamic_ncols=True)


__all__ = ["LineProgress", "progress_bar"]
