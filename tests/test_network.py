"""Does the walking network we build from OpenStreetMap hold the streets a pedestrian can use?"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
import pytest
import shapely
from pyproj import CRS

from coverage import reach
from coverage._errors import InputDataError
from coverage._io import file_sha256
from coverage.config import FerryPolicy
from coverage.network import graph_summary, is_walkable, load_walk_arrays, load_walk_network, network_summary
from tests.conftest import REPO_ROOT, shared_data


def test_xml_pbf_and_graphml_of_the_same_area_give_the_same_graph(tmp_path):
    xml = load_walk_network(shared_data("osm/beijing_bupt/map.osm"), use_cache=False)
    pbf = load_walk_network(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False)
    assert (xml.number_of_nodes(), xml.number_of_edges()) == (pbf.number_of_nodes(), pbf.number_of_edges())
    graphml = tmp_path / "bupt.graphml"
    ox.save_graphml(ox.project_graph(xml, to_latlong=True), graphml)
    reloaded = load_walk_network(graphml, use_cache=False)
    assert (reloaded.number_of_nodes(), reloaded.number_of_edges()) == (xml.number_of_nodes(), xml.number_of_edges())
    # osmnx's own simplification of the same ways: the data README lists 268 nodes / 729 edges
    osmnx_simplified = load_walk_network(shared_data("osm/beijing_bupt/map.osm"), use_cache=False, simplify="osmnx")
    assert 250 <= osmnx_simplified.number_of_nodes() <= 280


@pytest.mark.parametrize("extract", ["osm/beijing_bupt/map.osm", "osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf"])
def test_fast_way_splitting_gives_the_same_walking_distances_as_osmnx_simplify(extract):
    import numpy as np

    fast = ox.convert.to_undirected(load_walk_network(shared_data(extract), use_cache=False))
    slow = ox.convert.to_undirected(load_walk_network(shared_data(extract), use_cache=False, simplify="osmnx"))
    common = sorted(set(fast.nodes) & set(slow.nodes))
    assert len(common) >= 0.9 * slow.number_of_nodes()
    for source in np.random.default_rng(1).choice(common, 8, replace=False):
        by_fast = nx.single_source_dijkstra_path_length(fast, source, weight="length")
        by_slow = nx.single_source_dijkstra_path_length(slow, source, weight="length")
        for node in common:
            assert abs(by_fast.get(node, np.inf) - by_slow.get(node, np.inf)) < 1e-6 or (
                node not in by_fast and node not in by_slow)


def test_buildings_motorways_and_construction_are_not_walked():
    graph = load_walk_network(shared_data("osm/beijing_bupt/map.osm"), use_cache=False)
    highways = set()
    for _, _, data in graph.edges(data=True):
        value = data["highway"]
        highways.update(value if isinstance(value, list) else [value])
    assert "construction" not in highways
    assert not any(h.startswith("motorway") for h in highways)
    assert {"footway", "service"} <= highways
    assert all("building" not in data for _, _, data in graph.edges(data=True))


def test_walk_filter_follows_the_tags():
    assert is_walkable({"highway": "footway"})
    assert is_walkable({"highway": "residential"})
    assert not is_walkable({"highway": "motorway"})
    assert not is_walkable({"highway": "trunk_link"})
    assert not is_walkable({"highway": "construction"})
    assert not is_walkable({"highway": "footway", "foot": "no"})
    assert not is_walkable({"highway": "service", "access": "private"})
    assert not is_walkable({"building": "yes"})
    assert not is_walkable({"highway": "pedestrian", "area": "yes"})


def test_every_disconnected_part_is_kept_not_only_the_largest():
    graph = load_walk_network(shared_data("osm/beijing_bupt/map.osm"), use_cache=False)
    assert nx.number_weakly_connected_components(graph) > 1


def test_graphml_from_osmnx_loads_projected_to_local_utm():
    graph = load_walk_network(shared_data("osm/shenzhen_tbd_graphml/G.graphml"), use_cache=False)
    assert graph.graph["crs"].to_epsg() == 32650
    summary = graph_summary(graph)
    assert (summary["nodes"], summary["edges"]) == (1751, 4009)


def test_parsed_network_is_cached_by_file_content(tmp_path):
    path = shared_data("osm/beijing_bupt/map.osm.pbf")
    first = load_walk_network(path, cache_dir=tmp_path)
    cached = list((tmp_path / "networks").glob("*.pickle"))
    assert len(cached) == 1
    second = load_walk_network(path, cache_dir=tmp_path)
    assert graph_summary(first) == graph_summary(second)


def test_an_unknown_file_format_names_the_file(tmp_path):
    bad = tmp_path / "streets.txt"
    bad.write_text("not a network")
    with pytest.raises(InputDataError, match="streets.txt"):
        load_walk_network(bad, use_cache=False)


# --- the walking network straight to arrays (the batch job's route, no networkx graph) -------------------------

#: the committed synthetic demo network: the only network here with a ferry line (to its island)
DEMO_NETWORK = REPO_ROOT / "data" / "demo" / "demo_walk.osm"


def _network_file(extract: str) -> Path:
    return DEMO_NETWORK if extract == "demo" else shared_data(extract)


def _duplicated_ways(net: reach.NetworkArrays) -> np.ndarray:
    """Rows repeating an earlier row's ends and exact geometry: a second OSM way over the very same nodes."""
    seen: set = set()
    repeats = []
    for e, geometry in enumerate(net.edge_geometry):
        key = (int(net.edge_u[e]), int(net.edge_v[e]), shapely.to_wkb(geometry))
        if key in seen:
            repeats.append(e)
        seen.add(key)
    return np.array(repeats, dtype=np.int64)


