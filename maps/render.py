"""Raster-to-image helpers shared by sinkmap's maps.

* :func:`warp_to_web_mercator` reprojects a sinkmap raster to EPSG:3857 (Leaflet's projection)
  within a pixel budget, averaging, and never loads more of a dask-backed raster than the
  decimated copy it needs;
* :class:`ColourRamp` holds a sequential colour ramp (ColorBrewer stops, no matplotlib) and gives
  both the PNG palette and the matching branca legend;
* :func:`encode_png` writes an 8-bit PNG with the standard library only (``zlib`` + ``struct``);
  :func:`decode_png` and :func:`png_size` read back what it writes (for tests and checks);
* :func:`nice_range`, :func:`nice_ticks` and :func:`format_number` choose legend ranges and
  print numbers for people.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import branca.colormap
import numpy as np
import rasterio.warp
import xarray as xr
from affine import Affine
from pyproj import Transformer
from rasterio.enums import Resampling

from gis.crs import as_crs
from gis.errors import NoDataError, SinkmapError
from gis.grid import GridSpec
from gis.raster_io import valid_mask

WEB_MERCATOR = "EPSG:3857"
# Metres per pixel of EPSG:3857 at zoom 0 for 256-pixel tiles (2 * pi * 6378137 / 256).
MERCATOR_M_PER_PX_Z0 = 2 * math.pi * 6378137.0 / 256

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------------------------
# colour ramps


@dataclass(frozen=True)
class ColourRamp:
    """A sequential colour ramp: evenly spaced ``#rrggbb`` stops, interpolated linearly in RGB."""

    name: str
    stops: tuple[str, ...]

    def rgb_stops(self) -> np.ndarray:
        """The stops as a ``(n, 3)`` float array of 0-255 values."""
        return np.array([[int(s[i:i + 2], 16) for i in (1, 3, 5)] for s in self.stops],
                        dtype=np.float64)

    def palette(self, n: int) -> np.ndarray:
        """``n`` colours (``(n, 3)`` uint8) sampled evenly from the first to the last stop."""
        rgb = self.rgb_stops()
        pos = np.linspace(0.0, 1.0, len(rgb))
        t = np.linspace(0.0, 1.0, n)
        out = np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)], axis=1)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)

    def hex_at(self, fraction: float) -> str:
        """The ``#rrggbb`` colour at ``fraction`` (0..1, clipped) along the ramp."""
        rgb = self.rgb_stops()
        pos = np.linspace(0.0, 1.0, len(rgb))
        f = min(max(float(fraction), 0.0), 1.0)
        r, g, b = (round(float(np.interp(f, pos, rgb[:, k]))) for k in range(3))
        return f"#{r:02x}{g:02x}{b:02x}"

    def legend(self, vmin: float, vmax: float, caption: str) -> branca.colormap.LinearColormap:
        """A branca legend matching :meth:`palette` over ``[vmin, vmax]``.

        ``caption`` is plain text (branca draws it with d3 ``.text()``), so it must *not* be
        HTML-escaped.
        """
        cm = branca.colormap.LinearColormap(list(self.stops), vmin=vmin, vmax=vmax,
                                            caption=caption,
                                            tick_labels=nice_ticks(vmin, vmax))
        cm.width = 360
        return cm


# ColorBrewer 9-class sequential schemes (Cynthia Brewer, colorbrewer2.org, Apache-2.0 style
# licence); stops only, so no matplotlib.
YLGN = ColourRamp("YlGn", ("#ffffe5", "#f7fcb9", "#d9f0a3", "#addd8e", "#78c679", "#41ab5d",
                           "#238443", "#006837", "#004529"))
YLORBR = ColourRamp("YlOrBr", ("#ffffe5", "#fff7bc", "#fee391", "#fec44f", "#fe9929", "#ec7014",
                               "#cc4c02", "#993404", "#662506"))


# --------------------------------------------------------------------------------------------
# ranges, ticks and numbers


def esc(value: Any) -> str:
    """HTML-escaped text that is also inert as a Jinja template.

    branca renders each element's script and parses the result again as a Jinja template, so
    ``{{ ... }}`` in a township name would be *evaluated* while the page is built (template
    injection); braces become HTML character references, which the browser shows as braces.
    Every piece of user text that reaches a page goes through this function.
    """
    return html.escape(str(value)).replace("{", "&#123;").replace("}", "&#125;")


