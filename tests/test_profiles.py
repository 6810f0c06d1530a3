"""Do travel profiles give the right seconds: driving as osmnx times it, one-way streets, e-bikes, today's walking?"""

from __future__ import annotations

import re

import networkx as nx
import numpy as np
import osmnx as ox
import pytest
import shapely
from pyproj import Geod
from scipy.sparse.csgraph import dijkstra

from coverage import profiles, reach
from coverage.config import FerryPolicy
from coverage.network import load_walk_arrays
from coverage.reach import HIGHWAY_CLASSES
from tests.conftest import REPO_ROOT, shared_data

#: the committed synthetic demo network: the only network here with a ferry line
DEMO_NETWORK = REPO_ROOT / "data" / "demo" / "demo_walk.osm"

#: osmnx's "drive" filter on the tags besides highway (Overpass "!~": the regex found anywhere in the value)
_DRIVE_TAG_FILTER = {
    "area": "yes", "access": "private", "motor_vehicle": "no", "motorcar": "no",
    "service": "alley|driveway|emergency_access|parking|parking_aisle|private",
}


def _osmnx_drive_graph(path, speeds_kph: dict[str, float], monkeypatch) -> nx.MultiDiGraph:
    """
    Independent answer: the unsimplified directed osmnx graph of the file, cut to the drivable
    ways of the profile's classes, timed with ``add_edge_speeds`` / ``add_edge_travel_times``.
    """
    # the tags the filter needs; no maxspeed, so the class speeds alone decide (as in the profile)
    monkeypatch.setattr(ox.settings, "useful_tags_way",
                        ["highway", "oneway", "junction", "route", *_DRIVE_TAG_FILTER])
    graph = ox.graph_from_xml(path, bidirectional=False, simplify=False, retain_all=True)
    drop = [
        (u, v, k) for u, v, k, data in graph.edges(keys=True, data=True)
        if data.get("highway") not in speeds_kph
        or any(re.search(pattern, str(data.get(tag, ""))) for tag, pattern in _DRIVE_TAG_FILTER.items())
    ]
    graph.remove_edges_from(drop)
    # the edge lengths of the project's definition (ground metres), measured independently: the
    # WGS-84 geodesic between the edge's ends (osmnx's own great-circle lengths are off by up to 0.4 %)
    edges = list(graph.edges(keys=True))
    lon0, lat0, lon1, lat1 = (np.array([graph.nodes[e[i]][c] for e in edges]) for i, c in
                              ((0, "x"), (0, "y"), (1, "x"), (1, "y")))
    _, _, geodesic = Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)
    nx.set_edge_attributes(graph, dict(zip(edges, geodesic.tolist())), "length")
    graph = ox.add_edge_speeds(graph, hwy_speeds=speeds_kph)
    return ox.add_edge_travel_times(graph)


@pytest.mark.parametrize(
    "extract",
    ["osm/shenzhen_longgang_klein4c/map.osm", "osm/beijing_haidian_cau/map.osm", "osm/jiangxi_guixi/mapofgx.osm"],
)
def test_driving_seconds_agree_with_osmnx_travel_times_on_the_one_way_graph(extract, monkeypatch):
    path = shared_data(extract)
    net = load_walk_arrays(path, use_cache=False, ways="drive")
    assert not net.edge_ferry.any()
    assert (net.edge_oneway != 0).sum() > 10  # the comparison means something for one-way streets
    forward, backward = profiles.edge_costs(net, "drive")
    times = dijkstra(reach.network_csgraph(net, forward, backward), directed=True,
                     indices=np.linspace(0, net.n_nodes - 1, 6).astype(int))

    graph = _osmnx_drive_graph(path, profiles.DRIVE_SPEEDS_KPH, monkeypatch)
    reached = 0
    for row, source in enumerate(np.linspace(0, net.n_nodes - 1, 6).astype(int)):
        expected = nx.single_source_dijkstra_path_length(graph, int(net.node_ids[source]), weight="travel_time")
        expected = np.array([expected.get(int(node), np.inf) for node in net.node_ids.tolist()])
        finite = np.isfinite(expected)
        assert np.array_equal(np.isfinite(times[row]), finite)
        # equal to 1 ms over drives of up to an hour: the ground metres are the geodesic to 5e-8
        assert np.max(np.abs(times[row][finite] - expected[finite])) < 1e-3
        reached += int(finite.sum()) - 1
    assert reached > 50


