"""Where to build next: candidate sites, coverage matrices and explained proposals for one study (values only; proposal_outputs writes them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from scipy import sparse
from scipy.spatial import cKDTree

from coverage import exclusions, ingest, metrics, pipeline, reach, siting, targets
from coverage._errors import ConfigError, InputDataError
from coverage.config import KINDS, StudyConfig, load_study
from coverage.results import StudyInputs


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"--kind / kind=: unknown facility kind {kind!r}; use one of {', '.join(KINDS)} "
                          "/ 设施类型有误")


def _check_share(value, name: str) -> float:
    """A target share 0 < share ≤ 1 (a planner may write 90 for 90 %: say so)."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a share such as 0.9, got {value!r} / 目标比例应写成小数，如 0.9") from None
    if not 0.0 < share <= 1.0:
        hint = f" (for {share:g} % write {share / 100:g})" if 1.0 < share <= 100.0 else ""
        raise ConfigError(f"{name}: the target share must be more than 0 and at most 1, got {value!r}{hint} "
                          "/ 目标比例应在 0 到 1 之间，如 90% 写作 0.9")
    return share


def _needs_units(units, config: StudyConfig, what: str) -> None:
    """Village siting and the three-tier plan count units: stop with what to add when the study has none."""
    if units is None:
        raise InputDataError(
            f"{what} needs administrative units, and the study file has no inputs.units "
            "/ 需要行政区划（村/社区、乡镇）",
            path=config.config_path,
            hint="add inputs.units (village/community and town polygons or points, or a 统计用区划代码 table) to the "
                 "study file / 请在研究配置中加入 inputs.units",
        )


@dataclass(frozen=True)
class Proposal:
    """
    The answer to "where do we build the next sites of this kind".

    Attributes
    ----------
    kind, minutes
        Facility kind and walking threshold (minutes).
    result
        The optimisation result (:class:`coverage.siting.SitingResult`).
    sites
        Proposed sites (WGS-84 points) with rank, gain (persons newly
        covered), the units they newly cover and the nearest existing facility.
    marginal
        Coverage after 1, 2, … k new sites.
    candidates
        All candidate sites considered (WGS-84).

    A value: :func:`coverage.proposal_outputs.write_proposal` writes it.
    """

    config: StudyConfig
    kind: str
    minutes: float
    result: siting.SitingResult
    sites: gpd.GeoDataFrame
    marginal: pd.DataFrame
    candidates: gpd.GeoDataFrame
    existing: gpd.GeoDataFrame | None = None
    units_layer: gpd.GeoDataFrame | None = None
    excluded_candidates: pd.DataFrame | None = None
    population_method: str = "raster"


def network_candidates(
    net: reach.NetworkArrays,
    demand: gpd.GeoDataFrame,
    *,
    spacing_m: float = 200.0,
    populated_within_m: float = 300.0,
    study_area=None,
    no_build: gpd.GeoSeries | None = None,
) -> gpd.GeoDataFrame:
    """
    Street-network nodes as candidate sites, thinned to about one per ``spacing_m`` square.

    Only nodes within ``populated_within_m`` metres of a populated cell (and
    inside the study area, when given) are kept; within each grid square the
    node nearest the square's centre is chosen, so the result is deterministic.

    Parameters
    ----------
    net
        The network arrays (working CRS, metres).
    demand
        Demand points in the same CRS.
    spacing_m
        Grid spacing (metres).
    populated_within_m
        Keep nodes this close to demand (metres).
    study_area
        Optional polygon (working CRS) candidates must lie in.
    no_build
        Optional polygons (any CRS) no candidate may lie in: water,
        exclusion areas. Nodes there are dropped before thinning, so a grid
        square with a bridge node still gets a node on land.
    """
    walk_nodes = np.unique(np.concatenate([net.edge_u[~net.edge_ferry], net.edge_v[~net.edge_ferry]]))
    xy = np.column_stack([net.node_x[walk_nodes], net.node_y[walk_nodes]])
    populated = demand[demand["elderly"] > 0]
    if len(populated):
        tree = cKDTree(shapely.get_coordinates(populated.geometry.values))
        near, _ = tree.query(xy, k=1, distance_upper_bound=populated_within_m)
        keep = np.isfinite(near)
        walk_nodes, xy = walk_nodes[keep], xy[keep]
    if study_area is not None and len(xy):
        inside = shapely.contains_xy(study_area, xy[:, 0], xy[:, 1])
        walk_nodes, xy = walk_nodes[inside], xy[inside]
    if no_build is not None and len(no_build) and len(xy):
        hit, _ = no_build.to_crs(net.crs).sindex.query(shapely.points(xy), predicate="intersects")
        on_land = np.ones(len(xy), dtype=bool)
        on_land[hit] = False
        walk_nodes, xy = walk_nodes[on_land], xy[on_land]
    cell = np.floor(xy / spacing_m).astype(np.int64)
    centre = (cell + 0.5) * spacing_m
    offset = np.hypot(*(xy - centre).T)
    frame = pd.DataFrame({"cx": cell[:, 0], "cy": cell[:, 1], "offset": offset, "node": walk_nodes,
                          "x": xy[:, 0], "y": xy[:, 1]})
    chosen = frame.sort_values(["cx", "cy", "offset", "node"]).drop_duplicates(["cx", "cy"])
    return gpd.GeoDataFrame(
        {"candidate_id": [f"node:{net.node_ids[n]}" for n in chosen["node"]], "source": "network node"},
        geometry=gpd.points_from_xy(chosen["x"], chosen["y"]),
        crs=net.crs,
    ).reset_index(drop=True)


