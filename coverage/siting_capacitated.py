"""Siting with capacities and by average access: capacitated MCLP, fewest sites of a size, p-median."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from coverage.capacity import capacity_aware_coverage

__all__ = [
    "CapacitatedCoveringModel",
    "CapacitatedMinimumSitesModel",
    "CapacitatedSitingResult",
    "PMedianModel",
]

Method = Literal["auto", "exact", "greedy"]

#: ``method="auto"`` runs the MILP only up to this many arcs (facility × demand pairs within the limit)
#: in the reduced model; beyond it the greedy with the LP-relaxation bound is reported
_MILP_MAX_ARCS = 150_000

#: arcs up to which the LP relaxation (the bound of a heuristic answer) is solved
_LP_MAX_ARCS = 1_500_000

#: candidates the capacitated greedy evaluates exactly (transport LP) at each step, by each of its two
#: cheap rankings (unmet persons in reach; all persons in reach)
_GREEDY_EXACT_TRIES = 6

#: candidates beyond those the greedy tries when none of them adds anybody
_GREEDY_FALLBACK_TRIES = 40

#: the fewest-sites greedy drops redundant sites (one LP each) only up to this many sites
_PRUNE_MAX_SITES = 60

#: relative tolerance on shares and solver values (persons)
_TOL = 1e-7

_MARGINAL_COLUMNS = ["rank", "candidate", "gain", "cumulative", "share"]


@dataclass(frozen=True, eq=False)
class CapacitatedSitingResult:
    """
    New sites chosen by a capacitated covering, minimum-sites or p-median model.

    Attributes
    ----------
    selected
        Candidate indices (rows of the candidates' catchment) of the new sites,
        in the order of ``marginal`` (the best first site first).
    objective
        Covering models: persons served within the limit, capacities
        respected, existing and new facilities together. Minimum sites: the
        same persons served by the set found. p-median: total walking time of
        the older people to their nearest open facility (person-seconds, the
        penalty ``limit_s`` for those beyond every facility's reach).
    objective_unit
        ``"persons"`` or ``"person-seconds"``.
    base_objective
        The same figure with the existing facilities only.
    bound
        Covering: an upper bound on the persons servable with ``p`` new sites.
        Minimum sites: a lower bound on the number of sites. p-median: a lower
        bound on the person-seconds. ``None`` when not computed.
    gap
        Relative gap between ``objective`` (or the number of sites) and
        ``bound``; 0 when proved optimal.
    status
        ``"optimal"`` (proved), ``"time_limit"`` (the MILP stopped, see
        ``gap``), ``"heuristic"`` (greedy, quality given by ``gap``),
        ``"already_met"`` (minimum sites: met without new sites),
        ``"unreachable"`` (minimum sites: even every candidate does not reach
        the target; ``selected`` reaches the highest share found).
    method
        ``"none"``, ``"exact"`` (HiGHS MILP), ``"greedy"`` (covering: the
        site adding the most served persons, found among the most promising
        candidates by the exact transport LP; p-median: the largest saving),
        ``"greedy+interchange"`` (p-median: drop-and-add improvement).
    total_demand
        Older people in the study (persons).
    share_before, share_after
        Covering models: persons served / all older people, before and after.
        p-median: share of the older people within the limit of an open facility.
    served
        Per demand point: persons served (covering models), or seconds to the
        nearest open facility (p-median; ``limit_s`` when beyond reach).
    assigned
        Persons assigned to each new site, in the order of ``selected``
        (covering models); for p-median the persons for whom it is the nearest.
    marginal
        One row per site in order: ``rank``, ``candidate``, ``gain`` (persons
        served more, or person-seconds saved, by this site after the earlier
        ones), ``cumulative`` (the objective after it) and ``share``.
    target_share
        The target of a minimum-sites model, else ``None``.
    info
        Sizes of the reduced model, each phase's value and timings (seconds).
    """

    selected: np.ndarray
    objective: float
    objective_unit: str
    base_objective: float
    bound: float | None
    gap: float | None
    status: str
    method: str
    total_demand: float
    share_before: float
    share_after: float
    served: np.ndarray
    assigned: np.ndarray
    marginal: pd.DataFrame
    target_share: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        """Number of new sites."""
        return len(self.selected)

    def summary(self) -> str:
        """One line for logs."""
        gap = "n/a" if self.gap is None else f"{100 * self.gap:.3f} %"
        return (f"{self.n_sites} new sites ({self.method}, {self.status}, gap {gap}): {self.objective_unit} "
                f"{self.base_objective:,.1f} -> {self.objective:,.1f}; share {100 * self.share_before:.2f} % -> "
                f"{100 * self.share_after:.2f} %")


# --- inputs ----------------------------------------------------------------------------------------

def _csr(matrix, n_demand: int | None, name: str) -> sparse.csr_matrix:
    m = sparse.csr_matrix(matrix, dtype=float)
    m.sum_duplicates()
    if n_demand is not None and m.shape[1] != n_demand:
        raise ValueError(f"{name} has {m.shape[1]} demand columns, the demand has {n_demand}")
    return m


def _check_common(candidates, demand, existing, limit_s):
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 1 or not np.isfinite(demand).all() or (demand < 0).any():
        raise ValueError("demand must be a 1-D array of finite, non-negative persons")
    cand = _csr(candidates, demand.size, "the candidates' catchment")
    ex = _csr(existing, demand.size, "the existing facilities' catchment") if existing is not None else \
        sparse.csr_matrix((0, demand.size))
    if limit_s is None:
        limit_s = max(float(cand.data.max()) if cand.nnz else 0.0, float(ex.data.max()) if ex.nnz else 0.0)
    limit_s = float(limit_s)
    if not limit_s >= 0:
        raise ValueError(f"limit_s must be a non-negative number of seconds, got {limit_s!r}")
    return cand, ex, demand, limit_s


def _capacities(value, n: int, name: str) -> np.ndarray:
    cap = np.broadcast_to(np.asarray(value, dtype=float), (n,)).astype(float)
    if not np.isfinite(cap).all() or (cap < 0).any():
        raise ValueError(f"{name} must be finite and not negative (persons)")
    return cap


def _check_p(p) -> int:
    if isinstance(p, bool) or int(p) != p or p < 0:
        raise ValueError(f"p must be a whole number >= 0, got {p!r}")
    return int(p)


def _check_method(method: str) -> None:
    if method not in ("auto", "exact", "greedy"):
        raise ValueError(f"method must be 'auto', 'exact' or 'greedy', not {method!r}")


def _arcs(matrix: sparse.csr_matrix, limit_s: float, demand: np.ndarray):
    coo = matrix.tocoo()
    keep = (coo.data <= limit_s) & (demand[coo.col] > 0)
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep].astype(float)


def _gap_max(bound: float | None, value: float) -> float | None:
    if bound is None:
        return None
    gap = (bound - value) / bound if bound > 0 else 0.0
    return 0.0 if gap < 1e-9 else float(gap)


# --- capacitated covering: shared machinery ---------------------------------------------------------

class _Transport:
    """
    Existing facilities (always open) and candidates of a given capacity on the arcs within the limit.

    Candidates reaching no older person are dropped; demand points reaching no
    facility at all stay out of the model (they are never served).
    """

    def __init__(self, candidates, demand, capacity, existing, existing_capacity, limit_s):
        cand, ex, self.demand, self.limit_s = _check_common(candidates, demand, existing, limit_s)
        self.n_candidates = cand.shape[0]
        self.capacity = _capacities(capacity, self.n_candidates, "capacity")
        self.existing_capacity = _capacities(
            existing_capacity if existing is not None else np.zeros(0), ex.shape[0], "existing_capacity")
        self.cand_full = cand
        self.ex_full = ex
        site, point, cost = _arcs(cand, self.limit_s, self.demand)
        useful = np.zeros(self.n_candidates, bool)
        useful[site[self.capacity[site] > 0]] = True
        self.useful = np.flatnonzero(useful)
        keep = useful[site]
        self.c_site, self.c_point, self.c_cost = site[keep], point[keep], cost[keep]
        e_site, e_point, e_cost = _arcs(ex, self.limit_s, self.demand)
        keep = self.existing_capacity[e_site] > 0
        self.e_site, self.e_point, self.e_cost = e_site[keep], e_point[keep], e_cost[keep]
        self.total = float(self.demand.sum())

    def evaluate(self, chosen) -> Any:
        """Exact capacity-aware coverage with the existing facilities and the ``chosen`` candidates."""
        chosen = np.asarray(chosen, dtype=np.int64)
        matrix = sparse.vstack([self.ex_full, self.cand_full[chosen]], format="csr")
        caps = np.concatenate([self.existing_capacity, self.capacity[chosen]])
        return capacity_aware_coverage(matrix, self.demand, caps, self.limit_s, method="exact")

    def model_arrays(self):
        """The arcs with reduced site numbering: existing sites 0..E-1, useful candidates E..E+C-1."""
        n_e = self.existing_capacity.size
        local = np.full(self.n_candidates, -1, dtype=np.int64)
        local[self.useful] = np.arange(self.useful.size)
        site = np.concatenate([self.e_site, n_e + local[self.c_site]])
        point = np.concatenate([self.e_point, self.c_point])
        points, point_row = np.unique(point, return_inverse=True)
        return site, point_row, points, n_e

    def milp(self, *, p: int | None = None, need: float | None = None, max_sites: int | None = None,
             relax: bool = False, time_limit_s: float = 60.0, strong: bool = True) -> dict[str, Any]:
        """
        The capacitated covering MILP (or its LP relaxation) by HiGHS.

        With ``p``: maximise persons served with at most ``p`` new sites. With
        ``need`` (persons): minimise the number of new sites serving at least
        ``need`` (at most ``max_sites`` of them when given).
        """
        from scipy.optimize import Bounds, LinearConstraint, milp

        site, point_row, points, n_e = self.model_arrays()
        n_arcs, n_c, n_pts = site.size, self.useful.size, points.size
        n_var = n_arcs + n_c
        arc = np.arange(n_arcs)
        cap_all = np.concatenate([self.existing_capacity, self.capacity[self.useful]])
        rows, cols, vals = [point_row, n_pts + site], [arc, arc], [np.ones(n_arcs), np.ones(n_arcs)]
        # candidate capacity rows: Σ x − cap_j y_j ≤ 0
        cj = np.arange(n_c)
        rows.append(n_pts + n_e + cj)
        cols.append(n_arcs + cj)
        vals.append(-self.capacity[self.useful])
        n_rows = n_pts + n_e + n_c
        upper = np.concatenate([self.demand[points], self.existing_capacity, np.zeros(n_c)])
        lower = np.full(n_rows, -np.inf)
        arc_upper = np.minimum(self.demand[points][point_row], cap_all[site])
        cand_arc = np.flatnonzero(site >= n_e)
        if strong and cand_arc.size:
            # x_ij ≤ min(d_i, cap) y_j: the same integer optimum, a much tighter LP relaxation
            r = n_rows + np.arange(cand_arc.size)
            rows += [r, r]
            cols += [cand_arc, n_arcs + site[cand_arc] - n_e]
            vals += [np.ones(cand_arc.size), -arc_upper[cand_arc]]
            upper = np.concatenate([upper, np.zeros(cand_arc.size)])
            lower = np.concatenate([lower, np.full(cand_arc.size, -np.inf)])
            n_rows += cand_arc.size
        # the count row (Σ y ≤ p) or the served row (Σ x ≥ need)
        if p is not None:
            rows.append(np.full(n_c, n_rows))
            cols.append(n_arcs + cj)
            vals.append(np.ones(n_c))
            upper, lower = np.append(upper, p), np.append(lower, -np.inf)
            c = np.concatenate([-np.ones(n_arcs), np.zeros(n_c)])
        else:
            rows.append(np.full(n_arcs, n_rows))
            cols.append(arc)
            vals.append(np.ones(n_arcs))
            upper, lower = np.append(upper, np.inf), np.append(lower, need)
            c = np.concatenate([np.zeros(n_arcs), np.ones(n_c)])
            if max_sites is not None:
                rows.append(np.full(n_c, n_rows + 1))
                cols.append(n_arcs + cj)
                vals.append(np.ones(n_c))
                upper, lower = np.append(upper, max_sites), np.append(lower, -np.inf)
        n_rows = upper.size
        a = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                              shape=(n_rows, n_var))
        integrality = np.concatenate([np.zeros(n_arcs), np.zeros(n_c) if relax else np.ones(n_c)])
        bounds = Bounds(np.zeros(n_var), np.concatenate([arc_upper, np.ones(n_c)]))
        t0 = time.perf_counter()
        res = milp(c, constraints=LinearConstraint(a, lower, upper), integrality=integrality, bounds=bounds,
                   options={"time_limit": max(float(time_limit_s), 1.0), "disp": False, "mip_rel_gap": 0.0})
        out: dict[str, Any] = {"status_code": int(res.status), "message": str(res.message),
                               "seconds": time.perf_counter() - t0, "rows": n_rows, "columns": n_var}
        out["objective"] = None if res.x is None else float(res.fun)
        out["dual_bound"] = getattr(res, "mip_dual_bound", None)
        if relax and res.x is not None:
            out["dual_bound"] = float(res.fun)
        out["sites"] = None if res.x is None else self.useful[np.flatnonzero(res.x[n_arcs:] > 0.5)]
        return out


def _order_sites(model: _Transport, chosen: np.ndarray, base_served: float):
    """Greedy order of the chosen sites (the best first) with each one's gain (persons); zero-gain sites dropped."""
    chosen = [int(j) for j in np.unique(np.asarray(chosen, dtype=np.int64))]
    order: list[int] = []
    gains: list[float] = []
    current = base_served
    if len(chosen) > 12:
        # too many for the quadratic re-ordering: in index order
        for j in chosen:
            value = model.evaluate(np.array(order + [j])).total_served
            if value - current > _TOL * max(model.total, 1.0):
                order.append(j)
                gains.append(value - current)
                current = value
        return np.array(order, dtype=np.int64), np.array(gains)
    left = list(chosen)
    while left:
        values = [model.evaluate(np.array(order + [j])).total_served for j in left]
        best = int(np.argmax(values))
        if values[best] - current <= _TOL * max(model.total, 1.0):
            break
        order.append(left.pop(best))
        gains.append(values[best] - current)
        current = values[best]
    return np.array(order, dtype=np.int64), np.array(gains)


def _covering_result(model: _Transport, chosen, *, method: str, status: str, bound: float | None,
                     base_served: float, target_share: float | None = None, bound_unit: str = "persons",
                     info: dict | None = None, gains=None) -> CapacitatedSitingResult:
    if gains is not None and len(gains) == len(chosen):
        # the greedy's own order and exact gains
        keep = np.asarray(gains, dtype=float) > _TOL * max(model.total, 1.0)
        order, gains = np.asarray(chosen, dtype=np.int64)[keep], np.asarray(gains, dtype=float)[keep]
    else:
        order, gains = _order_sites(model, np.asarray(chosen, dtype=np.int64), base_served)
    final = model.evaluate(order)
    total = model.total
    cumulative = base_served + np.cumsum(gains) if gains.size else np.zeros(0)
    marginal = pd.DataFrame({"rank": np.arange(1, order.size + 1), "candidate": order, "gain": gains,
                             "cumulative": cumulative, "share": cumulative / total if total > 0 else cumulative * 0},
                            columns=_MARGINAL_COLUMNS)
    served = float(final.total_served)
    if bound_unit == "persons":
        if bound is not None:
            bound = max(float(bound), served)
        gap = _gap_max(bound, served)
    else:
        bound = None if bound is None else float(min(bound, order.size))
        gap = None if bound is None else ((order.size - bound) / order.size if order.size else 0.0)
    if gap == 0.0 and status == "heuristic":
        status = "optimal"
    n_e = model.existing_capacity.size
    return CapacitatedSitingResult(
        selected=order, objective=served, objective_unit="persons", base_objective=base_served, bound=bound,
        gap=gap, status=status, method=method, total_demand=total,
        share_before=base_served / total if total > 0 else 0.0, share_after=served / total if total > 0 else 0.0,
        served=final.served, assigned=final.assigned[n_e:], marginal=marginal, target_share=target_share,
        info=dict(info or {}))


@dataclass(frozen=True)
class _Flow:
    """What the greedy carries from step to step: unmet persons per demand point and persons served."""

    unmet: np.ndarray
    total_served: float


def _fill(m: _Transport, current, j: int) -> _Flow:
    """Site ``j``'s places given to the unmet persons in its reach, nearest first."""
    arcs = np.flatnonzero(m.c_site == j)
    arcs = arcs[np.argsort(m.c_cost[arcs], kind="stable")]
    unmet = np.array(current.unmet, dtype=float, copy=True)
    left = float(m.capacity[j])
    for i in m.c_point[arcs]:
        take = min(unmet[i], left)
        unmet[i] -= take
        left -= take
        if left <= 0:
            break
    return _Flow(unmet, float(current.total_served) + float(m.capacity[j]) - left)


class _CapacitatedBase:
    """Inputs shared by the two capacitated models (see :class:`CapacitatedCoveringModel`)."""

    def __init__(self, candidates, demand, capacity, *, existing=None, existing_capacity=None,
                 limit_s: float | None = None) -> None:
        if existing is not None and existing_capacity is None:
            raise ValueError("existing_capacity is needed with existing (persons per existing facility)")
        self.model = _Transport(candidates, demand, capacity, existing, existing_capacity, limit_s)
        t0 = time.perf_counter()
        self.base = self.model.evaluate(np.zeros(0, dtype=np.int64))
        self._info: dict[str, Any] = {
            "candidates": int(self.model.n_candidates), "useful_candidates": int(self.model.useful.size),
            "arcs": int(self.model.c_site.size + self.model.e_site.size), "base_s": time.perf_counter() - t0}

    def _greedy_step(self, chosen: list[int], current) -> tuple[int | None, Any]:
        """The candidate adding the most served persons, among the most promising by two cheap rankings."""
        m = self.model
        unmet = current.unmet
        left = np.setdiff1d(m.useful, np.array(chosen, dtype=np.int64))
        if left.size == 0:
            return None, current
        # cheap rankings: unmet persons in reach (what the site can serve without moving anybody) and
        # all persons in reach (what it can take over from a full facility), both capped at its capacity
        in_reach_unmet = np.bincount(m.c_site, weights=unmet[m.c_point], minlength=m.n_candidates)
        in_reach = np.bincount(m.c_site, weights=m.demand[m.c_point], minlength=m.n_candidates)
        first = np.minimum(m.capacity, in_reach_unmet)[left]
        second = np.minimum(m.capacity, in_reach)[left]
        top_cap = float(m.capacity[left].max())
        full = np.flatnonzero(first >= top_cap * (1 - 1e-12))
        if full.size and top_cap > 0:
            # a site with at least its capacity of unmet persons in reach gains its whole capacity, the
            # most any site can gain: take it without an LP (the most unmet persons around first), and
            # fill its places nearest first -- still an optimal flow, since the optimum grows by at most
            # the new site's capacity
            j = int(left[full[np.argmax(in_reach_unmet[left[full]])]])
            return j, _fill(m, current, j)
        tries = np.unique(np.concatenate([left[np.argsort(-first, kind="stable")[:_GREEDY_EXACT_TRIES]],
                                          left[np.argsort(-second, kind="stable")[:_GREEDY_EXACT_TRIES]]]))
        best, best_res = None, current
        for j in tries:
            res = m.evaluate(np.array(chosen + [int(j)]))
            if res.total_served > best_res.total_served + _TOL * max(m.total, 1.0):
                best, best_res = int(j), res
        reachable_unmet = float(unmet[np.union1d(m.c_point, m.e_point)].sum())
        if best is None and reachable_unmet > _TOL * max(m.total, 1.0):
            # none of the promising ones adds anybody, yet somebody in reach is unmet: the first of the
            # next candidates (by persons in reach) that adds anybody
            others = [j for j in left[np.argsort(-second, kind="stable")] if j not in tries]
            for j in others[:_GREEDY_FALLBACK_TRIES]:
                res = m.evaluate(np.array(chosen + [int(j)]))
                if res.total_served > current.total_served + _TOL * max(m.total, 1.0):
                    return int(j), res
        return best, best_res

    def _milp_fits(self, method: str) -> bool:
        arcs = self.model.c_site.size + self.model.e_site.size
        return method == "exact" or (method == "auto" and arcs <= _MILP_MAX_ARCS)


class CapacitatedCoveringModel(_CapacitatedBase):
    """
    Capacitated maximal covering: ``p`` new facilities of a given size serving the most older people within T.

    Existing facilities stay open with their capacities; each new facility
    serves at most ``capacity`` persons; a person is served by a facility
    within the limit with room for them. The objective is the capacity-aware
    coverage of :func:`coverage.capacity.capacity_aware_coverage` (persons).

    Parameters
    ----------
    candidates
        CSR matrix (n_candidates, n_demand) of walking seconds within the
        limit, from :func:`coverage.reach.catchment_matrix`.
    demand
        Older people per demand point (persons).
    capacity
        Places of each new facility (persons: beds, meals a day …); a scalar
        or one value per candidate.
    p
        Number of new facilities (>= 0).
    existing, existing_capacity
        Catchment (n_existing, n_demand) of the facilities already there and
        their capacities (persons); default: none.
    limit_s
        Only pairs costing at most this (seconds) can be assigned; default
        every stored entry.

    Notes
    -----
    The MILP (HiGHS by :func:`scipy.optimize.milp`): binary ``y_j`` per
    useful candidate, flows ``x_ij >= 0`` on the arcs within the limit,
    ``Σ_j x_ij <= d_i``, ``Σ_i x_ij <= cap_j`` (existing) or
    ``<= cap y_j`` (new), ``x_ij <= min(d_i, cap) y_j`` (tightens the LP
    relaxation, same optimum) and ``Σ y_j <= p`` (serving more never hurts, so
    "<= p" has the optimum of "= p"). Demand points reaching no candidate
    keep their arcs to the existing facilities, since they share those
    facilities' places with the others.
    """

    def __init__(self, candidates, demand, capacity, p: int, *, existing=None, existing_capacity=None,
                 limit_s: float | None = None) -> None:
        self.p = _check_p(p)
        super().__init__(candidates, demand, capacity, existing=existing, existing_capacity=existing_capacity,
                         limit_s=limit_s)

    def solve(self, method: Method = "auto", *, time_limit_s: float = 60.0) -> CapacitatedSitingResult:
        """
        Choose the sites.

        Parameters
        ----------
        method
            ``"exact"`` (MILP), ``"greedy"`` (greedy with the LP-relaxation
            bound) or ``"auto"`` (greedy, then the MILP when the model has at
            most :data:`_MILP_MAX_ARCS` arcs, keeping the better answer).
        time_limit_s
            Budget of the MILP (seconds); at the limit the better of its
            incumbent and the greedy is kept, with HiGHS's dual bound.

        Returns
        -------
        CapacitatedSitingResult
            ``objective`` persons served (existing and new), ``bound`` an
            upper bound on it.
        """
        _check_method(method)
        m, info = self.model, dict(self._info)
        base = float(self.base.total_served)
        if self.p == 0 or m.useful.size == 0:
            return _covering_result(m, [], method="none", status="optimal", bound=base, base_served=base, info=info)
        t0 = time.perf_counter()
        chosen: list[int] = []
        gains: list[float] = []
        current = self.base
        if method in ("greedy", "auto"):
            for _ in range(min(self.p, m.useful.size)):
                before = float(current.total_served)
                j, current = self._greedy_step(chosen, current)
                if j is None:
                    break
                chosen.append(j)
                gains.append(float(current.total_served) - before)
            info["greedy_s"] = time.perf_counter() - t0
            info["greedy_objective"] = float(current.total_served)
        if not self._milp_fits(method):
            bound = None
            if m.c_site.size + m.e_site.size <= _LP_MAX_ARCS:
                lp = m.milp(p=self.p, relax=True, time_limit_s=time_limit_s)
                info["lp"] = {k: v for k, v in lp.items() if k != "sites"}
                bound = -lp["objective"] if lp["objective"] is not None else None
            return _covering_result(m, chosen, method="greedy", status="heuristic", bound=bound, base_served=base,
                                    info=info, gains=gains)
        budget = time_limit_s - (time.perf_counter() - t0) if method == "auto" else time_limit_s
        sol = m.milp(p=self.p, time_limit_s=max(budget, 1.0))
        info["milp"] = {k: v for k, v in sol.items() if k != "sites"}
        bound = -sol["dual_bound"] if sol["dual_bound"] is not None else None
        if sol["sites"] is not None:
            milp_value = float(m.evaluate(sol["sites"]).total_served)
            if milp_value >= float(current.total_served) - _TOL * max(m.total, 1.0) or not chosen:
                status = "optimal" if sol["status_code"] == 0 else "time_limit"
                if sol["status_code"] == 0:
                    bound = milp_value
                return _covering_result(m, sol["sites"], method="exact", status=status, bound=bound,
                                        base_served=base, info=info)
        status = "time_limit" if sol["status_code"] == 1 else "heuristic"
        return _covering_result(m, chosen, method="greedy", status=status, bound=bound, base_served=base, info=info,
                                gains=gains)


class CapacitatedMinimumSitesModel(_CapacitatedBase):
    """
    The fewest new facilities of a given size so that a share of the older people is served within T.

    Parameters
    ----------
    candidates, demand, capacity, existing, existing_capacity, limit_s
        As for :class:`CapacitatedCoveringModel`.
    target_share
        Share (0..1] of all older people to be served, capacities respected.

    Notes
    -----
    The MILP minimises ``Σ y_j`` subject to the constraints of
    :class:`CapacitatedCoveringModel` and ``Σ x_ij >= target × Σ d_i``. The
    greedy adds the site serving the most more people until the target is
    met, then drops sites the target does not need; its bound is the LP
    relaxation rounded up.
    """

    def __init__(self, candidates, demand, capacity, target_share: float, *, existing=None,
                 existing_capacity=None, limit_s: float | None = None) -> None:
        share = float(target_share)
        if not 0.0 < share <= 1.0:
            raise ValueError(f"target_share must be more than 0 and at most 1, got {target_share!r}")
        self.target_share = share
        super().__init__(candidates, demand, capacity, existing=existing, existing_capacity=existing_capacity,
                         limit_s=limit_s)

    def solve(self, method: Method = "auto", *, time_limit_s: float = 60.0) -> CapacitatedSitingResult:
        """
        Find the fewest sites.

        Returns
        -------
        CapacitatedSitingResult
            ``bound`` a lower bound on the number of sites, ``gap`` =
            (sites − bound) / sites; ``status`` ``"already_met"`` or
            ``"unreachable"`` where that applies.
        """
        _check_method(method)
        m, info = self.model, dict(self._info)
        base = float(self.base.total_served)
        need = self.target_share * m.total - _TOL * max(m.total, 1.0)
        info["need_persons"] = float(self.target_share * m.total)
        kw = {"base_served": base, "target_share": self.target_share, "bound_unit": "sites"}
        if base >= need:
            return _covering_result(m, [], method="none", status="already_met", bound=0.0, info=info, **kw)
        everything = m.evaluate(m.useful)
        info["best_share_achievable"] = everything.share_served
        reachable = everything.total_served >= need
        goal = need if reachable else everything.total_served - _TOL * max(m.total, 1.0)
        t0 = time.perf_counter()
        chosen: list[int] = []
        gains: list[float] | None = []
        current = self.base
        while current.total_served < goal and len(chosen) < m.useful.size:
            before = float(current.total_served)
            j, current = self._greedy_step(chosen, current)
            if j is None:
                break
            chosen.append(j)
            gains.append(float(current.total_served) - before)
        if current.total_served < goal:
            # the cheap rankings missed what is left: all candidates serve the goal
            chosen, current, gains = [int(j) for j in m.useful], everything, None
        if len(chosen) <= _PRUNE_MAX_SITES:
            pruned = self._prune(chosen, goal)
            if len(pruned) < len(chosen):
                chosen, gains = pruned, None
        info["pruned"] = len(chosen) <= _PRUNE_MAX_SITES
        info["greedy_s"] = time.perf_counter() - t0
        info["greedy_sites"] = len(chosen)
        lower = 1.0
        if m.c_site.size + m.e_site.size <= _LP_MAX_ARCS:
            lp = m.milp(need=goal, relax=True, time_limit_s=time_limit_s)
            info["lp"] = {k: v for k, v in lp.items() if k != "sites"}
            if lp["objective"] is not None:
                lower = max(lower, float(np.ceil(lp["objective"] - 1e-6)))
        status_fail = "unreachable" if not reachable else None
        if lower >= len(chosen) or not self._milp_fits(method):
            status = status_fail or ("optimal" if lower >= len(chosen) else "heuristic")
            return _covering_result(m, chosen, method="greedy", status=status, bound=lower, info=info, gains=gains,
                                    **kw)
        sol = m.milp(need=goal, max_sites=len(chosen), time_limit_s=time_limit_s)
        info["milp"] = {k: v for k, v in sol.items() if k != "sites"}
        if sol["sites"] is not None and sol["sites"].size <= len(chosen):
            result_sites = sol["sites"]
            if m.evaluate(result_sites).total_served >= goal - _TOL * max(m.total, 1.0):
                chosen = [int(j) for j in result_sites]
                if sol["status_code"] == 0:
                    lower = float(len(chosen))
                method_name = "exact"
            else:
                method_name = "greedy"
        else:
            method_name = "greedy"
        if method_name == "exact":
            gains = None
        if sol["dual_bound"] is not None:
            lower = max(lower, float(np.ceil(sol["dual_bound"] - 1e-6)))
        status = status_fail or ("optimal" if lower >= len(chosen) else
                                 ("time_limit" if sol["status_code"] == 1 else "heuristic"))
        return _covering_result(m, chosen, method=method_name, status=status, bound=lower, info=info, gains=gains,
                                **kw)

    def _prune(self, chosen: list[int], goal: float) -> list[int]:
        """Drop sites (the latest first) while the rest still serve ``goal`` persons."""
        for j in list(reversed(chosen)):
            rest = [k for k in chosen if k != j]
            if self.model.evaluate(np.array(rest, dtype=np.int64)).total_served >= goal:
                chosen = rest
        return chosen


# --- p-median ---------------------------------------------------------------------------------------

class PMedianModel:
    """
    p-median: ``p`` new sites minimising the older people's total walking time to their nearest open facility.

    For planners who ask for average access rather than coverage. Existing
    facilities stay open. Somebody with no facility within the catchment's
    limit counts the limit itself (``limit_s`` seconds, the penalty): the
    model cannot tell 20 from 60 minutes beyond a 15-minute catchment, so the
    objective is "total seconds, capped at the limit". Capacities play no part.

    Parameters
    ----------
    candidates
        CSR matrix (n_candidates, n_demand) of walking seconds within the
        limit (:func:`coverage.reach.catchment_matrix`).
    demand
        Older people per demand point (persons).
    p
        Number of new sites (>= 0).
    existing
        Catchment (n_existing, n_demand) of the existing facilities, or None.
    limit_s
        The catchment's search limit (seconds), also the penalty; default the
        largest stored cost. Entries above it are ignored.

    Notes
    -----
    Reduced to savings: each point's fallback ``b_i`` is its nearest existing
    facility's seconds (or the penalty); only candidate arcs cheaper than
    ``b_i`` are kept, worth ``d_i (b_i − c_ij)``. The MILP maximises the
    savings with ``z_ij <= y_j``, ``Σ_j z_ij <= 1`` and ``Σ y_j <= p``.
    The greedy (largest saving first) is improved by drop-and-add
    interchanges; its bound is the LP relaxation (and the submodular online
    bound), both as person-seconds.
    """

    def __init__(self, candidates, demand, p: int, *, existing=None, limit_s: float | None = None) -> None:
        self.p = _check_p(p)
        cand, ex, self.demand, self.limit_s = _check_common(candidates, demand, existing, limit_s)
        self.n_candidates = cand.shape[0]
        e_site, e_point, e_cost = _arcs(ex, self.limit_s, self.demand)
        fallback = np.full(self.demand.size, self.limit_s)
        np.minimum.at(fallback, e_point, e_cost)
        self.fallback = fallback
        site, point, cost = _arcs(cand, self.limit_s, self.demand)
        keep = cost < fallback[point]
        # arcs sorted by candidate, so a set's arcs are slices (``_ptr``)
        order = np.lexsort((point[keep], site[keep]))
        self.site, self.point, self.cost = site[keep][order], point[keep][order], cost[keep][order]
        self._ptr = np.searchsorted(self.site, np.arange(self.n_candidates + 1))
        self.saving = self.demand[self.point] * (fallback[self.point] - self.cost)
        self.useful = np.unique(self.site)
        self.base_cost = float(self.demand @ fallback)
        self.total = float(self.demand.sum())
        self._info: dict[str, Any] = {"candidates": int(self.n_candidates), "useful_candidates": int(self.useful.size),
                                      "arcs": int(self.site.size), "penalty_s": self.limit_s}

    def point_seconds(self, chosen) -> np.ndarray:
        """Seconds from each demand point to its nearest open facility (the penalty beyond reach)."""
        cur = self.fallback.copy()
        chosen = np.asarray(chosen, dtype=np.int64)
        if chosen.size:
            arcs = np.concatenate([np.arange(self._ptr[j], self._ptr[j + 1]) for j in chosen])
            np.minimum.at(cur, self.point[arcs], self.cost[arcs])
        return cur

    def _gains(self, cur: np.ndarray) -> np.ndarray:
        per_arc = self.demand[self.point] * np.maximum(cur[self.point] - self.cost, 0.0)
        return np.bincount(self.site, weights=per_arc, minlength=self.n_candidates)

    def _greedy(self) -> list[int]:
        chosen: list[int] = []
        cur = self.fallback.copy()
        for _ in range(min(self.p, self.useful.size)):
            gains = self._gains(cur)
            gains[chosen] = -1.0
            j = int(np.argmax(gains))
            if gains[j] <= 0:
                break
            chosen.append(j)
            cur = self.point_seconds(chosen)
        return chosen

    def _interchange(self, chosen: list[int], deadline: float) -> tuple[list[int], int]:
        """Drop one site and add the best other while that lowers the total (person-seconds)."""
        best_cost = float(self.demand @ self.point_seconds(chosen))
        moves = 0
        improved = True
        while improved and time.perf_counter() < deadline:
            improved = False
            for out in list(chosen):
                rest = [k for k in chosen if k != out]
                gains = self._gains(self.point_seconds(rest))
                gains[rest] = -1.0
                j = int(np.argmax(gains))
                trial = rest + [j]
                cost = float(self.demand @ self.point_seconds(trial))
                if cost < best_cost - 1e-9 * max(best_cost, 1.0):
                    chosen, best_cost, improved = trial, cost, True
                    moves += 1
                    break
        return chosen, moves

    def _online_bound(self, chosen: list[int]) -> float:
        """Lower bound on the person-seconds: the objective minus the p largest single-site savings from it."""
        cur = self.point_seconds(chosen)
        gains = np.sort(self._gains(cur))[::-1][: self.p]
        return float(self.demand @ cur) - float(np.maximum(gains, 0).sum())

    def _milp(self, relax: bool, time_limit_s: float) -> dict[str, Any]:
        from scipy.optimize import Bounds, LinearConstraint, milp

        local = np.full(self.n_candidates, -1, dtype=np.int64)
        local[self.useful] = np.arange(self.useful.size)
        points, point_row = np.unique(self.point, return_inverse=True)
        n_arcs, n_c, n_pts = self.site.size, self.useful.size, points.size
        arc = np.arange(n_arcs)
        rows = np.concatenate([point_row, n_pts + arc, n_pts + arc, np.full(n_c, n_pts + n_arcs)])
        cols = np.concatenate([arc, arc, n_arcs + local[self.site], n_arcs + np.arange(n_c)])
        vals = np.concatenate([np.ones(n_arcs), np.ones(n_arcs), -np.ones(n_arcs), np.ones(n_c)])
        a = sparse.csr_matrix((vals, (rows, cols)), shape=(n_pts + n_arcs + 1, n_arcs + n_c))
        upper = np.concatenate([np.ones(n_pts), np.zeros(n_arcs), [self.p]])
        c = np.concatenate([-self.saving, np.zeros(n_c)])
        integrality = np.concatenate([np.zeros(n_arcs), np.zeros(n_c) if relax else np.ones(n_c)])
        t0 = time.perf_counter()
        res = milp(c, constraints=LinearConstraint(a, -np.inf, upper), integrality=integrality,
                   bounds=Bounds(0.0, 1.0), options={"time_limit": max(float(time_limit_s), 1.0), "disp": False,
                                                     "mip_rel_gap": 0.0})
        out: dict[str, Any] = {"status_code": int(res.status), "message": str(res.message),
                               "seconds": time.perf_counter() - t0}
        out["saving"] = None if res.x is None else -float(res.fun)
        dual = getattr(res, "mip_dual_bound", None)
        out["saving_bound"] = (-float(res.fun) if relax and res.x is not None else
                               (-float(dual) if dual is not None else None))
        out["sites"] = None if res.x is None or relax else self.useful[np.flatnonzero(res.x[n_arcs:] > 0.5)]
        return out

    def solve(self, method: Method = "auto", *, time_limit_s: float = 60.0) -> CapacitatedSitingResult:
        """
        Choose the sites.

        Parameters
        ----------
        method
            ``"exact"`` (MILP), ``"greedy"`` (greedy + interchange, with the
            LP-relaxation bound) or ``"auto"`` (greedy, then the MILP when the
            reduced model has at most :data:`_MILP_MAX_ARCS` arcs).
        time_limit_s
            Budget (seconds) of the MILP and of the interchange.

        Returns
        -------
        CapacitatedSitingResult
            ``objective`` person-seconds (lower is better), ``bound`` a lower
            bound on it; ``served`` seconds per demand point.
        """
        _check_method(method)
        info = dict(self._info)
        t0 = time.perf_counter()
        if self.p == 0 or self.useful.size == 0:
            return self._result([], "none", "optimal", self.base_cost, info)
        chosen, method_name = [], "greedy"
        bound = None
        if method in ("greedy", "auto"):
            chosen = self._greedy()
            chosen, moves = self._interchange(chosen, t0 + 0.3 * time_limit_s)
            method_name = "greedy+interchange" if moves else "greedy"
            info.update(greedy_s=time.perf_counter() - t0, interchange_moves=moves)
            bound = self._online_bound(chosen)
        if method == "exact" or (method == "auto" and self.site.size <= _MILP_MAX_ARCS):
            # "auto": the MILP gets what the greedy left of the budget
            budget = time_limit_s - (time.perf_counter() - t0) if method == "auto" else time_limit_s
            sol = self._milp(False, max(budget, 1.0))
            info["milp"] = {k: v for k, v in sol.items() if k != "sites"}
            if sol["saving_bound"] is not None:
                milp_bound = self.base_cost - sol["saving_bound"]
                bound = milp_bound if bound is None else max(bound, milp_bound)
            if sol["sites"] is not None:
                value = float(self.demand @ self.point_seconds(sol["sites"]))
                current = float(self.demand @ self.point_seconds(chosen)) if chosen else np.inf
                if value <= current + 1e-9 * max(abs(value), 1.0):
                    chosen, method_name = [int(j) for j in sol["sites"]], "exact"
                    if sol["status_code"] == 0:
                        bound = value
            status = "time_limit" if sol["status_code"] == 1 else "heuristic"
        else:
            if self.site.size <= _LP_MAX_ARCS:
                lp = self._milp(True, time_limit_s)
                info["lp"] = {k: v for k, v in lp.items() if k != "sites"}
                if lp["saving_bound"] is not None:
                    bound = max(bound, self.base_cost - lp["saving_bound"])
            status = "heuristic"
        info["solve_s"] = time.perf_counter() - t0
        return self._result(chosen, method_name, status, bound, info)

    def _result(self, chosen, method: str, status: str, bound, info) -> CapacitatedSitingResult:
        # greedy order among the chosen, with each one's saving (person-seconds)
        left = [int(j) for j in np.unique(np.asarray(chosen, dtype=np.int64))]
        order, gains = [], []
        cur = self.fallback.copy()
        while left:
            g = self._gains(cur)[left]
            k = int(np.argmax(g))
            if g[k] <= 0:
                break
            order.append(left.pop(k))
            gains.append(float(g[k]))
            cur = self.point_seconds(order)
        objective = float(self.demand @ cur)
        gains_arr = np.array(gains)
        cumulative = self.base_cost - np.cumsum(gains_arr) if gains else np.zeros(0)
        within = cur < self.limit_s
        within_before = self.fallback < self.limit_s
        total = self.total
        share_of = (lambda mask: float(self.demand[mask].sum()) / total if total > 0 else 0.0)
        shares = [share_of(self.point_seconds(order[: k + 1]) < self.limit_s) for k in range(len(order))]
        marginal = pd.DataFrame({"rank": np.arange(1, len(order) + 1), "candidate": np.array(order, dtype=np.int64),
                                 "gain": gains_arr, "cumulative": cumulative, "share": np.array(shares, dtype=float)},
                                columns=_MARGINAL_COLUMNS)
        if bound is not None:
            bound = min(float(bound), objective)
        gap = None if bound is None else ((objective - bound) / objective if objective > 0 else 0.0)
        if gap is not None and gap < 1e-9:
            gap = 0.0
            if status in ("heuristic", "time_limit"):
                status = "optimal"
        nearest_new = np.zeros(len(order))
        if order:
            # persons for whom a new site is now the nearest open facility
            mask = np.isin(self.site, order)
            best = np.full(self.demand.size, -1, dtype=np.int64)
            arcs = np.flatnonzero(mask & (self.cost <= cur[self.point] + 1e-9))
            best[self.point[arcs]] = self.site[arcs]
            pos = {j: k for k, j in enumerate(order)}
            for i in np.flatnonzero(best >= 0):
                nearest_new[pos[int(best[i])]] += self.demand[i]
        return CapacitatedSitingResult(
            selected=np.array(order, dtype=np.int64), objective=objective, objective_unit="person-seconds",
            base_objective=self.base_cost, bound=bound, gap=gap, status="optimal" if method == "none" else status,
            method=method, total_demand=total, share_before=share_of(within_before), share_after=share_of(within),
            served=cur, assigned=nearest_new, marginal=marginal, info=info)
