"""Do homes beside a stray scrap of footway still count, and does an isolated ring walk the same either way?"""

from __future__ import annotations

import numpy as np
import pytest

from coverage import reach
from coverage.network import load_walk_arrays, load_walk_network
from tests.conftest import shared_data


def _ring_beside_a_grid(tmp_path):
    """A 4 x 4 street grid and, 500 m north, a closed footway touching nothing (as OSM exports draw it)."""
    nodes, ways = [], []
    for i in range(4):
        for j in range(4):
            nodes.append((1000 + 10 * i + j, 30.0 + 0.001 * i, 114.0 + 0.001 * j))
    for i in range(4):
        ways.append((1 + 2 * i, [1000 + 10 * i + j for j in range(4)], "residential"))
        ways.append((2 + 2 * i, [1000 + 10 * j + i for j in range(4)], "residential"))
    ring = [(5001, 0.0, 0.0), (5002, 0.0, 0.0004), (5003, 0.0004, 0.0004), (5004, 0.0004, 0.0)]
    nodes += [(n, 30.0045 + a, 114.001 + b) for n, a, b in ring]
    ways.append((99, [5001, 5002, 5003, 5004, 5001], "footway"))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="JOSM">']
    lines += [f'  <node id="{n}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>' for n, lat, lon in nodes]
    for way, refs, highway in ways:
        lines.append(f'  <way id="{way}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="highway" v="{highway}"/>', "  </way>"]
    lines.append("</osm>")
    path = tmp_path / "ring.osm"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_an_isolated_ring_is_the_same_street_under_both_simplification_modes(tmp_path):
    path = _ring_beside_a_grid(tmp_path)
    by_segments = reach.network_arrays(load_walk_network(path, use_cache=False, simplify="segments"))
    by_osmnx = reach.network_arrays(load_walk_network(path, use_cache=False, simplify="osmnx"))

    def ring_edges(net):
        on_ring = net.node_ids[net.edge_u] >= 5000
        return sorted(zip(net.node_ids[net.edge_u[on_ring]].tolist(), net.node_ids[net.edge_v[on_ring]].tolist(),
                          np.round(net.edge_length_m[on_ring], 6).tolist()))

    # osmnx alone drops the ring; both keep it as one loop of the same length
    assert ring_edges(by_segments) == ring_edges(by_osmnx)
    assert len(ring_edges(by_osmnx)) == 1 and ring_edges(by_osmnx)[0][2] == pytest.approx(2 * (44.5 + 38.5), rel=0.1)
    # a facility on the ring and homes around it: the same walking times in both
    ring_points = np.array([[0.0, 0.0], [20.0, 0.0], [38.0, 20.0], [10.0, 44.0]])
    times = []
    for net in (by_segments, by_osmnx):
        origin = net.node_x[net.node_ids == 5001][0], net.node_y[net.node_ids == 5001][0]
        homes = reach.snap_points(net, ring_points + np.array(origin) + np.array([1.0, 1.0]))
        facility = reach.snap_points(net, np.array([origin]) + np.array([[0.5, 0.5]]))
        times.append(reach.nearest_facility(net, facility, homes, walk_speed_mps=0.8, limit=900.0)["cost"].to_numpy())
    assert np.all(np.isfinite(times[0]))
    assert np.allclose(times[0], times[1], atol=1e-9, rtol=0)


@pytest.mark.parametrize("extract", ["osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
                                     "osm/shenzhen_longgang_klein4c/map.osm"])
def test_homes_beside_a_stray_fragment_walk_to_the_main_network_when_it_is_within_reach(extract):
    net = load_walk_arrays(shared_data(extract))
    rng = np.random.default_rng(7)
    x0, x1 = np.quantile(net.node_x, [0.05, 0.95])
    y0, y1 = np.quantile(net.node_y, [0.05, 0.95])
    homes = np.column_stack([rng.uniform(x0, x1, 20_000), rng.uniform(y0, y1, 20_000)])
    sites = np.column_stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)])
    home_snap = reach.snap_points(net, homes, max_access_m=500.0)
    site_snap = reach.snap_points(net, sites, max_access_m=500.0)
    stray = reach.stray_fragment_edges(net, site_snap)
    on_stray = home_snap.on_network & stray[np.where(home_snap.on_network, home_snap.edge, 0)]
    assert on_stray.sum() > 50  # the extract has the fragments this is about

    moved_snap, moved = reach.attach_off_fragments(net, homes, home_snap, max_access_m=500.0, keep=site_snap)
    # only homes on stray fragments move, and they move onto the main network within the access limit
    assert moved.sum() > 0 and not (moved & ~on_stray).any()
    assert not stray[moved_snap.edge[moved]].any()
    assert (moved_snap.access_m[moved] <= 500.0).all()
    assert (moved_snap.access_m[moved] >= home_snap.access_m[moved]).all()  # the fragment was the nearest
    # every other home keeps its snap exactly
    assert np.array_equal(moved_snap.edge[~moved], home_snap.edge[~moved])
    assert np.array_equal(moved_snap.access_m[~moved], home_snap.access_m[~moved])
    # and the moved homes now reach facilities that the fragment cut them off from
    before = reach.nearest_facility(net, site_snap, home_snap, walk_speed_mps=0.8, limit=3600.0)["cost"].to_numpy()
    after = reach.nearest_facility(net, site_snap, moved_snap, walk_speed_mps=0.8, limit=3600.0)["cost"].to_numpy()
    assert np.isinf(before[moved]).all() and np.isfinite(after[moved]).mean() > 0.9
    assert np.array_equal(before[~moved], after[~moved])


def test_a_fragment_with_a_facility_on_it_is_not_stray(tmp_path):
    net = reach.network_arrays(load_walk_network(_ring_beside_a_grid(tmp_path), use_cache=False))
    origin = np.array([[net.node_x[net.node_ids == 5001][0] + 1.0, net.node_y[net.node_ids == 5001][0] + 1.0]])
    home = reach.snap_points(net, origin + np.array([[20.0, 0.0]]), max_access_m=600.0)
    nobody = reach.snap_points(net, np.empty((0, 2)))
    _, moved = reach.attach_off_fragments(net, origin + np.array([[20.0, 0.0]]), home, max_access_m=600.0,
                                          keep=nobody)
    assert moved.all()  # the ring alone is a stray fragment: the grid is 420 m away
    facility = reach.snap_points(net, origin)
    _, moved = reach.attach_off_fragments(net, origin + np.array([[20.0, 0.0]]), home, max_access_m=600.0,
                                          keep=facility)
    assert not moved.any()  # with a day-care centre on it, its homes walk there
