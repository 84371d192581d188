"""Benchmark of layers.costpath: 10 cores on a 2000 x 2000 resistance grid.

CWD from each core + least-cost paths for all 45 pairs, and one corridor polygon.
Run: /work/venv/bin/python benchmarks/bench_costpath.py [size] [n_cores] [workers]
Prints wall times and peak RSS (this process and its worker processes).
"""

from __future__ import annotations

import resource
import sys
import time

import numpy as np
from affine import Affine

from layers.costpath import CostGraph, link_cores


def main(size: int = 2000, n_cores: int = 10, workers: int | None = None) -> None:
    rng = np.random.default_rng(42)
    res = rng.uniform(1, 100, (size, size))
    res[rng.random((size, size)) < 0.02] = np.nan  # scattered barriers
    labels = np.zeros((size, size), np.int32)
    for k in range(n_cores):  # 10 square cores of 30 x 30 cells spread over the grid
        r, c = rng.integers(50, size - 80, 2)
        labels[r:r + 30, c:c + 30] = k + 1
    res[labels > 0] = 1.0
    t0 = time.perf_counter()
    g = CostGraph(res, transform=Affine(30, 0, 0, 0, -30, size * 30))
    t1 = time.perf_counter()
    link = link_cores(g, labels, workers=workers)
    t2 = time.perf_counter()
    best = link.links[link.links.reachable].sort_values("cost").iloc[0]
    poly = link.corridor_polygon(int(best.core_a), int(best.core_b), pct=10)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"grid {size}x{size}, {n_cores} cores, workers={workers}")
    print(f"graph build      {t1 - t0:6.2f} s  ({g.graph.nnz} edges)")
    print(f"CWD + {len(link.links)} LCPs  {t2 - t1:6.2f} s")
    print(f"one corridor     {t3 - t2:6.2f} s  (area {poly.area / 1e6:.2f} km2)")
    print(f"total            {t3 - t0:6.2f} s")
    print(f"peak RSS {rss:.0f} MB (main), {rss_c:.0f} MB (largest worker)")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(int(a[0]) if a else 2000, int(a[1]) if len(a) > 1 else 10,
         int(a[2]) if len(a) > 2 else None)
