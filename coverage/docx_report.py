"""Write a study's evaluation report as an editable Word document (cover, summary, map, tables, method)."""

from __future__ import annotations

import datetime as _dt
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import docx
import pandas as pd
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from lxml import etree

from coverage import ingest, measures, result_tables
from coverage import kinds as kinds_registry
from coverage._errors import ConfigError
from coverage._io import atomic_path
from coverage.catalogue import METRICS
from coverage.report import KIND_ZH, SYNTHETIC_LABEL
from coverage.result_tables import attribution_lines, headline_minutes, parameters_table

#: East Asian font named in the document when no CJK font is found here (present on every Chinese Windows)
FALLBACK_EAST_ASIA_FONT = "SimSun"
#: Latin font of the document (Liberation Sans stands in for it on Linux)
LATIN_FONT = "Arial"
#: rows of a long table shown in the report; the rest are in the workbook
WORST_N = 30

_STATUS = {
    "zh": {"pass": "达标", "fail": "未达标", "no data": "无数据"},
    "en": {"pass": "met", "fail": "missed", "no data": "no data"},
}

#: fixed texts of the report, by language
_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "subtitle": "养老服务设施步行覆盖评估报告",
        "cover_study": "研究",
        "cover_data": "数据说明",
        "cover_user_data": "用户数据",
        "cover_sources": "数据来源与日期",
        "cover_date": "报告日期",
        "cover_population": "人口",
        "cover_software": "软件",
        "cover_targets": "目标依据",
        "source": "来源",
        "file": "文件",
        "file_date": "文件日期",
        "network": "路网",
        "facilities": "设施名录",
        "units": "行政区划",
        "raster": "人口栅格",
        "census": "普查数",
        "summary": "结果摘要",
        "headline": "{minutes:g}分钟步行范围内的{age}老年人：{share}（{within} / {total} 人）。",
        "headline_area": "其中{area}：{share}（{within} / {total} 人）。",
        "area_urban": "城镇",
        "area_rural": "乡村",
        "target_counts": "政策目标 {n} 项：达标 {passed} 项，未达标 {failed} 项，无数据 {missing} 项。",
        "no_targets": "本研究未配置政策目标（targets）。",
        "targets_table": "政策目标对照",
        "col_target": "指标",
        "col_locality": "地区",
        "col_required": "目标值",
        "col_actual": "实际值",
        "col_gap": "差距",
        "col_status": "是否达标",
        "map": "覆盖图",
        "map_caption": "图 1  {minutes:g}分钟步行覆盖（村/社区着色为任一设施覆盖率）",
        "map_missing": "未能生成覆盖图：{reason}。请查看 HTML 地图 {html}。",
        "by_kind": "各类设施覆盖率（全域）",
        "col_kind": "设施类型",
        "col_n_facilities": "设施数",
        "col_elderly": "老年人口(人)",
        "col_within": "{minutes:g}分钟内老人(人)",
        "col_share": "{minutes:g}分钟覆盖率",
        "towns": "乡镇街道覆盖率",
        "towns_any": "任一设施覆盖率（按乡镇街道）",
        "towns_kinds": "各类设施{minutes:g}分钟覆盖率（按乡镇街道）",
        "col_town": "乡镇街道",
        "col_code": "区划代码",
        "uncovered": "未覆盖的村和社区",
        "uncovered_intro": ("村（社区）内没有该类设施、且有老人在{minutes:g}分钟步行范围之外。"
                            "按未覆盖老人数从多到少排列。"),
        "uncovered_absent": "全域没有以下类型的设施，所有村（社区）均未覆盖：{kinds}。",
        "uncovered_none": "没有未覆盖的村（社区）。",
        "more_rows": "此处列出 {shown} 行，另有 {more} 行见工作簿《{workbook}》“{sheet}”工作表。",
        "col_village": "村社区",
        "col_urban": "城乡",
        "urban": "城镇",
        "rural": "乡村",
        "col_uncovered": "未覆盖老人(人)",
        "col_share_longest": "{minutes:g}分钟覆盖率",
        "capacity": "服务能力指标",
        "capacity_intro": "床位、护理员、面积等按设施名录填写的数字计算；未填写的设施不计入。",
        "col_unit": "单位",
        "col_detail": "说明",
        "no_target": "（无目标）",
        "capacity_none": "设施名录没有床位、护理员或面积数据，无法计算服务能力指标。",
        "method": "方法与参数",
        "method_text": ("沿步行路网计算每个人口网格到最近设施的步行时间（步速 {speed:g} 米/秒），"
                        "统计阈值内的{age}老年人占比；村（社区）和乡镇（街道）按区划代码汇总。"
                        "完整参数如下表，结果明细见工作簿。"),
        "col_parameter": "参数",
        "col_value": "取值",
        "attribution": "数据来源与署名",
        "synthetic_note": "本报告所用数据均为合成示例数据，不代表任何真实地区。",
        "siting": "选址建议：{kind}（{minutes:g}分钟步行）",
        "siting_text": ("现状{minutes:g}分钟步行覆盖 {before}，新增 {n} 处后 {after}，"
                        "新增覆盖老人 {gain} 人（方法 {method}，状态 {status}）。"),
        "siting_sites": "建议位置",
        "siting_marginal": "边际曲线：新增 k 处时的覆盖率",
        "siting_caption": "图  {kind}选址建议（★ 建议位置，村/社区着色为新增后覆盖率）",
        "siting_map_missing": "未能生成选址图：{reason}。",
        "col_rank": "排序",
        "col_place": "位置",
        "col_lon": "经度",
        "col_lat": "纬度",
        "col_new": "新增覆盖老人(人)",
        "col_reach": "步行范围内老人(人)",
        "col_new_units": "新覆盖村社区数",
        "col_nearest": "最近现有设施",
        "col_nearest_m": "距离(米)",
        "col_k": "新增数量",
        "col_gain": "新增覆盖(人)",
        "none": "无",
        "page": "第 {page} 页",
    },
    "en": {
        "subtitle": "Walking coverage of elderly-care facilities: evaluation report",
        "cover_study": "Study",
        "cover_data": "Data",
        "cover_user_data": "user data",
        "cover_sources": "Data sources and dates",
        "cover_date": "Report date",
        "cover_population": "Population",
        "cover_software": "Software",
        "cover_targets": "Targets from",
        "source": "Source",
        "file": "File",
        "file_date": "File date",
        "network": "Street network",
        "facilities": "Facility list",
        "units": "Administrative units",
        "raster": "Population raster",
        "census": "Census totals",
        "summary": "Summary of results",
        "headline": "Elderly ({age}) within a {minutes:g}-minute walk of a facility: {share} ({within} of {total} persons).",
        "headline_area": "{area}: {share} ({within} of {total} persons).",
        "area_urban": "Urban",
        "area_rural": "Rural",
        "target_counts": "{n} policy targets: {passed} met, {failed} missed, {missing} without data.",
        "no_targets": "No policy targets are configured for this study.",
        "targets_table": "Policy targets",
        "col_target": "Target",
        "col_locality": "Locality",
        "col_required": "Required",
        "col_actual": "Actual",
        "col_gap": "Gap",
        "col_status": "Status",
        "map": "Coverage map",
        "map_caption": "Figure 1  {minutes:g}-minute walking coverage (villages shaded by coverage by any facility)",
        "map_missing": "The coverage figure could not be drawn: {reason}. See the HTML map {html}.",
        "by_kind": "Coverage by facility kind (whole study)",
        "col_kind": "Facility kind",
        "col_n_facilities": "Facilities",
        "col_elderly": "Elderly (persons)",
        "col_within": "Within {minutes:g} min (persons)",
        "col_share": "{minutes:g}-min coverage",
        "towns": "Coverage by town and street",
        "towns_any": "Coverage by any facility, per town/street",
        "towns_kinds": "{minutes:g}-minute coverage by facility kind, per town/street",
        "col_town": "Town / street",
        "col_code": "Code",
        "uncovered": "Uncovered villages and communities",
        "uncovered_intro": ("Villages and communities with no facility of the kind inside and elderly beyond a "
                            "{minutes:g}-minute walk, most uncovered elderly first."),
        "uncovered_absent": "The study has no facility of these kinds, so no village is covered by them: {kinds}.",
        "uncovered_none": "No village or community is uncovered.",
        "more_rows": "{shown} rows shown; {more} more are in the workbook {workbook}, sheet “{sheet}”.",
        "col_village": "Village / community",
        "col_urban": "Urban/rural",
        "urban": "urban",
        "rural": "rural",
        "col_uncovered": "Uncovered (persons)",
        "col_share_longest": "{minutes:g}-min coverage",
        "capacity": "Capacity ratios",
        "capacity_intro": ("Beds, caregivers and floor areas as given in the facility list; facilities "
                           "without a value are left out."),
        "col_unit": "Unit",
        "col_detail": "Detail (Chinese)",
        "no_target": "(no target)",
        "capacity_none": "The facility list has no beds, caregivers or floor areas, so no capacity ratio can be given.",
        "method": "Method and parameters",
        "method_text": ("Walking time from every population cell to the nearest facility along the street "
                        "network (at {speed:g} m/s); the share of the elderly ({age}) within each threshold; "
                        "villages and towns summed by their division codes. All parameters are listed below; "
                        "the workbook has the full tables."),
        "col_parameter": "Parameter",
        "col_value": "Value",
        "attribution": "Data sources and attribution",
        "synthetic_note": "All data in this report are synthetic demo data and describe no real place.",
        "siting": "Siting proposal: {kind} ({minutes:g}-minute walk)",
        "siting_text": ("{minutes:g}-minute walking coverage now {before}; with {n} new sites {after}; "
                        "{gain} elderly newly covered (method {method}, status {status})."),
        "siting_sites": "Proposed sites",
        "siting_marginal": "Marginal curve: coverage with k new sites",
        "siting_caption": "Figure  Proposed {kind} sites (★ proposed, villages shaded by coverage after them)",
        "siting_map_missing": "The siting figure could not be drawn: {reason}.",
        "col_rank": "Rank",
        "col_place": "Location",
        "col_lon": "Longitude",
        "col_lat": "Latitude",
        "col_new": "Newly covered (persons)",
        "col_reach": "Within walk (persons)",
        "col_new_units": "Villages newly covered",
        "col_nearest": "Nearest existing",
        "col_nearest_m": "Distance (m)",
        "col_k": "New sites",
        "col_gain": "Gain (persons)",
        "none": "none",
        "page": "Page {page}",
    },
}


