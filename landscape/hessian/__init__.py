"""Hessian analysis: operators (Hessian-vector products) apart from the algorithms that use them.

>>> from landscape import hessian
>>> op = hessian.HessianOperator(model, data)                 # op.matvec(v), op.size
>>> top = hessian.eigenpairs(op, k=5, which="largest")        # .eigenvalues (descending)
>>> ends = hessian.eigenpairs(op, which="both_ends")          # lambda_max and lambda_min
>>> tr = hessian.trace(op)                                    # .estimate, .stderr, .samples, .converged
>>> dens = hessian.density(op, num_runs=10, num_iters=80)     # .grid, .density
"""

from landscape.hessian.hutchinson import Trace, trace
from landscape.hessian.lanczos import DEFAULT_TOL, Eigenpairs, Krylov, eigenpairs, lanczos, start_vector
from landscape.hessian.metric import EigMetric
from landscape.hessian.operator import (
    CONVENTIONS,
    Counting,
    HessianOperator,
    MatrixOperator,
    Shifted,
    SymmetricOperator,
    as_linear_operator,
    select_params,
)
from landscape.hessian.quadrature import Density, density
from landscape.hessian.summary import HessianSummary, SummaryOptions, read_summary, summarize, write_summary

__all__ = [
    "CONVENTIONS", "DEFAULT_TOL", "Counting", "Density", "EigMetric", "Eigenpairs", "HessianOperator",
    "HessianSummary", "Krylov", "MatrixOperator", "Shifted", "SummaryOptions", "SymmetricOperator", "Trace",
    "as_linear_operator", "density", "eigenpairs", "lanczos", "read_summary", "select_params", "start_vector",
    "summarize", "trace", "write_summary",
]
