"""Training: the loop (:class:`Loop`), its plug-in protocol (:class:`TrainHook`), the run folder
(:class:`RunFolder`: checkpoints, log, resume), the optimizer (:class:`OptimizerConfig`, by name;
:class:`SAM` and ASAM around it), distillation's objective (:class:`Distillation`) and the
step-decay schedule.

The loop knows hooks and torch's optimizer protocol and nothing else: quantized training is a hook
that ``landscape.quant.quantize_`` returns, SAM an optimizer whose step evaluates the closure
twice, distillation an objective; ``landscape-train`` (``landscape.jobs.train``) assembles a zoo
model, its data, optimizer, objective and hooks into a loop.
"""

from landscape.training.distill import Distillation
from landscape.training.hooks import TrainHook
from landscape.training.loop import Loop, LoopConfig
from landscape.training.optim import OPTIMIZERS, Milestones, OptimizerConfig, default_milestones, make_optimizer
from landscape.training.run_folder import RunFolder
from landscape.training.sam import SAM

__all__ = ["OPTIMIZERS", "SAM", "Distillation", "Loop", "LoopConfig", "Milestones", "OptimizerConfig", "RunFolder",
           "TrainHook", "default_milestones", "make_optimizer"]
