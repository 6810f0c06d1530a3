"""Planners' real tables go in whole: POI exports, bureau workbooks, registries' own classes, village lists."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from coverage import coords, ingest, kinds, validate
from coverage.config import load_study

from tests.conftest import REPO_ROOT, metres_between, shared_data


def _write_csv(path: Path, rows: list[list[object]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as handle:
        csv.writer(handle).writerows(rows)
    return path


# ----------------------------------------------------------------------------- POI exports

#: an Amap (高德) POI export as the web service's fields come out of a typical scraper script
AMAP_HEADER = ["name", "type", "typecode", "address", "location", "pname", "cityname", "adname", "tel"]
AMAP_ROWS = [
    ["民意街社区日间照料中心", "生活服务;生活服务场所;生活服务场所", "070000", "民意四路18号", "114.273812,30.588213",
     "湖北省", "武汉市", "江汉区", "027-85751234"],
    ["福星惠誉养老院", "医疗保健服务;医疗保健服务场所;医疗保健服务场所", "090000", "新华路218号",
     "114.266234,30.594102", "湖北省", "武汉市", "江汉区", "[]"],
    ["万松街长者食堂", "餐饮服务;中餐厅;中餐厅", "050100", "万松园路100号", "114.268000,30.592100",
     "湖北省", "武汉市", "江汉区", "[]"],
    ["汉兴街道综合为老服务中心", "政府机构及社会团体;政府机关;区县级政府及事业单位", "130105", "[]",
     "114.260100,30.610200", "湖北省", "武汉市", "江汉区", "[]"],
    ["江汉区社会福利院", "生活服务;社会福利;福利院", "071300", "[]", "114.250000,30.600000",
     "湖北省", "武汉市", "江汉区", "[]"],
    ["福星惠誉养老院(停车场)", "交通设施服务;停车场;停车场", "150900", "新华路218号", "114.266400,30.594300",
     "湖北省", "武汉市", "江汉区", "[]"],
    ["福星惠誉养老院(东门)", "通行设施;建筑物门;建筑物正门", "991400", "新华路", "114.266500,30.594000",
     "湖北省", "武汉市", "江汉区", "[]"],
    ["江汉区图书馆", "科教文化服务;图书馆;图书馆", "140500", "[]", "114.270000,30.590000",
     "湖北省", "武汉市", "江汉区", "[]"],
]


def test_an_amap_poi_export_in_gbk_keeps_every_facility_row(tmp_path):
    path = _write_csv(tmp_path / "高德POI_江汉区_养老.csv", [AMAP_HEADER] + AMAP_ROWS, encoding="gbk")

    facilities, rejects, summary = ingest.read_facilities(path)  # no crs given: Amap writes GCJ-02

    assert summary["poi_source"].startswith("Amap") and summary["crs"] == "gcj02"
    assert summary["encoding"] in ("gb18030", "gbk")
    by_name = facilities.set_index("name")
    assert by_name["kinds"].to_dict() == {
        "民意街社区日间照料中心": "day_care", "福星惠誉养老院": "care_home", "万松街长者食堂": "canteen",
        "汉兴街道综合为老服务中心": "comprehensive", "江汉区社会福利院": "nursing_home",
    }
    # the category path said nothing of the kind: the name did, and the row says so
    assert by_name.loc["民意街社区日间照料中心", "flags"] == "kind_from_name_generic_type"
    assert by_name.loc["万松街长者食堂", "flags"] == "kind_from_name_unknown_type"
    # a category path is a map service's class: the name is read first, and the row says so
    assert by_name.loc["江汉区社会福利院", "flags"] == "kind_from_name_generic_type"
    # pname/cityname/adname become the address hierarchy; Amap's "[]" is an empty cell
    assert by_name.loc["民意街社区日间照料中心", "address"] == "湖北省武汉市江汉区民意四路18号"
    assert by_name.loc["汉兴街道综合为老服务中心", "address"] == "湖北省武汉市江汉区"
    # converted from GCJ-02: the point moved by the few hundred metres of the offset
    shift = metres_between(by_name.loc["万松街长者食堂"].geometry.x, by_name.loc["万松街长者食堂"].geometry.y,
                           114.268, 30.5921)
    assert 300 < shift < 700
    reasons = dict(zip(rejects["source_row"], rejects["reason"]))
    assert reasons == {7: "not_a_facility", 8: "not_a_facility", 9: "unknown_kind"}
    assert summary["rows_in"] == len(AMAP_ROWS) == summary["located"] + summary["presence_only"] + summary["rejected"]


def test_a_baidu_export_is_read_as_bd09_and_a_declared_system_wins(tmp_path):
    truth_lon, truth_lat = 121.4700, 31.2300
    bd_lon, bd_lat = coords.wgs84_to_bd09(np.array([truth_lon]), np.array([truth_lat]))
    path = _write_csv(tmp_path / "baidu.csv", [
        ["uid", "name", "lat", "lng", "address", "province", "city", "area", "detail_info.tag"],
        ["a1b2c3", "南京东路街道长者照护之家", float(bd_lat[0]), float(bd_lon[0]), "浙江中路", "上海市", "上海市",
         "黄浦区", "生活服务;养老院"],
    ])

    facilities, _, summary = ingest.read_facilities(path)
    assert summary["crs"] == "bd09" and summary["poi_source"].startswith("Baidu")
    point = facilities.geometry.iloc[0]
    assert metres_between(point.x, point.y, truth_lon, truth_lat) < 1.0
    # Baidu's tag says 养老院 for every elderly-care POI; the name says what this one is
    assert facilities["kinds"].iloc[0] == "day_care" and facilities["flags"].iloc[0] == "kind_from_name_generic_type"

    declared, _, summary = ingest.read_facilities(path, crs="wgs84")
    assert summary["crs"] == "wgs84" and summary["crs_source"] == "declared"
    assert metres_between(declared.geometry.x.iloc[0], declared.geometry.y.iloc[0], truth_lon, truth_lat) > 300


# ----------------------------------------------------------------------------- a municipal registry


def test_a_registry_in_its_own_official_classes_is_accepted():
    registry_classes = {
        "养老机构": "care_home", "养老院": "care_home", "护理院": "care_home", "医养结合机构": "care_home",
        "光荣院": "care_home", "敬老院": "nursing_home", "特困人员供养服务设施": "nursing_home",
        "农村幸福院": "mutual_aid", "互助养老服务点": "mutual_aid", "日间照料中心": "day_care",
        "老年助餐点": "canteen", "养老驿站": "day_care", "养老照料中心": "comprehensive",
        "长者照护之家": "day_care", "综合为老服务中心": "comprehensive", "长者饭堂": "canteen",
        "颐康中心": "comprehensive", "居家养老服务照料中心": "day_care",
        "乡镇(街道)居家养老服务中心": "comprehensive", "助餐点": "canteen", "老年食堂": "canteen", "护理站": "home_care",
    }
    for official, kind in registry_classes.items():
        assert ingest.match_kinds(official) == (kind,), official


def test_the_kinds_file_says_which_targets_count_each_kind():
    import yaml

    catalogue = yaml.safe_load((REPO_ROOT / "coverage" / "targets.yaml").read_text(encoding="utf-8"))
    counted: dict[str, set[str]] = {kind_id: set() for kind_id in kinds.kind_ids()}
    for target in catalogue["targets"]:
        for kind_id in target["kinds"]:
            if kind_id != "any":
                counted[kind_id].add(target["id"])
    for kind in kinds.registry().kinds:
        assert set(kind.counts_for) == counted[kind.id], kind.id


# ----------------------------------------------------------------------------- a bureau workbook


def _bureau_workbook(path: Path) -> Path:
    """盘山县's list as a bureau sends it: a title, a note row, one sheet per town, DMS, 合计, a pasted pair."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    towns = {
        "沙岭镇": [
            [1, "沙岭镇敬老院", "敬老院", "122°22′17.7″", "41°08′51.4″", 60, 30, 2400],
            [2, "郑家村互助幸福院", "农村幸福院", "122°19′35.2″", "41°05′33.9″", "", "", 180],
            [3, "西拉拉村互助幸福院", "互助幸福院", "122.317276,41.103643", "", "", "", 150],
            ["合计", "", "", "", "", 60, 30, 2730],
        ],
        "高升镇": [
            [1, "高升镇养老服务中心", "乡镇养老服务中心", "１２２．０５１２", "４１．２８３３", 80, 50, 3100],
            [2, "高升镇老年食堂", "老年食堂", "122.0530", "41.2840", "", "", 200],
            ["小 计", "", "", "", "", 80, 50, 3300],
        ],
    }
    for town, rows in towns.items():
        sheet = book.create_sheet(town)
        sheet.append([f"盘山县{town}养老服务设施情况统计表"])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=8)
        sheet.append(["填报单位：盘山县民政局", "", "", "", "", "填报日期：2024年6月"])
        sheet.append(["序号", "机构名称", "机构类型", "经度", "纬度", "床位数（张）", "护理型床位", "建筑面积（㎡）"])
        for row in rows:
            sheet.append(row)
    notes = book.create_sheet("填表说明")
    notes.append(["说明：坐标为 WGS-84，由现场 GPS 采集。"])
    book.save(path)
    return path


