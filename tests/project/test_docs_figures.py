"""A page's commands never draw a figure twice: a reader who runs them in order keeps every figure
the page shows (issue 31, part 9: ``landscape-plot surface.h5`` and then ``landscape-plot
surface.h5 --kinds contour --log`` replaced the first command's contour silently)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from landscape.cli.plot import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", ROOT / "plots" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
KINDS = ("contour", "contourf", "heatmap", "3d")
VIEWS = {"--html": "html", "--vtk": "vtk", "--trajectory": "trajectory", "--path": "plane"}
SWITCHES = {s for a in build_parser()._actions if a.nargs == 0 for s in a.option_strings}  # flags without a value


def plot_commands(text: str) -> list[list[str]]:
    """The words of every ``landscape-plot`` command of the page's shell blocks."""
    out = []
    for block in re.findall(r"^```(?:bash|sh|shell|console)\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line.lstrip("$ "), comments=True)
            if words[:1] == ["landscape-plot"]:
                out.append(words[1:])
    return out


def figures(args: list[str]) -> set[tuple]:
    """What a landscape-plot command draws, as (prefix, quantity, view) keys: two commands with a
    key in common write the same file. A 1D file draws one figure whatever the kinds, so the
    static figures of one prefix and quantity are one key."""
    flags: dict[str, str] = {}
    files, i = [], 0
    while i < len(args):
        word = args[i]
        if word.startswith("--"):
            name, _, value = word.partition("=")
            if name not in SWITCHES and not value and i + 1 < len(args):
                value, i = args[i + 1], i + 1
            flags[name] = value
        else:
            files.append(word)
        i += 1
    quantity = flags.get("--quantity", "loss")
    if "--compare" in flags:  # the files' names tell a 1D comparison from a 2D one
        return {(flags.get("--out", "compare"), quantity, "compare", files[0])}
    prefixes = [flags["--out"]] if "--out" in flags else [os.path.splitext(f)[0] for f in files]
    views = [v for flag, v in VIEWS.items() if flag in flags]
    if not views or "--static" in flags:
        views.append("static")
    return {(prefix, quantity, view) for prefix in prefixes for view in views}


def test_no_page_draws_a_figure_twice():
    for page in PAGES:
        seen: dict[tuple, str] = {}
        for args in plot_commands(page.read_text()):
            for key in figures(args):
                assert key not in seen, (f"{page.name}: `landscape-plot {shlex.join(args)}` replaces the figures of "
                                         f"`landscape-plot {seen[key]}`; give it its own --out")
                seen[key] = shlex.join(args)


def test_the_check_finds_a_figure_drawn_twice():
    """The sequence that docs/cli.md showed before it was fixed, and the cases that are not repeats."""
    page = """```bash
landscape-plot surface.h5
landscape-plot surface.h5 --kinds contour --levels 40 --log
```"""
    first, second = plot_commands(page)
    assert figures(first) & figures(second)
    assert not figures(["surface.h5"]) & figures(["surface.h5", "--kinds", "contour", "--out", "surface_log"])
    assert not figures(["surface.h5"]) & figures(["surface.h5", "--html"])
    assert not figures(["surface.h5"]) & figures(["surface.h5", "--quantity", "acc"])
    assert not figures(["a_1d.h5", "b_1d.h5", "--compare"]) & figures(["a_2d.h5", "b_2d.h5", "--compare"])
