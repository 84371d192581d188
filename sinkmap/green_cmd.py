"""``sinkmap green``: urban green coverage, park service and new green against the target.

    sinkmap green --urban U.gpkg (--imagery ITEMS.json | --landcover LC.tif) --year YYYY
                  [--baseline-year Y0] [--districts D.gpkg --population-field pop]
                  [--parks P.gpkg] --out DIR

Writes into DIR (atomically; the run fails whole or not at all; see the README):

    green_mask.tif      0 not green, 1 green, 2 undetermined, 255 outside the boundary (COG)
    green_change.tif    with a baseline: 0 stable other, 1 stable green, 2 new, 3 lost,
                        4 undetermined (COG)
    ndvi.tif            the summer max-NDVI composite (imagery only, COG)
    urban.gpkg          the boundary used; districts.gpkg, districts.csv, districts.xlsx
    parks.gpkg          parks (area, service radius) and their service area (with --parks)
    transitions.csv     new green by the class it came from, lost green by the class it became
    summary.json        green_coverage_pct, green_area_mu, new_green_mu, lost_green_mu,
                        target_mu, ...

The analysis is :func:`layers.green.green_space`; this module reads, checks and writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gis.atomic import atomic_path
from gis.errors import InputError
from gis.imagery import Scene, read_scenes
from gis.raster_io import read_raster, write_cog
from gis.vector_io import read_vector
from layers.green import GreenResult, GreenSettings, green_space
from layers.landcover import load_scheme
from sinkmap.outputs import write_gpkg_layer, write_json
from sinkmap.xlsx import header_rows, write_xlsx

log = logging.getLogger(__name__)

#: district table columns: (Chinese, English) headers of the XLSX
HEADERS: dict[str, tuple[str, str]] = {
    "district": ("片区", "district"),
    "population": ("人口", "population"),
    "area_ha": ("面积 (公顷)", "area (ha)"),
    "observed_pct": ("有效观测比例 (%)", "observed (%)"),
    "green_ha": ("绿化覆盖面积 (公顷)", "green (ha)"),
    "green_mu": ("绿化覆盖面积 (亩)", "green (mu)"),
    "green_coverage_pct": ("绿化覆盖率 (%)", "green coverage (%)"),
    "green_m2_per_person": ("人均绿化覆盖面积 (m²/人)", "green per person (m²)"),
    "park_ha": ("公园绿地面积 (公顷)", "park area (ha)"),
    "park_m2_per_person": ("人均公园绿地面积 (m²/人)", "park area per person (m²)"),
    "park_service_pct": ("公园绿地服务半径覆盖率 (%)", "park service coverage (%)"),
    "residential_ha": ("居住用地面积 (公顷)", "residential area (ha)"),
    "new_green_mu": ("新增绿地 (亩)", "new green (mu)"),
    "lost_green_mu": ("减少绿地 (亩)", "lost green (mu)"),
    "net_green_mu": ("净增绿地 (亩)", "net green (mu)"),
    "status": ("状态", "status"),
    "reason": ("原因", "reason"),
    "change": ("变化", "change"),
    "code": ("地类编码", "class code"),
    "class": ("地类", "class"),
    "class_zh": ("地类 (中文)", "class (zh)"),
    "area_mu": ("面积 (亩)", "area (mu)"),
}


@dataclass(frozen=True)
class GreenInputs:
    """The files of one ``sinkmap green`` run."""

    urban: Path | None
    year: int
    imagery: tuple[Path, ...] = ()
    landcover: Path | None = None
    baseline_year: int | None = None
    baseline_landcover: Path | None = None
    scheme: str = "gbt21010"
    districts: Path | None = None
    district_field: str = "name"
    population_field: str | None = "population"
    parks: Path | None = None
    park_field: str = "name"
    residential: Path | None = None
    table: Path | None = None
    urban_classes: tuple[str | int, ...] | None = None

    def paths(self) -> list[Path]:
        ps = [self.urban, *self.imagery, self.landcover, self.baseline_landcover, self.districts,
              self.parks, self.residential, self.table]
        return [Path(p) for p in ps if p is not None]


def read_all_scenes(paths: Sequence[Path]) -> list[Scene] | None:
    """The scenes of every STAC JSON / folder in ``paths`` (by date, duplicates once)."""
    if not paths:
        return None
    out: list[Scene] = []
    for p in paths:
        out.extend(read_scenes(p))
    seen: dict[str, Scene] = {}
    for sc in out:
        seen.setdefault(sc.id, sc)
    return sorted(seen.values(), key=lambda s: (s.date, s.id))


def compute(inputs: GreenInputs, settings: GreenSettings, *,
            landcover: Any = None, baseline_landcover: Any = None,
            progress: Callable[[str], None] | None = None) -> GreenResult:
    """Read the inputs and run :func:`layers.green.green_space`. ``landcover`` /
    ``baseline_landcover`` (DataArrays) replace reading ``inputs.landcover`` /
    ``inputs.baseline_landcover`` (the pipeline passes the land cover it holds)."""
    for p in inputs.paths():
        if not p.exists():
            raise InputError("input file does not exist", source=p,
                             fix="check the path (relative paths are from the working folder)")
    def vec(path: Path | None) -> gpd.GeoDataFrame | None:
        if path is None:
            return None
        g = read_vector(path)
        g.attrs["source"] = str(path)
        return g

    scheme = load_scheme(inputs.scheme)
    lc = landcover
    if lc is None and inputs.landcover:
        lc = read_raster(inputs.landcover, kind="categorical")
    lc0 = baseline_landcover
    if lc0 is None and inputs.baseline_landcover:
        lc0 = read_raster(inputs.baseline_landcover, kind="categorical")
    return green_space(vec(inputs.urban), inputs.year,
                       scenes=read_all_scenes(inputs.imagery), landcover=lc, scheme=scheme,
                       baseline_year=inputs.baseline_year,
                       baseline_landcover=lc0, districts=vec(inputs.districts),
                       name_field=inputs.district_field,
                       population_field=inputs.population_field if inputs.districts else None,
                       parks=vec(inputs.parks), park_name_field=inputs.park_field,
                       residential=vec(inputs.residential),
                       urban_classes=inputs.urban_classes, settings=settings,
                       progress=progress)


def write_outputs(stage: Path, r: GreenResult, extra: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
    """Write the result's files into ``stage`` (an empty folder); returns the summary."""
    write_cog(r.mask, stage / "green_mask.tif")
    if r.change is not None:
        write_cog(r.change, stage / "green_change.tif")
    if r.ndvi is not None:
        write_cog(r.ndvi, stage / "ndvi.tif")
    write_gpkg_layer(r.urban[[r.urban.geometry.name]], stage / "urban.gpkg", "urban")
    write_gpkg_layer(r.districts, stage / "districts.gpkg", "districts")
    table = pd.DataFrame(r.districts.drop(columns=r.districts.geometry.name))
    table.to_csv(stage / "districts.csv", index=False, encoding="utf-8-sig")
    sheets = [("片区 districts", table, header_rows(table.columns, HEADERS))]
    if len(r.transitions):
        sheets.append(("来源去向 transitions", r.transitions,
                       header_rows(r.transitions.columns, HEADERS)))
    write_xlsx(stage / "districts.xlsx", sheets)
    r.transitions.to_csv(stage / "transitions.csv", index=False, encoding="utf-8-sig")
    if r.parks is not None:
        write_gpkg_layer(r.parks, stage / "parks.gpkg", "parks")
        if r.service_area is not None and len(r.service_area):
            write_gpkg_layer(r.service_area, stage / "parks.gpkg", "service_area")
    summary = dict(r.summary) | dict(extra or {})
    write_json(stage / "summary.json", summary)
    return summary


