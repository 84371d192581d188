"""Cost-weighted distance, least-cost paths and Linkage-Mapper-style corridors between cores.

**The step rule (GRASS ``r.cost``, 8 neighbours).** Moving from cell ``u`` to a neighbour ``v``
costs ``(r_u + r_v) / 2 x L x cell size``: the mean resistance of the two cells times the step
length, ``L = 1`` for the four orthogonal steps and ``sqrt 2`` for the diagonals (with
non-square cells: the cell width for east-west steps, the height for north-south steps and
``hypot(width, height)`` for diagonals). Source cells cost 0. Results are in *cost-weighted map
units* ("cost-weighted metres": resistance x metres). The same rule gives GRASS ``r.cost``,
scikit-image ``MCP_Geometric(fully_connected=True)`` and a plain Dijkstra bit-identical
results (see ``/work/shared/peers.md``); knight's moves (``r.cost -k``) are not offered.

**Barriers.** A resistance that is NaN, nodata or <= 0 is a barrier: no step enters or leaves
it, and cells cut off by barriers are unreachable (cost ``inf`` in arrays; in tables a
``reachable`` flag with the cost left empty, never an infinite number). ``on_barrier="raise"``
refuses such resistance instead.

**Engine.** The grid is turned once into a CSR graph (built vectorised, straight into CSR:
about 400 MB for 2000 x 2000 cells) and :func:`scipy.sparse.csgraph.dijkstra` runs from every
core (``min_only=True``: all cells of a core are sources at once, with per-cell allocation).
scipy's Dijkstra holds the GIL, so several cores run in forked worker processes
(``workers``). Measured: see ``benchmarks/bench_costpath.py``.

**Corridors** follow Linkage Mapper (McRae & Kavanagh 2011): for cores A and B the normalized
least-cost corridor is ``CWD_A + CWD_B - min(CWD_A + CWD_B)`` (0 along the least-cost path);
the corridor polygon is where that is <= a threshold in cost-weighted distance. The default
threshold, :data:`DEFAULT_CORRIDOR_CWD` = 200,000, is Linkage Mapper's demo "truncate
corridors at CWD 200,000" (``lm_demo.py``; units of the resistance raster x map units): it
depends on the resistance scale, so a relative one (``pct`` of the least-cost path cost, as
ArcGIS "Least Cost Corridor") is offered too. Links carry Linkage Mapper's quality ratios
``cw_to_euc_dist_ratio`` and ``cwd_to_path_length_ratio`` (lower = more permeable).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely
import xarray as xr
from affine import Affine
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from gis.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_CORRIDOR_CWD = 200_000.0  # Linkage Mapper demo: truncate corridors at CWD 200,000
OnBarrier = Literal["barrier", "raise"]
RankBy = Literal["cost", "length_m", "cwd_to_path_length_ratio"]

# neighbour offsets in ascending order of flat index (so CSR rows come out sorted)
_DIRS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _as_array(data: Any, *, name: str) -> tuple[np.ndarray, Affine | None, Any, Any]:
    """(array, transform, crs, nodata) of a DataArray or a 2-D array."""
    if isinstance(data, xr.DataArray):
        arr = np.asarray(data.values)
        return arr, data.rio.transform(recalc=True), data.rio.crs, data.rio.nodata
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D raster, got shape {arr.shape}", source=name,
                         fix="pass a (rows, cols) array or a sinkmap DataArray")
    return arr, None, None, None


def _transform(transform: Affine | None, cell_size: float | None, name: str) -> Affine:
    if transform is None:
        if cell_size is None:
            raise InputError(f"{name} is a bare array without cell size", source=name,
                             fix="pass transform=Affine(...) or cell_size=..., or a DataArray")
        return Affine(float(cell_size), 0, 0, 0, -float(cell_size), 0)
    t = Affine(*tuple(transform)[:6])
    if t.b or t.d:
        raise InputError("rotated grids are not supported", source=name,
                         fix="warp the raster to a north-up grid first")
    return t


@dataclass
class CostDistance:
    """Result of one Dijkstra run: cost-weighted distance, allocation and back-links."""

    cwd: np.ndarray  # float64 (rows, cols); 0 at sources, inf where unreachable
    allocation: np.ndarray  # int32 (rows, cols): source id of the cheapest source, 0 unreachable
    predecessor: np.ndarray  # int32 flat index of the previous cell; -1 at sources / unreachable

    def to_raster(self, template: xr.DataArray, name: str = "cwd") -> xr.DataArray:
        """The CWD as a sinkmap raster on ``template``'s grid (unreachable = NaN)."""
        from gis.grid import like

        return like(template, np.where(np.isfinite(self.cwd), self.cwd, np.nan),
                    nodata=np.nan, units="cost_weighted_m", kind="continuous", name=name)


