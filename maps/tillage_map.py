"""The conservation-tillage verification map (保护性耕作核查): one self-contained Folium page.

Built from the outputs of ``sinkmap tillage`` (``parcels.gpkg``, ``townships.csv``,
``summary.json``) by :func:`tillage_map`:

* **parcels** as polygons coloured by status: confirmed green, not confirmed orange-red,
  undetermined grey; one layer per status of the parcels *declared* conservation tillage (the
  ones the plan counts), and one more layer, drawn light and dashed, for the parcels declared
  conventional (or with no practice), coloured by what was observed there (green = undeclared
  conservation tillage);
* an **evidence popup** per parcel (id, township, declared practice, status, reason, median
  residue cover and its P25-P75, NDTI median, clear pixels / pixels, share observed, dates used,
  measured vs declared mu, area flag);
* a **township layer** (confirmed share of the declared area, with declared and confirmed mu in
  the tooltip) on the zone polygons, or, where a township has no polygon, on the convex hull of
  its parcels;
* a **legend** with the parcel counts and areas per status, and a **headline** box
  ("核实 52,300 亩 / 目标 80,000 亩 (65.4 %)").

Size. The parcels are not written as a GeoJSON feature collection with a popup string each
(about 1.5 kB a parcel) but as one compact table read by a small script: rings simplified in
EPSG:3857 to half a pixel at :data:`DETAIL_ZOOM`, rounded to 1e-5 degree (about 1 m) and written
as encoded polylines (the Google polyline algorithm: a few ASCII characters per vertex), the
repeated strings (townships, practices, dates, the wording of reasons and area flags) once in a
string table, the numbers rounded to what the popup shows; the popups and tooltips are built
only when a parcel is clicked or hovered. All parcels are drawn on one canvas (Leaflet's
``preferCanvas``), which keeps 100,000 parcels interactive. With ``detail="auto"`` and more than
:data:`POINTS_ABOVE` parcels, undetermined and declared-conventional parcels are drawn as small
circles at a point inside them (their popups stay complete), which keeps the biggest part of the
page, the rings, to the parcels the plan counts.

Every piece of text from the data (ids, townships, practices, reasons, flags, dates) and every
label is HTML-escaped in Python before it reaches the page; the script only joins escaped
strings and numbers. The page is written with :func:`maps.carbon_map.save_map` and needs no
network (:mod:`maps.offline`).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import folium
import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement

from gis.errors import InputError
from layers.tillage import STATUSES
from maps.legend import Legend, continuous_legend, css_colour
from maps.page_parts import PAGE_CSS, HtmlControl, headline_css, simplified_lonlat
from maps.render import ColourRamp, esc, format_number, mercator_tolerance, texts_for

log = logging.getLogger(__name__)

DETAIL_ZOOM = 16
"""Parcels are simplified to half a screen pixel at this zoom (about 1.2 m)."""
MAX_ZOOM = 18
COORD_PRECISION = 5
"""Decimals of the lon/lat coordinates written (1e-5 degree is about 1 m)."""
POINTS_ABOVE = 20_000
"""With ``detail="auto"``, more parcels than this draw undetermined and declared-conventional
parcels as points."""

DEFAULT_FIELDS = {"id": "parcel_id", "township": "township", "practice": "declared_practice",
                  "area_mu": "declared_area_mu"}
"""Input columns of the declaration layer (as ``sinkmap tillage``'s defaults)."""

STATUS_COLOURS = {"confirmed": "#1a9641", "not_confirmed": "#e6550d", "undetermined": "#969696"}
STATUS_STROKES = {"confirmed": "#0b5d25", "not_confirmed": "#a63603", "undetermined": "#525252"}
CONVENTIONAL_FILL_OPACITY = 0.22
DECLARED_FILL_OPACITY = 0.7
TOTAL_ROW = "合计 total"
MISSING_FILL = "#d9d9d9"

PUBU = ColourRamp("PuBu", ("#fff7fb", "#ece7f2", "#d0d1e6", "#a6bddb", "#74a9cf", "#3690c0",
                           "#0570b0", "#045a8d", "#023858"))
"""ColorBrewer PuBu for the township share (kept apart from the parcels' green and orange)."""

_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "confirmed": "核实", "not_confirmed": "未核实", "undetermined": "无法判定",
        "layer_confirmed": "核实（申报保护性耕作）",
        "layer_not_confirmed": "未核实（申报保护性耕作）",
        "layer_undetermined": "无法判定（申报保护性耕作）",
        "layer_conventional": "申报常规耕作地块（浅色，按观测结果着色）",
        "layer_townships": "乡镇核实比例",
        "legend_title": "核查结论：申报保护性耕作地块",
        "legend_conv": "申报常规耕作 / 未填报",
        "conv_confirmed": "观测为保护性耕作（未申报）",
        "conv_not_confirmed": "观测为常规耕作（一致）",
        "conv_undetermined": "无法判定",
        "parcels_unit": "块", "mu": "亩",
        "share_legend": "乡镇核实比例 (%)",
        "headline": "核实 {confirmed} 亩 / 目标 {target} 亩 ({pct} %)",
        "headline_no_target": "核实 {confirmed} 亩",
        "sub": "申报 {declared} 亩，核实比例 {share} %；{n} 块申报地块",
        "year": "{year} 年",
        "points_note": "无法判定和申报常规耕作地块以点表示",
        "parcel": "地块", "township": "乡镇", "declared_practice": "申报做法",
        "status": "核查结论", "check": "申报核对", "reason": "依据",
        "residue_median": "秸秆覆盖度中位数 (%)", "residue_iqr": "秸秆覆盖度 P25–P75 (%)",
        "ndti_median": "NDTI 中位数", "pixels": "可用像元 / 像元",
        "share": "观测比例 (%)", "dates": "可用日期", "area": "图斑面积 / 申报面积 (亩)",
        "area_flag": "面积差异",
        "conservation": "保护性耕作", "conventional": "常规耕作", "none": "未填报",
        "consistent": "一致", "over-declared (not observed)": "申报但未观测到",
        "undeclared conservation": "未申报但实施", "check_undetermined": "无法判定",
        "tw_declared": "申报", "tw_confirmed": "核实", "tw_share": "核实比例",
        "tw_parcels": "地块：核实 {c} / 未核实 {n} / 无法判定 {u}（共 {d}）",
        "tw_undeclared": "未申报但实施 {a} 亩",
        "tw_hull": "（无乡镇边界：地块范围）",
        "missing": "无数据",
    },
    "en": {
        "confirmed": "confirmed", "not_confirmed": "not confirmed",
        "undetermined": "undetermined",
        "layer_confirmed": "Confirmed (declared conservation)",
        "layer_not_confirmed": "Not confirmed (declared conservation)",
        "layer_undetermined": "Undetermined (declared conservation)",
        "layer_conventional": "Declared conventional (light, coloured by observation)",
        "layer_townships": "Township confirmed share",
        "legend_title": "Verification: parcels declared conservation tillage",
        "legend_conv": "Declared conventional / no practice",
        "conv_confirmed": "observed conservation (undeclared)",
        "conv_not_confirmed": "observed conventional (consistent)",
        "conv_undetermined": "undetermined",
        "parcels_unit": "parcels", "mu": "mu",
        "share_legend": "Township confirmed share (%)",
        "headline": "Confirmed {confirmed} mu / target {target} mu ({pct} %)",
        "headline_no_target": "Confirmed {confirmed} mu",
        "sub": "declared {declared} mu, {share} % confirmed; {n} declared parcels",
        "year": "{year}",
        "points_note": "undetermined and declared-conventional parcels drawn as points",
        "parcel": "Parcel", "township": "Township", "declared_practice": "Declared practice",
        "status": "Status", "check": "Declaration check", "reason": "Reason",
        "residue_median": "Residue cover median (%)", "residue_iqr": "Residue cover P25–P75 (%)",
        "ndti_median": "NDTI median", "pixels": "Clear pixels / pixels",
        "share": "Share observed (%)", "dates": "Dates used", "area": "Measured / declared (mu)",
        "area_flag": "Area flag",
        "conservation": "conservation", "conventional": "conventional", "none": "not given",
        "consistent": "consistent", "over-declared (not observed)": "over-declared (not observed)",
        "undeclared conservation": "undeclared conservation",
        "check_undetermined": "undetermined",
        "tw_declared": "declared", "tw_confirmed": "confirmed", "tw_share": "confirmed share",
        "tw_parcels": "parcels: {c} confirmed / {n} not confirmed / {u} undetermined (of {d})",
        "tw_undeclared": "undeclared but observed {a} mu",
        "tw_hull": "(no township boundary: extent of its parcels)",
        "missing": "no data",
    },
}

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LAYERS = ("confirmed", "not_confirmed", "undetermined", "conventional")


