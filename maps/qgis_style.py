"""QGIS layer styles (``.qml``) written beside sinkmap's outputs, so they open styled in QGIS.

QGIS loads ``name.qml`` automatically when it opens ``name.tif`` or ``name.gpkg`` from the same
folder (its "default style"), so :func:`write_qml` names the file after the data file's stem.

* :func:`raster_qml`: single-band pseudocolour renderer (``singlebandpseudocolor``) with one
  colour-ramp item per stop of a continuous or diverging :class:`maps.styles.Style`, linear
  interpolation, nodata transparent;
* :func:`categorical_raster_qml`: paletted renderer (``paletted``), one palette entry per class
  (code, colour, label), e.g. the 三调 land-use classes;
* :func:`vector_qml`: graduated-symbol renderer (``graduatedSymbol``) for a choropleth of a numeric
  column, with optional labels; :func:`categorical_vector_qml`: categorised renderer.

The XML follows QGIS 3 project/style files (``<!DOCTYPE qgis ...>``, ``<qgis version=...>``):
colours are ``#rrggbb`` in colour-ramp and palette items and ``r,g,b,a`` in symbol-layer
properties, which every QGIS 3 release reads. Symbol-layer properties are written both as
``<Option>`` maps (QGIS >= 3.26) and as ``<prop>`` pairs (older 3.x).
"""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from gis.atomic import atomic_path
from gis.errors import SinkmapError
from maps.styles import Style, tick_labels

QGIS_VERSION = "3.28.0-Firenze"  # the LTR the files were modelled on; QGIS 3.x reads them
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"


# --------------------------------------------------------------------------------------------
# public API


def raster_qml(style: Style, vmin: float, vmax: float, units: str = "", *,
               nodata: float | None = None, band: int = 1, opacity: float = 1.0) -> str:
    """A pseudocolour raster style: ``style``'s ramp stops spread over ``[vmin, vmax]``.

    One ``<item>`` per ramp stop (:meth:`Style.stop_values`: evenly spaced, or pinned to zero in
    the middle for a diverging style), interpolated linearly; values outside the range take the
    end colours (``clip="0"``). ``units`` (human text, e.g. ``"t C/ha"``) goes into the labels
    of the end items and the legend suffix. Nodata is transparent: QGIS leaves the file's nodata
    value undrawn (``nodataColor=""``); ``nodata`` adds it as an explicit transparent value too.
    """
    if style.ramp is None or style.categorical:
        raise SinkmapError(f"style {style.name!r} is categorical",
                           fix="use categorical_raster_qml(...) for class rasters")
    vmin, vmax = _check_range(vmin, vmax)
    stops = style.stop_values(vmin, vmax)
    colours = list(style.ramp.stops)
    suffix = f" {units}" if units else ""
    root, pipe = _root_and_pipe()
    rr = ET.SubElement(pipe, "rasterrenderer", {
        "type": "singlebandpseudocolor", "band": str(band), "opacity": _num(opacity),
        "alphaBand": "-1", "nodataColor": "", "classificationMin": _num(vmin),
        "classificationMax": _num(vmax)})
    _transparency(rr, nodata)
    _minmax_origin(rr)
    shader = ET.SubElement(ET.SubElement(rr, "rastershader"), "colorrampshader", {
        "colorRampType": "INTERPOLATED", "classificationMode": "1", "clip": "0",
        "minimumValue": _num(vmin), "maximumValue": _num(vmax), "labelPrecision": "4"})
    _gradient_ramp(shader, colours, name="[source]")
    texts = tick_labels(stops)
    for i, (value, colour) in enumerate(zip(stops, colours, strict=True)):
        label = texts[i]
        if i in (0, len(stops) - 1):
            label += suffix
        ET.SubElement(shader, "item", {"value": _num(value), "color": colour.lower(),
                                       "label": label, "alpha": "255"})
    ET.SubElement(shader, "rampLegendSettings", {
        "minimumLabel": "", "maximumLabel": "", "prefix": "", "suffix": suffix,
        "direction": "0", "useContinuousLegend": "1", "orientation": "2"})
    _pipe_tail(pipe)
    ET.SubElement(root, "blendMode").text = "0"
    return _serialise(root)


