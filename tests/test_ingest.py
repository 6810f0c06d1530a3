"""Tests for coverage.ingest: facility tables, reject lists, kinds and administrative units."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from shapely.geometry import Point, box

from coverage import coords, ingest, tables, validate
from coverage._errors import InputDataError
from coverage.config import KINDS

# A few real places in Jiang'an district, Wuhan (WGS-84 degrees)
WUHAN_LON, WUHAN_LAT = 114.3055, 30.5928


from tests.conftest import metres_between  # noqa: E402
from tests.conftest import shared_data_folder as shared_data  # noqa: E402


def write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    with open(path, "w", encoding=encoding, newline="") as stream:
        csv.writer(stream).writerows(rows)
    return path


def offset(lon: float, lat: float, east_m: float, north_m: float) -> tuple[float, float]:
    """A point shifted by metres east and north (small distances)."""
    return (lon + east_m / (111320.0 * math.cos(math.radians(lat))), lat + north_m / 110540.0)


# ----------------------------------------------------------------------------- reading formats


def test_gbk_csv_with_title_row_is_read(tmp_path):
    path = write_csv(tmp_path / "江岸区设施.csv", [
        ["武汉市江岸区养老服务设施名单（2024年）"],
        ["填报单位：区民政局", "", ""],
        ["序号", "机构名称", "设施类型", "经度", "纬度", "地址", "床位数（张）", "建筑面积（㎡）", "所属街道"],
        [1, "大智街道日间照料中心", "日间照料中心", 114.2950, 30.5880, "大智路12号", "20张", "350", "大智街道"],
        [2, "一元社区幸福食堂", "幸福食堂", 114.2990, 30.5900, "一元路3号", "", "120.5", "一元街道"],
        [3, "江岸区社会福利院", "福利院", 114.3100, 30.6000, "", "300", "8,000", "车站街道"],
    ], encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # really GBK bytes

    facilities, rejects, summary = ingest.read_facilities(path)

    assert summary["encoding"] == "gb18030"
    assert summary["header_row"] == 3
    assert rejects.empty
    assert list(facilities["name"]) == ["大智街道日间照料中心", "一元社区幸福食堂", "江岸区社会福利院"]
    assert list(facilities["source_row"]) == [4, 5, 6]
    assert list(facilities["facility_id"]) == ["江岸区设施:4", "江岸区设施:5", "江岸区设施:6"]
    assert list(facilities["kinds"]) == ["day_care", "canteen", "nursing_home"]
    assert facilities["beds"].iloc[0] == 20.0 and math.isnan(facilities["beds"].iloc[1])
    assert list(facilities["floor_area_m2"]) == [350.0, 120.5, 8000.0]
    assert facilities["caregivers"].isna().all()  # no column: NaN, never 0
    assert facilities["town_name"].iloc[0] == "大智街道"
    assert pd.isna(facilities["address"].iloc[2])
    assert facilities.crs.to_epsg() == 4326


def test_utf8_bom_csv_with_english_headers_is_read(tmp_path):
    path = write_csv(tmp_path / "list.csv", [
        ["Name", "Type", "Longitude", "Latitude", "Beds", "Nursing_beds", "Caregivers", "Address"],
        ["Yiyuan day care", "day_care", 114.2990, 30.5900, 10, 4, 3, "Yiyuan Rd"],
        ["Dazhi canteen", "canteen", 114.2950, 30.5880, "", "", "", "Dazhi Rd"],
    ], encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    facilities, rejects, summary = ingest.read_facilities(path)

    assert summary["encoding"] == "utf-8-sig"
    assert summary["columns"]["Name"] == "name"  # the BOM did not stick to the first header
    assert rejects.empty and len(facilities) == 2
    assert facilities["caregivers"].iloc[0] == 3.0
    assert math.isnan(facilities["caregivers"].iloc[1])  # empty cell: NaN, never 0
    assert facilities["nursing_beds"].iloc[0] == 4.0
    assert list(facilities["kinds"]) == ["day_care", "canteen"]


def test_xlsx_with_merged_header_cells_is_read(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "设施"
    sheet["A1"] = "江岸区养老服务设施统计表"
    sheet.merge_cells("A1:G1")
    for column, text in zip("ABEFG", ["名称", "类型", "床位数", "持证护理员人数", "所属街道"]):
        sheet[f"{column}2"] = text
        sheet.merge_cells(f"{column}2:{column}3")
    sheet["C2"] = "坐标"
    sheet.merge_cells("C2:D2")
    sheet["C3"], sheet["D3"] = "经度", "纬度"
    rows = [
        ("大智日间照料中心", "日间照料中心", 114.2950, 30.5880, 12, 2, "大智街道"),
        ("大智幸福食堂", "幸福食堂", 114.2960, 30.5870, None, 0, None),  # town merged from the row above
        ("江岸区敬老院", "敬老院", 114.3100, 30.6000, 80, 6, "车站街道"),
    ]
    for offset_row, values in enumerate(rows, start=4):
        for column, value in zip("ABCDEFG", values):
            if value is not None:
                sheet[f"{column}{offset_row}"] = value
    sheet.merge_cells("G4:G5")
    path = tmp_path / "merged.xlsx"
    workbook.save(path)

    facilities, rejects, summary = ingest.read_facilities(path)

    assert rejects.empty, rejects
    assert summary["sheet"] == "设施"
    assert list(facilities["source_row"]) == [4, 5, 6]
    assert list(facilities["town_name"]) == ["大智街道", "大智街道", "车站街道"]
    assert facilities["caregivers"].tolist() == [2.0, 0.0, 6.0]  # a real 0 stays 0
    assert facilities.geometry.x.round(4).tolist() == [114.2950, 114.2960, 114.3100]


def test_xlsx_sheet_with_the_facility_header_is_chosen(tmp_path):
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "说明"
    notes["A1"] = "本表坐标为高德坐标（GCJ-02）"
    data = workbook.create_sheet("名单")
    data.append(["名称", "类型", "lng", "lat"])
    data.append(["一元幸福食堂", "老年食堂", 114.2990, 30.5900])
    path = tmp_path / "two_sheets.xlsx"
    workbook.save(path)

    facilities, _, summary = ingest.read_facilities(path, crs="gcj02")

    assert summary["sheet"] == "名单" and len(facilities) == 1
    with pytest.raises(InputDataError, match="说明"):
        ingest.read_facilities(path, sheet="说明")


def test_geojson_and_gpkg_facility_layers_are_read(tmp_path):
    frame = gpd.GeoDataFrame(
        {"名称": ["一元日间照料中心", "车站互助幸福院"], "类型": ["日间照料中心", "互助幸福院"], "床位": [10, None]},
        geometry=[Point(114.2990, 30.5900), box(114.30, 30.60, 114.301, 30.601)], crs=4326,
    )
    for suffix in ("geojson", "gpkg"):
        path = tmp_path / f"facilities.{suffix}"
        frame.to_file(path)
        facilities, rejects, summary = ingest.read_facilities(path)
        assert rejects.empty and len(facilities) == 2
        assert list(facilities["source_row"]) == [1, 2]
        assert facilities["flags"].tolist() == ["", "point_from_polygon"]
        assert facilities.geometry.iloc[1].within(frame.geometry.iloc[1])
        assert summary["fixed"] == 1


def test_geojson_features_with_equal_attributes_at_different_places_are_not_duplicates(tmp_path):
    far_lon, far_lat = offset(WUHAN_LON, WUHAN_LAT, 2000.0, 0.0)
    frame = gpd.GeoDataFrame({"name": ["社区幸福食堂"] * 3, "type": ["幸福食堂"] * 3},
                             geometry=[Point(WUHAN_LON, WUHAN_LAT), Point(far_lon, far_lat),
                                       Point(WUHAN_LON, WUHAN_LAT)], crs=4326)
    path = tmp_path / "canteens.geojson"
    frame.to_file(path)

    facilities, rejects, _ = ingest.read_facilities(path)

    assert facilities["source_row"].tolist() == [1, 2]
    assert rejects["reason"].tolist() == ["duplicate"] and rejects["source_row"].tolist() == [3]
    assert "geometry=POINT" in rejects["raw"].iloc[0]


def test_csv_export_of_a_two_row_merged_header_is_read(tmp_path):
    # Excel writes a merged group header (坐标 over 经度/纬度) into its first cell only
    path = write_csv(tmp_path / "exported.csv", [
        ["江岸区养老服务设施"],
        ["名称", "类型", "坐标", "", "床位数"],
        ["", "", "经度", "纬度", ""],
        ["大智日间照料中心", "日间照料中心", 114.2950, 30.5880, 12],
    ])
    facilities, rejects, summary = ingest.read_facilities(path)
    assert rejects.empty and summary["header_row"] == 2
    assert facilities["source_row"].tolist() == [4] and facilities["beds"].tolist() == [12.0]


def test_projected_shapefile_is_reprojected_to_degrees(tmp_path):
    utm = coords.utm_crs_for(WUHAN_LON, WUHAN_LAT)
    frame = gpd.GeoDataFrame({"name": ["一元日间照料中心"], "type": ["托老所"]},
                             geometry=[Point(WUHAN_LON, WUHAN_LAT)], crs=4326).to_crs(utm)
    path = tmp_path / "facilities.shp"
    frame.to_file(path, encoding="utf-8")

    facilities, _, summary = ingest.read_facilities(path)

    assert summary["reprojected_from"] is not None
    assert metres_between(facilities.geometry.x, facilities.geometry.y, WUHAN_LON, WUHAN_LAT)[0] < 0.01


# ----------------------------------------------------------------------------- coordinates


@pytest.mark.parametrize("system, forward", [("bd09", coords.wgs84_to_bd09), ("gcj02", coords.wgs84_to_gcj02)])
def test_baidu_and_amap_lists_are_converted_to_wgs84(tmp_path, system, forward):
    truth_lon = np.array([114.2950, 114.3100, 114.2700])
    truth_lat = np.array([30.5880, 30.6000, 30.5600])
    given_lon, given_lat = forward(truth_lon, truth_lat)
    path = write_csv(tmp_path / f"{system}.csv", [["名称", "类型", "经度", "纬度"]] + [
        [f"第{i}日间照料中心", "日间照料中心", repr(float(x)), repr(float(y))]
        for i, (x, y) in enumerate(zip(given_lon, given_lat))
    ])
    assert metres_between(given_lon, given_lat, truth_lon, truth_lat).min() > 100  # the shift is real

    facilities, _, summary = ingest.read_facilities(path, crs=system)

    assert summary["crs"] == system
    error_m = metres_between(facilities.geometry.x, facilities.geometry.y, truth_lon, truth_lat)
    assert error_m.max() < 0.5


def test_swapped_coordinates_are_fixed_and_flagged(tmp_path):
    path = write_csv(tmp_path / "swapped.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["大智日间照料中心", "日间照料中心", 114.2950, 30.5880],
        ["一元幸福食堂", "幸福食堂", 30.5900, 114.2990],  # lat in the longitude column
    ])

    facilities, rejects, summary = ingest.read_facilities(path)

    assert rejects.empty
    assert summary["fixed"] == 1 and summary["flags"] == {"swapped_lat_lon": 1}
    fixed = facilities.set_index("source_row").loc[3]
    assert fixed["flags"] == "swapped_lat_lon"
    assert (round(fixed.geometry.x, 4), round(fixed.geometry.y, 4)) == (114.2990, 30.5900)


def test_degree_minute_second_and_combined_coordinates_are_read(tmp_path):
    path = write_csv(tmp_path / "dms.csv", [
        ["名称", "类型", "经纬度"],
        ["大智日间照料中心", "日间照料中心", "114.2950,30.5880"],
        ["一元幸福食堂", "幸福食堂", "114.2990 30.5900"],
    ])
    facilities, rejects, _ = ingest.read_facilities(path)
    assert rejects.empty and len(facilities) == 2

    assert tables._parse_degrees("114°18′30″") == pytest.approx(114 + 18 / 60 + 30 / 3600)
    assert tables._parse_degrees("30度35分") == pytest.approx(30 + 35 / 60)
    assert tables._parse_degrees("E114.5") == pytest.approx(114.5)
    assert tables._parse_degrees("１１４．５") == pytest.approx(114.5)
    assert tables._parse_degrees("东经") is None


# ----------------------------------------------------------------------------- checks and rejects


def _problem_file(tmp_path: Path) -> tuple[Path, gpd.GeoSeries]:
    near_lon, near_lat = offset(114.2950, 30.5880, 12.0, 5.0)
    rows = [
        ["江岸区养老设施（问题示例）"],
        ["名称", "类型", "经度", "纬度", "床位数", "建筑面积", "护理员"],
        ["大智日间照料中心", "日间照料中心", 114.2950, 30.5880, 10, 200, 2],          # 3 ok
        ["一元幸福食堂", "幸福食堂", 114.2990, 30.5900, "", "", ""],                   # 4 ok
        ["", "幸福食堂", 114.2960, 30.5890, "", "", ""],                               # 5 missing_name
        ["车站敬老院", "敬老院", "", 30.6000, 30, "", ""],                              # 6 missing_coordinates
        ["四唯敬老院", "敬老院", "114.3o", 30.6000, 30, "", ""],                        # 7 non_numeric
        ["海外托老所", "托老所", 2.35, 48.85, "", "", ""],                              # 8 out_of_china
        ["郊外托老所", "托老所", 114.6000, 30.9000, "", "", ""],                        # 9 outside_study_area
        ["一元幸福食堂", "幸福食堂", 114.2990, 30.5900, "", "", ""],                   # 10 duplicate of 4
        ["大智街日间照料中心", "日间照料中心", near_lon, near_lat, "", "", ""],        # 11 near duplicate of 3: kept
        ["大智老年大学", "老年大学", 114.2970, 30.5895, "", "", ""],                   # 12 unknown_kind
        ["球场街敬老院", "敬老院", 114.2980, 30.6010, -5, "", ""],                     # 13 negative_capacity
        ["", "", "", "", "", "", ""],                                                  # 14 blank: skipped
        ["新村日间照料中心", "日间照料中心", 30.6020, 114.3020, "", "", "3人"],        # 15 swapped: fixed
    ]
    study_area = gpd.GeoSeries([box(114.25, 30.55, 114.35, 30.65)], crs=4326)
    return write_csv(tmp_path / "problems.csv", rows), study_area


def test_every_reject_reason_is_reported_with_row_and_column(tmp_path):
    path, study_area = _problem_file(tmp_path)

    facilities, rejects, summary = ingest.read_facilities(path, study_area=study_area)

    # total rows, sub-POIs and unplaceable rows without coordinates have tests of their own
    assert set(summary["by_reason"]) == set(ingest.REJECT_REASONS) - {"total_row", "not_a_facility", "no_location"}
    assert list(rejects.columns) == list(ingest.REJECT_COLUMNS)
    reason_of_row = dict(zip(rejects["source_row"], rejects["reason"]))
    assert reason_of_row == {
        5: "missing_name", 6: "missing_coordinates", 7: "non_numeric_coordinates", 8: "out_of_china",
        9: "outside_study_area", 10: "duplicate", 12: "unknown_kind", 13: "negative_capacity",
    }
    column_of_row = dict(zip(rejects["source_row"], rejects["column"]))
    assert column_of_row[6] == "经度" and column_of_row[7] == "经度" and column_of_row[13] == "床位数"
    assert column_of_row[12] == "类型"
    detail = rejects.set_index("source_row")["detail"]
    assert "row 4" in detail[10]
    outside_m = float(detail[9].split(" m outside")[0].split()[-1])
    expected_m = metres_between(114.6, 30.9, 114.35, 30.65)  # nearest corner of the box
    assert outside_m == pytest.approx(expected_m, rel=0.01)
    assert "老年大学" in rejects.set_index("source_row")["raw"][12]
    # a near duplicate is not rejected when read: coverage.sites merges it into one site
    assert list(facilities["source_row"]) == [3, 4, 11, 15]
    assert facilities.set_index("source_row").loc[15, "flags"] == "swapped_lat_lon"


def test_no_row_is_lost(tmp_path):
    path, study_area = _problem_file(tmp_path)

    facilities, rejects, summary = ingest.read_facilities(path, study_area=study_area)

    data_rows = set(range(3, 16)) - {14}  # the blank row 14 is not a data row
    assert summary["rows_in"] == len(data_rows) == 12
    assert summary["rows_in"] == summary["accepted"] + summary["rejected"]
    assert summary["accepted"] == len(facilities) == 4 and summary["rejected"] == 8
    assert summary["fixed"] == 1
    assert set(facilities["source_row"]) | set(rejects["source_row"]) == data_rows
    assert not set(facilities["source_row"]) & set(rejects["source_row"])


def test_a_row_with_several_problems_lists_each(tmp_path):
    path = write_csv(tmp_path / "several.csv", [
        ["名称", "类型", "经度", "纬度", "床位数"],
        ["", "老年大学", "", "", "-3"],
    ])
    facilities, rejects, summary = ingest.read_facilities(path)
    assert facilities.empty and list(facilities.columns) == list(ingest.FACILITY_COLUMNS)
    assert summary["rows_in"] == 1 and summary["rejected"] == 1 and summary["accepted"] == 0
    assert set(rejects["reason"]) == {"missing_name", "unknown_kind", "negative_capacity", "missing_coordinates"}


def test_near_duplicates_need_same_kind_and_similar_names(tmp_path):
    lon2, lat2 = offset(114.2950, 30.5880, 10.0, 0.0)
    lon3, lat3 = offset(114.2950, 30.5880, 0.0, 60.0)
    path = write_csv(tmp_path / "near.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["大智社区日间照料中心", "日间照料中心", 114.2950, 30.5880],
        ["大智社区幸福食堂", "幸福食堂", lon2, lat2],                 # same spot, other kind: kept
        ["大智社区日间照料中心", "日间照料中心", lon3, lat3],          # same name, 60 m away: kept
        ["黄浦路社区日间照料中心", "日间照料中心", lon2, lat2],         # 10 m, different name: kept
    ])
    facilities, rejects, _ = ingest.read_facilities(path)
    assert rejects.empty and len(facilities) == 4


def test_missing_capacity_is_nan_and_unreadable_capacity_is_flagged(tmp_path):
    path = write_csv(tmp_path / "capacity.csv", [
        ["名称", "类型", "经度", "纬度", "床位数", "护理员人数"],
        ["大智敬老院", "敬老院", 114.2950, 30.5880, "无", "约12"],
        ["一元敬老院", "敬老院", 114.2990, 30.5900, "见附表", ""],
    ])
    facilities, rejects, summary = ingest.read_facilities(path)
    assert rejects.empty
    assert math.isnan(facilities["beds"].iloc[0]) and facilities["caregivers"].iloc[0] == 12.0
    assert math.isnan(facilities["beds"].iloc[1]) and math.isnan(facilities["caregivers"].iloc[1])
    assert facilities["flags"].iloc[1] == "unreadable_beds"
    assert facilities["beds"].dtype == float and facilities["caregivers"].dtype == float


def test_candidate_point_tables_need_no_name_or_type(tmp_path):
    path = write_csv(tmp_path / "candidates.csv", [
        ["候选点", "", ""],
        ["名称", "经度", "纬度"],
        ["闲置小学", 114.2950, 30.5880],
        ["", 114.2990, 30.5900],
        ["村委会", "", 30.6000],
    ])

    points = ingest.read_point_table(path, crs="gcj02")

    assert points["source_row"].tolist() == [3, 4] and (points["kinds"] == "").all()
    assert [r["reason"] for r in points.attrs["rejects"]] == ["missing_coordinates"]
    assert points.attrs["summary"]["rows_in"] == 3
    expected_lon, expected_lat = coords.gcj02_to_wgs84(114.2950, 30.5880)
    assert metres_between(points.geometry.x.iloc[0], points.geometry.y.iloc[0], expected_lon, expected_lat) < 0.01


# ----------------------------------------------------------------------------- kinds


@pytest.mark.parametrize("text, expected", [
    ("日间照料中心", ("day_care",)),
    ("老年人日间照料中心", ("day_care",)),
    ("日间照料中心（含助餐）", ("day_care", "canteen")),
    ("日间照料中心/幸福食堂", ("day_care", "canteen")),
    ("日间照料中心（不含助餐）", ("day_care",)),
    ("长者食堂", ("canteen",)),
    ("幸福厨房点", ("canteen",)),
    ("农村互助养老服务站", ("mutual_aid",)),
    ("嘎查村养老站", ("mutual_aid",)),
    ("特困人员供养服务机构", ("nursing_home",)),
    ("区域养老服务中心", ("nursing_home",)),
    ("民生服务综合体", ("comprehensive",)),
    ("综合性养老服务中心", ("comprehensive",)),
    ("day_care;canteen", ("day_care", "canteen")),
    ("养老驿站", ("day_care",)),
    ("养老机构", ("care_home",)),
    ("护理院", ("care_home",)),
    ("医养结合机构", ("care_home",)),
    ("光荣院", ("care_home",)),
    ("特困人员供养服务设施（敬老院）", ("nursing_home",)),
    ("农村幸福院", ("mutual_aid",)),
    ("互助养老服务点", ("mutual_aid",)),
    ("老年助餐点", ("canteen",)),
    ("长者饭堂", ("canteen",)),
    ("长者照护之家", ("day_care",)),
    ("综合为老服务中心", ("comprehensive",)),
    ("颐康中心", ("comprehensive",)),
    ("乡镇（街道）居家养老服务中心", ("comprehensive",)),
    ("居家养老服务照料中心", ("day_care",)),
    ("护理站", ("home_care",)),
    ("老年大学", ()),
    ("", ()),
])
def test_type_names_map_to_kinds(text, expected):
    assert ingest.match_kinds(text) == expected


def test_kinds_come_from_type_or_from_name_keywords(tmp_path):
    path = write_csv(tmp_path / "kinds.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["大智社区服务中心", "日间照料中心（含助餐）", 114.2950, 30.5880],
        ["一元社区服务中心", "日间照料中心/幸福食堂", 114.2990, 30.5900],
        ["张家村互助幸福院", "", 114.2700, 30.5600],
        ["李家村老年食堂", "", 114.2600, 30.5500],
        ["车站街道养老服务", "", 114.3100, 30.6000],
    ])

    facilities, rejects, _ = ingest.read_facilities(path)

    assert facilities.set_index("source_row")["kinds"].to_dict() == {
        2: "day_care;canteen", 3: "day_care;canteen", 4: "mutual_aid", 5: "canteen"}
    assert facilities.set_index("source_row")["flags"][4] == "kind_from_name"
    assert rejects["reason"].tolist() == ["unknown_kind"] and rejects["source_row"].tolist() == [6]
    assert ingest.has_kind(facilities, "canteen").tolist() == [True, True, False, True]
    assert ingest.has_kind(facilities, "mutual_aid").tolist() == [False, False, True, False]
    with pytest.raises(ValueError):
        ingest.has_kind(facilities, "hospital")


def test_a_generic_or_unknown_type_takes_the_kind_from_the_name_with_a_flag(tmp_path):
    path = write_csv(tmp_path / "other.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["王家村互助幸福院", "其他", 114.2700, 30.5600],            # generic type: the name says it
        ["李家村老年食堂", "社区服务设施", 114.2710, 30.5610],        # unknown type: the name says it
        ["示例县老年大学", "老年大学", 114.2720, 30.5620],            # neither says it: rejected
    ])
    facilities, rejects, summary = ingest.read_facilities(path)
    assert facilities.set_index("source_row")["kinds"].to_dict() == {2: "mutual_aid", 3: "canteen"}
    assert facilities.set_index("source_row")["flags"].to_dict() == {
        2: "kind_from_name_generic_type", 3: "kind_from_name_unknown_type"}
    assert rejects["reason"].tolist() == ["unknown_kind"] and rejects["source_row"].tolist() == [4]
    assert "--kinds" in rejects["detail"].iloc[0]  # the advice can be followed
    assert summary["flags"] == {"kind_from_name_generic_type": 1, "kind_from_name_unknown_type": 1}


def test_user_kinds_file_extends_the_mapping(tmp_path):
    path = write_csv(tmp_path / "stations.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["大智为老服务站", "社区为老服务站", 114.2950, 30.5880],
        ["一元幸福食堂", "幸福食堂", 114.2990, 30.5900],
    ])
    kinds_file = tmp_path / "my_kinds.yaml"
    kinds_file.write_text("day_care:\n  types: [社区为老服务站]\n", encoding="utf-8")

    without, rejects_without, _ = ingest.read_facilities(path)
    with_file, rejects_with, _ = ingest.read_facilities(path, kinds_file=kinds_file)

    assert len(without) == 1 and rejects_without["reason"].tolist() == ["unknown_kind"]
    assert rejects_with.empty and with_file["kinds"].tolist() == ["day_care", "canteen"]

    bad = tmp_path / "bad_kinds.yaml"
    bad.write_text("hospital:\n  types: [医院]\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="hospital"):
        ingest.read_facilities(path, kinds_file=bad)


def test_package_kinds_yaml_covers_every_kind():
    patterns = ingest._load_kind_patterns()
    assert {kind for _, kind in patterns.patterns} == set(KINDS)


# ----------------------------------------------------------------------------- headers and file errors


def test_user_column_mapping_extends_the_aliases(tmp_path):
    path = write_csv(tmp_path / "own_headers.csv", [
        ["站点", "站点类别", "X坐标", "Y坐标", "核定床位"],
        ["大智日间照料中心", "日间照料中心", 114.2950, 30.5880, 15],
    ])
    with pytest.raises(InputDataError):
        ingest.read_facilities(path)

    facilities, rejects, summary = ingest.read_facilities(
        path, columns={"站点": "name", "站点类别": "type", "X坐标": "lon", "Y坐标": "纬度", "核定床位": "beds"})

    assert rejects.empty and facilities["beds"].tolist() == [15.0]
    assert summary["columns"] == {"站点": "name", "站点类别": "type", "X坐标": "lon", "Y坐标": "lat",
                                  "核定床位": "beds"}
    with pytest.raises(InputDataError, match="unknown field"):
        ingest.read_facilities(path, columns={"站点": "elevation"})


def test_missing_lon_lat_columns_raise_a_bilingual_error_naming_the_headers(tmp_path):
    path = write_csv(tmp_path / "phones_only.csv", [
        ["名称", "类型", "电话"],
        ["大智日间照料中心", "日间照料中心", "027-1234567"],
    ])
    with pytest.raises(InputDataError) as caught:
        ingest.read_facilities(path)
    message = str(caught.value)
    assert "phones_only.csv" in message
    assert "名称, 类型, 电话" in message
    assert "经度" in message and "longitude" in message
    assert "what to do / 处理办法" in message


def test_unreadable_or_missing_files_raise_input_data_error(tmp_path):
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"this is not a zip archive")
    with pytest.raises(InputDataError, match="broken.xlsx"):
        ingest.read_facilities(broken)
    with pytest.raises(InputDataError, match="file not found"):
        ingest.read_facilities(tmp_path / "nowhere.csv")
    odd = tmp_path / "list.docx"
    odd.write_bytes(b"PK")
    with pytest.raises(InputDataError, match="unsupported"):
        ingest.read_facilities(odd)


def test_unknown_coordinate_system_is_refused(tmp_path):
    path = write_csv(tmp_path / "x.csv", [["名称", "类型", "经度", "纬度"], ["a托老所", "托老所", 114.3, 30.6]])
    with pytest.raises(ValueError, match="gcj02"):
        ingest.read_facilities(path, crs="mars")


# ----------------------------------------------------------------------------- writing and reporting


def test_write_rejects_writes_utf8_bom_csv_atomically(tmp_path):
    path, study_area = _problem_file(tmp_path)
    _, rejects, _ = ingest.read_facilities(path, study_area=study_area)
    target = tmp_path / "out" / "rejects.csv"
    target.parent.mkdir()
    target.write_text("old content", encoding="utf-8")

    written = ingest.write_rejects(rejects, target)

    assert written == target
    assert target.read_bytes().startswith(b"\xef\xbb\xbf")
    assert os.listdir(target.parent) == ["rejects.csv"]  # no temporary file left behind
    back = pd.read_csv(target, encoding="utf-8-sig", dtype={"column": str}, keep_default_na=False)
    assert list(back.columns) == list(ingest.REJECT_COLUMNS)
    assert back["source_row"].tolist() == rejects["source_row"].tolist()
    assert back["detail"].tolist() == rejects["detail"].tolist()


def test_validate_report_explains_counts_and_first_rejects_in_both_languages(tmp_path):
    path, study_area = _problem_file(tmp_path)

    text, rejects, summary = validate.validate_report(path, crs="wgs84", study_area=study_area)

    assert "读入 12 行 = 有坐标 4 + 仅计存在（无坐标）0 + 剔除 8" in text
    assert "Rows read 12 = located 4 + presence-only (no coordinates) 0 + rejected 8" in text
    assert "missing_coordinates 缺少经度或纬度" in text
    assert "第 6 行" in text and "row 6" in text and "'经度'" in text
    assert len(rejects) == 8 and summary["rows_in"] == 12

    english, _, _ = validate.validate_report(path, crs="wgs84", lang="en")
    assert "Rows read 12" in english and "读入" not in english


def test_validate_summarises_a_large_registry_by_type_value_not_row_by_row(tmp_path):
    rows = [["机构名称", "机构类型", "经度", "纬度"]]
    for i in range(300):
        rows.append([f"第{i}养老院", "养老机构", 114.20 + i * 1e-4, 30.50])
    for i in range(200):
        rows.append([f"第{i}号站", "老年活动室", 114.20 + i * 1e-4, 30.51])
    path = write_csv(tmp_path / "registry.csv", rows)

    text, rejects, summary = validate.validate_report(path, lang="zh")

    assert len(rejects) == 200
    type_lines = [line for line in text.splitlines() if line.startswith("  养老机构") or line.startswith("  老年活动室")]
    assert len(type_lines) == 2
    assert "300" in type_lines[0] and "养老机构 300" in type_lines[0]
    assert "200" in type_lines[1] and "unknown_kind" in type_lines[1]
    assert text.count("第 ") < 15  # no wall of identical reject lines


# ----------------------------------------------------------------------------- administrative units


def test_read_units_on_the_real_adcode_csv_gives_levels_parents_and_missing_points():
    table = shared_data() / "admin" / "vonng_adcode" / "adcode" / "420102.csv"
    raw = pd.read_csv(table, header=None, dtype=str)

    units = ingest.read_units(table, crs="gcj02")

    assert list(units.columns) == list(ingest.UNIT_COLUMNS) and units.crs.to_epsg() == 4326
    assert len(units) == len(raw)  # Jiang'an: one county, its streets and communities
    by_code = units.set_index("code")
    assert by_code.loc["420102000000", "level"] == "county" and by_code.loc["420102000000", "name"] == "江岸区"
    towns = units[units["level"] == "town"]
    villages = units[units["level"] == "village"]
    assert len(towns) == (raw[3] == "town").sum() and len(villages) == (raw[3] == "village").sum()
    assert (towns["code"].str[9:] == "000").all() and (towns["parent_code"] == "420102000000").all()
    assert (villages["parent_code"] == villages["code"].str[:9] + "000").all()
    assert villages["parent_code"].isin(towns["code"]).all()
    # the code table's own level column agrees with the level derived from the codes
    assert (by_code.loc[raw[0], "level"].to_numpy() == raw[3].to_numpy()).all()
    no_coordinates = set(raw.loc[raw[12].isna(), 0])
    assert no_coordinates and set(units.loc[units.geometry.isna(), "code"]) == no_coordinates
    assert by_code.loc["420102002000", "name"] == "大智街办事处"
    assert by_code.geometry["420102002000"] is None
    # GCJ-02 → WGS-84 moved the county centre by the expected few hundred metres
    centre = by_code.geometry["420102000000"]
    shift = metres_between(centre.x, centre.y, 114.30911, 30.600052)
    assert 100 < shift < 800
    assert villages["ur_code"].notna().all() and villages["urban"].all()  # Jiang'an is all 11x urban
    assert units["ur_code"].dtype == "Int64" and units["urban"].dtype == "boolean"
    assert units.loc[units["level"] == "county", "urban"].isna().all()


def test_read_units_on_the_combined_real_table_drops_city_rows_and_keeps_rural_classes():
    table = shared_data() / "admin" / "vonng_adcode" / "adcode_targets_and_wuhan_2016.csv"

    units = ingest.read_units(table, crs="gcj02")

    assert set(units["level"]) == {"county", "town", "village"}
    assert not units["name"].isin(["市辖区", "武汉市", "鄂尔多斯市"]).any()
    assert units["code"].is_unique and units["code"].str.fullmatch(r"\d{12}").all()
    counties = units[units["level"] == "county"]
    assert "420117000000" in set(counties["code"]) and "150627000000" in set(counties["code"])
    villages = units[units["level"] == "village"]
    assert villages["urban"].any() and (~villages["urban"].astype(bool)).any()  # urban and rural villages
    assert villages.geometry.isna().sum() > 1000  # many villages have no coordinates
    assert units.geometry.dropna().geom_type.eq("Point").all()


def test_read_units_reads_a_folder_of_adcode_tables():
    admin = shared_data() / "admin" / "vonng_adcode"

    from_folder = ingest.read_units(admin / "adcode", crs="gcj02")
    from_table = ingest.read_units(admin / "adcode_targets_and_wuhan_2016.csv", crs="gcj02")

    assert set(from_folder["code"]) == set(from_table["code"])
    assert from_folder.crs.to_epsg() == 4326


def test_read_units_warns_when_a_gcj02_adcode_table_is_read_as_wgs84():
    table = shared_data() / "admin" / "vonng_adcode" / "adcode" / "421002.csv"
    with pytest.warns(UserWarning, match="gcj02"):
        ingest.read_units(table)


def _synthetic_units(tmp_path: Path) -> Path:
    """Two town polygons with Chinese property names, one county polygon, and village points."""
    county = box(114.20, 30.50, 114.40, 30.70)
    town_a, town_b = box(114.20, 30.50, 114.30, 30.70), box(114.30, 30.50, 114.40, 30.70)
    frame = gpd.GeoDataFrame({
        "区划代码": ["420199", "420199001", "420199002", "420199001001", "420199001002", "420199002001"],
        "名称": ["测试区", "甲街道办事处", "乙镇", "一村", "二村", "三社区"],
        "级别": ["区县", "街道", "乡镇", "村", "村", "社区"],
        "城乡分类代码": [None, None, None, 220, 220, 111],
    }, geometry=[county, town_a, town_b, Point(114.22, 30.55), Point(114.28, 30.65), Point(114.35, 30.60)],
        crs=4326)
    path = tmp_path / "units.geojson"
    frame.to_file(path)
    return path


def test_read_units_from_a_polygon_file_with_chinese_properties(tmp_path):
    units = ingest.read_units(_synthetic_units(tmp_path))
    by_code = units.set_index("code")
    assert by_code["level"].to_dict() == {
        "420199000000": "county", "420199001000": "town", "420199002000": "town",
        "420199001001": "village", "420199001002": "village", "420199002001": "village"}
    assert by_code.loc["420199001002", "parent_code"] == "420199001000"
    assert by_code.loc["420199001000", "parent_code"] == "420199000000"
    assert by_code["urban"].tolist()[3:] == [False, False, True]
    assert by_code.geometry["420199001000"].geom_type == "Polygon"


def test_facilities_are_assigned_by_code_polygon_and_nearest_village_point(tmp_path):
    units = ingest.read_units(_synthetic_units(tmp_path))
    near_second = offset(114.28, 30.65, 40.0, 0.0)
    path = write_csv(tmp_path / "assign.csv", [
        ["名称", "类型", "经度", "纬度", "所属街道", "区划代码"],
        ["一村互助幸福院", "互助幸福院", 114.35, 30.60, "", "420199001001"],      # code wins over position
        ["二村互助幸福院", "互助幸福院", near_second[0], near_second[1], "", ""],  # polygon town + nearest
        ["三社区幸福食堂", "幸福食堂", 114.50, 30.60, "乙镇", ""],                # outside: town by name
        ["远处敬老院", "敬老院", 114.60, 30.80, "", ""],                          # nothing
    ])
    facilities, _, _ = ingest.read_facilities(path)

    assigned = ingest.assign_facilities_to_units(facilities, units).set_index("source_row")

    assert assigned["unit_assignment"].to_dict() == {
        2: "code", 3: "nearest_village_point", 4: "nearest_village_point", 5: "none"}
    assert assigned.loc[2, ["village_code", "town_code", "county_code"]].tolist() == [
        "420199001001", "420199001000", "420199000000"]
    assert assigned.loc[3, "village_code"] == "420199001002"
    assert "nearest_village_point" in assigned.loc[3, "flags"]
    assert assigned.loc[4, ["village_code", "town_code"]].tolist() == ["420199002001", "420199002000"]
    assert assigned.loc[5, ["village_code", "town_code", "county_code"]].isna().all()
    assert len(assigned) == len(facilities) and "village_code" not in facilities.columns


def test_facility_is_assigned_to_a_village_point_of_the_real_town_named_in_the_list(tmp_path):
    units = ingest.read_units(shared_data() / "admin" / "vonng_adcode" / "adcode" / "420102.csv", crs="gcj02")
    villages = units[(units["level"] == "village") & units.geometry.notna()]
    village = villages.iloc[len(villages) // 2]
    town_name = units.set_index("code").loc[village["parent_code"], "name"]  # e.g. "xx街办事处"
    written_name = tables._place_core(town_name) + "街道"  # how a bureau list writes it
    lon, lat = offset(village.geometry.x, village.geometry.y, 15.0, 10.0)
    path = write_csv(tmp_path / "real_town.csv", [
        ["名称", "类型", "经度", "纬度", "所属街道"],
        ["社区日间照料中心", "日间照料中心", lon, lat, written_name],
    ])
    facilities, _, _ = ingest.read_facilities(path)

    assigned = ingest.assign_facilities_to_units(facilities, units)

    assert assigned["town_code"].iloc[0] == village["parent_code"]
    assert assigned["county_code"].iloc[0] == "420102000000"
    assert assigned["unit_assignment"].iloc[0] == "nearest_village_point"
    assigned_village = units.set_index("code").geometry[assigned["village_code"].iloc[0]]
    assert metres_between(assigned_village.x, assigned_village.y, lon, lat) <= 20.0


def test_gcj02_facility_near_the_study_area_edge_is_judged_after_conversion(tmp_path):
    """A GCJ-02 point just inside the county must not be rejected for its 300–600 m offset."""
    import geopandas as gpd
    from shapely.geometry import box

    from coverage import coords
    from coverage.ingest import read_facilities

    area = gpd.GeoSeries([box(113.80, 30.90, 113.90, 31.00)], crs="EPSG:4326")
    # 100 m inside the north-east corner in WGS-84; GCJ-02 shifts it outside the box
    wgs_lon, wgs_lat = 113.90 - 0.001, 31.00 - 0.001
    gcj_lon, gcj_lat = coords.wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert not area.iloc[0].contains(gpd.points_from_xy([gcj_lon], [gcj_lat])[0])
    table = tmp_path / "edge.csv"
    table.write_text(f"名称,类型,经度,纬度\n边界互助幸福院,互助幸福院,{gcj_lon:.6f},{gcj_lat:.6f}\n", encoding="utf-8")
    accepted, rejects, summary = read_facilities(table, crs="gcj02", study_area=area)
    assert len(accepted) == 1 and len(rejects) == 0
    # six decimals in the table ≈ 0.1 m
    assert accepted.geometry.x.iloc[0] == pytest.approx(wgs_lon, abs=1e-5)
