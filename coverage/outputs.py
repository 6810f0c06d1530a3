"""Assemble a study's output folder: tables (CSV + Excel), GeoPackage layers, walking-time raster, map, figure."""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from coverage import access_outputs, gridded, report
from coverage._threads import ClaimedTask, SharedTasks
from coverage.profiles import kind_modes
from coverage.result_tables import (
    ATTRIBUTION_LINES, PRESENCE_COLUMNS, attribution_lines, gap_cells, gap_hexagons, headline_minutes,
    parameters_table, place_tables, presence_only_table, uncovered_cells, village_layer, workbook_sheets,
)
from coverage.results import ANY_KIND, population_method

#: the tables' makers live in coverage.result_tables; these names stay reachable here
__all__ = [
    "ATTRIBUTION_LINES", "PRESENCE_COLUMNS", "attribution_lines", "gap_cells", "gap_hexagons", "headline_minutes",
    "parameters_table", "place_tables", "presence_only_table", "uncovered_cells", "village_layer", "workbook_sheets",
    "write_study_outputs", "writing_notes",
]

def writing_notes(config, demand=None, *, make_map: bool = True) -> list[str]:
    """
    What the writers will have to say about this run, known before anything is written.

    Demand without a population raster gets no walking-time raster; without
    a font with Chinese glyphs the PNG figure cannot be drawn (the HTML map
    still is). The notes then reach the workbook, the tables and run.json alike.
    """
    notes = []
    if demand is not None and gridded.demand_grid(demand) is None:
        notes.append(gridded.POINTS_NOTE)
    if make_map:
        from coverage import figures  # matplotlib: loaded when figures are made

        if figures.find_cjk_font() is None:
            notes.append("PNG figure not written: no font with Chinese glyphs is installed (pip install "
                         "pylopdf-fonts-zh-cn, or apt-get install fonts-noto-cjk); the HTML map is written "
                         "/ 未安装中文字体，未生成PNG图")
    return notes


