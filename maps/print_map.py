"""Print maps: one A4 sheet as a 300 dpi PNG and a PDF, drawn with matplotlib (Agg).

:func:`print_map` draws a sinkmap raster (carbon density, change, land use, ...) or a zone
choropleth in the raster's own projected CRS, with the furniture a bureau's printed map needs:
title, map frame at a round scale (``1:250,000``), legend with units (colour bar for continuous
values, patches for classes), scale bar in km, north arrow, zone boundaries and labels, the
study-area outline, coordinate system and data source. Colours come from
:mod:`maps.styles` (the same ramps and ranges as the web map, and the 三调 land-use colours).

* The sheet is A4, landscape or portrait, whichever shows the data at the larger scale.
* The raster is reduced to ``max_pixels`` block-wise before drawing (averaged for continuous
  values, modal class for categories); a dask-backed raster is never loaded whole.
* Text uses a CJK font found on the system (Noto Sans CJK SC preferred; see
  :func:`find_cjk_font`); without one the map is still drawn, with a warning.
* Both files are written atomically (:func:`gis.atomic.atomic_path`) and existing files are
  refused unless ``overwrite=True``. Output is deterministic (no dates in the files).
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import textwrap
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import rasterio.warp
import shapely
import shapely.ops
import xarray as xr
from affine import Affine
from matplotlib import font_manager, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import (
    BoundaryNorm,
    LinearSegmentedColormap,
    ListedColormap,
    Normalize,
    TwoSlopeNorm,
)
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch, Polygon, Rectangle
from matplotlib.path import Path as MplPath
from pyproj import Transformer
from rasterio.enums import Resampling
from shapely.geometry.polygon import orient

from gis.atomic import atomic_path, check_target
from gis.crs import as_crs, crs_label, is_metric_projected, to_metric
from gis.errors import CRSError, InputError, NoDataError, SinkmapError
from gis.grid import GridSpec
from gis.raster_io import valid_mask
from maps.render import _nice_step, nice_range, nice_ticks, texts_for
from maps.styles import Style, StyleClass, symmetric_range, tick_labels

log = logging.getLogger(__name__)

MM_PER_INCH = 25.4
A4_MM = (297.0, 210.0)  # landscape (width, height)
MISSING_FILL = "#d9d9d9"
# PDF fonts embedded as TrueType (Type 42) subsets: what prepress checks expect; Type 3 would save
# ~1.5 s per map (the CJK subsetting) but is flagged by PDF/X preflight.
PDF_FONTTYPE = 42
Orientation = Literal["landscape", "portrait"]

# Preferred CJK families, best first (Debian fonts-noto-cjk, Adobe Source Han, WenQuanYi,
# Windows and macOS system fonts), and file-name patterns to find them when matplotlib's font
# cache predates their installation.
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Source Han Sans CN", "Noto Sans SC",
                "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Microsoft YaHei", "SimHei",
                "PingFang SC", "Heiti SC", "Sarasa Gothic SC")
_CJK_FILE = re.compile(r"(NotoSansCJK|NotoSansSC|SourceHanSans|wqy-(zenhei|microhei)|msyh|simhei|"
                       r"PingFang|STHeiti|sarasa)", re.IGNORECASE)

# Round map-scale denominators: mantissas of 10^k.
_SCALE_MANTISSAS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0)

_TEXT: dict[str, dict[str, str]] = {
    "zh": {"scale": "比例尺 1:{d}", "crs": "坐标系：{crs}", "missing": "无数据",
           "zone_boundary": "分区界线", "outline": "研究区边界", "increase": "增加",
           "decrease": "减少"},
    "en": {"scale": "Scale 1:{d}", "crs": "Coordinate system: {crs}", "missing": "no data",
           "zone_boundary": "Zone boundary", "outline": "Study-area boundary",
           "increase": "increase", "decrease": "decrease"},
}

# sizes (points for text and lines, millimetres for layout)
_TITLE_PT, _LEGEND_TITLE_PT, _LEGEND_PT, _LABEL_PT, _NOTE_PT = 17.0, 9.5, 8.0, 7.0, 6.5
_MARGIN, _TITLE_BAND, _FOOTER_BAND, _INSET, _PANEL_LANDSCAPE, _PANEL_PORTRAIT = (
    8.0, 15.0, 10.0, 3.0, 62.0, 40.0)


@dataclass(frozen=True)
class PrintedMap:
    """What :func:`print_map` wrote and how it laid the sheet out."""

    png: Path
    pdf: Path
    orientation: Orientation
    size_px: tuple[int, int]          # PNG (width, height)
    scale_denominator: int            # the map is at 1:scale_denominator on A4
    scale_bar_m: float                # length of the scale bar in metres
    value_range: tuple[float, float] | None  # colour range (continuous styles)
    image_shape: tuple[int, int] | None      # (rows, cols) of the raster as drawn
    font: str | None                  # CJK font family used; None = fallback (no CJK glyphs)
    legend: tuple[str, ...]           # labels of the legend's patches and lines, in order
    seconds: float


# --------------------------------------------------------------------------------------------
# public API


def print_map(raster: xr.DataArray | None, zones: gpd.GeoDataFrame | None, *, title: str,
              legend_title: str, style: Style, out_png: Path, out_pdf: Path, lang: str = "zh",
              source_note: str, dpi: int = 300, max_pixels: int = 4_000_000,
              zone_column: str | None = None, zone_label_column: str | None = None,
              outline: gpd.GeoDataFrame | shapely.Geometry | None = None,
              value_range: tuple[float, float] | None = None,
              overwrite: bool = False) -> PrintedMap:
    """Draw a print map and write it as PNG (``dpi``) and PDF; return what was written.

    Parameters
    ----------
    raster
        Sinkmap raster (dims ``y, x``, CRS/transform/nodata via rioxarray) in a projected CRS in
        metres; numpy- or dask-backed. ``None`` for a zone-only map.
    zones
        Zone polygons (townships), drawn as boundaries over the raster, or, without a raster,
        as a choropleth of ``zone_column``. Reprojected for display to the raster's CRS (or
        to the metric CRS of :func:`gis.crs.to_metric` when there is no raster).
    title, legend_title, source_note
        Plain text: the sheet title, the legend heading (with units, e.g. ``碳密度 (t C/ha)``)
        and the data-source line at the foot of the sheet.
    style
        A :class:`maps.styles.Style`: continuous or diverging (colour bar) or categorical
        (one patch per class present).
    lang
        ``"zh"`` or ``"en"``: the sheet's own words and the class labels.
    dpi, max_pixels
        PNG resolution; upper bound on the drawn raster's cells (it is reduced block-wise).
    zone_column, zone_label_column
        The numeric column of the choropleth (zone-only maps) and the column naming each zone
        (labels).
    outline
        The study-area outline (polygons); by default the union of ``zones``.
    value_range
        Fixed ``(vmin, vmax)`` for continuous colours (e.g. to compare two years); default
        ``style.value_range`` or a range from the data (:meth:`Style.range_for`).
    overwrite
        Replace existing outputs (refused by default, before any drawing).

    Raises
    ------
    gis.errors.OutputExistsError
        An output exists and ``overwrite`` is false.
    gis.errors.InputError
        Nothing to draw, a missing column, a layer without CRS, a style that does not fit the
        raster (a ramp on classes, classes on continuous values).
    gis.errors.CRSError
        The raster is not in a projected CRS in metres.
    gis.errors.NoDataError
        The raster holds only nodata.
    """
    t0 = time.perf_counter()
    text = _texts(lang)
    out_png, out_pdf = Path(out_png), Path(out_pdf)
    if out_png.resolve() == out_pdf.resolve():
        raise SinkmapError("the PNG and the PDF would be the same file", source=out_png,
                           fix="give two different paths")
    for target in (out_png, out_pdf):
        check_target(target, overwrite=overwrite)
    if dpi < 50 or dpi > 1200:
        raise SinkmapError(f"dpi {dpi} is outside 50-1200", fix="use 300 for print")
    if raster is None and zones is None:
        raise InputError("nothing to draw: neither a raster nor zones", source="print_map",
                         fix="pass a raster, zones, or both")

    # --- layers in one metric CRS
    crs = None
    image: _Image | None = None
    if raster is not None:
        crs = _raster_crs(raster)
        image = _downsample(raster, max_pixels=max_pixels, categorical=style.categorical)
        _check_style(style, raster, image)
    if zones is not None:
        zones = _prepare_zones(zones, crs, zone_column, zone_label_column)
        crs = crs or zones.crs
    outline_geom = _outline(outline, zones, crs)

    # --- colours
    vrange: tuple[float, float] | None = None
    if not style.categorical:
        if value_range is not None:
            vrange = _check_range(value_range)
        elif image is not None:
            vrange = style.range_for(image.values)
        elif zone_column is not None and zones is not None:
            vrange = _zone_range(style, zones[zone_column])

    # --- sheet
    bounds = _data_bounds(image, zones, outline_geom)
    labels = _legend_labels(style, image, zones, zone_column, outline_geom, lang, text)
    has_ramp = not style.categorical and vrange is not None
    layout, denominator = _choose_sheet(bounds, labels, has_ramp)
    orientation = layout.orientation
    font = find_cjk_font()
    families = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    rc = {"font.family": families, "pdf.fonttype": PDF_FONTTYPE, "axes.unicode_minus": False,
          "path.simplify": True, "savefig.facecolor": "white"}
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        fig = _sheet(layout)
        ax = fig.add_axes(layout.map_rect, zorder=1)
        extent = _frame_extent(bounds, layout, denominator)
        _setup_map_axes(ax, extent)
        legend_handles: list[Any] = []
        if image is not None:
            _draw_image(ax, image, style, vrange)
        if zones is not None:
            if image is None and zone_column is not None:
                _draw_choropleth(ax, zones, zone_column, style, vrange)
            _draw_zone_boundaries(ax, zones, choropleth=image is None)
            legend_handles.append(Line2D([], [], color="#3a3a3a", lw=0.7,
                                         ls=_ZONE_DASH, label=text["zone_boundary"]))
        if outline_geom is not None:
            _draw_outline(ax, outline_geom)
            legend_handles.append(Line2D([], [], color="#1a1a1a", lw=1.6,
                                         label=text["outline"]))
        if zones is not None and zone_label_column is not None:
            _draw_zone_labels(ax, zones, zone_label_column)
        if crs is not None:
            _graticule_ticks(ax, extent, crs)
        _north_arrow(fig, layout)
        scale_bar_m = _scale_bar(fig, layout, denominator, text)
        legend = _legend(fig, layout, style, legend_title, vrange, image, zones, zone_column,
                         legend_handles, lang, text)
        _sheet_text(fig, layout, title, source_note, crs, text)

        FigureCanvasAgg(fig)
        with _atomic_pair(out_png, out_pdf, overwrite) as (tmp_png, tmp_pdf):
            fig.savefig(tmp_png, format="png", dpi=dpi, metadata={"Software": "sinkmap"})
            fig.savefig(tmp_pdf, format="pdf", metadata={"Title": title, "Creator": "sinkmap",
                                                         "CreationDate": None})
        png_size = (int(fig.get_figwidth() * dpi), int(fig.get_figheight() * dpi))
    seconds = time.perf_counter() - t0
    log.info("print map %s + %s: %s A4 at 1:%s, %.1f s", out_png.name, out_pdf.name,
             orientation, f"{denominator:,}", seconds)
    return PrintedMap(out_png, out_pdf, orientation, png_size, denominator, scale_bar_m,
                      vrange, image.values.shape if image is not None else None, font,
                      tuple(legend), seconds)


@cache
def find_cjk_font() -> str | None:
    """The family name of a CJK-capable font known to matplotlib, or ``None`` (with a warning).

    Tries :data:`CJK_FAMILIES` in order; when matplotlib's font cache does not list them (it may
    predate the fonts' installation), the system font folders are searched for their files
    (``.ttc`` collections included), which are then registered with matplotlib.
    """
    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((fam for fam in CJK_FAMILIES if fam in names), None)

    found = known()
    if found:
        return found
    try:
        for path in font_manager.findSystemFonts():
            if _CJK_FILE.search(Path(path).name):
                with contextlib.suppress(Exception):  # an unreadable font file is skipped
                    font_manager.fontManager.addfont(path)
    except Exception as exc:  # pragma: no cover (font folders unreadable)
        log.debug("font search failed: %s", exc)
    found = known()
    if found is None:
        warnings.warn("no CJK font found (install fonts-noto-cjk): Chinese text on print maps "
                      "will show as empty boxes", UserWarning, stacklevel=2)
    return found


def nice_scale_denominator(d: float) -> int:
    """The smallest round scale denominator ``>= d``: ``1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5, 8
    x 10^k`` (so 1:237,000 needed gives 1:250,000)."""
    if not (d > 0 and math.isfinite(d)):
        raise ValueError(f"scale denominator must be positive, got {d}")
    k = math.floor(math.log10(d))
    for exp in (k, k + 1):
        for m in _SCALE_MANTISSAS:
            cand = m * 10.0 ** exp
            if cand >= d * (1 - 1e-12):
                return round(cand)
    return round(10.0 ** (k + 2))  # pragma: no cover (the loops always return)


def nice_scale_length(max_m: float) -> float:
    """The longest round ground length ``<= max_m``: 1, 2 or 5 x 10^k metres."""
    if not (max_m > 0 and math.isfinite(max_m)):
        raise ValueError(f"scale-bar length must be positive, got {max_m}")
    k = math.floor(math.log10(max_m))
    for m in (5.0, 2.0, 1.0):
        if m * 10.0 ** k <= max_m * (1 + 1e-12):
            return m * 10.0 ** k
    return 10.0 ** k  # pragma: no cover


def sheet_size_px(orientation: Orientation, dpi: int = 300) -> tuple[int, int]:
    """PNG size of an A4 sheet: ``int(mm / 25.4 * dpi)`` per side (3507 x 2480 at 300 dpi)."""
    w, h = A4_MM if orientation == "landscape" else A4_MM[::-1]
    return int(w / MM_PER_INCH * dpi), int(h / MM_PER_INCH * dpi)


# --------------------------------------------------------------------------------------------
# data preparation


@dataclass(frozen=True)
class _Image:
    """The raster as drawn: ``values`` float32 (NaN = nodata) or int64 codes with ``valid``."""

    values: np.ndarray
    valid: np.ndarray
    extent: tuple[float, float, float, float]  # left, right, bottom, top
    categorical: bool


def _texts(lang: str) -> dict[str, str]:
    return texts_for(_TEXT, lang)


def _raster_crs(da: xr.DataArray) -> Any:
    src = da.attrs.get("source") or da.name or "raster"
    crs = as_crs(da.rio.crs, source=src)
    if not is_metric_projected(crs):
        raise CRSError(f"print maps are drawn in a projected CRS in metres, not {crs_label(crs)}",
                       source=src, fix="project it first with gis.project_raster(...)")
    return crs


def _downsample(da: xr.DataArray, *, max_pixels: int, categorical: bool) -> _Image:
    """Reduce ``da`` to at most ``max_pixels`` cells over the same extent, block-wise.

    Continuous: dask-side block means by an integer factor that leaves >= 2 cells per output
    pixel, then :func:`rasterio.warp.reproject` ``average``. Categorical: dask-side decimation
    by that factor, then ``mode``. Only the reduced copy is ever in memory.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be at least 1, got {max_pixels}")
    grid = GridSpec.of(da)
    h0, w0 = grid.shape
    left, bottom, right, top = grid.bounds
    scale = max(1.0, math.sqrt(h0 * w0 / max_pixels))
    h, w = max(1, math.floor(h0 / scale)), max(1, math.floor(w0 / scale))
    while h * w > max_pixels:
        h, w = max(1, h - 1), max(1, w - 1)
    valid = valid_mask(da)
    src_name = da.attrs.get("source") or da.name or "raster"
    if categorical:
        sentinel = np.iinfo(np.int64).min
        data = da.astype(np.int64).where(valid, sentinel)
    else:
        data = da.astype(np.float32).where(valid & np.isfinite(da))
    factor = max(1, int(min(w0 / w, h0 / h) // 2)) if (h, w) != (h0, w0) else 1
    src_t = grid.transform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nodata blocks: mean of empty
        if factor > 1:
            if categorical:
                off = factor // 2
                data = data.isel(y=slice(off, None, factor), x=slice(off, None, factor))
                src_t = src_t * Affine.translation(off, off)
            else:
                data = data.coarsen(y=factor, x=factor, boundary="pad").mean()
            src_t = src_t * Affine.scale(factor, factor)
        src = np.ascontiguousarray(np.asarray(data.values))
    if (h, w) == src.shape:
        out = src
    else:
        dst_t = Affine((right - left) / w, 0, left, 0, -(top - bottom) / h, top)
        if categorical:
            out = np.full((h, w), sentinel, dtype=np.int64)
            # GDAL has no Int64 'mode' in older builds: codes fit in int32 after the sentinel
            src32 = np.where(src == sentinel, np.iinfo(np.int32).min, src).astype(np.int32)
            out32 = np.full((h, w), np.iinfo(np.int32).min, dtype=np.int32)
            rasterio.warp.reproject(src32, out32, src_transform=src_t, src_crs=grid.crs,
                                    src_nodata=np.iinfo(np.int32).min, dst_transform=dst_t,
                                    dst_crs=grid.crs, dst_nodata=np.iinfo(np.int32).min,
                                    resampling=Resampling.mode)
            out = np.where(out32 == np.iinfo(np.int32).min, sentinel, out32.astype(np.int64))
        else:
            out = np.full((h, w), np.nan, dtype=np.float32)
            rasterio.warp.reproject(src.astype(np.float32), out, src_transform=src_t,
                                    src_crs=grid.crs, src_nodata=np.nan, dst_transform=dst_t,
                                    dst_crs=grid.crs, dst_nodata=np.nan,
                                    resampling=Resampling.average)
    ok = out != sentinel if categorical else np.isfinite(out)
    if not ok.any():
        raise NoDataError("holds only nodata cells; there is nothing to draw", source=src_name,
                          fix="check the raster covers the region and its nodata value is right")
    log.debug("print map raster %dx%d -> %dx%d (factor %d)", w0, h0, w, h, factor)
    return _Image(out, ok, (left, right, bottom, top), categorical)


def _check_style(style: Style, da: xr.DataArray, image: _Image) -> None:
    src = da.attrs.get("source") or da.name or "raster"
    kind = da.attrs.get("kind")
    if style.categorical and (kind == "continuous" or np.issubdtype(da.dtype, np.floating)):
        raise InputError(f"style {style.name!r} colours classes, but the raster holds "
                         "continuous values", source=src,
                         fix="use a continuous style such as maps.styles.CARBON_DENSITY")
    if not style.categorical and kind == "categorical":
        raise InputError(f"style {style.name!r} is a colour ramp, but the raster holds classes",
                         source=src, fix="use maps.styles.landuse_style(...) for class rasters")
    if style.categorical:
        known = {c.code for c in style.classes}
        unknown = sorted(set(np.unique(image.values[image.valid]).tolist()) - known)
        if unknown:
            log.warning("%s: class code(s) %s have no colour in style %s; drawn in %s", src,
                        unknown, style.name, "magenta")


def _prepare_zones(zones: gpd.GeoDataFrame, crs: Any, zone_column: str | None,
                   label_column: str | None) -> gpd.GeoDataFrame:
    src = zones.attrs.get("source", "zones")
    if zones.crs is None:
        raise InputError("zone layer has no CRS", source=src,
                         fix="set the CRS of the zones (gdf.set_crs(...)) or of the input file")
    available = ", ".join(str(c) for c in zones.columns if c != zones.geometry.name)
    for col in (zone_column, label_column):
        if col is not None and col not in zones.columns:
            raise InputError(f"zone layer has no column {col!r} (available: {available})",
                             source=src, fix="join the zonal table first, or correct the name")
    if zone_column is not None and not pd.to_numeric(zones[zone_column],
                                                     errors="coerce").notna().any():
        raise InputError(f"column {zone_column!r} holds no numbers, so it cannot be mapped",
                         source=src, fix="choose a numeric column")
    keep = ~(zones.geometry.isna() | zones.geometry.is_empty)
    zones = zones.loc[keep]
    if len(zones) == 0:
        raise InputError("zone layer has no polygons", source=src,
                         fix="check the zone file and any clipping to the study area")
    if crs is not None:
        if as_crs(zones.crs) != as_crs(crs):
            log.info("zones reprojected for display from %s to %s", crs_label(zones.crs),
                     crs_label(crs))
            zones = zones.to_crs(crs)
    else:
        zones = to_metric(zones, source=src)
    return zones


def _outline(outline: Any, zones: gpd.GeoDataFrame | None, crs: Any) -> Any:
    """The study-area outline in the map's CRS: ``outline`` (a layer, reprojected for display,
    or a shapely geometry already in that CRS), else the union of the zones, else ``None``."""
    if outline is None:
        if zones is None:
            return None
        return shapely.union_all(shapely.make_valid(zones.geometry.to_numpy()))
    if isinstance(outline, gpd.GeoDataFrame | gpd.GeoSeries):
        if outline.crs is None:
            raise InputError("outline has no CRS", source=outline.attrs.get("source", "outline"),
                             fix="set the CRS of the outline layer")
        geoms = outline.geometry if isinstance(outline, gpd.GeoDataFrame) else outline
        return shapely.union_all(shapely.make_valid(geoms.to_crs(crs).to_numpy()))
    return outline


def _check_range(value_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in value_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise SinkmapError(f"value_range must be two finite increasing numbers, got "
                           f"{value_range!r}", fix="pass (vmin, vmax) with vmin < vmax")
    return lo, hi


def _zone_range(style: Style, column: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    if style.value_range is not None:
        return float(style.value_range[0]), float(style.value_range[1])
    if style.kind == "diverging":
        return symmetric_range(v, quantile=100.0)
    return nice_range(v, quantiles=(0.0, 100.0))


def _data_bounds(image: _Image | None, zones: gpd.GeoDataFrame | None,
                 outline: Any) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of what is drawn: valid raster cells, zones, outline."""
    boxes = []
    if image is not None:
        rows = np.flatnonzero(image.valid.any(axis=1))
        cols = np.flatnonzero(image.valid.any(axis=0))
        left, right, bottom, top = image.extent
        h, w = image.values.shape
        px, py = (right - left) / w, (top - bottom) / h
        boxes.append((left + cols[0] * px, top - (rows[-1] + 1) * py,
                      left + (cols[-1] + 1) * px, top - rows[0] * py))
    if zones is not None:
        boxes.append(tuple(float(v) for v in zones.total_bounds))
    if outline is not None and not shapely.is_empty(outline):
        boxes.append(tuple(float(v) for v in shapely.bounds(outline)))
    b = np.array(boxes, dtype=np.float64)
    minx, miny, maxx, maxy = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    if not maxx > minx or not maxy > miny:
        raise InputError("the layers have no extent to draw", source="print_map",
                         fix="check the raster and zones")
    return float(minx), float(miny), float(maxx), float(maxy)


# --------------------------------------------------------------------------------------------
# sheet layout


@dataclass(frozen=True)
class _Layout:
    orientation: Orientation
    page_mm: tuple[float, float]
    frame_mm: tuple[float, float, float, float]   # outer frame x0, y0, x1, y1 (from bottom-left)
    map_mm: tuple[float, float, float, float]     # map frame
    panel_mm: tuple[float, float, float, float]   # legend panel
    scale_mm: tuple[float, float, float, float]   # scale block, inside the panel

    def frac(self, box: tuple[float, float, float, float]) -> list[float]:
        """``[left, bottom, width, height]`` figure fractions of a mm box."""
        w, h = self.page_mm
        return [box[0] / w, box[1] / h, (box[2] - box[0]) / w, (box[3] - box[1]) / h]

    @property
    def map_rect(self) -> list[float]:
        return self.frac(self.map_mm)

    @property
    def map_size_mm(self) -> tuple[float, float]:
        return self.map_mm[2] - self.map_mm[0], self.map_mm[3] - self.map_mm[1]


def _text_units(label: str) -> int:
    """Width of a label in half-em units (CJK characters are full width)."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in label)


def _row_mm(size: float) -> float:
    return size * 1.55 * MM_PER_INCH / 72


def _column_mm(labels: list[str], size: float) -> float:
    """Width of a legend column: patch, padding and the longest label."""
    longest = max((_text_units(t) for t in labels), default=0)
    return 9.0 + longest * size * 0.5 * MM_PER_INCH / 72


def _layout(orientation: Orientation, labels: list[str] | None = None,
            has_ramp: bool = False) -> _Layout:
    """The sheet's boxes (mm). The legend panel is at the right (landscape) or bottom
    (portrait), sized so that the legend ``labels`` fit at the legend font size."""
    labels = labels or []
    pw, ph = A4_MM if orientation == "landscape" else A4_MM[::-1]
    frame = (_MARGIN, _MARGIN + _FOOTER_BAND, pw - _MARGIN, ph - _MARGIN - _TITLE_BAND)
    fx0, fy0, fx1, fy1 = frame
    col = _column_mm(labels, _LEGEND_PT)
    row = _row_mm(_LEGEND_PT)
    if orientation == "landscape":
        height = fy1 - fy0 - 2 * _INSET
        space = height - 26.0 - 12.0 - (76.0 if has_ramp else 0.0)
        ncol = math.ceil(len(labels) / max(1, int(space // row))) if labels else 1
        width = min(max(_PANEL_LANDSCAPE, 4.0 + ncol * col), 120.0)
        panel = (fx1 - _INSET - width, fy0 + _INSET, fx1 - _INSET, fy1 - _INSET)
        mapb = (fx0 + _INSET, fy0 + _INSET, panel[0] - _INSET, fy1 - _INSET)
        scale = (panel[0] + 2, panel[1] + 2, panel[0] + _PANEL_LANDSCAPE - 2, panel[1] + 22)
    else:
        avail = (fx1 - fx0 - 2 * _INSET) - 70.0 - (28.0 if has_ramp else 0.0)
        ncol = max(1, int(avail // col)) if labels else 1
        rows = math.ceil(len(labels) / ncol)
        height = min(max(_PANEL_PORTRAIT, 14.0 + rows * row), 90.0)
        panel = (fx0 + _INSET, fy0 + _INSET, fx1 - _INSET, fy0 + _INSET + height)
        mapb = (fx0 + _INSET, panel[3] + _INSET, fx1 - _INSET, fy1 - _INSET)
        scale = (panel[2] - 62, panel[1] + 2, panel[2] - 2, panel[1] + 22)
    return _Layout(orientation, (pw, ph), frame, mapb, panel, scale)


def _choose_sheet(bounds: tuple[float, float, float, float], labels: list[str] | None = None,
                  has_ramp: bool = False) -> tuple[_Layout, int]:
    """Landscape or portrait A4: the one with the larger round scale for the data (padded 4 %);
    on a tie, the one the data fill better. Returns the layout and the scale denominator."""
    minx, miny, maxx, maxy = bounds
    dw, dh = (maxx - minx) * 1.04, (maxy - miny) * 1.04
    options = []
    for orientation in ("landscape", "portrait"):
        layout = _layout(orientation, labels, has_ramp)
        mw, mh = layout.map_size_mm
        denominator = nice_scale_denominator(max(dw / (mw / 1000), dh / (mh / 1000)))
        fill = (dw * dh) / (mw * mh / 1e6 * denominator ** 2)
        options.append((denominator, -fill, orientation, layout))
    denominator, _, _, layout = min(options, key=lambda o: o[:3])
    return layout, denominator


def _frame_extent(bounds: tuple[float, float, float, float], layout: _Layout,
                  denominator: int) -> tuple[float, float, float, float]:
    """Ground extent of the map frame at 1:denominator, centred on the data."""
    minx, miny, maxx, maxy = bounds
    mw, mh = layout.map_size_mm
    gw, gh = mw / 1000 * denominator, mh / 1000 * denominator
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return cx - gw / 2, cx + gw / 2, cy - gh / 2, cy + gh / 2


def _sheet(layout: _Layout) -> Figure:
    pw, ph = layout.page_mm
    fig = Figure(figsize=(pw / MM_PER_INCH, ph / MM_PER_INCH), facecolor="white")
    # outer frame (heavy) around the thin map frame and the legend panel
    left, bottom, width, height = layout.frac(layout.frame_mm)
    fig.add_artist(Rectangle((left, bottom), width, height, transform=fig.transFigure,
                             fill=False, lw=1.5, ec="#1a1a1a", zorder=0))
    return fig


def _setup_map_axes(ax: Any, extent: tuple[float, float, float, float]) -> None:
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("white")
    for spine in ax.spines.values():
        spine.set_linewidth(0.6)
        spine.set_edgecolor("#1a1a1a")
        spine.set_zorder(20)


# --------------------------------------------------------------------------------------------
# map content

_ZONE_DASH = (0, (5.0, 1.6, 1.0, 1.6))  # dash-dot, as administrative boundaries are drawn


def _ramp_cmap(style: Style, vmin: float, vmax: float) -> tuple[Any, Normalize]:
    assert style.ramp is not None
    cmap = LinearSegmentedColormap.from_list(style.ramp.name, list(style.ramp.stops),
                                             N=256).with_extremes(bad=(0, 0, 0, 0))
    norm: Normalize
    if style.kind == "diverging" and vmin < 0 < vmax:
        norm = TwoSlopeNorm(0.0, vmin, vmax)
    else:
        norm = Normalize(vmin, vmax)
    return cmap, norm


def _class_list(style: Style, image: _Image) -> list[StyleClass]:
    codes = np.unique(image.values[image.valid]).tolist()
    order = {c.code: i for i, c in enumerate(style.classes)}
    classes = [style.class_for(c) for c in codes]
    return sorted(classes, key=lambda c: (order.get(c.code, len(order)), c.code))


def _draw_image(ax: Any, image: _Image, style: Style, vrange: tuple[float, float] | None) -> None:
    if image.categorical:
        classes = _class_list(style, image)
        codes = np.array([c.code for c in classes], dtype=np.int64)
        idx = np.zeros(image.values.shape, dtype=np.int32)
        order = np.argsort(codes)
        pos = np.searchsorted(codes[order], image.values[image.valid])
        idx[image.valid] = order[np.clip(pos, 0, len(codes) - 1)]
        data = np.ma.masked_array(idx, mask=~image.valid)
        cmap = ListedColormap([c.colour for c in classes]).with_extremes(bad=(0, 0, 0, 0))
        norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
        ax.imshow(data, extent=image.extent, origin="upper", cmap=cmap, norm=norm,
                  interpolation="nearest", zorder=1)
    else:
        assert vrange is not None
        cmap, norm = _ramp_cmap(style, *vrange)
        ax.imshow(np.ma.masked_invalid(image.values), extent=image.extent, origin="upper",
                  cmap=cmap, norm=norm, interpolation="antialiased", zorder=1)


def _polygon_path(geom: Any) -> MplPath | None:
    """A compound path of a (multi)polygon; holes wound opposite to shells."""
    polys = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon"]
    paths = []
    for p in polys:
        p = orient(p, 1.0)
        for ring in (p.exterior, *p.interiors):
            xy = np.asarray(ring.coords)
            if len(xy) >= 3:
                paths.append(MplPath(xy, closed=True))
    return MplPath.make_compound_path(*paths) if paths else None


def _draw_choropleth(ax: Any, zones: gpd.GeoDataFrame, column: str, style: Style,
                     vrange: tuple[float, float] | None) -> None:
    assert vrange is not None
    cmap, norm = _ramp_cmap(style, *vrange)
    values = pd.to_numeric(zones[column], errors="coerce").to_numpy(dtype=np.float64)
    for geom, v in zip(zones.geometry, values, strict=True):
        path = _polygon_path(geom)
        if path is None:
            continue
        colour = cmap(norm(v)) if math.isfinite(v) else MISSING_FILL
        ax.add_patch(PathPatch(path, facecolor=colour, edgecolor="none", zorder=1))


def _draw_zone_boundaries(ax: Any, zones: gpd.GeoDataFrame, *, choropleth: bool) -> None:
    """Each shared border once (noded union of the boundaries), dash-dotted."""
    lines = shapely.line_merge(shapely.union_all(zones.geometry.boundary.to_numpy()))
    colour = "#3a3a3a" if not choropleth else "#4d4d4d"
    for part in getattr(lines, "geoms", [lines]):
        xy = np.asarray(part.coords)
        if len(xy) >= 2:
            ax.plot(xy[:, 0], xy[:, 1], color=colour, lw=0.7, ls=_ZONE_DASH, zorder=5,
                    solid_capstyle="butt", dash_capstyle="butt")


def _draw_outline(ax: Any, outline: Any) -> None:
    boundary = shapely.boundary(outline)
    halo = [patheffects.withStroke(linewidth=3.2, foreground="white", alpha=0.8)]
    for part in getattr(boundary, "geoms", [boundary]):
        xy = np.asarray(part.coords)
        if len(xy) >= 2:
            ax.plot(xy[:, 0], xy[:, 1], color="#1a1a1a", lw=1.6, zorder=6,
                    path_effects=halo, solid_joinstyle="round")


def _label_point(geom: Any) -> tuple[float, float]:
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type == "Polygon"]
    if not parts:
        c = geom.centroid
        return float(c.x), float(c.y)
    biggest = max(parts, key=lambda g: g.area)
    try:
        p = shapely.ops.polylabel(biggest, tolerance=max(math.sqrt(biggest.area) / 100, 1.0))
    except Exception:  # pragma: no cover (degenerate polygon)
        p = biggest.representative_point()
    return float(p.x), float(p.y)


def _draw_zone_labels(ax: Any, zones: gpd.GeoDataFrame, column: str) -> None:
    halo = [patheffects.withStroke(linewidth=2.4, foreground="white", alpha=0.9)]
    size = _LABEL_PT if len(zones) <= 40 else _LABEL_PT - 1.5
    for geom, name in zip(zones.geometry, zones[column], strict=True):
        if name is None or (isinstance(name, float) and math.isnan(name)):
            continue
        x, y = _label_point(geom)
        ax.text(x, y, str(name), ha="center", va="center", fontsize=size, color="#1a1a1a",
                zorder=10, path_effects=halo, clip_on=True)


# --------------------------------------------------------------------------------------------
# furniture


_DEGREE_STEPS = (1 / 60, 2 / 60, 5 / 60, 10 / 60, 15 / 60, 20 / 60, 30 / 60, 1.0, 2.0, 5.0, 10.0)


def _dms(value: float, hemis: str) -> str:
    """``125.5, "EW" -> "125°30′E"`` (whole minutes; degrees alone when the minutes are 0)."""
    total = round(abs(value) * 60)
    deg, minutes = divmod(total, 60)
    h = hemis[0] if value >= 0 else hemis[1]
    return f"{deg}°{minutes:02d}′{h}" if minutes else f"{deg}°{h}"


def _graticule_ticks(ax: Any, extent: tuple[float, float, float, float], crs: Any) -> None:
    """Longitude ticks on the bottom edge and latitude ticks on the left edge of the map
    frame, labelled inside it (degrees and minutes, CGCS2000/WGS 84 alike at map scale)."""
    try:
        to_ll = Transformer.from_crs(crs, as_crs(crs).geodetic_crs, always_xy=True)
    except Exception as exc:  # pragma: no cover (a CRS without a geodetic base)
        log.debug("no graticule: %s", exc)
        return
    x0, x1, y0, y1 = extent
    n = 200
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y0, y1, n)
    lon, _ = to_ll.transform(xs, np.full(n, y0))
    _, lat = to_ll.transform(np.full(n, x0), ys)
    if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
        return
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white", alpha=0.9)]
    tick = dict(color="#1a1a1a", lw=0.5, zorder=21, clip_on=False)
    dx, dy = (x1 - x0) / 120, (y1 - y0) / 120  # tick length ~1.7 mm
    for values, along, is_lon in ((lon, xs, True), (lat, ys, False)):
        span = float(values.max() - values.min())
        step = next((s for s in _DEGREE_STEPS if span / s <= 5), _DEGREE_STEPS[-1])
        first = math.ceil(values.min() / step - 1e-9) * step
        order = np.argsort(values)
        for k in range(12):
            v = first + k * step
            if v > values.max():
                break
            pos = float(np.interp(v, values[order], along[order]))
            if is_lon:
                if not x0 + 4 * dx < pos < x1 - 12 * dx:
                    continue
                ax.plot([pos, pos], [y0, y0 + dy], **tick)
                ax.text(pos, y0 + 1.6 * dy, _dms(v, "EW"), ha="center", va="bottom",
                        fontsize=_NOTE_PT - 0.5, color="#333333", zorder=21,
                        path_effects=halo)
            else:
                if not y0 + 12 * dy < pos < y1 - 4 * dy:
                    continue
                ax.plot([x0, x0 + dx], [pos, pos], **tick)
                ax.text(x0 + 1.6 * dx, pos, _dms(v, "NS"), ha="left", va="center",
                        fontsize=_NOTE_PT - 0.5, color="#333333", zorder=21,
                        rotation=90, path_effects=halo)


def _north_arrow(fig: Figure, layout: _Layout) -> None:
    """A split-triangle north arrow with ``N``, at the top right inside the map frame."""
    w, h = 9.0, 15.0
    x1, y1 = layout.map_mm[2] - 5.0, layout.map_mm[3] - 4.0
    ax = fig.add_axes(layout.frac((x1 - w, y1 - h, x1, y1)), zorder=30)
    ax.set_xlim(-1, 1)
    ax.set_ylim(0, 1.0 * h / w * 2)
    ax.set_axis_off()
    top = h / w * 2 * 0.72
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    ax.add_patch(Polygon([(0, top), (-0.62, 0.05), (0, 0.32)], closed=True, fc="#1a1a1a",
                         ec="#1a1a1a", lw=0.6, path_effects=halo))
    ax.add_patch(Polygon([(0, top), (0.62, 0.05), (0, 0.32)], closed=True, fc="white",
                         ec="#1a1a1a", lw=0.6, path_effects=halo))
    ax.text(0, top + 0.08, "N", ha="center", va="bottom", fontsize=10, fontweight="bold",
            color="#1a1a1a", path_effects=halo)


def _scale_bar(fig: Figure, layout: _Layout, denominator: int, text: dict[str, str]) -> float:
    """An alternating black/white bar of a round length in km, with the numeric scale."""
    sx0, sy0, sx1, _ = layout.scale_mm
    max_bar_mm = (sx1 - sx0) - 12.0
    length_m = nice_scale_length(max_bar_mm / 1000 * denominator)
    bar_mm = length_m / denominator * 1000
    lead = int(f"{length_m:e}"[0])
    segments = 4 if lead == 2 else 5
    seg_mm = bar_mm / segments
    pw, ph = layout.page_mm
    bx, by, bh = sx0 + 2.0, sy0 + 7.0, 1.6
    for i in range(segments):
        left, bottom, width, height = layout.frac((bx + i * seg_mm, by, bx + (i + 1) * seg_mm,
                                                   by + bh))
        fig.add_artist(Rectangle((left, bottom), width, height, transform=fig.transFigure,
                                 fc="#1a1a1a" if i % 2 == 0 else "white", ec="#1a1a1a",
                                 lw=0.5))
    km = length_m / 1000
    ticks = [0.0, km / 2, km] if segments == 4 else [0.0, km]
    labels = tick_labels(ticks)
    for value, label in zip(ticks, labels, strict=True):
        x = bx + value / km * bar_mm
        fig.text(x / pw, (by + bh + 1.0) / ph, label, ha="center", va="bottom",
                 fontsize=_NOTE_PT + 0.5, color="#1a1a1a")
    fig.text((bx + bar_mm + 1.5) / pw, (by + bh / 2) / ph, "km", ha="left", va="center",
             fontsize=_NOTE_PT + 0.5, color="#1a1a1a")
    fig.text(bx / pw, (sy0 + 1.5) / ph, text["scale"].format(d=f"{denominator:,}"),
             ha="left", va="bottom", fontsize=_LEGEND_PT, color="#1a1a1a")
    return float(length_m)


def _wrap(title: str, width_mm: float, size_pt: float) -> str:
    """Wrap a heading to the panel width (CJK characters count double)."""
    em_mm = size_pt * MM_PER_INCH / 72
    cols = max(8, int(width_mm / (em_mm * 0.55)))
    out = []
    for line in title.splitlines() or [""]:
        wide = sum(2 if ord(ch) > 0x2E80 else 1 for ch in line)
        if wide <= cols:
            out.append(line)
        elif re.search(r"[\u2E80-\u9FFF]", line):
            cur, n = "", 0
            for ch in line:
                cw = 2 if ord(ch) > 0x2E80 else 1
                if n + cw > cols:
                    out.append(cur)
                    cur, n = "", 0
                cur, n = cur + ch, n + cw
            out.append(cur)
        else:
            out.extend(textwrap.wrap(line, cols))
    return "\n".join(out)


def _legend_labels(style: Style, image: _Image | None, zones: gpd.GeoDataFrame | None,
                   zone_column: str | None, outline: Any, lang: str,
                   text: dict[str, str]) -> list[str]:
    """The legend's patch and line labels, in the order :func:`_legend` draws them."""
    labels = []
    if style.categorical and image is not None:
        labels.extend(c.label(lang) for c in _class_list(style, image))
    if _has_missing(zones, image, zone_column):
        labels.append(text["missing"])
    if zones is not None:
        labels.append(text["zone_boundary"])
    if outline is not None:
        labels.append(text["outline"])
    return labels


def _has_missing(zones: gpd.GeoDataFrame | None, image: _Image | None,
                 zone_column: str | None) -> bool:
    return bool(zones is not None and image is None and zone_column is not None
                and pd.to_numeric(zones[zone_column], errors="coerce").isna().any())


def _legend(fig: Figure, layout: _Layout, style: Style, legend_title: str,
            vrange: tuple[float, float] | None, image: _Image | None,
            zones: gpd.GeoDataFrame | None, zone_column: str | None, line_handles: list[Any],
            lang: str, text: dict[str, str]) -> list[str]:
    px0, py0, px1, py1 = layout.panel_mm
    pw, ph = layout.page_mm
    landscape = layout.orientation == "landscape"
    # legend area: the panel above (landscape) or left of (portrait) the scale block
    lx0, ly0 = px0 + 2.0, (layout.scale_mm[3] + 4.0) if landscape else py0 + 2.0
    lx1 = px1 - 2.0 if landscape else layout.scale_mm[0] - 4.0
    ly1 = py1 - 2.0
    heading = _wrap(legend_title, lx1 - lx0, _LEGEND_TITLE_PT)
    fig.text(lx0 / pw, ly1 / ph, heading, ha="left", va="top", fontsize=_LEGEND_TITLE_PT,
             fontweight="bold", color="#1a1a1a", linespacing=1.3)
    n_lines = heading.count("\n") + 1
    top = ly1 - n_lines * _LEGEND_TITLE_PT * 1.3 * MM_PER_INCH / 72 - 3.0

    drawn_ramp = not style.categorical and vrange is not None and (
        image is not None or zone_column is not None)
    handles: list[Any] = []
    if style.categorical and image is not None:
        handles = [Patch(fc=c.colour, ec="#666666", lw=0.3, label=c.label(lang))
                   for c in _class_list(style, image)]
    if _has_missing(zones, image, zone_column):
        handles.append(Patch(fc=MISSING_FILL, ec="#666666", lw=0.3, label=text["missing"]))

    if drawn_ramp:
        assert vrange is not None
        bar_w = 5.0
        if landscape:
            bar_h = min(70.0, max(30.0, (top - ly0) * 0.55))
            cax_box = (lx0 + 1.0, top - bar_h, lx0 + 1.0 + bar_w, top)
        else:
            bar_h = min(36.0, top - ly0 - 2.0)
            cax_box = (lx0 + 1.0, top - bar_h, lx0 + 1.0 + bar_w, top)
        cax = fig.add_axes(layout.frac(cax_box))
        cmap, norm = _ramp_cmap(style, *vrange)
        extend = _extend(image, zones, zone_column, vrange)
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, extend=extend,
                          extendfrac=0.06)
        if style.kind == "diverging" and vrange[0] < 0 < vrange[1]:
            ticks = sorted({*np.linspace(vrange[0], 0, 3).tolist(),
                            *np.linspace(0, vrange[1], 3).tolist()})
        else:
            ticks = _bar_ticks(*vrange)
        cb.set_ticks(ticks, labels=tick_labels(ticks))
        cb.ax.tick_params(labelsize=_LEGEND_PT, length=2.5, width=0.5)
        cb.outline.set_linewidth(0.5)
        if style.kind == "diverging":
            cb.ax.text(2.8, 1.0, f"↑ {text['increase']}", transform=cb.ax.transAxes,
                       fontsize=_NOTE_PT, va="bottom", ha="left", color="#01665e")
            cb.ax.text(2.8, 0.0, f"↓ {text['decrease']}", transform=cb.ax.transAxes,
                       fontsize=_NOTE_PT, va="top", ha="left", color="#8c510a")
        top = cax_box[1] - 6.0

    handles.extend(line_handles)
    if handles:
        if landscape:
            box = (lx0, ly0, lx1, top)
        else:  # beside the colour bar, if any
            box = (lx0 + (28.0 if drawn_ramp else 0.0), ly0,
                   lx1, ly1 - n_lines * _LEGEND_TITLE_PT * 1.3 * MM_PER_INCH / 72 - 3.0)
        _patch_legend(fig, layout, box, handles)
    return [h.get_label() for h in handles]


def _patch_legend(fig: Figure, layout: _Layout, box: tuple[float, float, float, float],
                  handles: list[Any]) -> None:
    """Patches in as many columns as the box needs, font shrinking only if it must."""
    x0, y0, x1, y1 = box
    avail_h, avail_w = y1 - y0, x1 - x0
    if avail_h <= 4 or avail_w <= 10:
        return
    labels = [h.get_label() for h in handles]
    size, ncol = _LEGEND_PT, 1
    for size in (_LEGEND_PT, 7.0, 6.0, 5.5):
        ncol = math.ceil(len(handles) / max(1, int(avail_h // _row_mm(size))))
        if ncol * _column_mm(labels, size) <= avail_w:
            break
    ax = fig.add_axes(layout.frac(box))
    ax.set_axis_off()
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, 1), ncol=ncol,
              frameon=False, fontsize=size, handlelength=2.0, handleheight=1.0,
              labelspacing=0.45, columnspacing=1.0, borderaxespad=0.0, borderpad=0.0,
              handletextpad=0.6)


def _bar_ticks(vmin: float, vmax: float) -> list[float]:
    """The web legend's ticks (:func:`maps.render.nice_ticks`: both ends and round inner
    values), with inner ticks closer than 0.75 step to an end dropped so labels never touch."""
    ticks = nice_ticks(vmin, vmax)
    step = _nice_step(vmax - vmin, 5)  # the step nice_ticks uses
    inner = [t for t in ticks[1:-1] if t - vmin >= 0.75 * step and vmax - t >= 0.75 * step]
    return [vmin, *inner, vmax]


def _extend(image: _Image | None, zones: gpd.GeoDataFrame | None, zone_column: str | None,
            vrange: tuple[float, float]) -> str:
    if image is not None:
        v = image.values[image.valid]
    elif zones is not None and zone_column is not None:
        v = pd.to_numeric(zones[zone_column], errors="coerce").to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
    else:
        return "neither"
    lo, hi = bool((v < vrange[0]).any()), bool((v > vrange[1]).any())
    return {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (lo, hi), "neither")


def _sheet_text(fig: Figure, layout: _Layout, title: str, source_note: str, crs: Any,
                text: dict[str, str]) -> None:
    pw, ph = layout.page_mm
    fx0, fy0, fx1, fy1 = layout.frame_mm
    fig.text(0.5, (fy1 + _TITLE_BAND / 2) / ph, title, ha="center", va="center",
             fontsize=_TITLE_PT, fontweight="bold", color="#1a1a1a")
    y = (fy0 - 2.5) / ph
    if source_note:
        fig.text(fx0 / pw, y, source_note, ha="left", va="top", fontsize=_NOTE_PT,
                 color="#333333")
    if crs is not None:
        fig.text(fx1 / pw, y, text["crs"].format(crs=crs_label(crs)), ha="right", va="top",
                 fontsize=_NOTE_PT, color="#333333")


@contextlib.contextmanager
def _atomic_pair(png: Path, pdf: Path, overwrite: bool) -> Iterator[tuple[Path, Path]]:
    """Both temporary paths; both outputs appear only if both were written."""
    with atomic_path(png, overwrite=overwrite) as tmp_png, \
            atomic_path(pdf, overwrite=overwrite) as tmp_pdf:
        yield tmp_png, tmp_pdf