# =============================================================================================
# Public API
# =============================================================================================


def write_report(
    results,
    path: str | os.PathLike,
    *,
    lang: str = "zh",
    figure_path: str | os.PathLike | None = None,
    proposals: Iterable = (),
    worst_n: int = WORST_N,
) -> Path:
    """
    Write the evaluation report of a study run as an editable Word document, atomically.

    Sections: cover (study, data sources with their file dates, report
    date), summary (headline coverage of the elderly and the policy targets
    with 目标值 / 实际值 / 差距), coverage map, coverage per town/street,
    uncovered villages and communities, capacity ratios, siting proposals
    (when given), method and parameters, attribution. A report made from
    synthetic data says so on the cover and in every page header.

    Parameters
    ----------
    results
        A :class:`coverage.pipeline.StudyResults`.
    path
        Target ``.docx`` file (usually ``<output_dir>/<study>_评估报告.docx``).
    lang
        ``zh`` (Chinese, default) or ``en``.
    figure_path
        PNG coverage figure to embed. By default the run's ``map.png``; when
        the run wrote none, one is drawn with
        :func:`coverage.figures.coverage_figure` into a temporary file, and
        when no CJK font is installed the report says so instead.
    proposals
        :class:`coverage.proposals.Proposal` values, one section each,
        placed before the method section.
    worst_n
        Rows shown of long tables (uncovered villages); a line names how
        many more are in the workbook.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    lang = _check_lang(lang)
    text = _TEXT[lang]
    config = results.config
    doc = _new_document(title=config.title, synthetic=config.synthetic, lang=lang)

    _cover(doc, results, text, lang)
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    _summary(doc, results, text, lang)
    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    _map_section(doc, results, text, figure_path)
    _town_section(doc, results, text, lang)
    _uncovered_section(doc, results, text, lang, worst_n)
    _capacity_section(doc, results, text, lang)
    for proposal in proposals:
        _siting(doc, proposal, lang, worst_n)
    _method_section(doc, results, text)
    _attribution_section(doc, results, text)

    path = Path(path)
    with atomic_path(path) as tmp:
        doc.save(str(tmp))
    return path


def add_siting_section(document_path_or_doc, proposal, *, lang: str | None = None, worst_n: int = WORST_N):
    """
    Append a siting proposal's section (summary, proposed sites, marginal curve, map) to a report.

    Parameters
    ----------
    document_path_or_doc
        A report written by :func:`write_report` (its path, rewritten
        atomically) or an open :class:`docx.document.Document`.
    proposal
        A :class:`coverage.proposals.Proposal` (from :func:`coverage.proposals.propose_sites`).
    lang
        ``zh`` or ``en``; by default the report's own language.
    worst_n
        Sites listed at most; a line names how many more are in the siting workbook.

    Returns
    -------
    pathlib.Path or docx.document.Document
        The path when a path was given, else the same document.
    """
    given_path = isinstance(document_path_or_doc, (str, os.PathLike))
    doc = docx.Document(str(document_path_or_doc)) if given_path else document_path_or_doc
    if lang is None:
        lang = "en" if str(doc.core_properties.language or "").lower().startswith("en") else "zh"
    _siting(doc, proposal, _check_lang(lang), worst_n)
    if not given_path:
        return doc
    path = Path(document_path_or_doc)
    with atomic_path(path) as tmp:
        doc.save(str(tmp))
    return path


def report_file_name(results) -> str:
    """The report's file name: ``<study>_评估报告.docx``."""
    return report_file_name_for(results.config)


