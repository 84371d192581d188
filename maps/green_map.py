"""The urban green-space map (城市绿地): one self-contained Folium page of a ``sinkmap green`` run.

Drawn by :func:`green_map` from the run folder of ``sinkmap green --out DIR`` (the files are
specified in the green-space contract, ``notes/green_contract.md``): where the town is green,
how that changed since the baseline year, and how each district compares.

Layers, bottom to top (each in its own Leaflet pane, so switching layers off and on keeps the
order), all listed in the layer control:

1. **green space** (``green_mask.tif``, on): green / not green / undetermined; outside the
   boundary transparent;
2. **green change** (``green_change.tif``, off, only with a baseline year): new green, lost
   green, stable green; stable non-green and undetermined transparent;
3. **district green coverage** (``districts.gpkg``, off): a choropleth of
   ``green_coverage_pct`` in fixed classes (:data:`COVERAGE_BREAKS`, ColorBrewer Greens),
   drawn above the images when switched on; districts whose status is ``undetermined`` (or
   without a coverage) grey with a dashed edge;
4. **park service area** (``parks.gpkg`` layer ``service_area``, on);
5. **districts** (on): the district edges, with a tooltip (name and coverage) and a popup with
   every number of the district (area, population, share observed, coverage, green ha / mu,
   green and park m² per person -- "—" when unknown, never 0 --, park service %, new / lost /
   net green mu with a baseline, status and the reason when undetermined);
6. **parks** (``parks.gpkg`` layer ``parks``; popup: name, area, service radius);
7. **urban boundary** (``urban.gpkg``), an outline.

The class images are reduced to at most ``max_side`` pixels on their long side by a **block
mode** over integer blocks (:func:`maps.landuse_map.class_blocks`; the classes drawn
transparent count in the mode, so a block of stable non-green with one new-green pixel stays
transparent), then reprojected to EPSG:3857 with nearest neighbour
(:func:`maps.landuse_map.warp_classes`).

A headline box (coverage, green area, new green against the target with a progress bar, lost
and net green, park service, green per person, the NDVI threshold and its method, or the reason
when the result is undetermined) and a legend (image classes, coverage classes with their
district counts, symbols) complete the page. Every file is optional (what is missing is left
out, logged), but the folder must hold ``green_mask.tif``, ``districts.gpkg`` or ``urban.gpkg``.

Every piece of text from the data or the caller is escaped with :func:`maps.render.esc` before
it reaches the page. No tiles are requested; write the page with
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

from gis.errors import InputError, NoDataError
from gis.raster_io import read_raster
from maps.landuse_map import class_blocks, class_png, warp_classes
from maps.legend import line_item, plain_item, swatch_item
from maps.page_parts import (
    Panes,
    build_page,
    cell_text,
    headline_css,
    image_bounds,
    lonlat_features,
    open_run_folder,
    popup_table,
    read_layer,
    vector_layer,
)
from maps.render import MercatorImage, esc, png_data_uri, texts_for

log = logging.getLogger(__name__)

MAX_ZOOM = 17
MAX_SIDE = 1500
"""Default longest side (pixels) of the embedded green and change images."""
MASK_OPACITY = 0.85
CHANGE_OPACITY = 0.9

# --- raster codes of the run folder (the contract)
OUTSIDE = 255
"""Nodata of ``green_mask.tif`` and ``green_change.tif``: outside the urban boundary."""
MASK_CODES = {"not_green": 0, "green": 1, "undetermined": 2}
CHANGE_CODES = {"stable_nongreen": 0, "stable_green": 1, "new_green": 2, "lost_green": 3,
                "change_undetermined": 4}

MASK_CLASSES: tuple[tuple[str, str | None], ...] = (
    ("green", "#238b45"),
    ("not_green", "#f1ede3"),
    ("undetermined", "#b3b3b3"),
)
"""Display classes of the green-space image: (key, colour); display index = position + 1
(0: outside, transparent). Ties in the block mode go in this order."""
CHANGE_CLASSES: tuple[tuple[str, str | None], ...] = (
    ("new_green", "#1a9641"),
    ("lost_green", "#d7191c"),
    ("stable_green", "#c7e9c0"),
    ("stable_nongreen", None),
    ("change_undetermined", None),
)
"""Display classes of the change image (as :data:`MASK_CLASSES`); the last two (no colour) are
counted in the block mode but drawn transparent."""

COVERAGE_BREAKS = (20.0, 30.0, 40.0, 50.0)
"""Class limits (%) of the district coverage choropleth: fixed, so towns and years compare."""
COVERAGE_COLOURS = ("#edf8e9", "#bae4b3", "#74c476", "#31a354", "#006d2c")
"""ColorBrewer Greens, 5 classes (one more than the breaks)."""
UNDETERMINED_STYLE = {"color": "#636363", "weight": 1.2, "fillColor": "#d9d9d9",
                      "fillOpacity": 0.75, "dashArray": "4 3"}
DISTRICT_EDGE = {"color": "#3f3f3f", "weight": 1.2, "fill": False}
PARK_STYLE = {"color": "#00441b", "weight": 1.5, "fillColor": "#41ab5d", "fillOpacity": 0.55}
SERVICE_STYLE = {"color": "#2171b5", "weight": 1.2, "fillColor": "#6baed6",
                 "fillOpacity": 0.18, "dashArray": "5 4"}
URBAN_STYLE = {"color": "#252525", "weight": 2.5, "fill": False}

_PANES = Panes("sinkmap-green", {"mask": 404, "change": 406, "coverage": 408, "service": 410,
                                "districts": 420, "parks": 425, "urban": 430},
               passive=frozenset({"mask", "change", "coverage", "service", "urban"}))
"""The page's panes; the passive ones let the mouse through to the districts (their popups)
below the parks."""
_WHO = "green map"
"""Start of the messages logged while reading the folder."""

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "title": "城市绿地", "title_year": "城市绿地 {year}",
        "layer_mask": "绿地分布 {year}", "layer_change": "绿地变化 {y0}–{y1}",
        "layer_coverage": "片区绿化覆盖率", "layer_districts": "片区边界（点击查看统计）",
        "layer_parks": "公园绿地",
        "layer_service": "公园服务范围", "layer_urban": "城区边界",
        "green": "绿地", "not_green": "非绿地", "undetermined": "无法判定（无有效观测）",
        "new_green": "新增绿地", "lost_green": "减少绿地", "stable_green": "保持绿地",
        "legend_mask": "绿地分布", "legend_change": "绿地变化 {y0}–{y1}",
        "legend_districts": "片区绿化覆盖率（片区数）", "legend_symbols": "图例",
        "district_undetermined": "无法判定", "n_districts": "{label}（{n}）",
        "sym_park": "公园绿地", "sym_park_small": "公园绿地（面积过小，不计服务）",
        "sym_service": "公园服务范围", "sym_urban": "城区边界", "sym_district": "片区边界",
        "area": "面积 (ha)", "population": "人口", "observed": "有效观测 (%)",
        "coverage": "绿化覆盖率 (%)", "green_ha": "绿地面积 (ha)", "green_mu": "绿地面积 (亩)",
        "green_pp": "人均绿地 (m²/人)", "park_ha": "公园绿地 (ha)",
        "park_pp": "人均公园绿地 (m²/人)", "park_service": "公园服务半径覆盖率 (%)",
        "new_mu": "新增绿地 (亩)", "lost_mu": "减少绿地 (亩)", "net_mu": "净增绿地 (亩)",
        "status": "状态", "status_ok": "有效", "status_undetermined": "无法判定",
        "reason": "原因",
        "park_caption": "公园", "park_area": "面积 (ha)", "park_radius": "服务半径 (m)",
        "park_small": "面积过小，不计服务",
        "head_coverage": "绿化覆盖率 {pct} %", "head_coverage_na": "绿化覆盖率：无法判定",
        "head_area": "绿地 {mu} 亩（{ha} ha）",
        "head_new": "新增绿地 {new} 亩 / 目标 {target} 亩（{pct} %）",
        "head_new_no_target": "新增绿地 {new} 亩",
        "head_no_baseline": "未设基准年，不计新增绿地",
        "head_target": "（目标 {target} 亩）",
        "head_change": "{y0}–{y1} 年：减少 {lost} 亩，净增 {net} 亩",
        "head_park": "公园服务半径覆盖率 {pct} %", "head_pp": "人均绿地 {v} m²/人",
        "head_threshold": "NDVI 阈值 {t}（{method}）", "method_otsu": "Otsu 自动阈值",
        "method_fixed": "固定阈值", "head_landcover": "依据土地覆盖分类判定绿地",
        "head_observed": "有效观测 {pct} %", "head_scenes": "影像 {n} 景",
        "head_undetermined": "无法判定：{reason}",
        "missing": "—",
    },
    "en": {
        "title": "Urban green space", "title_year": "Urban green space {year}",
        "layer_mask": "Green space {year}", "layer_change": "Green change {y0}–{y1}",
        "layer_coverage": "District green coverage",
        "layer_districts": "Districts (click for figures)", "layer_parks": "Parks",
        "layer_service": "Park service area", "layer_urban": "Urban boundary",
        "green": "green", "not_green": "not green",
        "undetermined": "undetermined (no clear observation)",
        "new_green": "new green", "lost_green": "lost green", "stable_green": "stable green",
        "legend_mask": "Green space", "legend_change": "Green change {y0}–{y1}",
        "legend_districts": "District green coverage (districts)", "legend_symbols": "Symbols",
        "district_undetermined": "undetermined", "n_districts": "{label} ({n})",
        "sym_park": "Park", "sym_park_small": "Park (too small to serve)",
        "sym_service": "Park service area", "sym_urban": "Urban boundary",
        "sym_district": "District boundary",
        "area": "Area (ha)", "population": "Population", "observed": "Observed (%)",
        "coverage": "Green coverage (%)", "green_ha": "Green area (ha)",
        "green_mu": "Green area (mu)", "green_pp": "Green per person (m²/person)",
        "park_ha": "Park area (ha)", "park_pp": "Park per person (m²/person)",
        "park_service": "Park service coverage (%)",
        "new_mu": "New green (mu)", "lost_mu": "Lost green (mu)", "net_mu": "Net green (mu)",
        "status": "Status", "status_ok": "ok", "status_undetermined": "undetermined",
        "reason": "Reason",
        "park_caption": "Park", "park_area": "Area (ha)", "park_radius": "Service radius (m)",
        "park_small": "too small to serve",
        "head_coverage": "Green coverage {pct} %",
        "head_coverage_na": "Green coverage: undetermined",
        "head_area": "green {mu} mu ({ha} ha)",
        "head_new": "New green {new} mu / target {target} mu ({pct} %)",
        "head_new_no_target": "New green {new} mu",
        "head_no_baseline": "No baseline year: new green not counted",
        "head_target": " (target {target} mu)",
        "head_change": "{y0}–{y1}: lost {lost} mu, net {net} mu",
        "head_park": "park service coverage {pct} %",
        "head_pp": "green per person {v} m²/person",
        "head_threshold": "NDVI threshold {t} ({method})", "method_otsu": "Otsu, automatic",
        "method_fixed": "fixed", "head_landcover": "green taken from the land-cover map",
        "head_observed": "observed {pct} %", "head_scenes": "{n} scenes",
        "head_undetermined": "Undetermined: {reason}",
        "missing": "—",
    },
}

_GREEN_CSS = ("<style>\n" + headline_css("sinkmap-green", max_width=460, line_height=1.45)
              + """\
  .sinkmap-green-figure { font-weight: bold; font-size: 17px; color: #00441b; margin: 2px 0; }
  .sinkmap-green-sub { color: #444; font-size: 12px; }
  .sinkmap-green-warn { color: #a50f15; font-size: 12px; }
  .sinkmap-green-bar {
    width: 240px; height: 8px; margin: 2px 0 4px; background: #e5e5e5; border-radius: 4px;
    overflow: hidden;
  }
  .sinkmap-green-bar span { display: block; height: 100%; background: #31a354; }
</style>""")


# --------------------------------------------------------------------------------------------
# the map


def green_map(folder: Path, *, lang: str = "zh", title: str | None = None,
              source_note: str = "", max_side: int = MAX_SIDE) -> folium.Map:
    """Build the urban green-space map of a ``sinkmap green`` run folder.

    Parameters
    ----------
    folder
        Output folder of ``sinkmap green`` (``green_mask.tif``, ``green_change.tif``,
        ``districts.gpkg``, ``parks.gpkg`` with layers ``parks`` and ``service_area``,
        ``urban.gpkg``, ``summary.json``); every file is optional, but one of the green mask,
        the districts and the boundary must be there.
    lang
        ``"zh"`` (default) or ``"en"`` for the map's own labels.
    title
        Plain text for the headline box and the page title (escaped here); by default
        "城市绿地 {year}" / "Urban green space {year}".
    source_note
        Plain text for the data-source note (escaped here).
    max_side
        Longest side, in pixels, of the embedded images.

    Raises
    ------
    gis.errors.InputError
        ``folder`` is not a folder, or holds none of the green mask, the districts and the
        boundary.
    gis.errors.SinkmapError
        Unknown ``lang``; a file that exists but cannot be read (from the readers).
    ValueError
        ``max_side`` is below 1.
    """
    text = texts_for(_TEXT, lang)
    folder, summary = open_run_folder(folder, max_side=max_side, log_prefix=_WHO,
                                      fix="give the output folder of `sinkmap green --out DIR`")
    year, base = summary.get("year"), summary.get("baseline_year")
    if title is None:
        title = text["title_year"].format(year=year) if year else text["title"]

    mask = _class_image(folder / "green_mask.tif", MASK_CLASSES, MASK_CODES, max_side)
    change = _class_image(folder / "green_change.tif", CHANGE_CLASSES, CHANGE_CODES, max_side)
    districts = read_layer(folder / "districts.gpkg", log_prefix=_WHO)
    parks = read_layer(folder / "parks.gpkg", "parks", log_prefix=_WHO)
    service = read_layer(folder / "parks.gpkg", "service_area", log_prefix=_WHO)
    urban = read_layer(folder / "urban.gpkg", log_prefix=_WHO)

    layers: list[tuple[str, folium.map.Layer]] = []  # (pane key, layer)
    bounds: list[tuple[float, float, float, float]] = []  # (west, south, east, north)
    symbols: list[str] = []
    if mask is not None:
        name = text["layer_mask"].format(year=year or "").strip()
        layers.append(("mask", _overlay(mask, MASK_CLASSES, name, MASK_OPACITY, "mask")))
        bounds.append(image_bounds(mask))
    if change is not None:
        name = text["layer_change"].format(y0=base or "?", y1=year or "?")
        layers.append(("change", _overlay(change, CHANGE_CLASSES, name, CHANGE_OPACITY,
                                          "change", show=False)))
        bounds.append(image_bounds(change))
    d_classes: list[int] = []
    if districts is not None:
        coverage, edges, b, d_classes = _district_layers(districts, text)
        layers += [("coverage", coverage), ("districts", edges)]
        bounds.append(b)
    if service is not None:
        layer, b = _plain_layer(service, text["layer_service"], SERVICE_STYLE, "service")
        layers.append(("service", layer))
        bounds.append(b)
        symbols.append(swatch_item(SERVICE_STYLE, text["sym_service"]))
    if districts is not None:
        symbols.append(line_item(DISTRICT_EDGE, text["sym_district"]))
    if parks is not None:
        layer, b = vector_layer(parks, text["layer_parks"], PARK_STYLE, _park_popup, text,
                                pane=_PANES.name("parks"))
        layers.append(("parks", layer))
        bounds.append(b)
        symbols.append(swatch_item(PARK_STYLE, text["sym_park"]))
    if urban is not None:
        layer, b = _plain_layer(urban, text["layer_urban"], URBAN_STYLE, "urban")
        layers.append(("urban", layer))
        bounds.append(b)
        symbols.append(line_item(URBAN_STYLE, text["sym_urban"]))
    if mask is None and districts is None and urban is None:
        raise InputError("holds no green-space output to draw (no green_mask.tif, "
                         "districts.gpkg or urban.gpkg)", source=folder,
                         fix="give the output folder of `sinkmap green --out DIR`")

    layers.sort(key=lambda kl: _PANES.z_index[kl[0]])  # the layer control lists them bottom up
    m = build_page(layers, bounds, _PANES, title=title, zoom_start=13, max_zoom=MAX_ZOOM,
                   css={"sinkmap_green_css": _GREEN_CSS},
                   headline=_headline_html(title, summary, districts, text),
                   headline_class="sinkmap-green-headline", source_note=source_note,
                   legend=_legend_html(mask is not None, change is not None, d_classes, symbols,
                                       base, year, text))
    log.info("green map: %d layers (%s)", len(layers), ", ".join(k for k, _ in layers))
    return m


# --------------------------------------------------------------------------------------------
# rasters


def _class_image(path: Path, classes: Sequence[tuple[str, str | None]],
                 codes: Mapping[str, int], max_side: int) -> MercatorImage | None:
    """A class raster of the run as display-class indices on an EPSG:3857 grid, or None."""
    if not path.exists():
        log.info("green map: %s not found; layer left out", path)
        return None
    lut = np.zeros(256, dtype=np.uint8)  # raw byte -> display index (0: outside / unknown)
    for i, (key, _) in enumerate(classes, start=1):
        lut[codes[key]] = i
    small = class_blocks(read_raster(path), lut, range(1, len(classes) + 1), max_side=max_side)
    try:
        return warp_classes(small, max_pixels=2 * small.size + 16)
    except NoDataError:
        log.warning("green map: %s holds only pixels outside the boundary; layer left out", path)
        return None


def _overlay(image: MercatorImage, classes: Sequence[tuple[str, str | None]], name: str,
             opacity: float, pane: str, *, show: bool = True
             ) -> folium.raster_layers.ImageOverlay:
    png = class_png(image, {i: c for i, (_, c) in enumerate(classes, start=1) if c})
    log.info("green map: %s image %dx%d, PNG %.0f kB", pane, image.shape[1], image.shape[0],
             len(png) / 1024)
    return folium.raster_layers.ImageOverlay(
        image=png_data_uri(png), bounds=image.latlon_bounds(), name=esc(name), opacity=opacity,
        pixelated=True, interactive=False, pane=_PANES.name(pane), show=show)


# --------------------------------------------------------------------------------------------
# districts and parks (all text escaped here)

_DISTRICT_ROWS = (("area", "area_ha"), ("population", "population"),
                  ("observed", "observed_pct"), ("coverage", "green_coverage_pct"),
                  ("green_ha", "green_ha"), ("green_mu", "green_mu"),
                  ("green_pp", "green_m2_per_person"), ("park_ha", "park_ha"),
                  ("park_pp", "park_m2_per_person"), ("park_service", "park_service_pct"))
_CHANGE_ROWS = (("new_mu", "new_green_mu"), ("lost_mu", "lost_green_mu"),
                ("net_mu", "net_green_mu"))


def _number(value: Any) -> float:
    """``value`` as a float (NaN when missing or not a number)."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x


def _pct(value: Any, missing: str = "—") -> str:
    x = _number(value)
    return f"{x:.1f}" if math.isfinite(x) else missing


def _coverage_class(value: float) -> int:
    """Index into :data:`COVERAGE_COLOURS` (``value`` finite)."""
    return int(np.searchsorted(COVERAGE_BREAKS, value, side="right"))


def _class_label(i: int) -> str:
    b = COVERAGE_BREAKS
    if i == 0:
        return f"< {b[0]:g} %"
    if i == len(b):
        return f"≥ {b[-1]:g} %"
    return f"{b[i - 1]:g}–{b[i]:g} %"


def _undetermined(row: pd.Series) -> bool:
    return (str(row.get("status", "ok")) == "undetermined"
            or not math.isfinite(_number(row.get("green_coverage_pct"))))


def _district_name(row: pd.Series) -> str:
    name = row.get("district", row.get("name"))
    return "" if name is None or (pd.api.types.is_scalar(name) and pd.isna(name)) else str(name)


def _district_popup(row: pd.Series, text: Mapping[str, str], with_change: bool
                    ) -> tuple[str, str]:
    caption = esc(_district_name(row))
    miss = text["missing"]
    rows = [(text[key], esc(_pct(row.get(col), miss)) if col.endswith("_pct")
             else cell_text(_number(row.get(col)), miss)) for key, col in _DISTRICT_ROWS]
    if with_change:
        rows += [(text[key], cell_text(_number(row.get(col)), miss)) for key, col in _CHANGE_ROWS]
    undetermined = _undetermined(row)
    rows.append((text["status"], esc(text["status_undetermined" if undetermined
                                          else "status_ok"])))
    reason = row.get("reason")
    if isinstance(reason, str) and reason.strip():
        rows.append((text["reason"], esc(reason)))
    tip = (esc(text["district_undetermined"]) if undetermined
           else f"{esc(_pct(row.get('green_coverage_pct')))} %")
    return f"<b>{caption}</b>: {tip}", popup_table(caption, rows)


def _district_style(cls: int) -> dict[str, Any]:
    if cls < 0:
        return dict(UNDETERMINED_STYLE)
    return {"color": "#3f3f3f", "weight": 1.0, "fillColor": COVERAGE_COLOURS[cls],
            "fillOpacity": 0.8}


def _district_layers(districts: gpd.GeoDataFrame, text: Mapping[str, str]
                     ) -> tuple[folium.GeoJson, folium.GeoJson,
                                tuple[float, float, float, float], list[int]]:
    """The coverage choropleth (fill only; off at first, drawn above the images when switched
    on), the districts (edges, tooltips and popups), their bounds, and the class of each
    district (-1: undetermined)."""
    with_change = any(math.isfinite(_number(v)) for col in ("new_green_mu", "lost_green_mu")
                      if col in districts.columns for v in districts[col])
    props, classes = [], []
    for _, row in districts.iterrows():
        tip, html = _district_popup(row, text, with_change)
        props.append({"tip": tip, "popup": html})
        classes.append(-1 if _undetermined(row) else _coverage_class(
            _number(row.get("green_coverage_pct"))))
    fc, bounds = lonlat_features(districts, props)  # rows all have geometry (read_layer)
    fills = {"type": "FeatureCollection",
             "features": [{"type": "Feature", "id": f["id"], "properties": {"cls": c},
                           "geometry": f["geometry"]}
                          for f, c in zip(fc["features"], classes, strict=True)]}
    coverage = folium.GeoJson(
        fills, name=esc(text["layer_coverage"]), pane=_PANES.name("coverage"), show=False,
        interactive=False, zoom_on_click=False,
        style_function=lambda f: _district_style(f["properties"]["cls"]))
    edges = folium.GeoJson(
        fc, name=esc(text["layer_districts"]), pane=_PANES.name("districts"), zoom_on_click=False,
        style_function=lambda _f: {**DISTRICT_EDGE, "fill": True, "fillColor": "#000000",
                                   "fillOpacity": 0.0},
        highlight_function=lambda _f: {"weight": 3, "fillOpacity": 0.08},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False,
                                  max_width=420))
    return coverage, edges, bounds, classes


def _plain_layer(gdf: gpd.GeoDataFrame, name: str, style: Mapping[str, Any], pane: str
                 ) -> tuple[folium.GeoJson, tuple[float, float, float, float]]:
    """``gdf`` in one style, without tooltips or popups (the mouse goes through), and its
    bounds."""
    fc, bounds = lonlat_features(gdf, [{} for _ in range(len(gdf))])
    layer = folium.GeoJson(fc, name=esc(name), pane=_PANES.name(pane), interactive=False,
                           zoom_on_click=False, style_function=lambda _f: dict(style))
    return layer, bounds


def _park_popup(row: pd.Series, text: Mapping[str, str]) -> tuple[str, str]:
    name = row.get("name")
    name = "" if name is None or (pd.api.types.is_scalar(name) and pd.isna(name)) else str(name)
    caption = esc(name or text["park_caption"])
    area_ha = _number(row.get("area_m2")) / 1e4
    radius = _number(row.get("radius_m"))
    radius_text = (esc(text["park_small"]) if radius == 0
                   else cell_text(radius, text["missing"]))
    html = popup_table(caption, [(text["park_area"], cell_text(area_ha, text["missing"])),
                            (text["park_radius"], radius_text)])
    return f"<b>{caption}</b> ({cell_text(area_ha, text['missing'])} ha)", html


# --------------------------------------------------------------------------------------------
# headline and legend


def _mu(value: Any) -> str:
    x = _number(value)
    return f"{x:,.0f}" if math.isfinite(x) else "—"


def _total(districts: gpd.GeoDataFrame | None, col: str) -> float:
    if districts is None or col not in districts.columns:
        return math.nan
    v = pd.to_numeric(districts[col], errors="coerce")
    return float(v.sum()) if v.notna().any() else math.nan


def _figure(summary: Mapping[str, Any], districts: gpd.GeoDataFrame | None, key: str,
            col: str) -> float:
    """A headline number: the summary's (null: not computed), or the districts' total when
    the summary does not have it (sums only)."""
    return _number(summary[key]) if key in summary else _total(districts, col)


def _headline_html(title: str, summary: Mapping[str, Any],
                   districts: gpd.GeoDataFrame | None, text: Mapping[str, str]) -> str:
    year, base = summary.get("year"), summary.get("baseline_year")
    coverage = _number(summary.get("green_coverage_pct"))
    head = (text["head_coverage"].format(pct=_pct(coverage)) if math.isfinite(coverage)
            else text["head_coverage_na"])
    green_mu = _figure(summary, districts, "green_area_mu", "green_mu")
    green_ha = _figure(summary, districts, "green_area_ha", "green_ha")
    parts = [f'<div class="sinkmap-green-title">{esc(title)}</div>',
             f'<div class="sinkmap-green-figure">{esc(head)}</div>',
             f"<div>{esc(text['head_area'].format(mu=_mu(green_mu), ha=_mu(green_ha)))}</div>"]

    new = _figure(summary, districts, "new_green_mu", "new_green_mu")
    target = _number(summary.get("target_mu"))
    has_target = math.isfinite(target) and target > 0
    if base is None and not math.isfinite(new):
        line = text["head_no_baseline"] + (text["head_target"].format(target=_mu(target))
                                           if has_target else "")
        parts.append(f'<div class="sinkmap-green-sub">{esc(line)}</div>')
    elif has_target:
        progress = _number(summary.get("target_progress_pct"))
        if not math.isfinite(progress) and math.isfinite(new):
            progress = 100.0 * new / target
        line = text["head_new"].format(new=_mu(new), target=_mu(target), pct=_pct(progress))
        parts.append(f"<div>{esc(line)}</div>")
        if math.isfinite(progress):
            parts.append(f'<div class="sinkmap-green-bar"><span style="width:'
                         f'{min(100.0, max(0.0, progress)):.1f}%"></span></div>')
    else:
        parts.append(f"<div>{esc(text['head_new_no_target'].format(new=_mu(new)))}</div>")
    lost = _figure(summary, districts, "lost_green_mu", "lost_green_mu")
    net = _figure(summary, districts, "net_green_mu", "net_green_mu")
    if math.isfinite(lost) or math.isfinite(net):
        line = text["head_change"].format(y0=base or "?", y1=year or "?", lost=_mu(lost),
                                          net=_mu(net))
        parts.append(f'<div class="sinkmap-green-sub">{esc(line)}</div>')

    facts = []
    service = _number(summary.get("park_service_pct"))
    if math.isfinite(service):
        facts.append(text["head_park"].format(pct=_pct(service)))
    per_person = _number(summary.get("green_m2_per_person"))
    if math.isfinite(per_person):
        facts.append(text["head_pp"].format(v=_pct(per_person)))
    if facts:
        parts.append(f"<div>{esc(' · '.join(facts))}</div>")

    method = []
    threshold = _number(summary.get("threshold"))
    if summary.get("source") == "landcover":
        method.append(text["head_landcover"])
    elif math.isfinite(threshold):
        how = summary.get("threshold_method")
        how_text = text.get(f"method_{how}", str(how)) if how else text["missing"]
        method.append(text["head_threshold"].format(t=f"{threshold:.3f}", method=how_text))
    observed = _number(summary.get("observed_pct"))
    if math.isfinite(observed):
        method.append(text["head_observed"].format(pct=_pct(observed)))
    scenes = summary.get("scenes")
    if isinstance(scenes, Mapping):
        n = sum(len(v) for v in scenes.values() if isinstance(v, list | tuple))
        if n:
            method.append(text["head_scenes"].format(n=n))
    if method:
        parts.append(f'<div class="sinkmap-green-sub">{esc(" · ".join(method))}</div>')
    reason = summary.get("reason")
    if summary.get("status") == "undetermined" or (isinstance(reason, str) and reason.strip()):
        parts.append(f'<div class="sinkmap-green-warn">'
                     f'{esc(text["head_undetermined"].format(reason=reason or "?"))}</div>')
    return "".join(parts)


def _section(title: str, key: str, rows: Sequence[str], first: bool) -> str:
    cls = "sinkmap-legend-title" + ("" if first else " sinkmap-legend-section")
    return (f'<div class="{cls}">{esc(title)}</div>'
            f'<div class="sinkmap-legend-items" data-legend="{key}">{"".join(rows)}</div>')


def _legend_html(has_mask: bool, has_change: bool, district_classes: Sequence[int],
                 symbols: Sequence[str], base: Any, year: Any, text: Mapping[str, str]) -> str:
    parts: list[str] = []
    if has_mask:
        rows = [plain_item(c, text[k]) for k, c in MASK_CLASSES if c]
        parts.append(_section(text["legend_mask"], "mask", rows, not parts))
    if has_change:
        rows = [plain_item(c, text[k]) for k, c in CHANGE_CLASSES if c]
        parts.append(_section(text["legend_change"].format(y0=base or "?", y1=year or "?"),
                              "change", rows, not parts))
    if district_classes:
        counts = np.bincount(np.asarray(district_classes) + 1,
                             minlength=len(COVERAGE_COLOURS) + 1)
        rows = [plain_item(colour, text["n_districts"].format(label=_class_label(i),
                                                              n=int(counts[i + 1])))
                for i, colour in enumerate(COVERAGE_COLOURS)]
        if counts[0]:
            rows.append(swatch_item(UNDETERMINED_STYLE, text["n_districts"].format(
                label=text["district_undetermined"], n=int(counts[0]))))
        parts.append(_section(text["legend_districts"], "districts", rows, not parts))
    if symbols:
        parts.append(_section(text["legend_symbols"], "symbols", symbols, not parts))
    return "".join(parts)


__all__ = ["CHANGE_CLASSES", "COVERAGE_BREAKS", "COVERAGE_COLOURS", "MASK_CLASSES", "green_map"]
