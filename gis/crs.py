"""Coordinate reference systems: what may be measured, and where to project to.

Rules (see README, "CRS contract"):

* Areas and distances are computed only in a projected CRS whose unit is the metre.
* Geographic input (WGS 84 EPSG:4326, CGCS2000 EPSG:4490, ...) is never measured directly; it is
  projected *on purpose* with :func:`projected_crs_for`: the CGCS2000 3-degree Gauss-Krüger zone
  (EPSG:4534-4554, central meridians 75E..135E) when the data lie in China, UTM elsewhere. The
  choice is logged.
* Two layers that must share a CRS and do not are an error (:class:`CRSMismatchError`), never a
  silent reprojection.
* GCJ-02 ("Mars coordinates", used by AMap/Gaode, Tencent and Aliyun DataV) is an obfuscated
  datum that *cannot be detected from metadata*: such files say EPSG:4326 but are shifted by
  roughly 300-700 m. :func:`check_offset` warns when two layers that should coincide do not;
  :func:`from_gcj02` converts a layer the user knows to be GCJ-02 back to WGS 84.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from gis.errors import CRSError, CRSMismatchError

log = logging.getLogger(__name__)

# Rough envelope of mainland China and its islands (lon/lat) for choosing Gauss-Krüger over UTM.
_CHINA_LONLAT = (73.0, 3.0, 136.0, 54.0)
_GK_FIRST_EPSG, _GK_FIRST_CM = 4534, 75


class OffsetWarning(UserWarning):
    """Two layers that should coincide are shifted against each other (GCJ-02 suspected)."""


def as_crs(crs: Any, *, source: object = None) -> CRS:
    """Return a :class:`pyproj.CRS`; ``None`` or unparsable input is a :class:`CRSError`."""
    if crs is None:
        raise CRSError(
            "has no coordinate reference system",
            source=source,
            fix="add one (e.g. `gdal_edit.py -a_srs EPSG:4551 FILE` or a .prj) or declare it in "
            "the project file",
        )
    if isinstance(crs, CRS):
        return crs
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj raises several types
        raise CRSError(f"cannot read CRS {crs!r}: {exc}", source=source,
                       fix="give an EPSG code such as EPSG:4551 or a WKT string") from exc


def crs_key(crs: Any) -> str:
    """Canonical, comparable text of a CRS: ``EPSG:nnnn`` when it has one, else WKT2."""
    c = as_crs(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg}" if epsg else c.to_wkt()


def crs_label(crs: Any) -> str:
    """Short human label: ``EPSG:4551 (CGCS2000 / 3-degree Gauss-Kruger CM 126E)``."""
    c = as_crs(crs)
    epsg = c.to_epsg()
    return f"EPSG:{epsg} ({c.name})" if epsg else c.name


def is_metric_projected(crs: Any) -> bool:
    c = as_crs(crs)
    if not c.is_projected:
        return False
    unit = c.axis_info[0].unit_name if c.axis_info else ""
    return unit in ("metre", "meter", "m")


def require_projected(crs: Any, *, source: object = None, purpose: str = "area") -> CRS:
    """Raise :class:`CRSError` unless ``crs`` is projected in metres (so ``purpose`` is valid)."""
    c = as_crs(crs, source=source)
    if not is_metric_projected(c):
        kind = "geographic (degrees)" if c.is_geographic else "not projected in metres"
        raise CRSError(
            f"CRS {crs_label(c)} is {kind}; {purpose} cannot be measured in it",
            source=source,
            fix="project it first, e.g. gis.crs.projected_crs_for(bounds) gives the CGCS2000 "
            "Gauss-Kruger zone in China (EPSG:4534-4554) or UTM elsewhere",
        )
    return c


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Krüger zone (no zone prefix) containing ``lon``."""
    cm = 3 * round(lon / 3)
    cm = min(max(cm, _GK_FIRST_CM), 135)
    return _GK_FIRST_EPSG + (cm - _GK_FIRST_CM) // 3


def utm_epsg(lon: float, lat: float) -> int:
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def projected_crs_for(bounds_lonlat: tuple[float, float, float, float]) -> CRS:
    """Choose the metric CRS for data covering ``bounds_lonlat`` (west, south, east, north).

    CGCS2000 3-degree Gauss-Krüger (EPSG:4534-4554) inside China, WGS 84 / UTM elsewhere; the
    zone is the one containing the centre. The choice is logged at INFO level.
    """
    w, s, e, n = bounds_lonlat
    lon, lat = (w + e) / 2, (s + n) / 2
    cw, cs, ce, cn = _CHINA_LONLAT
    if cw <= lon <= ce and cs <= lat <= cn:
        code, why = gk_zone_epsg(lon), "inside China: CGCS2000 3-degree Gauss-Kruger zone"
    else:
        code, why = utm_epsg(lon, lat), "outside China: WGS 84 / UTM zone"
    crs = CRS.from_epsg(code)
    log.info("projecting geographic input to %s (%s, centre %.3fE %.3fN)",
             crs_label(crs), why, lon, lat)
    return crs


def lonlat_bounds(bounds: tuple[float, float, float, float], crs: Any) -> tuple[float, ...]:
    """Bounds of a box given in ``crs``, expressed in lon/lat (EPSG:4326)."""
    c = as_crs(crs)
    if c.is_geographic:
        return tuple(bounds)
    t = Transformer.from_crs(c, 4326, always_xy=True)
    return tuple(t.transform_bounds(*bounds))


