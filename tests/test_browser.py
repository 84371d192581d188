"""Every atlas map in a real headless Chromium: Leaflet starts, layers and legend are there, no
request leaves the file, no console error, attribute text is inert (XSS). Screenshots are
written to $SINKMAP_TEST_ARTIFACTS (default test-artifacts/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import geopandas as gpd
import pytest

import sinkmap.pipeline as pipeline
from sinkmap.config import load_config
from tests.conftest import ARTIFACTS
from tests.project_fixture import make_project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("Chromium is missing in CI: scripts/setup --test installs Debian's chromium",
                pytrace=False)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium")
XSS = "<img src=x onerror=alert(1)>"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def atlas(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("atlas")
    p = make_project(folder)
    z = gpd.read_file(folder / "zones.gpkg")
    z.loc[0, "name"] = XSS  # a hostile township name must show as text
    (folder / "zones.gpkg").unlink()
    z.to_file(folder / "zones.gpkg")
    # a DEM (a ramp rising to the east) so every map gets the hillshade backdrop
    import numpy as np

    from gis.grid import make_raster
    from gis.raster_io import write_cog
    from tests.project_fixture import GRID

    dem = np.tile(np.linspace(250, 400, GRID.width, dtype="float32"), (GRID.height, 1))
    write_cog(make_raster(dem, GRID, nodata=-9999.0, units="m", kind="continuous"),
              folder / "dem.tif")
    p.write_text(p.read_text().replace('boundary = "boundary.gpkg"',
                                       'boundary = "boundary.gpkg"\ndem = "dem.tif"'))
    return pipeline.run(load_config(p), verbose=False).out_dir / "maps"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors, outside, dialogs = [], [], []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    me = page_path.resolve().as_uri()

    def route(r):
        url = r.request.url
        if url == me or url.startswith("data:"):
            r.continue_()
        else:
            outside.append(url)
            r.abort()

    page.route("**/*", route)
    page.goto(me)
    page.wait_for_function("window.L !== undefined && document.querySelector('.leaflet-container')")
    page.wait_for_timeout(300)
    return page, errors, outside, dialogs


MAPS = ["carbon_total.html", "carbon_c_above.html", "carbon_c_below.html", "carbon_c_soil.html",
        "carbon_c_dead.html", "township_sink.html", "landuse_change.html",
        "landuse_compare.html"]


def test_every_atlas_map_is_tested(atlas):
    assert sorted(p.name for p in atlas.glob("*.html") if p.name != "index.html") == sorted(MAPS)


@pytest.mark.parametrize("name", MAPS)
def test_map_in_chromium(atlas, browser, name):
    page, errors, outside, dialogs = _open(browser, atlas / name)
    assert outside == [], f"requests left the file: {outside}"
    assert errors == [], f"console errors: {errors}"
    assert page.locator("img.leaflet-image-layer").count() >= 1, "raster overlay missing"
    assert page.locator("path.leaflet-interactive").count() >= 2, "township polygons missing"
    legend = page.locator(".sinkmap-legend, .legend").first
    assert legend.is_visible(), "legend not visible"
    assert page.locator(".leaflet-control-layers").first.is_visible(), "no layer control"
    assert page.locator(".leaflet-pane.sinkmap-hillshade-pane img, "
                        ".leaflet-sinkmap-hillshade-pane img").count() == 1, "no hillshade"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"))
    assert dialogs == []
    page.close()


def test_hostile_names_stay_text(atlas, browser):
    page, errors, _, dialogs = _open(browser, atlas / "carbon_total.html")
    shown = 0
    for p in page.locator("path.leaflet-interactive").all():
        p.hover(force=True)
        p.click(force=True)
        page.wait_for_timeout(150)
        shown += page.get_by_text(XSS).count()
    assert dialogs == [], "an attribute value ran as script"
    assert shown >= 1, "the hostile name is never shown as text"
    assert page.locator("img[src='x']").count() == 0
    assert errors == []
    page.close()


def test_index_links_resolve(atlas, browser):
    page = browser.new_page()
    page.goto((atlas / "index.html").resolve().as_uri())
    hrefs = page.eval_on_selector_all("a", "els => els.map(e => e.getAttribute('href'))")
    assert hrefs and all((atlas / h).is_file() for h in hrefs)
    page.close()


def test_tillage_page_in_chromium(tmp_path, browser):
    """The conservation-tillage page of a run with a verification: offline, parcels drawn on the
    canvas, evidence popup with a hostile parcel id and township shown as text."""
    import json

    from sinkmap.atlas import write_atlas
    from sinkmap.tillage_cmd import YearInput, run_tillage
    from tests.test_tillage_cmd import make_collection, make_parcels

    out = pipeline.run(load_config(make_project(tmp_path / "p")), verbose=False).out_dir
    run_tillage([YearInput(2025, make_collection(tmp_path / "s2"),
                           make_parcels(tmp_path / "parcels.gpkg"))],
                out / "tillage", verbose=False)
    parcels = gpd.read_file(out / "tillage" / "parcels.gpkg")
    parcels["parcel_id"] = parcels["parcel_id"].replace({"P1": XSS})
    parcels["township"] = parcels["township"].replace({"甲镇": XSS})
    (out / "tillage" / "parcels.gpkg").unlink()
    parcels.to_file(out / "tillage" / "parcels.gpkg")
    write_atlas(out, overwrite=True)
    page, errors, outside, dialogs = _open(browser, out / "maps" / "tillage.html")
    page.wait_for_function("window.sinkmapTillage !== undefined")
    assert outside == [], f"requests left the file: {outside}"
    assert errors == [], f"console errors: {errors}"
    drawn = page.evaluate("""() => { const out = {}; const t = window.sinkmapTillage;
        for (const k in t.layers) { out[k] = t.layers[k].getLayers().filter(
            l => l._map && l._parts && l._parts.length > 0).length; } return out; }""")
    summary = json.loads((out / "tillage" / "summary.json").read_text(encoding="utf-8"))
    c = summary["parcel_counts"]
    # P5 (15 m square) and P6 (off the scene) are drawn too: every parcel is on the canvas
    assert drawn == {"confirmed": c["confirmed"], "not_confirmed": c["not_confirmed"],
                     "undetermined": c["undetermined"], "conventional": 1}, drawn
    assert page.locator("canvas.leaflet-zoom-animated").count() >= 1
    assert page.locator(".sinkmap-legend").first.is_visible()
    assert page.locator(".leaflet-control-layers").first.is_visible()
    assert page.get_by_text("核实 38 亩 / 目标 80,000 亩").count() == 1
    # click the confirmed parcel (P1, renamed): its popup shows the evidence and the name as text
    x, y = page.evaluate("""() => { const g = window.sinkmapTillage.layers.confirmed;
        const l = g.getLayers()[0], m = g._map;
        const p = m.latLngToContainerPoint(l.getBounds().getCenter());
        const r = m.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top]; }""")
    page.mouse.click(x, y)
    page.wait_for_selector(".leaflet-popup-content")
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert XSS in popup and "75.0" in popup and "252 / 252" in popup, popup
    assert dialogs == [] and page.locator("img[src='x']").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "tillage.png"))
    assert errors == []
    page.close()


def _popup_texts(page) -> list[str]:
    """Open the popup of every vector layer of the page's map (by firing a click at its
    centre) and return their texts."""
    return page.evaluate("""() => { const out = [];
        const m = window[Object.keys(window).find(k => k.startsWith('map_'))];
        m.eachLayer(l => { if (l.getLayers || !l.getBounds) return;
            l.fire('click', {latlng: l.getBounds().getCenter()}, true);
            const c = document.querySelector('.leaflet-popup-content');
            if (c) out.push(c.innerText); m.closePopup(); });
        return out; }""")


def test_ecology_page_in_chromium(tmp_path, browser):
    """The ecological-protection pattern page of a run: offline, no console error, the MSPA
    image and the ranked cores drawn, a hostile zone name shown as text in its popup."""
    from sinkmap.atlas import write_atlas
    from tests.test_ecology_map import write_folder

    out = pipeline.run(load_config(make_project(tmp_path / "p")), verbose=False).out_dir
    write_folder(out / "ecology", zone_name=XSS)
    write_atlas(out, overwrite=True)
    assert "ecology.html" in (out / "maps" / "index.html").read_text(encoding="utf-8")
    page, errors, outside, dialogs = _open(browser, out / "maps" / "ecology.html")
    assert outside == [], f"requests left the file: {outside}"
    assert errors == [], f"console errors: {errors}"
    assert page.locator("img.leaflet-image-layer").count() >= 1, "MSPA overlay missing"
    assert sorted(page.locator(".sinkmap-eco-rank").all_inner_texts()) == ["1", "2", "3", "4"]
    assert page.locator(".sinkmap-legend").first.is_visible()
    # open every popup of every layer (zones lie under the cores: clicks would hit those)
    texts = _popup_texts(page)
    assert any(XSS in t for t in texts), "the hostile zone name is never shown as text"
    assert dialogs == [] and page.locator("img[src='x']").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ecology.png"))
    assert errors == []
    page.close()


def test_green_page_in_chromium(tmp_path, browser):
    """The urban green-space page of a run: offline, no console error, the mask image and the
    districts drawn, a hostile district name shown as text in its popup."""
    from sinkmap.atlas import write_atlas
    from tests.test_green_map import write_folder as write_green

    out = pipeline.run(load_config(make_project(tmp_path / "p")), verbose=False).out_dir
    write_green(out / "green", name=XSS)
    write_atlas(out, overwrite=True)
    assert "green.html" in (out / "maps" / "index.html").read_text(encoding="utf-8")
    page, errors, outside, dialogs = _open(browser, out / "maps" / "green.html")
    assert outside == [], f"requests left the file: {outside}"
    assert errors == [], f"console errors: {errors}"
    assert page.locator("img.leaflet-image-layer").count() >= 1, "green mask overlay missing"
    assert page.locator("path.leaflet-interactive").count() >= 2, "districts missing"
    texts = _popup_texts(page)
    assert any(XSS in t for t in texts), "the hostile district name is never shown as text"
    assert dialogs == [] and page.locator("img[src='x']").count() == 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "green.png"))
