"""Training: the loop (:class:`Loop`), its plug-in protocol (:class:`TrainHook`), the run folder
(:class:`RunFolder`: checkpoints, log, resume), optimizers by name and the step-decay schedule.

The loop knows hooks and nothing else: quantized training is a hook that
``landscape.quant.quantize_`` returns; ``landscape-train`` (``landscape.jobs.train``) assembles a
zoo model, its data, optimizer and hooks into a loop.
"""

from landscape.training.hooks import TrainHook
from landscape.training.loop import Loop, LoopConfig
from landscape.training.optim import OPTIMIZERS, Milestones, default_milestones, make_optimizer
from landscape.training.run_folder import RunFolder

__all__ = ["OPTIMIZERS", "Loop", "LoopConfig", "Milestones", "RunFolder", "TrainHook", "default_milestones",
           "make_optimizer"]
