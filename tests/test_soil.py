"""Soil sinks at IPCC Tier 1 (sinks/soil.py): farmland SOC, conservation tillage, wetlands.

Every expected value is worked out by hand in the comments next to it.
"""

from __future__ import annotations

import pandas as pd
import pytest

from gis.errors import CoefficientError, InputError, SinkmapError
from gis.resources import packaged
from sinks.soil import (
    CO2_PER_C,
    Management,
    load_soc_factors,
    load_wetland_factors,
    mu_to_ha,
    soc_change,
    soc_change_systems,
    soc_stock_tC_per_ha,
    tillage_sink,
    wetland_restoration,
)

HA_PER_MU = 666.67 / 10_000  # gis.zonal.M2_PER_MU / M2_PER_HA


# ------------------------------------------------------------------------------------------
# IPCC 2006 Vol.4 Ch.5 s5.2.3.4 worked example
# ------------------------------------------------------------------------------------------

def test_ipcc2006_ch5_worked_example_reproduced_exactly():
    """1 Mha of cropland, warm temperate moist, HAC soil, SOC_REF 88 t C/ha (Table 2.3).

    The example's management mix (as in the public test suite that transcribes it, methods.md
    s1.5), all long-term cultivated (F_LU 0.69):
      before: 400,000 ha full tillage + low input (0.92); 600,000 ha full tillage + medium (1.00)
      after:  200,000 ha full tillage + low input; 700,000 ha reduced tillage (1.08) + medium;
              100,000 ha no-till (1.15) + medium
    By hand (88 x 0.69 = 60.72 t C/ha):
      initial = 400,000 x 60.72 x 0.92 + 600,000 x 60.72            = 22,344,960 + 36,432,000
              = 58,776,960 t C  (published: 58.78 Mt C)
      final   = 200,000 x 60.72 x 0.92 + 700,000 x 60.72 x 1.08 + 100,000 x 60.72 x 1.15
              = 11,172,480 + 45,904,320 + 6,982,800 = 64,059,600 t C (published: 64.06 Mt C)
      change  = (64,059,600 - 58,776,960) / 20 = 264,132 t C/yr; IPCC publishes 264,000 from
              its rounded totals ((64.06 - 58.78) Mt / 20 yr).
    """
    full_low = Management("long_term_cultivated", "full_till", "low")
    full_med = Management("long_term_cultivated", "full_till", "medium")
    reduced_med = Management("long_term_cultivated", "reduced_till", "medium")
    no_till_med = Management("long_term_cultivated", "no_till", "medium")
    r = soc_change_systems({full_low: 400_000, full_med: 600_000},
                           {full_low: 200_000, reduced_med: 700_000, no_till_med: 100_000},
                           soil="HAC", climate="warm_temperate_moist", years=20)
    assert r.area_ha == 1_000_000
    assert r.initial_tC == pytest.approx(58_776_960, abs=1e-3)
    assert r.final_tC == pytest.approx(64_059_600, abs=1e-3)
    assert round(r.initial_tC / 1e6, 2) == 58.78
    assert round(r.final_tC / 1e6, 2) == 64.06
    assert r.annual_change_tC_per_yr == pytest.approx(264_132, abs=1e-6)
    assert r.annual_change_tC_per_yr == pytest.approx(264_000, rel=1e-3)
    assert (round(r.final_tC / 1e6, 2) - round(r.initial_tC / 1e6, 2)) * 1e6 / 20 \
        == pytest.approx(264_000)
    assert r.annual_change_tCO2e_per_yr == pytest.approx(264_132 * 44 / 12)
    assert r.unverified == ()  # every factor of the example is verified by the example itself
    values = {(f.factor, f.level): f.value for f in r.factors}
    assert values == {("SOC_REF", "HAC"): 88.0, ("F_LU", "long_term_cultivated"): 0.69,
                      ("F_MG", "full_till"): 1.0, ("F_MG", "reduced_till"): 1.08,
                      ("F_MG", "no_till"): 1.15, ("F_I", "low"): 0.92, ("F_I", "medium"): 1.0}


def test_soc_stock_equation():
    # 95 x 0.69 x 1.15 x 1.00 = 75.3825 t C/ha (methods.md s1.6: 75.38)
    assert soc_stock_tC_per_ha(95, 0.69, 1.15, 1.0) == pytest.approx(75.3825)
    with pytest.raises(ValueError, match="f_mg"):
        soc_stock_tC_per_ha(95, 0.69, -1.0, 1.0)


