"""The ground's run-time services: MPI (:mod:`.parallel`, the only module that imports mpi4py), the
thread policy (:mod:`.threads`), progress bars, the on-disk cache of choices, a user's
``package.module:callable`` (:mod:`.usercode`) and the provenance every file records.
"""
