"""The ecological pattern (layers.pattern) and ``sinkmap ecology`` on small synthetic maps.

The landscape (30 m cells, EPSG:4551), 60 x 100 cells of dry land (code 103) with four square
forests (code 301): A 20 x 20 at rows 5-24, cols 5-24; B 20 x 20 at rows 5-24, cols 45-64;
C 12 x 12 at rows 35-46, cols 5-16; D 12 x 12 at rows 40-51, cols 80-91. With edge width 1
each square's MSPA core is the square less its one-cell rim: 18 x 18 = 324 cells = 29.16 ha
(A, B) and 10 x 10 = 100 cells = 9 ha (C, D).
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from affine import Affine

from gis.errors import GridMismatchError, InputError
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from layers.costpath import cost_distance
from layers.landcover import load_scheme
from layers.pattern import (
    PatternSettings,
    barrier_improvement,
    core_patches,
    derive_zones,
    disc_minimum,
    ecological_pattern,
    spaced_selection,
)
from sinkmap.ecology_cmd import EcologyInputs, run_ecology

CRS = "EPSG:4551"
T = Affine(30.0, 0, 500_000.0, 0, -30.0, 4_700_000.0)
PIXEL_HA = 0.09
SQUARES = {"A": (5, 5, 20), "B": (5, 45, 20), "C": (35, 5, 12), "D": (40, 80, 12)}


def landscape(h: int = 60, w: int = 100, squares=SQUARES):
    lc = np.full((h, w), 103, np.int16)
    for r, c, n in squares.values():
        lc[r:r + n, c:c + n] = 301
    return lc


def raster(arr, nodata=0, kind="categorical"):
    grid = GridSpec.create(crs=CRS, transform=T, shape=arr.shape)
    return make_raster(arr, grid, nodata=nodata, units="class", kind=kind, name="lc",
                       chunks=None)


SCHEME = load_scheme("gbt21010")


def small_settings(**kw):
    base = dict(n_cores=2, n_corridors=1, min_core_ha=5.0, min_core_gap_m=0.0,
                barrier_radii_m=(60.0,), corridor_cwd=300.0)
    base.update(kw)
    return PatternSettings(**base)


# ---- building blocks -------------------------------------------------------------------------


def test_disc_minimum_equals_brute_force():
    rng = np.random.default_rng(1)
    a = rng.random((23, 31))
    r = 4
    got = disc_minimum(a, r)
    want = np.full(a.shape, np.inf)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if dy * dy + dx * dx <= r * r and 0 <= y + dy < a.shape[0] \
                            and 0 <= x + dx < a.shape[1]:
                        want[y, x] = min(want[y, x], a[y + dy, x + dx])
    np.testing.assert_array_equal(got, want)


def test_core_patches_numbered_by_area_and_filtered():
    b = np.zeros((10, 12), np.uint8)
    b[1:3, 1:3] = 17          # 4 cells
    b[5:9, 6:11] = 17         # 20 cells
    b[6, 1] = 117             # 1 cell (internal core byte counts as core)
    lab, areas = core_patches(raster(b, nodata=129), min_core_ha=0.3)  # 0.3 ha = 3.33 cells
    assert list(areas.index) == [1, 2]
    assert areas.tolist() == pytest.approx([20 * PIXEL_HA, 4 * PIXEL_HA])
    v = lab.values
    assert (v[5:9, 6:11] == 1).all() and (v[1:3, 1:3] == 2).all() and v[6, 1] == 0
    assert lab.attrs["n_patches_all"] == 3


def test_spaced_selection_skips_near_cores():
    import pandas as pd

    table = pd.DataFrame({"core_id": [1, 2, 3, 4], "rank": [1, 2, 3, 4]})
    d = np.array([[0, 100, 5000, 3000], [100, 0, 4000, 2500], [5000, 4000, 0, 900],
                  [3000, 2500, 900, 0]], float)
    assert spaced_selection(table, d, 3, 2000) == [1, 3]       # 2 too near 1, 4 too near 3
    assert spaced_selection(table, d, 3, 0) == [1, 2, 3]


def test_barrier_improvement_hand_computed():
    # one row of 21 cells of 10 m: resistance 1, except cells 8-12 = 100; cores at 0 and 20.
    r = np.ones((1, 21))
    r[0, 8:13] = 100
    t = Affine(10, 0, 0, 0, -10, 0)
    ca = cost_distance(r, np.eye(1, 21, 0, dtype=bool), transform=t).cwd
    cb = cost_distance(r, np.eye(1, 21, 20, dtype=bool), transform=t).cwd
    # r.cost: 7 steps of 10 + (1 + 100) / 2 x 10 = 575 to cell 8; LCD 0 -> 20:
    # 70 + 505 + 4 x 1000 + 505 + 70 = 5150
    assert ca[0, 8] == pytest.approx(575) and ca[0, 20] == pytest.approx(5150)
    imp = barrier_improvement(ca, cb, 5150.0, 20.0, 10.0, 1.0)
    # disc of radius 2 cells at cell 10 covers 8..12: 5150 - (575 + 575 + 2 x 20 x 1) = 3960
    assert imp[0, 10] == pytest.approx(3960)
    assert imp[0, 0] == 0 and imp.min() >= 0


def test_derive_zones_rule_order():
    valid = np.ones((1, 5), bool)
    valid[0, 4] = False
    core = np.array([[1, 0, 0, 0, 0]], bool)
    corr = np.array([[1, 1, 0, 0, 0]], bool)
    cwd = np.array([[0, 10, 20, 99, 0]], float)
    z = derive_zones(core, corr, cwd, valid, buffer_cwd=20)
    assert z.tolist() == [[1, 2, 3, 4, 0]]


# ---- the whole pattern -----------------------------------------------------------------------


def test_pattern_on_four_forests():
    lc = raster(landscape())
    p = ecological_pattern(lc, SCHEME, settings=small_settings(n_cores=3, n_corridors=2))
    # candidates >= 5 ha: A and B (29.16 ha), C and D (9 ha)
    assert p.cores["area_ha"].sort_values().tolist() == pytest.approx([9, 9, 29.16, 29.16])
    assert p.cores["selected"].sum() == 3
    # A and B are 20 cells apart (edge to edge of the cores: cols 23 -> 46 = 22 cells gap)
    sel = p.cores[p.cores["selected"]]
    assert set(sel["area_ha"].round(2)) == {29.16, 9.0}
    assert sorted(sel["rank"]) == [1, 2, 3]  # the selected cores come first
    assert (sel.sort_values("rank")["dPC"].diff().dropna() <= 0).all()
    assert len(p.links) == 3 and p.links["reachable"].all()
    assert len(p.corridors) == 2 and (p.corridors["area_ha"] > 0).all()
    # the cheapest link between A's and B's cores: 22 cells of dry land between them?
    # cores are the squares less their rim: A core cols 6-23, B core cols 46-63: gap of cells
    # 24..45 (22 cells): 2 forest rim cells (R=1) + 20 cropland (R=50); steps 23 -> 46:
    # 23->24 (1+1)/2, 24->25 (1+50)/2, 25..44: 19 x 50, 44->45 (50+1)/2, 45->46 1
    ab = _link(p, 29.16, 29.16)
    want = 30 * (1 + 25.5 + 19 * 50 + 25.5 + 1)
    assert ab["cost"] == pytest.approx(want)
    assert ab["length_m"] == pytest.approx(23 * 30)
    # zones partition the valid area
    assert p.zones["area_ha"].sum() == pytest.approx(60 * 100 * PIXEL_HA)
    assert set(p.zones["kind"]) <= {"core", "corridor", "buffer", "other"}
    core_zone = p.zones.set_index("kind").loc["core", "area_ha"]
    assert core_zone == pytest.approx(sel["area_ha"].sum())
    # current: flows; pinch points lie in corridors, outside the cores
    assert p.current is not None and np.nanmax(p.current.values) > 0
    assert (p.circuit_pairs["resistance_ohm"] > 0).all()
    for g in p.pinchpoints.geometry:
        assert not g.intersection(shapely.union_all(sel.geometry)).area > 1.0
    # FRAGSTATS metrics per zone: PLAND sums to 100 in each zone
    sums = p.metrics.groupby("zone")["pland_pct"].sum()
    assert np.allclose(sums, 100)
    s = p.summary()
    json.dumps(s)  # JSON-ready
    assert s["n_cores_found"] == 4 and s["unreachable_pairs"] == []


def _link(p, area_a, area_b):
    areas = p.cores.set_index("core_id")["area_ha"].round(2)
    for r in p.links.itertuples():
        if {areas[r.core_a], areas[r.core_b]} == {area_a, area_b}:
            return r._asdict()
    raise AssertionError("link not found")


def test_unreachable_cores_are_reported_not_infinite():
    arr = landscape()
    arr[:, 34:37] = 0  # a nodata band splits the map: A and C | B and D
    p = ecological_pattern(raster(arr), SCHEME, settings=small_settings(n_cores=4))
    bad = p.links[~p.links["reachable"]]
    assert len(bad) == 4  # A-B, A-D, C-B, C-D
    assert bad["cost"].isna().all() and not np.isinf(p.links["cost"].dropna()).any()
    assert sorted(map(tuple, p.summary()["unreachable_pairs"])) == sorted(
        (int(r.core_a), int(r.core_b)) for r in bad.itertuples())
    # the circuit: disconnected pairs get no resistance (empty, not -1 and not inf)
    cp = p.circuit_pairs.set_index(["core_a", "core_b"])
    assert cp["resistance_ohm"].isna().sum() == 4


def test_no_habitat_is_a_clear_error():
    with pytest.raises(InputError, match="no habitat"):
        ecological_pattern(raster(np.full((20, 20), 103, np.int16)), SCHEME)


def test_too_few_cores_says_how_many():
    with pytest.raises(InputError, match=r"only 2 core patch\(es\) of >= 20 ha, 5 were asked"):
        ecological_pattern(raster(landscape()), SCHEME,
                           settings=small_settings(n_cores=5, min_core_ha=20))
    with pytest.raises(InputError, match=r"no MSPA core patch of >= 100 ha.*largest 29.2 ha"):
        ecological_pattern(raster(landscape()), SCHEME, settings=small_settings(min_core_ha=100))
    with pytest.raises(InputError,
                       match=r"only 1 of the 4 core patches(.|\n)*fix: lower --min-core-gap"):
        ecological_pattern(raster(landscape()), SCHEME,
                           settings=small_settings(min_core_gap_m=10_000))


def test_bad_settings_listed():
    with pytest.raises(InputError, match=r"n_cores must be >= 2.*pinch_quantile"):
        PatternSettings(n_cores=1, pinch_quantile=1.5).check()


def test_supplied_zones_and_crs_mismatch():
    lc = raster(landscape())
    west = shapely.box(500_000, 4_698_200, 501_500, 4_700_000)
    east = shapely.box(501_500, 4_698_200, 503_000, 4_700_000)
    zones = gpd.GeoDataFrame({"name": ["west", "east"]}, geometry=[west, east], crs=CRS)
    p = ecological_pattern(lc, SCHEME, settings=small_settings(), zones=zones,
                           zone_field="name")
    assert p.zones["zone"].tolist() == ["west", "east"]
    assert p.zones["kind"].eq("supplied").all()
    assert p.zones["area_ha"].tolist() == pytest.approx([1500 * 1800 / 1e4] * 2)
    assert set(p.metrics["zone"]) == {"west", "east"}
    from gis.errors import CRSMismatchError

    with pytest.raises(CRSMismatchError):
        ecological_pattern(lc, SCHEME, settings=small_settings(), zones=zones.to_crs(4326))


# ---- the command -----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    lc = raster(landscape())
    write_cog(lc, tmp_path / "lc.tif")
    dem = np.add.outer(np.arange(60.0), np.arange(100.0)) * 3.0  # slope ~ atan(3*sqrt2/30)
    write_cog(make_raster(dem.astype(np.float32), GridSpec.of(lc), nodata=-9999.0, units="m",
                          kind="continuous", name="dem", chunks=None), tmp_path / "dem.tif")
    coarse = GridSpec.create(crs=CRS, transform=Affine(60.0, 0, 500_000.0, 0, -60.0, 4_700_000.0),
                      shape=(30, 50))
    write_cog(make_raster(dem[::2, ::2].astype(np.float32), coarse, nodata=-9999.0,
                          units="m", kind="continuous", name="dem", chunks=None),
              tmp_path / "dem60.tif")
    road = gpd.GeoDataFrame(geometry=[shapely.LineString([(500_000, 4_699_100),
                                                          (503_000, 4_699_100)])], crs=CRS)
    road.to_file(tmp_path / "roads.gpkg")
    return tmp_path


def test_run_ecology_writes_every_output(files):
    out = files / "eco"
    inputs = EcologyInputs(landcover=files / "lc.tif", dem=files / "dem.tif",
                           roads=files / "roads.gpkg")
    s = run_ecology(inputs, out, small_settings(n_cores=3, n_corridors=2), verbose=False)
    for name in ("mspa.tif", "resistance.tif", "current.tif", "cores.gpkg", "corridors.gpkg",
                 "pinchpoints.gpkg", "barriers.gpkg", "zones.gpkg", "landscape_metrics.csv",
                 "summary.json"):
        assert (out / name).exists(), name
    layers = {name for name, _ in pyogrio.list_layers(out / "corridors.gpkg")}
    assert layers == {"paths", "corridors"}
    paths = gpd.read_file(out / "corridors.gpkg", layer="paths")
    assert {"cost", "length_m", "rank", "selected"} <= set(paths.columns)
    cores = gpd.read_file(out / "cores.gpkg")
    assert {"rank", "area_ha", "dPC", "selected"} <= set(cores.columns)
    zones = gpd.read_file(out / "zones.gpkg")
    # carbon: the zones partition the map, so their stocks add up to the Tier 1 total
    from sinkmap.ecology_cmd import tier1_density

    dens = tier1_density(raster(landscape()), SCHEME, "default")
    total = float(np.nansum(dens.values.astype(np.float64))) * PIXEL_HA
    assert zones["stock_tC"].sum() == pytest.approx(total, rel=1e-9)
    assert zones["stock_tCO2e"].sum() == pytest.approx(total * 44 / 12, rel=1e-9)
    saved = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert saved["n_corridors"] == 2 == s["n_corridors"]
    assert not math.isinf(sum(c["cost_cwm"] for c in saved["corridors"]))
    # the slope and the road raised the resistance above the class value somewhere
    import rasterio

    with rasterio.open(out / "resistance.tif") as src:
        res = src.read(1)
    assert res.max() > 50 and res[lc_forest()].min() >= 1


def lc_forest():
    return landscape() == 301


def test_dem_on_another_grid_needs_explicit_alignment(files):
    inputs = EcologyInputs(landcover=files / "lc.tif", dem=files / "dem60.tif")
    with pytest.raises(GridMismatchError, match="--align-dem"):
        run_ecology(inputs, files / "eco1", small_settings(), verbose=False)
    assert not (files / "eco1").exists()  # nothing half-written
    ok = EcologyInputs(landcover=files / "lc.tif", dem=files / "dem60.tif", align_dem=True)
    s = run_ecology(ok, files / "eco2", small_settings(circuit=False), verbose=False)
    assert s["dem_aligned"] is True and s["n_cores_selected"] == 2


def test_cli_ecology(files, capsys):
    from sinkmap.cli import main

    rc = main(["-q", "ecology", "--landcover", str(files / "lc.tif"), "--out",
               str(files / "cli"), "--cores", "2", "--corridors", "1", "--min-core-ha", "5",
               "--min-core-gap", "0", "--corridor-cwd", "300", "--lang", "en",
               "--rank-corridors-by", "length_m"])
    assert rc == 0
    saved = json.loads((files / "cli" / "summary.json").read_text(encoding="utf-8"))
    assert saved["settings"]["rank_links_by"] == "length_m"
    out = capsys.readouterr().out
    assert "cores: 2 selected of 4" in out and "Ecological core" in out
    rc = main(["-q", "ecology", "--landcover", str(files / "lc.tif"), "--out",
               str(files / "cli2"), "--min-core-ha", "5"])
    assert rc == 2  # 5 cores asked, the map has 4: a one-line error, no traceback
    assert "only" in capsys.readouterr().err


def test_project_ecology_section_is_checked(tmp_path):
    from gis.errors import ConfigError
    from sinkmap.config import load_config

    body = """