def _nice_step(span: float, n: int) -> float:
    """A 1, 2, 2.5 or 5 x 10^k step dividing ``span`` into about ``n`` parts."""
    raw = span / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10.0 * mag  # pragma: no cover (the loop always returns)


def nice_range(values: np.ndarray, *, quantiles: tuple[float, float] = (2.0, 98.0),
               zero_based_below: float = 0.25) -> tuple[float, float]:
    """A legend range for the finite ``values``: robust quantiles rounded outward to nice steps.

    Non-negative data whose lower quantile is below ``zero_based_below`` x the upper one start at
    0 (the honest origin for densities and stocks). Constant data get a unit-wide range.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 1.0
    lo, hi = (float(q) for q in np.percentile(v, quantiles))
    if lo >= 0 and lo < zero_based_below * hi:
        lo = 0.0
    if hi <= lo:
        pad = abs(lo) * 0.05 or 0.5
        lo, hi = lo - pad if lo != 0 else 0.0, hi + pad
    step = _nice_step(hi - lo, 10)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def nice_ticks(vmin: float, vmax: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values within ``[vmin, vmax]``, the two ends included."""
    if not vmax > vmin:
        return [float(vmin)]
    step = _nice_step(vmax - vmin, n)
    first = math.ceil(vmin / step - 1e-9) * step
    ticks = [float(vmin)]
    t = first
    while t < vmax - 0.4 * step:  # no inner tick crowding the end labels
        if t > vmin + 0.4 * step:
            ticks.append(float(round(t, 12)))
        t += step
    ticks.append(float(vmax))
    return ticks


def format_number(value: Any, *, missing: str = "-") -> str:
    """Format a number for people: thousands separators and decimals suited to its size.

    ``1234567.8 -> "1,234,568"``, ``523.456 -> "523.5"``, ``85.346 -> "85.35"``,
    ``0.04231 -> "0.0423"`` (three significant figures below 1); integers keep no decimals;
    NaN/None give ``missing``. Anything that
    is not a number is returned as ``str(value)`` (escape it before putting it in HTML).
    """
    if value is None:
        return missing
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return missing
    a = abs(x)
    if a == 0:
        return "0"
    if a >= 1000:
        decimals = 0
    elif a >= 100:
        decimals = 1
    elif a >= 1:
        decimals = 2
    else:  # three significant figures
        decimals = min(-math.floor(math.log10(a)) + 2, 12)
    return f"{x:,.{decimals}f}"


# --------------------------------------------------------------------------------------------
# PNG


def _chunk(tag: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + tag + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))


