"""Tests of maps.render and maps.carbon_map on a small synthetic raster near Meihekou."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from affine import Affine
from branca.element import Element
from pyproj import Transformer

from gis.errors import CRSError, InputError, NoDataError, OutputExistsError, SinkmapError
from gis.grid import GridSpec, make_raster
from maps.carbon_map import carbon_density_map, save_map, unit_label
from maps.legend import Legend
from maps.offline import external_references
from maps.render import (
    YLGN,
    colourise,
    decode_png,
    encode_png,
    format_number,
    nice_range,
    nice_ticks,
    png_size,
    warp_to_web_mercator,
)

XSS = "<img src=x onerror=alert(1)>"
H, W, RES = 200, 300, 30.0
NODATA = -9999.0
NODATA_ROWS, NODATA_COLS = slice(0, 50), slice(0, 60)  # top-left block of nodata
VALUE_COLUMNS = {"stock_tC": "碳储量 (t C)", "mean_density_tC_per_ha": "平均碳密度 (t C/ha)",
                 "area_ha": "面积 (ha)"}


def js_unescape(text: str) -> str:
    """Undo the ``\\uXXXX`` escapes Jinja's ``tojson`` puts in embedded JSON/JS strings."""
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def embedded_png(page: str) -> bytes:
    """The image overlay's PNG (Leaflet's own inlined images come earlier in the page)."""
    m = re.search(r"L\.imageOverlay\(\s*\"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert m, "no embedded PNG"
    return base64.b64decode(m.group(1))


def overlay_bounds(page: str) -> tuple[float, float, float, float]:
    """``(south, west, north, east)`` of the image overlay in the page."""
    m = re.search(r"data:image/png;base64,[A-Za-z0-9+/=]+\",\s*\[\[([-\d.]+), ([-\d.]+)\], "
                  r"\[([-\d.]+), ([-\d.]+)\]\]", page)
    assert m, "no image overlay bounds"
    s, w, n, e = (float(g) for g in m.groups())
    return s, w, n, e


def _grid() -> GridSpec:
    x0, y0 = Transformer.from_crs(4326, 4551, always_xy=True).transform(125.7, 42.5)
    return GridSpec.create("EPSG:4551", Affine(RES, 0, round(x0), 0, -RES, round(y0)), (H, W))


def _density(chunks: int | None = 64) -> xr.DataArray:
    yy, xx = np.mgrid[0:H, 0:W]
    data = (20 + 100 * xx / W + 10 * np.sin(yy / 15)).astype(np.float32)
    data[NODATA_ROWS, NODATA_COLS] = NODATA
    return make_raster(data, _grid(), nodata=NODATA, units="tC_per_ha", kind="continuous",
                       name="density", chunks=chunks)


def _zones(crs: str | int = "EPSG:4551") -> gpd.GeoDataFrame:
    left, bottom, right, top = _grid().bounds
    cuts = [left, left + 3000, left + 6000, right]
    geoms = [shapely.box(cuts[i], bottom, cuts[i + 1], top) for i in range(3)]
    gdf = gpd.GeoDataFrame(
        {"name": ["甲镇", XSS, "Sanyuan"],
         "stock_tC": [12345.6, 2345678.9, np.nan],
         "mean_density_tC_per_ha": [55.123, 80.5, 0.0423],
         "area_ha": [1800, 1800, 2400]},
        geometry=geoms, crs="EPSG:4551")
    return gdf.to_crs(crs)


def _map(**kw):
    args = {"zone_label": "name", "value_columns": VALUE_COLUMNS, "title": "梅河口市碳密度",
            "source_note": "数据来源：合成测试数据"} | kw
    density = args.pop("density", None)
    zones = args.pop("zones", None)
    return carbon_density_map(_density() if density is None else density,
                              _zones() if zones is None else zones, **args)


@pytest.fixture(scope="module")
def zh_page(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("map") / "carbon.html"
    save_map(_map(max_pixels=20_000), path)
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# the page


def test_page_has_overlay_legend_title_zones_and_no_tiles(zh_page: str) -> None:
    text = js_unescape(zh_page)
    assert "data:image/png;base64," in zh_page
    assert "L.imageOverlay(" in zh_page
    assert "碳密度 (t C/ha)" in text                        # legend caption and layer name
    assert "碳储量 (t C)" in text                           # choropleth legend
    assert '<div class="sinkmap-title">梅河口市碳密度</div>' in zh_page
    assert "<title>梅河口市碳密度</title>" in zh_page
    assert "数据来源：合成测试数据" in text
    for name in ("甲镇", "Sanyuan"):
        assert name in text
    assert "L.control.scale()" in zh_page
    assert "L.control.layers(" in zh_page
    assert "L.tileLayer(" not in zh_page and "openstreetmap" not in zh_page
    assert external_references(zh_page) == []
    assert "fitBounds" in zh_page


def test_zone_names_are_escaped(zh_page: str) -> None:
    text = js_unescape(zh_page)
    assert XSS not in zh_page
    assert XSS not in text  # not even in the strings Leaflet will insert as HTML
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;img" in text


def test_title_and_labels_are_escaped() -> None:
    evil = {"stock_tC": "<b>stock</b>", "area_ha": "area"}
    page = _map(title=f"T {XSS}", source_note=XSS, value_columns=evil,
                max_pixels=5_000).get_root().render()
    text = js_unescape(page)
    assert XSS not in page and XSS not in text
    assert "T &lt;img src=x onerror=alert(1)&gt;" in page  # the title box is plain HTML
    assert "&lt;b&gt;stock&lt;/b&gt;" in text              # popup row label / layer name


def test_popup_numbers_are_formatted(zh_page: str) -> None:
    text = js_unescape(zh_page)
    assert "2,345,679" in text     # stock: thousands separators, no decimals
    assert "12,346" in text
    assert "55.12" in text and "80.50" in text
    assert "0.0423" in text        # small values keep three significant figures
    assert "1,800" in text         # integer column
    assert "无数据" in text          # NaN stock
    assert "平均碳密度 (t C/ha)" in text and "面积 (ha)" in text


def test_english_labels() -> None:
    page = _map(lang="en", title="Meihekou carbon density",
                value_columns={"stock_tC": "Carbon stock (t C)"},
                max_pixels=5_000).get_root().render()
    text = js_unescape(page)
    assert "Carbon density (t C/ha)" in text
    assert "Zone boundaries" in text and "Zones: Carbon stock (t C)" in text
    assert "碳密度" not in text and "分区" not in text


def test_chinese_labels_by_default(zh_page: str) -> None:
    text = js_unescape(zh_page)
    assert "分区边界" in text and "分区统计：碳储量 (t C)" in text
    assert "Carbon density" not in text


def test_downsampling_respects_max_pixels(zh_page: str) -> None:
    w, h = png_size(embedded_png(zh_page))
    assert w * h <= 20_000
    assert w * h >= 0.8 * 20_000  # uses the budget rather than wasting it


@pytest.mark.parametrize("budget", [1, 7, 1_000, 4_321])
def test_budget_is_never_exceeded(budget: int) -> None:
    img = warp_to_web_mercator(_density(), max_pixels=budget)
    assert img.values.size <= budget


def test_small_raster_is_not_upsampled() -> None:
    img = warp_to_web_mercator(_density(), max_pixels=10_000_000)
    assert img.values.size <= 1.1 * H * W


def test_nodata_is_transparent(zh_page: str) -> None:
    rgba = decode_png(embedded_png(zh_page))
    s, w, n, e = overlay_bounds(zh_page)
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    left, bottom = to_merc.transform(w, s)
    right, top = to_merc.transform(e, n)
    grid = _grid()
    to_merc_src = Transformer.from_crs(4551, 3857, always_xy=True)

    def pixel_at(row: float, col: float) -> np.ndarray:
        t = grid.transform
        x, y = t.c + t.a * col, t.f + t.e * row
        mx, my = to_merc_src.transform(x, y)
        c = int((mx - left) / (right - left) * rgba.shape[1])
        r = int((top - my) / (top - bottom) * rgba.shape[0])
        return rgba[r, c]

    assert pixel_at(25, 30)[3] == 0          # centre of the nodata block
    assert pixel_at(150, 200)[3] == 255      # valid data
    assert (rgba[..., 3] == 0).any() and (rgba[..., 3] == 255).any()
    assert set(np.unique(rgba[..., 3])) <= {0, 255}


def test_numpy_and_dask_give_the_same_image() -> None:
    a = warp_to_web_mercator(_density(chunks=None), max_pixels=3_000)
    b = warp_to_web_mercator(_density(chunks=37), max_pixels=3_000)
    assert a.shape == b.shape
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, equal_nan=True)


def test_downsampling_averages() -> None:
    checker = ((np.indices((H, W)).sum(axis=0) % 2) * 100).astype(np.float32)
    da = make_raster(checker, _grid(), nodata=None, units="tC_per_ha", kind="continuous")
    img = warp_to_web_mercator(da, max_pixels=500)  # decimated before the warp
    inner = img.values[2:-2, 2:-2]
    inner = inner[np.isfinite(inner)]
    assert inner.size and np.allclose(inner, 50.0, atol=3.0)


def test_fixed_value_range() -> None:
    m = _map(value_range=(0, 200), max_pixels=1_000)
    density_legend = next(c for c in m._children.values() if isinstance(c, Legend))
    assert "碳密度 (t C/ha)" in density_legend.html
    assert '<span class="sinkmap-first" style="left:0.00%">0</span>' in density_legend.html
    assert '<span class="sinkmap-last" style="left:100.00%">200</span>' in density_legend.html
    with pytest.raises(SinkmapError, match="value_range"):
        _map(value_range=(10, 10))


def test_all_nodata_raster_is_an_error() -> None:
    da = make_raster(np.full((H, W), NODATA, np.float32), _grid(), nodata=NODATA,
                     units="tC_per_ha", kind="continuous")
    with pytest.raises(NoDataError):
        _map(density=da, max_pixels=1_000)


def test_geographic_zones_are_accepted() -> None:
    page = _map(zones=_zones(4326), max_pixels=2_000).get_root().render()
    assert "Sanyuan" in page


def test_dense_polygons_are_simplified() -> None:
    left, bottom, right, top = _grid().bounds
    cx, cy = (left + right) / 2, (bottom + top) / 2
    circle = shapely.Point(cx, cy).buffer(2000, quad_segs=2500)  # ~10,000 vertices
    zones = gpd.GeoDataFrame({"name": ["round"], "stock_tC": [1.0],
                              "mean_density_tC_per_ha": [1.0], "area_ha": [1.0]},
                             geometry=[circle], crs="EPSG:4551")
    page = _map(zones=zones, max_pixels=1_000).get_root().render()
    coords = re.findall(r"\[1\d\d\.\d+, 4\d\.\d+\]", page)
    assert 0 < len(coords) < 0.2 * shapely.get_num_coordinates(circle) * 2


# ------------------------------------------------------------------------------------------
# errors


def test_density_without_crs() -> None:
    da = xr.DataArray(np.ones((10, 10), np.float32), dims=("y", "x"),
                      coords={"y": np.arange(10.0), "x": np.arange(10.0)})
    with pytest.raises(CRSError):
        _map(density=da)


def test_zones_without_crs() -> None:
    zones = _zones().set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="no CRS"):
        _map(zones=zones)


