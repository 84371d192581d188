"""Tier 2 forest carbon from inventory sub-compartments (小班), by the volume method (蓄积量法).

Per sub-compartment, from its stock volume ``V`` (m³/ha) and the coefficients of its species
group (``forest_volume_biomass.csv``, methods.md §2.1)::

    C_above    = V x WD x BEF x CF          t C/ha   (WD t d.m./m³, BEF AGB/stem, CF t C/t d.m.)
    C_below    = C_above x R                 t C/ha   (R root:shoot)
    C_deadwood = C_above x deadwood_frac     t C/ha   (CDM AR-Tool-12, methods.md §1.3)
    C_litter   = C_above x litter_frac       t C/ha

These are the biomass pools (and dead organic matter as fractions of them) at Tier 2; soil stays
Tier 1. The densities are then burnt onto the land-cover grid (:func:`burn_tier2`, pixel-centre
rule, lazily block by block), merged with the Tier 1 rasters (:func:`combine_tiers`: Tier 2
where a forest pixel is covered by a sub-compartment, Tier 1 elsewhere) and the share of forest
resting on each tier is counted (:func:`tier_shares`).

The coefficient table has one row per species group with its ``aliases`` (``;``-separated
other names: 柞树 -> 蒙古栎, ``Quercus mongolica`` ...). Names are matched after Unicode
normalisation, case folding and whitespace collapsing; a name not found as given is tried once
more without a leading 人工/天然 (plantation/natural) and a trailing 林 (forest), so 人工红松林
finds 红松. A species in the inventory that matches no row is an error listing every one.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import rasterio.windows
import shapely
import xarray as xr
from rasterio.windows import Window

from gis.crs import assert_same_crs, require_projected
from gis.errors import CoefficientError, InputError
from gis.grid import DEFAULT_CHUNK, GridSpec, assert_same_grid, like
from gis.stream import as_dask, iter_blocks
from gis.zonal import M2_PER_MU
from sinks.coefficients import read_table
from sinks.units import M2_PER_HA

log = logging.getLogger(__name__)

TABLES = {"default": "forest_volume_biomass.csv", "china": "forest_volume_biomass.csv"}
TIER2_POOLS = ("c_above", "c_below", "c_deadwood", "c_litter")
COEFFICIENTS = ("wd_t_per_m3", "bef", "r", "cf", "deadwood_frac", "litter_frac")
REQUIRED = ("species_group", *COEFFICIENTS, "source", "verified")
# Plausible ranges: catch unit slips (WD in kg/m3, CF in %, R as 1+R) rather than bound science.
RANGES = {
    "wd_t_per_m3": (0.1, 1.5, "basic wood density in t/m3 (kg/m3 / 1000)"),
    "bef": (1.0, 5.0, "above-ground biomass / stem biomass (>= 1)"),
    "r": (0.0, 2.0, "root:shoot ratio R (not 1+R)"),
    "cf": (0.3, 0.6, "carbon fraction of dry matter (0.4846, not 48.46 %)"),
    "deadwood_frac": (0.0, 1.0, "dead wood carbon as a fraction of above-ground"),
    "litter_frac": (0.0, 1.0, "litter carbon as a fraction of above-ground"),
}
VOLUME_WARN_M3_PER_HA = 800.0  # above this a per-ha volume is more likely a per-polygon total
_MAX_LISTED = 20


def normalize_name(name: object) -> str:
    """Matching key of a species name: NFKC, stripped, case-folded, inner whitespace single."""
    text = unicodedata.normalize("NFKC", str(name)).strip().casefold()
    return re.sub(r"\s+", " ", text)


def _fallback_key(key: str) -> str:
    """``key`` without a leading 人工/天然 and a trailing 林 (人工红松林 -> 红松)."""
    for prefix in ("人工", "天然"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key[:-1] if key.endswith("林") and len(key) > 1 else key


@dataclass(frozen=True)
class ForestTable:
    """Volume-to-carbon coefficients per species group, indexed by ``species_group``.

    ``table`` columns: ``species_en``, ``wd_t_per_m3``, ``bef``, ``r``, ``cf``,
    ``deadwood_frac``, ``litter_frac``, optional ``<coefficient>_sd``, ``aliases``, ``source``,
    ``verified`` (bool). ``lookup`` maps each normalised name (group, English name, aliases) to
    its group.
    """

    name: str
    source: str
    table: pd.DataFrame
    lookup: dict[str, str] = field(repr=False)

    def resolve(self, name: object) -> str | None:
        """The species group ``name`` belongs to, or ``None`` if no row or alias matches."""
        if name is None or (isinstance(name, float) and np.isnan(name)):
            return None
        key = normalize_name(name)
        if not key:
            return None
        hit = self.lookup.get(key)
        return hit if hit is not None else self.lookup.get(_fallback_key(key))

    def require(self, names: Iterable[object], *, source: object = None) -> dict[object, str]:
        """Map every distinct name to its group; :class:`CoefficientError` listing all misses."""
        counts = pd.Series(list(names), dtype=object).value_counts(dropna=False)
        found: dict[object, str] = {}
        missing: list[str] = []
        for name, n in counts.items():
            group = self.resolve(name)
            if group is None:
                label = "<empty>" if pd.isna(name) or not str(name).strip() else str(name)
                missing.append(f"{label} ({n} sub-compartment{'s' if n != 1 else ''})")
            else:
                found[name] = group
        if missing:
            raise CoefficientError(
                f"{len(missing)} species have no row or alias in forest table {self.name!r}: "
                + ", ".join(missing),
                source=source or self.source,
                fix=f"add rows (or add the names to `aliases` of an existing row) in a copy of "
                f"{self.source} and give its path, or correct the species names in the inventory")
        return found

    def bcef(self) -> pd.Series:
        """Biomass conversion and expansion factor WD x BEF (t AGB d.m. per m³ of stem)."""
        return (self.table["wd_t_per_m3"] * self.table["bef"]).rename("bcef")

    def sds(self) -> pd.DataFrame:
        """Standard deviation of each coefficient (0 where the table gives none)."""
        cols = {c: self.table.get(f"{c}_sd", 0.0) for c in COEFFICIENTS}
        return pd.DataFrame(cols, index=self.table.index).fillna(0.0).astype(float)

    def unverified_groups(self) -> list[str]:
        return [str(g) for g in self.table.index[~self.table["verified"]]]


def _rows(mask: pd.Series) -> str:
    return ", ".join(str(i + 2) for i in mask.index[mask])  # +2: header line, 1-based


def load_forest_table(name_or_path: str | Path = "default") -> ForestTable:
    """Load the shipped volume-to-biomass table (``default``) or a user CSV by path.

    A user CSV replaces the shipped table entirely. Its schema is checked: the columns of
    :data:`REQUIRED`, numeric coefficients within plausible ranges (catching kg/m³ or % slips),
    a ``source`` on every row, unique groups, and no alias claimed by two groups.
    """
    key = str(name_or_path)
    df, path = read_table(name_or_path, TABLES, "forest table", dtype={"aliases": str})
    problems: list[str] = []
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    else:
        for col in COEFFICIENTS:
            vals = pd.to_numeric(df[col], errors="coerce")
            lo, hi, what = RANGES[col]
            if vals.isna().any():
                problems.append(f"{col} is not numeric in row(s) {_rows(vals.isna())}")
            elif ((vals < lo) | (vals > hi)).any():
                problems.append(f"{col} outside [{lo}, {hi}] in row(s) "
                                f"{_rows((vals < lo) | (vals > hi))}: expected {what}")
            df[col] = vals
        for col in [c for c in df.columns if c.endswith("_sd")]:
            vals = pd.to_numeric(df[col], errors="coerce")
            bad = (vals < 0) | (vals.isna() & df[col].notna())
            if bad.any():
                problems.append(f"{col} must be a number >= 0 (row(s) {_rows(bad)})")
            df[col] = vals
        groups = df["species_group"].astype(str).str.strip()
        if (df["species_group"].isna() | (groups == "")).any():
            problems.append(f"species_group is empty in row(s) "
                            f"{_rows(df['species_group'].isna() | (groups == ''))}")
        if groups.duplicated().any():
            dup = sorted(set(groups[groups.duplicated()]))
            problems.append(f"duplicate species_group(s) {dup}")
        df["species_group"] = groups
        src = df["source"].astype(str).str.strip()
        if (df["source"].isna() | (src == "")).any():
            problems.append("every row needs a source (paper / guideline, table number)")
    lookup: dict[str, str] = {}
    if not problems:
        clashes: list[str] = []
        for _, row in df.iterrows():
            group = row["species_group"]
            names = [group]
            if "species_en" in df.columns and pd.notna(row["species_en"]):
                names.append(str(row["species_en"]))
            if "aliases" in df.columns and pd.notna(row["aliases"]):
                names += [a for a in str(row["aliases"]).split(";") if a.strip()]
            for n in names:
                k = normalize_name(n)
                if lookup.get(k, group) != group:
                    clashes.append(f"{n!r} ({lookup[k]} and {group})")
                lookup.setdefault(k, group)
        if clashes:
            problems.append(f"name(s) claimed by two species groups: {', '.join(clashes)}")
    if problems:
        raise CoefficientError(
            "; ".join(problems), source=path,
            fix="one row per species group with species_group, wd_t_per_m3 (t/m3), bef, r, cf, "
            "deadwood_frac, litter_frac (fractions of above-ground carbon), optional "
            "<coefficient>_sd, species_en, aliases (';'-separated), source and verified")
    df["verified"] = df["verified"].astype(str).str.strip().str.lower().isin(("true", "1", "yes"))
    name = key if key in TABLES else path.stem
    return ForestTable(name, str(path), df.set_index("species_group"), lookup)


def _row_labels(inventory: pd.DataFrame, mask: np.ndarray, id_field: str | None) -> str:
    ids = (inventory.loc[mask, id_field] if id_field and id_field in inventory.columns
           else inventory.index[mask])
    labels = [str(i) for i in ids]
    more = f" ... and {len(labels) - _MAX_LISTED} more" if len(labels) > _MAX_LISTED else ""
    return ", ".join(labels[:_MAX_LISTED]) + more


def inventory_carbon(inventory: gpd.GeoDataFrame, table: ForestTable, *,
                     species_field: str = "species_group",
                     volume_field: str = "volume_m3_per_ha",
                     id_field: str | None = "xiaoban_id") -> gpd.GeoDataFrame:
    """Tier 2 carbon densities (t C/ha) per sub-compartment from its stock volume.

    Returns a copy of ``inventory`` with ``forest_group`` (the table row used), ``c_above``,
    ``c_below``, ``c_deadwood``, ``c_litter`` (float64, t C/ha), ``tier`` (2) and
    ``coef_verified``. A missing field, a species without a row (all listed), or a volume that
    is missing, non-numeric, infinite or negative (rows named by ``id_field``, else the index)
    is an error; a volume of 0 (clear-cut) gives 0.
    """
    src = inventory.attrs.get("source", "forest inventory")
    absent = [f for f in (species_field, volume_field) if f not in inventory.columns]
    if absent:
        raise InputError(f"field(s) {', '.join(absent)} not found (fields: "
                         f"{', '.join(map(str, inventory.columns))})", source=src,
                         fix="name the species and volume (m3/ha) fields with species_field= "
                         "and volume_field=")
    vol = pd.to_numeric(inventory[volume_field], errors="coerce").to_numpy(dtype="float64")
    bad = ~np.isfinite(vol) | (vol < 0)
    if bad.any():
        raise InputError(
            f"{int(bad.sum())} sub-compartment(s) have a missing, non-numeric, infinite or "
            f"negative {volume_field}: {_row_labels(inventory, bad, id_field)}",
            source=src, fix=f"give each sub-compartment its stock volume in m3/ha (0 for "
            f"clear-cut land) in {volume_field}")
    if (vol > VOLUME_WARN_M3_PER_HA).any():
        big = vol > VOLUME_WARN_M3_PER_HA
        warnings.warn(
            f"{src}: {int(big.sum())} sub-compartment(s) have {volume_field} > "
            f"{VOLUME_WARN_M3_PER_HA:g} m3/ha ({_row_labels(inventory, big, id_field)}); "
            "is it the sub-compartment's total volume rather than m3 per ha?",
            UserWarning, stacklevel=2)
    groups_of = table.require(inventory[species_field].tolist(), source=src)
    group = inventory[species_field].map(groups_of).to_numpy(dtype=object)
    coef = table.table.loc[group]
    c_above = vol * coef["wd_t_per_m3"].to_numpy() * coef["bef"].to_numpy() \
        * coef["cf"].to_numpy()
    out = inventory.copy()
    out["forest_group"] = group
    out["c_above"] = c_above
    out["c_below"] = c_above * coef["r"].to_numpy()
    out["c_deadwood"] = c_above * coef["deadwood_frac"].to_numpy()
    out["c_litter"] = c_above * coef["litter_frac"].to_numpy()
    out["tier"] = np.full(len(out), 2, dtype="uint8")
    out["coef_verified"] = coef["verified"].to_numpy(dtype=bool)
    out.attrs.update(source=src, forest_table=table.source)
    return out


def _template_chunks(template: xr.DataArray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if isinstance(template.data, dsa.Array):
        return template.data.chunks
    return dsa.core.normalize_chunks(DEFAULT_CHUNK, template.shape)


def burn_index(inventory_c: gpd.GeoDataFrame, template: xr.DataArray) -> xr.DataArray:
    """Which sub-compartment covers each cell: row position + 1 (0 = none), lazily.

    Pixel-centre rule; each dask block rasterises only the polygons that meet it, on its own
    window transform, so no full-size array is ever made. Rasterised once and shared by every
    pool (:func:`burn_tier2` looks the pool values up in it). Where sub-compartments overlap,
    the later row wins. The inventory must be in the raster's CRS
    (:class:`~gis.errors.CRSMismatchError` otherwise).
    """
    src = inventory_c.attrs.get("source", "forest inventory")
    assert_same_crs(template.rio.crs, inventory_c.crs,
                    names=(f"raster {template.name or 'template'}", str(src)))
    grid = GridSpec.of(template)
    geoms = inventory_c.geometry.to_numpy()
    rows = np.arange(1, len(geoms) + 1, dtype="int32")
    keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    geoms, rows = geoms[keep], rows[keep]
    tree = shapely.STRtree(geoms)

    def _block(block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        win = Window(c0, r0, c1 - c0, r1 - r0)
        out = np.zeros((r1 - r0, c1 - c0), dtype="int32")
        hits = np.sort(tree.query(shapely.box(*rasterio.windows.bounds(win, grid.transform)),
                                  predicate="intersects"))
        if hits.size:
            rasterio.features.rasterize(
                zip(geoms[hits], rows[hits], strict=True), out=out,
                transform=grid.window_transform(win), all_touched=False)
        return out

    token = dask.base.tokenize(grid, shapely.to_wkb(geoms).tolist(), rows)
    data = dsa.map_blocks(_block, dtype="int32", chunks=_template_chunks(template),
                          name=f"burn-inventory-{token}")
    return like(template, data, nodata=0, units="row", kind="categorical",
                name="inventory_row")


def burn_tier2(inventory_c: gpd.GeoDataFrame, template: xr.DataArray, pool: str,
               *, index: xr.DataArray | None = None) -> xr.DataArray:
    """One Tier 2 pool density (t C/ha, float32) on ``template``'s grid, lazily; NaN where no
    sub-compartment covers a cell. Pass ``index`` (:func:`burn_index`) to share one
    rasterisation between pools."""
    src = inventory_c.attrs.get("source", "forest inventory")
    if pool not in TIER2_POOLS:
        why = " (soil carbon stays Tier 1)" if pool == "c_soil" else ""
        raise ValueError(f"pool must be one of {', '.join(TIER2_POOLS)}, got {pool!r}{why}")
    if pool not in inventory_c.columns:
        raise InputError(f"has no {pool} column", source=src,
                         fix="compute the densities first with sinks.forest.inventory_carbon")
    idx = burn_index(inventory_c, template) if index is None else index
    lut = np.concatenate([[np.nan], inventory_c[pool].to_numpy(dtype="float64")])
    lut = np.where(np.isfinite(lut), lut, np.nan).astype("float32")
    data = idx.data.map_blocks(lambda b: lut[b], dtype="float32")
    out = like(template, data, nodata=np.nan, units="tC_per_ha", kind="continuous",
               name=f"tier2_{pool}_tC_per_ha")
    out.attrs.update(pool=pool, tier=2, source=str(src),
                     coefficients=inventory_c.attrs.get("forest_table", ""))
    return out


def _valid(a: np.ndarray, nodata: float | int | None) -> np.ndarray:
    ok = ~np.isnan(a) if a.dtype.kind == "f" else np.ones(a.shape, dtype=bool)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        ok &= a != nodata
    return ok


def combine_tiers(tier1: xr.DataArray, tier2: xr.DataArray, forest_mask: xr.DataArray
                  ) -> tuple[xr.DataArray, xr.DataArray]:
    """Per pixel: the Tier 2 value where forest and covered by a sub-compartment, else Tier 1.

    ``forest_mask`` is true (non-zero, not nodata) on forest pixels. Returns the combined
    density (float32, NaN nodata, Tier 1's units and attrs) and a uint8 ``tier`` raster: 2 =
    forest from the inventory, 1 = forest from the Tier 1 table, 0 = non-forest or nodata (the
    raster's nodata). Non-forest pixels keep their Tier 1 value even under a sub-compartment.
    All three rasters must share a grid. Both results are lazy.
    """
    assert_same_grid(tier1, tier2, names=("Tier 1 density", "Tier 2 density"))
    assert_same_grid(tier1, forest_mask, names=("Tier 1 density", "forest mask"))
    n1, n2, nm = tier1.rio.nodata, tier2.rio.nodata, forest_mask.rio.nodata
    a1 = as_dask(tier1)
    a2, am = as_dask(tier2).rechunk(a1.chunks), as_dask(forest_mask).rechunk(a1.chunks)

    def _masks(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, ...]:
        forest = _valid(m, nm) & (np.nan_to_num(m) != 0)
        return _valid(a, n1), forest & _valid(b, n2), forest

    def _value(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> np.ndarray:
        v1, use2, _ = _masks(a, b, m)
        return np.where(use2, b, np.where(v1, a, np.nan)).astype("float32")

    def _tier(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> np.ndarray:
        v1, use2, forest = _masks(a, b, m)
        return np.where(use2, 2, np.where(forest & v1, 1, 0)).astype("uint8")

    value = like(tier1, dsa.map_blocks(_value, a1, a2, am, dtype="float32"), nodata=np.nan,
                 units=tier1.attrs.get("units", "tC_per_ha"), kind="continuous",
                 name=tier1.name)
    value.attrs.update({k: v for k, v in tier1.attrs.items() if k not in ("units", "kind")})
    value.attrs.update(tiers="1+2", tier2_source=tier2.attrs.get("source", ""))
    tier = like(tier1, dsa.map_blocks(_tier, a1, a2, am, dtype="uint8"), nodata=0,
                units="tier", kind="categorical", name="carbon_tier")
    return value, tier


def _block_pairs(a: xr.DataArray, b: xr.DataArray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Matching blocks of two rasters on one grid, computed together (shared inputs once)."""
    da_ = as_dask(a)
    db_ = as_dask(b).rechunk(da_.chunks)
    for bi, bj in np.ndindex(*da_.numblocks):
        x, y = dask.compute(da_.blocks[bi, bj], db_.blocks[bi, bj])
        yield np.asarray(x), np.asarray(y)


def tier_shares(tier: xr.DataArray, *, density: xr.DataArray | None = None) -> pd.DataFrame:
    """Forest area by tier, streamed block by block; optionally the carbon stock by tier.

    Returns one row per tier (index ``tier``: 1, 2) with ``cells``, ``area_ha``, ``area_mu``
    and ``share_pct`` (of the forest area, tiers 1 + 2). With ``density`` (t C/ha, e.g. the
    combined raster of :func:`combine_tiers`), also ``stock_tC`` and ``stock_share_pct``
    (NaN densities count as 0). The grid must be projected in metres.
    """
    grid = GridSpec.of(tier)
    cell_m2 = grid.pixel_area_m2  # a CRSError unless projected in metres
    cells = np.zeros(3, dtype=np.int64)
    stock = np.zeros(3, dtype=np.float64)
    if density is None:
        for _, block in iter_blocks(tier):
            cells += np.bincount(_tier_codes(block), minlength=3)[:3]
    else:
        assert_same_grid(tier, density, names=("tier raster", "density"))
        for t, d in _block_pairs(tier, density):
            codes = _tier_codes(t)
            cells += np.bincount(codes, minlength=3)[:3]
            d = np.where(_valid(d, density.rio.nodata), d, 0.0).astype("float64").ravel()
            stock += np.bincount(codes, weights=d, minlength=3)[:3] * (cell_m2 / M2_PER_HA)
    forest = cells[1:].sum()
    out = pd.DataFrame({"cells": cells[1:]}, index=pd.Index([1, 2], name="tier"))
    out["area_ha"] = out["cells"] * cell_m2 / M2_PER_HA
    out["area_mu"] = out["cells"] * cell_m2 / M2_PER_MU
    out["share_pct"] = 100.0 * out["cells"] / forest if forest else np.nan
    if density is not None:
        total = stock[1:].sum()
        out["stock_tC"] = stock[1:]
        out["stock_share_pct"] = 100.0 * stock[1:] / total if total > 0 else np.nan
    if not forest:
        log.warning("tier raster %s has no forest pixels", tier.name)
    return out


def _tier_codes(block: np.ndarray) -> np.ndarray:
    b = np.asarray(block).ravel()
    return np.where((b == 1) | (b == 2), b, 0).astype(np.intp)


def inventory_summary(inventory_c: gpd.GeoDataFrame, *, by: str = "forest_group"
                      ) -> pd.DataFrame:
    """Area-weighted mean densities (t C/ha) and stocks (t C) per ``by`` and in total.

    Areas are the polygons' areas in the (metric) CRS. Columns: ``n``, ``area_ha``, the mean
    of each Tier 2 pool, ``c_vegetation`` (above + below) and ``stock_tC`` (all four pools).
    """
    require_projected(inventory_c.crs, source=inventory_c.attrs.get("source"),
                      purpose="sub-compartment area")
    ha = inventory_c.geometry.area.to_numpy() / M2_PER_HA
    df = pd.DataFrame({by: inventory_c[by].to_numpy(), "area_ha": ha})
    for p in TIER2_POOLS:
        df[p] = inventory_c[p].to_numpy() * ha
    df["c_vegetation"] = df["c_above"] + df["c_below"]
    df["stock_tC"] = df[list(TIER2_POOLS)].sum(axis=1)
    dens = [*TIER2_POOLS, "c_vegetation"]
    g = df.groupby(by).agg(n=("area_ha", "size"), area_ha=("area_ha", "sum"),
                           **{c: (c, "sum") for c in [*dens, "stock_tC"]})
    total = df.drop(columns=by).sum().to_frame("total").T.assign(n=len(df))
    out = pd.concat([g, total])
    for c in dens:
        out[c] = out[c] / out["area_ha"]
    return out[["n", "area_ha", *dens, "stock_tC"]]
