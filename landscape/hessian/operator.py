"""Symmetric operators: the Hessian of a network's loss as Hessian-vector products, and a dense matrix.

Every algorithm in :mod:`landscape.hessian` runs on any object with ``size`` and
``matvec(v) -> H v`` (and, when it has one, ``matmat(V) -> H V``): a :class:`HessianOperator`,
a :class:`MatrixOperator`, or a user's own.

**Scale.** ``HessianOperator(convention="mean")`` is the Hessian of the mean loss over the whole
data, ``H = sum_b (n_b / N) H_b`` with ``H_b`` the Hessian of batch ``b``'s mean loss, ``n_b`` its
size and ``N = sum_b n_b``: it does not depend on the batch size. The original loss-landscape tool
(``hess_vec_prod.py``, used by ``plot_hessian_eigen.py``) sums the batch-mean Hessians,
``H_orig = sum_b H_b``, which ``convention="batch_sum"`` reproduces for the same batches. For ``B``
batches of equal size, ``H_orig = B * H`` exactly: its eigenvalues are ``B`` times ours. With
``N = (B - 1) m + r`` (full batches of ``m`` samples, a last one of ``r < m``),
``H_orig = (N / m) H + (1 - r / m) H_last``, ``H_last`` the last batch's mean Hessian: not a
multiple of ``H`` in general; by Weyl's inequality each of its eigenvalues is within
``(1 - r / m) ||H_last||`` of ``N / m`` times ours.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import scipy.sparse.linalg as spla  # imported where used: 0.6 s that a surface without eig never needs

from landscape.data.batches import Batches, TensorBatches, as_batches, default_budget, forward, leaves, to_device
from landscape.errors import LandscapeError
from landscape.evaluation.losses import LOSSES, function_name, resolve_loss, target
from landscape.hessian.layers import rewritten_layers
from landscape.space.params import uses_channels_last

CONVENTIONS = ("mean", "batch_sum")
PARAM_CHOICES = ("all", "original")
DEFAULT_BATCH_SIZE = 256
ORIGINAL_BATCH_SIZE = 128  # the original tool's default --batch_size: batch_sum's default batching

ParamSpec = str | Sequence[str] | Callable[[str, nn.Parameter], bool] | None


@runtime_checkable
class SymmetricOperator(Protocol):
    """What the algorithms need: the dimension and products with a symmetric matrix."""

    size: int

    def matvec(self, v) -> np.ndarray: ...


def matmat(op: SymmetricOperator, V: np.ndarray) -> np.ndarray:
    """``op`` applied to the columns of ``V`` (n, k): ``op.matmat`` when it has one, else column by column."""
    V = np.asarray(V, dtype=np.float64)
    if V.ndim == 1:
        V = V[:, None]
    if hasattr(op, "matmat"):
        return np.asarray(op.matmat(V), dtype=np.float64).reshape(V.shape)
    return np.stack([np.asarray(op.matvec(V[:, j]), dtype=np.float64).ravel() for j in range(V.shape[1])], axis=1)


class MatrixOperator:
    """A dense symmetric matrix as an operator (tests, quadratic models, small problems)."""

    def __init__(self, matrix):
        a = np.asarray(matrix, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise LandscapeError(f"a MatrixOperator needs a square matrix, got shape {a.shape}")
        self.matrix = a
        self.size = a.shape[0]

    def matvec(self, v) -> np.ndarray:
        return self.matrix @ np.asarray(v, dtype=np.float64).reshape(self.size)

    def matmat(self, V) -> np.ndarray:
        return self.matrix @ np.asarray(V, dtype=np.float64).reshape(self.size, -1)

    def as_linear_operator(self) -> spla.LinearOperator:
        return spla.aslinearoperator(self.matrix)


class Shifted:
    """``op - shift * I``: the operator of the original tool's second eigsh run."""

    def __init__(self, op: SymmetricOperator, shift: float):
        self.op, self.shift, self.size = op, float(shift), op.size

    def matvec(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64).reshape(self.size)
        return np.asarray(self.op.matvec(v), dtype=np.float64) - self.shift * v

    def matmat(self, V) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64).reshape(self.size, -1)
        return matmat(self.op, V) - self.shift * V


