"""Ecological-protection pattern (生态保护格局): cores, corridors, pinch points, barriers, zones.

One pure function, :func:`ecological_pattern`, chains the building blocks of this package on a
land-cover raster (sources -> resistance -> corridors -> nodes, methods notes section 5):

1. **Habitat** (:func:`layers.landscape.habitat_mask`): the habitat classes are foreground,
   other valid land cover background, nodata and cells outside the region missing.
2. **MSPA** (:func:`layers.mspa.mspa`) of the habitat mask.
3. **Candidate cores**: connected MSPA core patches (bytes 17 and 117, the foreground
   connectivity of the MSPA run) of at least ``min_core_ha``; numbered 1, 2, ... by
   decreasing area. None at all, or fewer than ``n_cores``, is an error that says how many there
   are and how large the largest is.
4. **Importance** (:func:`layers.connectivity.core_importance`): dPC and dIIC of every candidate
   from edge-to-edge Euclidean distances, with the distance threshold and the dispersal
   probability at it (Conefor convention: p = 0.5 at 2,000 m by default); A_L is the region's
   valid area. The ``n_cores`` cores of highest dPC that lie at least ``min_core_gap_m`` apart
   (edge to edge; greedily, in dPC order) are *selected* (the plan's "five cores"): MSPA often
   splits one forest into core patches a few cells apart, and five cores in one forest would
   make corridors of a few metres. ``rank`` numbers the selected cores 1..N, then the other
   candidates, both in dPC order (``dPC_rank``: the plain order by dPC).
5. **Resistance** (:func:`layers.resistance.resistance_surface`): NaN outside the region and on
   land-cover nodata. NaN is a barrier everywhere downstream; a resistance <= 0 cannot come from
   the shipped tables (a user table with one is refused when it is loaded).
6. **Links** between every pair of selected cores (:func:`layers.costpath.link_cores`, the
   r.cost rule). Pairs that cannot reach each other are reported (``reachable`` False, empty
   cost, listed in the summary), never given an infinite cost. As Linkage Mapper does, a link
   whose least-cost path runs through a third selected core is not a corridor of its own
   (``direct`` False). The ``n_corridors`` direct links ranked by ``rank_links_by`` (cost by
   default) are the selected corridors; their polygons are the cells whose normalized
   least-cost corridor value (CWD_A + CWD_B - LCD) is <= ``corridor_cwd`` cost-weighted metres.
7. **Current** (:func:`layers.circuit.pairwise`): Circuitscape-4 pairwise mode with the selected
   cores as focal regions; the cumulative current of all pairs. ``circuit_factor`` > 1 solves
   on a coarser grid (k x k block mean of the resistance, a block is a barrier only when all of
   its cells are; cores by majority) and spreads each coarse cell's current to its cells.
8. **Pinch points** (Pinchpoint Mapper's idea, McRae 2012): inside the selected corridor polygons
   and outside the cores, cells whose cumulative current is >= the ``pinch_quantile`` of the
   current over those cells; 8-connected groups of at least ``pinch_min_cells`` circuit cells
   (``pinch_min_cells x circuit_factor**2`` cells of the grid).
9. **Barriers** (Barrier Mapper, McRae et al. 2012, PLoS ONE 7:e52604): for a circle of radius
   ``r`` centred on a cell, restoring it would cut the corridor's least-cost distance LCD to
   ``min_disc(CWD_A) + min_disc(CWD_B) + 2 r x R_restored`` (``R_restored`` = the lowest
   resistance in the region, the best habitat). Improvement = LCD minus that (>= 0), in
   cost-weighted metres and in % of LCD, at the radius with the best improvement per metre
   restored (improvement / 2r, Barrier Mapper's per-unit-distance score; radii of its demo:
   400, 800 and 1,200 m). Barrier polygons are 8-connected groups of circle centres inside the
   corridor polygon with an improvement >= ``barrier_min_pct`` % of LCD.
10. **Zones**: supplied polygons, or derived by this rule (first match wins): *core* = the
    selected cores; *corridor* = the selected corridor polygons; *buffer* = cells within
    ``buffer_cwd`` cost-weighted metres of a selected core (the least of the cores' CWD);
    *other* = the rest of the region. Each zone gets its area; carbon stocks are added by the
    application layer (``sinkmap.ecology_cmd``), which may use :mod:`sinks`.
11. **Landscape metrics** (:func:`layers.landscape.class_metrics`): FRAGSTATS class metrics of
    the land cover per zone.

Everything is computed in memory on the land cover's grid (a county at 30 m is ~10 Mcells);
the connectivity steps are global problems, not block-wise ones.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import xarray as xr
from scipy import ndimage as ndi

from gis.errors import CRSMismatchError, InputError
from gis.grid import GridSpec, like
from layers.circuit import pairwise
from layers.connectivity import DEFAULT_PROBABILITY, DEFAULT_THRESHOLD_M, core_importance
from layers.costpath import Linkage, RankBy, core_distances, link_cores, rank_links
from layers.landcover import ClassScheme
from layers.landscape import DEFAULT_HABITAT, class_metrics, habitat_mask
from layers.mspa import CLASS_BYTES, MISSING, mspa, mspa_statistics
from layers.resistance import ResistanceTables, resistance_surface

log = logging.getLogger(__name__)

ZONE_KINDS = ("core", "corridor", "buffer", "other")
ZONE_NAMES = {"zh": {"core": "生态核心区", "corridor": "生态廊道区", "buffer": "生态缓冲区",
                     "other": "其他区域"},
              "en": {"core": "Ecological core", "corridor": "Ecological corridor",
                     "buffer": "Ecological buffer", "other": "Other land"}}


@dataclass(frozen=True)
class PatternSettings:
    """Parameters of :func:`ecological_pattern` (defaults and their sources in the module doc)."""

    habitat: tuple[str | int, ...] = DEFAULT_HABITAT
    edge_width: int = 1
    connectivity: Literal[4, 8] = 8
    min_core_ha: float = 100.0
    min_core_gap_m: float = 2000.0
    n_cores: int = 5
    n_corridors: int = 3
    threshold_m: float = DEFAULT_THRESHOLD_M
    probability: float = DEFAULT_PROBABILITY
    rank_links_by: RankBy = "cost"
    corridor_cwd: float = 5000.0
    buffer_cwd: float | None = None
    circuit: bool = True
    circuit_factor: int = 1
    pinch_quantile: float = 0.9
    pinch_min_cells: int = 4
    barrier_radii_m: tuple[float, ...] = (400.0, 800.0, 1200.0)
    barrier_min_pct: float = 10.0
    lang: str = "zh"

    def check(self) -> None:
        """Raise :class:`InputError` listing every parameter out of range."""
        bad = []
        if self.n_cores < 2:
            bad.append(f"n_cores must be >= 2 (got {self.n_cores})")
        if self.n_corridors < 1:
            bad.append(f"n_corridors must be >= 1 (got {self.n_corridors})")
        if not self.min_core_gap_m >= 0:
            bad.append(f"min_core_gap_m must be >= 0 (got {self.min_core_gap_m})")
        if not self.min_core_ha >= 0:
            bad.append(f"min_core_ha must be >= 0 (got {self.min_core_ha})")
        if not self.corridor_cwd > 0:
            bad.append(f"corridor_cwd must be > 0 (got {self.corridor_cwd})")
        if self.buffer_cwd is not None and not self.buffer_cwd >= 0:
            bad.append(f"buffer_cwd must be >= 0 (got {self.buffer_cwd})")
        if self.circuit_factor < 1:
            bad.append(f"circuit_factor must be >= 1 (got {self.circuit_factor})")
        if not 0 < self.pinch_quantile < 1:
            bad.append(f"pinch_quantile must be in (0, 1) (got {self.pinch_quantile})")
        if self.pinch_min_cells < 1:
            bad.append(f"pinch_min_cells must be >= 1 (got {self.pinch_min_cells})")
        if any(not r > 0 for r in self.barrier_radii_m):
            bad.append(f"barrier radii must be > 0 (got {list(self.barrier_radii_m)})")
        if not 0 <= self.barrier_min_pct <= 100:
            bad.append(f"barrier_min_pct must be in [0, 100] (got {self.barrier_min_pct})")
        if self.lang not in ZONE_NAMES:
            bad.append(f"lang must be one of {sorted(ZONE_NAMES)} (got {self.lang!r})")
        if bad:
            raise InputError("; ".join(bad), source="ecology settings")


@dataclass
class Pattern:
    """Everything :func:`ecological_pattern` computes (rasters on the land cover's grid)."""

    mspa: xr.DataArray
    mspa_stats: dict[str, Any]
    resistance: xr.DataArray
    core_labels: xr.DataArray          # int32 candidate core ids (0 = none)
    cores: gpd.GeoDataFrame            # candidates: core_id, rank, selected, area_ha, dPC ...
    landscape: dict[str, float]        # PC, IIC, EC_PC, A_L ...
    links: gpd.GeoDataFrame            # pairs of selected cores (LCP lines)
    corridors: gpd.GeoDataFrame        # selected corridor polygons
    current: xr.DataArray | None
    circuit_pairs: pd.DataFrame        # core_a, core_b, resistance_ohm (empty if disconnected)
    pinchpoints: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    zones: gpd.GeoDataFrame            # zone, name, kind, area_ha
    zone_raster: xr.DataArray          # int32 1-based zone number (0 = none)
    metrics: pd.DataFrame
    settings: PatternSettings
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self, zones: gpd.GeoDataFrame | None = None) -> dict[str, Any]:
        """JSON-ready summary (counts, selections, settings). ``zones``: the zones with carbon
        columns (``stock_tC``, ``stock_tCO2e``) added, to report instead of ``self.zones``."""
        sel = self.cores[self.cores["selected"]]
        pixel_ha = GridSpec.of(self.mspa).pixel_area_m2 / 1e4
        zones = self.zones if zones is None else zones
        stock_cols = [c for c in ("stock_tC", "stock_tCO2e") if c in zones.columns]
        unreach = self.links[~self.links["reachable"].astype(bool)]
        return {
            "n_cores_found": len(self.cores),
            "n_cores_selected": len(sel),
            "n_corridors": len(self.corridors),
            "n_pinchpoints": len(self.pinchpoints),
            "n_barriers": len(self.barriers),
            "mspa": {k: {"pct": v["percent"], "objects": v["objects"],
                         "area_ha": v["pixels"] * pixel_ha}
                     for k, v in self.mspa_stats["classes"].items()},
            "landscape_connectivity": {k: _num(v) for k, v in self.landscape.items()},
            "selected_cores": [
                {"core_id": int(r.core_id), "rank": int(r.rank), "area_ha": _num(r.area_ha),
                 "dPC": _num(r.dPC)} for r in sel.itertuples()],
            "corridors": [
                {"corridor_id": int(r.corridor_id), "core_a": int(r.core_a),
                 "core_b": int(r.core_b), "cost_cwm": _num(r.cost), "length_m": _num(r.length_m),
                 "area_ha": _num(r.area_ha)} for r in self.corridors.itertuples()],
            "effective_resistance_ohm": [
                {"core_a": int(r.core_a), "core_b": int(r.core_b),
                 "resistance_ohm": _num(r.resistance_ohm)}
                for r in self.circuit_pairs.itertuples()],
            "pinch_threshold_A": _num(self.current.attrs.get("pinch_threshold_A"))
            if self.current is not None else None,
            "unreachable_pairs": [[int(r.core_a), int(r.core_b)] for r in unreach.itertuples()],
            "zones": [{"zone": str(r.zone), "name": str(r.name), "kind": str(r.kind),
                       "area_ha": _num(r.area_ha),
                       **{c: _num(getattr(r, c)) for c in stock_cols}}
                      for r in zones.itertuples()],
            "settings": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in asdict(self.settings).items()},
            "timings_s": {k: round(v, 2) for k, v in self.timings.items()},
        }


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# --------------------------------------------------------------------------------------------
# building blocks (public: each is usable and tested on its own)


