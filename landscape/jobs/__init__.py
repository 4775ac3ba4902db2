"""The command layer: what a command does, file in -> file out.

Each module here reads its inputs (checkpoints, data, directions or surface files) once, calls the
library (engine, hessian, prune, quant, training, trajectory, ...) and writes its output file and
figures. The CLIs in :mod:`landscape.cli` are argument parsing plus one call into this layer; no
module below this layer imports it.
"""