def _one_way_edge(net: reach.NetworkArrays, forward: np.ndarray, classes: tuple[str, ...]) -> int:
    """A one-way (u → v) edge of these classes, usable forward, at least 50 m long."""
    codes = [HIGHWAY_CLASSES.index(name) for name in classes]
    candidates = np.flatnonzero((net.edge_oneway == 1) & np.isin(net.edge_highway, codes)
                                & np.isfinite(forward) & (net.edge_length_m > 50.0))
    assert len(candidates)
    return int(candidates[0])


def test_a_one_way_street_binds_the_car_and_not_the_pedestrian():
    path = shared_data("osm/beijing_bupt/map.osm.pbf")
    drive = load_walk_arrays(path, use_cache=False, ways="drive")
    forward, backward = profiles.edge_costs(drive, "drive")
    e = _one_way_edge(drive, forward, ("tertiary", "residential"))
    a, b = int(drive.edge_u[e]), int(drive.edge_v[e])
    assert np.isfinite(forward[e]) and np.isinf(backward[e])
    times = dijkstra(reach.network_csgraph(drive, forward, backward), directed=True, indices=[a, b])
    a_to_b, b_to_a = times[0, b], times[1, a]
    # straight down the street, at the class's speed (km/h → m/s)
    kph = profiles.DRIVE_SPEEDS_KPH[HIGHWAY_CLASSES[drive.edge_highway[e]]]
    assert a_to_b == pytest.approx(drive.edge_length_m[e] / (kph / 3.6), abs=1e-9)
    assert b_to_a > a_to_b + 1.0  # a detour round the block, or no way back at all

    # on foot the same two street corners are as far apart either way
    walk = load_walk_arrays(path, use_cache=False)
    assert (walk.edge_oneway != 0).any()  # the rule is known, and ignored
    w_forward, w_backward = profiles.edge_costs(walk, "walk_elderly")
    assert np.array_equal(w_forward, w_backward)
    position = {node: i for i, node in enumerate(walk.node_ids.tolist())}
    wa, wb = position[int(drive.node_ids[a])], position[int(drive.node_ids[b])]
    walked = dijkstra(reach.network_csgraph(walk, w_forward, w_backward), directed=True, indices=[wa, wb])
    assert np.isfinite(walked[0, wb])
    assert walked[0, wb] == pytest.approx(walked[1, wa], abs=1e-9)


def test_a_home_down_a_one_way_street_from_the_facility_is_driven_to_directly_and_not_the_other_way():
    drive = load_walk_arrays(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False, ways="drive")
    forward, backward = profiles.edge_costs(drive, "drive")
    e = _one_way_edge(drive, forward, ("tertiary", "residential"))
    line = drive.edge_geometry[e]
    upstream = shapely.get_coordinates(shapely.line_interpolate_point(line, 0.25, normalized=True))
    downstream = shapely.get_coordinates(shapely.line_interpolate_point(line, 0.75, normalized=True))
    snap_up, snap_down = reach.snap_points(drive, upstream), reach.snap_points(drive, downstream)
    assert snap_up.edge[0] == snap_down.edge[0] == e
    along = profiles.nearest_facility(drive, snap_up, snap_down, "drive", limit=np.inf)["cost"].iloc[0]
    stretch = (snap_down.fraction[0] - snap_up.fraction[0]) * forward[e]
    access = (snap_up.access_m[0] + snap_down.access_m[0]) / profiles.DRIVE.access_speed_mps
    assert along == pytest.approx(stretch + access, abs=1e-9)
    against = profiles.nearest_facility(drive, snap_down, snap_up, "drive", limit=np.inf)["cost"].iloc[0]
    assert against > along + 1.0
    # the catchment pass gives the same directed seconds
    catchment = reach.catchment_matrix(drive, snap_up, snap_down, walk_speed_mps=profiles.DRIVE.access_speed_mps,
                                       limit=1e9, edge_seconds=(forward, backward))
    assert catchment[0, 0] == pytest.approx(along, abs=1e-9)