def categorical_raster_qml(classes: Sequence[tuple[int, str, str]], *, nodata: float | None = None,
                           band: int = 1, opacity: float = 1.0) -> str:
    """A paletted raster style: one ``<paletteEntry>`` per ``(code, "#rrggbb", label)``.

    Codes not listed stay undrawn (QGIS draws only palette values); nodata is transparent.
    """
    if not classes:
        raise SinkmapError("a paletted style needs at least one class")
    root, pipe = _root_and_pipe()
    rr = ET.SubElement(pipe, "rasterrenderer", {
        "type": "paletted", "band": str(band), "opacity": _num(opacity), "alphaBand": "-1",
        "nodataColor": ""})
    _transparency(rr, nodata)
    _minmax_origin(rr)
    palette = ET.SubElement(rr, "colorPalette")
    seen: set[int] = set()
    for code, colour, label in classes:
        if int(code) in seen:
            raise SinkmapError(f"class code {code} is listed twice")
        seen.add(int(code))
        ET.SubElement(palette, "paletteEntry", {"value": str(int(code)),
                                                "color": _hex(colour), "label": str(label),
                                                "alpha": "255"})
    _pipe_tail(pipe)
    ET.SubElement(root, "blendMode").text = "0"
    return _serialise(root)


def style_classes(style: Style, *, lang: str = "zh", codes: Sequence[int] | None = None
                  ) -> list[tuple[int, str, str]]:
    """``(code, colour, label)`` of a categorical style, for :func:`categorical_raster_qml`;
    ``codes`` restricts it to the classes present (unknown codes get the fallback colour)."""
    if not style.categorical:
        raise SinkmapError(f"style {style.name!r} is not categorical")
    chosen = ([style.class_for(c) for c in codes] if codes is not None
              else list(style.classes))
    return [(c.code, c.colour, c.label(lang)) for c in chosen]


def vector_qml(column: str, breaks: Sequence[float], colours: Sequence[str], *,
               labels: Sequence[str] | None = None, units: str = "",
               label_column: str | None = None, outline_colour: str = "#4d4d4d",
               outline_width_mm: float = 0.26, font_family: str = "Noto Sans CJK SC") -> str:
    """A graduated-symbol (choropleth) style for the numeric ``column`` of a polygon layer.

    ``breaks`` are the ``n + 1`` class bounds (increasing) and ``colours`` the ``n`` fill colours
    (e.g. :func:`maps.styles.graduated_breaks` and :func:`maps.styles.class_colours`); labels
    default to ``"lower - upper units"``. ``label_column`` adds simple labels (e.g. township
    names) in ``font_family`` with a white buffer.
    """
    b = [float(x) for x in breaks]
    if len(b) < 2 or any(not math.isfinite(x) for x in b) or any(
            hi <= lo for lo, hi in itertools.pairwise(b)):
        raise SinkmapError(f"class breaks must be at least two increasing finite numbers, got "
                           f"{list(breaks)!r}")
    if len(colours) != len(b) - 1:
        raise SinkmapError(f"{len(b) - 1} classes need {len(b) - 1} colours, got {len(colours)}")
    if labels is not None and len(labels) != len(colours):
        raise SinkmapError(f"{len(colours)} classes need {len(colours)} labels, got {len(labels)}")
    suffix = f" {units}" if units else ""
    root = _vector_root()
    renderer = ET.SubElement(root, "renderer-v2", {
        "type": "graduatedSymbol", "attr": column, "graduatedMethod": "GraduatedColor",
        "symbollevels": "0", "forceraster": "0", "enableorderby": "0", "referencescale": "-1"})
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    texts = tick_labels(b)
    for i, colour in enumerate(colours):
        lo, hi = b[i], b[i + 1]
        label = labels[i] if labels is not None else f"{texts[i]} - {texts[i + 1]}{suffix}"
        ET.SubElement(ranges, "range", {"lower": _num(lo), "upper": _num(hi), "symbol": str(i),
                                        "label": label, "render": "true"})
        _fill_symbol(symbols, str(i), colour, outline_colour, outline_width_mm)
    source = ET.SubElement(renderer, "source-symbol")
    _fill_symbol(source, "0", colours[0], outline_colour, outline_width_mm)
    _gradient_ramp(renderer, list(colours), name="[source]")
    ET.SubElement(renderer, "classificationMethod", {"id": "EqualInterval"})
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    _vector_tail(root, label_column, font_family)
    return _serialise(root)


