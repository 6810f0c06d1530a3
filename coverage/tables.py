"""Read spreadsheet, CSV and GIS tables as rows of text: encodings, sheets, merged cells, the header below title rows."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage._errors import InputDataError

_HEADER_SCAN_ROWS = 10
_TABLE_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".csv", ".txt", ".tsv")
_GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".zip")
_EMPTY_WORDS = frozenset({"", "[]", "-", "--", "—", "——", "/", "\\", "无", "暂无", "n/a", "na", "nan", "null", "none", "?"})
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


# ----------------------------------------------------------------------------- cell values

_DMS_RE = re.compile(
    r"^([NSEW东西南北])?(\d+(?:\.\d+)?)(?:°|度)(?:(\d+(?:\.\d+)?)(?:′′|''|\"|″|秒)"
    r"|(\d+(?:\.\d+)?)(?:'|′|分)(?:(\d+(?:\.\d+)?)(?:′′|''|\"|″|秒)?)?)?([NSEW东西南北])?$",
    re.IGNORECASE,
)


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


def _text_or_none(text: str) -> str | None:
    return None if _is_empty(text) else text


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
