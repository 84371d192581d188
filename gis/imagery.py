"""Optical scenes: reading STAC items or dated GeoTIFF folders, radiometry, onto an analysis grid.

A :class:`Scene` is one acquisition (one sensor, one date) whose bands are :class:`BandAsset` s
under *common names*: ``"blue"``, ``"green"``, ``"red"``, ``"nir"``, ``"swir1"``, ``"swir2"``
(plus ``"rededge1"`` for Sentinel-2 B05) and the quality band ``"qa"``.

Sources (:func:`read_scenes`)
-----------------------------
* **STAC JSON**: an ItemCollection / FeatureCollection, or a single Item. Relative asset
  ``href`` s are resolved from the JSON file's folder (``file://`` URLs are accepted; remote
  ``http(s)`` hrefs are refused: download the assets first). Asset keys:

  ===============================  ======================================================
  Sentinel-2 L2A / L1C             ``B02`` blue, ``B03`` green, ``B04`` red, ``B08`` nir,
                                   ``B11`` swir1, ``B12`` swir2, ``SCL`` qa, ``B05`` rededge1;
                                   Earth-Search keys ``blue green red nir swir16 swir22 scl
                                   rededge1``; ``B8A`` / ``nir08`` as nir only without ``B08``
  Landsat 8/9 Collection 2 L2      ``SR_B2`` .. ``SR_B7`` (blue, green, red, nir, swir1,
                                   swir2), ``QA_PIXEL`` qa; also ``blue green red nir08
                                   swir16 swir22 qa_pixel``
  Landsat 8 pre-collection L1      ``B2`` .. ``B7`` and ``BQA`` (sensor ``landsat_l1_bqa``)
  ===============================  ======================================================

  Keys are matched case-insensitively; other assets are ignored. The sensor comes from the
  item property ``platform`` (``sentinel-2a/b/c`` -> ``sentinel2_l2a``, or ``sentinel2_l1c``
  when ``s2:product_type``/``processing:level``/the product id says L1C; ``landsat-8/9`` ->
  ``landsat_c2_l2``, or ``landsat_l1_bqa`` when the assets are ``B<n>``/``BQA``), else from
  the asset keys. The date is the item ``datetime`` (or ``start_datetime``).

* **A folder of per-date band GeoTIFFs** named ``<sensor>_<YYYYMMDD>_<band>.tif`` (``.tiff``
  too, case-insensitive), e.g. ``S2_20250512_B11.tif``, ``S2L2A_20250512_SCL.tif``,
  ``L8_20250512_SR_B6.tif``, ``L9_20250601_QA_PIXEL.tif``. ``<sensor>`` is ``S2`` or ``S2L2A``
  (Sentinel-2 L2A) or ``L8``/``L9`` (Landsat Collection 2 L2); ``<band>`` is one of that
  sensor's asset keys above. One scene per (sensor, date), id ``<sensor>_<YYYYMMDD>``. Files
  that do not follow the rule are ignored with a log line; a folder where no file follows it is
  an :class:`~gis.errors.InputError` that lists them.

Radiometry (reflectance = ``scale * DN + offset``; DN 0 and the nodata value -> NaN)
-----------------------------------------------------------------------------------
1. The asset's STAC raster extension when it gives ``scale`` or ``offset``: ``raster:bands[0]``
   (``scale``, ``offset``, ``nodata``), or STAC 1.1 ``bands[0]`` / asset-level
   ``raster:scale``, ``raster:offset``, ``nodata``. ``scale_source = "raster:bands"``.
2. Folder GeoTIFFs only: the file's own band scale/offset when it is not (1, 0).
3. The documented product rules:

   * Sentinel-2 (L2A ``BOA_ADD_OFFSET``, L1C ``RADIO_ADD_OFFSET``): processing baseline
     >= 04.00 -> ``DN * 1e-4 - 0.1``; earlier -> ``DN * 1e-4``. The baseline comes from
     ``s2:processing_baseline``, ``processing:version`` or the ``_Nxxyy_`` token of the product
     id (``s2:product_uri``, ``s2:granule_id`` or the item id). When none is given (always for
     folders) the acquisition date decides: baseline 04.00 entered operations on 2022-01-25,
     so later acquisitions take the offset. Archive products *reprocessed* with baseline
     >= 04.00 need a STAC item that says so.
   * Landsat Collection 2 L2 surface reflectance: ``DN * 2.75e-5 - 0.2``.
   * Landsat pre-collection Level-1 has no fixed rule: the scene's ``REFLECTANCE_MULT_BAND_n``
     and ``REFLECTANCE_ADD_BAND_n`` (MTL file, see :func:`mtl_reflectance`) must be given as
     ``raster:bands`` scale/offset (top-of-atmosphere reflectance without the sun-elevation
     correction).

   The rule used is logged (INFO) for every scene.

Onto a grid (:func:`load_bands`)
--------------------------------
Bands are read lazily (dask blocks, memory bounded by the block size), converted to float32
reflectance on their native grid, then put on the analysis grid:

* same grid lattice (same CRS and cell size, origin on the source's pixel lattice): a window
  read, no resampling (cells outside the source are NaN);
* source cells coarser than the grid: **bilinear**;
* source cells finer than the grid: **average** (of the valid, non-NaN source cells);
* same cell size but another CRS or a shifted lattice: bilinear;
* the quality band ``qa``: **nearest**, native integer dtype, cells outside the source set to
  the fill value (SCL 0; Landsat QA_PIXEL/BQA 1 = "designated fill" bit), recorded as nodata.

A scene that does not overlap the grid gives all-NaN bands (:func:`covers` tells the covered
fraction beforehand).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import dask.array as dsa
import numpy as np
import rasterio
import rasterio.errors
import rasterio.warp
import shapely
import xarray as xr
from dask.base import tokenize as dask_token
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from gis.crs import as_crs, crs_key
from gis.errors import InputError
from gis.grid import DEFAULT_CHUNK, GridSpec, make_raster

log = logging.getLogger(__name__)

COMMON_BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")
REFLECTANCE_BANDS = (*COMMON_BANDS, "rededge1")
QA = "qa"
GRID_BANDS = ("red", "nir", "swir1", "swir2")  # analysis_grid takes the finest of these

SENTINEL2_L2A = "sentinel2_l2a"
SENTINEL2_L1C = "sentinel2_l1c"
LANDSAT_C2_L2 = "landsat_c2_l2"
LANDSAT_L1_BQA = "landsat_l1_bqa"
SENSORS = (SENTINEL2_L2A, SENTINEL2_L1C, LANDSAT_C2_L2, LANDSAT_L1_BQA)

# asset key (lower case) -> common name, per sensor family
_S2_KEYS = {"b02": "blue", "b03": "green", "b04": "red", "b08": "nir", "b11": "swir1",
            "b12": "swir2", "scl": "qa", "b05": "rededge1", "blue": "blue", "green": "green",
            "red": "red", "nir": "nir", "swir16": "swir1", "swir22": "swir2",
            "rededge1": "rededge1"}
_S2_NIR_FALLBACK = ("b8a", "nir08")  # narrow NIR, used as "nir" only when B08 is absent
_LC2_KEYS = {"sr_b2": "blue", "sr_b3": "green", "sr_b4": "red", "sr_b5": "nir", "sr_b6": "swir1",
             "sr_b7": "swir2", "qa_pixel": "qa", "blue": "blue", "green": "green", "red": "red",
             "nir08": "nir", "swir16": "swir1", "swir22": "swir2"}
_L1_KEYS = {"b2": "blue", "b3": "green", "b4": "red", "b5": "nir", "b6": "swir1", "b7": "swir2",
            "bqa": "qa"}
_S2_ONLY = {"scl", "b02", "b03", "b04", "b08", "b8a", "b11", "b12"}
_LANDSAT_ONLY = {"qa_pixel", "sr_b2", "sr_b3", "sr_b4", "sr_b5", "sr_b6", "sr_b7"}
_KEYS = {SENTINEL2_L2A: _S2_KEYS, SENTINEL2_L1C: _S2_KEYS, LANDSAT_C2_L2: _LC2_KEYS,
         LANDSAT_L1_BQA: _L1_KEYS}

# Fill value written for qa cells outside the source (and the qa nodata when the file has none)
QA_FILL = {SENTINEL2_L2A: 0, SENTINEL2_L1C: 0, LANDSAT_C2_L2: 1, LANDSAT_L1_BQA: 1}

S2_OFFSET_BASELINE = (4, 0)
S2_OFFSET_SINCE = dt.date(2022, 1, 25)  # baseline 04.00 entered operations
LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET = 2.75e-5, -0.2

_FOLDER_RULE = re.compile(r"^(?P<sensor>S2L2A|S2|L8|L9)_(?P<date>\d{8})_(?P<band>[A-Za-z0-9_]+)"
                          r"\.tiff?$", re.IGNORECASE)
_FOLDER_SENSORS = {"s2": SENTINEL2_L2A, "s2l2a": SENTINEL2_L2A, "l8": LANDSAT_C2_L2,
                   "l9": LANDSAT_C2_L2}
_BASELINE_TOKEN = re.compile(r"_N(\d{2})(\d{2})(?:_|$)")


@dataclass(frozen=True)
class BandAsset:
    """One band file and how to turn its DN into reflectance (``scale * DN + offset``)."""

    href: Path
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    scale_source: str = ""


@dataclass(frozen=True)
class Scene:
    """One acquisition; ``assets`` are keyed by common band name (and ``"qa"``)."""

    id: str
    date: dt.date
    sensor: str
    assets: Mapping[str, BandAsset]
    source: Path
    cloud_cover: float | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


# --- reading -----------------------------------------------------------------------------------

def read_scenes(path: str | Path) -> list[Scene]:
    """Scenes from a STAC JSON (ItemCollection, FeatureCollection or Item) or a folder of dated
    band GeoTIFFs (see the module docstring), sorted by date (then id)."""
    p = Path(path)
    if not p.exists():
        raise InputError("does not exist", source=p,
                         fix="give a STAC ItemCollection/Item JSON or a folder of band GeoTIFFs")
    p = p.resolve()
    scenes = _read_folder(p) if p.is_dir() else _read_stac(p)
    scenes.sort(key=lambda s: (s.date, s.id))
    for s in scenes:
        rules = sorted({f"{a.scale_source}" for k, a in s.assets.items() if k != QA})
        log.info("scene %s (%s, %s): %d bands, radiometry %s", s.id, s.sensor, s.date,
                 len(s.assets), "; ".join(rules) or "none")
    return scenes


def _read_stac(p: Path) -> list[Scene]:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot be read as JSON ({exc})", source=p,
                         fix="give a STAC ItemCollection or Item JSON file (UTF-8), e.g. as "
                         "written by pystac or a STAC API search") from exc
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        items = [doc]
    elif isinstance(doc, dict) and isinstance(doc.get("features"), list):
        items = doc["features"]
    else:
        raise InputError("is JSON but not a STAC Item, ItemCollection or FeatureCollection",
                         source=p, fix="give an Item ('type': 'Feature') or a collection of "
                         "them ('features': [...])")
    if not items:
        raise InputError("holds no STAC items", source=p, fix="check the search that wrote it")
    return [_scene_from_item(item, p, i) for i, item in enumerate(items)]


def _scene_from_item(item: Any, p: Path, index: int) -> Scene:
    if not isinstance(item, dict):
        raise InputError(f"item {index} is not a JSON object", source=p,
                         fix="each feature must be a STAC Item")
    sid = str(item.get("id") or f"item{index}")
    props = item.get("properties") or {}
    assets = item.get("assets") or {}
    if not isinstance(assets, dict) or not assets:
        raise InputError(f"STAC item {sid!r} has no assets", source=p,
                         fix="each item needs an 'assets' object with band hrefs")
    date = _item_date(props, sid, p)
    sensor = _detect_sensor(props, assets.keys(), sid)
    if sensor is None:
        raise InputError(
            f"STAC item {sid!r}: cannot tell the sensor (platform {props.get('platform')!r}, "
            f"assets {sorted(assets)})", source=p,
            fix="set properties.platform (sentinel-2a/b/c, landsat-8/9) or use the documented "
            "asset keys (B04/B08/B11/B12/SCL, SR_B4..SR_B7/QA_PIXEL)")
    chosen = _map_keys(sensor, assets.keys())
    base = p.parent
    out: dict[str, BandAsset] = {}
    for common, key in chosen.items():
        a = assets[key]
        href = _resolve_href(a.get("href") if isinstance(a, dict) else None, base, sid, key, p)
        out[common] = _asset_radiometry(href, a, common, sensor, props, sid, date, p)
    cc = props.get("eo:cloud_cover")
    return Scene(sid, date, sensor, out, p, float(cc) if cc is not None else None, props)


def _item_date(props: Mapping[str, Any], sid: str, p: Path) -> dt.date:
    text = props.get("datetime") or props.get("start_datetime")
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).date()
    except (TypeError, ValueError):
        raise InputError(f"STAC item {sid!r} has no valid datetime ({text!r})", source=p,
                         fix="set properties.datetime, e.g. '2025-05-12T02:45:31Z'") from None


def _detect_sensor(props: Mapping[str, Any], keys: Iterable[str], sid: str) -> str | None:
    low = {k.lower() for k in keys}
    platform = str(props.get("platform") or "").lower().replace("_", "-")
    if platform.startswith("sentinel-2"):
        family = "s2"
    elif platform.startswith(("landsat-8", "landsat-9")):
        family = "landsat"
    elif low & _S2_ONLY:
        family = "s2"
    elif low & (_LANDSAT_ONLY | set(_L1_KEYS)):
        family = "landsat"
    else:
        return None
    if family == "s2":
        level = " ".join(str(props.get(k) or "") for k in (
            "s2:product_type", "processing:level", "s2:product_uri")) + " " + sid
        return SENTINEL2_L1C if re.search(r"L1C|MSI1C", level, re.IGNORECASE) else SENTINEL2_L2A
    if low & set(_L1_KEYS) and not low & _LANDSAT_ONLY:
        return LANDSAT_L1_BQA
    return LANDSAT_C2_L2


def _map_keys(sensor: str, keys: Iterable[str]) -> dict[str, str]:
    """common name -> original asset key (first key wins when two map to one name)."""
    table = _KEYS[sensor]
    chosen: dict[str, str] = {}
    keys = list(keys)
    for k in keys:
        common = table.get(k.lower())
        if common and common not in chosen:
            chosen[common] = k
    if sensor in (SENTINEL2_L2A, SENTINEL2_L1C) and "nir" not in chosen:
        for k in keys:
            if k.lower() in _S2_NIR_FALLBACK:
                chosen["nir"] = k
                break
    return chosen


def _resolve_href(href: Any, base: Path, sid: str, key: str, p: Path) -> Path:
    if not href or not isinstance(href, str):
        raise InputError(f"STAC item {sid!r} asset {key!r} has no href", source=p,
                         fix="give each band asset an 'href' (relative to the JSON's folder)")
    url = urlparse(href)
    if url.scheme in ("http", "https", "s3", "gs"):
        raise InputError(
            f"STAC item {sid!r} asset {key!r} is remote ({href}); sinkmap reads local files",
            source=p, fix="download the assets (e.g. `stac-asset download`) and write the JSON "
            "with local, preferably relative, hrefs")
    local = Path(unquote(url.path)) if url.scheme == "file" else Path(href)
    return (local if local.is_absolute() else base / local).resolve()


def _raster_ext(a: Mapping[str, Any]) -> dict[str, Any]:
    """scale/offset/nodata from the STAC raster extension (v1 raster:bands or STAC 1.1 bands)."""
    out: dict[str, Any] = {}
    rb = a.get("raster:bands")
    if isinstance(rb, list) and rb and isinstance(rb[0], dict):
        for k in ("scale", "offset", "nodata"):
            if k in rb[0]:
                out[k] = rb[0][k]
    bands = a.get("bands")
    if isinstance(bands, list) and bands and isinstance(bands[0], dict):
        for k in ("scale", "offset"):
            if f"raster:{k}" in bands[0]:
                out.setdefault(k, bands[0][f"raster:{k}"])
        if "nodata" in bands[0]:
            out.setdefault("nodata", bands[0]["nodata"])
    for k in ("scale", "offset"):
        if f"raster:{k}" in a:
            out.setdefault(k, a[f"raster:{k}"])
    if "nodata" in a:
        out.setdefault("nodata", a["nodata"])
    return out


def _nodata_value(v: Any) -> float | None:
    """STAC nodata: a number or one of the strings "nan", "inf", "-inf"."""
    return None if v is None else float(v)


def _s2_baseline(props: Mapping[str, Any], sid: str) -> tuple[int, int] | None:
    for k in ("s2:processing_baseline", "processing:version"):
        v = props.get(k)
        if v is not None:
            m = re.match(r"^\s*(\d+)(?:\.(\d+))?", str(v))
            if m:
                return int(m.group(1)), int(m.group(2) or 0)
    for text in (props.get("s2:product_uri"), props.get("s2:granule_id"), sid):
        m = _BASELINE_TOKEN.search(str(text or ""))
        if m:
            return int(m.group(1)), int(m.group(2))
    return None


def _rule(sensor: str, props: Mapping[str, Any], sid: str, date: dt.date,
          p: Path) -> tuple[float, float, str]:
    """(scale, offset, rule description) from the documented product rules."""
    if sensor in (SENTINEL2_L2A, SENTINEL2_L1C):
        base = _s2_baseline(props, sid)
        if base is not None:
            shifted = base >= S2_OFFSET_BASELINE
            why = f"S2 baseline {base[0]:02d}.{base[1]:02d} {'>=' if shifted else '<'} 04.00"
        else:
            shifted = date >= S2_OFFSET_SINCE
            why = (f"S2 without baseline, acquired {date} {'on/after' if shifted else 'before'} "
                   f"{S2_OFFSET_SINCE} (baseline 04.00)")
        if shifted:
            return 1e-4, -0.1, f"{why}: DN*1e-4 - 0.1"
        return 1e-4, 0.0, f"{why}: DN*1e-4"
    if sensor == LANDSAT_C2_L2:
        return LANDSAT_C2_SCALE, LANDSAT_C2_OFFSET, "Landsat C2 L2 SR: DN*2.75e-5 - 0.2"
    raise InputError(
        f"scene {sid!r} is Landsat pre-collection Level-1: its DN have no fixed reflectance rule",
        source=p, fix="put the scene's MTL REFLECTANCE_MULT_BAND_n / REFLECTANCE_ADD_BAND_n in "
        "each asset's raster:bands as scale / offset (gis.imagery.mtl_reflectance reads them)")


def _asset_radiometry(href: Path, a: Any, common: str, sensor: str, props: Mapping[str, Any],
                      sid: str, date: dt.date, p: Path,
                      file_scale: tuple[float, float] | None = None) -> BandAsset:
    ext = _raster_ext(a) if isinstance(a, dict) else {}
    nodata = _nodata_value(ext.get("nodata"))
    if common == QA:
        return BandAsset(href, 1.0, 0.0, nodata, "quality band (not scaled)")
    if "scale" in ext or "offset" in ext:
        return BandAsset(href, float(ext.get("scale", 1.0)), float(ext.get("offset", 0.0)),
                         nodata if nodata is not None else 0.0, "raster:bands")
    if file_scale is not None and file_scale != (1.0, 0.0):
        return BandAsset(href, file_scale[0], file_scale[1],
                         nodata if nodata is not None else 0.0, "GeoTIFF scale/offset")
    scale, offset, why = _rule(sensor, props, sid, date, p)
    return BandAsset(href, scale, offset, nodata if nodata is not None else 0.0, why)


def _read_folder(folder: Path) -> list[Scene]:
    files = sorted(f for f in folder.iterdir() if f.is_file())
    groups: dict[tuple[str, str], dict[str, Path]] = {}
    ignored: list[str] = []
    for f in files:
        m = _FOLDER_RULE.match(f.name)
        if not m:
            ignored.append(f.name)
            continue
        tag = m.group("sensor").upper()
        sensor = _FOLDER_SENSORS[tag.lower()]
        band = m.group("band")
        known = set(_KEYS[sensor]) | (set(_S2_NIR_FALLBACK) if sensor == SENTINEL2_L2A else set())
        if band.lower() not in known:
            ignored.append(f.name)
            continue
        groups.setdefault((tag, m.group("date")), {})[band] = f
    if not groups:
        shown = ", ".join(ignored[:10]) + (f" (+{len(ignored) - 10} more)" if len(ignored) > 10
                                            else "")
        raise InputError(
            f"no file follows the naming rule <sensor>_<YYYYMMDD>_<band>.tif "
            f"(found: {shown or 'no files'})", source=folder,
            fix="name band files e.g. S2_20250512_B04.tif, S2_20250512_SCL.tif, "
            "L8_20250512_SR_B6.tif (sensor S2/S2L2A/L8/L9, band = the product's asset key), "
            "or give a STAC ItemCollection JSON")
    for name in ignored:
        log.info("%s: ignored %s (not <sensor>_<YYYYMMDD>_<band>.tif with a known band)",
                 folder, name)
    scenes = []
    for (tag, ymd), bands in groups.items():
        sensor = _FOLDER_SENSORS[tag.lower()]
        sid = f"{tag}_{ymd}"
        try:
            date = dt.datetime.strptime(ymd, "%Y%m%d").date()
        except ValueError:
            raise InputError(f"{sid}: {ymd} is not a valid date", source=folder,
                             fix="use YYYYMMDD in the file names") from None
        chosen = _map_keys(sensor, bands.keys())
        assets = {}
        for common, key in chosen.items():
            href = bands[key].resolve()
            try:
                with rasterio.open(href) as src:
                    fs = (float(src.scales[0]), float(src.offsets[0]))
                    nod = src.nodata
            except rasterio.errors.RasterioIOError as exc:
                raise InputError(f"cannot be read as a raster ({exc})", source=href,
                                 fix="replace or remove the file") from exc
            a = {"nodata": nod} if nod is not None else {}
            assets[common] = _asset_radiometry(href, a, common, sensor, {}, sid, date, folder,
                                               file_scale=fs)
        scenes.append(Scene(sid, date, sensor, assets, folder, None, {}))
    return scenes


def mtl_reflectance(path: str | Path) -> dict[int, tuple[float, float]]:
    """``{band: (REFLECTANCE_MULT_BAND_n, REFLECTANCE_ADD_BAND_n)}`` from a Landsat MTL text file,
    to give as ``raster:bands`` scale/offset of Level-1 assets."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot be read ({exc})", source=p, fix="give the scene's MTL.txt"
                         ) from exc
    mult = {int(b): float(v) for b, v in re.findall(
        r"REFLECTANCE_MULT_BAND_(\d+)\s*=\s*([-+0-9.Ee]+)", text)}
    add = {int(b): float(v) for b, v in re.findall(
        r"REFLECTANCE_ADD_BAND_(\d+)\s*=\s*([-+0-9.Ee]+)", text)}
    out = {b: (mult[b], add[b]) for b in sorted(mult) if b in add}
    if not out:
        raise InputError("has no REFLECTANCE_MULT_BAND_n / REFLECTANCE_ADD_BAND_n lines",
                         source=p, fix="give the Landsat Level-1 MTL file of the scene")
    return out


