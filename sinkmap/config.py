"""The project file (TOML): what to read, how to classify, which tables, where to write.

```toml
[project]
name = "梅河口市 碳汇本底"
crs = "EPSG:4551"            # optional: the CRS every input must already be in

[region]
boundary = "inputs/boundary.gpkg"
dem = "inputs/dem.tif"       # optional: hillshade backdrop of the maps

[zones]                      # townships, or any polygons
path = "inputs/townships.gpkg"
id_field = "code"
name_field = "name_zh"
encoding = "GB18030"         # optional, for Shapefiles whose DBF has no .cpg

[landcover]
scheme = "gbt21010"          # a shipped scheme, or a CSV path
[landcover.years]
2020 = "inputs/landcover_2020.tif"
2025 = "inputs/landcover_2025.tif"

[carbon]
table = "default"            # a shipped table, or a CSV path (overrides it)

[outputs]
dir = "outputs"
zonal_method = "centre"      # or "fraction" (exact fractional coverage)
lang = "zh"                  # map labels: zh or en
pool_rasters = true          # also write one density COG per pool
atlas = true                 # write the offline atlas (outputs/maps/index.html)
print_maps = false           # also PNG + PDF print maps in outputs/maps/print (slower)

[farmland]                   # optional: SOC sink of conservation tillage (IPCC Tier 1)
parcels = "inputs/parcels.gpkg"
practice_field = "declared_practice"   # conservation / 保护性耕作 count
area_field = "declared_area_mu"
township_field = "township"  # holds the zone names ([zones] name_field)
practice = "no_till"         # or reduced_till
soc_edition = "ipcc2006"     # or ipcc2019

[tillage]                    # optional: verify the declared parcels of [farmland] from imagery
imagery = "inputs/imagery_2025/items.json"   # STAC ItemCollection or folder of band GeoTIFFs
year = 2025
samples = "inputs/tillage_samples.gpkg"      # optional field samples (residue_pct): calibration
id_field = "parcel_id"
window = ["04-01", "05-31"]  # post-planting window (MM-DD)
threshold_pct = 30           # residue cover for conservation tillage
target_mu = 80000            # the plan's target
# the SOC sink of [farmland] then counts the CONFIRMED area, not the declared one

[wetland]                    # restored wetlands (cropland -> marsh between the years)
years_since = 0              # completed years since rewetting (0-19: first phase)

[forest]                     # optional: Tier 2 forest from the inventory (小班)
inventory = "inputs/forest_inventory.gpkg"
table = "default"            # volume -> biomass factors per species group

[ecology]                    # optional: ecological-protection pattern (sinkmap ecology)
roads = "inputs/roads.gpkg"  # optional: distance-to-road resistance factor
cores = 5                    # cores to select (MSPA core patches ranked by dPC)
corridors = 3                # corridors to select (least-cost, ranked by cost)
# zones = "inputs/eco_zones.gpkg"; zone_field = "name"   # else derived zones
# also: min_core_ha, min_core_gap_m, edge_width, threshold_m, probability, corridor_cwd,
# buffer_cwd, circuit, circuit_factor, pinch_quantile, barrier_radii_m, barrier_min_pct,
# habitat = [...], align_dem, resistance_table; the DEM is [region] dem, the region its
# boundary, the land cover the last year, the zones' carbon the run's density of that year

[green]                      # optional: urban green space (sinkmap green)
urban = "inputs/town.gpkg"   # urban boundary (城镇开发边界); or urban_classes = ["settlement",
                             # "urban_green"]: the built-up area from the land cover
imagery = "inputs/summer/items.json"   # summer scenes of both years; omit: land-cover classes
year = 2025                  # default: the last land-cover year
baseline_year = 2020         # optional: new / lost green against the target
districts = "inputs/districts.gpkg"    # optional; district_field = "name",
population_field = "population"        # (empty = unknown: per-capita left empty)
parks = "inputs/parks.gpkg"  # optional: park service coverage
# landcover / baseline_landcover: the town's own land cover (default: the project's years)
# also: residential (polygons), threshold (fixed NDVI; default Otsu), season, min_area_m2,
# min_observed_pct, green_classes, exclude_classes, residential_classes, target_mu,
# coverage_target_pct, park_tiers = [[2000, 300], [5000, 500]], table (green_space.csv copy)

[uncertainty]
draws = 1000                 # Monte Carlo draws (seeded, reproducible)
seed = 0

[valuation]
price = "cea_2024_avg"       # a row of carbon_prices.csv, or a number per t CO2e
```

Relative paths are relative to the project file. :func:`load_config` checks the structure;
:func:`validate` opens every input and collects *every* problem before any work starts.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyogrio
import rasterio

from gis.crs import as_crs, crs_label, is_metric_projected
from gis.errors import ConfigError, SinkmapError
from gis.grid import GridSpec
from gis.raster_io import read_raster
from layers.landcover import check_codes, load_scheme, present_codes
from sinks.coefficients import load_carbon_table, require_codes

ZONAL_METHODS = ("centre", "fraction")
LANGS = ("zh", "en")


@dataclass(frozen=True)
class ProjectConfig:
    path: Path
    name: str
    crs: str | None
    boundary: Path | None
    zones: Path
    zone_id_field: str
    zone_name_field: str
    zone_encoding: str | None
    scheme: str
    landcover: dict[int, Path]
    carbon_table: str
    out_dir: Path
    zonal_method: str = "centre"
    lang: str = "zh"
    pool_rasters: bool = True
    atlas: bool = True
    print_maps: bool = False
    mc_draws: int = 1000
    mc_seed: int = 0
    price: str | float = "cea_2024_avg"
    parcels: Path | None = None
    parcel_fields: dict[str, str] = field(default_factory=dict)
    tillage_practice: str = "no_till"
    soc_edition: str = "ipcc2006"
    wetland_years_since: int | None = 0
    forest_inventory: Path | None = None
    forest_table: str = "default"
    tillage_imagery: Path | None = None
    tillage_year: int | None = None
    tillage_samples: Path | None = None
    tillage_options: dict[str, Any] = field(default_factory=dict)
    dem: Path | None = None
    ecology: dict[str, Any] | None = None
    green: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def years(self) -> list[int]:
        return sorted(self.landcover)

    def input_paths(self) -> list[Path]:
        paths = [self.zones, *self.landcover.values()]
        paths += [p for p in (self.boundary, self.parcels, self.forest_inventory,
                              self.tillage_imagery, self.tillage_samples) if p]
        if self.ecology is not None:
            paths += [v for k, v in self.ecology.items() if k in ECOLOGY_PATHS and v]
        if self.green is not None:
            paths += [v for k, v in self.green.items() if k in GREEN_PATHS and v]
        for ref in (self.scheme, self.carbon_table):
            p = self.path.parent / ref
            if p.suffix.lower() == ".csv":
                paths.append(p)
        return paths


ECOLOGY_PATHS = ("roads", "zones", "resistance_table")
GREEN_PATHS = ("urban", "imagery", "districts", "parks", "residential", "table", "landcover",
               "baseline_landcover")
GREEN_OTHER = ("year", "baseline_year", "district_field", "population_field", "park_field",
               "park_tiers", "urban_classes")


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _table_ref(base: Path, value: str) -> str:
    return str(_resolve(base, value)) if value.lower().endswith(".csv") else value


def load_config(path: str | Path, *, out_dir: str | Path | None = None) -> ProjectConfig:
    """Parse and structurally check a project file; every problem is reported at once."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(["project file does not exist"], source=p)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([f"not valid TOML: {exc}"], source=p) from exc
    base = p.parent.resolve()
    problems: list[str] = []

    def section(name: str) -> dict[str, Any]:
        s = raw.get(name, {})
        if not isinstance(s, dict):
            problems.append(f"[{name}] must be a table")
            return {}
        return s

    def need(sec: dict[str, Any], sec_name: str, key: str) -> str:
        v = sec.get(key)
        if not isinstance(v, str) or not v.strip():
            problems.append(f"[{sec_name}] {key} is required (a string)")
            return ""
        return v

    proj, region, zones = section("project"), section("region"), section("zones")
    lc, carbon, outputs = section("landcover"), section("carbon"), section("outputs")
    unc, val = section("uncertainty"), section("valuation")
    farm, wet, forest = section("farmland"), section("wetland"), section("forest")
    till = section("tillage")
    eco = section("ecology") if "ecology" in raw else None
    ecology = None
    if eco is not None:
        from sinkmap.ecology_cmd import SETTING_KEYS, settings_from_mapping

        try:
            settings_from_mapping(eco).check()
        except SinkmapError as e:
            problems.append(f"[ecology] {e.problem}")
        other = {*ECOLOGY_PATHS, "zone_field", "align_dem"}
        unknown = sorted(set(eco) - set(SETTING_KEYS) - other)
        if unknown:
            problems.append(f"[ecology] unknown key(s) {unknown}; known: "
                            f"{', '.join(sorted(set(SETTING_KEYS) | other))}")
        ecology = {k: (_resolve(base, v) if k in ECOLOGY_PATHS and isinstance(v, str) else v)
                   for k, v in eco.items()}
    grn = section("green") if "green" in raw else None
    green = None
    if grn is not None:
        from sinkmap.green_cmd import SETTING_KEYS as GREEN_KEYS
        from sinkmap.green_cmd import settings_from_mapping as green_settings

        known = {*GREEN_KEYS, *GREEN_PATHS, *GREEN_OTHER}
        unknown = sorted(set(grn) - known)
        if unknown:
            problems.append(f"[green] unknown key(s) {unknown}; known: {', '.join(sorted(known))}")
        if not isinstance(grn.get("urban"), str) and not grn.get("urban_classes"):
            problems.append("[green] urban = \"...\" (the urban boundary polygon) or "
                            "urban_classes = [...] (built-up land-cover classes) is required")
        for k in ("year", "baseline_year"):
            if k in grn and not isinstance(grn[k], int):
                problems.append(f"[green] {k} must be a year (integer), got {grn[k]!r}")
        try:
            green_settings({k: v for k, v in grn.items() if k in GREEN_KEYS or k == "park_tiers"})
        except (SinkmapError, TypeError, ValueError, IndexError) as e:
            problems.append(f"[green] {getattr(e, 'problem', e)}")
        green = {k: (_resolve(base, v) if k in GREEN_PATHS and isinstance(v, str) else v)
                 for k, v in grn.items()}
    if till:
        if not isinstance(farm.get("parcels"), str):
            problems.append("[tillage] needs the parcels of [farmland] parcels = \"...\"")
        if not isinstance(till.get("imagery"), str):
            problems.append("[tillage] imagery is required (a STAC JSON or a folder)")
        if not isinstance(till.get("year"), int):
            problems.append("[tillage] year is required (an integer, e.g. 2025)")
        w = till.get("window", ["04-01", "05-31"])
        if not (isinstance(w, list) and len(w) == 2 and all(isinstance(x, str) for x in w)):
            problems.append('[tillage] window must be ["MM-DD", "MM-DD"]')
        for key in ("threshold_pct", "target_mu", "ndvi_max", "min_observed_share"):
            if key in till and not isinstance(till[key], (int, float)):
                problems.append(f"[tillage] {key} must be a number")
    if not isinstance(unc.get("draws", 1000), int) or unc.get("draws", 1000) < 1:
        problems.append("[uncertainty] draws must be an integer >= 1")
    if not isinstance(unc.get("seed", 0), int):
        problems.append("[uncertainty] seed must be an integer")
    price = val.get("price", "cea_2024_avg")
    if not isinstance(price, (str, int, float)) or (not isinstance(price, str) and price < 0):
        problems.append("[valuation] price must be a price name (e.g. cea_2024_avg) or a "
                        "number per t CO2e >= 0")
    years_raw = lc.get("years", {})
    landcover: dict[int, Path] = {}
    if not isinstance(years_raw, dict) or not years_raw:
        problems.append("[landcover.years] must map at least one year to a raster, "
                        'e.g. 2020 = "lc2020.tif"')
    else:
        for y, f in years_raw.items():
            if not str(y).isdigit() or not isinstance(f, str):
                problems.append(f"[landcover.years] {y!r} = {f!r}: use YEAR = \"path\"")
            else:
                landcover[int(y)] = _resolve(base, f)
    method = outputs.get("zonal_method", "centre")
    if method not in ZONAL_METHODS:
        problems.append(f"[outputs] zonal_method must be one of {ZONAL_METHODS}, got {method!r}")
    lang = outputs.get("lang", "zh")
    if lang not in LANGS:
        problems.append(f"[outputs] lang must be one of {LANGS}, got {lang!r}")
    zpath = need(zones, "zones", "path")
    zid = need(zones, "zones", "id_field")
    boundary = region.get("boundary")
    cfg = ProjectConfig(
        path=p.resolve(),
        name=str(proj.get("name", p.stem)),
        crs=proj.get("crs"),
        boundary=_resolve(base, boundary) if isinstance(boundary, str) else None,
        zones=_resolve(base, zpath) if zpath else base,
        zone_id_field=zid,
        zone_name_field=str(zones.get("name_field", zid)),
        zone_encoding=zones.get("encoding"),
        scheme=_table_ref(base, str(lc.get("scheme", "gbt21010"))),
        landcover=landcover,
        carbon_table=_table_ref(base, str(carbon.get("table", "default"))),
        out_dir=Path(out_dir) if out_dir else _resolve(base, str(outputs.get("dir", "outputs"))),
        zonal_method=method,
        lang=lang,
        pool_rasters=bool(outputs.get("pool_rasters", True)),
        atlas=bool(outputs.get("atlas", True)),
        print_maps=bool(outputs.get("print_maps", False)),
        mc_draws=int(unc.get("draws", 1000)),
        mc_seed=int(unc.get("seed", 0)),
        price=val.get("price", "cea_2024_avg"),
        parcels=_resolve(base, farm["parcels"]) if isinstance(farm.get("parcels"), str) else None,
        parcel_fields={"practice": farm.get("practice_field", "declared_practice"),
                       "area_mu": farm.get("area_field", "declared_area_mu"),
                       "township": farm.get("township_field", "township")},
        tillage_practice=str(farm.get("practice", "no_till")),
        soc_edition=str(farm.get("soc_edition", "ipcc2006")),
        wetland_years_since=wet.get("years_since", 0),
        forest_inventory=(_resolve(base, forest["inventory"])
                          if isinstance(forest.get("inventory"), str) else None),
        forest_table=_table_ref(base, str(forest.get("table", "default"))),
        tillage_imagery=(_resolve(base, till["imagery"]) if isinstance(till.get("imagery"), str)
                         else None),
        tillage_year=till.get("year") if isinstance(till.get("year"), int) else None,
        tillage_samples=(_resolve(base, till["samples"]) if isinstance(till.get("samples"), str)
                         else None),
        tillage_options={k: v for k, v in till.items() if k not in ("imagery", "year", "samples")},
        dem=_resolve(base, region["dem"]) if isinstance(region.get("dem"), str) else None,
        ecology=ecology,
        green=green,
        raw=raw,
    )
    if problems:
        raise ConfigError(problems, source=p)
    return cfg


