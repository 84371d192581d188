"""Resistance surface for the ecological-protection pattern (corridors, circuit current).

The formula (multiplicative, the common MCR practice; methods.md section 5.2)::

    R = R_class(land cover) x f_slope(slope, degrees) x f_road(distance to roads, m)
        x f_built(distance to built-up land, m)

* ``R_class``: ``data/tables/resistance_classes.csv``, one row per canonical class (every
  scheme reaches it through its crosswalk) with the value, its rationale and source; forest 1 ...
  cropland 50 ... settlement 800 (relative units). A class present in the land cover without a
  row is an error listing the codes; a value <= 0 or missing is an error.
* ``f_*``: ``data/tables/resistance_modifiers.csv``, step functions: the multiplier of the first
  band whose ``below`` bound exceeds the value (slope < 8 / 15 / 25 / above degrees; distance
  < 100 / 300 / 500 / 1000 / beyond metres). Factors without an input (no DEM, no roads) are 1.
* Nodata land cover gives NaN: a barrier for every consumer (cost distance and circuits treat
  NaN as no passage).

Every shipped value is expert-assigned and marked unverified; absolute magnitudes do not change
least-cost paths, but the contrast between classes does (Chen et al. 2015, methods.md 5.2).
Distances are Euclidean on the grid (``scipy.ndimage.distance_transform_edt``), computed on the
whole raster in memory (fine for a county: 7 Mpx at 30 m).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import xarray as xr
from scipy import ndimage

from gis.crs import crs_key
from gis.errors import CoefficientError, CRSMismatchError
from gis.grid import GridSpec, assert_same_grid, make_raster
from gis.resources import packaged
from layers.landcover import ClassScheme

CLASS_TABLE = "resistance_classes.csv"
MODIFIER_TABLE = "resistance_modifiers.csv"
BUILT_CLASSES = ("settlement",)
FACTORS = ("slope_deg", "road_m", "built_m")


@dataclass(frozen=True)
class ResistanceTables:
    classes: pd.Series            # canonical class -> base resistance
    modifiers: pd.DataFrame       # factor, below, multiplier
    source: str


def load_resistance_tables(classes: str | Path | None = None,
                           modifiers: str | Path | None = None) -> ResistanceTables:
    """The shipped tables, or the user's CSVs (same columns) in their place; schema-checked."""
    cp = Path(classes) if classes else packaged("tables", CLASS_TABLE)
    mp = Path(modifiers) if modifiers else packaged("tables", MODIFIER_TABLE)
    c = pd.read_csv(cp, comment="#")
    for col in ("class", "resistance", "source"):
        if col not in c.columns:
            raise CoefficientError(f"resistance table lacks column {col!r}", source=cp,
                                   fix="columns: class, resistance, units, rationale, source")
    r = pd.to_numeric(c["resistance"], errors="coerce")
    bad = c.loc[~(r > 0), "class"].tolist()
    if bad:
        raise CoefficientError(f"resistance must be a number > 0; not so for {bad}", source=cp,
                               fix="give every class a positive resistance (a barrier is a very "
                                   "large value, e.g. 1e6)")
    m = pd.read_csv(mp, comment="#")
    for col in ("factor", "below", "multiplier"):
        if col not in m.columns:
            raise CoefficientError(f"modifier table lacks column {col!r}", source=mp,
                                   fix="columns: factor, below, multiplier, units, source")
    m["below"] = pd.to_numeric(m["below"].replace("inf", np.inf), errors="coerce")
    m["multiplier"] = pd.to_numeric(m["multiplier"], errors="coerce")
    unknown = sorted(set(m["factor"]) - set(FACTORS))
    if unknown or m["below"].isna().any() or not (m["multiplier"] > 0).all():
        raise CoefficientError(f"bad modifier rows (unknown factors {unknown}, or non-numeric "
                               "bounds / multipliers <= 0)", source=mp,
                               fix=f"factors are {FACTORS}; multipliers > 0; last bound inf")
    return ResistanceTables(pd.Series(r.to_numpy(), index=c["class"].astype(str)),
                            m.sort_values(["factor", "below"]).reset_index(drop=True),
                            f"{cp.name} + {mp.name}")


def base_resistance(landcover: xr.DataArray, scheme: ClassScheme,
                    tables: ResistanceTables) -> np.ndarray:
    """R_class per cell (float32, NaN on nodata); missing classes listed in the error."""
    lc = np.asarray(landcover.values)
    nod = landcover.rio.nodata
    valid = np.ones(lc.shape, bool) if nod is None else lc != nod
    codes = np.unique(lc[valid])
    canon = scheme.table["canonical"] if "canonical" in scheme.table else pd.Series(dtype=str)
    unknown = [int(c) for c in codes if int(c) not in scheme.table.index]
    no_row = [int(c) for c in codes if int(c) in canon.index
              and canon.loc[int(c)] not in tables.classes.index]
    if unknown or no_row:
        raise CoefficientError(
            f"land-cover codes without a resistance: {unknown + no_row}"
            + (f" (not in scheme {scheme.name}: {unknown})" if unknown else ""),
            source=landcover.attrs.get("source"),
            fix="add their canonical classes to the resistance table")
    lut_codes = np.array(codes, dtype=np.int64)
    lut_vals = np.array([tables.classes[canon.loc[int(c)]] for c in codes], dtype=np.float32)
    out = np.full(lc.shape, np.nan, np.float32)
    idx = np.searchsorted(lut_codes, lc[valid])
    out[valid] = lut_vals[idx]
    return out


