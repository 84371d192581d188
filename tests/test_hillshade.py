"""Hillshade: hand-computed shades for planes under the default NW sun at 45 degrees."""

from __future__ import annotations

import numpy as np
import pytest

from maps.hillshade import hillshade

RISE = np.arange(5.0) * 10  # 10 m per 10 m cell: a 45-degree slope


@pytest.mark.parametrize(("z", "expected"), [
    (np.zeros((5, 5)), np.cos(np.radians(45))),               # flat: cos(zenith)
    (np.tile(RISE, (5, 1)), 0.5 + 0.5 * np.cos(np.radians(45))),   # faces west: 45 deg off sun
    (np.tile(-RISE, (5, 1)), 0.5 - 0.5 * np.cos(np.radians(45))),  # faces east: away from sun
    (np.tile(RISE[:, None], (1, 5)), 0.5 + 0.5 * np.cos(np.radians(45))),  # faces north
])
def test_plane_shades(z, expected):
    assert hillshade(z, 10.0)[2, 2] == pytest.approx(expected)
