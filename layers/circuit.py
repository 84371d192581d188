"""Circuit theory on a resistance raster: Circuitscape 4 *raster pairwise* mode, sinkmap's own code.

McRae, Dickson, Keitt & Shah 2008, *Ecology* 89(10):2712-2724 (doi 10.1890/07-1861.1); methods
notes section 5.3. What is computed, and the rules (those of Circuitscape 4, checked against its
verification cases ``sgVerify1..14``, see ``tests/test_circuit.py``):

* **Nodes** are cells with conductance > 0. The map is resistance (g = 1/r) unless
  ``is_conductance=True``. NaN, the raster's nodata, +inf resistance and conductance 0 are
  *no node* (a barrier). A resistance of 0 is an error (infinite conductance: use a
  short-circuit polygon instead, as Circuitscape says); negative values are an error.
* **Edges** join 4 or 8 neighbours (``connectivity``) that are both nodes. Edge conductance is the
  mean of the two cells' conductances (``avg="conductance"``, Circuitscape's default
  ``connect_using_avg_resistances = False``) or 1 / mean resistance (``avg="resistance"``);
  diagonal edges are divided by sqrt 2.
* **Short-circuit polygons** (``polygons``, ids > 0): all cells of a polygon are one node (if at
  least one of its cells is a node); edges inside it vanish.
* **Focal nodes** (``focal``, ids > 0; 0 and negative ids are ignored, as Circuitscape does).
  When every id occupies one cell, one graph serves all pairs. When an id occupies several cells
  it is a *focal region*: as in Circuitscape 4, for the pair (i, j) the cells of region i (with
  any polygon overlapping it) are merged into one node, likewise region j, and the *other*
  regions stay ordinary cells -- so each pair has its own graph.
* **Effective resistance** of the pair (i, j), i < j: ground i, inject 1 A at j, R = V(j).
  A pair in different components (or with a focal node on no node) gets -1; two ids on the same
  node (e.g. inside one polygon) get 0.
* **Currents**: the current through a node is max(inflow, outflow) over its branches
  (Circuitscape 4 ``Output._get_node_currents``: the larger of the summed positive and summed
  negative branch currents; equal at interior nodes by Kirchhoff, 1 A at the two focal nodes).
  A merged node's current and voltage are written to all its cells. The cumulative map sums the
  pairs, the max map takes the per-cell maximum. Voltages are those of the solve (ground = 0 V).
  Circuitscape zeroes branch currents below 1e-8 of the largest; sinkmap does not (a difference
  below 1e-8 A per branch).

Solvers: a sparse LU (``scipy.sparse.linalg.splu``) of the grounded Laplacian of each connected
component holding focal nodes, factorised once and reused for all pairs when there are no focal
regions (k - 1 solves for k focal nodes: R_ij = X_ii + X_jj - 2 X_ij); above ``lu_max_nodes``
nodes, preconditioned conjugate gradients with a smoothed-aggregation multigrid preconditioner
built once on the grid (scipy only; pyamg is not needed) and all right-hand sides iterated
together.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import xarray as xr
from scipy.sparse.csgraph import connected_components

from gis.errors import GridMismatchError, InputError, SinkmapError

log = logging.getLogger(__name__)

SQRT2 = math.sqrt(2.0)
LU_MAX_NODES = 60_000


@dataclass
class CircuitResult:
    """Pairwise effective resistances and maps.

    ``pairs``: one row per pair (``from`` < ``to``; ``resistance`` -1 when not connected).
    Maps are float arrays on the input grid (DataArrays when the input was a DataArray):
    ``cumulative_current`` (sum over pairs), ``max_current`` (per-cell maximum over pairs),
    ``pair_currents`` / ``voltages`` keyed by (from, to) when asked for.
    """

    pairs: pd.DataFrame
    cumulative_current: Any = None
    max_current: Any = None
    pair_currents: dict[tuple[int, int], Any] = field(default_factory=dict)
    voltages: dict[tuple[int, int], Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def matrix(self) -> pd.DataFrame:
        """The Circuitscape-style square matrix (0 on the diagonal, -1 unreachable or not
        computed), indexed by focal id."""
        ids = sorted(set(self.pairs["from"]) | set(self.pairs["to"]))
        m = pd.DataFrame(-1.0, index=ids, columns=ids)
        for a, b, r in self.pairs[["from", "to", "resistance"]].itertuples(index=False):
            m.loc[a, b] = m.loc[b, a] = r
        for i in ids:
            m.loc[i, i] = 0.0
        return m


# -- inputs --------------------------------------------------------------------------------------

def _values(a: Any, name: str) -> tuple[np.ndarray, float | None]:
    if isinstance(a, xr.DataArray):
        nodata = a.rio.nodata if hasattr(a, "rio") else None
        return np.asarray(a.values), nodata
    if a is None:
        raise InputError(f"{name} is missing")
    return np.asarray(a), None


def conductance_map(values: np.ndarray, *, is_conductance: bool = False,
                    nodata: float | None = None, source: str = "resistance") -> np.ndarray:
    """Conductance per cell (0 = no node) by the rules in the module docstring."""
    v = np.asarray(values, dtype="float64")
    if v.ndim != 2:
        raise InputError(f"expected a 2-D raster, got shape {v.shape}", source=source)
    bad = np.isnan(v)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        bad |= v == nodata
    vv = np.where(bad, 0.0, v)
    if (vv < 0).any():
        n = int((vv < 0).sum())
        what = "conductance" if is_conductance else "resistance"
        raise InputError(f"{n} cell(s) have negative {what}",
                         source=source, fix="mark barriers as nodata (or 0 conductance); "
                         "resistances must be > 0")
    if is_conductance:
        g = np.where(np.isinf(vv), np.nan, vv)
        if np.isnan(g).any():
            raise InputError("infinite conductance", source=source,
                             fix="use a short-circuit polygon for zero-resistance areas")
        return g
    if ((vv == 0) & ~bad).any():
        n = int(((vv == 0) & ~bad).sum())
        raise InputError(f"{n} cell(s) have resistance 0 (infinite conductance)", source=source,
                         fix="give them nodata to make a barrier, or a short-circuit polygon "
                         "(polygons=...) to merge them")
    with np.errstate(divide="ignore"):
        g = np.where(vv > 0, 1.0 / np.where(vv > 0, vv, 1.0), 0.0)
    g[np.isinf(vv)] = 0.0
    return g


def _id_map(a: Any, shape: tuple[int, int], name: str) -> np.ndarray | None:
    if a is None:
        return None
    v, nodata = _values(a, name)
    if v.shape != shape:
        raise GridMismatchError(f"{name} has shape {v.shape}, the resistance raster {shape}",
                                source=name, fix=f"put {name} on the resistance grid")
    v = np.asarray(v, dtype="float64")
    bad = np.isnan(v)
    if nodata is not None:
        bad |= v == nodata
    out = np.where(bad, 0, v)
    if (out != np.round(out)).any():
        raise InputError(f"{name} must hold integer ids", source=name)
    out = out.astype("int64")
    out[out < 0] = 0
    return out


# -- graph ---------------------------------------------------------------------------------------

_DIRS4 = ((0, 1, 1.0), (1, 0, 1.0))
_DIRS8 = (*_DIRS4, (1, 1, SQRT2), (1, -1, SQRT2))


def _cell_edges(g: np.ndarray, connectivity: int, avg: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell-index edges (a, b) and their conductances, vectorised over the grid."""
    nr, nc = g.shape
    idx = np.arange(nr * nc, dtype=np.int64).reshape(nr, nc)
    aa, bb, ww = [], [], []
    for dr, dc, div in (_DIRS4 if connectivity == 4 else _DIRS8):
        if dc >= 0:
            sa = (slice(0, nr - dr), slice(0, nc - dc))
            sb = (slice(dr, nr), slice(dc, nc))
        else:
            sa = (slice(0, nr - dr), slice(-dc, nc))
            sb = (slice(dr, nr), slice(0, nc + dc))
        g1, g2 = g[sa], g[sb]
        m = (g1 > 0) & (g2 > 0)
        g1, g2 = g1[m], g2[m]
        w = (g1 + g2) / 2.0 if avg == "conductance" else 2.0 * g1 * g2 / (g1 + g2)
        if div != 1.0:
            w /= div
        aa.append(idx[sa][m])
        bb.append(idx[sb][m])
        ww.append(w)
    return np.concatenate(aa), np.concatenate(bb), np.concatenate(ww)


