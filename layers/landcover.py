"""Land-cover class schemes: which codes exist, what they are called, where they belong.

A scheme is a data table (``sinkmap_data/tables/landuse_<scheme>.csv``, or the user's own CSV)
with at least ``code``, ``name_zh``, ``name_en`` and ``ipcc_category``, and usually
``canonical``: the crosswalk to the canonical classes (``canonical_classes.csv``: the IPCC six
land categories with sub-types — forest by type, paddy / dry cropland, marsh, water, settlement,
other), through which class-keyed coefficient tables serve every scheme. Shipped: ``gbt21010``
(GB/T 21010-2017 三调 codes, with the 湿地 wetland regrouping), ``clcd`` (CLCD 1-9) and
``worldcover`` (ESA WorldCover 10-100). InVEST ``lucode`` tables need no scheme: they are keyed
by raster code. Land-cover rasters are
checked against it before any work: a code that the scheme does not know is an error listing
every unknown code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from gis.errors import InputError
from gis.resources import packaged
from gis.stream import unique_values

SCHEMES = {"gbt21010": "landuse_gbt21010.csv", "clcd": "landuse_clcd.csv",
           "worldcover": "landuse_worldcover.csv"}
CANONICAL = "canonical_classes.csv"
REQUIRED = ("code", "name_zh", "name_en", "ipcc_category")
IPCC_CATEGORIES = ("forest", "cropland", "grassland", "wetland", "settlement", "other")


@dataclass(frozen=True)
class ClassScheme:
    name: str
    source: str
    table: pd.DataFrame  # indexed by integer code

    def names(self, lang: str = "zh") -> dict[int, str]:
        col = "name_zh" if lang == "zh" else "name_en"
        return {int(k): str(v) for k, v in self.table[col].items()}

    @property
    def codes(self) -> np.ndarray:
        return self.table.index.to_numpy()


def load_scheme(name_or_path: str | Path) -> ClassScheme:
    """Load a shipped scheme by name (``gbt21010``) or a user CSV by path; schema-checked."""
    key = str(name_or_path)
    if key in SCHEMES:
        path = packaged("tables", SCHEMES[key])
    else:
        path = Path(key)
        if not path.exists():
            raise InputError("class scheme not found", source=path,
                             fix=f"give a CSV path or one of: {', '.join(SCHEMES)}")
    try:
        df = pd.read_csv(path, dtype={"code": "Int64"})
    except Exception as exc:
        raise InputError(f"cannot read class scheme ({exc})", source=path,
                         fix="give a UTF-8 CSV with a header row") from exc
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"class scheme lacks column(s) {', '.join(missing)}", source=path,
                         fix=f"the table needs columns {', '.join(REQUIRED)}")
    if df["code"].isna().any() or df["code"].duplicated().any():
        dup = df.loc[df["code"].duplicated(), "code"].tolist()
        raise InputError(f"class codes must be unique integers (duplicates: {dup})", source=path,
                         fix="give each class one integer code")
    bad = sorted(set(df["ipcc_category"]) - set(IPCC_CATEGORIES))
    if bad:
        raise InputError(f"unknown IPCC categories {bad}", source=path,
                         fix=f"use one of {', '.join(IPCC_CATEGORIES)}")
    if "canonical" in df.columns:
        known = set(canonical_classes().index)
        unknown = sorted(set(df["canonical"].dropna()) - known)
        if unknown:
            raise InputError(f"unknown canonical classes {unknown}", source=path,
                             fix=f"use classes of {CANONICAL}: {', '.join(sorted(known))}")
    df["code"] = df["code"].astype(int)
    return ClassScheme(key if key in SCHEMES else path.stem, str(path), df.set_index("code"))


def canonical_classes() -> pd.DataFrame:
    """The canonical classes (IPCC six categories with sub-types) every scheme maps onto."""
    return pd.read_csv(packaged("tables", CANONICAL)).set_index("class")


def present_codes(landcover: xr.DataArray) -> np.ndarray:
    """The class codes that occur in a land-cover raster (streamed; nodata excluded)."""
    return unique_values(landcover).astype(np.int64)


def check_codes(codes: np.ndarray, scheme: ClassScheme, *, source: object = None) -> None:
    """Error listing every code in ``codes`` that ``scheme`` does not define."""
    unknown = sorted(set(int(c) for c in codes) - set(scheme.codes.tolist()))
    if unknown:
        raise InputError(
            f"{len(unknown)} land-cover code(s) not in class scheme {scheme.name!r}: "
            f"{', '.join(map(str, unknown))}",
            source=source,
            fix=f"recode the raster, or add the codes to a copy of {scheme.source} and point "
            "`landcover.scheme` in the project file at it")


def codes_for(scheme: ClassScheme, classes: Iterable[str | int], *, what: str = "class"
              ) -> list[int]:
    """The scheme's codes of ``classes``: canonical class names (through the scheme's
    crosswalk) and raw integer codes of the scheme. Unknown names or codes, and a scheme
    without a ``canonical`` column when names are given, are :class:`InputError`."""
    wanted = list(classes)
    names = {c for c in wanted if isinstance(c, str)}
    if names and "canonical" not in scheme.table.columns:
        raise InputError(f"class scheme {scheme.name!r} has no 'canonical' column",
                         source=scheme.source,
                         fix="add the crosswalk to canonical classes, or list raw codes")
    known = set(canonical_classes().index)
    bad = sorted(names - known)
    if bad:
        raise InputError(f"unknown {what} class(es) {bad}",
                         fix=f"use canonical classes: {', '.join(sorted(known))}")
    raw = {int(c) for c in wanted if not isinstance(c, str)}
    unknown_raw = sorted(raw - set(scheme.codes.tolist()))
    if unknown_raw:
        raise InputError(f"code(s) {unknown_raw} not in class scheme {scheme.name!r}",
                         source=scheme.source)
    by_name = ([int(c) for c, v in scheme.table["canonical"].items() if v in names]
               if names else [])
    return sorted(set(by_name) | raw)


# Land-use change types for the transition map (codes of the change raster; 0 = unchanged).
CHANGE_TYPES: dict[int, tuple[str, str]] = {
    1: ("造林/林地增加", "Afforestation (to forest)"),
    2: ("毁林/林地减少", "Forest loss"),
    3: ("城镇扩张", "Urban growth (to settlement)"),
    4: ("湿地恢复", "Wetland restoration (to wetland)"),
    5: ("湿地减少", "Wetland loss"),
    6: ("耕地增加", "Cropland gain"),
    7: ("其他变化", "Other change"),
}
CHANGE_NODATA = 255


def change_type(before: xr.DataArray, after: xr.DataArray, scheme: ClassScheme) -> xr.DataArray:
    """Classify each cell's land-use change between two maps (lazy, uint8; see CHANGE_TYPES).

    Uses the scheme's IPCC categories: to forest = 1, from forest = 2, to settlement = 3,
    to wetland = 4, from wetland = 5, to cropland = 6, any other change = 7, no change = 0;
    nodata in either map = 255.
    """
    import dask.array as dsa
    import numpy as np

    from gis.grid import like
    from gis.stream import as_dask

    cat = scheme.table["ipcc_category"]
    names = ("forest", "cropland", "grassland", "wetland", "settlement", "other")
    lut = np.zeros(65536, dtype="uint8")  # category index + 1, 0 = unknown code
    for code, c in cat.items():
        if 0 <= int(code) < 65536:
            lut[int(code)] = names.index(c) + 1
    na, nb = before.rio.nodata, after.rio.nodata
    forest, crop, wet, sett = (names.index(n) + 1 for n in ("forest", "cropland", "wetland",
                                                               "settlement"))

    def _block(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ca, cb = lut[a.astype(np.int64) & 0xFFFF], lut[b.astype(np.int64) & 0xFFFF]
        out = np.where(a != b, 7, 0).astype("uint8")
        out[(ca != cb) & (cb == crop)] = 6
        out[(ca != cb) & (ca == wet)] = 5
        out[(ca != cb) & (cb == wet)] = 4
        out[(ca != cb) & (cb == sett)] = 3
        out[(ca != cb) & (ca == forest)] = 2
        out[(ca != cb) & (cb == forest)] = 1
        bad = np.zeros(a.shape, bool)
        if na is not None:
            bad |= a == na
        if nb is not None:
            bad |= b == nb
        out[bad] = CHANGE_NODATA
        return out

    data = dsa.map_blocks(_block, as_dask(before), as_dask(after).rechunk(as_dask(before).chunks),
                          dtype="uint8")
    return like(before, data, nodata=CHANGE_NODATA, units="class", kind="categorical",
                name="landuse_change_type")