def test_missing_value_column_names_it_and_the_available_ones() -> None:
    with pytest.raises(InputError) as err:
        _map(value_columns={"stock_tC": "s", "sequestration_tC": "q"})
    msg = str(err.value)
    assert "'sequestration_tC'" in msg
    assert "stock_tC" in msg and "area_ha" in msg and "name" in msg


def test_missing_label_column() -> None:
    with pytest.raises(InputError, match="township"):
        _map(zone_label="township")


def test_unknown_language() -> None:
    with pytest.raises(SinkmapError, match="language"):
        _map(lang="fr")


# ------------------------------------------------------------------------------------------
# saving


def test_save_map_refuses_to_overwrite(tmp_path: Path) -> None:
    m = _map(max_pixels=1_000)
    target = tmp_path / "map.html"
    target.write_text("old")
    with pytest.raises(OutputExistsError):
        save_map(m, target)
    assert target.read_text() == "old"
    assert save_map(m, target, overwrite=True) == target
    assert "data:image/png;base64," in target.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]


def test_save_map_leaves_nothing_when_rendering_fails(tmp_path: Path) -> None:
    class Boom(Element):
        def render(self, **kwargs: object) -> str:
            raise RuntimeError("boom")

    m = _map(max_pixels=1_000)
    m.get_root().html.add_child(Boom(""))
    with pytest.raises(RuntimeError, match="boom"):
        save_map(m, tmp_path / "map.html")
    assert list(tmp_path.iterdir()) == []


