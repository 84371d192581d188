"""Print maps (maps.print_map) and shared styles (maps.styles): small synthetic data, hand checks.

The synthetic county is 30 km x 45 km (300 x 450 cells of 100 m, EPSG:4551) cut into three
vertical zones of 15 km each. Hand checks of the layout (A4 landscape, 8 mm margins, 15 mm title
band, 10 mm footer, 62 mm legend panel, 3 mm insets): the map frame is 210 x 163 mm; the data,
padded 4 %, span 46.8 x 31.2 km, so the scale must be at least 1:max(46,800 m / 0.210 m,
31,200 m / 0.163 m) = 1:222,857 -> the round 1:250,000. The scale bar may use 46 mm of the
panel = 11.5 km on the ground -> the round 10 km.
"""

from __future__ import annotations

import re
import time
import zlib
from pathlib import Path

import dask.array as dsa
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import maps.print_map as pm
from gis.errors import CRSError, InputError, OutputExistsError
from gis.grid import GridSpec, make_raster
from gis.resources import packaged
from maps.print_map import (
    nice_scale_denominator,
    nice_scale_length,
    print_map,
    sheet_size_px,
)
from maps.render import png_size
from maps.styles import (
    BRBG,
    CARBON_CHANGE,
    CARBON_DENSITY,
    GBT21010_COLOURS,
    ZONE_CHOROPLETH,
    landuse_style,
    symmetric_range,
    tick_labels,
)

X0, Y0, RES = 500_000.0, 4_700_000.0, 100.0
ROWS, COLS = 300, 450
TITLE = "梅河口市 碳密度（测试）"
SOURCE = "数据来源：合成测试数据"


@pytest.fixture
def grid() -> GridSpec:
    return GridSpec.from_bounds((X0, Y0, X0 + COLS * RES, Y0 + ROWS * RES), RES, "EPSG:4551")


@pytest.fixture
def density(grid):
    """Carbon density rising west to east, 0..180 t C/ha; a nodata corner (NaN)."""
    a = np.tile(np.linspace(0, 180, COLS, dtype=np.float32), (ROWS, 1))
    a[:40, :60] = np.nan
    return make_raster(a, grid, nodata=np.nan, units="tC_per_ha", kind="continuous",
                       name="density", chunks=128)


@pytest.fixture
def zones() -> gpd.GeoDataFrame:
    """Three 15 km wide vertical zones with Chinese names and a value each."""
    w = COLS * RES / 3
    polys = [shapely.box(X0 + i * w, Y0, X0 + (i + 1) * w, Y0 + ROWS * RES) for i in range(3)]
    return gpd.GeoDataFrame({"name_zh": ["甲镇", "乙镇", "丙镇"], "mean": [30.0, 90.0, 150.0]},
                            geometry=polys, crs="EPSG:4551")


def _outputs(tmp_path: Path, stem: str = "map") -> dict[str, Path]:
    return {"out_png": tmp_path / f"{stem}.png", "out_pdf": tmp_path / f"{stem}.pdf"}


def _pdf_unicode(pdf: bytes) -> set[int]:
    """Code points the PDF's ToUnicode maps name (its text, as a text extractor would see it)."""
    found: set[int] = set()
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            s = zlib.decompress(m.group(1))
        except zlib.error:
            continue
        if b"begincmap" not in s:
            continue
        for a, b, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*"
                                    rb"(\[[^\]]*\]|<[0-9a-fA-F]+>)", s):
            if dst.startswith(b"["):  # <first> <last> [<u1> <u2> ...]: one target per code
                found.update(int(h[:4], 16) for h in re.findall(rb"<([0-9a-fA-F]+)>", dst))
            else:  # <first> <last> <u>: consecutive targets from u
                first = int(dst[1:5], 16)
                found.update(range(first, first + int(b, 16) - int(a, 16) + 1))
    return found


# --------------------------------------------------------------------------------------------
# print maps


