"""``sinkmap demo``: generate the demo county, write its project file, run the baseline.

Layout of the demo folder::

    DIR/sinkmap.toml      the project file (rerun with `sinkmap run DIR/sinkmap.toml --overwrite`)
    DIR/inputs/           generated inputs (land cover 2020/2025, DEM, townships, parcels, ...)
    DIR/inputs/imagery_2025/  spring Sentinel-2-like scenes (STAC items.json) + field samples
    DIR/inputs/green/     the town: boundary, districts, parks, summer scenes 2020 and 2025,
                          its own 10 m land cover and the generator's truth
    DIR/outputs/          the run: density COGs, township tables, map.html, manifest.json

The whole folder is built under a temporary name and renamed at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gis.atomic import atomic_path
from gis.vector_io import read_vector
from layers.tillage import accuracy, status_class
from sinkmap.config import load_config
from sinkmap.demo_county import CROPLAND_CODES, MU_M2, CountyModel, generate_county
from sinkmap.demo_green import GreenDemo, write_green_demo
from sinkmap.demo_imagery import generate_spring_imagery
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

[tillage]
imagery = "inputs/imagery_2025/items.json"
year = 2025
samples = "inputs/imagery_2025/field_samples.gpkg"

[wetland]
years_since = 0

[ecology]
roads = "inputs/roads.gpkg"
cores = 5
corridors = 3
circuit_factor = 3

[forest]
inventory = "inputs/forest_inventory.gpkg"

[green]
urban = "inputs/green/urban.gpkg"
imagery = "inputs/green/imagery/items.json"
year = 2025
baseline_year = 2020
districts = "inputs/green/districts.gpkg"
parks = "inputs/green/parks.gpkg"
landcover = "inputs/green/landcover/landcover_2025.tif"            # the town at 10 m
baseline_landcover = "inputs/green/landcover/landcover_2020.tif"
exclude_classes = ["paddy", "dry_cropland"]   # summer crops are green but not urban green

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
        steps = Steps(total=3, verbose=verbose)
        def dots(name: str, i: int, n: int) -> None:
            if name == "rasters":
                steps.blocks(i, n)

        with steps.step(f"generate the demo county at {resolution_m:g} m (seed {seed})"):
            county = generate_county(stage, resolution_m=resolution_m, seed=seed, progress=dots)
        with steps.step("generate spring imagery (10 m, Sentinel-2-like) and field samples"):
            model = CountyModel.build(seed=seed, resolution_m=resolution_m)
            generate_spring_imagery(model, stage / "inputs" / "imagery_2025", year=2025,
                                    resolution_m=10.0, parcels=county.parcels)
        with steps.step("generate the town's summer imagery (10 m, 2020 and 2025), districts, "
                        "parks"):
            green = write_green_demo(model, stage / "inputs" / "green", seed=seed,
                                     years=(2020, 2025))
        project = write_project_file(stage, lang=lang)

        def against_truth(run_stage: Path, summary: dict[str, Any]) -> None:
            check = truth_check(run_stage / "tillage", county.truth)
            summary["tillage"]["accuracy_vs_truth"] = check
            _add_to(run_stage / "tillage" / "summary.json", "accuracy_vs_truth", check)
            gcheck = green_truth_check(run_stage / "green", green)
            summary["green"]["vs_truth"] = gcheck
            _add_to(run_stage / "green" / "summary.json", "vs_truth", gcheck)

        res = run(load_config(project), verbose=verbose, check=against_truth)
    return RunResult(out / "outputs", res.summary)


def _add_to(path: Path, key: str, value: Any) -> None:
    """Add ``key`` to a summary.json of the run being built."""
    d = json.loads(path.read_text(encoding="utf-8"))
    d[key] = value
    path.write_text(json.dumps(d, ensure_ascii=False, indent=1), encoding="utf-8")


def green_truth_check(green_dir: Path, demo: GreenDemo) -> dict[str, Any]:
    """The green-space run against the generator's truth (vegetation fraction >= 0.5, with
    cropland counted not green as the demo's run excludes it): the share of the 2025 pixels
    that agree where both are determined, and the areas."""
    import rasterio
    import rasterio.windows

    s = json.loads((green_dir / "summary.json").read_text(encoding="utf-8"))
    y1 = int(s["year"])
    with rasterio.open(green_dir / "green_mask.tif") as ds:
        mask, bounds = ds.read(1), ds.bounds

    def window_of(path: Path) -> np.ndarray:
        with rasterio.open(path) as ds:
            win = rasterio.windows.from_bounds(*bounds, transform=ds.transform)
            return ds.read(1, window=win.round_offsets().round_lengths(), boundless=True,
                           fill_value=255)

    truth = window_of(demo.truth_masks[y1])
    crop = np.isin(window_of(demo.landcover[y1]), CROPLAND_CODES)
    truth = np.where((truth == 1) & crop, 0, truth)
    judged = (mask <= 1) & (truth <= 1)
    tr = demo.truth
    mu = 1e4 / MU_M2
    return {
        "note": "truth: the generator's vegetation fraction >= 0.5, cropland counted not green",
        "pixel_agreement": float((mask[judged] == truth[judged]).mean()) if judged.any()
        else None,
        "green_mu_truth": round(tr[y1]["green_ha_excl_cropland"] * mu, 1),
        "green_mu_run": s.get("green_area_mu"),
        "new_green_mu_truth": round(tr["change"]["new_ha_excl_cropland"] * mu, 1),
        "new_green_mu_run": s.get("new_green_mu"),
        "lost_green_mu_truth": round(tr["change"]["lost_ha_excl_cropland"] * mu, 1),
        "lost_green_mu_run": s.get("lost_green_mu"),
    }


def truth_check(tillage_dir: Path, truth_path: Path) -> dict[str, Any]:
    """The verification's parcel classes against the generator's true practice (demo only).

    Every parcel judged (confirmed / not confirmed) is compared with its true practice;
    undetermined parcels are counted apart, as they are never counted as either.
    """
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    true = {p["parcel_id"]: p["true_practice"] for p in truth["parcels"]}
    parcels = read_vector(tillage_dir / "parcels.gpkg")
    pred = status_class(parcels["status"])
    have = np.array([p is not None for p in pred])
    obs = parcels["parcel_id"].map(true).to_numpy()
    acc = accuracy(obs[have], pred[have])
    declared = (parcels["declared"] == "conservation").to_numpy()
    acc_decl = accuracy(obs[have & declared], pred[have & declared])
    return {"n_parcels": len(parcels), "n_judged": int(have.sum()),
            "n_undetermined": int((~have).sum()), **acc,
            "declared_conservation": {k: acc_decl[k] for k in
                                      ("n", "overall_accuracy", "kappa", "confusion_matrix")},
            "note": "demo only: statuses against the generator's true practice (truth.json)"}
