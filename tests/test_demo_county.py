"""The synthetic demo county: determinism, classes, proportions, vectors, truth."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rasterio.features
import shapely
from rasterio.windows import Window

from sinkmap.demo_county import (
    BUILT_CODES,
    CODES,
    CROPLAND_CODES,
    FOREST_CODES,
    MU_M2,
    TRANSITION_TYPES,
    WATER_CODES,
    WETLAND_CODES,
    CountyModel,
    DemoCounty,
    generate_county,
    transition_type,
)

COARSE = 120.0


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


@pytest.fixture(scope="module")
def coarse(tmp_path_factory: pytest.TempPathFactory) -> DemoCounty:
    return generate_county(tmp_path_factory.mktemp("demo120"), resolution_m=COARSE, seed=2020)


@pytest.fixture(scope="module")
def fine(tmp_path_factory: pytest.TempPathFactory) -> DemoCounty:
    """The one run at the default 30 m resolution (proportions, parcels)."""
    return generate_county(tmp_path_factory.mktemp("demo30"), resolution_m=30.0, seed=2020)


def _truth(c: DemoCounty) -> dict:
    return json.loads(c.truth.read_text(encoding="utf-8"))


def test_files_and_layout(coarse: DemoCounty) -> None:
    files = coarse.files()
    assert set(files) >= {"boundary", "dem", "landcover_2020", "landcover_2025", "townships",
                          "rivers", "reservoirs", "roads", "settlements", "parcels",
                          "forest_inventory", "truth"}
    for p in files.values():
        assert p.exists() and p.stat().st_size > 0, p
    assert all(p.parent == coarse.inputs_dir for k, p in files.items() if k != "truth")
    assert coarse.truth.parent.name == "truth"
    assert not list(coarse.inputs_dir.glob(".*")), "staging files left behind"


def test_everything_in_epsg4551(coarse: DemoCounty) -> None:
    for k, p in coarse.files().items():
        if p.suffix == ".tif":
            with rasterio.open(p) as src:
                assert src.crs.to_epsg() == 4551, k
                assert src.res == (COARSE, COARSE)
        elif p.suffix == ".gpkg":
            assert gpd.read_file(p).crs.to_epsg() == 4551, k
    assert coarse.grid.crs.to_epsg() == 4551


def test_deterministic_for_a_seed(coarse: DemoCounty, tmp_path: Path) -> None:
    again = generate_county(tmp_path / "again", resolution_m=COARSE, seed=2020)
    for y in ("landcover_2020", "landcover_2025", "dem"):
        assert np.array_equal(_read(getattr(coarse, y)), _read(getattr(again, y))), y
    assert _truth(coarse)["parcels"] == _truth(again)["parcels"]
    for layer in ("parcels", "forest_inventory", "townships", "roads"):
        a, b = gpd.read_file(getattr(coarse, layer)), gpd.read_file(getattr(again, layer))
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry")), layer
        assert a.geometry.geom_equals_exact(b.geometry, 1e-6).all(), layer


def test_landcover_codes_and_nodata(coarse: DemoCounty) -> None:
    county = gpd.read_file(coarse.boundary).geometry.iloc[0]
    inside = rasterio.features.geometry_mask(
        [county], out_shape=coarse.grid.shape, transform=coarse.grid.transform, invert=True)
    for path in (coarse.landcover_2020, coarse.landcover_2025):
        with rasterio.open(path) as src:
            assert src.dtypes[0] == "uint16" and src.nodata == 0
            a = src.read(1)
        assert set(np.unique(a).tolist()) <= set(CODES) | {0}
        assert (a[~inside] == 0).all()
        assert (a[inside] > 0).all()


def _shares(c: DemoCounty, year: int) -> dict[str, float]:
    a = _read(getattr(c, f"landcover_{year}"))
    n = (a > 0).sum()

    def share(codes: tuple[int, ...]) -> float:
        return 100.0 * np.isin(a, codes).sum() / n

    return {"forest": share(FOREST_CODES), "cropland": share(CROPLAND_CODES),
            "built": share(BUILT_CODES), "water_wetland": share(WATER_CODES + WETLAND_CODES),
            "paddy": share((101,)), "dry": share((103,))}


def test_class_proportions_are_plausible_for_meihekou(fine: DemoCounty) -> None:
    s = _shares(fine, 2020)
    assert 35 <= s["forest"] <= 45, s
    assert 40 <= s["cropland"] <= 50, s
    assert 5 <= s["built"] <= 8, s
    assert 2 <= s["water_wetland"] <= 4, s
    assert s["dry"] > s["paddy"] > 5, s


def test_dem_plains_north_west_hills_south_east(coarse: DemoCounty) -> None:
    z = _read(coarse.dem)
    lc = _read(coarse.landcover_2020)
    with rasterio.open(coarse.dem) as src:
        assert src.dtypes[0] == "float32"
    inside = lc > 0
    assert 230 < np.percentile(z[inside], 2) < 330
    assert 650 < np.percentile(z[inside], 99) < 1200
    rivers = gpd.read_file(coarse.rivers)
    huifa = rivers[rivers["name"] == "辉发河"].geometry.iloc[0]
    county = gpd.read_file(coarse.boundary).geometry.iloc[0]
    near = huifa.buffer(2000).intersection(county)
    mask = rasterio.features.geometry_mask([near], out_shape=coarse.grid.shape,
                                           transform=coarse.grid.transform, invert=True)
    assert 240 < np.median(z[mask]) < 350       # the valley plain
    # paddy sits low on flood plains, forest high on the hills
    assert np.median(z[lc == 101]) < np.median(z[lc == 103]) < np.median(z[lc == 301])
    # reservoirs are flat water surfaces
    res = gpd.read_file(coarse.reservoirs)
    for geom, level in zip(res.geometry, res["level_m"], strict=True):
        m = rasterio.features.geometry_mask([geom.buffer(-300)], out_shape=coarse.grid.shape,
                                            transform=coarse.grid.transform, invert=True)
        if m.any():
            assert np.allclose(z[m], level, atol=0.05)


def test_townships_tile_the_county(coarse: DemoCounty) -> None:
    county = gpd.read_file(coarse.boundary).geometry.iloc[0]
    tw = gpd.read_file(coarse.townships)
    assert 14 <= len(tw) <= 18
    assert {"code", "name_zh", "name_pinyin"} <= set(tw.columns)
    assert tw["code"].is_unique and tw["name_zh"].is_unique
    assert all(c.startswith("220581") and len(c) == 9 for c in tw["code"])
    assert {"山城镇", "海龙镇", "红梅镇", "梅河口城区"} <= set(tw["name_zh"])
    assert tw.geometry.is_valid.all()
    assert tw.area.sum() == pytest.approx(county.area, rel=1e-3)
    union = shapely.union_all(tw.geometry.to_numpy())
    assert union.area == pytest.approx(county.area, rel=1e-3)
    assert union.symmetric_difference(county).area < 1e-4 * county.area
    assert all("synthetic" in n for n in tw["note"])


def test_hydrography_and_settlements(coarse: DemoCounty) -> None:
    county = gpd.read_file(coarse.boundary).geometry.iloc[0]
    res = gpd.read_file(coarse.reservoirs)
    assert len(res) >= 3
    assert {"海龙水库", "曙光水库", "磨盘山水库"} <= set(res["name"])
    assert (res.geom_type == "Polygon").all()
    assert all(county.contains(g) for g in res.geometry)
    assert (res.area > 0.3e6).all()
    assert all("synthetic" in n for n in res["capacity_note"])
    rivers = gpd.read_file(coarse.rivers)
    assert "辉发河" in set(rivers["name"]) and len(rivers) >= 4
    assert {"name", "name_pinyin"} <= set(rivers.columns)
    roads = gpd.read_file(coarse.roads)
    assert {"main", "rural", "expressway"} <= set(roads["class"])
    assert set(roads["code"]) == {1003, 1006}
    st = gpd.read_file(coarse.settlements)
    assert (st.geom_type == "Point").all()
    assert set(st["kind"]) == {"town", "village"}
    assert 40 <= (st["kind"] == "village").sum() <= 80
    assert st.geometry.within(county).all()
    lc = _read(coarse.landcover_2020)
    for code in (1101, 1103, 701, 702, 601, 1003, 1006, 1108, 402, 1106):
        assert (lc == code).any(), code


def test_transitions_2020_to_2025(coarse: DemoCounty) -> None:
    a, b = _read(coarse.landcover_2020), _read(coarse.landcover_2025)
    assert (a != b).any()
    assert ((a == 0) == (b == 0)).all()
    tt = transition_type(a, b)
    truth = _truth(coarse)
    cell_ha = COARSE * COARSE / 1e4
    county_ha = truth["county_area_ha"]
    for k, name in enumerate(TRANSITION_TYPES, start=1):
        cells = int((tt == k).sum())
        assert cells > 0, name
        t = truth["transitions"][name]
        assert t["cells"] == cells
        assert t["area_ha"] == pytest.approx(cells * cell_ha, rel=1e-6)
        assert 0.1 <= 100 * t["area_ha"] / county_ha <= 2.5, (name, t["area_ha"])
    # every change is one of the four kinds
    assert ((a != b) == (tt > 0)).all()
    # afforestation only from dry cropland, wetland restoration only from cropland
    assert set(np.unique(a[tt == 1]).tolist()) <= {103}
    assert set(np.unique(a[tt == 3]).tolist()) <= set(CROPLAND_CODES)


def test_parcels_lie_on_2020_cropland(fine: DemoCounty) -> None:
    p = gpd.read_file(fine.parcels)
    assert 1000 <= len(p) <= 5000
    assert {"parcel_id", "township", "declared_practice", "declared_area_mu", "crop"} <= set(
        p.columns)
    assert p["parcel_id"].is_unique
    assert set(p["declared_practice"]) == {"conservation", "conventional"}
    assert set(p["crop"]) == {"maize", "rice", "soybean"}
    tw = set(gpd.read_file(fine.townships)["name_zh"])
    assert set(p["township"]) <= tw
    ha = p.area / 1e4
    assert 1.0 <= ha.median() <= 5.0 and ha.min() > 0.5 and ha.max() < 8
    assert not p.geometry.overlaps(p.geometry.shift(1)).fillna(False).any()
    ids = rasterio.features.rasterize(
        [(g, i + 1) for i, g in enumerate(p.geometry)], out_shape=fine.grid.shape,
        transform=fine.grid.transform, dtype="int32")
    lc = _read(fine.landcover_2020)
    on = ids > 0
    assert np.isin(lc[on], CROPLAND_CODES).mean() >= 0.95
    # rice parcels are on paddy
    rice = np.isin(ids, np.nonzero(p["crop"].to_numpy() == "rice")[0] + 1)
    assert (lc[rice] == 101).mean() > 0.9
    # declared areas: close to the true area, with noise
    true_mu = p.area / MU_M2
    rel = (p["declared_area_mu"] - true_mu) / true_mu
    assert abs(rel.median()) < 0.02
    assert 0.005 < rel.abs().median() < 0.06
    assert (rel.abs() > 0.1).sum() > 0  # some gross errors exist


def test_truth_for_parcels(fine: DemoCounty) -> None:
    truth = _truth(fine)
    assert truth["synthetic"] is True and "SYNTHETIC" in truth["statement"]
    assert truth["seed"] == 2020 and truth["resolution_m"] == 30.0
    p = gpd.read_file(fine.parcels)
    tp = {t["parcel_id"]: t for t in truth["parcels"]}
    assert set(tp) == set(p["parcel_id"])
    cons = np.array([tp[i]["true_practice"] == "conservation" for i in p["parcel_id"]])
    resid = np.array([tp[i]["residue_cover_pct"] for i in p["parcel_id"]])
    assert 0.15 < cons.mean() < 0.6
    assert resid[cons].min() >= 30 and resid[~cons].max() <= 20
    declared = p["declared_practice"].to_numpy() == "conservation"
    agree = (declared == cons).mean()
    assert 0.8 < agree < 0.99  # declarations are mostly, not always, true
    assert all(tp[i]["true_practice"] == "conventional"
               for i in p.loc[p["crop"] == "rice", "parcel_id"])


def test_forest_inventory(coarse: DemoCounty) -> None:
    inv = gpd.read_file(coarse.forest_inventory)
    assert len(inv) > 100
    assert {"xiaoban_id", "township", "species_group", "species_en", "origin", "age_yr",
            "volume_m3_per_ha", "area_ha"} <= set(inv.columns)
    assert inv["xiaoban_id"].is_unique
    assert set(inv["species_group"]) <= {"蒙古栎", "阔叶混交林", "落叶松", "红松", "杨树",
                                         "针阔混交林"}
    assert set(inv["origin"]) == {"natural", "plantation"}
    assert inv["age_yr"].between(3, 120).all()
    assert inv["volume_m3_per_ha"].between(5, 330).all()
    assert 60 <= inv["volume_m3_per_ha"].median() <= 220
    assert inv["area_ha"].to_numpy() == pytest.approx(inv.area.to_numpy() / 1e4, abs=0.01)
    for _, g in inv.groupby("species_group"):
        if len(g) > 20:
            assert np.corrcoef(g["age_yr"], g["volume_m3_per_ha"])[0, 1] > 0.5
    cov = _truth(coarse)["forest_inventory"]["coverage_of_forest_cells"]
    assert 0.6 <= cov <= 0.9
    # the inventory lies mostly on 2020 forest
    lc = _read(coarse.landcover_2020)
    m = rasterio.features.geometry_mask(list(inv.geometry), out_shape=coarse.grid.shape,
                                        transform=coarse.grid.transform, invert=True)
    assert np.isin(lc[m], FOREST_CODES).mean() > 0.75


def test_model_windows_match_the_files(coarse: DemoCounty) -> None:
    model = CountyModel.build(2020, COARSE)
    assert model.grid == coarse.grid
    win = Window(100, 200, 150, 120)
    with rasterio.open(coarse.landcover_2025) as src:
        assert np.array_equal(model.landcover(2025, win), src.read(1, window=win))
    with rasterio.open(coarse.dem) as src:
        assert np.allclose(model.elevation(win), src.read(1, window=win), atol=0.06)
    f = model.fields(win)
    crop = np.isin(model.landcover(2020, win), CROPLAND_CODES)
    assert ((f["field_key"] >= 0) == crop).all()
    assert set(np.unique(f["crop"][crop]).tolist()) <= {1, 2, 3}


def test_another_seed_differs_and_progress_is_reported(
        coarse: DemoCounty, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    other = generate_county(tmp_path, resolution_m=COARSE, seed=7,
                            progress=lambda s, i, n: calls.append((s, i, n)))
    for y in ("landcover_2020", "landcover_2025", "dem"):
        assert not np.array_equal(_read(getattr(coarse, y)), _read(getattr(other, y))), y
    # the outline and the calibrated shares do not depend on the seed
    assert other.grid == coarse.grid
    s7, s2020 = _shares(other, 2020), _shares(coarse, 2020)
    assert abs(s7["forest"] - s2020["forest"]) < 3
    steps = [c[0] for c in calls]
    assert {"model", "vectors", "rasters", "cog_dem", "cog_landcover_2020", "parcels",
            "done"} <= set(steps)
    assert all(0 <= i <= n for _, i, n in calls)
    assert calls[-1] == ("done", 1, 1)
