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
from coverage import kinds as kinds_registry
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
    "split_presence_only",
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
})
#: header sets that identify a POI export of a map service, with the coordinate system it writes
_POI_SIGNATURES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("Amap / 高德", frozenset({"typecode", "pname", "cityname", "adname"}), "gcj02"),
    ("Amap / 高德", frozenset({"typecode", "location"}), "gcj02"),
    ("Baidu / 百度", frozenset({"uid", "detail_info.tag"}), "bd09"),
    ("Baidu / 百度", frozenset({"uid", "street_id"}), "bd09"),
    ("Baidu / 百度", frozenset({"uid", "province", "city", "area"}), "bd09"),
    ("Tencent / 腾讯", frozenset({"title", "category", "ad_info.adcode"}), "gcj02"),
    ("Tencent / 腾讯", frozenset({"title", "category", "adcode"}), "gcj02"),
)
#: names of the sub-points map services list beside a facility ("XX养老院(东门)", "XX养老院-停车场")
_SUB_POI_RE = re.compile(
    r"([(\-—·](东|南|西|北|正|侧|后|东南|东北|西南|西北)?(门|大门|出入口|入口|出口|停车场|地下停车场|停车库|公交站|充电站)\)?$)"
    r"|((东|南|西|北|正|侧|后)(门|大门)$)|((出入口|停车场|地下停车场|停车库)$)")
#: name cells that mark a total row (合计/小计/总计), compared without spaces
_TOTAL_ROW_RE = re.compile(r"^(合计|小计|总计|共计|总数|累计|total|subtotal|sum)[:：]?$", re.I)
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
_EMPTY_WORDS = frozenset({"", "[]", "-", "--", "—", "——", "/", "\\", "无", "暂无", "n/a", "na", "nan", "null", "none", "?"})
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
    """Normalised type names and keywords, each with the kind it indicates, and the generic type names."""

    patterns: tuple[tuple[str, str], ...]
    exact: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    generic: frozenset[str] = frozenset()
    not_facility: frozenset[str] = frozenset()


def _load_kind_patterns(kinds_file: str | Path | None = None) -> _KindPatterns:
    """The registry's type names and keywords (``coverage/kinds.yaml``), extended by ``kinds_file`` when given."""
    registry = kinds_registry.registry()
    merged: dict[str, set[str]] = {kind.id: set() for kind in registry.kinds}
    exact: dict[str, set[str]] = {}
    for kind in registry.kinds:
        for text in kind.types + kind.keywords:
            merged[kind.id].add(kinds_registry.normalise_pattern(text))
        for text in kind.types:
            exact.setdefault(kinds_registry.normalise_pattern(text).lower(), set()).add(kind.id)
    generic = set(registry.generic_types)
    if kinds_file is not None:
        extra, extra_generic = kinds_registry.read_extension(kinds_file)
        generic |= extra_generic
        for kind_id, texts in extra.items():
            for text in texts:
                pattern = kinds_registry.normalise_pattern(text)
                if pattern:
                    merged[kind_id].add(pattern)
                    exact.setdefault(pattern.lower(), set()).add(kind_id)
    order = registry.ids
    patterns = tuple((pattern, kind) for kind in order for pattern in sorted(merged[kind]) if pattern)
    exact_sorted = {text: tuple(k for k in order if k in found) for text, found in exact.items()}
    return _KindPatterns(patterns, MappingProxyType(exact_sorted), frozenset(generic), registry.not_facility_types)


def _kinds_in_text(text: str, kind_patterns: _KindPatterns) -> tuple[str, ...]:
    """Kinds named in a type or name text (exact type name, else keywords), in ``config.KINDS`` order."""
    compact = re.sub(r"\s+", "", _nfkc(text))
    if not compact:
        return ()
    parts = [p for p in re.split(r"[;,/、|+]+", compact.lower()) if p]
    if parts and all(p in KINDS for p in parts):
        return tuple(kind for kind in KINDS if kind in parts)
    if parts and all(p in kind_patterns.exact for p in parts):
        found_exact = {kind for p in parts for kind in kind_patterns.exact[p]}
        return tuple(kind for kind in KINDS if kind in found_exact)
    compact = _NEGATION_RE.sub("", compact)
    lowered = compact.lower()
    hits: list[tuple[int, int, str]] = []
    for pattern, kind in kind_patterns.patterns:
        needle = pattern.lower()
        start = lowered.find(needle)
        while start >= 0:
            hits.append((start, start + len(needle), kind))
            start = lowered.find(needle, start + 1)
    found = {
        kind for start, end, kind in hits
        if not any(s2 <= start and end <= e2 and (e2 - s2) > (end - start) and k2 != kind for s2, e2, k2 in hits)
    }
    return tuple(kind for kind in KINDS if kind in found)


