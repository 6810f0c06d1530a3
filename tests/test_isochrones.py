"""Isochrones drawn in one vectorised pass: the same areas as the per-edge substring union, and in the kind's travel mode."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely
from shapely.ops import substring

from coverage import isochrones, profiles, reach
from coverage.config import ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES, ConfigError, FerryPolicy, load_study, parse_parameters
from coverage.network import load_walk_arrays
from coverage.pipeline import _isochrones, facility_isochrones, kind_masks, prepare_inputs
from tests.conftest import REPO_ROOT, shared_data

DEMO = REPO_ROOT / "studies" / "demo.yaml"


def _relative_difference(old, new) -> float:
    return shapely.symmetric_difference(old, new).area / old.area


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    config = load_study(DEMO, output_root=tmp_path_factory.mktemp("iso_demo"))
    return config, prepare_inputs(config)


def test_cut_lines_is_shapely_substring_for_many_lines_at_once():
    rng = np.random.default_rng(3)
    lines = np.array([shapely.LineString(np.cumsum(rng.normal(0, 10, (int(rng.integers(2, 9)), 2)), axis=0))
                      for _ in range(300)], dtype=object)
    start = rng.uniform(0, 0.6, len(lines))
    end = np.clip(start + rng.uniform(0.01, 0.6, len(lines)), 0, 1)
    start[:20], end[20:40] = 0.0, 1.0
    cut = isochrones.cut_lines(lines, start, end)
    for line, s, t, mine in zip(lines, start, end, cut):
        theirs = substring(line, s, t, normalized=True)
        assert mine.length == pytest.approx(theirs.length, rel=1e-9, abs=1e-9)
        assert shapely.hausdorff_distance(mine, theirs) < 1e-6


def test_demo_isochrones_match_the_per_edge_union(demo):
    config, inputs = demo
    params = config.parameters
    masks = kind_masks(inputs.facilities, params.kinds)
    new = _isochrones(inputs.net, inputs.facility_snap, masks, config, inputs.working_crs)
    assert len(new) and set(new["mode"]) == {"walk_elderly"}
    for row in new.itertuples():
        snap = inputs.facility_snap.subset(np.flatnonzero(masks[row.kind]))
        old = reach.isochrone_polygon(inputs.net, snap, walk_speed_mps=params.speed_for(row.kind),
                                      limit=row.minutes * 60.0, buffer_m=params.isochrone_buffer_m, ferry=params.ferry)
        assert _relative_difference(old, row.geometry) < 0.01, (row.kind, row.minutes)
    # every kind with a facility and each of its thresholds is drawn
    expected = {(kind, m) for kind, mask in masks.items() if kind != "any" and mask.any()
                for m in params.thresholds_for(kind)}
    assert set(zip(new["kind"], new["minutes"])) == expected


def test_a_county_sized_network_draws_only_the_headline_isochrones_the_map_shows(demo):
    """auto: every threshold on a district's streets, the headline only past 100,000 edges; all and headline as set."""
    config, inputs = demo
    params = dataclasses.replace(config.parameters, kind_thresholds_min={"nursing_home": (20.0, 30.0)})
    limit = ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES
    assert params.isochrone_minutes_for("day_care", limit) == (5.0, 10.0, 15.0)
    assert params.isochrone_minutes_for("day_care", limit + 1) == (15.0,)
    # a kind with its own thresholds, none of them the headline: its longest
    assert params.isochrone_minutes_for("nursing_home", limit + 1) == (30.0,)
    assert dataclasses.replace(params, isochrone_thresholds="all").isochrone_minutes_for("day_care", 10**6) \
        == (5.0, 10.0, 15.0)
    assert dataclasses.replace(params, isochrone_thresholds="headline").isochrone_minutes_for("day_care", 10) \
        == (15.0,)
    # the run draws what the rule gives, and the headline areas are those of a run drawing every threshold
    masks = kind_masks(inputs.facilities, params.kinds)
    headline_config = dataclasses.replace(
        config, parameters=dataclasses.replace(config.parameters, isochrone_thresholds="headline"))
    every = _isochrones(inputs.net, inputs.facility_snap, masks, config, inputs.working_crs)
    headline = _isochrones(inputs.net, inputs.facility_snap, masks, headline_config, inputs.working_crs)
    assert set(headline["minutes"]) == {15.0} and set(every["minutes"]) == {5.0, 10.0, 15.0}
    at_15 = every[every["minutes"] == 15.0].set_index("kind").geometry
    assert len(headline) == len(at_15)
    for row in headline.itertuples():
        assert _relative_difference(at_15[row.kind], row.geometry) < 1e-9, row.kind


