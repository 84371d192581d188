"""Zonal tables streamed over raster blocks: class areas and continuous statistics per zone.

Two rules decide which cells belong to a zone:

``"centre"``
    A cell belongs to a zone when its centre lies inside the polygon: the default rule of
    :func:`rasterio.features.rasterize` (and of rasterstats, or rasterize + bincount). Every cell
    counts fully or not at all, so per-zone totals carry a boundary error of about half a cell
    along the perimeter, which averages out over many cells.

``"fraction"``
    Exact fractional coverage, as exactextract computes it: each cell is weighted by the share of
    its area that lies inside the polygon, so per-zone areas equal the vector overlay
    ``area(zone ∩ raster extent)`` to floating-point precision. The weights are computed
    analytically, not by intersecting every boundary cell with the polygon: every ring is cut at
    the grid lines (in pixel coordinates), and each piece adds, by Green's theorem, the area
    between itself and the cell's left edge to its own cell and a full-width strip to every cell
    left of it in the same row (a running sum along the row). This is exact for straight
    segments, vectorised with numpy, and costs time proportional to the perimeter plus the cells
    of the zone's bounding box.

Both functions iterate over the dask blocks of the raster (``data.blocks[i, j]``), rasterize or
weight the zones only for the block's window, and keep only per-zone (per-class) sums between
blocks, so peak memory depends on the block size and the zones, never on the raster size.
Blocks that no zone touches are not computed at all.

Areas are only measured in a projected CRS in metres; zones in another CRS than the raster are an
error (never reprojected silently). Zones must have unique ids and must not overlap.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import shapely.geometry
import xarray as xr
from affine import Affine

from gis.crs import assert_same_crs, require_projected
from gis.errors import CoverageError, InputError, NoDataError, SinkmapError
from gis.grid import DEFAULT_CHUNK, GridSpec

log = logging.getLogger(__name__)

M2_PER_MU = 666.67
"""Square metres per mu (亩), the conversion used in Chinese land statistics."""
M2_PER_HA = 10_000.0

Method = Literal["centre", "fraction"]
METHODS: tuple[str, ...] = ("centre", "fraction")

OVERLAP_TOLERANCE = 1e-6
"""Two zones overlap when their intersection exceeds this share of the smaller zone's area."""
PARTIAL_COVERAGE_WARNING = 0.99
"""Zones with less than this share of their area inside the raster extent are logged."""
_MIN_WEIGHT = 1e-9  # fractional weights below this (rounding noise, in cells) count as zero
_DENSE_LIMIT = 1 << 22  # largest (zone x class) table summed with np.bincount
_MAX_LISTED = 20


# --------------------------------------------------------------------------------------------
# public API


