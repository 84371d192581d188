"""``sinkmap carbon``: InVEST Carbon's inputs and totals, sinkmap's outputs.

Takes InVEST's own inputs unchanged (LULC GeoTIFFs in a projected CRS, a pools CSV indexed by
``lucode``) and reports the same totals as InVEST's Carbon Storage and Sequestration model; adds
per-zone tables, the transition matrix with the carbon change of each transition, unknown-area
reporting and COG outputs. Orchestration only: the computation is in ``sinks.carbon``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gis.atomic import atomic_path
from gis.errors import GridMismatchError
from gis.grid import GridSpec, assert_same_grid
from gis.raster_io import read_raster, write_cog
from gis.vector_io import read_vector
from gis.zonal import class_area_table
from sinkmap.manifest import write_manifest
from sinkmap.progress import Steps
from sinkmap.publish import write_styles
from sinks.carbon import (
    SIGN_CONVENTION,
    common_change,
    stock,
    transition_matrix,
    unknown_area_ha,
)
from sinks.coefficients import load_invest_pools
from sinks.density import carbon_density
from sinks.units import CO2_PER_C
from sinks.valuation import invest_npv, price_per_tC

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Valuation:
    price_per_tC: float
    discount_rate_pct: float
    rate_change_pct: float
    years: tuple[int, int]


def run_carbon(lulc: Path, pools: Path, out: Path, *, lulc_future: Path | None = None,
               zones: Path | None = None, zone_field: str | None = None,
               valuation: Valuation | None = None, align: bool = False,
               overwrite: bool = False, verbose: bool = True) -> dict[str, Any]:
    """Run the InVEST-compatible carbon model; returns the summary written to ``summary.json``."""
    steps = Steps(total=4 + (lulc_future is not None) * 2 + (zones is not None), verbose=verbose)
    with steps.step("read inputs"):
        table = load_invest_pools(pools)
        cur = read_raster(lulc, kind="categorical")
        fut = read_raster(lulc_future, kind="categorical") if lulc_future else None
        if fut is not None:
            try:
                assert_same_grid(cur, fut, names=(str(lulc), str(lulc_future)))
            except GridMismatchError:
                if not align:
                    raise
                from gis.grid import align_to

                log.warning("aligning %s to the grid of %s (nearest neighbour, --align)",
                            lulc_future, lulc)
                fut = align_to(fut, GridSpec.of(cur), resampling="nearest")
        zgdf = None
        if zones is not None:
            zgdf = read_vector(zones)
            if zgdf.crs != cur.rio.crs:
                log.warning("reprojecting zones %s from %s to the LULC CRS %s", zones,
                            zgdf.crs, cur.rio.crs)
                zgdf = zgdf.to_crs(cur.rio.crs)
    inputs = [p for p in (lulc, lulc_future, pools, zones) if p is not None]
    with atomic_path(out, overwrite=overwrite, inputs=inputs) as stage:
        stage.mkdir(parents=True)
        with steps.step("stock, current"):
            s_cur = stock(cur, table, label="current")
        summary: dict[str, Any] = {
            "stock_current_tC": s_cur.total_tC,
            "stock_current_tCO2e": s_cur.total_tC * CO2_PER_C,
            "pools_current_tC": s_cur.pools_tC,
            "valid_pixels_current": int(s_cur.counts.sum()),
            "pixel_area_ha": s_cur.pixel_ha,
            "pools_table": str(pools), "units": "t C (= Mg C); t CO2e = t C x 44/12",
            "sign_convention": SIGN_CONVENTION,
        }
        with steps.step("density rasters"):
            write_cog(carbon_density(cur, table), stage / "carbon_density_current_tC_per_ha.tif")
        if fut is not None:
            with steps.step("stock, future, and transitions"):
                s_fut = stock(fut, table, label="future")
                matrix = transition_matrix(cur, fut, table)
                ch = common_change(matrix, table)
                matrix.to_csv(stage / "transitions.csv", index=False)
                unknown = unknown_area_ha(matrix)
            summary.update({
                "stock_future_tC": s_fut.total_tC,
                "stock_future_tCO2e": s_fut.total_tC * CO2_PER_C,
                "pools_future_tC": s_fut.pools_tC,
                "valid_pixels_future": int(s_fut.counts.sum()),
                "change_tC": ch["change_tC"], "change_tCO2e": ch["change_tCO2e"],
                "change_by_pool_tC": ch["change_by_pool_tC"],
                "compared_area_ha": ch["compared_area_ha"],
                "unknown_area_ha": unknown,
            })
            if unknown["nodata_before_ha"] or unknown["nodata_after_ha"]:
                log.warning("%.1f ha are nodata in the current map only and %.1f ha in the "
                            "future map only: reported as unknown area, not as zero carbon",
                            unknown["nodata_before_ha"], unknown["nodata_after_ha"])
            if valuation is not None:
                y0, y1 = valuation.years
                summary["npv"] = invest_npv(
                    ch["change_tC"], price_per_tC=valuation.price_per_tC,
                    discount_rate_pct=valuation.discount_rate_pct,
                    rate_change_pct=valuation.rate_change_pct, years=y1 - y0)
                summary["valuation"] = {"price_per_tC": valuation.price_per_tC,
                                        "discount_rate_pct": valuation.discount_rate_pct,
                                        "rate_change_pct": valuation.rate_change_pct,
                                        "years": [y0, y1]}
            with steps.step("density rasters, future and change"):
                d_fut = carbon_density(fut, table)
                write_cog(d_fut, stage / "carbon_density_future_tC_per_ha.tif")
                d_chg = d_fut - carbon_density(cur, table)
                d_chg.attrs.update(units="tC_per_ha", kind="continuous")
                d_chg.name = "carbon_change_tC_per_ha"
                write_cog(d_chg.rio.write_nodata(float("nan"), encoded=False),
                          stage / "carbon_change_tC_per_ha.tif")
        if zgdf is not None:
            with steps.step("zone table"):
                field = zone_field or zgdf.columns[0]
                ztab = zone_table(cur, fut, zgdf, field, table, valuation)
                ztab.to_csv(stage / "zones.csv", index=False, encoding="utf-8-sig")
                ztab.to_excel(stage / "zones.xlsx", index=False)
        write_styles(stage)  # .qml beside every raster, so QGIS opens them styled
        with steps.step("summary and manifest"):
            (stage / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                                encoding="utf-8")
            write_manifest(stage / "manifest.json", inputs=inputs, outputs_dir=stage,
                           parameters={"command": "carbon", "align": align,
                                       "zone_field": zone_field,
                                       "valuation": summary.get("valuation")},
                           timings=steps.timings)
    return summary


def zone_table(cur: Any, fut: Any, zones: Any, field: str, table: Any,
               valuation: Valuation | None) -> pd.DataFrame:
    """Per-zone stocks (t C) of each map, change and NPV, from class areas per zone."""
    dens = table.total()

    def per_zone(lc: Any) -> pd.Series:
        a = class_area_table(lc, zones, field)
        return (a["area_ha"] * a["class"].map(dens)).groupby(a["zone"]).sum()

    out = pd.DataFrame({"stock_current_tC": per_zone(cur)})
    if fut is not None:
        out["stock_future_tC"] = per_zone(fut)
        out["change_tC"] = out["stock_future_tC"] - out["stock_current_tC"]
        out["change_tCO2e"] = out["change_tC"] * CO2_PER_C
        if valuation is not None:
            out["npv"] = invest_npv(out["change_tC"], price_per_tC=valuation.price_per_tC,
                                    discount_rate_pct=valuation.discount_rate_pct,
                                    rate_change_pct=valuation.rate_change_pct,
                                    years=valuation.years[1] - valuation.years[0])
    return out.rename_axis("zone").reset_index()


def make_valuation(price: float | None, discount_rate: float | None, rate_change: float | None,
                   years: tuple[int, int] | None) -> Valuation | None:
    """Valuation settings from CLI options; ``None`` when none was asked for.

    ``price`` is per t C as in InVEST; without it the default price (China ETS 2024 average,
    per t CO2) is converted to per t C.
    """
    if price is None and discount_rate is None and rate_change is None:
        return None
    if years is None:
        from gis.errors import InputError

        raise InputError("valuation needs the two scenario years",
                         fix="add --years Y0 Y1 (e.g. --years 2020 2030)")
    p = price if price is not None else price_per_tC("cea_2024_avg")
    return Valuation(p, discount_rate or 0.0, rate_change or 0.0, years)
