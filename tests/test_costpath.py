"""Tests of layers.costpath: the r.cost step rule on hand-computed grids, barriers, a brute-force
Dijkstra compared cell by cell, least-cost paths, corridors and link ranking."""

from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
from affine import Affine

from gis.errors import InputError
from layers.costpath import (
    DEFAULT_CORRIDOR_CWD,
    CostGraph,
    core_distances,
    cost_distance,
    link_cores,
    rank_links,
)

SQ2 = math.sqrt(2)


def test_uniform_neighbour_and_diagonal():
    # resistance 1, 10 m cells: orthogonal step (1+1)/2 x 1 x 10 = 10, diagonal 10 sqrt 2
    src = np.zeros((3, 3), bool)
    src[1, 1] = True
    cwd = cost_distance(np.ones((3, 3)), src, cell_size=10).cwd
    assert cwd[1, 1] == 0
    assert cwd[0, 1] == cwd[1, 0] == cwd[1, 2] == cwd[2, 1] == 10
    assert cwd[0, 0] == pytest.approx(10 * SQ2, rel=1e-15)
    assert cwd[2, 2] == pytest.approx(10 * SQ2, rel=1e-15)


def test_mixed_costs_mean_of_the_two_cells():
    # [2, 4, 1], 1 m cells: 0; (2+4)/2 = 3; 3 + (4+1)/2 = 5.5
    cwd = cost_distance(np.array([[2.0, 4.0, 1.0]]), np.array([[1, 0, 0]]), cell_size=1).cwd
    assert cwd.tolist() == [[0.0, 3.0, 5.5]]


def test_non_square_cells():
    # 10 m wide, 20 m high cells: east step 10, north step 20, diagonal hypot(10, 20)
    t = Affine(10, 0, 0, 0, -20, 60)
    src = np.zeros((3, 3), bool)
    src[1, 1] = True
    cwd = cost_distance(np.ones((3, 3)), src, transform=t).cwd
    assert cwd[1, 2] == 10 and cwd[0, 1] == 20
    assert cwd[0, 0] == pytest.approx(math.hypot(10, 20))


def test_barrier_detour_and_raise():
    # barriers at (0,1) and (1,1): (0,0) -> (1,0) 1 -> (2,1) sqrt2 -> (1,2) sqrt2 -> (0,2) 1
    r = np.ones((3, 3))
    r[0, 1] = np.nan
    r[1, 1] = 0  # <= 0 is a barrier as well
    src = np.zeros((3, 3), bool)
    src[0, 0] = True
    cd = cost_distance(r, src, cell_size=1)
    assert cd.cwd[0, 2] == pytest.approx(2 + 2 * SQ2)
    assert np.isinf(cd.cwd[0, 1]) and np.isinf(cd.cwd[1, 1])
    with pytest.raises(InputError, match="2 resistance cell"):
        cost_distance(r, src, cell_size=1, on_barrier="raise")


def test_allocation_of_several_sources():
    lab = np.array([[1, 0, 0, 0, 2]])
    cd = cost_distance(np.array([[1, 1, 1, 5, 1.0]]), lab, cell_size=1)
    # cell 3: from source 1: 1 + 1 + 3 = 5; from source 2: (5+1)/2 = 3 -> source 2
    assert cd.allocation.tolist() == [[1, 1, 1, 2, 2]]
    assert cd.cwd.tolist() == [[0, 1, 2, 3, 0]]


def _brute_force(r: np.ndarray, sources: np.ndarray, cell: float) -> np.ndarray:
    h, w = r.shape
    dist = np.full((h, w), np.inf)
    heap = []
    for i, j in zip(*np.nonzero(sources), strict=True):
        dist[i, j] = 0.0
        heap.append((0.0, i, j))
    heapq.heapify(heap)
    done = np.zeros((h, w), bool)
    while heap:
        d, i, j = heapq.heappop(heap)
        if done[i, j]:
            continue
        done[i, j] = True
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                a, b = i + di, j + dj
                if (di or dj) and 0 <= a < h and 0 <= b < w and np.isfinite(r[a, b]):
                    step = math.hypot(cell, cell) if di and dj else cell
                    nd = d + (r[i, j] + r[a, b]) / 2 * step
                    if nd < dist[a, b]:
                        dist[a, b] = nd
                        heapq.heappush(heap, (nd, a, b))
    return dist


def test_matches_brute_force_dijkstra_bit_for_bit():
    rng = np.random.default_rng(7)
    r = rng.uniform(1, 50, (23, 31))
    r[rng.random(r.shape) < 0.15] = np.nan
    src = np.zeros(r.shape, bool)
    src[3:5, 4:6] = True
    src[18, 25] = True
    r[src] = 1.0
    got = cost_distance(r, src, cell_size=30).cwd
    want = _brute_force(r, src, 30.0)
    assert np.array_equal(got, want)  # same rule, same float operations -> identical


def _two_cores(barrier_gap: bool = True):
    lab = np.zeros((5, 7), int)
    lab[:, 0] = 1
    lab[:, 6] = 2
    r = np.ones((5, 7))
    r[:4, 3] = np.nan if barrier_gap else 1.0
    if not barrier_gap:
        r[:, 3] = np.nan
    return r, lab


