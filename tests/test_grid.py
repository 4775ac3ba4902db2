"""Grid specs and point order."""

import numpy as np
import pytest

from landscape.errors import LandscapeError
from landscape.grid import Grid, parse_axis


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


def test_points_are_row_major_over_x_then_y():
    g = Grid(parse_axis("0:2:3"), parse_axis("10:11:2"))
    assert g.shape == (3, 2) and g.size == 6
    pts = g.points()
    assert pts.tolist() == [[0, 10], [0, 11], [1, 10], [1, 11], [2, 10], [2, 11]]
    assert [g.point(k) for k in range(6)] == [tuple(p) for p in pts.tolist()]
    g1 = Grid(parse_axis("-1:1:3"))
    assert g1.shape == (3,) and g1.point(2) == (1.0,)
