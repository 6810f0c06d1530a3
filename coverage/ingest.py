"""Read facility tables and administrative units into checked EPSG:4326 GeoDataFrames, with a reject list."""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import io
import math
import re
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import yaml

from coverage._io import atomic_path
from coverage import coords
from coverage._errors import InputDataError
from coverage.config import KINDS

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
    "validate_report",
]

#: columns of the facilities GeoDataFrame, in order (see docs/architecture.md)
FACILITY_COLUMNS: tuple[str, ...] = (
    "facility_id", "name", "kinds", "type_raw", "beds", "nursing_beds", "floor_area_m2", "caregivers",
    "address", "town_name", "village_name", "unit_code", "source_file", "source_row", "flags", "geometry",
)
#: columns of the rejects DataFrame
REJECT_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "column", "reason", "detail", "raw")
#: columns of the units GeoDataFrame
UNIT_COLUMNS: tuple[str, ...] = ("code", "name", "level", "parent_code", "ur_code", "urban", "geometry")
UNIT_LEVELS: tuple[str, ...] = ("county", "town", "village")

#: reject reason code → (Chinese, English) explanation
REJECT_REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "missing_name": ("名称为空", "name is empty"),
    "missing_coordinates": ("缺少经度或纬度", "longitude or latitude is empty"),
    "non_numeric_coordinates": ("经纬度不是数字", "longitude/latitude is not a number"),
    "out_of_china": ("坐标不在中国范围内", "coordinates fall outside China"),
    "outside_study_area": ("位于研究区范围外", "outside the study area"),
    "duplicate": ("与前面某行完全重复", "exact duplicate of an earlier row"),
    "near_duplicate": ("与前面同类设施相距不足30米且名称相近",
                       "same kind within 30 m of an earlier facility with a similar name"),
    "unknown_kind": ("无法识别设施类型", "facility type not recognised"),
    "negative_capacity": ("床位、面积或护理员人数为负数", "beds, floor area or caregivers below zero"),
})

#: fix / inference flag code → (Chinese, English) explanation; ``unreadable_<field>`` also occurs
FLAG_CODES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "swapped_lat_lon": ("经纬度填反，已对调", "longitude and latitude were swapped and have been swapped back"),
    "kind_from_name": ("类型为空，按名称中的关键词判断类别", "type was empty; kind taken from keywords in the name"),
    "point_from_polygon": ("几何为面，取面内代表点", "geometry was a polygon; a point inside it is used"),
    "unreadable_capacity": ("容量数值无法识别，按未填处理", "a capacity value could not be read and is treated as not given"),
    "nearest_village_point": ("按同一乡镇内最近的村点归属", "assigned to the nearest village point in the same town"),
})

#: facilities of the same kind closer than this (metres) with similar names are near duplicates
NEAR_DUPLICATE_DISTANCE_M = 30.0
#: difflib similarity ratio from which two names count as similar
NEAR_DUPLICATE_NAME_RATIO = 0.8

_HEADER_SCAN_ROWS = 10
_TABLE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".txt", ".tsv")
_GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")

# canonical facility field → header aliases (Chinese and English). Earlier aliases win when two
# columns map to the same field. Matching ignores case, spaces, '_', '-', full/half width, and a
# trailing unit in brackets ("床位数（张）" matches "床位数").
_FACILITY_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "name": ("名称", "机构名称", "设施名称", "服务设施名称", "站点名称", "单位名称", "name", "facility_name"),
    "type": ("类型", "设施类型", "机构类型", "服务设施类型", "类别", "设施类别", "type", "facility_type",
             "kind", "kinds", "category"),
    "lon": ("经度", "lng", "lon", "long", "longitude", "x"),
    "lat": ("纬度", "lat", "latitude", "y"),
    "lonlat": ("经纬度", "坐标", "经纬度坐标", "lnglat", "lonlat", "location", "coordinates"),
    "address": ("地址", "详细地址", "机构地址", "地点", "address"),
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
})
_CAPACITY_FIELDS: Mapping[str, str] = MappingProxyType({
    "beds": "beds", "nursing_beds": "nursing_beds", "floor_area": "floor_area_m2", "caregivers": "caregivers",
})

_UNIT_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "code": ("code", "区划代码", "统计用区划代码", "行政区划代码", "代码", "unit_code", "gb"),
    "name": ("name", "名称", "区划名称", "单位名称"),
    "level": ("level", "级别", "层级"),
    "parent_code": ("parent_code", "parent", "上级代码", "上级区划代码", "父级代码"),
    "ur_code": ("ur_code", "城乡分类代码", "城乡属性代码", "城乡分类"),
    "lon": ("longitude", "lon", "lng", "经度", "x"),
    "lat": ("latitude", "lat", "纬度", "y"),
    "virtual": ("virtual", "虚拟"),
})
# the header-less per-county CSV files of github.com/Vonng/adcode (data/adcode/<county>.csv)
_VONNG_COLUMNS: tuple[str, ...] = (
    "code", "parent", "name", "level", "rank", "adcode", "post_code", "area_code", "ur_code", "municipality",
    "virtual", "dummy", "longitude", "latitude", "center", "province", "city", "county", "town", "village",
)
_LEVEL_WORDS: Mapping[str, str] = MappingProxyType({
    "province": "province", "省": "province", "city": "city", "市": "city", "地级市": "city",
    "county": "county", "district": "county", "县": "county", "区": "county", "区县": "county", "县区": "county",
    "旗": "county", "县级": "county",
    "town": "town", "township": "town", "street": "town", "乡镇": "town", "乡": "town", "镇": "town",
    "街道": "town", "苏木": "town", "乡镇街道": "town", "乡级": "town",
    "village": "village", "community": "village", "村": "village", "社区": "village", "村社区": "village",
    "嘎查": "village", "村级": "village",
})
_EMPTY_WORDS = frozenset({"", "-", "--", "—", "——", "/", "\\", "无", "暂无", "n/a", "na", "nan", "null", "none", "?"})
_NEGATION_RE = re.compile(r"(不含|不包括|未设|暂无|没有)[^,;/、()\[\]]*")
_NUMBER_WITH_UNIT_RE = re.compile(
    r"^(?:约|近|共|计)?([-+]?\d+(?:\.\d+)?)(?:张|床|个|人|名|平方米|平米|平|m2|m\^2|sqm)?$", re.IGNORECASE
)
_DMS_RE = re.compile(
    r"^([NSEW东西南北])?(\d+(?:\.\d+)?)(?:°|度)(?:(\d+(?:\.\d+)?)(?:′′|''|\"|″|秒)"
    r"|(\d+(?:\.\d+)?)(?:'|′|分)(?:(\d+(?:\.\d+)?)(?:′′|''|\"|″|秒)?)?)?([NSEW东西南北])?$",
    re.IGNORECASE,
)
_PLACE_SUFFIXES = ("街道办事处", "办事处", "街道", "民族乡", "民族镇", "苏木", "地区", "镇", "乡", "街")


# ----------------------------------------------------------------------------- small text helpers


def _nfkc(text: str) -> str:
    """Half-width, compatibility-normalised text without surrounding spaces."""
    return unicodedata.normalize("NFKC", text).strip()


def _normalise_header(text: str) -> str:
    """Header text for alias matching: NFKC, lower case, no spaces, '_', '-', '*' or trailing ':'."""
    return re.sub(r"[\s_\-*:：\ufeff]+", "", _nfkc(str(text)).lower())


