"""The run manifest: inputs with SHA-256, parameters, package versions, timings, outputs."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("sinkmap", "numpy", "xarray", "dask", "rasterio", "rioxarray", "shapely", "pyproj",
            "pyogrio", "geopandas", "pandas", "folium", "openpyxl")


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def file_entries(paths: list[Path], base: Path | None = None) -> list[dict[str, Any]]:
    out = []
    for p in paths:
        files = [p] if p.is_file() else []
        if p.suffix.lower() == ".shp":  # a Shapefile is several files
            files = sorted(q for q in p.parent.glob(p.stem + ".*") if q.is_file())
        for f in files:
            name = str(f.relative_to(base)) if base and f.is_relative_to(base) else str(f)
            out.append({"path": name, "bytes": f.stat().st_size, "sha256": sha256(f)})
    return out


def versions() -> dict[str, str]:
    v = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in PACKAGES:
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = "not installed"
    try:
        import rasterio

        v["gdal"] = rasterio.__gdal_version__
    except Exception:  # pragma: no cover - rasterio always has it
        pass
    return v


def write_manifest(path: Path, *, inputs: list[Path], outputs_dir: Path,
                   parameters: dict[str, Any], timings: dict[str, float],
                   input_base: Path | None = None) -> dict[str, Any]:
    outputs = sorted(p for p in outputs_dir.rglob("*") if p.is_file() and p != path)
    doc = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": parameters,
        "inputs": file_entries(inputs, input_base),
        "outputs": file_entries(outputs, outputs_dir),
        "versions": versions(),
        "timings_s": timings,
    }
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return doc
