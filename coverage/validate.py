"""The ``eldercov validate`` report: a facility file's rows summarised by type value, fixes and reject reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from coverage import kinds as kinds_registry
from coverage.ingest import FLAG_CODES, REJECT_REASONS, read_facilities

__all__ = ["validate_report"]

# ----------------------------------------------------------------------------- validation report


def _reason_label(reason: str, lang: str) -> str:
    zh, en = REJECT_REASONS.get(reason, (reason, reason))
    return {"zh": f"{reason} {zh}", "en": f"{reason} ({en})"}.get(lang, f"{reason} {zh} / {en}")


def _flag_label(flag: str, lang: str) -> str:
    key = flag if flag in FLAG_CODES else ("unreadable_capacity" if flag.startswith("unreadable_") else flag)
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
