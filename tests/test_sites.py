"""Tests of coverage.sites: one site per facility or building, and points a geocoder fell back to."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from coverage import coords, ingest, sites
from coverage.config import KINDS
from tests.conftest import shared_data

# Jiang'an district, Wuhan (WGS-84 degrees): near 一元路 / 胜利街
CENTRE_LON, CENTRE_LAT = 114.2992, 30.5905
# the county seat point of 江岸区 in the division-code table (GCJ-02, code 420102000000)
JIANGAN_SEAT_GCJ = (114.309110, 30.600052)

CAPACITIES = ("beds", "nursing_beds", "floor_area_m2", "caregivers")


def offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    """A point shifted by metres east and north (small distances)."""
    return (lon + east_m / (111320.0 * math.cos(math.radians(lat))), lat + north_m / 110540.0)


def kinds_text(*kinds: str) -> str:
    """Kinds joined in the package's display order, as merged sites write them."""
    return ";".join(k for k in KINDS if k in kinds)


def facility_frame(records: list[dict]) -> gpd.GeoDataFrame:
    """
    Facility records as ``ingest.read_facilities`` returns them.

    Each record gives ``name``, ``kinds`` and either ``lonlat`` or metres
    ``east``/``north`` of the centre; ``file`` and ``row`` default to a
    bureau list read from row 3 on.
    """
    rows = []
    for number, record in enumerate(records):
        record = dict(record)
        file = record.pop("file", "江岸区民政局名单.xlsx")
        row = record.pop("row", number + 3)
        if "lonlat" in record:
            lon, lat = record.pop("lonlat")
        else:
            lon, lat = offset(CENTRE_LON, CENTRE_LAT, record.pop("east", 0.0), record.pop("north", 0.0))
        base = {column: None for column in ingest.FACILITY_COLUMNS if column != "geometry"}
        base.update({c: math.nan for c in CAPACITIES})
        base.update({"facility_id": f"{Path(file).stem}:{row}", "source_file": file, "source_row": row, "flags": ""})
        base.update(record)
        base["lon"], base["lat"] = lon, lat
        rows.append(base)
    frame = pd.DataFrame(rows)
    for column in CAPACITIES:
        frame[column] = frame[column].astype(float)
    frame["source_row"] = frame["source_row"].astype("int64")
    geometry = gpd.points_from_xy(frame.pop("lon"), frame.pop("lat"))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326)[list(ingest.FACILITY_COLUMNS)]


def assert_counts_kept(facilities: gpd.GeoDataFrame, result: sites.SitesResult) -> None:
    """Counts in = counts out, and every source row belongs to exactly one site."""
    assert len(facilities) == int(result.sites["n_records"].sum())
    assert len(result.merge_log) == len(facilities) - len(result.sites)
    refs_in = sorted(f"{f}:{r}" for f, r in zip(facilities["source_file"], facilities["source_row"]))
    refs_out = sorted(ref for text in result.sites["source_rows"] for ref in text.split(";"))
    assert refs_out == refs_in
    assert result.sites["site_id"].is_unique
    assert list(result.merge_log.columns) == list(sites.MERGE_LOG_COLUMNS)
    assert set(result.merge_log["reason"]) <= set(sites.MERGE_REASONS)
    assert result.sites.crs.to_epsg() == 4326
    inputs = [c for c in facilities.columns if c != "geometry"]
    assert list(result.sites.columns) == ["site_id", *inputs, "n_records", "source_rows", "geometry"]
    assert result.sites["n_records"].dtype == np.int64


def site_of(result: sites.SitesResult, ref: str) -> pd.Series:
    """The site row whose source rows include ``file:row``."""
    hits = result.sites[result.sites["source_rows"].str.split(";").map(lambda refs: ref in refs)]
    assert len(hits) == 1, ref
    return hits.iloc[0]


