"""
Time the result workbook (``<study>_coverage.xlsx``) written three ways from the same sheets (issue #14).

The sheets are those the batch job writes (:func:`coverage.result_tables.workbook_sheets`
and the accessibility sheets), from a run of a study: by default the county
window that ``benchmarks/bench_county.py`` builds (``--study``), else the demo.
In one process, each writer ``--repeats`` times, best and median reported:

- ours: :func:`coverage.report.write_excel` (XlsxWriter, typed cell writes,
  formats made once per distinct style);
- the writer it replaced: the same layout on openpyxl cells (the code of
  ``coverage/workbook.py`` before the change, kept below verbatim in
  :func:`_write_sheets_openpyxl`), so the ratio is the writer alone;
- the obvious alternative: ``pandas.DataFrame.to_excel`` per sheet with the
  openpyxl engine (values only: no heading, formats, fills or print set-up).

The two laid-out workbooks are read back with openpyxl and compared cell by
cell (value, number format, bold, font colour, fill, wrap, vertical alignment),
plus frozen panes, repeated rows and page headers.

Run from the repository root:

    .venv/bin/python -W ignore benchmarks/bench_workbook.py [--study /tmp/bench_county/window_1/study.yaml]
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _write_sheets_openpyxl(book, specs, *, heading: str) -> None:
    """The openpyxl layout of ``coverage.workbook.write_sheets`` before XlsxWriter (the same cells and styles)."""
    from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    from coverage.workbook import (HEADER_FILL, STATUS_FILLS, STATUS_FONTS, TEXT_COLUMNS, _cell_value,
                                   _display_width, _escape_header, _text_width, column_format)

    bold = Font(bold=True)
    header_fill = PatternFill("solid", fgColor=HEADER_FILL)
    header_border = Border(bottom=Side(style="thin", color="808080"))
    wrap_top = Alignment(wrap_text=True, vertical="top")
    top = Alignment(vertical="top")
    status_fills = {s: PatternFill("solid", fgColor=c) for s, c in STATUS_FILLS.items()}
    status_fonts = {s: Font(color=c, bold=True) for s, c in STATUS_FONTS.items()}
    data_styles: dict = {}
    for spec in specs:
        sheet = book.create_sheet(spec.name[:31])
        sheet.cell(row=1, column=1, value=heading).font = Font(bold=True, size=13)
        row = 2
        for line in spec.headline:
            for col, (value, fmt, status) in enumerate(line, start=1):
                cell = sheet.cell(row=row, column=col, value=_cell_value(value))
                cell.font = bold if col > 1 or status else Font(bold=False)
                if fmt:
                    cell.number_format = fmt
                if status in status_fills:
                    cell.fill, cell.font = status_fills[status], status_fonts[status]
            row += 1
        if spec.headline:
            row += 1
        header_row = row
        columns = spec.columns
        formats = [column_format(c) for c in columns]
        widths = [min(_text_width(h), 18.0) for h in spec.frame.columns]
        for col, text in enumerate(spec.frame.columns, start=1):
            cell = sheet.cell(row=header_row, column=col, value=str(text))
            cell.font, cell.fill, cell.border = bold, header_fill, header_border
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        text_columns = [c in TEXT_COLUMNS for c in columns]
        values = spec.frame.to_numpy(dtype=object)
        for i, record in enumerate(values):
            r = header_row + 1 + i
            overrides = spec.row_formats[i] if spec.row_formats else {}
            for j, raw in enumerate(record):
                value = _cell_value(raw)
                cell = sheet.cell(row=r, column=j + 1, value=value)
                fmt = overrides.get(columns[j], formats[j])
                numeric = bool(fmt) and isinstance(value, (int, float)) and not isinstance(value, bool)
                key = (fmt if numeric else None, text_columns[j])
                if key in data_styles:
                    cell._style = copy.copy(data_styles[key])
                else:
                    if numeric:
                        cell.number_format = fmt
                    cell.alignment = wrap_top if text_columns[j] else top
                    data_styles[key] = copy.copy(cell._style)
                if value is not None and i < 300:
                    widths[j] = max(widths[j], _display_width(value, fmt))
            if spec.status is not None:
                status = spec.status[i]
                for j, name in enumerate(columns):
                    if name in ("status", "actual") and status in status_fills:
                        cell = sheet.cell(row=r, column=j + 1)
                        cell.fill = status_fills[status]
                        if name == "status":
                            cell.font = status_fonts[status]
        for j, width in enumerate(widths):
            limit = 48.0 if text_columns[j] else 30.0
            if columns[j] in ("detail_zh", "quote", "raw", "detail"):
                limit = 60.0
            sheet.column_dimensions[get_column_letter(j + 1)].width = max(6.0, min(width + 2.0, limit))
        sheet.column_dimensions["A"].width = max(sheet.column_dimensions["A"].width, 14.0)
        sheet.freeze_panes = sheet.cell(row=header_row + 1, column=2).coordinate
        sheet.print_title_rows = f"{header_row}:{header_row}"
        sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
        sheet.page_setup.orientation = "landscape"
        sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0
        sheet.print_options.gridLines = True
        sheet.page_margins.left = sheet.page_margins.right = 0.4
        sheet.page_margins.top = sheet.page_margins.bottom = 0.6
        sheet.oddHeader.center.text = _escape_header(heading)
        sheet.oddHeader.center.size = 9
        sheet.oddFooter.center.text = "&P / &N"
        sheet.oddFooter.right.text = _escape_header(spec.name)


def write_openpyxl(sheets, path: Path, *, synthetic: bool, title: str) -> Path:
    """:func:`coverage.report.write_excel` with the openpyxl layout (same sheets, same order)."""
    import datetime as _dt

    from openpyxl import Workbook

    from coverage.report import workbook_specs

    specs, heading = workbook_specs(sheets, synthetic=synthetic, title=title)
    book = Workbook()
    book.remove(book.active)
    _write_sheets_openpyxl(book, specs, heading=heading)
    book.properties.created = book.properties.modified = _dt.datetime(2000, 1, 1)
    book.save(path)
    return path


def write_pandas(sheets, path: Path) -> Path:
    """``DataFrame.to_excel`` per sheet (openpyxl engine): the values only."""
    import pandas as pd

    from coverage.report import localise, sheet_title

    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, table in sheets.items():
            localise(table, "zh").to_excel(writer, sheet_name=sheet_title(name, "zh")[:31], index=False)
    return path


def _cell_props(cell):
    colour = cell.font.color.rgb if cell.font.color is not None else None
    return (cell.number_format, bool(cell.font.bold), colour[-6:] if isinstance(colour, str) else None,
            cell.fill.fgColor.rgb[-6:] if cell.fill.fill_type else None, bool(cell.alignment.wrap_text),
            cell.alignment.vertical)


def compare(ours: Path, theirs: Path) -> dict:
    """Cells whose value or style differ between two laid-out workbooks, and sheet set-up differences."""
    import openpyxl

    a, b = openpyxl.load_workbook(ours), openpyxl.load_workbook(theirs)
    cells = differing = setup = 0
    if a.sheetnames != b.sheetnames:
        return {"sheets_equal": False}
    for name in a.sheetnames:
        sa, sb = a[name], b[name]
        if (sa.max_row, sa.max_column) != (sb.max_row, sb.max_column):
            differing += 1
        for ra, rb in zip(sa.iter_rows(), sb.iter_rows()):
            for ca, cb in zip(ra, rb):
                cells += 1
                differing += (ca.value if ca.value != "" else None) != (cb.value if cb.value != "" else None) \
                    or _cell_props(ca) != _cell_props(cb)
        setup += (sa.freeze_panes, sa.print_title_rows, sa.oddHeader.center.text, sa.oddFooter.right.text) != \
                 (sb.freeze_panes, sb.print_title_rows, sb.oddHeader.center.text, sb.oddFooter.right.text)
    return {"sheets_equal": True, "sheets": len(a.sheetnames), "cells": cells, "cells_differing": int(differing),
            "sheets_with_setup_differing": int(setup)}


def _timed(function, repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path("/tmp/bench_county/window_1/study.yaml")
    parser.add_argument("--study", type=Path, default=default if default.exists() else REPO / "studies" / "demo.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from coverage import access_outputs, report
    from coverage.config import load_study
    from coverage.pipeline import run_study
    from coverage.result_tables import workbook_sheets

    out = Path(tempfile.mkdtemp(prefix="bench_workbook_"))
    results = run_study(load_study(args.study, output_root=out), make_map=False)
    sheets = {**workbook_sheets(results), **access_outputs.access_sheets(results)}
    synthetic, title = results.config.synthetic, results.config.title
    files = {"ours": out / "ours.xlsx", "openpyxl": out / "openpyxl.xlsx", "pandas": out / "pandas.xlsx"}
    writers = {
        "ours (XlsxWriter)": lambda: report.write_excel(sheets, files["ours"], synthetic=synthetic, title=title),
        "the openpyxl layout it replaced": lambda: write_openpyxl(sheets, files["openpyxl"], synthetic=synthetic,
                                                                  title=title),
        "pandas to_excel (openpyxl, values only)": lambda: write_pandas(sheets, files["pandas"]),
    }
    for write in writers.values():  # imports and first-use costs out of the timings
        write()
    times = {name: _timed(write, args.repeats) for name, write in writers.items()}
    rows = sum(len(t) for t in sheets.values())
    print(f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
          f"Python {platform.python_version()}; study {args.study.name} ({results.config.name}): "
          f"{len(sheets)} tables, {rows:,} rows; best and median of {args.repeats}.\n")
    print("| writer | best s | median s | vs ours (median) | file |")
    print("|---|---:|---:|---:|---:|")
    ours = statistics.median(times["ours (XlsxWriter)"])
    for (name, seconds), path in zip(times.items(), files.values()):
        median = statistics.median(seconds)
        print(f"| {name} | {min(seconds):.2f} | {median:.2f} | {median / ours:.2f}× | "
              f"{path.stat().st_size / 1e3:,.0f} kB |")
    print("\nours against the openpyxl layout, read back with openpyxl:", compare(files["ours"], files["openpyxl"]))


if __name__ == "__main__":
    main()
