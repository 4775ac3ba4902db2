"""The size of ``landscape-plot --html`` pages (issue 31.6): plotly.js inside each page (the default)
against ``--shared-js`` (one ``plotly-VERSION.min.js`` beside the pages, written once per folder).

    python benchmarks/bench_html.py

The surfaces hold a loss and an accuracy at every point, as ``landscape-surf`` writes them; their
values are random (the page's data part is their JSON text: random digits are its worst case).
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from _report import run_and_report  # noqa: E402

from landscape.io.surface_file import new_surface  # noqa: E402
from landscape.plot.interactive import write_html  # noqa: E402
from landscape.plot.style import Style  # noqa: E402


def surface(n: int):
    s = new_surface([np.linspace(-1, 1, n)] * 2, ["train_loss", "train_acc"], {"split": "train", "norm": "filter",
                                                                              "seed": 0})
    rng = np.random.default_rng(0)
    s.values["train_loss"][:] = 0.01 + rng.random((n, n)) * 40
    s.values["train_acc"][:] = rng.random((n, n)) * 100
    for k in s.done:
        s.done[k][:] = True
    return s


def main() -> int:
    print("| grid | page, plotly.js inside | page, --shared-js | shared plotly.js (once per folder) | "
          "ten pages inside / shared |")
    print("|---|---|---|---|---|")
    for n in (11, 41, 101):
        with tempfile.TemporaryDirectory() as folder:
            inline = write_html(surface(n), os.path.join(folder, "inline.html"), Style())
            shared = write_html(surface(n), os.path.join(folder, "shared.html"), Style(), plotlyjs="shared")
            (script,) = [f for f in os.listdir(folder) if f.endswith(".js")]
            a, b, js = (os.path.getsize(p) for p in (inline, shared, os.path.join(folder, script)))
        print(f"| {n}x{n} | {a / 1e6:.2f} MB | {b / 1e6:.3f} MB | {js / 1e6:.2f} MB | "
              f"{10 * a / (10 * b + js):.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(run_and_report(main))