def _rows(net: reach.NetworkArrays, rows=None) -> list[tuple[int, int, float]]:
    """Undirected rows as (lower node position, higher node position, length rounded to the micrometre)."""
    rows = np.arange(net.n_edges) if rows is None else rows
    u, v = net.edge_u[rows], net.edge_v[rows]
    return sorted(zip(np.minimum(u, v).tolist(), np.maximum(u, v).tolist(),
                      np.round(net.edge_length_m[rows], 6).tolist()))


def _same_arrays(a: reach.NetworkArrays, b: reach.NetworkArrays) -> bool:
    """Every array equal, element by element and in order; geometries vertex for vertex."""
    return (
        np.array_equal(a.node_ids, b.node_ids) and np.array_equal(a.node_x, b.node_x)
        and np.array_equal(a.node_y, b.node_y) and np.array_equal(a.edge_u, b.edge_u)
        and np.array_equal(a.edge_v, b.edge_v) and np.array_equal(a.edge_length_m, b.edge_length_m)
        and np.array_equal(a.edge_ferry, b.edge_ferry)
        and bool(shapely.equals_exact(a.edge_geometry, b.edge_geometry, tolerance=0.0).all())
        and a.crs == b.crs
    )


# extract, stretches mapped twice in OSM (two way ids over the same nodes)
EXTRACTS_WITH_DUPLICATES = [
    ("osm/beijing_bupt/map.osm.pbf", 0),
    ("osm/beijing_haidian_thu_pku/map.osm", 1),
    ("osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf", 3),
    ("osm/shanghai_center/shanghai_center.osm.pbf", 0),
    ("demo", 0),
]


@pytest.mark.parametrize(("extract", "duplicated"), EXTRACTS_WITH_DUPLICATES)
def test_arrays_read_straight_from_the_file_hold_the_same_streets_as_the_graph(extract, duplicated):
    path = _network_file(extract)
    direct = load_walk_arrays(path, use_cache=False)
    via_graph = reach.network_arrays(load_walk_network(path, use_cache=False))

    # the same nodes, in the same order, at the same coordinates, in the same local UTM zone
    assert np.array_equal(direct.node_ids, via_graph.node_ids)
    assert np.array_equal(direct.node_x, via_graph.node_x) and np.array_equal(direct.node_y, via_graph.node_y)
    assert direct.crs == via_graph.crs

    # every stretch is one row; network_arrays folds a way mapped twice over the same nodes into one
    # row (its de-duplication key is ends + rounded lengths), the direct build keeps both: walking
    # times cannot change, and the network summary still counts both as graph_summary does
    repeats = _duplicated_ways(direct)
    assert len(repeats) == duplicated
    assert direct.n_edges == via_graph.n_edges + duplicated
    assert set(_rows(direct)) == set(_rows(via_graph))
    assert Counter(_rows(direct)) - Counter(_rows(via_graph)) == Counter(_rows(direct, repeats))

    # without those repeats, row for row the same: ends, orientation, length, ferry flag, geometry
    kept = np.setdiff1d(np.arange(direct.n_edges), repeats)
    assert np.array_equal(direct.edge_u[kept], via_graph.edge_u)
    assert np.array_equal(direct.edge_v[kept], via_graph.edge_v)
    assert np.array_equal(direct.edge_length_m[kept], via_graph.edge_length_m)
    assert np.array_equal(direct.edge_ferry[kept], via_graph.edge_ferry)
    assert shapely.equals_exact(direct.edge_geometry[kept], via_graph.edge_geometry, tolerance=0.0).all()
    # each geometry runs from its u node to its v node
    start = shapely.get_point(direct.edge_geometry, 0)
    assert np.array_equal(shapely.get_x(start), direct.node_x[direct.edge_u])
    assert np.array_equal(shapely.get_y(start), direct.node_y[direct.edge_u])