def report_file_name_for(config) -> str:
    """The report file name of a study: ``<study>_评估报告.docx``."""
    return f"{config.name}_评估报告.docx"


# =============================================================================================
# Document set-up: fonts, header, tables
# =============================================================================================


def _check_lang(lang: str) -> str:
    if lang not in _TEXT:
        raise ConfigError(f"lang=: use 'zh' or 'en', got {lang!r} / 报告语言应为 zh 或 en")
    return lang


def east_asia_font() -> str:
    """
    The East Asian font named in the report: the CJK font the figures use here, else SimSun.

    A font installed on this machine (e.g. Noto Sans CJK SC) lets LibreOffice
    render the PDF here; SimSun is on every Chinese Windows, where Word
    substitutes a missing font anyway.
    """
    try:
        from coverage import figures

        found = figures._find_cjk_family()
    except Exception:  # matplotlib missing or a broken font cache: the named fallback still works in Word
        found = None
    return found[1] if found else FALLBACK_EAST_ASIA_FONT


def _set_run_fonts(rpr, east_asia: str) -> None:
    """Name the Latin and East Asian fonts on an ``w:rPr``; theme fonts are dropped so they cannot override."""
    fonts = rpr.find(qn("w:rFonts"))
    if fonts is None:
        fonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.insert(0, fonts)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(theme), None)
    fonts.set(qn("w:ascii"), LATIN_FONT)
    fonts.set(qn("w:hAnsi"), LATIN_FONT)
    fonts.set(qn("w:cs"), LATIN_FONT)
    # python-docx's font.name sets ascii/hAnsi only: Chinese text needs w:eastAsia
    fonts.set(qn("w:eastAsia"), east_asia)


def _declare_east_asia_font(doc, east_asia: str) -> None:
    """
    List the East Asian font in the font table as a Simplified-Chinese (GB2312) font, SimSun its alternative.

    Where the named font is missing (Noto Sans CJK SC on a Windows PC), Word
    and LibreOffice pick a substitute by this charset and alternative name,
    not a Latin font that shows boxes.
    """
    parts = [rel.target_part for rel in doc.part.rels.values() if rel.reltype.endswith("/fontTable")]
    if not parts:
        return
    part = parts[0]
    table = etree.fromstring(part.blob)
    for name in dict.fromkeys([east_asia, FALLBACK_EAST_ASIA_FONT]):
        if any(font.get(qn("w:name")) == name for font in table.findall(qn("w:font"))):
            continue
        font = etree.SubElement(table, qn("w:font"), {qn("w:name"): name})
        if name != FALLBACK_EAST_ASIA_FONT:
            etree.SubElement(font, qn("w:altName"), {qn("w:val"): FALLBACK_EAST_ASIA_FONT})
        etree.SubElement(font, qn("w:charset"), {qn("w:val"): "86"})  # GB2312: Simplified Chinese
        etree.SubElement(font, qn("w:family"), {qn("w:val"): "auto"})
        etree.SubElement(font, qn("w:pitch"), {qn("w:val"): "variable"})
    # the font table is a plain part in python-docx: its bytes are replaced, nothing else reads them
    part._blob = etree.tostring(table, xml_declaration=True, encoding="UTF-8", standalone=True)


