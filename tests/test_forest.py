"""Tier 2 forest carbon from inventory sub-compartments: hand-computed densities, burning,
tier merging and shares, alias resolution, and the errors a user can meet."""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.errors import CoefficientError, CRSMismatchError, GridMismatchError, InputError
from gis.grid import GridSpec, make_raster
from gis.vector_io import read_vector
from sinks.forest import (
    TIER2_POOLS,
    burn_tier2,
    combine_tiers,
    inventory_carbon,
    inventory_summary,
    load_forest_table,
    tier_shares,
)

HEADER = ("species_group,species_en,wd_t_per_m3,bef,r,cf,deadwood_frac,litter_frac,aliases,"
          "source,verified\n")
ROW = "测试松,Pinus testii,0.5,1.4,0.25,0.5,0.08,0.04,试松;test pine,hand-made for tests,true\n"


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    p = tmp_path / "forest.csv"
    p.write_text(HEADER + ROW, encoding="utf-8")
    return p


def _inventory(rows: list[dict], geoms: list, crs: str = "EPSG:4551") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)


def test_one_polygon_densities_by_hand(table_csv):
    """V = 100 m3/ha, WD 0.5, BEF 1.4, R 0.25, CF 0.5:
    AGB = 100 x 0.5 x 1.4 = 70 t d.m./ha -> C_above = 35 t C/ha; C_below = 35 x 0.25 = 8.75;
    dead wood = 35 x 0.08 = 2.8; litter = 35 x 0.04 = 1.4."""
    inv = _inventory([{"xiaoban_id": "A", "species_group": "测试松", "volume_m3_per_ha": 100.0}],
                     [shapely.box(0, 0, 100, 100)])
    out = inventory_carbon(inv, load_forest_table(table_csv))
    row = out.iloc[0]
    assert row["c_above"] == pytest.approx(35.0)
    assert row["c_below"] == pytest.approx(8.75)
    assert row["c_deadwood"] == pytest.approx(2.8)
    assert row["c_litter"] == pytest.approx(1.4)
    assert row["tier"] == 2 and row["forest_group"] == "测试松" and row["coef_verified"]
    assert len(inv.columns) == 4  # input untouched


def test_shipped_table_schema_and_oak_row():
    t = load_forest_table()
    for group in ("蒙古栎", "阔叶混交林", "落叶松", "红松", "杨树", "针阔混交林",
                  "白桦", "樟子松", "针叶混交林"):
        assert group in t.table.index
    oak = t.table.loc["蒙古栎"]
    # methods.md §2.1: 栎类 WD 0.676, BEF 1.355, R 0.292; CF Fan et al. 2016 Table 1: 0.4846
    assert (oak.wd_t_per_m3, oak.bef, oak.r, oak.cf) == (0.676, 1.355, 0.292, 0.4846)
    assert (oak.deadwood_frac, oak.litter_frac) == (0.08, 0.04)
    assert not t.table["verified"].any()  # WD/BEF/R are all [U] in methods.md
    assert t.table["source"].str.len().min() > 20


def test_alias_resolution():
    t = load_forest_table()
    assert t.resolve("柞树") == "蒙古栎"
    assert t.resolve(" quercus   MONGOLICA ") == "蒙古栎"
    assert t.resolve("人工红松林") == "红松"  # 人工 and 林 dropped on the second try
    assert t.resolve("黄花落叶松") == "落叶松"
    assert t.resolve("broadleaf mixed") == "阔叶混交林"  # the demo's species_en
    assert t.resolve("水杉") is None
    # 100 m3/ha of 柞树 uses the Quercus row: 100 x 0.676 x 1.355 x 0.4846 = 44.38839 t C/ha
    inv = _inventory([{"species_group": "柞树", "volume_m3_per_ha": 100.0}],
                     [shapely.box(0, 0, 10, 10)])
    out = inventory_carbon(inv, t)
    assert out["forest_group"].iloc[0] == "蒙古栎"
    assert out["c_above"].iloc[0] == pytest.approx(44.388394, abs=1e-5)
    assert out["c_below"].iloc[0] == pytest.approx(44.388394 * 0.292, abs=1e-5)


def test_missing_species_lists_every_name(table_csv):
    inv = _inventory([{"species_group": s, "volume_m3_per_ha": 50.0}
                      for s in ("测试松", "水杉", "银杏", "水杉", None)],
                     [shapely.box(0, 0, 10, 10)] * 5)
    with pytest.raises(CoefficientError) as err:
        inventory_carbon(inv, load_forest_table(table_csv))
    msg = str(err.value)
    assert "3 species" in msg and "水杉 (2 sub-compartments)" in msg and "银杏" in msg
    assert "<empty>" in msg and "测试松" not in msg.split("fix:")[0]