#: separators between the levels of a POI category path (Amap/Baidu ';', Tencent ':', others '>' '|')
_CATEGORY_PATH_RE = re.compile(r"[;；:：>|]+")


def _category_levels(type_text: str) -> list[str]:
    """The levels of a POI category path, most specific first ("生活服务;养老院" → ["养老院", "生活服务"])."""
    levels = [p for p in _CATEGORY_PATH_RE.split(_nfkc(type_text)) if p.strip()]
    return levels[::-1] if len(levels) > 1 else levels


def _is_generic(text: str, kind_patterns: _KindPatterns) -> bool:
    return re.sub(r"\s+", "", _nfkc(text)).lower() in kind_patterns.generic


def _kinds_of_type(type_text: str, kind_patterns: _KindPatterns) -> tuple[tuple[str, ...], str]:
    """
    Kinds from a type cell, and how the type read: ``named``, ``generic`` or ``unknown``.

    A category path ("生活服务;社会福利;养老院") is read level by level from the
    most specific; levels that are generic words are passed over.
    """
    kinds = _kinds_in_text(type_text, kind_patterns)
    levels = _category_levels(type_text)
    if any(re.sub(r"\s+", "", _nfkc(level)).lower() in kind_patterns.not_facility for level in levels):
        return (), "not_facility"
    if len(levels) > 1:
        per_level = [_kinds_in_text(level, kind_patterns) for level in levels]
        if all(per_level) and not any(_is_generic(level, kind_patterns) for level in levels):
            return kinds, "named"  # a list of services ("日间照料中心;幸福食堂"), not a category path
        for level in levels:
            if _is_generic(level, kind_patterns):
                continue
            found = _kinds_in_text(level, kind_patterns)
            if found:
                return found, "named"
        return (), ("generic" if all(_is_generic(level, kind_patterns) for level in levels) else "unknown")
    if kinds:
        return kinds, "named"
    return (), ("generic" if _is_generic(type_text, kind_patterns) else "unknown")


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


def _wants_all_sheets(sheet: Any) -> bool:
    return isinstance(sheet, (list, tuple)) or (isinstance(sheet, str) and sheet.strip().lower() in ("all", "*", "全部"))


def _load_facility_tables(path: Path, *, sheet: Any, encoding: str | None,
                          index: Mapping[str, tuple[str, int]]) -> tuple[list[_Table], str | None]:
    """
    Read any supported facility file into tables with headers located.

    One table (the chosen sheet, or the sheet whose header names the most
    known columns), or, with ``sheet="all"`` or a list of sheet names, every
    sheet with a facility header (a workbook with one sheet per town).
    """
    suffix = path.suffix.lower()
    if suffix in _GEO_SUFFIXES:
        table, note = _read_geo_table(path, layer=sheet if not _wants_all_sheets(sheet) else None, encoding=encoding)
        return [table], note
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
    names = [name for name, _ in sheets]
    wanted_all = _wants_all_sheets(sheet)
    if sheet is not None and suffix not in (".csv", ".txt", ".tsv"):
        if isinstance(sheet, (list, tuple)):
            missing = [s for s in sheet if s not in names]
            if missing:
                raise _file_error(path, f"没有名为 {missing} 的工作表", f"there are no sheets named {missing}",
                                  f"sheets in the file / 文件中的工作表: {', '.join(names)}")
            sheets = [pair for pair in sheets if pair[0] in sheet]
        elif wanted_all:
            pass
        elif isinstance(sheet, int):
            if not 0 <= sheet < len(sheets):
                raise _file_error(path, f"没有第 {sheet} 个工作表", f"there is no sheet number {sheet} (0-based)",
                                  f"sheets in the file / 文件中的工作表: {', '.join(names)}")
            sheets = [sheets[sheet]]
        else:
            if sheet not in names:
                raise _file_error(path, f"没有名为 '{sheet}' 的工作表", f"there is no sheet named '{sheet}'",
                                  f"sheets in the file / 文件中的工作表: {', '.join(names)}")
            sheets = [sheets[names.index(sheet)]]
    scored = []
    for _, table in sheets:
        header_index, headers, data_start = _find_header(table.rows, index)
        fields = _fields_in(headers, index)
        key = (_has_coordinates(fields), len(fields))
        table.headers = headers
        table.header_row = table.row_numbers[header_index] if table.rows else None
        table.rows, table.row_numbers = table.rows[data_start:], table.row_numbers[data_start:]
        scored.append((key, table, fields))
    if wanted_all and len(scored) > 1:
        # every sheet that has a facility header (a name and a way to place it); notes and summaries are skipped
        chosen = [table for _, table, fields in scored
                  if "name" in fields and (_has_coordinates(fields) or fields & {"town", "village", "code", "address"})]
        if chosen:
            return chosen, None
    best = max(scored, key=lambda item: item[0])[1] if scored else None
    return [best], None


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


