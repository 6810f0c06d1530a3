"""Policy targets: the catalogue and each metric on small hand-made layers where the answer is known by counting."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from coverage import targets
from coverage._errors import ConfigError
from coverage.config import KINDS, PopulationSource, StudyConfig

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "seeds"
DEMO = ROOT / "studies" / "demo.yaml"
INF = math.inf

#: target sets named in DOMAIN.md's tables (national standards and one per seed document / year)
DOMAIN_SETS = {"national", "lincang_2024", "shashi_2020", "putuo_2024", "putuo_2025", "ordos_2023", "panjin_2018"}


# --------------------------------------------------------------------------- a small study, by hand
#
# county c1 示范县
# ├── t1 东城街道 (street)   v1 幸福社区 (urban), v2 和平社区 (urban), v8 新区 (urban/rural unknown)
# ├── t2 西山镇              v3 东村, v4 西村 (rural)
# ├── t3 南湖乡              v5 南村, v6 湖村 (rural)
# └── t4 北岭 (no suffix)    v7 岭村 (rural) → a township by its villages
#
# demand: 5 points, 1000 elderly: v1 100 + 100, v2 200, v3 300, v5 300


def _units() -> pd.DataFrame:
    rows = [
        ("c1", "示范县", "county", None, None),
        ("t1", "东城街道", "town", "c1", None),
        ("t2", "西山镇", "town", "c1", None),
        ("t3", "南湖乡", "town", "c1", None),
        ("t4", "北岭", "town", "c1", None),
        ("v1", "幸福社区", "village", "t1", True),
        ("v2", "和平社区", "village", "t1", True),
        ("v8", "新区", "village", "t1", None),
        ("v3", "东村", "village", "t2", False),
        ("v4", "西村", "village", "t2", False),
        ("v5", "南村", "village", "t3", False),
        ("v6", "湖村", "village", "t3", False),
        ("v7", "岭村", "village", "t4", False),
    ]
    table = pd.DataFrame(rows, columns=["code", "name", "level", "parent_code", "urban"])
    table["urban"] = table["urban"].astype("boolean")
    return table


def _facilities() -> pd.DataFrame:
    nan = np.nan
    rows = [
        # name, kinds, village, town, beds, nursing_beds, floor_area_m2, caregivers
        ("幸福社区日间照料中心", "day_care;canteen", "v1", "t1", nan, nan, 250.0, nan),
        ("东城街道民生服务综合体", "comprehensive", "v2", "t1", nan, nan, nan, nan),
        ("东村互助幸福院", "mutual_aid", "v3", "t2", nan, nan, 120.0, nan),
        ("西村互助幸福院", "mutual_aid", "v4", "t2", nan, nan, 80.0, nan),
        ("西山镇敬老院", "nursing_home", "v3", "t2", 60.0, 30.0, 2400.0, 5.0),
        ("南湖乡互助幸福院", "mutual_aid", "v5", "t3", nan, nan, 350.0, nan),
        ("南村互助幸福院", "mutual_aid", "v5", "t3", nan, nan, nan, nan),
    ]
    table = pd.DataFrame(rows, columns=["name", "kinds", "village_code", "town_code", "beds", "nursing_beds",
                                        "floor_area_m2", "caregivers"])
    table["county_code"] = "c1"
    table["facility_id"] = [f"list.xlsx:{i + 2}" for i in range(len(table))]
    return table


def _demand() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "demand_id": range(5),
            "elderly": [100.0, 100.0, 200.0, 300.0, 300.0],
            "village_code": ["v1", "v1", "v2", "v3", "v5"],
            "town_code": ["t1", "t1", "t1", "t2", "t3"],
            "county_code": ["c1"] * 5,
            "urban": pd.array([True, True, True, False, False], dtype="boolean"),
        }
    )


def _seconds() -> dict[str, np.ndarray]:
    seconds = {
        "day_care": np.array([60.0, 600.0, INF, INF, INF]),
        "canteen": np.array([60.0, 600.0, INF, INF, INF]),
        "comprehensive": np.array([900.0, 700.0, 100.0, INF, INF]),
        "mutual_aid": np.array([INF, INF, INF, 120.0, 60.0]),
        "nursing_home": np.array([INF, INF, INF, 300.0, INF]),
    }
    seconds["any"] = np.min(np.vstack(list(seconds.values())), axis=0)
    return seconds


def _metres() -> dict[str, np.ndarray]:
    metres = {kind: np.where(np.isfinite(s), s * 0.8, INF) for kind, s in _seconds().items()}
    metres["any"] = np.array([50.0, 480.0, 80.0, 96.0, INF])
    return metres


def _inputs(**changes) -> targets.TargetInputs:
    inputs = targets.TargetInputs(
        demand=_demand(), seconds_by_kind=_seconds(), metres_by_kind=_metres(), units=_units(),
        facilities=_facilities(), villages=pd.DataFrame(), thresholds_min=(5.0, 10.0, 15.0),
        distance_thresholds_m=(300.0, 500.0, 1000.0),
    )
    return dataclasses.replace(inputs, **changes)


@pytest.fixture(scope="module")
def catalogue() -> targets.Catalogue:
    return targets.load_catalogue()


def _evaluate(catalogue, target_id: str, **changes) -> dict:
    target = catalogue.get(target_id)
    overrides = {k: v for k, v in changes.items() if k in {f.name for f in dataclasses.fields(targets.Target)}}
    inputs = {k: v for k, v in changes.items() if k not in overrides}
    return targets.evaluate_target(dataclasses.replace(target, **overrides), _inputs(**inputs))


# --------------------------------------------------------------------------- the catalogue


def test_catalogue_loads_and_every_entry_is_well_formed(catalogue):
    assert len(catalogue) >= 35
    assert len(set(catalogue.ids())) == len(catalogue)
    for target in catalogue.targets:
        assert target.id.startswith(f"{target.set}."), target.id
        for name in ("locality", "label_zh", "label_en", "quote"):
            assert getattr(target, name).strip(), (target.id, name)
        assert target.document.file and target.document.title and target.document.year, target.id
        assert target.metric in targets.METRICS, target.id
        assert target.level in target.spec.levels, target.id
        assert target.area in targets.AREAS, target.id
        assert target.comparison in targets.COMPARISONS, target.id
        assert all(k in KINDS or k == "any" for k in target.kinds), target.id
        if target.spec.share:
            assert 0.0 <= target.required <= 1.0, target.id
        if target.spec.needs_threshold:
            assert target.threshold > 0 and target.threshold_unit in ("min", "m"), target.id
        if target.metric == "size_tier":
            assert dict(target.tiers), target.id


def test_every_target_set_named_in_the_domain_notes_is_in_the_catalogue(catalogue):
    assert DOMAIN_SETS <= set(catalogue.sets)
    for set_id in DOMAIN_SETS:
        assert any(t.set == set_id for t in catalogue.targets), set_id


@pytest.mark.parametrize(
    "set_id, metric, required",
    [
        ("national", "service_circle", 1.0),
        ("national", "beds_per_1000_elderly", 40),
        ("national", "land_area_per_resident", 0.1),
        ("national", "floor_area_per_bed", 35),
        ("national", "unit_presence", 0.6),
        ("lincang_2024", "unit_presence", 0.65),
        ("lincang_2024", "unit_presence", 0.9),
        ("lincang_2024", "at_least_one", 1.0),
        ("lincang_2024", "nursing_bed_share", 0.6),
        ("lincang_2024", "nursing_bed_share", 0.8),
        ("lincang_2024", "land_area_per_resident", 0.1),
        ("shashi_2020", "unit_presence", 1.0),
        ("shashi_2020", "beds_per_1000_elderly", 37),
        ("shashi_2020", "nursing_bed_share", 0.5),
        ("shashi_2020", "floor_area_per_100_households", 20),
        ("shashi_2020", "floor_area_per_100_households", 15),
        ("putuo_2024", "unit_presence", 0.8),
        ("putuo_2024", "caregivers_per_10000_elderly", 24.5),
        ("putuo_2025", "at_least_one", 1.0),
        ("putuo_2025", "unit_presence", 0.9),
        ("putuo_2025", "caregivers_per_10000_elderly", 25),
        ("ordos_2023", "service_circle", 1.0),
        ("ordos_2023", "unit_presence", 1.0),
        ("ordos_2023", "nursing_bed_share", 0.6),
        ("ordos_2023", "floor_area_per_100_households", 30),
        ("panjin_2018", "unit_presence", 1.0),
        ("panjin_2018", "unit_presence", 0.6),
        ("panjin_2018", "floor_area_per_10000_residents", 200),
        ("panjin_2018", "size_tier", 1.0),
    ],
)
def test_each_number_of_the_domain_tables_has_a_catalogue_entry(catalogue, set_id, metric, required):
    assert any(t.set == set_id and t.metric == metric and math.isclose(t.required, required)
               for t in catalogue.targets)


def test_panjin_size_tiers_are_those_of_the_document(catalogue):
    assert dict(catalogue.get("panjin_2018.day_care_size_tiers").tiers) == {"village": 200, "town": 300, "county": 500}
    assert dict(catalogue.get("panjin_2018.mutual_aid_size_tiers").tiers) == {"village": 100, "town": 300,
                                                                               "county": 500}


def _plain(text: str) -> str:
    """Seed text without the Ordos page's pinyin annotations and without white space."""
    text = re.sub(r"\([a-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜü]+\)", "", text)
    return re.sub(r"\s+", "", text)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents (../shared/seeds) are not beside the repository")
