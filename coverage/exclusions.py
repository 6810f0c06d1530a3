"""
Where no new facility may be built: water, the planner's own no-build areas, and candidates that cannot be used.

Candidate sites come from street nodes, village centres and user tables;
before any of them reaches the optimiser they are screened here. A candidate
is excluded, with the reason written down, when it lies

* outside the study area (研究区外),
* in water mapped in the OpenStreetMap file of the study (``natural=water``,
  ``waterway=riverbank``, ``landuse=reservoir`` …; a street node on a bridge
  is in water: nobody builds a canteen on a bridge),
* in an area of one of the planner's exclusion layers (生态保护红线, 基本农田,
  flood zones …: any polygon file listed under ``inputs.exclusions``),
* farther from any walkable street than the access limit (no walking route).

Every candidate ends up either kept or in the excluded table: counts in =
kept + excluded.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._errors import InputDataError
from coverage._io import atomic_pickle, file_sha256
from coverage.config import ExclusionSource

__all__ = [
    "EXCLUDED_COLUMNS",
    "is_water",
    "read_exclusion_layers",
    "read_osm_water",
    "screen_candidates",
    "table_rejects_as_excluded",
]

#: columns of the excluded-candidates table
EXCLUDED_COLUMNS = ["candidate_id", "source", "name", "reason", "detail", "lon", "lat"]

#: reasons, bilingual as they appear in the tables
REASON_OUTSIDE = "研究区外 / outside the study area"
REASON_WATER = "位于水域 / in water"
REASON_EXCLUDED = "位于禁建区 / in an exclusion area"
REASON_OFF_NETWORK = "距步行道路过远 / too far from any walkable street"
REASON_TABLE = "候选表行无法使用 / candidate table row rejected"

_WATER_WATERWAY = frozenset({"riverbank", "dock", "canal", "river"})
_WATER_LANDUSE = frozenset({"reservoir", "basin"})


def is_water(tags: dict[str, str]) -> bool:
    """
    Whether an OSM area with these tags is open water.

    ``natural=water`` (with any ``water=*``), the old ``waterway=riverbank``
    and area-mapped docks/canals, and ``landuse=reservoir|basin``. Wetland
    is not water: people build next to paddy fields and marsh edges.
    """
    if tags.get("natural") == "water":
        return True
    if tags.get("waterway") in _WATER_WATERWAY:
        return True
    return tags.get("landuse") in _WATER_LANDUSE


#: bump when what read_osm_water keeps changes, so cached water layers are read again
WATER_CACHE_VERSION = "1"


def read_osm_water(
    path: str | Path, *, cache_dir: str | Path | None = None, use_cache: bool = True
) -> gpd.GeoDataFrame:
    """
    Water areas of an OpenStreetMap file (closed ways and multipolygon relations).

    Assembling areas takes two passes over the file (about 12 s for 50 MB),
    so the result is cached by the file's sha256 beside the parsed networks.

    Parameters
    ----------
    path
        .osm, .osm.pbf or .osm.bz2 file (GraphML files carry no areas: an
        empty frame is returned).
    cache_dir
        Cache root; default :func:`coverage.network.default_cache_dir`.
    use_cache
        Read and write that cache.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_type`` (``way``/``relation``), ``osm_id``, ``name``,
        ``geometry`` (MultiPolygon), EPSG:4326. Relations whose members are
        cut off by the extract's edge cannot be assembled and are left out
        (as every OSM tool does).
    """
    from coverage.network import RAW_OSM_SUFFIXES, default_cache_dir

    path = Path(path)
    empty = gpd.GeoDataFrame({"osm_type": [], "osm_id": [], "name": []}, geometry=[], crs="EPSG:4326")
    if not path.name.lower().endswith(RAW_OSM_SUFFIXES):
        return empty
    cache_file = None
    if use_cache:
        root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_file = root / "water" / f"{file_sha256(path)}-v{WATER_CACHE_VERSION}.pickle"
        if cache_file.exists():
            with open(cache_file, "rb") as handle:
                return pickle.load(handle)
    water = _assemble_water(path, empty)
    if cache_file is not None:
        atomic_pickle(water, cache_file)
    return water


def _assemble_water(path: Path, empty: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Read the water areas of ``path`` with pyosmium's area assembler (see :func:`read_osm_water`)."""
    import osmium

    factory = osmium.geom.WKBFactory()
    records, wkbs = [], []
    processor = (
        osmium.FileProcessor(str(path))
        .with_areas(osmium.filter.KeyFilter("natural", "waterway", "landuse"))
        .with_filter(osmium.filter.EntityFilter(osmium.osm.AREA))
    )
    try:
        for area in processor:
            tags = dict(area.tags)
            if not is_water(tags):
                continue
            try:
                wkb = factory.create_multipolygon(area)
            except RuntimeError:  # invalid ring: skip, as osmium's own tools do
                continue
            records.append(("way" if area.from_way() else "relation", int(area.orig_id()), tags.get("name")))
            wkbs.append(bytes.fromhex(wkb) if isinstance(wkb, str) else wkb)
    except RuntimeError as exc:
        raise InputDataError(f"cannot read water areas: {exc}", path=path,
                             hint="export the area again from OpenStreetMap / 请重新导出OSM文件") from None
    if not records:
        return empty
    frame = pd.DataFrame(records, columns=["osm_type", "osm_id", "name"])
    geometry = shapely.make_valid(shapely.from_wkb(np.array(wkbs, dtype=object)))
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def read_exclusion_layers(sources: Sequence[ExclusionSource]) -> gpd.GeoDataFrame:
    """
    The planner's no-build areas, from polygon files (GeoJSON, GeoPackage, Shapefile …).

    Parameters
    ----------
    sources
        From ``inputs.exclusions`` of the study file: path, optional layer,
        coordinate system of files without one (``gcj02``/``bd09`` are
        converted), and a label for the tables (default the file name).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``label``, ``source_file``, ``geometry`` (polygons), EPSG:4326.

    Raises
    ------
    InputDataError
        A file that cannot be read or holds no polygons, naming the file.
    """
    from pyogrio.errors import DataLayerError, DataSourceError

    from coverage import coords

    parts = []
    for source in sources:
        path = Path(source.path)
        try:
            layer = gpd.read_file(path, layer=source.layer) if source.layer else gpd.read_file(path)
        except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
            raise InputDataError(f"cannot read the exclusion layer: {exc}", path=path,
                                 hint="give a GeoJSON, GeoPackage or Shapefile of polygons") from None
        polygons = layer[layer.geometry.notna() & layer.geom_type.isin(["Polygon", "MultiPolygon"])]
        if polygons.empty:
            raise InputDataError(
                f"no polygons in the exclusion layer ({len(layer)} features of types "
                f"{', '.join(sorted(set(layer.geom_type.dropna())) or ['none'])})",
                path=path, hint="exclusion areas must be polygons / 禁建区须为面要素",
            )
        if source.crs in ("gcj02", "bd09"):
            if polygons.crs is not None and not polygons.crs.equals("EPSG:4326"):
                polygons = polygons.to_crs("EPSG:4326")
            geometry = coords.transform_geometries(polygons.geometry, source.crs, "wgs84")
            polygons = gpd.GeoDataFrame(polygons.drop(columns="geometry"), geometry=geometry.values, crs="EPSG:4326")
        elif polygons.crs is None:
            polygons = polygons.set_crs("EPSG:4326")
        polygons = polygons.to_crs("EPSG:4326")
        n = len(polygons)
        parts.append(gpd.GeoDataFrame({"label": [source.label or path.stem] * n, "source_file": [str(path)] * n},
                                      geometry=polygons.geometry.to_numpy(), crs="EPSG:4326"))
    if not parts:
        return gpd.GeoDataFrame({"label": [], "source_file": []}, geometry=[], crs="EPSG:4326")
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs="EPSG:4326")


