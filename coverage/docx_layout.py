"""The Word report's page set-up and wording: fonts (East Asian), header and page numbers, tables, fixed texts, number formats."""

from __future__ import annotations

import math
from collections.abc import Sequence

import docx
import pandas as pd
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt, RGBColor
from lxml import etree

from coverage import kinds as kinds_registry
from coverage._errors import ConfigError
from coverage.catalogue import METRICS
from coverage.report import KIND_ZH, SYNTHETIC_LABEL

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
