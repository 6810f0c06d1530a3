"""Scenarios: an added site reproduces the `site` figure, the difference map matches the tables, bad blocks are refused."""

from __future__ import annotations

import dataclasses
import json

import geopandas as gpd
import numpy as np
import pytest
from openpyxl import load_workbook

from coverage import pipeline, proposals
from coverage._errors import ConfigError
from coverage.cli import main
from coverage.config import load_study
from coverage.scenarios import parse_scenarios, run_scenarios
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"
DEMO_SCENARIOS = REPO_ROOT / "studies" / "demo_scenarios.yaml"
#: an uncovered spot of the demo county (西城街道·西湖社区, WGS-84), where day care gains people
SITE = (113.88382, 30.95719)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    config = load_study(DEMO, output_root=tmp_path_factory.mktemp("scen"))
    return config, pipeline.prepare_inputs(config)


@pytest.fixture(scope="module")
def compared(demo):
    config, inputs = demo
    block = (
        {"name": "one site", "add_sites": [{"name": "拟建日间照料中心", "lon": SITE[0], "lat": SITE[1],
                                             "kind": "day_care", "crs": "wgs84"}]},
        {"name": "close", "close": ["城关街道府前社区老年人日间照料中心"]},
        {"name": "fast", "walk_speed_mps": 1.0},
    )
    return run_scenarios(dataclasses.replace(config, scenarios=block), inputs=inputs,
                         kinds=("day_care", "any"))


def test_a_scenario_adding_one_site_reproduces_the_site_figure(demo, compared, tmp_path):
    config, inputs = demo
    table = tmp_path / "one_candidate.csv"
    table.write_text(f"名称,经度,纬度\n拟建日间照料中心,{SITE[0]},{SITE[1]}\n", encoding="utf-8")
    proposal = proposals.propose_sites(config, kind="day_care", add=1, candidates_file=table, candidates_crs="wgs84",
                                       only_candidates=True, inputs=inputs)
    assert proposal.result.objective > 1000  # the spot is worth a site: the test can fail
    towns = compared.towns
    row = towns[(towns["scenario"] == "one site") & (towns["kind"] == "day_care") & (towns["scope"] == "study")]
    assert compared.minutes == proposal.minutes == 15
    assert float(row["gained"].iloc[0]) == pytest.approx(proposal.result.objective, rel=1e-9)
    assert float(row["difference"].iloc[0]) == pytest.approx(proposal.result.objective, rel=1e-9)
    assert float(row["lost"].iloc[0]) == 0.0
    # the village the site stands in now has a day-care centre
    assert int(row["units_difference"].iloc[0]) == 1


def test_the_difference_map_persons_equal_the_tables(compared):
    towns, diff = compared.towns, compared.difference
    assert len(diff) and set(diff["change"]) <= {"gained", "lost"}
    for (scenario, kind), rows in towns.groupby(["scenario", "kind"]):
        study = rows[rows["scope"] == "study"].iloc[0]
        part = diff[(diff["scenario"] == scenario) & (diff["kind"] == kind)]
        gained = float(part.loc[part["change"] == "gained", "elderly"].sum())
        lost = float(part.loc[part["change"] == "lost", "elderly"].sum())
        assert gained == pytest.approx(study["gained"], abs=1e-6)
        assert lost == pytest.approx(study["lost"], abs=1e-6)
        # the towns add up to the study, and gained - lost is the change in covered persons
        assert rows.loc[rows["scope"] == "town", "gained"].sum() == pytest.approx(study["gained"], abs=1e-6)
        assert study["gained"] - study["lost"] == pytest.approx(study["difference"], abs=1e-6)
    # each scenario's covered persons are what its own run reports (coverage_long at 15 min)
    for name, res in compared.results.items():
        long = res.coverage_long
        own = long[(long["scope"] == "study") & (long["kind"] == "day_care") & (long["threshold"] == 15)
                   & (long["unit"] == "min")]["elderly_within"].iloc[0]
        row = towns[(towns["scenario"] == name) & (towns["kind"] == "day_care") & (towns["scope"] == "study")]
        assert float(row["covered_scenario"].iloc[0]) == pytest.approx(float(own), rel=1e-9)
    close = towns[(towns["scenario"] == "close") & (towns["kind"] == "day_care") & (towns["scope"] == "study")]
    assert float(close["lost"].iloc[0]) > 0 and float(close["gained"].iloc[0]) == 0
    fast = towns[(towns["scenario"] == "fast") & (towns["scope"] == "study")]
    assert (fast["difference"] > 0).all()
    # the gained areas are polygons on the population grid, in WGS-84
    assert diff.crs.to_epsg() == 4326 and set(diff.geom_type) <= {"Polygon", "MultiPolygon"}


def test_targets_are_compared_per_scenario(compared):
    targets = compared.targets
    assert set(targets["scenario"]) == {"one site", "close", "fast"}
    fast = targets[(targets["scenario"] == "fast") & (targets["target_id"] == "national.life_circle_15min_1000m")]
    # a distance target does not depend on the walking speed
    assert float(fast["difference"].iloc[0]) == pytest.approx(0.0, abs=1e-12)
    one = targets[(targets["scenario"] == "one site") & (targets["target_id"] == "panjin_2018.urban_community_day_care")]
    assert float(one["difference"].iloc[0]) > 0


