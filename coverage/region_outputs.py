"""A region run's combined outputs: workbook, CSV, GeoPackage, map and run record over every area."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import __version__, report
from coverage._io import atomic_path
from coverage.catalogue import METRICS
from coverage.region import AREA_COVERAGE, AREA_RECORD, AREA_TARGETS, FAILURE_COLUMNS
from coverage.results import ANY_KIND

#: metrics whose value is the worst facility's (not a ratio of sums): the region takes the worst area
WORST_OF_METRICS = frozenset({"floor_area_per_bed"})
#: columns of the area × target table
AREA_TARGET_COLUMNS = ("area_code", "area_name", "target_id", "label_zh", "label_en", "metric", "required",
                       "comparison", "actual", "status", "numerator", "denominator", "gap", "gap_unit", "rank")
#: columns of the areas' headline table (and of the GeoPackage layer)
AREA_COLUMNS = ("area_code", "area_name", "status", "elderly", "elderly_within", "share", "threshold_min",
                "targets_met", "targets_evaluated", "map")


#: Chinese headers of the region's own columns (the targets' columns keep the study tables' headers)
REGION_HEADERS_ZH = {"area_code": "区域代码", "area_name": "区域名称", "numerator": "分子", "denominator": "分母",
                     "areas_met": "达标区域数", "areas_evaluated": "参评区域数", "elderly_within": "覆盖老年人口(人)",
                     "threshold_min": "步行时间阈值(分钟)", "targets_met": "达标指标数",
                     "targets_evaluated": "参评指标数", "map": "区域地图", "stage": "失败阶段", "message": "错误信息"}


def _headers(table: pd.DataFrame, lang: str) -> pd.DataFrame:
    return table.rename(columns=REGION_HEADERS_ZH) if lang == "zh" else table


def read_area_tables(results) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    The targets (with numerators and denominators) and whole-area coverage of every finished area.

    Parameters
    ----------
    results
        :class:`coverage.region_run.RegionResults`.

    Returns
    -------
    targets, coverage
        Long tables with ``area_code`` and ``area_name`` in front.
    """
    region = results.region
    target_parts, coverage_parts = [], []
    for outcome in results.outcomes:
        if outcome.status == "failed":
            continue
        folder = region.area_dir(outcome.code)
        for name, parts in ((AREA_TARGETS, target_parts), (AREA_COVERAGE, coverage_parts)):
            table = pd.read_csv(folder / name, dtype={"code": str, "target_id": str})
            table.insert(0, "area_name", outcome.name)
            table.insert(0, "area_code", outcome.code)
            parts.append(table)
    targets = pd.concat(target_parts, ignore_index=True) if target_parts else pd.DataFrame(
        columns=["area_code", "area_name", "target_id"])
    coverage = pd.concat(coverage_parts, ignore_index=True) if coverage_parts else pd.DataFrame(
        columns=["area_code", "area_name", "kind", "threshold", "unit", "elderly", "elderly_within", "share"])
    return targets, coverage


def _status(actual: float, required: float, comparison: str) -> str:
    if not np.isfinite(actual):
        return "no data"
    ok = actual <= required + 1e-12 if comparison == "<=" else actual >= required - 1e-12
    return "pass" if ok else "fail"


def _ratio_scale(rows: pd.DataFrame) -> float:
    """The factor between a metric's value and numerator ÷ denominator (1 for shares, 1000 per 1,000 elderly …)."""
    usable = rows[np.isfinite(rows["actual"]) & (rows["numerator"] > 0) & (rows["denominator"] > 0)]
    if usable.empty:
        return 1.0
    return float(np.median(usable["actual"] * usable["denominator"] / usable["numerator"]))


