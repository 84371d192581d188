"""Uncertainty of carbon stocks and sinks per zone from the coefficients' standard deviations.

Two methods, both on class-area tables (``zone, class, area_ha``; see
:func:`gis.zonal.class_area_table`) and a coefficient table given as two frames:

``means``
    Carbon density in t C/ha, indexed by integer class code, one column per pool.
``sds``
    Standard deviation of each density in t C/ha, same index; columns named like the pools or
    ``<pool>_sd``. A missing column, a missing row, NaN or 0 means "no uncertainty".

:func:`monte_carlo`
    Draws every (class, pool) density once per draw from a normal distribution (truncated at 0
    by default) and uses **the same draw for every year and every zone**: a class's density is a
    property of the land, not of the year, so a zone whose class areas did not change has a sink
    of exactly 0 in every draw, and zone totals add up to the county total draw by draw.
:func:`approach1`
    IPCC 2006 Vol. 1 Ch. 3 Approach 1 (error propagation, Eq. 3.1 and 3.2).

Areas are taken as exact by the Monte Carlo (map accuracy is not sampled). Pools are independent
of each other, and classes of each other. Sign convention as everywhere in sinkmap: sink = stock
(last year) - stock (first year), removal positive; t CO2e = t C x 44/12.

Both return a long summary table with one row per (zone, quantity, year) and a row per quantity
for the whole area, whose ``zone`` is :data:`TOTAL`. Columns ``zone``, ``quantity`` (``"stock"``
or ``"sink"``), ``year`` (the stock's year; for the sink the last year), ``base_year`` (the
stock's year; for the sink the first year), then the method's figures in t C and t CO2e.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from gis.errors import CoefficientError, InputError
from sinks.units import CO2_PER_C

Z95 = 1.96  # IPCC 2006 Vol. 1 Ch. 3: 95 % half-width = 1.96 sd (exact quantile 1.95996)
TOTAL = "total"  # zone label of the rows for the whole area
PERCENTILES = (2.5, 97.5)
_AREA_COLUMNS = ("zone", "class", "area_ha")


@dataclass(frozen=True)
class McResult:
    """Result of :func:`monte_carlo`.

    Attributes
    ----------
    summary
        Long table (see the module docstring) with columns ``mean_tC``, ``sd_tC``, ``p2_5_tC``,
        ``p97_5_tC``, ``central_tC`` (the figure at the mean coefficients, i.e. the
        deterministic result) and the same five in ``_tCO2e``.
    zones
        Zone ids in the order of the sample arrays' columns; the last column is :data:`TOTAL`.
    years
        Years, ascending; the sink is ``years[-1]`` minus ``years[0]``.
    stock_draws
        Stock in t C per year, each an array (draws, zones + 1).
    sink_draws
        Sink in t C, array (draws, zones + 1).
    seed, draws, truncate_at_zero
        The parameters of the run: the same ones give identical numbers.
    seconds
        Wall time of the sampling and summary.
    """

    summary: pd.DataFrame
    zones: list[object]
    years: list[int]
    stock_draws: dict[int, np.ndarray] = field(repr=False)
    sink_draws: np.ndarray = field(repr=False)
    seed: int
    draws: int
    truncate_at_zero: bool
    seconds: float


def monte_carlo(areas: Mapping[int, pd.DataFrame], means: pd.DataFrame,
                sds: pd.DataFrame | None = None, *, draws: int = 1000, seed: int = 0,
                truncate_at_zero: bool = True) -> McResult:
    """Monte Carlo interval of the stock per zone and year and of the sink (last - first year).

    Parameters
    ----------
    areas
        ``{year: class-area table}``, each with columns ``zone``, ``class`` and ``area_ha``
        (other columns are ignored). A (zone, class) pair absent from a year has area 0 there.
    means, sds
        Densities and their standard deviations in t C/ha (see the module docstring);
        ``sds=None`` means no uncertainty at all.
    draws
        Number of draws (>= 1).
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed, inputs and ``draws`` give
        identical numbers.
    truncate_at_zero
        Sample each density from the normal truncated to [0, inf) (default; densities cannot be
        negative). The truncated mean exceeds the table's mean where sd is not small against it,
        so ``mean_tC`` may then lie above ``central_tC``. With ``False`` the plain normal is used.

    Method
    ------
    Per draw, one density per (class, pool) is sampled and the pools are summed to a density
    per class, giving a (draws x classes) matrix ``D``. With ``A[y]`` the (classes x zones) area
    matrix of year ``y``, the stocks are ``D @ A[y]`` and the sink is ``D @ (A[last] - A[first])``
    -- the same draw for all years and zones. Only classes present in ``areas`` are sampled, in
    ascending code order, so extra rows in the table do not change the numbers.

    Raises
    ------
    InputError
        ``areas`` is empty, or a table lacks a column or has negative or non-finite areas.
    CoefficientError
        A class in ``areas`` has no row in ``means``, a density is missing or negative, or an sd
        is negative.
    """
    t0 = time.perf_counter()
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    years, zones, classes, mats = _area_matrices(areas)
    mean, sd = _coefficients(means, sds, classes)

    rng = np.random.default_rng(seed)
    n_cls, n_pool = mean.shape
    if truncate_at_zero:
        # Inverse CDF of the standard normal truncated below at a = -mean/sd: with u in (0, 1],
        # -Z = ndtri(u * Phi(-a)). Accurate in both tails because Phi(-a) >= 0.5 for mean >= 0.
        u = 1.0 - rng.random((draws, n_cls, n_pool))  # (0, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            upper = np.where(sd > 0, ndtr(np.where(sd > 0, mean / sd, 0.0)), 1.0)
        # keep p inside (0, 1) so that no draw is infinite (u = 1 with Phi(-a) rounded to 1)
        z = -ndtri(np.clip(u * upper, 1e-300, 1.0 - 2.0**-53))
    else:
        z = rng.standard_normal((draws, n_cls, n_pool))
    density = (mean + z * sd).sum(axis=2)  # (draws, classes), t C/ha

    stock_draws: dict[int, np.ndarray] = {}
    for y in years:
        s = density @ mats[y]
        stock_draws[y] = np.column_stack([s, s.sum(axis=1)])
    delta = mats[years[-1]] - mats[years[0]]
    k = density @ delta
    sink_draws = np.column_stack([k, k.sum(axis=1)])

    central = mean.sum(axis=1)
    labels = [*zones, TOTAL]
    parts = []
    for y in years:
        c = central @ mats[y]
        parts.append(_mc_rows(labels, "stock", y, y, stock_draws[y],
                              np.append(c, c.sum())))
    c = central @ delta
    parts.append(_mc_rows(labels, "sink", years[-1], years[0], sink_draws,
                          np.append(c, c.sum())))
    summary = _finish(pd.concat(parts, ignore_index=True))
    summary.attrs.update(method="monte_carlo", draws=draws, seed=seed,
                         truncate_at_zero=truncate_at_zero)
    return McResult(summary=summary, zones=list(zones), years=years, stock_draws=stock_draws,
                    sink_draws=sink_draws, seed=seed, draws=draws,
                    truncate_at_zero=truncate_at_zero, seconds=time.perf_counter() - t0)


def approach1(areas: Mapping[int, pd.DataFrame], means: pd.DataFrame,
              sds: pd.DataFrame | None = None, *, area_u_pct: float = 0.0) -> pd.DataFrame:
    """IPCC Approach 1 (error propagation) uncertainty of stocks and of the sink.

    Uncertainties are 95 % half-widths, as a percentage of the estimate: ``U = 1.96 sd / mean``.

    * Density of a class, sum of its pools (Eq. 3.2): half-width ``h_D = 1.96 sqrt(sum sd_p^2)``,
      ``U_D = h_D / D``.
    * Stock of a class in a zone, ``x = A D`` (Eq. 3.1): ``U_x = sqrt(U_A^2 + U_D^2)``, with
      ``U_A = area_u_pct`` (default 0: mapped areas taken as exact, as in :func:`monte_carlo`).
    * Stock of a zone, ``sum x_c`` over classes (Eq. 3.2):
      ``U = sqrt(sum (U_c x_c)^2) / |sum x_c|``.
    * Total over all zones: the same class has the same density in every zone, so its errors are
      fully correlated between zones and Eq. 3.2 must not be applied across zones. The total is
      computed as one zone whose class areas are the sums over the zones.
    * Sink (last - first year). Both stocks use the same densities, so they are not independent
      and Eq. 3.2 over the two stocks would overstate the uncertainty. The sink is written as a
      sum over classes of ``x_c = (A_last,c - A_first,c) D_c``; each term gets Eq. 3.1 (with
      ``area_u_pct`` read as the uncertainty of the area change) and the terms are combined with
      Eq. 3.2. A class whose area did not change contributes nothing: its density cancels.

    Computations use half-widths (``h = U |x| / 100``), which equal the percentage equations
    wherever those are defined and stay finite where an estimate is 0.

    Returns
    -------
    pandas.DataFrame
        Long table (see the module docstring) with columns ``value_tC``, ``half_width_tC``,
        ``u_pct`` (NaN where the value is 0), ``lo_tC`` and ``hi_tC`` (value -/+ half-width),
        and ``value_tCO2e``, ``half_width_tCO2e``, ``lo_tCO2e``, ``hi_tCO2e``.

    Raises
    ------
    As :func:`monte_carlo`; ``ValueError`` if ``area_u_pct`` is negative.
    """
    if not area_u_pct >= 0:
        raise ValueError(f"area_u_pct must be >= 0, got {area_u_pct}")
    years, zones, classes, mats = _area_matrices(areas)
    mean, sd = _coefficients(means, sds, classes)
    dens = mean.sum(axis=1)  # (classes,)
    h_dens = Z95 * np.sqrt((sd**2).sum(axis=1))  # half-width of the density, t C/ha
    ua = area_u_pct / 100.0
    labels = [*zones, TOTAL]

    def propagate(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value and half-width per zone (+ total) of sum_c a[c, z] * dens[c]."""
        a = np.column_stack([a, a.sum(axis=1)])  # total = one zone with summed areas
        x = a * dens[:, None]
        # Eq. 3.1 in half-widths: h_x^2 = (U_A A D)^2 + (A h_D)^2
        hx2 = (ua * x) ** 2 + (a * h_dens[:, None]) ** 2
        return x.sum(axis=0), np.sqrt(hx2.sum(axis=0))  # Eq. 3.2

    parts = []
    for y in years:
        v, h = propagate(mats[y])
        parts.append(_a1_rows(labels, "stock", y, y, v, h))
    v, h = propagate(mats[years[-1]] - mats[years[0]])
    parts.append(_a1_rows(labels, "sink", years[-1], years[0], v, h))
    out = _finish(pd.concat(parts, ignore_index=True))
    out.attrs.update(method="ipcc_approach1", area_u_pct=area_u_pct)
    return out


