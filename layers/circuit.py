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

Solvers: up to ``lu_max_nodes`` nodes a sparse LU (``scipy.sparse.linalg.splu``) of the grounded
Laplacian: for focal points one factorisation per component serves all pairs (R_ij = X_ii + X_jj -
2 X_ij), for focal regions each pair's merged graph is factorised. Above it (or ``solver="cg"``)
one graph serves every pair, focal points and regions alike (:func:`_solve_cg`): the k - 1
"harmonic measures" of the focal regions (each at 1 V, the others at 0 V), then per pair the
least-energy combination of them -- exact for focal points, all but exact for regions, which CG
on the pair's own system finishes in a few steps -- and R = 1 / energy, accurate to about the
square of the solver's tolerance. CG is preconditioned by a smoothed-aggregation multigrid cycle
(V at the finest level, W below; scipy only; pyamg is not needed) built once; ``tol`` is CG's
relative residual (1e-6: the resistances then agree with a 1e-10 solve to ~1e-9 relative, the
currents to ~1e-5 of the largest). The independent solves run ``WORKERS`` (2) at a time in
threads; the main thread makes each pair's current map while the next pairs solve.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
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
#: other focal regions larger than this (in nodes, or 0.1 % of the grid) get a per-pair
#: multigrid preconditioner instead of the shared one
PAIR_PRECONDITIONER_NODES = 2_000
#: threads for the independent CG solves of the large-grid solver (scipy's sparse products and
#: numpy's array arithmetic release the GIL; measured 1.3-1.5x on 2 cores, memory-bound)
WORKERS = max(1, min(2, os.cpu_count() or 1))


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


Slice2 = tuple[slice, slice]


def _grid_dirs(g: np.ndarray, connectivity: int, avg: str
               ) -> list[tuple[Slice2, Slice2, np.ndarray]]:
    """Per neighbour direction: the slices of the two ends and the edge conductances on the
    grid (0 = no edge)."""
    nr, nc = g.shape
    out = []
    for dr, dc, div in (_DIRS4 if connectivity == 4 else _DIRS8):
        if dc >= 0:
            sa = (slice(0, nr - dr), slice(0, nc - dc))
            sb = (slice(dr, nr), slice(dc, nc))
        else:
            sa = (slice(0, nr - dr), slice(-dc, nc))
            sb = (slice(dr, nr), slice(0, nc + dc))
        g1, g2 = g[sa], g[sb]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = (g1 + g2) / 2.0 if avg == "conductance" else 2.0 * g1 * g2 / (g1 + g2)
        w[(g1 <= 0) | (g2 <= 0)] = 0.0
        if div != 1.0:
            w /= div
        out.append((sa, sb, w))
    return out


