"""How long does an older person walk to the nearest facility, and is that right to the second?"""

from __future__ import annotations

import networkx as nx
import numpy as np
import osmnx as ox
import pytest
import shapely

from coverage import reach
from coverage.config import FerryPolicy
from coverage.network import load_walk_network
from tests.conftest import shared_data

SPEED = 0.8


def _networkx_times(graph, net, facilities, demand, speed, ferry=None):
    """
    Independent answer: networkx Dijkstra on the undirected osmnx graph, with
    each facility and home inserted as its own node on its edge.
    """
    base = nx.MultiGraph()
    for u, v, data in ox.convert.to_undirected(graph).edges(data=True):
        base.add_edge(u, v, w=data["length"] / speed)

    def attach(g, name, snap, i):
        e = snap.edge[i]
        length = net.edge_length_m[e]
        u, v = net.node_ids[net.edge_u[e]], net.node_ids[net.edge_v[e]]
        g.add_edge(name, u, w=(snap.access_m[i] + snap.fraction[i] * length) / speed)
        g.add_edge(name, v, w=(snap.access_m[i] + (1 - snap.fraction[i]) * length) / speed)

    sources = []
    for i in np.flatnonzero(facilities.on_network):
        attach(base, ("facility", i), facilities, i)
        sources.append(("facility", i))
    times = []
    for j in range(len(demand)):
        if not demand.on_network[j]:
            times.append(np.inf)
            continue
        g = base.copy()
        attach(g, "home", demand, j)
        for i in np.flatnonzero(facilities.on_network):
            if facilities.edge[i] == demand.edge[j]:
                stretch = abs(facilities.fraction[i] - demand.fraction[j]) * net.edge_length_m[demand.edge[j]]
                g.add_edge(("facility", i), "home",
                           w=(facilities.access_m[i] + stretch + demand.access_m[j]) / speed)
        lengths = nx.multi_source_dijkstra_path_length(g, sources, weight="w")
        times.append(lengths.get("home", np.inf))
    return np.array(times)


@pytest.mark.parametrize(
    "extract",
    ["osm/beijing_bupt/map.osm", "osm/shanghai_baoshan_shu/map_1.osm", "osm/jiangxi_guixi/mapofgx.osm"],
)
def test_walking_seconds_agree_with_networkx_dijkstra_on_real_streets(extract):
    graph = load_walk_network(shared_data(extract))
    net = reach.network_arrays(graph)
    rng = np.random.default_rng(7)
    x0, x1 = np.percentile(net.node_x, [5, 95])
    y0, y1 = np.percentile(net.node_y, [5, 95])
    facility_xy = np.column_stack([rng.uniform(x0, x1, 5), rng.uniform(y0, y1, 5)])
    home_xy = np.column_stack([rng.uniform(x0, x1, 60), rng.uniform(y0, y1, 60)])
    facilities = reach.snap_points(net, facility_xy)
    homes = reach.snap_points(net, home_xy)
    # most homes sit between two nodes, not on one
    assert np.mean((homes.fraction > 0.01) & (homes.fraction < 0.99)) > 0.5
    ours = reach.nearest_facility(net, facilities, homes, walk_speed_mps=SPEED, limit=np.inf)["cost"].to_numpy()
    expected = _networkx_times(graph, net, facilities, homes, SPEED)
    assert np.array_equal(np.isfinite(ours), np.isfinite(expected))
    finite = np.isfinite(expected)
    assert finite.sum() > 30
    assert np.max(np.abs(ours[finite] - expected[finite])) < 1.0


def _straight_block(length_m=400.0):
    """Two nodes joined by one straight street of ``length_m`` metres, along the x axis."""
    return reach.network_arrays_from_edges(np.array([0.0, length_m]), np.array([0.0, 0.0]), [0], [1])


def test_a_home_half_way_along_a_block_gets_the_interpolated_time_not_a_nodes():
    net = _straight_block(400.0)
    facility = reach.snap_points(net, [[0.0, 0.0]])
    home = reach.snap_points(net, [[200.0, 10.0]])
    assert home.fraction[0] == pytest.approx(0.5)
    assert home.access_m[0] == pytest.approx(10.0)
    seconds = reach.nearest_facility(net, facility, home, walk_speed_mps=SPEED, limit=3600)["cost"][0]
    assert seconds == pytest.approx((200.0 + 10.0) / SPEED)


def test_a_facility_on_the_same_block_is_reached_along_the_block():
    # a long block whose ends are far apart via the network: walking along it is the only short way
    net = reach.network_arrays_from_edges(
        np.array([0.0, 1000.0, 1000.0, 0.0]), np.array([0.0, 0.0, 3000.0, 3000.0]), [0, 1, 2], [1, 2, 3]
    )
    facility = reach.snap_points(net, [[450.0, 0.0]])
    home = reach.snap_points(net, [[550.0, 0.0]])
    seconds = reach.nearest_facility(net, facility, home, walk_speed_mps=1.0, limit=3600)["cost"][0]
    assert seconds == pytest.approx(100.0)