def test_the_ebike_never_rides_a_motorway_or_trunk_road():
    net = load_walk_arrays(shared_data("osm/shenzhen_longgang_klein4c/map.osm.pbf"), use_cache=False, ways="all")
    banned = np.isin(net.edge_highway, [HIGHWAY_CLASSES.index(name) for name in
                                        ("motorway", "motorway_link", "trunk", "trunk_link")])
    assert banned.sum() > 50
    forward, backward = profiles.edge_costs(net, "ebike")
    assert np.isinf(forward[banned]).all() and np.isinf(backward[banned]).all()
    # the car does use them
    car_forward, car_backward = profiles.edge_costs(net, "drive")
    assert (np.isfinite(car_forward[banned]) | np.isfinite(car_backward[banned])).all()

    # every link of the e-bike's shortest-path trees is a permitted edge, at its own seconds
    sources = np.linspace(0, net.n_nodes - 1, 5).astype(int)
    times, predecessors = dijkstra(reach.network_csgraph(net, forward, backward), directed=True, indices=sources,
                                   return_predecessors=True)
    allowed = {}
    for u, v, f, b in zip(net.edge_u.tolist(), net.edge_v.tolist(), forward.tolist(), backward.tolist()):
        allowed[(u, v)] = min(allowed.get((u, v), np.inf), f)
        allowed[(v, u)] = min(allowed.get((v, u), np.inf), b)
    links = 0
    for row in range(len(sources)):
        for node in np.flatnonzero(predecessors[row] >= 0).tolist():
            parent = int(predecessors[row, node])
            assert np.isfinite(allowed.get((parent, node), np.inf))
            assert times[row, node] - times[row, parent] == pytest.approx(allowed[(parent, node)], abs=1e-6)
            links += 1
    assert links > 100


@pytest.mark.parametrize("extract", ["osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf", "demo"])
@pytest.mark.parametrize(("profile", "speed"), [("walk_elderly", 0.8), ("walk_frail", 0.6), ("walk_standard", 1.1)])
def test_the_walking_profiles_reproduce_todays_walking_seconds(extract, profile, speed):
    net = load_walk_arrays(DEMO_NETWORK if extract == "demo" else shared_data(extract), use_cache=False)
    ferry = FerryPolicy(enabled=True, wait_seconds=900.0, speed_mps=4.0)
    forward, backward = profiles.edge_costs(net, profile, ferry=ferry)
    today = reach.edge_costs(net, walk_speed_mps=speed, ferry=ferry)
    assert np.array_equal(forward, today) and np.array_equal(backward, today)
    if extract == "demo":
        assert net.edge_ferry.any() and np.isfinite(forward[net.edge_ferry]).all()

    rng = np.random.default_rng(11)
    x0, x1 = np.percentile(net.node_x, [2, 98])
    y0, y1 = np.percentile(net.node_y, [2, 98])
    facilities = reach.snap_points(net, np.column_stack([rng.uniform(x0, x1, 8), rng.uniform(y0, y1, 8)]))
    homes = reach.snap_points(net, np.column_stack([rng.uniform(x0, x1, 2000), rng.uniform(y0, y1, 2000)]))
    ours = profiles.nearest_facility(net, facilities, homes, profile, limit=np.inf, ferry=ferry)
    expected = reach.nearest_facility(net, facilities, homes, walk_speed_mps=speed, limit=np.inf, ferry=ferry)
    reached = np.isfinite(expected["cost"].to_numpy())
    assert reached.sum() > 1000
    assert np.array_equal(np.isfinite(ours["cost"].to_numpy()), reached)
    assert np.max(np.abs(ours["cost"].to_numpy()[reached] - expected["cost"].to_numpy()[reached])) < 1e-9
    assert np.array_equal(ours["facility_index"], expected["facility_index"])


