"""Vector I/O at the edges: GeoPackage, GeoJSON and Shapefile.

Chinese Shapefiles often carry a GBK/GB18030 DBF with no ``.cpg`` and no code-page byte; GDAL
then assumes ISO-8859-1 and pyogrio returns mojibake without a word. :func:`read_vector` reads
the ``.cpg`` or the DBF language-driver byte when present, otherwise sniffs the DBF text
(UTF-8, then GB18030, a superset of GBK/GB2312) and says what it chose; ``encoding=`` overrides.
Invalid geometries are repaired with ``make_valid`` and the count is logged and kept in
``gdf.attrs["repaired_geometries"]``.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import shapely

from gis.atomic import atomic_path, check_target
from gis.crs import as_crs
from gis.errors import InputError

log = logging.getLogger(__name__)

DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
# DBF language-driver ids (byte 29) that name a Chinese code page, and the common UTF-8 one.
_LDID = {0x4D: "GB18030", 0x7A: "GB18030", 0x57: None}  # 0x57: ANSI, means "ask the .cpg"


def dbf_encoding(shp_path: str | Path) -> tuple[str | None, str]:
    """Decide the text encoding of a Shapefile's DBF: ``(encoding or None, how it was decided)``.

    ``None`` means GDAL's own handling is right (a .cpg, or no non-ASCII text).
    """
    shp = Path(shp_path)
    for ext in (".cpg", ".CPG"):
        if shp.with_suffix(ext).exists():
            return None, f"declared in {shp.with_suffix(ext).name}"
    dbf = next((shp.with_suffix(e) for e in (".dbf", ".DBF") if shp.with_suffix(e).exists()), None)
    if dbf is None:
        return None, "no .dbf"
    raw = dbf.read_bytes()
    if len(raw) < 32:
        raise InputError("DBF header is truncated", source=dbf, fix="re-export the Shapefile")
    ldid = raw[29]
    if _LDID.get(ldid):
        return _LDID[ldid], f"DBF language-driver byte 0x{ldid:02X}"
    nrec, hlen, rlen = struct.unpack("<IHH", raw[4:12])
    text_fields = []
    pos, off = 32, 1
    while pos + 32 <= hlen and raw[pos] != 0x0D:
        ftype, flen = chr(raw[pos + 11]), raw[pos + 16]
        if ftype in "CM":
            text_fields.append((off, flen))
        off += flen
        pos += 32
    body = raw[hlen: hlen + nrec * rlen]
    chunks = [body[r * rlen + o: r * rlen + o + n] for r in range(nrec) for o, n in text_fields]
    sample = b"\n".join(c.rstrip(b" \x00") for c in chunks)
    if sample.isascii():
        return None, "text is plain ASCII"
    for enc in ("utf-8", "gb18030"):
        try:
            sample.decode(enc)
        except UnicodeDecodeError:
            continue
        return enc.upper(), "detected from the DBF text (no .cpg, no code-page byte)"
    raise InputError("DBF text is neither UTF-8 nor GBK/GB18030", source=dbf,
                     fix="pass the encoding explicitly (encoding='...') or add a .cpg file")


def read_vector(path: str | Path, *, layer: str | int | None = None, encoding: str | None = None,
                crs: Any = None, repair: bool = True) -> gpd.GeoDataFrame:
    """Read a vector file to a GeoDataFrame with correct text, a CRS, and valid geometries."""
    p = Path(path)
    if not p.exists():
        raise InputError("file does not exist", source=p, fix="check the path in the project file")
    how = "given"
    if encoding is None and p.suffix.lower() == ".shp":
        encoding, how = dbf_encoding(p)
    kwargs: dict[str, Any] = {"layer": layer} if layer is not None else {}
    if encoding:
        kwargs["encoding"] = encoding
        log.info("%s: reading text as %s (%s)", p, encoding, how)
    try:
        gdf = pyogrio.read_dataframe(p, **kwargs)
    except Exception as exc:
        raise InputError(f"cannot be read as a vector layer ({exc})", source=p,
                         fix="give a GeoPackage, GeoJSON or Shapefile readable by GDAL") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf:
        raise InputError("has no geometry column", source=p, fix="give a spatial layer")
    if gdf.crs is None:
        if crs is None:
            raise InputError("layer has no CRS", source=p,
                             fix="add a .prj / CRS to the file, or set `crs` for this input in the "
                             "project file")
        gdf = gdf.set_crs(as_crs(crs))
    n_repaired = 0
    if repair:
        geoms = gdf.geometry.values
        bad = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
        n_repaired = int(bad.sum())
        if n_repaired:
            fixed = shapely.make_valid(geoms[bad])
            gdf.loc[bad, gdf.geometry.name] = _polygonal_if(fixed, geoms[bad])
            log.warning("%s: repaired %d invalid geometr%s with make_valid", p, n_repaired,
                        "y" if n_repaired == 1 else "ies")
    gdf.attrs["source"] = str(p)
    gdf.attrs["repaired_geometries"] = n_repaired
    gdf.attrs["encoding"] = encoding or "as declared"
    return gdf


def _polygonal_if(fixed: Any, original: Any) -> Any:
    """Keep only the polygonal parts of repaired polygons (make_valid can add stray lines)."""
    out = []
    for f, o in zip(fixed, original, strict=True):
        if shapely.get_type_id(o) in (3, 6) and shapely.get_type_id(f) == 7:
            parts = [g for g in shapely.get_parts(f) if shapely.get_type_id(g) in (3, 6)]
            f = shapely.union_all(parts) if parts else f
        out.append(f)
    return out


def write_vector(gdf: gpd.GeoDataFrame, path: str | Path, *, overwrite: bool = False,
                 inputs: tuple[str | Path, ...] = (), layer: str | None = None) -> Path:
    """Write atomically as GeoPackage, GeoJSON or Shapefile (chosen by extension, UTF-8 text)."""
    target = Path(path)
    driver = DRIVERS.get(target.suffix.lower())
    if driver is None:
        raise InputError(f"unknown vector format {target.suffix!r}", source=target,
                         fix=f"use one of {', '.join(sorted(DRIVERS))}")
    if gdf.crs is None:
        raise InputError("refusing to write a layer without CRS", source=target,
                         fix="set the CRS of the GeoDataFrame first")
    if driver == "ESRI Shapefile":
        # A Shapefile is several files: write them into a temporary folder, then move each.
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            check_target(target.with_suffix(ext), overwrite=overwrite, inputs=inputs)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{target.stem}.", dir=target.parent) as tmpdir:
            pyogrio.write_dataframe(gdf, Path(tmpdir) / target.name, driver=driver,
                                    encoding="UTF-8")
            for f in sorted(Path(tmpdir).iterdir()):
                os.replace(f, target.with_suffix(f.suffix))
        return target
    with atomic_path(target, overwrite=overwrite, inputs=inputs) as tmp:
        kw = {"layer": layer or target.stem}
        pyogrio.write_dataframe(gdf, tmp, driver=driver, **kw) if driver == "GPKG" else \
            pyogrio.write_dataframe(gdf, tmp, driver=driver)
    return target
