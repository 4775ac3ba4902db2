"""Grid specs and point order."""

import numpy as np
import pytest

from landscape.errors import LandscapeError
from landscape.space.grid import Axis, Grid, make_axis, parse_axis


def test_parse_axis():
    a = parse_axis("-1:1:51")
    assert (a.start, a.stop, a.num) == (-1.0, 1.0, 51)
    np.testing.assert_allclose(a.coordinates, np.linspace(-1, 1, 51))
    assert str(a) == "-1:1:51"
    assert parse_axis("0.5:0.5:1").num == 1


@pytest.mark.parametrize("spec", ["-1:1", "a:b:c", "-1:1:0", "1:-1:5", "-1:1:2.5", "nan:1:3", ""])
def test_bad_specs_are_user_errors(spec):
    with pytest.raises(LandscapeError, match="grid spec"):
        parse_axis(spec)


def test_points_follow_the_meshgrid_order_x_fastest():
    g = Grid(parse_axis("0:2:3"), parse_axis("10:11:2"))
    assert g.shape == (2, 3) and g.size == 6  # arrays are [j, i]: rows along y
    pts = g.points()
    assert pts.tolist() == [[0, 10], [1, 10], [2, 10], [0, 11], [1, 11], [2, 11]]
    assert [g.point(k) for k in range(6)] == [tuple(p) for p in pts.tolist()]
    xx, yy = np.meshgrid([0, 1, 2], [10, 11])  # flat index k is the C-order index of a meshgrid array
    assert pts.tolist() == np.stack([xx.ravel(), yy.ravel()], 1).tolist()
    g1 = Grid(parse_axis("-1:1:3"))
    assert g1.shape == (3,) and g1.point(2) == (1.0,)


def test_three_axes_and_axis_forms():
    g = Grid(make_axis((0, 1, 2)), make_axis("5:6:2"), make_axis(Axis(-1, 1, 3)))
    assert g.shape == (3, 2, 2) and g.ndim == 3
    assert g.point(1) == (1.0, 5.0, -1.0) and g.point(2) == (0.0, 6.0, -1.0) and g.point(4) == (0.0, 5.0, 0.0)
    with pytest.raises(LandscapeError, match="z axis needs a y axis"):
        Grid(make_axis((0, 1, 2)), None, make_axis((0, 1, 2)))
    with pytest.raises(LandscapeError):
        make_axis((0, 1, 2.5))
