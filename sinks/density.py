"""Carbon density rasters from a land-cover raster and a per-class table (Tier 1), with
Tier 2 forest from the inventory where it covers forest pixels.

Per pixel: density (t C/ha) = the class's pool value(s) from the coefficient table; lazy,
block-wise rasters on the land cover's grid. Stocks are density x pixel area, summed per zone
(``gis.zonal.zonal_stats``).
"""

from __future__ import annotations

import dask.array as dsa
import geopandas as gpd
import numpy as np
import xarray as xr

from gis.grid import like
from gis.stream import map_lut
from sinks.coefficients import CarbonTable


def carbon_density(landcover: xr.DataArray, table: CarbonTable, *, pool: str = "total"
                   ) -> xr.DataArray:
    """Carbon density in t C/ha (float32, NaN = nodata) of one pool or of all four (``total``).

    Call :func:`sinks.coefficients.require_codes` first: codes without a row become nodata here.
    """
    if table.keyed_by != "code":
        raise ValueError("resolve a class-keyed table to raster codes first: table.for_scheme()")
    if pool == "total":
        values = table.total().to_numpy()
    elif pool in table.pools:
        values = table.table[pool].to_numpy()
    else:
        raise ValueError(f"pool must be 'total' or one of {table.pools}, got {pool!r}")
    data = map_lut(landcover, table.table.index.to_numpy(), values, nodata_out=np.nan)
    out = like(landcover, data, nodata=np.nan, units="tC_per_ha", kind="continuous",
               name=f"carbon_density_{pool}_tC_per_ha")
    out.attrs.update(coefficients=table.source, pool=pool)
    return out


FOREST_CLASSES = ("forest", "forest_broadleaf", "forest_conifer", "forest_mixed")


def pool_densities(landcover: xr.DataArray, table: CarbonTable, *,
                   inventory_c: gpd.GeoDataFrame | None = None,
                   forest_codes: np.ndarray | None = None
                   ) -> tuple[dict[str, xr.DataArray], xr.DataArray, xr.DataArray | None]:
    """Density per pool, their total, and the forest tier raster (or ``None``), all lazy.

    Tier 1 everywhere from ``table``; with ``inventory_c`` (``sinks.forest.inventory_carbon``)
    the biomass and dead-organic-matter pools of forest pixels (``forest_codes``) covered by a
    sub-compartment are Tier 2; soil stays Tier 1.
    """
    from sinks.forest import TIER2_POOLS, burn_index, burn_tier2, combine_tiers

    pools = {p: carbon_density(landcover, table, pool=p) for p in table.pools}
    tier = None
    if inventory_c is not None and forest_codes is not None and len(forest_codes):
        mask = landcover.isin(forest_codes)
        index = burn_index(inventory_c, landcover)  # one rasterisation shared by all pools
        for p in TIER2_POOLS:
            if p in pools:
                pools[p], tier = combine_tiers(
                    pools[p], burn_tier2(inventory_c, landcover, p, index=index), mask)
                pools[p].name = f"carbon_density_{p}_tC_per_ha"
                pools[p].attrs.update(units="tC_per_ha", kind="continuous")
    # the total in one blockwise pass (not the sum of the pool graphs: ~2x faster)
    codes = table.table.index.to_numpy()
    t1_total = map_lut(landcover, codes, table.total().to_numpy(), nodata_out=np.nan)
    if tier is None:
        data = t1_total
    else:
        t2_pools = [p for p in TIER2_POOLS if p in table.pools]
        rest = [p for p in table.pools if p not in t2_pools]
        t1_rest = map_lut(landcover, codes, table.table[rest].sum(axis=1).to_numpy(),
                          nodata_out=np.nan)
        t2 = np.concatenate([[np.nan], inventory_c[t2_pools].sum(axis=1).to_numpy("float64")])
        lut2 = t2.astype("float32")
        data = dsa.map_blocks(lambda a, r, i, t: np.where(t == 2, lut2[i] + r, a),
                              t1_total, t1_rest, index.data, tier.data, dtype="float32")
    total = like(landcover, data, nodata=np.nan, units="tC_per_ha", kind="continuous",
                 name="carbon_density_total_tC_per_ha")
    total.attrs.update(coefficients=table.source, pool="total",
                       tiers="1 and 2 (forest inventory)" if tier is not None else "1")
    return pools, total, tier
