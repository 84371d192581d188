"""Bad inputs named by the foundation issue: each a clear error, no partial output."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

import sinkmap.pipeline as pipeline
from gis.errors import CoefficientError, ConfigError, InputError
from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from gis.vector_io import write_vector
from layers.landcover import check_codes, load_scheme
from sinkmap.config import load_config
from sinks.coefficients import load_carbon_table, require_codes
from tests.project_fixture import GRID, LC2020, make_project


def write_shifted_lc(path: Path) -> None:
    g = GridSpec.create(GRID.crs, GRID.transform @ Affine.translation(0.5, 0), GRID.shape)
    path.unlink(missing_ok=True)
    write_cog(make_raster(LC2020, g, nodata=0, units="class", kind="categorical"), path)


def write_geographic_zones(path: Path) -> None:
    z = gpd.GeoDataFrame({"code": ["W"], "name": ["x"]},
                         geometry=[shapely.box(125.6, 42.4, 125.7, 42.5)], crs="EPSG:4326")
    path.unlink(missing_ok=True)
    write_vector(z, path)


def _run_fails(p: Path, match: str) -> None:
    with pytest.raises((ConfigError, InputError, CoefficientError)) as e:
        pipeline.run(load_config(p), verbose=False)
    assert match in str(e.value)
    assert not (p.parent / "out").exists()


def test_missing_crs(tmp_path):
    p = make_project(tmp_path)
    import rasterio

    (tmp_path / "lc2025.tif").unlink()
    with rasterio.open(tmp_path / "lc2025.tif", "w", driver="GTiff", height=4, width=6, count=1,
                       dtype="uint16", transform=GRID.transform, nodata=0) as dst:
        dst.write(LC2020[None])
    _run_fails(p, "has no CRS")


def test_geographic_crs_for_areas(tmp_path):
    p = make_project(tmp_path)
    write_geographic_zones(tmp_path / "zones.gpkg")
    _run_fails(p, "not projected in metres")


def test_mismatched_grids(tmp_path):
    p = make_project(tmp_path)
    write_shifted_lc(tmp_path / "lc2025.tif")
    _run_fails(p, "differs from 2020")


def test_all_nodata_raster(tmp_path):
    p = make_project(tmp_path)
    (tmp_path / "lc2025.tif").unlink()
    write_cog(make_raster(np.zeros(GRID.shape, "uint16"), GRID, nodata=0, units="class",
                          kind="categorical"), tmp_path / "lc2025.tif")
    _run_fails(p, "only nodata")


def test_zones_that_miss_the_raster(tmp_path):
    p = make_project(tmp_path)
    z = gpd.GeoDataFrame({"code": ["W", "FAR"], "name": ["西乡", "远方"]},
                         geometry=[shapely.box(500_000, 4_700_000, 500_030, 4_700_040),
                                   shapely.box(600_000, 4_800_000, 600_100, 4_800_100)],
                         crs="EPSG:4551")
    (tmp_path / "zones.gpkg").unlink()
    write_vector(z, tmp_path / "zones.gpkg")
    with pytest.raises(Exception) as e:
        pipeline.run(load_config(p), verbose=False)
    assert "FAR" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_unknown_class_codes(tmp_path):
    p = make_project(tmp_path)
    a = LC2020.copy()
    a[0, 0], a[1, 1] = 9999, 4242
    (tmp_path / "lc2025.tif").unlink()
    write_cog(make_raster(a, GRID, nodata=0, units="class", kind="categorical"),
              tmp_path / "lc2025.tif")
    _run_fails(p, "4242, 9999")
    with pytest.raises(InputError, match="2 land-cover code"):
        check_codes(np.array([301, 4242, 9999]), load_scheme("gbt21010"))


def test_missing_coefficients_list_codes():
    t = load_carbon_table("default")
    with pytest.raises(CoefficientError, match="777, 888") as e:
        require_codes(np.array([301, 777, 888]), t)
    assert "fix:" in str(e.value)


def test_unreadable_files(tmp_path):
    p = make_project(tmp_path)
    (tmp_path / "lc2020.tif").write_bytes(b"garbage")
    (tmp_path / "zones.gpkg").write_bytes(b"garbage")
    with pytest.raises(ConfigError) as e:
        pipeline.run(load_config(p), verbose=False)
    assert "lc2020.tif" in str(e.value) and "zones.gpkg" in str(e.value)


def test_bad_coefficient_table_schema(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,c_above\n301,abc\n")
    with pytest.raises(CoefficientError, match="missing column") as e:
        load_carbon_table(bad)
    assert "bad.csv" in str(e.value)
    bad.write_text("code,c_above,c_below,c_soil,c_dead,units,source,verified\n"
                   "301,-1,0,0,0,tC_per_ha,x,true\n302,1,0,0,0,kg_per_m2,x,true\n")
    with pytest.raises(CoefficientError, match="negative") as e:
        load_carbon_table(bad)
    assert "kg_per_m2" in str(e.value)


def test_bad_project_file(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[zones]\nid_field = 3\n[outputs]\nzonal_method = 'exact'\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "[zones] path is required" in msg and "zonal_method" in msg
    assert "[landcover.years]" in msg
    p.write_text("not = toml = at all")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(p)


def test_unknown_price_name(tmp_path):
    p = make_project(tmp_path)
    p.write_text(p.read_text() + '\n[valuation]\nprice = "moon_2099"\n')
    _run_fails(p, "moon_2099")
