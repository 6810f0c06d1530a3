"""Write what a siting proposal holds: the 选址建议 tables, layer, map, and the command's summary."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import report
from coverage.proposals import Proposal
from coverage.report import KIND_ZH

__all__ = ["proposal_map", "siting_parameters", "summary_lines", "write_proposal", "write_three_tier_plan",
           "write_village_siting"]


#: how each solver method found its sites, in words a planner reads (zh / en)
METHOD_WORDS: dict[str, tuple[str, str]] = {
    "none": ("无需新增", "nothing to add"),
    "exact": ("精确求解（整数规划）", "solved exactly (integer programme)"),
    "greedy": ("逐个选最优（贪心）", "picked one best site at a time (greedy)"),
    "greedy+swap": ("逐个选最优后交换改进", "greedy, then improved by swapping sites"),
    "kernel": ("在线性松弛支撑集上精确求解", "solved exactly on the most promising candidates"),
    "lp rounding+swap": ("线性松弛取整后交换改进", "rounded from the linear relaxation, then swaps"),
    "lns": ("大邻域搜索", "large-neighbourhood search"),
}
#: what each solver status says about the answer (zh / en)
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "optimal": ("已证明最优", "proved optimal"),
    "gap_limit": ("与最优相差不超过所设差距", "within the set gap of the optimum"),
    "time_limit": ("达到求解时限，给出当前最好方案", "solver time limit reached: the best found so far"),
    "heuristic": ("未证明最优（差距见上界）", "not proved optimal (see the gap to the bound)"),
    "already_met": ("现状已达标", "target already met"),
    "unreachable": ("候选点全部建设也达不到目标", "target not reachable with every candidate"),
}


def method_words(method: str, status: str, gap: float | None = None, *, lang: str = "both") -> str:
    """
    The method and status of a siting answer in plain words, e.g. "精确求解（整数规划），已证明最优".

    ``lang`` is ``zh``, ``en`` or ``both`` (``中文 / English``); a gap above
    zero is given as a percentage of the bound.
    """
    m_zh, m_en = METHOD_WORDS.get(method, (method, method))
    s_zh, s_en = STATUS_WORDS.get(status, (status, status))
    gap_zh = gap_en = ""
    if gap is not None and np.isfinite(gap) and gap > 0:
        gap_zh, gap_en = f"，距上界 {gap:.2%}", f", {gap:.2%} from the bound"
    zh, en = f"{m_zh}，{s_zh}{gap_zh}", f"{m_en}, {s_en}{gap_en}"
    return {"zh": zh, "en": en}.get(lang, f"{zh} / {en}")


def write_proposal(proposal: Proposal) -> dict[str, Path]:
    """Write the 选址建议 table (CSV + Excel), the marginal curve and a GeoPackage layer."""
    config = proposal.config
    out = Path(config.output_dir)
    stem = f"siting_{proposal.kind}_{proposal.minutes:g}min"
    table = pd.DataFrame(proposal.sites.drop(columns="geometry"))
    excluded = proposal.excluded_candidates
    if excluded is None:
        excluded = pd.DataFrame(columns=["candidate_id", "source", "name", "reason", "detail", "lon", "lat"])
    files = {
        f"{stem}.csv": report.write_csv(table, out / f"{stem}.csv", synthetic=config.synthetic),
        f"{stem}_excluded_candidates.csv": report.write_csv(excluded, out / f"{stem}_excluded_candidates.csv",
                                                            synthetic=config.synthetic),
        f"{stem}_marginal.csv": report.write_csv(proposal.marginal, out / f"{stem}_marginal.csv",
                                                 synthetic=config.synthetic),
        f"{stem}.xlsx": report.write_excel(
            {"选址建议": table, "边际曲线": proposal.marginal, "候选点剔除": excluded,
             "参数": siting_parameters(proposal)},
            out / f"{stem}.xlsx", synthetic=config.synthetic, title=config.title,
        ),
        f"{stem}.gpkg": report.write_geopackage({"proposed_sites": proposal.sites}, out / f"{stem}.gpkg"),
    }
    if proposal.units_layer is not None:
        files[f"{stem}_map.html"] = proposal_map(proposal, out / f"{stem}_map.html")
    return files


def proposal_map(proposal: Proposal, path: Path) -> Path:
    """HTML map of the proposal: villages shaded by the kind's coverage after the new sites, existing and new sites."""
    from coverage import maps  # folium: loaded when a map is made

    config = proposal.config
    excluded = proposal.excluded_candidates
    located = None
    if excluded is not None and len(excluded):
        with_position = excluded[excluded["lon"].notna() & excluded["lat"].notna()]
        located = gpd.GeoDataFrame(with_position, crs="EPSG:4326",
                                   geometry=gpd.points_from_xy(with_position["lon"], with_position["lat"]))
    return maps.save_map(
        maps.coverage_map(
            proposal.units_layer, proposal.existing, proposed_sites=proposal.sites, excluded_candidates=located,
            title=f"{config.title} — {KIND_ZH.get(proposal.kind, proposal.kind)}选址建议",
            subtitle_lines=[
                f"{proposal.minutes:g} 分钟步行，步速 {config.parameters.speed_for(proposal.kind):g} 米/秒；"
                f"现状覆盖 {proposal.result.share_before:.1%} → 新增 {len(proposal.result.selected)} 处后 "
                f"{proposal.result.share_after:.1%}",
                "村(社区)着色为新增后的覆盖率 / villages shaded by coverage after the new sites",
            ],
            attribution_lines=list(maps.data_attribution_lines(proposal.population_method)),
            synthetic=config.synthetic, basemap=config.basemap, threshold_minutes=proposal.minutes,
        ),
        path,
    )


