"""Raster and vector I/O: lazy reads, atomic COG writes, GBK Shapefiles, geometry repair."""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

import gis.raster_io as raster_io
from gis.errors import InputError, NoDataError, OutputExistsError
from gis.grid import GridSpec, make_raster
from gis.raster_io import assert_has_data, read_raster, write_cog
from gis.vector_io import dbf_encoding, read_vector, write_vector

NAMES = ["梅河口城区", "山城镇", "黑山头镇"]


def test_cog_roundtrip_is_tiled_compressed_with_overviews(tmp_path):
    g = GridSpec.from_bounds((500_000, 4_700_000, 530_000, 4_720_000), 10, "EPSG:4551")
    a = (np.arange(g.height * g.width) % 1000).astype("float32").reshape(g.shape)
    r = make_raster(a, g, nodata=-9999.0, units="tC_per_ha", kind="continuous", name="dens")
    out = write_cog(r, tmp_path / "dens.tif")
    with rasterio.open(out) as src:
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert src.overviews(1), "COG must carry overviews"
        assert src.block_shapes[0] == (512, 512)
        assert src.tags()["units"] == "tC_per_ha"
    back = read_raster(out)
    assert back.chunks is not None, "reads are lazy (dask)"
    assert back.attrs["units"] == "tC_per_ha" and back.attrs["kind"] == "continuous"
    assert GridSpec.of(back) == g
    assert float(back.sum()) == pytest.approx(float(a.sum(dtype="float64")))
    assert [p.name for p in tmp_path.iterdir()] == ["dens.tif"], "no temporary files left"


def test_write_refuses_existing_and_inputs(tmp_path, lc_small):
    p = write_cog(lc_small, tmp_path / "lc.tif")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_cog(lc_small, p)
    with pytest.raises(OutputExistsError, match="input"):
        write_cog(lc_small, p, overwrite=True, inputs=(p,))
    write_cog(lc_small, p, overwrite=True)


def test_interrupted_write_leaves_no_file(tmp_path, lc_small, monkeypatch):
    calls = {"n": 0}

    def boom(i, n):
        calls["n"] += 1
        if i == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-write

    with pytest.raises(KeyboardInterrupt):
        write_cog(lc_small, tmp_path / "lc.tif", progress=boom)
    assert calls["n"] == 2
    assert list(tmp_path.iterdir()) == []

    # a failure inside the COG copy step (after all blocks were written) also leaves nothing
    def bad_copy(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(raster_io, "rio_copy", bad_copy)
    with pytest.raises(OSError, match="disk full"):
        write_cog(lc_small, tmp_path / "lc.tif")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_previous_version(tmp_path, lc_small):
    p = write_cog(lc_small, tmp_path / "lc.tif")
    before = p.read_bytes()

    def boom(i, n):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_cog(lc_small * 2, p, overwrite=True, progress=boom)
    assert p.read_bytes() == before
    assert [q.name for q in tmp_path.iterdir()] == ["lc.tif"]


def test_read_raster_errors(tmp_path, grid10):
    with pytest.raises(InputError, match="does not exist"):
        read_raster(tmp_path / "nope.tif")
    junk = tmp_path / "junk.tif"
    junk.write_text("not a tiff")
    with pytest.raises(InputError, match="cannot be read") as e:
        read_raster(junk)
    assert "junk.tif" in str(e.value)
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", height=2, width=2, count=1, dtype="uint8",
                       transform=grid10.transform) as dst:
        dst.write(np.ones((1, 2, 2), "uint8"))
    with pytest.raises(InputError, match="no CRS") as e:
        read_raster(nocrs)
    assert "nocrs.tif" in str(e.value) and "fix:" in str(e.value)
    assert read_raster(nocrs, crs="EPSG:4551").rio.crs.to_epsg() == 4551


def test_all_nodata_raster_is_an_error(tmp_path, grid10):
    r = make_raster(np.zeros(grid10.shape, "uint16"), grid10, nodata=0, units="class",
                    kind="categorical")
    p = write_cog(r, tmp_path / "empty.tif")
    with pytest.raises(NoDataError, match="only nodata") as e:
        assert_has_data(read_raster(p))
    assert "empty.tif" in str(e.value)


