"""Seconds per grid point for the convexity map (lambda_max, lambda_min): ours against the original tool.

    python benchmarks/bench_hessian.py             # ResNet-20, 512 images, 5 points of a row
    python benchmarks/bench_hessian.py --quick     # 128 images, 4 points

The network: ResNet-20 (``build_model("resnet20")``) trained for ``--train-steps`` SGD steps on
synthetic CIFAR-shaped data (so the spectrum is not that of a random init), its BatchNorm
statistics re-estimated at the final weights; cached in ``--cache``. The points: ``x = 0, step,
2 step, ...`` along a filter-normalized random direction (biases and BatchNorm left alone), one row
of a grid of spacing ``--step``, visited in order as a rank of ``landscape-surf`` visits them.

The matrix is the original tool's: the Hessian of the sum of the batch-mean losses over batches
of 128 (``hess_vec_prod.py``), with respect to the tensors with more than one dimension. Methods,
timed interleaved at every point:

- ``ours``: :class:`~landscape.hessian.EigMetric` as the surface engine calls it (``setup`` once,
  then one call per point with the point's index), with the original's matrix
  (``params="original"``, ``convention="batch_sum"``, ``batch_size=128``) and its default
  tolerance: one Lanczos run for both ends per point, started from the previous point's
  eigenvectors (the first point cold), each product reusing the point's gradient graphs;
- ``original``: ``min_max_hessian_eigs`` of the original tool, written out below as it runs:
  SciPy ``eigsh(k=1, tol=1e-2)`` on its Hessian-vector product (a forward pass, a gradient with
  ``create_graph``, ``(g * v).sum().backward()`` into ``.grad``, batch by batch), then again on the
  product shifted by ``0.51 * lambda_max`` for the most negative eigenvalue (its data: the same
  tensors in memory, so its DataLoader costs are not counted against it);
- ``power``: PyHessian's power iteration for the top eigenvalue as it runs it (Rayleigh quotient,
  stop when the relative change is below 1e-3, at most 100 products), on the same matrix with a
  fresh graph per product (as PyHessian does).

All judged against a reference: Lanczos to ``--reference-tol`` (1e-6) from a random start. Prints
the CPU model, a table of seconds per point, products per point and errors, and how products on
several vectors at once compare with one at a time (the ``matmat`` measurement).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from scipy.sparse.linalg import LinearOperator, eigsh  # noqa: E402

from landscape import hessian  # noqa: E402
from landscape.data.batches import as_batches  # noqa: E402
from landscape.data.datasets import load_dataset  # noqa: E402
from landscape.directions.sampling import random_directions  # noqa: E402
from landscape.evaluation.evaluator import keep_malloc_arenas  # noqa: E402
from landscape.evaluation.metrics import Context, Point  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.grid import Grid, make_axis  # noqa: E402
from landscape.space.params import Mover, snapshot  # noqa: E402

ORIGINAL_BATCH = 128


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------ the network


def trained_resnet20(data, steps: int, cache: str) -> torch.nn.Module:
    """ResNet-20 after ``steps`` SGD steps (lr 0.05, momentum 0.9, weight decay 5e-4, batch 128)
    on ``data``, BatchNorm statistics re-estimated at the final weights; cached."""
    os.makedirs(cache, exist_ok=True)
    path = os.path.join(cache, f"bench_hessian_resnet20_synthetic_{steps}.pt")
    model = build_model("resnet20")
    if os.path.exists(path):
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(0)
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(data.y), (128,), generator=g)
        loss = F.cross_entropy(model(data.x[idx]), data.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the passes below
    with torch.no_grad():
        for lo in range(0, min(1024, len(data.y)), 256):
            model(data.x[lo:lo + 256])
    for m in bns:
        m.momentum = 0.1
    model.eval()
    print(f"trained {steps} steps in {time.perf_counter() - t0:.0f} s; cached as {path}", file=sys.stderr)
    torch.save(model.state_dict(), path)
    return model


# ---------------------------------------------------------- the original tool, as it runs it


def original_min_max_hessian_eigs(net, batches, criterion=F.cross_entropy):
    """``hess_vec_prod.min_max_hessian_eigs`` of the original loss-landscape tool, written out.

    Its product: for every batch, a forward pass, the gradient of the batch-mean loss with
    respect to the tensors with more than one dimension (``create_graph=True``), the inner product
    with the vector, and ``backward`` of it into ``.grad``: the sum over batches of the batch-mean
    Hessians. Then ``eigsh(k=1, tol=1e-2)`` (which="LM"), and again on ``H - 0.51 lambda_max I``.
    """
    params = [p for p in net.parameters() if len(p.size()) > 1]
    n = sum(p.numel() for p in params)
    count = 0

    def npvec_to_tensorlist(vec):
        out, loc = [], 0
        for p in params:
            out.append(torch.from_numpy(vec[loc:loc + p.numel()]).view(p.shape).float())
            loc += p.numel()
        return out

    def hess_vec_prod(vec):
        nonlocal count
        count += 1
        vec = npvec_to_tensorlist(vec)
        net.eval()
        net.zero_grad()
        for inputs, targets in batches:
            loss = criterion(net(inputs), targets)
            grad_f = torch.autograd.grad(loss, inputs=params, create_graph=True)
            prod = torch.zeros(1, dtype=grad_f[0].dtype)
            for g, v in zip(grad_f, vec, strict=True):
                prod = prod + (g * v).cpu().sum()
            prod.backward()
        return np.concatenate([p.grad.data.cpu().numpy().ravel() for p in net.parameters() if len(p.size()) > 1])

    A = LinearOperator((n, n), matvec=hess_vec_prod)
    maxeig = eigsh(A, k=1, tol=1e-2)[0][0]
    shift = maxeig * 0.51

    def shifted_hess_vec_prod(vec):
        return hess_vec_prod(vec) - shift * vec

    A = LinearOperator((n, n), matvec=shifted_hess_vec_prod)
    mineig = eigsh(A, k=1, tol=1e-2)[0][0] + shift
    if maxeig <= 0 and mineig > 0:
        maxeig, mineig = mineig, maxeig
    net.zero_grad(set_to_none=True)  # the original leaves the graph-holding grads behind; we do not keep them
    return float(maxeig), float(mineig), count


def pyhessian_power_iteration(op, tol: float = 1e-3, max_iter: int = 100, seed: int = 0) -> tuple[float, int]:
    """The top eigenvalue as PyHessian's ``hessian.eigenvalues(top_n=1)`` finds it: power iteration
    with the Rayleigh quotient, stopping when it changes by less than ``tol`` relatively (the
    previous value is returned), at most ``max_iter`` products."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(op.size)
    v /= np.linalg.norm(v)
    eigenvalue, count = None, 0
    for _ in range(max_iter):
        hv = op.matvec(v)
        count += 1
        tmp = float(v @ hv)
        v = hv / np.linalg.norm(hv)
        if eigenvalue is not None and abs(eigenvalue - tmp) / (abs(eigenvalue) + 1e-6) < tol:
            break
        eigenvalue = tmp
    return float(eigenvalue), count