def categorical_vector_qml(column: str, classes: Sequence[tuple[object, str, str]], *,
                           label_column: str | None = None, outline_colour: str = "#4d4d4d",
                           outline_width_mm: float = 0.26,
                           font_family: str = "Noto Sans CJK SC") -> str:
    """A categorised style: one ``(value, "#rrggbb", label)`` category per class of ``column``."""
    if not classes:
        raise SinkmapError("a categorised style needs at least one class")
    root = _vector_root()
    renderer = ET.SubElement(root, "renderer-v2", {
        "type": "categorizedSymbol", "attr": column, "symbollevels": "0", "forceraster": "0",
        "enableorderby": "0", "referencescale": "-1"})
    cats = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (value, colour, label) in enumerate(classes):
        ET.SubElement(cats, "category", {"value": str(value), "symbol": str(i),
                                         "label": str(label), "render": "true"})
        _fill_symbol(symbols, str(i), colour, outline_colour, outline_width_mm)
    source = ET.SubElement(renderer, "source-symbol")
    _fill_symbol(source, "0", classes[0][1], outline_colour, outline_width_mm)
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    _vector_tail(root, label_column, font_family)
    return _serialise(root)


def qml_path(data_path: str | Path) -> Path:
    """Where QGIS looks for the default style of ``data_path``: same folder and stem, ``.qml``."""
    p = Path(data_path)
    return p.with_name(p.stem + ".qml")


def write_qml(data_path: str | Path, qml: str, *, overwrite: bool = False) -> Path:
    """Write ``qml`` as ``<stem>.qml`` beside the data file, atomically; return its path.

    An existing style file is refused (:class:`gis.errors.OutputExistsError`) unless
    ``overwrite``. The text is checked to be well-formed XML first.
    """
    try:
        ET.fromstring(qml)
    except ET.ParseError as exc:
        raise SinkmapError(f"not a well-formed QML document ({exc})") from exc
    target = qml_path(data_path)
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_text(qml, encoding="utf-8")
    return target


# --------------------------------------------------------------------------------------------
# helpers


def _check_range(vmin: float, vmax: float) -> tuple[float, float]:
    lo, hi = float(vmin), float(vmax)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise SinkmapError(f"colour range must be two finite increasing numbers, got "
                           f"({vmin!r}, {vmax!r})")
    return lo, hi


def _num(x: float) -> str:
    """Shortest round-trip text of a number (``50``, ``12.5``, ``-0.25``)."""
    v = float(x)
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)


def _hex(colour: str) -> str:
    c = colour.strip().lower()
    if len(c) != 7 or not c.startswith("#") or any(ch not in "0123456789abcdef" for ch in c[1:]):
        raise SinkmapError(f"colour {colour!r} is not #rrggbb")
    return c


def _rgba(colour: str, alpha: int = 255) -> str:
    c = _hex(colour)
    return f"{int(c[1:3], 16)},{int(c[3:5], 16)},{int(c[5:7], 16)},{alpha}"


def _root_and_pipe() -> tuple[ET.Element, ET.Element]:
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "AllStyleCategories",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08",
                               "maxScale": "0"})
    pipe = ET.SubElement(root, "pipe")
    return root, pipe


def _transparency(rr: ET.Element, nodata: float | None) -> None:
    tr = ET.SubElement(rr, "rasterTransparency")
    if nodata is not None and math.isfinite(float(nodata)):
        lst = ET.SubElement(tr, "singleValuePixelList")
        ET.SubElement(lst, "pixelListEntry", {"min": _num(nodata), "max": _num(nodata),
                                              "percentTransparent": "100"})


