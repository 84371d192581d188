"""Shared fixtures: tiny hand-made grids in CGCS2000 / Gauss-Kruger CM 126E (EPSG:4551)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gis.grid import GridSpec, make_raster

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
ARTIFACTS = Path(os.environ.get("SINKMAP_TEST_ARTIFACTS", "test-artifacts"))


@pytest.fixture
def grid10() -> GridSpec:
    """4 rows x 6 cols of 10 m cells; lower-left (500000, 4700000)."""
    return GridSpec.from_bounds((500_000, 4_700_000, 500_060, 4_700_040), 10, "EPSG:4551")


@pytest.fixture
def lc_small(grid10: GridSpec):
    """Classes laid out by hand (0 = nodata):

        301 301 301 103 103 103
        301 301 301 103 103 103
        1101 1101 0  103 103 101
        1101 1101 0  101 101 101
    """
    a = np.array([[301, 301, 301, 103, 103, 103],
                  [301, 301, 301, 103, 103, 103],
                  [1101, 1101, 0, 103, 103, 101],
                  [1101, 1101, 0, 101, 101, 101]], dtype="uint16")
    return make_raster(a, grid10, nodata=0, units="class", kind="categorical", name="lc",
                       chunks=2)
