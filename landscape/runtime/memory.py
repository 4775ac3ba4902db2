"""Memory: how much this process may still allocate, and refusing, before allocating it, what cannot
fit (a request for terabytes is one line, never a traceback, a swapping machine or the kernel's
out-of-memory killer)."""

from __future__ import annotations

import os

from landscape.errors import LandscapeError

UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB")


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_room(membership: str = "/proc/self/cgroup", mount: str = "/sys/fs/cgroup") -> int | None:
    """Bytes this process's control group (and each group above it) still lets it allocate; None
    where no group limits memory (cgroup v2, or v1's memory controller; ``membership``: the
    process's groups, ``mount``: where the hierarchy is mounted)."""
    try:
        with open(membership) as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    groups = []
    for _, controllers, path in (x for x in lines if len(x) == 3):
        if controllers == "":  # v2
            groups.append((mount, path, "memory.max", "memory.current"))
        elif "memory" in controllers.split(","):  # v1
            groups.append((os.path.join(mount, "memory"), path, "memory.limit_in_bytes", "memory.usage_in_bytes"))
    room = None
    for root, path, limit, usage in groups:
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            folder = os.path.join(root, *parts[:depth])
            cap, used = _read_int(os.path.join(folder, limit)), _read_int(os.path.join(folder, usage))
            if cap is not None and used is not None and cap < 1 << 60:  # "max" or a huge number: no limit
                room = max(0, cap - used) if room is None else min(room, max(0, cap - used))
    return room


def available_bytes() -> int | None:
    """Bytes this process may allocate now: the machine's available memory (``MemAvailable``),
    or less where a control group (a container, a Slurm job) limits it; None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if ":" in line}
        free = info.get("MemAvailable")
    except (OSError, ValueError, IndexError):
        free = None
    room = _cgroup_room()
    return room if free is None else free if room is None else min(free, room)


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
