"""Benchmark: peak memory and time of the per-pixel chain at growing raster sizes.

For each size N x N it writes a synthetic 三调 land-cover COG (block-wise), then, in a fresh
process, runs: read (lazy) -> class areas per zone (15 zones) -> carbon density -> COG write,
and reports wall time and peak RSS. Streaming holds when the peak RSS stays flat as N grows.

    .venv/bin/python benchmarks/bench_streaming.py 2000 4000 8000
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import os
os.environ.setdefault("GDAL_CACHEMAX", "128")  # as the sinkmap CLI does
import json, resource, sys, time
from pathlib import Path
import numpy as np, geopandas as gpd, shapely
from gis.raster_io import read_raster, write_cog
from gis.zonal import class_area_table
from sinks.coefficients import load_carbon_table
from sinks.density import carbon_density
folder = Path(sys.argv[1])
t0 = time.perf_counter()
lc = read_raster(folder / "lc.tif")
b = lc.rio.bounds()
xs = np.linspace(b[0], b[2], 6)
ys = np.linspace(b[1], b[3], 4)
zones = gpd.GeoDataFrame({"z": [f"{i}-{j}" for i in range(5) for j in range(3)]},
    geometry=[shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1]) for i in range(5) for j in range(3)],
    crs=lc.rio.crs)
t1 = time.perf_counter()
areas = class_area_table(lc, zones, "z")
t2 = time.perf_counter()
write_cog(carbon_density(lc, load_carbon_table("default")), folder / "density.tif")
t3 = time.perf_counter()
print(json.dumps({"zonal_s": t2 - t1, "density_cog_s": t3 - t2, "total_s": t3 - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "area_ha": float(areas.area_ha.sum())}))
"""

MAKE = r"""
import sys
from pathlib import Path
import dask.array as dsa, numpy as np
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
n = int(sys.argv[2])
x0, y0 = 400_000, 4_600_000
g = GridSpec.from_bounds((x0, y0, x0 + 10 * n, y0 + 10 * n), 10, "EPSG:4551")
codes = np.array([101, 103, 301, 305, 404, 701, 1101, 1108], dtype="uint16")
def block(block_info=None):
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    rng = np.random.default_rng(r0 * 100_003 + c0)
    return codes[rng.integers(0, len(codes), (r1 - r0, c1 - c0))]
data = dsa.map_blocks(block, dtype="uint16", chunks=dsa.core.normalize_chunks(1024, g.shape))
write_cog(make_raster(data, g, nodata=0, units="class", kind="categorical", chunks=None),
          Path(sys.argv[1]) / "lc.tif")
"""


def main(sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run([sys.executable, "-c", MAKE, d, str(n)], check=True)
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, d], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            r.update(n=n, megapixels=n * n / 1e6, wall_s=time.perf_counter() - t)
            rows.append(r)
            print(f"{n:>6} x {n:<6} {n * n / 1e6:7.1f} Mpx  zonal {r['zonal_s']:6.2f} s  "
                  f"density+COG {r['density_cog_s']:6.2f} s  peak RSS {r['peak_rss_mb']:7.0f} MB",
                  flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 4000, 8000])
