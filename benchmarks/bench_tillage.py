"""Benchmark: conservation-tillage verification of 100,000 parcels over the 10 m demo county.

    .venv/bin/python benchmarks/bench_tillage.py [--parcels 100000] [--dates 6] [--keep DIR]

Setup (not timed): the demo county at 10 m, its Sentinel-2-like spring imagery at 10 m (B04/B08
at 10 m, B11/B12/SCL at 20 m) on ``--dates`` dates inside the window, and ``--parcels`` square
parcels (about 1 ha) laid on a lattice over the 2025 cropland, with declarations and townships.

Timed, in a fresh process (peak RSS of that process): ``sinkmap tillage`` as the library runs
it (``run_tillage``: read parcels and scenes, composite, per-parcel evidence from rasterised
parcels, decisions, GPKG + XLSX + CSV + composite COGs). Targets: < 2 min, < 2 GB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

RUN = r"""
import os, json, resource, sys, time
os.environ.setdefault("GDAL_CACHEMAX", "128")
import warnings; warnings.filterwarnings("ignore")
from pathlib import Path
from sinkmap.tillage_cmd import TillageSettings, YearInput, run_tillage
d = Path(sys.argv[1])
t0 = time.perf_counter()
s = run_tillage([YearInput(2025, d / "imagery" / "items.json", d / "bench_parcels.gpkg")],
                d / "out", TillageSettings(), verbose=False)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": dt, "peak_rss_mb": rss,
                  "parcels": s["n_parcels"], "counts": s["parcel_counts_all"],
                  "dates_used": len(s["dates_used"]), "grid": s["analysis_grid"]}))
"""


def make_parcels(county: Path, n: int, out: Path) -> int:
    """``n`` square parcels on a lattice over 2025 cropland (centre cell is cropland)."""
    import geopandas as gpd
    import numpy as np
    import rasterio
    import shapely

    from sinkmap.demo_county import CROPLAND_CODES

    with rasterio.open(county / "inputs" / "landcover_2025.tif") as src:
        lc = src.read(1)
        t = src.transform
        crs = src.crs
    towns = gpd.read_file(county / "inputs" / "townships.gpkg")
    crop = np.isin(lc, list(CROPLAND_CODES))
    for side in (100.0, 95.0, 90.0, 85.0, 80.0, 75.0, 70.0):
        step = round(side / t.a)
        rows = np.arange(step // 2, lc.shape[0], step)
        cols = np.arange(step // 2, lc.shape[1], step)
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        ok = crop[rr, cc]
        if ok.sum() >= n:
            break
    rr, cc = rr[ok][:n], cc[ok][:n]
    x, y = t * (cc + 0.5, rr + 0.5)
    h = side / 2 - 1.0
    geoms = shapely.box(x - h, y - h, x + h, y + h)
    rng = np.random.default_rng(5)
    g = gpd.GeoDataFrame({
        "parcel_id": [f"B{i:06d}" for i in range(len(geoms))],
        "declared_practice": np.where(rng.random(len(geoms)) < 0.4, "conservation",
                                      "conventional"),
        "declared_area_mu": np.round((2 * h) ** 2 / 666.67, 1),
    }, geometry=geoms, crs=crs)
    j = gpd.sjoin(gpd.GeoDataFrame(geometry=g.geometry.centroid, crs=crs),
                  towns[["name_zh", "geometry"]], how="left", predicate="within")
    j = j[~j.index.duplicated()]
    g["township"] = j["name_zh"].fillna("unknown").to_numpy()
    g.to_file(out)
    return len(g)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parcels", type=int, default=100_000)
    ap.add_argument("--dates", type=int, default=6)
    ap.add_argument("--resolution", type=float, default=10.0)
    ap.add_argument("--keep", type=Path, help="keep the data in this folder")
    a = ap.parse_args()
    from sinkmap.demo_county import CountyModel, generate_county
    from sinkmap.demo_imagery import generate_spring_imagery

    base = a.keep or Path(tempfile.mkdtemp(prefix="bench_tillage_"))
    base.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not (base / "inputs" / "landcover_2025.tif").exists():
        generate_county(base, resolution_m=a.resolution)
    t1 = time.perf_counter()
    dates = [date(2025, 4, 14) + timedelta(days=7 * k) for k in range(a.dates)]
    if not (base / "imagery" / "items.json").exists():
        model = CountyModel.build(seed=2020, resolution_m=a.resolution)
        generate_spring_imagery(model, base / "imagery", year=2025, dates=dates,
                                resolution_m=a.resolution, parcels=base / "inputs/parcels.gpkg")
    t2 = time.perf_counter()
    n = make_parcels(base, a.parcels, base / "bench_parcels.gpkg")
    t3 = time.perf_counter()
    print(f"setup: county {t1 - t0:.0f} s, imagery {t2 - t1:.0f} s ({a.dates} dates), "
          f"{n:,} parcels {t3 - t2:.0f} s", file=sys.stderr)
    shutil.rmtree(base / "out", ignore_errors=True)  # a kept folder's previous result
    out = subprocess.run([sys.executable, "-c", RUN, str(base)], capture_output=True, text=True)
    if out.returncode:
        print(out.stderr, file=sys.stderr)
        return out.returncode
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(r, indent=1))
    print(f"tillage: {r['parcels']:,} parcels, {r['dates_used']} dates: {r['seconds']:.1f} s, "
          f"peak RSS {r['peak_rss_mb']:.0f} MB (targets: < 120 s, < 2048 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
