"""Travel profiles as data: which ways a mode may use, at what speed, and the per-edge seconds they give."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage import reach
from coverage.ferry import FerryPolicy
from coverage.kinds import ANY_KIND
from coverage.network import load_walk_arrays
from coverage.reach import HIGHWAY_CLASSES, NetworkArrays, Snap

#: the way selections of :func:`coverage.network.load_walk_arrays` a profile can ask for
NETWORKS = ("walk", "drive", "all")


@dataclass(frozen=True)
class TravelProfile:
    """
    One way of travelling: the ways it may use, its speeds and whether one-way streets bind.

    Like osmnx's ``add_edge_speeds`` / ``add_edge_travel_times``, a profile
    only turns edges into seconds (:func:`edge_costs`); the searches in
    :mod:`coverage.reach` take those seconds as data.

    Attributes
    ----------
    id : str
        Identifier used in study files and tables (``walk_elderly``, ``drive``).
    label_zh, label_en : str
        Names for tables and maps (Chinese, English).
    network : str
        The way selection its network is loaded with
        (:func:`coverage.network.load_walk_arrays` ``ways=``): ``"walk"``,
        ``"drive"`` or ``"all"``.
    speed_mps : float or None
        One speed on every allowed edge (metres per second); or None when
        ``highway_speeds_mps`` gives a speed per class.
    highway_speeds_mps : Mapping[str, float]
        Speed per OSM highway class (metres per second); a class not listed
        may not be used. Empty when ``speed_mps`` is set.
    highways : frozenset[str] or None
        With ``speed_mps``: the highway classes it may use; None = every
        class its network holds. (With per-class speeds the classes are the
        keys of ``highway_speeds_mps``.)
    oneway : bool
        Whether one-way streets bind (vehicles) or not (pedestrians).
    ferry : FerryPolicy or None
        How ferry lines count when the caller gives no policy of its own;
        None: never by ferry.
    access_speed_mps : float
        Speed of the straight leg between a point (home, facility) and the
        road it attaches to (metres per second): one walks to the car or
        the e-bike.
    """

    id: str
    label_zh: str
    label_en: str
    network: str = "walk"
    speed_mps: float | None = None
    highway_speeds_mps: Mapping[str, float] = field(default_factory=dict, hash=False)
    highways: frozenset[str] | None = None
    oneway: bool = False
    ferry: FerryPolicy | None = field(default_factory=FerryPolicy)
    access_speed_mps: float = 0.8

    def __post_init__(self) -> None:
        if self.network not in NETWORKS:
            raise ValueError(f"profile {self.id}: network must be one of {', '.join(NETWORKS)}, "
                             f"got {self.network!r}")
        if (self.speed_mps is None) == (not self.highway_speeds_mps):
            raise ValueError(f"profile {self.id}: give either speed_mps or highway_speeds_mps, not both or neither")
        speeds = dict(self.highway_speeds_mps)
        if self.speed_mps is not None:
            speeds["(speed_mps)"] = self.speed_mps
        for name, speed in speeds.items():
            if not float(speed) > 0.0:
                raise ValueError(f"profile {self.id}: speed of {name} must be positive (m/s), got {speed!r}")
        named = set(self.highway_speeds_mps) | set(self.highways or ())
        unknown = sorted(named - set(HIGHWAY_CLASSES[1:]))
        if unknown:
            raise ValueError(f"profile {self.id}: unknown highway class(es) {', '.join(unknown)}; "
                             f"known: {', '.join(HIGHWAY_CLASSES[1:])}")
        if not self.access_speed_mps > 0.0:
            raise ValueError(f"profile {self.id}: access_speed_mps must be positive (m/s)")


def _kph(speeds_kph: Mapping[str, float]) -> dict[str, float]:
    """Speeds given in km/h (as osmnx's ``hwy_speeds``) in metres per second."""
    # convert km/h to m/s
    return {name: kph / 3.6 for name, kph in speeds_kph.items()}


#: e-bike / electric tricycle (电动自行车 / 电动三轮) speeds, km/h: GB 17761-2018 caps e-bikes at 25 km/h;
#: an older rider in mixed traffic keeps about 15 km/h on the carriageway's non-motor lane and on
#: residential streets, 10 km/h in lanes and service roads. No motorway or trunk road (banned).
EBIKE_SPEEDS_KPH: dict[str, float] = {
    "primary": 15.0, "primary_link": 15.0, "secondary": 15.0, "secondary_link": 15.0,
    "tertiary": 15.0, "tertiary_link": 15.0, "unclassified": 15.0, "residential": 15.0, "road": 15.0,
    "cycleway": 15.0, "living_street": 10.0, "service": 10.0, "track": 10.0,
}

#: car speeds per highway class, km/h: typical free-flow speeds of Chinese urban roads
#: (urban expressways 80, arterials 40–60, collectors 30–40, access roads 20–30, CJJ 37-2012
#: design speeds), used as osmnx's ``add_edge_speeds(hwy_speeds=...)`` would use them;
#: OSM ``maxspeed`` is not read.
DRIVE_SPEEDS_KPH: dict[str, float] = {
    "motorway": 80.0, "motorway_link": 40.0, "trunk": 60.0, "trunk_link": 40.0,
    "primary": 40.0, "primary_link": 30.0, "secondary": 35.0, "secondary_link": 30.0,
    "tertiary": 30.0, "tertiary_link": 25.0, "unclassified": 25.0, "residential": 20.0,
    "living_street": 10.0, "road": 20.0,
}

WALK_ELDERLY = TravelProfile("walk_elderly", "老年人步行", "walking (older adult)", network="walk", speed_mps=0.8,
                             access_speed_mps=0.8)
WALK_FRAIL = TravelProfile("walk_frail", "体弱老人步行", "walking (frail)", network="walk", speed_mps=0.6,
                           access_speed_mps=0.6)
WALK_STANDARD = TravelProfile("walk_standard", "标准步行", "walking (standard)", network="walk", speed_mps=1.1,
                              access_speed_mps=1.1)
EBIKE = TravelProfile("ebike", "电动车/电动三轮", "e-bike / e-tricycle", network="all",
                      highway_speeds_mps=_kph(EBIKE_SPEEDS_KPH), oneway=True, access_speed_mps=0.8)
DRIVE = TravelProfile("drive", "驾车", "driving", network="drive", highway_speeds_mps=_kph(DRIVE_SPEEDS_KPH),
                      oneway=True, access_speed_mps=0.8)

#: the shipped profiles by id; ``walk_elderly`` is the default (today's walking at 0.8 m/s)
PROFILES: dict[str, TravelProfile] = {p.id: p for p in (WALK_ELDERLY, WALK_FRAIL, WALK_STANDARD, EBIKE, DRIVE)}
DEFAULT_PROFILE = WALK_ELDERLY


def get_profile(profile: str | TravelProfile) -> TravelProfile:
    """
    The shipped profile of this id (a :class:`TravelProfile` is returned as it is).

    Raises
    ------
    KeyError
        No shipped profile has this id; the message lists them.
    """
    if isinstance(profile, TravelProfile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise KeyError(f"unknown travel profile {profile!r}; shipped: {', '.join(PROFILES)}") from None


def is_walking(profile: str | TravelProfile) -> bool:
    """
    Whether a profile is walking: one speed on every way of the walking network, one-way streets not binding.

    Such a profile gives the very seconds of :func:`coverage.reach.edge_costs`
    at its speed, so a study walks it on its walking network.
    """
    profile = get_profile(profile)
    return (profile.network == "walk" and profile.speed_mps is not None and profile.highways is None
            and not profile.oneway)


def edge_speeds(net: NetworkArrays, profile: str | TravelProfile) -> np.ndarray:
    """
    Speed of the profile on each edge (metres per second), 0 where it may not go.

    Ferry lines get 0 here: they are priced by the ferry policy in :func:`edge_costs`.

    Parameters
    ----------
    net
        The network arrays (``edge_highway`` None counts as class 0, "other").
    profile
        A profile or the id of a shipped one.

    Returns
    -------
    numpy.ndarray
        (n_edges,) float, metres per second.
    """
    profile = get_profile(profile)
    codes = np.zeros(net.n_edges, np.int64) if net.edge_highway is None else np.asarray(net.edge_highway, np.int64)
    table = np.zeros(len(HIGHWAY_CLASSES))
    if profile.highway_speeds_mps:
        for name, speed in profile.highway_speeds_mps.items():
            table[HIGHWAY_CLASSES.index(name)] = float(speed)
    elif profile.highways is None:
        table[:] = float(profile.speed_mps)
    else:
        for name in profile.highways:
            table[HIGHWAY_CLASSES.index(name)] = float(profile.speed_mps)
    speeds = table[codes]
    speeds[np.asarray(net.edge_ferry, bool)] = 0.0
    return speeds


def edge_costs(
    net: NetworkArrays,
    profile: str | TravelProfile = DEFAULT_PROFILE,
    *,
    ferry: FerryPolicy | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """
    Seconds to travel each edge with a profile, in both directions.

    The profile's counterpart of osmnx's ``add_edge_travel_times``: length
    divided by the profile's speed on the edge's highway class; inf where
    the class is not allowed and, when one-way streets bind, against the
    one-way direction. A ferry line costs boarding wait + crossing at the
    ferry's speed, both ways, when the ferry policy is enabled; inf
    otherwise. For a single-speed profile on every class (walking) the
    seconds are computed exactly as :func:`coverage.reach.edge_costs` does.

    Parameters
    ----------
    net
        The network arrays; ``edge_oneway`` None counts every edge as two-way.
    profile
        A profile or the id of a shipped one (default ``walk_elderly``).
    ferry
        The ferry policy of the study; default the profile's own.

    Returns
    -------
    tuple of numpy.ndarray
        ``(forward_seconds, backward_seconds)``: seconds u → v and v → u
        per edge, inf where not allowed.
    """
    profile = get_profile(profile)
    ferry = profile.ferry if ferry is None else ferry
    length = np.asarray(net.edge_length_m, dtype=float)
    if profile.speed_mps is not None and profile.highways is None:
        # the walking case: the very operations of reach.edge_costs, so the same seconds
        forward = length / float(profile.speed_mps)
        forward = np.where(net.edge_ferry, np.inf, forward) if net.edge_ferry.any() else forward
    else:
        speeds = edge_speeds(net, profile)
        with np.errstate(divide="ignore"):
            forward = np.where(speeds > 0.0, length / np.where(speeds > 0.0, speeds, 1.0), np.inf)
    if net.edge_ferry.any() and ferry is not None and ferry.enabled:
        forward = np.where(net.edge_ferry, ferry.wait_seconds + length / ferry.speed_mps, forward)
    forward = np.array(forward, dtype=float)
    backward = forward.copy()
    if profile.oneway and net.edge_oneway is not None:
        oneway = np.asarray(net.edge_oneway)
        closed = ~np.asarray(net.edge_ferry, bool)
        forward[closed & (oneway < 0)] = np.inf
        backward[closed & (oneway > 0)] = np.inf
    return forward, backward


def usable_network(net: NetworkArrays, profile: str | TravelProfile, *,
                   ferry: FerryPolicy | None = None) -> NetworkArrays:
    """
    The arrays without the edges the profile may use in neither direction (same nodes, same node order).

    Snap points to this network so that a home attaches to a road the
    profile can use (a driver's home is not attached to a footway).

    Parameters
    ----------
    net
        The network arrays.
    profile
        A profile or the id of a shipped one.
    ferry
        The ferry policy of the study; default the profile's own.

    Returns
    -------
    coverage.reach.NetworkArrays
        A subset of the rows of ``net``, in their order.
    """
    forward, backward = edge_costs(net, profile, ferry=ferry)
    keep = np.isfinite(forward) | np.isfinite(backward)
    if keep.all():
        return net
    rows = np.flatnonzero(keep)
    optional = {name: None if getattr(net, name) is None else getattr(net, name)[rows]
                for name in ("edge_highway", "edge_oneway", "edge_name")}
    return NetworkArrays(
        node_ids=net.node_ids, node_x=net.node_x, node_y=net.node_y,
        edge_u=net.edge_u[rows], edge_v=net.edge_v[rows], edge_length_m=net.edge_length_m[rows],
        edge_ferry=net.edge_ferry[rows], edge_geometry=net.edge_geometry[rows], crs=net.crs, **optional,
    )


def load_profile_network(path: str | Path, profile: str | TravelProfile, **kwargs) -> NetworkArrays:
    """
    The network arrays a profile travels on: :func:`coverage.network.load_walk_arrays` with its way selection.

    Parameters
    ----------
    path
        The OSM or GraphML file.
    profile
        A profile or the id of a shipped one.
    **kwargs
        Passed on (``to_crs``, ``cache_dir``, ``use_cache``).
    """
    return load_walk_arrays(path, ways=get_profile(profile).network, **kwargs)


def nearest_facility(
    net: NetworkArrays,
    facilities: Snap,
    demand: Snap,
    profile: str | TravelProfile = DEFAULT_PROFILE,
    *,
    limit: float = 900.0,
    ferry: FerryPolicy | None = None,
) -> pd.DataFrame:
    """
    Seconds from every demand point to its nearest facility with a profile: profile → costs → search.

    :func:`coverage.reach.nearest_facility` on the profile's
    :func:`edge_costs`, access legs at the profile's ``access_speed_mps``.

    Parameters
    ----------
    net, facilities, demand
        The network arrays and the snaps (best made on :func:`usable_network`).
    profile
        A profile or the id of a shipped one.
    limit
        Longest time searched (seconds).
    ferry
        The ferry policy of the study; default the profile's own.

    Returns
    -------
    pandas.DataFrame
        As :func:`coverage.reach.nearest_facility` (``cost`` in seconds).
    """
    profile = get_profile(profile)
    return reach.nearest_facility(
        net, facilities, demand, walk_speed_mps=profile.access_speed_mps, limit=limit,
        edge_seconds=edge_costs(net, profile, ferry=ferry),
    )


def describe(profile: str | TravelProfile) -> dict[str, object]:
    """
    One row for a table saying which mode a figure used: id, labels, speeds (m/s and km/h), one-way rule.

    Returns
    -------
    dict
        ``profile``, ``label_zh``, ``label_en``, ``network``, ``speed_mps``
        (one speed, or the per-class speeds as text), ``oneway``.
    """
    profile = get_profile(profile)
    if profile.speed_mps is not None:
        speed = f"{profile.speed_mps:g}"
    else:
        speed = ", ".join(f"{name} {mps:.2f} ({mps * 3.6:g} km/h)" for name, mps in profile.highway_speeds_mps.items())
    return {"profile": profile.id, "label_zh": profile.label_zh, "label_en": profile.label_en,
            "network": profile.network, "speed_mps": speed, "oneway": profile.oneway}


__all__ = [
    "DEFAULT_PROFILE", "DRIVE", "DRIVE_SPEEDS_KPH", "EBIKE", "EBIKE_SPEEDS_KPH", "NETWORKS", "PROFILES",
    "TravelProfile", "WALK_ELDERLY", "WALK_FRAIL", "WALK_STANDARD", "describe", "edge_costs", "edge_speeds",
    "get_profile", "is_walking", "load_profile_network", "nearest_facility", "usable_network",
]


def walking_mode_id(speed_mps: float) -> str:
    """
    The id naming walking at ``speed_mps`` in tables: a shipped walking profile of that speed, else ``walk_<speed>mps``.

    ``walk_elderly`` (0.8 m/s) is preferred where several match.
    """
    candidates = [DEFAULT_PROFILE, *PROFILES.values()]
    for profile in candidates:
        if is_walking(profile) and float(profile.speed_mps) == float(speed_mps):
            return profile.id
    return f"walk_{speed_mps:g}mps"


def kind_modes(params, kinds) -> dict[str, str]:
    """
    The travel mode (profile id) of each kind's figures, for the ``mode`` column.

    A kind with a profile in ``kind_profiles`` shows its id; a walking kind
    without one the walking profile of its speed (:func:`walking_mode_id`);
    ``any`` the walking mode of ``walk_speed_mps`` (it is the walking pass to every facility).
    """
    modes = {}
    for kind in kinds:
        if kind == ANY_KIND:
            continue
        modes[kind] = params.kind_profiles.get(kind) or walking_mode_id(params.speed_for(kind))
    if ANY_KIND in kinds:
        modes[ANY_KIND] = walking_mode_id(params.walk_speed_mps)
    return modes