def _poi_source(headers: Sequence[str]) -> tuple[str, str] | None:
    """(service name, coordinate system) when the headers are those of a map service's POI export."""
    present = {_normalise_header(h) for h in headers if h}
    for label, signature, system in _POI_SIGNATURES:
        if {_normalise_header(h) for h in signature} <= present:
            return label, system
    return None


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
    }
    frame = pd.DataFrame(data)
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


# ----------------------------------------------------------------------------- administrative units


def _normalise_code(text: Any, *, tianditu: bool = False) -> str | None:
    """
    A division code as a string; 6- and 9-digit codes padded to 12 digits.

    Codes are read by :func:`coverage.divisions.normalise_code` (``420116.0``,
    full-width digits, spaces, ``4.20116E+11``); ``tianditu`` strips the
    ``156`` country prefix of Tianditu-style codes (without it a ``156``
    prefix is kept, as written). Text that is no 6-, 9- or 12-digit code (a
    user's own unit ids) is returned as it is, a ``.0`` tail dropped.
    """
    from coverage import divisions

    value = _cell_text(text)
    if _is_empty(value):
        return None
    value = _nfkc(value)
    code = divisions.normalise_code(value, tianditu=tianditu)
    if code is not None:
        return code.ljust(12, "0")
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
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


#: endings of village/community committee names in the statistical code tables ("XX村委会" → "XX村")
_COMMITTEE_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("村民委员会", "村"), ("居民委员会", ""), ("村委会", "村"), ("居委会", ""), ("委员会", ""),
)


def _village_core(name: str) -> str:
    """A village/community name as addresses write it ("松林村村委会" → "松林村", "望江社区居委会" → "望江社区")."""
    text = re.sub(r"\s+", "", _nfkc(str(name)))
    for suffix, replacement in _COMMITTEE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            if replacement and not text.endswith(replacement) and not text.endswith("社区"):
                text += replacement
            break
    return text