def test_a_bureau_workbook_with_one_sheet_per_town_is_read_whole(tmp_path):
    path = _bureau_workbook(tmp_path / "盘山县养老设施.xlsx")

    facilities, rejects, summary = ingest.read_facilities(path, sheet="all")

    assert summary["sheets"] == ["沙岭镇", "高升镇"]  # the notes sheet has no facility header
    assert summary["rows_in"] == 7 and summary["located"] == 5 and summary["rejected"] == 2
    assert set(rejects["reason"]) == {"total_row"}
    assert set(rejects["source_file"]) == {"盘山县养老设施.xlsx#沙岭镇", "盘山县养老设施.xlsx#高升镇"}
    by_name = facilities.set_index("name")
    # the sheet name is the town; the row number is the one Excel shows
    assert by_name.loc["郑家村互助幸福院", "town_name"] == "沙岭镇"
    assert by_name.loc["高升镇老年食堂", "source_row"] == 5
    assert "town_from_sheet" in by_name.loc["高升镇老年食堂", "flags"]
    # degrees-minutes-seconds, full-width digits and a "lng,lat" pair pasted into the 经度 cell
    sl = by_name.loc["沙岭镇敬老院"].geometry
    assert (round(sl.x, 5), round(sl.y, 5)) == (round(122 + 22 / 60 + 17.7 / 3600, 5), round(41 + 8 / 60 + 51.4 / 3600, 5))
    assert round(by_name.loc["高升镇养老服务中心"].geometry.x, 4) == 122.0512
    pasted = by_name.loc["西拉拉村互助幸福院"]
    assert (pasted.geometry.x, pasted.geometry.y) == (122.317276, 41.103643)
    assert "lonlat_in_one_cell" in pasted["flags"]
    assert by_name.loc["沙岭镇敬老院", "beds"] == 60 and by_name.loc["沙岭镇敬老院", "floor_area_m2"] == 2400

    first_sheet_only, _, summary_one = ingest.read_facilities(path)
    assert summary_one["sheets"] == ["沙岭镇"] and len(first_sheet_only) == 3