def region_totals(area_targets: pd.DataFrame) -> pd.DataFrame:
    """
    One row per target for the whole region, computed from the areas' people and units.

    A share is the sum of the areas' numerators over the sum of their
    denominators (covered elderly / elderly, units met / units), never a mean
    of percentages; a ratio (beds per 1,000 elderly) likewise from its
    summed parts; a worst-facility metric (floor area per bed) is the worst
    area's. The gap is in persons or units for shares, in the metric's unit
    otherwise.

    Parameters
    ----------
    area_targets
        :func:`read_area_tables`' targets (one row per area and target).

    Returns
    -------
    pandas.DataFrame
        The targets table's columns (``actual``, ``status``, ``gap`` for the
        region) plus ``numerator``, ``denominator``, ``areas_met``, ``areas_evaluated``.
    """
    rows = []
    if area_targets.empty:
        return pd.DataFrame(columns=["target_id", "actual", "status", "gap", "numerator", "denominator",
                                     "areas_met", "areas_evaluated"])
    for target_id, group in area_targets.groupby("target_id", sort=False):
        first = group.iloc[0].to_dict()
        spec = METRICS.get(first["metric"])
        evaluated = group[np.isfinite(group["actual"].astype(float))]
        numerator = float(evaluated["numerator"].sum()) if len(evaluated) else math.nan
        denominator = float(evaluated["denominator"].sum()) if len(evaluated) else math.nan
        required, comparison = float(first["required"]), str(first["comparison"])
        if evaluated.empty:
            actual = math.nan
        elif first["metric"] in WORST_OF_METRICS:
            # areas with no such facility (0 of 0) have no worst facility
            having = evaluated[evaluated["denominator"] > 0]
            actual = math.nan if having.empty else float(having["actual"].max() if comparison == "<="
                                                         else having["actual"].min())
        elif denominator > 0:
            actual = _ratio_scale(evaluated) * numerator / denominator
        else:
            actual = math.nan
        status = _status(actual, required, comparison)
        if status == "pass":
            gap = 0.0
        elif status == "no data":
            gap = math.nan
        elif spec is not None and spec.share and spec.gap in ("persons", "units"):
            gap = max(0.0, required * denominator - numerator)
            gap = float(math.ceil(gap - 1e-9)) if spec.gap == "units" else round(gap, 1)
        else:
            gap = abs(required - actual)
        level_text = f"{int(numerator):,} / {int(denominator):,}" if np.isfinite(numerator) and np.isfinite(
            denominator) else "—"
        met = int((evaluated["status"] == "pass").sum())
        detail = (f"区域合计 {level_text}（各区域分子、分母相加，非百分比平均）；达标区域 {met}/{len(evaluated)} 个"
                  f" / region total from the areas' counts; {met} of {len(evaluated)} areas meet it")
        rows.append({**{k: first[k] for k in ("target_id", "set", "locality", "document", "label_zh", "label_en",
                                              "metric", "kinds", "level", "scope", "threshold", "unit",
                                              "required", "comparison", "gap_unit", "year", "quote")
                        if k in first},
                     "actual": actual, "status": status, "gap": gap, "detail_zh": detail,
                     "numerator": numerator, "denominator": denominator, "areas_met": met,
                     "areas_evaluated": int(len(evaluated))})
    table = pd.DataFrame(rows)
    if "year" in table:
        table["year"] = pd.to_numeric(table["year"], errors="coerce").astype("Int64")
    return table


def area_target_table(area_targets: pd.DataFrame) -> pd.DataFrame:
    """Every area × every target: required, actual, met, with the area's rank per target (1 = best)."""
    if area_targets.empty:
        return pd.DataFrame(columns=list(AREA_TARGET_COLUMNS))
    table = area_targets.copy()
    # best first: highest value for ">=" targets, lowest for "<="; areas without data unranked
    ascending = table["comparison"].astype(str).eq("<=")
    key = np.where(ascending, table["actual"], -table["actual"])
    table["rank"] = pd.Series(key, index=table.index).groupby(table["target_id"]).rank(method="min").astype("Int64")
    return table[[c for c in AREA_TARGET_COLUMNS if c in table.columns]].sort_values(
        ["target_id", "rank", "area_code"], kind="stable").reset_index(drop=True)


def area_headlines(results, area_targets: pd.DataFrame, coverage: pd.DataFrame) -> gpd.GeoDataFrame:
    """
    One row per area: the headline coverage (elderly within the longest time threshold of any facility), targets met.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`AREA_COLUMNS`, the area's outline (WGS-84).
    """
    region = results.region
    threshold = max(region.study.parameters.thresholds_min)
    any_rows = coverage[(coverage["kind"] == ANY_KIND) & (coverage["unit"] == "min")
                        & np.isclose(coverage["threshold"].astype(float), threshold)].set_index("area_code")
    by_area = area_targets.groupby("area_code") if len(area_targets) else None
    rows, geometries = [], []
    for area, outcome in zip(region.areas, results.outcomes):
        row = {"area_code": area.code, "area_name": area.name,
               "status": "failed" if outcome.status == "failed" else "done",
               "elderly": math.nan, "elderly_within": math.nan, "share": math.nan, "threshold_min": threshold,
               "targets_met": pd.NA, "targets_evaluated": pd.NA, "map": ""}
        if area.code in any_rows.index:
            found = any_rows.loc[area.code]
            row.update(elderly=float(found["elderly"]), elderly_within=float(found["elderly_within"]),
                       share=float(found["share"]))
        if by_area is not None and area.code in by_area.groups:
            mine = by_area.get_group(area.code)
            row.update(targets_met=int((mine["status"] == "pass").sum()),
                       targets_evaluated=int(mine["status"].isin(["pass", "fail"]).sum()))
        row["map"] = _area_map(region, area.code)
        rows.append(row)
        geometries.append(area.outline)
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, columns=list(AREA_COLUMNS)), geometry=geometries, crs=4326)
    frame["targets_met"] = frame["targets_met"].astype("Int64")
    frame["targets_evaluated"] = frame["targets_evaluated"].astype("Int64")
    return frame