def unit_centre_candidates(units: gpd.GeoDataFrame | None, working_crs) -> gpd.GeoDataFrame:
    """Village and community centres (a point inside each polygon, or the unit's point) as candidates."""
    if units is None:
        return gpd.GeoDataFrame({"candidate_id": [], "source": []}, geometry=[], crs=working_crs)
    villages = units[(units["level"] == "village") & units.geometry.notna()].to_crs(working_crs)
    points = villages.geometry.representative_point()
    return gpd.GeoDataFrame(
        {"candidate_id": [f"village:{c}" for c in villages["code"]], "source": "village/community centre",
         "name": villages["name"].to_numpy()},
        geometry=points.to_numpy(), crs=working_crs,
    ).reset_index(drop=True)


def table_candidates(path: str | Path, crs: str, working_crs) -> gpd.GeoDataFrame:
    """
    Candidate buildings from a user table (vacant schools, village committee buildings, …).

    Read with the facility reader's header and coordinate handling; the type
    column is not required. Rows the reader rejects are in ``.attrs["rejects"]``.
    """
    table = ingest.read_point_table(path, crs=crs)
    candidates = gpd.GeoDataFrame(
        {"candidate_id": [f"table:{i}" for i in table["source_row"]], "source": "candidate table",
         "name": table["name"].to_numpy()},
        geometry=table.geometry.to_crs(working_crs).to_numpy(), crs=working_crs,
    )
    # rows the reader could not use (file, row, column, reason), for the excluded-candidates table
    candidates.attrs["rejects"] = table.attrs.get("rejects", [])
    return candidates


