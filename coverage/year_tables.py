"""Coverage and targets year by year (the trajectory of a plan), sharing the network searches across the years."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import access_tables, ingest, reach, targets, timeline
from coverage.catalogue import STATUS_FAIL, STATUS_PASS
from coverage.config import StudyConfig
from coverage.kind_reach import compute_profile_reach, compute_reach, kind_masks, merge_profile_reach, profile_networks
from coverage.results import ANY_KIND, StudyInputs
from coverage.study_tables import _coverage_tables, _village_table

__all__ = ["Trajectory", "YearFacilities", "trajectory", "year_facilities", "STATUS_NOT_DUE", "coverage_by_year"]

#: status of a year before a yearly series starts (nothing is required yet)
STATUS_NOT_DUE = "not due"


@dataclass(frozen=True)
class YearFacilities:
    """
    The facilities of one year: records open then, made into sites as a run of that year would.

    ``located`` are the sites with a usable point (walking reach),
    ``presence_only`` those counted for unit presence only; ``records``
    the number of open records.
    """

    year: int
    located: gpd.GeoDataFrame
    presence_only: gpd.GeoDataFrame
    records: int


@dataclass(frozen=True)
class Trajectory:
    """
    Every coverage figure and target of a study, year by year.

    Attributes
    ----------
    years
        The years, ascending.
    coverage
        The long coverage table (``study_tables._coverage_tables``) of every
        year, with a ``year`` column first.
    targets
        The target table (``targets.RESULT_COLUMNS``) of every year with
        ``year_evaluated`` first; ``required`` is the year's value of a yearly
        series; ``status`` is ``not due`` before a series starts.
    first_met
        One row per target: ``target_id``, ``label_zh``, ``label_en``,
        ``due_year`` (the target's year), ``first_year_met`` (first year from
        which it stays met up to the last year, NA when never),
        ``met_last_year`` (bool), ``on_time`` (met by the due year, NA when
        the due year is outside the years).
    facilities
        Per year: ``year``, ``records_open``, ``sites`` (with a point),
        ``presence_only``, and the open records per status.
    notes
        Plain-language notes (how the years were computed).
    seconds_by_year
        Year → kind → walking seconds per demand point (inf beyond the
        limit), as a run of that year gives them.
    located_by_year
        Year → the sites with a point open that year (EPSG:4326), as a run of that year has them.
    """

    years: tuple[int, ...]
    coverage: pd.DataFrame
    targets: pd.DataFrame
    first_met: pd.DataFrame
    facilities: pd.DataFrame
    notes: tuple[str, ...]
    seconds_by_year: Mapping[int, Mapping[str, np.ndarray]]
    located_by_year: Mapping[int, gpd.GeoDataFrame]


def year_facilities(records: gpd.GeoDataFrame, year: int, units: gpd.GeoDataFrame | None,
                    sites_of: Callable[..., Any]) -> YearFacilities:
    """
    The sites of the records open in ``year``, exactly as :func:`coverage.pipeline.prepare_inputs` makes them.

    Parameters
    ----------
    records
        Every facility record (``ingest.read_facilities`` of all files).
    year
        Calendar year.
    units
        The study's units (or None).
    sites_of
        :func:`coverage.pipeline.facility_sites` (passed in: the pipeline calls this module).
    """
    open_records = timeline.as_of(records, year)
    sited = sites_of(open_records, units)
    facilities = sited.facilities
    if units is not None:
        facilities = ingest.assign_facilities_to_units(facilities, units)
    located, presence_only, _ = ingest.split_presence_only(facilities)
    return YearFacilities(int(year), located, presence_only, len(open_records))


def _row_keys(facilities: gpd.GeoDataFrame) -> list[tuple]:
    """What unit assignment reads of a site (ids, names, codes, flags, point): equal keys, equal assignment."""
    columns = [c for c in ("facility_id", "name", "kinds", "address", "town_name", "village_name", "unit_code", "flags")
               if c in facilities.columns]
    texts = [facilities[c].astype(str).tolist() for c in columns]
    points = [g.wkb if g is not None else b"" for g in facilities.geometry]
    return list(zip(*texts, points))


def _years_facilities(records: gpd.GeoDataFrame, years: Sequence[int], units: gpd.GeoDataFrame | None,
                      sites_of: Callable[..., Any]) -> dict[int, YearFacilities]:
    """
    :func:`year_facilities` of every year, each distinct site assigned to its unit once.

    A site's unit (code, polygon, names, nearest village point) depends on
    the site's own row only, so the sites the years share are assigned once.
    """
    sited = {year: sites_of(timeline.as_of(records, year), units).facilities for year in years}
    n_open = {year: int(timeline.open_mask(records, year).sum()) for year in years}
    if units is None:
        assigned_by_year = sited
    else:
        index: dict[tuple, int] = {}
        firsts: list[gpd.GeoDataFrame] = []
        positions: dict[int, list[int]] = {}
        for year in years:
            keys = _row_keys(sited[year])
            new = []
            for i, key in enumerate(keys):
                if key not in index:
                    index[key] = len(index)
                    new.append(i)
            if new:
                firsts.append(sited[year].iloc[new])
            positions[year] = [index[key] for key in keys]
        unique = gpd.GeoDataFrame(pd.concat(firsts, ignore_index=True), geometry="geometry",
                                  crs=sited[years[0]].crs) if firsts else sited[years[0]]
        assigned = ingest.assign_facilities_to_units(unique, units)
        assigned_by_year = {year: assigned.iloc[positions[year]].reset_index(drop=True) for year in years}
    out = {}
    for year in years:
        located, presence_only, _ = ingest.split_presence_only(assigned_by_year[year])
        out[year] = YearFacilities(int(year), located, presence_only, n_open[year])
    return out


def _site_keys(located: gpd.GeoDataFrame) -> list[tuple]:
    """A site's identity across years: its point and kinds (the same record open in two years)."""
    xs, ys = located.geometry.x.to_numpy(), located.geometry.y.to_numpy()
    return list(zip(xs.tolist(), ys.tolist(), located["kinds"].astype(str).tolist()))


