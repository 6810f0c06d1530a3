"""Read facility lists (registries, bureau lists, POI exports) into checked EPSG:4326 records, with a reject list."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import coords
from coverage._errors import InputDataError
from coverage._io import atomic_path
# units live in coverage.admin; their names stay reachable here for existing callers
from coverage.admin import UNIT_COLUMNS, assign_facilities_to_units, read_units  # noqa: F401
from coverage.config import KINDS
# the row checks, kind matching and POI recognition live in their own modules (read_facilities drives them)
from coverage.facility_rows import _check_duplicates, _check_row, _check_study_area, _RowResult
from coverage.kind_matching import _KindPatterns, _load_kind_patterns, has_kind, match_kinds
from coverage.poi import _poi_source
from coverage.tables import (
    _Table, _alias_index, _bilingual, _file_error, _has_coordinates, _load_facility_tables, _map_columns,
    _nfkc, _normalise_crs, _text_or_none,
)

__all__ = [
    "FACILITY_COLUMNS",
    "REJECT_COLUMNS",
    "UNIT_COLUMNS",
    "REJECT_REASONS",
    "FLAG_CODES",
    "read_facilities",
    "read_point_table",
    "has_kind",
    "match_kinds",
    "write_rejects",
    "read_units",
    "assign_facilities_to_units",
    "split_presence_only",
]

#: columns of the facilities GeoDataFrame, in order (see docs/architecture.md)
FACILITY_COLUMNS: tuple[str, ...] = (
    "facility_id", "name", "kinds", "type_raw", "beds", "nursing_beds", "floor_area_m2", "caregivers",
    "address", "town_name", "village_name", "unit_code", "source_file", "source_row", "flags",
    "opened", "closed", "status", "geometry",
)
#: columns of the rejects DataFrame
REJECT_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "column", "reason", "detail", "raw")


#: reject reason code → (Chinese, English) explanation
REJECT_REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "missing_name": ("名称为空", "name is empty"),
    "missing_coordinates": ("缺少经度或纬度", "longitude or latitude is empty"),
    "non_numeric_coordinates": ("经纬度不是数字", "longitude/latitude is not a number"),
    "out_of_china": ("坐标不在中国范围内", "coordinates fall outside China"),
    "outside_study_area": ("位于研究区范围外", "outside the study area"),
    "duplicate": ("与前面某行完全重复", "exact duplicate of an earlier row"),
    "total_row": ("合计/小计行，不是设施", "a total or subtotal row, not a facility"),
    "not_a_facility": ("POI 为设施的附属点（门、停车场、出入口），不是设施",
                       "a sub-point of a facility (gate, car park, entrance), not a facility"),
    "no_location": ("无坐标，且无法按区划代码、乡镇村名称或地址确定所属村社区",
                    "no coordinates, and no unit could be found from a code, town/village names or the address"),
    "unknown_kind": ("无法识别设施类型", "facility type not recognised"),
    "negative_capacity": ("床位、面积或护理员人数为负数", "beds, floor area or caregivers below zero"),
})

#: fix / inference flag code → (Chinese, English) explanation; ``unreadable_<field>`` also occurs
FLAG_CODES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "swapped_lat_lon": ("经纬度填反，已对调", "longitude and latitude were swapped and have been swapped back"),
    "kind_from_name": ("类型为空，按名称中的关键词判断类别", "type was empty; kind taken from keywords in the name"),
    "kind_from_name_generic_type": ("类型过于笼统（或为POI分类），按名称判断类别",
                                    "type was generic (or a POI category); kind taken from the name"),
    "kind_from_name_unknown_type": ("类型不在对照表中，按名称判断类别",
                                    "type not in the kind registry; kind taken from the name"),
    "point_from_polygon": ("几何为面，取面内代表点", "geometry was a polygon; a point inside it is used"),
    "unreadable_capacity": ("容量数值无法识别，按未填处理", "a capacity value could not be read and is treated as not given"),
    "nearest_village_point": ("按同一乡镇内最近的村点归属", "assigned to the nearest village point in the same town"),
    "presence_only": ("无坐标，仅按所属村社区计入“有无设施”，不计步行覆盖",
                      "no coordinates: counts for unit presence only, not for walking reach"),
    "lonlat_in_one_cell": ("经纬度写在同一单元格，已拆分", "longitude and latitude were in one cell and were split"),
    "town_from_sheet": ("按工作表名确定所属乡镇", "town taken from the sheet name"),
    "crs_from_column": ("按本行“坐标系”列换算", "converted with the coordinate system given in the row"),
    "unreadable_crs": ("“坐标系”列无法识别，按文件坐标系处理", "the row's coordinate system could not be read; "
                       "the file's is used"),
    "geocoder_fallback": ("坐标疑为地理编码失败的默认点，不计步行覆盖",
                          "coordinates look like a geocoder fallback point; not used for walking reach"),
    "unreadable_opened": ("建成/开业年份无法识别，按未填处理（各年均计入）",
                          "the opening year could not be read and is treated as not given (open in every year)"),
    "unreadable_closed": ("停业年份无法识别，按未填处理", "the closing year could not be read and is treated as not given"),
    "unreadable_status": ("状态无法识别，按已建成处理", "the status could not be read and is taken as open"),
})

#: facilities of the same kind closer than this (metres) with similar names are near duplicates
NEAR_DUPLICATE_DISTANCE_M = 30.0
#: difflib similarity ratio from which two names count as similar
NEAR_DUPLICATE_NAME_RATIO = 0.8


# canonical facility field → header aliases (Chinese and English). Earlier aliases win when two
# columns map to the same field. Matching ignores case, spaces, '_', '-', full/half width, and a
# trailing unit in brackets ("床位数（张）" matches "床位数").
_FACILITY_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "name": ("名称", "机构名称", "设施名称", "服务设施名称", "站点名称", "单位名称", "养老机构名称", "名字", "poi名称",
             "name", "facility_name", "title"),
    "type": ("类型", "设施类型", "机构类型", "服务设施类型", "类别", "设施类别", "机构类别", "服务类型", "分类",
             "poi类型", "type", "facility_type", "kind", "kinds", "category", "tag", "detail_info.tag"),
    "typecode": ("typecode", "类型编码", "分类编码", "分类代码", "type_code"),
    "lon": ("经度", "lng", "lon", "long", "longitude", "x", "location.lng", "location.lon", "gcj02lng", "gcj02经度",
            "bd09lng", "wgs84lng", "gpslng"),
    "lat": ("纬度", "lat", "latitude", "y", "location.lat", "gcj02lat", "gcj02纬度", "bd09lat", "wgs84lat", "gpslat"),
    "lonlat": ("经纬度", "坐标", "经纬度坐标", "lnglat", "lonlat", "location", "coordinates", "经纬度(经度,纬度)"),
    "crs": ("坐标系", "坐标系统", "坐标类型", "crs", "coord_type", "coordtype"),
    "address": ("地址", "详细地址", "机构地址", "地点", "服务地址", "address"),
    "province": ("省", "省份", "所属省", "pname", "province", "ad_info.province"),
    "city": ("市", "城市", "所属市", "地市", "cityname", "city", "ad_info.city"),
    "county": ("区县", "县区", "所属区县", "县(区)", "区(县)", "县(市、区)", "县(市区)", "adname", "district", "area",
               "ad_info.district"),
    "beds": ("床位数", "床位", "床位数量", "总床位数", "beds"),
    "nursing_beds": ("护理型床位", "护理型床位数", "护理床位", "护理床位数", "nursing_beds"),
    "floor_area": ("建筑面积", "面积", "建筑面积(㎡)", "面积(平方米)", "建筑面积(平方米)", "floor_area",
                   "floor_area_m2"),
    "caregivers": ("护理员", "持证护理员人数", "护理员人数", "持证护理员", "护理人员", "caregivers"),
    "town": ("所属乡镇", "所属街道", "所属乡镇(街道)", "所属街道(乡镇)", "乡镇街道", "乡镇(街道)", "街道(乡镇)",
             "乡镇", "街道", "town", "town_name"),
    "village": ("所属村", "所属社区", "所属村(社区)", "所属社区(村)", "村社区", "村(社区)", "社区(村)", "村",
                "社区", "village", "village_name"),
    "code": ("区划代码", "统计用区划代码", "行政区划代码", "code", "unit_code"),
    "seq": ("序号", "序", "no", "no.", "编号序号"),
    # facilities in time (coverage.timeline): opening / closing year and construction status
    "opened": ("建成年份", "建成时间", "建成日期", "开业时间", "开业年份", "开业日期", "投用时间", "投用年份",
               "投入使用时间", "投入使用年份", "运营时间", "开始运营时间", "成立时间", "成立年份", "建设年份",
               "计划建成年份", "计划投用时间", "opening_year", "opened", "year_opened", "open_year", "opening_date"),
    "closed": ("停业时间", "停业年份", "关闭时间", "关闭年份", "停运年份", "停运时间", "撤销时间", "注销时间",
               "closing_year", "closed", "year_closed", "close_year"),
    "status": ("状态", "建设状态", "运营状态", "项目状态", "设施状态", "建设情况", "运营情况", "status",
               "construction_status"),
})


# ----------------------------------------------------------------------------- facilities


def _empty_facilities() -> gpd.GeoDataFrame:
    data = {c: pd.Series([], dtype=object) for c in FACILITY_COLUMNS if c != "geometry"}
    for c in ("beds", "nursing_beds", "floor_area_m2", "caregivers", "opened", "closed"):
        data[c] = pd.Series([], dtype=float)
    data["source_row"] = pd.Series([], dtype="int64")
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def read_facilities(
    path: str | Path,
    *,
    crs: str | None = None,
    sheet: str | int | Sequence[str] | None = None,
    encoding: str | None = None,
    columns: Mapping[str, str] | None = None,
    study_area: Any = None,
    kinds_file: str | Path | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, Any]]:
    """
    Read a facility list (设施名单) and check every row.

    Parameters
    ----------
    path
        ``.xlsx``/``.xls``/``.csv`` table or ``.geojson``/``.gpkg``/``.shp``
        layer. CSV encodings UTF-8, UTF-8 with BOM, UTF-16 and GBK/GB18030
        are detected. The header row may sit below title rows (the first 10
        rows are scanned) and may use merged cells.
    crs
        Coordinate system of the longitudes/latitudes: ``wgs84``,
        ``cgcs2000``, ``gcj02`` (Amap/Tencent) or ``bd09`` (Baidu). Output
        is always WGS-84. None (not stated): the system of the map service
        when the file is an Amap/Baidu/Tencent POI export (recognised by its
        headers), else WGS-84. A 坐标系 column overrides it row by row. A
        projected GeoPackage/shapefile is first reprojected to degrees.
    sheet
        Sheet name or 0-based number (layer for GPKG); default: the sheet
        whose header names the most known columns. ``"all"`` or a list of
        names reads several sheets together (one sheet per town: the sheet
        name becomes the town when there is no town column).
    encoding
        Force a text encoding for CSV (or the shapefile DBF).
    columns
        Extra header → field mapping, e.g. ``{"站点名": "name", "X坐标": "lon"}``.
        Fields: name, type, lon, lat, lonlat (one "lon,lat" cell), address,
        beds, nursing_beds, floor_area (m²), caregivers, town, village, code
        (the output column names and Chinese aliases are accepted too).
    study_area
        Optional polygons (GeoSeries/GeoDataFrame, EPSG:4326 unless labelled
        otherwise); rows outside are rejected with the distance in metres.
    kinds_file
        Optional YAML extending ``coverage/kinds.yaml`` (type names/keywords).

    Returns
    -------
    facilities : geopandas.GeoDataFrame
        Accepted rows, columns :data:`FACILITY_COLUMNS`, Point geometry,
        EPSG:4326. Capacities are float (beds, nursing_beds, floor_area_m2
        in m², caregivers in persons), NaN when not given.
    rejects : pandas.DataFrame
        Columns :data:`REJECT_COLUMNS`; one line per problem, so a row with
        several problems appears several times. Reasons: :data:`REJECT_REASONS`.
    summary : dict
        ``rows_in``, ``accepted``, ``rejected`` (rows), ``fixed`` (accepted
        rows carrying a flag), ``by_reason`` (problem counts), ``flags``
        (flag counts), ``kinds`` (accepted facilities per kind), and
        ``source_file``, ``sheet``, ``header_row``, ``encoding``, ``crs``,
        ``columns`` (header → field), ``unused_columns``.

    Raises
    ------
    InputDataError
        When the file cannot be read or has no longitude/latitude columns.

    Notes
    -----
    ``source_row`` is the row number a spreadsheet program shows (1-based,
    counting title and header rows); for GeoJSON/GPKG/SHP it is the feature
    number (1-based). Entirely empty rows are skipped and not counted.
    Exact duplicates are found among all rows, near duplicates only among
    rows that passed every other check (the later row is rejected).
    """
    path = Path(path)
    crs = _normalise_crs(crs) if crs is not None else None
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found",
                          "check the path (relative paths start from the current folder) / 检查路径")
    return _read_checked_points(path, crs=crs, sheet=sheet, encoding=encoding, columns=columns,
                                study_area=study_area, kind_patterns=_load_kind_patterns(kinds_file))


def _table_label(path: Path, table: _Table, several: bool) -> tuple[str, str]:
    """(source_file, id stem) of a table: the file name, with the sheet when several sheets are read."""
    if several and table.sheet:
        return f"{path.name}#{table.sheet}", f"{path.stem}#{table.sheet}"
    return path.name, path.stem


def _raise_if_projected(results: list[_RowResult], path: Path, table: _Table) -> None:
    """A whole file of projected metres is one error naming it, not thousands of out_of_china rejects."""
    metres = [r for r in results if any(p[0] == "out_of_china" and "projected metres" in p[2] for p in r.problems)]
    numeric = [r for r in results if not any(p[0] in ("missing_coordinates", "non_numeric_coordinates", "total_row")
                                             for p in r.problems)]
    if len(metres) >= 3 and len(metres) >= 0.8 * len(numeric):
        example = metres[0]
        where = f" (sheet / 工作表 '{table.sheet}')" if table.sheet else ""
        raise InputDataError(
            _bilingual(f"{len(metres)} 行的坐标是投影坐标（米），不是经纬度{where}",
                       f"the coordinates of {len(metres)} of {len(numeric)} rows are metres of a map projection, "
                       f"not longitude/latitude degrees{where}"),
            path=path, row=example.source_row, column=example.coordinate_column or None,
            hint=("convert them to longitude/latitude in GIS (e.g. from CGCS2000 / Gauss-Krüger EPSG:4526–4554 or "
                  "UTM) and say the system, or export the list as degrees / 请先在 GIS 中将投影坐标转换为经纬度"),
        )


def _read_checked_points(
    path: Path, *, crs: str | None, sheet: Any, encoding: str | None, columns: Mapping[str, str] | None,
    study_area: Any, kind_patterns: _KindPatterns | None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, Any]]:
    """The body of :func:`read_facilities`; ``kind_patterns`` None reads a plain point table."""
    index = _alias_index(_FACILITY_ALIASES, columns, path=path)
    tables, crs_note = _load_facility_tables(path, sheet=sheet, encoding=encoding, index=index)
    several = len(tables) > 1
    if all(not any(any(cells) for cells in t.rows) and not any(t.headers) for t in tables):
        raise _file_error(path, "文件中没有数据", "the file holds no rows",
                          "check that this is the facility list and that it was saved with data / 检查文件是否正确")
    poi = _poi_source(tables[0].headers)
    crs_source = "declared"
    if crs is None:  # not stated: a POI export's own system, else WGS-84
        crs, crs_source = (poi[1], f"{poi[0]} POI export") if poi is not None else ("wgs84", "default")

    results: list[_RowResult] = []
    frames: list[gpd.GeoDataFrame] = []
    reject_records: list[dict[str, Any]] = []
    column_names: dict[str, str] = {}
    unused_all: list[str] = []
    for table in tables:
        column_of, unused = _map_columns(table.headers, index)
        column_names.update({table.headers[i]: name for name, i in sorted(column_of.items(), key=lambda it: it[1])})
        unused_all += [u for u in unused if u not in unused_all]
        has_geometry = table.geometries is not None and any(
            g is not None and not (isinstance(g, float)) and not g.is_empty for g in table.geometries)
        place_only = kind_patterns is not None and "name" in column_of and \
            bool(set(column_of) & {"town", "village", "code", "address"})
        if not has_geometry and not _has_coordinates(set(column_of)) and not place_only:
            found = ", ".join(h for h in table.headers if h) or "(none / 无)"
            where = f" (sheet / 工作表 '{table.sheet}')" if table.sheet else ""
            raise InputDataError(
                _bilingual(f"找不到经度、纬度列{where}；表头为：{found}",
                           f"no longitude/latitude columns found{where}; headers found: {found}"),
                path=path,
                hint=("name the columns 经度/纬度 (or lng/lat, longitude/latitude), or pass columns={'your header': "
                      "'lon', ...}; a list with neither coordinates nor 所属乡镇/所属村/区划代码/地址 columns must be "
                      "geocoded first, noting the coordinate system / 将列名改为“经度”“纬度”，或用 columns 参数指定；"
                      "既无坐标也无所属乡镇、村或地址的名单需先取坐标并注明坐标系"),
            )
        table_results: list[_RowResult] = []
        kept_rows: list[list[str]] = []
        raw_headers = table.headers + (["geometry"] if table.geometries is not None else [])
        for position, (cells, row_number) in enumerate(zip(table.rows, table.row_numbers)):
            geometry = table.geometries[position] if table.geometries is not None else None
            if geometry is not None and (isinstance(geometry, float) or geometry.is_empty):
                geometry = None
            if not any(cells) and geometry is None:
                continue
            if table.geometries is not None:  # the geometry is part of the row (raw text, exact duplicates)
                cells = cells + [geometry.wkt if geometry is not None else ""]
            kept_rows.append(cells)
            result = _check_row(len(kept_rows) - 1, row_number, cells, raw_headers, column_of, kind_patterns, geometry)
            if several and "town" not in column_of and table.sheet and not result.problems:
                result.values["town"] = table.sheet  # one sheet per town: the sheet name is the town
                result.flags.append("town_from_sheet")
            table_results.append(result)
        _raise_if_projected(table_results, path, table)
        if study_area is not None:
            _check_study_area(table_results, study_area, crs)
        _check_duplicates(table_results, kept_rows)
        source_file, stem = _table_label(path, table, several)
        accepted = []
        for result in table_results:
            if result.problems:
                for reason, column, detail in result.problems:
                    reject_records.append({"source_file": source_file, "source_row": result.source_row,
                                           "column": column, "reason": reason, "detail": detail, "raw": result.raw})
            else:
                accepted.append(result)
        frames.append(_facilities_frame(accepted, crs, stem=stem, source_file=source_file))
        results += table_results

    rejects = pd.DataFrame(reject_records, columns=list(REJECT_COLUMNS))
    rejects["source_row"] = rejects["source_row"].astype("int64")
    facilities = frames[0] if len(frames) == 1 else gpd.GeoDataFrame(
        pd.concat(frames, ignore_index=True), geometry="geometry", crs=4326)
    accepted_results = [r for r in results if not r.problems]
    flag_counts = Counter(flag for r in accepted_results for flag in r.flags)
    presence_only = sum(1 for r in accepted_results if "presence_only" in r.flags)
    type_counts: dict[str, dict[str, Any]] = {}
    if kind_patterns is not None:
        for r in results:
            type_text = _nfkc(r.values.get("type", "")) or "(empty / 空)"
            entry = type_counts.setdefault(type_text, {"rows": 0, "kinds": Counter(), "reasons": Counter(),
                                                       "flags": Counter()})
            entry["rows"] += 1
            if r.problems:
                entry["reasons"].update(p[0] for p in r.problems[:1])
            else:
                entry["kinds"][";".join(r.kinds)] += 1
                entry["flags"].update(f for f in r.flags if f.startswith("kind_from_name"))
    summary = {
        "source_file": str(path),
        "sheet": ", ".join(t.sheet for t in tables if t.sheet) or None,
        "sheets": [t.sheet for t in tables if t.sheet],
        "header_row": tables[0].header_row,
        "encoding": tables[0].encoding,
        "crs": crs,
        "crs_source": crs_source,
        "poi_source": poi[0] if poi is not None else None,
        "reprojected_from": crs_note,
        "columns": column_names,
        "unused_columns": unused_all,
        "rows_in": len(results),
        "accepted": len(accepted_results),
        "located": len(accepted_results) - presence_only,
        "presence_only": presence_only,
        "rejected": sum(1 for r in results if r.problems),
        "fixed": sum(1 for r in accepted_results if r.flags),
        "by_reason": dict(Counter(rejects["reason"])),
        "flags": dict(flag_counts),
        "types": type_counts,
        "kinds": {kind: int(has_kind(facilities, kind).sum()) for kind in KINDS} if len(facilities) else
                 {kind: 0 for kind in KINDS},
    }
    if summary["rows_in"] != summary["located"] + summary["presence_only"] + summary["rejected"]:
        raise AssertionError(f"rows lost while reading {path}: {summary}")  # pragma: no cover - an internal bug
    return facilities, rejects, summary


def read_point_table(
    path: str | Path,
    *,
    crs: str | None = "wgs84",
    sheet: str | int | None = None,
    encoding: str | None = None,
    columns: Mapping[str, str] | None = None,
    study_area: Any = None,
) -> gpd.GeoDataFrame:
    """
    Read a table of points that are not facilities (e.g. candidate sites) with the facility reader.

    Headers, encodings, title rows, merged cells, coordinate checks and
    conversion work as in :func:`read_facilities`; name and type are not
    required and no kind is assigned (``kinds`` is empty).

    Parameters
    ----------
    path, crs, sheet, encoding, columns, study_area
        As for :func:`read_facilities`.

    Returns
    -------
    geopandas.GeoDataFrame
        Usable rows, columns :data:`FACILITY_COLUMNS`, EPSG:4326. The rows
        left out are in ``.attrs["rejects"]`` (a list of records with the
        fields of :data:`REJECT_COLUMNS`) and the counts in ``.attrs["summary"]``.
    """
    path = Path(path)
    crs = _normalise_crs(crs) if crs is not None else None
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found", "check the path / 检查路径")
    points, rejects, summary = _read_checked_points(path, crs=crs, sheet=sheet, encoding=encoding, columns=columns,
                                                    study_area=study_area, kind_patterns=None)
    points.attrs["rejects"] = rejects.to_dict("records")
    points.attrs["summary"] = summary
    return points


def _facilities_frame(accepted: list[_RowResult], crs: str, *, stem: str, source_file: str) -> gpd.GeoDataFrame:
    """
    Build the facilities GeoDataFrame from accepted rows (coordinates converted to WGS-84).

    A row's own coordinate-system cell (坐标系) overrides the file's ``crs``;
    presence-only rows (no coordinates) get an empty geometry (None).
    """
    if not accepted:
        return _empty_facilities()
    lon = np.array([r.lon for r in accepted], dtype=float)
    lat = np.array([r.lat for r in accepted], dtype=float)
    systems = np.array([r.crs or crs for r in accepted], dtype=object)
    out_lon, out_lat = np.full(len(accepted), np.nan), np.full(len(accepted), np.nan)
    for system in sorted(set(systems)):
        chosen = (systems == system) & np.isfinite(lon) & np.isfinite(lat)
        if chosen.any():
            out_lon[chosen], out_lat[chosen] = coords.to_wgs84(lon[chosen], lat[chosen], system)
    flags = []
    for r in accepted:
        row_flags = list(r.flags)
        if r.crs is not None and r.crs != crs:
            row_flags.append("crs_from_column")
        flags.append(";".join(row_flags))
    data = {
        "facility_id": [f"{stem}:{r.source_row}" for r in accepted],
        "name": [r.values.get("name", "").strip() for r in accepted],
        "kinds": [";".join(r.kinds) for r in accepted],
        "type_raw": [_text_or_none(r.values.get("type", "")) for r in accepted],
        "beds": [r.capacities["beds"] for r in accepted],
        "nursing_beds": [r.capacities["nursing_beds"] for r in accepted],
        "floor_area_m2": [r.capacities["floor_area_m2"] for r in accepted],
        "caregivers": [r.capacities["caregivers"] for r in accepted],
        "address": [_address_text(r.values) for r in accepted],
        "town_name": [_text_or_none(r.values.get("town", "")) for r in accepted],
        "village_name": [_text_or_none(r.values.get("village", "")) for r in accepted],
        "unit_code": [_text_or_none(r.values.get("code", "")) for r in accepted],
        "source_file": [source_file] * len(accepted),
        "source_row": np.array([r.source_row for r in accepted], dtype="int64"),
        "flags": flags,
        "opened": [r.opened for r in accepted],
        "closed": [r.closed for r in accepted],
        "status": [r.status for r in accepted],
    }
    frame = pd.DataFrame(data)
    frame[["opened", "closed"]] = frame[["opened", "closed"]].astype(float)
    for column in ("beds", "nursing_beds", "floor_area_m2", "caregivers"):
        frame[column] = frame[column].astype(float)
    located = np.isfinite(out_lon) & np.isfinite(out_lat)
    geometry = np.array([None] * len(accepted), dtype=object)
    geometry[located] = shapely.points(out_lon[located], out_lat[located])
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)


def _address_text(values: Mapping[str, str]) -> str | None:
    """The address, prefixed by the POI export's province/city/county when the address lacks them."""
    address = _text_or_none(values.get("address", "")) or ""
    prefix = ""
    for key in ("province", "city", "county"):
        part = _text_or_none(values.get(key, "")) or ""
        if part and part not in address and part not in prefix:
            prefix += part
    text = prefix + address
    return text or None


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    """
    Write the reject list as CSV in UTF-8 with BOM (opens correctly in Excel), atomically.

    The table is written to a temporary file in the target folder and moved
    into place with :func:`os.replace`, so readers never see a half-written file.

    Parameters
    ----------
    rejects
        Second return value of :func:`read_facilities`.
    path
        Target ``.csv`` file; its folder is created if needed.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    target = Path(path)
    frame = rejects.reindex(columns=list(REJECT_COLUMNS)) if set(REJECT_COLUMNS) <= set(rejects.columns) else rejects
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig")
    return target


def split_presence_only(
    facilities: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """
    Separate the facilities that walking reach can use from those that count for unit presence only.

    Parameters
    ----------
    facilities
        Output of :func:`assign_facilities_to_units` (rows without geometry
        carry the ``presence_only`` flag; rows flagged ``geocoder_fallback``
        have a point nobody should walk to).

    Returns
    -------
    located : geopandas.GeoDataFrame
        Facilities with a usable point (walking reach and presence).
    presence_only : geopandas.GeoDataFrame
        Facilities without a usable point whose village or town was found
        (by code, names or address): they count for unit presence targets only.
    unplaced : pandas.DataFrame
        Reject records (:data:`REJECT_COLUMNS`, reason ``no_location``) for
        rows with neither a point nor a unit.
    """
    flags = facilities["flags"].fillna("").astype(str).str.split(";")
    no_point = facilities.geometry.isna() | flags.map(lambda f: "presence_only" in f or "geocoder_fallback" in f)
    located = facilities[~no_point.to_numpy()].reset_index(drop=True)
    rest = facilities[no_point.to_numpy()].reset_index(drop=True)
    if "village_code" in rest.columns:
        placed = (rest["village_code"].notna() | rest["town_code"].notna()).to_numpy()
    else:
        placed = np.zeros(len(rest), bool)
    presence = rest[placed].reset_index(drop=True)
    if len(presence):
        presence["flags"] = [";".join(dict.fromkeys([p for p in str(f).split(";") if p] + ["presence_only"]))
                             for f in presence["flags"]]
    lost = rest[~placed]
    unplaced = pd.DataFrame({
        "source_file": lost["source_file"].to_numpy(), "source_row": lost["source_row"].to_numpy(),
        "column": "", "reason": "no_location",
        "detail": [_bilingual(
            "无坐标（或坐标为地理编码失败的默认点），且区划代码、乡镇村名称和地址都对不上研究区的行政单元",
            "no usable coordinates, and neither a code, the town/village names nor the address matches a unit of "
            "the study") + " (add 经度/纬度, or a 区划代码 / 所属村 the units table knows / 补充坐标或所属村社区)"
            for _ in range(len(lost))],
        "raw": [f"名称={n} | 地址={a or ''} | 所属乡镇={t or ''} | 所属村={v or ''}" for n, a, t, v in
                zip(lost["name"], lost["address"], lost["town_name"], lost["village_name"])],
    }, columns=list(REJECT_COLUMNS))
    unplaced["source_row"] = unplaced["source_row"].astype("int64")
    return located, presence, unplaced