# --------------------------------------------------------------------------------- products


def measure_products(model, x, y, reps: int) -> list[tuple[str, float]]:
    """Seconds per vector of the Hessian-vector product, several ways (the best of ``reps``, wall clock:
    CPU time counts the threads' spinning and hides a layout that leaves a core idle)."""
    rows = []
    v = np.random.default_rng(0).standard_normal((hessian.HessianOperator(model, (x, y), params="original").size, 4))

    def timed(fn) -> float:
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    def op(b, **kw):
        return hessian.HessianOperator(model, (x, y), params="original", batch_size=b, **kw)

    torch_layers = dict(fast_layers=False)
    fresh = op(ORIGINAL_BATCH, graph_budget=0, **torch_layers)
    rows.append(("batch 128: a new graph per product, torch's layers (the original's way)",
                 timed(lambda: fresh.matvec(v[:, 0]))))
    for name, kw in (("torch's layers", torch_layers), ("rewritten layers", dict(channels_last=False)),
                     ("rewritten layers, channels-last inputs (the default)", {})):
        for b in (ORIGINAL_BATCH, len(y)):
            kept = op(b, **kw)
            kept.matvec(v[:, 0])  # build the graphs once: the later products reuse them
            rows.append((f"batch {b}: graph kept between products, {name}", timed(lambda o=kept: o.matvec(v[:, 1]))))
            if b == ORIGINAL_BATCH:
                rows.append((f"batch {b}: 4 vectors, one graph (matmat), {name}, per vector",
                             timed(lambda o=kept: o.matmat(v)) / 4))
            kept.release()
    # vmap over the double backward (autograd's is_grads_batched) on one batch, per vector
    with op(len(y), graph_budget=0)._evaluating() as params:
        def batched():
            loss = F.cross_entropy(model(x), y)
            g = torch.autograd.grad(loss, params, create_graph=True)
            V = torch.from_numpy(v.T.copy()).float()
            blocks = [c.reshape(4, *p.shape) for c, p in zip(V.split([p.numel() for p in params], 1), params,
                                                               strict=True)]
            torch.autograd.grad(g, params, blocks, is_grads_batched=True)
        rows.append((f"batch {len(y)}: 4 vectors, vmap'd double backward, torch's layers, per vector",
                     timed(batched) / 4))
    return rows


