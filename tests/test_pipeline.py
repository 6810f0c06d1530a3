"""Does the batch job on the demo county give figures a planner can trust and hand on?"""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import numpy as np
import openpyxl
import osmnx as ox
import pandas as pd
import pytest
import shapely

from coverage import ingest
from coverage.config import load_study
from coverage.network import load_walk_network
from coverage.pipeline import run_study
from coverage.report import SYNTHETIC_LABEL
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_run")
    config = load_study(DEMO, output_root=out)
    return run_study(config)


def test_demo_writes_the_table_workbook_map_and_run_record(demo_run):
    out = Path(demo_run.config.output_dir)
    for name in ("coverage_by_area.csv", "villages.csv", "facilities.csv", "rejects.csv", "demo_coverage.xlsx",
                 "demo_layers.gpkg", "demo_map.html", "run.json"):
        assert (out / name).exists(), name


def _independent_seconds(graph, facility_xy, home_xy, speed, ferry):
    """
    Walking seconds by osmnx's nearest_edges (for attaching points) and
    networkx's Dijkstra (for the route), without any of our reach code.
    """
    undirected = ox.convert.to_undirected(graph)
    walk_only = graph.copy()
    walk_only.remove_edges_from([(u, v, k) for u, v, k, d in graph.edges(keys=True, data=True) if d.get("ferry")])
    routing = nx.Graph()
    for u, v, data in undirected.edges(data=True):
        if data.get("ferry"):
            seconds = ferry.wait_seconds + data["length"] / ferry.speed_mps
        else:
            seconds = data["length"] / speed
        if not routing.has_edge(u, v) or routing[u][v]["w"] > seconds:
            routing.add_edge(u, v, w=seconds)

    def attach(g, name, x, y):
        u, v, k = ox.distance.nearest_edges(walk_only, x, y)
        data = walk_only.edges[u, v, k]
        start = (graph.nodes[u]["x"], graph.nodes[u]["y"])
        line = data.get("geometry") or shapely.LineString([start, (graph.nodes[v]["x"], graph.nodes[v]["y"])])
        point = shapely.Point(x, y)
        # metres from u along the street (osmnx stores each direction with its own geometry)
        along = line.project(point, normalized=True) * data["length"]
        if line.coords[0] != start:
            along = data["length"] - along
        access = line.distance(point)
        g.add_edge(name, u, w=(access + along) / speed)
        g.add_edge(name, v, w=(access + data["length"] - along) / speed)
        # the same street seen from either direction: measure from its lower node id
        from_low = along if u < v else data["length"] - along
        return (min(u, v), max(u, v), round(data["length"], 3)), from_low, access

    facility_edges = []
    for i, (x, y) in enumerate(facility_xy):
        facility_edges.append(attach(routing, ("facility", i), x, y))
    seconds = []
    for x, y in home_xy:
        g = routing.copy()
        home_edge = attach(g, "home", x, y)
        for i, (edge, along, access) in enumerate(facility_edges):
            if edge == home_edge[0]:
                g.add_edge(("facility", i), "home", w=(access + abs(along - home_edge[1]) + home_edge[2]) / speed)
        lengths = nx.multi_source_dijkstra_path_length(g, [("facility", i) for i in range(len(facility_xy))],
                                                       weight="w")
        seconds.append(lengths.get("home", np.inf))
    return np.array(seconds)


def test_demo_walking_times_agree_with_osmnx_and_networkx_to_the_second(demo_run):
    config = demo_run.config
    graph = load_walk_network(config.network)
    crs = graph.graph["crs"]
    day_care = demo_run.facilities[ingest.has_kind(demo_run.facilities, "day_care")].to_crs(crs)
    facility_xy = shapely.get_coordinates(day_care.geometry.values)
    seconds = demo_run.seconds_by_kind["day_care"]
    reached = np.flatnonzero(np.isfinite(seconds))
    sample = np.random.default_rng(11).choice(reached, size=60, replace=False)
    home_xy = shapely.get_coordinates(demo_run.demand_projected.geometry.values[sample])
    expected = _independent_seconds(graph, facility_xy, home_xy, config.parameters.speed_for("day_care"),
                                    config.parameters.ferry)
    assert np.max(np.abs(seconds[sample] - expected)) < 1.0