class _UnitNameMatcher:
    """Find a village or town of the units table named inside a text (village column, address, name)."""

    def __init__(self, units: pd.DataFrame) -> None:
        villages = units[units["level"] == "village"]
        towns = units[units["level"] == "town"]
        self._villages = [(_village_core(n), str(c), p) for n, c, p in
                          zip(villages["name"], villages["code"], villages["parent_code"]) if len(_village_core(n)) >= 2]
        self._villages.sort(key=lambda item: -len(item[0]))  # the longest name first ("大松林村" before "松林村")
        self._towns = [(str(n), _place_core(str(n)), str(c)) for n, c in zip(towns["name"], towns["code"])]

    def town(self, pieces: Sequence[Any]) -> str | None:
        """The one town whose full name (or core, for the town column) appears in the texts, else None."""
        for position, piece in enumerate(pieces):
            if not isinstance(piece, str) or _is_empty(piece):
                continue
            text = _nfkc(piece)
            found = {code for name, core, code in self._towns
                     if _nfkc(name) in text or (position == 0 and len(core) >= 2 and core == _place_core(text))}
            if len(found) == 1:
                return found.pop()
        return None

    def village(self, pieces: Sequence[Any], *, town: str | None, town_text: Any = None) -> str | None:
        """
        The village named in the first text that names exactly one (within ``town`` when given).

        Without a known town, the town may be read from the same texts
        (addresses such as "示例县白沙镇松林村4组"); a village name that occurs in
        several towns and no town to tell them apart gives None.
        """
        if town is None:
            town = self.town([town_text, *pieces])
        for piece in pieces:
            if not isinstance(piece, str) or _is_empty(piece):
                continue
            text = re.sub(r"\s+", "", _nfkc(piece))
            hits = [(core, code) for core, code, parent in self._villages
                    if core in text and (town is None or parent == town)]
            if not hits:
                continue
            longest = len(hits[0][0])
            codes = {code for core, code in hits if len(core) == longest}
            if len(codes) == 1:
                return codes.pop()
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
        ``village_name`` (the village named in the village column, the
        address or the facility's name, within its town), ``town_name``
        (only the town was found, by its name) or ``none`` — the method that
        gave the finest level assigned. Rows without coordinates
        (presence-only) are placed by code and names only.
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

    # rows still without a village (presence-only rows above all): the village named in the village
    # column, the address or the facility's own name ("…镇…村"), within the town when it is known
    todo = [i for i in range(count) if chains[i]["village"] is None]
    if todo:
        matcher = _UnitNameMatcher(units)
        texts = {key: (result[key] if key in result.columns else pd.Series([None] * count))
                 for key in ("village_name", "address", "name", "town_name")}
        for i in todo:
            pieces = [texts[key].iloc[i] for key in ("village_name", "address", "name")]
            found = matcher.village(pieces, town=chains[i]["town"], town_text=texts["town_name"].iloc[i])
            if found is None and chains[i]["town"] is None:
                town = matcher.town([texts["town_name"].iloc[i], texts["address"].iloc[i], texts["name"].iloc[i]])
                if town is not None:
                    chains[i] = _ancestor_codes(town, "town", parent_of, level_of)
                    method[i] = "town_name"
                continue
            if found is not None:
                chains[i] = _ancestor_codes(found, "village", parent_of, level_of)
                method[i] = "village_name"

    result["village_code"] = [c["village"] for c in chains]
    result["town_code"] = [c["town"] for c in chains]
    result["county_code"] = [c["county"] for c in chains]
    result["unit_assignment"] = method
    result["flags"] = flags
    return result


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
    crs: str | None = None,
    lang: str = "both",
    sheet: Any = None,
    encoding: str | None = None,
    columns: Mapping[str, str] | None = None,
    study_area: Any = None,
    kinds_file: str | Path | None = None,
    max_rejects_shown: int = 10,
    max_types_shown: int = 60,
) -> tuple[str, pd.DataFrame, dict[str, Any]]:
    """
    Check a facility file and describe the result in plain text (for ``eldercov validate``).

    The report lists, for each distinct value of the type column, how many
    rows carry it and which kind they got (or why none), so a registry of
    thousands of rows reads in one screen; then the counts by reason and a
    few example rejects (all are in the returned table).

    Parameters
    ----------
    path, crs, sheet, encoding, columns, study_area, kinds_file
        As for :func:`read_facilities`.
    lang
        ``zh``, ``en`` or ``both``.
    max_rejects_shown
        How many example reject lines to list per reason.
    max_types_shown
        How many distinct type values to list (the most frequent first).

    Returns
    -------
    text : str
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

    labels = kinds_registry.registry().labels("en" if lang == "en" else "zh")
    lines = [say(f"设施表检查：{summary['source_file']}", f"Facility file check: {summary['source_file']}")]
    if summary["poi_source"]:
        lines.append(say(f"识别为{summary['poi_source']} POI 导出表", f"Recognised as a {summary['poi_source']} POI export"))
    if summary["sheet"]:
        lines.append(say(f"工作表：{summary['sheet']}", f"Sheet(s): {summary['sheet']}"))
    if summary["header_row"]:
        lines.append(say(f"表头所在行：{summary['header_row']}", f"Header row: {summary['header_row']}"))
    if summary["encoding"]:
        lines.append(say(f"文本编码：{summary['encoding']}", f"Text encoding: {summary['encoding']}"))
    source_zh, source_en = {"declared": ("按指定", "as declared"), "default": ("未指定，按 WGS-84", "not stated: WGS-84")}.get(
        summary["crs_source"], (f"按{summary['crs_source']}", f"from the {summary['crs_source']}"))
    lines.append(say(f"坐标系：{summary['crs']}（{source_zh}；已转换为 WGS-84）",
                     f"Coordinate system: {summary['crs']} ({source_en}; converted to WGS-84)"))
    recognised = ", ".join(f"{header}→{name}" for header, name in summary["columns"].items())
    lines.append(say(f"识别的列：{recognised}", f"Columns recognised: {recognised}"))
    if summary["unused_columns"]:
        unused = ", ".join(summary["unused_columns"])
        lines.append(say(f"未使用的列：{unused}", f"Columns not used: {unused}"))
    lines.append("")
    lines.append(say(
        f"读入 {summary['rows_in']} 行 = 有坐标 {summary['located']} + 仅计存在（无坐标）{summary['presence_only']}"
        f" + 剔除 {summary['rejected']}",
        f"Rows read {summary['rows_in']} = located {summary['located']} + presence-only (no coordinates) "
        f"{summary['presence_only']} + rejected {summary['rejected']}"))
    types = summary.get("types") or {}
    if types:
        lines.append("")
        lines.append(say("按类型列的取值（行数 → 判定的类别）：", "By value of the type column (rows → kind given):"))
        ordered = sorted(types.items(), key=lambda item: (-item[1]["rows"], item[0]))
        for type_text, entry in ordered[:max_types_shown]:
            outcome = []
            for kinds, number in entry["kinds"].most_common():
                names = "+".join(labels.get(k, k) for k in kinds.split(";") if k) if lang != "en" else kinds
                outcome.append(f"{names} {number}")
            for flag, number in entry["flags"].most_common():
                outcome.append(say(f"其中按名称判断 {number}", f"of which from the name {number}"))
            for reason, number in entry["reasons"].most_common():
                outcome.append(f"{_reason_label(reason, lang)} {number}")
            lines.append(f"  {type_text:<24} {entry['rows']:>6}  → {'; '.join(outcome)}")
        if len(ordered) > max_types_shown:
            rest = sum(entry["rows"] for _, entry in ordered[max_types_shown:])
            lines.append(say(f"  ……另有 {len(ordered) - max_types_shown} 种类型值，共 {rest} 行",
                             f"  … {len(ordered) - max_types_shown} more type values, {rest} rows"))
    if summary["flags"]:
        lines.append("")
        lines.append(say("修正与推断（行数）：", "Fixes and inferences (rows):"))
        for flag, number in sorted(summary["flags"].items(), key=lambda item: -item[1]):
            lines.append(f"  {_flag_label(flag, lang)}: {number}")
    kinds = ", ".join(f"{labels.get(kind, kind)} {number}" for kind, number in summary["kinds"].items() if number)
    if kinds:
        lines.append(say(f"各类设施数（一处可有多类）：{kinds}", f"Facilities per kind (one may have several): {kinds}"))
    if len(rejects):
        lines.append("")
        lines.append(say("剔除原因（每行可有多个原因）：", "Reject reasons (a row may have several):"))
        for reason, group in rejects.groupby("reason", sort=False):
            lines.append(f"  {_reason_label(reason, lang)}: {len(group)}")
            if reason == "unknown_kind" and types:
                continue  # listed by type value above
            for record in group.head(max_rejects_shown).itertuples(index=False):
                where = say(f"第 {record.source_row} 行", f"row {record.source_row}")
                if record.column:
                    where += ", " + say(f"列 '{record.column}'", f"column '{record.column}'")
                lines.append(f"    {where}: {record.detail}")
            if len(group) > max_rejects_shown:
                lines.append(say(f"    ……另有 {len(group) - max_rejects_shown} 行，见剔除清单",
                                 f"    … {len(group) - max_rejects_shown} more rows in the rejects file"))
    return "\n".join(lines) + "\n", rejects, summary
