"""Urban green space: the green mask, coverage per district, park service, change between years.

Definitions (methods notes section 4; thresholds and defaults in ``green_space.csv``):

* **Green mask** (绿化覆盖, all vegetation seen from above). From imagery: per pixel the maximum
  NDVI over the clear summer observations (1 June - 31 August by default; a cloud, its shadow,
  snow and nodata are not observations; the maximum is the usual vegetation composite, robust
  to cloud remnants, which lower NDVI), green where it is >= the threshold: a fixed value, or
  Otsu's threshold of the composite's histogram inside the boundary (reported). Water (flagged
  in any clear observation) is never green. Green patches smaller than the minimum mapping
  unit (8-connected) are dropped. From land cover (no imagery): the green classes (forest,
  shrub, grassland, park/green space by default). Pixels of ``exclude_classes`` of a supplied
  land cover (e.g. cropland) are never green.
* **Undetermined**: a pixel inside the boundary with no clear observation (or land-cover
  nodata). Coverage is green / observed area; a district observed on less than
  ``min_observed_pct`` of its area is undetermined (status and reason), not a number.
* **Green coverage rate** (绿化覆盖率) = green area / observed area x 100. **Per-capita green**
  = green m2 / population; **per-capita park green** (人均公园绿地) = park m2 / population;
  both empty (NaN), never 0, when a district's population is missing.
* **Park service coverage** (公园绿地服务半径覆盖率) = residential area within a qualifying
  park's service radius / residential area x 100. A park's radius is that of the largest
  size tier it reaches (2,000 m2 -> 300 m, 5,000 m2 -> 500 m by default); the radius is a
  straight-line buffer of the park polygon, as the standard's service radius is. Residential
  area: supplied polygons, or residential land-cover classes.
* **Change**: new green = green in the year and not in the baseline (both observed); lost the
  reverse; net = new - lost; new green by the baseline land-cover class it came from, lost by
  the class it became (when land cover is given). The plan's target is new green (+3,200 mu).

Cells are counted by the pixel-centre rule on the analysis grid (the imagery's own grid over
the boundary, or the land cover's); areas in the grid's projected CRS. Everything here is a
pure function of arrays, DataArrays and GeoDataFrames; :mod:`sinkmap.green_cmd` reads and writes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import scipy.ndimage as ndi
import shapely
import shapely.geometry
import xarray as xr

from gis.crs import crs_key, require_projected
from gis.errors import CoverageError, InputError
from gis.grid import GridSpec, align_to, make_raster
from gis.imagery import Scene, analysis_grid, covers, load_bands
from gis.resources import packaged
from gis.zonal import validate_zones
from layers.landcover import ClassScheme, check_codes, codes_for
from layers.spectral import quality_masks
from layers.tillage import SeasonWindow

log = logging.getLogger(__name__)

M2_PER_MU = 2000.0 / 3.0
NOT_GREEN, GREEN, UNDETERMINED, OUTSIDE = 0, 1, 2, 255
#: codes of the change raster
STABLE_OTHER, STABLE_GREEN, NEW_GREEN, LOST_GREEN, CHANGE_UNDETERMINED = 0, 1, 2, 3, 4
DEFAULT_GREEN = ("forest", "forest_broadleaf", "forest_conifer", "forest_mixed", "forest_swamp",
                 "shrubland", "other_forest", "grassland", "urban_green", "perennial_crop")
TABLE = "green_space.csv"

Progress = Callable[[str], None]


# -- settings ------------------------------------------------------------------------------------

def load_table(path: Any = None) -> pd.DataFrame:
    """The green-space defaults table (``key, value, units, source, verified``), the shipped one
    or a user's CSV with the same columns (every shipped key must be present)."""
    src = packaged("tables", TABLE) if path is None else path
    try:
        t = pd.read_csv(src)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the green-space table ({exc})", source=src,
                         fix="give a CSV with columns key, value, units, source, verified") from exc
    missing = {"key", "value", "units", "source"} - set(t.columns)
    if missing:
        raise InputError(f"green-space table lacks column(s) {', '.join(sorted(missing))}",
                         source=src, fix="columns: key, value, units, source, verified")
    t = t.set_index("key")
    if path is not None:
        need = set(pd.read_csv(packaged("tables", TABLE))["key"]) - set(t.index)
        if need:
            raise InputError(f"green-space table lacks key(s) {', '.join(sorted(need))}",
                             source=src, fix=f"copy the rows from the shipped {TABLE}")
    return t


