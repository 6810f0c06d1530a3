"""The batch job: one study configuration in, coverage tables, layers, a map and a run record out."""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import (
    access_tables, crs_check, ingest, isochrones, metrics, network, outputs, profiles, reach, report, sites, targets,
    timeline, year_outputs, year_tables,
)
from coverage._errors import InputDataError
from coverage._threads import ClaimedTask, SharedTasks, default_threads
from coverage.config import StudyConfig, load_study
from coverage.demand import _census_zones, _load_demand, _network_outline, _read_census_totals, _study_area
from coverage.kind_reach import (
    ProfileNetwork, compute_profile_reach, compute_reach, kind_masks, merge_profile_reach, profile_networks,
)
from coverage.profiles import kind_modes, walking_mode_id
from coverage.results import ANY_KIND, StudyInputs, StudyResults, population_method
from coverage.run_record import build_run_record
from coverage.study_tables import (_components_table, _coverage_tables, _facility_table, _sensitivity, _village_table,
                                   facility_catchment)

#: the batch job's own names, and the stages' names it re-exports (demand, kind_reach, study_tables)
__all__ = [
    "ANY_KIND", "ProfileNetwork", "StageTimer", "StudyInputs", "StudyResults", "build_run_record",
    "compute_profile_reach", "compute_reach", "facility_records", "facility_sites", "kind_masks", "kind_modes", "merge_profile_reach",
    "population_method", "prepare_inputs", "profile_networks", "run_study", "walking_mode_id",
    "_census_zones", "_read_census_totals",
]

#: kinds reported in tables, plus "any" (a facility of any kind)


