"""Parts shared by sinkmap's Folium pages (carbon, ecology, green-space, tillage maps; atlas).

* the page: :data:`PAGE_CSS` (title box, source note, popup tables), :func:`headline_css` (a
  page's headline box), :class:`HtmlControl` (a Leaflet control holding fixed HTML),
  :func:`build_page` (the map of a run folder's layers, with its headline, source note, legend
  and layer control), :class:`Panes` (named panes that keep the layer order);
* vector layers: :func:`simplified_lonlat`, :func:`rounded_mapping`,
  :func:`feature_collection`, :func:`lonlat_features` and :func:`vector_layer` (simplified
  lon/lat GeoJSON with a tooltip and a popup per feature), :func:`popup_table` and
  :func:`cell_text` (popup HTML);
* reading a run folder: :func:`open_run_folder`, :func:`read_summary`, :func:`read_layer` and
  :func:`drawable` (every file optional; what is missing or empty is logged and left out);
  :func:`image_bounds`.

Every piece of text from data or the caller is escaped with :func:`maps.render.esc` by the
caller or here, as each function says, before it reaches the page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import pyogrio
import shapely
from branca.element import Element, MacroElement

from gis.errors import InputError
from gis.vector_io import read_vector
from maps.legend import Legend
from maps.render import MercatorImage, esc, format_number, mercator_tolerance

log = logging.getLogger(__name__)

SIMPLIFY_ZOOM = 15
"""Zoom at which vector layers are simplified to half a screen pixel (by default)."""
COORD_DECIMALS = 5
"""Decimals kept in lon/lat coordinates (1e-5 degree is about 1 m, a quarter pixel at zoom 15)."""

Bounds = tuple[float, float, float, float]
"""``(west, south, east, north)`` in degrees."""

_FONT = '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif'

PAGE_CSS = """
<style>
  .leaflet-container { background: #f7f7f7; }
  .sinkmap-title {
    position: fixed; top: 10px; left: 56px; z-index: 1001;
    max-width: 40%; padding: 6px 14px; background: rgba(255, 255, 255, 0.92);
    border: 1px solid #bbb; border-radius: 4px; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25);
    font: bold 16px/1.35 "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif;
    text-align: center; pointer-events: none;
  }
  .sinkmap-source {
    max-width: 420px; padding: 3px 8px; background: rgba(255, 255, 255, 0.85);
    border-radius: 3px; font: 11px/1.4 sans-serif; color: #333;
  }
  .sinkmap-popup { border-collapse: collapse; font: 12px/1.4 sans-serif; }
  .sinkmap-popup caption { font-weight: bold; text-align: left; padding-bottom: 4px; }
  .sinkmap-popup th { text-align: left; font-weight: normal; color: #555; padding: 1px 10px 1px 0; }
  .sinkmap-popup td { text-align: right; padding: 1px 0; white-space: nowrap; }
</style>
"""
"""Style sheet of every page: title box, source note, popup tables."""


def headline_css(prefix: str, *, max_width: int, line_height: float) -> str:
    """Style rules (no ``<style>`` tag) of a page's headline box ``.{prefix}-headline`` and of
    its title line ``.{prefix}-title``."""
    return (f"  .{prefix}-headline {{\n"
            "    padding: 6px 12px; background: rgba(255, 255, 255, 0.94); "
            "border: 1px solid #bbb;\n"
            "    border-radius: 4px; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.25); "
            f"max-width: {max_width}px;\n"
            f"    font: 13px/{line_height:g} {_FONT};\n"
            "  }\n"
            f"  .{prefix}-title {{ font-weight: bold; font-size: 15px; }}\n")


class HtmlControl(MacroElement):
    """A Leaflet control holding a fixed piece of HTML (built and escaped by the caller)."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create('div', {{ this.css_class|tojson }});
            div.innerHTML = {{ this.html|tojson }};
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str, *, position: str, css_class: str) -> None:
        super().__init__()
        self._name = "HtmlControl"
        self.html = html_text
        self.position = position
        self.css_class = css_class


# --------------------------------------------------------------------------------------------
# the page of a run folder


@dataclass(frozen=True)
class Panes:
    """The Leaflet panes of one page, named ``{prefix}-{key}`` and stacked by ``z_index``.

    Each layer goes in its own pane, so switching layers off and on keeps their order.
    ``passive`` panes let the mouse through to the layers below (images, outlines).
    """

    prefix: str
    z_index: Mapping[str, int]
    passive: frozenset[str] = field(default_factory=frozenset)

    def name(self, key: str) -> str:
        """The pane name of ``key`` (e.g. ``"sinkmap-eco-zones"``)."""
        return f"{self.prefix}-{key}"

    def add_to(self, m: folium.Map, layers: Sequence[tuple[str, Any]]) -> None:
        """Add the panes that ``layers`` (``(pane key, layer)``) use, then the layers, to ``m``.
        """
        used = {key for key, _ in layers}
        for key, z in self.z_index.items():
            if key in used:
                folium.map.CustomPane(self.name(key), z_index=z,
                                      pointer_events=key not in self.passive).add_to(m)
        for _, layer in layers:
            layer.add_to(m)


def build_page(layers: Sequence[tuple[str, Any]], bounds: Iterable[Bounds], panes: Panes, *,
               title: str, zoom_start: int, max_zoom: int, css: Mapping[str, str],
               headline: str, headline_class: str, source_note: str, legend: str
               ) -> folium.Map:
    """The page of a run folder: a tile-less map fitted to the union of ``bounds`` (boxes of
    the layers), with the ``(pane key, layer)`` ``layers`` in their ``panes`` (in the order
    given, which is the layer control's), a headline box (escaped HTML, bottom left), the source
    note (plain text, bottom right, if any), the legend (escaped HTML, bottom right) and the
    layer control.

    ``title`` (plain text, escaped here) names the page; ``css`` holds the page's own style
    sheets (``{element name: <style> block}``), added after :data:`PAGE_CSS`.
    """
    boxes = list(bounds)
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=zoom_start,
                   tiles=None, control_scale=True, max_zoom=max_zoom, zoom_snap=0.5)
    root = m.get_root()
    root.title = esc(title)
    root.header.add_child(Element(PAGE_CSS), name="sinkmap_css")
    for name, sheet in css.items():
        root.header.add_child(Element(sheet), name=name)
    panes.add_to(m, layers)
    HtmlControl(headline, position="bottomleft", css_class=headline_class).add_to(m)
    if source_note:
        HtmlControl(esc(source_note), position="bottomright",
                    css_class="sinkmap-source").add_to(m)
    Legend(legend, position="bottomright").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[south, west], [north, east]])
    return m