def _same_snap(a: reach.Snap, b: reach.Snap) -> bool:
    return bool(np.array_equal(a.edge, b.edge) and np.array_equal(a.fraction, b.fraction)
                and np.array_equal(a.access_m, b.access_m))


def _combine(base: tuple[dict, dict], extra: tuple[dict, dict], kinds: Sequence[str]) -> tuple[dict, dict]:
    """Per kind, the nearer of the base facilities and the year's extra ones (min of the two searches)."""
    cost, nearest = {}, {}
    for kind in kinds:
        b_cost, b_near = base[0][kind], base[1][kind]
        if kind not in extra[0]:
            cost[kind], nearest[kind] = b_cost, b_near
            continue
        e_cost, e_near = extra[0][kind], extra[1][kind]
        better = e_cost < b_cost
        cost[kind] = np.where(better, e_cost, b_cost)
        nearest[kind] = np.where(better, e_near, b_near)
    return cost, nearest


def trajectory(config: StudyConfig, inputs: StudyInputs, records: gpd.GeoDataFrame, years: Sequence[int],
               sites_of: Callable[..., Any]) -> Trajectory:
    """
    Coverage and targets in each of ``years``, equal to separate runs ``run_study(config, as_of=year)``.

    Facilities only switch on (opening year) or off (closing year), so the
    searches are shared: every site open in any of the years is snapped
    once; per kind one multi-source search runs from the sites open in all
    the years, and each year adds a search from only its other sites (the
    ones opening later or closing earlier), taking the nearer of the two
    per demand point. The minimum over a union of sources is the minimum
    of the minima, so the seconds and metres are the ones a separate run
    finds. Kinds reached by car or e-bike search their network once per
    year (no sharing).

    Parameters
    ----------
    config
        The study.
    inputs
        :func:`coverage.pipeline.prepare_inputs` of the study (network,
        demand, units; its facilities are not used).
    records
        Every facility record, open or not.
    years
        Calendar years.
    sites_of
        :func:`coverage.pipeline.facility_sites`.

    Returns
    -------
    Trajectory
    """
    years = tuple(sorted({int(y) for y in years}))
    params = config.parameters
    net, demand, units = inputs.net, inputs.demand, inputs.units
    per_year = _years_facilities(records, years, units, sites_of)

    # the union of the years' sites, snapped once (a snap depends on the point alone)
    union_index: dict[tuple, int] = {}
    union_rows: list[gpd.GeoDataFrame] = []
    positions_of: dict[int, np.ndarray] = {}
    for year in years:
        located = per_year[year].located
        keys = _site_keys(located) if len(located) else []
        positions = np.empty(len(keys), dtype=np.int64)
        new_rows = []
        for i, key in enumerate(keys):
            if key not in union_index:
                union_index[key] = len(union_index)
                new_rows.append(i)
            positions[i] = union_index[key]
        if new_rows:
            union_rows.append(located.iloc[new_rows])
        positions_of[year] = positions
    union = gpd.GeoDataFrame(pd.concat(union_rows, ignore_index=True), geometry="geometry", crs=4326) if union_rows \
        else per_year[years[0]].located.iloc[:0]
    union_snap = reach.snap_points(net, union.to_crs(inputs.working_crs).geometry, max_access_m=params.max_access_m)
    raw_demand_snap = reach.snap_points(net, demand.geometry, max_access_m=params.max_access_m)

    union_masks = kind_masks(union, params.kinds)
    kinds_order = list(union_masks)
    walking = [k for k in kinds_order if k == ANY_KIND or params.travel_profile(k) is None]
    in_year = {}
    for year in years:
        flag = np.zeros(len(union), bool)
        flag[positions_of[year]] = True
        in_year[year] = flag

    # demand snaps per year (stray fragments holding a facility keep their homes); years sharing one share searches
    groups: list[tuple[reach.Snap, list[int]]] = []
    demand_snap_of: dict[int, reach.Snap] = {}
    for year in years:
        snap, _ = reach.attach_off_fragments(net, demand.geometry, raw_demand_snap, max_access_m=params.max_access_m,
                                             keep=union_snap.subset(positions_of[year]))
        demand_snap_of[year] = snap
        for group_snap, members in groups:
            if _same_snap(group_snap, snap):
                members.append(year)
                break
        else:
            groups.append((snap, [year]))

    seconds_by_year: dict[int, dict[str, np.ndarray]] = {}
    metres_by_year: dict[int, dict[str, np.ndarray]] = {}
    for demand_snap, members in groups:
        always = np.logical_and.reduce([in_year[y] for y in members])
        base_masks = {k: union_masks[k] & always for k in walking}
        base_s = compute_reach(net, union_snap, demand_snap, base_masks, config)
        base_m = compute_reach(net, union_snap, demand_snap, base_masks, config, distance_mode=True)
        for year in members:
            extra_masks = {k: union_masks[k] & in_year[year] & ~always for k in walking}
            extra_masks = {k: m for k, m in extra_masks.items() if m.any()}
            extra_s = compute_reach(net, union_snap, demand_snap, extra_masks, config) if extra_masks else ({}, {})
            extra_m = compute_reach(net, union_snap, demand_snap, extra_masks, config, distance_mode=True) \
                if extra_masks else ({}, {})
            seconds_by_year[year] = _combine(base_s, extra_s, walking)[0]
            metres_by_year[year] = _combine(base_m, extra_m, walking)[0]

    notes = [
        f"years {years[0]}–{years[-1]}: {len(union)} facility sites are open in at least one year; one search per "
        f"kind from the {int(np.logical_and.reduce([in_year[y] for y in years]).sum()) if years else 0} open in "
        "every year, plus per year one from the others / 分年度进展：各年共用一次路网搜索"
    ]
    if len(walking) < len(kinds_order):
        networks = profile_networks(config, union, demand, inputs.working_crs)
        for year in years:
            masks = {k: union_masks[k] & in_year[year] for k in kinds_order}
            seconds_by_year[year] = merge_profile_reach((seconds_by_year[year], {}),
                                                        (compute_profile_reach(networks, masks, config)[0], {}),
                                                        kinds_order)[0]
            metres_by_year[year] = merge_profile_reach(
                (metres_by_year[year], {}),
                (compute_profile_reach(networks, masks, config, distance_mode=True)[0], {}), kinds_order)[0]
        notes.append("kinds reached by car or e-bike are searched once per year on their own network "
                     "/ 机动车、电动车出行类型逐年计算")

    names = units.set_index("code")["name"].to_dict() if units is not None else {}
    # a kind whose seconds and metres did not change since the previous year has the same table rows
    last: dict[str, tuple[np.ndarray, np.ndarray, pd.DataFrame, pd.DataFrame]] = {}
    coverage_parts, target_parts, facility_rows = [], [], []
    selected = targets.select_study_targets(config) if (config.target_sets or config.target_files) else ()
    # capacity and equity targets need each year's accessibility (the run's own measures on that year's sites)
    with_access = params.accessibility.enabled and any(t.metric in access_tables.ACCESS_METRICS for t in selected)
    if with_access:
        notes.append("capacity and equity targets: the accessibility measures are computed for each year "
                     "/ 容量与公平指标逐年计算可达性")
    for year in years:
        facilities = per_year[year]
        seconds = {k: seconds_by_year[year][k] for k in kinds_order}
        metres = {k: metres_by_year[year][k] for k in kinds_order}
        time_parts, distance_parts = [], []
        for kind in kinds_order:
            seen = last.get(kind)
            if seen is None or not (np.array_equal(seen[0], seconds[kind]) and np.array_equal(seen[1], metres[kind])):
                rows = _coverage_tables(demand, {kind: seconds[kind]}, {kind: metres[kind]}, params, names)
                is_time = (rows["unit"] == "min").to_numpy()
                seen = (seconds[kind], metres[kind], rows[is_time], rows[~is_time])
                last[kind] = seen
            time_parts.append(seen[2])
            distance_parts.append(seen[3])
        # the order of one run's table: time rows kind by kind, then distance rows kind by kind
        table = pd.concat(time_parts + distance_parts, ignore_index=True)
        table.insert(0, "year", year)
        coverage_parts.append(table)
        in_units = facilities.located if facilities.presence_only.empty else gpd.GeoDataFrame(
            pd.concat([facilities.located, facilities.presence_only], ignore_index=True), geometry="geometry",
            crs=facilities.located.crs)
        if selected:
            villages, _ = _village_table(units, demand, in_units, seconds, config)
            accessibility = access_tables.study_settings_accessibility(
                params, net, union_snap.subset(positions_of[year]), demand_snap_of[year], facilities.located, demand,
                units=units).values_for_targets() if with_access else None
            target_parts.append(_year_targets(selected, year, config, demand, seconds, metres, units, in_units,
                                              villages, accessibility))
        open_records = timeline.as_of(records, year)
        facility_rows.append({"year": year, "records_open": facilities.records, "sites": len(facilities.located),
                              "presence_only": len(facilities.presence_only),
                              **{f"status_{code or 'not_stated'}": n
                                 for code, n in timeline.status_counts(open_records).items()}})
    coverage = pd.concat(coverage_parts, ignore_index=True)
    target_table = pd.concat(target_parts, ignore_index=True) if target_parts else pd.DataFrame()
    facility_table = pd.DataFrame(facility_rows).fillna(0)
    return Trajectory(years, coverage, target_table, _first_met(target_table, years), facility_table, tuple(notes),
                      seconds_by_year, {year: per_year[year].located for year in years})


