"""One facility row checked: name, kinds, capacities, coordinates, study area and duplicates → flags or reject reasons."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np
import shapely

from coverage import coords, timeline
from coverage.kind_matching import _KindPatterns, _kinds_in_text, _kinds_of_type
from coverage.poi import _SUB_POI_RE
from coverage.tables import _bilingual, _is_empty, _nfkc, _normalise_crs, _parse_degrees


#: name cells that mark a total row (合计/小计/总计), compared without spaces
_TOTAL_ROW_RE = re.compile(r"^(合计|小计|总计|共计|总数|累计|total|subtotal|sum)[:：]?$", re.I)
_CAPACITY_FIELDS: Mapping[str, str] = MappingProxyType({
    "beds": "beds", "nursing_beds": "nursing_beds", "floor_area": "floor_area_m2", "caregivers": "caregivers",
})

_NUMBER_WITH_UNIT_RE = re.compile(
    r"^(?:约|近|共|计)?([-+]?\d+(?:\.\d+)?)(?:张|床|个|人|名|平方米|平米|平|m2|m\^2|sqm)?$", re.IGNORECASE
)


# ----------------------------------------------------------------------------- parsing numbers


def _parse_capacity(text: str) -> tuple[float, bool]:
    """
    A capacity number (beds, m², persons) from text.

    Returns
    -------
    tuple
        (value, readable): NaN and True when the cell is empty or a placeholder
        such as "无"; NaN and False when the text holds no single number.
    """
    if _is_empty(text):
        return math.nan, True
    compact = re.sub(r"[\s,]+", "", _nfkc(text))
    match = _NUMBER_WITH_UNIT_RE.match(compact)
    if match is None:
        return math.nan, False
    return float(match.group(1)), True


def _split_lonlat(text: str) -> tuple[str, str] | None:
    """Split a combined "lon,lat" cell into its two parts, or None."""
    parts = [p for p in re.split(r"[,;，；\s]+", _nfkc(text)) if p]
    if len(parts) != 2:
        return None
    return parts[0], parts[1]


# ----------------------------------------------------------------------------- row checks


@dataclass
class _RowResult:
    """What the checks found for one data row."""

    position: int
    source_row: int
    values: dict[str, str]
    raw: str
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (reason, column, detail)
    flags: list[str] = field(default_factory=list)
    kinds: tuple[str, ...] = ()
    lon: float = math.nan
    lat: float = math.nan
    coordinate_column: str = ""
    capacities: dict[str, float] = field(default_factory=dict)
    crs: str | None = None
    opened: float = math.nan  # opening year (coverage.timeline), NaN = not given
    closed: float = math.nan  # closing year, NaN = not given
    status: str = ""  # coverage.timeline status code, "" = not given


def _raw_text(headers: Sequence[str], cells: Sequence[str]) -> str:
    pairs = []
    for i, cell in enumerate(cells):
        if cell:
            header = headers[i] if i < len(headers) and headers[i] else f"col{i + 1}"
            pairs.append(f"{header}={cell}")
    return " | ".join(pairs)


def _coordinate_problem(lon_text: str, lat_text: str) -> tuple[str, str, float, float]:
    """
    Parse a lon/lat pair; return (reason, detail, lon, lat), reason '' when usable.

    ``swapped_lat_lon`` is returned as reason when the pair only lies in China swapped.
    """
    if _is_empty(lon_text) or _is_empty(lat_text):
        return "missing_coordinates", _bilingual("经度或纬度为空", "longitude or latitude is empty"), math.nan, math.nan
    lon, lat = _parse_degrees(lon_text), _parse_degrees(lat_text)
    if lon is None or lat is None:
        bad = lon_text if lon is None else lat_text
        return ("non_numeric_coordinates",
                _bilingual(f"'{bad}' 不是数字", f"'{bad}' is not a number of degrees"), math.nan, math.nan)
    if bool(coords.in_china(lon, lat)):
        return "", "", lon, lat
    if bool(coords.in_china(lat, lon)):
        return "swapped_lat_lon", "", lat, lon
    if max(abs(lon), abs(lat)) > 180:
        detail = _bilingual(
            f"({lon}, {lat}) 像是投影坐标（米），请先换算为经纬度",
            f"({lon}, {lat}) looks like projected metres; convert to longitude/latitude degrees first",
        )
    else:
        detail = _bilingual(f"({lon}, {lat}) 不在中国范围内（东经72–138°、北纬0.8–56°）",
                            f"({lon}, {lat}) is outside China (72–138°E, 0.8–56°N)")
    return "out_of_china", detail, math.nan, math.nan


def _check_row(position: int, source_row: int, cells: list[str], headers: list[str],
               columns: Mapping[str, int], kind_patterns: _KindPatterns | None,
               geometry: Any | None) -> _RowResult:
    """
    Run the per-row checks (everything except study area and duplicates).

    ``kind_patterns`` None means a plain point table: name and kind are not required.
    """
    values = {name: (cells[i] if i < len(cells) else "") for name, i in columns.items()}
    result = _RowResult(position, source_row, values, _raw_text(headers, cells))

    def header_of(name: str) -> str:
        return headers[columns[name]] if name in columns else name

    name = values.get("name", "")
    type_text = values.get("type", "")
    first_cell = next((c for c in cells if c.strip()), "")
    if any(_TOTAL_ROW_RE.match(re.sub(r"\s+", "", _nfkc(text))) for text in (name, values.get("seq", ""), first_cell)):
        result.problems.append(("total_row", header_of("name"), _bilingual(
            "合计/小计行，已跳过（不是一处设施）", "a total row, skipped (not a facility)")))
        return result
    if kind_patterns is None:
        pass
    elif _is_empty(name):
        detail = _bilingual("名称为空", "name is empty") if "name" in columns else _bilingual(
            "表中没有名称列", "the file has no name column")
        result.problems.append(("missing_name", header_of("name"), detail))

    if kind_patterns is None:
        pass
    elif not _is_empty(type_text) or _SUB_POI_RE.search(_nfkc(name)):
        result.kinds, how = _kinds_of_type(type_text, kind_patterns) if not _is_empty(type_text) else ((), "")
        if how == "category":
            # a map service's category (养老院 for every kind of elderly-care POI) says less than the name
            from_name = _kinds_in_text(name, kind_patterns) if not _is_empty(name) else ()
            if from_name:
                result.kinds = from_name
                result.flags.append("kind_from_name_generic_type")
        if how == "not_facility" or _SUB_POI_RE.search(_nfkc(name)):
            result.kinds = ()
            result.problems.append(("not_a_facility", header_of("type") if how == "not_facility" else header_of("name"),
                                    _bilingual(f"'{name}'（{type_text}）是设施的附属点（门、停车场、出入口等），不是设施",
                                               f"'{name}' ({type_text}) is a sub-point of a facility (gate, car park, "
                                               "entrance …), not a facility")))
        elif not result.kinds:
            from_name = _kinds_in_text(name, kind_patterns) if not _is_empty(name) else ()
            if from_name:
                result.kinds = from_name
                result.flags.append(f"kind_from_name_{how}_type")
            elif how == "generic":
                result.problems.append((
                    "unknown_kind", header_of("type"),
                    _bilingual(f"类型 '{type_text}' 过于笼统，名称 '{name}' 中也没有可识别的关键词",
                               f"type '{type_text}' is too general and the name '{name}' has no known keyword")
                    + " (add the name's word to a kinds file: inputs.facilities[].kinds or --kinds "
                      "/ 可在类型对照文件中补充)",
                ))
            else:
                result.problems.append((
                    "unknown_kind", header_of("type"),
                    _bilingual(f"类型 '{type_text}' 不在类型对照表中，名称 '{name}' 也无法判断类别",
                               f"type '{type_text}' is not in the kind registry and the name '{name}' "
                               "does not say the kind either")
                    + " (add it to a kinds file: inputs.facilities[].kinds or --kinds / 可在类型对照文件中补充)",
                ))
    else:
        result.kinds = _kinds_in_text(name, kind_patterns) if not _is_empty(name) else ()
        if result.kinds:
            result.flags.append("kind_from_name")
        elif not _is_empty(name):
            result.problems.append((
                "unknown_kind", header_of("type") if "type" in columns else header_of("name"),
                _bilingual(f"类型为空，名称 '{name}' 中也没有可识别的关键词",
                           f"type is empty and the name '{name}' has no known keyword"),
            ))

    for source_field, output_field in _CAPACITY_FIELDS.items():
        value, readable = _parse_capacity(values.get(source_field, ""))
        if not readable:
            result.flags.append(f"unreadable_{output_field}")
        elif value < 0:
            result.problems.append((
                "negative_capacity", header_of(source_field),
                _bilingual(f"数值为负：{values[source_field]}", f"negative value {values[source_field]}"),
            ))
        result.capacities[output_field] = value
    _read_time_fields(result, values)

    if geometry is not None and not (isinstance(geometry, float) or geometry.is_empty):
        point = geometry
        if geometry.geom_type != "Point":
            point = geometry.representative_point()
            result.flags.append("point_from_polygon")
        lon_text, lat_text, lon_col, lat_col = repr(point.x), repr(point.y), "geometry", "geometry"
    elif "lonlat" in columns and not ("lon" in columns and "lat" in columns):
        lon_col = lat_col = header_of("lonlat")
        pair = _split_lonlat(values.get("lonlat", ""))
        if pair is None and not _is_empty(values.get("lonlat", "")):
            result.problems.append(("non_numeric_coordinates", lon_col, _bilingual(
                f"'{values['lonlat']}' 不是“经度,纬度”", f"'{values['lonlat']}' is not 'longitude,latitude'")))
            return result
        lon_text, lat_text = pair if pair is not None else ("", "")
    else:
        lon_text, lat_text = values.get("lon", ""), values.get("lat", "")
        lon_col, lat_col = header_of("lon"), header_of("lat")
        # a "lng,lat" pair pasted into one cell (the 经度 cell, the 纬度 cell, or both)
        for text in (lon_text, lat_text):
            pair = _split_lonlat(text) if "," in _nfkc(text) or "，" in text else None
            if pair is not None and (_is_empty(lat_text) or _is_empty(lon_text) or lon_text == lat_text):
                lon_text, lat_text = pair
                result.flags.append("lonlat_in_one_cell")
                break
    if "crs" in columns and not _is_empty(values.get("crs", "")):
        try:
            result.crs = _normalise_crs(_nfkc(values["crs"]))
        except ValueError:
            result.flags.append("unreadable_crs")
    reason, detail, lon, lat = _coordinate_problem(lon_text, lat_text)
    result.coordinate_column = lon_col if lon_col == lat_col else f"{lon_col}/{lat_col}"
    if reason == "swapped_lat_lon":
        result.flags.append("swapped_lat_lon")
    elif reason:
        column = lon_col if (reason != "missing_coordinates" or _is_empty(lon_text)) else lat_col
        if reason == "non_numeric_coordinates" and _parse_degrees(lon_text) is not None:
            column = lat_col
        result.problems.append((reason, column, detail))
    result.lon, result.lat = lon, lat
    if kind_patterns is not None and result.kinds and result.problems and \
            all(p[0] == "missing_coordinates" for p in result.problems) and _has_place_text(values):
        # no coordinates, but a code, town/village or address that may name its unit: kept for unit
        # presence (the village has a 互助幸福院), never for walking reach
        result.problems = []
        result.lon = result.lat = math.nan
        result.flags.append("presence_only")
    return result


def _read_time_fields(result: _RowResult, values: Mapping[str, str]) -> None:
    """Opening / closing year and status of a row (:mod:`coverage.timeline`); unreadable cells are flagged, never rejected."""
    for name in ("opened", "closed"):
        year, readable = timeline.parse_year(values.get(name, ""))
        if not readable:
            result.flags.append(f"unreadable_{name}")
        setattr(result, name, year)
    status, readable = timeline.parse_status(values.get("status", ""))
    if not readable:
        result.flags.append("unreadable_status")
    if status == timeline.STATUS_UNKNOWN and not math.isnan(result.closed):
        status = timeline.STATUS_CLOSED  # a closing year says it closed (or will)
    result.status = status


def _has_place_text(values: Mapping[str, str]) -> bool:
    """Whether a row names a place it could be assigned to (code, town, village, address or a place in its name)."""
    if any(not _is_empty(values.get(key, "")) for key in ("code", "town", "village", "address")):
        return True
    return bool(re.search(r"(村|社区|嘎查|镇|乡|街道|苏木)", _nfkc(values.get("name", ""))))


def _study_area_union(study_area: Any) -> Any:
    series = study_area.geometry if isinstance(study_area, gpd.GeoDataFrame) else study_area
    if not isinstance(series, gpd.GeoSeries):
        series = gpd.GeoSeries([series] if not isinstance(series, (list, tuple)) else list(series), crs=4326)
    if series.crs is not None and series.crs.to_epsg() != 4326:
        series = series.to_crs(4326)
    return shapely.union_all(np.asarray(series.values))


def _check_study_area(results: list[_RowResult], study_area: Any, crs: str) -> None:
    """Reject rows outside the study area (WGS-84), comparing after converting from ``crs``."""
    candidates = [r for r in results if not r.problems and not math.isnan(r.lon)]
    if not candidates:
        return
    area = _study_area_union(study_area)
    # the table's coordinates may be GCJ-02/BD-09: a 300–600 m offset would misplace edge rows
    lon, lat = coords.to_wgs84(np.array([r.lon for r in candidates]), np.array([r.lat for r in candidates]), crs)
    points = shapely.points(lon, lat)
    inside = shapely.covers(area, points)
    if inside.all():
        return
    centre = area.centroid if not area.is_empty else points[0]
    utm = coords.utm_crs_for(centre.x, centre.y)
    area_m = gpd.GeoSeries([area], crs=4326).to_crs(utm).iloc[0]
    points_m = gpd.GeoSeries(points, crs=4326).to_crs(utm).values
    for result, ok, point_m in zip(candidates, inside, points_m):
        if not ok:
            distance = float(area_m.distance(point_m))
            result.problems.append(("outside_study_area", result.coordinate_column, _bilingual(
                f"距研究区 {distance:.0f} 米", f"{distance:.0f} m outside the study area")))


def _check_duplicates(results: list[_RowResult], rows: list[list[str]]) -> None:
    """
    Mark exact duplicates (all cells equal: a row pasted twice).

    Near duplicates (the same facility a few metres apart, or listed in two
    files) are not rejected here: :func:`coverage.sites.merge_sites` merges them
    into one site and lists them in the 合并记录 table.
    """
    first_seen: dict[tuple[str, ...], int] = {}
    for result in results:
        cells = rows[result.position]
        key = tuple(_nfkc(c) for c in cells)
        while key and key[-1] == "":
            key = key[:-1]
        if key in first_seen:
            result.problems.append(("duplicate", "", _bilingual(
                f"与第 {first_seen[key]} 行完全相同", f"same values as row {first_seen[key]}")))
        else:
            first_seen[key] = result.source_row