# ----------------------------------------------------------------------------- rows without coordinates


def _panjin_units():
    return ingest.read_units(shared_data("admin/vonng_adcode/adcode/211122.csv"), crs="gcj02")


def _panjin_village_list():
    """A town's list of 互助幸福院 without coordinates, with real village names of 盘山县."""
    units = _panjin_units()
    villages = units[units["level"] == "village"]
    code_of = {(t, n): c for t, n, c in zip(villages["parent_code"], villages["name"], villages["code"])}
    towns = units[units["level"] == "town"].set_index("name")["code"]
    # 于家村 exists in two towns of the county: only the town column tells them apart
    yujia = [c for (t, n), c in code_of.items() if n == "于家村委会"]
    assert len(yujia) == 2
    yujia_town = {c: units.set_index("code").loc[c, "parent_code"] for c in yujia}
    town_of_code = {code: name for name, code in towns.items()}
    rows = [["序号", "所属乡镇", "所属村", "设施名称", "类型", "建筑面积"]]
    expected = {}
    for i, code in enumerate(yujia, start=1):
        town = town_of_code[yujia_town[code]]
        rows.append([i, town, "于家村", f"{town}于家村互助幸福院", "农村幸福院", 120])
        expected[f"{town}于家村互助幸福院"] = code
    rows.append([3, "", "", "沙岭镇北郑家村幸福院", "互助幸福院", 100])  # place only in the name
    expected["沙岭镇北郑家村幸福院"] = code_of[(towns["沙岭镇"], "北郑家村委会")]
    rows.append([4, "沙岭镇", "不存在村", "不存在村互助幸福院", "互助幸福院", 90])  # no such village: the town counts
    expected["不存在村互助幸福院"] = None
    rows.append([5, "不存在镇", "不存在村", "不存在村敬老院", "敬老院", 90])  # neither town nor village known
    rows.append(["合计", "", "", "", "", 520])
    return rows, expected, units