def test_the_printed_facility_line_adds_up_to_the_rows_read(demo_run):
    """What the run prints: 70 rows in = located + presence-only + rejected + not open today, no term missing."""
    import re

    from coverage.cli import _summary_lines

    line = next(text for text in _summary_lines(demo_run) if "rows in =" in text)
    rows_in, terms = line.split("rows in =")
    terms = re.sub(r"\([^)]*\)", "", terms)  # the "(n fixed or inferred)" aside is not a term
    numbers = [int(n) for n in re.findall(r"(?:^|\+)\s*(\d+)", terms)]
    assert int(re.findall(r"\d+", rows_in)[-1]) == sum(numbers) == 70, line
    assert "9 not open today 未投用" in line


def test_every_row_of_the_facility_table_is_accounted_for(demo_run):
    record = json.loads((Path(demo_run.config.output_dir) / "run.json").read_text(encoding="utf-8"))
    rows = record["counts"]["facility_rows"]
    # rows in = located (in sites) + presence-only + rejected + not open today (在建 / 规划 / 停业, coverage.timeline)
    assert rows["rows_in"] == rows["located"] + rows["presence_only"] + rows["rejected"] + rows["not_open"] == 70
    assert rows["not_open"] == 9 and rows["evaluation_year"] is None
    assert rows["rejected"] == len(pd.read_csv(Path(demo_run.config.output_dir) / "rejects.csv",
                                               encoding="utf-8-sig")["来源行号"].unique())
    assert rows["located"] == int(demo_run.facilities["n_records"].sum())
    assert rows["sites"] == len(demo_run.facilities) == rows["located"] - rows["merged_records"]
    # the demo canteen without coordinates names its community: it counts there, not for walking
    presence = pd.read_csv(Path(demo_run.config.output_dir) / "presence_only.csv", encoding="utf-8-sig", dtype=str)
    assert rows["presence_only"] == len(presence) == 1
    assert demo_run.presence_only["village_code"].tolist() == ["429901002004"]
    village = demo_run.villages.set_index("code").loc["429901002004"]
    assert village["n_canteen"] >= 1  # the village has a canteen, whatever the walk


def test_run_record_names_inputs_with_checksums_versions_and_stage_timings(demo_run):
    record = json.loads((Path(demo_run.config.output_dir) / "run.json").read_text(encoding="utf-8"))
    assert record["synthetic"] is True and record["data_label"] == SYNTHETIC_LABEL
    for entry in record["inputs"].values():
        assert len(entry["sha256"]) == 64
    assert {"numpy", "osmnx", "geopandas", "scipy"} <= set(record["versions"])
    assert {"network", "reach", "population"} <= set(record["timings_seconds"])
    assert record["configuration"]["parameters"]["walk_speed_mps"] == 0.8


def test_the_calibrated_elderly_total_matches_the_census_table(demo_run):
    census = pd.read_csv(demo_run.config.population.census, encoding="utf-8-sig", dtype={"区划代码": str})
    towns = census[census["区划代码"].str.endswith("000") & ~census["区划代码"].str.endswith("000000")]
    assert demo_run.demand_projected["elderly"].sum() == pytest.approx(towns["60岁及以上人口"].sum(), abs=1.0)


def test_coverage_shares_are_weighted_by_elderly_persons(demo_run):
    wide = demo_run.coverage_wide
    study = wide[(wide["scope"] == "study") & (wide["kind"] == "day_care")].iloc[0]
    seconds = demo_run.seconds_by_kind["day_care"]
    elderly = demo_run.demand_projected["elderly"].to_numpy()
    assert study["share_15min"] == pytest.approx(elderly[seconds <= 900].sum() / elderly.sum())
    # urban and rural together make up the whole study
    by_area = wide[(wide["scope"] == "urban_rural") & (wide["kind"] == "day_care")]
    assert by_area["elderly"].sum() == pytest.approx(elderly.sum())
    # a longer walk never covers fewer people
    assert study["share_5min"] <= study["share_10min"] <= study["share_15min"]