def test_a_failed_run_stops_drawing_isochrones_after_the_kind_in_hand(demo):
    """The run sets the event when it fails: no further kind is drawn, so the command exits without waiting for them."""
    import threading

    config, inputs = demo
    masks = kind_masks(inputs.facilities, config.parameters.kinds)
    cancel = threading.Event()
    drawn = _isochrones(inputs.net, inputs.facility_snap, masks, config, inputs.working_crs, cancel=cancel)
    assert drawn["kind"].nunique() >= 3
    cancel.set()
    stopped = _isochrones(inputs.net, inputs.facility_snap, masks, config, inputs.working_crs, cancel=cancel)
    assert stopped.empty and list(stopped.columns) == list(drawn.columns)


def test_a_misspelt_isochrone_threshold_choice_is_a_clear_config_error():
    assert parse_parameters({"isochrone_thresholds": "ALL"}).isochrone_thresholds == "all"
    with pytest.raises(ConfigError, match="parameters.isochrone_thresholds"):
        parse_parameters({"isochrone_thresholds": "some"})


def test_demo_per_facility_isochrones_match_and_grow_with_the_threshold(demo):
    config, inputs = demo
    params = config.parameters
    areas = facility_isochrones(inputs.net, inputs.facilities, inputs.facility_snap, config, inputs.working_crs)
    assert set(areas["minutes"]) == set(params.thresholds_min)
    projected = areas.to_crs(inputs.working_crs)
    ids = inputs.facilities["facility_id"].to_numpy()
    for position in np.flatnonzero(inputs.facility_snap.on_network)[:12]:
        kind = str(inputs.facilities.iloc[position]["kinds"]).split(";")[0]
        for minutes in params.thresholds_min:
            old = reach.isochrone_polygon(inputs.net, inputs.facility_snap.subset([position]),
                                          walk_speed_mps=params.speed_for(kind), limit=minutes * 60.0,
                                          buffer_m=params.isochrone_buffer_m, ferry=params.ferry)
            new = projected[(projected["facility_id"] == ids[position]) & (projected["minutes"] == minutes)]
            assert len(new) == 1
            assert _relative_difference(old, new.geometry.iloc[0]) < 0.01


def test_per_facility_areas_do_not_depend_on_chunks_threads_or_the_thresholds_asked_together(demo):
    """isochrones_by_source: the same area per source whether its thresholds, chunks and threads are split or not."""
    config, inputs = demo
    params = config.parameters
    snap = inputs.facility_snap.subset(np.arange(min(40, len(inputs.facilities))))
    limits = [300.0, 600.0, 900.0]
    nested = isochrones.isochrones_by_source(inputs.net, snap, limits, walk_speed_mps=params.walk_speed_mps,
                                             buffer_m=params.isochrone_buffer_m, ferry=params.ferry, threads=2)
    # a small chunk size: sources split over several chunks give the same areas
    chunked = isochrones.isochrones_by_source(inputs.net, snap, limits, walk_speed_mps=params.walk_speed_mps,
                                              buffer_m=params.isochrone_buffer_m, ferry=params.ferry,
                                              max_cells=7 * inputs.net.n_nodes)
    compared = 0
    for limit in limits:
        alone = isochrones.isochrones_by_source(inputs.net, snap, [limit], walk_speed_mps=params.walk_speed_mps,
                                                buffer_m=params.isochrone_buffer_m, ferry=params.ferry)[limit]
        for mine, other, theirs in zip(nested[limit], chunked[limit], alone):
            assert mine.is_empty == theirs.is_empty == other.is_empty
            if not theirs.is_empty:
                assert _relative_difference(theirs, mine) < 1e-9
                assert _relative_difference(theirs, other) < 1e-9
                compared += 1
    assert compared > 60
    # each source's area grows with the threshold
    assert all(shapely.difference(a, b).area < 1e-9 * a.area for a, b in zip(nested[300.0], nested[900.0])
               if not a.is_empty)


