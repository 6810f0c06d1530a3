"""The batch job: one study configuration in, coverage tables, layers, a map and a run record out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import (
    census_tables, crs_check, divisions, dwellings, ingest, isochrones, metrics, network, outputs, population,
    profiles, reach, report, sites, targets,
)
from coverage._errors import InputDataError
from coverage.config import StudyConfig, load_study
from coverage.profiles import kind_modes, walking_mode_id
from coverage.results import ANY_KIND, StudyInputs, StudyResults, population_method
from coverage.run_record import build_run_record

__all__ = [
    "ANY_KIND", "StageTimer", "StudyInputs", "StudyResults", "build_run_record", "compute_reach", "facility_sites",
    "kind_masks", "kind_modes", "population_method", "prepare_inputs", "run_study", "walking_mode_id",
]

#: kinds reported in tables, plus "any" (a facility of any kind)


#: the stages a run times, in order (the progress bar counts them; "crs check" only when facilities have points)
COMPUTE_STAGES = ("units", "facilities", "network", "population", "snapping", "reach", "metrics", "sensitivity",
                  "isochrones", "targets")
#: the stages of writing ("map" only with maps)
WRITE_STAGES = ("write tables", "write layers", "map", "report")


@dataclass
class StageTimer:
    """Wall-clock seconds per pipeline stage, for the run record."""

    seconds: dict[str, float] = field(default_factory=dict)
    echo: Callable[[str], None] | None = None
    bar: object | None = None  # a tqdm bar advanced once per stage

    @contextmanager
    def stage(self, name: str):
        """Time the enclosed block under ``name``."""
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        elif self.echo:
            self.echo(f"  … {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - start, 3)
            if self.bar is not None:
                self.bar.update(1)


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
        table = pd.read_csv(path, dtype={source.census_code_column: str}, encoding="utf-8-sig") \
            if path.suffix.lower() == ".csv" else pd.read_excel(path, dtype={source.census_code_column: str})
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
        elderly = pd.to_numeric(table[source.census_total_column], errors="coerce").to_numpy()
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


def _load_facilities(config: StudyConfig, study_area) -> tuple[gpd.GeoDataFrame, pd.DataFrame, dict]:
    frames, rejects, summaries = [], [], []
    for source in config.facilities:
        accepted, rejected, summary = ingest.read_facilities(
            source.path, crs=source.crs, sheet=source.sheet, encoding=source.encoding,
            columns=source.columns or None, study_area=study_area, kinds_file=source.kinds,
        )
        frames.append(accepted)
        rejects.append(rejected)
        summaries.append(summary)
    facilities = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    rejected = pd.concat(rejects, ignore_index=True)
    summary = {
        "files": [str(s.path) for s in config.facilities],
        "rows_in": int(sum(s["rows_in"] for s in summaries)),
        "accepted": int(sum(s["accepted"] for s in summaries)),
        "rejected": int(sum(s["rejected"] for s in summaries)),
        "fixed": int(sum(s.get("fixed", 0) for s in summaries)),
        "located": int(sum(s.get("located", s["accepted"]) for s in summaries)),
        "presence_only": int(sum(s.get("presence_only", 0) for s in summaries)),
        "per_file": [{k: v for k, v in s.items() if k != "types"} for s in summaries],
    }
    return facilities, rejected, summary


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
        inside = demand.geometry.within(study_area.to_crs(working_crs).iloc[0])
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


def kind_masks(facilities: gpd.GeoDataFrame, kinds) -> dict[str, np.ndarray]:
    """Which facilities offer each kind (boolean per facility), plus ``any`` (all of them)."""
    masks = {kind: ingest.has_kind(facilities, kind).to_numpy(bool) for kind in kinds}
    masks[ANY_KIND] = np.ones(len(facilities), bool)
    return masks


def compute_reach(
    net: reach.NetworkArrays,
    facility_snap: reach.Snap,
    demand_snap: reach.Snap,
    masks: dict[str, np.ndarray],
    config: StudyConfig,
    *,
    speed_override: float | None = None,
    distance_mode: bool = False,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    Walking seconds (or metres) to the nearest facility of each kind, one multi-source pass per kind.

    Every kind in ``masks`` walks here (at :meth:`~coverage.config.Parameters.speed_for`);
    kinds with a non-walking profile go through :func:`compute_profile_reach`.

    Returns
    -------
    tuple
        cost per kind (seconds, or metres in distance mode; inf beyond the
        kind's longest threshold, :meth:`~coverage.config.Parameters.thresholds_for`)
        and the nearest facility's position per kind (-1).
        A kind without any facility (an urban study has no 互助幸福院) gets
        inf for every demand point and -1 as its nearest facility: 0 % covered.
    """
    from tqdm import tqdm  # not tqdm.auto: it warns in notebooks without ipywidgets

    params = config.parameters
    cost_by_kind, nearest_by_kind = {}, {}
    n_demand = len(demand_snap)
    # disable=None: shown on a terminal or in a notebook, silent in logs
    for kind, mask in tqdm(masks.items(), desc="reach", disable=None if progress else True, leave=False):
        positions = np.flatnonzero(mask)
        if len(positions) == 0:
            # no facility of this kind at all: nobody reaches one (no search needed)
            cost_by_kind[kind] = np.full(n_demand, np.inf)
            nearest_by_kind[kind] = np.full(n_demand, -1, dtype=np.int64)
            continue
        if distance_mode:
            speed, limit = None, max(params.distance_thresholds_m)
        else:
            speed = speed_override or (params.walk_speed_mps if kind == ANY_KIND else params.speed_for(kind))
            limit = max(params.thresholds_for(kind)) * 60.0
        result = reach.nearest_facility(
            net, facility_snap.subset(positions), demand_snap, walk_speed_mps=speed, limit=limit, ferry=params.ferry
        )
        cost_by_kind[kind] = result["cost"].to_numpy()
        local = result["facility_index"].to_numpy()
        nearest_by_kind[kind] = np.where(local >= 0, positions[np.clip(local, 0, None)], -1)
    return cost_by_kind, nearest_by_kind


