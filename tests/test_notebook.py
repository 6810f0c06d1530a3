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
    assert "rows in 74 = located 65 (in 58 sites) + presence-only 5 + rejected 4" in text
    assert "IProgress" not in text and "findfont" not in text
