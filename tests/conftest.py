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


def shared_data_folder() -> Path:
    """The ../shared/data folder itself, with the same skip rule as :func:`shared_data`."""
    if not SHARED_DATA.exists() and not os.environ.get("CI"):
        pytest.skip(f"real reference data not found at {SHARED_DATA} (it sits beside the checkout in CI)")
    return SHARED_DATA


def metres_between(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres (haversine, sphere of radius 6371 km)."""
    import numpy as np

    lon1, lat1, lon2, lat2 = map(np.radians, (np.asarray(lon1, float), np.asarray(lat1, float),
                                              np.asarray(lon2, float), np.asarray(lat2, float)))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * np.arcsin(np.sqrt(a))
