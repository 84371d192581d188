"""Benchmark: the carbon baseline at 10 m over the demo county (issue: sinks).

    .venv/bin/python benchmarks/bench_carbon.py [--resolution 10] [--keep DIR]

Generates the demo county once, then runs, each in a fresh process (peak RSS per process):

1. ``carbon``: for both years, Tier 1 + Tier 2 pool densities -> stocks per township (streamed
   zonal sums) -> sink -> zone table, plus 1,000 Monte Carlo draws and Approach 1 (class areas
   per township). No rasters are written: this is the computation the bureau waits for.
2. ``lookup_sinkmap``: one year's total density written by sinkmap (lazy read -> lookup ->
   streamed write), as a tiled DEFLATE GeoTIFF (like for like with 3.) and as a COG with
   overviews (what the pipeline publishes).
3. ``lookup_rasterio``: the same lookup as a plain rasterio loop (read window -> numpy
   lookup -> write window) into a tiled DEFLATE GeoTIFF, no overviews: the floor to compare to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRELUDE = r"""
import os, json, resource, sys, time
os.environ.setdefault("GDAL_CACHEMAX", "128")
import warnings; warnings.filterwarnings("ignore")
from pathlib import Path
d = Path(sys.argv[1])
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

CARBON = PRELUDE + r"""
import pandas as pd
from gis.raster_io import read_raster
from gis.vector_io import read_vector
from gis.zonal import class_area_table, zonal_stats
from gis.grid import GridSpec
from layers.landcover import load_scheme
from sinks.coefficients import load_carbon_table
from sinks.density import FOREST_CLASSES, pool_densities
from sinks.forest import inventory_carbon, load_forest_table
from sinks.uncertainty import approach1, monte_carlo
t0 = time.perf_counter()
scheme = load_scheme("gbt21010")
table = load_carbon_table("default").for_scheme(scheme)
zones = read_vector(d / "inputs/townships.gpkg")
inv = inventory_carbon(read_vector(d / "inputs/forest_inventory.gpkg"), load_forest_table())
fc = scheme.table.index[scheme.table["canonical"].isin(FOREST_CLASSES)].to_numpy()
stocks, areas = {}, {}
for y in (2020, 2025):
    lc = read_raster(d / f"inputs/landcover_{y}.tif", kind="categorical")
    _, total, _ = pool_densities(lc, table, inventory_c=inv, forest_codes=fc)
    st = zonal_stats(total, zones, "code").set_index("zone")
    stocks[y] = st["sum"] * GridSpec.of(lc).pixel_area_m2 / 1e4
    areas[y] = class_area_table(lc, zones, "code")
t1 = time.perf_counter()
zone_table = pd.DataFrame(stocks).assign(sink_tC=lambda t: t[2025] - t[2020])
mc = monte_carlo(areas, table.means(), table.sds(), draws=1000, seed=0)
a1 = approach1(areas, table.means(), table.sds())
t2 = time.perf_counter()
print(json.dumps({"stocks_zones_s": t1 - t0, "mc_a1_s": t2 - t1, "total_s": t2 - t0,
                  "peak_rss_mb": rss(), "county_stock_2020_tC": float(stocks[2020].sum()),
                  "sink_tC": float(zone_table["sink_tC"].sum())}))
"""

LOOKUP_SINKMAP = PRELUDE + r"""
from gis.raster_io import read_raster, write_cog
from layers.landcover import load_scheme
from sinks.coefficients import load_carbon_table
from sinks.density import carbon_density
t = load_carbon_table("default").for_scheme(load_scheme("gbt21010"))
t0 = time.perf_counter()
lc = read_raster(d / "inputs/landcover_2020.tif", kind="categorical")
write_cog(carbon_density(lc, t), d / "bench_sinkmap.tif", overwrite=True, cog=False)
t1 = time.perf_counter()
write_cog(carbon_density(lc, t), d / "bench_sinkmap_cog.tif", overwrite=True)
print(json.dumps({"seconds": t1 - t0, "cog_seconds": time.perf_counter() - t1,
                  "peak_rss_mb": rss()}))
"""

LOOKUP_RASTERIO = PRELUDE + r"""
import numpy as np, rasterio
from layers.landcover import load_scheme
from sinks.coefficients import load_carbon_table
t = load_carbon_table("default").for_scheme(load_scheme("gbt21010"))
lut = np.full(65536, np.nan, dtype="float32")
lut[t.table.index.to_numpy()] = t.total().to_numpy()
t0 = time.perf_counter()
with rasterio.open(d / "inputs/landcover_2020.tif") as src:
    prof = src.profile | {"dtype": "float32", "nodata": float("nan"), "driver": "GTiff",
                          "tiled": True, "blockxsize": 512, "blockysize": 512,
                          "compress": "deflate", "predictor": 3}
    with rasterio.open(d / "bench_rasterio.tif", "w", **prof) as dst:
        for _, w in src.block_windows(1):
            dst.write(lut[src.read(1, window=w)], 1, window=w)
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_rss_mb": rss()}))
"""


def child(code: str, folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(folder)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--resolution", type=float, default=10.0)
    ap.add_argument("--keep", type=Path, help="reuse/keep the generated county here")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = a.keep or Path(tmp) / "county"
        if not (folder / "inputs" / "landcover_2020.tif").exists():
            from sinkmap.demo_county import generate_county

            t = time.perf_counter()
            generate_county(folder, resolution_m=a.resolution)
            print(f"generated the demo county at {a.resolution:g} m in "
                  f"{time.perf_counter() - t:.1f} s")
        import rasterio

        with rasterio.open(folder / "inputs" / "landcover_2020.tif") as src:
            valid = int((src.read(1) != 0).sum())
            print(f"grid {src.width} x {src.height}, {valid / 1e6:.1f} Mpx inside the county")
        c = child(CARBON, folder)
        print(f"carbon (2 years, Tier 1+2, 16 townships, sink, zone table): "
              f"{c['stocks_zones_s']:.1f} s; + 1,000 MC draws and Approach 1: "
              f"{c['mc_a1_s']:.2f} s; total {c['total_s']:.1f} s; peak RSS "
              f"{c['peak_rss_mb']:.0f} MB")
        s, r = child(LOOKUP_SINKMAP, folder), child(LOOKUP_RASTERIO, folder)
        print(f"one year's density, tiled DEFLATE GeoTIFF: sinkmap {s['seconds']:.1f} s vs plain "
              f"rasterio {r['seconds']:.1f} s: ratio {s['seconds'] / r['seconds']:.2f} "
              f"(peak RSS {s['peak_rss_mb']:.0f} / {r['peak_rss_mb']:.0f} MB); as a COG with "
              f"overviews: {s['cog_seconds']:.1f} s")


if __name__ == "__main__":
    main()
