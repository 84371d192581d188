"""A deterministic, realistic-looking **synthetic** demo county inside the real Meihekou outline.

Everything this module writes is invented, except the county outline (梅河口市 220581, Tianditu,
WGS 84, shipped in ``sinkmap_data/meihekou``). Rivers, reservoirs and townships borrow real
names (辉发河, 海龙水库, 山城镇, ...) but their positions, shapes and boundaries are synthetic;
villages, roads, parcels, the forest inventory and both land-cover years are generated. Nothing
here may be used as information about the real Meihekou. (The city centre, 125.68E 42.53N, lies
just outside the simplified outline; it is moved to the nearest point 3.5 km inside it.)

Entry point: :func:`generate_county` writes the demo inputs; :class:`CountyModel` is the
landscape itself, reusable by later generators (imagery, green space, ...).

The landscape model
-------------------
:class:`CountyModel` describes the county as functions of map coordinates (EPSG:4551 metres),
evaluated one window of the output grid at a time, so memory does not grow with resolution:

* a fixed 100 m *control lattice* (about 1050 x 750 cells over the county's bounding box plus a
  4 km margin, a few tens of MB, the same at every output resolution) holds the smooth fields:
  elevation before fine detail, landscape slope, height above the nearest river, local relief,
  distances to rivers, position along the Huifa, hilliness, and Gaussian noise fields. Windows
  sample it bilinearly (land cover) or with Catmull-Rom splines (the DEM) and add hashed fine
  noise, so a pixel's value depends only on its coordinates, never on the window it is in;
* terrain: plains along the Huifa valley (north-west of its smooth axis) rising to hills of
  600-1100 m on the south-east side; rivers are parametric curves (splines through anchor points
  plus meanders) that carve valleys; reservoirs are valleys flooded behind a dam on that DEM;
* the city, township seats, villages and unnamed hamlets (屯), ponds, quarries, roads and the
  2021-2025 urban-growth zones are vector features rasterized per window with
  ``rasterio.features.rasterize`` (pixel-centre rule);
* farmland is tiled by *field zones* (a jittered ~2 km Voronoi tessellation), each with its own
  orientation, divided into rectangular fields of 1.5-5 ha. Every field has a stable integer key
  and hashed attributes (crop, true tillage practice, residue cover:
  :meth:`CountyModel.field_attributes`), so later generators (e.g. spring Sentinel-2-like bands
  for tillage, summer bands for green space) can render them pixel by pixel, consistent with
  ``truth/truth.json``. Paddy/dry/irrigated and afforestation are decided per field;
* two thresholds are calibrated per seed on the lattice and a 150 m preview (the forest share and
  the afforested share), so every seed gives similar class shares: about 41 % forest, 46-49 %
  cropland (dry > paddy), 5.5-6.5 % built-up, 3-4 % water and wetland at 30 m.

Land cover is coded with GB/T 21010-2017 (三调) codes written as integers (``0301`` -> ``301``),
see :data:`CODES`. The 2025 map is the 2020 map plus four kinds of change
(:data:`TRANSITION_TYPES`, about 0.3-1.2 % of the county each): afforestation of sloping dry
fields, urban growth around the city and township seats, wetland restoration along reaches of
the Huifa, and land taken by new roads (an expressway, a trunk road, rural roads).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely
import shapely.geometry
import shapely.ops
from affine import Affine
from pyproj import Transformer
from rasterio.windows import Window
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

from gis.crs import projected_crs_for
from gis.errors import InputError
from gis.grid import DEFAULT_CHUNK, GridSpec
from gis.raster_io import read_raster, write_cog
from gis.vector_io import write_vector

log = logging.getLogger(__name__)

#: Signature of the ``progress`` callback: ``progress(step, done, total)``.
Progress = Callable[[str, int, int], None]

#: GB/T 21010-2017 (三调) codes used by the demo county: code -> (Chinese name, English name).
CODES: dict[int, tuple[str, str]] = {
    101: ("水田", "paddy field"),
    102: ("水浇地", "irrigated cropland"),
    103: ("旱地", "dry cropland"),
    201: ("果园", "orchard"),
    301: ("乔木林地", "arbor forest"),
    305: ("灌木林地", "shrub forest"),
    307: ("其他林地", "other forest land"),
    402: ("沼泽草地", "marsh grassland"),
    404: ("其他草地", "other grassland"),
    601: ("工业用地", "industrial land"),
    701: ("城镇住宅用地", "urban residential land"),
    702: ("农村宅基地", "rural homestead"),
    810: ("公园与绿地", "park and green space"),
    1003: ("公路用地", "highway land"),
    1006: ("农村道路", "rural road"),
    1101: ("河流水面", "river water"),
    1103: ("水库水面", "reservoir water"),
    1104: ("坑塘水面", "pond water"),
    1106: ("内陆滩涂", "inland flat"),
    1108: ("沼泽地", "marsh"),
    1206: ("裸土地", "bare land"),
}
CROPLAND_CODES = (101, 102, 103)
FOREST_CODES = (301, 305, 307)
BUILT_CODES = (601, 701, 702, 810, 1003, 1006)
WATER_CODES = (1101, 1103, 1104)
WETLAND_CODES = (402, 1106, 1108)
OTHER_CODES = (201, 404, 1206)

#: Kinds of 2020 -> 2025 change, in the order :func:`transition_type` numbers them (1..4).
TRANSITION_TYPES = ("afforestation", "urban_growth", "wetland_restoration", "road_construction")

MU_M2 = 2000.0 / 3.0  # 1 mu = 666.67 m2
SYNTHETIC_NOTE = ("SYNTHETIC demo data generated by sinkmap.demo_county; only the county outline "
                  "is real. Not information about the real Meihekou.")
OUTLINE = ("meihekou", "meihekou_220581_tianditu_wgs84.geojson")

_CELL = 100.0        # control-lattice cell (m)
_TILE = 512          # land cover is evaluated in tiles of at most this many cells a side
_MARGIN = 4000.0     # control lattice extends this far beyond the county's bounding box
_ZONE = 2000.0       # spacing of the field-zone seeds (m)
_CROP_CODES = {1: "maize", 2: "rice", 3: "soybean"}
_FOREST_SPECIES = (  # (Chinese, English, planted share, Vmax m3/ha, growth rate k)
    ("蒙古栎", "Quercus mongolica", 0.05, 175.0, 0.040),
    ("阔叶混交林", "broadleaf mixed", 0.05, 215.0, 0.045),
    ("落叶松", "Larix olgensis", 0.95, 285.0, 0.070),
    ("红松", "Pinus koraiensis", 0.80, 300.0, 0.045),
    ("杨树", "Populus", 0.95, 230.0, 0.120),
    ("针阔混交林", "needle-broadleaf mixed", 0.10, 250.0, 0.040),
)

# Township seats: (name_zh, name_pinyin, approximate lon, lat). Positions are indicative only;
# the boundaries built from them are synthetic.
_TOWNSHIPS = (
    ("梅河口城区", "Meihekou Chengqu", 125.700, 42.535),
    ("海龙镇", "Hailong", 125.760, 42.625),
    ("山城镇", "Shancheng", 125.745, 42.405),
    ("红梅镇", "Hongmei", 125.860, 42.505),
    ("新合镇", "Xinhe", 125.545, 42.330),
    ("曙光镇", "Shuguang", 125.930, 42.615),
    ("中和镇", "Zhonghe", 125.625, 42.390),
    ("黑山头镇", "Heishantou", 125.390, 42.300),
    ("水道镇", "Shuidao", 125.470, 42.215),
    ("进化镇", "Jinhua", 125.640, 42.330),
    ("一座营镇", "Yizuoying", 125.790, 42.800),
    ("康大营镇", "Kangdaying", 125.745, 42.710),
    ("牛心顶镇", "Niuxinding", 125.990, 42.725),
    ("杏岭镇", "Xingling", 125.770, 42.935),
    ("湾龙镇", "Wanlong", 125.880, 42.765),
    ("兴华镇", "Xinghua", 125.960, 42.540),
)
_CITY_LONLAT = (125.68, 42.53)

# Rivers: (name_zh, pinyin, anchor points lon/lat from source to mouth, channel width m,
# valley half-width m, wetland belt m, paddy belt m). The first is the main river; the others
# end on it (their last anchor is snapped to it).
_RIVERS = (
    ("辉发河", "Huifa He", ((125.20, 42.262), (125.33, 42.288), (125.45, 42.338),
                          (125.56, 42.405), (125.64, 42.475), (125.705, 42.548),
                          (125.80, 42.598), (125.90, 42.660), (125.99, 42.722),
                          (126.10, 42.790)), 90.0, 3200.0, 480.0, 4200.0),
    ("梅河", "Mei He", ((125.775, 42.325), (125.755, 42.390), (125.730, 42.455),
                      (125.712, 42.510), (125.700, 42.540)), 35.0, 1300.0, 200.0, 1700.0),
    ("莲河", "Lian He", ((125.915, 42.395), (125.865, 42.450), (125.830, 42.500),
                       (125.795, 42.550), (125.775, 42.580)), 30.0, 1200.0, 180.0, 1500.0),
    ("大柳河", "Daliu He", ((126.045, 42.565), (126.000, 42.610), (125.960, 42.650),
                          (125.935, 42.680)), 30.0, 1200.0, 180.0, 1500.0),
    ("黄泥河", "Huangni He", ((125.505, 42.160), (125.520, 42.240), (125.530, 42.310),
                            (125.520, 42.375)), 30.0, 1200.0, 170.0, 1500.0),
    ("杨树河", "Yangshu He", ((125.355, 42.130), (125.375, 42.205), (125.395, 42.265),
                            (125.405, 42.305)), 25.0, 1000.0, 150.0, 1300.0),
    ("一统河", "Yitong He", ((125.775, 43.000), (125.780, 42.900), (125.820, 42.800),
                           (125.850, 42.700), (125.860, 42.640)), 35.0, 1600.0, 220.0, 1900.0),
    ("小柳河", "Xiaoliu He", ((125.725, 42.730), (125.735, 42.660), (125.745, 42.600),
                            (125.748, 42.570)), 25.0, 900.0, 150.0, 1300.0),
)
# Reservoirs: (name_zh, pinyin, river index, dam position as fraction of river length from
# source, target area km2).
_RESERVOIRS = (
    ("海龙水库", "Hailong Shuiku", 1, 0.30, 5.0),
    ("曙光水库", "Shuguang Shuiku", 2, 0.36, 3.2),
    ("磨盘山水库", "Mopanshan Shuiku", 4, 0.34, 3.8),
    ("杨树河水库", "Yangshuhe Shuiku", 5, 0.36, 2.0),
)
# Wetland-restoration reaches along the Huifa (fractions of its length, from its source).
_RESTORATION_REACHES = ((0.14, 0.24), (0.58, 0.65), (0.76, 0.85))
_VILLAGE_NAMES = (
    "太平", "永安", "双兴", "新立", "前进", "胜利", "东升", "红星", "富强", "长青", "保安", "五星",
    "大房身", "小河口", "北山", "南岗", "西岔", "东岔", "杨树", "榆树", "柳河", "黄泥", "石庙",
    "二道沟", "三道沟", "四合", "靠山", "向阳", "和平", "兴隆", "德胜", "广发", "福安", "吉兴",
    "金山", "银河", "光明", "民主", "团结", "友谊", "新华", "复兴", "永胜", "长胜", "平安",
    "兴安", "大排", "小排", "腰站", "头道", "后岗", "前岗", "鸡冠", "龙泉", "凤鸣", "双河",
    "三合", "八里", "十里", "王家", "李家", "张家", "刘家", "赵家", "孙家", "高家", "马家",
    "杜家", "于家", "曹家", "宋家", "韩家", "郑家", "唐家", "冯家", "董家", "程家", "许家",
)


# ----------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class DemoCounty:
    """What :func:`generate_county` wrote: the grid and the path of every file."""

    grid: GridSpec
    seed: int
    resolution_m: float
    inputs_dir: Path
    boundary: Path
    dem: Path
    landcover_2020: Path
    landcover_2025: Path
    townships: Path
    rivers: Path
    reservoirs: Path
    roads: Path
    settlements: Path
    parcels: Path
    forest_inventory: Path
    truth: Path

    def files(self) -> dict[str, Path]:
        """Every written file by role (``"dem"``, ``"landcover_2020"``, ..., ``"truth"``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("grid", "seed", "resolution_m", "inputs_dir")}


def transition_type(lc_from: np.ndarray, lc_to: np.ndarray) -> np.ndarray:
    """Kind of change per cell: 0 none/other, else 1 + index in :data:`TRANSITION_TYPES`."""
    a, b = np.asarray(lc_from), np.asarray(lc_to)
    out = np.zeros(a.shape, dtype=np.uint8)
    changed = a != b
    crop = np.isin(a, CROPLAND_CODES)
    out[changed & crop & (b == 301)] = 1
    out[changed & np.isin(b, (601, 701, 810)) & ~np.isin(a, (601, 701, 810))] = 2
    out[changed & np.isin(b, (402, 1108)) & ~np.isin(a, (402, 1108))] = 3
    out[changed & np.isin(b, (1003, 1006)) & ~np.isin(a, (1003, 1006))] = 4
    return out


