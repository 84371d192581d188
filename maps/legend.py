"""Map legends as plain HTML/CSS Leaflet controls: no d3, no branca JavaScript, nothing to fetch.

* :func:`continuous_legend` draws a colour bar (a CSS ``linear-gradient``) with tick labels;
* :func:`categorical_legend` lists colour swatches with labels;
* :func:`plain_item`, :func:`swatch_item`, :func:`line_item` and :func:`dot_item` give one legend
  row each (a colour, a polygon, a line or a point style) for legends built by hand.

The two legends are a :class:`Legend`, a :class:`branca.element.MacroElement` to ``add_to(map)``; it
becomes an ``L.control`` whose content is fixed HTML. Every piece of text (title, labels) is
HTML-escaped here, so pass plain text; colours must be CSS colours (``#rgb``, ``#rrggbb``,
``#rrggbbaa``, ``rgb()/rgba()`` or a colour name) and anything else is refused, so nothing from
data can inject markup or styles. The legend style sheet is added to the page once, however many
legends it has.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
from branca.element import Element, Figure, MacroElement

from maps.render import esc, nice_ticks

POSITIONS = ("topleft", "topright", "bottomleft", "bottomright")
BAR_WIDTH_PX = 240

_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
                     r"|rgba?\(\s*[0-9.%]+\s*(?:,\s*[0-9.%]+\s*){2,3}\)"
                     r"|[a-zA-Z]{3,30}")

LEGEND_CSS = """<style>
  .sinkmap-legend {
    background: rgba(255, 255, 255, 0.92); padding: 6px 10px 4px; border-radius: 4px;
    box-shadow: 0 1px 4px rgba(0, 0, 0, 0.3); color: #222;
    font: 12px/1.4 "Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", sans-serif;
  }
  .sinkmap-legend-title { font-weight: bold; margin-bottom: 4px; max-width: 320px; }
  .sinkmap-legend-bar { height: 12px; border: 1px solid #888; box-sizing: border-box; }
  .sinkmap-legend-ticks { position: relative; height: 1.9em; }
  .sinkmap-legend-ticks span {
    position: absolute; top: 0; padding-top: 4px; white-space: nowrap;
    transform: translateX(-50%);
  }
  .sinkmap-legend-ticks span::before {
    content: ""; position: absolute; top: 0; left: 50%; height: 4px; border-left: 1px solid #555;
  }
  .sinkmap-legend-ticks span.sinkmap-first { transform: none; }
  .sinkmap-legend-ticks span.sinkmap-first::before { left: 0; }
  .sinkmap-legend-ticks span.sinkmap-last { transform: translateX(-100%); }
  .sinkmap-legend-ticks span.sinkmap-last::before { left: auto; right: 0; }
  .sinkmap-legend-items { max-height: 50vh; overflow-y: auto; }
  .sinkmap-legend-item { display: flex; align-items: center; gap: 6px; margin: 1px 0; }
  .sinkmap-legend-swatch {
    flex: none; width: 16px; height: 11px; border: 1px solid #888; box-sizing: border-box;
  }
  .sinkmap-legend-line { flex: none; width: 22px; height: 0; box-sizing: border-box; }
  .sinkmap-legend-dot {
    flex: none; width: 11px; height: 11px; margin: 0 5px 0 2px; border-radius: 50%;
    box-sizing: border-box;
  }
  .sinkmap-legend-section { margin-top: 6px; }
</style>"""


class Legend(MacroElement):
    """A Leaflet control showing a fixed, already escaped piece of legend HTML (``.html``)."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.control({position: {{ this.position|tojson }}});
        {{ this.get_name() }}.onAdd = function (map) {
            var div = L.DomUtil.create('div', 'sinkmap-legend');
            div.innerHTML = {{ this.html|tojson }};
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, html_text: str, *, position: str = "topright") -> None:
        super().__init__()
        if position not in POSITIONS:
            raise ValueError(f"legend position must be one of {', '.join(POSITIONS)}, "
                             f"got {position!r}")
        self._name = "Legend"
        self.html = html_text
        self.position = position

    def render(self, **kwargs: Any) -> None:
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.header.add_child(Element(LEGEND_CSS), name="sinkmap_legend_css")
        super().render(**kwargs)


def continuous_legend(title: str, colours: Sequence[str] | Sequence[tuple[float, str]] | Any,
                      vmin: float, vmax: float, ticks: Sequence[float] | None = None, *,
                      nodata: tuple[str, str] | None = None, position: str = "topright",
                      width: int = BAR_WIDTH_PX) -> Legend:
    """A colour-bar legend for values from ``vmin`` to ``vmax``.

    Parameters
    ----------
    title
        Plain text naming the quantity *with its units*, e.g. ``"碳密度 (t C/ha)"``.
    colours
        Evenly spaced colours from ``vmin`` to ``vmax`` (a list of CSS colours, or a
        :class:`maps.render.ColourRamp`), or ``(value, colour)`` stops in data units.
    ticks
        Values to label (those outside the range are dropped); by default
        :func:`maps.render.nice_ticks`. Labels get the fewest decimals that show every tick exactly,
        with thousands separators.
    nodata
        Optional ``(colour, label)`` swatch below the bar, e.g. for zones without a value.
    """
    lo, hi = float(vmin), float(vmax)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"legend range must be finite and increasing, got {vmin!r}..{vmax!r}")
    stops = _gradient_stops(getattr(colours, "stops", colours), lo, hi)
    gradient = ", ".join(f"{c} {p:.2f}%" for p, c in stops)
    values = [float(t) for t in (nice_ticks(lo, hi) if ticks is None else ticks)]
    values = [t for t in values if lo - 1e-9 * (hi - lo) <= t <= hi + 1e-9 * (hi - lo)]
    spans = []
    for pct, label in _fitting_ticks(values, lo, hi, width):
        cls = (' class="sinkmap-first"' if pct <= 0.5 else
               ' class="sinkmap-last"' if pct >= 99.5 else "")
        spans.append(f'<span{cls} style="left:{pct:.2f}%">{esc(label)}</span>')
    parts = [f'<div class="sinkmap-legend-title">{esc(str(title))}</div>',
             f'<div class="sinkmap-legend-bar" style="width:{int(width)}px;'
             f'background:linear-gradient(to right, {gradient})"></div>',
             f'<div class="sinkmap-legend-ticks" style="width:{int(width)}px">'
             f'{"".join(spans)}</div>']
    if nodata is not None:
        parts.append(plain_item(*nodata))
    return Legend("".join(parts), position=position)