def test_save_map_leaves_nothing_when_the_final_rename_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Path] = []

    def failing_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        written.append(Path(src))
        assert Path(src).stat().st_size > 0  # the page was fully written to the temp file
        raise OSError("disk gone")

    m = _map(max_pixels=1_000)
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        save_map(m, tmp_path / "map.html")
    assert written and written[0].parent == tmp_path
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# render helpers


def test_png_round_trip_indexed_and_rgba() -> None:
    idx = np.arange(12, dtype=np.uint8).reshape(3, 4) % 3
    pal = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)
    png = encode_png(idx, palette=pal, alpha=np.array([0], np.uint8))
    assert png_size(png) == (4, 3)
    rgba = decode_png(png)
    assert rgba.shape == (3, 4, 4)
    np.testing.assert_array_equal(rgba[..., :3], pal[idx])
    np.testing.assert_array_equal(rgba[..., 3], np.where(idx == 0, 0, 255))
    img = np.random.default_rng(1).integers(0, 256, (5, 7, 4), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(encode_png(img)), img)


def test_colourise_maps_nan_to_transparent_and_ends_to_ramp_ends() -> None:
    v = np.array([[np.nan, 0.0, 50.0, 100.0, 1e9]])
    rgba = decode_png(colourise(v, 0.0, 100.0, YLGN))
    assert rgba[0, 0, 3] == 0 and (rgba[0, 1:, 3] == 255).all()
    assert "#{:02x}{:02x}{:02x}".format(*rgba[0, 1, :3]) == YLGN.stops[0]
    assert "#{:02x}{:02x}{:02x}".format(*rgba[0, 3, :3]) == YLGN.stops[-1]
    assert (rgba[0, 4] == rgba[0, 3]).all()  # above the range: clamped


