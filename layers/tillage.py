"""Conservation-tillage verification: residue cover from a spring minimum-NDTI composite, judged
parcel by parcel with its evidence.

The method (``../shared/methods.md`` section 3; Zheng et al. 2012, RSE 117:177):

1. every date in the post-planting window (default 1 April - 31 May) gives NDTI =
   (SWIR1 - SWIR2) / (SWIR1 + SWIR2) on the pixels that are *usable*: imagery present, not
   cloud / shadow / snow / water (SCL or QA_PIXEL), and not green (NDVI <= ``ndvi_max``, 0.3 by
   default: green vegetation hides the residue signal);
2. the per-pixel **minimum** NDTI over the usable dates (minNDTI) is the composite: tillage and
   wet soil only lower NDTI, so the minimum is the date that best shows the bare surface after
   planting;
3. residue cover % = a + b x NDTI (:class:`ResidueModel`; default coefficients from
   ``data/tables/residue_model.csv`` with their source, or calibrated by least squares on field
   samples, :func:`calibrate`);
4. per parcel (:func:`parcel_evidence`, from rasterised parcels, never a Python loop over parcels):
   pixel count, pixels with imagery, usable pixels, share observed, NDTI and residue percentiles,
   the dates that contributed; then :func:`decide`: **confirmed** when the median residue cover
   is at least the threshold (30 %, FAO/CTIC), **not confirmed** below it, **undetermined** (with
   the reason) when the parcel is too small, not covered, or too little of it was seen.

Rasters are DataArrays on one analysis grid (CRS via rioxarray); parcels are GeoDataFrames that
must already be in the grid's CRS (the application layer reprojects them and says so).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import xarray as xr
from rasterio.windows import Window

from gis.crs import crs_key, crs_label
from gis.errors import CoefficientError, CRSMismatchError, InputError, SinkmapError
from gis.grid import DEFAULT_CHUNK, GridSpec, make_raster
from gis.resources import packaged

log = logging.getLogger(__name__)

CONSERVATION = "conservation"
CONVENTIONAL = "conventional"
CLASSES = (CONSERVATION, CONVENTIONAL)
STATUSES = ("confirmed", "not_confirmed", "undetermined")
PERCENTILES = (10, 25, 50, 75, 90)
MAX_DATES = 32  # dates are tracked as bits of a uint32


# -- declared practice -------------------------------------------------------------------------

PRACTICE_WORDS: dict[str, str] = {
    **dict.fromkeys(("conservation", "conservation_tillage", "conservation tillage", "no_till",
                     "no-till", "notill", "no till", "reduced_till", "reduced-till",
                     "reduced till", "strip_till", "保护性耕作", "免耕", "少耕", "少免耕",
                     "免耕播种", "秸秆覆盖", "秸秆覆盖还田", "梨树模式"), CONSERVATION),
    **dict.fromkeys(("conventional", "conventional_tillage", "conventional tillage", "plough",
                     "plow", "ploughed", "常规耕作", "常规", "传统耕作", "翻耕", "旋耕"),
                    CONVENTIONAL),
}


def normalize_practice(values: Sequence[Any] | pd.Series, *, extra: Mapping[str, str] | None = None,
                       source: Any = None, column: str = "declared_practice") -> np.ndarray:
    """Declared practice -> ``conservation`` / ``conventional`` / ``None`` (blank: not declared).

    English and Chinese words are understood (:data:`PRACTICE_WORDS`, case-insensitive);
    ``extra`` maps further values. Any other value is an error that lists them with counts.
    """
    words = {k.lower(): v for k, v in PRACTICE_WORDS.items()}
    for k, v in (extra or {}).items():
        if v not in CLASSES:
            raise InputError(f"practice value {k!r} is mapped to {v!r}",
                             fix=f"map practice values to one of {list(CLASSES)}")
        words[str(k).strip().lower()] = v
    s = pd.Series(values, dtype=object)
    blank = s.isna() | (s.astype(str).str.strip() == "")
    key = s.astype(str).str.strip().str.lower()
    out = key.map(words)
    unknown = key[~blank & out.isna()]
    if len(unknown):
        counts = s[unknown.index].astype(str).value_counts()
        listing = ", ".join(f"{v!r} ({n})" for v, n in counts.head(20).items())
        raise InputError(
            f"column {column!r} has practice values that are neither conservation nor "
            f"conventional: {listing}", source=source,
            fix="map them in the project file ([tillage.practice_values] VALUE = "
                "\"conservation\" or \"conventional\") or with --practice VALUE=conservation")
    return np.where(blank.to_numpy(), None, out.to_numpy(dtype=object))


# -- the season window -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonWindow:
    """The post-planting window of one year (both ends included)."""

    start: date
    end: date

    @classmethod
    def of(cls, year: int, start: str = "04-01", end: str = "05-31") -> SeasonWindow:
        """``start``/``end`` as ``MM-DD``; 1 April - 31 May by default (NE China sowing is late
        April to mid May; the NDTI optimum is 20-30 May on the Songnen plain, Li et al. 2023)."""
        try:
            s = date.fromisoformat(f"{year:04d}-{start}")
            e = date.fromisoformat(f"{year:04d}-{end}")
        except ValueError as exc:
            raise InputError(f"bad season window {start!r} - {end!r} ({exc})",
                             fix="give the window as MM-DD, e.g. 04-01 and 05-31") from exc
        if e < s:
            raise InputError(f"season window ends ({e}) before it starts ({s})",
                             fix="swap the window ends")
        return cls(s, e)

    def __contains__(self, d: object) -> bool:
        return isinstance(d, date) and self.start <= d <= self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()} .. {self.end.isoformat()}"


# -- the residue model -------------------------------------------------------------------------

RESIDUE_TABLE = "residue_model.csv"
RESIDUE_COLUMNS = ("sensor", "a", "b", "units", "source", "verified")


@dataclass(frozen=True)
class ResidueModel:
    """Residue cover (%) = ``a`` + ``b`` x NDTI, with where the coefficients come from."""

    a: float
    b: float
    source: str
    calibrated: bool = False
    n: int | None = None
    r2: float | None = None
    rmse_pct: float | None = None
    loo_rmse_pct: float | None = None
    verified: bool = False

    def residue_pct(self, ndti: Any) -> Any:
        """Residue cover % of NDTI values (array, DataArray or float); not clipped to 0-100."""
        out = self.a + self.b * ndti
        if isinstance(out, xr.DataArray):
            out.attrs.update(units="pct", kind="continuous")
        return out

    def ndti_for(self, residue_pct: float) -> float:
        """The NDTI at which the model gives ``residue_pct`` (e.g. the 30 % threshold)."""
        return (residue_pct - self.a) / self.b

    def describe(self) -> str:
        fit = ""
        if self.calibrated:
            fit = (f" (least squares on {self.n} samples: R2 {self.r2:.3f}, "
                   f"RMSE {self.rmse_pct:.1f} %)")
        src = self.source if len(self.source) <= 90 else self.source[:87] + "..."
        return f"residue % = {self.a:.2f} + {self.b:.2f} x NDTI; {src}{fit}"

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "source": self.source, "calibrated": self.calibrated,
                "n": self.n, "r2": self.r2, "rmse_pct": self.rmse_pct,
                "loo_rmse_pct": self.loo_rmse_pct, "verified": self.verified,
                "formula": "residue_pct = a + b * NDTI"}


def load_residue_model(path: str | Path | None = None, *, sensor: str = "sentinel2_l2a"
                       ) -> ResidueModel:
    """The default residue model of ``sensor`` from the shipped table, or from ``path``.

    The table has one row per sensor with ``a``, ``b`` (residue % per NDTI unit), ``units``
    (``pct``), ``source`` and ``verified``; a missing sensor is an error listing the ones present.
    """
    p = Path(path) if path is not None else packaged("tables", RESIDUE_TABLE)
    try:
        t = pd.read_csv(p, comment="#", dtype={"sensor": str})
    except Exception as exc:
        raise CoefficientError(f"cannot read the residue model table ({exc})", source=p,
                               fix="give a CSV with columns " + ", ".join(RESIDUE_COLUMNS)) from exc
    missing = [c for c in RESIDUE_COLUMNS if c not in t.columns]
    if missing:
        raise CoefficientError(f"residue model table lacks columns {missing}", source=p,
                               fix="columns needed: " + ", ".join(RESIDUE_COLUMNS))
    rows = t[t["sensor"] == sensor]
    if rows.empty:
        raise CoefficientError(
            f"no residue model for sensor {sensor!r} (the table has {sorted(t['sensor'])})",
            source=p, fix=f"add a row for {sensor} or calibrate with field samples")
    r = rows.iloc[0]
    bad = [c for c in ("a", "b") if not np.isfinite(pd.to_numeric(r[c], errors="coerce"))]
    if bad or str(r["units"]).strip() != "pct":
        raise CoefficientError(
            f"row {sensor!r}: non-numeric {bad} or units {r['units']!r} != 'pct'", source=p,
            fix="give a and b as numbers for residue cover in percent")
    if float(r["b"]) == 0:
        raise CoefficientError(f"row {sensor!r}: slope b is 0", source=p,
                               fix="residue cover must depend on NDTI")
    return ResidueModel(float(r["a"]), float(r["b"]), str(r["source"]),
                        verified=str(r["verified"]).strip().lower() in ("yes", "true", "1"))


def calibrate(ndti: Sequence[float] | np.ndarray, residue_pct: Sequence[float] | np.ndarray, *,
              min_samples: int = 5, source: str = "field samples") -> ResidueModel:
    """Least-squares fit of residue % = a + b x NDTI on field samples.

    Samples with a missing NDTI (masked, outside the imagery) are dropped before the fit. Reports
    R2 and RMSE in-sample and the leave-one-out RMSE (PRESS), which is what a new field would see.
    """
    x = np.asarray(ndti, dtype=float)
    y = np.asarray(residue_pct, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    if n < max(min_samples, 3):
        raise InputError(f"only {n} field samples have a usable NDTI; calibration needs at least "
                         f"{max(min_samples, 3)}", source=source,
                         fix="add samples on clear parcels, or run without samples (default model)")
    if np.ptp(x) == 0:
        raise InputError("all samples have the same NDTI; the slope cannot be fitted",
                         source=source, fix="sample fields with both low and high residue cover")
    X = np.c_[np.ones(n), x]
    (a, b), *_ = np.linalg.lstsq(X, y, rcond=None)
    fit = a + b * x
    res = y - fit
    ss_res = float(res @ res)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    h = 1.0 / n + (x - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum()
    press = res / (1.0 - h)
    return ResidueModel(float(a), float(b), f"calibrated on {source}", calibrated=True, n=n,
                        r2=1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
                        rmse_pct=math.sqrt(ss_res / n),
                        loo_rmse_pct=math.sqrt(float(press @ press) / n))


# -- per-date observations and the composite ---------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """One date on the analysis grid: NDTI, where it is usable, where imagery exists."""

    date: date
    ndti: xr.DataArray
    usable: xr.DataArray
    covered: xr.DataArray
    scene_id: str = ""


def observe(day: date, bands: Mapping[str, xr.DataArray], masks: Mapping[str, xr.DataArray], *,
            ndvi_max: float = 0.3, scene_id: str = "") -> Observation:
    """NDTI of one date and its usable pixels.

    ``bands`` holds reflectance ``red``, ``nir``, ``swir1``, ``swir2`` on the grid; ``masks``
    the quality masks of :func:`layers.spectral.quality_masks` (``clear``, ``water``, ``nodata``).
    """
    missing = [b for b in ("red", "nir", "swir1", "swir2") if b not in bands]
    if missing:
        raise InputError(f"scene {scene_id or day} lacks bands {missing}",
                         fix="give red, nir, swir1 and swir2 for every date")
    s1, s2 = bands["swir1"], bands["swir2"]
    red, nir = bands["red"], bands["nir"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndti = (s1 - s2) / (s1 + s2)
        ndvi = (nir - red) / (nir + red)
    data_ok = np.isfinite(s1) & np.isfinite(s2) & np.isfinite(red) & np.isfinite(nir)
    covered = data_ok & ~masks["nodata"]
    usable = covered & masks["clear"] & ~masks["water"] & (ndvi <= ndvi_max) & np.isfinite(ndti)
    ndti = ndti.where(usable)
    for da, units in ((ndti, "index"), (usable, "bool"), (covered, "bool")):
        da.attrs.update(units=units, kind="continuous")
    return Observation(day, ndti, usable, covered, scene_id)


@dataclass(frozen=True)
class Composite:
    """Minimum NDTI over the usable dates and the bookkeeping behind it (all lazy)."""

    ndti_min: xr.DataArray
    n_usable: xr.DataArray
    usable_bits: xr.DataArray
    covered: xr.DataArray
    dates: tuple[date, ...]
    scene_ids: tuple[str, ...] = field(default=())

    @property
    def grid(self) -> GridSpec:
        return GridSpec.of(self.ndti_min)


def min_composite(observations: Sequence[Observation]) -> Composite:
    """Per-pixel minimum NDTI over the dates where the pixel is usable (NaN if none)."""
    if not observations:
        raise InputError("no imagery dates in the season window",
                         fix="give scenes dated inside the window, or widen the window")
    if len(observations) > MAX_DATES:
        raise InputError(f"{len(observations)} dates; at most {MAX_DATES} are supported per year",
                         fix="drop the cloudiest dates")
    obs = sorted(observations, key=lambda o: o.date)
    g = GridSpec.of(obs[0].ndti)
    for o in obs[1:]:
        if GridSpec.of(o.ndti) != g:
            raise SinkmapError(f"date {o.date} is not on the analysis grid",
                               fix="load every scene onto the same grid (gis.imagery.load_bands)")
    stack = xr.concat([o.ndti for o in obs], dim="date")
    ndti_min = stack.min("date", skipna=True)
    n = sum(o.usable.astype("uint8") for o in obs)
    bits = sum(o.usable.astype("uint32") * np.uint32(1 << i) for i, o in enumerate(obs))
    covered = obs[0].covered
    for o in obs[1:]:
        covered = covered | o.covered

    def keep(da: xr.DataArray, units: str, nodata: float | None) -> xr.DataArray:
        return make_raster(da.data, g, nodata=nodata, units=units, kind="continuous",
                           chunks=None)

    return Composite(keep(ndti_min, "index", float("nan")), keep(n, "count", None),
                     keep(bits, "bits", None), keep(covered, "bool", None),
                     tuple(o.date for o in obs), tuple(o.scene_id for o in obs))


# -- per-parcel evidence -----------------------------------------------------------------------


BlockSink = Callable[[Window, dict[str, np.ndarray]], None]


def parcel_evidence(composite: Composite, parcels: gpd.GeoDataFrame, *,
                    chunk: int = DEFAULT_CHUNK, on_block: BlockSink | None = None) -> pd.DataFrame:
    """Per-parcel evidence from the rasterised parcels (pixel-centre rule), streamed by blocks.

    Returns one row per parcel (same index as ``parcels``): ``n_pixels``, ``n_covered`` (pixels
    with imagery on at least one date), ``n_clear`` (pixels with a usable NDTI), ``observed_share``
    (``n_clear / n_pixels``), ``ndti_p10 .. ndti_p90`` (``ndti_median``), ``dates_used`` (ISO
    dates, ``;``-separated, on which at least one pixel of the parcel was usable) and
    ``n_dates_used``. Where parcels overlap, the later row owns the shared pixels.

    ``on_block(window, arrays)`` receives each computed block (``ndti_min``, ``n_usable``) so the
    caller can write the composite without computing it twice.
    """
    (ev,), _ = evidence(composite, [parcels], chunk=chunk, on_block=on_block)
    return ev


def evidence(composite: Composite, layers: Sequence[gpd.GeoDataFrame], *,
             points: gpd.GeoDataFrame | None = None, chunk: int = DEFAULT_CHUNK,
             on_block: BlockSink | None = None) -> tuple[list[pd.DataFrame], np.ndarray | None]:
    """:func:`parcel_evidence` of several polygon layers (each rasterised on its own, e.g. the
    parcels and the field-sample polygons) and minNDTI at ``points``, in ONE pass over the
    composite's blocks. Returns the evidence frames (in ``layers`` order) and the point values
    (None without points; NaN outside the grid or where nothing was usable)."""
    grid = composite.grid
    for g in [*layers, *([points] if points is not None else [])]:
        if g.crs is None or crs_key(g.crs) != crs_key(grid.crs):
            raise CRSMismatchError(
                f"layer is in {g.crs} but the analysis grid is in {crs_label(grid.crs)}",
                source=g.attrs.get("source"),
                fix="reproject it to the grid CRS first (gdf.to_crs(grid.crs))")
    n_dates = len(composite.dates)
    accs = [_ZoneStats(g, n_dates) for g in layers]
    pr = pc = None
    point_values = None
    if points is not None:
        xy = shapely.get_coordinates(points.geometry.values)
        if len(xy) != len(points):
            raise InputError("point samples must be single points",
                             source=points.attrs.get("source"),
                             fix="give Point geometries (or polygons of sampled parcels)")
        cols, rows = ~grid.transform * (xy[:, 0], xy[:, 1])
        pr, pc = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
        point_values = np.full(len(points), np.nan)
    for win in _windows(grid, chunk):
        box = shapely.box(*rasterio.windows.bounds(win, grid.transform))
        hits = [a.query(box) for a in accs]
        in_win = None
        if pr is not None:
            in_win = ((pr >= win.row_off) & (pr < win.row_off + win.height)
                      & (pc >= win.col_off) & (pc < win.col_off + win.width))
        wanted = any(len(h) for h in hits) or on_block is not None or (
            in_win is not None and in_win.any())
        if not wanted:
            continue
        sl = {"y": slice(win.row_off, win.row_off + win.height),
              "x": slice(win.col_off, win.col_off + win.width)}
        ndti, nuse, bits, cov = (np.asarray(a) for a in dask.compute(
            composite.ndti_min.isel(sl).data, composite.n_usable.isel(sl).data,
            composite.usable_bits.isel(sl).data, composite.covered.isel(sl).data))
        if on_block is not None:
            on_block(win, {"ndti_min": ndti, "n_usable": nuse})
        if in_win is not None and in_win.any():
            k = np.nonzero(in_win)[0]
            assert point_values is not None and pr is not None and pc is not None
            point_values[k] = ndti[pr[k] - win.row_off, pc[k] - win.col_off]
        for a, h in zip(accs, hits, strict=True):
            if len(h):
                a.add(h, grid.window_transform(win), ndti, bits, cov)
    return [a.finish(composite.dates) for a in accs], point_values


class _ZoneStats:
    """Per-zone accumulators of one polygon layer over the blocks (see :func:`evidence`)."""

    def __init__(self, zones: gpd.GeoDataFrame, n_dates: int):
        self.index = zones.index
        self.n = n = len(zones)
        self.geoms = zones.geometry.values
        good = ~(shapely.is_missing(self.geoms) | shapely.is_empty(self.geoms))
        self.tree = shapely.STRtree(np.where(good, self.geoms, None))
        self.n_pix = np.zeros(n + 1, np.int64)
        self.n_cov = np.zeros(n + 1, np.int64)
        self.n_clear = np.zeros(n + 1, np.int64)
        self.per_date = np.zeros((n_dates, n + 1), np.int64)
        self.zones: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def query(self, box: shapely.Polygon) -> np.ndarray:
        return self.tree.query(box, predicate="intersects")

    def add(self, hits: np.ndarray, transform: Any, ndti: np.ndarray, bits: np.ndarray,
            cov: np.ndarray) -> None:
        n = self.n
        hits = np.sort(hits)
        z = rasterio.features.rasterize(
            zip(self.geoms[hits], (hits + 1).astype(np.int32), strict=True),
            out_shape=ndti.shape, transform=transform, fill=0, dtype=np.int32)
        inside = z > 0
        if not inside.any():
            return
        zi = z[inside]
        self.n_pix += np.bincount(zi, minlength=n + 1)
        self.n_cov += np.bincount(zi, weights=cov[inside], minlength=n + 1).astype(np.int64)
        v = ndti[inside]
        ok = np.isfinite(v)
        self.n_clear += np.bincount(zi[ok], minlength=n + 1)
        b = bits[inside]
        for d in range(self.per_date.shape[0]):
            used = (b >> np.uint32(d)) & np.uint32(1)
            self.per_date[d] += np.bincount(zi, weights=used, minlength=n + 1).astype(np.int64)
        self.zones.append(zi[ok])
        self.values.append(v[ok].astype(np.float32))

    def finish(self, dates: Sequence[date]) -> pd.DataFrame:
        n = self.n
        z_all = np.concatenate(self.zones) if self.zones else np.zeros(0, np.int32)
        v_all = np.concatenate(self.values) if self.values else np.zeros(0, np.float32)
        pct = grouped_percentiles(z_all, v_all, n + 1, PERCENTILES)
        out = pd.DataFrame(index=self.index)
        npx, ncl = self.n_pix[1:], self.n_clear[1:]
        out["n_pixels"] = npx
        out["n_covered"] = self.n_cov[1:]
        out["n_clear"] = ncl
        out["observed_share"] = np.where(npx > 0, ncl / np.maximum(npx, 1), 0.0)
        for k, q in enumerate(PERCENTILES):
            out[_pname("ndti", q)] = pct[1:, k]
        iso = np.array([d.isoformat() for d in dates])
        used = self.per_date[:, 1:] > 0
        out["dates_used"] = [";".join(iso[used[:, i]]) for i in range(n)]
        out["n_dates_used"] = used.sum(axis=0)
        # per date: zone pixels usable that day (the date's contribution, for the report)
        out.attrs["date_usable_pixels"] = {d.isoformat(): int(self.per_date[k, 1:].sum())
                                           for k, d in enumerate(dates)}
        out.attrs["parcel_pixels"] = int(npx.sum())
        return out


def _pname(stem: str, q: int) -> str:
    return f"{stem}_median" if q == 50 else f"{stem}_p{q}"


def _windows(grid: GridSpec, chunk: int) -> Iterable[Window]:
    for r in range(0, grid.height, chunk):
        for c in range(0, grid.width, chunk):
            yield Window(c, r, min(chunk, grid.width - c), min(chunk, grid.height - r))


def grouped_percentiles(zones: np.ndarray, values: np.ndarray, n_groups: int,
                        percentiles: Sequence[float]) -> np.ndarray:
    """Percentiles of ``values`` per zone id (0..n_groups-1), numpy's linear rule; NaN if empty.

    One sort of all values by (zone, value), then index arithmetic: no loop over zones.
    """
    out = np.full((n_groups, len(percentiles)), np.nan)
    if len(values) == 0:
        return out
    order = np.lexsort((values, zones))
    z, v = zones[order], values[order].astype(np.float64)
    counts = np.bincount(z, minlength=n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    has = counts > 0
    s, c = starts[has], counts[has]
    for k, q in enumerate(percentiles):
        pos = s + (q / 100.0) * (c - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, s + c - 1)
        frac = pos - lo
        out[has, k] = v[lo] + (v[hi] - v[lo]) * frac
    return out


# -- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionRules:
    """When a parcel can be judged, and the residue threshold that decides it."""

    threshold_pct: float = 30.0     # FAO / CTIC: >= 30 % residue cover after planting
    min_pixels: int = 4             # smaller parcels are undetermined (mixed edge pixels)
    min_clear_pixels: int = 4
    min_observed_share: float = 0.5  # at least half of the parcel seen on a usable date

    def to_dict(self) -> dict[str, Any]:
        return {"threshold_pct": self.threshold_pct, "min_pixels": self.min_pixels,
                "min_clear_pixels": self.min_clear_pixels,
                "min_observed_share": self.min_observed_share}


def decide(evidence: pd.DataFrame, model: ResidueModel, rules: DecisionRules = DecisionRules(), *,
           area_m2: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Residue percentiles, ``status`` and ``reason`` for every parcel of :func:`parcel_evidence`.

    Undetermined parcels are never counted as confirmed or not confirmed; their reason says why
    (zero-area parcel, smaller than ``min_pixels`` pixels, no imagery in the window, too few clear
    pixels).
    """
    ev = evidence.copy()
    order = list(PERCENTILES) if model.b > 0 else list(reversed(PERCENTILES))
    for q, qn in zip(PERCENTILES, order, strict=True):
        ev[_pname("residue_pct", q)] = model.residue_pct(ev[_pname("ndti", qn)].to_numpy())
    # STI = SWIR1 / SWIR2 = (1 + NDTI) / (1 - NDTI) rises with NDTI, so the STI of the minNDTI
    # date and its parcel median follow exactly from the NDTI ones
    nd = ev["ndti_median"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ev["sti_median"] = (1 + nd) / (1 - nd)
    med = ev["residue_pct_median"].to_numpy()
    npx = ev["n_pixels"].to_numpy()
    ncov = ev["n_covered"].to_numpy()
    ncl = ev["n_clear"].to_numpy()
    share = ev["observed_share"].to_numpy()
    area = (np.asarray(area_m2, dtype=float) if area_m2 is not None
            else np.full(len(ev), np.nan))
    status = np.where(med >= rules.threshold_pct, "confirmed", "not_confirmed").astype(object)
    reason = np.array([f"median residue {m:.1f} % {'>=' if m >= rules.threshold_pct else '<'} "
                       f"{rules.threshold_pct:g} % on {c} clear pixels" if np.isfinite(m) else ""
                       for m, c in zip(med, ncl, strict=True)], dtype=object)
    few = (ncl < rules.min_clear_pixels) | (share < rules.min_observed_share)
    checks = [
        (area <= 0, lambda i: "zero-area parcel"),
        (npx == 0, lambda i: "no pixel centre inside the parcel (smaller than one pixel)"),
        (npx < rules.min_pixels,
         lambda i: f"parcel covers {npx[i]} pixels < minimum {rules.min_pixels}"),
        (ncov == 0, lambda i: "no imagery over the parcel in the window"),
        (few, lambda i: f"too few clear pixels: {ncl[i]} of {npx[i]} "
                        f"({100 * share[i]:.0f} % observed; needs >= {rules.min_clear_pixels} and "
                        f">= {100 * rules.min_observed_share:.0f} %)"),
    ]
    done = np.zeros(len(ev), bool)
    for cond, why in checks:
        hit = np.asarray(cond) & ~done
        for i in np.nonzero(hit)[0]:
            reason[i] = why(i)
        status[hit] = "undetermined"
        done |= hit
    ev["status"] = status
    ev["reason"] = reason
    return ev


# -- accuracy ----------------------------------------------------------------------------------


def accuracy(observed: Sequence[str] | np.ndarray, predicted: Sequence[str] | np.ndarray,
             classes: Sequence[str] = CLASSES) -> dict[str, Any]:
    """Confusion matrix (rows observed, columns predicted), overall accuracy, Cohen's kappa,
    per-class precision (user's accuracy) and recall (producer's accuracy)."""
    obs = np.asarray(observed, dtype=object)
    pred = np.asarray(predicted, dtype=object)
    if obs.shape != pred.shape:
        raise ValueError("observed and predicted differ in length")
    k = len(classes)
    idx = {c: i for i, c in enumerate(classes)}
    unknown = sorted({str(x) for x in np.concatenate([obs, pred]) if x not in idx})
    if unknown:
        raise ValueError(f"classes {unknown} are not in {list(classes)}")
    m = np.zeros((k, k), np.int64)
    np.add.at(m, ([idx[x] for x in obs], [idx[x] for x in pred]), 1)
    n = int(m.sum())
    if n == 0:
        return {"n": 0, "classes": list(classes), "confusion_matrix": m.tolist(),
                "overall_accuracy": None, "kappa": None, "precision": {}, "recall": {}}
    po = float(np.trace(m)) / n
    pe = float((m.sum(axis=0) * m.sum(axis=1)).sum()) / n**2
    kappa = (po - pe) / (1 - pe) if pe < 1 else 1.0
    col, row = m.sum(axis=0), m.sum(axis=1)
    return {
        "n": n, "classes": list(classes),
        "confusion_matrix": m.tolist(),
        "confusion_matrix_layout": "rows observed, columns predicted",
        "overall_accuracy": po, "kappa": kappa,
        "precision": {c: (float(m[i, i] / col[i]) if col[i] else None) for c, i in idx.items()},
        "recall": {c: (float(m[i, i] / row[i]) if row[i] else None) for c, i in idx.items()},
    }


def observed_class(residue_pct: Any, threshold_pct: float = 30.0) -> np.ndarray:
    """``conservation`` where residue cover >= threshold, else ``conventional``."""
    r = np.asarray(residue_pct, dtype=float)
    return np.where(r >= threshold_pct, CONSERVATION, CONVENTIONAL)


def status_class(status: Any) -> np.ndarray:
    """The class a status stands for: confirmed -> conservation, not_confirmed -> conventional,
    undetermined -> None."""
    s = np.asarray(status, dtype=object)
    return np.where(s == "confirmed", CONSERVATION,
                    np.where(s == "not_confirmed", CONVENTIONAL, None))


__all__ = [
    "CLASSES", "CONSERVATION", "CONVENTIONAL", "PERCENTILES", "STATUSES", "Composite",
    "DecisionRules", "Observation", "ResidueModel", "SeasonWindow", "accuracy", "calibrate",
    "decide", "evidence", "grouped_percentiles", "load_residue_model", "min_composite",
    "normalize_practice", "observe", "observed_class", "parcel_evidence", "status_class",
]
