"""Lay out the result workbook: answer-first 总览, number formats, fills, column widths and print set-up.

:func:`coverage.report.write_excel` prepares and localises the tables; this
module turns them into XlsxWriter sheets that a planner can read on screen and
print on A4 (landscape, one page wide, header row repeated). Nothing is
computed here except display text: the values in the cells are the values of
the tables, only their number formats change.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage._io import atomic_path
from coverage.catalogue import METRICS
from coverage.labels import LEVEL_EN, LEVEL_ZH, coordinate_columns

#: fills of a target's result: green met, red missed, grey no data
STATUS_FILLS: Mapping[str, str] = {"pass": "C6EFCE", "fail": "FFC7CE", "no data": "D9D9D9"}
#: font colours matching :data:`STATUS_FILLS`
STATUS_FONTS: Mapping[str, str] = {"pass": "006100", "fail": "9C0006", "no data": "404040"}
HEADER_FILL = "DDEBF7"

#: answer-first columns of the 总览 sheet (targets), in order; ``label`` is label_zh or label_en
OVERVIEW_COLUMNS: tuple[str, ...] = (
    "label", "required", "actual", "status", "gap", "gap_text", "document", "year", "detail_zh",
)
#: columns of the 指标说明 sheet: ids, metric names and codes of each target
TARGET_NOTES_COLUMNS: tuple[str, ...] = (
    "label", "target_id", "label_en", "set", "locality", "document", "metric", "kinds", "level", "scope",
    "threshold", "unit", "comparison", "required", "year", "quote",
)

#: columns holding running text: wrapped, wider
TEXT_COLUMNS = frozenset({
    "detail_zh", "detail", "quote", "raw", "example_names", "label_zh", "label_en", "label", "document",
    "address", "value", "parameter", "gap_text", "town_names", "source_rows", "new_unit_codes",
    "units_newly_covered", "note", "flags",
})
_PERSONS = frozenset({
    "elderly", "elderly_uncovered", "elderly_nearest", "gain", "new_persons", "persons_in_reach",
    "cumulative_new_persons", "cumulative_covered", "raster_total", "census_total", "served_elderly",
})
_WHOLE = frozenset({
    "beds", "nursing_beds", "caregivers", "nodes", "facilities_total", "n_records", "rank",
    "new_demand_points", "source_row", "component", "year", "n_new_units", "candidate",
})
_METRES = frozenset({"distance_m", "access_m", "nearest_existing_m", "floor_area_m2", "seconds", "walk_seconds"})


def column_format(column: str) -> str | None:
    """
    Excel number format of a table column (internal name), or None for General.

    Shares as percentages, persons and beds as whole numbers, coordinates with
    6 decimals (≈ 0.1 m).
    """

    if column in coordinate_columns():
        return "0.000000"
    if column.startswith("share") or column in ("covered_share",):
        return "0.0%"
    if column in _PERSONS or column.startswith("elderly_within") or column.startswith("cumulative_"):
        return "#,##0"
    if column in _WHOLE or column.startswith("n_"):
        return "0"
    if column in _METRES:
        return "#,##0"
    if column == "factor":
        return "0.000"
    if column in ("walk_speed_mps", "name_similarity"):
        return "0.00"
    if column == "minutes":
        return "0.0"
    return None


# =============================================================================================
# 总览 and 指标说明 from the targets table
# =============================================================================================


def _unit_text(gap_unit: str, lang: str) -> str:
    """'张/千名老人 / beds per 1,000 elderly' → the part in ``lang``."""
    parts = [p.strip() for p in str(gap_unit).split(" / ")]
    if lang == "en" and len(parts) > 1:
        return parts[1]
    return parts[0]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


_NEED = re.compile(r"距目标还差约\s*([\d,.]+)\s*([^；;，,。]+)")


def _gap_text(row: Mapping, lang: str) -> str:
    """What would close a target's gap, in words: persons to reach, units or facilities to add."""

    status, gap = row["status"], row["gap"]
    if status == "pass":
        return "已达标" if lang == "zh" else "met"
    if status != "fail" or gap is None or not np.isfinite(gap):
        return "需补充数据（见说明）" if lang == "zh" else "data needed (see notes)"
    spec = METRICS.get(row["metric"])
    how = spec.gap if spec is not None else "ratio"
    if how == "persons":
        within = ""
        if np.isfinite(row.get("threshold", np.nan)):
            given = row.get("unit")
            unit = {"min": ("分钟", "min"), "m": ("米", "m")}.get(given, (given, given))
            within = (f"（步行{row['threshold']:g}{unit[0]}内）" if lang == "zh"
                      else f" within {row['threshold']:g} {unit[1]}")
        return f"再覆盖 {gap:,.0f} 名老人{within}" if lang == "zh" else f"{gap:,.0f} more elderly{within}"
    if how == "units":
        if row["metric"] == "size_tier":
            return f"{gap:.0f} 个设施需达到面积标准" if lang == "zh" else f"{gap:.0f} facilities to enlarge"
        level = row.get("level", "")
        if lang == "zh":
            return f"还需 {gap:.0f} 个{LEVEL_ZH.get(level, level)}达到要求"
        return f"{gap:.0f} more {LEVEL_EN.get(level, level)} units"
    unit = _unit_text(row.get("gap_unit", ""), lang)
    found = _NEED.search(str(row.get("detail_zh", "")))
    if lang == "zh":
        text = f"还差 {gap:,.1f} {unit}"
        return f"{text}，约需 {found.group(1)} {found.group(2).strip()}" if found else text
    text = f"{gap:,.1f} {unit} short"
    return f"{text} (≈ {found.group(1)} more, see notes)" if found else text


