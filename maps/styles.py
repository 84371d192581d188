"""Shared style definitions for sinkmap's maps: colour ramps per layer type and land-use colours.

One :class:`Style` describes how a layer is coloured, wherever it is drawn: the Folium web map
(:mod:`maps.carbon_map`), the print maps (:mod:`maps.print_map`) and the QGIS side-car styles
(:mod:`maps.qgis_style`), so a density map looks the same in the browser, on paper and in QGIS.

* ``continuous`` styles use a sequential :class:`maps.render.ColourRamp` (the web map's
  ColorBrewer ``YlGn`` for carbon density, ``YlOrBr`` for zone choropleths);
* ``diverging`` styles use a ramp whose middle stop is zero (ColorBrewer ``BrBG``: brown for
  carbon loss / emission, blue-green for gain / removal; sink sign as in the README, removal
  positive), with a range symmetric about zero;
* ``categorical`` styles give each class code a colour and a Chinese and English label: the
  三调 / GB/T 21010-2017 land-use classes (:func:`landuse_style`), following the national
  land-use map colour conventions (see :data:`GBT21010_COLOURS`).

No matplotlib here: colours are ``#rrggbb`` strings that every consumer converts itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd

from gis.errors import InputError, SinkmapError
from gis.resources import packaged
from maps.render import YLGN, YLORBR, ColourRamp, _nice_step, nice_range

StyleKind = Literal["continuous", "diverging", "categorical"]

# ColorBrewer 11-class diverging BrBG (Cynthia Brewer, colorbrewer2.org; colour-blind safe and
# print friendly): brown = loss, neutral grey-white = no change (the 6th stop, at zero),
# blue-green = gain.
BRBG = ColourRamp("BrBG", ("#543005", "#8c510a", "#bf812d", "#dfc27d", "#f6e8c3", "#f5f5f5",
                           "#c7eae5", "#80cdc1", "#35978f", "#01665e", "#003c30"))

UNKNOWN_CLASS_COLOUR = "#ff00ff"  # a code the style does not know: deliberately loud

# --------------------------------------------------------------------------------------------
# 三调 (GB/T 21010-2017, 第三次全国国土调查工作分类) land-use colours
#
# Where the colours come from. Chinese land-use status maps (土地利用现状图) colour the land
# classes by a long-standing convention, set out in the symbol specifications of the land
# surveys: 《第二次全国土地调查技术规程》TD/T 1014-2007 (附录: 土地利用现状图图式) and
# 《第三次全国国土调查技术规程》TD/T 1055-2019 (土地利用现状图 图示), carried into the
# 《土地利用数据库标准》TD/T 1016: 耕地 in yellows (水田 the strongest, 旱地 the palest),
# 园地 in light orange, 林地 in greens (乔木林地 darkest), 草地 in yellow-greens, 湿地 in
# blue-greens, 城镇村及工矿 / 建设用地 in reds and pinks (工矿 brownish red), 交通运输用地 in greys,
# 水域 in blues, 其他土地 in light greys and sand colours.
#
# The three 耕地 colours are the RGB values of a published 三调 style implementation (MapGIS
# WebClient "三调样式" template, cesium/docs/template/guotu.md: 0101 水田 248,208,114; 0102
# 水浇地 248,231,28; 0103 旱地 255,251,177). The printed RGB/CMYK tables of the standards could not
# be checked when this was written, so every other value is sinkmap's choice *within the
# conventional hue family of its 一级类*, tuned so that neighbouring classes stay distinguishable
# on a county map. Replace them here (one place) if the bureau's own 图式 table differs.
#
# Codes are written without leading zeros, as in the land-cover rasters (0301 -> 301); 三调's
# alphanumeric codes (05H1, 08H1, 08H2) cannot occur in an integer raster and are not listed.
GBT21010_COLOURS: dict[int, str] = {
    # 01 耕地: yellows
    101: "#f8d072",   # 水田 (MapGIS 三调样式)
    102: "#f8e71c",   # 水浇地 (MapGIS 三调样式)
    103: "#fffbb1",   # 旱地 (MapGIS 三调样式)
    # 02 种植园用地 (园地): light oranges
    201: "#ec9a48",   # 果园
    202: "#d98536",   # 茶园
    203: "#c97a2e",   # 橡胶园
    204: "#f3bd86",   # 其他园地
    # 03 林地: greens, darkest for 乔木林地
    301: "#2e8540",   # 乔木林地
    302: "#4f9f45",   # 竹林地
    303: "#2f8f6f",   # 红树林地 (湿地 in 三调)
    305: "#79bf5e",   # 灌木林地
    307: "#aad68c",   # 其他林地
    # 湿地 (三调 regroups 0303/0304/0306/0402/1105/1106/1108): blue-greens
    304: "#3e9e8e",   # 森林沼泽
    306: "#5db5a3",   # 灌丛沼泽
    402: "#84ccb8",   # 沼泽草地
    1105: "#b5e3dc",  # 沿海滩涂
    1106: "#c9ebe3",  # 内陆滩涂
    1108: "#6fc2b4",  # 沼泽地
    # 04 草地: yellow-greens
    401: "#c5e384",   # 天然牧草地
    403: "#d6ec9a",   # 人工牧草地
    404: "#e5f2bb",   # 其他草地
    # 05 商服用地 (三调: 05H1 商业服务业设施用地, 0508 物流仓储用地): reds. 05H1 cannot be an
    # integer code; GB/T 21010-2017's detailed 0501-0507 take its colour.
    501: "#f06e6e", 502: "#f06e6e", 503: "#f06e6e", 504: "#f06e6e",  # 零售商业 批发市场 餐饮 旅馆
    505: "#f06e6e", 506: "#f06e6e", 507: "#f06e6e",  # 商务金融 娱乐 其他商服
    508: "#c86f9a",   # 物流仓储用地
    # 06 工矿用地: brownish reds
    601: "#b8514a",   # 工业用地
    602: "#9c5a3c",   # 采矿用地
    603: "#d59a9a",   # 盐田
    604: "#c86f9a",   # 仓储用地 (GB/T 21010-2017)
    # 07 住宅用地: reds / pinks
    701: "#e8453c",   # 城镇住宅用地
    702: "#f28c7b",   # 农村宅基地
    # 08 公共管理与公共服务用地 (三调: 08H1, 08H2, 0809, 0810): pinks; parks keep a green.
    # 08H1/08H2 cannot be integer codes; GB/T 21010-2017's 0801-0808 take their colour.
    801: "#f2a0b6", 802: "#f2a0b6", 803: "#f2a0b6", 804: "#f2a0b6",  # 机关团体 新闻出版 教育 科研
    805: "#f2a0b6", 806: "#f2a0b6", 807: "#f2a0b6", 808: "#f2a0b6",  # 医疗 福利 文化 体育
    809: "#d98cb3",   # 公用设施用地
    810: "#9fd38b",   # 公园与绿地
    # 09 特殊用地 (三调 code 09 -> 9)
    9: "#b86f6f",
    # 10 交通运输用地: greys
    1001: "#5f5f5f",  # 铁路用地
    1002: "#6e6e6e",  # 轨道交通用地
    1003: "#7f7f7f",  # 公路用地
    1004: "#a0a0a0",  # 城镇村道路用地
    1005: "#8c8c8c",  # 交通服务场站用地
    1006: "#bdbdbd",  # 农村道路
    1007: "#969696",  # 机场用地
    1008: "#8396a8",  # 港口码头用地
    1009: "#a8a8a8",  # 管道运输用地
    # 11 水域及水利设施用地: blues
    1101: "#3f8fd8",  # 河流水面
    1102: "#2f78c4",  # 湖泊水面
    1103: "#5b9fe0",  # 水库水面
    1104: "#8ec0ee",  # 坑塘水面
    1107: "#a9d2f4",  # 沟渠
    1109: "#6a8caf",  # 水工建筑用地
    1110: "#e6f3fb",  # 冰川及永久积雪
    # 12 其他土地: light greys and sand colours
    1201: "#d8d2c4",  # 空闲地
    1202: "#e3d7a3",  # 设施农用地
    1203: "#ddd8ba",  # 田坎
    1204: "#e4ded6",  # 盐碱地
    1205: "#eedcb4",  # 沙地
    1206: "#d3c3a6",  # 裸土地
    1207: "#b9b9b9",  # 裸岩石砾地
}

# ESA WorldCover 2020/2021 v1/v2 legend (Product User Manual, Zanaga et al. 2021/2022): the
# product's own published colours.
WORLDCOVER_COLOURS: dict[int, str] = {
    10: "#006400", 20: "#ffbb22", 30: "#ffff4c", 40: "#f096ff", 50: "#fa0000", 60: "#b4b4b4",
    70: "#f0f0f0", 80: "#0064c8", 90: "#0096a0", 95: "#00cf75", 100: "#fae6a0",
}

# CLCD (Yang & Huang 2021) 1-9: coloured like the matching 三调 一级类 above, so a CLCD map and a
# 三调 map of the same county read alike.
CLCD_COLOURS: dict[int, str] = {
    1: GBT21010_COLOURS[103], 2: GBT21010_COLOURS[301], 3: GBT21010_COLOURS[305],
    4: GBT21010_COLOURS[401], 5: GBT21010_COLOURS[1101], 6: GBT21010_COLOURS[1110],
    7: GBT21010_COLOURS[1206], 8: GBT21010_COLOURS[701], 9: GBT21010_COLOURS[1108],
}

_SCHEME_COLOURS = {"gbt21010": GBT21010_COLOURS, "worldcover": WORLDCOVER_COLOURS,
                   "clcd": CLCD_COLOURS}
_SCHEME_TABLES = {"gbt21010": "landuse_gbt21010.csv", "clcd": "landuse_clcd.csv",
                  "worldcover": "landuse_worldcover.csv"}


@dataclass(frozen=True)
class StyleClass:
    """One class of a categorical style: raster code, ``#rrggbb`` colour and labels."""

    code: int
    colour: str
    name_zh: str
    name_en: str
    group_zh: str = ""
    group_en: str = ""
    code_width: int = 0  # zero-padded width of the printed code (4 for 三调 0101); 0 = no code

    def label(self, lang: str = "zh") -> str:
        """Legend text: ``"0101 水田"`` (zh) or ``"0101 Paddy field"`` (en)."""
        name = self.name_zh if lang == "zh" else self.name_en
        return f"{self.code:0{self.code_width}d} {name}" if self.code_width else name