# --------------------------------------------------------------------------------------------
# reading a run folder


def open_run_folder(folder: Path, *, max_side: int, fix: str, log_prefix: str
                    ) -> tuple[Path, dict[str, Any]]:
    """``folder`` as a :class:`~pathlib.Path` and its ``summary.json`` (:func:`read_summary`).

    Raises :class:`gis.errors.InputError` (with ``fix``) when ``folder`` is not a folder, and
    ``ValueError`` when ``max_side`` (the longest side of the page's images) is below 1.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("is not a folder", source=folder, fix=fix)
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, got {max_side}")
    return folder, read_summary(folder / "summary.json", log_prefix=log_prefix)


def read_summary(path: Path, *, log_prefix: str) -> dict[str, Any]:
    """The JSON object in ``path``, or ``{}`` when it is missing or unreadable (logged, each
    message starting with ``log_prefix``, e.g. ``"ecology map"``)."""
    if not path.exists():
        log.info("%s: %s not found; counts are taken from the layers", log_prefix, path)
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("%s: cannot read %s (%s); counts are taken from the layers",
                    log_prefix, path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def read_layer(path: Path, layer: str | None = None, *, log_prefix: str
               ) -> gpd.GeoDataFrame | None:
    """The drawable rows of one vector layer, or None (file or layer missing, or empty; logged,
    each message starting with ``log_prefix``)."""
    if not path.exists():
        log.info("%s: %s not found; layer left out", log_prefix, path)
        return None
    if layer is not None and layer not in {str(n) for n in pyogrio.list_layers(path)[:, 0]}:
        log.info("%s: %s has no layer %r; left out", log_prefix, path, layer)
        return None
    return drawable(read_vector(path, layer=layer))


def drawable(gdf: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """``gdf`` without rows lacking geometry (e.g. unreachable paths); None when none is left."""
    if gdf is None or len(gdf) == 0:
        return None
    geom = gdf.geometry.to_numpy()
    keep = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    if not keep.any():
        return None
    return gdf[keep]


def image_bounds(image: MercatorImage) -> Bounds:
    """``(west, south, east, north)`` of a warped image, in degrees."""
    (s, w), (n, e) = image.latlon_bounds()
    return w, s, e, n


# --------------------------------------------------------------------------------------------
# vector layers


def simplified_lonlat(gdf: gpd.GeoDataFrame, max_zoom: int = SIMPLIFY_ZOOM
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Geometries simplified to half a pixel at ``max_zoom``, in lon/lat.

    Simplification runs in EPSG:3857, where that tolerance is the same number of metres at
    every latitude. A polygon coverage (edge-matched, non-overlapping townships) is simplified
    with :func:`shapely.coverage_simplify`, which keeps shared borders shared; anything else
    per polygon with topology preserved. Returns the geometries and a mask of the rows kept
    (rows with empty or missing geometry are dropped).
    """
    geom = gdf.geometry.to_crs("EPSG:3857").to_numpy()
    keep = ~(shapely.is_missing(geom) | shapely.is_empty(geom))
    if (~keep).any():
        log.warning("zone map: %d zone(s) without geometry are left out", int((~keep).sum()))
    g = geom[keep]
    tol = mercator_tolerance(max_zoom)
    polygonal = np.isin(shapely.get_type_id(g), (3, 6)).all()
    simplified = None
    if polygonal and len(g) > 1:
        try:
            if bool(shapely.coverage_is_valid(g)):
                simplified = shapely.coverage_simplify(g, tol)
        except (shapely.errors.GEOSException, AttributeError) as exc:  # old GEOS, odd input
            log.debug("coverage simplification unavailable (%s); simplifying per polygon", exc)
    if simplified is None:
        simplified = shapely.simplify(g, tol, preserve_topology=True)
    ll = gpd.GeoSeries(simplified, crs="EPSG:3857").to_crs("EPSG:4326").to_numpy()
    return ll, keep


