"""Data as batches on a device: what evaluation, Hessian products and training read.

:func:`as_batches` takes whatever a user has and returns a re-iterable :class:`Batches`:

- a :class:`landscape.Dataset`, a tuple ``(X, y)`` of tensors (or any number of tensors of one
  length), or a map-style ``torch.utils.data.Dataset`` (read once into tensors): held on the
  device once and cut into batches by indexing, the fast path (:class:`TensorBatches`);
- any other re-iterable of batches (a ``DataLoader``, a list): read once and kept on the device
  when it fits in ``memory_budget`` (:class:`CachedBatches`), else streamed batch by batch at
  every pass (:class:`StreamedBatches`).

A batch may be a tensor, a tuple/list or a dict of tensors; it is moved to the device whole.
:func:`forward` calls the model on it: ``model(batch)`` for a tensor or a dict, ``model(batch[0])``
for a tuple. Every pass yields ``(batch, n)`` with ``n`` the batch's number of samples, so means
can be weighted by it and do not depend on the batching.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping

import torch
from torch import nn

from landscape.data.datasets import Dataset
from landscape.errors import LandscapeError
from landscape.runtime.memory import available_bytes
from landscape.space.params import tensor_bytes

Batch = object


def leaves(batch) -> list[torch.Tensor]:
    """The tensors in a batch, in a fixed order (dict entries by key)."""
    if torch.is_tensor(batch):
        return [batch]
    if isinstance(batch, Mapping):
        return [t for k in sorted(batch, key=str) for t in leaves(batch[k])]
    if isinstance(batch, tuple | list):
        return [t for item in batch for t in leaves(item)]
    return []


def size_of(batch) -> int:
    """Number of samples in a batch: the length of its first tensor."""
    ts = leaves(batch)
    if not ts or ts[0].dim() == 0:
        raise LandscapeError(f"a batch must hold tensors with a batch dimension, got {type(batch).__name__}")
    return int(ts[0].shape[0])


def to_device(batch, device: torch.device, channels_last: bool = False, non_blocking: bool = False):
    """``batch`` with every tensor on ``device`` (4-D float tensors channels-last if asked)."""
    if torch.is_tensor(batch):
        t = batch.to(device, non_blocking=non_blocking)
        if channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, channels_last, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(to_device(v, device, channels_last, non_blocking) for v in batch)
    return batch


def is_hf_model(model: nn.Module) -> bool:
    """A Hugging Face ``transformers`` model (it takes its inputs by keyword)."""
    return hasattr(model, "main_input_name") and hasattr(model, "config")


def forward(model: nn.Module, batch) -> torch.Tensor:
    """The model's output on a batch: ``model(x)`` for ``(x, y, ...)``, else ``model(batch)``.

    A Hugging Face model takes a dict batch as keywords, ``model(**batch)``, and ``(ids, labels)``
    of one shape as ``model(input_ids=ids, labels=labels)``, so it returns its own loss."""
    if is_hf_model(model):
        if isinstance(batch, Mapping):
            return model(**batch)
        if isinstance(batch, tuple | list) and len(batch) >= 2 and torch.is_tensor(batch[1]) and \
                tuple(batch[1].shape) == tuple(batch[0].shape) and not batch[1].is_floating_point():
            return model(**{model.main_input_name: batch[0], "labels": batch[1]})
        return model(batch[0] if isinstance(batch, tuple | list) else batch)
    if isinstance(batch, tuple | list):
        return model(batch[0])
    return model(batch)


def inputs_of(batch):
    """What :func:`forward` passes to the model."""
    return batch[0] if isinstance(batch, tuple | list) else batch


def _nbytes(batch) -> int:
    return sum(t.numel() * t.element_size() for t in leaves(batch))


class Batches:
    """A re-iterable of ``(batch, n)`` pairs on :attr:`device`, ``n`` samples in all."""

    device: torch.device
    n: int
    kind: str

    def __iter__(self) -> Iterator[tuple[Batch, int]]:
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A checksum of the data (not of where it came from), for provenance and resume."""
        raise NotImplementedError

    def first(self, count: int = 2):
        """A batch of (at most) the first ``count`` samples, for shape checks."""
        raise NotImplementedError