def _cell_text(value: Any) -> str:
    """A cell value as the text a user would see (integral floats without '.0')."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if float(value).is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(float(value))
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value).strip()


def _is_empty(text: str) -> bool:
    return _nfkc(text).lower() in _EMPTY_WORDS


def _name_key(name: str) -> str:
    """Name reduced for similarity tests: NFKC, no spaces or punctuation."""
    return re.sub(r"[\s\W_]+", "", _nfkc(name).lower())


def _place_core(name: str) -> str:
    """A township/street name without its administrative suffix ("大智街办事处" → "大智")."""
    text = re.sub(r"\s+", "", _nfkc(name))
    for suffix in _PLACE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


def _bilingual(zh: str, en: str) -> str:
    return f"{en} / {zh}"


# ----------------------------------------------------------------------------- parsing numbers


def _parse_degrees(text: str) -> float | None:
    """
    Decimal degrees from text, or None when it is not a number.

    Accepts ``114.305``, full-width digits, a hemisphere letter (``E114.3``,
    ``30.5N``) and degrees-minutes-seconds (``114°18′30″``, ``114度18分30秒``).
    """
    compact = re.sub(r"\s+", "", _nfkc(text))
    try:
        return float(compact)
    except ValueError:
        pass
    stripped = compact.strip("NSEWnsew东西南北")
    sign = -1.0 if re.search(r"[SWsw西南]", compact) else 1.0
    if stripped and stripped != compact:
        try:
            return sign * float(stripped)
        except ValueError:
            pass
    match = _DMS_RE.match(compact)
    if match is None:
        return None
    degrees = float(match.group(2))
    seconds_only = match.group(3)
    minutes = float(match.group(4) or 0.0)
    seconds = float(seconds_only or match.group(5) or 0.0)
    return sign * (degrees + minutes / 60.0 + seconds / 3600.0)


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


# ----------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _KindPatterns:
    """Normalised type names and keywords, each with the kind it indicates."""

    patterns: tuple[tuple[str, str], ...]


def _default_kinds_file() -> Path:
    return Path(__file__).with_name("kinds.yaml")


def _read_kinds_yaml(path: Path) -> dict[str, dict[str, list[str]]]:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputDataError(
            _bilingual("类型对照表文件不存在", "kind mapping file not found"), path=path,
            hint="check the kinds_file path / 检查 kinds_file 路径",
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputDataError(
            _bilingual("类型对照表不是有效的 YAML", f"kind mapping is not valid YAML ({exc})"), path=path,
            hint="save it as UTF-8 YAML in the layout of coverage/kinds.yaml / 按 coverage/kinds.yaml 的格式保存为 UTF-8",
        ) from None
    if not isinstance(raw, dict):
        raise InputDataError(_bilingual("类型对照表格式不对", "kind mapping must be a mapping of kind → lists"),
                             path=path, hint=f"top-level keys must be kinds: {', '.join(KINDS)}")
    table: dict[str, dict[str, list[str]]] = {}
    for kind, entry in raw.items():
        if kind not in KINDS:
            raise InputDataError(
                _bilingual(f"未知的设施类别 '{kind}'", f"unknown facility kind '{kind}'"), path=path,
                hint=f"use one of / 可用类别: {', '.join(KINDS)}",
            )
        entry = entry or {}
        if isinstance(entry, list):
            entry = {"types": entry}
        table[kind] = {
            key: [str(item) for item in (entry.get(key) or [])] for key in ("types", "keywords")
        }
    return table


def _load_kind_patterns(kinds_file: str | Path | None = None) -> _KindPatterns:
    """The package's kinds.yaml, extended by ``kinds_file`` when given."""
    merged: dict[str, set[str]] = {kind: set() for kind in KINDS}
    files = [_default_kinds_file()] + ([Path(kinds_file)] if kinds_file is not None else [])
    for path in files:
        for kind, entry in _read_kinds_yaml(path).items():
            for text in entry["types"] + entry["keywords"]:
                pattern = re.sub(r"\s+", "", _nfkc(text))
                if pattern:
                    merged[kind].add(pattern)
    patterns = tuple((pattern, kind) for kind in KINDS for pattern in sorted(merged[kind]))
    return _KindPatterns(patterns)


def _kinds_in_text(text: str, kind_patterns: _KindPatterns) -> tuple[str, ...]:
    """Kinds named in a type or name text, in ``config.KINDS`` order (empty when none)."""
    compact = re.sub(r"\s+", "", _nfkc(text))
    if not compact:
        return ()
    parts = [p for p in re.split(r"[;,/、|+]+", compact.lower()) if p]
    if parts and all(p in KINDS for p in parts):
        return tuple(kind for kind in KINDS if kind in parts)
    compact = _NEGATION_RE.sub("", compact)
    hits: list[tuple[int, int, str]] = []
    for pattern, kind in kind_patterns.patterns:
        start = compact.find(pattern)
        while start >= 0:
            hits.append((start, start + len(pattern), kind))
            start = compact.find(pattern, start + 1)
    found = {
        kind for start, end, kind in hits
        if not any(s2 <= start and end <= e2 and (e2 - s2) > (end - start) and k2 != kind for s2, e2, k2 in hits)
    }
    return tuple(kind for kind in KINDS if kind in found)


def match_kinds(text: str, *, kinds_file: str | Path | None = None) -> tuple[str, ...]:
    """
    The facility kinds a type name (or facility name) indicates.

    Parameters
    ----------
    text
        A type cell such as ``"日间照料中心（含助餐）"`` or a name.
    kinds_file
        Optional YAML extending ``coverage/kinds.yaml``.

    Returns
    -------
    tuple of str
        Kinds from ``config.KINDS`` in their display order; empty when the
        text names none (the caller rejects such a row, never guesses).

    Examples
    --------
    >>> match_kinds("日间照料中心/幸福食堂")
    ('day_care', 'canteen')
    """
    return _kinds_in_text(text, _load_kind_patterns(kinds_file))


