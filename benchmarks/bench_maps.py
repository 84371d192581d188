"""Benchmark: size of each atlas page and time until it is interactive in headless Chromium.

    .venv/bin/sinkmap demo --resolution 10 --out /tmp/demo10
    .venv/bin/python benchmarks/bench_maps.py /tmp/demo10/outputs/maps

"Interactive" = Leaflet loaded, the raster overlay and township polygons drawn, and a polygon
answering a hover. Uses Debian's Chromium through Playwright (no browser download).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READY = ("window.L && document.querySelector('img.leaflet-image-layer') && "
         "document.querySelector('path.leaflet-interactive')")


def main(folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=FLAGS)
        for f in sorted(folder.glob("*.html")):
            if f.name == "index.html":
                continue
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            t = time.perf_counter()
            page.goto(f.resolve().as_uri())
            page.wait_for_function(READY)
            page.locator("path.leaflet-interactive").first.hover(force=True)
            print(f"{f.name:28s} {f.stat().st_size / 1e6:5.2f} MB  interactive in "
                  f"{time.perf_counter() - t:.2f} s")
            page.close()
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