# ------------------------------------------------------------------------------------------
# Conservation tillage (methods.md s1.6)
# ------------------------------------------------------------------------------------------

def test_methods_s1_6_80000_mu_no_till():
    """80,000 mu x 666.67 m2 = 5,333.36 ha; 95 x 0.69 = 65.55 t C/ha under full tillage,
    x 1.15 = 75.3825 under no-till: (75.3825 - 65.55) / 20 = 0.491625 t C/ha/yr
    = 1.802625 t CO2/ha/yr; x 5,333.36 ha = 9,614.05 t CO2/yr (methods.md: ~ 9,600)."""
    s = tillage_sink(80_000)  # defaults: mu, no_till vs full_till, HAC, cool temperate moist
    assert s.area_ha == pytest.approx(5_333.36)
    assert s.tC_per_ha_per_yr == pytest.approx(0.491625)
    assert s.tCO2e_per_ha_per_yr == pytest.approx(1.802625)
    assert s.sink_tC_per_yr == pytest.approx(5_333.36 * 0.491625)
    assert s.sink_tCO2e_per_yr == pytest.approx(9_614.05, abs=0.01)
    assert s.sink_tCO2e_per_yr == pytest.approx(9_600, rel=0.01)
    assert s.area_mu == pytest.approx(80_000)
    # SOC_REF 95 is [U] in methods.md: the result says so
    assert any(u.startswith("SOC_REF HAC = 95") for u in s.unverified)
    assert len(s.unverified) == 1


def test_reduced_vs_no_till():
    """Reduced tillage 1.08: 65.55 x 0.08 / 20 = 0.2622 t C/ha/yr = 0.9614 t CO2/ha/yr
    (methods.md s1.6: 0.96); no-till 0.491625 t C/ha/yr. Same area in ha."""
    red = tillage_sink(100.0, unit="ha", practice="reduced_till")
    no = tillage_sink(100.0, unit="ha", practice="no_till")
    assert red.tC_per_ha_per_yr == pytest.approx(0.2622)
    assert red.tCO2e_per_ha_per_yr == pytest.approx(0.9614, abs=1e-4)
    assert red.sink_tC_per_yr == pytest.approx(26.22)
    assert no.sink_tC_per_yr == pytest.approx(49.1625)
    assert no.sink_tCO2e_per_yr / red.sink_tCO2e_per_yr == pytest.approx(0.15 / 0.08)
    # reduced tillage as the baseline of no-till: 65.55 x (1.15 - 1.08) / 20 = 0.229425
    step = tillage_sink(1.0, unit="ha", practice="no_till", baseline="reduced")
    assert step.tC_per_ha_per_yr == pytest.approx(0.229425)


def test_tillage_sink_per_township_series_in_mu():
    """Verified no-till area per township (mu); each row = mu x 0.066667 ha/mu x 1.802625."""
    area = pd.Series({"海龙镇": 15_000.0, "山城镇": 30_000.0, "新合镇": 0.0}, name="no_till_mu")
    s = tillage_sink(area, unit="mu")
    assert isinstance(s.sink_tCO2e_per_yr, pd.Series)
    assert list(s.sink_tCO2e_per_yr.index) == ["海龙镇", "山城镇", "新合镇"]
    # 15,000 mu = 1,000.005 ha -> 1,802.634 t CO2/yr; 30,000 mu = 2,000.01 ha -> 3,605.268
    assert s.sink_tCO2e_per_yr["海龙镇"] == pytest.approx(1_000.005 * 1.802625)
    assert s.sink_tCO2e_per_yr["海龙镇"] == pytest.approx(1_802.634, abs=1e-3)
    assert s.sink_tCO2e_per_yr["山城镇"] == pytest.approx(3_605.268, abs=1e-3)
    assert s.sink_tCO2e_per_yr["新合镇"] == 0.0
    frame = s.to_frame()
    assert list(frame.columns) == ["area_ha", "area_mu", "sink_tC_per_yr", "sink_tCO2e_per_yr"]
    assert frame["area_mu"].tolist() == pytest.approx([15_000, 30_000, 0])
    assert frame["sink_tCO2e_per_yr"].sum() == pytest.approx(45_000 * HA_PER_MU * 1.802625)
    # same as the scalar call on the total
    assert frame["sink_tCO2e_per_yr"].sum() == pytest.approx(
        tillage_sink(45_000).sink_tCO2e_per_yr)


