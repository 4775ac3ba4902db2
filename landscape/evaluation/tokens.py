"""Token ids against a language model's vocabulary: ids outside it are refused by name, before a
forward pass fails with an index error that points at the inputs' shape."""

from __future__ import annotations

import torch
from torch import nn

from landscape.errors import LandscapeError


def vocabulary(model: nn.Module) -> int | None:
    """How many token ids ``model`` embeds: its input embedding's rows (a Hugging Face model's
    ``get_input_embeddings()``, else its only ``nn.Embedding``, or several of one size); None where
    that is not known (no embedding, or embeddings of several sizes: which one reads the inputs?)."""
    get = getattr(model, "get_input_embeddings", None)
    if callable(get):
        try:
            emb = get()
        except (NotImplementedError, AttributeError):
            emb = None
        if isinstance(emb, nn.Embedding):
            return int(emb.num_embeddings)
    sizes = {int(m.num_embeddings) for m in model.modules() if isinstance(m, nn.Embedding)}
    return sizes.pop() if len(sizes) == 1 else None


def check_token_ids(ids: torch.Tensor, model: nn.Module, source: str = "the inputs",
                    model_name: str = "the model") -> None:
    """Refuse integer ``ids`` that ``model`` cannot embed: negative ones, or ones at or above its
    vocabulary, naming ``source`` (the data) and ``model_name``. Float inputs, and models without an
    embedding, pass."""
    if not torch.is_tensor(ids) or ids.is_floating_point() or ids.dtype == torch.bool or not ids.numel():
        return
    size = vocabulary(model)
    if size is None:
        return
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0:
        raise LandscapeError(f"{source} holds negative token ids (down to {lo}): token ids are 0 or more")
    if hi >= size:
        raise LandscapeError(f"{source} holds token ids up to {hi}, but {model_name} has a vocabulary of {size} "
                             f"(ids 0 to {size - 1}): the ids were made with another tokenizer")


__all__ = ["check_token_ids", "vocabulary"]
