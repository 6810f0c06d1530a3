"""Coverage measures on hand-made demand tables where the answer is known by counting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from coverage import metrics

INF = math.inf


def _demand() -> pd.DataFrame:
    """Six demand points in two towns; urban, rural and one of unknown status.

    | point | elderly | town | village | urban | day care (s) | any (s) |
    |-------|---------|------|---------|-------|--------------|---------|
    | 0     | 10      | t1   | v1      | True  | 200          | 200     |
    | 1     | 20      | t1   | v1      | True  | 700          | 250     |
    | 2     | 30      | t1   | v2      | True  | inf          | 800     |
    | 3     | 40      | t2   | v3      | False | 850          | 850     |
    | 4     | 50      | t2   | v4      | False | inf          | inf     |
    | 5     | 50      | —    | —       | NA    | 100          | 100     |
    """
    return pd.DataFrame(
        {
            "elderly": [10.0, 20.0, 30.0, 40.0, 50.0, 50.0],
            "town_code": ["t1", "t1", "t1", "t2", "t2", None],
            "village_code": ["v1", "v1", "v2", "v3", "v4", None],
            "urban": pd.array([True, True, True, False, False, None], dtype="boolean"),
        }
    )


COSTS = {
    "day_care": np.array([200.0, 700.0, INF, 850.0, INF, 100.0]),
    "any": np.array([200.0, 250.0, 800.0, 850.0, INF, 100.0]),
}


def _row(table: pd.DataFrame, scope: str, code: str, kind: str, threshold: float) -> pd.Series:
    rows = table[(table["scope"] == scope) & (table["code"] == code) & (table["kind"] == kind)
                 & (table["threshold"] == threshold)]
    assert len(rows) == 1, (scope, code, kind, threshold)
    return rows.iloc[0]


def test_share_of_elderly_within_5_and_15_minutes_is_counted_in_persons_over_the_whole_study():
    table = metrics.service_circle_table(_demand(), COSTS, [5, 15], unit="min")
    # 5 min = 300 s: day care reaches points 0 and 5 (10 + 50 of 200 persons)
    five = _row(table, "study", "all", "day_care", 5)
    assert five["elderly"] == pytest.approx(200.0)
    assert five["elderly_within"] == pytest.approx(60.0)
    assert five["share"] == pytest.approx(0.3)
    # 15 min = 900 s: any facility reaches everyone but point 4 (150 of 200)
    assert _row(table, "study", "all", "any", 15)["share"] == pytest.approx(0.75)
    assert _row(table, "study", "all", "any", 15)["name"] == "全域 / whole study"


def test_service_circle_is_reported_per_town_with_unassigned_points_kept_apart():
    table = metrics.service_circle_table(_demand(), COSTS, [15], unit="min", units_names={"t1": "东城街道"})
    town1 = _row(table, "town", "t1", "day_care", 15)
    assert town1["name"] == "东城街道"
    assert town1["elderly"] == pytest.approx(60.0)
    assert town1["elderly_within"] == pytest.approx(30.0)  # points 0 and 1
    town2 = _row(table, "town", "t2", "any", 15)
    assert town2["share"] == pytest.approx(40.0 / 90.0)
    outside = _row(table, "town", "unassigned", "any", 15)
    assert outside["elderly"] == pytest.approx(50.0)
    assert outside["name"] == "未落入任何乡镇 / outside all towns"


def test_service_circle_is_reported_for_urban_and_rural_elderly_separately():
    table = metrics.service_circle_table(_demand(), COSTS, [10], unit="min")
    # 10 min = 600 s
    urban = _row(table, "urban_rural", "urban", "any", 10)
    assert urban["elderly"] == pytest.approx(60.0)
    assert urban["elderly_within"] == pytest.approx(30.0)  # points 0 and 1
    rural = _row(table, "urban_rural", "rural", "any", 10)
    assert rural["elderly"] == pytest.approx(90.0)
    assert rural["elderly_within"] == pytest.approx(0.0)
    unknown = _row(table, "urban_rural", "unknown", "any", 10)
    assert unknown["elderly"] == pytest.approx(50.0)
    assert unknown["share"] == pytest.approx(1.0)


def test_distance_thresholds_compare_metres_without_a_minutes_factor():
    metres = {"any": np.array([250.0, 450.0, 900.0, 1200.0, INF, 100.0])}
    table = metrics.service_circle_table(_demand(), metres, [300, 1000], unit="m")
    assert _row(table, "study", "all", "any", 300)["elderly_within"] == pytest.approx(60.0)  # points 0 and 5
    assert _row(table, "study", "all", "any", 1000)["elderly_within"] == pytest.approx(110.0)  # 0, 1, 2, 5
    assert set(table["unit"]) == {"m"}


def test_a_town_without_elderly_has_no_share_rather_than_zero():
    demand = pd.DataFrame({"elderly": [0.0, 5.0], "town_code": ["t1", "t2"]})
    table = metrics.service_circle_table(demand, {"any": np.array([10.0, 10.0])}, [15])
    assert math.isnan(_row(table, "town", "t1", "any", 15)["share"])
    assert _row(table, "town", "t2", "any", 15)["share"] == pytest.approx(1.0)


def test_wide_table_has_one_share_column_per_threshold_and_unit():
    long = pd.concat(
        [metrics.service_circle_table(_demand(), COSTS, [5, 15], unit="min"),
         metrics.service_circle_table(_demand(), {"any": COSTS["any"]}, [1000], unit="m")],
        ignore_index=True,
    )
    wide = metrics.wide_coverage_table(long)
    assert {"share_5min", "share_15min", "share_1000m"} <= set(wide.columns)
    row = wide[(wide["scope"] == "study") & (wide["kind"] == "day_care")].iloc[0]
    assert row["share_5min"] == pytest.approx(0.3)


def test_facilities_of_several_kinds_count_once_per_kind_in_the_unit_they_are_assigned_to():
    units = pd.DataFrame({"code": ["v1", "v2", "v3"]})
    facilities = pd.DataFrame(
        {
            "kinds": ["day_care;canteen", "canteen", "day_care", None, "mutual_aid"],
            "village_code": ["v1", "v1", "v2", "v2", None],
        }
    )
    counts = metrics.unit_facility_counts(units, facilities, ["day_care", "canteen", "mutual_aid"],
                                          code_column="village_code")
    counts = counts.set_index("code")
    assert counts.loc["v1", "n_day_care"] == 1
    assert counts.loc["v1", "n_canteen"] == 2
    assert counts.loc["v2", "n_day_care"] == 1
    assert counts.loc["v3"].sum() == 0
    # the mutual-aid home lies outside every village: counted nowhere
    assert counts["n_mutual_aid"].sum() == 0


def test_unit_reach_table_gives_each_village_the_share_of_its_elderly_within_the_threshold():
    demand = pd.DataFrame(
        {"elderly": [10.0, 30.0, 0.0, 5.0], "village_code": ["v1", "v1", "v2", None]}
    )
    cost = {"any": np.array([100.0, 1000.0, 100.0, 100.0])}
    table = metrics.unit_reach_table(demand, cost, 900.0).set_index("code")
    assert list(table.index) == ["v1", "v2"]  # the point without a village is dropped
    assert table.loc["v1", "elderly"] == pytest.approx(40.0)
    assert table.loc["v1", "share_any"] == pytest.approx(0.25)
    assert math.isnan(table.loc["v2", "share_any"])  # no elderly: no share, not 0 %


def test_share_of_units_counts_unknown_flags_as_not_meeting():
    meeting, total, share = metrics.share_of_units(pd.Series([True, False, None, True], dtype="boolean"))
    assert (meeting, total) == (2, 4)
    assert share == pytest.approx(0.5)
    assert math.isnan(metrics.share_of_units(pd.Series([], dtype="boolean"))[2])
