"""Real planners' data goes in whole: every mistake ends in a message that names the file or field, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"
DEMO_FACILITIES = REPO_ROOT / "data" / "facilities" / "demo_facilities.xlsx"
DEMO_UNITS = REPO_ROOT / "data" / "boundaries" / "demo_units.geojson"


def _run(*args, env=None):
    environment = {**os.environ, **(env or {})}
    environment.pop("ELDERCOV_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", "coverage", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env=environment)


def _study(tmp_path: Path, name: str = "study.yaml", *, replace: dict[str, str] | None = None,
           drop: tuple[str, ...] = ()) -> Path:
    """The demo study with absolute paths, some text replaced and lines containing ``drop`` removed."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    text = text.replace("../data/", str(REPO_ROOT / "data") + "/")
    text = "\n".join(line for line in text.splitlines() if not any(word in line for word in drop)) + "\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _assert_clean_error(done, *names):
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for name in names:
        assert name in done.stderr, (name, done.stderr)


# ------------------------------------------------------------------ (a) a kind without any facility


@pytest.fixture(scope="module")
def without_mutual_aid(tmp_path_factory) -> Path:
    """The demo study with its facility list minus every 互助幸福院 (as in every urban district)."""
    folder = tmp_path_factory.mktemp("no_mutual_aid")
    table = pd.read_excel(DEMO_FACILITIES, header=1)
    table = table[table["类型"] != "互助幸福院"]
    assert len(table) > 10
    table.to_csv(folder / "facilities.csv", index=False, encoding="utf-8-sig")
    return _study(folder, replace={"../data/facilities/demo_facilities.xlsx": str(folder / "facilities.csv")})