@dataclass(frozen=True)
class GreenSettings:
    """Parameters of the green-space analysis (defaults from ``green_space.csv``)."""

    threshold: float | None = None            # NDVI; None = Otsu
    season: tuple[str, str] = ("06-01", "08-31")
    min_area_m2: float = 400.0
    min_observed_pct: float = 50.0
    green_classes: tuple[str | int, ...] = DEFAULT_GREEN
    exclude_classes: tuple[str | int, ...] = ()
    residential_classes: tuple[str | int, ...] | None = None  # None: 701/702 or settlement
    park_tiers: tuple[tuple[float, float], ...] = ((2000.0, 300.0), (5000.0, 500.0))
    target_mu: float = 3200.0
    coverage_target_pct: float = 40.0
    urban_close_m: float = 100.0              # built-up area from land cover: closing radius
    urban_min_ha: float = 100.0               # ... and the smallest piece kept
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_table(cls, path: Any = None, **overrides: Any) -> GreenSettings:
        t = load_table(path)
        v = t["value"].astype(float)
        tiers, k = [], 1
        while f"park_min_area_m2_{k}" in v.index:
            tiers.append((float(v[f"park_min_area_m2_{k}"]), float(v[f"park_radius_m_{k}"])))
            k += 1
        s = cls(min_area_m2=float(v["min_area_m2"]), target_mu=float(v["new_green_target_mu"]),
                coverage_target_pct=float(v["coverage_target_pct"]),
                park_tiers=tuple(sorted(tiers)),
                sources={str(i): str(r) for i, r in t["source"].items()})
        return replace(s, **overrides) if overrides else s

    def window(self, year: int) -> tuple[date, date]:
        """The summer window of ``year`` (both ends included)."""
        w = SeasonWindow.of(year, *self.season)
        return w.start, w.end


# -- pure building blocks ------------------------------------------------------------------------

def otsu_threshold(values: np.ndarray, *, bins: int = 256,
                   value_range: tuple[float, float] = (-1.0, 1.0)) -> float:
    """Otsu's threshold of ``values`` (finite ones): the histogram cut that maximises the
    between-class variance (the upper edge of the lower class's last bin; where the maximum is
    flat, across empty bins between the modes, the middle of that run)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2 or v.min() == v.max():
        raise InputError("cannot choose an Otsu threshold: fewer than two distinct values",
                         fix="give a fixed threshold (--threshold)")
    hist, edges = np.histogram(v, bins=bins, range=value_range)
    p = hist.astype(np.float64) / hist.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * mids)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    # the maximum is flat across an empty gap between the modes: take the middle of that run
    top = np.flatnonzero(between >= between.max() * (1.0 - 1e-12))
    run_end = top[0]
    while run_end + 1 in top:
        run_end += 1
    return float((edges[top[0] + 1] + edges[run_end + 1]) / 2.0)


def drop_small_patches(green: np.ndarray, min_cells: int) -> np.ndarray:
    """``green`` (bool) without its 8-connected patches of fewer than ``min_cells`` cells."""
    if min_cells <= 1 or not green.any():
        return green
    lab, n = ndi.label(green, structure=np.ones((3, 3), bool))
    size = np.bincount(lab[green], minlength=n + 1)  # green cells only: far fewer to widen
    keep = size >= min_cells
    keep[0] = False
    if keep[1:].all():
        return green
    return keep[lab]


def rasterize_ids(gdf: gpd.GeoDataFrame, grid: GridSpec, values: Iterable[int] | None = None,
                  *, fill: int = 0, dtype: Any = np.int32) -> np.ndarray:
    """Polygons burnt on ``grid`` by the pixel-centre rule (value = 1..n in row order, or
    ``values``)."""
    vals = list(range(1, len(gdf) + 1)) if values is None else list(values)
    shapes = [(g, int(v)) for g, v in zip(gdf.geometry, vals, strict=True)
              if g is not None and not g.is_empty]
    if not shapes:
        return np.full(grid.shape, fill, dtype=dtype)
    return rasterio.features.rasterize(shapes, out_shape=grid.shape, transform=grid.transform,
                                       fill=fill, dtype=dtype, all_touched=False)


def park_radii(area_m2: np.ndarray, tiers: Sequence[tuple[float, float]]) -> np.ndarray:
    """Service radius of each park: that of the largest tier (min area, radius) it reaches;
    0 when it is smaller than every tier."""
    r = np.zeros(len(area_m2))
    for min_area, radius in sorted(tiers):
        r = np.where(np.asarray(area_m2) >= min_area, radius, r)
    return r


def change_raster(now: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The change codes of two green masks (codes of :data:`GREEN` etc.)."""
    out = np.full(now.shape, OUTSIDE, dtype=np.uint8)
    inside = (now != OUTSIDE) & (base != OUTSIDE)
    known = inside & (now != UNDETERMINED) & (base != UNDETERMINED)
    out[inside & ~known] = CHANGE_UNDETERMINED
    g1, g0 = now == GREEN, base == GREEN
    out[known & ~g1 & ~g0] = STABLE_OTHER
    out[known & g1 & g0] = STABLE_GREEN
    out[known & g1 & ~g0] = NEW_GREEN
    out[known & ~g1 & g0] = LOST_GREEN
    return out


# -- imagery -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SummerComposite:
    """The summer NDVI composite of one year on the analysis grid (numpy, computed)."""

    year: int
    ndvi_max: np.ndarray      # float32, NaN where no clear observation
    water: np.ndarray         # bool: water in a clear observation
    covered: np.ndarray       # bool: inside some scene's data
    n_clear: np.ndarray       # uint8
    scene_ids: tuple[str, ...]
    dates: tuple[date, ...]


