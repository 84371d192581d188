"""MSPA (layers.mspa): hand-made grids with hand-computed class bytes, the GuidosToolbox
example (when ../shared/mspa_reference is present) and the file round trip.

Grids are drawn with ``.`` background (1), ``#`` foreground (2), ``x`` missing (0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from gis.errors import InputError, SinkmapError
from gis.grid import GridSpec
from layers.mspa import CLASS_BYTES, mspa, mspa_file, mspa_statistics

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "mspa_reference" \
    / "gwb_example.tif"


def grid(text: str) -> np.ndarray:
    rows = [r.strip() for r in text.strip().splitlines()]
    code = {".": 1, "#": 2, "x": 0}
    return np.array([[code[c] for c in r] for r in rows], dtype=np.uint8)


def at(out: np.ndarray, cells) -> list[int]:
    return [int(out[r, c]) for r, c in cells]


def test_square_core_with_edge_ring():
    a = np.ones((9, 9), np.uint8)
    a[2:7, 2:7] = 2
    o = mspa(a)
    assert (o[3:6, 3:6] == 17).all()
    ring = np.zeros_like(a, bool)
    ring[2:7, 2:7] = True
    ring[3:6, 3:6] = False
    assert (o[ring] == 3).all()
    assert (o[a == 1] == 0).all()  # background outside: no opening


def test_islet_and_object_count():
    a = np.ones((8, 12), np.uint8)
    a[1:3, 1:3] = 2  # 2x2: no pixel free of background in its 3x3 -> islet
    a[5, 8] = 2
    o = mspa(a)
    assert (o[a == 2] == 9).all()
    s = mspa_statistics(o)
    assert s["classes"]["islet"] == {"pixels": 5, "percent": 100.0, "objects": 2}


def test_perforation_around_hole_and_intext():
    a = np.ones((13, 13), np.uint8)
    a[2:11, 2:11] = 2
    a[6, 6] = 1  # one-pixel hole
    o = mspa(a)
    assert o[6, 6] == 100  # core-opening
    around = [(5, 5), (5, 6), (5, 7), (6, 5), (6, 7), (7, 5), (7, 6), (7, 7)]
    assert at(o, around) == [105] * 8  # perforation, internal (it lies in the core hole)
    assert o[4, 4] == 17 and o[2, 2] == 3
    o0 = mspa(a, intext=0)
    assert o0[6, 6] == 0 and at(o0, around) == [5] * 8
    s = mspa_statistics(o)
    assert s["core_opening"] == {"pixels": 1, "percent": pytest.approx(100 / 169, abs=0.01),
                                 "objects": 1}  # percent of data (foreground + background)
    assert s["porosity"] == pytest.approx(100 / 81, abs=0.01)


BRIDGE = """
...............
.#####...#####.
.#####...#####.
.#############.
.#####...#####.
.#####...#####.
...............
"""


def test_bridge_between_two_cores_and_transition():
    a = grid(BRIDGE)
    o = mspa(a)
    assert at(o, [(3, 6), (3, 7), (3, 8)]) == [33, 33, 33]
    assert at(o, [(3, 5), (3, 9)]) == [35, 35]  # bridge in edge (transition pixels)
    assert at(o, [(2, 5), (4, 5), (1, 1)]) == [3, 3, 3]
    assert (o[2:5, 2:5] == 17).all() and (o[2:5, 10:13] == 17).all()
    o0 = mspa(a, transition=0)
    assert at(o0, [(3, 5), (3, 9)]) == [3, 3]  # shown as the edge they cross
    assert at(o0, [(3, 6), (3, 7), (3, 8)]) == [33, 33, 33]
    # transition pixels count toward edge in the statistics either way
    s1, s0 = mspa_statistics(o), mspa_statistics(o0)
    assert s1["classes"] == s0["classes"]
    assert s1["classes"]["bridge"]["objects"] == 1
    assert s1["classes"]["core"]["objects"] == 2


LOOP = """
.........
..#####..
..#...#..
..#####..
..#####..
..#####..
..#####..
..#####..
.........
"""


def test_loop_back_to_the_same_core():
    a = grid(LOOP)
    o = mspa(a)
    # core: rows 4-6, cols 3-5; the ring row 3 is edge; the arch rows 1-2 returns to it.
    # Loop/bridge are the one-pixel skeleton of the connector, the rest of the connector is
    # branch (GuidosToolbox), so this test's former answer (the whole arch loop) was wrong:
    # the arch's corner pixels (1, 2) and (1, 6) are simple (their two neighbours touch
    # diagonally), so the skeleton cuts the corners and they are branch.
    assert (o[4:7, 3:6] == 17).all()
    assert at(o, [(1, 3), (1, 4), (1, 5), (2, 2), (2, 6)]) == [65] * 5
    assert at(o, [(1, 2), (1, 6)]) == [1, 1]
    # loop in edge: where a leg lands on the ring's corner the order-independent thinning
    # keeps both (3, 2) and (3, 3) (two 4-adjacent simple pixels with foreground on both
    # sides of the pair are not independent, so neither is deleted); (3, 4) is plain edge
    assert at(o, [(3, 2), (3, 3), (3, 5), (3, 6)]) == [67] * 4
    assert o[3, 4] == 3
    assert o[2, 4] == 220  # background enclosed by foreground, not by core: border-opening
    assert mspa(a, intext=0)[2, 4] == 0


# Hand-drawn connectors (rows 0-11, cols 0-24): core A (block rows 6-10, cols 2-10) with an
# arch on top (legs in cols 4 and 8, bar in row 3), core B (block rows 6-10, cols 16-20), a
# one-pixel line A-B in row 8 with a two-pixel spur up at col 13, and a dead end off B.
CONNECTORS = """
.........................
.........................
.........................
....#####................
....#...#................
....#...#................
..#########..#..#####....
..#########..#..#####....
..######################.
..#########.....#####....
..#########.....#####....
.........................
"""


def test_loop_bridge_and_branch_by_hand():
    """Derived by hand from the anchored order-independent thinning (Ranwez & Soille 2002)
    of opening + connectors with the core as anchor, no end points kept.

    Round 1 deletes every simple pixel that is independent of its simple neighbours: all the
    ring pixels except those a connector lands on (a ring pixel under a connector has no
    4-adjacent background, so it is not simple), the arch corners (3, 4) and (3, 8), the
    tips (8, 23) and (6, 13), and the line pixel (8, 13) under the spur: its three
    neighbours (8, 12), (7, 13), (8, 14) touch each other, so it is simple, and none of its
    neighbours is simple, so it is independent. The line now runs through (7, 13). The dead
    end off B then shrinks a pixel a round ((8, 22), (8, 21)), and once it is gone its ring
    pixel (8, 20) is simple too. What stays outside core: the arch (1 component, only core A)
    -> loop; the line A-B (1 component, flooded from A and from B) -> bridge; the ring pixels
    under them -> loop/bridge in edge. Everything else of the connectors is branch,
    whether it hung off an edge (8, 21..23), the loop (arch corners) or the bridge (spur).
    """
    a = grid(CONNECTORS)
    o = mspa(a)
    assert (o[7:10, 3:10] == 17).all() and (o[7:10, 17:20] == 17).all()
    loop = [(3, 5), (3, 6), (3, 7), (4, 4), (5, 4), (4, 8), (5, 8)]
    assert at(o, loop) == [65] * 7
    assert at(o, [(6, 4), (6, 8)]) == [67, 67]  # loop in edge
    bridge = [(8, 11), (8, 12), (7, 13), (8, 14), (8, 15)]
    assert at(o, bridge) == [33] * 5
    assert at(o, [(8, 10), (8, 16)]) == [35, 35]  # bridge in edge
    branch = [(3, 4), (3, 8), (8, 13), (6, 13), (8, 21), (8, 22), (8, 23)]
    assert at(o, branch) == [1] * 7
    assert at(o, [(8, 20), (6, 5), (6, 6), (10, 16)]) == [3] * 4  # plain edge
    assert (o[4:6, 5:8] == 220).all()  # enclosed by the arch, not by core
    c = mspa_statistics(o)["classes"]
    assert (c["loop"]["pixels"], c["loop"]["objects"]) == (7, 1)
    assert (c["bridge"]["pixels"], c["bridge"]["objects"]) == (5, 1)
    assert (c["branch"]["pixels"], c["branch"]["objects"]) == (7, 5)
    assert (c["core"]["objects"], c["islet"]["pixels"]) == (2, 0)
    # transition 0 writes the ring pixels under loop/bridge as edge; same statistics
    o0 = mspa(a, transition=0)
    assert at(o0, [(6, 4), (8, 10)]) == [3, 3] and mspa_statistics(o0)["classes"] == c


def test_thinning_is_order_independent():
    """The anchored thinning gives the same skeleton for a flipped or transposed image."""
    from scipy import ndimage as ndi

    from layers.mspa import _oi_thin

    rng = np.random.default_rng(3)
    for conn in (8, 4):
        x = ndi.gaussian_filter(rng.random((60, 70)), 1.5) > 0.5
        st = np.where(x, 1, 0).astype(np.uint8)
        st[ndi.binary_erosion(x, np.ones((5, 5)))] = 2
        st[:2] = st[-2:] = 0
        st[:, :2] = st[:, -2:] = 0
        ref = st.copy()
        _oi_thin(ref.ravel(), ref.shape[1], conn)
        assert (ref == 1).sum() > 50
        for f, inv in ((np.fliplr, np.fliplr), (np.flipud, np.flipud),
                       (np.transpose, np.transpose)):
            s = np.ascontiguousarray(f(st))
            _oi_thin(s.ravel(), s.shape[1], conn)
            assert (inv(s) == ref).all()


BRANCH = """
..........
.#####....
.#####....
.########.
.#####....
.#####....
..........
"""


def test_branch_dead_end():
    o = mspa(grid(BRANCH))
    assert at(o, [(3, 6), (3, 7), (3, 8)]) == [1, 1, 1]
    assert o[3, 5] == 3  # a branch has no transition pixel
    assert (o[2:5, 2:5] == 17).all()


def test_missing_pixels_and_border_make_no_edge():
    a = np.ones((6, 9), np.uint8)
    a[:, :2] = 0
    a[1:5, 2:6] = 2  # 4x4 foreground touching missing on the left
    o = mspa(a)
    # column 2 touches missing only: its rows 2-3 are core; the background side is edge
    assert at(o, [(2, 2), (3, 2), (2, 3), (3, 3), (2, 4), (3, 4)]) == [17] * 6
    assert at(o, [(1, 2), (4, 2), (2, 5), (1, 3)]) == [3] * 4
    assert (o[:, :2] == 129).all()
    full = np.full((5, 5), 2, np.uint8)
    assert (mspa(full) == 17).all()  # the image border is no edge (replicated frame)
    corner = np.ones((6, 6), np.uint8)
    corner[:3, :3] = 2  # a 3x3 block in the image corner
    oc = mspa(corner)
    assert at(oc, [(0, 0), (0, 1), (1, 0), (1, 1)]) == [17] * 4
    assert at(oc, [(2, 0), (2, 2), (0, 2)]) == [3] * 3


def test_hole_touching_nothing_but_core_at_image_border():
    a = np.full((5, 5), 2, np.uint8)
    a[2, 2] = 1
    o = mspa(a)
    assert o[2, 2] == 100
    assert (o[1:4, 1:4][np.ones((3, 3), bool) ^ (np.arange(9).reshape(3, 3) == 4)] == 105).all()
    assert o[0, 0] == 17 and o[4, 2] == 17


def test_four_versus_eight_connectivity():
    plus = np.ones((7, 7), np.uint8)
    plus[2:5, 3] = 2
    plus[3, 2:5] = 2
    o8, o4 = mspa(plus), mspa(plus, connectivity=4)
    # the core threshold is EW + 0.98 for both connectivities (the engine's rule; this test
    # used to expect EW for 4-connectivity, which made the plus's centre core): diagonal
    # background touches the centre, so there is no core
    assert (o8[plus == 2] == 9).all() and (o4[plus == 2] == 9).all()
    block = np.ones((7, 7), np.uint8)
    block[2:5, 2:5] = 2
    b4 = mspa(block, connectivity=4)
    assert b4[3, 3] == 17 and at(b4, [(2, 3), (4, 3), (3, 2), (3, 4), (2, 2)]) == [3] * 5
    diag = np.ones((6, 6), np.uint8)
    for i in range(1, 5):
        diag[i, i] = 2
    s8 = mspa_statistics(mspa(diag), connectivity=8)
    s4 = mspa_statistics(mspa(diag, connectivity=4), connectivity=4)
    assert s8["classes"]["islet"]["objects"] == 1
    assert s4["classes"]["islet"]["objects"] == 4


def test_internal_features_in_a_core_hole():
    a = np.ones((17, 17), np.uint8)
    a[1:16, 1:16] = 2
    a[5:12, 5:12] = 1  # 7x7 hole
    a[8, 8] = 2  # islet in the hole
    o = mspa(a)
    assert o[8, 8] == 109
    assert o[6, 6] == 100 and o[5, 5] == 100
    assert o[4, 4] == 105 and o[4, 8] == 105  # ring around the hole
    assert o[1, 1] == 3 and o[2, 2] == 17
    oi = mspa(a, intext=0)
    assert oi[8, 8] == 9 and oi[6, 6] == 0 and oi[4, 4] == 5


def test_inner_core_in_a_hole_is_internal_core_with_internal_edge():
    a = np.ones((25, 25), np.uint8)
    a[1:24, 1:24] = 2
    a[5:20, 5:20] = 1
    a[10:15, 10:15] = 2  # 5x5 block inside the hole: its own core and edge
    o = mspa(a)
    assert (o[11:14, 11:14] == 117).all()
    assert o[10, 10] == 103 and o[12, 10] == 103
    assert o[4, 4] == 105 and o[7, 7] == 100


def test_wider_edge_width():
    a = np.ones((13, 13), np.uint8)
    a[1:12, 1:12] = 2
    o = mspa(a, edge_width=2)
    assert (o[3:10, 3:10] == 17).all()
    assert (o[1:3, 1:12] == 3).all() and (o[10:12, 1:12] == 3).all()


def test_bad_values_and_parameters():
    with pytest.raises(InputError):
        mspa(np.array([[1, 2], [3, 1]], np.uint8))
    for kw in ({"edge_width": 0}, {"connectivity": 6}, {"transition": 2}, {"intext": -1}):
        with pytest.raises(SinkmapError):
            mspa(np.ones((3, 3), np.uint8), **kw)


# Published GuidosToolbox/GWB statistics of input/example.tif, MSPA 8_1_1_1
# (GWB docs/usage/GWB_MSPA.rst; restated in ../shared/peers.md): percent of foreground, objects.
PUBLISHED = {"core": (75.09, 1196), "islet": (3.26, 2429), "perforation": (2.17, 423),
             "edge": (13.54, 890), "loop": (0.60, 541), "bridge": (1.42, 765),
             "branch": (3.93, 4685)}


def _table(s: dict) -> dict:
    return {k: (v["percent"], v["objects"]) for k, v in s["classes"].items()}


@pytest.mark.skipif(not REFERENCE.exists(), reason="../shared/mspa_reference not present")
def test_gwb_example_statistics():
    from layers.mspa import _mspa_bytes

    with rasterio.open(REFERENCE) as src:
        a = src.read(1)
    o = mspa(a)
    s = mspa_statistics(o)
    assert s["foreground_pixels"] == 428490  # FG_area
    assert s["integral_foreground_pixels"] == 485606  # iFG_area
    # the whole published table, exactly, but for the image corners: the newest engine (as
    # sinkmap) replicates the frame corners too, so the three foreground image corners are
    # core, not edge (peers.md: edge 13.53 %, 887 objects)
    assert [o[0, 0], o[0, -1], o[-1, 0]] == [17, 17, 17] and a[-1, -1] == 1
    assert _table(s) == {**PUBLISHED, "edge": (13.53, 887)}
    assert s["background"] == {"pixels": 571240, "percent": 57.14, "objects": 2319}
    assert s["missing"] == {"pixels": 270, "objects": 51}
    assert (s["opening"]["pixels"], s["opening"]["objects"]) == (57116, 2291)
    assert s["core_opening"] == {"pixels": 5927, "percent": 0.59, "objects": 717}
    assert s["border_opening"] == {"pixels": 51189, "percent": 5.12, "objects": 1574}
    assert s["porosity"] == 1.50
    assert set(np.unique(o)) <= {0, 100, 220, 129, *[b for v in CLASS_BYTES.values() for b in v]}
    # with the frame corners left empty, as the GWB 2.0 engine that made the published table,
    # every figure of the table is reproduced
    o2 = _mspa_bytes(a, 1, 8, 1, 1, replicate_corners=False)
    assert [o2[0, 0], o2[0, -1], o2[-1, 0]] == [3, 3, 3]
    assert _table(mspa_statistics(o2)) == PUBLISHED
    assert (o2 != o).sum() == 3


def test_mspa_file_round_trip(tmp_path):
    g = GridSpec.from_bounds((500_000, 4_700_000, 500_150, 4_700_070), 10, "EPSG:4551")
    a = grid(BRIDGE)
    assert a.shape == g.shape
    src = tmp_path / "fg.tif"
    with rasterio.open(src, "w", driver="GTiff", width=g.width, height=g.height, count=1,
                       dtype="uint8", crs=g.crs.to_wkt(), transform=g.transform) as dst:
        dst.write(a, 1)
    out = tmp_path / "mspa.tif"
    s = mspa_file(src, out)
    with rasterio.open(out) as r:
        b = r.read(1)
        assert r.dtypes[0] == "uint8" and r.nodata is None
        assert r.tags()["kind"] == "categorical"
        assert r.transform == g.transform and r.crs == g.crs
    assert (b == mspa(a)).all()
    assert s["classes"]["bridge"]["objects"] == 1 and s["classes"]["core"]["objects"] == 2
    assert s["parameters"] == {"edge_width": 1, "connectivity": 8, "transition": 1,
                               "intext": 1}
    with pytest.raises(SinkmapError):
        mspa_file(src, out)  # exists, overwrite not asked
    s0 = mspa_file(src, out, transition=0, overwrite=True)
    assert s0["classes"] == s["classes"]
    bad = tmp_path / "bad.tif"
    with rasterio.open(bad, "w", driver="GTiff", width=2, height=1, count=1, dtype="uint8",
                       crs="EPSG:4551", transform=g.transform) as dst:
        dst.write(np.array([[1, 5]], np.uint8), 1)
    with pytest.raises(InputError, match="0/1/2"):
        mspa_file(bad, tmp_path / "x.tif")


def test_disc_core_matches_euclidean_distance():
    from scipy import ndimage as ndi

    from layers.mspa import _core_mask

    rng = np.random.default_rng(1)
    a = np.where(ndi.gaussian_filter(rng.random((60, 70)), 2) > 0.5, 2, 1).astype(np.uint8)
    for ew, conn in ((2, 8), (3, 8), (2, 4), (5, 8)):
        t = ew + 0.98  # for both connectivities (the reference engine's rule)
        edt = ndi.distance_transform_edt(np.pad(a != 1, 8, mode="edge"))[8:-8, 8:-8]
        assert (_core_mask(a == 2, a == 1, ew, conn) == ((a == 2) & (edt > t))).all()


def test_cli_mspa(tmp_path, capsys):
    """`sinkmap mspa IN OUT` writes the byte raster and prints the class shares."""
    import rasterio
    from affine import Affine

    from sinkmap.cli import main

    a = np.ones((20, 20), np.uint8)
    a[5:15, 5:15] = 2  # a 10 x 10 square: 8 x 8 core, a one-pixel edge ring
    src = tmp_path / "in.tif"
    with rasterio.open(src, "w", driver="GTiff", height=20, width=20, count=1, dtype="uint8",
                       crs="EPSG:4551", transform=Affine(30, 0, 500_000, 0, -30, 4_700_000)) as d:
        d.write(a, 1)
    assert main(["-q", "mspa", str(src), str(tmp_path / "out.tif")]) == 0
    with rasterio.open(tmp_path / "out.tif") as r:
        out = r.read(1)
    assert (out == 17).sum() == 64 and (out == 3).sum() == 36
    assert "core" in capsys.readouterr().out
    assert main(["-q", "mspa", str(src), str(tmp_path / "out.tif")]) == 2  # no overwrite
