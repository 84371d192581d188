"""Tests of gis.zonal: class-area tables and zonal statistics, centre and fraction rules.

The small cases use a 4 x 4 grid of 10 m cells in EPSG:4551 whose lower-left corner is
(X0, Y0); every expected number is worked out by hand in the comments beside it.
"""

from __future__ import annotations

import logging
import math

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio.features
import shapely
import shapely.affinity
import xarray as xr
from affine import Affine

from gis.errors import (
    CoverageError,
    CRSError,
    CRSMismatchError,
    InputError,
    NoDataError,
    SinkmapError,
)
from gis.grid import GridSpec, make_raster
from gis.zonal import M2_PER_MU, class_area_table, zonal_stats

CRS = "EPSG:4551"
X0, Y0 = 500_000.0, 4_800_000.0
RES = 10.0

# rows top to bottom; zone "A" = columns 0-1, zone "B" = columns 2-3
CLASSES = np.array([[1, 1, 2, 2],
                    [1, 3, 2, 2],
                    [3, 3, 3, 2],
                    [1, 1, 1, 1]], dtype=np.uint8)


def grid(shape: tuple[int, int] = (4, 4), res: float = RES) -> GridSpec:
    return GridSpec.create(CRS, Affine(res, 0, X0, 0, -res, Y0 + shape[0] * res), shape)


def raster(arr: np.ndarray, *, nodata: float | int | None = 0, chunks: int | None = 2,
           kind: str = "categorical", g: GridSpec | None = None,
           source: str | None = None):
    attrs = {"source": source} if source else None
    return make_raster(arr, g or grid(arr.shape), nodata=nodata,
                       units="class" if kind == "categorical" else "tC_per_ha", kind=kind,
                       chunks=chunks, attrs=attrs)


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    """A rectangle in metres relative to the grid's lower-left corner."""
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def local(coords: list[tuple[float, float]]) -> shapely.Polygon:
    return shapely.Polygon([(X0 + x, Y0 + y) for x, y in coords])


def zones(ids: list, geoms: list, *, crs: str | None = CRS, field: str = "id",
          source: str | None = None) -> gpd.GeoDataFrame:
    gdf = gpd.GeoDataFrame({field: ids, "name": [f"z{i}" for i in ids]}, geometry=geoms, crs=crs)
    if source:
        gdf.attrs["source"] = source
    return gdf


def halves(split: float = 20.0) -> gpd.GeoDataFrame:
    return zones(["A", "B"], [box(0, 0, split, 40), box(split, 0, 40, 40)])


def rows(df: pd.DataFrame) -> list[tuple]:
    return [(z, int(c), float(n)) for z, c, n in df[["zone", "class", "cells"]].itertuples(
        index=False)]


def assert_rows(df: pd.DataFrame, expected: list[tuple], *, abs_tol: float = 0.0) -> None:
    """(zone, class) keys must match exactly, cells to ``abs_tol``."""
    got = rows(df)
    assert [r[:2] for r in got] == [e[:2] for e in expected]
    assert [r[2] for r in got] == pytest.approx([e[2] for e in expected], abs=abs_tol, rel=0)


def apply(t: Affine, u: float, v: float) -> tuple[float, float]:
    """World coordinates of pixel position (u = column, v = row)."""
    return t.a * u + t.b * v + t.c, t.d * u + t.e * v + t.f


# --------------------------------------------------------------------------------------------
# class_area_table: hand-computed answers


def test_centre_two_rectangles() -> None:
    t = class_area_table(raster(CLASSES), halves(), "id")
    # A = columns 0-1: (1,1) (1,3) (3,3) (1,1) -> class 1: 5 cells, class 3: 3
    # B = columns 2-3: (2,2) (2,2) (3,2) (1,1) -> class 1: 2, class 2: 5, class 3: 1
    assert rows(t) == [("A", 1, 5.0), ("A", 3, 3.0),
                       ("B", 1, 2.0), ("B", 2, 5.0), ("B", 3, 1.0)]
    assert list(t.columns) == ["zone", "class", "cells", "area_m2", "area_ha", "area_mu"]
    assert t["area_m2"].tolist() == [500.0, 300.0, 200.0, 500.0, 100.0]  # 100 m² per cell
    assert t["area_ha"].tolist() == pytest.approx([0.05, 0.03, 0.02, 0.05, 0.01], rel=1e-12)
    assert t["class"].dtype == np.int64
    assert t["cells"].dtype == np.float64