class CostGraph:
    """An 8-neighbour cost graph of a resistance raster (the r.cost step rule, see module doc).

    ``resistance``: DataArray (its transform and nodata are used) or 2-D array with
    ``transform`` or ``cell_size``. NaN, nodata and values <= 0 are barriers, or an error with
    ``on_barrier="raise"``.
    """

    def __init__(self, resistance: Any, *, transform: Affine | None = None,
                 cell_size: float | None = None, on_barrier: OnBarrier = "barrier",
                 name: str = "resistance"):
        arr, t, crs, nodata = _as_array(resistance, name=name)
        self.transform = _transform(t if t is not None else transform, cell_size, name)
        self.crs = crs
        self.shape = arr.shape
        r = arr.astype(np.float64)
        bad = ~np.isfinite(r) | (r <= 0)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            bad |= arr == nodata
        if bad.any():
            n = int(bad.sum())
            if on_barrier == "raise":
                raise InputError(f"{n} resistance cell(s) are NaN, nodata or <= 0", source=name,
                                 fix="fill them with a positive resistance, or use "
                                 "on_barrier='barrier' to treat them as impassable")
            if on_barrier != "barrier":
                raise InputError(f"on_barrier must be 'barrier' or 'raise', got {on_barrier!r}")
            log.info("%s: %d cell(s) NaN/nodata/<=0 treated as barriers", name, n)
        r[bad] = np.nan
        self.resistance = r
        self.barrier = bad
        self.dx, self.dy = abs(self.transform.a), abs(self.transform.e)
        self.graph = self._build()

    def step_length(self, dr: int, dc: int) -> float:
        """Map length of one step (the r.cost step length x cell size)."""
        if dr and dc:
            return math.hypot(self.dx, self.dy)
        return self.dy if dr else self.dx

    def _build(self) -> sp.csr_array:
        h, w = self.shape
        n = h * w
        valid = ~self.barrier
        rflat = self.resistance.ravel()
        oks = []
        counts = np.zeros(n, dtype=np.int32)
        for dr, dc in _DIRS:
            ok = np.zeros((h, w), dtype=bool)
            rs, re_ = max(0, -dr), h - max(0, dr)
            cs, ce = max(0, -dc), w - max(0, dc)
            ok[rs:re_, cs:ce] = valid[rs:re_, cs:ce] & valid[rs + dr:re_ + dr, cs + dc:ce + dc]
            ok = ok.ravel()
            counts += ok
            oks.append(ok)
        indptr = np.zeros(n + 1, dtype=np.int64 if counts.sum() >= 2**31 else np.int32)
        np.cumsum(counts, out=indptr[1:])
        nnz = int(indptr[-1])
        indices = np.empty(nnz, dtype=np.int32)
        data = np.empty(nnz, dtype=np.float64)
        pos = indptr[:-1].copy()
        for (dr, dc), ok in zip(_DIRS, oks, strict=True):
            rows = np.flatnonzero(ok)
            off = dr * w + dc
            p = pos[rows]
            indices[p] = rows + off
            data[p] = (rflat[rows] + rflat[rows + off]) / 2 * self.step_length(dr, dc)
            pos[rows] += 1
            del rows, p
        return sp.csr_array((data, indices, indptr), shape=(n, n))

    def _sources(self, sources: Any) -> tuple[np.ndarray, np.ndarray]:
        """(flat cell indices, source id per cell) of a bool mask or integer label raster."""
        arr, *_ = _as_array(sources, name="sources")
        if arr.shape != self.shape:
            raise InputError(f"sources shape {arr.shape} differs from resistance {self.shape}",
                             fix="put sources and resistance on one grid")
        if arr.dtype.kind == "f":
            arr = np.where(np.isfinite(arr), arr, 0)
        lab = arr.astype(np.int64)
        cells = np.flatnonzero((lab > 0).ravel() & ~self.barrier.ravel())
        dropped = int(((lab > 0) & self.barrier).sum())
        if dropped:
            log.warning("%d source cell(s) lie on barriers and are not used as sources", dropped)
        return cells, lab.ravel()[cells]

    def cost_distance(self, sources: Any) -> CostDistance:
        """Cost-weighted distance from all ``sources`` (bool mask, or labels > 0 = source id).

        ``allocation`` gives, per cell, the id of the source it is cheapest to reach from.
        """
        cells, ids = self._sources(sources)
        n = self.shape[0] * self.shape[1]
        if cells.size == 0:
            return CostDistance(np.full(self.shape, np.inf), np.zeros(self.shape, np.int32),
                                np.full(n, -1, np.int32))
        dist, pred, src = dijkstra(self.graph, indices=cells, min_only=True,
                                   return_predecessors=True)
        pred = np.where(pred < 0, -1, pred).astype(np.int32)
        lut = np.zeros(n, dtype=np.int32)
        lut[cells] = ids
        alloc = np.where(src >= 0, lut[np.maximum(src, 0)], 0).astype(np.int32)
        return CostDistance(dist.reshape(self.shape), alloc.reshape(self.shape), pred)

    def trace(self, cd: CostDistance, cell: tuple[int, int]) -> np.ndarray:
        """Least-cost path from ``cell`` (row, col) back to its source: (k, 2) rows/cols,
        source first. Empty if ``cell`` is unreachable."""
        w = self.shape[1]
        i = cell[0] * w + cell[1]
        if not np.isfinite(cd.cwd.flat[i]):
            return np.empty((0, 2), dtype=np.int64)
        out = [i]
        pred = cd.predecessor
        while pred[i] >= 0:
            i = int(pred[i])
            out.append(i)
        flat = np.array(out[::-1], dtype=np.int64)
        return np.column_stack(np.divmod(flat, w))

    def line(self, cells: np.ndarray) -> shapely.LineString | None:
        """A path of (row, col) cells as a LineString through cell centres in map coordinates."""
        if len(cells) == 0:
            return None
        xs, ys = self.transform * (cells[:, 1] + 0.5, cells[:, 0] + 0.5)
        xy = np.column_stack([xs, ys])
        if len(xy) == 1:
            xy = np.vstack([xy, xy])
        return shapely.LineString(xy)

    def path_length(self, cells: np.ndarray) -> float:
        """Map length of a cell path (sum of step lengths)."""
        if len(cells) < 2:
            return 0.0
        d = np.abs(np.diff(cells, axis=0))
        diag = (d[:, 0] > 0) & (d[:, 1] > 0)
        vert = (d[:, 0] > 0) & ~diag
        horiz = (d[:, 1] > 0) & ~diag
        return float(diag.sum() * math.hypot(self.dx, self.dy) + vert.sum() * self.dy
                     + horiz.sum() * self.dx)


