"""Importance of habitat cores for landscape connectivity: IIC, PC and dPC (Conefor indices).

Inputs: the area ``a_i`` of each core and a matrix ``d_ij`` of inter-core distances (Euclidean
edge-to-edge, e.g. :func:`layers.costpath.core_distances`, or least-cost costs from
:func:`layers.costpath.link_cores`); NaN or inf = no connection.

* **IIC** (integral index of connectivity; Pascual-Hortal & Saura 2006, Saura & Pascual-Hortal
  2007, *Landscape Urban Plan.* 83:91-103)::

      IIC = (1 / A_L^2) sum_i sum_j a_i a_j / (1 + nl_ij)

  with ``nl_ij`` the number of links on the shortest topological path between ``i`` and ``j``
  (a link joins two cores whose distance is <= the threshold; ``nl_ii = 0``; unconnected pairs
  contribute 0).
* **PC** (probability of connectivity; Saura & Pascual-Hortal 2007)::

      PC = (1 / A_L^2) sum_i sum_j a_i a_j p*_ij

  with ``p*_ij`` the maximum product probability over all paths between ``i`` and ``j``
  (``p*_ii = 1``), the direct probability following the Conefor convention
  ``p_ij = exp(-k d_ij)`` with ``k = -ln(p_t) / d_t`` so that ``p = p_t`` (default 0.5) at the
  distance threshold ``d_t`` (default :data:`DEFAULT_THRESHOLD_M` = 2,000 m, the usual value of
  Chinese ecological-security-pattern studies, methods.md 5.1). ``p*`` is found as a shortest
  path on ``-ln p_ij = k d_ij`` (Floyd-Warshall).
* **dI** (importance of core ``k``): ``dI_k = 100 (I - I_remove,k) / I``, ``I_remove,k`` being
  the index after removing core ``k`` and its links (``A_L`` unchanged).
* **Fractions** (Saura & Rubio 2010, *Ecography* 33:523-537): ``dPC_k = dPCintra_k +
  dPCflux_k + dPCconnector_k``; ``intra = 100 a_k^2 / (A_L^2 PC)`` (the core's own area),
  ``flux = 100 x 2 sum_{i != k} a_i a_k p*_ik / (A_L^2 PC)`` (flows starting or ending at
  ``k``), ``connector = dPC - intra - flux`` (k as a stepping stone between other cores);
  the same split is given for dIIC.

``A_L`` (the maximum landscape attribute, e.g. the study-area area) defaults to the total core
area; it scales IIC and PC but not the dI values or the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import floyd_warshall

from gis.errors import InputError

DEFAULT_THRESHOLD_M = 2000.0
DEFAULT_PROBABILITY = 0.5
DEFAULT_TOP = 5


def _validate(areas: Any, distances: Any) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    if isinstance(areas, pd.Series):
        ids = list(areas.index)
        a = areas.to_numpy(dtype=float)
    else:
        a = np.asarray(areas, dtype=float).ravel()
        ids = list(range(1, len(a) + 1))
    if isinstance(distances, pd.DataFrame):
        d = distances.loc[ids, ids].to_numpy(dtype=float) if isinstance(areas, pd.Series) \
            else distances.to_numpy(dtype=float)
    else:
        d = np.asarray(distances, dtype=float)
    n = len(a)
    if n == 0:
        raise InputError("no cores given", fix="pass the area of at least one core")
    if d.shape != (n, n):
        raise InputError(f"distance matrix is {d.shape}, expected ({n}, {n}) for {n} cores",
                         fix="give one row and one column per core, in the order of the areas")
    if (~np.isfinite(a)).any() or (a < 0).any():
        raise InputError("core areas must be finite and >= 0")
    if (d[np.isfinite(d)] < 0).any():
        raise InputError("distances must be >= 0 (NaN/inf = not connected)")
    d = np.where(np.isnan(d), np.inf, d)
    d = np.minimum(d, d.T)  # symmetric: the shorter of the two directions
    np.fill_diagonal(d, 0.0)
    return a, d, ids


def _shortest(w: np.ndarray) -> np.ndarray:
    """All-pairs shortest path on a dense weight matrix (inf = no edge; 0 = an edge of length 0,
    so the graph goes to scipy as explicit sparse entries: its dense reader drops zeros)."""
    if len(w) == 0:
        return w
    r, c = np.nonzero(np.isfinite(w) & ~np.eye(len(w), dtype=bool))
    g = sp.csr_array((w[r, c], (r, c)), shape=w.shape)
    out = floyd_warshall(g, directed=False)
    np.fill_diagonal(out, 0.0)
    return out


def _pc_matrix(d: np.ndarray, k: float) -> np.ndarray:
    """p*_ij: max-product probability = exp(-k x shortest path on d)."""
    return np.exp(-k * _shortest(d))


def _iic_matrix(d: np.ndarray, threshold: float) -> np.ndarray:
    """1 / (1 + nl_ij) with nl_ij the topological distance over links d_ij <= threshold."""
    hops = np.where(d <= threshold, 1.0, np.inf)
    np.fill_diagonal(hops, 0.0)
    nl = _shortest(hops)
    return np.where(np.isfinite(nl), 1.0 / (1.0 + nl), 0.0)


def _numerator(a: np.ndarray, m: np.ndarray) -> float:
    return float(a @ m @ a)


def _importance(a: np.ndarray, d: np.ndarray, matrix) -> tuple[float, np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """(index numerator, dI, intra, flux) for every core, matrix = d -> pairwise weights."""
    m = matrix(d)
    total = _numerator(a, m)
    n = len(a)
    di = np.zeros(n)
    for k in range(n):
        keep = np.arange(n) != k
        rest = _numerator(a[keep], matrix(d[np.ix_(keep, keep)]))
        di[k] = 100.0 * (total - rest) / total if total > 0 else 0.0
    if total > 0:
        intra = 100.0 * a**2 / total
        flux = 100.0 * 2.0 * (a * (m @ a) - a**2 * np.diag(m)) / total
    else:
        intra = flux = np.zeros(n)
    return total, di, intra, flux


def core_importance(areas: Any, distances: Any, *, threshold: float = DEFAULT_THRESHOLD_M,
                    probability: float = DEFAULT_PROBABILITY,
                    landscape_area: float | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Importance of each core for connectivity (see the module docstring for the formulas).

    ``areas``: core areas (a Series indexed by core id, or a sequence: ids 1..n);
    ``distances``: (n, n) matrix in the units of ``threshold`` (metres for Euclidean distances,
    cost-weighted metres for least-cost ones). Returns ``(table, landscape)``: the table has
    one row per core (``core``, ``area``, ``dIIC``, ``dIIC_intra``, ``dIIC_flux``,
    ``dIIC_connector``, ``dPC``, ``dPC_intra``, ``dPC_flux``, ``dPC_connector`` (all in %) and
    ``rank`` by dPC), and ``landscape`` holds ``IIC``, ``PC``, ``EC_PC`` (equivalent connected
    area, sqrt of the PC numerator), ``A_L``, ``k`` and the threshold.
    """
    a, d, ids = _validate(areas, distances)
    if not (threshold > 0 and math.isfinite(threshold)):
        raise InputError(f"distance threshold must be positive, got {threshold}")
    if not 0 < probability < 1:
        raise InputError(f"probability at the threshold must be in (0, 1), got {probability}")
    k = -math.log(probability) / threshold
    area_l = float(a.sum()) if landscape_area is None else float(landscape_area)
    if area_l <= 0:
        raise InputError("the landscape area A_L must be positive (cores have no area?)")
    pc_num, dpc, pc_in, pc_fl = _importance(a, d, lambda x: _pc_matrix(x, k))
    iic_num, diic, iic_in, iic_fl = _importance(a, d, lambda x: _iic_matrix(x, threshold))
    table = pd.DataFrame({
        "core": ids, "area": a,
        "dIIC": diic, "dIIC_intra": iic_in, "dIIC_flux": iic_fl,
        "dIIC_connector": np.maximum(diic - iic_in - iic_fl, 0.0),
        "dPC": dpc, "dPC_intra": pc_in, "dPC_flux": pc_fl,
        "dPC_connector": np.maximum(dpc - pc_in - pc_fl, 0.0),
    })
    # connector is >= 0 by construction; clip only float noise (1e-13 below zero)
    table["rank"] = table["dPC"].rank(ascending=False, method="first").astype(int)
    table = table.sort_values("rank").reset_index(drop=True)
    landscape = {"IIC": iic_num / area_l**2, "PC": pc_num / area_l**2,
                 "EC_PC": math.sqrt(pc_num), "A_L": area_l, "k": k,
                 "threshold": float(threshold), "probability": float(probability)}
    return table, landscape