def tillage_map(parcels: gpd.GeoDataFrame, townships: pd.DataFrame,
                zones: gpd.GeoDataFrame | None, *, summary: Mapping[str, Any],
                lang: str = "zh", title: str, zone_label: str = "name",
                fields: Mapping[str, str] | None = None, source_note: str = "",
                detail: Literal["auto", "full", "points"] = "auto") -> folium.Map:
    """Build the verification map of one year.

    Parameters
    ----------
    parcels
        ``parcels.gpkg`` of ``sinkmap tillage`` (any CRS): ``status`` and the evidence columns;
        ``declared`` (``conservation``/``conventional``/None) tells which parcels the plan
        counts (all are taken as declared conservation when it is missing).
    townships
        ``townships.csv`` (the ``合计 total`` row is skipped).
    zones
        Township polygons with a ``zone_label`` column holding the names used in the parcels'
        township column, or None; townships without a polygon are drawn as the convex hull of
        their parcels.
    summary
        ``summary.json`` of the verification (``confirmed_area_mu``, ``target_mu``,
        ``confirmed_pct_of_target``, ``declared_area_mu``, ``parcel_counts``, ``year``).
    fields
        The declaration layer's column names (``id``, ``township``, ``practice``, ``area_mu``)
        when they are not :data:`DEFAULT_FIELDS`.
    title, source_note
        Plain text (escaped here).
    detail
        ``"full"``: every parcel as a polygon; ``"points"``: undetermined and declared-
        conventional parcels as points; ``"auto"``: points above :data:`POINTS_ABOVE` parcels.

    Raises
    ------
    gis.errors.InputError
        ``parcels`` has no CRS, no ``status`` column, or an unknown status.
    """
    text = texts_for(_TEXT, lang)
    f = {**DEFAULT_FIELDS, **(fields or {})}
    _check_parcels(parcels)
    n = len(parcels)
    as_points = detail == "points" or (detail == "auto" and n > POINTS_ABOVE)
    status = parcels["status"].astype(str).to_numpy()
    declared_cons = (parcels["declared"].to_numpy() == "conservation"
                     if "declared" in parcels else np.ones(n, bool))
    status_index = np.array([STATUSES.index(s) for s in status], dtype=int)
    layer = np.where(declared_cons, status_index, 3)

    geoms, bounds = _encoded_geometries(parcels, points=(layer >= 2) if as_points else None)
    rows, strings = _rows(parcels, f, layer, status, geoms, text)
    counts = _counts(parcels, layer, status)
    _compare_counts(counts, summary)

    south, west, north, east = bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=13, tiles=None,
                   control_scale=True, max_zoom=MAX_ZOOM, zoom_snap=0.5, prefer_canvas=True)
    root = m.get_root()
    root.title = esc(title)
    root.header.add_child(Element(PAGE_CSS), name="sinkmap_css")
    root.header.add_child(Element(_TILLAGE_CSS), name="sinkmap_tillage_css")

    town = _township_layer(parcels, townships, zones, f, zone_label, text)
    if town is not None:
        town.add_to(m)
    data = _ParcelData(rows, strings, _js_labels(text), _styles())
    data.add_to(m)
    names = {"confirmed": text["layer_confirmed"], "not_confirmed": text["layer_not_confirmed"],
             "undetermined": text["layer_undetermined"],
             "conventional": text["layer_conventional"]}
    for k, key in enumerate(_LAYERS):
        if k == 3 and not (layer == 3).any():
            continue
        _ParcelLayer(data, k, name=esc(names[key])).add_to(m)
    if town is not None:
        _KeepBelow(town).add_to(m)

    HtmlControl(_headline_html(title, summary, counts, text, as_points), position="bottomleft",
                 css_class="sinkmap-tillage-headline").add_to(m)
    Legend(_legend_html(counts, text), position="topright").add_to(m)
    if town is not None:
        continuous_legend(text["share_legend"], PUBU, 0.0, 100.0, [0, 25, 50, 75, 100],
                          nodata=(MISSING_FILL, text["missing"]), position="topright").add_to(m)
    if source_note:
        HtmlControl(esc(source_note), position="bottomright",
                     css_class="sinkmap-source").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.fit_bounds([[south, west], [north, east]])
    log.info("tillage map: %d parcels (%s), data %.0f kB", n,
             "points for undetermined/conventional" if as_points else "all polygons",
             len(data.payload) / 1024)
    return m


