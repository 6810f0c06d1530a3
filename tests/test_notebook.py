"""Do the notebooks run from top to bottom, as a planner would run them?"""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT


def _execute(name: str) -> str:
    """Run a notebook of notebooks/ in a fresh kernel; return the text of its outputs (no cell may fail)."""
    path = REPO_ROOT / "notebooks" / name
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    return "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)


def test_quickstart_notebook_executes_without_errors():
    text = _execute("01_quickstart.ipynb")
    assert "covered now" in text and "share_15min" in text


def test_own_data_notebook_executes_and_accounts_for_every_row():
    text = _execute("02_your_own_data.ipynb")
    assert "识别为Amap / 高德 POI 导出表" in text            # the POI export was recognised
    assert "other_system gcj02" in text                     # the wrongly declared list was caught
    assert "65 records → 58 sites; 7 merged" in text        # the second list did not double the count
    # the demo list's 在建 / 规划 / 停业 rows (coverage.timeline) are counted apart, not dropped
    assert "rows in 83 = located 65 (in 58 sites) + presence-only 5 + rejected 4 + not open now 9" in text
    assert "IProgress" not in text and "findfont" not in text


def test_region_batch_notebook_runs_the_demo_towns_on_two_workers():
    text = _execute("05_region_batch.ipynb")
    assert "8 areas (every town of the units file)" in text
    assert "computed 8, skipped 0, failed 0" in text
    assert "rerun: computed ['429901200000'], skipped 7" in text
    assert "region_map.html" not in text and "region.xlsx" in text


def test_plans_over_years_notebook_executes_and_shows_the_trajectory():
    text = _execute("04_plans_over_years.ipynb")
    assert "opening in 2025 / 2025 年投用" in text and "under_construction" in text
    assert "putuo_plan" not in text or "not due" in text  # the series is not due before 2024
    assert "first_year_met" in text and "demo_年度进展.xlsx" in text
    assert "synthetic demo data" in text


def test_capacity_and_equity_notebook_executes_and_shows_the_measures():
    text = _execute("03_capacity_and_equity.ipynb")
    assert "canteen capacity-aware 容量约束下可获助餐" in text and "solver exact" in text
    assert "theil_between_town" in text and "Lorenz figure: lorenz_canteen.png" in text
    assert "equity_example.canteen_capacity_15min" in text
    assert "served within reach, capacities respected" in text and "mean walk" in text
    assert "synthetic demo data" in text