# ------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="128 images (else 512)")
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--points", type=int, default=None, help="points along the row (default 5; quick 4)")
    p.add_argument("--step", type=float, default=0.1, help="grid spacing along the direction (default 0.1)")
    p.add_argument("--train-steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reference-tol", type=float, default=1e-6)
    p.add_argument("--tol", type=float, default=hessian.DEFAULT_TOL, help="our tolerance (default: the default)")
    p.add_argument("--no-products", action="store_true", help="skip the measurement of the products")
    p.add_argument("--products-only", action="store_true", help="measure the products only (no grid points)")
    p.add_argument("--cache", default=os.environ.get("LANDSCAPE_CACHE", os.path.expanduser("~/.cache/landscape")))
    args = p.parse_args(argv)
    samples = args.samples or (128 if args.quick else 512)
    args.points = args.points or (4 if args.quick else 5)
    torch.set_num_threads(args.threads)
    keep_malloc_arenas()

    data = load_dataset("synthetic", shape=(3, 32, 32), size=2048, seed=0)
    model = trained_resnet20(data, args.train_steps, args.cache)
    x, y = data.x[:samples].contiguous(), data.y[:samples].contiguous()
    with torch.no_grad():
        loss0 = float(F.cross_entropy(model(x), y))
    origin = snapshot(model)
    direction = random_directions({k: v.cpu() for k, v in origin.items()}, 1, "filter", "biasbn", seed=0)
    mover = Mover(model, origin, direction)
    batches = [(x[i:i + ORIGINAL_BATCH], y[i:i + ORIGINAL_BATCH]) for i in range(0, samples, ORIGINAL_BATCH)]

    grid = Grid(make_axis((0.0, (args.points - 1) * args.step, args.points)) if args.points > 1
                else make_axis((0.0, 1.0, 1)))
    metric = hessian.EigMetric(tol=args.tol, params="original", convention="batch_sum", batch_size=ORIGINAL_BATCH)
    context = Context(model, torch.device("cpu"), data=as_batches((x, y), "cpu", ORIGINAL_BATCH), grid=grid)
    metric.setup(context)
    ours_op = metric.op
    # PyHessian's products over several batches: a forward pass, a gradient graph and its backward per
    # batch and product, through torch's own layers
    fresh_op = hessian.HessianOperator(model, (x, y), params="original", convention="batch_sum",
                                       batch_size=ORIGINAL_BATCH, graph_budget=0, fast_layers=False)
    print(f"# Hessian eigenvalues per grid point: ResNet-20 ({ours_op.size:,} parameters with dim > 1), "
          f"{samples} synthetic images, loss {loss0:.3f}", flush=True)
    print(f"CPU: {cpu_model()}; {args.threads} threads; torch {torch.__version__}; "
          f"points x = 0..{(args.points - 1) * args.step:g} step {args.step:g}", flush=True)

    if not args.products_only:
        compare_points(args, model, mover, context, metric, batches, fresh_op, ours_op)
    if not args.no_products:
        print("\n| Hessian-vector product | s per vector |\n|---|---|")
        for name, s in measure_products(model, x, y, reps=2 if args.quick else 3):
            print(f"| {name} | {s:.2f} |")
    digest = hashlib.sha256(b"".join(t.numpy().tobytes() for t in model.state_dict().values())).hexdigest()[:12]
    print(f"\nmodel state sha256[:12] {digest}; command: python benchmarks/bench_hessian.py "
          + " ".join(sys.argv[1:] if argv is None else argv))
    return 0


