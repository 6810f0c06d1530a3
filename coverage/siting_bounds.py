"""Bounds on siting optima (Lagrangian, LP relaxation) and the exact models solved by HiGHS."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from coverage.siting_reduce import _merge_groups

#: LP relaxations with more groups than this are solved by interior point
_IPM_MIN_GROUPS = 5_000

#: the fewest-sites LP relaxation of a model with more groups than this is solved by column generation
#: (:func:`_minsites_lp_bound_columns`); candidates added per round: at least this many
_COLUMNS_MIN_GROUPS = 15_000
_COLUMNS_MIN_ADD = 500
#: a round of column generation (dual simplex) may take 2.5 times the slowest round before it, and at least this
#: many seconds; beyond, the LP is too fractional for the simplex and the whole LP is solved by interior point
#: (a county's rounds take 0.4-3 s on a slow VM; a fractional 100k x 5,000 model's second round 27-44 s)
_COLUMNS_MIN_ROUND_S = 4.0


# --------------------------------------------------------------------------
# Lagrangian bounds (MCLP, persons)
# --------------------------------------------------------------------------


def _lagrangian_bound(B: sp.csr_array, wg: np.ndarray, p: int, lam: np.ndarray) -> float:
    """
    Upper bound on the MCLP optimum (persons) for multipliers ``0 <= lam <= wg``.

    Relaxing ``y_g <= sum_j a_gj x_j`` with ``lam_g`` gives
    ``sum_g max(0, w_g - lam_g) + (sum of the p largest of B @ lam)``.
    With ``lam = w * (1 - covered(S))`` this is the submodular online bound.
    """
    s = sp.csr_array(B, dtype=np.float64) @ lam
    p = min(p, s.size)
    top = np.partition(s, s.size - p)[s.size - p :].sum() if p > 0 else 0.0
    return float(np.maximum(wg - lam, 0.0).sum() + top)


def _online_bound(B: sp.csr_array, wg: np.ndarray, covered: np.ndarray, p: int) -> float:
    """Submodular bound: OPT_p <= f(S) + sum of the p largest marginal gains w.r.t. S."""
    if B.shape[0] == 0:
        return float(wg[covered].sum())
    return _lagrangian_bound(B, wg, p, np.where(covered, 0.0, wg))


def _subgradient_bound(
    B: sp.csr_array,
    wg: np.ndarray,
    p: int,
    lam0: np.ndarray,
    incumbent: float,
    *,
    deadline: float,
    max_iter: int = 300,
) -> float:
    """
    Lagrangian upper bound (persons) on the MCLP optimum by subgradient steps.

    Every iterate gives a valid bound (:func:`_lagrangian_bound`); the best
    is returned. Polyak steps towards ``incumbent``; it approaches the LP
    relaxation bound from above.
    """
    m = B.shape[0]
    if p >= m:
        return float(wg.sum())
    Bf = sp.csr_array(B, dtype=np.float64)
    Bt = sp.csr_array(Bf.T)
    lam = np.clip(lam0, 0.0, wg)
    best = np.inf
    theta, stall = 1.0, 0
    for _ in range(max_iter):
        s = Bf @ lam
        top = np.argpartition(s, m - p)[m - p :]
        val = float(np.maximum(wg - lam, 0.0).sum() + s[top].sum())
        if val < best * (1 - 1e-12):
            best, stall = val, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        if best <= incumbent * (1 + 1e-12) or theta < 1e-4 or time.perf_counter() > deadline:
            break
        x = np.zeros(m)
        x[top] = 1.0
        sub = (Bt @ x) - (wg > lam)
        norm = float(sub @ sub)
        if norm == 0.0:
            break
        lam = np.clip(lam - theta * (val - incumbent) / norm * sub, 0.0, wg)
    return best


# --------------------------------------------------------------------------
# HiGHS models: MILPs and LP relaxations
# --------------------------------------------------------------------------


def _mclp_parts(B: sp.csr_array, wg: np.ndarray) -> tuple[int, int, sp.csr_array]:
    m, g = B.shape
    Gm = sp.csr_array(B.T, dtype=np.float64)  # (g, m)
    link = sp.hstack([-Gm, sp.eye_array(g, format="csr")], format="csr")  # y - G x <= 0
    return m, g, link


def _highs_options(time_limit_s: float, mip_rel_gap: float | None = None) -> dict[str, Any]:
    opts: dict[str, Any] = {"disp": False, "time_limit": max(float(time_limit_s), 0.01)}
    if mip_rel_gap is not None:
        opts["mip_rel_gap"] = float(mip_rel_gap)
    return opts


def _mclp_milp(
    B: sp.csr_array, wg: np.ndarray, p: int, time_limit_s: float, mip_rel_gap: float
) -> dict[str, Any]:
    m, g, link = _mclp_parts(B, wg)
    card = sp.csr_array(np.concatenate([np.ones(m), np.zeros(g)])[None, :])
    A = sp.vstack([link, card], format="csr")
    ub = np.concatenate([np.zeros(g), [float(p)]])
    c = np.concatenate([np.zeros(m), -wg])
    integrality = np.concatenate([np.ones(m), np.zeros(g)])
    t0 = time.perf_counter()
    res = milp(
        c,
        constraints=LinearConstraint(A, -np.inf, ub),
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        options=_highs_options(time_limit_s, mip_rel_gap),
    )
    out: dict[str, Any] = {
        "status_code": int(res.status),
        "message": str(res.message),
        "seconds": time.perf_counter() - t0,
        "x": None,
        "dual_bound": None,
        "mip_gap": getattr(res, "mip_gap", None),
    }
    if res.x is not None:
        out["x"] = np.flatnonzero(res.x[:m] > 0.5)
    db = getattr(res, "mip_dual_bound", None)
    if db is not None and np.isfinite(db):
        out["dual_bound"] = -float(db)
    return out


def _mclp_lp_bound(
    B: sp.csr_array, wg: np.ndarray, p: int, time_limit_s: float
) -> tuple[float | None, np.ndarray | None]:
    """Upper bound (persons) from the LP relaxation and the LP's x; (None, None) when HiGHS does not finish."""
    m, g, link = _mclp_parts(B, wg)
    card = sp.csr_array(np.concatenate([np.ones(m), np.zeros(g)])[None, :])
    A = sp.vstack([link, card], format="csr")
    ub = np.concatenate([np.zeros(g), [float(p)]])
    c = np.concatenate([np.zeros(m), -wg])
    res = linprog(
        c,
        A_ub=A,
        b_ub=ub,
        bounds=(0.0, 1.0),
        method="highs-ipm" if g > _IPM_MIN_GROUPS else "highs",
        options={"time_limit": max(float(time_limit_s), 0.01), "disp": False},
    )
    if res.status != 0 or res.ineqlin is None:
        return None, None
    # A rigorous bound from HiGHS's duals (valid for any multipliers, so
    # solver tolerances cannot make it too small): lambda_g on the link rows.
    lam = np.clip(-np.asarray(res.ineqlin.marginals[:g], dtype=np.float64), 0.0, wg)
    return _lagrangian_bound(B, wg, p, lam), np.asarray(res.x[:m])


