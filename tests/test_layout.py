"""Package layout: one-way dependencies, installable wheel that carries its tables."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["gis", "layers", "sinks", "maps", "sinkmap"]  # each may import only those before it


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("pkg", ORDER)
def test_dependencies_flow_one_way(pkg):
    forbidden = set(ORDER[ORDER.index(pkg) + 1:])
    for py in (ROOT / pkg).rglob("*.py"):
        bad = _imports(py) & forbidden
        assert not bad, f"{py.relative_to(ROOT)} imports {bad}: dependencies must flow " \
                        f"{' <- '.join(ORDER)}"


def test_wheel_installs_and_runs_outside_checkout(tmp_path):
    """`pip install .` (not editable) must carry the tables and work from any folder."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    wheel = next(tmp_path.glob("sinkmap-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tables = "sinkmap_data/tables/"
    for must in (tables + "carbon_jilin.csv", tables + "carbon_ipcc2006.csv",
                 tables + "landuse_clcd.csv", tables + "landuse_worldcover.csv",
                 "sinkmap_data/tables/landuse_gbt21010.csv",
                 "sinkmap_data/meihekou/meihekou_220581_tianditu_wgs84.geojson",
                 "gis/grid.py", "layers/landcover.py", "sinks/density.py", "maps/carbon_map.py",
                 "sinkmap/cli.py"):
        assert must in names, f"{must} missing from the wheel"
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import gis, sinks.coefficients as c, layers.landcover as l; "
            f"assert str(gis.__file__).startswith({str(site)!r}), gis.__file__; "
            "print(len(c.load_carbon_table('default').table), "
            "len(l.load_scheme('gbt21010').table))")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert int(out[0]) >= 20 and int(out[1]) > 30
    cli = subprocess.run([sys.executable, "-m", "sinkmap", "--version"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, check=True)
    assert cli.stdout.startswith("sinkmap ")
