"""The values a study passes forward: its prepared inputs and its results (immutable, no writing here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import reach
from coverage.config import StudyConfig
from coverage.kinds import ANY_KIND

__all__ = ["ANY_KIND", "StudyInputs", "StudyResults", "population_method"]


@dataclass(frozen=True)
class StudyInputs:
    """
    A study's inputs loaded, projected and attached to the network.

    ``facilities`` and ``units`` are WGS-84; ``demand`` is in the working CRS.
    """

    units: gpd.GeoDataFrame | None
    study_area: gpd.GeoSeries | None
    facilities: gpd.GeoDataFrame
    rejects: pd.DataFrame
    ingest_summary: dict
    net: reach.NetworkArrays
    working_crs: object
    graph_summary: dict
    demand: gpd.GeoDataFrame
    calibration: pd.DataFrame
    facility_snap: reach.Snap
    demand_snap: reach.Snap
    presence_only: gpd.GeoDataFrame | None = None
    merge_log: pd.DataFrame | None = None
    fallback_points: pd.DataFrame | None = None
    access_summary: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StudyResults:
    """
    What a study run produced, for notebooks and for the writers.

    GeoDataFrames are in WGS-84 unless named ``*_projected``.
    """

    config: StudyConfig
    facilities: gpd.GeoDataFrame
    rejects: pd.DataFrame
    ingest_summary: dict
    units: gpd.GeoDataFrame | None
    demand_projected: gpd.GeoDataFrame
    seconds_by_kind: dict[str, np.ndarray]
    metres_by_kind: dict[str, np.ndarray]
    nearest_by_kind: dict[str, np.ndarray]
    coverage_long: pd.DataFrame
    coverage_wide: pd.DataFrame
    villages: pd.DataFrame
    uncovered_units: pd.DataFrame
    facility_table: pd.DataFrame
    isochrones: gpd.GeoDataFrame
    facility_isochrones: gpd.GeoDataFrame | None
    components: pd.DataFrame
    sensitivity: pd.DataFrame
    calibration: pd.DataFrame
    targets: pd.DataFrame
    graph_summary: dict
    timings: dict[str, float]
    output_files: dict[str, Path]
    notes: list[str]
    presence_only: gpd.GeoDataFrame | None = None
    merge_log: pd.DataFrame | None = None
    fallback_points: pd.DataFrame | None = None
    access_summary: dict = field(default_factory=dict)
    #: the walking network arrays the run searched (working CRS), for maps and notebooks
    network: reach.NetworkArrays | None = None
    #: 2SFCA, capacity-aware coverage, crowding and equity (:class:`coverage.access_tables.StudyAccess`);
    #: None when ``parameters.accessibility.enabled`` is false
    accessibility: object | None = None
    #: the year-by-year figures of ``run --years`` (:class:`coverage.year_tables.Trajectory`); None without years
    trajectory: object | None = None


def population_method(results: StudyResults) -> str:
    """How the demand was made: raster, raster calibrated to the census, or census over buildings/uniform."""
    methods = set(pd.unique(results.demand_projected.get("method", pd.Series(["raster"])).astype(str).to_numpy()))
    if methods == {"raster"}:
        return "raster, calibrated to census" if len(results.calibration) else "raster"
    return "census totals over " + " and ".join(sorted(methods))