def test_every_quote_of_a_seed_document_is_found_in_that_document(catalogue):
    seed_files = {p.name: _plain(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt")}
    quoted = [t for t in catalogue.targets if t.document.file in seed_files]
    assert {t.document.file for t in quoted} == set(seed_files)  # every seed document has targets
    for target in quoted:
        assert _plain(target.quote) in seed_files[target.document.file], target.id


def test_a_users_yaml_file_adds_a_target_that_a_study_evaluates(tmp_path):
    own = tmp_path / "my_targets.yaml"
    own.write_text(
        """
documents:
  my_plan: {file: 某县养老服务设施专项规划.pdf, title: 某县养老服务设施专项规划, year: 2025}
sets:
  my_county: {title_zh: 某县专项规划, title_en: county special plan}
targets:
  - id: my_county.day_care_10min
    set: my_county
    locality: 某县
    document: my_plan
    label_zh: 老年人步行10分钟内有日间照料中心的比例达到50%
    label_en: half of the elderly within 10 minutes of a day-care centre
    metric: service_circle
    kinds: [day_care]
    level: study
    threshold: 10
    threshold_unit: min
    required: 0.5
    quote: 步行10分钟
  - id: my_county.village_day_care
    set: my_county
    locality: 某县
    document: panjin_2018
    label_zh: 借用盘锦文件的自定义指标
    label_en: a custom target citing a shipped document
    metric: unit_presence
    kinds: [day_care]
    level: village
    required: 0.5
    quote: 日间照料中心
""",
        encoding="utf-8",
    )
    catalogue = targets.load_catalogue(extra_files=[own])
    assert "my_county" in catalogue.sets
    assert catalogue.get("my_county.village_day_care").document.file == "004_e992eb07e6f1be7c.txt"

    config = StudyConfig(name="t", title="t", config_path=tmp_path / "study.yaml", network=tmp_path / "x.osm",
                         facilities=(), units=None, population=PopulationSource(), target_files=(own,))
    table = targets.evaluate_study_targets(
        config, demand=_demand(), seconds_by_kind=_seconds(), metres_by_kind=_metres(), units=_units(),
        facilities=_facilities(), villages=pd.DataFrame(),
    )
    assert list(table.columns) == list(targets.RESULT_COLUMNS)
    row = table.set_index("target_id").loc["my_county.day_care_10min"]
    # day care within 600 s: points 0 and 1, 200 of 1000 elderly; 300 more persons needed for 50 %
    assert row["actual"] == pytest.approx(0.2)
    assert row["status"] == "fail"
    assert row["gap"] == pytest.approx(300.0)


def test_a_study_gets_the_targets_of_the_sets_it_names_and_unknown_sets_are_refused(tmp_path, catalogue):
    config = StudyConfig(name="t", title="t", config_path=tmp_path / "study.yaml", network=tmp_path / "x.osm",
                         facilities=(), units=None, population=PopulationSource(), target_sets=("panjin_2018",))
    layers = dict(demand=_demand(), seconds_by_kind=_seconds(), metres_by_kind=_metres(), units=_units(),
                  facilities=_facilities(), villages=pd.DataFrame())
    table = targets.evaluate_study_targets(config, **layers)
    assert list(table["target_id"]) == [t.id for t in catalogue.targets if t.set == "panjin_2018"]
    with pytest.raises(ConfigError, match="unknown target set"):
        targets.evaluate_study_targets(dataclasses.replace(config, target_sets=("panjn_2018",)), **layers)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"metric": "coverage"}, "unknown metric"),
        ({"kinds": ["elderly_university"]}, "unknown facility kind"),
        ({"required": 90}, "share between 0 and 1"),
        ({"level": "province"}, "does not fit metric"),
        ({"label_zh": None}, "missing field"),
        ({"area": "suburban"}, "area must be one of"),
        ({"colour": "red"}, "unknown field"),
    ],
)
def test_a_malformed_user_target_is_refused_with_the_file_and_entry_named(tmp_path, change, message):
    entry = {"id": "x.a", "set": "x", "locality": "某地", "document": {"file": "a.pdf", "title": "某文件", "year": 2024},
             "label_zh": "甲", "label_en": "a", "metric": "unit_presence", "kinds": ["day_care"], "level": "village",
             "required": 0.9, "quote": "甲"}
    entry.update(change)
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"targets": [entry]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as error:
        targets.load_catalogue(extra_files=[path])
    assert "bad.yaml" in str(error.value)


