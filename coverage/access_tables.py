"""The run's accessibility and equity tables: 2SFCA per town, capacity-aware coverage, facility crowding, Gini and Theil."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from coverage import access, equity, reach
from coverage import kinds as kinds_registry
from coverage.capacity import capacity_aware_coverage

__all__ = [
    "ACCESS_COLUMNS",
    "CROWDING_COLUMNS",
    "EQUITY_COLUMNS",
    "M2_PER_PLACE",
    "KindAccess",
    "StudyAccess",
    "existing_places",
    "kind_access",
    "places_of",
    "study_accessibility",
]

#: floor area (m²) counted as one place where a kind's capacity is a floor area (day care, mutual aid,
#: comprehensive centres): GB 50437-2007 (2018) tab. 3.2.4 asks ≥ 35 m² per bed, the only per-place
#: area in the standards the project has -- an assumption for day services, to be replaced by the
#: bureau's own figure (``parameters.accessibility.m2_per_place``)
M2_PER_PLACE = 35.0

#: population shares at which the Lorenz curve is tabulated in the 公平性 sheet
LORENZ_POINTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: how a facility's load reads in the tables (access.facility_crowding's codes → zh / en)
USE_LABELS = {"over": "偏高 / over", "under": "偏低 / under", "balanced": "适中 / balanced",
              "no_demand": "无需求 / no demand", "no_supply": "无能力 / no supply"}
#: capacity units and solvers as the tables show them
UNIT_LABELS = {"m²": "平方米 / m²", "beds": "床 / beds", "nursing beds": "护理型床位 / nursing beds",
               "meals/day": "餐/日 / meals a day", "caregivers": "护理员 / caregivers", "facilities": "处 / facilities"}
METHOD_LABELS = {"exact": "精确求解 / exact", "greedy": "贪心 / greedy"}

#: columns of the 可达性 table (one row per kind and unit)
ACCESS_COLUMNS = ["kind", "scope", "code", "name", "elderly", "access_mean", "access_zero_share", "access_lq",
                  "served", "unmet", "unreachable", "share_served"]
#: columns of the 公平性 table (one row per kind)
EQUITY_COLUMNS = (["kind", "minutes", "supply_unit", "gini", "theil", "theil_between_town",
                   "theil_within_town", "theil_between_urban", "theil_within_urban", "lowest_decile_value_share",
                   "zero_access_share", "share_served", "served", "unmet", "capacity_method", "capacity_gap"]
                  + [f"lorenz_{int(100 * p)}" for p in LORENZ_POINTS] + ["supply_note"])
#: columns of the 设施负荷 table (one row per facility and kind)
CROWDING_COLUMNS = ["kind", "facility_id", "name", "supply", "places", "demand_in_reach", "supply_per_person",
                    "relative_load", "assigned", "utilisation", "use"]


def places_of(values: np.ndarray, column: str, m2_per_place: float = M2_PER_PLACE) -> np.ndarray:
    """
    Persons a capacity stands for: floor area (m²) over ``m2_per_place``, every other unit as it is.

    Beds, meals a day and caregivers' places count one person each; a floor
    area needs a conversion, and :data:`M2_PER_PLACE` is an assumption.
    """
    values = np.asarray(values, dtype=float)
    return values / float(m2_per_place) if column == "floor_area_m2" else values


def existing_places(facilities: pd.DataFrame, kind: str, *, m2_per_place: float = M2_PER_PLACE):
    """
    Capacities of the existing facilities of a kind, in the kind's own unit and as persons.

    The kind's ``capacity`` column of ``coverage/kinds.yaml`` is read (its
    default per facility where the table has none, :data:`coverage.access.DEFAULT_SUPPLY`),
    so existing and new facilities count in the same unit.

    Returns
    -------
    supply : coverage.access.Supply
        Positions in ``facilities``, values, column, unit and a note.
    places : numpy.ndarray
        Persons each facility can serve.
    """
    own = kinds_registry.registry()[kind].capacity or None
    supply = access.supply_of(facilities, kind, column=own)
    return supply, places_of(supply.values, supply.column, m2_per_place)


@dataclass(frozen=True, eq=False)
class KindAccess:
    """
    Accessibility of one kind: 2SFCA score, capacity-aware service and crowding.

    Attributes
    ----------
    kind, minutes
        Facility kind and the catchment's walking minutes.
    supply
        The capacities read (:class:`coverage.access.Supply`).
    places
        Persons each facility of the kind can serve (n_facilities of the kind,).
    score
        2SFCA accessibility per demand point (supply units per older person).
    served, unmet, unreachable
        Persons per demand point served within the limit with capacities
        respected, not served, and not served for want of any facility in reach.
    share_served
        Capacity-aware coverage: served / all older people (0..1).
    assigned
        Persons assigned to each facility of the kind.
    crowding
        :func:`coverage.access.facility_crowding` per facility of the kind.
    capacity_method, capacity_gap
        How the assignment was solved (``exact`` or ``greedy``) and its gap.
    """

    kind: str
    minutes: float
    supply: access.Supply
    places: np.ndarray
    score: np.ndarray
    served: np.ndarray
    unmet: np.ndarray
    unreachable: np.ndarray
    share_served: float
    assigned: np.ndarray
    crowding: pd.DataFrame
    capacity_method: str = "exact"
    capacity_gap: float = 0.0


@dataclass(frozen=True, eq=False)
class StudyAccess:
    """
    The run's accessibility results: per kind, and the 可达性 / 公平性 / 设施负荷 tables.

    Attributes
    ----------
    minutes
        Catchment walking minutes.
    kinds
        Kind → :class:`KindAccess`.
    by_unit
        Columns :data:`ACCESS_COLUMNS`: per kind the study, urban / rural and
        each town (population-weighted mean 2SFCA, its share of people with
        none, location quotient, served / unmet persons, capacity-aware share).
    equity
        Columns :data:`EQUITY_COLUMNS`, one row per kind.
    crowding
        Columns :data:`CROWDING_COLUMNS`.
    notes
        Where the capacities came from, kinds left out.
    gini_by_area
        Kind → ``all`` / ``urban`` / ``rural`` → Gini of the 2SFCA score
        (what ``access_gini`` targets read; NaN where nobody lives).
    """

    minutes: float
    kinds: dict[str, KindAccess]
    by_unit: pd.DataFrame
    equity: pd.DataFrame
    crowding: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    gini_by_area: dict[str, dict[str, float]] = field(default_factory=dict)

    def values_for_targets(self) -> dict:
        """What the ``capacity_share`` / ``access_gini`` targets read: minutes, served, score and Gini per kind."""
        return {"minutes": self.minutes,
                "served": {k: v.served for k, v in self.kinds.items()},
                "score": {k: v.score for k, v in self.kinds.items()},
                "gini": self.gini_by_area}


def kind_access(catchment, facilities: pd.DataFrame, demand: pd.DataFrame, kind: str, minutes: float, *,
                m2_per_place: float = M2_PER_PLACE, method: str = "exact") -> KindAccess:
    """
    Accessibility of one kind from its catchment matrix.

    Parameters
    ----------
    catchment
        CSR matrix (n_facilities, n_demand) of walking seconds within the
        limit, rows = **all** facilities of ``facilities`` (the kind's rows are
        taken here), from :func:`coverage.reach.catchment_matrix`.
    facilities
        Facility table (``kinds`` and capacity columns).
    demand
        Demand points (``elderly``).
    kind, minutes
        The kind and the limit (minutes).
    m2_per_place
        Floor area per person served (m²).
    method
        ``exact`` (transport LP) or ``greedy`` for the capacity-aware coverage.
    """
    supply, places = existing_places(facilities, kind, m2_per_place=m2_per_place)
    rows = supply.catchment(catchment)
    elderly = demand["elderly"].to_numpy(float)
    limit = minutes * 60.0
    score = access.two_step_fca(rows, supply.values, elderly, limit=limit) if len(supply.positions) \
        else np.zeros(len(demand))
    cap = capacity_aware_coverage(rows, elderly, places, limit, method=method)
    crowd = access.facility_crowding(rows, supply.values, elderly, limit=limit) if len(supply.positions) \
        else pd.DataFrame(columns=["supply", "demand_in_reach", "supply_per_person", "persons_per_supply",
                                   "relative_load", "use"])
    chosen = facilities.iloc[supply.positions]
    crowd.insert(0, "kind", kind)
    crowd.insert(1, "facility_id", chosen["facility_id"].to_numpy() if "facility_id" in chosen else supply.positions)
    crowd.insert(2, "name", chosen["name"].to_numpy() if "name" in chosen else "")
    crowd.insert(4, "places", places)
    crowd["assigned"] = cap.assigned
    crowd["utilisation"] = cap.utilisation(places)
    crowd["use"] = crowd["use"].map(lambda code: USE_LABELS.get(code, code))
    return KindAccess(kind=kind, minutes=float(minutes), supply=supply, places=places, score=score,
                      served=cap.served, unmet=cap.unmet, unreachable=cap.unreachable, share_served=cap.share_served,
                      assigned=cap.assigned, crowding=crowd[CROWDING_COLUMNS], capacity_method=cap.method,
                      capacity_gap=float(cap.gap))


def _urban_labels(demand: pd.DataFrame) -> np.ndarray:
    if "urban" not in demand:
        return np.full(len(demand), "unknown", dtype=object)
    flag = demand["urban"].astype("boolean")
    return np.where(flag.isna().to_numpy(), "unknown", np.where(flag.fillna(False).to_numpy(bool), "urban", "rural"))


def _scopes(demand: pd.DataFrame) -> list[tuple[str, pd.Categorical]]:
    """
    The scopes of the 可达性 rows (study, urban / rural, town) and each demand point's group in them.

    As categoricals (categories sorted), made once for all kinds: grouping
    124,000 points by integer codes instead of by their string labels,
    with the groups in the same (sorted) order and the same sums.
    """
    scopes = [("study", pd.Categorical(np.full(len(demand), "all", dtype=object))),
              ("urban_rural", pd.Categorical(_urban_labels(demand)))]
    if "town_code" in demand:
        towns = demand["town_code"].astype(object).where(demand["town_code"].notna(), "unknown").astype(str)
        scopes.append(("town", pd.Categorical(towns.to_numpy())))
    return scopes


def _unit_rows(ka: KindAccess, demand: pd.DataFrame, names: dict,
               scopes: list[tuple[str, pd.Categorical]] | None = None) -> pd.DataFrame:
    """The 可达性 rows of one kind: the study, urban / rural, each town (``scopes``: :func:`_scopes`)."""
    elderly = demand["elderly"].to_numpy(float)
    parts = []
    total_w = float(elderly.sum())
    mean_all = float(elderly @ ka.score) / total_w if total_w > 0 else 0.0
    for scope, labels in (scopes if scopes is not None else _scopes(demand)):
        frame = pd.DataFrame({"code": labels, "w": elderly, "wv": elderly * ka.score, "wz": elderly * (ka.score <= 0),
                              "served": ka.served, "unmet": ka.unmet, "unreachable": ka.unreachable})
        sums = frame.groupby("code", sort=True, observed=True)[["w", "wv", "wz", "served", "unmet",
                                                               "unreachable"]].sum()
        w = sums["w"].where(sums["w"] > 0)
        out = pd.DataFrame({
            "kind": ka.kind, "scope": scope, "code": sums.index.astype(str),
            "name": [names.get(c, {"all": "全域 / study", "urban": "城镇 / urban", "rural": "乡村 / rural"}.get(c, c))
                     for c in sums.index.astype(str)],
            "elderly": sums["w"].to_numpy(),
            "access_mean": (sums["wv"] / w).fillna(0.0).to_numpy(),
            "access_zero_share": (sums["wz"] / w).fillna(0.0).to_numpy(),
            "served": sums["served"].to_numpy(), "unmet": sums["unmet"].to_numpy(),
            "unreachable": sums["unreachable"].to_numpy(),
            "share_served": (sums["served"] / w).fillna(0.0).to_numpy(),
        })
        out["access_lq"] = out["access_mean"] / mean_all if mean_all > 0 else 0.0
        parts.append(out)
    return pd.concat(parts, ignore_index=True)[ACCESS_COLUMNS]


def _equity_row(ka: KindAccess, demand: pd.DataFrame,
                scopes: list[tuple[str, pd.Categorical]] | None = None) -> dict:
    """The 公平性 row of one kind: Gini, Theil and its parts, the lowest decile, Lorenz points."""
    elderly = demand["elderly"].to_numpy(float)
    score = np.clip(ka.score, 0.0, None)
    row = {"kind": ka.kind, "minutes": ka.minutes, "supply_unit": UNIT_LABELS.get(ka.supply.unit, ka.supply.unit),
           "gini": equity.gini(score, elderly), "theil": equity.theil(score, elderly)}
    groups = dict(scopes if scopes is not None else _scopes(demand))
    # no town codes: one group, as before ("all")
    by_town = equity.theil_decomposition(score, elderly, groups.get("town", groups["study"]))
    by_urban = equity.theil_decomposition(score, elderly, groups["urban_rural"])
    row.update(theil_between_town=by_town.between, theil_within_town=by_town.within,
               theil_between_urban=by_urban.between, theil_within_urban=by_urban.within)
    low = equity.lowest_decile_share(score, elderly)
    row.update(lowest_decile_value_share=low.value_share, zero_access_share=low.zero_share,
               share_served=ka.share_served, served=float(ka.served.sum()), unmet=float(ka.unmet.sum()),
               capacity_method=METHOD_LABELS.get(ka.capacity_method, ka.capacity_method),
               capacity_gap=ka.capacity_gap)
    population, amount = equity.lorenz_curve(score, elderly)
    for p in LORENZ_POINTS:
        row[f"lorenz_{int(100 * p)}"] = float(np.interp(p, population, amount))
    row["supply_note"] = ka.supply.note
    return row


def study_accessibility(net: reach.NetworkArrays, facility_snap, demand_snap, facilities: pd.DataFrame,
                        demand: pd.DataFrame, *, kinds: Sequence[str], minutes: float, speed_for,
                        ferry=None, units: pd.DataFrame | None = None, m2_per_place: float = M2_PER_PLACE,
                        method: str = "exact",
                        facility_catchment: tuple[float, float, object] | None = None) -> StudyAccess:
    """
    Accessibility and equity of each kind for a run.

    Parameters
    ----------
    net, facility_snap, demand_snap
        The run's network arrays and snaps (all facilities, all demand points).
    facilities, demand
        The run's facility table and demand points (``elderly``, ``town_code``, ``urban``).
    kinds
        Kinds to measure (kinds without a facility are left out, with a note).
    minutes
        Catchment walking minutes.
    speed_for
        Callable kind → walking speed (m/s), e.g. ``config.parameters.speed_for``.
    ferry
        The run's :class:`coverage.ferry.FerryPolicy`.
    units
        Administrative units (``code``, ``name``) to name the towns.
    m2_per_place, method
        As for :func:`kind_access`.
    facility_catchment
        ``(walk_speed_mps, limit_seconds, matrix)``: a catchment matrix of
        every facility (:func:`coverage.reach.catchment_matrix`, same
        ``ferry``) the run already holds. A kind that walks at that speed
        for ``minutes`` × 60 = ``limit_seconds`` takes its facilities' rows
        from it instead of searching again (each row is its facility's own
        bounded search, so the rows are the same numbers).
    """
    names = units.set_index("code")["name"].astype(str).to_dict() if units is not None and len(units) else {}
    notes: list[str] = []
    capacities: list[str] = []
    left_out: list[str] = []
    results: dict[str, KindAccess] = {}
    for kind in kinds:
        supply = access.supply_of(facilities, kind)
        if len(supply.positions) == 0:
            left_out.append(kind)
            continue
        # every facility's row is kept so that kind_access picks the kind's rows by position
        full = _kind_catchment(net, facility_snap, demand_snap, supply.positions, len(facilities), speed_for(kind),
                               minutes * 60.0, ferry, facility_catchment)
        ka = kind_access(full, facilities, demand, kind, minutes, m2_per_place=m2_per_place, method=method)
        results[kind] = ka
        capacities.append(ka.supply.note)
    if results:
        area = f"; floor areas count one person per {m2_per_place:g} m²" if any(
            ka.supply.column == "floor_area_m2" for ka in results.values()) else ""
        notes.append(f"accessibility (2SFCA, capacity-aware coverage, {minutes:g} min) / 可达性与容量约束覆盖: "
                     + "; ".join(capacities) + area)
    if left_out:
        notes.append(f"accessibility: no facility of {', '.join(left_out)}, left out / 无此类设施，未计算可达性")
    scopes = _scopes(demand) if results else []
    by_unit = pd.concat([_unit_rows(ka, demand, names, scopes) for ka in results.values()], ignore_index=True) \
        if results else pd.DataFrame(columns=ACCESS_COLUMNS)
    equity_table = pd.DataFrame([_equity_row(ka, demand, scopes) for ka in results.values()], columns=EQUITY_COLUMNS)
    crowding = pd.concat([ka.crowding for ka in results.values()], ignore_index=True) if results \
        else pd.DataFrame(columns=CROWDING_COLUMNS)
    return StudyAccess(minutes=float(minutes), kinds=results, by_unit=by_unit, equity=equity_table,
                       crowding=crowding, notes=notes,
                       gini_by_area={kind: _gini_by_area(ka.score, demand) for kind, ka in results.items()})


#: target metrics evaluated on the accessibility measures (``StudyAccess.values_for_targets``)
ACCESS_METRICS = frozenset({"capacity_share", "access_gini"})


def study_settings_accessibility(params, net: reach.NetworkArrays, facility_snap, demand_snap,
                                 facilities: pd.DataFrame, demand: pd.DataFrame,
                                 units: pd.DataFrame | None = None,
                                 facility_catchment: tuple[float, float, object] | None = None) -> StudyAccess:
    """
    :func:`study_accessibility` with a study's ``parameters.accessibility`` (its kinds that walk, minutes, m² per place).

    Parameters
    ----------
    params
        :class:`coverage.config.Parameters` of the study.
    net, facility_snap, demand_snap, facilities, demand, units, facility_catchment
        As for :func:`study_accessibility` (a run's, or one year's of a trajectory).
    """
    settings = params.accessibility
    kinds = [kind for kind in (settings.kinds or params.kinds) if params.travel_profile(kind) is None]
    return study_accessibility(net, facility_snap, demand_snap, facilities, demand, kinds=kinds,
                               minutes=settings.minutes, speed_for=params.speed_for, ferry=params.ferry, units=units,
                               m2_per_place=settings.m2_per_place, facility_catchment=facility_catchment)


def _gini_by_area(score: np.ndarray, demand: pd.DataFrame) -> dict[str, float]:
    """Gini of the 2SFCA score over all, the urban and the rural older people (NaN where nobody lives)."""
    elderly = demand["elderly"].to_numpy(float)
    labels = _urban_labels(demand)
    out = {}
    for area, mask in (("all", np.ones(len(demand), bool)), ("urban", labels == "urban"), ("rural", labels == "rural")):
        out[area] = equity.gini(np.clip(score[mask], 0.0, None), elderly[mask]) if elderly[mask].sum() > 0 else np.nan
    return out


def _kind_catchment(net, facility_snap, demand_snap, positions: np.ndarray, n_facilities: int,
                    walk_speed_mps: float, limit_s: float, ferry, facility_catchment):
    """
    A catchment matrix over all ``n_facilities`` whose rows at ``positions`` are the kind's (the others are not read).

    The run's matrix as it is when it was searched alike, else the kind's facilities searched here.
    """
    if facility_catchment is not None:
        speed, limit, matrix = facility_catchment
        if speed == walk_speed_mps and limit == limit_s:
            return matrix
    rows = reach.catchment_matrix(net, facility_snap.subset(positions), demand_snap, walk_speed_mps=walk_speed_mps,
                                  limit=limit_s, ferry=ferry)
    return _scatter_rows(rows, positions, n_facilities)


def _scatter_rows(rows, positions: np.ndarray, n_rows: int):
    """A matrix of ``n_rows`` rows holding ``rows`` at ``positions`` (the others empty)."""
    from scipy import sparse

    coo = sparse.csr_matrix(rows).tocoo()
    return sparse.csr_matrix((coo.data, (np.asarray(positions)[coo.row], coo.col)), shape=(n_rows, rows.shape[1]))