def _row_formats(row: Mapping, lang: str) -> dict[str, str]:
    """Number formats of required / actual / gap for one target: % for shares, the unit spelled out otherwise."""

    spec = METRICS.get(row["metric"])
    unit = _unit_text(row.get("gap_unit", ""), lang)
    share = spec.share if spec is not None else False
    how = spec.gap if spec is not None else "ratio"
    value = "0.0%" if share else f"0.0 {_quoted(unit)}"
    if how == "persons":
        gap = f"#,##0 {_quoted('人' if lang == 'zh' else 'persons')}"
    elif how == "units":
        gap = f"0 {_quoted(unit)}"
    else:
        gap = f"0.0 {_quoted(unit)}"
    return {"required": value, "actual": value, "gap": gap}


def overview_frames(targets: pd.DataFrame, lang: str) -> tuple[pd.DataFrame, list[dict[str, str]], pd.DataFrame]:
    """
    Split the targets table into the answer-first 总览 table and the 指标说明 table.

    Parameters
    ----------
    targets
        Columns of :data:`coverage.catalogue.RESULT_COLUMNS` (internal names).
    lang
        ``zh`` or ``en``: which target label leads and the language of the 差距 text.

    Returns
    -------
    overview, formats, notes
        ``overview``: :data:`OVERVIEW_COLUMNS` (``label`` renamed to
        ``label_zh``/``label_en``); ``formats``: per row, the number formats
        of ``required``, ``actual`` and ``gap``; ``notes``:
        :data:`TARGET_NOTES_COLUMNS` (ids, metric codes, quotes).
    """
    label = "label_zh" if lang == "zh" else "label_en"
    records = targets.to_dict("records")
    overview = pd.DataFrame({
        label: targets[label].to_numpy(),
        "required": targets["required"].to_numpy(),
        "actual": targets["actual"].to_numpy(),
        "status": targets["status"].to_numpy(),
        "gap": targets["gap"].to_numpy(),
        "gap_text": [_gap_text(r, lang) for r in records],
        "document": targets["document"].to_numpy(),
        "year": targets["year"].to_numpy(),
        "detail_zh": targets["detail_zh"].to_numpy(),
    })
    formats = [_row_formats(r, lang) for r in records]
    other = "label_en" if lang == "zh" else "label_zh"
    notes = targets[[label, "target_id", other, *[c for c in TARGET_NOTES_COLUMNS[3:] if c in targets.columns]]]
    return overview, formats, notes.reset_index(drop=True)


# =============================================================================================
# Sheets
# =============================================================================================


@dataclass
class SheetSpec:
    """
    One sheet to lay out.

    Attributes
    ----------
    name
        Sheet name (≤ 31 characters).
    frame
        Localised table (display headers and values).
    columns
        Internal column name of each column of ``frame``, in order.
    status
        Raw result (``pass`` / ``fail`` / ``no data``) per row when the table lists targets.
    row_formats
        Per row, internal column → number format (overrides :func:`column_format`).
    headline
        Rows above the table: (label, value, number format or None, status for a fill or None), ...
    cell_status
        Per row, internal column → raw status of that cell alone (its fill and font colour).
    """

    name: str
    frame: pd.DataFrame
    columns: list[str]
    status: list[str] | None = None
    row_formats: list[dict[str, str]] | None = None
    headline: list[list[tuple]] = field(default_factory=list)
    cell_status: list[dict[str, str]] | None = None


