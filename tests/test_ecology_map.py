"""maps.ecology_map: the ecological-protection pattern map of an ecology output folder.

The folder is synthetic, written exactly as the ecology outputs contract says (rasters on one
30 m grid in EPSG:4551 near Meihekou, GeoPackages in the same CRS, summary.json): five candidate
cores, four selected; six core pairs, two selected corridors, one pair unreachable (NULL
geometry); two pinch points; an empty barrier layer; four zones, one with a hostile name.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from pyproj import Transformer

from gis.errors import InputError, SinkmapError
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from layers.mspa import BRIDGE_EDGE, CORE_OPENING, MISSING
from maps.carbon_map import save_map
from maps.ecology_map import (
    MSPA_CLASSES,
    MSPA_LUT,
    _log_current,
    ecology_map,
    mspa_classes,
)
from maps.offline import external_references, offline_html
from maps.render import decode_png, png_size

H, W, RES = 120, 160, 30.0
CRS = "EPSG:4551"
HOSTILE = "<b>{{7*7}}</b>"
XSS = "<img src=x onerror=alert(1)>"
# selected cores (core_id: rank), candidate 5 not selected; pair (1, 3) unreachable
RANKS = {1: 2, 2: 1, 3: 3, 4: 4, 5: 5}


def _grid() -> GridSpec:
    x0, y0 = Transformer.from_crs(4326, 4551, always_xy=True).transform(125.7, 42.5)
    return GridSpec.create(CRS, Affine(RES, 0, round(x0), 0, -RES, round(y0)), (H, W))


def _xy(row: float, col: float) -> tuple[float, float]:
    t = _grid().transform
    return t.c + col * RES, t.f - row * RES


def _box(r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    x0, y0 = _xy(r1, c0)
    x1, y1 = _xy(r0, c1)
    return shapely.box(x0, y0, x1, y1)


CORE_BOXES = {1: (10, 10, 40, 40), 2: (10, 110, 40, 150), 3: (80, 10, 110, 40),
              4: (80, 110, 110, 150), 5: (55, 70, 65, 80)}


def _mspa_bytes() -> np.ndarray:
    a = np.zeros((H, W), dtype=np.uint8)  # background
    for r0, c0, r1, c1 in CORE_BOXES.values():
        a[r0:r1, c0:c1] = 3                 # edge ring
        a[r0 + 1:r1 - 1, c0 + 1:c1 - 1] = 17  # core
    a[20:24, 20:24] = 5                     # perforation ring around a core opening
    a[21:23, 21:23] = CORE_OPENING
    a[25:30, 25:30] = 117                   # internal core
    a[24:26, 40:110] = 33                   # a bridge between cores 1 and 2
    a[24:26, 39] = BRIDGE_EDGE              # transition pixels
    a[50:52, 90:100] = 65                   # a loop
    a[95:97, 40:60] = 1                     # a branch
    a[60:63, 120:123] = 9                   # an islet
    a[:6, :8] = MISSING                     # missing corner
    return a


def _current() -> np.ndarray:
    rng = np.random.default_rng(6)
    c = rng.lognormal(mean=-4.0, sigma=1.5, size=(H, W)).astype(np.float32)
    c[24:26, 40:110] = 5.0                  # the corridor carries the current
    c[24:26, 70:72] = 40.0                  # a pinch point
    c[60:70, 0:10] = 0.0                    # no current
    c[100:, 60:80] = np.nan                 # barrier / outside
    return c


def _path(a: int, b: int) -> shapely.LineString:
    ra0, ca0, ra1, ca1 = CORE_BOXES[a]
    rb0, cb0, rb1, cb1 = CORE_BOXES[b]
    return shapely.LineString([_xy((ra0 + ra1) / 2, (ca0 + ca1) / 2),
                               _xy((rb0 + rb1) / 2, (cb0 + cb1) / 2)])


def write_folder(out: Path, *, zone_name: str = HOSTILE) -> Path:
    """An ecology output folder as the contract specifies."""
    out.mkdir(parents=True, exist_ok=True)
    g = _grid()
    write_cog(make_raster(_mspa_bytes(), g, nodata=MISSING, units="class", kind="categorical",
                          name="mspa", chunks=64), out / "mspa.tif")
    res = np.full((H, W), 10.0, dtype=np.float32)
    res[100:, 60:80] = np.nan
    write_cog(make_raster(res, g, nodata=np.nan, units="relative", kind="continuous",
                          name="resistance", chunks=64), out / "resistance.tif")
    write_cog(make_raster(_current(), g, nodata=np.nan, units="A", kind="continuous",
                          name="current", chunks=64), out / "current.tif")

    ids = list(CORE_BOXES)
    cores = gpd.GeoDataFrame({
        "core_id": ids, "rank": [RANKS[i] for i in ids],
        "selected": [RANKS[i] <= 4 for i in ids],
        "area_ha": [81.0, 108.0, 81.0, 108.0, 9.0],
        "dPC": [30.5, 41.25, 12.0, 9.5, 0.75], "dPC_intra": [20.0, 30.0, 8.0, 6.0, 0.5],
        "dPC_flux": [8.0, 9.0, 3.0, 3.0, 0.2], "dPC_connector": [2.5, 2.25, 1.0, 0.5, 0.05],
        "dIIC": [28.0, 39.0, 11.0, 9.0, 0.7]},
        geometry=[_box(*CORE_BOXES[i]) for i in ids], crs=CRS)
    cores.to_file(out / "cores.gpkg", layer="cores")

    pairs = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    reachable = [p != (1, 3) for p in pairs]
    selected = [p in ((1, 2), (2, 4)) for p in pairs]
    rank = pd.array([1, None, 3, 4, 2, 5], dtype="Int64")
    geoms = [_path(a, b) if ok else None for (a, b), ok in zip(pairs, reachable, strict=True)]
    length = [g.length if g is not None else np.nan for g in geoms]
    paths = gpd.GeoDataFrame({
        "core_a": [a for a, _ in pairs], "core_b": [b for _, b in pairs],
        "reachable": reachable,
        "cost": [ln * 10 if ok else np.nan for ln, ok in zip(length, reachable, strict=True)],
        "length_m": length, "euclid_m": length,
        "cw_to_euc_dist_ratio": [10.0 if ok else np.nan for ok in reachable],
        "cwd_to_path_length_ratio": [10.0 if ok else np.nan for ok in reachable],
        "rank": rank, "selected": selected}, geometry=geoms, crs=CRS)
    paths.to_file(out / "corridors.gpkg", layer="paths")
    chosen = paths[paths["selected"]].sort_values("rank")
    corridors = gpd.GeoDataFrame({
        "corridor_id": [1, 2], "core_a": chosen["core_a"].to_numpy(),
        "core_b": chosen["core_b"].to_numpy(), "rank": [1, 2],
        "cost": chosen["cost"].to_numpy(), "length_m": chosen["length_m"].to_numpy(),
        "threshold_cwm": [1500.0, 1500.0], "area_ha": [120.0, 95.5]},
        geometry=chosen.geometry.buffer(150).to_numpy(), crs=CRS)
    corridors.to_file(out / "corridors.gpkg", layer="corridors", mode="a")

    pinch = gpd.GeoDataFrame({
        "pinch_id": [1, 2], "corridor_id": [1, 2], "area_ha": [0.36, 0.72],
        "max_current_A": [40.0, 12.5], "mean_current_A": [21.0, 6.25]},
        geometry=[_box(23, 70, 27, 73), _box(60, 128, 63, 131)], crs=CRS)
    pinch.to_file(out / "pinchpoints.gpkg", layer="pinchpoints")
    barriers = gpd.GeoDataFrame({
        "barrier_id": pd.Series([], dtype="int64"), "corridor_id": pd.Series([], dtype="int64"),
        "radius_m": pd.Series([], dtype="float64"),
        "improvement_cwm": pd.Series([], dtype="float64"),
        "improvement_pct": pd.Series([], dtype="float64"),
        "area_ha": pd.Series([], dtype="float64")}, geometry=[], crs=CRS)
    barriers.to_file(out / "barriers.gpkg", layer="barriers")

    zones = gpd.GeoDataFrame({
        "zone": ["Z1", "Z2", "Z3", "Z4"], "name": [zone_name, "廊道区", "缓冲区", "其他"],
        "kind": ["core", "corridor", "buffer", "other"],
        "area_ha": [1200.0, 800.0, 2500.5, 12000.0],
        "stock_tC": [123456.7, 45678.9, 98765.4, 234567.8],
        "stock_tCO2e": [452674.6, 167489.3, 362139.8, 860082.6],
        "mean_density_tC_per_ha": [np.nan] * 4},
        geometry=[_box(5, 5, 45, 45), _box(20, 45, 30, 105), _box(45, 5, 115, 60),
                  _box(45, 60, 115, 155)], crs=CRS)
    zones.to_file(out / "zones.gpkg", layer="zones")

    pd.DataFrame({"zone": ["Z1"], "class": [1], "class_name": ["林地"], "pland_pct": [50.0],
                  "n_patches": [3], "lpi_pct": [20.0], "edge_m": [1200.0],
                  "edge_density_m_per_ha": [1.0]}).to_csv(out / "landscape_metrics.csv",
                                                          index=False, encoding="utf-8-sig")
    summary = {
        "n_cores_found": 5, "n_cores_selected": 4, "n_corridors": 2, "n_pinchpoints": 2,
        "n_barriers": 0,
        "mspa": {"core": {"pct": 75.09, "objects": 5}, "islet": {"pct": 0.12, "objects": 1},
                 "perforation": {"pct": 0.5, "objects": 1}, "edge": {"pct": 19.2, "objects": 5},
                 "loop": {"pct": 0.3, "objects": 1}, "bridge": {"pct": 2.1, "objects": 1},
                 "branch": {"pct": 0.6, "objects": 1}},
        "unreachable_pairs": [[1, 3]],
        "settings": {"n_cores": 4, "n_corridors": 2}}
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False), encoding="utf-8")
    return out


def townships() -> gpd.GeoDataFrame:
    left, bottom, right, top = _grid().bounds
    mid = (left + right) / 2
    return gpd.GeoDataFrame({"name": ["山城镇", XSS]},
                            geometry=[shapely.box(left, bottom, mid, top),
                                      shapely.box(mid, bottom, right, top)], crs=CRS)


def shown(page: str) -> str:
    """The page with JavaScript string escapes undone (tojson writes CJK and < as \\uXXXX)."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return text.replace('\\"', '"').replace("\\/", "/")