def run_green(inputs: GreenInputs, out_dir: str | Path, settings: GreenSettings, *,
              overwrite: bool = False, verbose: bool = True, lang: str = "zh") -> dict[str, Any]:
    """``sinkmap green``: compute, then write the outputs into ``out_dir`` (atomically)."""
    r = compute(inputs, settings, progress=print if verbose else None)
    extra = {"lang": lang, "urban_classes": list(map(str, inputs.urban_classes or ())),
             "inputs": {k: str(v) for k, v in (
        ("urban", inputs.urban), ("landcover", inputs.landcover),
        ("baseline_landcover", inputs.baseline_landcover), ("districts", inputs.districts),
        ("parks", inputs.parks), ("residential", inputs.residential)) if v is not None}
        | {"imagery": [str(p) for p in inputs.imagery]}, "class_scheme": inputs.scheme}
    with atomic_path(out_dir, overwrite=overwrite, inputs=inputs.paths()) as stage:
        stage.mkdir(parents=True)
        summary = write_outputs(stage, r, extra)
    if summary["status"] != "ok":
        log.warning("green coverage undetermined: %s", summary["reason"])
    return summary


#: keys of the ``[green]`` project section that map onto GreenSettings
SETTING_KEYS = ("threshold", "season", "min_area_m2", "min_observed_pct", "green_classes",
                "exclude_classes", "residential_classes", "target_mu", "coverage_target_pct",
                "urban_close_m", "urban_min_ha")


