"""Can a planner read the demo workbook, answer first, in either language, and print it on A4?"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from coverage import coords, report
from coverage.catalogue import METRICS
from coverage.config import load_study
from coverage.ingest import FLAG_CODES, REJECT_REASONS
from coverage.pipeline import run_study
from coverage.report import SHEETS_EN, SYNTHETIC_LABEL
from tests.conftest import REPO_ROOT, metres_between

DEMO = REPO_ROOT / "studies" / "demo.yaml"
STATUS_FILLS = {"达标": "C6EFCE", "未达标": "FFC7CE", "无数据": "D9D9D9",
                "met": "C6EFCE", "missed": "FFC7CE", "no data": "D9D9D9"}

#: columns whose text may stay bilingual or holds file names and quotes as given
FREE_TEXT_HEADERS = {"说明", "数据说明", "文件原文", "原始内容", "来源文件", "参数", "取值", "记录名称示例", "文件", "地区"}
#: a raw English field name or code: snake_case (``service_circle``, ``raster_total``) or dotted ids
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$|^[a-z][a-z0-9_]*\.[a-z0-9_.]+$")


@pytest.fixture(scope="module")
def zh_run(tmp_path_factory):
    return run_study(load_study(DEMO, output_root=tmp_path_factory.mktemp("zh")), make_map=False)


@pytest.fixture(scope="module")
def en_run(tmp_path_factory):
    return run_study(load_study(DEMO, output_root=tmp_path_factory.mktemp("en")), lang="en", make_map=False)


def _book(results, **kwargs):
    return openpyxl.load_workbook(Path(results.config.output_dir) / f"{results.config.name}_coverage.xlsx", **kwargs)


def _header_row(sheet) -> int:
    """The header row is the one the print set-up repeats on every page ('$6:$6' → 6)."""
    return int(re.match(r"\$?(\d+):", sheet.print_title_rows).group(1))


def _table(sheet) -> tuple[list[str], list[list]]:
    row = _header_row(sheet)
    header = [c.value for c in sheet[row]]
    body = [list(r) for r in sheet.iter_rows(min_row=row + 1)]
    return header, body


def _raw_codes(results) -> set[str]:
    """Every internal column name and code the results hold: none may appear as a Chinese cell."""
    codes = set(report.HEADERS_ZH) | set(METRICS) | set(REJECT_REASONS) | set(FLAG_CODES)
    codes |= set(results.targets["target_id"]) | set(results.targets["set"]) | {"pass", "fail", "no data"}
    codes |= {"study", "town", "village", "county", "facility", "urban", "rural", "all", "outside", "min", "m"}
    codes |= set(report.ASSIGNMENT_NAMES)
    for table in (results.villages, results.facility_table, results.coverage_wide, results.calibration):
        codes |= {str(c) for c in table.columns}
    return codes


# ---------------------------------------------------------------------------------------------
# 总览
# ---------------------------------------------------------------------------------------------


def test_overview_gives_the_answer_in_the_first_columns(zh_run):
    sheet = _book(zh_run)["总览"]
    header, body = _table(sheet)
    assert header[:6] == ["指标", "目标值", "实际值", "是否达标", "差距", "如何补足"]
    assert "文件" in header and "目标年份" in header
    # ids, metric codes and the English label live on 指标说明, not here
    assert not {"指标编号", "计算方法", "比较", "英文指标名"} & set(header)
    assert len(body) == len(zh_run.targets)
    assert [r[0].value for r in body] == list(zh_run.targets["label_zh"])


def test_overview_headline_block_says_coverage_and_targets_met(zh_run):
    sheet = _book(zh_run)["总览"]
    assert SYNTHETIC_LABEL in sheet["A1"].value
    lines = [[c.value for c in row] for row in sheet.iter_rows(min_row=2, max_row=_header_row(sheet) - 1)]
    share_line = next(line for line in lines if line[0] and str(line[0]).startswith("15分钟步行覆盖率"))
    wide = zh_run.coverage_wide
    study = wide[(wide["scope"] == "study") & (wide["kind"] == "any")]
    assert share_line[1] == pytest.approx(float(study["share_15min"].iloc[0]))
    assert sheet.cell(row=lines.index(share_line) + 2, column=2).number_format == "0.0%"
    counts = next(line for line in lines if line[0] and str(line[0]).startswith("政策指标"))
    status = zh_run.targets["status"]
    assert counts[1:4] == [f"达标 {(status == 'pass').sum()}", f"未达标 {(status == 'fail').sum()}",
                           f"无数据 {(status == 'no data').sum()}"]


def test_overview_header_and_first_column_frozen_bold(zh_run):
    sheet = _book(zh_run)["总览"]
    row = _header_row(sheet)
    assert sheet.freeze_panes == f"B{row + 1}"
    assert all(cell.font.bold for cell in sheet[row] if cell.value)


def test_overview_results_are_filled_green_red_grey(zh_run):
    sheet = _book(zh_run)["总览"]
    header, body = _table(sheet)
    status_col, actual_col = header.index("是否达标"), header.index("实际值")
    assert {r[status_col].value for r in body} <= {"达标", "未达标", "无数据"}
    for row in body:
        expected = STATUS_FILLS[row[status_col].value]
        assert row[status_col].fill.fgColor.rgb.endswith(expected), row[0].value
        assert row[actual_col].fill.fgColor.rgb.endswith(expected), row[0].value


def test_overview_number_formats_show_percent_and_spelled_out_units(zh_run):
    sheet = _book(zh_run)["总览"]
    header, body = _table(sheet)
    cols = {name: header.index(name) for name in ("目标值", "实际值", "差距")}
    for row, target in zip(body, zh_run.targets.to_dict("records")):
        spec = METRICS[target["metric"]]
        fmt = row[cols["目标值"]].number_format
        if spec.share:
            assert fmt == "0.0%", target["target_id"]
        else:
            assert target["gap_unit"].split(" / ")[0] in fmt, target["target_id"]
        if target["status"] == "fail" and spec.gap == "persons":
            assert row[cols["差距"]].number_format == '#,##0 "人"'
            assert "名老人" in row[header.index("如何补足")].value


def test_target_notes_sheet_holds_ids_codes_and_quotes(zh_run):
    header, body = _table(_book(zh_run)["指标说明"])
    assert header[:2] == ["指标", "指标编号"]
    assert {"计算方法", "文件原文", "英文指标名"} <= set(header)
    assert [r[1].value for r in body] == list(zh_run.targets["target_id"])


# ---------------------------------------------------------------------------------------------
# every sheet
# ---------------------------------------------------------------------------------------------


def test_every_sheet_is_formatted_and_set_up_for_a4_landscape_one_page_wide(zh_run):
    for sheet in _book(zh_run).worksheets:
        row = _header_row(sheet)
        assert sheet.freeze_panes == f"B{row + 1}", sheet.title
        assert all(cell.font.bold for cell in sheet[row] if cell.value), sheet.title
        setup = sheet.page_setup
        assert setup.orientation == "landscape" and str(setup.paperSize) == str(sheet.PAPERSIZE_A4), sheet.title
        # fitToWidth left out of the file means 1 page wide (its default in the OOXML schema, as Excel reads it)
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and (setup.fitToWidth or 1) == 1
        assert setup.fitToHeight == 0, sheet.title
        assert SYNTHETIC_LABEL in sheet.oddHeader.center.text, sheet.title
        widths = [sheet.column_dimensions[c.column_letter].width for c in sheet[row] if c.value]
        assert all(6 <= w <= 62 for w in widths), sheet.title


def test_persons_shares_and_beds_have_number_formats(zh_run):
    book = _book(zh_run)
    header, body = _table(book["村社区"])
    first = body[0]
    assert first[header.index("老年人口(人)")].number_format == "#,##0"
    assert first[header.index("任一类型设施覆盖率")].number_format == "0.0%"
    header, body = _table(book["设施"])
    beds = next(r[header.index("床位数")] for r in body if r[header.index("床位数")].value is not None)
    assert beds.number_format == "0"
    # the values themselves are unchanged: only the display is rounded
    header, body = _table(book["村社区"])
    villages = zh_run.villages.set_index("code")
    for row in body[:10]:
        code, elderly = row[header.index("区划代码")].value, row[header.index("老年人口(人)")].value
        assert elderly == pytest.approx(villages.loc[code, "elderly"], abs=1e-3)


def test_chinese_workbook_has_no_true_false_or_raw_english_field_names(zh_run):
    """
    Outside the free-text columns (说明, 文件原文, file names, …) and the 指标说明 sheet, no
    cell of the zh workbook is a bool, 'True'/'False', an internal column name or code
    of the results, or any snake_case / dotted id; no header holds two lower-case Latin letters in a row.
    """
    raw = _raw_codes(zh_run)
    for sheet in _book(zh_run).worksheets:
        header, body = _table(sheet)
        for text in header:
            assert text is None or not re.search(r"[a-z]{2,}", str(text)), (sheet.title, text)
        if sheet.title == "指标说明":
            continue
        for j, name in enumerate(header):
            if name in FREE_TEXT_HEADERS:
                continue
            for row in body:
                value = row[j].value
                assert not isinstance(value, bool), (sheet.title, name)
                if isinstance(value, str):
                    assert value not in ("True", "False"), (sheet.title, name, value)
                    assert value not in raw and not SNAKE.match(value), (sheet.title, name, value)


def test_english_workbook_has_english_sheet_names_headers_and_values(en_run):
    book = _book(en_run)
    assert book.sheetnames[0] == "Overview"
    assert set(book.sheetnames) <= set(SHEETS_EN.values())
    assert {"Overview", "Villages", "Facilities", "Parameters", "Target notes"} <= set(book.sheetnames)
    cjk = re.compile(r"[\u4e00-\u9fff]")
    for sheet in book.worksheets:
        header, body = _table(sheet)
        assert not [h for h in header if h and cjk.search(str(h))], sheet.title
    header, body = _table(book["Overview"])
    assert header[:4] == ["Target", "Required", "Actual", "Result"]
    assert {r[3].value for r in body} <= {"met", "missed", "no data"}
    assert [r[0].value for r in body] == list(en_run.targets["label_en"])
    header, body = _table(book["Villages"])
    assert {r[header.index("Urban")].value for r in body} <= {"yes", "no"}
    # the CSVs keep the internal names for scripts
    table = pd.read_csv(Path(en_run.config.output_dir) / "villages.csv", encoding="utf-8-sig")
    assert {"code", "name", "elderly", "urban"} <= set(table.columns)


# ---------------------------------------------------------------------------------------------
# coordinates
# ---------------------------------------------------------------------------------------------


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def test_facility_coordinates_have_six_decimals_and_gcj02_beside_wgs84(zh_run):
    out = Path(zh_run.config.output_dir)
    table = pd.read_csv(out / "facilities.csv", encoding="utf-8-sig", dtype=str)
    columns = list(table.columns)
    lon, lat = columns.index("经度(WGS-84)"), columns.index("纬度(WGS-84)")
    assert columns[lat + 1:lat + 3] == ["经度(GCJ-02,高德/腾讯)", "纬度(GCJ-02,高德/腾讯)"]
    assert max(_decimals(v) for v in table["经度(WGS-84)"]) == 6
    assert all(_decimals(v) <= 6 for column in columns[lon:lat + 3] for v in table[column])
    x, y = table["经度(WGS-84)"].astype(float).to_numpy(), table["纬度(WGS-84)"].astype(float).to_numpy()
    # 6 decimals: the table's points are the facilities' own (≈ 0.1 m), not 3-decimal roundings (≤ 57 m)
    truth = zh_run.facilities.set_index("facility_id").geometry
    true_x = truth.x.reindex(table["设施编号"]).to_numpy()
    assert metres_between(x, y, true_x, truth.y.reindex(table["设施编号"]).to_numpy()).max() < 0.2
    gx, gy = coords.wgs84_to_gcj02(x, y)
    shown_x, shown_y = table.iloc[:, lat + 1].astype(float), table.iloc[:, lat + 2].astype(float)
    assert metres_between(gx, gy, shown_x, shown_y).max() < 1.0
    # the GCJ-02 offset is real: hundreds of metres in China
    assert metres_between(x, y, gx, gy).min() > 100


def test_workbook_places_have_wgs84_and_gcj02_with_six_decimal_formats(zh_run):
    book = _book(zh_run)
    for name, lon_header in (("设施", "经度(WGS-84)"), ("未覆盖", "单位代表点经度(WGS-84)"),
                             ("仅计存在", "单位代表点经度(WGS-84)"), ("剔除记录", "经度(WGS-84)")):
        header, body = _table(book[name])
        j = header.index(lon_header)
        assert "GCJ-02" in header[j + 2] and "GCJ-02" in header[j + 3], name
        rows = [r for r in body if r[j].value is not None]
        assert rows, name
        x = np.array([r[j].value for r in rows], float)
        y = np.array([r[j + 1].value for r in rows], float)
        gx, gy = coords.wgs84_to_gcj02(x, y)
        shown = np.array([[r[j + 2].value, r[j + 3].value] for r in rows], float)
        assert metres_between(gx, gy, shown[:, 0], shown[:, 1]).max() < 1.0, name
        assert all(r[k].number_format == "0.000000" for r in rows for k in range(j, j + 4)), name


def test_rejected_rows_show_where_they_are_from_their_own_coordinates(zh_run):
    """The demo list is GCJ-02: the GCJ-02 columns of a rejected row give back the coordinates as typed."""
    header, body = _table(_book(zh_run)["剔除记录"])
    j = header.index("经度(GCJ-02,高德/腾讯)")
    rows = [r for r in body if r[j].value is not None]
    assert rows
    for row in rows:
        raw = row[header.index("原始内容")].value
        given = (float(re.search(r"经度=([\d.]+)", raw).group(1)), float(re.search(r"纬度=([\d.]+)", raw).group(1)))
        assert metres_between(row[j].value, row[j + 1].value, *given) < 1.0


def test_siting_tables_written_by_the_writer_get_gcj02_and_six_decimals(tmp_path):
    sites = pd.DataFrame({"rank": [1, 2], "candidate_id": ["c1", "c2"], "lon": [113.8958712, 113.9012],
                          "lat": [30.9619623, 30.95], "new_persons": [120.4, 80.0]})
    csv = report.write_csv(sites, tmp_path / "siting.csv", synthetic=True)
    table = pd.read_csv(csv, encoding="utf-8-sig", dtype=str)
    assert table["经度(WGS-84)"].iloc[0] == "113.895871"
    gx, gy = coords.wgs84_to_gcj02(113.895871, 30.961962)
    assert float(table["经度(GCJ-02,高德/腾讯)"].iloc[0]) == pytest.approx(gx, abs=1e-6)
    assert float(table["纬度(GCJ-02,高德/腾讯)"].iloc[0]) == pytest.approx(gy, abs=1e-6)
    book = openpyxl.load_workbook(report.write_excel({"选址建议": sites}, tmp_path / "siting.xlsx", synthetic=True))
    header, body = _table(book["选址建议"])
    assert "经度(GCJ-02,高德/腾讯)" in header
    assert body[0][header.index("新增覆盖老人(人)")].number_format == "#,##0"


def test_registry_text_that_looks_like_a_formula_link_or_number_stays_text(tmp_path):
    # bureau lists hold such cells: a note typed as "=见附件", a web address, a code with leading zeros
    table = pd.DataFrame({"name": ["=见附件2", "http://mzj.example.gov.cn/list", "00123", "1.5e3", "仁义社区"],
                          "elderly": [12.0, 3.0, float("nan"), 7.0, 1.0]})
    book = openpyxl.load_workbook(report.write_excel({"设施": table}, tmp_path / "text.xlsx"))
    header, body = _table(book["设施"])
    names = [row[0] for row in body]
    assert [c.value for c in names] == table["name"].tolist()
    assert all(c.data_type == "s" for c in names)  # text, not a formula, hyperlink or number
    assert not any(c.hyperlink for c in names)
    elderly = [row[1].value for row in body]
    assert elderly[:2] == [12.0, 3.0] and elderly[2] is None and elderly[3:] == [7.0, 1.0]


def test_a_registrys_dates_show_as_dates_even_with_a_time_zone(tmp_path):
    # a bureau workbook's 登记日期 read as datetimes, one of them stamped with the time zone of an export
    table = pd.DataFrame({"name": ["甲社区日间照料中心", "乙村互助幸福院"],
                          "registered": [pd.Timestamp("2021-03-04"), pd.Timestamp("2022-05-06 10:30", tz="Asia/Shanghai")]})
    book = openpyxl.load_workbook(report.write_excel({"设施": table}, tmp_path / "dates.xlsx"))
    header, body = _table(book["设施"])
    dates = [row[1] for row in body]
    assert [c.value for c in dates] == [pd.Timestamp("2021-03-04"), pd.Timestamp("2022-05-06 10:30")]
    assert [c.number_format for c in dates] == ["yyyy-mm-dd", "yyyy-mm-dd hh:mm"]


# ---------------------------------------------------------------------------------------------
# printed with LibreOffice
# ---------------------------------------------------------------------------------------------

PAGE = re.compile(rb"/Type\s*/Page[^s]")
MEDIA_BOX = re.compile(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]")
ROWS_PER_PAGE = 40


def _to_pdf(files: list[Path], out: Path) -> list[Path]:
    """Convert workbooks to PDF with LibreOffice (its own profile, so parallel runs do not clash)."""
    profile = (out / "profile").as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(out), *map(str, files)], check=True, capture_output=True, timeout=300)
    pdfs = [out / f"{f.stem}.pdf" for f in files]
    for pdf in pdfs:
        assert pdf.exists(), f"LibreOffice wrote no {pdf.name}"
    return pdfs


def _pages(pdf: Path) -> int:
    return len(PAGE.findall(pdf.read_bytes()))


def _only(book_path: Path, name: str, target: Path) -> Path:
    book = openpyxl.load_workbook(book_path)
    for other in book.sheetnames:
        if other != name:
            book.remove(book[other])
    book.save(target)
    return target


@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice (soffice) is not installed: run scripts/ensure_browser.sh as root "
                           "(apt-get install --no-install-recommends libreoffice-calc libreoffice-writer)")
def test_printed_workbook_pages_grow_with_rows_and_the_overview_fits_one_page_wide(zh_run, tmp_path):
    source = Path(zh_run.config.output_dir) / "demo_coverage.xlsx"
    whole = tmp_path / "whole.xlsx"
    shutil.copy(source, whole)
    overview = _only(source, "总览", tmp_path / "overview.xlsx")
    widest = _only(source, "村社区", tmp_path / "villages.xlsx")
    whole_pdf, overview_pdf, widest_pdf = _to_pdf([whole, overview, widest], tmp_path)

    # 总览: one page wide; the demo's 13 targets on at most 2 landscape A4 pages
    assert 1 <= _pages(overview_pdf) <= 2
    boxes = [tuple(map(float, m)) for m in MEDIA_BOX.findall(overview_pdf.read_bytes())]
    assert boxes and all(x1 - x0 > y1 - y0 for x0, y0, x1, y1 in boxes), "pages are not landscape"
    assert all(math.isclose(x1 - x0, 842, abs_tol=3) for x0, y0, x1, y1 in boxes), "pages are not A4"

    # the widest sheet (23 columns) still takes pages by rows, not by columns
    book = openpyxl.load_workbook(source, read_only=False)
    villages = book["村社区"].max_row
    assert _pages(widest_pdf) <= math.ceil(villages / ROWS_PER_PAGE)

    # whole workbook: at most one page per 40 rows of each sheet (it was 86-102 pages before the layout)
    bound = sum(max(1, math.ceil(sheet.max_row / ROWS_PER_PAGE)) for sheet in book.worksheets)
    pages = _pages(whole_pdf)
    assert len(book.worksheets) <= pages <= bound, (pages, bound)