[project]
name = "t"
[zones]
path = "z.gpkg"
id_field = "id"
name_field = "name"
[landcover]
scheme = "gbt21010"
[landcover.years]
2020 = "lc.tif"
[ecology]
cores = "five"
corridor = 3
roads = "roads.gpkg"
"""
    p = tmp_path / "p.toml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "cores must be a number" in str(e.value)
    assert "unknown key(s) ['corridor']" in str(e.value)
    p.write_text(body.replace('cores = "five"\ncorridor = 3', "cores = 4"), encoding="utf-8")
    cfg = load_config(p)
    assert cfg.ecology is not None and cfg.ecology["roads"] == (tmp_path / "roads.gpkg")
    from sinkmap.ecology_cmd import project_inputs

    inputs, settings = project_inputs(cfg)
    assert settings.n_cores == 4 and inputs.roads == tmp_path / "roads.gpkg"
    assert inputs.landcover == tmp_path / "lc.tif" and inputs.carbon_table is None


def test_resistance_zero_or_nan_in_a_user_table_is_refused(files):
    import pandas as pd

    from gis.errors import CoefficientError
    from gis.resources import packaged

    t = pd.read_csv(packaged("tables", "resistance_classes.csv"))
    t.loc[t["class"] == "forest", "resistance"] = 0
    t.loc[t["class"] == "water", "resistance"] = float("nan")
    t.to_csv(files / "res.csv", index=False)
    inputs = EcologyInputs(landcover=files / "lc.tif", resistance_classes=files / "res.csv")
    with pytest.raises(CoefficientError, match=r"> 0; not so for \['forest', 'water'\]"):
        run_ecology(inputs, files / "bad", small_settings(), verbose=False)
    assert not (files / "bad").exists()
