"""Write result tables and layers atomically: CSV (UTF-8-BOM), Excel, GeoPackage and the run record.

Headers and cell values in Chinese or English live here; the workbook's
layout (answer-first 总览, number formats, print set-up) is :mod:`coverage.workbook`'s.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from coverage import coords, workbook
from coverage import kinds as kinds_registry
from coverage._io import atomic_path
from coverage.ingest import FLAG_CODES, REJECT_REASONS
from coverage.labels import COORDINATE_DECIMALS, COORDINATE_PAIRS, LEVEL_EN, LEVEL_ZH, coordinate_columns

#: the label every table made from the demo carries
SYNTHETIC_LABEL = "合成示例数据 / synthetic demo data"

#: internal column name → Chinese header
HEADERS_ZH: dict[str, str] = {
    "scope": "统计范围",
    "code": "区划代码",
    "name": "名称",
    "level": "级别",
    "parent_code": "上级代码",
    "kind": "设施类型",
    "kind_zh": "设施类型(中文)",
    "threshold": "阈值",
    "unit": "单位",
    "elderly": "老年人口(人)",
    "elderly_within": "阈值内老年人口(人)",
    "share": "覆盖率",
    "urban": "城镇",
    "ur_code": "城乡分类代码",
    "town_code": "乡镇街道代码",
    "town_name": "乡镇街道",
    "village_code": "村社区代码",
    "village_name": "村社区",
    "facility_id": "设施编号",
    "site_id": "设施点编号",
    "n_records": "记录数",
    "source_rows": "来源行",
    "merged_into_name": "并入设施",
    "distance_m": "相距(米)",
    "name_similarity": "名称相似度",
    "example_names": "记录名称示例",
    "town_names": "所填乡镇街道",
    "seat_code": "驻地区划代码",
    "seat_name": "驻地名称",
    "seat_level": "驻地级别",
    "unit_code": "所填区划代码",
    "unit_assignment": "归属方式",
    "kinds": "服务类型",
    "type_raw": "原始类型",
    "beds": "床位数",
    "nursing_beds": "护理型床位",
    "floor_area_m2": "建筑面积(㎡)",
    "caregivers": "持证护理员(人)",
    "address": "地址",
    "source_file": "来源文件",
    "source_row": "来源行号",
    "column": "列",
    "reason": "原因",
    "detail": "说明",
    "raw": "原始内容",
    "flags": "修正标记",
    "lon": "经度(WGS-84)",
    "lat": "纬度(WGS-84)",
    "lon_gcj02": "经度(GCJ-02,高德/腾讯)",
    "lat_gcj02": "纬度(GCJ-02,高德/腾讯)",
    "unit_lon": "单位代表点经度(WGS-84)",
    "unit_lat": "单位代表点纬度(WGS-84)",
    "unit_lon_gcj02": "单位代表点经度(GCJ-02)",
    "unit_lat_gcj02": "单位代表点纬度(GCJ-02)",
    "raster_total": "栅格人口合计(人)",
    "census_total": "普查人口(人)",
    "factor": "校准系数",
    "warning": "警告",
    "gap_text": "如何补足",
    "served_elderly": "服务老年人口(人)",
    "walk_seconds": "步行耗时(秒)",
    "target_id": "指标编号",
    "label_zh": "指标",
    "label_en": "英文指标名",
    "locality": "地区",
    "document": "文件",
    "required": "目标值",
    "actual": "实际值",
    "status": "是否达标",
    "gap": "差距",
    "gap_unit": "差距单位",
    "detail_zh": "说明",
    "walk_speed_mps": "步行速度(米/秒)",
    "set": "指标组",
    "metric": "计算方法",
    "comparison": "比较",
    "year": "目标年份",
    "quote": "文件原文",
    "component": "连通片编号",
    "ferry_linked": "有轮渡连接",
    "elderly_uncovered": "未覆盖老年人口(人)",
    "on_network": "可接入路网",
    "access_m": "接入距离(米)",
    "elderly_nearest": "以其为最近设施的老人(人)",
    "nodes": "节点数",
    "facilities_total": "设施数",
    "parameter": "参数",
    "value": "取值",
    "stage": "阶段",
    "seconds": "耗时(秒)",
    "data_label": "数据说明",
    "rank": "排序",
    "gain": "新增覆盖老人(人)",
    "new_persons": "新增覆盖老人(人)",
    "persons_in_reach": "步行范围内老人(人)",
    "new_demand_points": "新增覆盖网格数",
    "cumulative_new_persons": "累计新增覆盖(人)",
    "share_after": "新增后覆盖率",
    "new_unit_codes": "新覆盖村社区代码",
    "n_new_units": "新覆盖村社区数",
    "candidate": "候选点序号",
    "candidate_id": "候选点",
    "in_proposal": "在选址建议中",
    "street": "最近道路",
    "source": "候选来源",
    "nearest_existing": "最近现有设施",
    "minutes": "步行分钟",
    "covered_now": "现状已覆盖",
    "tier": "层级",
    "parent_name": "上级单位",
    "has_now": "现状已有",
    "site": "建议位置",
    "build": "建议新建",
    "covered_after": "新建后覆盖",
    "cumulative_covered": "累计覆盖老人(人)",
    "nearest_existing_m": "距最近现有设施(米)",
    "units_newly_covered": "新覆盖村社区",
    "mode": "出行方式",
    # capacitated siting, accessibility (可达性), equity (公平性) and crowding (设施负荷)
    "assigned": "分配服务老人(人)",
    "capacity_places": "新设施可服务人数(人)",
    "cumulative_served": "累计服务老人(人)",
    "seconds_saved": "减少步行时间(人·秒)",
    "mean_minutes_after": "新增后平均步行(分钟)",
    "total_person_seconds": "总步行时间(人·秒)",
    "cumulative": "累计值",
    "objective": "优化目标",
    "access_mean": "2SFCA可达性(人均)",
    "access_zero_share": "无可达老人比例",
    "access_lq": "可达性区位商",
    "served": "容量约束下可服务老人(人)",
    "unmet": "未满足需求(人)",
    "unreachable": "步行范围内无设施(人)",
    "share_served": "容量约束覆盖率",
    "supply_unit": "服务能力单位",
    "supply_note": "服务能力说明",
    "gini": "基尼系数",
    "theil": "泰尔指数",
    "theil_between_town": "泰尔指数:乡镇间",
    "theil_within_town": "泰尔指数:乡镇内",
    "theil_between_urban": "泰尔指数:城乡间",
    "theil_within_urban": "泰尔指数:城乡内",
    "lowest_decile_value_share": "最低10%老人所占可达性份额",
    "zero_access_share": "无可达老人比例",
    "capacity_method": "容量分配求解",
    "capacity_gap": "容量分配差距",
    **{f"lorenz_{p}": f"洛伦兹曲线:最低{p}%老人所占份额" for p in range(10, 100, 10)},
    "supply": "服务能力",
    "places": "可服务人数(人)",
    "demand_in_reach": "步行范围内老人(人)",
    "supply_per_person": "人均服务能力",
    "relative_load": "相对负荷",
    "utilisation": "利用率",
    "use": "负荷判断",
}

#: facility kind → Chinese name (from the registry, coverage/kinds.yaml), with "any"
KIND_ZH: Mapping[str, str] = kinds_registry.registry().labels("zh")


def header(column: str, lang: str) -> str:
    """
    Header text for a column in the chosen language.

    Coverage columns such as ``share_15min`` become ``15分钟覆盖率``.
    """
    if lang != "zh":
        return column
    if column in HEADERS_ZH:
        return HEADERS_ZH[column]
    if column.startswith("elderly_within_"):
        rest = column[len("elderly_within_"):]
        return f"{rest.replace('min', '分钟').replace('m', '米')}内老年人口(人)"
    for prefix, zh in (("share_", "覆盖率"), ("n_", "设施数:")):
        if column.startswith(prefix):
            rest = column[len(prefix):]
            if rest in KIND_ZH:
                return f"{zh}{KIND_ZH[rest]}" if prefix == "n_" else f"{KIND_ZH[rest]}{zh}"
            return f"{rest.replace('min', '分钟').replace('m', '米')}{zh}"
    return column


#: cell values shown in Chinese tables
STATUS_ZH = {"pass": "达标", "fail": "未达标", "no data": "无数据"}
SCOPE_ZH = {"study": "全域", "town": "乡镇街道", "urban_rural": "城乡", "village": "村社区",
            "all": "全部", "urban": "城镇", "rural": "乡村"}


def with_gcj02(table: pd.DataFrame) -> pd.DataFrame:
    """
    Add GCJ-02 (Amap/Tencent/Tianditu-web) coordinates right after each WGS-84 pair of a table.

    Points outside China keep their WGS-84 values (GCJ-02 has no offset there);
    empty coordinates stay empty.
    """
    out = table
    for lon, lat in COORDINATE_PAIRS:
        if lon not in out.columns or lat not in out.columns or f"{lon}_gcj02" in out.columns:
            continue
        x = pd.to_numeric(out[lon], errors="coerce").to_numpy(float)
        y = pd.to_numeric(out[lat], errors="coerce").to_numpy(float)
        gx, gy = np.full(len(x), np.nan), np.full(len(y), np.nan)
        known = np.isfinite(x) & np.isfinite(y)
        if known.any():
            gx[known], gy[known] = coords.wgs84_to_gcj02(x[known], y[known])
        out = out.copy() if out is table else out
        at = list(out.columns).index(lat) + 1
        out.insert(at, f"{lon}_gcj02", gx)
        out.insert(at + 1, f"{lat}_gcj02", gy)
    return out


def localise(table: pd.DataFrame, lang: str, *, cells: bool = False) -> pd.DataFrame:
    """
    Rename columns to ``lang`` headers; in ``zh`` also show kinds, statuses and scopes in Chinese.

    The English codes stay in the ``en`` tables, for scripts that read them.
    With ``cells`` (the workbook) every value meant for reading is shown in
    ``lang`` too: yes/no for True/False, units, levels, reject reasons, fix
    flags and the whole-study codes (see :func:`_localise_cells`).
    """
    out = table.copy()
    if cells:
        out = _localise_cells(out, lang)
    if lang == "zh":
        if "kind" in out:
            out["kind"] = out["kind"].map(lambda k: KIND_ZH.get(k, k))
        if "kinds" in out:
            out["kinds"] = out["kinds"].map(
                lambda ks: "、".join(KIND_ZH.get(k, k) for k in str(ks).split(";")) if isinstance(ks, str) else ks)
        if "status" in out:
            out["status"] = out["status"].map(lambda v: STATUS_ZH.get(v, v))
        if "scope" in out:
            out["scope"] = out["scope"].map(lambda v: SCOPE_ZH.get(v, v))
    return out.rename(columns={c: header(c, lang) for c in out.columns})


#: administrative level → Chinese / English
#: threshold unit → (Chinese, English)
UNIT_NAMES: dict[str, tuple[str, str]] = {"min": ("分钟", "minutes"), "m": ("米", "metres")}
#: how a facility was placed in its unit → (Chinese, English)
ASSIGNMENT_NAMES: dict[str, tuple[str, str]] = {
    "code": ("按区划代码", "by division code"), "polygon": ("按坐标所在范围", "by the polygon under the point"),
    "nearest_village_point": ("按最近村点", "nearest village point"), "village_name": ("按村社区名称", "by village name"),
    "town_name": ("按乡镇街道名称", "by town name"), "none": ("未能归属", "not placed"),
}
#: codes of the whole-study rows → (Chinese, English)
CODE_NAMES: dict[str, tuple[str, str]] = {"all": ("全部", "all"), "urban": ("城镇", "urban"), "rural": ("乡村", "rural"),
                                          "outside": ("研究区外", "outside the units")}
STATUS_EN = {"pass": "met", "fail": "missed", "no data": "no data"}


def _is_boolean(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column):
        return True
    if column.dtype != object:
        return False
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, (bool, np.bool_)) for v in values)


def _localise_cells(out: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Show the workbook's coded values in ``lang``: 是/否, 分钟/米, levels, reasons, flags (codes in ``en``)."""
    pick = 0 if lang == "zh" else 1
    yes_no = ("是", "否") if lang == "zh" else ("yes", "no")
    for column in out.columns:
        if _is_boolean(out[column]):
            out[column] = out[column].map(lambda v: v if pd.isna(v) else (yes_no[0] if v else yes_no[1])).astype(object)
    if "unit" in out:
        out["unit"] = out["unit"].map(lambda v: UNIT_NAMES[v][pick] if v in UNIT_NAMES else v)
    if "level" in out:
        names = LEVEL_ZH if lang == "zh" else LEVEL_EN
        out["level"] = out["level"].map(lambda v: names.get(v, v))
    if "reason" in out:
        out["reason"] = out["reason"].map(lambda v: REJECT_REASONS[v][pick] if v in REJECT_REASONS else v)
    if "unit_assignment" in out:
        out["unit_assignment"] = out["unit_assignment"].map(
            lambda v: ASSIGNMENT_NAMES[v][pick] if v in ASSIGNMENT_NAMES else v)
    if "flags" in out:
        def flags(text):
            if not isinstance(text, str) or not text:
                return text
            words = []
            for flag in text.split(";"):
                if flag in FLAG_CODES:
                    words.append(FLAG_CODES[flag][pick])
                elif flag.startswith("unreadable_"):
                    field = flag[len("unreadable_"):]
                    words.append(f"{header(field, 'zh')}无法识别" if lang == "zh" else f"{field} unreadable")
                else:
                    words.append(flag)
            return "；".join(words) if lang == "zh" else "; ".join(words)
        out["flags"] = out["flags"].map(flags)
    if "code" in out:
        out["code"] = out["code"].map(lambda v: CODE_NAMES[v][pick] if isinstance(v, str) and v in CODE_NAMES else v)
    if "comparison" in out:
        out["comparison"] = out["comparison"].map(lambda v: {">=": "≥", "<=": "≤"}.get(v, v))
    if lang == "en":
        kind_en = kinds_registry.registry().labels("en")
        if "kind" in out:
            out["kind"] = out["kind"].map(lambda k: kind_en.get(k, k))
        if "kinds" in out:
            out["kinds"] = out["kinds"].map(
                lambda ks: ", ".join(kind_en.get(k, k) for k in str(ks).split(";")) if isinstance(ks, str) else ks)
        if "status" in out:
            out["status"] = out["status"].map(lambda v: STATUS_EN.get(v, v))
    return out