def test_bad_volumes_name_the_rows(table_csv):
    inv = _inventory([{"xiaoban_id": i, "species_group": "测试松", "volume_m3_per_ha": v}
                      for i, v in (("ok-1", 80.0), ("neg-2", -5.0), ("nan-3", None),
                                   ("txt-4", "abc"), ("zero-5", 0.0))],
                     [shapely.box(0, 0, 10, 10)] * 5)
    with pytest.raises(InputError) as err:
        inventory_carbon(inv, load_forest_table(table_csv))
    msg = str(err.value)
    assert "3 sub-compartment(s)" in msg
    assert "neg-2" in msg and "nan-3" in msg and "txt-4" in msg
    assert "ok-1" not in msg and "zero-5" not in msg
    with pytest.raises(InputError, match="stock_volume"):
        inventory_carbon(inv, load_forest_table(table_csv), volume_field="stock_volume")


def test_table_schema_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + ROW.replace(",0.5,0.08", ",48.5,0.08").replace("0.5,1.4", "500,1.4"),
                   encoding="utf-8")
    with pytest.raises(CoefficientError) as err:
        load_forest_table(bad)
    assert "wd_t_per_m3 outside" in str(err.value) and "cf outside" in str(err.value)
    clash = tmp_path / "clash.csv"
    clash.write_text(HEADER + ROW + "别的松,Pinus other,0.5,1.4,0.25,0.5,0.08,0.04,试松,x,false\n",
                     encoding="utf-8")
    with pytest.raises(CoefficientError, match="claimed by two species groups"):
        load_forest_table(clash)
    short = tmp_path / "short.csv"
    short.write_text("species_group,wd_t_per_m3,bef\n松,0.5,1.4\n", encoding="utf-8")
    with pytest.raises(CoefficientError, match="missing column"):
        load_forest_table(short)
    with pytest.raises(CoefficientError, match="not found"):
        load_forest_table(tmp_path / "nope.csv")


def _two_stands(table_csv) -> gpd.GeoDataFrame:
    """On grid10 (cell centres x = 500005..500055, y = 4700035..4700005):
    stand A (V 100 -> C_above 35) covers the centres of rows 0-2, cols 0-2;
    stand B (V 40 -> C_above 14) covers the centres of rows 2-3, cols 3-5."""
    inv = _inventory(
        [{"xiaoban_id": "A", "species_group": "测试松", "volume_m3_per_ha": 100.0},
         {"xiaoban_id": "B", "species_group": "test pine", "volume_m3_per_ha": 40.0}],
        [shapely.box(500_002, 4_700_012, 500_028, 4_700_038),
         shapely.box(500_032, 4_700_002, 500_058, 4_700_018)])
    return inventory_carbon(inv, load_forest_table(table_csv))


def test_burn_pixel_centres_lazily(grid10, lc_small, table_csv):
    inv_c = _two_stands(table_csv)
    out = burn_tier2(inv_c, lc_small, "c_above")
    assert isinstance(out.data, dsa.Array)
    assert out.data.chunks == lc_small.data.chunks  # blocks follow the template (2 x 2)
    assert out.attrs["units"] == "tC_per_ha" and out.rio.crs == lc_small.rio.crs
    n = np.nan
    expected = np.array([[35, 35, 35, n, n, n],
                         [35, 35, 35, n, n, n],
                         [35, 35, 35, 14, 14, 14],
                         [n, n, n, 14, 14, 14]], dtype="float32")
    np.testing.assert_array_equal(out.values, expected)
    below = burn_tier2(inv_c, lc_small, "c_below").values
    assert below[0, 0] == pytest.approx(8.75) and below[3, 5] == pytest.approx(3.5)
    with pytest.raises(ValueError, match="soil carbon stays Tier 1"):
        burn_tier2(inv_c, lc_small, "c_soil")


def test_burn_refuses_other_crs(lc_small, table_csv):
    inv_c = _two_stands(table_csv)
    with pytest.raises(CRSMismatchError, match="EPSG:4551"):
        burn_tier2(inv_c.set_crs("EPSG:32651", allow_override=True), lc_small, "c_above")


