"""Sentinel-2 L2A-like **synthetic** spring imagery of the demo county (conservation tillage).

Everything here is invented from :class:`sinkmap.demo_county.CountyModel`; nothing is
information about the real Meihekou. Entry points: :func:`generate_spring_imagery` (per-date COGs
plus a STAC ItemCollection ``items.json`` with relative hrefs) and :func:`write_field_samples`
(line-transect residue observations on demo parcels, GeoPackage).

Product
-------
Each date is an L2A-like scene on the model's grid (EPSG:4551): ``B04`` (red) and ``B08`` (NIR)
at 10 m, ``B11`` (SWIR1), ``B12`` (SWIR2) and ``SCL`` at 20 m on a grid with the same origin and
twice the cell size. Reflectance is stored as uint16 DN with the processing-baseline >= 04.00
convention ``DN = 10000 * reflectance + 1000`` (``BOA_ADD_OFFSET`` -1000; ``raster:bands``
scale 0.0001, offset -0.1), nodata 0 outside the county and outside the swath. With
``resolution_m=20`` every band is at 20 m and NIR is ``B8A`` (the L2A R20m set): the cheap
variant. The SWIR bands are the 2 x 2 means of the same surface evaluated at the fine
resolution (so mixed pixels at field edges are mixed as a sensor would mix them).

Physics (all numbers are module constants below, easy to retune)
-----------------------------------------------------------------
Each fine pixel is a linear mixture of end-members: bare soil, crop residue, green vegetation,
water and one land-cover-specific "other" material (forest litter and dead grass, roofs and
concrete, asphalt, gravel) with :data:`SPECTRA` reflectances in (red, NIR, SWIR1, SWIR2):

* cropland fields (dry and irrigated maize and soybean): residue fraction = the field's
  ``residue_pct`` / 100 from :meth:`CountyModel.field_attributes` (the truth of
  ``truth/truth.json``), varied within the field by two value-noise fields (about +-10 % relative
  at ~90 m, +-2.5 points at ~30 m, :data:`RESIDUE_PATCH_REL`, :data:`RESIDUE_PIXEL_ABS`); green
  cover = weeds (1-5 %, growing through May) plus the crop, which emerges late May (maize about
  21 May +-6 d, soybean about 28 May; :data:`EMERGENCE`), so field NDVI stays below ~0.3 on the
  dates of the 1 April-31 May window. Paddy fields (rice) carry stubble until they are flooded
  in early-mid May, then are mostly water with transplanted seedlings;
* other land covers follow per-class spring phenology (:data:`CLASS_COVER`: green fraction rising
  logistically through May for forest, grass, orchards, wetland; water for rivers, reservoirs
  and ponds; roofs for built-up land; asphalt for highways);
* soil brightness varies in space (texture and organic matter: +-10 % at ~800 m, +-4 % at
  ~120 m, :data:`SOIL_BRIGHTNESS`); soil and residue moisture vary per date (a date-level
  wetness plus +-0.12 spatial variation; wetlands and paddies wetter). Wet material is darker,
  most in the SWIR; per Quemada & Daughtry (2016, Remote Sens. 8:660) water masks the 2.1 um
  cellulose/lignin absorption, so wet residue loses SWIR1 > SWIR2 contrast while wet soil darkens
  a little more at SWIR2: the NDTI contrast between residue and soil shrinks on the wet date
  (:data:`WET_DARKENING`). Dry residue: B11 0.30, B12 0.20 (NDTI 0.20); dry dark soil: B11
  0.25, B12 0.21 (NDTI 0.087); green leaves have a high NDTI too (0.33), as in reality;
* atmosphere and sensor: a small per-date residual of the atmospheric correction (+-0.003) and
  Gaussian sensor noise (sigma :data:`SENSOR_NOISE` = 0.005 reflectance) per band and pixel;
* clouds: multi-octave value noise thresholded so the flagged share matches the date's cloud
  cover; opacity blends towards a bright cloud spectrum. SCL flags opacity >= 0.4 as 8 and
  >= 0.7 as 9; the thin edges (opacity 0-0.4) stay unflagged and contaminate the surface, as in
  real L2A. Shadows are the cloud field shifted towards the sun's opposite (sun azimuth ~152 deg,
  ~1.1 km), darkening the surface, SCL 3. SCL is otherwise 6 water (water fraction > 0.5),
  4 vegetation (NDVI > 0.4), 5 not vegetated (bare soil, residue, built-up), 0 no data;
* default dates (:data:`DEFAULT_SCHEDULE`): six dates of the 5-day revisit, 10, 20, 30 April,
  10 and 25 May and 4 June (outside the default 1 April-31 May window); 20 April is at the
  edge of the swath (about 55 % of the county imaged), 30 April follows rain (wet soil and
  residue), 10 May is mostly cloudy (68 %); the others are dry and mostly clear.

Evaluation runs window by window (1024 x 1024 fine cells) on a small thread pool: the land
cover and fields of every window are evaluated once into a compact state (about 10 bytes per
county cell: window-relative uint16 rows/columns, a uint16 unit index, float16 residue); then the
dates are rendered one after the other from those states into uncompressed staging GeoTIFFs, and
each finished date is streamed to COGs by :func:`gis.raster_io.write_cog` on background threads
while the next date renders. Everything is deterministic for the model's seed (noise depends on
the seed, the date and the window's position in the grid).

Cost (full county at 10 m, 21.8 M county cells per 10 m band, 2 cores): about 32-43 s for the
six default dates (wall time varies with the host; ~61 s CPU), peak RSS about 1.2-1.3 GB, most of
it the model itself (~480 MB) and the COG writing; ``resolution_m=20`` takes about 19 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.windows
import shapely
from pyproj import Transformer
from rasterio.windows import Window

from gis.errors import InputError
from gis.grid import GridSpec
from gis.raster_io import read_raster, write_cog
from gis.vector_io import read_vector, write_vector
from sinkmap.demo_county import (
    CROPLAND_CODES,
    SYNTHETIC_NOTE,
    CountyModel,
    _HashNoise,
    _ordered_parallel,
    _sep_interp,
    _u01,
)

log = logging.getLogger(__name__)

#: Signature of the ``progress`` callback: ``progress(step, done, total)``.
Progress = Callable[[str, int, int], None]

# ----------------------------------------------------------------------------------------------
# tunable constants (reflectance 0-1, bands in the order red, NIR, SWIR1, SWIR2)

#: End-member spectra (dry).
SPECTRA: dict[str, tuple[float, float, float, float]] = {
    "soil": (0.100, 0.140, 0.250, 0.210),      # dark black soil (NDTI 0.087)
    "residue": (0.170, 0.230, 0.300, 0.200),   # weathered maize/soy straw (NDTI 0.20)
    "green": (0.040, 0.420, 0.220, 0.110),     # green leaves
    "water": (0.045, 0.030, 0.012, 0.008),     # turbid inland water
    "litter": (0.080, 0.190, 0.240, 0.160),    # forest floor, dead grass and reeds
    "built": (0.170, 0.210, 0.270, 0.240),     # roofs, concrete
    "asphalt": (0.085, 0.105, 0.140, 0.130),
    "gravel": (0.200, 0.250, 0.330, 0.300),    # quarries, unpaved roads, bare land
    "cloud": (0.500, 0.530, 0.400, 0.280),
}
#: Relative darkening per band of a fully wet material (reflectance x (1 - k * wetness)).
WET_DARKENING: dict[str, tuple[float, float, float, float]] = {
    "soil": (0.35, 0.35, 0.40, 0.44),
    "residue": (0.30, 0.30, 0.40, 0.25),
}
#: Soil-brightness variation: (relative amplitude, value-noise cell in m).
SOIL_BRIGHTNESS: tuple[tuple[float, float], ...] = ((0.10, 800.0), (0.04, 120.0))
RESIDUE_PATCH_REL = (0.10, 90.0)   # relative within-field residue variation, cell (m)
RESIDUE_PIXEL_ABS = (2.5, 30.0)    # absolute (percentage points), cell (m)
MOISTURE_VARIATION = (0.12, 1500.0)
WET_CLASS_BIAS = 0.25              # extra wetness of paddies, marshes and inland flats
SENSOR_NOISE = 0.005               # reflectance, per band and pixel
ATMOSPHERE_RESIDUAL = 0.003        # per date and band (uniform +-)
#: Emergence day of year (mean, +- half range) per crop code (1 maize, 3 soybean).
EMERGENCE: dict[int, tuple[float, float]] = {1: (141.0, 6.0), 3: (148.0, 6.0)}
CROP_GREEN_MAX = 0.55              # crop green cover reached RAMP days after emergence
CROP_GREEN_RAMP_DAYS = 40.0
WEEDS = (0.01, 0.03, 0.015)        # weed cover: min, + hashed range, + extra on no-till fields
PADDY_FLOOD_DOY = (124.0, 18.0)    # first day flooded (start, + hashed range)
PADDY_WATER = 0.85
RICE_TRANSPLANT_DOY = (146.0, 8.0)
#: Spring cover of the other classes: (other material, its share of the non-green, non-water
#: part, green fraction early April, green fraction June, day of year of half green-up,
#: water fraction).
CLASS_COVER: dict[int, tuple[str, float, float, float, float, float]] = {
    201: ("litter", 0.35, 0.08, 0.55, 135.0, 0.0),
    301: ("litter", 0.90, 0.30, 0.88, 130.0, 0.0),
    305: ("litter", 0.80, 0.22, 0.78, 134.0, 0.0),
    307: ("litter", 0.75, 0.15, 0.65, 136.0, 0.0),
    402: ("litter", 0.85, 0.05, 0.55, 140.0, 0.10),
    404: ("litter", 0.80, 0.06, 0.55, 137.0, 0.0),
    601: ("built", 0.92, 0.02, 0.06, 140.0, 0.0),
    701: ("built", 0.85, 0.05, 0.20, 135.0, 0.0),
    702: ("built", 0.55, 0.05, 0.25, 135.0, 0.0),
    810: ("litter", 0.50, 0.15, 0.60, 133.0, 0.05),
    1003: ("asphalt", 0.95, 0.00, 0.03, 140.0, 0.0),
    1006: ("gravel", 0.70, 0.00, 0.10, 140.0, 0.0),
    1101: ("litter", 0.0, 0.0, 0.0, 140.0, 1.0),
    1103: ("litter", 0.0, 0.0, 0.0, 140.0, 1.0),
    1104: ("litter", 0.0, 0.0, 0.05, 145.0, 0.92),
    1106: ("litter", 0.30, 0.04, 0.30, 142.0, 0.15),
    1108: ("litter", 0.60, 0.03, 0.40, 145.0, 0.35),
    1206: ("gravel", 0.75, 0.00, 0.03, 140.0, 0.0),
}
_WET_CLASSES = (101, 402, 1106, 1108)
GREENUP_WIDTH_DAYS = 7.0
VEG_VARIATION = (0.20, 250.0)      # relative variation of green cover of non-field classes

# clouds, shadows, swath
#: Value-noise octaves of the cloud field: (cell m, amplitude).
CLOUD_OCTAVES: tuple[tuple[float, float], ...] = (
    (6000.0, 0.50), (2200.0, 0.28), (800.0, 0.14), (250.0, 0.08))
CLOUD_SLOPE = 8.0        # opacity per unit of noise above the threshold (edge 0.05 wide)
CLOUD_FLAG = 0.4         # opacity flagged SCL 8 (below: thin, unflagged edges)
CLOUD_HIGH = 0.7         # opacity flagged SCL 9
THIN_CLOUD = 0.05         # opacity counted as thin (unflagged) cloud in the statistics
SHADOW_DARKENING = 0.65
SHADOW_FLAG = 0.4
SUN_AZIMUTH_DEG = 152.0
SHADOW_LENGTH_M = 1100.0
SWATH_TILT_DEG = 13.0    # the swath edge of a descending orbit runs NNE-SSW
SCL_VEG_NDVI = 0.4
FIT_MAX_NDVI = 0.3       # clear field pixels greener than this are left out of the fits

#: Sentinel-2 overpass time over the county (UTC).
OVERPASS_UTC = "02:40:49"
PROCESSING_BASELINE = "05.10"
DEFAULT_WINDOW = ((4, 1), (5, 31))   # the tillage module's default spring window (month, day)


@dataclass(frozen=True)
class SceneConditions:
    """Conditions of one acquisition: flagged cloud share (0-1), soil/residue wetness (0 dry,
    1 saturated), the share of the county inside the swath (1 = all) and a note."""

    cloud_cover: float
    moisture: float
    swath_fraction: float = 1.0
    note: str = ""


#: Default acquisitions: (month, day, conditions).
DEFAULT_SCHEDULE: tuple[tuple[int, int, SceneConditions], ...] = (
    (4, 10, SceneConditions(0.03, 0.15, 1.0, "dry, clear")),
    (4, 20, SceneConditions(0.10, 0.20, 0.55, "edge of the swath: part of the county not imaged")),
    (4, 30, SceneConditions(0.06, 0.62, 1.0, "wet: rain on the day before")),
    (5, 10, SceneConditions(0.68, 0.40, 1.0, "mostly cloudy")),
    (5, 25, SceneConditions(0.05, 0.20, 1.0, "dry, mostly clear; maize emerging")),
    (6, 4, SceneConditions(0.08, 0.22, 1.0, "outside the default 1 April-31 May window")),
)

_STAC_EXT = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
_WAVELENGTH = {"B02": (0.490, 0.098), "B03": (0.560, 0.045), "B04": (0.665, 0.038),
               "B08": (0.842, 0.145), "B8A": (0.865, 0.033), "B11": (1.610, 0.143),
               "B12": (2.190, 0.242)}
_COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B8A": "nir08",
           "B11": "swir16", "B12": "swir22"}
_REFL_RASTER_BANDS = [{"scale": 0.0001, "offset": -0.1, "nodata": 0, "data_type": "uint16"}]
_SAMPLE_KEY = 0x5A3
_NOISE_TABLE = 1 << 22
_COG_CACHE_MB = 64
_WHOLE_GRID_CELLS = 4_000_000


# ----------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class DateStats:
    """What one date looks like: cloud and coverage shares, and the NDTI-residue relation.

    ``fit_a``, ``fit_b``: least squares ``residue_pct = a + b * NDTI`` over clear (SCL 4/5),
    pure dry-field SWIR pixels with NDVI < :data:`FIT_MAX_NDVI` (``fit_n`` pixels, ``fit_r2``,
    ``fit_rmse`` in percentage points); ``ndti_residue``/``ndti_soil``: NDTI of a pure dry
    residue / bare soil surface at the date's wetness from the spectra (no noise);
    ``ndti_residue_obs``/``ndti_soil_obs``: mean observed NDTI of such pixels with >= 75 %
    / <= 3 % residue (NaN when none); ``ndti_fit_residue``/``ndti_fit_soil``: NDTI at 100 % and
    0 % residue from the reverse fit ``NDTI = c + d * residue_pct`` (not attenuated by the
    NDTI noise, unlike ``fit_b``): the end-members a two-point residue model would use."""

    date: str
    in_default_window: bool
    note: str
    moisture: float
    dry: bool
    coverage_pct: float          # county pixels inside the swath
    cloud_cover_pct: float       # of imaged county pixels flagged cloud (SCL 8/9)
    thin_cloud_unflagged_pct: float
    shadow_pct: float
    fit_a: float
    fit_b: float
    fit_r2: float
    fit_rmse: float
    fit_n: int
    ndti_residue: float
    ndti_soil: float
    ndti_residue_obs: float
    ndti_soil_obs: float
    ndti_fit_residue: float
    ndti_fit_soil: float
    field_ndvi_mean: float       # clear pure dry-field pixels
    field_ndvi_below_03_pct: float


@dataclass(frozen=True)
class SpringImagery:
    """What :func:`generate_spring_imagery` wrote."""

    items: Path                  # STAC ItemCollection (relative hrefs)
    dates: tuple[date, ...]
    samples: Path | None         # field samples GeoPackage
    stats: tuple[DateStats, ...]
    resolution_m: float
    seconds: float


# ----------------------------------------------------------------------------------------------
# helpers


def default_dates(year: int = 2025) -> list[date]:
    """The default acquisition dates of ``year`` (see :data:`DEFAULT_SCHEDULE`)."""
    return [date(year, m, d) for m, d, _ in DEFAULT_SCHEDULE]


def conditions_for(d: date, seed: int) -> SceneConditions:
    """Conditions of date ``d``: from :data:`DEFAULT_SCHEDULE` when its month/day is listed,
    else hashed from the seed and the date (mostly clear, dry to moist, full swath)."""
    for m, dd, c in DEFAULT_SCHEDULE:
        if (d.month, d.day) == (m, dd):
            return c
    u1, u2 = (float(_u01(seed, d.toordinal(), k)[0]) for k in (91, 92))
    return SceneConditions(round(0.02 + 0.25 * u1, 3), round(0.15 + 0.35 * u2, 3), 1.0,
                           "hashed conditions")


def in_default_window(d: date) -> bool:
    (m0, d0), (m1, d1) = DEFAULT_WINDOW
    return date(d.year, m0, d0) <= d <= date(d.year, m1, d1)


def _smoothstep(e0: Any, e1: Any, x: Any) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float32) - e0) / (np.asarray(e1) - e0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def _ndti(s1: float, s2: float) -> float:
    return (s1 - s2) / (s1 + s2)


def _wet(name: str, band: int, w: Any) -> Any:
    return 1.0 - WET_DARKENING[name][band] * w


def endmember_ndti(moisture: float) -> tuple[float, float]:
    """NDTI of pure residue and of pure bare soil (mean brightness) at ``moisture``."""
    r = SPECTRA["residue"]
    s = SPECTRA["soil"]
    return (_ndti(r[2] * _wet("residue", 2, moisture), r[3] * _wet("residue", 3, moisture)),
            _ndti(s[2] * _wet("soil", 2, moisture), s[3] * _wet("soil", 3, moisture)))


class _Keys:
    """Value-noise generators of this module, keyed off the model seed."""

    def __init__(self, seed: int):
        base = seed * 1_000_003 + 770_000
        self.seed = seed
        self.soil = [(a, _HashNoise(c, base + i)) for i, (a, c) in enumerate(SOIL_BRIGHTNESS)]
        self.res_patch = _HashNoise(RESIDUE_PATCH_REL[1], base + 10)
        self.res_pixel = _HashNoise(RESIDUE_PIXEL_ABS[1], base + 11)
        self.moist = _HashNoise(MOISTURE_VARIATION[1], base + 12)
        self.veg = _HashNoise(VEG_VARIATION[1], base + 13)

    def clouds(self, d: date) -> list[tuple[float, _HashNoise]]:
        base = self.seed * 1_000_003 + 800_000 + d.toordinal() * 16
        return [(a, _HashNoise(c, base + i)) for i, (c, a) in enumerate(CLOUD_OCTAVES)]


def _local_residue(keys: _Keys, residue_pct: np.ndarray, x: np.ndarray, y: np.ndarray,
                   *, grid_xy: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                   ) -> np.ndarray:
    """Residue cover (%) at points: the field's value with within-field variation. With
    ``grid_xy`` = (xs, ys, flat index) the noise is evaluated on the window grid (same values)."""
    if grid_xy is not None:
        xs, ys, flat = grid_xy
        n1 = keys.res_patch.window(xs, ys).ravel()[flat]
        n2 = keys.res_pixel.window(xs, ys).ravel()[flat]
    else:
        n1, n2 = keys.res_patch.points(x, y), keys.res_pixel.points(x, y)
    r = residue_pct * (1.0 + RESIDUE_PATCH_REL[0] * n1) + RESIDUE_PIXEL_ABS[0] * n2
    return np.clip(r, 0.0, 100.0).astype(np.float32)


def _fbm_window(octs: list[tuple[float, _HashNoise]], xs: np.ndarray, ys: np.ndarray
                ) -> np.ndarray:
    """The cloud noise on the grid ``ys`` x ``xs``: summed on every other cell (the finest
    octave is 250 m), then bilinearly interpolated."""
    xc, yc = xs[::2], ys[::2]
    if len(xs) > 1 and len(xc) * 2 == len(xs):
        xc = np.append(xc, xc[-1] + 2 * (xs[1] - xs[0]))
    if len(ys) > 1 and len(yc) * 2 == len(ys):
        yc = np.append(yc, yc[-1] + 2 * (ys[1] - ys[0]))
    coarse = sum(a * n.window(xc, yc) for a, n in octs)
    rows_f = (ys - yc[0]) / (yc[1] - yc[0]) if len(yc) > 1 else np.zeros(len(ys))
    cols_f = (xs - xc[0]) / (xc[1] - xc[0]) if len(xc) > 1 else np.zeros(len(xs))
    return _sep_interp(coarse, rows_f, cols_f, cubic=False).astype(np.float32)


def _fbm_points(octs: list[tuple[float, _HashNoise]], x: np.ndarray, y: np.ndarray
                ) -> np.ndarray:
    return sum(a * n.points(x, y) for a, n in octs)


def _lc_year(year: int) -> int:
    """The demo's land-cover map used for ``year`` (2020 or 2025, the nearer one)."""
    return 2025 if year >= 2023 else 2020


