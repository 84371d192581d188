"""maps.tillage_map and the atlas page: layers, escaped popups, legend counts, page size.

The verification folder is the real output of ``run_tillage`` on the fixture of
tests/test_tillage_cmd.py (6 parcels: P1 confirmed, P2 not confirmed, P3/P5/P6 undetermined,
P4 declared conventional but observed conservation); the size tests use synthetic parcels.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import sinkmap.pipeline as pipeline
from maps.carbon_map import save_map
from maps.offline import external_references, offline_html
from maps.tillage_map import POINTS_ABOVE, _polyline, tillage_map
from sinkmap.atlas import write_atlas
from sinkmap.config import load_config
from sinkmap.tillage_cmd import TillageSettings, YearInput, run_tillage
from tests.project_fixture import make_project
from tests.test_tillage_cmd import make_collection, make_parcels

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def verified(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tillage_map")
    items = make_collection(base / "s2")
    parcels = make_parcels(base / "parcels.gpkg")
    out = base / "out"
    run_tillage([YearInput(2025, items, parcels)], out, TillageSettings(), verbose=False)
    return out


def _load(folder: Path) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    return (gpd.read_file(folder / "parcels.gpkg"),
            pd.read_csv(folder / "townships.csv", encoding="utf-8-sig"),
            json.loads((folder / "summary.json").read_text(encoding="utf-8")))


def _shown(page: str) -> str:
    """The page with the JavaScript string escapes undone (tojson writes CJK as \\uXXXX)."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), page)
    return text.replace('\\"', '"').replace("\\/", "/")


def _payload(page: str) -> dict:
    text = re.search(r"var tillage_parcels_\w+_data = (\{.*?\});\n", page).group(1)
    return json.loads(text.replace("<\\/", "</"), strict=False)


def test_layers_legend_counts_and_headline(verified):
    parcels, towns, summary = _load(verified)
    raw = offline_html(tillage_map(parcels, towns, None, summary=summary, title="核查",
                                   lang="zh"))
    page = _shown(raw)
    for name in ("核实（申报保护性耕作）", "未核实（申报保护性耕作）", "无法判定（申报保护性耕作）",
                 "申报常规耕作地块", "乡镇核实比例"):
        assert name in page, name
    # legend counts are the summary's (parcels declared conservation tillage)
    c = summary["parcel_counts"]
    assert (c["confirmed"], c["not_confirmed"], c["undetermined"]) == (1, 1, 3)
    legend = re.search(r'data-counts="cons">(.*?)</div></div>', page).group(1)
    for word, key in (("核实", "confirmed"), ("未核实", "not_confirmed"),
                      ("无法判定", "undetermined")):
        assert f"{word}: {c[key]} 块" in legend
    assert "观测为保护性耕作（未申报）: 1 块" in page  # P4
    # headline: confirmed mu against the target
    assert f"核实 {summary['confirmed_area_mu']:,.0f} 亩 / 目标 80,000 亩 (0.047 %)" in page
    d = _payload(raw)
    assert [r[0] for r in d["r"]] == [0, 1, 2, 3, 2, 2]  # layer per parcel, in input order
    assert all(isinstance(r[22], list) for r in d["r"])   # all polygons (6 < POINTS_ABOVE)
    assert external_references(raw) == []

    en = _shown(offline_html(tillage_map(parcels, towns, None, summary=summary, title="t",
                                         lang="en")))
    assert "Confirmed 38 mu / target 80,000 mu (0.047 %)" in en
    assert "confirmed: 1 parcels" in en and "Township confirmed share" in en