def screen_candidates(
    candidates: gpd.GeoDataFrame,
    *,
    study_area=None,
    water: gpd.GeoDataFrame | None = None,
    exclusion_areas: gpd.GeoDataFrame | None = None,
    on_network: np.ndarray | None = None,
    max_access_m: float | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """
    Which candidate sites may be used, and why the others may not.

    Checks run in this order and the first that fails is the reason:
    outside the study area, in water, in an exclusion area, off the network.

    Parameters
    ----------
    candidates
        Candidate points with ``candidate_id`` and ``source`` (and optionally
        ``name``), in a projected CRS.
    study_area
        Polygon in the candidates' CRS, or None.
    water, exclusion_areas
        Polygons (any CRS; reprojected here), or None.
    on_network
        Boolean per candidate: it attaches to a walkable street within the
        access limit (from :func:`coverage.reach.snap_points`), or None.
    max_access_m
        The access limit (metres), for the reason's wording.

    Returns
    -------
    keep : numpy.ndarray
        Boolean per candidate.
    excluded : pandas.DataFrame
        One row per excluded candidate, columns :data:`EXCLUDED_COLUMNS`;
        ``lon``/``lat`` in WGS-84.
    """
    n = len(candidates)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    geometry = candidates.geometry.values
    x, y = shapely.get_x(geometry), shapely.get_y(geometry)

    def mark(hit: np.ndarray, why: str, what: np.ndarray | str | None) -> None:
        new = hit & (reason == None)
        reason[new] = why
        if what is not None:
            detail[new] = what[new] if isinstance(what, np.ndarray) else what

    if study_area is not None and n:
        mark(~shapely.contains_xy(study_area, x, y), REASON_OUTSIDE, None)
    for polygons, why, label_column in ((water, REASON_WATER, "name"), (exclusion_areas, REASON_EXCLUDED, "label")):
        if polygons is None or polygons.empty or not n:
            continue
        polygons = polygons.to_crs(candidates.crs)
        hit_point, hit_polygon = polygons.sindex.query(geometry, predicate="intersects")
        hit = np.zeros(n, dtype=bool)
        hit[hit_point] = True
        labels = np.full(n, None, dtype=object)
        names = polygons[label_column].to_numpy() if label_column in polygons else np.full(len(polygons), None)
        for point, polygon in zip(hit_point[::-1], hit_polygon[::-1]):  # the first polygon's name wins
            labels[point] = names[polygon] if isinstance(names[polygon], str) else None
        mark(hit, why, labels)
    if on_network is not None:
        limit = f"> {max_access_m:g} m" if max_access_m is not None else None
        mark(~np.asarray(on_network, dtype=bool), REASON_OFF_NETWORK, limit)

    keep = reason == None
    dropped = candidates[~keep]
    lonlat = dropped.to_crs("EPSG:4326").geometry if len(dropped) else dropped.geometry
    excluded = pd.DataFrame({
        "candidate_id": dropped["candidate_id"].to_numpy(),
        "source": dropped["source"].to_numpy(),
        "name": dropped["name"].to_numpy() if "name" in dropped else np.full(len(dropped), None),
        "reason": reason[~keep],
        "detail": detail[~keep],
        "lon": np.round(shapely.get_x(lonlat.values), 6) if len(dropped) else [],
        "lat": np.round(shapely.get_y(lonlat.values), 6) if len(dropped) else [],
    }, columns=EXCLUDED_COLUMNS)
    return np.asarray(keep, dtype=bool), excluded


def table_rejects_as_excluded(rejects: Sequence[dict]) -> pd.DataFrame:
    """
    Rows of a user candidate table that the reader could not use, in the excluded-candidates layout.

    Parameters
    ----------
    rejects
        Records with the fields of :data:`coverage.ingest.REJECT_COLUMNS`
        (one per problem; a row with two problems has two records).

    Returns
    -------
    pandas.DataFrame
        One row per rejected table row, columns :data:`EXCLUDED_COLUMNS`;
        ``detail`` names the file, row, column and problem.
    """
    by_row: dict[tuple[str, object], list[str]] = {}
    for record in rejects:
        key = (str(record.get("source_file", "")), record.get("source_row"))
        column = record.get("column")
        where = f"column {column}: " if column not in (None, "") else ""
        text = f"{where}{record.get('reason', '')}"
        if record.get("detail"):
            text += f" ({record['detail']})"
        by_row.setdefault(key, []).append(text)
    rows = [{"candidate_id": f"table:{row}", "source": "candidate table", "name": None, "reason": REASON_TABLE,
             "detail": f"{Path(file).name} row {row}: " + "; ".join(problems), "lon": None, "lat": None}
            for (file, row), problems in by_row.items()]
    return pd.DataFrame(rows, columns=EXCLUDED_COLUMNS)