def _year_targets(selected, year, config, demand, seconds, metres, units, facilities, villages,
                  accessibility=None) -> pd.DataFrame:
    """
    The targets in ``year``: a yearly series requires its value of that year (nothing before it starts).

    ``accessibility`` is the year's ``StudyAccess.values_for_targets()`` (capacity and equity targets; None: they
    have no data).
    """
    params = config.parameters
    inputs = targets.TargetInputs(
        demand=demand, seconds_by_kind=seconds, metres_by_kind=metres, units=units, facilities=facilities,
        villages=villages, thresholds_min=tuple(params.thresholds_min),
        distance_thresholds_m=tuple(params.distance_thresholds_m), accessibility=accessibility,
    )
    due = [target.for_year(year) for target in selected]
    table = targets.evaluate_targets(due, inputs)
    not_due = np.array([target.required_in(year) is None for target in selected], bool)
    if not_due.any():
        table.loc[not_due, "status"] = STATUS_NOT_DUE
        table.loc[not_due, "required"] = np.nan
        table.loc[not_due, "gap"] = np.nan
    table.insert(0, "year_evaluated", year)
    table.insert(table.columns.get_loc("required") + 1, "series",
                 [bool(target.required_by_year) for target in selected])
    return table


def _first_met(table: pd.DataFrame, years: Sequence[int]) -> pd.DataFrame:
    """Per target, the first year from which it stays met, and whether it is met by its due year."""
    columns = ["target_id", "label_zh", "label_en", "due_year", "first_year_met", "met_last_year", "on_time"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for target_id, part in table.groupby("target_id", sort=False):
        part = part.sort_values("year_evaluated")
        met = (part["status"] == STATUS_PASS).to_numpy()
        scored = part["status"].isin([STATUS_PASS, STATUS_FAIL]).to_numpy()
        first = timeline.first_year_met(part["year_evaluated"].to_numpy()[scored], met[scored]) if scored.any() \
            else None
        due = part["year"].iloc[0]
        on_time = pd.NA
        if pd.notna(due) and int(due) in set(part["year_evaluated"]):
            on_time = bool(part.loc[part["year_evaluated"] == int(due), "status"].iloc[0] == STATUS_PASS)
        rows.append({"target_id": target_id, "label_zh": part["label_zh"].iloc[0], "label_en": part["label_en"].iloc[0],
                     "due_year": due, "first_year_met": first if first is not None else pd.NA,
                     "met_last_year": bool(met[-1]), "on_time": on_time})
    out = pd.DataFrame(rows, columns=columns)
    out["first_year_met"] = out["first_year_met"].astype("Int64")
    out["due_year"] = out["due_year"].astype("Int64")
    return out


def coverage_by_year(trajectory_: Trajectory, *, kind: str = ANY_KIND, minutes: float | None = None,
                     level: str = "county") -> pd.DataFrame:
    """
    One coverage figure per year (share of the 60+ within ``minutes`` of ``kind``), for figures and notebooks.

    Parameters
    ----------
    trajectory_
        :func:`trajectory` result.
    kind
        Facility kind (default ``any``).
    minutes
        Walking threshold (minutes); default the longest of the table.
    level
        Row level of the coverage table (``county`` = the whole study area).

    Returns
    -------
    pandas.DataFrame
        ``year``, ``share`` (0..1), ``elderly_covered`` (persons), ``elderly`` (persons).
    """
    table = trajectory_.coverage
    rows = table[(table["kind"] == kind) & (table["unit"] == "min")]
    if "level" in rows.columns:
        rows = rows[rows["level"] == level] if (rows["level"] == level).any() else rows[rows["level"] == rows[
            "level"].iloc[0]]
    if minutes is None:
        minutes = float(rows["threshold"].max())
    rows = rows[rows["threshold"] == minutes]
    keep = [c for c in ("year", "share", "elderly_covered", "elderly") if c in rows.columns]
    return rows.groupby("year", as_index=False).first()[keep]
