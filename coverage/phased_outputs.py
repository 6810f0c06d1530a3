"""Write a phased siting plan: the 分年度选址 sheet and CSVs, a GeoPackage layer, and the command's summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from coverage import report
from coverage.phased_plan import PhasedPlan
from coverage.proposal_outputs import STATUS_WORDS
from coverage.report import KIND_ZH

__all__ = ["PHASED_HEADERS_ZH", "PHASED_METHOD_WORDS", "method_words", "phased_parameters", "phased_summary_lines",
           "write_phased_plan"]

#: Chinese headers of the phased tables (the internal names stay in ``lang="en"``)
PHASED_HEADERS_ZH: dict[str, str] = {
    "year": "建设年份", "rank": "年内序号", "candidate_id": "候选点", "source": "候选点来源", "name": "名称",
    "town_name": "乡镇街道", "village_name": "村社区", "street": "最近道路", "lon": "经度", "lat": "纬度",
    "gain": "当年新增覆盖老人(人)", "covered": "累计覆盖老人(人)", "share": "覆盖率",
    "new_sites": "当年新建(处)", "sites_so_far": "累计新建(处)", "budget": "当年可建(处)",
    "existing_covered": "现有设施覆盖老人(人)", "share_existing": "现有设施覆盖率",
    "target_share": "目标覆盖率", "target_met": "是否达标", "existing_open": "当年开放的现有设施(处)",
}


#: how the phased plan was found, in words a planner reads (zh / en)
PHASED_METHOD_WORDS: dict[str, tuple[str, str]] = {
    "none": ("无需新增", "nothing to add"),
    "exact": ("多年度整数规划精确求解", "solved exactly (multi-year integer programme)"),
    "greedy": ("逐年选当年起收益最大的站点（贪心）", "each year the sites gaining most over the years left (greedy)"),
    "kernel": ("在候选子集上多年度精确求解", "solved exactly over the most promising candidates"),
    "scheduled": ("末年最优站点逐年排序", "the last year's best sites, put into the years greedily"),
}


def method_words(method: str, status: str, gap: float | None = None) -> str:
    """The method and status of a phased plan in words (``中文 / English``), with the gap to the bound."""
    m_zh, m_en = PHASED_METHOD_WORDS.get(method, (method, method))
    s_zh, s_en = STATUS_WORDS.get(status, (status, status))
    gap_zh = gap_en = ""
    if gap is not None and gap > 0:
        gap_zh, gap_en = f"，距上界 {gap:.2%}", f", {gap:.2%} from the bound"
    return f"{m_zh}，{s_zh}{gap_zh} / {m_en}, {s_en}{gap_en}"


def _zh(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    if lang != "zh":
        return table
    out = table.copy()
    if "target_met" in out:
        out["target_met"] = out["target_met"].map({True: "达标", False: "未达标"}).fillna("无目标")
    return out.rename(columns=PHASED_HEADERS_ZH)


def phased_tables(plan: PhasedPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables of a plan: sites by year (分年度选址) and coverage after each year (年度覆盖)."""
    columns = ["year", "rank", "town_name", "village_name", "street", "name", "candidate_id", "source",
               "lon", "lat", "gain", "covered", "share"]
    sites = pd.DataFrame(plan.sites.drop(columns="geometry"))
    sites = sites[[c for c in columns if c in sites]]
    years = plan.years.copy()
    years.insert(4, "existing_open", list(plan.opened_existing))
    return sites, years


