"""REPAIR (Jordan et al., *REPAIR: REnormalizing Permuted Activations for Interpolation Repair*,
ICLR'23): between two networks, the units of an interpolated network lose variance (their
activations collapse towards the mean), which accounts for much of the barrier left after
alignment. REPAIR gives every unit the mean and standard deviation interpolated from the ends':
at a point t of a path, a unit's pre-activation y becomes

    (y - mean_t(y)) / std_t(y) * ((1-t) std_a + t std_b) + ((1-t) mean_a + t mean_b),

its statistics measured on training batches. A network with BatchNorm gets this from its
BatchNorm layers once their statistics are re-estimated at t (what the path evaluation does
anyway); :class:`Repair` corrects the layers that no BatchNorm follows: every conv and linear
layer whose output a later layer reads (not the network's output), by a forward hook.

As with BatchNorm, the statistics are estimated in one pass over the batches, every corrected
layer normalized by its batch's statistics meanwhile (Jordan et al.'s reset layers do the same);
the evaluation then uses the statistics of the whole pass. At the ends (t = 0, 1) the network is
an end and the correction is the identity.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from landscape.data.batches import Batches, forward
from landscape.errors import LandscapeError
from landscape.prune.graph import channel_graph

EPS = 1e-5
_BN = nn.modules.batchnorm._BatchNorm


class _Stats:
    """Per-channel running sums of a layer's outputs (float64)."""

    def __init__(self):
        self.n, self.s1, self.s2 = 0, None, None

    def add_(self, y: torch.Tensor) -> None:
        y = y.detach().to(torch.float64)
        if self.s1 is None:
            self.s1, self.s2 = y.sum(0), (y * y).sum(0)
        else:
            self.s1 += y.sum(0)
            self.s2 += (y * y).sum(0)
        self.n += y.shape[0]

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.s1 / self.n
        return mean, (self.s2 / self.n - mean * mean).clamp_min(0).sqrt()


def repaired_layers(net: nn.Module) -> list[str]:
    """The layers REPAIR corrects: every conv and linear layer, called once, whose output some
    later layer reads and that no BatchNorm follows directly."""
    graph = channel_graph(net, features=True)
    read = {g for layouts in (graph.conv_in, graph.norms, graph.linears) for lay in layouts.values() if lay
            for g in lay}
    nodes = {}
    for node in graph.traced.graph.nodes:
        if node.op == "call_module":
            nodes.setdefault(str(node.target), []).append(node)
    modules = dict(net.named_modules())
    out = []
    for name, group in [*graph.conv_out.items(), *graph.linear_out.items()]:
        calls = nodes.get(name, [])
        if group not in read or len(calls) != 1:
            continue
        if any(u.op == "call_module" and isinstance(modules.get(str(u.target)), _BN) for u in calls[0].users):
            continue
        out.append(name)
    return out


class Repair:
    """REPAIR's correction of ``net`` (see the module's docstring), its statistics estimated from
    the first ``num_batches`` of ``batches``. :meth:`ends_` measures the ends' statistics once;
    :meth:`prepare_` sets the correction for the network's current tensors at ``t``; :meth:`off_`
    turns it off (at the ends); :meth:`remove` takes the hooks away."""

    def __init__(self, net: nn.Module, batches: Batches, num_batches: int, forward_fn=forward):
        self.net, self.batches, self.num_batches, self.forward_fn = net, batches, int(num_batches), forward_fn
        self.names = repaired_layers(net)  # may be none: a network whose BatchNorm layers do it all
        modules = dict(net.named_modules())
        self.dims = {n: (1 if isinstance(modules[n], nn.modules.conv._ConvNd) else -1) for n in self.names}
        self.mode = "off"
        self.stats: dict[str, _Stats] = {}
        self.ends: list[dict[str, tuple[torch.Tensor, torch.Tensor]]] = []
        self.target: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.current: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.handles = [modules[n].register_forward_hook(self._hook(n)) for n in self.names]

    def config(self) -> dict:
        return {"num_batches": self.num_batches, "data": self.batches.fingerprint(), "layers": list(self.names)}

    def _hook(self, name: str):
        def hook(module, inputs, y):
            if self.mode == "off":
                return None
            dim = self.dims[name]
            flat = y.movedim(dim, -1).reshape(-1, y.shape[dim])
            if self.mode in ("measure", "plain"):
                self.stats[name].add_(flat)
                if self.mode == "plain":
                    return None
                mean, var = flat.mean(0), flat.var(0, unbiased=False)
            else:
                mean, var = self.current[name]
            t_mean, t_std = self.target[name]
            shape = [1] * y.dim()
            shape[dim] = -1
            scale = (t_std / (var + EPS).sqrt()).to(y.dtype).reshape(shape)
            return (y - mean.to(y.dtype).reshape(shape)) * scale + t_mean.to(y.dtype).reshape(shape)

        return hook

    @torch.no_grad()
    def _pass(self, mode: str, bn=None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        self.mode = mode
        self.stats = {n: _Stats() for n in self.names}
        try:
            if bn is not None:
                bn()  # its train-mode passes over the same batches feed the hooks too
            else:
                training = self.net.training
                self.net.eval()
                try:
                    for k, (batch, _) in enumerate(self.batches):
                        if k >= self.num_batches:
                            break
                        self.forward_fn(self.net, batch)
                finally:
                    self.net.train(training)
        finally:
            self.mode = "off"
        return {n: s.mean_std() for n, s in self.stats.items()}

    def ends_(self, state_a: Mapping[str, torch.Tensor], state_b: Mapping[str, torch.Tensor], bn=None) -> None:
        """Measure the statistics of the ends (``bn``: the path's BatchNorm re-estimation, run at
        each end as the path evaluation runs it)."""
        self.ends = []
        for state in (state_a, state_b):
            self.net.load_state_dict(state)
            self.ends.append(self._pass("plain", bn))

    def prepare_(self, t: float, bn=None) -> None:
        """Correct the network as its tensors stand, at ``t`` of the path (``bn``: re-estimate its
        BatchNorm statistics in the same pass)."""
        if not self.ends:
            raise LandscapeError("REPAIR needs the ends' statistics first (Repair.ends_)")
        device = next((p.device for p in self.net.parameters()), torch.device("cpu"))
        (a, b), t = self.ends, float(t)
        self.target = {n: (((1 - t) * a[n][0] + t * b[n][0]).to(device), ((1 - t) * a[n][1] + t * b[n][1]).to(device))
                       for n in self.names}
        measured = self._pass("measure", bn)
        self.current = {n: (m.to(device), (s * s).to(device)) for n, (m, s) in measured.items()}
        self.mode = "apply"

    def off_(self) -> None:
        self.mode = "off"

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


__all__ = ["Repair", "repaired_layers"]
