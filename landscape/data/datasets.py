"""Datasets as tensors in memory: ``load_dataset("digits", split="train")``.

Every loader returns a :class:`Dataset` holding the whole split as two tensors, already
normalized, so the evaluator can move it to the device once and never touch a DataLoader.

Sources: ``digits`` (scikit-learn), ``synthetic``, ``cifar10`` / ``cifar100`` (the standard
python-pickle folders ``cifar-10-batches-py`` / ``cifar-100-python``), ``mnist`` (IDX files,
gzipped or not) and ``package.module:callable``. Training-time helpers: :func:`augment` (random
crop with 4-pixel zero padding + horizontal flip, on a whole batch, in torch) and
:func:`apply_label_noise`.
"""

from __future__ import annotations

import gzip
import inspect
import math
import os
import pickle
import struct
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from landscape.errors import LandscapeError, is_int
from landscape.runtime.memory import check_fits
from landscape.runtime.usercode import call_user, load_callable

# Per-channel normalization constants (of the training split, on [0, 1] pixels).
# CIFAR-10 uses the original loss-landscape tool's constants (cifar10/dataloader.py:
# mean (125.3, 123.0, 113.9)/255, std (63.0, 62.1, 66.7)/255) so that its checkpoints are
# evaluated on exactly the inputs they were trained on. The commonly quoted per-pixel values
# (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616) differ from these by < 1.5%.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((125.3 / 255, 123.0 / 255, 113.9 / 255), (63.0 / 255, 62.1 / 255, 66.7 / 255)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": ((0.1307,), (0.3081,)),
}

SPLITS = ("train", "test")
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
CIFAR_FILES = {
    ("cifar10", "train"): [f"data_batch_{i}" for i in range(1, 6)],
    ("cifar10", "test"): ["test_batch"],
    ("cifar100", "train"): ["train"],
    ("cifar100", "test"): ["test"],
}
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass
class Dataset:
    """One split of a dataset: inputs ``x`` (N, ...) float32 and targets ``y`` (N,)."""

    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    name: str
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int, seed: int = 0, what: str = "samples", split: str = "") -> tuple[Dataset, np.ndarray]:
        """A fixed random subset of ``n`` samples and the sorted indices it took; all of them when
        there are fewer, with a warning naming the option ``what`` (and the ``split``)."""
        if n <= 0:
            raise LandscapeError(f"`{what}` must be positive, got {n}")
        if n > len(self):
            warnings.warn(f"`{what}` {n:,} is more than the {len(self):,} samples of {self.name}"
                          + (f" ({split})" if split else "") + f": all {len(self):,} are used", stacklevel=2)
        if n >= len(self):
            return self, np.arange(len(self))
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        t = torch.from_numpy(idx)
        return Dataset(self.x[t], self.y[t], self.num_classes, self.name, dict(self.info)), idx


def _digits(split: str, raw: bool) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32) / 16.0
    y = bunch.target.astype(np.int64)
    order = np.random.RandomState(0).permutation(len(y))
    n_test = len(y) // 5
    idx = order[n_test:] if split == "train" else order[:n_test]
    x, y = x[idx][:, None], y[idx]
    if not raw:  # statistics of the training split, fixed so train and test match
        x = (x - 0.3056) / 0.3758
    return Dataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), 10, "digits")


def _synthetic(
    split: str, shape: tuple[int, ...], num_classes: int, size: int, seed: int
) -> Dataset:
    """Gaussian inputs, labels from a fixed random linear teacher (so there is signal to learn)."""
    numel = math.prod(shape)
    check_fits(4 * (size * numel + numel * num_classes) + 8 * size,  # inputs, the teacher, labels
               f"the synthetic data ({size} x {'x'.join(map(str, shape))} samples, `synthetic_size` x "
               f"`synthetic_shape`, {num_classes} classes)")
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    x = torch.randn(size, *shape, generator=g)
    teacher_gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(int(np.prod(shape)), num_classes, generator=teacher_gen)
    y = (x.flatten(1) @ teacher).argmax(1)
    return Dataset(x, y, num_classes, "synthetic", {"shape": list(shape), "size": size})


