"""
eldercare-coverage: walking-time coverage of elderly-care facilities (养老服务设施步行覆盖评估).

The import name is ``coverage`` (it shadows coverage.py: never install that
tool into this project's environment). Modules by concern:

- ``coverage.config``: study configuration files
- ``coverage.coords``: GCJ-02 / BD-09 / WGS-84 conversion
- ``coverage.ingest``: facility tables and administrative units
- ``coverage.population``: elderly demand from WorldPop age rasters and census totals
- ``coverage.network``: walking networks from OpenStreetMap
- ``coverage.reach``: walking time to the nearest facility, catchments, isochrones
- ``coverage.metrics`` / ``coverage.targets``: coverage rates and policy targets
- ``coverage.siting`` / ``coverage.proposals``: where to build next
- ``coverage.maps`` / ``coverage.figures``: HTML map and PNG figure
- ``coverage.report`` / ``coverage.outputs``: tables and files
- ``coverage.pipeline``: the batch job (``run_study``)
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("eldercare-coverage")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