@dataclass(frozen=True)
class Style:
    """How a layer is coloured (see the module docstring).

    ``ramp`` is set for continuous and diverging styles, ``classes`` for categorical ones.
    ``value_range`` fixes the legend range (else it is chosen from the data).
    """

    name: str
    kind: StyleKind
    ramp: ColourRamp | None = None
    classes: tuple[StyleClass, ...] = ()
    value_range: tuple[float, float] | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind in ("continuous", "diverging") and self.ramp is None:
            raise SinkmapError(f"style {self.name!r}: a {self.kind} style needs a ramp")
        if self.kind == "diverging" and self.ramp is not None and len(self.ramp.stops) % 2 == 0:
            raise SinkmapError(f"style {self.name!r}: a diverging ramp needs an odd number of "
                               "stops so that its middle stop sits on zero")
        if self.kind == "categorical":
            if not self.classes:
                raise SinkmapError(f"style {self.name!r}: a categorical style needs classes")
            codes = [c.code for c in self.classes]
            if len(set(codes)) != len(codes):
                raise SinkmapError(f"style {self.name!r}: duplicate class codes")

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def class_for(self, code: int) -> StyleClass:
        """The class of ``code``; an unknown code gets a loud colour and its number as label."""
        for c in self.classes:
            if c.code == int(code):
                return c
        return StyleClass(int(code), UNKNOWN_CLASS_COLOUR, f"{int(code)}（未定义）",
                          f"{int(code)} (undefined)")

    def colour_map(self) -> dict[int, str]:
        """``{code: "#rrggbb"}`` of a categorical style."""
        return {c.code: c.colour for c in self.classes}

    def range_for(self, values: np.ndarray) -> tuple[float, float]:
        """The legend range for ``values`` (finite ones count).

        ``value_range`` when set; continuous: :func:`maps.render.nice_range` (as the web map);
        diverging: symmetric about zero (:func:`symmetric_range`).
        """
        if self.value_range is not None:
            return float(self.value_range[0]), float(self.value_range[1])
        if self.kind == "diverging":
            return symmetric_range(values)
        return nice_range(values)

    def stop_values(self, vmin: float, vmax: float) -> list[float]:
        """The data value of each ramp stop over ``[vmin, vmax]``.

        Evenly spaced; for a diverging style with ``vmin < 0 < vmax`` the middle stop is pinned
        to zero and each half is spaced evenly on its own side (so zero is always the neutral
        colour, as with matplotlib's ``TwoSlopeNorm``).
        """
        if self.ramp is None:
            raise SinkmapError(f"style {self.name!r} is categorical: it has no ramp stops")
        n = len(self.ramp.stops)
        if self.kind == "diverging" and vmin < 0 < vmax:
            half = n // 2
            lower = np.linspace(vmin, 0.0, half + 1)[:-1]
            upper = np.linspace(0.0, vmax, half + 1)
            return [float(v) for v in (*lower, *upper)]
        return [float(v) for v in np.linspace(vmin, vmax, n)]

    def colour_at(self, value: float, vmin: float, vmax: float) -> str:
        """``#rrggbb`` of ``value`` on this (continuous or diverging) style over the range."""
        stops = self.stop_values(vmin, vmax)
        if self.ramp is None:  # pragma: no cover (stop_values raised)
            raise SinkmapError("no ramp")
        pos = np.linspace(0.0, 1.0, len(stops))
        frac = float(np.interp(value, stops, pos)) if stops[-1] > stops[0] else 0.5
        return self.ramp.hex_at(frac)