def encode_png(pixels: np.ndarray, *, palette: np.ndarray | None = None,
               alpha: np.ndarray | None = None, level: int = 9) -> bytes:
    """Encode 8-bit pixels as PNG bytes (stdlib ``zlib`` + ``struct``; no imaging library).

    * ``pixels`` 2-D uint8 with ``palette`` (``(n<=256, 3)`` uint8): indexed colour; ``alpha``
      (``(m<=n,)`` uint8) gives the opacity of the first ``m`` palette entries (tRNS chunk);
    * ``pixels`` ``(h, w, 3)`` or ``(h, w, 4)`` uint8: RGB or RGBA.

    Rows use filter type 0 (none), the recommended choice for palette images.
    """
    px = np.ascontiguousarray(pixels)
    if px.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {px.dtype}")
    chunks = []
    if px.ndim == 2:
        if palette is None:
            raise ValueError("a 2-D image needs a palette")
        pal = np.asarray(palette, dtype=np.uint8)
        if pal.ndim != 2 or pal.shape[1] != 3 or not 1 <= len(pal) <= 256:
            raise ValueError("palette must be (n<=256, 3) uint8")
        if px.size and int(px.max()) >= len(pal):
            raise ValueError("pixel index beyond the palette")
        colour_type, channels = 3, 1
        chunks.append(_chunk(b"PLTE", pal.tobytes()))
        if alpha is not None:
            al = np.asarray(alpha, dtype=np.uint8).ravel()
            if len(al) > len(pal):
                raise ValueError("more alpha values than palette entries")
            chunks.append(_chunk(b"tRNS", al.tobytes()))
    elif px.ndim == 3 and px.shape[2] in (3, 4):
        colour_type, channels = (2, 3) if px.shape[2] == 3 else (6, 4)
    else:
        raise ValueError(f"cannot encode an array of shape {px.shape} as PNG")
    h, w = px.shape[:2]
    if h == 0 or w == 0:
        raise ValueError("cannot encode an empty image")
    raw = np.zeros((h, w * channels + 1), dtype=np.uint8)  # column 0: filter byte 0
    raw[:, 1:] = px.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return b"".join([_PNG_SIGNATURE, _chunk(b"IHDR", header), *chunks,
                     _chunk(b"IDAT", zlib.compress(raw.tobytes(), level)), _chunk(b"IEND", b"")])


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG")
    out, pos = [], len(_PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (n,), tag = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        out.append((tag, data[pos + 8:pos + 8 + n]))
        pos += 12 + n
        if tag == b"IEND":
            break
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from a PNG's IHDR."""
    tag, body = _png_chunks(data[:33])[0]
    if tag != b"IHDR":
        raise ValueError("PNG does not start with IHDR")
    w, h = struct.unpack(">II", body[:8])
    return int(w), int(h)


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG written by :func:`encode_png` to an ``(h, w, 4)`` uint8 RGBA array.

    Reads 8-bit indexed, RGB and RGBA images with filter type 0 only: enough to check what this
    module writes, not a general PNG reader.
    """
    chunks = _png_chunks(data)
    ihdr = dict(chunks)[b"IHDR"]
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if depth != 8 or interlace or ctype not in (2, 3, 6):
        raise ValueError("decode_png reads 8-bit, non-interlaced indexed/RGB/RGBA PNGs only")
    channels = {2: 3, 3: 1, 6: 4}[ctype]
    raw = np.frombuffer(zlib.decompress(b"".join(b for t, b in chunks if t == b"IDAT")),
                        dtype=np.uint8).reshape(h, w * channels + 1)
    if raw[:, 0].any():
        raise ValueError("decode_png reads filter type 0 only")
    px = raw[:, 1:].reshape(h, w, channels)
    if ctype == 6:
        return px.copy()
    rgba = np.full((h, w, 4), 255, dtype=np.uint8)
    if ctype == 2:
        rgba[..., :3] = px
        return rgba
    found = dict(chunks)
    pal = np.frombuffer(found[b"PLTE"], dtype=np.uint8).reshape(-1, 3)
    alpha = np.full(len(pal), 255, dtype=np.uint8)
    trns = np.frombuffer(found.get(b"tRNS", b""), dtype=np.uint8)
    alpha[:len(trns)] = trns
    idx = px[..., 0]
    rgba[..., :3] = pal[idx]
    rgba[..., 3] = alpha[idx]
    return rgba


def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for embedding a PNG in HTML."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def colourise(values: np.ndarray, vmin: float, vmax: float, ramp: ColourRamp) -> bytes:
    """Colour a 2-D float array (NaN = nodata) with ``ramp`` over ``[vmin, vmax]`` as a PNG.

    Indexed PNG: entry 0 is fully transparent (nodata), entries 1..255 are 255 evenly spaced
    ramp colours; values outside the range take the end colours.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    span = (vmax - vmin) or 1.0
    idx = np.zeros(v.shape, dtype=np.uint8)
    scaled = np.clip((v[ok] - vmin) / span, 0.0, 1.0)
    idx[ok] = (1 + np.rint(scaled * 254)).astype(np.uint8)
    palette = np.vstack([np.zeros((1, 3), np.uint8), ramp.palette(255)])
    return encode_png(idx, palette=palette, alpha=np.array([0], dtype=np.uint8))


# --------------------------------------------------------------------------------------------
# reprojection


@dataclass(frozen=True)
class MercatorImage:
    """A raster resampled onto an EPSG:3857 grid: float32 ``values`` (NaN = nodata)."""

    values: np.ndarray
    transform: Affine
    crs: str = WEB_MERCATOR

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.values.shape[0]), int(self.values.shape[1])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in EPSG:3857 metres."""
        h, w = self.shape
        t = self.transform
        return t.c, t.f + t.e * h, t.c + t.a * w, t.f

    def latlon_bounds(self) -> list[list[float]]:
        """``[[south, west], [north, east]]`` in degrees, as Leaflet's ImageOverlay wants."""
        return mercator_to_latlon_bounds(self.bounds)