def has_kind(facilities: pd.DataFrame, kind: str) -> pd.Series:
    """
    Which facilities are of a kind (a facility may have several).

    Parameters
    ----------
    facilities
        Output of :func:`read_facilities` (uses the ``kinds`` column).
    kind
        One of ``config.KINDS``.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``facilities``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown facility kind {kind!r}; known: {', '.join(KINDS)}")
    kinds = facilities["kinds"].astype(object).where(facilities["kinds"].notna(), "")
    return kinds.map(lambda text: kind in str(text).split(";")).astype(bool)


# ----------------------------------------------------------------------------- reading raw tables


@dataclass
class _Table:
    """Rows of a facility or unit file as text, with their spreadsheet row numbers."""

    path: Path
    rows: list[list[str]]
    row_numbers: list[int]
    sheet: str | None = None
    encoding: str | None = None
    headers: list[str] = field(default_factory=list)
    header_row: int | None = None
    geometries: list[Any] | None = None


def _file_error(path: Path, zh: str, en: str, hint: str) -> InputDataError:
    return InputDataError(_bilingual(zh, en), path=path, hint=hint)


def _decode_text_file(path: Path, encoding: str | None) -> tuple[str, str]:
    """The text of a CSV and the encoding used (UTF-8 with or without BOM, UTF-16, else GB18030)."""
    data = path.read_bytes()
    if encoding is not None:
        decode_as = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        try:
            return data.decode(decode_as), encoding
        except (UnicodeDecodeError, LookupError) as exc:
            raise _file_error(
                path, f"无法按 {encoding} 编码读取", f"cannot be read as {encoding} ({exc})",
                "leave the encoding out to let it be detected, or save the file as UTF-8 "
                "/ 不指定编码让程序自动识别，或另存为 UTF-8",
            ) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    for candidate in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(candidate)
        except UnicodeDecodeError:
            continue
        label = candidate
        if candidate == "utf-8-sig":
            label = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
        return text, label
    raise _file_error(
        path, "无法识别文件编码", "the text encoding is neither UTF-8 nor GBK/GB18030",
        "save the table as 'CSV UTF-8' from Excel / 在 Excel 中另存为“CSV UTF-8”",
    )


def _read_csv_table(path: Path, encoding: str | None) -> _Table:
    text, used = _decode_text_file(path, encoding)
    sample = text.splitlines()[:_HEADER_SCAN_ROWS + 5]
    delimiter = max((",", "\t", ";"), key=lambda d: sum(line.count(d) for line in sample))
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    rows = [[_cell_text(cell) for cell in record] for record in records]
    return _Table(path=path, rows=rows, row_numbers=list(range(1, len(rows) + 1)), encoding=used)


def _fill_merged(grid: list[list[Any]], ranges: Sequence[tuple[int, int, int, int]]) -> None:
    """Copy each merged range's top-left value into all its cells (0-based, inclusive bounds)."""
    for row0, row1, col0, col1 in ranges:
        if row0 >= len(grid):
            continue
        value = grid[row0][col0] if col0 < len(grid[row0]) else None
        for r in range(row0, min(row1, len(grid) - 1) + 1):
            width_needed = col1 + 1 - len(grid[r])
            if width_needed > 0:
                grid[r].extend([None] * width_needed)
            for c in range(col0, col1 + 1):
                grid[r][c] = value