def test_fraction_edge_through_cell_middles() -> None:
    t = class_area_table(raster(CLASSES), halves(15.0), "id", method="fraction")
    # split at x = 15 m: column 1 is cut in half.
    # A = column 0 (1,1,3,1) + half of column 1 (1,3,3,1):
    #     class 1: 3 + 0.5*2 = 4, class 3: 1 + 0.5*2 = 2
    # B = half of column 1 + columns 2-3: class 1: 1 + 2 = 3, class 2: 5, class 3: 1 + 1 = 2
    assert_rows(t, [("A", 1, 4.0), ("A", 3, 2.0),
                                     ("B", 1, 3.0), ("B", 2, 5.0), ("B", 3, 2.0)], abs_tol=1e-12)
    assert t["area_m2"].sum() == pytest.approx(1600.0, rel=1e-12)


# triangle (0,0) (40,0) (0,20): its hypotenuse is y = 20 - x/2; rows listed top to bottom
TRI_CLASSES = np.array([[9, 9, 9, 9],
                        [9, 9, 9, 9],
                        [5, 6, 7, 8],
                        [1, 2, 3, 4]], dtype=np.int16)


def tri_zone() -> gpd.GeoDataFrame:
    return zones([7], [local([(0, 0), (40, 0), (0, 20)])])


def test_fraction_triangle() -> None:
    t = class_area_table(raster(TRI_CLASSES), tri_zone(), "id", method="fraction")
    # bottom row (y 0-10): the line is above y = 10 for x < 20 -> classes 1, 2 full;
    #   x 20-30: area under y = 20 - x/2 = (7.5 mean height) * 10 = 75 m² -> class 3: 0.75
    #   x 30-40: mean height 2.5 -> class 4: 0.25
    # second row (y 10-20): x 0-10: mean height above 10 = 7.5 -> class 5: 0.75
    #   x 10-20: mean 2.5 -> class 6: 0.25
    # total 4 cells = triangle area 40 * 20 / 2 = 400 m²
    assert_rows(t, [(7, 1, 1.0), (7, 2, 1.0), (7, 3, 0.75), (7, 4, 0.25),
                                     (7, 5, 0.75), (7, 6, 0.25)], abs_tol=1e-12)
    assert t["area_m2"].sum() == pytest.approx(400.0, rel=1e-12)


def test_centre_triangle() -> None:
    t = class_area_table(raster(TRI_CLASSES), tri_zone(), "id")
    # centres (5,5) (15,5) (25,5) (5,15) lie below the hypotenuse; (35,5) and (15,15) do not
    assert rows(t) == [(7, 1, 1.0), (7, 2, 1.0), (7, 3, 1.0), (7, 5, 1.0)]


def test_fraction_polygon_with_hole() -> None:
    cls = np.arange(1, 17, dtype=np.int32).reshape(4, 4)  # one class per cell
    ring = shapely.Polygon(box(0, 0, 40, 40).exterior.coords, [box(5, 5, 35, 35).exterior.coords])
    t = class_area_table(raster(cls, nodata=None), zones([1], [ring]), "id", method="fraction")
    # the hole's edges run through the middle of the outer cells: corner cells keep an L of
    # 0.75, edge cells a half, the four inner cells nothing; 4*0.75 + 8*0.5 = 7 = (1600-900)/100
    expected = {1: 0.75, 4: 0.75, 13: 0.75, 16: 0.75,
                2: 0.5, 3: 0.5, 5: 0.5, 8: 0.5, 9: 0.5, 12: 0.5, 14: 0.5, 15: 0.5}
    assert dict(zip(t["class"], t["cells"], strict=True)) == pytest.approx(expected, abs=1e-12)


