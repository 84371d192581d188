"""The ecological-protection pattern map (生态保护格局图): one self-contained Folium page.

Drawn by :func:`ecology_map` from an ecology output folder (``sinkmap ecology --out DIR`` or a
run's ``ecology/``; the files are specified in the ecology outputs contract): the plan's
pattern of ecological sources (cores), corridors and zones, with the evidence behind it.

Layers, bottom to top (each in its own Leaflet pane, so switching layers off and on keeps the
order), all listed in the layer control:

1. **MSPA** (``mspa.tif``, on): the GuidosToolbox classes in GuidosToolbox colours (core green,
   islet brown, perforation blue, edge black, loop yellow, bridge red, branch orange;
   background and openings light grey and half transparent, missing transparent). Transition
   pixels (a loop or bridge running through an edge or perforation) are drawn in the loop or
   bridge colour, as GuidosToolbox shows them, so connectors visibly reach their cores. The
   raster is reduced to at most ``max_side`` pixels on its long side by a **block mode** over
   integer blocks (ties go to the thinner, rarer classes: bridge, loop, branch, perforation,
   edge, islet, core, openings, background), then reprojected to EPSG:3857 with nearest
   neighbour (:func:`maps.landuse_map.warp_classes`);
2. **cumulative current** (``current.tif``, off): block-averaged to EPSG:3857
   (:func:`maps.render.warp_to_web_mercator`) and coloured on a **log scale** from the 2nd
   percentile of the positive currents to their 99.9th (current is heavy-tailed: a linear ramp
   shows only the pinch points); 0 A takes the lowest colour, NaN (barrier, outside) is
   transparent;
3. **zones** (``zones.gpkg``, on): filled by ``kind`` (core / corridor / buffer / other /
   supplied), with name, kind, area and carbon stock in the popup;
4. **township boundaries** (``townships``, if given; tooltip: ``zone_label``);
5. **corridors** (``corridors.gpkg`` layer ``corridors``, on);
6. **candidate cores** (faint) and **selected cores** (``cores.gpkg``; dark, with their rank
   "1".."N" as labels; popup: rank, area, dPC and its intra/flux/connector parts, dIIC);
7. **least-cost paths** (``corridors.gpkg`` layer ``paths``): the selected ones bold red, the
   others thin, grey and dashed, in two layers; pairs with no path (unreachable, NULL
   geometry) are not drawn, the headline names them;
8. **pinch points** and **barriers** (polygons plus a small circle each, so they stay visible
   at county scale; popups with their current / restoration gain).

A legend (MSPA classes with their share of the foreground from ``summary.json``, zone kinds,
the symbols, the current ramp) and a headline box (cores selected / found, corridors, pinch
points, barriers, unreachable pairs) complete the page. Every file is optional: what is missing
or empty is left out (logged); a folder with nothing to draw is an error.

Every piece of text from the data or the caller is escaped with :func:`maps.render.esc` (HTML
and Jinja braces) before it reaches the page. No tiles are requested; write the page with
:func:`maps.carbon_map.save_map`, which inlines Leaflet (:mod:`maps.offline`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr

from gis.errors import InputError, NoDataError
from gis.raster_io import read_raster
from layers.mspa import (
    BACKGROUND,
    BORDER_OPENING,
    BRIDGE_EDGE,
    BRIDGE_PERF,
    CLASS_BYTES,
    CORE_OPENING,
    INTERNAL,
    LOOP_EDGE,
    LOOP_PERF,
    MISSING,
)
from maps.landuse_map import _rgb, class_blocks, warp_classes
from maps.legend import css_colour, dot_item, line_item, plain_item, swatch_item, tick_labels
from maps.page_parts import (
    Panes,
    build_page,
    cell_text,
    drawable,
    headline_css,
    image_bounds,
    lonlat_features,
    open_run_folder,
    popup_table,
    read_layer,
    vector_layer,
)
from maps.render import (
    ColourRamp,
    MercatorImage,
    colourise,
    encode_png,
    esc,
    png_data_uri,
    texts_for,
    warp_to_web_mercator,
)

log = logging.getLogger(__name__)

MAX_ZOOM = 16
MAX_SIDE = 1500
"""Default longest side (pixels) of the embedded MSPA and current images."""
MSPA_OPACITY = 0.85
CURRENT_OPACITY = 0.85
CURRENT_QUANTILES = (2.0, 99.9)
"""Percentiles of the positive currents that span the log colour scale."""

MSPA_CLASSES: tuple[tuple[str, str, int], ...] = (
    ("core", "#00c800", 255),
    ("islet", "#a03c00", 255),
    ("perforation", "#0000ff", 255),
    ("edge", "#000000", 255),
    ("loop", "#ffff00", 255),
    ("bridge", "#ff0000", 255),
    ("branch", "#ff8c00", 255),
    ("background", "#dcdcdc", 110),
    ("core_opening", "#c4c4c4", 110),
    ("border_opening", "#acacac", 110),
)
"""Display classes of the MSPA image: (key, colour, alpha); palette index = position + 1
(index 0: missing / nodata, transparent)."""
_MSPA_INDEX = {key: i for i, (key, _, _) in enumerate(MSPA_CLASSES, start=1)}
_MODE_PRIORITY = tuple(_MSPA_INDEX[k] for k in (
    "bridge", "loop", "branch", "perforation", "edge", "islet", "core", "core_opening",
    "border_opening", "background"))


def _mspa_lut() -> np.ndarray:
    """MSPA byte -> display-class index (0 = missing / unknown byte)."""
    lut = np.zeros(256, dtype=np.uint8)
    for cls, values in CLASS_BYTES.items():
        lut[list(values)] = _MSPA_INDEX[cls]
    for b in (LOOP_EDGE, LOOP_PERF):  # transitions in the connector's colour (as GuidosToolbox)
        lut[[b, b + INTERNAL]] = _MSPA_INDEX["loop"]
    for b in (BRIDGE_EDGE, BRIDGE_PERF):
        lut[[b, b + INTERNAL]] = _MSPA_INDEX["bridge"]
    lut[BACKGROUND] = _MSPA_INDEX["background"]
    lut[CORE_OPENING] = _MSPA_INDEX["core_opening"]
    lut[BORDER_OPENING] = _MSPA_INDEX["border_opening"]
    lut[MISSING] = 0
    return lut


MSPA_LUT = _mspa_lut()

CURRENT_RAMP = ColourRamp("YlGnBu", ("#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4",
                                     "#1d91c0", "#225ea8", "#253494", "#081d58"))
"""ColorBrewer YlGnBu (kept apart from the MSPA colours and the red least-cost paths)."""

KIND_COLOURS = {"core": "#1b7837", "corridor": "#2166ac", "buffer": "#dfc27d",
                "other": "#bababa", "supplied": "#762a83"}
OTHER_KIND_COLOUR = "#969696"
CANDIDATE_STYLE = {"color": "#41ab5d", "weight": 0.8, "fillColor": "#a1d99b",
                   "fillOpacity": 0.3, "opacity": 0.7}
SELECTED_STYLE = {"color": "#00441b", "weight": 2.5, "fillColor": "#006d2c",
                  "fillOpacity": 0.45}
CORRIDOR_STYLE = {"color": "#2166ac", "weight": 1.5, "fillColor": "#4393c3",
                  "fillOpacity": 0.35}
PATH_STYLE = {"color": "#b2182b", "weight": 3.5, "opacity": 0.95}
OTHER_PATH_STYLE = {"color": "#525252", "weight": 1.2, "opacity": 0.8, "dashArray": "5 4"}
PINCH_STYLE = {"color": "#7a0177", "weight": 1.5, "fillColor": "#dd3497", "fillOpacity": 0.8}
BARRIER_STYLE = {"color": "#000000", "weight": 1.5, "fillColor": "#fe9929",
                 "fillOpacity": 0.85, "dashArray": "3 2"}
TOWNSHIP_STYLE = {"color": "#4d4d4d", "weight": 1.2, "fill": False, "dashArray": "6 3"}

_PANES = Panes("sinkmap-eco", {"mspa": 402, "current": 404, "zones": 410, "townships": 415,
                              "corridors": 420, "cores": 430, "paths": 440, "points": 450},
               passive=frozenset({"mspa", "current"}))
_WHO = "ecology map"
"""Start of the messages logged while reading the folder."""

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "layer_mspa": "MSPA 景观格局", "layer_current": "累积电流（连通性）",
        "layer_zones": "生态保护分区", "layer_candidates": "候选生态源地",
        "layer_cores": "生态源地（入选）", "layer_corridors": "生态廊道",
        "layer_paths": "最小成本路径（入选廊道）",
        "layer_paths_other": "最小成本路径（其他源地对）",
        "layer_pinch": "生态夹点", "layer_barriers": "生态障碍点", "layer_townships": "乡镇边界",
        "core": "核心区", "islet": "孤岛", "perforation": "孔隙", "edge": "边缘区",
        "loop": "环道区", "bridge": "桥接区", "branch": "支线", "background": "背景",
        "core_opening": "核心区内开口", "border_opening": "边界开口",
        "legend_mspa": "MSPA 景观要素（占前景 %）", "legend_zones": "生态保护分区",
        "legend_symbols": "生态格局要素", "legend_current": "累积电流 (A，对数色阶)",
        "kind_core": "生态核心区", "kind_corridor": "生态廊道区", "kind_buffer": "生态缓冲区",
        "kind_other": "其他区域", "kind_supplied": "规划分区",
        "sym_selected": "生态源地（入选，数字为排名）", "sym_candidate": "候选生态源地",
        "sym_corridor": "生态廊道", "sym_path": "最小成本路径（入选）",
        "sym_path_other": "最小成本路径（其他）", "sym_pinch": "生态夹点",
        "sym_barrier": "生态障碍点（修复可降低成本）", "sym_township": "乡镇边界",
        "core_caption": "生态源地 {id}", "rank": "排名", "selected": "入选",
        "yes": "是", "no": "否", "area": "面积 (ha)", "dpc": "dPC (%)",
        "dpc_intra": "dPC 内部 (%)", "dpc_flux": "dPC 通量 (%)", "dpc_connector": "dPC 连接 (%)",
        "diic": "dIIC (%)",
        "corridor_caption": "生态廊道 {id}", "pair": "连接源地",
        "cost": "累积成本 (成本加权 m)", "length": "路径长度 (m)", "euclid": "直线距离 (m)",
        "ratio_ce": "成本距离 / 直线距离", "ratio_cp": "成本距离 / 路径长度",
        "threshold": "廊道宽度阈值 (成本加权 m)",
        "path_caption": "最小成本路径 {a}–{b}",
        "pinch_caption": "生态夹点 {id}", "corridor": "所属廊道",
        "max_current": "最大电流 (A)", "mean_current": "平均电流 (A)",
        "barrier_caption": "生态障碍点 {id}", "radius": "检测半径 (m)",
        "improvement": "修复后成本降低 (成本加权 m)", "improvement_pct": "修复后成本降低 (%)",
        "kind": "类型", "stock_tC": "碳储量 (t C)", "stock_tCO2e": "碳储量 (t CO₂e)",
        "density": "平均碳密度 (t C/ha)", "zone": "分区",
        "head_cores": "生态源地 {sel} 处（候选 {found} 处）",
        "head_corridors": "生态廊道 {n} 条", "head_pinch": "生态夹点 {n} 处",
        "head_barriers": "生态障碍点 {n} 处",
        "head_unreachable": "{n} 对源地之间无可达路径：{pairs}",
        "missing": "无数据",
    },
    "en": {
        "layer_mspa": "MSPA pattern", "layer_current": "Cumulative current (connectivity)",
        "layer_zones": "Protection zones", "layer_candidates": "Candidate cores",
        "layer_cores": "Selected cores", "layer_corridors": "Corridors",
        "layer_paths": "Least-cost paths (selected corridors)",
        "layer_paths_other": "Least-cost paths (other pairs)",
        "layer_pinch": "Pinch points", "layer_barriers": "Barriers",
        "layer_townships": "Township boundaries",
        "core": "core", "islet": "islet", "perforation": "perforation", "edge": "edge",
        "loop": "loop", "bridge": "bridge", "branch": "branch", "background": "background",
        "core_opening": "core opening", "border_opening": "border opening",
        "legend_mspa": "MSPA classes (% of foreground)", "legend_zones": "Protection zones",
        "legend_symbols": "Pattern elements", "legend_current": "Cumulative current (A, log scale)",
        "kind_core": "core zone", "kind_corridor": "corridor zone", "kind_buffer": "buffer zone",
        "kind_other": "other", "kind_supplied": "planning zone",
        "sym_selected": "Selected core (number = rank)", "sym_candidate": "Candidate core",
        "sym_corridor": "Corridor", "sym_path": "Least-cost path (selected)",
        "sym_path_other": "Least-cost path (other)", "sym_pinch": "Pinch point",
        "sym_barrier": "Barrier (restoring it lowers the cost)",
        "sym_township": "Township boundary",
        "core_caption": "Core {id}", "rank": "Rank", "selected": "Selected",
        "yes": "yes", "no": "no", "area": "Area (ha)", "dpc": "dPC (%)",
        "dpc_intra": "dPC intra (%)", "dpc_flux": "dPC flux (%)",
        "dpc_connector": "dPC connector (%)", "diic": "dIIC (%)",
        "corridor_caption": "Corridor {id}", "pair": "Cores joined",
        "cost": "Cost (cost-weighted m)", "length": "Path length (m)",
        "euclid": "Straight-line distance (m)",
        "ratio_ce": "Cost distance / straight-line distance",
        "ratio_cp": "Cost distance / path length",
        "threshold": "Width threshold (cost-weighted m)",
        "path_caption": "Least-cost path {a}–{b}",
        "pinch_caption": "Pinch point {id}", "corridor": "Corridor",
        "max_current": "Maximum current (A)", "mean_current": "Mean current (A)",
        "barrier_caption": "Barrier {id}", "radius": "Search radius (m)",
        "improvement": "Cost reduction if restored (cost-weighted m)",
        "improvement_pct": "Cost reduction if restored (%)",
        "kind": "Kind", "stock_tC": "Carbon stock (t C)", "stock_tCO2e": "Carbon stock (t CO₂e)",
        "density": "Mean carbon density (t C/ha)", "zone": "Zone",
        "head_cores": "Cores: {sel} selected of {found} found",
        "head_corridors": "corridors: {n}", "head_pinch": "pinch points: {n}",
        "head_barriers": "barriers: {n}",
        "head_unreachable": "{n} core pair(s) without a path: {pairs}",
        "missing": "no data",
    },
}

_ECO_CSS = ("<style>\n" + headline_css("sinkmap-eco", max_width=480, line_height=1.45) + """\
  .sinkmap-eco-figure { font-weight: bold; color: #00441b; }
  .sinkmap-eco-warn { color: #a50f15; font-size: 12px; }
  .sinkmap-eco-rank {
    width: 20px; height: 20px; border-radius: 50%; background: #ffffff;
    border: 2px solid #00441b; color: #00441b; box-sizing: border-box;
    font: bold 12px/16px sans-serif; text-align: center;
  }
</style>""")


# --------------------------------------------------------------------------------------------
# the map


def ecology_map(folder: Path, townships: gpd.GeoDataFrame | None = None, *, lang: str = "zh",
                title: str, source_note: str = "", zone_label: str = "name",
                max_side: int = MAX_SIDE) -> folium.Map:
    """Build the ecological-protection pattern map of an ecology output folder.

    Parameters
    ----------
    folder
        Output folder of ``sinkmap ecology`` (``mspa.tif``, ``current.tif``, ``cores.gpkg``,
        ``corridors.gpkg`` with layers ``paths`` and ``corridors``, ``pinchpoints.gpkg``,
        ``barriers.gpkg``, ``zones.gpkg``, ``summary.json``); every file is optional.
    townships
        Township polygons (any CRS) drawn as boundaries, or None.
    lang
        ``"zh"`` (default) or ``"en"`` for the map's own labels.
    title, source_note
        Plain text for the headline box and the data-source note (escaped here).
    zone_label
        Column of ``townships`` naming each township (its tooltip); the zones of
        ``zones.gpkg`` are named by their ``name`` column (else ``zone``).
    max_side
        Longest side, in pixels, of the embedded MSPA and current images.

    Raises
    ------
    gis.errors.InputError
        ``folder`` is not a folder, or holds nothing to draw.
    gis.errors.SinkmapError
        Unknown ``lang``; a file that exists but cannot be read (from the readers).
    """
    text = texts_for(_TEXT, lang)
    folder, summary = open_run_folder(
        folder, max_side=max_side, log_prefix=_WHO,
        fix="give the output folder of `sinkmap ecology` (or a run's ecology/)")

    mspa = _mspa_image(folder / "mspa.tif", max_side)
    current = _current_image(folder / "current.tif", max_side)
    zones = read_layer(folder / "zones.gpkg", log_prefix=_WHO)
    cores = read_layer(folder / "cores.gpkg", log_prefix=_WHO)
    paths = read_layer(folder / "corridors.gpkg", "paths", log_prefix=_WHO)
    corridors = read_layer(folder / "corridors.gpkg", "corridors", log_prefix=_WHO)
    pinch = read_layer(folder / "pinchpoints.gpkg", log_prefix=_WHO)
    barriers = read_layer(folder / "barriers.gpkg", log_prefix=_WHO)
    towns = drawable(townships) if townships is not None else None
    if towns is not None and towns.crs is None:
        log.warning("ecology map: township layer has no CRS; not drawn")
        towns = None

    layers: list[tuple[str, folium.map.Layer]] = []  # (pane key, layer)
    bounds: list[tuple[float, float, float, float]] = []  # (west, south, east, north)
    legend_syms: list[str] = []

    if mspa is not None:
        png = _mspa_png(mspa)
        layers.append(("mspa", folium.raster_layers.ImageOverlay(
            image=png_data_uri(png), bounds=mspa.latlon_bounds(), name=esc(text["layer_mspa"]),
            opacity=MSPA_OPACITY, pixelated=True, interactive=False, pane=_PANES.name("mspa"))))
        bounds.append(image_bounds(mspa))
    current_range: tuple[float, float] | None = None
    if current is not None:
        scaled = _log_current(current.values)
        if scaled is None:
            log.warning("ecology map: current.tif holds no positive current; layer left out")
        else:
            values, current_range = scaled
            lo, hi = (math.log10(v) for v in current_range)
            png = colourise(values, lo, hi, CURRENT_RAMP)
            layers.append(("current", folium.raster_layers.ImageOverlay(
                image=png_data_uri(png), bounds=current.latlon_bounds(),
                name=esc(text["layer_current"]), opacity=CURRENT_OPACITY, pixelated=True,
                interactive=False, pane=_PANES.name("current"), show=False)))
            bounds.append(image_bounds(current))

    kinds_present: list[str] = []
    if zones is not None:
        layer, b, kinds_present = _zone_layer(zones, text)
        layers.append(("zones", layer))
        bounds.append(b)
    if towns is not None:
        layer, b = _township_layer(towns, zone_label, text)
        layers.append(("townships", layer))
        bounds.append(b)
        legend_syms.append(line_item(TOWNSHIP_STYLE, text["sym_township"]))
    if corridors is not None:
        layer, b = vector_layer(corridors, text["layer_corridors"], CORRIDOR_STYLE,
                                _corridor_popup, text, pane=_PANES.name("corridors"))
        layers.append(("corridors", layer))
        bounds.append(b)
        legend_syms.append(swatch_item(CORRIDOR_STYLE, text["sym_corridor"]))
    if cores is not None:
        selected = _flag(cores, "selected")
        if (~selected).any():
            layer, b = vector_layer(cores[~selected], text["layer_candidates"],
                                    CANDIDATE_STYLE, _core_popup, text, pane=_PANES.name("cores"))
            layers.append(("cores", layer))
            bounds.append(b)
            legend_syms.append(swatch_item(CANDIDATE_STYLE, text["sym_candidate"]))
        if selected.any():
            layer, b = vector_layer(cores[selected], text["layer_cores"], SELECTED_STYLE,
                                    _core_popup, text, pane=_PANES.name("cores"))
            _add_rank_labels(layer, cores[selected])
            layers.append(("cores", layer))
            bounds.append(b)
            legend_syms.append(swatch_item(SELECTED_STYLE, text["sym_selected"]))
    if paths is not None:
        paths = paths[_flag(paths, "reachable", default=True)]
        chosen = _flag(paths, "selected")
        for mask, name, style, sym in ((~chosen, "layer_paths_other", OTHER_PATH_STYLE,
                                        "sym_path_other"),
                                       (chosen, "layer_paths", PATH_STYLE, "sym_path")):
            part = drawable(paths[mask])
            if part is None:
                continue
            layer, b = vector_layer(part, text[name], style, _path_popup, text,
                                    pane=_PANES.name("paths"))
            layers.append(("paths", layer))
            bounds.append(b)
            legend_syms.append(line_item(style, text[sym]))
    for gdf, name, style, popup, sym in (
            (pinch, "layer_pinch", PINCH_STYLE, _pinch_popup, "sym_pinch"),
            (barriers, "layer_barriers", BARRIER_STYLE, _barrier_popup, "sym_barrier")):
        if gdf is None:
            continue
        layer, b = vector_layer(gdf, text[name], style, popup, text, pane=_PANES.name("points"),
                                points=True)
        layers.append(("points", layer))
        bounds.append(b)
        legend_syms.append(dot_item(style, text[sym]))

    if not layers:
        raise InputError("holds no ecology output to draw (no mspa.tif, current.tif, cores, "
                         "corridors, zones, ...)", source=folder,
                         fix="give the output folder of `sinkmap ecology`")

    counts = _counts(summary, cores, paths, corridors, pinch, barriers)
    m = build_page(layers, bounds, _PANES, title=title, zoom_start=10, max_zoom=MAX_ZOOM,
                   css={"sinkmap_eco_css": _ECO_CSS},
                   headline=_headline_html(title, counts, text),
                   headline_class="sinkmap-eco-headline", source_note=source_note,
                   legend=_legend_html(mspa is not None, summary, kinds_present, legend_syms,
                                       current_range, text))
    log.info("ecology map: %d layers, %s", len(layers),
             ", ".join(f"{k} {v}" for k, v in counts.items() if k != "unreachable"))
    return m


# --------------------------------------------------------------------------------------------
# reading


def _flag(gdf: gpd.GeoDataFrame, column: str, *, default: bool = False) -> np.ndarray:
    """A boolean column as a numpy mask (missing column or values: ``default``)."""
    if column not in gdf.columns:
        return np.full(len(gdf), default)
    s = gdf[column]
    if s.dtype == object:
        s = s.map(lambda v: str(v).strip().lower() in ("1", "true", "yes", "t")
                  if isinstance(v, str) else v)
    return pd.array(s, dtype="boolean").fillna(default).to_numpy(dtype=bool)


# --------------------------------------------------------------------------------------------
# rasters


def _budget(da: xr.DataArray, max_side: int) -> int:
    """A pixel budget giving about ``max_side`` pixels on the raster's long side."""
    h, w = da.sizes["y"], da.sizes["x"]
    return max(1, int(max_side * max_side * min(h, w) / max(h, w)))


def _mspa_image(path: Path, max_side: int) -> MercatorImage | None:
    """``mspa.tif`` as display-class indices on an EPSG:3857 grid (NaN = missing), or None."""
    if not path.exists():
        log.info("ecology map: %s not found; MSPA layer left out", path)
        return None
    small = mspa_classes(read_raster(path), max_side=max_side)
    try:
        return warp_classes(small, max_pixels=2 * small.size + 16)
    except NoDataError:
        log.warning("ecology map: %s holds only missing pixels; MSPA layer left out", path)
        return None


def mspa_classes(da: xr.DataArray, *, max_side: int = MAX_SIDE) -> xr.DataArray:
    """MSPA bytes as display-class indices (see :data:`MSPA_CLASSES`; 0 = missing), reduced
    by an integer factor ``k`` so that the long side is at most ``max_side`` pixels.

    Each output cell takes the **mode** of the classes in its ``k x k`` block (missing cells do
    not count; a block with no data is missing), ties going to the thinner, rarer classes
    (:func:`maps.landuse_map.class_blocks`). The raster is read in strips of blocks, so a
    dask-backed raster is never held in memory whole.
    """
    return class_blocks(da, MSPA_LUT, _MODE_PRIORITY, max_side=max_side, default_name="mspa")


def _mspa_png(image: MercatorImage) -> bytes:
    v = image.values
    idx = np.where(np.isfinite(v), v, 0).astype(np.uint8)
    palette = np.array([(0, 0, 0), *(_rgb(c) for _, c, _ in MSPA_CLASSES)], dtype=np.uint8)
    alpha = np.array([0, *(a for _, _, a in MSPA_CLASSES)], dtype=np.uint8)
    return encode_png(idx, palette=palette, alpha=alpha)


def _current_image(path: Path, max_side: int) -> MercatorImage | None:
    if not path.exists():
        log.info("ecology map: %s not found; current layer left out", path)
        return None
    da = read_raster(path)
    try:
        return warp_to_web_mercator(da, max_pixels=_budget(da, max_side))
    except NoDataError:
        log.warning("ecology map: %s holds only nodata; current layer left out", path)
        return None


def _log_current(values: np.ndarray) -> tuple[np.ndarray, tuple[float, float]] | None:
    """``log10`` of the current clipped to the colour range (0 A -> the low end; NaN stays
    NaN) and that range in amperes; None when no current is positive."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    pos = v[finite & (v > 0)]
    if pos.size == 0:
        return None
    lo, hi = (float(q) for q in np.percentile(pos, CURRENT_QUANTILES))
    if not hi > lo * 1.0001:
        lo, hi = float(pos.min()), float(pos.max())
    if not hi > lo * 1.0001:
        lo, hi = lo / math.sqrt(10.0), lo * math.sqrt(10.0)
    out = np.full(v.shape, np.nan)
    out[finite] = np.log10(np.clip(v[finite], lo, hi))
    return out, (lo, hi)


# --------------------------------------------------------------------------------------------
# vector layers


def _add_rank_labels(group: folium.FeatureGroup, cores: gpd.GeoDataFrame) -> None:
    """The rank of each selected core as a round label at a point inside it."""
    pts = gpd.GeoSeries(shapely.point_on_surface(cores.geometry.to_numpy()),
                        crs=cores.crs).to_crs(4326)
    ranks = _ints(cores, "rank")
    order = np.argsort([r if r is not None else 10**9 for r in ranks], kind="stable")
    for i in order:
        label = esc(ranks[i]) if ranks[i] is not None else "?"
        p = pts.iloc[int(i)]
        folium.Marker(
            [round(p.y, 6), round(p.x, 6)], interactive=False, keyboard=False,
            icon=folium.DivIcon(html=f'<div class="sinkmap-eco-rank">{label}</div>',
                                icon_size=(20, 20), icon_anchor=(10, 10),
                                class_name="sinkmap-eco-rank-icon"),
        ).add_to(group)


def _zone_layer(zones: gpd.GeoDataFrame, text: Mapping[str, str]
                ) -> tuple[folium.FeatureGroup, tuple[float, float, float, float], list[str]]:
    kinds = (zones["kind"].astype(str).to_numpy() if "kind" in zones.columns
             else np.full(len(zones), "other"))
    props = []
    for (_, row), kind in zip(zones.iterrows(), kinds, strict=True):
        tip, html = _zone_popup(row, text)
        props.append({"tip": tip, "popup": html,
                      "fill": css_colour(KIND_COLOURS.get(kind, OTHER_KIND_COLOUR))})
    fc, bounds = lonlat_features(zones, props)
    group = folium.FeatureGroup(name=esc(text["layer_zones"]), show=True)
    folium.GeoJson(
        fc, pane=_PANES.name("zones"), zoom_on_click=False,
        style_function=lambda f: {"color": f["properties"]["fill"], "weight": 1.5,
                                  "fillColor": f["properties"]["fill"], "fillOpacity": 0.25},
        highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.4},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False,
                                  max_width=420),
    ).add_to(group)
    present = list(dict.fromkeys(kinds.tolist()))
    return group, bounds, present


def _township_layer(towns: gpd.GeoDataFrame, zone_label: str, text: Mapping[str, str]
                    ) -> tuple[folium.GeoJson, tuple[float, float, float, float]]:
    if zone_label in towns.columns:
        tips = [esc(v) for v in towns[zone_label].tolist()]
    else:
        log.warning("ecology map: township layer has no column %r; boundaries without names",
                    zone_label)
        tips = [""] * len(towns)
    fc, bounds = lonlat_features(towns, [{"tip": t} for t in tips])
    layer = folium.GeoJson(
        fc, name=esc(text["layer_townships"]), pane=_PANES.name("townships"), zoom_on_click=False,
        style_function=lambda _f: dict(TOWNSHIP_STYLE),
        tooltip=(folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True)
                 if zone_label in towns.columns else None))
    return layer, bounds


# --------------------------------------------------------------------------------------------
# popups (all text escaped here)


def _value(row: pd.Series, col: str) -> Any:
    return row[col] if col in row.index else None


def _num(row: pd.Series, col: str, text: Mapping[str, str]) -> str:
    return cell_text(_value(row, col), text["missing"])


def _int_text(value: Any) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(f)) if math.isfinite(f) and f.is_integer() else str(value)


def _ints(gdf: gpd.GeoDataFrame, col: str) -> list[str | None]:
    if col not in gdf.columns:
        return [None] * len(gdf)
    return [_int_text(v) for v in gdf[col].tolist()]


def _id(row: pd.Series, col: str) -> str:
    return esc(_int_text(_value(row, col)) or "?")


def _yes_no(row: pd.Series, col: str, text: Mapping[str, str]) -> str:
    v = _value(row, col)
    if v is None or (pd.api.types.is_scalar(v) and pd.isna(v)):
        return esc(text["missing"])
    return esc(text["yes"] if bool(v) else text["no"])


def _core_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    caption = esc(text["core_caption"].format(id=_int_text(_value(row, "core_id")) or "?"))
    rank = _id(row, "rank")
    html = popup_table(caption, [
        (text["rank"], f"<b>{rank}</b>"), (text["selected"], _yes_no(row, "selected", text)),
        (text["area"], _num(row, "area_ha", text)), (text["dpc"], _num(row, "dPC", text)),
        (text["dpc_intra"], _num(row, "dPC_intra", text)),
        (text["dpc_flux"], _num(row, "dPC_flux", text)),
        (text["dpc_connector"], _num(row, "dPC_connector", text)),
        (text["diic"], _num(row, "dIIC", text))])
    return f"{caption} ({esc(text['rank'])} {rank})", html


def _pair(row: pd.Series) -> str:
    return f"{_id(row, 'core_a')}–{_id(row, 'core_b')}"


def _corridor_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    caption = esc(text["corridor_caption"].format(
        id=_int_text(_value(row, "corridor_id")) or "?"))
    html = popup_table(caption, [
        (text["pair"], _pair(row)), (text["rank"], _id(row, "rank")),
        (text["cost"], _num(row, "cost", text)), (text["length"], _num(row, "length_m", text)),
        (text["threshold"], _num(row, "threshold_cwm", text)),
        (text["area"], _num(row, "area_ha", text))])
    return f"{caption}: {_pair(row)}", html


def _path_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    caption = esc(text["path_caption"].format(a=_int_text(_value(row, "core_a")) or "?",
                                              b=_int_text(_value(row, "core_b")) or "?"))
    html = popup_table(caption, [
        (text["rank"], _id(row, "rank") if _int_text(_value(row, "rank")) else
         esc(text["missing"])),
        (text["selected"], _yes_no(row, "selected", text)),
        (text["cost"], _num(row, "cost", text)), (text["length"], _num(row, "length_m", text)),
        (text["euclid"], _num(row, "euclid_m", text)),
        (text["ratio_ce"], _num(row, "cw_to_euc_dist_ratio", text)),
        (text["ratio_cp"], _num(row, "cwd_to_path_length_ratio", text))])
    return caption, html


def _pinch_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    caption = esc(text["pinch_caption"].format(id=_int_text(_value(row, "pinch_id")) or "?"))
    html = popup_table(caption, [
        (text["corridor"], _id(row, "corridor_id")),
        (text["max_current"], _num(row, "max_current_A", text)),
        (text["mean_current"], _num(row, "mean_current_A", text)),
        (text["area"], _num(row, "area_ha", text))])
    return f"{caption}: {_num(row, 'max_current_A', text)} A", html


def _barrier_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    caption = esc(text["barrier_caption"].format(
        id=_int_text(_value(row, "barrier_id")) or "?"))
    html = popup_table(caption, [
        (text["corridor"], _id(row, "corridor_id")),
        (text["improvement"], _num(row, "improvement_cwm", text)),
        (text["improvement_pct"], _num(row, "improvement_pct", text)),
        (text["radius"], _num(row, "radius_m", text)),
        (text["area"], _num(row, "area_ha", text))])
    return f"{caption}: −{_num(row, 'improvement_pct', text)} %", html


def _kind_label(kind: str, text: Mapping[str, str]) -> str:
    return text.get(f"kind_{kind}", kind)


def _zone_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    name = _value(row, "name")
    if name is None or (pd.api.types.is_scalar(name) and pd.isna(name)) or str(name) == "":
        name = _value(row, "zone")
    caption = esc("" if name is None else name)
    kind = _value(row, "kind")
    kind_text = esc(_kind_label(str(kind), text)) if kind is not None else esc(text["missing"])
    html = popup_table(caption, [
        (text["zone"], esc(_value(row, "zone") if _value(row, "zone") is not None else "-")),
        (text["kind"], kind_text), (text["area"], _num(row, "area_ha", text)),
        (text["stock_tC"], _num(row, "stock_tC", text)),
        (text["stock_tCO2e"], _num(row, "stock_tCO2e", text)),
        (text["density"], _num(row, "mean_density_tC_per_ha", text))])
    return f"<b>{caption}</b> ({kind_text})", html


# --------------------------------------------------------------------------------------------
# headline and legend


def _count(summary: Mapping[str, Any], key: str, fallback: int) -> int:
    v = summary.get(key)
    try:
        return int(v) if v is not None else fallback
    except (TypeError, ValueError):
        return fallback


def _counts(summary: Mapping[str, Any], cores: gpd.GeoDataFrame | None,
            paths: gpd.GeoDataFrame | None, corridors: gpd.GeoDataFrame | None,
            pinch: gpd.GeoDataFrame | None, barriers: gpd.GeoDataFrame | None
            ) -> dict[str, Any]:
    """Counts for the headline: the summary's, else counted in the layers drawn."""
    n = {"cores_found": len(cores) if cores is not None else 0,
         "cores_selected": int(_flag(cores, "selected").sum()) if cores is not None else 0,
         "corridors": (len(corridors) if corridors is not None else
                       int(_flag(paths, "selected").sum()) if paths is not None else 0),
         "pinchpoints": len(pinch) if pinch is not None else 0,
         "barriers": len(barriers) if barriers is not None else 0}
    out: dict[str, Any] = {k: _count(summary, f"n_{k}", v) for k, v in n.items()}
    pairs = summary.get("unreachable_pairs") or []
    out["unreachable"] = [p for p in pairs if isinstance(p, list | tuple) and len(p) == 2]
    return out


def _headline_html(title: str, counts: Mapping[str, Any], text: Mapping[str, str]) -> str:
    cores = text["head_cores"].format(sel=counts["cores_selected"], found=counts["cores_found"])
    parts = [f'<div class="sinkmap-eco-title">{esc(title)}</div>',
             f'<div class="sinkmap-eco-figure">{esc(cores)}</div>',
             "<div>" + esc(" · ".join([text["head_corridors"].format(n=counts["corridors"]),
                                       text["head_pinch"].format(n=counts["pinchpoints"]),
                                       text["head_barriers"].format(n=counts["barriers"])]))
             + "</div>"]
    pairs = counts["unreachable"]
    if pairs:
        shown = ", ".join(f"{_int_text(a)}–{_int_text(b)}" for a, b in pairs[:8])
        if len(pairs) > 8:
            shown += ", …"
        parts.append(f'<div class="sinkmap-eco-warn">'
                     f'{esc(text["head_unreachable"].format(n=len(pairs), pairs=shown))}</div>')
    return "".join(parts)


def _mspa_pct(summary: Mapping[str, Any], cls: str) -> str:
    entry = (summary.get("mspa") or {}).get(cls)
    pct = entry.get("pct") if isinstance(entry, Mapping) else None
    try:
        return f" {float(pct):.1f} %" if pct is not None and math.isfinite(float(pct)) else ""
    except (TypeError, ValueError):
        return ""


def _current_bar(lo: float, hi: float, title: str, width: int = 240) -> str:
    """A colour bar on a log axis with labels in amperes (decades, or 1-2-5 steps)."""
    a, b = math.log10(lo), math.log10(hi)
    n = len(CURRENT_RAMP.stops) - 1
    gradient = ", ".join(f"{css_colour(c)} {100 * i / n:.1f}%"
                         for i, c in enumerate(CURRENT_RAMP.stops))
    decades = [10.0 ** e for e in range(math.ceil(a - 1e-9), math.floor(b + 1e-9) + 1)]
    if len(decades) < 3:
        decades = [m * 10.0 ** e for e in range(math.floor(a) - 1, math.ceil(b) + 1)
                   for m in (1, 2, 5) if a - 1e-9 <= math.log10(m * 10.0 ** e) <= b + 1e-9]
    while len(decades) > 5:
        decades = decades[::2]
    spans = []
    for v in decades:
        pct = 100 * (math.log10(v) - a) / ((b - a) or 1.0)
        label = tick_labels([v])[0] if v >= 1e-6 else f"{v:.0e}"
        cls = (' class="sinkmap-first"' if pct <= 3 else
               ' class="sinkmap-last"' if pct >= 97 else "")
        spans.append(f'<span{cls} style="left:{pct:.2f}%">{esc(label)}</span>')
    return (f'<div class="sinkmap-legend-title sinkmap-legend-section">{esc(title)}</div>'
            f'<div class="sinkmap-legend-bar" style="width:{width}px;'
            f'background:linear-gradient(to right, {gradient})"></div>'
            f'<div class="sinkmap-legend-ticks" style="width:{width}px">{"".join(spans)}</div>')


def _legend_html(has_mspa: bool, summary: Mapping[str, Any], kinds: Sequence[str],
                 symbols: Sequence[str], current_range: tuple[float, float] | None,
                 text: Mapping[str, str]) -> str:
    parts: list[str] = []
    if symbols:
        parts.append(f'<div class="sinkmap-legend-title">{esc(text["legend_symbols"])}</div>'
                     f'<div class="sinkmap-legend-items" data-legend="symbols">'
                     f'{"".join(symbols)}</div>')
    if kinds:
        rows = "".join(plain_item(KIND_COLOURS.get(k, OTHER_KIND_COLOUR), _kind_label(k, text))
                       for k in kinds)
        parts.append(f'<div class="sinkmap-legend-title sinkmap-legend-section">'
                     f'{esc(text["legend_zones"])}</div>'
                     f'<div class="sinkmap-legend-items" data-legend="zones">{rows}</div>')
    if has_mspa:
        rows = "".join(plain_item(colour, text[key] + (_mspa_pct(summary, key)
                                                        if key in CLASS_BYTES else ""))
                       for key, colour, _ in MSPA_CLASSES)
        parts.append(f'<div class="sinkmap-legend-title sinkmap-legend-section">'
                     f'{esc(text["legend_mspa"])}</div>'
                     f'<div class="sinkmap-legend-items" data-legend="mspa">{rows}</div>')
    if current_range is not None:
        parts.append(_current_bar(*current_range, text["legend_current"]))
    return "".join(parts)


__all__ = ["CURRENT_RAMP", "MSPA_CLASSES", "ecology_map", "mspa_classes"]
