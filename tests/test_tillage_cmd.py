"""`sinkmap tillage` end to end on a hand-built Sentinel-2 L2A-like collection.

A 400 m square (40 x 40 cells of 10 m; SWIR and SCL at 20 m) in UTM 51N, parcels declared in
CGCS2000 GK (so they are reprojected). With the default model (residue % = -25 + 500 x NDTI):

    P1  NW quadrant  NDTI 0.20 -> 75 %   declared conservation  -> confirmed
    P2  NE quadrant  NDTI 0.05 ->  0 %   declared conservation  -> not confirmed (over-declared)
    P3  SW quadrant  cloud (SCL 9) on every date                -> undetermined (too few clear)
    P4  SE quadrant  NDTI 0.20           declared conventional  -> confirmed (undeclared)
    P5  15 m x 15 m inside P1's row band, declared conservation -> undetermined (too small)
    P6  2 km away from the scene, declared conservation         -> undetermined (no imagery)
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine

from gis.errors import InputError
from sinkmap.cli import main
from sinkmap.tillage_cmd import TillageSettings, YearInput, run_tillage

UTM = "EPSG:32651"
X0, Y0 = 400_000.0, 4_700_400.0  # top-left corner of the scene
DATES = (date(2025, 4, 20), date(2025, 5, 10), date(2025, 6, 10))
HIGH = (0.30, 0.20)      # NDTI 0.2
LOW = (0.2625, 0.2375)   # NDTI 0.05


def _write(path: Path, arr: np.ndarray, res: float) -> None:
    with rasterio.open(path, "w", driver="GTiff", height=arr.shape[0], width=arr.shape[1],
                       count=1, dtype=arr.dtype, crs=UTM, nodata=0,
                       transform=Affine(res, 0, X0, 0, -res, Y0)) as dst:
        dst.write(arr, 1)


def _dn(refl: np.ndarray) -> np.ndarray:
    return np.round(refl * 10_000 + 1_000).astype(np.uint16)


def make_collection(folder: Path, *, cloud_sw: bool = True) -> Path:
    """Three dates of B04, B08 (10 m), B11, B12, SCL (20 m) and a STAC ItemCollection."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    n20 = 20
    s1 = np.full((n20, n20), HIGH[0])
    s2 = np.full((n20, n20), HIGH[1])
    s1[:10, 10:], s2[:10, 10:] = LOW          # NE quadrant: bare soil
    scl = np.full((n20, n20), 5, np.uint8)
    if cloud_sw:
        scl[10:, :10] = 9                       # SW quadrant: cloud on every date
    for d in DATES:
        stem = d.strftime("%Y%m%d")
        files = {"B04": (_dn(np.full((40, 40), 0.10)), 10.0),
                 "B08": (_dn(np.full((40, 40), 0.15)), 10.0),
                 "B11": (_dn(s1), 20.0), "B12": (_dn(s2), 20.0), "SCL": (scl, 20.0)}
        assets = {}
        for key, (arr, res) in files.items():
            name = f"S2B_{stem}_{key}.tif"
            _write(folder / name, arr, res)
            assets[key] = {"href": f"./{name}", "type": "image/tiff; application=geotiff"}
            if key != "SCL":
                assets[key]["raster:bands"] = [{"scale": 0.0001, "offset": -0.1, "nodata": 0}]
        items.append({
            "type": "Feature", "stac_version": "1.0.0", "id": f"S2B_T51TXX_{stem}",
            "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "geometry": None, "bbox": [0, 0, 0, 0],
            "properties": {"datetime": f"{d.isoformat()}T02:40:00Z", "platform": "sentinel-2b",
                           "s2:processing_baseline": "05.10", "eo:cloud_cover": 25.0},
            "assets": assets, "links": []})
    p = folder / "items.json"
    p.write_text(json.dumps({"type": "FeatureCollection", "features": items}), encoding="utf-8")
    return p