def _area_map(region, code: str) -> str:
    """The area's own map (path relative to the region folder), or '' when it has none."""
    try:
        record = json.loads((region.area_dir(code) / AREA_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    maps = [name for name in record.get("outputs", []) if name.endswith(".html")]
    if not maps:
        return ""
    path = region.area_dir(code) / maps[0]
    return os.path.relpath(path, region.output_dir).replace(os.sep, "/")


def _pct(value: float) -> str:
    return "—" if not np.isfinite(value) else f"{value * 100:.1f}%"


def region_map(areas: gpd.GeoDataFrame, area_targets: pd.DataFrame, *, title: str, synthetic: bool,
               basemap: str = "cartodbpositron"):
    """
    A folium map of the areas shaded by their headline coverage, popups with each area's targets and a link to its map.

    Parameters
    ----------
    areas
        :func:`area_headlines`.
    area_targets
        :func:`area_target_table`.
    title
        The region study's title.
    synthetic
        Say "合成示例数据 / synthetic demo data" on the page.
    basemap
        The study's basemap (:data:`coverage.config.BASEMAPS`).
    """
    import os as _os

    import folium

    from coverage import maps
    from coverage.config import TIANDITU_KEY_ENV
    from coverage.map_layers import add_basemap

    classes = maps.share_classes(None)
    bounds = areas.total_bounds
    # the single-study map's page set-up: Leaflet only, vendored, so the page opens offline
    m = maps.new_map(areas, areas.iloc[:0], offline=True, page_title=maps.page_title(title, synthetic))
    # outlines are WGS-84: a GCJ-02 basemap (amap) would shift them, so it falls back to CARTO
    add_basemap(m, basemap if basemap != "amap" else "cartodbpositron", _os.environ.get(TIANDITU_KEY_ENV))
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    by_area = {code: group for code, group in area_targets.groupby("area_code")} if len(area_targets) else {}
    for _, row in areas.iterrows():
        share = row["share"]
        found = maps.classify_share(share, classes) if np.isfinite(share) else None
        colour = found.colour if found is not None else "#9e9e9e"
        lines = [f"<b>{html.escape(str(row['area_name']))}</b> ({row['area_code']})"]
        if row["status"] == "failed":
            lines.append("运行失败 / failed: see 失败区域 in the region workbook")
        else:
            lines.append(f"{row['threshold_min']:g} 分钟步行覆盖 / within {row['threshold_min']:g} min: "
                         f"{_pct(share)} ({row['elderly_within']:,.0f} / {row['elderly']:,.0f} 人)")
        mine = by_area.get(row["area_code"])
        if mine is not None and len(mine):
            items = "".join(
                f"<tr><td>{html.escape(str(t['label_zh']))}</td><td>{_value(t)}</td>"
                f"<td>{_STATUS_ZH.get(str(t['status']), t['status'])}</td></tr>" for _, t in mine.iterrows())
            lines.append(f"<table><tr><th>指标</th><th>实际</th><th>是否达标</th></tr>{items}</table>")
        if row["map"]:
            lines.append(f'<a href="{html.escape(row["map"])}" target="_blank">打开本区域地图 / open the area\'s map</a>')
        popup = folium.Popup("<br>".join(lines), max_width=460)
        folium.GeoJson(
            shapely.to_geojson(row.geometry), name=str(row["area_name"]),
            style_function=lambda _feature, colour=colour: {"fillColor": colour, "color": "#424242", "weight": 1.2,
                                                            "fillOpacity": 0.65},
            tooltip=f"{row['area_name']}: {_pct(share)}", popup=popup,
        ).add_to(m)
    legend = "".join(f'<div><span style="background:{c.colour};width:14px;height:10px;display:inline-block">'
                     f"</span> {c.label}</div>" for c in classes)
    label = "<div>合成示例数据 / synthetic demo data</div>" if synthetic else ""
    m.get_root().html.add_child(folium.Element(
        f'<div style="position:fixed;bottom:18px;left:12px;z-index:9999;background:white;padding:6px 8px;'
        f'font-size:12px;border:1px solid #999"><b>{html.escape(title)}</b><div>老年人步行覆盖率 / elderly within '
        f"{areas['threshold_min'].iloc[0]:g} min</div>{legend}{label}</div>"))
    return m


_STATUS_ZH = {"pass": "达标", "fail": "未达标", "no data": "无数据"}


def _value(row) -> str:
    actual = row["actual"]
    if not np.isfinite(actual):
        return "—"
    spec = METRICS.get(row["metric"])
    return _pct(actual) if spec is not None and spec.share else f"{actual:,.1f}"


def region_record(results, files: dict[str, Path]) -> dict:
    """The region's run record: options, areas (status, stage, message) and each area's own record."""
    region = results.region
    areas = []
    for outcome in results.outcomes:
        path = region.area_dir(outcome.code) / AREA_RECORD
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        areas.append({"code": outcome.code, "name": outcome.name, "status": outcome.status, "stage": outcome.stage,
                      "message": outcome.message, "seconds": outcome.seconds,
                      "record": os.path.relpath(path, region.output_dir), "area_record": record})
    return {
        "study": region.study.name, "title": region.study.title, "synthetic": region.study.synthetic,
        "data_label": report.SYNTHETIC_LABEL if region.study.synthetic else "",
        "areas_source": region.areas_source, "buffer_m": region.buffer_m,
        "cross_border_facilities": region.cross_border_facilities, "package_version": __version__,
        "n_workers": results.n_workers, "dashboard_link": results.dashboard_link, "seconds": results.seconds,
        "computed": list(results.computed), "skipped": list(results.skipped),
        "failed": results.failed.to_dict("records"), "areas": areas,
        "outputs": {name: os.path.relpath(p, region.output_dir) for name, p in files.items()},
    }


def write_region_outputs(results, *, lang: str = "zh", make_map: bool = True) -> dict[str, Path]:
    """
    Write the combined outputs of a region run into the region folder.

    ``region.xlsx`` (总览 of the region totals answer-first, every area ×
    target with ranks, the areas' headline coverage, the failed areas),
    ``region_targets.csv`` / ``region_areas.csv`` / ``region_totals.csv``,
    ``region.gpkg`` (layer ``areas``), ``region_map.html`` and
    ``region_run.json``. Every file is written atomically.

    Parameters
    ----------
    results
        :class:`coverage.region_run.RegionResults`.
    lang
        ``zh`` or ``en`` headers.
    make_map
        Write the region map.

    Returns
    -------
    dict
        Name → path.
    """
    region = results.region
    out = region.output_dir
    synthetic = region.study.synthetic
    raw_targets, coverage = read_area_tables(results)
    totals = region_totals(raw_targets)
    per_area = area_target_table(raw_targets)
    areas = area_headlines(results, raw_targets, coverage)
    failed = results.failed if len(results.failed) else pd.DataFrame(columns=list(FAILURE_COLUMNS))
    files: dict[str, Path] = {}
    area_table = pd.DataFrame(areas.drop(columns="geometry"))
    for name, table in (("region_targets.csv", per_area), ("region_totals.csv", totals),
                        ("region_areas.csv", area_table), ("region_failed.csv", failed)):
        files[name] = report.write_csv(_headers(table, lang), out / name, lang=lang, synthetic=synthetic)
    overview = totals.drop(columns=["numerator", "denominator", "areas_met", "areas_evaluated"], errors="ignore")
    overview.attrs["role"] = "targets"
    sheets = {"总览": overview, "区域合计": _headers(totals, lang), "各区域指标": _headers(per_area, lang),
              "各区域覆盖率": _headers(area_table, lang), "失败区域": _headers(failed, lang)}
    files["region.xlsx"] = report.write_excel(sheets, out / "region.xlsx", lang=lang, synthetic=synthetic,
                                              title=region.study.title)
    layer = areas.copy()
    if synthetic:
        layer["data_label"] = report.SYNTHETIC_LABEL
    files["region.gpkg"] = report.write_geopackage({"areas": layer}, out / "region.gpkg")
    if make_map and len(areas):
        from coverage.maps import save_map

        files["region_map.html"] = save_map(region_map(areas, per_area, title=region.study.title,
                                                       synthetic=synthetic, basemap=region.study.basemap),
                                              out / "region_map.html")
    record_path = out / "region_run.json"
    files["region_run.json"] = record_path
    record = region_record(results, files)
    with atomic_path(record_path) as tmp:
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return files
