"""The grid contract: one frozen :class:`GridSpec` and one raster type.

A sinkmap raster is an :class:`xarray.DataArray` with dims ``("y", "x")`` whose CRS, transform and
nodata travel with it through rioxarray (``da.rio.crs``, ``da.rio.transform()``,
``da.rio.nodata``), with ``attrs["units"]`` (e.g. ``"tC_per_ha"``, ``"class"``) and
``attrs["kind"]`` (``"categorical"`` or ``"continuous"``). Large rasters are dask-backed so every
per-pixel step runs block by block. Modules never pass a bare array plus a separate transform.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import dask.array as dsa
import numpy as np
import rasterio.warp
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.windows import Window

from gis.crs import (
    crs_key,
    crs_label,
    is_metric_projected,
    lonlat_bounds,
    projected_crs_for,
    require_projected,
)
from gis.errors import CoverageError, CRSError, GridMismatchError, SinkmapError

DEFAULT_CHUNK = 1024
Kind = Literal["categorical", "continuous"]
CATEGORICAL_RESAMPLING = ("nearest", "mode")
CONTINUOUS_RESAMPLING = ("bilinear", "average", "nearest")


@dataclass(frozen=True)
class GridSpec:
    """A raster grid: CRS (as WKT, so the spec is hashable), affine transform and (rows, cols)."""

    crs_wkt: str  # "EPSG:nnnn" when the CRS has an EPSG code, else WKT2 (see crs_key)
    transform: Affine
    shape: tuple[int, int]

    @classmethod
    def create(cls, crs: Any, transform: Affine, shape: tuple[int, int]) -> GridSpec:
        return cls(crs_key(crs), Affine(*tuple(transform)[:6]), (int(shape[0]), int(shape[1])))

    @classmethod
    def from_bounds(cls, bounds: tuple[float, float, float, float], resolution: float,
                    crs: Any) -> GridSpec:
        """North-up grid of square ``resolution`` cells covering ``bounds``, snapped outward to
        whole multiples of the resolution (so grids of the same resolution nest)."""
        if resolution <= 0:
            raise SinkmapError(f"resolution must be positive, got {resolution}")
        w, s, e, n = bounds
        w, s = math.floor(w / resolution) * resolution, math.floor(s / resolution) * resolution
        e, n = math.ceil(e / resolution) * resolution, math.ceil(n / resolution) * resolution
        shape = (round((n - s) / resolution), round((e - w) / resolution))
        return cls.create(crs, Affine(resolution, 0, w, 0, -resolution, n), shape)

    @classmethod
    def of(cls, da: xr.DataArray) -> GridSpec:
        """The grid a raster lies on (its CRS must be set)."""
        crs = da.rio.crs
        if crs is None:
            raise CRSError("raster has no CRS", source=da.attrs.get("source", da.name),
                           fix="write one with da.rio.write_crs(...) or assign it to the file")
        return cls.create(crs, da.rio.transform(recalc=True), (da.sizes["y"], da.sizes["x"]))

    @property
    def crs(self) -> CRS:
        return CRS.from_user_input(self.crs_wkt)

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t, (h, w) = self.transform, self.shape
        xs = (t.c, t.c + t.a * w)
        ys = (t.f, t.f + t.e * h)
        return min(xs), min(ys), max(xs), max(ys)

    def covering(self, bounds: tuple[float, float, float, float], *, margin: int = 1,
                 clip: bool = False) -> GridSpec:
        """The cells of this grid's lattice (north-up) that cover ``bounds`` (in its CRS), plus
        ``margin`` cells on every side; ``clip`` keeps it inside this grid (an error if
        nothing is left)."""
        t = self.transform
        if t.b or t.d:
            raise SinkmapError("the grid is rotated", fix="warp it north-up first")
        rx, ry = t.a, -t.e
        w, s, e, n = bounds
        c0 = math.floor((w - t.c) / rx + 1e-9) - margin
        c1 = math.ceil((e - t.c) / rx - 1e-9) + margin
        r0 = math.floor((t.f - n) / ry + 1e-9) - margin
        r1 = math.ceil((t.f - s) / ry - 1e-9) + margin
        if clip:
            c0, r0 = max(c0, 0), max(r0, 0)
            c1, r1 = min(c1, self.width), min(r1, self.height)
            if c1 <= c0 or r1 <= r0:
                raise CoverageError("the area lies outside the grid",
                                    fix="give a raster that covers the area")
        return GridSpec.create(self.crs, Affine(rx, 0.0, t.c + c0 * rx, 0.0, -ry, t.f - r0 * ry),
                               (r1 - r0, c1 - c0))

    @property
    def pixel_area_m2(self) -> float:
        """Area of one cell; an error unless the CRS is projected in metres."""
        require_projected(self.crs, purpose="pixel area")
        return abs(self.transform.a * self.transform.e - self.transform.b * self.transform.d)

    def coords(self) -> dict[str, np.ndarray]:
        t = self.transform
        x = t.c + t.a * (np.arange(self.width) + 0.5)
        y = t.f + t.e * (np.arange(self.height) + 0.5)
        return {"y": y, "x": x}

    def window_transform(self, window: Window) -> Affine:
        return rasterio.windows.transform(window, self.transform)

    def blocks(self, size: int = DEFAULT_CHUNK) -> Iterator[Window]:
        """Row-major windows of at most ``size`` x ``size`` cells."""
        for r in range(0, self.height, size):
            for c in range(0, self.width, size):
                yield Window(c, r, min(size, self.width - c), min(size, self.height - r))

    def describe(self) -> str:
        return (f"{self.height}x{self.width} cells of {self.res[0]:g}x{self.res[1]:g} in "
                f"{crs_label(self.crs)}, origin ({self.transform.c:.3f}, {self.transform.f:.3f})")


def make_raster(data: Any, grid: GridSpec, *, nodata: float | int | None, units: str,
                kind: Kind, name: str | None = None, chunks: int | None = DEFAULT_CHUNK,
                attrs: dict[str, Any] | None = None) -> xr.DataArray:
    """Wrap a 2-D numpy/dask array as a sinkmap raster on ``grid``."""
    if tuple(data.shape) != grid.shape:
        raise GridMismatchError(f"array shape {tuple(data.shape)} does not match grid {grid.shape}",
                                source=name)
    if chunks and not isinstance(data, dsa.Array):
        data = dsa.from_array(data, chunks=chunks)
    da = xr.DataArray(data, dims=("y", "x"), coords=grid.coords(), name=name,
                      attrs={**(attrs or {}), "units": units, "kind": kind})
    da = da.rio.write_crs(grid.crs_wkt).rio.write_transform(grid.transform)
    da.name = name  # xarray would otherwise take the dask key as the name
    return da.rio.write_nodata(nodata, encoded=False)


def like(template: xr.DataArray, data: Any, *, nodata: float | int | None, units: str,
         kind: Kind, name: str | None = None) -> xr.DataArray:
    """A new raster on ``template``'s grid (CRS and transform carried over)."""
    da = xr.DataArray(data, dims=("y", "x"), coords={"y": template.y, "x": template.x},
                      name=name, attrs={"units": units, "kind": kind})
    da = da.rio.write_crs(template.rio.crs).rio.write_transform(template.rio.transform())
    return da.rio.write_nodata(nodata, encoded=False)


