"""Soil carbon sinks at IPCC Tier 1: farmland management (conservation tillage) and wetland
restoration on mineral soils.

**Farmland** (IPCC 2006 Vol.4 Ch.2 Eq 2.25, Table 2.3 SOC_REF, Ch.5 Table 5.5 factors)::

    SOC = SOC_REF x F_LU x F_MG x F_I                    t C/ha, 0-30 cm
    dC  = (SOC_after - SOC_before) x area / D            t C/yr, D = 20 yr (linear transition)

**Wetland restoration** on inland wetland mineral soils (2013 IPCC Wetlands Supplement Ch.5):
the same stock equation with the Supplement's Table 5.3 F_LU (long-term cultivated 0.71 ->
rewetted years 1-20 0.80 -> years 21-40 1.0) and the Table 2.3 wetland-soil SOC_REF, against the
CH4 emitted by the rewetted/created wetland (Table 5.4, kg CH4/ha/yr) weighted by a GWP100.

Coefficients live in two shipped CSVs (one row per factor: ``edition, climate, factor, level,
value, sd, low, high, units, source, verified``; every row cites its source and whether the
number was seen in a stored source (``verified = true``, methods.md tag [V]) or is secondary or
recalled ([S], [U]):

``soc_factors_ipcc.csv``
    ``SOC_REF`` (level = soil class ``HAC``, ``LAC``, ``sandy``, ``spodic``, ``volcanic``,
    ``wetland``), ``F_LU`` (``long_term_cultivated``, ``paddy``, ``set_aside``,
    ``perennial_tree_crop``), ``F_MG`` (``full_till``, ``reduced_till``, ``no_till``), ``F_I``
    (``low``, ``medium``, ``high_no_manure``, ``high_manure``); editions ``ipcc2006`` (default)
    and ``ipcc2019`` (2019 Refinement, mostly unverified).
``wetland_factors_ipcc2013.csv``
    edition ``ipcc2013ws``: ``F_LU`` (Table 5.3) and ``EF_CH4`` (Table 5.4, ``boreal`` /
    ``temperate`` / ``tropical``); ``GWP100`` of ``CH4`` per assessment report (editions
    ``ar4``, ``ar5`` (default), ``ar5_ccf``, ``ar6``, ``ar6_sm``).

A user CSV with the same columns overrides shipped rows with the same (edition, climate, factor,
level) and adds new ones (e.g. a measured local SOC_REF). Climates: rows keyed by an IPCC climate
zone (``cool_temperate_moist``) win over rows keyed by the factor's broader regime
(``temperate_boreal_moist``), which win over ``all``.

Sign convention as everywhere in sinkmap: removal from the atmosphere is positive, emission
negative; t CO2 = t C x 44/12. Results carry the factors used and list the unverified ones.
Areas are a number or a ``pandas.Series`` (per township); results then are Series on its index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from gis.errors import CoefficientError, InputError
from gis.resources import packaged
from gis.zonal import M2_PER_HA, M2_PER_MU
from sinks.units import CO2_PER_C

"""t CO2 per t C (molar masses; methods.md s6 [V])."""
DEFAULT_YEARS = 20
"""IPCC default transition period D for mineral-soil stock changes (Vol.4 Ch.2, Eq 2.25)."""
WETLAND_PHASE_YEARS = 20
"""Length of each rewetting phase of Wetlands Supplement Table 5.3 (years 1-20, 21-40)."""

SOC_TABLE = "soc_factors_ipcc.csv"
WETLAND_TABLE = "wetland_factors_ipcc2013.csv"
COLUMNS = ("edition", "climate", "factor", "level", "value", "units", "source", "verified")
OPTIONAL = ("sd", "low", "high")
KEY = ["edition", "climate", "factor", "level"]
SOC_FACTORS = ("SOC_REF", "F_LU", "F_MG", "F_I")
WETLAND_FACTORS = ("F_LU", "EF_CH4", "GWP100")
WETLAND_EDITION = "ipcc2013ws"
ALL = "all"

Number = float | int
Area = float | int | pd.Series

_TILLAGE_ALIASES = {"full": "full_till", "reduced": "reduced_till", "no": "no_till",
                    "notill": "no_till", "zero_till": "no_till"}


# ------------------------------------------------------------------------------------------
# Factor tables
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Factor:
    """One coefficient row: its value and where it comes from."""

    edition: str
    climate: str
    factor: str
    level: str
    value: float
    units: str
    source: str
    verified: bool
    sd: float | None = None
    low: float | None = None
    high: float | None = None

    def cite(self) -> str:
        """``F_MG no_till = 1.15 dimensionless (ipcc2006, temperate_boreal_moist): <source>``."""
        return (f"{self.factor} {self.level} = {self.value:g} {self.units} "
                f"({self.edition}, {self.climate}): {self.source}")


def climate_keys(climate: str) -> tuple[str, ...]:
    """Rows that apply to an IPCC climate zone, most specific first.

    ``cool_temperate_moist`` -> (``cool_temperate_moist``, ``temperate_boreal_moist``, ``all``):
    the 2006 Table 5.5 factors are given for the temperate/boreal moist (or dry) regime.
    """
    keys = [climate]
    if climate.startswith(("cool_temperate", "warm_temperate", "boreal")):
        for regime in ("moist", "dry"):
            if climate.endswith(f"_{regime}"):
                keys.append(f"temperate_boreal_{regime}")
    keys.append(ALL)
    return tuple(dict.fromkeys(keys))


def ch4_zone(climate: str) -> str:
    """The Wetlands Supplement Table 5.4 zone (``boreal``/``temperate``/``tropical``) of a
    climate zone name; other names are returned unchanged (for user rows keyed by them)."""
    for zone in ("boreal", "tropical"):
        if climate.startswith(zone):
            return zone
    return "temperate" if "temperate" in climate else climate


@dataclass(frozen=True, eq=False)
class FactorTable:
    """Coefficient rows (all editions) read from one or more CSVs.

    ``edition`` is the default edition looked up when :meth:`get` is given none.
    """

    rows: pd.DataFrame
    files: tuple[str, ...]
    edition: str | None = None

    @property
    def source(self) -> str:
        return " + ".join(self.files)

    def editions(self) -> list[str]:
        return sorted(set(self.rows["edition"]))

    def _select(self, factor: str, climate: str, edition: str) -> pd.DataFrame:
        r = self.rows
        return r[(r["edition"] == edition) & (r["factor"] == factor)
                 & r["climate"].isin(climate_keys(climate))]

    def levels(self, factor: str, *, climate: str = ALL, edition: str | None = None
               ) -> list[str]:
        """Levels of ``factor`` that resolve for ``climate`` in ``edition``."""
        ed = self._edition(edition)
        return sorted(set(self._select(factor, climate, ed)["level"]))

    def _edition(self, edition: str | None) -> str:
        ed = edition or self.edition
        if ed is None:
            raise ValueError("no edition given and the table has no default edition")
        if ed not in set(self.rows["edition"]):
            raise CoefficientError(
                f"no rows for edition {ed!r}", source=self.source,
                fix=f"use one of: {', '.join(self.editions())}, or add rows for {ed!r} to a "
                "copy of the table and pass its path")
        return ed

    def get(self, factor: str, level: str, *, climate: str = ALL, edition: str | None = None
            ) -> Factor:
        """The row for ``factor``/``level`` that applies to ``climate`` (most specific climate
        first). An unknown level or a factor with no row for the climate is a
        :class:`~gis.errors.CoefficientError` that lists the valid levels."""
        ed = self._edition(edition)
        cand = self._select(factor, climate, ed)
        hit = cand[cand["level"] == level]
        if hit.empty:
            valid = sorted(set(cand["level"]))
            where = f"edition {ed}, climate {climate}"
            same = self.rows[(self.rows["edition"] == ed) & (self.rows["factor"] == factor)]
            elsewhere = sorted(set(same.loc[same["level"] == level, "climate"]))
            if elsewhere:
                problem = f"no {factor} {level} row for {where}"
                fix = (f"{factor} {level} has rows for climate(s) {', '.join(elsewhere)} only; "
                       f"check the climate (it resolves via {', '.join(climate_keys(climate))})")
            elif valid:
                problem = f"unknown {factor} level {level!r} ({where})"
                fix = f"use one of: {', '.join(valid)}"
            else:
                problem = f"no {factor} rows for {where}"
                fix = (f"{factor} rows exist for climate(s) "
                       f"{', '.join(sorted(set(same['climate']))) or 'none'}")
            raise CoefficientError(
                problem, source=self.source,
                fix=f"{fix}, or add a row to a copy of the table and pass its path")
        order = {c: i for i, c in enumerate(climate_keys(climate))}
        row = hit.loc[hit["climate"].map(order).idxmin()]

        def opt(name: str) -> float | None:
            v = row.get(name)
            return None if v is None or pd.isna(v) else float(v)

        return Factor(edition=ed, climate=str(row["climate"]), factor=factor, level=level,
                      value=float(row["value"]), units=str(row["units"]),
                      source=str(row["source"]), verified=bool(row["verified"]),
                      sd=opt("sd"), low=opt("low"), high=opt("high"))


def _read_table(path: Path, factors: tuple[str, ...]) -> pd.DataFrame:
    if not path.exists():
        raise CoefficientError("factor table not found", source=path,
                               fix="give the path of an existing CSV")
    try:
        try:
            df = pd.read_csv(path, encoding="utf-8-sig", dtype={"level": str, "climate": str})
        except UnicodeDecodeError:
            df = pd.read_csv(path, encoding="gb18030", dtype={"level": str, "climate": str})
    except Exception as exc:
        raise CoefficientError(f"cannot read factor table ({exc})", source=path,
                               fix="give a CSV with a header row") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    schema_fix = (f"the table needs the columns {', '.join(COLUMNS)} (optional "
                  f"{', '.join(OPTIONAL)}); one row per edition, climate, factor and level, "
                  f"factor one of {', '.join(factors)}, value >= 0, a source on every row and "
                  "verified true/false")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise CoefficientError(f"missing column(s) {', '.join(missing)}", source=path,
                               fix=schema_fix)
    problems: list[str] = []
    for col in ("edition", "climate", "factor", "level", "units"):
        df[col] = df[col].astype("string").str.strip()
        empty = df.index[df[col].isna() | (df[col] == "")].tolist()
        if empty:
            problems.append(f"empty {col} in row(s) {_rows(empty)}")
    for col in ("value", *[c for c in OPTIONAL if c in df.columns]):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = df.index[vals.isna() & df[col].notna()].tolist()
        if col == "value":
            bad = df.index[vals.isna()].tolist()
        if bad:
            problems.append(f"column {col} is not numeric in row(s) {_rows(bad)}")
        elif (vals < 0).any():
            problems.append(f"column {col} is negative in row(s) "
                            f"{_rows(df.index[vals < 0].tolist())}")
        df[col] = vals
    for col in OPTIONAL:
        if col not in df.columns:
            df[col] = np.nan
    unknown = sorted(set(df["factor"].dropna()) - set(factors))
    if unknown:
        problems.append(f"unknown factor(s) {', '.join(unknown)}")
    src = df["source"].astype("string").str.strip()
    if (src.isna() | (src == "")).any():
        problems.append(f"every row needs a source (row(s) "
                        f"{_rows(df.index[src.isna() | (src == '')].tolist())})")
    flag = df["verified"].astype("string").str.strip().str.lower()
    bad_flag = df.index[~flag.isin(("true", "false", "1", "0", "yes", "no"))].tolist()
    if bad_flag:
        problems.append(f"verified must be true or false (row(s) {_rows(bad_flag)})")
    if not problems and df.duplicated(KEY).any():
        dup = df.loc[df.duplicated(KEY), KEY].astype(str).agg("/".join, axis=1).tolist()
        problems.append(f"duplicate rows for {', '.join(dup)}")
    if problems:
        raise CoefficientError("; ".join(problems), source=path, fix=schema_fix)
    df["verified"] = flag.isin(("true", "1", "yes")).astype(bool)
    df["source"] = src.astype(str)
    for col in ("edition", "climate", "factor", "level", "units"):
        df[col] = df[col].astype(str)
    return df[[*COLUMNS, *OPTIONAL]]


def _rows(index: Iterable[int]) -> str:
    return ", ".join(str(i + 2) for i in index)  # CSV line numbers (header = line 1)


@lru_cache(maxsize=8)
def _shipped(name: str, factors: tuple[str, ...]) -> pd.DataFrame:
    return _read_table(packaged("tables", name), factors)


def _load(name: str, factors: tuple[str, ...], path: str | Path | None,
          edition: str | None) -> FactorTable:
    shipped = packaged("tables", name)
    rows = _shipped(name, factors).copy()
    files = [str(shipped)]
    if path is not None:
        user = _read_table(Path(path), factors)
        rows = pd.concat([rows, user], ignore_index=True).drop_duplicates(KEY, keep="last")
        files.append(str(path))
    table = FactorTable(rows.reset_index(drop=True), tuple(files), edition)
    if edition is not None:
        table._edition(edition)  # unknown edition -> CoefficientError listing the editions
    return table


def load_soc_factors(edition: str = "ipcc2006", path: str | Path | None = None) -> FactorTable:
    """SOC_REF and Table 5.5 stock-change factors (shipped ``soc_factors_ipcc.csv``).

    ``edition``: ``ipcc2006`` (2006 Guidelines; Table 5.5 values verified by the Ch.5 worked
    example) or ``ipcc2019`` (2019 Refinement; mostly unverified). ``path``: a user CSV with the
    same columns whose rows override the shipped ones (same edition/climate/factor/level) or add
    to them. Schema errors name the file and the fix (:class:`~gis.errors.CoefficientError`).
    """
    return _load(SOC_TABLE, SOC_FACTORS, path, edition)


def load_wetland_factors(path: str | Path | None = None) -> FactorTable:
    """Wetlands Supplement Table 5.3 F_LU, Table 5.4 CH4 and GWP100 rows (shipped
    ``wetland_factors_ipcc2013.csv``); ``path`` overrides or adds rows as in
    :func:`load_soc_factors`."""
    return _load(WETLAND_TABLE, WETLAND_FACTORS, path, WETLAND_EDITION)


# ------------------------------------------------------------------------------------------
# Areas
# ------------------------------------------------------------------------------------------

def _check_area(area: Area, name: str = "area") -> Area:
    """A non-negative finite number, or a numeric Series without NaN or negative values."""
    if isinstance(area, pd.Series):
        vals = pd.to_numeric(area, errors="coerce").astype(float)
        bad = vals.index[~np.isfinite(vals.to_numpy()) | (vals.to_numpy() < 0)].tolist()
        if bad:
            shown = ", ".join(f"{k!r}={area[k]!r}" for k in bad[:10])
            raise InputError(f"{name} must be a finite number >= 0; bad value(s) at {shown}"
                             f"{' ...' if len(bad) > 10 else ''}",
                             fix="give 0 for zones without the practice and fix the rows shown")
        return vals
    try:
        value = float(area)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be a number or a pandas Series, got {area!r}",
                         fix="pass the area as a float or a Series per zone") from exc
    if not np.isfinite(value) or value < 0:
        raise InputError(f"{name} must be a finite number >= 0, got {area!r}",
                         fix="give a non-negative area")
    return value


def mu_to_ha(area_mu: Area) -> Area:
    """Mu (亩, 666.67 m²) to hectares."""
    return area_mu * (M2_PER_MU / M2_PER_HA)


def ha_to_mu(area_ha: Area) -> Area:
    """Hectares to mu (亩, 666.67 m²)."""
    return area_ha * (M2_PER_HA / M2_PER_MU)


def _unverified(factors: Iterable[Factor]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.cite() for f in factors if not f.verified))


# ------------------------------------------------------------------------------------------
# Farmland SOC (Eq 2.25)
# ------------------------------------------------------------------------------------------

def soc_stock_tC_per_ha(soc_ref: float, f_lu: float, f_mg: float, f_i: float) -> float:
    """Tier 1 mineral-soil SOC stock, t C/ha (0-30 cm): ``SOC_REF x F_LU x F_MG x F_I``
    (IPCC 2006 Vol.4 Ch.2 Eq 2.25, per unit area)."""
    for name, v in (("soc_ref", soc_ref), ("f_lu", f_lu), ("f_mg", f_mg), ("f_i", f_i)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return soc_ref * f_lu * f_mg * f_i


@dataclass(frozen=True)
class Management:
    """A cropland management system of Table 5.5: land use, tillage and carbon input.

    ``tillage`` accepts ``full``/``reduced``/``no`` for ``full_till``/``reduced_till``/
    ``no_till``. ``input``: ``low``, ``medium``, ``high_no_manure``, ``high_manure``.
    Hashable, so a mapping {Management: area} describes a mix of systems.
    """

    land_use: str = "long_term_cultivated"
    tillage: str = "full_till"
    input: str = "medium"

    def __post_init__(self) -> None:
        object.__setattr__(self, "tillage", _TILLAGE_ALIASES.get(self.tillage, self.tillage))


def management_factors(management: Management, *, soil: str = "HAC",
                       climate: str = "cool_temperate_moist",
                       factors: FactorTable | None = None) -> tuple[Factor, ...]:
    """(SOC_REF, F_LU, F_MG, F_I) rows for a management system on a soil in a climate."""
    t = factors or load_soc_factors()
    return (t.get("SOC_REF", soil, climate=climate),
            t.get("F_LU", management.land_use, climate=climate),
            t.get("F_MG", management.tillage, climate=climate),
            t.get("F_I", management.input, climate=climate))


def management_soc_tC_per_ha(management: Management, *, soil: str = "HAC",
                             climate: str = "cool_temperate_moist",
                             factors: FactorTable | None = None) -> float:
    """Equilibrium SOC (t C/ha, 0-30 cm) of a management system (Eq 2.25)."""
    ref, lu, mg, inp = management_factors(management, soil=soil, climate=climate,
                                          factors=factors)
    return soc_stock_tC_per_ha(ref.value, lu.value, mg.value, inp.value)


@dataclass(frozen=True, eq=False)
class SocChange:
    """Mineral-soil SOC change over the transition period (removal positive)."""

    area_ha: Area
    years: int
    initial_tC: Area
    final_tC: Area
    annual_change_tC_per_yr: Area
    annual_change_tCO2e_per_yr: Area
    factors: tuple[Factor, ...] = field(repr=False, default=())

    @property
    def unverified(self) -> tuple[str, ...]:
        """Citations of the unverified factors used (empty when all are verified)."""
        return _unverified(self.factors)


def soc_change_systems(before: Mapping[Management, float], after: Mapping[Management, float],
                       *, soil: str = "HAC", climate: str = "cool_temperate_moist",
                       years: int = DEFAULT_YEARS, edition: str = "ipcc2006",
                       factors: FactorTable | None = None) -> SocChange:
    """SOC change of an area whose mix of management systems changes (Eq 2.25 aggregated).

    ``before``/``after`` map each system to its area (ha); both must cover the same total
    area (Tier 1 tracks a constant area). ``annual_change = (SOC_after - SOC_before) / years``.
    This is how IPCC 2006 Vol.4 Ch.5 s5.2.3.4 computes its worked example.
    """
    if years <= 0:
        raise ValueError(f"years must be > 0, got {years!r}")
    t = factors or load_soc_factors(edition)
    used: list[Factor] = []

    def stock(systems: Mapping[Management, float], label: str) -> tuple[float, float]:
        total_t = total_a = 0.0
        for m, a in systems.items():
            a = float(_check_area(a, f"{label} area of {m}"))
            fs = management_factors(m, soil=soil, climate=climate, factors=t)
            used.extend(fs)
            total_t += a * soc_stock_tC_per_ha(*(f.value for f in fs))
            total_a += a
        return total_t, total_a

    initial, area0 = stock(before, "before")
    final, area1 = stock(after, "after")
    if not np.isclose(area0, area1, rtol=1e-9, atol=1e-9):
        raise InputError(f"the systems cover {area0:g} ha before and {area1:g} ha after",
                         fix="give the same total area before and after (land leaving or "
                         "entering cropland is a land-use change, not a management change)")
    change = (final - initial) / years
    return SocChange(area0, years, initial, final, change, change * CO2_PER_C,
                     tuple(dict.fromkeys(used)))


def soc_change(area_ha: Area, before: Management, after: Management, *, soil: str = "HAC",
               climate: str = "cool_temperate_moist", years: int = DEFAULT_YEARS,
               edition: str = "ipcc2006", factors: FactorTable | None = None) -> SocChange:
    """SOC change when ``area_ha`` (number or Series per zone) moves from one management
    system to another; spread linearly over ``years`` (D = 20, IPCC 2006 Vol.4 Ch.2).

    Example: 1 ha of cool temperate moist HAC cropland from full tillage to no-till (2006):
    95 x 0.69 x (1.15 - 1.00) / 20 = 0.49 t C/ha/yr = 1.80 t CO2/ha/yr (methods.md s1.6).
    """
    if years <= 0:
        raise ValueError(f"years must be > 0, got {years!r}")
    area = _check_area(area_ha, "area_ha")
    t = factors or load_soc_factors(edition)
    f0 = management_factors(before, soil=soil, climate=climate, factors=t)
    f1 = management_factors(after, soil=soil, climate=climate, factors=t)
    s0 = soc_stock_tC_per_ha(*(f.value for f in f0))
    s1 = soc_stock_tC_per_ha(*(f.value for f in f1))
    change = area * (s1 - s0) / years
    return SocChange(area, years, area * s0, area * s1, change, change * CO2_PER_C,
                     tuple(dict.fromkeys((*f0, *f1))))


# ------------------------------------------------------------------------------------------
# Conservation tillage
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TillageSink:
    """Annual SOC sink of a conservation-tillage area against a baseline tillage.

    Applies for ``years`` (D) after adoption; afterwards the soil is at its new equilibrium.
    """

    area_ha: Area
    practice: str
    baseline: str
    years: int
    tC_per_ha_per_yr: float
    tCO2e_per_ha_per_yr: float
    sink_tC_per_yr: Area
    sink_tCO2e_per_yr: Area
    factors: tuple[Factor, ...] = field(repr=False, default=())

    @property
    def area_mu(self) -> Area:
        return ha_to_mu(self.area_ha)

    @property
    def unverified(self) -> tuple[str, ...]:
        return _unverified(self.factors)

    def to_frame(self) -> pd.DataFrame:
        """One row per zone (or one row): area (ha, mu), sink (t C/yr, t CO2e/yr)."""
        cols = {"area_ha": self.area_ha, "area_mu": self.area_mu,
                "sink_tC_per_yr": self.sink_tC_per_yr,
                "sink_tCO2e_per_yr": self.sink_tCO2e_per_yr}
        if isinstance(self.area_ha, pd.Series):
            return pd.DataFrame(cols, index=self.area_ha.index)
        return pd.DataFrame({k: [v] for k, v in cols.items()})


def tillage_sink(area: Area, *, unit: Literal["mu", "ha"] = "mu",
                 practice: str = "no_till", baseline: str = "full_till",
                 land_use: str = "long_term_cultivated", input: str = "medium",
                 soil: str = "HAC", climate: str = "cool_temperate_moist",
                 years: int = DEFAULT_YEARS, edition: str = "ipcc2006",
                 factors: FactorTable | None = None) -> TillageSink:
    """Annual soil sink (removal positive) of an area under conservation tillage.

    ``area``: a number, or a Series per township (index kept), in ``unit`` (``mu``: 666.67 m²,
    ``gis.zonal.M2_PER_MU``; or ``ha``), e.g. the verified no-till area per township.
    Per hectare: ``SOC_REF x F_LU x F_I x (F_MG[practice] - F_MG[baseline]) / years``; other
    factors as the baseline system. Defaults reproduce methods.md s1.6: 80,000 mu no-till on
    cool temperate moist HAC (2006) = 5,333 ha x 1.80 t CO2/ha/yr ~ 9,600 t CO2/yr.
    """
    if unit not in ("mu", "ha"):
        raise ValueError(f"unit must be 'mu' or 'ha', got {unit!r}")
    a = _check_area(area, f"area ({unit})")
    area_ha = mu_to_ha(a) if unit == "mu" else a
    before = Management(land_use, baseline, input)
    after = Management(land_use, practice, input)
    per_ha = soc_change(1.0, before, after, soil=soil, climate=climate, years=years,
                        edition=edition, factors=factors)
    rate = float(per_ha.annual_change_tC_per_yr)
    return TillageSink(area_ha, after.tillage, before.tillage, years, rate, rate * CO2_PER_C,
                       area_ha * rate, area_ha * rate * CO2_PER_C, per_ha.factors)


# ------------------------------------------------------------------------------------------
# Wetland restoration (2013 Wetlands Supplement Ch.5)
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class WetlandBalance:
    """Annual GHG balance of rewetted/created inland wetland on mineral soil.

    ``net_tCO2e_per_yr = co2_removal_tCO2e_per_yr - ch4_emission_tCO2e_per_yr``; removal
    positive. At Tier 1 defaults in temperate climates the CH4 outweighs the SOC gain and the
    net is negative (a net source); it is never clipped.
    """

    area_ha: Area
    years_since: int | pd.Series | None
    soc_gain_tC_per_yr: Area
    co2_removal_tCO2e_per_yr: Area
    ch4_emission_tCH4_per_yr: Area
    ch4_emission_tCO2e_per_yr: Area
    net_tCO2e_per_yr: Area
    gwp_ch4: float
    factors: tuple[Factor, ...] = field(repr=False, default=())

    @property
    def unverified(self) -> tuple[str, ...]:
        return _unverified(self.factors)

    def to_frame(self) -> pd.DataFrame:
        """One row per zone (or one row) with every balance column."""
        cols = {"area_ha": self.area_ha, "soc_gain_tC_per_yr": self.soc_gain_tC_per_yr,
                "co2_removal_tCO2e_per_yr": self.co2_removal_tCO2e_per_yr,
                "ch4_emission_tCH4_per_yr": self.ch4_emission_tCH4_per_yr,
                "ch4_emission_tCO2e_per_yr": self.ch4_emission_tCO2e_per_yr,
                "net_tCO2e_per_yr": self.net_tCO2e_per_yr}
        if isinstance(self.area_ha, pd.Series):
            return pd.DataFrame(cols, index=self.area_ha.index)
        return pd.DataFrame({k: [v] for k, v in cols.items()})


def _phase_rate(years_since: int | pd.Series | None, soc_ref: float, f0: float, f1: float,
                f2: float, index: pd.Index | None) -> float | pd.Series:
    """SOC gain per ha and year for the rewetting phase (piecewise-linear F_LU trajectory:
    prior -> rewetted_1_20 over years 1-20 -> rewetted_21_40 over years 21-40 -> constant)."""
    r1 = soc_ref * (f1 - f0) / WETLAND_PHASE_YEARS
    r2 = soc_ref * (f2 - f1) / WETLAND_PHASE_YEARS
    if years_since is None:  # mean over the whole 40-year recovery
        return soc_ref * (f2 - f0) / (2 * WETLAND_PHASE_YEARS)
    if isinstance(years_since, pd.Series):
        if index is None or not years_since.index.equals(index):
            raise InputError("years_since is a Series whose index differs from the area's",
                             fix="give years_since per zone on the same index as area_ha, "
                             "or one number")
        y = pd.to_numeric(years_since, errors="coerce").to_numpy(dtype=float)
    else:
        y = np.array([years_since], dtype=float)
    if (~np.isfinite(y) | (y < 0)).any():
        raise InputError(f"years_since must be whole years >= 0, got {years_since!r}",
                         fix="give the completed years since rewetting (0 = first year)")
    rate = np.select([y < WETLAND_PHASE_YEARS, y < 2 * WETLAND_PHASE_YEARS], [r1, r2], 0.0)
    if isinstance(years_since, pd.Series):
        return pd.Series(rate, index=index)
    return float(rate[0])


def wetland_restoration(area_ha: Area, *, years_since: int | pd.Series | None,
                        climate: str = "cool_temperate_moist", soil: str = "wetland",
                        prior_land_use: str = "long_term_cultivated",
                        soc_edition: str = "ipcc2006", gwp: str = "ar5",
                        soc_ref: float | None = None, ch4_kg_per_ha: float | None = None,
                        soc_factors: FactorTable | None = None,
                        wetland_factors: FactorTable | None = None) -> WetlandBalance:
    """Annual balance of restoring (rewetting) cropland to inland wetland on mineral soil.

    SOC (2013 Wetlands Supplement Ch.5 Table 5.3, with Table 2.3 SOC_REF of ``soil`` in
    ``climate`` from ``soc_edition``): F_LU rises from the prior land use (long-term cultivated
    0.71) to 0.80 over years 1-20 and to 1.0 over years 21-40, each step spread linearly over its
    20 years; F_MG = F_I = 1. ``years_since`` = completed years since rewetting (0-19: first
    phase, 20-39: second, >= 40: no further gain), per zone as a Series, or ``None`` for the
    mean over the 40 years. CH4 (Table 5.4, rewetted/created, zone of ``climate``: temperate 235
    kg CH4/ha/yr) is emitted every year, weighted by the GWP100 of ``gwp`` (``ar5`` = 28,
    AR5 WG1 Table 8.7, the Paris-reporting metric; ``ar6`` = 27.0 non-fossil). N2O is not
    counted. ``soc_ref`` / ``ch4_kg_per_ha`` override the table for local measurements.

    Defaults, first phase: 87 x (0.80 - 0.71) / 20 = 0.39 t C/ha/yr = 1.44 t CO2/ha/yr against
    0.235 t CH4 x 28 = 6.58 t CO2e/ha/yr: net -5.14 t CO2e/ha/yr (a source).
    """
    area = _check_area(area_ha, "area_ha")
    sf = soc_factors or load_soc_factors(soc_edition)
    wf = wetland_factors or load_wetland_factors()
    used: list[Factor] = []
    if soc_ref is None:
        ref = sf.get("SOC_REF", soil, climate=climate, edition=soc_edition)
        used.append(ref)
        soc_ref = ref.value
    elif not np.isfinite(soc_ref) or soc_ref < 0:
        raise ValueError(f"soc_ref must be a finite number >= 0, got {soc_ref!r}")
    priors = [lv for lv in wf.levels("F_LU", climate=climate) if not lv.startswith("rewetted")]
    if prior_land_use not in priors:
        raise CoefficientError(
            f"unknown prior land use {prior_land_use!r} for wetland restoration",
            source=wf.source, fix=f"use one of: {', '.join(priors) or 'none'}, or add an F_LU "
            "row to a copy of the wetland table and pass its path")
    f0, f1, f2 = (wf.get("F_LU", lv, climate=climate)
                  for lv in (prior_land_use, "rewetted_1_20", "rewetted_21_40"))
    used += [f0, f1, f2]
    if ch4_kg_per_ha is None:
        ef = wf.get("EF_CH4", "rewetted_created", climate=ch4_zone(climate))
        used.append(ef)
        ch4_kg_per_ha = ef.value
    elif not np.isfinite(ch4_kg_per_ha) or ch4_kg_per_ha < 0:
        raise ValueError(f"ch4_kg_per_ha must be a finite number >= 0, got {ch4_kg_per_ha!r}")
    g = wf.get("GWP100", "CH4", edition=gwp)
    used.append(g)
    index = area.index if isinstance(area, pd.Series) else None
    rate = _phase_rate(years_since, soc_ref, f0.value, f1.value, f2.value, index)
    soc_gain = area * rate
    removal = soc_gain * CO2_PER_C
    ch4_t = area * (ch4_kg_per_ha / 1000.0)
    ch4_co2e = ch4_t * g.value
    return WetlandBalance(area, years_since, soc_gain, removal, ch4_t, ch4_co2e,
                          removal - ch4_co2e, g.value, tuple(dict.fromkeys(used)))