# --------------------------------------------------------------------------------------------
# parcels


def _check_parcels(parcels: gpd.GeoDataFrame) -> None:
    src = parcels.attrs.get("source", "parcels")
    if parcels.crs is None:
        raise InputError("parcel layer has no CRS", source=src,
                         fix="use the parcels.gpkg written by `sinkmap tillage`")
    if "status" not in parcels.columns:
        raise InputError("parcel layer has no 'status' column (not a verification output)",
                         source=src, fix="give the parcels.gpkg written by `sinkmap tillage`")
    odd = sorted(set(parcels["status"].astype(str)) - set(STATUSES))
    if odd:
        raise InputError(f"unknown status value(s) {odd[:5]}", source=src,
                         fix=f"status is one of {', '.join(STATUSES)}")


def _encoded_geometries(parcels: gpd.GeoDataFrame, points: np.ndarray | None
                        ) -> tuple[list[Any], tuple[float, float, float, float]]:
    """Per parcel: a list of polygons, each a list of encoded rings, or one encoded point
    (``points`` true, or a parcel too small to keep a ring) or None (no geometry).

    Returns them with the (south, west, north, east) bounds of the parcels.
    """
    geom = parcels.geometry.to_crs("EPSG:3857").to_numpy()
    n = len(geom)
    missing = shapely.is_missing(geom) | shapely.is_empty(geom)
    if missing.all():
        raise InputError("parcel layer has no geometry", source=parcels.attrs.get("source"),
                         fix="check the parcel file")
    simple = shapely.simplify(geom, mercator_tolerance(DETAIL_ZOOM), preserve_topology=True)
    ll = gpd.GeoSeries(simple, crs="EPSG:3857").to_crs("EPSG:4326").to_numpy()
    rep = gpd.GeoSeries(shapely.point_on_surface(np.where(missing, None, geom)),
                        crs="EPSG:3857").to_crs("EPSG:4326").to_numpy()
    w, s, e, nn = shapely.total_bounds(ll[~missing])
    out: list[Any] = [None] * n
    want_ring = ~missing if points is None else (~missing & ~points)

    # polygons -> parts -> rings, encoded in one vectorised pass
    idx = np.nonzero(want_ring)[0]
    parts, part_of = shapely.get_parts(ll[idx], return_index=True)
    poly = shapely.get_type_id(parts) == 3
    parts, part_of = parts[poly], part_of[poly]
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    scale = 10 ** COORD_PRECISION
    q = np.round(coords * scale).astype(np.int64)[:, ::-1]  # lat, lon
    # drop each ring's closing vertex and repeated vertices after rounding
    first = np.r_[True, coord_of[1:] != coord_of[:-1]]
    last = np.r_[coord_of[1:] != coord_of[:-1], True]
    same = np.r_[False, (q[1:] == q[:-1]).all(axis=1) & ~first[1:]]
    keep = ~last & ~same
    q, coord_of, first = q[keep], coord_of[keep], first[keep]
    first = np.r_[True, coord_of[1:] != coord_of[:-1]] if len(coord_of) else first
    counts = np.bincount(coord_of, minlength=len(rings))
    delta = q.copy()
    delta[1:] -= q[:-1]
    delta[first] = q[first]
    encoded = _polyline(delta.ravel())
    # split the encoded value stream into rings (2 values per vertex)
    bounds_v = np.r_[0, np.cumsum(counts) * 2]
    ring_text = [encoded.chars[encoded.offsets[bounds_v[i]]:encoded.offsets[bounds_v[i + 1]]]
                 for i in range(len(rings))]
    by_part: dict[int, list[str]] = {}
    for r, p in enumerate(ring_of.tolist()):
        exterior = r == 0 or ring_of[r - 1] != p
        if exterior:
            by_part[p] = [ring_text[r]] if counts[r] >= 3 else []  # too small: no part
        elif counts[r] >= 3 and by_part[p]:
            by_part[p].append(ring_text[r])
    for p, rs in by_part.items():
        if not rs:
            continue
        k = int(idx[part_of[p]])
        if out[k] is None:
            out[k] = []
        out[k].append(rs)
    # points: asked for, or parcels whose rings vanished at this precision
    for k in np.nonzero(~missing)[0]:
        if out[k] is None:
            pt = rep[k]
            lat, lon = round(pt.y * scale), round(pt.x * scale)
            enc = _polyline(np.array([lat, lon], dtype=np.int64))
            out[k] = enc.chars
    return out, (float(s), float(w), float(nn), float(e))


