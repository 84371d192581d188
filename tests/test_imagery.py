"""gis.imagery: scenes from STAC JSON or dated folders, radiometry, onto an analysis grid.

Synthetic scenes are hand-computed; the real clips (tests/data/landsat8_clip, tests/data/s2_clip,
see their SOURCE.md) go through the same read_scenes/load_bands path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import rasterio
from affine import Affine

from gis.errors import InputError
from gis.grid import GridSpec
from gis.imagery import (
    LANDSAT_C2_L2,
    LANDSAT_L1_BQA,
    SENTINEL2_L1C,
    SENTINEL2_L2A,
    analysis_grid,
    covers,
    load_bands,
    mtl_reflectance,
    read_scenes,
    resampling_for,
)

DATA = Path(__file__).resolve().parent / "data"
L8 = DATA / "landsat8_clip"
S2 = DATA / "s2_clip"
UTM51 = "EPSG:32651"  # WGS 84 / UTM 51N (Meihekou lies in it)


def write_tif(path: Path, data: np.ndarray, *, crs: str = UTM51, res: float = 10.0,
              origin: tuple[float, float] = (300_000.0, 4_800_000.0), nodata=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1,
            "dtype": data.dtype.name, "crs": crs,
            "transform": Affine(res, 0, origin[0], 0, -res, origin[1])}
    if nodata is not None:
        prof["nodata"] = nodata
    with rasterio.open(path, "w", **prof) as dst:
        dst.write(data, 1)
    return path


def item(sid: str, date: str, assets: dict, **props) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": sid, "geometry": None,
            "properties": {"datetime": f"{date}T02:45:00Z", **props},
            "assets": {k: (v if isinstance(v, dict) else {"href": v}) for k, v in assets.items()},
            "links": []}


def write_json(path: Path, items: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path


def grid_of(path: Path) -> GridSpec:
    with rasterio.open(path) as src:
        return GridSpec.create(src.crs, src.transform, src.shape)


# --- radiometry rules, by hand -------------------------------------------------------------------

@pytest.mark.parametrize(("props", "expected", "rule"), [
    ({"s2:processing_baseline": "05.10"}, 0.05, "05.10 >= 04.00"),
    ({"s2:processing_baseline": "03.01"}, 0.15, "03.01 < 04.00"),
    ({"processing:version": "04.00"}, 0.05, "04.00 >= 04.00"),
    ({"s2:product_uri": "S2B_MSIL2A_20250512T023529_N0511_R089_T51TXG_20250512T061502.SAFE"},
     0.05, "05.11 >= 04.00"),
])
def test_sentinel2_baseline_rule(tmp_path, props, expected, rule, caplog):
    dn = np.full((4, 4), 1500, dtype="uint16")
    write_tif(tmp_path / "b04.tif", dn)
    p = write_json(tmp_path / "items.json", [item("S2B_x", "2025-05-12", {"B04": "b04.tif"},
                                                  platform="sentinel-2b", **props)])
    with caplog.at_level(logging.INFO, logger="gis.imagery"):
        (scene,) = read_scenes(p)
    assert scene.sensor == SENTINEL2_L2A
    assert rule in scene.assets["red"].scale_source
    assert rule in caplog.text  # the rule is logged per scene
    red = load_bands(scene, grid_of(tmp_path / "b04.tif"), ("red",))["red"]
    assert red.dtype == np.float32
    np.testing.assert_allclose(red.values, expected, atol=1e-7)


def test_sentinel2_without_baseline_uses_the_date(tmp_path):
    write_tif(tmp_path / "b.tif", np.full((2, 2), 1500, dtype="uint16"))
    p = write_json(tmp_path / "i.json", [
        item("old", "2021-06-01", {"B04": "b.tif"}, platform="sentinel-2a"),
        item("new", "2022-06-01", {"B04": "b.tif"}, platform="sentinel-2a")])
    old, new = read_scenes(p)
    assert (old.assets["red"].offset, new.assets["red"].offset) == (0.0, -0.1)


def test_landsat_c2_rule(tmp_path):
    write_tif(tmp_path / "sr_b4.tif", np.array([[10000, 0]], dtype="uint16"), res=30)
    p = write_json(tmp_path / "i.json", [item("LC09_x", "2025-05-12", {"SR_B4": "sr_b4.tif"},
                                              platform="landsat-9")])
    (scene,) = read_scenes(p)
    assert scene.sensor == LANDSAT_C2_L2
    red = load_bands(scene, grid_of(tmp_path / "sr_b4.tif"), ("red",))["red"].values
    assert red[0, 0] == pytest.approx(10000 * 2.75e-5 - 0.2, abs=1e-7)  # 0.075
    assert red[0, 0] == pytest.approx(0.075, abs=1e-7)
    assert np.isnan(red[0, 1])  # DN 0 is fill


def test_raster_bands_win_over_rules_and_nodata_is_nan(tmp_path):
    write_tif(tmp_path / "b.tif", np.array([[1500, 65535, 0]], dtype="uint16"))
    v1 = {"href": "b.tif", "raster:bands": [{"scale": 0.0002, "offset": -0.05, "nodata": 65535}]}
    v11 = {"href": "b.tif", "bands": [{"raster:scale": 0.0001, "raster:offset": 0.01}]}
    p = write_json(tmp_path / "i.json", [
        item("a", "2025-05-12", {"B04": v1, "B08": v11}, platform="sentinel-2b",
             **{"s2:processing_baseline": "05.10"})])
    (scene,) = read_scenes(p)
    assert scene.assets["red"].scale_source == "raster:bands"
    bands = load_bands(scene, grid_of(tmp_path / "b.tif"), ("red", "nir"))
    red, nir = bands["red"].values[0], bands["nir"].values[0]
    assert red[0] == pytest.approx(1500 * 0.0002 - 0.05, abs=1e-7)
    assert np.isnan(red[1]) and np.isnan(red[2])
    assert nir[0] == pytest.approx(0.16, abs=1e-7) and np.isnan(nir[2])


def test_landsat_level1_without_raster_bands_is_an_error(tmp_path):
    write_tif(tmp_path / "b4.tif", np.ones((2, 2), dtype="uint16"))
    p = write_json(tmp_path / "i.json", [item("LC8", "2015-08-04", {"B4": "b4.tif"},
                                              platform="landsat-8")])
    with pytest.raises(InputError, match="REFLECTANCE_MULT"):
        read_scenes(p)


# --- reading STAC / folders ---------------------------------------------------------------------

def test_relative_hrefs_resolve_from_the_json_folder(tmp_path, monkeypatch):
    write_tif(tmp_path / "stac" / "bands" / "red.tif", np.full((2, 2), 1000, dtype="uint16"))
    p = write_json(tmp_path / "stac" / "items.json", [
        item("s", "2025-05-12", {"B04": "bands/red.tif", "SCL": "./bands/red.tif"},
             platform="sentinel-2a", **{"s2:processing_baseline": "05.10"})])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (scene,) = read_scenes(Path("..") / "stac" / "items.json")
    assert scene.assets["red"].href == (tmp_path / "stac" / "bands" / "red.tif").resolve()
    assert scene.assets["red"].href.is_absolute() and scene.source == p.resolve()
    assert set(scene.assets) == {"red", "qa"}


def test_single_item_itemcollection_sorting_and_sensor_detection(tmp_path):
    write_tif(tmp_path / "b.tif", np.ones((2, 2), dtype="uint16"))
    # a single Item, no platform: S2 from its keys; Earth-Search keys; B8A as nir without B08
    one = item("x", "2025-05-12", {"red": "b.tif", "nir08": "b.tif", "scl": "b.tif",
                                   "B11": "b.tif"}, **{"s2:processing_baseline": "05.10"})
    (tmp_path / "one.json").write_text(json.dumps(one))
    (scene,) = read_scenes(tmp_path / "one.json")
    assert scene.sensor == SENTINEL2_L2A
    assert {"red", "nir", "qa", "swir1"} == set(scene.assets)
    both = item("y", "2025-05-12", {"B08": "b.tif", "B8A": "b.tif"}, platform="sentinel-2a")
    (tmp_path / "both.json").write_text(json.dumps(both))
    with_b08 = read_scenes(tmp_path / "both.json")[0]
    assert with_b08.assets["nir"].href.name == "b.tif"
    coll = {"type": "FeatureCollection", "features": [
        item("late", "2025-06-01", {"SR_B4": "b.tif", "QA_PIXEL": "b.tif"}, platform="landsat-8",
             **{"eo:cloud_cover": 12.5}),
        item("early", "2025-04-01", {"B04": "b.tif"}, platform="sentinel-2c",
             **{"s2:processing_baseline": "05.11"})]}
    (tmp_path / "c.json").write_text(json.dumps(coll))
    scenes = read_scenes(tmp_path / "c.json")
    assert [s.id for s in scenes] == ["early", "late"]
    assert scenes[1].sensor == LANDSAT_C2_L2 and scenes[1].cloud_cover == 12.5


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"type": "Feature"'])
def test_unreadable_json_names_file_and_fix(tmp_path, text):
    p = tmp_path / "items.json"
    p.write_text(text)
    with pytest.raises(InputError) as err:
        read_scenes(p)
    assert str(p) in str(err.value) and "fix:" in str(err.value)


def test_remote_hrefs_are_refused(tmp_path):
    p = write_json(tmp_path / "i.json", [item("r", "2025-05-12",
                                              {"B04": "https://example.org/B04.tif"},
                                              platform="sentinel-2a")])
    with pytest.raises(InputError, match="remote"):
        read_scenes(p)


def test_missing_band_error_names_scene_bands_and_file(tmp_path):
    write_tif(tmp_path / "b.tif", np.ones((2, 2), dtype="uint16"))
    p = write_json(tmp_path / "i.json", [item("S2A_20250512", "2025-05-12", {"B04": "b.tif"},
                                              platform="sentinel-2a")])
    (scene,) = read_scenes(p)
    with pytest.raises(InputError) as err:
        load_bands(scene, grid_of(tmp_path / "b.tif"), ("red", "nir", "swir1", "swir2"))
    msg = str(err.value)
    assert "S2A_20250512" in msg and "nir, swir1, swir2" in msg and str(p.resolve()) in msg
    # an href pointing at a file that is not there
    (tmp_path / "b.tif").rename(tmp_path / "moved.tif")
    with pytest.raises(InputError, match=r"b\.tif does not exist"):
        load_bands(scene, GridSpec.from_bounds((300_000, 4_799_980, 300_020, 4_800_000), 10,
                                               UTM51), ("red",))


def test_folder_naming_rule(tmp_path, caplog):
    d = tmp_path / "scenes"
    dn = np.full((3, 3), 2000, dtype="uint16")
    for name in ("S2_20250601_B04.tif", "S2_20250601_B08.tif", "S2L2A_20250512_B04.TIF",
                 "S2L2A_20250512_SCL.tif", "L8_20250520_SR_B4.tif", "L8_20250520_QA_PIXEL.tif"):
        write_tif(d / name, dn)
    (d / "notes.txt").write_text("not a band")
    write_tif(d / "S2_20250601_B99.tif", dn)  # unknown band
    with caplog.at_level(logging.INFO, logger="gis.imagery"):
        scenes = read_scenes(d)
    assert [(s.id, s.sensor) for s in scenes] == [
        ("S2L2A_20250512", SENTINEL2_L2A), ("L8_20250520", LANDSAT_C2_L2),
        ("S2_20250601", SENTINEL2_L2A)]
    assert set(scenes[0].assets) == {"red", "qa"} and set(scenes[2].assets) == {"red", "nir"}
    assert "notes.txt" in caplog.text and "S2_20250601_B99.tif" in caplog.text
    # no baseline in a folder: the acquisition date (2025) -> offset rule
    red = load_bands(scenes[2], grid_of(d / "S2_20250601_B04.tif"), ("red",))["red"].values
    np.testing.assert_allclose(red, 0.1, atol=1e-7)
    lred = load_bands(scenes[1], grid_of(d / "L8_20250520_SR_B4.tif"), ("red",))["red"].values
    np.testing.assert_allclose(lred, 2000 * 2.75e-5 - 0.2, atol=1e-7)

    empty = tmp_path / "other"
    (empty / "x").mkdir(parents=True)
    (empty / "B04.tif").write_bytes(b"")
    with pytest.raises(InputError) as err:
        read_scenes(empty)
    assert "B04.tif" in str(err.value) and "<sensor>_<YYYYMMDD>_<band>.tif" in str(err.value)


# --- onto the grid -------------------------------------------------------------------------------

def _s2_scene(tmp_path: Path, arrays: dict[str, np.ndarray], *, res: dict[str, float],
              crs: str = UTM51, origin=(300_000.0, 4_800_000.0)):
    assets = {}
    for key, arr in arrays.items():
        write_tif(tmp_path / f"{key}.tif", arr, crs=crs, res=res[key], origin=origin)
        assets[key] = f"{key}.tif"
    p = write_json(tmp_path / "items.json", [item("s", "2025-05-12", assets,
                                                  platform="sentinel-2b",
                                                  **{"s2:processing_baseline": "02.14"})])
    return read_scenes(p)[0]


def test_window_read_finer_average_and_qa_nearest(tmp_path):
    rng = np.random.default_rng(5)
    b04 = rng.integers(100, 5000, (8, 8)).astype("uint16")
    b11 = rng.integers(100, 5000, (4, 4)).astype("uint16")
    scl = np.array([[4, 8, 9, 3], [6, 11, 0, 4], [4, 4, 10, 5], [1, 2, 7, 4]], dtype="uint8")
    scene = _s2_scene(tmp_path, {"B04": b04, "B11": b11, "SCL": scl},
                      res={"B04": 10, "B11": 20, "SCL": 20})
    # a 20 m grid shifted one 20 m cell right/down of the files, one cell beyond them
    g20 = GridSpec.create(UTM51, Affine(20, 0, 300_020, 0, -20, 4_799_980), (4, 4))
    out = load_bands(scene, g20, ("red", "swir1", "qa"))
    assert all(isinstance(v.data, dsa.Array) for v in out.values())  # lazy
    assert out["red"].attrs["resampling"] == "average"
    assert out["swir1"].attrs["resampling"] == "window"
    assert out["qa"].attrs["resampling"] == "window" and out["qa"].dtype == np.uint8
    red = out["red"].values
    expect = (b04.astype(float) * 1e-4).reshape(4, 2, 4, 2).mean(axis=(1, 3))[1:, 1:]
    np.testing.assert_allclose(red[:3, :3], expect, atol=1e-6)
    assert np.isnan(red[3]).all() and np.isnan(red[:, 3]).all()
    np.testing.assert_allclose(out["swir1"].values[:3, :3], b11[1:, 1:] * 1e-4, atol=1e-7)
    qa = out["qa"].values
    np.testing.assert_array_equal(qa[:3, :3], scl[1:, 1:])
    assert (qa[3] == 0).all() and out["qa"].rio.nodata == 0  # SCL fill outside the scene
    # qa on a finer, shifted grid: nearest, still uint8 class codes
    g5 = GridSpec.create(UTM51, Affine(5, 0, 300_002.5, 0, -5, 4_800_000), (16, 15))
    q5 = load_bands(scene, g5, ("qa",))["qa"]
    assert q5.attrs["resampling"] == "nearest" and q5.dtype == np.uint8
    assert set(np.unique(q5.values)) <= set(np.unique(scl))


def test_scene_outside_the_grid_is_all_nan_and_covers(tmp_path):
    scene = _s2_scene(tmp_path, {"B04": np.full((10, 10), 900, dtype="uint16"),
                                 "SCL": np.full((10, 10), 4, dtype="uint8")},
                      res={"B04": 10, "SCL": 10})
    far = GridSpec.create(UTM51, Affine(10, 0, 400_000, 0, -10, 4_900_000), (5, 5))
    assert covers(scene, far) == 0.0
    out = load_bands(scene, far, ("red", "qa"))
    assert np.isnan(out["red"].values).all() and (out["qa"].values == 0).all()
    off_lattice = GridSpec.create(UTM51, Affine(20, 0, 400_003, 0, -20, 4_900_000), (5, 5))
    assert np.isnan(load_bands(scene, off_lattice, ("red",))["red"].values).all()
    half = GridSpec.create(UTM51, Affine(10, 0, 300_050, 0, -10, 4_800_000), (10, 10))
    assert covers(scene, half) == pytest.approx(0.5)
    assert covers(scene, grid_of(tmp_path / "B04.tif")) == pytest.approx(1.0)


def test_other_crs_scene_is_warped_onto_the_grid(tmp_path):
    # a UTM 51N scene whose DN rise linearly eastwards, read onto a CGCS2000 GK CM 126E grid
    cols = np.arange(60)
    dn = np.tile((1000 + 10 * cols).astype("uint16"), (60, 1))
    scene = _s2_scene(tmp_path, {"B04": dn}, res={"B04": 10})
    src = grid_of(tmp_path / "B04.tif")
    gk = "EPSG:4551"
    w, s, e, n = rasterio.warp.transform_bounds(UTM51, gk, *src.bounds)
    grid = GridSpec.from_bounds((w + 100, s + 100, e - 100, n - 100), 10, gk)
    assert covers(scene, grid) == pytest.approx(1.0)
    red = load_bands(scene, grid, ("red",))["red"]
    assert red.attrs["resampling"] == "bilinear"
    assert red.rio.crs.to_epsg() == 4551
    vals = red.values
    assert np.isfinite(vals).all()
    xs, ys = np.meshgrid(grid.coords()["x"], grid.coords()["y"])
    ux, _ = rasterio.warp.transform(gk, UTM51, xs.ravel(), ys.ravel())
    col = (np.asarray(ux) - 300_000) / 10 - 0.5  # fractional source column of each cell centre
    expect = ((1000 + 10 * col) * 1e-4).reshape(vals.shape)
    # linear field: bilinear is exact up to GDAL's kernel widening (the GK cell is ~0.1 %
    # larger than the UTM cell here, so GDAL scales the kernel): measured <= 6.3e-5 (0.6 DN)
    np.testing.assert_allclose(vals, expect, atol=1e-4)


def test_resampling_rule_and_analysis_grid(tmp_path):
    scene = _s2_scene(tmp_path, {"B04": np.ones((20, 20), "uint16"),
                                 "B11": np.ones((10, 10), "uint16")},
                      res={"B04": 10, "B11": 20})
    g = analysis_grid([scene], (300_015, 4_799_900, 300_120, 4_799_985))
    # finest of red/nir/swir1/swir2 = 10 m, on the B04 lattice, bounds snapped out + 1 cell
    assert g.res == (10, 10) and g.crs.to_epsg() == 32651
    assert g.bounds == (300_000, 4_799_890, 300_130, 4_800_000)
    b04, b11 = grid_of(tmp_path / "B04.tif"), grid_of(tmp_path / "B11.tif")
    assert resampling_for(b11, g) == "bilinear" and resampling_for(b04, g) == "window"
    g40 = GridSpec.from_bounds((300_000, 4_799_800, 300_200, 4_800_000), 40, UTM51)
    assert resampling_for(b11, g40) == "average"
    # bounds given in another CRS are transformed to the scene's
    lon_lat = rasterio.warp.transform_bounds(UTM51, "EPSG:4326", 300_015, 4_799_900, 300_120,
                                             4_799_985)
    g2 = analysis_grid([scene], lon_lat, "EPSG:4326")
    assert g2.res == (10, 10) and g2.bounds[0] <= 300_010 and g2.bounds[2] >= 300_120


# --- real clips ----------------------------------------------------------------------------------

def test_real_landsat8_radiometry_matches_the_mtl_by_hand():
    """(a) pre-collection L1T DN -> TOA reflectance (no sun-angle term) with the MTL's
    REFLECTANCE_MULT 2e-5 / ADD -0.1 carried in raster:bands."""
    (scene,) = read_scenes(L8 / "items.json")
    assert scene.sensor == LANDSAT_L1_BQA and scene.date.isoformat() == "2015-08-04"
    mtl = mtl_reflectance(L8 / "l8_MTL_excerpt.txt")
    for band, n in (("blue", 2), ("red", 4), ("nir", 5), ("swir1", 6), ("swir2", 7)):
        a = scene.assets[band]
        assert (a.scale, a.offset) == mtl[n] == (2e-5, -0.1)
        assert a.scale_source == "raster:bands"
    grid = grid_of(L8 / "l8_B2.tif")
    bands = load_bands(scene, grid, ("blue", "swir1", "qa"))
    with rasterio.open(L8 / "l8_B2.tif") as src:
        dn2 = src.read(1)
    with rasterio.open(L8 / "l8_B6.tif") as src:
        dn6 = src.read(1)
    for r, c in ((0, 0), (17, 150), (100, 100), (199, 3), (150, 42)):
        assert bands["blue"].values[r, c] == pytest.approx(int(dn2[r, c]) * 2e-5 - 0.1, abs=1e-6)
        assert bands["swir1"].values[r, c] == pytest.approx(int(dn6[r, c]) * 2e-5 - 0.1,
                                                            abs=1e-6)
    # written out for one pixel (row 100, col 100): blue DN 8158 -> 8158 * 2e-5 - 0.1 = 0.06316,
    # SWIR1 DN 10946 -> 0.11892
    assert (int(dn2[100, 100]), int(dn6[100, 100])) == (8158, 10946)
    assert bands["blue"].values[100, 100] == pytest.approx(0.06316, abs=1e-6)
    assert bands["swir1"].values[100, 100] == pytest.approx(0.11892, abs=1e-6)
    assert bands["qa"].dtype == np.uint16


def test_real_s2_l1c_pre_baseline4_rule():
    """(c, first half) the 2016 L1C clip: no baseline given, so the date rule gives DN/10000."""
    (scene,) = read_scenes(S2 / "item.json")
    assert scene.sensor == SENTINEL2_L1C
    assert set(scene.assets) == {"nir", "swir1", "swir2", "rededge1"}  # B8A as nir (no B08)
    assert all(a.scale == 1e-4 and a.offset == 0.0 for a in scene.assets.values())
    grid = analysis_grid([scene], (443_720, 4_172_460, 448_720, 4_177_460))
    assert grid.res == (20, 20) and grid.shape == (252, 252)  # the clip plus one cell each side
    swir1 = load_bands(scene, grid, ("swir1",))["swir1"].values
    with rasterio.open(S2 / "s2_B11.tif") as src:
        dn = src.read(1)
    np.testing.assert_allclose(swir1[1:-1, 1:-1], dn / 10000, atol=1e-7)
    assert np.isnan(swir1[0]).all()


def test_real_s2_swir_20m_onto_10m_grid():
    """(d) 20 m -> 10 m bilinear: every 10 m value lies between its neighbouring 20 m values, and
    the mean of each 2x2 block equals the 20 m value up to the curvature term of bilinear
    interpolation, which is computed exactly here."""
    (scene,) = read_scenes(S2 / "item.json")
    g20 = grid_of(S2 / "s2_B11.tif")
    t = g20.transform
    g10 = GridSpec.create(g20.crs, Affine(10, 0, t.c, 0, -10, t.f), (500, 500))
    a10 = load_bands(scene, g10, ("swir1",))["swir1"]
    assert a10.attrs["resampling"] == "bilinear" and a10.dtype == np.float32
    v10 = a10.values
    with rasterio.open(S2 / "s2_B11.tif") as src:
        c = src.read(1).astype("float64") / 10000
    inner = (slice(2, -2), slice(2, -2))  # 20 m cells away from the clip edge
    # between source values: a 10 m cell lies within the 2x2 20 m cells around its centre
    up = np.repeat(np.repeat(c, 2, 0), 2, 1)
    lo_hi = [np.roll(np.roll(up, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    lo, hi = np.min(lo_hi, axis=0), np.max(lo_hi, axis=0)
    sl = (slice(4, -4), slice(4, -4))
    assert (v10[sl] >= lo[sl] - 1e-6).all() and (v10[sl] <= hi[sl] + 1e-6).all()
    block = v10.reshape(250, 2, 250, 2).mean(axis=(1, 3))
    diff = (block - c)[inner]
    # measured on this clip: median |diff| 0.00098 (~0.5 % of a typical 0.2 SWIR value),
    # mean diff -6e-6 (curvature cancels), max 0.039 at field edges
    assert np.median(np.abs(diff)) < 0.002
    assert abs(diff.mean()) < 1e-4
    # exact: block mean = c + second differences / 8 along x, then along y (bilinear weights
    # 3/4, 1/4 at the 10 m centres)
    cx = c.copy()
    cx[:, 1:-1] += (c[:, :-2] - 2 * c[:, 1:-1] + c[:, 2:]) / 8
    cxy = cx.copy()
    cxy[1:-1, :] += (cx[:-2, :] - 2 * cx[1:-1, :] + cx[2:, :]) / 8
    np.testing.assert_allclose(block[inner], cxy[inner], atol=1e-6)


def test_folder_with_a_broken_band_file_names_it(tmp_path):
    (tmp_path / "S2_20250512_B04.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match=r"S2_20250512_B04\.tif"):
        read_scenes(tmp_path)