def _minsites_lp(B: sp.csr_array, wg: np.ndarray, need: float, time_limit_s: float,
                 method: str) -> tuple[float, np.ndarray, np.ndarray, float] | None:
    """
    The fewest-sites LP relaxation solved by HiGHS: (value in sites, x, multipliers of the groups, multiplier of the target).

    ``None`` when HiGHS does not finish in time.
    """
    m, g, link = _mclp_parts(B, wg)
    cover = sp.csr_array(np.concatenate([np.zeros(m), -wg])[None, :])
    A = sp.vstack([link, cover], format="csr")
    b = np.concatenate([np.zeros(g), [-float(need)]])
    c = np.concatenate([np.ones(m), np.zeros(g)])
    res = linprog(c, A_ub=A, b_ub=b, bounds=(0.0, 1.0), method=method,
                  options={"time_limit": max(float(time_limit_s), 0.01), "disp": False})
    if res.status != 0 or res.ineqlin is None:
        return None
    duals = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    return float(res.fun), np.asarray(res.x[:m], dtype=np.float64), np.maximum(duals[:g], 0.0), max(float(duals[g]), 0.0)


def _minsites_lagrangian(B: sp.csr_array, wg: np.ndarray, need: float, lam: np.ndarray,
                         mu: float) -> tuple[float, np.ndarray]:
    """
    Lagrangian lower bound (sites) on the fewest-sites LP for multipliers ``lam >= 0``, ``mu >= 0``, and the reduced costs.

    With ``lam_g`` on ``y_g <= sum_j a_gj x_j`` and ``mu`` on
    ``sum_g w_g y_g >= need``, over ``0 <= x, y <= 1``: the bound is
    ``sum_j min(0, 1 - (B lam)_j) + sum_g min(0, lam_g - mu w_g) + mu need``,
    valid for any such multipliers. Returns (bound, ``1 - B lam`` per candidate).
    """
    reduced = 1.0 - sp.csr_array(B, dtype=np.float64) @ lam
    bound = float(np.minimum(reduced, 0.0).sum() + np.minimum(lam - mu * wg, 0.0).sum() + mu * float(need))
    return bound, reduced