def test_multipolygon_zone() -> None:
    mp = shapely.MultiPolygon([box(0, 30, 10, 40), box(30, 0, 40, 10)])  # two corner cells
    t = class_area_table(raster(CLASSES), zones(["M"], [mp]), "id")
    assert rows(t) == [("M", 1, 2.0)]  # top-left and bottom-right cells are both class 1


def test_mu_conversion() -> None:
    t = class_area_table(raster(CLASSES), halves(), "id")
    # 1 mu = 666.67 m² exactly: 500 m² = 500 / 666.67 mu, NOT 0.05 ha * 15 = 0.75 mu
    assert M2_PER_MU == 666.67
    assert t["area_mu"].tolist() == pytest.approx(
        [0.7499962500187499, 0.4499977500112499, 0.29999850000749995, 0.7499962500187499,
         0.14999925000374997], rel=1e-12)
    assert t["area_mu"].iloc[0] != pytest.approx(0.75, rel=1e-7)


def test_mu_conversion_cells_of_one_mu() -> None:
    # cells 66.667 m x 10 m = 666.67 m² = exactly one mu each
    g = GridSpec.create(CRS, Affine(66.667, 0, X0, 0, -10, Y0 + 20), (2, 3))
    cls = np.array([[1, 1, 2], [2, 2, 2]], dtype=np.uint8)
    z = zones([1], [shapely.box(*g.bounds)])
    t = class_area_table(raster(cls, g=g), z, "id")
    assert t["area_mu"].tolist() == pytest.approx([2.0, 4.0], rel=1e-12)
    assert t["area_ha"].tolist() == pytest.approx([0.133334, 0.266668], rel=1e-12)


def test_nodata_excluded() -> None:
    cls = CLASSES.copy()
    cls[0, 0] = 255  # A loses a class-1 cell
    cls[2, 2] = 255  # B loses a class-3 cell (its only one)
    t = class_area_table(raster(cls, nodata=255), halves(), "id")
    assert rows(t) == [("A", 1, 4.0), ("A", 3, 3.0), ("B", 1, 2.0), ("B", 2, 5.0)]
    tf = class_area_table(raster(cls, nodata=255), halves(15.0), "id", method="fraction")
    # from the fraction test: A class 1 loses the full cell (0,0); B loses its full class-3 cell
    assert_rows(tf, [("A", 1, 3.0), ("A", 3, 2.0),
                                      ("B", 1, 3.0), ("B", 2, 5.0), ("B", 3, 1.0)], abs_tol=1e-12)


def test_float_class_raster_with_nan_nodata() -> None:
    cls = CLASSES.astype(np.float32)
    cls[3, :] = np.nan
    t = class_area_table(raster(cls, nodata=np.nan), halves(), "id")
    # the bottom row (all class 1) is gone: A class 1: 5 - 2 = 3; B class 1: 2 - 2 = 0
    assert rows(t) == [("A", 1, 3.0), ("A", 3, 3.0), ("B", 2, 5.0), ("B", 3, 1.0)]


def test_zone_without_valid_cells_has_no_rows(caplog: pytest.LogCaptureFixture) -> None:
    cls = CLASSES.copy()
    cls[:, 2:] = 0
    with caplog.at_level(logging.WARNING, logger="gis.zonal"):
        t = class_area_table(raster(cls, nodata=0), halves(), "id")
    assert rows(t) == [("A", 1, 5.0), ("A", 3, 3.0)]
    assert t.attrs["empty_zones"] == ["B"]
    assert "no valid cell" in caplog.text