def _cell_edges(dirs: list[tuple[Slice2, Slice2, np.ndarray]], shape: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cell-index edges (a, b) and their conductances."""
    size = shape[0] * shape[1]
    idx = np.arange(size, dtype=np.int32 if size < 2**31 else np.int64).reshape(shape)
    aa, bb, ww = [], [], []
    for sa, sb, w in dirs:
        m = w > 0
        aa.append(idx[sa][m])
        bb.append(idx[sb][m])
        ww.append(w[m])
    return np.concatenate(aa), np.concatenate(bb), np.concatenate(ww)


def _cell_currents(label: np.ndarray, n: int, dirs: list[tuple[Slice2, Slice2, np.ndarray]],
                   shape: tuple[int, int], v: np.ndarray) -> np.ndarray:
    """max(inflow, outflow) per node for node voltages v, written to the node's cells (flat);
    vectorised over the grid (``dirs`` with 0 on edges inside a merged node)."""
    v_ext = np.empty(n + 1)  # label -1 (no node) reads the trailing 0
    v_ext[:n] = v
    v_ext[n] = 0.0
    vc = v_ext[label].reshape(shape)
    del v_ext
    out = np.zeros(shape)
    inn = np.zeros(shape)
    for sa, sb, w in dirs:
        i = vc[sa] - vc[sb]  # > 0: from a to b
        i *= w
        pos = np.maximum(i, 0.0)
        out[sa] += pos
        inn[sb] += pos
        pos -= i  # the flow from b to a
        inn[sa] += pos
        out[sb] += pos
        del i, pos
    out, inn = out.ravel(), inn.ravel()
    has = label >= 0
    if n < int(has.sum()):  # merged nodes: sum over their cells
        lab = label[has]
        out[has] = np.bincount(lab, out[has], minlength=n)[lab]
        inn[has] = np.bincount(lab, inn[has], minlength=n)[lab]
    return np.maximum(out, inn, out=out)


class _Graph:
    """Cells -> nodes labelling plus the node-space Laplacian."""

    def __init__(self, label: np.ndarray, n: int, ea: np.ndarray, eb: np.ndarray,
                 ew: np.ndarray, shape: tuple[int, int] | None = None):
        self.colors: np.ndarray | None = None
        self.rc: np.ndarray | None = None
        if shape is not None:
            # number the nodes by multigrid colour (grid parity; nodes coupled to a neighbour
            # of their own colour, i.e. merged polygons, go last) for the multicolour smoother
            cells = np.flatnonzero(label >= 0)
            first = np.zeros(n, dtype=np.int64)
            first[label[cells][::-1]] = cells[::-1]
            rc = np.stack([first // shape[1], first % shape[1]], axis=1).astype(np.int32)
            del first
            col = _grid_colors(rc)
            if n < cells.size:  # merged nodes: two of one colour may be coupled
                u, v = label[ea], label[eb]
                clash = (col[u] == col[v]) & (u != v)
                col[u[clash]] = 4
                col[v[clash]] = 4
                del u, v, clash
            del cells
            order = np.argsort(col, kind="stable")
            rank = np.empty(n, dtype=np.int32)
            rank[order] = np.arange(n, dtype=np.int32)
            label = np.where(label >= 0, rank[np.maximum(label, 0)], -1).astype(np.int32)
            self.colors, self.rc = col[order], rc[order]
            del order, rank, rc, col
        u, v = label[ea].astype(np.int32), label[eb].astype(np.int32)
        keep = u != v
        if keep.all():
            w = ew
        else:
            u, v, w = u[keep], v[keep], ew[keep]
        del keep
        self.label = label  # flat, -1 = no node
        self.n = n
        self.dirs: list[tuple[Slice2, Slice2, np.ndarray]] | None = None
        self.u, self.v, self.w = u, v, w
        # the Laplacian in one COO -> CSR conversion (it sums parallel edges of merged nodes)
        self.deg = np.bincount(u, w, minlength=n) + np.bincount(v, w, minlength=n)
        diag = np.arange(n, dtype=np.int32)
        L = sp.coo_matrix((np.concatenate([-w, -w, self.deg]),
                           (np.concatenate([u, v, diag]), np.concatenate([v, u, diag]))),
                          shape=(n, n)).tocsr()
        del diag
        self.L: sp.csr_matrix | None = L
        _, self.comp = connected_components(L, directed=False)

    def laplacian(self, nodes: np.ndarray) -> sp.csr_matrix:
        """The principal submatrix of the Laplacian on ``nodes`` (sorted)."""
        assert self.L is not None
        return self.L if nodes.size == self.n else self.L[nodes][:, nodes].tocsr()


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


def _diag_positions(A: sp.csr_matrix) -> np.ndarray | None:
    """Index into A.data of each row's diagonal entry (None if a row has none)."""
    rows = np.repeat(np.arange(A.shape[0], dtype=A.indices.dtype), np.diff(A.indptr))
    pos = np.flatnonzero(rows == A.indices)
    del rows
    if pos.size != A.shape[0]:
        return None
    return pos.astype(np.int32) if A.nnz < 2**31 else pos


def _grid_colors(rc: np.ndarray) -> np.ndarray:
    """Colour 0..3 by the parity of (row, col): no two 8-neighbours share one."""
    return ((rc[:, 0] & 1) * 2 + (rc[:, 1] & 1)).astype(np.int8)


def _row_block(A: sp.csr_matrix, s: int, e: int) -> sp.csr_matrix:
    """Rows s..e-1 of A as a CSR matrix sharing A's data and indices (set after construction:
    scipy's constructor copies a slice that is under half of its base)."""
    ip = A.indptr[s:e + 1]
    a, b = int(ip[0]), int(ip[-1])
    blk = sp.csr_matrix((e - s, A.shape[1]), dtype=A.dtype)
    blk.data, blk.indices = A.data[a:b], A.indices[a:b]
    blk.indptr = (ip - a).astype(A.indptr.dtype)
    return blk


class _Level:
    """One multigrid level: its matrix with the nodes sorted by colour, and a multicolour
    Gauss-Seidel smoother (nodes of one colour are not coupled, so each colour is one
    vectorised update). Nodes whose colour clashes with a neighbour's (merged polygons) form a
    last class smoothed by damped Jacobi."""

    def __init__(self, A: sp.csr_matrix, colors: np.ndarray):
        self.A = A
        self.dinv = (1.0 / A.diagonal()).astype(A.dtype)[:, None]  # x and b are n x k
        bounds = np.searchsorted(colors, np.arange(6))
        self.blocks: list[tuple[int, int, sp.csr_matrix, float]] = []
        for c in range(5):
            s, e = int(bounds[c]), int(bounds[c + 1])
            if e > s:
                self.blocks.append((s, e, _row_block(A, s, e), 1.0 if c < 4 else 0.5))
        self.head = _row_block(A, 0, self.blocks[-1][0])  # the rows before the last colour

    def forward(self, x: np.ndarray, b: np.ndarray, zero: bool) -> None:
        for k, (s, e, Ab, w) in enumerate(self.blocks):
            if zero and k == 0:
                np.multiply(b[s:e], self.dinv[s:e], out=x[s:e])
                if w != 1.0:
                    x[s:e] *= w
                continue
            t = b[s:e] - Ab @ x
            t *= self.dinv[s:e]
            if w != 1.0:
                t *= w
            x[s:e] += t

    def residual(self, x: np.ndarray, b: np.ndarray, after_forward: bool) -> np.ndarray:
        """b - A x; right after a forward sweep the last colour's rows are 0 already (each
        colour's update zeroes its own residual), so only the rows before it are computed."""
        s_last, _, _, w_last = self.blocks[-1]
        if not (after_forward and w_last == 1.0 and s_last > 0):
            r = self.A @ x
            return np.subtract(b, r, out=r)
        r = np.zeros_like(b)
        np.subtract(b[:s_last], self.head @ x, out=r[:s_last])
        return r

    def backward(self, x: np.ndarray, b: np.ndarray) -> None:
        for s, e, Ab, w in reversed(self.blocks):
            t = b[s:e] - Ab @ x
            t *= self.dinv[s:e]
            if w != 1.0:
                t *= w
            x[s:e] += t


def _colour_sort(A: sp.csr_matrix, rc: np.ndarray) -> np.ndarray:
    """Colours by grid parity, with clashing nodes (coupled to a neighbour of their colour)
    moved to class 4."""
    col = _grid_colors(rc)
    rows = np.repeat(np.arange(A.shape[0], dtype=np.int32), np.diff(A.indptr))
    clash = (col[rows] == col[A.indices]) & (rows != A.indices)
    if clash.any():
        col[rows[clash]] = 4
    return col


class _AMG:
    """Smoothed-aggregation multigrid on a grid graph (scipy only), used as a CG preconditioner.

    Aggregates are 3 x 3 blocks of the nodes' representative cells (then 3 x 3 blocks of those),
    so no strength-of-connection search is needed; prolongation is the tentative (piecewise
    constant) one smoothed by one damped-Jacobi step; coarse operators are Galerkin P^T A P
    (9-point stencils on the block grid again). The smoother is four-colour Gauss-Seidel,
    forward before and backward after the coarse correction, so the V-cycle is symmetric (a
    valid CG preconditioner). Single precision throughout: a preconditioner needs no more.

    ``A``'s nodes must be sorted by ``colors`` (see :class:`_Graph`).
    """

    def __init__(self, A: sp.csr_matrix, rc: np.ndarray, colors: np.ndarray,
                 max_coarse: int = 3000):
        self.levels: list[tuple[_Level, sp.csr_matrix]] = []
        rc = rc // 1
        if A.dtype != np.float32:
            A = A.astype(np.float32)
        while A.shape[0] > max_coarse:
            n = A.shape[0]
            lev = _Level(A, colors)
            rc //= 3
            key = rc[:, 0].astype(np.int64) * (int(rc[:, 1].max()) + 1) + rc[:, 1]
            uniq, agg = np.unique(key, return_inverse=True)
            nc = uniq.size
            if nc >= n * 0.9:
                break
            first = np.zeros(nc, dtype=np.int64)
            first[agg] = np.arange(n)
            crc = rc[first]
            T = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), agg)), shape=(n, nc))
            # rho(D^-1 A) <= 2 for a diagonally dominant Laplacian: omega = 4/3 / 2
            P = (T - sp.diags(2.0 / 3.0 * lev.dinv[:, 0]) @ (A @ T)).tocsr()
            del T
            P.data = P.data.astype(np.float32)
            Ac = (P.T.tocsr() @ (A @ P)).tocsr()
            # number the coarse nodes by colour too
            ccol = _colour_sort(Ac, crc)
            order = np.argsort(ccol, kind="stable")
            rank = np.empty(nc, dtype=P.indices.dtype)
            rank[order] = np.arange(nc)
            P.indices = rank[P.indices]
            P.has_sorted_indices = False
            P.sort_indices()
            Ac = Ac[order][:, order].tocsr()
            self.levels.append((lev, P))
            rc = crc[order]
            colors = ccol[order]
            A = Ac
        self.coarse = spla.splu(sp.csc_matrix(A, dtype=np.float64), permc_spec="MMD_AT_PLUS_A")
        self._lock = threading.Lock()  # SuperLU's solve is not documented as thread-safe

    def _cycle(self, k: int, b: np.ndarray) -> np.ndarray:
        if k == len(self.levels):
            with self._lock:
                return self.coarse.solve(b.astype(np.float64)).astype(np.float32)
        lev, P = self.levels[k]
        x = np.zeros_like(b)
        lev.forward(x, b, zero=True)
        # a W-cycle below the finest level (two coarse corrections: 15 -> 12 CG iterations on
        # the 2000 x 2000 benchmark for ~10 % more work per cycle); still symmetric
        for visit in range(1 if k == 0 else 2):
            r = lev.residual(x, b, after_forward=visit == 0)
            x += P @ self._cycle(k + 1, P.T @ r)  # restriction by the transpose (CSC) view
            del r
        lev.backward(x, b)
        return x

    def __call__(self, B: np.ndarray) -> np.ndarray:
        """The V-cycle applied to the columns of B (n x k), in single precision."""
        return self._cycle(0, np.ascontiguousarray(B, dtype=np.float32))