def rounded_mapping(geom: Any) -> dict[str, Any]:
    """GeoJSON mapping of ``geom`` with coordinates rounded to :data:`COORD_DECIMALS`."""
    rounded = shapely.transform(geom, lambda c: np.round(c, COORD_DECIMALS))
    return shapely.geometry.mapping(rounded)


def feature_collection(geoms: list[dict[str, Any]], props: list[dict[str, Any]]
                       ) -> dict[str, Any]:
    """A GeoJSON feature collection; feature ``i`` has id ``i``."""
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "id": i, "properties": p, "geometry": g}
                         for i, (g, p) in enumerate(zip(geoms, props, strict=True))]}


def lonlat_features(gdf: gpd.GeoDataFrame, props: list[dict[str, Any]]
                    ) -> tuple[dict[str, Any], Bounds]:
    """A feature collection of ``gdf`` (simplified, lon/lat, rounded) and its bounds."""
    ll, keep = simplified_lonlat(gdf)
    kept = [p for p, k in zip(props, keep, strict=True) if k]
    geoms = [rounded_mapping(g) for g in ll]
    w, s, e, n = (float(x) for x in shapely.total_bounds(ll))
    return feature_collection(geoms, kept), (w, s, e, n)


def vector_layer(gdf: gpd.GeoDataFrame, name: str, style: Mapping[str, Any],
                 popup: Callable[[pd.Series, Mapping[str, str]], tuple[str, str]],
                 text: Mapping[str, str], *, pane: str, points: bool = False
                 ) -> tuple[folium.FeatureGroup, Bounds]:
    """One toggleable layer of ``gdf`` in one style, with a tooltip and a popup per feature.

    ``name`` is plain text (escaped here); ``pane`` is the Leaflet pane's name (see
    :meth:`Panes.name`). ``popup(row, text)`` gives the (escaped) tooltip and popup HTML. With
    ``points``, a small circle at a point inside each polygon is added, so tiny polygons stay
    visible.
    """
    props = []
    for _, row in gdf.iterrows():
        tip, html = popup(row, text)
        props.append({"tip": tip, "popup": html})
    fc, bounds = lonlat_features(gdf, props)
    group = folium.FeatureGroup(name=esc(name), show=True)
    st = dict(style)
    folium.GeoJson(
        fc, style_function=lambda _f: st, pane=pane, zoom_on_click=False,
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False,
                                  max_width=420),
    ).add_to(group)
    if points:
        pts = gdf.geometry.to_crs("EPSG:3857").to_numpy()
        pts = gpd.GeoSeries(shapely.point_on_surface(pts), crs="EPSG:3857").to_crs(4326)
        fc_pts = feature_collection([rounded_mapping(p) for p in pts.to_numpy()], props)
        folium.GeoJson(
            fc_pts, pane=pane, zoom_on_click=False,
            marker=folium.CircleMarker(radius=5, color=st["color"], weight=1.5,
                                       fill=True, fill_color=st["fillColor"], fill_opacity=0.95),
            tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
            popup=folium.GeoJsonPopup(fields=["popup"], labels=False, localize=False,
                                      max_width=420),
        ).add_to(group)
    return group, bounds


# --------------------------------------------------------------------------------------------
# popups


def cell_text(value: Any, missing: str) -> str:
    """Escaped display text of one table value (numbers formatted, NA as ``missing``)."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        value = None
    return esc(format_number(value, missing=missing))


def popup_table(caption: str, rows: Sequence[tuple[str, str]]) -> str:
    """Popup table: ``caption`` and the row values are escaped HTML, the labels plain text."""
    cells = "".join(f"<tr><th>{esc(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table class="sinkmap-popup"><caption>{caption}</caption>{cells}</table>'


__all__ = ["COORD_DECIMALS", "PAGE_CSS", "SIMPLIFY_ZOOM", "HtmlControl", "Panes", "build_page",
           "cell_text", "drawable", "feature_collection", "headline_css", "image_bounds",
           "lonlat_features", "open_run_folder", "popup_table", "read_layer", "read_summary",
           "rounded_mapping", "simplified_lonlat", "vector_layer"]
