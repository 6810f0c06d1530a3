"""The study's older people as demand points: a population raster, or census totals over homes or zones."""

from __future__ import annotations

import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import census_tables, divisions, dwellings, network, population
from coverage._errors import InputDataError
from coverage.config import StudyConfig


def _census_totals_column(values: pd.Series, parsed_codes, path, column: str) -> np.ndarray:
    """
    The census totals as numbers, read as tables write them (``14,255``, ``１４２５５``, ``14255人``); NaN where empty.

    A division's total that is written but is no number (``一万四千``, ``#REF!``)
    stops the run, naming the row and column: left out, its people would
    silently go uncalibrated.
    """
    from coverage.facility_rows import _parse_capacity  # the registries' number reading: 1,200 / １２００ / 50张
    from coverage.tables import _cell_text

    numbers = np.array(pd.to_numeric(values, errors="coerce"), dtype=float)  # a copy: filled in below
    for position in np.flatnonzero(np.isnan(numbers)):
        number, readable = _parse_capacity(_cell_text(values.iloc[position]))
        if readable and math.isnan(number):
            continue  # empty, or a placeholder such as "-" / 无
        if not (readable and number >= 0):
            if parsed_codes[position].code is None:
                continue  # a note or heading row, not a division: left out as before
            raise InputDataError(
                f"the census total '{values.iloc[position]}' is not a number / 普查人口数不是数字",
                path=path, row=position + 2, column=column,
                hint="enter the total as digits (e.g. 14255) or leave the cell empty / 请填写阿拉伯数字",
            )
        numbers[position] = number
    return numbers


def _read_census_file(path, code_column: str) -> pd.DataFrame:
    """
    A census table as written: CSV in UTF-8 (with or without BOM) or GBK as Excel saves it in China, or a workbook.

    Raises
    ------
    InputDataError
        The file is empty, damaged or in another encoding: named, with what to do.
    """
    import io

    from coverage.tables import _decode_text_file

    try:
        if path.suffix.lower() == ".csv":
            text, _ = _decode_text_file(path, None)
            return pd.read_csv(io.StringIO(text), dtype={code_column: str})
        return pd.read_excel(path, dtype={code_column: str})
    except InputDataError:
        raise
    except FileNotFoundError:
        raise InputDataError("census table not found / 找不到普查表", path=path,
                             hint="check inputs.population.census.path in the study file") from None
    except Exception as exc:  # pandas and the Excel readers raise many types for damaged or empty files
        raise InputDataError(
            f"the census table cannot be read ({type(exc).__name__}: {exc}) / 无法读取普查表", path=path,
            hint="open it in Excel/WPS and save it again as .xlsx or 'CSV UTF-8', with the division codes and "
                 "totals in columns under one header row / 用 Excel 或 WPS 打开后另存为 .xlsx 或“CSV UTF-8”",
        ) from None


