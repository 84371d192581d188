"""Synthetic urban green-space demo inputs (sinkmap.demo_green).

One 10 m demo per module (about 3-5 s); the determinism check runs twice at 20 m.
Measured with the default seeds (model 2020, demo 2020): boundary 3,764 ha, 6 districts,
20 parks; truth green 1,509 ha (2020) and 991 ha (2025), new 137 ha, lost 655 ha (mostly
cropland built over; 21 ha without cropland); a max-NDVI composite over clear observations with
an Otsu threshold agrees with the truth on about 99.6 % of the observed pixels in both years.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from scipy import ndimage

from gis.grid import GridSpec
from gis.imagery import SENTINEL2_L2A, analysis_grid, load_bands, read_scenes
from sinkmap.demo_county import CountyModel
from sinkmap.demo_green import SPECTRA, GreenDemo, green_layout, write_green_demo

BASE, LATER = 2020, 2025


@pytest.fixture(scope="module")
def model() -> CountyModel:
    return CountyModel.build(seed=2020, resolution_m=30.0)


@pytest.fixture(scope="module")
def demo(model: CountyModel, tmp_path_factory: pytest.TempPathFactory) -> GreenDemo:
    return write_green_demo(model, tmp_path_factory.mktemp("green"))


def _items(demo: GreenDemo) -> list[dict]:
    return json.loads(demo.imagery.read_text(encoding="utf-8"))["features"]


def _band(demo: GreenDemo, d: date, key: str) -> tuple[np.ndarray, rasterio.Affine]:
    (it,) = [f for f in _items(demo) if f["properties"]["datetime"].startswith(d.isoformat())]
    with rasterio.open(demo.imagery.parent / it["assets"][key]["href"]) as src:
        return src.read(1), src.transform


def _refl(demo: GreenDemo, d: date, key: str) -> np.ndarray:
    dn, _ = _band(demo, d, key)
    off = 0.1 if d >= date(2022, 1, 25) else 0.0
    return np.where(dn > 0, dn * 1e-4 - off, np.nan).astype(np.float32)


def _scl10(demo: GreenDemo, d: date) -> np.ndarray:
    scl, _ = _band(demo, d, "SCL")
    return np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)


def _ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (nir - red) / (nir + red)


def _dates(demo: GreenDemo) -> list[date]:
    return sorted(date.fromisoformat(f["properties"]["datetime"][:10]) for f in _items(demo))


def test_files_and_stac(demo: GreenDemo) -> None:
    for p in demo.files:
        assert p.exists(), p
    assert {demo.urban, demo.districts, demo.parks, demo.imagery} <= set(demo.files)
    scenes = read_scenes(demo.imagery)
    assert len(scenes) == 6
    assert {s.sensor for s in scenes} == {SENTINEL2_L2A}
    for y in (BASE, LATER):
        ds = [s.date for s in scenes if s.date.year == y]
        assert len(ds) == 3
        assert all(6 <= d.month <= 8 for d in ds)
    for s in scenes:
        assert set(s.assets) == {"blue", "green", "red", "nir", "qa"}
        red = s.assets["red"]
        assert red.scale_source == "raster:bands"
        assert red.scale == pytest.approx(1e-4)
        # processing baseline 02.14 before 2022-01-25, 05.11 (BOA_ADD_OFFSET) after
        assert red.offset == pytest.approx(-0.1 if s.date.year == LATER else 0.0)
        with rasterio.open(red.href) as r, rasterio.open(s.assets["qa"].href) as q:
            assert r.res == (10.0, 10.0) and q.res == (20.0, 20.0)
            assert r.crs.to_epsg() == 4551 and r.dtypes[0] == "uint16"
            assert q.transform.c == r.transform.c and q.transform.f == r.transform.f
        assert s.cloud_cover is not None
    # the window: the boundary's bounding box plus 500 m
    urban = gpd.read_file(demo.urban)
    w, s_, e, n = urban.total_bounds
    gw, gs, ge, gn = demo.grid.bounds
    for margin in (w - gw, s_ - gs, ge - e, gn - n):
        assert 500 <= margin < 520
    truth = json.loads((demo.imagery.parent.parent / "truth" / "truth.json").read_text("utf-8"))
    assert truth["synthetic"] is True and str(BASE) in truth and "change" in truth


def test_boundary_and_districts(demo: GreenDemo) -> None:
    urban = gpd.read_file(demo.urban)
    assert len(urban) == 1 and "synthetic" in urban["name"].iloc[0]
    b = urban.geometry.iloc[0]
    assert b.geom_type == "Polygon" and b.is_valid and len(b.interiors) == 0
    assert 2500e4 < b.area < 6000e4
    d = gpd.read_file(demo.districts)
    assert 4 <= len(d) <= 8
    assert d["name"].is_unique and d.geometry.is_valid.all()
    assert d.crs == urban.crs
    # they tile the boundary: areas add up, no overlaps, nothing outside
    assert d.geometry.area.sum() == pytest.approx(b.area, rel=1e-3)
    assert shapely.union_all(d.geometry.to_numpy()).area == pytest.approx(b.area, rel=1e-3)
    geoms = list(d.geometry)
    for i in range(len(geoms)):
        assert geoms[i].difference(b.buffer(0.5)).area < 1.0
        for j in range(i + 1, len(geoms)):
            assert geoms[i].intersection(geoms[j]).area < 1.0
    pop = d["population"].to_numpy(float)
    assert np.isnan(pop).sum() == 1
    assert (pop[~np.isnan(pop)] > 0).all()
    assert 150_000 < np.nansum(pop) < 320_000


def test_parks(demo: GreenDemo) -> None:
    p = gpd.read_file(demo.parks)
    b = gpd.read_file(demo.urban).geometry.iloc[0]
    assert 8 <= len(p) <= 20
    assert {"name", "year_built"} <= set(p.columns)
    assert p["name"].is_unique
    assert all(g.difference(b.buffer(0.5)).area < 1.0 for g in p.geometry)
    geoms = list(p.geometry)
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            assert geoms[i].intersection(geoms[j]).area < 1.0
    years = p["year_built"].astype(int)
    assert (years <= BASE).sum() >= len(p) // 2
    new = p[(years > BASE) & (years <= LATER)]
    assert len(new) >= 3
    assert 100.0 <= new.geometry.area.sum() / 1e4 <= 250.0
    area = p.geometry.area
    assert (area < 2000).any() and ((area >= 2000) & (area < 5000)).any() and (area >= 5000).any()
    assert (new.geometry.area < 5000).any()  # a new park below the 5,000 m2 rule too


def test_truth(demo: GreenDemo) -> None:
    t = demo.truth
    ch = t["change"]
    assert 100.0 <= ch["new_ha"] <= 250.0
    assert ch["lost_ha"] > 0 and ch["lost_ha_excl_cropland"] > 0
    assert ch["new_ha_excl_cropland"] > ch["new_ha"]   # the new district's park was cropland
    assert ch["net_ha"] == pytest.approx(ch["new_ha"] - ch["lost_ha"], abs=0.02)
    px_ha = demo.grid.pixel_area_m2 / 1e4
    for y in (BASE, LATER):
        ty = t[y]
        assert ty["cropland_green_ha"] > 0
        assert ty["green_ha"] == pytest.approx(ty["cropland_green_ha"]
                                               + ty["green_ha_excl_cropland"], abs=0.02)
        with rasterio.open(demo.truth_masks[y]) as src:
            m = src.read(1)
        assert src.nodata == 255
        assert (m == 1).sum() * px_ha == pytest.approx(ty["green_ha"], abs=0.02)
        assert ((m == 0) | (m == 1)).sum() * px_ha == pytest.approx(ty["urban_area_ha"],
                                                                    abs=0.02)
        assert sum(v["green_ha"] for v in ty["districts"].values()) == pytest.approx(
            ty["green_ha"], abs=0.1)
    assert t[BASE]["cropland_green_ha"] > t[LATER]["cropland_green_ha"]
    # the new parks are green only in the later year
    with rasterio.open(demo.truth_masks[BASE]) as a, rasterio.open(demo.truth_masks[LATER]) as b:
        g0, g1 = a.read(1), b.read(1)
    new = (g1 == 1) & (g0 == 0)
    assert new.sum() * px_ha == pytest.approx(ch["new_ha"], abs=0.02)
    # land cover: the new parks are 810 in the later year only
    parks = gpd.read_file(demo.parks)
    central = parks[parks["former_use"] == "bare"].geometry.iloc[0]
    inner = rasterio.features.rasterize([(central.buffer(-20.0), 1)], out_shape=demo.grid.shape,
                                        transform=demo.grid.transform) == 1
    with rasterio.open(demo.landcover[BASE]) as a, rasterio.open(demo.landcover[LATER]) as b:
        lc0, lc1 = a.read(1), b.read(1)
    assert (lc0[inner] == 1206).mean() > 0.95 and (lc1[inner] == 810).mean() > 0.95


def test_spectra(demo: GreenDemo) -> None:
    nd = {k: (v[3] - v[2]) / (v[3] + v[2]) for k, v in SPECTRA.items()}
    assert nd["vegetation"] > 0.8 and nd["water"] < 0 and 0.0 < nd["impervious"] < 0.3
    d = date(BASE, 6, 28)   # a clear date
    red, nir = _refl(demo, d, "B04"), _refl(demo, d, "B08")
    v = _ndvi(red, nir)
    scl = _scl10(demo, d)
    with rasterio.open(demo.landcover[BASE]) as src:
        lc = src.read(1)
    parks = gpd.read_file(demo.parks)
    old = parks[parks["year_built"] <= BASE]
    inner = rasterio.features.rasterize([(g.buffer(-20.0), 1) for g in old.geometry
                                         if not g.buffer(-20.0).is_empty],
                                        out_shape=demo.grid.shape,
                                        transform=demo.grid.transform) == 1
    park = inner & (lc == 810) & (scl == 4)
    assert park.sum() > 1000
    assert np.median(v[park]) > 0.7 and np.quantile(v[park], 0.05) > 0.6
    water = ndimage.binary_erosion(np.isin(lc, (1101, 1103, 1104)), iterations=3) & (scl == 6)
    assert water.sum() > 500
    assert (v[water] < 0).mean() > 0.99
    ind = ndimage.binary_erosion(lc == 601, iterations=2) & (scl == 5)
    assert 0.05 < np.median(v[ind]) < 0.3
    assert 0.12 < np.median(red[ind]) < 0.2 and 0.18 < np.median(nir[ind]) < 0.26
    # the DN conventions: the same surface is 1000 DN higher after baseline 04.00
    dn20, _ = _band(demo, d, "B04")
    dn25, _ = _band(demo, date(LATER, 6, 22), "B04")
    ind25 = ind & (_scl10(demo, date(LATER, 6, 22)) == 5)
    assert np.median(dn25[ind25].astype(float) - dn20[ind25]) == pytest.approx(1000.0, abs=80.0)


def test_clouds_shadows_and_partial_coverage(demo: GreenDemo) -> None:
    cloudy = date(BASE, 7, 23)
    scl = _scl10(demo, cloudy)
    data = scl > 0
    cloud = np.isin(scl, (8, 9))
    assert 0.12 < cloud[data].mean() < 0.45
    assert (scl == 9).any() and (scl == 3).sum() > 0.005 * data.sum()
    # thin, unflagged cloud edges: clear-flagged pixels next to the clouds are brighter in blue
    # than on the clear date, and their NDVI lower
    ring = ndimage.binary_dilation(cloud, iterations=4) & ~cloud & np.isin(scl, (4, 5))
    far = ~ndimage.binary_dilation(cloud | (scl == 3), iterations=30) & np.isin(scl, (4, 5))
    clear = date(BASE, 6, 28)
    db_ring = _refl(demo, cloudy, "B02")[ring] - _refl(demo, clear, "B02")[ring]
    db_far = _refl(demo, cloudy, "B02")[far] - _refl(demo, clear, "B02")[far]
    assert np.nanmean(db_ring) > np.nanmean(db_far) + 0.02
    # the later year's swath-edge date: nodata (DN 0, SCL 0) over a large part of the window
    partial = date(LATER, 7, 17)
    red, _ = _band(demo, partial, "B04")
    scl_p, _ = _band(demo, partial, "SCL")
    full, _ = _band(demo, date(LATER, 6, 22), "B04")
    frac = (red > 0).sum() / (full > 0).sum()
    assert 0.45 < frac < 0.75
    assert (scl_p == 0).sum() > 0.25 * scl_p.size
    (it,) = [f for f in _items(demo) if f["properties"]["datetime"].startswith("2025-07-17")]
    assert it["properties"]["sinkmap:coverage_pct"] == pytest.approx(60.0, abs=3.0)


def _otsu(v: np.ndarray) -> float:
    hist, edges = np.histogram(v, bins=256, range=(-1.0, 1.0))
    p = hist / hist.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    w0, mu = np.cumsum(p), np.cumsum(p * mids)
    with np.errstate(invalid="ignore", divide="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1.0 - w0))
    return float(edges[int(np.nanargmax(np.where(np.isfinite(between), between, -1))) + 1])


def test_max_ndvi_composite_recovers_truth(demo: GreenDemo) -> None:
    """Read back through gis.imagery like the analysis would: max NDVI over clear SCL 4/5/6
    observations, water never green, Otsu threshold inside the boundary."""
    scenes = read_scenes(demo.imagery)
    urban = gpd.read_file(demo.urban)
    grid = analysis_grid(scenes, tuple(urban.total_bounds))
    # the analysis grid is a window of the demo grid (same lattice)
    c0 = round((grid.transform.c - demo.grid.transform.c) / 10.0)
    r0 = round((demo.grid.transform.f - grid.transform.f) / 10.0)
    assert c0 > 0 and r0 > 0
    sl = (slice(r0, r0 + grid.height), slice(c0, c0 + grid.width))
    measured = {}
    for y in (BASE, LATER):
        best = np.full(grid.shape, np.nan, np.float32)
        water = np.zeros(grid.shape, bool)
        seen = np.zeros(grid.shape, bool)
        for s in (s for s in scenes if s.date.year == y):
            b = load_bands(s, grid, ("red", "nir", "qa"))
            red, nir = b["red"].values, b["nir"].values
            qa = b["qa"].values
            clear = np.isin(qa, (4, 5, 6)) & np.isfinite(red) & np.isfinite(nir)
            water |= clear & (qa == 6)
            seen |= clear
            np.fmax(best, np.where(clear & (qa != 6), _ndvi(red, nir), np.nan), out=best)
        with rasterio.open(demo.truth_masks[y]) as src:
            truth = src.read(1)[sl]
        inside = truth != 255
        observed = inside & seen
        t = _otsu(best[observed & np.isfinite(best)])
        pred = observed & ~water & (best >= t)
        agree = float((pred == (truth == 1))[observed].mean())
        measured[y] = (round(t, 3), round(100 * agree, 2))
        assert 0.35 < t < 0.65
        assert agree > 0.97, measured
        assert observed.sum() / inside.sum() > 0.97
        assert agree * 100 == pytest.approx(
            demo.truth[y]["composite_check"]["agreement_pct"], abs=0.3)
    print("max-NDVI + Otsu (threshold, agreement %):", measured)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.suffix in (".tif", ".json")}


def test_deterministic_and_cheap_variant(model: CountyModel, tmp_path: Path) -> None:
    a = write_green_demo(model, tmp_path / "a", resolution_m=20.0)
    b = write_green_demo(model, tmp_path / "b", resolution_m=20.0)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    for key in ("urban", "districts", "parks"):
        ga, gb = gpd.read_file(getattr(a, key)), gpd.read_file(getattr(b, key))
        assert ga.drop(columns="geometry").equals(gb.drop(columns="geometry"))
        assert all(x.equals_exact(y, 0.0) for x, y in zip(ga.geometry, gb.geometry,
                                                            strict=True))
    assert a.truth == b.truth
    # the 20 m variant: all bands on one grid, NIR as B8A
    sc = read_scenes(a.imagery)[0]
    with rasterio.open(sc.assets["nir"].href) as n, rasterio.open(sc.assets["qa"].href) as q:
        assert n.res == q.res == (20.0, 20.0)
        assert Path(sc.assets["nir"].href).name == "B8A.tif"
    # another seed: another layout, same kind of numbers
    c = write_green_demo(model, tmp_path / "c", seed=7, resolution_m=20.0)
    assert _digest(tmp_path / "c") != _digest(tmp_path / "a")
    assert 100.0 <= c.truth["change"]["new_ha"] <= 250.0


def test_layout_only_and_bad_years(model: CountyModel) -> None:
    lay = green_layout(model, resolution_m=10.0)
    assert isinstance(lay.grid, GridSpec) and lay.grid.res == (10.0, 10.0)
    # the 10 m grid nests in the 20 m SCL grid
    assert math.isclose(lay.grid.transform.c % 20.0, 0.0, abs_tol=1e-6)
    assert lay.grid.height % 2 == 0 and lay.grid.width % 2 == 0
    with pytest.raises(Exception, match="baseline"):
        write_green_demo(model, Path("/nonexistent"), years=(2025, 2020))


def test_refuses_to_overwrite(demo: GreenDemo, model: CountyModel) -> None:
    with pytest.raises(Exception, match="exists"):
        write_green_demo(model, demo.urban.parent)
