"""The interactive carbon-density map of a run: one self-contained Folium/Leaflet HTML page.

Layers, bottom to top (Leaflet panes keep this order whatever the layer control does):

1. *zone choropleth* (overlay pane): the first value column, coloured with YlOrBr; visible where
   the density raster is switched off or has no data;
2. *carbon density* (pane ``sinkmap-density``): the raster, warped to EPSG:3857, averaged down to
   at most ``max_pixels`` pixels, coloured with YlGn and embedded as one indexed PNG (nodata
   transparent); it ignores the mouse, so the zones underneath stay clickable;
3. *zone boundaries* (pane ``sinkmap-zones``): outlines with a tooltip (zone name and first
   value) and a popup (every value column), always on top.

Every piece of text that comes from data or from the caller (zone names, labels, title, source
note, units) is HTML-escaped here or in :mod:`maps.legend`, before it reaches Leaflet (which
inserts tooltip, popup, legend and layer-control text as HTML).

No basemap tiles are requested (``tiles=None``; see :func:`maps.offline.add_basemap`), the
legends are plain HTML/CSS controls (:mod:`maps.legend`), and :func:`save_map` writes the page
with :func:`maps.offline.offline_html`, which inlines Leaflet from the npm assets: the file
opens with no network request at all.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from branca.element import Element

from gis.atomic import atomic_path
from gis.errors import InputError, SinkmapError
from maps.legend import continuous_legend
from maps.offline import offline_html
from maps.page_parts import (
    PAGE_CSS,
    HtmlControl,
    cell_text,
    feature_collection,
    popup_table,
    rounded_mapping,
    simplified_lonlat,
)
from maps.render import (
    YLGN,
    YLORBR,
    colourise,
    esc,
    nice_range,
    nice_ticks,
    png_data_uri,
    texts_for,
    warp_to_web_mercator,
)

log = logging.getLogger(__name__)

MAX_ZOOM = 15
"""Deepest zoom the map allows; polygons are simplified to half a screen pixel at this zoom."""
DENSITY_OPACITY = 0.85
MISSING_FILL = "#d9d9d9"


_PANE_DENSITY = "sinkmap-density"
_PANE_ZONES = "sinkmap-zones"

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "density": "碳密度",
        "zones": "分区统计：{label}",
        "boundaries": "分区边界",
        "missing": "无数据",
    },
    "en": {
        "density": "Carbon density",
        "zones": "Zones: {label}",
        "boundaries": "Zone boundaries",
        "missing": "no data",
    },
}

_UNITS: dict[str, str] = {
    "tC_per_ha": "t C/ha",
    "MgC_per_ha": "Mg C/ha",
    "tC_per_ha_per_yr": "t C/ha/yr",
    "tCO2_per_ha": "t CO₂/ha",
    "tCO2e_per_ha": "t CO₂e/ha",
    "tCO2_per_ha_per_yr": "t CO₂/ha/yr",
}

def unit_label(units: str | None) -> str:
    """Human unit text for a raster's ``units`` attribute (``"tC_per_ha" -> "t C/ha"``)."""
    if not units:
        return ""
    return _UNITS.get(units, units.replace("_per_", "/").replace("_", " "))