def class_area_table(classes: xr.DataArray, zones: gpd.GeoDataFrame, zone_field: str, *,
                     method: Method = "centre") -> pd.DataFrame:
    """Area of each class in each zone, as a long table.

    Parameters
    ----------
    classes
        Categorical raster (integer class codes; float rasters must hold whole numbers), in a
        projected CRS in metres. Nodata cells (``classes.rio.nodata``, and NaN) are excluded.
    zones
        Polygons (e.g. townships) in the same CRS as ``classes``; ids must be unique and the
        polygons must not overlap.
    zone_field
        Column of ``zones`` holding the zone id.
    method
        ``"centre"`` (a cell counts when its centre is inside) or ``"fraction"`` (exact
        fractional coverage). See the module docstring.

    Returns
    -------
    pandas.DataFrame
        Columns ``zone``, ``class`` (int), ``cells`` (float; fractional in fraction mode),
        ``area_m2``, ``area_ha`` and ``area_mu`` (``area_m2 / M2_PER_MU``), sorted by zone and
        class. Only (zone, class) pairs with cells appear; a zone without any valid cell has no
        row (it is logged, and listed in ``df.attrs["empty_zones"]``).

    Raises
    ------
    CRSError, CRSMismatchError, InputError, CoverageError, NoDataError
        See :func:`zonal_stats`.
    """
    setup = _prepare(classes, zones, zone_field, method, categorical=True)
    zs: list[np.ndarray] = []
    cs: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    for blk in _scan(setup):
        if blk.labels is not None:  # centre rule: one label raster for all zones in the block
            sel = blk.valid & (blk.labels > 0)
            if not sel.any():
                continue
            z = blk.labels[sel].astype(np.int64) - 1
            c = _as_class_codes(blk.values[sel], setup)
            zz, cc, ww = _pair_sums(z, c, None)
        else:  # fraction rule: one weight window per zone
            zl, cl, wl = [], [], []
            for part in blk.parts:
                sub = (part.rows, part.cols)
                sel = blk.valid[sub] & (part.weights > 0)
                if not sel.any():
                    continue
                c = _as_class_codes(blk.values[sub][sel], setup)
                zl.append(np.full(c.size, part.zone, dtype=np.int64))
                cl.append(c)
                wl.append(part.weights[sel])
            if not zl:
                continue
            zz, cc, ww = _pair_sums(np.concatenate(zl), np.concatenate(cl), np.concatenate(wl))
        zs.append(zz)
        cs.append(cc)
        ws.append(ww)
    if zs:
        z, c, w = _pair_sums(np.concatenate(zs), np.concatenate(cs), np.concatenate(ws))
    else:
        z = c = np.zeros(0, dtype=np.int64)
        w = np.zeros(0)
    _raise_if_empty(setup, float(w.sum()))
    empty = _empty_zones(setup, np.bincount(z, weights=w, minlength=setup.n_zones))
    df = pd.DataFrame({
        "zone": setup.ids.iloc[z].to_numpy(),
        "class": c.astype(np.int64),
        "cells": w.astype(np.float64),
    })
    df["area_m2"] = df["cells"] * setup.pixel_area
    df["area_ha"] = df["area_m2"] / M2_PER_HA
    df["area_mu"] = df["area_m2"] / M2_PER_MU
    df = df.sort_values(["zone", "class"], kind="stable").reset_index(drop=True)
    df.attrs.update(setup.attrs(), empty_zones=empty)
    return df


def zonal_stats(values: xr.DataArray, zones: gpd.GeoDataFrame, zone_field: str, *,
                method: Method = "centre") -> pd.DataFrame:
    """Statistics of a continuous raster per zone.

    Parameters are as for :func:`class_area_table`; ``values`` may hold any numbers (nodata and
    NaN cells are excluded).

    Returns
    -------
    pandas.DataFrame
        One row per zone, sorted by zone, with columns ``zone``; ``cells`` (valid cells, weighted
        by coverage in fraction mode); ``sum`` (sum of the values, each weighted by its cell's
        coverage in fraction mode); ``mean`` (``sum / cells``, the coverage-weighted mean);
        ``min`` and ``max`` (over cells with any coverage); ``area_ha`` (area of the valid
        cells). Zones without valid cells get ``cells`` 0, ``sum`` 0 and NaN ``mean``/``min``/
        ``max``.

    Raises
    ------
    CRSError
        The raster has no CRS, or one not projected in metres.
    CRSMismatchError
        The zones are in another CRS than the raster.
    InputError
        ``zone_field`` is missing; zone ids are missing or duplicated; geometries are missing,
        not polygons or invalid; zones overlap; the raster is not 2-D (y, x).
    CoverageError
        Some or all zones do not intersect the raster extent.
    NoDataError
        No valid cell lies inside any zone (e.g. an all-nodata raster).
    """
    setup = _prepare(values, zones, zone_field, method, categorical=False)
    n = setup.n_zones
    cells, sums = np.zeros(n), np.zeros(n)
    mins, maxs = np.full(n, np.inf), np.full(n, -np.inf)
    for blk in _scan(setup):
        if blk.labels is not None:
            sel = blk.valid & (blk.labels > 0)
            if not sel.any():
                continue
            z = blk.labels[sel].astype(np.int64) - 1
            v = blk.values[sel].astype(np.float64)
            cells += np.bincount(z, minlength=n)
            sums += np.bincount(z, weights=v, minlength=n)
            k = int(z[0])
            if (z == k).all():  # most blocks lie inside one zone: skip the slow ufunc.at
                mins[k], maxs[k] = min(mins[k], v.min()), max(maxs[k], v.max())
            else:
                np.minimum.at(mins, z, v)
                np.maximum.at(maxs, z, v)
        else:
            for part in blk.parts:
                sub = (part.rows, part.cols)
                sel = blk.valid[sub] & (part.weights > 0)
                if not sel.any():
                    continue
                v = blk.values[sub][sel].astype(np.float64)
                w = part.weights[sel]
                k = part.zone
                cells[k] += w.sum()
                sums[k] += w @ v
                mins[k] = min(mins[k], v.min())
                maxs[k] = max(maxs[k], v.max())
    _raise_if_empty(setup, float(cells.sum()))
    empty = _empty_zones(setup, cells)
    has = cells > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(has, sums / np.where(has, cells, 1.0), np.nan)
    df = pd.DataFrame({
        "zone": setup.ids.to_numpy(),
        "cells": cells,
        "sum": sums,
        "mean": mean,
        "min": np.where(has, mins, np.nan),
        "max": np.where(has, maxs, np.nan),
        "area_ha": cells * setup.pixel_area / M2_PER_HA,
    })
    df = df.sort_values("zone", kind="stable").reset_index(drop=True)
    df.attrs.update(setup.attrs(), empty_zones=empty, units=values.attrs.get("units", ""))
    return df


