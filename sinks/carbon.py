"""Stocks, stock-difference sinks and land-use transitions from land-cover rasters.

Rules (the same as InVEST's Carbon model, see README "InVEST compatibility"):

* per pixel, density = the class's pools from the coefficient table (t C/ha);
* stock = Σ over valid pixels of density x pixel area (ha); land-cover nodata is excluded;
* a code without coefficients is an error listing every missing code;
* sink between two years = stock(later) - stock(earlier): **removal from the atmosphere is
  positive**, emission negative; t CO2e = t C x 44/12. Cells valid in one year only are
  reported as *unknown* area, never silently counted as zero carbon.

Totals are computed from streamed class counts (cells per code) times the per-class density,
which equals the per-pixel sum exactly (up to float rounding, ~1e-12 relative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import xarray as xr

from gis.grid import GridSpec, assert_same_grid
from gis.stream import cross_counts, value_counts
from gis.zonal import M2_PER_MU
from sinks.coefficients import CarbonTable, require_codes
from sinks.units import CO2_PER_C, M2_PER_HA

SIGN_CONVENTION = ("sink = stock(later) - stock(earlier); removal from the atmosphere is "
                   "positive, emission negative; tCO2e = tC x 44/12")


@dataclass(frozen=True)
class Stock:
    """Carbon stock of one land-cover map: totals per pool, from cells per class."""

    label: str
    counts: pd.Series  # cells per class code
    pixel_ha: float
    pools_tC: dict[str, float] = field(default_factory=dict)

    @property
    def total_tC(self) -> float:
        return float(sum(self.pools_tC.values()))

    @property
    def area_ha(self) -> float:
        return float(self.counts.sum() * self.pixel_ha)


def stock(landcover: xr.DataArray, table: CarbonTable, *, label: str = "") -> Stock:
    """Stock per pool (t C) of a land-cover raster; streamed; missing codes are an error."""
    grid = GridSpec.of(landcover)
    pixel_ha = grid.pixel_area_m2 / M2_PER_HA
    counts = pd.Series(value_counts(landcover), dtype="int64").sort_index()
    require_codes(counts.index.to_numpy(), table, source=landcover.attrs.get("source"))
    area_by_class = counts * pixel_ha
    pools = {p: float((area_by_class * table.table.loc[counts.index, p]).sum())
             for p in table.pools}
    return Stock(label, counts, pixel_ha, pools)


def transition_matrix(before: xr.DataArray, after: xr.DataArray, table: CarbonTable | None = None
                      ) -> pd.DataFrame:
    """Land-use transitions: area from -> to (cells, ha, mu), streamed.

    With ``table``, each transition also gets the carbon change it causes:
    ``change_tC = area_ha x (density_to - density_from)`` (t C, removal positive) and t CO2e;
    the changes of all transitions add up to the stock-difference sink over the cells valid in
    both years. Rows with ``from`` or ``to`` missing (``<NA>``) are cells valid in one year only
    (unknown area: no carbon is attributed to them).
    """
    grid = assert_same_grid(before, after)
    pixel_ha = grid.pixel_area_m2 / M2_PER_HA
    counts = cross_counts(before, after)
    df = pd.DataFrame([(f, t, n) for (f, t), n in counts.items()],
                      columns=["from", "to", "cells"])
    df[["from", "to"]] = df[["from", "to"]].astype("Int64")
    df["area_ha"] = df["cells"] * pixel_ha
    df["area_mu"] = df["area_ha"] * M2_PER_HA / M2_PER_MU
    df["changed"] = df["from"] != df["to"]
    if table is not None:
        known = df["from"].notna() & df["to"].notna()
        codes = pd.concat([df.loc[known, "from"], df.loc[known, "to"]]).unique()
        require_codes(codes.astype(int), table, source=after.attrs.get("source"))
        dens = table.total()
        d_from = df["from"].map(lambda c: dens.get(int(c)) if pd.notna(c) else float("nan"))
        d_to = df["to"].map(lambda c: dens.get(int(c)) if pd.notna(c) else float("nan"))
        df["density_from_tC_per_ha"] = d_from.astype(float)
        df["density_to_tC_per_ha"] = d_to.astype(float)
        df["change_tC"] = (df["area_ha"] * (d_to - d_from)).astype(float)
        df["change_tCO2e"] = df["change_tC"] * CO2_PER_C
    return df.sort_values(["from", "to"], na_position="last").reset_index(drop=True)


def unknown_area_ha(matrix: pd.DataFrame) -> dict[str, float]:
    """Area valid in one year only: nodata before (``from`` missing) or after (``to``)."""
    return {"nodata_before_ha": float(matrix.loc[matrix["from"].isna(), "area_ha"].sum()),
            "nodata_after_ha": float(matrix.loc[matrix["to"].isna(), "area_ha"].sum())}


def common_change(matrix: pd.DataFrame, table: CarbonTable) -> dict[str, Any]:
    """Stock change over the cells valid in both years (as InVEST's change raster), per pool.

    Cells valid in one year only are left out here and reported as unknown area
    (:func:`unknown_area_ha`), so a gap in one map is never counted as a carbon loss or gain.
    """
    known = matrix[matrix["from"].notna() & matrix["to"].notna()]
    f, t = known["from"].astype(int), known["to"].astype(int)
    by_pool = {p: float((known["area_ha"] * (t.map(table.table[p]).to_numpy()
                                             - f.map(table.table[p]).to_numpy())).sum())
               for p in table.pools}
    change = float(sum(by_pool.values()))
    return {"change_tC": change, "change_tCO2e": change * CO2_PER_C,
            "change_by_pool_tC": by_pool, "compared_area_ha": float(known["area_ha"].sum()),
            "sign_convention": SIGN_CONVENTION}