def test_the_island_without_facilities_is_reported(demo_run):
    components = demo_run.components
    island = components[(components["component"] >= 0) & (components["facilities_total"] == 0)]
    assert len(island) == 1 and island["elderly"].iloc[0] > 100
    assert bool(island["ferry_linked"].iloc[0])
    assert any("no facility" in note for note in demo_run.notes)


def test_every_table_and_the_map_say_synthetic_demo_data(demo_run):
    out = Path(demo_run.config.output_dir)
    for csv in out.glob("*.csv"):
        table = pd.read_csv(csv, encoding="utf-8-sig")
        if len(table):
            assert (table["数据说明"] == SYNTHETIC_LABEL).all(), csv.name
    workbook = openpyxl.load_workbook(out / "demo_coverage.xlsx", read_only=True)
    for sheet in workbook.worksheets:
        assert SYNTHETIC_LABEL in str(next(sheet.iter_rows(max_row=1, values_only=True))[0]), sheet.title
    assert "合成示例数据" in (out / "demo_map.html").read_text(encoding="utf-8")


def test_workbook_has_the_planners_sheets_with_chinese_headers(demo_run):
    workbook = openpyxl.load_workbook(Path(demo_run.config.output_dir) / "demo_coverage.xlsx", read_only=True)
    assert {"总览", "乡镇街道", "村社区", "设施", "未覆盖", "参数", "敏感性"} <= set(workbook.sheetnames)
    headers = next(workbook["村社区"].iter_rows(min_row=2, max_row=2, values_only=True))
    assert "区划代码" in headers and "老年人口(人)" in headers


def test_two_runs_on_the_same_inputs_give_identical_tables(demo_run, tmp_path):
    again = run_study(load_study(DEMO, output_root=tmp_path), make_map=False)
    first, second = Path(demo_run.config.output_dir), Path(again.config.output_dir)
    for csv in sorted(first.glob("*.csv")):
        assert csv.read_bytes() == (second / csv.name).read_bytes(), csv.name
    book_a = openpyxl.load_workbook(first / "demo_coverage.xlsx", read_only=True)
    book_b = openpyxl.load_workbook(second / "demo_coverage.xlsx", read_only=True)
    for name in book_a.sheetnames:
        assert list(book_a[name].iter_rows(values_only=True)) == list(book_b[name].iter_rows(values_only=True))


def test_english_headers_on_request(tmp_path):
    results = run_study(load_study(DEMO, output_root=tmp_path), lang="en", make_map=False)
    table = pd.read_csv(Path(results.config.output_dir) / "villages.csv", encoding="utf-8-sig")
    assert {"code", "name", "elderly"} <= set(table.columns)


def test_without_a_raster_census_totals_go_onto_the_buildings_of_the_osm_file(tmp_path):
    study = tmp_path / "no_raster.yaml"
    text = DEMO.read_text(encoding="utf-8").replace("../data/", str(REPO_ROOT / "data") + "/")
    text = "\n".join(line for line in text.splitlines() if "rasters:" not in line)
    study.write_text(text, encoding="utf-8")
    results = run_study(load_study(study, output_root=tmp_path), make_map=True)
    demand = results.demand_projected
    assert set(demand["method"]) <= {"buildings", "uniform"} and "buildings" in set(demand["method"])
    # no raster was used: neither the parameters table nor the map credits WorldPop
    parameters = pd.read_csv(Path(results.config.output_dir) / "parameters.csv", encoding="utf-8-sig")
    assert not parameters.astype(str).apply(lambda column: column.str.contains("WorldPop")).any().any()
    assert "OpenStreetMap" in parameters.to_string()
    assert "WorldPop" not in (Path(results.config.output_dir) / "demo_map.html").read_text(encoding="utf-8")
    census = pd.read_csv(results.config.population.census, encoding="utf-8-sig", dtype={"区划代码": str})
    towns = census[census["区划代码"].str.endswith("000") & ~census["区划代码"].str.endswith("000000")]
    assert demand["elderly"].sum() == pytest.approx(towns["60岁及以上人口"].sum(), abs=1.0)
    record = json.loads((Path(results.config.output_dir) / "run.json").read_text(encoding="utf-8"))
    assert record["counts"]["population_method"].startswith("census totals over buildings")


