"""Circuit theory (layers/circuit.py): hand-computed circuits, and Circuitscape 4's own raster
pairwise verification cases (``../shared/circuitscape_verify``, skipped when absent)."""

from __future__ import annotations

import configparser
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from gis.errors import InputError
from gis.grid import GridSpec, make_raster
from layers.circuit import pairwise

VERIFY = Path(__file__).resolve().parents[1].parent / "shared" / "circuitscape_verify"


# -- a reader for Circuitscape .ini files and ASCII grids (tests only) ---------------------------

def read_asc(path: Path) -> tuple[np.ndarray, dict[str, float]]:
    """ESRI ASCII grid; NODATA_value is optional (-9999 by default, as Circuitscape assumes)."""
    lines = path.read_text().splitlines()
    head: dict[str, float] = {}
    k = 0
    while k < len(lines):
        parts = lines[k].split()
        if parts and parts[0][0].isalpha():
            head[parts[0].lower()] = float(parts[1])
            k += 1
        else:
            break
    data = np.array([[float(x) for x in ln.split()] for ln in lines[k:] if ln.strip()])
    nodata = head.get("nodata_value", -9999.0)
    return np.where(data == nodata, np.nan, data), head


def read_points_txt(path: Path, head: dict[str, float], shape: tuple[int, int]) -> np.ndarray:
    """Circuitscape text point list (id x y) burnt onto the grid."""
    out = np.zeros(shape, dtype="int64")
    cs, xll, yll = head["cellsize"], head["xllcorner"], head["yllcorner"]
    top = yll + cs * shape[0]
    for ln in path.read_text().splitlines():
        if not ln.strip():
            continue
        i, x, y = (float(v) for v in ln.split()[:3])
        r, c = math.floor((top - y) / cs), math.floor((x - xll) / cs)
        out[r, c] = int(i)
    return out


def read_pairs(path: Path) -> tuple[str, list[tuple[int, int]]]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    mode = lines[0][1]
    return mode, [(int(a), int(b)) for a, b in lines[1:]]


def run_case(n: int):
    """Run sgVerify<n>.ini with sinkmap; returns (result, config)."""
    cfg = configparser.ConfigParser()
    cfg.read(VERIFY / "config_files" / f"sgVerify{n}.ini")

    def opt(key: str, default: str | None = None) -> str | None:
        for sec in cfg.sections():
            if cfg.has_option(sec, key):
                return cfg.get(sec, key)
        return default

    def path(key: str) -> Path:
        return VERIFY / opt(key).replace("circuitscape/verify/", "")

    def flag(key: str) -> bool:
        return (opt(key, "False") or "False").strip() == "True"

    hab, head = read_asc(path("habitat_file"))
    if flag("use_mask"):
        mask, _ = read_asc(path("mask_file"))
        hab = np.where(np.isnan(mask) | (mask <= 0), np.nan, hab)
    pf = path("point_file")
    if pf.suffix == ".txt":
        focal = read_points_txt(pf, head, hab.shape)
    else:
        pts, _ = read_asc(pf)
        focal = np.where(np.isnan(pts), 0, pts).astype("int64")
    polys = None
    if flag("use_polygons"):
        pm, _ = read_asc(path("polygon_file"))
        polys = np.where(np.isnan(pm), 0, pm).astype("int64")
    pairs = None
    if flag("use_included_pairs"):
        mode, lst = read_pairs(path("included_pairs_file"))
        assert mode == "include"
        pairs = lst
    res = pairwise(hab, focal, polygons=polys,
                   connectivity=4 if flag("connect_four_neighbors_only") else 8,
                   avg="resistance" if flag("connect_using_avg_resistances") else "conductance",
                   is_conductance=not flag("habitat_map_is_resistances"), pairs=pairs,
                   currents=True, pair_maps=True, voltage_maps=True)
    return res, cfg


PAIRWISE_RASTER = list(range(1, 15))