def cost_distance(resistance: Any, sources: Any, *, transform: Affine | None = None,
                  cell_size: float | None = None, on_barrier: OnBarrier = "barrier"
                  ) -> CostDistance:
    """Cost-weighted distance (and allocation) from ``sources``; see :class:`CostGraph`."""
    g = CostGraph(resistance, transform=transform, cell_size=cell_size, on_barrier=on_barrier)
    return g.cost_distance(sources)


# ---------------------------------------------------------------- cores, links, corridors

_WORKER: dict[str, Any] = {}  # graph, labels, cores and shared output arrays, set before fork


def _run_core(k: int) -> int:
    """Worker: Dijkstra from core number ``k``, written straight into shared memory."""
    w = _WORKER
    cd = w["graph"].cost_distance(w["labels"] == w["cores"][k])
    w["cwd"][k] = cd.cwd
    w["pred"][k] = cd.predecessor.reshape(cd.cwd.shape)
    return k


@dataclass
class Linkage:
    """CWD from each core, and the least-cost link between every requested pair of cores.

    ``links``: one row per pair (``core_a < core_b``) with ``reachable``; ``cost`` (the
    least-cost path cost, cost-weighted map units), ``length_m`` (path length along cell
    centres), ``euclid_m`` (edge-to-edge distance of the cores), ``cw_to_euc_dist_ratio``,
    ``cwd_to_path_length_ratio``, ``via_cores`` (other cores the path crosses) and ``geometry``
    (LineString); costs and ratios are empty (NaN) for unreachable pairs, never infinite.
    """

    graph: CostGraph
    labels: np.ndarray
    cores: list[int]
    cwd: dict[int, np.ndarray]
    predecessor: dict[int, np.ndarray]
    links: pd.DataFrame = field(default_factory=pd.DataFrame)

    def corridor(self, a: int, b: int) -> np.ndarray:
        """Normalized least-cost corridor ``CWD_a + CWD_b - min(CWD_a + CWD_b)`` (inf where
        either core is unreachable)."""
        s = self.cwd[a] + self.cwd[b]
        finite = np.isfinite(s)
        if not finite.any():
            return np.full(s.shape, np.inf)
        return s - s[finite].min()

    def corridor_mask(self, a: int, b: int, *, threshold: float | None = None,
                      pct: float | None = None) -> np.ndarray:
        """Cells whose normalized corridor value is <= ``threshold`` (cost-weighted map units;
        default :data:`DEFAULT_CORRIDOR_CWD`), or <= ``pct`` % of the least-cost path cost."""
        norm = self.corridor(a, b)
        return norm <= self._threshold(a, b, threshold, pct)

    def _threshold(self, a: int, b: int, threshold: float | None, pct: float | None) -> float:
        if threshold is not None and pct is not None:
            raise InputError("give a corridor threshold or a pct, not both")
        if pct is not None:
            cost = self._pair(a, b)["cost"]
            return float(cost) * pct / 100.0 if np.isfinite(cost) else -np.inf
        return DEFAULT_CORRIDOR_CWD if threshold is None else float(threshold)

    def _pair(self, a: int, b: int) -> pd.Series:
        a, b = min(a, b), max(a, b)
        hit = self.links[(self.links.core_a == a) & (self.links.core_b == b)]
        if hit.empty:
            raise InputError(f"no link computed between cores {a} and {b}")
        return hit.iloc[0]

    def corridor_polygon(self, a: int, b: int, *, threshold: float | None = None,
                         pct: float | None = None) -> shapely.Geometry:
        """The corridor (see :meth:`corridor_mask`) as a (multi)polygon in map coordinates."""
        import rasterio.features

        mask = self.corridor_mask(a, b, threshold=threshold, pct=pct)
        if not mask.any():
            return shapely.Polygon()
        geoms = [shapely.geometry.shape(g) for g, _ in rasterio.features.shapes(
            mask.astype(np.uint8), mask=mask, transform=self.graph.transform, connectivity=8)]
        return shapely.union_all(geoms)

    def corridors(self, *, top: int | None = None, by: RankBy = "cost",
                  threshold: float | None = None, pct: float | None = None) -> pd.DataFrame:
        """Corridor polygons of the ``top`` links ranked ``by`` (reachable links only)."""
        ranked = rank_links(self.links, by=by, top=top)
        rows = []
        for rec in ranked.itertuples():
            rows.append({"core_a": rec.core_a, "core_b": rec.core_b, "rank": rec.rank,
                         "cost": rec.cost,
                         "threshold": self._threshold(rec.core_a, rec.core_b, threshold, pct),
                         "geometry": self.corridor_polygon(rec.core_a, rec.core_b,
                                                           threshold=threshold, pct=pct)})
        return _frame(rows, ["core_a", "core_b", "rank", "cost", "threshold", "geometry"],
                      self.graph.crs)