# --------------------------------------------------------------------------------------------
# preparation and checks


@dataclass
class _Segments:
    """Pieces of a zone's rings cut at the grid lines, in pixel space, sorted by row.

    A piece in cell (row, col) adds ``a`` to that cell and ``dv`` to every cell left of it in the
    same row; ``col`` may equal the raster width (pieces on the right edge).
    """

    row: np.ndarray
    col: np.ndarray
    a: np.ndarray
    dv: np.ndarray

    @property
    def bbox(self) -> tuple[int, int, int, int]:
        """(first row, last row + 1, first col, last col + 1) of the cells that can be covered."""
        return (int(self.row[0]), int(self.row[-1]) + 1, int(self.col.min()),
                int(self.col.max()) + 1)


@dataclass
class _Setup:
    raster_src: str
    zones_src: str
    method: str
    data: dsa.Array
    grid: GridSpec
    nodata: float | int | None
    pixel_area: float
    ids: pd.Series
    geoms: np.ndarray  # world coordinates
    tree: shapely.STRtree
    segments: list[_Segments | None] = field(default_factory=list)  # fraction mode only
    _geojson: dict[int, dict[str, Any]] = field(default_factory=dict)

    def geojson(self, k: int) -> dict[str, Any]:
        """GeoJSON mapping of zone ``k``, built once (rasterio would rebuild it every block)."""
        found = self._geojson.get(k)
        if found is None:
            found = self._geojson[k] = shapely.geometry.mapping(self.geoms[k])
        return found

    @property
    def n_zones(self) -> int:
        return len(self.ids)

    def attrs(self) -> dict[str, Any]:
        return {"method": self.method, "raster": self.raster_src, "zones": self.zones_src,
                "pixel_area_m2": self.pixel_area}


def _raster_source(da: xr.DataArray) -> str:
    src = da.attrs.get("source")
    if src:
        return str(src)
    # xarray names an unnamed dask-backed array after the dask graph key: not a useful name
    auto = isinstance(da.data, dsa.Array) and da.name == da.data.name
    return f"raster {da.name}" if da.name and not auto else "raster"


def _zones_source(zones: gpd.GeoDataFrame) -> str:
    src = zones.attrs.get("source")
    return str(src) if src else "zones"


