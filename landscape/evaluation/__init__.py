"""Evaluating a network at its current parameters: the one evaluation loop (:mod:`.evaluator`), its
options (:mod:`.options`), the per-point metric protocol (:mod:`.metrics`), the losses and
BatchNorm statistics recomputed.
"""