@dataclass(frozen=True)
class ProfileNetwork:
    """
    The network one non-walking travel profile uses, and the study's points snapped to it.

    ``net`` holds only the edges the profile may use
    (:func:`coverage.profiles.usable_network`), in the study's working CRS.
    """

    profile: object  # coverage.profiles.TravelProfile
    net: reach.NetworkArrays
    facility_snap: reach.Snap
    demand_snap: reach.Snap


def profile_networks(
    config: StudyConfig,
    facilities: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    working_crs,
    notes: list[str] | None = None,
) -> dict[str, ProfileNetwork]:
    """
    Load the network of every non-walking profile of ``parameters.kind_profiles`` and snap the points to it.

    Each way selection (``drive``, ``all``) is read once, whatever the
    number of profiles using it; each profile then keeps the edges it may
    use and the facilities and demand points are snapped to those
    (:func:`coverage.reach.snap_points` with ``parameters.max_access_m``).

    Parameters
    ----------
    config
        The study.
    facilities
        The facility sites (WGS-84).
    demand
        The demand points (working CRS).
    working_crs
        Projected CRS (metres) of the walking network.
    notes
        Receives a note per profile on facilities and elderly off its network.

    Returns
    -------
    dict
        Profile id → :class:`ProfileNetwork`; empty when every kind walks.
    """
    params = config.parameters
    notes = notes if notes is not None else []
    chosen = {}
    for kind in params.kinds:
        profile = params.travel_profile(kind)
        if profile is not None:
            chosen.setdefault(profile.id, profile)
    loaded: dict[str, reach.NetworkArrays] = {}
    out = {}
    facility_points = facilities.to_crs(working_crs).geometry
    for profile_id, profile in chosen.items():
        if profile.network not in loaded:
            loaded[profile.network] = profiles.load_profile_network(config.network, profile, to_crs=working_crs)
        usable = profiles.usable_network(loaded[profile.network], profile, ferry=params.ferry)
        facility_snap = reach.snap_points(usable, facility_points, max_access_m=params.max_access_m)
        demand_snap = reach.snap_points(usable, demand.geometry, max_access_m=params.max_access_m)
        demand_snap, _ = reach.attach_off_fragments(usable, demand.geometry, demand_snap,
                                                    max_access_m=params.max_access_m, keep=facility_snap)
        off_facilities = int((~facility_snap.on_network).sum())
        off_persons = float(demand.loc[~demand_snap.on_network, "elderly"].sum())
        if off_facilities or off_persons > 0:
            notes.append(
                f"{profile_id}: {off_facilities} facilities and {off_persons:,.0f} elderly persons are more than "
                f"{params.max_access_m:g} m from any road this mode may use; they count as not reached by "
                f"{profile_id} / 距{profile.label_zh}可用道路过远，计为未覆盖"
            )
        out[profile_id] = ProfileNetwork(profile, usable, facility_snap, demand_snap)
    return out