@pytest.mark.skipif(not VERIFY.exists(), reason="../shared/circuitscape_verify not present")
@pytest.mark.parametrize("n", PAIRWISE_RASTER)
def test_circuitscape_verify_resistances(n: int):
    res, _ = run_case(n)
    base = np.loadtxt(VERIFY / "baseline_results" / f"sgVerify{n}_resistances.txt")
    ids = base[0, 1:].astype(int)
    got = res.matrix()
    computed = {(a, b): r for a, b, r in res.pairs.itertuples(index=False)}
    for i, a in enumerate(ids):
        for j, b in enumerate(ids):
            expect = base[i + 1, j + 1]
            if a == b:
                assert expect == 0
                continue
            key = (min(a, b), max(a, b))
            r = computed.get(key, -1.0)  # pairs not asked for are -1 in Circuitscape
            assert r == pytest.approx(expect, abs=1e-9), (n, a, b, r, expect)
    assert got.shape[0] <= len(ids) + 2


MAPS = [(n, kind) for n in PAIRWISE_RASTER
        for kind in ("cum_curmap", "curmap_1_2", "voltmap_1_2", "curmap_max")
        if (VERIFY / "baseline_results" / f"sgVerify{n}_{kind}.asc").exists()]


@pytest.mark.skipif(not VERIFY.exists(), reason="../shared/circuitscape_verify not present")
@pytest.mark.parametrize(("n", "kind"), MAPS or [(0, "none")])
def test_circuitscape_verify_maps(n: int, kind: str):
    if n == 0:
        pytest.skip("no baseline maps")
    res, _ = run_case(n)
    base, _ = read_asc(VERIFY / "baseline_results" / f"sgVerify{n}_{kind}.asc")
    got = {"cum_curmap": res.cumulative_current, "curmap_max": res.max_current,
           "curmap_1_2": res.pair_currents.get((1, 2)),
           "voltmap_1_2": res.voltages.get((1, 2))}[kind]
    assert got is not None
    # NaN in the baseline: Circuitscape's set_null_*_to_nodata wrote nodata where the value is 0
    expect = np.where(np.isnan(base), 0.0, base)
    np.testing.assert_allclose(got, expect, rtol=0, atol=5.0001e-7)


# -- hand-computed circuits (always run) ---------------------------------------------------------

def R(res, a: int = 1, b: int = 2) -> float:
    row = res.pairs[(res.pairs["from"] == a) & (res.pairs["to"] == b)]
    return float(row["resistance"].iloc[0])


def test_series_strip():
    res = pairwise(np.ones((1, 3)), np.array([[1, 0, 2]]), connectivity=4)
    assert R(res) == pytest.approx(2.0, abs=1e-12)
    np.testing.assert_allclose(res.cumulative_current, [[1, 1, 1]], atol=1e-12)
    res = pairwise(np.ones((1, 3)), np.array([[1, 0, 2]]), voltage_maps=True)
    np.testing.assert_allclose(res.voltages[(1, 2)], [[0, 1, 2]], atol=1e-12)  # 1 grounded


def test_parallel_block_and_diagonal_rule():
    focal = np.array([[1, 0], [0, 2]])
    res4 = pairwise(np.ones((2, 2)), focal, connectivity=4)
    assert R(res4) == pytest.approx(1.0, abs=1e-12)  # two paths of 2 ohm in parallel
    np.testing.assert_allclose(res4.cumulative_current, [[1, 0.5], [0.5, 1]], atol=1e-12)
    res8 = pairwise(np.ones((2, 2)), focal, connectivity=8)
    # plus the diagonal of conductance 1/sqrt(2); the anti-diagonal carries nothing
    assert R(res8) == pytest.approx(1 / (1 + 1 / math.sqrt(2)), abs=1e-12)