# ----------------------------------------------------------------------------------------------
# per-date scene set-up


@dataclass
class _Scene:
    d: date
    cond: SceneConditions
    doy: int
    octs: list[tuple[float, _HashNoise]]
    threshold: float            # cloud noise threshold (inf: no clouds)
    swath_edge: float           # u = x - tan(tilt) (y - y_ref) <= edge is imaged
    atm: np.ndarray             # per-band residual of the atmospheric correction
    shift: tuple[float, float]  # shadow: the cloud seen from (x, y) is at (x + dx, y + dy)


_TAN_TILT = math.tan(math.radians(SWATH_TILT_DEG))


def _swath_u(x: np.ndarray, y: np.ndarray, y_ref: float) -> np.ndarray:
    return x - _TAN_TILT * (y - y_ref)


def _calibration_points(model: CountyModel, grid: GridSpec, spacing: float = 300.0
                        ) -> tuple[np.ndarray, np.ndarray]:
    w, s, e, n = grid.bounds
    step = min(spacing, max(e - w, n - s) / 40.0)
    xs = np.arange(w + step / 2, e, step)
    ys = np.arange(s + step / 2, n, step)
    X, Y = np.meshgrid(xs, ys)
    X, Y = X.ravel(), Y.ravel()
    inside = shapely.contains_xy(model.county, X, Y)
    if inside.sum() < 50:
        return X, Y
    return X[inside], Y[inside]


