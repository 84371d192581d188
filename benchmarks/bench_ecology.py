"""Benchmark: ``sinkmap ecology`` on the demo county.

    .venv/bin/python benchmarks/bench_ecology.py [--resolution 30] [--circuit-factor 1] [--keep DIR]

Setup (not timed): the demo county at ``--resolution`` m (land cover 2025, DEM, roads, boundary).
Timed, in a fresh process (peak RSS of that process): ``run_ecology`` as the CLI runs it --
read, habitat + MSPA, cores + dPC, resistance (slope, roads, built-up), least-cost links of the
5 selected cores, 3 corridors, circuit current, pinch points, barriers, derived zones with
Tier 1 carbon, landscape metrics, and every output file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RUN = r"""
import os, json, resource, sys, time
os.environ.setdefault("GDAL_CACHEMAX", "128")
import warnings; warnings.filterwarnings("ignore")
from pathlib import Path
from dataclasses import replace
from layers.pattern import PatternSettings
from sinkmap.ecology_cmd import EcologyInputs, run_ecology
d, k = Path(sys.argv[1]), int(sys.argv[2])
i = d / "inputs"
t0 = time.perf_counter()
s = run_ecology(EcologyInputs(landcover=i / "landcover_2025.tif", dem=i / "dem.tif",
                              roads=i / "roads.gpkg", region=i / "boundary.gpkg"),
                d / "eco", PatternSettings(circuit_factor=k), verbose=False)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(dt, 1), "peak_rss_mb": round(rss), "timings": s["timings_s"],
                  "cores": s["n_cores_found"], "corridors": s["n_corridors"],
                  "pinchpoints": s["n_pinchpoints"], "barriers": s["n_barriers"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--resolution", type=float, default=30.0)
    ap.add_argument("--circuit-factor", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="keep the county and outputs here")
    a = ap.parse_args()
    from sinkmap.demo_county import generate_county

    tmp = Path(tempfile.mkdtemp(prefix="bench_ecology_")) if a.keep is None else a.keep
    try:
        county = tmp / "county"
        if not (county / "inputs" / "landcover_2025.tif").exists():
            generate_county(county, resolution_m=a.resolution, seed=2020)
        shutil.rmtree(county / "eco", ignore_errors=True)
        out = subprocess.run([sys.executable, "-c", RUN, str(county), str(a.circuit_factor)],
                             check=True, capture_output=True, text=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps({"resolution_m": a.resolution, "circuit_factor": a.circuit_factor,
                          **res}, indent=1))
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
