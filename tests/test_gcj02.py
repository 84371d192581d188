"""GCJ-02 offsets: undetectable from metadata, caught by comparing layers, reversible."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gis.crs import (
    OffsetWarning,
    check_offset,
    from_gcj02,
    gcj02_to_wgs84,
    to_metric,
    wgs84_to_gcj02,
)
from gis.resources import packaged
from gis.vector_io import read_vector
from tests.conftest import SHARED

OUTLINE = packaged("meihekou", "meihekou_220581_tianditu_wgs84.geojson")


def test_gcj02_roundtrip_to_a_tenth_of_a_millimetre():
    lon, lat = np.array([125.26, 125.68, 126.06]), np.array([42.14, 42.53, 43.01])
    glon, glat = wgs84_to_gcj02(lon, lat)
    # Meihekou: the offset is a few hundred metres east and north
    assert np.all((glon - lon) * 82_000 > 300) and np.all((glat - lat) * 111_000 > 150)
    wlon, wlat = gcj02_to_wgs84(glon, glat)
    np.testing.assert_allclose(wlon, lon, atol=1e-9)
    np.testing.assert_allclose(wlat, lat, atol=1e-9)


def test_offset_check_catches_gcj02_outline_and_conversion_fixes_it():
    official = to_metric(read_vector(OUTLINE))
    assert official.crs.to_epsg() == 4551  # projected on purpose: CGCS2000 GK CM 126E
    web = read_vector(OUTLINE)
    web.geometry = shapely.transform(web.geometry.values,
                                     lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0],
                                                                               xy[:, 1])))
    assert web.crs.to_epsg() == 4326, "a GCJ-02 file looks like WGS 84 in its metadata"
    with pytest.warns(OffsetWarning, match="GCJ-02"):
        shift = check_offset(official.union_all(), web.to_crs(official.crs).union_all(),
                             crs=official.crs, names=("tianditu", "web map"))
    assert 450 < shift < 700
    fixed = from_gcj02(web).to_crs(official.crs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_offset(official.union_all(), fixed.union_all(), crs=official.crs) < 0.01


@pytest.mark.realdata
def test_real_datav_gcj02_boundary():
    datav = SHARED / "cn_admin_jilin" / "datav_gcj02" / "220581.fc.geojson"
    if not datav.exists():
        pytest.skip("../shared/realdata not present")
    official = to_metric(read_vector(OUTLINE))
    web = read_vector(datav)
    with pytest.warns(OffsetWarning):
        raw = check_offset(official.union_all(), web.to_crs(official.crs).union_all(),
                           crs=official.crs)
    assert 550 < raw < 700  # SOURCE.md measured ~560 m E / 280 m N
    fixed = from_gcj02(web).to_crs(official.crs)
    after = check_offset(official.union_all(), fixed.union_all(), crs=official.crs,
                         tolerance_m=1e9)
    assert after < 150  # the rest is the two sources' different generalisation
    iou = lambda a, b: a.intersection(b).area / a.union(b).area  # noqa: E731
    assert iou(official.union_all(), fixed.union_all()) > iou(
        official.union_all(), web.to_crs(official.crs).union_all()) + 0.02


def test_to_metric_keeps_projected_and_refuses_missing_crs():
    g = gpd.GeoDataFrame(geometry=[shapely.Point(500_000, 4_700_000)], crs="EPSG:4551")
    assert to_metric(g) is g
    utm = to_metric(gpd.GeoDataFrame(geometry=[shapely.Point(-123.5, 44.5)], crs=4326))
    assert utm.crs.to_epsg() == 32610
    from gis.errors import CRSError

    with pytest.raises(CRSError):
        to_metric(gpd.GeoDataFrame(geometry=[shapely.Point(0, 0)]))
