"""Supply–demand accessibility (2SFCA family and gravity) on the sparse facility × demand catchments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from coverage import kinds as kinds_registry

# How these measures are defined (the same definitions and numbers as PySAL ``access`` 1.1, fca.py):
#
#   weight        w_ij = f(c_ij) for the pairs in the catchment (cost c_ij <= limit), 0 elsewhere
#   2SFCA family  R_j = S_j / sum_i w_ij D_i            (supply per weighted person at facility j)
#                 A_i = sum_j w_ij R_j                  (supply per person reachable from demand point i)
#   3SFCA         G_ij = w_ij / sum_k w_ik              (the share of i's demand drawn to j)
#                 R_j = S_j / sum_i G_ij w_ij D_i,  A_i = sum_j G_ij w_ij R_j
#   gravity       2SFCA with w = (max(c, c_min) / scale) ** alpha (alpha < 0); without competition
#                 the Hansen potential A_i = sum_j w_ij S_j
#
# Where PySAL leaves a value out (a demand point that reaches no facility; a facility that reaches
# no weighted demand) these functions give 0: no supply reaches that point, and a facility nobody
# reaches hands out nothing.
#
# One difference by design: with ``limit`` below the catchment's own limit, 3SFCA's G here shares a
# point's demand among the facilities within ``limit`` only; PySAL computes G over every pair in its
# cost table before applying ``max_cost``. With ``limit`` equal to the catchment's (the default) they agree.

#: step weights of the enhanced 2SFCA (Luo & Qi 2009), for equal steps up to the limit
E2SFCA_WEIGHTS: tuple[float, ...] = (1.0, 0.68, 0.22)
#: step weights of the 3SFCA (Wan, Zou & Sternberg 2012), for equal steps up to the limit
THREE_STEP_WEIGHTS: tuple[float, ...] = (0.962, 0.704, 0.377)

#: capacity columns a facility table may have (docs/architecture.md "facilities"; meals_per_day when given)
SUPPLY_COLUMNS: tuple[str, ...] = ("beds", "nursing_beds", "meals_per_day", "floor_area_m2", "caregivers")

#: a facility's assumed capacity, in the unit of its kind's ``capacity`` column, when none is given
DEFAULT_SUPPLY: Mapping[str, tuple[float, str]] = {
    "day_care": (200.0, "Panjin 2018–20: community day-care centre ≥ 200 m²"),
    "mutual_aid": (100.0, "Panjin 2018–20: village 互助幸福院 ≥ 100 m²"),
    "comprehensive": (300.0, "Panjin 2018–20: street-level centre ≥ 300 m²"),
    "canteen": (50.0, "assumed: 50 meals a day (no seed document gives a number)"),
    "nursing_home": (30.0, "assumed: 30 beds (no seed document gives a number)"),
    "care_home": (100.0, "assumed: 100 beds (no seed document gives a number)"),
    "home_care": (5.0, "assumed: 5 caregivers (no seed document gives a number)"),
}

_UNITS = {"beds": "beds", "nursing_beds": "nursing beds", "meals_per_day": "meals/day",
          "floor_area_m2": "m²", "caregivers": "caregivers", "count": "facilities"}


# --- weights ---------------------------------------------------------------------------------------

def default_steps(limit: float, weights: Sequence[float] = E2SFCA_WEIGHTS) -> dict[float, float]:
    """
    Equal steps up to ``limit`` (e.g. 0–5 / 5–10 / 10–15 min for 900 s) with the given weights.

    Returns
    -------
    dict
        Upper bound of each step (seconds) → weight, as PySAL's ``weights.step_fn`` takes it.
    """
    n = len(weights)
    return {float(limit) * (k + 1) / n: float(w) for k, w in enumerate(weights)}


def step_weights(costs: np.ndarray, steps: Mapping[float, float]) -> np.ndarray:
    """
    Step weights: the weight of the first step whose upper bound is ≥ the cost, 0 beyond the last.

    Parameters
    ----------
    costs
        Travel costs (seconds).
    steps
        Upper bound (seconds) → weight; a cost equal to a bound belongs to that step.
    """
    bounds = np.array(sorted(steps), dtype=float)
    if any(w < 0 for w in steps.values()):
        raise ValueError("step weights must not be negative")
    values = np.array([steps[b] for b in sorted(steps)] + [0.0], dtype=float)
    costs = np.asarray(costs, dtype=float)
    # step k holds bound[k-1] < cost <= bound[k]: its number is how many bounds the cost exceeds
    # (a few comparisons are quicker than a binary search for a handful of steps)
    if len(bounds) <= 8:
        step = np.zeros(costs.shape, dtype=np.intp)
        for bound in bounds:
            step += costs > bound
    else:
        step = np.searchsorted(bounds, costs, side="left")
    return values[step]


def gaussian_weights(costs: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian weights exp(−c² / 2σ²) (1 at zero cost, not normalised; σ in seconds)."""
    if sigma <= 0:
        raise ValueError("sigma must be positive")
    costs = np.asarray(costs, dtype=float)
    return np.exp(-costs * costs / (2 * sigma**2))


