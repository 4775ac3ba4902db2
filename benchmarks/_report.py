"""What every benchmark script shares: the machine it ran on, and writing its tables into
docs/benchmarks.md.

    sys.exit(run_and_report(main))   # at the end of a benchmark script

runs ``main``, echoes what it prints and, when it returns 0, replaces the script's section of
docs/benchmarks.md (between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; appended when the
page has none yet) with the command, the machine (CPU model, cores, torch), the date and what the
script printed: its Markdown tables. ``BENCH_DOCS=0`` leaves the page alone; under MPI only rank 0
writes.
"""

from __future__ import annotations

import io
import os
import platform
import re
import sys
import time
from collections.abc import Callable

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DOC = os.path.join(ROOT, "docs", "benchmarks.md")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                        platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine() -> dict:
    """The CPU, its cores and the 1-minute load average now."""
    return {"cpu": cpu_model(), "cores": cores(), "load_before": round(os.getloadavg()[0], 2)}


def _torch_version() -> str:
    torch = sys.modules.get("torch")
    return f", torch {torch.__version__}" if torch is not None else ""


def section(name: str, body: str, command: str, date: str | None = None, machine_line: str | None = None) -> str:
    """The text of NAME's section: command, machine, date, then ``body`` (the script's output)."""
    machine_line = machine_line or f"{cpu_model()}, {cores()} cores{_torch_version()}"
    date = date or time.strftime("%Y-%m-%d")
    body = re.sub(r"^#+ ", "", body, flags=re.M)  # a script's title line is a line of text here, not a heading
    return (f"<!-- bench:{name} -->\nCommand: `{command}`  \nMachine: {machine_line}  \nDate: {date}\n\n"
            f"{body.strip()}\n<!-- /bench:{name} -->")


def write_section(name: str, text: str, doc: str = DOC) -> None:
    """Replace NAME's section of ``doc`` with ``text`` (a :func:`section`), or append it."""
    old = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    pattern = re.compile(rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S)
    new = pattern.sub(lambda _: text, old, count=1) if pattern.search(old) else f"{old.rstrip()}\n\n{text}\n"
    tmp = f"{doc}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, doc)


class _Tee(io.TextIOBase):
    def __init__(self, stream):
        self.stream, self.buffer_ = stream, io.StringIO()

    def write(self, s: str) -> int:
        self.buffer_.write(s)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()


def _rank() -> int:
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if var in os.environ:
            return int(os.environ[var])
    return 0


def run_and_report(main: Callable[[], int], name: str | None = None, when: Callable[[list[str]], bool] | None = None,
                   doc: str = DOC) -> int:
    """Run ``main()`` echoing its stdout; on exit code 0 write what it printed into its section of ``doc``
    (unless ``BENCH_DOCS=0``, a rank other than 0, or ``when(argv)`` is false)."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    name = name or os.path.splitext(os.path.basename(script))[0]
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        rc = main() or 0
    finally:
        sys.stdout = tee.stream
    write = (rc == 0 and os.environ.get("BENCH_DOCS", "1") != "0" and _rank() == 0
             and (when is None or when(sys.argv[1:])))
    if write:
        mpi = os.environ.get("PMI_SIZE") or os.environ.get("OMPI_COMM_WORLD_SIZE")
        command = " ".join([*(["mpirun", "-n", mpi] if mpi else []), "python", script, *sys.argv[1:]])
        write_section(name, section(name, tee.buffer_.getvalue(), command), doc)
        print(f"{os.path.relpath(doc, ROOT)}: section {name} written", file=sys.stderr)
    return rc


MARK = re.compile(r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)([^0-9<]{0,12}<!--fig:(\w+)-->)")


def _written(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,}" if isinstance(value, float) and value >= 10000 else str(value)


def fill(doc: str, figures: dict) -> list[str]:
    """Write each measured figure into ``doc`` before its ``<!--fig:NAME-->`` mark (at the precision
    it was measured to); return the names ``doc`` marks that ``figures`` lacks (plots/README.md's
    figures, written by plots/gallery_figures.py)."""
    with open(doc) as f:
        text = f.read()
    missing = []

    def put(m: re.Match) -> str:
        if m.group(3) not in figures:
            missing.append(m.group(3))
            return m.group(0)
        return _written(figures[m.group(3)]) + m.group(2)

    text = MARK.sub(put, text)
    with open(doc, "w") as f:
        f.write(text)
    return missing
