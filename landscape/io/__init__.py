"""The ground's files: every HDF5 file of ours (:mod:`.h5`), the surface, directions and trajectory
files, checkpoints read once and safely (:mod:`.checkpoint`), atomic writes and output locks
(:mod:`.files`).
"""