def test_zone_partly_outside_raster(caplog: pytest.LogCaptureFixture) -> None:
    z = zones(["A"], [box(-20, 0, 20, 40)])  # half of it lies west of the raster
    with caplog.at_level(logging.WARNING, logger="gis.zonal"):
        t = class_area_table(raster(CLASSES), z, "id", method="fraction")
    assert_rows(t, [("A", 1, 5.0), ("A", 3, 3.0)], abs_tol=1e-12)
    assert "50.0% inside" in caplog.text


def test_integer_zone_ids_sorted() -> None:
    z = zones([20, 3], [box(20, 0, 40, 40), box(0, 0, 20, 40)])
    t = class_area_table(raster(CLASSES), z, "id")
    assert t["zone"].tolist() == [3, 3, 20, 20, 20]
    assert t["class"].tolist() == [1, 3, 1, 2, 3]


# --------------------------------------------------------------------------------------------
# chunking and streaming


@pytest.mark.parametrize("method", ["centre", "fraction"])
def test_chunked_equals_unchunked(method: str) -> None:
    rng = np.random.default_rng(3)
    cls = rng.integers(1, 6, size=(9, 11)).astype(np.uint8)
    cls[rng.random(cls.shape) < 0.1] = 0
    g = grid((9, 11))
    zs = zones([1, 2, 3], [local([(3, 4), (57, 8), (41, 86), (12, 61)]),
                           local([(60, 2), (108, 5), (104, 47), (66, 40)]),
                           local([(58, 52), (109, 49), (106, 89), (47, 88)])])
    base = class_area_table(raster(cls, chunks=None, g=g), zs, "id", method=method)
    for chunks in (2, 3, 4):
        t = class_area_table(raster(cls, chunks=chunks, g=g), zs, "id", method=method)
        if method == "centre":
            pd.testing.assert_frame_equal(t, base)
        else:
            pd.testing.assert_frame_equal(t, base, check_exact=False, rtol=1e-12, atol=1e-12)
        s0 = zonal_stats(raster(cls, chunks=None, g=g), zs, "id", method=method)
        s1 = zonal_stats(raster(cls, chunks=chunks, g=g), zs, "id", method=method)
        pd.testing.assert_frame_equal(s1, s0, check_exact=False, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["centre", "fraction"])
def test_blocks_streamed_once_and_untouched_blocks_skipped(method: str) -> None:
    computed: list[tuple[int, int]] = []

    def block(block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        computed.append((r0, c0))
        return np.ones((r1 - r0, c1 - c0), dtype=np.uint8)

    data = dsa.map_blocks(block, dtype=np.uint8, chunks=((4, 4, 4), (4, 4, 4)))
    r = make_raster(data, grid((12, 12)), nodata=0, units="class", kind="categorical",
                    chunks=None)
    # a zone inside the top-left block only (x 10-30 m, y 90-110 m of a 120 m grid)
    t = class_area_table(r, zones([1], [box(10, 90, 30, 110)]), "id", method=method)
    assert t["cells"].sum() == pytest.approx(4.0, abs=1e-12)
    assert computed == [(0, 0)]


def test_centre_matches_whole_raster_rasterize_bincount() -> None:
    # reference: one rasterize of the whole (small) raster plus bincount, no blocks
    rng = np.random.default_rng(5)
    shape = (120, 150)
    g = grid(shape)
    cls = rng.integers(0, 7, size=shape).astype(np.uint8)
    zs = voronoi_zones(g, 9, rng)
    t = class_area_table(raster(cls, chunks=32, g=g), zs, "id")
    lab = rasterio.features.rasterize(zip(zs.geometry, range(1, len(zs) + 1), strict=True),
                                      out_shape=shape, transform=g.transform, fill=0)
    ok = (lab > 0) & (cls != 0)
    ref = np.bincount((lab[ok] - 1) * 7 + cls[ok], minlength=len(zs) * 7).reshape(-1, 7)
    got = np.zeros_like(ref)
    for z, c, n in rows(t):
        got[z, c] = n
    np.testing.assert_array_equal(got, ref)


# --------------------------------------------------------------------------------------------
# fraction mode against exact vector overlays


def star(rng: np.random.Generator, cx: float, cy: float, r: float, n: int) -> shapely.Polygon:
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = r * rng.uniform(0.3, 1.0, n)
    return shapely.Polygon(np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)])


