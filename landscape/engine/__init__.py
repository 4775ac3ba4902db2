"""The engine: the point runner every grid computation shares (:mod:`.points`: resumable, locked,
MPI-distributed), the surface (:mod:`.surface`, ``landscape.surface``), the output options
(:mod:`.options`) and the refinement of adaptive grids (:mod:`.refinement`).
"""
