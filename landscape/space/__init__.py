"""The ground's values of parameter space: grids of coordinates (:mod:`.grid`) and the tensors a
direction moves, moved in place to a point (:mod:`.params`).
"""
