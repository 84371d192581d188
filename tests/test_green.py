"""Urban green space (layers/green.py, sinkmap green): hand-computed answers on small grids."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine

from gis.errors import CoverageError, InputError
from gis.grid import GridSpec, make_raster
from layers.green import (
    GREEN,
    LOST_GREEN,
    NEW_GREEN,
    NOT_GREEN,
    OUTSIDE,
    UNDETERMINED,
    GreenSettings,
    change_raster,
    drop_small_patches,
    green_space,
    otsu_threshold,
    park_radii,
)
from layers.landcover import load_scheme
from sinkmap.green_cmd import GreenInputs, brief, run_green, settings_from_mapping

CRS = "EPSG:32651"
X0, Y0 = 500000.0, 4700000.0
MU = 2000.0 / 3.0


def _lc(arr: np.ndarray) -> object:
    g = GridSpec.create(CRS, Affine(10, 0, X0, 0, -10, Y0), arr.shape)
    return make_raster(arr.astype(np.int32), g, nodata=0, units="class", kind="categorical",
                       name="lc", chunks=None)


def _box(c0: int, r0: int, c1: int, r1: int) -> shapely.Polygon:
    """Cells c0..c1-1, r0..r1-1 of the 10 m test grid."""
    return shapely.box(X0 + 10 * c0, Y0 - 10 * r1, X0 + 10 * c1, Y0 - 10 * r0)


def _gdf(geoms: list, crs: str = CRS, **cols: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols, geometry=geoms, crs=crs)


SCHEME = load_scheme("gbt21010")


# -- building blocks -----------------------------------------------------------------------------

def test_otsu_splits_two_modes() -> None:
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(0.15, 0.03, 5000), rng.normal(0.7, 0.05, 3000)])
    t = otsu_threshold(v)
    assert 0.3 < t < 0.5
    # exact on a two-value sample: any cut between the values separates them; Otsu picks the
    # first bin edge above the lower value
    t2 = otsu_threshold(np.array([0.1] * 10 + [0.8] * 10))
    assert 0.1 < t2 <= 0.8
    with pytest.raises(InputError, match="fixed threshold"):
        otsu_threshold(np.full(10, 0.4))


def test_drop_small_patches_8_connected() -> None:
    g = np.zeros((6, 6), bool)
    g[0, 0] = True                  # 1 cell
    g[2, 2] = g[3, 3] = True        # 2 cells, diagonal: one 8-connected patch
    g[5, 3:6] = True                # 3 cells
    out = drop_small_patches(g, 2)
    assert not out[0, 0] and out[2, 2] and out[3, 3] and out[5, 3:6].all()
    assert drop_small_patches(g, 3).sum() == 3


def test_park_radii_tiers() -> None:
    r = park_radii(np.array([1500.0, 2000.0, 4999.0, 5000.0, 80000.0]),
                   ((2000.0, 300.0), (5000.0, 500.0)))
    assert r.tolist() == [0.0, 300.0, 300.0, 500.0, 500.0]


def test_change_codes() -> None:
    now = np.array([GREEN, GREEN, NOT_GREEN, NOT_GREEN, UNDETERMINED, OUTSIDE], np.uint8)
    base = np.array([GREEN, NOT_GREEN, GREEN, NOT_GREEN, GREEN, OUTSIDE], np.uint8)
    assert change_raster(now, base).tolist() == [1, NEW_GREEN, LOST_GREEN, 0, 4, 255]


# -- land-cover mode, hand-computed ----------------------------------------------------------------

def _town() -> tuple[np.ndarray, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """10 x 10 cells of 10 m; the boundary is rows 0-7. West district cols 0-4, east 5-9.
    Forest (301) cols 0-2 (24 cells in the boundary, all west), park (810) rows 0-1 cols 5-6
    (4 cells, east), water (1101) at row 9 (outside), residential (701) the rest."""
    lc = np.full((10, 10), 701)
    lc[:, :3] = 301
    lc[0:2, 5:7] = 810
    lc[9, 9] = 1101
    urban = _gdf([_box(0, 0, 10, 8)], name=["town"])
    d = _gdf([_box(0, 0, 5, 8), _box(5, 0, 10, 8)], name=["west", "east"],
             population=[100.0, np.nan])
    return lc, urban, d


def test_landcover_mode_coverage_and_per_capita() -> None:
    lc, urban, d = _town()
    s = GreenSettings.from_table(min_area_m2=100)
    r = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d, settings=s)
    t = r.districts.set_index("district")
    assert t.loc["west", "area_ha"] == pytest.approx(0.40)
    assert t.loc["west", "green_ha"] == pytest.approx(0.24)       # 24 forest cells x 100 m2
    assert t.loc["west", "green_coverage_pct"] == pytest.approx(60.0)
    assert t.loc["west", "green_m2_per_person"] == pytest.approx(2400 / 100)
    assert t.loc["east", "green_coverage_pct"] == pytest.approx(10.0)  # 4 park cells of 40
    assert np.isnan(t.loc["east", "green_m2_per_person"])          # population missing: empty
    assert r.summary["green_coverage_pct"] == pytest.approx(100 * 28 / 80)
    assert r.summary["green_area_mu"] == pytest.approx(2800 / MU)
    assert r.summary["green_m2_per_person"] == pytest.approx(24.0)  # only districts with people
    assert r.summary["source"] == "landcover" and r.summary["threshold"] is None
    # the minimum mapping unit drops the 4-cell park (400 m2 < 500 m2)
    r2 = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d,
                     settings=GreenSettings.from_table(min_area_m2=500))
    assert r2.districts.set_index("district").loc["east", "green_ha"] == 0.0


def test_park_service_coverage_hand_computed() -> None:
    lc, urban, d = _town()
    # a 50 x 50 m park (2,500 m2 -> the 300 m tier) 500 m east of the grid: serves nobody
    park_far = _box(60, 0, 65, 5)   # x from X0 + 600
    small = _box(5, 0, 6, 1)        # 100 m2: below every tier, serves nobody
    parks = _gdf([park_far, small], name=["far", "tiny"])
    s = GreenSettings.from_table(min_area_m2=100)
    r = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d, parks=parks,
                    settings=s)
    assert r.parks is not None and r.parks["radius_m"].tolist() == [300.0, 0.0]
    t = r.districts.set_index("district")
    # its 300 m reach ends at x = X0 + 300; the grid's cell centres are X0 + 5 .. X0 + 95
    assert t.loc["west", "park_service_pct"] == 0.0
    # now a park right at the east edge (x from X0 + 100): within 300 m of everything
    parks2 = _gdf([_box(10, 0, 15, 5)], name=["edge"])
    r2 = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d, parks=parks2,
                     settings=s)
    t2 = r2.districts.set_index("district")
    assert t2.loc["west", "park_service_pct"] == 100.0
    assert t2.loc["east", "park_service_pct"] == 100.0
    # residential: west 2 cols x 8 rows = 16 cells; east 40 - 4 park cells = 36
    assert t2.loc["west", "residential_ha"] == pytest.approx(0.16)
    assert t2.loc["east", "residential_ha"] == pytest.approx(0.36)
    # park area per person: the park lies outside both districts
    assert t2.loc["west", "park_ha"] == 0.0
    # a 600 x 10 m park (6,000 m2 -> the 500 m tier) 150 m north of the boundary serves all
    parks3 = _gdf([shapely.box(X0, Y0 + 150, X0 + 600, Y0 + 160)], name=["strip"])
    r3 = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d, parks=parks3,
                     settings=s)
    assert r3.parks["radius_m"].tolist() == [500.0]
    assert r3.summary["park_service_pct"] == 100.0


def test_park_service_partial() -> None:
    """A 2,000 m2 park (300 m) whose service edge cuts the grid: served cells by hand."""
    lc = np.full((10, 60), 701)
    urban = _gdf([_box(0, 0, 60, 10)], name=["t"])
    park = _gdf([_box(0, 0, 2, 10)], name=["p"])     # 20 x 100 m = 2,000 m2, cols 0-1
    lc[:, 0:2] = 810
    r = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, parks=park,
                    settings=GreenSettings.from_table(min_area_m2=100))
    # residential cols 2..59; served when the centre x - (X0 + 20) <= 300, i.e. col c with
    # 10 c + 5 <= 320 -> c <= 31: cols 2..31 = 30 of 58 columns
    assert r.summary["park_service_pct"] == pytest.approx(100 * 30 / 58)


def test_change_and_transitions_from_landcover() -> None:
    lc, urban, d = _town()
    base = lc.copy()
    base[2:4, 5:7] = 103     # dry cropland in 2020 ...
    lc2 = lc.copy()
    lc2[2:4, 5:7] = 810      # ... a new park in 2025 (4 cells)
    lc2[7, 0:3] = 701        # forest built over (3 cells)
    s = GreenSettings.from_table(min_area_m2=100)
    r = green_space(urban, 2025, landcover=_lc(lc2), scheme=SCHEME, baseline_year=2020,
                    baseline_landcover=_lc(base), districts=d, settings=s)
    assert r.summary["new_green_mu"] == pytest.approx(400 / MU)
    assert r.summary["lost_green_mu"] == pytest.approx(300 / MU)
    assert r.summary["net_green_mu"] == pytest.approx(100 / MU)
    assert r.summary["target_progress_pct"] == pytest.approx(100 * (400 / MU) / 3200)
    tr = r.transitions.set_index(["change", "code"])
    assert tr.loc[("new", 103), "area_mu"] == pytest.approx(400 / MU)
    assert tr.loc[("lost", 701), "area_mu"] == pytest.approx(300 / MU)
    assert r.change is not None
    ch = r.change.values
    assert (ch == NEW_GREEN).sum() == 4 and (ch == LOST_GREEN).sum() == 3


def test_exclude_cropland() -> None:
    lc, urban, _ = _town()
    lc[4:6, 5:9] = 103
    s = GreenSettings.from_table(min_area_m2=100, green_classes=("forest", "urban_green", 103))
    a = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, settings=s)
    b = green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME,
                    settings=GreenSettings.from_table(min_area_m2=100,
                                                      green_classes=("forest", "urban_green", 103),
                                                      exclude_classes=("dry_cropland",)))
    assert a.summary["green_area_ha"] - b.summary["green_area_ha"] == pytest.approx(0.08)


# -- bad input -------------------------------------------------------------------------------------

def test_overlapping_districts_listed() -> None:
    lc, urban, _ = _town()
    d = _gdf([_box(0, 0, 6, 8), _box(5, 0, 10, 8)], name=["west", "east"], population=[1, 2])
    with pytest.raises(InputError, match=r"overlap.*west & east"):
        green_space(urban, 2025, landcover=_lc(lc), scheme=SCHEME, districts=d)


def test_boundary_outside_landcover() -> None:
    lc, _, _ = _town()
    far = _gdf([shapely.box(X0 + 5000, Y0 + 5000, X0 + 5100, Y0 + 5100)], name=["x"])
    with pytest.raises(CoverageError, match="outside the land cover"):
        green_space(far, 2025, landcover=_lc(lc), scheme=SCHEME)


# -- imagery mode ---------------------------------------------------------------------------

def _write_s2(folder: Path, day: str, red: np.ndarray, nir: np.ndarray, scl: np.ndarray) -> None:
    """Sentinel-2 L2A band files of the test grid (baseline >= 04.00: DN = (refl + 0.1) x 1e4)."""
    folder.mkdir(parents=True, exist_ok=True)
    prof = {"driver": "GTiff", "height": red.shape[0], "width": red.shape[1], "count": 1,
            "crs": CRS, "transform": Affine(10, 0, X0, 0, -10, Y0)}
    for band, refl in (("B04", red), ("B08", nir)):
        dn = np.round((refl + 0.1) * 1e4).astype(np.uint16)
        with rasterio.open(folder / f"S2_{day}_{band}.tif", "w", dtype="uint16", nodata=0,
                           **prof) as ds:
            ds.write(dn, 1)
    with rasterio.open(folder / f"S2_{day}_SCL.tif", "w", dtype="uint8", nodata=0,
                       **prof) as ds:
        ds.write(scl.astype(np.uint8), 1)


def _scenes_folder(tmp: Path, *, cloudy_all: bool = False) -> Path:
    """20 x 20 cells: vegetation (NDVI 0.8) in the left half, impervious (NDVI 0.2) right,
    water (SCL 6) in the bottom-right 2 x 2. Date 1 (July): clouds over rows 0-4 (SCL 9) that
    make vegetation look grey; date 2 (August): clear. The max-NDVI composite recovers all."""
    veg = np.zeros((20, 20), bool)
    veg[:, :10] = True
    red = np.where(veg, 0.04, 0.15)
    nir = np.where(veg, 0.36, 0.225)
    scl = np.where(veg, 4, 5)
    scl[18:, 18:] = 6
    red[18:, 18:], nir[18:, 18:] = 0.05, 0.02
    r1, n1, s1 = red.copy(), nir.copy(), scl.copy()
    r1[:5], n1[:5], s1[:5] = 0.5, 0.5, 9
    _write_s2(tmp, "20250710", r1, n1, s1)
    if cloudy_all:
        _write_s2(tmp, "20250812", np.full((20, 20), 0.5), np.full((20, 20), 0.5),
                  np.full((20, 20), 9))
    else:
        _write_s2(tmp, "20250812", red, nir, scl)
    _write_s2(tmp, "20250420", red, nir, scl)   # spring: outside the window, ignored
    return tmp


def test_imagery_mode_max_ndvi_and_otsu(tmp_path: Path) -> None:
    from gis.imagery import read_scenes

    scenes = read_scenes(_scenes_folder(tmp_path / "s2"))
    urban = _gdf([_box(0, 0, 20, 20)], name=["town"])
    r = green_space(urban, 2025, scenes=scenes,
                    settings=GreenSettings.from_table(min_area_m2=100))
    s = r.summary
    assert s["threshold_method"] == "otsu" and 0.2 < s["threshold"] <= 0.8
    assert s["scenes"]["2025"] == ["S2_20250710", "S2_20250812"]
    assert s["ignored_scenes"]["2025"] == ["S2_20250420"]
    m = r.mask.values
    # the grid has one margin cell; inside the boundary: vegetation = 200 cells green,
    # impervious 196 + water 4 not green
    assert (m == GREEN).sum() == 200 and (m == NOT_GREEN).sum() == 200
    assert s["green_coverage_pct"] == pytest.approx(50.0)
    assert s["green_area_mu"] == pytest.approx(200 * 100 / MU)
    nd = r.ndvi.values
    assert np.nanmax(nd) == pytest.approx(0.8, abs=1e-3)
    # a fixed threshold above the vegetation NDVI: nothing green
    r2 = green_space(urban, 2025, scenes=scenes,
                     settings=GreenSettings.from_table(min_area_m2=100, threshold=0.85))
    assert r2.summary["green_coverage_pct"] == 0.0 and r2.summary["threshold_method"] == "fixed"


def test_imagery_all_cloudy_is_undetermined(tmp_path: Path) -> None:
    from gis.imagery import read_scenes

    folder = _scenes_folder(tmp_path / "s2", cloudy_all=True)
    (folder / "S2_20250710_SCL.tif").unlink()
    _write_s2(folder, "20250710", np.full((20, 20), 0.5), np.full((20, 20), 0.5),
              np.full((20, 20), 9))
    r = green_space(_gdf([_box(0, 0, 20, 20)], name=["t"]), 2025, scenes=read_scenes(folder))
    s = r.summary
    assert s["status"] == "undetermined" and s["green_coverage_pct"] is None
    assert "no clear summer observation" in s["reason"] and "2025-07-10" in s["reason"]
    assert r.districts["status"].tolist() == ["undetermined"]
    assert "observed" in r.districts["reason"].iloc[0]


def test_imagery_boundary_outside(tmp_path: Path) -> None:
    from gis.imagery import read_scenes

    scenes = read_scenes(_scenes_folder(tmp_path / "s2"))
    far = _gdf([shapely.box(X0 + 50000, Y0, X0 + 50100, Y0 + 100)], name=["x"])
    with pytest.raises(CoverageError, match="outside every scene"):
        green_space(far, 2025, scenes=scenes)


def test_no_summer_scene(tmp_path: Path) -> None:
    from gis.imagery import read_scenes

    scenes = read_scenes(_scenes_folder(tmp_path / "s2"))
    with pytest.raises(InputError, match="no imagery dated 2024-06-01"):
        green_space(_gdf([_box(0, 0, 20, 20)], name=["t"]), 2024, scenes=scenes)


# -- the command ----------------------------------------------------------------------------

def test_run_green_writes_outputs(tmp_path: Path) -> None:
    lc, urban, d = _town()
    lcp = tmp_path / "lc.tif"
    from gis.raster_io import write_cog

    write_cog(_lc(lc), lcp)
    base = lc.copy()
    base[2:4, 5:7] = 103
    lc0p = tmp_path / "lc0.tif"
    write_cog(_lc(base), lc0p)
    lc[2:4, 5:7] = 810
    write_cog(_lc(lc), lcp, overwrite=True)
    up, dp = tmp_path / "urban.gpkg", tmp_path / "districts.gpkg"
    urban.to_file(up)
    d.to_file(dp)
    out = tmp_path / "out"
    s = run_green(GreenInputs(urban=up, year=2025, landcover=lcp, baseline_year=2020,
                              baseline_landcover=lc0p, districts=dp), out,
                  settings_from_mapping({"min_area_m2": 100}), verbose=False)
    for f in ("green_mask.tif", "green_change.tif", "urban.gpkg", "districts.gpkg",
              "districts.csv", "districts.xlsx", "transitions.csv", "summary.json"):
        assert (out / f).exists(), f
    js = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    for k in ("green_coverage_pct", "green_area_mu", "new_green_mu", "lost_green_mu",
              "target_mu"):
        assert k in js
    assert js["new_green_mu"] == pytest.approx(400 / MU)
    t = pd.read_csv(out / "districts.csv", encoding="utf-8-sig")
    assert np.isnan(t.set_index("district").loc["east", "green_m2_per_person"])
    assert "new green" in brief(s)
    # never overwrites without --overwrite; a failed run leaves nothing
    with pytest.raises(Exception, match="exists"):
        run_green(GreenInputs(urban=up, year=2025, landcover=lcp), out,
                  settings_from_mapping({}), verbose=False)
    bad = tmp_path / "bad"
    with pytest.raises(InputError):
        run_green(GreenInputs(urban=up, year=2025, landcover=lcp, baseline_year=2030), bad,
                  settings_from_mapping({}), verbose=False)
    assert not bad.exists()


def test_cli_green(tmp_path: Path) -> None:
    folder = _scenes_folder(tmp_path / "s2")
    up = tmp_path / "urban.gpkg"
    _gdf([_box(0, 0, 20, 20)], name=["town"]).to_file(up)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "sinkmap", "green", "--urban", str(up),
                        "--imagery", str(folder), "--year", "2025", "--min-area", "100",
                        "--out", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "green coverage 50.0 %" in p.stdout
    assert (out / "ndvi.tif").exists() and (out / "green_mask.tif").exists()


def test_project_green_section_is_checked(tmp_path: Path) -> None:
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
[green]
year = "2025"
parkz = "p.gpkg"
threshold = "high"
"""
    p = tmp_path / "p.toml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "unknown key(s) ['parkz']" in msg and "urban" in msg and "year must be a year" in msg
    assert "[green]" in msg and "high" in msg
    p.write_text(body.replace('year = "2025"\nparkz = "p.gpkg"\nthreshold = "high"',
                              'urban = "town.gpkg"\nparks = "p.gpkg"\nthreshold = 0.35\n'
                              'park_tiers = [[1000, 300]]'), encoding="utf-8")
    cfg = load_config(p)
    assert cfg.green is not None and cfg.green["urban"] == tmp_path / "town.gpkg"
    assert cfg.green["parks"] == tmp_path / "p.gpkg"
    s = settings_from_mapping(cfg.green)
    assert s.threshold == 0.35 and s.park_tiers == ((1000.0, 300.0),)