def _minsites_lp_bound(B: sp.csr_array, wg: np.ndarray, need: float,
                       time_limit_s: float) -> tuple[float | None, np.ndarray | None]:
    """
    Lower bound (sites, not rounded) on the fewest sites covering ``need`` persons, from the LP relaxation, and the LP's x.

    Solved by HiGHS (interior point on large models); the bound is recomputed
    from the LP duals as a Lagrangian bound (:func:`_minsites_lagrangian`),
    valid for any multipliers, so solver tolerances cannot make it too large.
    ``(None, None)`` when HiGHS does not finish in time.
    """
    lp = _minsites_lp(B, wg, need, time_limit_s, "highs-ipm" if wg.size > _IPM_MIN_GROUPS else "highs")
    if lp is None:
        return None, None
    _, x, lam, mu = lp
    return _minsites_lagrangian(B, wg, need, lam, mu)[0], x


def _minsites_lp_bound_columns(
    B: sp.csr_array, wg: np.ndarray, need: float, start: np.ndarray, time_limit_s: float, *, enough: float = np.inf
) -> tuple[float | None, np.ndarray | None, dict[str, Any]]:
    """
    As :func:`_minsites_lp_bound`, by column generation: the LP over a few candidates, adding those it prices in.

    The LP is solved over the candidates ``start`` (the greedy sites) and
    the ``_COLUMNS_MIN_ADD`` or ``5 * len(start)`` candidates covering the
    most persons (more of those while the set cannot reach ``need``); the candidates whose reduced cost under its duals is
    negative (at most ``max(_COLUMNS_MIN_ADD, 2 * len(start))``, most
    negative first) are added and the LP solved again, until none is left,
    the bound rounded up equals the restricted LP's value rounded up (the LP
    optimum lies between the two, so no further round can raise the rounded
    bound) or reaches ``enough`` sites, or the time is up.

    The restricted LPs are solved by dual simplex, which suits the nearly
    integral LP of a walking catchment model. On a very fractional LP (wide,
    heavily overlapping catchments) a round can take far longer than the one
    before; a round taking more than 2.5 times the slowest before (and more
    than ``_COLUMNS_MIN_ROUND_S``) is stopped, and the whole LP is solved by
    interior point (:func:`_minsites_lp_bound`) with the time left.

    Every round gives a valid bound on the full LP: its duals, extended to
    the groups outside the restricted LP, are multipliers of
    :func:`_minsites_lagrangian`. A group that the set's candidates cover
    identically to others shares its merged group's multiplier in proportion
    to its weight (which leaves the restricted LP's duals optimal); a group
    no candidate of the set covers gets ``mu * w_g``, its worth at the
    target's price. The best bound of all rounds is returned, with the last
    restricted LP's x (zero outside the set), which is a feasible LP solution
    of the full model. On a county (30,892 candidates, 83,911 groups after
    the reduction) five rounds over at most 1,865 candidates give 180.02
    sites, rounded 181, in about 10 s where the whole LP takes 26 s by
    interior point. ``(None, None, details)`` when not even the first round
    finishes in time.
    """
    t0 = time.perf_counter()
    deadline = t0 + float(time_limit_s)
    m = B.shape[0]
    start = np.unique(np.asarray(start, dtype=np.int64))
    weight = sp.csr_array(B, dtype=np.float64) @ wg
    by_weight = np.argsort(-weight, kind="stable")
    n_top = min(m, max(_COLUMNS_MIN_ADD, 5 * start.size))
    cols = np.union1d(start, by_weight[:n_top])
    per_round = max(_COLUMNS_MIN_ADD, 2 * start.size)
    best, x_full, slowest = -np.inf, None, 0.0
    details: dict[str, Any] = {"rounds": 0, "bounds": []}
    while True:
        Bk, wk, codes = _restricted_groups(B, wg, cols)
        if float(wk.sum()) < need:  # the set cannot reach the target: add the next largest candidates
            if n_top >= m:
                details["stopped"] = "unreachable"
                break
            cols = np.union1d(cols, by_weight[n_top : n_top + per_round])
            n_top += per_round
            continue
        round_limit = min(deadline - time.perf_counter(), max(_COLUMNS_MIN_ROUND_S, 2.5 * slowest))
        t_round = time.perf_counter()
        lp = _minsites_lp(Bk, wk, need, round_limit, "highs-ds")
        slowest = max(slowest, time.perf_counter() - t_round)
        if lp is None:
            if time.perf_counter() < deadline:  # a round far slower than the ones before: a fractional LP
                details["stopped"] = "round too slow"
                whole, x_whole = _minsites_lp_bound(B, wg, need, deadline - time.perf_counter())
                details["whole_lp"] = whole is not None
                if whole is not None:
                    best, x_full = max(best, whole), x_whole
            else:
                details["stopped"] = "time limit"
            break
        value, x, lam_k, mu = lp
        inside = codes >= 0
        lam = mu * wg
        lam[inside] = lam_k[codes[inside]] * wg[inside] / wk[codes[inside]]
        bound, reduced = _minsites_lagrangian(B, wg, need, lam, mu)
        best = max(best, bound)
        details["bounds"].append(bound)
        x_full = np.zeros(m)
        x_full[cols] = x
        details.update(rounds=details["rounds"] + 1, n_candidates=int(cols.size), n_groups=int(wk.size),
                       restricted_value=value)
        priced = np.flatnonzero(reduced < -1e-9)
        priced = priced[~np.isin(priced, cols)]
        if priced.size == 0:
            details["stopped"] = "converged"
            break
        if np.ceil(best - 1e-9) >= min(np.ceil(value - 1e-9), enough):
            details["stopped"] = "rounded bound reached"
            break
        if time.perf_counter() >= deadline:
            details["stopped"] = "time limit"
            break
        add = priced[np.argsort(reduced[priced], kind="stable")[:per_round]]
        cols = np.union1d(cols, add)
    details["seconds"] = time.perf_counter() - t0
    if x_full is None:
        return None, None, details
    return best, x_full, details


