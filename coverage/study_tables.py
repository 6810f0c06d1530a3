"""The tables a run computes from reach: coverage shares, villages, facilities, walking components, sensitivity."""

from __future__ import annotations

import numpy as np
import pandas as pd

from coverage import metrics, reach
from coverage.kind_reach import compute_reach
from coverage.profiles import kind_modes
from coverage.results import ANY_KIND


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


def facility_catchment(net, facility_snap, demand_snap, config) -> tuple[float, float, object]:
    """
    ``(walk_speed_mps, limit_seconds, matrix)``: every facility's catchment at the study's walking speed and longest threshold.

    The facility table counts the older people within it; the
    accessibility measures take their kinds' rows from it when they walk
    alike (``access_tables.study_accessibility(facility_catchment=…)``).
    """
    params = config.parameters
    longest_s = max(params.thresholds_min) * 60.0
    matrix = reach.catchment_matrix(net, facility_snap, demand_snap, walk_speed_mps=params.walk_speed_mps,
                                    limit=longest_s, ferry=params.ferry)
    return params.walk_speed_mps, longest_s, matrix


def _facility_table(facilities, facility_snap, demand, nearest_by_kind, config, catchment) -> pd.DataFrame:
    """
    Per facility: attributes, whether it is on the network, elderly within the longest threshold, elderly it is nearest for.

    ``catchment`` is the matrix of :func:`facility_catchment`.
    """
    params = config.parameters
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
    study itself walks at, when every kind walks at that speed. On a
    network without ferry lines every leg of a walk is at the one speed, so
    the seconds at each other speed are the metres of one distance search
    (to the farthest any speed walks within the longest threshold) over the
    speed: one search per kind instead of one per kind and speed.
    """
    params = config.parameters
    rows = []
    elderly = demand["elderly"].to_numpy(float)
    total = elderly.sum()
    # walking only: kinds with another travel profile are left out (and 'any' is then walking to every facility)
    masks = {kind: mask for kind, mask in masks.items()
             if kind == ANY_KIND or params.travel_profile(kind) is None}

    def same_as_study(speed: float) -> bool:
        return study_seconds is not None and speed == params.walk_speed_mps and all(
            params.speed_for(kind) == speed for kind in params.kinds) and not any(
            params.travel_profile(kind) is not None for kind in params.kinds)

    others = [speed for speed in params.sensitivity_speeds_mps if not same_as_study(speed)]
    longest_s = max(params.thresholds_min) * 60.0
    metres_by_kind = None
    if others and not np.asarray(net.edge_ferry, bool).any():
        # no ferry wait anywhere: time is distance over speed, for every leg
        metres_by_kind, _ = compute_reach(net, facility_snap, demand_snap, masks, config, distance_mode=True,
                                          distance_limit_m=max(others) * longest_s)
    for speed in params.sensitivity_speeds_mps:
        if same_as_study(speed):
            cost_by_kind = study_seconds
        elif metres_by_kind is not None:
            cost_by_kind = {kind: np.where(metres / speed <= longest_s, metres / speed, np.inf)
                            for kind, metres in metres_by_kind.items()}
        else:
            cost_by_kind, _ = compute_reach(net, facility_snap, demand_snap, masks, config, speed_override=speed)
        for kind, cost in cost_by_kind.items():
            for minutes in params.thresholds_min:
                within = float(elderly[cost <= minutes * 60.0].sum())
                rows.append({"walk_speed_mps": speed, "kind": kind, "threshold": minutes, "unit": "min",
                             "elderly": total, "elderly_within": within,
                             "share": within / total if total else np.nan})
    return pd.DataFrame(rows)
