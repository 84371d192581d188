"""Offline maps: libraries inlined from the npm assets, nothing fetched, legends in plain HTML."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import branca.colormap
import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Transformer

from gis.errors import InputError, SinkmapError
from gis.grid import GridSpec, make_raster
from maps.carbon_map import carbon_density_map, save_map
from maps.legend import Legend, categorical_legend, continuous_legend, tick_labels
from maps.offline import (
    ASSETS_ENV,
    INLINE,
    OSM_URL,
    PINNED,
    TIANDITU_ENV,
    add_basemap,
    asset_root,
    check_assets,
    external_references,
    offline_html,
)

ASSETS_SRC = Path(__file__).resolve().parents[1] / "maps" / "assets"
H, W, RES = 60, 80, 30.0


def _unescape(text: str) -> str:
    """Undo the JSON escapes of strings embedded in the page's JavaScript."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace('\\"', '"').replace("\\/", "/")


def _grid() -> GridSpec:
    x0, y0 = Transformer.from_crs(4326, 4551, always_xy=True).transform(125.7, 42.5)
    return GridSpec.create("EPSG:4551", Affine(RES, 0, round(x0), 0, -RES, round(y0)), (H, W))


def _carbon_map() -> folium.Map:
    yy, xx = np.mgrid[0:H, 0:W]
    data = (10 + 90 * xx / W + 5 * np.cos(yy / 9)).astype(np.float32)
    data[:10, :10] = -9999.0
    density = make_raster(data, _grid(), nodata=-9999.0, units="tC_per_ha", kind="continuous",
                          name="density", chunks=32)
    left, bottom, right, top = _grid().bounds
    mid = (left + right) / 2
    zones = gpd.GeoDataFrame(
        {"name": ["甲镇", "<b>乙镇</b>"], "stock_tC": [1234.5, np.nan], "area_ha": [100, 200]},
        geometry=[shapely.box(left, bottom, mid, top), shapely.box(mid, bottom, right, top)],
        crs="EPSG:4551")
    return carbon_density_map(density, zones, zone_label="name",
                              value_columns={"stock_tC": "碳储量 (t C)", "area_ha": "面积 (ha)"},
                              title="测试", source_note="合成数据", max_pixels=4_000)


def _small_map() -> folium.Map:
    return folium.Map(location=[42.5, 125.7], zoom_start=9, tiles=None)


@pytest.fixture(scope="module")
def saved_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("offline") / "carbon.html"
    save_map(_carbon_map(), path)
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# pins and assets