@pytest.mark.parametrize(("value", "text"), [
    (1234567.8, "1,234,568"), (523.456, "523.5"), (85.346, "85.35"), (0.04231, "0.0423"),
    (-2500.4, "-2,500"), (12, "12"), (np.int64(1800), "1,800"), (0.0, "0"),
    (float("nan"), "-"), (None, "-"), ("abc", "abc"),
])
def test_format_number(value: object, text: str) -> None:
    assert format_number(value) == text


def test_nice_range_and_ticks() -> None:
    assert nice_range(np.array([10.0, 60.0, 130.0, np.nan]), quantiles=(0, 100)) == (0.0, 140.0)
    assert nice_range(np.array([40.0, 60.0, 130.0]), quantiles=(0, 100)) == (40.0, 130.0)
    lo, hi = nice_range(np.array([1000.0, 1100.0, 1200.0]), quantiles=(0, 100))
    assert lo <= 1000 and hi >= 1200 and lo > 0
    lo, hi = nice_range(np.array([5.0, 5.0]))
    assert lo < 5 < hi
    assert nice_ticks(0, 140) == [0.0, 50.0, 100.0, 140.0]
    assert nice_ticks(0, 105) == [0.0, 25.0, 50.0, 75.0, 105.0]  # 100 would crowd 105


def test_unit_label() -> None:
    assert unit_label("tC_per_ha") == "t C/ha"
    assert unit_label("kg_per_m2") == "kg/m2"
    assert unit_label(None) == ""


def test_template_syntax_in_user_text_is_not_evaluated() -> None:
    # branca parses rendered scripts again as Jinja: "{{ 7*7 }}" in a name must stay text
    jinja = "{{ 7*7 }}{{ cycler.__init__.__globals__.os.getcwd() }}"
    page = _map(title=f"T {jinja}", source_note=jinja,
                value_columns={"stock_tC": jinja, "area_ha": "area"},
                max_pixels=5_000).get_root().render()
    text = js_unescape(page)
    assert ">49<" not in text and " 49" not in text.replace(",", "")
    assert os.getcwd() not in text
    assert "&#123;&#123; 7*7 &#125;&#125;" in text