#: internal column name → English header of the workbook (``lang="en"``); the CSVs keep the internal names
HEADERS_EN: dict[str, str] = {
    "label_en": "Target", "label_zh": "Target (Chinese)", "required": "Required", "actual": "Actual",
    "status": "Result", "gap": "Gap", "gap_text": "What would close it", "document": "Document", "year": "Year",
    "detail_zh": "Notes (Chinese)", "target_id": "Target id", "set": "Target set", "locality": "Locality",
    "metric": "Metric", "kinds": "Kinds", "level": "Level", "scope": "Scope", "threshold": "Threshold",
    "unit": "Unit", "comparison": "Comparison", "quote": "Quote", "code": "Division code", "name": "Name",
    "kind": "Kind", "elderly": "Elderly (persons)", "elderly_uncovered": "Elderly uncovered (persons)",
    "share": "Coverage", "urban": "Urban", "ur_code": "Urban-rural code", "town_code": "Town code",
    "town_name": "Town/street", "village_code": "Village code", "village_name": "Village/community",
    "facility_id": "Facility id", "type_raw": "Type as given", "beds": "Beds", "nursing_beds": "Nursing beds",
    "floor_area_m2": "Floor area (m²)", "caregivers": "Certified caregivers", "address": "Address",
    "source_file": "Source file", "source_row": "Source row", "flags": "Fixes", "lon": "Longitude (WGS-84)",
    "lat": "Latitude (WGS-84)", "lon_gcj02": "Longitude (GCJ-02, Amap/Tencent)",
    "lat_gcj02": "Latitude (GCJ-02, Amap/Tencent)", "unit_lon": "Unit point longitude (WGS-84)",
    "unit_lat": "Unit point latitude (WGS-84)", "unit_lon_gcj02": "Unit point longitude (GCJ-02)",
    "unit_lat_gcj02": "Unit point latitude (GCJ-02)", "on_network": "On the network",
    "access_m": "Access distance (m)", "elderly_nearest": "Elderly with this as nearest (persons)",
    "walk_speed_mps": "Walking speed (m/s)", "component": "Network part", "nodes": "Nodes",
    "facilities_total": "Facilities", "ferry_linked": "Ferry link", "raster_total": "Raster total (persons)",
    "census_total": "Census total (persons)", "factor": "Calibration factor", "warning": "Warning",
    "column": "Column", "reason": "Reason", "detail": "Detail", "raw": "Row as given", "parameter": "Parameter",
    "value": "Value", "data_label": "Data", "unit_code": "Unit code given", "unit_assignment": "Placed in unit",
    "parent_code": "Parent code", "served_elderly": "Elderly served (persons)",
    "elderly_within": "Elderly within the threshold (persons)", "town_names": "Towns given",
    # the region workbook's own columns (coverage.region_outputs)
    "area_code": "Area code", "area_name": "Area", "numerator": "Numerator", "denominator": "Denominator",
    "areas_met": "Areas meeting the target", "areas_evaluated": "Areas evaluated",
    "threshold_min": "Walking threshold (min)", "targets_met": "Targets met", "targets_evaluated": "Targets evaluated",
    "map": "Area map", "stage": "Failed stage", "message": "Error message",
}