def core_patches(mspa_bytes: xr.DataArray, *, connectivity: int = 8, min_core_ha: float = 0.0
                 ) -> tuple[xr.DataArray, pd.Series]:
    """Connected MSPA core patches of at least ``min_core_ha``, numbered 1.. by decreasing area.

    Returns the int32 label raster (0 = not a candidate core) and the areas in ha (a Series
    indexed by core id). Ties in area keep the order of the first cell (row-major).
    """
    grid = GridSpec.of(mspa_bytes)
    pixel_ha = grid.pixel_area_m2 / 10_000.0
    core = np.isin(np.asarray(mspa_bytes.values), CLASS_BYTES["core"])
    structure = np.ones((3, 3), bool) if connectivity == 8 else ndi.generate_binary_structure(2, 1)
    lab, n = ndi.label(core, structure=structure)
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    area = counts * pixel_ha
    order = np.lexsort((np.arange(n), -area))
    keep = order[area[order] >= min_core_ha]
    remap = np.zeros(n + 1, np.int32)
    remap[keep + 1] = np.arange(1, keep.size + 1, dtype=np.int32)
    labels = remap[lab]
    areas = pd.Series(area[keep], index=pd.RangeIndex(1, keep.size + 1, name="core_id"),
                      name="area_ha")
    out = like(mspa_bytes, labels, nodata=0, units="id", kind="categorical", name="core_id")
    out.attrs["n_patches_all"] = int(n)
    out.attrs["largest_ha"] = float(area.max()) if n else 0.0
    return out, areas