class _Encoded:
    """Encoded polyline characters of a value stream, with each value's start offset."""

    def __init__(self, chars: str, offsets: np.ndarray) -> None:
        self.chars = chars
        self.offsets = offsets


def _polyline(values: np.ndarray) -> _Encoded:
    """The Google encoded-polyline characters of signed integers (already delta-coded)."""
    v = values.astype(np.int64)
    z = np.where(v < 0, ~(v << 1), v << 1).astype(np.uint64)
    nchunks = np.ones(len(z), dtype=np.int64)
    t = z >> np.uint64(5)
    while (t > 0).any():
        nchunks += (t > 0)
        t >>= np.uint64(5)
    width = int(nchunks.max()) if len(z) else 1
    k = np.arange(width, dtype=np.uint64)
    chunks = ((z[:, None] >> (np.uint64(5) * k[None, :])) & np.uint64(31)).astype(np.int64)
    more = np.arange(width)[None, :] < (nchunks[:, None] - 1)
    chars = (chunks | np.where(more, 0x20, 0)) + 63
    used = np.arange(width)[None, :] < nchunks[:, None]
    text = chars[used].astype(np.uint8).tobytes().decode("ascii")
    offsets = np.r_[0, np.cumsum(nchunks)]
    return _Encoded(text, offsets)


