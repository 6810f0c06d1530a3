"""Facilities in time: opening years and status read from bureau lists, as-of filtering, the trajectory, yearly targets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pandas.testing as pdt
import pytest

from coverage import cli, ingest, pipeline, timeline
from coverage._errors import ConfigError
from coverage.catalogue import parse_target
from coverage.config import load_study

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "studies" / "demo.yaml"
YEARS = tuple(range(2020, 2028))


# --------------------------------------------------------------------------- parsing cells


@pytest.mark.parametrize("cell, year", [
    (2019, 2019), (2019.0, 2019), ("2019", 2019), ("2019年", 2019), ("2019-06", 2019), ("2019/6/1", 2019),
    ("2019年6月", 2019), ("2019.06", 2019), (2019.06, 2019), ("2019-06-01T00:00:00", 2019),
    ("2019-06-01 08:30:00", 2019), (dt.datetime(2019, 6, 1), 2019), (dt.date(2021, 1, 5), 2021),
    (43617, 2019), ("２０１９年", 2019), ("2018年底", 2018), (" 2023 ", 2023),
])
def test_years_are_read_from_the_cells_bureau_lists_hold(cell, year):
    assert timeline.parse_year(cell) == (float(year), True)


@pytest.mark.parametrize("cell, readable", [("", True), ("无", True), ("—", True), (None, True),
                                            ("08:00-17:00", True), ("待定", False), ("1800", False),
                                            ("2019-13", False), ("明年", False)])
def test_empty_or_unreadable_years_give_no_year(cell, readable):
    year, ok = timeline.parse_year(cell)
    assert math.isnan(year) and ok is readable


@pytest.mark.parametrize("cell, status", [
    ("已建成", "open"), ("建成", "open"), ("运营", "open"), ("正常运营", "open"), ("在运营", "open"),
    ("已投用", "open"), ("在建", "under_construction"), ("建设中", "under_construction"),
    ("施工", "under_construction"), ("规划", "planned"), ("拟建", "planned"), ("计划2026年建成", "planned"),
    ("待建", "planned"), ("未建成", "planned"), ("停业", "closed"), ("停运", "closed"), ("已关闭", "closed"),
    ("撤销", "closed"), ("注销", "closed"), ("Planned", "planned"), ("", ""),
])
def test_status_words(cell, status):
    assert timeline.parse_status(cell) == (status, True)


def test_unknown_status_words_are_flagged_not_guessed():
    assert timeline.parse_status("待核实") == ("", False)


# --------------------------------------------------------------------------- a bureau list with years


@pytest.fixture()
def bureau_list(tmp_path) -> Path:
    """A district list as bureaus send them: title rows, 建成年份 in mixed shapes, 在建 / 停业 / 规划 rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "设施清单"
    sheet.append(["某区养老服务设施建设情况统计表"])
    sheet.append(["填报单位：某区民政局", None, None, None, None, "截至2024年12月"])
    sheet.append(["序号", "设施名称", "设施类型", "经度", "纬度", "建成年份", "建设状态", "停业时间"])
    rows = [
        (1, "城关社区日间照料中心", "日间照料中心", 113.900, 30.960, "2018年", "已建成", None),
        (2, "城关幸福食堂", "幸福食堂", 113.902, 30.961, dt.datetime(2019, 6, 1), "正常运营", None),
        (3, "城关镇敬老院", "敬老院", 113.904, 30.962, "2019/6/1", None, None),
        (4, "新村社区日间照料中心", "日间照料中心", 113.906, 30.963, 2025, "在建", None),
        (5, "老街幸福食堂", "幸福食堂", 113.908, 30.964, 2016.0, "停业", "2022年"),
        (6, "河口村互助幸福院", "互助幸福院", 113.910, 30.965, "待定", "规划", None),
        (7, "东门幸福食堂", "幸福食堂", 113.912, 30.966, "2019.06", "已建成", None),
        (8, "西门社区日间照料中心", "日间照料中心", 113.914, 30.967, None, None, None),
    ]
    for row in rows:
        sheet.append(list(row))
    path = tmp_path / "某区设施清单.xlsx"
    book.save(path)
    return path