def scenes_of(scenes: Sequence[Scene], year: int, settings: GreenSettings
              ) -> tuple[list[Scene], list[Scene]]:
    """The scenes dated in ``year``'s summer window, and the year's others (ignored)."""
    a, b = settings.window(year)
    inside = [s for s in scenes if a <= s.date <= b]
    other = [s for s in scenes if s.date.year == year and not a <= s.date <= b]
    return inside, other


def summer_composite(scenes: Sequence[Scene], grid: GridSpec, year: int) -> SummerComposite:
    """Maximum NDVI over the clear, non-water observations of ``scenes`` on ``grid``."""
    best = np.full(grid.shape, np.nan, dtype=np.float32)
    water = np.zeros(grid.shape, bool)
    covered = np.zeros(grid.shape, bool)
    n = np.zeros(grid.shape, np.uint8)
    for sc in scenes:
        bands = load_bands(sc, grid, ("red", "nir", "qa"))
        masks = quality_masks(bands["qa"], sc.sensor)
        red = np.asarray(bands["red"].values, dtype=np.float32)
        nir = np.asarray(bands["nir"].values, dtype=np.float32)
        nod = np.asarray(masks["nodata"].values, bool)
        clear = np.asarray(masks["clear"].values, bool) & np.isfinite(red) & np.isfinite(nir)
        wat = np.asarray(masks["water"].values, bool) & clear
        cov = ~nod & np.isfinite(red) & np.isfinite(nir)
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (nir - red) / (nir + red)
        use = clear & ~wat & np.isfinite(v)
        np.fmax(best, np.where(use, v, np.nan), out=best)
        water |= wat
        covered |= cov
        n += (clear).astype(np.uint8)
        log.info("summer scene %s (%s, %s): %.1f %% of the grid clear", sc.id, sc.sensor,
                 sc.date, 100.0 * clear.mean())
    return SummerComposite(year, best, water, covered, n, tuple(s.id for s in scenes),
                           tuple(s.date for s in scenes))


# -- the analysis --------------------------------------------------------------------------------

@dataclass
class YearMask:
    """One year's green mask (uint8 codes) and how it was made."""

    year: int
    mask: np.ndarray
    source: str                       # "imagery" / "landcover"
    threshold: float | None = None
    threshold_method: str | None = None
    composite: SummerComposite | None = None
    ignored_scenes: tuple[str, ...] = ()


@dataclass
class GreenResult:
    """Everything :func:`green_space` computed (rasters as DataArrays on ``grid``)."""

    grid: GridSpec
    urban: gpd.GeoDataFrame
    mask: xr.DataArray
    change: xr.DataArray | None
    ndvi: xr.DataArray | None
    districts: gpd.GeoDataFrame
    transitions: pd.DataFrame
    parks: gpd.GeoDataFrame | None
    service_area: gpd.GeoDataFrame | None
    summary: dict[str, Any]


def _in_crs(gdf: gpd.GeoDataFrame | None, grid: GridSpec, what: str
            ) -> gpd.GeoDataFrame | None:
    if gdf is None:
        return None
    if gdf.crs is None:
        raise InputError(f"the {what} layer has no CRS", source=gdf.attrs.get("source", what),
                         fix="define its CRS (e.g. in QGIS: Layer > Set CRS)")
    if crs_key(gdf.crs) != crs_key(grid.crs):
        log.info("%s reprojected to the analysis grid's CRS (%s)", what, grid.crs)
        gdf = gdf.to_crs(grid.crs)
    return gdf


def _landcover_on(lc: xr.DataArray, grid: GridSpec, what: str) -> np.ndarray:
    """Land-cover codes on ``grid`` (nearest when the grids differ, logged); -1 = nodata."""
    if GridSpec.of(lc) != grid:
        log.info("%s resampled (nearest) onto the analysis grid", what)
        lc = align_to(lc, grid, resampling="nearest")
    arr = np.asarray(lc.values)
    nd = lc.rio.nodata
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        out = np.where(bad, -1, arr).astype(np.int32)
    else:
        out = arr.astype(np.int32)  # a copy: the nodata cells are overwritten below
    if nd is not None and not (isinstance(nd, float) and math.isnan(nd)):
        out[arr == nd] = -1
    return out


def _in_codes(codes: np.ndarray, wanted: Sequence[int]) -> np.ndarray:
    """``np.isin(codes, wanted)`` by a lookup table (codes are small integers, -1 = nodata)."""
    hi = int(max(codes.max(initial=0), max(wanted, default=0))) + 2
    lut = np.zeros(hi, bool)
    lut[np.asarray(list(wanted), dtype=np.int64)] = True
    return lut[codes]  # -1 reads lut[-1], which is False (hi exceeds every wanted code)


