"""Can a study reach the township 敬老院 by car and day care on foot, and do the tables say which mode each figure used?"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from coverage import ingest, profiles, reach
from coverage._errors import ConfigError
from coverage.config import load_study, parse_parameters
from coverage.network import load_walk_arrays
from coverage.pipeline import run_study
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"
#: the rural-county choice of the brief: nursing homes within 15 / 30 minutes by car
DRIVE_PARAMETERS = {"kind_profiles": {"nursing_home": "drive"}, "kind_thresholds_min": {"nursing_home": [15, 30]}}


def _study_file(folder: Path, extra_parameters: dict) -> Path:
    """The demo study file written to ``folder`` with absolute input paths and extra parameters."""
    raw = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    base = DEMO.parent
    inputs = raw["inputs"]
    inputs["network"] = str((base / inputs["network"]).resolve())
    for source in inputs["facilities"]:
        source["path"] = str((base / source["path"]).resolve())
    inputs["units"]["path"] = str((base / inputs["units"]["path"]).resolve())
    inputs["population"]["rasters"] = str((base / inputs["population"]["rasters"]).resolve())
    inputs["population"]["census"]["path"] = str((base / inputs["population"]["census"]["path"]).resolve())
    raw["parameters"].update(extra_parameters)
    path = folder / "demo_drive.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The plain demo and the demo with nursing homes by car, without maps."""
    plain_out = tmp_path_factory.mktemp("plain")
    plain = run_study(load_study(DEMO, output_root=plain_out), make_map=False)
    folder = tmp_path_factory.mktemp("drive")
    drive = run_study(load_study(_study_file(folder, DRIVE_PARAMETERS), output_root=folder / "out"), make_map=False)
    return plain, drive


def test_the_study_file_reads_profiles_and_thresholds_per_kind():
    params = parse_parameters(DRIVE_PARAMETERS)
    assert params.kind_profiles == {"nursing_home": "drive"}
    assert params.thresholds_for("nursing_home") == (15.0, 30.0)
    assert params.thresholds_for("day_care") == params.thresholds_min
    assert params.travel_profile("nursing_home").id == "drive"
    assert params.travel_profile("day_care") is None
    # a walking profile is a walking speed: walk_frail walks at 0.6 m/s on the walking network
    frail = parse_parameters({"kind_profiles": {"mutual_aid": "walk_frail"}})
    assert frail.travel_profile("mutual_aid") is None and frail.speed_for("mutual_aid") == 0.6


def test_an_unknown_profile_or_kind_is_refused_naming_the_field_and_the_known_ids(tmp_path):
    with pytest.raises(ConfigError, match=r"parameters\.kind_profiles.*car.*walk_elderly.*drive"):
        parse_parameters({"kind_profiles": {"nursing_home": "car"}})
    with pytest.raises(ConfigError, match=r"parameters\.kind_profiles.*old_folks"):
        parse_parameters({"kind_profiles": {"old_folks": "drive"}})
    with pytest.raises(ConfigError, match=r"parameters\.kind_thresholds_min"):
        parse_parameters({"kind_thresholds_min": {"nursing_home": [0]}})
    with pytest.raises(ConfigError, match=r"kind_walk_speed_mps"):
        parse_parameters({"kind_profiles": {"nursing_home": "drive"}, "kind_walk_speed_mps": {"nursing_home": 0.6}})
    # and from the study file, with the file named
    path = _study_file(tmp_path, {"kind_profiles": {"nursing_home": "tractor"}})
    with pytest.raises(ConfigError, match=r"demo_drive\.yaml.*parameters\.kind_profiles.*tractor.*ebike"):
        load_study(path)


def _drive_network(results):
    """The demo's driving network as the pipeline uses it, loaded again on its own for an independent recount."""
    crs = results.demand_projected.crs
    return profiles.usable_network(load_walk_arrays(results.config.network, ways="drive", to_crs=crs), "drive",
                                   ferry=results.config.parameters.ferry)


