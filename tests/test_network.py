"""Does the walking network we build from OpenStreetMap hold the streets a pedestrian can use?"""

from __future__ import annotations

import networkx as nx
import osmnx as ox
import pytest

from coverage._errors import InputDataError
from coverage.network import graph_summary, is_walkable, load_walk_network
from tests.conftest import shared_data


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
