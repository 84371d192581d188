"""**Synthetic** inputs for the urban green-space demo (issue 7): boundary, districts, parks and
Sentinel-2 L2A-like summer scenes of the demo city, with the generator's own truth.

Everything here is invented from :class:`sinkmap.demo_county.CountyModel` (whose county outline
is the only real thing); nothing is information about the real Meihekou. Entry points:
:func:`write_green_demo` (writes everything) and :func:`green_layout` (the vector layout alone).

Layout (:func:`green_layout`)
-----------------------------
* **Urban boundary**: the demo city's development boundary, the union of the city polygon, its
  2021-2025 growth zones and the industrial parks on its edge, buffered 150 m, shrunk 100 m,
  simplified (20 m) and kept inside the county; one polygon without holes.
* **Districts**: a centroidal Voronoi tessellation (Lloyd iterations on points sampled inside
  the boundary) of :data:`N_DISTRICTS` seeds, clipped to the boundary (stray fragments joined to
  the neighbour sharing the longest border): they tile the boundary without overlaps. Names by
  direction from the centre (中心片区, 城北片区, ...; 新城片区 for the one holding the new
  residential growth). Population: about :data:`URBAN_POPULATION` residents spread by
  residential (701) area of the later year and a per-district density; the new district's is
  missing (NaN).
* **Parks** (``name``, ``year_built``, ``kind``, ``status``, ``former_use``, ``area_ha``): the
  riverside green of the land cover cut into sections along the Huifa (one per bank and third of
  its course through the city, 40-75 ha), the city's park blobs of
  the land cover, small pocket parks (0.18-0.45 ha, so both sides of the 2,000 and 5,000 m2
  service tiers exist), and parks built between the two years: an industrial-heritage park on
  former industrial land, a central park on land cleared before the baseline year (bare, 1206,
  in the baseline land cover), two district parks and a pocket park on former residential land,
  and the new district's park of the land cover (on former cropland). New parks are placed by
  seeded rejection sampling away from rivers, main roads and the other parks.

Surface and truth
-----------------
The analysis window is the boundary's bounding box plus :data:`MARGIN_M`, on a grid snapped to
twice the resolution (so the 20 m SCL nests). The model's land cover of the window (the 2020
map for years up to 2022, else the 2025 map) gets the parks burnt in (810; the central park's
site is 1206 in the baseline). Each pixel's summer **vegetation fraction** follows its class
(:data:`SUMMER_COVER`: mean and amplitude, varied by smooth noise at ~80 m and ~20 m; parks
85-95 %, residential 5-25 %, summer crops 76-92 %, water 0), plus tree clumps (courtyards,
street trees: about 9 % of mature built-up land reaches 55-75 %). The **truth** is vegetation
fraction >= 0.5 inside the boundary (pixel-centre rule), reported per year (``green_ha``,
``cropland_green_ha`` = the part on cropland, which an analysis may exclude by land cover,
per district, ...) and as change (``new_ha``, ``lost_ha``; ``*_excl_cropland`` variants count
cropland as not green). The green masks are written too (``truth/green_<year>.tif``).

Scenes
------
Per year three dates (June-August, :data:`SCHEDULE`): Sentinel-2 L2A-like ``B02 B03 B04 B08``
at the resolution and ``SCL`` at twice it (10 m -> 20 m, as in real L2A; at 20 m and coarser all
bands share the grid and NIR is ``B8A``). Reflectance is a linear mixture of vegetation
(red 0.029-0.047, NIR 0.33-0.47 by class and smooth noise), impervious (roofs/concrete and
asphalt), bare soil and water end-members (:data:`SPECTRA`), with a per-date residual of the
atmospheric correction (+-0.003) and sensor noise (sigma 0.004). Crops follow a small phenology
(June darker than July/August). The baseline year's July date is partly cloudy, the later year's
August one too (clouds SCL 8/9 from a multi-octave noise field, thin unflagged cloud edges that
blend towards a bright cloud spectrum, shadows SCL 3 cast ~700 m towards the north-west); the
later year's July date covers only part of the window (swath edge; DN 0 and SCL 0 beyond). DN
follow the product rule of the date's processing baseline: 02.14 before 2022-01-25
(``DN = 10000 * reflectance``), 05.11 after (``+ 1000``, ``BOA_ADD_OFFSET`` -1000); the STAC
``raster:bands`` give the matching scale and offset. Pixels outside the county are 0 (the model
has no land cover there). A max-NDVI composite over clear (SCL 4/5/6) observations with an Otsu
threshold is checked against the truth at generation time (``truth[year]["composite_check"]``).

Deterministic for the model's seed, ``seed`` and ``resolution_m``. About 3-4 s at 10 m
(~1000 x 1000 pixels per band, six dates), most of it writing the COGs.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from pyproj import Transformer
from scipy import ndimage
from scipy.spatial import cKDTree

from gis.errors import InputError, OutputExistsError
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from gis.vector_io import write_vector
from sinkmap.demo_county import CROPLAND_CODES, MU_M2, SYNTHETIC_NOTE, CountyModel
from sinkmap.demo_imagery import stac_band_asset

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# tunable constants

MARGIN_M = 500.0               # imagery window: boundary bounding box plus this
N_DISTRICTS = 6
URBAN_POPULATION = 300_000     # residents of the whole boundary (the real city: ~300,000)
BOUNDARY_NAME = "梅河口市中心城区 (synthetic)"
TRUTH_THRESHOLD = 0.5          # vegetation fraction counted green
TARGET_MU = 3200.0             # the plan's new-green target (mu)

#: End-member reflectances (B02 blue, B03 green, B04 red, B08 NIR).
SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "vegetation": (0.030, 0.075, 0.038, 0.400),
    "impervious": (0.120, 0.135, 0.155, 0.210),   # roofs, concrete, paving
    "asphalt": (0.070, 0.080, 0.090, 0.110),
    "soil": (0.070, 0.095, 0.125, 0.190),         # dark black soil, litter, gravel
    "water": (0.060, 0.070, 0.050, 0.030),        # turbid summer river
    "cloud": (0.460, 0.470, 0.480, 0.500),
}
#: Summer cover per class: (vegetation mean, amplitude, water share of the rest, vegetation NIR,
#: impervious / asphalt / soil weights of what is neither vegetation nor water).
SUMMER_COVER: dict[int, tuple[float, float, float, float, tuple[float, float, float]]] = {
    101: (0.80, 0.07, 0.60, 0.42, (0.0, 0.0, 1.0)),
    102: (0.84, 0.07, 0.00, 0.43, (0.0, 0.0, 1.0)),
    103: (0.84, 0.07, 0.00, 0.43, (0.0, 0.0, 1.0)),
    201: (0.70, 0.08, 0.00, 0.40, (0.0, 0.0, 1.0)),
    301: (0.92, 0.04, 0.00, 0.36, (0.0, 0.0, 1.0)),
    305: (0.85, 0.06, 0.00, 0.37, (0.0, 0.0, 1.0)),
    307: (0.76, 0.09, 0.00, 0.38, (0.0, 0.0, 1.0)),
    402: (0.80, 0.08, 0.30, 0.39, (0.0, 0.0, 1.0)),
    404: (0.80, 0.10, 0.00, 0.39, (0.0, 0.0, 1.0)),
    601: (0.07, 0.05, 0.00, 0.38, (0.85, 0.10, 0.05)),
    701: (0.15, 0.10, 0.00, 0.38, (0.75, 0.15, 0.10)),
    702: (0.25, 0.08, 0.00, 0.39, (0.45, 0.05, 0.50)),
    810: (0.90, 0.05, 0.00, 0.40, (0.35, 0.05, 0.60)),
    1003: (0.06, 0.05, 0.00, 0.38, (0.10, 0.85, 0.05)),
    1006: (0.18, 0.08, 0.00, 0.39, (0.0, 0.0, 1.0)),
    1101: (0.00, 0.00, 1.00, 0.38, (0.0, 0.0, 1.0)),
    1103: (0.00, 0.00, 1.00, 0.38, (0.0, 0.0, 1.0)),
    1104: (0.02, 0.02, 1.00, 0.38, (0.0, 0.0, 1.0)),
    1106: (0.28, 0.10, 0.30, 0.38, (0.0, 0.0, 1.0)),
    1108: (0.66, 0.09, 0.70, 0.38, (0.0, 0.0, 1.0)),
    1206: (0.04, 0.03, 0.00, 0.38, (0.10, 0.00, 0.90)),
}
NEW_PARK_COVER = (0.86, 0.06)         # parks built between the years, in the later year
TREE_CLUMPS = (0.09, 0.65, 0.10)      # share of mature built-up land, clump cover, +- range
BUILT_CODES_MATURE = (601, 701, 702, 1003)
WATER_CODES = (1101, 1103, 1104)
SENSOR_NOISE = 0.004
ATMOSPHERE_RESIDUAL = 0.003
BRIGHTNESS_VARIATION = 0.15           # impervious and soil brightness (relative, ~40 m)
SCL_VEG_NDVI = 0.4
CLOUD_OCTAVES: tuple[tuple[float, float], ...] = (
    (5000.0, 0.50), (1800.0, 0.28), (700.0, 0.14), (250.0, 0.08))
CLOUD_SLOPE = 8.0
CLOUD_FLAG, CLOUD_HIGH = 0.4, 0.7
SHADOW_DARKENING, SHADOW_FLAG = 0.6, 0.4
SUN_AZIMUTH_DEG = 140.0
SHADOW_LENGTH_M = 700.0
SWATH_TILT_DEG = 13.0
OFFSET_BASELINE_SINCE = date(2022, 1, 25)


@dataclass(frozen=True)
class SceneSpec:
    """One summer acquisition relative to its year: month, day, platform suffix (a/b/c),
    flagged cloud share, imaged share of the window, crop phenology factor, note."""

    month: int
    day: int
    platform: str
    cloud_cover: float
    swath_fraction: float
    crop_factor: float
    paddy_factor: float
    note: str


#: Dates of the baseline year and of the later year.
SCHEDULE: dict[str, tuple[SceneSpec, ...]] = {
    "baseline": (
        SceneSpec(6, 28, "b", 0.0, 1.0, 0.80, 0.65, "clear; crops still growing"),
        SceneSpec(7, 23, "a", 0.25, 1.0, 1.00, 0.95, "partly cloudy (clouds, shadows, thin "
                                                      "unflagged edges)"),
        SceneSpec(8, 17, "b", 0.02, 1.0, 0.97, 1.00, "mostly clear"),
    ),
    "later": (
        SceneSpec(6, 22, "c", 0.03, 1.0, 0.78, 0.62, "mostly clear; crops still growing"),
        SceneSpec(7, 17, "b", 0.0, 0.6, 1.00, 0.95, "edge of the swath: part of the window "
                                                    "not imaged"),
        SceneSpec(8, 6, "c", 0.30, 1.0, 0.98, 1.00, "partly cloudy (clouds, shadows, thin "
                                                    "unflagged edges)"),
    ),
}

_BANDS_FINE = ("B02", "B03", "B04", "B08")
_STAC_EXT = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
_COG_WORKERS = 4


# ----------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class GreenLayout:
    """The vector layout of the demo (all in the model's CRS) and the imagery window."""

    boundary: gpd.GeoDataFrame     # one row: name, note
    districts: gpd.GeoDataFrame    # name, population (NaN for one), note
    parks: gpd.GeoDataFrame        # name, year_built, kind, status, former_use, area_ha, note
    grid: GridSpec                 # imagery grid (bands at resolution_m)
    years: tuple[int, int]


@dataclass(frozen=True)
class GreenDemo:
    """What :func:`write_green_demo` wrote. ``truth`` has one entry per year (int key) and
    ``"change"``; it is also written as ``truth/truth.json`` (string keys)."""

    urban: Path
    districts: Path
    parks: Path
    imagery: Path
    truth: dict[Any, Any]
    files: list[Path]
    landcover: dict[int, Path]
    truth_masks: dict[int, Path]
    grid: GridSpec
    years: tuple[int, int]
    seconds: float


# ----------------------------------------------------------------------------------------------
# small helpers


def lc_year(year: int) -> int:
    """The demo land-cover map used for ``year``: 2020 up to 2022, else 2025."""
    return 2020 if year <= 2022 else 2025


def _largest(g: shapely.Geometry) -> shapely.Polygon:
    parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and not p.is_empty]
    if not parts:
        return shapely.Polygon()
    return max(parts, key=lambda p: p.area)


