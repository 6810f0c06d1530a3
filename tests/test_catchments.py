"""Are catchments right: every entry the cost a plain networkx Dijkstra finds, and the nearest facility the best row?"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from coverage import profiles, reach
from coverage.network import load_walk_arrays
from tests.conftest import shared_data

SPEED = 0.8


def _points(net: reach.NetworkArrays, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), count),
                            rng.uniform(net.node_y.min(), net.node_y.max(), count)])


def _sites_and_homes(net: reach.NetworkArrays, n_sites: int, n_homes: int, seed: int):
    """Random sites, and homes both random and a few metres from the sites (on the same edges)."""
    site_xy = _points(net, n_sites, seed)
    near = site_xy[: n_sites // 2] + np.random.default_rng(seed + 1).normal(0.0, 15.0, (n_sites // 2, 2))
    home_xy = np.vstack([_points(net, n_homes, seed + 2), near])
    return reach.snap_points(net, site_xy, max_access_m=300), reach.snap_points(net, home_xy, max_access_m=300)


def _part(fraction: float, cost: float) -> float:
    """A fraction of an edge's cost; nothing for no distance at all, even on a closed direction."""
    return 0.0 if fraction == 0.0 else fraction * cost


def _split_graph(net, sites: reach.Snap, homes: reach.Snap, forward, backward, speed: float) -> nx.DiGraph:
    """
    The street graph with every site and home put on its street: each edge cut at the points on it
    into a chain u → p1 → … → v (each piece its share of the edge's cost, each way), a site a node
    ("s", i) with its access leg onto its point, a home a node ("h", j) reached by its access leg.
    """
    graph = nx.DiGraph()

    def link(a, b, cost):
        if np.isfinite(cost) and (not graph.has_edge(a, b) or graph[a][b]["w"] > cost):
            graph.add_edge(a, b, w=float(cost))

    on_edge: dict[int, list] = {}
    for kind, snap in (("s", sites), ("h", homes)):
        for i in np.flatnonzero(snap.on_network):
            on_edge.setdefault(int(snap.edge[i]), []).append((float(snap.fraction[i]), kind, int(i)))
    for e in range(net.n_edges):
        stops = [(0.0, "node", int(net.edge_u[e]))]
        stops += sorted(on_edge.get(e, []))
        stops.append((1.0, "node", int(net.edge_v[e])))
        names = [("n", s[2]) if s[1] == "node" else ("p", s[1], s[2]) for s in stops]
        for (fa, *_), (fb, *_), a, b in zip(stops[:-1], stops[1:], names[:-1], names[1:]):
            link(a, b, _part(fb - fa, forward[e]))
            link(b, a, _part(fb - fa, backward[e]))
    for i in np.flatnonzero(sites.on_network):
        link(("s", int(i)), ("p", "s", int(i)), sites.access_m[i] / speed)
    for j in np.flatnonzero(homes.on_network):
        link(("p", "h", int(j)), ("h", int(j)), homes.access_m[j] / speed)
    return graph


def _assert_matches_networkx(matrix, graph, sites: reach.Snap, limit: float) -> int:
    dense = matrix.toarray()
    checked = 0
    for i in range(len(sites)):
        expected = np.full(matrix.shape[1], np.inf)
        if sites.on_network[i]:
            found = nx.single_source_dijkstra_path_length(graph, ("s", i), cutoff=limit, weight="w")
            for node, cost in found.items():
                if node[0] == "h":
                    expected[node[1]] = max(cost, 1e-6)
        got = np.where(dense[i] > 0, dense[i], np.inf)
        # a cost a hair's breadth from the limit may fall either side of it in the two sums
        clear = np.abs(np.minimum(expected, 1e12) - limit) > 1e-6
        assert np.array_equal(np.isfinite(got)[clear], np.isfinite(expected)[clear]), f"site {i}: reached sets differ"
        both = np.isfinite(got) & np.isfinite(expected)
        np.testing.assert_allclose(got[both], expected[both], rtol=0, atol=1e-9)
        checked += int(both.sum())
    return checked