def test_gap_layers_hold_every_uncovered_elderly_person_per_kind_and_threshold(demo_run):
    import pyogrio

    from coverage.outputs import gap_cells

    gpkg = Path(demo_run.config.output_dir) / "demo_layers.gpkg"
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert {"gap_canteen_15min", "gap_mutual_aid_5min", "gap_any_10min"} <= layers
    # the written gap layers are dissolved areas (one polygon per group of neighbouring cells), not cells
    assert not {"gap_canteen_15min_cells"} & layers
    elderly = demo_run.demand_projected["elderly"].to_numpy()
    for kind, minutes in (("canteen", 15), ("day_care", 5)):
        written = pyogrio.read_dataframe(gpkg, layer=f"gap_{kind}_{minutes}min")
        expected = elderly[~(demo_run.seconds_by_kind[kind] <= minutes * 60)].sum()
        assert written["elderly"].sum() == pytest.approx(expected)
        assert len(written) < written["cells"].sum()
    # per-cell polygons stay available (parameters.gap_cells: true writes them as gap_<kind>_<minutes>min_cells)
    for kind, minutes in (("canteen", 15), ("day_care", 5)):
        cells = gap_cells(demo_run, kind, minutes)
        expected = elderly[~(demo_run.seconds_by_kind[kind] <= minutes * 60)].sum()
        assert cells["elderly"].sum() == pytest.approx(expected)
        # 100 m cells of the population grid (0.000833° ≈ 80 × 93 m here)
        area_m2 = cells.to_crs(demo_run.demand_projected.crs).area
        assert area_m2.between(6_000, 10_000).all()


def test_isochrones_per_facility_on_request(tmp_path):
    import dataclasses

    config = load_study(DEMO, output_root=tmp_path)
    config = dataclasses.replace(config, parameters=dataclasses.replace(config.parameters,
                                                                        isochrones_per_facility=True))
    results = run_study(config, make_map=False)
    areas = results.facility_isochrones
    assert set(areas["minutes"]) == {5.0, 10.0, 15.0}
    assert areas["facility_id"].nunique() == len(results.facilities)
    # a longer walk reaches at least as far, for each facility
    utm = results.demand_projected.crs
    for _, group in areas.to_crs(utm).groupby("facility_id"):
        sizes = group.sort_values("minutes").area.to_numpy()
        assert (sizes[1:] >= sizes[:-1] - 1.0).all()


def test_gap_on_h3_hexagons_on_request(demo_run):
    from coverage.outputs import gap_hexagons

    hexagons = gap_hexagons(demo_run, "canteen", 15, resolution=9)
    elderly = demo_run.demand_projected["elderly"].to_numpy()
    assert hexagons["elderly"].sum() == pytest.approx(elderly[~(demo_run.seconds_by_kind["canteen"] <= 900)].sum())
    area_m2 = hexagons.to_crs(demo_run.demand_projected.crs).area
    assert area_m2.between(80_000, 130_000).all()  # resolution 9 ≈ 0.105 km²


def test_the_sensitivity_sheet_at_the_studys_own_speed_repeats_the_main_figures(demo_run):
    """And a faster walk never covers fewer people; a slower one, computed afresh, never more."""
    from coverage import reach
    from coverage.pipeline import kind_masks

    sensitivity = demo_run.sensitivity
    wide = demo_run.coverage_wide
    speed = demo_run.config.parameters.walk_speed_mps
    assert speed in set(sensitivity["walk_speed_mps"])
    for kind in demo_run.config.parameters.kinds:
        study = wide[(wide["scope"] == "study") & (wide["kind"] == kind)].iloc[0]
        rows = sensitivity[(sensitivity["kind"] == kind) & (sensitivity["threshold"] == 15)]
        by_speed = rows.set_index("walk_speed_mps")["share"].sort_index()
        assert by_speed.loc[speed] == pytest.approx(study["share_15min"], abs=1e-12)
        assert by_speed.is_monotonic_increasing
    # the slowest speed, recounted independently for day care with one nearest_facility pass
    from coverage.pipeline import prepare_inputs

    slowest = min(sensitivity["walk_speed_mps"])
    inputs = prepare_inputs(demo_run.config)
    mask = kind_masks(inputs.facilities, ["day_care"])["day_care"]
    seconds = reach.nearest_facility(inputs.net, inputs.facility_snap.subset(np.flatnonzero(mask)),
                                     inputs.demand_snap, walk_speed_mps=slowest, limit=900.0,
                                     ferry=demo_run.config.parameters.ferry)["cost"].to_numpy()
    elderly = inputs.demand["elderly"].to_numpy()
    row = sensitivity[(sensitivity["kind"] == "day_care") & (sensitivity["threshold"] == 15)
                      & (sensitivity["walk_speed_mps"] == slowest)].iloc[0]
    assert row["share"] == pytest.approx(elderly[seconds <= 900].sum() / elderly.sum(), abs=1e-12)