def siting_parameters(proposal: Proposal) -> pd.DataFrame:
    """The 参数 sheet of a proposal: kind, walk, candidates, method and status, shares, bound and gap."""
    result = proposal.result
    rows = [
        ("kind / 设施类型", f"{KIND_ZH.get(proposal.kind, proposal.kind)} ({proposal.kind})"),
        ("walking minutes / 步行分钟", proposal.minutes),
        ("walking speed / 步速 (m/s)", proposal.config.parameters.speed_for(proposal.kind)),
        ("candidates / 候选点数", len(proposal.candidates)),
        ("candidates excluded / 剔除候选点", 0 if proposal.excluded_candidates is None
         else len(proposal.excluded_candidates)),
        ("method / 方法", f"{method_words(result.method, result.status, result.gap)} ({result.method}, {result.status})"),
        ("status / 求解状态", STATUS_WORDS.get(result.status, (result.status, result.status))[0]),
        ("share before / 现状覆盖率", round(result.share_before, 6)),
        ("share after / 新增后覆盖率", round(result.share_after, 6)),
        ("new sites / 新增数量", len(result.selected)),
        ("upper bound / 上界", result.bound),
        ("gap / 最优性差距", result.gap),
    ]
    return pd.DataFrame(rows, columns=["parameter", "value"]).astype({"value": str})


def _nearest_text(record: dict, kind: str) -> str:
    """'nearest existing 120 m', or that there is no existing facility of the kind (all are new)."""
    distance = record.get("nearest_existing_m")
    if distance is None or not np.isfinite(distance):
        return f"no existing {kind} yet 现无{KIND_ZH.get(kind, kind)}"
    return f"nearest existing {distance:.0f} m"


def summary_lines(proposal: Proposal, files: dict[str, Path] | None = None) -> list[str]:
    """One screen for the ``site`` command (``files``: what :func:`write_proposal` wrote)."""
    result = proposal.result
    lines = [
        "",
        f"== {KIND_ZH.get(proposal.kind, proposal.kind)} ({proposal.kind}), {proposal.minutes:g} min walk"
        + ("" if proposal.existing is None or len(proposal.existing)
           else f"; none exists yet 无设施 (现无{KIND_ZH.get(proposal.kind, proposal.kind)})"),
        f"   covered now 现状覆盖: {result.share_before:.1%}; with {len(result.selected)} new sites 新增后: "
        f"{result.share_after:.1%}",
        f"   method 方法: {method_words(result.method, result.status, result.gap)}",
    ]
    excluded = proposal.excluded_candidates
    if excluded is not None and len(excluded):
        counts = excluded["reason"].value_counts()
        lines.append(f"   {len(proposal.candidates)} candidate sites used, {len(excluded)} excluded 剔除: "
                     + "; ".join(f"{reason} {n}" for reason, n in counts.items()))
    for record in proposal.sites.head(20).to_dict("records"):
        units = f", {record['n_new_units']} new villages/communities" if "n_new_units" in record else ""
        place = "·".join(str(record[k]) for k in ("town_name", "village_name", "street")
                         if isinstance(record.get(k), str) and record.get(k))
        lines.append(f"   #{record['rank']:>2} {place or record['candidate_id']} ({record['lon']:.5f}, {record['lat']:.5f})"
                     f" +{record['new_persons']:,.0f} persons"
                     f"{units} ({record['source']}; {_nearest_text(record, proposal.kind)})")
    for name, path in (files or {}).items():
        lines.append(f"   {name}: {path}")
    if proposal.config.synthetic:
        lines.append("   合成示例数据 / synthetic demo data")
    return lines


def write_village_siting(table: pd.DataFrame, config) -> dict[str, Path]:
    """Write ``village_siting_<kind>.csv`` and ``.xlsx`` from :func:`coverage.proposals.propose_village_sites`."""
    out = Path(config.output_dir)
    stem = f"village_siting_{table.attrs['kind']}"
    return {
        f"{stem}.csv": report.write_csv(table, out / f"{stem}.csv", synthetic=config.synthetic),
        f"{stem}.xlsx": report.write_excel({"选址建议": table}, out / f"{stem}.xlsx", synthetic=config.synthetic,
                                           title=config.title),
    }


def write_three_tier_plan(plan: pd.DataFrame, config) -> dict[str, Path]:
    """Write ``three_tier_plan.csv`` and ``.xlsx`` from :func:`coverage.proposals.three_tier_plan`."""
    out = Path(config.output_dir)
    return {
        "three_tier_plan.csv": report.write_csv(plan, out / "three_tier_plan.csv", synthetic=config.synthetic),
        "three_tier_plan.xlsx": report.write_excel({"三级网络": plan}, out / "three_tier_plan.xlsx",
                                                   synthetic=config.synthetic, title=config.title),
    }
