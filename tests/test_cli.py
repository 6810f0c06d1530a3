"""Can a planner drive the tool from the command line, and do mistakes get a clear answer?"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"


def _run(*args, cwd=REPO_ROOT):
    return subprocess.run([sys.executable, "-m", "coverage", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_validate_reports_counts_and_writes_the_rejects_file(tmp_path):
    rejects = tmp_path / "rejects.csv"
    done = _run("validate", str(REPO_ROOT / "data/facilities/demo_facilities_gbk.csv"), "--crs", "gcj02",
                "--rejects", str(rejects))
    assert done.returncode == 0, done.stderr
    assert "rows" in done.stdout.lower() and "行" in done.stdout
    table = pd.read_csv(rejects, encoding="utf-8-sig")
    assert set(table["reason"]) == {"duplicate", "unknown_kind"}
    # the canteen without coordinates names its community: kept for village presence, not rejected
    assert "仅计存在（无坐标）1" in done.stdout


def test_a_missing_study_file_is_named_with_exit_code_2(tmp_path):
    done = _run("run", str(tmp_path / "nope.yaml"))
    assert done.returncode == 2
    assert "nope.yaml" in done.stderr


def test_a_facility_table_without_coordinates_names_the_file_and_what_to_do(tmp_path):
    table = tmp_path / "no_coords.csv"
    table.write_text("名称,类型,电话\n幸福院,互助幸福院,0710-1234567\n", encoding="utf-8")
    study = tmp_path / "study.yaml"
    study.write_text(DEMO.read_text(encoding="utf-8").replace("../data/facilities/demo_facilities.xlsx", str(table))
                     .replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")
    done = _run("run", str(study), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "no_coords.csv" in done.stderr and "经度" in done.stderr


def test_a_misspelt_target_set_fails_before_the_long_stages(tmp_path):
    study = tmp_path / "study.yaml"
    study.write_text(DEMO.read_text(encoding="utf-8").replace("panjin_2018", "panjin_2081")
                     .replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")
    done = _run("run", str(study), "--out", str(tmp_path / "out"), "--quiet")
    assert done.returncode == 2
    assert "panjin_2081" in done.stderr


def test_two_studies_in_one_call_give_a_combined_overview(tmp_path):
    second = tmp_path / "demo_b.yaml"
    second.write_text(DEMO.read_text(encoding="utf-8").replace("name: demo", "name: demo_b")
                      .replace("../data/", str(REPO_ROOT / "data") + "/"), encoding="utf-8")
    done = _run("run", str(DEMO), str(second), "--out", str(tmp_path / "out"), "--no-map", "--quiet")
    assert done.returncode == 0, done.stderr
    combined = pd.read_csv(tmp_path / "out" / "combined_overview.csv", encoding="utf-8-sig")
    assert set(combined["study"]) == {"demo", "demo_b"}
    assert "15分钟步行覆盖率" in done.stdout


def test_site_with_a_list_of_vacant_buildings_says_how_many_were_excluded(tmp_path):
    """Two buildings copied from Amap (GCJ-02): one in the county, one far outside it."""
    table = pd.DataFrame({"名称": ["闲置小学", "外县仓库"], "经度": [113.905, 115.5], "纬度": [30.955, 32.0]})
    path = tmp_path / "闲置用房.xlsx"
    table.to_excel(path, index=False)
    done = _run("site", str(DEMO), "--kind", "canteen", "--add", "2", "--candidates", str(path),
                "--candidates-crs", "gcj02", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "excluded 剔除" in done.stdout and "研究区外 / outside the study area 1" in done.stdout
    excluded = pd.read_csv(tmp_path / "demo" / "siting_canteen_15min_excluded_candidates.csv", encoding="utf-8-sig")
    assert "外县仓库" in set(excluded["名称"].astype(str))


def test_a_gap_that_is_not_a_share_is_refused_with_what_to_give():
    result = _run("site", "studies/demo.yaml", "--kind", "canteen", "--add", "2", "--gap", "5")
    assert result.returncode == 2
    assert "--gap 5" in result.stderr and "0.005" in result.stderr and "Traceback" not in result.stderr