class _Graph:
    """Cells -> nodes labelling plus the node-space Laplacian."""

    def __init__(self, label: np.ndarray, n: int, ea: np.ndarray, eb: np.ndarray,
                 ew: np.ndarray):
        self.label = label  # flat, -1 = no node
        self.n = n
        u, v = label[ea].astype(np.int32), label[eb].astype(np.int32)
        keep = u != v
        self.u, self.v, self.w = u[keep], v[keep], ew[keep]
        del u, v, keep
        W = sp.coo_matrix((self.w, (self.u, self.v)), shape=(n, n)).tocsr()
        W = W + W.T
        self.W = W
        self.deg = np.asarray(W.sum(axis=1)).ravel()
        _, self.comp = connected_components(W, directed=False)

    def laplacian(self, nodes: np.ndarray) -> sp.csr_matrix:
        W = self.W if nodes.size == self.n else self.W[nodes][:, nodes]
        return (sp.diags(self.deg[nodes]) - W).tocsr()


def _labels(active: np.ndarray, merge: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Node label per cell: active cells get their own node, cells with the same ``merge`` id
    (> 0) share one node if any of them is active (then also its inactive cells)."""
    flat_active = active.ravel()
    key = np.where(flat_active, np.arange(flat_active.size, dtype=np.int64), -1)
    if merge is not None:
        mflat = merge.ravel()
        ids = np.unique(mflat[mflat > 0])
        if ids.size:
            has = np.zeros(ids.size, bool)
            pos = np.searchsorted(ids, mflat[mflat > 0])
            np.logical_or.at(has, pos, flat_active[mflat > 0])
            inm = np.flatnonzero(mflat > 0)
            live = has[pos]
            key[inm[live]] = flat_active.size + pos[live]
    used = key >= 0
    uniq, inv = np.unique(key[used], return_inverse=True)
    label = np.full(key.size, -1, dtype=np.int64)
    label[used] = inv
    return label, int(uniq.size)


# -- solvers -------------------------------------------------------------------------------------

class _LU:
    def __init__(self, A: sp.spmatrix):
        self.lu = spla.splu(sp.csc_matrix(A), permc_spec="MMD_AT_PLUS_A",
                            options={"SymmetricMode": True}, diag_pivot_thresh=0.0)

    def solve(self, B: np.ndarray) -> np.ndarray:
        return self.lu.solve(B)


class _AMG:
    """Smoothed-aggregation multigrid on a grid graph (scipy only), used as a CG preconditioner.

    Aggregates are 3 x 3 blocks of the nodes' representative cells (then 3 x 3 blocks of those),
    so no strength-of-connection search is needed; prolongation is the tentative (piecewise
    constant) one smoothed by one damped-Jacobi step; coarse operators are Galerkin P^T A P;
    smoothing is damped Jacobi (symmetric, so the V-cycle is a valid CG preconditioner).
    """

    def __init__(self, A: sp.csr_matrix, rc: np.ndarray, max_coarse: int = 3000,
                 omega: float = 2.0 / 3.0, sweeps: int = 2):
        self.levels: list[tuple[Any, ...]] = []
        self.sweeps = sweeps
        self.omega = omega
        rc = rc.copy()
        A = A.astype(np.float32)  # a preconditioner needs no more precision; half the traffic
        while A.shape[0] > max_coarse:
            d = A.diagonal()
            dinv = 1.0 / d
            rc //= 3
            key = rc[:, 0] * (int(rc[:, 1].max()) + 1) + rc[:, 1]
            uniq, agg = np.unique(key, return_inverse=True)
            nc = uniq.size
            if nc >= A.shape[0] * 0.9:
                break
            n = A.shape[0]
            T = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), agg)), shape=(n, nc))
            # rho(D^-1 A) <= 2 for a diagonally dominant Laplacian
            P = (T - sp.diags((2.0 / 3.0 * dinv).astype(np.float32)) @ (A @ T)).tocsr()
            P.data = P.data.astype(np.float32)
            R = P.T.tocsr()
            Ac = (R @ (A @ P)).tocsr()
            dinv = dinv.astype(np.float32)
            del T
            self.levels.append((A, dinv, P, R))
            first = np.zeros(nc, dtype=np.int64)
            first[agg] = np.arange(n)
            rc = rc[first]
            A = Ac
        self.coarse = spla.splu(sp.csc_matrix(A, dtype=np.float64), permc_spec="MMD_AT_PLUS_A")

    def _smooth(self, A, dinv, x, b):
        for _ in range(self.sweeps):
            x += self.omega * dinv[:, None] * (b - A @ x)
        return x

    def _cycle(self, lev: int, b: np.ndarray) -> np.ndarray:
        if lev == len(self.levels):
            return self.coarse.solve(b.astype(np.float64)).astype(np.float32)
        A, dinv, P, R = self.levels[lev]
        x = self.omega * dinv[:, None] * b
        if self.sweeps > 1:
            for _ in range(self.sweeps - 1):
                x += self.omega * dinv[:, None] * (b - A @ x)
        xc = self._cycle(lev + 1, R @ (b - A @ x))
        x += P @ xc
        return self._smooth(A, dinv, x, b)

    def __call__(self, B: np.ndarray) -> np.ndarray:
        return self._cycle(0, B.astype(np.float32)).astype(np.float64)


def _block_pcg(A: sp.csr_matrix, B: np.ndarray, M, tol: float, maxiter: int = 500,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Conjugate gradients on all columns of B at once (independent scalars per column).
    ``mask`` (n x k bool, True = unknown) restricts column j to a principal submatrix."""
    X = np.zeros_like(B)
    R = B.copy()
    if mask is not None:
        R *= mask
    Z = M(R)
    if mask is not None:
        Z *= mask
    P = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    bnorm = np.linalg.norm(B, axis=0)
    bnorm[bnorm == 0] = 1.0
    for it in range(maxiter):
        AP = A @ P
        if mask is not None:
            AP *= mask
        pap = np.einsum("ij,ij->j", P, AP)
        alpha = np.where(pap > 0, rz / np.where(pap > 0, pap, 1.0), 0.0)
        X += P * alpha
        R -= AP * alpha
        res = np.linalg.norm(R, axis=0) / bnorm
        if (res < tol).all():
            log.debug("block PCG converged in %d iterations", it + 1)
            return X
        Z = M(R)
        if mask is not None:
            Z *= mask
        rz_new = np.einsum("ij,ij->j", R, Z)
        beta = np.where(rz > 0, rz_new / np.where(rz > 0, rz, 1.0), 0.0)
        rz = rz_new
        P = Z + P * beta
    raise SinkmapError(f"conjugate gradients did not converge in {maxiter} iterations "
                       f"(relative residuals {res.max():.2e})",
                       fix="check for resistances spanning more than ~8 orders of magnitude")


# -- currents ------------------------------------------------------------------------------------

def _node_currents(gr: _Graph, v: np.ndarray) -> np.ndarray:
    """max(inflow, outflow) per node for node voltages v."""
    i = gr.w * (v[gr.u] - v[gr.v])  # > 0: from u to v
    pos = i > 0
    out = np.zeros(gr.n)
    inn = np.zeros(gr.n)
    out += np.bincount(gr.u[pos], i[pos], minlength=gr.n)
    out += np.bincount(gr.v[~pos], -i[~pos], minlength=gr.n)
    inn += np.bincount(gr.v[pos], i[pos], minlength=gr.n)
    inn += np.bincount(gr.u[~pos], -i[~pos], minlength=gr.n)
    return np.maximum(out, inn)


# -- main entry ----------------------------------------------------------------------------------

def pairwise(resistance: Any, focal: Any, *, connectivity: Literal[4, 8] = 8,
             avg: Literal["conductance", "resistance"] = "conductance",
             polygons: Any = None, is_conductance: bool = False,
             pairs: Iterable[tuple[int, int]] | None = None, currents: bool = True,
             pair_maps: bool = False, voltage_maps: bool = False,
             solver: Literal["auto", "lu", "cg"] = "auto", tol: float = 1e-10,
             lu_max_nodes: int = LU_MAX_NODES, batch: int = 4) -> CircuitResult:
    """Pairwise effective resistances between focal nodes (Circuitscape 4 raster pairwise).

    ``resistance``: 2-D array or DataArray (resistances, or conductances with
    ``is_conductance=True``); ``focal``: integer ids on the same grid (0 = none); ``polygons``:
    optional short-circuit region ids (0 = none); ``pairs``: optional (a, b) pairs to compute
    (Circuitscape's "included pairs"; default all). ``currents`` makes the cumulative and max
    current maps; ``pair_maps`` / ``voltage_maps`` keep the per-pair maps.
    See the module docstring for the rules.
    """
    t0 = time.perf_counter()
    if connectivity not in (4, 8):
        raise SinkmapError(f"connectivity must be 4 or 8, got {connectivity!r}")
    if avg not in ("conductance", "resistance"):
        raise SinkmapError(f"avg must be 'conductance' or 'resistance', got {avg!r}")
    if solver not in ("auto", "lu", "cg"):
        raise SinkmapError(f"solver must be 'auto', 'lu' or 'cg', got {solver!r}")
    template = resistance if isinstance(resistance, xr.DataArray) else None
    vals, nodata = _values(resistance, "resistance")
    g = conductance_map(vals, is_conductance=is_conductance, nodata=nodata,
                        source=str(getattr(resistance, "name", None) or "resistance"))
    shape = g.shape
    fmap = _id_map(focal, shape, "focal")
    pmap = _id_map(polygons, shape, "polygons")
    if fmap is None:
        raise InputError("focal ids are missing")
    active = g > 0
    ea, eb, ew = _cell_edges(g, connectivity, avg)
    timings = {"edges": time.perf_counter() - t0}

    fflat = fmap.ravel()
    fcells = np.flatnonzero(fflat > 0)
    fids = fflat[fcells]
    ids = np.unique(fids)
    counts = np.bincount(np.searchsorted(ids, fids), minlength=ids.size)
    regions = bool((counts > 1).any())
    pair_list = _pair_list(ids, pairs)

    res = {p: -1.0 for p in pair_list}
    pair_list_done = False
    ncell = g.size
    cum = np.zeros(ncell) if currents else None
    mx = np.zeros(ncell) if currents else None
    pcur: dict[tuple[int, int], np.ndarray] = {}
    pvolt: dict[tuple[int, int], np.ndarray] = {}

    def record(p: tuple[int, int], gr: _Graph, v: np.ndarray | None, r: float,
               fixed: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        res[p] = r
        if v is None:
            return
        lab = gr.label
        has = lab >= 0
        if currents or pair_maps:
            nc = _node_currents(gr, v)
            cmap = np.zeros(ncell)
            cmap[has] = nc[lab[has]]
            if fixed is not None:  # merged focal regions: 1 A through the merged node
                cmap[fixed[0]] = 1.0
                cmap[fixed[1]] = 1.0
            if currents:
                cum[:] += cmap
                np.maximum(mx, cmap, out=mx)
            if pair_maps:
                pcur[p] = cmap
        if voltage_maps:
            vmap = np.zeros(ncell)
            vmap[has] = v[lab[has]]
            if fixed is not None:
                vmap[fixed[0]] = 0.0
                vmap[fixed[1]] = r
            pvolt[p] = vmap

    if not regions:
        label, n = _labels(active, pmap)
        gr = _Graph(label, n, ea, eb, ew)
        timings["graph"] = time.perf_counter() - t0
        node_of = {int(i): int(label[c]) for i, c in zip(fids, fcells, strict=True)}
        _solve_shared(gr, node_of, pair_list, record, solver, tol, lu_max_nodes, shape,
                      need_v=currents or pair_maps or voltage_maps)
    else:
        order = np.argsort(fids, kind="stable")
        sf, sc = fids[order], fcells[order]
        starts = np.searchsorted(sf, ids)
        ends = np.searchsorted(sf, ids, side="right")
        cells_of = {int(i): sc[s:e] for i, s, e in zip(ids, starts, ends, strict=True)}
        if solver == "cg" or (solver == "auto" and int(active.sum()) > lu_max_nodes):
            label, n = _labels(active, pmap)
            gr = _Graph(label, n, ea, eb, ew)
            timings["graph"] = time.perf_counter() - t0
            _solve_regions_shared(gr, cells_of, pair_list, record, tol, shape,
                                  need_v=currents or pair_maps or voltage_maps,
                                  batch=batch, timings=timings, t0=t0)
            pair_list_done = True
        else:
            pair_list_done = False
    if regions and not pair_list_done:
        order = np.argsort(fids, kind="stable")
        sf, sc = fids[order], fcells[order]
        starts = np.searchsorted(sf, ids)
        ends = np.searchsorted(sf, ids, side="right")
        cells_of = {int(i): sc[s:e] for i, s, e in zip(ids, starts, ends, strict=True)}
        base_merge = np.zeros(ncell, dtype=np.int64) if pmap is None else pmap.ravel().copy()
        top = int(base_merge.max()) if base_merge.size else 0
        for p in pair_list:
            merge = base_merge.copy()
            nid = top + 1
            for rid in p:
                merge = _overlap(merge, cells_of[rid], nid)
                nid += 1
            label, n = _labels(active, merge.reshape(shape))
            gr = _Graph(label, n, ea, eb, ew)
            a = int(label[cells_of[p[0]][0]])
            b = int(label[cells_of[p[1]][0]])
            _solve_pair(gr, a, b, p, record, solver, tol, lu_max_nodes, shape,
                        need_v=currents or pair_maps or voltage_maps)
    timings["total"] = time.perf_counter() - t0

    df = pd.DataFrame([(a, b, res[(a, b)]) for a, b in pair_list],
                      columns=["from", "to", "resistance"])
    df[["from", "to"]] = df[["from", "to"]].astype("int64")

    def wrap(flat: np.ndarray | None, units: str, name: str):
        if flat is None:
            return None
        arr = flat.reshape(shape)
        if template is None:
            return arr
        da = xr.DataArray(arr, dims=template.dims, coords={d: template[d] for d in template.dims
                                                           if d in template.coords},
                          name=name, attrs={"units": units, "kind": "continuous"})
        if template.rio.crs is not None:
            da = da.rio.write_crs(template.rio.crs).rio.write_transform(template.rio.transform())
        return da

    return CircuitResult(
        pairs=df,
        cumulative_current=wrap(cum, "A", "cumulative_current"),
        max_current=wrap(mx, "A", "max_current"),
        pair_currents={p: wrap(m, "A", f"current_{p[0]}_{p[1]}") for p, m in pcur.items()},
        voltages={p: wrap(m, "V", f"voltage_{p[0]}_{p[1]}") for p, m in pvolt.items()},
        timings=timings)


def _pair_list(ids: np.ndarray, pairs: Iterable[tuple[int, int]] | None
               ) -> list[tuple[int, int]]:
    idset = {int(i) for i in ids}
    if pairs is None:
        return [(int(a), int(b)) for k, a in enumerate(ids) for b in ids[k + 1:]]
    out = set()
    for a, b in pairs:
        a, b = int(a), int(b)
        if a != b and a in idset and b in idset:
            out.add((min(a, b), max(a, b)))
    return sorted(out)


def _overlap(merge: np.ndarray, cells: np.ndarray, new_id: int) -> np.ndarray:
    """Circuitscape's overlap rule: the region's cells and every polygon they touch become one
    merged id."""
    touched = np.unique(merge[cells])
    touched = touched[touched > 0]
    if touched.size:
        merge = np.where(np.isin(merge, touched), new_id, merge)
    merge[cells] = new_id
    return merge


def _node_rc(gr: _Graph, nodes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A representative (row, col) per node, for geometric aggregation."""
    lab = gr.label
    cells = np.flatnonzero(lab >= 0)
    first = np.full(gr.n, -1, dtype=np.int64)
    first[lab[cells][::-1]] = cells[::-1]
    c = first[nodes]
    return np.stack([c // shape[1], c % shape[1]], axis=1)


def _factor(A: sp.csr_matrix, solver: str, lu_max_nodes: int, rc: np.ndarray):
    if solver == "lu" or (solver == "auto" and A.shape[0] <= lu_max_nodes):
        return _LU(A), None
    return None, _AMG(A, rc)


def _solve_shared(gr: _Graph, node_of: dict[int, int], pair_list, record, solver, tol,
                  lu_max_nodes, shape, need_v: bool) -> None:
    """No focal regions: per component, ground one focal node, factorise once, solve once per
    other focal node, and combine."""
    by_comp: dict[int, list[tuple[int, int]]] = {}
    for p in pair_list:
        a, b = node_of[p[0]], node_of[p[1]]
        if a < 0 or b < 0 or gr.comp[a] != gr.comp[b]:
            continue
        by_comp.setdefault(int(gr.comp[a]), []).append(p)
    for comp, plist in by_comp.items():
        fnodes = sorted({node_of[i] for p in plist for i in p})
        nodes = np.flatnonzero(gr.comp == comp)
        ground = fnodes[0]
        loc = np.full(gr.n, -1, dtype=np.int64)
        keep = nodes[nodes != ground]
        loc[keep] = np.arange(keep.size)
        others = [f for f in fnodes if f != ground]
        X = np.zeros((gr.n, len(fnodes)))  # columns: potential for 1 A in at f, out at ground
        col = {f: k for k, f in enumerate(fnodes)}
        if others:
            L = gr.laplacian(keep)
            B = np.zeros((keep.size, len(others)))
            B[loc[others], np.arange(len(others))] = 1.0
            lu, amg = _factor(L, solver, lu_max_nodes, _node_rc(gr, keep, shape))
            Y = lu.solve(B) if lu is not None else _block_pcg(L, B, amg, tol)
            for k, f in enumerate(others):
                X[keep, col[f]] = Y[:, k]
        for p in plist:
            a, b = node_of[p[0]], node_of[p[1]]
            if a == b:
                record(p, gr, np.zeros(gr.n) if need_v else None, 0.0)
                continue
            xa, xb = X[:, col[a]], X[:, col[b]]
            r = float(xa[a] + xb[b] - xa[b] - xb[a])
            v = None
            if need_v:
                v = np.zeros(gr.n)
                v[nodes] = (xb - xa)[nodes] - (xb[a] - xa[a])
            record(p, gr, v, r)


def _solve_pair(gr: _Graph, a: int, b: int, p, record, solver, tol, lu_max_nodes, shape,
                need_v: bool) -> None:
    """Focal regions: one graph per pair; ground a, 1 A in at b."""
    if a < 0 or b < 0 or gr.comp[a] != gr.comp[b]:
        return
    if a == b:
        record(p, gr, np.zeros(gr.n) if need_v else None, 0.0)
        return
    nodes = np.flatnonzero(gr.comp == gr.comp[a])
    keep = nodes[nodes != a]
    L = gr.laplacian(keep)
    rhs = np.zeros((keep.size, 1))
    rhs[np.searchsorted(keep, b), 0] = 1.0
    lu, amg = _factor(L, solver, lu_max_nodes, _node_rc(gr, keep, shape))
    y = (lu.solve(rhs) if lu is not None else _block_pcg(L, rhs, amg, tol))[:, 0]
    v = np.zeros(gr.n)
    v[keep] = y
    record(p, gr, v if need_v else None, float(v[b]))


def _solve_regions_shared(gr: _Graph, cells_of: dict[int, np.ndarray], pair_list, record,
                          tol: float, shape, need_v: bool, batch: int,
                          timings: dict[str, float], t0: float) -> None:
    """Focal regions on large grids, with Circuitscape 4's per-pair semantics but one
    preconditioner: for the pair (i, j) the nodes of region i (with overlapping polygons) are
    held at 0 V and those of region j at 1 V (the merged nodes of Circuitscape), every other
    node is free; R = 1 / (current leaving region j). The systems are principal submatrices of
    one graph Laplacian, solved together by masked block CG with one multigrid hierarchy built
    on the Laplacian plus a ground conductance at every focal-region node."""
    lab = gr.label
    D = {}
    for i, cells in cells_of.items():
        d = np.unique(lab[cells])
        D[i] = d[d >= 0]
    todo = []
    for p in pair_list:
        di, dj = D[p[0]], D[p[1]]
        if di.size == 0 or dj.size == 0:
            continue
        if np.intersect1d(di, dj).size:
            record(p, gr, np.zeros(gr.n) if need_v else None, 0.0)
            continue
        common = np.intersect1d(gr.comp[di], gr.comp[dj])
        if common.size:
            todo.append((p, common))
    if not todo:
        return
    comps = np.unique(np.concatenate([c for _, c in todo]))
    nodes = np.flatnonzero(np.isin(gr.comp, comps))
    loc = np.full(gr.n, -1, dtype=np.int64)
    loc[nodes] = np.arange(nodes.size)
    L = gr.laplacian(nodes)
    gr.W = None  # free the adjacency: L is all that is needed from here
    shift = np.zeros(nodes.size)
    dall = np.unique(np.concatenate(list(D.values())))
    dall = loc[dall[loc[dall] >= 0]]
    shift[dall] = gr.deg[nodes].mean()
    amg = _AMG((L + sp.diags(shift)).tocsr(), _node_rc(gr, nodes, shape))
    timings["multigrid setup"] = time.perf_counter() - t0 - timings.get("graph", 0.0)
    comp_loc = gr.comp[nodes]
    for k0 in range(0, len(todo), batch):
        chunk = todo[k0:k0 + batch]
        m = len(chunk)
        mask = np.zeros((nodes.size, m), dtype=bool)
        ind_j = np.zeros((nodes.size, m))
        ind_i = np.zeros((nodes.size, m), dtype=bool)
        for c, (p, common) in enumerate(chunk):
            mask[:, c] = np.isin(comp_loc, common)
            li, lj = loc[D[p[0]]], loc[D[p[1]]]
            li, lj = li[li >= 0], lj[lj >= 0]
            mask[li, c] = False
            mask[lj, c] = False
            ind_j[lj, c] = 1.0
            ind_i[li, c] = True
            # components reached only through region j sit at its potential
            only_j = np.setdiff1d(np.unique(comp_loc[lj]), common)
            if only_j.size:
                ind_j[np.isin(comp_loc, only_j) & ~ind_i[:, c], c] = 1.0
        B = -(L @ ind_j) * mask
        X = _block_pcg(L, B, amg, tol, mask=mask) + ind_j
        flux = np.einsum("ij,ij->j", (ind_j > 0) & ~mask, L @ X)
        for c, (p, _) in enumerate(chunk):
            r = float(1.0 / flux[c])
            v = None
            fixed = None
            if need_v:
                v = np.zeros(gr.n)
                v[nodes] = X[:, c] * r
                ci = np.union1d(cells_of[p[0]], np.flatnonzero(np.isin(lab, D[p[0]])))
                cj = np.union1d(cells_of[p[1]], np.flatnonzero(np.isin(lab, D[p[1]])))
                fixed = (ci, cj)
            record(p, gr, v, r, fixed)
        timings[f"pairs {k0 + 1}-{k0 + m}"] = time.perf_counter() - t0