def test_hostile_text_is_escaped(verified):
    parcels, towns, summary = _load(verified)
    parcels["parcel_id"] = parcels["parcel_id"].astype(object)
    parcels.loc[0, "parcel_id"] = XSS
    parcels.loc[2, "declared_practice"] = "<script>alert(2)</script>"
    parcels.loc[3, "reason"] = "median residue 75.0 % <b onmouseover=alert(3)>"
    # branca parses rendered scripts again as Jinja: braces from data must stay text
    parcels.loc[4, "declared_practice"] = "{{ 7*7 }}"
    parcels.loc[5, "parcel_id"] = "{% raw %}"
    rename = {"甲镇": XSS, "乙镇": "{{ 6*7 }}"}
    parcels["township"] = parcels["township"].replace(rename)
    towns["township"] = towns["township"].replace(rename)
    page = offline_html(tillage_map(parcels, towns, None, summary=summary,
                                    title=f"title {XSS}", source_note=XSS))
    assert XSS not in page and "<script>alert(2)" not in page and "<b onmouseover" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert external_references(page) == []
    d = _payload(page)
    assert d["r"][0][3] == "&lt;img src=x onerror=alert(1)&gt;"
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in d["S"]
    assert "&#123;&#123; 7*7 &#125;&#125;" in d["S"] and d["r"][5][3] == "&#123;% raw %&#125;"
    assert "&#123;&#123; 6*7 &#125;&#125;" in _shown(page)  # the township tooltip
    assert not any("42" in t for t in re.findall(r'"tip": "([^"]*)"', _shown(page)))


def test_polyline_encoding_matches_the_reference():
    # Google's documented example: (38.5, -120.2), (40.7, -120.95), (43.252, -126.453)
    deltas = np.array([3850000, -12020000, 220000, -75000, 255200, -550300])
    assert _polyline(deltas).chars == "_p~iF~ps|U_ulLnnqC_mqNvxq`@"