def _year_mask(year: int, grid: GridSpec, inside: np.ndarray, settings: GreenSettings, *,
               scenes: Sequence[Scene] | None, lc_codes: np.ndarray | None,
               scheme: ClassScheme | None, threshold: float | None) -> YearMask:
    cell = grid.pixel_area_m2
    min_cells = max(1, math.ceil(settings.min_area_m2 / cell - 1e-9))
    out = np.full(grid.shape, OUTSIDE, dtype=np.uint8)
    exclude = None
    if lc_codes is not None and settings.exclude_classes:
        assert scheme is not None
        exclude = _in_codes(lc_codes, codes_for(scheme, settings.exclude_classes, what="excluded"))
    if scenes is not None:
        use, other = scenes_of(scenes, year, settings)
        a, b = settings.window(year)
        if not use:
            raise InputError(f"no imagery dated {a} .. {b} for {year}"
                             + (f" ({len(other)} scene(s) of {year} outside the window)"
                                if other else ""),
                             fix="give summer scenes of that year, or widen the window "
                             "(--season MM-DD MM-DD)")
        comp = summer_composite(use, grid, year)
        observed = inside & np.isfinite(comp.ndvi_max) | (inside & comp.water)
        method = "fixed" if threshold is not None else "otsu"
        t = threshold
        vals = comp.ndvi_max[observed & np.isfinite(comp.ndvi_max)]
        if t is None and vals.size >= 2 and vals.min() < vals.max():
            t = otsu_threshold(vals)
        green = observed & ~comp.water & (comp.ndvi_max >= t if t is not None else False)
        _fill_mask(out, inside, observed, green, exclude, min_cells)
        if t is not None:
            log.info("%d: NDVI threshold %.3f (%s), %d scene(s)", year, t, method, len(use))
        return YearMask(year, out, "imagery", t, method if t is not None else None, comp,
                        tuple(s.id for s in other))
    if lc_codes is None or scheme is None:
        raise InputError(f"no imagery and no land cover for {year}",
                         fix="give --imagery with summer scenes, or --landcover")
    present = np.unique(lc_codes[inside & (lc_codes >= 0)])
    check_codes(present, scheme)
    observed = inside & (lc_codes >= 0)
    green = observed & _in_codes(lc_codes, codes_for(scheme, settings.green_classes, what="green"))
    _fill_mask(out, inside, observed, green, exclude, min_cells)
    return YearMask(year, out, "landcover")


def _fill_mask(out: np.ndarray, inside: np.ndarray, observed: np.ndarray, green: np.ndarray,
               exclude: np.ndarray | None, min_cells: int) -> None:
    """Write the mask codes: undetermined inside, not green where observed, green where green
    (less the excluded classes and the patches under the minimum mapping unit)."""
    if exclude is not None:
        green = green & ~exclude
    green = drop_small_patches(green, min_cells)
    out[inside] = UNDETERMINED
    out[observed] = NOT_GREEN
    out[green] = GREEN


def _residential(grid: GridSpec, inside: np.ndarray, residential: gpd.GeoDataFrame | None,
                 lc_codes: np.ndarray | None, scheme: ClassScheme | None,
                 settings: GreenSettings) -> tuple[np.ndarray | None, str]:
    if residential is not None:
        return (rasterize_ids(residential, grid, [1] * len(residential)) > 0) & inside, \
            "residential polygons"
    if lc_codes is None or scheme is None:
        return None, ""
    classes = settings.residential_classes
    if classes is None:
        classes = (701, 702) if {701, 702} <= set(scheme.codes.tolist()) else ("settlement",)
    codes = codes_for(scheme, classes, what="residential")
    return _in_codes(lc_codes, codes) & inside, f"land-cover classes {list(classes)}"


DEFAULT_URBAN = ("settlement", "urban_green")


def urban_from_landcover(landcover: xr.DataArray, scheme: ClassScheme,
                         classes: Iterable[str | int] = DEFAULT_URBAN, *,
                         close_m: float = 100.0, min_ha: float = 100.0,
                         name: str = "built-up area") -> gpd.GeoDataFrame:
    """The built-up area (建成区) as polygons from land-cover classes, when no urban boundary
    is given: the cells of ``classes`` (settlement and park/green space by default), closed
    by ``close_m`` (a disc: streets and small gaps join the blocks), holes filled (parks and
    water inside the town belong to it), then the pieces of >= ``min_ha`` (villages drop out).
    The rule is a sinkmap default, not a standard; an official 城镇开发边界 is better."""
    require_projected(landcover.rio.crs, source=landcover.name, purpose="the built-up area")
    g = GridSpec.of(landcover)
    cell = abs(g.transform.a)
    codes = _landcover_on(landcover, g, "land cover")
    built = _in_codes(codes, codes_for(scheme, classes, what="built-up"))
    del codes
    r = close_m / cell
    if r > 0:
        near = ndi.distance_transform_edt(~built) <= r          # dilation by a disc
        built = ~(ndi.distance_transform_edt(near) <= r) & near  # then erosion: closing
        del near
    built = ndi.binary_fill_holes(built)
    lab, n = ndi.label(built, structure=np.ones((3, 3), bool))
    size = np.bincount(lab[built], minlength=n + 1) * cell * cell / 1e4
    keep = size >= min_ha
    keep[0] = False
    built = keep[lab]
    if not built.any():
        raise InputError(f"no built-up area of >= {min_ha:g} ha from classes "
                         f"{', '.join(map(str, classes))}", source=landcover.name,
                         fix="lower the minimum size, check the classes, or give --urban")
    geoms = [shapely.geometry.shape(geom) for geom, v in rasterio.features.shapes(
        built.astype(np.uint8), mask=built, transform=g.transform, connectivity=8) if v == 1]
    poly = shapely.union_all(geoms)
    log.info("built-up area from land-cover classes %s: %.0f ha in %d piece(s)",
             list(classes), poly.area / 1e4, int(keep[1:].sum()))
    return gpd.GeoDataFrame({"name": [name]}, geometry=[poly], crs=g.crs)