def test_density_map_png_and_pdf(tmp_path, density, zones):
    r = print_map(density, zones, title=TITLE, legend_title="碳密度 (t C/ha)",
                  style=CARBON_DENSITY, source_note=SOURCE, zone_label_column="name_zh",
                  **_outputs(tmp_path))
    # A4 landscape at 300 dpi: int(297 / 25.4 * 300) x int(210 / 25.4 * 300)
    assert r.orientation == "landscape"
    assert r.size_px == (3507, 2480) == sheet_size_px("landscape", 300)
    assert png_size(r.png.read_bytes()) == (3507, 2480)
    pdf = r.pdf.read_bytes()
    assert pdf.startswith(b"%PDF")
    if r.font == "Noto Sans CJK SC":  # Debian's fonts-noto-cjk: embedded (subset)
        assert b"NotoSansCJKsc" in pdf
    if r.font is not None:  # with a CJK font the title is real (extractable) text
        assert {ord(c) for c in TITLE if not c.isspace()} <= _pdf_unicode(pdf)
    # the web map's range rule on 0..180: 2nd..98th percentile rounded out, from 0
    assert r.value_range == (0.0, 180.0)
    # hand check in the module docstring
    assert r.scale_denominator == 250_000
    assert r.scale_bar_m == 10_000
    assert r.legend == ("分区界线", "研究区边界")
    assert not list(tmp_path.glob(".*partial*"))


def test_png_size_follows_dpi_and_orientation(tmp_path, grid):
    """A tall raster prints portrait; at 100 dpi A4 is int(210/25.4*100) x int(297/25.4*100)."""
    tall = GridSpec.from_bounds((X0, Y0, X0 + ROWS * RES, Y0 + COLS * RES), RES, "EPSG:4551")
    da = make_raster(np.ones((COLS, ROWS), np.float32), tall, nodata=np.nan,
                     units="tC_per_ha", kind="continuous", name="tall")
    r = print_map(da, None, title="Tall", legend_title="t C/ha", style=CARBON_DENSITY,
                  source_note="", dpi=100, lang="en", **_outputs(tmp_path))
    assert r.orientation == "portrait"
    assert png_size(r.png.read_bytes()) == (826, 1169) == r.size_px


