"""Region runs on a real dask.distributed LocalCluster: equal to single runs, failures, resume, totals, borders."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

from coverage import ingest
from coverage.pipeline import run_study
from coverage.region import AREA_RECORD, area_study, load_region
from coverage.region_run import run_region
from tests.conftest import REPO_ROOT

#: three towns of the demo county: two streets of the urban core (sharing a border through the street grid) and a town
CODES = ["429901001000", "429901003000", "429901200000"]


def _region_file(folder, *, areas, buffer_m=2000, cross_border=True, name="rg"):
    """A region study over the demo inputs (absolute paths), written into ``folder``."""
    study = yaml.safe_load((REPO_ROOT / "studies" / "demo_region.yaml").read_text(encoding="utf-8"))
    base = REPO_ROOT / "studies"
    inputs = study["inputs"]
    inputs["network"] = str((base / inputs["network"]).resolve())
    inputs["facilities"][0]["path"] = str((base / inputs["facilities"][0]["path"]).resolve())
    inputs["units"]["path"] = str((base / inputs["units"]["path"]).resolve())
    inputs["population"]["rasters"] = str((base / inputs["population"]["rasters"]).resolve())
    inputs["population"]["census"]["path"] = str((base / inputs["population"]["census"]["path"]).resolve())
    study["study"]["name"] = name
    study["outputs"] = {"folder": str(folder / "out" / name)}
    study["region"] = {"areas": areas, "buffer_m": buffer_m, "cross_border_facilities": cross_border}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(study, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    from coverage.region_run import local_cluster

    cluster = local_cluster(2)  # a distributed.LocalCluster: 2 worker processes, one thread each
    assert isinstance(cluster, distributed.LocalCluster) and len(cluster.workers) == 2
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.fixture(scope="module")
def three_towns(tmp_path_factory, client):
    folder = tmp_path_factory.mktemp("region")
    region = load_region(_region_file(folder, areas={"codes": CODES}))
    results = run_region(region, client=client, make_map=True, progress=False)
    return folder, region, results


def _tables(folder):
    return {p.name: p for p in folder.glob("*.csv")}


def test_region_run_equals_separate_single_area_runs(three_towns, tmp_path):
    _, region, results = three_towns
    assert [o.status for o in results.outcomes] == ["done"] * 3
    assert results.n_workers == 2
    # two worker processes, three areas: the network extract was read once per worker, never per area
    pids = {o.worker_pid for o in results.outcomes}
    assert 1 <= len(pids) <= 2 and max(o.extract_reads for o in results.outcomes) == 1
    for area in region.areas[:2]:
        area_dir = region.area_dir(area.code)
        inputs = area_dir / "_inputs"
        single = dataclasses.replace(area_study(region, area, inputs / "network.osm", inputs / "units.geojson"),
                                     output_dir=tmp_path / area.code)
        alone = run_study(single, make_map=False)
        region_tables, single_tables = _tables(area_dir), _tables(tmp_path / area.code)
        assert set(single_tables) <= set(region_tables) and len(single_tables) >= 8
        for name, path in single_tables.items():
            pd.testing.assert_frame_equal(pd.read_csv(region_tables[name]), pd.read_csv(path), obj=name)
        # and the in-memory results agree with what the region run wrote
        written = pd.read_csv(area_dir / "_region" / "coverage.csv")
        study_rows = alone.coverage_long[alone.coverage_long["scope"] == "study"].reset_index(drop=True)
        np.testing.assert_allclose(written["elderly_within"], study_rows["elderly_within"])


def test_combined_outputs_link_every_area(three_towns):
    _, region, results = three_towns
    out = region.output_dir
    for name in ("region.xlsx", "region.gpkg", "region_map.html", "region_run.json", "region_targets.csv"):
        assert (out / name).exists(), name
    page = (out / "region_map.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(areas/[^"]+\.html)"', page)
    assert len(links) == 3 and all((out / link).exists() for link in links)
    assert "合成示例数据 / synthetic demo data" in page
    record = json.loads((out / "region_run.json").read_text(encoding="utf-8"))
    assert [a["code"] for a in record["areas"]] == CODES
    assert all(a["area_record"]["status"] == "done" and a["area_record"]["inputs"]["network"]["sha256"]
               for a in record["areas"])
    layer = gpd.read_file(out / "region.gpkg", layer="areas")
    assert list(layer["area_code"]) == CODES and layer["share"].between(0, 1).all()


def test_region_totals_are_sums_of_people_and_units(three_towns):
    _, region, results = three_towns
    out = region.output_dir
    totals = pd.read_csv(out / "region_totals.csv", encoding="utf-8-sig")
    totals = totals.set_index(totals.columns[0])
    # from each area's own coverage table, not from the region's tables
    within = elderly = 0.0
    for code in CODES:
        table = pd.read_csv(region.area_dir(code) / "coverage_long.csv")
        row = table[(table["统计范围"] == "全域") & (table["设施类型"] == "任一类型设施") & (table["阈值"] == 1000)
                    & (table["单位"] == "m")]
        assert len(row) == 1
        within += float(row["阈值内老年人口(人)"].iloc[0])
        elderly += float(row["老年人口(人)"].iloc[0])
    circle = totals.loc["national.life_circle_15min_1000m"]
    assert circle["实际值"] == pytest.approx(within / elderly, abs=1e-6)
    shares = [pd.read_csv(region.area_dir(c) / "targets.csv").set_index("指标编号").loc[
        "national.life_circle_15min_1000m", "实际值"] for c in CODES]
    assert abs(np.mean(shares) - within / elderly) > 1e-4  # the mean of percentages would be another figure
    # villages and communities with meal aid: units met over the areas' villages
    units = ingest.read_units(REPO_ROOT / "data" / "boundaries" / "demo_units.geojson")
    villages = units[(units["level"] == "village") & units["code"].str[:9].isin([c[:9] for c in CODES])]
    meal = totals.loc["putuo_2024.meal_aid_village_coverage"]
    parts = pd.read_csv(out / "region_targets.csv", encoding="utf-8-sig")
    assert meal["实际值"] == pytest.approx(meal["分子"] / len(villages), abs=1e-6)
    assert meal["分母"] == len(villages)
    mine = parts[parts["指标编号"] == "putuo_2024.meal_aid_village_coverage"]
    assert mine["分子"].sum() == meal["分子"] and len(mine) == 3


def test_one_broken_area_fails_alone_and_is_listed(tmp_path, client, capsys):
    from coverage.cli import main

    units = ingest.read_units(REPO_ROOT / "data" / "boundaries" / "demo_units.geojson")
    towns = units[units["code"].isin(CODES[:2])][["code", "name", "geometry"]]
    # an outline far from the network and the units: nothing to cut
    nowhere = gpd.GeoDataFrame({"code": ["X1"], "name": ["无路网区域"]},
                               geometry=[shapely.box(100.0, 20.0, 100.02, 20.02)], crs=4326)
    outline = tmp_path / "areas.geojson"
    pd.concat([towns, nowhere], ignore_index=True).pipe(gpd.GeoDataFrame, crs=4326).to_file(outline)
    path = _region_file(tmp_path, areas={"outline": str(outline), "code_column": "code", "name_column": "name"},
                        name="broken")
    address = client.scheduler.address
    code = main(["region", str(path), "--scheduler", address, "--no-map", "--quiet"])
    assert code == 3
    err = capsys.readouterr().err
    assert "X1 无路网区域 [cut]" in err and "429901001000" not in err
    record = json.loads((tmp_path / "out" / "broken" / "region_run.json").read_text(encoding="utf-8"))
    status = {a["code"]: a["status"] for a in record["areas"]}
    assert status == {CODES[0]: "done", CODES[1]: "done", "X1": "failed"}
    assert record["failed"] == [{"code": "X1", "name": "无路网区域", "stage": "cut",
                                 "message": record["failed"][0]["message"]}]
    assert "no unit" in record["failed"][0]["message"]
    failed = pd.read_csv(tmp_path / "out" / "broken" / "region_failed.csv", encoding="utf-8-sig")
    assert len(failed) == 1


def test_rerun_after_interruption_computes_only_what_is_missing(three_towns, tmp_path, client):
    _, region, _ = three_towns
    copy = tmp_path / "copy"
    shutil.copytree(region.output_dir, copy)
    region = dataclasses.replace(region, study=dataclasses.replace(region.study, output_dir=copy))
    # interrupted: the third area never finished, the second lost an output while being written
    (region.area_dir(CODES[2]) / AREA_RECORD).unlink()
    (region.area_dir(CODES[1]) / "targets.csv").unlink()
    again = run_region(region, client=client, make_map=True, progress=False)
    assert again.skipped == (CODES[0],) and set(again.computed) == {CODES[1], CODES[2]}
    assert all(o.status in ("done", "skipped") for o in again.outcomes)
    assert (region.area_dir(CODES[1]) / "targets.csv").exists()
    third = run_region(region, client=client, make_map=True, progress=False)
    assert third.computed == () and len(third.skipped) == 3


def test_cross_border_reach_follows_the_option(three_towns, tmp_path, client):
    # 城关街道 borders 东城街道 and 西城街道 through the urban street grid; the three towns' run counted
    # facilities across the border (cross_border_facilities: true, buffer 2000 m), this one does not
    _, with_region, _ = three_towns
    path = _region_file(tmp_path, areas={"codes": [CODES[0]]}, cross_border=False, name="cross_false")
    without_region = load_region(path)
    results = run_region(without_region, client=client, make_map=False, progress=False)
    assert results.outcomes[0].status == "done", results.outcomes[0].message
    runs = {}
    for cross, region in ((True, with_region), (False, without_region)):
        folder = region.area_dir(CODES[0])
        runs[cross] = {
            "facilities": pd.read_csv(folder / "facilities.csv"),
            "rejects": pd.read_csv(folder / "rejects.csv"),
            "coverage": pd.read_csv(folder / "_region" / "coverage.csv"),
            "outline": region.areas[0].outline,
        }
    outline = runs[True]["outline"]
    lon_col, lat_col = "经度(WGS-84)", "纬度(WGS-84)"
    with_cross = runs[True]["facilities"]
    points = shapely.points(with_cross[lon_col], with_cross[lat_col])
    outside = ~shapely.covers(outline, points)
    assert outside.sum() >= 1  # facilities across the border are kept (and listed) …
    without = runs[False]["facilities"]
    assert shapely.covers(outline, shapely.points(without[lon_col], without[lat_col])).all()  # … or not
    assert len(with_cross) - outside.sum() == len(without)
    # without them, the same facilities are rejected as outside the study area
    outside_off = (runs[False]["rejects"]["原因"] == "outside_study_area").sum()
    outside_on = (runs[True]["rejects"]["原因"] == "outside_study_area").sum()
    assert outside_off - outside_on >= outside.sum()  # records (several may make one site)
    # demand is the area's own either way; reach is larger with the neighbours' facilities
    on, off = runs[True]["coverage"], runs[False]["coverage"]
    np.testing.assert_allclose(on["elderly"], off["elderly"])
    anyk = (on["kind"] == "any") & (on["unit"] == "min")
    assert (on.loc[anyk, "elderly_within"].to_numpy() >= off.loc[anyk, "elderly_within"].to_numpy() - 1e-6).all()
    assert on.loc[anyk, "elderly_within"].sum() > off.loc[anyk, "elderly_within"].sum()
    # the buffer decides how much street network beyond the border the area's people may walk on
    from coverage.region import buffered_outline, cut_osm, read_osm_extract

    extract = read_osm_extract(with_region.study.network)
    counts = {b: cut_osm(extract, buffered_outline(outline, b), tmp_path / f"cut_{b}.osm") for b in (0, 500, 2000)}
    assert counts[0]["ways"] < counts[500]["ways"] < counts[2000]["ways"] < len(extract.way_id)
    # --force redoes an area whose outputs are current
    forced = run_region(without_region, client=client, make_map=False, progress=False, force=True, write=False)
    assert forced.computed == (CODES[0],)


def test_region_input_errors_name_the_file_and_exit_2(tmp_path, capsys):
    from coverage._errors import ConfigError
    from coverage.cli import main

    with pytest.raises(ConfigError, match="region: block"):
        load_region(REPO_ROOT / "studies" / "demo.yaml")
    path = _region_file(tmp_path, areas={"codes": ["429901999000"]}, name="badcode")
    assert main(["region", str(path), "--serial", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "codes[0]" in err and "Traceback" not in err
    path = _region_file(tmp_path, areas={"units_level": "village"}, name="badlevel")
    with pytest.raises(ConfigError, match="units_level must be one of county, town"):
        load_region(path)


def test_the_towns_of_a_region_add_up_to_the_whole_county_run(tmp_path):
    # the demo region's eight towns, each with its own cut units, against the one whole-county run: every town
    # holds its census total, and a cell split by a town border is not counted in both towns (its part outside
    # the town, left uncalibrated, once landed inside the town on a rounding sliver of the cell: 滨江 +71)
    from coverage.config import load_study
    from coverage.demand import _load_demand, _study_area
    from coverage.region import write_area_units

    county = run_study(load_study(REPO_ROOT / "studies" / "demo.yaml"), write=False, make_map=False)
    whole = county.demand_projected
    region = load_region(_region_file(tmp_path, areas={"units_level": "town"}, name="towns"))
    units = ingest.read_units(region.study.units.path, crs=region.study.units.crs)
    census = pd.read_csv(region.study.population.census, dtype=str, encoding="utf-8-sig")
    census = census.set_index("区划代码")["60岁及以上人口"].astype(float)
    assert len(region.areas) == 8
    towns = {}
    for area in region.areas:
        path = write_area_units(units, area, tmp_path / f"{area.code}.geojson")
        config = area_study(region, area, region.study.network, path)
        own = ingest.read_units(path, crs="wgs84")
        # the population stage of the area's run (run_study's _load_demand on the area's units)
        demand, _, _ = _load_demand(config, own, _study_area(own), whole.crs, [])
        towns[area.code] = float(demand["elderly"].sum())
        # persons outside the town (uncalibrated) never lie inside it
        assert demand["zone_code"].notna().all(), area.name
        assert towns[area.code] == pytest.approx(census[area.code], rel=1e-12), area.name
        assert towns[area.code] == pytest.approx(whole.loc[whole["town_code"] == area.code, "elderly"].sum(),
                                                 rel=1e-12), area.name
    assert sum(towns.values()) == pytest.approx(float(whole["elderly"].sum()), rel=1e-12)
    assert float(whole["elderly"].sum()) == pytest.approx(census["429901000000"], rel=1e-12)


def test_every_region_column_has_an_english_header_written_for_it():
    """The region workbook in English: its own columns read as words, as the single-area sheets do."""
    from coverage.region_outputs import REGION_HEADERS_ZH
    from coverage.report import HEADERS_EN

    assert set(REGION_HEADERS_ZH) <= set(HEADERS_EN)
    assert all("_" not in HEADERS_EN[column] for column in REGION_HEADERS_ZH)