def _blob(cx: float, cy: float, area: float, rng: np.random.Generator, *,
          rough: float = 0.15, stretch: float = 1.0, angle: float = 0.0,
          n: int = 40) -> shapely.Polygon:
    """A smooth roundish polygon of about ``area`` m2."""
    th = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    rr = np.ones(n)
    for k in (2, 3, 5):
        rr += rough / k ** 0.5 * rng.uniform(0.3, 1.0) * np.sin(k * th + rng.uniform(0, 2 * np.pi))
    px, py = rr * np.cos(th) * stretch, rr * np.sin(th) / stretch
    ca, sa = math.cos(angle), math.sin(angle)
    unit = shapely.Polygon(np.c_[ca * px - sa * py, sa * px + ca * py])
    f = math.sqrt(area / unit.area)
    return shapely.Polygon(np.c_[cx + f * (ca * px - sa * py), cy + f * (sa * px + ca * py)])


def _block(cx: float, cy: float, area: float, rng: np.random.Generator,
           angle: float) -> shapely.Polygon:
    """A rounded rectangle (a city block) of about ``area`` m2."""
    aspect = rng.uniform(1.0, 1.8)
    w = math.sqrt(area * aspect)
    h = area / w
    r = min(w, h) * 0.12
    box = shapely.box(-w / 2 + r, -h / 2 + r, w / 2 - r, h / 2 - r).buffer(r, quad_segs=4)
    f = math.sqrt(area / box.area)
    ca, sa = math.cos(angle), math.sin(angle)
    xy = np.asarray(box.exterior.coords) * f
    return shapely.Polygon(np.c_[cx + ca * xy[:, 0] - sa * xy[:, 1],
                                 cy + sa * xy[:, 0] + ca * xy[:, 1]])


