"""The run's accessibility tables (可达性 / 公平性 / 设施负荷), their targets and outputs, on the synthetic demo."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import rasterio

from coverage import gridded, pipeline, targets
from coverage._errors import ConfigError
from coverage.access_tables import study_accessibility
from coverage.catalogue import load_catalogue
from coverage.config import AccessibilitySettings, load_study, parse_parameters
from coverage.pipeline import run_study
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory):
    config = load_study(DEMO, output_root=tmp_path_factory.mktemp("inputs"))
    return config, pipeline.prepare_inputs(config)


@pytest.fixture(scope="module")
def demo_access(demo_inputs):
    config, inputs = demo_inputs
    params = config.parameters
    return study_accessibility(inputs.net, inputs.facility_snap, inputs.demand_snap, inputs.facilities,
                               inputs.demand, kinds=params.kinds, minutes=15.0, speed_for=params.speed_for,
                               ferry=params.ferry, units=inputs.units)


def test_2sfca_hands_out_exactly_the_supply_that_reaches_someone(demo_access, demo_inputs):
    """Σ_i D_i A_i = Σ_j S_j over facilities with older people in reach (the 2SFCA identity)."""
    _, inputs = demo_inputs
    elderly = inputs.demand["elderly"].to_numpy(float)
    assert set(demo_access.kinds) == {"day_care", "canteen", "mutual_aid", "nursing_home", "comprehensive"}
    for kind, ka in demo_access.kinds.items():
        crowd = demo_access.crowding[demo_access.crowding["kind"] == kind]
        reached = crowd["demand_in_reach"].to_numpy(float) > 0
        assert float(elderly @ ka.score) == pytest.approx(float(crowd["supply"].to_numpy(float)[reached].sum()),
                                                          rel=1e-9)
        study = demo_access.by_unit[(demo_access.by_unit["kind"] == kind) & (demo_access.by_unit["scope"] == "study")]
        assert study["elderly"].iloc[0] == pytest.approx(elderly.sum())
        assert study["access_mean"].iloc[0] == pytest.approx(float(elderly @ ka.score) / elderly.sum())


def test_capacity_aware_service_respects_places_and_adds_up_by_town(demo_access):
    for kind, ka in demo_access.kinds.items():
        crowd = demo_access.crowding[demo_access.crowding["kind"] == kind]
        assert (crowd["assigned"] <= crowd["places"] + 1e-6).all()
        assert ka.served.sum() == pytest.approx(crowd["assigned"].sum(), rel=1e-9)
        towns = demo_access.by_unit[(demo_access.by_unit["kind"] == kind) & (demo_access.by_unit["scope"] == "town")]
        assert towns["served"].sum() == pytest.approx(ka.served.sum(), rel=1e-9)
        assert (towns["served"] + towns["unmet"]).to_numpy() == pytest.approx(towns["elderly"].to_numpy())
        # a town nobody reaches has no access and no service
        dark = towns[towns["access_zero_share"] == 1.0]
        assert (dark["served"] == 0).all() and (dark["access_lq"] == 0).all()


def test_equity_table_theil_parts_add_up_and_lorenz_points_rise(demo_access):
    eq = demo_access.equity
    assert len(eq) == len(demo_access.kinds)
    assert ((eq["gini"] > 0) & (eq["gini"] < 1)).all()
    for part in ("town", "urban"):
        np.testing.assert_allclose(eq[f"theil_between_{part}"] + eq[f"theil_within_{part}"], eq["theil"], rtol=1e-9)
    lorenz = eq[[c for c in eq.columns if c.startswith("lorenz_")]].to_numpy(float)
    assert (np.diff(lorenz, axis=1) >= -1e-12).all()
    # the curve lies below the line of equality
    assert (lorenz <= np.arange(0.1, 0.95, 0.1) + 1e-9).all()


def test_capacity_and_gini_targets_read_the_accessibility_values(demo_access, demo_inputs):
    _, inputs = demo_inputs
    chosen = load_catalogue().select(("equity_example",))
    values = demo_access.values_for_targets()
    table = targets.evaluate_targets(chosen, targets.TargetInputs(demand=inputs.demand, accessibility=values,
                                                                  facilities=inputs.facilities))
    by_id = table.set_index("target_id")
    share = by_id.loc["equity_example.canteen_capacity_15min"]
    assert share["actual"] == pytest.approx(demo_access.kinds["canteen"].share_served)
    assert share["status"] == "fail"  # 50 meals a day per canteen cannot serve 90 % of the demo's elderly
    assert share["gap"] == pytest.approx(0.9 * inputs.demand["elderly"].sum()
                                         - demo_access.kinds["canteen"].served.sum(), abs=0.1)
    gini = by_id.loc["equity_example.day_care_access_gini"]
    eq = demo_access.equity.set_index("kind")
    assert gini["actual"] == pytest.approx(eq.loc["day_care", "gini"])
    assert gini["status"] == ("pass" if eq.loc["day_care", "gini"] <= 0.3 else "fail")
    # computed for other minutes: no data, with what to set
    other = dict(values, minutes=10.0)
    table = targets.evaluate_targets(chosen, targets.TargetInputs(demand=inputs.demand, accessibility=other))
    assert (table["status"] == "no data").all()
    assert table["detail_zh"].str.contains("parameters.accessibility.minutes: 15").all()
    table = targets.evaluate_targets(chosen, targets.TargetInputs(demand=inputs.demand))
    assert table["detail_zh"].str.contains("parameters.accessibility.enabled").all()


def test_accessibility_parameter_is_checked():
    assert parse_parameters({"accessibility": False}).accessibility.enabled is False
    settings = parse_parameters({"accessibility": {"kinds": ["canteen"], "minutes": 10}}).accessibility
    assert settings == AccessibilitySettings(enabled=True, kinds=("canteen",), minutes=10.0)
    with pytest.raises(ConfigError, match="parameters.accessibility: unknown field"):
        parse_parameters({"accessibility": {"minute": 10}})
    with pytest.raises(ConfigError, match="parameters.accessibility.kinds"):
        parse_parameters({"accessibility": {"kinds": ["canteens"]}})


def test_the_run_writes_accessibility_sheets_layers_raster_and_popups_without_changing_other_tables(tmp_path):
    config = load_study(DEMO, output_root=tmp_path / "on")
    on = run_study(config, make_map=False)
    off_config = dataclasses.replace(
        load_study(DEMO, output_root=tmp_path / "off"),
        parameters=dataclasses.replace(config.parameters, accessibility=AccessibilitySettings(enabled=False)))
    off = run_study(off_config, make_map=False)
    assert off.accessibility is None and on.accessibility is not None
    out_on, out_off = config.output_dir, off_config.output_dir
    # the tables the run wrote before are byte for byte the same
    for name in ("coverage_by_area.csv", "villages.csv", "facilities.csv", "sensitivity.csv", "targets.csv"):
        assert (out_on / name).read_bytes() == (out_off / name).read_bytes(), name
    book = openpyxl.load_workbook(out_on / "demo_coverage.xlsx", read_only=True)
    assert {"可达性", "公平性", "设施负荷"} <= set(book.sheetnames)
    assert "可达性" not in openpyxl.load_workbook(out_off / "demo_coverage.xlsx", read_only=True).sheetnames
    towns = pd.read_csv(out_on / "accessibility.csv", encoding="utf-8-sig")
    assert "2SFCA可达性(人均)" in towns.columns and "容量约束覆盖率" in towns.columns
    assert towns["数据说明"].eq("合成示例数据 / synthetic demo data").all()
    # on a population grid the values are a raster, not one GeoPackage point per cell
    layers = dict(pyogrio.list_layers(out_on / "demo_layers.gpkg"))
    assert "accessibility" not in layers
    kinds = list(on.accessibility.kinds)
    demand = on.demand_projected
    elderly = demand["elderly"].to_numpy(float)
    with rasterio.open(out_on / "demo_access_2sfca.tif") as raster:
        assert raster.count == 2 * len(kinds)
        assert raster.tags()["data_label"] == "合成示例数据 / synthetic demo data"
        grid = gridded.demand_grid(demand)  # each demand point's cell in the written window
        rows, cols = grid.rows, grid.cols
        for band, kind in enumerate(kinds, start=1):
            score = raster.read(band, masked=True)
            ka = on.accessibility.kinds[kind]
            cells = pd.DataFrame({"cell": np.asarray(rows) * raster.width + np.asarray(cols), "w": elderly,
                                  "ws": elderly * ka.score}).groupby("cell").sum()
            expected = np.divide(cells["ws"], cells["w"], out=np.zeros(len(cells)), where=cells["w"] > 0)
            read = score.ravel()[cells.index.to_numpy()]
            np.testing.assert_allclose(np.asarray(read, float), expected, rtol=1e-5, atol=1e-9)
            unmet = raster.read(len(kinds) + band, masked=True)
            np.testing.assert_allclose(float(unmet.sum()), float(np.sum(ka.unmet)), rtol=1e-4)
    assert not (out_on / "demo_lorenz_canteen.png").exists()  # figures only with the map
    from coverage.access_outputs import write_access_files

    written = write_access_files(on, tmp_path, figures=True)
    assert {f"lorenz_{kind}.png" for kind in on.accessibility.kinds} <= set(written)
    assert written["lorenz_canteen.png"].stat().st_size > 10_000
    # the map's facility popups carry the crowding text (folium writes it \u-escaped)
    from coverage import maps
    from coverage.access_outputs import with_facility_load

    facilities = with_facility_load(on, on.facilities)
    assert facilities["load_canteen"].notna().sum() == len(on.accessibility.kinds["canteen"].places)
    html = maps.save_map(maps.coverage_map(on.units[on.units.geometry.notna()], facilities, title="demo",
                                           synthetic=True), tmp_path / "popups.html").read_text(encoding="utf-8")
    first = facilities["load_canteen"].dropna().iloc[0]
    assert json.dumps(first)[1:-1] in html or first in html  # folium writes JSON with \u escapes
    # the Word report has the section, with the Gini of every kind and one Lorenz figure
    import docx

    report = docx.Document(str(out_on / "demo_评估报告.docx"))
    assert "可达性与公平性" in [p.text for p in report.paragraphs if p.style.name.startswith("Heading")]
    table = next(t for t in report.tables if [c.text for c in t.rows[0].cells][-2:] == ["基尼系数", "乡镇间份额"])
    assert len(table.rows) == 1 + len(on.accessibility.kinds)
    assert "可达性与公平性" not in [p.text for p in docx.Document(str(out_off / "demo_评估报告.docx")).paragraphs]


def test_accessibility_from_the_runs_facility_catchment_is_the_same_as_searching_each_kind(demo_access, demo_inputs):
    """The run searches every facility's catchment once; each kind's rows taken from it give the same measures."""
    from scipy import sparse

    from coverage.study_tables import facility_catchment

    config, inputs = demo_inputs
    params = config.parameters
    speed, limit_s, matrix = facility_catchment(inputs.net, inputs.facility_snap, inputs.demand_snap,
                                                dataclasses.replace(config, parameters=dataclasses.replace(
                                                    params, thresholds_min=[15])))
    assert limit_s == 900.0 and matrix.shape == (len(inputs.facilities), len(inputs.demand))
    shared = study_accessibility(inputs.net, inputs.facility_snap, inputs.demand_snap, inputs.facilities,
                                 inputs.demand, kinds=params.kinds, minutes=15.0, speed_for=params.speed_for,
                                 ferry=params.ferry, units=inputs.units, facility_catchment=(speed, limit_s, matrix))
    pd.testing.assert_frame_equal(shared.by_unit, demo_access.by_unit)
    pd.testing.assert_frame_equal(shared.equity, demo_access.equity)
    pd.testing.assert_frame_equal(shared.crowding, demo_access.crowding)
    # a matrix searched at another speed or limit is not used: an empty one changes nothing
    empty = sparse.csr_matrix(matrix.shape)
    for other in ((speed + 0.1, limit_s, empty), (speed, limit_s - 60.0, empty)):
        searched = study_accessibility(inputs.net, inputs.facility_snap, inputs.demand_snap, inputs.facilities,
                                       inputs.demand, kinds=params.kinds, minutes=15.0, speed_for=params.speed_for,
                                       ferry=params.ferry, units=inputs.units, facility_catchment=other)
        pd.testing.assert_frame_equal(searched.by_unit, demo_access.by_unit)
    # and the empty matrix at the kinds' own speed and limit is used: nobody is then in reach
    unreached = study_accessibility(inputs.net, inputs.facility_snap, inputs.demand_snap, inputs.facilities,
                                    inputs.demand, kinds=params.kinds, minutes=15.0, speed_for=params.speed_for,
                                    ferry=params.ferry, units=inputs.units, facility_catchment=(speed, limit_s, empty))
    assert (unreached.crowding["demand_in_reach"] == 0).all()
