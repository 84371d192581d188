"""Land-use maps: a class raster as a coloured overlay, two years side by side, change types.

Class rasters are drawn with nearest-neighbour resampling only (classes are never averaged):
decimated by striding to the pixel budget (or first reduced by a block mode,
:func:`class_blocks`), reprojected to EPSG:3857 with ``nearest``, coloured through a palette PNG
(unknown classes and nodata transparent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import folium
import folium.plugins
import numpy as np
import rasterio.warp
import xarray as xr
from affine import Affine
from rasterio.enums import Resampling

from gis.crs import as_crs
from gis.errors import NoDataError
from gis.grid import GridSpec, make_raster
from maps.render import MercatorImage, encode_png, esc, png_data_uri

WEB_MERCATOR = "EPSG:3857"


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def warp_classes(da: xr.DataArray, *, max_pixels: int) -> MercatorImage:
    """Class raster to EPSG:3857 within ``max_pixels`` (nearest; NaN where nodata)."""
    grid = GridSpec.of(da)
    src_crs = as_crs(da.rio.crs, source=da.attrs.get("source") or da.name)
    left, bottom, right, top = grid.bounds
    _, w0, h0 = rasterio.warp.calculate_default_transform(
        src_crs, WEB_MERCATOR, grid.width, grid.height, left, bottom, right, top)
    scale = max(1.0, math.sqrt(w0 * h0 / max_pixels))
    w, h = max(1, math.floor(w0 / scale)), max(1, math.floor(h0 / scale))
    dst_t, w, h = rasterio.warp.calculate_default_transform(
        src_crs, WEB_MERCATOR, grid.width, grid.height, left, bottom, right, top,
        dst_width=w, dst_height=h)
    step = max(1, int(min(w0 / w, h0 / h)))
    sub = da.isel(y=slice(None, None, step), x=slice(None, None, step))
    src = np.asarray(sub.values).astype("float32")
    nod = da.rio.nodata
    if nod is not None:
        src[src == nod] = np.nan
    t = grid.transform
    src_t = Affine(t.a * step, t.b * step, t.c, t.d * step, t.e * step, t.f)
    out = np.full((h, w), np.nan, dtype="float32")
    rasterio.warp.reproject(src, out, src_transform=src_t, src_crs=src_crs, src_nodata=np.nan,
                            dst_transform=dst_t, dst_crs=WEB_MERCATOR, dst_nodata=np.nan,
                            resampling=Resampling.nearest)
    if not np.isfinite(out).any():
        raise NoDataError("holds only nodata cells; there is nothing to draw",
                          source=da.attrs.get("source") or da.name)
    return MercatorImage(out, dst_t)


def class_blocks(da: xr.DataArray, lut: np.ndarray, priority: Sequence[int], *,
                 max_side: int, default_name: str | None = None) -> xr.DataArray:
    """Class bytes mapped through ``lut`` (256 display indices, 0 = missing), reduced by an
    integer factor ``k`` so that the long side is at most ``max_side`` pixels.

    Each output cell holds the **mode** of the non-zero indices in its ``k x k`` block (a block
    with none is 0), ties going to the index that comes first in ``priority`` (indices not in
    ``priority`` are not counted). The raster's nodata maps to 0 whatever ``lut`` says. It is
    read in strips of whole blocks, so a dask-backed raster is never held in memory whole.

    The result (a categorical raster, nodata 0) is named ``{name}_display`` after the raster,
    else after ``default_name`` (else "classes"); its ``source`` is the raster's, else
    ``default_name``, else the raster's name.
    """
    h, w = int(da.sizes["y"]), int(da.sizes["x"])
    k = max(1, math.ceil(max(h, w) / max_side))
    table = np.asarray(lut, dtype=np.uint8).copy()
    nodata = da.rio.nodata
    if nodata is not None and np.isfinite(nodata) and float(nodata).is_integer() \
            and 0 <= nodata <= 255:
        table[int(nodata)] = 0
    order = np.asarray(list(priority), dtype=np.uint8)
    rows, cols = math.ceil(h / k), math.ceil(w / k)
    out = np.zeros((rows, cols), dtype=np.uint8)
    step = k * max(1, 4_000_000 // max(1, w * k))  # image rows per strip, a multiple of k
    for top in range(0, h, step):
        raw = np.asarray(da.isel(y=slice(top, top + step)).values)
        inside = np.isfinite(raw) & (raw >= 0) & (raw <= 255)
        idx = np.zeros(raw.shape, dtype=np.uint8)
        idx[inside] = table[raw[inside].astype(np.int64)]
        if k > 1:
            n = math.ceil(idx.shape[0] / k)
            pad = np.zeros((n * k, cols * k), dtype=np.uint8)
            pad[:idx.shape[0], :w] = idx
            cells = pad.reshape(n, k, cols, k)
            tally = np.stack([(cells == c).sum(axis=(1, 3), dtype=np.uint32) for c in order])
            idx = order[np.argmax(tally, axis=0)]
            idx[tally.max(axis=0) == 0] = 0
        out[top // k:top // k + idx.shape[0]] = idx
    t = GridSpec.of(da).transform
    grid = GridSpec.create(da.rio.crs, Affine(t.a * k, t.b * k, t.c, t.d * k, t.e * k, t.f),
                           out.shape)
    return make_raster(out, grid, nodata=0, units="class", kind="categorical",
                       name=f"{da.name or default_name or 'classes'}_display", chunks=None,
                       attrs={"source": da.attrs.get("source", default_name or da.name)})


def class_png(img: MercatorImage, colours: Mapping[int, str]) -> bytes:
    """Palette PNG of a warped class image: index 0 transparent (nodata, unknown classes)."""
    codes = sorted(colours)[:255]
    palette = np.array([(0, 0, 0), *(_rgb(colours[c]) for c in codes)], dtype="uint8")
    idx = np.zeros(img.values.shape, dtype="uint8")
    v = img.values
    for i, c in enumerate(codes, start=1):
        idx[v == c] = i
    return encode_png(idx, palette=palette, alpha=np.array([0], dtype="uint8"))


def legend_html(title: str, items: list[tuple[str, str]]) -> str:
    """A categorical legend box (escaped text) for a Leaflet control or a page."""
    rows = "".join(f'<div><span style="display:inline-block;width:14px;height:10px;'
                   f'background:{esc(c)};margin-right:6px;border:1px solid #888">'
                   f"</span>{esc(label)}</div>" for c, label in items)
    return (f'<div class="sinkmap-legend" style="background:rgba(255,255,255,.9);padding:6px 8px;'
            f'border-radius:4px;font:12px/1.4 sans-serif;max-height:60vh;overflow:auto">'
            f"<b>{esc(title)}</b>{rows}</div>")


def add_class_layer(m: folium.Map, da: xr.DataArray, colours: Mapping[int, str], *, name: str,
                    max_pixels: int = 1_000_000, opacity: float = 0.85) -> MercatorImage:
    """Add a class raster as an image overlay (one PNG, encoded once) to ``m``."""
    img = warp_classes(da, max_pixels=max_pixels)
    folium.raster_layers.ImageOverlay(png_data_uri(class_png(img, colours)),
                                      bounds=img.latlon_bounds(), name=name, opacity=opacity,
                                      interactive=False).add_to(m)
    return img


def present_items(da_codes: set[int], colours: Mapping[int, str], labels: Mapping[int, str]
                  ) -> list[tuple[str, str]]:
    """Legend items for the classes present, in code order."""
    return [(colours[c], labels.get(c, str(c))) for c in sorted(da_codes) if c in colours]