def class_list(values: Sequence[Any]) -> tuple[str | int, ...]:
    """Land-cover classes as given in a project file or on the command line: integer codes
    ("701" or 701) or canonical class names."""
    return tuple(int(v) if str(v).lstrip("-").isdigit() else str(v) for v in values)


def project_inputs(cfg: Any) -> tuple[GreenInputs, GreenSettings]:
    """The inputs and settings of a project's ``[green]`` step (``year`` defaults to the last
    land-cover year; the section's own ``landcover`` / ``baseline_landcover``, if any, replace
    the project's for the step)."""
    g = dict(cfg.green or {})
    uc = g.get("urban_classes")
    inputs = GreenInputs(
        urban=g.get("urban"), year=int(g.get("year") or cfg.years[-1]),
        urban_classes=class_list(uc) if uc else None,
        imagery=(g["imagery"],) if g.get("imagery") else (),
        baseline_year=g.get("baseline_year"), scheme=cfg.scheme, districts=g.get("districts"),
        district_field=g.get("district_field", "name"),
        population_field=g.get("population_field", "population"), parks=g.get("parks"),
        park_field=g.get("park_field", "name"), residential=g.get("residential"),
        table=g.get("table"), landcover=g.get("landcover"),
        baseline_landcover=g.get("baseline_landcover"))
    return inputs, settings_from_mapping(g, table=g.get("table"))


def settings_from_mapping(values: Mapping[str, Any], table: Path | None = None) -> GreenSettings:
    """GreenSettings from the shipped (or ``table``) defaults and ``values`` (project file or
    CLI); unknown keys are the caller's to reject."""
    s = GreenSettings.from_table(table)
    over: dict[str, Any] = {}
    for k in SETTING_KEYS:
        v = values.get(k)
        if v is None:
            continue
        if k in ("green_classes", "exclude_classes", "residential_classes"):
            v = class_list(v)
        elif k == "season":
            v = (str(v[0]), str(v[1]))
        else:
            v = float(v)
        over[k] = v
    if values.get("park_tiers"):
        over["park_tiers"] = tuple(sorted((float(a), float(b)) for a, b in values["park_tiers"]))
    return replace(s, **over) if over else s


def fmt(v: Any, nd: int = 1) -> str:
    """A number with thousands separators, "—" for a missing one."""
    return "—" if v is None else f"{v:,.{nd}f}"


def brief(summary: Mapping[str, Any]) -> str:
    """One line for the terminal."""
    f = fmt

    if summary.get("status") != "ok":
        return f"green coverage undetermined: {summary.get('reason')}"
    line = (f"green coverage {f(summary['green_coverage_pct'])} % "
            f"({f(summary['green_area_mu'], 0)} mu)")
    if summary.get("threshold") is not None:
        line += f", NDVI >= {summary['threshold']:.3f} ({summary['threshold_method']})"
    if summary.get("new_green_mu") is not None:
        line += (f"; new green {f(summary['new_green_mu'], 0)} mu of the "
                 f"{f(summary['target_mu'], 0)} mu target "
                 f"({f(summary['target_progress_pct'])} %), lost "
                 f"{f(summary['lost_green_mu'], 0)} mu")
    if summary.get("park_service_pct") is not None:
        line += f"; park service {f(summary['park_service_pct'])} %"
    return line


__all__ = ["HEADERS", "GreenInputs", "brief", "class_list", "compute", "fmt", "project_inputs",
           "read_all_scenes", "run_green", "settings_from_mapping", "write_outputs"]