def _make_scenes(model: CountyModel, grid: GridSpec, dates: Sequence[date],
                 conditions: dict[date, SceneConditions] | None, keys: _Keys,
                 y_ref: float) -> list[_Scene]:
    px, py = _calibration_points(model, grid)
    az = math.radians(SUN_AZIMUTH_DEG)
    shift = (SHADOW_LENGTH_M * math.sin(az), SHADOW_LENGTH_M * math.cos(az))
    scenes = []
    for d in dates:
        cond = (conditions or {}).get(d) or conditions_for(d, model.seed)
        octs = keys.clouds(d)
        if cond.cloud_cover <= 0:
            thr = math.inf
        else:
            thr = float(np.quantile(_fbm_points(octs, px, py), 1.0 - min(cond.cloud_cover, 1.0)))
        if cond.swath_fraction >= 1.0:
            edge = math.inf
        else:
            edge = float(np.quantile(_swath_u(px, py, y_ref), max(cond.swath_fraction, 0.0)))
        atm = (2.0 * _u01(model.seed, d.toordinal(), np.arange(4), 93) - 1.0) * ATMOSPHERE_RESIDUAL
        scenes.append(_Scene(d, cond, d.timetuple().tm_yday, octs, thr, edge,
                             atm.astype(np.float32), shift))
    return scenes


# ----------------------------------------------------------------------------------------------
# per-window rendering