def screened_candidates(
    config: StudyConfig,
    inputs: StudyInputs,
    *,
    spacing_m: float = 200.0,
    candidates_file: str | Path | None = None,
    candidates_crs: str = "gcj02",
    only_candidates: bool = False,
) -> tuple[gpd.GeoDataFrame, reach.Snap, pd.DataFrame]:
    """
    All candidate sites of a study, screened: street nodes, village centres and an optional user table.

    Given candidates (village centres, table rows) outside the study area, in
    water (from the OSM file, unless ``parameters.exclude_osm_water`` is
    false), in an area of ``inputs.exclusions`` or beyond ``max_access_m``
    from any walkable street are excluded with their reason, as are the user
    table's rows the reader rejected: candidates in = kept + excluded. Street
    nodes are made here, not given: nodes outside the study area or in those
    areas never become candidates.

    Parameters
    ----------
    config
        The study.
    inputs
        Its inputs, from :func:`coverage.pipeline.prepare_inputs`.
    spacing_m
        Spacing of street-node candidates (metres).
    candidates_file, candidates_crs
        Optional user table of candidate buildings and its coordinate system.
    only_candidates
        Choose among the table's buildings only (no street nodes or village centres).

    Returns
    -------
    candidates : geopandas.GeoDataFrame
        Kept candidates (working CRS): ``candidate_id``, ``source``, ``name``.
    snap : coverage.reach.Snap
        Where each kept candidate attaches to the network.
    excluded : pandas.DataFrame
        Columns :data:`coverage.exclusions.EXCLUDED_COLUMNS`.
    """
    params = config.parameters
    working_crs = inputs.working_crs
    study_area = inputs.study_area.to_crs(working_crs).iloc[0] if inputs.study_area is not None else None
    # projected once to the working CRS: the node filter and the screening below both use them
    water = exclusions.read_osm_water(config.network).to_crs(working_crs) if params.exclude_osm_water else None
    areas = exclusions.read_exclusion_layers(config.exclusions).to_crs(working_crs) if config.exclusions else None
    no_build = [layer.geometry for layer in (water, areas) if layer is not None and len(layer)]
    # street nodes are generated here, not given: those outside or in no-build areas are simply not made
    if only_candidates and candidates_file is None:
        raise ConfigError("--only-candidates / only_candidates=: give the table of candidate buildings with "
                          "--candidates FILE / 仅用候选表时须提供候选点表")
    parts = [] if only_candidates else [
        network_candidates(inputs.net, inputs.demand, spacing_m=spacing_m, study_area=study_area,
                           no_build=gpd.GeoSeries(pd.concat(no_build, ignore_index=True), crs=working_crs)
                           if no_build else None),
        unit_centre_candidates(inputs.units, working_crs),
    ]
    table_rejects = pd.DataFrame(columns=exclusions.EXCLUDED_COLUMNS)
    if candidates_file is not None:
        table = table_candidates(candidates_file, candidates_crs, working_crs)
        table_rejects = exclusions.table_rejects_as_excluded(table.attrs.get("rejects", []))
        parts.append(table)
    candidates = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=working_crs)
    snap = reach.snap_points(inputs.net, candidates.geometry, max_access_m=params.max_access_m)
    keep, excluded = exclusions.screen_candidates(
        candidates, study_area=study_area, water=water, exclusion_areas=areas, on_network=snap.on_network,
        max_access_m=params.max_access_m)
    excluded = pd.concat([excluded, table_rejects], ignore_index=True) if len(table_rejects) else excluded
    return candidates[keep].reset_index(drop=True), snap.subset(keep), excluded