def _xlsx_sheets(path: Path) -> list[tuple[str, list[list[str]]]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(path, data_only=True)
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise _file_error(
            path, "无法打开 Excel 文件", f"the Excel file cannot be opened ({type(exc).__name__}: {exc})",
            "open it in Excel/WPS and save it again as .xlsx / 用 Excel 或 WPS 打开后另存为 .xlsx",
        ) from None
    sheets = []
    for worksheet in workbook.worksheets:
        grid = [list(row) for row in worksheet.iter_rows(values_only=True)]
        ranges = [(r.min_row - 1, r.max_row - 1, r.min_col - 1, r.max_col - 1) for r in worksheet.merged_cells.ranges]
        _fill_merged(grid, ranges)
        sheets.append((worksheet.title, [[_cell_text(v) for v in row] for row in grid]))
    return sheets


def _xls_sheets(path: Path) -> list[tuple[str, list[list[str]]]]:
    import xlrd

    try:
        try:
            book = xlrd.open_workbook(str(path), formatting_info=True)
        except NotImplementedError:
            book = xlrd.open_workbook(str(path))
    except xlrd.biffh.XLRDError as exc:
        if "xlsx" in str(exc).lower():
            return _xlsx_sheets(path)
        raise _file_error(
            path, "无法打开 .xls 文件", f"the .xls file cannot be opened ({exc})",
            "open it in Excel/WPS and save it as .xlsx / 用 Excel 或 WPS 打开后另存为 .xlsx",
        ) from None
    except Exception as exc:
        raise _file_error(
            path, "无法打开 .xls 文件", f"the .xls file cannot be opened ({type(exc).__name__}: {exc})",
            "open it in Excel/WPS and save it as .xlsx / 用 Excel 或 WPS 打开后另存为 .xlsx",
        ) from None
    sheets = []
    for sheet in book.sheets():
        grid = [list(sheet.row_values(r)) for r in range(sheet.nrows)]
        ranges = [(r0, r1 - 1, c0, c1 - 1) for r0, r1, c0, c1 in getattr(sheet, "merged_cells", [])]
        _fill_merged(grid, ranges)
        sheets.append((sheet.name, [[_cell_text(v) for v in row] for row in grid]))
    return sheets


def _read_geo_table(path: Path, *, layer: str | int | None, encoding: str | None) -> tuple[_Table, Any]:
    """Attribute rows as text plus the geometries (converted to EPSG:4326 if the file is projected)."""
    options: dict[str, Any] = {}
    if layer is not None:
        options["layer"] = layer
    if encoding is not None:
        options["encoding"] = encoding
    try:
        frame = gpd.read_file(path, **options)
    except Exception as exc:  # pyogrio raises DataSourceError, DataLayerError, ...
        raise _file_error(
            path, "无法读取地理数据文件", f"the geodata file cannot be read ({type(exc).__name__}: {exc})",
            "check that the file (and for .shp its .dbf/.shx/.prj) is complete, or export it again as GeoJSON "
            "/ 检查文件是否完整（.shp 需同名 .dbf/.shx/.prj），或重新导出为 GeoJSON",
        ) from None
    crs_note = None
    if frame.crs is not None and (not frame.crs.is_geographic or frame.crs.to_epsg() not in (4326, 4490, None)):
        crs_note = frame.crs.to_string()  # projected (or another datum): reproject; CGCS2000 counts as WGS-84
        frame = frame.to_crs(4326)
    attributes = frame.drop(columns=frame.geometry.name)
    headers = [str(c) for c in attributes.columns]
    rows = [[_cell_text(v) for v in record] for record in attributes.itertuples(index=False, name=None)]
    table = _Table(path=path, rows=rows, row_numbers=list(range(1, len(rows) + 1)), headers=headers,
                   header_row=None, geometries=list(frame.geometry.values), encoding=encoding)
    return table, crs_note


# ----------------------------------------------------------------------------- header detection


def _alias_index(aliases: Mapping[str, Sequence[str]], user_columns: Mapping[str, str] | None,
                 *, path: Path) -> dict[str, tuple[str, int]]:
    """Normalised header → (field, priority); user mappings come first (priority -1)."""
    index: dict[str, tuple[str, int]] = {}
    for field_name, names in aliases.items():
        for rank, alias in enumerate(names):
            index.setdefault(_normalise_header(alias), (field_name, rank))
    for header, target in (user_columns or {}).items():
        target_key = _normalise_header(target)
        if target in aliases:
            field_name = target
        elif target_key in index:
            field_name = index[target_key][0]
        else:
            raise InputDataError(
                _bilingual(f"列对照 '{header}: {target}' 的目标字段未知", f"column mapping '{header}: {target}' "
                           "names an unknown field"),
                path=path, hint=f"map columns to one of / 可用字段: {', '.join(aliases)}",
            )
        index[_normalise_header(header)] = (field_name, -1)
    return index


def _field_of(header: str, index: Mapping[str, tuple[str, int]]) -> tuple[str, int] | None:
    """The (field, priority) a header text stands for, or None."""
    key = _normalise_header(header)
    if not key:
        return None
    if key in index:
        return index[key]
    without_unit = re.sub(r"[(\[][^()\[\]]*[)\]]$", "", key)
    if without_unit != key and without_unit in index:
        return index[without_unit]
    return None


def _fields_in(cells: Sequence[str], index: Mapping[str, tuple[str, int]]) -> set[str]:
    return {found[0] for cell in cells if (found := _field_of(cell, index)) is not None}


def _has_coordinates(fields: set[str]) -> bool:
    return {"lon", "lat"} <= fields or "lonlat" in fields


def _find_header(rows: list[list[str]], index: Mapping[str, tuple[str, int]]) -> tuple[int, list[str], int]:
    """
    Locate the header among the first rows (below any title rows).

    Scores each of the first ``_HEADER_SCAN_ROWS`` rows by the number of
    distinct fields its cells name, and also each row combined with the row
    below (a two-row header under merged group cells such as 坐标 over
    经度/纬度). Rows naming longitude and latitude are preferred.

    Returns
    -------
    tuple
        (0-based header row index, header texts per column, 0-based first data row index).
    """
    candidates = []
    limit = min(len(rows), _HEADER_SCAN_ROWS)
    for r in range(limit):
        single = rows[r]
        single_fields = _fields_in(single, index)
        candidates.append((_has_coordinates(single_fields), len(single_fields), 1, -r, r, list(single), r + 1))
        if r + 1 < len(rows):
            below = rows[r + 1]
            width = max(len(single), len(below))
            combined = []
            for c in range(width):
                top = single[c] if c < len(single) else ""
                bottom = below[c] if c < len(below) else ""
                combined.append(bottom if _field_of(bottom, index) is not None else top)
            combined_fields = _fields_in(combined, index)
            below_fields = _fields_in(below, index)
            if len(combined_fields) > max(len(single_fields), len(below_fields)):
                candidates.append((_has_coordinates(combined_fields), len(combined_fields), 0, -r, r, combined, r + 2))
    if not candidates:
        return 0, [], 0
    best = max(candidates, key=lambda c: c[:4])
    return best[4], best[5], best[6]


def _map_columns(headers: Sequence[str], index: Mapping[str, tuple[str, int]]) -> tuple[dict[str, int], list[str]]:
    """Field → column position (best alias wins), and the headers left unused."""
    chosen: dict[str, tuple[int, int]] = {}
    for position, header in enumerate(headers):
        found = _field_of(header, index)
        if found is None:
            continue
        field_name, priority = found
        if field_name not in chosen or priority < chosen[field_name][1]:
            chosen[field_name] = (position, priority)
    used = {position for position, _ in chosen.values()}
    unused = [h for i, h in enumerate(headers) if i not in used and h]
    return {name: position for name, (position, _) in chosen.items()}, unused


def _load_facility_table(path: Path, *, sheet: str | int | None, encoding: str | None,
                         index: Mapping[str, tuple[str, int]]) -> tuple[_Table, str | None]:
    """Read any supported facility file into a :class:`_Table` with headers located."""
    suffix = path.suffix.lower()
    if suffix in _GEO_SUFFIXES:
        return _read_geo_table(path, layer=sheet, encoding=encoding)
    if suffix in (".csv", ".txt", ".tsv"):
        sheets = [(None, _read_csv_table(path, encoding))]
    elif suffix in (".xlsx", ".xlsm"):
        sheets = [(name, _Table(path=path, rows=rows, row_numbers=list(range(1, len(rows) + 1)), sheet=name))
                  for name, rows in _xlsx_sheets(path)]
    elif suffix == ".xls":
        sheets = [(name, _Table(path=path, rows=rows, row_numbers=list(range(1, len(rows) + 1)), sheet=name))
                  for name, rows in _xls_sheets(path)]
    else:
        raise _file_error(
            path, f"不支持的文件类型 '{suffix}'", f"unsupported file type '{suffix}'",
            "use .xlsx, .xls, .csv, .geojson, .gpkg or .shp / 请使用上述格式之一",
        )
    if sheet is not None and suffix not in (".csv", ".txt", ".tsv"):
        names = [name for name, _ in sheets]
        if isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise _file_error(path, f"没有第 {sheet} 个工作表", f"there is no sheet number {sheet} (0-based)",
                                  f"sheets in the file / 文件中的工作表: {', '.join(names)}")
            sheets = [sheets[sheet]]
        else:
            if sheet not in names:
                raise _file_error(path, f"没有名为 '{sheet}' 的工作表", f"there is no sheet named '{sheet}'",
                                  f"sheets in the file / 文件中的工作表: {', '.join(names)}")
            sheets = [sheets[names.index(sheet)]]
    best_table, best_key = None, None
    for _, table in sheets:
        header_index, headers, data_start = _find_header(table.rows, index)
        fields = _fields_in(headers, index)
        key = (_has_coordinates(fields), len(fields))
        table.headers = headers
        table.header_row = table.row_numbers[header_index] if table.rows else None
        table.rows, table.row_numbers = table.rows[data_start:], table.row_numbers[data_start:]
        if best_key is None or key > best_key:
            best_table, best_key = table, key
    return best_table, None


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
    if kind_patterns is None:
        pass
    elif _is_empty(name):
        detail = _bilingual("名称为空", "name is empty") if "name" in columns else _bilingual(
            "表中没有名称列", "the file has no name column")
        result.problems.append(("missing_name", header_of("name"), detail))

    if kind_patterns is None:
        pass
    elif not _is_empty(type_text):
        result.kinds = _kinds_in_text(type_text, kind_patterns)
        if not result.kinds:
            from_name = _kinds_in_text(name, kind_patterns) if not _is_empty(name) else ()
            hint = f"; name suggests / 名称提示: {';'.join(from_name)}" if from_name else ""
            result.problems.append((
                "unknown_kind", header_of("type"),
                _bilingual(f"类型 '{type_text}' 不在类型对照表中", f"type '{type_text}' is not in the kind mapping")
                + hint + " (add it to a kinds YAML / 可在类型对照 YAML 中补充)",
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
    return result


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
    """Mark exact duplicates (all cells equal) and near duplicates (same kind, ≤ 30 m, similar names)."""
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

    candidates = [r for r in results if not r.problems]
    if len(candidates) < 2:
        return
    mean_lon = float(np.mean([r.lon for r in candidates]))
    mean_lat = float(np.mean([r.lat for r in candidates]))
    utm = coords.utm_crs_for(mean_lon, mean_lat)
    points_m = np.asarray(gpd.GeoSeries(
        shapely.points([r.lon for r in candidates], [r.lat for r in candidates]), crs=4326).to_crs(utm).values)
    tree = shapely.STRtree(points_m)
    pairs = tree.query(points_m, predicate="dwithin", distance=NEAR_DUPLICATE_DISTANCE_M)
    earlier: dict[int, list[int]] = {}
    for i, j in zip(*pairs):
        if j < i:
            earlier.setdefault(int(i), []).append(int(j))
    kept = [True] * len(candidates)
    for i, result in enumerate(candidates):
        name_i = _name_key(result.values.get("name", ""))
        for j in sorted(earlier.get(i, [])):
            other = candidates[j]
            if not kept[j] or not set(result.kinds) & set(other.kinds):
                continue
            name_j = _name_key(other.values.get("name", ""))
            ratio = difflib.SequenceMatcher(None, name_i, name_j).ratio()
            contained = min(len(name_i), len(name_j)) >= 2 and (name_i in name_j or name_j in name_i)
            if ratio >= NEAR_DUPLICATE_NAME_RATIO or contained:
                distance = float(shapely.distance(points_m[i], points_m[j]))
                result.problems.append(("near_duplicate", "name", _bilingual(
                    f"与第 {other.source_row} 行“{other.values.get('name', '')}”同类，相距 {distance:.0f} 米，"
                    f"名称相似度 {ratio:.2f}",
                    f"same kind as row {other.source_row} '{other.values.get('name', '')}', {distance:.0f} m away, "
                    f"name similarity {ratio:.2f}")))
                kept[i] = False
                break


# ----------------------------------------------------------------------------- facilities


def _normalise_crs(crs: str) -> str:
    key = str(crs).lower().replace("-", "").replace("_", "").replace(":", "").replace(" ", "")
    aliases = {"wgs84": "wgs84", "epsg4326": "wgs84", "4326": "wgs84", "gps": "wgs84",
               "gcj02": "gcj02", "amap": "gcj02", "bd09": "bd09", "baidu": "bd09",
               "cgcs2000": "cgcs2000", "epsg4490": "cgcs2000", "4490": "cgcs2000"}
    if key not in aliases:
        raise ValueError(
            f"unknown coordinate system {crs!r}; use wgs84, cgcs2000, gcj02 or bd09 "
            "(高德/腾讯 = gcj02, 百度 = bd09, 天地图/国家2000 = cgcs2000, GPS/OSM = wgs84)"
        )
    return aliases[key]


def _empty_facilities() -> gpd.GeoDataFrame:
    data = {c: pd.Series([], dtype=object) for c in FACILITY_COLUMNS if c != "geometry"}
    for c in ("beds", "nursing_beds", "floor_area_m2", "caregivers"):
        data[c] = pd.Series([], dtype=float)
    data["source_row"] = pd.Series([], dtype="int64")
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries([], crs=4326), crs=4326)


def _text_or_none(text: str) -> str | None:
    return None if _is_empty(text) else text


def read_facilities(
    path: str | Path,
    *,
    crs: str = "wgs84",
    sheet: str | int | None = None,
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
        is always WGS-84. A projected GeoPackage/shapefile is first
        reprojected to degrees.
    sheet
        Sheet name or 0-based number (layer for GPKG); default: the sheet
        whose header names the most known columns.
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
    crs = _normalise_crs(crs)
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found",
                          "check the path (relative paths start from the current folder) / 检查路径")
    return _read_checked_points(path, crs=crs, sheet=sheet, encoding=encoding, columns=columns,
                                study_area=study_area, kind_patterns=_load_kind_patterns(kinds_file))


def _read_checked_points(
    path: Path, *, crs: str, sheet: str | int | None, encoding: str | None, columns: Mapping[str, str] | None,
    study_area: Any, kind_patterns: _KindPatterns | None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict[str, Any]]:
    """The body of :func:`read_facilities`; ``kind_patterns`` None reads a plain point table."""
    index = _alias_index(_FACILITY_ALIASES, columns, path=path)
    table, crs_note = _load_facility_table(path, sheet=sheet, encoding=encoding, index=index)
    if not any(any(cells) for cells in table.rows) and not any(table.headers):
        raise _file_error(path, "文件中没有数据", "the file holds no rows",
                          "check that this is the facility list and that it was saved with data / 检查文件是否正确")
    column_of, unused = _map_columns(table.headers, index)
    has_geometry = table.geometries is not None and any(
        g is not None and not (isinstance(g, float)) and not g.is_empty for g in table.geometries)
    if not has_geometry and not _has_coordinates(set(column_of)):
        found = ", ".join(h for h in table.headers if h) or "(none / 无)"
        where = f" (sheet / 工作表 '{table.sheet}')" if table.sheet else ""
        raise InputDataError(
            _bilingual(f"找不到经度、纬度列{where}；表头为：{found}",
                       f"no longitude/latitude columns found{where}; headers found: {found}"),
            path=path,
            hint=("name the columns 经度/纬度 (or lng/lat, longitude/latitude), or pass columns={'your header': "
                  "'lon', ...}; a list with addresses only must be geocoded first, noting the coordinate system "
                  "/ 将列名改为“经度”“纬度”，或用 columns 参数指定；只有地址的名单需先取坐标并注明坐标系"),
        )

    results: list[_RowResult] = []
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
        results.append(_check_row(len(kept_rows) - 1, row_number, cells, raw_headers, column_of,
                                  kind_patterns, geometry))
    if study_area is not None:
        _check_study_area(results, study_area, crs)
    _check_duplicates(results, kept_rows)

    source_file = path.name
    stem = path.stem
    reject_records = []
    accepted: list[_RowResult] = []
    for result in results:
        if result.problems:
            for reason, column, detail in result.problems:
                if reason == "near_duplicate":
                    column = table.headers[column_of["name"]] if "name" in column_of else "name"
                reject_records.append({"source_file": source_file, "source_row": result.source_row,
                                       "column": column, "reason": reason, "detail": detail, "raw": result.raw})
        else:
            accepted.append(result)
    rejects = pd.DataFrame(reject_records, columns=list(REJECT_COLUMNS))
    rejects["source_row"] = rejects["source_row"].astype("int64")

    facilities = _facilities_frame(accepted, crs, stem=stem, source_file=source_file)
    flag_counts = Counter(flag for r in accepted for flag in r.flags)
    summary = {
        "source_file": str(path),
        "sheet": table.sheet,
        "header_row": table.header_row,
        "encoding": table.encoding,
        "crs": crs,
        "reprojected_from": crs_note,
        "columns": {table.headers[i]: name for name, i in sorted(column_of.items(), key=lambda item: item[1])},
        "unused_columns": unused,
        "rows_in": len(results),
        "accepted": len(accepted),
        "rejected": sum(1 for r in results if r.problems),
        "fixed": sum(1 for r in accepted if r.flags),
        "by_reason": dict(Counter(rejects["reason"])),
        "flags": dict(flag_counts),
        "kinds": {kind: int(has_kind(facilities, kind).sum()) for kind in KINDS} if len(facilities) else
                 {kind: 0 for kind in KINDS},
    }
    assert summary["rows_in"] == summary["accepted"] + summary["rejected"], summary
    return facilities, rejects, summary


def read_point_table(
    path: str | Path,
    *,
    crs: str = "wgs84",
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
    crs = _normalise_crs(crs)
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found", "check the path / 检查路径")
    points, rejects, summary = _read_checked_points(path, crs=crs, sheet=sheet, encoding=encoding, columns=columns,
                                                    study_area=study_area, kind_patterns=None)
    points.attrs["rejects"] = rejects.to_dict("records")
    points.attrs["summary"] = summary
    return points


def _facilities_frame(accepted: list[_RowResult], crs: str, *, stem: str, source_file: str) -> gpd.GeoDataFrame:
    """Build the facilities GeoDataFrame from accepted rows (coordinates converted to WGS-84)."""
    if not accepted:
        return _empty_facilities()
    lon, lat = coords.to_wgs84(np.array([r.lon for r in accepted]), np.array([r.lat for r in accepted]), crs)
    data = {
        "facility_id": [f"{stem}:{r.source_row}" for r in accepted],
        "name": [r.values.get("name", "").strip() for r in accepted],
        "kinds": [";".join(r.kinds) for r in accepted],
        "type_raw": [_text_or_none(r.values.get("type", "")) for r in accepted],
        "beds": [r.capacities["beds"] for r in accepted],
        "nursing_beds": [r.capacities["nursing_beds"] for r in accepted],
        "floor_area_m2": [r.capacities["floor_area_m2"] for r in accepted],
        "caregivers": [r.capacities["caregivers"] for r in accepted],
        "address": [_text_or_none(r.values.get("address", "")) for r in accepted],
        "town_name": [_text_or_none(r.values.get("town", "")) for r in accepted],
        "village_name": [_text_or_none(r.values.get("village", "")) for r in accepted],
        "unit_code": [_text_or_none(r.values.get("code", "")) for r in accepted],
        "source_file": [source_file] * len(accepted),
        "source_row": np.array([r.source_row for r in accepted], dtype="int64"),
        "flags": [";".join(r.flags) for r in accepted],
    }
    frame = pd.DataFrame(data)
    for column in ("beds", "nursing_beds", "floor_area_m2", "caregivers"):
        frame[column] = frame[column].astype(float)
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=4326)


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


# ----------------------------------------------------------------------------- administrative units


def _normalise_code(text: Any, *, tianditu: bool = False) -> str | None:
    """
    A division code as a string; 6- and 9-digit codes padded to 12 digits.

    ``tianditu`` strips the ``156`` country prefix of Tianditu-style codes.
    """
    value = _cell_text(text)
    if _is_empty(value):
        return None
    value = _nfkc(value)
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
    if tianditu and re.fullmatch(r"156\d{6}(\d{3}(\d{3})?)?", value):
        value = value[3:]
    if re.fullmatch(r"\d{6}", value):
        return value + "000000"
    if re.fullmatch(r"\d{9}", value):
        return value + "000"
    return value


def _level_from_code(code: str) -> str | None:
    """province / city / county / town / village from a 12-digit statistical code, else None."""
    if not re.fullmatch(r"\d{12}", code):
        return None
    if code[6:] == "000000":
        if code[2:6] == "0000":
            return "province"
        if code[4:6] == "00":
            return "city"
        return "county"
    if code[9:] == "000":
        return "town"
    return "village"


def _parent_from_code(code: str, level: str) -> str | None:
    if not re.fullmatch(r"\d{12}", code):
        return None
    if level == "village":
        return code[:9] + "000"
    if level == "town":
        return code[:6] + "000000"
    if level == "county":
        return code[:4] + "00000000"
    return None


def _level_word(text: str) -> str | None:
    key = _nfkc(text).lower()
    return _LEVEL_WORDS.get(key)


def _is_true(text: str) -> bool:
    return _nfkc(text).lower() in ("t", "true", "1", "yes", "y", "是")


def _read_unit_rows(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """Header and rows of a unit code table; third value tells whether it is a Vonng adcode table."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        sheets = _xlsx_sheets(path) if suffix != ".xls" else _xls_sheets(path)
        rows = sheets[0][1] if sheets else []
    else:
        rows = _read_csv_table(path, None).rows
    rows = [r for r in rows if any(r)]
    if not rows:
        raise _file_error(path, "文件为空", "the file is empty", "check the file / 检查文件内容")
    if re.fullmatch(r"\d{12}", _nfkc(rows[0][0])):
        width = len(rows[0])
        if width == len(_VONNG_COLUMNS):
            return list(_VONNG_COLUMNS), rows, True
        if width == len(_VONNG_COLUMNS) - 1:
            return [c for c in _VONNG_COLUMNS if c != "center"], rows, True
        raise _file_error(path, "代码表没有表头且列数无法识别", f"code table has no header and {width} columns",
                          "add a header row with code, name, level, parent_code, ur_code, longitude, latitude "
                          "/ 添加表头行")
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    header_index, headers, data_start = _find_header(rows, index)
    headers = list(headers)
    vonng = {"rank", "adcode", "dummy", "municipality"} <= {_normalise_header(h) for h in headers}
    return headers, rows[data_start:], vonng


def _units_from_table(path: Path, crs: str) -> gpd.GeoDataFrame:
    headers, rows, vonng = _read_unit_rows(path)
    if vonng and crs == "wgs84":
        warnings.warn(
            f"{path.name}: this looks like a Vonng adcode table, whose coordinates are GCJ-02; pass crs='gcj02' "
            "/ 该代码表坐标为 GCJ-02，请指定 crs='gcj02'", UserWarning, stacklevel=3,
        )
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    column_of, _ = _map_columns(headers, index)
    if "code" not in column_of:
        raise _file_error(
            path, f"找不到区划代码列；表头为：{', '.join(headers)}", f"no division code column; headers: "
            f"{', '.join(headers)}", "name the column 区划代码 or code / 将代码列命名为“区划代码”或 code",
        )

    def cell(row: list[str], name: str) -> str:
        i = column_of.get(name)
        return row[i] if i is not None and i < len(row) else ""

    fields = {name: [cell(row, name) for row in rows]
              for name in ("code", "name", "level", "parent_code", "ur_code", "lon", "lat", "virtual")}
    lon = np.array([_parse_degrees(v) if v else None for v in fields["lon"]], dtype=float)
    lat = np.array([_parse_degrees(v) if v else None for v in fields["lat"]], dtype=float)
    has_point = np.isfinite(lon) & np.isfinite(lat) & ~((lon == 0) & (lat == 0))
    geometry = np.full(len(rows), None, dtype=object)
    if has_point.any():
        wlon, wlat = coords.to_wgs84(lon[has_point], lat[has_point], crs)
        geometry[has_point] = shapely.points(wlon, wlat)
    return _finish_units(fields, geometry, gb_codes=False)


def _units_from_layer(path: Path, crs: str, layer: str | int | None) -> gpd.GeoDataFrame:
    table, _ = _read_geo_table(path, layer=layer, encoding=None)
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    column_of, _ = _map_columns(table.headers, index)
    if "code" not in column_of:
        raise _file_error(
            path, f"找不到区划代码属性；属性为：{', '.join(table.headers)}",
            f"no division code property; properties: {', '.join(table.headers)}",
            "add a property code (区划代码) with the 12-digit statistical code / 添加“区划代码”属性",
        )
    fields = {name: [(row[column_of[name]] if name in column_of else "") for row in table.rows]
              for name in ("code", "name", "level", "parent_code", "ur_code", "virtual")}
    series = gpd.GeoSeries(table.geometries, crs=4326)
    if crs in ("gcj02", "bd09"):
        series = coords.transform_geometries(series, crs, "wgs84")
    gb = _normalise_header(table.headers[column_of["code"]]) == "gb"
    return _finish_units(fields, np.asarray(series.values, dtype=object), gb_codes=gb)


def _finish_units(fields: Mapping[str, list[str]], geometry: np.ndarray, *, gb_codes: bool) -> gpd.GeoDataFrame:
    """Normalise codes, levels, parents and urban class; drop province/city and virtual rows."""
    codes = [_normalise_code(c, tianditu=gb_codes) for c in fields["code"]]
    levels, parents, keep = [], [], []
    for code, level_text, parent_text, virtual_text, name in zip(
            codes, fields["level"], fields["parent_code"], fields["virtual"], fields["name"]):
        level = _level_from_code(code) if code else None
        if level is None:
            level = _level_word(level_text) if level_text else None
        parent = _parent_from_code(code, level) if code and level else None
        if parent is None:
            parent = _normalise_code(parent_text, tianditu=gb_codes)
        virtual = _is_true(virtual_text) or (level == "county" and _nfkc(name) == "市辖区")
        keep.append(code is not None and level in UNIT_LEVELS and not virtual)
        levels.append(level)
        parents.append(parent)
    keep_mask = np.array(keep, dtype=bool)
    ur = pd.array([int(float(v)) if re.fullmatch(r"\d+(\.0+)?", _nfkc(v)) else pd.NA for v in fields["ur_code"]],
                  dtype="Int64")
    units = pd.DataFrame({
        "code": pd.Series(codes, dtype=object),
        "name": pd.Series([_text_or_none(n) for n in fields["name"]], dtype=object),
        "level": pd.Series(levels, dtype=object),
        "parent_code": pd.Series(parents, dtype=object),
        "ur_code": pd.Series(ur),
    })
    units["urban"] = pd.Series(units["ur_code"] < 200, dtype="boolean")
    result = gpd.GeoDataFrame(units, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)
    result = result.loc[keep_mask].drop_duplicates(subset="code", keep="first").reset_index(drop=True)
    return result[list(UNIT_COLUMNS)]


def read_units(path: str | Path, *, crs: str = "wgs84", layer: str | int | None = None) -> gpd.GeoDataFrame:
    """
    Read administrative units (county → town → village) from polygons or a code table.

    Parameters
    ----------
    path
        (a) a GeoJSON/GPKG/SHP layer with properties ``code``, ``name``,
        ``level``, ``parent_code``, ``ur_code`` (or 区划代码, 名称, 级别,
        上级代码, 城乡分类代码; Tianditu-style ``gb`` codes ``156`` + code are
        understood), polygons or points; or (b) a statistical division code
        table (统计用区划代码), e.g. the Vonng adcode CSVs with or without
        header; or a folder of such CSVs. Table coordinates are points, rows
        without coordinates get geometry None.
    crs
        Coordinate system of the input lon/lat (``wgs84``, ``cgcs2000``,
        ``gcj02``, ``bd09``). The Vonng adcode tables are GCJ-02.
    layer
        Layer name or number for GPKG.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`UNIT_COLUMNS`, EPSG:4326: ``code`` (str, 6- and
        9-digit codes padded to 12), ``level`` (county/town/village, taken
        from a 12-digit code: ``xxxxxx000000`` county, ``xxxxxxxxx000``
        town, else village), ``parent_code`` (likewise from the code),
        ``ur_code`` (Int64), ``urban`` (boolean, ur_code < 200, NA unknown).
        Province and city rows and virtual units (市辖区) are dropped.
    """
    path = Path(path)
    crs = _normalise_crs(crs)
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found", "check the path / 检查路径")
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise _file_error(path, "文件夹中没有 CSV 代码表", "the folder holds no CSV code tables",
                              "point to a code table or polygon file / 请指定代码表或边界文件")
        frames = [_units_from_table(f, crs) for f in files]
        combined = pd.concat(frames, ignore_index=True).drop_duplicates(subset="code", keep="first")
        return gpd.GeoDataFrame(combined.reset_index(drop=True), geometry="geometry", crs=4326)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".xlsx", ".xlsm", ".xls"):
        return _units_from_table(path, crs)
    if suffix in _GEO_SUFFIXES:
        return _units_from_layer(path, crs, layer)
    raise _file_error(path, f"不支持的文件类型 '{suffix}'", f"unsupported file type '{suffix}'",
                      "use .geojson, .gpkg, .shp or a .csv/.xlsx code table / 请使用上述格式之一")


def _ancestor_codes(code: str, level: str, parent_of: Mapping[str, str | None],
                    level_of: Mapping[str, str]) -> dict[str, str | None]:
    """village/town/county codes implied by one unit code (parents from the table, else from the code)."""
    chain: dict[str, str | None] = {"village": None, "town": None, "county": None}
    current: str | None = code
    current_level: str | None = level
    for _ in range(3):
        if current is None or current_level not in chain:
            break
        chain[current_level] = current
        parent = parent_of.get(current) or _parent_from_code(current, current_level)
        current = parent
        current_level = level_of.get(parent) if parent else None
        if current_level is None and parent is not None:
            current_level = _level_from_code(parent)
    return chain


def _match_town(name: str, county: str | None, towns: pd.DataFrame) -> str | None:
    """Code of the town whose name matches (exactly, else without suffix), within the county if known."""
    if _is_empty(name):
        return None
    if county is not None:
        in_county = towns[towns["parent_code"] == county]
        towns = in_county if len(in_county) else towns
    exact = towns[towns["name"].map(lambda n: _nfkc(str(n)) == _nfkc(name))]
    if len(exact) == 1:
        return exact["code"].iloc[0]
    core = _place_core(name)
    by_core = towns[towns["name"].map(lambda n: _place_core(str(n)) == core)]
    if len(by_core) == 1:
        return by_core["code"].iloc[0]
    return None


def assign_facilities_to_units(facilities: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """
    Attach village, town and county codes to each facility.

    The finest level is found, in order, (1) from the facility's
    ``unit_code`` when it is a known unit, (2) by polygon containment, and
    (3) for facilities still without a village, as the nearest village point
    within the same town (the town found by code, polygon or ``town_name``).
    Higher levels follow from the parent codes.

    Parameters
    ----------
    facilities
        Output of :func:`read_facilities` (EPSG:4326).
    units
        Output of :func:`read_units`.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``facilities`` with ``village_code``, ``town_code``,
        ``county_code`` (str or None) and ``unit_assignment``: ``code``,
        ``polygon``, ``nearest_village_point`` (also added to ``flags``),
        ``town_name`` (only the town was found, by its name) or ``none`` —
        the method that gave the finest level assigned.
    """
    result = facilities.copy()
    count = len(result)
    parent_of = dict(zip(units["code"], units["parent_code"]))
    level_of = dict(zip(units["code"], units["level"]))
    chains: list[dict[str, str | None]] = [{"village": None, "town": None, "county": None} for _ in range(count)]
    method = ["none"] * count
    points = result.geometry.to_crs(4326) if result.crs is not None else result.geometry.set_crs(4326)

    unit_codes = result["unit_code"] if "unit_code" in result.columns else pd.Series([None] * count)
    for i, raw in enumerate(unit_codes):
        code = _normalise_code(raw)
        if code and code in level_of:
            chains[i] = _ancestor_codes(code, level_of[code], parent_of, level_of)
            method[i] = "code"

    polygons = units[units.geometry.notna() & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    todo = [i for i in range(count) if method[i] == "none"]
    if todo and len(polygons):
        probe = gpd.GeoDataFrame({"position": todo}, geometry=points.iloc[todo].values, crs=4326)
        for level in UNIT_LEVELS[::-1]:  # village first: the finest polygon decides
            layer = polygons[polygons["level"] == level][["code", "geometry"]]
            if layer.empty:
                continue
            joined = gpd.sjoin(probe, layer, how="inner", predicate="intersects")
            for position, code in zip(joined["position"], joined["code"]):
                if method[position] == "none":
                    chains[position] = _ancestor_codes(code, level, parent_of, level_of)
                    method[position] = "polygon"

    towns = units[units["level"] == "town"]
    villages = units[(units["level"] == "village") & units.geometry.notna()]
    villages = villages[villages.geom_type == "Point"]
    town_names = result["town_name"] if "town_name" in result.columns else pd.Series([None] * count)
    flags = [str(f) if isinstance(f, str) else "" for f in result["flags"]] if "flags" in result.columns \
        else [""] * count
    villages_by_town: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    points_m = None
    if len(villages) and count:
        valid = points[points.notna() & ~points.is_empty]
        centre_lon = float(valid.x.mean()) if len(valid) else float(villages.geometry.x.mean())
        centre_lat = float(valid.y.mean()) if len(valid) else float(villages.geometry.y.mean())
        utm = coords.utm_crs_for(centre_lon, centre_lat)
        points_m = np.asarray(points.to_crs(utm).values)
        villages_m = villages.geometry.to_crs(utm)
        for town_code, group in villages_m.groupby(villages["parent_code"].to_numpy()):
            villages_by_town[town_code] = (villages.loc[group.index, "code"].to_numpy(), np.asarray(group.values))
    for i in range(count):
        if chains[i]["village"] is not None:
            continue
        town = chains[i]["town"]
        if town is None and len(towns):
            name = town_names.iloc[i]
            town = _match_town(name, chains[i]["county"], towns) if isinstance(name, str) else None
            if town is not None:
                chains[i] = _ancestor_codes(town, "town", parent_of, level_of)
                method[i] = "town_name"
        if town is None or town not in villages_by_town or points_m is None:
            continue
        point_m = points_m[i]
        if point_m is None or point_m.is_empty:
            continue
        village_codes, village_points = villages_by_town[town]
        nearest = village_codes[int(np.argmin(shapely.distance(village_points, point_m)))]
        chains[i] = _ancestor_codes(nearest, "village", parent_of, level_of)
        method[i] = "nearest_village_point"
        flags[i] = ";".join([f for f in flags[i].split(";") if f] + ["nearest_village_point"])

    result["village_code"] = [c["village"] for c in chains]
    result["town_code"] = [c["town"] for c in chains]
    result["county_code"] = [c["county"] for c in chains]
    result["unit_assignment"] = method
    result["flags"] = flags
    return result


# ----------------------------------------------------------------------------- validation report


def _reason_label(reason: str, lang: str) -> str:
    zh, en = REJECT_REASONS.get(reason, (reason, reason))
    return {"zh": f"{reason} {zh}", "en": f"{reason} ({en})"}.get(lang, f"{reason} {zh} / {en}")


def _flag_label(flag: str, lang: str) -> str:
    key = "unreadable_capacity" if flag.startswith("unreadable_") else flag
    zh, en = FLAG_CODES.get(key, (flag, flag))
    return {"zh": f"{flag} {zh}", "en": f"{flag} ({en})"}.get(lang, f"{flag} {zh} / {en}")


def validate_report(
    path: str | Path,
    *,
    crs: str = "wgs84",
    lang: str = "both",
    sheet: str | int | None = None,
    encoding: str | None = None,
    columns: Mapping[str, str] | None = None,
    study_area: Any = None,
    kinds_file: str | Path | None = None,
    max_rejects_shown: int = 20,
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """
    Check a facility file and describe the result in plain text (for ``eldercov validate``).

    Parameters
    ----------
    path, crs, sheet, encoding, columns, study_area, kinds_file
        As for :func:`read_facilities`.
    lang
        ``zh``, ``en`` or ``both``.
    max_rejects_shown
        How many reject lines to list (all are in the returned table).

    Returns
    -------
    text : str
        The report: rows read, accepted, fixed, rejected by reason, and the
        first rejects with row and column.
    rejects : pandas.DataFrame
    summary : dict
        As returned by :func:`read_facilities`.

    Raises
    ------
    InputDataError
        When the file cannot be read at all.
    """
    if lang not in ("zh", "en", "both"):
        raise ValueError("lang must be 'zh', 'en' or 'both'")
    _, rejects, summary = read_facilities(path, crs=crs, sheet=sheet, encoding=encoding, columns=columns,
                                          study_area=study_area, kinds_file=kinds_file)

    def say(zh: str, en: str) -> str:
        return {"zh": zh, "en": en}.get(lang, f"{zh} / {en}")

    lines = [say(f"设施表检查：{summary['source_file']}", f"Facility file check: {summary['source_file']}")]
    if summary["sheet"]:
        lines.append(say(f"工作表：{summary['sheet']}", f"Sheet: {summary['sheet']}"))
    if summary["header_row"]:
        lines.append(say(f"表头所在行：{summary['header_row']}", f"Header row: {summary['header_row']}"))
    if summary["encoding"]:
        lines.append(say(f"文本编码：{summary['encoding']}", f"Text encoding: {summary['encoding']}"))
    lines.append(say(f"坐标系：{summary['crs']}（已转换为 WGS-84）",
                     f"Coordinate system: {summary['crs']} (converted to WGS-84)"))
    recognised = ", ".join(f"{header}→{name}" for header, name in summary["columns"].items())
    lines.append(say(f"识别的列：{recognised}", f"Columns recognised: {recognised}"))
    if summary["unused_columns"]:
        unused = ", ".join(summary["unused_columns"])
        lines.append(say(f"未使用的列：{unused}", f"Columns not used: {unused}"))
    lines.append("")
    lines.append(say(f"读入行数：{summary['rows_in']}", f"Rows read: {summary['rows_in']}"))
    lines.append(say(f"通过：{summary['accepted']}（其中自动修正或推断：{summary['fixed']}）",
                     f"Accepted: {summary['accepted']} (of which fixed or inferred: {summary['fixed']})"))
    lines.append(say(f"剔除：{summary['rejected']}", f"Rejected: {summary['rejected']}"))
    if summary["by_reason"]:
        lines.append("  " + say("剔除原因（每行可有多个原因）：", "reasons (a row may have several):"))
        for reason, number in sorted(summary["by_reason"].items(), key=lambda item: -item[1]):
            lines.append(f"    {_reason_label(reason, lang)}: {number}")
    if summary["flags"]:
        lines.append("  " + say("修正与推断：", "fixes and inferences:"))
        for flag, number in sorted(summary["flags"].items(), key=lambda item: -item[1]):
            lines.append(f"    {_flag_label(flag, lang)}: {number}")
    kinds = ", ".join(f"{kind} {number}" for kind, number in summary["kinds"].items() if number)
    if kinds:
        lines.append(say(f"各类设施数：{kinds}", f"Facilities per kind: {kinds}"))
    if len(rejects):
        lines.append("")
        shown = min(len(rejects), max_rejects_shown)
        lines.append(say(f"前 {shown} 条剔除记录（共 {len(rejects)} 条）：",
                         f"First {shown} of {len(rejects)} reject lines:"))
        for record in rejects.head(max_rejects_shown).itertuples(index=False):
            where = say(f"第 {record.source_row} 行", f"row {record.source_row}")
            if record.column:
                where += ", " + say(f"列 '{record.column}'", f"column '{record.column}'")
            lines.append(f"  {where}: {record.reason} — {record.detail}")
        lines.append(say("完整剔除清单可用 write_rejects 写出为 CSV。",
                         "The full reject list can be written to CSV with write_rejects."))
    return "\n".join(lines) + "\n", rejects, summary