def test_nursing_home_figures_equal_an_independent_recount_on_the_drive_network(runs):
    _, drive = runs
    params = drive.config.parameters
    net = _drive_network(drive)
    nursing = drive.facilities[ingest.has_kind(drive.facilities, "nursing_home")].to_crs(net.crs)
    assert len(nursing)
    facility_snap = reach.snap_points(net, nursing.geometry, max_access_m=params.max_access_m)
    demand_snap = reach.snap_points(net, drive.demand_projected.geometry, max_access_m=params.max_access_m)
    # the profile's own path (costs → search), on a network loaded and snapped here
    expected = profiles.nearest_facility(net, facility_snap, demand_snap, "drive", limit=30 * 60.0, ferry=params.ferry)["cost"].to_numpy()
    seconds = drive.seconds_by_kind["nursing_home"]
    assert np.array_equal(np.isfinite(seconds), np.isfinite(expected))
    assert np.allclose(seconds[np.isfinite(seconds)], expected[np.isfinite(expected)], rtol=0, atol=1e-6)
    # driving beats walking 0.8 m/s for a facility a few km away
    assert np.nanmedian(np.where(np.isfinite(seconds), seconds, np.nan)) < 15 * 60.0

    elderly = drive.demand_projected["elderly"].to_numpy(float)
    table = drive.coverage_long
    rows = table[(table["scope"] == "study") & (table["kind"] == "nursing_home") & (table["unit"] == "min")]
    assert sorted(rows["threshold"]) == [15.0, 30.0]
    for row in rows.itertuples():
        within = elderly[expected <= row.threshold * 60.0].sum()
        assert row.elderly_within == pytest.approx(within, abs=1e-6)
        assert row.share == pytest.approx(within / elderly.sum(), abs=1e-12)
    assert set(rows["mode"]) == {"drive"}


def test_walking_kinds_are_identical_to_the_plain_demo(runs):
    plain, drive = runs
    for kind in ("day_care", "canteen", "mutual_aid", "comprehensive"):
        assert np.array_equal(plain.seconds_by_kind[kind], drive.seconds_by_kind[kind])
        assert np.array_equal(plain.metres_by_kind[kind], drive.metres_by_kind[kind])
    columns = list(plain.coverage_long.columns)
    mine = drive.coverage_long[drive.coverage_long["kind"] == "day_care"]
    theirs = plain.coverage_long[plain.coverage_long["kind"] == "day_care"]
    pd.testing.assert_frame_equal(mine[columns].reset_index(drop=True), theirs.reset_index(drop=True))
    assert set(mine["mode"]) == {"walk_elderly"}
    # the plain demo has no mode column at all: its tables are those of before
    assert "mode" not in plain.coverage_long and "mode" not in plain.coverage_wide
    # 'any' stays the walking service circle: the car to the nursing home does not count as a walk
    assert np.array_equal(plain.seconds_by_kind["any"], drive.seconds_by_kind["any"])


def test_the_tables_say_which_mode_each_figure_used(runs):
    _, drive = runs
    wide = drive.coverage_wide
    study = wide[wide["scope"] == "study"].set_index("kind")
    assert list(wide.columns[:6]) == ["scope", "code", "name", "kind", "mode", "elderly"]
    assert study.loc["nursing_home", "mode"] == "drive"
    assert study.loc["day_care", "mode"] == "walk_elderly"
    assert study.loc["any", "mode"] == "walk_elderly"
    assert np.isnan(study.loc["day_care", "share_30min"]) and study.loc["nursing_home", "share_30min"] > 0
    out = Path(drive.config.output_dir)
    written = pd.read_csv(out / "coverage_by_area.csv", encoding="utf-8-sig")
    assert "出行方式" in written.columns
    parameters = pd.read_csv(out / "parameters.csv", encoding="utf-8-sig")
    modes = parameters[parameters.iloc[:, 0].astype(str).str.startswith("travel mode")]
    text = " | ".join(modes.iloc[:, 1].astype(str))
    assert "nursing_home" in " ".join(modes.iloc[:, 0]) and "drive" in text and "km/h" in text
    assert any("isochrones follow each kind's mode" in note.lower() for note in drive.notes)
    assert any("never a drive" in note for note in drive.notes)
    # isochrones follow each kind's mode (nursing homes drawn by car); the sensitivity sheet stays walking
    nursing = drive.isochrones[drive.isochrones["kind"] == "nursing_home"]
    assert set(nursing["minutes"]) == {15.0, 30.0} and set(nursing["mode"]) == {"drive"}
    assert set(drive.isochrones.loc[drive.isochrones["kind"] == "day_care", "mode"]) == {"walk_elderly"}
    assert "nursing_home" not in set(drive.sensitivity["kind"])