def test_each_walking_catchment_entry_is_the_networkx_dijkstra_cost():
    net = load_walk_arrays(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False)
    sites, homes = _sites_and_homes(net, 30, 600, seed=5)
    limit = 400.0
    matrix = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=limit)
    seconds = net.edge_length_m / SPEED
    graph = _split_graph(net, sites, homes, seconds, seconds, SPEED)
    checked = _assert_matches_networkx(matrix, graph, sites, limit)
    assert checked > 300
    # homes on a site's own street are among them (the route along the edge, not via its ends)
    same_edge = sites.edge[:, None] == homes.edge[None, :]
    assert (matrix.toarray()[same_edge & sites.on_network[:, None]] > 0).sum() >= 10


def test_driving_catchments_respect_one_way_streets_as_networkx_does():
    net = load_walk_arrays(shared_data("osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf"), use_cache=False, ways="drive")
    forward, backward = profiles.edge_costs(net, "drive")
    assert (np.isinf(forward) != np.isinf(backward)).sum() > 20  # one-way streets in play
    speed = profiles.DRIVE.access_speed_mps
    sites, homes = _sites_and_homes(net, 30, 600, seed=11)
    limit = 200.0
    matrix = reach.catchment_matrix(net, sites, homes, walk_speed_mps=speed, limit=limit,
                                    edge_seconds=(forward, backward))
    graph = _split_graph(net, sites, homes, forward, backward, speed)
    assert _assert_matches_networkx(matrix, graph, sites, limit) > 400
    # the one-way streets make the matrix asymmetric: sites as homes and homes as sites differ
    swapped = reach.catchment_matrix(net, homes, sites, walk_speed_mps=speed, limit=limit,
                                     edge_seconds=(forward, backward))
    assert (matrix != swapped.T).nnz > 0


@pytest.mark.parametrize("mode", ["walk", "distance", "drive"])
def test_the_best_row_of_each_home_is_its_nearest_facility(mode):
    ways = "drive" if mode == "drive" else "walk"
    net = load_walk_arrays(shared_data("osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf"), use_cache=False, ways=ways)
    sites, homes = _sites_and_homes(net, 60, 4000, seed=23)
    if mode == "drive":
        costs = dict(walk_speed_mps=profiles.DRIVE.access_speed_mps, edge_seconds=profiles.edge_costs(net, "drive"),
                     limit=180.0)
    elif mode == "distance":
        costs = dict(walk_speed_mps=None, limit=700.0)
    else:
        costs = dict(walk_speed_mps=SPEED, limit=600.0)
    matrix = reach.catchment_matrix(net, sites, homes, **costs)
    nearest = reach.nearest_facility(net, sites, homes, **costs)
    reached = np.diff(matrix.tocsc().indptr) > 0
    np.testing.assert_array_equal(reached, np.isfinite(nearest["cost"].to_numpy()))
    assert reached.sum() > 1000 and (~reached).sum() > 100
    dense = matrix.toarray()
    best = np.where(dense > 0, dense, np.inf).min(axis=0)
    np.testing.assert_allclose(best[reached], np.maximum(nearest["cost"].to_numpy()[reached], 1e-6), rtol=0, atol=1e-9)
    # the nearest facility is one of the cheapest rows
    rows = nearest["facility_index"].to_numpy()[reached]
    np.testing.assert_allclose(dense[rows, np.flatnonzero(reached)], best[reached], rtol=0, atol=1e-9)


def test_the_matrix_does_not_depend_on_how_the_searches_are_chunked():
    net = load_walk_arrays(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False)
    sites, homes = _sites_and_homes(net, 40, 800, seed=2)
    whole = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=500.0)
    one_by_one = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=500.0, max_cells_per_chunk=1)
    assert whole.nnz > 0 and whole.has_sorted_indices
    assert (whole != one_by_one).nnz == 0


