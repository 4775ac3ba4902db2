"""Quantized training (Li, De, Xu, Studer, Samet, Goldstein, *Training Quantized Nets: A Deeper
Understanding*, NIPS'17): BinaryConnect, stochastic rounding and rounding, as training hooks.

In the style of torchao, a config dataclass and one in-place verb::

    hook = quantize_(model, QuantConfig(method="bc", bits=1))   # the model now holds Q(w)
    Loop(model, data, optimizer, hooks=[hook]).run()    # or the hook in a loop of your own

(``landscape-train --quant bc --bits 1`` does this with a zoo model; see docs/training.md.)

Pieces: :mod:`landscape.quant.quantizer` (grids, Q_d, Q_s), :mod:`landscape.quant.hook` (the
update rules), :mod:`landscape.quant.markov` (the paper's 1D Markov-chain illustration:
``landscape-markov --out markov.png``).
"""

from landscape.quant.config import QuantConfig
from landscape.quant.hook import BinaryConnect, QuantHook, Rounding, quantize_, quantized_layers
from landscape.quant.quantizer import Levels, clip, codes, round_nearest, round_stochastic, scale_of

__all__ = [
    "BinaryConnect", "Levels", "QuantConfig", "QuantHook", "Rounding", "clip", "codes", "quantize_",
    "quantized_layers", "round_nearest", "round_stochastic", "scale_of",
]