def propose_sites(
    config: StudyConfig | str | Path,
    *,
    kind: str,
    add: int | None = None,
    target_share: float | None = None,
    minutes: float = 15.0,
    candidate_spacing_m: float = 200.0,
    candidates_file: str | Path | None = None,
    candidates_crs: str = "gcj02",
    time_limit_s: float = 60.0,
    only_candidates: bool = False,
    echo: Callable[[str], None] | None = None,
    inputs: StudyInputs | None = None,
    mip_rel_gap: float | None = None,
) -> Proposal:
    """
    Propose new sites of one kind: a fixed number (``add``) or as few as reach ``target_share``.

    Existing facilities of the kind stay; only the elderly they leave
    uncovered count as gains. Coverage is walking time over the network
    (catchments from bounded Dijkstra searches), not straight-line distance.

    Parameters
    ----------
    config
        Study (or its YAML path).
    kind
        Facility kind, e.g. ``canteen``.
    add
        Number of new sites (maximal covering location).
    target_share
        Share of the elderly to cover within ``minutes`` (minimum number of sites).
    minutes
        Walking threshold (minutes).
    candidate_spacing_m
        Spacing of network-node candidates (metres).
    candidates_file
        Optional user table of candidate buildings.
    candidates_crs
        Coordinate system of that table.
    time_limit_s
        Solver time limit (seconds); past it the greedy answer with its gap is reported.
    only_candidates
        Choose among the buildings of ``candidates_file`` only.
    echo
        Called with progress lines.
    mip_rel_gap
        With ``add``: stop once the answer is proved within this share of the
        optimum (e.g. 0.005 = 0.5 %; status ``gap_limit``); 0 = prove it optimal
        or stop at ``time_limit_s``. None: prove it optimal where the exact
        MILP runs (a town, a small county), stop within 0.5 % on a model too
        large for it (:data:`coverage.siting_models.LARGE_MODEL_GAP`).
    inputs
        Inputs already loaded by :func:`coverage.pipeline.prepare_inputs` (e.g. those of a
        ``run``), so a study is prepared once for coverage and siting.

    Returns
    -------
    Proposal
        Nothing is written: :func:`coverage.proposal_outputs.write_proposal` writes it.
    """
    if (add is None) == (target_share is None):
        raise ConfigError("site: give exactly one of --add N / add= (number of new sites) or --target SHARE / "
                          "target_share= (e.g. 0.9) / 请指定新增数量或目标覆盖率之一")
    if add is not None and (isinstance(add, bool) or int(add) != add or add < 1):
        raise ConfigError(f"--add / add=: the number of new sites must be a whole number of at least 1, got {add!r} "
                          "/ 新增数量应为正整数")
    if target_share is not None:
        target_share = _check_share(target_share, "--target / target_share=")
    if not minutes or minutes <= 0:
        raise ConfigError(f"--minutes / minutes=: must be more than 0, got {minutes!r} / 步行分钟数应大于 0")
    _check_kind(kind)
    if only_candidates and candidates_file is None:  # said before the long stages
        raise ConfigError("--only-candidates / only_candidates=: give the table of candidate buildings with "
                          "--candidates FILE / 仅用候选表时须提供候选点表")
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    params = config.parameters
    timer = pipeline.StageTimer(echo=echo)
    notes: list[str] = []
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, timer, notes)
    speed = params.speed_for(kind)
    limit_s = minutes * 60.0
    demand = inputs.demand
    weights = demand["elderly"].to_numpy(float)

    with timer.stage("candidates"):
        candidates, candidate_snap, excluded = screened_candidates(
            config, inputs, spacing_m=candidate_spacing_m, candidates_file=candidates_file, candidates_crs=candidates_crs,
            only_candidates=only_candidates)
        if len(excluded):
            notes.append(f"{len(excluded)} candidate sites excluded (see the 候选点剔除 sheet) / 候选点剔除 {len(excluded)} 处")

    with timer.stage("coverage matrix"):
        existing_mask = pipeline.kind_masks(inputs.facilities, [kind])[kind]
        existing = reach.nearest_facility(
            inputs.net, inputs.facility_snap.subset(np.flatnonzero(existing_mask)), inputs.demand_snap,
            walk_speed_mps=speed, limit=limit_s, ferry=params.ferry,
        )
        already = existing["cost"].to_numpy() <= limit_s
        matrix = reach.catchment_matrix(inputs.net, candidate_snap, inputs.demand_snap, walk_speed_mps=speed,
                                        limit=limit_s, ferry=params.ferry)

    with timer.stage("optimise"):
        if add is not None:
            result = siting.solve_mclp(matrix, weights, add, already_covered=already, time_limit_s=time_limit_s,
                                       mip_rel_gap=mip_rel_gap)
        else:
            result = siting.min_sites_for_target(matrix, weights, target_share, already_covered=already,
                                                 time_limit_s=time_limit_s)
        curve_k = max(10, len(result.selected))
        marginal = siting.marginal_curve(matrix, weights, min(curve_k, len(candidates)), already_covered=already)

    village_codes = demand["village_code"].astype("string").fillna("").to_numpy() if "village_code" in demand else None
    explained = siting.explain_sites(result, matrix, weights, candidate_ids=candidates["candidate_id"].to_numpy(),
                                     demand_unit_codes=village_codes)
    sites = _site_layer(explained, candidates, inputs, existing_mask, kind)
    # the curve names its sites as the 选址建议 table does, and says which of them the proposal holds
    # (the curve adds one best site at a time; an exact proposal may choose a different set)
    rows = marginal["candidate"].to_numpy(dtype=np.int64)
    marginal.insert(int(marginal.columns.get_loc("candidate")) + 1, "candidate_id",
                    candidates["candidate_id"].to_numpy()[rows])
    marginal = marginal.assign(in_proposal=np.isin(rows, np.asarray(result.selected)), kind=kind, minutes=minutes)
    units_layer = _units_after(inputs, result, kind)
    return Proposal(config, kind, minutes, result, sites, marginal, candidates.to_crs("EPSG:4326"),
                    existing=inputs.facilities[existing_mask], units_layer=units_layer,
                    excluded_candidates=excluded, population_method=_population_method(inputs))


