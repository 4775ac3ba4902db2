"""The paper's Table 1 (FLOPs and parameters of the pruned networks), recomputed exactly."""

from __future__ import annotations

from dataclasses import dataclass

from landscape.prune.counts import count, reduction
from landscape.prune.plans import PRESETS, reference_model
from landscape.prune.removal import plan_widths, resize_


@dataclass(frozen=True)
class Row:
    """One pruned network: exact counts (ours) beside the paper's printed ones."""

    preset: str
    flops_original: int
    params_original: int
    flops: int
    params: int
    paper: dict
    paper_original: dict

    @property
    def flops_pct(self) -> float:
        return reduction(self.flops_original, self.flops)

    @property
    def params_pct(self) -> float:
        return reduction(self.params_original, self.params)


def table1(names: list[str] | None = None) -> list[Row]:
    """Every preset (or ``names``) counted on its reference architecture, shapes only."""
    rows, originals = [], {}
    for name in names or list(PRESETS):
        p = PRESETS[name]
        model = reference_model(name)
        key = (p.arch, p.input_shape, p.num_classes)
        if key not in originals:
            originals[key] = count(model, p.input_shape)
        f0, p0 = originals[key]
        f1, p1 = count(resize_(model, plan_widths(model, p.plan)), p.input_shape)
        rows.append(Row(name, f0, p0, f1, p1, dict(p.paper), dict(p.paper_original)))
    return rows


def _sci(x: int, like: str) -> str:
    """``x`` in the paper's notation, with as many digits as the printed ``like`` (``2.06e8``)."""
    mantissa = like.split("e")[0]
    digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return f"{x:.{digits}e}".replace("e+0", "e").replace("e+", "e")


def _pct(x: float, like: str) -> str:
    digits = len(like.split(".")[1]) if "." in like else 0
    return f"{x:.{digits}f}"


def markdown(rows: list[Row] | None = None) -> str:
    """Table 1 as Markdown: our exact integers and percentages, what they round to at the
    paper's precision, the paper's printed values, and a mark where the two differ."""
    rows = rows if rows is not None else table1()
    lines = [
        "| network | FLOPs (exact) | FLOPs fewer | params (exact) | params fewer | ours at the paper's precision "
        "(FLOPs, %, params, %) | paper (FLOPs, %, params, %) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    seen = set()
    for r in rows:
        arch = PRESETS[r.preset].arch
        if arch not in seen:
            seen.add(arch)
            ours = (_sci(r.flops_original, r.paper_original["flops"]),
                    _sci(r.params_original, r.paper_original["params"]))
            paper = (r.paper_original["flops"], r.paper_original["params"])
            marks = [o if o == p else f"**{o}**" for o, p in zip(ours, paper, strict=True)]
            lines.append(f"| {arch} | {r.flops_original:,} | | {r.params_original:,} | | {marks[0]}, -, {marks[1]}, - "
                         f"| {paper[0]}, -, {paper[1]}, - |")
        ours = (_sci(r.flops, r.paper["flops"]), _pct(r.flops_pct, r.paper["flops_pct"]),
                _sci(r.params, r.paper["params"]), _pct(r.params_pct, r.paper["params_pct"]))
        paper = (r.paper["flops"], r.paper["flops_pct"], r.paper["params"], r.paper["params_pct"])
        marks = [o if o == p else f"**{o}**" for o, p in zip(ours, paper, strict=True)]
        lines.append(f"| {r.preset} | {r.flops:,} | {r.flops_pct:.3f}% | {r.params:,} | {r.params_pct:.3f}% "
                     f"| {', '.join(marks)} | {', '.join(paper)} |")
    return "\n".join(lines) + "\n"


def matches(rows: list[Row] | None = None) -> tuple[int, int]:
    """How many of the paper's printed numbers ours reproduce at the printed precision, of how many."""
    rows = rows if rows is not None else table1()
    hit = total = 0
    seen = set()
    for r in rows:
        arch = PRESETS[r.preset].arch
        pairs = [(_sci(r.flops, r.paper["flops"]), r.paper["flops"]),
                 (_pct(r.flops_pct, r.paper["flops_pct"]), r.paper["flops_pct"]),
                 (_sci(r.params, r.paper["params"]), r.paper["params"]),
                 (_pct(r.params_pct, r.paper["params_pct"]), r.paper["params_pct"])]
        if arch not in seen:
            seen.add(arch)
            pairs += [(_sci(r.flops_original, r.paper_original["flops"]), r.paper_original["flops"]),
                      (_sci(r.params_original, r.paper_original["params"]), r.paper_original["params"])]
        hit += sum(o == p for o, p in pairs)
        total += len(pairs)
    return hit, total


__all__ = ["Row", "markdown", "matches", "table1"]
