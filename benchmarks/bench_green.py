"""Benchmark: ``sinkmap green`` on the demo county's town at 10 m.

    .venv/bin/python benchmarks/bench_green.py [--seed 2020] [--keep DIR] [--whole-county]

Setup (not timed): the demo county model and its town's green-space inputs
(:func:`sinkmap.demo_green.write_green_demo`: boundary, 6 districts, 20 parks, six 10 m
Sentinel-2-like summer scenes of 2020 and 2025, the town's 10 m land cover of both years).
Timed, in a fresh process (peak RSS of that process): ``run_green`` as the demo's ``[green]``
section runs it -- both years' max-NDVI composites with Otsu thresholds, cropland excluded by
the land cover, districts, per-capita green, park service, change and transitions, and every
output file (COGs, GeoPackages, CSV, XLSX, summary.json). Target (issue 7): < 10 s.

``--whole-county``: the stress case instead -- the whole 10 m demo county (9,743 x 6,643 cells)
as the "urban" boundary, green from its land cover of 2025 and 2020, the 16 townships as
districts (setup: ``generate_county`` at 10 m, ~40 s, not timed).
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
import json, resource, sys, time
import warnings; warnings.filterwarnings("ignore")
from pathlib import Path
from sinkmap.green_cmd import GreenInputs, run_green, settings_from_mapping
d = Path(sys.argv[1])
t0 = time.perf_counter()
s = run_green(GreenInputs(urban=d / "urban.gpkg", year=2025, baseline_year=2020,
                          imagery=(d / "imagery" / "items.json",),
                          landcover=d / "landcover" / "landcover_2025.tif",
                          baseline_landcover=d / "landcover" / "landcover_2020.tif",
                          districts=d / "districts.gpkg", parks=d / "parks.gpkg"),
              d / "out", settings_from_mapping({"exclude_classes": ["paddy", "dry_cropland"]}),
              verbose=False)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(dt, 2), "peak_rss_mb": round(rss),
                  "coverage_pct": round(s["green_coverage_pct"], 2),
                  "new_green_mu": round(s["new_green_mu"]), "threshold": s["threshold"]}))
"""

RUN_COUNTY = r"""
import json, logging, resource, sys, time
import warnings; warnings.filterwarnings("ignore"); logging.disable(logging.WARNING)
from pathlib import Path
from sinkmap.green_cmd import GreenInputs, run_green, settings_from_mapping
i = Path(sys.argv[1]) / "inputs"
t0 = time.perf_counter()
s = run_green(GreenInputs(urban=i / "boundary.gpkg", year=2025, baseline_year=2020,
                          landcover=i / "landcover_2025.tif",
                          baseline_landcover=i / "landcover_2020.tif",
                          districts=i / "townships.gpkg", district_field="name_zh"),
              Path(sys.argv[1]) / "out", settings_from_mapping({}), verbose=False)
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": round(dt, 2), "peak_rss_mb": round(rss),
                  "coverage_pct": round(s["green_coverage_pct"], 2),
                  "new_green_mu": round(s["new_green_mu"])}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--keep", type=Path, help="keep the inputs and outputs here")
    ap.add_argument("--whole-county", action="store_true",
                    help="the whole 10 m county from land cover (stress case)")
    a = ap.parse_args()
    from sinkmap.demo_county import CountyModel
    from sinkmap.demo_green import write_green_demo

    tmp = Path(tempfile.mkdtemp(prefix="bench_green_")) if a.keep is None else a.keep
    try:
        if a.whole_county:
            from sinkmap.demo_county import generate_county

            c = tmp / "county10"
            if not (c / "inputs" / "landcover_2025.tif").exists():
                generate_county(c, resolution_m=10.0, seed=a.seed)
            shutil.rmtree(c / "out", ignore_errors=True)
            out = subprocess.run([sys.executable, "-c", RUN_COUNTY, str(c)], check=True,
                                 capture_output=True, text=True)
            print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), indent=1))
            return
        d = tmp / "green"
        if not (d / "imagery" / "items.json").exists():
            demo = write_green_demo(CountyModel.build(seed=a.seed, resolution_m=30.0), d,
                                    seed=a.seed)
            grid = demo.grid
            print(f"setup: town window {grid.width} x {grid.height} cells at 10 m",
                  file=sys.stderr)
        shutil.rmtree(d / "out", ignore_errors=True)
        out = subprocess.run([sys.executable, "-c", RUN, str(d)], check=True,
                             capture_output=True, text=True)
        print(json.dumps(json.loads(out.stdout.strip().splitlines()[-1]), indent=1))
    finally:
        if a.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
