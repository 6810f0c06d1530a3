"""Can a proposed site end up in a lake, on a bridge or in a protected area? Checked on real OSM extracts."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import osmnx as ox
import pandas as pd
import pytest
import shapely

from coverage import coords, exclusions
from coverage._errors import InputDataError
from coverage.config import ExclusionSource
from coverage.coords import utm_crs_for
from tests.conftest import REPO_ROOT, shared_data

THU_PKU = "osm/beijing_haidian_thu_pku/map.osm"
DEMO_OSM = REPO_ROOT / "data" / "demo" / "demo_walk.osm"


@pytest.fixture(scope="module")
def campus_water():
    return exclusions.read_osm_water(shared_data(THU_PKU))


def test_lakes_mapped_as_ways_and_as_relations_are_read_like_osmnx_reads_them(campus_water):
    """Independent reader: osmnx's own features_from_xml with the natural=water tag."""
    assert set(campus_water["osm_type"]) == {"way", "relation"}
    theirs = ox.features_from_xml(shared_data(THU_PKU), tags={"natural": "water"})
    theirs = theirs[theirs.geom_type.isin(["Polygon", "MultiPolygon"])]
    ours_ids = {(t, i) for t, i in zip(campus_water["osm_type"], campus_water["osm_id"])}
    their_ids = {(t, int(i)) for t, i in theirs.index}
    assert ours_ids == their_ids
    crs = utm_crs_for(116.31, 40.0)
    ours_area = campus_water.to_crs(crs).area.sum()
    their_area = theirs.to_crs(crs).area.sum()
    assert ours_area == pytest.approx(their_area, rel=1e-3)


def test_the_same_water_comes_from_the_xml_and_the_pbf_export(campus_water):
    from_pbf = exclusions.read_osm_water(shared_data(THU_PKU + ".pbf"))
    assert sorted(from_pbf["osm_id"]) == sorted(campus_water["osm_id"])
    crs = utm_crs_for(116.31, 40.0)
    assert from_pbf.to_crs(crs).area.sum() == pytest.approx(campus_water.to_crs(crs).area.sum(), rel=1e-9)


def test_an_island_in_the_river_is_land_not_water():
    water = exclusions.read_osm_water(DEMO_OSM)
    river = water.geometry.iloc[0]
    holes = [ring for polygon in river.geoms for ring in polygon.interiors]
    assert len(holes) == 1, "the island 江心洲 is the relation's inner ring"
    island_centre = shapely.Polygon(holes[0]).representative_point()
    assert not river.contains(island_centre)
    assert river.contains(shapely.Polygon(river.geoms[0].exterior).difference(
        shapely.Polygon(holes[0]).buffer(0.002)).representative_point())


def test_water_read_once_is_served_from_the_cache_by_file_content(tmp_path):
    first = exclusions.read_osm_water(shared_data(THU_PKU), cache_dir=tmp_path)
    cached = list((tmp_path / "water").glob("*.pickle"))
    assert len(cached) == 1
    # plant another file's water under this file's key: a second read must return it (the cache is read)
    other = exclusions.read_osm_water(DEMO_OSM, use_cache=False)
    other.to_pickle(cached[0])
    assert list(exclusions.read_osm_water(shared_data(THU_PKU), cache_dir=tmp_path)["name"]) == list(other["name"])
    fresh = exclusions.read_osm_water(shared_data(THU_PKU), use_cache=False)
    assert sorted(fresh["osm_id"]) == sorted(first["osm_id"])


def test_a_graphml_network_has_no_water_to_read():
    assert exclusions.read_osm_water(shared_data("osm/shenzhen_tbd_graphml/G.graphml")).empty


def _candidates_at(lonlat: np.ndarray, crs) -> gpd.GeoDataFrame:
    points = gpd.GeoSeries(gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs="EPSG:4326").to_crs(crs)
    return gpd.GeoDataFrame({"candidate_id": [f"c{i}" for i in range(len(lonlat))], "source": "candidate table",
                             "name": [f"候选{i}" for i in range(len(lonlat))]}, geometry=points.values, crs=crs)


