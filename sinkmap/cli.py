"""The ``sinkmap`` command: a thin layer over the library (no computation lives here)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from rasterio.errors import NotGeoreferencedWarning

from gis.errors import ConfigError, SinkmapError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sinkmap",
        description="Carbon-sink and land-use mapping for a county: validate a project, run "
        "it, or generate and run the demo county.")
    from sinkmap import __version__

    p.add_argument("--version", action="version", version=f"sinkmap {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate the demo county (Meihekou) and run the baseline")
    d.add_argument("--out", type=Path, default=Path("sinkmap-demo"), help="output folder")
    d.add_argument("--resolution", type=float, default=30.0, help="cell size in metres (30)")
    d.add_argument("--seed", type=int, default=2020, help="random seed of the generator")
    d.add_argument("--lang", choices=("zh", "en"), default="zh", help="map language")
    d.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    r = sub.add_parser("run", help="run the carbon baseline for a project file")
    r.add_argument("project", type=Path, help="project file (TOML)")
    r.add_argument("--out", type=Path, help="output folder (default: [outputs] dir)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output folder")

    c = sub.add_parser("carbon", help="InVEST-compatible carbon storage and sequestration")
    c.add_argument("--lulc", type=Path, required=True, help="current land use/cover raster")
    c.add_argument("--lulc-future", type=Path, help="future (or later) land use/cover raster")
    c.add_argument("--pools", type=Path, required=True,
                   help="InVEST pools CSV: lucode, c_above, c_below, c_soil, c_dead (Mg C/ha)")
    c.add_argument("--out", type=Path, required=True, help="output folder")
    c.add_argument("--zones", type=Path, help="polygons to summarise by (e.g. townships)")
    c.add_argument("--zone-field", help="zone id column")
    c.add_argument("--price", type=float, help="price per t C, as InVEST (default: China ETS "
                   "2024 average 95.96 CNY/t CO2 x 44/12, when valuation is asked for)")
    c.add_argument("--discount-rate", type=float, help="annual discount rate, %%")
    c.add_argument("--rate-change", type=float, help="annual change of the price, %%")
    c.add_argument("--years", type=int, nargs=2, metavar=("Y0", "Y1"),
                   help="years of the current and future maps (for the NPV)")
    c.add_argument("--align", action="store_true",
                   help="resample the future map onto the current grid (nearest) if they differ")
    c.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    mp = sub.add_parser("maps", help="write the offline atlas (RUN_DIR/maps/index.html) of a run")
    mp.add_argument("run_dir", type=Path, help="outputs folder of `sinkmap run` / `sinkmap demo`")
    mp.add_argument("--lang", choices=("zh", "en"), default="zh", help="map language")
    mp.add_argument("--overwrite", action="store_true", help="replace an existing maps folder")
    mp.add_argument("--no-print", action="store_true", help="skip the PNG/PDF print maps")
    mp.add_argument("--basemap", choices=("none", "osm", "tianditu", "xyz"), default="none",
                    help="tile basemap (default none: fully offline; tianditu reads "
                    "TIANDITU_KEY)")
    mp.add_argument("--basemap-url", help="XYZ tile URL template for --basemap xyz")

    t = sub.add_parser("tillage", help="verify declared conservation-tillage parcels from "
                       "spring Sentinel-2 / Landsat imagery (residue cover from NDTI)")
    t.add_argument("--parcels", type=Path, action="append", required=True,
                   help="declared parcels (GPKG/SHP); once, or once per --year")
    t.add_argument("--imagery", type=Path, action="append", required=True,
                   help="STAC ItemCollection JSON or folder of band GeoTIFFs; one per --year")
    t.add_argument("--year", type=int, action="append", required=True,
                   help="year verified (repeat with --imagery for year-over-year)")
    t.add_argument("--out", type=Path, required=True, help="output folder")
    t.add_argument("--samples", type=Path, action="append",
                   help="field samples (points or parcels) with observed residue cover %%; "
                   "calibrates the residue model; once, or once per --year")
    t.add_argument("--window", nargs=2, metavar=("MM-DD", "MM-DD"), default=("04-01", "05-31"),
                   help="post-planting window (default 04-01 05-31)")
    t.add_argument("--threshold", type=float, default=30.0,
                   help="residue cover %% for conservation tillage (default 30, FAO/CTIC)")
    t.add_argument("--ndvi-max", type=float, default=0.3,
                   help="pixels greener than this NDVI are not used (default 0.3)")
    t.add_argument("--min-pixels", type=int, default=4, help="smallest parcel, pixels (4)")
    t.add_argument("--min-clear-pixels", type=int, default=4,
                   help="fewest clear pixels to judge a parcel (4)")
    t.add_argument("--min-observed", type=float, default=0.5,
                   help="smallest share of a parcel seen on a usable date (0.5)")
    t.add_argument("--id-field", default="parcel_id")
    t.add_argument("--township-field", default="township")
    t.add_argument("--practice-field", default="declared_practice")
    t.add_argument("--area-field", default="declared_area_mu")
    t.add_argument("--sample-field", default="residue_pct")
    t.add_argument("--practice", action="append", default=[], metavar="VALUE=CLASS",
                   help="map a practice value to conservation/conventional (repeatable)")
    t.add_argument("--residue-table", type=Path, help="CSV replacing the default residue model")
    t.add_argument("--area-basis", choices=("measured", "declared"), default="measured",
                   help="area counted for a parcel: its polygon's (default) or the declared mu")
    t.add_argument("--target-mu", type=float, default=80_000.0,
                   help="conservation-tillage target in mu (default 80,000)")
    t.add_argument("--no-rasters", action="store_true",
                   help="do not write the composite rasters (ndti_min, usable_dates)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    gr = sub.add_parser("green", help="urban green space: coverage (NDVI or land cover), per "
                        "district, per capita, park service, new green against the target")
    urb = gr.add_mutually_exclusive_group(required=True)
    urb.add_argument("--urban", type=Path, help="urban boundary polygon(s) (城镇开发边界)")
    urb.add_argument("--urban-classes", nargs="+", metavar="CLASS",
                     help="no boundary: the built-up area from these land-cover classes "
                     "(e.g. settlement urban_green), closed by 100 m, holes filled, pieces "
                     ">= 100 ha")
    src = gr.add_mutually_exclusive_group(required=True)
    src.add_argument("--imagery", type=Path, action="append",
                     help="summer scenes: STAC JSON or folder (repeatable; scenes of the year and "
                     "of the baseline year are picked by date)")
    src.add_argument("--landcover", type=Path,
                     help="land cover of the year (green classes) when no imagery exists")
    gr.add_argument("--with-landcover", dest="aux_landcover", type=Path,
                    help="with --imagery: land cover of the year for the residential area, "
                    "--exclude-classes and the transitions")
    gr.add_argument("--urban-close", dest="urban_close_m", type=float,
                    help="with --urban-classes: closing radius, m (100)")
    gr.add_argument("--urban-min-ha", dest="urban_min_ha", type=float,
                    help="with --urban-classes: smallest built-up piece kept, ha (100)")
    gr.add_argument("--year", type=int, required=True, help="the year to map")
    gr.add_argument("--baseline-year", type=int, help="earlier year for new / lost green")
    gr.add_argument("--baseline-landcover", type=Path,
                    help="land cover of the baseline year (green mask without imagery; the "
                    "classes new green came from)")
    gr.add_argument("--scheme", default="gbt21010", help="class scheme of the land cover")
    gr.add_argument("--districts", type=Path, help="district polygons (non-overlapping)")
    gr.add_argument("--district-field", default="name", help="district name column (name)")
    gr.add_argument("--population-field", default="population",
                    help="population column of --districts (population; 'none': no population; "
                    "an empty cell is an unknown population)")
    gr.add_argument("--parks", type=Path, help="park polygons (公园绿地) for park service")
    gr.add_argument("--park-field", default="name", help="park name column (name)")
    gr.add_argument("--residential", type=Path,
                    help="residential polygons (default: residential land-cover classes)")
    gr.add_argument("--threshold", type=float,
                    help="fixed NDVI threshold (default: Otsu's, chosen per year and reported)")
    gr.add_argument("--season", nargs=2, metavar=("MM-DD", "MM-DD"),
                    help="summer window of the scenes (06-01 08-31)")
    gr.add_argument("--min-area", dest="min_area_m2", type=float,
                    help="minimum mapping unit of a green patch, m2 (400)")
    gr.add_argument("--min-observed", dest="min_observed_pct", type=float,
                    help="least observed share of a district, %% (50)")
    gr.add_argument("--green-classes", nargs="+",
                    help="land-cover green classes (canonical names or codes)")
    gr.add_argument("--exclude-classes", nargs="+",
                    help="land-cover classes never counted green (e.g. paddy dry_cropland)")
    gr.add_argument("--residential-classes", nargs="+",
                    help="residential land-cover classes (701 702 for GB/T 21010)")
    gr.add_argument("--target-mu", type=float, help="new-green target, mu (3200)")
    gr.add_argument("--table", type=Path, help="CSV replacing green_space.csv (defaults)")
    gr.add_argument("--out", type=Path, required=True, help="output folder")
    gr.add_argument("--lang", choices=("zh", "en"), default="zh")
    gr.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    ms = sub.add_parser("mspa", help="Morphological Spatial Pattern Analysis (GuidosToolbox "
                        "classes and bytes) of a 0 missing / 1 background / 2 foreground raster")
    ms.add_argument("input", type=Path, help="GeoTIFF: 0 missing, 1 background, 2 foreground")
    ms.add_argument("output", type=Path, help="output COG of MSPA bytes (uint8)")
    ms.add_argument("--edge-width", type=int, default=1, help="edge width in pixels (1)")
    ms.add_argument("--connectivity", type=int, choices=(8, 4), default=8,
                    help="foreground connectivity (8; background then 4)")
    ms.add_argument("--transition", type=int, choices=(0, 1), default=1,
                    help="1: keep loop/bridge bytes inside edge/perforation (default)")
    ms.add_argument("--intext", type=int, choices=(0, 1), default=1,
                    help="1: +100 on features inside core holes (default)")
    ms.add_argument("--overwrite", action="store_true", help="replace an existing output")

    e = sub.add_parser("ecology", help="ecological-protection pattern: MSPA cores ranked by dPC, "
                       "resistance, least-cost corridors, circuit current, pinch points, "
                       "barriers, zones with carbon, landscape metrics")
    e.add_argument("--landcover", type=Path, required=True, help="land-cover raster (classes)")
    e.add_argument("--scheme", default="gbt21010",
                   help="class scheme of the land cover: a shipped name or a CSV (gbt21010)")
    e.add_argument("--dem", type=Path, help="DEM for the slope factor of the resistance")
    e.add_argument("--align-dem", action="store_true",
                   help="resample the DEM (bilinear) onto the land-cover grid if it differs")
    e.add_argument("--roads", type=Path, help="road lines for the distance-to-road factor")
    e.add_argument("--zones", type=Path, help="ecological zones (polygons) instead of the "
                   "derived core / corridor / buffer / other zones")
    e.add_argument("--zone-field", help="zone name column of --zones (default: row number)")
    e.add_argument("--region", type=Path, help="study-area polygon (cells outside are missing)")
    e.add_argument("--out", type=Path, required=True, help="output folder")
    e.add_argument("--cores", type=int, default=5, help="number of cores to select (5)")
    e.add_argument("--corridors", type=int, default=3, help="number of corridors to select (3)")
    e.add_argument("--rank-corridors-by", dest="rank_corridors_by",
                   choices=("cost", "length_m", "cwd_to_path_length_ratio"),
                   help="rank the links by least-cost path cost (default), length, or cost per "
                   "metre")
    e.add_argument("--min-core-ha", dest="min_core_ha", type=float,
                   help="smallest MSPA core patch that can be a core, ha (100)")
    e.add_argument("--min-core-gap", dest="min_core_gap_m", type=float,
                   help="least edge-to-edge distance between selected cores, m (2000)")
    e.add_argument("--edge-width", dest="edge_width", type=int, help="MSPA edge width, cells (1)")
    e.add_argument("--threshold", dest="threshold_m", type=float,
                   help="dPC distance threshold, m, where p = 0.5 (2000)")
    e.add_argument("--corridor-cwd", dest="corridor_cwd", type=float,
                   help="corridor width as cost-weighted distance above the least-cost path "
                   "(5000)")
    e.add_argument("--buffer-cwd", dest="buffer_cwd", type=float,
                   help="buffer zone: cost-weighted distance from a core (default = corridor)")
    e.add_argument("--circuit-factor", dest="circuit_factor", type=int,
                   help="solve the circuit on k x k coarser cells (1)")
    e.add_argument("--no-circuit", action="store_true", help="skip the circuit current")
    e.add_argument("--habitat", nargs="+", help="habitat classes (canonical names or codes)")
    e.add_argument("--carbon-table", default="default",
                   help="carbon table for the zones' stocks (shipped name or CSV; 'none' to skip)")
    e.add_argument("--resistance-table", type=Path, help="CSV replacing resistance_classes.csv")
    e.add_argument("--lang", choices=("zh", "en"), default="zh", help="zone names language")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")

    v = sub.add_parser("validate", help="check a project file and all its inputs, report every "
                       "problem, exit non-zero if any")
    v.add_argument("project", type=Path, help="project file (TOML)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # GDAL's block cache defaults to 5 % of RAM; a bounded cache keeps memory flat with size.
    os.environ.setdefault("GDAL_CACHEMAX", "128")
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    # rasterize/reproject on in-memory blocks in dask threads emit this spuriously; sinkmap
    # refuses rasters without CRS/transform on its own (gis.raster_io.read_raster).
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    try:
        return _dispatch(args)
    except ConfigError as e:
        print(f"sinkmap: {e}", file=sys.stderr)
        return 2
    except SinkmapError as e:
        print(f"sinkmap: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sinkmap: interrupted; no output was left behind", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from sinkmap.config import load_config, validate

    if args.command == "validate":
        cfg = load_config(args.project)
        problems = validate(cfg)
        if problems:
            raise ConfigError(problems, source=args.project)
        print(f"{args.project}: OK ({len(cfg.years)} year(s): "
              f"{', '.join(map(str, cfg.years))}; zones {cfg.zones.name})")
        return 0
    if args.command == "run":
        from sinkmap.pipeline import run

        res = run(load_config(args.project, out_dir=args.out), overwrite=args.overwrite,
                  verbose=not args.quiet)
        _report(res.out_dir, res.summary)
        return 0
    if args.command == "maps":
        from sinkmap.atlas import write_atlas

        index = write_atlas(args.run_dir, lang=args.lang, overwrite=args.overwrite,
                            print_maps=not args.no_print, basemap=args.basemap,
                            basemap_url=args.basemap_url)
        print(f"atlas: {index}")
        return 0
    if args.command == "carbon":
        from sinkmap.carbon_cmd import make_valuation, run_carbon

        val = make_valuation(args.price, args.discount_rate, args.rate_change,
                             tuple(args.years) if args.years else None)
        summary = run_carbon(args.lulc, args.pools, args.out, lulc_future=args.lulc_future,
                             zones=args.zones, zone_field=args.zone_field, valuation=val,
                             align=args.align, overwrite=args.overwrite, verbose=not args.quiet)
        print(f"current stock {summary['stock_current_tC']:,.3f} t C")
        if "change_tC" in summary:
            print(f"future stock {summary['stock_future_tC']:,.3f} t C; change "
                  f"{summary['change_tC']:,.3f} t C ({summary['change_tCO2e']:,.0f} t CO2e)")
        if "npv" in summary:
            print(f"NPV {summary['npv']:,.0f}")
        print(f"outputs: {args.out}")
        return 0
    if args.command == "tillage":
        from sinkmap.tillage_cmd import run_tillage, settings_from_args, year_inputs

        summary = run_tillage(year_inputs(args.year, args.imagery, args.parcels, args.samples),
                              args.out, settings_from_args(args), overwrite=args.overwrite,
                              verbose=not args.quiet)
        _report_tillage(args.out, summary)
        return 0
    if args.command == "ecology":
        from sinkmap.ecology_cmd import EcologyInputs, brief, run_ecology, settings_from_args

        inputs = EcologyInputs(
            landcover=args.landcover, scheme=args.scheme, dem=args.dem, align_dem=args.align_dem,
            roads=args.roads, zones=args.zones, zone_field=args.zone_field, region=args.region,
            carbon_table=None if args.carbon_table == "none" else args.carbon_table,
            resistance_classes=args.resistance_table)
        summary = run_ecology(inputs, args.out, settings_from_args(args),
                              overwrite=args.overwrite, verbose=not args.quiet)
        print("\n".join(brief(summary)))
        print(f"outputs: {args.out}")
        return 0
    if args.command == "green":
        from sinkmap.green_cmd import (
            GreenInputs,
            brief,
            class_list,
            run_green,
            settings_from_mapping,
        )

        ginputs = GreenInputs(
            urban=args.urban, year=args.year, imagery=tuple(args.imagery or ()),
            landcover=args.landcover or args.aux_landcover, baseline_year=args.baseline_year,
            baseline_landcover=args.baseline_landcover, scheme=args.scheme,
            districts=args.districts, district_field=args.district_field,
            population_field=None if args.population_field.lower() == "none"
            else args.population_field, parks=args.parks, park_field=args.park_field,
            residential=args.residential, table=args.table,
            urban_classes=class_list(args.urban_classes) if args.urban_classes else None)
        gsettings = settings_from_mapping(vars(args), table=args.table)
        gsummary = run_green(ginputs, args.out, gsettings, overwrite=args.overwrite,
                             verbose=not args.quiet, lang=args.lang)
        print(brief(gsummary))
        print(f"outputs: {args.out}")
        return 0
    if args.command == "mspa":
        from layers.mspa import mspa_file

        st = mspa_file(args.input, args.output, edge_width=args.edge_width,
                       connectivity=args.connectivity, transition=args.transition,
                       intext=args.intext, overwrite=args.overwrite)
        _report_mspa(args.output, st)
        return 0
    if args.command == "demo":
        from sinkmap.demo import run_demo

        res = run_demo(args.out, resolution_m=args.resolution, seed=args.seed, lang=args.lang,
                       overwrite=args.overwrite, verbose=not args.quiet)
        _report(res.out_dir, res.summary)
        return 0
    raise AssertionError(args.command)  # argparse guarantees a known command


def _report_mspa(out: Path, st: dict) -> None:
    for name in ("core", "islet", "perforation", "edge", "loop", "bridge", "branch"):
        c = st.get("classes", {}).get(name)
        if isinstance(c, dict):
            print(f"{name:12s} {c.get('percent', float('nan')):6.2f} % of foreground, "
                  f"{c.get('objects', 0):,} objects")
    print(f"output: {out}")


def _report_tillage(out: Path, s: dict) -> None:
    c = s["parcel_counts"]
    print(f"{s['year']}: declared {s['declared_area_mu']:,.0f} mu; confirmed "
          f"{s['confirmed_area_mu']:,.0f} mu ({c['confirmed']} parcels), not confirmed "
          f"{s['not_confirmed_area_mu']:,.0f} mu ({c['not_confirmed']}), undetermined "
          f"{s['undetermined_area_mu']:,.0f} mu ({c['undetermined']})")
    print(f"target {s['target_mu']:,.0f} mu: {s['confirmed_pct_of_target']:.1f} % reached")
    if "accuracy" in s and s["accuracy"].get("overall_accuracy") is not None:
        a = s["accuracy"]
        print(f"field samples: overall accuracy {100 * a['overall_accuracy']:.1f} %, kappa "
              f"{a['kappa']:.2f} (n = {a['n']}{', in-sample' if a['in_sample'] else ''})")
    print(f"outputs: {out}")


def _report(out: Path, summary: dict) -> None:
    for year, t in summary["totals"].items():
        print(f"{year}: carbon stock {t['stock_tC']:,.0f} t C over {t['valid_area_ha']:,.0f} ha")
    if "change" in summary:
        c = summary["change"]
        print(f"{c['from']}-{c['to']}: sink {c['sink_tCO2e']:,.0f} t CO2e "
              f"({c['sink_tCO2e_per_yr']:,.0f} t CO2e/yr; removal positive)")
    if "tillage" in summary:
        t = summary["tillage"]
        print(f"conservation tillage {t['year']}: confirmed {t['confirmed_area_mu']:,.0f} mu of "
              f"{t['declared_area_mu']:,.0f} mu declared; target {t['target_mu']:,.0f} mu "
              f"({t['confirmed_pct_of_target']:.1f} %)")
        a = t.get("accuracy_vs_truth")
        if a and a.get("overall_accuracy") is not None:
            print(f"  against the demo's truth: overall accuracy "
                  f"{100 * a['overall_accuracy']:.1f} %, kappa {a['kappa']:.2f} "
                  f"({a['n_judged']} parcels judged, "
                  f"{a['n_undetermined']} undetermined)")
    if "green" in summary:
        from sinkmap.green_cmd import brief

        g = summary["green"]
        print(f"urban green {g['year']}: {brief(g)}")
        v = g.get("vs_truth")
        if v and v.get("pixel_agreement") is not None:
            print(f"  against the demo's truth: {100 * v['pixel_agreement']:.1f} % of pixels "
                  f"agree; green {v['green_mu_truth']:,.0f} mu, new {v['new_green_mu_truth']:,.0f} "
                  f"mu, lost {v['lost_green_mu_truth']:,.0f} mu in the truth")
    print(f"outputs: {out}")


if __name__ == "__main__":
    sys.exit(main())