def test_rows_without_coordinates_are_placed_by_town_village_and_name(tmp_path):
    rows, expected, units = _panjin_village_list()
    path = _write_csv(tmp_path / "盘山县互助幸福院名单.csv", rows, encoding="gbk")

    facilities, rejects, summary = ingest.read_facilities(path)
    assert summary["presence_only"] == 5 and summary["located"] == 0 and summary["rejected"] == 1
    assert rejects["reason"].tolist() == ["total_row"]

    assigned = ingest.assign_facilities_to_units(facilities, units)
    located, presence, unplaced = ingest.split_presence_only(assigned)

    assert located.empty
    assert {n: c if isinstance(c, str) else None for n, c in zip(presence["name"], presence["village_code"])} == expected
    town_only = presence.set_index("name").loc["不存在村互助幸福院"]
    assert town_only["unit_assignment"] == "town_name" and town_only["town_code"] == "211122101000"
    assert (presence["unit_assignment"] != "town_name").sum() == 3
    assert (presence.loc[presence["unit_assignment"] != "town_name", "unit_assignment"] == "village_name").all()
    assert unplaced["reason"].tolist() == ["no_location"] and unplaced["source_row"].tolist() == [6]
    # rows in = located + presence-only + rejected
    assert summary["rows_in"] == len(located) + len(presence) + len(unplaced) + len(rejects) == 6


# ----------------------------------------------------------------------------- the study file


