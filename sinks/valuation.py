"""Carbon prices and InVEST's net present value of a change in carbon stock.

Prices come from the shipped table ``carbon_prices.csv`` (columns ``name, price, currency, per,
year, source, verified``; ``per`` is ``t_CO2`` or ``t_C``). The default is the China national
ETS (CEA) 2024 average, CNY 95.96/t CO2; the others are the sensitivity prices of the project's
methods notes (CEA 2025 low and 2024 high, CCER range). Forest and soil sinks are not
CEA-eligible: values computed with these prices are a shadow value, not a market value.

InVEST's valuation (Carbon model user guide; ``natcap.invest.carbon``) takes the price per t of
**elemental carbon**: 1 t CO2 = 12/44 t C, so a price per t CO2 is multiplied by 44/12.

``NPV = change x K``, ``K = (price / n) x sum_{k=0}^{n-1} r^k``,
``r = 1 / ((1 + d/100) (1 + a/100))``, with ``n`` the years between the two scenarios, ``d`` the
annual discount rate in % and ``a`` the annual rate of change of the price in %. ``r = 1``
gives ``K = price``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import overload

import numpy as np
import pandas as pd

from gis.errors import InputError, SinkmapError
from gis.resources import packaged
from sinks.units import CO2_PER_C

PRICE_TABLE = "carbon_prices.csv"
DEFAULT_PRICE = "cea_2024_avg"
PRICE_UNITS = ("t_CO2", "t_C")
PRICE_COLUMNS = ("name", "price", "currency", "per", "year", "source", "verified")


class ValuationError(SinkmapError, ValueError):
    """A valuation parameter is invalid (unknown price name, years < 1, bad rate)."""


def load_prices(path: str | Path | None = None) -> pd.DataFrame:
    """The carbon-price table, indexed by ``name``, schema-checked.

    Parameters
    ----------
    path
        A CSV with the columns ``name, price, currency, per, year, source, verified``; default
        the shipped ``carbon_prices.csv``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``name``; ``price`` float, ``per`` one of ``t_CO2`` / ``t_C``, ``year`` int,
        ``verified`` bool.

    Raises
    ------
    InputError
        The file is missing or unreadable, lacks columns, or has bad rows (every problem listed).
    """
    src = packaged("tables", PRICE_TABLE) if path is None else Path(path)
    if not src.exists():
        raise InputError("carbon-price table not found", source=src,
                         fix="give the path of a CSV with columns " + ", ".join(PRICE_COLUMNS))
    try:
        df = pd.read_csv(src, dtype={"name": str, "currency": str, "per": str, "source": str})
    except Exception as exc:
        raise InputError(f"cannot read carbon-price table ({exc})", source=src,
                         fix="give a UTF-8 CSV with a header row") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    problems: list[str] = []
    missing = [c for c in PRICE_COLUMNS if c not in df.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    else:
        df["name"] = df["name"].astype(str).str.strip()
        price = pd.to_numeric(df["price"], errors="coerce")
        bad = df.index[~np.isfinite(price) | (price < 0)].tolist()
        if bad:
            problems.append("price is not a number >= 0 in row(s) "
                            + ", ".join(str(i + 2) for i in bad))
        per = df["per"].astype(str).str.strip()
        bad = df.index[~per.isin(PRICE_UNITS)].tolist()
        if bad:
            problems.append(f"per must be {' or '.join(PRICE_UNITS)} in row(s) "
                            + ", ".join(str(i + 2) for i in bad))
        year = pd.to_numeric(df["year"], errors="coerce")
        bad = df.index[year.isna() | (year % 1 != 0)].tolist()
        if bad:
            problems.append("year is not a whole number in row(s) "
                            + ", ".join(str(i + 2) for i in bad))
        if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
            problems.append("every row needs a source")
        dup = sorted(set(df.loc[df["name"].duplicated(), "name"]))
        if dup:
            problems.append(f"duplicate name(s) {', '.join(dup)}")
        if not problems:
            df["price"] = price.astype(float)
            df["per"] = per
            df["year"] = year.astype(int)
            df["currency"] = df["currency"].astype(str).str.strip()
            df["verified"] = (df["verified"].astype(str).str.strip().str.lower()
                              .isin(("true", "1", "yes")))
    if problems:
        raise InputError("; ".join(problems), source=src,
                         fix="one row per price: " + ", ".join(PRICE_COLUMNS)
                         + f"; per = {' or '.join(PRICE_UNITS)}")
    out = df.set_index("name")
    out.attrs["source"] = str(src)
    return out


def price_per_tC(name_or_value: str | float, per: str = "t_CO2", *,
                 prices: pd.DataFrame | None = None) -> float:
    """A carbon price per t C (elemental carbon), as InVEST takes it.

    Parameters
    ----------
    name_or_value
        A row name of the price table (e.g. ``"cea_2024_avg"``), whose own ``per`` is used, or a
        number, whose unit is ``per``.
    per
        ``"t_CO2"`` (the number is per t CO2: multiplied by 44/12) or ``"t_C"`` (returned as is).
        Ignored for a name.
    prices
        The table to look names up in; default :func:`load_prices`.

    Raises
    ------
    ValuationError
        Unknown name, unknown unit, or a non-finite or negative price.
    """
    if isinstance(name_or_value, str):
        table = load_prices() if prices is None else prices
        if name_or_value not in table.index:
            raise ValuationError(f"no carbon price called {name_or_value!r}",
                                 source=table.attrs.get("source"),
                                 fix=f"use one of: {', '.join(map(str, table.index))}, "
                                 "or give a number")
        row = table.loc[name_or_value]
        value, per = float(row["price"]), str(row["per"])
    else:
        value = float(name_or_value)
    if per not in PRICE_UNITS:
        raise ValuationError(f"price unit {per!r} not supported",
                             fix=f"use {' or '.join(PRICE_UNITS)}")
    if not math.isfinite(value) or value < 0:
        raise ValuationError(f"carbon price must be a number >= 0, got {value}")
    return value * CO2_PER_C if per == "t_CO2" else value


def valuation_constant(*, price_per_tC: float, discount_rate_pct: float,
                       rate_change_pct: float, years: int) -> float:
    """InVEST's ``K = (price / n) x sum_{k=0}^{n-1} r^k``, ``r = 1/((1 + d/100)(1 + a/100))``.

    Evaluated in InVEST's closed form ``(price / n) (1 - r^n) / (1 - r)``, and ``price`` when
    ``r = 1``.

    Raises
    ------
    ValuationError
        ``years`` is not a whole number >= 1, or ``(1 + d/100)(1 + a/100) <= 0``, or an input is
        not finite.
    """
    if isinstance(years, bool) or not float(years).is_integer() or years < 1:
        raise ValuationError(
            f"years between the scenarios must be a whole number >= 1, got {years}",
            fix="the later land-cover year must come after the earlier one")
    n = int(years)
    for label, v in (("price_per_tC", price_per_tC), ("discount_rate_pct", discount_rate_pct),
                     ("rate_change_pct", rate_change_pct)):
        if not math.isfinite(v):
            raise ValuationError(f"{label} must be finite, got {v}")
    denom = (1 + discount_rate_pct / 100) * (1 + rate_change_pct / 100)
    if denom <= 0:
        raise ValuationError(
            f"(1 + d/100)(1 + a/100) must be > 0, got {denom} "
            f"(d = {discount_rate_pct} %, a = {rate_change_pct} %)",
            fix="rates are in percent, each > -100")
    ratio = 1 / denom
    k = price_per_tC / n
    return k * n if ratio == 1 else k * (1 - ratio**n) / (1 - ratio)


@overload
def invest_npv(change_tC: float, *, price_per_tC: float, discount_rate_pct: float,
               rate_change_pct: float, years: int) -> float: ...


@overload
def invest_npv(change_tC: pd.Series, *, price_per_tC: float, discount_rate_pct: float,
               rate_change_pct: float, years: int) -> pd.Series: ...


def invest_npv(change_tC: float | pd.Series, *, price_per_tC: float, discount_rate_pct: float,
               rate_change_pct: float, years: int) -> float | pd.Series:
    """Net present value of a change in carbon stock, exactly as InVEST's Carbon model.

    Parameters
    ----------
    change_tC
        Stock change (later minus earlier scenario) in t C: a number, or a Series (e.g. one
        value per zone; the index is kept and the result is named ``npv``).
    price_per_tC
        Price per t of elemental carbon (see :func:`price_per_tC`).
    discount_rate_pct, rate_change_pct
        Annual market discount rate ``d`` and annual change of the price ``a``, in %.
    years
        ``n``, years between the two scenarios, >= 1.

    Returns
    -------
    float or pandas.Series
        ``change x K`` in the price's currency (a negative change gives a negative value).
    """
    k = valuation_constant(price_per_tC=price_per_tC, discount_rate_pct=discount_rate_pct,
                           rate_change_pct=rate_change_pct, years=years)
    if isinstance(change_tC, pd.Series):
        return (pd.to_numeric(change_tC) * k).rename("npv")
    return float(change_tC) * k
