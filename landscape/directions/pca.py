"""The optimization path of a training run, seen in its first two principal directions.

Li et al., "Visualizing the Optimization Path": each checkpoint ``i`` of a run gives the row
``v_i = theta_i - theta_final`` (trainable parameters for ``dir_type="weights"``, the whole state
dict for ``"states"``; with ``ignore="biasbn"`` the 1-D tensors are left out and get a zero
direction). The two directions are the first two principal components of these rows, found as
scikit-learn's ``PCA`` does (and as the original tool, which calls it, does): the rows are
*centered* on their mean first, and each component is a unit vector whose largest-magnitude
entry is positive. Every checkpoint is then placed at the least-squares coordinates
``argmin_(a, b) ||v_i - a d_1 - b d_2||`` (not centered: the final model sits at (0, 0)), and
the distance left, the residual, is recorded.

Memory: nothing of size parameters x parameters is ever built. The n x n Gram matrix of the rows
is accumulated from blocks of at most ``cache_bytes`` of float32 rows; with B blocks each
checkpoint is read at most B times (one block holds a whole run of a small model, read once; a
run of 300 checkpoints of a 1M-parameter network needs 1.2 GB, so under the default 1 GiB it
takes two blocks). Beyond the block, one checkpoint, the final model, two float64 directions and
~300 MB of float64 scratch are held at a time: under 2 GB in all for that run.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.io.checkpoint import Checkpoint, load_into_, load_state_dict, read_checkpoint
from landscape.io.directions_file import Direction
from landscape.io.trajectory_file import Trajectory
from landscape.runtime.progress import Work
from landscape.runtime.provenance import environment
from landscape.space.params import ignored, live_tensors

CHUNK = 1 << 16  # columns converted to float64 at a time when forming dot products


def _natural_key(path: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def expand_checkpoints(patterns: str | Sequence[str]) -> list[str]:
    """The files the glob patterns (or plain paths) name, each once, in natural order.

    Natural order compares the numbers in the names as numbers: ``model_2.pt`` comes before
    ``model_10.pt``.
    """
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    found: set[str] = set()
    for pattern in patterns:
        matches = glob.glob(pattern) if glob.has_magic(pattern) else [pattern]
        matches = [m for m in matches if os.path.isfile(m)]
        if not matches:
            raise LandscapeError(f"no checkpoint file matches {pattern!r}")
        found.update(matches)
    return sorted(found, key=_natural_key)


def epoch_of(path: str) -> int:
    """The last number in a file name (``model_150.pt`` -> 150), or -1."""
    numbers = re.findall(r"\d+", os.path.basename(path))
    return int(numbers[-1]) if numbers else -1


def _state(model: nn.Module, dir_type: str, unsafe_pickle: bool, path: str,
           tensors: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """The tensors a direction moves (``dir_type``) of ``model`` loaded with the checkpoint ``path``
    (``tensors``: its state dict, already read)."""
    load_into_(model, load_state_dict(path, unsafe_pickle) if tensors is None else tensors,
               source=f"checkpoint {path!r}")
    return live_tensors(model, dir_type)


def _active(template: dict[str, torch.Tensor], ignore: str) -> list[str]:
    return [k for k, v in template.items() if v.is_floating_point() and not ignored(v, ignore)]


def _dot64(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """``a @ b.T`` summed in float64, converting ``CHUNK`` columns at a time."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64)
    for c in range(0, a.shape[1], CHUNK):
        out += a[:, c:c + CHUNK].double() @ b[:, c:c + CHUNK].double().T
    return out.numpy()


def _reads(n: int, block: int) -> int:
    """How many times :func:`_gram` and then :func:`_directions` read a checkpoint (``n`` rows held
    ``block`` at a time)."""
    starts = range(0, n, block)
    last = n - starts[-1]
    return sum(min(block, n - s) + n - min(n, s + block) for s in starts) + n - last


@contextmanager
def _reading(read: Callable[[int], torch.Tensor], total: int, desc: str, progress: bool):
    """``read`` counting its calls into a progress stage of ``total`` checkpoint reads (or itself)."""
    if not progress:
        yield read
        return
    count = iter(range(total))
    with Work(desc, [1.0] * total, unit="checkpoint reads") as work:
        def counted(i: int) -> torch.Tensor:
            out = read(i)
            k = next(count, None)
            if k is not None:
                work.finish(k)
            return out

        yield counted


def _gram(row: Callable[[int], torch.Tensor], n: int, block: int):
    """The Gram matrix of the ``n`` rows, holding at most ``block`` of them at once.

    Returns it with the last block still in memory, ``(G, first_index, rows)``.
    """
    g = np.zeros((n, n))
    start, rows = 0, torch.empty(0)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = None  # free the previous block before filling the next
        first = row(start)
        rows = torch.empty(stop - start, first.numel())
        rows[0] = first
        for i in range(start + 1, stop):
            rows[i - start] = row(i)
        g[start:stop, start:stop] = _dot64(rows, rows)
        for j in range(stop, n):
            g[start:stop, j] = _dot64(rows, row(j)[None])[:, 0]
            g[j, start:stop] = g[start:stop, j]
    return g, start, rows