def header_en(column: str) -> str:
    """Readable English header of a workbook column (``share_15min`` → ``Coverage 15 min``)."""
    if column in HEADERS_EN:
        return HEADERS_EN[column]
    kind_en = kinds_registry.registry().labels("en")
    for prefix, text in (("share_", "Coverage"), ("n_", "Facilities:"), ("elderly_within_", "Elderly within")):
        if column.startswith(prefix):
            rest = column[len(prefix):]
            if rest in kind_en:
                return f"{text} {kind_en[rest]}" if prefix == "n_" else f"{text}: {kind_en[rest]}"
            rest = re.sub(r"^(\d+(?:\.\d+)?)min$", r"\1 min", rest)
            rest = re.sub(r"^(\d+(?:\.\d+)?)m$", r"\1 m", rest)
            return f"{text} {rest}" + (" (persons)" if prefix == "elderly_within_" else "")
    return column.replace("_", " ").capitalize()


def _labelled(table: pd.DataFrame, synthetic: bool) -> pd.DataFrame:
    if not synthetic:
        return table
    out = table.copy()
    out["data_label"] = SYNTHETIC_LABEL
    return out


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    """Round floats so repeated runs write byte-identical tables (persons 0.1, shares 1e-6)."""
    out = table.copy()
    for column in out.columns:
        if pd.api.types.is_float_dtype(out[column]):
            if column in coordinate_columns():
                digits = COORDINATE_DECIMALS  # 1e-6 degree ≈ 0.1 m, close enough to find a door
            else:
                digits = 6 if ("share" in column or column in ("actual", "required", "gap")) else 3
            out[column] = out[column].round(digits)
    return out