class TensorBatches(Batches):
    """Tensors of one length on the device, cut into batches of :attr:`batch_size` by slicing.

    ``resident=False`` keeps them in (pinned) host memory and moves one batch at a time: for a
    GPU without room for the whole split.
    """

    kind = "tensors"

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, device: torch.device,
                 channels_last: bool = False, resident: bool = True, checksum: str | None = None):
        self.device, self.channels_last, self.resident = device, channels_last, resident
        self.n = len(tensors[0])
        self.batch_size = max(1, min(int(batch_size), self.n))
        self._checksum = checksum
        if resident:
            self.tensors = tuple(to_device(t, device, channels_last) for t in tensors)
        else:
            self.tensors = tuple(t.pin_memory() if device.type == "cuda" else t for t in tensors)

    def with_batch_size(self, batch_size: int) -> TensorBatches:
        """The same data cut into batches of another size (no copy)."""
        other = object.__new__(TensorBatches)
        other.__dict__.update(self.__dict__)
        other.batch_size = max(1, min(int(batch_size), self.n))
        return other

    def slice(self, lo: int, hi: int):
        """Samples ``lo:hi`` as a batch on the device."""
        part = tuple(t[lo:hi] for t in self.tensors)
        if not self.resident:
            part = to_device(part, self.device, self.channels_last, non_blocking=True)
        return part if len(part) > 1 else part[0]

    def __iter__(self) -> Iterator[tuple[Batch, int]]:
        for lo in range(0, self.n, self.batch_size):
            hi = min(self.n, lo + self.batch_size)
            yield self.slice(lo, hi), hi - lo

    def first(self, count: int = 2):
        return self.slice(0, min(count, self.n))

    def fingerprint(self) -> str:
        if self._checksum is None:
            self._checksum = data_checksum(self.tensors)
        return self._checksum



def data_checksum(tensors) -> str:
    """``sha256:...`` of tensors' dtypes, shapes and values, wherever they are: the data's
    fingerprint in every file."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(tensor_bytes(t))
    return "sha256:" + h.hexdigest()


def _sample_digests(batch, n: int) -> list[bytes]:
    ts = [t.detach().cpu().contiguous() for t in leaves(batch)]
    out = []
    for i in range(n):
        h = hashlib.sha256()
        for t in ts:
            h.update(tensor_bytes(t[i]))
        out.append(h.digest())
    return out


def _multiset_checksum(digests: list[bytes]) -> str:
    """Order-independent: a shuffled loader of the same samples gives the same checksum."""
    h = hashlib.sha256()
    for d in sorted(digests):
        h.update(d)
    return "samples-sha256:" + h.hexdigest()


class CachedBatches(Batches):
    """The batches of a loader, read once and kept on the device."""

    kind = "cached"

    def __init__(self, batches: list[tuple[Batch, int]], device: torch.device, checksum: str):
        self.batches, self.device, self._checksum = batches, device, checksum
        self.n = sum(n for _, n in batches)

    def __iter__(self) -> Iterator[tuple[Batch, int]]:
        return iter(self.batches)

    def first(self, count: int = 2):
        return self.batches[0][0]

    def fingerprint(self) -> str:
        return self._checksum


class StreamedBatches(Batches):
    """A loader read batch by batch at every pass, each batch moved to the device as it comes."""

    kind = "streamed"

    def __init__(self, source: Iterable, device: torch.device, channels_last: bool, n: int, checksum: str,
                 first_batch):
        self.source, self.device, self.channels_last = source, device, channels_last
        self.n, self._checksum, self._first = n, checksum, first_batch

    def __iter__(self) -> Iterator[tuple[Batch, int]]:
        for batch in self.source:
            yield to_device(batch, self.device, self.channels_last, non_blocking=True), size_of(batch)

    def first(self, count: int = 2):
        return self._first

    def fingerprint(self) -> str:
        return self._checksum


def default_budget(device: torch.device) -> int:
    """Bytes of data held on ``device`` at most: a quarter of its free memory (GPU), or of the
    machine's available memory (CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return (available_bytes() or 8 << 30) // 4