def synthetic_parcels(n: int, *, seed: int = 0) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    """``n`` fields of about 30 mu (150 m x 130 m, 8 jittered vertices) on a grid, in GK 42,
    with realistic evidence columns: 60 % confirmed, 15 % not confirmed, 15 % undetermined,
    10 % declared conventional."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    x0 = 42_500_000 + (i % side) * 160.0
    y0 = 4_650_000 + (i // side) * 140.0
    t = np.linspace(0, 1, 3)[:-1]
    geoms = []
    for x, y in zip(x0, y0, strict=True):
        bx = np.r_[t * 150, np.full(2, 150.0), 150 - t * 150, np.zeros(2)]
        by = np.r_[np.zeros(2), t * 130, np.full(2, 130.0), 130 - t * 130]
        jx, jy = rng.uniform(-4, 4, 8), rng.uniform(-4, 4, 8)
        geoms.append(shapely.Polygon(np.c_[x + bx + jx, y + by + jy]))
    status = rng.choice(["confirmed", "not_confirmed", "undetermined"], n, p=[0.62, 0.2, 0.18])
    declared = np.where(rng.random(n) < 0.1, "conventional", "conservation")
    med = np.where(status == "confirmed", rng.uniform(30, 90, n), rng.uniform(0, 30, n))
    med[status == "undetermined"] = np.nan
    npx = rng.integers(150, 260, n)
    ncl = np.where(status == "undetermined", rng.integers(0, 4, n), npx)
    reason = [f"median residue {m:.1f} % {'>=' if m >= 30 else '<'} 30 % on {c} clear pixels"
              if s != "undetermined" else
              f"too few clear pixels: {c} of {p} ({100 * c / p:.0f} % observed; needs >= 4 and "
              ">= 50 %)" for m, c, p, s in zip(med, ncl, npx, status, strict=True)]
    area = rng.uniform(25, 35, n)
    decl_mu = np.round(area * rng.uniform(0.95, 1.2, n), 1)
    towns = np.array([f"第{k}镇" for k in range(12)])[i * 12 // n]
    gdf = gpd.GeoDataFrame({
        "parcel_id": [f"220581{k:07d}" for k in i], "township": towns,
        "declared_practice": np.where(declared == "conservation", "保护性耕作", "常规耕作"),
        "declared_area_mu": decl_mu, "declared": declared, "area_mu": area,
        "verification_area_mu": area,
        "area_flag": [f"declared {d:.1f} mu vs measured {a:.1f} mu ({100 * (d - a) / a:+.0f} %)"
                      if abs(d - a) / a > 0.1 else "" for d, a in zip(decl_mu, area, strict=True)],
        "n_pixels": npx, "n_clear": ncl, "observed_share": ncl / npx,
        "ndti_median": (med + 25) / 500, "residue_pct_median": med,
        "residue_pct_p25": med - rng.uniform(2, 8, n),
        "residue_pct_p75": med + rng.uniform(2, 8, n),
        "dates_used": np.where(status == "undetermined", "", "2025-04-20;2025-05-10;2025-05-22"),
        "n_dates_used": np.where(status == "undetermined", 0, 3),
        "status": status, "reason": reason,
    }, geometry=geoms, crs="EPSG:4529")
    cons = declared == "conservation"
    summary = {"year": 2025, "target_mu": 80_000.0,
               "confirmed_area_mu": float(area[cons & (status == "confirmed")].sum()),
               "parcel_counts": {s: int((cons & (status == s)).sum())
                                 for s in ("confirmed", "not_confirmed", "undetermined")}}
    return gdf, pd.DataFrame({"township": ["合计 total"]}), summary


def test_page_size_3500_parcels(tmp_path):
    parcels, towns, summary = synthetic_parcels(3_500)
    m = tillage_map(parcels, towns, None, summary=summary, title="3,500 parcels")
    size = save_map(m, tmp_path / "p.html").stat().st_size
    assert size < 2_000_000, f"{size / 1e6:.2f} MB"
    raw = (tmp_path / "p.html").read_text(encoding="utf-8")
    page, d = _shown(raw), _payload(raw)
    assert len(d["r"]) == 3_500 and all(isinstance(r[22], list) for r in d["r"])
    c = summary["parcel_counts"]
    assert f"核实: {c['confirmed']:,} 块" in page and f"未核实: {c['not_confirmed']:,} 块" in page
    # points for undetermined / declared conventional: smaller still, every row kept
    pts = save_map(tillage_map(parcels, towns, None, summary=summary, title="p",
                               detail="points"), tmp_path / "pts.html").stat().st_size
    assert pts < size
    d = _payload((tmp_path / "pts.html").read_text(encoding="utf-8"))
    assert {isinstance(r[22], str) for r in d["r"] if r[0] >= 2} == {True}
    assert {isinstance(r[22], list) for r in d["r"] if r[0] < 2} == {True}
    assert POINTS_ABOVE > 3_500


def test_atlas_lists_the_tillage_page(tmp_path, verified):
    out = pipeline.run(load_config(make_project(tmp_path / "p")), verbose=False).out_dir
    index = out / "maps" / "index.html"
    assert "tillage.html" not in index.read_text(encoding="utf-8")  # no verification, no page
    shutil.copytree(verified, out / "tillage")
    # one township named like a zone of the run (drawn on the zone), the other on its parcels
    p = gpd.read_file(out / "tillage" / "parcels.gpkg")
    p["township"] = p["township"].replace({"甲镇": "西乡"})
    (out / "tillage" / "parcels.gpkg").unlink()
    p.to_file(out / "tillage" / "parcels.gpkg")
    t = pd.read_csv(out / "tillage" / "townships.csv", encoding="utf-8-sig")
    t["township"] = t["township"].replace({"甲镇": "西乡"})
    t.to_csv(out / "tillage" / "townships.csv", index=False, encoding="utf-8-sig")
    write_atlas(out, overwrite=True)
    html_index = index.read_text(encoding="utf-8")
    assert '<a href="tillage.html">保护性耕作核查</a> — 2025: 核实 38 亩 / 目标 80,000 亩' in \
        html_index
    page = _shown((out / "maps" / "tillage.html").read_text(encoding="utf-8"))
    assert external_references(page) == []
    assert "西乡" in page and "（无乡镇边界：地块范围）" in page  # 乙镇 has no zone polygon
    write_atlas(out, overwrite=True, lang="en")
    assert '<a href="tillage.html">Conservation tillage</a>' in index.read_text(encoding="utf-8")