def categorical_legend(title: str, items: Sequence[tuple[str, str]], *,
                       position: str = "topright") -> Legend:
    """A legend of colour swatches: ``items`` is ``[(colour, label), ...]`` in display order."""
    rows = "".join(plain_item(colour, label) for colour, label in items)
    return Legend(f'<div class="sinkmap-legend-title">{esc(str(title))}</div>'
                  f'<div class="sinkmap-legend-items">{rows}</div>', position=position)


def tick_labels(values: Sequence[float]) -> list[str]:
    """Labels for tick values: the fewest decimals (up to 6) that show every value exactly.

    ``[0, 50, 100, 140] -> ["0", "50", "100", "140"]``, ``[0, 2.5, 5] -> ["0.0", "2.5",
    "5.0"]``, ``[0, 12500] -> ["0", "12,500"]``.
    """
    vals = [float(v) for v in values]
    decimals = 6
    for d in range(7):
        if all(abs(v - round(v, d)) <= 1e-9 * max(1.0, abs(v)) for v in vals):
            decimals = d
            break
    return [f"{(0.0 if v == 0 else v):,.{decimals}f}" for v in vals]


def _fitting_ticks(values: list[float], lo: float, hi: float, width: int
                   ) -> list[tuple[float, str]]:
    """``(percent, label)`` of the ticks whose labels fit side by side under the bar.

    Labels are laid out as the style sheet does (centred; the first left-aligned and the last
    right-aligned at the ends) with an estimated 7 px per character. The end ticks stay; of the
    inner ones, every k-th is kept for the smallest k at which no labels touch (an inner tick
    too close to the last one is dropped).
    """
    char_px, gap_px = 7.0, 6.0
    ticks = []
    for t, label in zip(values, tick_labels(values), strict=True):
        pct = min(max((t - lo) / (hi - lo) * 100.0, 0.0), 100.0)
        x, w = pct / 100.0 * width, len(label) * char_px
        left = x if pct <= 0.5 else x - w if pct >= 99.5 else x - w / 2
        ticks.append((pct, label, left, left + w))

    def fits(a: tuple[float, str, float, float], b: tuple[float, str, float, float]) -> bool:
        return a[3] + gap_px <= b[2]

    if len(ticks) <= 2:
        chosen = ticks if len(ticks) < 2 or fits(*ticks) else ticks[:1]
    else:
        first, inner, last = ticks[0], ticks[1:-1], ticks[-1]
        chosen = [first, last] if fits(first, last) else [first]
        for k in range(1, len(inner) + 1):
            picked = inner[k - 1::k]
            while picked and not fits(picked[-1], last):
                picked = picked[:-1]
            candidate = [first, *picked, last]
            if all(fits(x, y) for x, y in itertools.pairwise(candidate)):
                chosen = candidate
                break
    return [(pct, label) for pct, label, _, _ in chosen]