def carbon_density_map(density: xr.DataArray, zones: gpd.GeoDataFrame, *, zone_label: str,
                       value_columns: dict[str, str], title: str, lang: str = "zh",
                       source_note: str, max_pixels: int = 1_000_000,
                       value_range: tuple[float, float] | None = None,
                       diverging: bool = False) -> folium.Map:
    """Build the interactive carbon-density map: raster overlay, zone choropleth and details.

    Parameters
    ----------
    density
        Sinkmap raster of carbon density (dims ``y, x``; CRS, transform and nodata through
        rioxarray; ``attrs["units"]`` such as ``"tC_per_ha"``); numpy- or dask-backed.
    zones
        Zone (township) polygons in any CRS, with the zonal table already joined.
    zone_label
        Column naming each zone (shown in tooltips and popup headings).
    value_columns
        ``{column: display label with units}``; the first is drawn as the choropleth, all are
        listed in the popup with formatted numbers.
    title, source_note
        Plain text for the title box and the data-source note (escaped here).
    lang
        ``"zh"`` (default) or ``"en"`` for the map's own labels.
    max_pixels
        Upper bound on the embedded image's ``width * height``.
    diverging
        Colour the choropleth with a diverging ramp centred on zero (for change and sinks).
    value_range
        Fixed ``(vmin, vmax)`` for the density colours (e.g. to compare two years); by default
        the 2nd-98th percentile of the rendered values, rounded outward (from 0 for
        non-negative data that start low).

    Raises
    ------
    gis.errors.CRSError
        ``density`` has no CRS.
    gis.errors.InputError
        ``zones`` has no CRS, no usable polygons, or lacks ``zone_label`` / a value column;
        the choropleth column is not numeric.
    gis.errors.NoDataError
        ``density`` holds only nodata.
    """
    text = _texts(lang)
    _check_zones(zones, zone_label, value_columns)
    if value_range is not None:
        vmin, vmax = (float(v) for v in value_range)
        if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
            raise SinkmapError(f"value_range must be two finite increasing numbers, got "
                               f"{value_range!r}", fix="pass (vmin, vmax) with vmin < vmax")

    # --- raster: warp, colour and encode once
    image = warp_to_web_mercator(density, max_pixels=max_pixels)
    if value_range is None:
        vmin, vmax = nice_range(image.values)
    png = colourise(image.values, vmin, vmax, YLGN)
    units = unit_label(density.attrs.get("units"))
    density_caption = f"{text['density']} ({units})" if units else text["density"]
    img_bounds = image.latlon_bounds()
    log.info("density image: %dx%d pixels (budget %d), %s..%s %s, PNG %.0f kB",
             image.shape[1], image.shape[0], max_pixels, vmin, vmax, units, len(png) / 1024)

    # --- zones: simplified lon/lat features
    first_col, first_label = next(iter(value_columns.items()))
    values = pd.to_numeric(zones[first_col], errors="coerce").to_numpy(dtype=np.float64)
    zones_ll, keep = simplified_lonlat(zones, MAX_ZOOM)
    z_vmin, z_vmax = _choropleth_range(values[keep])
    zramp = YLORBR
    if diverging:  # change and sinks: BrBG centred on zero (brown = loss, teal = removal)
        from maps.styles import BRBG

        finite = np.abs(values[keep][np.isfinite(values[keep])])
        z_vmax = float(nice_range(finite, quantiles=(0.0, 100.0))[1]) if finite.size else 1.0
        z_vmin, zramp = -z_vmax, BRBG
    fill = {i: (zramp.hex_at((v - z_vmin) / ((z_vmax - z_vmin) or 1.0)) if math.isfinite(v)
                else MISSING_FILL) for i, v in enumerate(values[keep])}
    rows = zones.loc[keep]
    geoms = [rounded_mapping(g) for g in zones_ll]
    choropleth_fc = feature_collection(geoms, [{} for _ in geoms])
    detail_props = [{"tip": _tooltip_html(row, zone_label, first_col, first_label, text),
                     "popup": _popup_html(row, zone_label, value_columns, text)}
                    for _, row in rows.iterrows()]
    details_fc = feature_collection(geoms, detail_props)

    # --- map
    south, west, north, east = _union_bounds(img_bounds, zones_ll)
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=10, tiles=None,
                   control_scale=True, max_zoom=MAX_ZOOM, zoom_snap=0.5)
    root = m.get_root()
    root.title = esc(title)
    root.header.add_child(Element(PAGE_CSS), name="sinkmap_css")
    folium.map.CustomPane(_PANE_DENSITY, z_index=410, pointer_events=False).add_to(m)
    folium.map.CustomPane(_PANE_ZONES, z_index=420, pointer_events=True).add_to(m)

    folium.GeoJson(
        choropleth_fc, name=esc(text["zones"].format(label=first_label)),
        style_function=lambda f: {"fillColor": fill[f["id"]], "fillOpacity": 0.75,
                                  "color": "#666666", "weight": 0.8},
        interactive=False, zoom_on_click=False,
    ).add_to(m)
    folium.raster_layers.ImageOverlay(
        image=png_data_uri(png), bounds=img_bounds, name=esc(density_caption),
        opacity=DENSITY_OPACITY, pixelated=True, pane=_PANE_DENSITY, interactive=False,
    ).add_to(m)
    folium.GeoJson(
        details_fc, name=esc(text["boundaries"]), pane=_PANE_ZONES,
        style_function=lambda f: {"color": "#333333", "weight": 1.2, "fill": True,
                                  "fillColor": "#000000", "fillOpacity": 0.0},
        highlight_function=lambda f: {"color": "#000000", "weight": 3, "fillOpacity": 0.08},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False,
                                  max_width=420),
        zoom_on_click=False,
    ).add_to(m)

    continuous_legend(density_caption, YLGN, vmin, vmax, nice_ticks(vmin, vmax)).add_to(m)
    no_value = not np.isfinite(values[keep]).all()
    continuous_legend(first_label, zramp, z_vmin, z_vmax, nice_ticks(z_vmin, z_vmax),
                      nodata=(MISSING_FILL, text["missing"]) if no_value else None).add_to(m)
    root.html.add_child(Element(f'<div class="sinkmap-title">{esc(title)}</div>'),
                        name="sinkmap_title")
    if source_note:
        HtmlControl(esc(source_note), position="bottomright",
                     css_class="sinkmap-source").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[south, west], [north, east]])
    return m