def _gbk_shapefile(folder, *, ldid: int = 0):
    gdf = gpd.GeoDataFrame({"name": NAMES, "code": [1, 2, 3]},
                           geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)],
                           crs="EPSG:4551")
    path = folder / "towns.shp"
    pyogrio.write_dataframe(gdf, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()  # as handed over by many bureaus: no .cpg ...
    raw = bytearray(path.with_suffix(".dbf").read_bytes())
    raw[29] = ldid  # ... and no code-page byte
    path.with_suffix(".dbf").write_bytes(bytes(raw))
    return path


def test_gbk_shapefile_without_cpg_reads_correctly(tmp_path):
    path = _gbk_shapefile(tmp_path)
    naive = pyogrio.read_dataframe(path)["name"].tolist()
    assert naive != NAMES, "precondition: GDAL alone returns mojibake"
    assert dbf_encoding(path)[0] == "GB18030"
    gdf = read_vector(path)
    assert gdf["name"].tolist() == NAMES
    assert read_vector(path, encoding="GBK")["name"].tolist() == NAMES


def test_gbk_shapefile_with_code_page_byte(tmp_path):
    path = _gbk_shapefile(tmp_path, ldid=0x4D)  # 0x4D = GB2312/936
    assert read_vector(path)["name"].tolist() == NAMES


def test_utf8_shapefile_without_cpg(tmp_path):
    gdf = gpd.GeoDataFrame({"name": NAMES}, geometry=[shapely.Point(i, 0) for i in range(3)],
                           crs="EPSG:4551")
    p = tmp_path / "u.shp"
    pyogrio.write_dataframe(gdf, p, encoding="UTF-8")
    p.with_suffix(".cpg").unlink()
    assert read_vector(p)["name"].tolist() == NAMES


def test_invalid_geometries_repaired_and_counted(tmp_path, caplog):
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    gdf = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[bowtie, shapely.box(2, 0, 3, 1)],
                           crs="EPSG:4551")
    p = tmp_path / "z.gpkg"
    pyogrio.write_dataframe(gdf, p)
    out = read_vector(p)
    assert out.attrs["repaired_geometries"] == 1
    assert "repaired 1 invalid geometry" in caplog.text
    assert out.geometry.is_valid.all()
    assert out.geometry.area.sum() == pytest.approx(0.5 + 1.0)


def test_vector_without_crs(tmp_path):
    p = tmp_path / "nocrs.geojson"
    p.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},'
                 '"geometry":{"type":"Point","coordinates":[500000,4700000]}}]}')
    os.environ.pop("OGR_GEOJSON_DEFAULT_CRS", None)
    gdf = read_vector(p)  # GeoJSON is WGS 84 by specification
    assert gdf.crs is not None
    shp = tmp_path / "n.shp"
    pyogrio.write_dataframe(gpd.GeoDataFrame({"a": [1]}, geometry=[shapely.Point(0, 0)]), shp)
    with pytest.raises(InputError, match="no CRS") as e:
        read_vector(shp)
    assert "n.shp" in str(e.value)


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".shp"])
def test_vector_roundtrip_and_no_overwrite(tmp_path, ext):
    gdf = gpd.GeoDataFrame({"name": NAMES}, geometry=[shapely.box(i, 0, i + 1, 1)
                                                      for i in range(3)], crs="EPSG:4551")
    p = write_vector(gdf, tmp_path / f"t{ext}")
    back = read_vector(p)
    assert back["name"].tolist() == NAMES and back.crs.to_epsg() == 4551
    with pytest.raises(OutputExistsError):
        write_vector(gdf, p)
    assert not [q for q in tmp_path.iterdir() if q.name.startswith(".")], "no temp files"


def test_unreadable_vector(tmp_path):
    p = tmp_path / "bad.gpkg"
    p.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="cannot be read") as e:
        read_vector(p)
    assert "bad.gpkg" in str(e.value)
