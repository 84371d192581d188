"""QGIS styles and print maps for a run's outputs (orchestration over maps.qgis_style and
maps.print_map)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import rasterio

from gis.raster_io import read_raster
from maps.print_map import print_map
from maps.qgis_style import categorical_raster_qml, raster_qml, vector_qml, write_qml
from maps.styles import (
    CARBON_CHANGE,
    CARBON_DENSITY,
    ZONE_CHOROPLETH,
    Style,
    change_style,
    class_colours,
    graduated_breaks,
    landuse_style,
)

log = logging.getLogger(__name__)
def _range(path: Path) -> tuple[float, float]:
    with rasterio.open(path) as src:
        ov = src.overviews(1)
        a = src.read(1, out_shape=(max(1, src.height // (ov[-1] if ov else 1)),
                                   max(1, src.width // (ov[-1] if ov else 1))))
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0, 1.0
    lo, hi = float(np.percentile(a, 2)), float(np.percentile(a, 98))
    return (min(lo, 0.0), hi) if hi > lo else (lo, lo + 1.0)


def write_styles(out: Path, *, lang: str = "zh", zone_column: str | None = None) -> list[Path]:
    """A ``.qml`` beside every density COG, the change raster and townships.gpkg."""
    written = []
    for tif in sorted(out.glob("carbon_density_*.tif")):
        lo, hi = _range(tif)
        written.append(write_qml(tif, raster_qml(CARBON_DENSITY, lo, hi, "t C/ha",
                                                 nodata=float("nan"))))
    for tif in sorted(out.glob("carbon_change_*.tif")):
        lo, hi = _range(tif)
        m = max(abs(lo), abs(hi)) or 1.0
        written.append(write_qml(tif, raster_qml(CARBON_CHANGE, -m, m, "t C/ha",
                                                 nodata=float("nan"))))
    for tif in sorted(out.glob("landuse_change_*.tif")):
        st = change_style()
        written.append(write_qml(tif, categorical_raster_qml(
            [(c.code, c.colour, c.label(lang)) for c in st.classes], nodata=255)))
    gpkg = out / "townships.gpkg"
    if gpkg.exists() and zone_column:
        import geopandas as gpd

        v = gpd.read_file(gpkg)[zone_column].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        if v.size and v.max() > v.min():
            breaks = graduated_breaks(float(v.min()), float(v.max()), 5)
            written.append(write_qml(gpkg, vector_qml(
                zone_column, breaks, class_colours(ZONE_CHOROPLETH, 5), units="t C/ha",
                label_column="name")))
    return written


def write_print_maps(out: Path, folder: Path, zones: Any, *, title: str, note: str,
                     lang: str, year: int, landcover: Path | None = None,
                     scheme: str = "gbt21010") -> list[Path]:
    """PNG + PDF per theme: carbon density, township mean density, land-use change, land use."""
    folder.mkdir(parents=True, exist_ok=True)
    zh = lang == "zh"
    jobs: list[tuple[str, Any, Any, str, Style, dict[str, Any]]] = []
    dens = out / f"carbon_density_tC_per_ha_{year}.tif"
    if dens.exists():
        jobs.append(("carbon_density", read_raster(dens), zones,
                     "碳密度 (t C/ha)" if zh else "Carbon density (t C/ha)", CARBON_DENSITY, {}))
    col = f"mean_density_tC_per_ha_{year}"
    if col in zones.columns:
        jobs.append(("township_density", None, zones,
                     "平均碳密度 (t C/ha)" if zh else "Mean carbon density (t C/ha)",
                     ZONE_CHOROPLETH, {"zone_column": col, "zone_label_column": "name"}))
    for tif in sorted(out.glob("landuse_change_*.tif")):
        jobs.append(("landuse_change", read_raster(tif, kind="categorical"), zones,
                     "土地利用变化" if zh else "Land-use change", change_style(), {}))
    if landcover is not None and landcover.exists():
        jobs.append((f"landuse_{year}", read_raster(landcover, kind="categorical"), zones,
                     "土地利用" if zh else "Land use", landuse_style(scheme), {}))
    written = []
    for name, raster, z, legend, style, kw in jobs:
        p = print_map(raster, z, title=f"{title} — {legend}", legend_title=legend, style=style,
                      out_png=folder / f"{name}.png", out_pdf=folder / f"{name}.pdf", lang=lang,
                      source_note=note, **kw)
        written += [p.png, folder / f"{name}.pdf"]
    return written