def _rows(parcels: gpd.GeoDataFrame, f: Mapping[str, str], layer: np.ndarray,
          status: np.ndarray, geoms: list[Any], text: Mapping[str, str]
          ) -> tuple[list[list[Any]], list[str]]:
    """One compact row per parcel (see the script of :class:`_ParcelData`) and the string table.

    Strings are HTML-escaped here; numbers are rounded to what the popup shows.
    """
    table: dict[str, int] = {}

    def s(value: Any) -> int | None:
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
            return None
        t = esc(str(value))
        if t == "":
            return None
        return table.setdefault(t, len(table))

    def templated(value: Any) -> tuple[int | None, str | None]:
        """Wording in the string table, numbers apart: ``"... {} % on {} ..."`` + args."""
        if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) or value == "":
            return None, None
        raw = str(value)
        args = _NUMBER.findall(raw)
        return s(_NUMBER.sub("\x00", raw)), ("|".join(args) if args else None)

    def col(name: str | None, digits: int | None = None) -> list[Any]:
        if not name or name not in parcels.columns:
            return [None] * len(parcels)
        values = pd.to_numeric(parcels[name], errors="coerce").to_numpy(dtype=float)
        out: list[Any] = []
        for v in values:
            if not math.isfinite(v):
                out.append(None)
            elif digits == 0:
                out.append(round(float(v)))
            else:
                r = round(float(v), digits or 0)
                out.append(0.0 if r == 0 else r)
        return out

    def strings(name: str | None) -> list[Any]:
        if not name or name not in parcels.columns:
            return [None] * len(parcels)
        return parcels[name].tolist()

    ids = strings(f.get("id"))
    if f.get("id") not in parcels.columns:
        ids = [str(i + 1) for i in range(len(parcels))]
    town = strings(f.get("township"))
    practice = strings(f.get("practice"))
    declared = strings("declared")
    reason = strings("reason")
    flag = strings("area_flag")
    check = strings("declaration_check")
    dates = strings("dates_used")
    res_med, res25, res75 = (col(c, 1) for c in ("residue_pct_median", "residue_pct_p25",
                                                  "residue_pct_p75"))
    ndti = col("ndti_median", 3)
    n_clear, n_pix, n_dates = col("n_clear", 0), col("n_pixels", 0), col("n_dates_used", 0)
    share = [None if v is None else round(100 * v, 1) for v in col("observed_share", 4)]
    area, decl_mu = col("area_mu", 2), col(f.get("area_mu"), 2)
    rows = []
    for i in range(len(parcels)):
        rt, ra = templated(reason[i])
        ft, fa = templated(flag[i])
        d = declared[i] if declared[i] in ("conservation", "conventional") else "none"
        dt = str(dates[i]).replace(";", ", ") if isinstance(dates[i], str) else dates[i]
        chk = check[i] if isinstance(check[i], str) and check[i] else None
        rows.append([
            int(layer[i]), STATUSES.index(str(status[i])), ("conservation", "conventional",
                                                            "none").index(d),
            esc(str(ids[i])), s(town[i]), s(practice[i]), rt, ra, ft, fa,
            s(text.get("check_undetermined" if chk == "undetermined" else chk, chk)
              if chk else None),
            res_med[i], res25[i], res75[i], ndti[i], n_clear[i], n_pix[i], share[i], s(dt),
            n_dates[i], area[i], decl_mu[i], geoms[i]])
    strings_out = [""] * len(table)
    for t, k in table.items():
        strings_out[k] = t
    return rows, strings_out


def _counts(parcels: gpd.GeoDataFrame, layer: np.ndarray, status: np.ndarray
            ) -> dict[str, dict[str, float]]:
    """Parcels and area (mu) per status: declared conservation (``cons``) and the others."""
    area = pd.to_numeric(parcels.get("verification_area_mu", parcels.get("area_mu")),
                         errors="coerce").to_numpy(dtype=float) if (
        "verification_area_mu" in parcels or "area_mu" in parcels) else np.zeros(len(parcels))
    area = np.where(np.isfinite(area), area, 0.0)
    out: dict[str, dict[str, float]] = {}
    for group, mask in (("cons", layer < 3), ("conv", layer == 3)):
        for st in STATUSES:
            sel = mask & (status == st)
            out.setdefault(group, {})[st] = int(sel.sum())
            out.setdefault(group + "_mu", {})[st] = float(area[sel].sum())
    return out


def _compare_counts(counts: Mapping[str, Mapping[str, float]], summary: Mapping[str, Any]
                    ) -> None:
    given = summary.get("parcel_counts")
    if isinstance(given, Mapping) and {k: int(given.get(k, 0)) for k in STATUSES} != {
            k: int(counts["cons"][k]) for k in STATUSES}:
        log.warning("tillage map: parcel counts of the parcel layer %s differ from the "
                    "summary's %s (the legend shows the parcel layer's)",
                    dict(counts["cons"]), dict(given))


# --------------------------------------------------------------------------------------------
# townships