def test_a_home_far_from_any_street_is_off_network_and_not_covered():
    net = _straight_block()
    facility = reach.snap_points(net, [[0.0, 0.0]])
    homes = reach.snap_points(net, [[100.0, 20.0], [100.0, 900.0]], max_access_m=500.0)
    assert list(homes.on_network) == [True, False]
    result = reach.nearest_facility(net, facility, homes, walk_speed_mps=SPEED, limit=3600)
    assert np.isfinite(result["cost"][0])
    assert np.isinf(result["cost"][1]) and result["facility_index"][1] == -1


def test_times_beyond_the_limit_are_not_reported_as_reached():
    net = _straight_block(2000.0)
    facility = reach.snap_points(net, [[0.0, 0.0]])
    homes = reach.snap_points(net, [[500.0, 0.0], [1500.0, 0.0]])
    result = reach.nearest_facility(net, facility, homes, walk_speed_mps=1.0, limit=900)
    assert result["cost"][0] == pytest.approx(500.0)
    assert np.isinf(result["cost"][1])


def test_the_nearest_facility_is_named():
    net = _straight_block(1000.0)
    facilities = reach.snap_points(net, [[0.0, 0.0], [1000.0, 0.0]])
    homes = reach.snap_points(net, [[100.0, 0.0], [900.0, 0.0]])
    result = reach.nearest_facility(net, facilities, homes, walk_speed_mps=1.0, limit=3600)
    assert list(result["facility_index"]) == [0, 1]


def _island_network():
    """Mainland street 0-1, ferry 1-2 (600 m), island street 2-3."""
    x = np.array([0.0, 1000.0, 1600.0, 2000.0])
    y = np.zeros(4)
    return reach.network_arrays_from_edges(x, y, [0, 1, 2], [1, 2, 3], edge_ferry=[False, True, False])


def test_ferry_on_or_off_changes_the_islands_coverage():
    net = _island_network()
    facility = reach.snap_points(net, [[0.0, 10.0]])
    island_home = reach.snap_points(net, [[1800.0, 5.0]])
    # homes never attach to the ferry line itself
    assert not net.edge_ferry[island_home.edge[0]]
    ferry = FerryPolicy(enabled=True, wait_seconds=300.0, speed_mps=5.0)
    with_ferry = reach.nearest_facility(net, facility, island_home, walk_speed_mps=1.0, limit=7200, ferry=ferry)
    expected = 10.0 + 1000.0 + (300.0 + 600.0 / 5.0) + 200.0 + 5.0
    assert with_ferry["cost"][0] == pytest.approx(expected)
    without = reach.nearest_facility(net, facility, island_home, walk_speed_mps=1.0, limit=7200,
                                     ferry=FerryPolicy(enabled=False))
    assert np.isinf(without["cost"][0])


def test_an_island_without_facilities_is_reported_as_its_own_component():
    net = _island_network()
    homes = reach.snap_points(net, [[100.0, 0.0], [1800.0, 0.0]])
    labels = reach.node_components(net, with_ferries=False)
    components = reach.point_components(net, homes, labels)
    assert components[0] != components[1]
    joined = reach.point_components(net, homes, reach.node_components(net, with_ferries=True))
    assert joined[0] == joined[1]


def test_distance_mode_reports_metres():
    net = _straight_block(1000.0)
    facility = reach.snap_points(net, [[0.0, 0.0]])
    home = reach.snap_points(net, [[300.0, 40.0]])
    metres = reach.nearest_facility(net, facility, home, walk_speed_mps=None, limit=1000)["cost"][0]
    assert metres == pytest.approx(340.0)


def test_catchments_agree_with_the_nearest_facility_pass():
    graph = load_walk_network(shared_data("osm/beijing_bupt/map.osm"))
    net = reach.network_arrays(graph)
    rng = np.random.default_rng(3)
    sites = reach.snap_points(net, np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 8),
                                                    rng.uniform(net.node_y.min(), net.node_y.max(), 8)]))
    homes = reach.snap_points(net, np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 400),
                                                    rng.uniform(net.node_y.min(), net.node_y.max(), 400)]))
    matrix = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=600, max_cells_per_chunk=1000)
    nearest = reach.nearest_facility(net, sites, homes, walk_speed_mps=SPEED, limit=600)["cost"].to_numpy()
    dense = matrix.toarray()
    dense[dense == 0] = np.inf
    assert np.allclose(dense.min(axis=0), nearest)


def test_isochrone_follows_the_streets_and_stops_at_the_exact_time():
    # an L of two 1000 m streets; 600 s at 1 m/s from the corner reaches 600 m along each arm
    net = reach.network_arrays_from_edges(np.array([0.0, 0.0, 1000.0]), np.array([1000.0, 0.0, 0.0]), [0, 1], [1, 2])
    corner = reach.snap_points(net, [[0.0, 0.0]])
    segments = reach.reached_segments(net, corner, walk_speed_mps=1.0, limit=600.0)
    assert shapely.union_all(segments).length == pytest.approx(1200.0, abs=1e-6)
    area = reach.isochrone_polygon(net, corner, walk_speed_mps=1.0, limit=600.0, buffer_m=50.0)
    assert area.contains(shapely.Point(0, 550)) and area.contains(shapely.Point(550, 0))
    assert not area.contains(shapely.Point(700, 0))
    # a convex hull would cover the empty block between the arms; the street buffer does not
    assert not area.contains(shapely.Point(300, 300))