def voronoi_zones(g: GridSpec, n: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    extent = shapely.box(*g.bounds)
    w, s, e, nn = g.bounds
    pts = shapely.multipoints(np.c_[rng.uniform(w, e, n), rng.uniform(s, nn, n)])
    cells = shapely.get_parts(shapely.voronoi_polygons(pts, extend_to=extent))
    return zones(list(range(len(cells))), [c.intersection(extent) for c in cells])


@pytest.mark.parametrize("chunks", [None, 7])
def test_fraction_total_equals_polygon_area_within_raster(chunks: int | None) -> None:
    rng = np.random.default_rng(11)
    g = grid((37, 41))
    extent = shapely.box(*g.bounds)
    c = extent.centroid
    poly = star(rng, c.x + 60, c.y - 40, 260, 60)  # sticks out of the raster on some sides
    hole = star(rng, c.x + 40, c.y - 40, 40, 9)
    assert poly.contains(hole)
    poly = poly.difference(hole)
    assert poly.is_valid and not extent.contains(poly)
    cls = rng.integers(1, 4, size=g.shape).astype(np.uint8)
    t = class_area_table(raster(cls, chunks=chunks, g=g), zones([1], [poly]), "id",
                         method="fraction")
    exact = shapely.intersection(poly, extent).area
    assert t["area_m2"].sum() == pytest.approx(exact, rel=1e-9)


@pytest.mark.filterwarnings("ignore:Transform that is non-rectilinear")
@pytest.mark.parametrize("transform", [
    Affine(10, 0, X0, 0, -10, Y0 + 230),  # north-up
    Affine(10, 0, X0, 0, 10, Y0),  # south-up
    Affine(-10, 0, X0 + 310, 0, -10, Y0 + 230),  # columns run west
    Affine.translation(X0, Y0) @ Affine.rotation(20) @ Affine.scale(10, -7),  # rotated
], ids=["north-up", "south-up", "x-flipped", "rotated"])
def test_fraction_per_cell_equals_shapely_overlay(transform: Affine) -> None:
    h, w = 23, 31
    g = GridSpec.create(CRS, transform, (h, w))
    cls = np.arange(h * w, dtype=np.int32).reshape(h, w)  # one class per cell
    rng = np.random.default_rng(7)
    corners = [apply(transform, u, v) for u, v in ((0, 0), (w, 0), (w, h), (0, h))]
    c = shapely.Polygon(corners).centroid
    poly = star(rng, c.x, c.y, 160, 40)
    t = class_area_table(raster(cls, nodata=None, chunks=5, g=g), zones([1], [poly]), "id",
                         method="fraction")
    got = np.zeros(h * w)
    got[t["class"].to_numpy()] = t["cells"].to_numpy()
    r, col = np.divmod(np.arange(h * w), w)
    cell_boxes = [shapely.Polygon([apply(transform, cc + dx, rr + dy)
                                   for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1))])
                  for rr, cc in zip(r, col, strict=True)]
    ref = shapely.area(shapely.intersection(np.array(cell_boxes), poly)) / abs(
        transform.determinant)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    # exactly the cells the polygon covers get a weight (no rounding-noise weights elsewhere)
    np.testing.assert_array_equal(got > 0, ref > 1e-9)


def test_centre_and_fraction_agree_on_large_zones() -> None:
    rng = np.random.default_rng(2)
    shape = (300, 280)
    g = GridSpec.create(CRS, Affine(10, 0, X0 + 3.3, 0, -10, Y0 + 3000 + 7.7), shape)
    cls = rng.integers(1, 9, size=shape).astype(np.uint8)
    zs = voronoi_zones(g, 12, rng)
    r = raster(cls, chunks=64, g=g)
    centre = class_area_table(r, zs, "id").groupby("zone")["cells"].sum()
    frac = class_area_table(r, zs, "id", method="fraction").groupby("zone")["cells"].sum()
    np.testing.assert_allclose(centre.to_numpy(), frac.to_numpy(), rtol=0.01)
    # the zones tile the raster: in fraction mode the totals add up to every cell exactly
    assert frac.sum() == pytest.approx(shape[0] * shape[1], rel=1e-12)
    areas = shapely.area(zs.geometry.to_numpy()) / 100.0
    np.testing.assert_allclose(frac.sort_index().to_numpy(), areas, rtol=1e-9)


