"""Memory: how much this process may still allocate, and refusing, before allocating it, what cannot
fit (a request for terabytes is one line, never a traceback, a swapping machine or the kernel's
out-of-memory killer)."""

from __future__ import annotations

from landscape.errors import LandscapeError

UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB")


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes() -> int | None:
    """Bytes this process may allocate now: the machine's available memory (``MemAvailable``),
    or less where a control group (a container, a Slurm job) limits it; None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if ":" in line}
        free = info.get("MemAvailable")
    except (OSError, ValueError, IndexError):
        free = None
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap, now = _read_int(limit), _read_int(used)
        if cap is not None and now is not None and cap < 1 << 60:  # "max" or a huge number: no limit
            free = max(0, cap - now) if free is None else min(free, max(0, cap - now))
            break
    return free


def human(nbytes: float) -> str:
    """``1.2 TB``: a number of bytes in decimal units."""
    value, unit = float(nbytes), UNITS[0]
    for unit in UNITS:
        if value < 1000 or unit == UNITS[-1]:
            break
        value /= 1000
    return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"


def check_fits(nbytes: float, what: str) -> None:
    """Refuse, in one line naming ``what``, an allocation of ``nbytes`` that exceeds what this
    process may allocate (:func:`available_bytes`); where that is unknown, nothing is refused."""
    free = available_bytes()
    if free is not None and nbytes > free:
        raise LandscapeError(f"out of memory: {what} would take {human(nbytes)}; this machine has {human(free)} "
                             "available")
