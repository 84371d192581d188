"""layers.spectral: quality masks (SCL, QA_PIXEL, pre-collection BQA) and spectral indices.

Hand-made codes check the decoding tables; the real Landsat 8 clip (a cloudy scene) checks that
the BQA cloud mask flags bright pixels, and the real Sentinel-2 L1C clip checks NDTI against the
figures measured on the full subset (tests/data/*/SOURCE.md).
"""

from __future__ import annotations

from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import rasterio

from gis.errors import GridMismatchError, InputError
from gis.grid import GridSpec, make_raster
from gis.imagery import analysis_grid, load_bands, read_scenes
from layers.spectral import MASKS, ndti, ndvi, normalized_difference, quality_masks, sti

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def g():
    return GridSpec.from_bounds((300_000, 4_800_000, 300_040, 4_800_010), 10, "EPSG:32651")


def qa_raster(values, grid, dtype="uint16", nodata=None):
    a = np.array(values, dtype=dtype).reshape(grid.shape)
    return make_raster(a, grid, nodata=nodata, units="class", kind="categorical", name="qa",
                       chunks=2, attrs={"source": "qa.tif"})


def refl(values, grid):
    a = np.array(values, dtype="float32").reshape(grid.shape)
    return make_raster(a, grid, nodata=np.nan, units="reflectance", kind="continuous",
                       chunks=2)


# --- quality masks -------------------------------------------------------------------------------

SCL_TABLE = {  # code: (nodata, cloud, shadow, snow, water, clear)
    0: (1, 0, 0, 0, 0, 0), 1: (1, 0, 0, 0, 0, 0), 2: (0, 0, 0, 0, 0, 1), 3: (0, 0, 1, 0, 0, 0),
    4: (0, 0, 0, 0, 0, 1), 5: (0, 0, 0, 0, 0, 1), 6: (0, 0, 0, 0, 1, 1), 7: (0, 0, 0, 0, 0, 1),
    8: (0, 1, 0, 0, 0, 0), 9: (0, 1, 0, 0, 0, 0), 10: (0, 1, 0, 0, 0, 0), 11: (0, 0, 0, 1, 0, 0),
}


def test_scl_codes_to_masks():
    grid = GridSpec.from_bounds((0, 0, 120, 10), 10, "EPSG:32651")
    m = quality_masks(qa_raster(list(SCL_TABLE), grid, "uint8", nodata=0), "sentinel2_l2a")
    assert tuple(m) == MASKS
    assert all(isinstance(v.data, dsa.Array) for v in m.values())  # lazy
    for i, (code, row) in enumerate(SCL_TABLE.items()):
        got = tuple(int(m[k].values[0, i]) for k in MASKS)
        assert got == row, f"SCL {code}: {got} != {row}"
    assert m["cloud"].rio.crs.to_epsg() == 32651 and m["cloud"].dtype == bool
    assert m["cloud"].rio.transform() == grid.transform
    assert m["cloud"].attrs["source"] == "qa.tif" and m["cloud"].attrs["kind"] == "categorical"


def test_qa_pixel_bits():
    # Landsat C2 QA_PIXEL values, bit by bit:
    #   1 = fill; 21824 = 0b0101_0101_0100_0000 clear land (bit 6 "clear", low confidences);
    #   21952 = 21824 + 128 (bit 7 water); 22280 = bit 3 cloud (+ bits 8-9 high cloud conf)
    #   21826 = bit 1 dilated cloud; 54596 = bit 2 cirrus (+ bits 14-15 high cirrus conf)
    #   23888 = bit 4 cloud shadow; 30048 = bit 5 snow
    values = [1, 21824, 21952, 22280, 21826, 54596, 23888, 30048]
    grid = GridSpec.from_bounds((0, 0, 80, 10), 10, "EPSG:32651")
    m = quality_masks(qa_raster(values, grid), "landsat_c2_l2")
    v = {k: m[k].values[0].astype(int).tolist() for k in MASKS}
    assert v["nodata"] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert v["water"] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert v["cloud"] == [0, 0, 0, 1, 1, 1, 0, 0]
    assert v["shadow"] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert v["snow"] == [0, 0, 0, 0, 0, 0, 0, 1]
    assert v["clear"] == [0, 1, 1, 0, 0, 0, 0, 0]