def test_opening_years_and_status_are_read_and_no_row_is_dropped(bureau_list):
    records, rejects, summary = ingest.read_facilities(bureau_list)
    assert summary["rows_in"] == 8 == len(records) and rejects.empty
    assert summary["columns"]["建成年份"] == "opened" and summary["columns"]["建设状态"] == "status"
    by_name = records.set_index("name")
    assert by_name.loc["城关社区日间照料中心", "opened"] == 2018
    assert by_name.loc["城关幸福食堂", "opened"] == 2019  # an Excel date cell
    assert by_name.loc["城关镇敬老院", "opened"] == 2019 and by_name.loc["城关镇敬老院", "status"] == ""
    assert by_name.loc["新村社区日间照料中心", "status"] == "under_construction"
    assert by_name.loc["老街幸福食堂", "status"] == "closed" and by_name.loc["老街幸福食堂", "closed"] == 2022
    assert by_name.loc["东门幸福食堂", "opened"] == 2019
    assert math.isnan(by_name.loc["西门社区日间照料中心", "opened"])
    # 待定 is no year: the row stays, flagged, and as a plan without a year it never counts
    planned = by_name.loc["河口村互助幸福院"]
    assert math.isnan(planned["opened"]) and "unreadable_opened" in planned["flags"].split(";")
    assert summary["flags"]["unreadable_opened"] == 1


def test_as_of_filtering_on_a_hand_made_list(bureau_list):
    records, _, _ = ingest.read_facilities(bureau_list)
    names = records["name"].to_numpy()

    def open_in(year):
        return set(names[timeline.open_mask(records, year)])

    listed = {"城关社区日间照料中心", "城关幸福食堂", "城关镇敬老院", "东门幸福食堂", "西门社区日间照料中心"}
    # the facility opening in 2025 counts from 2025, not in 2024
    assert open_in(2024) == listed
    assert open_in(2025) == listed | {"新村社区日间照料中心"}
    # the canteen that closed in 2022 counts 2016–2021
    assert "老街幸福食堂" in open_in(2021) and "老街幸福食堂" not in open_in(2022)
    assert "老街幸福食堂" not in open_in(2015)
    # 2018: the day-care centre of 2018 is open, the 2019 ones not yet; the one without a year always
    assert open_in(2018) == {"城关社区日间照料中心", "老街幸福食堂", "西门社区日间照料中心"}
    # as listed (a plain run): 在建 / 规划 / 停业 do not count, whatever their years
    assert open_in(None) == listed
    assert list(timeline.as_of(records, 2025)["name"]) == [n for n in names if n in open_in(2025)]
    kept, rest = timeline.split_open(records, None)
    assert len(kept) + len(rest) == len(records)
    assert timeline.status_counts(rest) == {"under_construction": 1, "planned": 1, "closed": 1}


def test_open_mask_rules_without_columns_and_with_a_closing_year_only():
    frame = pd.DataFrame({"name": ["a", "b"]})
    assert timeline.open_mask(frame, 2020).tolist() == [True, True]  # no time columns: open in every year
    frame = pd.DataFrame({"opened": [np.nan, 2010.0, np.nan], "closed": [2021.0, np.nan, np.nan],
                          "status": ["closed", "planned", "planned"]})
    assert timeline.open_mask(frame, 2020).tolist() == [True, True, False]
    assert timeline.open_mask(frame, 2021).tolist() == [False, True, False]


def test_years_option_is_parsed_and_bad_values_are_refused():
    assert timeline.parse_years("2020-2026") == tuple(range(2020, 2027))
    assert timeline.parse_years("2020,2023, 2025") == (2020, 2023, 2025)
    assert timeline.parse_years("2024–2025") == (2024, 2025)
    for bad in ("2026-2020", "20x0", "1900-1910"):
        with pytest.raises(ConfigError):
            timeline.parse_years(bad)


def test_bad_years_option_exits_with_code_2_and_no_traceback(capsys, tmp_path):
    code = cli.main(["run", str(DEMO), "--out", str(tmp_path), "--quiet", "--no-map", "--years", "2026-2020"])
    assert code == 2
    assert "--years" in capsys.readouterr().err


# --------------------------------------------------------------------------- yearly targets


def _entry(**changes):
    raw = {"id": "x.t", "set": "x", "locality": "某县", "document": "putuo_2024", "label_zh": "助餐覆盖",
           "label_en": "meal aid", "metric": "unit_presence", "kinds": ["canteen"], "level": "village",
           "required": {2024: 0.8, 2025: 0.9}, "quote": "助餐"}
    raw.update(changes)
    return raw


