"""Small writers shared by the commands' output folders (JSON summaries, GeoPackage layers)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio


def jsonable(o: Any) -> Any:
    """``o`` with numpy scalars as Python numbers, NaN/inf as None, dates as ISO text."""
    if isinstance(o, Mapping):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [jsonable(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating | float):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, date):
        return o.isoformat()
    return o


def write_json(path: Path, obj: Any) -> None:
    """``obj`` (made :func:`jsonable`) as indented UTF-8 JSON."""
    path.write_text(json.dumps(jsonable(obj), ensure_ascii=False, indent=1), encoding="utf-8")


def write_gpkg_layer(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """One layer into a GeoPackage of an (atomic) stage folder; a second layer is added.
    Booleans are written as int8 (not every reader knows GeoPackage booleans)."""
    out = gdf.copy()
    for c in out.columns:
        if c != out.geometry.name and out[c].dtype == bool:
            out[c] = out[c].astype("int8")
    pyogrio.write_dataframe(out, path, layer=layer, driver="GPKG",
                            append=path.exists(), promote_to_multi=True)


__all__ = ["jsonable", "write_gpkg_layer", "write_json"]