def gravity_weights(costs: np.ndarray, scale: float, alpha: float, min_cost: float = 0.0) -> np.ndarray:
    """Gravity weights (max(c, c_min) / scale) ** alpha; alpha < 0 for decay (costs and scale in seconds)."""
    return np.power(np.maximum(np.asarray(costs, dtype=float), min_cost) / scale, alpha)


# --- the measures ----------------------------------------------------------------------------------

def _check(catchment, supply, demand) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    catchment = sparse.csr_matrix(catchment)
    supply = np.asarray(supply, dtype=float)
    demand = np.asarray(demand, dtype=float)
    n_sites, n_demand = catchment.shape
    if supply.shape != (n_sites,):
        raise ValueError(f"supply has {supply.shape} values, the catchment has {n_sites} facilities (rows)")
    if demand.shape != (n_demand,):
        raise ValueError(f"demand has {demand.shape} values, the catchment has {n_demand} demand points (columns)")
    if np.any(supply < 0) or np.any(demand < 0) or not (np.isfinite(supply).all() and np.isfinite(demand).all()):
        raise ValueError("supply and demand must be finite and not negative")
    return catchment, supply, demand


def _weighted(catchment: sparse.csr_matrix, weights: np.ndarray, limit: float | None) -> sparse.csr_matrix:
    """The catchment's pattern with the weights as values (0 past ``limit``)."""
    if limit is not None:
        weights = np.where(catchment.data <= limit, weights, 0.0)
    return sparse.csr_matrix((weights, catchment.indices, catchment.indptr), shape=catchment.shape)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    out = np.zeros_like(numerator, dtype=float)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _floating_catchment(w: sparse.csr_matrix, supply: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """R_j = S_j / Σ_i w_ij D_i, then A_i = Σ_j w_ij R_j."""
    ratio = _ratio(supply, w @ demand)
    return w.T @ ratio


def _normalised(values: np.ndarray, demand: np.ndarray) -> np.ndarray:
    # PySAL's normalisation: divide by the population-weighted mean, so the mean person scores 1
    mean = float(values @ demand) / float(demand.sum()) if demand.sum() > 0 else 0.0
    return values / mean if mean > 0 else values


def two_step_fca(catchment, supply, demand, *, limit: float | None = None, normalise: bool = False) -> np.ndarray:
    """
    Two-step floating catchment area (Luo & Wang 2003): supply per person within reach.

    Parameters
    ----------
    catchment
        CSR matrix (n_sites, n_demand) of travel costs (seconds) from
        :func:`coverage.reach.catchment_matrix`; absent = beyond its limit.
    supply
        Capacity per facility (beds, m², meals a day …; :func:`supply_of`).
    demand
        Older people per demand point.
    limit
        Count only pairs with cost ≤ this (seconds); default all stored pairs.
    normalise
        Divide by the population-weighted mean (the average older person scores 1).

    Returns
    -------
    numpy.ndarray
        Supply per older person reachable from each demand point (0 where none is).
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    w = _weighted(catchment, np.ones(catchment.nnz), limit)
    values = _floating_catchment(w, supply, demand)
    return _normalised(values, demand) if normalise else values


def gaussian_2sfca(catchment, supply, demand, *, sigma: float | None = None, limit: float | None = None,
                   normalise: bool = False) -> np.ndarray:
    """
    Gaussian 2SFCA: both steps weighted by exp(−c² / 2σ²).

    Parameters
    ----------
    catchment, supply, demand, limit, normalise
        As in :func:`two_step_fca`.
    sigma
        Width of the Gaussian (seconds); default half the largest stored cost
        (or half of ``limit``), so a pair at the limit weighs exp(−2) ≈ 0.14.
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    if sigma is None:
        top = limit if limit is not None else (catchment.data.max() if catchment.nnz else 1.0)
        sigma = top / 2.0
    w = _weighted(catchment, gaussian_weights(catchment.data, sigma), limit)
    values = _floating_catchment(w, supply, demand)
    return _normalised(values, demand) if normalise else values


def enhanced_2sfca(catchment, supply, demand, *, steps: Mapping[float, float] | None = None,
                   limit: float | None = None, normalise: bool = False) -> np.ndarray:
    """
    Enhanced 2SFCA (Luo & Qi 2009): both steps weighted by travel-time step.

    Parameters
    ----------
    catchment, supply, demand, limit, normalise
        As in :func:`two_step_fca`.
    steps
        Upper bound of each step (seconds) → weight, e.g. ``{300: 1, 600: 0.68, 900: 0.22}``
        (0–5 / 5–10 / 10–15 min); default :func:`default_steps` of ``limit`` (or of the
        largest stored cost) with :data:`E2SFCA_WEIGHTS`. Pairs beyond the last step weigh 0.
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    steps = steps if steps is not None else default_steps(_top(catchment, limit))
    w = _weighted(catchment, step_weights(catchment.data, steps), limit)
    values = _floating_catchment(w, supply, demand)
    return _normalised(values, demand) if normalise else values


def _top(catchment: sparse.csr_matrix, limit: float | None) -> float:
    if limit is not None:
        return float(limit)
    return float(catchment.data.max()) if catchment.nnz else 1.0


def selection_weights(w: sparse.csr_matrix) -> sparse.csr_matrix:
    """3SFCA's G_ij = w_ij / Σ_k w_ik: each demand point's weights over the facilities it reaches, summing to 1."""
    w = sparse.csr_matrix(w)
    per_point = np.bincount(w.indices, weights=w.data, minlength=w.shape[1])
    return sparse.csr_matrix((_ratio(w.data, per_point[w.indices]), w.indices, w.indptr), shape=w.shape)


def three_step_fca(catchment, supply, demand, *, steps: Mapping[float, float] | None = None,
                   sigma: float | None = None, limit: float | None = None, normalise: bool = False) -> np.ndarray:
    """
    Three-step floating catchment area (Wan, Zou & Sternberg 2012), competition-adjusted.

    A demand point's people are shared among the facilities it reaches in
    proportion to their weights (G), so a point near several facilities is
    not counted in full at each.

    Parameters
    ----------
    catchment, supply, demand, limit, normalise
        As in :func:`two_step_fca`.
    steps
        Step weights as in :func:`enhanced_2sfca`; default :func:`default_steps`
        with :data:`THREE_STEP_WEIGHTS`.
    sigma
        Use Gaussian weights of this width (seconds) instead of steps.
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    if sigma is not None:
        weights = gaussian_weights(catchment.data, sigma)
    else:
        steps = steps if steps is not None else default_steps(_top(catchment, limit), THREE_STEP_WEIGHTS)
        weights = step_weights(catchment.data, steps)
    w = _weighted(catchment, weights, limit)
    # G_ij w_ij on the same pattern (no sparse elementwise product needed)
    gw = sparse.csr_matrix((w.data * selection_weights(w).data, w.indices, w.indptr), shape=w.shape)
    values = _floating_catchment(gw, supply, demand)
    return _normalised(values, demand) if normalise else values


def gravity(catchment, supply, demand, *, scale: float = 60.0, alpha: float = -1.0, min_cost: float = 60.0,
            competition: bool = True, limit: float | None = None, normalise: bool = False) -> np.ndarray:
    """
    Gravity accessibility: supply weighted by (max(c, c_min) / scale) ** alpha.

    With ``competition`` (default) the supply is shared among the demand that
    reaches it, weighted the same way (Joseph & Bantock / Weibull; 2SFCA with
    a gravity weight); without, the Hansen potential Σ_j w_ij S_j.

    Parameters
    ----------
    catchment, supply, demand, limit, normalise
        As in :func:`two_step_fca`.
    scale
        Cost that weighs 1 (seconds).
    alpha
        Decay exponent (negative).
    min_cost
        Costs below this count as this (seconds), so a facility next door does not weigh infinitely.
    competition
        Divide each facility's supply by the weighted demand that reaches it.
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    if min_cost <= 0 and alpha < 0:
        raise ValueError("min_cost must be positive with a negative alpha (a zero cost would weigh infinitely)")
    w = _weighted(catchment, gravity_weights(catchment.data, scale, alpha, min_cost), limit)
    values = _floating_catchment(w, supply, demand) if competition else w.T @ supply
    return _normalised(values, demand) if normalise else values


# --- crowding --------------------------------------------------------------------------------------

def facility_crowding(catchment, supply, demand, *, limit: float | None = None,
                      band: tuple[float, float] = (0.5, 2.0)) -> pd.DataFrame:
    """
    Each facility's supply against the older people within its catchment.

    Parameters
    ----------
    catchment, supply, demand, limit
        As in :func:`two_step_fca`.
    band
        A facility whose people per unit of supply is above ``band[1]`` times
        the study-wide figure (all reached people over all supply) is
        ``"over"``-used, below ``band[0]`` times ``"under"``-used.

    Returns
    -------
    pandas.DataFrame
        One row per facility: ``supply``, ``demand_in_reach`` (older people),
        ``supply_per_person`` (2SFCA's R_j), ``persons_per_supply``,
        ``relative_load`` (persons per supply over the study-wide figure) and
        ``use`` (``over``, ``under``, ``balanced``, ``no_demand`` or ``no_supply``).
    """
    catchment, supply, demand = _check(catchment, supply, demand)
    w = _weighted(catchment, np.ones(catchment.nnz), limit)
    in_reach = w @ demand
    per_person = _ratio(supply, in_reach)
    per_supply = np.where(supply > 0, _ratio(in_reach, supply), np.inf)
    per_supply[in_reach == 0] = 0.0
    reached = np.asarray(w.sum(axis=0)).ravel() > 0
    overall = float(demand[reached].sum()) / float(supply.sum()) if supply.sum() > 0 else 0.0
    relative = per_supply / overall if overall > 0 else np.zeros_like(per_supply)
    use = np.where(relative > band[1], "over", np.where(relative < band[0], "under", "balanced")).astype(object)
    use[in_reach == 0] = "no_demand"
    use[(supply == 0) & (in_reach > 0)] = "no_supply"
    return pd.DataFrame({
        "supply": supply, "demand_in_reach": in_reach, "supply_per_person": per_person,
        "persons_per_supply": per_supply, "relative_load": relative, "use": use,
    })


# --- supply and aggregation ------------------------------------------------------------------------

@dataclass(frozen=True)
class Supply:
    """
    Capacity of the facilities of one kind, in one column's unit.

    Attributes
    ----------
    positions : numpy.ndarray
        Row positions in the facility table of the facilities counted (the
        catchment's rows to keep: ``catchment[supply.positions]``).
    values : numpy.ndarray
        Capacity of each of those facilities.
    column : str
        The column read (``beds``, ``floor_area_m2`` …, or ``count``: 1 each).
    unit : str
        Unit of the values.
    n_given, n_default : int
        Facilities whose value came from the table, and from the default.
    note : str
        Plain-language note for the planner on where the numbers came from.
    """

    positions: np.ndarray
    values: np.ndarray
    column: str
    unit: str
    n_given: int
    n_default: int
    note: str

    def catchment(self, matrix) -> sparse.csr_matrix:
        """The rows of a catchment matrix (all facilities) that belong to these facilities."""
        return sparse.csr_matrix(matrix)[self.positions]


def _positive(series: pd.Series) -> pd.Series:
    values = pd.to_numeric(series, errors="coerce").astype(float)
    return values.where(values > 0)


def supply_of(facilities: pd.DataFrame, kind: str | None = None, *, column: str | None = None,
              default: float | None = None) -> Supply:
    """
    The capacity of each facility of a kind, from the column that describes it best.

    The column is ``column`` if given, else the kind's ``capacity`` field in
    ``coverage/kinds.yaml`` if the table has values in it, else the first of
    :data:`SUPPLY_COLUMNS` that has values for these facilities. Facilities
    without a value get ``default`` (or the kind's :data:`DEFAULT_SUPPLY` when
    the column is the kind's own; otherwise the median of the given values),
    and the note says how many. With no values at all, and no default, every
    facility counts 1 (``column="count"``).

    Parameters
    ----------
    facilities
        Facility table (``kinds`` column and the capacity columns, docs/architecture.md).
    kind
        A kind id (``day_care`` …); None or ``"any"`` = every facility.
    column
        Read this column whatever the kind.
    default
        Value for facilities without one, in the column's unit.
    """
    if kind in (None, kinds_registry.ANY_KIND):
        mask = np.ones(len(facilities), bool)
        preferred = None
    else:
        registry = kinds_registry.registry()
        if kind not in registry:
            raise ValueError(f"unknown facility kind {kind!r}; known: {', '.join(registry.ids)}")
        text = facilities["kinds"].astype(object).where(facilities["kinds"].notna(), "")
        mask = text.map(lambda value: kind in str(value).split(";")).to_numpy(bool)
        preferred = registry[kind].capacity or None
    positions = np.flatnonzero(mask)
    rows = facilities.iloc[positions]
    label = kind or "all facilities"

    def has_values(name: str | None) -> bool:
        return name is not None and name in rows and bool(_positive(rows[name]).notna().any())

    if column is None:
        candidates = ([preferred] if preferred else []) + [c for c in SUPPLY_COLUMNS if c != preferred]
        column = next((c for c in candidates if has_values(c)), None)
    if column is None or column not in rows:
        column_default = default if default is not None else (
            DEFAULT_SUPPLY[kind][0] if kind in DEFAULT_SUPPLY else None)
        if column_default is None:
            values = np.ones(len(positions))
            return Supply(positions, values, "count", _UNITS["count"], 0, len(positions),
                          f"{label}: no capacity column has values; every facility counts as 1")
        chosen = column or preferred
        why = f"given default {default:g}" if default is not None else DEFAULT_SUPPLY[kind][1]
        return Supply(positions, np.full(len(positions), float(column_default)), chosen, _UNITS.get(chosen, chosen),
                      0, len(positions), f"{label}: no {chosen} given for any facility; each counts {column_default:g} "
                      f"{_UNITS.get(chosen, chosen)} ({why})")
    values = _positive(rows[column]).to_numpy(float, copy=True)
    given = ~np.isnan(values)
    n_missing = int((~given).sum())
    note = f"{label}: {column} from the table for {int(given.sum())} of {len(values)} facilities"
    if n_missing:
        if default is not None:
            fill, why = float(default), f"given default {default:g}"
        elif column == preferred and kind in DEFAULT_SUPPLY:
            fill, why = DEFAULT_SUPPLY[kind]
        else:
            fill, why = float(np.median(values[given])), "median of the given values"
        values[~given] = fill
        note += f"; the other {n_missing} count {fill:g} {_UNITS.get(column, column)} ({why})"
    return Supply(positions, values, column, _UNITS.get(column, column), int(given.sum()), n_missing, note)


_LEVELS = {"village": "village_code", "town": "town_code", "county": "county_code", "urban": "urban"}


def aggregate_by_unit(values, demand: pd.DataFrame, level: str = "town") -> pd.DataFrame:
    """
    Population-weighted mean of a per-demand-point measure per unit.

    Parameters
    ----------
    values
        One value per demand point (row of ``demand``), e.g. from :func:`two_step_fca`.
    demand
        Demand points with ``elderly`` and the unit columns (``village_code``,
        ``town_code``, ``county_code``, ``urban``).
    level
        ``village``, ``town``, ``county`` or ``urban`` (urban / rural / unknown).

    Returns
    -------
    pandas.DataFrame
        Indexed by unit code (or ``urban`` / ``rural`` / ``unknown``):
        ``elderly``, ``mean`` (population-weighted), ``min``, ``max``,
        ``zero_share`` (share of the unit's older people with no access, value 0).
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {', '.join(_LEVELS)}, not {level!r}")
    key = _LEVELS[level]
    if key not in demand:
        raise ValueError(f"the demand points have no {key!r} column (run population.assign_units first)")
    values = np.asarray(values, dtype=float)
    if len(values) != len(demand):
        raise ValueError(f"{len(values)} values for {len(demand)} demand points")
    weight = demand["elderly"].to_numpy(float)
    if level == "urban":
        flag = demand[key].astype("boolean")
        groups = np.where(flag.isna().to_numpy(), "unknown", np.where(flag.fillna(False).to_numpy(bool), "urban", "rural"))
    else:
        groups = demand[key].astype(object).where(demand[key].notna(), "unknown").astype(str).to_numpy()
    frame = pd.DataFrame({"unit": groups, "w": weight, "wv": weight * values, "v": values,
                          "wz": weight * (values <= 0)})
    grouped = frame.groupby("unit", sort=True)
    totals = grouped[["w", "wv", "wz"]].sum()
    out = pd.DataFrame({
        "elderly": totals["w"],
        "mean": _ratio(totals["wv"].to_numpy(), totals["w"].to_numpy()),
        "min": grouped["v"].min(),
        "max": grouped["v"].max(),
        "zero_share": _ratio(totals["wz"].to_numpy(), totals["w"].to_numpy()),
    })
    out.index.name = level
    return out
