"""Self-contained Folium pages: every library inlined from the npm assets, nothing fetched.

sinkmap's maps are opened on intranets without internet, so a page must not make a single
network request when it is opened. Folium's default page links Leaflet, jQuery, Bootstrap 5,
Bootstrap 3 glyphicons, Font Awesome and Leaflet.awesome-markers from public CDNs; elements and
plugins add their own links while the page renders (``JSCSSMixin.default_js/default_css``), and
branca colormap legends add d3. :func:`offline_html` renders a map and, before the page is
assembled, replaces every one of those links:

* Leaflet's JS and CSS are inlined from the npm package pinned in
  ``maps/assets/package-lock.json`` (installed by ``scripts/setup`` into :func:`asset_root`);
  the images Leaflet's CSS points at are inlined as ``data:`` URIs, and ``L.Icon.Default`` is
  pointed at ``data:`` URIs too, so default markers need no image files;
* the rest of folium.Map's defaults (jQuery, Bootstrap, glyphicons, Font Awesome,
  awesome-markers) are dropped: sinkmap's maps do not use them. The only jQuery calls folium's
  own templates make, ``$(html)[0]`` in :class:`folium.Popup` and ``$(document).ready`` in
  ``Map.keep_in_front``, get a small stand-in when a page has such an element;
* anything else that would need a CDN is an error naming the element and the library, never a
  page that stays blank offline: :class:`folium.Icon` (awesome-markers + icon fonts: use
  :class:`folium.CircleMarker`, a plain :class:`folium.Marker` or :class:`folium.DivIcon`),
  ``GeoJson(embed=False)``, branca colormaps (use :mod:`maps.legend`), tile layers not added
  with :func:`add_basemap`, and plugins whose library is not among the assets (e.g.
  ``DualMap``'s Leaflet.Sync: no sinkmap map needs it yet).

The finished page is checked with :func:`external_references`; the only references allowed are
the tile URL templates of basemaps added on purpose with :func:`add_basemap` (the default is no
basemap). The check also reads HTML inside script strings, which Leaflet inserts as HTML: an
unescaped ``<img src=...>`` in a tooltip is refused like a ``<script src>`` (and is an XSS).

To add a library, pin it in ``maps/assets/package.json``, regenerate the lock file
(``npm install --package-lock-only``), add it to :data:`PINNED` and :data:`INLINE`, and rerun
``bash scripts/setup``.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
import os
import re
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import folium
import folium.features
import folium.map
import folium.raster_layers
from branca.element import CssLink, Element, Figure, JavascriptLink

from gis.errors import InputError, SinkmapError

ASSETS_ENV = "SINKMAP_ASSETS"
TIANDITU_ENV = "TIANDITU_KEY"
SETUP_FIX = "bash scripts/setup"

PINNED: dict[str, str] = {"leaflet": "1.9.4"}
"""npm packages and exact versions, as in ``maps/assets/package.json`` (a test keeps them equal)."""


@dataclass(frozen=True)
class Asset:
    """One file of an npm package to inline: ``node_modules/<package>/<path>``."""

    package: str
    path: str
    kind: Literal["js", "css"]


INLINE: dict[str, Asset] = {
    "leaflet_css": Asset("leaflet", "dist/leaflet.css", "css"),
    "leaflet": Asset("leaflet", "dist/leaflet.js", "js"),
}
"""Folium's names for the resources it links (``default_js``/``default_css``) -> local files."""

MAP_EXTRAS = frozenset({"jquery", "bootstrap", "awesome_markers", "bootstrap_css",
                        "glyphicons_css", "awesome_markers_font_css", "awesome_markers_css",
                        "awesome_rotate_css"})
"""folium.Map's default links that sinkmap's pages do without (dropped)."""

_HINTS: dict[str, str] = {
    "d3": "branca colormap legends draw with d3: use maps.legend.continuous_legend",
    "jquery": "jQuery is not among the map assets",
    "awesome_markers": "folium.Icon needs Leaflet.awesome-markers and icon fonts: use "
                       "folium.CircleMarker, a plain folium.Marker or folium.DivIcon",
}

