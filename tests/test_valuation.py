"""Carbon prices and InVEST's NPV formula, against hand-computed numbers."""

from __future__ import annotations

import pandas as pd
import pytest

from gis.errors import InputError, SinkmapError
from sinks.valuation import (
    DEFAULT_PRICE,
    ValuationError,
    invest_npv,
    load_prices,
    price_per_tC,
    valuation_constant,
)

CO2 = 44 / 12


def _k(price: float, d: float, a: float, n: int) -> float:
    return valuation_constant(price_per_tC=price, discount_rate_pct=d, rate_change_pct=a,
                              years=n)


def test_shipped_prices():
    p = load_prices()
    assert DEFAULT_PRICE == "cea_2024_avg"
    assert p.loc["cea_2024_avg", "price"] == 95.96
    assert p.loc["cea_2024_avg", "currency"] == "CNY"
    assert p.loc["cea_2024_avg", "per"] == "t_CO2"
    assert p.loc["cea_2024_avg", "year"] == 2024
    assert "ICAP" in p.loc["cea_2024_avg", "source"]
    assert sorted(p["price"]) == [60.0, 67.51, 80.0, 95.96, 105.66]
    assert p["verified"].all()


def test_price_conversion():
    assert price_per_tC("cea_2024_avg") == pytest.approx(95.96 * 44 / 12)  # 351.853
    assert price_per_tC("cea_2024_avg") == pytest.approx(351.8533, abs=1e-4)
    assert price_per_tC(12.0) == pytest.approx(44.0)
    assert price_per_tC(12.0, per="t_CO2") == pytest.approx(44.0)
    assert price_per_tC(12.0, per="t_C") == 12.0
    with pytest.raises(ValuationError, match="cea_2024_avg"):  # the fix lists the names
        price_per_tC("cea_2099")
    with pytest.raises(ValuationError):
        price_per_tC(10.0, per="t_CH4")
    with pytest.raises(ValuationError):
        price_per_tC(-1.0)


def test_valuation_constant_by_hand():
    assert _k(100.0, 0, 0, 1) == pytest.approx(100.0)
    assert _k(100.0, 0, 0, 25) == pytest.approx(100.0)  # r = 1 -> K = price
    assert _k(100.0, 10, 0, 2) == pytest.approx(100 / 2 * (1 + 1 / 1.1))  # 95.4545
    assert _k(100.0, 10, 0, 2) == pytest.approx(95.4545, abs=1e-4)
    r = 1 / (1.05 * 1.02)
    assert _k(90.0, 5, 2, 3) == pytest.approx(90 / 3 * (1 + r + r * r))
    assert _k(90.0, 7, 3, 1) == pytest.approx(90.0)  # n = 1: the first year is not discounted
    # a price falling by 10 %/yr at a 0 % discount: r = 1/0.9
    assert _k(10.0, 0, -10, 2) == pytest.approx(10 / 2 * (1 + 1 / 0.9))


def test_invest_npv_scalar_and_series():
    kw = {"price_per_tC": 100.0, "discount_rate_pct": 10.0, "rate_change_pct": 0.0, "years": 2}
    k = 100 / 2 * (1 + 1 / 1.1)
    assert invest_npv(-50.0, **kw) == pytest.approx(-50 * k)
    change = pd.Series([10.0, 0.0, -2.5], index=pd.Index(["t1", "t2", "t3"], name="zone"))
    out = invest_npv(change, **kw)
    assert isinstance(out, pd.Series) and out.name == "npv"
    assert out.index.equals(change.index)
    assert out.tolist() == pytest.approx([10 * k, 0.0, -2.5 * k])


def test_methods_example():
    """methods.md s6: 9,600 t CO2/yr x CNY 95.96 = CNY 921,216 (one year, no discounting)."""
    npv = invest_npv(9600 * 12 / 44, price_per_tC=price_per_tC("cea_2024_avg"),
                     discount_rate_pct=0, rate_change_pct=0, years=1)
    assert npv == pytest.approx(921_216.0)


@pytest.mark.parametrize("years", [0, -5, 2.5, True])
def test_years_must_be_at_least_one(years):
    with pytest.raises(ValuationError, match="years"):
        _k(100.0, 5, 0, years)


def test_bad_rates():
    with pytest.raises(ValuationError, match="> 0"):
        _k(100.0, -100, 0, 5)
    with pytest.raises(ValueError):  # ValuationError is also a ValueError
        _k(float("nan"), 5, 0, 5)
    assert issubclass(ValuationError, SinkmapError)


def test_bad_price_table(tmp_path):
    bad = tmp_path / "prices.csv"
    bad.write_text("name,price,currency,per,year,source,verified\n"
                   "a,ten,CNY,t_CO2,2024,x,true\n"
                   "b,5,CNY,t_CH4,2024,x,true\n"
                   "b,5,CNY,t_C,2024,,true\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_prices(bad)
    msg = str(err.value)
    for part in ("price is not a number", "per must be", "needs a source", "duplicate"):
        assert part in msg
    with pytest.raises(InputError, match="missing column"):
        (tmp_path / "p2.csv").write_text("name,price\na,1\n", encoding="utf-8")
        load_prices(tmp_path / "p2.csv")
    ok = tmp_path / "p3.csv"
    ok.write_text("name,price,currency,per,year,source,verified\n"
                  "mine,300,CNY,t_C,2025,own survey,false\n", encoding="utf-8")
    table = load_prices(ok)
    assert price_per_tC("mine", prices=table) == 300.0
    assert not table.loc["mine", "verified"]
