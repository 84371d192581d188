"""Class schemes and crosswalks to canonical classes; coefficient tables per class."""

from __future__ import annotations

import numpy as np
import pytest

from gis.errors import CoefficientError, InputError
from layers.landcover import canonical_classes, load_scheme
from sinks.coefficients import POOLS, load_carbon_table, load_invest_pools, require_codes

SCHEMES = ("gbt21010", "clcd", "worldcover")


@pytest.mark.parametrize("name", SCHEMES)
def test_every_scheme_code_maps_to_a_canonical_class(name):
    s = load_scheme(name)
    assert s.table["canonical"].notna().all()
    assert set(s.table["canonical"]) <= set(canonical_classes().index)


@pytest.mark.parametrize("table", ["jilin", "ipcc2006"])
@pytest.mark.parametrize("name", SCHEMES)
def test_shipped_tables_cover_every_scheme(name, table):
    t = load_carbon_table(table)
    assert t.pools == POOLS and t.keyed_by == "class"
    resolved = t.for_scheme(load_scheme(name))
    require_codes(load_scheme(name).codes, resolved)  # no code left without coefficients
    assert (t.table["source"].str.len() > 10).all()
    assert set(t.table["units"]) == {"tC_per_ha"}


def test_crosswalk_values():
    jilin = load_carbon_table("jilin")
    gb = jilin.for_scheme(load_scheme("gbt21010"))
    cl = jilin.for_scheme(load_scheme("clcd"))
    wc = jilin.for_scheme(load_scheme("worldcover"))
    # 三调 0301 乔木林地, CLCD 2 forest and WorldCover 10 tree cover are the same class
    assert gb.total()[301] == cl.total()[2] == wc.total()[10]
    # 三调 1108 沼泽地 and 0402 沼泽草地 (regrouped to 湿地) are marsh, as CLCD 9 / WorldCover 90
    assert gb.total()[1108] == gb.total()[402] == cl.total()[9] == wc.total()[90]
    assert load_scheme("gbt21010").table.loc[402, "ipcc_category"] == "wetland"
    # forest: Fan et al. 2016 Jilin 66.68 t C/ha vegetation + DOM + soil 95
    assert gb.total()[301] == pytest.approx(53.34 + 13.34 + 4.27 + 2.13 + 95.0)
    assert gb.table.loc[301, "class"] == "forest"


def test_ipcc_tier1_forest_row():
    t = load_carbon_table("ipcc2006").table
    # AGB 120 t d.m./ha x CF 0.47 = 56.4 t C/ha; R 0.29 -> 16.356
    assert t.loc["forest", "c_above"] == pytest.approx(56.4)
    assert t.loc["forest", "c_below"] == pytest.approx(16.36)


def test_user_table_by_code_overrides(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("code,c_above,c_below,c_deadwood,c_litter,c_soil,units,source,verified\n"
                 "301,1,2,3,4,5,tC_per_ha,my survey 2024 table 3,true\n")
    t = load_carbon_table(p)
    assert t.keyed_by == "code" and t.total()[301] == 15
    assert t.for_scheme(load_scheme("gbt21010")) is t
    with pytest.raises(CoefficientError, match="103"):
        require_codes(np.array([301, 103]), t)


def test_invest_uncertain_table_reads_means_and_sds():
    from pathlib import Path

    t = load_invest_pools(Path(__file__).parent / "data" / "invest_willamette"
                          / "carbon_pools_samp_uncertain.csv")
    assert t.table.loc[1, "c_above"] == 15 and t.sds().loc[1, "c_above"] == 3.0


def test_bad_scheme(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("code,name_zh,name_en,ipcc_category,canonical\n1,a,b,forest,jungle\n")
    with pytest.raises(InputError, match="jungle"):
        load_scheme(p)
