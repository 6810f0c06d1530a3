"""Shared test helpers: where the real reference data lives (../shared/data beside the checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def shared_data(relative: str) -> Path:
    """
    Path of a file in ../shared/data, skipping the test only where that folder is absent.

    In CI (``CI`` set) the folder must be there, so a missing file fails.
    """
    path = SHARED_DATA / relative
    if not SHARED_DATA.exists() and not os.environ.get("CI"):
        pytest.skip(f"real reference data not found at {SHARED_DATA} (it sits beside the checkout in CI)")
    assert path.exists(), f"missing reference file {path}"
    return path
