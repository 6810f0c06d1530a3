"""Capacity-aware coverage: how many older people can get a place within T when every facility's capacity holds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

# The problem (a transportation problem on the sparse catchment arcs, i.e. a bipartite max-flow):
#   maximise   Σ_k x_k                      over the arcs k = (facility j, demand point i), cost ≤ T
#   subject to Σ_{k at i} x_k ≤ d_i         (nobody is served twice)
#              Σ_{k at j} x_k ≤ cap_j       (no facility over capacity)
#              x_k ≥ 0
# Among the assignments serving the most people, ``prefer_near`` then picks a near one: a second LP
# with the travel time as a tie-break worth far less than one person, kept when it serves as many.


@dataclass(frozen=True)
class CapacityResult:
    """
    The assignment of older people to facilities within the time limit, capacities respected.

    Attributes
    ----------
    flow : scipy.sparse.csr_matrix
        (n_sites, n_demand): persons of each demand point assigned to each facility.
    assigned : numpy.ndarray
        Persons assigned per facility (≤ its capacity).
    served : numpy.ndarray
        Persons served per demand point (≤ its demand).
    unmet : numpy.ndarray
        Persons not served per demand point (demand − served).
    unreachable : numpy.ndarray
        Of the unmet, persons at points that reach no facility with capacity within the limit.
    share_served : float
        Served / all older people (0..1): the capacity-aware coverage rate.
    total_served, total_demand : float
        Persons.
    mean_seconds : float
        Mean travel time of the served persons (seconds).
    method : str
        ``"exact"`` or ``"greedy"``.
    status : str
        ``"optimal"`` (exact), ``"feasible"`` (greedy) or the solver's message.
    bound : float
        Upper bound on the persons that can be served: the LP optimum (exact,
        or greedy with ``lp_bound=True``) or a dual bound from the greedy's own
        result (see :func:`capacity_aware_coverage`).
    gap : float
        (bound − served) / bound; 0 for exact.
    """

    flow: sparse.csr_matrix
    assigned: np.ndarray
    served: np.ndarray
    unmet: np.ndarray
    unreachable: np.ndarray
    share_served: float
    total_served: float
    total_demand: float
    mean_seconds: float
    method: str
    status: str
    bound: float
    gap: float

    def utilisation(self, capacity) -> np.ndarray:
        """Assigned persons over capacity per facility (NaN where the capacity is 0)."""
        capacity = np.asarray(capacity, dtype=float)
        out = np.full(len(capacity), np.nan)
        np.divide(self.assigned, capacity, out=out, where=capacity > 0)
        return out


def _arcs(catchment, demand: np.ndarray, capacity: np.ndarray, limit_s: float):
    """The usable arcs (cost ≤ limit, both ends with something to give), sorted by facility."""
    coo = sparse.csr_matrix(catchment).tocoo()
    keep = (coo.data <= limit_s) & (demand[coo.col] > 0) & (capacity[coo.row] > 0)
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep].astype(float)


def _lp(c, rows_point, rows_site, n_points, n_sites, b_ub, upper):
    """One HiGHS solve of the LP on the given arcs (``linprog``'s result, with the rows' marginals)."""
    from scipy.optimize import linprog

    n_arcs = len(c)
    arc = np.arange(n_arcs)
    a_ub = sparse.csr_matrix(
        (np.ones(2 * n_arcs), (np.concatenate([rows_point, n_points + rows_site]), np.concatenate([arc, arc]))),
        shape=(n_points + n_sites, n_arcs),
    )
    return linprog(c, A_ub=a_ub, b_ub=b_ub, bounds=np.column_stack([np.zeros(n_arcs), upper]), method="highs")


def _column_generation(c_all, point_row, site_row, n_points, n_sites, b_ub, upper, start, *,
                       max_rounds: int = 60, tol: float = 1e-7):
    """
    The LP on all arcs, solved exactly on a growing subset of them.

    Start from the arcs in ``start``, solve, and price every arc left out with
    the rows' duals (reduced cost c_k − Σ_rows a_rk y_r); add those that would
    improve the objective, and stop when none would. The last solution is then
    optimal for the LP on all arcs (its duals are feasible for every arc, to
    HiGHS's dual feasibility tolerance, 1e-7, used here as well).
    """
    active = np.zeros(len(c_all), bool)
    active[start] = True
    for _ in range(max_rounds):
        idx = np.flatnonzero(active)
        res = _lp(c_all[idx], point_row[idx], site_row[idx], n_points, n_sites, b_ub, upper[idx])
        if res.status != 0:
            return None, res.message
        duals = res.ineqlin.marginals
        reduced = c_all - duals[point_row] - duals[n_points + site_row]
        # an arc at its upper bound can have a negative reduced cost; only arcs left out (at 0) matter
        entering = (~active) & (reduced < -tol * np.maximum(1.0, np.abs(c_all)))
        if not entering.any():
            flow = np.zeros(len(c_all))
            flow[idx] = res.x
            return flow, "optimal"
        active |= entering
    return None, f"column generation did not converge in {max_rounds} rounds"


def _solve_lp(site, point, cost, demand, capacity, *, prefer_near: bool, start_flow=None, nearest: int = 3,
              near_rounds: int = 60):
    """The transportation LP with HiGHS on sparse constraint matrices; the flow per arc and status."""
    # relabel to the points and sites that have arcs: smaller LP, same answer
    points, point_row = np.unique(point, return_inverse=True)
    sites, site_row = np.unique(site, return_inverse=True)
    b_ub = np.concatenate([demand[points], capacity[sites]])
    # no arc carries more than either end can give (tightens presolve)
    upper = np.minimum(demand[point], capacity[site])
    # the first arcs: each point's few nearest, and those a nearest-first assignment uses
    order = np.lexsort((cost, point_row))
    first_of_point = np.searchsorted(point_row[order], np.arange(len(points)))
    rank = np.arange(len(order)) - np.repeat(first_of_point, np.diff(np.append(first_of_point, len(order))))
    start = np.zeros(len(site), bool)
    start[order[rank < nearest]] = True
    if start_flow is not None:
        start |= start_flow > 0
    flow, status = _column_generation(-np.ones(len(site)), point_row, site_row, len(points), len(sites), b_ub,
                                      upper, start)
    if flow is None:
        # not converged: the LP on all arcs at once
        res = _lp(-np.ones(len(site)), point_row, site_row, len(points), len(sites), b_ub, upper)
        if res.status != 0:
            return None, res.message
        flow, status = res.x, "optimal"
    if prefer_near:
        best = float(flow.sum())
        # the travel time as a tie-break far below one person (δ c / c_max ≤ 1e-4): the nearest of
        # the assignments serving the most; kept only if it does serve the most (to the tolerance)
        tie_break = -1.0 + 1e-4 * cost / max(float(cost.max()), 1e-12)
        near, _ = _column_generation(tie_break, point_row, site_row, len(points), len(sites), b_ub, upper,
                                     start | (flow > 0), max_rounds=near_rounds)
        if near is not None and near.sum() >= best * (1 - 1e-9):
            flow = near
    return np.clip(flow, 0.0, upper), status


def _greedy(site, point, cost, demand, capacity):
    """Nearest pairs first: each arc in cost order takes what both ends still have."""
    order = np.lexsort((point, site, cost))
    flow = np.zeros(len(site))
    # plain Python lists: a loop over them is several times quicker than over NumPy scalars
    sites = site[order].tolist()
    points = point[order].tolist()
    dem = demand.astype(float).tolist()
    cap = capacity.astype(float).tolist()
    out = [0.0] * len(order)
    for k, (j, i) in enumerate(zip(sites, points)):
        d = dem[i]
        if d <= 0.0:
            continue
        c = cap[j]
        if c <= 0.0:
            continue
        take = d if d < c else c
        out[k] = take
        dem[i] = d - take
        cap[j] = c - take
    flow[order] = out
    return flow


def _dual_bound(site, point, flow, demand, capacity, n_sites: int, n_demand: int) -> float:
    """
    An upper bound on the LP optimum from a maximal assignment (LP duality, as König's theorem).

    After the greedy every arc has its facility full or its demand point fully
    served. Pricing each full facility 1 (its capacity) and each fully served
    point with an arc to a facility not full 1 (its demand) covers every arc,
    a feasible dual solution, so its value bounds the most persons servable.
    """
    assigned = np.bincount(site, weights=flow, minlength=n_sites)
    served = np.bincount(point, weights=flow, minlength=n_demand)
    full = assigned >= capacity * (1 - 1e-12)
    priced_points = np.zeros(n_demand, bool)
    priced_points[point[~full[site]]] = True
    dual = float(capacity[full & (np.bincount(site, minlength=n_sites) > 0)].sum()) + float(demand[priced_points].sum())
    # the simple bounds: each facility can serve at most its reachable demand, each point at most its reachable supply
    reach_d = np.bincount(site, weights=demand[point], minlength=n_sites)
    reach_c = np.bincount(point, weights=capacity[site], minlength=n_demand)
    by_site = float(np.minimum(capacity, reach_d).sum())
    by_point = float(np.minimum(demand, reach_c).sum())
    return max(min(dual, by_site, by_point), float(served.sum()))


def capacity_aware_coverage(catchment, demand_persons, capacity, limit_s: float, *, method: str = "exact",
                            prefer_near: bool = False, lp_bound: bool = False) -> CapacityResult:
    """
    The share of older people who can get a place (a meal …) within ``limit_s`` with capacities respected.

    Parameters
    ----------
    catchment
        CSR matrix (n_sites, n_demand) of travel costs (seconds) from
        :func:`coverage.reach.catchment_matrix`; absent = beyond its limit.
    demand_persons
        Older people per demand point.
    capacity
        Places per facility in persons (beds, meals a day …; a floor area must
        be turned into places first).
    limit_s
        Time limit T (seconds): only pairs with cost ≤ T can be assigned.
    method
        ``"exact"``: the transportation LP solved by HiGHS on the sparse arcs
        (``scipy.optimize.linprog(method="highs")``). ``"greedy"``: nearest
        pairs first, each taking what both ends still have (fast; at least
        half the optimum), with the gap to an upper bound reported.
    prefer_near
        Exact only: among the assignments serving the most people, take one
        with (nearly) the least total travel time: a second LP whose objective
        adds the travel time as a tie-break worth at most 1e-4 of a person;
        kept only when it serves as many. Slower (several column-generation
        rounds); without it the assignment is whichever optimum HiGHS finds.
    lp_bound
        Greedy only: solve the LP as well, so the bound and gap are exact
        (otherwise the bound is the dual bound of :func:`_dual_bound`).

    Returns
    -------
    CapacityResult
    """
    if method not in ("exact", "greedy"):
        raise ValueError(f"method must be 'exact' or 'greedy', not {method!r}")
    catchment = sparse.csr_matrix(catchment)
    n_sites, n_demand = catchment.shape
    demand = np.asarray(demand_persons, dtype=float)
    capacity = np.asarray(capacity, dtype=float)
    if demand.shape != (n_demand,) or capacity.shape != (n_sites,):
        raise ValueError(f"catchment is {catchment.shape}: need {n_demand} demand values and {n_sites} capacities, "
                         f"got {demand.shape} and {capacity.shape}")
    if (demand < 0).any() or (capacity < 0).any() or not (np.isfinite(demand).all() and np.isfinite(capacity).all()):
        raise ValueError("demand and capacity must be finite and not negative")
    site, point, cost = _arcs(catchment, demand, capacity, limit_s)
    status = "optimal" if method == "exact" else "feasible"
    if len(site) == 0:
        flow = np.zeros(0)
    elif method == "exact":
        # a nearest-first assignment seeds the LP's arcs
        seed = _greedy(site, point, cost, demand, capacity)
        flow, status = _solve_lp(site, point, cost, demand, capacity, prefer_near=prefer_near, start_flow=seed)
        if flow is None:
            flow = np.zeros(len(site))
    else:
        flow = _greedy(site, point, cost, demand, capacity)
    total_served = float(flow.sum())
    if method == "exact" or len(site) == 0:
        bound = total_served
    elif lp_bound:
        optimum, _ = _solve_lp(site, point, cost, demand, capacity, prefer_near=False, start_flow=flow)
        bound = float(optimum.sum()) if optimum is not None else np.nan
    else:
        bound = _dual_bound(site, point, flow, demand, capacity, n_sites, n_demand)
    served = np.minimum(np.bincount(point, weights=flow, minlength=n_demand), demand)
    assigned = np.bincount(site, weights=flow, minlength=n_sites)
    unmet = demand - served
    reachable = np.zeros(n_demand, bool)
    reachable[point] = True
    total_demand = float(demand.sum())
    return CapacityResult(
        flow=sparse.csr_matrix((flow, (site, point)), shape=(n_sites, n_demand)),
        assigned=assigned,
        served=served,
        unmet=unmet,
        unreachable=np.where(reachable, 0.0, unmet),
        share_served=total_served / total_demand if total_demand > 0 else 0.0,
        total_served=total_served,
        total_demand=total_demand,
        mean_seconds=float(flow @ cost) / total_served if total_served > 0 else 0.0,
        method=method,
        status=status,
        bound=bound,
        gap=(bound - total_served) / bound if bound > 0 else 0.0,
    )


def unmet_by_unit(result: CapacityResult, demand: pd.DataFrame, level: str = "village") -> pd.DataFrame:
    """
    Served and unmet older people per unit (village, town, county or urban / rural).

    Parameters
    ----------
    result
        From :func:`capacity_aware_coverage`.
    demand
        The demand points (``elderly`` and ``village_code`` / ``town_code`` /
        ``county_code`` / ``urban``), one row per catchment column.
    level
        ``village``, ``town``, ``county`` or ``urban``.

    Returns
    -------
    pandas.DataFrame
        Indexed by unit: ``elderly``, ``served``, ``unmet``, ``unreachable``
        (unmet at points that reach no facility), ``share_served``; most unmet first.
    """
    columns = {"village": "village_code", "town": "town_code", "county": "county_code", "urban": "urban"}
    if level not in columns:
        raise ValueError(f"level must be one of {', '.join(columns)}, not {level!r}")
    key = columns[level]
    if level == "urban":
        flag = demand[key].astype("boolean")
        groups = np.where(flag.isna().to_numpy(), "unknown", np.where(flag.fillna(False).to_numpy(bool), "urban", "rural"))
    else:
        groups = demand[key].astype(object).where(demand[key].notna(), "unknown").astype(str).to_numpy()
    frame = pd.DataFrame({level: groups, "elderly": result.served + result.unmet, "served": result.served,
                          "unmet": result.unmet, "unreachable": result.unreachable})
    out = frame.groupby(level, sort=True).sum()
    out["share_served"] = np.where(out["elderly"] > 0, out["served"] / out["elderly"].where(out["elderly"] > 0, 1), 0.0)
    return out.sort_values("unmet", ascending=False, kind="stable")