class Counting:
    """An operator that counts the vectors it is applied to (``count``), and tells
    ``on_product(count)`` after each (progress)."""

    def __init__(self, op: SymmetricOperator, on_product: Callable[[int], None] | None = None):
        self.op, self.size, self.count, self.on_product = op, op.size, 0, on_product

    def matvec(self, v) -> np.ndarray:
        out = np.asarray(self.op.matvec(v), dtype=np.float64).reshape(self.size)
        self._counted(1)
        return out

    def matmat(self, V) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64).reshape(self.size, -1)
        out = matmat(self.op, V)
        self._counted(V.shape[1])
        return out

    def _counted(self, n: int) -> None:
        for _ in range(n):
            self.count += 1
            if self.on_product is not None:
                self.on_product(self.count)


def as_linear_operator(op: SymmetricOperator) -> spla.LinearOperator:
    """``op`` as a float64 :class:`scipy.sparse.linalg.LinearOperator` (symmetric)."""
    import scipy.sparse.linalg as spla

    n = op.size
    return spla.LinearOperator((n, n), matvec=lambda v: np.asarray(op.matvec(np.ravel(v)), dtype=np.float64),
                               matmat=lambda V: matmat(op, V), rmatvec=lambda v: np.asarray(
                                   op.matvec(np.ravel(v)), dtype=np.float64), dtype=np.float64)


# ----------------------------------------------------------------------------- parameters