def symmetric_range(values: np.ndarray, *, quantile: float = 98.0) -> tuple[float, float]:
    """``(-m, m)`` for a change layer: ``m`` the ``quantile`` of ``|values|`` over the cells that
    changed (non-zero), rounded up to a nice step.

    Most cells of a change map are exactly zero (land that did not change), so percentiles over
    all cells would saturate every real change; the zeros draw in the neutral middle colour
    whatever the range.
    """
    v = np.abs(np.asarray(values, dtype=np.float64))
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return -1.0, 1.0
    m = float(np.percentile(v, quantile))
    if m == 0:  # pragma: no cover (v > 0)
        return -1.0, 1.0
    step = _nice_step(m, 5)
    m = math.ceil(m / step - 1e-9) * step
    return -m, m


def tick_labels(values: Sequence[float]) -> list[str]:
    """Labels for a set of round values, all with the same, fewest decimals that show them.

    ``[0, 25, 50] -> ["0", "25", "50"]``, ``[0, 2.5, 5] -> ["0.0", "2.5", "5.0"]``,
    ``[-1500, 0, 1500] -> ["-1,500", "0", "1,500"]``; thousands separators as
    :func:`maps.render.format_number`.
    """
    v = [float(x) for x in values]
    scale = max((abs(x) for x in v), default=0.0) or 1.0
    decimals = 6
    for d in range(7):
        if all(abs(round(x, d) - x) <= 1e-9 * scale for x in v):
            decimals = d
            break
    return [f"{(x if abs(x) > 1e-12 * scale else 0.0):,.{decimals}f}" for x in v]