def _frame(rows: list[dict], columns: list[str], crs: Any) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    if crs is not None:
        import geopandas as gpd

        return gpd.GeoDataFrame(df, geometry="geometry", crs=crs)
    return df


def core_distances(labels: np.ndarray, transform: Affine, cores: Sequence[int] | None = None
                   ) -> pd.DataFrame:
    """Edge-to-edge Euclidean distance between the cells of every pair of cores (map units).

    The gap between two square cells whose centres are ``(dx, dy)`` apart is
    ``hypot(max(|dx| - w, 0), max(|dy| - h, 0))``; touching cores (8-neighbours) are 0 apart.
    Evaluated on the 16 nearest boundary-cell centres per cell (exact for convex
    configurations, an upper bound within a fraction of a cell otherwise).
    """
    from scipy import ndimage

    w, h = abs(transform.a), abs(transform.e)
    cores = sorted(int(c) for c in np.unique(labels) if c > 0) if cores is None else list(cores)
    pts = {}
    for c in cores:
        m = labels == c
        edge = m & ~ndimage.binary_erosion(m, structure=np.ones((3, 3), bool),
                                           border_value=0)
        r, cc = np.nonzero(edge)
        pts[c] = np.column_stack([(cc + 0.5) * w, (r + 0.5) * h])
    trees = {c: cKDTree(p) for c, p in pts.items() if len(p)}
    rows = []
    for i, a in enumerate(cores):
        for b in cores[i + 1:]:
            if a not in trees or b not in trees:
                rows.append((a, b, np.nan))
                continue
            pa, tb = pts[a], trees[b]
            k = min(16, len(pts[b]))
            _, idx = tb.query(pa, k=k)
            idx = np.asarray(idx).reshape(len(pa), k)
            d = np.abs(pts[b][idx] - pa[:, None, :])
            gap = np.hypot(np.maximum(d[..., 0] - w, 0), np.maximum(d[..., 1] - h, 0))
            rows.append((a, b, float(gap.min())))
    return pd.DataFrame(rows, columns=["core_a", "core_b", "euclid_m"])