def write_csv(path: Path, rows: list[list[object]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


# ----------------------------------------------------------------------------- duplicates


# eight facilities of the district bureau list (WGS-84 metres from the centre) and the same eight in an
# Amap export: GCJ-02, pins a few metres off, names written the Amap way, one pin 45 m off at the gate
BUREAU = [
    # name, type, address, street, beds, floor area, east, north
    ("一元街道综合为老服务中心", "综合为老服务中心", "江岸区胜利街236号", "一元街道", 30, 1200, 0, 0),
    ("车站街道日间照料中心", "日间照料中心", "江岸区车站路58号", "车站街道", 10, 450, -420, 380),
    ("四唯街道老年食堂", "老年食堂", "江岸区四唯路19号", "四唯街道", "", 180, 700, 1050),
    ("永清街道仁义社区日间照料中心", "日间照料中心", "", "永清街道", 8, 320, 1000, 1700),
    ("西马街道高雄社区老年食堂", "老年食堂", "江岸区中山大道1186号", "西马街道", "", 150, -1200, 300),
    ("球场街道同庆阁社区日间照料中心", "日间照料中心", "江岸区球场街同庆阁小区内", "球场街道", 6, 300, -650, 320),
    ("江岸区社会福利院", "社会福利院", "江岸区解放大道1710号", "劳动街道", 260, 9800, -300, 1300),
    ("新村街道二七社区长者食堂", "长者食堂", "江岸区二七路88号", "新村街道", "", 200, 2800, 4300),
]
AMAP = [
    # name, type, address, east and north of the bureau point (metres)
    ("武汉市江岸区一元街道综合为老服务中心", "综合为老服务中心", "胜利街236号", 5, -3),
    ("车站街道日间照料中心(车站路店)", "日间照料中心", "车站路58号", -2, 4),
    ("四唯街老年食堂", "老年食堂", "四唯路19号", 6, 5),
    ("仁义社区日间照料中心", "日间照料中心", "江岸区沈阳路仁义社区", 3, -4),
    ("高雄社区长者食堂", "老年食堂", "江岸区中山大道1186号", 40, 20),
    ("同庆阁社区日间照料中心", "日间照料中心", "球场街同庆阁小区", -3, 0),
    ("武汉市江岸区社会福利院(解放大道院区)", "社会福利院", "解放大道1710号", 10, -7),
    ("二七社区长者食堂", "长者食堂", "二七路88号", 0, 5),
]
NEW_IN_AMAP = ("后湖苑社区老年食堂", "老年食堂", "江岸区后湖大道112号", -800, 5000)


def bureau_and_amap_files(folder: Path) -> tuple[Path, Path]:
    bureau_rows = [["江岸区养老服务设施名单（2024年）"],
                   ["序号", "机构名称", "设施类型", "地址", "所属街道", "床位数", "建筑面积（㎡）", "经度", "纬度"]]
    amap_rows = [["名称", "类型", "地址", "经纬度", "电话"]]
    for number, (bureau, amap) in enumerate(zip(BUREAU, AMAP), start=1):
        name, kind, address, street, beds, area, east, north = bureau
        lon, lat = offset(CENTRE_LON, CENTRE_LAT, east, north)
        bureau_rows.append([number, name, kind, address, street, beds, area, f"{lon:.6f}", f"{lat:.6f}"])
        a_name, a_kind, a_address, a_east, a_north = amap
        glon, glat = coords.wgs84_to_gcj02(*offset(lon, lat, a_east, a_north))
        amap_rows.append([a_name, a_kind, a_address, f"{glon:.6f},{glat:.6f}", "027-8283xxxx"])
    name, kind, address, east, north = NEW_IN_AMAP
    glon, glat = coords.wgs84_to_gcj02(*offset(CENTRE_LON, CENTRE_LAT, east, north))
    amap_rows.append([name, kind, address, f"{glon:.6f},{glat:.6f}", ""])
    return (write_csv(folder / "江岸区养老服务设施名单.csv", bureau_rows),
            write_csv(folder / "高德POI导出_江岸区养老.csv", amap_rows))


def test_a_bureau_list_and_an_amap_export_of_the_same_facilities_are_counted_once(tmp_path):
    bureau_path, amap_path = bureau_and_amap_files(tmp_path)
    bureau, bureau_rejects, _ = ingest.read_facilities(bureau_path, crs="wgs84")
    amap, amap_rejects, _ = ingest.read_facilities(amap_path, crs="gcj02")
    assert len(bureau_rejects) == 0 and len(amap_rejects) == 0
    facilities = gpd.GeoDataFrame(pd.concat([bureau, amap]), crs=4326)  # index labels repeat, as they do
    assert len(facilities) == 17

    result = sites.merge_sites(facilities)

    assert_counts_kept(facilities, result)
    assert len(result.sites) == 9  # 8 facilities listed twice, 1 only in the Amap export
    log = result.merge_log
    assert (log["reason"] == "duplicate").all() and len(log) == 8
    assert set(log["source_file"]) == {amap_path.name}
    for number, (name, _, _, _, beds, area, _, _) in enumerate(BUREAU, start=1):
        site = site_of(result, f"{bureau_path.name}:{number + 2}")  # a title row and a header row above
        assert site["n_records"] == 2
        assert site["name"] == name  # the bureau list comes first, its record is the main one
        assert site["source_rows"].split(";")[1].startswith(amap_path.name)
        # the same facility twice: its capacity is not doubled
        assert site["floor_area_m2"] == pytest.approx(float(area))
        assert (math.isnan(site["beds"]) if beds == "" else site["beds"] == pytest.approx(float(beds)))

    # the bureau list has no address for 仁义社区: the Amap record fills it
    assert site_of(result, f"{bureau_path.name}:6")["address"] == "江岸区沈阳路仁义社区"
    # the 高雄社区 pin is 45 m off with an unlike name: merged because the address is the same
    gaoxiong = log[log["name"] == "高雄社区长者食堂"].iloc[0]
    assert gaoxiong["distance_m"] > 30 and gaoxiong["name_similarity"] < 0.8
    assert "江岸区中山大道1186号" in gaoxiong["detail"] and "same address" in gaoxiong["detail"]
    assert gaoxiong["merged_into_name"] == "西马街道高雄社区老年食堂"
    # every log line explains itself in both languages and measures the distance in metres
    assert log["detail"].str.contains("same facility as").all() and log["detail"].str.contains("同一设施").all()
    assert (log["distance_m"] < 50).all() and (log["distance_m"] > 0).all()


def test_a_pin_that_misses_by_more_than_30_m_without_a_shared_address_stays_apart():
    # the control for the address rule above: same two names, 45 m apart, no address in common
    facilities = facility_frame([
        {"name": "西马街道高雄社区老年食堂", "kinds": "canteen", "address": "江岸区中山大道1186号"},
        {"name": "高雄社区长者食堂", "kinds": "canteen", "address": "中山大道1186号高雄社区", "east": 40, "north": 20,
         "file": "高德POI导出.csv", "row": 2},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 2


def test_day_care_centres_of_two_neighbouring_communities_20_m_apart_stay_two_sites():
    # difflib finds the names 80 % alike; the community (or the number) in the name tells them apart
    facilities = facility_frame([
        {"name": "民族社区日间照料中心", "kinds": "day_care", "east": 0.0},
        {"name": "满春社区日间照料中心", "kinds": "day_care", "east": 20.0},
        {"name": "第12号日间照料中心", "kinds": "day_care", "north": 300.0},
        {"name": "第13号日间照料中心", "kinds": "day_care", "north": 315.0},
        {"name": "解放路社区老年人日间照料中心", "kinds": "day_care", "north": 600.0},
        {"name": "解放路社区日间照料中心", "kinds": "day_care", "north": 608.0, "file": "高德POI.csv"},
    ])

    result = sites.merge_sites(facilities)

    assert_counts_kept(facilities, result)
    assert len(result.sites) == 5
    assert result.merge_log["name"].tolist() == ["解放路社区日间照料中心"]


def test_two_canteens_200_m_apart_with_the_same_chain_name_stay_two_sites():
    facilities = facility_frame([
        {"name": "爱心幸福食堂", "kinds": "canteen", "address": "江岸区胜利街236号", "caregivers": 3},
        {"name": "爱心幸福食堂", "kinds": "canteen", "address": "江岸区胜利街12号", "caregivers": 2, "north": 200},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 2 and result.merge_log.empty
    assert result.sites["caregivers"].tolist() == [3.0, 2.0]
    # the distance is what keeps them apart: allow 300 m and they are one canteen
    wide = sites.merge_sites(facilities, distance_m=300.0)
    assert len(wide.sites) == 1 and wide.merge_log["reason"].tolist() == ["duplicate"]
    assert wide.merge_log["distance_m"].iloc[0] == pytest.approx(200.0, abs=1.0)
    assert wide.sites["caregivers"].iloc[0] == 3.0  # the same facility's capacity is not added


def test_the_same_short_address_in_two_villages_does_not_merge_them():
    facilities = facility_frame([
        {"name": "张湾村农村互助养老服务站", "kinds": "mutual_aid", "address": "村委会", "village_name": "张湾村"},
        {"name": "李家墩村互助养老服务站", "kinds": "mutual_aid", "address": "村委会", "village_name": "李家墩村",
         "east": 3000},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 2


def test_a_chain_of_near_records_is_one_site_whatever_the_row_order():
    # A–B and B–C are 25 m apart, A–C 50 m: all three are one day-care centre listed three times
    records = [
        {"name": "同兴社区日间照料中心", "kinds": "day_care", "floor_area_m2": 300},
        {"name": "同兴社区日间照料中心", "kinds": "day_care", "north": 25, "file": "高德POI导出.csv", "row": 2},
        {"name": "同兴社区日间照料中心", "kinds": "day_care", "north": 50, "file": "百度地图导出.csv", "row": 2},
        {"name": "洞庭社区日间照料中心", "kinds": "day_care", "east": 800},
    ]
    facilities = facility_frame(records)
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert result.sites["n_records"].tolist() == [3, 1]
    assert result.sites["floor_area_m2"].iloc[0] == 300.0
    assert result.merge_log["merged_into_name"].tolist() == ["同兴社区日间照料中心"] * 2

    groups = {frozenset(text.split(";")) for text in result.sites["source_rows"]}
    for seed in range(3):
        shuffled = facilities.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        again = sites.merge_sites(shuffled)
        assert {frozenset(text.split(";")) for text in again.sites["source_rows"]} == groups
    # the same input gives the same output
    pd.testing.assert_frame_equal(sites.merge_sites(facilities).sites, result.sites)


# ----------------------------------------------------------------------------- co-located services


def test_a_building_hosting_three_services_becomes_one_site_with_three_kinds_and_every_source_row_kept():
    address = "江岸区胜利街236号"
    facilities = facility_frame([
        {"name": "一元街道综合为老服务中心", "kinds": "comprehensive", "type_raw": "综合为老服务中心",
         "floor_area_m2": 1200, "caregivers": 6, "address": address, "town_name": "一元街道"},
        {"name": "一元街道日间照料中心", "kinds": "day_care", "type_raw": "日间照料中心", "floor_area_m2": 600,
         "beds": 10, "address": address, "east": 3, "north": 2},
        {"name": "一元街道助餐点", "kinds": "canteen", "type_raw": "助餐点", "caregivers": 2,
         "address": "胜利街236号一楼", "village_name": "同兴社区", "east": -2, "north": 4},
        {"name": "三阳社区日间照料中心", "kinds": "day_care", "address": "江岸区三阳路21号", "east": 600},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 2
    building = result.sites.iloc[0]
    assert building["kinds"] == kinds_text("comprehensive", "day_care", "canteen")
    assert building["n_records"] == 3
    assert building["source_rows"] == "江岸区民政局名单.xlsx:3;江岸区民政局名单.xlsx:4;江岸区民政局名单.xlsx:5"
    assert building["name"] == "一元街道综合为老服务中心 / 一元街道日间照料中心 / 一元街道助餐点"
    assert building["type_raw"] == "综合为老服务中心 / 日间照料中心 / 助餐点"
    # different services: their capacities add up
    assert building["floor_area_m2"] == 1800.0 and building["caregivers"] == 8.0 and building["beds"] == 10.0
    assert math.isnan(building["nursing_beds"])
    # the main record's gaps are filled from the other services
    assert building["town_name"] == "一元街道" and building["village_name"] == "同兴社区"
    assert building["address"] == address
    # the point is the main record's
    assert building.geometry.equals(facilities.geometry.iloc[0])
    log = result.merge_log
    assert log["reason"].tolist() == ["colocated", "colocated"]
    assert log["merged_into_name"].tolist() == ["一元街道综合为老服务中心"] * 2
    assert log["detail"].str.contains("capacities added").all() and log["detail"].str.contains("容量相加").all()


def test_services_with_nearly_the_same_name_but_different_kinds_are_added_not_deduplicated():
    facilities = facility_frame([
        {"name": "江岸区一元街道综合为老服务中心", "kinds": "comprehensive", "floor_area_m2": 1200},
        {"name": "江岸区一元街道综合为老服务中心日间照料中心", "kinds": "day_care", "floor_area_m2": 500,
         "east": 4, "file": "日间照料中心名单.xlsx", "row": 5},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 1
    site = result.sites.iloc[0]
    assert site["kinds"] == kinds_text("comprehensive", "day_care")
    assert site["floor_area_m2"] == 1700.0
    assert site["name"] == "江岸区一元街道综合为老服务中心 / 江岸区一元街道综合为老服务中心日间照料中心"
    assert result.merge_log["reason"].tolist() == ["colocated"]
    assert result.merge_log["site_id"].tolist() == ["江岸区民政局名单:3"]


def test_a_duplicate_of_one_service_in_a_building_is_not_counted_twice():
    # the day-care centre is in both lists; the canteen in the same building only in one
    facilities = facility_frame([
        {"name": "六合社区日间照料中心", "kinds": "day_care", "floor_area_m2": 400, "address": "江岸区六合路3号"},
        {"name": "六合社区老年食堂", "kinds": "canteen", "floor_area_m2": 80, "address": "江岸区六合路3号", "east": 2},
        {"name": "六合社区日间照料中心(六合路)", "kinds": "day_care", "floor_area_m2": 420, "east": 6, "north": 3,
         "file": "高德POI导出.csv", "row": 2},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 1
    assert result.sites["floor_area_m2"].iloc[0] == 480.0  # 400 (not 400 + 420) + 80
    reasons = dict(zip(result.merge_log["name"], result.merge_log["reason"]))
    assert reasons == {"六合社区老年食堂": "colocated", "六合社区日间照料中心(六合路)": "duplicate"}


def test_a_site_whose_main_record_sits_on_a_fallback_point_takes_the_point_of_its_other_listing():
    facilities = facility_frame([
        {"name": "黄家墩社区日间照料中心", "kinds": "day_care", "address": "江岸区黄家墩路17号", "floor_area_m2": 350},
        {"name": "黄家墩社区日间照料中心", "kinds": "day_care", "address": "江岸区黄家墩路17号", "east": 300,
         "north": 400, "file": "高德POI导出.csv", "row": 2},
    ])
    fallbacks = pd.Series(["admin_seat", ""], index=facilities.index)
    result = sites.merge_sites(facilities, fallbacks=fallbacks)
    assert_counts_kept(facilities, result)
    site = result.sites.iloc[0]
    assert site["n_records"] == 2 and site["site_id"] == "江岸区民政局名单:3"
    assert site.geometry.equals(facilities.geometry.iloc[1])
    assert "same address" in result.merge_log["detail"].iloc[0]
    # the same pair 500 m apart without the fallback mark merges by address too, at the main record's point
    plain = sites.merge_sites(facilities, fallbacks=pd.Series("", index=facilities.index))
    assert plain.sites.geometry.iloc[0].equals(facilities.geometry.iloc[0])


def test_two_nursing_homes_on_different_floors_of_one_building_stay_two_sites():
    # same kind at the same point with unrelated names: two operators, not one facility listed twice
    facilities = facility_frame([
        {"name": "康乐老年公寓", "kinds": "nursing_home", "beds": 60, "address": "江岸区黄浦大街99号3楼"},
        {"name": "夕阳红养老院", "kinds": "nursing_home", "beds": 45, "address": "江岸区黄浦大街99号5楼", "east": 2},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert result.sites["beds"].tolist() == [60.0, 45.0]


def test_extra_kinds_follow_the_given_kind_order():
    facilities = facility_frame([
        {"name": "太平社区老年食堂", "kinds": "canteen"},
        {"name": "太平社区居家养老服务站", "kinds": "home_visits", "east": 1},
        {"name": "太平社区日间照料中心", "kinds": "day_care", "north": 1},
    ])
    assert sites.merge_sites(facilities).sites["kinds"].iloc[0] == kinds_text("day_care", "canteen") + ";home_visits"
    reordered = sites.merge_sites(facilities, kind_order=("home_visits", "canteen", "day_care"))
    assert reordered.sites["kinds"].iloc[0] == "home_visits;canteen;day_care"


# ----------------------------------------------------------------------------- geocoder fallbacks

# communities and streets of 江岸区 (from the division-code table), for records from all over the district
COMMUNITIES = [
    ("保成社区", "大智街道"), ("铭新社区", "大智街道"), ("同兴社区", "一元街道"), ("三阳社区", "一元街道"),
    ("坤厚社区", "一元街道"), ("同福社区", "一元街道"), ("洞庭社区", "一元街道"), ("长安社区", "车站街道"),
    ("六合社区", "四唯街道"), ("麟趾社区", "四唯街道"), ("太平社区", "四唯街道"), ("塘新社区", "四唯街道"),
    ("沈阳社区", "永清街道"), ("仁义社区", "永清街道"), ("高雄社区", "西马街道"), ("同庆阁社区", "球场街道"),
    ("球新社区", "球场街道"), ("阳春阁社区", "球场街道"), ("湖边坊社区", "劳动街道"), ("苗栗社区", "劳动街道"),
    ("光华社区", "劳动街道"), ("艺苑社区", "劳动街道"), ("惠中社区", "劳动街道"), ("花惠社区", "劳动街道"),
    ("黄家墩社区", "新村街道"), ("新江岸社区", "新村街道"), ("黑泥湖社区", "新村街道"), ("为群社区", "新村街道"),
    ("徐州社区", "新村街道"), ("二七社区", "新村街道"),
]


def district_centre_frame() -> tuple[gpd.GeoDataFrame, tuple[float, float]]:
    """30 records from across 江岸区 geocoded to the district seat, plus a real building and two facilities."""
    seat = coords.gcj02_to_wgs84(*JIANGAN_SEAT_GCJ)
    records = []
    for number, (community, street) in enumerate(COMMUNITIES):
        kind, word = [("day_care", "日间照料中心"), ("canteen", "老年食堂")][number % 2]
        records.append({"name": f"{community}{word}", "kinds": kind, "lonlat": seat, "town_name": street,
                        "village_name": community, "address": f"江岸区{street}{community}", "file": "高德批量地理编码.csv",
                        "row": number + 2})
    address = "江岸区胜利街236号"
    records += [
        {"name": "一元街道综合为老服务中心", "kinds": "comprehensive", "address": address, "floor_area_m2": 1200},
        {"name": "一元街道日间照料中心", "kinds": "day_care", "address": address, "floor_area_m2": 600},
        {"name": "一元街道助餐点", "kinds": "canteen", "address": address},
        {"name": "车站街道日间照料中心", "kinds": "day_care", "address": "江岸区车站路58号", "east": -420, "north": 380},
        {"name": "江岸区社会福利院", "kinds": "nursing_home", "address": "江岸区解放大道1710号", "east": -300,
         "north": 1300},
    ]
    return facility_frame(records), seat


def test_30_records_from_across_a_district_placed_on_the_district_centre_are_flagged_as_fallbacks():
    facilities, seat = district_centre_frame()
    reasons = sites.detect_geocoder_fallbacks(facilities)
    assert reasons.index.equals(facilities.index)
    assert reasons.iloc[:30].eq("shared_point").all()
    # the three services of one building share a point too, but they are one building
    assert reasons.iloc[30:].eq("").all()

    seats = gpd.GeoDataFrame({"code": ["420102000000"], "name": ["江岸区"], "level": ["county"]},
                             geometry=gpd.points_from_xy([seat[0]], [seat[1]]), crs=4326)
    report = sites.fallback_report(facilities, reasons, seats=seats)
    assert list(report.columns) == list(sites.FALLBACK_REPORT_COLUMNS)
    assert len(report) == 1
    row = report.iloc[0]
    assert row["reason"] == "shared_point" and row["n_records"] == 30
    assert row["lon"] == pytest.approx(seat[0], abs=1e-6) and row["lat"] == pytest.approx(seat[1], abs=1e-6)
    assert row["seat_name"] == "江岸区" and row["seat_level"] == "county"
    assert row["example_names"].split("、")[:2] == ["保成社区日间照料中心", "铭新社区老年食堂"]
    assert {"一元街道", "新村街道"} <= set(row["town_names"].split("、"))
    assert len(row["source_rows"].split(";")) == 30


def test_a_shared_point_without_addresses_is_judged_by_the_names():
    seat = coords.gcj02_to_wgs84(*JIANGAN_SEAT_GCJ)
    unrelated = facility_frame([{"name": name, "kinds": kind, "lonlat": seat} for name, kind in [
        ("爱心幸福食堂", "canteen"), ("夕阳红托老所", "day_care"), ("康乐老年公寓", "nursing_home")]])
    assert sites.detect_geocoder_fallbacks(unrelated).eq("shared_point").all()
    one_building = facility_frame([{"name": name, "kinds": kind, "lonlat": seat} for name, kind in [
        ("一元街道综合为老服务中心", "comprehensive"), ("一元街道日间照料中心", "day_care"), ("一元街道助餐点", "canteen")]])
    assert sites.detect_geocoder_fallbacks(one_building).eq("").all()
    # typical names alike (ratio 0.8), but the streets they belong to lie all over the district
    spread = facility_frame([
        {"name": f"{community}日间照料中心", "kinds": "day_care", "lonlat": seat, "town_name": street}
        for community, street in COMMUNITIES[::5]])
    assert len(spread) == 6 and sites.detect_geocoder_fallbacks(spread).eq("shared_point").all()
    # one building whose sources write its address a little differently
    written_twice = facility_frame([
        {"name": "一元街道综合为老服务中心", "kinds": "comprehensive", "lonlat": seat, "address": "胜利街236号",
         "town_name": "一元街道"},
        {"name": "一元街道日间照料中心", "kinds": "day_care", "lonlat": seat, "address": "江岸区胜利街236号",
         "town_name": "一元街办事处"},
        {"name": "一元街道助餐点", "kinds": "canteen", "lonlat": seat, "address": "江岸区胜利街236号一楼"}])
    assert sites.detect_geocoder_fallbacks(written_twice).eq("").all()
    # fewer records than min_shared are never a shared-point fallback
    assert sites.detect_geocoder_fallbacks(unrelated.iloc[:2]).eq("").all()
    assert sites.detect_geocoder_fallbacks(unrelated.iloc[:2], min_shared=2).eq("shared_point").all()


def test_records_whose_address_names_only_the_district_are_fallbacks_and_stay_apart():
    # a list geocoded from "武汉市江岸区" alone: every pin lands on the district centre
    seat = coords.gcj02_to_wgs84(*JIANGAN_SEAT_GCJ)
    records = [{"name": f"{community}{word}", "kinds": kind, "lonlat": seat, "address": "武汉市江岸区"}
               for (community, _), (kind, word) in zip(COMMUNITIES[:8], [("day_care", "日间照料中心"),
                                                                         ("canteen", "老年食堂")] * 4)]
    facilities = facility_frame(records)
    reasons = sites.detect_geocoder_fallbacks(facilities)
    assert reasons.eq("shared_point").all()
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 8


def test_an_address_naming_only_a_street_office_area_does_not_merge_two_facilities():
    facilities = facility_frame([
        {"name": "三阳社区日间照料中心", "kinds": "day_care", "address": "江岸区一元街道"},
        {"name": "坤厚社区日间照料中心", "kinds": "day_care", "address": "江岸区一元街道", "north": 200},
    ])
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 2


def test_a_placeholder_address_written_for_every_facility_merges_nothing():
    # the bureau filled the address column with its own office for every community facility
    records = [{"name": f"{community}日间照料中心", "kinds": "day_care", "address": "江岸区塔子湖东路8号",
                "east": 400 * math.cos(number), "north": 400 * math.sin(number)}
               for number, (community, _) in enumerate(COMMUNITIES[:22])]
    facilities = facility_frame(records)
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    assert len(result.sites) == 22


def test_records_on_a_fallback_point_are_not_merged_into_one_site():
    facilities, _ = district_centre_frame()
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)
    # 30 separate facilities + the building (one site) + 2 facilities
    assert len(result.sites) == 33
    assert result.sites["n_records"].tolist() == [1] * 30 + [3, 1, 1]
    # without the fallback check the shared point would swallow them (so the check is what keeps them)
    blind = sites.merge_sites(facilities, fallbacks=pd.Series("", index=facilities.index))
    assert_counts_kept(facilities, blind)
    assert len(blind.sites) < 10


def test_a_town_seat_point_from_the_real_division_code_table_is_flagged():
    table = gpd.read_file(shared_data("admin/vonng_adcode/admin_points_gcj02.geojson"))
    # the table's points are GCJ-02 (labelled EPSG:4326): convert before comparing with WGS-84 facilities
    lon, lat = coords.to_wgs84(table["longitude"].to_numpy(), table["latitude"].to_numpy(), "gcj02")
    seats = gpd.GeoDataFrame(table[["code", "name", "level"]], geometry=gpd.points_from_xy(lon, lat), crs=4326)

    def seat_point(code: str) -> tuple[float, float]:
        point = seats.geometry[seats["code"] == code].iloc[0]
        return point.x, point.y

    yiyuan, siwei = seat_point("420102003000"), seat_point("420102005000")  # 一元街办事处, 四唯街办事处
    county, baocheng = seat_point("420102000000"), seat_point("420102002003")  # 江岸区, 保成社区 (a village)
    facilities = facility_frame([
        {"name": "幸福里社区老年食堂", "kinds": "canteen", "lonlat": yiyuan, "address": "江岸区一元街幸福里"},
        {"name": "一元街道综合为老服务中心", "kinds": "comprehensive", "lonlat": offset(*yiyuan, 5, 0)},
        {"name": "三阳社区日间照料中心", "kinds": "day_care", "lonlat": offset(*siwei, 6, -8)},
        {"name": "太平社区老年食堂", "kinds": "canteen", "lonlat": offset(*siwei, 0, 150)},
        {"name": "江岸区社会福利院", "kinds": "nursing_home", "lonlat": county},
        {"name": "爱心托老所", "kinds": "day_care", "lonlat": baocheng},  # in the community office
    ])
    reasons = sites.detect_geocoder_fallbacks(facilities, seats=seats)
    assert reasons.tolist() == ["admin_seat", "", "admin_seat", "", "", ""]
    # the GCJ-02 seats as they are in the file lie 500 m away: nothing would be found without converting
    raw = gpd.GeoDataFrame(table[["code", "name", "level"]], geometry=table.geometry, crs=4326)
    assert sites.detect_geocoder_fallbacks(facilities, seats=raw).eq("").all()

    report = sites.fallback_report(facilities, reasons, seats=seats)
    assert report["reason"].tolist() == ["admin_seat", "admin_seat"]
    assert report["seat_name"].tolist() == ["一元街办事处", "四唯街办事处"]
    assert report["seat_code"].tolist() == ["420102003000", "420102005000"]
    assert report["seat_level"].tolist() == ["town", "town"]
    assert report["example_names"].tolist() == ["幸福里社区老年食堂", "三阳社区日间照料中心"]
    assert report["detail"].str.contains("一元街办事处").iloc[0]


def test_no_fallbacks_gives_an_empty_report_and_no_records_gives_no_sites():
    facilities = facility_frame([{"name": "同兴社区日间照料中心", "kinds": "day_care"}])
    reasons = sites.detect_geocoder_fallbacks(facilities)
    report = sites.fallback_report(facilities, reasons)
    assert report.empty and list(report.columns) == list(sites.FALLBACK_REPORT_COLUMNS)

    empty = sites.merge_sites(facilities.iloc[:0])
    assert empty.sites.empty and empty.merge_log.empty
    assert {"site_id", "n_records", "source_rows"} <= set(empty.sites.columns)
    assert list(empty.merge_log.columns) == list(sites.MERGE_LOG_COLUMNS)


def test_a_frame_without_the_facility_columns_is_refused_with_the_column_named():
    frame = gpd.GeoDataFrame({"名称": ["同兴社区日间照料中心"]}, geometry=gpd.points_from_xy([114.3], [30.59]),
                             crs=4326)
    with pytest.raises(ValueError, match="facility_id"):
        sites.merge_sites(frame)


# ----------------------------------------------------------------------------- scale


# characters of place names; three at random make unrelated community names
PLACE_CHARACTERS = "安宁康乐福寿和平兴盛华新民东西南北中光明永春长青松柏桂兰梅竹江河湖海山林泉石金银玉宝丰泰顺昌隆佳美德善仁义礼智信忠孝文武红星建设胜利团结友谊花园"


def generated_city(n: int, seed: int = 7) -> tuple[gpd.GeoDataFrame, dict[str, np.ndarray]]:
    """
    ``n`` records over a 30 km × 30 km city: 80 % distinct facilities, 10 % second listings of them
    a few metres off, 8 % other services in their buildings, the rest geocoded to one district centre.
    """
    rng = np.random.default_rng(seed)
    words = {"day_care": "日间照料中心", "canteen": "老年食堂", "mutual_aid": "互助养老服务站",
             "nursing_home": "养老院", "comprehensive": "综合为老服务中心"}
    n_base, n_dup, n_colo = int(n * 0.8), int(n * 0.1), int(n * 0.08)
    n_fallback = n - n_base - n_dup - n_colo
    kind = rng.choice(list(words), n_base)
    place = ["".join(rng.choice(list(PLACE_CHARACTERS), 3)) for _ in range(n_base)]
    base = pd.DataFrame({
        "name": [f"{p}社区{words[k]}" for p, k in zip(place, kind)], "kinds": kind,
        "address": [f"幸福大道{i}号" for i in range(n_base)],
        "east": rng.uniform(-15000, 15000, n_base), "north": rng.uniform(-15000, 15000, n_base),
        "file": "民政局名单.xlsx", "of": np.arange(n_base),
    })
    dup_of = rng.choice(n_base, n_dup, replace=False)
    dup = base.iloc[dup_of].copy()
    dup["name"] += "(分店)"
    dup["address"] = None
    dup["east"] += rng.normal(0, 4, n_dup)
    dup["north"] += rng.normal(0, 4, n_dup)
    dup["file"] = "高德POI导出.csv"
    colo_of = rng.choice(n_base, n_colo, replace=False)
    colo = base.iloc[colo_of].copy()
    colo["kinds"] = np.where(colo["kinds"] == "canteen", "day_care", "canteen")
    colo["name"] = [f"{place[k]}长者助餐点" for k in colo_of]
    colo["file"] = "高德POI导出.csv"
    fallback = pd.DataFrame({"name": [f"{i}号楼爱心驿站" for i in range(n_fallback)], "kinds": "day_care",
                             "address": [f"江岸区建设大道{i}号" for i in range(n_fallback)], "east": 0.0,
                             "north": 0.0, "file": "高德批量地理编码.csv", "of": -1})
    table = pd.concat([base, dup, colo, fallback], ignore_index=True)
    lon, lat = offset(CENTRE_LON, CENTRE_LAT, table["east"].to_numpy(), table["north"].to_numpy())
    rows = np.arange(len(table)) + 2
    frame = gpd.GeoDataFrame({
        "facility_id": [f"{Path(f).stem}:{r}" for f, r in zip(table["file"], rows)],
        "name": table["name"], "kinds": table["kinds"], "type_raw": None,
        "beds": np.nan, "nursing_beds": np.nan, "floor_area_m2": rng.uniform(80, 900, len(table)), "caregivers": np.nan,
        "address": table["address"], "town_name": None, "village_name": None, "unit_code": None,
        "source_file": table["file"], "source_row": rows, "flags": "",
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    planted = {"dup": np.arange(n_base, n_base + n_dup), "dup_of": dup_of,
               "colo": np.arange(n_base + n_dup, n_base + n_dup + n_colo), "colo_of": colo_of,
               "fallback": np.arange(n - n_fallback, n)}
    return frame, planted


def test_20000_generated_records_keep_every_count_and_find_what_was_planted():
    facilities, planted = generated_city(20_000)
    result = sites.merge_sites(facilities)
    assert_counts_kept(facilities, result)

    refs = [f"{f}:{r}" for f, r in zip(facilities["source_file"], facilities["source_row"])]
    site_by_ref = {ref: number for number, text in enumerate(result.sites["source_rows"]) for ref in text.split(";")}
    site = np.array([site_by_ref[ref] for ref in refs])
    assert (site[planted["dup"]] == site[planted["dup_of"]]).all()
    assert (site[planted["colo"]] == site[planted["colo_of"]]).all()
    # the records on the district centre stay apart, one site each
    assert len(np.unique(site[planted["fallback"]])) == len(planted["fallback"])
    by_reason = dict(zip(result.merge_log["facility_id"], result.merge_log["reason"]))
    assert all(by_reason[facilities["facility_id"].iloc[k]] == "duplicate" for k in planted["dup"])
    assert all(by_reason[facilities["facility_id"].iloc[k]] == "colocated" for k in planted["colo"])
