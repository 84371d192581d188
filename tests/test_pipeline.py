"""End to end on a tiny hand-made project: totals computed by hand, errors, atomic outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import rasterio

import sinkmap.pipeline as pipeline
from gis.errors import ConfigError, OutputExistsError
from sinkmap.cli import main
from sinkmap.config import load_config, validate
from tests.project_fixture import make_project

CELL_HA = 0.01  # 10 m x 10 m


def test_hand_computed_totals_user_table(tmp_path):
    res = pipeline.run(load_config(make_project(tmp_path)), verbose=False)
    out = res.out_dir
    t = pd.read_csv(out / "townships.csv", encoding="utf-8-sig").set_index("zone")
    # West: 6 forest cells x 100 t/ha x 0.01 ha = 6.0 t C (river cells 0, two nodata cells)
    # East 2020: 8 dry-land x 50 + 4 paddy x 60 -> (400 + 240) x 0.01 = 6.4 t C
    # East 2025: 3 forest x 100 + 5 dry x 50 + 4 paddy x 60 -> (300 + 250 + 240) x 0.01 = 7.9
    assert t.loc["W", "stock_tC_2020"] == pytest.approx(6.0)
    assert t.loc["E", "stock_tC_2020"] == pytest.approx(6.4)
    assert t.loc["E", "stock_tC_2025"] == pytest.approx(7.9)
    assert t.loc["E", "stock_change_tC"] == pytest.approx(1.5)
    assert t.loc["E", "sink_tCO2e"] == pytest.approx(1.5 * 44 / 12)
    assert t.loc["E", "sink_tCO2e_per_yr"] == pytest.approx(1.5 * 44 / 12 / 5)
    assert t.loc["W", "mean_density_tC_per_ha_2020"] == pytest.approx(6.0 / (10 * CELL_HA))
    assert t.loc["W", "name"] == "西乡"
    assert t.loc["W", "area_mu"] == pytest.approx(1200 / 666.67)
    s = json.loads((out / "summary.json").read_text())
    assert s["totals"]["2020"]["stock_tC"] == pytest.approx(12.4)
    assert s["change"]["sink_tCO2e"] == pytest.approx(1.5 * 44 / 12)
    # paddy (unverified row) holds 4 x 60 x 0.01 = 2.4 of the 2025 total 13.9 t C
    assert s["unverified_stock_share_pct"] == pytest.approx(100 * 2.4 / 13.9)
    areas = pd.read_csv(out / "class_area_by_township.csv", encoding="utf-8-sig")
    e25 = areas[(areas.year == 2025) & (areas.zone == "E")].set_index("class")
    assert e25.loc[301, "area_ha"] == pytest.approx(0.03)
    assert e25.loc[301, "name_zh"] == "乔木林地"
    with rasterio.open(out / "carbon_density_tC_per_ha_2025.tif") as src:
        d = src.read(1)
        assert d[0, 3] == pytest.approx(100.0) and d[3, 5] == pytest.approx(60.0)
        assert src.tags()["units"] == "tC_per_ha"
    x = pd.read_excel(out / "townships.xlsx", sheet_name=None)
    assert "碳储量 (t C) 2020" in x["乡镇碳储量"].columns
    assert "Carbon stock (t C) 2020" in x["township carbon"].columns
    html = (out / "map.html").read_text(encoding="utf-8")
    assert json.dumps("东镇")[1:-1] in html and "data:image/png;base64" in html
    m = json.loads((out / "manifest.json").read_text())
    assert {i["path"] for i in m["inputs"]} >= {"lc2020.tif", "lc2025.tif", "zones.gpkg",
                                                "simple.csv"}
    assert all(len(i["sha256"]) == 64 for i in m["inputs"])
    assert "rasterio" in m["versions"] and "gdal" in m["versions"]
    assert m["timings_s"] and m["parameters"]["zonal_method"] == "centre"


def test_hand_computed_totals_default_table(tmp_path):
    res = pipeline.run(load_config(make_project(tmp_path, table="default")), verbose=False)
    t = pd.read_csv(res.out_dir / "townships.csv", encoding="utf-8-sig").set_index("zone")
    forest, dry, paddy = 53.34 + 13.34 + 95 + 6.40, 5 + 1 + 65.55, 5 + 1 + 104.5
    assert t.loc["W", "stock_tC_2020"] == pytest.approx(6 * CELL_HA * forest)
    assert t.loc["E", "stock_tC_2020"] == pytest.approx((8 * dry + 4 * paddy) * CELL_HA)
    assert t.loc["E", "stock_tC_2025"] == pytest.approx((3 * forest + 5 * dry + 4 * paddy)
                                                        * CELL_HA)


def test_fraction_mode_equals_centre_on_aligned_zones(tmp_path):
    p = make_project(tmp_path)
    p.write_text(p.read_text().replace('dir = "out"', 'dir = "out"\nzonal_method = "fraction"'))
    res = pipeline.run(load_config(p), verbose=False)
    t = pd.read_csv(res.out_dir / "townships.csv", encoding="utf-8-sig").set_index("zone")
    assert t.loc["E", "stock_tC_2025"] == pytest.approx(7.9)


def test_second_run_refuses_then_overwrites(tmp_path):
    cfg = load_config(make_project(tmp_path))
    pipeline.run(cfg, verbose=False)
    with pytest.raises(OutputExistsError, match="already exists"):
        pipeline.run(cfg, verbose=False)
    pipeline.run(cfg, overwrite=True, verbose=False)


def test_failed_run_leaves_no_output(tmp_path, monkeypatch):
    cfg = load_config(make_project(tmp_path))

    def broken(*a, **k):
        raise RuntimeError("map failed")

    monkeypatch.setattr(pipeline, "save_map", broken)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(RuntimeError, match="map failed"):
        pipeline.run(cfg, verbose=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_output_dir_holding_inputs_is_refused(tmp_path):
    p = make_project(tmp_path)
    cfg = load_config(p, out_dir=tmp_path)
    with pytest.raises(OutputExistsError, match="input"):
        pipeline.run(cfg, overwrite=True, verbose=False)
    assert (tmp_path / "lc2020.tif").exists()


def test_validate_reports_every_problem_at_once(tmp_path, capsys):
    p = make_project(tmp_path)
    (tmp_path / "lc2025.tif").unlink()
    (tmp_path / "simple.csv").write_text(
        "code,c_above,c_below,c_soil,c_dead,units,source,verified\n"
        "301,1,1,1,1,tC_per_ha,x,true\n")
    text = p.read_text().replace('id_field = "code"', 'id_field = "adcode"')
    p.write_text(text)
    problems = validate(load_config(p))
    joined = "\n".join(problems)
    assert "lc2025.tif" in joined and "does not exist" in joined
    assert "'adcode' not found" in joined and "available: code, name" in joined
    assert "101, 103, 1101" in joined  # codes without coefficients, all listed
    assert len(problems) >= 3
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "problem(s)" in err and "lc2025.tif" in err
    with pytest.raises(ConfigError):
        pipeline.run(load_config(p), verbose=False)
    assert not (tmp_path / "out").exists()


def test_validate_grid_and_crs_problems(tmp_path):
    from tests.test_bad_inputs import write_geographic_zones, write_shifted_lc

    p = make_project(tmp_path)
    write_shifted_lc(tmp_path / "lc2025.tif")
    write_geographic_zones(tmp_path / "zones.gpkg")
    joined = "\n".join(validate(load_config(p)))
    assert "differs from 2020" in joined and "align_to" in joined
    assert "not projected in metres" in joined and "EPSG:4326" in joined


def test_cli_run_and_validate_ok(tmp_path, capsys):
    p = make_project(tmp_path)
    assert main(["validate", str(p)]) == 0
    assert main(["-q", "run", str(p)]) == 0
    out = capsys.readouterr().out
    assert "2020: carbon stock 12 t C" in out and "sink 6 t CO2e" in out
    assert main(["-q", "run", str(p)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_baseline_transitions_uncertainty_valuation(tmp_path):
    p = make_project(tmp_path)
    (tmp_path / "simple.csv").write_text(
        "code,c_above,c_below,c_soil,c_dead,c_above_sd,units,source,verified\n"
        "301,60,20,20,0,10,tC_per_ha,test,true\n103,10,0,40,0,0,tC_per_ha,test,true\n"
        "101,0,0,60,0,0,tC_per_ha,test,false\n1101,0,0,0,0,0,tC_per_ha,test,true\n")
    res = pipeline.run(load_config(p), verbose=False)
    out = res.out_dir
    tr = pd.read_csv(out / "transitions.csv", encoding="utf-8-sig")
    aff = tr[(tr["from"] == 103) & (tr["to"] == 301)].iloc[0]
    # 3 cells x 0.01 ha x (100 - 50) t C/ha = 1.5 t C: the whole sink comes from afforestation
    assert aff["area_ha"] == pytest.approx(0.03) and aff["change_tC"] == pytest.approx(1.5)
    assert aff["from_zh"] == "旱地" and aff["to_zh"] == "乔木林地"
    assert tr["change_tC"].sum() == pytest.approx(1.5)
    s = json.loads((out / "summary.json").read_text())
    assert s["change"]["transitions_tier1"]["change_by_pool_tC"]["c_above"] == pytest.approx(1.5)
    assert s["change"]["unknown_area_ha"] == {"nodata_before_ha": 0.0, "nodata_after_ha": 0.0}
    # shadow value at the China ETS 2024 average, 95.96 CNY/t CO2e
    assert s["valuation"]["sink_value"] == pytest.approx(1.5 * 44 / 12 * 95.96)
    u = s["uncertainty"]
    assert u["draws"] == 1000 and u["stock_2020"]["central_tC"] == pytest.approx(12.4)
    # only forest c_above is uncertain (sd 10): stock 2020 interval ~ 12.4 +- 1.96 x 10 x 0.06
    assert u["stock_2020"]["p97_5_tC"] - u["stock_2020"]["p2_5_tC"] == pytest.approx(
        2 * 1.96 * 10 * 0.06, rel=0.15)
    # the afforested 0.03 ha carry the sink's uncertainty: 1.96 x 10 x 0.03
    assert u["sink"]["p97_5_tC"] - u["sink"]["p2_5_tC"] == pytest.approx(
        2 * 1.96 * 10 * 0.03, rel=0.15)
    unc = pd.read_csv(out / "uncertainty.csv", encoding="utf-8-sig")
    assert set(unc["method"]) == {"monte_carlo", "approach1"}
    t = pd.read_csv(out / "townships.csv", encoding="utf-8-sig").set_index("zone")
    w = t.loc["W"]  # no land change in the west: sink exactly 0 in every draw
    assert w["sink_tCO2e_p2_5"] == 0 and w["sink_tCO2e_p97_5"] == 0
    for pool in ("c_above", "c_below", "c_soil", "c_dead"):
        assert (out / f"carbon_density_{pool}_tC_per_ha_2020.tif").exists()
    # a second run with the same seed gives identical intervals
    res2 = pipeline.run(load_config(p, out_dir=tmp_path / "again"), verbose=False)
    assert json.loads((res2.out_dir / "summary.json").read_text())["uncertainty"] == u


def test_farmland_soc_and_wetland_restoration(tmp_path):
    import geopandas as gpd
    import shapely

    from gis.grid import make_raster
    from gis.raster_io import write_cog
    from gis.vector_io import write_vector
    from tests.project_fixture import GRID, LC2025

    p = make_project(tmp_path, table="default")
    lc = LC2025.copy()
    lc[3, 3] = 1108  # one paddy cell (0.01 ha) rewetted to marsh
    (tmp_path / "lc2025.tif").unlink()
    write_cog(make_raster(lc, GRID, nodata=0, units="class", kind="categorical"),
              tmp_path / "lc2025.tif")
    parcels = gpd.GeoDataFrame(
        {"declared_practice": ["保护性耕作", "conventional", "conservation"],
         "declared_area_mu": [600.0, 900.0, 300.0], "township": ["东镇", "东镇", "西乡"]},
        geometry=[shapely.box(500_030, 4_700_000, 500_040, 4_700_010)] * 3, crs="EPSG:4551")
    write_vector(parcels, tmp_path / "parcels.gpkg")
    p.write_text(p.read_text() + '\n[farmland]\nparcels = "parcels.gpkg"\n')
    s = json.loads((pipeline.run(load_config(p), verbose=False).out_dir
                    / "summary.json").read_text())
    f = s["farmland_soc"]
    # 900 mu conservation = 60 ha x 95 x 0.69 x (1.15 - 1.00) / 20 yr x 44/12
    assert f["area_mu"] == 900
    assert f["sink_tCO2e_per_yr"] == pytest.approx(900 * 666.67 / 1e4 * 65.55 * 0.15 / 20
                                                   * 44 / 12)
    w = s["wetland_restoration"]
    assert w["restored_ha"] == pytest.approx(0.01)
    # soil: 87 x (0.80 - 0.71) / 20 t C/ha/yr; CH4: 235 kg/ha/yr x GWP 28
    assert w["co2_removal_tCO2e_per_yr"] == pytest.approx(0.01 * 87 * 0.09 / 20 * 44 / 12)
    assert w["ch4_emission_tCO2e_per_yr"] == pytest.approx(0.01 * 0.235 * 28)
    assert w["net_tCO2e_per_yr"] < 0 and "SOURCE" in w["note"]
    t = pd.read_csv(tmp_path / "out" / "townships.csv", encoding="utf-8-sig").set_index("zone")
    assert t.loc["E", "tillage_area_mu"] == 600 and t.loc["W", "tillage_area_mu"] == 300
    assert t.loc["E", "wetland_restored_ha"] == pytest.approx(0.01)


def test_nodata_in_one_year_is_unknown_area_not_a_loss(tmp_path):
    from gis.grid import make_raster
    from gis.raster_io import write_cog
    from tests.project_fixture import GRID, LC2025

    p = make_project(tmp_path)
    lc = LC2025.copy()
    lc[0, 0] = 0  # a forest cell of 2020 is missing in 2025 (e.g. cloud in the source)
    (tmp_path / "lc2025.tif").unlink()
    write_cog(make_raster(lc, GRID, nodata=0, units="class", kind="categorical"),
              tmp_path / "lc2025.tif")
    out = pipeline.run(load_config(p), verbose=False).out_dir
    s = json.loads((out / "summary.json").read_text())
    assert s["change"]["unknown_area_ha"]["nodata_after_ha"] == pytest.approx(0.01)
    # the 2025 stock is lower (one forest cell fewer: 100 t/ha x 0.01 ha) ...
    assert s["totals"]["2025"]["stock_tC"] == pytest.approx(13.9 - 1.0)
    # ... but the sink is still the afforestation only: the gap is not counted as a loss
    assert s["change"]["stock_change_tC"] == pytest.approx(1.5)
    t = pd.read_csv(out / "townships.csv", encoding="utf-8-sig").set_index("zone")
    assert t.loc["W", "stock_change_tC"] == pytest.approx(0.0)