def slope_deg(dem: np.ndarray, res: tuple[float, float]) -> np.ndarray:
    """Slope in degrees (central differences inside, one-sided at the edges; NaN where the DEM
    is NaN)."""
    z = np.asarray(dem, dtype=np.float64)
    if min(z.shape) < 2:
        return np.zeros(z.shape, np.float32)
    gy, gx = np.gradient(z, res[1], res[0])
    return np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)


def distance_to(mask: np.ndarray, res: tuple[float, float]) -> np.ndarray:
    """Euclidean distance (m) from every cell to the nearest True cell (inf when none)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=(res[1], res[0])).astype(np.float32)


def band_multiplier(values: np.ndarray, tables: ResistanceTables, factor: str) -> np.ndarray:
    """The step function of ``factor`` applied to ``values`` (NaN values -> 1)."""
    m = tables.modifiers[tables.modifiers["factor"] == factor]
    if m.empty:
        return np.ones(values.shape, np.float32)
    bounds = m["below"].to_numpy()
    mult = m["multiplier"].to_numpy(np.float32)
    k = np.searchsorted(bounds, np.nan_to_num(values, nan=-np.inf), side="right")
    k = np.minimum(k, len(mult) - 1)
    out = mult[k]
    out[np.isnan(values)] = 1.0
    return out


def resistance_surface(landcover: xr.DataArray, scheme: ClassScheme, *,
                       dem: xr.DataArray | None = None, roads: gpd.GeoDataFrame | None = None,
                       built_classes: Sequence[str] = BUILT_CLASSES,
                       tables: ResistanceTables | None = None, components: bool = True
                       ) -> tuple[xr.DataArray, dict[str, xr.DataArray]]:
    """The resistance raster on the land cover's grid and its components (base, slope, the three
    multipliers, distances). ``dem`` must be on the same grid (align it first, on purpose:
    ``gis.grid.align_to(dem, grid, resampling="bilinear")``); ``roads`` are lines in the grid's
    CRS (rasterised with all touched cells). ``components=False`` returns an empty dict in
    place of the components (less memory on large grids)."""
    tables = tables or load_resistance_tables()
    grid = GridSpec.of(landcover)
    res = grid.res
    base = base_resistance(landcover, scheme, tables)
    parts: dict[str, np.ndarray] = {}

    def keep(name: str, a: np.ndarray) -> None:
        if components:
            parts[name] = a

    keep("base", base)
    r = base.copy()
    if dem is not None:
        assert_same_grid(landcover, dem, names=("land cover", "DEM"))
        dem_v = np.asarray(dem.values, dtype=np.float64)
        if dem.rio.nodata is not None and not np.isnan(dem.rio.nodata):
            dem_v[dem_v == dem.rio.nodata] = np.nan
        s = slope_deg(dem_v, res)
        del dem_v
        f = band_multiplier(s, tables, "slope_deg")
        keep("slope_deg", s)
        keep("f_slope", f)
        r *= f
        del s, f
    if roads is not None and len(roads):
        if roads.crs is None or crs_key(roads.crs) != crs_key(grid.crs):
            raise CRSMismatchError(f"roads are in {roads.crs}, the land cover in another CRS",
                                   source=roads.attrs.get("source"),
                                   fix="reproject the roads to the land cover's CRS")
        mask = rasterio.features.rasterize(
            ((g, 1) for g in roads.geometry.values if g is not None and not g.is_empty),
            out_shape=grid.shape, transform=grid.transform, all_touched=True,
            dtype=np.uint8).astype(bool)
        d = distance_to(mask, res)
        f = band_multiplier(d, tables, "road_m")
        keep("road_m", d)
        keep("f_road", f)
        r *= f
        del d, f, mask
    canon = scheme.table.get("canonical", pd.Series(dtype=str))
    built_codes = canon.index[canon.isin(list(built_classes))].to_numpy()
    lc = np.asarray(landcover.values)
    built = np.isin(lc, built_codes)
    if built.any():
        d = distance_to(built, res)
        f = band_multiplier(d, tables, "built_m")
        keep("built_m", d)
        keep("f_built", f)
        r *= f
        del d, f

    def wrap(a: np.ndarray, name: str, units: str) -> xr.DataArray:
        return make_raster(a.astype(np.float32), grid, nodata=float("nan"), units=units,
                           kind="continuous", name=name, chunks=None)

    units = {"base": "relative", "slope_deg": "degree", "road_m": "m", "built_m": "m"}
    out = wrap(r, "resistance", "relative")
    out.attrs["formula"] = ("R = R_class x f_slope x f_road x f_built "
                            f"({tables.source}; factors without input = 1)")
    return out, {k: wrap(v, k, units.get(k, "multiplier")) for k, v in parts.items()}


__all__ = ["BUILT_CLASSES", "ResistanceTables", "band_multiplier", "base_resistance",
           "distance_to", "load_resistance_tables", "resistance_surface", "slope_deg"]