def test_a_study_without_mutual_aid_homes_runs_to_the_end_and_reports_0_percent(without_mutual_aid, tmp_path):
    done = _run("run", str(without_mutual_aid), "--out", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    out = tmp_path / "demo"
    for name in ("coverage_by_area.csv", "villages.csv", "facilities.csv", "targets.csv", "demo_coverage.xlsx",
                 "demo_map.html", "run.json"):
        assert (out / name).exists(), name

    coverage = pd.read_csv(out / "coverage_by_area.csv", encoding="utf-8-sig")
    row = coverage[(coverage["统计范围"] == "全域") & (coverage["设施类型"] == "互助幸福院")].iloc[0]
    assert row["15分钟覆盖率"] == 0.0 and row["1000米覆盖率"] == 0.0
    day_care = coverage[(coverage["统计范围"] == "全域") & (coverage["设施类型"] == "日间照料中心")].iloc[0]
    assert day_care["15分钟覆盖率"] > 0.2  # the other kinds are computed as usual

    # every target on 互助幸福院 alone is evaluated: 0 %, not met, and says there is no such facility
    targets = pd.read_csv(out / "targets.csv", encoding="utf-8-sig")
    mutual = targets[targets["服务类型"] == "互助幸福院"]
    assert len(mutual) >= 3
    assert (mutual["是否达标"] == "未达标").all()
    assert (mutual["实际值"] == 0).all()
    assert mutual["说明"].str.contains("无设施").all()

    # the console says so beside the 0 %
    line = next(text for text in done.stdout.splitlines() if " mutual_aid " in text)
    assert "0.0%" in line and "无设施" in line
    line = next(text for text in done.stdout.splitlines() if " day_care " in text)
    assert "无设施" not in line


def test_siting_a_kind_with_no_facility_yet_treats_everyone_as_uncovered(without_mutual_aid, tmp_path):
    done = _run("site", str(without_mutual_aid), "--kind", "mutual_aid", "--add", "2", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "现状覆盖: 0.0%" in done.stdout and "无设施" in done.stdout and "nan m" not in done.stdout
    sites = pd.read_csv(tmp_path / "demo" / "siting_mutual_aid_15min.csv", encoding="utf-8-sig")
    assert len(sites) == 2


# ------------------------------------------------------------------ (b) options checked when the file is read


def test_tianditu_without_a_key_stops_when_the_study_is_read(tmp_path):
    study = _study(tmp_path, replace={"parameters:": "outputs: {basemap: tianditu}\nparameters:"})
    env = {k: v for k, v in os.environ.items() if k != "TIANDITU_KEY"}
    done = subprocess.run([sys.executable, "-m", "coverage", "run", str(study), "--out", str(tmp_path / "out"),
                           "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    _assert_clean_error(done, "study.yaml", "outputs.basemap", "TIANDITU_KEY", "console.tianditu.gov.cn")
    assert not (tmp_path / "out" / "demo").exists()  # stopped before any table was written

    from coverage.config import check_basemap, load_study

    assert check_basemap("tianditu", environ={"TIANDITU_KEY": "abc"}) == "tianditu"
    os.environ["TIANDITU_KEY"] = "abc"
    try:
        assert load_study(study).basemap == "tianditu"
    finally:
        os.environ.pop("TIANDITU_KEY")


@pytest.mark.parametrize(
    ("replace", "named"),
    [
        ({"parameters:": "outputs: {basemap: google}\nparameters:"}, ["outputs.basemap", "google"]),
        ({"walk_speed_mps: 0.8": "walk_speed: 0.8"}, ["parameters", "walk_speed", "walk_speed_mps"]),
        ({"thresholds_min: [5, 10, 15]": "thresholds_min: [5, 10, 十五]"}, ["parameters.thresholds_min", "十五"]),
        ({"max_access_m: 500": "max_access_m: 500\n  isochrones_per_facility: 'no'"},
         ["parameters.isochrones_per_facility", "true or false"]),
        ({"wait_seconds: 900": "wait_seconds: 15分钟"}, ["parameters.ferry.wait_seconds"]),
        ({"ferry: {enabled: true,": "ferry: {enabled: true, wait_minutes: 15,"}, ["parameters.ferry", "wait_minutes"]),
        ({"parameters:": "parameter:"}, ["parameter", "parameters"]),
        ({"rasters:": "raster:"}, ["inputs.population", "raster", "rasters"]),  # would silently mean no raster
        ({"year: 2020": "year: 二〇二〇"}, ["inputs.population.year"]),
        ({"level: town": "level: street"}, ["inputs.population.census.level", "street"]),
        ({"walk_speed_mps: 0.8": "walk_speed_mps: 0.8\n  kind_walk_speed_mps: 0.6"},
         ["parameters.kind_walk_speed_mps"]),
    ],
)
def test_wrong_options_are_named_when_the_study_is_read(tmp_path, replace, named):
    done = _run("run", str(_study(tmp_path, replace=replace)), "--out", str(tmp_path / "out"), "--quiet")
    _assert_clean_error(done, "study.yaml", *named)
    assert not (tmp_path / "out" / "demo").exists()


def test_one_threshold_may_be_written_without_brackets(tmp_path):
    from coverage.config import load_study

    study = _study(tmp_path, replace={"thresholds_min: [5, 10, 15]": "thresholds_min: 15"})
    assert load_study(study).parameters.thresholds_min == (15.0,)


# ------------------------------------------------------------------ (c) units in metres declared as WGS-84


def test_units_in_metres_declared_wgs84_are_named_with_their_bounds(tmp_path):
    units = gpd.read_file(DEMO_UNITS).to_crs(32649).set_crs(4326, allow_override=True)  # metres, labelled degrees
    units.to_file(tmp_path / "units_utm.geojson", driver="GeoJSON")
    minx = units[units["level"] == "county"].total_bounds[0]  # the study area is the county outline
    in_metres = {"../data/boundaries/demo_units.geojson": str(tmp_path / "units_utm.geojson")}
    # the coordinate-system check against the streets names the file first
    done = _run("run", str(_study(tmp_path, replace=in_metres)), "--out", str(tmp_path / "out"), "--quiet")
    _assert_clean_error(done, "units_utm.geojson", "metres", "EPSG:4326")

    # with that check switched off, the population stage still stops with the bounds and what to do
    unchecked = {**in_metres, "max_access_m: 500": "max_access_m: 500\n  crs_check: 'off'"}
    done = _run("run", str(_study(tmp_path, "raster.yaml", replace=unchecked)), "--out", str(tmp_path / "out"),
                "--quiet")
    _assert_clean_error(done, "projected metres", f"{minx:.5f}", "inputs.units", "EPSG:4326")
    # and without a raster the units file itself is named
    done = _run("run", str(_study(tmp_path, "no_raster.yaml", drop=("rasters:",), replace=unchecked)),
                "--out", str(tmp_path / "out"), "--quiet")
    _assert_clean_error(done, "units_utm.geojson", "projected metres", f"{minx:.5f}")


def test_units_far_from_the_rasters_get_both_extents(tmp_path):
    units = gpd.read_file(DEMO_UNITS)
    units["geometry"] = units.geometry.translate(5.0, 0.0)  # 5° east: another province
    units.to_file(tmp_path / "units_east.geojson", driver="GeoJSON")
    study = _study(tmp_path, replace={"../data/boundaries/demo_units.geojson": str(tmp_path / "units_east.geojson")})
    done = _run("run", str(study), "--out", str(tmp_path / "out"), "--quiet")
    # both extents: the study area's (moved to 118.8° E) and the rasters' (113.8° E)
    _assert_clean_error(done, "pop_60_f_demo.tif", "does not overlap", "(118.8", "(113.8")


def test_read_elderly_raster_names_the_units_file_it_is_given():
    from coverage import population
    from coverage._errors import InputDataError

    bands = sorted((REPO_ROOT / "data" / "demo" / "population").glob("pop_*_demo.tif"))
    with pytest.raises(InputDataError, match="projected metres") as raised:
        population.read_elderly_raster(bands, bounds=(769396.3, 3419488.7, 784393.0, 3436255.7),
                                       bounds_source="my_units.shp")
    assert "my_units.shp" in str(raised.value) and "(769396.30000, 3419488.70000)" in str(raised.value)


# ------------------------------------------------------------------ (d) siting requests


def test_siting_requests_a_planner_can_get_wrong_are_answered(without_mutual_aid, tmp_path):
    done = _run("site", str(without_mutual_aid), "--kind", "canteen", "--target", "90", "--out", str(tmp_path))
    _assert_clean_error(done, "--target", "0.9")
    done = _run("site", str(without_mutual_aid), "--kind", "canteen", "--add", "0", "--out", str(tmp_path))
    _assert_clean_error(done, "--add")

    import yaml

    study = yaml.safe_load(_study(tmp_path, "with_units.yaml").read_text(encoding="utf-8"))
    del study["inputs"]["units"], study["inputs"]["population"]["census"]
    no_units = tmp_path / "no_units.yaml"
    no_units.write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    for extra in (["--three-tier"], ["--villages", "--target", "0.6"]):
        done = _run("site", str(no_units), *extra, "--out", str(tmp_path))
        _assert_clean_error(done, "no_units.yaml", "inputs.units")


def test_another_citys_street_network_is_named_with_both_extents(tmp_path):
    """Beijing's streets for a county in Hubei: a clear stop, not 0 % coverage with the cause in a note."""
    from tests.conftest import shared_data

    beijing = shared_data("osm/beijing_bupt/map.osm.pbf")
    study = _study(tmp_path, replace={"network: ../data/demo/demo_walk.osm": f"network: {beijing}"})
    done = _run("run", str(study), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "map.osm.pbf" in done.stderr and "reaches neither the units" in done.stderr
    assert "116." in done.stderr and "113." in done.stderr  # both extents, in degrees
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.csv"))