def test_bqa_bits():
    # pre-collection L8 BQA: 2-bit confidences, flagged only when high (3)
    values = [
        1,                     # designated fill
        0b0101_0000_0000_0000,  # cloud low (14-15 = 1), cirrus low (12-13 = 1): clear
        0b1001_0000_0000_0000,  # cloud medium: still clear
        0b1101_0000_0000_0000,  # cloud high -> cloud
        0b0111_0000_0000_0000,  # cirrus high -> cloud
        0b0101_1100_0000_0000,  # snow/ice high (10-11 = 3) -> snow
        0b0101_0000_0011_0000,  # water high (4-5 = 3) -> water (stays clear)
        0b0101_0000_0010_0000,  # water medium: not water
    ]
    grid = GridSpec.from_bounds((0, 0, 80, 10), 10, "EPSG:32651")
    m = quality_masks(qa_raster(values, grid, nodata=1), "landsat_l1_bqa")
    v = {k: m[k].values[0].astype(int).tolist() for k in MASKS}
    assert v["nodata"] == [1, 0, 0, 0, 0, 0, 0, 0]
    assert v["cloud"] == [0, 0, 0, 1, 1, 0, 0, 0]
    assert v["snow"] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert v["water"] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert v["shadow"] == [0] * 8
    assert v["clear"] == [0, 1, 1, 0, 0, 0, 1, 1]


def test_masks_refuse_unknown_sensor_and_float_qa(g):
    with pytest.raises(InputError, match="sentinel2_l1c"):
        quality_masks(qa_raster([4] * 4, g), "sentinel2_l1c")
    with pytest.raises(InputError, match="integers"):
        quality_masks(refl([4.0] * 4, g), "sentinel2_l2a")


# --- indices -------------------------------------------------------------------------------------

def test_normalized_difference_and_indices(g):
    a = refl([0.3, 0.0, np.nan, 0.2], g)
    b = refl([0.1, 0.0, 0.1, 0.2], g)
    nd = normalized_difference(a, b)
    assert isinstance(nd.data, dsa.Array)
    v = nd.values[0]
    assert v[0] == pytest.approx(0.5) and np.isnan(v[1]) and np.isnan(v[2]) and v[3] == 0
    assert nd.attrs["units"] == "index" and nd.attrs["kind"] == "continuous"
    assert nd.rio.crs == a.rio.crs and nd.rio.transform() == g.transform
    assert nd.dtype == np.float32 and np.isnan(nd.rio.nodata)
    assert ndvi(b, a).values[0, 0] == pytest.approx(0.5)  # (nir - red) / (nir + red)
    swir1, swir2 = refl([0.30, 0.25, 0.2, 0.1], g), refl([0.20, 0.25, 0.0, np.nan], g)
    assert ndti(swir1, swir2).values[0, 0] == pytest.approx(0.2)
    s = sti(swir1, swir2).values[0]
    assert s[0] == pytest.approx(1.5) and s[1] == pytest.approx(1.0)
    assert np.isnan(s[2]) and np.isnan(s[3])
    other = GridSpec.from_bounds((300_010, 4_800_000, 300_050, 4_800_010), 10, "EPSG:32651")
    with pytest.raises(GridMismatchError):
        ndti(swir1, refl([0.1] * 4, other))


# --- real clips ----------------------------------------------------------------------------------