def math_attention():
    """Attention through its plain math (``sdpa_kernel(SDPBackend.MATH)``) inside the block: the
    fused CPU kernels have no double backward, so Hessian products through
    ``nn.TransformerEncoderLayer`` and ``scaled_dot_product_attention`` failed without it."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3: the default backends
        return nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def select_params(model: nn.Module, params: ParamSpec = None) -> list[tuple[str, nn.Parameter]]:
    """The ``(name, parameter)`` pairs a Hessian is taken with respect to, in the model's order.

    ``None`` or ``"all"``: every trainable parameter. ``"original"``: the trainable tensors with
    more than one dimension, the original loss-landscape tool's choice (no biases, no BatchNorm).
    A list of names: those (each must exist). A predicate ``f(name, param) -> bool``: those it keeps.
    """
    named = [(k, p) for k, p in model.named_parameters()]
    if params is None or params == "all":
        chosen = [(k, p) for k, p in named if p.requires_grad]
    elif params == "original":
        chosen = [(k, p) for k, p in named if p.requires_grad and p.dim() > 1]
    elif isinstance(params, str):
        raise LandscapeError(f"params must be {', '.join(PARAM_CHOICES)}, a list of names or a predicate, "
                             f"got {params!r}")
    elif callable(params):
        chosen = [(k, p) for k, p in named if params(k, p)]
    else:
        try:
            wanted = list(params)
        except TypeError:
            raise LandscapeError(f"params must be {', '.join(PARAM_CHOICES)}, a list of names or a predicate, "
                                 f"got {params!r}") from None
        known = dict(named)
        unknown = [k for k in wanted if k not in known]
        if unknown:
            raise LandscapeError(f"the model has no parameter {', '.join(map(repr, unknown[:3]))}"
                                 + (f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""))
        keep = set(wanted)
        chosen = [(k, p) for k, p in named if k in keep]
    if not named:
        raise LandscapeError(f"the model ({type(model).__name__}) has no parameters: a Hessian needs some")
    if not chosen:
        raise LandscapeError("no parameter selected for the Hessian")
    bad = [k for k, p in chosen if not p.is_floating_point()]
    if bad:
        raise LandscapeError(f"parameters {', '.join(bad[:3])} are not floating point")
    return chosen


def describe_params(params: ParamSpec) -> str:
    """A short, stable description of a parameter choice, for provenance."""
    if params is None:
        return "all"
    if isinstance(params, str):
        return params
    if callable(params):
        return f"predicate {function_name(params)}"
    return "names: " + ",".join(params)


# ------------------------------------------------------------------------------- losses


def _cross_entropy64(output: torch.Tensor, batch) -> torch.Tensor:
    return nn.functional.cross_entropy(output, target(batch))


def _mse64(output: torch.Tensor, batch) -> torch.Tensor:
    y = target(batch)
    if y.is_floating_point():
        return nn.functional.mse_loss(output, y.view_as(output).to(output.dtype))
    return nn.functional.mse_loss(nn.functional.softmax(output, 1), nn.functional.one_hot(y, output.shape[1])
                                  .to(output.dtype))


# The built-in losses compute in float32 (``output.float()``); in float64 the same losses in double.
_DOUBLE = {LOSSES["crossentropy"]: _cross_entropy64, LOSSES["mse"]: _mse64}


def _cast(batch, dtype: torch.dtype):
    """``batch`` with its floating tensors in ``dtype`` (the structure kept)."""
    if torch.is_tensor(batch):
        return batch.to(dtype) if batch.is_floating_point() else batch
    if isinstance(batch, Mapping):
        return {k: _cast(v, dtype) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(_cast(v, dtype) for v in batch)
    return batch


# ----------------------------------------------------------------------------- the operator


class HessianOperator:
    """The Hessian of a model's mean loss over ``data`` with respect to the chosen parameters.

    ``H v`` is computed batch by batch (a forward pass, a gradient with ``create_graph``, and its
    backward against ``v``), each batch's product weighted by its share of the samples
    (``convention="mean"``) or by 1 (``"batch_sum"``, the original tool's scale: see the module
    docstring), accumulated in float64. ``dtype=torch.float64`` runs a double copy of the model,
    refreshed from the model before every product.

    The model is evaluated in eval mode (its mode is put back afterwards) at its parameters as
    they are when the product is taken, so the operator follows the parameters a
    :class:`landscape.space.params.Mover` sets. Several vectors at once (:meth:`matmat`) share each
    batch's forward pass and gradient graph; and while the parameters stay the same, so do
    successive products: each batch's gradient graph is kept (up to ``graph_budget`` bytes of
    saved activations, default an eighth of the free memory; 0: never) and reused. Every product
    compares the model's parameters and buffers with those the graphs were built at, and
    rebuilds them when anything changed. :meth:`release` frees them.

    ``data``: anything :func:`landscape.data.batches.as_batches` takes (a ``Dataset``, ``(X, y)``
    tensors, a torch ``Dataset``, a ``DataLoader``, ``Batches``); in-memory data is cut into
    batches of ``batch_size`` (default 256; 128, the original tool's, with ``"batch_sum"``, whose
    scale depends on it), a loader keeps its own batches. ``loss_fn``: a name or
    ``fn(output, batch) -> mean loss of the batch`` (default cross-entropy). ``params``: see
    :func:`select_params`. ``device``: where the products run (default: the model's device; the
    model is moved there).
    ``fast_layers``: build the graphs with the convolutions and eval-mode BatchNorm layers of
    :mod:`landscape.hessian.layers` (the same function, a cheaper double backward); False: torch's own.
    ``channels_last``: give a conv net its 4-D inputs channels-last (the model is not touched);
    default: in float32 when ``fast_layers`` and :func:`landscape.space.params.uses_channels_last` say so (on
    ResNet-20 that makes a product 1.6x faster; with torch's own layers it is slower).
    """

    def __init__(
        self,
        model: nn.Module,
        data,
        loss_fn=None,
        params: ParamSpec = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        convention: str = "mean",
        forward_fn: Callable[[nn.Module, object], torch.Tensor] = forward,
        graph_budget: int | None = None,
        fast_layers: bool = True,
        channels_last: bool | None = None,
    ):
        if convention not in CONVENTIONS:
            raise LandscapeError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
        if dtype not in (torch.float32, torch.float64):
            raise LandscapeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        if batch_size is not None and int(batch_size) < 1:
            raise LandscapeError(f"batch size must be positive, got {batch_size}")
        if device is None:
            if isinstance(data, Batches):
                device = data.device
            else:
                first = next(iter(model.parameters()), None)
                device = first.device if first is not None else torch.device("cpu")
        self.device = torch.device(device)
        model.to(self.device)
        self.model = model
        self.loss_name, self.loss_fn = resolve_loss(loss_fn)
        self.params_spec = describe_params(params)
        chosen = select_params(model, params)
        self.names: tuple[str, ...] = tuple(k for k, _ in chosen)
        self.shapes: tuple[torch.Size, ...] = tuple(p.shape for _, p in chosen)
        self.numels: tuple[int, ...] = tuple(p.numel() for _, p in chosen)
        self.size: int = int(sum(self.numels))
        self.dtype, self.convention, self.forward_fn = dtype, convention, forward_fn
        if convention == "batch_sum" and batch_size is None:
            batch_size = ORIGINAL_BATCH_SIZE
        if isinstance(data, TensorBatches) and batch_size is not None:
            data = data.with_batch_size(batch_size)
        self.batches: Batches = as_batches(data, self.device, batch_size or DEFAULT_BATCH_SIZE)
        self.batch_sizes: tuple[int, ...] = tuple(n for _, n in self.batches)
        self.num_samples = int(sum(self.batch_sizes))
        if dtype == torch.float64:
            self._net = copy.deepcopy(model).to(torch.float64).eval()
            self._loss = _DOUBLE.get(self.loss_fn, self.loss_fn)
        else:
            self._net, self._loss = model, self.loss_fn
        self.fast_layers = bool(fast_layers)
        self.channels_last = channels_last  # decided at the first batch when None
        self.graph_budget = default_budget(self.device) // 2 if graph_budget is None else int(graph_budget)
        self._graphs: dict[int, tuple] = {}  # batch index -> (grads that depend on the parameters, indices)
        self._graph_bytes = 0
        self._at: list[torch.Tensor] | None = None  # the parameters and buffers the graphs were built at

    # ----------------------------------------------------------------------------- products

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size)

    @property
    def batch_sum_factor(self) -> float:
        """``H_batch_sum = factor * H_mean`` when every batch has the same size (else approximate):
        the number of batches ``N / m``, ``m`` the first batch's size."""
        return self.num_samples / self.batch_sizes[0]

    def matvec(self, v):
        """``H v`` for a flat vector ``v`` of :attr:`size` (numpy or torch): float64, of ``v``'s kind."""
        out = self.matmat(v.reshape(-1, 1) if torch.is_tensor(v) else np.reshape(v, (-1, 1)))
        return out[:, 0]

    def matmat(self, V):
        """``H V`` for the columns of ``V`` (size, k) (numpy or torch): float64, of ``V``'s kind.

        The columns share each batch's forward pass and gradient graph."""
        is_torch = torch.is_tensor(V)
        Vt = V.detach() if is_torch else torch.from_numpy(np.ascontiguousarray(np.asarray(V, dtype=np.float64)))
        if Vt.dim() == 1:
            Vt = Vt[:, None]
        if Vt.shape[0] != self.size:
            raise LandscapeError(f"a vector of {Vt.shape[0]} entries for a Hessian of size {self.size}")
        out = self._products(Vt)
        if is_torch:
            return out.to(V.device) if V.device != out.device else out
        return out.cpu().numpy()

    def __matmul__(self, v):
        return self.matmat(v) if getattr(v, "ndim", np.ndim(v)) == 2 else self.matvec(v)

    def as_linear_operator(self) -> spla.LinearOperator:
        """This operator as a :class:`scipy.sparse.linalg.LinearOperator` (float64, numpy)."""
        return as_linear_operator(self)

    def split(self, v) -> dict[str, torch.Tensor]:
        """A flat vector as ``{name: tensor}`` shaped like the parameters."""
        t = v if torch.is_tensor(v) else torch.from_numpy(np.asarray(v))
        return {k: c.view(s) for k, c, s in zip(self.names, t.split(self.numels), self.shapes, strict=True)}

    def flatten(self, tensors: Mapping[str, torch.Tensor]) -> np.ndarray:
        """``{name: tensor}`` (e.g. a direction) as a flat float64 vector in this operator's order."""
        return torch.cat([tensors[k].detach().reshape(-1).double().cpu() for k in self.names]).numpy()

    def release(self) -> None:
        """Free the kept gradient graphs (they are rebuilt by the next product)."""
        self._graphs.clear()
        self._graph_bytes = 0

    def _sync(self) -> None:
        """Compare the model's parameters and buffers with those of the kept graphs; when they
        differ (or nothing is kept), drop the graphs and take the model as it is now."""
        current = [t.detach() for t in self.model.parameters()] + \
            [b for b in self.model.buffers() if b.is_floating_point()]
        if self._at is not None and len(self._at) == len(current) and \
                all(torch.equal(a, b) for a, b in zip(self._at, current, strict=True)):
            return
        self.release()
        self._at = [t.clone() for t in current]
        if self._net is not self.model:  # the float64 copy, refreshed from the model
            with torch.no_grad():
                src = dict(self.model.named_parameters())
                for k, p in self._net.named_parameters():
                    p.copy_(src[k])
                src_b = dict(self.model.named_buffers())
                for k, b in self._net.named_buffers():
                    b.copy_(src_b[k])

    @contextmanager
    def _evaluating(self) -> Iterator[list[torch.Tensor]]:
        """The network in eval mode with only the chosen parameters requiring grad; put back after."""
        model, net = self.model, self._net
        was_training = model.training
        flags = [(p, p.requires_grad) for p in net.parameters()]
        chosen = set(self.names)
        live = dict(net.named_parameters())
        try:
            net.eval()
            for k, p in net.named_parameters():
                p.requires_grad_(k in chosen)
            yield [live[k] for k in self.names]
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)
            if net is model and was_training:
                model.train()

    def _graph(self, index: int, batch, params: list[torch.Tensor]) -> tuple | None:
        """Batch ``index``'s gradients (those that depend on the parameters) with their parameter
        indices, kept for the next products when the budget allows; None when the loss is linear."""
        if index in self._graphs:
            return self._graphs[index]
        sizes: dict[int, int] = {}

        def pack(t: torch.Tensor):
            try:
                st = t.untyped_storage()
                sizes[st.data_ptr()] = st.nbytes()
            except (RuntimeError, NotImplementedError):
                pass
            return t

        if self.channels_last is None:
            inputs = [t for t in leaves(batch) if t.is_floating_point()]
            self.channels_last = (self.fast_layers and self.dtype == torch.float32
                                  and uses_channels_last(self._net, inputs[0] if inputs else None))
        if self.channels_last:
            batch = to_device(batch, self.device, channels_last=True)
        if self.dtype == torch.float64:
            batch = _cast(batch, torch.float64)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), math_attention(), \
                (rewritten_layers(self._net) if self.fast_layers else nullcontext()):
            loss = self._loss(self.forward_fn(self._net, batch), batch)
            if not loss.requires_grad:
                entry = None  # the loss does not depend on the chosen parameters
            else:
                grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
                live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
                entry = (tuple(g for _, g in live), tuple(i for i, _ in live)) if live else None
        size = sum(sizes.values())
        if entry is None or self._graph_bytes + size <= self.graph_budget:
            self._graphs[index] = entry
            self._graph_bytes += size if entry is not None else 0
        return entry

    def _products(self, V: torch.Tensor) -> torch.Tensor:
        k = V.shape[1]
        acc = torch.zeros(self.size, k, dtype=torch.float64, device=self.device)
        self._sync()
        with self._evaluating() as params:
            pdtype = params[0].dtype
            # One (k, *shape) block per parameter: the vectors as gradient outputs.
            Vd = V.to(device=self.device, dtype=pdtype)
            blocks = [c.T.reshape(k, *s) for c, s in zip(Vd.split(self.numels), self.shapes, strict=True)]
            for index, (batch, n) in enumerate(self.batches):
                weight = n / self.num_samples if self.convention == "mean" else 1.0
                entry = self._graph(index, batch, params)
                if entry is None:
                    continue  # zero Hessian for this batch
                grads, which = entry
                keep = index in self._graphs
                for j in range(k):
                    with torch.enable_grad():
                        hv = torch.autograd.grad(grads, params, [blocks[i][j] for i in which],
                                                 retain_graph=keep or j < k - 1, allow_unused=True)
                    col = torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                                     for h, p in zip(hv, params, strict=True)])
                    acc[:, j].add_(col.to(torch.float64), alpha=weight)
        return acc

    def config(self) -> dict:
        """What the products depend on besides the model and data."""
        return {"params": self.params_spec, "size": self.size, "convention": self.convention,
                "dtype": str(self.dtype).replace("torch.", ""), "loss": self.loss_name,
                "batch_size": self.batch_sizes[0], "num_batches": len(self.batch_sizes),
                "samples": self.num_samples}


__all__ = [
    "CONVENTIONS", "ORIGINAL_BATCH_SIZE", "PARAM_CHOICES", "Counting", "HessianOperator", "MatrixOperator", "Shifted",
    "SymmetricOperator", "as_linear_operator", "describe_params", "matmat", "select_params",
]