def test_the_kinds_file_named_in_the_study_file_is_used(tmp_path):
    table = _write_csv(tmp_path / "stations.csv", [
        ["名称", "类型", "经度", "纬度"],
        ["城关街道为老服务站", "社区为老服务站", 113.905, 30.965],
        ["城关幸福食堂", "幸福食堂", 113.906, 30.966],
    ])
    kinds_file = tmp_path / "my_kinds.yaml"
    kinds_file.write_text("day_care:\n  types: [社区为老服务站]\n", encoding="utf-8")
    demo = (REPO_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8")
    study = tmp_path / "study.yaml"
    study.write_text(
        demo.replace("    - path: ../data/facilities/demo_facilities.xlsx\n      crs: gcj02\n",
                     f"    - path: {table}\n      crs: wgs84\n      kinds: my_kinds.yaml\n")
        .replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")

    config = load_study(study)
    assert config.facilities[0].kinds == kinds_file.resolve()

    from coverage.pipeline import prepare_inputs

    inputs = prepare_inputs(config)
    assert inputs.facilities.set_index("name")["kinds"].to_dict() == {
        "城关街道为老服务站": "day_care", "城关幸福食堂": "canteen"}
    assert inputs.rejects.empty


def test_validate_on_the_command_line_takes_a_kinds_file(tmp_path):
    import subprocess
    import sys

    table = _write_csv(tmp_path / "stations.csv", [
        ["名称", "类型", "经度", "纬度"], ["城关街道为老服务站", "社区为老服务站", 113.905, 30.965]])
    kinds_file = tmp_path / "my_kinds.yaml"
    kinds_file.write_text("day_care: [社区为老服务站]\n", encoding="utf-8")

    def validate(*extra):
        return subprocess.run([sys.executable, "-m", "coverage", "validate", str(table), "--rejects",
                               str(tmp_path / "r.csv"), *extra], capture_output=True, text=True, cwd=REPO_ROOT)

    without = validate()
    assert without.returncode == 0 and "剔除 1" in without.stdout
    with_file = validate("--kinds", str(kinds_file))
    assert with_file.returncode == 0 and "剔除 0" in with_file.stdout and "日间照料中心 1" in with_file.stdout
    wrong = validate("--kinds", str(tmp_path / "missing.yaml"))
    assert wrong.returncode == 2 and "missing.yaml" in wrong.stderr and "Traceback" not in wrong.stderr


# ----------------------------------------------------------------------------- the coordinate-system check


def _demo_study_with(tmp_path: Path, facility_block: str, extra_parameters: str = "") -> Path:
    demo = (REPO_ROOT / "studies" / "demo.yaml").read_text(encoding="utf-8")
    text = demo.replace("    - path: ../data/facilities/demo_facilities.xlsx\n      crs: gcj02\n", facility_block)
    if extra_parameters:
        text = text.replace("parameters:\n", "parameters:\n" + extra_parameters, 1)
    study = tmp_path / "study.yaml"
    study.write_text(text.replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")
    return study


def _gcj02_list_without_its_crs_column(tmp_path: Path) -> Path:
    bureau, _, _ = ingest.read_facilities(REPO_ROOT / "data" / "facilities" / "demo_facilities.xlsx", crs="gcj02")
    # the facilities in service (the demo list ends with 在建 / 规划 / 停业 rows, coverage.timeline)
    from coverage import timeline

    located = bureau[bureau.geometry.notna().to_numpy() & timeline.open_mask(bureau)]
    lon, lat = coords.wgs84_to_gcj02(located.geometry.x.to_numpy(), located.geometry.y.to_numpy())
    rows = [["名称", "类型", "经度", "纬度"]] + [
        [name, kind, f"{x:.6f}", f"{y:.6f}"] for name, kind, x, y in zip(located["name"], located["type_raw"], lon, lat)]
    return _write_csv(tmp_path / "高德坐标名单.csv", rows)


def test_a_gcj02_list_declared_as_wgs84_stops_the_run_with_the_figures(tmp_path):
    import subprocess
    import sys

    table = _gcj02_list_without_its_crs_column(tmp_path)
    study = _demo_study_with(tmp_path, f"    - path: {table}\n      crs: wgs84\n")
    done = subprocess.run([sys.executable, "-m", "coverage", "run", str(study), "--out", str(tmp_path / "out"),
                           "--quiet", "--no-map"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "高德坐标名单.csv" in done.stderr and "gcj02" in done.stderr and "crs_check: warn" in done.stderr
    assert not (tmp_path / "out" / "demo" / "demo_coverage.xlsx").exists()  # stopped before any table

    warned = _demo_study_with(tmp_path, f"    - path: {table}\n      crs: wgs84\n", "  crs_check: warn\n")
    from coverage.pipeline import prepare_inputs

    notes: list[str] = []
    prepare_inputs(load_study(warned), notes=notes)
    assert any("declared wgs84" in note and "gcj02" in note for note in notes)


def test_a_list_declared_correctly_passes_the_check(tmp_path):
    table = _gcj02_list_without_its_crs_column(tmp_path)
    from coverage.pipeline import prepare_inputs

    notes: list[str] = []
    inputs = prepare_inputs(load_study(_demo_study_with(tmp_path, f"    - path: {table}\n      crs: gcj02\n")),
                            notes=notes)
    assert len(inputs.facilities) == 58
    assert any(note.startswith("facilities: coordinate system gcj02 fits the streets") for note in notes)


def test_a_list_in_projected_metres_is_one_error_naming_the_file(tmp_path):
    from coverage._errors import InputDataError

    path = _write_csv(tmp_path / "cgcs2000_gk.csv", [["名称", "类型", "X", "Y"]] + [
        [f"第{i}日间照料中心", "日间照料中心", 38530000.0 + 100 * i, 3390000.0 + 80 * i] for i in range(12)])
    with pytest.raises(InputDataError) as caught:
        ingest.read_facilities(path)
    message = str(caught.value)
    assert "cgcs2000_gk.csv" in message and "row 2" in message and "metres of a map projection" in message
    assert "12 of 12 rows" in message


def test_an_urban_study_with_only_community_points_and_an_amap_export_runs_on_a_real_extract(tmp_path):
    """A new user's first study: the real Nanjing extract, an Amap export, community points with totals."""
    import geopandas as gpd

    from coverage import network
    from coverage.pipeline import run_study

    osm = shared_data("osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf")
    net = network.load_walk_arrays(osm)
    middles = gpd.GeoSeries(net.edge_geometry, crs=net.crs).interpolate(0.5, normalized=True).to_crs(4326)
    picks = np.random.default_rng(3).choice(len(middles), 20, replace=False)
    words = [("社区日间照料中心", "生活服务;生活服务场所;生活服务场所"), ("长者食堂", "餐饮服务;中餐厅;中餐厅")]
    rows = [AMAP_HEADER]
    for k, i in enumerate(picks):
        lon, lat = coords.wgs84_to_gcj02(np.array([middles.iloc[i].x]), np.array([middles.iloc[i].y]))
        suffix, category = words[k % 2]
        rows.append([f"玄武区第{k}号{suffix}", category, "070000", f"某路{k}号", f"{lon[0]:.6f},{lat[0]:.6f}",
                     "江苏省", "南京市", "玄武区", "[]"])
    _write_csv(tmp_path / "amap.csv", rows, encoding="gbk")
    x0, y0, x1, y1 = middles.total_bounds
    spots = [(0.2, 0.2), (0.5, 0.25), (0.8, 0.2), (0.2, 0.75), (0.5, 0.7), (0.8, 0.8)]
    units = [["code", "name", "level", "parent_code", "ur_code", "longitude", "latitude"],
             ["320102000000", "玄武区", "county", "", "", "", ""],
             ["320102002000", "示例街道", "town", "320102000000", "111", "", ""]]
    units += [[f"320102002{n:03d}", f"第{n}社区", "village", "320102002000", "111",
               f"{x0 + (x1 - x0) * fx:.6f}", f"{y0 + (y1 - y0) * fy:.6f}"] for n, (fx, fy) in enumerate(spots, 1)]
    _write_csv(tmp_path / "units.csv", units)
    totals = {f"320102002{n:03d}": 1500 + 100 * n for n in range(1, 7)}
    _write_csv(tmp_path / "census.csv", [["区划代码", "60岁及以上人口"]] + [[c, t] for c, t in totals.items()])
    (tmp_path / "xuanwu.yaml").write_text(
        "study: {name: xuanwu, title: 玄武区试运行}\n"
        f"inputs:\n  network: {osm}\n  facilities: [{{path: amap.csv}}]\n  units: {{path: units.csv, crs: wgs84}}\n"
        "  population: {census: {path: census.csv, code_column: 区划代码, total_column: 60岁及以上人口, level: village}}\n"
        "targets: {sets: [national, putuo_2025]}\n", encoding="utf-8")

    results = run_study(load_study(tmp_path / "xuanwu.yaml", output_root=tmp_path / "out"), make_map=False)

    assert results.ingest_summary["rows_in"] == 20 and results.ingest_summary["located"] == 20
    assert results.demand_projected["elderly"].sum() == pytest.approx(sum(totals.values()))
    assert any("extent of the street network" in note for note in results.notes)
    wide = results.coverage_wide.set_index(["scope", "kind"])
    assert wide.loc[("study", "mutual_aid"), "share_15min"] == 0.0  # no 互助幸福院 in a city: 0 %, no crash
    assert 0.0 < wide.loc[("study", "day_care"), "share_15min"] < 1.0
    assert len(results.targets) and (Path(results.config.output_dir) / "xuanwu_coverage.xlsx").exists()


def test_a_tencent_export_reads_its_category_path_and_flattened_location(tmp_path):
    truth_lon, truth_lat = 113.3245, 23.1291
    glon, glat = coords.wgs84_to_gcj02(np.array([truth_lon]), np.array([truth_lat]))
    path = _write_csv(tmp_path / "tencent.csv", [
        ["id", "title", "address", "category", "location.lat", "location.lng", "ad_info.adcode",
         "ad_info.province", "ad_info.city", "ad_info.district"],
        ["1234567890", "天河区石牌街长者饭堂", "石牌东路1号", "美食:中餐厅", float(glat[0]), float(glon[0]), 440106,
         "广东省", "广州市", "天河区"],
        ["1234567891", "天河区颐康中心", "天河路2号", "生活服务:养老院", float(glat[0]) + 0.01, float(glon[0]), 440106,
         "广东省", "广州市", "天河区"],
    ])

    facilities, rejects, summary = ingest.read_facilities(path)

    assert summary["poi_source"].startswith("Tencent") and summary["crs"] == "gcj02" and rejects.empty
    by_name = facilities.set_index("name")
    assert by_name["kinds"].to_dict() == {"天河区石牌街长者饭堂": "canteen", "天河区颐康中心": "comprehensive"}
    point = by_name.loc["天河区石牌街长者饭堂"].geometry
    assert metres_between(point.x, point.y, truth_lon, truth_lat) < 1.0
    assert by_name.loc["天河区石牌街长者饭堂", "address"] == "广东省广州市天河区石牌东路1号"


def test_a_poi_category_decides_only_when_the_name_says_nothing(tmp_path):
    path = _write_csv(tmp_path / "amap_categories.csv", [AMAP_HEADER,
        ["东湖颐养之家", "生活服务;社会福利;养老院", "071300", "[]", "114.30,30.58", "湖北省", "武汉市", "武昌区", "[]"]])
    facilities, rejects, _ = ingest.read_facilities(path)
    assert rejects.empty and facilities["kinds"].tolist() == ["care_home"] and facilities["flags"].tolist() == [""]


def test_records_on_a_geocoder_fallback_point_count_for_their_own_village_not_the_one_under_the_point(tmp_path):
    from coverage.pipeline import prepare_inputs

    units = ingest.read_units(REPO_ROOT / "data" / "boundaries" / "demo_units.geojson")
    villages = units[(units["level"] == "village") & (units["urban"] == False)].head(6)  # noqa: E712
    towns = units.set_index("code")["name"]
    centre = units[units["level"] == "county"].geometry.iloc[0].representative_point()
    under = units[(units["level"] == "village") & units.geometry.contains(centre)]["code"].tolist()
    # a town's list geocoded by a service that gave up: every row on one point, names and villages all different
    rows = [["名称", "类型", "经度", "纬度", "所属乡镇", "所属村"]] + [
        [f"{v.name}互助幸福院", "互助幸福院", f"{centre.x:.6f}", f"{centre.y:.6f}", towns[v.parent_code], v.name]
        for v in villages.itertuples()]
    table = _write_csv(tmp_path / "geocoded.csv", rows)
    study = _demo_study_with(tmp_path, "    - path: ../data/facilities/demo_facilities.xlsx\n      crs: gcj02\n"
                                       f"    - path: {table}\n      crs: wgs84\n", "  crs_check: off\n")

    inputs = prepare_inputs(load_study(study))

    assert inputs.ingest_summary["fallback_records"] == 6
    placed = inputs.presence_only[inputs.presence_only["source_file"] == "geocoded.csv"]
    assert dict(zip(placed["name"], placed["village_code"])) == {
        f"{v.name}互助幸福院": v.code for v in villages.itertuples()}
    assert not set(placed["village_code"]) & set(under)
    assert (placed["unit_assignment"] == "village_name").all()
    assert not (inputs.facilities["source_file"] == "geocoded.csv").any()  # none walks from the fallback point