def validate_districts(districts: gpd.GeoDataFrame, name_field: str,
                       population_field: str | None) -> None:
    """Unique names, polygons, no overlaps (an error listing the overlapping pairs), and a
    numeric population column when one is named."""
    src = districts.attrs.get("source", "districts")
    validate_zones(districts, name_field, src)
    if population_field is not None:
        if population_field not in districts.columns:
            cols = [c for c in districts.columns if c != districts.geometry.name]
            raise InputError(f"has no population column {population_field!r}; available: "
                             f"{', '.join(map(str, cols))}", source=src,
                             fix="name the population column (--population-field)")
        pop = pd.to_numeric(districts[population_field], errors="coerce")
        bad = pop.notna() & (pop < 0)
        if bad.any():
            names = ", ".join(map(str, districts.loc[bad, name_field]))
            raise InputError(f"negative population in {names}", source=src,
                             fix="population must be >= 0 (leave it empty when unknown)")


def green_space(urban: gpd.GeoDataFrame | None, year: int, *,
                scenes: Sequence[Scene] | None = None,
                landcover: xr.DataArray | None = None, scheme: ClassScheme | None = None,
                baseline_year: int | None = None,
                baseline_landcover: xr.DataArray | None = None,
                districts: gpd.GeoDataFrame | None = None, name_field: str = "name",
                population_field: str | None = "population",
                parks: gpd.GeoDataFrame | None = None, park_name_field: str = "name",
                residential: gpd.GeoDataFrame | None = None,
                urban_classes: Sequence[str | int] | None = None,
                settings: GreenSettings | None = None,
                progress: Progress | None = None) -> GreenResult:
    """The green-space analysis of ``year`` inside the ``urban`` boundary (module docstring).

    ``scenes``: summer imagery of the year (and of ``baseline_year``); without it the green
    mask comes from ``landcover`` (and ``baseline_landcover``). With both, the land cover gives
    the residential area, the excluded classes and the classes of the transitions. ``urban``
    None: the built-up area from ``landcover`` (:func:`urban_from_landcover` of
    ``urban_classes``).
    """
    s = settings or GreenSettings.from_table()
    say = progress or (lambda _m: None)
    if urban is None:
        if landcover is None or scheme is None:
            raise InputError("no urban boundary and no land cover to find the built-up area in",
                             fix="give --urban, or --urban-classes with a land cover")
        say("built-up area from the land cover")
        urban = urban_from_landcover(landcover, scheme, urban_classes or DEFAULT_URBAN,
                                     close_m=s.urban_close_m, min_ha=s.urban_min_ha)
    if len(urban) == 0:
        raise InputError("the urban boundary holds no polygon", fix="give the boundary polygon")
    if scenes is None and landcover is None:
        raise InputError("no imagery and no land cover", fix="give --imagery or --landcover")
    if baseline_year is not None and baseline_year >= year:
        raise InputError(f"the baseline year {baseline_year} is not before {year}",
                         fix="give an earlier --baseline-year")
    if baseline_year is not None and scenes is None and baseline_landcover is None:
        raise InputError(f"no imagery and no land cover for the baseline year {baseline_year}",
                         fix="give --baseline-landcover, or imagery with scenes of that year")
    # the analysis grid
    if scenes is not None:
        use, _ = scenes_of(scenes, year, s)
        if not use:
            a, b = s.window(year)
            raise InputError(f"no imagery dated {a} .. {b}",
                             fix="give summer scenes of the year, or widen the window")
        if urban.crs is None:
            raise InputError("the urban boundary has no CRS", fix="define the layer's CRS")
        grid = analysis_grid(use, tuple(urban.total_bounds), urban.crs)
        cover = [covers(sc, grid) for sc in scenes]
        if max(cover) == 0.0:
            ids = ", ".join(sc.id for sc in scenes[:5])
            raise CoverageError(
                f"the urban boundary lies outside every scene (scenes: {ids}"
                f"{', ...' if len(scenes) > 5 else ''})",
                source=urban.attrs.get("source", "urban boundary"),
                fix="check the boundary's CRS and the imagery's area")
    else:
        assert landcover is not None
        if urban.crs is None:
            raise InputError("the urban boundary has no CRS", fix="define the layer's CRS")
        b = tuple(urban.to_crs(landcover.rio.crs).total_bounds)
        try:
            grid = GridSpec.of(landcover).covering(b, margin=1, clip=True)
        except CoverageError as exc:
            raise CoverageError("the urban boundary lies outside the land cover",
                                source=landcover.name,
                                fix="give a land cover covering the boundary") from exc
    require_projected(grid.crs, source="analysis grid", purpose="green areas")
    urban = _in_crs(urban, grid, "urban boundary")
    assert urban is not None
    districts = _in_crs(districts, grid, "districts")
    parks = _in_crs(parks, grid, "parks")
    residential = _in_crs(residential, grid, "residential")
    if districts is None:
        name = str(urban[name_field].iloc[0]) if name_field in urban.columns else "urban"
        districts = gpd.GeoDataFrame({name_field: [name]},
                                     geometry=[shapely.union_all(urban.geometry.values)],
                                     crs=grid.crs)
        pop_field = None
    else:
        pop_field = population_field or None
        if pop_field == "population" and pop_field not in districts.columns:
            log.warning("the districts have no 'population' column: per-capita values are left "
                        "empty (name the column with population_field)")
            pop_field = None
        validate_districts(districts, name_field, pop_field)
        districts = districts.reset_index(drop=True)
    u = rasterize_ids(urban, grid, [1] * len(urban)) > 0
    if not u.any():
        raise CoverageError("the urban boundary covers no cell centre of the analysis grid",
                            fix="check the boundary (too small for the grid?)")
    dist = rasterize_ids(districts, grid)
    inside = u
    if s.exclude_classes and landcover is None:
        raise InputError("exclude_classes needs a land cover", fix="give --landcover too")
    lc_now = _landcover_on(landcover, grid, "land cover") if landcover is not None else None
    lc_base = (_landcover_on(baseline_landcover, grid, "baseline land cover")
               if baseline_landcover is not None else None)
    say(f"green mask {year}")
    cur = _year_mask(year, grid, inside, s, scenes=scenes, lc_codes=lc_now, scheme=scheme,
                     threshold=s.threshold)
    base = None
    base_codes = lc_base
    if baseline_year is not None and base_codes is None and s.exclude_classes:
        log.warning("no land cover of %d: the classes it excludes (%s) are taken from the %d "
                    "land cover (give the baseline land cover for exact exclusion)",
                    baseline_year, ", ".join(map(str, s.exclude_classes)), year)
        base_codes = lc_now
    if baseline_year is not None:
        say(f"green mask {baseline_year}")
        base = _year_mask(baseline_year, grid, inside, s, scenes=scenes,
                          lc_codes=base_codes, scheme=scheme, threshold=s.threshold)
    change = change_raster(cur.mask, base.mask) if base is not None else None
    say("districts")
    res, res_source = _residential(grid, inside, residential, lc_now, scheme, s)
    parks_out, service = None, None
    served = None
    if parks is not None:
        parks_out, service = _parks(parks, park_name_field, s)
        served = (rasterize_ids(service, grid, [1]) > 0) if len(service) else \
            np.zeros(grid.shape, bool)
    table = _district_table(districts, name_field, pop_field, dist, inside, cur, base, change,
                            res, served, parks_out, grid, s)
    transitions = _transitions(change, lc_base, lc_now, scheme,
                               grid.pixel_area_m2)
    summary = _summary(table, cur, base, s, parks_out is not None and res is not None,
                       res_source, len(districts), pop_field is not None)
    del lc_now, lc_base, base_codes, dist, res, served  # the big arrays no longer needed

    def da(arr: np.ndarray, name: str, units: str, nodata: Any, kind: str) -> xr.DataArray:
        return make_raster(arr, grid, nodata=nodata, units=units, kind=kind, name=name,
                           chunks=None)

    ndvi = None
    if cur.composite is not None:
        ndvi = da(np.where(inside, cur.composite.ndvi_max, np.nan).astype(np.float32),
                  "ndvi", "index", float("nan"), "continuous")
    return GreenResult(
        grid=grid, urban=urban,
        mask=da(cur.mask, "green_mask", "class", OUTSIDE, "categorical"),
        change=da(change, "green_change", "class", OUTSIDE, "categorical")
        if change is not None else None,
        ndvi=ndvi, districts=table, transitions=transitions, parks=parks_out,
        service_area=service, summary=summary)