def compute_profile_reach(
    networks: dict[str, ProfileNetwork],
    masks: dict[str, np.ndarray],
    config: StudyConfig,
    *,
    distance_mode: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    Seconds (or network metres) to the nearest facility of each kind that has a non-walking profile.

    Seconds are the profile's edge costs (:func:`coverage.profiles.edge_costs`,
    the study's ferry policy) plus access legs at the profile's
    ``access_speed_mps``, searched up to the kind's longest threshold
    (:meth:`coverage.config.Parameters.thresholds_for`). In distance mode
    the cost is metres along the edges the profile may use, in the
    directions it may use them, plus the access legs (metres), up to the
    longest ``distance_thresholds_m``.

    Parameters
    ----------
    networks
        :func:`profile_networks` of the study.
    masks
        Facilities per kind (:func:`kind_masks`); kinds that walk are skipped.
    config
        The study.
    distance_mode
        Metres instead of seconds.

    Returns
    -------
    tuple
        cost per kind (seconds or metres; inf beyond the limit or off the
        profile's network) and the nearest facility's position per kind (-1),
        for the non-walking kinds only.
    """
    params = config.parameters
    cost_by_kind, nearest_by_kind = {}, {}
    for kind, mask in masks.items():
        profile = params.travel_profile(kind) if kind != ANY_KIND else None
        if profile is None:
            continue
        network_of = networks[profile.id]
        positions = np.flatnonzero(mask)
        n_demand = len(network_of.demand_snap)
        if len(positions) == 0:
            cost_by_kind[kind] = np.full(n_demand, np.inf)
            nearest_by_kind[kind] = np.full(n_demand, -1, dtype=np.int64)
            continue
        forward, backward = profiles.edge_costs(network_of.net, profile, ferry=params.ferry)
        if distance_mode:
            # metres where the profile may travel; access legs at 1 m/s are metres too
            length = np.asarray(network_of.net.edge_length_m, dtype=float)
            metres = (np.where(np.isfinite(forward), length, np.inf), np.where(np.isfinite(backward), length, np.inf))
            result = reach.nearest_facility(
                network_of.net, network_of.facility_snap.subset(positions), network_of.demand_snap,
                walk_speed_mps=1.0, limit=max(params.distance_thresholds_m), edge_seconds=metres,
            )
        else:
            result = reach.nearest_facility(
                network_of.net, network_of.facility_snap.subset(positions), network_of.demand_snap,
                walk_speed_mps=profile.access_speed_mps, limit=max(params.thresholds_for(kind)) * 60.0,
                edge_seconds=(forward, backward),
            )
        cost_by_kind[kind] = result["cost"].to_numpy()
        local = result["facility_index"].to_numpy()
        nearest_by_kind[kind] = np.where(local >= 0, positions[np.clip(local, 0, None)], -1)
    return cost_by_kind, nearest_by_kind


def merge_profile_reach(
    walking: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    by_profile: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
    kinds: list[str],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    Walking and non-walking costs in one dict per kind, in ``kinds`` order; ``any`` stays the walking pass.

    ``any`` is the walking pass to every facility, whatever mode its own
    kind is measured in: "a facility of any kind within 15 minutes" is the
    walking service circle of the policy documents, and a drive to the
    township home must not count as a walk.

    Parameters
    ----------
    walking
        :func:`compute_reach` of the walking kinds and ``any``.
    by_profile
        :func:`compute_profile_reach` of the others.
    kinds
        The order of the result (the kinds and ``any``).
    """
    cost_w, nearest_w = walking
    cost_p, nearest_p = by_profile
    cost = {kind: cost_p[kind] if kind in cost_p else cost_w[kind] for kind in kinds}
    nearest = {kind: nearest_p[kind] if kind in nearest_p else nearest_w[kind] for kind in kinds}
    return cost, nearest


def _coverage_tables(demand, seconds_by_kind, metres_by_kind, params, names) -> pd.DataFrame:
    """
    The long coverage table: time rows per kind (at the kind's thresholds), then distance rows.

    With ``parameters.kind_profiles`` set, a ``mode`` column after ``kind``
    says which travel profile each row's figure used.
    """
    time_parts = []
    for kind, cost in seconds_by_kind.items():
        time_parts.append(metrics.service_circle_table(demand, {kind: cost}, params.thresholds_for(kind), unit="min",
                                                       units_names=names))
    if params.kind_thresholds_min:
        time_table = pd.concat(time_parts, ignore_index=True)
    else:
        # one call, exactly as before per-kind thresholds existed
        time_table = metrics.service_circle_table(demand, seconds_by_kind, params.thresholds_min, unit="min",
                                                  units_names=names)
    table = pd.concat(
        [time_table,
         metrics.service_circle_table(demand, metres_by_kind, params.distance_thresholds_m, unit="m",
                                      units_names=names)],
        ignore_index=True,
    )
    if params.kind_profiles:
        modes = kind_modes(params, list(seconds_by_kind))
        table.insert(int(table.columns.get_loc("kind")) + 1, "mode", table["kind"].map(modes))
    return table


def _isochrones(net, facility_snap, masks, config, working_crs, networks=None) -> gpd.GeoDataFrame:
    """
    One area per facility kind and threshold: where a facility of the kind is reached, in the kind's travel mode.

    Walking kinds search the walking network at the kind's speed; a kind
    with a travel profile (``parameters.kind_profiles``) searches the
    profile's own network with its directed edge seconds
    (:func:`coverage.profiles.edge_costs`), as :func:`compute_profile_reach`
    does. One bounded search per kind serves all its thresholds
    (:mod:`coverage.isochrones`). ``networks`` (:func:`profile_networks`)
    gives the profile networks and snaps; without it they are loaded here
    and the facilities are snapped from their walking-network positions
    (their first access leg is then not counted: a few metres of difference).

    Returns
    -------
    geopandas.GeoDataFrame
        ``kind``, ``minutes``, ``walk_speed_mps`` (NaN for a non-walking
        profile), ``mode`` (profile id), polygon in ``working_crs``.
    """
    params = config.parameters
    rows = []
    loaded: dict = {}
    walk_xy = None
    for kind, mask in masks.items():
        if kind == ANY_KIND or not mask.any():
            continue
        positions = np.flatnonzero(mask)
        profile = params.travel_profile(kind)
        thresholds = params.thresholds_for(kind)
        if profile is None:
            kind_net, snap, edge_seconds = net, facility_snap.subset(positions), None
            speed, mode = params.speed_for(kind), walking_mode_id(params.speed_for(kind))
            ferry = params.ferry
        else:
            if networks is not None and profile.id in networks:
                kind_net = networks[profile.id].net
                snap = networks[profile.id].facility_snap.subset(positions)
            else:
                if walk_xy is None:
                    walk_xy = isochrones.snapped_positions(net, facility_snap)
                on = facility_snap.on_network[positions]
                kind_net, snap, _ = isochrones.profile_network(config, profile, walk_xy[positions[on]], working_crs,
                                                               loaded)
                snap = reach.Snap(np.concatenate([snap.edge, np.full((~on).sum(), -1)]),
                                  np.concatenate([snap.fraction, np.zeros((~on).sum())]),
                                  np.concatenate([snap.access_m, np.full((~on).sum(), np.inf)]))
            edge_seconds = profiles.edge_costs(kind_net, profile, ferry=params.ferry)
            speed, mode, ferry = profile.access_speed_mps, profile.id, None
        if not snap.on_network.any():
            continue
        node_cost = isochrones.node_seconds(kind_net, snap, limit=max(thresholds) * 60.0, walk_speed_mps=speed,
                                            ferry=ferry, edge_seconds=edge_seconds)
        for minutes in thresholds:
            polygon = isochrones.isochrone(
                kind_net, snap, limit=minutes * 60.0, walk_speed_mps=speed, buffer_m=params.isochrone_buffer_m,
                ferry=ferry, edge_seconds=edge_seconds, node_cost=node_cost,
            )
            if not polygon.is_empty:
                rows.append({"kind": kind, "minutes": minutes,
                             "walk_speed_mps": speed if profile is None else np.nan, "mode": mode,
                             "geometry": polygon})
    frame = gpd.GeoDataFrame(rows, columns=["kind", "minutes", "walk_speed_mps", "mode", "geometry"],
                             crs=working_crs)
    return frame


def facility_isochrones(net, facilities, facility_snap, config, working_crs) -> gpd.GeoDataFrame:
    """
    One area per facility and threshold, in the travel mode of the facility's first kind.

    Facilities sharing a mode (walking speed or travel profile) are searched
    together, one bounded search per chunk for all thresholds
    (:func:`coverage.isochrones.isochrones_by_source`); a kind with a
    travel profile uses the profile's network and edge seconds.

    Parameters
    ----------
    net, facilities, facility_snap
        Network arrays, the facilities (WGS-84) and their snaps.
    config
        The study (thresholds, speeds, profiles, buffer, ferry policy).
    working_crs
        CRS of the network.

    Returns
    -------
    geopandas.GeoDataFrame
        ``facility_id``, ``name``, ``kinds``, ``minutes``, ``mode``, polygon
        (WGS-84); facilities off the network have none.
    """
    params = config.parameters
    first_kind = facilities["kinds"].astype(str).str.split(";").str[0].to_numpy()
    modes = np.array([params.kind_profiles.get(kind) if params.travel_profile(kind) is not None
                      else f"walk:{params.speed_for(kind)!r}" for kind in first_kind], dtype=object)
    points = facilities.to_crs(working_crs).geometry
    thresholds = list(params.thresholds_min)
    loaded: dict = {}
    parts = []
    for mode in pd.unique(modes):
        positions = np.flatnonzero(modes == mode)
        if mode.startswith("walk:"):
            speed = params.speed_for(first_kind[positions[0]])
            kind_net, snap, edge_seconds, ferry, mode_id = (net, facility_snap.subset(positions), None, params.ferry,
                                                            walking_mode_id(speed))
        else:
            profile = params.travel_profile(first_kind[positions[0]])
            kind_net, snap, edge_seconds = isochrones.profile_network(config, profile, points.iloc[positions],
                                                                      working_crs, loaded)
            speed, ferry, mode_id = profile.access_speed_mps, None, profile.id
        areas = isochrones.isochrones_by_source(kind_net, snap, [m * 60.0 for m in thresholds], walk_speed_mps=speed,
                                                buffer_m=params.isochrone_buffer_m, ferry=ferry,
                                                edge_seconds=edge_seconds)
        for minutes in thresholds:
            polygons = areas[minutes * 60.0]
            keep = ~shapely.is_empty(polygons)
            records = facilities.iloc[positions[keep]]
            parts.append(pd.DataFrame({"facility_id": records["facility_id"].to_numpy(),
                                       "name": records["name"].to_numpy(), "kinds": records["kinds"].to_numpy(),
                                       "minutes": minutes, "mode": mode_id, "position": positions[keep],
                                       "geometry": polygons[keep]}))
    columns = ["facility_id", "name", "kinds", "minutes", "mode", "geometry"]
    if not parts:
        return gpd.GeoDataFrame(columns=columns, geometry="geometry", crs=working_crs).to_crs("EPSG:4326")
    table = pd.concat(parts, ignore_index=True).sort_values(["position", "minutes"], kind="stable")
    frame = gpd.GeoDataFrame(table[columns].reset_index(drop=True), geometry="geometry", crs=working_crs)
    return frame.to_crs("EPSG:4326")


def _components_table(net, facility_snap, demand_snap, demand, facilities, masks, config) -> pd.DataFrame:
    """
    Every walking component (ferries not joining), its size, elderly and facilities by kind.

    ``ferry_linked`` says whether a ferry line (when the study counts ferries)
    joins it to another component; component -1 collects the elderly who live
    too far from any street.
    """
    walk_labels = reach.node_components(net, with_ferries=False)
    demand_component = reach.point_components(net, demand_snap, walk_labels)
    facility_component = reach.point_components(net, facility_snap, walk_labels)
    frame = pd.DataFrame({"component": demand_component, "elderly": demand["elderly"].to_numpy()})
    table = frame[frame["component"] >= 0].groupby("component").agg(elderly=("elderly", "sum"))
    node_counts = pd.Series(walk_labels).value_counts()
    table["nodes"] = node_counts.reindex(table.index).fillna(0).astype(int)
    for kind, mask in masks.items():
        counts = pd.Series(facility_component[mask & (facility_component >= 0)]).value_counts()
        table[f"n_{kind}"] = counts.reindex(table.index).fillna(0).astype(int)
    table = table.rename(columns={f"n_{ANY_KIND}": "facilities_total"})
    if config.parameters.ferry.enabled and net.edge_ferry.any():
        ferry_labels = reach.node_components(net, with_ferries=True)
        # a walking component is ferry-linked when its ferry-joined component holds more walking components
        pairs = pd.DataFrame({"walk": walk_labels, "joined": ferry_labels}).drop_duplicates()
        parts_per_joined = pairs.groupby("joined")["walk"].nunique()
        linked = pairs.set_index("walk")["joined"].map(parts_per_joined) > 1
        table["ferry_linked"] = linked.reindex(table.index).fillna(False).astype(bool)
    else:
        table["ferry_linked"] = False
    table = table.sort_values(["elderly", "nodes"], ascending=False).reset_index()
    off = ~demand_snap.on_network
    if off.any():
        off_row = {"component": -1, "elderly": float(demand.loc[off, "elderly"].sum()), "nodes": 0,
                   "ferry_linked": False}
        table = pd.concat([table, pd.DataFrame([off_row])], ignore_index=True).fillna(0)
    return table


def _village_table(units, demand, facilities, seconds_by_kind, config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per village/community: elderly, facilities inside/assigned, share within the longest threshold."""
    kinds = list(config.parameters.kinds)
    villages = units[units["level"] == "village"].copy() if units is not None else pd.DataFrame(columns=["code"])
    if villages.empty:
        return pd.DataFrame(), pd.DataFrame()
    longest_s = max(config.parameters.thresholds_min) * 60.0
    counts = metrics.unit_facility_counts(villages, facilities, kinds, code_column="village_code")
    shares = metrics.unit_reach_table(demand, {k: seconds_by_kind[k] for k in [*kinds, ANY_KIND]}, longest_s)
    town_names = units.set_index("code")["name"].to_dict()
    table = pd.DataFrame(
        {
            "code": villages["code"].astype(str).to_numpy(),
            "name": villages["name"].to_numpy(),
            "town_code": villages["parent_code"].astype(str).to_numpy(),
            "ur_code": villages["ur_code"].to_numpy(),
            "urban": villages["urban"].to_numpy(),
        }
    )
    table["town_name"] = table["town_code"].map(town_names)
    table = table.merge(counts, on="code", how="left").merge(shares, on="code", how="left")
    table["elderly"] = table["elderly"].fillna(0.0)
    table = table.sort_values("code").reset_index(drop=True)

    # units with no facility of the kind inside, and elderly beyond the walk
    parts = []
    for kind in kinds:
        uncovered_persons = table["elderly"] * (1.0 - table[f"share_{kind}"].fillna(0.0))
        missing = (table[f"n_{kind}"] == 0) & (uncovered_persons > 0.5)
        part = table.loc[missing, ["code", "name", "town_name", "urban", "elderly", f"share_{kind}"]]
        parts.append(part.rename(columns={f"share_{kind}": "share"})
                     .assign(kind=kind, elderly_uncovered=uncovered_persons[missing]))
    columns = ["code", "name", "town_name", "urban", "kind", "elderly", "elderly_uncovered", "share"]
    uncovered = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return table, uncovered


def _facility_table(net, facilities, facility_snap, demand_snap, demand, nearest_by_kind, config) -> pd.DataFrame:
    """Per facility: attributes, whether it is on the network, elderly within the longest threshold, elderly it is nearest for."""
    params = config.parameters
    longest_s = max(params.thresholds_min) * 60.0
    catchment = reach.catchment_matrix(
        net, facility_snap, demand_snap, walk_speed_mps=params.walk_speed_mps, limit=longest_s, ferry=params.ferry
    )
    elderly = demand["elderly"].to_numpy(float)
    served = np.asarray(catchment.astype(bool) @ elderly).ravel()
    nearest_any = nearest_by_kind[ANY_KIND]
    nearest_for = np.bincount(nearest_any[nearest_any >= 0], weights=elderly[nearest_any >= 0],
                              minlength=len(facilities))
    columns = ["facility_id", "name", "kinds", "type_raw", "beds", "nursing_beds", "floor_area_m2", "caregivers",
               "address", "town_code", "village_code", "source_file", "source_row", "flags"]
    table = pd.DataFrame({c: facilities[c].to_numpy() for c in columns if c in facilities})
    table["lon"] = facilities.geometry.x.round(6).to_numpy()
    table["lat"] = facilities.geometry.y.round(6).to_numpy()
    table["on_network"] = facility_snap.on_network
    table["access_m"] = np.round(facility_snap.access_m, 1)
    table[f"elderly_within_{max(params.thresholds_min):g}min"] = served
    table["elderly_nearest"] = nearest_for
    return table


def _sensitivity(net, facility_snap, demand_snap, masks, demand, config, study_seconds=None) -> pd.DataFrame:
    """
    Shares within each threshold at each speed of ``parameters.sensitivity_speeds_mps``.

    ``study_seconds`` (the main pass, per kind) is reused for the speed the
    study itself walks at, when every kind walks at that speed.
    """
    params = config.parameters
    rows = []
    elderly = demand["elderly"].to_numpy(float)
    total = elderly.sum()
    # walking only: kinds with another travel profile are left out (and 'any' is then walking to every facility)
    masks = {kind: mask for kind, mask in masks.items()
             if kind == ANY_KIND or params.travel_profile(kind) is None}
    for speed in params.sensitivity_speeds_mps:
        same_as_study = study_seconds is not None and speed == params.walk_speed_mps and all(
            params.speed_for(kind) == speed for kind in params.kinds) and not any(
            params.travel_profile(kind) is not None for kind in params.kinds)
        if same_as_study:
            cost_by_kind = study_seconds
        else:
            cost_by_kind, _ = compute_reach(net, facility_snap, demand_snap, masks, config, speed_override=speed)
        for kind, cost in cost_by_kind.items():
            for minutes in params.thresholds_min:
                within = float(elderly[cost <= minutes * 60.0].sum())
                rows.append({"walk_speed_mps": speed, "kind": kind, "threshold": minutes, "unit": "min",
                             "elderly": total, "elderly_within": within,
                             "share": within / total if total else np.nan})
    return pd.DataFrame(rows)



@dataclass(frozen=True)
class FacilitySites:
    """
    Facility records made into sites: duplicates and co-located services merged, geocoder fallbacks flagged.

    ``facilities`` holds one row per site (EPSG:4326), the records with a
    fallback point (flag ``geocoder_fallback``, kept for unit presence only)
    and the rows without coordinates (flag ``presence_only``).
    """

    facilities: gpd.GeoDataFrame
    merge_log: pd.DataFrame
    fallback_points: pd.DataFrame
    fallback_records: int


def _seat_points(units: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """County and town seat points of the units table (division-code tables give them), WGS-84."""
    if units is None:
        return None
    points = units[units.geometry.notna() & (units.geom_type == "Point") & units["level"].isin(["county", "town"])]
    return points[["code", "name", "level", "geometry"]].reset_index(drop=True) if len(points) else None


def facility_sites(records: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None = None) -> FacilitySites:
    """
    Turn checked facility records (all files) into sites.

    Parameters
    ----------
    records
        ``ingest.read_facilities`` output of every facility file, concatenated
        in the study's order (the first file's record is a merged site's main record).
    units
        The study's units; their county and town points are the seats a
        failed geocoder returns.

    Returns
    -------
    FacilitySites
    """
    located_mask = records.geometry.notna().to_numpy()
    located = records[located_mask].reset_index(drop=True)
    unlocated = records[~located_mask].reset_index(drop=True)
    seats = _seat_points(units)
    reasons = sites.detect_geocoder_fallbacks(located, seats=seats)
    fallback_mask = (reasons != "").to_numpy()
    fallback_points = sites.fallback_report(located, reasons, seats=seats)
    fallen = located[fallback_mask].copy()
    fallen["flags"] = [";".join([p for p in str(f).split(";") if p] + ["geocoder_fallback"]) for f in fallen["flags"]]
    # the point is the geocoder's, not the facility's: the unit is found by code and names, as for rows
    # without coordinates, never by the polygon the fallback point lies in (the district centre's)
    fallen = fallen.set_geometry(gpd.GeoSeries([None] * len(fallen), index=fallen.index, crs=located.crs))
    kept = located[~fallback_mask].reset_index(drop=True)
    # fallbacks are already set aside: merge_sites need not look for them again
    merged = sites.merge_sites(kept, fallbacks=pd.Series("", index=kept.index))
    parts = [merged.sites, fallen, unlocated]
    combined = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) \
        else merged.sites
    facilities = gpd.GeoDataFrame(combined, geometry="geometry", crs=records.crs or "EPSG:4326")
    if "n_records" in facilities:
        facilities["n_records"] = facilities["n_records"].fillna(1).astype("int64")
    return FacilitySites(facilities, merged.merge_log, fallback_points, int(fallback_mask.sum()))


def check_coordinate_systems(config: StudyConfig, records: gpd.GeoDataFrame, ingest_summary: dict,
                             units: gpd.GeoDataFrame | None, net) -> list[str]:
    """
    Check each facility file's and the units' declared coordinate system against the study's streets.

    A file whose points fit the streets clearly better under another system
    (GCJ-02 declared as WGS-84: ~500 m off) stops the run with the figures,
    unless ``parameters.crs_check`` is ``warn``; coordinates that are metres
    are named as such.

    Returns
    -------
    list of str
        Notes for the run record (one per file checked).
    """
    allow = config.parameters.crs_check == "warn"
    streets = crs_check.streets_from(net)
    notes = []
    for summary in ingest_summary.get("per_file", []):
        name = Path(summary["source_file"]).name
        mine = records["source_file"].astype(str)
        rows = records[(mine == name) | mine.str.startswith(name + "#")]
        fit = crs_check.check_facility_crs(rows, summary["crs"], streets)
        note = crs_check.raise_if_implausible(fit, path=summary["source_file"], what="facilities", allow=allow)
        if note:
            notes.append(note)
    if units is not None and config.units is not None:
        fit = crs_check.check_units_crs(units, config.units.crs, streets)
        note = crs_check.raise_if_implausible(fit, path=config.units.path, what="units", allow=allow)
        if note:
            notes.append(note)
    return notes


def prepare_inputs(config: StudyConfig, timer: StageTimer | None = None, notes: list[str] | None = None) -> StudyInputs:
    """
    Load units, facilities, the walking network and the demand, and snap points to the network.

    Parameters
    ----------
    config
        The study.
    timer
        Records seconds per stage.
    notes
        Receives plain-language notes for the planner (points off the network, …).
    """
    params = config.parameters
    timer = timer or StageTimer()
    notes = notes if notes is not None else []
    with timer.stage("units"):
        units = ingest.read_units(config.units.path, crs=config.units.crs, layer=config.units.layer) \
            if config.units else None
        study_area = _study_area(units)

    with timer.stage("facilities"):
        records, rejects, ingest_summary = _load_facilities(config, study_area)
        sited = facility_sites(records, units)
        facilities = sited.facilities
        if units is not None:
            facilities = ingest.assign_facilities_to_units(facilities, units)
        facilities, presence_only, unplaced = ingest.split_presence_only(facilities)
        if len(unplaced):
            rejects = pd.concat([rejects, unplaced], ignore_index=True)
        located_records = int(facilities["n_records"].sum()) if "n_records" in facilities else len(facilities)
        ingest_summary = {
            **ingest_summary, "located": located_records, "sites": len(facilities),
            "merged_records": len(sited.merge_log), "fallback_records": int(sited.fallback_records),
            "presence_only": len(presence_only), "rejected": ingest_summary["rejected"] + len(unplaced),
            "accepted": ingest_summary["accepted"] - len(unplaced),
        }
        if ingest_summary["rows_in"] != located_records + len(presence_only) + ingest_summary["rejected"]:
            raise AssertionError(f"facility rows lost: {ingest_summary}")  # pragma: no cover - an internal bug
        if len(sited.merge_log):
            notes.append(
                f"{len(sited.merge_log)} facility records were merged into others (the same facility listed twice, "
                "or several services in one building): see 合并记录 / 重复或同址记录已合并"
            )
        if sited.fallback_records:
            notes.append(
                f"{sited.fallback_records} facilities sit on a point a geocoder falls back to (shared by unrelated "
                "records, or an administrative seat): kept out of walking reach, see 疑似默认坐标 "
                "/ 疑似地址解析失败的默认坐标，未计步行覆盖"
            )
        if len(presence_only):
            notes.append(
                f"{len(presence_only)} facilities without usable coordinates count for their village/town "
                "(presence targets) but not for walking reach / 无坐标设施仅计入所属村社区“有无设施”"
            )

    with timer.stage("network"):
        # straight to arrays: the batch job never needs the networkx graph
        net = network.load_walk_arrays(config.network)
        working_crs = net.crs
        graph_summary = network.network_summary(net)

    if params.crs_check != "off":
        with timer.stage("crs check"):
            notes.extend(check_coordinate_systems(config, records, ingest_summary, units, net))

    with timer.stage("population"):
        demand, calibration, _ = _load_demand(config, units, study_area, working_crs, notes,
                                              network_outline=lambda: _network_outline(net))

    with timer.stage("snapping"):
        facility_snap = reach.snap_points(net, facilities.to_crs(working_crs).geometry,
                                          max_access_m=params.max_access_m)
        demand_snap = reach.snap_points(net, demand.geometry, max_access_m=params.max_access_m)
        demand_snap, moved = reach.attach_off_fragments(net, demand.geometry, demand_snap,
                                                        max_access_m=params.max_access_m, keep=facility_snap)
        access_summary = {"homes_moved_off_stray_fragments": int(moved.sum()),
                          "elderly_moved_off_stray_fragments": round(float(demand.loc[moved, "elderly"].sum()), 1),
                          "stray_fragment_max_nodes": reach.STRAY_FRAGMENT_MAX_NODES}
        if moved.any():
            notes.append(
                f"{access_summary['elderly_moved_off_stray_fragments']:,.0f} elderly persons ({int(moved.sum())} "
                f"homes) were nearest to a stray street fragment of at most {reach.STRAY_FRAGMENT_MAX_NODES} nodes "
                "without a facility and walk to the main network instead (within the access limit) "
                "/ 最近道路为孤立短路段的住户改接主路网"
            )
        off_facilities = int((~facility_snap.on_network).sum())
        if off_facilities:
            notes.append(
                f"{off_facilities} facilities are more than {params.max_access_m:g} m from any walkable street "
                "and serve no one in the figures / 设施距步行道路过远，未计入"
            )
        off_persons = float(demand.loc[~demand_snap.on_network, "elderly"].sum())
        if off_persons > 0:
            notes.append(
                f"{off_persons:,.0f} elderly persons live more than {params.max_access_m:g} m from any walkable "
                "street: counted as not covered / 距道路过远的老人计为未覆盖"
            )
    return StudyInputs(units, study_area, facilities, rejects, ingest_summary, net, working_crs, graph_summary,
                       demand, calibration, facility_snap, demand_snap, presence_only, sited.merge_log,
                       sited.fallback_points, access_summary)


def run_study(
    config: StudyConfig | str | Path,
    *,
    lang: str = "zh",
    write: bool = True,
    make_map: bool = True,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> StudyResults:
    """
    Run one study end to end.

    Parameters
    ----------
    config
        A :class:`StudyConfig` or the path of a study YAML file.
    lang
        ``zh`` (Chinese headers) or ``en`` for the written tables.
    write
        Write the output files to ``config.output_dir``.
    make_map
        Render the HTML map and the PNG figure.
    progress
        Show progress bars.
    echo
        Called with a line of text per stage (e.g. ``print``).

    Returns
    -------
    StudyResults
    """
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    params = config.parameters
    if config.target_sets or config.target_files:
        # a misspelt target set fails now, not after the long stages
        targets.select_study_targets(config)
    from tqdm import tqdm  # not tqdm.auto: it warns in notebooks without ipywidgets

    n_stages = len(COMPUTE_STAGES) + (len(WRITE_STAGES) - (0 if make_map else 1) if write else 0)
    bar = tqdm(total=n_stages, desc=config.name, unit="stage", leave=False, disable=None) if progress else None
    if bar is not None and bar.disable:  # not a terminal: say each stage on its own line instead
        bar = None
    timer = StageTimer(echo=echo, bar=bar)
    notes: list[str] = []
    inputs = prepare_inputs(config, timer, notes)
    units, facilities, demand = inputs.units, inputs.facilities, inputs.demand
    presence_only = inputs.presence_only if inputs.presence_only is not None else facilities.iloc[:0]
    # presence targets and village counts see every facility placed in a unit, with or without a point
    facilities_in_units = facilities if presence_only.empty else gpd.GeoDataFrame(
        pd.concat([facilities, presence_only], ignore_index=True), geometry="geometry", crs=facilities.crs)
    net, facility_snap, demand_snap = inputs.net, inputs.facility_snap, inputs.demand_snap
    rejects, ingest_summary, calibration = inputs.rejects, inputs.ingest_summary, inputs.calibration
    graph_summary, working_crs = inputs.graph_summary, inputs.working_crs

    masks = kind_masks(facilities, params.kinds)
    networks = None  # the networks of kinds reached by car or e-bike, when the study has such kinds
    with timer.stage("reach"):
        walking_masks = {kind: mask for kind, mask in masks.items()
                         if kind == ANY_KIND or params.travel_profile(kind) is None}
        seconds_by_kind, nearest_by_kind = compute_reach(net, facility_snap, demand_snap, walking_masks, config,
                                                         progress=progress)
        metres_by_kind, metres_nearest = compute_reach(net, facility_snap, demand_snap, walking_masks, config,
                                                       distance_mode=True, progress=progress)
        if len(walking_masks) < len(masks):
            # kinds reached by car or e-bike: their own network, snaps and edge costs
            networks = profile_networks(config, facilities, demand, working_crs, notes)
            seconds_by_kind, nearest_by_kind = merge_profile_reach(
                (seconds_by_kind, nearest_by_kind), compute_profile_reach(networks, masks, config), list(masks))
            metres_by_kind, _ = merge_profile_reach(
                (metres_by_kind, metres_nearest), compute_profile_reach(networks, masks, config, distance_mode=True),
                list(masks))
            others = [f"{kind} ({params.kind_profiles[kind]})" for kind in params.kinds
                      if params.travel_profile(kind) is not None]
            notes.append(
                f"travel modes per kind: {', '.join(others)}; every other kind walks. 'any' is the walk to a "
                "facility of any kind (the walking service circle), never a drive; distances (m) of these kinds "
                "are along the roads the mode may use. Isochrones follow each kind's mode; the sensitivity "
                "sheet is walking only / 各类型按所设出行方式计算，“任一设施”仍为步行"
            )

    with timer.stage("metrics"):
        names = units.set_index("code")["name"].to_dict() if units is not None else {}
        coverage_long = _coverage_tables(demand, seconds_by_kind, metres_by_kind, params, names)
        coverage_wide = metrics.wide_coverage_table(coverage_long)
        villages, uncovered_units = _village_table(units, demand, facilities_in_units, seconds_by_kind, config)
        facility_table = _facility_table(net, facilities, facility_snap, demand_snap, demand, nearest_by_kind, config)
        components = _components_table(net, facility_snap, demand_snap, demand, facilities, masks, config)
        no_facility = components[(components["component"] >= 0) & (components["facilities_total"] == 0)]
        if len(no_facility):
            notes.append(
                f"{no_facility['elderly'].sum():,.0f} elderly persons live on {len(no_facility)} network "
                "part(s) with no facility at all (e.g. islands) / 无设施的孤立路网片区"
            )

    with timer.stage("sensitivity"):
        sensitivity = _sensitivity(net, facility_snap, demand_snap, masks, demand, config,
                                   study_seconds=seconds_by_kind)

    with timer.stage("isochrones"):
        isochrones = _isochrones(net, facility_snap, masks, config, working_crs, networks=networks).to_crs("EPSG:4326")
        per_facility = facility_isochrones(net, facilities, facility_snap, config, working_crs) \
            if params.isochrones_per_facility else None

    with timer.stage("targets"):
        targets_table = _evaluate_targets(config, demand, seconds_by_kind, metres_by_kind, units,
                                          facilities_in_units, villages)

    if write:
        notes.extend(outputs.writing_notes(config, demand, make_map=make_map))
    results = StudyResults(
        config=config, facilities=facilities, rejects=rejects, ingest_summary=ingest_summary, units=units,
        demand_projected=demand, seconds_by_kind=seconds_by_kind, metres_by_kind=metres_by_kind,
        nearest_by_kind=nearest_by_kind, coverage_long=coverage_long, coverage_wide=coverage_wide,
        villages=villages, uncovered_units=uncovered_units, facility_table=facility_table, isochrones=isochrones,
        facility_isochrones=per_facility,
        components=components, sensitivity=sensitivity, calibration=calibration, targets=targets_table,
        graph_summary=graph_summary, timings=timer.seconds, output_files={}, notes=notes,
        presence_only=presence_only, merge_log=inputs.merge_log, fallback_points=inputs.fallback_points,
        access_summary=inputs.access_summary, network=net,
    )
    if write:
        # the results are complete before anything is written; the writers only read them
        files = outputs.write_study_outputs(results, lang=lang, make_map=make_map, timer=timer)
        results = dataclasses.replace(results, output_files=files)
        run_json = report.write_json(build_run_record(results), config.output_dir / "run.json")
        results = dataclasses.replace(results, output_files={**files, "run.json": run_json})
    if bar is not None:
        bar.close()
    return results


def _evaluate_targets(config, demand, seconds_by_kind, metres_by_kind, units, facilities, villages) -> pd.DataFrame:
    """Evaluate the configured target sets (an empty table when none are configured)."""
    if not config.target_sets and not config.target_files:
        return pd.DataFrame()
    return targets.evaluate_study_targets(
        config, demand=demand, seconds_by_kind=seconds_by_kind, metres_by_kind=metres_by_kind,
        units=units, facilities=facilities, villages=villages,
    )