# --- onto a grid -------------------------------------------------------------------------------

def _on_same_lattice(src: GridSpec, grid: GridSpec) -> tuple[int, int] | None:
    """(row, col) offset of ``grid``'s origin in ``src`` pixels if both share a pixel lattice."""
    if crs_key(src.crs) != crs_key(grid.crs):
        return None
    st, gt = src.transform, grid.transform
    if st.b or st.d or gt.b or gt.d:
        return None
    if not (math.isclose(st.a, gt.a, rel_tol=1e-9) and math.isclose(st.e, gt.e, rel_tol=1e-9)):
        return None
    col = (gt.c - st.c) / st.a
    row = (gt.f - st.f) / st.e
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(row), round(col)


def _cell_size_in(src: GridSpec, grid: GridSpec) -> float:
    """Approximate source cell size expressed in the grid's CRS units (geometric mean)."""
    if crs_key(src.crs) == crs_key(grid.crs):
        return math.sqrt(src.res[0] * src.res[1])
    w, s, e, n = rasterio.warp.transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    return math.sqrt(((e - w) / src.width) * ((n - s) / src.height))


def resampling_for(src: GridSpec, grid: GridSpec, *, qa: bool = False) -> str:
    """The documented rule: ``"window"`` (same lattice, no resampling), ``"bilinear"`` (source
    coarser, or same size on another lattice/CRS), ``"average"`` (source finer); qa ``nearest``."""
    if _on_same_lattice(src, grid) is not None:
        return "window"
    if qa:
        return "nearest"
    size = _cell_size_in(src, grid)
    target = math.sqrt(grid.res[0] * grid.res[1])
    return "average" if size < target * (1 - 1e-6) else "bilinear"