#: the stages a run times, in order (the progress bar counts them; "crs check" only when facilities have points,
#: "accessibility" only with parameters.accessibility.enabled; "isochrones" is the wait for their thread)
COMPUTE_STAGES = ("units", "facilities", "network", "population", "snapping", "reach", "metrics", "sensitivity",
                  "accessibility", "targets", "isochrones")
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
        """Time the enclosed block under ``name``; a stage timed again (in parts) adds up and counts once."""
        again = name in self.seconds
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        elif self.echo and not again:
            self.echo(f"  … {name}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
            if self.bar is not None and not again:
                self.bar.update(1)


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


def _isochrones(net, facility_snap, masks, config, working_crs, networks=None,
                threads: int | None = None, cancel: threading.Event | None = None) -> gpd.GeoDataFrame:
    """
    One area per facility kind and threshold: where a facility of the kind is reached, in the kind's travel mode.

    The thresholds are those :meth:`coverage.config.Parameters.isochrone_minutes_for`
    gives on this walking network (on a county, the headline one only).

    Walking kinds search the walking network at the kind's speed; a kind
    with a travel profile (``parameters.kind_profiles``) searches the
    profile's own network with its directed edge seconds
    (:func:`coverage.profiles.edge_costs`), as :func:`compute_profile_reach`
    does. One bounded search per kind serves all its thresholds
    (:mod:`coverage.isochrones`). ``networks`` (:func:`profile_networks`)
    gives the profile networks and snaps; without it they are loaded here
    and the facilities are snapped from their walking-network positions
    (their first access leg is then not counted: a few metres of difference).
    ``threads`` unions the grid cells on several cores
    (default :func:`coverage._threads.default_threads`). Once ``cancel``
    is set (the run failed) no further kind is drawn.

    Returns
    -------
    geopandas.GeoDataFrame
        ``kind``, ``minutes``, ``walk_speed_mps`` (NaN for a non-walking
        profile), ``mode`` (profile id), polygon in ``working_crs``.
    """
    params = config.parameters
    threads = default_threads() if threads is None else threads
    rows = []
    loaded: dict = {}
    walk_xy = None
    for kind, mask in masks.items():
        if cancel is not None and cancel.is_set():
            break
        if kind == ANY_KIND or not mask.any():
            continue
        positions = np.flatnonzero(mask)
        profile = params.travel_profile(kind)
        thresholds = params.isochrone_minutes_for(kind, net.n_edges)
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
        # one search and one pass of unions for all thresholds of the kind, each built on the shorter one's
        polygons = isochrones.nested_isochrones(
            kind_net, snap, [minutes * 60.0 for minutes in thresholds], walk_speed_mps=speed,
            buffer_m=params.isochrone_buffer_m, ferry=ferry, edge_seconds=edge_seconds, threads=threads,
        )
        for minutes, polygon in zip(thresholds, polygons):
            if not polygon.is_empty:
                rows.append({"kind": kind, "minutes": minutes,
                             "walk_speed_mps": speed if profile is None else np.nan, "mode": mode,
                             "geometry": polygon})
    frame = gpd.GeoDataFrame(rows, columns=["kind", "minutes", "walk_speed_mps", "mode", "geometry"],
                             crs=working_crs)
    return frame


def _study_isochrones(net, facilities, facility_snap, masks, config, working_crs, networks,
                      cancel: threading.Event | None = None):
    """
    The run's isochrones (WGS-84) per kind and threshold, and per facility when ``isochrones_per_facility``.

    Drawn on a thread of its own (:func:`run_study`); ``cancel`` set (the
    run failed) stops it after the kind being drawn, so a failed run exits
    without drawing the rest.
    """
    # the main thread goes on with the tables meanwhile: the unions keep to the other cores
    threads = max(1, default_threads() - 1)
    areas = _isochrones(net, facility_snap, masks, config, working_crs, networks=networks,
                        threads=threads, cancel=cancel).to_crs("EPSG:4326")
    per_facility = facility_isochrones(net, facilities, facility_snap, config, working_crs, threads=threads) \
        if config.parameters.isochrones_per_facility and not (cancel is not None and cancel.is_set()) else None
    return areas, per_facility


def _study_drawing(net, facilities, facility_snap, masks, config, working_crs, networks,
                   cancel: threading.Event | None = None, *, map_images: bool = False,
                   streets: ClaimedTask | None = None, shared: SharedTasks | None = None):
    """
    :func:`_study_isochrones`, then the map's images of them (:func:`coverage.outputs.isochrone_map_images`).

    The images (numpy and PNG work, mostly without the GIL) are made here,
    on the drawing thread, so that the main thread only places them on
    the map; so is the map's street layer (``streets``, shapely work)
    unless the main thread has claimed it first, having finished its own
    work before this thread; and the images are ``shared`` work
    (:class:`coverage._threads.SharedTasks`) that the main thread, once
    waiting for this one, makes from the last. Returns ``(isochrones, per-facility
    isochrones, images or None)``.
    """
    areas, per_facility = _study_isochrones(net, facilities, facility_snap, masks, config, working_crs, networks,
                                            cancel)
    images = outputs.isochrone_map_images(areas, config, shared=shared) \
        if map_images and not (cancel is not None and cancel.is_set()) else None
    if streets is not None and not (cancel is not None and cancel.is_set()):
        streets.run_if_unclaimed()
    return areas, per_facility, images


def facility_isochrones(net, facilities, facility_snap, config, working_crs, *, threads: int = 1) -> gpd.GeoDataFrame:
    """
    One area per facility and threshold, in the travel mode of the facility's first kind.

    Facilities sharing a mode (walking speed or travel profile) are searched
    together, one bounded search per chunk for all thresholds
    (:func:`coverage.isochrones.isochrones_by_source`, grid cells unioned on
    ``threads`` threads); a kind with a travel profile uses the profile's
    network and edge seconds.

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
                                                edge_seconds=edge_seconds, threads=threads)
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


def _check_network_reaches_study(config: StudyConfig, net, study_area, facilities) -> None:
    """
    Stop when the street network lies wholly apart from the study (another city's OpenStreetMap extract).

    Run on, every older person would be "more than 500 m from a street" and
    every coverage rate 0 %, with the cause in a note. The network is named
    only when located facilities are kept and its extent (WGS-84) comes
    within about a kilometre of neither the units' outline nor those
    facilities: units apart from everything else (no facility falls inside
    them) are the units' fault, and the coordinate check and the population
    stage name them.
    """
    from pyproj import Transformer

    located = facilities[facilities.geometry.notna()] if len(facilities) else facilities
    if net.n_nodes == 0 or not len(located):
        # no facility inside the units: the units are the odd ones out (wrong place or coordinates), and the
        # coordinate check and the population stage name them
        return
    extents = []  # (what, file, WGS-84 bounds)
    if study_area is not None:
        extents.append(("the units", config.units.path, tuple(study_area.to_crs("EPSG:4326").total_bounds)))
    extents.append(("the facilities", config.facilities[0].path if len(config.facilities) == 1 else None,
                    tuple(located.to_crs("EPSG:4326").total_bounds)))
    x = [float(net.node_x.min()), float(net.node_x.max())]
    y = [float(net.node_y.min()), float(net.node_y.max())]
    lon, lat = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(
        [x[0], x[0], x[1], x[1]], [y[0], y[1], y[0], y[1]])
    network_bounds = (min(lon), min(lat), max(lon), max(lat))
    reach_box = shapely.box(*network_bounds).buffer(0.01, join_style="mitre")  # about a kilometre around
    if any(shapely.intersects(reach_box, shapely.box(*bounds)) for _, _, bounds in extents):
        return

    def extent(b) -> str:
        return f"{b[0]:.3f}–{b[2]:.3f} E, {b[1]:.3f}–{b[3]:.3f} N"

    apart = " nor ".join(f"{what} ({Path(path).name + ', ' if path else ''}{extent(bounds)})"
                         for what, path, bounds in extents)
    reaches = "reaches neither" if len(extents) > 1 else "does not reach"
    raise InputDataError(
        f"the street network covers {extent(network_bounds)}, which {reaches} {apart}: every older person "
        "would be counted as far from any street / 路网范围与研究区不重叠（可能用错了城市的OSM文件）",
        path=config.network,
        hint="download the OpenStreetMap data of the study area (e.g. a Geofabrik extract or an export of the "
             "area's bounding box) and set inputs.network to it / 请下载研究区范围的OSM路网数据",
    )


def prepare_inputs(config: StudyConfig, timer: StageTimer | None = None, notes: list[str] | None = None, *,
                   as_of: int | None = None,
                   on_snapped: Callable[[reach.NetworkArrays, gpd.GeoDataFrame, reach.Snap, Any], None] | None = None,
                   ) -> StudyInputs:
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
    as_of
        Calendar year: only facility records open in that year count
        (:func:`coverage.timeline.open_mask`); None = as listed (planned,
        under-construction and closed records do not count).
    on_snapped
        Called with the network, the facilities, their snap and the working
        CRS as soon as the facilities are on the network, before the
        population is read (:func:`run_study` starts drawing the isochrones
        then).
    """
    params = config.parameters
    timer = timer or StageTimer()
    notes = notes if notes is not None else []
    with timer.stage("units"):
        units = ingest.read_units(config.units.path, crs=config.units.crs, layer=config.units.layer) \
            if config.units else None
        study_area = _study_area(units)

    with timer.stage("facilities"):
        # a region run's area: facilities just across the border stay, for reach only (coverage.region)
        records, rejects, ingest_summary = _load_facilities(config, _facility_area(config, study_area))
        # facilities in time: records not open in the evaluation year are set aside (counted, not rejected)
        records, not_open = timeline.split_open(records, as_of, notes)
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
            **timeline.not_open_summary(not_open, as_of),
        }
        if ingest_summary["rows_in"] != located_records + len(presence_only) + ingest_summary["rejected"] + \
                len(not_open):
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
        _check_network_reaches_study(config, net, study_area, facilities)

    with timer.stage("snapping"):
        facility_snap = reach.snap_points(net, facilities.to_crs(working_crs).geometry,
                                          max_access_m=params.max_access_m)
    if on_snapped is not None:
        on_snapped(net, facilities, facility_snap, working_crs)

    if params.crs_check != "off":
        # after the isochrones have started (it only reads; a file's implausible coordinates stop the run
        # before the population is read, and the drawing thread is then cancelled)
        with timer.stage("crs check"):
            notes.extend(check_coordinate_systems(config, records, ingest_summary, units, net))

    with timer.stage("population"):
        demand, calibration, _ = _load_demand(config, units, study_area, working_crs, notes,
                                              network_outline=lambda: _network_outline(net))

    with timer.stage("snapping"):  # the same stage, timed on
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
    inputs: StudyInputs | None = None,
    as_of: int | None = None,
    years: tuple[int, ...] = (),
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
    inputs
        Inputs already prepared by :func:`prepare_inputs` (e.g. a scenario's,
        :mod:`coverage.scenarios`, which changes only the facilities); default: prepared here.
    as_of
        Evaluate the facilities open in this calendar year
        (:func:`coverage.timeline.open_mask`); None = as listed.
    years
        Also the trajectory of every coverage figure and target over these
        years (:func:`coverage.year_tables.trajectory`: the searches are
        shared by the years), written as ``<study>_年度进展.xlsx`` and CSV/PNG.

    Returns
    -------
    StudyResults
        With ``years``, ``trajectory`` holds the :class:`coverage.year_tables.Trajectory`.
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
    # the isochrones feed only the map and the layers: drawn on a thread of their own while the tables' stages
    # run (GEOS releases the GIL), and waited for after them (the "isochrones" stage is that wait); they start
    # as soon as the facilities are on the network when every kind walks (prepare_inputs' on_snapped), else
    # after the reach stage has loaded the kinds' own networks
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isochrones")
    cancel = threading.Event()  # set when the run fails: the thread stops after the kind it is drawing
    started: list = []  # the drawing's future, once started
    shared = SharedTasks()  # the drawing's last work items (the map's images), for the main thread once it waits

    def start_drawing(net, facilities, facility_snap, working_crs, networks=None):
        # the map's streets: drawn by this thread or the drawing thread, whichever is free first
        streets = ClaimedTask(functools.partial(outputs.street_layer_of, net)) if write and make_map else None
        started.append((pool.submit(_study_drawing, net, facilities, facility_snap,
                                    kind_masks(facilities, params.kinds), config, working_crs, networks, cancel,
                                    map_images=write and make_map, streets=streets, shared=shared), streets))
        pool.shutdown(wait=False)  # the thread ends with its one task

    every_kind_walks = all(params.travel_profile(kind) is None for kind in params.kinds)
    try:
        if inputs is None:
            inputs = prepare_inputs(config, timer, notes, as_of=as_of,
                                    on_snapped=start_drawing if every_kind_walks else None)
        units, facilities, demand = inputs.units, inputs.facilities, inputs.demand
        presence_only = inputs.presence_only if inputs.presence_only is not None else facilities.iloc[:0]
        # presence targets and village counts see every facility placed in a unit, with or without a point
        facilities_in_units = facilities if presence_only.empty else gpd.GeoDataFrame(
            pd.concat([facilities, presence_only], ignore_index=True), geometry="geometry", crs=facilities.crs)
        if config.facility_area_buffer_m > 0 and inputs.study_area is not None:
            # a region run's area: facilities across its border serve reach only; presence, capacity and
            # village counts are the area's own (coverage.region)
            located = facilities_in_units.geometry.notna().to_numpy()
            inside = ~located
            inside[located] = shapely.covers(inputs.study_area.iloc[0],
                                             np.asarray(facilities_in_units.geometry.values)[located])
            facilities_in_units = facilities_in_units[inside].reset_index(drop=True)
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

        drawn_minutes = sorted({m for kind in params.kinds for m in params.isochrone_minutes_for(kind, net.n_edges)})
        every_minutes = sorted({m for kind in params.kinds for m in params.thresholds_for(kind)})
        if drawn_minutes != every_minutes:
            notes.append(
                f"isochrones drawn at {', '.join(f'{m:g}' for m in drawn_minutes)} min only, the threshold the map "
                f"shows (walking network of {net.n_edges:,} edges; parameters.isochrone_thresholds: all draws every "
                "threshold); the walking-minutes raster holds every threshold / 等时圈仅绘制地图所示阈值"
            )
        if not started:
            start_drawing(net, facilities, facility_snap, working_crs, networks)
        drawing, streets = started[0]
        with timer.stage("metrics"):
            names = units.set_index("code")["name"].to_dict() if units is not None else {}
            coverage_long = _coverage_tables(demand, seconds_by_kind, metres_by_kind, params, names)
            coverage_wide = metrics.wide_coverage_table(coverage_long)
            villages, uncovered_units = _village_table(units, demand, facilities_in_units, seconds_by_kind, config)
            catchment = facility_catchment(net, facility_snap, demand_snap, config)
            facility_table = _facility_table(facilities, facility_snap, demand, nearest_by_kind, config, catchment[2])
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

        study_access = None
        if params.accessibility.enabled:
            with timer.stage("accessibility"):
                study_access = _study_accessibility(config, inputs, facility_catchment=catchment)
                notes.extend(study_access.notes)

        with timer.stage("targets"):
            targets_table = _evaluate_targets(config, demand, seconds_by_kind, metres_by_kind, units,
                                              facilities_in_units, villages, year=as_of,
                                              accessibility=study_access.values_for_targets() if study_access else None)

        year_trajectory = None
        if years:
            with timer.stage("years"):
                # every record again (the run above kept only the open ones), then one pass over the years
                year_trajectory = year_tables.trajectory(config, inputs, facility_records(config, inputs), tuple(years),
                                                         facility_sites)
                notes.extend(year_trajectory.notes)

        if not write:
            with timer.stage("isochrones"):
                drawing.result()

        if write:
            notes.extend(outputs.writing_notes(config, demand, make_map=make_map))
        results = StudyResults(
            config=config, facilities=facilities, rejects=rejects, ingest_summary=ingest_summary, units=units,
            demand_projected=demand, seconds_by_kind=seconds_by_kind, metres_by_kind=metres_by_kind,
            nearest_by_kind=nearest_by_kind, coverage_long=coverage_long, coverage_wide=coverage_wide,
            villages=villages, uncovered_units=uncovered_units, facility_table=facility_table, isochrones=None,
            facility_isochrones=None,  # still being drawn: the writers wait for them before the layers and the map
            components=components, sensitivity=sensitivity, calibration=calibration, targets=targets_table,
            graph_summary=graph_summary, timings=timer.seconds, output_files={}, notes=notes,
            presence_only=presence_only, merge_log=inputs.merge_log, fallback_points=inputs.fallback_points,
            access_summary=inputs.access_summary, network=net, accessibility=study_access, trajectory=year_trajectory,
        )
        if write:
            # the results are complete but for the isochrones before anything is written; the writers only read them
            files = outputs.write_study_outputs(results, lang=lang, make_map=make_map, timer=timer,
                                                isochrones=drawing, streets=streets, shared=shared)
            if year_trajectory is not None:
                files = {**files, **year_outputs.write_year_outputs(year_trajectory, config, lang=lang,
                                                                    make_map=make_map, units=units)}
        isochrones, per_facility, _ = drawing.result()
        results = dataclasses.replace(results, isochrones=isochrones, facility_isochrones=per_facility)
        if write:
            results = dataclasses.replace(results, output_files=files)
            run_json = report.write_json(build_run_record(results), config.output_dir / "run.json")
            results = dataclasses.replace(results, output_files={**files, "run.json": run_json})
        if bar is not None:
            bar.close()
    except BaseException:
        cancel.set()
        raise
    return results


def facility_records(config: StudyConfig, inputs: StudyInputs) -> gpd.GeoDataFrame:
    """
    Every located facility record of the study, open or not (planned, under construction, closed), as a run reads them.

    The records a year-by-year view starts from (:mod:`coverage.year_tables`,
    :mod:`coverage.phased_plan`): a run itself keeps only the ones open when
    it is evaluated (:func:`coverage.timeline.open_mask`).
    """
    return _load_facilities(config, _facility_area(config, inputs.study_area))[0]


def _facility_area(config: StudyConfig, study_area):
    """The area facilities are kept in: the study area, widened by ``facility_area_buffer_m`` for a region run."""
    if config.facility_area_buffer_m > 0 and study_area is not None:
        utm = study_area.estimate_utm_crs()
        return study_area.to_crs(utm).buffer(config.facility_area_buffer_m).to_crs(study_area.crs)
    return study_area


def _evaluate_targets(config, demand, seconds_by_kind, metres_by_kind, units, facilities, villages,
                      year: int | None = None, accessibility=None) -> pd.DataFrame:
    """Evaluate the configured target sets (an empty table when none are configured); ``year``: a series' value then."""
    if not config.target_sets and not config.target_files:
        return pd.DataFrame()
    return targets.evaluate_study_targets(
        config, demand=demand, seconds_by_kind=seconds_by_kind, metres_by_kind=metres_by_kind,
        units=units, facilities=facilities, villages=villages, **({"year": year} if year is not None else {}),
        accessibility=accessibility,
    )


def _study_accessibility(config: StudyConfig, inputs: StudyInputs, facility_catchment=None):
    """2SFCA, capacity-aware coverage, crowding and equity of the walking kinds (``parameters.accessibility``)."""
    return access_tables.study_settings_accessibility(config.parameters, inputs.net, inputs.facility_snap,
                                                      inputs.demand_snap, inputs.facilities, inputs.demand,
                                                      units=inputs.units, facility_catchment=facility_catchment)
