"""Tests of layers.landscape: FRAGSTATS class metrics on a hand-counted 4 x 4 map, per zone
(raster and polygons), and the GuidosToolbox habitat mask."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from gis.errors import InputError
from gis.grid import GridSpec, make_raster
from layers.landscape import FOREGROUND, class_metrics, habitat_mask

# 10 m cells, 0 = nodata. Class 1 touches itself only diagonally at (1,0)-(2,1) and
# (2,1)-(3,2): one patch by the 8-cell rule (three by the 4-cell rule).
MAP = np.array([[1, 1, 2, 2],
                [1, 0, 2, 2],
                [3, 1, 2, 1],
                [3, 3, 1, 1]])
T = Affine(10, 0, 0, 0, -10, 40)


def test_class_metrics_whole_map():
    df = class_metrics(MAP, nodata=0, transform=T).set_index("class")
    assert list(df.zone.unique()) == ["all"]
    # 15 valid cells: class 1 has 7, class 2 has 5, class 3 has 3
    assert df.pland_pct.to_dict() == pytest.approx({1: 700 / 15, 2: 500 / 15, 3: 300 / 15})
    assert df.n_patches.to_dict() == {1: 1, 2: 1, 3: 1}
    assert df.lpi_pct[1] == pytest.approx(700 / 15)
    # orthogonal sides with a different valid class (the nodata cell and the border: none):
    # rows 1|2 (r0), 3|1, 1|2, 2|1 (r2), 3|1 (r3); columns 1/3 (c0), 1/3 (c1), 2/1 (c2), 2/1 (c3)
    assert df.edge_m.to_dict() == {1: 90.0, 2: 50.0, 3: 40.0}
    # landscape 15 x 100 m2 = 0.15 ha
    assert df.edge_density_m_per_ha[1] == pytest.approx(90 / 0.15)


def test_class_metrics_per_zone_raster_and_polygons():
    zones = np.array([[1, 1, 2, 2]] * 4)
    df = class_metrics(MAP, zones, nodata=0, transform=T).set_index(["zone", "class"])
    # zone 1 (columns 0-1): 7 valid cells, class 1 x 4 (one patch), class 3 x 3
    assert df.loc[(1, 1), "pland_pct"] == pytest.approx(400 / 7)
    assert df.loc[(1, 1), "n_patches"] == 1 and df.loc[(2, 1), "n_patches"] == 1
    # sides across the zone boundary ((3,1)|(3,2), (0,1)|(0,2), (2,1)|(2,2)) do not count
    assert df.loc[(1, 1), "edge_m"] == 30 and df.loc[(1, 3), "edge_m"] == 30
    assert df.loc[(2, 1), "edge_m"] == 30 and df.loc[(2, 2), "edge_m"] == 30
    assert df.loc[(2, 2), "lpi_pct"] == pytest.approx(500 / 8)
    assert df.loc[(2, 1), "edge_density_m_per_ha"] == pytest.approx(30 / 0.08)
    polys = gpd.GeoDataFrame({"name": ["west", "east"]},
                             geometry=[shapely.box(0, 0, 20, 40), shapely.box(20, 0, 40, 40)])
    dp = class_metrics(MAP, polys, zone_field="name", nodata=0, transform=T)
    dp = dp.set_index(["zone", "class"])
    assert dp.loc[("west", 1), "edge_m"] == 30 and dp.loc[("east", 2), "n_patches"] == 1
    assert dp.loc[("east", 1), "pland_pct"] == pytest.approx(300 / 8)


def test_two_patches_and_dataarray_input():
    a = np.array([[1, 2, 1],
                  [2, 2, 2],
                  [1, 2, 1]], dtype="uint8")
    grid = GridSpec.create("EPSG:4551", Affine(30, 0, 0, 0, -30, 90), (3, 3))
    da = make_raster(a, grid, nodata=255, units="class", kind="categorical", chunks=None)
    df = class_metrics(da).set_index("class")
    assert df.n_patches[1] == 4 and df.n_patches[2] == 1
    assert df.lpi_pct[1] == pytest.approx(100 / 9)
    assert df.edge_m[1] == 8 * 30 and df.edge_m[2] == 8 * 30


def test_class_metrics_bad_inputs():
    with pytest.raises(InputError, match="no valid"):
        class_metrics(np.zeros((2, 2), int), nodata=0, cell_size=1)
    with pytest.raises(InputError, match="differ"):
        class_metrics(MAP, np.ones((2, 2), int), cell_size=1)


# CLCD: 1 cropland, 2 forest, 4 grassland, 5 water, 8 impervious, 9 wetland (marsh)
LC = np.array([[1, 2, 4],
               [5, 8, 9],
               [0, 1, 2]], dtype="uint8")


def test_habitat_mask_gtb_convention():
    m = habitat_mask(LC, "clcd", nodata=0)
    assert m.dtype == np.uint8
    assert m.tolist() == [[1, 2, 2], [2, 1, 2], [0, 1, 2]]
    only_forest = habitat_mask(LC, "clcd", classes=("forest", 1), nodata=0)
    assert only_forest.tolist() == [[2, 2, 1], [1, 1, 1], [0, 2, 2]]
    region = np.ones(LC.shape, bool)
    region[:, 2] = False
    assert habitat_mask(LC, "clcd", nodata=0, region=region)[:, 2].tolist() == [0, 0, 0]


def test_habitat_mask_dataarray_and_polygon_region():
    grid = GridSpec.create("EPSG:4551", Affine(30, 0, 0, 0, -30, 90), (3, 3))
    da = make_raster(LC, grid, nodata=0, units="class", kind="categorical", chunks=None)
    region = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 60, 90)], crs="EPSG:4551")
    m = habitat_mask(da, "clcd", region=region)
    assert m.rio.nodata == 0 and m.attrs["kind"] == "categorical"
    assert m.values.tolist() == [[1, 2, 0], [2, 1, 0], [0, 1, 0]]
    assert (m.values == FOREGROUND).sum() == 2


def test_habitat_mask_errors():
    with pytest.raises(InputError, match="no habitat"):
        habitat_mask(np.array([[1, 8]], "uint8"), "clcd")
    with pytest.raises(InputError, match="not in class scheme"):
        habitat_mask(np.array([[1, 42]], "uint8"), "clcd")
    with pytest.raises(InputError, match="unknown habitat"):
        habitat_mask(LC, "clcd", classes=("jungle",), nodata=0)


def test_patches_per_zone_match_brute_force_labelling():
    """Zone 1 lies inside the bounding boxes of zones 2 and 3: each zone's patches are its own
    (checked against scipy labelling of each (zone, class) mask)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(3)
    cls = ndi.median_filter(rng.integers(1, 4, (60, 70)), 3)
    z = np.zeros((60, 70), int)
    z[:, :30], z[:, 30:] = 2, 3
    z[20:40, 20:50] = 1
    m = class_metrics(cls, z, cell_size=30)
    assert len(m) == 9
    for (zz, c), r in m.set_index(["zone", "class"]).iterrows():
        lab, n = ndi.label((cls == c) & (z == zz), structure=np.ones((3, 3)))
        assert n == r.n_patches
        assert r.lpi_pct == pytest.approx(np.bincount(lab.ravel())[1:].max() / (z == zz).sum()
                                          * 100)