def _listing(items: list[Any]) -> str:
    shown = ", ".join(str(i) for i in items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return f"{shown} ... and {more} more" if more > 0 else shown


def _prepare(raster: xr.DataArray, zones: gpd.GeoDataFrame, zone_field: str, method: str, *,
             categorical: bool) -> _Setup:
    """Check every input rule, then collect what the block scan needs."""
    if method not in METHODS:
        raise SinkmapError(f"unknown zonal method {method!r}",
                           fix=f"use one of {', '.join(METHODS)}")
    if not isinstance(raster, xr.DataArray):
        raise InputError(f"expected an xarray.DataArray raster, got {type(raster).__name__}",
                         fix="read rasters with gis.read_raster or build them with make_raster")
    raster_src = _raster_source(raster)
    if raster.dims != ("y", "x"):
        raise InputError(f"raster has dims {raster.dims}, expected ('y', 'x')",
                         source=raster_src,
                         fix="select one band (da.isel(band=0)) and order dims as (y, x)")
    if not isinstance(zones, gpd.GeoDataFrame):
        raise InputError(f"expected a GeoDataFrame of zones, got {type(zones).__name__}",
                         fix="read zones with gis.read_vector")
    zones_src = _zones_source(zones)
    if categorical and raster.attrs.get("kind") == "continuous":
        raise InputError(
            "is a continuous raster; class areas need a categorical (class code) raster",
            source=raster_src,
            fix="pass the land-cover raster, or use gis.zonal.zonal_stats for continuous values")
    require_projected(raster.rio.crs, source=raster_src, purpose="zone areas")
    assert_same_crs(raster.rio.crs, zones.crs, names=(raster_src, zones_src))
    grid = GridSpec.of(raster)
    transform = grid.transform
    pixel_area = abs(transform.a * transform.e - transform.b * transform.d)

    ids, geoms = _check_zones(zones, zone_field, zones_src)
    pixel_geoms = _to_pixels(geoms, transform)
    clipped = shapely.intersection(pixel_geoms, shapely.box(0, 0, grid.width, grid.height))
    inside = shapely.area(clipped)
    total = shapely.area(pixel_geoms)
    missing = np.flatnonzero(inside <= 0)
    if missing.size:
        head = (f"none of the {len(ids)} zones intersect" if missing.size == len(ids) else
                f"{missing.size} of the {len(ids)} zones do not intersect")
        raise CoverageError(
            f"{head} the extent of {raster_src} (bounds {_fmt_bounds(grid.bounds)}): "
            f"{_listing(list(ids.iloc[missing]))}",
            source=zones_src,
            fix="check that zones and raster cover the same area and use the same coordinates "
            "(a few hundred metres shift suggests GCJ-02 data), or drop zones outside the raster")
    partial = np.flatnonzero(inside < PARTIAL_COVERAGE_WARNING * total)
    for k in partial[:_MAX_LISTED]:
        log.warning("%s: zone %s lies only %.1f%% inside the extent of %s", zones_src,
                    ids.iloc[k], 100 * inside[k] / total[k], raster_src)

    data = raster.data
    if not isinstance(data, dsa.Array):
        data = dsa.from_array(np.asarray(data), chunks=DEFAULT_CHUNK)
    setup = _Setup(raster_src=raster_src, zones_src=zones_src, method=method, data=data,
                   grid=grid, nodata=raster.rio.nodata, pixel_area=pixel_area, ids=ids,
                   geoms=geoms, tree=shapely.STRtree(geoms))
    if method == "fraction":
        setup.segments = [_polygon_segments(g) for g in clipped]
    return setup


def _fmt_bounds(b: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.1f}" for v in b) + ")"


def validate_zones(zones: gpd.GeoDataFrame, zone_field: str, source: object = None) -> None:
    """The checks every zonal table makes: ``zone_field`` exists, ids are present and unique,
    geometries are valid (Multi)Polygons and no two zones overlap (the error lists the pairs)."""
    _check_zones(zones, zone_field, str(source) if source is not None else _zones_source(zones))


