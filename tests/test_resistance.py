"""layers.resistance on small grids with hand-computed values."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from gis.errors import CoefficientError, GridMismatchError
from gis.grid import GridSpec, make_raster
from layers.landcover import load_scheme
from layers.resistance import (
    band_multiplier,
    distance_to,
    load_resistance_tables,
    resistance_surface,
    slope_deg,
)

CRS = "EPSG:4551"
GRID = GridSpec.create(CRS, Affine(100, 0, 500_000, 0, -100, 4_700_000), (5, 6))
SCHEME = load_scheme("gbt21010")


def lc(a):
    return make_raster(np.asarray(a, dtype=np.int32), GRID, nodata=0, units="class",
                       kind="categorical", chunks=None)


def test_tables_load_and_step_functions():
    t = load_resistance_tables()
    assert t.classes["forest"] == 1 and t.classes["settlement"] == 800
    v = np.array([0.0, 7.9, 8.0, 14.9, 20.0, 30.0, np.nan])
    assert band_multiplier(v, t, "slope_deg").tolist() == pytest.approx(
        [1.0, 1.0, 1.2, 1.2, 1.5, 2.0, 1.0])
    d = np.array([0.0, 99.0, 100.0, 450.0, 999.0, 1000.0, np.inf])
    assert band_multiplier(d, t, "road_m").tolist() == pytest.approx(
        [2.0, 2.0, 1.5, 1.2, 1.1, 1.0, 1.0])


def test_distance_and_slope_hand_computed():
    m = np.zeros((3, 3), bool)
    m[0, 0] = True
    d = distance_to(m, (100.0, 100.0))
    assert d[0, 1] == 100 and d[2, 2] == pytest.approx(200 * np.sqrt(2))
    assert np.isinf(distance_to(np.zeros((2, 2), bool), (1.0, 1.0))).all()
    # a plane rising 100 m per 100 m eastwards: 45 degrees everywhere
    dem = np.tile(np.arange(4) * 100.0, (3, 1))
    assert slope_deg(dem, (100.0, 100.0)) == pytest.approx(np.full((3, 4), 45.0), abs=1e-4)


def test_surface_formula():
    # forest (301 -> forest, 1) everywhere, one village cell (702 -> settlement, 800), one nodata
    a = np.full((5, 6), 301)
    a[0, 0] = 702
    a[4, 5] = 0
    dem = make_raster(np.zeros((5, 6), np.float32), GRID, nodata=None, units="m",
                      kind="continuous", chunks=None)
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(500_000, 4_699_750),
                                                          (500_600, 4_699_750)])], crs=CRS)
    r, parts = resistance_surface(lc(a), SCHEME, dem=dem, roads=road)
    v = r.values
    assert np.isnan(v[4, 5])                       # nodata -> barrier
    # (0, 0): settlement 800, on the built cell (x2), road 250 m away (row 2) -> x1.5
    assert v[0, 0] == pytest.approx(800 * 2.0 * 1.5)
    # (2, 3): forest on the road (x2), 300 m from the village diagonal-ish: sqrt(200^2+300^2)
    d = np.hypot(200, 300)
    assert parts["built_m"].values[2, 3] == pytest.approx(d)
    assert v[2, 3] == pytest.approx(1 * 2.0 * 1.2)
    # (4, 0): forest, 200 m from the road (x1.5), 400 m from the village (x1.2)
    assert v[4, 0] == pytest.approx(1.5 * 1.2)
    assert r.rio.crs.to_epsg() == 4551 and "R = R_class" in r.attrs["formula"]


def test_bad_inputs(tmp_path):
    a = np.full((5, 6), 301)
    other = GridSpec.create(CRS, Affine(50, 0, 500_000, 0, -50, 4_700_000), (10, 12))
    dem = make_raster(np.zeros((10, 12), np.float32), other, nodata=None, units="m",
                      kind="continuous", chunks=None)
    with pytest.raises(GridMismatchError, match="align"):
        resistance_surface(lc(a), SCHEME, dem=dem)
    p = tmp_path / "r.csv"
    p.write_text("class,resistance,source\nforest,0,x\n")
    with pytest.raises(CoefficientError, match="forest"):
        load_resistance_tables(p)
    p.write_text("class,resistance,source\nforest,1,x\n")
    a[0, 0] = 702  # settlement has no row in this table
    with pytest.raises(CoefficientError, match="702"):
        resistance_surface(lc(a), SCHEME, tables=load_resistance_tables(p))