def _box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A box from cell coordinates of the 10 m grid (col, row), in UTM."""
    return shapely.box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


def make_parcels(path: Path, *, crs: str = "EPSG:4551", duplicate: bool = False) -> Path:
    geoms = [_box(1, 1, 19, 15), _box(21, 1, 39, 19), _box(1, 21, 19, 39), _box(21, 21, 39, 39),
             _box(5, 16.2, 6.5, 17.7), _box(300, 1, 310, 10)]
    ids = ["P1", "P2", "P3", "P4", "P5", "P6"]
    if duplicate:
        ids[3] = "P1"
    gdf = gpd.GeoDataFrame({
        "parcel_id": ids, "township": ["甲镇", "甲镇", "乙镇", "乙镇", "甲镇", "乙镇"],
        "declared_practice": ["保护性耕作", "conservation", "conservation", "常规耕作",
                              "conservation", "conservation"],
        "declared_area_mu": [40.0, 48.6, 48.6, 48.6, 0.3, 13.5],
    }, geometry=geoms, crs=UTM).to_crs(crs)
    gdf.to_file(path)
    return path


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    base = tmp_path_factory.mktemp("tillage")
    items = make_collection(base / "s2")
    parcels = make_parcels(base / "parcels.gpkg")
    out = base / "out"
    summary = run_tillage([YearInput(2025, items, parcels)], out, TillageSettings(),
                          verbose=False)
    return out, summary


def test_statuses_and_reasons(verified):
    out, _ = verified
    p = gpd.read_file(out / "parcels.gpkg").set_index("parcel_id")
    assert p["status"].to_dict() == {
        "P1": "confirmed", "P2": "not_confirmed", "P3": "undetermined", "P4": "confirmed",
        "P5": "undetermined", "P6": "undetermined"}
    assert p.loc["P1", "residue_pct_median"] == pytest.approx(75.0, abs=0.5)
    assert p.loc["P2", "residue_pct_median"] == pytest.approx(0.0, abs=0.5)
    assert "too few clear pixels: 0 of" in p.loc["P3", "reason"]
    assert "minimum 4" in p.loc["P5", "reason"]
    assert p.loc["P6", "reason"] == "no imagery over the parcel in the window"
    assert p.loc["P1", "dates_used"] == "2025-04-20;2025-05-10"  # 10 June is outside
    assert p.loc["P2", "declaration_check"] == "over-declared (not observed)"
    assert p.loc["P4", "declaration_check"] == "undeclared conservation"
    assert p.loc["P1", "declaration_check"] == "consistent"
    # the parcel keeps its input columns and CRS
    assert p.crs.to_epsg() == 4551 and p.loc["P1", "declared_practice"] == "保护性耕作"
    # measured in the parcels' own (projected) CRS: P1 is 180 m x 140 m in UTM, 0.35 % larger
    # in GK zone 42 (3 degrees from the UTM meridian)
    own = gpd.read_file(verified[0].parent / "parcels.gpkg").set_index("parcel_id").area
    assert p.loc["P1", "area_mu"] == pytest.approx(own["P1"] / 666.67, rel=1e-9)
    assert p.loc["P1", "area_mu"] == pytest.approx(25_200 / 666.67, rel=0.005)
    assert p.loc["P1", "area_flag"] == ""
    assert p.loc["P6", "area_flag"] == ""


def test_summary_totals_against_target(verified):
    out, s = verified
    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert on_disk["confirmed_area_mu"] == pytest.approx(s["confirmed_area_mu"])
    own = gpd.read_file(out.parent / "parcels.gpkg").set_index("parcel_id").area / 666.67
    a1, a2, a3, a5, a6 = (own[k] for k in ("P1", "P2", "P3", "P5", "P6"))
    assert s["confirmed_area_mu"] == pytest.approx(a1, rel=1e-4)
    assert s["not_confirmed_area_mu"] == pytest.approx(a2, rel=1e-4)
    assert s["undetermined_area_mu"] == pytest.approx(a3 + a5 + a6, rel=1e-4)
    assert s["declared_area_mu"] == pytest.approx(a1 + a2 + a3 + a5 + a6, rel=1e-4)
    assert s["target_mu"] == 80_000
    assert s["confirmed_pct_of_target"] == pytest.approx(100 * a1 / 80_000, rel=1e-4)
    assert s["parcel_counts"] == {"confirmed": 1, "not_confirmed": 1, "undetermined": 3}
    assert s["undeclared_conservation_area_mu"] == pytest.approx(own["P4"], rel=1e-4)
    assert [d["date"] for d in s["dates_used"]] == ["2025-04-20", "2025-05-10"]
    assert s["dates_ignored"][0]["date"] == "2025-06-10"
    assert "outside the window" in s["dates_ignored"][0]["reason"]
    assert s["residue_model"]["calibrated"] is False
    assert s["analysis_grid"]["crs"].startswith("EPSG:32651")
    assert s["analysis_grid"]["resolution_m"] == 10.0


def test_outputs_written(verified):
    out, _ = verified
    names = {p.name for p in out.iterdir()}
    assert {"parcels.gpkg", "parcels.xlsx", "townships.csv", "summary.json",
            "ndti_min_2025.tif", "usable_dates_2025.tif"} <= names
    with pd.ExcelFile(out / "parcels.xlsx") as x:
        assert x.sheet_names == ["地块核查 parcels", "乡镇汇总 townships"]
    xlsx = out / "parcels.xlsx"
    sheet = pd.read_excel(xlsx, sheet_name="地块核查 parcels", header=[0, 1])  # zh row, en row
    assert ("核查结论", "status") in sheet.columns
    assert ("秸秆覆盖度 median (%)", "residue cover median (%)") in sheet.columns
    assert len(sheet) == 6 and set(sheet[("核查结论", "status")]) == {
        "confirmed", "not_confirmed", "undetermined"}
    en = pd.read_excel(xlsx, sheet_name="乡镇汇总 townships", header=1)
    assert en.set_index("township").loc["甲镇", "confirmed parcels"] == 1
    t = pd.read_csv(out / "townships.csv").set_index("township")
    assert t.loc["甲镇", "n_declared"] == 3 and t.loc["甲镇", "n_confirmed"] == 1
    assert t.loc["合计 total", "n_declared"] == 5
    with rasterio.open(out / "ndti_min_2025.tif") as src:
        a = src.read(1)
        assert src.crs.to_epsg() == 32651
    assert np.nanmax(a) == pytest.approx(0.2, abs=1e-3)
    assert not any(n.startswith(".") for n in names)


def test_calibration_and_accuracy_from_samples(tmp_path):
    items = make_collection(tmp_path / "s2")
    parcels = make_parcels(tmp_path / "parcels.gpkg")
    pts = [(5, 5, 72.0), (10, 8, 78.0), (15, 12, 75.0),      # in P1
           (25, 5, 2.0), (30, 10, 6.0), (35, 15, 4.0),       # in P2
           (30, 30, 40.0)]                                   # in P4
    samples = gpd.GeoDataFrame(
        {"residue_pct": [r for *_, r in pts]},
        geometry=[shapely.Point(X0 + 10 * c + 5, Y0 - 10 * r - 5) for c, r, _ in pts], crs=UTM)
    samples.to_file(tmp_path / "samples.gpkg")
    s = run_tillage([YearInput(2025, items, parcels, tmp_path / "samples.gpkg")],
                    tmp_path / "out", verbose=False)
    m = s["residue_model"]
    assert m["calibrated"] and m["n"] == 7
    x = np.array([0.2, 0.2, 0.2, 0.05, 0.05, 0.05, 0.2])
    y = np.array([72, 78, 75, 2, 6, 4, 40.0])
    b, a = np.polyfit(x, y, 1)
    assert (m["a"], m["b"]) == (pytest.approx(a, abs=0.05), pytest.approx(b, abs=0.5))
    acc = s["accuracy"]
    assert acc["confusion_matrix"] == [[4, 0], [0, 3]]
    assert acc["overall_accuracy"] == 1.0 and acc["kappa"] == 1.0 and acc["in_sample"]
    rows = pd.read_csv(tmp_path / "out" / "samples.csv")
    assert rows["parcel_id"].tolist() == ["P1", "P1", "P1", "P2", "P2", "P2", "P4"]


def test_cli_and_reprojection_log(tmp_path, caplog, capsys):
    items = make_collection(tmp_path / "s2", cloud_sw=False)
    parcels = make_parcels(tmp_path / "parcels.gpkg")
    with caplog.at_level(logging.WARNING):
        rc = main(["-q", "tillage", "--parcels", str(parcels), "--imagery", str(items),
                   "--year", "2025", "--out", str(tmp_path / "out")])
    assert rc == 0
    assert "reprojected from EPSG:4551" in caplog.text
    assert "2025-06-10" in caplog.text and "ignored" in caplog.text
    text = capsys.readouterr().out
    assert "confirmed" in text and "target 80,000 mu" in text
    p = gpd.read_file(tmp_path / "out" / "parcels.gpkg").set_index("parcel_id")
    assert p.loc["P3", "status"] == "confirmed"  # no cloud this time
    # a second run refuses to overwrite
    rc = main(["-q", "tillage", "--parcels", str(parcels), "--imagery", str(items),
               "--year", "2025", "--out", str(tmp_path / "out")])
    assert rc == 2


def test_year_over_year(tmp_path):
    items = make_collection(tmp_path / "s2")
    parcels = make_parcels(tmp_path / "parcels.gpkg")
    # 2024: the same scenes re-dated (the folder's JSON is rewritten with 2024 dates)
    doc = json.loads(items.read_text(encoding="utf-8"))
    for f in doc["features"]:
        f["properties"]["datetime"] = f["properties"]["datetime"].replace("2025", "2024")
    old = tmp_path / "s2" / "items_2024.json"
    old.write_text(json.dumps(doc), encoding="utf-8")
    s = run_tillage([YearInput(2025, items, parcels), YearInput(2024, old, parcels)],
                    tmp_path / "out", verbose=False)
    assert set(s["years"]) == {"2024", "2025"} and s["year"] == 2025
    y = pd.read_csv(tmp_path / "out" / "townships_by_year.csv").set_index("township")
    assert y.loc["甲镇", "confirmed_change_mu_2024_2025"] == pytest.approx(0.0)
    assert (tmp_path / "out" / "parcels_2024.gpkg").exists()


def test_bad_inputs(tmp_path):
    items = make_collection(tmp_path / "s2")
    dup = make_parcels(tmp_path / "dup.gpkg", duplicate=True)
    with pytest.raises(InputError, match="P1"):
        run_tillage([YearInput(2025, items, dup)], tmp_path / "o1", verbose=False)
    assert not (tmp_path / "o1").exists()
    parcels = make_parcels(tmp_path / "parcels.gpkg")
    with pytest.raises(InputError, match="no scene is dated inside"):
        run_tillage([YearInput(2023, items, parcels)], tmp_path / "o2", verbose=False)
    # a missing band is named
    doc = json.loads(items.read_text(encoding="utf-8"))
    del doc["features"][0]["assets"]["B12"]
    bad = tmp_path / "s2" / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match="swir2"):
        run_tillage([YearInput(2025, bad, parcels)], tmp_path / "o3", verbose=False)
    assert not (tmp_path / "o3").exists()
    # unknown practice values are listed
    g = gpd.read_file(parcels)
    g.loc[0, "declared_practice"] = "套种"
    g.to_file(tmp_path / "odd.gpkg")
    with pytest.raises(InputError, match="套种"):
        run_tillage([YearInput(2025, items, tmp_path / "odd.gpkg")], tmp_path / "o4",
                    verbose=False)


def test_gbk_shapefile_invalid_and_zero_area_parcels(tmp_path):
    """A Shapefile with a GBK DBF (no .cpg), a self-intersecting parcel (repaired, counted) and
    a zero-area parcel (undetermined)."""
    items = make_collection(tmp_path / "s2", cloud_sw=False)
    g = gpd.read_file(make_parcels(tmp_path / "parcels.gpkg"))
    bow = shapely.Polygon([(X0 + 250, Y0 - 250), (X0 + 350, Y0 - 350), (X0 + 350, Y0 - 250),
                           (X0 + 250, Y0 - 350)])                       # in P4's quadrant
    extra = gpd.GeoDataFrame({"parcel_id": ["P7", "P8"], "township": ["乙镇", "乙镇"],
                              "declared_practice": ["免耕", "保护性耕作"],
                              "declared_area_mu": [10.0, 5.0]},
                             geometry=[bow, bow], crs=UTM).to_crs(g.crs)
    x, y = extra.geometry.iloc[0].exterior.coords[0]  # a collapsed ring in the file's own CRS
    extra.loc[1, "geometry"] = shapely.Polygon([(x, y), (x + 100, y), (x + 50, y)])
    g = pd.concat([g.iloc[:3], extra], ignore_index=True)  # P4 out: P7 lies where it was
    shp = tmp_path / "parcels.shp"
    g.to_file(shp, encoding="GBK")
    (tmp_path / "parcels.cpg").unlink(missing_ok=True)
    # DBF field names stop at 10 characters: name them (what --practice-field etc. do)
    fields = {"id": "parcel_id", "township": "township", "practice": "declared_p",
              "area_mu": "declared_a"}
    s = run_tillage([YearInput(2025, items, shp)], tmp_path / "out",
                    TillageSettings(fields=fields), verbose=False)
    assert s["repaired_geometries"] == 2  # the bow tie and the collapsed ring
    p = gpd.read_file(tmp_path / "out" / "parcels.gpkg").set_index("parcel_id")
    assert set(p["township"]) == {"甲镇", "乙镇"}                          # GBK text read right
    assert p.loc["P7", "status"] == "confirmed" and p.loc["P7", "n_pixels"] > 4
    assert p.loc["P8", "status"] == "undetermined"
    assert p.loc["P8", "reason"] == "zero-area parcel"