# --------------------------------------------------------------------------------------------
# zonal_stats

VALUES = np.array([[1, 2, 3, 4],
                   [5, np.nan, 7, 8],
                   [9, 10, 11, 12],
                   [13, 14, 15, np.nan]], dtype=np.float32)


def values_raster(arr: np.ndarray = VALUES, chunks: int | None = 2):
    return raster(arr, nodata=np.nan, chunks=chunks, kind="continuous")


def test_zonal_stats_centre() -> None:
    s = zonal_stats(values_raster(), halves(), "id")
    # A: 1 2 5 9 10 13 14 (NaN dropped): 7 cells, sum 54; B: 3 4 7 8 11 12 15: 7 cells, sum 60
    assert list(s.columns) == ["zone", "cells", "sum", "mean", "min", "max", "area_ha"]
    assert s["zone"].tolist() == ["A", "B"]
    assert s["cells"].tolist() == [7.0, 7.0]
    assert s["sum"].tolist() == [54.0, 60.0]
    assert s["mean"].tolist() == pytest.approx([54 / 7, 60 / 7], rel=1e-12)
    assert s["min"].tolist() == [1.0, 3.0]
    assert s["max"].tolist() == [14.0, 15.0]
    assert s["area_ha"].tolist() == pytest.approx([0.07, 0.07], rel=1e-12)


def test_zonal_stats_fraction() -> None:
    s = zonal_stats(values_raster(), halves(15.0), "id", method="fraction")
    # A: column 0 (1 5 9 13: 4 cells, sum 28) + half of column 1 (2 10 14 valid: 1.5, sum 13)
    # B: half of column 1 (1.5, 13) + column 2 (3 7 11 15: 4, 36) + column 3 (4 8 12: 3, 24)
    assert s["cells"].tolist() == pytest.approx([5.5, 8.5], abs=1e-12)
    assert s["sum"].tolist() == pytest.approx([41.0, 73.0], abs=1e-12)
    assert s["mean"].tolist() == pytest.approx([41 / 5.5, 73 / 8.5], rel=1e-12)
    assert s["min"].tolist() == [1.0, 2.0]
    assert s["max"].tolist() == [14.0, 15.0]
    assert s["area_ha"].tolist() == pytest.approx([0.055, 0.085], rel=1e-12)


def test_zonal_stats_zone_without_valid_cells() -> None:
    z = zones(["A", "C"], [box(0, 0, 20, 40), box(30, 0, 40, 10)])  # C = the NaN corner cell
    for method in ("centre", "fraction"):
        s = zonal_stats(values_raster(), z, "id", method=method).set_index("zone")
        assert s.loc["A", "cells"] == pytest.approx(7.0)
        assert s.loc["C", "cells"] == 0.0
        assert s.loc["C", "sum"] == 0.0
        assert s.loc["C", "area_ha"] == 0.0
        assert np.isnan(s.loc["C", ["mean", "min", "max"]].to_numpy(dtype=float)).all()


def test_zonal_stats_integer_raster_with_nodata() -> None:
    arr = np.array([[1, 2, -9999, 4]] * 4, dtype=np.int16)
    s = zonal_stats(raster(arr, nodata=-9999, kind="continuous"), halves(), "id")
    # A: columns 0-1 = 4 * (1 + 2) = 12 over 8 cells; B: only column 3 is valid: 4 * 4 = 16
    assert s["cells"].tolist() == [8.0, 4.0]
    assert s["sum"].tolist() == [12.0, 16.0]
    assert s["mean"].tolist() == [1.5, 4.0]