def test_built_up_area_from_landcover() -> None:
    """Two built blocks 30 m apart join under a 20 m closing, a park inside them is a hole
    that is filled, a 2-cell hamlet is below the minimum size; coverage then runs on it."""
    from layers.green import urban_from_landcover

    lc = np.full((30, 40), 103)            # dry cropland around
    lc[5:25, 5:15] = 701                   # block A: 200 cells
    lc[5:25, 18:30] = 601                  # block B, 3 cells (30 m) east of A
    lc[12:16, 8:12] = 810                  # a park inside A (green, part of the town)
    lc[28, 36:38] = 702                    # a hamlet: 2 cells
    da = _lc(lc)
    u = urban_from_landcover(da, SCHEME, ("settlement", "urban_green"), close_m=20.0,
                             min_ha=0.1)
    assert len(u) == 1
    poly = u.geometry.iloc[0]
    # the closing bridges the 3-column gap between the blocks: one piece covering both blocks
    assert poly.geom_type == "Polygon"
    assert poly.area == pytest.approx((20 * 25) * 100, rel=0.02)   # rows 5-24, cols 5-29
    assert not poly.intersects(_box(36, 28, 38, 29))                # the hamlet is out
    r = green_space(None, 2025, landcover=da, scheme=SCHEME,
                    urban_classes=("settlement", "urban_green"),
                    settings=GreenSettings.from_table(min_area_m2=100, urban_close_m=20.0,
                                                      urban_min_ha=0.1))
    assert r.summary["green_area_ha"] == pytest.approx(0.16)        # the 16-cell park
    with pytest.raises(InputError, match="no built-up area"):
        urban_from_landcover(da, SCHEME, ("settlement",), close_m=0.0, min_ha=100.0)


def test_cli_green_urban_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gis.raster_io import write_cog
    from sinkmap.cli import main

    lc, _, _ = _town()
    write_cog(_lc(lc), tmp_path / "lc.tif")
    rc = main(["-q", "green", "--urban-classes", "settlement", "urban_green", "--urban-close",
               "20", "--urban-min-ha", "0.1", "--landcover", str(tmp_path / "lc.tif"),
               "--year", "2025", "--min-area", "100", "--out", str(tmp_path / "o")])
    assert rc == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text(encoding="utf-8"))
    assert s["urban_classes"] == ["settlement", "urban_green"]
    # built-up: the residential and park cells (cols 3-9), the forest (cols 0-2) is outside
    assert s["urban_area_ha"] == pytest.approx(0.7, abs=0.02)
    assert "green coverage" in capsys.readouterr().out
    rc = main(["-q", "green", "--urban-classes", "settlement", "--landcover",
               str(tmp_path / "lc.tif"), "--year", "2025", "--out", str(tmp_path / "o2")])
    assert rc == 2 and "no built-up area of >= 100 ha" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
