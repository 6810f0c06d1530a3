"""Write result tables and layers atomically: CSV (UTF-8-BOM), Excel, GeoPackage and the run record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from coverage import kinds as kinds_registry
from coverage._io import atomic_path

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
    "target_id": "指标编号",
    "label_zh": "指标",
    "label_en": "target",
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


def localise(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    """
    Rename columns to ``lang`` headers; in ``zh`` also show kinds, statuses and scopes in Chinese.

    The English codes stay in the ``en`` tables, for scripts that read them.
    """
    out = table.copy()
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
        localise(_rounded(_labelled(table, synthetic)), lang).to_csv(tmp, index=False, encoding="utf-8-sig",
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
    Write several tables to one Excel workbook, atomically.

    Each sheet starts with a title line (the study title, and the synthetic
    label where it applies), then the header row, then the data.

    Parameters
    ----------
    sheets
        Sheet name → table (internal column names).
    path
        Target ``.xlsx`` file.
    lang, synthetic
        As in :func:`write_csv`.
    title
        Text of the first row of every sheet.
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    path = Path(path)
    heading = title or ""
    if synthetic and SYNTHETIC_LABEL not in heading:
        heading = f"{heading}（{SYNTHETIC_LABEL}）" if heading else SYNTHETIC_LABEL
    with atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for sheet_name, table in sheets.items():
                frame = localise(_rounded(_labelled(table, synthetic)), lang)
                frame.to_excel(writer, sheet_name=sheet_name[:31], index=False, startrow=1)
                sheet = writer.sheets[sheet_name[:31]]
                sheet.cell(row=1, column=1, value=heading).font = Font(bold=True)
                for index, column in enumerate(frame.columns, start=1):
                    width = max([len(str(column))] + [len(str(v)) for v in frame[column].head(200)])
                    sheet.column_dimensions[get_column_letter(index)].width = min(max(8, width * 1.6), 60)
                sheet.freeze_panes = "A3"
            # fixed document times keep repeated runs identical
            import datetime as _dt

            fixed = _dt.datetime(2000, 1, 1)
            writer.book.properties.created = fixed
            writer.book.properties.modified = fixed
    return path


def write_geopackage(layers: Mapping[str, object], path: str | Path) -> Path:
    """
    Write GeoDataFrames as layers of one GeoPackage, atomically (pyogrio).

    Parameters
    ----------
    layers
        Layer name → GeoDataFrame (empty ones are skipped).
    path
        Target ``.gpkg``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        for name, layer in layers.items():
            if layer is None or len(layer) == 0:
                continue
            layer.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    return path


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
