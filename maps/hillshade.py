"""A hillshade from the DEM as the offline backdrop of every map (no tiles needed)."""

from __future__ import annotations

import folium
import numpy as np
import xarray as xr

from maps.render import encode_png, png_data_uri, warp_to_web_mercator

PANE = "sinkmap-hillshade"


def hillshade(elevation: np.ndarray, cell_m: float, *, azimuth_deg: float = 315.0,
              altitude_deg: float = 45.0, z_factor: float = 1.0) -> np.ndarray:
    """Lambertian hillshade (0-1, NaN where the DEM is NaN) of a north-up elevation grid.

    The classic formula (Burrough & McDonnell 1998, as in GDAL's gdaldem hillshade):
    ``cos(zenith) cos(slope) + sin(zenith) sin(slope) cos(azimuth - aspect)``.
    """
    z = elevation.astype("float64") * z_factor
    dzdy, dzdx = np.gradient(z, cell_m)  # rows go south: dzdy is d/d(-north)
    slope = np.arctan(np.hypot(dzdx, dzdy))
    aspect = np.arctan2(dzdy, -dzdx)  # downhill direction, from east counter-clockwise
    zen = np.radians(90.0 - altitude_deg)
    az = np.radians(360.0 - azimuth_deg + 90.0)
    shade = np.cos(zen) * np.cos(slope) + np.sin(zen) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0.0, 1.0)


def hillshade_png(dem: xr.DataArray, *, max_pixels: int = 1_000_000, z_factor: float = 4.0
                  ) -> tuple[str, list[list[float]]]:
    """The DEM's hillshade as a greyscale PNG data URI and its lon/lat bounds (compute once,
    add to every map with :func:`add_hillshade`).

    For display the relief is exaggerated (``z_factor``) and the shades stretched between
    their 1st and 99th percentiles, so gentle county-scale terrain still reads.
    """
    img = warp_to_web_mercator(dem, max_pixels=max_pixels)
    cell = abs(img.transform.a)
    shade = hillshade(np.nan_to_num(img.values, nan=float(np.nanmean(img.values))), cell,
                      z_factor=z_factor)
    lo, hi = np.percentile(shade, [1, 99])
    shade = np.clip((shade - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
    grey = (1 + np.round(shade * 254)).astype("uint8")  # 1..255; 0 = transparent
    grey[~np.isfinite(img.values)] = 0
    palette = np.repeat(np.arange(256, dtype="uint8")[:, None], 3, axis=1)
    png = encode_png(grey, palette=palette, alpha=np.array([0], dtype="uint8"))
    return png_data_uri(png), img.latlon_bounds()


def add_hillshade(m: folium.Map, shaded: tuple[str, list[list[float]]], *,
                  name: str = "hillshade", opacity: float = 0.6) -> None:
    """Add a :func:`hillshade_png` overlay in a pane below all other overlays."""
    uri, bounds = shaded
    folium.map.CustomPane(PANE, z_index=350, pointer_events=False).add_to(m)
    folium.raster_layers.ImageOverlay(uri, bounds=bounds, name=name, opacity=opacity,
                                      interactive=False, pane=PANE).add_to(m)