def _block_pcg(A: sp.csr_matrix, B: np.ndarray, M: _AMG, fixed: list[np.ndarray], tol: float,
               X: np.ndarray | None = None, maxiter: int = 500) -> np.ndarray:
    """Preconditioned conjugate gradients for A x = b, one independent iteration per column of
    B (n x k) with the products and V-cycles of all columns done together. Column c lives on
    the nodes not in ``fixed[c]`` (held at 0: a principal submatrix of A); it stops at
    ||b - A x|| <= tol ||b||. Returns X (n x k; the given X updated in place when it is
    float64 and C-ordered). B becomes the residual when it is float64 and C-ordered."""
    n, k = B.shape
    R = np.require(B, np.float64, "C")
    X = np.zeros((n, k)) if X is None else np.require(X, np.float64, "C")

    def pin(Y: np.ndarray, cols: list[int]) -> None:
        for j, c in enumerate(cols):
            Y[fixed[c], j] = 0.0

    pin(R, list(range(k)))
    bnorm = np.linalg.norm(R, axis=0)
    if X.any():
        R -= A @ X
        pin(R, list(range(k)))
    act = [c for c in range(k) if bnorm[c] > 0 and np.linalg.norm(R[:, c]) > tol * bnorm[c]]
    if not act:
        return X
    if len(act) < k:
        R = np.ascontiguousarray(R[:, act])
    P = np.zeros_like(R)
    rz = np.ones(len(act))
    res = np.zeros(len(act))
    for it in range(1, maxiter + 1):
        Z = M(R)
        pin(Z, act)
        rz_new = np.einsum("ij,ij->j", R, Z)
        P *= rz_new / rz  # 0 on the first iteration
        P += Z
        del Z
        rz = rz_new
        Q = A @ P
        pin(Q, act)
        pq = np.einsum("ij,ij->j", P, Q)
        alpha = np.divide(rz, pq, out=np.zeros_like(rz), where=pq > 0)
        for j, c in enumerate(act):
            X[:, c] += alpha[j] * P[:, j]
        Q *= alpha
        R -= Q
        del Q
        res = np.where(alpha != 0, np.linalg.norm(R, axis=0) / bnorm[act], 0.0)
        done = res <= tol
        if done.all():
            log.debug("block PCG (%d columns) converged in %d iterations", k, it)
            return X
        if done.any():
            keep = np.flatnonzero(~done)
            act = [act[j] for j in keep]
            R, P = np.ascontiguousarray(R[:, keep]), np.ascontiguousarray(P[:, keep])
            rz, res = rz[keep], res[keep]
    raise SinkmapError(f"conjugate gradients did not converge in {maxiter} iterations "
                       f"(relative residual {res.max():.2e})",
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
             solver: Literal["auto", "lu", "cg"] = "auto", tol: float = 1e-6,
             lu_max_nodes: int = LU_MAX_NODES) -> CircuitResult:
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
    dirs = _grid_dirs(g, connectivity, avg)
    del g
    ea, eb, ew = _cell_edges(dirs, shape)
    timings = {"edges": time.perf_counter() - t0}

    fflat = fmap.ravel()
    fcells = np.flatnonzero(fflat > 0)
    fids = fflat[fcells]
    ids = np.unique(fids)
    counts = np.bincount(np.searchsorted(ids, fids), minlength=ids.size)
    regions = bool((counts > 1).any())
    pair_list = _pair_list(ids, pairs)

    res = {p: -1.0 for p in pair_list}
    ncell = shape[0] * shape[1]
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
            if gr.dirs is not None:
                cmap = _cell_currents(lab, gr.n, gr.dirs, shape, v)
            else:
                cmap = np.zeros(ncell)
                cmap[has] = _node_currents(gr, v)[lab[has]]
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

    need_v = currents or pair_maps or voltage_maps
    order = np.argsort(fids, kind="stable")
    sf, sc = fids[order], fcells[order]
    starts = np.searchsorted(sf, ids)
    ends = np.searchsorted(sf, ids, side="right")
    cells_of = {int(i): sc[s:e] for i, s, e in zip(ids, starts, ends, strict=True)}
    del order, sf, sc
    if solver == "cg" or (solver == "auto" and int(active.sum()) > lu_max_nodes):
        label, n = _labels(active, pmap)
        gr = _Graph(label, n, ea, eb, ew, shape=shape)
        del ea, eb, ew, label
        gr.u = gr.v = gr.w = None  # type: ignore[assignment]
        if gr.n < int(active.sum()):  # no current inside a merged node
            lab2 = gr.label.reshape(shape)
            for sa, sb, w in dirs:
                w[lab2[sa] == lab2[sb]] = 0.0
        # the current maps need no more than single precision (half the memory)
        gr.dirs = [(sa, sb, w.astype(np.float32)) for sa, sb, w in dirs]
        del dirs
        timings["graph"] = time.perf_counter() - t0
        _solve_cg(gr, cells_of, pair_list, record, tol, need_v, timings, t0)
    elif not regions:
        label, n = _labels(active, pmap)
        gr = _Graph(label, n, ea, eb, ew)
        timings["graph"] = time.perf_counter() - t0
        node_of = {int(i): int(label[c]) for i, c in zip(fids, fcells, strict=True)}
        _solve_shared(gr, node_of, pair_list, record, need_v=need_v)
    else:
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
            _solve_pair(gr, a, b, p, record, need_v=need_v)
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


