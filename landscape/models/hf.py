"""Hugging Face models, offline: ``--arch hf:DIR`` builds the model that ``DIR/config.json``
describes with ``transformers`` (the optional extra ``torch-landscape[hf]``), randomly initialised, for
the checkpoint's weights to be loaded into; ``DIR``'s own weights are its default checkpoint."""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
from torch import nn

from landscape.errors import LandscapeError, first_line
from landscape.runtime.memory import check_fits

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise LandscapeError("--arch hf:DIR needs transformers: pip install 'torch-landscape[hf]' (from a clone: "
                             "pip install -e '.[hf]')") from None
    return transformers


def hf_folder(directory: str) -> str:
    """``directory`` of ``hf:DIR``, refused in one line unless it is a folder holding ``config.json``."""
    if not directory:
        raise LandscapeError("hf: names no folder: give hf:DIR, the folder of a Hugging Face model (its config.json "
                             "and weights)")
    if os.path.isfile(directory):
        parent = os.path.dirname(directory) or "."
        raise LandscapeError(f"hf:{directory} is a file: give the folder of the model (hf:{parent}); a weights "
                             "file goes to --model")
    if not os.path.isdir(directory):
        raise LandscapeError(f"hf:{directory}: no such folder")
    if not os.path.isfile(os.path.join(directory, "config.json")):
        raise LandscapeError(f"hf:{directory}: no config.json there (a Hugging Face model folder holds one)")
    return directory


@contextmanager
def _quiet(tf):
    """transformers' own warnings held back: what concerns the user comes as our one line. (A small
    or custom vocabulary makes every config load warn twice that GPT-2's bos/eos id 50256 lies outside it;
    nothing here generates text, where those ids would matter.)"""
    verbosity = tf.logging.get_verbosity()
    tf.logging.set_verbosity_error()
    try:
        yield
    finally:
        tf.logging.set_verbosity(verbosity)


def build_hf(directory: str) -> nn.Module:
    """The model of ``directory``'s ``config.json`` (a causal LM where the config names one, else
    the bare model), built without reading weights or the network."""
    hf_folder(directory)
    tf = _transformers()
    with _quiet(tf):
        try:
            config = tf.AutoConfig.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise LandscapeError(f"hf:{directory}: the config cannot be read ({first_line(exc)})") from None
        config.use_cache = False  # a surface needs the loss, not the keys and values for generation

        def build():
            try:
                model = tf.AutoModelForCausalLM.from_config(config)
                if getattr(model, "loss_type", "") is None:  # a class transformers does not name (GPT2LMHeadModel):
                    model.loss_type = "ForCausalLM"  # the loss it falls back to anyway, without its warning each run
            except ValueError:
                model = tf.AutoModel.from_config(config)
            return model

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
    hf_folder(directory)
    for name in WEIGHT_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise LandscapeError(f"hf:{directory}: no weights ({', '.join(WEIGHT_FILES)}); give --model")


__all__ = ["build_hf", "default_weights", "hf_folder"]
