"""``sinkmap demo``: generate the demo county, write its project file, run the baseline.

Layout of the demo folder::

    DIR/sinkmap.toml      the project file (rerun with `sinkmap run DIR/sinkmap.toml --overwrite`)
    DIR/inputs/           generated inputs (land cover 2020/2025, DEM, townships, parcels, ...)
    DIR/outputs/          the run: density COGs, township tables, map.html, manifest.json

The whole folder is built under a temporary name and renamed at the end.
"""

from __future__ import annotations

from pathlib import Path

from gis.atomic import atomic_path
from sinkmap.config import load_config
from sinkmap.demo_county import generate_county
from sinkmap.pipeline import RunResult, run
from sinkmap.progress import Steps

PROJECT_TEMPLATE = """\
# sinkmap project file for the generated demo county (all data synthetic, inside the real
# Meihekou outline). Paths are relative to this file.
[project]
name = "梅河口示范县 (demo)"
crs = "EPSG:4551"

[region]
boundary = "inputs/boundary.gpkg"
dem = "inputs/dem.tif"

[zones]
path = "inputs/townships.gpkg"
id_field = "code"
name_field = "name_zh"

[landcover]
scheme = "gbt21010"

[landcover.years]
2020 = "inputs/landcover_2020.tif"
2025 = "inputs/landcover_2025.tif"

[carbon]
table = "default"

[farmland]
parcels = "inputs/parcels.gpkg"

[wetland]
years_since = 0

[forest]
inventory = "inputs/forest_inventory.gpkg"

[outputs]
dir = "outputs"
zonal_method = "centre"
lang = "{lang}"
"""


def write_project_file(folder: Path, *, lang: str = "zh") -> Path:
    """Write the demo's project file (the generator's file names are fixed)."""
    path = folder / "sinkmap.toml"
    path.write_text(PROJECT_TEMPLATE.format(lang=lang), encoding="utf-8")
    return path


def run_demo(out: Path, *, resolution_m: float = 30.0, seed: int = 2020, lang: str = "zh",
             overwrite: bool = False, verbose: bool = True) -> RunResult:
    """Generate the demo county into ``out`` and run the carbon baseline on it."""
    with atomic_path(out, overwrite=overwrite) as stage:
        stage.mkdir(parents=True)
        steps = Steps(total=1, verbose=verbose)
        def dots(name: str, i: int, n: int) -> None:
            if name == "rasters":
                steps.blocks(i, n)

        with steps.step(f"generate the demo county at {resolution_m:g} m (seed {seed})"):
            generate_county(stage, resolution_m=resolution_m, seed=seed, progress=dots)
        project = write_project_file(stage, lang=lang)
        res = run(load_config(project), verbose=verbose)
    return RunResult(out / "outputs", res.summary)
