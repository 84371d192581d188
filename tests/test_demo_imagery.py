"""Synthetic Sentinel-2 L2A-like spring imagery of the demo county (sinkmap.demo_imagery).

Runs on a 5 km x 5 km clip of the 10 m model so the whole module stays fast."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from gis.grid import GridSpec
from sinkmap.demo_county import CountyModel
from sinkmap.demo_imagery import (
    DEFAULT_SCHEDULE,
    SpringImagery,
    default_dates,
    endmember_ndti,
    generate_spring_imagery,
    in_default_window,
    write_field_samples,
)

CLIP_M = 5000.0
DRY, CLOUDY, WET, SWATH, OUTSIDE = (date(2025, 4, 10), date(2025, 5, 10), date(2025, 4, 30),
                                    date(2025, 4, 20), date(2025, 6, 4))


@pytest.fixture(scope="module")
def model() -> CountyModel:
    full = CountyModel.build(seed=2020, resolution_m=10.0)
    c = full.county.centroid
    h = CLIP_M / 2
    grid = GridSpec.from_bounds((c.x - h, c.y - h, c.x + h, c.y + h), 10.0, full.grid.crs)
    return full.with_grid(grid)


@pytest.fixture(scope="module")
def imagery(model: CountyModel, tmp_path_factory: pytest.TempPathFactory) -> SpringImagery:
    return generate_spring_imagery(model, tmp_path_factory.mktemp("spring"))


def _items(im: SpringImagery) -> list[dict]:
    return json.loads(im.items.read_text(encoding="utf-8"))["features"]


def _item(im: SpringImagery, d: date) -> dict:
    (it,) = [f for f in _items(im) if f["properties"]["datetime"].startswith(d.isoformat())]
    return it


def _read(im: SpringImagery, d: date, band: str) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(im.items.parent / _item(im, d)["assets"][band]["href"]) as src:
        return src.read(1), src.transform


def _refl(dn: np.ndarray) -> np.ndarray:
    return np.where(dn > 0, (dn.astype(float) - 1000.0) / 10000.0, np.nan)


def test_stac_item_collection(imagery: SpringImagery) -> None:
    coll = json.loads(imagery.items.read_text(encoding="utf-8"))
    assert coll["type"] == "FeatureCollection"
    assert len(coll["features"]) == len(imagery.dates) == len(DEFAULT_SCHEDULE)
    for it in coll["features"]:
        assert it["type"] == "Feature" and it["stac_version"] == "1.0.0"
        assert all(u.startswith("https://stac-extensions.github.io/") for u in
                   it["stac_extensions"])
        assert {"id", "geometry", "bbox", "properties", "links", "assets"} <= set(it)
        assert it["geometry"]["type"] in ("Polygon", "MultiPolygon")
        w, s, e, n = it["bbox"]
        assert 125 < w < e < 127 and 42 < s < n < 43.2
        p = it["properties"]
        datetime.fromisoformat(p["datetime"].replace("Z", "+00:00"))
        assert p["platform"] == "sentinel-2b" and p["constellation"] == "sentinel-2"
        assert p["s2:processing_baseline"] == "05.10" and p["proj:epsg"] == 4551
        assert 0.0 <= p["eo:cloud_cover"] <= 100.0
        assert set(it["assets"]) == {"B04", "B08", "B11", "B12", "SCL"}
        for key, a in it["assets"].items():
            href = a["href"]
            assert not Path(href).is_absolute() and "://" not in href, href
            path = imagery.items.parent / href
            assert path.exists(), href
            (rb,) = a["raster:bands"]
            if key == "SCL":
                assert "scale" not in rb and "offset" not in rb and rb["nodata"] == 0
            else:
                assert (rb["scale"], rb["offset"], rb["nodata"], rb["data_type"]) == (
                    0.0001, -0.1, 0, "uint16")
                assert "reflectance" in a["roles"]
            with rasterio.open(path) as src:
                assert src.crs.to_epsg() == 4551
                assert list(src.shape) == a["proj:shape"]
                assert src.overviews(1) or min(src.shape) < 1024
    assert not list(imagery.items.parent.glob(".*")), "staging files left behind"


def test_grids_aligned_and_dn_convention(imagery: SpringImagery, model: CountyModel) -> None:
    b04, t10 = _read(imagery, DRY, "B04")
    b11, t20 = _read(imagery, DRY, "B11")
    scl, t_scl = _read(imagery, DRY, "SCL")
    assert t10 == model.grid.transform
    assert (t20.c, t20.f) == (t10.c, t10.f) and t20.a == 2 * t10.a and t20.e == 2 * t10.e
    assert t_scl == t20 and b11.shape == scl.shape
    assert b04.dtype == np.uint16 and scl.dtype == np.uint8
    inside = model.inside()
    assert (b04[~inside] == 0).all() and (b04[inside] > 0).all()
    # DN = 10000 * reflectance + 1000: land surfaces between ~0 and ~0.6
    clear = np.isin(scl, (4, 5))
    r11 = _refl(b11)[clear]
    assert 0.12 < np.median(r11) < 0.35
    assert np.nanmin(_refl(b04)) > -0.05 and np.nanpercentile(_refl(b04), 99) < 0.7


def _field_truth_20m(model: CountyModel, shape: tuple[int, int], t20: rasterio.Affine
                     ) -> dict[str, np.ndarray]:
    g20 = GridSpec.create(model.grid.crs, t20, shape)
    return model.with_grid(g20).fields(Window(0, 0, shape[1], shape[0]))


def test_conservation_fields_have_higher_ndti(imagery: SpringImagery,
                                              model: CountyModel) -> None:
    b11, t20 = _read(imagery, DRY, "B11")
    b12, _ = _read(imagery, DRY, "B12")
    scl, _ = _read(imagery, DRY, "SCL")
    f = _field_truth_20m(model, b11.shape, t20)
    s1, s2 = _refl(b11), _refl(b12)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndti = (s1 - s2) / (s1 + s2)
    clear = np.isin(scl, (4, 5)) & np.isfinite(ndti)
    dry_field = (f["field_key"] >= 0) & np.isin(f["crop"], (1, 3))
    cons = ndti[clear & dry_field & f["conservation"]]
    conv = ndti[clear & dry_field & ~f["conservation"]]
    assert len(cons) > 200 and len(conv) > 200
    assert np.median(cons) > np.median(conv) + 0.03
    # NDTI grows with the true residue cover (mixed edge pixels and noise included)
    res = f["residue_pct"][clear & dry_field]
    assert np.corrcoef(res, ndti[clear & dry_field])[0, 1] > 0.4


def test_per_date_stats(imagery: SpringImagery) -> None:
    st = {s.date: s for s in imagery.stats}
    assert set(st) == {d.isoformat() for d in imagery.dates}
    dry = st[DRY.isoformat()]
    assert dry.dry and dry.fit_b > 300 and dry.fit_r2 > 0.4
    assert 0.15 < dry.ndti_residue < 0.25 and 0.04 < dry.ndti_soil < 0.11
    assert dry.field_ndvi_below_03_pct > 95
    wet = st[WET.isoformat()]
    assert not wet.dry and wet.fit_r2 < dry.fit_r2
    assert wet.ndti_residue - wet.ndti_soil < 0.6 * (dry.ndti_residue - dry.ndti_soil)
    r, s = endmember_ndti(0.0)
    assert r == pytest.approx(0.2) and 0.05 < s < 0.09


def test_cloudy_date_flagged(imagery: SpringImagery, model: CountyModel) -> None:
    scl, _ = _read(imagery, CLOUDY, "SCL")
    b04, _ = _read(imagery, CLOUDY, "B04")
    data = scl > 0
    cloud = np.isin(scl, (8, 9))
    assert cloud[data].mean() > 0.5
    stats = {s.date: s for s in imagery.stats}
    assert stats[CLOUDY.isoformat()].cloud_cover_pct > 60
    assert _item(imagery, CLOUDY)["properties"]["eo:cloud_cover"] > 60
    # clouds are bright: red reflectance of flagged pixels (2 x 2 block means) well above land
    red = _refl(b04)
    red20 = np.nanmean(red[: red.shape[0] // 2 * 2, : red.shape[1] // 2 * 2].reshape(
        red.shape[0] // 2, 2, red.shape[1] // 2, 2), axis=(1, 3))
    c = cloud[: red20.shape[0], : red20.shape[1]]
    land = np.isin(scl, (4, 5))[: red20.shape[0], : red20.shape[1]]
    assert np.nanmedian(red20[c]) > np.nanmedian(red20[land]) + 0.15
    clear_scl, _ = _read(imagery, DRY, "SCL")
    assert np.isin(clear_scl, (8, 9))[clear_scl > 0].mean() < 0.2


def test_partial_swath_date(imagery: SpringImagery, model: CountyModel) -> None:
    scl, _ = _read(imagery, SWATH, "SCL")
    b04, _ = _read(imagery, SWATH, "B04")
    inside = model.inside()
    missing = inside & (b04 == 0)
    assert 0.2 < missing.sum() / inside.sum() < 0.8
    stats = {s.date: s for s in imagery.stats}
    assert 20 < stats[SWATH.isoformat()].coverage_pct < 80
    assert (scl == 0).sum() > 0


def test_out_of_window_date(imagery: SpringImagery) -> None:
    assert OUTSIDE in imagery.dates and not in_default_window(OUTSIDE)
    assert sum(not in_default_window(d) for d in imagery.dates) == 1
    it = _item(imagery, OUTSIDE)
    for a in it["assets"].values():
        assert (imagery.items.parent / a["href"]).exists()
    assert default_dates(2025) == list(imagery.dates)


def test_deterministic_for_a_seed(imagery: SpringImagery, model: CountyModel,
                                  tmp_path: Path) -> None:
    again = generate_spring_imagery(model, tmp_path / "again", dates=[DRY, CLOUDY],
                                    n_sample_parcels=0)
    assert again.samples is None
    for d in (DRY, CLOUDY):
        for band in ("B04", "B12", "SCL"):
            a, _ = _read(imagery, d, band)
            b, _ = _read(again, d, band)
            assert np.array_equal(a, b), (d, band)


def test_field_samples(imagery: SpringImagery, model: CountyModel, tmp_path: Path) -> None:
    assert imagery.samples is not None and imagery.samples.exists()
    pts = gpd.read_file(imagery.samples)
    assert pts.crs.to_epsg() == 4551 and (pts.geom_type == "Point").all()
    assert pts["residue_pct"].between(0, 100).all()
    assert len(pts) >= 30 and pts["parcel_id"].nunique() >= 25
    keys = pts["parcel_id"].str.slice(1).astype(np.int64).to_numpy()
    lc, _ = model.field_class(keys)
    truth = model.field_attributes(keys, lc)
    assert (truth["crop"] != 2).all()
    cons = truth["conservation"]
    assert cons.any() and (~cons).any()
    assert pts["residue_pct"][cons].mean() > pts["residue_pct"][~cons].mean() + 20
    # observations scatter around the truth (measurement error), not on it
    err = pts["residue_pct"].to_numpy() - truth["residue_pct"]
    assert 1.0 < np.abs(err).mean() < 12.0
    # parcels given as a layer with parcel_id only (the demo's parcels.gpkg columns)
    parcels = gpd.read_file(imagery.samples).drop_duplicates("parcel_id").copy()
    parcels["geometry"] = parcels.geometry.buffer(60.0, cap_style="square")
    parcels = parcels[["parcel_id", "geometry"]]
    out = write_field_samples(model, parcels, tmp_path / "s.gpkg", n_parcels=10)
    again = gpd.read_file(out)
    assert len(again) > 0 and set(again["parcel_id"]) <= set(parcels["parcel_id"])


def test_cheap_20m_variant(model: CountyModel, tmp_path: Path) -> None:
    im = generate_spring_imagery(model, tmp_path / "r20", dates=[DRY], resolution_m=20.0,
                                 n_sample_parcels=0)
    (it,) = _items(im)
    assert set(it["assets"]) == {"B04", "B8A", "B11", "B12", "SCL"}
    shapes = {tuple(a["proj:shape"]) for a in it["assets"].values()}
    assert len(shapes) == 1
    assert all(a["gsd"] == 20.0 for a in it["assets"].values())