def graduated_breaks(vmin: float, vmax: float, n: int = 5) -> list[float]:
    """``n + 1`` evenly spaced class breaks from ``vmin`` to ``vmax`` (for graduated symbols)."""
    if not vmax > vmin:
        raise SinkmapError(f"class breaks need vmin < vmax, got {vmin}, {vmax}")
    return [float(round(v, 12)) for v in np.linspace(vmin, vmax, n + 1)]


def class_colours(style: Style, n: int) -> list[str]:
    """``n`` colours sampled evenly along a continuous or diverging style's ramp."""
    if style.ramp is None:
        raise SinkmapError(f"style {style.name!r} is categorical: it has no ramp")
    return [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in style.ramp.palette(n).tolist()]


# --------------------------------------------------------------------------------------------
# the styles per layer type

CARBON_DENSITY = Style("carbon_density", "continuous", YLGN,
                       description="carbon density (t C/ha): ColorBrewer YlGn, as the web map")
CARBON_STOCK = Style("carbon_stock", "continuous", YLGN,
                     description="carbon stock per cell or zone (t C): ColorBrewer YlGn")
ZONE_CHOROPLETH = Style("zone_choropleth", "continuous", YLORBR,
                        description="zone (township) values: ColorBrewer YlOrBr, as the web map")