def link_cores(resistance: Any, cores: Any, *, transform: Affine | None = None,
               cell_size: float | None = None, on_barrier: OnBarrier = "barrier",
               pairs: Iterable[tuple[int, int]] | None = None, workers: int | None = None
               ) -> Linkage:
    """CWD from every core and the least-cost path between every pair (or ``pairs``).

    ``cores``: integer label raster on the resistance grid (0 / negative = not a core), e.g.
    numbered MSPA cores. ``workers``: processes for the per-core Dijkstra runs (default: up
    to 2 when there are several cores on a grid of >= 1 Mcells; 1 = in this process).
    The least-cost path from A to B ends at the cell of B cheapest to reach from A and is traced
    back through the Dijkstra predecessors; its cost is that cell's CWD_A.
    """
    graph = resistance if isinstance(resistance, CostGraph) else CostGraph(
        resistance, transform=transform, cell_size=cell_size, on_barrier=on_barrier)
    labels, *_ = _as_array(cores, name="cores")
    if labels.shape != graph.shape:
        raise InputError(f"cores shape {labels.shape} differs from resistance {graph.shape}",
                         source="cores", fix="put cores and resistance on one grid")
    labels = np.where(np.isfinite(labels.astype(float)), labels, 0).astype(np.int64)
    ids = sorted(int(c) for c in np.unique(labels) if c > 0)
    if not ids:
        raise InputError("the core raster holds no core (no label > 0)", source="cores",
                         fix="label cores 1, 2, ... (e.g. MSPA core patches)")
    pair_list = ([(min(a, b), max(a, b)) for a, b in pairs] if pairs is not None else
                 [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]])
    needed = sorted({c for p in pair_list for c in p} | (set(ids) if pairs is None else set()))
    unknown = sorted(set(needed) - set(ids))
    if unknown:
        raise InputError(f"core id(s) {unknown} not in the core raster", source="cores")
    cwd, pred = _run_cores(graph, labels, needed, workers)
    euclid = core_distances(labels, graph.transform, needed)
    euc = {(int(r.core_a), int(r.core_b)): r.euclid_m for r in euclid.itertuples()}
    w = graph.shape[1]
    rows = []
    for a, b in pair_list:
        ca = cwd[a].ravel()
        bcells = np.flatnonzero(labels.ravel() == b)
        vals = ca[bcells]
        e = euc.get((a, b), np.nan)
        if bcells.size == 0 or not np.isfinite(vals).any():
            rows.append({"core_a": a, "core_b": b, "reachable": False, "cost": np.nan,
                         "length_m": np.nan, "euclid_m": e, "cw_to_euc_dist_ratio": np.nan,
                         "cwd_to_path_length_ratio": np.nan, "via_cores": "",
                         "geometry": None})
            continue
        target = int(bcells[np.argmin(vals)])
        cost = float(ca[target])
        cd = CostDistance(cwd[a], np.zeros(0, np.int32), pred[a])
        cells = graph.trace(cd, divmod(target, w))
        length = graph.path_length(cells)
        on = labels[cells[:, 0], cells[:, 1]]
        via = sorted(set(int(v) for v in on if v > 0) - {a, b})
        rows.append({"core_a": a, "core_b": b, "reachable": True, "cost": cost,
                     "length_m": length, "euclid_m": e,
                     "cw_to_euc_dist_ratio": cost / e if e and e > 0 else np.nan,
                     "cwd_to_path_length_ratio": cost / length if length > 0 else np.nan,
                     "via_cores": ",".join(map(str, via)), "geometry": graph.line(cells)})
    cols = ["core_a", "core_b", "reachable", "cost", "length_m", "euclid_m",
            "cw_to_euc_dist_ratio", "cwd_to_path_length_ratio", "via_cores", "geometry"]
    links = _frame(rows, cols, graph.crs)
    n_bad = int((~links["reachable"]).sum())
    if n_bad:
        log.warning("%d core pair(s) cannot reach each other (barriers)", n_bad)
    return Linkage(graph, labels, needed, cwd, pred, links)