def _read_census_totals(config: StudyConfig) -> pd.DataFrame | None:
    """
    Census totals of the chosen age group as ``code, elderly`` (or None when not configured).

    Codes are read as tables hold them (:func:`coverage.divisions.parse_code`:
    ``420116.0``, full-width digits, ``156`` prefixes, scientific notation)
    and written with 12 digits, as :func:`coverage.ingest.read_units` writes
    unit codes (``420116`` → ``420116000000``), so that census rows and
    units compare as equal strings. Rows whose code is no division code
    (notes, a national total) or whose total is empty are left out.

    Returns
    -------
    pandas.DataFrame or None
        ``code`` (12-digit text), ``elderly`` (persons). ``attrs`` holds
        ``path``, ``code_column`` and ``raw_codes`` (12-digit code → the code
        as written in the file), for messages.

    Raises
    ------
    InputDataError
        A column is missing, or a code was saved in scientific notation with
        fewer digits than the census level needs (``4.20116E+11`` for a town).
    """
    source = config.population
    if source.census is None:
        return None
    path = source.census
    if path.suffix.lower() in (".xlsx", ".xls") and source.census_total_column == "elderly":
        table = census_tables.read_census_60plus(path, year=source.year, age_group=source.age_group)
        table = table[table["level"] != "city"]
        raw = table["code"].astype(str).tolist()
        parsed = [divisions.parse_code(code) for code in raw]
        code_column, elderly = "code", pd.to_numeric(table["elderly"], errors="coerce").to_numpy()
    else:
        table = _read_census_file(path, source.census_code_column)
        for column in (source.census_code_column, source.census_total_column):
            if column not in table.columns:
                raise InputDataError(
                    f"census table has no column '{column}' (columns: {', '.join(map(str, table.columns))})",
                    path=path,
                    column=column,
                    hint="set inputs.population.census.code_column / total_column to the table's headers",
                )
        code_column = source.census_code_column
        raw = [str(value).strip() if pd.notna(value) else "" for value in table[code_column]]
        parsed = [divisions.parse_code(value) for value in table[code_column]]
        elderly = _census_totals_column(table[source.census_total_column], parsed, path,
                                        source.census_total_column)
    needed = divisions.LEVEL_DIGITS.get(source.census_level, 12)
    for position, code in enumerate(parsed):
        if code.code is not None and not code.exact and code.known_digits < needed:
            raise InputDataError(
                f"the code '{code.text}' was saved in scientific notation and lost digits: only its first "
                f"{code.known_digits} digits are known, a {source.census_level} code needs {needed} "
                f"/ 区划代码以科学计数法保存，丢失了后几位数字",
                path=path,
                row=position + 2,
                column=code_column,
                hint="format the code column as text (设置单元格格式 → 文本) and enter or paste the full codes again, "
                     "then save the table / 请将代码列设为文本格式并重新填入完整代码后保存",
            )
    full = [divisions.full_code(code.code) if code.code is not None else None for code in parsed]
    totals = pd.DataFrame({"code": pd.Series(full, dtype=object), "elderly": elderly})
    keep = totals["code"].notna().to_numpy() & totals["elderly"].notna().to_numpy()
    totals = totals[keep].reset_index(drop=True)
    totals.attrs = {
        "path": str(path),
        "code_column": code_column,
        "raw_codes": {code: text for code, text, kept in zip(full, raw, keep) if kept},
    }
    return totals


def _network_outline(net) -> gpd.GeoSeries:
    """The convex hull of the street network's nodes (WGS-84): the study's extent when no outline is given."""
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([net.node_x, net.node_y])))
    return gpd.GeoSeries([hull], crs=net.crs).to_crs("EPSG:4326")


def _load_demand(config: StudyConfig, units, study_area, working_crs, notes: list[str],
                 network_outline: Callable[[], gpd.GeoSeries] | None = None):
    """Demand points (working CRS) assigned to units, calibrated when census totals are given."""
    params = config.parameters
    longest_walk_m = max(params.thresholds_min) * 60.0 * max([params.walk_speed_mps, *params.kind_walk_speed_mps.values()])
    if study_area is not None:
        bounds = tuple(study_area.total_bounds)
    else:
        bounds = None
    census = _read_census_totals(config)
    calibration = pd.DataFrame()
    if not config.population.rasters:
        demand = _demand_without_raster(config, units, census, working_crs, notes, network_outline=network_outline)
        raster = None
    else:
        raster = population.read_elderly_raster(
            list(config.population.rasters), age_group=config.population.age_group, bounds=bounds,
            pad_m=longest_walk_m, bounds_source=config.units.path if config.units is not None else None,
        )
        demand = population.demand_points(raster, working_crs)
        if census is not None and units is not None:
            # raises when the census codes and the unit codes do not go together
            zones = _census_zones(config, units, census)
            if zones.attrs.get("census_match"):
                notes.append(zones.attrs["census_match"])
            if zones.empty:
                notes.append(
                    f"census totals not applied: the {config.population.census_level} units with the census codes "
                    "have no polygons (points only) to calibrate the raster on / 对应单位没有边界面，未按普查数校准"
                )
            else:
                demand, calibration = population.calibrate_to_totals(demand, zones, census)
    if units is not None:
        demand = population.assign_units(demand, units)
    if study_area is not None:
        # the area prepared once: an indexed point-in-polygon test per point (the same as GeoSeries.within)
        area = study_area.to_crs(working_crs).iloc[0]
        shapely.prepare(area)
        inside = pd.Series(shapely.contains(area, np.asarray(demand.geometry.values)), index=demand.index)
        outside_persons = float(demand.loc[~inside, "elderly"].sum())
        if outside_persons > 0:
            notes.append(
                f"{outside_persons:,.0f} elderly persons in the padded raster window lie outside the study "
                "area; they are not counted in the coverage rates / 研究区外老人不计入覆盖率"
            )
        demand = demand[inside].reset_index(drop=True)
        demand["demand_id"] = np.arange(len(demand))
    return demand, calibration, raster