# folium.Popup's `$(`<div>...</div>`)[0]` and Map.keep_in_front's `$(document).ready(f)`.
_JQUERY_STAND_IN = """<script>
/* sinkmap: stand-in for the only jQuery calls folium's templates make, $(html)[0] and
   $(document).ready(fn); jQuery itself is not loaded (offline page). */
var $ = window.$ || function (arg) {
  if (arg === document) {
    return {ready: function (fn) {
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
      else fn();
    }};
  }
  var t = document.createElement("template");
  t.innerHTML = String(arg).trim();
  return Array.prototype.slice.call(t.content.childNodes);
};
</script>"""

_NO_FAVICON = '<link rel="icon" href="data:,">'  # no automatic /favicon.ico request


# --------------------------------------------------------------------------------------------
# assets


def asset_root() -> Path:
    """The folder holding ``node_modules`` with the map libraries.

    ``$SINKMAP_ASSETS`` when set, else ``<sys.prefix>/share/sinkmap/assets``, which is where
    ``scripts/setup`` installs them for ``.venv``.
    """
    env = os.environ.get(ASSETS_ENV)
    if env:
        return Path(env).expanduser()
    return Path(sys.prefix) / "share" / "sinkmap" / "assets"


def check_assets(root: Path | None = None) -> Path:
    """Check every pinned package is installed under ``root`` at its pinned version.

    Returns the asset folder; raises :class:`gis.errors.InputError` naming the folder, the
    missing or mismatched packages and the fix.
    """
    root = asset_root() if root is None else Path(root)
    problems = []
    for package, version in PINNED.items():
        manifest = root / "node_modules" / package / "package.json"
        try:
            found = json.loads(manifest.read_text(encoding="utf-8")).get("version")
        except FileNotFoundError:
            problems.append(f"{package} {version} is not installed")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"{package}: cannot read {manifest.name} ({exc})")
            continue
        if found != version:
            problems.append(f"{package} is {found}, the maps need {version}")
    if problems:
        raise InputError(
            f"map libraries missing or wrong: {'; '.join(problems)}", source=root,
            fix=f"run `{SETUP_FIX}` (it installs them with npm ci from "
                f"maps/assets/package-lock.json), or point ${ASSETS_ENV} at a folder where "
                f"`npm ci` was run with that lock file")
    return root