def phased_parameters(plan: PhasedPlan) -> pd.DataFrame:
    """The 参数 sheet: kind, walk, budgets, method and status, bound and gap (person-years)."""
    result = plan.result
    rows = [
        ("kind / 设施类型", f"{KIND_ZH.get(plan.kind, plan.kind)} ({plan.kind})"),
        ("walking minutes / 步行分钟", plan.minutes),
        ("walking speed / 步速 (m/s)", plan.config.parameters.speed_for(plan.kind)),
        ("years / 年份", ", ".join(str(y) for y in result.years)),
        ("sites per year / 每年可建", ", ".join(f"{y}: {b}" for y, b in zip(result.years, result.budgets))),
        ("total / 总数上限", result.total_budget),
        ("candidates / 候选点数", len(plan.candidates)),
        ("objective / 目标", "累计新增覆盖（人·年），先保证目标年份尽早达标 / person-years newly covered, "
                              "targets met as early as possible first"),
        ("method / 方法", f"{method_words(result.method, result.status, result.gap)} ({result.method}, "
                          f"{result.status})"),
        ("person-years newly covered / 累计新增覆盖(人·年)", round(result.objective, 1)),
        ("upper bound / 上界(人·年)", None if result.bound is None else round(result.bound, 1)),
        ("gap / 最优性差距", result.gap),
        ("existing facilities / 现有设施", "规划、在建设施自其开放年份计入 / planned and under-construction "
                                           "facilities count from their opening year"),
    ]
    return pd.DataFrame(rows, columns=["parameter", "value"]).astype({"value": str})


def write_phased_plan(plan: PhasedPlan, *, lang: str = "zh") -> dict[str, Path]:
    """Write ``phased_<kind>_<min>min.csv`` (sites), ``_years.csv``, ``.xlsx`` (分年度选址, 年度覆盖, 参数) and ``.gpkg``."""
    config = plan.config
    out = Path(config.output_dir)
    stem = f"phased_{plan.kind}_{plan.minutes:g}min"
    sites, years = phased_tables(plan)
    return {
        f"{stem}.csv": report.write_csv(_zh(sites, lang), out / f"{stem}.csv", lang=lang, synthetic=config.synthetic),
        f"{stem}_years.csv": report.write_csv(_zh(years, lang), out / f"{stem}_years.csv", lang=lang,
                                              synthetic=config.synthetic),
        f"{stem}.xlsx": report.write_excel(
            {"分年度选址": _zh(sites, lang), "年度覆盖": _zh(years, lang), "参数": phased_parameters(plan)},
            out / f"{stem}.xlsx", lang=lang, synthetic=config.synthetic, title=config.title),
        f"{stem}.gpkg": report.write_geopackage({"phased_sites": plan.sites}, out / f"{stem}.gpkg"),
    }


def phased_summary_lines(plan: PhasedPlan, files: dict[str, Path] | None = None) -> list[str]:
    """One screen for ``eldercov site --per-year / --budget``."""
    result = plan.result
    kind_zh = KIND_ZH.get(plan.kind, plan.kind)
    lines = ["", f"== {kind_zh} ({plan.kind}), {plan.minutes:g} min walk: phased siting 分年度选址",
             f"   method 方法: {method_words(result.method, result.status, result.gap)}"]
    for row in plan.years.to_dict("records"):
        target = "" if row["target_share"] is None or pd.isna(row["target_share"]) else (
            f"; target 目标 {row['target_share']:.0%} {'met 达标' if row['target_met'] else 'missed 未达标'}")
        lines.append(f"   {row['year']}: +{row['new_sites']} sites 新建 (budget {row['budget']}), "
                     f"covered 覆盖 {row['share']:.1%} (existing alone 现有 {row['share_existing']:.1%}){target}")
        for site in plan.sites[plan.sites["year"] == row["year"]].to_dict("records"):
            place = "·".join(str(site[k]) for k in ("town_name", "village_name", "street")
                             if isinstance(site.get(k), str) and site.get(k))
            lines.append(f"      #{site['rank']} {place or site['candidate_id']} ({site['lon']:.5f}, {site['lat']:.5f}) "
                         f"+{site['gain']:,.0f} persons")
    for name, path in (files or {}).items():
        lines.append(f"   {name}: {path}")
    if plan.config.synthetic:
        lines.append("   合成示例数据 / synthetic demo data")
    return lines