def _minmax_origin(rr: ET.Element) -> None:
    mmo = ET.SubElement(rr, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"),
                      ("statAccuracy", "Estimated"), ("cumulativeCutLower", "0.02"),
                      ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):
        ET.SubElement(mmo, tag).text = text


def _gradient_ramp(parent: ET.Element, colours: Sequence[str], *, name: str) -> None:
    """A ``gradient`` colour ramp (QGIS's ``[source]`` ramp, used when the user reclassifies)."""
    ramp = ET.SubElement(parent, "colorramp", {"type": "gradient", "name": name})
    n = len(colours)
    inner = ";".join(f"{i / (n - 1):.4f};{_rgba(colours[i])}" for i in range(1, n - 1))
    props = {"color1": _rgba(colours[0]), "color2": _rgba(colours[-1]), "discrete": "0",
             "rampType": "gradient", "stops": inner}
    opt = ET.SubElement(ramp, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(opt, "Option", {"type": "QString", "name": k, "value": v})
    for k, v in props.items():
        ET.SubElement(ramp, "prop", {"k": k, "v": v})


def _pipe_tail(pipe: ET.Element) -> None:
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0",
                                               "gamma": "1"})
    ET.SubElement(pipe, "huesaturation", {"saturation": "0", "colorizeOn": "0",
                                          "colorizeRed": "255", "colorizeGreen": "128",
                                          "colorizeBlue": "128", "colorizeStrength": "100",
                                          "grayscaleMode": "0", "invertColors": "0"})
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})


def _vector_root() -> ET.Element:
    return ET.Element("qgis", {"version": QGIS_VERSION,
                               "styleCategories": "Symbology|Labeling",
                               "hasScaleBasedVisibilityFlag": "0", "minScale": "1e+08",
                               "maxScale": "0"})


def _fill_symbol(parent: ET.Element, name: str, colour: str, outline: str,
                 outline_width_mm: float) -> None:
    sym = ET.SubElement(parent, "symbol", {"type": "fill", "name": name, "alpha": "1",
                                           "clip_to_extent": "1", "force_rhr": "0"})
    layer = ET.SubElement(sym, "layer", {"class": "SimpleFill", "pass": "0", "locked": "0",
                                         "enabled": "1"})
    props = {"color": _rgba(colour), "style": "solid", "outline_color": _rgba(outline),
             "outline_style": "solid", "outline_width": _num(outline_width_mm),
             "outline_width_unit": "MM", "joinstyle": "bevel", "offset": "0,0",
             "offset_unit": "MM"}
    opt = ET.SubElement(layer, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(opt, "Option", {"type": "QString", "name": k, "value": v})
    for k, v in props.items():
        ET.SubElement(layer, "prop", {"k": k, "v": v})


def _vector_tail(root: ET.Element, label_column: str | None, font_family: str) -> None:
    if label_column:
        lab = ET.SubElement(root, "labeling", {"type": "simple"})
        settings = ET.SubElement(lab, "settings", {"calloutType": "simple"})
        style = ET.SubElement(settings, "text-style", {
            "fieldName": label_column, "isExpression": "0", "fontFamily": font_family,
            "fontSize": "9", "fontSizeUnit": "Point", "textColor": "0,0,0,255",
            "fontWeight": "50", "namedStyle": "Regular", "textOpacity": "1"})
        ET.SubElement(style, "text-buffer", {"bufferDraw": "1", "bufferSize": "0.8",
                                             "bufferSizeUnits": "MM",
                                             "bufferColor": "255,255,255,255",
                                             "bufferOpacity": "0.85"})
        ET.SubElement(settings, "placement", {"placement": "1", "fitInPolygonOnly": "0",
                                              "centroidInside": "1"})
        ET.SubElement(settings, "rendering", {"obstacle": "1", "displayAll": "0"})
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"


def _serialise(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"
