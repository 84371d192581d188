"""Grid contract and CRS rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import shapely
from affine import Affine

from gis.crs import (
    OffsetWarning,
    assert_same_crs,
    check_offset,
    gk_zone_epsg,
    projected_crs_for,
    require_projected,
)
from gis.errors import CRSError, CRSMismatchError, GridMismatchError, SinkmapError
from gis.grid import GridSpec, align_to, assert_same_grid, make_raster


def test_gridspec_is_frozen_and_hashable(grid10):
    assert grid10.shape == (4, 6)
    assert grid10.res == (10.0, 10.0)
    assert grid10.pixel_area_m2 == 100.0
    assert grid10.bounds == (500_000, 4_700_000, 500_060, 4_700_040)
    assert hash(grid10) == hash(GridSpec.from_bounds(grid10.bounds, 10, "EPSG:4551"))
    with pytest.raises(AttributeError):
        grid10.shape = (1, 1)  # type: ignore[misc]


def test_from_bounds_snaps_outward():
    g = GridSpec.from_bounds((5, 5, 26, 14), 10, "EPSG:4551")
    assert g.bounds == (0, 0, 30, 20) and g.shape == (2, 3)


def test_raster_carries_crs_nodata_units(lc_small, grid10):
    assert lc_small.rio.crs.to_epsg() == 4551
    assert lc_small.rio.nodata == 0
    assert lc_small.attrs["units"] == "class"
    assert GridSpec.of(lc_small) == grid10
    assert lc_small.chunks is not None  # dask-backed, block-wise


@pytest.mark.parametrize(("lon", "epsg"), [(125.7, 4551), (126.06, 4551), (124.4, 4550),
                                           (75.0, 4534), (135.0, 4554), (116.4, 4548)])
def test_gauss_kruger_zone(lon, epsg):
    assert gk_zone_epsg(lon) == epsg


def test_projected_crs_for_china_and_elsewhere(caplog):
    caplog.set_level("INFO")
    meihekou = (125.2555, 42.1387, 126.0616, 43.0174)
    assert projected_crs_for(meihekou).to_epsg() == 4551
    assert "Gauss-Kruger" in caplog.text  # the choice is logged
    assert projected_crs_for((-123.7, 44.25, -123.2, 44.76)).to_epsg() == 32610  # Oregon
    assert projected_crs_for((6.0, 0.0, 9.0, 3.0)).to_epsg() == 32632


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4490"])
def test_geographic_crs_refused_for_areas(crs):
    with pytest.raises(CRSError, match="geographic") as e:
        require_projected(crs, source="lc.tif")
    assert "lc.tif" in str(e.value) and "fix:" in str(e.value)
    g = GridSpec.from_bounds((125, 42, 126, 43), 0.01, crs)
    with pytest.raises(CRSError):
        _ = g.pixel_area_m2


def test_missing_crs_is_an_error():
    with pytest.raises(CRSError, match="no coordinate reference system"):
        require_projected(None, source="zones.gpkg")


def test_crs_mismatch_names_both():
    with pytest.raises(CRSMismatchError) as e:
        assert_same_crs("EPSG:4551", "EPSG:32651", names=("lc.tif", "zones.gpkg"))
    msg = str(e.value)
    assert "EPSG:4551" in msg and "EPSG:32651" in msg and "zones.gpkg" in msg and "fix:" in msg


def test_assert_same_grid(lc_small, grid10):
    assert assert_same_grid(lc_small, lc_small) == grid10
    shifted = GridSpec.create(grid10.crs, grid10.transform @ Affine.translation(1, 0),
                              grid10.shape)
    other = make_raster(np.zeros(grid10.shape, "uint16"), shifted, nodata=0, units="class",
                        kind="categorical", name="lc2025")
    with pytest.raises(GridMismatchError, match="transform") as e:
        assert_same_grid(lc_small, other)
    assert "align_to" in str(e.value)
    bigger = GridSpec.from_bounds((500_000, 4_700_000, 500_070, 4_700_040), 10, "EPSG:4551")
    with pytest.raises(GridMismatchError, match="shape"):
        assert_same_grid(lc_small, make_raster(np.zeros(bigger.shape, "uint16"), bigger,
                                               nodata=0, units="class", kind="categorical"))


def test_align_to_nearest_halves_cells(lc_small, grid10):
    fine = GridSpec.from_bounds(grid10.bounds, 5, "EPSG:4551")
    out = align_to(lc_small, fine, resampling="nearest", chunks=3)
    assert GridSpec.of(out) == fine and out.attrs["units"] == "class"
    v = out.values
    assert v.shape == (8, 12)
    # each 10 m cell becomes a 2x2 block of 5 m cells with the same class
    np.testing.assert_array_equal(v[::2, ::2], lc_small.values)
    np.testing.assert_array_equal(v[1::2, 1::2], lc_small.values)


def test_align_to_average_on_continuous(grid10):
    a = np.arange(24, dtype="float32").reshape(4, 6)
    r = make_raster(a, grid10, nodata=np.nan, units="tC_per_ha", kind="continuous", chunks=2)
    coarse = GridSpec.from_bounds(grid10.bounds, 20, "EPSG:4551")
    out = align_to(r, coarse, resampling="average").values
    # hand-computed 2x2 means: rows (0,1) cols (0,1) -> (0+1+6+7)/4 = 3.5
    np.testing.assert_allclose(out, [[3.5, 5.5, 7.5], [15.5, 17.5, 19.5]])


def test_align_to_requires_a_sensible_resampling(lc_small, grid10):
    with pytest.raises(TypeError):
        align_to(lc_small, grid10)  # type: ignore[call-arg]  # resampling is required
    with pytest.raises(SinkmapError, match="not valid for a categorical"):
        align_to(lc_small, grid10, resampling="bilinear")


def test_offset_check_warns_on_gcj02_like_shift():
    box = shapely.box(0, 0, 10_000, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_offset(box, box, crs="EPSG:4551") == 0.0
    with pytest.warns(OffsetWarning, match="GCJ-02"):
        shift = check_offset(box, shapely.affinity.translate(box, 560, 280), crs="EPSG:4551")
    assert shift == pytest.approx((560**2 + 280**2) ** 0.5)


def test_project_raster_from_geographic_on_purpose(caplog):
    from gis.grid import project_raster

    caplog.set_level("INFO")
    g = GridSpec.from_bounds((125.6, 42.4, 125.7, 42.5), 0.001, "EPSG:4326")  # ~82 x 111 m
    a = np.full(g.shape, 301, dtype="uint16")
    r = make_raster(a, g, nodata=0, units="class", kind="categorical", chunks=40)
    p = project_raster(r, resampling="nearest")
    pg = GridSpec.of(p)
    assert pg.crs.to_epsg() == 4551 and pg.res == (111.0, 111.0)
    assert "Gauss-Kruger" in caplog.text
    # the projected cells cover the same ground: 0.1 x 0.1 degree at 42.45 N ~ 91.8 km2
    area_km2 = int((p.values == 301).sum()) * pg.pixel_area_m2 / 1e6
    assert area_km2 == pytest.approx(91.8, rel=0.02)
    assert project_raster(p, resampling="nearest") is p