def _township_layer(parcels: gpd.GeoDataFrame, townships: pd.DataFrame,
                    zones: gpd.GeoDataFrame | None, f: Mapping[str, str], zone_label: str,
                    text: Mapping[str, str]) -> folium.GeoJson | None:
    if townships is None or "township" not in townships.columns or not len(townships):
        return None
    t = townships[townships["township"].astype(str) != TOTAL_ROW].copy()
    t["township"] = t["township"].astype(str)
    t = t.drop_duplicates("township").set_index("township")
    if not len(t):
        return None
    shapes: dict[str, Any] = {}
    hull: set[str] = set()
    if zones is not None and zone_label in zones.columns and zones.crs is not None and len(zones):
        z = zones[zones[zone_label].astype(str).isin(t.index)]
        if len(z):
            ll, keep = simplified_lonlat(z)
            for name, g in zip(z.loc[keep, zone_label].astype(str), ll, strict=True):
                shapes.setdefault(name, g)
    tw = f.get("township")
    rest = [k for k in t.index if k not in shapes]
    if rest and tw in parcels.columns:
        p = parcels[parcels[tw].astype(str).isin(rest) & ~parcels.geometry.is_empty
                    & parcels.geometry.notna()]
        if len(p):
            merc = p.to_crs("EPSG:3857")
            grouped = merc.geometry.groupby(p[tw].astype(str).to_numpy()).agg(
                lambda s: shapely.convex_hull(shapely.union_all(s.to_numpy())))
            ll = gpd.GeoSeries(grouped.to_numpy(), crs="EPSG:3857").to_crs(4326)
            for name, g in zip(grouped.index, ll.to_numpy(), strict=True):
                if g is not None and not g.is_empty and g.geom_type in ("Polygon",
                                                                        "MultiPolygon"):
                    shapes[str(name)] = g
                    hull.add(str(name))
            log.info("tillage map: %d township(s) without a zone polygon drawn as the extent "
                     "of their parcels", len(hull))
    if not shapes:
        return None
    feats = []
    for name, g in shapes.items():
        r = t.loc[name]
        share = pd.to_numeric(pd.Series([r.get("confirmed_share_pct")]), errors="coerce")[0]
        fill = PUBU.hex_at(share / 100.0) if math.isfinite(share) else MISSING_FILL
        g = shapely.transform(g, lambda c: np.round(c, COORD_PRECISION))
        feats.append({"type": "Feature", "geometry": shapely.geometry.mapping(g),
                      "properties": {"tip": _township_tip(name, r, share, name in hull, text),
                                     "fill": css_colour(fill)}})
    fc = {"type": "FeatureCollection", "features": feats}
    return folium.GeoJson(
        fc, name=esc(text["layer_townships"]),
        style_function=lambda ft: {"fillColor": ft["properties"]["fill"], "fillOpacity": 0.45,
                                   "color": "#4d4d4d", "weight": 1.2},
        tooltip=folium.GeoJsonTooltip(fields=["tip"], labels=False, sticky=True),
        zoom_on_click=False)


def _township_tip(name: str, r: pd.Series, share: float, hull: bool,
                  text: Mapping[str, str]) -> str:
    def num(key: str) -> str:
        v = pd.to_numeric(pd.Series([r.get(key)]), errors="coerce")[0]
        return esc(format_number(v, missing=text["missing"]))

    def cnt(key: str) -> str:
        v = pd.to_numeric(pd.Series([r.get(key)]), errors="coerce")[0]
        return "-" if not math.isfinite(v) else f"{int(v):,}"

    mu = esc(text["mu"])
    pct = esc(format_number(share, missing=text["missing"]))
    lines = [f"<b>{esc(name)}</b>" + (f" <i>{esc(text['tw_hull'])}</i>"
                                               if hull else ""),
             f"{esc(text['tw_confirmed'])} {num('confirmed_area_mu')} {mu} / "
             f"{esc(text['tw_declared'])} {num('declared_area_mu')} {mu}",
             f"{esc(text['tw_share'])}: {pct} %",
             esc(text["tw_parcels"].format(c=cnt("n_confirmed"), n=cnt("n_not_confirmed"),
                                                   u=cnt("n_undetermined"), d=cnt("n_declared")))]
    und = pd.to_numeric(pd.Series([r.get("undeclared_conservation_area_mu")]), errors="coerce")[0]
    if math.isfinite(und) and und > 0:
        lines.append(esc(text["tw_undeclared"].format(a=format_number(und))))
    return "<br>".join(lines)


# --------------------------------------------------------------------------------------------
# headline and legend


def _fmt_int(v: Any) -> str:
    x = pd.to_numeric(pd.Series([v]), errors="coerce")[0]
    return "-" if not math.isfinite(x) else f"{x:,.0f}"


def _headline_html(title: str, summary: Mapping[str, Any], counts: Mapping[str, Any],
                   text: Mapping[str, str], as_points: bool) -> str:
    confirmed = summary.get("confirmed_area_mu")
    if confirmed is None:
        confirmed = counts["cons_mu"]["confirmed"]
    target = summary.get("target_mu")
    pct = summary.get("confirmed_pct_of_target")
    if target and pct is None:
        pct = 100.0 * float(confirmed) / float(target)
    if target:
        head = text["headline"].format(confirmed=_fmt_int(confirmed), target=_fmt_int(target),
                                       pct=f"{float(pct):.1f}" if float(pct) >= 1 or pct == 0
                                       else f"{float(pct):.2g}")
    else:
        head = text["headline_no_target"].format(confirmed=_fmt_int(confirmed))
    declared = summary.get("declared_area_mu")
    if declared is None:
        declared = sum(counts["cons_mu"].values())
    share = summary.get("confirmed_pct_of_declared")
    if share is None and declared:
        share = 100.0 * float(confirmed) / float(declared)
    n = sum(int(v) for v in counts["cons"].values())
    sub = text["sub"].format(declared=_fmt_int(declared),
                             share="-" if share is None else f"{float(share):.1f}", n=f"{n:,}")
    year = summary.get("year")
    parts = [f'<div class="sinkmap-tillage-title">{esc(title)}</div>',
             f'<div class="sinkmap-tillage-figure">{esc(head)}</div>',
             f'<div class="sinkmap-tillage-sub">{esc(sub)}'
             + (f" · {esc(text['year'].format(year=year))}" if year else "") + "</div>"]
    if as_points:
        parts.append(f'<div class="sinkmap-tillage-sub">{esc(text["points_note"])}</div>')
    return "".join(parts)