def test_tillage_sink_2019_edition_is_smaller_and_flagged():
    """2019 Refinement [U]: SOC_REF 81, F_LU 0.70, no-till 1.09:
    81 x 0.70 x 0.09 / 20 = 0.25515 t C/ha/yr (vs 0.491625 with 2006 factors)."""
    s = tillage_sink(1.0, unit="ha", edition="ipcc2019")
    assert s.tC_per_ha_per_yr == pytest.approx(0.25515)
    flagged = {u.split(" = ")[0] for u in s.unverified}
    assert flagged == {"SOC_REF HAC", "F_LU long_term_cultivated", "F_MG no_till"}


def test_soc_change_single_system_and_series():
    # 1 ha full tillage/medium -> no-till/medium: +9.8325 t C over 20 yr
    r = soc_change(1.0, Management(), Management(tillage="no"))
    assert r.initial_tC == pytest.approx(65.55)
    assert r.final_tC == pytest.approx(75.3825)
    assert r.annual_change_tC_per_yr == pytest.approx(0.491625)
    assert r.annual_change_tCO2e_per_yr == pytest.approx(0.491625 * CO2_PER_C)
    # losing input (medium -> low, 0.92) is an emission: 65.55 x -0.08 / 20 = -0.2622
    loss = soc_change(pd.Series({"a": 10.0, "b": 0.0}), Management(), Management(input="low"))
    assert loss.annual_change_tC_per_yr.tolist() == pytest.approx([-2.622, 0.0])
    # paddy (F_LU 1.10 [U]) exists in the 2006 table: 95 x 1.10 = 104.5 t C/ha
    paddy = soc_change(1.0, Management("paddy"), Management("paddy"))
    assert paddy.initial_tC == pytest.approx(104.5)
    assert paddy.annual_change_tC_per_yr == 0


# ------------------------------------------------------------------------------------------
# Wetland restoration (2013 Wetlands Supplement Ch.5)
# ------------------------------------------------------------------------------------------

def test_wetland_restoration_default_is_a_net_source():
    """100 ha of long-term cultivated land rewetted, first phase (years 1-20), cool temperate
    moist wetland soil SOC_REF 87 (2006 Table 2.3 [U]), GWP100 CH4 = 28 (AR5):
      SOC gain  = 100 x 87 x (0.80 - 0.71) / 20 = 39.15 t C/yr -> 143.55 t CO2/yr
      CH4       = 100 x 235 kg = 23.5 t CH4/yr x 28 = 658 t CO2e/yr
      net       = 143.55 - 658 = -514.45 t CO2e/yr (a net source; not clipped)"""
    b = wetland_restoration(100.0, years_since=0)
    assert b.soc_gain_tC_per_yr == pytest.approx(39.15)
    assert b.co2_removal_tCO2e_per_yr == pytest.approx(143.55)
    assert b.ch4_emission_tCH4_per_yr == pytest.approx(23.5)
    assert b.ch4_emission_tCO2e_per_yr == pytest.approx(658.0)
    assert b.net_tCO2e_per_yr == pytest.approx(-514.45)
    assert b.gwp_ch4 == 28
    assert b.unverified  # Table 5.3/5.4 rows are secondary [S], SOC_REF 87 is [U]
    assert not any(u.startswith("GWP100") for u in b.unverified)  # AR5 28 is verified


def test_wetland_phases_and_40_year_mean():
    """years 21-40: 100 x 87 x (1.0 - 0.80) / 20 = 87 t C/yr -> 319 t CO2; net 319 - 658 = -339.
    After 40 years: no SOC gain, CH4 continues: net -658.
    40-year mean: 100 x 87 x 0.29 / 40 = 63.075 t C/yr -> 231.275 t CO2; net -426.725."""
    second = wetland_restoration(100.0, years_since=25)
    assert second.soc_gain_tC_per_yr == pytest.approx(87.0)
    assert second.co2_removal_tCO2e_per_yr == pytest.approx(319.0)
    assert second.net_tCO2e_per_yr == pytest.approx(-339.0)
    late = wetland_restoration(100.0, years_since=40)
    assert late.soc_gain_tC_per_yr == 0
    assert late.net_tCO2e_per_yr == pytest.approx(-658.0)
    mean = wetland_restoration(100.0, years_since=None)
    assert mean.soc_gain_tC_per_yr == pytest.approx(63.075)
    assert mean.net_tCO2e_per_yr == pytest.approx(-426.725)
    assert wetland_restoration(100.0, years_since=19).soc_gain_tC_per_yr == pytest.approx(39.15)
    assert wetland_restoration(100.0, years_since=20).soc_gain_tC_per_yr == pytest.approx(87.0)