def write_csv(table: pd.DataFrame, path: str | Path, *, lang: str = "zh", synthetic: bool = False) -> Path:
    """
    Write a table as CSV in UTF-8 with BOM (so Excel shows Chinese correctly), atomically.

    Parameters
    ----------
    table
        The table with internal column names.
    path
        Target file.
    lang
        ``zh`` for Chinese headers, ``en`` for the internal names.
    synthetic
        Add a column saying the data are synthetic demo data.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        localise(_rounded(with_gcj02(_labelled(table, synthetic))), lang).to_csv(tmp, index=False, encoding="utf-8-sig",
                                                                     lineterminator="\n")
    return path


def write_excel(
    sheets: Mapping[str, pd.DataFrame],
    path: str | Path,
    *,
    lang: str = "zh",
    synthetic: bool = False,
    title: str | None = None,
) -> Path:
    """
    Write several tables to one formatted Excel workbook, atomically.

    Each sheet starts with a title line (the study title, and the synthetic
    label where it applies), then the header row, then the data; the layout
    (number formats, fills, widths, print set-up) is :mod:`coverage.workbook`'s.
    A table whose ``attrs["role"]`` is ``"targets"`` becomes the answer-first
    总览 (指标, 目标值, 实际值, 是否达标, 差距 …) plus a 指标说明 sheet with
    the ids, metric codes and quotes; ``attrs["headline"]`` (see
    :func:`coverage.workbook.headline_rows`) goes above a sheet's table.

    Parameters
    ----------
    sheets
        Sheet name (Chinese) → table (internal column names).
    path
        Target ``.xlsx`` file.
    lang
        ``zh``: Chinese headers and values; ``en``: English sheet names
        (:data:`SHEETS_EN`), headers (:func:`header_en`) and values.
    synthetic
        As in :func:`write_csv`.
    title
        Text of the first row of every sheet and of the printed page header.
    """
    specs, heading = workbook_specs(sheets, lang=lang, synthetic=synthetic, title=title)
    return workbook.write_workbook(Path(path), specs, heading=heading)


def workbook_specs(
    sheets: Mapping[str, pd.DataFrame], *, lang: str = "zh", synthetic: bool = False, title: str | None = None,
) -> tuple[list[workbook.SheetSpec], str]:
    """
    The sheets of :func:`write_excel`, localised and laid out, in order, and the heading over each.

    A targets table (``attrs["role"] == "targets"``) gives the 总览 sheet and,
    after the others, the 指标说明 sheet; parameters as in :func:`write_excel`.
    """
    heading = title or ""
    if synthetic and SYNTHETIC_LABEL not in heading:
        heading = f"{heading}（{SYNTHETIC_LABEL}）" if heading else SYNTHETIC_LABEL
    specs, notes = [], []
    for sheet_name, table in sheets.items():
        attrs = dict(table.attrs)
        name = sheet_title(sheet_name, lang)
        statuses = row_formats = None
        if attrs.get("role") == "targets" and len(table):
            overview, row_formats, note_table = workbook.overview_frames(table, lang)
            statuses = [str(s) for s in overview["status"]]
            notes.append(_sheet_spec(sheet_title(TARGET_NOTES_SHEET, lang), note_table, lang, synthetic))
            table = overview
        spec = _sheet_spec(name, table, lang, synthetic, status=statuses, row_formats=row_formats)
        if attrs.get("headline"):
            spec.headline = workbook.headline_rows(attrs["headline"], attrs.get("statuses"), lang)
        specs.append(spec)
    return [*specs, *notes], heading


#: sheet of the workbook with each target's ids, metric codes and quote
TARGET_NOTES_SHEET = "指标说明"

#: Chinese sheet name → English sheet name (``lang="en"``)
SHEETS_EN: dict[str, str] = {
    "总览": "Overview", "覆盖率": "Coverage", "乡镇街道": "Towns", "村社区": "Villages", "设施": "Facilities",
    "未覆盖": "Uncovered units", "敏感性": "Sensitivity", "连通性": "Connectivity", "人口校准": "Calibration",
    "剔除记录": "Rejected rows", "参数": "Parameters", "仅计存在": "Presence only", "合并记录": "Merged records",
    "疑似默认坐标": "Geocoder fallbacks", "指标说明": "Target notes", "选址建议": "Proposed sites",
    "边际曲线": "Marginal gains", "候选点剔除": "Excluded candidates", "三级网络": "Three-tier plan",
    "可达性": "Accessibility", "公平性": "Equity", "设施负荷": "Facility load",
}


def sheet_title(name: str, lang: str) -> str:
    """Sheet name in ``lang`` (the Chinese name is the key), at most 31 characters."""
    return (SHEETS_EN.get(name, name) if lang == "en" else name)[:31]


def _sheet_spec(name, table, lang, synthetic, *, status=None, row_formats=None):
    prepared = _rounded(with_gcj02(_labelled(table, synthetic)))
    columns = [str(c) for c in prepared.columns]
    frame = localise(prepared, lang, cells=True)
    if lang == "en":
        frame.columns = [header_en(c) for c in columns]
    return workbook.SheetSpec(name=name, frame=frame, columns=columns, status=status, row_formats=row_formats)


#: layers with fewer features get no R-tree in the GeoPackage: QGIS scans them at once, and a county's
#: dissolved gap areas and isochrones (a few thousand features) carried 5 MB of index for nothing
SPATIAL_INDEX_MIN_FEATURES = 50_000


def write_geopackage(layers: Mapping[str, object], path: str | Path) -> Path:
    """
    Write GeoDataFrames as layers of one GeoPackage, atomically (pyogrio).

    Layers of at least :data:`SPATIAL_INDEX_MIN_FEATURES` features get a
    spatial index (R-tree); smaller ones none.

    Parameters
    ----------
    layers
        Layer name → GeoDataFrame (empty ones are skipped).
    path
        Target ``.gpkg``.
    """
    with geopackage(path) as add:
        add(layers)
    return Path(path)


@contextmanager
def geopackage(path: str | Path) -> Iterator[Callable[[Mapping[str, object]], None]]:
    """
    A GeoPackage written in parts: ``add(layers)`` as each part is ready, the file in place when the block ends.

    The layers keep the order they were added in; the file appears at
    ``path`` only when the block ends without error (:func:`coverage._io.atomic_path`),
    so a run writes what needs no isochrone while they are still being drawn
    (:func:`coverage.outputs.write_study_outputs`). Layers as in :func:`write_geopackage`.
    """
    with atomic_path(Path(path)) as tmp:
        def add(layers: Mapping[str, object]) -> None:
            for name, layer in layers.items():
                if layer is None or len(layer) == 0:
                    continue
                index = "YES" if len(layer) >= SPATIAL_INDEX_MIN_FEATURES else "NO"
                layer.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio",
                              layer_options={"SPATIAL_INDEX": index})

        yield add


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def write_json(record: Mapping, path: str | Path) -> Path:
    """Write a JSON document (UTF-8, indented, Chinese kept readable) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=_json_default), encoding="utf-8")
    return path
