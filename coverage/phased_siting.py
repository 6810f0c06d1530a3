"""Phased siting: which candidate sites open in which year, under yearly budgets (a multi-period covering model)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage.phased_milp import phased_lagrangian_bound, phased_lp_bound, phased_milp
from coverage.siting_bounds import _online_bound
from coverage.siting_models import MaximalCoveringModel, Method, _catchment_coverage
from coverage.siting_reduce import _check_inputs, _check_method, _check_share, _dominated_candidates, _merge_groups
from coverage.siting_search import _lazy_greedy

__all__ = ["PhasedCoveringModel", "PhasedSitingResult"]

#: ``method="auto"`` runs the full multi-period MILP up to this many free (group, year) pairs ...
_MILP_MAX_PAIRS = 20_000
#: ... and this many non-zeros in its coverage rows
_MILP_MAX_NNZ = 400_000
#: the kernel takes the Lagrangian's (and the LP's) most-chosen candidates: max(_KERNEL_PER_SITE x total sites,
#: _KERNEL_MIN_CANDIDATES) of each; a larger kernel (3 x total) left HiGHS unfinished at 150 sites in 150 s
_KERNEL_PER_SITE = 1
_KERNEL_MIN_CANDIDATES = 100
#: the LP relaxation is solved (for its bound and kernel seeds) up to this many free (group, year) pairs
_LP_MAX_PAIRS = 50_000
#: relative tolerance when comparing a share with its target
_REL_TOL = 1e-9

_MARGINAL_COLUMNS = ["year", "rank", "candidate", "gain", "covered", "share"]
_YEAR_COLUMNS = ["year", "new_sites", "sites_so_far", "budget", "existing_covered", "covered", "share_existing",
                 "share", "gain", "target_share", "target_met"]


@dataclass(frozen=True, eq=False)
class PhasedSitingResult:
    """
    Which sites open in which year, and the coverage after each year.

    Attributes
    ----------
    years
        The planning years, in order.
    sites_by_year
        Per year the candidate indices (rows of the coverage matrix) opening
        that year, in the order of the marginal curve (best gain first given
        the earlier years and sites).
    opening_year
        Array (n_candidates,): the year each candidate opens in, 0 = never.
    covered
        Boolean (n_years, n_demand): demand covered after each year by
        existing facilities open that year and the new sites so far.
    existing_covered
        Boolean (n_years, n_demand): demand covered by existing facilities
        (including planned / under-construction ones once they open).
    covered_weight, existing_weight
        Arrays (n_years,): persons covered after each year, with and without
        the new sites.
    total_weight
        Total demand weight (persons).
    objective
        Cumulative newly covered weight: ``sum over years of (covered_weight
        - existing_weight)`` (person-years).
    bound
        Upper bound on that objective (person-years) over all plans keeping
        the budgets (and meeting the same targets); ``None`` when unknown.
    gap
        ``(bound - objective) / bound``; 0 when proved optimal.
    method
        ``"none"`` (nothing to open), ``"exact"`` (the multi-period MILP by
        HiGHS), ``"greedy"`` (each year the sites with the best gain over
        the remaining years), ``"kernel"`` (the MILP over the greedy sites,
        the Lagrangian subproblems' sites and the best sites of each year's
        own maximal covering model), ``"scheduled"`` (the last year's own
        maximal-covering sites, put into the years by the greedy).
    status
        ``"optimal"`` (proved: gap 0), ``"time_limit"`` (HiGHS stopped at the
        time limit), ``"heuristic"`` (quality given by ``gap``).
    budgets
        Sites allowed to open per year.
    total_budget
        Sites allowed to open over all years.
    target_shares
        Per year the target share of the total weight (``None`` for none).
    marginal
        DataFrame ``year, rank, candidate, gain, covered, share``: within each
        year the sites in order, ``gain`` = persons newly covered in that year
        given the earlier sites, ``covered`` / ``share`` after the site.
    info
        Diagnostics: reduction sizes, per-year bounds, timings (seconds).
    """

    years: tuple[int, ...]
    sites_by_year: tuple[np.ndarray, ...]
    opening_year: np.ndarray
    covered: np.ndarray
    existing_covered: np.ndarray
    covered_weight: np.ndarray
    existing_weight: np.ndarray
    total_weight: float
    objective: float
    bound: float | None
    gap: float | None
    method: str
    status: str
    budgets: tuple[int, ...]
    total_budget: int
    target_shares: tuple[float | None, ...]
    marginal: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def shares(self) -> np.ndarray:
        """Covered share of the total weight after each year."""
        return self.covered_weight / self.total_weight if self.total_weight > 0 else np.zeros(len(self.years))

    @property
    def targets_met(self) -> tuple[bool | None, ...]:
        """Per year whether its target share is reached (``None`` without a target)."""
        shares = self.shares
        return tuple(None if t is None else bool(s >= t - _REL_TOL) for s, t in zip(shares, self.target_shares))

    def by_year(self) -> pd.DataFrame:
        """
        One row per year: new sites, budget, persons and shares covered, gain, target and whether it is met.

        ``gain`` is the persons the sites opened that year newly cover in that
        year (beyond the existing facilities and the earlier new sites).
        """
        rows, so_far = [], 0
        total = self.total_weight
        # persons newly covered in each year by the sites opened that year (the marginal curve's gains)
        gains = self.marginal.groupby("year")["gain"].sum() if len(self.marginal) else pd.Series(dtype=float)
        for k, year in enumerate(self.years):
            so_far += len(self.sites_by_year[k])
            rows.append({
                "year": year, "new_sites": len(self.sites_by_year[k]), "sites_so_far": so_far,
                "budget": self.budgets[k], "existing_covered": float(self.existing_weight[k]),
                "covered": float(self.covered_weight[k]),
                "share_existing": float(self.existing_weight[k] / total) if total > 0 else 0.0,
                "share": float(self.shares[k]), "gain": float(gains.get(year, 0.0)),
                "target_share": self.target_shares[k], "target_met": self.targets_met[k],
            })
        return pd.DataFrame(rows, columns=_YEAR_COLUMNS)

    def summary(self) -> str:
        """One line for logs."""
        gap = "n/a" if self.gap is None else f"{100 * self.gap:.3f} %"
        shares = ", ".join(f"{y}: {100 * s:.1f} %" for y, s in zip(self.years, self.shares))
        n = sum(len(s) for s in self.sites_by_year)
        return f"{n} new sites over {len(self.years)} years ({self.method}, {self.status}, gap {gap}): {shares}"


@dataclass(frozen=True)
class _PhasedReduced:
    """Reduced phased model: demand groups with the same candidates and the same existing coverage per year."""

    B: sp.csr_array  # (m candidates, g groups) bool
    wg: np.ndarray  # (g,) persons
    eg: np.ndarray  # (T, g) bool: already covered in year t
    cand: np.ndarray  # (m,) original candidate index
    stats: dict[str, Any]


def _check_budgets(budgets: Any, n_years: int, total: Any) -> tuple[np.ndarray, int]:
    b = np.atleast_1d(np.asarray(budgets))
    if b.size == 1 and n_years > 1:
        b = np.repeat(b, n_years)
    if b.size != n_years:
        raise ValueError(f"budgets has {b.size} entries for {n_years} years")
    if not np.all(np.isfinite(b.astype(float))) or np.any(b < 0) or np.any(b.astype(np.int64) != b):
        raise ValueError(f"budgets must be non-negative whole numbers of sites per year, got {list(b)}")
    b = b.astype(np.int64)
    tot = int(b.sum()) if total is None else total
    if int(tot) != tot or tot < 0:
        raise ValueError(f"total must be a non-negative whole number of sites, got {total!r}")
    return b, int(tot)


def _check_existing(existing: Any, n_years: int, n_demand: int) -> np.ndarray:
    if existing is None:
        return np.zeros((n_years, n_demand), dtype=bool)
    e = np.asarray(existing, dtype=bool)
    if e.ndim == 1:
        e = np.broadcast_to(e, (n_years, e.size))
    if e.shape != (n_years, n_demand):
        raise ValueError(f"existing_covered must be (n_demand,) or (n_years, n_demand) = ({n_years}, {n_demand}), "
                         f"got {e.shape}")
    return np.array(e, dtype=bool)


def _check_targets(targets: Any, n_years: int) -> tuple[float | None, ...]:
    if targets is None:
        return (None,) * n_years
    if np.isscalar(targets):
        return (_check_share(targets),) * n_years
    values = list(targets)
    if len(values) != n_years:
        raise ValueError(f"target_shares has {len(values)} entries for {n_years} years")
    return tuple(None if v is None or (isinstance(v, float) and np.isnan(v)) else _check_share(v) for v in values)


def _reduce_phased(a: sp.csr_array, w: np.ndarray, e: np.ndarray) -> _PhasedReduced:
    """Drop demand covered in every year or by no candidate, merge identical demand, drop dominated candidates."""
    t0 = time.perf_counter()
    n_c, n_d = a.shape
    T = e.shape[0]
    at = sp.csr_array(a.T)
    at.sort_indices()
    keep = (np.diff(at.indptr) > 0) & (w > 0) & ~e.all(axis=0)
    d = np.flatnonzero(keep)
    stats: dict[str, Any] = {"n_candidates": n_c, "n_demand": n_d, "n_years": T, "nnz": int(a.nnz),
                             "n_demand_kept": int(d.size)}
    if d.size == 0:
        stats.update(n_groups=0, n_candidates_kept=0, reduce_s=time.perf_counter() - t0)
        return _PhasedReduced(sp.csr_array((0, 0), dtype=bool), np.zeros(0), np.zeros((T, 0), dtype=bool),
                              np.zeros(0, dtype=np.int64), stats)
    # the existing-coverage pattern as T extra columns: identical rows = same candidates and same years covered
    pattern = sp.csr_array(e[:, d].T.astype(np.int8))
    both = sp.hstack([sp.csr_array(at[d], dtype=np.int8), pattern], format="csr")
    both.sort_indices()
    G, wg, _ = _merge_groups(both, w[d])
    G = sp.csr_array(G)
    eg = G[:, n_c:].toarray().T.astype(bool)
    B = sp.csr_array(sp.csr_array(G[:, :n_c]).T, dtype=bool)
    B.sort_indices()
    cand = np.flatnonzero(np.diff(B.indptr) > 0)
    B = sp.csr_array(B[cand])
    if B.shape[0] > 1:
        # a candidate covering a subset of another's groups is never needed: open the other instead
        dom = _dominated_candidates(B)
        stats["dominance_checked"] = dom is not None
        if dom is not None and dom.any():
            B, cand = sp.csr_array(B[~dom]), cand[~dom]
    B.sort_indices()
    stats.update(n_groups=int(wg.size), n_candidates_kept=int(cand.size), reduced_nnz=int(B.nnz),
                 reduce_s=time.perf_counter() - t0)
    return _PhasedReduced(sp.csr_array(B, dtype=bool), wg, eg, cand, stats)


def _rows_cover(B: sp.csr_array, picked: np.ndarray) -> np.ndarray:
    covered = np.zeros(B.shape[1], dtype=bool)
    if len(picked):
        covered[sp.csr_array(B[np.asarray(picked, dtype=np.int64)]).indices] = True
    return covered


class PhasedCoveringModel:
    """
    Multi-period maximal covering: open up to ``budgets[t]`` new sites in year t to cover the most person-years.

    Demand point i counts in year t when an existing facility open that year
    (``existing_covered[t, i]``: planned and under-construction facilities
    enter in their year) or a new site opened in year t or before covers it.
    A site opens once and stays open.

    Objective (documented choice). Lexicographic:

    1. with ``target_shares``, the targets are met as early as possible: the
       earliest year's target first, then the next (weights 2^(T-1-t) on
       "target of year t met", so meeting an earlier year's target outweighs
       every later one);
    2. then the cumulative newly covered weight
       ``sum_t sum_i w_i (covered[t, i] - existing_covered[t, i])``
       (person-years) is maximised, which also rewards covering people early.

    The exact model (HiGHS, :func:`coverage.phased_milp.phased_milp`) has
    binaries ``z[j, t]`` (site j open by year t, non-decreasing in t),
    continuous ``y[g, t] <= sum_{j in N(g)} z[j, t]`` and the yearly and
    total budgets; it runs on the reduced model (demand covered in every
    year or by no candidate dropped; demand with the same candidates and the
    same existing coverage per year merged; dominated candidates dropped).
    Without the MILP, each year's sites are chosen greedily by their gain
    over the remaining years (what planners expect for nested plans), then
    the MILP over a kernel (the greedy sites, the sites the Lagrangian
    subproblems keep choosing and the best sites of each year's own maximal
    covering model) is tried. The bound reported then is the smallest of
    rigorous bounds: the submodular bound of each year summed, the sum over
    the years of each year's own maximal-covering bound with the sites
    allowed by then (which relaxes "opened once, stays open"), and the
    Lagrangian bound of the multi-period model (relaxing the coverage rows;
    by subgradient steps, and from the LP relaxation's duals on models up to
    ``_LP_MAX_PAIRS`` free pairs), which sees the nesting of the years.

    Parameters
    ----------
    coverage
        Sparse matrix (n_candidates, n_demand); a stored non-zero means
        candidate j covers demand i (e.g. :func:`coverage.reach.catchment_matrix`).
    weights
        Persons at each demand point (n_demand,).
    years
        The planning years (e.g. ``[2025, 2026, 2027]``).
    budgets
        Sites that may open in each year: one number for every year, or one per year.
    total
        Sites that may open over all years (default: the sum of ``budgets``),
        so "12 in total, at most 5 a year" is ``budgets=5, total=12``.
    existing_covered
        Boolean (n_demand,) for every year, or (n_years, n_demand): demand
        covered by facilities open in that year. Default: nothing covered.
    target_shares
        Optional share (0..1) of the total weight to reach: one for every
        year or one per year (``None`` for a year without target).
    """

    def __init__(
        self,
        coverage: Any,
        weights: Any,
        years: Any,
        budgets: Any,
        *,
        total: int | None = None,
        existing_covered: Any = None,
        target_shares: Any = None,
    ) -> None:
        self.years = tuple(int(y) for y in years)
        if not self.years or list(self.years) != sorted(set(self.years)):
            raise ValueError(f"years must be increasing and distinct, got {list(years)}")
        T = len(self.years)
        self.coverage, self.weights, _ = _check_inputs(coverage, weights, None)
        self.budgets, self.total = _check_budgets(budgets, T, total)
        self.existing_covered = _check_existing(existing_covered, T, self.coverage.shape[1])
        self.target_shares = _check_targets(target_shares, T)
        self.reduced = _reduce_phased(self.coverage, self.weights, self.existing_covered)
        # sites allowed by the end of each year
        self.cumulative_budget = np.minimum(np.cumsum(self.budgets), self.total)

    @classmethod
    def from_catchment(cls, catchment: Any, weights: Any, years: Any, budgets: Any, *,
                       max_cost: float | None = None, **kwargs: Any) -> PhasedCoveringModel:
        """Model from a catchment matrix (costs as stored values), counting only costs up to ``max_cost``."""
        return cls(_catchment_coverage(catchment, max_cost), weights, years, budgets, **kwargs)

    # ------------------------------------------------------------------

    def _need(self) -> np.ndarray:
        """Per year the persons new sites must newly cover for the target (nan: no target)."""
        total = float(self.weights.sum())
        base = self.existing_covered.astype(float) @ self.weights
        need = np.full(len(self.years), np.nan)
        for t, share in enumerate(self.target_shares):
            if share is not None:
                need[t] = share * total - base[t] - _REL_TOL * total
        return need

    def _plan_value(self, opened: np.ndarray) -> float:
        """Cumulative newly covered weight (person-years) of reduced candidates opening in ``opened`` (year index, -1 never)."""
        red = self.reduced
        value = 0.0
        for t in range(len(self.years)):
            cov = _rows_cover(red.B, np.flatnonzero((opened >= 0) & (opened <= t)))
            value += float(red.wg[cov & ~red.eg[t]].sum())
        return value

    def _greedy(self, allowed: np.ndarray | None = None) -> np.ndarray:
        """
        Year by year the sites with the best gain over the remaining years (lazy greedy).

        With a target not yet met in year t, the year's sites are chosen for that
        year's coverage instead when that reaches the target and the other choice does not.
        """
        red, T = self.reduced, len(self.years)
        B, wg = red.B, red.wg
        need = self._need()
        opened = np.full(B.shape[0], -1, dtype=np.int64)
        cov = red.eg.copy()
        left = self.total
        for t in range(T):
            k = int(min(self.budgets[t], left))
            if k <= 0:
                continue
            still = np.ones(B.shape[0], dtype=bool) if allowed is None else np.isin(np.arange(B.shape[0]), allowed)
            still &= opened < 0
            cand = np.flatnonzero(still)
            value = wg * (~cov[t:]).sum(axis=0)  # persons x years left uncovered from year t on
            pick, _, _ = _lazy_greedy(B, value, k, allowed=cand)
            if np.isfinite(need[t]):
                now = float(wg[(cov[t] | _rows_cover(B, pick)) & ~red.eg[t]].sum())
                if now < need[t]:
                    this_year = wg * ~cov[t]
                    done = float(wg[cov[t] & ~red.eg[t]].sum())
                    alt, _, _ = _lazy_greedy(B, this_year, k, need=need[t] - done, allowed=cand)
                    if float(wg[(cov[t] | _rows_cover(B, alt)) & ~red.eg[t]].sum()) >= need[t]:
                        if alt.size < k:  # fill the rest by the gain over the remaining years
                            rest_cand = np.setdiff1d(cand, alt)
                            cov_alt = _rows_cover(B, alt)
                            value2 = np.where(cov_alt, 0.0, value)
                            extra, _, _ = _lazy_greedy(B, value2, k - alt.size, allowed=rest_cand)
                            alt = np.concatenate([alt, extra])
                        pick = alt
            opened[pick] = t
            left -= pick.size
            cov[t:] |= _rows_cover(B, pick)
        return opened

    def _online_bounds(self, opened: np.ndarray) -> np.ndarray:
        """Per year the submodular bound on year t's newly covered weight with the sites allowed by then."""
        red = self.reduced
        out = np.zeros(len(self.years))
        for t in range(len(self.years)):
            wt = np.where(red.eg[t], 0.0, red.wg)
            cov = _rows_cover(red.B, np.flatnonzero((opened >= 0) & (opened <= t)))
            out[t] = _online_bound(red.B, wt, cov, int(self.cumulative_budget[t]))
        return out

    # ------------------------------------------------------------------

    def solve(self, method: Method = "auto", *, time_limit_s: float = 60.0, mip_rel_gap: float = 0.0) -> PhasedSitingResult:
        """
        Choose the sites and their years.

        Parameters
        ----------
        method
            ``"exact"`` (the multi-period MILP), ``"greedy"`` (greedy per year
            with the submodular bound) or ``"auto"``: the MILP when the reduced
            model is small enough, else greedy, each year's own maximal
            covering bound and the kernel MILP.
        time_limit_s
            Wall-clock budget (seconds) for the solve (the reduction is done
            by the constructor).
        mip_rel_gap
            Relative gap at which the MILP stops (0 = prove optimality).

        Returns
        -------
        PhasedSitingResult
        """
        _check_method(method)
        t_start = time.perf_counter()
        deadline = t_start + float(time_limit_s)
        red = self.reduced
        info: dict[str, Any] = {"reduction": dict(red.stats)}
        m = red.B.shape[0]
        if m == 0 or self.total == 0:
            return self._result(np.full(m, -1, dtype=np.int64), "none", "optimal", 0.0, info, t_start)

        opened = self._greedy()
        value = self._plan_value(opened)
        bounds_t = self._online_bounds(opened)
        info.update(greedy_objective=value, online_bounds=bounds_t.tolist())
        bound = float(bounds_t.sum())
        meth, status = "greedy", "heuristic"

        free_pairs = int((~red.eg).sum())
        nnz_rows = int(((~red.eg).astype(np.int64) @ np.diff(sp.csr_array(red.B.T).indptr)).sum())
        info.update(free_pairs=free_pairs, milp_nnz=nnz_rows)
        fits = free_pairs <= _MILP_MAX_PAIRS and nnz_rows <= _MILP_MAX_NNZ
        if method == "exact" or (method == "auto" and fits):
            sol = phased_milp(red.B, red.wg, red.eg, self.budgets, self.total, self._need(),
                              time_limit_s=max(deadline - time.perf_counter(), 1.0), mip_rel_gap=mip_rel_gap)
            info["milp"] = {k: v for k, v in sol.items() if k != "opened"}
            if sol["opened"] is not None:
                v2 = self._plan_value(sol["opened"])
                if self._better(sol["opened"], v2, opened, value, tie=True):
                    opened, value, meth = sol["opened"], v2, "exact"
            if sol["dual_bound"] is not None:
                bound = min(bound, max(sol["dual_bound"], value))
            if sol["status_code"] == 0 and meth == "exact":
                bound = value
                status = "optimal"
            elif sol["status_code"] == 1:
                status = "time_limit"
            return self._result(opened, meth, status, bound, info, t_start)

        if method == "auto":
            opened, value, bound, meth = self._kernel(opened, value, bounds_t, info, deadline)
        status = "optimal" if bound - value <= 1e-9 * max(bound, 1.0) else "heuristic"
        return self._result(opened, meth, status, bound, info, t_start)

    def _better(self, new: np.ndarray, new_value: float, old: np.ndarray, old_value: float, *, tie: bool) -> bool:
        """Whether plan ``new`` beats ``old`` lexicographically: targets met earliest, then person-years."""
        r_new, r_old = self._targets_rank(new), self._targets_rank(old)
        if r_new != r_old:
            return r_new > r_old
        return new_value >= old_value - 1e-9 if tie else new_value > old_value + 1e-9

    def _targets_rank(self, opened: np.ndarray) -> float:
        """The stage-1 value of a plan: sum of 2^(T-1-t) over the years whose target it meets."""
        red, need = self.reduced, self._need()
        score = 0.0
        for t in range(len(self.years)):
            if np.isfinite(need[t]):
                cov = _rows_cover(red.B, np.flatnonzero((opened >= 0) & (opened <= t)))
                if float(red.wg[cov & ~red.eg[t]].sum()) >= need[t]:
                    score += 2.0 ** (len(self.years) - 1 - t)
        return score

    def _kernel(self, opened, value, bounds_t, info, deadline):
        """
        Bounds and a better plan on a large model.

        1. the Lagrangian bound of the multi-period model by subgradient
           steps (it sees the nesting of the years) and the sites its
           subproblems keep choosing as kernel seeds; on models up to
           ``_LP_MAX_PAIRS`` also the LP relaxation (bound from its duals, and
           its most-open candidates);
        2. each year's own maximal covering model with the sites allowed by
           then: a bound (each year alone) and its best sites as seeds;
        3. the last year's maximal-covering sites scheduled into the years
           by the greedy (often better than the greedy over all candidates
           when many sites are to open);
        4. the phased MILP over the kernel (the greedy's sites and the seeds),
           whose optimum is a feasible plan (not a bound).

        The bound reported is the smallest of these (all are valid).
        """
        red, T = self.reduced, len(self.years)
        t0 = time.perf_counter()
        seeds = [np.flatnonzero(opened >= 0)]
        year_bounds = bounds_t.copy()
        bound = float(bounds_t.sum())
        # Lagrangian bound by subgradient steps (cheap, sees the nesting), and the sites it keeps choosing
        covered = red.eg.copy()
        for t in range(T):
            covered[t] |= _rows_cover(red.B, np.flatnonzero((opened >= 0) & (opened <= t)))
        lag, used, _ = phased_lagrangian_bound(red.B, red.wg, red.eg, self.budgets, self.total, covered, value,
                                               deadline=t0 + 0.35 * (deadline - t0), max_iter=500)
        info["lagrangian_s"] = time.perf_counter() - t0
        info["lagrangian_bound"] = lag
        bound = min(bound, lag)
        frequent = np.argsort(-used, kind="stable")[: max(_KERNEL_PER_SITE * self.total, _KERNEL_MIN_CANDIDATES)]
        seeds.append(frequent[used[frequent] > 0])
        if int((~red.eg).sum()) <= _LP_MAX_PAIRS:
            # the LP relaxation by HiGHS: its dual bound and its most-open candidates
            t1 = time.perf_counter()
            lp, z_last = phased_lp_bound(red.B, red.wg, red.eg, self.budgets, self.total,
                                         time_limit_s=max(0.3 * (deadline - t1), 1.0))
            info["lp_s"] = time.perf_counter() - t1
            info["lp_bound"] = lp
            if lp is not None:
                bound = min(bound, lp)
                top = np.argsort(-z_last, kind="stable")[: max(_KERNEL_PER_SITE * self.total, _KERNEL_MIN_CANDIDATES)]
                seeds.append(top[z_last[top] > 1e-6])
        # each year's own maximal covering model, in half of the time left (the other half: the kernel)
        mclp_deadline = time.perf_counter() + 0.5 * (deadline - time.perf_counter())
        for t in range(T):
            share = (mclp_deadline - time.perf_counter()) / (T - t)
            if share < 1.0:
                break
            mclp = MaximalCoveringModel(red.B, red.wg, int(self.cumulative_budget[t]), already_covered=red.eg[t])
            res = mclp.solve(time_limit_s=share)
            if res.bound is not None:
                year_bounds[t] = min(year_bounds[t], res.bound)
            seeds.append(np.asarray(res.selected, dtype=np.int64))
        info["year_bounds"] = year_bounds.tolist()
        bound = min(bound, float(year_bounds.sum()))
        meth = "greedy"
        # the last year's own best sites, scheduled into the years by the same greedy
        if len(seeds) > 1 and seeds[-1].size:
            scheduled = self._greedy(allowed=seeds[-1])
            v_s = self._plan_value(scheduled)
            info["scheduled_objective"] = v_s
            if self._better(scheduled, v_s, opened, value, tie=False):
                opened, value, meth = scheduled, v_s, "scheduled"
        support = np.unique(np.concatenate(seeds))
        info["kernel_candidates"] = int(support.size)
        left = deadline - time.perf_counter()
        if left > 1.0 and support.size:
            sub = _reduce_phased(sp.csr_array(red.B[support]), red.wg, red.eg)
            sol = phased_milp(sub.B, sub.wg, sub.eg, self.budgets, self.total, self._need(), time_limit_s=left)
            info["kernel_milp"] = {k: v for k, v in sol.items() if k != "opened"}
            if sol["opened"] is not None:
                cand_open = np.full(red.B.shape[0], -1, dtype=np.int64)
                cand_open[support[sub.cand]] = sol["opened"]
                v2 = self._plan_value(cand_open)
                if self._better(cand_open, v2, opened, value, tie=False):
                    opened, value, meth = cand_open, v2, "kernel"
        info["kernel_objective"] = value
        return opened, value, max(bound, value), meth

    def _result(self, opened_red: np.ndarray, method: str, status: str, bound: float | None,
                info: dict[str, Any], t_start: float) -> PhasedSitingResult:
        """The result in original candidate indices, each year's sites ordered by gain."""
        red, T = self.reduced, len(self.years)
        a, w, e = self.coverage, self.weights, self.existing_covered
        total = float(w.sum())
        n_c = a.shape[0]
        opening_year = np.zeros(n_c, dtype=np.int64)
        covered = e.copy()
        by_year, rows = [], []
        done = np.zeros(a.shape[1], dtype=bool)  # covered by new sites so far
        for t in range(T):
            chosen = red.cand[np.flatnonzero(opened_red == t)] if opened_red.size else np.zeros(0, dtype=np.int64)
            base = e[t] | done
            sub = sp.csr_array(a[chosen]) if chosen.size else None
            order, gains = np.zeros(0, dtype=np.int64), np.zeros(0)
            if chosen.size:
                local, gains, _ = _lazy_greedy(sub, np.where(base, 0.0, w), chosen.size)
                # sites that add nobody this year are kept (they may count in later years), after the others
                rest = np.setdiff1d(np.arange(chosen.size), local)
                order = chosen[np.concatenate([local, rest])]
                gains = np.concatenate([gains, np.zeros(rest.size)])
            now = float(w[base].sum())
            for rank, (j, g) in enumerate(zip(order, gains), start=1):
                now += g
                rows.append({"year": self.years[t], "rank": rank, "candidate": int(j), "gain": float(g),
                             "covered": now, "share": now / total if total > 0 else 0.0})
            if order.size:
                done |= _rows_cover(a, order)
                opening_year[order] = self.years[t]
            covered[t] = e[t] | done
            by_year.append(order)
        cw = covered.astype(float) @ w
        ew = e.astype(float) @ w
        objective = float((cw - ew).sum())
        if bound is not None:
            bound = max(float(bound), objective)
            gap = (bound - objective) / bound if bound > 0 else 0.0
            if gap < 1e-9:
                gap, status = 0.0, ("optimal" if status == "heuristic" else status)
        else:
            gap = None
        info["solve_s"] = time.perf_counter() - t_start
        return PhasedSitingResult(
            years=self.years, sites_by_year=tuple(by_year), opening_year=opening_year, covered=covered,
            existing_covered=e.copy(), covered_weight=cw, existing_weight=ew, total_weight=total,
            objective=objective, bound=bound, gap=gap, method=method, status=status,
            budgets=tuple(int(b) for b in self.budgets), total_budget=self.total,
            target_shares=self.target_shares, marginal=pd.DataFrame(rows, columns=_MARGINAL_COLUMNS), info=info,
        )
