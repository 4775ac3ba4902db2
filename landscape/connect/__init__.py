"""Mode-connecting curves between two minimizers (Garipov et al., NeurIPS'18; Draxler et al., ICML'18).

Two independently trained networks ``a`` and ``b`` are usually separated by a barrier on the
straight line between them, yet joined by a simple curve of low loss: a quadratic Bezier curve

    theta(t) = (1-t)^2 a + 2t(1-t) bend + t^2 b,

or a polygonal chain a -> bend -> b, with one trained *bend* and the ends fixed. This module holds
the curve (:class:`Curve`), trains its bend (:func:`train_curve`: t ~ U[0, 1] at every batch, the
network run at theta(t) with :func:`torch.func.functional_call`, only the bend stepped), evaluates
the curve and the straight line along t as a 1D grid of the surface engine (:func:`evaluate_path`:
MPI-parallel, resumable, BatchNorm statistics re-estimated at every t, REPAIR optionally), and
builds the plane through a, b and the bend (:func:`plane_directions`, :func:`plane_path`).
:func:`align` permutes one network's units to match the other's (Git Re-Basin: weight or
activation matching), the function unchanged, so that the straight line between them measures
what symmetry does not explain.

The barrier of a path is reported in both definitions in use: the largest loss along it minus the
mean of the ends' losses (:func:`barrier`; Frankle et al., Garipov et al.), and the largest rise
above the chord between the ends (:func:`chord_barrier`; Entezari et al., Ainsworth et al.).

Modules: :mod:`.curve` (the curve and its file), :mod:`.training` (its bend trained),
:mod:`.path` (evaluation along t, barriers), :mod:`.plane` (the plane of a, b and the bend),
:mod:`.align` (permutation alignment), :mod:`.repair` (REPAIR's rescaling).
"""

from landscape.connect.align import MAX_ROUNDS, METHODS, Alignment, align, permutation_spec, permute
from landscape.connect.curve import KINDS, Curve, CurveModel, check_ends, check_ends_files, coefficients, load_curve
from landscape.connect.path import (
    DEFAULT_BATCH_SIZE,
    PathResult,
    barrier,
    barrier_attrs,
    chord_barrier,
    evaluate_path,
    path_result,
    t_values,
    value_names,
)
from landscape.connect.plane import PlanePath, plane_directions, plane_path
from landscape.connect.training import CurveTraining, train_curve

__all__ = [
    "Alignment", "Curve", "CurveModel", "CurveTraining", "DEFAULT_BATCH_SIZE", "KINDS", "MAX_ROUNDS", "METHODS",
    "PathResult", "PlanePath", "align", "barrier", "barrier_attrs", "check_ends", "check_ends_files", "chord_barrier",
    "coefficients", "evaluate_path", "load_curve", "path_result", "permutation_spec", "permute", "plane_directions",
    "plane_path", "t_values", "train_curve", "value_names",
]
