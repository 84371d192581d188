"""Landscape metrics per zone and class (FRAGSTATS definitions, as pylandstats) and the
habitat mask for MSPA.

**Metrics** (``class_metrics``), per zone and class, over the zone's *valid* cells (land cover
not nodata; cells outside the zone count as nodata, so patches and edges stop at the zone
boundary, as when pylandstats is run on each zone's clip):

* ``pland_pct`` = 100 x class cells / valid cells;
* ``n_patches``: patches by the 8-cell rule (cells touching at an edge or a corner);
* ``lpi_pct`` = 100 x area of the class's largest patch / landscape (valid) area;
* ``edge_m`` (FRAGSTATS total edge, TE): orthogonal cell sides the class shares with a cell of a
  *different valid* class, x the side length; the map border, nodata and cells outside the
  zone are no edge ("count boundary as edge: no");
* ``edge_density_m_per_ha`` = edge_m / landscape area in ha.

**Habitat mask** (``habitat_mask``): byte raster in the GuidosToolbox convention, 0 = missing,
1 = background, 2 = foreground (habitat), from the scheme's canonical crosswalk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from scipy import ndimage as ndi

from gis.errors import CRSMismatchError, InputError

DEFAULT_HABITAT = ("forest", "forest_broadleaf", "forest_conifer", "forest_mixed",
                   "forest_swamp", "shrubland", "grassland", "marsh", "inland_flat", "water")
MISSING, BACKGROUND, FOREGROUND = 0, 1, 2
COLUMNS = ["zone", "class", "pland_pct", "n_patches", "lpi_pct", "edge_m",
           "edge_density_m_per_ha"]


def _grid_of(data: Any, transform: Affine | None, cell_size: float | None
             ) -> tuple[np.ndarray, Affine, Any, Any]:
    if isinstance(data, xr.DataArray):
        return (np.asarray(data.values), data.rio.transform(recalc=True), data.rio.crs,
                data.rio.nodata)
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InputError(f"expected a 2-D raster, got shape {arr.shape}")
    if transform is None:
        if cell_size is None:
            raise InputError("a bare array needs transform= or cell_size=",
                             fix="pass the grid's Affine transform, or a sinkmap DataArray")
        transform = Affine(float(cell_size), 0, 0, 0, -float(cell_size), 0)
    return arr, transform, None, None


def _valid(arr: np.ndarray, nodata: Any) -> np.ndarray:
    ok = np.ones(arr.shape, bool)
    if arr.dtype.kind == "f":
        ok &= np.isfinite(arr)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        ok &= arr != nodata
    return ok


def _rasterize(gdf: Any, field: str | None, shape: tuple[int, int], transform: Affine,
               crs: Any) -> tuple[np.ndarray, list[Any]]:
    """Zones GeoDataFrame -> int32 raster of 1-based zone numbers (pixel-centre rule)."""
    import rasterio.features

    if crs is not None and gdf.crs is not None and not gdf.crs.equals(crs):
        raise CRSMismatchError(f"zones are in {gdf.crs.to_string()}, the raster in {crs}",
                               fix="reproject the zones to the raster CRS (gdf.to_crs(...))")
    names = list(gdf[field]) if field is not None else list(gdf.index)
    shapes = [(g, i + 1) for i, g in enumerate(gdf.geometry) if g is not None and not g.is_empty]
    out = rasterio.features.rasterize(shapes, out_shape=shape, transform=transform, fill=0,
                                      dtype="int32") if shapes else np.zeros(shape, np.int32)
    return out, names


def class_metrics(classes: Any, zones: Any = None, *, zone_field: str | None = None,
                  nodata: Any = None, transform: Affine | None = None,
                  cell_size: float | None = None) -> pd.DataFrame:
    """FRAGSTATS class metrics per zone (see the module docstring) as a tidy DataFrame
    (``zone``, ``class``, ``pland_pct``, ``n_patches``, ``lpi_pct``, ``edge_m``,
    ``edge_density_m_per_ha``), one row per class present in each zone.

    ``classes``: integer class raster (DataArray, or array with ``transform``/``cell_size`` and
    ``nodata``). ``zones``: None (one zone, ``"all"``), an integer raster on the same grid
    (values <= 0 = outside every zone), or a GeoDataFrame rasterised by the pixel-centre rule
    and named by ``zone_field`` (default: its index).
    """
    arr, t, crs, nd = _grid_of(classes, transform, cell_size)
    nodata = nd if nodata is None else nodata
    if t.b or t.d:
        raise InputError("rotated grids are not supported")
    dx, dy = abs(t.a), abs(t.e)
    h, w = arr.shape
    valid = _valid(arr, nodata)
    if zones is None:
        zone_idx, zone_names = valid.astype(np.int32), ["all"]
    elif hasattr(zones, "geometry") and hasattr(zones, "crs"):
        zone_idx, zone_names = _rasterize(zones, zone_field, arr.shape, t, crs)
    else:
        z, *_ = _grid_of(zones, t, None)
        if z.shape != arr.shape:
            raise InputError(f"zones raster {z.shape} and class raster {arr.shape} differ",
                             fix="put both on one grid (gis.grid.align_to, nearest)")
        zv = _valid(z, zones.rio.nodata if isinstance(zones, xr.DataArray) else None)
        zv &= np.where(zv, z, 0) > 0
        zone_names = sorted(np.unique(z[zv]).tolist())
        zone_idx = np.zeros(arr.shape, np.int32)
        zone_idx[zv] = np.searchsorted(zone_names, z[zv]) + 1
    valid &= zone_idx > 0
    if not valid.any():
        raise InputError("no valid land-cover cell inside the zones",
                         fix="check the nodata value and that the zones overlap the raster")
    codes = np.unique(arr[valid])
    cls_idx = np.zeros(arr.shape, np.int64)
    cls_idx[valid] = np.searchsorted(codes, arr[valid])
    nz, nc = len(zone_names), len(codes)
    # key of each valid cell: (zone, class) pair number; -1 = not valid
    key = np.where(valid, (zone_idx.astype(np.int64) - 1) * nc + cls_idx, -1)
    n_keys = nz * nc
    cells = np.bincount(key[valid], minlength=n_keys)
    land_cells = np.bincount(zone_idx[valid] - 1, minlength=nz)
    cell_area = dx * dy

    # edges: orthogonal sides shared with a cell of a different valid class of the same zone
    edge = np.zeros(n_keys)
    for dr, dc in ((0, 1), (1, 0)):
        ka, kb = key[0:h - dr, 0:w - dc], key[dr:h, dc:w]
        za = np.where(ka >= 0, ka // nc, -1)
        zb = np.where(kb >= 0, kb // nc, -1)
        diff = (ka >= 0) & (kb >= 0) & (za == zb) & (ka != kb)
        side = dy if dr == 0 else dx  # east neighbours share a vertical side
        edge += side * (np.bincount(ka[diff], minlength=n_keys)
                        + np.bincount(kb[diff], minlength=n_keys))
        del ka, kb, za, zb, diff
    # patches: 8-connected groups of cells with the same (zone, class) key, labelled key by
    # key inside each zone's bounding box (memory: a few grid-sized arrays)
    n_patches = np.zeros(n_keys, np.int64)
    largest = np.zeros(n_keys, np.int64)
    s8 = np.ones((3, 3), bool)
    for zi, sl in enumerate(ndi.find_objects(zone_idx)):
        if sl is None:
            continue
        kz = key[sl]
        ks = np.unique(kz[kz >= 0])
        for k in ks[ks // nc == zi]:  # the box may hold cells of other zones: not theirs
            lab, n = ndi.label(kz == k, structure=s8)
            n_patches[k] = n
            if n:
                largest[k] = int(np.bincount(lab.ravel())[1:].max())
            del lab

    rows = []
    for k in np.flatnonzero(cells):
        zi, ci = divmod(int(k), nc)
        land_m2 = land_cells[zi] * cell_area
        code = codes[ci]
        rows.append({"zone": zone_names[zi], "class": code.item() if hasattr(code, "item")
                     else code,
                     "pland_pct": 100.0 * cells[k] / land_cells[zi],
                     "n_patches": int(n_patches[k]),
                     "lpi_pct": 100.0 * largest[k] / land_cells[zi],
                     "edge_m": float(edge[k]),
                     "edge_density_m_per_ha": float(edge[k]) / (land_m2 / 10_000.0)})
    return pd.DataFrame(rows, columns=COLUMNS)


def habitat_mask(landcover: Any, scheme: Any, classes: Iterable[str | int] = DEFAULT_HABITAT,
                 *, region: Any = None, nodata: Any = None) -> Any:
    """Foreground/background mask for MSPA (GuidosToolbox: 0 missing, 1 background,
    2 foreground), uint8, as a DataArray (nodata 0) for a DataArray input, else an array.

    A cell is foreground when its code's canonical class (the scheme's crosswalk, see
    :mod:`layers.landcover`) is one of ``classes``; entries may also be raw integer codes of the
    scheme. Missing: land-cover nodata/NaN, or outside ``region`` (a bool raster, or polygons
    rasterised by the pixel-centre rule). Unknown codes or class names, a scheme without a
    ``canonical`` column, and a map with no habitat at all are :class:`InputError`.
    """
    from layers.landcover import ClassScheme, check_codes, codes_for, load_scheme

    sch = scheme if isinstance(scheme, ClassScheme) else load_scheme(scheme)
    arr, t, crs, nd = _grid_of(landcover, None, 1.0)
    nodata = nd if nodata is None else nodata
    valid = _valid(arr, nodata)
    wanted = list(classes)
    if "canonical" not in sch.table.columns:
        raise InputError(f"class scheme {sch.name!r} has no 'canonical' column", source=sch.source,
                         fix="add the crosswalk to canonical classes, or list raw codes")
    fg_codes = codes_for(sch, wanted, what="habitat")
    present = np.unique(arr[valid])
    check_codes(present, sch, source=getattr(landcover, "name", None))
    out = np.where(valid, BACKGROUND, MISSING).astype(np.uint8)
    out[valid & np.isin(arr, fg_codes)] = FOREGROUND
    if region is not None:
        if hasattr(region, "geometry") and hasattr(region, "crs"):
            if not isinstance(landcover, xr.DataArray):
                raise InputError("a polygon region needs the land cover as a DataArray",
                                 fix="pass a sinkmap raster, or a bool region mask")
            inside = _rasterize(region, None, arr.shape, t, crs)[0] > 0
        else:
            inside = np.asarray(region.values if isinstance(region, xr.DataArray) else region)
            if inside.shape != arr.shape:
                raise InputError(f"region mask {inside.shape} and land cover {arr.shape} differ")
            inside = inside.astype(bool)
        out[~inside] = MISSING
    if not (out == FOREGROUND).any():
        raise InputError(
            f"no habitat: none of {', '.join(map(str, wanted))} occurs in the land cover"
            + (" inside the region" if region is not None else ""),
            source=getattr(landcover, "name", None),
            fix="check the class scheme and the habitat classes (classes=...)")
    if isinstance(landcover, xr.DataArray):
        from gis.grid import like

        return like(landcover, out, nodata=MISSING, units="class", kind="categorical",
                    name="habitat_mask")
    return out