def validate(cfg: ProjectConfig, *, scan_codes: bool = True) -> list[str]:
    """Open every input and return every problem found (empty list: ready to run).

    Checks: files exist and are readable; CRSs present, projected in metres, and identical
    across inputs; land-cover grids identical across years; zone fields exist; every land-cover
    code is in the class scheme and has carbon coefficients (``scan_codes`` reads the rasters
    block by block to find the codes).
    """
    problems: list[str] = []

    def add(source: object, msg: str) -> None:
        problems.append(f"{source}: {msg}")

    want_crs = None
    if cfg.crs:
        try:
            want_crs = as_crs(cfg.crs)
        except SinkmapError as e:
            add(cfg.path, f"[project] crs: {e.problem}")
    ref_crs, ref_name = want_crs, "[project] crs"

    def check_crs(name: object, crs: Any) -> None:
        nonlocal ref_crs, ref_name
        if crs is None:
            add(name, "has no CRS; fix: assign one (e.g. EPSG:4551) to the file")
            return
        c = as_crs(crs)
        if not is_metric_projected(c):
            add(name, f"CRS {crs_label(c)} is not projected in metres, so areas cannot be "
                "measured; fix: reproject it (China: CGCS2000 Gauss-Kruger EPSG:4534-4554)")
        if ref_crs is None:
            ref_crs, ref_name = c, str(name)
        elif c != ref_crs:
            add(name, f"CRS {crs_label(c)} differs from {crs_label(ref_crs)} of {ref_name}; "
                "fix: reproject it to match")

    try:
        scheme = load_scheme(cfg.scheme)
    except SinkmapError as e:
        problems.append(str(e))
        scheme = None
    try:
        table = load_carbon_table(cfg.carbon_table)
        if scheme is not None:
            table = table.for_scheme(scheme)
    except SinkmapError as e:
        problems.append(str(e))
        table = None

    if isinstance(cfg.price, str):
        from sinks.valuation import load_prices

        names = load_prices().index
        if cfg.price not in names:
            add(cfg.path, f"[valuation] price {cfg.price!r} is not a known price; fix: use one of "
                f"{', '.join(names)} or a number per t CO2e")
    grids: dict[int, GridSpec] = {}
    for year, path in sorted(cfg.landcover.items()):
        if not path.exists():
            add(path, f"land cover {year} does not exist; fix: check [landcover.years] {year}")
            continue
        try:
            with rasterio.open(path) as src:
                check_crs(path, src.crs)
                if src.crs is not None:
                    grids[year] = GridSpec.create(src.crs, src.transform, src.shape)
                if src.dtypes[0].startswith("float"):
                    add(path, "land cover is floating point; fix: store class codes as integers")
        except rasterio.errors.RasterioIOError as exc:
            add(path, f"cannot be read as a raster ({exc})")
    if grids:
        y0 = min(grids)
        for y, g in grids.items():
            if g != grids[y0]:
                add(cfg.landcover[y], f"grid ({g.describe()}) differs from {y0} "
                    f"({grids[y0].describe()}); fix: align it with gis.grid.align_to "
                    "(nearest/mode resampling for classes)")
    table_path = (cfg.ecology or {}).get("resistance_table")
    if table_path is not None and not Path(table_path).exists():
        add(table_path, "[ecology] resistance_table does not exist")
    for name, path in (("imagery", cfg.tillage_imagery), ("samples", cfg.tillage_samples)):
        if path is not None and not path.exists():
            add(path, f"[tillage] {name} does not exist")
    grn = cfg.green or {}
    if grn.get("imagery") is not None and not Path(grn["imagery"]).exists():
        add(grn["imagery"], "[green] imagery does not exist")
    if grn.get("table") is not None and not Path(grn["table"]).exists():
        add(grn["table"], "[green] table does not exist")
    for k in ("landcover", "baseline_landcover"):
        if grn.get(k) is not None and not Path(grn[k]).exists():
            add(grn[k], f"[green] {k} does not exist")
    if grn and grn.get("imagery") is None:
        for k, own in (("year", "landcover"), ("baseline_year", "baseline_landcover")):
            y = grn.get(k)
            if y is not None and y not in cfg.landcover and grn.get(own) is None:
                add(cfg.path, f"[green] {k} {y} has no land cover (no imagery given); fix: add "
                    f"[landcover] {y} or give [green] imagery")
    eco = cfg.ecology or {}
    for name, path in (("zones", cfg.zones), ("boundary", cfg.boundary),
                       ("farmland parcels", cfg.parcels),
                       ("forest inventory", cfg.forest_inventory),
                       ("[ecology] roads", eco.get("roads")),
                       ("[ecology] zones", eco.get("zones")),
                       ("[green] urban", grn.get("urban")),
                       ("[green] districts", grn.get("districts")),
                       ("[green] parks", grn.get("parks")),
                       ("[green] residential", grn.get("residential"))):
        if path is None:
            continue
        if not path.exists() or path.is_dir():
            add(path, f"{name} file does not exist")
            continue
        try:
            info = pyogrio.read_info(path, encoding=cfg.zone_encoding if name == "zones" else None)
        except Exception as exc:
            add(path, f"cannot be read as a vector layer ({exc})")
            continue
        check_crs(path, info.get("crs"))
        want = {"zones": {cfg.zone_id_field, cfg.zone_name_field},
                "farmland parcels": set(cfg.parcel_fields.values())}.get(name, set())
        fields = list(info["fields"])
        for f in sorted(want):
            if f not in fields:
                add(path, f"{name} field {f!r} not found; available: {', '.join(fields)}")
    if scan_codes and scheme is not None and table is not None:
        for year, path in sorted(cfg.landcover.items()):
            if year not in grids:
                continue
            try:
                codes = present_codes(read_raster(path))
                if codes.size == 0:
                    add(path, "holds only nodata cells")
                    continue
                check_codes(codes, scheme, source=path)
                require_codes(codes, table, source=path)
            except SinkmapError as e:
                problems.append(str(e))
    return problems