def test_a_yearly_series_is_read_and_checked(catalogue_documents):
    target = parse_target(_entry(), documents=catalogue_documents, where="t.yaml")
    assert target.required_by_year == ((2024, 0.8), (2025, 0.9))
    assert target.required == 0.9 and target.year == 2025
    assert target.required_in(2023) is None and target.required_in(2024) == 0.8
    assert target.required_in(2030) == 0.9 and target.for_year(2024).required == 0.8
    with pytest.raises(ConfigError, match="share"):
        parse_target(_entry(required={2024: 80}), documents=catalogue_documents, where="t.yaml")
    with pytest.raises(ConfigError, match="year"):
        parse_target(_entry(required={"next": 0.8}), documents=catalogue_documents, where="t.yaml")


@pytest.fixture()
def catalogue_documents():
    from coverage import targets

    return targets.load_catalogue().documents


# --------------------------------------------------------------------------- the trajectory on the demo


@pytest.fixture(scope="module")
def demo_config(tmp_path_factory):
    config = load_study(DEMO)
    out = tmp_path_factory.mktemp("years")
    # putuo_plan: yearly series; equity_example: capacity and equity targets, measured on each year's sites
    return dataclasses.replace(config, output_dir=out,
                               target_sets=tuple(config.target_sets) + ("putuo_plan", "equity_example"))


@pytest.fixture(scope="module")
def demo_trajectory(demo_config):
    results = pipeline.run_study(demo_config, write=True, make_map=False, years=YEARS)
    return results


def test_the_trajectory_equals_separate_runs_per_year_exactly(demo_config, demo_trajectory):
    trajectory = demo_trajectory.trajectory
    assert trajectory.years == YEARS
    changed = 0
    previous = None
    for year in YEARS:
        alone = pipeline.run_study(demo_config, write=False, make_map=False, as_of=year)
        mine = trajectory.coverage[trajectory.coverage["year"] == year].drop(columns="year").reset_index(drop=True)
        # every kind, threshold, unit and town: the same figures, bit for bit
        pdt.assert_frame_equal(mine, alone.coverage_long.reset_index(drop=True), check_exact=True)
        for kind, seconds in alone.seconds_by_kind.items():
            np.testing.assert_array_equal(trajectory.seconds_by_year[year][kind], seconds)
        targets = trajectory.targets[trajectory.targets["year_evaluated"] == year].reset_index(drop=True)
        due = (targets["status"] != "not due").to_numpy()
        pdt.assert_series_equal(targets.loc[due, "actual"], alone.targets.loc[due, "actual"], check_exact=True)
        pdt.assert_series_equal(targets.loc[due, "status"], alone.targets.loc[due, "status"])
        pdt.assert_series_equal(targets.loc[due, "required"], alone.targets.loc[due, "required"])
        if previous is not None and not mine["share"].equals(previous):
            changed += 1
        previous = mine["share"]
    # the demo's opening years do change the figures over the years (the test would be idle otherwise)
    assert changed >= 3
    # capacity-aware coverage and the Gini of access have figures every year (once "no data" in a trajectory)
    equity_rows = trajectory.targets[trajectory.targets["metric"].isin(["capacity_share", "access_gini"])]
    assert len(equity_rows) == 2 * len(YEARS) and equity_rows["actual"].notna().all()
    assert equity_rows.groupby("target_id")["actual"].nunique().max() > 1  # they move with the openings


def test_the_as_listed_run_is_the_demo_as_before(demo_trajectory):
    summary = demo_trajectory.ingest_summary
    assert summary["not_open"] == 9 and summary["evaluation_year"] is None
    assert summary["not_open_by_status"] == {"under_construction": 3, "planned": 5, "closed": 1}
    assert any("not open today" in note for note in demo_trajectory.notes)


def _village_mutual_aid_expected(year: int) -> bool:
    """Independently of the pipeline: do ≥ 60 % of the demo's rural villages have a 互助幸福院 open in ``year``?"""
    import geopandas as gpd

    units = gpd.read_file(REPO / "data" / "boundaries" / "demo_units.geojson")
    villages = units[(units["level"] == "village") & units["ur_code"].isin([210, 220])]
    sheet = openpyxl.load_workbook(REPO / "data" / "facilities" / "demo_facilities.xlsx")["设施名录"]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[1])
    with_home = set()
    for row in rows[2:]:
        cells = dict(zip(header, row))
        if cells["类型"] != "互助幸福院" or cells["经度"] is None:
            continue
        year_text = str(cells["建成年份"] or "")
        opened = int(year_text[:4]) if year_text[:4].isdigit() else None
        if cells["状态"] in ("在建", "规划") and opened is None:
            continue
        if cells["状态"] == "停业" or (opened is not None and opened > year):
            continue
        with_home.add(str(cells["区划代码"]))
    return len(with_home & set(villages["code"].astype(str))) / len(villages) >= 0.6