def tensors_of(data) -> tuple[torch.Tensor, ...] | None:
    """The tensors behind in-memory data (a :class:`landscape.Dataset`, ``(X, y)``, a map-style
    torch Dataset read once), or None for a loader."""
    if isinstance(data, Dataset):
        return (data.x, data.y)
    if isinstance(data, tuple | list) and data and all(torch.is_tensor(t) for t in data):
        lengths = {len(t) for t in data}
        if len(lengths) != 1:
            raise LandscapeError(f"the data tensors differ in length: {sorted(lengths)}")
        return tuple(data)
    if torch.is_tensor(data):
        return (data,)
    if isinstance(data, torch.utils.data.Dataset) and hasattr(data, "__len__") and \
            not isinstance(data, torch.utils.data.IterableDataset):
        if len(data) == 0:
            raise LandscapeError("the data is empty")
        loader = torch.utils.data.DataLoader(data, batch_size=512, shuffle=False)
        try:
            parts = [leaves(b) for b in loader]
            return tuple(torch.cat(col) for col in zip(*parts, strict=True))
        except (TypeError, RuntimeError, ValueError) as exc:
            raise LandscapeError(f"cannot collate the dataset's items into tensors ({exc})") from None
    return None


def as_batches(data, device: torch.device | str = "cpu", batch_size: int = 256, channels_last: bool = False,
               memory_budget: int | None = None) -> Batches:
    """``data`` as :class:`Batches` on ``device`` (see the module docstring)."""
    device = torch.device(device)
    if isinstance(data, Batches):
        return data
    budget = default_budget(device) if memory_budget is None else memory_budget
    tensors = tensors_of(data)
    if tensors is not None:
        if len(tensors[0]) == 0:
            raise LandscapeError("the data is empty")
        resident = device.type == "cpu" or sum(t.numel() * t.element_size() for t in tensors) <= budget
        return TensorBatches(tensors, batch_size, device, channels_last, resident)
    if not isinstance(data, Iterable) or isinstance(data, str | bytes | Mapping):
        raise LandscapeError(f"data must be a Dataset, (X, y) tensors, a torch Dataset or an iterable of "
                             f"batches (a DataLoader), got {type(data).__name__}")
    if iter(data) is data:
        raise LandscapeError("data is an iterator that can be read only once (a generator?); give a "
                             "re-iterable such as a DataLoader or a list of batches")
    cached: list[tuple[Batch, int]] | None = []
    digests: list[bytes] = []
    used, n, first = 0, 0, None
    for batch in data:
        size = size_of(batch)
        digests += _sample_digests(batch, size)
        n += size
        if first is None:
            first = to_device(batch, device, channels_last)
        if cached is not None:
            used += _nbytes(batch)
            if used <= budget:
                cached.append((to_device(batch, device, channels_last), size))
            else:
                cached = None  # too big: stream it instead
    if n == 0:
        raise LandscapeError("the data is empty")
    checksum = _multiset_checksum(digests)
    if cached is not None:
        return CachedBatches(cached, device, checksum)
    return StreamedBatches(data, device, channels_last, n, checksum, first)


__all__ = [
    "Batches", "CachedBatches", "StreamedBatches", "TensorBatches", "as_batches", "forward", "inputs_of",
    "leaves", "size_of", "tensors_of", "to_device",
]


def by_split(data) -> dict[str, object]:
    """``data`` as ``{split: data}``: a mapping of splits as it is, anything else is ``train``."""
    if isinstance(data, Mapping) and data and all(isinstance(k, str) for k in data) and \
            not any(torch.is_tensor(v) for v in data.values()):
        return dict(data)
    return {"train": data}