class _Renderer:
    """Renders the scenes window by window: :meth:`prepare` evaluates the model once per window
    into a compact state; :meth:`render` draws one date of a prepared window (thread-safe: no
    shared mutable state)."""

    def __init__(self, model: CountyModel, grid: GridSpec, factor: int, year: int,
                 scenes: list[_Scene], keys: _Keys, y_ref: float):
        self.model, self.grid, self.k, self.year = model, grid, factor, year
        self.scenes, self.keys, self.y_ref = scenes, keys, y_ref
        self.seed = model.seed
        codes = sorted(CLASS_COVER)
        self.class_codes = codes
        lut = np.full(1400, -1, dtype=np.int32)
        lut[codes] = np.arange(len(codes))
        self.lut = lut
        others = sorted({v[0] for v in CLASS_COVER.values()})
        oidx = np.array([others.index(CLASS_COVER[c][0]) for c in codes])
        ospec = np.array([SPECTRA[o] for o in others], dtype=np.float32)
        self.class_other = ospec[oidx]                                     # (ncls, 4)
        self.class_share = np.array([CLASS_COVER[c][1] for c in codes], dtype=np.float32)
        self.class_water = np.array([CLASS_COVER[c][5] for c in codes], dtype=np.float32)
        self.class_wet = np.array([WET_CLASS_BIAS if c in _WET_CLASSES else 0.0 for c in codes],
                                  dtype=np.float32)
        self.spec = {k: np.asarray(v, dtype=np.float32) for k, v in SPECTRA.items()}
        self.table = np.random.default_rng([self.seed, 0xA015E]).standard_normal(
            _NOISE_TABLE, np.float32)

    # -- date-independent state ---------------------------------------------------------------

    def prepare(self, win: Window) -> dict[str, Any] | None:
        """Land cover, fields and smooth noise of a window (None: no cell in the county).

        Kept compact (window-relative uint16 rows/columns, float16 fractions), since the states
        of all windows are held while the dates are rendered one after the other."""
        m, k = self.model, self.k
        r = m.evaluate(win)
        inside = r["inside"]
        if not inside.any():
            return None
        h, w = inside.shape
        t = self.grid.window_transform(win)
        xs = t.c + t.a * (np.arange(w) + 0.5)
        ys = t.f + t.e * (np.arange(h) + 0.5)
        rr, cc = np.nonzero(inside)
        flat = rr * w + cc
        h2, w2 = -(-h // k), -(-w // k)
        idx2 = (rr // k) * w2 + cc // k
        cnt2 = np.bincount(idx2, minlength=h2 * w2)
        in2 = np.nonzero(cnt2)[0]
        xs2 = t.c + t.a * k * (np.arange(w2) + 0.5)
        ys2 = t.f + t.e * k * (np.arange(h2) + 0.5)
        lc = r[f"lc{_lc_year(self.year)}"][rr, cc]
        lc20 = r["lc2020"][rr, cc]
        fkey = r["field_key"][rr, cc]
        del r
        is_field = np.isin(lc, CROPLAND_CODES) & (fkey >= 0)
        # fields: attributes once per field
        inv, ukeys = pd.factorize(np.where(is_field, fkey, -1), sort=False)
        first = np.zeros(len(ukeys), dtype=np.intp)
        first[inv[::-1]] = np.arange(len(inv))[::-1]
        ukeys = np.asarray(ukeys, dtype=np.int64)
        attrs = m.field_attributes(ukeys, lc20[first])
        crop_u = attrs["crop"]
        u = {j: _u01(self.seed, ukeys, j) for j in (61, 62, 63, 64)}
        emerg_u = np.full(len(ukeys), 999.0)
        for c, (mean, half) in EMERGENCE.items():
            sel = crop_u == c
            emerg_u[sel] = mean + half * (2.0 * u[61][sel] - 1.0)
        ok_u = ukeys >= 0
        dry_u = ok_u & ((crop_u == 1) | (crop_u == 3))
        res_pct = np.where(is_field, attrs["residue_pct"][inv], 0.0)
        res_local = _local_residue(self.keys, res_pct, xs[cc], ys[rr], grid_xy=(xs, ys, flat))
        res_local[~is_field] = 0.0
        # units: classes first, then the window's fields
        ncls = len(self.class_codes)
        cls = np.maximum(self.lut[lc], 0)
        unit = np.where(is_field, ncls + inv, cls)
        unit = unit.astype(np.uint16 if ncls + len(ukeys) < 65535 else np.int32)
        # smooth noise fields on the coarse grid (gathered per date)
        soil2 = np.ones((h2, w2), dtype=np.float32)
        for a, n in self.keys.soil:
            soil2 += np.float32(a) * n.window(xs2, ys2).astype(np.float32)
        moist2 = MOISTURE_VARIATION[0] * self.keys.moist.window(xs2, ys2)
        veg2 = VEG_VARIATION[0] * self.keys.veg.window(xs2, ys2)
        dryfield = is_field & dry_u[inv]
        dry2 = np.bincount(idx2, weights=dryfield, minlength=h2 * w2)[in2]
        return {
            "shape": (h, w), "shape2": (h2, w2), "xs": xs, "ys": ys, "xs2": xs2, "ys2": ys2,
            "rr": rr.astype(np.uint16), "cc": cc.astype(np.uint16), "unit": unit, "ncls": ncls,
            "res": (res_local / 100.0).astype(np.float16),
            "soil2": soil2.ravel().astype(np.float16), "moist2": moist2.ravel().astype(np.float16),
            "veg2": veg2.ravel().astype(np.float16),
            "emerg_u": emerg_u, "dry_u": dry_u, "paddy_u": ok_u & (crop_u == 2),
            "weeds_u": WEEDS[0] + WEEDS[1] * u[62] + WEEDS[2] * attrs["conservation"],
            "flood_u": PADDY_FLOOD_DOY[0] + PADDY_FLOOD_DOY[1] * u[63],
            "transplant_u": RICE_TRANSPLANT_DOY[0] + RICE_TRANSPLANT_DOY[1] * u[64],
            "pure_dry2": dry2 == k * k,
        }

    # -- one date -------------------------------------------------------------------------------

    def _fractions(self, st: dict[str, Any], sc: _Scene, idx2: np.ndarray
                   ) -> tuple[np.ndarray, ...]:
        """Green, water, other, residue and brightness-weighted soil fractions per cell."""
        doy = sc.doy
        g_c = np.array([CLASS_COVER[c][2] + (CLASS_COVER[c][3] - CLASS_COVER[c][2])
                        / (1.0 + math.exp(-(doy - CLASS_COVER[c][4]) / GREENUP_WIDTH_DAYS))
                        for c in self.class_codes], dtype=np.float32)
        crop_g = CROP_GREEN_MAX * _smoothstep(st["emerg_u"], st["emerg_u"] + CROP_GREEN_RAMP_DAYS,
                                              np.float32(doy))
        weeds = st["weeds_u"] * float(_smoothstep(95.0, 150.0, doy))
        g_f = np.where(st["dry_u"], weeds + crop_g, 0.0)
        flooded = st["paddy_u"] & (doy >= st["flood_u"])
        rice = 0.08 * _smoothstep(st["transplant_u"], st["transplant_u"] + 20.0, np.float32(doy))
        g_f = np.where(st["paddy_u"], np.where(flooded, rice, 0.01), g_f)
        w_f = np.where(flooded, PADDY_WATER, 0.0)
        ncls = st["ncls"]
        is_cls = np.r_[np.ones(ncls, dtype=bool), np.zeros(len(g_f), dtype=bool)]
        g_t = np.concatenate([g_c, g_f]).astype(np.float32)
        w_t = np.concatenate([self.class_water, w_f]).astype(np.float32)
        s_t = np.concatenate([self.class_share, np.zeros(len(g_f))]).astype(np.float32)
        unit = st["unit"]
        g = g_t[unit]
        g *= np.where(is_cls[unit], 1.0 + st["veg2"][idx2], 1.0).astype(np.float32)
        np.minimum(g, 1.0, out=g)
        water = w_t[unit]
        ng = np.maximum(1.0 - g - water, 0.0)
        f_other = ng * s_t[unit]
        f_res = ng * st["res"]
        f_soil_b = (ng - f_other - f_res) * st["soil2"][idx2]
        return g, water, f_other, f_res, f_soil_b

    def _surface(self, fr: tuple[np.ndarray, ...], other: np.ndarray, wet: np.ndarray,
                 atm: float, b: int) -> np.ndarray:
        """Surface reflectance of band ``b`` (before clouds, shadows and noise)."""
        g, water, f_other, f_res, f_soil_b = fr
        sp = self.spec
        ks, kr = WET_DARKENING["soil"][b], WET_DARKENING["residue"][b]
        out = f_soil_b * (sp["soil"][b] * (1.0 - ks * wet))
        out += f_res * (sp["residue"][b] * (1.0 - kr * wet))
        out += g * sp["green"][b]
        out += water * sp["water"][b]
        out += f_other * other[:, b]
        out += atm
        return out

    def _clouds(self, st: dict[str, Any], sc: _Scene) -> tuple[np.ndarray, np.ndarray] | None:
        """Cloud opacity and shadow on the coarse grid of the window (raveled), or None."""
        if not math.isfinite(sc.threshold):
            return None
        xs2, ys2 = st["xs2"], st["ys2"]
        n = _fbm_window(sc.octs, xs2, ys2)
        c = np.clip(CLOUD_FLAG + (n - sc.threshold) * CLOUD_SLOPE, 0.0, 1.0)
        ns = _fbm_window(sc.octs, xs2 + sc.shift[0], ys2 + sc.shift[1])
        s = np.clip(CLOUD_FLAG + (ns - sc.threshold) * CLOUD_SLOPE, 0.0, 1.0)
        if not (c.any() or s.any()):
            return None
        return c.ravel(), s.ravel()

    def _noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Gaussian sensor noise: the sum of two random slices of a seeded table (much faster
        than drawing fresh normals; no visible repetition)."""
        o1, o2 = rng.integers(0, len(self.table) - n, 2)
        return (self.table[o1:o1 + n] + self.table[o2:o2 + n]) * np.float32(
            SENSOR_NOISE / math.sqrt(2.0))

    def render(self, win: Window, st: dict[str, Any], di: int
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Bands (``red``, ``nir`` on the fine grid; ``swir1``, ``swir2``, ``scl`` on the
        coarse one) of scene ``di`` over a prepared window, and its statistics sums."""
        sc = self.scenes[di]
        k = self.k
        h, w = st["shape"]
        h2, w2 = st["shape2"]
        n2 = h2 * w2
        rr, cc = st["rr"].astype(np.int32), st["cc"].astype(np.int32)
        flat = rr * w + cc
        idx2 = (rr // k) * w2 + cc // k if k > 1 else flat
        cnt2 = np.bincount(idx2, minlength=n2)
        in2 = np.nonzero(cnt2)[0].astype(np.int32)
        cnt2 = cnt2[in2].astype(np.float32)
        res2 = (np.bincount(idx2, weights=st["res"], minlength=n2)[in2] * 100.0 / cnt2)
        cloud = self.spec["cloud"]
        rng = np.random.default_rng([self.seed, sc.d.toordinal(), int(win.row_off),
                                     int(win.col_off)])
        fr = self._fractions(st, sc, idx2)
        other_t = np.concatenate([self.class_other,
                                  np.zeros((len(st["emerg_u"]), 4), dtype=np.float32)])
        other = other_t[st["unit"]]
        wet = st["moist2"][idx2].astype(np.float32)
        wet += np.concatenate([self.class_wet, np.where(st["paddy_u"], WET_CLASS_BIAS, 0.0)
                               ]).astype(np.float32)[st["unit"]]
        wet += np.float32(sc.cond.moisture)
        np.clip(wet, 0.0, 1.0, out=wet)
        cs = self._clouds(st, sc)
        c1 = c2 = s2 = shade1 = shade2 = None
        if cs is not None:
            c1, s1 = cs[0][idx2], cs[1][idx2]
            shade1 = (1.0 - SHADOW_DARKENING * s1 * (1.0 - c1)) * (1.0 - c1)
            c2, s2 = cs[0][in2], cs[1][in2]
            shade2 = (1.0 - SHADOW_DARKENING * s2 * (1.0 - c2)) * (1.0 - c2)
        if math.isfinite(sc.swath_edge):
            ok1 = _swath_u(st["xs"][cc], st["ys"][rr], self.y_ref) <= sc.swath_edge
            ok2 = (_swath_u(st["xs2"][in2 % w2], st["ys2"][in2 // w2], self.y_ref)
                   <= sc.swath_edge)
        else:
            ok1 = ok2 = None
        bands: dict[str, np.ndarray] = {}
        fine_tot: list[np.ndarray] = []
        coarse: list[np.ndarray] = []
        for b in range(4):
            surf = self._surface(fr, other, wet, float(sc.atm[b]), b)
            if b >= 2 and k > 1:   # SWIR: the sensor integrates the k x k fine cells
                surf = (np.bincount(idx2, weights=surf, minlength=n2)[in2] / cnt2
                        ).astype(np.float32)
                if shade2 is not None:
                    surf = surf * shade2 + c2 * cloud[b]
                coarse.append(surf)
                continue
            if shade1 is not None:
                surf = surf * shade1 + c1 * cloud[b]
            if b < 2:
                fine_tot.append(surf)
                noisy = surf + self._noise(rng, len(surf))
                bands[("red", "nir")[b]] = self._dn2d(noisy, flat, (h, w), ok1)
            else:
                coarse.append(surf)
        # SWIR at the coarse resolution
        dn_sw = []
        for j, tot in enumerate(coarse):
            dn = self._dn(tot + self._noise(rng, len(tot)))
            if ok2 is not None:
                dn[~ok2] = 0
            dn_sw.append(dn)
            arr = np.zeros(n2, dtype=np.uint16)
            arr[in2] = dn
            bands[("swir1", "swir2")[j]] = arr.reshape(h2, w2)
        # SCL on the coarse grid
        if k == 1:
            red2, nir2 = fine_tot
            water2 = fr[1]
        else:
            red2 = np.bincount(idx2, weights=fine_tot[0], minlength=n2)[in2] / cnt2
            nir2 = np.bincount(idx2, weights=fine_tot[1], minlength=n2)[in2] / cnt2
            water2 = np.bincount(idx2, weights=fr[1], minlength=n2)[in2] / cnt2
        ndvi2 = (nir2 - red2) / np.maximum(nir2 + red2, 1e-6)
        scl = np.full(len(in2), 5, dtype=np.uint8)
        scl[ndvi2 > SCL_VEG_NDVI] = 4
        scl[water2 > 0.5] = 6
        thin = np.zeros(len(in2), dtype=bool)
        shadow = np.zeros(len(in2), dtype=bool)
        if c2 is not None and s2 is not None:
            shadow = (s2 >= SHADOW_FLAG) & (c2 < CLOUD_FLAG)
            scl[shadow] = 3
            scl[c2 >= CLOUD_FLAG] = 8
            scl[c2 >= CLOUD_HIGH] = 9
            thin = (c2 > THIN_CLOUD) & (c2 < CLOUD_FLAG)
        valid = np.ones(len(in2), dtype=bool) if ok2 is None else ok2
        scl[~valid] = 0
        arr = np.zeros(n2, dtype=np.uint8)
        arr[in2] = scl
        bands["scl"] = arr.reshape(h2, w2)
        return bands, self._sums(st, res2, scl, valid, thin, shadow, dn_sw, red2, nir2)

    @staticmethod
    def _dn(refl: np.ndarray) -> np.ndarray:
        return np.clip(np.rint(refl * 10000.0 + 1000.0), 1, 65535).astype(np.uint16)

    def _dn2d(self, refl: np.ndarray, flat: np.ndarray, shape: tuple[int, int],
              ok: np.ndarray | None) -> np.ndarray:
        dn = self._dn(refl)
        if ok is not None:
            dn[~ok] = 0
        arr = np.zeros(shape[0] * shape[1], dtype=np.uint16)
        arr[flat] = dn
        return arr.reshape(shape)

    @staticmethod
    def _sums(st: dict[str, Any], res2: np.ndarray, scl: np.ndarray, valid: np.ndarray,
              thin: np.ndarray,
              shadow: np.ndarray, dn_sw: list[np.ndarray], red2: np.ndarray, nir2: np.ndarray
              ) -> np.ndarray:
        """Per-window sufficient statistics of one date (see :data:`_SUMS`)."""
        s1 = (dn_sw[0].astype(np.float64) - 1000.0) / 10000.0
        s2 = (dn_sw[1].astype(np.float64) - 1000.0) / 10000.0
        ndti = (s1 - s2) / np.where(np.abs(s1 + s2) < 1e-6, np.nan, s1 + s2)
        ndvi = (nir2 - red2) / np.maximum(nir2 + red2, 1e-6)
        clear = valid & ((scl == 4) | (scl == 5))
        field = clear & st["pure_dry2"] & np.isfinite(ndti)
        fit = field & (ndvi < FIT_MAX_NDVI)
        x, y = ndti[fit], res2[fit]
        hi, lo = fit & (res2 >= 75.0), fit & (res2 <= 3.0)
        return np.array([
            len(valid), valid.sum(), ((scl == 8) | (scl == 9)).sum(), (valid & thin).sum(),
            (valid & shadow).sum(),
            len(x), x.sum(), y.sum(), (x * x).sum(), (x * y).sum(), (y * y).sum(),
            hi.sum(), ndti[hi].sum(), lo.sum(), ndti[lo].sum(),
            field.sum(), ndvi[field].sum(), (field & (ndvi < 0.3)).sum(),
        ], dtype=np.float64)


_SUMS = ("n", "valid", "cloud", "thin", "shadow", "fn", "sx", "sy", "sxx", "sxy", "syy",
         "hi_n", "hi_s", "lo_n", "lo_s", "field_n", "ndvi_s", "ndvi_lo")


def _stats(sc: _Scene, tot: np.ndarray) -> DateStats:
    t = dict(zip(_SUMS, tot.tolist(), strict=True))
    n = t["fn"]
    nan = float("nan")
    a = b = r2 = rmse = e0 = e100 = nan
    if n >= 3:
        vx = t["sxx"] - t["sx"] ** 2 / n
        vy = t["syy"] - t["sy"] ** 2 / n
        cxy = t["sxy"] - t["sx"] * t["sy"] / n
        if vx > 0:
            b = cxy / vx
            a = (t["sy"] - b * t["sx"]) / n
            sse = max(vy - b * cxy, 0.0)
            r2 = 1.0 - sse / vy if vy > 0 else nan
            rmse = math.sqrt(sse / n)
        if vy > 0:
            dd = cxy / vy
            e0 = (t["sx"] - dd * t["sy"]) / n
            e100 = e0 + 100.0 * dd
    e_res, e_soil = endmember_ndti(sc.cond.moisture)
    valid = max(t["valid"], 1.0)
    return DateStats(
        date=sc.d.isoformat(), in_default_window=in_default_window(sc.d), note=sc.cond.note,
        moisture=sc.cond.moisture, dry=sc.cond.moisture < 0.3,
        coverage_pct=round(100.0 * t["valid"] / max(t["n"], 1.0), 2),
        cloud_cover_pct=round(100.0 * t["cloud"] / valid, 2),
        thin_cloud_unflagged_pct=round(100.0 * t["thin"] / valid, 2),
        shadow_pct=round(100.0 * t["shadow"] / valid, 2),
        fit_a=round(a, 3), fit_b=round(b, 3), fit_r2=round(r2, 4), fit_rmse=round(rmse, 3),
        fit_n=int(n), ndti_residue=round(e_res, 4), ndti_soil=round(e_soil, 4),
        ndti_residue_obs=round(t["hi_s"] / t["hi_n"], 4) if t["hi_n"] else nan,
        ndti_soil_obs=round(t["lo_s"] / t["lo_n"], 4) if t["lo_n"] else nan,
        ndti_fit_residue=round(e100, 4), ndti_fit_soil=round(e0, 4),
        field_ndvi_mean=round(t["ndvi_s"] / t["field_n"], 4) if t["field_n"] else nan,
        field_ndvi_below_03_pct=(round(100.0 * t["ndvi_lo"] / t["field_n"], 2)
                                 if t["field_n"] else nan),
    )


# ----------------------------------------------------------------------------------------------
# STAC


def _footprint(model: CountyModel, grid: GridSpec, sc: _Scene, y_ref: float
               ) -> shapely.Geometry:
    geom = model.county.intersection(shapely.box(*grid.bounds))
    if math.isfinite(sc.swath_edge):
        w, s, e, n = grid.bounds
        pad = (e - w) + (n - s)
        x_at = lambda yy: sc.swath_edge + _TAN_TILT * (yy - y_ref)  # noqa: E731
        half = shapely.Polygon([(w - pad, s - pad), (x_at(s - pad), s - pad),
                                (x_at(n + pad), n + pad), (w - pad, n + pad)])
        geom = geom.intersection(half)
    geom = geom.simplify(100.0)
    tr = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    return shapely.transform(geom, lambda xy: np.c_[tr.transform(xy[:, 0], xy[:, 1])])


def stac_band_asset(name: str, href: str, grid: GridSpec, *, offset: float) -> dict[str, Any]:
    """The STAC asset of one Sentinel-2 L2A band file (``SCL`` or a reflectance band, with the
    ``raster:bands`` scale 1e-4 and ``offset``) as the demo generators write it."""
    a: dict[str, Any] = {
        "href": href, "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["data"], "gsd": grid.res[0], "proj:shape": list(grid.shape),
        "proj:transform": list(grid.transform)[:6],
    }
    if name == "SCL":
        a["title"] = "Scene classification map (SCL)"
        a["raster:bands"] = [{"nodata": 0, "data_type": "uint8",
                              "spatial_resolution": grid.res[0]}]
        return a
    cw, fw = _WAVELENGTH[name]
    a["title"] = f"{_COMMON[name]} ({name}) - {grid.res[0]:g}m"
    a["roles"] = ["data", "reflectance"]
    a["eo:bands"] = [{"name": name, "common_name": _COMMON[name],
                      "center_wavelength": cw, "full_width_half_max": fw}]
    a["raster:bands"] = [{"scale": 0.0001, "offset": offset, "nodata": 0, "data_type": "uint16",
                          "spatial_resolution": grid.res[0]}]
    return a


def _item(model: CountyModel, sc: _Scene, st: DateStats, grids: dict[str, GridSpec],
          hrefs: dict[str, str], y_ref: float) -> dict[str, Any]:
    d = sc.d
    ymd = d.strftime("%Y%m%d")
    item_id = f"S2B_MSIL2A_{ymd}T024049_N0510_R089_TDEMO_{ymd}T053322_SYNTHETIC"
    fp = _footprint(model, grids["B04"], sc, y_ref)
    epsg = grids["B04"].crs.to_epsg()
    assets = {name: stac_band_asset(name, href, grids[name],
                                    offset=_REFL_RASTER_BANDS[0]["offset"])
              for name, href in hrefs.items()}
    return {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": list(_STAC_EXT),
        "id": item_id, "geometry": shapely.geometry.mapping(fp),
        "bbox": [round(v, 6) for v in fp.bounds],
        "properties": {
            "datetime": f"{d.isoformat()}T{OVERPASS_UTC}Z",
            "platform": "sentinel-2b", "constellation": "sentinel-2", "instruments": ["msi"],
            "s2:processing_baseline": PROCESSING_BASELINE,
            "eo:cloud_cover": st.cloud_cover_pct, "proj:epsg": epsg,
            "sinkmap:synthetic": True, "sinkmap:note": SYNTHETIC_NOTE,
            "sinkmap:conditions": sc.cond.note,
        },
        "links": [], "assets": assets,
    }


# ----------------------------------------------------------------------------------------------
# the generator


def generate_spring_imagery(model: CountyModel, out_dir: Path, *, year: int = 2025,
                            dates: Sequence[date] | None = None, resolution_m: float = 10.0,
                            progress: Progress | None = None,
                            parcels: Path | gpd.GeoDataFrame | None = None,
                            conditions: dict[date, SceneConditions] | None = None,
                            n_sample_parcels: int = 60, overwrite: bool = False,
                            workers: int | None = None) -> SpringImagery:
    """Write Sentinel-2 L2A-like spring scenes of the demo county into ``out_dir``.

    ``out_dir/items.json`` is a STAC ItemCollection (relative hrefs) of one Item per date, with
    COGs ``out_dir/YYYYMMDD/{B04,B08,B11,B12,SCL}.tif`` (``resolution_m`` 10: B04/B08 at 10 m,
    the rest at 20 m; ``resolution_m`` >= 20: all bands at that resolution and NIR as ``B8A``).
    ``model``'s grid is used as is when its cell is ``resolution_m`` (a clipped model gives a
    clipped scene), else its bounds are regridded. ``dates`` default to :func:`default_dates`
    of ``year``; conditions come from :func:`conditions_for` unless given in ``conditions``.
    Field samples (:func:`write_field_samples`, ``n_sample_parcels`` parcels; 0: none) go to
    ``out_dir/field_samples.gpkg``, on ``parcels`` (the demo's ``inputs/parcels.gpkg``) or, when
    None, on whole fields found from the model. ``workers`` threads (default: up to 2) render
    and write. Per-date statistics are logged and returned.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items_path = out_dir / "items.json"
    if items_path.exists() and not overwrite:
        raise InputError("already exists", source=items_path,
                         fix="choose another folder or pass overwrite=True")
    dates = sorted(set(dates)) if dates is not None else default_dates(year)
    if not dates:
        raise InputError("no dates given", fix="give at least one date or leave dates=None")
    res = float(resolution_m)
    grid = model.grid
    if not math.isclose(grid.res[0], res):
        grid = GridSpec.from_bounds(grid.bounds, res, grid.crs)
        model = model.with_grid(grid)
    k = 2 if res < 20.0 else 1
    t = grid.transform
    grid2 = GridSpec.create(grid.crs, t * t.scale(k), (-(-grid.height // k), -(-grid.width // k)))
    nir = "B08" if k == 2 else "B8A"
    names = {"red": "B04", "nir": nir, "swir1": "B11", "swir2": "B12", "scl": "SCL"}
    grids = {"B04": grid, nir: grid, "B11": grid2, "B12": grid2, "SCL": grid2}
    keys = _Keys(model.seed)
    y_ref = 0.5 * (grid.bounds[1] + grid.bounds[3])
    scenes = _make_scenes(model, grid, dates, conditions, keys, y_ref)
    renderer = _Renderer(model, grid, k, year, scenes, keys, y_ref)
    n_workers = workers or max(1, min(2, os.cpu_count() or 1))
    windows = list(grid.blocks(1024))

    def tick(step: str, i: int, n: int) -> None:
        if progress is not None:
            progress(step, i, n)

    # 1. the model, once per window (the land-cover evaluation is partly GIL-bound)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    states: list[tuple[Window, dict[str, Any]]] = []
    for i, (win, st) in enumerate(_ordered_parallel(renderer.prepare, windows, n_workers)):
        tick("landscape", i + 1, len(windows))
        if st is not None:
            states.append((win, st))
    timings["landscape"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    samples_path: Path | None = None
    if n_sample_parcels > 0:
        samples_path = write_field_samples(model, parcels, out_dir / "field_samples.gpkg",
                                           year=year, n_parcels=n_sample_parcels,
                                           overwrite=overwrite)
    timings["samples"] = time.perf_counter() - t0

    # 2. date by date: render into uncompressed staging GeoTIFFs, then stream each finished
    # date to COGs on background threads while the next date renders
    t0 = time.perf_counter()
    stage_dir = out_dir / ".staging"
    stage_dir.mkdir(exist_ok=True)
    stages: list[Path] = []
    totals = np.zeros((len(scenes), len(_SUMS)))
    hrefs: dict[int, dict[str, str]] = {di: {} for di in range(len(scenes))}
    n_jobs = len(scenes) * len(names)
    done = [0]
    # while dates are still rendering, one fine-resolution (10 m) COG at a time (bounds
    # memory); then as many as there are workers
    gate = threading.Semaphore(n_workers)
    held = n_workers > 1 and gate.acquire()

    def to_cog(src: Path, dst: Path, name: str, cat: bool, fine: bool) -> Path:
        # bound GDAL's block cache (default 5 % of RAM) while the staged file is read
        with gate if fine else contextlib.nullcontext(), \
                rasterio.Env(GDAL_CACHEMAX=_COG_CACHE_MB):
            da = read_raster(src, chunks=2048, kind="categorical" if cat else "continuous",
                             units="class" if cat else "DN")
            da.name = name
            out = write_cog(da, dst, overwrite=overwrite)
        src.unlink()
        done[0] += 1
        tick("cog", done[0], n_jobs)
        return out

    try:
        with ThreadPoolExecutor(max_workers=n_workers) as cog_pool:
            futures = []
            for di, sc in enumerate(scenes):
                sub = out_dir / f"{sc.d:%Y%m%d}"
                sub.mkdir(exist_ok=True)
                dsts: dict[str, Any] = {}
                paths: dict[str, Path] = {}
                try:
                    for band, name in names.items():
                        g = grids[name]
                        paths[band] = stage_dir / f"{sc.d:%Y%m%d}_{name}.tif"
                        stages.append(paths[band])
                        dsts[band] = rasterio.open(
                            paths[band], "w", driver="GTiff", height=g.height, width=g.width,
                            count=1, dtype="uint8" if band == "scl" else "uint16",
                            crs=g.crs.to_wkt(), transform=g.transform, nodata=0, tiled=True,
                            blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER", SPARSE_OK=True)

                    def draw(item: tuple[Window, dict[str, Any]], di: int = di
                             ) -> tuple[dict[str, np.ndarray], np.ndarray]:
                        return renderer.render(item[0], item[1], di)

                    for (win, _), (bands, sums) in _ordered_parallel(draw, states, n_workers):
                        win2 = Window(int(win.col_off) // k, int(win.row_off) // k,
                                      -(-int(win.width) // k), -(-int(win.height) // k))
                        for band, arr in bands.items():
                            fine = band in ("red", "nir") or k == 1
                            dsts[band].write(arr, 1, window=win if fine else win2)
                        totals[di] += sums
                finally:
                    for dst in dsts.values():
                        dst.close()
                tick("imagery", di + 1, len(scenes))
                for band, name in names.items():
                    hrefs[di][name] = f"./{sub.name}/{name}.tif"
                    futures.append(cog_pool.submit(
                        to_cog, paths[band], sub / f"{name}.tif", name, band == "scl",
                        k > 1 and band in ("red", "nir")))
            timings["render"] = time.perf_counter() - t0
            states.clear()
            if held:
                gate.release()
                held = False
            for f in futures:
                f.result()
        timings["render_and_cog"] = time.perf_counter() - t0
    finally:
        if held:
            gate.release()
        for p in stages:
            p.unlink(missing_ok=True)
            p.with_name(p.name + ".aux.xml").unlink(missing_ok=True)
        if stage_dir.exists() and not any(stage_dir.iterdir()):
            stage_dir.rmdir()

    stats = tuple(_stats(sc, totals[di]) for di, sc in enumerate(scenes))
    items = [_item(model, sc, stats[di], grids, dict(sorted(hrefs[di].items())), y_ref)
             for di, sc in enumerate(scenes)]
    coll = {"type": "FeatureCollection", "features": items, "links": []}
    tmp = items_path.with_name(".items.json.partial")
    tmp.write_text(json.dumps(coll, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, items_path)

    seconds = time.perf_counter() - t_start
    for s in stats:
        log.info("spring imagery %s%s: cloud %.1f %% (thin unflagged %.1f %%), coverage %.1f %%, "
                 "wetness %.2f; residue_pct = %.1f + %.1f * NDTI (R2 %.2f, n %d); NDTI residue "
                 "%.3f soil %.3f (observed %.3f / %.3f) - %s",
                 s.date, "" if s.in_default_window else " (outside the default window)",
                 s.cloud_cover_pct, s.thin_cloud_unflagged_pct, s.coverage_pct, s.moisture,
                 s.fit_a, s.fit_b, s.fit_r2, s.fit_n, s.ndti_residue, s.ndti_soil,
                 s.ndti_residue_obs, s.ndti_soil_obs, s.note)
    log.info("spring imagery: %d dates at %g m in %.1f s (%s)", len(scenes), res, seconds,
             ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return SpringImagery(items=items_path, dates=tuple(sc.d for sc in scenes),
                         samples=samples_path, stats=stats, resolution_m=res, seconds=seconds)


def stats_table(result: SpringImagery) -> pd.DataFrame:
    """The per-date statistics as a table (one row per date)."""
    return pd.DataFrame([asdict(s) for s in result.stats])


# ----------------------------------------------------------------------------------------------
# field samples


def _parcel_frame(model: CountyModel, parcels: Path | gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if parcels is None:
        from sinkmap.demo_county import _parcel_candidates

        gdf = _parcel_candidates(model)
        gdf["parcel_id"] = [f"P{int(k):013d}" for k in gdf["field_key"]]
        return gdf
    gdf = read_vector(parcels) if not isinstance(parcels, gpd.GeoDataFrame) else parcels.copy()
    if "field_key" not in gdf:
        if "parcel_id" not in gdf:
            raise InputError("parcels have neither field_key nor parcel_id",
                             source=gdf.attrs.get("source"),
                             fix="give the demo's inputs/parcels.gpkg")
        gdf["field_key"] = gdf["parcel_id"].str.slice(1).astype(np.int64)
    return gdf.to_crs(model.grid.crs)


def write_field_samples(model: CountyModel, parcels: Path | gpd.GeoDataFrame | None,
                        out_path: Path, *, year: int = 2025, n_parcels: int = 60,
                        conservation_share: float = 0.45, overwrite: bool = False) -> Path:
    """Write line-transect residue observations on ``n_parcels`` demo parcels (GeoPackage).

    Parcels (the demo's ``inputs/parcels.gpkg``; None: whole fields found from the model) are
    drawn by a seeded hash among those on the model's grid, ``conservation_share`` of them on
    truly conservation-tilled fields, the rest on conventional ones; dry-land fields only (maize,
    soybean) that are still cropland in ``year``. About a third get two transects 40+ m apart,
    the rest one (about 80 points). Each point's ``residue_pct`` is what a 100-point line
    transect would count there: the local truth (the field's ``residue_pct`` with the same
    within-field variation as the imagery), an observer bias (sd 2 points) and binomial counting
    error, as an integer percent. Columns: sample_id, parcel_id, township, crop,
    declared_practice, survey_date, method, residue_pct, note (points in the model's CRS).
    """
    out_path = Path(out_path)
    seed = model.seed
    grid = model.grid
    gdf = _parcel_frame(model, parcels)
    # parcels whose inner part lies on the grid
    b = gdf.geometry.bounds
    gw, gs, ge, gn = grid.bounds
    on_grid = ((b["minx"] > gw + 20) & (b["maxx"] < ge - 20) & (b["miny"] > gs + 20)
               & (b["maxy"] < gn - 20)).to_numpy()
    gdf = gdf[on_grid].reset_index(drop=True)
    keys = gdf["field_key"].to_numpy(np.int64)
    lc_c, afforest = model.field_class(keys)
    attrs = model.field_attributes(keys, lc_c)
    dry = ((attrs["crop"] == 1) | (attrs["crop"] == 3)) & ~afforest
    cons = attrs["conservation"]
    rank = _u01(seed, keys, _SAMPLE_KEY)
    two = _u01(seed, keys, _SAMPLE_KEY + 1) < 1.0 / 3.0
    day = 6 + (_u01(seed, keys, _SAMPLE_KEY + 2) * 12).astype(int)
    lc_year = _lc_year(year)
    # a small grid is evaluated once; on a large one each tried parcel's window is
    whole = model.evaluate(None) if grid.width * grid.height <= _WHOLE_GRID_CELLS else None
    n_cons = round(n_parcels * conservation_share)
    keys_obj = _Keys(seed)
    rows: list[dict[str, Any]] = []
    geoms: list[shapely.Point] = []
    rng = np.random.default_rng([seed, _SAMPLE_KEY, year])
    for practice, want in ((True, n_cons), (False, n_parcels - n_cons)):
        cand = np.nonzero(dry & (cons == practice))[0]
        cand = cand[np.argsort(rank[cand], kind="stable")]
        taken = 0
        for i in cand:
            if taken >= want:
                break
            pts = _transect_points(model, gdf.geometry.iloc[i], int(keys[i]), lc_year,
                                   n=2 if two[i] else 1, whole=whole)
            if len(pts) == 0:
                continue
            taken += 1
            truth = _local_residue(keys_obj, np.full(len(pts), attrs["residue_pct"][i]),
                                   pts[:, 0], pts[:, 1])
            obs_p = np.clip(truth + rng.normal(0.0, 2.0, len(pts)), 0.0, 100.0) / 100.0
            counts = rng.binomial(100, obs_p)
            for j in range(len(pts)):
                rows.append({
                    "parcel_id": str(gdf["parcel_id"].iloc[i]),
                    "township": str(gdf["township"].iloc[i]) if "township" in gdf else "",
                    "crop": {1: "maize", 3: "soybean"}[int(attrs["crop"][i])],
                    "declared_practice": (str(gdf["declared_practice"].iloc[i])
                                          if "declared_practice" in gdf else ""),
                    "survey_date": date(year, 5, int(day[i])).isoformat(),
                    "method": "line transect, 100 points (knots on a 30 m line)",
                    "residue_pct": float(counts[j]),
                    "note": "synthetic",
                })
                geoms.append(shapely.Point(pts[j, 0], pts[j, 1]))
    if not rows:
        raise InputError("no parcel could be sampled", source=gdf.attrs.get("source"),
                         fix="give parcels that lie on the model's grid")
    order = sorted(range(len(rows)), key=lambda j: (rows[j]["parcel_id"], geoms[j].x))
    out = gpd.GeoDataFrame([rows[j] for j in order], geometry=[geoms[j] for j in order],
                           crs=grid.crs)
    out.insert(0, "sample_id", [f"S{j + 1:03d}" for j in range(len(out))])
    write_vector(out, out_path, overwrite=overwrite)
    log.info("field samples: %d points on %d parcels -> %s", len(out),
             out["parcel_id"].nunique(), out_path)
    return out_path


def _transect_points(model: CountyModel, geom: shapely.Geometry, key: int, lc_year: int,
                     n: int, whole: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Up to ``n`` points (transect midpoints, shape (m, 2)) inside the parcel, 15 m or more from
    its edge and 40 m or more apart, on cells of the model that belong to the field and are
    cropland in ``lc_year`` (``whole``: the model evaluated over its whole grid; else one
    evaluation over the parcel's bounding box)."""
    inner = geom.buffer(-15.0)
    if inner.is_empty:
        return np.zeros((0, 2))
    grid = model.grid
    w, s, e, nn = inner.bounds
    u = _u01(model.seed, key, _SAMPLE_KEY + 10 + np.arange(24)[:, None], np.arange(2)[None, :])
    x, y = w + u[:, 0] * (e - w), s + u[:, 1] * (nn - s)
    ok = shapely.contains_xy(inner, x, y)
    x, y = x[ok], y[ok]
    if len(x) == 0:
        return np.zeros((0, 2))
    fw = rasterio.windows.from_bounds(*geom.bounds, transform=grid.transform)
    c0, r0 = math.floor(fw.col_off), math.floor(fw.row_off)
    win = Window(c0, r0, math.ceil(fw.col_off + fw.width) - c0 + 1,
                 math.ceil(fw.row_off + fw.height) - r0 + 1)
    win = win.intersection(Window(0, 0, grid.width, grid.height))
    if whole is not None:
        sl = win.toslices()
        r = {k: v[sl] for k, v in whole.items()}
    else:
        r = model.evaluate(win)
    cols, rows = ~grid.window_transform(win) * (x, y)
    ci = np.clip(np.floor(cols).astype(int), 0, int(win.width) - 1)
    ri = np.clip(np.floor(rows).astype(int), 0, int(win.height) - 1)
    good = ((r["field_key"][ri, ci] == key)
            & np.isin(r[f"lc{lc_year}"][ri, ci], CROPLAND_CODES))
    out: list[tuple[float, float]] = []
    for xx, yy in zip(x[good], y[good], strict=True):
        if len(out) >= n:
            break
        if all(math.hypot(xx - a, yy - b) >= 40.0 for a, b in out):
            out.append((float(xx), float(yy)))
    return np.array(out).reshape(-1, 2)


__all__ = [
    "CLASS_COVER", "DEFAULT_SCHEDULE", "SPECTRA", "WET_DARKENING", "DateStats",
    "SceneConditions", "SpringImagery", "conditions_for", "default_dates", "endmember_ndti",
    "generate_spring_imagery", "in_default_window", "stats_table", "write_field_samples",
]
