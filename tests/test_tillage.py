"""layers.tillage on small synthetic grids with hand-computed answers."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from gis.errors import CoefficientError, CRSMismatchError, InputError
from gis.grid import GridSpec, make_raster
from layers.tillage import (
    DecisionRules,
    ResidueModel,
    SeasonWindow,
    accuracy,
    calibrate,
    decide,
    evidence,
    grouped_percentiles,
    load_residue_model,
    min_composite,
    observe,
    parcel_evidence,
    status_class,
)

CRS = "EPSG:4551"
# 6 x 6 cells of 10 m, origin (500000, 4700060)
GRID = GridSpec.create(CRS, Affine(10, 0, 500_000, 0, -10, 4_700_060), (6, 6))


def _r(a: np.ndarray, *, nodata: float | None = float("nan")):
    return make_raster(np.asarray(a, dtype="float32"), GRID, nodata=nodata, units="reflectance",
                       kind="continuous", chunks=3)


def _m(a: np.ndarray):
    return make_raster(np.asarray(a, dtype=bool), GRID, nodata=None, units="bool",
                       kind="continuous", chunks=3)


def _bands(swir1: float | np.ndarray, swir2: float | np.ndarray, ndvi: float | np.ndarray = 0.1):
    """Bands with the given SWIR values and an NDVI (red 0.1, nir from NDVI)."""
    shape = GRID.shape
    red = np.full(shape, 0.1)
    ndvi = np.broadcast_to(np.asarray(ndvi, dtype=float), shape)
    nir = red * (1 + ndvi) / (1 - ndvi)
    return {"red": _r(red), "nir": _r(nir),
            "swir1": _r(np.broadcast_to(swir1, shape)), "swir2": _r(np.broadcast_to(swir2, shape))}


def _masks(cloud: np.ndarray | None = None, water: np.ndarray | None = None,
           nodata: np.ndarray | None = None):
    z = np.zeros(GRID.shape, bool)
    cloud = z if cloud is None else cloud
    water = z if water is None else water
    nodata = z if nodata is None else nodata
    return {"clear": _m(~cloud & ~nodata), "water": _m(water), "nodata": _m(nodata),
            "cloud": _m(cloud), "shadow": _m(z), "snow": _m(z)}


def _cells(r0: int, c0: int, r1: int, c1: int) -> shapely.Polygon:
    """Polygon covering rows r0..r1-1, cols c0..c1-1 of GRID."""
    x0, y0 = GRID.transform * (c0, r0)
    x1, y1 = GRID.transform * (c1, r1)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def test_season_window():
    w = SeasonWindow.of(2025)
    assert date(2025, 4, 1) in w and date(2025, 5, 31) in w
    assert date(2025, 6, 1) not in w and date(2025, 3, 31) not in w
    with pytest.raises(InputError, match="ends"):
        SeasonWindow.of(2025, "05-31", "04-01")


def test_grouped_percentiles_match_numpy():
    rng = np.random.default_rng(1)
    z = rng.integers(1, 40, 3000)
    v = rng.normal(size=3000).astype(np.float32)
    got = grouped_percentiles(z, v, 41, (10, 50, 90))
    for g in (1, 7, 39):
        assert got[g] == pytest.approx(np.percentile(v[z == g].astype(float), (10, 50, 90)))
    assert np.isnan(got[0]).all() and np.isnan(got[40]).all()


def test_calibrate_recovers_a_line_and_reports_fit():
    x = np.array([0.02, 0.05, 0.08, 0.11, 0.15, 0.2])
    m = calibrate(x, -10 + 400 * x)
    assert (m.a, m.b) == (pytest.approx(-10), pytest.approx(400))
    assert m.r2 == pytest.approx(1.0) and m.rmse_pct == pytest.approx(0, abs=1e-9)
    y = -10 + 400 * x + np.array([2, -1, 3, -2, 0.5, -1.5])
    m = calibrate(np.r_[x, np.nan], np.r_[y, 50])  # the NaN sample is dropped
    b, a = np.polyfit(x, y, 1)
    assert (m.a, m.b, m.n) == (pytest.approx(a), pytest.approx(b), 6)
    res = y - (a + b * x)
    assert m.rmse_pct == pytest.approx(np.sqrt(np.mean(res**2)))
    assert m.r2 == pytest.approx(1 - (res**2).sum() / ((y - y.mean()) ** 2).sum())
    loo = [y[i] - np.polyval(np.polyfit(np.delete(x, i), np.delete(y, i), 1), x[i])
           for i in range(6)]
    assert m.loo_rmse_pct == pytest.approx(np.sqrt(np.mean(np.square(loo))))
    with pytest.raises(InputError, match="only 2"):
        calibrate([0.1, 0.2], [30, 40])


def test_residue_model_table(tmp_path):
    m = load_residue_model()
    assert m.b > 0 and m.source
    assert m.residue_pct(m.ndti_for(30.0)) == pytest.approx(30.0)
    p = tmp_path / "r.csv"
    p.write_text("sensor,a,b,units,source,verified\nlandsat_c2_l2,1,2,pct,x,no\n")
    with pytest.raises(CoefficientError, match="landsat_c2_l2"):
        load_residue_model(p, sensor="sentinel2_l2a")


def test_min_composite_takes_the_lowest_usable_date():
    # date 1: NDTI (0.3-0.2)/0.5 = 0.2 everywhere, clouds on the top row
    # date 2: NDTI (0.27-0.23)/0.5 = 0.08 everywhere, but green (NDVI 0.6) in column 0
    # date 3: NDTI 0.0 (0.25/0.25), water in the last row, no data in column 5
    cloud = np.zeros((6, 6), bool)
    cloud[0] = True
    water = np.zeros((6, 6), bool)
    water[5] = True
    nodata = np.zeros((6, 6), bool)
    nodata[:, 5] = True
    ndvi2 = np.full((6, 6), 0.1)
    ndvi2[:, 0] = 0.6
    obs = [
        observe(date(2025, 5, 20), _bands(0.27, 0.23, ndvi2), _masks()),
        observe(date(2025, 4, 10), _bands(0.3, 0.2), _masks(cloud=cloud)),
        observe(date(2025, 5, 1), _bands(0.25, 0.25), _masks(water=water, nodata=nodata)),
    ]
    comp = min_composite(obs)
    assert comp.dates == (date(2025, 4, 10), date(2025, 5, 1), date(2025, 5, 20))
    got = comp.ndti_min.values
    n = comp.n_usable.values
    assert got[2, 2] == pytest.approx(0.0) and n[2, 2] == 3
    assert got[0, 2] == pytest.approx(0.0) and n[0, 2] == 2          # cloudy on date 1
    assert got[5, 2] == pytest.approx(0.08) and n[5, 2] == 2         # water on date 3
    assert got[5, 0] == pytest.approx(0.2) and n[5, 0] == 1          # green on 2, water on 3
    assert np.isnan(got[0, 0]) or got[0, 0] == pytest.approx(0.0)
    assert got[0, 0] == pytest.approx(0.0)                           # only date 3 usable
    assert got[2, 5] == pytest.approx(0.08)                          # no data on date 3
    bits = comp.usable_bits.values
    assert bits[2, 2] == 0b111 and bits[5, 0] == 0b001 and bits[0, 5] == 0b100
    assert comp.covered.values.all()
    assert comp.ndti_min.rio.crs is not None
    assert GridSpec.of(comp.ndti_min) == GRID


def _three_dates():
    # date 1 (0.2) everywhere; date 2 (0.05) only in the right half; date 3 cloudy in the top 3 rows
    right = np.zeros((6, 6), bool)
    right[:, :3] = True  # "nodata" on the left half
    cloud3 = np.zeros((6, 6), bool)
    cloud3[:3] = True
    all_cloud = np.ones((6, 6), bool)
    return [
        observe(date(2025, 4, 15), _bands(0.3, 0.2), _masks()),
        observe(date(2025, 5, 5), _bands(0.315, 0.285), _masks(nodata=right)),
        observe(date(2025, 5, 25), _bands(0.3, 0.3), _masks(cloud=all_cloud)),
    ][:3], cloud3


def test_parcel_evidence_counts_percentiles_and_dates():
    obs, _ = _three_dates()
    comp = min_composite(obs)
    parcels = gpd.GeoDataFrame(
        {"parcel_id": ["A", "B", "C", "D", "E"]},
        geometry=[_cells(0, 0, 2, 3),          # A: 6 px, left half: only date 1 -> 0.2
                  _cells(0, 3, 4, 6),          # B: 12 px, right half: min(0.2, 0.05) = 0.05
                  _cells(4, 1, 6, 5),          # C: 8 px, 4 left (0.2) + 4 right (0.05)
                  shapely.box(500_000.1, 4_700_059.7, 500_000.3, 4_700_059.9),  # D: no pixel centre
                  shapely.box(600_000, 0, 600_010, 10)],  # E: far outside the grid
        crs=CRS)
    seen: list = []
    ev = parcel_evidence(comp, parcels, chunk=4, on_block=lambda w, a: seen.append(w))
    assert len(seen) == 4  # 6x6 in 4x4 chunks
    assert ev["n_pixels"].tolist() == [6, 12, 8, 0, 0]
    assert ev["n_clear"].tolist() == [6, 12, 8, 0, 0]
    assert ev.loc[0, "ndti_median"] == pytest.approx(0.2)
    assert ev.loc[1, "ndti_median"] == pytest.approx(0.05)
    # C: four values 0.05 and four 0.2 -> median 0.125; p25 at position 1.75 -> 0.05
    assert ev.loc[2, "ndti_median"] == pytest.approx(0.125)
    assert ev.loc[2, "ndti_p25"] == pytest.approx(0.05)
    assert ev.loc[2, "ndti_p75"] == pytest.approx(0.2)
    assert ev.loc[0, "dates_used"] == "2025-04-15"
    assert ev.loc[1, "dates_used"] == "2025-04-15;2025-05-05"
    assert ev.loc[1, "n_dates_used"] == 2
    assert ev.loc[3, "dates_used"] == "" and np.isnan(ev.loc[3, "ndti_median"])


def test_parcel_evidence_refuses_another_crs():
    obs, _ = _three_dates()
    p = gpd.GeoDataFrame(geometry=[_cells(0, 0, 2, 2)], crs=CRS).to_crs("EPSG:32651")
    with pytest.raises(CRSMismatchError, match="reproject"):
        parcel_evidence(min_composite(obs), p)


def test_decide_statuses_and_reasons():
    # residue = 0 + 200 * NDTI: 0.2 -> 40 %, 0.05 -> 10 %, 0.125 -> 25 %
    model = ResidueModel(0.0, 200.0, "test")
    cloud = np.zeros((6, 6), bool)
    cloud[:, 4:] = True  # columns 4-5 never clear
    obs = [observe(date(2025, 5, 1), _bands(0.3, 0.2), _masks(cloud=cloud)),
           observe(date(2025, 5, 11), _bands(0.315, 0.285), _masks(cloud=cloud))]
    comp = min_composite(obs)
    parcels = gpd.GeoDataFrame(geometry=[
        _cells(0, 0, 3, 2),        # 6 px, all clear: min NDTI 0.05 -> 10 % -> not confirmed
        _cells(3, 0, 6, 4),        # 12 px clear -> not confirmed as well
        _cells(0, 3, 6, 6),        # 18 px, only column 3 clear: 6 of 18 -> undetermined
        _cells(0, 2, 1, 3),        # 1 px -> too small
        shapely.Polygon(),         # empty
    ], crs=CRS)
    ev = parcel_evidence(comp, parcels)
    area = parcels.area.to_numpy()
    d = decide(ev, model, DecisionRules(min_pixels=4, min_clear_pixels=4, min_observed_share=0.5),
               area_m2=area)
    assert d["status"].tolist() == ["not_confirmed", "not_confirmed", "undetermined",
                                    "undetermined", "undetermined"]
    assert d.loc[0, "residue_pct_median"] == pytest.approx(10.0)
    assert d.loc[0, "sti_median"] == pytest.approx(0.315 / 0.285)  # SWIR1 / SWIR2 of that date
    assert "< 30 %" in d.loc[0, "reason"]
    assert "6 of 18" in d.loc[2, "reason"] and "33 %" in d.loc[2, "reason"]
    assert "1 pixels < minimum 4" in d.loc[3, "reason"]
    assert d.loc[4, "reason"] == "zero-area parcel"
    # a higher NDTI makes the same parcels confirmed
    d2 = decide(ev, ResidueModel(25.0, 200.0, "test"), area_m2=area)
    assert d2.loc[0, "status"] == "confirmed" and ">= 30 %" in d2.loc[0, "reason"]
    assert status_class(d2["status"]).tolist()[:3] == ["conservation", "conservation", None]


def test_decide_negative_slope_keeps_percentiles_ordered():
    obs, _ = _three_dates()
    comp = min_composite(obs)
    parcels = gpd.GeoDataFrame(geometry=[_cells(4, 1, 6, 5)], crs=CRS)
    d = decide(parcel_evidence(comp, parcels), ResidueModel(50.0, -100.0, "test"))
    assert d.loc[0, "residue_pct_p10"] <= d.loc[0, "residue_pct_median"] <= \
        d.loc[0, "residue_pct_p90"]


def test_no_imagery_is_undetermined():
    nodata = np.ones((6, 6), bool)
    comp = min_composite([observe(date(2025, 5, 1), _bands(0.3, 0.2), _masks(nodata=nodata))])
    parcels = gpd.GeoDataFrame(geometry=[_cells(0, 0, 3, 3)], crs=CRS)
    d = decide(parcel_evidence(comp, parcels), ResidueModel(0, 200, "t"))
    assert d.loc[0, "status"] == "undetermined"
    assert d.loc[0, "reason"] == "no imagery over the parcel in the window"


def test_evidence_at_points_in_the_same_pass():
    obs, _ = _three_dates()
    comp = min_composite(obs)
    x0, y0 = GRID.transform * (0.5, 0.5)
    x1, y1 = GRID.transform * (4.5, 2.5)
    pts = gpd.GeoDataFrame(geometry=[shapely.Point(x0, y0), shapely.Point(x1, y1),
                                     shapely.Point(0, 0)], crs=CRS)
    parcels = gpd.GeoDataFrame(geometry=[_cells(0, 0, 2, 3)], crs=CRS)
    (ev,), v = evidence(comp, [parcels], points=pts, chunk=4)
    assert v[0] == pytest.approx(0.2) and v[1] == pytest.approx(0.05) and np.isnan(v[2])
    assert ev.loc[0, "n_pixels"] == 6


def test_accuracy_hand_computed():
    obs = ["conservation"] * 50 + ["conventional"] * 50
    pred = ["conservation"] * 45 + ["conventional"] * 5 + ["conservation"] * 10 + \
        ["conventional"] * 40
    a = accuracy(obs, pred)
    assert a["confusion_matrix"] == [[45, 5], [10, 40]]
    assert a["overall_accuracy"] == pytest.approx(0.85)
    # pe = (55 * 50 + 45 * 50) / 100^2 = 0.5 -> kappa = (0.85 - 0.5) / 0.5
    assert a["kappa"] == pytest.approx(0.7)
    assert a["precision"]["conservation"] == pytest.approx(45 / 55)
    assert a["recall"]["conservation"] == pytest.approx(0.9)
    assert a["recall"]["conventional"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="maybe"):
        accuracy(["maybe"], ["conservation"])


def test_normalize_practice_words_and_unknown_values():
    from layers.tillage import normalize_practice

    got = normalize_practice(["Conservation", "保护性耕作", "常规耕作", "no-till", None, " ",
                              "翻耕"])
    assert got.tolist() == ["conservation", "conservation", "conventional", "conservation", None,
                            None, "conventional"]
    with pytest.raises(InputError, match=r"'maybe' \(2\)"):
        normalize_practice(["maybe", "maybe", "conservation"], source="p.gpkg")
    assert normalize_practice(["ZT"], extra={"zt": "conservation"}).tolist() == ["conservation"]