CARBON_CHANGE = Style("carbon_change", "diverging", BRBG,
                      description="change and sink (removal positive): ColorBrewer BrBG "
                                  "centred on zero")


@cache
def landuse_style(scheme: str = "gbt21010") -> Style:
    """The categorical style of a shipped land-cover scheme (``gbt21010``, ``clcd``,
    ``worldcover``): every class of the scheme's table with its colour and labels.

    A class of the table without a colour here is an error (so a new code cannot silently be
    drawn in the fallback colour).
    """
    if scheme not in _SCHEME_TABLES:
        raise InputError(f"no land-use style for scheme {scheme!r}", source="maps.styles",
                         fix=f"use one of {', '.join(_SCHEME_TABLES)}")
    table = pd.read_csv(packaged("tables", _SCHEME_TABLES[scheme]))
    colours = _SCHEME_COLOURS[scheme]
    missing = sorted(int(c) for c in table["code"] if int(c) not in colours)
    if missing:
        raise SinkmapError(f"land-use style {scheme!r} has no colour for code(s) {missing}",
                           fix="add them to the colour table in maps/styles.py")
    groups_en = _GBT21010_GROUPS_EN if scheme == "gbt21010" else {}
    classes = []
    for row in table.itertuples(index=False):
        group_zh = str(getattr(row, "level1_zh", "") or "")
        classes.append(StyleClass(
            code=int(row.code), colour=colours[int(row.code)], name_zh=str(row.name_zh),
            name_en=str(row.name_en), group_zh=group_zh, group_en=groups_en.get(group_zh, ""),
            code_width=4 if scheme == "gbt21010" else 0))
    return Style(f"landuse_{scheme}", "categorical", classes=tuple(classes),
                 description=f"land use ({scheme}), national colour conventions")


_GBT21010_GROUPS_EN = {
    "耕地": "Cropland", "种植园用地": "Plantation", "林地": "Forest land", "草地": "Grassland",
    "湿地": "Wetland", "工矿仓储用地": "Industrial and mining", "住宅用地": "Residential",
    "公共管理与公共服务用地": "Public administration and services", "交通运输用地": "Transport",
    "水域及水利设施用地": "Water and water facilities", "其他土地": "Other land",
    "商服用地": "Commercial", "特殊用地": "Special use",
}


def style_for(units: str | None, kind: str | None) -> Style:
    """A default style for a sinkmap raster from its ``units`` and ``kind`` attributes.

    Categorical rasters get the 三调 land-use style; ``*change*``/``*sink*`` units the diverging
    change style; stocks (``tC``, ``tCO2e``) the stock style; anything else carbon density.
    """
    u = (units or "").lower()
    if kind == "categorical":
        return landuse_style("gbt21010")
    if "change" in u or "sink" in u or "delta" in u:
        return CARBON_CHANGE
    if u in ("tc", "tco2e", "tco2", "mgc"):
        return CARBON_STOCK
    return CARBON_DENSITY


CHANGE_COLOURS = {1: "#1a9850", 2: "#d73027", 3: "#b2182b", 4: "#4575b4", 5: "#fdae61",
                  6: "#fee08b", 7: "#999999"}


def change_style() -> Style:
    """Categorical style of the land-use change raster (``layers.landcover.CHANGE_TYPES``)."""
    from layers.landcover import CHANGE_TYPES

    return Style("landuse_change", "categorical", classes=tuple(
        StyleClass(code=k, colour=CHANGE_COLOURS[k], name_zh=v[0], name_en=v[1])
        for k, v in CHANGE_TYPES.items()))