def mercator_to_latlon_bounds(bounds: tuple[float, float, float, float]) -> list[list[float]]:
    """EPSG:3857 ``(left, bottom, right, top)`` to ``[[south, west], [north, east]]``.

    The axes of Web Mercator follow the meridians and parallels, so two corners suffice.
    """
    t = Transformer.from_crs(WEB_MERCATOR, "EPSG:4326", always_xy=True)
    w, s = t.transform(bounds[0], bounds[1])
    e, n = t.transform(bounds[2], bounds[3])
    return [[float(s), float(w)], [float(n), float(e)]]


def mercator_tolerance(max_zoom: int, pixels: float = 0.5) -> float:
    """EPSG:3857 metres covered by ``pixels`` screen pixels at ``max_zoom`` (any latitude)."""
    return pixels * MERCATOR_M_PER_PX_Z0 / 2 ** max_zoom


def warp_to_web_mercator(da: xr.DataArray, *, max_pixels: int,
                         resampling: str = "average") -> MercatorImage:
    """Reproject a sinkmap raster to EPSG:3857 with at most ``max_pixels`` pixels.

    The output grid covers the raster's extent at the native resolution, coarsened uniformly
    until ``height * width <= max_pixels``. When it is much coarser than the source, the source
    is first block-averaged (per dask chunk, lazily) by an integer factor that still leaves at
    least two averaged cells per output pixel along each axis, so only that decimated copy is
    ever held in memory; :func:`rasterio.warp.reproject` then averages it onto the output grid.
    Nodata cells (``da.rio.nodata``, NaN, +-inf) are excluded and come out as NaN. (A block
    that is partly nodata then counts as one whole cell in the second averaging: a display-level
    approximation at nodata edges only.)

    Raises :class:`gis.errors.CRSError` when ``da`` has no CRS and
    :class:`gis.errors.NoDataError` when nothing valid is left to draw.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    src_crs = as_crs(da.rio.crs, source=da.attrs.get("source") or da.name or "density raster")
    grid = GridSpec.of(da)
    left, bottom, right, top = grid.bounds
    _, w0, h0 = rasterio.warp.calculate_default_transform(
        src_crs, WEB_MERCATOR, grid.width, grid.height, left, bottom, right, top)
    scale = max(1.0, math.sqrt(w0 * h0 / max_pixels))
    w, h = max(1, math.floor(w0 / scale)), max(1, math.floor(h0 / scale))
    while w * h > max_pixels:  # only when one side was clamped to 1
        w, h = max(1, w - 1), max(1, h - 1)
    dst_t, w, h = rasterio.warp.calculate_default_transform(
        src_crs, WEB_MERCATOR, grid.width, grid.height, left, bottom, right, top,
        dst_width=w, dst_height=h)

    factor = max(1, int(min(w0 / w, h0 / h) // 2))
    valid = valid_mask(da)
    data = da.astype(np.float32).where(valid & np.isfinite(da))
    src_t = grid.transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nodata blocks: mean of empty slice
        if factor > 1:
            data = data.coarsen(y=factor, x=factor, boundary="pad").mean()
            src_t = Affine(src_t.a * factor, src_t.b * factor, src_t.c,
                           src_t.d * factor, src_t.e * factor, src_t.f)
        src = np.ascontiguousarray(np.asarray(data.values, dtype=np.float32))
    out = np.full((h, w), np.nan, dtype=np.float32)
    rasterio.warp.reproject(src, out, src_transform=src_t, src_crs=src_crs, src_nodata=np.nan,
                            dst_transform=dst_t, dst_crs=WEB_MERCATOR, dst_nodata=np.nan,
                            resampling=Resampling[resampling])
    if not np.isfinite(out).any():
        raise NoDataError("holds only nodata cells; there is nothing to draw",
                          source=da.attrs.get("source") or da.name or "density raster",
                          fix="check the raster covers the region and its nodata value is right")
    return MercatorImage(out, dst_t)


def texts_for(table: dict[str, dict[str, str]], lang: str) -> dict[str, str]:
    """The labels of ``lang`` from a ``{lang: {key: text}}`` table; unknown language is an error."""
    try:
        return table[lang]
    except KeyError:
        raise SinkmapError(f"unsupported map language {lang!r}",
                           fix=f"use one of {', '.join(sorted(table))}") from None