def test_every_candidate_is_kept_or_excluded_with_the_first_reason_that_applies(campus_water, tmp_path):
    crs = utm_crs_for(116.31, 40.0)
    lake = campus_water.to_crs(crs).sort_values("osm_id").geometry
    in_lake = np.array(shapely.get_coordinates(gpd.GeoSeries(lake.representative_point().values, crs=crs)
                                               .to_crs("EPSG:4326").values))
    land = np.array([[116.3100, 40.0000], [116.3200, 40.0050], [116.3000, 39.9950], [116.5, 40.3]])
    lonlat = np.vstack([land, in_lake])
    candidates = _candidates_at(lonlat, crs)
    study_area = shapely.box(116.28, 39.98, 116.34, 40.02)
    study_area = gpd.GeoSeries([study_area], crs="EPSG:4326").to_crs(crs).iloc[0]
    # a protected green given by the planner, in GCJ-02 like most Chinese GIS layers
    green_wgs = shapely.Point(116.3200, 40.0050).buffer(0.001)
    gx, gy = coords.from_wgs84(*np.asarray(green_wgs.exterior.coords).T, "gcj02")
    path = tmp_path / "ecological_redline.geojson"
    gpd.GeoDataFrame({"名称": ["绿地"]}, geometry=[shapely.Polygon(np.column_stack([gx, gy]))],
                     crs="EPSG:4326").to_file(path)
    areas = exclusions.read_exclusion_layers([ExclusionSource(path=path, crs="gcj02", label="生态保护红线")])
    on_network = np.ones(len(candidates), dtype=bool)
    on_network[2] = False

    keep, excluded = exclusions.screen_candidates(candidates, study_area=study_area, water=campus_water,
                                                  exclusion_areas=areas, on_network=on_network, max_access_m=500)

    assert keep.sum() + len(excluded) == len(candidates)
    reasons = dict(zip(excluded["candidate_id"], excluded["reason"]))
    assert keep[0] and "c0" not in reasons
    assert reasons["c1"] == exclusions.REASON_EXCLUDED
    assert excluded.set_index("candidate_id").loc["c1", "detail"] == "生态保护红线"
    assert reasons["c2"] == exclusions.REASON_OFF_NETWORK
    assert reasons["c3"] == exclusions.REASON_OUTSIDE
    for i in range(len(land), len(lonlat)):
        assert reasons[f"c{i}"] == exclusions.REASON_WATER
    # positions reported in WGS-84, to find the spot
    row = excluded.set_index("candidate_id").loc["c3"]
    assert (row["lon"], row["lat"]) == pytest.approx((116.5, 40.3), abs=1e-6)


def test_without_any_exclusion_every_candidate_is_kept(campus_water):
    crs = utm_crs_for(116.31, 40.0)
    candidates = _candidates_at(np.array([[116.31, 40.0], [116.32, 40.01]]), crs)
    keep, excluded = exclusions.screen_candidates(candidates)
    assert keep.all() and excluded.empty and list(excluded.columns) == exclusions.EXCLUDED_COLUMNS


def test_an_exclusion_layer_of_points_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "not_polygons.geojson"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[shapely.Point(116.3, 40.0)], crs="EPSG:4326").to_file(path)
    with pytest.raises(InputDataError) as info:
        exclusions.read_exclusion_layers([ExclusionSource(path=path)])
    assert "not_polygons.geojson" in str(info.value) and "polygon" in str(info.value).lower()


def test_rejected_rows_of_a_candidate_table_are_listed_with_file_row_and_column():
    rejects = [
        {"source_file": "/x/候选建筑.xlsx", "source_row": 5, "column": "经度", "reason": "经纬度超出中国范围",
         "detail": "lon=300", "raw": ""},
        {"source_file": "/x/候选建筑.xlsx", "source_row": 5, "column": "纬度", "reason": "空值", "detail": "",
         "raw": ""},
        {"source_file": "/x/候选建筑.xlsx", "source_row": 9, "column": "", "reason": "重复行", "detail": "",
         "raw": ""},
    ]
    table = exclusions.table_rejects_as_excluded(rejects)
    assert list(table["candidate_id"]) == ["table:5", "table:9"]
    assert (table["reason"] == exclusions.REASON_TABLE).all()
    assert table["detail"].iloc[0].startswith("候选建筑.xlsx row 5: column 经度")
    assert "column 纬度" in table["detail"].iloc[0]
    assert isinstance(table, pd.DataFrame)


def test_a_study_file_lists_its_exclusion_layers_and_a_missing_one_is_named(tmp_path):
    import yaml

    from coverage._errors import ConfigError
    from coverage.config import load_study

    study = yaml.safe_load((REPO_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8"))
    base = REPO_ROOT / "studies"
    for key in ("network", "units"):
        value = study["inputs"][key]
        if isinstance(value, dict):
            value["path"] = str((base / value["path"]).resolve())
        else:
            study["inputs"][key] = str((base / value).resolve())
    study["inputs"]["facilities"][0]["path"] = str((base / study["inputs"]["facilities"][0]["path"]).resolve())
    study["inputs"]["population"]["rasters"] = str((base / study["inputs"]["population"]["rasters"]).resolve())
    study["inputs"]["population"]["census"]["path"] = str(
        (base / study["inputs"]["population"]["census"]["path"]).resolve())
    gpd.GeoDataFrame({"名称": ["红线"]}, geometry=[shapely.box(113.9, 30.9, 113.91, 30.91)],
                     crs="EPSG:4326").to_file(tmp_path / "redline.geojson")
    study["inputs"]["exclusions"] = [{"path": "redline.geojson", "crs": "gcj02", "label": "生态保护红线"}]
    study["parameters"]["exclude_osm_water"] = False
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")

    config = load_study(tmp_path / "study.yaml")
    assert config.exclusions == (ExclusionSource(path=tmp_path / "redline.geojson", crs="gcj02",
                                                 label="生态保护红线"),)
    assert config.parameters.exclude_osm_water is False

    study["inputs"]["exclusions"] = ["missing.geojson"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"inputs.exclusions\[0\].path: file not found"):
        load_study(tmp_path / "study.yaml")