def spaced_selection(table: pd.DataFrame, distances: np.ndarray, n: int, min_gap_m: float
                     ) -> list[int]:
    """Greedy choice of up to ``n`` cores by rank (dPC): a core is taken unless it lies within
    ``min_gap_m`` (edge to edge) of a core already taken. ``distances`` is indexed by
    ``core_id - 1``."""
    chosen: list[int] = []
    for cid in table.sort_values("rank")["core_id"].astype(int):
        if all(distances[cid - 1, c - 1] >= min_gap_m for c in chosen):
            chosen.append(cid)
            if len(chosen) == n:
                break
    return chosen


def disc_minimum(a: np.ndarray, radius_cells: int) -> np.ndarray:
    """Minimum of ``a`` over a disc of ``radius_cells`` (cells whose centres are within the
    radius) around every cell; cells beyond the array count as +inf.

    The disc is the union of its rows: one 1-D running minimum per row half-width
    (``scipy.ndimage.minimum_filter1d``), shifted up and down: O(cells x radius).
    """
    r = int(radius_cells)
    a = np.asarray(a, dtype=np.float64)
    if r <= 0:
        return a.copy()
    h = a.shape[0]
    out = np.full(a.shape, np.inf)
    for dy in range(0, r + 1):
        hw = math.isqrt(r * r - dy * dy)
        m = ndi.minimum_filter1d(a, 2 * hw + 1, axis=1, mode="constant", cval=np.inf)
        if dy == 0:
            np.minimum(out, m, out=out)
            continue
        if dy < h:
            np.minimum(out[:h - dy], m[dy:], out=out[:h - dy])
            np.minimum(out[dy:], m[:h - dy], out=out[dy:])
    return out