# --------------------------------------------------------------------------------------------
# errors


def test_geographic_raster_refused() -> None:
    g = GridSpec.create("EPSG:4490", Affine(0.001, 0, 125, 0, -0.001, 43), (4, 4))
    r = raster(CLASSES, g=g, source="lc_degrees.tif")
    z = zones(["A"], [shapely.box(125, 42.997, 125.002, 43)], crs="EPSG:4490")
    with pytest.raises(CRSError, match=r"lc_degrees\.tif") as e:
        class_area_table(r, z, "id")
    assert "geographic" in str(e.value) and "fix:" in str(e.value)


def test_raster_in_feet_refused() -> None:
    g = GridSpec.create("EPSG:2263", Affine(10, 0, 1e6, 0, -10, 2e5), (4, 4))  # NY, US feet
    z = zones(["A"], [shapely.box(1e6, 2e5 - 40, 1e6 + 40, 2e5)], crs="EPSG:2263")
    with pytest.raises(CRSError, match="not projected in metres"):
        zonal_stats(raster(VALUES, nodata=np.nan, kind="continuous", g=g), z, "id")


def test_raster_without_crs_refused() -> None:
    r = xr.DataArray(CLASSES, dims=("y", "x"), attrs={"source": "nocrs.tif"})
    with pytest.raises(CRSError, match=r"nocrs\.tif: has no coordinate reference system"):
        class_area_table(r, halves(), "id")


def test_zones_in_other_crs_refused() -> None:
    z = halves().to_crs("EPSG:4490")
    z.attrs["source"] = "towns.gpkg"
    with pytest.raises(CRSMismatchError, match=r"towns\.gpkg") as e:
        class_area_table(raster(CLASSES, source="lc.tif"), z, "id")
    assert "lc.tif" in str(e.value) and "EPSG:4551" in str(e.value)


def test_zones_without_crs_refused() -> None:
    with pytest.raises(CRSError, match=r"towns\.shp"):
        class_area_table(raster(CLASSES), zones(["A"], [box(0, 0, 20, 40)], crs=None,
                                                source="towns.shp"), "id")


def test_missing_zone_field_lists_columns() -> None:
    with pytest.raises(InputError, match=r"towns\.gpkg") as e:
        class_area_table(raster(CLASSES), zones(["A"], [box(0, 0, 20, 40)],
                                                source="towns.gpkg"), "code")
    msg = str(e.value)
    assert "'code'" in msg and "id, name" in msg and "fix:" in msg


def test_duplicate_zone_ids_listed() -> None:
    z = zones(["A", "B", "A"], [box(0, 0, 10, 40), box(10, 0, 20, 40), box(20, 0, 40, 40)],
              source="towns.gpkg")
    with pytest.raises(InputError, match=r"A \(2x\)") as e:
        class_area_table(raster(CLASSES), z, "id")
    assert "towns.gpkg" in str(e.value) and "dissolve" in str(e.value)


def test_overlapping_zones_listed() -> None:
    z = zones(["A", "B", "C"], [box(0, 0, 25, 40), box(20, 0, 40, 20), box(20, 20, 40, 40)],
              source="towns.gpkg")
    with pytest.raises(InputError, match="2 pair") as e:
        zonal_stats(values_raster(), z, "id")
    msg = str(e.value)
    # A overlaps B and C by 5 m x 20 m = 100 m² each; B and C only share an edge
    assert "A & B (100 m²" in msg and "A & C (100 m²" in msg and "B & C" not in msg
    assert "towns.gpkg" in msg


def test_negligible_overlap_accepted() -> None:
    # a 1e-7 m x 40 m sliver = 4e-6 m² of overlap, 5e-9 of the smaller zone (800 m²): below
    # the 1e-6 tolerance, as digitising noise between neighbouring townships is
    z = zones(["A", "B"], [box(0, 0, 20 + 1e-7, 40), box(20, 0, 40, 40)])
    t = class_area_table(raster(CLASSES), z, "id")
    assert t["cells"].sum() == 16.0