def test_a_broken_population_raster_stops_the_run_and_the_isochrones_already_started(tmp_path):
    """The isochrones start as soon as the facilities are on the network; a bad raster read after that still ends it all."""
    import dataclasses
    import threading

    from coverage._errors import InputDataError

    import shutil

    config = load_study(DEMO, output_root=tmp_path)
    rasters = []
    for raster in config.population.rasters:
        rasters.append(Path(shutil.copy(raster, tmp_path / raster.name)))
    broken = rasters[-1]
    broken.write_bytes(b"not a GeoTIFF, a file cut short by a download")
    config = dataclasses.replace(config, population=dataclasses.replace(config.population, rasters=tuple(rasters)))
    before = {thread.ident for thread in threading.enumerate()}
    with pytest.raises(InputDataError) as failure:
        run_study(config, write=False)
    assert broken.name in str(failure.value)
    drawing = [thread for thread in threading.enumerate()
               if thread.ident not in before and thread.name.startswith("isochrones")]
    for thread in drawing:  # started, told to stop: it ends after the kind it had in hand
        thread.join(timeout=30)
        assert not thread.is_alive()


@pytest.mark.parametrize("extract", ["beijing_bupt/map.osm.pbf"])
def test_the_sensitivity_speeds_from_one_distance_search_are_those_of_a_search_per_speed(extract, tmp_path):
    """A real extract without ferry lines: metres over speed give the same shares as walking at each speed."""
    import geopandas as gpd

    from coverage import reach
    from coverage.kind_reach import compute_reach
    from coverage.network import load_walk_arrays
    from coverage.study_tables import _sensitivity
    from tests.conftest import shared_data

    net = load_walk_arrays(shared_data(f"osm/{extract}"), cache_dir=tmp_path)
    assert not net.edge_ferry.any()
    rng = np.random.default_rng(29)
    low, high = (net.node_x.min(), net.node_y.min()), (net.node_x.max(), net.node_y.max())
    facility_snap = reach.snap_points(net, rng.uniform(low, high, (30, 2)), max_access_m=500)
    homes = rng.uniform(low, high, (4000, 2))
    demand_snap = reach.snap_points(net, homes, max_access_m=500)
    demand = gpd.GeoDataFrame({"elderly": rng.uniform(0, 20, len(homes))},
                              geometry=gpd.points_from_xy(homes[:, 0], homes[:, 1]), crs=net.crs)
    config = load_study(DEMO, output_root=tmp_path)
    params = config.parameters
    masks = {"day_care": np.arange(30) % 3 == 0, "canteen": np.arange(30) % 3 == 1, "any": np.ones(30, bool)}
    table = _sensitivity(net, facility_snap, demand_snap, masks, demand, config)
    elderly = demand["elderly"].to_numpy()
    checked = 0
    for speed in params.sensitivity_speeds_mps:
        per_speed, _ = compute_reach(net, facility_snap, demand_snap, masks, config, speed_override=speed)
        for kind, seconds in per_speed.items():
            for minutes in params.thresholds_min:
                row = table[(table["walk_speed_mps"] == speed) & (table["kind"] == kind)
                            & (table["threshold"] == minutes)].iloc[0]
                assert row["elderly_within"] == float(elderly[seconds <= minutes * 60.0].sum())
                checked += row["elderly_within"] > 0
    assert checked > 20