def test_sites_off_the_network_and_unreachable_limits_give_empty_rows():
    net = load_walk_arrays(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False)
    far = np.array([[net.node_x.max() + 5000.0, net.node_y.max() + 5000.0]])
    sites = reach.snap_points(net, np.vstack([far, _points(net, 3, 9)]))
    homes = reach.snap_points(net, _points(net, 200, 10))
    matrix = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=600.0)
    assert matrix.shape == (4, 200)
    assert matrix[0].nnz == 0 and matrix[1:].nnz > 0
    nothing = reach.catchment_matrix(net, sites, homes, walk_speed_mps=SPEED, limit=1e-9)
    assert nothing.shape == (4, 200) and nothing.nnz == 0
    none = reach.catchment_matrix(net, sites.subset(np.zeros(4, bool)), homes, walk_speed_mps=SPEED, limit=600.0)
    assert none.shape == (0, 200) and none.nnz == 0


@pytest.mark.parametrize("mode", ["walk", "distance", "drive"])
def test_searching_only_the_streets_near_each_tile_of_sites_gives_the_whole_network_s_matrix(mode):
    """A county's 44,000 candidates: each chunk searches the streets within reach of its tile, bit for bit the same."""
    from scipy.sparse.csgraph import dijkstra

    ways = "drive" if mode == "drive" else "walk"
    net = load_walk_arrays(shared_data("osm/shanghai_center/shanghai_center.osm.pbf"), use_cache=False, ways=ways)
    sites, homes = _sites_and_homes(net, 300, 6000, seed=31)
    if mode == "drive":
        costs = dict(walk_speed_mps=profiles.DRIVE.access_speed_mps, edge_seconds=profiles.edge_costs(net, "drive"),
                     limit=120.0)
    elif mode == "distance":
        costs = dict(walk_speed_mps=None, limit=400.0)
    else:
        costs = dict(walk_speed_mps=SPEED, limit=500.0)
    matrix = reach.catchment_matrix(net, sites, homes, **costs)
    # the tiles do leave most of the network out (and a tile whose reach would hold half of it searches it all)
    search = reach._search_costs(net, costs["walk_speed_mps"], None, costs.get("edge_seconds"))
    radius = reach._reach_radius_m(net, search, costs["limit"])
    usable = np.flatnonzero(sites.on_network)
    tiles = list(reach._search_tiles(net, sites, usable, radius, 2_000_000))
    assert sum(len(chunk) for chunk, _ in tiles) == len(usable)
    assert any(nodes is not None and len(nodes) < net.n_nodes / 4 for _, nodes in tiles)
    assert any(nodes is None for _, nodes in tiles) == (mode == "drive")
    # the reference: every site searched over the whole network
    graph = reach._node_graph(net, search, sites)
    by_node = reach._demand_by_node(net, homes, search, costs["limit"])
    node_cost = dijkstra(graph, directed=True, indices=net.n_nodes + usable, limit=costs["limit"])
    r, c, v = reach._reached_points(node_cost, net.n_nodes, by_node, costs["limit"])
    s_idx, t_idx = reach._same_edge_pairs(sites, homes)
    direct = reach._direct_costs(net, sites, homes, s_idx, t_idx, search)
    keep = direct <= costs["limit"]
    whole = reach._cheapest_csr(np.concatenate([usable[r], s_idx[keep]]), np.concatenate([c, t_idx[keep]]),
                                np.maximum(np.concatenate([v, direct[keep]]), 1e-6), len(sites), len(homes))
    assert matrix.nnz > 1000 and (matrix.data < costs["limit"] / 2).sum() > 50
    np.testing.assert_array_equal(matrix.indptr, whole.indptr)
    np.testing.assert_array_equal(matrix.indices, whole.indices)
    np.testing.assert_array_equal(matrix.data, whole.data)


def test_a_duplicate_entry_keeps_its_cheapest_cost():
    row, col = np.array([2, 0, 2, 2, 0]), np.array([1, 3, 1, 0, 3])
    val = np.array([5.0, 2.0, 4.0, 7.0, 9.0])
    matrix = reach._cheapest_csr(row, col, val, 3, 4)
    assert matrix[2, 1] == 4.0 and matrix[0, 3] == 2.0 and matrix[2, 0] == 7.0 and matrix.nnz == 3
    assert matrix.has_sorted_indices
