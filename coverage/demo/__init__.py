"""Generate the synthetic demo county (合成示例数据 / synthetic demo data) in the real input formats.

The demo area is a fictional county, 示例县（合成）(code 429901), placed near
113.90E, 30.95N (UTM zone 49N). It is written in the same formats as real
inputs so that a demo run goes through the same loaders:

* administrative units (county → towns/streets → villages/communities) as
  GeoJSON polygons that tile each other;
* a walking network as OSM XML 0.6, with a river crossed only at bridges, an
  island reached only by ferry, and ways a walking filter must drop (motorway,
  construction, buildings, land use);
* WorldPop-style age × sex population rasters (persons per ~100 m cell);
* a census table of 60+ totals per town, deliberately higher than the raster
  sums, as WorldPop undercounts the urban elderly;
* a facility list as an Excel sheet with a title row and GCJ-02 coordinates
  (plus the same table as a GBK CSV), including three bad rows;
* the study configuration ``studies/demo.yaml`` and ``data/demo/README.md``.

Every file carries the label 合成示例数据 / synthetic demo data. All
randomness comes from ``numpy.random.default_rng(20240601)`` drawn in a fixed
order, so two runs write the same content. Geometry is built in local metres
(UTM 49N shifted to the county centre) and converted to WGS-84 on output.

The generator is a subpackage outside the analysis core; nothing in
``coverage`` imports it except the ``eldercov make-demo`` command. Modules, each
importing only from the ones before it:

* :mod:`coverage.demo.layout` – constants, the local frame, geometry helpers,
  the landscape and the administrative units;
* :mod:`coverage.demo.streets` – the walking network and its OSM XML writer;
* :mod:`coverage.demo.people` – the population rasters and the census table;
* :mod:`coverage.demo.registries` – the facility list, as .xlsx and GBK CSV;
* :mod:`coverage.demo.files` – :func:`make_demo`: everything written, the
  study YAML and the README.

Run ``python -m coverage.demo [ROOT]`` to regenerate the committed files into
the repository root (or into ROOT).
"""

from __future__ import annotations

from coverage.demo.files import STUDY_YAML, main, make_demo, write_study_yaml, write_units_geojson
from coverage.demo.layout import (
    AGE_BAND_SHARE,
    AGE_BANDS,
    CELL_DEG,
    CENTRE_LAT,
    CENTRE_LON,
    COUNTY_CODE,
    COUNTY_NAME,
    COUNTY_SHORT_NAME,
    FACILITY_DECIMALS,
    FEMALE_SHARE,
    ISLAND_VILLAGE_NAME,
    LABEL,
    OSM_DECIMALS,
    RIVER_NAME,
    SEED,
    STREET_WITHOUT_COMPREHENSIVE,
    STREET_WITHOUT_DAY_CARE,
    TOWN_WITHOUT_NURSING_HOME,
    WORK_CRS,
    WORLDPOP_NODATA,
    Landscape,
    Unit,
    units_lonlat,
)
from coverage.demo.people import PopulationGrid, write_census, write_population
from coverage.demo.registries import (
    FACILITY_COLUMNS,
    FACILITY_TITLE,
    FacilityRow,
    write_facilities_gbk_csv,
    write_facilities_xlsx,
)
from coverage.demo.streets import WALKABLE_HIGHWAYS, OsmData, write_osm

__all__ = [
    "AGE_BAND_SHARE",
    "AGE_BANDS",
    "CELL_DEG",
    "CENTRE_LAT",
    "CENTRE_LON",
    "COUNTY_CODE",
    "COUNTY_NAME",
    "COUNTY_SHORT_NAME",
    "FACILITY_COLUMNS",
    "FACILITY_DECIMALS",
    "FACILITY_TITLE",
    "FEMALE_SHARE",
    "ISLAND_VILLAGE_NAME",
    "LABEL",
    "OSM_DECIMALS",
    "RIVER_NAME",
    "SEED",
    "STREET_WITHOUT_COMPREHENSIVE",
    "STREET_WITHOUT_DAY_CARE",
    "STUDY_YAML",
    "TOWN_WITHOUT_NURSING_HOME",
    "WALKABLE_HIGHWAYS",
    "WORK_CRS",
    "WORLDPOP_NODATA",
    "FacilityRow",
    "Landscape",
    "OsmData",
    "PopulationGrid",
    "Unit",
    "main",
    "make_demo",
    "units_lonlat",
    "write_census",
    "write_facilities_gbk_csv",
    "write_facilities_xlsx",
    "write_osm",
    "write_population",
    "write_study_yaml",
    "write_units_geojson",
]
