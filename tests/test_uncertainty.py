"""Monte Carlo and IPCC Approach 1 uncertainty of stocks and sinks, vs hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gis.errors import CoefficientError, InputError
from sinks.uncertainty import TOTAL, Z95, approach1, monte_carlo

CO2 = 44 / 12


def _areas(rows: list[tuple[object, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["zone", "class", "area_ha"])


def _row(df: pd.DataFrame, zone: object, quantity: str, year: int) -> pd.Series:
    sel = df[(df["zone"] == zone) & (df["quantity"] == quantity) & (df["year"] == year)]
    assert len(sel) == 1
    return sel.iloc[0]


@pytest.fixture
def two_zones() -> dict[int, pd.DataFrame]:
    """Zone A: 10 ha of class 1 + 5 ha of class 2 -> 8 ha + 7 ha; zone B: 3 ha of class 2, kept."""
    return {2020: _areas([("A", 1, 10.0), ("A", 2, 5.0), ("B", 2, 3.0)]),
            2025: _areas([("A", 1, 8.0), ("A", 2, 7.0), ("B", 2, 3.0)])}


@pytest.fixture
def means() -> pd.DataFrame:
    """Class 1: 10 + 50 = 60 t C/ha; class 2: 20 + 80 = 100 t C/ha; class 9 is unused."""
    return pd.DataFrame({"c_above": [10.0, 20.0, 1.0], "c_soil": [50.0, 80.0, 1.0]},
                        index=[1, 2, 9])


def test_zero_sd_collapses_to_exact_stock(two_zones, means):
    sds = pd.DataFrame({"c_above_sd": [0.0, np.nan, 0.0], "c_soil_sd": [0.0, 0.0, np.nan]},
                       index=[1, 2, 9])
    # hand: A 2020 = 10*60 + 5*100 = 1100; A 2025 = 8*60 + 7*100 = 1180; B = 300 both years
    expected = {("A", "stock", 2020): 1100.0, ("A", "stock", 2025): 1180.0,
                ("B", "stock", 2020): 300.0, ("B", "stock", 2025): 300.0,
                (TOTAL, "stock", 2020): 1400.0, (TOTAL, "stock", 2025): 1480.0,
                ("A", "sink", 2025): 80.0, ("B", "sink", 2025): 0.0, (TOTAL, "sink", 2025): 80.0}
    for sd_arg in (sds, None):
        res = monte_carlo(two_zones, means, sd_arg, draws=200, seed=3)
        assert len(res.summary) == 9
        for (zone, q, year), v in expected.items():
            r = _row(res.summary, zone, q, year)
            for col in ("mean_tC", "p2_5_tC", "p97_5_tC", "central_tC"):
                assert r[col] == pytest.approx(v, abs=1e-9), (zone, q, year, col)
            assert r["sd_tC"] == pytest.approx(0.0, abs=1e-9)
            assert r["p97_5_tCO2e"] == pytest.approx(v * CO2, abs=1e-9)
        sink = _row(res.summary, "A", "sink", 2025)
        assert sink["base_year"] == 2020
        assert sink["mean_tCO2e"] == pytest.approx(80 * 44 / 12)


def test_one_class_normal_matches_analytic_interval():
    """100 +- 10 t C/ha on 50 ha: stock 5000 t C, sd 500, 95 % interval 5000 -+ 1.96 x 500."""
    areas = {2020: _areas([("z", 5, 50.0)])}
    means = pd.DataFrame({"c_soil": [100.0]}, index=[5])
    sds = pd.DataFrame({"c_soil_sd": [10.0]}, index=[5])
    res = monte_carlo(areas, means, sds, draws=20_000, seed=1)
    r = _row(res.summary, "z", "stock", 2020)
    half = 1.96 * 10 * 50  # 980 t C
    # sampling tolerances ~3 standard errors: mean 500/sqrt(20000) = 3.5; percentile ~ 9.5
    assert r["mean_tC"] == pytest.approx(5000, abs=12)
    assert r["sd_tC"] == pytest.approx(500, rel=0.02)
    assert r["p2_5_tC"] == pytest.approx(5000 - half, abs=30)
    assert r["p97_5_tC"] == pytest.approx(5000 + half, abs=30)
    assert r["central_tC"] == 5000
    t = _row(res.summary, TOTAL, "stock", 2020)
    assert t["p2_5_tC"] == r["p2_5_tC"]
    # a single year: the sink is 0 in every draw
    assert (res.sink_draws == 0).all()


def test_truncation_at_zero_gives_half_normal():
    """Mean 0, sd 1 on 1 ha: truncated draws are half-normal, mean sqrt(2/pi) = 0.798."""
    areas = {2020: _areas([("z", 1, 1.0)])}
    means = pd.DataFrame({"c_above": [0.0]}, index=[1])
    sds = pd.DataFrame({"c_above": [1.0]}, index=[1])  # sd columns may also carry pool names
    res = monte_carlo(areas, means, sds, draws=20_000, seed=2)
    draws = res.stock_draws[2020][:, 0]
    assert (draws >= 0).all() and np.isfinite(draws).all()
    assert draws.mean() == pytest.approx(math.sqrt(2 / math.pi), abs=0.015)
    assert res.summary.loc[0, "central_tC"] == 0
    plain = monte_carlo(areas, means, sds, draws=20_000, seed=2, truncate_at_zero=False)
    assert (plain.stock_draws[2020][:, 0] < 0).mean() == pytest.approx(0.5, abs=0.02)


def test_same_draw_for_all_years(two_zones, means):
    sds = pd.DataFrame({"c_above_sd": [3.0, 5.0], "c_soil_sd": [20.0, 30.0]}, index=[1, 2])
    res = monte_carlo(two_zones, means, sds, draws=1000, seed=7)
    b = res.zones.index("B")
    a = res.zones.index("A")
    # zone B did not change: exactly 0 in every draw although its stock varies
    assert np.all(res.sink_draws[:, b] == 0.0)
    assert res.stock_draws[2020][:, b].std() > 10
    # zone A: sink = 2 ha x (D2 - D1) per draw, i.e. stock difference of the same draw
    diff = res.stock_draws[2025] - res.stock_draws[2020]
    np.testing.assert_allclose(res.sink_draws, diff, atol=1e-9)
    assert res.sink_draws[:, a].std() > 1
    # totals are the sums over zones, draw by draw
    np.testing.assert_allclose(res.stock_draws[2020][:, -1],
                               res.stock_draws[2020][:, :-1].sum(axis=1))
    assert _row(res.summary, "B", "sink", 2025)[["p2_5_tC", "p97_5_tC"]].tolist() == [0, 0]


def test_seed_reproducibility(two_zones, means):
    sds = pd.DataFrame({"c_above_sd": [3.0, 5.0], "c_soil_sd": [20.0, 30.0]}, index=[1, 2])
    r1 = monte_carlo(two_zones, means, sds, draws=500, seed=42)
    r2 = monte_carlo(two_zones, means, sds, draws=500, seed=42)
    r3 = monte_carlo(two_zones, means, sds, draws=500, seed=43)
    pd.testing.assert_frame_equal(r1.summary, r2.summary)
    np.testing.assert_array_equal(r1.sink_draws, r2.sink_draws)
    assert not np.array_equal(r1.sink_draws, r3.sink_draws)
    assert (r1.seed, r1.draws) == (42, 500)
    assert r1.summary.attrs["seed"] == 42
    # rows of the table that no area uses do not change the draws
    extra = pd.concat([means, pd.DataFrame({"c_above": [7.0], "c_soil": [7.0]}, index=[0])])
    r4 = monte_carlo(two_zones, extra.sort_index(), sds, draws=500, seed=42)
    np.testing.assert_array_equal(r1.sink_draws, r4.sink_draws)


def test_approach1_two_classes_by_hand():
    """Class 1: pools 40 +- 10 and 60 +- 20 (sd); class 2: 50 +- 5. Zone z 2020: 10 ha + 20 ha."""
    means = pd.DataFrame({"c_above": [40.0, 50.0], "c_soil": [60.0, 0.0]}, index=[1, 2])
    sds = pd.DataFrame({"c_above_sd": [10.0, 5.0], "c_soil_sd": [20.0, np.nan]}, index=[1, 2])
    areas = {2020: _areas([("z", 1, 10.0), ("z", 2, 20.0)]),
             2025: _areas([("z", 1, 12.0), ("z", 2, 20.0)])}
    out = approach1(areas, means, sds)
    # Eq 3.2 over pools of class 1: U_p = 1.96*10/40 = 49 %, 1.96*20/60 = 65.33 %
    u1 = math.sqrt((49.0 * 40) ** 2 + (1.96 * 20 / 60 * 100 * 60) ** 2) / 100  # = 43.827 %
    u2 = 1.96 * 5 / 50 * 100  # 19.6 %
    assert u1 == pytest.approx(43.827, abs=1e-3)
    # Eq 3.2 over classes: x1 = 10*100 = 1000, x2 = 20*50 = 1000
    u_stock = math.sqrt((u1 * 1000) ** 2 + (u2 * 1000) ** 2) / 2000
    assert u_stock == pytest.approx(24.005, abs=1e-3)
    r = _row(out, "z", "stock", 2020)
    assert r["value_tC"] == pytest.approx(2000)
    assert r["u_pct"] == pytest.approx(u_stock)
    assert r["half_width_tC"] == pytest.approx(u_stock / 100 * 2000)
    assert r["lo_tC"] == pytest.approx(2000 * (1 - u_stock / 100))
    assert r["half_width_tCO2e"] == pytest.approx(u_stock / 100 * 2000 * CO2)
    # sink: only class 1 changed (+2 ha): 200 t C at class 1's uncertainty; class 2 cancels
    s = _row(out, "z", "sink", 2025)
    assert s["base_year"] == 2020
    assert s["value_tC"] == pytest.approx(200)
    assert s["u_pct"] == pytest.approx(u1)
    assert s["value_tCO2e"] == pytest.approx(200 * CO2)
    # Eq 3.1 with a 10 % area uncertainty
    out10 = approach1(areas, means, sds, area_u_pct=10)
    ux1, ux2 = math.hypot(10, u1), math.hypot(10, u2)
    expected = math.sqrt((ux1 * 1000) ** 2 + (ux2 * 1000) ** 2) / 2000
    assert expected == pytest.approx(25.03, abs=0.01)
    assert _row(out10, "z", "stock", 2020)["u_pct"] == pytest.approx(expected)


def test_approach1_total_is_correlated_across_zones():
    """Two identical zones share the coefficients: the total's U equals each zone's U (not /√2)."""
    means = pd.DataFrame({"c_soil": [100.0]}, index=[1])
    sds = pd.DataFrame({"c_soil_sd": [10.0]}, index=[1])
    areas = {2020: _areas([("a", 1, 5.0), ("b", 1, 5.0)])}
    out = approach1(areas, means, sds)
    assert _row(out, "a", "stock", 2020)["u_pct"] == pytest.approx(19.6)
    assert _row(out, TOTAL, "stock", 2020)["u_pct"] == pytest.approx(19.6)
    assert _row(out, TOTAL, "stock", 2020)["half_width_tC"] == pytest.approx(196)
    # no change: sink 0, half-width 0, U undefined
    s = _row(out, TOTAL, "sink", 2020)
    assert s["value_tC"] == 0 and s["half_width_tC"] == 0 and np.isnan(s["u_pct"])


def test_approach1_agrees_with_untruncated_monte_carlo(two_zones, means):
    sds = pd.DataFrame({"c_above_sd": [3.0, 5.0], "c_soil_sd": [10.0, 15.0]}, index=[1, 2])
    a1 = approach1(two_zones, means, sds)
    mc = monte_carlo(two_zones, means, sds, draws=20_000, seed=5, truncate_at_zero=False)
    for zone, q, year in (("A", "stock", 2020), (TOTAL, "stock", 2025), ("A", "sink", 2025)):
        h = _row(a1, zone, q, year)["half_width_tC"]
        m = _row(mc.summary, zone, q, year)
        assert (m["p97_5_tC"] - m["p2_5_tC"]) / 2 == pytest.approx(h, rel=0.04)
        assert m["sd_tC"] * Z95 == pytest.approx(h, rel=0.03)


def test_errors(two_zones, means):
    with pytest.raises(CoefficientError, match="1 class code"):
        monte_carlo(two_zones, means.drop(index=2))
    with pytest.raises(CoefficientError, match="negative"):
        approach1(two_zones, means, pd.DataFrame({"c_soil_sd": [-1.0]}, index=[1]))
    with pytest.raises(CoefficientError, match="match no pool"):
        monte_carlo(two_zones, means, pd.DataFrame({"c_litter_sd": [1.0]}, index=[1]))
    with pytest.raises(InputError, match="area_ha"):
        monte_carlo({2020: two_zones[2020].drop(columns="area_ha")}, means)
    with pytest.raises(InputError):
        approach1({}, means)


def test_monte_carlo_shapes_on_a_county_sized_problem():
    """40 classes x 5 pools x 16 zones x 2 years (speed is measured in benchmarks/)."""
    rng = np.random.default_rng(0)
    classes = np.arange(101, 141)
    pools = ["c_above", "c_below", "c_deadwood", "c_litter", "c_soil"]
    means = pd.DataFrame(rng.uniform(0, 100, (40, 5)), index=classes, columns=pools)
    sds = pd.DataFrame(rng.uniform(0, 20, (40, 5)), index=classes,
                       columns=[f"{p}_sd" for p in pools])
    areas = {y: _areas([(f"22058110{z:02d}", int(c), float(rng.uniform(0, 500)))
                        for z in range(16) for c in classes]) for y in (2020, 2025)}
    res = monte_carlo(areas, means, sds, draws=1000, seed=0)
    assert len(res.zones) == 16 and res.sink_draws.shape == (1000, 17)