def test_real_landsat8_bqa_cloud_mask():
    """(b) the cloudy 2015-08-04 Landsat 8 clip: flagged clouds are bright, cirrus flags sit on
    real cirrus, and the flagged fractions are the ones measured (and stated) here."""
    (scene,) = read_scenes(DATA / "landsat8_clip" / "items.json")
    with rasterio.open(DATA / "landsat8_clip" / "l8_B2.tif") as src:
        grid = GridSpec.create(src.crs, src.transform, src.shape)
    b = load_bands(scene, grid, ("blue", "nir", "qa"))
    m = quality_masks(b["qa"], scene.sensor)
    q = b["qa"].values
    blue, nir = b["blue"].values, b["nir"].values
    with rasterio.open(DATA / "landsat8_clip" / "l8_B9.tif") as src:  # 1.37 um cirrus band
        cirrus_toa = src.read(1) * 2e-5 - 0.1
    cloud, clear = m["cloud"].values, m["clear"].values
    cloud_high = ((q >> 14) & 3) == 3
    cirrus_only = (((q >> 12) & 3) == 3) & ~cloud_high
    land = clear & (nir > 0.15)  # clear vegetated land (no water in this clip)
    # measured fractions of the 200 x 200 clip: cloud mask 51.9 % (cirrus high 51.3 %, cloud
    # high 13.1 %), clear land 20.8 %; no fill, snow, water (BQA water confidence never reaches
    # high here) or shadow (not populated in pre-collection BQA)
    assert cloud.mean() == pytest.approx(0.519, abs=0.005)
    assert cloud_high.mean() == pytest.approx(0.131, abs=0.005)
    assert land.mean() == pytest.approx(0.208, abs=0.005)
    assert not (m["nodata"].values | m["snow"].values | m["water"].values).any()
    assert (cloud_high <= cloud).all()
    # high-confidence clouds: median blue TOA 0.153 vs 0.0745 on clear land (2.06x); even their
    # 25th percentile (0.134) is above clear land's 95th (0.105)
    med_cloud, med_land = np.median(blue[cloud_high]), np.median(blue[land])
    assert med_cloud / med_land > 1.8
    assert np.percentile(blue[cloud_high], 25) > np.percentile(blue[land], 95)
    # the whole cloud mask (mostly thin cirrus): median blue 0.109, 1.46x clear land; the pixels
    # flagged for cirrus alone are bright in the 1.37 um cirrus band (0.0229 vs 0.0078, 2.9x)
    assert np.median(blue[cloud]) / med_land > 1.3
    assert np.median(cirrus_toa[cirrus_only]) > 2 * np.median(cirrus_toa[land])


def test_real_s2_l1c_ndti_percentiles():
    """(c) NDTI over land (B8A > 0.15) on the 2016-01-12 winter-cropland clip.

    SOURCE.md of the full 967 x 973 subset gives 5/50/95th percentiles 0.14 / 0.28 / 0.40 over
    land pixels (38 % of it). The 250 x 250 clip holds 55.3 % land and measures
    0.135 / 0.288 / 0.401. Tolerance 0.02: across 250 x 250 windows of the subset with more than
    half land the percentiles move by about +-0.02 (5th: 0.14-0.18, 50th: 0.26-0.31, 95th:
    0.39-0.41), so 0.02 accepts this clip's sampling and still fails for a wrong radiometry rule
    (the baseline >= 04.00 offset, -0.1 on both bands, gives 5/50/95th -2.36 / 0.35 / 2.74).
    """
    (scene,) = read_scenes(DATA / "s2_clip" / "item.json")
    grid = analysis_grid([scene], (443_720, 4_172_460, 448_720, 4_177_460))
    b = load_bands(scene, grid, ("nir", "swir1", "swir2"))
    idx = ndti(b["swir1"], b["swir2"])
    assert isinstance(idx.data, dsa.Array) and idx.rio.crs.to_epsg() == 32618
    nd, nir = idx.values, b["nir"].values
    land = nir > 0.15
    assert land.sum() / np.isfinite(nir).sum() == pytest.approx(0.553, abs=0.002)
    p5, p50, p95 = np.percentile(nd[land], [5, 50, 95])
    assert (p5, p50, p95) == pytest.approx((0.14, 0.28, 0.40), abs=0.02)
    assert (p5, p50, p95) == pytest.approx((0.135, 0.288, 0.401), abs=0.002)  # this clip