def test_pins_agree_with_package_json_and_lock_file() -> None:
    package = json.loads((ASSETS_SRC / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((ASSETS_SRC / "package-lock.json").read_text(encoding="utf-8"))
    assert package["dependencies"] == PINNED
    assert lock["lockfileVersion"] == 3
    assert lock["packages"][""]["dependencies"] == PINNED
    for name, version in PINNED.items():
        entry = lock["packages"][f"node_modules/{name}"]
        assert entry["version"] == version
        assert entry["integrity"].startswith("sha512-")
    assert {a.package for a in INLINE.values()} == set(PINNED)
    assert PINNED["leaflet"].startswith("1.9.")  # what folium's templates are written for
    assert not (ASSETS_SRC / "node_modules").exists()  # third-party code is never committed


def test_asset_root_default_and_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ASSETS_ENV, raising=False)
    assert asset_root() == Path(sys.prefix) / "share" / "sinkmap" / "assets"
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    assert asset_root() == tmp_path


def test_installed_assets_pass_the_check() -> None:
    root = check_assets()
    assert (root / "node_modules" / "leaflet" / "dist" / "leaflet.js").is_file()


def test_missing_assets_name_the_folder_and_the_fix(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(ASSETS_ENV, str(empty))
    out = tmp_path / "map.html"
    with pytest.raises(InputError) as err:
        save_map(_small_map(), out)
    msg = str(err.value)
    assert str(empty) in msg and "bash scripts/setup" in msg and "leaflet" in msg
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_wrong_asset_version_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkg = tmp_path / "node_modules" / "leaflet"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text('{"name": "leaflet", "version": "1.7.1"}')
    monkeypatch.setenv(ASSETS_ENV, str(tmp_path))
    with pytest.raises(InputError, match=r"leaflet is 1\.7\.1, the maps need 1\.9\.4") as err:
        offline_html(_small_map())
    assert "bash scripts/setup" in str(err.value)


# ------------------------------------------------------------------------------------------
# the saved carbon map


def test_saved_page_refers_to_nothing_outside_itself(saved_page: str) -> None:
    assert external_references(saved_page) == []
    text = _unescape(saved_page)
    for src in re.findall(r"<script\b[^>]*\bsrc\s*=\s*[\"']?([^\"'\s>]+)", text, re.I):
        assert src.startswith("data:"), src
    for href in re.findall(r"<link\b[^>]*\bhref\s*=\s*[\"']?([^\"'\s>]*)", text, re.I):
        assert href.startswith("data:"), href
    for ref in re.findall(r"(?<![\w$.-])url\(\s*[\"']?([^\"')]*)", text, re.I):
        assert ref.startswith(("data:", "#")), ref
    for _name, url in [*folium.Map.default_js, *folium.Map.default_css]:
        assert url not in text
    assert "d3.min.js" not in text


def test_leaflet_is_inlined(saved_page: str) -> None:
    assert f'version="{PINNED["leaflet"]}"' in saved_page   # Leaflet's L.version
    assert f"Leaflet {PINNED['leaflet']}" in saved_page      # its licence banner
    assert ".leaflet-container" in saved_page and ".leaflet-control-layers" in saved_page
    assert "sourceMappingURL" not in saved_page
    assert "images/layers.png" not in saved_page             # inlined as data: URIs
    assert saved_page.count("url(\"data:image/png;base64,") >= 3
    assert "L.Icon.Default.mergeOptions" in saved_page
    # the library comes before the page's own styles and scripts
    head = saved_page.split("</head>")[0]
    assert head.index('version="1.9.4"') < head.index(".sinkmap-title")
    assert head.index(".leaflet-default-icon-path") < head.index(".leaflet-container { background")


def test_legends_are_plain_html_with_units(saved_page: str) -> None:
    text = _unescape(saved_page)
    assert '<div class="sinkmap-legend-title">碳密度 (t C/ha)</div>' in text
    assert '<div class="sinkmap-legend-title">碳储量 (t C)</div>' in text
    assert "linear-gradient(to right, #ffffe5 0.00%" in text
    assert "无数据" in text                              # the NaN zone has a swatch
    assert text.count(".sinkmap-legend-ticks {") == 1   # style sheet once for both legends
    # d3 used as a library (a folium variable name ending in hex "d3" is not: word boundary)
    assert not re.search(r"\bd3\.", saved_page) and "branca" not in saved_page.lower()


def test_offline_html_leaves_the_map_usable() -> None:
    m = _carbon_map()
    first = offline_html(m)
    assert external_references(offline_html(m)) == []
    assert len(offline_html(m)) >= len(first)
    assert "cdn.jsdelivr.net/npm/leaflet" in m.get_root().render()  # folium's own render


# ------------------------------------------------------------------------------------------
# basemaps


def test_no_basemap_by_default() -> None:
    m = _carbon_map()
    assert add_basemap(m) == []
    assert external_references(offline_html(m)) == []


def test_osm_basemap_adds_one_tile_template_and_nothing_else() -> None:
    m = _carbon_map()
    add_basemap(m, "osm")
    assert external_references(offline_html(m)) == [OSM_URL]


def test_xyz_basemap(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://10.20.30.40/tiles/{z}/{x}/{y}.png"
    m = _carbon_map()
    add_basemap(m, "xyz", url=url, attribution="县局影像")
    page = offline_html(m)
    assert external_references(page) == [url]
    assert "县局影像" in _unescape(page)
    with pytest.raises(SinkmapError, match="attribution"):
        add_basemap(_small_map(), "xyz", url=url)
    with pytest.raises(SinkmapError, match=r"\{z\}"):
        add_basemap(_small_map(), "xyz", url="http://x/tile.png", attribution="x")
    with pytest.raises(SinkmapError, match="unknown basemap"):
        add_basemap(_small_map(), "amap")  # type: ignore[arg-type]


def test_tianditu_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIANDITU_ENV, raising=False)
    with pytest.raises(SinkmapError) as err:
        add_basemap(_small_map(), "tianditu")
    assert "tianditu_key" in str(err.value) and TIANDITU_ENV in str(err.value)

    m = _small_map()
    add_basemap(m, "tianditu", tianditu_key="0123abcd")
    refs = external_references(offline_html(m))
    assert len(refs) == 2 and all("tianditu.gov.cn" in r and "tk=0123abcd" in r for r in refs)
    assert {"T=vec_w" in r for r in refs} == {True, False}  # vector map + its labels

    monkeypatch.setenv(TIANDITU_ENV, "fromenv")
    m = _small_map()
    add_basemap(m, "tianditu")
    assert all("tk=fromenv" in r for r in external_references(offline_html(m)))


def test_tile_layers_not_asked_for_are_refused() -> None:
    m = folium.Map(location=[42.5, 125.7])  # folium's default OpenStreetMap tiles
    with pytest.raises(SinkmapError, match="add_basemap"):
        offline_html(m)


# ------------------------------------------------------------------------------------------
# folium elements that need more than Leaflet


def test_popups_and_default_markers_work_without_jquery_or_image_files() -> None:
    m = _small_map()
    folium.Marker([42.5, 125.7], popup="<b>甲</b>", tooltip="t").add_to(m)
    page = offline_html(m)
    assert external_references(page) == []
    assert "jQuery itself is not loaded" in page          # the two-call stand-in
    assert "code.jquery.com" not in page
    assert "L.Icon.Default.mergeOptions" in page
    assert "jQuery itself is not loaded" not in offline_html(_small_map())  # only when needed


@pytest.mark.parametrize(("build", "named"), [
    (lambda m: folium.Marker([42.5, 125.7], icon=folium.Icon(color="red")).add_to(m),
     "folium.Icon"),
    (lambda m: branca.colormap.LinearColormap(["red", "blue"]).add_to(m), "d3"),
    (lambda m: folium.plugins.Fullscreen().add_to(m), "Fullscreen"),
])
def test_elements_needing_a_cdn_are_refused_by_name(build, named: str) -> None:
    m = _small_map()
    build(m)
    with pytest.raises(SinkmapError, match="need the internet") as err:
        offline_html(m)
    assert named in str(err.value)


# ------------------------------------------------------------------------------------------
# the checker


def test_external_references_finds_what_a_browser_would_fetch() -> None:
    page = """<html><head>
      <script src="https://cdn.example/a.js"></script>
      <link rel="stylesheet" href='//cdn.example/b.css'>
      <link rel="icon" href="data:,">
      <style>@import "c.css"; .x { background: url(images/d.png) }
             .y { background: url("data:image/png;base64,AAAA") } .z { behavior: url(#v) }</style>
      </head><body><img src=e.png><a href="https://example.org/">a link is no fetch</a>
      <img srcset="f.png 1x, data:image/png;base64,AA 2x">
      <script>
        var i = this._getIconUrl(t);
        var p = "\\u003cimg src=\\"http://g.example/h.png\\"\\u003e";
        L.tileLayer("https://tiles.example/{z}/{x}/{y}.png", {}).addTo(map);
        L.imageOverlay("overlay.png", [[0, 0], [1, 1]]).addTo(map);
        L.imageOverlay("data:image/png;base64,AAAA", [[0, 0], [1, 1]]).addTo(map);
        L.icon({"iconUrl": "https://icons.example/i.png", shadowUrl: "data:,"});
      </script></body></html>"""
    assert external_references(page) == [
        "https://cdn.example/a.js", "//cdn.example/b.css", "e.png",
        "http://g.example/h.png", "images/d.png", "c.css",
        "https://tiles.example/{z}/{x}/{y}.png", "overlay.png", "https://icons.example/i.png",
        "f.png"]
    assert external_references("<p>nothing here</p>") == []


# ------------------------------------------------------------------------------------------
# legends


def test_continuous_legend_escapes_and_labels() -> None:
    legend = continuous_legend("<b>x</b> (t C/ha)", ["#ffffff", "#000000"], 0, 140)
    assert isinstance(legend, Legend)
    assert "&lt;b&gt;x&lt;/b&gt; (t C/ha)" in legend.html and "<b>" not in legend.html
    assert re.findall(r">([\d,.]+)</span>", legend.html) == ["0", "50", "100", "140"]
    assert "linear-gradient(to right, #ffffff 0.00%, #000000 100.00%)" in legend.html


def test_continuous_legend_thins_crowded_labels_and_takes_value_stops() -> None:
    legend = continuous_legend("t C", ["#fff", "#000"], 0, 2_400_000,
                               [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_400_000])
    assert re.findall(r">([\d,.]+)</span>", legend.html) == ["0", "1,000,000", "2,400,000"]
    stops = continuous_legend("v", [(0, "#fff"), (50, "red"), (200, "#000")], 0, 100, [0, 100])
    assert "#fff 0.00%, red 50.00%, #000 100.00%" in stops.html
    assert tick_labels([0, 2.5, 5]) == ["0.0", "2.5", "5.0"]
    assert tick_labels([-0.0, 12500]) == ["0", "12,500"]


def test_categorical_legend() -> None:
    legend = categorical_legend("地类", [("#1a9850", "林地 <03>"), ("rgb(1, 2, 3)", "耕地")])
    assert "林地 &lt;03&gt;" in legend.html and "background:rgb(1, 2, 3)" in legend.html
    m = _small_map()
    legend.add_to(m)
    assert external_references(offline_html(m)) == []


def test_legend_refuses_what_is_not_a_colour_or_a_range() -> None:
    with pytest.raises(ValueError, match="CSS colour"):
        categorical_legend("x", [("red;background:url(http://e/x)", "a")])
    with pytest.raises(ValueError, match="CSS colour"):
        continuous_legend("x", ["#fff", "#00000g"], 0, 1)
    with pytest.raises(ValueError, match="range"):
        continuous_legend("x", ["#fff", "#000"], 1, 1)
    with pytest.raises(ValueError, match="position"):
        categorical_legend("x", [], position="middle")
