"""Siting models as classes: maximal covering (MCLP) and the fewest sites for a target share."""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from coverage.siting_bounds import (
    _COLUMNS_MIN_GROUPS,
    _kernel_milp,
    _mclp_lp_bound,
    _mclp_milp,
    _kernel_minsites,
    _minsites_counting_bound,
    _minsites_lp_bound,
    _minsites_lp_bound_columns,
    _minsites_milp,
    _online_bound,
    _subgradient_bound,
)
from coverage.siting_reduce import (
    _as_bool_csr,
    _check_inputs,
    _check_method,
    _check_p,
    _check_share,
    _covered_groups,
    _reduce,
    _Reduced,
    _reduced_value,
)
from coverage.siting_result import SitingResult, _build_result
from coverage.siting_search import _lazy_greedy, _lns, _prune, _reaches, _repair, _swap_search

__all__ = ["MaximalCoveringModel", "Method", "MinimumSitesModel"]

Method = Literal["auto", "exact", "greedy"]

#: relative tolerance on shares: a share s reaches a target t when
#: covered >= t * total - _REL_TOL * total
_REL_TOL = 1e-9

#: the full MILP is attempted by ``method="auto"`` only up to this many
#: non-zeros in the reduced coverage matrix (beyond, HiGHS' dual-simplex root
#: LP alone can take minutes; the LP bound by interior point and the kernel
#: MILP are used instead)
_EXACT_MAX_NNZ = 300_000

#: ``method="auto"`` tries the MILP only up to this many demand groups (rows)
#: in the reduced model; beyond, HiGHS' root LP (dual simplex) alone takes
#: minutes, so the bound comes from the LP relaxation by interior point
_MILP_MAX_GROUPS = 15_000

#: the kernel MILP (over the LP's support) is tried when the support has at
#: most max(_KERNEL_PER_SITE * p, _KERNEL_MIN_CANDIDATES) candidates; larger
#: supports mean a very fractional LP, where the neighbourhood search does better
_KERNEL_PER_SITE = 3
_KERNEL_MIN_CANDIDATES = 300


#: the stop gap of ``mip_rel_gap=None`` for a model too large for the exact MILP (``method="auto"``): stop
#: once the answer is proved within 0.5 % of the best possible. On a county (44,198 candidates, 124,119
#: homes, 20 sites) greedy, swaps and the Lagrangian bound prove 0.35 % in about 4 s; the 56 s more of LP
#: and neighbourhood search that a zero gap asks for changed neither the sites nor the bound.
LARGE_MODEL_GAP = 0.005


def _gap(bound: float, value: float) -> float:
    return (bound - value) / bound if bound > 0 else 0.0


def _milp_fits(method: str, red: _Reduced) -> bool:
    """Whether the full MILP is run: always for ``"exact"``, for ``"auto"`` on a small reduced model."""
    small = red.wg.size <= _MILP_MAX_GROUPS and red.B.nnz <= _EXACT_MAX_NNZ
    return method == "exact" or (method == "auto" and small)


def _catchment_coverage(catchment: Any, max_cost: float | None) -> Any:
    """Coverage from a catchment matrix: its stored entries, or only those costing at most ``max_cost``."""
    if max_cost is None:
        return catchment
    limit = float(max_cost)
    if not limit >= 0:
        raise ValueError(f"max_cost must be a non-negative cost (seconds or metres), got {max_cost!r}")
    m = sp.csr_array(catchment) if sp.issparse(catchment) else sp.csr_array(np.asarray(catchment))
    m.sum_duplicates()
    return sp.csr_array((m.data <= limit, m.indices, m.indptr), shape=m.shape)