def test_wetland_net_positive_with_low_local_methane():
    """2019 wetland SOC_REF 128 [S], years 21-40, local CH4 76 kg/ha/yr, AR6 GWP 27.0:
      SOC gain = 100 x 128 x 0.20 / 20 = 128 t C/yr -> 469.333 t CO2/yr
      CH4      = 100 x 76 kg = 7.6 t x 27 = 205.2 t CO2e/yr; net = +264.133 t CO2e/yr"""
    b = wetland_restoration(100.0, years_since=30, soc_edition="ipcc2019", ch4_kg_per_ha=76,
                            gwp="ar6")
    assert b.soc_gain_tC_per_yr == pytest.approx(128.0)
    assert b.co2_removal_tCO2e_per_yr == pytest.approx(469.3333, abs=1e-4)
    assert b.ch4_emission_tCO2e_per_yr == pytest.approx(205.2)
    assert b.net_tCO2e_per_yr == pytest.approx(264.1333, abs=1e-4)
    assert b.net_tCO2e_per_yr > 0


def test_wetland_per_zone_series():
    """Zone A: 50 ha in year 1-20 phase -> 19.575 t C, 71.775 t CO2, 11.75 t CH4 x 28 = 329;
    net -257.225. Zone B: 20 ha in 21-40 -> 17.4 t C, 63.8 t CO2, 4.7 t CH4 = 131.6; net -67.8."""
    area = pd.Series({"A": 50.0, "B": 20.0})
    years = pd.Series({"A": 3, "B": 30})
    b = wetland_restoration(area, years_since=years)
    f = b.to_frame()
    assert f.index.tolist() == ["A", "B"]
    assert f["soc_gain_tC_per_yr"].tolist() == pytest.approx([19.575, 17.4])
    assert f["co2_removal_tCO2e_per_yr"].tolist() == pytest.approx([71.775, 63.8])
    assert f["ch4_emission_tCO2e_per_yr"].tolist() == pytest.approx([329.0, 131.6])
    assert f["net_tCO2e_per_yr"].tolist() == pytest.approx([-257.225, -67.8])
    with pytest.raises(InputError, match="index"):
        wetland_restoration(area, years_since=pd.Series({"A": 3, "C": 30}))


def test_gwp_rows_and_sources():
    wf = load_wetland_factors()
    ar5 = wf.get("GWP100", "CH4", edition="ar5")
    ar6 = wf.get("GWP100", "CH4", edition="ar6")
    assert (ar5.value, ar5.verified) == (28.0, True)
    assert "Table 8.7" in ar5.source
    assert (ar6.value, ar6.verified) == (27.0, False)
    assert "Table 7.15" in ar6.source
    assert wf.get("EF_CH4", "rewetted_created", climate="temperate").value == 235


# ------------------------------------------------------------------------------------------
# Tables and bad inputs
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["soc_factors_ipcc.csv", "wetland_factors_ipcc2013.csv"])
def test_shipped_tables_tag_their_verification(name):
    df = pd.read_csv(packaged("tables", name))
    assert df["source"].str.len().min() > 20
    for _, row in df.iterrows():
        tag = "[V]" if row["verified"] else ("[S]", "[U]")
        assert any(t in row["source"] for t in ([tag] if isinstance(tag, str) else tag)), row


