"""``sinkmap tillage``: the annual verification of declared conservation-tillage parcels.

For each year: read the parcels and the spring scenes, keep the scenes dated inside the window
(the others are listed as ignored), build the minimum-NDTI composite on the imagery's own grid
(parcels are reprojected to it, and the log says so), calibrate the residue model on field
samples when given, judge every parcel with its evidence (:mod:`layers.tillage`), and write::

    DIR/parcels.gpkg          one row per input parcel (input columns kept) + status, reason,
                              evidence (pixels, share observed, NDTI and residue percentiles,
                              dates used), measured area; per year parcels_YYYY.gpkg if several
    DIR/parcels.xlsx          the same table with Chinese and English headers, township sheet
    DIR/townships.csv         declared vs confirmed mu per township (and per year)
    DIR/samples.csv           each field sample: observed residue, NDTI, predicted class
    DIR/ndti_min_YYYY.tif     the composite (evidence raster) and the count of usable dates
    DIR/usable_dates_YYYY.tif
    DIR/summary.json          totals against the target, parcel counts, model, dates, accuracy

The folder is staged and renamed at the end: a failed run leaves nothing behind.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio.windows import Window

from gis.atomic import atomic_path
from gis.crs import crs_key, crs_label, is_metric_projected
from gis.errors import InputError
from gis.grid import DEFAULT_CHUNK, GridSpec
from gis.imagery import Scene, analysis_grid, load_bands, read_scenes
from gis.raster_io import block_writer
from gis.vector_io import read_vector, write_vector
from gis.zonal import M2_PER_MU
from layers.spectral import quality_masks
from layers.tillage import (
    CLASSES,
    CONSERVATION,
    PERCENTILES,
    DecisionRules,
    ResidueModel,
    SeasonWindow,
    accuracy,
    calibrate,
    decide,
    evidence,
    load_residue_model,
    min_composite,
    normalize_practice,
    observe,
    observed_class,
    status_class,
)
from sinkmap import __version__
from sinkmap.outputs import jsonable
from sinkmap.progress import Steps
from sinkmap.xlsx import header_rows, write_xlsx

log = logging.getLogger(__name__)

TARGET_MU = 80_000.0  # 梅河口 carbon-peaking plan: 80,000 mu of conservation tillage by 2025
DEFAULT_FIELDS = {"id": "parcel_id", "township": "township", "practice": "declared_practice",
                  "area_mu": "declared_area_mu"}

HEADERS: dict[str, tuple[str, str]] = {
    "status": ("核查结论", "status"),
    "reason": ("依据", "reason"),
    "declared": ("申报做法", "declared (normalised)"),
    "declaration_check": ("申报核对", "declaration check"),
    "area_mu": ("图斑面积 (亩)", "measured area (mu)"),
    "verification_area_mu": ("核查面积 (亩)", "verification area (mu)"),
    "area_flag": ("面积差异", "area flag"),
    "n_pixels": ("像元数", "pixels"),
    "n_covered": ("有影像像元数", "pixels with imagery"),
    "n_clear": ("可用像元数", "clear pixels"),
    "observed_share": ("观测比例", "share observed"),
    "n_dates_used": ("可用日期数", "dates used (n)"),
    "sti_median": ("STI 中位数", "STI median"),
    "dates_used": ("可用日期", "dates used"),
    "township": ("乡镇", "township"),
    "n_declared": ("申报地块数", "declared parcels"),
    "declared_area_mu": ("申报面积 (亩)", "declared area (mu)"),
    "confirmed_area_mu": ("核实面积 (亩)", "confirmed area (mu)"),
    "not_confirmed_area_mu": ("未核实面积 (亩)", "not confirmed area (mu)"),
    "undetermined_area_mu": ("无法判定面积 (亩)", "undetermined area (mu)"),
    "confirmed_share_pct": ("核实比例 (%)", "confirmed share (%)"),
    "n_confirmed": ("核实地块数", "confirmed parcels"),
    "n_not_confirmed": ("未核实地块数", "not confirmed parcels"),
    "n_undetermined": ("无法判定地块数", "undetermined parcels"),
    "undeclared_conservation_area_mu": ("未申报但实施面积 (亩)",
                                        "undeclared but observed (mu)"),
}
for _q in PERCENTILES:
    _n = "median" if _q == 50 else f"p{_q}"
    HEADERS[f"ndti_{_n}"] = (f"NDTI {_n}", f"NDTI {_n}")
    HEADERS[f"residue_pct_{_n}"] = (f"秸秆覆盖度 {_n} (%)", f"residue cover {_n} (%)")


@dataclass
class TillageSettings:
    """Everything of a verification that is not an input file (defaults are documented)."""

    fields: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    sample_field: str = "residue_pct"
    window: tuple[str, str] = ("04-01", "05-31")
    ndvi_max: float = 0.3
    rules: DecisionRules = field(default_factory=DecisionRules)
    residue_table: Path | None = None
    min_samples: int = 5
    area_basis: str = "measured"        # or "declared"
    area_tolerance: float = 0.10        # declared vs measured area: flagged beyond +-10 %
    target_mu: float = TARGET_MU
    practice_values: dict[str, str] = field(default_factory=dict)
    write_rasters: bool = True
    chunk: int = DEFAULT_CHUNK
    paths_relative_to: Path | None = None  # input paths in the reports (a project's folder)


@dataclass(frozen=True)
class YearInput:
    year: int
    imagery: Path
    parcels: Path
    samples: Path | None = None


@dataclass
class YearResult:
    year: int
    parcels: gpd.GeoDataFrame
    townships: pd.DataFrame
    summary: dict[str, Any]
    samples: pd.DataFrame | None = None


# -- inputs ------------------------------------------------------------------------------------


def read_parcels(path: Path, settings: TillageSettings) -> gpd.GeoDataFrame:
    """Read and check the declaration layer: required columns, unique ids, known practices."""
    gdf = read_vector(path)
    f = settings.fields
    need = {k: f[k] for k in ("id", "township", "practice")}
    missing = [f"{v!r} ({k})" for k, v in need.items() if v not in gdf.columns]
    if missing:
        raise InputError(
            f"parcel layer lacks column(s) {', '.join(missing)}; it has {list(gdf.columns)}",
            source=path, fix="rename the columns, or name yours with --id-field / "
            "--township-field / --practice-field (or [tillage] in the project file)")
    ids = gdf[f["id"]]
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        listing = ", ".join(map(str, sorted(set(dup.astype(str)))[:20]))
        raise InputError(f"{dup.nunique()} parcel id(s) occur more than once: {listing}",
                         source=path, fix=f"make {f['id']!r} unique (one row per parcel)")
    if ids.isna().any():
        raise InputError(f"{int(ids.isna().sum())} parcel(s) have no id", source=path,
                         fix=f"fill {f['id']!r} for every parcel")
    gdf = gdf.copy()
    gdf["declared"] = normalize_practice(gdf[f["practice"]], extra=settings.practice_values,
                                         source=path, column=f["practice"])
    if f.get("area_mu") in gdf.columns:
        gdf["_declared_mu"] = pd.to_numeric(gdf[f["area_mu"]], errors="coerce")
    else:
        gdf["_declared_mu"] = np.nan
    return gdf


def select_scenes(scenes: Sequence[Scene], window: SeasonWindow
                  ) -> tuple[list[Scene], list[dict[str, Any]]]:
    """The scenes inside the window, and the others with the reason they were ignored."""
    keep = [s for s in scenes if s.date in window]
    ignored = [{"scene": s.id, "date": s.date.isoformat(),
                "reason": f"outside the window {window}"} for s in scenes if s.date not in window]
    for i in ignored:
        log.warning("scene %s (%s) ignored: %s", i["scene"], i["date"], i["reason"])
    return keep, ignored


def _measured_area_m2(parcels: gpd.GeoDataFrame, grid: GridSpec) -> np.ndarray:
    """Areas in the parcels' own CRS when it is projected in metres, else in the grid's CRS."""
    g = parcels if is_metric_projected(parcels.crs) else parcels.to_crs(grid.crs)
    area = g.geometry.area.to_numpy()
    return np.where(np.isfinite(area), area, 0.0)


# -- one year ----------------------------------------------------------------------------------


def verify_year(inp: YearInput, settings: TillageSettings, *, stage: Path | None = None,
                steps: Steps | None = None) -> YearResult:
    """Verify one year's declarations against that year's imagery (see the module docstring)."""
    steps = steps or Steps(total=1, verbose=False)
    t0 = time.perf_counter()
    window = SeasonWindow.of(inp.year, *settings.window)
    with steps.step(f"{inp.year}: read parcels and scenes"):
        parcels = read_parcels(inp.parcels, settings)
        scenes_all = read_scenes(inp.imagery)
        scenes, ignored = select_scenes(scenes_all, window)
        if not scenes:
            found = ", ".join(sorted({s.date.isoformat() for s in scenes_all})) or "none"
            raise InputError(f"no scene is dated inside the window {window} (dates found: "
                             f"{found})", source=inp.imagery,
                             fix="give that year's spring scenes, or change the window/year")
        geoms = parcels.geometry.values
        ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        if not ok.any():
            raise InputError("no parcel has a geometry", source=inp.parcels,
                             fix="give parcel polygons")
        grid = analysis_grid(scenes, tuple(parcels[ok].total_bounds), parcels.crs)
        if crs_key(parcels.crs) != crs_key(grid.crs):
            log.warning("%s: parcels reprojected from %s to the imagery CRS %s", inp.parcels,
                        crs_label(parcels.crs), crs_label(grid.crs))
        on_grid = parcels.to_crs(grid.crs)
        area_m2 = _measured_area_m2(parcels, grid)
    with steps.step(f"{inp.year}: {len(scenes)} dates -> minimum-NDTI composite and per-parcel "
                    f"evidence over {grid.describe()}"):
        observations = []
        for s in scenes:
            bands = load_bands(s, grid, ("red", "nir", "swir1", "swir2", "qa"),
                               chunks=settings.chunk)
            masks = quality_masks(bands.pop("qa"), s.sensor)
            observations.append(observe(s.date, bands, masks, ndvi_max=settings.ndvi_max,
                                        scene_id=s.id))
        comp = min_composite(observations)
        samples = _read_samples(inp.samples, settings, grid) if inp.samples else None
        points = samples is not None and bool(
            (shapely.get_type_id(samples.geometry.values) == 0).all())
        layers = [on_grid] if samples is None or points else [on_grid, samples]
        rasters = stage if stage is not None and settings.write_rasters else None
        evs, at_points = _one_pass(comp, layers, samples if points else None, rasters,
                                   inp.year, settings.chunk)
        ev = evs[0]
        sample_ndti = None
        if samples is not None:
            sample_ndti = at_points if points else evs[1]["ndti_median"].to_numpy()
    with steps.step(f"{inp.year}: residue model and decisions"):
        sensor = scenes[0].sensor
        sensors = sorted({s.sensor for s in scenes})
        if len(sensors) > 1:
            log.warning("scenes of several sensors %s: the residue model of %s is used", sensors,
                        sensor)
        model = load_residue_model(settings.residue_table, sensor=sensor)
        if samples is not None:
            model = calibrate(sample_ndti, samples[settings.sample_field].to_numpy(dtype=float),
                              min_samples=settings.min_samples,
                              source=_shown(inp.samples, settings))
            log.info("residue model: %s", model.describe())
        else:
            log.warning("no field samples: the PROVISIONAL default residue model is used (%s)",
                        model.describe())
        dec = decide(ev, model, settings.rules, area_m2=area_m2)
        out = _parcel_table(parcels, dec, area_m2, settings)
        sample_rows = None
        if samples is not None:
            sample_rows = _check_samples(samples, sample_ndti, out, on_grid, model, settings)
        town = township_table(out, settings)
    summary = _year_summary(inp, out, town, model, scenes, ignored, ev, grid, settings,
                            sample_rows, time.perf_counter() - t0)
    return YearResult(inp.year, out, town, summary, sample_rows)


def _one_pass(comp: Any, layers: list[gpd.GeoDataFrame], points: gpd.GeoDataFrame | None,
              rasters: Path | None, year: int, chunk: int
              ) -> tuple[list[pd.DataFrame], np.ndarray | None]:
    """Evidence of every layer, minNDTI at the sample points and (when ``rasters`` is a folder)
    the composite rasters, in one pass over the blocks: the composite is computed once."""
    if rasters is None:
        return evidence(comp, layers, points=points, chunk=chunk)
    grid = comp.grid
    with block_writer(rasters / f"ndti_min_{year}.tif", grid, dtype="float32",
                      nodata=float("nan"), units="index", kind="continuous",
                      name="ndti_min") as w_ndti, \
            block_writer(rasters / f"usable_dates_{year}.tif", grid, dtype="uint8",
                         nodata=None, units="count", kind="continuous",
                         name="usable_dates") as w_n:
        def sink(win: Window, arrays: dict[str, np.ndarray]) -> None:
            w_ndti(win, arrays["ndti_min"])
            w_n(win, arrays["n_usable"])

        return evidence(comp, layers, points=points, chunk=chunk, on_block=sink)


def _parcel_table(parcels: gpd.GeoDataFrame, dec: pd.DataFrame, area_m2: np.ndarray,
                  settings: TillageSettings) -> gpd.GeoDataFrame:
    out = parcels.drop(columns=["_declared_mu"]).copy()
    measured = area_m2 / M2_PER_MU
    declared_mu = parcels["_declared_mu"].to_numpy(dtype=float)
    out["area_mu"] = measured
    basis = measured if settings.area_basis == "measured" else np.where(
        np.isfinite(declared_mu), declared_mu, measured)
    out["verification_area_mu"] = basis
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (declared_mu - measured) / measured
    out["area_flag"] = np.where(
        np.isfinite(rel) & (np.abs(rel) > settings.area_tolerance),
        [f"declared {d:.1f} mu vs measured {m:.1f} mu ({100 * r:+.0f} %)"
         for d, m, r in zip(declared_mu, measured, rel, strict=True)], "")
    for c in dec.columns:
        out[c] = dec[c].to_numpy()
    declared_cons = out["declared"].to_numpy() == CONSERVATION
    observed = status_class(out["status"])
    check = np.full(len(out), "", dtype=object)
    check[declared_cons & (observed == CONSERVATION)] = "consistent"
    check[declared_cons & (observed == "conventional")] = "over-declared (not observed)"
    check[~declared_cons & (observed == CONSERVATION)] = "undeclared conservation"
    check[~declared_cons & (observed == "conventional")] = "consistent"
    check[observed == None] = "undetermined"  # noqa: E711 (element-wise on an object array)
    out["declaration_check"] = check
    return out


def township_table(parcels: pd.DataFrame, settings: TillageSettings) -> pd.DataFrame:
    """Declared vs confirmed area (mu) and parcel counts per township, plus a total row."""
    tw = settings.fields["township"]
    decl = parcels[parcels["declared"] == CONSERVATION]
    a = decl["verification_area_mu"]
    g = pd.DataFrame({
        "township": decl[tw].astype(str),
        "declared_area_mu": a,
        "confirmed_area_mu": a.where(decl["status"] == "confirmed", 0.0),
        "not_confirmed_area_mu": a.where(decl["status"] == "not_confirmed", 0.0),
        "undetermined_area_mu": a.where(decl["status"] == "undetermined", 0.0),
        "n_declared": 1,
        "n_confirmed": (decl["status"] == "confirmed").astype(int),
        "n_not_confirmed": (decl["status"] == "not_confirmed").astype(int),
        "n_undetermined": (decl["status"] == "undetermined").astype(int),
    })
    t = g.groupby("township").sum()
    und = parcels[(parcels["declared"] != CONSERVATION) & (parcels["status"] == "confirmed")]
    t = t.reindex(sorted(set(t.index) | set(parcels[tw].astype(str)))).fillna(0.0)
    t["undeclared_conservation_area_mu"] = und.groupby(und[tw].astype(str))[
        "verification_area_mu"].sum().reindex(t.index).fillna(0.0)
    t.loc["合计 total"] = t.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        t["confirmed_share_pct"] = np.where(t["declared_area_mu"] > 0,
                                            100 * t["confirmed_area_mu"] / t["declared_area_mu"],
                                            np.nan)
    for c in ("n_declared", "n_confirmed", "n_not_confirmed", "n_undetermined"):
        t[c] = t[c].astype(int)
    return t.reset_index()


# -- field samples -----------------------------------------------------------------------------


def _read_samples(path: Path, settings: TillageSettings, grid: GridSpec) -> gpd.GeoDataFrame:
    s = read_vector(path)
    col = settings.sample_field
    if col not in s.columns:
        raise InputError(f"sample layer lacks the residue column {col!r}; it has "
                         f"{list(s.columns)}", source=path,
                         fix="name the observed residue cover (%) column with --sample-field")
    v = pd.to_numeric(s[col], errors="coerce")
    bad = v.isna() | (v < 0) | (v > 100)
    if bad.any():
        raise InputError(f"{int(bad.sum())} sample(s) have a residue cover that is missing or "
                         f"outside 0-100 %", source=path, fix=f"give {col!r} in percent")
    types = set(shapely.get_type_id(s.geometry.values))
    if not (types <= {0} or types <= {3, 6}):
        raise InputError("samples mix points and polygons", source=path,
                         fix="give either points (transect locations) or sampled parcels")
    if crs_key(s.crs) != crs_key(grid.crs):
        log.info("%s: samples reprojected to %s", path, crs_label(grid.crs))
    s = s.to_crs(grid.crs)
    s[col] = v
    return s


def _check_samples(samples: gpd.GeoDataFrame, ndti: np.ndarray, parcels: gpd.GeoDataFrame,
                   on_grid: gpd.GeoDataFrame, model: ResidueModel,
                   settings: TillageSettings) -> pd.DataFrame:
    """Each sample with its observed class and the class sinkmap gives it: the status of the
    parcel it lies in (points) or its own median (polygons / points outside parcels)."""
    thr = settings.rules.threshold_pct
    obs = observed_class(samples[settings.sample_field].to_numpy(), thr)
    own = model.residue_pct(ndti)
    pred = np.where(np.isfinite(own), observed_class(own, thr), None).astype(object)
    parcel_id = np.full(len(samples), None, dtype=object)
    basis = np.full(len(samples), "sample pixel(s)", dtype=object)
    if (shapely.get_type_id(samples.geometry.values) == 0).all():
        j = gpd.sjoin(samples[[samples.geometry.name]], on_grid[[on_grid.geometry.name]],
                      how="left", predicate="within")
        j = j[~j.index.duplicated(keep="first")]
        inside = j["index_right"].notna().to_numpy()
        rows = j["index_right"].to_numpy()
        st = parcels["status"]
        for i in np.nonzero(inside)[0]:
            k = rows[i]
            parcel_id[i] = parcels.loc[k, settings.fields["id"]]
            pred[i] = status_class([st.loc[k]])[0]
            basis[i] = "parcel status"
    return pd.DataFrame({"sample": np.arange(1, len(samples) + 1),
                         "residue_pct_observed": samples[settings.sample_field].to_numpy(),
                         "ndti": ndti, "residue_pct_model": own, "observed_class": obs,
                         "predicted_class": pred, "parcel_id": parcel_id, "basis": basis})


def sample_accuracy(rows: pd.DataFrame, *, in_sample: bool) -> dict[str, Any]:
    have = rows["predicted_class"].notna()
    acc = accuracy(rows.loc[have, "observed_class"], rows.loc[have, "predicted_class"], CLASSES)
    return {**acc, "n_samples": len(rows), "n_undetermined": int((~have).sum()),
            "in_sample": in_sample,
            "note": ("the same samples calibrated the residue model (in-sample); an independent "
                     "check needs samples held out of the calibration") if in_sample else ""}


# -- summaries and outputs ---------------------------------------------------------------------


def _totals(parcels: pd.DataFrame, target_mu: float) -> dict[str, Any]:
    decl = parcels[parcels["declared"] == CONSERVATION]
    a = decl["verification_area_mu"]
    s = decl["status"]
    confirmed = float(a[s == "confirmed"].sum())
    return {
        "declared_area_mu": float(a.sum()),
        "confirmed_area_mu": confirmed,
        "not_confirmed_area_mu": float(a[s == "not_confirmed"].sum()),
        "undetermined_area_mu": float(a[s == "undetermined"].sum()),
        "target_mu": target_mu,
        "confirmed_pct_of_target": 100.0 * confirmed / target_mu if target_mu else None,
        "confirmed_pct_of_declared": 100.0 * confirmed / float(a.sum()) if a.sum() else None,
        "parcel_counts": {k: int((s == k).sum()) for k in ("confirmed", "not_confirmed",
                                                           "undetermined")},
        "parcel_counts_all": {k: int((parcels["status"] == k).sum())
                              for k in ("confirmed", "not_confirmed", "undetermined")},
        "n_parcels": len(parcels), "n_declared_conservation": len(decl),
        "undeclared_conservation_area_mu": float(parcels.loc[
            (parcels["declared"] != CONSERVATION) & (parcels["status"] == "confirmed"),
            "verification_area_mu"].sum()),
    }


def _year_summary(inp: YearInput, parcels: gpd.GeoDataFrame, town: pd.DataFrame,
                  model: ResidueModel, scenes: Sequence[Scene], ignored: list[dict[str, Any]],
                  ev: pd.DataFrame, grid: GridSpec, settings: TillageSettings,
                  samples: pd.DataFrame | None, seconds: float) -> dict[str, Any]:
    usable = ev.attrs.get("date_usable_pixels", {})
    total_px = max(ev.attrs.get("parcel_pixels", 0), 1)
    window = SeasonWindow.of(inp.year, *settings.window)
    reasons = parcels.loc[parcels["status"] == "undetermined", "reason"].str.replace(
        r"\d+", "N", regex=True).value_counts()
    out: dict[str, Any] = {
        "year": inp.year,
        **_totals(parcels, settings.target_mu),
        "area_basis": settings.area_basis,
        "declared_area_mu_as_declared": _as_declared(parcels, settings),
        "area_flags": int((parcels["area_flag"] != "").sum()),
        "undetermined_reasons": {str(k): int(v) for k, v in reasons.items()},
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "dates_used": [{"date": s.date.isoformat(), "scene": s.id, "sensor": s.sensor,
                        "cloud_cover_pct": s.cloud_cover,
                        "parcel_pixels_usable_pct": 100.0 * usable.get(s.date.isoformat(), 0)
                        / total_px} for s in scenes],
        "dates_ignored": ignored,
        "residue_model": model.to_dict(),
        "rules": settings.rules.to_dict() | {"ndvi_max": settings.ndvi_max},
        "analysis_grid": {"crs": crs_label(grid.crs), "resolution_m": grid.res[0],
                          "shape": list(grid.shape)},
        "inputs": {"parcels": _shown(inp.parcels, settings),
                   "imagery": _shown(inp.imagery, settings),
                   "samples": _shown(inp.samples, settings) if inp.samples else None},
        "repaired_geometries": int(parcels.attrs.get("repaired_geometries", 0)),
        "seconds": round(seconds, 1),
    }
    if samples is not None:
        out["accuracy"] = sample_accuracy(samples, in_sample=model.calibrated)
    return out


def _shown(path: Path | None, settings: TillageSettings) -> str:
    """An input path as the reports show it: relative to the project folder when inside it."""
    p = Path(path) if path is not None else Path()
    base = settings.paths_relative_to
    if base is not None:
        try:
            return p.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            pass
    return str(p)


def _as_declared(parcels: pd.DataFrame, settings: TillageSettings) -> float | None:
    """The declared conservation area as the applicants wrote it (the area column, if any)."""
    col = settings.fields.get("area_mu")
    if not col or col not in parcels:
        return None
    decl = parcels["declared"] == CONSERVATION
    return float(pd.to_numeric(parcels.loc[decl, col], errors="coerce").sum())


def _write_year(stage: Path, r: YearResult, *, suffix: str = "") -> None:
    gdf = r.parcels.copy()
    write_vector(gdf, stage / f"parcels{suffix}.gpkg")
    table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    write_xlsx(stage / f"parcels{suffix}.xlsx", [
        ("地块核查 parcels", table, header_rows(table.columns, HEADERS)),
        ("乡镇汇总 townships", r.townships, header_rows(r.townships.columns, HEADERS))])
    if r.samples is not None:
        r.samples.to_csv(stage / f"samples{suffix}.csv", index=False, encoding="utf-8-sig")


def year_over_year(results: Sequence[YearResult], settings: TillageSettings) -> pd.DataFrame:
    """Confirmed (and declared) mu per township and year, with the change between years."""
    tabs = []
    for r in results:
        t = r.townships.set_index("township")[["declared_area_mu", "confirmed_area_mu"]]
        tabs.append(t.rename(columns=lambda c, y=r.year: f"{c}_{y}"))
    out = pd.concat(tabs, axis=1).fillna(0.0)
    y0, y1 = results[0].year, results[-1].year
    out[f"confirmed_change_mu_{y0}_{y1}"] = (out[f"confirmed_area_mu_{y1}"]
                                             - out[f"confirmed_area_mu_{y0}"])
    return out.reset_index()


def run_tillage(inputs: Sequence[YearInput], out: Path, settings: TillageSettings | None = None,
                *, overwrite: bool = False, verbose: bool = True) -> dict[str, Any]:
    """Verify every year and write the outputs folder (atomically). Returns summary.json."""
    settings = settings or TillageSettings()
    inputs = _check_years(inputs)
    steps = Steps(total=3 * len(inputs) + 1, verbose=verbose)
    with atomic_path(out, overwrite=overwrite,
                     inputs=tuple(p for i in inputs for p in (i.parcels, i.imagery, i.samples)
                                  if p)) as stage:
        stage.mkdir(parents=True)
        summary, _ = verify_into(stage, inputs, settings, steps=steps)
    return summary


def _check_years(inputs: Sequence[YearInput]) -> list[YearInput]:
    if not inputs:
        raise InputError("no year to verify", fix="give --year with --imagery")
    years = [i.year for i in inputs]
    if len(set(years)) != len(years):
        raise InputError(f"years given twice: {years}", fix="one --imagery per --year")
    return sorted(inputs, key=lambda i: i.year)


def verify_into(folder: Path, inputs: Sequence[YearInput], settings: TillageSettings, *,
                steps: Steps | None = None) -> tuple[dict[str, Any], list[YearResult]]:
    """Verify every year, writing the outputs into ``folder`` (an existing staging folder)."""
    inputs = _check_years(inputs)
    steps = steps or Steps(total=3 * len(inputs) + 1, verbose=False)
    t0 = time.perf_counter()
    results = [verify_year(i, settings, stage=folder, steps=steps) for i in inputs]
    with steps.step("tillage reports"):
        last = results[-1]
        _write_year(folder, last)
        if len(results) > 1:
            for r in results:
                _write_year(folder, r, suffix=f"_{r.year}")
            yoy = year_over_year(results, settings)
            yoy.to_csv(folder / "townships_by_year.csv", index=False, encoding="utf-8-sig")
        last.townships.to_csv(folder / "townships.csv", index=False, encoding="utf-8-sig",
                              float_format="%.3f")
        summary: dict[str, Any] = {
            "sinkmap_version": __version__, "command": "tillage", **last.summary,
            "method": ("minimum NDTI over the usable dates of the post-planting window "
                       "(Zheng et al. 2012); residue % = a + b x NDTI; conservation tillage "
                       f"= median residue cover >= {settings.rules.threshold_pct:g} %"),
        }
        if len(results) > 1:
            summary["years"] = {str(r.year): r.summary for r in results}
            summary["year_over_year"] = {
                str(r.year): {"declared_area_mu": r.summary["declared_area_mu"],
                              "confirmed_area_mu": r.summary["confirmed_area_mu"]}
                for r in results}
        summary["seconds_total"] = round(time.perf_counter() - t0, 1)
        summary = jsonable(summary)
        (folder / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1),
                                             encoding="utf-8")
    return summary, results


def confirmed_by_township(parcels: pd.DataFrame, settings: TillageSettings) -> pd.Series:
    """Confirmed conservation-tillage area (mu) per township: what feeds the farmland SOC sink."""
    tw = settings.fields["township"]
    ok = (parcels["declared"] == CONSERVATION) & (parcels["status"] == "confirmed")
    return parcels[ok].groupby(parcels.loc[ok, tw].astype(str))["verification_area_mu"].sum()


def year_inputs(years: Sequence[int], imagery: Sequence[Path], parcels: Sequence[Path],
                samples: Sequence[Path] | None) -> list[YearInput]:
    """Pair the command's repeated options: one imagery per year; parcels and samples once (for
    every year) or once per year."""
    n = len(years)

    def per_year(items: Sequence[Path] | None, what: str) -> list[Path | None]:
        if not items:
            return [None] * n
        if len(items) == 1:
            return list(items) * n
        if len(items) != n:
            raise InputError(f"{len(items)} {what} for {n} years",
                             fix=f"give {what} once, or once per --year in the same order")
        return list(items)

    if len(imagery) != n:
        raise InputError(f"{len(imagery)} --imagery for {n} --year",
                         fix="give one --imagery per --year, in the same order")
    ps = per_year(parcels, "--parcels")
    ss = per_year(samples, "--samples")
    return [YearInput(y, Path(i), Path(p), s)  # type: ignore[arg-type]
            for y, i, p, s in zip(years, imagery, ps, ss, strict=True)]


def settings_from_args(args: Any) -> TillageSettings:
    practice: dict[str, str] = {}
    for item in args.practice:
        value, sep, cls = item.partition("=")
        if not sep or cls.strip() not in CLASSES:
            raise InputError(f"--practice {item!r} is not VALUE=conservation|conventional",
                             fix="e.g. --practice 免耕覆盖=conservation")
        practice[value.strip()] = cls.strip()
    return TillageSettings(
        fields={"id": args.id_field, "township": args.township_field,
                "practice": args.practice_field, "area_mu": args.area_field},
        sample_field=args.sample_field, window=tuple(args.window),  # type: ignore[arg-type]
        ndvi_max=args.ndvi_max,
        rules=DecisionRules(threshold_pct=args.threshold, min_pixels=args.min_pixels,
                            min_clear_pixels=args.min_clear_pixels,
                            min_observed_share=args.min_observed),
        residue_table=args.residue_table, area_basis=args.area_basis, target_mu=args.target_mu,
        practice_values=practice, write_rasters=not args.no_rasters)


def settings_from_config(cfg: Any) -> TillageSettings:
    """Settings from a project file's [tillage] and [farmland] sections (sinkmap.config)."""
    o = cfg.tillage_options
    f = cfg.parcel_fields
    return TillageSettings(
        fields={"id": str(o.get("id_field", "parcel_id")), "township": f["township"],
                "practice": f["practice"], "area_mu": f["area_mu"]},
        sample_field=str(o.get("sample_field", "residue_pct")),
        window=tuple(o.get("window", ("04-01", "05-31"))),  # type: ignore[arg-type]
        ndvi_max=float(o.get("ndvi_max", 0.3)),
        rules=DecisionRules(threshold_pct=float(o.get("threshold_pct", 30.0)),
                            min_pixels=int(o.get("min_pixels", 4)),
                            min_clear_pixels=int(o.get("min_clear_pixels", 4)),
                            min_observed_share=float(o.get("min_observed_share", 0.5))),
        area_basis=str(o.get("area_basis", "measured")),
        target_mu=float(o.get("target_mu", TARGET_MU)),
        practice_values={str(k): str(v) for k, v in dict(o.get("practice_values", {})).items()},
        paths_relative_to=cfg.path.parent)


def tillage_brief(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The headline of a verification, for the carbon run's summary and the atlas."""
    keys = ("year", "declared_area_mu", "confirmed_area_mu", "not_confirmed_area_mu",
            "undetermined_area_mu", "target_mu", "confirmed_pct_of_target", "parcel_counts",
            "undeclared_conservation_area_mu")
    out = {k: summary[k] for k in keys if k in summary}
    out["residue_model"] = {k: summary["residue_model"].get(k)
                            for k in ("a", "b", "calibrated", "n", "r2", "rmse_pct")}
    if "accuracy" in summary:
        a = summary["accuracy"]
        out["accuracy"] = {k: a.get(k) for k in ("n", "overall_accuracy", "kappa", "in_sample")}
    out["details"] = "tillage/summary.json"
    return out


__all__ = [
    "DEFAULT_FIELDS", "TARGET_MU", "TillageSettings", "YearInput", "YearResult",
    "confirmed_by_township", "read_parcels", "run_tillage", "sample_accuracy",
    "settings_from_args", "settings_from_config", "tillage_brief", "township_table",
    "verify_into", "verify_year", "year_inputs", "year_over_year",
]