def headline_rows(items: Sequence[Mapping], statuses: Sequence[str] | None, lang: str) -> list[list[tuple]]:
    """
    Lines of the headline block: each item's label and value, then targets met / missed / no data.

    Parameters
    ----------
    items
        Dicts with ``zh``, ``en`` (labels), ``value`` and ``kind`` (``share``, ``persons`` or ``text``).
    statuses
        Result of every target, or None when the study has no targets.
    lang
        ``zh`` or ``en``.
    """
    persons = '#,##0 "人"' if lang == "zh" else '#,##0 "persons"'
    rows = []
    for item in items:
        fmt = {"share": "0.0%", "persons": persons}.get(item.get("kind"))
        rows.append([(item[lang], None, None), (item["value"], fmt, None)])
    if statuses is not None:
        counts = {s: sum(1 for v in statuses if v == s) for s in STATUS_FILLS}
        if lang == "zh":
            names = {"pass": "达标", "fail": "未达标", "no data": "无数据"}
            line = [(f"政策指标（共 {len(statuses)} 项）", None, None)]
        else:
            names = {"pass": "met", "fail": "missed", "no data": "no data"}
            line = [(f"policy targets ({len(statuses)})", None, None)]
        line += [(f"{names[s]} {counts[s]}", None, s) for s in STATUS_FILLS]
        rows.append(line)
    return rows


def _text_width(value) -> float:
    """Display width in Excel character units: CJK characters count twice."""
    text = str(value)
    return sum(2.0 if ord(ch) > 0x2E80 else 1.0 for ch in text)


def _display_width(value, fmt: str | None) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if fmt and "%" in fmt:
            return 7.0
        if fmt == "0.000000":
            return 11.0
        quoted = re.findall(r'"([^"]*)"', fmt or "")
        return min(len(f"{value:,.1f}"), 12) + sum(_text_width(q) for q in quoted)
    return _text_width(value)


def _cell_value(value):
    if value is None:
        return None
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _escape_header(text: str) -> str:
    """Page-header text for Excel/LibreOffice: '&' starts a field code, so it is doubled."""
    return text.replace("&", "&&")


#: characters Excel refuses in a sheet name
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
#: Excel keeps at most this many characters of a page header or footer, field codes included
_HEADER_MAX = 255


def _sheet_name(name: str, used: set[str]) -> str:
    """A sheet name Excel accepts (≤ 31 characters, none of ``[]:*?/\\``), unique in the workbook (case-blind)."""
    base = _SHEET_NAME_FORBIDDEN.sub("_", str(name)).strip("'")[:31] or "Sheet"
    candidate, k = base, 1
    while candidate.lower() in used:
        candidate = f"{base[:31 - len(str(k))]}{k}"
        k += 1
    used.add(candidate.lower())
    return candidate


class _Formats:
    """The workbook's cell formats, one per distinct set of properties (XlsxWriter keeps each it is given)."""

    def __init__(self, book):
        self._book = book
        self._made: dict = {}

    def __call__(self, **properties):
        properties = {k: v for k, v in properties.items() if v is not None and v is not False}
        if not properties:
            return None
        key = tuple(sorted(properties.items()))
        if key not in self._made:
            self._made[key] = self._book.add_format(properties)
        return self._made[key]


def _date_format(value) -> str | None:
    """Number format of a date or time cell (a registry's 登记日期 read from Excel), None for other values."""
    if isinstance(value, _dt.datetime):
        return "yyyy-mm-dd" if value.time() == _dt.time(0) else "yyyy-mm-dd hh:mm"
    if isinstance(value, _dt.date):
        return "yyyy-mm-dd"
    if isinstance(value, _dt.time):
        return "hh:mm"
    return None


def _header_text(text: str, room: int) -> str:
    """``text`` for a page header or footer (:func:`_escape_header`), cut to ``room`` characters without splitting an ``&&``."""
    escaped = _escape_header(text)
    while len(escaped) > room:
        text = text[:-1]
        escaped = _escape_header(text)
    return escaped


def _write_cell(sheet, row: int, col: int, value, cell_format) -> None:
    """One cell by its Python type: text stays text (no formula or link is made of it), numbers are numbers."""
    if value is None:
        if cell_format is not None:
            sheet.write_blank(row, col, None, cell_format)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, cell_format)
    elif isinstance(value, (int, float)):
        sheet.write_number(row, col, value, cell_format)
    elif isinstance(value, (_dt.date, _dt.time)):
        sheet.write_datetime(row, col, value, cell_format)
    else:
        sheet.write_string(row, col, str(value), cell_format)


