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