@pytest.mark.parametrize("extract", ["beijing_bupt/map.osm.pbf", "shanghai_center/shanghai_center.osm.pbf"])
def test_real_extract_isochrones_match_the_per_edge_union(extract, tmp_path):
    """A scenario facility set on a real OSM extract (no elderly-care POIs exist there)."""
    net = load_walk_arrays(shared_data(f"osm/{extract}"), cache_dir=tmp_path)
    rng = np.random.default_rng(11)
    xy = np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 40),
                          rng.uniform(net.node_y.min(), net.node_y.max(), 40)])
    snap = reach.snap_points(net, xy, max_access_m=500)
    ferry = FerryPolicy()
    for minutes in (5, 15):
        old = reach.isochrone_polygon(net, snap, walk_speed_mps=0.8, limit=minutes * 60, buffer_m=50, ferry=ferry)
        new = isochrones.isochrone(net, snap, walk_speed_mps=0.8, limit=minutes * 60, buffer_m=50, ferry=ferry)
        assert _relative_difference(old, new) < 0.01
    each = isochrones.isochrones_by_source(net, snap.subset(np.arange(6)), [600.0], walk_speed_mps=0.8,
                                           buffer_m=50, ferry=ferry)[600.0]
    for i, polygon in enumerate(each):
        if not snap.on_network[i]:
            assert polygon.is_empty
            continue
        old = reach.isochrone_polygon(net, snap.subset([i]), walk_speed_mps=0.8, limit=600, buffer_m=50, ferry=ferry)
        assert _relative_difference(old, polygon) < 0.01


def test_a_kind_with_a_travel_profile_gets_isochrones_on_its_roads(demo):
    """Nursing homes by car: the area holds every road position the drive search reaches in time."""
    config, inputs = demo
    params = dataclasses.replace(config.parameters, kind_profiles={"nursing_home": "drive"},
                                 kind_thresholds_min={"nursing_home": (15.0, 30.0)})
    drive_config = dataclasses.replace(config, parameters=params)
    masks = kind_masks(inputs.facilities, params.kinds)
    frame = _isochrones(inputs.net, inputs.facility_snap, masks, drive_config, inputs.working_crs)
    nursing = frame[frame["kind"] == "nursing_home"]
    assert set(nursing["minutes"]) == {15.0, 30.0} and set(nursing["mode"]) == {"drive"}
    assert nursing["walk_speed_mps"].isna().all()
    walking = frame[frame["kind"] == "day_care"]
    assert set(walking["mode"]) == {"walk_elderly"}
    # the search the isochrone drew, checked against the profile's own nearest-facility search
    profile = params.travel_profile("nursing_home")
    positions = np.flatnonzero(masks["nursing_home"])
    xy = isochrones.snapped_positions(inputs.net, inputs.facility_snap)[positions]
    xy = xy[np.isfinite(xy[:, 0])]
    net, snap, seconds = isochrones.profile_network(drive_config, profile, xy, inputs.working_crs)
    demand_xy = shapely.get_coordinates(inputs.demand.geometry.values)
    demand_snap = reach.snap_points(net, demand_xy, max_access_m=params.max_access_m)
    cost = reach.nearest_facility(net, snap, demand_snap, walk_speed_mps=profile.access_speed_mps, limit=900.0,
                                  edge_seconds=seconds)["cost"].to_numpy()
    on_road = isochrones.snapped_positions(net, demand_snap)
    reached = np.isfinite(cost)
    assert reached.sum() > 100
    area = nursing[nursing["minutes"] == 15.0].geometry.iloc[0]
    inside = shapely.contains_xy(shapely.buffer(area, 1e-6), on_road[reached, 0], on_road[reached, 1])
    assert inside.all()
    # by car in 15 minutes reaches farther than an elderly walk in 15 minutes
    walk = reach.isochrone_polygon(inputs.net, inputs.facility_snap.subset(positions), walk_speed_mps=0.8,
                                   limit=900.0, buffer_m=params.isochrone_buffer_m, ferry=params.ferry)
    assert area.area > 2 * walk.area
    assert profiles.is_walking(profile) is False