# ---------------------------------------------------------------------------------- helpers


def _area_matrices(areas: Mapping[int, pd.DataFrame]
                   ) -> tuple[list[int], list[object], list[int], dict[int, np.ndarray]]:
    """Years, zones, classes (sorted) and one (classes x zones) area matrix in ha per year."""
    if not areas:
        raise InputError("no class-area tables given",
                         fix="pass {year: class_area_table(...)} for at least one year")
    years = sorted(int(y) for y in areas)
    tables: dict[int, pd.DataFrame] = {}
    for y_key, df in areas.items():
        y = int(y_key)
        missing = [c for c in _AREA_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(f"class-area table of {y} lacks column(s) {', '.join(missing)}",
                             fix="use the output of gis.zonal.class_area_table")
        a = pd.to_numeric(df["area_ha"], errors="coerce")
        if not np.isfinite(a).all() or (a < 0).any():
            raise InputError(f"class-area table of {y} has missing, non-finite or negative "
                             "areas", fix="areas must be finite numbers >= 0 in ha")
        tables[y] = df[list(_AREA_COLUMNS)].assign(area_ha=a.astype(float))
    zones = sorted(set().union(*(set(t["zone"]) for t in tables.values())), key=_sort_key)
    if TOTAL in zones:
        raise InputError(f"a zone is called {TOTAL!r}, the label sinkmap gives the whole area",
                         fix="rename that zone")
    classes = sorted(set().union(*(set(t["class"].astype(int)) for t in tables.values())))
    mats = {}
    for y, t in tables.items():
        p = t.assign(**{"class": t["class"].astype(int)}).pivot_table(
            index="class", columns="zone", values="area_ha", aggfunc="sum", fill_value=0.0)
        mats[y] = p.reindex(index=classes, columns=zones, fill_value=0.0).to_numpy(float)
    return years, zones, classes, mats


def _sort_key(z: object) -> tuple[str, object]:
    """Sort zone ids of mixed types (numbers first, then by string)."""
    return ("0", z) if isinstance(z, int | float | np.number) else ("1", str(z))


def _coefficients(means: pd.DataFrame, sds: pd.DataFrame | None, classes: list[int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(classes x pools) arrays of mean densities and sds for the given classes, checked."""
    index = pd.Index([int(c) for c in means.index])
    m = means.set_axis(index, axis=0)
    missing = sorted(set(classes) - set(index))
    if missing:
        raise CoefficientError(
            f"{len(missing)} class code(s) have no carbon coefficients: "
            f"{', '.join(map(str, missing))}", fix="add rows for them to the carbon table")
    if index.duplicated().any():
        raise CoefficientError(f"duplicate class codes {sorted(set(index[index.duplicated()]))}",
                               fix="one row per class code")
    pools = list(m.columns)
    mean = m.loc[classes, pools].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(mean).all():
        bad = sorted({classes[i] for i in np.nonzero(~np.isfinite(mean))[0]})
        raise CoefficientError(f"missing or non-numeric densities for class(es) {bad}",
                               fix="give every pool of every class a density in t C/ha")
    if (mean < 0).any():
        raise CoefficientError("negative densities", fix="densities must be >= 0 t C/ha")

    sd = np.zeros_like(mean)
    if sds is not None and sds.shape[1] > 0:
        s = sds.set_axis(pd.Index([int(c) for c in sds.index]), axis=0)
        if s.index.duplicated().any():
            raise CoefficientError("duplicate class codes in the sd table",
                                   fix="one row per class code")
        known = {p: p for p in pools} | {f"{p}_sd": p for p in pools}
        extra = [c for c in s.columns if c not in known]
        if extra:
            raise CoefficientError(
                f"sd column(s) {', '.join(map(str, extra))} match no pool of {pools}",
                fix="name sd columns like the pools, or <pool>_sd")
        for col in s.columns:
            j = pools.index(known[col])
            vals = pd.to_numeric(s[col].reindex(classes), errors="coerce").to_numpy(float)
            sd[:, j] = np.nan_to_num(vals, nan=0.0, posinf=np.inf)
        if not np.isfinite(sd).all() or (sd < 0).any():
            raise CoefficientError("negative or infinite standard deviations",
                                   fix="sds must be >= 0 t C/ha (empty = no uncertainty)")
    return mean, sd


def _mc_rows(labels: list[object], quantity: str, year: int, base_year: int,
             samples: np.ndarray, central: np.ndarray) -> pd.DataFrame:
    lo, hi = np.percentile(samples, PERCENTILES, axis=0)
    return pd.DataFrame({
        "zone": labels, "quantity": quantity, "year": year, "base_year": base_year,
        "mean_tC": samples.mean(axis=0),
        "sd_tC": samples.std(axis=0, ddof=1) if samples.shape[0] > 1 else 0.0,
        "p2_5_tC": lo, "p97_5_tC": hi, "central_tC": central,
    })


def _a1_rows(labels: list[object], quantity: str, year: int, base_year: int,
             value: np.ndarray, half: np.ndarray) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(value != 0, 100.0 * half / np.abs(value), np.nan)
    return pd.DataFrame({
        "zone": labels, "quantity": quantity, "year": year, "base_year": base_year,
        "value_tC": value, "half_width_tC": half, "u_pct": u,
        "lo_tC": value - half, "hi_tC": value + half,
    })


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Add the t CO2e twin of every ``*_tC`` column (except percentages)."""
    for col in [c for c in df.columns if c.endswith("_tC")]:
        df[col[:-3] + "_tCO2e"] = df[col] * CO2_PER_C
    df["year"] = df["year"].astype(int)
    df["base_year"] = df["base_year"].astype(int)
    return df
