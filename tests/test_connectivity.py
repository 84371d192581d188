"""Tests of layers.connectivity: IIC, PC, dPC and its fractions on hand-computed 1-3 patch
landscapes (threshold 2000 m, p = 0.5 at the threshold)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gis.errors import InputError
from layers.connectivity import core_importance, distance_matrix, top_cores


def test_single_patch_pc_is_squared_area_share():
    table, land = core_importance([30.0], [[0.0]], landscape_area=100.0)
    assert land["PC"] == pytest.approx((30 / 100) ** 2)
    assert land["IIC"] == pytest.approx((30 / 100) ** 2)
    assert table.loc[0, "dPC"] == pytest.approx(100) and table.loc[0, "dPC_intra"] == 100


def test_two_patches_at_the_threshold():
    # p12 = 0.5; PC numerator = 1 + 1 + 2 x 0.5 = 3; removing one leaves 1 -> dPC = 200/3
    d = [[0, 2000], [2000, 0]]
    table, land = core_importance([1.0, 1.0], d)
    assert land["PC"] == pytest.approx(3 / 4)  # A_L = 2
    row = table.set_index("core").loc[1]
    assert row.dPC == pytest.approx(200 / 3)
    assert row.dPC_intra == pytest.approx(100 / 3) and row.dPC_flux == pytest.approx(100 / 3)
    assert row.dPC_connector == pytest.approx(0, abs=1e-9)
    # IIC: linked (d <= threshold), nl = 1 -> 1 + 1 + 2 x 1/2 = 3 as well
    assert land["IIC"] == pytest.approx(3 / 4)


def test_stepping_stone_has_a_connector_fraction():
    # 1 -- 2 -- 3 in a line, 2000 m apart; 1-3 directly 10,000 m (p = 0.5^5), via 2 p* = 0.25
    d = np.array([[0, 2000, 10000], [2000, 0, 2000], [10000, 2000, 0]], float)
    table, land = core_importance(pd.Series([1.0, 1.0, 1.0], index=["a", "b", "c"]), d)
    num = 3 + 2 * (0.5 + 0.5 + 0.25)  # 5.5
    assert land["PC"] == pytest.approx(num / 9)
    t = table.set_index("core")
    b = t.loc["b"]
    assert b["rank"] == 1
    assert b.dPC == pytest.approx(100 * (num - (2 + 2 * 0.5**5)) / num)  # 62.5
    assert b.dPC_intra == pytest.approx(100 / num)
    assert b.dPC_flux == pytest.approx(100 * 2 * (0.5 + 0.5) / num)
    assert b.dPC_connector == pytest.approx(100 * 2 * (0.25 - 0.5**5) / num)
    assert b.dPC_connector > 0 and t.loc["a", "dPC_connector"] == pytest.approx(0, abs=1e-9)
    for _, r in t.iterrows():
        assert r.dPC_intra + r.dPC_flux + r.dPC_connector == pytest.approx(r.dPC)
        assert r.dIIC_intra + r.dIIC_flux + r.dIIC_connector == pytest.approx(r.dIIC)
    # IIC: links 1-2, 2-3 (<= 2000), nl13 = 2 -> 3 + 2 (1/2 + 1/2 + 1/3); without b: 2
    iic = 3 + 2 * (0.5 + 0.5 + 1 / 3)
    assert land["IIC"] == pytest.approx(iic / 9)
    assert b.dIIC == pytest.approx(100 * (iic - 2) / iic)


def test_touching_and_unreachable_patches():
    # distance 0 (touching) -> p = 1; inf / NaN -> no connection
    d = [[0, 0, np.inf], [0, 0, np.nan], [np.inf, np.nan, 0]]
    _, land = core_importance([1.0, 2.0, 3.0], d)
    assert land["PC"] * 36 == pytest.approx(1 + 4 + 9 + 2 * 2)


def test_top_cores_and_min_value():
    d = np.array([[0, 2000, 10000], [2000, 0, 2000], [10000, 2000, 0]], float)
    table, _ = core_importance([1.0, 1.0, 5.0], d)
    top = top_cores(table, 2)
    assert top.core.tolist() == [3, 2]
    assert len(top_cores(table, 5, min_value=1e9)) == 0
    with pytest.raises(InputError):
        top_cores(table, by="nope")


def test_distance_matrix_from_links():
    links = pd.DataFrame({"core_a": [1, 1], "core_b": [2, 3], "cost": [5.0, np.nan]})
    m = distance_matrix(links, [1, 2, 3], column="cost")
    assert m.loc[2, 1] == 5 and np.isinf(m.loc[1, 3]) and m.loc[3, 3] == 0


def test_bad_inputs():
    with pytest.raises(InputError, match="expected"):
        core_importance([1, 2], [[0]])
    with pytest.raises(InputError, match="threshold"):
        core_importance([1], [[0]], threshold=0)
    with pytest.raises(InputError, match="probability"):
        core_importance([1], [[0]], probability=1.0)
    with pytest.raises(InputError, match=">= 0"):
        core_importance([1, 1], [[0, -1], [-1, 0]])
