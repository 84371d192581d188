"""The carbon-baseline pipeline: validate, then land cover -> density -> township tables -> map.

This module only orchestrates: every computation is a library function in gis/, layers/,
sinks/ or maps/. All outputs are written into a temporary folder that is renamed onto the
output folder at the very end, so a failed run leaves no half-written result.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from gis.atomic import atomic_path
from gis.crs import assert_same_crs, check_offset
from gis.errors import ConfigError
from gis.grid import GridSpec
from gis.raster_io import read_raster, write_cog
from gis.vector_io import read_vector, write_vector
from gis.zonal import M2_PER_MU, class_area_table, zonal_stats
from layers.landcover import change_type, load_scheme
from layers.tillage import CONSERVATION, normalize_practice
from maps.carbon_map import carbon_density_map, save_map
from sinkmap.config import ProjectConfig, validate
from sinkmap.manifest import write_manifest
from sinkmap.progress import Steps
from sinkmap.publish import write_styles
from sinkmap.tillage_cmd import (
    YearInput,
    confirmed_by_township,
    settings_from_config,
    tillage_brief,
    verify_into,
)
from sinks.carbon import common_change, transition_matrix, unknown_area_ha
from sinks.coefficients import CarbonTable, load_carbon_table
from sinks.density import FOREST_CLASSES, pool_densities
from sinks.forest import inventory_carbon, load_forest_table, tier_shares
from sinks.soil import tillage_sink, wetland_restoration
from sinks.uncertainty import TOTAL, approach1, monte_carlo
from sinks.units import CO2_PER_C
from sinks.valuation import load_prices

log = logging.getLogger(__name__)

HEADERS = {  # machine column -> (中文, English) for the XLSX and the map
    "zone": ("乡镇代码", "Township code"),
    "name": ("乡镇", "Township"),
    "area_ha": ("面积 (ha)", "Area (ha)"),
    "area_mu": ("面积 (亩)", "Area (mu)"),
    "stock_tC": ("碳储量 (t C)", "Carbon stock (t C)"),
    "mean_density_tC_per_ha": ("平均碳密度 (t C/ha)", "Mean carbon density (t C/ha)"),
    "stock_change_tC": ("碳储量变化 (t C)", "Stock change (t C)"),
    "sink_tCO2e": ("碳汇量 (t CO2e, 吸收为正)", "Sink (t CO2e, removal positive)"),
    "sink_tCO2e_per_yr": ("年均碳汇量 (t CO2e/年)", "Annual sink (t CO2e/yr)"),
    "sink_tCO2e_p2_5": ("碳汇量 95%区间下限 (t CO2e)", "Sink, 95 % interval low (t CO2e)"),
    "sink_tCO2e_p97_5": ("碳汇量 95%区间上限 (t CO2e)", "Sink, 95 % interval high (t CO2e)"),
    "stock_tC_p2_5": ("碳储量 95%区间下限 (t C)", "Stock, 95 % interval low (t C)"),
    "stock_tC_p97_5": ("碳储量 95%区间上限 (t C)", "Stock, 95 % interval high (t C)"),
    "tillage_declared_mu": ("保护性耕作申报面积 (亩)", "Conservation tillage declared (mu)"),
    "tillage_area_mu": ("保护性耕作计入面积 (亩)",
                        "Conservation tillage counted (mu; confirmed if verified)"),
    "tillage_sink_tCO2e_per_yr": ("保护性耕作土壤碳汇 (t CO2e/年)",
                                  "Conservation-tillage soil sink (t CO2e/yr)"),
    "wetland_restored_ha": ("恢复湿地面积 (ha)", "Restored wetland (ha)"),
    "wetland_co2_removal_tCO2e_per_yr": ("湿地土壤CO2吸收 (t CO2e/年)",
                                         "Wetland soil CO2 removal (t CO2e/yr)"),
    "wetland_ch4_tCO2e_per_yr": ("湿地CH4排放 (t CO2e/年)", "Wetland CH4 emission (t CO2e/yr)"),
    "wetland_net_tCO2e_per_yr": ("湿地净温室气体 (t CO2e/年, 吸收为正)",
                                 "Wetland net GHG (t CO2e/yr, removal positive)"),
}


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    summary: dict[str, Any]


def header(col: str, lang: str) -> str:
    """Display label of a township-table column, e.g. ``stock_tC_2020`` -> ``碳储量 (t C) 2020``."""
    base, _, year = col.rpartition("_")
    if not (year.isdigit() and len(year) == 4):
        base, year = col, ""
    zh, en = HEADERS.get(base, (col, col))
    label = zh if lang == "zh" else en
    return f"{label} {year}".strip()


def popup_columns(available: Any, year: int, lang: str) -> dict[str, str]:
    """Township columns shown on the maps (first = choropleth), with their display labels."""
    wanted = (f"mean_density_tC_per_ha_{year}", f"stock_tC_{year}", "area_ha", "sink_tCO2e",
              "sink_tCO2e_p2_5", "sink_tCO2e_p97_5", "tillage_sink_tCO2e_per_yr",
              "wetland_net_tCO2e_per_yr")
    return {c: header(c, lang) for c in wanted if c in set(available)}


def stocks_by_zone(density: Any, zones: gpd.GeoDataFrame, cfg: ProjectConfig) -> pd.DataFrame:
    """Per-zone stock (t C), valid area (ha) and mean density from a density raster."""
    st = zonal_stats(density, zones, cfg.zone_id_field, method=cfg.zonal_method).set_index("zone")
    pixel_ha = GridSpec.of(density).pixel_area_m2 / 10_000
    g = pd.DataFrame({"valid_area_ha": st["cells"] * pixel_ha,
                      "stock_tC": st["sum"] * pixel_ha})
    g["mean_density_tC_per_ha"] = g["stock_tC"] / g["valid_area_ha"]
    return g


def run(cfg: ProjectConfig, *, overwrite: bool = False, verbose: bool = True,
        check: Callable[[Path, dict[str, Any]], None] | None = None) -> RunResult:
    """Run the carbon baseline for a project; returns the output folder and the summary.

    ``check(stage, summary)``, if given, runs once every result is computed and before
    summary.json, the manifest and the atlas are written, so it can add to the summary.
    """
    steps = Steps(total=5 + 2 * len(cfg.years) + cfg.atlas
                  + (4 if cfg.tillage_imagery is not None else 0)
                  + (cfg.ecology is not None) + (cfg.green is not None), verbose=verbose)
    with steps.step("validate inputs"):
        problems = validate(cfg)
        if problems:
            raise ConfigError(problems, source=cfg.path)
        scheme = load_scheme(cfg.scheme)
        table = load_carbon_table(cfg.carbon_table).for_scheme(scheme)
        zones = read_vector(cfg.zones, encoding=cfg.zone_encoding)
        if cfg.boundary is not None:
            boundary = read_vector(cfg.boundary)
            assert_same_crs(zones.crs, boundary.crs, names=(str(cfg.zones), str(cfg.boundary)))
            # GCJ-02 data cannot be told from metadata: compare the zones with the boundary
            check_offset(boundary.union_all(), zones.union_all(), crs=zones.crs,
                         names=(str(cfg.boundary), str(cfg.zones)))
    inputs = cfg.input_paths()
    with atomic_path(cfg.out_dir, overwrite=overwrite, inputs=inputs) as stage:
        stage.mkdir(parents=True)
        per_year: dict[int, pd.DataFrame] = {}
        long_tables = []
        landcovers: dict[int, Any] = {}
        tiers: dict[str, Any] = {}
        densities: dict[int, Any] = {}
        forest_codes = scheme.table.index[
            scheme.table.get("canonical", pd.Series(dtype=str)).isin(FOREST_CLASSES)].to_numpy()
        inv_c = None
        if cfg.forest_inventory is not None:
            inv_c = inventory_carbon(read_vector(cfg.forest_inventory),
                                     load_forest_table(cfg.forest_table))
        density = None
        for year in cfg.years:
            lc = read_raster(cfg.landcover[year], kind="categorical")
            with steps.step(f"class areas per township {year}"):
                areas = class_area_table(lc, zones, cfg.zone_id_field, method=cfg.zonal_method)
            long_tables.append(areas.assign(year=year))
            with steps.step(f"carbon density {year} (total and per pool)"):
                pools, density, tier = pool_densities(lc, table, inventory_c=inv_c,
                                                      forest_codes=forest_codes)
                write_cog(density, stage / f"carbon_density_tC_per_ha_{year}.tif",
                          progress=steps.blocks)
                if cfg.pool_rasters:
                    for pool, d in pools.items():
                        write_cog(d, stage / f"carbon_density_{pool}_tC_per_ha_{year}.tif")
                per_year[year] = stocks_by_zone(density, zones, cfg)
                densities[year] = density
                if tier is not None:
                    shares = tier_shares(tier, density=density)
                    tiers[str(year)] = shares.reset_index().to_dict(orient="records")
            landcovers[year] = lc
        y0, y1 = cfg.years[0], cfg.years[-1]
        confirmed, tillage = None, None
        if cfg.tillage_imagery is not None:
            (stage / "tillage").mkdir()
            settings = settings_from_config(cfg)
            tillage, tres = verify_into(stage / "tillage", [YearInput(
                int(cfg.tillage_year or y1), cfg.tillage_imagery, cfg.parcels,  # type: ignore
                cfg.tillage_samples)], settings, steps=steps)
            confirmed = confirmed_by_township(tres[-1].parcels, settings)
        ecology = None
        if cfg.ecology is not None:
            with steps.step("ecological-protection pattern (MSPA, cores, corridors, circuit)"):
                ecology = ecology_into(stage / "ecology", cfg, landcovers[y1], densities[y1])
        green = None
        if cfg.green is not None:
            with steps.step("urban green space"):
                green = green_into(stage / "green", cfg, landcovers)
        with steps.step("township tables"):
            change = None
            if y1 != y0:  # over cells valid in both years (as InVEST's change map)
                diff = densities[y1] - densities[y0]
                diff = diff.rio.write_nodata(float("nan"), encoded=False)
                diff.attrs.update(units="tC_per_ha", kind="continuous")
                change = stocks_by_zone(diff, zones, cfg)["stock_tC"]
            town, summary = township_table(cfg, zones, per_year, table, long_tables[-1],
                                           change)
            summary["forest_tiers"] = tiers or {"note": "Tier 1 only (no forest inventory)"}
            if cfg.parcels is not None:
                town, summary["farmland_soc"] = farmland_soc(cfg, town, confirmed)
            if tillage is not None:
                summary["tillage"] = tillage_brief(tillage)
            if ecology is not None:
                summary["ecology"] = ecology
            if green is not None:
                summary["green"] = green
            if y1 != y0:
                matrix = transition_matrix(landcovers[y0], landcovers[y1], table)
                write_transitions(stage, matrix, scheme)
                summary["change"]["transitions_tier1"] = common_change(matrix, table)
                summary["change"]["unknown_area_ha"] = unknown_area_ha(matrix)
                summary["change"]["transitions_changed_ha"] = float(
                    matrix.loc[matrix["changed"].fillna(True), "area_ha"].sum())
                value_sink(summary, cfg)
                town, summary["wetland_restoration"] = wetlands(
                    cfg, town, zones, landcovers[y0], landcovers[y1], scheme)
        with steps.step(f"uncertainty ({cfg.mc_draws} Monte Carlo draws, Approach 1)"):
            areas = {y: t for y, t in zip(cfg.years, long_tables, strict=True)}
            unc = uncertainty(areas, table, cfg)
            unc.to_csv(stage / "uncertainty.csv", index=False, encoding="utf-8-sig")
            summary["uncertainty"] = uncertainty_summary(unc, cfg)
            town = town.merge(uncertainty_by_zone(unc, cfg), on="zone", how="left")
            write_tables(stage, town, pd.concat(long_tables, ignore_index=True), scheme, cfg)
            joined = zones[[cfg.zone_id_field, zones.geometry.name]].merge(
                town, left_on=cfg.zone_id_field, right_on="zone", how="left")
            write_vector(joined, stage / "townships.gpkg")
            if y1 != y0:
                write_cog(change_type(landcovers[y0], landcovers[y1], scheme),
                          stage / f"landuse_change_{y0}_{y1}.tif")
        with steps.step("map"):
            assert density is not None
            cols = popup_columns(town.columns, y1, cfg.lang)
            title = (f"{cfg.name} — 碳密度 {y1}" if cfg.lang == "zh"
                     else f"{cfg.name} — carbon density {y1}")
            note = (f"sinkmap {summary['sinkmap_version']}; coefficients: {table.name} "
                    f"({summary['unverified_stock_share_pct']:.0f}% of stock on unverified rows)")
            m = carbon_density_map(density, joined, zone_label="name",
                                   value_columns=cols, title=title, lang=cfg.lang,
                                   source_note=note)
            save_map(m, stage / "map.html")
        if check is not None:  # e.g. the demo's comparison with its known truth
            check(stage, summary)
        with steps.step("manifest"):
            (stage / "summary.json").write_text(
                json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
            params = {"project_file": cfg.path.name,
                      "project_dir_from_outputs": os.path.relpath(cfg.path.parent, cfg.out_dir),
                      "config": cfg.raw,
                      "zonal_method": cfg.zonal_method, "carbon_table": table.source,
                      "class_scheme": scheme.source}
            write_manifest(stage / "manifest.json", inputs=inputs, outputs_dir=stage,
                           parameters=params, timings=steps.timings, input_base=cfg.path.parent)
        write_styles(stage, lang=cfg.lang,
                     zone_column=f"mean_density_tC_per_ha_{cfg.years[-1]}")
        if cfg.atlas:
            with steps.step("atlas (maps/index.html)"):
                from sinkmap.atlas import write_atlas

                write_atlas(stage, lang=cfg.lang, print_maps=cfg.print_maps)
            write_manifest(stage / "manifest.json", inputs=inputs, outputs_dir=stage,
                           parameters=params, timings=steps.timings, input_base=cfg.path.parent)
    return RunResult(cfg.out_dir, summary)


def ecology_into(folder: Path, cfg: ProjectConfig, landcover: Any, density: Any
                 ) -> dict[str, Any]:
    """The ``[ecology]`` step: the pattern of the last year into ``folder`` (its zones' carbon
    from the run's density of that year); returns the short summary for summary.json."""
    from sinkmap.ecology_cmd import compute, project_inputs, write_outputs

    inputs, settings = project_inputs(cfg)
    pattern, zones = compute(inputs, settings, landcover=landcover, density=density)
    folder.mkdir()
    s = write_outputs(folder, pattern, zones, {"year": cfg.years[-1]})
    keep = ("year", "n_cores_found", "n_cores_selected", "n_corridors", "n_pinchpoints",
            "n_barriers", "selected_cores", "corridors", "unreachable_pairs", "zones")
    return {k: s[k] for k in keep if k in s} | {"folder": "ecology/"}


def green_into(folder: Path, cfg: ProjectConfig, landcovers: dict[int, Any]) -> dict[str, Any]:
    """The ``[green]`` step into ``folder``: the year's green space (imagery, or the project's
    land cover) with the land cover of the year (and of the baseline year) for the residential
    area and the transitions; returns the short summary for summary.json."""
    from sinkmap.green_cmd import compute, project_inputs, write_outputs

    inputs, settings = project_inputs(cfg)
    y0 = inputs.baseline_year
    # the section's own land cover, else the project's of those years
    res = compute(inputs, settings,
                  landcover=None if inputs.landcover else landcovers.get(inputs.year),
                  baseline_landcover=None if inputs.baseline_landcover or y0 is None
                  else landcovers.get(y0))
    folder.mkdir()
    s = write_outputs(folder, res, {"lang": cfg.lang})
    keep = ("year", "baseline_year", "source", "threshold", "threshold_method",
            "green_coverage_pct", "green_area_mu", "new_green_mu", "lost_green_mu",
            "net_green_mu", "target_mu", "target_progress_pct", "park_service_pct",
            "green_m2_per_person", "status", "reason")
    return {k: s.get(k) for k in keep} | {"folder": "green/"}


def township_table(cfg: ProjectConfig, zones: gpd.GeoDataFrame,
                   per_year: dict[int, pd.DataFrame], table: CarbonTable,
                   last_areas: pd.DataFrame, change_tC: pd.Series | None = None
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per zone: area, stock and mean density per year, change and sink (t CO2e)."""
    from sinkmap import __version__

    z = zones[[cfg.zone_id_field, cfg.zone_name_field]].copy()
    z.columns = ["zone", "name"]
    z["area_ha"] = zones.geometry.area.to_numpy() / 10_000
    z["area_mu"] = zones.geometry.area.to_numpy() / M2_PER_MU
    z = z.set_index("zone")
    totals: dict[str, Any] = {}
    for y, g in per_year.items():
        z[f"stock_tC_{y}"] = g["stock_tC"]
        z[f"mean_density_tC_per_ha_{y}"] = g["mean_density_tC_per_ha"]
        totals[str(y)] = {"stock_tC": float(g["stock_tC"].sum()),
                          "stock_tCO2e": float(g["stock_tC"].sum() * CO2_PER_C),
                          "valid_area_ha": float(g["valid_area_ha"].sum())}
    years = sorted(per_year)
    summary: dict[str, Any] = {
        "sinkmap_version": __version__, "project": cfg.name, "years": years,
        "zonal_method": cfg.zonal_method, "carbon_table": table.name, "totals": totals,
        "pools": list(table.pools),
        "sign_convention": "sink = stock(last) - stock(first); removal from the atmosphere is "
                           "positive, emission negative",
    }
    if len(years) >= 2:
        y0, y1 = years[0], years[-1]
        # the change counts only cells valid in both years: a gap in one map is unknown area,
        # not a loss or gain of carbon
        z["stock_change_tC"] = (change_tC if change_tC is not None
                                else z[f"stock_tC_{y1}"] - z[f"stock_tC_{y0}"])
        z["sink_tCO2e"] = z["stock_change_tC"] * CO2_PER_C
        z["sink_tCO2e_per_yr"] = z["sink_tCO2e"] / (y1 - y0)
        change = float(z["stock_change_tC"].sum())
        summary["change"] = {"from": y0, "to": y1, "stock_change_tC": change,
                             "sink_tCO2e": change * CO2_PER_C,
                             "sink_tCO2e_per_yr": change * CO2_PER_C / (y1 - y0)}
    last = per_year[years[-1]]
    summary["unverified_stock_share_pct"] = unverified_share_pct(last_areas, table)
    summary["townships"] = len(z)
    summary["zones_without_data"] = sorted(map(str, set(z.index) - set(last.index)))
    return z.reset_index(), summary


def unverified_share_pct(areas: pd.DataFrame, table: CarbonTable) -> float:
    """Share (%) of the stock that rests on coefficient rows not verified against a source."""
    stock = areas["area_ha"] * areas["class"].map(table.total())
    total = float(stock.sum())
    unverified = areas["class"].isin(table.unverified_codes())
    return 100.0 * float(stock[unverified].sum()) / total if total else 0.0


def write_tables(stage: Path, town: pd.DataFrame, areas: pd.DataFrame, scheme: Any,
                 cfg: ProjectConfig) -> None:
    town.to_csv(stage / "townships.csv", index=False, encoding="utf-8-sig", float_format="%.6f")
    names = scheme.table
    a = areas.assign(name_zh=areas["class"].map(names["name_zh"]),
                     name_en=areas["class"].map(names["name_en"]))
    a = a[["year", "zone", "class", "name_zh", "name_en", "cells", "area_m2", "area_ha",
           "area_mu"]]
    a.to_csv(stage / "class_area_by_township.csv", index=False, encoding="utf-8-sig",
             float_format="%.6f")
    with pd.ExcelWriter(stage / "townships.xlsx", engine="openpyxl") as xw:
        for lang, sheet in (("zh", "乡镇碳储量"), ("en", "township carbon")):
            town.rename(columns=lambda c, lang=lang: header(c, lang)).to_excel(
                xw, sheet_name=sheet, index=False)
        a.to_excel(xw, sheet_name="class_area 地类面积", index=False)


def write_transitions(stage: Path, matrix: pd.DataFrame, scheme: Any) -> None:
    """The land-use transition matrix (long form, with names and carbon change) as CSV."""
    zh = scheme.table["name_zh"]
    m = matrix.assign(from_zh=matrix["from"].map(lambda c: zh.get(c) if pd.notna(c) else None),
                      to_zh=matrix["to"].map(lambda c: zh.get(c) if pd.notna(c) else None))
    m.to_csv(stage / "transitions.csv", index=False, encoding="utf-8-sig", float_format="%.6f")


def value_sink(summary: dict[str, Any], cfg: ProjectConfig) -> None:
    """Shadow value of the sink (``summary["change"]``) at the configured price per t CO2e."""
    prices = load_prices()
    name = cfg.price if isinstance(cfg.price, str) else None
    per_tco2 = (float(prices.loc[name, "price"]) if name else float(cfg.price))
    currency = str(prices.loc[name, "currency"]) if name else "per t CO2e (user)"
    c = summary["change"]
    summary["valuation"] = {
        "price_per_tCO2e": per_tco2, "currency": currency, "price_name": name,
        "price_source": str(prices.loc[name, "source"]) if name else "project file",
        "sink_value": c["sink_tCO2e"] * per_tco2,
        "sink_value_per_yr": c["sink_tCO2e_per_yr"] * per_tco2,
        "note": "shadow value: forest and soil sinks are not eligible for the national ETS",
    }


def uncertainty(areas: dict[int, pd.DataFrame], table: CarbonTable, cfg: ProjectConfig
                ) -> pd.DataFrame:
    """Monte Carlo (seeded) and IPCC Approach 1 intervals per zone and in total."""
    means, sds = table.means(), table.sds()
    mc = monte_carlo(areas, means, sds, draws=cfg.mc_draws, seed=cfg.mc_seed)
    a1 = approach1(areas, means, sds)
    return pd.concat([mc.summary.assign(method="monte_carlo", draws=cfg.mc_draws,
                                        seed=cfg.mc_seed),
                      a1.assign(method="approach1")], ignore_index=True)


def uncertainty_summary(unc: pd.DataFrame, cfg: ProjectConfig) -> dict[str, Any]:
    """The county totals' 95 % intervals, for summary.json."""
    tot = unc[(unc["zone"] == TOTAL) & (unc["method"] == "monte_carlo")]
    out: dict[str, Any] = {"method": "Monte Carlo", "draws": cfg.mc_draws, "seed": cfg.mc_seed,
                           "basis": "Tier 1 class coefficients and their declared sds; "
                                    "same draw for every year"}
    for _, r in tot.iterrows():
        key = f"stock_{int(r['year'])}" if r["quantity"] == "stock" else "sink"
        out[key] = {"central_tC": r["central_tC"], "p2_5_tC": r["p2_5_tC"],
                    "p97_5_tC": r["p97_5_tC"]}
    return out


def uncertainty_by_zone(unc: pd.DataFrame, cfg: ProjectConfig) -> pd.DataFrame:
    """Per zone: 95 % interval of the last year's stock and of the sink (t C)."""
    mc = unc[(unc["method"] == "monte_carlo") & (unc["zone"] != TOTAL)]
    y1 = cfg.years[-1]
    st = mc[(mc["quantity"] == "stock") & (mc["year"] == y1)].set_index("zone")
    out = pd.DataFrame({f"stock_tC_p2_5_{y1}": st["p2_5_tC"],
                        f"stock_tC_p97_5_{y1}": st["p97_5_tC"]})
    sk = mc[mc["quantity"] == "sink"].set_index("zone")
    if len(sk):
        out["sink_tCO2e_p2_5"] = sk["p2_5_tCO2e"]
        out["sink_tCO2e_p97_5"] = sk["p97_5_tCO2e"]
    return out.rename_axis("zone").reset_index()


def farmland_soc(cfg: ProjectConfig, town: pd.DataFrame, confirmed: pd.Series | None = None
                 ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Annual SOC sink of the conservation-tillage area per township (IPCC Tier 1).

    Counts the area ``confirmed`` by the tillage verification when it ran ([tillage]), else the
    *declared* area of the parcels (and says which in ``area_basis``).
    """
    f = cfg.parcel_fields
    parcels = read_vector(cfg.parcels)
    declared = normalize_practice(parcels[f["practice"]], source=cfg.parcels,
                                  column=f["practice"]) == CONSERVATION
    cons = parcels[declared]
    declared_mu = pd.to_numeric(cons[f["area_mu"]], errors="coerce").groupby(
        cons[f["township"]].astype(str)).sum()
    by_name = town.set_index("name")
    names = set(declared_mu.index) | (set(confirmed.index) if confirmed is not None else set())
    unknown = sorted(names - set(by_name.index.astype(str)))
    if unknown:
        log.warning("%s: parcels in unknown townships %s are left out", cfg.parcels, unknown)
    declared_mu = declared_mu.reindex(by_name.index.astype(str)).fillna(0.0)
    area_mu = (confirmed.reindex(by_name.index.astype(str)).fillna(0.0) if confirmed is not None
               else declared_mu)
    ts = tillage_sink(area_mu, unit="mu", practice=cfg.tillage_practice,
                      edition=cfg.soc_edition)
    town = town.assign(tillage_declared_mu=declared_mu.to_numpy(),
                       tillage_area_mu=area_mu.to_numpy(),
                       tillage_sink_tCO2e_per_yr=pd.Series(ts.sink_tCO2e_per_yr).to_numpy())
    basis = ("confirmed by imagery (sinkmap tillage; tillage/summary.json)" if confirmed is not None
             else "declared (not verified: add [tillage] to verify it from imagery)")
    block = {"area_basis": basis, "practice": cfg.tillage_practice,
             "edition": cfg.soc_edition, "area_mu": float(area_mu.sum()),
             "declared_area_mu": float(declared_mu.sum()),
             "sink_tC_per_yr": float(pd.Series(ts.sink_tC_per_yr).sum()),
             "sink_tCO2e_per_yr": float(pd.Series(ts.sink_tCO2e_per_yr).sum()),
             "rate_tCO2e_per_ha_per_yr": ts.tCO2e_per_ha_per_yr, "years": ts.years,
             "target_mu": 80_000, "unverified_factors": list(ts.unverified)}
    return town, block


def wetlands(cfg: ProjectConfig, town: pd.DataFrame, zones: gpd.GeoDataFrame, before: Any,
             after: Any, scheme: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Restored wetland (cropland -> marsh) per township: soil CO2 removal beside CH4.

    IPCC 2013 Wetlands Supplement Tier 1; at default factors restored wetlands are often net
    emitters, which the report shows as a negative net.
    """
    t = scheme.table
    crop = t.index[t["ipcc_category"] == "cropland"].to_numpy()
    marsh = t.index[t.get("canonical", pd.Series(dtype=str)).isin(["marsh", "inland_flat"])]
    restored = (before.isin(crop) & after.isin(marsh.to_numpy())).astype("float32")
    restored = restored.rio.write_crs(before.rio.crs).rio.write_transform(before.rio.transform())
    restored = restored.rio.write_nodata(None, encoded=False)
    restored.attrs.update(units="fraction", kind="continuous")
    st = zonal_stats(restored, zones, cfg.zone_id_field, method=cfg.zonal_method)
    pixel_ha = GridSpec.of(before).pixel_area_m2 / 10_000
    area = (st.set_index("zone")["sum"] * pixel_ha).reindex(town["zone"]).fillna(0.0)
    wb = wetland_restoration(area, years_since=cfg.wetland_years_since)
    fr = wb.to_frame()
    town = town.assign(wetland_restored_ha=area.to_numpy(),
                       wetland_co2_removal_tCO2e_per_yr=fr["co2_removal_tCO2e_per_yr"].to_numpy(),
                       wetland_ch4_tCO2e_per_yr=fr["ch4_emission_tCO2e_per_yr"].to_numpy(),
                       wetland_net_tCO2e_per_yr=fr["net_tCO2e_per_yr"].to_numpy())
    net = float(fr["net_tCO2e_per_yr"].sum())
    block = {"restored_ha": float(area.sum()), "years_since": cfg.wetland_years_since,
             "co2_removal_tCO2e_per_yr": float(fr["co2_removal_tCO2e_per_yr"].sum()),
             "ch4_emission_tCH4_per_yr": float(fr["ch4_emission_tCH4_per_yr"].sum()),
             "ch4_emission_tCO2e_per_yr": float(fr["ch4_emission_tCO2e_per_yr"].sum()),
             "net_tCO2e_per_yr": net, "gwp_ch4": wb.gwp_ch4,
             "method": "IPCC 2013 Wetlands Supplement Tier 1 (inland mineral soils, rewetting)",
             "note": ("net GHG SOURCE at default factors: CH4 outweighs the soil CO2 removal"
                      if net < 0 else "net GHG sink"),
             "unverified_factors": list(wb.unverified)}
    return town, block