def asset_text(asset: Asset, root: Path | None = None) -> str:
    """The file's text ready to sit inside ``<script>``/``<style>``.

    Source-map comments are removed, ``</script``/``</style`` are escaped, and in CSS every
    relative ``url(...)`` becomes a ``data:`` URI of the file it names.
    """
    path = (asset_root() if root is None else Path(root)) / "node_modules" / asset.package \
        / asset.path
    try:
        stat = path.stat()
    except OSError:
        raise InputError("map library file is missing", source=path,
                         fix=f"run `{SETUP_FIX}`") from None
    return _prepared_text(str(path), asset.kind, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _prepared_text(path_str: str, kind: str, _mtime: int, _size: int) -> str:
    path = Path(path_str)
    text = path.read_text(encoding="utf-8")
    if kind == "js":
        text = re.sub(r"^\s*//[#@] sourceMappingURL=.*$", "", text, flags=re.MULTILINE)
        return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)
    text = re.sub(r"/\*[#@] sourceMappingURL=.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"""url\(\s*(['"]?)(.*?)\1\s*\)""",
                  lambda m: _css_url(m.group(0), m.group(2), path.parent), text)
    return re.sub(r"</(style)", r"<\\/\1", text, flags=re.IGNORECASE)


def _css_url(whole: str, ref: str, base: Path) -> str:
    if _is_internal(ref):
        return whole
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//", ref):
        raise InputError(f"style sheet refers to {ref}, which would be fetched from the network",
                         source=base, fix="pin a package whose CSS has no remote references")
    target = base / urllib.parse.unquote(ref.split("?")[0].split("#")[0])
    try:
        data = target.read_bytes()
    except OSError:
        raise InputError(f"file {ref!r} named by a style sheet is missing", source=base,
                         fix=f"run `{SETUP_FIX}`") from None
    mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return f'url("{data_uri(data, mime)}")'


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _leaflet_icon_script(root: Path) -> str:
    """Point ``L.Icon.Default`` at ``data:`` URIs (Leaflet would derive an image folder)."""
    images = root / "node_modules" / "leaflet" / "dist" / "images"
    try:
        uris = {key: data_uri((images / name).read_bytes(), "image/png")
                for key, name in (("iconUrl", "marker-icon.png"),
                                  ("iconRetinaUrl", "marker-icon-2x.png"),
                                  ("shadowUrl", "marker-shadow.png"))}
    except OSError:
        raise InputError("Leaflet's marker images are missing", source=images,
                         fix=f"run `{SETUP_FIX}`") from None
    return ("<script>L.Icon.Default.imagePath = '';"
            f"L.Icon.Default.mergeOptions({json.dumps(uris)});</script>")


# --------------------------------------------------------------------------------------------
# offline pages


def offline_html(m: Element) -> str:
    """Render ``m`` (a :class:`folium.Map`, or any element of a branca Figure) as one
    self-contained HTML page: libraries inlined, CDN links removed, nothing fetched on opening.

    Raises :class:`gis.errors.InputError` when the map assets are missing (see
    :func:`check_assets`) and :class:`gis.errors.SinkmapError` when the map holds something that
    would still need the network (named, with what to use instead).
    """
    root = check_assets()
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise SinkmapError(f"{type(m).__name__} is not part of a page (no branca Figure root)",
                           fix="build the map with folium.Map(...) and pass it")
    elements = list(_walk(figure))
    requested = _requests(elements)
    blockers = _blockers(elements)
    needs_jquery = any(isinstance(e, folium.map.Popup) for e in elements) or any(
        getattr(e, "objects_to_stay_in_front", None) for e in elements)

    # As Figure.render: render the children (which adds the links to the header) ...
    for child in list(figure._children.values()):
        child.render()
    header = figure.header
    rendered = dict(header._children)
    inline: dict[str, Element] = {"sinkmap_no_favicon": Element(_NO_FAVICON)}
    kept: dict[str, Element] = {}
    for name, child in rendered.items():
        if not isinstance(child, JavascriptLink | CssLink):
            kept[name] = child
            continue
        if name in INLINE:
            continue  # placed below, in a fixed order
        who = requested.get(name, set())
        if name in MAP_EXTRAS and who <= {"Map"}:
            continue
        by = ", ".join(sorted(who)) or "an element added while rendering"
        hint = _HINTS.get(name, "it is not among the map assets (maps/assets/package.json)")
        blockers.append(f"{by} links {name!r} from {child.url} ({hint})")
    if blockers:
        raise SinkmapError("the map would need the internet: " + "; ".join(blockers),
                           fix="use elements whose libraries are inlined (see maps.offline)")
    names = [n for n in INLINE if n in rendered]
    for name in names:
        if INLINE[name].kind == "css":
            inline[name] = Element(f"<style>\n{asset_text(INLINE[name], root)}\n</style>")
    for name in names:
        if INLINE[name].kind == "js":
            inline[name] = Element(f"<script>\n{asset_text(INLINE[name], root)}\n</script>")
            if name == "leaflet":
                inline["sinkmap_leaflet_icons"] = Element(_leaflet_icon_script(root))
    if needs_jquery:
        inline["sinkmap_jquery_stand_in"] = Element(_JQUERY_STAND_IN)

    # ... then assemble the page with the libraries first (before any page style or script).
    items = list(kept.items())
    lead = items[:1] if items and items[0][0] == "meta_http" else []
    order = [*lead, *inline.items(), *items[len(lead):]]
    header._children = type(header._children)(order)
    try:
        page = figure._template.render(this=figure, kwargs={})
    finally:
        header._children = type(header._children)(rendered)

    allowed = {getattr(e, "tiles", None) for e in elements if getattr(e, "_sinkmap_basemap", False)}
    remote = [r for r in external_references(page) if r not in allowed]
    if remote:
        raise SinkmapError(
            f"the page still refers to {len(remote)} outside resource(s): "
            + ", ".join(r[:120] for r in remote[:5]),
            fix="escape text that Leaflet shows as HTML (tooltips, popups: html.escape), embed "
                "images and data (data: URIs, GeoJSON inline), create maps with "
                "folium.Map(tiles=None) and add basemaps only with maps.offline.add_basemap")
    return page


def _walk(element: Element) -> Iterator[Element]:
    yield element
    if isinstance(element, Figure):
        for part in (element.header, element.html, element.script):
            yield from _walk(part)
    for child in list(element._children.values()):
        yield from _walk(child)


def _requests(elements: list[Element]) -> dict[str, set[str]]:
    """Resource name -> the element classes that link it (``default_js``/``default_css``)."""
    out: dict[str, set[str]] = {}
    for e in elements:
        for name, _url in [*getattr(e, "default_js", []), *getattr(e, "default_css", [])]:
            out.setdefault(name, set()).add(type(e).__name__)
    return out


def _blockers(elements: list[Element]) -> list[str]:
    """Elements whose JavaScript needs a library that is not inlined (in words)."""
    out = []
    for e in elements:
        if type(e) is folium.map.Icon:
            out.append(f"folium.Icon ({_HINTS['awesome_markers']})")
        elif isinstance(e, folium.features.GeoJson) and not getattr(e, "embed", True):
            out.append("GeoJson(embed=False) loads its data from a URL with jQuery "
                       "(embed the data)")
        elif isinstance(e, folium.raster_layers.TileLayer) and not getattr(
                e, "_sinkmap_basemap", False):
            out.append(f"tile layer {e.tiles!r} was not added with maps.offline.add_basemap "
                       "(create the map with folium.Map(tiles=None))")
    return out


# --------------------------------------------------------------------------------------------
# the checker


_ATTR_REFS = re.compile(
    r"""<(?:script|img|iframe|frame|embed|source|audio|video|track|input)\b[^>]*?\bsrc\s*=\s*
        (?:"([^"]*)"|'([^']*)'|([^\s"'>]+))
      | <link\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))
      | <object\b[^>]*?\bdata\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))
      | <(?:image|use|feImage)\b[^>]*?\b(?:xlink:)?href\s*=\s*(?:"([^"]*)"|'([^']*)')
      | \b(?:poster|background)\s*=\s*(?:"([^"]*)"|'([^']*)')
    """, re.IGNORECASE | re.VERBOSE)
_SRCSET = re.compile(r"""\bsrcset\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_CSS_URL = re.compile(r"""(?<![\w$.-])url\(\s*(?:"([^"]*)"|'([^']*)'|([^)'"]*?))\s*\)""",
                      re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_JS_REFS = re.compile(  # Leaflet layers and icons that load a URL given in the script
    r"""(?:L\.(?:tileLayer(?:\.wms)?|imageOverlay|videoOverlay)\(\s*
         |"(?:iconUrl|iconRetinaUrl|shadowUrl)"\s*:\s*)  # as folium writes options
        (?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""", re.VERBOSE)


def external_references(page: str) -> list[str]:
    """Everything in ``page`` that a browser would fetch from outside the file when opening it.

    Looks at ``src``/``href``/``data``/``srcset``/``poster`` of the tags that load resources
    (``<script src>``, ``<link href>``, ``<img>``, ``<iframe>``, ...), CSS ``url(...)`` and
    ``@import``, and the URLs Leaflet loads from the script (``L.tileLayer("...")`` tile
    templates, ``L.imageOverlay``/``L.videoOverlay`` sources, icon URLs); also inside JavaScript
    strings (``\\uXXXX``, ``\\"`` and ``\\/`` escapes undone), since Leaflet inserts popups and
    controls as HTML. ``data:``, ``blob:``, ``about:`` and ``#fragment`` references stay inside
    the file and are not reported; a link a user may click (``<a href>``) is not a fetch.
    Returns the references in order of first appearance, without repeats.
    """
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    text = text.replace('\\"', '"').replace("\\'", "'").replace("\\/", "/")
    found: dict[str, None] = {}
    for pattern in (_ATTR_REFS, _CSS_URL, _CSS_IMPORT, _JS_REFS):
        for match in pattern.finditer(text):
            ref = next((g for g in match.groups() if g is not None), "").strip()
            if not _is_internal(ref):
                found.setdefault(ref, None)
    for match in _SRCSET.finditer(text):  # "url [descriptor], url [descriptor], ..."
        for candidate in re.finditer(r"[\s,]*(\S+)[^,]*", match.group(1) or match.group(2) or ""):
            ref = candidate.group(1).rstrip(",")
            if not _is_internal(ref):
                found.setdefault(ref, None)
    return list(found)


def _is_internal(ref: str) -> bool:
    r = ref.strip().lower()
    return r == "" or r.startswith(("data:", "blob:", "about:", "#"))


# --------------------------------------------------------------------------------------------
# basemaps

OSM_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = ('&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                   "contributors")
TIANDITU_URL = "https://t{s}.tianditu.gov.cn/DataServer?T={layer}_w&x={x}&y={y}&l={z}&tk={key}"
TIANDITU_ATTRIBUTION = ('&copy; <a href="https://www.tianditu.gov.cn/">天地图</a> '
                        "国家地理信息公共服务平台")


def add_basemap(m: folium.Map, kind: Literal["none", "osm", "tianditu", "xyz"] = "none", *,
                url: str | None = None, tianditu_key: str | None = None,
                attribution: str | None = None, name: str | None = None
                ) -> list[folium.raster_layers.TileLayer]:
    """Add a tile basemap to ``m``: the only network requests a sinkmap page may make.

    ``"none"`` (the default) adds nothing: the page stays fully offline. The others request
    tiles from a server whenever the map is viewed, so ask for them only where that server is
    reachable:

    * ``"osm"``: OpenStreetMap's standard tiles (EPSG:3857, WGS 84 coordinates);
    * ``"tianditu"``: 天地图 vector map with its label layer (two tile layers). The key
      (``tianditu_key=`` or ``$TIANDITU_KEY``) is a *browser* key and is written into the page;
      restrict it to your domain/IP range in the Tianditu console. Tianditu tiles are in
      CGCS2000, which equals WGS 84 to within centimetres to decimetres at map scales, so
      sinkmap's layers sit on them without any shift. Unlike AMap/Gaode or Tencent tiles, which
      are in GCJ-02 and appear offset by about 300-700 m; see :func:`gis.from_gcj02`;
    * ``"xyz"``: any ``{z}/{x}/{y}`` tile URL template ``url`` (e.g. an intranet tile server),
      with the ``attribution`` its licence requires.

    ``attribution`` is HTML (shown in the map's attribution box; give escaped text).
    Returns the tile layers added.
    """
    if kind == "none":
        return []
    if kind == "osm":
        layers = [folium.raster_layers.TileLayer(
            tiles=OSM_URL, attr=attribution or OSM_ATTRIBUTION, name=name or "OpenStreetMap",
            max_zoom=19, overlay=False, control=True)]
    elif kind == "tianditu":
        key = tianditu_key or os.environ.get(TIANDITU_ENV, "")
        if not key.strip():
            raise SinkmapError(
                "the Tianditu basemap needs a key",
                fix=f"pass tianditu_key=... or set the environment variable {TIANDITU_ENV} "
                    "(a browser key from https://console.tianditu.gov.cn/)")
        key = urllib.parse.quote(key.strip(), safe="")
        attr = attribution or TIANDITU_ATTRIBUTION
        layers = [folium.raster_layers.TileLayer(
            tiles=TIANDITU_URL.format(layer=layer, key=key, s="{s}", x="{x}", y="{y}", z="{z}"),
            attr=attr, name=(name or "天地图") if layer == "vec" else "天地图注记",
            subdomains="01234567", max_zoom=18, overlay=layer != "vec",
            control=layer == "vec") for layer in ("vec", "cva")]
    elif kind == "xyz":
        if not url or not all(p in url for p in ("{x}", "{y}", "{z}")):
            raise SinkmapError(f"an xyz basemap needs a tile URL template with {{z}}, {{x}} and "
                               f"{{y}}, got {url!r}",
                               fix="pass url='https://server/tiles/{z}/{x}/{y}.png'")
        if not attribution:
            raise SinkmapError("an xyz basemap needs its attribution",
                               fix="pass attribution='© the tile provider' as its licence asks")
        layers = [folium.raster_layers.TileLayer(tiles=url, attr=attribution,
                                                 name=name or "basemap", overlay=False,
                                                 control=True)]
    else:
        raise SinkmapError(f"unknown basemap kind {kind!r}",
                           fix="use one of none, osm, tianditu, xyz")
    for layer in layers:
        layer._sinkmap_basemap = True
        layer.add_to(m)
    return layers