def _kernel_milp(
    B: sp.csr_array, wg: np.ndarray, p: int, support: np.ndarray, time_limit_s: float
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """
    MILP restricted to the candidates in ``support`` (LP support + incumbent).

    The restricted model is usually far smaller than the full one (demand
    groups are re-merged over the kept candidates), so HiGHS often solves it
    to optimality in seconds. Its optimum is a feasible solution of the full
    problem, not a bound. Returns (picked reduced-candidate indices, details).
    """
    support = np.unique(np.asarray(support, dtype=np.int64))
    Bk, wsub = _kernel_groups(B, wg, support)
    sol = _mclp_milp(Bk, wsub, p, time_limit_s, 0.0)
    details = {k: v for k, v in sol.items() if k not in ("x", "dual_bound")}
    details.update(n_candidates=int(support.size), n_groups=int(wsub.size))
    if sol["x"] is None:
        return None, details
    return support[sol["x"]], details


def _restricted_groups(B: sp.csr_array, wg: np.ndarray, cols: np.ndarray) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """
    The coverage of the candidates ``cols`` alone, its demand groups re-merged.

    Returns (candidates x merged groups, merged weights, merged group of each
    group of ``B`` or -1 where none of ``cols`` covers it). Groups of zero
    weight are left out.
    """
    sub = sp.csr_array(B[cols])
    G, wsub, codes = _merge_groups(sp.csr_array(sub.T), wg)
    kept = (np.diff(G.indptr) > 0) & (wsub > 0)
    new_code = np.full(kept.size, -1, dtype=np.int64)
    new_code[kept] = np.arange(int(kept.sum()))
    Bk = sp.csr_array(sp.csr_array(G[kept]).T, dtype=bool)
    Bk.sort_indices()
    return Bk, wsub[kept], new_code[codes]


def _kernel_groups(B: sp.csr_array, wg: np.ndarray, support: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
    """The coverage of the candidates in ``support`` alone: its demand groups re-merged, as (candidates x groups, weights)."""
    Bk, wsub, _ = _restricted_groups(B, wg, support)
    return Bk, wsub


def _kernel_minsites(
    B: sp.csr_array, wg: np.ndarray, need: float, max_sites: int, support: np.ndarray, time_limit_s: float
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """
    The fewest sites (at most ``max_sites``) among ``support`` (LP support + incumbent) that cover ``need``.

    As :func:`_kernel_milp` for the fewest-sites model: a feasible set of the
    full problem when found, not a bound. Returns (picked reduced-candidate
    indices or None, details).
    """
    support = np.unique(np.asarray(support, dtype=np.int64))
    Bk, wsub = _kernel_groups(B, wg, support)
    details: dict[str, Any] = {"n_candidates": int(support.size), "n_groups": int(wsub.size)}
    if float(wsub.sum()) < need:
        return None, details
    sol = _minsites_milp(Bk, wsub, need, max_sites, time_limit_s)
    details.update({k: v for k, v in sol.items() if k not in ("x", "dual_bound")})
    if sol["x"] is None or sol["status_code"] not in (0, 1):
        return None, details
    return support[sol["x"]], details


def _minsites_milp(
    B: sp.csr_array, wg: np.ndarray, need: float, max_sites: int, time_limit_s: float
) -> dict[str, Any]:
    m, g, link = _mclp_parts(B, wg)
    cover_row = sp.csr_array(np.concatenate([np.zeros(m), wg])[None, :])
    card = sp.csr_array(np.concatenate([np.ones(m), np.zeros(g)])[None, :])
    A = sp.vstack([link, cover_row, card], format="csr")
    lb = np.concatenate([np.full(g, -np.inf), [need], [-np.inf]])
    ub = np.concatenate([np.zeros(g), [np.inf], [float(max_sites)]])
    c = np.concatenate([np.ones(m), np.zeros(g)])
    integrality = np.concatenate([np.ones(m), np.zeros(g)])
    t0 = time.perf_counter()
    res = milp(
        c,
        constraints=LinearConstraint(A, lb, ub),
        integrality=integrality,
        bounds=Bounds(0.0, 1.0),
        options=_highs_options(time_limit_s, 0.0),
    )
    out: dict[str, Any] = {
        "status_code": int(res.status),
        "message": str(res.message),
        "seconds": time.perf_counter() - t0,
        "x": None,
        "dual_bound": None,
        "fun": None if res.fun is None else float(res.fun),
    }
    if res.x is not None:
        out["x"] = np.flatnonzero(res.x[:m] > 0.5)
    db = getattr(res, "mip_dual_bound", None)
    if db is not None and np.isfinite(db):
        out["dual_bound"] = float(db)
    return out


def _minsites_counting_bound(B: sp.csr_array, wg: np.ndarray, need: float) -> float:
    """
    Lower bound on the fewest sites covering ``need`` persons: the largest sites' own coverages added up.

    No k sites together cover more than the k largest single-site coverages
    (``B @ wg``), so the first k whose largest coverages reach ``need`` is a
    valid bound. It is weak (it ignores the overlap of sites) but costs one
    sparse product and a sort, and stands when the LP relaxation
    (:func:`_minsites_lp_bound`) does not finish in time. Persons as in
    ``wg``; returns at least 1, and ``inf`` when every site together cannot
    reach ``need``.
    """
    if need <= 0:
        return 0.0
    coverage = np.sort(np.asarray(sp.csr_array(B, dtype=np.float64) @ np.asarray(wg, np.float64)))[::-1]
    reached = np.flatnonzero(np.cumsum(coverage) >= float(need))
    return float(reached[0] + 1) if reached.size else float("inf")