def _parks(parks: gpd.GeoDataFrame, name_field: str, s: GreenSettings
           ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    geoms = shapely.make_valid(np.asarray(parks.geometry.values, dtype=object))
    area = shapely.area(geoms)
    names = (parks[name_field].astype(str).to_numpy() if name_field in parks.columns else
             np.array([f"park {i + 1}" for i in range(len(parks))]))
    radius = park_radii(area, s.park_tiers)
    out = gpd.GeoDataFrame({"name": names, "area_m2": area, "radius_m": radius},
                           geometry=list(geoms), crs=parks.crs)
    q = radius > 0
    if q.any():
        zone = shapely.union_all(shapely.buffer(geoms[q], radius[q], quad_segs=16))
        service = gpd.GeoDataFrame({"radius_m": [float(radius[q].max())]}, geometry=[zone],
                                   crs=parks.crs)
    else:
        service = gpd.GeoDataFrame({"radius_m": []}, geometry=[], crs=parks.crs)
    return out, service


def _district_table(districts: gpd.GeoDataFrame, name_field: str, pop_field: str | None,
                    dist: np.ndarray, inside: np.ndarray, cur: YearMask, base: YearMask | None,
                    change: np.ndarray | None, res: np.ndarray | None, served: np.ndarray | None,
                    parks: gpd.GeoDataFrame | None, grid: GridSpec,
                    s: GreenSettings) -> gpd.GeoDataFrame:
    n = len(districts)
    cell_m2 = grid.pixel_area_m2
    # one pass: every count per district from a key = district x 128 + 7 flag bits
    makers = [lambda: cur.mask != UNDETERMINED, lambda: cur.mask == GREEN,
              None if res is None else lambda: res,
              None if res is None or served is None else lambda: res & served,
              None if change is None else lambda: change == NEW_GREEN,
              None if change is None else lambda: change == LOST_GREEN,
              None if base is None else lambda: base.mask != UNDETERMINED]
    key = dist.astype(np.int32)  # a copy, becomes district x 128 + 7 flag bits
    key[~inside] = 0
    key *= 128
    for bit, make in enumerate(makers):  # one flag layer at a time (memory)
        if make is not None:
            np.add(key, np.int32(1 << bit), out=key, where=make())
    table = np.zeros((n + 1) * 128, np.int64)
    for r0 in range(0, key.shape[0], 1024):  # in stripes: bincount widens its input to int64
        table += np.bincount(key[r0:r0 + 1024].ravel(), minlength=(n + 1) * 128)
    del key
    table = table.reshape(n + 1, 128)[1:]
    bits = np.arange(128)

    def count(bit: int | None) -> np.ndarray:
        if bit is None:
            return table.sum(axis=1).astype(float)
        if makers[bit] is None:
            return np.full(n, np.nan)
        return table[:, (bits >> bit) & 1 == 1].sum(axis=1).astype(float)

    area = count(None)
    observed = count(0)
    green = count(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs_pct = 100.0 * observed / area
        cov = 100.0 * green / observed
    t = pd.DataFrame({"district": districts[name_field].astype(str).to_numpy()})
    pop = (pd.to_numeric(districts[pop_field], errors="coerce").to_numpy(dtype=float)
           if pop_field is not None else np.full(n, np.nan))
    t["population"] = pop
    t["area_ha"] = area * cell_m2 / 1e4
    t["observed_pct"] = obs_pct
    t["green_ha"] = green * cell_m2 / 1e4
    t["green_mu"] = green * cell_m2 / M2_PER_MU
    status = np.where(obs_pct >= s.min_observed_pct, "ok", "undetermined")
    t["green_coverage_pct"] = np.where(status == "ok", cov, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        t["green_m2_per_person"] = np.where((status == "ok") & (pop > 0),
                                            green * cell_m2 / pop, np.nan)
    if parks is not None and len(parks):
        geoms = np.asarray(districts.geometry.values, dtype=object)
        park_union = shapely.union_all(np.asarray(parks.geometry.values, dtype=object))
        park_m2 = shapely.area(shapely.intersection(geoms, park_union))
        t["park_ha"] = park_m2 / 1e4
        with np.errstate(invalid="ignore", divide="ignore"):
            t["park_m2_per_person"] = np.where(pop > 0, park_m2 / pop, np.nan)
    else:
        t["park_ha"] = np.nan
        t["park_m2_per_person"] = np.nan
    if served is not None and res is not None:
        r_all = count(2)
        r_in = count(3)
        with np.errstate(invalid="ignore", divide="ignore"):
            t["park_service_pct"] = np.where(r_all > 0, 100.0 * r_in / r_all, np.nan)
        t["residential_ha"] = r_all * cell_m2 / 1e4
    else:
        t["park_service_pct"] = np.nan
        t["residential_ha"] = count(2) * cell_m2 / 1e4 if res is not None else np.nan
    if change is not None:
        new = count(4) * cell_m2 / M2_PER_MU
        lost = count(5) * cell_m2 / M2_PER_MU
        t["new_green_mu"], t["lost_green_mu"], t["net_green_mu"] = new, lost, new - lost
        base_obs = count(6) if base is not None else observed
        with np.errstate(invalid="ignore", divide="ignore"):
            base_pct = 100.0 * base_obs / area
        status = np.where(base_pct >= s.min_observed_pct, status, "undetermined")
    else:
        t["new_green_mu"] = t["lost_green_mu"] = t["net_green_mu"] = np.nan
    t["status"] = status
    reasons = []
    for k in range(n):
        if area[k] == 0:
            reasons.append("no cell of the district inside the urban boundary")
        elif obs_pct[k] < s.min_observed_pct:
            reasons.append(f"only {obs_pct[k]:.0f} % observed in {cur.year} (clouds or no "
                           f"imagery; at least {s.min_observed_pct:.0f} % needed)")
        elif status[k] != "ok":
            reasons.append(f"under {s.min_observed_pct:.0f} % observed in the baseline year")
        else:
            reasons.append("")
    t["reason"] = reasons
    t.loc[area == 0, "status"] = "undetermined"
    return gpd.GeoDataFrame(t, geometry=list(districts.geometry.values), crs=districts.crs)


def _transitions(change: np.ndarray | None, lc_base: np.ndarray | None,
                 lc_now: np.ndarray | None, scheme: ClassScheme | None, cell_m2: float
                 ) -> pd.DataFrame:
    """New green by the baseline class it came from, lost green by the class it became."""
    rows = []
    names = scheme.names("en") if scheme is not None else {}
    names_zh = scheme.names("zh") if scheme is not None else {}
    for kind, code, lc in (("new", NEW_GREEN, lc_base), ("lost", LOST_GREEN, lc_now)):
        if change is None:
            break
        sel = change == code
        if not sel.any():
            continue
        if lc is None:
            rows.append((kind, -1, "not green (no land cover given)", "", int(sel.sum())))
            continue
        vals, cnt = np.unique(lc[sel], return_counts=True)
        for v, c in zip(vals, cnt, strict=True):
            rows.append((kind, int(v), names.get(int(v), "nodata" if v < 0 else str(v)),
                         names_zh.get(int(v), ""), int(c)))
    t = pd.DataFrame(rows, columns=["change", "code", "class", "class_zh", "cells"])
    t["area_ha"] = t["cells"].astype(float) * cell_m2 / 1e4
    t["area_mu"] = t["cells"].astype(float) * cell_m2 / M2_PER_MU
    return t.drop(columns="cells")


def _summary(t: gpd.GeoDataFrame, cur: YearMask, base: YearMask | None, s: GreenSettings,
             with_service: bool, res_source: str, n_districts: int, has_pop: bool
             ) -> dict[str, Any]:
    def tot(col: str) -> float | None:
        v = t[col].to_numpy(dtype=float)
        return float(np.nansum(v)) if np.isfinite(v).any() else None

    area = float(t["area_ha"].sum())
    observed_ha = float((t["area_ha"] * t["observed_pct"].fillna(0) / 100).sum())
    green_ha = float(t["green_ha"].sum())
    obs_pct = 100.0 * observed_ha / area if area else 0.0
    status, reason = "ok", ""
    if obs_pct < s.min_observed_pct:
        status = "undetermined"
        if cur.composite is not None and observed_ha == 0:
            reason = (f"no clear summer observation inside the boundary: "
                      f"{len(cur.composite.scene_ids)} scene(s) "
                      f"({', '.join(d.isoformat() for d in cur.composite.dates)}) all cloudy, "
                      "shadowed or without data there")
        else:
            reason = (f"only {obs_pct:.0f} % of the boundary observed in {cur.year} "
                      f"(at least {s.min_observed_pct:.0f} % needed)")
    cov = 100.0 * green_ha / observed_ha if observed_ha and status == "ok" else None
    new = tot("new_green_mu")
    out: dict[str, Any] = {
        "year": cur.year,
        "baseline_year": base.year if base is not None else None,
        "source": cur.source,
        "threshold": cur.threshold,
        "threshold_method": cur.threshold_method,
        "baseline_threshold": base.threshold if base is not None else None,
        "urban_area_ha": area,
        "observed_pct": obs_pct,
        "green_coverage_pct": cov,
        "green_area_ha": green_ha if status == "ok" else None,
        "green_area_mu": green_ha * 1e4 / M2_PER_MU if status == "ok" else None,
        "coverage_target_pct": s.coverage_target_pct,
        "new_green_mu": new,
        "lost_green_mu": tot("lost_green_mu"),
        "net_green_mu": tot("net_green_mu"),
        "target_mu": s.target_mu,
        "target_progress_pct": 100.0 * new / s.target_mu if new is not None and s.target_mu
        else None,
        "park_service_pct": None,
        "green_m2_per_person": None,
        "park_m2_per_person": None,
        "residential_source": res_source,
        "status": status,
        "reason": reason,
        "districts": n_districts,
        "scenes": {},
        "ignored_scenes": {},
        "settings": {"season": list(s.season), "min_area_m2": s.min_area_m2,
                     "min_observed_pct": s.min_observed_pct,
                     "park_tiers": [list(x) for x in s.park_tiers],
                     "exclude_classes": list(map(str, s.exclude_classes))},
    }
    for ym in (cur, base):
        if ym is not None and ym.composite is not None:
            out["scenes"][str(ym.year)] = list(ym.composite.scene_ids)
            out["ignored_scenes"][str(ym.year)] = list(ym.ignored_scenes)
    if with_service:
        res = t["residential_ha"].to_numpy(dtype=float)
        pct = t["park_service_pct"].to_numpy(dtype=float)
        ok = np.isfinite(pct) & (res > 0)
        if ok.any():
            out["park_service_pct"] = float((pct[ok] * res[ok]).sum() / res[ok].sum())
    if has_pop:
        pop = t["population"].to_numpy(dtype=float)
        known = np.isfinite(pop) & (pop > 0) & (t["status"].to_numpy() == "ok")
        if known.any() and status == "ok":
            out["green_m2_per_person"] = float(
                (t["green_ha"].to_numpy()[known] * 1e4).sum() / pop[known].sum())
            if np.isfinite(t["park_ha"].to_numpy(dtype=float)).any():
                out["park_m2_per_person"] = float(
                    (t["park_ha"].to_numpy(dtype=float)[known] * 1e4).sum() / pop[known].sum())
            out["population_districts"] = int(known.sum())
    return out


__all__ = ["GreenResult", "GreenSettings", "SummerComposite", "change_raster",
           "drop_small_patches", "green_space", "load_table", "otsu_threshold", "park_radii",
           "rasterize_ids", "summer_composite", "urban_from_landcover", "validate_districts"]