def _new_document(*, title: str, synthetic: bool, lang: str):
    """A4 document with fonts set for Chinese, the title (and synthetic label) in the header, page numbers."""
    doc = docx.Document()
    east_asia = east_asia_font()
    styles = doc.styles
    # document defaults first, then every style that names theme fonts of its own
    defaults = styles.element.find(qn("w:docDefaults"))
    rpr_default = defaults.find(qn("w:rPrDefault")) if defaults is not None else None
    if rpr_default is not None:
        rpr = rpr_default.find(qn("w:rPr"))
        if rpr is None:
            rpr = rpr_default.makeelement(qn("w:rPr"), {})
            rpr_default.append(rpr)
        _set_run_fonts(rpr, east_asia)
        lang_el = rpr.find(qn("w:lang"))
        if lang_el is None:
            lang_el = rpr.makeelement(qn("w:lang"), {})
            rpr.append(lang_el)
        lang_el.set(qn("w:val"), "zh-CN" if lang == "zh" else "en-US")
        lang_el.set(qn("w:eastAsia"), "zh-CN")
    for style in styles:
        # styles naming theme fonts (headings, title) would override the defaults: name ours instead
        rpr = style.element.rPr
        if rpr is not None and rpr.find(qn("w:rFonts")) is not None:
            _set_run_fonts(rpr, east_asia)
    _declare_east_asia_font(doc, east_asia)
    styles["Normal"].font.size = Pt(10.5)
    for name in ("Heading 1", "Heading 2", "Heading 3", "Title"):
        styles[name].font.color.rgb = RGBColor(0x1F, 0x3A, 0x5F)

    section = doc.sections[0]
    section.page_height, section.page_width = Cm(29.7), Cm(21.0)
    section.left_margin = section.right_margin = Cm(2.0)
    section.top_margin = section.bottom_margin = Cm(2.2)
    header = section.header.paragraphs[0]
    header.text = f"{title} — {SYNTHETIC_LABEL}" if synthetic and SYNTHETIC_LABEL not in title else title
    header.alignment = WD_ALIGN_PARAGRAPH.CENTER
    for run in header.runs:
        run.font.size = Pt(8)
        if synthetic:
            run.font.color.rgb = RGBColor(0xCC, 0x00, 0x00)
    footer = section.footer.paragraphs[0]
    footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
    before, _, after = _TEXT[lang]["page"].partition("{page}")
    footer.add_run(before)
    _add_page_field(footer)
    footer.add_run(after)

    props = doc.core_properties
    props.title = title
    props.subject = _TEXT[lang]["subtitle"]
    props.author = "eldercare-coverage"
    props.language = "zh-CN" if lang == "zh" else "en-US"
    props.comments = SYNTHETIC_LABEL if synthetic else ""
    return doc


def _add_page_field(paragraph) -> None:
    """A PAGE field: Word and LibreOffice fill in the page number."""
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, "PAGE"), ("separate", None), (None, "1"), ("end", None)):
        if kind is not None:
            element = OxmlElement("w:fldChar")
            element.set(qn("w:fldCharType"), kind)
        elif text == "PAGE":
            element = OxmlElement("w:instrText")
            element.set(qn("xml:space"), "preserve")
            element.text = " PAGE "
        else:
            element = OxmlElement("w:t")
            element.text = text
        run._r.append(element)


def _table(doc, header: Sequence[str] | None, rows: Sequence[Sequence[str]], *, numeric: Sequence[int] = (),
           font_size: float = 8.5, widths_cm: Sequence[float] | None = None):
    """
    A Word table with a bold, shaded header row repeated on every page; cells are text.

    Parameters
    ----------
    header
        Column labels, or None for a table without a header row (label/value pairs).
    numeric
        Indices of columns aligned right (numbers).
    """
    offset = 0 if header is None else 1
    n_columns = len(header) if header is not None else max(len(r) for r in rows)
    table = doc.add_table(rows=offset + len(rows), cols=n_columns)
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    for i, label in enumerate(header or ()):
        header_row = table.rows[0]
        if i == 0:
            repeat = OxmlElement("w:tblHeader")  # repeat the header row at the top of each page
            repeat.set(qn("w:val"), "true")
            header_row._tr.get_or_add_trPr().append(repeat)
        cell = header_row.cells[i]
        cell.text = ""
        run = cell.paragraphs[0].add_run(str(label))
        run.bold = True
        run.font.size = Pt(font_size)
        shading = OxmlElement("w:shd")
        shading.set(qn("w:val"), "clear")
        shading.set(qn("w:color"), "auto")
        shading.set(qn("w:fill"), "D9E2F3")
        cell._tc.get_or_add_tcPr().append(shading)
    for r, values in enumerate(rows, start=offset):
        row = table.rows[r]
        no_split = OxmlElement("w:cantSplit")
        row._tr.get_or_add_trPr().append(no_split)
        for i, value in enumerate(values):
            paragraph = row.cells[i].paragraphs[0]
            run = paragraph.add_run(str(value))
            run.font.size = Pt(font_size)
            if i in numeric:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    if widths_cm:
        for row in table.rows:
            for cell, width in zip(row.cells, widths_cm):
                cell.width = Cm(width)
    doc.add_paragraph()
    return table


# =============================================================================================
# Formatting
# =============================================================================================


def _missing(value) -> bool:
    try:
        return value is None or pd.isna(value) or not math.isfinite(float(value))
    except (TypeError, ValueError):
        return True


def format_share(value) -> str:
    """A share 0..1 as a percentage with one decimal (``0.7378`` → ``73.8%``); ``—`` when missing."""
    return "—" if _missing(value) else f"{float(value) * 100:.1f}%"


def format_persons(value) -> str:
    """Persons as a whole number with thousands separators (``8341.6`` → ``8,342``)."""
    return "—" if _missing(value) else f"{round(float(value)):,}"