@pytest.mark.parametrize(
    "extract",
    ["osm/beijing_haidian_thu_pku/map.osm.pbf", "osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
     "osm/jiangxi_guixi/mapofgx.osm", "demo"],
)
def test_walking_times_are_the_same_on_arrays_read_straight_from_the_file(extract):
    path = _network_file(extract)
    direct = load_walk_arrays(path, use_cache=False)
    via_graph = reach.network_arrays(load_walk_network(path, use_cache=False))
    rng = np.random.default_rng(5)
    x0, x1 = np.percentile(direct.node_x, [2, 98])
    y0, y1 = np.percentile(direct.node_y, [2, 98])
    facility_xy = np.column_stack([rng.uniform(x0, x1, 12), rng.uniform(y0, y1, 12)])
    home_xy = np.column_stack([rng.uniform(x0, x1, 3000), rng.uniform(y0, y1, 3000)])
    ferry = FerryPolicy(enabled=True, wait_seconds=900.0, speed_mps=4.0)
    times = {}
    for name, net in (("direct", direct), ("via graph", via_graph)):
        facilities = reach.snap_points(net, facility_xy)
        homes = reach.snap_points(net, home_xy)
        times[name] = reach.nearest_facility(net, facilities, homes, walk_speed_mps=0.8, limit=np.inf,
                                             ferry=ferry)
    ours, expected = times["direct"], times["via graph"]
    assert np.array_equal(ours["on_network"], expected["on_network"])
    assert np.array_equal(ours["access_m"], expected["access_m"])
    assert np.array_equal(np.isfinite(ours["cost"]), np.isfinite(expected["cost"]))
    reached = np.isfinite(expected["cost"].to_numpy())
    assert reached.sum() > 1000
    assert np.max(np.abs(ours["cost"].to_numpy()[reached] - expected["cost"].to_numpy()[reached])) < 1e-6
    assert np.array_equal(ours["facility_index"], expected["facility_index"])


@pytest.mark.parametrize(("extract", "duplicated"), EXTRACTS_WITH_DUPLICATES)
def test_the_network_size_a_planner_reads_is_the_same_without_the_graph(extract, duplicated):
    path = _network_file(extract)
    from_arrays = network_summary(load_walk_arrays(path, use_cache=False))
    assert from_arrays == graph_summary(load_walk_network(path, use_cache=False))
    if extract == "demo":
        # the figures in the committed demo outputs (run.json, parameters.csv): the island's ferry links it
        assert from_arrays == {"nodes": 782, "edges": 2228, "walkable_km": 265.218, "ferry_edges": 1,
                               "components": 1}


def test_parsed_arrays_are_cached_by_file_content_and_a_second_load_reads_the_cache(tmp_path):
    path = shared_data("osm/beijing_bupt/map.osm.pbf")
    fresh = load_walk_arrays(path, use_cache=False)
    first = load_walk_arrays(path, cache_dir=tmp_path)
    cached = list((tmp_path / "networks").glob("*-arrays-*.pickle"))
    assert len(cached) == 1 and cached[0].name.startswith(file_sha256(path))
    second = load_walk_arrays(path, cache_dir=tmp_path)
    assert _same_arrays(first, fresh) and _same_arrays(second, fresh)
    assert list((tmp_path / "networks").glob("*.pickle")) == cached
    # the second load is served from that file, not parsed again: plant another area's arrays under the key
    other = shared_data("osm/beijing_wangjing/map.osm.pbf")
    other_cache = tmp_path / "elsewhere"
    load_walk_arrays(other, cache_dir=other_cache)
    shutil.copyfile(next((other_cache / "networks").glob("*.pickle")), cached[0])
    assert _same_arrays(load_walk_arrays(path, cache_dir=tmp_path), load_walk_arrays(other, use_cache=False))
    # a cached network in another CRS is the same as a fresh one
    assert _same_arrays(load_walk_arrays(other, cache_dir=other_cache, to_crs="EPSG:3857"),
                        load_walk_arrays(other, use_cache=False, to_crs="EPSG:3857"))


def test_an_edited_map_is_parsed_again_not_served_from_the_cache(tmp_path):
    original = shared_data("osm/beijing_bupt/map.osm")
    edited = tmp_path / "map.osm"
    text = original.read_text(encoding="utf-8")
    # the planner closes one footway for construction
    assert 'k="highway" v="footway"' in text
    edited.write_text(text.replace('k="highway" v="footway"', 'k="highway" v="construction"', 1), encoding="utf-8")
    before = load_walk_arrays(original, cache_dir=tmp_path / "cache")
    after = load_walk_arrays(edited, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "networks").glob("*-arrays-*.pickle"))) == 2
    assert _same_arrays(after, load_walk_arrays(edited, use_cache=False))
    assert network_summary(after)["walkable_km"] < network_summary(before)["walkable_km"]