def _population_method(inputs: StudyInputs) -> str:
    """``raster`` or ``census totals over …`` (the words of :func:`coverage.pipeline.population_method`)."""
    methods = set(inputs.demand.get("method", pd.Series(["raster"])).astype(str))
    if methods <= {"raster"}:
        return "raster"
    return "census totals over " + " and ".join(sorted(methods))


def propose_village_sites(
    config: StudyConfig | str | Path,
    *,
    kind: str = "mutual_aid",
    target_share: float = 0.6,
    minutes: float | None = None,
    rural_only: bool | None = None,
    time_limit_s: float = 60.0,
    echo: Callable[[str], None] | None = None,
    inputs: StudyInputs | None = None,
) -> pd.DataFrame:
    """
    The fewest villages in which to build so that ``target_share`` of villages are covered.

    For unit-count targets such as Panjin's "≥ 60 % of administrative villages
    have a 互助幸福院". A village counts as covered when a facility of the kind
    is inside it or assigned to it by code; with ``minutes`` also when its
    centre reaches one within that walk. Candidates are the uncovered villages
    themselves (a new home in village j covers j, and with ``minutes`` every
    village whose centre is within the walk of j's centre).

    Parameters
    ----------
    config
        Study (or its YAML path).
    kind
        Facility kind, default ``mutual_aid``.
    target_share
        Share of villages to cover (0..1).
    minutes
        Also count a village covered when its centre reaches a facility within
        this walk (minutes); ``None`` for presence only, as the documents count.
    rural_only
        Count administrative villages only (not urban communities); by default only for
        ``mutual_aid`` (互助幸福院 are rural), while canteens, day care and the rest count
        villages and communities alike ("助餐服务覆盖村(社区)").
    time_limit_s
        Solver time limit (seconds).
    echo
        Called with progress lines.
    inputs
        Inputs already loaded by :func:`coverage.pipeline.prepare_inputs`, to
        avoid loading them again.

    Returns
    -------
    pandas.DataFrame
        One row per village: code, name, town, elderly, covered_now, build
        (proposed), covered_after; ``.attrs`` holds the result summary. Nothing is
        written: :func:`coverage.proposal_outputs.write_village_siting` writes it.
    """
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    params = config.parameters
    _check_kind(kind)
    target_share = _check_share(target_share, "--target / target_share=")
    # checked before the long stages when the inputs are not loaded yet
    _needs_units(config.units if inputs is None else inputs.units, config, "village siting (site --villages)")
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, pipeline.StageTimer(echo=echo), [])
    villages = inputs.units[(inputs.units["level"] == "village") & inputs.units.geometry.notna()]
    if rural_only is None:
        rural_only = kind == "mutual_aid"
    if rural_only:
        villages = villages[villages["urban"].astype("boolean").fillna(False) == False]
    villages = villages.sort_values("code").reset_index(drop=True)
    counts = metrics.unit_facility_counts(villages, inputs.facilities, [kind], code_column="village_code")
    has_one = counts[f"n_{kind}"].to_numpy() > 0
    centres = villages.to_crs(inputs.working_crs).geometry.representative_point()
    centre_snap = reach.snap_points(inputs.net, centres, max_access_m=params.max_access_m)
    n = len(villages)
    if minutes is None:
        unit_candidates = np.eye(n, dtype=bool)
        covered_now = has_one
    else:
        speed, limit = params.speed_for(kind), minutes * 60.0
        between = reach.catchment_matrix(inputs.net, centre_snap, centre_snap, walk_speed_mps=speed, limit=limit,
                                         ferry=params.ferry).toarray() > 0
        unit_candidates = between.T | np.eye(n, dtype=bool)
        mask = pipeline.kind_masks(inputs.facilities, [kind])[kind]
        existing = reach.nearest_facility(inputs.net, inputs.facility_snap.subset(np.flatnonzero(mask)), centre_snap,
                                          walk_speed_mps=speed, limit=limit, ferry=params.ferry)
        covered_now = has_one | (existing["cost"].to_numpy() <= limit)
    result = siting.unit_set_cover(sparse.csr_matrix(unit_candidates), target_share,
                                   units_already_covered=covered_now, time_limit_s=time_limit_s)
    elderly = _elderly_by_village(inputs.demand)
    names = inputs.units.set_index("code")["name"].to_dict()
    table = pd.DataFrame({
        "code": villages["code"].to_numpy(), "name": villages["name"].to_numpy(),
        "town_name": villages["parent_code"].map(names).to_numpy(),
        "covered_now": covered_now, "build": np.isin(np.arange(n), result.selected),
        "covered_after": np.asarray(result.covered, bool),
    })
    table = table.merge(elderly[["code", "elderly"]], on="code", how="left")
    table.attrs.update({"kind": kind, "target_share": target_share, "rural_only": rural_only,
                        "share_before": result.share_before, "share_after": result.share_after,
                        "new_sites": len(result.selected),
                        "method": result.method, "status": result.status, "villages": n})
    return table