def test_least_cost_path_line_cost_length():
    r, lab = _two_cores()
    t = Affine(10, 0, 1000, 0, -10, 2000)
    link = link_cores(r, lab, transform=t, workers=1)
    row = link.links.iloc[0]
    # straight along the bottom row (the only gap): 6 orthogonal 10 m steps of cost 1
    assert bool(row.reachable) and row.cost == 60 and row.length_m == 60
    assert row.cwd_to_path_length_ratio == 1.0
    assert row.euclid_m == 50  # edge-to-edge: columns 1..5 between the cores
    assert row.cw_to_euc_dist_ratio == pytest.approx(60 / 50)
    coords = np.asarray(row.geometry.coords)
    assert coords[0].tolist() == [1005, 1955] and coords[-1].tolist() == [1065, 1955]
    assert row.geometry.length == pytest.approx(row.length_m)


def test_unreachable_cores_are_flagged_not_infinite():
    r, lab = _two_cores(barrier_gap=False)
    link = link_cores(r, lab, cell_size=10, workers=1)
    row = link.links.iloc[0]
    assert not row.reachable and math.isnan(row.cost) and row.geometry is None
    num = link.links.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(num).any()
    assert rank_links(link.links).empty
    assert link.corridor_polygon(1, 2).is_empty


def test_corridor_normalized_and_thresholds():
    r, lab = _two_cores()
    link = link_cores(r, lab, cell_size=10, workers=1)
    norm = link.corridor(1, 2)
    assert norm.min() == 0 and (norm[4] == 0).all()  # the least-cost path row is 0
    # row 3 beside the barrier, e.g. (3, 1): CWD_1 = 10 (from (3,0)), CWD_2 = 40 along row 4
    # from (4,6) to (4,2), then a diagonal 10 sqrt2: 10 + 54.14 - 60 = 10 sqrt2 - 10 = 4.14
    assert norm[3, 1] == pytest.approx(10 * SQ2 - 10) and np.isinf(norm[0, 3])
    assert link.corridor_mask(1, 2).sum() == np.isfinite(norm).sum()  # default 200,000
    mask = link.corridor_mask(1, 2, threshold=5)
    assert mask.sum() == 7 + 6  # bottom row (0) + row 3 (4.14) but the barrier cell
    poly = link.corridor_polygon(1, 2, threshold=5)
    assert poly.area == pytest.approx(13 * 100)
    assert link.corridor_mask(1, 2, pct=0).sum() == 7
    with pytest.raises(InputError):
        link.corridor_mask(1, 2, threshold=1, pct=1)
    assert DEFAULT_CORRIDOR_CWD == 200_000


def test_rank_and_top_k_and_via_cores():
    # three cores in a row: 1 - 2 - 3; the 1-3 path crosses core 2
    lab = np.zeros((3, 9), int)
    lab[:, 0] = 1
    lab[:, 4] = 2
    lab[:, 8] = 3
    r = np.ones((3, 9))
    r[:, 5:8] = 3.0
    link = link_cores(r, lab, cell_size=1, workers=1)
    df = link.links.set_index(["core_a", "core_b"])
    assert df.loc[(1, 2), "cost"] == 4
    assert df.loc[(2, 3), "cost"] == 2 + 3 + 3 + 2  # (1+3)/2, 3, 3, (3+1)/2
    assert df.loc[(1, 3), "via_cores"] == "2"
    top = rank_links(link.links, by="cost", top=2)
    assert list(zip(top.core_a, top.core_b, strict=True)) == [(1, 2), (2, 3)]
    assert top["rank"].tolist() == [1, 2]
    by_ratio = rank_links(link.links, by="cwd_to_path_length_ratio")
    assert (by_ratio.core_a.iloc[0], by_ratio.core_b.iloc[0]) == (1, 2)
    cor = link.corridors(top=1, threshold=0)
    assert len(cor) == 1 and cor.geometry.iloc[0].area == pytest.approx(3 * 5)
    with pytest.raises(InputError):
        rank_links(link.links, by="area")


def test_workers_match_serial():
    rng = np.random.default_rng(3)
    r = rng.uniform(1, 10, (20, 20))
    lab = np.zeros((20, 20), int)
    lab[1:3, 1:3], lab[15:18, 2:4], lab[10:12, 16:19] = 1, 2, 3
    g = CostGraph(r, cell_size=5)
    a = link_cores(g, lab, workers=1)
    b = link_cores(g, lab, workers=2)
    for c in (1, 2, 3):
        assert np.array_equal(a.cwd[c], b.cwd[c])
    assert a.links.cost.tolist() == b.links.cost.tolist()


def test_core_distances_edge_to_edge():
    lab = np.zeros((6, 10), int)
    lab[0:2, 0:2] = 1
    lab[4:6, 7:10] = 2  # gap: 2 rows (rows 2,3) and 5 columns (2..6) -> hypot(20, 50) m
    lab[2, 2] = 3  # diagonal neighbour of core 1: touching -> 0
    d = core_distances(lab, Affine(10, 0, 0, 0, -10, 60)).set_index(["core_a", "core_b"])
    assert d.loc[(1, 2), "euclid_m"] == pytest.approx(math.hypot(20, 50))
    assert d.loc[(1, 3), "euclid_m"] == 0


def test_bad_inputs():
    with pytest.raises(InputError, match="cell size"):
        CostGraph(np.ones((2, 2)))
    with pytest.raises(InputError, match="no core"):
        link_cores(np.ones((2, 2)), np.zeros((2, 2), int), cell_size=1)
    with pytest.raises(InputError, match="shape"):
        link_cores(np.ones((2, 2)), np.ones((3, 2), int), cell_size=1)