def test_the_command_line_summary_marks_the_kind_that_drives(tmp_path):
    path = _study_file(tmp_path, DRIVE_PARAMETERS)
    done = subprocess.run([sys.executable, "-m", "coverage", "run", str(path), "--out", str(tmp_path / "out"),
                           "--no-map", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    nursing = next(line for line in lines if " nursing_home " in line)
    day_care = next(line for line in lines if " day_care " in line)
    assert "(drive)" in nursing and "(" not in day_care


def test_nursing_home_seconds_agree_with_a_networkx_dijkstra_on_the_one_way_drive_graph(runs):
    """An independent search: networkx on a directed graph of the drive edges, facility → home as the pipeline."""
    import networkx as nx

    _, drive = runs
    params = drive.config.parameters
    net = _drive_network(drive)
    forward, backward = profiles.edge_costs(net, "drive", ferry=params.ferry)
    walk = profiles.DRIVE.access_speed_mps
    graph = nx.DiGraph()
    for i in range(net.n_edges):
        u, v = int(net.edge_u[i]), int(net.edge_v[i])
        for a, b, cost in ((u, v, forward[i]), (v, u, backward[i])):
            if np.isfinite(cost) and (not graph.has_edge(a, b) or graph[a][b]["w"] > cost):
                graph.add_edge(a, b, w=float(cost))
    nursing = drive.facilities[ingest.has_kind(drive.facilities, "nursing_home")].to_crs(net.crs)
    fsnap = reach.snap_points(net, nursing.geometry, max_access_m=params.max_access_m)
    for k in np.flatnonzero(fsnap.on_network):
        e, f, a = int(fsnap.edge[k]), float(fsnap.fraction[k]), float(fsnap.access_m[k])
        u, v = int(net.edge_u[e]), int(net.edge_v[e])
        # from the facility along its edge to either end, where the car may go that way
        if np.isfinite(backward[e]):
            graph.add_edge("S", (k, "u"), w=a / walk + f * backward[e])
            graph.add_edge((k, "u"), u, w=0.0)
        if np.isfinite(forward[e]):
            graph.add_edge("S", (k, "v"), w=a / walk + (1 - f) * forward[e])
            graph.add_edge((k, "v"), v, w=0.0)
    node_seconds = nx.single_source_dijkstra_path_length(graph, "S", weight="w")
    dsnap = reach.snap_points(net, drive.demand_projected.geometry, max_access_m=params.max_access_m)
    seconds = drive.seconds_by_kind["nursing_home"]
    facility_edges = set(fsnap.edge[fsnap.on_network].tolist())
    candidates = [i for i in np.flatnonzero(np.isfinite(seconds)) if int(dsnap.edge[i]) not in facility_edges]
    sample = np.random.default_rng(5).choice(candidates, size=min(80, len(candidates)), replace=False)
    for i in sample:
        e, g, a = int(dsnap.edge[i]), float(dsnap.fraction[i]), float(dsnap.access_m[i])
        u, v = int(net.edge_u[e]), int(net.edge_v[e])
        via_u = node_seconds.get(u, np.inf) + g * forward[e]
        via_v = node_seconds.get(v, np.inf) + (1 - g) * backward[e]
        assert seconds[i] == pytest.approx(min(via_u, via_v) + a / walk, abs=1e-3)