def test_combine_tiers_and_shares(grid10, lc_small, table_csv):
    """lc_small (see conftest) has forest 301 in rows 0-1, cols 0-2. Tier 1 c_above: forest
    50, 103 dry land 2, 101 paddy 3, 1101 water 0, nodata NaN. Tier 2: one stand (35 t C/ha)
    over the centres of rows 0-2, cols 0-1, so forest cells (0..1, 0..1) are Tier 2, forest
    cells (0, 2) and (1, 2) stay Tier 1 (uncovered), and the water cells (2, 0..1) under the
    stand keep their Tier 1 value (not forest)."""
    inv = _inventory([{"species_group": "测试松", "volume_m3_per_ha": 100.0}],
                     [shapely.box(500_002, 4_700_012, 500_018, 4_700_038)])  # cols 0-1, rows 0-2
    inv_c = inventory_carbon(inv, load_forest_table(table_csv))
    lut = {301: 50.0, 103: 2.0, 101: 3.0, 1101: 0.0}
    lc = lc_small.values
    t1 = np.vectorize(lambda c: lut.get(int(c), np.nan))(lc).astype("float32")
    tier1 = make_raster(t1, grid10, nodata=np.nan, units="tC_per_ha", kind="continuous",
                        name="c_above_tier1", chunks=2)
    forest = make_raster((lc == 301).astype("uint8"), grid10, nodata=None, units="bool",
                         kind="categorical", name="forest", chunks=3)
    tier2 = burn_tier2(inv_c, lc_small, "c_above")
    value, tier = combine_tiers(tier1, tier2, forest)
    assert isinstance(value.data, dsa.Array) and isinstance(tier.data, dsa.Array)
    n = np.nan
    np.testing.assert_array_equal(value.values, np.array(
        [[35, 35, 50, 2, 2, 2],
         [35, 35, 50, 2, 2, 2],
         [0, 0, n, 2, 2, 3],    # water under the stand keeps its Tier 1 value
         [0, 0, n, 3, 3, 3]], dtype="float32"))
    np.testing.assert_array_equal(tier.values, np.array(
        [[2, 2, 1, 0, 0, 0],
         [2, 2, 1, 0, 0, 0],
         [0, 0, 0, 0, 0, 0],
         [0, 0, 0, 0, 0, 0]], dtype="uint8"))
    assert tier.dtype == np.uint8 and tier.rio.nodata == 0
    # 4 Tier 2 cells and 2 Tier 1 cells of 100 m2: 0.04 ha (66.67 %) and 0.02 ha (33.33 %);
    # stocks 4 x 35 x 0.01 = 1.4 t C and 2 x 50 x 0.01 = 1.0 t C (58.33 % / 41.67 %)
    sh = tier_shares(tier, density=value)
    assert sh.loc[2, "cells"] == 4 and sh.loc[1, "cells"] == 2
    assert sh.loc[2, "area_ha"] == pytest.approx(0.04)
    assert sh.loc[1, "area_mu"] == pytest.approx(200 / 666.67, rel=1e-4)
    assert sh.loc[2, "share_pct"] == pytest.approx(200 / 3)
    assert sh.loc[2, "stock_tC"] == pytest.approx(1.4)
    assert sh.loc[1, "stock_share_pct"] == pytest.approx(100 / 2.4)
    assert tier_shares(tier)["share_pct"].tolist() == pytest.approx([100 / 3, 200 / 3])


def test_combine_refuses_other_grids(grid10, lc_small):
    other = GridSpec.from_bounds((500_000, 4_700_000, 500_060, 4_700_050), 10, "EPSG:4551")
    a = make_raster(np.ones(grid10.shape, "float32"), grid10, nodata=np.nan, units="tC_per_ha",
                    kind="continuous")
    b = make_raster(np.ones(other.shape, "float32"), other, nodata=np.nan, units="tC_per_ha",
                    kind="continuous")
    with pytest.raises(GridMismatchError):
        combine_tiers(a, b, lc_small)


@pytest.fixture(scope="module")
def demo240(tmp_path_factory):
    from sinkmap.demo_county import generate_county
    return generate_county(tmp_path_factory.mktemp("forest240"), resolution_m=240.0, seed=2020)


def test_demo_inventory_density_is_plausible(demo240):
    """Fan et al. 2016: Jilin forest vegetation 64.6-66.7 t C/ha; accept 30-150."""
    from gis.raster_io import read_raster
    from layers.landcover import load_scheme
    from sinks.coefficients import load_carbon_table
    from sinks.density import carbon_density

    inv_c = inventory_carbon(read_vector(demo240.forest_inventory), load_forest_table())
    total = inventory_summary(inv_c).loc["total"]
    assert 30.0 <= total["c_vegetation"] <= 150.0
    lc = read_raster(demo240.landcover_2020)
    scheme = load_scheme("gbt21010")
    forest_codes = scheme.table.index[scheme.table["ipcc_category"] == "forest"].to_numpy()
    table = load_carbon_table("default").for_scheme(scheme)
    combined = []
    for pool in TIER2_POOLS:
        value, tier = combine_tiers(carbon_density(lc, table, pool=pool),
                                    burn_tier2(inv_c, lc, pool), lc.isin(forest_codes))
        combined.append(value)
    sh = tier_shares(tier)
    assert 50.0 < sh.loc[2, "share_pct"] < 95.0  # the demo inventories ~72 % of its forest
    veg = (combined[0] + combined[1]).values[tier.values > 0]
    assert 30.0 <= float(np.nanmean(veg)) <= 150.0