@pytest.mark.parametrize("method", ["centre", "fraction"])
def test_zones_outside_raster_listed(method: str) -> None:
    far = box(10_000, 10_000, 10_040, 10_040)
    z = zones(["A", "far1", "far2"], [box(0, 0, 20, 40), far,
                                      shapely.affinity.translate(far, 100)],
              source="towns.gpkg")
    with pytest.raises(CoverageError, match="2 of the 3 zones") as e:
        class_area_table(raster(CLASSES, source="lc.tif"), z, "id", method=method)
    msg = str(e.value)
    assert "far1, far2" in msg and "towns.gpkg" in msg and "lc.tif" in msg and "fix:" in msg


def test_all_zones_outside_raster() -> None:
    z = zones(["far"], [box(-100, -100, -50, -50)])
    with pytest.raises(CoverageError, match="none of the 1 zones"):
        zonal_stats(values_raster(), z, "id")


def test_zone_touching_raster_edge_only_is_outside() -> None:
    z = zones(["A", "edge"], [box(0, 0, 20, 40), box(40, 0, 60, 40)])
    with pytest.raises(CoverageError, match="edge"):
        class_area_table(raster(CLASSES), z, "id")


@pytest.mark.parametrize("method", ["centre", "fraction"])
def test_all_nodata_raster(method: str) -> None:
    arr = np.full((4, 4), np.nan, dtype=np.float32)
    r = raster(arr, nodata=np.nan, kind="continuous", source="empty.tif")
    with pytest.raises(NoDataError, match=r"empty\.tif"):
        zonal_stats(r, halves(), "id", method=method)
    cls = raster(np.zeros((4, 4), np.uint8), nodata=0, source="empty_lc.tif")
    with pytest.raises(NoDataError, match=r"empty_lc\.tif"):
        class_area_table(cls, halves(), "id", method=method)


def test_zone_smaller_than_a_cell_without_a_centre() -> None:
    tiny = zones(["t"], [box(1, 1, 4, 4)])  # 9 m² in the corner of a 100 m² cell
    with pytest.raises(NoDataError, match="no cell centre"):
        class_area_table(raster(CLASSES), tiny, "id")
    t = class_area_table(raster(CLASSES), tiny, "id", method="fraction")
    assert_rows(t, [("t", 1, 0.09)], abs_tol=1e-12)  # bottom-left cell is class 1


def test_non_integer_classes_refused() -> None:
    arr = CLASSES.astype(np.float32) + 0.5
    r = make_raster(arr, grid(), nodata=None, units="class", kind="categorical", chunks=2,
                    attrs={"source": "lc.tif"})
    with pytest.raises(InputError, match="non-integer"):
        class_area_table(r, halves(), "id")


def test_continuous_raster_refused_for_class_areas() -> None:
    with pytest.raises(InputError, match="continuous"):
        class_area_table(values_raster(), halves(), "id")


def test_invalid_and_non_polygon_zones_refused() -> None:
    bowtie = local([(0, 0), (20, 20), (20, 0), (0, 20)])
    with pytest.raises(InputError, match="invalid zone geometries: A"):
        class_area_table(raster(CLASSES), zones(["A"], [bowtie]), "id")
    line = shapely.LineString([(X0, Y0), (X0 + 20, Y0 + 20)])
    with pytest.raises(InputError, match=r"not polygons: A \(LineString\)"):
        class_area_table(raster(CLASSES), zones(["A"], [line]), "id")
    with pytest.raises(InputError, match="without geometry: B"):
        class_area_table(raster(CLASSES), zones(["A", "B"], [box(0, 0, 20, 40), None]), "id")


def test_unknown_method_refused() -> None:
    with pytest.raises(SinkmapError, match="centre, fraction"):
        class_area_table(raster(CLASSES), halves(), "id", method="touch")  # type: ignore[arg-type]