def _normalize(x: torch.Tensor, name: str, raw: bool, info: dict) -> torch.Tensor:
    """Scale uint8 pixels (N, C, H, W) to [0, 1], then per-channel standardize unless ``raw``."""
    x = x.float().div_(255.0)
    mean, std = NORMALIZATION[name]
    if raw:
        info["normalization"] = "none ([0, 1] pixels)"
        info["pad_fill"] = [0.0] * len(mean)
        return x
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    info["normalization"] = {"mean": list(mean), "std": list(std)}
    # A zero-padded raw pixel becomes -mean/std after normalization (torchvision pads first).
    info["pad_fill"] = [-a / b for a, b in zip(mean, std, strict=True)]
    return x.sub_(m).div_(s)


# ----------------------------------------------------------------------------------- CIFAR


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: the CIFAR batches are pickles, and
    unpickling arbitrary objects from a downloaded file could run arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _read_cifar_batch(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise LandscapeError(f"{path!r} is not a CIFAR python batch file ({exc})") from None
    if not isinstance(obj, dict):
        raise LandscapeError(f"{path!r} is not a CIFAR python batch file (no dict inside)")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _find_folder(root: str | None, name: str, folder: str, hint: str) -> str:
    if root is None:
        raise LandscapeError(f"dataset {name!r} needs `data_root` DIR (the folder holding {hint})")
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        raise LandscapeError(f"data root {root!r} does not exist")
    nested = os.path.join(root, folder)
    return nested if os.path.isdir(nested) else root


def _cifar(name: str, root: str | None, split: str, raw: bool) -> Dataset:
    folder = _find_folder(root, name, CIFAR_FOLDERS[name], CIFAR_FOLDERS[name])
    files = CIFAR_FILES[(name, split)]
    missing = [f for f in files if not os.path.isfile(os.path.join(folder, f))]
    if missing:
        raise LandscapeError(
            f"{name} folder {folder!r} is missing {', '.join(missing)} (expected the python "
            f"version, {CIFAR_FOLDERS[name]}, with files {', '.join(files)})"
        )
    label_key = "labels" if name == "cifar10" else "fine_labels"
    xs, ys = [], []
    for f in files:
        path = os.path.join(folder, f)
        batch = _read_cifar_batch(path)
        if "data" not in batch or label_key not in batch:
            raise LandscapeError(f"{path!r} has no 'data' and {label_key!r} entries")
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
            raise LandscapeError(
                f"{path!r}: expected data of shape (N, 3072) and N labels, got {data.shape} "
                f"and {labels.shape}"
            )
        xs.append(data.reshape(-1, 3, 32, 32))  # rows are 1024 R, 1024 G, 1024 B, row-major
        ys.append(labels)
    num_classes = 10 if name == "cifar10" else 100
    y = np.concatenate(ys)
    if y.min() < 0 or y.max() >= num_classes:
        raise LandscapeError(f"{name} labels outside 0..{num_classes - 1} in {folder!r}")
    info: dict = {"root": os.path.abspath(folder), "files": files}
    x = _normalize(torch.from_numpy(np.concatenate(xs)), name, raw, info)
    return Dataset(x.contiguous(), torch.from_numpy(y), num_classes, name, info)


# ----------------------------------------------------------------------------------- MNIST


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (``.gz`` or not): big-endian magic ``0 0 type ndim``, dims, data."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            buf = f.read()
    except (OSError, EOFError) as exc:
        raise LandscapeError(f"cannot read IDX file {path!r} ({exc})") from None
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in dtypes:
        raise LandscapeError(f"{path!r} is not an IDX file (bad magic number)")
    ndim = buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise LandscapeError(f"{path!r} is truncated (header)")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = np.dtype(dtypes[buf[2]])
    count = int(np.prod(dims)) if dims else 1
    if len(buf) - header < count * dtype.itemsize:
        raise LandscapeError(f"{path!r} is truncated: header says {dims}, data is shorter")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="))


def _mnist_file(folder: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _mnist(root: str | None, split: str, raw: bool) -> Dataset:
    base = _find_folder(root, "mnist", "MNIST", "train-images-idx3-ubyte[.gz] etc.")
    candidates = [base, os.path.join(base, "raw"), os.path.join(base, "MNIST", "raw")]
    img_stem, lbl_stem = MNIST_FILES[split]
    folder = next((c for c in candidates if _mnist_file(c, img_stem)), base)
    paths = [_mnist_file(folder, img_stem), _mnist_file(folder, lbl_stem)]
    missing = [s for s, p in zip((img_stem, lbl_stem), paths, strict=True) if p is None]
    if missing:
        raise LandscapeError(f"MNIST folder {folder!r} is missing {', '.join(missing)} (or .gz)")
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise LandscapeError(
            f"MNIST files in {folder!r} do not match: images {images.shape}, labels {labels.shape}"
        )
    info: dict = {"root": os.path.abspath(folder), "files": [os.path.basename(p) for p in paths]}
    x = _normalize(torch.from_numpy(images.astype(np.uint8)[:, None]), "mnist", raw, info)
    return Dataset(x.contiguous(), torch.from_numpy(labels.astype(np.int64)), 10, "mnist", info)


# --------------------------------------------------------------------------- module:callable


def _from_callable(spec: str, root: str | None, split: str) -> Dataset:
    fn = load_callable(spec, "dataset")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {k: v for k, v in (("split", split), ("root", root)) if k in params}
    obj = call_user(fn, f"dataset {spec!r}", **kwargs)
    if isinstance(obj, tuple | list) and len(obj) == 2 and all(torch.is_tensor(t) for t in obj):
        x, y = obj
    elif hasattr(obj, "__len__") and hasattr(obj, "__getitem__"):
        if len(obj) == 0:
            raise LandscapeError(f"dataset {spec!r} is empty")
        pairs = call_user(lambda: [obj[i] for i in range(len(obj))], f"dataset {spec!r}")
        try:
            x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
            y = torch.as_tensor([int(p[1]) for p in pairs])
        except (TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise LandscapeError(
                f"dataset {spec!r} items are not (input, label) pairs ({exc})"
            ) from None
    else:
        raise LandscapeError(
            f"dataset {spec!r} returned {type(obj).__name__}; expected an (X, y) tuple of tensors "
            "or a dataset of (x, y) pairs"
        )
    regression = y.is_floating_point()  # float targets: a regression (use --loss mse)
    if len(x) != len(y) or (y.ndim != 1 and not regression):
        raise LandscapeError(
            f"dataset {spec!r}: {len(x)} inputs but labels of shape {tuple(y.shape)}"
        )
    for what, t in (("inputs", x), ("targets", y)):
        bad = ~torch.isfinite(t) if t.is_floating_point() else None
        if bad is not None and bad.any():  # every loss would be NaN: a surface of NaN, silently
            first = int(bad.reshape(len(t), -1).any(dim=1).nonzero()[0, 0])
            n = int(bad.sum())
            raise LandscapeError(f"dataset {spec!r} has {n} NaN or infinite value{'s' if n > 1 else ''} in its {what} "
                                 f"(the first in sample {first}): every loss on it would be NaN")
    if regression:
        return Dataset(x.float().contiguous(), y.float(), 0, spec, {"callable": spec})
    y = y.long()
    num_classes = int(getattr(obj, "num_classes", 0) or (int(y.max()) + 1 if len(y) else 0))
    return Dataset(x.float().contiguous(), y, num_classes, spec, {"callable": spec})


def _tokens(path: str, seq_len: int | None) -> Dataset:
    """A 1-D array of token ids (``.npy``, or a ``.bin`` of uint16 ids) cut into sequences of
    ``seq_len`` (the remainder dropped); the labels are the ids (next-token targets)."""
    if not seq_len or seq_len < 2:
        raise LandscapeError("--dataset tokens:FILE needs --seq-len N (at least 2 tokens per sequence)")
    if not os.path.isfile(path):
        raise LandscapeError(f"token file {path!r} does not exist")
    try:
        ids = np.load(path, mmap_mode="r", allow_pickle=False) if path.endswith(".npy") else \
            np.memmap(path, dtype=np.uint16, mode="r")
    except (OSError, ValueError) as exc:
        raise LandscapeError(f"{path!r} is not a token file (a .npy array or a .bin of uint16 ids): {exc}") from None
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise LandscapeError(f"{path!r} holds a {ids.dtype} array of shape {ids.shape}; token ids are a 1-D "
                             "integer array")
    n = len(ids) // seq_len
    if n == 0:
        raise LandscapeError(f"{path!r} has {len(ids)} tokens: fewer than one sequence of {seq_len}")
    x = torch.from_numpy(np.array(ids[:n * seq_len], dtype=np.int64)).view(n, seq_len)  # a copy: writable
    if len(x) and int(x.min()) < 0:
        at = int(np.argmax(np.asarray(x).ravel() < 0))
        raise LandscapeError(f"{path!r} holds negative token ids ({int(x.view(-1)[at])} at position {at}): token ids "
                             "are 0 or more")
    return Dataset(x, x, int(x.max()) + 1, f"tokens:{path}", {"seq_len": seq_len, "tokens": n * seq_len})


# ------------------------------------------------------------------------------ entry point


def load_dataset(
    name: str,
    *,
    root: str | None = None,
    split: str = "train",
    raw: bool = False,
    shape: tuple[int, ...] = (3, 32, 32),
    num_classes: int = 10,
    size: int = 2048,
    seed: int = 0,
    seq_len: int | None = None,
) -> Dataset:
    """Load a split of a named dataset (``digits``, ``synthetic``, ``cifar10``, ``cifar100``,
    ``mnist`` or ``package.module:callable``) into memory, normalized unless ``raw``; or
    ``tokens:FILE`` (every split: the file) cut into sequences of ``seq_len`` token ids."""
    if split not in SPLITS:
        raise LandscapeError(f"split must be 'train' or 'test', got {split!r}")
    if name.startswith("tokens:"):
        return _tokens(name[len("tokens:"):], seq_len)
    if seq_len is not None:  # refused, not ignored
        raise LandscapeError(f"`seq_len` cuts a token file (dataset tokens:FILE) into sequences; dataset {name!r} "
                             "is not one")
    if name == "digits":
        return _digits(split, raw)
    if name == "synthetic":
        return _synthetic(split, tuple(shape), num_classes, size, seed)
    if name in CIFAR_FOLDERS:
        return _cifar(name, root, split, raw)
    if name == "mnist":
        return _mnist(root, split, raw)
    if ":" in name:
        return _from_callable(name, root, split)
    raise LandscapeError(
        f"unknown dataset {name!r}; choose digits, synthetic, cifar10, cifar100, mnist "
        "or give package.module:callable"
    )


@dataclass(frozen=True)
class DataSpec:
    """Which data a command evaluates, in its options' terms: a named dataset and split, cut to a
    fixed random subset of ``samples`` when given (the data options of landscape-surf,
    landscape-hessian and landscape-prune; landscape-train loads both splits whole). Its counts
    and seeds are checked when it is made; the names when the data is loaded."""

    dataset: str = "digits"
    data_root: str | None = None
    split: str = "train"
    samples: int | None = None
    sample_seed: int = 0
    synthetic_shape: tuple[int, ...] = (3, 32, 32)
    synthetic_size: int = 2048
    synthetic_seed: int = 0
    raw_data: bool = False
    num_classes: int | None = None
    seq_len: int | None = None

    def __post_init__(self):
        if self.dataset is not None and (not isinstance(self.dataset, str) or not self.dataset):  # None: a job's
            # own default (landscape-connect --eval: the curve's data)
            raise LandscapeError(f"`dataset` must be a name or package.module:callable, got {self.dataset!r}")
        for name, low in (("samples", 1), ("sample_seed", 0), ("synthetic_size", 1), ("synthetic_seed", 0),
                          ("num_classes", 1), ("seq_len", 1)):
            value = getattr(self, name)
            if value is None and name in ("samples", "num_classes", "seq_len"):
                continue
            if not is_int(value) or value < low:
                raise LandscapeError(f"`{name}` must be an integer >= {low}, got {value!r}")
        object.__setattr__(self, "synthetic_shape", tuple(self.synthetic_shape))

    @classmethod
    def of(cls, obj) -> DataSpec:
        """The spec from any object with these attributes (a config, parsed options)."""
        return cls(**{f: getattr(obj, f) for f in cls.__dataclass_fields__ if hasattr(obj, f)})

    def load(self, split: str | None = None, what: str = "samples") -> tuple[Dataset, np.ndarray | None]:
        """The split (default ``self.split``, or the first of ``"train,test"``) and the indices of
        the subset taken (None without ``samples``; ``what``: the option's name in a warning that
        there are fewer samples)."""
        split = split or self.split.split(",")[0]
        data = load_dataset(self.dataset, root=self.data_root, split=split, shape=self.synthetic_shape,
                            num_classes=self.num_classes or 10, size=self.synthetic_size, seed=self.synthetic_seed,
                            raw=self.raw_data, seq_len=self.seq_len)
        if len(data) == 0:
            raise LandscapeError(f"dataset {self.dataset!r} ({split}) is empty")
        if self.samples is None:
            return data, None
        return data.subset(self.samples, self.sample_seed, what=what, split=split)

    def provenance(self) -> dict:
        """What a file records about the data besides its checksum."""
        return {
            "dataset": self.dataset, "data_root": os.path.abspath(self.data_root) if self.data_root else "",
            "raw_data": self.raw_data, "num_classes": self.num_classes or "",
            "synthetic": f"{self.synthetic_shape} x {self.synthetic_size}, seed {self.synthetic_seed}"
            if self.dataset == "synthetic" else "",
            "sample_seed": self.sample_seed if self.samples else "",
            **({"seq_len": self.seq_len} if self.seq_len else {}),
        }


# --------------------------------------------------------------------------- training helpers


def augment(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    padding: int = 4,
    flip: bool = True,
    fill: list[float] | tuple[float, ...] | None = None,
) -> torch.Tensor:
    """Random crop after ``padding``-pixel padding, and random horizontal flip, of a batch.

    ``x`` is (N, C, H, W) on any device; each sample gets its own offset and flip, drawn from
    ``generator`` (on the CPU or on x's device). ``fill`` is the per-channel padding value (the
    normalized value of a black pixel, ``Dataset.info["pad_fill"]``; zero when omitted), so this
    matches torchvision's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip`` applied before
    normalization. One gather, no Python loop over samples.
    """
    n, c, h, w = x.shape
    gdev = generator.device if generator is not None else torch.device("cpu")
    oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
    ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=gdev).to(x.device)
    if flip:
        flips = torch.rand(n, generator=generator, device=gdev).to(x.device) < 0.5
    else:
        flips = torch.zeros(n, dtype=torch.bool, device=x.device)
    if padding:
        padded = x.new_empty(n, c, h + 2 * padding, w + 2 * padding)
        if fill is None:
            padded.zero_()
        else:
            padded.copy_(torch.as_tensor(fill, dtype=x.dtype, device=x.device).view(1, c, 1, 1)
                         .expand_as(padded))
        padded[:, :, padding:padding + h, padding:padding + w] = x
    else:
        padded = x
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = oy[:, None] + ar_h  # (N, H)
    cols = torch.where(flips[:, None], ox[:, None] + (w - 1 - ar_w), ox[:, None] + ar_w)  # (N, W)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def apply_label_noise(dataset: Dataset, p: float, seed: int = 0) -> tuple[Dataset, dict]:
    """Replace each label, with probability ``p``, by a uniformly random class (as the original
    tool's ``--label_corrupt_prob``: the random class may equal the true one).

    Returns the new dataset and a record ``{"indices", "original", "noisy"}`` of numpy arrays.
    """
    if not 0.0 <= p <= 1.0:
        raise LandscapeError(f"`label_noise` must be a probability in [0, 1], got {p}")
    rng = np.random.default_rng(seed)
    mask = rng.random(len(dataset)) < p
    idx = np.flatnonzero(mask)
    new = rng.integers(0, dataset.num_classes, size=len(idx))
    y = dataset.y.clone()
    original = y[torch.from_numpy(idx)].numpy().copy()
    y[torch.from_numpy(idx)] = torch.from_numpy(new).to(y.dtype)
    info = dict(dataset.info, label_noise=p, label_noise_seed=seed)
    record = {"indices": idx, "original": original, "noisy": new.astype(np.int64)}
    return Dataset(dataset.x, y, dataset.num_classes, dataset.name, info), record

