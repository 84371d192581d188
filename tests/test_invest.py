"""InVEST compatibility: `sinkmap carbon` on InVEST's own Willamette inputs."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from sinkmap.cli import main
from sinks.valuation import invest_npv

DATA = Path(__file__).parent / "data" / "invest_willamette"
CUR, FUT = DATA / "lulc_samp_cur.tif", DATA / "lulc_samp_fut.tif"
POOLS = DATA / "carbon_pools_willamette.csv"
# peers.md: InVEST 3.20.2 on these inputs
INVEST_CUR, INVEST_FUT, INVEST_CHANGE = 41_401_390.815, 37_875_295.71, -3_526_095.105


def _run(out: Path, *extra: str) -> dict:
    args = ["-q", "carbon", "--lulc", str(CUR), "--lulc-future", str(FUT), "--pools", str(POOLS),
            "--out", str(out), *extra]
    assert main(args) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def zones_file(tmp_path_factory) -> Path:
    with rasterio.open(CUR) as src:
        w, s, e, n = src.bounds
    mid = (w + e) / 2
    z = gpd.GeoDataFrame({"name": ["west", "east"]},
                         geometry=[shapely.box(w, s, mid, n), shapely.box(mid, s, e, n)],
                         crs="EPSG:26910").to_crs(4326)  # another CRS: reprojected, logged
    p = tmp_path_factory.mktemp("zones") / "halves.gpkg"
    z.to_file(p)
    return p


def test_same_totals_as_invest(tmp_path):
    s = _run(tmp_path / "out")
    assert s["stock_current_tC"] == pytest.approx(INVEST_CUR, rel=1e-6)
    assert s["stock_future_tC"] == pytest.approx(INVEST_FUT, rel=1e-6)
    assert s["change_tC"] == pytest.approx(INVEST_CHANGE, rel=1e-6)
    assert s["change_tCO2e"] == pytest.approx(INVEST_CHANGE * 44 / 12, rel=1e-6)
    assert s["valid_pixels_current"] == 1_641_621
    assert sum(s["pools_current_tC"].values()) == pytest.approx(INVEST_CUR, rel=1e-9)
    assert set(s["pools_current_tC"]) == {"c_above", "c_below", "c_soil", "c_dead"}
    assert "removal" in s["sign_convention"]
    for name in ("carbon_density_current_tC_per_ha.tif", "carbon_density_future_tC_per_ha.tif",
                 "carbon_change_tC_per_ha.tif", "transitions.csv", "manifest.json",
                 "carbon_density_current_tC_per_ha.qml", "carbon_change_tC_per_ha.qml"):
        assert (tmp_path / "out" / name).exists(), name
    # the per-pixel density raster sums to the same total (float32 storage: ~1e-6)
    with rasterio.open(tmp_path / "out" / "carbon_density_current_tC_per_ha.tif") as src:
        d = src.read(1).astype("float64")
        assert np.nansum(d) * 0.09 == pytest.approx(INVEST_CUR, rel=1e-6)
    t = pd.read_csv(tmp_path / "out" / "transitions.csv")
    assert t["change_tC"].sum() == pytest.approx(INVEST_CHANGE, rel=1e-9)
    assert t["area_ha"].sum() == pytest.approx(1_641_621 * 0.09)


def test_npv_as_invest(tmp_path):
    s = _run(tmp_path / "out", "--price", "43", "--discount-rate", "7", "--rate-change", "0",
             "--years", "2020", "2030")
    # K = (43/10) x sum_{k=0..9} (1/1.07)^k
    k = 43 / 10 * sum((1 / 1.07) ** i for i in range(10))
    assert s["npv"] == pytest.approx(INVEST_CHANGE * k, rel=1e-6)
    assert s["npv"] == pytest.approx(invest_npv(s["change_tC"], price_per_tC=43,
                                                discount_rate_pct=7, rate_change_pct=0,
                                                years=10))


def test_zones_reprojected_and_add_up(tmp_path, zones_file, caplog):
    caplog.set_level("WARNING")
    s = _run(tmp_path / "out", "--zones", str(zones_file), "--zone-field", "name")
    assert "reprojecting zones" in caplog.text
    z = pd.read_csv(tmp_path / "out" / "zones.csv", encoding="utf-8-sig").set_index("zone")
    assert set(z.index) == {"west", "east"}
    assert z["stock_current_tC"].sum() == pytest.approx(s["stock_current_tC"], rel=1e-6)
    assert z["change_tC"].sum() == pytest.approx(s["change_tC"], rel=1e-6)
    assert (tmp_path / "out" / "zones.xlsx").exists()


def test_missing_class_lists_codes(tmp_path, capsys):
    t = pd.read_csv(POOLS)
    short = tmp_path / "short.csv"
    t[~t["lucode"].isin([1, 2, 95])].to_csv(short, index=False)
    assert main(["-q", "carbon", "--lulc", str(CUR), "--pools", str(short), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "1, 2, 95" in err and "short.csv" in err
    assert not (tmp_path / "o").exists()


def test_negative_density_and_units(tmp_path, capsys):
    t = pd.read_csv(POOLS)
    t.loc[0, "C_above"] = -5
    bad = tmp_path / "neg.csv"
    t.to_csv(bad, index=False)
    assert main(["-q", "carbon", "--lulc", str(CUR), "--pools", str(bad), "--out",
                 str(tmp_path / "o")]) == 2
    assert "negative" in capsys.readouterr().err


def _shifted_copy(src_path: Path, dst: Path, *, dx: float = 0.0, hole: bool = False) -> Path:
    with rasterio.open(src_path) as src:
        prof, a = src.profile, src.read(1)
    prof["transform"] = prof["transform"] * rasterio.Affine.translation(dx, 0) if dx else \
        prof["transform"]
    if hole:
        a[900:1000, 600:700] = 255
    with rasterio.open(dst, "w", **prof) as out:
        out.write(a, 1)
    return dst


def test_nodata_in_one_year_is_unknown_area(tmp_path, caplog):
    caplog.set_level("WARNING")
    fut = _shifted_copy(FUT, tmp_path / "fut_hole.tif", hole=True)
    assert main(["-q", "carbon", "--lulc", str(CUR), "--lulc-future", str(fut), "--pools",
                 str(POOLS), "--out", str(tmp_path / "o")]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    with rasterio.open(CUR) as src:
        cur_valid = int((src.read(1, window=((900, 1000), (600, 700))) != 255).sum())
    assert cur_valid > 9000, "the hole lies in valid land"
    assert s["unknown_area_ha"]["nodata_after_ha"] == pytest.approx(cur_valid * 0.09)
    assert s["stock_future_tC"] < INVEST_FUT  # the future map has less valid land ...
    # ... but the change is over the cells valid in both years: the hole is not a carbon loss
    t = pd.read_csv(tmp_path / "o" / "transitions.csv")
    both = t.dropna(subset=["from", "to"])
    assert s["change_tC"] == pytest.approx(both["change_tC"].sum(), rel=1e-9)
    assert s["change_tC"] > INVEST_CHANGE - 1  # no loss from the hole's carbon
    assert s["compared_area_ha"] == pytest.approx(both["area_ha"].sum())
    assert "unknown area" in caplog.text


def test_grids_must_match_unless_align(tmp_path, capsys):
    fut = _shifted_copy(FUT, tmp_path / "fut_shift.tif", dx=0.5)
    base = ["-q", "carbon", "--lulc", str(CUR), "--lulc-future", str(fut), "--pools", str(POOLS)]
    assert main([*base, "--out", str(tmp_path / "o")]) == 2
    assert "different grids" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "o2"), "--align"]) == 0
