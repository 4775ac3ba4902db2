"""Directions in parameter space: random filter-normalized ones and interpolations (:mod:`.sampling`),
the options that choose them (:mod:`.options`), PCA directions of a training run (:mod:`.pca`).
"""
