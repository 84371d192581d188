"""Coefficient tables: carbon density per class and pool, each row with units and a source.

Pools (t C/ha, = Mg C/ha) are the IPCC five, named after InVEST's columns::

    c_above     above-ground biomass        c_litter   litter
    c_below     below-ground biomass        c_soil     soil organic carbon
    c_deadwood  dead wood

InVEST's four-pool tables (``c_above, c_below, c_soil, c_dead``) are accepted as they are:
``c_dead`` is dead wood and litter together. A table is keyed either by canonical ``class``
(``forest``, ``paddy``, ``marsh`` ... see ``canonical_classes.csv``), so it serves every
land-cover scheme through the scheme's crosswalk, or by raster ``code`` (one scheme only).
Each row carries ``units``, ``source`` (paper, table number) and ``verified``; optional
``<pool>_sd`` columns give a standard deviation per coefficient for the uncertainty analysis.

Shipped tables, selected by name: ``jilin`` (= ``default``; NE-China / Jilin values) and
``ipcc2006`` (IPCC 2006 Tier 1, cool temperate moist). A path to a CSV selects the user's own.
Tables are schema-checked on load; a class present in the data without a row is an error that
lists every missing code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gis.errors import CoefficientError
from gis.resources import packaged
from layers.landcover import ClassScheme

POOLS = ("c_above", "c_below", "c_deadwood", "c_litter", "c_soil")
INVEST_POOLS = ("c_above", "c_below", "c_soil", "c_dead")
POOL_NAMES = {
    "c_above": "above-ground biomass", "c_below": "below-ground biomass",
    "c_deadwood": "dead wood", "c_litter": "litter", "c_soil": "soil organic carbon",
    "c_dead": "dead organic matter (dead wood + litter)",
}
UNITS = ("tC_per_ha", "MgC_per_ha")
TABLES = {"default": "carbon_jilin.csv", "jilin": "carbon_jilin.csv",
          "ipcc2006": "carbon_ipcc2006.csv"}
META = ("units", "source", "verified")


@dataclass(frozen=True)
class CarbonTable:
    """Densities per pool (t C/ha) indexed by ``keyed_by`` (``code`` or ``class``)."""

    name: str
    source: str
    table: pd.DataFrame
    pools: tuple[str, ...]
    keyed_by: str = "code"

    def total(self) -> pd.Series:
        return self.table[list(self.pools)].sum(axis=1).rename("c_total")

    def means(self) -> pd.DataFrame:
        return self.table[list(self.pools)]

    def sds(self) -> pd.DataFrame:
        """Standard deviations per pool (0 where the table declares none)."""
        cols = {p: self.table.get(f"{p}_sd", 0.0) for p in self.pools}
        return pd.DataFrame(cols, index=self.table.index).fillna(0.0).astype(float)

    def unverified_codes(self) -> list[int]:
        return [int(c) for c in self.table.index[~self.table["verified"]]]

    def for_scheme(self, scheme: ClassScheme) -> CarbonTable:
        """The table keyed by the scheme's raster codes (class rows go through its crosswalk).

        Codes whose canonical class has no row are left out; :func:`require_codes` lists them.
        """
        if self.keyed_by == "code":
            return self
        if "canonical" not in scheme.table:
            raise CoefficientError(
                f"table {self.name!r} is keyed by canonical class, but class scheme "
                f"{scheme.name!r} has no `canonical` column", source=scheme.source,
                fix="add a `canonical` column mapping each code to a class of "
                "canonical_classes.csv, or give a carbon table keyed by `code`")
        canon = scheme.table["canonical"]
        known = canon[canon.isin(self.table.index)]
        rows = self.table.loc[known.to_numpy()].set_axis(known.index.rename("code"))
        rows = rows.assign(**{"class": known.to_numpy()})
        return replace(self, table=rows, keyed_by="code")


def read_table(name_or_path: str | Path, shipped: dict[str, str], what: str, *,
               dtype: dict[str, Any] | None = None) -> tuple[pd.DataFrame, Path]:
    """Read a shipped table by name or a user CSV by path (UTF-8, else GB18030), with
    lower-cased column names; a missing or unreadable file is a :class:`CoefficientError`."""
    key = str(name_or_path)
    path = packaged("tables", shipped[key]) if key in shipped else Path(key)
    if not path.exists():
        raise CoefficientError(f"{what} not found", source=path,
                               fix=f"give a CSV path or one of: {', '.join(shipped)}")
    try:
        try:
            df = pd.read_csv(path, encoding="utf-8-sig", dtype=dtype)
        except UnicodeDecodeError:
            df = pd.read_csv(path, encoding="gb18030", dtype=dtype)
    except Exception as exc:
        raise CoefficientError(f"cannot read {what} ({exc})", source=path,
                               fix="give a CSV with a header row") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    return df, path


def _check_numbers(df: pd.DataFrame, cols: list[str], problems: list[str]) -> None:
    for col in cols:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = df.index[vals.isna() & ~col.endswith("_sd")].tolist()
        if bad:
            problems.append(f"column {col} is not numeric in row(s) "
                            f"{', '.join(str(i + 2) for i in bad)}")
        elif (vals < 0).any():
            rows = ", ".join(str(i + 2) for i in df.index[vals < 0])
            problems.append(f"column {col} has negative values (row(s) {rows})")
        df[col] = vals


def load_carbon_table(name_or_path: str | Path) -> CarbonTable:
    """Load a shipped table by name or a user CSV by path (schema-checked)."""
    key = str(name_or_path)
    df, path = read_table(name_or_path, TABLES, "carbon table")
    problems: list[str] = []
    keyed_by = "class" if "class" in df.columns else "code"
    pools = POOLS if all(p in df.columns for p in POOLS) else INVEST_POOLS
    missing = [c for c in (keyed_by, *pools, *META) if c not in df.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    else:
        if keyed_by == "code":
            _check_numbers(df, ["code"], problems)
        sd_cols = [f"{p}_sd" for p in pools if f"{p}_sd" in df.columns]
        _check_numbers(df, [*pools, *sd_cols], problems)
        bad_units = sorted(set(df["units"].astype(str)) - set(UNITS))
        if bad_units:
            problems.append(f"units {bad_units} not supported (use {' or '.join(UNITS)}; "
                            "convert kg C/m2 x 10 -> t C/ha)")
        if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
            problems.append("every row needs a source (paper, table number)")
        if not problems and df[keyed_by].duplicated().any():
            dup = sorted(set(df.loc[df[keyed_by].duplicated(), keyed_by]))
            problems.append(f"duplicate {keyed_by}s {dup}")
    if problems:
        raise CoefficientError(
            "; ".join(problems), source=path,
            fix=f"the table needs `class` (or `code`), the pools {', '.join(POOLS)} (or InVEST's "
            f"{', '.join(INVEST_POOLS)}), optional <pool>_sd, and {', '.join(META)}; one row per "
            "class, densities >= 0 in t C/ha")
    if keyed_by == "code":
        df["code"] = df["code"].astype(int)
    df["verified"] = df["verified"].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))
    return CarbonTable(key if key in TABLES else path.stem, str(path), df.set_index(keyed_by),
                       tuple(pools), keyed_by)


def load_invest_pools(path: str | Path) -> CarbonTable:
    """Read an InVEST Carbon pools table unchanged.

    Columns are matched case-insensitively: ``lucode`` (or ``LULC``), ``c_above``, ``c_below``,
    ``c_soil``, ``c_dead`` (or their ``_mean``/``_sd`` forms of InVEST's uncertainty tables);
    other columns are ignored. Units are Mg C/ha by InVEST's definition.
    """
    df, p = read_table(path, {}, "pools table")
    df = df.rename(columns={"lulc": "lucode"} if "lucode" not in df.columns else {})
    df = df.rename(columns={f"{q}_mean": q for q in INVEST_POOLS if f"{q}_mean" in df.columns})
    missing = [c for c in ("lucode", *INVEST_POOLS) if c not in df.columns]
    if missing:
        raise CoefficientError(f"missing column(s) {', '.join(missing)}", source=p,
                               fix="an InVEST pools table has lucode, c_above, c_below, c_soil, "
                               "c_dead (Mg C/ha)")
    problems: list[str] = []
    sd_cols = [f"{q}_sd" for q in INVEST_POOLS if f"{q}_sd" in df.columns]
    _check_numbers(df, ["lucode", *INVEST_POOLS, *sd_cols], problems)
    if not problems and df["lucode"].duplicated().any():
        dup = sorted(set(df.loc[df["lucode"].duplicated(), "lucode"]))
        problems.append(f"duplicate lucodes {dup}")
    if problems:
        raise CoefficientError("; ".join(problems), source=p,
                               fix="one row per lucode, densities >= 0 in Mg C/ha")
    df = df.assign(code=df["lucode"].astype(int), units="MgC_per_ha",
                   source=f"InVEST pools table {p.name}", verified=True)
    keep = ["code", *INVEST_POOLS, *sd_cols, *META]
    return CarbonTable(p.stem, str(p), df[keep].set_index("code"), INVEST_POOLS, "code")


def require_codes(codes: np.ndarray, table: CarbonTable, *, source: object = None) -> None:
    """Error listing every class code in ``codes`` that has no row in ``table``."""
    missing = sorted(set(int(c) for c in codes) - set(table.table.index.tolist()))
    if missing:
        raise CoefficientError(
            f"{len(missing)} class code(s) have no carbon coefficients in {table.name!r}: "
            f"{', '.join(map(str, missing))}",
            source=source or table.source,
            fix=f"add rows for them to a copy of {table.source} and point the project (or "
            "--pools) at it")
