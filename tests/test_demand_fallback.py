"""Demand without a population raster, as a planner would accept it: homes only in homes, totals on points kept."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage import dwellings, maps
from coverage.config import load_study
from tests.conftest import REPO_ROOT, shared_data

DEMO = REPO_ROOT / "studies" / "demo.yaml"
NANJING = "osm/nanjing_xuanwu_sumo/osm_bbox.osm.xml"
NANJING_UTM = "EPSG:32650"

#: building=* values that hold homes (OSM wiki, "Key:building", accommodation)
HOME_BUILDINGS = {"residential", "apartments", "house", "detached", "dormitory", "terrace", "semidetached_house",
                  "bungalow"}
#: building=* values that never hold homes (the wiki's commercial, civic and other groups)
NOT_HOME_BUILDINGS = {"commercial", "retail", "office", "industrial", "school", "university", "college",
                      "hospital", "public", "civic", "hotel", "kindergarten", "train_station", "warehouse"}
#: keys whose presence on a building says what else it is used for
USE_KEYS = {"shop", "office", "amenity", "healthcare", "tourism", "leisure", "craft"}


def _osm_ways(path: Path) -> list[dict]:
    """Closed ways of an OSM XML file as {tags, polygon}, read with the standard library (not with the project)."""
    root = ET.parse(path).getroot()
    nodes = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    ways = []
    for way in root.iter("way"):
        refs = [nd.get("ref") for nd in way.iter("nd")]
        tags = {t.get("k"): t.get("v") for t in way.iter("tag")}
        if len(refs) < 4 or refs[0] != refs[-1] or not all(r in nodes for r in refs):
            continue
        polygon = shapely.make_valid(shapely.Polygon([nodes[r] for r in refs]))
        if polygon.area > 0:
            ways.append({"tags": tags, "polygon": polygon})
    return ways


@pytest.fixture(scope="module")
def nanjing_footprints():
    """Buildings of the Nanjing extract sorted, independently of coverage.population, into homes and the rest."""
    ways = _osm_ways(shared_data(NANJING))
    residential_land = shapely.union_all([w["polygon"] for w in ways if w["tags"].get("landuse") == "residential"])
    other_land = shapely.union_all([w["polygon"] for w in ways
                                    if w["tags"].get("landuse") in {"commercial", "retail", "industrial"}])
    homes, not_homes, unknown = [], [], []
    for way in ways:
        tags = way["tags"]
        building = tags.get("building")
        if building is None or building == "no":
            continue
        inside = shapely.point_on_surface(way["polygon"])
        if tags.get("shop") in {"mall", "department_store"} or building in NOT_HOME_BUILDINGS:
            not_homes.append(way["polygon"])
        elif building in HOME_BUILDINGS:
            homes.append(way["polygon"])
        elif USE_KEYS & set(tags) or other_land.contains(inside):  # a shop, office, bank … or on commercial land
            not_homes.append(way["polygon"])
        elif building == "yes" and residential_land.contains(inside):
            homes.append(way["polygon"])
        else:  # a building=yes outside residential land use: not known to hold homes
            unknown.append(way["polygon"])
    return tuple(gpd.GeoSeries(group, crs=4326).to_crs(NANJING_UTM) for group in (homes, not_homes, unknown))


def test_the_extract_has_the_shops_and_malls_the_test_is_about(nanjing_footprints):
    homes, not_homes, unknown = nanjing_footprints
    tags = [w["tags"] for w in _osm_ways(shared_data(NANJING))]
    assert sum(t.get("shop") in {"mall", "department_store"} for t in tags) >= 5
    assert sum(t.get("landuse") == "commercial" for t in tags) >= 20
    assert len(homes) > 300 and len(not_homes) > 250 and len(unknown) > 300


def test_the_buildings_fallback_puts_no_one_in_a_shop_mall_office_or_school(nanjing_footprints):
    homes, not_homes, unknown = nanjing_footprints
    buildings = dwellings.read_osm_buildings(shared_data(NANJING))
    # the whole extract as two zones (west and east of 118.778 E)
    zones = gpd.GeoDataFrame({"code": ["west", "east"]},
                             geometry=[shapely.box(118.750, 32.025, 118.778, 32.065),
                                       shapely.box(118.778, 32.025, 118.805, 32.065)], crs=4326)
    totals = {"west": 12_000.0, "east": 9_000.0}
    points = dwellings.distribute_to_buildings(zones, totals, buildings, working_crs=NANJING_UTM)

    # every person is placed, zone by zone
    per_zone = points.groupby("zone_code")["elderly"].sum()
    for code, total in totals.items():
        assert per_zone[code] == pytest.approx(total, rel=1e-12)
    assert points["elderly"].sum() == pytest.approx(21_000.0, rel=1e-12)

    placed = np.asarray(points.geometry.values)
    in_other, _ = shapely.STRtree(np.asarray(not_homes.values)).query(placed, predicate="within")
    assert len(in_other) == 0, f"{len(np.unique(in_other))} demand points in shops, malls, offices, schools …"
    # nor in a plain building=yes outside residential land use (an untagged shop as likely as a home)
    in_unknown, _ = shapely.STRtree(np.asarray(unknown.values)).query(placed, predicate="within")
    assert len(in_unknown) == 0
    on_buildings = placed[(points["method"] == "buildings").to_numpy()]
    in_home, _ = shapely.STRtree(np.asarray(homes.values)).query(on_buildings, predicate="within")
    assert np.unique(in_home).size == len(on_buildings)  # each one on a home footprint
    assert set(points["method"]) == {"buildings"}


def test_a_zone_without_homes_gets_an_even_spread_outside_shops_and_offices(nanjing_footprints):
    _, not_homes, _ = nanjing_footprints
    buildings = dwellings.read_osm_buildings(shared_data(NANJING))
    # pretend no building holds homes: the whole total goes on the uniform grid
    offices = buildings.assign(use=np.where(buildings["use"] == "residential", "unknown", buildings["use"]))
    zone = gpd.GeoDataFrame({"code": ["all"]}, geometry=[shapely.box(118.756, 32.030, 118.800, 32.059)], crs=4326)
    points = dwellings.distribute_to_buildings(zone, {"all": 5_000.0}, offices, working_crs=NANJING_UTM)
    assert set(points["method"]) == {"uniform"}
    assert points["elderly"].sum() == pytest.approx(5_000.0, rel=1e-12)
    in_other, _ = shapely.STRtree(np.asarray(not_homes.values)).query(np.asarray(points.geometry.values),
                                                                      predicate="within")
    assert len(in_other) == 0


# ------------------------------------------------------------------ census totals on community points

#: community offices (村/社区委员会) of a made-up two-street district on the Nanjing extract, WGS-84
OFFICES = {"320102001001": (118.763, 32.037), "320102001002": (118.772, 32.050), "320102001003": (118.762, 32.053),
           "320102002001": (118.783, 32.040), "320102002002": (118.792, 32.036), "320102002003": (118.788, 32.052)}
TOTALS = {"320102001001": 2100, "320102001002": 1800, "320102001003": 2500, "320102002001": 1700,
          "320102002002": 2300, "320102002003": 1900}
WEST = shapely.box(118.758, 32.032, 118.778, 32.057)
EAST = shapely.box(118.778, 32.032, 118.798, 32.057)


def _points_study(tmp_path: Path, *, with_outlines: bool = True) -> Path:
    """Street polygons (towns), community points with census totals, no raster, on the real Nanjing streets."""
    rows = []
    if with_outlines:
        rows += [{"code": "320102000000", "name": "玄武区（测试）", "geometry": shapely.union_all([WEST, EAST])},
                 {"code": "320102001000", "name": "西街道", "geometry": WEST},
                 {"code": "320102002000", "name": "东街道", "geometry": EAST}]
    rows += [{"code": code, "name": f"社区{i + 1}", "ur_code": 111, "geometry": shapely.Point(xy)}
             for i, (code, xy) in enumerate(OFFICES.items())]
    gpd.GeoDataFrame(rows, crs=4326).to_file(tmp_path / "units.geojson", driver="GeoJSON")
    pd.DataFrame({"区划代码": list(TOTALS), "60岁及以上人口": list(TOTALS.values())}).to_csv(
        tmp_path / "census.csv", index=False, encoding="utf-8-sig")
    pd.DataFrame({"名称": ["西街道日间照料中心", "东街道日间照料中心", "玄武门长者食堂"],
                  "类型": ["日间照料中心", "日间照料中心", "长者食堂"],
                  "经度": [118.768, 118.786, 118.775], "纬度": [32.045, 32.044, 32.050]}).to_csv(
        tmp_path / "facilities.csv", index=False, encoding="utf-8-sig")
    study = tmp_path / "study.yaml"
    study.write_text(
        "study: {name: nanjing_points, title: 南京玄武社区点位测试}\n"
        "inputs:\n"
        f"  network: {shared_data('osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf')}\n"
        f"  facilities: [{{path: {tmp_path / 'facilities.csv'}, crs: wgs84}}]\n"
        f"  units: {{path: {tmp_path / 'units.geojson'}, crs: wgs84}}\n"
        "  population:\n"
        f"    census: {{path: {tmp_path / 'census.csv'}, code_column: 区划代码, total_column: 60岁及以上人口, "
        "level: village}\n"
        "targets: [national, panjin_2018]\n", encoding="utf-8")
    return study


def test_census_totals_on_community_points_go_to_their_voronoi_cells(tmp_path):
    from coverage.pipeline import prepare_inputs

    notes: list[str] = []
    inputs = prepare_inputs(load_study(_points_study(tmp_path), output_root=tmp_path), notes=notes)
    demand = inputs.demand
    # each office's total is on its own cell, and nothing is lost
    per_cell = demand.groupby("zone_code")["elderly"].sum()
    assert per_cell.to_dict() == pytest.approx({code: float(total) for code, total in TOTALS.items()}, rel=1e-9)
    assert demand["elderly"].sum() == pytest.approx(sum(TOTALS.values()), rel=1e-9)
    assert any("points, not polygons" in note and "Voronoi" in note for note in notes)

    # a Voronoi cell is where its office is the nearest one of its street: check each demand point by distance
    offices = gpd.GeoDataFrame({"code": list(OFFICES)}, geometry=[shapely.Point(xy) for xy in OFFICES.values()],
                               crs=4326).to_crs(demand.crs)
    office_xy = shapely.get_coordinates(offices.geometry.values)
    street_of = offices["code"].str[:9].to_numpy()
    for point, code in zip(demand.geometry, demand["zone_code"].astype(str)):
        same_street = street_of == code[:9]
        distances = np.hypot(office_xy[:, 0] - point.x, office_xy[:, 1] - point.y)
        distances[~same_street] = np.inf
        assert offices["code"].iloc[int(np.argmin(distances))] == code
    # and inside its street's outline (cells are clipped to the parent polygon)
    streets = gpd.GeoSeries([WEST, EAST], crs=4326).to_crs(demand.crs)
    west = demand["zone_code"].astype(str).str.startswith("320102001")
    assert shapely.contains_xy(streets.iloc[0], demand.geometry.x[west], demand.geometry.y[west]).all()
    assert shapely.contains_xy(streets.iloc[1], demand.geometry.x[~west], demand.geometry.y[~west]).all()


def test_voronoi_zones_clip_to_the_study_area_without_parent_polygons():
    points = gpd.GeoDataFrame({"code": ["a", "b", "c"], "parent_code": ["x", "x", "x"]},
                              geometry=[shapely.Point(118.76, 32.04), shapely.Point(118.79, 32.04),
                                        shapely.Point(118.775, 32.055)], crs=4326)
    area = shapely.box(118.756, 32.030, 118.800, 32.059)
    cells = dwellings.voronoi_zones(points, working_crs=NANJING_UTM, area=area)
    assert list(cells["code"]) == ["a", "b", "c"] and set(cells["clip"]) == {"study area"}
    area_m = gpd.GeoSeries([area], crs=4326).to_crs(NANJING_UTM).iloc[0]
    # the cells tile the study area: no gap, no overlap
    assert cells.area.sum() == pytest.approx(area_m.area, rel=1e-6)
    assert shapely.union_all(cells.geometry.values).symmetric_difference(area_m).area < 1.0
    own = points.to_crs(NANJING_UTM)
    assert all(cell.contains(point) for cell, point in zip(cells.geometry, own.geometry))


def test_points_with_no_outline_at_all_share_out_the_street_networks_extent(tmp_path):
    from coverage.pipeline import prepare_inputs

    config = load_study(_points_study(tmp_path, with_outlines=False), output_root=tmp_path)
    census = pd.read_csv(config.population.census, encoding="utf-8-sig")
    notes: list[str] = []
    inputs = prepare_inputs(config, notes=notes)
    assert any("extent of the street network" in note for note in notes)
    assert inputs.demand["elderly"].sum() == pytest.approx(census.iloc[:, 1].sum())


def test_a_census_level_the_units_do_not_have_is_named_with_the_levels_they_have(tmp_path):
    from coverage._errors import InputDataError
    from coverage.pipeline import prepare_inputs

    study = _points_study(tmp_path)
    study.write_text(study.read_text(encoding="utf-8").replace("level: village", "level: county"), encoding="utf-8")
    with pytest.raises(InputDataError) as raised:
        prepare_inputs(load_study(study, output_root=tmp_path))
    text = str(raised.value)
    # the census file, the field to check and the level are named (the wording is the census matcher's)
    assert "census.csv" in text and "code_column" in text and "county" in text


# ------------------------------------------------------------------ who is credited for the population


def test_worldpop_is_credited_only_when_a_raster_gave_the_population(tmp_path):
    from coverage.proposal_outputs import write_proposal
    from coverage.proposals import propose_sites

    assert any("WorldPop" in line for line in maps.data_attribution_lines("raster, calibrated to census"))
    assert not any("WorldPop" in line for line in maps.data_attribution_lines("census totals over buildings"))

    no_raster = tmp_path / "no_raster.yaml"
    text = DEMO.read_text(encoding="utf-8").replace("../data/", str(REPO_ROOT / "data") + "/")
    no_raster.write_text("\n".join(line for line in text.splitlines() if "rasters:" not in line), encoding="utf-8")
    raster = tmp_path / "raster.yaml"
    raster.write_text(text, encoding="utf-8")
    pages = {}
    for name, study in (("census", no_raster), ("raster", raster)):
        proposal = propose_sites(load_study(study, output_root=tmp_path / name), kind="canteen", add=1)
        pages[name] = Path(write_proposal(proposal)["siting_canteen_15min_map.html"]).read_text(encoding="utf-8")
    assert "WorldPop" not in pages["census"] and "普查数" in pages["census"]
    assert "WorldPop" in pages["raster"]