class MaximalCoveringModel:
    """
    Maximal covering location problem (MCLP): up to ``p`` new sites covering the most new persons.

    Church & ReVelle (1974) on a sparse coverage matrix. Demand already covered
    by existing facilities adds nothing to any new site. The constructor checks
    the inputs and builds the reduced model (see :mod:`coverage.siting_reduce`);
    :meth:`solve` runs the solver phases on it and can be called again with
    other settings, and :meth:`with_p` gives the same model for another ``p``
    without reducing again.

    Parameters
    ----------
    coverage
        Sparse (or dense) matrix, shape (n_candidates, n_demand); a stored
        non-zero value means candidate j covers demand point i within the
        threshold, so the cost matrix of :func:`coverage.reach.catchment_matrix`
        (costs >= 1e-6) can be passed as it is; explicit zeros count as not
        covered. See also :meth:`from_catchment`.
    weights
        Array (n_demand,) of persons at each demand point (non-negative).
    p
        Number of new sites (>= 0).
    already_covered
        Boolean array (n_demand,): demand already within reach of an existing
        facility. Default: nothing covered.

    Attributes
    ----------
    coverage
        The coverage matrix as a boolean CSR array (n_candidates, n_demand).
    weights, already_covered
        The checked weights (persons, float) and base coverage (bool).
    p
        Number of new sites.
    reduced
        The reduced model: merged demand groups by surviving candidates.

    Notes
    -----
    The exact model has a binary ``x_j`` per surviving candidate, a
    continuous ``y_g`` in [0, 1] per group of merged demand points,
    ``y_g <= sum_j a_gj x_j`` and ``sum_j x_j <= p``; adding a site never
    lowers coverage, so "<= p" has the same optimum as "= p". Bounds reported
    for heuristic solutions are rigorous: the submodular online bound,
    Lagrangian bounds from subgradient steps and from the LP duals -- each is
    valid for any multipliers, so solver tolerances cannot make them too small.

    The phases of :meth:`solve` are methods that share the state of the
    current solve on the object: the incumbent (``_inc_pick`` in reduced
    candidate indices, ``_inc_val`` persons, ``_inc_method``), the upper
    bound ``_bound`` (persons), the deadline and the ``_info`` diagnostics.
    A model is therefore not meant to be solved from two threads at once.
    """

    def __init__(self, coverage: Any, weights: Any, p: int, *, already_covered: Any = None) -> None:
        self.p = _check_p(p)
        self.coverage, self.weights, self.already_covered = _check_inputs(coverage, weights, already_covered)
        self.reduced = _reduce(self.coverage, self.weights, self.already_covered)

    @classmethod
    def from_catchment(
        cls,
        catchment: Any,
        weights: Any,
        p: int,
        *,
        already_covered: Any = None,
        max_cost: float | None = None,
    ) -> MaximalCoveringModel:
        """
        Model from a catchment matrix (sites x demand, costs as stored values).

        Parameters
        ----------
        catchment
            Sparse matrix (n_candidates, n_demand) as from
            :func:`coverage.reach.catchment_matrix`: stored values are costs
            (seconds or metres), absent entries are beyond its limit; or a
            boolean coverage matrix.
        weights, p, already_covered
            As for the constructor.
        max_cost
            Count only entries costing at most this (same unit as the stored
            values), e.g. 600 s on a 900 s catchment; default: every stored
            entry covers.
        """
        return cls(_catchment_coverage(catchment, max_cost), weights, p, already_covered=already_covered)

    def with_p(self, p: int) -> MaximalCoveringModel:
        """The same model (inputs and reduction shared) for another number of new sites."""
        other = copy.copy(self)
        other.p = _check_p(p)
        return other

    # ------------------------------------------------------------------
    # solve: the phases in order
    # ------------------------------------------------------------------

    def solve(
        self,
        method: Method = "auto",
        *,
        time_limit_s: float = 60.0,
        mip_rel_gap: float | None = None,
        local_search: bool = True,
    ) -> SitingResult:
        """
        Choose the sites.

        Parameters
        ----------
        method
            ``"exact"`` (HiGHS MILP), ``"greedy"`` (lazy greedy, improved by
            swaps when ``local_search``, with the LP-relaxation bound) or
            ``"auto"``: greedy and swaps (sometimes provably optimal by their
            bound) and a Lagrangian bound; then the full MILP when the reduced
            model is small enough, else the LP bound by interior point, the
            MILP over the LP's support ("kernel", when that is small) or a
            rounding of the LP, and the large-neighbourhood search ("lns")
            until the time is spent or the gap is closed.
        time_limit_s
            Wall-clock budget (seconds) for the solve (the reduction is done
            by the constructor): the MILP (or the LP bound and the searches)
            get what the heuristics leave of it. HiGHS checks its clock
            between steps, so a large model may overrun it by a fraction.
        mip_rel_gap
            Relative gap at which to stop (0 = prove optimality). None: 0 when
            the exact MILP is run, :data:`LARGE_MODEL_GAP` (0.5 %) for a model
            ``"auto"`` finds too large for it.
        local_search
            Improve the greedy solution by 1-swaps (methods ``"greedy"`` and
            ``"auto"``).

        Returns
        -------
        SitingResult
            ``objective`` is the newly covered weight (persons), ``bound`` an
            upper bound on it (persons), ``gap = (bound - objective) / bound``.
            ``method`` is one of ``"none"``, ``"exact"``, ``"greedy"``,
            ``"greedy+swap"``, ``"kernel"``, ``"lp rounding+swap"``, ``"lns"``;
            ``status`` one of ``"optimal"``, ``"gap_limit"``,
            ``"time_limit"``, ``"heuristic"`` (see :class:`SitingResult`).
            ``info`` holds the sizes of the reduced model, each phase's
            objective and bound, and timings (seconds).
        """
        _check_method(method)
        if mip_rel_gap is None:
            large = method == "auto" and not _milp_fits(method, self.reduced)
            mip_rel_gap = LARGE_MODEL_GAP if large else 0.0
        self._start(method, time_limit_s, mip_rel_gap, local_search)
        B, wg, p = self.reduced.B, self.reduced.wg, self.p
        if p == 0 or B.shape[0] == 0:
            return self._result(np.zeros(0, dtype=np.int64), "none", "optimal", 0.0)
        if p >= B.shape[0]:
            # every useful candidate fits: all coverable demand is covered
            return self._result(self.reduced.cand, "exact", "optimal", float(wg.sum()))

        if method in ("greedy", "auto"):
            self._greedy_and_swaps()
            if self._gap() > self._stop_gap:
                self._subgradient_bound()
            gap = self._gap()
            if gap <= self._stop_gap:
                return self._finish("optimal" if gap <= 1e-9 else "gap_limit")

        if _milp_fits(method, self.reduced):
            return self._full_milp()

        # heuristic solution: tighten the bound with the LP relaxation, then improve it
        x_lp = self._lp_bound()
        support = np.flatnonzero(x_lp > 1e-6) if x_lp is not None else np.zeros(0, dtype=np.int64)
        kernel_ok = 0 < support.size <= max(_KERNEL_PER_SITE * p, _KERNEL_MIN_CANDIDATES)
        self._info["lp_support"] = int(support.size)
        if method == "auto":
            if kernel_ok and self._worth_trying(1.0):
                self._kernel_search(support)
            if x_lp is not None and not kernel_ok and self._worth_trying(2.0):
                self._lp_rounding(x_lp)
            if self._worth_trying(1.0):
                self._neighbourhood_search()
        return self._finish("optimal" if self._gap() <= 1e-9 else "heuristic")

    # ------------------------------------------------------------------
    # shared state of one solve
    # ------------------------------------------------------------------

    def _start(self, method: str, time_limit_s: float, mip_rel_gap: float, local_search: bool) -> None:
        self._method = method
        self._time_limit_s = float(time_limit_s)
        self._mip_rel_gap = mip_rel_gap
        self._local_search = local_search
        self._stop_gap = max(float(mip_rel_gap), 1e-9)
        self._t_start = time.perf_counter()
        self._deadline = self._t_start + self._time_limit_s
        self._info: dict[str, Any] = {"reduction": dict(self.reduced.stats), "p": self.p}
        self._bound = float(self.reduced.wg.sum())
        self._inc_pick: np.ndarray | None = None
        self._inc_val = -1.0
        self._inc_method = "greedy"

    def _gap(self) -> float:
        """Relative gap of the incumbent to the bound."""
        return _gap(self._bound, self._inc_val)

    def _remaining(self) -> float:
        return self._deadline - time.perf_counter()

    def _worth_trying(self, min_seconds: float) -> bool:
        """Another improvement phase: the gap is still open and more than ``min_seconds`` are left."""
        return self._gap() > self._stop_gap and self._remaining() > min_seconds

    def _take(self, pick: np.ndarray, value: float, method: str) -> None:
        self._inc_pick, self._inc_val, self._inc_method = pick, value, method

    def _result(self, chosen: np.ndarray, method: str, status: str, bound: float) -> SitingResult:
        """Result for ``chosen`` (original candidate indices)."""
        return _build_result(self.coverage, self.weights, self.already_covered, chosen,
                             method=method, status=status, bound=bound, info=self._info)

    def _finish(self, status: str) -> SitingResult:
        self._info["solve_s"] = time.perf_counter() - self._t_start
        return self._result(self.reduced.cand[self._inc_pick], self._inc_method, status, self._bound)

    # ------------------------------------------------------------------
    # phases
    # ------------------------------------------------------------------

    def _greedy_and_swaps(self) -> None:
        """Lazy greedy with its online bound, then 1-swaps unless ``local_search`` is off."""
        B, wg, p, info = self.reduced.B, self.reduced.wg, self.p, self._info
        t0 = time.perf_counter()
        pick, _, cov = _lazy_greedy(B, wg, p)
        val = float(wg[cov].sum())
        self._bound = min(self._bound, _online_bound(B, wg, cov, p))
        info["greedy_s"] = time.perf_counter() - t0
        info["greedy_objective"] = val
        info["online_bound"] = self._bound
        self._take(pick, val, "greedy")
        if self._local_search and self._gap() > self._stop_gap:
            t0 = time.perf_counter()
            ls_deadline = t0 + min(0.3 * self._time_limit_s, 120.0)
            pick2, val2, n_swaps = _swap_search(B, wg, pick, deadline=ls_deadline)
            info["swap_s"] = time.perf_counter() - t0
            info["swaps"] = n_swaps
            info["swap_objective"] = val2
            if val2 > self._inc_val:
                self._take(pick2, val2, "greedy+swap")

    def _subgradient_bound(self) -> None:
        """Lagrangian bound by subgradient steps, started from the incumbent's coverage."""
        B, wg = self.reduced.B, self.reduced.wg
        t0 = time.perf_counter()
        lam0 = np.where(_covered_groups(B, self._inc_pick), 0.0, wg)
        sg = _subgradient_bound(B, wg, self.p, lam0, self._inc_val,
                                deadline=t0 + min(0.1 * self._time_limit_s, 20.0))
        self._info["subgradient_s"] = time.perf_counter() - t0
        self._info["lagrangian_bound"] = sg
        self._bound = min(self._bound, sg)

    def _full_milp(self) -> SitingResult:
        """The MILP on the whole reduced model; on a time limit the better of its incumbent and the heuristic."""
        B, wg = self.reduced.B, self.reduced.wg
        remaining = self._remaining() if self._method == "auto" else self._time_limit_s
        sol = _mclp_milp(B, wg, self.p, max(remaining, 1.0), self._mip_rel_gap)
        self._info["milp"] = {k: v for k, v in sol.items() if k != "x"}
        if sol["dual_bound"] is not None:
            self._bound = min(self._bound, sol["dual_bound"])
        x = sol["x"]
        x_val = _reduced_value(self.reduced, x) if x is not None else -1.0
        if sol["status_code"] == 0 and x is not None:
            if x_val >= self._inc_val:
                self._take(x, x_val, "exact")
            if self._gap() <= 1e-9 or self._mip_rel_gap <= 0:
                self._bound = min(self._bound, max(self._inc_val, x_val))  # proved optimal by HiGHS
                return self._finish("optimal")
            return self._finish("gap_limit")
        # time limit or failure: keep the better of the incumbent and greedy
        if self._inc_pick is None:
            self._greedy_and_swaps()
        if x is not None and x_val >= self._inc_val:
            self._take(x, x_val, "exact")
        return self._finish("time_limit" if sol["status_code"] == 1 else "heuristic")

    def _lp_bound(self) -> np.ndarray | None:
        """Tighten the bound by the LP relaxation (when more than 1 s is left); return the LP's x or None."""
        remaining = self._remaining()
        if remaining <= 1.0:
            return None
        t0 = time.perf_counter()
        lp, x_lp = _mclp_lp_bound(self.reduced.B, self.reduced.wg, self.p, remaining)
        self._info["lp_s"] = time.perf_counter() - t0
        self._info["lp_bound"] = lp
        if lp is not None:
            self._bound = min(self._bound, lp)
        return x_lp

    def _kernel_search(self, support: np.ndarray) -> None:
        """The MILP over the LP's support and the incumbent, then swaps from its solution over all candidates."""
        B, wg = self.reduced.B, self.reduced.wg
        t0 = time.perf_counter()
        support = np.union1d(support, self._inc_pick)
        k_pick, details = _kernel_milp(B, wg, self.p, support, 0.5 * self._remaining())
        if k_pick is not None:
            k_pick, k_val, n_swaps = _swap_search(B, wg, k_pick,
                                                  deadline=max(self._deadline, time.perf_counter() + 1.0))
            details.update(objective=k_val, swaps_after=n_swaps)
            if k_val > self._inc_val:
                self._take(k_pick, k_val, "kernel")
        details["total_s"] = time.perf_counter() - t0
        self._info["kernel"] = details

    def _lp_rounding(self, x_lp: np.ndarray) -> None:
        """A very fractional LP: its ``p`` largest values, improved by swaps, are a second start."""
        t0 = time.perf_counter()
        rounded = np.argsort(-x_lp, kind="stable")[: self.p]
        r_pick, r_val, n_swaps = _swap_search(self.reduced.B, self.reduced.wg, rounded,
                                              deadline=t0 + 0.15 * self._remaining())
        self._info["lp_rounding"] = {"objective": r_val, "swaps": n_swaps, "seconds": time.perf_counter() - t0}
        if r_val > self._inc_val:
            self._take(r_pick, r_val, "lp rounding+swap")

    def _neighbourhood_search(self) -> None:
        """Large-neighbourhood search from the incumbent until the deadline."""
        t0 = time.perf_counter()
        l_pick, l_val, stats = _lns(self.reduced.B, self.reduced.wg, self._inc_pick, deadline=self._deadline)
        stats.update(objective=l_val, seconds=time.perf_counter() - t0)
        self._info["lns"] = stats
        if l_val > self._inc_val:
            self._take(l_pick, l_val, "lns")