def three_tier_plan(
    config: StudyConfig | str | Path,
    *,
    village_target_share: float = 1.0,
    village_minutes: float | None = None,
    echo: Callable[[str], None] | None = None,
    inputs: StudyInputs | None = None,
) -> pd.DataFrame:
    """
    The Ordos three-tier network: a care institution per county, a 敬老院 per township, 互助幸福院 in villages.

    Tier 1: each county needs a ``nursing_home`` (a county-level institution
    cannot be told from a township one in the tables, so any counts). Tier 2:
    each township (乡/镇/苏木, not 街道) needs a ``nursing_home``; one lacking
    it gets a proposal at its seat (the community with ur_code 121, else its
    most populous village). Tier 3: villages for new ``mutual_aid`` homes from
    :func:`propose_village_sites` until ``village_target_share`` of
    administrative villages are covered.

    Parameters
    ----------
    config
        Study (or its YAML path).
    village_target_share
        Share of administrative villages to cover at tier 3 (Ordos: 100 %).
    village_minutes
        As in :func:`propose_village_sites`.
    echo
        Called with progress lines.
    inputs
        Inputs already loaded by :func:`coverage.pipeline.prepare_inputs`.

    Returns
    -------
    pandas.DataFrame
        One row per unit of each tier: tier, level, code, name, parent_name,
        has_now, build (proposed here), site (where, for tier 2).
    """
    village_target_share = _check_share(village_target_share, "--target / village_target_share=")
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    _needs_units(config.units, config, "the three-tier plan (site --three-tier)")  # before the long stages
    # loaded once: the village tier below reuses the same inputs
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, pipeline.StageTimer(echo=echo), [])
    units, facilities = inputs.units, inputs.facilities
    names = units.set_index("code")["name"].to_dict()
    rows = []

    counties = units[units["level"] == "county"]
    county_counts = metrics.unit_facility_counts(counties, facilities, ["nursing_home"], code_column="county_code")
    for record in counties.merge(county_counts, on="code").to_dict("records"):
        has = record["n_nursing_home"] > 0
        rows.append({"tier": 1, "level": "county", "code": record["code"], "name": record["name"],
                     "parent_name": None, "has_now": has, "build": not has,
                     "site": None if has else "县城 / county seat"})

    towns = units[units["level"] == "town"]
    villages = units[units["level"] == "village"]
    townships = towns[~targets.town_is_street(towns, villages).fillna(False).to_numpy(bool)]
    town_counts = metrics.unit_facility_counts(townships, facilities, ["nursing_home"], code_column="town_code")
    for record in townships.merge(town_counts, on="code").to_dict("records"):
        has = record["n_nursing_home"] > 0
        site = None
        if not has:
            in_town = villages[villages["parent_code"] == record["code"]]
            seat = in_town[in_town["ur_code"] == 121]
            site = seat["name"].iloc[0] if len(seat) else (in_town["name"].iloc[0] if len(in_town) else None)
        rows.append({"tier": 2, "level": "town", "code": record["code"], "name": record["name"],
                     "parent_name": names.get(record["parent_code"]), "has_now": has, "build": not has,
                     "site": site})

    village_plan = propose_village_sites(config, kind="mutual_aid", target_share=village_target_share,
                                         minutes=village_minutes, inputs=inputs)
    for record in village_plan.to_dict("records"):
        rows.append({"tier": 3, "level": "village", "code": record["code"], "name": record["name"],
                     "parent_name": record["town_name"], "has_now": bool(record["covered_now"]),
                     "build": bool(record["build"]), "site": record["name"] if record["build"] else None})
    return pd.DataFrame(rows)


