"""The atlas: `sinkmap maps RUN_DIR` writes an index and one map per theme."""

from __future__ import annotations

import re

import numpy as np

import sinkmap.pipeline as pipeline
from gis.grid import GridSpec, make_raster
from layers.landcover import change_type, load_scheme
from sinkmap.cli import main
from sinkmap.config import load_config
from tests.project_fixture import make_project


def test_atlas_index_links_every_theme_map(tmp_path):
    out = pipeline.run(load_config(make_project(tmp_path)), verbose=False).out_dir
    maps = out / "maps"  # the run ends by writing the atlas
    index = (maps / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'href="([^"]+)"', index)
    assert "carbon_total.html" in links and "landuse_change.html" in links
    assert all((maps / link).is_file() for link in links)
    for pool in ("c_above", "c_below", "c_soil", "c_dead"):
        assert f"carbon_{pool}.html" in links
    assert "碳汇与土地利用图集" in index
    # the sink choropleth is diverging (BrBG, centred on zero); densities are sequential
    sink = (maps / "township_sink.html").read_text(encoding="utf-8").lower()
    assert "#543005" in sink and "#003c30" in sink
    assert "#543005" not in (maps / "carbon_total.html").read_text(encoding="utf-8").lower()
    assert main(["maps", str(out)]) == 2  # exists: `sinkmap maps` refuses without --overwrite
    assert main(["maps", str(out), "--overwrite", "--lang", "en"]) == 0
    assert "Carbon-sink and land-use atlas" in (maps / "index.html").read_text()


def test_change_type_hand_computed():
    g = GridSpec.from_bounds((0, 0, 50, 10), 10, "EPSG:4551")
    a = make_raster(np.array([[103, 301, 101, 0, 701]], "uint16"), g, nodata=0, units="class",
                    kind="categorical")
    b = make_raster(np.array([[301, 103, 1108, 103, 701]], "uint16"), g, nodata=0,
                    units="class", kind="categorical")
    # afforestation, forest loss, wetland restoration, nodata before, unchanged
    np.testing.assert_array_equal(change_type(a, b, load_scheme("gbt21010")).values,
                                  [[1, 2, 4, 255, 0]])


def test_print_maps_and_qgis_styles(tmp_path):
    out = pipeline.run(load_config(make_project(tmp_path)), verbose=False).out_dir
    # every density COG, the change raster and townships.gpkg open styled in QGIS
    for tif in out.glob("carbon_density_*.tif"):
        assert tif.with_suffix(".qml").is_file(), tif.name
    assert (out / "landuse_change_2020_2025.qml").is_file()
    assert (out / "townships.qml").is_file()
    assert main(["maps", str(out), "--overwrite"]) == 0
    prints = out / "maps" / "print"
    for name in ("carbon_density", "township_density", "landuse_change", "landuse_2025"):
        assert (prints / f"{name}.png").is_file() and \
            (prints / f"{name}.pdf").read_bytes()[:4] == b"%PDF", name
    assert "print/carbon_density.pdf" in (out / "maps" / "index.html").read_text()
