"""The README's main job: `sinkmap demo` end to end at the default 30 m."""

from __future__ import annotations

import json
import time

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

from sinkmap.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    t0 = time.perf_counter()
    assert main(["-q", "demo", "--out", str(out)]) == 0
    return out, time.perf_counter() - t0


def test_demo_outputs(demo):
    out, _ = demo
    o = out / "outputs"
    for name in ("carbon_density_tC_per_ha_2020.tif", "carbon_density_tC_per_ha_2025.tif",
                 "townships.csv", "townships.xlsx", "class_area_by_township.csv", "map.html",
                 "summary.json", "manifest.json"):
        assert (o / name).is_file(), name
    assert (out / "sinkmap.toml").is_file() and (out / "inputs" / "landcover_2020.tif").is_file()
    t = pd.read_csv(o / "townships.csv", encoding="utf-8-sig")
    assert 12 <= len(t) <= 20
    s = json.loads((o / "summary.json").read_text())
    # the township stocks add up to the county total
    assert t["stock_tC_2020"].sum() == pytest.approx(s["totals"]["2020"]["stock_tC"], rel=1e-9)
    # county ~2,184 km2: every valid cell lies in some township
    assert s["totals"]["2020"]["valid_area_ha"] == pytest.approx(218_400, rel=0.01)
    mean = s["totals"]["2020"]["stock_tC"] / s["totals"]["2020"]["valid_area_ha"]
    assert 60 < mean < 160, "county mean density within NE-China ranges (t C/ha)"
    with rasterio.open(o / "carbon_density_tC_per_ha_2020.tif") as src:
        assert src.crs.to_epsg() == 4551 and src.res == (30.0, 30.0) and src.overviews(1)
    # Tier 2 forest from the inventory covers most forest (the generator covers ~72 %)
    t2 = {r["tier"]: r for r in s["forest_tiers"]["2020"]}
    assert 60 < t2[2]["share_pct"] < 85 and t2[1]["share_pct"] + t2[2]["share_pct"] == \
        pytest.approx(100)
    # conservation tillage verified from the spring imagery; the SOC sink counts the confirmed
    # area; the verification is checked against the generator's truth (issue: >= 95 %)
    tl = s["tillage"]
    assert s["farmland_soc"]["area_basis"].startswith("confirmed by imagery")
    assert s["farmland_soc"]["area_mu"] == pytest.approx(tl["confirmed_area_mu"])
    assert 0 < tl["confirmed_area_mu"] < tl["declared_area_mu"] < 200_000
    assert tl["residue_model"]["calibrated"] and tl["residue_model"]["n"] >= 40
    truth = tl["accuracy_vs_truth"]
    assert truth["overall_accuracy"] >= 0.95 and truth["n_judged"] >= 0.9 * truth["n_parcels"]
    ts = json.loads((o / "tillage" / "summary.json").read_text(encoding="utf-8"))
    assert ts["accuracy_vs_truth"]["overall_accuracy"] == truth["overall_accuracy"]
    assert [d["date"] for d in ts["dates_ignored"]] == ["2025-06-04"]  # outside the window
    assert ts["inputs"]["imagery"] == "inputs/imagery_2025/items.json"  # not the staging path
    assert ts["undetermined_reasons"]  # the partial swath and the clouds leave some
    p = gpd.read_file(o / "tillage" / "parcels.gpkg")
    assert len(p) == 3500 and set(p["status"]) == {"confirmed", "not_confirmed", "undetermined"}
    assert (o / "maps" / "tillage.html").is_file()
    # restored wetlands are reported, CH4 beside CO2
    w = s["wetland_restoration"]
    assert w["restored_ha"] > 100 and w["ch4_emission_tCO2e_per_yr"] > 0
    assert (w["net_tCO2e_per_yr"] < 0) == ("SOURCE" in w["note"])
    assert s["uncertainty"]["draws"] == 1000
    assert s["uncertainty"]["sink"]["p2_5_tC"] < s["change"]["stock_change_tC"] \
        < s["uncertainty"]["sink"]["p97_5_tC"]
    assert (o / "transitions.csv").is_file() and (o / "uncertainty.csv").is_file()
    # the ecological-protection pattern: five cores, three corridors, zones with carbon
    e = s["ecology"]
    assert e["n_cores_selected"] == 5 and e["n_corridors"] == 3 and not e["unreachable_pairs"]
    assert [c["rank"] for c in e["selected_cores"]] == [1, 2, 3, 4, 5]
    for name in ("mspa.tif", "resistance.tif", "current.tif", "cores.gpkg", "corridors.gpkg",
                 "pinchpoints.gpkg", "barriers.gpkg", "zones.gpkg", "landscape_metrics.csv"):
        assert (o / "ecology" / name).is_file(), name
    ez = gpd.read_file(o / "ecology" / "zones.gpkg")
    # the derived zones tile the county: their stocks add up to the 2025 total
    assert ez["stock_tC"].sum() == pytest.approx(s["totals"]["2025"]["stock_tC"], rel=1e-9)
    assert ez["area_ha"].sum() == pytest.approx(s["totals"]["2025"]["valid_area_ha"], rel=1e-9)
    assert set(ez["kind"]) == {"core", "corridor", "buffer", "other"}
    assert (o / "maps" / "ecology.html").is_file()
    # urban green space of the town: both years from summer imagery, against the truth
    g = s["green"]
    assert g["status"] == "ok" and g["source"] == "imagery"
    assert g["threshold_method"] == "otsu" and 0.3 < g["threshold"] < 0.7
    v = g["vs_truth"]
    assert v["pixel_agreement"] > 0.99
    assert g["green_area_mu"] == pytest.approx(v["green_mu_truth"], rel=0.02)
    assert g["new_green_mu"] == pytest.approx(v["new_green_mu_truth"], rel=0.1)
    assert g["lost_green_mu"] == pytest.approx(v["lost_green_mu_truth"], abs=150)
    assert 0 < g["target_progress_pct"] < 100 and g["park_service_pct"] > 0
    for name in ("green_mask.tif", "green_change.tif", "ndvi.tif", "districts.gpkg",
                 "districts.xlsx", "parks.gpkg", "transitions.csv"):
        assert (o / "green" / name).is_file(), name
    gd = pd.read_csv(o / "green" / "districts.csv", encoding="utf-8-sig")
    assert gd["population"].isna().sum() == 1  # one district without population ...
    assert gd.loc[gd["population"].isna(), "green_m2_per_person"].isna().all()  # ... empty
    assert (o / "maps" / "green.html").is_file()
    # the offline atlas, with the DEM's hillshade as backdrop
    assert "sinkmap-hillshade" in (o / "maps" / "carbon_total.html").read_text(encoding="utf-8")
    m = json.loads((o / "manifest.json").read_text())
    assert any(i["path"] == "inputs/landcover_2020.tif" for i in m["inputs"])
    assert m["parameters"]["config"]["landcover"]["years"]["2025"]


def test_second_demo_refuses_without_overwrite(demo, capsys):
    out, _ = demo
    before = (out / "outputs" / "manifest.json").read_bytes()
    assert main(["-q", "demo", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "outputs" / "manifest.json").read_bytes() == before


def test_rerun_project_file_of_the_demo(demo, tmp_path):
    out, _ = demo
    assert main(["validate", str(out / "sinkmap.toml")]) == 0
    assert main(["-q", "run", str(out / "sinkmap.toml"), "--out", str(tmp_path / "again")]) == 0
    a = pd.read_csv(out / "outputs" / "townships.csv", encoding="utf-8-sig")
    b = pd.read_csv(tmp_path / "again" / "townships.csv", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(a, b)