def write_sheets(book, specs: Sequence[SheetSpec], *, heading: str) -> None:
    """
    Add each sheet to an XlsxWriter workbook, formatted and set up for printing.

    Layout: row 1 the heading (study title, synthetic label), then the
    headline block and an empty row when there is one, then the bold header
    row and the data. Header row and first column are frozen; the header row
    repeats on every printed page; pages are A4 landscape, one page wide, with
    the heading in the page header and page numbers in the footer.

    Parameters
    ----------
    book
        An ``xlsxwriter.Workbook`` (:func:`new_workbook`); the caller closes it.
    specs
        The sheets, in order.
    heading
        Text of each sheet's first row and of its printed page header.
    """
    formats = _Formats(book)
    used: set[str] = set()
    header_format = formats(bold=True, bg_color=f"#{HEADER_FILL}", bottom=1, bottom_color="#808080",
                            text_wrap=True, valign="vcenter")

    def status_properties(status, *, bold: bool) -> dict:
        if status not in STATUS_FILLS:
            return {}
        return {"bg_color": f"#{STATUS_FILLS[status]}", "font_color": f"#{STATUS_FONTS[status]}", "bold": bold}

    for spec in specs:
        sheet = book.add_worksheet(_sheet_name(spec.name, used))
        sheet.write_string(0, 0, str(heading), formats(bold=True, font_size=13))
        row = 1  # 0-based: the sheet's second row
        for line in spec.headline:
            for col, (value, fmt, status) in enumerate(line):
                properties = {"bold": col > 0 or bool(status), "num_format": fmt, **status_properties(status, bold=True)}
                _write_cell(sheet, row, col, _cell_value(value), formats(**properties))
            row += 1
        if spec.headline:
            row += 1
        header_row = row
        columns = spec.columns
        number_formats = [column_format(c) for c in columns]
        widths = [min(_text_width(h), 18.0) for h in spec.frame.columns]
        for col, text in enumerate(spec.frame.columns):
            sheet.write_string(header_row, col, str(text), header_format)
        text_columns = [c in TEXT_COLUMNS for c in columns]
        values = spec.frame.to_numpy(dtype=object)
        # the result columns of a targets table take the row's fill (and 是否达标 its font colour)
        status_columns = {j: name == "status" for j, name in enumerate(columns) if name in ("status", "actual")}
        for i, record in enumerate(values):
            r = header_row + 1 + i
            overrides = spec.row_formats[i] if spec.row_formats else {}
            row_status = spec.status[i] if spec.status is not None else None
            cell_status = spec.cell_status[i] if spec.cell_status else {}
            for j, raw in enumerate(record):
                value = _cell_value(raw)
                fmt = overrides.get(columns[j], number_formats[j])
                numeric = bool(fmt) and isinstance(value, (int, float)) and not isinstance(value, bool)
                properties = {"num_format": fmt if numeric else _date_format(value), "text_wrap": text_columns[j],
                              "valign": "top"}
                if j in status_columns and row_status in STATUS_FILLS:
                    properties["bg_color"] = f"#{STATUS_FILLS[row_status]}"
                    if status_columns[j]:
                        properties.update(status_properties(row_status, bold=True))
                elif cell_status.get(columns[j]) in STATUS_FILLS:
                    properties.update(status_properties(cell_status[columns[j]], bold=False))
                _write_cell(sheet, r, j, value, formats(**properties))
                if value is not None and i < 300:
                    widths[j] = max(widths[j], _display_width(value, fmt))
        for j, width in enumerate(widths):
            limit = 48.0 if text_columns[j] else 30.0
            if columns[j] in ("detail_zh", "quote", "raw", "detail"):
                limit = 60.0
            width = max(6.0, min(width + 2.0, limit))
            sheet.set_column(j, j, max(width, 14.0) if j == 0 else width)
        if not widths:
            sheet.set_column(0, 0, 14.0)

        sheet.freeze_panes(header_row + 1, 1)
        sheet.repeat_rows(header_row)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        sheet.fit_to_pages(1, 0)  # one page wide, as many long as needed
        sheet.hide_gridlines(0)  # gridlines on screen and on paper
        sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.6)
        sheet.set_header("&C&9" + _header_text(heading, _HEADER_MAX - 10))
        sheet.set_footer("&C&P / &N&R" + _header_text(spec.name, _HEADER_MAX - 20))


def new_workbook(path, *, created: _dt.datetime = _dt.datetime(2000, 1, 1)):
    """
    An XlsxWriter workbook writing to ``path`` (closed by the caller), with fixed document times.

    Text cells stay text (nothing that looks like a formula, number or link
    is converted), dates with a time zone keep their local time (Excel has
    no time zones) and the document's creation time is ``created``, so the
    same tables give the same file.
    """
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False, "strings_to_formulas": False,
                                           "strings_to_urls": False, "in_memory": True,
                                           "remove_timezone": True})
    book.set_properties({"created": created})
    return book


def write_workbook(path, specs: Sequence[SheetSpec], *, heading: str):
    """
    Write the sheets ``specs`` (:func:`write_sheets`) to the workbook ``path``, atomically; returns ``path``.

    The file appears only once it is complete (:func:`coverage._io.atomic_path`),
    with the fixed document times of :func:`new_workbook`.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        book = new_workbook(tmp)
        write_sheets(book, specs, heading=heading)
        book.close()
    return path