def css_colour(colour: str) -> str:
    """``colour`` if it is a plain CSS colour (see the module notes), else ``ValueError``."""
    c = str(colour).strip()
    if not _COLOUR.fullmatch(c):
        raise ValueError(f"not a CSS colour: {colour!r} (use #rrggbb, rgb(...) or a name)")
    return c


def plain_item(colour: str, label: str) -> str:
    """A legend row: a plain colour swatch and ``label`` (plain text, escaped here)."""
    return (f'<div class="sinkmap-legend-item"><span class="sinkmap-legend-swatch" '
            f'style="background:{css_colour(colour)}"></span>'
            f"<span>{esc(str(label))}</span></div>")


def swatch_item(style: Mapping[str, Any], label: str) -> str:
    """A legend row for a polygon style (Leaflet path options): its fill and its border."""
    fill = css_colour(style.get("fillColor", style["color"]))
    border = "dashed" if style.get("dashArray") else "solid"
    return (f'<div class="sinkmap-legend-item"><span class="sinkmap-legend-swatch" '
            f'style="background:{fill};opacity:{min(1.0, style.get("fillOpacity", 1) + 0.3):.2f};'
            f'border:2px {border} {css_colour(style["color"])}"></span>'
            f"<span>{esc(label)}</span></div>")


def line_item(style: Mapping[str, Any], label: str) -> str:
    """A legend row for a line style: a short line of its colour, weight and dashing."""
    kind = "dashed" if style.get("dashArray") else "solid"
    width = max(1, round(float(style.get("weight", 2))))
    return (f'<div class="sinkmap-legend-item"><span class="sinkmap-legend-line" '
            f'style="border-top:{width}px {kind} {css_colour(style["color"])}"></span>'
            f"<span>{esc(label)}</span></div>")


def dot_item(style: Mapping[str, Any], label: str) -> str:
    """A legend row for a point style: a round dot of its fill and border colour."""
    return (f'<div class="sinkmap-legend-item"><span class="sinkmap-legend-dot" '
            f'style="background:{css_colour(style["fillColor"])};'
            f'border:1.5px solid {css_colour(style["color"])}"></span>'
            f"<span>{esc(label)}</span></div>")


def _gradient_stops(colours: Sequence[Any], lo: float, hi: float) -> list[tuple[float, str]]:
    items = list(colours)
    if not items:
        raise ValueError("a continuous legend needs at least one colour")
    if all(isinstance(c, str) for c in items):
        if len(items) == 1:
            return [(0.0, css_colour(items[0])), (100.0, css_colour(items[0]))]
        n = len(items) - 1
        return [(100.0 * i / n, css_colour(c)) for i, c in enumerate(items)]
    stops = []
    for item in items:
        value, colour = item
        pct = min(max((float(value) - lo) / (hi - lo) * 100.0, 0.0), 100.0)
        stops.append((pct, css_colour(colour)))
    stops.sort(key=lambda s: s[0])
    return stops
