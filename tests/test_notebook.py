"""Does the quickstart notebook run from top to bottom, as a planner would run it?"""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.conftest import REPO_ROOT


def test_quickstart_notebook_executes_without_errors():
    path = REPO_ROOT / "notebooks" / "01_quickstart.ipynb"
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "covered now" in text and "share_15min" in text
