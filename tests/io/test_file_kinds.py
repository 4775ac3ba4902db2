"""Every reader of our HDF5 files names a file of another kind (what it is, which command writes
it) rather than calling it damaged."""

from __future__ import annotations

import pytest


def test_other_readers_name_the_kind_too(kinds):
    from landscape.errors import LandscapeError
    from landscape.hessian.summary import read_summary
    from landscape.io.trajectory_file import read_trajectory

    with pytest.raises(LandscapeError, match="is a surface file .*, not a Hessian summary file"):
        read_summary(kinds / "random.h5")
    with pytest.raises(LandscapeError, match="is a Hessian summary file .*, not a trajectory file"):
        read_trajectory(kinds / "hess.h5")
