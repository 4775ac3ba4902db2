"""``landscape-markov``'s job: the NIPS'17 Markov-chain illustration, computed and drawn into one figure."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from landscape.errors import LandscapeError
from landscape.io.files import owned_output, replacing
from landscape.quant.markov import MarkovResult, Toy, compare_rates
from landscape.runtime.threads import choose_threads, using_threads


def draw_markov(out: str, rates: Sequence[float], noise: float = Toy.noise, steps: int = 20_000,
                chains: int = 2000, seed: int = 0, dpi: int = 150, overwrite: bool = False,
                threads: int | None = None) -> MarkovResult:
    """SR's and BC's distributions at each rate (:func:`landscape.quant.markov.compare_rates`),
    drawn to ``out`` (its extension picks the format); returns the result."""
    if not (noise >= 0 and math.isfinite(noise)):
        raise LandscapeError(f"`noise` must be >= 0, got {noise}")
    fmt = os.path.splitext(out)[1].lstrip(".").lower()
    if not fmt:
        raise LandscapeError(f"`out` {out!r} needs an extension (.png, .pdf, .svg)")
    with owned_output(out, overwrite=overwrite) as (out,):
        return _draw(out, fmt, rates, noise, steps, chains, seed, dpi, threads)


def _draw(out, fmt, rates, noise, steps, chains, seed, dpi, threads) -> MarkovResult:
    from landscape.plot.quant import markov_figure

    with using_threads(choose_threads(threads)):
        result = compare_rates(Toy(noise=noise), rates, steps=steps, chains=chains, seed=seed)
    fig = markov_figure(result)
    with replacing(out) as tmp:
        try:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
        except ValueError as exc:
            raise LandscapeError(f"cannot write {out!r}: {exc}") from None
    return result