def assert_same_crs(a: Any, b: Any, *, names: tuple[str, str] = ("first layer", "second layer")
                    ) -> None:
    """Raise :class:`CRSMismatchError` naming both CRSs unless ``a`` and ``b`` are equal."""
    ca, cb = as_crs(a, source=names[0]), as_crs(b, source=names[1])
    if ca != cb:
        raise CRSMismatchError(
            f"{names[0]} is in {crs_label(ca)} but {names[1]} is in {crs_label(cb)}",
            fix=f"reproject {names[1]} to {crs_label(ca)} (vectors: gdf.to_crs; rasters: "
            "gis.grid.align_to with an explicit resampling) before combining them",
        )


def check_offset(a: shapely.Geometry, b: shapely.Geometry, *, crs: Any,
                 tolerance_m: float = 100.0, names: tuple[str, str] = ("a", "b")) -> float:
    """Warn (:class:`OffsetWarning`) if two geometries that should coincide are shifted.

    Compares the centroids of ``a`` and ``b`` (both in metric ``crs``) and returns the shift in
    metres. A shift of a few hundred metres between, say, an official boundary and a web-map
    download is the signature of GCJ-02 coordinates mislabelled as WGS 84; metadata cannot tell.
    """
    require_projected(crs, purpose="an offset check")
    ca, cb = shapely.centroid(a), shapely.centroid(b)
    dx, dy = cb.x - ca.x, cb.y - ca.y
    shift = math.hypot(dx, dy)
    if shift > tolerance_m:
        warnings.warn(
            f"{names[1]} is shifted {shift:,.0f} m from {names[0]} "
            f"(dx {dx:+.0f} m, dy {dy:+.0f} m)."
            " A shift of ~300-700 m against official data is typical of GCJ-02 (AMap/Gaode, "
            "DataV) coordinates labelled as WGS 84; convert them to WGS 84 before use.",
            OffsetWarning, stacklevel=2)
    return float(shift)


def to_metric(gdf: gpd.GeoDataFrame, *, source: object = None) -> gpd.GeoDataFrame:
    """Return ``gdf`` in a metric CRS: unchanged if already projected in metres, else projected
    on purpose to :func:`projected_crs_for` its bounds (the choice is logged)."""
    if gdf.crs is None:
        raise CRSError("has no coordinate reference system", source=source or
                       gdf.attrs.get("source"), fix="set it (gdf.set_crs) or add a .prj")
    if is_metric_projected(gdf.crs):
        return gdf
    bounds = gdf.to_crs(4326).total_bounds
    return gdf.to_crs(projected_crs_for(tuple(bounds)))


# --- GCJ-02 ("Mars coordinates") -------------------------------------------------------------
# The published obfuscation applied to WGS 84 by Chinese web maps (AMap/Gaode, Tencent, DataV).
_GCJ_A, _GCJ_EE = 6378245.0, 0.00669342162296594323


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = lon - 105.0, lat - 35.0
    pi = np.pi
    common = (20 * np.sin(6 * x * pi) + 20 * np.sin(2 * x * pi)) * 2 / 3
    dlat = (-100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + common + (20 * np.sin(y * pi) + 40 * np.sin(y / 3 * pi)) * 2 / 3
            + (160 * np.sin(y / 12 * pi) + 320 * np.sin(y * pi / 30)) * 2 / 3)
    dlon = (300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + common + (20 * np.sin(x * pi) + 40 * np.sin(x / 3 * pi)) * 2 / 3
            + (150 * np.sin(x / 12 * pi) + 300 * np.sin(x / 30 * pi)) * 2 / 3)
    rad = np.radians(lat)
    magic = 1 - _GCJ_EE * np.sin(rad) ** 2
    dlat = dlat * 180 / ((_GCJ_A * (1 - _GCJ_EE)) / (magic * np.sqrt(magic)) * pi)
    dlon = dlon * 180 / (_GCJ_A / np.sqrt(magic) * np.cos(rad) * pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray]:
    """Apply the GCJ-02 offset to WGS 84 lon/lat (degrees), e.g. to test offset detection."""
    lon, lat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Remove the GCJ-02 offset (iterative inverse, to ``tol_deg``, i.e. ~0.1 mm)."""
    glon, glat = np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
    wlon, wlat = glon.copy(), glat.copy()
    for _ in range(30):
        flon, flat = wgs84_to_gcj02(wlon, wlat)
        elon, elat = flon - glon, flat - glat
        wlon, wlat = wlon - elon, wlat - elat
        if max(np.abs(elon).max(initial=0), np.abs(elat).max(initial=0)) < tol_deg:
            break
    return wlon, wlat


def from_gcj02(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Convert a layer whose lon/lat are really GCJ-02 (though labelled WGS 84) to WGS 84.

    Only the user can know a layer is GCJ-02 (its metadata says EPSG:4326); use
    :func:`check_offset` against official data to find out.
    """
    if gdf.crs is None or as_crs(gdf.crs).to_epsg() not in (4326, 4490):
        raise CRSError(f"GCJ-02 data come as lon/lat labelled EPSG:4326, not {gdf.crs}",
                       source=gdf.attrs.get("source"),
                       fix="pass the layer as read from the web-map download, in lon/lat")
    out = gdf.copy()
    def unshift(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))

    out.geometry = shapely.transform(gdf.geometry.values, unshift)
    return out.set_crs(4326, allow_override=True)