def test_the_disjoint_subset_union_of_grid_cells_is_the_plain_union():
    """Buffered pieces in villages apart and a town across several grid cells: the same area as one union_all."""
    rng = np.random.default_rng(5)
    lines = []
    for cx, cy, n in ((0.0, 0.0, 300), (9000.0, 500.0, 40), (4000.0, 7000.0, 120)):
        start = rng.uniform(-1500, 1500, (n, 2)) + (cx, cy)
        step = rng.normal(0, 120, (n, 2))
        lines += [shapely.LineString([p, p + s]) for p, s in zip(start, step)]
    lines = np.array(lines, dtype=object)
    group = rng.integers(0, 3, len(lines))
    mine = isochrones.buffered_union(lines, 50.0, group=group, cell_m=700.0)
    for label in range(3):
        plain = shapely.union_all(shapely.buffer(lines[group == label], 50.0, quad_segs=reach.ISOCHRONE_QUAD_SEGS))
        assert shapely.is_valid(mine[label])
        assert _relative_difference(plain, mine[label]) < 1e-9
        assert shapely.get_num_geometries(mine[label]) == shapely.get_num_geometries(plain)


@pytest.mark.parametrize("extract", ["shanghai_center/shanghai_center.osm.pbf"])
def test_thresholds_built_on_each_other_give_the_areas_of_separate_isochrones(extract, tmp_path):
    """5, 10 and 15 minutes in one pass (each limit's cells unioned onto the shorter one's): the same areas as one by one."""
    net = load_walk_arrays(shared_data(f"osm/{extract}"), cache_dir=tmp_path)
    rng = np.random.default_rng(17)
    xy = np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 30),
                          rng.uniform(net.node_y.min(), net.node_y.max(), 30)])
    snap = reach.snap_points(net, xy, max_access_m=500)
    ferry = FerryPolicy()
    limits = [900.0, 300.0, 600.0]  # any order
    nested = isochrones.nested_isochrones(net, snap, limits, walk_speed_mps=0.8, buffer_m=50, ferry=ferry)
    for limit, area in zip(limits, nested):
        alone = isochrones.buffered_union(
            isochrones._lines(net, *isochrones.reached_pieces(
                net, snap, isochrones.node_seconds(net, snap, limit=limit, walk_speed_mps=0.8, ferry=ferry),
                limit=limit, walk_speed_mps=0.8, ferry=ferry)[:3]), 50.0)[0]
        assert shapely.is_valid(area)
        assert _relative_difference(alone, area) < 1e-9, limit
    assert nested[1].area < nested[2].area < nested[0].area


def test_the_areas_do_not_depend_on_the_number_of_threads():
    rng = np.random.default_rng(23)
    start = rng.uniform(0, 6000, (2000, 2))
    lines = np.array([shapely.LineString([p, p + s]) for p, s in zip(start, rng.normal(0, 150, (2000, 2)))],
                     dtype=object)
    group = rng.integers(0, 4, len(lines))
    one = isochrones.buffered_union(lines, 50.0, group=group, threads=1)
    several = isochrones.buffered_union(lines, 50.0, group=group, threads=3)
    assert [shapely.to_wkb(g) for g in one] == [shapely.to_wkb(g) for g in several]