def write_study_outputs(results, *, lang: str = "zh", make_map: bool = True, timer=None,
                        isochrones: Future | None = None, streets: ClaimedTask | None = None,
                        shared: SharedTasks | None = None) -> dict[str, Path]:
    """
    Write every output file of a study run to ``results.config.output_dir``.

    Parameters
    ----------
    results
        A :class:`coverage.results.StudyResults`.
    lang
        ``zh`` or ``en`` headers.
    make_map
        Also render the HTML map and PNG figure.
    timer
        Optional :class:`coverage.pipeline.StageTimer` to time the writing stages.
    isochrones
        The run's isochrones still being drawn on their own thread
        (:func:`coverage.pipeline.run_study`): a future of ``(isochrones,
        per-facility isochrones, map images or None)`` (:func:`isochrone_map_images`).
        The tables, gap areas, rasters and every other GeoPackage layer are
        written meanwhile; it is waited for (stage ``isochrones``) before the
        GeoPackage's isochrone layers and the map. None: ``results`` holds them.
    streets
        The map's street layer (:func:`street_layer_of`) as work shared with
        the drawing thread: done here while the isochrones are still being
        drawn, unless that thread has done it. None: made here.
    shared
        Work the drawing thread shares (:class:`coverage._threads.SharedTasks`:
        the map's isochrone images): done here, the last first, while the
        isochrones are waited for.

    Returns
    -------
    dict
        Output name → path.
    """
    from contextlib import nullcontext

    config = results.config
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    synthetic = config.synthetic
    stage = timer.stage if timer is not None else (lambda name: nullcontext())
    files: dict[str, Path] = {}

    with stage("write tables"):
        places = place_tables(results)  # points and coordinates of the place tables: once, for CSV and workbook
        csv_tables = {
            "coverage_by_area.csv": results.coverage_wide,
            "coverage_long.csv": results.coverage_long,
            "villages.csv": results.villages,
            "facilities.csv": results.facility_table,
            "uncovered_units.csv": places["uncovered_units"],
            "sensitivity.csv": results.sensitivity,
            "components.csv": results.components,
            "calibration.csv": results.calibration,
            "rejects.csv": places["rejects"],
            "parameters.csv": parameters_table(results),
        }
        if "presence_only" in places:
            csv_tables["presence_only.csv"] = places["presence_only"]
        if getattr(results, "merge_log", None) is not None and len(results.merge_log):
            csv_tables["merged_records.csv"] = results.merge_log
        if getattr(results, "fallback_points", None) is not None and len(results.fallback_points):
            csv_tables["geocoder_fallbacks.csv"] = results.fallback_points
        if len(results.targets):
            csv_tables["targets.csv"] = results.targets
        csv_tables.update(access_outputs.csv_tables(results))  # accessibility, equity, facility load
        for name, table in csv_tables.items():
            files[name] = report.write_csv(table, out / name, lang=lang, synthetic=synthetic)
        files["coverage.xlsx"] = report.write_excel(
            {**workbook_sheets(results, places), **access_outputs.access_sheets(results)},
            out / f"{config.name}_coverage.xlsx", lang=lang, synthetic=synthetic,
            title=config.title,
        )

    villages = village_layer(results)
    uncovered = uncovered_cells(results)
    facilities = results.facilities.copy()
    minutes = headline_minutes(results)
    served = results.facility_table.set_index("facility_id")[f"elderly_within_{max(config.parameters.thresholds_min):g}min"]
    facilities["served_elderly"] = facilities["facility_id"].map(served)
    facilities = access_outputs.with_facility_load(results, facilities)  # crowding per kind, for popups and layers
    with stage("write layers"):
        layers = {"facilities": facilities, "villages": villages}
        grid = gridded.demand_grid(results.demand_projected)
        if grid is None:
            # points demand: the uncovered points themselves (a raster run has them as a band of the COG)
            layers["uncovered_cells"] = uncovered
        if results.units is not None:
            units_layer = results.units[results.units.geometry.notna()]
            if villages is not None:
                # each village boundary once: in the villages layer, with its coverage (real village outlines
                # are most of a county's vertices); the units layer keeps the towns, the county, the points
                in_villages = units_layer["level"].eq("village") & units_layer["code"].isin(villages["code"])
                units_layer = units_layer[~in_villages.to_numpy()]
            layers["units"] = units_layer
        layers.update(access_outputs.access_layers(results))  # 2SFCA and unmet demand on the demand grid
        # the cells' areas once for every gap layer (a region's area is the sum over its cells)
        cell_areas = grid.cell_areas_m2(results.demand_projected.crs) if grid is not None else None
        for kind in results.seconds_by_kind:
            if kind != ANY_KIND and not np.isfinite(results.seconds_by_kind[kind]).any():
                continue  # no facility of the kind reaches anyone: the tables say 0 %, the gap is everywhere
            for threshold in config.parameters.thresholds_for(kind):
                # dissolved areas; one polygon per 100 m cell only on request (parameters.gap_cells)
                layers[f"gap_{kind}_{threshold:g}min"] = gridded.gap_areas(results, kind, threshold,
                                                                           cell_areas_m2=cell_areas)
                if config.parameters.gap_cells:
                    layers[f"gap_{kind}_{threshold:g}min_cells"] = gap_cells(results, kind, threshold)
                if config.parameters.h3_resolution is not None:
                    layers[f"gap_{kind}_{threshold:g}min_h3"] = gap_hexagons(
                        results, kind, threshold, config.parameters.h3_resolution)
        raster = gridded.write_walk_minutes(results, out / f"{config.name}_walk_minutes.tif", minutes=minutes,
                                            attribution=attribution_lines(results))
        if raster.written:
            files["walk_minutes.tif"] = raster.path
        # 2SFCA raster; Lorenz PNGs with the figures (not with --no-map)
        files.update(access_outputs.write_access_files(results, out, lang=lang, figures=make_map))
    # what needs no isochrone first (the PNG figure, the map's other layers, the report), then the wait for them
    parts = None
    if make_map:
        with stage("map"):
            parts = _map_parts(results, villages, uncovered, minutes, lang=lang)
            files.update(_write_figure(results, facilities, parts, out))
    with stage("report"):
        from coverage import docx_report  # python-docx: loaded when a report is written

        report_path = out / docx_report.report_file_name(results)
        files["report.docx"] = docx_report.write_report(results, report_path, lang=lang,
                                                        figure_path=files.get("map.png"))
    gpkg = out / f"{config.name}_layers.gpkg"
    images = None  # the map's isochrone images, when the drawing thread made them
    with report.geopackage(gpkg) as add_layers:
        with stage("write layers"):  # the same stage, timed on: every layer but the isochrones meanwhile
            add_layers(layers)
        if isochrones is not None:
            if streets is not None and make_map and not isochrones.done():
                with stage("map"):  # the street layer, while the isochrones are still being drawn
                    streets.run_if_unclaimed()
            with stage("isochrones"):
                if shared is not None:  # the drawing thread's last items, rather than waiting idle
                    shared.help_until(isochrones)
                drawn, per_facility, images = isochrones.result()
            results = dataclasses.replace(results, isochrones=drawn, facility_isochrones=per_facility)
        with stage("write layers"):
            add_layers({"isochrones": results.isochrones, "isochrones_per_facility": results.facility_isochrones})
    files["layers.gpkg"] = gpkg
    if make_map:
        with stage("map"):  # the same stage, timed on
            streets_layer = streets.result() if streets is not None else street_layer_of(getattr(results, "network", None))
            files.update(_write_html_map(results, facilities, parts, minutes, out, lang=lang, images=images,
                                         streets=streets_layer))
    return files


