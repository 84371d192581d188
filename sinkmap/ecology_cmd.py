"""``sinkmap ecology`` and the project's ``[ecology]`` step: read, run the pattern, write.

The computation is :func:`layers.pattern.ecological_pattern`; this module reads the inputs
(checking grids and CRSs, aligning the DEM only when asked), adds each zone's carbon stock
(:mod:`sinks`: the land cover's Tier 1 density from a carbon table, or a density raster the
caller already has) and writes the outputs atomically into one folder:

``mspa.tif``, ``resistance.tif``, ``current.tif`` (when the circuit ran), ``cores.gpkg``,
``corridors.gpkg`` (layers ``paths`` and ``corridors``), ``pinchpoints.gpkg``,
``barriers.gpkg``, ``zones.gpkg``, ``landscape_metrics.csv`` and ``summary.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import xarray as xr

from gis.atomic import atomic_path
from gis.errors import GridMismatchError, InputError
from gis.grid import GridSpec, align_to, assert_same_grid
from gis.raster_io import read_raster, write_cog
from gis.vector_io import read_vector
from layers.landcover import ClassScheme, load_scheme
from layers.pattern import Pattern, PatternSettings, ecological_pattern
from layers.resistance import load_resistance_tables
from sinkmap.outputs import write_gpkg_layer
from sinks.coefficients import load_carbon_table, require_codes
from sinks.density import carbon_density
from sinks.units import CO2_PER_C

log = logging.getLogger(__name__)

#: project-file keys of ``[ecology]`` -> PatternSettings fields
SETTING_KEYS = {"cores": "n_cores", "corridors": "n_corridors", "min_core_ha": "min_core_ha",
                "min_core_gap_m": "min_core_gap_m", "edge_width": "edge_width",
                "connectivity": "connectivity", "threshold_m": "threshold_m",
                "probability": "probability", "rank_corridors_by": "rank_links_by",
                "corridor_cwd": "corridor_cwd", "buffer_cwd": "buffer_cwd",
                "circuit": "circuit", "circuit_factor": "circuit_factor",
                "pinch_quantile": "pinch_quantile", "pinch_min_cells": "pinch_min_cells",
                "barrier_radii_m": "barrier_radii_m", "barrier_min_pct": "barrier_min_pct",
                "habitat": "habitat"}


@dataclass(frozen=True)
class EcologyInputs:
    """What ``sinkmap ecology`` reads (paths) and how."""

    landcover: Path
    scheme: str = "gbt21010"
    dem: Path | None = None
    align_dem: bool = False
    roads: Path | None = None
    zones: Path | None = None
    zone_field: str | None = None
    region: Path | None = None
    carbon_table: str | None = "default"
    resistance_classes: Path | None = None
    resistance_modifiers: Path | None = None

    def paths(self) -> list[Path]:
        return [p for p in (self.landcover, self.dem, self.roads, self.zones, self.region,
                            self.resistance_classes, self.resistance_modifiers) if p]


def settings_from_mapping(values: dict[str, Any], base: PatternSettings | None = None
                          ) -> PatternSettings:
    """PatternSettings from ``[ecology]`` keys (see :data:`SETTING_KEYS`); unknown keys and
    wrong types are an error listing them."""
    known = {f.name: f for f in fields(PatternSettings)}
    updates: dict[str, Any] = {}
    bad = []
    for key, value in values.items():
        name = SETTING_KEYS.get(key)
        if name is None:
            continue
        if name in ("habitat", "barrier_radii_m"):
            if not isinstance(value, list):
                bad.append(f"{key} must be a list")
                continue
            value = tuple(value)
        elif name in ("circuit",):
            if not isinstance(value, bool):
                bad.append(f"{key} must be true or false")
                continue
        elif name == "rank_links_by":
            if value not in ("cost", "length_m", "cwd_to_path_length_ratio"):
                bad.append(f"{key} must be cost, length_m or cwd_to_path_length_ratio")
                continue
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            bad.append(f"{key} must be a number")
            continue
        updates[known[name].name] = value
    if bad:
        raise InputError("; ".join(bad), source="[ecology]")
    return replace(base or PatternSettings(), **updates)


def read_dem(path: Path, landcover: xr.DataArray, *, align: bool) -> xr.DataArray:
    """The DEM on the land cover's grid: as is when it shares the grid; resampled (bilinear)
    only when ``align`` is asked for; otherwise a :class:`GridMismatchError` saying how."""
    dem = read_raster(path, kind="continuous")
    try:
        assert_same_grid(landcover, dem, names=("land cover", str(path)))
        return dem
    except GridMismatchError as exc:
        if not align:
            raise GridMismatchError(
                f"the DEM is not on the land cover's grid ({exc.problem})", source=path,
                fix="pass --align-dem (project file: [ecology] align_dem = true) to resample it "
                "bilinearly onto the land-cover grid, or resample it yourself") from None
    log.info("DEM %s resampled (bilinear) onto the land-cover grid", path)
    return align_to(dem, GridSpec.of(landcover), resampling="bilinear")


def zone_carbon(pattern: Pattern, density: xr.DataArray | None) -> gpd.GeoDataFrame:
    """The pattern's zones with ``stock_tC``, ``stock_tCO2e`` and ``mean_density_tC_per_ha``
    (over the zone's cells with a density; NaN without a density)."""
    zones = pattern.zones.copy()
    if density is None:
        for c in ("stock_tC", "stock_tCO2e", "mean_density_tC_per_ha"):
            zones[c] = np.nan
        return zones
    assert_same_grid(pattern.zone_raster, density, names=("zones", "carbon density"))
    z = np.asarray(pattern.zone_raster.values).ravel()
    d = np.asarray(density.values, dtype=np.float64).ravel()
    ok = np.isfinite(d) & (z > 0)
    n = len(zones) + 1
    sums = np.bincount(z[ok], weights=d[ok], minlength=n)
    cells = np.bincount(z[ok], minlength=n)
    pixel_ha = GridSpec.of(density).pixel_area_m2 / 10_000.0
    idx = np.arange(1, n)
    zones["stock_tC"] = sums[idx] * pixel_ha
    zones["stock_tCO2e"] = zones["stock_tC"] * CO2_PER_C
    with np.errstate(invalid="ignore", divide="ignore"):
        zones["mean_density_tC_per_ha"] = np.where(cells[idx] > 0, sums[idx] / cells[idx],
                                                   np.nan)
    return zones


def tier1_density(landcover: xr.DataArray, scheme: ClassScheme, table: str) -> xr.DataArray:
    """Total carbon density (t C/ha) of the land cover from a carbon table (Tier 1)."""
    t = load_carbon_table(table).for_scheme(scheme)
    codes = np.unique(np.asarray(landcover.values))
    nod = landcover.rio.nodata
    require_codes(codes[codes != nod] if nod is not None else codes, t,
                  source=landcover.attrs.get("source"))
    return carbon_density(landcover, t)


def compute(inputs: EcologyInputs, settings: PatternSettings, *,
            landcover: xr.DataArray | None = None, density: xr.DataArray | None = None,
            progress: Callable[[str], None] | None = None) -> tuple[Pattern, gpd.GeoDataFrame]:
    """Read the inputs and run the pattern; returns it and its zones with carbon.
    ``landcover`` / ``density``: the land cover of ``inputs.landcover`` and its carbon density
    when the caller has them already (the project pipeline)."""
    lc = landcover if landcover is not None else read_raster(inputs.landcover,
                                                             kind="categorical")
    scheme = load_scheme(inputs.scheme)
    dem = read_dem(inputs.dem, lc, align=inputs.align_dem) if inputs.dem else None
    roads = read_vector(inputs.roads) if inputs.roads else None
    zones = read_vector(inputs.zones) if inputs.zones else None
    region = read_vector(inputs.region) if inputs.region else None
    if zones is not None and inputs.zone_field and inputs.zone_field not in zones.columns:
        raise InputError(f"zone field {inputs.zone_field!r} not found "
                         f"(columns: {', '.join(map(str, zones.columns))})", source=inputs.zones,
                         fix="name an existing column with --zone-field")
    tables = None
    if inputs.resistance_classes or inputs.resistance_modifiers:
        tables = load_resistance_tables(inputs.resistance_classes, inputs.resistance_modifiers)
    pattern = ecological_pattern(lc, scheme, settings=settings, dem=dem, roads=roads,
                                 region=region, zones=zones, zone_field=inputs.zone_field,
                                 resistance_tables=tables, progress=progress)
    if density is None and inputs.carbon_table:
        density = tier1_density(lc, scheme, inputs.carbon_table)
    return pattern, zone_carbon(pattern, density)


def write_outputs(stage: Path, pattern: Pattern, zones: gpd.GeoDataFrame,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the pattern's files into ``stage`` (an empty folder); returns the summary."""
    write_cog(pattern.mspa, stage / "mspa.tif")
    write_cog(pattern.resistance, stage / "resistance.tif")
    if pattern.current is not None:
        write_cog(pattern.current, stage / "current.tif")
    write_gpkg_layer(pattern.cores, stage / "cores.gpkg", "cores")
    write_gpkg_layer(pattern.links, stage / "corridors.gpkg", "paths")
    write_gpkg_layer(pattern.corridors, stage / "corridors.gpkg", "corridors")
    write_gpkg_layer(pattern.pinchpoints, stage / "pinchpoints.gpkg", "pinchpoints")
    write_gpkg_layer(pattern.barriers, stage / "barriers.gpkg", "barriers")
    write_gpkg_layer(zones, stage / "zones.gpkg", "zones")
    pattern.metrics.to_csv(stage / "landscape_metrics.csv", index=False, encoding="utf-8-sig")
    summary = pattern.summary(zones) | (extra or {})
    (stage / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1),
                                        encoding="utf-8")
    return summary


def run_ecology(inputs: EcologyInputs, out_dir: str | Path, settings: PatternSettings, *,
                overwrite: bool = False, verbose: bool = True) -> dict[str, Any]:
    """``sinkmap ecology``: compute and write the outputs into ``out_dir`` (atomically)."""
    for p in inputs.paths():
        if not Path(p).exists():
            raise InputError("input file does not exist", source=p)
    say = print if verbose else None
    pattern, zones = compute(inputs, settings, progress=say)
    extra = {"inputs": {k: str(v) for k, v in (
        ("landcover", inputs.landcover), ("dem", inputs.dem), ("roads", inputs.roads),
        ("zones", inputs.zones), ("region", inputs.region)) if v is not None},
        "class_scheme": inputs.scheme, "carbon_table": inputs.carbon_table,
        "dem_aligned": bool(inputs.dem and inputs.align_dem)}
    with atomic_path(out_dir, overwrite=overwrite, inputs=inputs.paths()) as stage:
        stage.mkdir(parents=True)
        summary = write_outputs(stage, pattern, zones, extra)
    return summary


def project_inputs(cfg: Any) -> tuple[EcologyInputs, PatternSettings]:
    """The inputs and settings of a project's ``[ecology]`` step: the last land-cover year,
    the project's scheme, ``[region]`` boundary and DEM, the ``[ecology]`` options."""
    eco = dict(cfg.ecology or {})
    inputs = EcologyInputs(
        landcover=cfg.landcover[cfg.years[-1]], scheme=cfg.scheme, dem=cfg.dem,
        align_dem=bool(eco.get("align_dem", False)), roads=eco.get("roads"),
        zones=eco.get("zones"), zone_field=eco.get("zone_field"), region=cfg.boundary,
        carbon_table=None, resistance_classes=eco.get("resistance_table"))
    return inputs, replace(settings_from_mapping(eco), lang=cfg.lang)


def settings_from_args(args: Any) -> PatternSettings:
    """PatternSettings from the parsed ``sinkmap ecology`` arguments."""
    values: dict[str, Any] = {"cores": args.cores, "corridors": args.corridors}
    for key in ("min_core_ha", "min_core_gap_m", "edge_width", "threshold_m", "corridor_cwd",
                "buffer_cwd", "circuit_factor", "rank_corridors_by"):
        v = getattr(args, key, None)
        if v is not None:
            values[key] = v
    if getattr(args, "no_circuit", False):
        values["circuit"] = False
    if getattr(args, "habitat", None):
        values["habitat"] = [int(h) if str(h).isdigit() else h for h in args.habitat]
    s = settings_from_mapping(values)
    return replace(s, lang=getattr(args, "lang", "zh"))


def brief(summary: dict[str, Any]) -> list[str]:
    """Report lines for the console."""
    lines = [f"cores: {summary['n_cores_selected']} selected of {summary['n_cores_found']} "
             f"candidate core patches"]
    for c in summary["selected_cores"]:
        lines.append(f"  #{c['rank']} core {c['core_id']}: {c['area_ha']:,.0f} ha, "
                     f"dPC {c['dPC']:.2f} %")
    lines.append(f"corridors: {summary['n_corridors']}")
    for c in summary["corridors"]:
        lines.append(f"  {c['corridor_id']}: cores {c['core_a']}-{c['core_b']}, cost "
                     f"{c['cost_cwm']:,.0f} cw-m, length {c['length_m']:,.0f} m, "
                     f"{c['area_ha']:,.0f} ha")
    if summary["unreachable_pairs"]:
        lines.append("unreachable core pairs: " + ", ".join(
            f"{a}-{b}" for a, b in summary["unreachable_pairs"]))
    lines.append(f"pinch points: {summary['n_pinchpoints']}; barriers: {summary['n_barriers']}")
    for z in summary["zones"]:
        st = z.get("stock_tC")
        lines.append(f"  zone {z['name']}: {z['area_ha']:,.0f} ha"
                     + (f", {st:,.0f} t C" if st is not None else ""))
    return lines


__all__ = [
    "SETTING_KEYS",
    "EcologyInputs",
    "brief",
    "compute",
    "project_inputs",
    "read_dem",
    "run_ecology",
    "settings_from_args",
    "settings_from_mapping",
    "tier1_density",
    "write_outputs",
    "zone_carbon",
]