# ----------------------------------------------------------------------------------------------
# deterministic hashing and noise

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash(*parts: Any) -> np.ndarray:
    """Hash integer arrays (broadcast together) to uint64; platform independent."""
    arrs = np.broadcast_arrays(*[np.atleast_1d(np.asarray(p, dtype=np.int64)) for p in parts])
    h = np.full(arrs[0].shape, 0x2545F4914F6CDD1D, dtype=np.uint64)
    for a in arrs:
        h = _mix(h ^ (a.view(np.uint64) + _GOLDEN))
    return h


def _u01(*parts: Any) -> np.ndarray:
    """Uniform [0, 1) floats hashed from integer arrays."""
    return (_hash(*parts) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


class _HashNoise:
    """Value noise in [-1, 1]: hashed values on a square lattice, bilinearly interpolated."""

    def __init__(self, cell: float, key: int):
        self.cell, self.key = cell, key

    def points(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        gx, gy = x / self.cell, y / self.cell
        ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
        fx, fy = gx - ix, gy - iy
        v00 = _u01(self.key, iy, ix)
        v01 = _u01(self.key, iy, ix + 1)
        v10 = _u01(self.key, iy + 1, ix)
        v11 = _u01(self.key, iy + 1, ix + 1)
        top = v00 + (v01 - v00) * fx
        return 2.0 * (top + (v10 + (v11 - v10) * fx - top) * fy) - 1.0

    def window(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """The same values on the grid ``ys`` (rows) x ``xs`` (columns), computed separably."""
        gx, gy = xs / self.cell, ys / self.cell
        ix0, iy0 = int(np.floor(gx.min())), int(np.floor(gy.min()))
        ix1, iy1 = int(np.floor(gx.max())) + 2, int(np.floor(gy.max())) + 2
        lat = _u01(self.key, np.arange(iy0, iy1)[:, None], np.arange(ix0, ix1)[None, :])
        return 2.0 * _sep_interp(lat, gy - iy0, gx - ix0, cubic=False) - 1.0


def _taps(f: np.ndarray, n: int, cubic: bool) -> tuple[list[np.ndarray], list[np.ndarray]]:
    i0 = np.floor(f).astype(np.intp)
    t = f - i0
    if cubic:  # Catmull-Rom: interpolating and C1, so hillshades show no facets
        t2, t3 = t * t, t * t * t
        offs = (-1, 0, 1, 2)
        w = [-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0,
             -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2]
    else:
        offs, w = (0, 1), [1.0 - t, t]
    return [np.clip(i0 + o, 0, n - 1) for o in offs], w


def _sep_interp(field: np.ndarray, rows_f: np.ndarray, cols_f: np.ndarray, *,
                cubic: bool) -> np.ndarray:
    """Interpolate ``field`` at the grid of fractional rows x columns (separable kernel)."""
    ri, rw = _taps(rows_f, field.shape[0], cubic)
    ci, cw = _taps(cols_f, field.shape[1], cubic)
    r_lo, r_hi = min(int(i.min()) for i in ri), max(int(i.max()) for i in ri) + 1
    c_lo, c_hi = min(int(i.min()) for i in ci), max(int(i.max()) for i in ci) + 1
    sub = np.asarray(field[r_lo:r_hi, c_lo:c_hi], dtype=np.float64)
    tmp = sum(w[:, None] * sub[i - r_lo] for i, w in zip(ri, rw, strict=True))
    return sum(w[None, :] * tmp[:, i - c_lo] for i, w in zip(ci, cw, strict=True))


def _bilinear(field: np.ndarray, rows_f: np.ndarray, cols_f: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``field`` at fractional (row, col) points (clamped at the edges)."""
    h, w = field.shape
    r = np.clip(rows_f, 0.0, h - 1.000001)
    c = np.clip(cols_f, 0.0, w - 1.000001)
    r0, c0 = r.astype(np.intp), c.astype(np.intp)
    fr, fc = r - r0, c - c0
    flat = field.ravel()
    i = r0 * w + c0
    a, b = flat[i], flat[i + 1]
    top = a + (b - a) * fc
    cc, d = flat[i + w], flat[i + w + 1]
    return top + (cc + (d - cc) * fc - top) * fr


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


# ----------------------------------------------------------------------------------------------
# geometry helpers


def _catmull_rom(pts: np.ndarray, spacing: float) -> np.ndarray:
    p = np.vstack([2 * pts[0] - pts[1], pts, 2 * pts[-1] - pts[-2]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        n = max(2, int(np.hypot(*(p2 - p1)) / spacing))
        t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
        out.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    out.append(pts[-1][None])
    return np.vstack(out)


def _resample(line: np.ndarray, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    seg = np.hypot(*np.diff(line, axis=0).T)
    s = np.r_[0.0, np.cumsum(seg)]
    n = max(2, int(s[-1] // spacing) + 1)
    si = np.linspace(0.0, s[-1], n)
    return np.c_[np.interp(si, s, line[:, 0]), np.interp(si, s, line[:, 1])], si


def _normals(line: np.ndarray) -> np.ndarray:
    d = np.gradient(line, axis=0)
    d /= np.hypot(d[:, 0], d[:, 1])[:, None]
    return np.c_[-d[:, 1], d[:, 0]]


def _wiggle(line: np.ndarray, rng: np.random.Generator, waves: tuple[tuple[float, float], ...],
            taper: float, spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset a polyline sideways by a sum of sinusoids (amplitude, wavelength), tapered to 0
    within ``taper`` metres of both ends; returns it resampled at ``spacing``."""
    line, s = _resample(line, spacing)
    off = np.zeros(len(s))
    for amp, wl in waves:
        a = amp * rng.uniform(0.7, 1.3)
        off += a * np.sin(2 * np.pi * s / (wl * rng.uniform(0.8, 1.25)) + rng.uniform(0, 2 * np.pi))
    tp = np.clip(s / taper, 0, 1) * np.clip((s[-1] - s) / taper, 0, 1) if taper > 0 else 1.0
    return _resample(line + _normals(line) * (off * tp)[:, None], spacing)


def _blob(cx: float, cy: float, r: float, rng: np.random.Generator, *, stretch: float = 1.0,
          angle: float = 0.0, rough: float = 0.22, n: int = 48) -> shapely.Polygon:
    """An irregular roundish polygon (villages, ponds, parks)."""
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rr = np.ones(n)
    for k in (2, 3, 5):
        rr += rough / k ** 0.5 * rng.uniform(0.3, 1.0) * np.sin(k * th + rng.uniform(0, 2 * np.pi))
    px, py = r * rr * np.cos(th) * stretch, r * rr * np.sin(th) / stretch
    ca, sa = math.cos(angle), math.sin(angle)
    return shapely.Polygon(np.c_[cx + ca * px - sa * py, cy + sa * px + ca * py])


def _rect(cx: float, cy: float, w: float, h: float, angle: float) -> shapely.Polygon:
    ca, sa = math.cos(angle), math.sin(angle)
    c = np.array([(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)])
    return shapely.Polygon(np.c_[cx + ca * c[:, 0] - sa * c[:, 1],
                                 cy + sa * c[:, 0] + ca * c[:, 1]])


def _road_line(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
               amp: float = 0.04) -> shapely.LineString:
    """A gently curved road from ``a`` to ``b``."""
    d = float(np.hypot(*(b - a)))
    t = np.linspace(0, 1, max(3, int(d / 150)))[:, None]
    nrm = np.array([-(b - a)[1], (b - a)[0]]) / max(d, 1e-9)
    off = d * amp * (rng.uniform(-1, 1) * np.sin(np.pi * t) + 0.35 * rng.uniform(-1, 1)
                     * np.sin(2 * np.pi * t))
    return shapely.LineString(a + (b - a) * t + nrm * off)


# ----------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class _Lattice:
    """The control lattice: ``shape`` cells of ``cell`` metres, north-west corner (x0, y0)."""

    x0: float
    y0: float
    cell: float
    shape: tuple[int, int]

    @property
    def transform(self) -> Affine:
        return Affine(self.cell, 0, self.x0, 0, -self.cell, self.y0)

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        xs = self.x0 + (np.arange(self.shape[1]) + 0.5) * self.cell
        ys = self.y0 - (np.arange(self.shape[0]) + 0.5) * self.cell
        return xs, ys

    def rows_f(self, y: np.ndarray) -> np.ndarray:
        return (self.y0 - y) / self.cell - 0.5

    def cols_f(self, x: np.ndarray) -> np.ndarray:
        return (x - self.x0) / self.cell - 0.5


@dataclass
class _River:
    name: str
    pinyin: str
    xy: np.ndarray       # dense centreline, source -> mouth, ~25 m spacing
    s: np.ndarray        # arc length (m)
    width: float
    valley: float
    wet: float
    paddy: float
    level: np.ndarray | None = None  # water level along the centreline (m)
    axis: np.ndarray | None = None   # main river: smooth axis without meanders, extended

    @property
    def line(self) -> shapely.LineString:
        return shapely.LineString(self.xy)


@dataclass
class _Geography:
    """Everything about the county that does not depend on the output grid."""

    seed: int
    crs: str
    county: shapely.Polygon
    lattice: _Lattice
    lat: dict[str, np.ndarray]
    rivers: list[_River]
    reservoirs: gpd.GeoDataFrame
    city_xy: np.ndarray
    city: shapely.Polygon
    urban_zones: list[tuple[shapely.Geometry, int]]       # 2020 city/seat zones (geom, code)
    growth_zones: list[tuple[shapely.Geometry, int]]      # 2021-2025 urban growth (geom, code)
    settlements: gpd.GeoDataFrame
    village_shapes: list[shapely.Geometry]
    ponds: list[shapely.Geometry]
    quarries: list[shapely.Geometry]
    roads: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    zone_seeds: np.ndarray        # (rows, cols, 2) field-zone seed coordinates
    zone_origin: tuple[float, float]
    zone_params: dict[str, np.ndarray]
    calib: dict[str, float]


class CountyModel:
    """The synthetic county as per-window functions of an output grid.

    Build it with :meth:`build` (deterministic from ``seed``); evaluate windows of
    :attr:`grid` with :meth:`elevation`, :meth:`landcover`, :meth:`landcover_pair` and
    :meth:`fields`. :meth:`with_grid` re-targets the same landscape to another grid (e.g. a coarse
    preview) without rebuilding it.
    """

    def __init__(self, geo: _Geography, grid: GridSpec):
        self.geo = geo
        self.grid = grid
        self.seed = geo.seed
        res = grid.res[0]
        self._river_shapes = [(r.line.buffer(max(r.width, res) / 2, cap_style="flat"), 1101)
                              for r in geo.rivers]
        self._flats = shapely.union_all(
            [geo.rivers[0].line.buffer(geo.rivers[0].width / 2 + max(45.0, res), cap_style="flat")]
            + [g.buffer(max(60.0, res)) for g in geo.reservoirs.geometry])
        roads = geo.roads
        width = {"expressway": 40.0, "main": 24.0, "rural": 7.0}
        road_shapes: dict[int, list[tuple[shapely.Geometry, int]]] = {2020: [], 2025: []}
        for geom, cls, year, code in zip(roads.geometry, roads["class"], roads["year_built"],
                                         roads["code"], strict=True):
            w = 70.0 if (cls == "expressway" and year > 2020) else width[cls]
            shp = (geom.buffer(max(w, res) / 2, cap_style="flat"), int(code))
            road_shapes[2020 if year <= 2020 else 2025].append(shp)
        base: list[tuple[shapely.Geometry, int]] = []
        base += [(g, 1206) for g in geo.quarries]
        base += [(g, 1104) for g in geo.ponds]
        base += [(g, 702) for g in geo.village_shapes]
        base += list(geo.urban_zones)
        base += sorted(road_shapes[2020], key=lambda t: t[1], reverse=True)  # 1006 under 1003
        base += self._river_shapes
        base += [(g, 1103) for g in geo.reservoirs.geometry]
        self._base = _ShapeIndex(base)
        self._change = _ShapeIndex(list(geo.growth_zones)
                                   + sorted(road_shapes[2025], key=lambda t: t[1], reverse=True))
        self._water = _ShapeIndex(self._river_shapes)
        self._res_levels = _ShapeIndex([(g, float(v)) for g, v in
                                        zip(geo.reservoirs.geometry, geo.reservoirs["level_m"],
                                            strict=True)])
        self._county = _ShapeIndex([(geo.county, 1)])
        self._flat_idx = _ShapeIndex([(self._flats, 1)])
        self._fine = _HashNoise(70.0, self.seed * 7 + 1)
        self._fine2 = _HashNoise(160.0, self.seed * 7 + 2)
        self._detail1 = _HashNoise(150.0, self.seed * 7 + 3)
        self._detail2 = _HashNoise(55.0, self.seed * 7 + 4)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(cls, seed: int = 2020, resolution_m: float = 30.0) -> CountyModel:
        """Build the landscape for ``seed`` and an EPSG:4551 grid of ``resolution_m`` cells."""
        geo = _build_geography(seed)
        grid = GridSpec.from_bounds(geo.county.bounds, resolution_m, geo.crs)
        model = cls(geo, grid)
        geo.calib["afforest_slope"] = _calibrate_afforestation(model)
        return model

    def with_grid(self, grid: GridSpec) -> CountyModel:
        """The same landscape evaluated on another grid (same CRS)."""
        return CountyModel(self.geo, grid)

    @property
    def county(self) -> shapely.Polygon:
        return self.geo.county

    # -- per-window evaluation -----------------------------------------------------------------

    def _window(self, window: Window | None) -> tuple[Window, Affine, np.ndarray, np.ndarray]:
        win = window or Window(0, 0, self.grid.width, self.grid.height)
        t = self.grid.window_transform(win)
        xs = t.c + t.a * (np.arange(int(win.width)) + 0.5)
        ys = t.f + t.e * (np.arange(int(win.height)) + 0.5)
        return win, t, xs, ys

    def inside(self, window: Window | None = None) -> np.ndarray:
        """Boolean mask of the cells whose centre lies inside the county."""
        win, t, _, _ = self._window(window)
        return self._county.rasterize(t, (int(win.height), int(win.width)), np.uint8) == 1

    def elevation(self, window: Window | None = None) -> np.ndarray:
        """Elevation (m, float32, to 0.1 m) over the whole window, inside and outside the county.

        Reservoirs are flat at their water level, river channels 1.5 m below the river level."""
        win, t, xs, ys = self._window(window)
        shape = (int(win.height), int(win.width))
        lat, L = self.geo.lattice, self.geo.lat
        rf, cf = lat.rows_f(ys), lat.cols_f(xs)
        z = _sep_interp(L["z"], rf, cf, cubic=True)
        amp = _sep_interp(L["detail"], rf, cf, cubic=False)
        z += amp * (self._detail1.window(xs, ys) + 0.35 * self._detail2.window(xs, ys))
        river = self._water.rasterize(t, shape, np.uint8) > 0
        if river.any():
            z[river] = _sep_interp(L["zr"], rf, cf, cubic=False)[river] - 1.5
        lev = self._res_levels.rasterize(t, shape, np.float32, fill=np.nan)
        ok = np.isfinite(lev)
        z[ok] = lev[ok]
        return np.round(z, 1).astype(np.float32)

    def _sample(self, x: np.ndarray, y: np.ndarray, *names: str) -> list[np.ndarray]:
        """Bilinear samples of lattice fields at points (weights shared by all fields)."""
        lat = self.geo.lattice
        h, w = lat.shape
        r = np.clip(lat.rows_f(y), 0.0, h - 1.000001)
        c = np.clip(lat.cols_f(x), 0.0, w - 1.000001)
        r0, c0 = r.astype(np.intp), c.astype(np.intp)
        fr, fc = (r - r0).astype(np.float32), (c - c0).astype(np.float32)
        i = r0 * w + c0
        out = []
        for n in names:
            flat = self.geo.lat[n].ravel()
            a, b = flat[i], flat[i + 1]
            top = a + (b - a) * fc
            cc, d = flat[i + w], flat[i + w + 1]
            out.append(top + (cc + (d - cc) * fc - top) * fr)
        return out

    def _field_keys(self, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """Field zone, field key and field-centre coordinates of points."""
        zone = _nearest_zone(self.geo, x, y)
        p = self.geo.zone_params
        a, b = p["a"][zone], p["b"][zone]
        sx, sy = self.geo.zone_seeds.reshape(-1, 2)[zone].T
        ct, st = p["cos"][zone], p["sin"][zone]
        u = (x - sx) * ct + (y - sy) * st
        v = -(x - sx) * st + (y - sy) * ct
        iu = np.floor(u / a + p["pu"][zone]).astype(np.int64)
        iv = np.floor(v / b + p["pv"][zone]).astype(np.int64)
        uc = (iu + 0.5 - p["pu"][zone]) * a
        vc = (iv + 0.5 - p["pv"][zone]) * b
        key = (zone.astype(np.int64) << 24) | ((iu + 2048) << 12) | (iv + 2048)
        return {"zone": zone, "key": key, "xc": sx + uc * ct - vc * st,
                "yc": sy + uc * st + vc * ct}

    def field_centres(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centre coordinates of fields given by key."""
        p = self.geo.zone_params
        keys = np.asarray(keys, dtype=np.int64)
        zone = (keys >> 24).astype(np.intp)
        iu = ((keys >> 12) & 0xFFF) - 2048
        iv = (keys & 0xFFF) - 2048
        seeds = self.geo.zone_seeds.reshape(-1, 2)
        ct, st = p["cos"][zone], p["sin"][zone]
        uc = (iu + 0.5 - p["pu"][zone]) * p["a"][zone]
        vc = (iv + 0.5 - p["pv"][zone]) * p["b"][zone]
        return seeds[zone, 0] + uc * ct - vc * st, seeds[zone, 1] + uc * st + vc * ct

    def field_class(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-field rule: the cropland class (101 paddy on flood plains, 102, 103) of each
        field, and whether it is afforested by 2025 (sloping dry fields in programme areas).
        Keys < 0 give 0 / False."""
        keys = np.asarray(keys, dtype=np.int64)
        ok = keys >= 0
        k = np.where(ok, keys, 0)
        cx, cy = self.field_centres(k)
        cS, cR, cdr, cA, cpw, cD = self._sample(cx, cy, "slope", "relief", "d_riv", "nA",
                                                 "paddy_w", "nD")
        h1, h2, h3 = (_u01(self.seed, k, j) for j in (11, 12, 13))
        paddy = (((cdr < cpw * (1.0 + 0.3 * cA)) & (cR < 14.0 + 4.0 * cA) & (cS < 4.0)
                  & (h1 < 0.9)) | ((h1 < 0.015) & (cR < 25.0)))
        irrigated = ~paddy & (h2 < 0.045) & (cR < 45.0)
        code = np.where(paddy, 101, np.where(irrigated, 102, 103)).astype(np.uint16)
        afforest = (code == 103) & (cS > self.geo.calib["afforest_slope"]) & (h3 < 0.75) & (
            cD > -0.6)
        code[~ok] = 0
        return code, afforest & ok

    def _forest_score(self, terrain: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Calibrated forest propensity from the lattice ``fs`` field and large-scale noise
        (> 0: forest, before local noise)."""
        return terrain + 0.9 * noise - self.geo.calib["forest"]

    def _classify(self, x: np.ndarray, y: np.ndarray, feat: np.ndarray, flat: np.ndarray,
                  change: np.ndarray, fine: tuple[np.ndarray, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Land cover 2020 and 2025 and field keys at points inside the county.

        ``feat``: rasterized 2020 features (0 = none), ``flat``: inland-flat zone (bool),
        ``change``: rasterized 2021-2025 growth zones and new roads (0 = none), ``fine``: the
        two fine noise fields at the points if already computed.
        """
        sl, rel, dr, dm, sm, nA, nB, nC, nD, z, ww = self._sample(
            x, y, "slope", "relief", "d_riv", "d_main", "s_main", "nA", "nB", "nC", "nD", "z",
            "wet_w")
        nF, nG = fine if fine is not None else (self._fine.points(x, y), self._fine2.points(x, y))
        lc = np.full(x.shape, 103, dtype=np.uint16)
        (fs,) = self._sample(x, y, "fs")
        F = self._forest_score(fs, nA) + 0.45 * nB + 0.35 * nF
        forest = F > 0
        lc[forest] = 301
        lc[forest & (((sl > 18) & (nB > 1.1)) | ((z > 900) & (nC > 0.7)))] = 305
        lc[forest & ((nB + 0.5 * nC < -1.75) | ((F < 0.7) & (nC < -1.1))
                     | ((F < 0.35) & (nG > 0.55)))] = 307
        grass = ~forest & (((F > -0.7) & (nB > 0.6)) | ((sl > 13) & (nC > 0.0)))
        lc[grass] = 404
        orchard = ~forest & ~grass & (F > -1.8) & (nD > 1.3) & (nG > -0.3) & (sl > 1.0)
        lc[orchard] = 201
        lc[~forest & (sl > 24) & (nF > 0.75)] = 1206
        wet = ((dr < ww * (0.85 + 0.45 * nB)) & (rel - 2.0 * nA < 5.5) & (sl < 3.5) & (nC > -0.35)
               & ~forest)
        lc[wet] = np.where(nC[wet] + 0.3 * nF[wet] > 0.55, 1108, 402).astype(np.uint16)
        crop = lc == 103
        keys = np.full(x.shape, -1, dtype=np.int64)
        keys[crop] = self._field_keys(x[crop], y[crop])["key"]
        inv, ukeys = pd.factorize(keys, sort=False)
        ccode, afforest_field = self.field_class(ukeys)
        lc[crop] = ccode[inv][crop]
        # features and inland flats
        natural = feat == 0
        lc[flat & natural & (lc != 301) & (lc != 305) & (nG > -0.35)] = 1106
        lc[~natural] = feat[~natural]
        lc20 = lc
        # 2021-2025 changes
        lc25 = lc20.copy()
        is_crop = np.isin(lc20, CROPLAND_CODES)
        s_min = self.geo.calib["afforest_slope"] - 1.5
        lc25[is_crop & (lc20 == 103) & afforest_field[inv] & (sl > s_min)] = 301
        frac = sm / self.geo.rivers[0].s[-1]
        reach = np.zeros(x.shape, dtype=bool)
        for a, b in _RESTORATION_REACHES:
            reach |= (frac >= a) & (frac <= b)
        restore = reach & is_crop & (dm < 420.0 * (1.0 + 0.25 * nB)) & (rel < 9.0)
        lc25[restore] = np.where(dm[restore] < 230.0, 1108, 402).astype(np.uint16)
        growth = np.isin(change, (601, 701, 810)) & (is_crop | np.isin(lc20, (201, 404, 307)))
        lc25[growth] = change[growth]
        road = np.isin(change, (1003, 1006)) & ~np.isin(lc20, (1101, 1103, 1003, 1006))
        lc25[road] = change[road]
        return lc20, lc25, np.where(is_crop, keys, -1)

    def evaluate(self, window: Window | None = None) -> dict[str, np.ndarray]:
        """One evaluation of a window (None: the whole grid): ``lc2020``, ``lc2025`` (uint16
        三调 codes), ``field_key`` (int64, -1 off cropland) and ``inside`` (bool, in the county);
        for generators that need several of these at once (e.g. imagery)."""
        return self._evaluate(window)

    def _evaluate(self, window: Window | None) -> dict[str, np.ndarray]:
        """Land cover of both years and field keys of a window, computed in tiles of at most
        ``_TILE`` x ``_TILE`` cells (the model is pointwise, so tiling does not change values;
        it bounds the temporaries)."""
        win = self._window(window)[0]
        h, w = int(win.height), int(win.width)
        if h <= _TILE and w <= _TILE:
            return self._evaluate_tile(win)
        out = {"lc2020": np.zeros((h, w), dtype=np.uint16),
               "lc2025": np.zeros((h, w), dtype=np.uint16),
               "field_key": np.full((h, w), -1, dtype=np.int64),
               "inside": np.zeros((h, w), dtype=bool)}
        for r in range(0, h, _TILE):
            for c in range(0, w, _TILE):
                sub = Window(int(win.col_off) + c, int(win.row_off) + r, min(_TILE, w - c),
                             min(_TILE, h - r))
                res = self._evaluate_tile(sub)
                for k, v in res.items():
                    out[k][r:r + v.shape[0], c:c + v.shape[1]] = v
        return out

    def _evaluate_tile(self, win: Window) -> dict[str, np.ndarray]:
        win, t, xs, ys = self._window(win)
        shape = (int(win.height), int(win.width))
        inside = self._county.rasterize(t, shape, np.uint8) == 1
        lc20 = np.zeros(shape, dtype=np.uint16)
        lc25 = np.zeros(shape, dtype=np.uint16)
        keys = np.full(shape, -1, dtype=np.int64)
        if inside.any():
            rr, cc = np.nonzero(inside)
            feat = self._base.rasterize(t, shape, np.uint16)[rr, cc]
            flat = self._flat_idx.rasterize(t, shape, np.uint8)[rr, cc] == 1
            change = self._change.rasterize(t, shape, np.uint16)[rr, cc]
            fine = (self._fine.window(xs, ys)[rr, cc], self._fine2.window(xs, ys)[rr, cc])
            a, b, k = self._classify(xs[cc], ys[rr], feat, flat, change, fine)
            lc20[rr, cc], lc25[rr, cc], keys[rr, cc] = a, b, k
        return {"lc2020": lc20, "lc2025": lc25, "field_key": keys, "inside": inside}

    def landcover(self, year: int, window: Window | None = None) -> np.ndarray:
        """Land cover (uint16 三调 codes, 0 outside the county) of ``year`` (2020 or 2025)."""
        if year not in (2020, 2025):
            raise ValueError(f"the demo county has land cover for 2020 and 2025, not {year}")
        return self._evaluate(window)[f"lc{year}"]

    def landcover_pair(self, window: Window | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Land cover 2020 and 2025 of a window, computed together."""
        r = self._evaluate(window)
        return r["lc2020"], r["lc2025"]

    def fields(self, window: Window | None = None) -> dict[str, np.ndarray]:
        """Field key of every 2020 cropland cell of a window (-1 elsewhere) with the field's
        attributes (see :meth:`field_attributes`), for imagery generators."""
        r = self._evaluate(window)
        attrs = self.field_attributes(r["field_key"], r["lc2020"])
        return {"field_key": r["field_key"], **attrs}

    def field_attributes(self, keys: np.ndarray, lc2020: np.ndarray) -> dict[str, np.ndarray]:
        """Hashed truth of fields: ``crop`` (1 maize, 2 rice, 3 soybean, 0 none),
        ``conservation`` (true practice, bool) and ``residue_pct`` (spring residue cover %).

        ``lc2020`` is the 2020 class of the same cells (paddy fields grow rice).
        """
        keys = np.asarray(keys, dtype=np.int64)
        u1, u2, u3, u4 = (_u01(self.seed, keys, k) for k in (21, 22, 23, 24))
        paddy = np.asarray(lc2020) == 101
        crop = np.where(paddy, 2, np.where(u1 < 0.74, 1, 3)).astype(np.uint8)
        p_cons = np.where(crop == 1, 0.48, np.where(crop == 3, 0.25, 0.0))
        cons = u2 < p_cons
        # conservation: straw mulch 30-85 %; conventional: ploughed, 0-20 %
        beta_like = (u3 + u4) / 2.0
        residue = np.where(cons, 30.0 + 55.0 * beta_like, 20.0 * u3 ** 2.2)
        none = keys < 0
        crop[none] = 0
        cons[none] = False
        residue[none] = 0.0
        return {"crop": crop, "conservation": cons, "residue_pct": np.round(residue, 1)}


class _ShapeIndex:
    """(geometry, value) pairs in burn order, rasterized per window via a spatial index."""

    def __init__(self, shapes: list[tuple[shapely.Geometry, Any]]):
        kept = [(g, v) for g, v in shapes if g is not None and not g.is_empty]
        # GeoJSON-like mappings, converted once (rasterio would redo it on every call)
        self.shapes = [(shapely.geometry.mapping(g), v) for g, v in kept]
        self.tree = shapely.STRtree([g for g, _ in kept]) if kept else None

    def rasterize(self, transform: Affine, shape: tuple[int, int], dtype: Any,
                  fill: float = 0) -> np.ndarray:
        out = np.full(shape, fill, dtype=dtype)
        if self.tree is None:
            return out
        h, w = shape
        box = shapely.box(transform.c, transform.f + transform.e * h,
                          transform.c + transform.a * w, transform.f)
        hits = np.sort(self.tree.query(box))
        if len(hits) == 0:
            return out
        return rasterio.features.rasterize(
            [self.shapes[i] for i in hits], out_shape=shape, transform=transform, fill=fill,
            dtype=dtype, all_touched=False)


def _terrain_score(slope: np.ndarray, relief: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Terrain part of the forest propensity: steep ground, high above the rivers and above
    the local valley floor (so that valley bottoms in the hills stay farmland)."""
    return slope / 3.0 + np.minimum(relief, 200.0) / 40.0 + np.minimum(local, 150.0) / 12.0


def _nearest_zone(geo: _Geography, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index (flattened) of the field zone (jittered-lattice Voronoi cell) of each point."""
    seeds = geo.zone_seeds
    nr, nc = seeds.shape[:2]
    x0, y0 = geo.zone_origin
    ci = np.floor((x - x0) / _ZONE).astype(np.intp)
    ri = np.floor((y - y0) / _ZONE).astype(np.intp)
    best = np.full(x.shape, np.inf)
    out = np.zeros(x.shape, dtype=np.intp)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r = np.clip(ri + dr, 0, nr - 1)
            c = np.clip(ci + dc, 0, nc - 1)
            idx = r * nc + c
            sx = seeds[..., 0].ravel()[idx]
            sy = seeds[..., 1].ravel()[idx]
            d = (x - sx) ** 2 + (y - sy) ** 2
            better = d < best
            best = np.where(better, d, best)
            out = np.where(better, idx, out)
    return out


# ----------------------------------------------------------------------------------------------
# building the geography


def load_outline() -> gpd.GeoDataFrame:
    """The shipped Meihekou outline (lon/lat, WGS 84)."""
    res = resources.files("sinkmap_data").joinpath(*OUTLINE)
    with resources.as_file(res) as p:
        if not Path(p).exists():
            raise InputError("the shipped county outline is missing", source=p,
                             fix="reinstall sinkmap (the sinkmap_data package)")
        return gpd.read_file(p)


@functools.lru_cache(maxsize=4)
def _lonlat_transformer(crs: str) -> Transformer:
    return Transformer.from_crs("EPSG:4326", crs, always_xy=True)


def _to_xy(lonlat: Any, crs: str) -> np.ndarray:
    a = np.asarray(lonlat, dtype=float).reshape(-1, 2)
    x, y = _lonlat_transformer(crs).transform(a[:, 0], a[:, 1])
    return np.c_[x, y]


def _build_geography(seed: int) -> _Geography:
    rng = np.random.default_rng([seed, 0x5EED])
    outline = load_outline()
    crs_obj = projected_crs_for(tuple(outline.total_bounds))
    epsg = crs_obj.to_epsg()
    crs = f"EPSG:{epsg}" if epsg else crs_obj.to_wkt()
    county = outline.to_crs(crs).geometry.union_all()
    county = shapely.set_precision(shapely.make_valid(county), 0.01)
    if county.geom_type == "MultiPolygon":
        county = max(county.geoms, key=lambda g: g.area)
    w, s, e, n = county.bounds
    x0 = math.floor((w - _MARGIN) / _CELL) * _CELL
    y0 = math.ceil((n + _MARGIN) / _CELL) * _CELL
    shape = (math.ceil((y0 - (s - _MARGIN)) / _CELL), math.ceil((e + _MARGIN - x0) / _CELL))
    lattice = _Lattice(x0, y0, _CELL, shape)
    L: dict[str, np.ndarray] = {}

    def noise(sigma: float) -> np.ndarray:
        """Gaussian random field of correlation length ``sigma`` cells, unit variance (built
        on a lattice k times coarser and spline-interpolated, which is much faster)."""
        k = max(1, int(sigma // 3))
        a = ndimage.gaussian_filter(rng.standard_normal((shape[0] // k + 4, shape[1] // k + 4)),
                                    sigma / k, mode="wrap")
        a = _sep_interp(a, np.arange(shape[0]) / k + 2.0, np.arange(shape[1]) / k + 2.0,
                        cubic=True)
        return (a - a.mean()) / a.std()

    for name, sigma in (("nA", 18.0), ("nB", 5.0), ("nC", 2.5), ("nD", 9.0)):
        L[name] = noise(sigma).astype(np.float32)
    h1, h2, h3, h4, h5 = noise(42.0), noise(17.0), noise(7.0), noise(3.0), noise(1.5)
    nP = noise(30.0)

    city_xy = _to_xy(_CITY_LONLAT, crs)[0]
    inner = county.buffer(-3500.0)
    if not inner.contains(shapely.Point(city_xy)):
        pt = shapely.ops.nearest_points(inner, shapely.Point(city_xy))[0]
        log.info("city centre moved %.0f m inside the county outline",
                 pt.distance(shapely.Point(city_xy)))
        city_xy = np.array([pt.x, pt.y])

    rivers = _make_rivers(crs, rng, city_xy)
    xs, ys = lattice.centres()
    XX, YY = np.meshgrid(xs, ys)
    # nearest river point for every lattice cell
    allxy = np.vstack([r.xy for r in rivers])
    rid = np.concatenate([np.full(len(r.xy), i) for i, r in enumerate(rivers)])
    d_riv, idx = _nearest_point(lattice, allxy, XX, YY)
    main = rivers[0]
    d_main, midx = _nearest_point(lattice, main.xy, XX, YY)
    # signed distance from the smooth valley axis, positive on the south-east (right) side
    axis = main.axis
    aidx = _nearest_point(lattice, axis, XX, YY)[1]
    anrm = _normals(axis)
    cross = -((XX - axis[aidx, 0]) * anrm[aidx, 0] + (YY - axis[aidx, 1]) * anrm[aidx, 1])
    L["d_riv"], L["d_main"] = d_riv.astype(np.float32), d_main.astype(np.float32)
    L["s_main"] = main.s[midx].astype(np.float32)

    # main-river levels: 335 m where it enters, 258 m where it leaves
    main.level = 336.0 - 78.0 * main.s / main.s[-1] + 1.5 * np.sin(main.s / 2100.0)
    main_lvl_near = main.level[midx]
    # terrain before valleys
    plain = main_lvl_near + 8.0 + 1.6 * d_main / 1000.0 + 9.0 * nP
    H = (0.08 + 0.45 * _smoothstep(4000.0, 25000.0, -cross)
         + 0.92 * _smoothstep(500.0, 8500.0, cross)) * (1.0 + 0.3 * h1) + 0.06 * h2
    H = np.clip(H, 0.0, 1.0)
    ridge = 1.0 - np.abs(0.75 * h2 + 0.45 * h3)
    rough = 0.45 + 0.17 * h1 + 0.22 * ridge + 0.08 * h3 + 0.04 * h4 + 0.015 * h5
    terrain = plain + H * (40.0 + 620.0 * np.clip(rough, 0.0, 1.25))
    # river levels: tributaries follow the terrain downhill to their junction level
    tfun = _LatticeFn(lattice, terrain)
    for r in rivers[1:]:
        t_along = tfun(r.xy[:, 0], r.xy[:, 1])
        j = int(cKDTree(main.xy).query(r.xy[-1])[1])
        lj = main.level[j]
        runmin = np.minimum.accumulate(t_along) - 10.0
        floor = lj + 0.6 * (r.s[-1] - r.s) / 1000.0
        r.level = np.maximum(runmin, floor)
    levels = np.concatenate([r.level for r in rivers])
    zr = levels[idx]
    valley = np.array([r.valley for r in rivers])[rid[idx]] * (1.0 - 0.35 * H)
    V = _smoothstep(0.0, 1.0, d_riv / valley) ** 0.85
    z = np.where(terrain > zr + 1.5, zr + 1.5 + (terrain - zr - 1.5) * V, terrain)
    # reservoirs: flood valleys behind dams
    reservoirs, z = _make_reservoirs(lattice, z, rivers, rid, idx, county, crs)
    gy, gx = np.gradient(z, _CELL)
    L["slope"] = np.degrees(np.arctan(np.hypot(gx, gy))).astype(np.float32)
    L["z"] = z.astype(np.float32)
    L["zr"] = zr.astype(np.float32)
    L["relief"] = np.maximum(z - zr, 0.0).astype(np.float32)
    local = z - ndimage.gaussian_filter(ndimage.minimum_filter(z, size=11), 1.5)
    L["fs"] = _terrain_score(L["slope"], L["relief"], np.maximum(local, 0.0)).astype(np.float32)
    L["H"] = H.astype(np.float32)
    L["detail"] = ((1.0 + 9.0 * H) * V).astype(np.float32)
    L["wet_w"] = np.array([r.wet for r in rivers], dtype=np.float32)[rid[idx]]
    L["paddy_w"] = np.array([r.paddy for r in rivers], dtype=np.float32)[rid[idx]]

    fn = {k: _LatticeFn(lattice, L[k]) for k in ("slope", "relief", "d_riv", "H")}
    res_union = shapely.union_all(list(reservoirs.geometry))
    city = _make_city(city_xy, main, rng)
    settlements, village_shapes, urban_zones, growth, ponds = _make_settlements(
        county, city, city_xy, rivers, res_union, fn, rng, crs)
    quarries = _make_quarries(county, fn, res_union, rng)
    roads = _make_roads(county, settlements, city_xy, rivers, res_union, rng, crs)
    urban_zones.extend(_city_zones(city, city_xy, main, rng))
    growth.extend(_city_growth(city, city_xy, main, rng))
    townships = _make_townships(county, settlements, rng, crs)
    zone_seeds, zone_origin, zone_params = _make_zones(county, rng, main)
    return _Geography(
        seed=seed, crs=crs, county=county, lattice=lattice, lat=L, rivers=rivers,
        reservoirs=reservoirs, city_xy=city_xy, city=city, urban_zones=urban_zones,
        growth_zones=growth, settlements=settlements, village_shapes=village_shapes,
        ponds=ponds, quarries=quarries, roads=roads, townships=townships,
        zone_seeds=zone_seeds, zone_origin=zone_origin, zone_params=zone_params,
        calib=_calibrate(lattice, L, county))


def _nearest_point(lattice: _Lattice, pts: np.ndarray, XX: np.ndarray, YY: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Distance to, and index of, the (approximately) nearest of ``pts`` for every lattice cell.

    Exact Euclidean distance transform to the cells holding a point, then the exact distance
    to that cell's point (error below one cell diagonal, only where two cells tie)."""
    h, w = lattice.shape
    r = np.floor((lattice.y0 - pts[:, 1]) / lattice.cell).astype(np.intp)
    c = np.floor((pts[:, 0] - lattice.x0) / lattice.cell).astype(np.intp)
    ok = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    mark = np.full((h, w), -1, dtype=np.int64)
    mark[r[ok], c[ok]] = np.nonzero(ok)[0]
    ir, ic = ndimage.distance_transform_edt(mark < 0, return_distances=False,
                                            return_indices=True)
    idx = mark[ir, ic]
    return np.hypot(XX - pts[idx, 0], YY - pts[idx, 1]), idx


# targets of the lattice calibration (shares of the county area)
_FOREST_TARGET = 0.415
_AFFOREST_TARGET = 0.011


def _calibrate(lattice: _Lattice, L: dict[str, np.ndarray], county: shapely.Polygon
               ) -> dict[str, float]:
    """Thresholds that give every seed similar class shares, computed on the lattice (so they
    do not depend on the output resolution): the forest-score offset and the slope above which
    dry fields are afforested by 2025."""
    inside = rasterio.features.rasterize([(county, 1)], out_shape=lattice.shape,
                                         transform=lattice.transform, dtype=np.uint8) == 1
    score = L["fs"] + 0.9 * L["nA"] + 0.45 * L["nB"]
    thr = float(np.quantile(score[inside], 1.0 - _FOREST_TARGET))
    return {"forest": thr, "afforest_slope": 6.0}  # the latter is set by _calibrate_afforestation


def _calibrate_afforestation(model: CountyModel) -> float:
    """The field-centre slope above which selected dry fields are afforested by 2025, chosen so
    that about :data:`_AFFOREST_TARGET` of the county changes (on a 150 m evaluation)."""
    geo = model.geo
    g = GridSpec.from_bounds(geo.county.bounds, 150.0, geo.crs)
    coarse = model.with_grid(g)
    xy = g.coords()
    n_inside, cs_l, s_l = 0, [], []
    for win in g.blocks():
        r = coarse._evaluate(win)
        n_inside += int(r["inside"].sum())
        rr, cc = np.nonzero(r["lc2020"] == 103)
        if len(rr) == 0:
            continue
        keys = r["field_key"][rr, cc]
        x = xy["x"][cc + int(win.col_off)]
        y = xy["y"][rr + int(win.row_off)]
        cx, cy = model.field_centres(keys)
        cS, cD = model._sample(cx, cy, "slope", "nD")
        (sl,) = model._sample(x, y, "slope")
        sel = (_u01(geo.seed, keys, 13) < 0.75) & (cD > -0.6)
        cs_l.append(cS[sel])
        s_l.append(sl[sel])
    cS, sl = np.concatenate(cs_l), np.concatenate(s_l)
    cand = np.arange(3.0, 15.0, 0.05)
    affected = np.array([np.count_nonzero((cS > c) & (sl > c - 1.5)) for c in cand])
    ok = np.nonzero(affected <= _AFFOREST_TARGET * n_inside)[0]
    return float(round(cand[ok[0]] if len(ok) else cand[-1], 2))


class _LatticeFn:
    """Bilinear point sampler of one lattice field."""

    def __init__(self, lattice: _Lattice, field: np.ndarray):
        self.lattice, self.field = lattice, field

    def __call__(self, x: Any, y: Any) -> np.ndarray:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return _bilinear(self.field, self.lattice.rows_f(y), self.lattice.cols_f(x))


def _make_rivers(crs: str, rng: np.random.Generator, city_xy: np.ndarray) -> list[_River]:
    rivers: list[_River] = []
    for k, (name, py, anchors, width, valley, wet, paddy) in enumerate(_RIVERS):
        pts = _to_xy(anchors, crs)
        if k == 0:
            # make the Huifa pass through the city: move the nearest anchor beside its centre
            j = int(np.argmin(np.hypot(*(pts - city_xy).T)))
            pts[j] = city_xy + np.array([-500.0, 700.0])
            line = _catmull_rom(pts, 200.0)
            xy, s = _wiggle(line, rng, ((700.0, 9000.0), (260.0, 2600.0), (90.0, 800.0)),
                            taper=1500.0, spacing=25.0)
            d0 = (line[0] - line[1]) / np.hypot(*(line[0] - line[1]))
            d1 = (line[-1] - line[-2]) / np.hypot(*(line[-1] - line[-2]))
            ext = np.linspace(40000.0, 0.0, 41)[:, None]
            axis = _resample(np.vstack([line[0] + d0 * ext, line, line[-1] + d1 * ext[::-1]]),
                             100.0)[0]
            rivers.append(_River(name, py, xy, s, width, valley, wet, paddy, axis=axis))
            continue
        else:
            main = rivers[0]
            j = int(cKDTree(main.xy).query(pts[-1])[1])
            pts[-1] = main.xy[j]
            line = _catmull_rom(pts, 200.0)
            xy, s = _wiggle(line, rng, ((450.0, 6000.0), (160.0, 1800.0), (50.0, 500.0)),
                            taper=1200.0, spacing=25.0)
        rivers.append(_River(name, py, xy, s, width, valley, wet, paddy))
    return rivers


def _make_reservoirs(lattice: _Lattice, z: np.ndarray, rivers: list[_River], rid: np.ndarray,
                     idx: np.ndarray, county: shapely.Polygon, crs: str
                     ) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Flood valleys behind dams on the lattice DEM. For each reservoir, dams at several
    positions around the nominal one are tried; the one whose lake is nearest the target area
    (and inside the county) is kept."""
    starts = np.cumsum([0] + [len(r.xy) for r in rivers])
    rows = []
    z = z.copy()
    half = 70
    shrunk = county.buffer(-400.0)
    for name, py, ri, frac, target_km2 in _RESERVOIRS:
        r = rivers[ri]
        best: tuple | None = None
        near = [frac + d for d in (0.0, 0.05, -0.05, 0.1, -0.1)]
        wide = [f for f in np.arange(0.1, 0.81, 0.05) if min(abs(f - n) for n in near) > 0.02]
        for f in near + wide:
            if best is not None and f in wide:
                break  # the wide search is only for when no site near the nominal one works
            df = f - frac
            k = int(np.searchsorted(r.s, float(np.clip(f, 0.1, 0.9)) * r.s[-1]))
            rc = (int(lattice.rows_f(np.array(r.xy[k, 1]))),
                  int(lattice.cols_f(np.array(r.xy[k, 0]))))
            r0, r1 = max(rc[0] - half, 0), min(rc[0] + half, z.shape[0])
            c0, c1 = max(rc[1] - half, 0), min(rc[1] + half, z.shape[1])
            t = lattice.transform @ Affine.translation(c0, r0)
            sub = z[r0:r1, c0:c1]
            gidx = idx[r0:r1, c0:c1]
            inside = rasterio.features.rasterize([(shrunk, 1)], out_shape=sub.shape,
                                                 transform=t, dtype=np.uint8) == 1
            upstream = (rid[gidx] == ri) & (gidx - starts[ri] < k) & inside
            seeds = upstream & (gidx - starts[ri] > k - 40)
            region, level = _flood(sub, upstream, seeds, float(r.level[k]), target_km2)
            err = abs(region.sum() * _CELL ** 2 / 1e6 - target_km2) + 0.1 * abs(df)
            if region.any() and (best is None or err < best[0]):
                best = (err, region, level, (r0, r1, c0, c1), t, float(r.level[k]))
        if best is None:
            log.warning("no site found for synthetic reservoir %s", name)
            continue
        _, region, level, (r0, r1, c0, c1), t, lvl0 = best
        sub = z[r0:r1, c0:c1]
        polys = [shapely.geometry.shape(g) for g, v in
                 rasterio.features.shapes(region.astype(np.uint8), mask=region, transform=t)
                 if v == 1]
        poly = max(polys, key=lambda g: g.area)
        smooth = poly.buffer(60.0).buffer(-90.0).buffer(30.0).simplify(15.0)
        if not smooth.is_empty:
            poly = smooth
        if poly.geom_type == "MultiPolygon":
            poly = max(poly.geoms, key=lambda g: g.area)
        poly = shapely.Polygon(poly.exterior)
        capacity = float(np.clip(level - sub[region], 0, None).sum() * _CELL ** 2 / 1e6)
        sub[region] = level  # water surface (sub is a view of z)
        rows.append({"name": name, "name_pinyin": py, "river": r.name, "level_m": round(level, 1),
                     "dam_height_m": round(level - lvl0 + 3.0, 1),
                     "capacity_mcm": round(capacity, 1),
                     "capacity_note": f"synthetic: normal pool {level:.1f} m, about "
                                      f"{capacity:.0f} million m3 on the synthetic DEM",
                     "geometry": poly})
        log.debug("reservoir %s: level %.1f m, %.2f km2", name, level, poly.area / 1e6)
    return gpd.GeoDataFrame(rows, crs=crs), z


def _flood(sub: np.ndarray, allowed: np.ndarray, seeds: np.ndarray, lvl0: float,
           target_km2: float) -> tuple[np.ndarray, float]:
    """The lake (cells connected to ``seeds``) whose area is nearest ``target_km2``."""
    region = np.zeros(sub.shape, dtype=bool)
    level, best = lvl0, np.inf
    if not seeds.any():
        return region, level
    for dh in np.arange(3.0, 60.0, 1.0):
        lab, _ = ndimage.label((sub < lvl0 + dh) & allowed)
        ids = np.unique(lab[seeds])
        ids = ids[ids > 0]
        if len(ids) == 0:
            continue
        reg = np.isin(lab, ids)
        area = reg.sum() * _CELL ** 2 / 1e6
        if area > 1.4 * target_km2:
            break
        if abs(area - target_km2) < best:
            best, region, level = abs(area - target_km2), reg, lvl0 + dh
    return region, level


def _make_city(city_xy: np.ndarray, main: _River, rng: np.random.Generator) -> shapely.Polygon:
    j = int(cKDTree(main.xy).query(city_xy)[1])
    tang = main.xy[min(j + 20, len(main.xy) - 1)] - main.xy[max(j - 20, 0)]
    ang = math.atan2(tang[1], tang[0])
    return _blob(city_xy[0], city_xy[1], 3000.0, rng, stretch=1.25, angle=ang, rough=0.16,
                 n=96)


def _suitable(fn: dict[str, _LatticeFn], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (fn["slope"](x, y) < 4.5) & (fn["relief"](x, y) < 30.0) & (fn["d_riv"](x, y) > 280.0)


def _make_settlements(county: shapely.Polygon, city: shapely.Polygon, city_xy: np.ndarray,
                      rivers: list[_River], reservoirs: shapely.Geometry,
                      fn: dict[str, _LatticeFn], rng: np.random.Generator, crs: str
                      ) -> tuple[gpd.GeoDataFrame, list, list, list, list]:
    inner = county.buffer(-900.0)
    blocked = shapely.union_all([reservoirs.buffer(400.0), city.buffer(1200.0)])
    shapely.prepare(inner)
    shapely.prepare(blocked)
    rows: list[dict[str, Any]] = [{"name": "梅河口市", "name_pinyin": "Meihekou Shi",
                                   "kind": "town", "role": "county seat (city)",
                                   "geometry": shapely.Point(city_xy)}]
    urban: list[tuple[shapely.Geometry, int]] = [(city, 701)]
    growth: list[tuple[shapely.Geometry, int]] = []
    placed = [city_xy]
    seat_targets = _to_xy([t[2:] for t in _TOWNSHIPS[1:]], crs)
    for (zh, pyn, _, _), tgt in zip(_TOWNSHIPS[1:], seat_targets, strict=True):
        # the most suitable spot within 3 km of the indicative position
        cand = tgt + rng.uniform(-3000, 3000, size=(400, 2))
        cand = np.vstack([tgt, cand])
        ok = (_suitable(fn, cand[:, 0], cand[:, 1])
              & shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
              & ~shapely.contains_xy(blocked, cand[:, 0], cand[:, 1]))
        cost = np.hypot(*(cand - tgt).T) + 200.0 * fn["slope"](cand[:, 0], cand[:, 1])
        cost[~ok] = np.inf
        if np.isfinite(cost).any():
            p = cand[int(np.argmin(cost))]
        else:
            q = shapely.ops.nearest_points(inner.difference(blocked), shapely.Point(tgt))[0]
            p = np.array([q.x, q.y])
        placed.append(p)
        rows.append({"name": zh, "name_pinyin": pyn, "kind": "town", "role": "township seat",
                     "geometry": shapely.Point(p)})
        seat = _blob(p[0], p[1], rng.uniform(560, 820), rng, stretch=rng.uniform(1.0, 1.4),
                     angle=rng.uniform(0, np.pi))
        urban.append((seat, 701))
        if rng.uniform() < 0.6:
            q = p + rng.normal(0, 1, 2) / np.hypot(*rng.normal(0, 1, 2)) * 550.0
            urban.append((_blob(q[0], q[1], rng.uniform(150, 260), rng), 601))
        if rng.uniform() < 0.45:  # some seats grow by 2025
            q = p + rng.normal(0, 1, 2) / np.hypot(*rng.normal(0, 1, 2)) * 600.0
            growth.append((_blob(q[0], q[1], rng.uniform(220, 380), rng), 701))
    # villages
    villages: list[shapely.Geometry] = []
    names = list(_VILLAGE_NAMES)
    rng.shuffle(names)
    n_target = 72
    tries = 0
    w, s, e, n = county.bounds
    vrows = []
    while len(vrows) < n_target and tries < 200:
        tries += 1
        cand = np.c_[rng.uniform(w, e, 500), rng.uniform(s, n, 500)]
        ok = (_suitable(fn, cand[:, 0], cand[:, 1])
              & shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
              & ~shapely.contains_xy(blocked, cand[:, 0], cand[:, 1]))
        hil = fn["H"](cand[:, 0], cand[:, 1])
        ok &= rng.uniform(size=len(cand)) > 0.8 * hil
        for p in cand[ok]:
            if len(vrows) >= n_target:
                break
            if min(np.hypot(*(np.array(placed) - p).T)) < 2100.0:
                continue
            placed.append(p)
            name = names[len(vrows) % len(names)] + "村"
            vrows.append({"name": name, "name_pinyin": "", "kind": "village", "role": "village",
                          "geometry": shapely.Point(p)})
            villages.append(_blob(p[0], p[1], rng.uniform(300, 560), rng,
                                  stretch=rng.uniform(1.0, 1.8), angle=rng.uniform(0, np.pi)))
    rows.extend(vrows)
    # unnamed hamlets (屯): small homestead clusters, only in the land cover
    tries = 0
    n_hamlets = 0
    while n_hamlets < 240 and tries < 200:
        tries += 1
        cand = np.c_[rng.uniform(w, e, 500), rng.uniform(s, n, 500)]
        ok = (_suitable(fn, cand[:, 0], cand[:, 1])
              & shapely.contains_xy(inner, cand[:, 0], cand[:, 1])
              & ~shapely.contains_xy(blocked, cand[:, 0], cand[:, 1]))
        ok &= rng.uniform(size=len(cand)) > 0.6 * fn["H"](cand[:, 0], cand[:, 1])
        for p in cand[ok]:
            if n_hamlets >= 240:
                break
            if min(np.hypot(*(np.array(placed) - p).T)) < 900.0:
                continue
            placed.append(p)
            n_hamlets += 1
            villages.append(_blob(p[0], p[1], rng.uniform(90, 190), rng,
                                  stretch=rng.uniform(1.0, 2.0), angle=rng.uniform(0, np.pi)))
    # ponds near villages
    ponds = []
    for v in villages:
        c = v.centroid
        for _ in range(int(rng.integers(0, 4))):
            a = rng.uniform(0, 2 * np.pi)
            d = rng.uniform(500, 1300)
            px, py = c.x + d * math.cos(a), c.y + d * math.sin(a)
            if fn["relief"](px, py) < 12 and fn["d_riv"](px, py) > 150:
                ponds.append(_blob(px, py, rng.uniform(45, 110), rng, rough=0.15))
    gdf = gpd.GeoDataFrame(rows, crs=crs)
    gdf.insert(0, "settlement_id", [f"S{i:03d}" for i in range(len(gdf))])
    return gdf, villages, urban, growth, ponds


def _city_zones(city: shapely.Polygon, city_xy: np.ndarray, main: _River,
                rng: np.random.Generator) -> list[tuple[shapely.Geometry, int]]:
    zones: list[tuple[shapely.Geometry, int]] = []
    j = int(cKDTree(main.xy).query(city_xy)[1])
    tang = main.xy[min(j + 20, len(main.xy) - 1)] - main.xy[max(j - 20, 0)]
    ang = math.atan2(tang[1], tang[0])
    u = np.array([math.cos(ang), math.sin(ang)])
    nrm = np.array([-u[1], u[0]])
    # industrial parks at both ends of the city along the valley
    for along, across, w, h in ((2700.0, -900.0, 1900.0, 1300.0), (-2600.0, 700.0, 1500.0, 1100.0),
                                (400.0, -2100.0, 1100.0, 800.0)):
        c = city_xy + u * along + nrm * across
        zones.append((_rect(c[0], c[1], w, h, ang + rng.uniform(-0.2, 0.2)).intersection(
            city.buffer(250.0)), 601))
    # parks and riverside green
    zones.append((city.intersection(main.line.buffer(230.0)), 810))
    for _ in range(6):
        a, d = rng.uniform(0, 2 * np.pi), rng.uniform(300, 2300)
        c = city_xy + d * np.array([math.cos(a), math.sin(a)])
        zones.append((_blob(c[0], c[1], rng.uniform(120, 320), rng), 810))
    return zones


def _city_growth(city: shapely.Polygon, city_xy: np.ndarray, main: _River,
                 rng: np.random.Generator) -> list[tuple[shapely.Geometry, int]]:
    j = int(cKDTree(main.xy).query(city_xy)[1])
    tang = main.xy[min(j + 20, len(main.xy) - 1)] - main.xy[max(j - 20, 0)]
    ang = math.atan2(tang[1], tang[0])
    u = np.array([math.cos(ang), math.sin(ang)])
    nrm = np.array([-u[1], u[0]])
    out: list[tuple[shapely.Geometry, int]] = []
    # a new residential district with its park, on the plain side (north-west)
    c = city_xy + nrm * 3600.0 + u * 600.0
    district = _blob(c[0], c[1], 1350.0, rng, stretch=1.3, angle=ang, rough=0.12)
    out.append((district.difference(city), 701))
    out.append((_blob(c[0], c[1], 380.0, rng), 810))
    # a new industrial park down the valley
    c = city_xy + u * 4300.0 - nrm * 1300.0
    out.append((_rect(c[0], c[1], 2200.0, 1300.0, ang + 0.15).difference(city), 601))
    # infill on the city edge
    c = city_xy - u * 3300.0 - nrm * 1500.0
    out.append((_blob(c[0], c[1], 800.0, rng).difference(city), 701))
    return out


def _make_quarries(county: shapely.Polygon, fn: dict[str, _LatticeFn],
                   reservoirs: shapely.Geometry, rng: np.random.Generator
                   ) -> list[shapely.Geometry]:
    w, s, e, n = county.bounds
    out: list[shapely.Geometry] = []
    inner = county.buffer(-500.0)
    while len(out) < 9:
        p = np.array([rng.uniform(w, e), rng.uniform(s, n)])
        if not inner.contains(shapely.Point(p)) or reservoirs.distance(shapely.Point(p)) < 800:
            continue
        if fn["slope"](p[0], p[1]) > 8.0 and fn["H"](p[0], p[1]) > 0.3:
            out.append(_blob(p[0], p[1], rng.uniform(130, 280), rng, rough=0.3))
    return out


def _make_roads(county: shapely.Polygon, settlements: gpd.GeoDataFrame, city_xy: np.ndarray,
                rivers: list[_River], reservoirs: shapely.Geometry, rng: np.random.Generator,
                crs: str) -> gpd.GeoDataFrame:
    avoid = reservoirs.buffer(150.0)
    shapely.prepare(avoid)
    pts = np.array([[g.x, g.y] for g in settlements.geometry])
    kinds = settlements["kind"].to_numpy()
    roles = settlements["role"].to_numpy()
    rows: list[dict[str, Any]] = []

    def add(line: shapely.LineString, cls: str, code: int, year: int, name: str = "") -> None:
        rows.append({"class": cls, "code": code, "year_built": year, "name": name,
                     "geometry": line})

    # expressway along the Huifa valley (existing) and a new one across the plains (2021-2025)
    axis = rivers[0].axis
    off = axis - _normals(axis) * 1300.0  # on the north-west bank
    exp_line = shapely.LineString(off).intersection(county.buffer(3000.0))
    if exp_line.intersects(avoid):
        exp_line = exp_line.difference(avoid)
    add(exp_line, "expressway", 1003, 2010, "沈吉高速 (synthetic alignment)")
    new_exp = _to_xy([(125.74, 42.585), (125.73, 42.66), (125.76, 42.74), (125.80, 42.83),
                      (125.79, 42.93), (125.77, 43.03)], crs)
    new_exp[0] = city_xy + np.array([800.0, 3200.0])
    add(shapely.LineString(_catmull_rom(new_exp, 150.0)), "expressway", 1003, 2023,
        "新建高速 (synthetic, opened 2023)")
    # main roads: a tree from the city out to every township seat, plus some cross links
    seats = np.nonzero(kinds == "town")[0]
    edges: set[tuple[int, int]] = set()
    dist = np.hypot(*(pts[:, None, :] - pts[None, :, :]).transpose(2, 0, 1))
    connected = [0]
    for i in sorted(seats[1:], key=lambda j: dist[0, j]):
        for j in sorted(connected, key=lambda c: dist[i, c] + 0.35 * dist[c, 0]):
            line = _road_line(pts[i], pts[j], rng)
            if not line.intersects(avoid):
                edges.add((min(i, j), max(i, j)))
                add(line, "main", 1003, 2000)
                break
        connected.append(i)
    for i in seats[1:]:
        j = min((c for c in seats if c != i and (min(i, c), max(i, c)) not in edges),
                key=lambda c: dist[i, c])
        line = _road_line(pts[i], pts[j], rng)
        if rng.uniform() < 0.4 and not line.intersects(avoid):
            edges.add((min(i, j), max(i, j)))
            add(line, "main", 1003, 2000)
    # a new trunk road (2021-2025) from the city to the most remote seat in the east hills
    far = max(seats[1:], key=lambda j: dist[0, j] if pts[j][0] > city_xy[0] else 0.0)
    mid = (pts[0] + pts[far]) / 2 + rng.normal(0, 1200.0, 2)
    line = shapely.LineString(_catmull_rom(np.array([pts[0], mid, pts[far]]), 150.0))
    if not line.intersects(avoid):
        add(line, "main", 1003, 2024, "新建干线公路 (synthetic, opened 2024)")
    # rural roads: minimum spanning tree over villages and seats (k nearest, no reservoir)
    tree = cKDTree(pts)
    dd, nn = tree.query(pts, k=min(7, len(pts)))
    ii, jj, ww = [], [], []
    lines: dict[tuple[int, int], shapely.LineString] = {}
    for i in range(len(pts)):
        for d, j in zip(dd[i, 1:], nn[i, 1:], strict=True):
            a, b = min(i, int(j)), max(i, int(j))
            if (a, b) in lines or (a, b) in edges:
                continue
            line = _road_line(pts[a], pts[b], rng, amp=0.06)
            if line.intersects(avoid):
                continue
            lines[(a, b)] = line
            ii.append(a)
            jj.append(b)
            ww.append(d)
    mst = minimum_spanning_tree(coo_matrix((ww, (ii, jj)), shape=(len(pts), len(pts)))).tocoo()
    chosen = set(zip(mst.row.tolist(), mst.col.tolist(), strict=True))
    extra = [k for k in lines if k not in chosen and roles[k[0]] == "village"]
    rng.shuffle(extra)
    chosen |= set(extra[: len(extra) // 5])
    new_rural = set(extra[len(extra) // 5: len(extra) // 5 + 14])
    for k in sorted(chosen):
        a, b = (k if k in lines else (min(k), max(k)))
        if (a, b) in lines:
            add(lines[(a, b)], "rural", 1006, 2005)
    for k in sorted(new_rural):
        add(lines[k], "rural", 1006, 2022)
    gdf = gpd.GeoDataFrame(rows, crs=crs)
    gdf["geometry"] = gdf.geometry.intersection(county.buffer(2000.0))
    gdf = gdf[~gdf.geometry.is_empty].reset_index(drop=True)
    gdf.insert(0, "road_id", [f"R{i:04d}" for i in range(len(gdf))])
    return gdf


def _make_townships(county: shapely.Polygon, settlements: gpd.GeoDataFrame,
                    rng: np.random.Generator, crs: str) -> gpd.GeoDataFrame:
    seats = settlements[settlements["kind"] == "town"]
    pts = np.array([[g.x, g.y] for g in seats.geometry])
    env = county.buffer(30000.0).envelope
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=env))
    own = [int(np.argmax([c.contains(shapely.Point(p)) for c in cells])) for p in pts]
    cells = [cells[k].intersection(env) for k in own]
    # warp the straight Voronoi edges with a smooth displacement (same map for every polygon)
    waves = [(rng.uniform(0, 2 * np.pi, 4), rng.uniform(9000, 16000, 4)) for _ in range(2)]

    def warp(c: np.ndarray) -> np.ndarray:
        out = c.copy()
        for k, (ph, wl) in enumerate(waves):
            other = c[:, 1 - k]
            out[:, k] += sum(1100.0 / (m + 1) * np.sin(2 * np.pi * other / wl[m] + ph[m])
                             for m in range(4))
        return out

    warped = [shapely.set_precision(shapely.transform(shapely.segmentize(c, 250.0), warp), 0.01)
              for c in cells]
    pieces = [shapely.intersection(c, county, grid_size=0.01) for c in warped]
    # reattach stray fragments to the neighbour sharing the longest border
    keep = []
    strays: list[shapely.Geometry] = []
    for g in pieces:
        parts = sorted(shapely.get_parts(g), key=lambda p: p.area, reverse=True)
        keep.append(parts[0] if parts else shapely.Polygon())
        strays.extend(parts[1:])
    for frag in strays:
        shared = [shapely.length(shapely.intersection(frag.boundary, k.boundary,
                                                      grid_size=0.01)) for k in keep]
        j = int(np.argmax(shared))
        keep[j] = shapely.union(keep[j], frag, grid_size=0.01)
    rows = []
    for i, ((zh, pyn, _, _), geom) in enumerate(zip(_TOWNSHIPS, keep, strict=True)):
        code = "220581001" if i == 0 else f"220581{100 + i:03d}"
        rows.append({"code": code, "name_zh": zh, "name_pinyin": pyn,
                     "kind": "subdistrict group" if i == 0 else "town",
                     "note": "synthetic boundary (warped Voronoi of seats); not official",
                     "geometry": geom})
    return gpd.GeoDataFrame(rows, crs=crs)


def _make_zones(county: shapely.Polygon, rng: np.random.Generator, main: _River
                ) -> tuple[np.ndarray, tuple[float, float], dict[str, np.ndarray]]:
    w, s, e, n = county.bounds
    x0, y0 = math.floor(w / _ZONE) * _ZONE - _ZONE, math.floor(s / _ZONE) * _ZONE - _ZONE
    nc = math.ceil((e - x0) / _ZONE) + 2
    nr = math.ceil((n - y0) / _ZONE) + 2
    jit = rng.uniform(-0.38, 0.38, size=(nr, nc, 2))
    cc, rr = np.meshgrid(np.arange(nc), np.arange(nr))
    seeds = np.stack([x0 + (cc + 0.5 + jit[..., 0]) * _ZONE,
                      y0 + (rr + 0.5 + jit[..., 1]) * _ZONE], axis=-1)
    nz = nr * nc
    # fields tend to be aligned with the valley; some zones are cross-cut
    j = cKDTree(main.xy).query(seeds.reshape(-1, 2))[1]
    tang = np.gradient(main.xy, axis=0)[j]
    base = np.arctan2(tang[:, 1], tang[:, 0])
    theta = base + rng.normal(0, 0.22, nz) + np.where(rng.uniform(size=nz) < 0.3, np.pi / 2, 0)
    params = {
        "theta": theta,
        "a": rng.uniform(85.0, 170.0, nz),    # field width (m)
        "b": rng.uniform(170.0, 320.0, nz),   # field length (m)
        "pu": rng.uniform(0, 1, nz),
        "pv": rng.uniform(0, 1, nz),
    }
    params["cos"], params["sin"] = np.cos(theta), np.sin(theta)
    return seeds, (x0, y0), params


# ----------------------------------------------------------------------------------------------
# parcels and forest inventory


def _parcel_candidates(model: CountyModel) -> gpd.GeoDataFrame:
    """Whole fields that lie inside their zone and the county, and look like cropland.

    Fields are found by sampling a 50 m lattice (every field is wider than that), so the
    candidates do not depend on the output resolution."""
    geo = model.geo
    p = geo.zone_params
    seeds = geo.zone_seeds.reshape(-1, 2)
    inner = geo.county.buffer(-100.0)
    g50 = GridSpec.from_bounds(inner.bounds, 50.0, geo.crs)
    rr, cc = np.nonzero(rasterio.features.rasterize([(inner, 1)], out_shape=g50.shape,
                                                    transform=g50.transform, dtype=np.uint8))
    xy = g50.coords()
    x, y = xy["x"][cc], xy["y"][rr]
    fs, nA = model._sample(x, y, "fs", "nA")
    crop_like = model._forest_score(fs, nA) < -0.6
    keys = np.unique(model._field_keys(x[crop_like], y[crop_like])["key"])
    zone = (keys >> 24).astype(np.intp)
    iu = ((keys >> 12) & 0xFFF) - 2048
    iv = (keys & 0xFFF) - 2048
    a, b, th = p["a"][zone], p["b"][zone], p["theta"][zone]
    ct, st = np.cos(th), np.sin(th)
    corners = []
    ok = np.ones(len(keys), dtype=bool)
    for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
        # shrunk by 2 m so that neighbouring parcels do not touch
        u = (iu + du - p["pu"][zone]) * a + (2.0 if du == 0 else -2.0)
        v = (iv + dv - p["pv"][zone]) * b + (2.0 if dv == 0 else -2.0)
        c = np.c_[seeds[zone, 0] + u * ct - v * st, seeds[zone, 1] + u * st + v * ct]
        ok &= _nearest_zone(geo, c[:, 0], c[:, 1]) == zone
        ok &= shapely.contains_xy(inner, c[:, 0], c[:, 1])
        corners.append(c)
    sel = np.nonzero(ok)[0]
    ring = np.stack([c[sel] for c in corners] + [corners[0][sel]], axis=1)
    return gpd.GeoDataFrame({"field_key": keys[sel]}, geometry=shapely.polygons(ring),
                            crs=geo.crs)


def _forest_inventory(model: CountyModel, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """小班 polygons from a 100 m evaluation of the 2020 forest, split by a Voronoi of seeds."""
    geo = model.geo
    g100 = GridSpec.from_bounds(geo.county.bounds, 100.0, geo.crs)
    coarse = model.with_grid(g100)
    lc = np.zeros(g100.shape, dtype=np.uint16)
    for win in g100.blocks():
        r0, c0 = int(win.row_off), int(win.col_off)
        lc[r0:r0 + int(win.height), c0:c0 + int(win.width)] = coarse.landcover(2020, win)
    forest = np.isin(lc, FOREST_CODES)
    xs, ys = g100.coords()["x"], g100.coords()["y"]
    w, s, e, n = geo.county.bounds
    n_seed = int(geo.county.area / 1e4 / 14.0)
    sp = np.c_[rng.uniform(w, e, n_seed), rng.uniform(s, n, n_seed)]
    # linban (林班): coarser groups of xiaoban
    n_lin = max(n_seed // 35, 1)
    lin_pts = np.c_[rng.uniform(w, e, n_lin), rng.uniform(s, n, n_lin)]
    lin_of_seed = cKDTree(lin_pts).query(sp)[1]
    XX, YY = np.meshgrid(xs, ys)
    lab = cKDTree(sp).query(np.c_[XX.ravel(), YY.ravel()])[1].reshape(g100.shape) + 1
    lab = np.where(forest, lab, 0).astype(np.int32)
    # drop whole linban (uninventoried collective forest) and a few single xiaoban
    drop_lin = rng.uniform(size=n_lin) < 0.14
    drop_seed = drop_lin[lin_of_seed] | (rng.uniform(size=n_seed) < 0.05)
    lab[(lab > 0) & drop_seed[np.maximum(lab - 1, 0)]] = 0
    geoms, ids = [], []
    for g, v in rasterio.features.shapes(lab, mask=lab > 0, transform=g100.transform,
                                         connectivity=4):
        geoms.append(shapely.geometry.shape(g))
        ids.append(int(v) - 1)
    geoms_a = np.array(geoms, dtype=object)
    simp = shapely.coverage_simplify(geoms_a, tolerance=60.0)
    simp = shapely.intersection(simp, geo.county, grid_size=0.01)
    gdf = gpd.GeoDataFrame({"seed": ids}, geometry=simp, crs=geo.crs)
    gdf = gdf[~gdf.geometry.is_empty & (gdf.geometry.area >= 2e4)].reset_index(drop=True)
    gdf["geometry"] = gdf.geometry.make_valid()
    gdf = gdf[gdf.geom_type.isin(["Polygon", "MultiPolygon"])].reset_index(drop=True)
    rep = gdf.geometry.representative_point()
    rx, ry = rep.x.to_numpy(), rep.y.to_numpy()
    z, sl = model._sample(rx, ry, "z", "slope")
    u = _u01(geo.seed, np.arange(len(gdf)), 31)
    species = np.zeros(len(gdf), dtype=int)
    for i in range(len(gdf)):
        if z[i] > 720:
            probs = (0.15, 0.25, 0.20, 0.15, 0.0, 0.25)
        elif z[i] > 430:
            probs = (0.33 if sl[i] > 10 else 0.2, 0.3, 0.22, 0.08, 0.02, 0.08)
        else:
            probs = (0.2, 0.22, 0.25, 0.03, 0.30, 0.0)
        cp = np.cumsum(probs) / sum(probs)
        species[i] = int(np.searchsorted(cp, u[i], side="right"))
    species = np.minimum(species, len(_FOREST_SPECIES) - 1)
    sp_zh = [_FOREST_SPECIES[k][0] for k in species]
    sp_en = [_FOREST_SPECIES[k][1] for k in species]
    planted = _u01(geo.seed, np.arange(len(gdf)), 32) < np.array(
        [_FOREST_SPECIES[k][2] for k in species])
    ua = _u01(geo.seed, np.arange(len(gdf)), 33)
    age = np.where(planted,
                   np.where(species == 4, 4 + 22 * ua, 6 + 38 * ua),
                   25 + 50 * ua).round().astype(int)
    vmax = np.array([_FOREST_SPECIES[k][3] for k in species])
    kk = np.array([_FOREST_SPECIES[k][4] for k in species])
    noise = 0.85 + 0.3 * _u01(geo.seed, np.arange(len(gdf)), 34)
    vol = np.clip(vmax * (1 - np.exp(-kk * age)) ** 3 * noise, 8.0, 320.0).round(1)
    tw = _township_of(geo.townships, rx, ry)
    lin = lin_of_seed[gdf["seed"].to_numpy()]
    gdf = gpd.GeoDataFrame({
        "xiaoban_id": [f"{geo.townships['code'].iloc[t][-3:]}-{lb:03d}-{i:05d}"
                       for i, (t, lb) in enumerate(zip(tw, lin, strict=True))],
        "township": geo.townships["name_zh"].to_numpy()[tw],
        "linban": lin.astype(int),
        "species_group": sp_zh,
        "species_en": sp_en,
        "origin": np.where(planted, "plantation", "natural"),
        "age_yr": age,
        "volume_m3_per_ha": vol,
        "area_ha": (gdf.geometry.area / 1e4).round(2),
        "note": "synthetic",
    }, geometry=gdf.geometry.to_numpy(), crs=geo.crs)
    return gdf


def _township_of(townships: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Index of the township containing each point (nearest one for points on no polygon)."""
    out = np.full(len(x), -1, dtype=np.intp)
    for i, g in enumerate(townships.geometry):
        shapely.prepare(g)
        out[(out < 0) & shapely.contains_xy(g, x, y)] = i
    miss = np.nonzero(out < 0)[0]
    if len(miss):
        pts = shapely.points(x[miss], y[miss])
        d = np.stack([shapely.distance(g, pts) for g in townships.geometry])
        out[miss] = np.argmin(d, axis=0)
    return out


# ----------------------------------------------------------------------------------------------
# the generator


def _ordered_parallel(fn: Callable[[Window], Any], items: list[Window],
                      workers: int) -> Iterator[tuple[Window, Any]]:
    """``fn`` over ``items`` on a small thread pool, results in order, bounded in flight."""
    if workers <= 1:
        for it in items:
            yield it, fn(it)
        return
    with ThreadPoolExecutor(max_workers=workers) as ex:
        pending: list[tuple[Window, Future]] = []
        it = iter(items)
        for item in it:
            pending.append((item, ex.submit(fn, item)))
            if len(pending) >= 2 * workers:
                break
        while pending:
            item, fut = pending.pop(0)
            res = fut.result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, ex.submit(fn, nxt)))
            yield item, res


def generate_county(out_dir: Path, *, resolution_m: float = 30.0, seed: int = 2020,
                    progress: Progress | None = None) -> DemoCounty:
    """Generate the synthetic demo county into ``out_dir/inputs/`` (and ``out_dir/truth/``).

    Writes, all in EPSG:4551 (CGCS2000 / 3-degree Gauss-Krüger CM 126E):
    ``boundary.gpkg``, ``dem.tif`` (float32 m), ``landcover_2020.tif`` and
    ``landcover_2025.tif`` (uint16 三调 codes, nodata 0), ``townships.gpkg``, ``rivers.gpkg``,
    ``reservoirs.gpkg``, ``roads.gpkg``, ``settlements.gpkg``, ``parcels.gpkg``,
    ``forest_inventory.gpkg``; and ``out_dir/truth/truth.json`` (the known truth, kept out of
    ``inputs/`` so that a pipeline reading the inputs cannot see it).

    Deterministic for ``seed`` and ``resolution_m``. Rasters are computed window by window
    (1024 x 1024), so memory stays bounded at any resolution. ``progress(step, i, n)`` is called
    as work advances: ``step`` names the current step, ``i`` of ``n`` units are done.
    """
    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    inputs = out_dir / "inputs"
    truth_dir = out_dir / "truth"
    inputs.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def tick(step: str, i: int, n: int) -> None:
        if progress is not None:
            progress(step, i, n)

    t0 = time.perf_counter()
    tick("model", 0, 1)
    model = CountyModel.build(seed, resolution_m)
    geo, grid = model.geo, model.grid
    tick("model", 1, 1)
    timings["model"] = time.perf_counter() - t0
    log.info("demo county grid: %s", grid.describe())
    workers = max(1, min(2, os.cpu_count() or 1))

    # -- vectors ---------------------------------------------------------------------------------
    t0 = time.perf_counter()
    paths = {k: inputs / f"{k}.gpkg" for k in
             ("boundary", "townships", "rivers", "reservoirs", "roads", "settlements", "parcels",
              "forest_inventory")}
    tick("vectors", 0, 6)
    boundary = gpd.GeoDataFrame(
        {"name_zh": ["梅河口市"], "name_pinyin": ["Meihekou Shi"], "adcode": ["220581"],
         "source": ["Tianditu outline via sinkmap_data (real); projected to EPSG:4551"]},
        geometry=[geo.county], crs=geo.crs)
    write_vector(boundary, paths["boundary"])
    write_vector(geo.townships, paths["townships"])
    tick("vectors", 2, 6)
    rivers = gpd.GeoDataFrame(
        {"name": [r.name for r in geo.rivers], "name_pinyin": [r.pinyin for r in geo.rivers],
         "kind": ["main"] + ["tributary"] * (len(geo.rivers) - 1),
         "width_m": [r.width for r in geo.rivers], "note": "synthetic course"},
        geometry=[r.line.intersection(geo.county.buffer(500.0)) for r in geo.rivers],
        crs=geo.crs)
    write_vector(rivers, paths["rivers"])
    res_out = geo.reservoirs.copy()
    res_out["note"] = "synthetic reservoir (name borrowed, shape and position invented)"
    write_vector(res_out, paths["reservoirs"])
    tick("vectors", 4, 6)
    roads = geo.roads.copy()
    roads["geometry"] = roads.geometry.intersection(geo.county)
    roads = roads[~roads.geometry.is_empty].reset_index(drop=True)
    roads["note"] = "synthetic"
    write_vector(roads, paths["roads"])
    sett = geo.settlements.copy()
    tw = _township_of(geo.townships, sett.geometry.x.to_numpy(), sett.geometry.y.to_numpy())
    sett["township"] = geo.townships["name_zh"].to_numpy()[tw]
    sett["note"] = "synthetic"
    write_vector(sett, paths["settlements"])
    tick("vectors", 6, 6)
    timings["vectors"] = time.perf_counter() - t0

    # -- rasters: DEM and land cover in one pass, with tallies, parcel and inventory coverage --
    # Windows are evaluated on a small thread pool and written to uncompressed staging GeoTIFFs
    # (outside any GDAL environment: an Env that sets GDAL_CACHEMAX, as write_cog does, makes
    # rasterio's rasterize about ten times slower in every thread); write_cog then streams each
    # staged raster into a COG.
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0xF0E57])
    inventory = _forest_inventory(model, rng)
    inv_index = _ShapeIndex([(g, 1) for g in inventory.geometry])
    cands = _parcel_candidates(model)
    cand_index = _ShapeIndex([(g, i + 1) for i, g in enumerate(cands.geometry)])
    timings["prepare_parcels_inventory"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    nc = len(cands) + 1
    tally = {
        "hist2020": np.zeros(1300, dtype=np.int64), "hist2025": np.zeros(1300, dtype=np.int64),
        "cand_px": np.zeros(nc, dtype=np.int64), "cand_crop20": np.zeros(nc, dtype=np.int64),
        "cand_crop25": np.zeros(nc, dtype=np.int64), "forest_px": 0, "forest_inv_px": 0,
        "trans": np.zeros(len(TRANSITION_TYPES) + 1, dtype=np.int64),
    }
    pairs: dict[tuple[int, int, int], int] = {}

    def lc_window(win: Window) -> dict[str, Any]:
        r = model._evaluate(win)
        r["dem"] = model.elevation(win)
        t = grid.window_transform(win)
        shape = r["lc2020"].shape
        r["cand"] = cand_index.rasterize(t, shape, np.int32)
        r["inv"] = inv_index.rasterize(t, shape, np.uint8)
        return r

    windows = list(grid.blocks(DEFAULT_CHUNK))
    stage = {k: inputs / f".{k}.stage.tif" for k in ("dem", "landcover_2020", "landcover_2025")}
    profile = {"driver": "GTiff", "height": grid.height, "width": grid.width, "count": 1,
               "dtype": "uint16", "crs": grid.crs.to_wkt(), "transform": grid.transform,
               "nodata": 0, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "BIGTIFF": "IF_SAFER"}
    dem_profile = profile | {"dtype": "float32", "nodata": -9999.0}
    try:
        with rasterio.open(stage["dem"], "w", **dem_profile) as dz, \
                rasterio.open(stage["landcover_2020"], "w", **profile) as d20, \
                rasterio.open(stage["landcover_2025"], "w", **profile) as d25:
            for i, (win, r) in enumerate(_ordered_parallel(lc_window, windows, workers)):
                a, b = r["lc2020"], r["lc2025"]
                dz.write(r["dem"], 1, window=win)
                d20.write(a, 1, window=win)
                d25.write(b, 1, window=win)
                tally["hist2020"] += np.bincount(a.ravel(), minlength=1300)
                tally["hist2025"] += np.bincount(b.ravel(), minlength=1300)
                tt = transition_type(a, b)
                tally["trans"] += np.bincount(tt.ravel(), minlength=len(TRANSITION_TYPES) + 1)
                ch = tt > 0
                if ch.any():
                    trip = (tt[ch].astype(np.int64) * 10**8 + a[ch].astype(np.int64) * 10**4
                            + b[ch])
                    uq, cnt = np.unique(trip, return_counts=True)
                    for q, c in zip(uq.tolist(), cnt.tolist(), strict=True):
                        k = (q // 10**8, (q // 10**4) % 10**4, q % 10**4)
                        pairs[k] = pairs.get(k, 0) + c
                cand = r["cand"].ravel()
                tally["cand_px"] += np.bincount(cand, minlength=nc)
                tally["cand_crop20"] += np.bincount(
                    cand, weights=np.isin(a, CROPLAND_CODES).ravel(), minlength=nc).astype(np.int64)
                tally["cand_crop25"] += np.bincount(
                    cand, weights=np.isin(b, CROPLAND_CODES).ravel(), minlength=nc).astype(np.int64)
                fmask = np.isin(a, FOREST_CODES)
                tally["forest_px"] += int(fmask.sum())
                tally["forest_inv_px"] += int((fmask & (r["inv"] > 0)).sum())
                tick("rasters", i + 1, len(windows))
        timings["raster_eval"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        out_paths = {}
        for k in stage:
            cat = k != "dem"
            src = read_raster(stage[k], kind="categorical" if cat else "continuous",
                              units="class" if cat else "m")
            src.name = k
            src.attrs["note"] = SYNTHETIC_NOTE
            out_paths[k] = write_cog(src, inputs / f"{k}.tif",
                                     progress=lambda i, n, k=k: tick(f"cog_{k}", i, n))
    finally:
        for p in stage.values():
            p.unlink(missing_ok=True)
            p.with_name(p.name + ".aux.xml").unlink(missing_ok=True)
    timings["raster_cog"] = time.perf_counter() - t0

    # -- parcels -----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    tick("parcels", 0, 1)
    px = tally["cand_px"][1:]
    frac20 = np.divide(tally["cand_crop20"][1:], px, out=np.zeros(len(px)), where=px > 0)
    frac25 = np.divide(tally["cand_crop25"][1:], px, out=np.zeros(len(px)), where=px > 0)
    good = np.nonzero((px > 0) & (frac20 >= 0.95))[0]
    keys = cands["field_key"].to_numpy()[good]
    order = np.argsort(_u01(seed, keys, 41), kind="stable")
    n_parcels = min(len(good), 3500)
    pick = np.sort(good[order[:n_parcels]])
    parcels, parcel_truth = _make_parcels(model, cands.iloc[pick], frac20[pick], frac25[pick])
    write_vector(parcels, paths["parcels"])
    tick("parcels", 1, 1)
    timings["parcels"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    write_vector(inventory, paths["forest_inventory"])
    timings["forest_inventory"] = time.perf_counter() - t0

    # -- truth ------------------------------------------------------------------------------
    px_ha = grid.pixel_area_m2 / 1e4
    trans = {}
    for k, name in enumerate(TRANSITION_TYPES, start=1):
        sub_pairs = {f"{a}->{b}": round(c * px_ha, 2) for (t, a, b), c in sorted(pairs.items())
                     if t == k}
        trans[name] = {"area_ha": round(int(tally["trans"][k]) * px_ha, 2),
                       "cells": int(tally["trans"][k]), "from_to_ha": sub_pairs}
    county_cells = int(tally["hist2020"][1:].sum())
    truth = {
        "synthetic": True,
        "statement": SYNTHETIC_NOTE + " Township boundaries, rivers, reservoirs, settlements, "
                     "roads, land cover, parcels and the forest inventory are all invented.",
        "generator": "sinkmap.demo_county", "seed": seed, "resolution_m": resolution_m,
        "crs": geo.crs, "grid": {"transform": list(grid.transform)[:6], "shape": list(grid.shape)},
        "county_area_ha": round(geo.county.area / 1e4, 2),
        "county_cells": county_cells, "cell_area_ha": px_ha,
        "class_area_ha": {
            str(y): {str(c): round(int(tally[f"hist{y}"][c]) * px_ha, 2) for c in CODES
                     if tally[f"hist{y}"][c] > 0} for y in (2020, 2025)},
        "transitions": trans,
        "parcels": parcel_truth,
        "forest_inventory": {
            "n_xiaoban": len(inventory),
            "forest_cells_2020": int(tally["forest_px"]),
            "covered_forest_cells_2020": int(tally["forest_inv_px"]),
            "coverage_of_forest_cells": round(tally["forest_inv_px"] / max(tally["forest_px"], 1),
                                              4),
        },
        "reservoirs": [{k: row[k] for k in ("name", "level_m", "capacity_mcm")}
                       | {"area_ha": round(row.geometry.area / 1e4, 1)}
                       for _, row in geo.reservoirs.iterrows()],
        "city_centre_xy": [round(float(v), 2) for v in geo.city_xy],
        "field_truth_rule": "crop, true practice and residue cover of every field are "
                            "CountyModel.field_attributes(field_key, lc2020)",
    }
    truth_path = truth_dir / "truth.json"
    tmp = truth_path.with_name(".truth.json.partial")
    tmp.write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, truth_path)
    timings["total"] = time.perf_counter() - t_start
    log.info("demo county generated in %.1f s: %s", timings["total"],
             ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    tick("done", 1, 1)
    return DemoCounty(
        grid=grid, seed=seed, resolution_m=float(resolution_m), inputs_dir=inputs,
        boundary=paths["boundary"], dem=out_paths["dem"],
        landcover_2020=out_paths["landcover_2020"], landcover_2025=out_paths["landcover_2025"],
        townships=paths["townships"], rivers=paths["rivers"], reservoirs=paths["reservoirs"],
        roads=paths["roads"], settlements=paths["settlements"],
        parcels=paths["parcels"], forest_inventory=paths["forest_inventory"], truth=truth_path)


def _make_parcels(model: CountyModel, cands: gpd.GeoDataFrame, frac20: np.ndarray,
                  frac25: np.ndarray) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    geo = model.geo
    seed = geo.seed
    keys = cands["field_key"].to_numpy()
    cen = cands.geometry.centroid
    cx, cy = cen.x.to_numpy(), cen.y.to_numpy()
    # the field's 2020 class at its centre decides paddy vs dry (the same per-field rule)
    lc_c, _ = model.field_class(keys)
    attrs = model.field_attributes(keys, lc_c)
    crop = np.array([_CROP_CODES[int(c)] for c in attrs["crop"]])
    cons = attrs["conservation"]
    u = _u01(seed, keys, 51)
    declared_cons = np.where(cons, u < 0.96, u < 0.14)  # over-declaration for the subsidy
    area_m2 = cands.geometry.area.to_numpy()
    mu = area_m2 / MU_M2
    e1, e2, e3 = _u01(seed, keys, 52), _u01(seed, keys, 53), _u01(seed, keys, 54)
    noise = (e1 + e2 - 1.0) * 0.08                        # about +-4 %
    noise = np.where(e3 < 0.04, noise + 0.25 * (e3 / 0.04 - 0.3), noise)  # a few gross errors
    decl = mu * (1.0 + noise)
    decl = np.where(_u01(seed, keys, 55) < 0.35, np.round(decl), np.round(decl, 1))
    tw = _township_of(geo.townships, cx, cy)
    pid = [f"P{int(k):013d}" for k in keys]
    parcels = gpd.GeoDataFrame({
        "parcel_id": pid,
        "township": geo.townships["name_zh"].to_numpy()[tw],
        "declared_practice": np.where(declared_cons, "conservation", "conventional"),
        "declared_area_mu": decl.astype(float),
        "crop": crop,
        "note": "synthetic",
    }, geometry=cands.geometry.to_numpy(), crs=geo.crs)
    truth = [{
        "parcel_id": pid[i], "field_key": int(keys[i]), "crop": str(crop[i]),
        "true_practice": "conservation" if cons[i] else "conventional",
        "declared_practice": str(parcels["declared_practice"].iloc[i]),
        "residue_cover_pct": float(attrs["residue_pct"][i]),
        "true_area_mu": round(float(mu[i]), 3),
        "cropland_fraction_2020": round(float(frac20[i]), 3),
        "cropland_fraction_2025": round(float(frac25[i]), 3),
    } for i in range(len(keys))]
    return parcels, truth


__all__ = [
    "BUILT_CODES", "CODES", "CROPLAND_CODES", "FOREST_CODES", "MU_M2", "OTHER_CODES",
    "SYNTHETIC_NOTE", "TRANSITION_TYPES", "WATER_CODES", "WETLAND_CODES", "CountyModel",
    "DemoCounty", "generate_county", "load_outline", "transition_type",
]