def test_unknown_level_lists_valid_levels():
    with pytest.raises(CoefficientError) as e:
        tillage_sink(10.0, practice="ridge_till")
    msg = str(e.value)
    assert "ridge_till" in msg and "full_till, no_till, reduced_till" in msg
    assert "soc_factors_ipcc.csv" in msg
    with pytest.raises(CoefficientError, match="high_manure, high_no_manure, low, medium"):
        soc_change(1.0, Management(), Management(input="very_high"))
    with pytest.raises(CoefficientError, match="HAC, LAC, sandy, spodic, volcanic, wetland"):
        tillage_sink(1.0, soil="loess")
    with pytest.raises(CoefficientError, match="long_term_cultivated"):
        wetland_restoration(1.0, years_since=0, prior_land_use="forest")
    with pytest.raises(CoefficientError, match="ar4, ar5"):
        wetland_restoration(1.0, years_since=0, gwp="ar7")
    with pytest.raises(CoefficientError, match="ipcc2006, ipcc2019"):
        load_soc_factors("ipcc1996")


def test_missing_factor_for_climate_says_which_climates_have_it():
    # 2006 dry-zone F_LU is not in methods.md, so it is not shipped
    with pytest.raises(CoefficientError) as e:
        tillage_sink(1.0, climate="cool_temperate_dry")
    msg = str(e.value)
    assert "no F_LU long_term_cultivated row for edition ipcc2006, climate cool_temperate_dry" \
        in msg
    assert "temperate_boreal_moist only" in msg


def test_negative_or_missing_area_is_refused():
    with pytest.raises(InputError, match=">= 0"):
        tillage_sink(-5.0)
    with pytest.raises(InputError, match="山城镇"):
        tillage_sink(pd.Series({"海龙镇": 10.0, "山城镇": float("nan")}))
    with pytest.raises(InputError, match="b"):
        wetland_restoration(pd.Series({"a": 1.0, "b": -1.0}), years_since=0)
    with pytest.raises(InputError, match="years_since"):
        wetland_restoration(1.0, years_since=-1)
    with pytest.raises(InputError, match="same total area"):
        soc_change_systems({Management(): 10.0}, {Management(tillage="no_till"): 9.0})
    with pytest.raises(ValueError, match="unit"):
        tillage_sink(1.0, unit="acre")  # type: ignore[arg-type]
    assert issubclass(InputError, SinkmapError)


def test_user_table_missing_column_names_file_and_fix(tmp_path):
    bad = tmp_path / "my_soc.csv"
    bad.write_text("edition,climate,factor,level,value,units,verified\n"
                   "ipcc2006,cool_temperate_moist,SOC_REF,HAC,110,tC_per_ha,true\n",
                   encoding="utf-8")
    with pytest.raises(CoefficientError) as e:
        load_soc_factors(path=bad)
    msg = str(e.value)
    assert str(bad) in msg
    assert "missing column(s) source" in msg
    assert "fix:" in msg and "edition, climate, factor, level, value, units, source" in msg


def test_user_table_bad_values(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("edition,climate,factor,level,value,units,source,verified\n"
                   "ipcc2006,all,F_XX,foo,-1,x,,maybe\n", encoding="utf-8")
    with pytest.raises(CoefficientError) as e:
        load_soc_factors(path=bad)
    msg = str(e.value)
    for part in ("negative in row(s) 2", "unknown factor(s) F_XX", "needs a source",
                 "verified must be true or false"):
        assert part in msg


def test_user_table_overrides_shipped_rows(tmp_path):
    """A measured local SOC_REF (110 t C/ha, 0-30 cm) replaces the shipped 95:
    110 x 0.69 x 0.15 / 20 = 0.569250 t C/ha/yr."""
    local = tmp_path / "meihekou_soc.csv"
    local.write_text(
        "edition,climate,factor,level,value,sd,units,source,verified\n"
        "ipcc2006,cool_temperate_moist,SOC_REF,HAC,110,12,tC_per_ha,"
        "Meihekou soil survey 2022 (0-30 cm) [V],true\n", encoding="utf-8")
    t = load_soc_factors(path=local)
    ref = t.get("SOC_REF", "HAC", climate="cool_temperate_moist")
    assert (ref.value, ref.sd, ref.verified) == (110.0, 12.0, True)
    s = tillage_sink(1.0, unit="ha", factors=t)
    assert s.tC_per_ha_per_yr == pytest.approx(0.56925)
    assert s.unverified == ()
    assert str(local) in t.source


def test_mu_conversion_uses_gis_constant():
    from gis.zonal import M2_PER_HA, M2_PER_MU
    assert mu_to_ha(15.0) == pytest.approx(15 * M2_PER_MU / M2_PER_HA)
    assert mu_to_ha(15.0) == pytest.approx(1.000005)