def _elderly_by_village(demand: gpd.GeoDataFrame) -> pd.DataFrame:
    """Elderly persons per village/community code of the demand points (``code``, ``elderly``)."""
    if "village_code" not in demand:
        return pd.DataFrame(columns=["code", "elderly"])
    frame = pd.DataFrame({"code": demand["village_code"].astype("string").to_numpy(),
                          "elderly": demand["elderly"].to_numpy(float)})
    grouped = frame.dropna(subset=["code"]).groupby("code", sort=True)["elderly"].sum()
    return pd.DataFrame({"code": grouped.index.astype(str), "elderly": grouped.to_numpy()})


def _units_after(inputs, result: siting.SitingResult, kind: str) -> gpd.GeoDataFrame | None:
    """Village/community polygons with the share of their elderly covered after the proposal (WGS-84)."""
    units = inputs.units
    if units is None or "village_code" not in inputs.demand:
        return None
    villages = units[(units["level"] == "village") & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    if villages.empty:
        return None
    demand = inputs.demand
    elderly = demand["elderly"].to_numpy(float)
    covered = pd.DataFrame({"code": demand["village_code"].astype("string").to_numpy(), "elderly": elderly,
                            "covered": np.where(np.asarray(result.covered, bool), elderly, 0.0)})
    by_village = covered.dropna(subset=["code"]).groupby("code", sort=True)[["elderly", "covered"]].sum()
    by_village["share"] = by_village["covered"] / by_village["elderly"].where(by_village["elderly"] > 0)
    by_village.index = by_village.index.astype(str)
    layer = villages[["code", "name", "level", "geometry"]].merge(
        by_village[["elderly", "share"]].rename_axis("code").reset_index(), on="code", how="left")
    layer[f"share_{kind}"] = layer["share"]
    return gpd.GeoDataFrame(layer, geometry="geometry", crs=units.crs)


def _site_layer(explained: pd.DataFrame, candidates, inputs, existing_mask, kind) -> gpd.GeoDataFrame:
    """Proposed sites with their explanations, nearest existing facility and WGS-84 position."""
    chosen = candidates.set_index("candidate_id").loc[explained["candidate_id"].to_numpy()]
    existing = inputs.facilities[existing_mask].to_crs(inputs.working_crs)
    sites = gpd.GeoDataFrame(explained.reset_index(drop=True), geometry=chosen.geometry.to_numpy(),
                             crs=inputs.working_crs)
    sites["source"] = chosen["source"].to_numpy()
    sites["kind"] = kind
    if len(existing):
        tree = shapely.STRtree(existing.geometry.values)
        nearest_idx = tree.nearest(sites.geometry.values)
        sites["nearest_existing"] = existing["name"].to_numpy()[nearest_idx]
        sites["nearest_existing_m"] = np.round(
            shapely.distance(sites.geometry.values, existing.geometry.values[nearest_idx]), 0)
    else:
        sites["nearest_existing"] = "无 / none"
        sites["nearest_existing_m"] = np.nan
    # the street a planner finds it on (OSM name of the nearest named street within 300 m)
    sites["street"] = reach.nearest_named_street(inputs.net, sites.geometry)
    sites = sites.to_crs("EPSG:4326")
    sites = _add_location_names(sites, inputs.units)
    sites["lon"] = sites.geometry.x.round(6)
    sites["lat"] = sites.geometry.y.round(6)
    return sites


def _add_location_names(sites: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Name the village/community and town each site lies in, so a planner can find it."""
    sites = sites.copy()
    sites["village_name"] = None
    sites["town_name"] = None
    if units is None or sites.empty:
        return sites
    polygons = units[units.geom_type.isin(["Polygon", "MultiPolygon"])]
    names = units.set_index("code")["name"].to_dict()
    villages = polygons[polygons["level"] == "village"]
    if len(villages):
        joined = gpd.sjoin(sites[["geometry"]], villages[["code", "name", "parent_code", "geometry"]],
                           how="left", predicate="within")
        joined = joined[~joined.index.duplicated()]
        sites["village_name"] = joined["name"].to_numpy()
        sites["town_name"] = joined["parent_code"].map(names).to_numpy()
    return sites