def _legend_html(counts: Mapping[str, Mapping[str, float]], text: Mapping[str, str]) -> str:
    unit, mu = text["parcels_unit"], text["mu"]

    def item(colour: str, stroke: str, label: str, dashed: bool = False, light: bool = False
             ) -> str:
        style = (f"background:{css_colour(colour)};border:1px {'dashed' if dashed else 'solid'} "
                 f"{css_colour(stroke)}" + (";opacity:0.45" if light else ""))
        return (f'<div class="sinkmap-legend-item"><span class="sinkmap-legend-swatch" '
                f'style="{style}"></span><span>{esc(label)}</span></div>')

    rows = [item(STATUS_COLOURS[st], STATUS_STROKES[st],
                 f"{text[st]}: {int(counts['cons'][st]):,} {unit}, "
                 f"{format_number(counts['cons_mu'][st])} {mu}") for st in STATUSES]
    parts = [f'<div class="sinkmap-legend-title">{esc(text["legend_title"])}</div>',
             f'<div class="sinkmap-legend-items" data-counts="cons">{"".join(rows)}</div>']
    if sum(counts["conv"].values()):
        conv = [item(STATUS_COLOURS[st], STATUS_STROKES[st],
                     f"{text['conv_' + st]}: {int(counts['conv'][st]):,} {unit}, "
                     f"{format_number(counts['conv_mu'][st])} {mu}", dashed=True, light=True)
                for st in STATUSES if counts["conv"][st]]
        parts += [f'<div class="sinkmap-legend-title" style="margin-top:6px">'
                  f'{esc(text["legend_conv"])}</div>',
                  f'<div class="sinkmap-legend-items" data-counts="conv">{"".join(conv)}</div>']
    return "".join(parts)


_TILLAGE_CSS = ("<style>\n" + headline_css("sinkmap-tillage", max_width=460, line_height=1.4)
                + """\
  .sinkmap-tillage-figure { font-weight: bold; font-size: 18px; color: #0b5d25; margin: 2px 0; }
  .sinkmap-tillage-sub { color: #444; font-size: 12px; }
  .sinkmap-popup td.sinkmap-wrap { white-space: normal; text-align: left; max-width: 260px; }
</style>""")


# --------------------------------------------------------------------------------------------
# the page's data and layers


def _styles() -> dict[str, Any]:
    return {"fill": [STATUS_COLOURS[s] for s in STATUSES],
            "stroke": [STATUS_STROKES[s] for s in STATUSES],
            "opacity": [DECLARED_FILL_OPACITY, CONVENTIONAL_FILL_OPACITY]}


def _js_labels(text: Mapping[str, str]) -> dict[str, Any]:
    keys = ("parcel", "township", "declared_practice", "status", "check", "reason",
            "residue_median", "residue_iqr", "ndti_median", "pixels", "share", "dates", "area",
            "area_flag", "mu")
    out: dict[str, Any] = {k: esc(text[k]) for k in keys}
    out["statuses"] = [esc(text[s]) for s in STATUSES]
    out["declared"] = [esc(text[k]) for k in ("conservation", "conventional", "none")]
    return out