def test_the_driving_network_is_cached_beside_the_walking_one(tmp_path):
    path = shared_data("osm/beijing_bupt/map.osm.pbf")
    walk = load_walk_arrays(path, cache_dir=tmp_path)
    drive = profiles.load_profile_network(path, "drive", cache_dir=tmp_path)
    assert len(list((tmp_path / "networks").glob("*-arrays-*.pickle"))) == 2
    again = load_walk_arrays(path, cache_dir=tmp_path, ways="drive")
    assert np.array_equal(again.edge_oneway, drive.edge_oneway)
    assert np.array_equal(again.edge_highway, drive.edge_highway)
    assert np.array_equal(again.edge_length_m, drive.edge_length_m)
    # the walking network keeps its ways; the driving one has the trunk link a pedestrian may not use
    assert np.array_equal(load_walk_arrays(path, cache_dir=tmp_path).node_ids, walk.node_ids)
    trunk_link = HIGHWAY_CLASSES.index("trunk_link")
    assert (drive.edge_highway == trunk_link).any() and not (walk.edge_highway == trunk_link).any()


def test_a_profile_snaps_homes_only_to_roads_it_may_use():
    net = load_walk_arrays(shared_data("osm/shenzhen_longgang_klein4c/map.osm.pbf"), use_cache=False, ways="all")
    usable = profiles.usable_network(net, "ebike")
    assert usable.n_nodes == net.n_nodes and 0 < usable.n_edges < net.n_edges
    forward, backward = profiles.edge_costs(usable, "ebike")
    assert (np.isfinite(forward) | np.isfinite(backward)).all()


def test_a_profile_with_a_wrong_class_or_speed_is_refused_with_its_name():
    with pytest.raises(ValueError, match="highway_street"):
        profiles.TravelProfile("bus", "公交", "bus", network="drive", highway_speeds_mps={"highway_street": 5.0})
    with pytest.raises(ValueError, match="speed_mps or highway_speeds_mps"):
        profiles.TravelProfile("odd", "奇", "odd")
    with pytest.raises(ValueError, match="positive"):
        profiles.TravelProfile("slow", "慢", "slow", speed_mps=0.0)
    with pytest.raises(KeyError, match="walk_elderly"):
        profiles.get_profile("tram")


def test_arrays_from_a_graph_know_a_street_stored_one_way_only():
    graph = nx.MultiDiGraph(crs="EPSG:32650")
    for node, x in ((1, 0.0), (2, 100.0), (3, 200.0)):
        graph.add_node(node, x=x, y=0.0)
    graph.add_edge(1, 2, length=100.0, highway="residential")
    graph.add_edge(2, 1, length=100.0, highway="residential")
    # osmnx's simplification can merge classes into a list; GraphML writes it as text
    graph.add_edge(3, 2, length=100.0, highway="['trunk', 'primary']")
    net = reach.network_arrays(graph)
    assert net.edge_oneway.tolist() == [0, -1] or net.edge_oneway.tolist() == [0, 1]
    # the one-way row runs from the node it may be entered at
    row = int(np.flatnonzero(net.edge_oneway != 0)[0])
    start = net.edge_u[row] if net.edge_oneway[row] == 1 else net.edge_v[row]
    assert net.node_ids[start] == 3
    assert [HIGHWAY_CLASSES[c] for c in net.edge_highway] == ["residential", "trunk"]
    forward, backward = profiles.edge_costs(net, "drive")
    assert np.isinf(np.where(net.edge_oneway[row] == 1, backward[row], forward[row]))


def test_a_table_can_say_which_mode_a_figure_used():
    walk = profiles.describe("walk_elderly")
    assert walk == {"profile": "walk_elderly", "label_zh": "老年人步行", "label_en": "walking (older adult)",
                    "network": "walk", "speed_mps": "0.8", "oneway": False}
    drive = profiles.describe(profiles.DRIVE)
    assert drive["oneway"] and drive["network"] == "drive" and "motorway 22.22 (80 km/h)" in drive["speed_mps"]
