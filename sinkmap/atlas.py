"""``sinkmap maps RUN_DIR``: the offline atlas of a run (index page + one map per theme).

Reads the run's outputs (and, through the manifest, its project file for the land-cover inputs)
and calls the map builders of ``maps/``; every page is self-contained (see maps.offline).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium

from gis.atomic import atomic_path
from gis.errors import InputError
from gis.raster_io import read_raster
from gis.vector_io import read_vector
from layers.landcover import CHANGE_TYPES, load_scheme, present_codes
from maps.carbon_map import carbon_density_map, save_map
from maps.hillshade import add_hillshade, hillshade_png
from maps.landuse_map import add_class_layer, legend_html, present_items
from maps.offline import add_basemap
from maps.render import esc
from maps.styles import CHANGE_COLOURS, landuse_style
from maps.swipe import Swipe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    file: str
    title: str
    description: str


T = {
    "zh": {"atlas": "碳汇与土地利用图集", "density": "碳密度", "pool": "碳库", "lu": "土地利用",
           "change": "土地利用变化", "compare": "土地利用对比", "tillage": "保护性耕作核查",
           "ecology": "生态保护格局",
           "green": "城市绿地",
           "index_note": "离线图集：所有地图均为单个文件，无需联网。"},
    "en": {"atlas": "Carbon-sink and land-use atlas", "density": "Carbon density",
           "pool": "Carbon pool", "lu": "Land use", "change": "Land-use change",
           "compare": "Land use compared", "tillage": "Conservation tillage",
           "ecology": "Ecological-protection pattern",
           "green": "Urban green space",
           "index_note": "Offline atlas: every map is one self-contained file and needs no "
           "network."},
}
POOL_NAMES = {"zh": {"c_above": "地上生物量", "c_below": "地下生物量", "c_deadwood": "枯死木",
                     "c_litter": "凋落物", "c_soil": "土壤有机碳", "c_dead": "枯落物"},
              "en": {"c_above": "above-ground biomass", "c_below": "below-ground biomass",
                     "c_deadwood": "dead wood", "c_litter": "litter",
                     "c_soil": "soil organic carbon", "c_dead": "dead organic matter"}}


def write_atlas(run_dir: Path, *, lang: str = "zh", overwrite: bool = False,
                colours: dict[int, str] | None = None, print_maps: bool = False,
                basemap: str = "none", basemap_url: str | None = None) -> Path:
    """Write ``run_dir/maps/`` (index.html + theme maps); returns the index path.

    ``basemap`` is ``none`` (default: fully offline; the county outline and townships are the
    backdrop), ``osm``, ``tianditu`` (key from ``TIANDITU_KEY``) or ``xyz`` (``basemap_url``).
    """


    from sinkmap.pipeline import header, popup_columns

    summary_p = run_dir / "summary.json"
    if not summary_p.exists():
        raise InputError("is not a sinkmap run folder (no summary.json)", source=run_dir,
                         fix="give the outputs folder of `sinkmap run` or `sinkmap demo`")
    summary = json.loads(summary_p.read_text(encoding="utf-8"))
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    dem = _project_dem(run_dir, manifest)
    shaded = hillshade_png(read_raster(dem)) if dem is not None else None

    def save(m: folium.Map, path: Path) -> None:
        if shaded is not None:  # the offline backdrop: a hillshade of the DEM
            # the layer control must come after every layer it lists: take it out, add back
            controls = {k: c for k, c in m._children.items()
                        if isinstance(c, folium.LayerControl)}
            for k in controls:
                del m._children[k]
            add_hillshade(m, shaded, name="地形晕渲" if lang == "zh" else "hillshade")
            for k, c in controls.items():
                m.add_child(c, name=k)
        if basemap != "none":
            add_basemap(m, basemap, url=basemap_url)  # type: ignore[arg-type]
        save_map(m, path)
    years = summary["years"]
    t = T[lang]
    zones = read_vector(run_dir / "townships.gpkg")
    name = summary.get("project", "")
    note = f"sinkmap {summary.get('sinkmap_version', '')}; {name}; " + (
        "数据为示范（合成）数据" if "demo" in name and lang == "zh" else "")
    pages: list[Page] = []
    with atomic_path(run_dir / "maps", overwrite=overwrite) as stage:
        stage.mkdir()
        y1 = years[-1]
        cols = popup_columns(zones.columns, y1, lang)
        for pool in ["total", *summary.get("pools", [])]:
            suffix = "" if pool == "total" else f"{pool}_"
            path = run_dir / f"carbon_density_{suffix}tC_per_ha_{y1}.tif"
            if not path.exists():
                continue
            label = t["density"] if pool == "total" else \
                f"{t['density']}: {POOL_NAMES[lang].get(pool, pool)}"
            m = carbon_density_map(read_raster(path), zones, zone_label="name",
                                   value_columns=cols, title=f"{name} — {label} {y1}",
                                   lang=lang, source_note=note)
            f = f"carbon_{pool}.html"
            save(m, stage / f)
            pages.append(Page(f, f"{label} {y1}", "t C/ha"))
        total = run_dir / f"carbon_density_tC_per_ha_{y1}.tif"
        if "sink_tCO2e" in zones.columns and total.exists():
            sink_cols = {"sink_tCO2e": header("sink_tCO2e", lang), **cols}
            label = header("sink_tCO2e", lang)
            m = carbon_density_map(read_raster(total), zones, zone_label="name",
                                   value_columns=sink_cols, title=f"{name} — {label}",
                                   lang=lang, source_note=note, diverging=True)
            save(m, stage / "township_sink.html")
            pages.append(Page("township_sink.html", label, f"{years[0]}–{y1}"))
        project = _project_inputs(run_dir, manifest)
        if project is not None and len(years) >= 2:
            scheme, lcs = project
            labels = scheme.names(lang)
            cmap = colours or {}
            if not cmap and scheme.name in ("gbt21010", "clcd", "worldcover"):
                style = landuse_style(scheme.name)
                cmap = {c.code: c.colour for c in style.classes}
                labels = {c.code: c.label(lang) for c in style.classes}
            y0 = years[0]
            change = run_dir / f"landuse_change_{y0}_{y1}.tif"
            if change.exists():
                m = _base_map(zones)
                ch_col = CHANGE_COLOURS
                add_class_layer(m, read_raster(change), ch_col, name=t["change"])
                items = [(ch_col[k], v[0] if lang == "zh" else v[1])
                         for k, v in CHANGE_TYPES.items()]
                _finish(m, zones, f"{name} — {t['change']} {y0}–{y1}",
                        legend_html(t["change"], items), note)
                save(m, stage / "landuse_change.html")
                pages.append(Page("landuse_change.html", f"{t['change']} {y0}–{y1}", ""))
            if cmap:
                m = _base_map(zones)
                a = read_raster(lcs[y0])
                add_class_layer(m, a, cmap, name=f"{t['lu']} {y0}")
                right_img = read_raster(lcs[y1])
                add_class_layer(m, right_img, cmap, name=f"{t['lu']} {y1}")
                right = [c for c in m._children.values()
                         if isinstance(c, folium.raster_layers.ImageOverlay)][-1]
                Swipe(right, left_label=str(y0), right_label=str(y1)).add_to(m)
                codes = {int(c) for c in present_codes(a)} | {int(c) for c in
                                                               present_codes(right_img)}
                _finish(m, zones, f"{name} — {t['compare']} {y0} | {y1}",
                        legend_html(t["lu"], present_items(codes, cmap, labels)), note)
                save(m, stage / "landuse_compare.html")
                pages.append(Page("landuse_compare.html", f"{t['compare']} {y0} | {y1}", ""))
        if (run_dir / "tillage" / "parcels.gpkg").exists():
            m, description = _tillage_page(run_dir, manifest, zones, name, note, lang)
            save(m, stage / "tillage.html")
            pages.append(Page("tillage.html", t["tillage"], description))
        if (run_dir / "ecology" / "summary.json").exists():
            m, description = _ecology_page(run_dir / "ecology", zones, name, note, lang)
            save(m, stage / "ecology.html")
            pages.append(Page("ecology.html", t["ecology"], description))
        if (run_dir / "green" / "summary.json").exists():
            m, description = _green_page(run_dir / "green", name, note, lang)
            save(m, stage / "green.html")
            pages.append(Page("green.html", t["green"], description))
        if print_maps:
            from sinkmap.publish import write_print_maps

            lc_last = project[1].get(years[-1]) if project is not None else None
            scheme_name = project[0].name if project is not None else "gbt21010"
            for f in write_print_maps(run_dir, stage / "print", zones, title=name, note=note,
                                      lang=lang, year=years[-1], landcover=lc_last,
                                      scheme=scheme_name):
                if f.suffix == ".pdf":
                    kind = "打印图" if lang == "zh" else "print map"
                    pages.append(Page(f"print/{f.name}", f"{f.stem} (PDF {kind})", ""))
        (stage / "index.html").write_text(index_html(pages, t["atlas"], name, t["index_note"],
                                                     lang), encoding="utf-8")
    return run_dir / "maps" / "index.html"


def _ecology_page(folder: Path, zones: Any, name: str, note: str, lang: str
                  ) -> tuple[folium.Map, str]:
    """The ecological-protection pattern map of ``folder`` and its index line."""
    from maps.ecology_map import ecology_map

    s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    m = ecology_map(folder, zones, lang=lang, title=f"{name} — {T[lang]['ecology']}",
                    source_note=note, zone_label="name")
    if lang == "zh":
        description = (f"生态源地 {s['n_cores_selected']} 处，廊道 {s['n_corridors']} 条，"
                       f"夹点 {s['n_pinchpoints']} 处，障碍点 {s['n_barriers']} 处")
    else:
        description = (f"{s['n_cores_selected']} cores, {s['n_corridors']} corridors, "
                       f"{s['n_pinchpoints']} pinch points, {s['n_barriers']} barriers")
    return m, description


def _green_page(folder: Path, name: str, note: str, lang: str) -> tuple[folium.Map, str]:
    """The urban green-space map of ``folder`` and its index line."""
    from maps.green_map import green_map
    from sinkmap.green_cmd import fmt

    s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    m = green_map(folder, lang=lang, title=f"{name} — {T[lang]['green']} {s['year']}",
                  source_note=note)

    def f(v: Any, nd: int = 0) -> str:
        return fmt(v, nd)

    if s.get("status") != "ok":
        description = s.get("reason", "")
    elif lang == "zh":
        description = f"绿化覆盖率 {f(s['green_coverage_pct'], 1)}%"
        if s.get("new_green_mu") is not None:
            description += (f"，新增绿地 {f(s['new_green_mu'])} 亩（目标 {f(s['target_mu'])} 亩，"
                            f"完成 {f(s['target_progress_pct'], 1)}%）")
    else:
        description = f"green coverage {f(s['green_coverage_pct'], 1)} %"
        if s.get("new_green_mu") is not None:
            description += (f", new green {f(s['new_green_mu'])} mu of the "
                            f"{f(s['target_mu'])} mu target ({f(s['target_progress_pct'], 1)} %)")
    return m, description


def _tillage_page(run_dir: Path, manifest: dict[str, Any], zones: Any, name: str, note: str,
                  lang: str) -> tuple[folium.Map, str]:
    """The conservation-tillage verification map of ``run_dir/tillage/`` and its index line."""
    import pandas as pd

    from maps.tillage_map import tillage_map

    folder = run_dir / "tillage"
    parcels = read_vector(folder / "parcels.gpkg")
    towns_p = folder / "townships.csv"
    towns = pd.read_csv(towns_p, encoding="utf-8-sig") if towns_p.exists() else pd.DataFrame()
    summary_p = folder / "summary.json"
    summary = (json.loads(summary_p.read_text(encoding="utf-8")) if summary_p.exists() else
               json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get(
                   "tillage", {}))
    cfg = manifest.get("parameters", {}).get("config", {})
    farm, till = cfg.get("farmland", {}), cfg.get("tillage", {})
    fields = {"id": str(till.get("id_field", "parcel_id")),
              "township": str(farm.get("township_field", "township")),
              "practice": str(farm.get("practice_field", "declared_practice")),
              "area_mu": str(farm.get("area_field", "declared_area_mu"))}
    year = summary.get("year")
    label = T[lang]["tillage"] + (f" {year}" if year else "")
    m = tillage_map(parcels, towns, zones, summary=summary, lang=lang,
                    title=f"{name} — {label}", zone_label="name", fields=fields,
                    source_note=note)
    confirmed, target = summary.get("confirmed_area_mu"), summary.get("target_mu")
    unit = "亩" if lang == "zh" else "mu"
    description = f"{year}" if year else ""
    if confirmed is not None:
        description += (f"{': ' if year else ''}{'核实' if lang == 'zh' else 'confirmed'} "
                        f"{confirmed:,.0f} {unit}"
                        + (f" / {'目标' if lang == 'zh' else 'target'} {target:,.0f} {unit}"
                           if target else ""))
    return m, description


def _project_dem(run_dir: Path, manifest: dict[str, Any]) -> Path | None:
    params = manifest.get("parameters", {})
    rel, dem = params.get("project_dir_from_outputs"), params.get("config", {}).get(
        "region", {}).get("dem")
    if rel is None or not dem:
        return None
    path = (run_dir / rel / dem).resolve()
    if not path.exists():
        log.warning("%s: DEM %s not found; maps without hillshade", run_dir, path)
        return None
    return path


def _project_inputs(run_dir: Path, manifest: dict[str, Any]
                    ) -> tuple[Any, dict[int, Path]] | None:
    params = manifest.get("parameters", {})
    rel = params.get("project_dir_from_outputs")
    cfg = params.get("config", {})
    if rel is None or "landcover" not in cfg:
        log.warning("%s: manifest does not locate the project inputs; land-use maps skipped",
                    run_dir)
        return None
    base = (run_dir / rel).resolve()
    years = {int(y): base / p for y, p in cfg["landcover"].get("years", {}).items()}
    scheme_ref = cfg["landcover"].get("scheme", "gbt21010")
    scheme = load_scheme(scheme_ref if not scheme_ref.endswith(".csv") else base / scheme_ref)
    if not all(p.exists() for p in years.values()):
        log.warning("%s: land-cover inputs not found under %s; land-use maps skipped",
                    run_dir, base)
        return None
    return scheme, years


def _base_map(zones: Any) -> folium.Map:
    b = zones.to_crs(4326).total_bounds
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=False)
    m.fit_bounds([[b[1], b[0]], [b[3], b[2]]])
    return m


def _finish(m: folium.Map, zones: Any, title: str, legend: str, note: str) -> None:
    z = zones.to_crs(4326)[["name", "geometry"]]
    z["label"] = z["name"].map(lambda v: esc(str(v)))  # Leaflet shows tooltips as HTML
    folium.GeoJson(z[["label", "geometry"]].to_json(), name="townships",
                   style_function=lambda _: {"color": "#333", "weight": 1, "fill": False},
                   tooltip=folium.GeoJsonTooltip(["label"], labels=False)).add_to(m)
    from branca.element import Element

    from maps.page_parts import PAGE_CSS, HtmlControl

    m.get_root().header.add_child(Element(PAGE_CSS), name="sinkmap_css")

    HtmlControl(esc(title), position="topleft", css_class="sinkmap-title").add_to(m)
    HtmlControl(legend, position="topright", css_class="sinkmap-legend-box").add_to(m)
    HtmlControl(esc(note), position="bottomright", css_class="sinkmap-source").add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)


def index_html(pages: list[Page], atlas: str, project: str, note: str, lang: str) -> str:
    """The atlas index: a plain, self-contained page linking every theme map."""
    items = "\n".join(f'<li><a href="{esc(p.file)}">{esc(p.title)}</a>'
                      f'{" — " + esc(p.description) if p.description else ""}</li>'
                      for p in pages)
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8">
<title>{esc(atlas)} — {esc(project)}</title>
<style>body{{font:15px/1.6 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46em;
margin:2em auto;padding:0 1em;color:#222}} a{{color:#1f5f8b}} h1{{font-size:1.5em}}</style>
</head><body><h1>{esc(atlas)}</h1><p>{esc(project)}</p>
<ul>
{items}
</ul><p><small>{esc(note)}</small></p></body></html>
"""