def _check_zones(zones: gpd.GeoDataFrame, zone_field: str, src: str
                 ) -> tuple[pd.Series, np.ndarray]:
    """Validate ids and geometries; return the ids and the geometry array (zone order)."""
    geom_col = zones.geometry.name
    if zone_field not in zones.columns or zone_field == geom_col:
        cols = [str(c) for c in zones.columns if c != geom_col]
        raise InputError(f"has no column {zone_field!r}; available: {', '.join(cols) or 'none'}",
                         source=src, fix="set the zone id field to one of the available columns")
    if len(zones) == 0:
        raise InputError("holds no zones", source=src, fix="give a layer with zone polygons")
    ids = zones[zone_field].reset_index(drop=True)
    null = ids.isna().to_numpy()
    if null.any():
        raise InputError(
            f"{int(null.sum())} zone(s) have no {zone_field!r} value (rows "
            f"{_listing(list(np.flatnonzero(null)))})", source=src,
            fix=f"fill in {zone_field!r} for every zone, or choose another id field")
    counts = ids.value_counts(sort=False)
    dup = counts[counts > 1]
    if len(dup):
        raise InputError(
            f"zone ids in {zone_field!r} are not unique: "
            f"{_listing([f'{k} ({v}x)' for k, v in dup.items()])}",
            source=src,
            fix="merge multi-part zones (gdf.dissolve(by=...)) or choose a unique id field")
    geoms = np.asarray(zones.geometry.to_numpy(), dtype=object)
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise InputError(f"zones without geometry: {_listing(list(ids[bad]))}", source=src,
                         fix="drop these rows or draw their polygons")
    notpoly = ~np.isin(shapely.get_type_id(geoms), (3, 6))
    if notpoly.any():
        found = [f"{i} ({g.geom_type})"
                 for i, g in zip(ids[notpoly], geoms[notpoly], strict=True)]
        raise InputError(
            f"zones that are not polygons: {_listing(found)}",
            source=src, fix="zones must be Polygon/MultiPolygon features")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        raise InputError(
            f"invalid zone geometries: {_listing(list(ids[invalid]))}", source=src,
            fix="repair them (gis.read_vector does so with make_valid; or shapely.make_valid)")
    _check_overlaps(ids, geoms, src)
    return ids, geoms


def _check_overlaps(ids: pd.Series, geoms: np.ndarray, src: str) -> None:
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    if not left.size:
        return
    inter = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    area = shapely.area(geoms)
    smaller = np.minimum(area[left], area[right])
    bad = np.flatnonzero(inter > OVERLAP_TOLERANCE * smaller)
    if bad.size:
        pairs = [f"{ids.iloc[left[k]]} & {ids.iloc[right[k]]} ({inter[k]:.6g} m², "
                 f"{100 * inter[k] / smaller[k]:.3g}% of the smaller)" for k in bad]
        raise InputError(
            f"{bad.size} pair(s) of zones overlap: {_listing(pairs)}", source=src,
            fix="fix the topology so no two zones share area (e.g. QGIS Topology Checker, or "
            "subtract one zone from the other); a cell must belong to one zone only")


