"""The run record (run.json): inputs with checksums, parameters, versions, timings, counts and outputs."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from coverage import ingest, report
from coverage._io import file_sha256
from coverage.lengths import LENGTH_DEFINITION
from coverage.results import StudyResults, population_method


def _versions() -> dict[str, str]:
    names = ["eldercare-coverage", "numpy", "pandas", "scipy", "networkx", "shapely", "pyproj", "pyogrio",
             "geopandas", "rasterio", "osmnx", "osmium", "folium", "openpyxl", "xlsxwriter", "matplotlib"]
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def build_run_record(results: StudyResults) -> dict:
    """
    The run record: inputs with sha256, parameters, package versions, timings per stage, counts, outputs.

    Parameters
    ----------
    results
        A finished run.
    """
    config = results.config
    inputs = {"config": config.config_path, "network": config.network}
    for i, source in enumerate(config.facilities):
        inputs[f"facilities[{i}]"] = source.path
    if config.units:
        inputs["units"] = config.units.path
    for raster in config.population.rasters:
        inputs[f"population:{raster.name}"] = raster
    if config.population.census:
        inputs["census"] = config.population.census
    demand = results.demand_projected
    return {
        "study": config.name,
        "title": config.title,
        "synthetic": config.synthetic,
        "data_label": report.SYNTHETIC_LABEL if config.synthetic else "",
        "inputs": {name: {"path": str(path), "sha256": file_sha256(path)} for name, path in inputs.items()},
        "configuration": config.to_record(),
        "versions": _versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(), "python": sys.version.split()[0]},
        "timings_seconds": results.timings,
        "length_definition": LENGTH_DEFINITION,
        "counts": {
            "facility_rows": results.ingest_summary,
            "facilities_by_kind": {k: int(ingest.has_kind(results.facilities, k).sum())
                                   for k in config.parameters.kinds},
            "demand_points": int(len(demand)),
            "elderly_total": round(float(demand["elderly"].sum()), 1),
            "age_group": config.population.age_group,
            "population_year": config.population.year,
            "population_method": population_method(results),
            "network": results.graph_summary,
            "access": results.access_summary,
        },
        "calibration": results.calibration.to_dict("records") if len(results.calibration) else [],
        "notes": results.notes,
        "outputs": {name: {"path": str(path), "sha256": file_sha256(path)} for name, path in results.output_files.items()
                    if Path(path).exists()},
    }