def _solve_shared(gr: _Graph, node_of: dict[int, int], pair_list, record,
                  need_v: bool) -> None:
    """No focal regions, LU: per component, ground one focal node, factorise once, solve once
    per other focal node, and combine."""
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
            Y = _LU(L).solve(B)
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


def _solve_pair(gr: _Graph, a: int, b: int, p, record, need_v: bool) -> None:
    """Focal regions, LU: one graph per pair; ground a, 1 A in at b."""
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
    y = _LU(L).solve(rhs)[:, 0]
    v = np.zeros(gr.n)
    v[keep] = y
    record(p, gr, v if need_v else None, float(v[b]))


def _solve_cg(gr: _Graph, cells_of: dict[int, np.ndarray], pair_list, record, tol: float,
              need_v: bool, timings: dict[str, float], t0: float) -> None:
    """Large grids, focal points or regions, by multigrid-preconditioned CG on one graph.

    For the pair (i, j) the nodes of focal region i (with overlapping polygons) are held at
    0 V and those of region j at 1 V -- Circuitscape 4's two merged nodes -- and every other
    node is free; R = 1 / (the energy of that potential), which is the conductance between the
    two merged nodes and, unlike the current leaving j, has an error quadratic in that of the
    potential. One multigrid hierarchy serves every solve. The solves:

    1. basis: u_k, the potential with region k at 1 V and every other focal region at 0 V
       (k - 1 solves for k regions: they sum to 1).
    2. per pair, the combination u_j + sum_o a_o u_o (o: the other regions) of least energy.
       With single-node regions (focal points) that is the exact solution -- the other regions
       float at the potentials a_o -- and with regions it is all but exact (it treats them as
       merged nodes), so CG on the pair's own system, started from it, ends in a few steps.
    """
    lab = gr.label
    D: dict[int, np.ndarray] = {}
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
    if comps.size == int(gr.comp.max()) + 1:
        nodes = np.arange(gr.n)
    else:
        nodes = np.flatnonzero(np.isin(gr.comp, comps))
    L = gr.laplacian(nodes)
    gr.L = None  # only the submatrix is needed from here
    nn = nodes.size
    loc = np.full(gr.n, -1, dtype=np.int64)
    loc[nodes] = np.arange(nn)
    regs = sorted({i for p, _ in todo for i in p})
    Dl = {}
    for i in regs:
        d = loc[D[i]]
        Dl[i] = d[d >= 0]
    del loc
    dall = np.unique(np.concatenate([Dl[i] for i in regs]))
    # the preconditioner: the Laplacian with a ground at every focal node (the basis systems
    # hold them all; a pair's frees the other regions' nodes, a low-rank difference)
    assert gr.rc is not None and gr.colors is not None
    ground = np.float32(gr.deg[nodes].mean())
    gr.deg = None  # type: ignore[assignment]
    diag_pos = _diag_positions(L)
    rc_loc, col_loc = gr.rc[nodes], gr.colors[nodes]
    gr.rc = None

    def grounded_amg(grounded: np.ndarray) -> _AMG:
        """The multigrid of L with a ground (diagonal shift) at the ``grounded`` nodes."""
        if diag_pos is not None:  # share L's index arrays
            A = sp.csr_matrix((L.data.astype(np.float32), L.indices, L.indptr), shape=L.shape,
                              copy=False)
            A.data[diag_pos[grounded]] += ground
        else:
            shift = np.zeros(nn, dtype=np.float32)
            shift[grounded] = ground
            A = (L.astype(np.float32) + sp.diags(shift)).tocsr()
        return _AMG(A, rc_loc, col_loc)

    amg = grounded_amg(dall)
    timings["multigrid setup"] = time.perf_counter() - t0
    comp_loc = gr.comp[nodes]
    m = len(regs)

    # 1. basis, then 2. the pairs: independent CG solves, WORKERS at a time (threads: the
    # sparse products release the GIL; one product over k columns at once is slower in scipy
    # than k products)
    def basis(k: int) -> np.ndarray:
        ind = np.zeros(nn)
        ind[Dl[k]] = 1.0
        x = _block_pcg(L, -(L @ ind)[:, None], amg, [dall], tol)[:, 0]
        x += ind
        return x

    U = np.empty((nn, m), order="F")  # contiguous columns
    with ThreadPoolExecutor(WORKERS) as pool:
        for c, u in enumerate(pool.map(basis, regs[:-1])):
            U[:, c] = u
            del u
    in_last = np.isin(comp_loc, np.unique(comp_loc[Dl[regs[-1]]]))
    last = U[:, -1]
    last[:] = in_last
    last -= U[:, :-1].sum(axis=1)
    last[~in_last] = 0.0
    del in_last
    G = np.zeros((m, m))
    for c in range(m):
        LU = L @ U[:, c]
        for c2 in range(c, m):
            G[c, c2] = G[c2, c] = float(U[:, c2] @ LU)
        del LU
    timings["basis"] = time.perf_counter() - t0
    col = {i: c for c, i in enumerate(regs)}

    def solve(item: tuple[tuple[int, int], np.ndarray]) -> tuple[Any, ...]:
        """The pair's own system, from the least-energy combination of the basis."""
        p, common = item
        ci, cj = col[p[0]], col[p[1]]
        li, lj = Dl[p[0]], Dl[p[1]]
        free = np.isin(comp_loc, common)
        free[li] = False
        free[lj] = False
        fixed = np.flatnonzero(~free)
        del free
        ind_j = np.zeros(nn)
        ind_j[lj] = 1.0
        # components reached only through region j sit at its potential
        only_j = np.setdiff1d(np.unique(comp_loc[lj]), common)
        if only_j.size:
            ind_j[np.isin(comp_loc, only_j)] = 1.0
            ind_j[li] = 0.0
        o = [c2 for c2 in range(m) if c2 not in (ci, cj)]
        X = np.empty((nn, 1))
        x = X[:, 0]
        x[:] = U[:, cj]
        if o:
            a = np.linalg.lstsq(G[np.ix_(o, o)], -G[o, cj], rcond=None)[0]
            for c2, ac in zip(o, a, strict=True):
                x += ac * U[:, c2]
        x[fixed] = 0.0
        B = -(L @ ind_j)[:, None]
        others = dall.size - np.union1d(li, lj).size
        # large other regions: grounding them (the shared preconditioner) is a high-rank
        # error and CG stalls; ground the pair's two regions only
        if others <= max(PAIR_PRECONDITIONER_NODES, nn // 1000):
            X = _block_pcg(L, B, amg, [fixed], tol, X=X)
        else:
            with own_preconditioner:  # one such hierarchy at a time (memory)
                X = _block_pcg(L, B, grounded_amg(np.union1d(li, lj)), [fixed], tol, X=X)
        del B
        x = X[:, 0]
        x += ind_j
        return p, x, 1.0 / float(x @ (L @ x))

    cells_cache: dict[int, np.ndarray] = {}

    def region_cells(i: int) -> np.ndarray:
        """The cells of focal region i and of the nodes it touches (merged polygons)."""
        if i not in cells_cache:
            cells_cache[i] = np.union1d(cells_of[i], np.flatnonzero(np.isin(lab, D[i])))
        return cells_cache[i]

    def finish(p: tuple[int, int], x: np.ndarray, r: float) -> None:
        v = None
        fixed_cells = None
        if need_v:
            if nn == gr.n:  # every node: scale the solution in place
                v = x
                v *= r
            else:
                v = np.zeros(gr.n)
                v[nodes] = x * r
            del x
            fixed_cells = (region_cells(p[0]), region_cells(p[1]))
        record(p, gr, v, r, fixed_cells)
        timings[f"pair {p[0]}-{p[1]}"] = time.perf_counter() - t0

    own_preconditioner = threading.Lock()
    with ThreadPoolExecutor(WORKERS) as pool:  # the main thread records while others solve
        pending: deque[Future] = deque()
        for item in todo:
            pending.append(pool.submit(solve, item))
            if len(pending) >= WORKERS:
                finish(*pending.popleft().result())
        while pending:
            finish(*pending.popleft().result())