def _to_pixels(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Geometries in continuous pixel coordinates (col, row) of ``transform``."""
    inv = ~transform  # its linear part is the inverse of the transform's

    def fn(xy: np.ndarray) -> np.ndarray:
        # subtract the origin first: exact for nearby coordinates, where applying the inverse
        # affine directly would cancel large terms (x ~ 5e5 m) and lose ~1e-11 of a cell
        dx, dy = xy[:, 0] - transform.c, xy[:, 1] - transform.f
        return np.column_stack((inv.a * dx + inv.b * dy, inv.d * dx + inv.e * dy))

    return shapely.transform(geoms, fn)


def _raise_if_empty(setup: _Setup, total_cells: float) -> None:
    if total_cells <= 0:
        raise NoDataError(
            f"no valid cell lies inside any of the {setup.n_zones} zone(s) of "
            f"{setup.zones_src}: the cells there are all nodata (nodata = {setup.nodata!r})"
            + (", or no cell centre falls inside a zone" if setup.method == "centre" else ""),
            source=setup.raster_src,
            fix="check that the raster holds data where the zones are and that its nodata "
            "value is right" + (" (for zones smaller than a cell use method='fraction')"
                                if setup.method == "centre" else ""))


def _empty_zones(setup: _Setup, cells: np.ndarray) -> list[Any]:
    empty = list(setup.ids.iloc[np.flatnonzero(cells <= 0)])
    if empty:
        log.warning("%s: %d zone(s) contain no valid cell of %s (%s rule): %s", setup.zones_src,
                    len(empty), setup.raster_src, setup.method, _listing(empty))
    return empty


def _as_class_codes(v: np.ndarray, setup: _Setup) -> np.ndarray:
    """Class codes as int64; non-integer values in a float raster are an error."""
    if np.issubdtype(v.dtype, np.integer) or v.dtype == bool:
        return v.astype(np.int64, copy=False)
    if not np.all(v == np.floor(v)):
        bad = np.unique(v[v != np.floor(v)])[:5]
        raise InputError(
            f"class raster holds non-integer values (e.g. {', '.join(f'{b:g}' for b in bad)})",
            source=setup.raster_src,
            fix="pass the categorical land-cover raster, or use zonal_stats for continuous data")
    return v.astype(np.int64)


def _pair_sums(z: np.ndarray, c: np.ndarray, w: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum ``w`` (or count) per distinct (z, c) pair; pairs with a zero sum are dropped."""
    if z.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    z0, c0 = int(z.min()), int(c.min())
    nz, nc = int(z.max()) - z0 + 1, int(c.max()) - c0 + 1
    if nz * nc <= _DENSE_LIMIT:
        sums = np.bincount((z - z0) * nc + (c - c0), weights=w, minlength=nz * nc)
        key = np.flatnonzero(sums)
        return key // nc + z0, key % nc + c0, sums[key].astype(np.float64)
    order = np.lexsort((c, z))
    zs, cs = z[order], c[order]
    starts = np.flatnonzero(np.r_[True, (zs[1:] != zs[:-1]) | (cs[1:] != cs[:-1])])
    ws = np.ones(z.size) if w is None else w[order]
    sums = np.add.reduceat(ws, starts)
    keep = sums != 0
    return zs[starts][keep], cs[starts][keep], sums[keep]


# --------------------------------------------------------------------------------------------
# the block scan


@dataclass
class _Part:
    """Coverage weights of one zone in a window of a block."""

    zone: int
    rows: slice
    cols: slice
    weights: np.ndarray


@dataclass
class _Block:
    values: np.ndarray
    valid: np.ndarray
    labels: np.ndarray | None = None  # centre rule: zone index + 1, 0 outside every zone
    parts: Iterable[_Part] = ()  # fraction rule: weights per zone, computed lazily


def _valid_mask(a: np.ndarray, nodata: float | int | None) -> np.ndarray:
    valid = ~np.isnan(a) if np.issubdtype(a.dtype, np.floating) else np.ones(a.shape, bool)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        valid &= a != nodata
    return valid


@dataclass
class _Task:
    """One block to read: its index, global window and the zones that may touch it."""

    bi: int
    bj: int
    r0: int
    r1: int
    c0: int
    c1: int
    zones: list[int]
    transform: Affine


def _plan(setup: _Setup) -> list[_Task]:
    """The blocks some zone touches (blocks outside every zone are never computed)."""
    data, t = setup.data, setup.grid.transform
    row_off = np.cumsum((0, *data.chunks[0]))
    col_off = np.cumsum((0, *data.chunks[1]))
    boxes = [s.bbox if s is not None else (0, 0, 0, 0) for s in setup.segments]
    tasks = []
    for bi in range(data.numblocks[0]):
        r0, r1 = int(row_off[bi]), int(row_off[bi + 1])
        for bj in range(data.numblocks[1]):
            c0, c1 = int(col_off[bj]), int(col_off[bj + 1])
            wt = Affine(t.a, t.b, t.a * c0 + t.b * r0 + t.c,
                        t.d, t.e, t.d * c0 + t.e * r0 + t.f)  # the block's window transform
            if setup.method == "centre":
                corners = [(wt.a * u + wt.b * v + wt.c, wt.d * u + wt.e * v + wt.f)
                           for u, v in ((0, 0), (c1 - c0, 0), (c1 - c0, r1 - r0), (0, r1 - r0))]
                hits = setup.tree.query(shapely.Polygon(corners), predicate="intersects")
                cand = sorted(int(k) for k in hits)
            else:
                cand = [k for k, (br0, br1, bc0, bc1) in enumerate(boxes)
                        if br1 > r0 and br0 < r1 and bc1 > c0 and bc0 < c1]
            if cand:
                tasks.append(_Task(bi, bj, r0, r1, c0, c1, cand, wt))
    return tasks


def _read(setup: _Setup, task: _Task) -> _Block:
    """Compute one block and its valid mask (and, for the centre rule, its zone labels)."""
    values = np.asarray(setup.data.blocks[task.bi, task.bj].compute())
    blk = _Block(values, _valid_mask(values, setup.nodata))
    if setup.method == "centre":
        blk.labels = rasterio.features.rasterize(
            ((setup.geojson(k), k + 1) for k in task.zones), out_shape=values.shape,
            transform=task.transform, fill=0, dtype="int32", all_touched=False)
    return blk


def _scan(setup: _Setup) -> Iterator[_Block]:
    """Yield, one at a time, each block that some zone touches, with its zone labels (centre
    rule) or a lazy sequence of per-zone coverage windows (fraction rule)."""
    boxes = [s.bbox if s is not None else (0, 0, 0, 0) for s in setup.segments]
    for task in _plan(setup):
        blk = _read(setup, task)
        if setup.method == "fraction":
            blk.parts = _block_parts(setup, task.zones, boxes, task.r0, task.r1, task.c0,
                                     task.c1)
        yield blk


def _block_parts(setup: _Setup, cand: list[int], boxes: list[tuple[int, int, int, int]],
                 r0: int, r1: int, c0: int, c1: int) -> Iterator[_Part]:
    """Coverage windows of the candidate zones in a block, one zone at a time (so at most one
    block-sized weight array is alive), in block-local coordinates."""
    for k in cand:
        seg = setup.segments[k]
        assert seg is not None
        br0, br1, bc0, bc1 = boxes[k]
        part = _coverage(seg, k, max(r0, br0), min(r1, br1), max(c0, bc0), min(c1, bc1))
        if part is not None:
            part.rows = slice(part.rows.start - r0, part.rows.stop - r0)
            part.cols = slice(part.cols.start - c0, part.cols.stop - c0)
            yield part


# --------------------------------------------------------------------------------------------
# exact fractional coverage


def _polygon_segments(geom: shapely.Geometry) -> _Segments | None:
    """Cut every ring of a (pixel-space, clipped) polygonal geometry at the grid lines."""
    pieces = []
    for poly in shapely.get_parts(geom):
        if shapely.get_type_id(poly) != 3 or poly.is_empty:
            continue  # points/lines left over by the clip carry no area
        rings = [(poly.exterior, 1.0)] + [(r, -1.0) for r in poly.interiors]
        for ring, role in rings:
            # exterior rings add area and holes remove it, whatever the stored orientation
            sign = role if shapely.is_ccw(ring) else -role
            pieces.append(_split_ring(shapely.get_coordinates(ring), sign))
    if not pieces:
        return None
    row, col, a, dv = (np.concatenate(p) for p in zip(*pieces, strict=True))
    if not row.size:
        return None
    order = np.argsort(row, kind="stable")
    return _Segments(row[order], col[order], a[order], dv[order])


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(n) for n in counts])`` without a Python loop."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(starts, counts)


