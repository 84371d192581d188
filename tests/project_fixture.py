"""A tiny hand-made project (2 zones x 24 cells, two years) with hand-computed totals."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gis.grid import GridSpec, make_raster
from gis.raster_io import write_cog
from gis.vector_io import write_vector

GRID = GridSpec.from_bounds((500_000, 4_700_000, 500_060, 4_700_040), 10, "EPSG:4551")
LC2020 = np.array([[301, 301, 301, 103, 103, 103],
                   [301, 301, 301, 103, 103, 103],
                   [1101, 1101, 0, 103, 103, 101],
                   [1101, 1101, 0, 101, 101, 101]], dtype="uint16")
LC2025 = LC2020.copy()
LC2025[0, 3:6] = 301  # afforestation of three dry-land cells in the east zone

# A user table with round numbers (t C/ha): forest 100, dry land 50, paddy 60, river 0.
SIMPLE_TABLE = """code,c_above,c_below,c_soil,c_dead,units,source,verified
301,60,20,20,0,tC_per_ha,test,true
103,10,0,40,0,tC_per_ha,test,true
101,0,0,60,0,tC_per_ha,test,false
1101,0,0,0,0,tC_per_ha,test,true
"""

PROJECT = """
[project]
name = "tiny"
[region]
boundary = "boundary.gpkg"
[zones]
path = "zones.gpkg"
id_field = "code"
name_field = "name"
[landcover]
scheme = "gbt21010"
[landcover.years]
2020 = "lc2020.tif"
2025 = "lc2025.tif"
[carbon]
table = "{table}"
[outputs]
dir = "out"
"""


def make_project(folder: Path, *, table: str = "simple.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for year, a in ((2020, LC2020), (2025, LC2025)):
        r = make_raster(a, GRID, nodata=0, units="class", kind="categorical", name=f"lc{year}")
        write_cog(r, folder / f"lc{year}.tif")
    zones = gpd.GeoDataFrame(
        {"code": ["W", "E"], "name": ["西乡", "东镇"]},
        geometry=[shapely.box(500_000, 4_700_000, 500_030, 4_700_040),
                  shapely.box(500_030, 4_700_000, 500_060, 4_700_040)], crs="EPSG:4551")
    write_vector(zones, folder / "zones.gpkg")
    write_vector(gpd.GeoDataFrame(geometry=[zones.union_all()], crs="EPSG:4551"),
                 folder / "boundary.gpkg")
    (folder / "simple.csv").write_text(SIMPLE_TABLE)
    p = folder / "project.toml"
    p.write_text(PROJECT.format(table=table), encoding="utf-8")
    return p
