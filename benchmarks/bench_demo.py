"""What a newcomer meets first: the built-in demo's wall time, ``import landscape``, each notebook.

    python benchmarks/bench_demo.py                    # everything (a few minutes on 2 cores)
    python benchmarks/bench_demo.py --only demo        # just one group

Groups: ``data`` (the digits split sizes), ``imports`` (``import landscape`` in a fresh process),
``demo`` (``landscape-surf`` with no arguments on a fresh cache: its wall time, the demo network's
test accuracy and training time; again with the network cached; the default contour levels),
``notebooks`` (each notebook at its default settings). Prints a Markdown table, which
``_report`` writes into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

from _report import machine, run_and_report

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
GROUPS = ("data", "imports", "demo", "notebooks")


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
        from landscape.io.surface_file import read_surface
        from landscape.plot.mpl import surface_scale

        demo_surface = read_surface(os.path.join(tmp, "a", "landscape_demo", "surface.h5"))
        levels = surface_scale(demo_surface).levels  # the default contour figure's
    return {"demo_seconds": round(seconds, 1), "demo_train_seconds": float(m.group(1)),
            "demo_accuracy": float(m.group(2)), "demo_cached_seconds": round(cached, 1),
            "demo_levels_below_1": int((levels < 1).sum()), "demo_levels": len(levels)}


def imports() -> dict:
    """Seconds to ``import landscape`` in a fresh process (best of 5)."""
    code = "import time; t = time.perf_counter(); import landscape; print(time.perf_counter() - t)"
    best = min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
               for _ in range(5))
    return {"import_seconds": round(best, 4)}


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip", default="", help=f"comma-separated groups to leave out ({', '.join(GROUPS)})")
    p.add_argument("--only", default="", help="comma-separated groups to measure (default all)")
    a = p.parse_args(argv)
    chosen = [g for g in (a.only.split(",") if a.only else GROUPS) if g and g not in a.skip.split(",")]
    figures = {"load_before": machine()["load_before"]}
    for group in chosen:
        print(f"measuring {group} ...", file=sys.stderr, flush=True)
        figures.update(globals()[group]())
    figures["load_after"] = round(os.getloadavg()[0], 2)
    print("| figure | value |\n|---|---|")
    for k, v in figures.items():
        print(f"| {k} | {v} |")
    return 0


if __name__ == "__main__":
    sys.exit(run_and_report(main))