def _place(region: shapely.Geometry, area: float, rng: np.random.Generator,
           taken: shapely.Geometry, *, shape: str, angle: float,
           tries: int = 1200) -> shapely.Polygon | None:
    """A park of about ``area`` m2 inside ``region`` and clear of ``taken`` (seeded rejection
    sampling; the area shrinks by 15 % after every ``tries // 6`` failures)."""
    if region.is_empty:
        return None
    shapely.prepare(region)
    w, s, e, n = region.bounds
    a = area
    for i in range(tries):
        if i and i % (tries // 6) == 0:
            a *= 0.85
        cx, cy = rng.uniform(w, e), rng.uniform(s, n)
        if not shapely.contains_xy(region, cx, cy):
            continue
        g = (_block(cx, cy, a, rng, angle + rng.normal(0, 0.05)) if shape == "block"
             else _blob(cx, cy, a, rng, stretch=rng.uniform(1.0, 1.4),
                        angle=rng.uniform(0, np.pi)))
        if region.contains(g) and not g.intersects(taken):
            return g
    return None


def _direction_zh(dx: float, dy: float) -> list[str]:
    """District names by compass sector of (dx, dy), best first."""
    names = ["城东", "东北", "城北", "西北", "城西", "西南", "城南", "东南"]
    ang = math.degrees(math.atan2(dy, dx)) % 360.0
    k = round(ang / 45.0) % 8
    order = [k]
    for d in range(1, 5):
        order += [(k + d) % 8, (k - d) % 8]
    seen: list[str] = []
    for j in order:
        if names[j] not in seen:
            seen.append(names[j])
    return seen


def _smooth(rng: np.random.Generator, shape: tuple[int, int], scale_m: float,
            res: float) -> np.ndarray:
    """Gaussian random field of correlation length ``scale_m`` on a (rows, cols) grid of
    ``res`` cells, unit variance (built coarser and bilinearly upsampled when smooth)."""
    sigma = max(scale_m / res, 0.5)
    k = max(1, int(sigma // 3))
    h, w = -(-shape[0] // k) + 3, -(-shape[1] // k) + 3
    a = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma / k, mode="wrap")
    if k > 1:
        rows = (np.arange(shape[0]) + 0.5) / k
        cols = (np.arange(shape[1]) + 0.5) / k
        a = _interp(a, rows, cols)
    else:
        a = a[: shape[0], : shape[1]]
    return ((a - a.mean()) / max(a.std(), 1e-12)).astype(np.float32)


def _interp(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``a`` on the grid of fractional ``rows`` x ``cols`` (clamped)."""
    r = np.clip(rows, 0.0, a.shape[0] - 1.000001)
    c = np.clip(cols, 0.0, a.shape[1] - 1.000001)
    r0, c0 = r.astype(np.intp), c.astype(np.intp)
    fr, fc = (r - r0)[:, None], (c - c0)[None, :]
    top = a[r0][:, c0] * (1 - fc) + a[r0][:, c0 + 1] * fc
    bot = a[r0 + 1][:, c0] * (1 - fc) + a[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bot * fr


class _ValueNoise:
    """Multi-octave value noise defined over a padded extent, sampled at any grid of points."""

    def __init__(self, rng: np.random.Generator, bounds: tuple[float, float, float, float],
                 octaves: Sequence[tuple[float, float]], pad: float):
        w, s, e, n = bounds
        self.x0, self.y0 = w - pad, n + pad
        self.layers = []
        for cell, amp in octaves:
            shape = (math.ceil((n - s + 2 * pad) / cell) + 2,
                     math.ceil((e - w + 2 * pad) / cell) + 2)
            self.layers.append((cell, amp, rng.uniform(-1.0, 1.0, shape)))

    def grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        out = np.zeros((len(ys), len(xs)))
        for cell, amp, lat in self.layers:
            out += amp * _interp(lat, (self.y0 - ys) / cell, (xs - self.x0) / cell)
        return out.astype(np.float32)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    hist, edges = np.histogram(values, bins=bins, range=(-1.0, 1.0))
    p = hist / max(hist.sum(), 1)
    mids = (edges[:-1] + edges[1:]) / 2
    w0, mu = np.cumsum(p), np.cumsum(p * mids)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    return float(edges[int(np.argmax(between)) + 1])


def _burn(geoms: Sequence[shapely.Geometry], grid: GridSpec,
          values: Sequence[int] | None = None) -> np.ndarray:
    shapes = [(g, int(v)) for g, v in zip(geoms, values or [1] * len(geoms), strict=True)
              if g is not None and not g.is_empty]
    if not shapes:
        return np.zeros(grid.shape, dtype=np.int32)
    return rasterio.features.rasterize(shapes, out_shape=grid.shape, transform=grid.transform,
                                       fill=0, dtype=np.int32, all_touched=False)


# ----------------------------------------------------------------------------------------------
# the layout


def _window_grid(boundary: shapely.Geometry, crs: str, res: float) -> tuple[GridSpec, int]:
    """The imagery grid (bands) and the SCL factor: bounds snapped to 2 x res at 10 m."""
    k = 2 if res < 20.0 else 1
    w, s, e, n = boundary.bounds
    coarse = GridSpec.from_bounds((w - MARGIN_M, s - MARGIN_M, e + MARGIN_M, n + MARGIN_M),
                                  res * k, crs)
    t = coarse.transform
    fine = GridSpec.create(crs, Affine(res, 0.0, t.c, 0.0, -res, t.f),
                           (coarse.height * k, coarse.width * k))
    return fine, k


def green_layout(model: CountyModel, *, seed: int = 2020, years: tuple[int, int] = (2020, 2025),
                 resolution_m: float = 10.0) -> GreenLayout:
    """The boundary, districts and parks of the demo city, and the imagery grid (no I/O)."""
    y0, y1 = _check_years(years)
    geo = model.geo
    crs = geo.crs
    rng = np.random.default_rng([seed, 0x6EE1])
    city = geo.city
    growth = [(g, c) for g, c in geo.growth_zones if g.distance(city) < 1500.0]
    edge = [(g, c) for g, c in geo.urban_zones if c in (601, 810) and g.distance(city) < 300.0]
    union = shapely.union_all([city] + [g for g, _ in growth] + [g for g, _ in edge])
    b = union.buffer(150.0).buffer(-100.0).simplify(20.0)
    b = _largest(b.intersection(geo.county.buffer(-30.0)))
    boundary = shapely.set_precision(shapely.Polygon(b.exterior), 0.01)
    grid, _ = _window_grid(boundary, crs, float(resolution_m))

    # -- districts: centroidal Voronoi tessellation clipped to the boundary ---------------------
    w, s, e, n = boundary.bounds
    pts = np.c_[rng.uniform(w, e, 12000), rng.uniform(s, n, 12000)]
    pts = pts[shapely.contains_xy(boundary, pts[:, 0], pts[:, 1])]
    seeds = pts[rng.choice(len(pts), N_DISTRICTS, replace=False)]
    for _ in range(40):
        lab = cKDTree(seeds).query(pts)[1]
        seeds = np.array([pts[lab == i].mean(axis=0) for i in range(N_DISTRICTS)])
    env = boundary.envelope.buffer(2000.0)
    cells = list(shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(seeds),
                                                            extend_to=env)))
    own = [next(c for c in cells if c.contains(shapely.Point(p))) for p in seeds]
    pieces = [shapely.intersection(c, boundary, grid_size=0.01) for c in own]
    keep: list[shapely.Geometry] = []
    strays: list[shapely.Geometry] = []
    for g in pieces:
        parts = sorted(shapely.get_parts(g), key=lambda p: p.area, reverse=True)
        parts = [p for p in parts if p.geom_type == "Polygon"]
        keep.append(parts[0])
        strays.extend(parts[1:])
    for frag in strays:
        shared = [shapely.length(shapely.intersection(frag.boundary, k.boundary, grid_size=0.01))
                  for k in keep]
        j = int(np.argmax(shared))
        keep[j] = shapely.union(keep[j], frag, grid_size=0.01)
    cx, cy = geo.city_xy
    new_res = max((g for g, c in growth if c == 701), key=lambda g: g.area, default=None)
    names: list[str] = [""] * len(keep)
    centre_i = int(np.argmax([k.contains(shapely.Point(cx, cy)) for k in keep]))
    names[centre_i] = "中心片区"
    new_i = -1
    if new_res is not None:
        rp = new_res.representative_point()
        hits = [i for i, k in enumerate(keep) if k.contains(rp) and i != centre_i]
        if hits:
            new_i = hits[0]
            names[new_i] = "新城片区"
    order = sorted(range(len(keep)), key=lambda i: -keep[i].area)
    for i in order:
        if names[i]:
            continue
        c = keep[i].centroid
        names[i] = next(f"{d}片区" for d in _direction_zh(c.x - cx, c.y - cy)
                        if f"{d}片区" not in names)
    # population by later-year residential area (701) and a density per district
    res_geoms = [g for g, c in geo.urban_zones + growth if c == 701]
    res_union = shapely.union_all(res_geoms) if res_geoms else shapely.Polygon()
    industry = shapely.union_all([g for g, c in geo.urban_zones if c == 601])
    res_union = res_union.difference(industry)
    res_area = np.array([k.intersection(res_union).area for k in keep])
    density = rng.uniform(0.85, 1.15, len(keep))
    density[centre_i] = 1.35
    if new_i >= 0:
        density[new_i] = 0.55
    weight = res_area * density
    pop = URBAN_POPULATION * weight / max(weight.sum(), 1.0)
    pop = np.round(pop / 100.0) * 100.0
    nan_i = new_i if new_i >= 0 else int(np.argmin(pop))
    pop[nan_i] = np.nan
    districts = gpd.GeoDataFrame({
        "name": names, "population": pop.astype(float),
        "note": ["synthetic district; population not yet allocated (missing)" if i == nan_i
                 else "synthetic district and population" for i in range(len(keep))],
    }, geometry=keep, crs=crs)
    districts = districts.iloc[np.argsort(names, kind="stable")].reset_index(drop=True)

    # -- parks ----------------------------------------------------------------------------------
    parks = _parks(model, boundary, growth, rng, y0, y1)
    bnd = gpd.GeoDataFrame({"name": [BOUNDARY_NAME],
                            "note": ["synthetic development boundary: city, 2021-2025 growth "
                                     "zones and edge industry, buffered"]},
                           geometry=[boundary], crs=crs)
    return GreenLayout(boundary=bnd, districts=districts, parks=parks, grid=grid, years=(y0, y1))


def _parks(model: CountyModel, boundary: shapely.Polygon,
           growth: list[tuple[shapely.Geometry, int]], rng: np.random.Generator,
           y0: int, y1: int) -> gpd.GeoDataFrame:
    geo = model.geo
    city = geo.city
    main = geo.rivers[0]
    near = boundary.buffer(500.0)
    shapely.prepare(near)
    water = shapely.union_all([r.line.buffer(r.width / 2.0) for r in geo.rivers
                               if r.line.intersects(near)])
    rivers_wide = shapely.union_all([r.line.buffer(r.width / 2.0 + 60.0) for r in geo.rivers
                                     if r.line.intersects(near)])
    roads = geo.roads[geo.roads.geometry.intersects(near) & (geo.roads["year_built"] <= y1)]
    road_buf = shapely.union_all([g.buffer(45.0 if cls != "rural" else 20.0)
                                  for g, cls in zip(roads.geometry, roads["class"], strict=True)])
    green_zones = [g for g, c in geo.urban_zones if c == 810 and g.intersects(near)]
    strip = max(green_zones, key=lambda g: g.area)
    blobs = [g for g in green_zones if g is not strip]
    industry = [g.intersection(boundary) for g, c in geo.urban_zones
                if c == 601 and g.distance(city) < 300.0]
    industry = [g for g in industry if not g.is_empty]
    rows: list[dict[str, Any]] = []

    def old_year(lo: int, hi: int) -> int:
        """A year in [lo, hi) no later than the baseline year."""
        return int(rng.integers(min(lo, y0), min(hi, y0 + 1)))

    def add(geom: shapely.Geometry, name: str, year: int, kind: str, status: str,
            former: str) -> None:
        g = _largest(shapely.make_valid(geom.intersection(boundary)))
        if g.is_empty or g.area < 500.0:
            return
        rows.append({"name": name, "year_built": int(year), "kind": kind, "status": status,
                     "former_use": former, "geometry": shapely.set_precision(g, 0.01)})

    # riverside sections: the strip minus the water, cut along the river into three slabs,
    # one section per bank and slab, numbered downstream per bank (left of the flow: 北岸)
    banks = strip.difference(water)
    j = cKDTree(main.xy).query(np.asarray(strip.centroid.coords))[1][0]
    s_all = main.s
    inside = shapely.contains_xy(strip.buffer(300.0), main.xy[:, 0], main.xy[:, 1])
    idx = np.nonzero(inside)[0]
    lo, hi = (s_all[idx.min()], s_all[idx.max()]) if len(idx) else (s_all[j], s_all[j])
    done = shapely.Polygon()
    sections: list[tuple[str, float, shapely.Geometry]] = []
    for a, bb in itertools.pairwise(np.linspace(lo, hi, 4)):
        seg = main.xy[(s_all >= a - 1.0) & (s_all <= bb + 1.0)]
        if len(seg) < 2:
            continue
        slab = shapely.LineString(seg).buffer(900.0, cap_style="flat").difference(done)
        done = done.union(slab)
        pieces = sorted(shapely.get_parts(banks.intersection(slab)), key=lambda p: p.area,
                        reverse=True)[:2]
        for pc in pieces:
            rp = pc.representative_point()
            d = main.line.project(rp)
            p0, p1 = main.line.interpolate(d - 20.0), main.line.interpolate(d + 20.0)
            cross = (p1.x - p0.x) * (rp.y - p0.y) - (p1.y - p0.y) * (rp.x - p0.x)
            sections.append(("北岸" if cross > 0 else "南岸", d, pc))
    for bank in ("北岸", "南岸"):
        mine = sorted((sc for sc in sections if sc[0] == bank), key=lambda sc: sc[1])
        for i, (_, _, pc) in enumerate(mine):
            add(pc, f"辉发河滨河公园 ({bank}{'一二三四五六'[min(i, 5)]}段)",
                old_year(2008, 2017), "riverside park", "existing", "")
    taken = shapely.union_all([r["geometry"] for r in rows]) if rows else shapely.Polygon()
    blob_names = ["人民公园", "青年湖公园", "东山公园", "植物园", "儿童公园", "劳动公园",
                  "文化公园", "南山公园"]
    for i, g in enumerate(sorted(blobs, key=lambda g: -g.area)):
        g2 = g.difference(taken)
        add(g2, blob_names[i % len(blob_names)], old_year(1958, 2013), "city park", "existing",
            "")
        taken = taken.union(g2)
    # where new and pocket parks may go
    blocked = shapely.union_all([taken.buffer(150.0), rivers_wide, road_buf])
    ind_union = shapely.union_all(industry) if industry else shapely.Polygon()
    residential = city.buffer(-80.0).difference(ind_union.buffer(60.0)).difference(blocked)
    industrial = ind_union.buffer(-40.0).difference(blocked)
    ang = math.atan2(*(main.xy[min(j + 20, len(main.xy) - 1)] - main.xy[max(j - 20, 0)])[::-1])
    placed = shapely.Polygon()
    years_new = list(range(y0 + 1, y1 + 1))

    plan = [  # (name, m2, region, shape, status, former_use, kind)
        ("中央公园", 480_000.0, residential, "block", "new", "bare", "city park"),
        ("工业遗址公园", 400_000.0, industrial, "block", "new", "industrial", "city park"),
        ("{dir}公园", 300_000.0, residential, "blob", "new", "residential", "district park"),
        ("{dir}公园", 250_000.0, residential, "blob", "new", "residential", "district park"),
        ("街角游园 (一)", 1_800.0, residential, "block", "existing", "", "pocket park"),
        ("街角游园 (二)", 3_200.0, residential, "block", "existing", "", "pocket park"),
        ("口袋公园", 4_500.0, residential, "block", "new", "residential", "pocket park"),
    ]
    k_new = 0
    for name, area, region, shp, status, former, kind in plan:
        g = _place(region, area, rng, placed.buffer(200.0), shape=shp, angle=ang)
        if g is None:
            log.warning("green demo: no site found for %s (%.1f ha)", name, area / 1e4)
            continue
        placed = placed.union(g)
        if "{dir}" in name:
            c = g.centroid
            used = {r["name"] for r in rows}
            name = next(name.format(dir=d) for d in _direction_zh(c.x - geo.city_xy[0],
                                                                  c.y - geo.city_xy[1])
                        if name.format(dir=d) not in used)
        if status == "new":
            year = years_new[k_new % len(years_new)]
            k_new += 1
        else:
            year = old_year(2010, 2021)
        add(g, name, year, kind, status, former)
    # the new district's park of the land cover (on former cropland)
    new_green = [g for g, c in growth if c == 810]
    for g in new_green:
        add(g.difference(taken).difference(placed), "新城公园", y1 - 1 if y1 - 1 > y0 else y1,
            "district park", "new", "cropland")
    gdf = gpd.GeoDataFrame(rows, crs=geo.crs)
    gdf["area_ha"] = (gdf.geometry.area / 1e4).round(3)
    gdf["note"] = "synthetic"
    return gdf[["name", "year_built", "kind", "status", "former_use", "area_ha", "note",
                "geometry"]]


def _check_years(years: Sequence[int]) -> tuple[int, int]:
    ys = tuple(int(y) for y in years)
    if len(ys) != 2 or ys[0] >= ys[1]:
        raise InputError(f"years must be (baseline, later) with baseline < later, got {years}",
                         fix="e.g. years=(2020, 2025)")
    return ys[0], ys[1]


# ----------------------------------------------------------------------------------------------
# the surface


@dataclass
class _Surface:
    """Per-pixel state of the window shared by both years."""

    grid: GridSpec
    k: int
    county: np.ndarray          # bool: inside the county (land cover known)
    inside: np.ndarray          # bool: inside the urban boundary
    lc: dict[int, np.ndarray]   # year -> land cover with the parks burnt in
    park_id: np.ndarray         # 1 + row of the park layer, 0 outside parks
    noise: dict[str, np.ndarray]


def _surface(model: CountyModel, layout: GreenLayout, seed: int) -> _Surface:
    grid = layout.grid
    res = grid.res[0]
    y0, y1 = layout.years
    r = model.with_grid(grid).evaluate(None)
    county = r["inside"]
    parks = layout.parks
    park_id = _burn(list(parks.geometry), grid, list(range(1, len(parks) + 1)))
    built = np.r_[0, parks["year_built"].to_numpy(np.int64)]
    # the land cover's own park (810 where the model converted the cropland) is left as it is
    burnt = np.r_[False, ~((parks["status"] == "new") & (parks["former_use"] == "cropland"))
                  .to_numpy()]
    bare = np.r_[False, (parks["former_use"] == "bare").to_numpy()]
    lc: dict[int, np.ndarray] = {}
    for y in (y0, y1):
        a = r[f"lc{lc_year(y)}"].copy()
        m = burnt[park_id] & county & ~np.isin(a, WATER_CODES)
        a[m & (built[park_id] <= y)] = 810
        a[m & (built[park_id] > y) & bare[park_id]] = 1206
        lc[y] = a
    inside = (_burn(list(layout.boundary.geometry), grid) > 0) & county
    rng = np.random.default_rng([seed, 0x6EE2])
    shape = grid.shape
    noise = {name: _smooth(rng, shape, scale, res) for name, scale in
             (("veg_a", 80.0), ("veg_b", 20.0), ("clump", 25.0), ("nir", 100.0),
              ("red", 60.0), ("bright", 40.0))}
    return _Surface(grid, 2 if res < 20.0 else 1, county, inside, lc, park_id, noise)


def _vegetation(sf: _Surface, year: int, layout: GreenLayout) -> dict[str, np.ndarray]:
    """Peak-summer vegetation fraction and the other fractions of ``year`` (float32)."""
    y0, y1 = layout.years
    a = sf.lc[year]
    n = sf.noise
    lut = np.zeros((5, 1400), dtype=np.float32)
    wts = np.zeros((3, 1400), dtype=np.float32)
    lut[3] = 0.38
    wts[2] = 1.0
    for code, (mean, amp, wat, nir, (wi, wa, ws)) in SUMMER_COVER.items():
        lut[:4, code] = (mean, amp, wat, nir)
        tot = wi + wa + ws
        wts[:, code] = (wi / tot, wa / tot, ws / tot)
    mean, amp, wat_share = lut[0][a], lut[1][a], lut[2][a]
    z = np.clip(0.7 * n["veg_a"] + 0.45 * n["veg_b"], -1.6, 1.6) / 1.6
    veg = mean + amp * z
    # parks built between the years: a little less green than mature parks
    pk = layout.parks
    fresh = np.r_[False, ((pk["status"] == "new") & (pk["year_built"] > y0)
                          & (pk["year_built"] <= year)).to_numpy()]
    new_mask = fresh[sf.park_id] & (a == 810)
    veg = np.where(new_mask, NEW_PARK_COVER[0] + NEW_PARK_COVER[1] * z, veg)
    # tree clumps on mature built-up land (built in both years)
    mature = (np.isin(sf.lc[y0], BUILT_CODES_MATURE) & np.isin(sf.lc[y1], BUILT_CODES_MATURE)
              & np.isin(a, BUILT_CODES_MATURE))
    share, cover, spread = TREE_CLUMPS
    q = float(np.quantile(n["clump"], 1.0 - share))
    t = np.clip((n["clump"] - (q - 0.25)) / 0.5, 0.0, 1.0)
    clump = t * t * (3.0 - 2.0 * t)
    target = cover + spread * n["veg_a"].clip(-1, 1)
    veg = np.where(mature, veg + clump * np.maximum(target - veg, 0.0), veg)
    veg = np.clip(veg, 0.0, 1.0).astype(np.float32)
    veg[~sf.county] = 0.0
    water = (np.clip(1.0 - veg, 0.0, 1.0) * wat_share).astype(np.float32)
    rest = np.clip(1.0 - veg - water, 0.0, 1.0)
    return {"veg": veg, "water": water, "imperv": (rest * wts[0][a]).astype(np.float32),
            "asphalt": (rest * wts[1][a]).astype(np.float32),
            "soil": (rest * wts[2][a]).astype(np.float32),
            "veg_nir": (lut[3][a] + 0.03 * np.clip(n["nir"], -1.5, 1.5)).astype(np.float32),
            "veg_red": (SPECTRA["vegetation"][2] + 0.006 * np.clip(n["red"], -1.5, 1.5)
                        ).astype(np.float32)}


# ----------------------------------------------------------------------------------------------
# scenes


@dataclass(frozen=True)
class _Date:
    d: date
    spec: SceneSpec
    baseline: str     # processing baseline "02.14" / "05.11"

    @property
    def offset(self) -> float:
        return -0.1 if self.baseline >= "04.00" else 0.0

    @property
    def item_id(self) -> str:
        ymd = self.d.strftime("%Y%m%d")
        bl = self.baseline.replace(".", "")
        return (f"S2{self.spec.platform.upper()}_MSIL2A_{ymd}T024551_N{bl}_R032_TDEMO_"
                f"{ymd}T061204_SYNTHETIC")


def _dates(years: tuple[int, int]) -> list[_Date]:
    out = []
    for key, y in zip(("baseline", "later"), years, strict=True):
        for sp in SCHEDULE[key]:
            d = date(y, sp.month, sp.day)
            out.append(_Date(d, sp, "05.11" if d >= OFFSET_BASELINE_SINCE else "02.14"))
    return out


def _render(sf: _Surface, fr: dict[str, np.ndarray], dt: _Date, seed: int,
            lc: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """DN bands (fine), SCL (coarse), statistics and the fine-grid clear mask of one date."""
    grid, k = sf.grid, sf.k
    h, w = grid.shape
    h2, w2 = h // k, w // k
    sp = dt.spec
    rng = np.random.default_rng([seed, dt.d.toordinal(), 0x6EE3])
    crop = np.isin(lc, (102, 103))
    paddy = lc == 101
    factor = np.where(crop, sp.crop_factor, np.where(paddy, sp.paddy_factor, 1.0)
                      ).astype(np.float32)
    veg = fr["veg"] * factor
    soil = fr["soil"] + fr["veg"] - veg    # the canopy not yet closed shows soil
    bright = (1.0 + BRIGHTNESS_VARIATION * np.clip(sf.noise["bright"], -1.5, 1.5) / 1.5
              ).astype(np.float32)
    atm = rng.uniform(-ATMOSPHERE_RESIDUAL, ATMOSPHERE_RESIDUAL, 4).astype(np.float32)
    surf = []
    for b in range(4):
        v = fr["veg_red"] if b == 2 else (fr["veg_nir"] if b == 3 else SPECTRA["vegetation"][b])
        refl = veg * v
        refl += (fr["imperv"] * SPECTRA["impervious"][b] + soil * SPECTRA["soil"][b]) * bright
        refl += fr["asphalt"] * SPECTRA["asphalt"][b] + fr["water"] * SPECTRA["water"][b]
        surf.append(refl + atm[b])
    # coarse grid coordinates (SCL, clouds, swath)
    t = grid.transform
    xs2 = t.c + t.a * k * (np.arange(w2) + 0.5)
    ys2 = t.f + t.e * k * (np.arange(h2) + 0.5)
    c2 = s2 = None
    if sp.cloud_cover > 0:
        vn = _ValueNoise(np.random.default_rng([seed, dt.d.toordinal(), 0x6EE4]), grid.bounds,
                         CLOUD_OCTAVES, pad=SHADOW_LENGTH_M + 2000.0)
        f = vn.grid(xs2, ys2)
        cin = sf.county[::k, ::k][:h2, :w2]
        thr = float(np.quantile(f[cin], 1.0 - sp.cloud_cover))
        c2 = np.clip(CLOUD_FLAG + (f - thr) * CLOUD_SLOPE, 0.0, 1.0)
        az = math.radians(SUN_AZIMUTH_DEG)
        fs = vn.grid(xs2 + SHADOW_LENGTH_M * math.sin(az), ys2 + SHADOW_LENGTH_M * math.cos(az))
        s2 = np.clip(CLOUD_FLAG + (fs - thr) * CLOUD_SLOPE, 0.0, 1.0)
    if sp.swath_fraction < 1.0:
        tan = math.tan(math.radians(SWATH_TILT_DEG))
        yref = 0.5 * (ys2[0] + ys2[-1])
        u2 = xs2[None, :] - tan * (ys2[:, None] - yref)
        edge = float(np.quantile(u2[sf.county[::k, ::k][:h2, :w2]], sp.swath_fraction))
        ok2 = u2 <= edge
        xs = t.c + t.a * (np.arange(w) + 0.5)
        ys = t.f + t.e * (np.arange(h) + 0.5)
        ok1 = (xs[None, :] - tan * (ys[:, None] - yref)) <= edge
    else:
        ok1 = np.ones((h, w), dtype=bool)
        ok2 = np.ones((h2, w2), dtype=bool)

    def up(a2: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(a2, k, axis=0), k, axis=1) if k > 1 else a2

    obs = []
    cloud = SPECTRA["cloud"]
    if c2 is not None and s2 is not None:
        c1, s1 = up(c2), up(s2)
        shade = (1.0 - SHADOW_DARKENING * s1 * (1.0 - c1)) * (1.0 - c1)
    for b in range(4):
        o = surf[b] * shade + c1 * cloud[b] if c2 is not None else surf[b]
        o = o + rng.standard_normal((h, w), dtype=np.float32) * SENSOR_NOISE
        obs.append(o.astype(np.float32))
    valid1 = sf.county & ok1
    bands: dict[str, np.ndarray] = {}
    names = ("B02", "B03", "B04", "B08" if k == 2 else "B8A")
    add = 1000.0 if dt.offset else 0.0
    for name, o in zip(names, obs, strict=True):
        dn = np.clip(np.rint(o * 10000.0 + add), 1, 65535).astype(np.uint16)
        dn[~valid1] = 0
        bands[name] = dn
    # SCL on the coarse grid, from the observed (cloud-affected) red/NIR and the water share
    cnt = sf.county.reshape(h2, k, w2, k).sum(axis=(1, 3)).astype(np.float32)

    def agg(a: np.ndarray) -> np.ndarray:
        s = np.where(sf.county, a, 0.0).reshape(h2, k, w2, k).sum(axis=(1, 3))
        return s / np.maximum(cnt, 1.0)

    red2, nir2, wat2 = agg(obs[2]), agg(obs[3]), agg(fr["water"])
    ndvi2 = (nir2 - red2) / np.maximum(nir2 + red2, 1e-6)
    scl = np.where(ndvi2 > SCL_VEG_NDVI, 4, 5).astype(np.uint8)
    scl[wat2 > 0.5] = 6
    thin = np.zeros((h2, w2), dtype=bool)
    if c2 is not None and s2 is not None:
        scl[(s2 >= SHADOW_FLAG) & (c2 < CLOUD_FLAG)] = 3
        scl[c2 >= CLOUD_FLAG] = 8
        scl[c2 >= CLOUD_HIGH] = 9
        thin = (c2 > 0.05) & (c2 < CLOUD_FLAG)
    valid2 = (cnt > 0) & ok2
    scl[~valid2] = 0
    bands["SCL"] = scl
    n2 = max(int(valid2.sum()), 1)
    stats = {
        "coverage_pct": round(100.0 * valid2.sum() / max(int((cnt > 0).sum()), 1), 2),
        "cloud_cover_pct": round(100.0 * np.isin(scl, (8, 9)).sum() / n2, 2),
        "thin_cloud_unflagged_pct": round(100.0 * (thin & valid2).sum() / n2, 2),
        "shadow_pct": round(100.0 * (scl == 3).sum() / n2, 2),
    }
    clear1 = up(np.isin(scl, (4, 5, 6)))[:h, :w] & valid1
    return bands, stats, clear1


# ----------------------------------------------------------------------------------------------
# STAC


def _footprint(model: CountyModel, grid: GridSpec, scl: np.ndarray, grid2: GridSpec,
               partial: bool, tr: Transformer) -> shapely.Geometry:
    """The data extent of a scene in lon/lat: the window inside the county, or for a partial
    scene the SCL's data cells."""
    if partial:
        shapes = [shapely.geometry.shape(g) for g, v in rasterio.features.shapes(
            (scl > 0).astype(np.uint8), mask=scl > 0, transform=grid2.transform) if v == 1]
        geom = shapely.union_all(shapes) if shapes else shapely.Polygon()
    else:
        geom = model.county.intersection(shapely.box(*grid.bounds))
    return shapely.transform(geom.simplify(50.0),
                             lambda xy: np.c_[tr.transform(xy[:, 0], xy[:, 1])])


def _item(model: CountyModel, dt: _Date, grids: dict[str, GridSpec], hrefs: dict[str, str],
          stats: dict[str, float], footprint: shapely.Geometry) -> dict[str, Any]:
    assets = {name: stac_band_asset(name, href, grids[name], offset=dt.offset)
              for name, href in hrefs.items()}
    epsg = grids["B04"].crs.to_epsg()
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": list(_STAC_EXT),
        "id": dt.item_id, "geometry": shapely.geometry.mapping(footprint),
        "bbox": [round(v, 6) for v in footprint.bounds],
        "properties": {
            "datetime": f"{dt.d.isoformat()}T02:45:51Z",
            "platform": f"sentinel-2{dt.spec.platform}", "constellation": "sentinel-2",
            "instruments": ["msi"], "s2:product_type": "S2MSI2A",
            "s2:processing_baseline": dt.baseline,
            "eo:cloud_cover": stats["cloud_cover_pct"], "proj:epsg": epsg,
            "sinkmap:synthetic": True, "sinkmap:note": SYNTHETIC_NOTE,
            "sinkmap:conditions": dt.spec.note,
            "sinkmap:coverage_pct": stats["coverage_pct"],
            "sinkmap:thin_cloud_unflagged_pct": stats["thin_cloud_unflagged_pct"],
            "sinkmap:shadow_pct": stats["shadow_pct"],
        },
        "links": [], "assets": assets,
    }


# ----------------------------------------------------------------------------------------------
# the generator


def _write_json(path: Path, doc: Any) -> Path:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_green_demo(model: CountyModel, out_dir: Path, *, seed: int = 2020,
                     years: tuple[int, int] = (2020, 2025), resolution_m: float = 10.0,
                     overwrite: bool = False) -> GreenDemo:
    """Write the urban green-space demo inputs into ``out_dir`` (see the module docstring).

    Files: ``urban.gpkg`` (layer ``urban``), ``districts.gpkg``, ``parks.gpkg``,
    ``imagery/items.json`` (STAC ItemCollection, relative hrefs) with
    ``imagery/YYYYMMDD/{B02,B03,B04,B08,SCL}.tif`` COGs, ``landcover/landcover_<year>.tif``
    (the model's land cover of the window with the parks burnt in, uint16, nodata 0),
    ``truth/green_<year>.tif`` (uint8: 1 green, 0 not, 255 outside the boundary) and
    ``truth/truth.json``. Every file is written atomically (the STAC collection and the truth
    last); existing files are an error unless ``overwrite``.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    y0, y1 = _check_years(years)
    res = float(resolution_m)
    layout = green_layout(model, seed=seed, years=(y0, y1), resolution_m=res)
    grid = layout.grid
    paths = {
        "urban": out_dir / "urban.gpkg", "districts": out_dir / "districts.gpkg",
        "parks": out_dir / "parks.gpkg", "items": out_dir / "imagery" / "items.json",
        "truth": out_dir / "truth" / "truth.json",
    }
    nir = "B08" if res < 20.0 else "B8A"
    lc_paths = {y: out_dir / "landcover" / f"landcover_{y}.tif" for y in (y0, y1)}
    mask_paths = {y: out_dir / "truth" / f"green_{y}.tif" for y in (y0, y1)}
    planned = [*paths.values(), *lc_paths.values(), *mask_paths.values()]
    planned += [out_dir / "imagery" / f"{dt.d:%Y%m%d}" / f"{b}.tif" for dt in _dates((y0, y1))
                for b in ("B02", "B03", "B04", nir, "SCL")]
    if not overwrite:
        for p in planned:
            if p.exists():
                raise OutputExistsError("already exists", source=p,
                                        fix="choose another folder or pass overwrite=True")
    for sub in ("imagery", "landcover", "truth"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    t0 = time.perf_counter()
    sf = _surface(model, layout, seed)
    fr = {y: _vegetation(sf, y, layout) for y in (y0, y1)}
    t_surface = time.perf_counter() - t0

    # -- truth --------------------------------------------------------------------------------
    px_ha = grid.pixel_area_m2 / 1e4
    inside = sf.inside
    green = {y: (fr[y]["veg"] >= TRUTH_THRESHOLD) & inside for y in (y0, y1)}
    crop = {y: np.isin(sf.lc[y], CROPLAND_CODES) for y in (y0, y1)}
    dist_ids = _burn(list(layout.districts.geometry), grid,
                     list(range(1, len(layout.districts) + 1)))
    truth: dict[Any, Any] = {}
    for y in (y0, y1):
        g = green[y]
        lab, nlab = ndimage.label(g, structure=np.ones((3, 3), bool))
        size = np.bincount(lab.ravel(), minlength=nlab + 1)
        min_cells = max(1, math.ceil(400.0 / grid.pixel_area_m2 - 1e-9))
        g400 = (size >= min_cells)[lab] & g
        parks_y = layout.parks[layout.parks["year_built"] <= y]
        per_d = {}
        for i, row in layout.districts.iterrows():
            m = dist_ids == i + 1
            per_d[str(row["name"])] = {
                "area_ha": round(float((m & inside).sum() * px_ha), 2),
                "green_ha": round(float((m & g).sum() * px_ha), 2),
                "green_ha_excl_cropland": round(float((m & g & ~crop[y]).sum() * px_ha), 2),
                "population": None if pd.isna(row["population"]) else float(row["population"]),
            }
        urban_ha = float(inside.sum() * px_ha)
        truth[y] = {
            "year": y, "landcover_year": lc_year(y),
            "urban_area_ha": round(urban_ha, 2),
            "green_ha": round(float(g.sum() * px_ha), 2),
            "green_mu": round(float(g.sum() * grid.pixel_area_m2 / MU_M2), 1),
            "green_coverage_pct": round(100.0 * float(g.sum()) / max(int(inside.sum()), 1), 2),
            "cropland_green_ha": round(float((g & crop[y]).sum() * px_ha), 2),
            "green_ha_excl_cropland": round(float((g & ~crop[y]).sum() * px_ha), 2),
            "green_ha_patches_ge_400m2": round(float(g400.sum() * px_ha), 2),
            "water_ha": round(float((inside & np.isin(sf.lc[y], WATER_CODES)).sum() * px_ha), 2),
            "park_count": len(parks_y),
            "park_ha": round(float(parks_y.geometry.area.sum() / 1e4), 2),
            "districts": per_d,
        }
    new = green[y1] & ~green[y0]
    lost = green[y0] & ~green[y1]
    gnc0, gnc1 = green[y0] & ~crop[y0], green[y1] & ~crop[y1]
    new_nc, lost_nc = gnc1 & ~gnc0, gnc0 & ~gnc1

    def by_class(mask: np.ndarray, lc: np.ndarray) -> dict[str, float]:
        u, c = np.unique(lc[mask], return_counts=True)
        return {str(int(a)): round(float(b) * px_ha, 2) for a, b in zip(u, c, strict=True)}

    new_parks = layout.parks[(layout.parks["year_built"] > y0)
                             & (layout.parks["year_built"] <= y1)]
    truth["change"] = {
        "baseline_year": y0, "year": y1,
        "new_ha": round(float(new.sum() * px_ha), 2),
        "lost_ha": round(float(lost.sum() * px_ha), 2),
        "net_ha": round(float((new.sum() - lost.sum()) * px_ha), 2),
        "new_mu": round(float(new.sum() * grid.pixel_area_m2 / MU_M2), 1),
        "lost_mu": round(float(lost.sum() * grid.pixel_area_m2 / MU_M2), 1),
        "net_mu": round(float((new.sum() - lost.sum()) * grid.pixel_area_m2 / MU_M2), 1),
        "new_ha_excl_cropland": round(float(new_nc.sum() * px_ha), 2),
        "lost_ha_excl_cropland": round(float(lost_nc.sum() * px_ha), 2),
        "new_by_baseline_class_ha": by_class(new, sf.lc[y0]),
        "lost_by_later_class_ha": by_class(lost, sf.lc[y1]),
        "new_excl_cropland_by_baseline_class_ha": by_class(new_nc, sf.lc[y0]),
        "lost_excl_cropland_by_later_class_ha": by_class(lost_nc, sf.lc[y1]),
        "new_parks": [str(v) for v in new_parks["name"]],
        "new_park_ha": round(float(new_parks.geometry.area.sum() / 1e4), 2),
        "target_mu": TARGET_MU,
        "target_progress_pct": round(100.0 * float(new.sum()) * grid.pixel_area_m2 / MU_M2
                                     / TARGET_MU, 1),
    }

    # -- scenes -------------------------------------------------------------------------------
    t0 = time.perf_counter()
    k = sf.k
    t = grid.transform
    grid2 = GridSpec.create(grid.crs, Affine(t.a * k, 0.0, t.c, 0.0, t.e * k, t.f),
                            (grid.height // k, grid.width // k))
    grids = {b: grid for b in ("B02", "B03", "B04", nir)} | {"SCL": grid2}
    jobs: list[tuple[np.ndarray, GridSpec, Path, str, str]] = []
    items: list[dict[str, Any]] = []
    clear_any = {y: np.zeros(grid.shape, dtype=bool) for y in (y0, y1)}
    best = {y: np.full(grid.shape, np.nan, dtype=np.float32) for y in (y0, y1)}
    water_seen = {y: np.zeros(grid.shape, dtype=bool) for y in (y0, y1)}
    scene_ids: dict[int, list[str]] = {y0: [], y1: []}
    to_ll = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    for dt in _dates((y0, y1)):
        y = dt.d.year
        bands, stats, clear1 = _render(sf, fr[y], dt, seed, sf.lc[y])
        sub = f"{dt.d:%Y%m%d}"
        hrefs = {}
        for name in ("B02", "B03", "B04", nir, "SCL"):
            dst = out_dir / "imagery" / sub / f"{name}.tif"
            jobs.append((bands[name], grids[name], dst, name, "class" if name == "SCL" else "DN"))
            hrefs[name] = f"./{sub}/{name}.tif"
        fp = _footprint(model, grid, bands["SCL"], grid2, dt.spec.swath_fraction < 1.0, to_ll)
        items.append(_item(model, dt, grids, hrefs, stats, fp))
        scene_ids[y].append(dt.item_id)
        # the generation-time check: max NDVI over clear observations
        red = (bands["B04"].astype(np.float32) * 1e-4 + dt.offset)
        nr = (bands[nir].astype(np.float32) * 1e-4 + dt.offset)
        scl1 = np.repeat(np.repeat(bands["SCL"], k, axis=0), k, axis=1)
        wat = clear1 & (scl1 == 6)
        use = clear1 & ~wat
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (nr - red) / (nr + red)
        np.fmax(best[y], np.where(use, v, np.nan), out=best[y])
        water_seen[y] |= wat
        clear_any[y] |= clear1
    t_render = time.perf_counter() - t0
    for y in (y0, y1):
        observed = inside & clear_any[y]
        vals = best[y][observed & np.isfinite(best[y])]
        thr = _otsu(vals)
        pred = observed & ~water_seen[y] & (best[y] >= thr)
        agree = float((pred == green[y])[observed].mean()) if observed.any() else float("nan")
        truth[y]["unobserved_ha"] = round(float((inside & ~clear_any[y]).sum() * px_ha), 2)
        truth[y]["scenes"] = scene_ids[y]
        truth[y]["composite_check"] = {
            "method": "max NDVI over clear (SCL 4/5/6) observations, water (SCL 6) never "
                      "green, Otsu threshold inside the boundary; pixelwise vs the truth",
            "otsu_threshold": round(thr, 4), "agreement_pct": round(100.0 * agree, 2),
            "green_ha": round(float(pred.sum() * px_ha), 2),
        }

    # -- write ----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    for y in (y0, y1):
        a = np.where(sf.county, sf.lc[y], 0).astype(np.uint16)
        jobs.append((a, grid, lc_paths[y], f"landcover_{y}", "class"))
        m = np.where(inside, green[y], 255).astype(np.uint8)
        jobs.append((m, grid, mask_paths[y], f"green_{y}", "class"))

    def cog(job: tuple[np.ndarray, GridSpec, Path, str, str]) -> Path:
        arr, g, dst, name, units = job
        dst.parent.mkdir(parents=True, exist_ok=True)
        nodata = 255 if name.startswith("green_") else 0
        da = make_raster(arr, g, nodata=nodata, units=units,
                         kind="categorical" if units == "class" else "continuous", name=name,
                         attrs={"note": SYNTHETIC_NOTE})
        return write_cog(da, dst, overwrite=overwrite)

    with ThreadPoolExecutor(max_workers=_COG_WORKERS) as pool:
        files += list(pool.map(cog, jobs))
    for key, gdf in (("urban", layout.boundary), ("districts", layout.districts),
                     ("parks", layout.parks)):
        files.append(write_vector(gdf, paths[key], overwrite=overwrite))
    coll = {"type": "FeatureCollection", "features": items, "links": []}
    files.append(_write_json(paths["items"], coll))
    meta = {
        "synthetic": True, "statement": SYNTHETIC_NOTE + " The urban boundary, districts, "
        "population, parks, vegetation and imagery of this demo are invented.",
        "generator": "sinkmap.demo_green", "seed": seed, "model_seed": model.seed,
        "resolution_m": res, "crs": grid.crs_wkt,
        "grid": {"transform": list(grid.transform)[:6], "shape": list(grid.shape)},
        "truth_rule": f"vegetation fraction >= {TRUTH_THRESHOLD} inside the urban boundary "
                      "(pixel-centre rule); cropland_green_ha: the part on cropland (101-103) "
                      "of that year's land cover; *_excl_cropland: cropland counted not green",
    }
    doc = meta | {str(kk): v for kk, v in truth.items()}
    files.append(_write_json(paths["truth"], doc))
    t_write = time.perf_counter() - t0
    seconds = time.perf_counter() - t_start
    log.info("green demo: %d files in %.1f s (surface %.1f, render %.1f, write %.1f); green "
             "%s ha / %s ha, new %s ha, lost %s ha", len(files), seconds, t_surface, t_render,
             t_write, truth[y0]["green_ha"], truth[y1]["green_ha"], truth["change"]["new_ha"],
             truth["change"]["lost_ha"])
    return GreenDemo(urban=paths["urban"], districts=paths["districts"], parks=paths["parks"],
                     imagery=paths["items"], truth=truth, files=files, landcover=lc_paths,
                     truth_masks=mask_paths, grid=grid, years=(y0, y1), seconds=seconds)


__all__ = [
    "SCHEDULE", "SPECTRA", "SUMMER_COVER", "GreenDemo", "GreenLayout", "SceneSpec",
    "green_layout", "lc_year", "write_green_demo",
]