def _script_json(value: Any) -> str:
    """JSON safe inside a ``<script>`` element."""
    s = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (s.replace("</", "<\\/").replace("<!--", "<\\!--")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


class _ParcelData(MacroElement):
    """The parcel table and the functions that turn its rows into Leaflet layers and popups.

    A row is ``[layer, status, declared, id, township, practice, reason template, reason
    numbers, flag template, flag numbers, check, residue median, residue p25, residue p75,
    NDTI median, clear pixels, pixels, share observed %, dates, n dates, measured mu,
    declared mu, geometry]``; templates and other repeated strings are indices into ``S``
    (HTML-escaped, a NUL where a number goes); the geometry is a list of polygons (lists of
    encoded rings) or one encoded point.
    """

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = (function () {
            var D = {{ this.get_name() }}_data;
            var S = D.S, L_ = D.L, ST = D.style;
            function dec(s) {  // encoded polyline -> [[lat, lng], ...]
                var i = 0, lat = 0, lng = 0, out = [];
                function next() {
                    var b, sh = 0, r = 0;
                    do { b = s.charCodeAt(i++) - 63; r |= (b & 31) << sh; sh += 5; }
                    while (b >= 32);
                    return (r & 1) ? ~(r >> 1) : (r >> 1);
                }
                while (i < s.length) {
                    lat += next();
                    lng += next();
                    out.push([lat * 1e-5, lng * 1e-5]);
                }
                return out;
            }
            function fill(t, args) {
                if (t === null) { return '-'; }
                var parts = S[t].split('\\u0000'), a = args === null ? [] : args.split('|');
                var out = parts[0];
                for (var k = 1; k < parts.length; k++) { out += (a[k - 1] || '') + parts[k]; }
                return out;
            }
            function num(v, d) {
                if (v === null || v === undefined) { return '-'; }
                return Number(v).toLocaleString('en-US', {minimumFractionDigits: d,
                                                          maximumFractionDigits: d});
            }
            function str(i) { return i === null ? '-' : S[i]; }
            function style(r) {
                var conv = r[0] === 3;
                return {color: ST.stroke[r[1]], weight: conv ? 1.2 : 1, fillColor: ST.fill[r[1]],
                        fillOpacity: ST.opacity[conv ? 1 : 0], opacity: conv ? 0.8 : 1,
                        dashArray: conv ? '4 3' : null};
            }
            function popup(r) {
                var rows = [
                    [L_.township, str(r[4])],
                    [L_.declared_practice, str(r[5]) + ' (' + L_.declared[r[2]] + ')'],
                    [L_.status, '<b>' + L_.statuses[r[1]] + '</b>'],
                    [L_.check, str(r[10])],
                    [L_.reason, fill(r[6], r[7]), 1],
                    [L_.residue_median, num(r[11], 1)],
                    [L_.residue_iqr, num(r[12], 1) + ' – ' + num(r[13], 1)],
                    [L_.ndti_median, num(r[14], 3)],
                    [L_.pixels, num(r[15], 0) + ' / ' + num(r[16], 0)],
                    [L_.share, num(r[17], 1)],
                    [L_.dates, (r[19] === null ? '' : num(r[19], 0) + ': ') + str(r[18]), 1],
                    [L_.area, num(r[20], 2) + ' / ' + num(r[21], 2)],
                    [L_.area_flag, fill(r[8], r[9]), 1]
                ];
                var h = '<table class="sinkmap-popup"><caption>' + L_.parcel + ' ' + r[3]
                    + '</caption>';
                for (var k = 0; k < rows.length; k++) {
                    h += '<tr><th>' + rows[k][0] + '</th><td' + (rows[k][2] ?
                        ' class="sinkmap-wrap"' : '') + '>' + rows[k][1] + '</td></tr>';
                }
                return h + '</table>';
            }
            function layer(k) {
                var g = L.featureGroup(), n = 0;
                for (var i = 0; i < D.r.length; i++) {
                    var r = D.r[i], geom = r[22];
                    if (r[0] !== k || geom === null) { continue; }
                    var lyr;
                    if (typeof geom === 'string') {
                        var p = dec(geom)[0];
                        lyr = L.circleMarker(p, Object.assign(style(r), {radius: 4}));
                    } else {
                        var polys = geom.map(function (rings) { return rings.map(dec); });
                        lyr = L.polygon(polys.length === 1 ? polys[0] : polys, style(r));
                    }
                    lyr.sinkmapRow = i;
                    g.addLayer(lyr);
                    n++;
                }
                g.bindPopup(function (l) { return l.sinkmapRow === undefined ? '' :
                    popup(D.r[l.sinkmapRow]); }, {maxWidth: 440});
                g.bindTooltip(function (l) { if (l.sinkmapRow === undefined) { return ''; }
                    var r = D.r[l.sinkmapRow];
                    return L_.parcel + ' ' + r[3] + ': ' + L_.statuses[r[1]]; },
                    {sticky: true});
                g.sinkmapCount = n;
                return g;
            }
            var api = {layer: layer, popup: popup, rows: D.r, layers: {}};
            window.sinkmapTillage = api;
            return api;
        })();
        {% endmacro %}
    """)

    def __init__(self, rows: Sequence[Sequence[Any]], strings: Sequence[str],
                 labels: Mapping[str, Any], styles: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "TillageParcels"
        self.payload = _script_json({"r": rows, "S": strings, "L": labels, "style": styles})

    def render(self, **kwargs: Any) -> None:
        # the table goes in as raw text: not through the Jinja re-parse of scripts (its encoded
        # rings may hold "{{")
        figure = self.get_root()
        if isinstance(figure, Figure):
            figure.script.add_child(
                _Raw(f"var {self.get_name()}_data = {self.payload};"),
                name=f"{self.get_name()}_data")
        super().render(**kwargs)


class _Raw(Element):
    """Text written into the page as it is (no template parsing)."""

    _template = jinja2.Template("{{ this.text }}")

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class _ParcelLayer(folium.map.Layer):
    """One status layer of :class:`_ParcelData` (listed in the layer control)."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = {{ this.data.get_name() }}.layer({{ this.index }});
        {{ this.data.get_name() }}.layers[{{ this.key|tojson }}] = {{ this.get_name() }};
        {% endmacro %}
    """)

    def __init__(self, data: _ParcelData, index: int, *, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "TillageLayer"
        self.data = data
        self.index = index
        self.key = _LAYERS[index]


class _KeepBelow(MacroElement):
    """Keep the township layer under the parcels when it is switched back on (one canvas)."""

    _template = jinja2.Template("""
        {% macro script(this, kwargs) %}
        {{ this._parent.get_name() }}.on('overlayadd', function (e) {
            if (e.layer === {{ this.layer.get_name() }}) { e.layer.bringToBack(); }
        });
        {% endmacro %}
    """)

    def __init__(self, layer: folium.GeoJson) -> None:
        super().__init__()
        self._name = "KeepBelow"
        self.layer = layer


__all__ = ["DEFAULT_FIELDS", "POINTS_ABOVE", "STATUS_COLOURS", "tillage_map"]
