"""The training loop's plug-in protocol: :class:`TrainHook`.

A hook is called by :class:`landscape.training.Loop` at fixed places of every step and epoch, so
that a weight quantizer (``landscape.quant.quantize_``), a logger or a constraint acts without
copying the loop. The loop knows this protocol and nothing about what implements it.
"""

from __future__ import annotations

from typing import Any


class TrainHook:
    """A plug-in of the training loop; override the methods you need (all do nothing here).

    Per step the loop calls ``before_forward(loop, batch)`` (the batch is on the device), then
    ``optimizer.step(closure)``, whose closure runs the forward and backward passes and calls
    ``after_backward(loop)`` (gradients are in ``.grad``), then ``after_step(loop)``. An optimizer
    that evaluates the loss twice per step (SAM) calls the closure, and so ``after_backward``,
    twice; a hook that cannot take that (quantized training) refuses it. The test pass of each epoch evaluates the
    model as the hooks leave it after ``after_step``; then ``on_epoch_end(loop, epoch, row)`` may
    add columns to the log row, and ``on_checkpoint(loop, state)`` may add entries to a checkpoint
    dict before it is saved.

    For exact resume a hook contributes its own settings and state: ``config()`` (plain values,
    saved under ``"hook_config"``; a resumed run with different values is refused) and
    ``state_dict()`` (saved under ``"hooks"``, handed back to ``load_state_dict`` on resume,
    before ``on_start(loop)``). ``loop`` is the :class:`~landscape.training.Loop` (its ``model``,
    ``optimizer``, ``epoch``, ``step``, ``hooks``, ``resumed``); a hook used in a plain loop of
    your own may receive ``None`` there.
    """

    name = "hook"

    def config(self) -> dict[str, Any]:
        return {}

    def on_start(self, loop) -> None: ...

    def before_forward(self, loop, batch) -> None: ...

    def after_backward(self, loop) -> None: ...

    def after_step(self, loop) -> None: ...

    def on_epoch_end(self, loop, epoch: int, row: dict) -> None: ...

    def on_checkpoint(self, loop, state: dict) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


def hook_key(index: int, hook: TrainHook) -> str:
    """The key of the ``index``-th hook's entries in a checkpoint: ``"0:quant"``."""
    return f"{index}:{hook.name}"


__all__ = ["TrainHook", "hook_key"]