def test_landuse_map_legend_lists_present_classes(tmp_path, grid, zones):
    codes = np.array([301, 103, 101, 1101, 702], dtype=np.uint16)
    a = codes[(np.arange(COLS) * len(codes)) // COLS][None, :].repeat(ROWS, axis=0)
    a[:10, :10] = 0
    lc = make_raster(a, grid, nodata=0, units="class", kind="categorical", name="lc")
    # zones in lon/lat are reprojected to the raster's CRS for display
    r = print_map(lc, zones.to_crs("EPSG:4326"), title="土地利用现状", legend_title="土地利用类型",
                  style=landuse_style(), source_note=SOURCE, dpi=100, **_outputs(tmp_path))
    # in the style's (三调 table) order, then the lines
    assert r.legend == ("0101 水田", "0103 旱地", "0301 乔木林地", "0702 农村宅基地",
                        "1101 河流水面", "分区界线", "研究区边界")
    assert r.value_range is None
    r_en = print_map(lc, None, title="Land use", legend_title="Land use",
                     style=landuse_style(), source_note="", dpi=100, lang="en",
                     **_outputs(tmp_path, "en"))
    assert r_en.legend[0] == "0101 Paddy field"


def test_zone_choropleth_without_raster(tmp_path, zones):
    z = zones.to_crs("EPSG:4326")  # geographic: projected on purpose (Gauss-Kruger CM 126E)
    z.loc[1, "mean"] = np.nan
    r = print_map(None, z, title="各乡镇平均碳密度", legend_title="平均碳密度 (t C/ha)",
                  style=ZONE_CHOROPLETH, source_note=SOURCE, zone_column="mean",
                  zone_label_column="name_zh", dpi=100, **_outputs(tmp_path))
    # the web map's zone rule: min..max = 30..150; 30 < 0.25 x 150 so from 0; step 150/10 -> 20
    assert r.value_range == (0.0, 160.0)
    assert r.legend == ("无数据", "分区界线", "研究区边界")
    assert r.image_shape is None
    assert r.scale_denominator == 250_000  # same extent as the raster maps


def test_change_map_is_symmetric_about_zero(tmp_path, grid):
    a = np.zeros((ROWS, COLS), np.float32)
    a[:, :50] = -12.0   # loss
    a[:, -30:] = 7.0    # gain
    da = make_raster(a, grid, nodata=np.nan, units="tC_per_ha", kind="continuous", name="chg")
    r = print_map(da, None, title="变化", legend_title="碳密度变化 (t C/ha)",
                  style=CARBON_CHANGE, source_note="", dpi=100, **_outputs(tmp_path))
    # 98th percentile of |changed cells| (50 columns of 12, 30 of 7) = 12; nice step for 12/5
    # = 2.4 is 2.5; 12 rounded up to it: 12.5. Unchanged cells do not shrink the range.
    assert r.value_range == (-12.5, 12.5)


def test_scale_numbers_are_round():
    assert nice_scale_denominator(222_857) == 250_000
    assert nice_scale_denominator(250_000) == 250_000
    assert nice_scale_denominator(510_000) == 600_000
    assert nice_scale_denominator(81_000) == 100_000
    assert nice_scale_length(11_500) == 10_000
    assert nice_scale_length(4_900) == 2_000
    assert nice_scale_length(999) == 500
    for d in (1_234, 56_789, 987_654):
        length = nice_scale_length(d)
        assert length <= d and f"{length:e}"[0] in "125"


def test_refuses_to_overwrite(tmp_path, density):
    kw = dict(title=TITLE, legend_title="t C/ha", style=CARBON_DENSITY, source_note="", dpi=60,
              **_outputs(tmp_path))
    r = print_map(density, None, **kw)
    before = (r.png.stat().st_mtime_ns, r.pdf.stat().st_mtime_ns)
    first = (r.png.read_bytes(), r.pdf.read_bytes())
    with pytest.raises(OutputExistsError):
        print_map(density, None, **kw)
    assert (r.png.stat().st_mtime_ns, r.pdf.stat().st_mtime_ns) == before
    # only the PDF exists: still refused, and no PNG is written
    r.png.unlink()
    with pytest.raises(OutputExistsError):
        print_map(density, None, **kw)
    assert not r.png.exists()
    print_map(density, None, overwrite=True, **kw)
    # deterministic: no dates in either file, so a rerun reproduces them byte for byte
    assert (r.png.read_bytes(), r.pdf.read_bytes()) == first


def test_bad_inputs_are_errors(tmp_path, density, zones):
    kw = dict(title="t", legend_title="t", source_note="", dpi=60, **_outputs(tmp_path))
    with pytest.raises(InputError, match="continuous"):
        print_map(density, None, style=landuse_style(), **kw)
    geo = density.rio.write_crs("EPSG:4490")
    with pytest.raises(CRSError, match="projected"):
        print_map(geo, None, style=CARBON_DENSITY, **kw)
    with pytest.raises(InputError, match="no column 'nope'"):
        print_map(None, zones, style=ZONE_CHOROPLETH, zone_column="nope", **kw)
    with pytest.raises(InputError, match="nothing to draw"):
        print_map(None, None, style=CARBON_DENSITY, **kw)
    assert not list(tmp_path.iterdir())


def test_no_cjk_font_warns_and_still_draws(tmp_path, density, monkeypatch):
    monkeypatch.setattr(pm, "CJK_FAMILIES", ("No Such Font SC",))
    monkeypatch.setattr(pm, "_CJK_FILE", re.compile(r"^$"))
    pm.find_cjk_font.cache_clear()
    try:
        with pytest.warns(UserWarning, match="no CJK font"):
            r = print_map(density, None, title=TITLE, legend_title="t C/ha",
                          style=CARBON_DENSITY, source_note="", dpi=60, **_outputs(tmp_path))
        assert r.font is None and r.png.exists() and r.pdf.read_bytes().startswith(b"%PDF")
    finally:
        pm.find_cjk_font.cache_clear()


def test_dask_raster_is_reduced_blockwise_to_budget(grid):
    """Block means: 300 x 450 cells to <= 150 x 225 = 33,750 pixels averages 2 x 2 blocks."""
    a = np.arange(ROWS * COLS, dtype=np.float32).reshape(ROWS, COLS)
    da = make_raster(dsa.from_array(a, chunks=100), grid, nodata=np.nan, units="x",
                     kind="continuous", name="a", chunks=None)
    img = pm._downsample(da, max_pixels=150 * 225, categorical=False)
    assert img.values.shape == (150, 225)
    expected = a.reshape(150, 2, 225, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(img.values, expected, rtol=1e-6)
    assert img.extent == (X0, X0 + COLS * RES, Y0, Y0 + ROWS * RES)
    # classes: the modal class survives, never an average of codes
    codes = np.where(np.arange(COLS) < 225, 301, 103).astype(np.uint16)[None, :].repeat(ROWS, 0)
    lc = make_raster(codes, grid, nodata=0, units="class", kind="categorical", name="lc")
    img = pm._downsample(lc, max_pixels=10_000, categorical=True)
    assert img.values.size <= 10_000
    assert set(np.unique(img.values[img.valid]).tolist()) == {103, 301}


@pytest.mark.slow
def test_3000_by_2000_raster_prints_in_seconds(tmp_path):
    g = GridSpec.from_bounds((510_000, 4_710_000, 600_000, 4_770_000), 30, "EPSG:4551")
    rng = np.random.default_rng(0)
    data = dsa.from_array(rng.random((2000, 3000), dtype=np.float32) * 150, chunks=1024)
    da = make_raster(data, g, nodata=np.nan, units="tC_per_ha", kind="continuous",
                     name="big", chunks=None)
    t = time.perf_counter()
    r = print_map(da, None, title=TITLE, legend_title="碳密度 (t C/ha)", style=CARBON_DENSITY,
                  source_note=SOURCE, **_outputs(tmp_path))
    seconds = time.perf_counter() - t
    assert r.image_shape[0] * r.image_shape[1] <= 4_000_000
    assert seconds < 20, f"{seconds:.1f} s"  # ~3-5 s on the 2-core CI machine


# --------------------------------------------------------------------------------------------
# styles


def _rgb(h: str) -> tuple[int, int, int]:
    return int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)


def test_every_sandiao_class_has_a_colour_in_its_family():
    table = pd.read_csv(packaged("tables", "landuse_gbt21010.csv"))
    style = landuse_style("gbt21010")
    colours = style.colour_map()
    assert set(table["code"]) == set(colours)
    for code in table["code"]:
        assert re.fullmatch(r"#[0-9a-f]{6}", colours[code]), code
    # distinct colours for the classes of the table
    assert len({colours[c] for c in table["code"]}) == len(table)
    by_group = table.groupby("level1_zh")["code"].apply(list).to_dict()
    for code in by_group["耕地"]:                     # yellows: red and green high, blue low
        r, g, b = _rgb(colours[code])
        assert r > 200 and g > 180 and b < r - 40, code
    for code in by_group["林地"]:                     # greens
        r, g, b = _rgb(colours[code])
        assert g > r and g > b, code
    for code in (1101, 1102, 1103, 1104, 1107):       # water: blues
        r, g, b = _rgb(colours[code])
        assert b > r and b > g, code
    for code in (601, 701, 702):                      # built-up: reds
        r, g, b = _rgb(colours[code])
        assert r > g + 40 and r > b + 40, code
    for code in (1001, 1003, 1004, 1006):             # transport: greys
        r, g, b = _rgb(colours[code])
        assert max(r, g, b) - min(r, g, b) < 10, code
    # labels carry the 4-digit 三调 code
    assert style.class_for(301).label("zh") == "0301 乔木林地"
    assert style.class_for(9999).colour == "#ff00ff"
    assert set(GBT21010_COLOURS) >= set(colours)


def test_diverging_stops_pin_zero_to_the_neutral_colour():
    assert CARBON_CHANGE.stop_values(-10, 10)[5] == 0.0
    assert CARBON_CHANGE.stop_values(-10, 20) == [-10, -8, -6, -4, -2, 0, 4, 8, 12, 16, 20]
    assert CARBON_CHANGE.colour_at(0.0, -10, 20) == BRBG.stops[5]
    assert symmetric_range(np.array([0, 0, 0, -3.2, 4.9])) == (-5.0, 5.0)
    assert symmetric_range(np.zeros(5)) == (-1.0, 1.0)


def test_tick_labels_share_decimals():
    assert tick_labels([0, 25, 50]) == ["0", "25", "50"]
    assert tick_labels([0, 2.5, 5]) == ["0.0", "2.5", "5.0"]
    assert tick_labels([-1500, 0, 1500]) == ["-1,500", "0", "1,500"]


def test_module_is_headless():
    """Drawing never touches pyplot (no GUI backend, no global figure state)."""
    assert "pyplot" not in Path(pm.__file__).read_text(encoding="utf-8")
