"""maps.green_map: the urban green-space map of a ``sinkmap green`` run folder.

The folder is synthetic, written as the green-space contract says: rasters on one 10 m grid in
EPSG:32651 (near Shanghai), GeoPackages in the same CRS, summary.json. Three districts: one
ordinary, one with a hostile name and no population (per-capita green unknown), one
undetermined (cloud); two parks (one too small to serve) and their service area.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import Transformer

from gis.errors import InputError, SinkmapError
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from maps.carbon_map import save_map
from maps.green_map import CHANGE_CLASSES, COVERAGE_COLOURS, MASK_CLASSES, green_map
from maps.landuse_map import class_blocks
from maps.offline import external_references, offline_html
from maps.render import decode_png, png_size
from tests.test_ecology_map import overlay_pngs, shown

H, W, RES = 90, 120, 10.0
CRS = "EPSG:32651"
HOSTILE = "<b>{{x}}</b>"
SUMMARY = {
    "year": 2025, "baseline_year": 2020, "source": "imagery", "threshold": 0.4213,
    "threshold_method": "otsu", "urban_area_ha": 108.0, "observed_pct": 97.46,
    "green_coverage_pct": 38.42, "green_area_ha": 823.04, "green_area_mu": 12345.6,
    "new_green_mu": 2100.0, "lost_green_mu": 300.0, "net_green_mu": 1800.0,
    "target_mu": 3200.0, "target_progress_pct": 65.625, "park_service_pct": 72.31,
    "green_m2_per_person": 25.5, "status": "ok", "reason": "",
    "scenes": {"2025": ["S2A_1", "S2B_2", "S2A_3"], "2020": ["S2A_4", "S2B_5"]},
    "districts": 3, "lang": "zh"}


def _grid() -> GridSpec:
    x0, y0 = Transformer.from_crs(4326, 32651, always_xy=True).transform(121.45, 31.25)
    return GridSpec.create(CRS, Affine(RES, 0, round(x0), 0, -RES, round(y0)), (H, W))


def _box(r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    t = _grid().transform
    return shapely.box(t.c + c0 * RES, t.f - r1 * RES, t.c + c1 * RES, t.f - r0 * RES)


# the urban boundary: rows 5..85, cols 10..110; districts split it at cols 50 and 90
URBAN = (5, 10, 85, 110)
DISTRICTS = [(5, 10, 85, 50), (5, 50, 85, 90), (5, 90, 85, 110)]


def _mask() -> np.ndarray:
    a = np.full((H, W), 255, dtype=np.uint8)  # outside
    r0, c0, r1, c1 = URBAN
    a[r0:r1, c0:c1] = 0                       # not green
    a[10:40, 15:45] = 1                       # a park-like block of green
    a[50:80, 55:70] = 1
    a[::7, 10:110] = np.where(a[::7, 10:110] == 0, 1, a[::7, 10:110])  # street trees
    a[5:85, 90:110] = 2                       # the cloudy district: undetermined
    return a


def _change() -> np.ndarray:
    mask = _mask()
    c = np.where(mask == 1, 1, 0).astype(np.uint8)   # stable green / stable non-green
    c[50:80, 55:70] = 2                               # new green
    c[60:70, 20:30] = 3                               # lost green
    c[mask == 2] = 4                                  # undetermined
    c[mask == 255] = 255
    return c


def write_folder(out: Path, *, name: str = HOSTILE) -> Path:
    """A green run folder as the contract specifies."""
    out.mkdir(parents=True, exist_ok=True)
    g = _grid()
    write_cog(make_raster(_mask(), g, nodata=255, units="class", kind="categorical",
                          name="green_mask", chunks=64), out / "green_mask.tif")
    write_cog(make_raster(_change(), g, nodata=255, units="class", kind="categorical",
                          name="green_change", chunks=64), out / "green_change.tif")
    gpd.GeoDataFrame({"name": ["示范城区"]}, geometry=[_box(*URBAN)], crs=CRS).to_file(
        out / "urban.gpkg", layer="urban")
    nan = float("nan")
    gpd.GeoDataFrame({
        "district": ["东城片区", name, "云区"], "population": [50000.0, nan, 8000.0],
        "area_ha": [32.0, 32.0, 16.0], "observed_pct": [100.0, 100.0, 0.0],
        "green_ha": [12.34, 7.5, nan], "green_mu": [185.1, 112.5, nan],
        "green_coverage_pct": [38.56, 23.44, nan],
        "green_m2_per_person": [2.468, nan, nan], "park_ha": [9.0, 0.0, nan],
        "park_m2_per_person": [1.8, nan, nan], "park_service_pct": [81.25, 40.0, nan],
        "new_green_mu": [0.0, 67.5, nan], "lost_green_mu": [15.0, 0.0, nan],
        "net_green_mu": [-15.0, 67.5, nan], "status": ["ok", "ok", "undetermined"],
        "reason": ["", "", "no clear observation (clouds in every scene)"]},
        geometry=[_box(*d) for d in DISTRICTS], crs=CRS).to_file(
        out / "districts.gpkg", layer="districts")
    parks = gpd.GeoDataFrame({"name": ["人民公园", "口袋公园"], "area_m2": [90000.0, 900.0],
                              "radius_m": [500.0, 0.0]},
                             geometry=[_box(10, 15, 40, 45), _box(60, 60, 63, 63)], crs=CRS)
    parks.to_file(out / "parks.gpkg", layer="parks")
    gpd.GeoDataFrame(geometry=[shapely.union_all(parks.geometry[parks["radius_m"] > 0]
                                                 .buffer(500))], crs=CRS).to_file(
        out / "parks.gpkg", layer="service_area", mode="a")
    (out / "summary.json").write_text(json.dumps(SUMMARY, ensure_ascii=False),
                                      encoding="utf-8")
    return out


def legend(text: str, key: str) -> str:
    return re.search(rf'data-legend="{key}">(.*?)</div></div>(?:<div class="sinkmap-legend|")',
                     text).group(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("green") / "green")


@pytest.fixture(scope="module")
def zh_page(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    m = green_map(folder, source_note="数据来源：合成测试数据")
    path = save_map(m, tmp_path_factory.mktemp("page") / "green.html")
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# the page


def test_layers_are_listed_and_page_is_offline(zh_page: str) -> None:
    text = shown(zh_page)
    names = ("绿地分布 2025", "绿地变化 2020–2025", "片区绿化覆盖率", "公园服务范围",
             "片区边界（点击查看统计）", "公园绿地", "城区边界")
    listed = re.search(r"overlays\s*:\s*\{(.*?)\}", text, re.S).group(1)
    assert re.findall(r'"([^"]+)"\s*:', listed) == list(names)  # bottom to top
    assert len(overlay_pngs(zh_page)) == 2
    assert "L.control.layers(" in zh_page and "L.tileLayer(" not in zh_page
    assert external_references(zh_page) == []
    assert "<title>城市绿地 2025</title>" in zh_page  # the default title
    assert "数据来源：合成测试数据" in text
    assert len(zh_page.encode("utf-8")) < 600_000


def test_mask_on_change_and_choropleth_off_by_default(zh_page: str) -> None:
    names = re.findall(r"var (image_overlay_\w+) = L\.imageOverlay", zh_page)
    mask, change = names
    assert f"{mask}.addTo(" in zh_page
    assert f"{change}.addTo(" not in zh_page  # listed in the control, not shown
    overlays = dict(re.findall(r'"([^"]+)"\s*:\s*(geo_json_\w+)', shown(zh_page)))
    assert f"{overlays['片区绿化覆盖率']}.addTo(" not in zh_page
    assert f"{overlays['片区边界（点击查看统计）']}.addTo(" in zh_page


def test_headline_numbers(zh_page: str) -> None:
    text = shown(zh_page)
    head = re.search(r'sinkmap-green-headline.*?"(.*?)";', text, re.S)
    assert head is not None
    for part in ("城市绿地 2025", "绿化覆盖率 38.4 %", "绿地 12,346 亩（823 ha）",
                 "新增绿地 2,100 亩 / 目标 3,200 亩（65.6 %）", 'style="width:65.6%"',
                 "2020–2025 年：减少 300 亩，净增 1,800 亩",
                 "公园服务半径覆盖率 72.3 % · 人均绿地 25.5 m²/人",
                 "NDVI 阈值 0.421（Otsu 自动阈值） · 有效观测 97.5 % · 影像 5 景"):
        assert part in text, part
    assert "无法判定：" not in text.split("sinkmap-green-headline")[1][:3000]


def test_legend_classes(zh_page: str) -> None:
    text = shown(zh_page)
    mask = legend(text, "mask")
    for label in ("绿地", "非绿地", "无法判定（无有效观测）"):
        assert f"<span>{label}</span>" in mask, label
    for _, colour in MASK_CLASSES:
        assert f"background:{colour}" in mask
    change = legend(text, "change")
    for label in ("新增绿地", "减少绿地", "保持绿地"):
        assert f"<span>{label}</span>" in change
    assert "绿地变化 2020–2025</div>" in text
    districts = legend(text, "districts")
    for label in ("&lt; 20 % (0)", "20–30 % (1)", "30–40 % (1)", "40–50 % (0)", "≥ 50 % (0)",
                  "无法判定 (1)"):
        label = label.replace(" (", "（").replace(")", "）")
        assert label in districts, label
    for colour in COVERAGE_COLOURS:
        assert f"background:{colour}" in districts
    symbols = legend(text, "symbols")
    for label in ("片区边界", "公园绿地", "公园服务范围", "城区边界"):
        assert label in symbols


def test_district_popups(zh_page: str) -> None:
    text = shown(zh_page)
    east = re.search(r"<caption>东城片区</caption>(.*?)</table>", text).group(1)
    for row in ("<th>面积 (ha)</th><td>32.00</td>", "<th>人口</th><td>50,000</td>",
                "<th>绿化覆盖率 (%)</th><td>38.6</td>", "<th>绿地面积 (ha)</th><td>12.34</td>",
                "<th>绿地面积 (亩)</th><td>185.1</td>", "<th>人均绿地 (m²/人)</th><td>2.47</td>",
                "<th>公园服务半径覆盖率 (%)</th><td>81.2</td>",
                "<th>新增绿地 (亩)</th><td>0</td>", "<th>减少绿地 (亩)</th><td>15.00</td>",
                "<th>净增绿地 (亩)</th><td>-15.00</td>", "<th>状态</th><td>有效</td>"):
        assert row in east, row
    hostile = re.search(r"<caption>&lt;b&gt;&#123;&#123;x&#125;&#125;&lt;/b&gt;</caption>"
                        r"(.*?)</table>", text).group(1)
    assert "<th>人口</th><td>—</td>" in hostile
    assert "<th>人均绿地 (m²/人)</th><td>—</td>" in hostile  # NaN, never 0
    assert "<th>人均公园绿地 (m²/人)</th><td>—</td>" in hostile
    cloud = re.search(r"<caption>云区</caption>(.*?)</table>", text).group(1)
    assert "<th>绿化覆盖率 (%)</th><td>—</td>" in cloud
    assert "<th>状态</th><td>无法判定</td>" in cloud
    assert "<th>原因</th><td>no clear observation (clouds in every scene)</td>" in cloud
    assert "<b>东城片区</b>: 38.6 %" in text and "<b>云区</b>: 无法判定" in text  # tooltips


def test_undetermined_district_is_grey_and_dashed(zh_page: str) -> None:
    styler = re.search(r"function geo_json_\w+_styler\(feature\) \{(.*?)\n        \}",
                       zh_page, re.S).group(1)  # the first GeoJSON: the choropleth
    cases = dict(re.findall(r"(case \d+|default):\s*return (\{.*?\});", styler))
    assert json.loads(cases["case 0"])["fillColor"] == COVERAGE_COLOURS[2]  # 38.6 %: 30-40
    assert json.loads(cases["case 1"])["fillColor"] == COVERAGE_COLOURS[1]  # 23.4 %: 20-30
    grey = json.loads(cases.get("case 2", cases.get("default")))  # the cloudy district
    assert grey["fillColor"] == "#d9d9d9" and grey["dashArray"] == "4 3"


def test_parks_popups(zh_page: str) -> None:
    text = shown(zh_page)
    assert "<caption>人民公园</caption>" in text
    assert "<th>服务半径 (m)</th><td>500.0</td>" in text
    assert "<th>服务半径 (m)</th><td>面积过小，不计服务</td>" in text
    assert "<b>口袋公园</b> (0.0900 ha)" in text


def test_hostile_name_is_escaped(zh_page: str) -> None:
    text = shown(zh_page)
    assert HOSTILE not in zh_page and HOSTILE not in text
    assert "&lt;b&gt;&#123;&#123;x&#125;&#125;&lt;/b&gt;" in text
    assert "{{x}}" not in text


def test_english_labels(folder: Path) -> None:
    text = shown(offline_html(green_map(folder, lang="en", title="Demo town")))
    for part in ("Green space 2025", "Green change 2020–2025", "District green coverage",
                 "Districts (click for figures)", "Parks", "Park service area", "Urban boundary",
                 "Green coverage 38.4 %",
                 "green 12,346 mu (823 ha)", "New green 2,100 mu / target 3,200 mu (65.6 %)",
                 "park service coverage 72.3 %", "NDVI threshold 0.421 (Otsu, automatic)",
                 "<th>Green per person (m²/person)</th><td>—</td>", "<title>Demo town</title>",
                 "not green", "lost green", "30–40 % (1)", "undetermined (1)"):
        assert part in text, part
    assert not re.search(r"[\u4e00-\u9fff]", text.replace("东城片区", "").replace(
        "云区", "").replace("人民公园", "").replace("口袋公园", "").replace("示范城区", ""))


def test_unknown_language(folder: Path) -> None:
    with pytest.raises(SinkmapError, match="language"):
        green_map(folder, lang="fr")


# ------------------------------------------------------------------------------------------
# missing inputs and other runs


def test_without_change_and_parks(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "plain"
    shutil.copytree(folder, part)
    (part / "green_change.tif").unlink()
    (part / "parks.gpkg").unlink()
    summary = {**SUMMARY, "baseline_year": None, "new_green_mu": None, "lost_green_mu": None,
               "net_green_mu": None, "target_progress_pct": None, "park_service_pct": None}
    (part / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    page = offline_html(green_map(part, title="无基准年"))
    text = shown(page)
    assert len(overlay_pngs(page)) == 1
    assert "绿地变化" not in text and '"公园绿地"' not in text and "公园服务范围" not in text
    assert 'data-legend="change"' not in text
    assert "未设基准年，不计新增绿地（目标 3,200 亩）" in text
    assert "sinkmap-green-bar" not in text.split("</style>")[-1]
    assert "公园服务半径覆盖率 72.3" not in text
    assert "绿化覆盖率 38.4 %" in text
    assert external_references(page) == []


def test_landcover_mode_and_undetermined_run(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "lc"
    shutil.copytree(folder, part)
    summary = {**SUMMARY, "source": "landcover", "threshold": None, "threshold_method": None}
    (part / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    text = shown(offline_html(green_map(part)))
    assert "依据土地覆盖分类判定绿地" in text and "NDVI 阈值" not in text
    summary = {**SUMMARY, "status": "undetermined", "green_coverage_pct": None,
               "threshold": None, "threshold_method": None, "observed_pct": 3.0,
               "reason": "<i>too cloudy</i>: 3 % observed"}
    (part / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    text = shown(offline_html(green_map(part)))
    assert "绿化覆盖率：无法判定" in text
    assert "无法判定：&lt;i&gt;too cloudy&lt;/i&gt;: 3 % observed" in text
    assert "<i>too cloudy</i>" not in text


def test_vectors_only_and_empty_folder(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "vectors"
    part.mkdir()
    for name in ("districts.gpkg", "urban.gpkg"):
        shutil.copy(folder / name, part / name)
    text = shown(offline_html(green_map(part)))
    assert overlay_pngs(text) == []
    assert '"片区绿化覆盖率"' in text and "<title>城市绿地</title>" in text
    assert '"城区边界"' in text and '"公园绿地"' not in text
    assert "绿地 298 亩（20 ha）" in text  # summed over the districts without summary.json
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no green-space output"):
        green_map(empty)
    with pytest.raises(InputError, match="not a folder"):
        green_map(tmp_path / "nope")


# ------------------------------------------------------------------------------------------
# images


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def test_mask_and_change_images(folder: Path) -> None:
    page = offline_html(green_map(folder))
    mask, change = (decode_png(p) for p in overlay_pngs(page))
    assert mask[0, 0, 3] == 0 and mask[-1, -1, 3] == 0  # outside the boundary: transparent
    seen = {(tuple(int(v) for v in p[:3]), int(p[3])) for p in mask.reshape(-1, 4) if p[3]}
    assert seen == {(_rgb(c), 255) for _, c in MASK_CLASSES if c}
    seen = {(tuple(int(v) for v in p[:3]), int(p[3])) for p in change.reshape(-1, 4) if p[3]}
    assert seen == {(_rgb(c), 255) for _, c in CHANGE_CLASSES if c}  # others transparent


def test_images_respect_max_side(folder: Path) -> None:
    page = offline_html(green_map(folder, max_side=40))
    for png in overlay_pngs(page):
        assert max(png_size(png)) <= 45  # 40 after the block mode, +- the reprojection


def test_class_blocks_mode_counts_transparent_classes() -> None:
    g = GridSpec.create(CRS, Affine(RES, 0, 300000, 0, -RES, 3460000), (4, 6))
    raw = np.array([[0, 0, 2, 2, 255, 255],
                    [0, 2, 2, 1, 255, 1],
                    [3, 3, 1, 1, 4, 4],
                    [0, 3, 3, 3, 4, 2]], dtype=np.uint8)
    lut = np.zeros(256, dtype=np.uint8)
    for i, code in enumerate((2, 3, 1, 0, 4), start=1):  # new, lost, stable, non-green, undet.
        lut[code] = i
    da = make_raster(raw, g, nodata=255, units="class", kind="categorical", name="c",
                     chunks=None)
    out = class_blocks(da, lut, [1, 2, 3, 4, 5], max_side=3).values
    assert out.shape == (2, 3)
    # (0,0): 3 non-green, 1 new -> non-green (drawn transparent, so the new pixel is not
    # blown up); (0,1): 3 new; (0,2): outside but one stable; (1,0): 3 lost; (1,1): 2 stable,
    # 2 lost -> the tie goes to lost (first in the priority); (1,2): 3 undetermined
    assert out.tolist() == [[4, 1, 3], [2, 2, 5]]