def _run_cores(graph: CostGraph, labels: np.ndarray, cores: list[int], workers: int | None
               ) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    if workers is None:
        big = graph.shape[0] * graph.shape[1] >= 1_000_000
        workers = min(2, os.cpu_count() or 1, len(cores)) if big else 1
    cwd: dict[int, np.ndarray] = {}
    pred: dict[int, np.ndarray] = {}
    if workers > 1 and len(cores) > 1:
        try:
            import mmap
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            # outputs in anonymous shared memory: the forked workers write, nothing is pickled
            h, w = graph.shape
            n = len(cores) * h * w
            cwd_all = np.frombuffer(mmap.mmap(-1, n * 8), np.float64).reshape(-1, h, w)
            pred_all = np.frombuffer(mmap.mmap(-1, n * 4), np.int32).reshape(-1, h, w)
            _WORKER.update(graph=graph, labels=labels, cores=cores, cwd=cwd_all,
                           pred=pred_all)
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
                for k in ex.map(_run_core, range(len(cores))):
                    cwd[cores[k]], pred[cores[k]] = cwd_all[k], pred_all[k].reshape(-1)
            return cwd, pred
        except (OSError, ValueError, RuntimeError) as exc:  # no fork: run in this process
            log.info("worker processes unavailable (%s); running serially", exc)
        finally:
            _WORKER.clear()
    for c in cores:
        cd = graph.cost_distance(labels == c)
        cwd[c], pred[c] = cd.cwd, cd.predecessor
    return cwd, pred


def rank_links(links: pd.DataFrame, *, by: RankBy = "cost", top: int | None = None
               ) -> pd.DataFrame:
    """Reachable links sorted ascending ``by`` cost, length or cwd_to_path_length_ratio (lower =
    better), with a 1-based ``rank``; the first ``top`` if given."""
    if by not in ("cost", "length_m", "cwd_to_path_length_ratio"):
        raise InputError(f"cannot rank links by {by!r}",
                         fix="use cost, length_m or cwd_to_path_length_ratio")
    out = links[links["reachable"]].sort_values([by, "core_a", "core_b"], kind="mergesort")
    out = out.assign(rank=np.arange(1, len(out) + 1))
    return out.head(top) if top is not None else out
