"""Hugging Face models, offline: ``--arch hf:DIR`` builds the model that ``DIR/config.json``
describes with ``transformers`` (the optional extra ``landscape[hf]``), randomly initialised, for
the checkpoint's weights to be loaded into; ``DIR``'s own weights are its default checkpoint."""

from __future__ import annotations

import os

import torch
from torch import nn

from landscape.errors import LandscapeError, first_line
from landscape.runtime.memory import check_fits

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise LandscapeError("--arch hf:DIR needs transformers: pip install 'landscape[hf]'") from None
    return transformers


def build_hf(directory: str) -> nn.Module:
    """The model of ``directory``'s ``config.json`` (a causal LM where the config names one, else
    the bare model), built without reading weights or the network."""
    if not os.path.isfile(os.path.join(directory, "config.json")):
        raise LandscapeError(f"hf:{directory}: no config.json there (a Hugging Face model folder holds one)")
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise LandscapeError(f"hf:{directory}: the config cannot be read ({first_line(exc)})") from None
    config.use_cache = False  # a surface needs the loss, not the keys and values for generation

    def build():
        try:
            return tf.AutoModelForCausalLM.from_config(config)
        except ValueError:
            return tf.AutoModel.from_config(config)

    try:
        with torch.device("meta"):  # its size, before a byte is allocated (a vocab_size of 1e9: terabytes)
            shapes = build()
    except Exception:  # noqa: BLE001 - a model that cannot be built without memory: built as it is
        shapes = None
    if shapes is not None:
        tensors = [*shapes.parameters(), *shapes.buffers()]
        check_fits(sum(t.numel() * t.element_size() for t in tensors),
                   f"hf:{directory}'s model ({sum(t.numel() for t in shapes.parameters()):.3g} parameters)")
    return build().eval()


def default_weights(directory: str) -> str:
    """The weights file of a Hugging Face model folder."""
    for name in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise LandscapeError(f"hf:{directory}: no weights ({', '.join(WEIGHT_FILES)}); give --model")


__all__ = ["build_hf", "default_weights"]