def test_a_yearly_target_is_met_and_unmet_as_expected(demo_trajectory):
    trajectory = demo_trajectory.trajectory
    table = trajectory.targets.set_index(["target_id", "year_evaluated"])
    expected = {year: _village_mutual_aid_expected(year) for year in YEARS}
    assert not expected[2024] and expected[2027]  # the demo's plan closes the gap
    for year in YEARS:
        status = table.loc[("panjin_2018.village_mutual_aid", year), "status"]
        assert (status == "pass") is expected[year], year
    first = trajectory.first_met.set_index("target_id")
    assert first.loc["panjin_2018.village_mutual_aid", "first_year_met"] == min(y for y in YEARS if expected[y])
    # the series: nothing due before 2024, 80 % in 2024, 90 % from 2025, status follows actual vs required
    series = table.loc["putuo_plan.meal_aid_village_coverage"]
    assert (series.loc[[2020, 2021, 2022, 2023], "status"] == "not due").all()
    assert series.loc[2024, "required"] == 0.8 and (series.loc[[2025, 2026, 2027], "required"] == 0.9).all()
    for year in range(2024, 2028):
        assert (series.loc[year, "status"] == "pass") is bool(series.loc[year, "actual"] >= series.loc[year, "required"])


def test_the_progress_workbook_reads_back_with_its_fills(demo_trajectory):
    files = demo_trajectory.output_files
    book = openpyxl.load_workbook(files["demo_年度进展.xlsx"])
    assert {"年度进展", "年度进展矩阵", "逐年覆盖率", "逐年设施"} <= set(book.sheetnames)
    assert "合成示例数据" in book["年度进展"]["A1"].value
    matrix = book["年度进展矩阵"]
    header = [c.value for c in matrix[2]]
    assert header[3:] == [str(y) for y in YEARS]
    trajectory = demo_trajectory.trajectory
    status = trajectory.targets.set_index(["label_zh", "year_evaluated"])["status"]
    fills = {"pass": "C6EFCE", "fail": "FFC7CE", "no data": "D9D9D9"}
    checked = 0
    for row in matrix.iter_rows(min_row=3):
        label = row[0].value
        for cell, year in zip(row[3:], YEARS):
            raw = status.loc[(label, year)]
            if raw in fills:
                assert cell.fill.fgColor.rgb[-6:] == fills[raw], (label, year)
                checked += 1
            assert ("未达标" in cell.value) is (raw == "fail")
    assert checked >= len(YEARS) * 5
    long = book["年度进展"]
    assert long.max_row - 2 == len(trajectory.targets)
    assert Path(files["demo_年度进展.png"]).stat().st_size > 10_000
    coverage_csv = pd.read_csv(files["trajectory_coverage.csv"], encoding="utf-8-sig")
    assert len(coverage_csv) == len(trajectory.coverage)


def test_the_years_map_has_one_layer_per_year_with_the_new_facilities(demo_trajectory, tmp_path):
    import json
    import re

    from coverage import maps

    trajectory = demo_trajectory.trajectory
    m = maps.years_map(demo_trajectory.units[demo_trajectory.units.geom_type != "Point"],
                       trajectory.located_by_year, title="示例县（合成示例数据 / synthetic demo data）",
                       synthetic=True, offline=False)
    text = maps.save_map(m, tmp_path / "years.html", offline=False).read_text(encoding="utf-8")
    names = [json.loads(f'"{raw}"') for raw in re.findall(r'"(20\d\d \\u5e74[^"]*)"', text)]
    assert [int(name[:4]) for name in names] == list(YEARS)
    for year, name in zip(YEARS, names):
        assert f"{len(trajectory.located_by_year[year])} 处设施" in name
    # the 2025 layer names the sites that open that year
    opened = set(trajectory.located_by_year[2025]["facility_id"]) - set(trajectory.located_by_year[2024]["facility_id"])
    assert f"新增 {len(opened)} 处" in names[YEARS.index(2025)] and opened
