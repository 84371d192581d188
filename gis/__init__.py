"""gis: sinkmap's spatial foundation (grids, CRS, I/O, alignment, zonal tables, streaming).

Depends on nothing else in sinkmap. Everything above it (layers, sinks, maps, the application)
builds on these types: :class:`~gis.grid.GridSpec` and the sinkmap raster (an
``xarray.DataArray`` with CRS/nodata via rioxarray and ``units``/``kind`` attrs).
"""

from gis.crs import (
    OffsetWarning,
    assert_same_crs,
    check_offset,
    from_gcj02,
    projected_crs_for,
    require_projected,
    to_metric,
)
from gis.errors import (
    CoefficientError,
    ConfigError,
    CoverageError,
    CRSError,
    CRSMismatchError,
    GridMismatchError,
    InputError,
    NoDataError,
    OutputExistsError,
    SinkmapError,
)
from gis.grid import GridSpec, align_to, assert_same_grid, like, make_raster, project_raster
from gis.raster_io import assert_has_data, read_raster, valid_mask, write_cog
from gis.vector_io import read_vector, write_vector
from gis.zonal import M2_PER_MU, class_area_table, zonal_stats

__all__ = [
    "M2_PER_MU",
    "CRSError",
    "CRSMismatchError",
    "CoefficientError",
    "ConfigError",
    "CoverageError",
    "GridMismatchError",
    "GridSpec",
    "InputError",
    "NoDataError",
    "OffsetWarning",
    "OutputExistsError",
    "SinkmapError",
    "align_to",
    "assert_has_data",
    "assert_same_crs",
    "assert_same_grid",
    "check_offset",
    "class_area_table",
    "from_gcj02",
    "like",
    "make_raster",
    "project_raster",
    "projected_crs_for",
    "read_raster",
    "read_vector",
    "require_projected",
    "to_metric",
    "valid_mask",
    "write_cog",
    "write_vector",
    "zonal_stats",
]
