"""Measure every figure README.md states about the project itself, print them, and record them in
``benchmarks/readme_figures.json`` (which ``tests/test_readme.py`` holds README.md to).

    python benchmarks/readme_figures.py                  # everything (about 15 minutes on 2 cores)
    python benchmarks/readme_figures.py --skip tests     # not the test suites
    python benchmarks/readme_figures.py --only demo      # just one group

Groups: ``machine`` (CPU, cores, load average before and after), ``data`` (the digits split
sizes), ``demo`` (``landscape-surf`` with no arguments on a fresh cache: its wall time, the demo
network's test accuracy and training time; again with the network cached), ``tests`` (the quick
and the whole suite: tests run and wall time), ``notebooks`` (each notebook at its default
settings). In README.md a figure is the number written just before ``<!--fig:NAME-->``; the
script writes the new figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OUT = os.path.join(ROOT, "benchmarks", "readme_figures.json")
GROUPS = ("machine", "data", "imports", "demo", "tests", "notebooks")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                        platform.machine())
    except OSError:
        return platform.processor() or platform.machine()


def machine() -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu_model(), "cores": cores, "load_before": round(os.getloadavg()[0], 2)}


def data() -> dict:
    import landscape as ls

    return {"digits_train": len(ls.load_dataset("digits", split="train")),
            "digits_test": len(ls.load_dataset("digits", split="test"))}


def _timed(cmd: list[str], cwd: str, env: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    return time.perf_counter() - t0, proc.stdout + proc.stderr


def demo() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, LANDSCAPE_CACHE=os.path.join(tmp, "cache"))
        os.makedirs(os.path.join(tmp, "a"))
        os.makedirs(os.path.join(tmp, "b"))
        seconds, out = _timed(["landscape-surf", "--no-progress"], os.path.join(tmp, "a"), env)
        m = re.search(r"in ([0-9.]+) s \(test accuracy ([0-9.]+)%\)", out)
        cached, _ = _timed(["landscape-surf", "--no-progress"], os.path.join(tmp, "b"), env)
        from landscape.plot.mpl import surface_scale
        from landscape.surface_file import read_surface

        demo_surface = read_surface(os.path.join(tmp, "a", "landscape_demo", "surface.h5"))
        levels = surface_scale(demo_surface, "loss", 30).levels  # the default contour figure's
    return {"demo_seconds": round(seconds, 1), "demo_train_seconds": float(m.group(1)),
            "demo_accuracy": float(m.group(2)), "demo_cached_seconds": round(cached, 1),
            "demo_levels_below_1": int((levels < 1).sum()), "demo_levels": len(levels)}


def imports() -> dict:
    """Seconds to ``import landscape`` in a fresh process (best of 5)."""
    code = "import time; t = time.perf_counter(); import landscape; print(time.perf_counter() - t)"
    best = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
               for _ in range(5))
    return {"import_seconds": round(best, 4)}


SELF_TEST = "tests/test_readme.py"  # holds README to this script's output: run after README is filled


def _pytest(extra: list[str]) -> tuple[int, float]:
    """Tests passed and seconds, the suite run without SELF_TEST (whose README figures this run is
    about to replace); SELF_TEST's tests are counted in, and ``main`` runs them at the end."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--ignore={SELF_TEST}",
                           *extra], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    summary = proc.stdout.strip().splitlines()[-1]
    if proc.returncode != 0:
        raise SystemExit(f"the tests failed: {summary}")
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    return passed + _count(SELF_TEST, extra), seconds


def _count(path: str, extra: list[str]) -> int:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", path,
                           *extra], cwd=ROOT, capture_output=True, text=True)
    return int(re.search(r"(\d+) tests? collected", proc.stdout).group(1))


def tests() -> dict:
    quick, quick_s = _pytest([])
    whole, whole_s = _pytest(["--slow"])
    return {"tests_quick": quick, "tests_quick_minutes": round(quick_s / 60, 1), "tests_all": whole,
            "tests_all_minutes": round(whole_s / 60, 1)}


def notebooks() -> dict:
    import nbformat
    from nbclient import NotebookClient

    out = {}
    folder = os.path.join(ROOT, "notebooks")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".ipynb"):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            nb = nbformat.read(os.path.join(folder, name), as_version=4)
            os.environ["RUNS_DIR"] = tmp
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": folder}}).execute()
            out[f"notebook_{name.removesuffix('.ipynb')}_seconds"] = round(time.perf_counter() - t0)
    return out


MARK = re.compile(r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)([^0-9<]{0,12}<!--fig:(\w+)-->)")


def _written(value) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:,}" if isinstance(value, float) and value >= 10000 else str(value)


def fill(doc: str, figures: dict) -> list[str]:
    """Write each measured figure into ``doc`` before its ``<!--fig:NAME-->`` mark (at the precision
    it was measured to); return the names ``doc`` marks that ``figures`` lacks."""
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip", default="", help=f"comma-separated groups to leave as they are ({', '.join(GROUPS)})")
    p.add_argument("--only", default="", help="comma-separated groups to measure (default all)")
    a = p.parse_args(argv)
    chosen = [g for g in (a.only.split(",") if a.only else GROUPS) if g and g not in a.skip.split(",")]
    figures = json.load(open(OUT)) if os.path.exists(OUT) else {}
    for group in chosen:
        print(f"measuring {group} ...", file=sys.stderr, flush=True)
        figures.update(globals()[group]())
    figures["machine_load_after"] = round(os.getloadavg()[0], 2)
    figures["measured"] = time.strftime("%Y-%m-%d")
    with open(OUT, "w") as f:
        json.dump(figures, f, indent=1, sort_keys=True)
        f.write("\n")
    print("| figure | value |\n|---|---|")
    for k, v in sorted(figures.items()):
        print(f"| {k} | {v} |")
    missing = fill(os.path.join(ROOT, "README.md"), figures)
    print("README.md updated" + (f"; not measured: {', '.join(missing)}" if missing else ""), file=sys.stderr)
    check = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", SELF_TEST], cwd=ROOT,
                           capture_output=True, text=True)
    print(f"{SELF_TEST}: {check.stdout.strip().splitlines()[-1]}", file=sys.stderr)
    return check.returncode


if __name__ == "__main__":
    sys.exit(main())
