"""Does the Word report of the demo county say what the tables say, in both languages, and print?"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import docx
import pytest
from docx.oxml.ns import qn

from coverage import docx_report
from coverage.catalogue import METRICS
from coverage.config import load_study
from coverage.pipeline import run_study
from coverage.proposals import propose_sites
from coverage.report import SYNTHETIC_LABEL
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"
CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    config = load_study(DEMO, output_root=tmp_path_factory.mktemp("docx_run"))
    return run_study(config)


@pytest.fixture(scope="module")
def report_zh(demo_run) -> Path:
    return docx_report.write_report(demo_run, demo_run.config.output_dir / docx_report.report_file_name(demo_run))


@pytest.fixture(scope="module")
def report_en(demo_run) -> Path:
    return docx_report.write_report(demo_run, demo_run.config.output_dir / "demo_report_en.docx", lang="en")


@pytest.fixture(scope="module")
def canteens(demo_run):
    return propose_sites(demo_run.config, kind="canteen", add=3)


def _headings(document) -> list[str]:
    return [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]


def _table_starting(document, *labels: str):
    """The first table whose header row begins with ``labels``."""
    for table in document.tables:
        cells = [c.text for c in table.rows[0].cells]
        if cells[: len(labels)] == list(labels):
            return table
    raise AssertionError(f"no table with header {labels}")


def _rows(table) -> list[list[str]]:
    return [[c.text for c in row.cells] for row in table.rows[1:]]


def _pdf_pages(path: Path) -> int:
    """Pages of a PDF, counted from its page objects (LibreOffice writes them uncompressed)."""
    return len(re.findall(rb"/Type\s*/Page[^s]", path.read_bytes()))


def test_the_report_has_its_sections_in_order(report_zh):
    assert report_zh.name == "demo_评估报告.docx"
    headings = _headings(docx.Document(str(report_zh)))
    expected = ["结果摘要", "政策目标对照", "覆盖图", "乡镇街道覆盖率", "未覆盖的村和社区", "服务能力指标",
                "方法与参数", "数据来源与署名"]
    positions = [headings.index(h) for h in expected]
    assert positions == sorted(positions), headings


def test_the_summary_says_the_headline_share_and_every_target_as_in_the_targets_table(demo_run, report_zh):
    document = docx.Document(str(report_zh))
    wide = demo_run.coverage_wide
    share_15 = wide[(wide["scope"] == "study") & (wide["kind"] == "any")]["share_15min"].iloc[0]
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"{share_15:.1%}" in text  # e.g. 73.8%

    targets = demo_run.targets
    status = targets["status"]
    assert (f"达标 {(status == 'pass').sum()} 项，未达标 {(status == 'fail').sum()} 项，"
            f"无数据 {(status == 'no data').sum()} 项") in text
    rows = _rows(_table_starting(document, "指标", "地区", "目标值", "实际值", "差距", "是否达标"))
    assert len(rows) == len(targets)
    for row, target in zip(rows, targets.to_dict("records")):
        assert row[0] == target["label_zh"]
        assert row[5] == {"pass": "达标", "fail": "未达标", "no data": "无数据"}[target["status"]]
        if target["status"] == "no data":
            assert row[3] == "无数据"
        elif METRICS[target["metric"]].share:
            assert row[3] == f"{target['actual']:.1%}"
            assert row[2] == f"≥ {target['required']:.1%}"
        else:
            assert float(row[3].replace(",", "")) == pytest.approx(target["actual"], abs=0.05)
        if target["metric"] == "service_circle" and target["status"] == "fail":
            assert row[4] == f"{round(target['gap']):,} 人"  # persons as whole numbers


def test_the_town_table_has_one_row_per_town_with_persons_and_percentages(demo_run, report_zh):
    document = docx.Document(str(report_zh))
    table = _table_starting(document, "乡镇街道", "区划代码", "老年人口(人)")
    towns = demo_run.coverage_wide
    towns = towns[(towns["scope"] == "town") & (towns["kind"] == "any")].sort_values("code")
    rows = _rows(table)
    assert len(rows) == len(towns) == towns["code"].nunique()
    header = [c.text for c in table.rows[0].cells]
    at_15 = header.index("15分钟")
    for row, town in zip(rows, towns.to_dict("records")):
        assert row[:3] == [town["name"], str(town["code"]), f"{round(town['elderly']):,}"]
        assert row[at_15] == f"{town['share_15min']:.1%}"
    # the header row repeats on every page
    assert table.rows[0]._tr.trPr.find(qn("w:tblHeader")) is not None


def test_the_map_figure_is_embedded(report_zh):
    assert len(docx.Document(str(report_zh)).inline_shapes) >= 1


def test_synthetic_data_is_said_on_the_cover_and_in_the_page_header(report_zh):
    document = docx.Document(str(report_zh))
    assert SYNTHETIC_LABEL in document.sections[0].header.paragraphs[0].text
    cover = []
    for paragraph in document.paragraphs:
        if paragraph.text == "结果摘要":
            break
        cover.append(paragraph.text)
    assert any(SYNTHETIC_LABEL in line for line in cover)
    assert document.core_properties.comments == SYNTHETIC_LABEL


def test_chinese_text_names_an_east_asian_font_and_no_theme_font_overrides_it(report_zh):
    document = docx.Document(str(report_zh))
    defaults = document.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    fonts = defaults.find(qn("w:rFonts"))
    assert fonts.get(qn("w:eastAsia")) == docx_report.east_asia_font()
    for name in ("Title", "Heading 1", "Heading 2"):
        style_fonts = document.styles[name].element.rPr.find(qn("w:rFonts"))
        assert style_fonts.get(qn("w:eastAsiaTheme")) is None
        assert style_fonts.get(qn("w:eastAsia")) == docx_report.east_asia_font()


def test_long_tables_show_the_worst_rows_and_say_how_many_more_are_in_the_workbook(demo_run, report_zh):
    document = docx.Document(str(report_zh))
    rows = _rows(_table_starting(document, "村社区", "乡镇街道", "城乡", "设施类型"))
    uncovered = demo_run.uncovered_units
    assert len(uncovered) > docx_report.WORST_N
    assert len(rows) == docx_report.WORST_N
    persons = [int(r[5].replace(",", "")) for r in rows]
    assert persons == sorted(persons, reverse=True)
    more = len(uncovered) - docx_report.WORST_N
    assert any(f"另有 {more} 行" in p.text and "demo_coverage.xlsx" in p.text for p in document.paragraphs)


def test_capacity_ratios_come_from_the_targets(demo_run, report_zh):
    document = docx.Document(str(report_zh))
    rows = _rows(_table_starting(document, "指标", "目标值", "实际值", "单位"))
    beds = demo_run.targets.set_index("metric").loc["beds_per_1000_elderly"]
    row = next(r for r in rows if r[0] == beds["label_zh"])
    assert row[2] == f"{beds['actual']:.1f}"
    assert row[3] == "张/千名老人"


def test_the_english_report_has_english_headings(report_en):
    document = docx.Document(str(report_en))
    headings = _headings(document)
    for expected in ("Summary of results", "Policy targets", "Coverage map", "Coverage by town and street",
                     "Uncovered villages and communities", "Capacity ratios", "Method and parameters",
                     "Data sources and attribution"):
        assert expected in headings
    assert not [h for h in headings if CJK.search(h)]
    assert SYNTHETIC_LABEL in document.sections[0].header.paragraphs[0].text
    assert _table_starting(document, "Target", "Locality", "Required", "Actual", "Gap", "Status")
    towns = _table_starting(document, "Town / street", "Code", "Elderly (persons)")
    assert [c.text for c in towns.rows[0].cells][3:] == ["5 min", "10 min", "15 min", "300 m", "500 m", "1000 m"]


def test_a_figure_is_drawn_when_the_run_wrote_none(demo_run, tmp_path):
    without_png = dataclasses.replace(demo_run, output_files={})
    path = docx_report.write_report(without_png, tmp_path / "report.docx")
    document = docx.Document(str(path))
    if docx_report.east_asia_font() == docx_report.FALLBACK_EAST_ASIA_FONT:  # no CJK font here: a note instead
        assert any("未能生成覆盖图" in p.text for p in document.paragraphs)
    else:
        assert len(document.inline_shapes) >= 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.docx"]  # no temporary file left behind


def test_a_siting_proposal_appends_its_section_with_sites_and_map(report_zh, canteens, tmp_path):
    copy = tmp_path / report_zh.name
    shutil.copy(report_zh, copy)
    images_before = len(docx.Document(str(copy)).inline_shapes)
    assert docx_report.add_siting_section(copy, canteens) == copy
    document = docx.Document(str(copy))
    assert _headings(document)[-3] == "选址建议：幸福食堂(助餐点)（15分钟步行）"
    rows = _rows(_table_starting(document, "排序", "位置", "经度", "纬度"))
    assert len(rows) == len(canteens.sites) == 3
    assert [int(r[4].replace(",", "")) for r in rows] == [round(v) for v in canteens.sites["new_persons"]]
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"{canteens.result.share_before:.1%}" in text and f"{canteens.result.share_after:.1%}" in text
    if docx_report.east_asia_font() != docx_report.FALLBACK_EAST_ASIA_FONT:
        assert len(document.inline_shapes) == images_before + 1


def test_a_siting_section_goes_into_an_open_english_document(demo_run, canteens, tmp_path):
    path = docx_report.write_report(demo_run, tmp_path / "en.docx", lang="en", proposals=[canteens])
    document = docx.Document(str(path))
    headings = _headings(document)
    siting = headings.index("Siting proposal: canteen / meal-aid point (15-minute walk)")
    assert siting < headings.index("Method and parameters")
    assert docx_report.add_siting_section(document, canteens) is document
    assert _headings(document).count("Proposed sites") == 2


@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice (soffice) is not installed: apt-get install libreoffice-writer")
def test_the_report_converts_to_a_pdf_of_several_pages(report_zh, report_en, tmp_path):
    profile = (tmp_path / "lo_profile").as_uri()  # own profile: other LibreOffice runs keep theirs
    completed = subprocess.run(
        ["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "pdf", "--outdir",
         str(tmp_path), str(report_zh), str(report_en)],
        capture_output=True, text=True, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    for report in (report_zh, report_en):
        pdf = tmp_path / f"{report.stem}.pdf"
        assert pdf.exists(), completed.stdout + completed.stderr
        assert _pdf_pages(pdf) >= 2
        if docx_report.east_asia_font().startswith("Noto Sans CJK"):
            assert b"NotoSansCJK" in pdf.read_bytes()  # the Chinese text was set in the named CJK font


def test_without_a_cjk_font_the_report_names_simsun_and_says_why_the_map_is_missing(demo_run, tmp_path, monkeypatch):
    from coverage import figures

    monkeypatch.setattr(figures, "_find_cjk_family", lambda: None)
    path = docx_report.write_report(dataclasses.replace(demo_run, output_files={}), tmp_path / "report.docx")
    document = docx.Document(str(path))
    fonts = document.styles.element.find(qn("w:docDefaults")).find(qn("w:rPrDefault")).find(qn("w:rPr"))
    assert fonts.find(qn("w:rFonts")).get(qn("w:eastAsia")) == "SimSun"
    assert len(document.inline_shapes) == 0
    assert any("未能生成覆盖图" in p.text and "fonts-noto-cjk" in p.text for p in document.paragraphs)