def _map_parts(results, villages, uncovered, minutes, lang: str = "zh") -> dict:
    """What the HTML map and the PNG figure share: titles, attribution, units, uncovered cells, headline."""
    import datetime

    from coverage import map_layers  # folium: loaded when maps are made

    config = results.config
    params = config.parameters
    subtitle = [
        f"步行速度 {params.walk_speed_mps:g} 米/秒，服务圈 {minutes:g} 分钟 / walking {params.walk_speed_mps:g} m/s, "
        f"{minutes:g}-minute circle",
        f"{config.population.age_group} 人口 {config.population.year} / population {config.population.age_group}, "
        f"{config.population.year}",
    ]
    if params.kind_profiles:
        modes = kind_modes(params, [*params.kinds, ANY_KIND])
        subtitle.append("出行方式 / travel modes: " + ", ".join(f"{kind}={mode}" for kind, mode in modes.items()))
    attribution = list(attribution_lines(results))
    if config.facility_source_note:
        attribution.append(f"设施 / facilities: {config.facility_source_note}")
    map_units = villages if villages is not None else results.units
    if map_units is not None and len(map_units) and "code" in map_units:
        map_units = map_units.assign(targets_html=map_layers.unit_target_results(
            results.targets, results.units, results.facilities, map_units["code"].astype(str).tolist()))
    # the uncovered demand points carry their population cell, so the map draws cells, not points
    grid = results.demand_projected.attrs.get("raster_grid")
    if grid is not None and "row" in results.demand_projected and "demand_id" in uncovered:
        cells = results.demand_projected[["demand_id", "row", "col"]]
        uncovered = uncovered.merge(cells, on="demand_id", how="left")
    dates = [f"{config.population.age_group} 人口 {config.population.year}"]
    for source in config.facilities:
        if Path(source.path).exists():
            day = datetime.date.fromtimestamp(Path(source.path).stat().st_mtime).isoformat()
            dates.append(f"设施名录 {day}")
    speeds = f"步行 {params.walk_speed_mps:g} m/s" if lang == "zh" else f"walking {params.walk_speed_mps:g} m/s"
    headline = map_layers.headline_from_tables(
        results.targets, results.coverage_wide, minutes, data_date="；".join(dates),
        parameters=(f"{speeds}；{', '.join(f'{t:g}' for t in params.thresholds_min)} min；"
                    f"max access {params.max_access_m:g} m",),
    )
    return {"subtitle": subtitle, "attribution": attribution, "units": map_units, "uncovered": uncovered,
            "grid": grid, "headline": headline}


def _write_figure(results, facilities, parts: dict, out: Path) -> dict[str, Path]:
    """The PNG figure of the map (none without a CJK font: the run's notes say so)."""
    from coverage import figures  # matplotlib: loaded when figures are made

    config = results.config
    try:
        return {"map.png": figures.coverage_figure(
            parts["units"], facilities, uncovered=parts["uncovered"], title=config.title, synthetic=config.synthetic,
            path=out / f"{config.name}_map.png", attribution_lines=parts["attribution"],
        )}
    except figures.CJKFontNotFoundError:
        return {}  # no CJK font on this machine: said in the run's notes before anything was written


def isochrone_map_images(isochrones, config, shared=None) -> dict:
    """
    The map's isochrone images (:func:`coverage.maps.isochrone_images`) at the study's headline threshold and basemap.

    ``shared``: a :class:`coverage._threads.SharedTasks` through which a
    thread waiting for them (the run's main thread) may make some.
    """
    from coverage import maps  # folium: loaded when maps are made

    return maps.isochrone_images(isochrones, threshold_minutes=config.parameters.headline_minutes,
                                 basemap=config.basemap, run_all=shared.run_all if shared is not None else None)


def street_layer_of(network):
    """The study's own streets for the map (it reads without a tile server); None without a network."""
    from coverage import map_layers  # folium: loaded when maps are made

    return map_layers.cached_street_layer(network, names=network.edge_name) if network is not None else None


def _write_html_map(results, facilities, parts: dict, minutes, out: Path, lang: str = "zh",
                    images: dict | None = None, streets=None) -> dict[str, Path]:
    """The HTML map (the isochrones drawn by now; ``images``: their map images, made with them; ``streets``: its streets)."""
    from coverage import maps  # folium: loaded when maps are made

    config = results.config
    the_map = maps.coverage_map(
        parts["units"], facilities, uncovered=parts["uncovered"], isochrones=results.isochrones,
        title=config.title, subtitle_lines=parts["subtitle"], attribution_lines=parts["attribution"],
        synthetic=config.synthetic, basemap=config.basemap, target_share=None,
        population_method=population_method(results), threshold_minutes=minutes, streets=streets,
        headline=parts["headline"], uncovered_grid=parts["grid"], lang=lang, isochrone_images=images,
    )
    return {"map.html": maps.save_map(the_map, out / f"{config.name}_map.html", offline=True)}