def test_average_rules():
    r = np.array([[1.0, 3.0]])
    f = np.array([[1, 2]])
    assert R(pairwise(r, f, avg="conductance")) == pytest.approx(1 / ((1 + 1 / 3) / 2))
    assert R(pairwise(r, f, avg="resistance")) == pytest.approx(2.0)
    g = np.array([[1.0, 1 / 3]])
    assert R(pairwise(g, f, is_conductance=True)) == pytest.approx(1.5)


def test_disconnected_pair_and_nodata():
    r = np.array([[1.0, np.nan, 1.0, 1.0]])
    res = pairwise(r, np.array([[1, 0, 2, 3]]))
    assert R(res, 1, 2) == -1 and R(res, 1, 3) == -1
    assert R(res, 2, 3) == pytest.approx(1.0)
    # a focal node on a barrier cell has no node: -1
    assert R(pairwise(np.array([[np.inf, 1.0, 1.0]]), np.array([[1, 0, 2]]))) == -1
    m = res.matrix()
    assert m.loc[1, 2] == -1 and m.loc[2, 2] == 0


def test_focal_region_is_short_circuited():
    strip = np.ones((1, 4))
    assert R(pairwise(strip, np.array([[1, 0, 0, 2]]))) == pytest.approx(3.0)
    assert R(pairwise(strip, np.array([[1, 1, 0, 2]]))) == pytest.approx(2.0)


def test_other_regions_stay_ordinary_cells():
    # Circuitscape 4: for pair (1, 2) only regions 1 and 2 are merged; region 3 = {1, 3} is
    # ordinary habitat (merging it too would give 2)
    res = pairwise(np.ones((1, 5)), np.array([[1, 3, 0, 3, 2]]))
    assert R(res, 1, 2) == pytest.approx(4.0)
    assert R(res, 1, 3) == pytest.approx(1.0)


def test_polygon_merges_cells_and_points_inside_one_polygon():
    strip = np.ones((1, 4))
    poly = np.array([[0, 7, 7, 0]])
    res = pairwise(strip, np.array([[1, 3, 4, 2]]), polygons=poly, voltage_maps=True)
    assert R(res, 1, 2) == pytest.approx(2.0)
    assert R(res, 3, 4) == 0.0  # same node
    np.testing.assert_allclose(res.voltages[(1, 2)], [[0, 1, 1, 2]], atol=1e-12)


def test_bad_values_are_errors():
    with pytest.raises(InputError, match="resistance 0"):
        pairwise(np.array([[1.0, 0.0]]), np.array([[1, 2]]))
    with pytest.raises(InputError, match="negative"):
        pairwise(np.array([[1.0, -2.0]]), np.array([[1, 2]]))
    # conductance 0 is a barrier, not an error
    assert R(pairwise(np.array([[1.0, 0.0, 1.0]]), np.array([[1, 0, 2]]),
                      is_conductance=True)) == -1


def test_dataarray_in_dataarray_out():
    grid = GridSpec.from_bounds((500_000, 4_700_000, 500_030, 4_700_020), 10, "EPSG:4551")
    r = make_raster(np.array([[1.0, 1.0, 1.0], [1.0, -9999.0, 1.0]]), grid, nodata=-9999.0,
                    units="ohm", kind="continuous", chunks=None)
    f = make_raster(np.array([[1, 0, 2], [0, 0, 0]]), grid, nodata=0, units="id",
                    kind="categorical", chunks=None)
    res = pairwise(r, f, connectivity=4)
    assert R(res) == pytest.approx(2.0)
    cur = res.cumulative_current
    assert isinstance(cur, xr.DataArray)
    assert GridSpec.of(cur) == grid
    assert float(cur[1, 1]) == 0.0


