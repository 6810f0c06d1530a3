"""Siting of new elderly-care facilities on a coverage matrix (选址): the public functions and models.

Everything here works on a *coverage matrix*: a sparse boolean matrix of shape
``(n_candidates, n_demand)`` whose entry ``(j, i)`` is true when candidate
site ``j`` would serve demand point ``i`` within the walking threshold (the
cost matrix of :func:`coverage.reach.catchment_matrix` can be passed as it
is). No geometry and no network code lives in the siting modules.

Problems solved
---------------
* :class:`MaximalCoveringModel` / :func:`solve_mclp` -- maximal covering
  location problem (MCLP): choose ``p`` new sites that newly cover the most
  elderly persons.
* :func:`marginal_curve` -- greedy coverage after 1, 2, ..., k new sites, to
  show a planner where returns flatten.
* :class:`MinimumSitesModel` / :func:`min_sites_for_target` -- the fewest new
  sites that lift the covered share of the elderly to a policy target
  (partial set cover).
* :meth:`MinimumSitesModel.from_unit_candidates` / :func:`unit_set_cover` --
  the same for unit-count targets, e.g. "60 % of administrative villages have
  a 互助幸福院".
* :func:`explain_sites` -- a per-site table of what each proposed site adds.

Demand already covered by existing facilities (``already_covered``) is never
counted again: its weight contributes nothing to any new site's gain. Every
model is first *reduced* without changing its optimum (covered, uncoverable
and zero-weight demand dropped, identical demand points merged, dominated and
duplicate candidates dropped), then solved by ``method="exact"`` (HiGHS
through :func:`scipy.optimize.milp`), ``"greedy"`` (lazy greedy and swaps,
with a rigorous bound and gap) or ``"auto"`` (both, and on large models the
LP bound, a kernel MILP and a neighbourhood search); :class:`SitingResult`
lists every ``method`` and ``status`` a result can carry. All weights are in
persons (elderly people, usually 60+), shares are fractions in [0, 1].

Modules: :mod:`coverage.siting` (these functions, re-exporting the classes),
:mod:`coverage.siting_models` (the model classes), :mod:`coverage.siting_result`
(the result), :mod:`coverage.siting_reduce` (input checks and reduction),
:mod:`coverage.siting_bounds` (bounds and HiGHS models) and
:mod:`coverage.siting_search` (greedy, swap and neighbourhood search).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from coverage.siting_models import MaximalCoveringModel, Method, MinimumSitesModel
from coverage.siting_reduce import _check_inputs, _check_method, _reduce
from coverage.siting_result import SitingResult, _marginal_frame
from coverage.siting_search import _lazy_greedy

__all__ = [
    "MaximalCoveringModel",
    "MinimumSitesModel",
    "SitingResult",
    "explain_sites",
    "marginal_curve",
    "min_sites_for_target",
    "solve_mclp",
    "unit_set_cover",
]


def solve_mclp(
    coverage: Any,
    weights: Any,
    p: int,
    *,
    already_covered: Any = None,
    method: Method = "auto",
    time_limit_s: float = 60.0,
    mip_rel_gap: float | None = None,
    local_search: bool = True,
) -> SitingResult:
    """
    Choose up to ``p`` new sites that newly cover the most elderly persons.

    Maximal covering location problem (MCLP, Church & ReVelle 1974) on a
    sparse coverage matrix. Demand already covered by existing facilities
    adds nothing to any new site.

    Parameters
    ----------
    coverage
        Sparse (or dense) matrix, shape (n_candidates, n_demand); a stored
        non-zero value means candidate j covers demand point i within the
        threshold (so the cost matrix of
        :func:`coverage.reach.catchment_matrix`, whose costs are >= 1e-6,
        can be passed as it is; explicit zeros count as not covered).
    weights
        Array (n_demand,) of persons at each demand point (non-negative).
    p
        Number of new sites (>= 0).
    already_covered
        Boolean array (n_demand,): demand already within reach of an existing
        facility. Default: nothing covered.
    method
        ``"exact"`` (HiGHS MILP), ``"greedy"`` (lazy greedy, improved by
        swaps when ``local_search``, with an LP-relaxation bound) or
        ``"auto"`` (greedy and swaps, a Lagrangian bound, then the MILP when
        the reduced model is small enough, else the LP bound, the kernel
        MILP and the neighbourhood search; see :meth:`MaximalCoveringModel.solve`).
    time_limit_s
        Wall-clock budget (seconds) for the solve after the model reduction:
        the MILP (or the LP bound and the searches) get what the heuristics
        leave of it. HiGHS checks its clock between steps, so a large model
        may overrun it by a fraction.
    mip_rel_gap
        Relative gap at which to stop (0 = prove optimality; None: 0 where the
        exact MILP runs, 0.5 % on a model too large for it, as
        :meth:`MaximalCoveringModel.solve`).
    local_search
        Improve the greedy solution by 1-swaps (methods ``"greedy"`` and
        ``"auto"``).

    Returns
    -------
    SitingResult
        ``objective`` is the newly covered weight (persons); ``bound`` an
        upper bound on it (persons); ``gap = (bound - objective) / bound``.
        ``method`` says which solution was kept: ``"none"``, ``"exact"``
        (HiGHS), ``"greedy"``, ``"greedy+swap"``, ``"kernel"``,
        ``"lp rounding+swap"`` or ``"lns"``; ``status`` is ``"optimal"``,
        ``"gap_limit"``, ``"time_limit"`` or ``"heuristic"`` (see
        :class:`SitingResult`). ``info`` holds the sizes of the reduced
        model, each step's objective and bound, and timings.

    Notes
    -----
    A thin wrapper: ``MaximalCoveringModel(coverage, weights, p,
    already_covered=...).solve(method, ...)``. Build the model once to solve
    it several times (other methods, time limits or ``p`` by
    :meth:`MaximalCoveringModel.with_p`) without reducing it again; the exact
    model and the bounds are described there.
    """
    _check_method(method)  # before the reduction, which can take seconds on a large matrix
    model = MaximalCoveringModel(coverage, weights, p, already_covered=already_covered)
    return model.solve(method, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, local_search=local_search)


def marginal_curve(
    coverage: Any,
    weights: Any,
    k: int,
    *,
    already_covered: Any = None,
) -> pd.DataFrame:
    """
    Greedy coverage after 1, 2, ..., k new sites.

    Parameters
    ----------
    coverage
        Matrix (n_candidates, n_demand), non-zero where j covers i.
    weights
        Persons per demand point, shape (n_demand,).
    k
        Largest number of new sites.
    already_covered
        Boolean (n_demand,) demand already covered by existing facilities.

    Returns
    -------
    pandas.DataFrame
        Columns ``rank`` (1-based), ``candidate`` (row of ``coverage``),
        ``gain`` (persons newly covered by that site given the earlier ones;
        non-increasing), ``cumulative_covered`` (persons covered including the
        base) and ``share`` (of the total weight). Stops before ``k`` rows
        when no candidate adds anyone any more.
    """
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    a, w, base = _check_inputs(coverage, weights, already_covered)
    red = _reduce(a, w, base)
    picked, gains, _ = _lazy_greedy(red.B, red.wg, int(k))
    return _marginal_frame(red.cand[picked], gains, float(w[base].sum()), float(w.sum()))



def min_sites_for_target(
    coverage: Any,
    weights: Any,
    target_share: float,
    *,
    already_covered: Any = None,
    method: Method = "auto",
    time_limit_s: float = 60.0,
) -> SitingResult:
    """
    The fewest new sites so that the covered share reaches ``target_share``.

    The share is ``covered weight / total weight`` over all demand points,
    counting demand already covered by existing facilities.

    Parameters
    ----------
    coverage
        Matrix (n_candidates, n_demand), non-zero where j covers i.
    weights
        Persons per demand point, shape (n_demand,).
    target_share
        Target share in [0, 1], e.g. 0.9 for "90 % of the elderly".
    already_covered
        Boolean (n_demand,) demand already covered by existing facilities.
    method
        ``"exact"`` (HiGHS MILP: minimise the number of sites subject to the
        newly covered weight >= ``target * total - base``), ``"greedy"``
        (add greedy sites until reached, drop redundant ones, try one fewer
        with swaps; lower bound from the LP relaxation) or ``"auto"``
        (greedy, then the MILP when the reduced model is small enough; on a
        larger one the neighbourhood search looks for sets one site smaller
        until the time limit).
    time_limit_s
        Wall-clock budget (seconds) for the solve after the model reduction.

    Returns
    -------
    SitingResult
        ``bound`` is a *lower bound on the number of sites* (``bound_unit ==
        "sites"``); ``gap = (n_sites - bound) / n_sites``. With status
        ``"optimal"`` no set with one site fewer reaches the target. When
        even all candidates cannot reach the target the status is
        ``"unreachable"`` and ``selected`` is the (fewest found) set reaching
        the highest achievable share, given in ``info["best_share_achievable"]``;
        nothing is raised.

    Notes
    -----
    A thin wrapper: ``MinimumSitesModel(coverage, weights, target_share,
    already_covered=...).solve(method, ...)``; other targets on the same
    model by :meth:`MinimumSitesModel.with_target`.
    """
    _check_method(method)  # before the reduction, which can take seconds on a large matrix
    model = MinimumSitesModel(coverage, weights, target_share, already_covered=already_covered)
    return model.solve(method, time_limit_s=float(time_limit_s))


def unit_set_cover(
    unit_candidates: Any,
    target_share: float,
    *,
    units_already_covered: Any = None,
    unit_weights: Any = None,
    method: Method = "auto",
    time_limit_s: float = 60.0,
) -> SitingResult:
    """
    The fewest candidate sites so that a target share of units is covered.

    For unit-count targets such as "≥ 60 % of administrative villages have a
    互助幸福院": a unit (village, community, town) counts as covered when it
    hosts a new facility or reaches one, as encoded in ``unit_candidates``.

    Parameters
    ----------
    unit_candidates
        Boolean matrix (n_units, n_candidates): unit u is covered by a
        facility at candidate c (c is in u, or u reaches c within the
        threshold). Note the orientation: units are rows.
    target_share
        Target share of units in [0, 1] (weighted by ``unit_weights``).
    units_already_covered
        Boolean (n_units,): units covered by existing facilities.
    unit_weights
        Weight per unit; default 1 (count units). Pass e.g. elderly persons
        to target a share of people instead.
    method, time_limit_s
        As in :func:`min_sites_for_target`.

    Returns
    -------
    SitingResult
        As from :func:`min_sites_for_target`, with demand = units: ``covered``
        is per unit, ``objective`` the newly covered unit weight (units when
        unweighted), ``bound`` a lower bound on the number of sites.
    """
    _check_method(method)
    model = MinimumSitesModel.from_unit_candidates(
        unit_candidates,
        target_share,
        units_already_covered=units_already_covered,
        unit_weights=unit_weights,
    )
    return model.solve(method, time_limit_s=time_limit_s)


def explain_sites(
    result: SitingResult,
    coverage: Any,
    weights: Any,
    *,
    candidate_ids: Sequence[Any] | None = None,
    demand_unit_codes: Sequence[Any] | None = None,
) -> pd.DataFrame:
    """
    What each proposed site adds, in rank order.

    Parameters
    ----------
    result
        A result of :func:`solve_mclp`, :func:`min_sites_for_target` or
        :func:`unit_set_cover` computed on the same ``coverage``/``weights``.
    coverage
        Matrix (n_candidates, n_demand) used for ``result``.
    weights
        Persons per demand point (n_demand,).
    candidate_ids
        Optional label per candidate (n_candidates,), e.g. a village code or
        a site name; adds a ``candidate_id`` column.
    demand_unit_codes
        Optional unit code per demand point (n_demand,), e.g. the village
        code; adds ``new_unit_codes`` (";"-joined, sorted) and
        ``n_new_units``: the units in which the site newly covers somebody.

    Returns
    -------
    pandas.DataFrame
        One row per selected site: ``rank``, ``candidate``,
        [``candidate_id``], ``new_persons`` (marginal gain in rank order; the
        column sums to ``result.objective``), ``persons_in_reach`` (all
        persons within the threshold, including those already covered),
        ``new_demand_points``, ``cumulative_new_persons``, ``share_after``,
        [``new_unit_codes``, ``n_new_units``]. The nearest existing facility
        is for the caller to add from geometry.
    """
    a, w, base = _check_inputs(coverage, weights, result.already_covered)
    if candidate_ids is not None and len(candidate_ids) != a.shape[0]:
        raise ValueError("candidate_ids must have one entry per candidate (row of coverage)")
    codes = None
    if demand_unit_codes is not None:
        codes = np.asarray(demand_unit_codes, dtype=object)
        if codes.shape[0] != a.shape[1]:
            raise ValueError("demand_unit_codes must have one entry per demand point (column of coverage)")
    covered = base.copy()
    total = float(w.sum())
    running = float(w[base].sum())
    rows = []
    cum_new = 0.0
    for rank, j in enumerate(np.asarray(result.selected, dtype=np.int64), start=1):
        idx = a.indices[a.indptr[j] : a.indptr[j + 1]]
        new = idx[~covered[idx]]
        gain = float(w[new].sum())
        covered[new] = True
        cum_new += gain
        running += gain
        row: dict[str, Any] = {"rank": rank, "candidate": int(j)}
        if candidate_ids is not None:
            row["candidate_id"] = candidate_ids[j]
        row.update(
            new_persons=gain,
            persons_in_reach=float(w[idx].sum()),
            new_demand_points=int(np.count_nonzero(w[new] > 0)),
            cumulative_new_persons=cum_new,
            share_after=running / total if total > 0 else 0.0,
        )
        if codes is not None:
            sel = new[w[new] > 0]
            u = sorted({str(c) for c in codes[sel] if c is not None and not (isinstance(c, float) and np.isnan(c))})
            row["new_unit_codes"] = ";".join(u)
            row["n_new_units"] = len(u)
        rows.append(row)
    cols = ["rank", "candidate"] + (["candidate_id"] if candidate_ids is not None else []) + [
        "new_persons", "persons_in_reach", "new_demand_points", "cumulative_new_persons", "share_after"
    ] + (["new_unit_codes", "n_new_units"] if codes is not None else [])
    return pd.DataFrame(rows, columns=cols)