def top_cores(table: pd.DataFrame, n: int = DEFAULT_TOP, *, by: str = "dPC",
              min_value: float | None = None) -> pd.DataFrame:
    """The ``n`` most important cores by ``by`` (dPC by default); with ``min_value`` only those
    above it (e.g. dPC > 1, a common cut in Chinese studies)."""
    if by not in table.columns:
        raise InputError(f"cannot rank cores by {by!r}", fix="use dPC, dIIC or area")
    out = table.sort_values([by, "area"], ascending=False, kind="mergesort")
    if min_value is not None:
        out = out[out[by] > min_value]
    return out.head(n).reset_index(drop=True)


def distance_matrix(links: pd.DataFrame, cores: Sequence[Any], *, column: str = "euclid_m"
                    ) -> pd.DataFrame:
    """A symmetric (core x core) matrix from a pair table (``core_a``, ``core_b``, ``column``),
    e.g. ``Linkage.links`` with ``cost`` or ``euclid_m``; missing or unreachable pairs = inf."""
    idx = {c: i for i, c in enumerate(cores)}
    m = np.full((len(cores), len(cores)), np.inf)
    np.fill_diagonal(m, 0.0)
    for rec in links.itertuples():
        a, b, v = rec.core_a, rec.core_b, getattr(rec, column)
        if a in idx and b in idx and v is not None and np.isfinite(v):
            m[idx[a], idx[b]] = m[idx[b], idx[a]] = float(v)
    return pd.DataFrame(m, index=list(cores), columns=list(cores))
