"""Raster I/O at the edges: lazy, block-wise GeoTIFF/COG reading; atomic, streamed COG writing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import rasterio
import rioxarray
import xarray as xr
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from gis.atomic import atomic_path
from gis.crs import as_crs
from gis.errors import InputError, NoDataError
from gis.grid import DEFAULT_CHUNK, GridSpec, Kind

log = logging.getLogger(__name__)

BLOCKSIZE = 512
GDAL_CACHE_MB = 128


def read_raster(path: str | Path, *, kind: Kind | None = None, units: str | None = None,
                chunks: int = DEFAULT_CHUNK, crs: Any = None) -> xr.DataArray:
    """Open band 1 of a GeoTIFF/COG lazily (dask, ``chunks`` x ``chunks`` blocks).

    The raster must carry a CRS; ``crs`` may supply one for files that lack it (a declared
    choice, never a guess). ``kind`` and ``units`` default to the file's ``kind``/``units`` tags,
    else integer rasters are ``categorical``/``class`` and float rasters ``continuous``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file does not exist", source=p, fix="check the path in the project file")
    try:
        da = rioxarray.open_rasterio(p, chunks={"x": chunks, "y": chunks, "band": 1},
                                     masked=False, lock=False)
    except Exception as exc:
        raise InputError(f"cannot be read as a raster ({exc})", source=p,
                         fix="give a GeoTIFF/COG readable by GDAL") from exc
    if isinstance(da, list):
        raise InputError("holds several subdatasets", source=p, fix="give one raster file")
    da = da.isel(band=0, drop=True)
    if da.rio.crs is None:
        if crs is None:
            raise InputError(
                "raster has no CRS", source=p,
                fix="assign one (gdal_edit.py -a_srs EPSG:nnnn FILE) or set `crs` for this input "
                "in the project file")
        da = da.rio.write_crs(as_crs(crs).to_wkt())
    with rasterio.open(p) as src:
        tags = src.tags(1) | src.tags()
    is_int = np.issubdtype(da.dtype, np.integer)
    da.attrs["kind"] = kind or tags.get("kind") or ("categorical" if is_int else "continuous")
    da.attrs["units"] = units or tags.get("units") or ("class" if is_int else "")
    da.attrs["source"] = str(p)
    da.name = p.stem
    return da.rio.write_nodata(da.rio.nodata, encoded=False)


def assert_has_data(da: xr.DataArray, *, source: Any = None) -> int:
    """Return the count of valid cells; :class:`NoDataError` if there are none."""
    valid = valid_mask(da).sum().compute()
    n = int(valid)
    if n == 0:
        raise NoDataError("holds only nodata cells",
                          source=source or da.attrs.get("source", da.name),
                          fix="check the file covers the region and its nodata value is right")
    return n


def valid_mask(da: xr.DataArray) -> xr.DataArray:
    nod = da.rio.nodata
    m = da.notnull() if np.issubdtype(da.dtype, np.floating) else xr.ones_like(da, dtype=bool)
    if nod is not None and not (isinstance(nod, float) and np.isnan(nod)):
        m = m & (da != nod)
    return m


def write_cog(da: xr.DataArray, path: str | Path, *, overwrite: bool = False,
              inputs: tuple[str | Path, ...] = (), progress: Any = None,
              cog: bool = True) -> Path:
    """Write a raster as a tiled, DEFLATE-compressed Cloud-Optimised GeoTIFF with overviews.

    Blocks are computed and written one at a time (memory stays bounded), into a temporary
    GeoTIFF beside the target; it is then copied to COG layout and renamed onto ``path``. An
    error at any point leaves neither ``path`` nor temporary files. ``cog=False`` writes a tiled,
    DEFLATE-compressed GeoTIFF in a single pass instead (no overviews, no COG layout).
    """
    data = da.data if isinstance(da.data, dsa.Array) else dsa.from_array(
        np.asarray(da.data), chunks=DEFAULT_CHUNK)
    with block_writer(path, GridSpec.of(da), dtype=da.dtype, nodata=da.rio.nodata,
                      units=da.attrs.get("units", ""), kind=da.attrs.get("kind", ""),
                      name=da.name, overwrite=overwrite, inputs=inputs, cog=cog) as write:
        blocks = list(np.ndindex(*data.numblocks))
        offsets = [np.cumsum((0, *c)) for c in data.chunks]
        for i, (bi, bj) in enumerate(blocks):
            arr = np.asarray(data.blocks[bi, bj].compute())
            write(Window(int(offsets[1][bj]), int(offsets[0][bi]), arr.shape[1], arr.shape[0]),
                  arr)
            if progress is not None:
                progress(i + 1, len(blocks))
    return Path(path)


@contextmanager
def block_writer(path: str | Path, grid: GridSpec, *, dtype: Any, nodata: float | int | None,
                 units: str, kind: str, name: Any = None, overwrite: bool = False,
                 inputs: tuple[str | Path, ...] = (), cog: bool = True
                 ) -> Iterator[Callable[[Window, np.ndarray], None]]:
    """Write a raster window by window as the caller computes it: ``with block_writer(...) as
    write: write(window, array)``. Same atomic, bounded-memory layout as :func:`write_cog` (which
    uses it); for loops that compute several outputs per block in one pass."""
    dtype = np.dtype(dtype)
    categorical = kind == "categorical"
    profile = {
        "driver": "GTiff", "height": grid.height, "width": grid.width, "count": 1,
        "dtype": dtype.name, "crs": grid.crs.to_wkt(), "transform": grid.transform,
        "nodata": nodata, "tiled": True, "blockxsize": BLOCKSIZE, "blockysize": BLOCKSIZE,
        "BIGTIFF": "IF_SAFER",  # the staging file is uncompressed: compress once, in the COG
    }
    target = Path(path)
    with atomic_path(target, overwrite=overwrite, inputs=inputs) as tmp:
        stage = tmp.with_name(tmp.name + ".stage.tif") if cog else tmp
        if not cog:
            profile.update(compress="deflate", predictor=3 if dtype.kind == "f" else 2)
        try:
            with rasterio.open(stage, "w", **profile) as dst:
                yield lambda win, arr: dst.write(np.asarray(arr, dtype=dtype), 1, window=win)
                dst.update_tags(units=units, kind=kind)
                dst.update_tags(1, units=units)
                if name:
                    dst.set_band_description(1, str(name))
            # GDAL's block cache defaults to 5 % of RAM; bound it for the COG copy so memory
            # does not follow raster size. (Only here: an active rasterio.Env slows down
            # rasterize in dask worker threads ~10x, so block computation stays outside it.)
            if cog:
                with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
                    rio_copy(stage, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=BLOCKSIZE,
                             OVERVIEWS="AUTO",
                             RESAMPLING="NEAREST" if categorical else "AVERAGE",
                             BIGTIFF="IF_SAFER", PREDICTOR="YES" if dtype.kind == "f" else "NO",
                             NUM_THREADS="ALL_CPUS")
        finally:
            if cog:
                for p in (stage, stage.with_name(stage.name + ".aux.xml")):
                    p.unlink(missing_ok=True)
    log.info("wrote %s (%s)", target, grid.describe())
