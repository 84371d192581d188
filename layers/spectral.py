"""Quality masks and spectral indices for optical scenes (see :mod:`gis.imagery`).

Every function takes sinkmap rasters (``xarray.DataArray`` with CRS/transform via rioxarray) and
returns one on the same grid, lazily: nothing is computed until the caller asks.

Quality masks (:func:`quality_masks`) return boolean rasters ``nodata``, ``cloud``, ``shadow``,
``snow``, ``water`` and ``clear`` (= not nodata, cloud, shadow or snow; water stays clear).

* ``sentinel2_l2a`` — Scene Classification (SCL): 0 no data and 1 saturated/defective ->
  nodata; 3 cloud shadow; 6 water; 8 cloud medium probability, 9 cloud high probability and
  10 thin cirrus -> cloud; 11 snow. 2 (dark area pixels / topographic shadow), 4 vegetation,
  5 not vegetated and 7 unclassified are clear.
* ``landsat_c2_l2`` — Collection 2 ``QA_PIXEL`` bits: 0 fill -> nodata; 1 dilated cloud,
  2 cirrus, 3 cloud -> cloud; 4 cloud shadow; 5 snow; 7 water.
* ``landsat_l1_bqa`` — Landsat 8 pre-collection Level-1 ``BQA`` (L8 Data Users Handbook,
  section 5.4): bit 0 designated fill -> nodata; two-bit confidences (0 not determined,
  1 low, 2 medium, 3 high) at bits 4-5 water, 6-7 cloud shadow (reserved, not populated in
  pre-collection products), 10-11 snow/ice, 12-13 cirrus, 14-15 cloud. A condition is flagged
  only at high confidence (3); cirrus or cloud -> cloud. (Bits 1 dropped frame and 2 terrain
  occlusion are not used.)
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as dsa
import numpy as np
import xarray as xr

from gis.errors import InputError
from gis.grid import assert_same_grid, like

MASKS = ("nodata", "cloud", "shadow", "snow", "water", "clear")
QA_SENSORS = ("sentinel2_l2a", "landsat_c2_l2", "landsat_l1_bqa")

SCL_NODATA = (0, 1)
SCL_SHADOW = (3,)
SCL_WATER = (6,)
SCL_CLOUD = (8, 9, 10)
SCL_SNOW = (11,)

HIGH = 3  # two-bit confidence "high" (67-100 %)


def _bit(q: dsa.Array, n: int) -> dsa.Array:
    return (q >> n) & 1 == 1


def _conf(q: dsa.Array, lo: int) -> dsa.Array:
    return (q >> lo) & 3


def _scl(q: dsa.Array) -> dict[str, dsa.Array]:
    return {"nodata": dsa.isin(q, SCL_NODATA), "cloud": dsa.isin(q, SCL_CLOUD),
            "shadow": dsa.isin(q, SCL_SHADOW), "snow": dsa.isin(q, SCL_SNOW),
            "water": dsa.isin(q, SCL_WATER)}


def _qa_pixel(q: dsa.Array) -> dict[str, dsa.Array]:
    return {"nodata": _bit(q, 0), "cloud": _bit(q, 1) | _bit(q, 2) | _bit(q, 3),
            "shadow": _bit(q, 4), "snow": _bit(q, 5), "water": _bit(q, 7)}


def _bqa(q: dsa.Array) -> dict[str, dsa.Array]:
    return {"nodata": _bit(q, 0),
            "cloud": (_conf(q, 14) == HIGH) | (_conf(q, 12) == HIGH),
            "shadow": _conf(q, 6) == HIGH, "snow": _conf(q, 10) == HIGH,
            "water": _conf(q, 4) == HIGH}


_DECODERS: dict[str, Callable[[dsa.Array], dict[str, dsa.Array]]] = {
    "sentinel2_l2a": _scl, "landsat_c2_l2": _qa_pixel, "landsat_l1_bqa": _bqa}


def _dask(da: xr.DataArray) -> dsa.Array:
    return da.data if isinstance(da.data, dsa.Array) else dsa.from_array(np.asarray(da.data))


def quality_masks(qa: xr.DataArray, sensor: str) -> dict[str, xr.DataArray]:
    """Boolean masks ``nodata, cloud, shadow, snow, water, clear`` decoded from ``qa`` (see the
    module docstring for each sensor's table), on ``qa``'s grid, lazily."""
    decode = _DECODERS.get(sensor)
    if decode is None:
        raise InputError(f"no quality-band decoding for sensor {sensor!r}",
                         source=qa.attrs.get("source", qa.name),
                         fix=f"use one of {', '.join(QA_SENSORS)} (Sentinel-2 L1C has no SCL: "
                         "mask clouds another way)")
    if not np.issubdtype(qa.dtype, np.integer):
        raise InputError(f"quality band has dtype {qa.dtype}; bit flags need integers",
                         source=qa.attrs.get("source", qa.name),
                         fix="load it with gis.imagery.load_bands(..., bands=(..., 'qa')), which "
                         "keeps the native integer dtype (nearest resampling)")
    q = _dask(qa)
    masks = decode(q)
    fill = qa.rio.nodata
    if fill is not None:  # the fill value load_bands wrote outside the scene (or the file's)
        masks["nodata"] = masks["nodata"] | (q == fill)
    masks["clear"] = ~(masks["nodata"] | masks["cloud"] | masks["shadow"] | masks["snow"])
    extra = {k: v for k, v in qa.attrs.items() if k not in ("units", "kind", "_FillValue")}
    out = {}
    for name in MASKS:
        da = like(qa, masks[name], nodata=None, units="mask", kind="categorical",
                  name=name)
        da.attrs.update(extra)
        da.attrs["mask"] = name
        da.attrs["qa_sensor"] = sensor
        out[name] = da
    return out


def _index(data: xr.DataArray, template: xr.DataArray, name: str) -> xr.DataArray:
    arr = data.data
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 4:
        arr = arr.astype("float32")
    return like(template, arr, nodata=np.nan, units="index", kind="continuous", name=name)


def normalized_difference(a: xr.DataArray, b: xr.DataArray, *, name: str = "nd"
                          ) -> xr.DataArray:
    """``(a - b) / (a + b)``; NaN where ``a + b == 0`` or either input is NaN. ``a`` and ``b``
    must share a grid (:class:`~gis.errors.GridMismatchError` otherwise)."""
    assert_same_grid(a, b)
    af, bf = _float(a), _float(b)
    s = af + bf
    nd = xr.where(s != 0, (af - bf) / s.where(s != 0), np.nan)
    return _index(nd.astype(af.dtype), a, name)


def _float(da: xr.DataArray) -> xr.DataArray:
    return da if da.dtype.kind == "f" else da.astype("float32")


def ndvi(red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """Normalized difference vegetation index ``(nir - red) / (nir + red)``."""
    return normalized_difference(nir, red, name="ndvi")


def ndti(swir1: xr.DataArray, swir2: xr.DataArray) -> xr.DataArray:
    """Normalized difference tillage index ``(swir1 - swir2) / (swir1 + swir2)`` (Van Deventer
    et al. 1997; Landsat TM5/TM7, Sentinel-2 B11/B12), higher with more crop residue."""
    return normalized_difference(swir1, swir2, name="ndti")


def sti(swir1: xr.DataArray, swir2: xr.DataArray) -> xr.DataArray:
    """Simple tillage index ``swir1 / swir2``; NaN where ``swir2 == 0`` or either is NaN."""
    assert_same_grid(swir1, swir2)
    a, b = _float(swir1), _float(swir2)
    r = xr.where(b != 0, a / b.where(b != 0), np.nan)
    return _index(r.astype(a.dtype), swir1, "sti")
