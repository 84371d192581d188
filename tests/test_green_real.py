"""Green coverage and park service on real OpenStreetMap data (central Helsinki; ODbL, see
tests/data/osm_helsinki/SOURCE.md), against the same polygons measured with shapely.

The land cover is the OSM polygons burnt at 1 m (green -> park / grass / shrub / forest codes,
water, buildings on top); ``green_space`` then counts cells by the pixel-centre rule. The
independent answer is vector geometry: area(union(green) - buildings - water) inside each
district / the district's area, and the buildings' area within the parks' service buffers.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
import shapely
from affine import Affine

from gis.grid import GridSpec, make_raster
from layers.green import GreenSettings, green_space
from layers.landcover import load_scheme

DATA = Path(__file__).parent / "data" / "osm_helsinki" / "helsinki_green.gpkg"
CRS = "EPSG:3067"   # ETRS89 / TM35FIN, Finland's national projected CRS: chosen on purpose
RES = 1.0


def _layers() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    g = gpd.read_file(DATA, layer="green_space").to_crs(CRS)
    b = gpd.read_file(DATA, layer="buildings").to_crs(CRS)
    w = gpd.read_file(DATA, layer="water").to_crs(CRS)
    for df in (g, b, w):
        df.geometry = shapely.make_valid(df.geometry.values)
    return g, b, w


def _code(row: object) -> int:
    if getattr(row, "leisure", None) in ("park", "garden", "playground"):
        return 810
    if getattr(row, "natural", None) == "wood":
        return 301
    if getattr(row, "natural", None) in ("scrub", "heath"):
        return 305
    return 404


@pytest.fixture(scope="module")
def helsinki() -> dict:
    g, b, w = _layers()
    x0, y0, x1, y1 = g.total_bounds
    area = shapely.box(x0 + 50, y0 + 50, x1 - 50, y1 - 50)       # the "urban boundary"
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    quads = [shapely.box(x0, ym, xm, y1), shapely.box(xm, ym, x1, y1),
             shapely.box(x0, y0, xm, ym), shapely.box(xm, y0, x1, ym)]
    districts = gpd.GeoDataFrame({"name": ["NW", "NE", "SW", "SE"],
                                  "population": [12000.0, 9000.0, np.nan, 7000.0]},
                                 geometry=[q.intersection(area) for q in quads], crs=CRS)
    # the land cover: impervious (1003) everywhere, green polygons (smallest last, so a grass
    # patch inside a park keeps its own class), water, buildings on top
    c0, r0 = np.floor(x0), np.ceil(y1)
    shape = (int(np.ceil((r0 - y0) / RES)), int(np.ceil((x1 - c0) / RES)))
    t = Affine(RES, 0, c0, 0, -RES, r0)
    order = np.argsort(-g.area.to_numpy())
    shapes = [(g.geometry.iloc[i], _code(g.iloc[i])) for i in order]
    lc = rasterio.features.rasterize(shapes, out_shape=shape, transform=t, fill=1003,
                                     dtype="int32")
    lc = rasterio.features.rasterize([(geom, 1101) for geom in w.geometry], out=lc,
                                     transform=t)
    lc = rasterio.features.rasterize([(geom, 701) for geom in b.geometry], out=lc, transform=t)
    da = make_raster(lc, GridSpec.create(CRS, t, shape), nodata=0, units="class",
                     kind="categorical", name="osm_landcover", chunks=None)
    green = shapely.difference(shapely.union_all(g.geometry.values),
                               shapely.union_all(np.concatenate([b.geometry.values,
                                                                 w.geometry.values])))
    parks = g[g["leisure"].isin(["park", "garden"])].reset_index(drop=True)
    return {"green": green, "buildings": b, "parks": parks, "districts": districts,
            "urban": gpd.GeoDataFrame({"name": ["centre"]}, geometry=[area], crs=CRS),
            "landcover": da}


def test_coverage_matches_vector_measurement(helsinki: dict) -> None:
    h = helsinki
    s = GreenSettings.from_table(min_area_m2=0.0)
    r = green_space(h["urban"], 2024, landcover=h["landcover"], scheme=load_scheme("gbt21010"),
                    districts=h["districts"], settings=s)
    t = r.districts.set_index("district")
    total_green = 0.0
    for name, geom in zip(h["districts"]["name"], h["districts"].geometry, strict=True):
        want_green = h["green"].intersection(geom).area
        total_green += want_green
        want_pct = 100.0 * want_green / geom.area
        got = t.loc[name]
        assert got["area_ha"] == pytest.approx(geom.area / 1e4, rel=2e-3), name
        assert got["green_ha"] == pytest.approx(want_green / 1e4, rel=0.01), name
        assert got["green_coverage_pct"] == pytest.approx(want_pct, abs=0.3), name
    area = h["urban"].geometry.iloc[0].area
    assert r.summary["green_coverage_pct"] == pytest.approx(100 * total_green / area, abs=0.2)
    # the centre of Helsinki is far below a garden city's 40 %: the check has teeth
    assert 5.0 < r.summary["green_coverage_pct"] < 40.0
    assert np.isnan(t.loc["SW", "green_m2_per_person"])


def test_park_service_matches_vector_measurement(helsinki: dict) -> None:
    h = helsinki
    b = h["buildings"]
    # the default tiers (2,000 m2 -> 300 m, 5,000 m2 -> 500 m) serve every building of this
    # park-rich 1 km2: check them, then a stricter rule that leaves some buildings unserved
    r = green_space(h["urban"], 2024, landcover=h["landcover"], scheme=load_scheme("gbt21010"),
                    parks=h["parks"], residential=b,
                    settings=GreenSettings.from_table(min_area_m2=0.0))
    assert r.summary["park_service_pct"] == pytest.approx(100.0)
    tiers = ((5000.0, 100.0), (20000.0, 200.0))
    s = GreenSettings.from_table(min_area_m2=0.0, park_tiers=tiers)
    r = green_space(h["urban"], 2024, landcover=h["landcover"], scheme=load_scheme("gbt21010"),
                    districts=h["districts"], parks=h["parks"], residential=b, settings=s)
    # independent: each park's radius by its own area, buffers unioned, buildings inside
    parks = h["parks"]
    area = parks.area.to_numpy()
    radius = np.where(area >= 20000, 200.0, np.where(area >= 5000, 100.0, 0.0))
    assert r.parks is not None
    assert r.parks["radius_m"].tolist() == radius.tolist()
    served = shapely.union_all([p.buffer(rad, quad_segs=16)
                                for p, rad in zip(parks.geometry, radius, strict=True) if rad])
    homes = shapely.union_all(b.geometry.values).intersection(h["urban"].geometry.iloc[0])
    want = 100.0 * homes.intersection(served).area / homes.area
    assert r.summary["park_service_pct"] == pytest.approx(want, abs=0.2)
    assert 20.0 < want < 95.0  # partly served: the comparison has teeth
    # per-capita park area where population is known, empty where it is not
    t = r.districts.set_index("district")
    ne = h["districts"].set_index("name").geometry["NE"]
    park_union = shapely.union_all(parks.geometry.values)
    assert t.loc["NE", "park_m2_per_person"] == pytest.approx(
        park_union.intersection(ne).area / 9000.0, rel=1e-6)
    assert np.isnan(t.loc["SW", "park_m2_per_person"])