def test_the_catalogue_reads_the_same_with_libyaml_as_with_pyyamls_own_parser():
    import yaml

    from coverage import catalogue

    text = targets.CATALOGUE_PATH.read_text(encoding="utf-8")
    assert yaml.load(text, Loader=catalogue._SAFE_LOADER) == yaml.safe_load(text)


def test_a_target_file_that_is_not_yaml_is_refused_with_its_name(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("targets:\n  - id: x.a\n    label_zh: [甲\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML") as error:
        targets.load_catalogue(extra_files=[path])
    assert "line" in str(error.value)


def test_a_user_target_may_not_silently_replace_a_shipped_one(tmp_path):
    import yaml

    shipped = yaml.safe_load(targets.CATALOGUE_PATH.read_text(encoding="utf-8"))["targets"][0]
    path = tmp_path / "dup.yaml"
    path.write_text(yaml.safe_dump({"targets": [shipped]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="already defined"):
        targets.load_catalogue(extra_files=[path])


# --------------------------------------------------------------------------- service circle


def test_putuo_15_minute_circle_counts_elderly_persons_near_any_community_facility(catalogue):
    row = _evaluate(catalogue, "putuo_2025.service_circle_15min")
    # nearest of day care / canteen / comprehensive: 60, 600, 100 s, inf, inf → 100 + 100 + 200 of 1000
    assert row["actual"] == pytest.approx(0.4)
    assert row["status"] == "fail"
    assert row["gap"] == pytest.approx(600.0)
    assert row["gap_unit"].startswith("人")


def test_ordos_15_minute_circle_passes_when_mutual_aid_homes_reach_the_rural_elderly(catalogue):
    row = _evaluate(catalogue, "ordos_2023.service_circle_15min")
    assert row["actual"] == pytest.approx(1.0)
    assert row["status"] == "pass"
    assert row["gap"] == 0


def test_service_circle_of_urban_elderly_leaves_rural_elderly_out_of_the_denominator(catalogue):
    row = _evaluate(catalogue, "putuo_2025.service_circle_15min", area="urban")
    assert row["actual"] == pytest.approx(1.0)  # all 400 urban elderly
    assert "400" in row["detail_zh"]


def test_national_1000_metre_circle_is_counted_on_walking_metres(catalogue):
    row = _evaluate(catalogue, "national.life_circle_15min_1000m")
    assert row["actual"] == pytest.approx(0.7)  # the 300 elderly of 南村 are beyond 1000 m
    assert row["unit"] == "m"
    assert row["gap"] == pytest.approx(300.0)


def test_a_threshold_between_the_configured_ones_is_computed_from_the_walking_times(catalogue):
    row = _evaluate(catalogue, "putuo_2025.service_circle_15min", threshold=12.0, kinds=("comprehensive",))
    # comprehensive within 720 s: 700 s and 100 s → 100 + 200 persons
    assert row["actual"] == pytest.approx(0.3)
    assert row["status"] == "fail"


def test_a_threshold_beyond_the_longest_computed_one_is_no_data_not_a_wrong_share(catalogue):
    row = _evaluate(catalogue, "putuo_2025.service_circle_15min", threshold=20.0)
    assert row["status"] == "no data"
    assert math.isnan(row["actual"]) and math.isnan(row["gap"])
    assert "thresholds_min" in row["detail_zh"]


def test_a_kind_whose_walking_times_were_not_computed_is_no_data(catalogue):
    seconds = {k: v for k, v in _seconds().items() if k != "canteen"}
    row = _evaluate(catalogue, "putuo_2025.service_circle_15min", seconds_by_kind=seconds)
    assert row["status"] == "no data"


def test_service_circle_function_weights_points_by_their_elderly():
    measure = targets.service_circle(np.array([10.0, 30.0, 60.0]), np.array([100.0, 1000.0, INF]), 900.0)
    assert measure.actual == pytest.approx(0.1)
    assert (measure.numerator, measure.denominator) == (10.0, 100.0)


# --------------------------------------------------------------------------- units with a facility


def test_panjin_60_percent_of_villages_with_mutual_aid_home_is_counted_per_village(catalogue):
    row = _evaluate(catalogue, "panjin_2018.village_mutual_aid")
    # 5 rural villages; 东村, 西村 and 南村 (two homes, counted once) have one → 3 / 5
    assert row["actual"] == pytest.approx(0.6)
    assert row["status"] == "pass"
    assert row["gap"] == 0
    assert "湖村" in row["detail_zh"] and "岭村" in row["detail_zh"]


def test_panjin_village_target_fails_by_one_village_when_a_home_closes(catalogue):
    facilities = _facilities()
    facilities = facilities[facilities["name"] != "西村互助幸福院"]
    row = _evaluate(catalogue, "panjin_2018.village_mutual_aid", facilities=facilities)
    assert row["actual"] == pytest.approx(0.4)
    assert row["status"] == "fail"
    assert row["gap"] == 1  # one more village with a home reaches 60 %


def test_lincang_urban_community_coverage_counts_urban_communities_only(catalogue):
    row = _evaluate(catalogue, "lincang_2024.urban_community_centre_coverage")
    # urban: 幸福社区 (day care + canteen), 和平社区 (comprehensive); 新区 of unknown status is left out
    assert row["actual"] == pytest.approx(1.0)
    assert row["status"] == "pass"
    assert "城乡属性不明" in row["detail_zh"]


def test_lincang_rural_regional_centres_are_counted_over_townships_not_streets(catalogue):
    row = _evaluate(catalogue, "lincang_2024.rural_regional_centre_coverage")
    # townships: 西山镇 (敬老院), 南湖乡, 北岭 (a township by its villages) → 1 / 3 < 65 %
    assert row["actual"] == pytest.approx(1 / 3)
    assert row["status"] == "fail"
    assert row["gap"] == 1  # 2 of 3 townships = 67 %
    assert "东城街道" not in row["detail_zh"]


def test_streets_and_townships_are_told_apart_by_name_then_division_code_then_villages():
    towns = pd.DataFrame({"code": ["t1", "429901001000", "429901200000", "t4", "t5"],
                          "name": ["东城街道", "城关", "石岭", "北岭", "某农场"], "urban": [None, None, None, None, None]})
    villages = pd.DataFrame({"parent_code": ["t4", "t4", "t5"], "urban": [False, False, None]})
    flags = targets.town_is_street(towns, villages)
    assert flags.tolist()[:4] == [True, True, False, False]
    assert pd.isna(flags.iloc[4])  # nothing tells: left out of urban and rural denominators


def test_panjin_every_town_needs_a_mutual_aid_home(catalogue):
    row = _evaluate(catalogue, "panjin_2018.town_mutual_aid")
    assert row["actual"] == pytest.approx(2 / 3)
    assert row["status"] == "fail"
    assert "北岭" in row["detail_zh"]


def test_presence_without_administrative_units_is_no_data(catalogue):
    row = _evaluate(catalogue, "panjin_2018.village_mutual_aid", units=None)
    assert row["status"] == "no data"


# --------------------------------------------------------------------------- at least one per unit


def test_lincang_every_street_has_a_comprehensive_institution(catalogue):
    row = _evaluate(catalogue, "lincang_2024.street_comprehensive_institution")
    assert row["status"] == "pass"
    assert row["actual"] == pytest.approx(1.0)


def test_putuo_towns_without_a_comprehensive_centre_are_named(catalogue):
    row = _evaluate(catalogue, "putuo_2025.comprehensive_every_town")
    assert row["actual"] == pytest.approx(0.25)
    assert row["status"] == "fail"
    assert row["gap"] == 3
    for town in ("西山镇", "南湖乡", "北岭"):
        assert town in row["detail_zh"]


def test_ordos_every_banner_has_a_county_level_institution(catalogue):
    assert _evaluate(catalogue, "ordos_2023.county_institution")["status"] == "pass"
    facilities = _facilities()
    facilities = facilities[~facilities["kinds"].str.contains("nursing_home")]
    row = _evaluate(catalogue, "ordos_2023.county_institution", facilities=facilities)
    assert row["status"] == "fail"
    assert "示范县" in row["detail_zh"]


def test_a_street_target_in_a_study_without_streets_is_no_data(catalogue):
    units = _units()
    units = units[units["code"] != "t1"]
    row = _evaluate(catalogue, "lincang_2024.street_comprehensive_institution", units=units)
    assert row["status"] == "no data"


# --------------------------------------------------------------------------- units reached on foot


def test_putuo_urban_community_counts_as_reached_when_half_its_elderly_walk_to_a_canteen(catalogue):
    row = _evaluate(catalogue, "putuo_2025.urban_canteen_coverage")
    # 幸福社区: both points within 15 min → reached; 和平社区: canteen beyond 15 min → not
    assert row["actual"] == pytest.approx(0.5)
    assert row["status"] == "fail"
    assert row["gap"] == 1
    assert "和平社区" in row["detail_zh"]


def test_unit_reach_leaves_communities_without_elderly_out():
    units = pd.DataFrame({"code": ["a", "b", "c"], "name": ["甲社区", "乙社区", "丙社区"],
                          "elderly": [10.0, 0.0, 20.0], "share": [0.5, np.nan, 0.2]})
    measure = targets.unit_reach(units, fraction=0.5)
    assert (measure.numerator, measure.denominator) == (1, 2)
    assert "无老年人口" in measure.detail_zh


def test_unit_reach_falls_back_to_the_village_table_at_its_threshold(catalogue):
    villages = pd.DataFrame({"code": ["v1", "v2"], "elderly": [200.0, 200.0], "share_canteen": [1.0, 0.0]})
    demand = _demand().drop(columns=["village_code"])
    row = _evaluate(catalogue, "putuo_2025.urban_canteen_coverage", demand=demand, villages=villages)
    assert row["actual"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- capacity ratios


def test_beds_per_1000_elderly_use_the_beds_that_are_given(catalogue):
    row = _evaluate(catalogue, "national.beds_per_1000_elderly")
    assert row["actual"] == pytest.approx(60.0)  # 60 beds for 1000 elderly
    assert row["status"] == "pass"
    assert "未填床位数" in row["detail_zh"]  # six facilities give no beds


def test_missing_beds_report_no_data_not_zero(catalogue):
    facilities = _facilities().assign(beds=np.nan)
    row = _evaluate(catalogue, "shashi_2020.beds_per_1000_elderly", facilities=facilities)
    assert row["status"] == "no data"
    assert math.isnan(row["actual"])
    row = _evaluate(catalogue, "shashi_2020.beds_per_1000_elderly", facilities=_facilities().drop(columns="beds"))
    assert row["status"] == "no data"
    assert "beds" in row["detail_zh"]


def test_nursing_bed_share_against_lincang_60_and_shashi_50_percent(catalogue):
    lincang = _evaluate(catalogue, "lincang_2024.nursing_bed_share")
    assert lincang["actual"] == pytest.approx(0.5)
    assert lincang["status"] == "fail"
    assert lincang["gap"] == pytest.approx(0.1)
    assert "6 张护理型床位" in lincang["detail_zh"]  # 0.1 × 60 beds
    assert _evaluate(catalogue, "shashi_2020.nursing_bed_share")["status"] == "pass"


def test_new_public_institution_target_needs_ownership_columns(catalogue):
    row = _evaluate(catalogue, "lincang_2024.nursing_bed_share_new_public")
    assert row["status"] == "no data"
    assert "ownership" in row["detail_zh"]
    facilities = _facilities().assign(ownership="民办", construction="新建")
    facilities.loc[facilities["name"] == "西山镇敬老院", "ownership"] = "公办"
    row = _evaluate(catalogue, "lincang_2024.nursing_bed_share_new_public", facilities=facilities)
    assert row["actual"] == pytest.approx(0.5)
    assert row["status"] == "fail"


def test_putuo_caregivers_per_10000_elderly(catalogue):
    row = _evaluate(catalogue, "putuo_2025.caregivers_per_10000_elderly")
    assert row["actual"] == pytest.approx(50.0)  # 5 caregivers for 1000 elderly
    assert row["status"] == "pass"


def test_panjin_day_care_floor_area_needs_residents_and_is_no_data_without(catalogue):
    row = _evaluate(catalogue, "panjin_2018.day_care_floor_area")
    assert row["status"] == "no data"
    assert math.isnan(row["actual"])
    demand = _demand().assign(residents=[5000.0, 5000.0, 10000.0, 8000.0, 8000.0])
    row = _evaluate(catalogue, "panjin_2018.day_care_floor_area", demand=demand)
    # 250 m² of urban day care for 20,000 urban residents = 125 m² per 10,000
    assert row["actual"] == pytest.approx(125.0)
    assert row["status"] == "fail"
    assert row["gap"] == pytest.approx(75.0)
    assert "150 平方米" in row["detail_zh"]


def test_land_and_household_targets_are_no_data_without_those_attributes(catalogue):
    for target_id in ("national.elderly_facility_land_per_resident", "lincang_2024.community_facility_land",
                      "shashi_2020.floor_area_new_estates", "ordos_2023.floor_area_new_estates"):
        row = _evaluate(catalogue, target_id)
        assert row["status"] == "no data", target_id
        assert math.isnan(row["actual"]), target_id


def test_national_floor_area_per_bed(catalogue):
    row = _evaluate(catalogue, "national.floor_area_per_bed")
    assert row["actual"] == pytest.approx(40.0)  # 2400 m² / 60 beds
    assert row["status"] == "pass"


def test_floor_area_per_bed_is_a_rule_for_each_institution_not_for_the_total(catalogue):
    facilities = pd.concat(
        [_facilities(), pd.DataFrame({"name": ["新店镇敬老院"], "kinds": ["nursing_home"], "village_code": ["v5"],
                                      "town_code": ["t3"], "county_code": ["c1"], "beds": [40.0],
                                      "floor_area_m2": [1200.0]})],
        ignore_index=True,
    )
    row = _evaluate(catalogue, "national.floor_area_per_bed", facilities=facilities)
    # 3600 m² / 100 beds = 36 m² in total, but 新店镇敬老院 has 30 m² per bed: 200 m² short of 35
    assert row["actual"] == pytest.approx(30.0)
    assert row["status"] == "fail"
    assert row["gap"] == pytest.approx(5.0)
    assert "新店镇敬老院" in row["detail_zh"] and "200 平方米" in row["detail_zh"]


# --------------------------------------------------------------------------- size tiers


def test_panjin_mutual_aid_homes_below_their_tier_are_listed(catalogue):
    row = _evaluate(catalogue, "panjin_2018.mutual_aid_size_tiers")
    # 东村 120 ≥ 100 (village); 西村 80 < 100; 南湖乡 350 ≥ 300 (town); 南村: no floor area
    assert row["actual"] == pytest.approx(2 / 3)
    assert row["status"] == "fail"
    assert row["gap"] == 1
    assert "西村互助幸福院" in row["detail_zh"]
    assert "未填建筑面积" in row["detail_zh"]


def test_facility_tier_comes_from_a_level_column_before_the_name():
    facilities = pd.DataFrame({"name": ["兴隆台区鹤乡社区日间照料中心", "大洼区日间照料中心", "某中心"],
                               "level": [None, None, "街道级"]})
    levels, sources = targets.facility_tier_levels(facilities)
    assert levels == ["village", "county", "town"]
    assert sources == ["name", "name", "column"]


def test_size_tier_function_compares_each_facility_with_its_own_tier():
    measure = targets.size_tier([250.0, 280.0, 600.0], ["village", "town", "county"],
                                {"village": 200, "town": 300, "county": 500}, ["甲", "乙", "丙"])
    assert (measure.numerator, measure.denominator) == (2, 3)
    assert "乙" in measure.detail_zh


# --------------------------------------------------------------------------- every target


def test_every_catalogue_target_evaluates_on_the_small_study(catalogue):
    table = targets.evaluate_targets(catalogue.targets, _inputs())
    assert len(table) == len(catalogue)
    assert set(table["status"]) <= {"pass", "fail", "no data"}
    no_data = table["status"] == "no data"
    assert table.loc[no_data, "actual"].isna().all()
    assert table.loc[~no_data, "actual"].notna().all()
    assert (table.loc[table["status"] == "pass", "gap"] == 0).all()
    assert (table.loc[table["status"] == "fail", "gap"] > 0).all()
    assert table["detail_zh"].str.len().gt(0).all()


@pytest.mark.skipif(not DEMO.exists(), reason="the synthetic demo study (studies/demo.yaml) is not there yet")
def test_every_catalogue_target_evaluates_on_the_demo_study():
    from coverage.config import load_study
    from coverage.pipeline import run_study

    config = load_study(DEMO)
    catalogue = targets.load_catalogue(config.target_files)
    config = dataclasses.replace(config, target_sets=tuple(catalogue.sets))
    results = run_study(config, write=False, make_map=False)
    table = results.targets
    assert set(catalogue.ids()) == set(table["target_id"])
    assert set(table["status"]) <= {"pass", "fail", "no data"}
    assert table.loc[table["status"] != "no data", "actual"].notna().all()