def compare_points(args, model, mover, context, metric, batches, fresh_op, ours_op) -> None:
    """Ours, the original's and PyHessian's method at each point of the row, against a tight reference."""
    rows = {m: {"t": [], "mv": [], "max": [], "min": []} for m in ("ours", "original", "power")}
    ref = {"max": [], "min": [], "mv": []}
    for i in range(args.points):
        a = i * args.step
        mover.move_([a])
        context.point = Point(i, (a,))
        order = ["ours", "original", "power"] if i % 2 == 0 else ["power", "original", "ours"]
        for method in order:
            t0 = time.perf_counter()
            if method == "ours":
                out = metric(model)
                values, mv = (out["max_eig"], out["min_eig"]), metric.last.matvecs
            elif method == "original":
                mx, mn, mv = original_min_max_hessian_eigs(model, batches)
                values = (mx, mn)
            else:
                mx, mv = pyhessian_power_iteration(fresh_op, seed=i)
                values = (mx, float("nan"))
            dt = time.perf_counter() - t0
            rows[method]["t"].append(dt)
            rows[method]["mv"].append(mv)
            rows[method]["max"].append(values[0])
            rows[method]["min"].append(values[1])
            print(f"x={a:.3g} {method}: max {values[0]:.6g} min {values[1]:.6g}, {mv} products, {dt:.1f} s",
                  flush=True)
        r = hessian.eigenpairs(ours_op, which="both_ends", tol=args.reference_tol, seed=[1, i])
        ref["max"].append(r.max)
        ref["min"].append(r.min)
        ref["mv"].append(r.matvecs)
        print(f"x={a:.3g} reference (tol {args.reference_tol:g}): max {r.max:.9g} min {r.min:.9g}, "
              f"{r.matvecs} products, residuals {r.residuals[0]:.2g}, {r.residuals[1]:.2g}", flush=True)
    mover.restore_()

    rmax, rmin = np.array(ref["max"]), np.array(ref["min"])
    print()
    print("| method | s / point | products / point | max rel. error lambda_max | max error lambda_min "
          "/ abs(lambda_min) | max error lambda_min / lambda_max |")
    print("|---|---|---|---|---|---|")
    labels = {"ours": f"ours: Lanczos both ends, tol {args.tol:g}, warm start",
              "original": "original: eigsh k=1 tol 1e-2, twice (shift 0.51 lambda_max)",
              "power": "PyHessian power iteration (tol 1e-3, max 100), lambda_max only"}
    for m in ("ours", "original", "power"):
        d = rows[m]
        emax = np.max(np.abs(np.array(d["max"]) - rmax) / np.abs(rmax))
        emin = np.abs(np.array(d["min"]) - rmin)
        emin_rel = f"{np.max(emin / np.abs(rmin)):.2e}" if m != "power" else "-"
        emin_max = f"{np.max(emin / np.abs(rmax)):.2e}" if m != "power" else "-"
        print(f"| {labels[m]} | {statistics.mean(d['t']):.1f} | {statistics.mean(d['mv']):.1f} | {emax:.2e} | "
              f"{emin_rel} | {emin_max} |")
    speed = statistics.mean(rows["original"]["t"]) / statistics.mean(rows["ours"]["t"])
    per_point = ", ".join(f"{t:.1f} s / {mv}" for t, mv in zip(rows["ours"]["t"], rows["ours"]["mv"], strict=True))
    print(f"\noriginal / ours: {speed:.2f}x seconds per point "
          f"({statistics.mean(rows['original']['mv']) / statistics.mean(rows['ours']['mv']):.2f}x products); "
          f"ours per point: {per_point} (the first cold); "
          f"reference: {statistics.mean(ref['mv']):.0f} products per point; "
          f"lambda_max {', '.join(f'{v:.5g}' for v in rmax)}, lambda_min {', '.join(f'{v:.5g}' for v in rmin)}")

    if args.points > 1:  # a surface has few cold points (one per rank) and many warm ones
        warm_t = statistics.mean(rows["ours"]["t"][1:])
        orig_t = statistics.mean(rows["original"]["t"][1:])
        print(f"warm points only (x > 0): ours {warm_t:.1f} s / {statistics.mean(rows['ours']['mv'][1:]):.1f} "
              f"products, original {orig_t:.1f} s: {orig_t / warm_t:.2f}x")


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
