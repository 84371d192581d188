"""Chunked processing: walk a raster block by block, never holding more than one block.

These helpers are the only place that turns dask blocks into numpy; every per-pixel step in
sinkmap is either a lazy ``dask.array.map_blocks`` (see :func:`map_lut`) or a reduction written
with :func:`iter_blocks`.
"""

from __future__ import annotations

from collections.abc import Iterator

import dask.array as dsa
import numpy as np
import xarray as xr
from rasterio.windows import Window

from gis.grid import DEFAULT_CHUNK


def as_dask(da: xr.DataArray, chunks: int = DEFAULT_CHUNK) -> dsa.Array:
    return da.data if isinstance(da.data, dsa.Array) else dsa.from_array(np.asarray(da.data),
                                                                        chunks=chunks)


def iter_blocks(da: xr.DataArray) -> Iterator[tuple[Window, np.ndarray]]:
    """Yield ``(window, block)`` for each block of ``da`` in row-major order."""
    data = as_dask(da)
    r_off = np.cumsum((0, *data.chunks[0]))
    c_off = np.cumsum((0, *data.chunks[1]))
    for bi, bj in np.ndindex(*data.numblocks):
        block = np.asarray(data.blocks[bi, bj].compute())
        yield Window(int(c_off[bj]), int(r_off[bi]), block.shape[1], block.shape[0]), block


def unique_values(da: xr.DataArray) -> np.ndarray:
    """Sorted distinct values of ``da``, nodata (and NaN) excluded, computed block by block."""
    nod = da.rio.nodata
    seen: set = set()
    for _, block in iter_blocks(da):
        u = np.unique(block)
        if nod is not None:
            u = u[u != nod]
        if u.dtype.kind == "f":
            u = u[~np.isnan(u)]
        seen.update(u.tolist())
    return np.array(sorted(seen))


def map_lut(da: xr.DataArray, codes: np.ndarray, values: np.ndarray, *, nodata_out: float,
            dtype: np.dtype | str = "float32") -> dsa.Array:
    """Lazily replace each class code by ``values[codes == code]``; nodata -> ``nodata_out``.

    Codes absent from ``codes`` also become ``nodata_out`` (callers check coverage first, see
    ``sinks.coefficients.require_codes``).
    """
    order = np.argsort(codes)
    codes_s, values_s = np.asarray(codes)[order], np.asarray(values, dtype=dtype)[order]
    nod = da.rio.nodata
    out_dtype = np.dtype(dtype)

    dense = None
    if np.dtype(da.dtype).kind in "ui" and np.dtype(da.dtype).itemsize <= 2 and \
            len(codes_s) and codes_s.min() >= 0:
        # 8/16-bit class rasters: one direct table lookup per cell (as fast as numpy gets)
        size = 1 << (8 * np.dtype(da.dtype).itemsize)
        dense = np.full(size, nodata_out, dtype=out_dtype)
        ok = codes_s < size
        dense[codes_s[ok].astype(np.int64)] = values_s[ok]
        if nod is not None and 0 <= nod < size:
            dense[int(nod)] = nodata_out

    def _block(block: np.ndarray) -> np.ndarray:
        if dense is not None and block.dtype.kind == "u":
            return dense[block]
        idx = np.searchsorted(codes_s, block)
        idx = np.clip(idx, 0, len(codes_s) - 1)
        hit = codes_s[idx] == block
        if nod is not None:
            hit &= block != nod
        return np.where(hit, values_s[idx], np.asarray(nodata_out, dtype=out_dtype))

    return as_dask(da).map_blocks(_block, dtype=out_dtype)


def value_counts(da: xr.DataArray) -> dict[int, int]:
    """Cells per integer value (nodata excluded), streamed block by block."""
    nod = da.rio.nodata
    counts: dict[int, int] = {}
    for _, block in iter_blocks(da):
        v = block.ravel()
        if nod is not None:
            v = v[v != nod]
        u, n = np.unique(v, return_counts=True)
        for val, cnt in zip(u.tolist(), n.tolist(), strict=True):
            counts[int(val)] = counts.get(int(val), 0) + int(cnt)
    return counts


def cross_counts(a: xr.DataArray, b: xr.DataArray) -> dict[tuple[int | None, int | None], int]:
    """Cells per (value in ``a``, value in ``b``) pair on one grid, streamed block by block.

    ``None`` stands for nodata, so cells valid in one raster only are counted, not dropped.
    Values must be integers in [0, 2**31 - 1). The caller checks the grids match
    (``gis.grid.assert_same_grid``).
    """
    da_, db_ = as_dask(a), as_dask(b).rechunk(as_dask(a).chunks)
    na, nb = a.rio.nodata, b.rio.nodata
    out: dict[tuple[int | None, int | None], int] = {}
    for bi, bj in np.ndindex(*da_.numblocks):
        x = np.asarray(da_.blocks[bi, bj].compute()).ravel().astype(np.int64)
        y = np.asarray(db_.blocks[bi, bj].compute()).ravel().astype(np.int64)
        mx = x == na if na is not None else np.zeros(x.shape, bool)
        my = y == nb if nb is not None else np.zeros(y.shape, bool)
        keep = ~(mx & my)
        # one int64 key per pair: (a + 1) << 32 | (b + 1), with 0 standing for nodata
        key = (np.where(mx, 0, x + 1)[keep] << 32) | np.where(my, 0, y + 1)[keep]
        u, n = np.unique(key, return_counts=True)
        for k, cnt in zip(u.tolist(), n.tolist(), strict=True):
            fx, fy = (k >> 32) - 1, (k & 0xFFFFFFFF) - 1
            pair = (None if fx < 0 else fx, None if fy < 0 else fy)
            out[pair] = out.get(pair, 0) + int(cnt)
    return out
