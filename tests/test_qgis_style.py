"""QGIS side-car styles (maps.qgis_style): parse the XML and check what QGIS reads."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

import pandas as pd
import pytest

from gis.errors import OutputExistsError, SinkmapError
from gis.resources import packaged
from maps.qgis_style import (
    categorical_raster_qml,
    categorical_vector_qml,
    qml_path,
    raster_qml,
    style_classes,
    vector_qml,
    write_qml,
)
from maps.render import YLGN, YLORBR
from maps.styles import (
    BRBG,
    CARBON_CHANGE,
    CARBON_DENSITY,
    class_colours,
    graduated_breaks,
    landuse_style,
)

HEX = re.compile(r"#[0-9a-f]{6}")
RGBA = re.compile(r"\d{1,3},\d{1,3},\d{1,3},\d{1,3}")


def _parse(qml: str) -> ET.Element:
    assert qml.startswith("<!DOCTYPE qgis")
    root = ET.fromstring(qml)
    assert root.tag == "qgis" and root.get("version", "").startswith("3.")
    return root


def test_pseudocolour_raster_has_one_item_per_ramp_stop():
    root = _parse(raster_qml(CARBON_DENSITY, 0, 200, "t C/ha", nodata=-9999.0))
    rr = root.find("pipe/rasterrenderer")
    assert rr.get("type") == "singlebandpseudocolor" and rr.get("band") == "1"
    assert rr.get("nodataColor") == ""  # nodata drawn transparent
    entry = rr.find("rasterTransparency/singleValuePixelList/pixelListEntry")
    assert (entry.get("min"), entry.get("max"), entry.get("percentTransparent")) == (
        "-9999", "-9999", "100")
    shader = rr.find("rastershader/colorrampshader")
    assert shader.get("colorRampType") == "INTERPOLATED"
    items = shader.findall("item")
    assert len(items) == len(YLGN.stops) == 9
    # 9 stops over 0..200: every 25 t C/ha, the web map's colours in order
    assert [float(i.get("value")) for i in items] == [25.0 * k for k in range(9)]
    assert [i.get("color") for i in items] == list(YLGN.stops)
    assert all(HEX.fullmatch(i.get("color")) and i.get("alpha") == "255" for i in items)
    assert items[0].get("label") == "0 t C/ha" and items[-1].get("label") == "200 t C/ha"
    assert items[4].get("label") == "100"
    ramp = shader.find("colorramp")
    assert ramp.get("type") == "gradient"
    assert {p.get("k"): p.get("v") for p in ramp.findall("prop")}["color1"] == "255,255,229,255"


def test_diverging_raster_puts_the_neutral_colour_on_zero():
    root = _parse(raster_qml(CARBON_CHANGE, -10, 20, "t C/ha"))
    items = root.findall("pipe/rasterrenderer/rastershader/colorrampshader/item")
    assert len(items) == 11
    assert items[5].get("value") == "0" and items[5].get("color") == BRBG.stops[5]
    assert [float(i.get("value")) for i in items] == [-10, -8, -6, -4, -2, 0, 4, 8, 12, 16, 20]


def test_paletted_raster_has_every_sandiao_class():
    table = pd.read_csv(packaged("tables", "landuse_gbt21010.csv"))
    root = _parse(categorical_raster_qml(style_classes(landuse_style(), lang="zh"), nodata=0))
    rr = root.find("pipe/rasterrenderer")
    assert rr.get("type") == "paletted"
    entries = rr.findall("colorPalette/paletteEntry")
    assert len(entries) == len(table) == 37
    assert [int(e.get("value")) for e in entries] == table["code"].tolist()
    assert all(HEX.fullmatch(e.get("color")) for e in entries)
    first = entries[0]
    assert (first.get("value"), first.get("color"), first.get("label")) == (
        "101", "#f8d072", "0101 水田")
    # only the classes present, in English
    root = _parse(categorical_raster_qml(style_classes(landuse_style(), lang="en",
                                                       codes=[301, 1101])))
    labels = [e.get("label") for e in root.findall("pipe/rasterrenderer/colorPalette/"
                                                   "paletteEntry")]
    assert labels == ["0301 Arbor forest land", "1101 River surface"]


def test_graduated_vector_style():
    breaks = graduated_breaks(0, 150, 5)
    assert breaks == [0, 30, 60, 90, 120, 150]
    colours = class_colours(CARBON_DENSITY, 5)
    root = _parse(vector_qml("mean_density_tC_per_ha_2020", breaks, colours, units="t C/ha",
                             label_column="name_zh"))
    r = root.find("renderer-v2")
    assert r.get("type") == "graduatedSymbol" and r.get("attr") == "mean_density_tC_per_ha_2020"
    ranges = r.findall("ranges/range")
    symbols = r.findall("symbols/symbol")
    assert len(ranges) == len(symbols) == 5
    assert [(float(x.get("lower")), float(x.get("upper"))) for x in ranges] == list(
        itertools.pairwise(breaks))
    assert ranges[0].get("label") == "0 - 30 t C/ha"
    assert [x.get("symbol") for x in ranges] == [s.get("name") for s in symbols]
    for sym, colour in zip(symbols, colours, strict=True):
        layer = sym.find("layer")
        assert layer.get("class") == "SimpleFill"
        props = {p.get("k"): p.get("v") for p in layer.findall("prop")}
        opts = {o.get("name"): o.get("value") for o in layer.findall("Option/Option")}
        assert props["color"] == opts["color"]
        assert RGBA.fullmatch(props["color"])
        r_, g_, b_ = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert props["color"] == f"{r_},{g_},{b_},255"
    assert colours[0] == YLGN.stops[0] and colours[-1] == YLGN.stops[-1]
    lab = root.find("labeling")
    assert lab.get("type") == "simple"
    assert lab.find("settings/text-style").get("fieldName") == "name_zh"


def test_categorised_vector_style():
    root = _parse(categorical_vector_qml("kind", [("town", "#fec44f", "镇"),
                                                  ("city", "#cc4c02", "城区")]))
    r = root.find("renderer-v2")
    assert r.get("type") == "categorizedSymbol"
    assert [c.get("value") for c in r.findall("categories/category")] == ["town", "city"]
    assert root.find("labeling") is None


def test_bad_style_inputs():
    with pytest.raises(SinkmapError, match="categorical"):
        raster_qml(landuse_style(), 0, 1)
    with pytest.raises(SinkmapError, match="increasing"):
        raster_qml(CARBON_DENSITY, 5, 5)
    with pytest.raises(SinkmapError, match="colours"):
        vector_qml("v", [0, 1, 2], ["#ffffff"])
    with pytest.raises(SinkmapError, match="increasing"):
        vector_qml("v", [0, 2, 1], ["#ffffff", "#000000"])
    with pytest.raises(SinkmapError, match="#rrggbb"):
        vector_qml("v", [0, 1], ["red"])
    with pytest.raises(SinkmapError, match="twice"):
        categorical_raster_qml([(1, "#ffffff", "a"), (1, "#000000", "b")])


def test_write_qml_names_it_after_the_output(tmp_path):
    tif = tmp_path / "carbon_density_tC_per_ha_2020.tif"
    gpkg = tmp_path / "townships.v2.gpkg"
    assert qml_path(tif) == tmp_path / "carbon_density_tC_per_ha_2020.qml"
    assert qml_path(gpkg) == tmp_path / "townships.v2.qml"  # QGIS swaps the extension only
    qml = raster_qml(CARBON_DENSITY, 0, 180, "t C/ha")
    out = write_qml(tif, qml)
    assert out == tmp_path / "carbon_density_tC_per_ha_2020.qml"
    assert out.read_text(encoding="utf-8") == qml
    with pytest.raises(OutputExistsError):
        write_qml(tif, qml)
    v = vector_qml("mean", [0, 1], [YLORBR.stops[0]])
    write_qml(tif, v, overwrite=True)
    assert out.read_text(encoding="utf-8") == v
    with pytest.raises(SinkmapError, match="well-formed"):
        write_qml(gpkg, "<qgis><pipe></qgis>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["carbon_density_tC_per_ha_2020.qml"]