class MinimumSitesModel:
    """
    The fewest new sites so that the covered share of the weight reaches a target (partial set cover).

    The share is ``covered weight / total weight`` over all demand points,
    counting demand already covered by existing facilities. The constructor
    checks the inputs and builds the reduced model; :meth:`solve` runs the
    phases; :meth:`with_target` gives the same model for another target.

    Parameters
    ----------
    coverage
        Matrix (n_candidates, n_demand), non-zero where candidate j covers
        demand point i (a catchment cost matrix can be passed as it is; see
        :meth:`from_catchment`).
    weights
        Persons per demand point, shape (n_demand,).
    target_share
        Target share in [0, 1], e.g. 0.9 for "90 % of the elderly".
    already_covered
        Boolean (n_demand,) demand already covered by existing facilities.

    Attributes
    ----------
    coverage, weights, already_covered, reduced
        As in :class:`MaximalCoveringModel`.
    target_share
        The target share.

    Notes
    -----
    The phases of :meth:`solve` share on the object the current set
    (``_pick`` in reduced candidate indices, found by ``_meth``), the lower
    bound on the number of sites (``_lower``), the newly covered persons
    required (``_need``), the deadline and the ``_info`` diagnostics.
    """

    def __init__(self, coverage: Any, weights: Any, target_share: float, *, already_covered: Any = None) -> None:
        self.target_share = _check_share(target_share)
        self.coverage, self.weights, self.already_covered = _check_inputs(coverage, weights, already_covered)
        self.reduced = _reduce(self.coverage, self.weights, self.already_covered)

    @classmethod
    def from_catchment(
        cls,
        catchment: Any,
        weights: Any,
        target_share: float,
        *,
        already_covered: Any = None,
        max_cost: float | None = None,
    ) -> MinimumSitesModel:
        """
        Model from a catchment matrix (sites x demand, costs as stored values).

        ``catchment`` and ``max_cost`` as in
        :meth:`MaximalCoveringModel.from_catchment`, the rest as for the
        constructor.
        """
        return cls(_catchment_coverage(catchment, max_cost), weights, target_share, already_covered=already_covered)

    @classmethod
    def from_unit_candidates(
        cls,
        unit_candidates: Any,
        target_share: float,
        *,
        units_already_covered: Any = None,
        unit_weights: Any = None,
    ) -> MinimumSitesModel:
        """
        Model whose demand is administrative units, for unit-count targets.

        For targets such as "≥ 60 % of administrative villages have a
        互助幸福院": a unit (village, community, town) counts as covered when
        it hosts a new facility or reaches one.

        Parameters
        ----------
        unit_candidates
            Boolean matrix (n_units, n_candidates): unit u is covered by a
            facility at candidate c. Note the orientation: units are rows.
        target_share
            Target share of units in [0, 1] (weighted by ``unit_weights``).
        units_already_covered
            Boolean (n_units,): units covered by existing facilities.
        unit_weights
            Weight per unit; default 1 (count units). Pass e.g. elderly
            persons to target a share of people instead.
        """
        uc = _as_bool_csr(unit_candidates)
        weights = np.ones(uc.shape[0]) if unit_weights is None else unit_weights
        return cls(sp.csr_array(uc.T), weights, target_share, already_covered=units_already_covered)

    def with_target(self, target_share: float) -> MinimumSitesModel:
        """The same model (inputs and reduction shared) for another target share."""
        return self._retargeted(_check_share(target_share))

    def _retargeted(self, t: float) -> MinimumSitesModel:
        other = copy.copy(self)
        other.target_share = t
        return other

    # ------------------------------------------------------------------
    # solve: the phases in order
    # ------------------------------------------------------------------

    def solve(self, method: Method = "auto", *, time_limit_s: float = 60.0) -> SitingResult:
        """
        Find the fewest sites.

        Parameters
        ----------
        method
            ``"exact"`` (HiGHS MILP: minimise the number of sites subject to
            the newly covered weight >= ``target * total - base``),
            ``"greedy"`` (add greedy sites until reached, drop redundant ones,
            try one fewer with swaps; lower bound from the LP relaxation) or
            ``"auto"`` (greedy, then the MILP when the reduced model is small
            enough; on a larger one the neighbourhood search looks for sets
            one site smaller until the time limit).
        time_limit_s
            Wall-clock budget (seconds) for the solve (the reduction is done
            by the constructor).

        Returns
        -------
        SitingResult
            ``bound`` is a *lower bound on the number of sites*
            (``bound_unit == "sites"``); ``gap = (n_sites - bound) / n_sites``.
            ``method`` is one of ``"none"``, ``"greedy"``, ``"greedy+swap"``,
            ``"lns"``, ``"exact"``; ``status`` one of ``"optimal"`` (no set
            one site smaller reaches the target), ``"time_limit"``,
            ``"heuristic"``, ``"already_met"`` or ``"unreachable"``: even all
            candidates cannot reach the target, and ``selected`` is the
            (fewest found) set reaching the highest achievable share, given
            in ``info["best_share_achievable"]``; nothing is raised.
        """
        _check_method(method)
        self._method, self._time_limit_s = method, float(time_limit_s)
        w, base, t = self.weights, self.already_covered, self.target_share
        total = float(w.sum())
        base_w = float(w[base].sum())
        self._need = t * total - base_w - _REL_TOL * total  # newly covered persons required
        self._info: dict[str, Any] = {"need_persons": max(self._need, 0.0)}
        if self._need <= 0:
            return _build_result(self.coverage, w, base, np.zeros(0, dtype=np.int64), method="none",
                                 status="already_met", bound=0.0, bound_unit="sites", target_share=t,
                                 info=self._info)
        self._t_start = time.perf_counter()
        self._deadline = self._t_start + self._time_limit_s
        self._info["reduction"] = dict(self.reduced.stats)
        coverable = float(self.reduced.wg.sum())
        if coverable < self._need:
            return self._unreachable((base_w + coverable) / total)

        self._greedy()
        self._lp_lower_bound()
        if self._lower >= self._pick.size:
            return self._finish("optimal", self._lower)
        run_milp = _milp_fits(method, self.reduced)
        if not run_milp and method == "auto":
            self._kernel_fewer()
            if self._lower >= self._pick.size:
                return self._finish("optimal", self._lower)
        self._fewer_sites(run_milp)
        if self._lower >= self._pick.size:
            return self._finish("optimal", self._lower)
        if not run_milp:
            return self._finish("heuristic", self._lower)
        return self._milp()

    # ------------------------------------------------------------------
    # phases
    # ------------------------------------------------------------------

    def _finish(self, status: str, lower: float) -> SitingResult:
        self._info["solve_s"] = time.perf_counter() - self._t_start
        return _build_result(self.coverage, self.weights, self.already_covered, self.reduced.cand[self._pick],
                             method=self._meth, status=status, bound=lower, bound_unit="sites",
                             target_share=self.target_share, info=self._info)

    def _unreachable(self, best_share: float) -> SitingResult:
        """The target is out of reach: the fewest sites reaching the highest achievable share."""
        res = self._retargeted(best_share).solve(self._method, time_limit_s=self._time_limit_s)
        info = self._info
        info.update(res.info)
        info["best_share_achievable"] = best_share
        return replace(res, status="unreachable", target_share=self.target_share, info=info)

    def _greedy(self) -> None:
        """Greedy until the target is reached, then drop redundant sites."""
        t0 = time.perf_counter()
        g_pick, _, _ = _lazy_greedy(self.reduced.B, self.reduced.wg, self.reduced.B.shape[0], need=self._need)
        self._info["greedy_sites"] = int(g_pick.size)
        self._pick, self._meth = _prune(self.reduced, g_pick, self._need), "greedy"
        self._info["greedy_s"] = time.perf_counter() - t0

    def _lp_lower_bound(self) -> None:
        """
        Lower bound on the number of sites: the LP relaxation, rounded up.

        On a model with more than ``_COLUMNS_MIN_GROUPS`` demand groups the LP
        is solved by column generation from the greedy sites
        (:func:`coverage.siting_bounds._minsites_lp_bound_columns`), which
        stops once the rounded bound can rise no further. The counting bound
        (:func:`coverage.siting_bounds._minsites_counting_bound`) stands when
        the LP does not finish in time (a county on a slow machine): the gap
        is then reported against the sites' own sizes rather than against
        the trivial bound of 1 site.
        """
        B, wg = self.reduced.B, self.reduced.wg
        counting = _minsites_counting_bound(B, wg, self._need)
        lower = max(1.0, counting if np.isfinite(counting) else 1.0)
        self._info["counting_lower_bound"] = lower
        self._x_lp = None
        if self._pick.size > 1:
            t0 = time.perf_counter()
            budget = max(0.5 * self._remaining(), 1.0)
            if wg.size > _COLUMNS_MIN_GROUPS:
                lp, self._x_lp, self._info["lp_columns"] = _minsites_lp_bound_columns(
                    B, wg, self._need, self._pick, budget, enough=float(self._pick.size))
            else:
                lp, self._x_lp = _minsites_lp_bound(B, wg, self._need, budget)
            self._info["lp_s"] = time.perf_counter() - t0
            if lp is not None:
                self._info["lp_value"] = lp
                lower = max(lower, float(np.ceil(lp - 1e-9)))
        self._info["lp_lower_bound"] = lower
        self._lower = lower

    def _remaining(self) -> float:
        return self._deadline - time.perf_counter()

    def _kernel_fewer(self) -> None:
        """
        On a model too large for the MILP: the fewest sites among the LP's support and the current set (a kernel MILP).

        The LP of a county is nearly integral (180.06 sites, 141 of its 329
        candidates at 1, against 182-186 found by greedy and swaps). The
        kernel MILP is first solved with the LP's whole sites kept: over the
        other 246 candidates HiGHS proves the best 40 in about 3 s, and the
        181 sites are then proved the fewest by the LP bound. When that does
        not reach the bound, the kernel MILP over the whole support is tried
        with the time left (on the county it finds no set in 30 s).
        """
        if self._x_lp is None or self._pick.size - 1 < self._lower:
            return
        support = np.union1d(np.flatnonzero(self._x_lp > 1e-6), self._pick)
        if support.size > max(_KERNEL_PER_SITE * self._pick.size, _KERNEL_MIN_CANDIDATES) \
                or self._remaining() <= 2.0:
            self._info["kernel"] = {"skipped": int(support.size)}
            return
        B, wg, need = self.reduced.B, self.reduced.wg, self._need
        whole = np.flatnonzero(self._x_lp >= 1.0 - 1e-6)
        rest = np.setdiff1d(support, whole)
        if whole.size and rest.size and self._pick.size - 1 - whole.size > 0:
            t0 = time.perf_counter()
            covered = _covered_groups(B, whole)
            pick, details = _kernel_minsites(B, np.where(covered, 0.0, wg), need - float(wg[covered].sum()),
                                             self._pick.size - 1 - whole.size, rest, 0.3 * self._remaining())
            details.update(n_whole=int(whole.size), total_s=time.perf_counter() - t0)
            self._info["kernel_whole_kept"] = details
            self._take_kernel(None if pick is None else np.union1d(whole, pick))
            if self._lower >= self._pick.size or self._remaining() <= 2.0:
                return
        t0 = time.perf_counter()
        pick, details = _kernel_minsites(B, wg, need, self._pick.size - 1, support, 0.5 * self._remaining())
        details["total_s"] = time.perf_counter() - t0
        self._info["kernel"] = details
        self._take_kernel(pick)

    def _take_kernel(self, pick: np.ndarray | None) -> None:
        if pick is not None and pick.size < self._pick.size and _reaches(self.reduced, pick, self._need):
            self._pick, self._meth = _prune(self.reduced, pick, self._need), "kernel"

    def _fewer_sites(self, run_milp: bool) -> None:
        """
        One site fewer, by greedy + swaps on the MCLP with p = k - 1, while that reaches the target.

        On a model too large for the MILP the neighbourhood search then gets
        the rest of the time to make k - 1 sites reach the target.
        """
        B, wg, need = self.reduced.B, self.reduced.wg, self._need
        if run_milp or self._method == "greedy":
            search_deadline = time.perf_counter() + min(0.3 * self._time_limit_s, 120.0)
        else:
            search_deadline = self._deadline
        self._info["fewer_tries"] = 0
        while self._pick.size - 1 >= self._lower and time.perf_counter() < search_deadline:
            self._info["fewer_tries"] += 1
            start, _, _ = _lazy_greedy(B, wg, self._pick.size - 1)
            cand, val, _ = _swap_search(B, wg, start, deadline=search_deadline)
            found = "greedy+swap"
            if val < need and not run_milp and self._method == "auto":
                cand, val, _ = _lns(B, wg, cand, deadline=search_deadline, stop_at=need)
                found = "lns"
            if val < need:
                break
            self._pick, self._meth = _prune(self.reduced, cand, need), found

    def _milp(self) -> SitingResult:
        """MILP for a set with at most k - 1 sites: infeasible proves the k found minimal."""
        red, need = self.reduced, self._need
        remaining = self._remaining() if self._method == "auto" else self._time_limit_s
        sol = _minsites_milp(red.B, red.wg, need, self._pick.size - 1, max(remaining, 1.0))
        self._info["milp"] = {k: v for k, v in sol.items() if k != "x"}
        if sol["status_code"] == 2:
            return self._finish("optimal", float(self._pick.size))
        lower = self._lower
        if sol["dual_bound"] is not None:
            lower = max(lower, float(np.ceil(sol["dual_bound"] - 1e-6)))
        x = sol["x"]
        if x is not None and x.size < self._pick.size:
            proved = sol["status_code"] == 0
            if not _reaches(red, x, need):  # solver tolerance: repair greedily
                x = _repair(red, x, need)
                self._info["repaired"] = True
                proved = False
            if x.size < self._pick.size or (x.size == self._pick.size and proved):
                self._pick, self._meth = x, "exact"
                if proved:
                    lower = float(x.size)
        self._lower = lower
        if lower >= self._pick.size:
            return self._finish("optimal", float(self._pick.size))
        return self._finish("time_limit" if sol["status_code"] == 1 else "heuristic", lower)