def _census_zones(config: StudyConfig, units: gpd.GeoDataFrame, census: pd.DataFrame) -> gpd.GeoDataFrame:
    """
    Unit polygons that carry the census totals, the census code in ``code``.

    A census row matches the unit of the census level (``inputs.population.
    census.level``) with the same code, both written with 12 digits (see
    :func:`_read_census_totals`: ``420116.0`` in the table matches the unit
    ``420116000000``). A census row of that level for which the units file
    has no unit of that level (a county total, the units file holding the
    county's towns) matches the finer units inside it
    (:func:`coverage.divisions.match_codes`, by prefix): its zone is the union
    of their polygons.

    A calibration that matches far fewer rows than it should is an error,
    not a note: the code column, the level or the code year is then wrong,
    and totals silently left out would make every coverage rate wrong.

    Returns
    -------
    geopandas.GeoDataFrame
        The units' columns, polygon geometry (WGS-84); empty when the matched
        units have no polygons (points only). ``attrs["census_match"]`` holds a
        note for the run record when not every census row of the study area
        found a unit, or when totals went onto unions of finer polygons.

    Raises
    ------
    InputDataError
        The census codes match no unit, fewer than half of the census rows of
        the census level that lie in the study area, or fewer than half of the
        units of the census level. The message names the census file, the
        code column, the first five codes on each side and what to do.
    """
    # fewer matches than this share of what was expected is an error
    min_share = 0.5
    level = config.population.census_level
    census_path = census.attrs.get("path", config.population.census)
    code_column = census.attrs.get("code_column", config.population.census_code_column)
    raw_codes = census.attrs.get("raw_codes", {})
    codes = census["code"].astype(str)
    code_levels = codes.map(divisions.code_level)
    unit_codes = units["code"].astype(str)
    unit_levels = units["level"].astype(str)
    is_polygon = units.geometry.notna() & units.geom_type.isin(["Polygon", "MultiPolygon"])
    at_level = units[unit_levels == level]
    level_codes = set(at_level["code"].astype(str))

    # 1. the same code at the census level
    direct = set(codes[codes.isin(level_codes)])
    # 2. census rows of the level without such unit: the coarsest finer units inside them
    finer_levels = [name for name in ("county", "town", "village")
                    if level in divisions.LEVEL_DIGITS
                    and divisions.LEVELS.index(name) > divisions.LEVELS.index(level)]
    finer = units[unit_levels.isin(finer_levels)]
    unmatched = codes[~codes.isin(direct) & (code_levels == level)]
    aggregate = pd.DataFrame(columns=["left_code", "right_code", "how"])
    if len(unmatched) and len(finer):
        pairs = divisions.match_codes(unmatched.tolist(), finer["code"].astype(str).tolist())
        aggregate = pairs[pairs["how"] == "prefix"]
    matched = direct | set(aggregate["left_code"])

    # census rows expected to match: those of the census level inside the study's units (or holding some)
    levels_known = [name for name in ("county", "town", "village") if name in set(unit_levels)]
    unit_prefixes = {divisions.code_prefix(code, name) for code, name in zip(unit_codes, unit_levels)
                     if name in divisions.LEVEL_DIGITS}
    prefixes_below = {divisions.code_prefix(code, name) for code in unit_codes for name in levels_known}

    def in_study(code: str) -> bool:
        own = divisions.code_level(code)
        if own is None:
            return False
        if divisions.code_prefix(code, own) in prefixes_below:
            return True
        coarser = divisions.LEVELS[: divisions.LEVELS.index(own)]
        return any(divisions.code_prefix(code, name) in unit_prefixes for name in coarser)

    expected = {code for code in codes[code_levels == level] if in_study(code)} | matched
    units_with_total = int(at_level["code"].astype(str).isin(matched).sum())

    problem = None
    if not matched:
        problem = f"the census codes match no {level} unit of the units file"
    elif len(matched) < min_share * len(expected):
        problem = (f"only {len(matched)} of the {len(expected)} census rows of level {level} in the study area "
                   "match a unit of the units file")
    elif len(at_level) and units_with_total < min_share * len(at_level):
        problem = f"only {units_with_total} of the {len(at_level)} {level} units of the units file get a census total"
    if problem is not None:
        census_side = ", ".join(raw_codes.get(code, code) for code in codes[code_levels == level].head(5)) \
            or ", ".join(raw_codes.get(code, code) for code in codes.head(5)) or "none"
        unit_side = ", ".join(at_level["code"].astype(str).head(5)) or (
            "none at this level; units file levels: "
            + ", ".join(f"{name} {count}" for name, count in unit_levels.value_counts().items()))
        raise InputDataError(
            f"{problem} (census codes in column '{code_column}', e.g. {census_side}; {level} unit codes, e.g. "
            f"{unit_side}) / 普查表的区划代码与行政区划文件对不上（普查表：{census_side}；行政区划：{unit_side}）",
            path=census_path,
            column=code_column,
            hint="check inputs.population.census.code_column (the column of division codes, 统计用区划代码) and "
                 "level (county, town or village: the level of the census rows), and that both files use codes of "
                 "the same year and cover the same area / 请核对普查表代码列与级别设置，以及两份文件的代码年份和范围",
        )

    notes = []
    missing = sorted(expected - matched)
    if missing:
        notes.append(
            f"{len(missing)} census row(s) of level {level} in the study area match no unit and are not applied "
            f"(e.g. {', '.join(raw_codes.get(code, code) for code in missing[:5])}) / 部分普查行没有对应的区划单位"
        )
    zones = units[unit_codes.isin(direct) & (unit_levels == level) & is_polygon]
    pieces = []
    for code, group in aggregate.groupby("left_code", sort=False):
        parts = finer[finer["code"].astype(str).isin(set(group["right_code"])) & is_polygon.loc[finer.index]]
        if parts.empty:
            continue
        named = units.loc[unit_codes == code, "name"]
        pieces.append({"code": code, "name": named.iloc[0] if len(named) else None, "level": level,
                       "geometry": parts.union_all()})
    if pieces:
        notes.append(
            f"census totals of {len(pieces)} {level} row(s) applied over the union of the finer units' polygons "
            f"inside them (the units file has no {level} polygon for them) / 普查数按下级单位边界合并后使用"
        )
        zones = gpd.GeoDataFrame(pd.concat([zones, gpd.GeoDataFrame(pieces, geometry="geometry", crs=units.crs)],
                                           ignore_index=True), geometry="geometry", crs=units.crs)
    zones = zones.copy()
    zones.attrs = {"census_match": "; ".join(notes)} if notes else {}
    return zones