def assert_same_grid(a: xr.DataArray, b: xr.DataArray, *, names: tuple[str, str] | None = None
                     ) -> GridSpec:
    """Raise :class:`GridMismatchError`, naming what differs, unless a and b share a grid."""
    na, nb = names or (str(a.name or "first raster"), str(b.name or "second raster"))
    ga, gb = GridSpec.of(a), GridSpec.of(b)
    diffs = []
    if ga.crs != gb.crs:
        diffs.append(f"CRS {crs_label(ga.crs)} vs {crs_label(gb.crs)}")
    if ga.shape != gb.shape:
        diffs.append(f"shape {ga.shape} vs {gb.shape}")
    if not ga.transform.almost_equals(gb.transform, precision=1e-6 * max(ga.res)):
        diffs.append(f"transform {tuple(ga.transform)[:6]} vs {tuple(gb.transform)[:6]}")
    if diffs:
        raise GridMismatchError(
            f"{na} and {nb} are on different grids: " + "; ".join(diffs),
            fix=f"align {nb} to {na} with gis.grid.align_to(..., resampling=...) "
            "(nearest/mode for classes, bilinear/average for continuous values)")
    return ga


def align_to(da: xr.DataArray, grid: GridSpec, *, resampling: str,
             chunks: int = DEFAULT_CHUNK) -> xr.DataArray:
    """Resample ``da`` onto ``grid``, lazily and block by block.

    ``resampling`` is required: ``nearest`` or ``mode`` for class rasters; ``bilinear`` or
    ``average`` (or ``nearest``) for continuous ones. Asking for an averaging method on a
    categorical raster is an error, since it would invent classes.
    """
    kind = da.attrs.get("kind")
    allowed = CATEGORICAL_RESAMPLING if kind == "categorical" else (*CONTINUOUS_RESAMPLING, "mode")
    if resampling not in allowed:
        raise SinkmapError(
            f"resampling {resampling!r} is not valid for a {kind or 'raster'} layer",
            source=da.name,
            fix=f"use one of {', '.join(allowed)}")
    method = Resampling[resampling]
    src_grid = GridSpec.of(da)
    src_nodata = da.rio.nodata
    dst_nodata = src_nodata if src_nodata is not None else (
        np.nan if np.issubdtype(da.dtype, np.floating) else 0)
    dtype = da.dtype

    def _block(block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        win = Window(c0, r0, c1 - c0, r1 - r0)
        dst_t = grid.window_transform(win)
        out = np.full((r1 - r0, c1 - c0), dst_nodata, dtype=dtype)
        # source window covering this destination block, with a 2-cell margin for kernels
        bx = rasterio.windows.bounds(win, grid.transform)
        sb = rasterio.warp.transform_bounds(grid.crs, src_grid.crs, *bx, densify_pts=21)
        sw = rasterio.windows.from_bounds(*sb, transform=src_grid.transform)
        r_lo = max(math.floor(sw.row_off) - 2, 0)
        c_lo = max(math.floor(sw.col_off) - 2, 0)
        r_hi = min(math.ceil(sw.row_off + sw.height) + 2, src_grid.height)
        c_hi = min(math.ceil(sw.col_off + sw.width) + 2, src_grid.width)
        if r_hi <= r_lo or c_hi <= c_lo:
            return out
        src = np.asarray(da.isel(y=slice(r_lo, r_hi), x=slice(c_lo, c_hi)).values)
        src_t = src_grid.window_transform(Window(c_lo, r_lo, c_hi - c_lo, r_hi - r_lo))
        with rasterio.Env():  # each dask worker thread needs its own GDAL environment
            rasterio.warp.reproject(src, out, src_transform=src_t, src_crs=src_grid.crs,
                                    src_nodata=src_nodata, dst_transform=dst_t,
                                    dst_crs=grid.crs, dst_nodata=dst_nodata, resampling=method)
        return out

    data = dsa.map_blocks(_block, dtype=dtype,
                          chunks=dsa.core.normalize_chunks(chunks, grid.shape))
    return make_raster(data, grid, nodata=dst_nodata, units=da.attrs.get("units", ""),
                       kind=kind or "continuous", name=da.name, chunks=None,
                       attrs={k: v for k, v in da.attrs.items() if k not in ("units", "kind")})


def project_raster(da: xr.DataArray, *, resampling: str, resolution: float | None = None,
                   chunks: int = DEFAULT_CHUNK) -> xr.DataArray:
    """Project a geographic raster on purpose to the metric CRS chosen for its extent.

    The CRS is :func:`gis.crs.projected_crs_for` (CGCS2000 Gauss-Krüger in China, UTM elsewhere;
    the choice is logged); ``resolution`` defaults to the source cell height in metres, rounded.
    A raster already projected in metres is returned unchanged.
    """
    src = GridSpec.of(da)
    if is_metric_projected(src.crs):
        return da
    w, s, e, n = lonlat_bounds(src.bounds, src.crs)
    crs = projected_crs_for((w, s, e, n))
    if resolution is None:
        resolution = max(round(src.res[1] * 111_320.0), 1)
    t = Transformer.from_crs(src.crs, crs, always_xy=True)
    bounds = t.transform_bounds(*src.bounds, densify_pts=21)
    return align_to(da, GridSpec.from_bounds(bounds, resolution, crs), resampling=resampling,
                    chunks=chunks)