def format_number(value) -> str:
    """A ratio: whole numbers without decimals, others with one (``19.09`` → ``19.1``)."""
    if _missing(value):
        return "—"
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


def _part(text, lang: str) -> str:
    """The Chinese or English half of a bilingual ``中文 / English`` text."""
    text = "" if _missing_text(text) else str(text)
    if " / " not in text:
        return text
    zh, en = text.split(" / ", 1)
    return zh if lang == "zh" else en


def _missing_text(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _kind_label(kind: str, lang: str) -> str:
    labels = KIND_ZH if lang == "zh" else kinds_registry.registry().labels("en")
    return ";".join(labels.get(k, k) for k in str(kind).split(";"))


def _metric_spec(metric: str):
    return METRICS.get(str(metric))


def target_cells(row, lang: str = "zh") -> dict[str, str]:
    """
    One row of ``results.targets`` as the report shows it: label, locality, required, actual, gap, status.

    Shares (metrics whose target is a share) are percentages, persons whole
    numbers, ratios one decimal with their unit.
    """
    spec = _metric_spec(row.get("metric"))
    share = spec.share if spec is not None else (not _missing(row.get("required")) and float(row["required"]) <= 1.0)
    value = format_share if share else format_number
    comparison = {">=": "≥ ", "<=": "≤ ", ">": "> ", "<": "< ", "==": ""}.get(str(row.get("comparison")), "")
    status = str(row.get("status"))
    unit = _part(row.get("gap_unit"), lang)
    if status == "no data" or _missing(row.get("gap")):
        gap = "—"
    elif status == "pass":
        gap = "0"
    elif spec is not None and spec.gap == "persons":
        gap = f"{format_persons(row['gap'])} {unit}".strip()
    elif spec is not None and spec.gap == "units":
        gap = f"{int(math.ceil(float(row['gap']) - 1e-9)):,} {unit}".strip()
    else:
        gap = value(row["gap"]) if share else f"{format_number(row['gap'])} {unit}".strip()
    return {
        "label": str(row.get("label_zh" if lang == "zh" else "label_en") or row.get("target_id")),
        "locality": _part(row.get("locality"), lang),
        "required": comparison + value(row.get("required")),
        "actual": _STATUS[lang]["no data"] if status == "no data" else value(row.get("actual")),
        "gap": gap,
        "status": _STATUS[lang].get(status, status),
        "unit": "%" if share else unit,
    }


# =============================================================================================
# Sections
# =============================================================================================


def _file_date(path) -> str:
    try:
        return _dt.datetime.fromtimestamp(Path(path).stat().st_mtime, tz=_dt.timezone.utc).strftime("%Y-%m-%d")
    except OSError:
        return "—"


def _cover(doc, results, text: dict, lang: str) -> None:
    config = results.config
    doc.add_paragraph().paragraph_format.space_before = Pt(60)
    title = doc.add_paragraph(config.title, style="Title")
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    subtitle = doc.add_paragraph(text["subtitle"], style="Subtitle")
    subtitle.alignment = WD_ALIGN_PARAGRAPH.CENTER
    if config.synthetic:
        label = doc.add_paragraph()
        label.alignment = WD_ALIGN_PARAGRAPH.CENTER
        run = label.add_run(SYNTHETIC_LABEL)
        run.bold = True
        run.font.size = Pt(20)
        run.font.color.rgb = RGBColor(0xCC, 0x00, 0x00)
    doc.add_paragraph()

    try:
        version = metadata.version("eldercare-coverage")
    except metadata.PackageNotFoundError:
        version = "?"
    documents = []
    if len(results.targets) and "document" in results.targets:
        for doc_title, year in results.targets[["document", "year"]].drop_duplicates("document").itertuples(index=False):
            documents.append(f"{doc_title}" + ("" if _missing(year) else f"（{int(year)}）"))
    facts = [
        (text["cover_study"], f"{config.title} ({config.name})"),
        (text["cover_data"], SYNTHETIC_LABEL if config.synthetic else text["cover_user_data"]),
        (text["cover_population"], f"{config.population.age_group}, {config.population.year}"),
        (text["cover_date"], _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")),
        (text["cover_software"], f"eldercare-coverage {version}"),
    ]
    if documents:
        facts.append((text["cover_targets"], "；".join(documents) if lang == "zh" else "; ".join(documents)))
    _table(doc, None, facts, font_size=10, widths_cm=[4.0, 13.0])

    doc.add_paragraph(text["cover_sources"], style="Heading 3")
    sources = [(text["network"], Path(config.network).name, _file_date(config.network))]
    for source in config.facilities:
        sources.append((text["facilities"], f"{Path(source.path).name} ({source.crs})", _file_date(source.path)))
    if config.units:
        sources.append((text["units"], f"{Path(config.units.path).name} ({config.units.crs})",
                        _file_date(config.units.path)))
    for raster in config.population.rasters:
        sources.append((text["raster"], Path(raster).name, _file_date(raster)))
    if config.population.census:
        sources.append((text["census"], Path(config.population.census).name, _file_date(config.population.census)))
    _table(doc, [text["source"], text["file"], text["file_date"]], sources, font_size=9,
           widths_cm=[3.5, 10.5, 3.0])


def _coverage_row(results, scope: str, code: str, kind: str, threshold: float, unit: str = "min"):
    """``(elderly_within, elderly, share)`` of one row of ``coverage_long``, or None."""
    long = results.coverage_long
    rows = long[(long["scope"] == scope) & (long["code"].astype(str) == code) & (long["kind"] == kind)
                & (long["unit"] == unit) & (long["threshold"] == threshold)]
    if rows.empty:
        return None
    row = rows.iloc[0]
    return float(row["elderly_within"]), float(row["elderly"]), float(row["share"])


def _summary(doc, results, text: dict, lang: str) -> None:
    config = results.config
    minutes = headline_minutes(results)
    doc.add_heading(text["summary"], level=1)
    headline = _coverage_row(results, "study", "all", "any", minutes)
    if headline is not None:
        within, total, share = headline
        paragraph = doc.add_paragraph()
        paragraph.add_run(text["headline"].format(
            minutes=minutes, age=config.population.age_group, share=format_share(share),
            within=format_persons(within), total=format_persons(total))).bold = True
    for area in ("urban", "rural"):
        row = _coverage_row(results, "urban_rural", area, "any", minutes)
        if row is not None and row[1] > 0:
            doc.add_paragraph(text["headline_area"].format(
                area=text[f"area_{area}"], share=format_share(row[2]), within=format_persons(row[0]),
                total=format_persons(row[1])), style="List Bullet")

    targets = results.targets
    if not len(targets):
        doc.add_paragraph(text["no_targets"])
        return
    status = targets["status"].astype(str)
    doc.add_paragraph(text["target_counts"].format(
        n=len(targets), passed=int((status == "pass").sum()), failed=int((status == "fail").sum()),
        missing=int((status == "no data").sum())))
    doc.add_heading(text["targets_table"], level=2)
    rows = []
    for record in targets.to_dict("records"):
        cells = target_cells(record, lang)
        rows.append([cells["label"], cells["locality"], cells["required"], cells["actual"], cells["gap"],
                     cells["status"]])
    _table(doc, [text["col_target"], text["col_locality"], text["col_required"], text["col_actual"],
                 text["col_gap"], text["col_status"]], rows, numeric=(2, 3, 4), font_size=8,
           widths_cm=[6.0, 2.6, 2.0, 2.0, 2.6, 1.8])


def _study_figure(results, folder: Path) -> Path:
    """Draw the run's coverage figure into ``folder`` (as :mod:`coverage.outputs` does for ``map.png``)."""
    from coverage import figures  # matplotlib: loaded when a figure is drawn

    villages = result_tables.village_layer(results)  # the same shaded layer as the run's own map
    facilities = results.facilities
    return figures.coverage_figure(
        villages if villages is not None else results.units, facilities,
        uncovered=result_tables.uncovered_cells(results), title=results.config.title,
        synthetic=results.config.synthetic, path=folder / f"{results.config.name}_map.png",
        attribution_lines=list(result_tables.attribution_lines(results)),
        threshold_minutes=int(result_tables.headline_minutes(results)),
    )


def _add_figure(doc, path: Path, caption: str) -> None:
    doc.add_picture(str(path), width=Cm(17.0))
    doc.paragraphs[-1].alignment = WD_ALIGN_PARAGRAPH.CENTER
    doc.add_paragraph(caption, style="Caption").alignment = WD_ALIGN_PARAGRAPH.CENTER


def _map_section(doc, results, text: dict, figure_path) -> None:
    doc.add_heading(text["map"], level=1)
    caption = text["map_caption"].format(minutes=headline_minutes(results))
    candidates = [figure_path, results.output_files.get("map.png")]
    for candidate in candidates:
        if candidate is not None and Path(candidate).exists():
            _add_figure(doc, Path(candidate), caption)
            return
    html = results.output_files.get("map.html", f"{results.config.name}_map.html")
    with tempfile.TemporaryDirectory(prefix="report-figure-") as folder:
        try:
            drawn = _study_figure(results, Path(folder))
        except Exception as exc:  # e.g. CJKFontNotFoundError: the report is still written, with a note
            doc.add_paragraph(text["map_missing"].format(reason=exc, html=Path(html).name))
            return
        _add_figure(doc, drawn, caption)  # the picture is copied into the document now


def _kinds_present(results) -> list[str]:
    """Configured kinds with at least one facility (with a point or placed in a unit)."""
    present = []
    frames = [results.facilities]
    if results.presence_only is not None and len(results.presence_only):
        frames.append(results.presence_only)
    for kind in results.config.parameters.kinds:
        if any(int(ingest.has_kind(frame, kind).sum()) for frame in frames):
            present.append(kind)
    return present


def _town_section(doc, results, text: dict, lang: str) -> None:
    params = results.config.parameters
    minutes = headline_minutes(results)
    wide = results.coverage_wide
    doc.add_heading(text["towns"], level=1)

    doc.add_heading(text["by_kind"], level=2)
    rows = []
    for kind in [*params.kinds, "any"]:
        row = _coverage_row(results, "study", "all", kind, minutes)
        if row is None:
            continue
        n = int(ingest.has_kind(results.facilities, kind).sum()) if kind != "any" else len(results.facilities)
        rows.append([_kind_label(kind, lang), f"{n:,}", format_persons(row[1]), format_persons(row[0]),
                     format_share(row[2])])
    _table(doc, [text["col_kind"], text["col_n_facilities"], text["col_elderly"],
                 text["col_within"].format(minutes=minutes), text["col_share"].format(minutes=minutes)],
           rows, numeric=(1, 2, 3, 4))

    towns = wide[wide["scope"] == "town"]
    if towns.empty:
        return
    share_columns = [f"share_{t:g}min" for t in params.thresholds_min] + \
                    [f"share_{d:g}m" for d in params.distance_thresholds_m]
    share_columns = [c for c in share_columns if c in towns]
    any_rows = towns[towns["kind"] == "any"].sort_values("code")
    doc.add_heading(text["towns_any"], level=2)
    labels = [_threshold_label(c.removeprefix("share_"), lang) for c in share_columns]
    rows = [[str(r["name"]), str(r["code"]), format_persons(r["elderly"]), *[format_share(r[c]) for c in share_columns]]
            for r in any_rows.to_dict("records")]
    _table(doc, [text["col_town"], text["col_code"], text["col_elderly"], *labels], rows,
           numeric=tuple(range(2, 3 + len(share_columns))))

    kinds = _kinds_present(results)
    column = f"share_{minutes:g}min"
    if kinds and column in towns:
        doc.add_heading(text["towns_kinds"].format(minutes=minutes), level=2)
        pivot = towns.pivot_table(index=["code", "name"], columns="kind", values=column, aggfunc="first")
        rows = [[str(name), *[format_share(pivot.loc[(code, name)].get(k)) for k in [*kinds, "any"]]]
                for code, name in sorted(pivot.index)]
        _table(doc, [text["col_town"], *[_kind_label(k, lang) for k in [*kinds, "any"]]], rows,
               numeric=tuple(range(1, 2 + len(kinds))))


def _threshold_label(threshold: str, lang: str) -> str:
    """``15min`` → ``15分钟`` / ``15 min``; ``300m`` → ``300米`` / ``300 m``."""
    for suffix, zh in (("min", "分钟"), ("m", "米")):
        if threshold.endswith(suffix):
            number = threshold[: -len(suffix)]
            return f"{number}{zh}" if lang == "zh" else f"{number} {suffix}"
    return threshold


def _workbook_name(results) -> str:
    path = results.output_files.get("coverage.xlsx")
    return Path(path).name if path else f"{results.config.name}_coverage.xlsx"


def _uncovered_section(doc, results, text: dict, lang: str, worst_n: int) -> None:
    params = results.config.parameters
    longest = max(params.thresholds_min)
    doc.add_heading(text["uncovered"], level=1)
    table = results.uncovered_units
    if table is None or not len(table):
        doc.add_paragraph(text["uncovered_none"])
        return
    doc.add_paragraph(text["uncovered_intro"].format(minutes=longest))
    present = _kinds_present(results)
    absent = [k for k in params.kinds if k not in present and (table["kind"] == k).any()]
    if absent:
        doc.add_paragraph(text["uncovered_absent"].format(
            kinds=("、" if lang == "zh" else ", ").join(_kind_label(k, lang) for k in absent)))
    shown = table[table["kind"].isin(present)].sort_values(["elderly_uncovered", "code"], ascending=[False, True])
    head = shown.head(worst_n)
    rows = []
    for r in head.to_dict("records"):
        area = text["urban"] if r["urban"] is True or r["urban"] == 1 else text["rural"]  # NaN counts as rural
        rows.append([str(r["name"]), str(r["town_name"]), area, _kind_label(r["kind"], lang),
                     format_persons(r["elderly"]), format_persons(r["elderly_uncovered"]), format_share(r["share"])])
    if rows:
        _table(doc, [text["col_village"], text["col_town"], text["col_urban"], text["col_kind"],
                     text["col_elderly"], text["col_uncovered"], text["col_share_longest"].format(minutes=longest)],
               rows, numeric=(4, 5, 6))
    more = len(table) - len(head)
    if more > 0:
        sheet = "未覆盖" if lang == "zh" else "未覆盖 (uncovered)"
        doc.add_paragraph(text["more_rows"].format(shown=len(head), more=more, workbook=_workbook_name(results),
                                                   sheet=sheet))


#: capacity metrics computed for the report when no target names them: metric → (facility columns, per)
_CAPACITY_FALLBACK = {
    "beds_per_1000_elderly": (("beds",), "elderly"),
    "nursing_bed_share": (("beds", "nursing_beds"), None),
    "caregivers_per_10000_elderly": (("caregivers",), "elderly"),
}
_CAPACITY_LABEL = {
    "beds_per_1000_elderly": ("每千名老人养老床位", "elderly-care beds per 1,000 elderly"),
    "nursing_bed_share": ("护理型床位占比", "share of nursing-type beds"),
    "caregivers_per_10000_elderly": ("每万名老人持证护理员", "certified caregivers per 10,000 elderly"),
}


def _capacity_section(doc, results, text: dict, lang: str) -> None:
    doc.add_heading(text["capacity"], level=1)
    rows = []
    targets = results.targets
    named = set()
    if len(targets):
        for record in targets.to_dict("records"):
            spec = _metric_spec(record.get("metric"))
            if spec is None or spec.gap != "ratio":
                continue
            named.add(record["metric"])
            cells = target_cells(record, lang)
            rows.append([cells["label"], cells["required"], cells["actual"], cells["unit"], cells["status"],
                         str(record.get("detail_zh") or "")])
    # the standard ratios no target asks for, from the facility list, so the section is never silent on them
    elderly = float(results.demand_projected["elderly"].sum())
    facilities = results.facilities
    for metric, (columns, per) in _CAPACITY_FALLBACK.items():
        if metric in named or not all(c in facilities for c in columns):
            continue
        values = [pd.to_numeric(facilities[c], errors="coerce").to_numpy(float) for c in columns]
        if not any(pd.notna(v).any() for v in values):
            continue
        measure = getattr(measures, metric)(*values, elderly) if per else getattr(measures, metric)(*values)
        spec = _metric_spec(metric)
        value = format_share if spec.share else format_number
        rows.append([_CAPACITY_LABEL[metric][0 if lang == "zh" else 1] + text["no_target"], "—",
                     value(measure.actual), "%" if spec.share else _part(spec.gap_unit, lang), "—",
                     measure.detail_zh or measure.no_data])
    if not rows:
        doc.add_paragraph(text["capacity_none"])
        return
    doc.add_paragraph(text["capacity_intro"])
    _table(doc, [text["col_target"], text["col_required"], text["col_actual"], text["col_unit"],
                 text["col_status"], text["col_detail"]], rows, numeric=(1, 2), font_size=8,
           widths_cm=[4.0, 1.8, 1.8, 2.4, 1.6, 5.4])


def _method_section(doc, results, text: dict) -> None:
    config = results.config
    doc.add_heading(text["method"], level=1)
    doc.add_paragraph(text["method_text"].format(speed=config.parameters.walk_speed_mps,
                                                 age=config.population.age_group))
    table = parameters_table(results)
    _table(doc, [text["col_parameter"], text["col_value"]],
           [[str(p), str(v)] for p, v in table.itertuples(index=False)], font_size=8, widths_cm=[5.5, 11.5])


def _attribution_section(doc, results, text: dict) -> None:
    config = results.config
    doc.add_heading(text["attribution"], level=1)
    for line in attribution_lines(results):
        doc.add_paragraph(str(line), style="List Bullet")
    if config.facility_source_note:
        doc.add_paragraph(str(config.facility_source_note), style="List Bullet")
    if config.synthetic:
        doc.add_paragraph(f"{SYNTHETIC_LABEL}：{text['synthetic_note']}")


# =============================================================================================
# Siting proposals
# =============================================================================================


def _proposal_figure(proposal, path: Path) -> Path:
    """PNG of a proposal: villages shaded by coverage after the new sites, existing sites, ★ proposed sites."""
    import matplotlib

    from coverage import figures, maps

    family = figures.cjk_font_family()
    config = proposal.config
    units = proposal.units_layer if proposal.units_layer is not None else proposal.candidates.iloc[:0]
    existing = proposal.existing if proposal.existing is not None else proposal.sites.iloc[:0]
    label = KIND_ZH.get(proposal.kind, proposal.kind)
    with matplotlib.rc_context({"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False}):
        # the figure module's own drawing, so the proposal looks like the study map
        fig = figures._draw(
            figures._to_wgs84(units), figures._to_wgs84(existing), None,
            title=f"{config.title} — {label}选址建议",
            subtitle_lines=[f"{proposal.minutes:g} 分钟步行；现状 {proposal.result.share_before:.1%} → "
                            f"新增 {len(proposal.result.selected)} 处后 {proposal.result.share_after:.1%}"],
            attribution_lines=list(maps.data_attribution_lines(proposal.population_method)),
            synthetic=config.synthetic, target_share=None, threshold_minutes=int(proposal.minutes),
        )
        ax = fig.axes[0]
        sites = figures._to_wgs84(proposal.sites)
        ax.scatter(sites.geometry.x, sites.geometry.y, marker="*", s=320, c="#ffd700", edgecolors="black",
                   linewidths=1.0, zorder=8)
        for rank, x, y in zip(sites["rank"], sites.geometry.x, sites.geometry.y):
            ax.annotate(str(rank), (x, y), xytext=(6, 6), textcoords="offset points", fontsize=10,
                        fontweight="bold", zorder=9)
        figures._save_atomic(fig, path, dpi=130, metadata={
            "Title": f"{config.title} siting", "Software": "eldercare-coverage (coverage.docx_report)",
            "Description": SYNTHETIC_LABEL if config.synthetic else "siting proposal"})
    return path


def _siting(doc, proposal, lang: str, worst_n: int) -> None:
    text = _TEXT[lang]
    result = proposal.result
    kind = _kind_label(proposal.kind, lang)
    doc.add_heading(text["siting"].format(kind=kind, minutes=proposal.minutes), level=1)
    doc.add_paragraph(text["siting_text"].format(
        minutes=proposal.minutes, before=format_share(result.share_before), after=format_share(result.share_after),
        n=len(result.selected), gain=format_persons(result.objective), method=result.method, status=result.status))

    doc.add_heading(text["siting_sites"], level=2)
    sites = proposal.sites.sort_values("rank")
    head = sites.head(worst_n)
    rows = []
    for r in head.to_dict("records"):
        place = "·".join(str(r[k]) for k in ("town_name", "village_name") if isinstance(r.get(k), str))
        nearest = r.get("nearest_existing")
        lon, lat = (r.get("lon"), r.get("lat")) if "lon" in r else (r["geometry"].x, r["geometry"].y)
        rows.append([str(r["rank"]), place or str(r.get("candidate_id", "")), f"{lon:.5f}", f"{lat:.5f}",
                     format_persons(r.get("new_persons")), format_persons(r.get("persons_in_reach")),
                     str(r.get("n_new_units", "—")),
                     _part(nearest, lang) if isinstance(nearest, str) else text["none"],
                     format_persons(r.get("nearest_existing_m"))])
    _table(doc, [text["col_rank"], text["col_place"], text["col_lon"], text["col_lat"], text["col_new"],
                 text["col_reach"], text["col_new_units"], text["col_nearest"], text["col_nearest_m"]],
           rows, numeric=(0, 2, 3, 4, 5, 6, 8), font_size=8)
    more = len(sites) - len(head)
    if more > 0:
        workbook = f"siting_{proposal.kind}_{proposal.minutes:g}min.xlsx"
        doc.add_paragraph(text["more_rows"].format(shown=len(head), more=more, workbook=workbook,
                                                   sheet="选址建议"))

    marginal = proposal.marginal
    if marginal is not None and len(marginal):
        doc.add_heading(text["siting_marginal"], level=2)
        _table(doc, [text["col_k"], text["col_gain"], text["col_share"].format(minutes=proposal.minutes)],
               [[str(r["rank"]), format_persons(r["gain"]), format_share(r["share"])]
                for r in marginal.to_dict("records")], numeric=(0, 1, 2))

    with tempfile.TemporaryDirectory(prefix="report-siting-") as folder:
        try:
            drawn = _proposal_figure(proposal, Path(folder) / "siting.png")
        except Exception as exc:  # no CJK font, or nothing to draw: the tables still stand
            doc.add_paragraph(text["siting_map_missing"].format(reason=exc))
            return
        _add_figure(doc, drawn, text["siting_caption"].format(kind=kind))