def _by_node_id(net: reach.NetworkArrays) -> tuple[dict, dict]:
    """Nodes {id: (x, y)} and edges {(id, id, length): [(vertices low id → high id, ferry), …]}."""
    nodes = {int(i): (x, y) for i, x, y in zip(net.node_ids.tolist(), net.node_x.tolist(), net.node_y.tolist())}
    edges: dict = {}
    for e, geometry in enumerate(net.edge_geometry):
        u, v = int(net.node_ids[net.edge_u[e]]), int(net.node_ids[net.edge_v[e]])
        vertices = shapely.get_coordinates(geometry)
        if u > v:
            u, v, vertices = v, u, vertices[::-1]
        key = (u, v, round(float(net.edge_length_m[e]), 6))
        edges.setdefault(key, []).append((vertices, bool(net.edge_ferry[e])))
    return nodes, edges


@pytest.mark.parametrize(
    ("extract", "to_crs"),
    [("osm/beijing_bupt/map.osm.pbf", "EPSG:3857"),
     # Nanjing lies in UTM zone 50N; the neighbouring zone 51N
     ("osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf", "EPSG:32651"),
     # the demo in a CGCS2000 Gauss-Krüger zone, as a Chinese survey office would ask for it
     ("demo", "EPSG:4547")],
)
def test_arrays_asked_for_in_another_crs_match_the_projected_graph(extract, to_crs):
    path = _network_file(extract)
    direct = load_walk_arrays(path, use_cache=False, to_crs=to_crs)
    via_graph = reach.network_arrays(load_walk_network(path, use_cache=False, to_crs=to_crs))
    assert direct.crs == via_graph.crs == CRS.from_user_input(to_crs)
    # osmnx's project_graph rebuilds the graph edge by edge, which reorders its nodes; the direct
    # arrays keep the node order of the local-UTM network, so compare node by node id
    nodes, edges = _by_node_id(direct)
    expected_nodes, expected_edges = _by_node_id(via_graph)
    assert nodes.keys() == expected_nodes.keys()
    assert max(max(abs(nodes[n][0] - xy[0]), abs(nodes[n][1] - xy[1])) for n, xy in expected_nodes.items()) < 1e-6
    assert edges.keys() == expected_edges.keys()
    for key, expected in expected_edges.items():
        # duplicated OSM ways give more rows here (see above), every one the same street
        for vertices, ferry in edges[key]:
            assert ferry == expected[0][1]
            assert vertices.shape == expected[0][0].shape
            assert np.abs(vertices - expected[0][0]).max() < 1e-6


def test_a_graphml_network_reaches_the_arrays_through_its_graph():
    path = shared_data("osm/shenzhen_tbd_graphml/G.graphml")
    net = load_walk_arrays(path, use_cache=False)
    assert _same_arrays(net, reach.network_arrays(load_walk_network(path, use_cache=False)))
    assert net.crs.to_epsg() == 32650


def test_arrays_from_an_unknown_or_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "streets.txt"
    bad.write_text("not a network")
    with pytest.raises(InputDataError, match="streets.txt"):
        load_walk_arrays(bad, use_cache=False)
    with pytest.raises(InputDataError, match="missing.osm.pbf"):
        load_walk_arrays(tmp_path / "missing.osm.pbf", use_cache=False)


@pytest.mark.parametrize("extract", ["demo", "osm/beijing_haidian_thu_pku/map.osm"])
def test_the_arrays_keep_each_streets_osm_name_as_the_graph_does(extract):
    path = _network_file(extract)
    direct = load_walk_arrays(path, use_cache=False)
    via_graph = reach.network_arrays(load_walk_network(path, use_cache=False))
    assert direct.edge_name is not None and any(direct.edge_name)
    # the same names on the same stretches (rows keyed by ends and length, as _rows does)
    def named(net):
        return {(min(u, v), max(u, v), round(float(length), 6)): name for u, v, length, name in
                zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_length_m.tolist(), net.edge_name.tolist())}
    a, b = named(direct), named(via_graph)
    shared = set(a) & set(b)
    assert len(shared) > 0.95 * len(b)
    assert all(a[k] == b[k] for k in shared)


def test_street_lengths_are_rounded_to_the_centimetre_exactly_as_python_rounds_them():
    """The summary's walkable km sums lengths rounded by Python's round(); the array rounding must give the same floats."""
    from coverage.network import _round_like_python

    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.uniform(0, 5000, 200_000),
        # halves and their neighbours, where scaling by 100 can cross the half
        np.arange(0, 20_000) / 200.0,
        np.nextafter(np.arange(0, 20_000) / 200.0, np.inf),
        np.nextafter(np.arange(0, 20_000) / 200.0, -np.inf),
        [0.125, 0.375, 2.675, 1.005, 1e6 + 0.005],
    ])
    assert _round_like_python(values, 2).tolist() == [round(v, 2) for v in values.tolist()]
