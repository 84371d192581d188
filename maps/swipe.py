"""A swipe control: two image overlays, the second clipped at a draggable divider (own code)."""

from __future__ import annotations

import folium
from branca.element import MacroElement
from jinja2 import Template


class Swipe(MacroElement):
    """Reveal ``right`` (an ImageOverlay) to the right of a vertical divider over ``left``."""

    _template = Template("""
{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }}, right = {{ this.right.get_name() }};
  var ctl = L.control({position: 'bottomleft'});
  ctl.onAdd = function () {
    var d = L.DomUtil.create('div', 'sinkmap-swipe');
    d.innerHTML = '<input type="range" min="0" max="1000" value="500" style="width:240px">' +
      '<div style="font:12px sans-serif">{{ this.left_label|e }} &#8596; ' +
      '{{ this.right_label|e }}</div>';
    L.DomEvent.disableClickPropagation(d);
    return d;
  };
  ctl.addTo(map);
  var slider = ctl.getContainer().querySelector('input');
  function clip() {
    var img = right.getElement();
    if (!img) { return; }
    var size = map.getSize();
    var x = size.x * slider.value / 1000;
    var divider = map.containerPointToLayerPoint([x, 0]).x;
    var nw = map.latLngToLayerPoint(right.getBounds().getNorthWest()).x;
    var se = map.latLngToLayerPoint(right.getBounds().getSouthEast()).x;
    var frac = Math.max(0, Math.min(1, (divider - nw) / Math.max(1, se - nw)));
    img.style.clipPath = 'inset(0 0 0 ' + (frac * 100) + '%)';
  }
  slider.addEventListener('input', clip);
  map.on('move zoomend resize', clip);
  map.whenReady(clip);
})();
{% endmacro %}
""")

    def __init__(self, right: folium.raster_layers.ImageOverlay, *, left_label: str,
                 right_label: str) -> None:
        super().__init__()
        self._name = "Swipe"
        self.right = right
        self.left_label = left_label
        self.right_label = right_label
