"""Writes a trajectory: the 年度进展 workbook (targets × years, met/unmet fills), CSV tables and the trajectory figure."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from coverage import report, workbook
from coverage.catalogue import STATUS_FAIL, STATUS_NO_DATA, STATUS_PASS
from coverage.config import StudyConfig
from coverage.kinds import ANY_KIND
from coverage.year_tables import STATUS_NOT_DUE, Trajectory, coverage_by_year

__all__ = ["write_year_outputs", "progress_table", "progress_matrix", "coverage_matrix", "SYNTHETIC_TEXT"]

SYNTHETIC_TEXT = "合成示例数据 / synthetic demo data"
_STATUS_TEXT = {
    "zh": {STATUS_PASS: "达标", STATUS_FAIL: "未达标", STATUS_NO_DATA: "无数据", STATUS_NOT_DUE: "未到期"},
    "en": {STATUS_PASS: "met", STATUS_FAIL: "not met", STATUS_NO_DATA: "no data", STATUS_NOT_DUE: "not due"},
}
_HEADERS = {
    "zh": {"label": "指标", "target_id": "指标编号", "year_evaluated": "年份", "required": "目标值", "actual": "实际值",
           "status": "是否达标", "series": "分年度目标", "year": "目标年份", "first_year_met": "首次达标年份",
           "on_time": "按期达标", "kind": "设施类型", "threshold": "阈值", "unit": "单位", "records_open": "在用设施记录",
           "sites": "有坐标设施点", "presence_only": "仅计所属村社区"},
    "en": {"label": "target", "target_id": "target id", "year_evaluated": "year", "required": "required",
           "actual": "actual", "status": "status", "series": "yearly series", "year": "due year",
           "first_year_met": "first year met", "on_time": "met by due year", "kind": "kind", "threshold": "threshold",
           "unit": "unit", "records_open": "open records", "sites": "sites with a point",
           "presence_only": "presence only"},
}


def _label_column(lang: str) -> str:
    return "label_zh" if lang == "zh" else "label_en"


def progress_table(trajectory: Trajectory, lang: str = "zh") -> pd.DataFrame:
    """
    One row per target and year: required and actual value of the year, met or not, and the first year met.

    Columns (internal names): ``label``, ``target_id``, ``year_evaluated``,
    ``required``, ``actual``, ``status`` (raw code), ``series``, ``year``
    (due), ``first_year_met``.
    """
    table = trajectory.targets
    if table.empty:
        return pd.DataFrame(columns=["label", "target_id", "year_evaluated", "required", "actual", "status", "series",
                                     "year", "first_year_met"])
    first = trajectory.first_met.set_index("target_id")["first_year_met"]
    out = pd.DataFrame({
        "label": table[_label_column(lang)].to_numpy(),
        "target_id": table["target_id"].to_numpy(),
        "year_evaluated": table["year_evaluated"].to_numpy(),
        "required": table["required"].to_numpy(float),
        "actual": table["actual"].to_numpy(float),
        "status": table["status"].to_numpy(),
        "series": table["series"].to_numpy(bool),
        "year": table["year"].to_numpy(),
        "first_year_met": table["target_id"].map(first).to_numpy(),
    })
    return out.reset_index(drop=True)


def progress_matrix(trajectory: Trajectory, lang: str = "zh") -> tuple[pd.DataFrame, list[list[str]]]:
    """
    Targets × years: per cell "actual / required" and, beside it, the raw status of each cell (for fills).

    Returns
    -------
    tuple
        ``(frame, statuses)``: ``frame`` has ``label``, ``year`` (due),
        ``first_year_met`` and one text column per year; ``statuses`` one
        list per row with the raw status of each year.
    """
    table = trajectory.targets
    years = list(trajectory.years)
    first = trajectory.first_met.set_index("target_id")
    rows, statuses = [], []
    for target_id, part in (table.groupby("target_id", sort=False) if not table.empty else []):
        part = part.set_index("year_evaluated")
        share = bool(part["metric"].iloc[0] in _share_metrics())
        row = {"label": part[_label_column(lang)].iloc[0], "year": part["year"].iloc[0],
               "first_year_met": first.loc[target_id, "first_year_met"]}
        cell_status = []
        for year in years:
            actual, required, status = part.loc[year, "actual"], part.loc[year, "required"], part.loc[year, "status"]
            text = _STATUS_TEXT[lang].get(status, status)
            if np.isfinite(actual):
                text = f"{_value(actual, share)} / {_value(required, share) if np.isfinite(required) else '—'} {text}"
            row[str(year)] = text
            cell_status.append(status)
        rows.append(row)
        statuses.append(cell_status)
    frame = pd.DataFrame(rows, columns=["label", "year", "first_year_met", *[str(y) for y in years]])
    return frame, statuses


def _share_metrics() -> set[str]:
    from coverage.catalogue import METRICS

    return {name for name, spec in METRICS.items() if spec.share}


def _value(value: float, share: bool) -> str:
    return f"{value * 100:.1f}%" if share else f"{value:.3g}"


def coverage_matrix(trajectory: Trajectory) -> pd.DataFrame:
    """Whole-study coverage shares: one row per kind and threshold, one column per year (share 0..1)."""
    table = trajectory.coverage
    study = table[table["scope"] == "study"] if "scope" in table.columns else table
    wide = study.pivot_table(index=["kind", "unit", "threshold"], columns="year", values="share", sort=False)
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()


def write_year_outputs(trajectory: Trajectory, config: StudyConfig, *, lang: str = "zh", make_map: bool = True,
                       units=None) -> dict[str, Path]:
    """
    Write ``<study>_年度进展.xlsx``, the trajectory CSVs, ``<study>_年度进展.png`` and (``make_map``)
    ``<study>_年度进展.html`` (one map layer per year, :func:`coverage.maps.years_map`) into the output folder.

    Parameters
    ----------
    trajectory
        :func:`coverage.year_tables.trajectory` of the study.
    config
        The study (output folder, title, synthetic label).
    lang
        ``zh`` or ``en`` headers.
    make_map
        Also the per-year map.
    units
        The study's units (EPSG:4326) for the map's outlines.

    Returns
    -------
    dict
        File name → path.
    """
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    synthetic = config.synthetic
    files: dict[str, Path] = {}
    name = "trajectory_coverage.csv"
    files[name] = report.write_csv(trajectory.coverage, out / name, lang=lang, synthetic=synthetic)
    if not trajectory.targets.empty:
        name = "trajectory_targets.csv"
        files[name] = report.write_csv(trajectory.targets, out / name, lang=lang, synthetic=synthetic)
    name = f"{config.name}_年度进展.xlsx"
    files[name] = _write_workbook(trajectory, config, out / name, lang)
    name = f"{config.name}_年度进展.png"
    files[name] = trajectory_png(trajectory, config, out / name)
    if make_map:
        from coverage import maps

        outlines = units[units.geom_type.isin(["Polygon", "MultiPolygon"])] if units is not None else None
        any_kind = coverage_by_year(trajectory, kind=ANY_KIND)
        shares = dict(zip(any_kind["year"].astype(int), any_kind["share"]))
        m = maps.years_map(outlines if outlines is not None else trajectory.located_by_year[trajectory.years[0]].iloc[:0],
                           trajectory.located_by_year, shares_by_year=shares,
                           title=f"{config.title}：分年度设施 / facilities by year", synthetic=config.synthetic,
                           basemap=config.basemap)
        name = f"{config.name}_年度进展.html"
        files[name] = maps.save_map(m, out / name)
    return files


def _display(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    shown = frame.copy()
    if "status" in shown.columns:
        shown["status"] = shown["status"].map(lambda s: _STATUS_TEXT[lang].get(s, s))
    for column in ("series", "on_time"):
        if column in shown.columns:
            yes_no = ("是", "否") if lang == "zh" else ("yes", "no")
            shown[column] = shown[column].map(lambda v: "" if pd.isna(v) else (yes_no[0] if v else yes_no[1]))
    shown = shown.astype(object).where(shown.notna(), None)
    shown.columns = [_HEADERS[lang].get(c, c) for c in frame.columns]
    return shown


def _write_workbook(trajectory: Trajectory, config: StudyConfig, path: Path, lang: str) -> Path:
    heading = config.title + ("" if not config.synthetic or "合成示例数据" in config.title else f"（{SYNTHETIC_TEXT}）")
    progress = progress_table(trajectory, lang)
    share = progress["target_id"].map(lambda t: trajectory.targets.loc[trajectory.targets["target_id"] == t,
                                                                       "metric"].iloc[0] in _share_metrics())
    formats = [{"required": "0.0%", "actual": "0.0%"} if s else {"required": "0.00", "actual": "0.00"}
               for s in share]
    matrix, statuses = progress_matrix(trajectory, lang)
    names = {"zh": ("年度进展", "年度进展矩阵", "逐年覆盖率", "逐年设施"),
             "en": ("Progress by year", "Targets x years", "Coverage by year", "Facilities by year")}[lang]
    coverage = coverage_matrix(trajectory)
    specs = [
        # the matrix: each year's cell filled green (met) / red (not met) / grey (no data)
        workbook.SheetSpec(names[1], _display(matrix, lang), list(matrix.columns),
                           cell_status=[{str(y): s for y, s in zip(trajectory.years, row)} for row in statuses]),
        workbook.SheetSpec(names[0], _display(progress, lang), list(progress.columns),
                           status=list(progress["status"]), row_formats=formats),
        workbook.SheetSpec(names[2], _display(coverage, lang), list(coverage.columns),
                           row_formats=[{str(y): "0.0%" for y in trajectory.years} for _ in range(len(coverage))]),
        workbook.SheetSpec(names[3], _display(trajectory.facilities, lang), list(trajectory.facilities.columns)),
    ]
    return workbook.write_workbook(path, specs, heading=heading)


def trajectory_png(trajectory: Trajectory, config: StudyConfig, path: Path, *,
                   kinds: tuple[str, ...] | None = None) -> Path:
    """
    The trajectory figure: share of the 60+ within the longest threshold of each kind, by year, with target lines.

    Target lines are the study's service-circle / coverage targets with a
    share required (a yearly series as steps).
    """
    params = config.parameters
    kinds = kinds or tuple(params.kinds) + (ANY_KIND,)
    series: dict[str, pd.DataFrame] = {}
    for kind in kinds:
        by_year = coverage_by_year(trajectory, kind=kind)
        # kinds the study never has draw a flat 0 %: left out
        if len(by_year) and (kind == ANY_KIND or (by_year["share"] > 0).any()):
            series[kind] = by_year
    circle: dict[str, list[float]] = {}
    others: dict[str, tuple[list[float], list[float]]] = {}
    table = trajectory.targets
    if not table.empty:
        shares = _share_metrics()
        for _, part in table[table["metric"].isin(shares)].groupby("target_id", sort=False):
            part = part.sort_values("year_evaluated")
            label = str(part[_label_column("zh")].iloc[0])
            required = list(part["required"].astype(float))
            if part["metric"].iloc[0] == "service_circle":
                circle[label] = required
            elif part["actual"].notna().any():
                others[label] = (list(part["actual"].astype(float)), required)
    from coverage import figures  # matplotlib: loaded when figures are made

    return figures.trajectory_figure(
        list(trajectory.years), {kind: list(frame["share"]) for kind, frame in series.items()}, circle,
        title=f"{config.title}：分年度进展 / plans over years", synthetic=config.synthetic, path=path,
        minutes=max(params.thresholds_min), unit_targets=others,
    )


def year_layers(trajectory: Trajectory) -> Mapping[int, np.ndarray]:
    """Per year, the walking seconds to a facility of any kind per demand point (for per-year map layers)."""
    return {year: seconds[ANY_KIND] for year, seconds in trajectory.seconds_by_year.items()}


def trajectory_lines(trajectory: Trajectory) -> list[str]:
    """The ``run --years`` summary: coverage of any facility by year and the first year each target is met."""
    lines = [f"年度进展 / plans over years {trajectory.years[0]}–{trajectory.years[-1]}:"]
    any_kind = coverage_by_year(trajectory, kind=ANY_KIND)
    if len(any_kind):
        lines.append("   60+ within reach of any facility / 任一设施覆盖率: " + ", ".join(
            f"{int(y)} {s:.1%}" for y, s in zip(any_kind["year"], any_kind["share"])))
    for row in trajectory.first_met.itertuples(index=False):
        first = "never / 未达标" if pd.isna(row.first_year_met) else f"from {int(row.first_year_met)} 起达标"
        lines.append(f"   {row.label_zh}: {first}")
    return lines