def overlay_pngs(page: str) -> list[bytes]:
    import base64

    return [base64.b64decode(m.group(1)) for m in re.finditer(
        r"L\.imageOverlay\(\s*\"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_folder(tmp_path_factory.mktemp("ecology") / "ecology")


@pytest.fixture(scope="module")
def zh_page(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    m = ecology_map(folder, townships(), title="梅河口市生态保护格局图",
                    source_note="数据来源：合成测试数据")
    path = save_map(m, tmp_path_factory.mktemp("page") / "ecology.html")
    return path.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# the page


def test_layers_are_listed_and_page_is_offline(zh_page: str) -> None:
    text = shown(zh_page)
    for name in ("MSPA 景观格局", "累积电流（连通性）", "生态保护分区", "候选生态源地",
                 "生态源地（入选）", "生态廊道", "最小成本路径（入选廊道）",
                 "最小成本路径（其他源地对）", "生态夹点", "乡镇边界"):
        assert f'"{name}"' in text, name  # a layer-control entry
    assert "生态障碍点\"" not in text  # the barrier layer is empty: no layer
    assert len(overlay_pngs(zh_page)) == 2  # MSPA and current
    assert "L.control.layers(" in zh_page and "L.control.scale()" in zh_page
    assert "L.tileLayer(" not in zh_page
    assert external_references(zh_page) == []
    assert "<title>梅河口市生态保护格局图</title>" in zh_page
    assert "数据来源：合成测试数据" in text


def test_current_is_off_and_mspa_on_by_default(zh_page: str) -> None:
    names = re.findall(r"var (image_overlay_\w+) = L\.imageOverlay", zh_page)
    assert len(names) == 2
    mspa, current = names
    assert f"{mspa}.addTo(" in zh_page
    assert f"{current}.addTo(" not in zh_page  # listed in the control, not shown


def test_selected_cores_have_rank_labels(zh_page: str) -> None:
    text = shown(zh_page)
    labels = re.findall(r'<div class="sinkmap-eco-rank">([^<]*)</div>', text)
    assert sorted(labels) == ["1", "2", "3", "4"]  # candidate 5 is not labelled
    # the popup of the top core: rank, area, dPC and its parts
    assert "<caption>生态源地 2</caption><tr><th>排名</th><td><b>1</b></td>" in text
    for part in ("dPC (%)", "dPC 内部 (%)", "dPC 通量 (%)", "dPC 连接 (%)", "dIIC (%)"):
        assert part in text
    assert "<td>41.25</td>" in text and "<td>108.0</td>" in text


def test_hostile_names_are_escaped(zh_page: str) -> None:
    text = shown(zh_page)
    for raw in (HOSTILE, XSS):
        assert raw not in zh_page and raw not in text
    assert "&lt;b&gt;&#123;&#123;7*7&#125;&#125;&lt;/b&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # township tooltip
    assert "<b>49</b>" not in text


def test_unreachable_pair_is_skipped_and_named(zh_page: str) -> None:
    text = shown(zh_page)
    for a, b in ((1, 2), (2, 4), (1, 4), (2, 3), (3, 4)):
        assert f"最小成本路径 {a}–{b}" in text
    assert "最小成本路径 1–3" not in text
    assert "1 对源地之间无可达路径：1–3" in text


def test_headline_counts(zh_page: str) -> None:
    text = shown(zh_page)
    assert "生态源地 4 处（候选 5 处）" in text
    assert "生态廊道 2 条 · 生态夹点 2 处 · 生态障碍点 0 处" in text


def test_legend_has_mspa_classes_zones_and_symbols(zh_page: str) -> None:
    text = shown(zh_page)
    mspa = re.search(r'data-legend="mspa">(.*?)</div></div>(?:<div class="sinkmap-legend-title|")',
                     text).group(1)
    for label in ("核心区 75.1 %", "孤岛 0.1 %", "孔隙 0.5 %", "边缘区 19.2 %", "环道区 0.3 %",
                  "桥接区 2.1 %", "支线 0.6 %", "背景"):
        assert label in mspa, label
    colours = dict((k, c) for k, c, _ in MSPA_CLASSES)
    for key in ("core", "islet", "perforation", "edge", "loop", "bridge", "branch"):
        assert f"background:{colours[key]}" in mspa
    zones = re.search(r'data-legend="zones">(.*?)</div></div>', text).group(1)
    for label in ("生态核心区", "生态廊道区", "生态缓冲区", "其他区域"):
        assert label in zones
    symbols = re.search(r'data-legend="symbols">(.*?)</div></div>', text).group(1)
    for label in ("生态源地（入选，数字为排名）", "候选生态源地", "最小成本路径（入选）",
                  "生态夹点", "乡镇边界"):
        assert label in symbols
    assert "累积电流 (A，对数色阶)" in text


def test_popups_of_zones_paths_and_pinch_points(zh_page: str) -> None:
    text = shown(zh_page)
    assert "<th>碳储量 (t C)</th><td>123,457</td>" in text
    assert "<th>平均碳密度 (t C/ha)</th><td>无数据</td>" in text  # NaN density
    assert "<th>最大电流 (A)</th><td>40.00</td>" in text
    assert "<th>成本距离 / 直线距离</th><td>10.00</td>" in text
    assert "廊道宽度阈值 (成本加权 m)" in text


def test_page_size_and_image_sizes(zh_page: str) -> None:
    assert len(zh_page.encode("utf-8")) < 1_500_000
    for png in overlay_pngs(zh_page):
        w, h = png_size(png)
        assert max(w, h) <= 1500


def test_english_labels(folder: Path) -> None:
    text = shown(offline_html(ecology_map(folder, lang="en", title="Ecological pattern")))
    for name in ("MSPA pattern", "Selected cores", "Least-cost paths (selected corridors)",
                 "Cores: 4 selected of 5 found", "1 core pair(s) without a path: 1–3",
                 "Cumulative current (A, log scale)"):
        assert name in text, name
    assert "生态" not in text and "核心区" not in text  # no Chinese labels


def test_unknown_language(folder: Path) -> None:
    with pytest.raises(SinkmapError, match="language"):
        ecology_map(folder, lang="fr", title="x")


# ------------------------------------------------------------------------------------------
# missing and empty inputs


def test_missing_optional_files_are_left_out(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "partial"
    shutil.copytree(folder, part)
    for name in ("current.tif", "pinchpoints.gpkg", "barriers.gpkg", "summary.json"):
        (part / name).unlink()
    page = offline_html(ecology_map(part, title="部分输出"))
    text = shown(page)
    assert len(overlay_pngs(page)) == 1  # MSPA only
    assert "累积电流" not in text and '"生态夹点"' not in text
    # counts come from the layers when summary.json is missing; no unreachable note
    assert "生态源地 4 处（候选 5 处）" in text
    assert "生态廊道 2 条 · 生态夹点 0 处 · 生态障碍点 0 处" in text
    assert "无可达路径" not in text
    assert "核心区 75.1 %" not in text and "核心区</span>" in text  # no percentages


def test_vectors_only_and_empty_folder(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "vectors"
    part.mkdir()
    for name in ("cores.gpkg", "zones.gpkg"):
        shutil.copy(folder / name, part / name)
    text = shown(offline_html(ecology_map(part, title="仅矢量")))
    assert "MSPA" not in text and len(overlay_pngs(text)) == 0
    assert '"生态源地（入选）"' in text
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no ecology output"):
        ecology_map(empty, title="x")
    with pytest.raises(InputError, match="not a folder"):
        ecology_map(tmp_path / "nope", title="x")


def test_all_missing_mspa_and_zero_current_are_skipped(folder: Path, tmp_path: Path) -> None:
    part = tmp_path / "blank"
    shutil.copytree(folder, part)
    g = _grid()
    for name in ("mspa.tif", "current.tif"):
        (part / name).unlink()
    write_cog(make_raster(np.full((H, W), MISSING, np.uint8), g, nodata=MISSING, units="class",
                          kind="categorical", name="mspa"), part / "mspa.tif")
    write_cog(make_raster(np.zeros((H, W), np.float32), g, nodata=np.nan, units="A",
                          kind="continuous", name="current"), part / "current.tif")
    page = offline_html(ecology_map(part, title="x"))
    assert overlay_pngs(page) == []
    assert '"生态源地（入选）"' in shown(page)


# ------------------------------------------------------------------------------------------
# rasters


def test_mspa_image_colours_and_transparency(folder: Path) -> None:
    page = offline_html(ecology_map(folder, title="x", max_side=160))
    rgba = decode_png(overlay_pngs(page)[0])
    assert rgba[0, 0, 3] == 0  # the missing corner is transparent
    colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for _, c, _ in MSPA_CLASSES[:7]}
    opaque = {tuple(int(v) for v in p[:3]) for p in rgba.reshape(-1, 4) if p[3] == 255}
    assert opaque == colours  # the seven foreground classes, nothing else opaque
    grey = {tuple(int(v) for v in p[:3]) for p in rgba.reshape(-1, 4) if 0 < p[3] < 255}
    assert grey == {(0xDC,) * 3, (0xC4,) * 3}  # background and the core opening, see-through


def test_mspa_block_mode_prefers_thin_classes() -> None:
    a = np.zeros((8, 8), dtype=np.uint8)
    a[0:4, 0:4] = 17
    a[0, 0:3] = 33                       # 3 bridge px in 16: core wins the block
    a[0:4, 4:8] = 17
    a[0:2, 4:8] = 3                      # 8 edge, 8 core: the tie goes to edge
    a[4:8, 0:4] = MISSING                # all missing: missing
    a[4:8, 4:8] = MISSING
    a[7, 7] = BRIDGE_EDGE                # one valid pixel: it wins (a transition = bridge)
    g = GridSpec.create(CRS, Affine(30, 0, 500_000, 0, -30, 4_700_000), (8, 8))
    small = mspa_classes(make_raster(a, g, nodata=MISSING, units="class", kind="categorical",
                                     chunks=None), max_side=2)
    idx = {k: i for i, (k, _, _) in enumerate(MSPA_CLASSES, start=1)}
    assert small.shape == (2, 2)
    assert small.values.tolist() == [[idx["core"], idx["edge"]], [0, idx["bridge"]]]
    assert small.rio.transform().a == 120.0
    assert MSPA_LUT[MISSING] == 0 and MSPA_LUT[CORE_OPENING] == idx["core_opening"]


def test_mspa_long_side_is_capped(folder: Path) -> None:
    page = offline_html(ecology_map(folder, title="x", max_side=40))
    for png in overlay_pngs(page):
        w, h = png_size(png)
        assert max(w, h) <= 42 and min(w, h) >= 20


def test_current_is_log_scaled(folder: Path) -> None:
    v = np.array([[np.nan, 0.0, 1e-4], [1e-3, 1e-2, 1e2]])
    scaled = _log_current(v)
    assert scaled is not None
    out, (lo, hi) = scaled
    assert np.isnan(out[0, 0])
    assert out[0, 1] == pytest.approx(np.log10(lo))  # 0 A: the low end, not transparent
    assert lo == pytest.approx(np.percentile([1e-4, 1e-3, 1e-2, 1e2], 2))
    assert out[1, 2] == pytest.approx(np.log10(hi))
    assert _log_current(np.zeros((2, 2))) is None
    page = offline_html(ecology_map(folder, title="x", max_side=160))
    ticks = re.search(r'class="sinkmap-legend-ticks"[^>]*>(.*?)</div>', shown(page)).group(1)
    labels = re.findall(r">([^<]+)</span>", ticks)
    assert len(labels) >= 3 and "1" in labels  # decades, labelled in amperes
    rgba = decode_png(overlay_pngs(page)[1])
    assert (rgba[..., 3] == 0).any() and (rgba[..., 3] == 255).any()  # NaN cells transparent