def _random_case(n: int, seed: int):
    rng = np.random.default_rng(seed)
    r = np.exp(rng.normal(0, 1.5, (n, n)))
    r[rng.random((n, n)) < 0.15] = np.nan
    focal = np.zeros((n, n), dtype=int)
    for k, (i, j) in enumerate([(5, 5), (n - 6, n - 6), (5, n - 8), (n // 2, n // 3)], 1):
        focal[i - 1:i + 2, j - 1:j + 2] = k
        r[i - 1:i + 2, j - 1:j + 2] = 1.0
    return r, focal


@pytest.mark.parametrize("regions", [False, True])
def test_multigrid_cg_matches_lu(regions: bool):
    r, focal = _random_case(130, 3)
    if not regions:
        focal = np.where(focal > 0, 0, 0)
        for k, (i, j) in enumerate([(5, 5), (124, 124), (5, 122), (65, 43)], 1):
            focal[i, j] = k
    a = pairwise(r, focal, solver="lu")
    b = pairwise(r, focal, solver="cg", tol=1e-11)
    assert (a.pairs["resistance"] > 0).all()
    np.testing.assert_allclose(b.pairs["resistance"], a.pairs["resistance"], rtol=1e-8)
    np.testing.assert_allclose(b.cumulative_current, a.cumulative_current, atol=1e-6)


@pytest.mark.parametrize("regions", [False, True])
def test_multigrid_default_tolerance_matches_tight(regions: bool):
    # the default CG tolerance (1e-6) gives the effective resistances of a tight (1e-10) solve to
    # 1e-6 relative: R is 1 / energy, whose error is quadratic in the potential's
    rng = np.random.default_rng(2020)
    n = 500
    r = np.exp(rng.normal(0, 1.0, (n, n)))
    r += np.kron(np.exp(rng.normal(1.5, 1.5, (11, 11))), np.ones((50, 50)))[:n, :n]
    r[rng.random((n, n)) < 0.10] = np.nan
    focal = np.zeros((n, n), dtype=int)
    for k, (y, x) in enumerate([(50, 50), (450, 450), (50, 425), (400, 75), (250, 225)], 1):
        h = 1 if regions else 0
        focal[y - h:y + h + 1, x - h:x + h + 1] = k
        r[y - h:y + h + 1, x - h:x + h + 1] = 1.0
    loose = pairwise(r, focal, solver="cg")
    tight = pairwise(r, focal, solver="cg", tol=1e-10)
    assert (tight.pairs["resistance"] > 0).all()
    np.testing.assert_allclose(loose.pairs["resistance"], tight.pairs["resistance"], rtol=1e-6)
    scale = float(np.max(tight.cumulative_current))
    np.testing.assert_allclose(loose.cumulative_current, tight.cumulative_current,
                               atol=1e-4 * scale)


@pytest.mark.parametrize("per_pair", [True, False])
def test_large_focal_regions_cg_matches_lu(monkeypatch, per_pair):
    """Cores as focal regions of thousands of cells (the ecology step's case): the multigrid CG
    (with a per-pair preconditioner when the other regions are large, else the shared one)
    gives LU's resistances and currents."""
    import layers.circuit as C

    rng = np.random.default_rng(7)
    n = 150
    r = np.exp(rng.normal(0, 1.0, (n, n))) * 5
    r[rng.random((n, n)) < 0.05] = np.nan
    focal = np.zeros((n, n), np.int32)
    focal[5:55, 5:55] = 1
    focal[95:145, 10:60] = 2
    focal[40:90, 95:145] = 3
    monkeypatch.setattr(C, "PAIR_PRECONDITIONER_NODES", 2_000 if per_pair else 10**9)
    cg = C.pairwise(r, focal, solver="cg", lu_max_nodes=0)
    lu = C.pairwise(r, focal, solver="lu")
    np.testing.assert_allclose(cg.pairs["resistance"], lu.pairs["resistance"], rtol=1e-6)
    np.testing.assert_allclose(np.nan_to_num(cg.cumulative_current),
                               np.nan_to_num(lu.cumulative_current),
                               atol=1e-4 * np.nanmax(lu.cumulative_current))
