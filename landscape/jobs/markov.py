"""``landscape-markov``'s job: the NIPS'17 Markov-chain illustration, computed and drawn into one figure."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from landscape.errors import LandscapeError
from landscape.io.files import owned_output, replacing
from landscape.plot.quant import markov_figure
from landscape.quant.markov import RATES, MarkovResult, Toy, compare_rates
from landscape.runtime.threads import choose_threads, using_threads


@dataclass(frozen=True)
class MarkovConfig:
    """What ``landscape-markov`` draws: SR's and BC's distributions at each of ``rates`` on the toy
    objective with gradient noise ``noise``, BC simulated for ``steps`` steps in ``chains`` chains
    from ``seed``; the figure ``out`` (its extension picks the format; never over an existing file
    unless ``overwrite``) at ``dpi``; ``threads`` torch threads (None: the policy)."""

    out: str = "markov.png"
    rates: tuple[float, ...] = RATES
    noise: float = Toy.noise
    steps: int = 20_000
    chains: int = 2000
    seed: int = 0
    dpi: int = 150
    overwrite: bool = False
    threads: int | None = None


def draw_markov(cfg: MarkovConfig) -> MarkovResult:
    """SR's and BC's distributions at each rate (:func:`landscape.quant.markov.compare_rates`),
    drawn to ``cfg.out``; returns the result."""
    if not (cfg.noise >= 0 and math.isfinite(cfg.noise)):
        raise LandscapeError(f"`noise` must be >= 0, got {cfg.noise}")
    fmt = os.path.splitext(cfg.out)[1].lstrip(".").lower()
    if not fmt:
        raise LandscapeError(f"`out` {cfg.out!r} needs an extension (.png, .pdf, .svg)")
    with owned_output(cfg.out, overwrite=cfg.overwrite) as (out,):
        return _draw(out, fmt, cfg)


def _draw(out: str, fmt: str, cfg: MarkovConfig) -> MarkovResult:
    with using_threads(choose_threads(cfg.threads)):
        result = compare_rates(Toy(noise=cfg.noise), cfg.rates, steps=cfg.steps, chains=cfg.chains, seed=cfg.seed)
    fig = markov_figure(result)
    with replacing(out) as tmp:
        try:
            fig.savefig(tmp, format=fmt, dpi=cfg.dpi, bbox_inches="tight")
        except ValueError as exc:
            raise LandscapeError(f"cannot write {out!r}: {exc}") from None
    return result