def _split_ring(xy: np.ndarray, sign: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cut a closed ring (pixel coordinates u=col, v=row) at every integer grid line.

    Returns, per piece with a non-zero extent in v: its cell (row, col), ``a`` = the area
    between the piece and the cell's left edge (signed, ``Δv * (mean u - col)``) and ``dv`` =
    ``Δv``, both multiplied by ``sign`` (+1 for a counter-clockwise exterior ring).
    By Green's theorem the covered share of cell (r, c) is the sum of ``a`` over the pieces in
    that cell plus the sum of ``dv`` over the pieces in row r right of column c.
    """
    u0, v0, u1, v1 = xy[:-1, 0], xy[:-1, 1], xy[1:, 0], xy[1:, 1]
    n = u0.size
    du, dv = u1 - u0, v1 - v0
    # grid lines strictly inside each segment's u range (vertical lines) and v range
    ku0 = np.floor(np.minimum(u0, u1)) + 1
    nu = np.maximum(np.ceil(np.maximum(u0, u1)) - ku0, 0).astype(np.int64)
    kv0 = np.floor(np.minimum(v0, v1)) + 1
    nv = np.maximum(np.ceil(np.maximum(v0, v1)) - kv0, 0).astype(np.int64)
    seg_u = np.repeat(np.arange(n), nu)
    ku = ku0[seg_u] + _ragged_arange(nu)
    tu = (ku - u0[seg_u]) / du[seg_u]
    seg_v = np.repeat(np.arange(n), nv)
    kv = kv0[seg_v] + _ragged_arange(nv)
    tv = (kv - v0[seg_v]) / dv[seg_v]
    ends = np.arange(n)
    seg = np.concatenate((ends, seg_u, seg_v, ends))
    t = np.concatenate((np.zeros(n), tu, tv, np.ones(n)))
    # crossing points lie exactly on their grid line
    pu = np.concatenate((u0, ku, u0[seg_v] + tv * du[seg_v], u1))
    pv = np.concatenate((v0, v0[seg_u] + tu * dv[seg_u], kv, v1))
    order = np.lexsort((t, seg))
    seg, pu, pv = seg[order], pu[order], pv[order]
    same = seg[1:] == seg[:-1]
    ua, ub, va, vb = pu[:-1][same], pu[1:][same], pv[:-1][same], pv[1:][same]
    dvp = vb - va
    keep = dvp != 0  # pieces along a row (Δv = 0) add nothing
    ua, ub, va, vb, dvp = ua[keep], ub[keep], va[keep], vb[keep], dvp[keep]
    um, vm = (ua + ub) / 2, (va + vb) / 2
    col = np.floor(um)
    row = np.floor(vm).astype(np.int64)
    a = dvp * (um - col) * sign
    return row, col.astype(np.int64), a, dvp * sign


def _coverage(seg: _Segments, zone: int, r0: int, r1: int, c0: int, c1: int) -> _Part | None:
    """Exact covered share of each cell in rows [r0, r1) x cols [c0, c1) (global pixels)."""
    i0, i1 = np.searchsorted(seg.row, [r0, r1])
    if i0 == i1:
        return None
    row, col, a, dv = seg.row[i0:i1], seg.col[i0:i1], seg.a[i0:i1], seg.dv[i0:i1]
    right = col >= c0  # pieces left of the window add nothing to it
    row, col, a, dv = row[right], col[right], a[right], dv[right]
    if not row.size:
        return None
    h, w = r1 - r0, c1 - c0
    beyond = col >= c1  # pieces right of the window: a full strip for the whole row
    col = np.where(beyond, w, col - c0)
    idx = (row - r0) * (w + 1) + col
    acc_a = np.bincount(idx, weights=np.where(beyond, 0.0, a), minlength=h * (w + 1))
    acc_b = np.bincount(idx, weights=dv, minlength=h * (w + 1)).reshape(h, w + 1)
    strip = np.cumsum(acc_b[:, ::-1], axis=1)[:, ::-1]  # sum of dv in this and later columns
    cov = acc_a.reshape(h, w + 1)[:, :w] + strip[:, 1:]
    cov[cov < _MIN_WEIGHT] = 0.0
    np.minimum(cov, 1.0, out=cov)
    return _Part(zone, slice(r0, r1), slice(c0, c1), cov)
