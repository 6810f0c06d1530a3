"""Write a study's evaluation report as an editable Word document (cover, summary, map, tables, method)."""

from __future__ import annotations

import datetime as _dt
import os
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import docx
import pandas as pd
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.shared import Cm, Pt, RGBColor

from coverage import ingest, measures, result_tables
from coverage._io import atomic_path
from coverage.report import KIND_ZH, SYNTHETIC_LABEL
from coverage.docx_layout import (
    FALLBACK_EAST_ASIA_FONT, LATIN_FONT, WORST_N, _TEXT, _check_lang, _kind_label, _metric_spec, _missing,
    _new_document, _part, _table, east_asia_font, format_number, format_persons, format_share, target_cells,
)

#: the report's entry points, and the layout helpers it re-exports (coverage.docx_layout)
__all__ = ["FALLBACK_EAST_ASIA_FONT", "LATIN_FONT", "WORST_N", "add_siting_section", "east_asia_font",
           "format_number", "format_persons", "format_share", "report_file_name", "report_file_name_for",
           "target_cells", "write_report"]
from coverage.result_tables import attribution_lines, headline_minutes, parameters_table



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
    _access_section(doc, results, lang, Path(path).parent)
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


def _access_section(doc, results, lang: str, folder: Path) -> None:
    """可达性与公平性: capacity-aware coverage and the Gini per kind (coverage.access_tables), one Lorenz figure."""
    acc = getattr(results, "accessibility", None)
    if acc is None or not acc.kinds:
        return
    zh = lang == "zh"
    doc.add_heading("可达性与公平性" if zh else "Accessibility and equity", level=1)
    doc.add_paragraph(
        f"容量约束覆盖率：每位老人只能占用步行{acc.minutes:g}分钟内尚有余量的设施的一个名额（按床位、每日餐数或面积换算的服务能力）。"
        "基尼系数衡量两步移动搜索法（2SFCA）可达性在老人之间的差距（0 为完全均衡）；乡镇间份额为泰尔指数中乡镇之间差距所占比例。"
        if zh else
        f"Capacity-aware coverage: each older person can take one place at a facility within {acc.minutes:g} minutes "
        "that still has room. The Gini coefficient measures how unequally 2SFCA accessibility is spread (0 = equal); "
        "the between-town share is the part of Theil's index that lies between towns.")
    rows = []
    for record in acc.equity.to_dict("records"):
        theil = record["theil"]
        between = record["theil_between_town"] / theil if theil > 0 else 0.0
        rows.append([KIND_ZH.get(record["kind"], record["kind"]) if zh else record["kind"],
                     format_share(record["share_served"]), format_persons(record["served"]),
                     format_persons(record["unmet"]), f"{record['gini']:.3f}", format_share(between)])
    header = (["设施类型", "容量约束覆盖率", "可服务(人)", "未满足(人)", "基尼系数", "乡镇间份额"] if zh else
              ["kind", "capacity-aware share", "served", "unmet", "Gini", "between towns"])
    _table(doc, header, rows, numeric=(1, 2, 3, 4, 5), font_size=8.5)
    kinds = list(acc.kinds)
    kind = "canteen" if "canteen" in kinds else kinds[0]
    figure = folder / f"{results.config.name}_lorenz_{kind}.png"
    if figure.exists():
        _add_figure(doc, figure, (f"{KIND_ZH.get(kind, kind)}可达性洛伦兹曲线" if zh else
                                  f"Lorenz curve of {kind} accessibility"))


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
