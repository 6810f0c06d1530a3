"""Region studies: the ``region:`` block of a study file, the areas it names and each area's cut inputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import yaml

from coverage import divisions, ingest
from coverage._errors import ConfigError
from coverage._io import atomic_path, file_sha256
from coverage.config import StudyConfig, UnitSource, load_study

#: levels an area may be evaluated at
AREA_LEVELS: tuple[str, ...] = ("county", "town")
#: fields of the ``region:`` block
REGION_FIELDS: tuple[str, ...] = ("areas", "buffer_m", "cross_border_facilities")
#: ways of naming the areas (``region.areas``)
AREA_FIELDS: tuple[str, ...] = ("units_level", "codes", "outline", "code_column", "name_column")
#: an area's record of its run, in its output folder
AREA_RECORD = "area_record.json"
#: the tables an area leaves for the combined outputs (internal column names), in its output folder
AREA_TARGETS = "_region/targets.csv"
AREA_COVERAGE = "_region/coverage.csv"
#: columns of the failure table
FAILURE_COLUMNS = ("code", "name", "stage", "message")
#: default network buffer around an area (metres): a 15-minute walk at 1.1 m/s is 990 m
DEFAULT_BUFFER_M = 2000.0


@dataclass(frozen=True)
class AreaSpec:
    """
    One area of a region run.

    Attributes
    ----------
    code
        12-digit division code (or the outline layer's own code).
    name
        Display name.
    level
        ``county`` or ``town`` (or ``area`` for an outline polygon of no known level).
    unit_codes
        Codes of the units that are the area's own (the area's unit and the units below it).
    outline_wkb
        The area's outline (WGS-84) as WKB: what its network is cut around.
    size_m2
        The outline's ground area (square metres): areas are scheduled largest first.
    """

    code: str
    name: str
    level: str
    unit_codes: tuple[str, ...]
    outline_wkb: bytes
    size_m2: float

    @property
    def outline(self):
        """The outline as a shapely geometry (WGS-84)."""
        return shapely.from_wkb(self.outline_wkb)


@dataclass(frozen=True)
class RegionConfig:
    """
    A region study: the region-wide inputs (as one :class:`StudyConfig`) and the areas to evaluate.

    Attributes
    ----------
    study
        The region-wide study (network extract, facility tables, rasters, census, units, parameters, targets).
    areas
        The areas, in the order the file names them.
    buffer_m
        Metres of network kept around each area (people near the border walk across it).
    cross_border_facilities
        Whether facilities outside an area but within ``buffer_m`` count for its reach.
    areas_source
        How the areas were named, for the run record.
    """

    study: StudyConfig
    areas: tuple[AreaSpec, ...]
    buffer_m: float = DEFAULT_BUFFER_M
    cross_border_facilities: bool = True
    areas_source: str = ""

    @property
    def output_dir(self) -> Path:
        """The region's output folder (the study's ``outputs.folder``)."""
        return self.study.output_dir

    def area_dir(self, code: str) -> Path:
        """The output folder of one area: ``<region>/areas/<code>``."""
        return self.output_dir / "areas" / code


def _where(path: Path) -> str:
    return f"{path}: region"


def _area_units_by_prefix(units: gpd.GeoDataFrame, code: str, level: str) -> gpd.GeoDataFrame:
    """The unit ``code`` and every unit below it (division codes by prefix)."""
    prefix = code[: divisions.LEVEL_DIGITS[level]]
    return units[units["code"].astype(str).str.startswith(prefix)]


def _ground_area_m2(geometry) -> float:
    series = gpd.GeoSeries([geometry], crs=4326)
    return float(series.to_crs(series.estimate_utm_crs()).area.iloc[0])


def _polygonal(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame[frame.geometry.notna() & frame.geom_type.isin(["Polygon", "MultiPolygon"])]


def _spec_from_units(units: gpd.GeoDataFrame, row, where: str) -> AreaSpec:
    code, level = str(row["code"]), str(row["level"])
    own = _area_units_by_prefix(units, code, level)
    polygons = _polygonal(own)
    if polygons.empty:
        raise ConfigError(
            f"{where}.areas: the area {code} ({row['name']}) has no polygon in the units file, so its network "
            "cannot be cut / 区域没有边界面\n  what to do / 处理办法: give unit polygons (GeoJSON/GPKG) or an outline "
            "layer (region.areas.outline) with the areas' polygons")
    top = polygons[polygons["level"] == level]
    outline = shapely.union_all(np.asarray((top if len(top) else polygons).geometry.values))
    return AreaSpec(code=code, name=str(row["name"]), level=level, unit_codes=tuple(own["code"].astype(str)),
                    outline_wkb=shapely.to_wkb(outline), size_m2=_ground_area_m2(outline))


def _areas_from_outline(spec: dict, units: gpd.GeoDataFrame, base: Path, where: str) -> tuple[AreaSpec, ...]:
    """Areas from an outline layer: one per polygon, its units by code prefix or by location."""
    path = Path(spec["outline"])
    path = path if path.is_absolute() else (base / path).resolve()
    if not path.exists():
        raise ConfigError(f"{where}.areas.outline: file not found: {path} / 区域边界文件不存在")
    code_column = str(spec.get("code_column", "code"))
    name_column = str(spec.get("name_column", "name"))
    layer = gpd.read_file(path)
    if layer.crs is not None and layer.crs.to_epsg() != 4326:
        layer = layer.to_crs(4326)
    for column in (code_column, name_column):
        if column not in layer.columns:
            raise ConfigError(f"{where}.areas: the outline layer {path} has no column '{column}' (columns: "
                              f"{', '.join(map(str, layer.columns))}); set region.areas.code_column / name_column "
                              "/ 边界图层缺少该列")
    areas = []
    points = units.geometry.representative_point() if len(units) else units.geometry
    for position, row in layer.reset_index(drop=True).iterrows():
        geometry = row.geometry
        if geometry is None or geometry.is_empty or geometry.geom_type not in ("Polygon", "MultiPolygon"):
            raise ConfigError(f"{where}.areas.outline: row {position + 2} of {path} has no polygon / 该行没有边界面")
        raw_code = row[code_column]
        code = divisions.normalise_code(raw_code)
        level = divisions.code_level(code) if code else None
        if code and level in AREA_LEVELS:
            own = _area_units_by_prefix(units, code, level)
        else:
            code, level = str(raw_code).strip(), "area"
            own = units[np.asarray(shapely.covers(geometry, np.asarray(points.values)), dtype=bool)] \
                if len(units) else units
        areas.append(AreaSpec(code=code, name=str(row[name_column]), level=level,
                              unit_codes=tuple(own["code"].astype(str)), outline_wkb=shapely.to_wkb(geometry),
                              size_m2=_ground_area_m2(geometry)))
    return tuple(areas)


def _read_region_block(path: Path) -> dict:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    block = raw.get("region") if isinstance(raw, dict) else None
    if not isinstance(block, dict):
        raise ConfigError(f"{path}: a region study needs a region: block, e.g. region: {{areas: {{units_level: town}}, "
                          "buffer_m: 2000, cross_border_facilities: true}} / 区域研究需要 region: 配置节")
    return block


def area_specs(block: dict, units: gpd.GeoDataFrame | None, base: Path, where: str) -> tuple[tuple[AreaSpec, ...], str]:
    """
    The areas a ``region.areas`` block names.

    Parameters
    ----------
    block
        ``{units_level: county | town}``, ``{codes: [...]}`` or
        ``{outline: path, code_column: ..., name_column: ...}``.
    units
        The region's units (:func:`coverage.ingest.read_units`).
    base
        Folder relative paths are read from.
    where
        The study file, for messages.

    Returns
    -------
    tuple
        The areas, and a description of how they were named.
    """
    if not isinstance(block, dict):
        raise ConfigError(f"{where}.areas: expected a mapping such as {{units_level: town}}, {{codes: [...]}} or "
                          f"{{outline: counties.geojson, code_column: code}}, got {block!r}")
    unknown = sorted(set(map(str, block)) - set(AREA_FIELDS))
    if unknown:
        raise ConfigError(f"{where}.areas: unknown field(s) {', '.join(unknown)}; known: {', '.join(AREA_FIELDS)} "
                          "/ 未知字段，请检查拼写")
    given = [key for key in ("units_level", "codes", "outline") if key in block]
    if len(given) != 1:
        raise ConfigError(f"{where}.areas: give exactly one of units_level, codes, outline (got "
                          f"{', '.join(given) or 'none'}) / 只能选择一种区域划分方式")
    if units is None:
        raise ConfigError(f"{where}: a region study needs inputs.units (the units of every area) / 需要行政单位文件")
    how = given[0]
    if how == "outline":
        areas = _areas_from_outline(block, units, base, where)
        description = f"outline {block['outline']}"
    elif how == "units_level":
        level = str(block["units_level"]).strip()
        if level not in AREA_LEVELS:
            raise ConfigError(f"{where}.areas.units_level must be one of {', '.join(AREA_LEVELS)}, got {level!r} "
                              "/ 区域级别应为 county 或 town")
        rows = units[units["level"] == level]
        if rows.empty:
            raise ConfigError(f"{where}.areas.units_level: the units file has no unit of level {level} "
                              f"/ 行政单位文件中没有该级别的单位")
        areas = tuple(_spec_from_units(units, row, where) for _, row in rows.iterrows())
        description = f"every {level} of the units file"
    else:
        codes = block["codes"]
        codes = [codes] if isinstance(codes, (str, int)) else list(codes or [])
        if not codes:
            raise ConfigError(f"{where}.areas.codes: give at least one division code / 至少填写一个区划代码")
        by_code = units.set_index(units["code"].astype(str))
        areas = []
        for i, raw_code in enumerate(codes):
            code = divisions.normalise_code(raw_code)
            if code is None or code not in by_code.index:
                raise ConfigError(f"{where}.areas.codes[{i}]: {raw_code!r} is not the code of a unit in "
                                  f"inputs.units / 区划代码不在行政单位文件中")
            row = by_code.loc[code]
            if str(row["level"]) not in AREA_LEVELS:
                raise ConfigError(f"{where}.areas.codes[{i}]: {raw_code} is a {row['level']}; areas are counties "
                                  "or towns / 区域应为县或乡镇")
            areas.append(_spec_from_units(units, row, where))
        areas = tuple(areas)
        description = f"codes {', '.join(a.code for a in areas)}"
    codes_seen = [a.code for a in areas]
    duplicated = sorted({c for c in codes_seen if codes_seen.count(c) > 1})
    if duplicated:
        raise ConfigError(f"{where}.areas: the area code(s) {', '.join(duplicated)} appear twice / 区域代码重复")
    return areas, description


def load_region(path: str | Path, *, output_root: str | Path | None = None) -> RegionConfig:
    """
    Read a region study file: the usual study sections plus a ``region:`` block.

    Parameters
    ----------
    path
        The YAML file.
    output_root
        As in :func:`coverage.config.load_study` (``--out``).

    Returns
    -------
    RegionConfig

    Raises
    ------
    ConfigError
        The block is missing or malformed, or names areas the units do not have.
    """
    path = Path(path).resolve()
    study = load_study(path, output_root=output_root)
    where = _where(path)
    block = _read_region_block(path)
    unknown = sorted(set(map(str, block)) - set(REGION_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(REGION_FIELDS)} "
                          "/ 未知字段，请检查拼写")
    buffer = block.get("buffer_m", DEFAULT_BUFFER_M)
    try:
        buffer_m = float(buffer)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}.buffer_m: expected metres (a number such as 2000), got {buffer!r}") from None
    if not buffer_m >= 0 or not np.isfinite(buffer_m):
        raise ConfigError(f"{where}.buffer_m: must be 0 or more metres, got {buffer!r}")
    cross = block.get("cross_border_facilities", True)
    if not isinstance(cross, bool):
        raise ConfigError(f"{where}.cross_border_facilities: expected true or false, got {cross!r} "
                          "/ 请填写 true 或 false")
    units = ingest.read_units(study.units.path, crs=study.units.crs, layer=study.units.layer) if study.units else None
    areas, description = area_specs(block.get("areas", {"units_level": "county"}), units, path.parent, where)
    return RegionConfig(study=study, areas=areas, buffer_m=buffer_m, cross_border_facilities=cross,
                        areas_source=description)


def region_input_files(study: StudyConfig) -> list[Path]:
    """Every region-wide input file of the study (network, facility tables, kinds, units, rasters, census, targets)."""
    files = [study.network, *(s.path for s in study.facilities), *(s.kinds for s in study.facilities if s.kinds)]
    if study.units is not None:
        files.append(study.units.path)
    files.extend(study.population.rasters)
    if study.population.census is not None:
        files.append(study.population.census)
    files.extend(study.target_files)
    files.extend(e.path for e in study.exclusions)
    return sorted(set(files), key=str)


def region_input_checksums(study: StudyConfig) -> dict[str, str]:
    """sha256 of every region-wide input file (read once per run, in the process that schedules)."""
    return {str(p): file_sha256(p) for p in region_input_files(study)}


def area_key(region: RegionConfig, area: AreaSpec, checksums: dict[str, str], *, package_version: str,
             lang: str, make_map: bool) -> str:
    """
    sha256 of everything an area's outputs depend on.

    The region-wide inputs' checksums, the area (its code, units and outline),
    the buffer and cross-border option, the study's parameters and targets,
    the output language and map choice, and the package version. An area's
    cut inputs are made from exactly these, so equal keys mean equal outputs.
    """
    study = region.study
    record = {
        "inputs": checksums,
        "area": {"code": area.code, "units": list(area.unit_codes),
                 "outline": hashlib.sha256(area.outline_wkb).hexdigest()},
        "buffer_m": region.buffer_m,
        "cross_border_facilities": region.cross_border_facilities,
        "parameters": dataclasses.asdict(study.parameters),
        "population": {k: v for k, v in dataclasses.asdict(study.population).items() if k != "rasters"},
        "facilities": [{"crs": s.crs, "sheet": s.sheet, "encoding": s.encoding, "columns": s.columns}
                       for s in study.facilities],
        "units_crs": study.units.crs if study.units else None,
        "targets": list(study.target_sets),
        "title": study.title, "synthetic": study.synthetic, "basemap": study.basemap,
        "lang": lang, "make_map": make_map, "version": package_version,
    }
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- cutting an area's inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OsmExtract:
    """
    An OSM file held in memory, to cut many areas from one read.

    Nodes are those the ways use (sorted ids, WGS-84 lon/lat, tags of tagged
    nodes); ways are every way of the file (streets, buildings, water …) as
    concatenated node references with offsets; relations keep their members
    as written.
    """

    node_id: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    node_tags: dict
    way_id: np.ndarray
    way_offsets: np.ndarray
    way_refs: np.ndarray
    way_tags: tuple
    relations: tuple
    path: str = ""


def read_osm_extract(path: str | Path) -> OsmExtract:
    """
    Read every way of an OSM file (with its nodes' locations) and its relations with pyosmium.

    Parameters
    ----------
    path
        .osm, .osm.pbf or .osm.bz2.

    Returns
    -------
    OsmExtract
    """
    import osmium

    node_lonlat: dict[int, tuple[float, float]] = {}
    node_tags: dict[int, dict] = {}
    way_ids, offsets, refs, way_tags, relations = [], [0], [], [], []
    for item in osmium.FileProcessor(str(path)).with_locations():
        if item.is_node():
            if len(item.tags):
                node_tags[item.id] = dict(item.tags)
            continue
        if item.is_way():
            ids = []
            for ref in item.nodes:
                if ref.location.valid():
                    node_lonlat[ref.ref] = (ref.location.lon, ref.location.lat)
                    ids.append(ref.ref)
            way_ids.append(item.id)
            refs.extend(ids)
            offsets.append(len(refs))
            way_tags.append(dict(item.tags))
        elif item.is_relation():
            members = tuple((m.type, m.ref, m.role) for m in item.members)
            relations.append((item.id, members, dict(item.tags)))
    ids = np.fromiter(node_lonlat, dtype=np.int64, count=len(node_lonlat))
    order = np.argsort(ids)
    lonlat = np.array([node_lonlat[i] for i in ids[order]], dtype=float).reshape(-1, 2)
    return OsmExtract(node_id=ids[order], node_lon=lonlat[:, 0], node_lat=lonlat[:, 1],
                      node_tags={i: t for i, t in node_tags.items() if i in node_lonlat},
                      way_id=np.asarray(way_ids, dtype=np.int64), way_offsets=np.asarray(offsets, dtype=np.int64),
                      way_refs=np.asarray(refs, dtype=np.int64), way_tags=tuple(way_tags),
                      relations=tuple(relations), path=str(path))


def buffered_outline(outline, buffer_m: float):
    """The outline grown by ``buffer_m`` ground metres (in its local UTM zone), WGS-84."""
    if buffer_m <= 0:
        return outline
    series = gpd.GeoSeries([outline], crs=4326)
    utm = series.estimate_utm_crs()
    return series.to_crs(utm).buffer(buffer_m).to_crs(4326).iloc[0]


def cut_osm(extract: OsmExtract, polygon, target: str | Path) -> dict[str, int]:
    """
    Write the ways of ``extract`` that have a node inside ``polygon`` (complete, with all their nodes) as OSM XML.

    Relations with a kept way among their members are kept (members as
    written, as OSM extracts do). Entities are written sorted by id, so the
    same cut gives the same bytes (the area's checksum).

    Parameters
    ----------
    extract
        :func:`read_osm_extract`.
    polygon
        The area grown by its buffer (WGS-84).
    target
        The ``.osm`` file to write (atomically).

    Returns
    -------
    dict
        Counts of nodes, ways and relations written.
    """
    import osmium

    inside = shapely.contains_xy(polygon, extract.node_lon, extract.node_lat)
    position = np.searchsorted(extract.node_id, extract.way_refs)
    ref_inside = inside[position].astype(np.int64)
    counts = np.diff(extract.way_offsets)
    # ways with no node (all outside the file) get no reduceat value of their own
    starts = extract.way_offsets[:-1]
    sums = np.add.reduceat(np.append(ref_inside, 0), np.minimum(starts, len(ref_inside))) if len(starts) else starts
    keep_way = (counts > 0) & (sums > 0)
    kept_positions = np.flatnonzero(keep_way)
    needed = np.zeros(len(extract.node_id), dtype=bool)
    for i in kept_positions:
        needed[position[extract.way_offsets[i]:extract.way_offsets[i + 1]]] = True
    kept_way_ids = set(extract.way_id[kept_positions].tolist())
    target = Path(target)
    n_relations = 0
    with atomic_path(target) as tmp:
        writer = osmium.SimpleWriter(str(tmp))
        try:
            for j in np.flatnonzero(needed):
                node_id = int(extract.node_id[j])
                writer.add_node(osmium.osm.mutable.Node(
                    id=node_id, version=1, location=(float(extract.node_lon[j]), float(extract.node_lat[j])),
                    tags=extract.node_tags.get(node_id, {})))
            for i in kept_positions:
                refs = extract.way_refs[extract.way_offsets[i]:extract.way_offsets[i + 1]]
                writer.add_way(osmium.osm.mutable.Way(id=int(extract.way_id[i]), version=1,
                                                      nodes=[int(r) for r in refs], tags=extract.way_tags[i]))
            for relation_id, members, tags in sorted(extract.relations, key=lambda r: r[0]):
                if any(kind == "w" and ref in kept_way_ids for kind, ref, _ in members):
                    writer.add_relation(osmium.osm.mutable.Relation(id=int(relation_id), version=1,
                                                                    members=list(members), tags=tags))
                    n_relations += 1
        finally:
            writer.close()
    return {"nodes": int(needed.sum()), "ways": int(len(kept_positions)), "relations": n_relations}


def write_area_units(units: gpd.GeoDataFrame, area: AreaSpec, target: str | Path) -> Path:
    """Write the area's own units (WGS-84, the columns :func:`coverage.ingest.read_units` reads) as GeoJSON."""
    own = units[units["code"].astype(str).isin(set(area.unit_codes))]
    columns = [c for c in ("code", "name", "level", "parent_code", "ur_code") if c in own.columns]
    frame = gpd.GeoDataFrame(own[columns].astype({"ur_code": "Int64"}) if "ur_code" in columns else own[columns],
                             geometry=own.geometry.values, crs=4326)
    target = Path(target)
    with atomic_path(target) as tmp:
        frame.to_file(tmp, driver="GeoJSON", engine="pyogrio")
    return target


def area_study(region: RegionConfig, area: AreaSpec, network: Path, units: Path) -> StudyConfig:
    """
    The study of one area, in memory: the region's study with the area's cut network and units.

    Facilities and rasters stay the region's files: the pipeline keeps the
    facilities inside the area's units (and, with cross-border facilities,
    within the buffer around them) and reads the raster window around them.
    """
    study = region.study
    params = study.parameters
    if params.crs_check == "error":
        # the coordinate-system check compares points with streets; on one town's few streets it can
        # misjudge (a street's 60 homes fit a BD-09 shift by chance): in an area it notes, not stops
        params = dataclasses.replace(params, crs_check="warn")
    return dataclasses.replace(
        study, name=f"{study.name}_{area.code}", title=f"{study.title} — {area.name}", parameters=params,
        network=Path(network), units=UnitSource(path=Path(units), crs="wgs84"),
        output_dir=region.area_dir(area.code),
        facility_area_buffer_m=region.buffer_m if region.cross_border_facilities else 0.0,
    )


def area_record_inputs(paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Path and sha256 of an area's cut inputs, for its record."""
    return {name: {"path": str(p), "sha256": file_sha256(p)} for name, p in paths.items()}