def _demand_without_raster(config, units, census, working_crs, notes: list[str],
                           network_outline: Callable[[], gpd.GeoSeries] | None = None) -> gpd.GeoDataFrame:
    """
    No population raster: spread census totals over residential buildings of the OSM file, else uniformly.

    Census units given as polygons are used as they are. Census units given
    as points (community-office coordinates, no polygons) get the Voronoi
    cell of their point, clipped to their parent polygon (e.g. the town)
    when the units file has one, else to the study area; the total is then
    spread within the cell in the same way. The method used per point is in
    the ``method`` column (``buildings`` or ``uniform``) and in the run record.

    Parameters
    ----------
    config
        The study.
    units
        Administrative units (WGS-84), or None.
    census
        Census totals ``code, elderly`` (persons), or None.
    working_crs
        Projected CRS (metres) of the demand points.
    notes
        Receives plain-language notes (Voronoi cells used, totals not placed).
    network_outline
        Makes the street network's extent (WGS-84), the area Voronoi cells are
        clipped to when the units have no polygon at all.
    """
    if census is None or units is None:
        raise InputDataError(
            "no population raster and no census totals with unit polygons to distribute",
            path=config.config_path,
            hint="give inputs.population.rasters (WorldPop age bands), or census totals plus units polygons "
                 "/ 请提供人口栅格，或提供普查数和行政区划面",
        )
    population.check_lonlat_bounds(units.total_bounds, source=config.units.path if config.units else None,
                                   what="units file")
    level = config.population.census_level
    zones = _census_zones(config, units, census)
    if zones.attrs.get("census_match"):  # census rows without a unit, totals over finer units' polygons
        notes.append(zones.attrs["census_match"])
    at_level = units[(units["level"] == level) & units["code"].isin(census["code"])]
    point_units = at_level[at_level.geometry.notna() & (at_level.geom_type == "Point")
                           & ~at_level["code"].isin(zones["code"])]
    if zones.empty and point_units.empty:
        raise dwellings.census_units_error(units, census["code"], level, census_path=config.population.census,
                                            units_path=config.units.path if config.units else None)
    if len(point_units):
        area = _study_area(units)
        parents = units[units["code"].isin(point_units["parent_code"]) & units.geometry.notna()]
        if area is None and network_outline is not None and not parents.geom_type.isin(["Polygon", "MultiPolygon"]).any():
            # points only, no outline at all: the street network's extent is the study area
            area = network_outline()  # the hull of every node: made only when it is needed
            notes.append("no unit polygons: the Voronoi cells of the census points are clipped to the extent of "
                         "the street network (its convex hull) / 无行政区划面：以路网范围作为研究区")
        cells = dwellings.voronoi_zones(
            point_units, working_crs=working_crs, parents=units[units["code"].isin(point_units["parent_code"])],
            area=area.iloc[0] if area is not None else None,
            exclude=zones.union_all() if len(zones) else None,
        )
        by_clip = cells["clip"].value_counts().to_dict()
        clip_text = {"parent": "clipped to their parent unit's polygon", "study area": "clipped to the study area",
                     "point": "as a 50 m disc around the point (cell outside its clip area)"}
        notes.append(
            f"the units file has points, not polygons, for {len(point_units)} {level} census unit(s); their totals "
            "are spread over Voronoi cells of the points ("
            + ", ".join(f"{count} {clip_text[clip]}" for clip, count in sorted(by_clip.items()))
            + ") / 普查单位为点位：按泰森多边形（Voronoi）划分范围后分配人口"
        )
        zones = gpd.GeoDataFrame(
            pd.concat([zones[["code", "geometry"]], cells[["code", "geometry"]].to_crs(units.crs)],
                      ignore_index=True),
            geometry="geometry", crs=units.crs,
        )
    buildings = None
    if config.network.name.lower().endswith(network.RAW_OSM_SUFFIXES):
        buildings = dwellings.read_osm_buildings(config.network)
    demand = dwellings.distribute_to_buildings(zones, census, buildings, working_crs=working_crs)
    methods = demand["method"].value_counts().to_dict()
    notes.append(
        "population from census totals spread over "
        + ", ".join(f"{count} {method} points" for method, count in sorted(methods.items()))
        + " (no raster) / 无人口栅格：普查数按建筑面积或均匀分布"
    )
    return demand


def _study_area(units: gpd.GeoDataFrame | None):
    """Outline of the study (union of the highest-level unit polygons), WGS-84, or None."""
    if units is None:
        return None
    polygons = units[units.geometry.notna() & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        return None
    for level in ("county", "town", "village"):
        layer = polygons[polygons["level"] == level]
        if not layer.empty:
            return gpd.GeoSeries([layer.union_all()], crs=units.crs)
    return gpd.GeoSeries([polygons.union_all()], crs=units.crs)