def save_map(m: folium.Map, path: Path, *, overwrite: bool = False) -> Path:
    """Write ``m`` as one self-contained UTF-8 HTML file, atomically.

    The page comes from :func:`maps.offline.offline_html` (libraries inlined; missing map
    assets are a :class:`gis.errors.InputError` naming the fix) and is written through
    :func:`gis.atomic.atomic_path`. An existing ``path`` is refused
    (:class:`gis.errors.OutputExistsError`) unless ``overwrite``; a failure while rendering or
    writing leaves neither ``path`` nor a temporary file.
    """
    target = Path(path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        page = offline_html(m)
        tmp.write_bytes(page.encode("utf-8"))
    log.info("wrote %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


# --------------------------------------------------------------------------------------------
# helpers


def _texts(lang: str) -> dict[str, str]:
    return texts_for(_TEXT, lang)


def _check_zones(zones: gpd.GeoDataFrame, zone_label: str, value_columns: Mapping[str, str]
                 ) -> None:
    src = zones.attrs.get("source", "zones")
    if zones.crs is None:
        raise InputError("zone layer has no CRS", source=src,
                         fix="set the CRS of the zones (gdf.set_crs(...)) or of the input file")
    if not value_columns:
        raise InputError("no value columns given for the zone map", source=src,
                         fix="pass value_columns={column: label}, the first one is mapped")
    available = ", ".join(str(c) for c in zones.columns if c != zones.geometry.name)
    for col in (zone_label, *value_columns):
        if col not in zones.columns:
            raise InputError(f"zone layer has no column {col!r} (available: {available})",
                             source=src, fix="join the zonal table first, or correct the "
                             "column name")
    first = next(iter(value_columns))
    if not (pd.api.types.is_numeric_dtype(zones[first])
            or pd.to_numeric(zones[first], errors="coerce").notna().any()):
        raise InputError(f"column {first!r} is not numeric, so it cannot be mapped",
                         source=src, fix="put a numeric column first in value_columns")
    if len(zones) == 0 or zones.geometry.is_empty.all() or zones.geometry.isna().all():
        raise InputError("zone layer has no polygons", source=src,
                         fix="check the zone file and any clipping to the study area")


def _choropleth_range(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return 0.0, 1.0
    return nice_range(v, quantiles=(0.0, 100.0))


def _union_bounds(img_bounds: list[list[float]], zones_ll: np.ndarray
                  ) -> tuple[float, float, float, float]:
    (s, w), (n, e) = img_bounds
    if len(zones_ll):
        zw, zs, ze, zn = shapely.total_bounds(zones_ll)
        if all(math.isfinite(x) for x in (zw, zs, ze, zn)):
            s, w, n, e = min(s, zs), min(w, zw), max(n, zn), max(e, ze)
    return float(s), float(w), float(n), float(e)


def _tooltip_html(row: pd.Series, zone_label: str, first_col: str, first_label: str,
                  text: Mapping[str, str]) -> str:
    name = esc(str(row[zone_label]))
    value = cell_text(row[first_col], text["missing"])
    return f"<b>{name}</b><br>{esc(first_label)}: {value}"


def _popup_html(row: pd.Series, zone_label: str, value_columns: Mapping[str, str],
                text: Mapping[str, str]) -> str:
    return popup_table(esc(str(row[zone_label])),
                       [(label, cell_text(row[col], text["missing"]))
                        for col, label in value_columns.items()])
