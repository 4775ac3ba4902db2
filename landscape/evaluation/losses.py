"""The losses and the accuracy that surfaces, training and Hessians evaluate: one definition each.

A loss is a function ``loss_fn(output, batch) -> mean loss of the batch`` (a 0-d tensor); an
accuracy ``accuracy_fn(output, batch) -> fraction correct in the batch``. ``batch`` is what the
data yields (a tensor, a tuple/list ``(x, y, ...)`` or a dict), so a user's own function can read
anything from it. The built-in ones read the target from ``batch[1]`` (or a dict's ``"y"``,
``"label"``, ``"labels"`` or ``"target"``).

``mse`` on class labels compares the softmax of the outputs with one-hot targets, as the original
loss-landscape tool does; on float targets it is a plain regression loss.

Language models: an output with a ``loss`` (a Hugging Face model given labels) is the model's own
loss; an output with ``logits`` (or logits of shape (batch, sequence, vocabulary) against token
labels of shape (batch, sequence)) gets the next-token cross-entropy and next-token accuracy, with
the labels from the batch's target (or a dict's ``input_ids``). ``crossentropy`` and ``accuracy``
do this by themselves; ``lm`` names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from landscape.errors import LandscapeError

LossFn = Callable[[torch.Tensor, object], torch.Tensor]
TARGET_KEYS = ("y", "label", "labels", "target", "targets")


def target(batch) -> torch.Tensor:
    """The target of a batch: its second item, or the first of :data:`TARGET_KEYS` in a dict."""
    if isinstance(batch, tuple | list) and len(batch) >= 2:
        return batch[1]
    if isinstance(batch, Mapping):
        for key in TARGET_KEYS:
            if key in batch:
                return batch[key]
    raise LandscapeError("the built-in losses need batches (x, y) or dicts with a 'y'/'labels' entry; "
                         "give your own loss_fn(output, batch) for other batches")


def logits_of(output) -> torch.Tensor:
    """The logits of a model's output: the output itself, or its ``logits`` (Hugging Face)."""
    return output if torch.is_tensor(output) else output.logits


def token_labels(batch) -> torch.Tensor:
    """A language model's labels: the batch's target, else a dict's ``input_ids``."""
    if isinstance(batch, Mapping) and not any(k in batch for k in TARGET_KEYS) and "input_ids" in batch:
        return batch["input_ids"]
    return target(batch)


def _is_sequence(logits: torch.Tensor, labels: torch.Tensor) -> bool:
    return logits.dim() == 3 and labels.dim() == 2 and not labels.is_floating_point()


def next_token_loss(output, batch) -> torch.Tensor:
    """The model's own ``output.loss`` when it returns one, else the mean next-token cross-entropy of
    the logits at positions 0..T-2 against the labels at 1..T-1 (labels -100 left out)."""
    own = getattr(output, "loss", None)
    if own is not None:
        return own.float()
    logits, labels = logits_of(output), token_labels(batch)
    return F.cross_entropy(logits[:, :-1].float().flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


def next_token_accuracy(output, batch) -> torch.Tensor:
    """Fraction of next tokens (labels -100 left out) that are the logits' argmax."""
    logits, labels = logits_of(output), token_labels(batch)
    y = labels[:, 1:]
    keep = y != -100
    return ((logits[:, :-1].argmax(-1) == y) & keep).double().sum() / keep.sum().clamp(min=1)


def cross_entropy(output: torch.Tensor, batch) -> torch.Tensor:
    """Mean cross-entropy of the logits ``output`` against the class labels of ``batch`` (a
    language model's output: :func:`next_token_loss`)."""
    if not torch.is_tensor(output):
        return next_token_loss(output, batch)
    y = target(batch)
    if _is_sequence(output, y):
        return next_token_loss(output, batch)
    if y.is_floating_point():
        raise LandscapeError("the data has float (regression) targets: use the 'mse' loss")
    return F.cross_entropy(output.float(), y)


def mse(output: torch.Tensor, batch) -> torch.Tensor:
    """Mean squared error over all output entries; on class labels, softmax against one-hot."""
    y = target(batch)
    out = output.float()
    if y.is_floating_point():
        return F.mse_loss(out, y.view_as(out).float())
    return F.mse_loss(F.softmax(out, 1), F.one_hot(y, out.shape[1]).to(out.dtype))


def accuracy(output: torch.Tensor, batch) -> torch.Tensor:
    """Fraction of the batch whose largest output is its class label (a language model's output:
    :func:`next_token_accuracy`)."""
    logits = logits_of(output)
    y = target(batch) if torch.is_tensor(output) else token_labels(batch)
    if _is_sequence(logits, y):
        return next_token_accuracy(output, batch)
    return (logits.argmax(1) == y).double().mean()  # double: count / n * n stays the count


LOSSES: dict[str, LossFn] = {"crossentropy": cross_entropy, "mse": mse, "lm": next_token_loss}


def resolve_loss(loss: str | LossFn | None) -> tuple[str, LossFn]:
    """``(name, function)`` for a loss given by name (``None``: cross-entropy) or as a function;
    a function's name is its qualified name, for the provenance."""
    if loss is None:
        loss = "crossentropy"
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise LandscapeError(f"loss must be one of {', '.join(LOSSES)} or a function, got {loss!r}")
        return loss, LOSSES[loss]
    if not callable(loss):
        raise LandscapeError(f"loss must be a name or a function loss_fn(output, batch), got {loss!r}")
    return function_name(loss), loss


def function_name(fn: Callable) -> str:
    """``module.qualname`` of a function, for provenance records."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


__all__ = ["LOSSES", "accuracy", "cross_entropy", "function_name", "logits_of", "mse", "next_token_accuracy",
           "next_token_loss", "resolve_loss", "target", "token_labels"]
