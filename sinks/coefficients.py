"""Coefficient tables: carbon density per class and pool, each row with units and a source.

A table is a CSV with columns ``code``, the pools ``c_above``, ``c_below``, ``c_soil``,
``c_dead`` (InVEST's names), ``units`` (``tC_per_ha`` or ``MgC_per_ha``, the same thing),
``source`` (paper and table number) and ``verified`` (true/false). Shipped tables are selected by
name; a user table is given by path and replaces the shipped one. Tables are schema-checked on
load, and a class present in the data without a row is an error that lists the missing codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gis.errors import CoefficientError
from gis.resources import packaged

POOLS = ("c_above", "c_below", "c_soil", "c_dead")
UNITS = ("tC_per_ha", "MgC_per_ha")
TABLES = {"default": "carbon_density_gbt21010.csv", "gbt21010": "carbon_density_gbt21010.csv"}
REQUIRED = ("code", *POOLS, "units", "source", "verified")


@dataclass(frozen=True)
class CarbonTable:
    name: str
    source: str
    table: pd.DataFrame  # indexed by integer code; pools in t C/ha

    def total(self) -> pd.Series:
        return self.table[list(POOLS)].sum(axis=1).rename("c_total")

    def unverified_codes(self) -> list[int]:
        return [int(c) for c in self.table.index[~self.table["verified"]]]


def load_carbon_table(name_or_path: str | Path) -> CarbonTable:
    key = str(name_or_path)
    path = packaged("tables", TABLES[key]) if key in TABLES else Path(key)
    if not path.exists():
        raise CoefficientError("carbon table not found", source=path,
                               fix=f"give a CSV path or one of: {', '.join(TABLES)}")
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise CoefficientError(f"cannot read carbon table ({exc})", source=path,
                               fix="give a UTF-8 CSV with a header row") from exc
    df.columns = [c.strip().lower() for c in df.columns]
    problems = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    else:
        for col in ("code", *POOLS):
            vals = pd.to_numeric(df[col], errors="coerce")
            bad = df.index[vals.isna()].tolist()
            if bad:
                problems.append(f"column {col} is not numeric in row(s) "
                                f"{', '.join(str(i + 2) for i in bad)}")
            elif col != "code" and (vals < 0).any():
                problems.append(f"column {col} has negative densities")
        bad_units = sorted(set(df["units"].astype(str)) - set(UNITS))
        if bad_units:
            problems.append(f"units {bad_units} not supported (use {' or '.join(UNITS)})")
        if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
            problems.append("every row needs a source (paper, table number)")
        if not problems and df["code"].duplicated().any():
            dup = sorted(set(df.loc[df["code"].duplicated(), "code"]))
            problems.append(f"duplicate codes {dup}")
    if problems:
        raise CoefficientError("; ".join(problems), source=path,
                               fix=f"the table needs columns {', '.join(REQUIRED)}, one row per "
                               "class code, densities >= 0 in t C/ha")
    df["code"] = df["code"].astype(int)
    df["verified"] = df["verified"].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))
    for col in POOLS:
        df[col] = df[col].astype(float)
    return CarbonTable(key if key in TABLES else path.stem, str(path), df.set_index("code"))


def require_codes(codes: np.ndarray, table: CarbonTable, *, source: object = None) -> None:
    """Error listing every class code in ``codes`` that has no row in ``table``."""
    missing = sorted(set(int(c) for c in codes) - set(table.table.index.tolist()))
    if missing:
        raise CoefficientError(
            f"{len(missing)} class code(s) have no carbon coefficients in {table.name!r}: "
            f"{', '.join(map(str, missing))}",
            source=source or table.source,
            fix=f"add rows for them to a copy of {table.source} and set `carbon.table` to it")