def _block_reader(href: Path, src: GridSpec, grid: GridSpec, method: str, *, qa: bool,
                  asset: BandAsset, file_nodata: float | None, fill: Any, dtype: Any
                  ) -> Any:
    """The per-block task of :func:`load_bands`: one GDAL read of exactly the block's cells.

    Same lattice: a window read (padded with ``fill`` outside the file); otherwise a WarpedVRT
    onto the block's own transform with the rule's resampling, the source nodata (and DN 0 for
    reflectance) excluded from the kernels. Reflectance is converted here, in float32. No
    nested dask computation: every block is one task.
    """
    off = _on_same_lattice(src, grid) if method == "window" else None
    bad_values = [v for v in (0, asset.nodata, file_nodata)
                  if v is not None and not (isinstance(v, float) and math.isnan(v))]
    warp_nodata = file_nodata if qa else (bad_values[0] if bad_values else None)
    pad = fill if qa else (bad_values[0] if bad_values else 0)

    def block(block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        h, w = r1 - r0, c1 - c0
        with rasterio.open(href) as ds:
            if off is not None:
                row, col = off[0] + r0, off[1] + c0
                rr0, rr1 = max(row, 0), min(row + h, src.height)
                cc0, cc1 = max(col, 0), min(col + w, src.width)
                raw = np.full((h, w), pad, dtype=ds.dtypes[0])
                if rr1 > rr0 and cc1 > cc0:
                    raw[rr0 - row:rr1 - row, cc0 - col:cc1 - col] = ds.read(
                        1, window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
            else:
                with WarpedVRT(ds, crs=grid.crs,
                               transform=grid.window_transform(Window(c0, r0, w, h)),
                               width=w, height=h, resampling=Resampling[method],
                               src_nodata=warp_nodata, nodata=pad,
                               dtype=None if qa else "float32",  # no DN rounding
                               tolerance=0.001) as vrt:  # near-exact transformer (pixels)
                    raw = vrt.read(1)
        if qa:
            return raw.astype(dtype, copy=False)
        out = raw.astype(np.float32) * np.float32(asset.scale) + np.float32(asset.offset)
        invalid = np.zeros(raw.shape, bool)
        for v in bad_values:
            invalid |= raw == v
        if np.issubdtype(raw.dtype, np.floating):
            invalid |= np.isnan(raw)
        out[invalid] = np.nan
        return out

    return block


def load_bands(scene: Scene, grid: GridSpec,
               bands: Sequence[str] = ("red", "nir", "swir1", "swir2"), *,
               chunks: int = DEFAULT_CHUNK) -> dict[str, xr.DataArray]:
    """The scene's ``bands`` lazily on ``grid``: reflectance float32 (NaN nodata) and, when
    ``"qa"`` is asked for, the quality band in its integer dtype (nearest). Resampling follows
    the rule in the module docstring (see :func:`resampling_for`); nothing is computed here."""
    missing = [b for b in bands if b not in scene.assets]
    if missing:
        have = ", ".join(sorted(scene.assets)) or "none"
        raise InputError(
            f"scene {scene.id!r} ({scene.sensor}, {scene.date}) lacks band(s) "
            f"{', '.join(missing)} (it has: {have})", source=scene.source,
            fix="add the asset(s) to the STAC item / the band file(s) to the folder, or drop "
            "the scene")
    out: dict[str, xr.DataArray] = {}
    chunk_shape = dsa.core.normalize_chunks(chunks, grid.shape)
    for band in bands:
        asset = scene.assets[band]
        if not asset.href.exists():
            raise InputError(f"scene {scene.id!r} band {band!r}: file {asset.href} does not exist",
                             source=scene.source, fix="fix the href (relative hrefs are resolved "
                             "from the JSON's folder) or restore the file")
        try:
            with rasterio.open(asset.href) as ds:
                if ds.crs is None:
                    raise InputError("raster has no CRS", source=asset.href,
                                     fix="assign one (gdal_edit.py -a_srs EPSG:nnnn FILE)")
                src = GridSpec.create(ds.crs, ds.transform, ds.shape)
                file_nodata, file_dtype = ds.nodata, np.dtype(ds.dtypes[0])
        except rasterio.errors.RasterioIOError as exc:
            raise InputError(f"scene {scene.id!r} band {band!r}: cannot be read ({exc})",
                             source=asset.href, fix="give a GeoTIFF/COG readable by GDAL") from exc
        is_qa = band == QA
        if is_qa:
            fill = file_nodata if file_nodata is not None else asset.nodata
            if fill is None:
                fill = QA_FILL[scene.sensor]
            fill = file_dtype.type(fill)
            dtype: Any = file_dtype
        else:
            fill, dtype = np.float32(np.nan), np.dtype("float32")
        method = resampling_for(src, grid, qa=is_qa)
        data = dsa.map_blocks(
            _block_reader(asset.href, src, grid, method, qa=is_qa, asset=asset,
                          file_nodata=file_nodata, fill=fill, dtype=dtype),
            dtype=dtype, chunks=chunk_shape,
            name=f"load-{scene.id}-{band}-{dask_token(grid, str(asset.href))}")
        da = make_raster(data, grid, nodata=fill, units="class" if is_qa else "reflectance",
                         kind="categorical" if is_qa else "continuous", name=band, chunks=None)
        da.attrs.update({"source": str(asset.href), "scene": scene.id,
                         "date": scene.date.isoformat(), "sensor": scene.sensor, "band": band,
                         "radiometry": asset.scale_source if not is_qa else "none",
                         "resampling": method})
        out[band] = da
    return out


def _file_grid(scene: Scene, href: Path) -> GridSpec:
    try:
        with rasterio.open(href) as src:
            if src.crs is None:
                raise InputError("raster has no CRS", source=href,
                                 fix="assign one (gdal_edit.py -a_srs EPSG:nnnn FILE)")
            return GridSpec.create(src.crs, src.transform, src.shape)
    except rasterio.errors.RasterioIOError as exc:
        raise InputError(f"scene {scene.id!r}: cannot be read ({exc})", source=href,
                         fix="check the asset href and the file") from exc


def _footprint(scene: Scene) -> GridSpec:
    for band in (*GRID_BANDS, *REFLECTANCE_BANDS, QA):
        if band in scene.assets:
            return _file_grid(scene, scene.assets[band].href)
    raise InputError(f"scene {scene.id!r} has no band assets", source=scene.source,
                     fix="add band assets to the scene")


def covers(scene: Scene, grid: GridSpec) -> float:
    """Fraction (0..1) of ``grid``'s extent inside the raster extent of the scene's bands (the
    file extent, not the valid-data footprint)."""
    src = _footprint(scene)
    box = shapely.box(*src.bounds)
    if crs_key(src.crs) != crs_key(grid.crs):
        box = shapely.segmentize(box, max_segment_length=max(src.res) * 16 or 1.0)
        t = Transformer.from_crs(src.crs, grid.crs, always_xy=True)
        box = shapely.transform(box, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))
    target = shapely.box(*grid.bounds)
    if target.area == 0:
        return 0.0
    return float(min(max(box.intersection(target).area / target.area, 0.0), 1.0))


def analysis_grid(scenes: Sequence[Scene], bounds: tuple[float, float, float, float],
                  crs: Any = None) -> GridSpec:
    """The native grid of the first scene (its CRS; cell size = finest of its red/nir/swir1/swir2
    files; on that file's pixel lattice) covering ``bounds`` plus one cell on every side.

    ``bounds`` are (west, south, east, north) in ``crs``; ``crs=None`` means the scene's CRS.
    """
    if not scenes:
        raise InputError("no scenes to take an analysis grid from",
                         fix="check the STAC JSON / folder holds scenes")
    scene = scenes[0]
    best: GridSpec | None = None
    for band in GRID_BANDS:
        if band not in scene.assets:
            continue
        g = _file_grid(scene, scene.assets[band].href)
        if best is None or max(g.res) < max(best.res):
            best = g
    if best is None:
        raise InputError(f"scene {scene.id!r} has none of the bands {', '.join(GRID_BANDS)}",
                         source=scene.source, fix="give red/nir/swir1/swir2 assets")
    if best.transform.b or best.transform.d:
        raise InputError(f"scene {scene.id!r} is on a rotated grid", source=scene.source,
                         fix="warp it north-up first")
    if crs is not None and crs_key(as_crs(crs)) != crs_key(best.crs):
        bounds = rasterio.warp.transform_bounds(as_crs(crs), best.crs, *bounds, densify_pts=21)
    return best.covering(bounds, margin=1)