@pytest.mark.parametrize("block, words", [
    ([{"name": "x", "close": ["没有这个设施"]}], "没有这个设施"),
    ([{"name": "x", "add_sites": [{"name": "a", "lon": 113.9, "lat": 30.9, "kind": "daycare"}]}], "kind"),
    ([{"name": "x", "add_sites": [{"name": "a", "lon": 3_400_000, "lat": 30.9, "kind": "day_care"}]}], "degrees"),
    ([{"name": "x", "walk_speed": 1.0}], "walk_speed"),
    ([{"name": "x"}, {"name": "x"}], "twice"),
])
def test_bad_scenario_blocks_name_the_file_and_the_field(demo, block, words):
    config, inputs = demo
    bad = dataclasses.replace(config, scenarios=tuple(block))
    with pytest.raises(ConfigError, match=words) as err:
        run_scenarios(bad, inputs=inputs, baseline=object())  # checked before anything is run
    assert str(DEMO) in str(err.value) and "scenarios[" in str(err.value)


def test_run_writes_the_comparison_sheet_map_and_layers(tmp_path, capsys):
    assert len(parse_scenarios(load_study(DEMO_SCENARIOS))) == 3
    assert main(["run", str(DEMO_SCENARIOS), "--out", str(tmp_path), "--quiet"]) == 0
    out = tmp_path / "demo_scenarios"
    book = load_workbook(out / "demo_scenarios_情景对比.xlsx", read_only=True)
    assert {"情景对比", "情景对比_指标", "情景对比_乡镇", "情景设置"} <= set(book.sheetnames)
    text = "\n".join(str(c) for row in book["情景对比"].iter_rows(values_only=True) for c in row if c is not None)
    assert "合成示例数据" in text and "新建两处日间照料中心" in text
    diff = gpd.read_file(out / "scenarios.gpkg", layer="scenario_difference")
    towns_csv = (out / "scenarios_compare.csv").read_text(encoding="utf-8-sig")
    assert "新增覆盖老人(人)" in towns_csv
    gained = diff[(diff["change"] == "gained") & (diff["kind"] == "day_care")
                  & diff["scenario"].str.startswith("新建两处")]["elderly"].sum()
    assert gained > 1000
    page = (out / "scenario_map.html").read_text(encoding="utf-8")
    # folium writes the layers' properties as JSON (non-ASCII escaped)
    assert json.dumps("增加覆盖 gained")[1:-1] in page and json.dumps("失去覆盖 lost")[1:-1] in page
    assert "合成示例数据" in page
    assert "scenarios 情景对比" in capsys.readouterr().out
    added = gpd.read_file(out / "scenarios.gpkg", layer="scenario_added_sites")
    assert len(added) == 2 and np.allclose(added.geometry.x.min(), 113.88382, atol=1e-6)


def test_a_bad_scenarios_block_exits_2_before_the_run(tmp_path, capsys):
    text = DEMO_SCENARIOS.read_text(encoding="utf-8").replace("walk_speed_mps: 1.0", "walk_speed_mps: 12")
    study = tmp_path / "bad_scenarios.yaml"
    study.write_text(text.replace("../data/", f"{REPO_ROOT.as_posix()}/data/"), encoding="utf-8")
    assert main(["run", str(study), "--out", str(tmp_path), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert "walk_speed_mps" in captured.err and "scenarios[2]" in captured.err and "Traceback" not in captured.err
    assert not (tmp_path / "demo_scenarios").exists()  # stopped before anything was computed or written


def test_travel_profile_and_population_year_scenarios(demo):
    config, inputs = demo
    block = ({"name": "drive", "kind_profiles": {"nursing_home": "drive"}},
             {"name": "same year", "population_year": config.population.year})
    cmp = run_scenarios(dataclasses.replace(config, scenarios=block), inputs=inputs, kinds=("nursing_home",))
    towns = cmp.towns[cmp.towns["scope"] == "study"].set_index("scenario")
    # driving reaches far more elderly than walking within 15 minutes; the run's own figure says how many
    drive = cmp.results["drive"].coverage_long
    own = drive[(drive["scope"] == "study") & (drive["kind"] == "nursing_home") & (drive["threshold"] == 15)
                & (drive["unit"] == "min")]["elderly_within"].iloc[0]
    assert towns.loc["drive", "covered_scenario"] == pytest.approx(float(own), rel=1e-9)
    assert towns.loc["drive", "gained"] > towns.loc["drive", "covered_baseline"] * 0.5
    # the population of the same year again: the same figures, and no per-cell difference (another population)
    assert towns.loc["same year", "difference"] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(towns.loc["same year", "gained"])
    assert set(cmp.difference["scenario"]) == {"drive"}
    bad = dataclasses.replace(config, scenarios=({"name": "x", "kind_profiles": {"nursing_home": "car"}},))
    with pytest.raises(ConfigError, match="car"):
        parse_scenarios(bad)
