"""Reach per facility kind: walking at the kind's speed, or the kind's travel profile on its own network."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from coverage import ingest, profiles, reach
from coverage.config import StudyConfig
from coverage.results import ANY_KIND


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
    distance_limit_m: float | None = None,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """
    Walking seconds (or metres) to the nearest facility of each kind, one multi-source pass per kind.

    Every kind in ``masks`` walks here (at :meth:`~coverage.config.Parameters.speed_for`);
    kinds with a non-walking profile go through :func:`compute_profile_reach`.
    In ``distance_mode`` the searches stop at ``distance_limit_m`` metres
    (default the longest of ``parameters.distance_thresholds_m``).

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
            speed = None
            limit = max(params.distance_thresholds_m) if distance_limit_m is None else float(distance_limit_m)
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