def _components(g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W`` (n x 2) with ``d_k = sum_i W[i, k] v_i``, the two variances and their ratios."""
    n = len(g)
    h = np.eye(n) - 1.0 / n
    gc = h @ g @ h  # the Gram matrix of the centered rows
    lam, u = np.linalg.eigh((gc + gc.T) / 2)
    lam, u = lam[::-1][:2], u[:, ::-1][:, :2]
    total = float(np.trace(gc))
    if total <= 0 or lam[1] <= 1e-12 * total:
        raise LandscapeError(
            "the checkpoints do not span two dimensions after centering (identical or collinear "
            "checkpoints?); PCA needs at least 3 distinct checkpoints off one line"
        )
    w = h @ u / np.sqrt(lam)
    return w, lam / (n - 1), lam / total


def _directions(row, n: int, w: np.ndarray, cached: tuple[int, torch.Tensor]) -> np.ndarray:
    """``d = sum_i v_i W[i]`` as a (P, 2) float64 array, reusing the rows still in memory."""
    start, rows = cached
    d = np.zeros((rows.shape[1], 2))
    wt = torch.from_numpy(w)
    for c in range(0, rows.shape[1], CHUNK):
        d[c:c + CHUNK] = (rows[:, c:c + CHUNK].double().T @ wt[start:start + len(rows)]).numpy()
    for i in range(n):
        if not start <= i < start + len(rows):
            d += np.outer(row(i).double().numpy(), w[i])
    return d


def _project(g: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coordinates of every row on ``d = X^T W`` and the residual norms, from G."""
    b = w.T @ g  # b[:, i] = d^T v_i
    coords = np.linalg.solve(w.T @ g @ w, b)  # (d^T d)^-1 d^T v_i
    residual = np.sqrt(np.clip(np.diag(g) - np.einsum("ki,ki->i", coords, b), 0, None))
    return coords, residual


def _unflatten(flat: np.ndarray, shapes: dict[str, tuple], active: list[str]) -> Direction:
    """A named direction: the slices of ``flat`` for the active tensors, zeros elsewhere."""
    out, offset, moved = {}, 0, set(active)
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        if name in moved:
            out[name] = torch.from_numpy(flat[offset:offset + size]).float().reshape(shape)
            offset += size
        else:
            out[name] = torch.zeros(shape)
    return out


def pca_directions(
    checkpoints: Sequence[str],
    final: str | Checkpoint,
    model: nn.Module,
    dir_type: str = "weights",
    ignore: str = "biasbn",
    unsafe_pickle: bool = False,
    cache_bytes: int = 1 << 30,
    progress: bool = False,
) -> Trajectory:
    """PCA directions of the path through ``checkpoints`` around ``final`` (see the module doc).

    ``final``: its path or the :class:`landscape.io.checkpoint.Checkpoint` already read. ``model`` is
    the architecture: every checkpoint must load into it, and it tells parameters from buffers.
    Its own values are overwritten. The directions come in the order and with the
    names of :func:`landscape.space.params.live_tensors`, so ``landscape-surf`` can load them.
    ``progress``: progress lines counting the checkpoints read.
    """
    checkpoints = list(checkpoints)
    if len(checkpoints) < 3:
        raise LandscapeError(
            f"{len(checkpoints)} checkpoint(s) given; the two principal directions of a path "
            "need at least 3"
        )

    state = partial(_state, model, dir_type, unsafe_pickle)

    final = final if isinstance(final, Checkpoint) else read_checkpoint(final, unsafe_pickle)
    live = state(final.path, final.state_dict)
    active = _active(live, ignore)
    if not active:
        raise LandscapeError(
            f"no tensor of the model is moved with dir_type={dir_type!r} and ignore={ignore!r}"
        )
    shapes = {k: tuple(v.shape) for k, v in live.items()}

    def flat(tensors: dict[str, torch.Tensor], path: str) -> torch.Tensor:
        v = torch.cat([tensors[k].detach().cpu().float().reshape(-1) for k in active])
        if not torch.isfinite(v).all():
            raise LandscapeError(f"checkpoint {path!r} holds NaN or infinite weights: it has no place on the path")
        return v

    origin = flat(live, final.path)

    def row(i: int) -> torch.Tensor:
        return flat(state(checkpoints[i]), checkpoints[i]) - origin

    n = len(checkpoints)
    block = max(1, min(n, cache_bytes // (4 * origin.numel())))
    with _reading(row, _reads(n, block), "PCA of the path", progress) as read:
        g, start, rows = _gram(read, n, block)
        w, variance, ratio = _components(g)
        d = _directions(read, n, w, (start, rows))
    signs = np.sign(d[np.abs(d).argmax(axis=0), [0, 1]])  # scikit-learn's svd_flip convention
    signs[signs == 0] = 1
    d, w = d * signs, w * signs
    coords, residual = _project(g, w)
    return Trajectory(
        directions=[_unflatten(d[:, k], shapes, active) for k in range(2)],
        xcoord=coords[0], ycoord=coords[1], explained_variance_ratio=ratio, residual=residual,
        checkpoints=[os.path.abspath(p) for p in checkpoints],
        epochs=np.array([epoch_of(p) for p in checkpoints]), explained_variance=variance,
        attrs={
            "method": "pca", "model": os.path.abspath(final.path), "model_sha256": final.sha256,
            "dir_type": dir_type, "ignore": ignore, **environment(),
        },
    )


def project_onto(
    checkpoints: Sequence[str],
    final: str | Checkpoint,
    model: nn.Module,
    directions: Sequence[Direction],
    dir_type: str = "weights",
    ignore: str = "biasbn",
    unsafe_pickle: bool = False,
    progress: bool = False,
) -> Trajectory:
    """The path through ``checkpoints`` in the plane of two given ``directions`` around ``final``
    (the original tool's ``plot_trajectory.py --dir_file``), instead of PCA's: each checkpoint at
    the least-squares coordinates ``argmin_(a, b) ||v_i - a d_1 - b d_2||`` over the tensors that
    ``ignore`` keeps, so a surface computed on the same directions has the path in its own axes.
    ``explained_variance_ratio``: the share of the (centered) path's variance along each
    direction. ``progress``: progress lines counting the checkpoints read."""
    checkpoints = list(checkpoints)
    if len(checkpoints) < 2:
        raise LandscapeError(f"{len(checkpoints)} checkpoint(s) given; a path needs at least 2")
    if len(directions) < 2:
        raise LandscapeError(f"{len(directions)} direction(s) given; a path in a plane needs 2")

    state = partial(_state, model, dir_type, unsafe_pickle)

    final = final if isinstance(final, Checkpoint) else read_checkpoint(final, unsafe_pickle)
    live = state(final.path, final.state_dict)
    names = list(live)
    for k, d in enumerate(directions[:2]):
        if list(d) != names or any(tuple(d[n].shape) != tuple(live[n].shape) for n in names):
            raise LandscapeError(f"direction {k + 1} does not fit the model's tensors (dir_type {dir_type!r}): "
                                 "another architecture, or made with another dir_type")
    active = _active(live, ignore)
    if not active:
        raise LandscapeError(f"no tensor of the model is moved with dir_type={dir_type!r} and ignore={ignore!r}")

    def flat(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([tensors[k].detach().cpu().double().reshape(-1) for k in active])

    d = torch.stack([flat(directions[0]), flat(directions[1])])  # (2, P)
    if not torch.isfinite(d).all():
        raise LandscapeError("the directions hold NaN or infinite values")
    dd = (d @ d.T).numpy()
    if abs(np.linalg.det(dd)) <= 1e-12 * dd[0, 0] * dd[1, 1]:
        raise LandscapeError("the two directions are parallel (or one is zero) over the tensors moved: no plane")
    origin = flat(live)
    b, sq, total = np.zeros((2, len(checkpoints))), np.zeros(len(checkpoints)), torch.zeros_like(origin)
    with _reading(lambda i: flat(state(checkpoints[i])), len(checkpoints), "projection of the path", progress) as read:
        for i, path in enumerate(checkpoints):
            v = read(i) - origin
            if not torch.isfinite(v).all():
                raise LandscapeError(f"checkpoint {path!r} holds NaN or infinite weights")
            b[:, i], sq[i] = (d @ v).numpy(), float(v @ v)
            total += v
    coords = np.linalg.solve(dd, b)
    residual = np.sqrt(np.clip(sq - np.einsum("ki,ki->i", coords, b), 0, None))
    n = len(checkpoints)
    mean = (total / n).numpy()
    unit = d.numpy() / np.sqrt(np.diag(dd))[:, None]
    along = b / np.sqrt(np.diag(dd))[:, None] - (unit @ mean)[:, None]  # centered projections
    spread = float(sq.sum() - n * mean @ mean)
    variance = (along**2).sum(axis=1) / max(n - 1, 1)
    ratio = (along**2).sum(axis=1) / spread if spread > 0 else np.full(2, np.nan)
    return Trajectory(
        directions=[{k: v.detach().cpu().float().clone() for k, v in dk.items()} for dk in directions[:2]],
        xcoord=coords[0], ycoord=coords[1], explained_variance_ratio=ratio, residual=residual,
        checkpoints=[os.path.abspath(p) for p in checkpoints],
        epochs=np.array([epoch_of(p) for p in checkpoints]), explained_variance=variance,
        attrs={
            "method": "directions", "model": os.path.abspath(final.path), "model_sha256": final.sha256,
            "dir_type": dir_type, "ignore": ignore, **environment(),
        },
    )


__all__ = ["epoch_of", "expand_checkpoints", "pca_directions", "project_onto"]