def group_polygons(labels: np.ndarray, transform: Any) -> dict[int, shapely.Geometry]:
    """Polygons of the groups of a label raster (label > 0), by label (valid geometries)."""
    mask = labels > 0
    if not mask.any():
        return {}
    parts: dict[int, list[Any]] = {}
    for g, v in rasterio.features.shapes(labels.astype(np.int32), mask=mask,
                                         transform=transform, connectivity=8):
        parts.setdefault(int(v), []).append(shapely.geometry.shape(g))
    out = {k: (p[0] if len(p) == 1 else shapely.union_all(p)) for k, p in sorted(parts.items())}
    # 8-connected outlines can touch themselves at a corner (an invalid ring): repair those
    return {k: (g if g.is_valid else shapely.make_valid(g)) for k, g in out.items()}


def _groups(mask: np.ndarray, min_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """8-connected groups of ``mask`` with >= ``min_cells`` cells: (labels, kept label ids)."""
    lab, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return lab, np.zeros(0, np.int64)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    small = sizes < min_cells
    small[0] = True
    lab[small[lab]] = 0
    return lab, np.flatnonzero(~small)


def _frame(rows: list[dict[str, Any]], columns: list[str], crs: Any) -> gpd.GeoDataFrame:
    df = pd.DataFrame(rows, columns=columns)
    return gpd.GeoDataFrame(df, geometry="geometry", crs=crs)


def pinch_points(current: np.ndarray, corridors: Sequence[tuple[int, np.ndarray]],
                 exclude: np.ndarray, transform: Any, crs: Any, *, quantile: float = 0.9,
                 min_cells: int = 4, pixel_ha: float) -> tuple[gpd.GeoDataFrame, float]:
    """High-current groups of cells inside corridors (see the module docstring, step 8).

    ``corridors``: (corridor id, bool mask) pairs; a cell in several corridors belongs to the
    first; a group belongs to the corridor of its highest-current cell. Returns the polygons
    and the current threshold used (NaN when no corridor cell carries current).
    """
    cols = ["pinch_id", "corridor_id", "area_ha", "max_current_A", "mean_current_A",
            "geometry"]
    owner = np.zeros(current.shape, np.int32)
    for cid, m in reversed(list(corridors)):
        owner[m] = cid
    owner[exclude] = 0
    inside = (owner > 0) & np.isfinite(current)
    if not inside.any():
        return _frame([], cols, crs), float("nan")
    thr = float(np.quantile(current[inside], quantile))
    hot = inside & (current >= thr) & (current > 0)
    lab, ids = _groups(hot, min_cells)
    rows = []
    if ids.size:
        vmax = ndi.maximum(current, lab, ids)
        vmean = ndi.mean(current, lab, ids)
        at = ndi.maximum_position(current, lab, ids)  # the group's corridor: where it peaks
        size = np.bincount(lab.ravel())[ids]
        geoms = group_polygons(lab, transform)
        for k, mx, mn, sz, pos in zip(ids, vmax, vmean, size, at, strict=True):
            rows.append({"pinch_id": 0, "corridor_id": int(owner[pos]),
                         "area_ha": float(sz * pixel_ha),
                         "max_current_A": float(mx), "mean_current_A": float(mn),
                         "geometry": geoms[int(k)]})
    rows.sort(key=lambda r: -r["max_current_A"])
    for i, r in enumerate(rows, 1):
        r["pinch_id"] = i
    return _frame(rows, cols, crs), thr


def barrier_improvement(cwd_a: np.ndarray, cwd_b: np.ndarray, lcd: float, radius_m: float,
                        cell_m: float, restored_resistance: float) -> np.ndarray:
    """Barrier Mapper improvement score (cost-weighted map units) of restoring a disc of
    ``radius_m`` centred on each cell: ``max(LCD - (min_disc CWD_A + min_disc CWD_B +
    2 r R_restored), 0)``; 0 where either core cannot be reached."""
    r_cells = round(radius_m / cell_m)
    ma = disc_minimum(np.where(np.isfinite(cwd_a), cwd_a, np.inf), r_cells)
    mb = disc_minimum(np.where(np.isfinite(cwd_b), cwd_b, np.inf), r_cells)
    after = ma + mb + 2.0 * radius_m * restored_resistance
    with np.errstate(invalid="ignore"):
        out = np.where(np.isfinite(after), lcd - after, 0.0)
    return np.maximum(out, 0.0)


def barriers(linkage: Linkage, corridors: gpd.GeoDataFrame, corridor_masks: dict[int, np.ndarray],
             *, radii_m: Sequence[float], min_pct: float, restored_resistance: float,
             pixel_ha: float) -> gpd.GeoDataFrame:
    """Barrier polygons of the selected corridors (module docstring, step 9)."""
    cols = ["barrier_id", "corridor_id", "radius_m", "improvement_cwm", "improvement_pct",
            "area_ha", "geometry"]
    graph = linkage.graph
    cell = abs(graph.transform.a)
    h, w = graph.shape
    rows: list[dict[str, Any]] = []
    for rec in corridors.itertuples():
        mask = corridor_masks[int(rec.corridor_id)]
        if not mask.any() or not np.isfinite(rec.cost) or rec.cost <= 0:
            continue
        rr, cc = np.nonzero(mask)
        pad = math.ceil(max(radii_m) / cell) + 1
        r0, r1 = max(rr.min() - pad, 0), min(rr.max() + pad + 1, h)
        c0, c1 = max(cc.min() - pad, 0), min(cc.max() + pad + 1, w)
        ca = linkage.cwd[int(rec.core_a)][r0:r1, c0:c1]
        cb = linkage.cwd[int(rec.core_b)][r0:r1, c0:c1]
        best = np.zeros(ca.shape)
        best_rate = np.zeros(ca.shape)
        best_r = np.zeros(ca.shape)
        for radius in sorted(radii_m):
            imp = barrier_improvement(ca, cb, float(rec.cost), float(radius), cell,
                                      restored_resistance)
            rate = imp / (2.0 * radius)  # saved per metre restored: a wider disc must earn it
            better = rate > best_rate
            best[better], best_rate[better], best_r[better] = imp[better], rate[better], radius
        pct = 100.0 * best / float(rec.cost)
        inside = mask[r0:r1, c0:c1]
        lab, ids = _groups((pct >= min_pct) & (best > 0) & inside, 1)
        if not ids.size:
            continue
        sub_t = graph.transform * graph.transform.translation(c0, r0)
        geoms = group_polygons(lab, sub_t)
        vmax = ndi.maximum(best, lab, ids)
        at = ndi.maximum_position(best, lab, ids)
        size = np.bincount(lab.ravel())[ids]
        for k, mx, pos, sz in zip(ids, vmax, at, size, strict=True):
            rows.append({"barrier_id": 0, "corridor_id": int(rec.corridor_id),
                         "radius_m": float(best_r[pos]), "improvement_cwm": float(mx),
                         "improvement_pct": float(100.0 * mx / rec.cost),
                         "area_ha": float(sz * pixel_ha), "geometry": geoms[int(k)]})
    rows.sort(key=lambda r: -r["improvement_cwm"])
    for i, r in enumerate(rows, 1):
        r["barrier_id"] = i
    return _frame(rows, cols, graph.crs)


def coarsen(resistance: np.ndarray, focal: np.ndarray, factor: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """k x k block mean of the resistance (NaN only when the whole block is NaN) and the
    majority core id of each block (a block with any core cell takes the commonest core)."""
    k = int(factor)
    h, w = resistance.shape
    hh, ww = -(-h // k) * k, -(-w // k) * k
    r = np.full((hh, ww), np.nan, np.float64)
    r[:h, :w] = resistance
    blocks = r.reshape(hh // k, k, ww // k, k)
    with np.errstate(invalid="ignore"):
        n = np.isfinite(blocks).sum(axis=(1, 3))
        s = np.nansum(blocks, axis=(1, 3))
        coarse_r = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    f = np.zeros((hh, ww), np.int64)
    f[:h, :w] = focal
    fb = f.reshape(hh // k, k, ww // k, k).transpose(0, 2, 1, 3).reshape(hh // k, ww // k, k * k)
    ids = np.unique(f[f > 0])
    coarse_f = np.zeros((hh // k, ww // k), np.int32)
    best = np.zeros((hh // k, ww // k), np.int32)
    for i in ids:
        c = (fb == i).sum(axis=2)
        take = c > best
        coarse_f[take], best[take] = i, c[take]
    return coarse_r, coarse_f


def _refine(coarse: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    k = int(factor)
    return np.repeat(np.repeat(coarse, k, axis=0), k, axis=1)[:shape[0], :shape[1]]


def derive_zones(core_mask: np.ndarray, corridor_mask: np.ndarray, cwd_min: np.ndarray,
                 valid: np.ndarray, buffer_cwd: float) -> np.ndarray:
    """Zone raster by the module's rule: 1 core, 2 corridor, 3 buffer, 4 other, 0 outside."""
    z = np.zeros(valid.shape, np.int32)
    z[valid] = 4
    z[valid & (cwd_min <= buffer_cwd)] = 3
    z[valid & corridor_mask] = 2
    z[valid & core_mask] = 1
    return z


# --------------------------------------------------------------------------------------------


def ecological_pattern(landcover: xr.DataArray, scheme: ClassScheme, *,
                       settings: PatternSettings | None = None,
                       dem: xr.DataArray | None = None, roads: gpd.GeoDataFrame | None = None,
                       region: gpd.GeoDataFrame | None = None,
                       zones: gpd.GeoDataFrame | None = None, zone_field: str | None = None,
                       resistance_tables: ResistanceTables | None = None,
                       progress: Callable[[str], None] | None = None) -> Pattern:
    """The ecological-protection pattern of a land-cover raster (see the module docstring).

    ``dem`` must be on the land cover's grid (align it first, on purpose); ``roads``,
    ``region`` and ``zones`` must be in the land cover's CRS. ``zones`` (with ``zone_field``
    naming them, default the index) replace the derived zones.
    """
    s = settings or PatternSettings()
    s.check()
    say = progress or (lambda msg: None)
    landcover = landcover.compute()  # read once: every step below needs all of it
    grid = GridSpec.of(landcover)
    pixel_ha = grid.pixel_area_m2 / 10_000.0
    for name, gdf in (("region", region), ("zones", zones), ("roads", roads)):
        if gdf is not None and (gdf.crs is None or not gdf.crs.equals(grid.crs)):
            raise CRSMismatchError(
                f"{name} are in {gdf.crs}, the land cover in {grid.crs.to_string()}",
                source=gdf.attrs.get("source", name),
                fix=f"reproject the {name} to the land cover's CRS")
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(key: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[key] = now - t
        t = now

    say("habitat and MSPA")
    hab = habitat_mask(landcover, scheme, s.habitat, region=region)
    valid = np.asarray(hab.values) != 0
    msp = mspa(np.asarray(hab.values), edge_width=s.edge_width, connectivity=s.connectivity)
    mspa_da = like(landcover, msp, nodata=MISSING, units="class", kind="categorical",
                   name="mspa")
    mspa_da.attrs.update(edge_width=s.edge_width, connectivity=s.connectivity)
    stats = mspa_statistics(msp, connectivity=s.connectivity)
    lap("mspa")

    say("cores and their importance (dPC)")
    labels_da, areas = core_patches(mspa_da, connectivity=s.connectivity,
                                    min_core_ha=s.min_core_ha)
    labels = np.asarray(labels_da.values)
    found, largest = len(areas), labels_da.attrs["largest_ha"]
    if found == 0:
        raise InputError(
            f"no MSPA core patch of >= {s.min_core_ha:g} ha "
            f"({labels_da.attrs['n_patches_all']} core patches in all, the largest "
            f"{largest:,.1f} ha)", source=landcover.attrs.get("source", "land cover"),
            fix="lower min_core_ha (--min-core-ha) or the MSPA edge width, or add habitat classes")
    if found < s.n_cores:
        raise InputError(
            f"the region has only {found} core patch(es) of >= {s.min_core_ha:g} ha, "
            f"{s.n_cores} were asked for", source=landcover.attrs.get("source", "land cover"),
            fix=f"ask for --cores {found} (at least 2), or lower --min-core-ha")
    dist = core_distances(labels, grid.transform)
    dmat = np.zeros((found, found))
    for r in dist.itertuples():
        dmat[r.core_a - 1, r.core_b - 1] = dmat[r.core_b - 1, r.core_a - 1] = r.euclid_m
    table, land = core_importance(areas, dmat, threshold=s.threshold_m,
                                  probability=s.probability,
                                  landscape_area=float(valid.sum() * pixel_ha))
    table = table.rename(columns={"core": "core_id"})
    selected = spaced_selection(table, dmat, s.n_cores, s.min_core_gap_m)
    if len(selected) < s.n_cores:
        raise InputError(
            f"only {len(selected)} of the {found} core patches of >= {s.min_core_ha:g} ha are at "
            f"least {s.min_core_gap_m:g} m apart; {s.n_cores} cores were asked for",
            source=landcover.attrs.get("source", "land cover"),
            fix=(f"ask for --cores {len(selected)}, or lower --min-core-gap / --min-core-ha"
                 if len(selected) >= 2 else "lower --min-core-gap (or --min-core-ha)"))
    table["selected"] = table["core_id"].isin(selected)
    table["dPC_rank"] = table["rank"]
    # rank: the selected cores 1..N in dPC order, then the other candidates by dPC
    table = table.sort_values(["selected", "dPC_rank"], ascending=[False, True])
    table["rank"] = np.arange(1, len(table) + 1)
    geoms = group_polygons(labels, grid.transform)
    cores = gpd.GeoDataFrame(
        table[["core_id", "rank", "selected", "dPC_rank", "area", "dPC", "dPC_intra",
               "dPC_flux", "dPC_connector", "dIIC"]].rename(columns={"area": "area_ha"}),
        geometry=[geoms[int(c)] for c in table["core_id"]], crs=grid.crs)
    lap("cores")

    say("resistance surface")
    res_da, _ = resistance_surface(landcover, scheme, dem=dem, roads=roads,
                                   tables=resistance_tables, components=False)
    formula = res_da.attrs.get("formula", "")
    res = np.asarray(res_da.values, dtype=np.float32)
    res[~valid] = np.nan
    res_da = like(landcover, res, nodata=float("nan"), units="relative", kind="continuous",
                  name="resistance")
    res_da.attrs["formula"] = formula
    lap("resistance")

    say(f"least-cost links between the {len(selected)} selected cores")
    sel_labels = np.where(np.isin(labels, selected), labels, 0)
    linkage = link_cores(res_da, sel_labels)
    links = linkage.links.copy()
    sel_set = set(selected)
    links["direct"] = [not (set(int(v) for v in str(via).split(",") if v) & sel_set)
                       for via in links["via_cores"]]
    ranked = rank_links(links[links["direct"]], by=s.rank_links_by, top=s.n_corridors)
    rank_of = {(int(r.core_a), int(r.core_b)): int(r.rank) for r in ranked.itertuples()}
    links["rank"] = pd.array([rank_of.get((int(a), int(b))) for a, b in
                              zip(links["core_a"], links["core_b"], strict=True)], dtype="Int64")
    links["selected"] = links["rank"].notna().to_numpy()
    links = gpd.GeoDataFrame(links, geometry="geometry", crs=grid.crs)
    if len(ranked) < s.n_corridors:
        log.warning("only %d direct reachable link(s) between the selected cores; %d corridors "
                    "were asked for", len(ranked), s.n_corridors)
    lap("links")

    say("corridor polygons")
    masks: dict[int, np.ndarray] = {}
    crows = []
    for r in ranked.itertuples():
        m = linkage.corridor_mask(int(r.core_a), int(r.core_b), threshold=s.corridor_cwd)
        m &= valid
        masks[int(r.rank)] = m
        poly = group_polygons(m.astype(np.int32), grid.transform)
        crows.append({"corridor_id": int(r.rank), "core_a": int(r.core_a),
                      "core_b": int(r.core_b), "rank": int(r.rank), "cost": float(r.cost),
                      "length_m": float(r.length_m), "threshold_cwm": float(s.corridor_cwd),
                      "area_ha": float(m.sum() * pixel_ha),
                      "geometry": poly.get(1, shapely.Polygon())})
    corridors = _frame(crows, ["corridor_id", "core_a", "core_b", "rank", "cost", "length_m",
                               "threshold_cwm", "area_ha", "geometry"], grid.crs)
    lap("corridors")

    current_da = None
    circuit_pairs = pd.DataFrame(columns=["core_a", "core_b", "resistance_ohm"])
    core_mask = sel_labels > 0
    if s.circuit:
        say(f"circuit current between the selected cores (factor {s.circuit_factor})")
        if s.circuit_factor > 1:
            cr, cf = coarsen(res, sel_labels, s.circuit_factor)
            out = pairwise(cr, cf)
            cur = _refine(np.asarray(out.cumulative_current), s.circuit_factor, res.shape)
            # a fine cell shares its coarse cell's current; per area unit it is the same
            # field, only smoother
        else:
            out = pairwise(res, sel_labels)
            cur = np.asarray(out.cumulative_current)
        cur = np.where(valid & np.isfinite(res), cur, np.nan).astype(np.float32)
        current_da = like(landcover, cur, nodata=float("nan"), units="A", kind="continuous",
                          name="current")
        current_da.attrs["circuit_factor"] = s.circuit_factor
        circuit_pairs = out.pairs.rename(columns={"from": "core_a", "to": "core_b",
                                                  "resistance": "resistance_ohm"})
        circuit_pairs["resistance_ohm"] = circuit_pairs["resistance_ohm"].where(
            circuit_pairs["resistance_ohm"] >= 0)  # -1 (disconnected) -> empty
        lap("circuit")
        pinch, thr = pinch_points(cur, list(masks.items()), core_mask, grid.transform,
                                  grid.crs, quantile=s.pinch_quantile,
                                  min_cells=s.pinch_min_cells * s.circuit_factor ** 2,
                                  pixel_ha=pixel_ha)
        current_da.attrs["pinch_threshold_A"] = thr
    else:
        pinch = _frame([], ["pinch_id", "corridor_id", "area_ha", "max_current_A",
                            "mean_current_A", "geometry"], grid.crs)
    lap("pinch points")

    say("barriers")
    restored = float(np.nanmin(res)) if np.isfinite(res).any() else 1.0
    bars = barriers(linkage, corridors, masks, radii_m=s.barrier_radii_m,
                    min_pct=s.barrier_min_pct, restored_resistance=restored,
                    pixel_ha=pixel_ha)
    lap("barriers")

    say("zones and landscape metrics")
    if zones is not None:
        zf = zone_field or "zone"
        names = zones[zf] if zf in zones.columns else pd.Series(zones.index, index=zones.index)
        zgdf = gpd.GeoDataFrame({"zone": names.astype(str).to_numpy(),
                                 "name": names.astype(str).to_numpy(),
                                 "kind": "supplied",
                                 "area_ha": zones.geometry.area.to_numpy() / 10_000.0},
                                geometry=zones.geometry.to_numpy(), crs=grid.crs)
        zr = rasterio.features.rasterize(
            [(g, i + 1) for i, g in enumerate(zgdf.geometry) if g is not None and not g.is_empty],
            out_shape=grid.shape, transform=grid.transform, fill=0, dtype="int32")
    else:
        cwd_min = np.full(grid.shape, np.inf)
        for c in selected:
            np.minimum(cwd_min, linkage.cwd[c], out=cwd_min)
        any_corr = np.zeros(grid.shape, bool)
        for m in masks.values():
            any_corr |= m
        buffer = s.corridor_cwd if s.buffer_cwd is None else s.buffer_cwd
        zr = derive_zones(core_mask, any_corr, cwd_min, valid, buffer)
        zgeoms = group_polygons(zr, grid.transform)
        names = ZONE_NAMES[s.lang]
        rows = [{"zone": kind, "name": names[kind], "kind": kind,
                 "area_ha": float((zr == i).sum() * pixel_ha),
                 "geometry": zgeoms[i]} for i, kind in enumerate(ZONE_KINDS, 1) if i in zgeoms]
        zgdf = _frame(rows, ["zone", "name", "kind", "area_ha", "geometry"], grid.crs)
    zone_da = like(landcover, zr.astype(np.int32), nodata=0, units="id", kind="categorical",
                   name="zone")
    metrics = class_metrics(landcover, zgdf, zone_field="zone")
    cname = scheme.names(s.lang)
    metrics.insert(2, "class_name", metrics["class"].map(lambda c: cname.get(int(c), str(c))))
    lap("zones")

    return Pattern(mspa=mspa_da, mspa_stats=stats, resistance=res_da, core_labels=labels_da,
                   cores=cores, landscape=land, links=links, corridors=corridors,
                   current=current_da, circuit_pairs=circuit_pairs, pinchpoints=pinch,
                   barriers=bars, zones=zgdf,
                   zone_raster=zone_da, metrics=metrics, settings=s, timings=timings)


__all__ = [
    "ZONE_KINDS",
    "ZONE_NAMES",
    "Pattern",
    "PatternSettings",
    "barrier_improvement",
    "barriers",
    "coarsen",
    "core_patches",
    "derive_zones",
    "disc_minimum",
    "ecological_pattern",
    "group_polygons",
    "pinch_points",
    "spaced_selection",
]
