"""Write a scenario comparison: the 情景对比 workbook and CSVs, the difference GeoPackage and map, and a summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from coverage import report
from coverage.report import KIND_ZH
from coverage.scenarios import ScenarioComparison

__all__ = ["SCENARIO_HEADERS_ZH", "scenario_settings", "scenario_summary_lines", "write_scenarios"]

#: Chinese headers of the comparison tables (the internal names stay in ``lang="en"``)
SCENARIO_HEADERS_ZH: dict[str, str] = {
    "scenario": "情景", "kind": "设施类型", "minutes": "步行分钟", "scope": "范围", "code": "区划代码",
    "name": "名称", "elderly_baseline": "老年人口(人)", "covered_baseline": "基准覆盖老人(人)",
    "covered_scenario": "情景覆盖老人(人)", "difference": "差值", "gained": "新增覆盖老人(人)",
    "lost": "失去覆盖老人(人)", "share_baseline": "基准覆盖率", "share_scenario": "情景覆盖率",
    "units_baseline": "基准有设施村社区(个)", "units_scenario": "情景有设施村社区(个)",
    "units_difference": "有设施村社区差值(个)", "target_id": "指标编号", "label_zh": "指标", "kinds": "设施类型",
    "level": "层级", "unit": "单位", "required": "目标值", "actual_baseline": "基准实际值",
    "status_baseline": "基准是否达标", "actual_scenario": "情景实际值", "status_scenario": "情景是否达标",
    "gap_baseline": "基准差距", "gap_scenario": "情景差距", "gap_unit": "差距单位", "setting": "设置",
    "value": "内容", "change": "变化", "cells": "栅格数",
}
_STATUS_ZH = {"pass": "达标", "fail": "未达标", "no data": "无数据"}


def _zh(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    if lang != "zh":
        return table
    out = table.copy()
    for column in ("status_baseline", "status_scenario"):
        if column in out:
            out[column] = out[column].map(lambda s: _STATUS_ZH.get(s, s))
    if "kind" in out:
        out["kind"] = out["kind"].map(lambda k: f"{KIND_ZH.get(k, k)} ({k})")
    if "scope" in out:
        out["scope"] = out["scope"].map({"study": "全域", "town": "乡镇街道"}).fillna(out["scope"])
    return out.rename(columns=SCENARIO_HEADERS_ZH)


def scenario_settings(comparison: ScenarioComparison) -> pd.DataFrame:
    """One row per scenario setting: what each scenario changes (情景设置 sheet)."""
    rows = []
    for s in comparison.scenarios:
        if s.add_sites:
            rows.append((s.name, "add_sites / 新增设施", "; ".join(
                f"{site.name} ({','.join(site.kinds)}; {site.lon:.6f}, {site.lat:.6f} {site.crs})" for site in s.add_sites)))
        if s.close:
            rows.append((s.name, "close / 关闭设施", "; ".join(s.close)))
        if s.walk_speed_mps is not None:
            rows.append((s.name, "walk_speed_mps / 步速(米/秒)", f"{s.walk_speed_mps:g}"))
        if s.kind_profiles:
            rows.append((s.name, "kind_profiles / 出行方式", "; ".join(f"{k}: {v}" for k, v in s.kind_profiles.items())))
        if s.population_year is not None:
            rows.append((s.name, "population_year / 人口年份", str(s.population_year)))
        if s.population_rasters:
            rows.append((s.name, "population_rasters / 人口栅格", "; ".join(Path(p).name for p in s.population_rasters)))
        if s.changes_population:
            rows.append((s.name, "difference map / 差异图", "另一人口：无逐格差异图 / another population: no per-cell "
                                                            "difference map (gained/lost not defined)"))
    rows.append(("—", "compared / 对比口径", f"{comparison.minutes:g} 分钟步行；村社区“有设施”= 村社区内有或按代码归属该类设施 "
                                          f"/ {comparison.minutes:g} min walk; a village/community 'has' a kind "
                                          "when one is inside or assigned to it by code"))
    return pd.DataFrame(rows, columns=["scenario", "setting", "value"])


def write_scenarios(comparison: ScenarioComparison, *, lang: str = "zh", make_map: bool = True) -> dict[str, Path]:
    """
    Write ``scenarios_compare.csv`` (study and towns), ``scenarios_targets.csv``, ``<study>_情景对比.xlsx``,
    ``scenarios.gpkg`` (difference areas, sites added and closed) and ``scenario_map.html``.
    """
    config = comparison.config
    out = Path(config.output_dir)
    towns, targets = comparison.towns, comparison.targets
    study_rows = towns[towns["scope"] == "study"]
    town_rows = towns[towns["scope"] == "town"]
    syn = config.synthetic
    files = {
        "scenarios_compare.csv": report.write_csv(_zh(towns, lang), out / "scenarios_compare.csv", lang=lang,
                                                  synthetic=syn),
        "scenarios_targets.csv": report.write_csv(_zh(targets, lang), out / "scenarios_targets.csv", lang=lang,
                                                  synthetic=syn),
    }
    book = f"{config.name}_情景对比.xlsx"
    files[book] = report.write_excel(
        {"情景对比": _zh(study_rows, lang), "情景对比_指标": _zh(targets, lang), "情景对比_乡镇": _zh(town_rows, lang),
         "情景设置": _zh(scenario_settings(comparison), lang)},
        out / book, lang=lang, synthetic=syn, title=config.title)
    layers = {"scenario_difference": comparison.difference}
    if len(comparison.added_sites):
        layers["scenario_added_sites"] = comparison.added_sites
    if len(comparison.closed):
        layers["scenario_closed"] = comparison.closed
    files["scenarios.gpkg"] = report.write_geopackage(layers, out / "scenarios.gpkg")
    if make_map:
        files["scenario_map.html"] = _scenario_map(comparison, out / "scenario_map.html")
    return files


def _scenario_map(comparison: ScenarioComparison, path: Path) -> Path:
    from coverage import maps  # folium: loaded when a map is made

    config = comparison.config
    base = comparison.baseline
    units = base.units[base.units["level"] == "village"] if base.units is not None else None
    if units is None or units.empty:
        units = base.units if base.units is not None else base.facilities.iloc[:0]
    names = ", ".join(s.name for s in comparison.scenarios)
    # shown at first: the kind the first scenario changes most
    diff = comparison.difference
    first = diff[diff["scenario"] == diff["scenario"].iloc[0]] if len(diff) else diff
    show_kind = "any"
    if len(first[first["kind"] != "any"]):
        show_kind = first[first["kind"] != "any"].groupby("kind")["elderly"].sum().idxmax()
    return maps.save_map(
        maps.scenario_map(
            units, base.facilities, comparison.difference, added_sites=comparison.added_sites,
            closed=comparison.closed, title=f"{config.title} — 情景对比 / scenarios",
            subtitle_lines=[f"{comparison.minutes:g} 分钟步行：绿色为情景新增覆盖，红色为失去覆盖 / green: coverage "
                            "gained, red: lost", f"情景 / scenarios: {names}"],
            attribution_lines=list(maps.data_attribution_lines()), synthetic=config.synthetic,
            basemap=config.basemap, show_kind=show_kind),
        path)


def scenario_summary_lines(comparison: ScenarioComparison, files: dict[str, Path] | None = None) -> list[str]:
    """One screen for ``eldercov run`` of a study with scenarios: per scenario the study-wide change per kind."""
    towns = comparison.towns
    lines = ["", f"== scenarios 情景对比 ({comparison.minutes:g} min walk), baseline → scenario:"]
    for scenario in comparison.scenarios:
        lines.append(f"   {scenario.name}:")
        rows = towns[(towns["scenario"] == scenario.name) & (towns["scope"] == "study")]
        changed = rows[(rows["difference"].abs() > 0.5) | (rows["units_difference"] != 0)]
        for row in changed.to_dict("records"):
            lines.append(f"     {KIND_ZH.get(row['kind'], row['kind']):<10} {row['share_baseline']:.1%} → "
                         f"{row['share_scenario']:.1%} ({row['difference']:+,.0f} persons 人; "
                         f"{row['units_difference']:+d} villages with one 有设施村社区)")
        if changed.empty:
            lines.append("     no change 无变化")
        t = comparison.targets[comparison.targets["scenario"] == scenario.name]
        flips = t[t["status_baseline"] != t["status_scenario"]]
        for row in flips.to_dict("records"):
            lines.append(f"     target 指标 {row['label_zh']}: {_STATUS_ZH.get(row['status_baseline'], row['status_baseline'])}"
                         f" → {_STATUS_ZH.get(row['status_scenario'], row['status_scenario'])}")
    for name, path in (files or {}).items():
        lines.append(f"   {name}: {path}")
    if comparison.config.synthetic:
        lines.append("   合成示例数据 / synthetic demo data")
    return lines
