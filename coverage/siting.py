"""
Siting of new elderly-care facilities on a coverage matrix (选址).

Everything here works on a *coverage matrix*: a sparse boolean matrix of shape
``(n_candidates, n_demand)`` whose entry ``(j, i)`` is true when candidate
site ``j`` would serve demand point ``i`` within the walking threshold (see
:mod:`coverage.reach` for making one from a walking network). No geometry and
no network code lives in this module.

Problems solved
---------------
* :func:`solve_mclp` -- maximal covering location problem (MCLP): choose ``p``
  new sites that newly cover the most elderly persons.
* :func:`marginal_curve` -- greedy coverage after 1, 2, ..., k new sites, to
  show a planner where returns flatten.
* :func:`min_sites_for_target` -- the fewest new sites that lift the covered
  share of the elderly to a policy target (partial set cover).
* :func:`unit_set_cover` -- the same for unit-count targets, e.g. "60 % of
  administrative villages have a 互助幸福院".
* :func:`explain_sites` -- a per-site table of what each proposed site adds.

Demand already covered by existing facilities (``already_covered``) is never
counted again: its weight contributes nothing to any new site's gain.

Methods
-------
``"exact"``
    Mixed-integer programme solved by HiGHS through
    :func:`scipy.optimize.milp`, built sparse on a *reduced* model: demand
    that is already covered, cannot be covered or has zero weight is dropped;
    demand points with identical candidate sets are merged (weights summed);
    candidates that cover nothing, duplicate another candidate or whose
    (remaining) coverage is a subset of another candidate's are dropped. None
    of these reductions changes the optimal value.
``"greedy"``
    Lazy greedy with a priority queue (for MCLP within ``1 - 1/e`` of the
    optimum), improved by 1-swaps unless ``local_search=False``. Its quality
    is reported honestly: a rigorous upper bound (the submodular online
    bound, Lagrangian bounds, and the LP relaxation through its duals) and
    the gap ``(bound - objective) / bound``.
``"auto"``
    Greedy and swaps first (cheap, sometimes provably optimal by their
    bound). A small reduced model then goes to the full MILP within
    ``time_limit_s``; when HiGHS stops at the time limit the better of its
    incumbent and the heuristic is kept, status ``"time_limit"`` with the
    gap. A large one gets the LP bound by interior point, the MILP restricted
    to the LP's support when that is small ("kernel"), and a large
    neighbourhood search that re-optimises a few nearby sites at a time
    exactly ("lns"), until the time budget is spent or the gap is closed.

All weights are in persons (elderly people, usually 60+), shares are
fractions in [0, 1].
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

__all__ = [
    "SitingResult",
    "explain_sites",
    "marginal_curve",
    "min_sites_for_target",
    "solve_mclp",
    "unit_set_cover",
]

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

#: LP relaxations with more groups than this are solved by interior point
_IPM_MIN_GROUPS = 5_000

#: candidate dominance is checked only when the pair count stays below this
_DOMINANCE_MAX_PAIRS = 30_000_000

_MARGINAL_COLUMNS = ["rank", "candidate", "gain", "cumulative_covered", "share"]


# --------------------------------------------------------------------------
# result type
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SitingResult:
    """
    Proposed new sites and what they achieve.

    Attributes
    ----------
    selected
        Candidate indices (rows of the coverage matrix) of the new sites, in
        the order of the marginal curve: re-ordered greedily by gain among the
        chosen set, so ``selected[:k]`` is the best first-k subset of them.
        Sites that would add nobody are left out, so ``len(selected)`` can be
        smaller than the ``p`` asked for.
    objective
        Newly covered weight (persons): weight of demand covered by the new
        sites and not already covered.
    covered
        Boolean array (n_demand,): demand covered after the new sites,
        including ``already_covered``.
    already_covered
        Boolean array (n_demand,): demand covered before (existing facilities).
    base_covered_weight
        Weight (persons) covered before any new site.
    total_weight
        Total demand weight (persons), the denominator of the shares.
    share_before, share_after
        Covered share of the total weight before and after the new sites.
    method
        Method that produced ``selected``: ``"exact"`` (HiGHS MILP),
        ``"greedy"``, ``"greedy+swap"`` (greedy improved by 1-swaps),
        ``"kernel"`` (MILP over the LP relaxation's support), ``"lns"``
        (large-neighbourhood search) or ``"none"`` (nothing to decide).
    status
        ``"optimal"`` (proved), ``"time_limit"`` (HiGHS stopped at the time
        limit; best solution kept, see ``gap``), ``"gap_limit"`` (stopped at
        ``mip_rel_gap``), ``"heuristic"`` (greedy, quality given by ``gap``),
        ``"already_met"`` (target met without new sites), ``"unreachable"``
        (target not reachable with all candidates: ``selected`` is the best
        found set reaching the highest achievable share).
    bound
        For MCLP results an upper bound on the achievable newly covered weight
        (persons); for minimum-sites results a lower bound on the number of
        sites. ``None`` when unknown.
    gap
        Relative gap: MCLP ``(bound - objective) / bound``; minimum sites
        ``(len(selected) - bound) / len(selected)``. 0 when proved optimal.
    marginal
        DataFrame with columns ``rank`` (1-based), ``candidate``, ``gain``
        (persons newly covered by this site given the earlier ones),
        ``cumulative_covered`` (persons covered in total, including the base)
        and ``share`` (``cumulative_covered / total_weight``).
    bound_unit
        ``"persons"`` (MCLP) or ``"sites"`` (minimum sites).
    target_share
        The target of :func:`min_sites_for_target` / :func:`unit_set_cover`,
        else ``None``.
    info
        Diagnostics: sizes of the reduced model, timings (seconds), solver
        messages.
    """

    selected: np.ndarray
    objective: float
    covered: np.ndarray
    already_covered: np.ndarray
    base_covered_weight: float
    total_weight: float
    share_before: float
    share_after: float
    method: str
    status: str
    bound: float | None
    gap: float | None
    marginal: pd.DataFrame
    bound_unit: str = "persons"
    target_share: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sites(self) -> int:
        """Number of proposed new sites."""
        return len(self.selected)

    def summary(self) -> str:
        """One line for logs: sites, persons and shares."""
        gap = "n/a" if self.gap is None else f"{100 * self.gap:.3f} %"
        return (
            f"{self.n_sites} new sites ({self.method}, {self.status}, gap {gap}): "
            f"+{self.objective:,.1f} persons, share {100 * self.share_before:.2f} % "
            f"-> {100 * self.share_after:.2f} %"
        )


# --------------------------------------------------------------------------
# input checking and model reduction
# --------------------------------------------------------------------------


def _as_bool_csr(coverage: Any) -> sp.csr_array:
    if sp.issparse(coverage):
        a = sp.csr_array(coverage, copy=True)
    else:
        a = sp.csr_array(np.asarray(coverage))
    if a.ndim != 2:
        raise ValueError("coverage must be a 2-D (n_candidates, n_demand) matrix")
    a.sum_duplicates()
    a.eliminate_zeros()
    out = sp.csr_array(
        (np.ones(a.nnz, dtype=bool), a.indices.astype(np.int64, copy=False), a.indptr.astype(np.int64, copy=False)),
        shape=a.shape,
    )
    out.has_sorted_indices = False
    out.sort_indices()
    return out


def _check_inputs(
    coverage: Any, weights: Any, already_covered: Any
) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    a = _as_bool_csr(coverage)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape[0] != a.shape[1]:
        raise ValueError(
            f"weights has {w.shape[0]} entries but coverage has {a.shape[1]} demand columns "
            "(coverage must be shaped (n_candidates, n_demand))"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite (persons); found NaN or inf")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative (persons)")
    if already_covered is None:
        base = np.zeros(a.shape[1], dtype=bool)
    else:
        base = np.asarray(already_covered, dtype=bool).ravel()
        if base.shape[0] != a.shape[1]:
            raise ValueError(
                f"already_covered has {base.shape[0]} entries, expected {a.shape[1]} (n_demand)"
            )
    return a, w, base


def _row_keys(m: sp.csr_array) -> np.ndarray:
    """Exact group codes of identical rows of a CSR matrix with sorted indices."""
    ind, ptr = m.indices, m.indptr
    keys = [ind[ptr[r] : ptr[r + 1]].tobytes() for r in range(m.shape[0])]
    codes, _ = pd.factorize(pd.Series(keys, dtype=object), sort=False)
    return np.asarray(codes, dtype=np.int64)


@dataclass(frozen=True)
class _Reduced:
    """Reduced model: groups of demand x surviving candidates."""

    B: sp.csr_array  # (m candidates, g groups), bool
    wg: np.ndarray  # (g,) group weights, persons
    cand: np.ndarray  # (m,) original candidate index of each reduced candidate
    demand_group: np.ndarray  # (n_demand,) group of each demand point, -1 if dropped
    stats: dict[str, Any]


def _merge_groups(G: sp.csr_array, wg: np.ndarray) -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """Merge identical rows of G (groups x candidates); return new G, weights, old->new map."""
    G = sp.csr_array(G)
    G.sort_indices()
    codes = _row_keys(G)
    n_new = int(codes.max()) + 1 if codes.size else 0
    first = np.full(n_new, -1, dtype=np.int64)
    # first occurrence of each code
    order = np.arange(codes.size, dtype=np.int64)
    first[codes[::-1]] = order[::-1]
    w_new = np.bincount(codes, weights=wg, minlength=n_new)
    return sp.csr_array(G[first]), w_new, codes


def _dominated_candidates(B: sp.csr_array) -> np.ndarray | None:
    """
    Candidates whose remaining coverage is a subset of another candidate's.

    Returns a boolean mask (True = dominated, drop) or None when the check
    would be too large. Identical candidates keep the lowest index.
    """
    Bt = sp.csc_array(B)  # columns = groups
    deg = np.diff(Bt.indptr)
    pairs = int(np.sum(deg.astype(np.int64) ** 2))
    if pairs > _DOMINANCE_MAX_PAIRS:
        return None
    Bf = sp.csr_array(B, dtype=np.int32)
    O = sp.coo_array(Bf @ Bf.T)
    size = np.diff(B.indptr)
    j, k, v = O.row, O.col, O.data
    off = j != k
    j, k, v = j[off], k[off], v[off]
    sub = v == size[j]  # cover(j) is a subset of cover(k)
    strict = size[k] > size[j]
    tie = (size[k] == size[j]) & (k < j)
    dom = np.zeros(B.shape[0], dtype=bool)
    dom[j[sub & (strict | tie)]] = True
    return dom


def _reduce(a: sp.csr_array, w: np.ndarray, base: np.ndarray, *, dominance: bool = True) -> _Reduced:
    t0 = time.perf_counter()
    n_c, n_d = a.shape
    at = sp.csr_array(a.T)  # (n_d, n_c)
    at.sort_indices()
    n_cov = np.diff(at.indptr)
    keep = (~base) & (n_cov > 0) & (w > 0)
    d_idx = np.flatnonzero(keep)
    demand_group = np.full(n_d, -1, dtype=np.int64)
    stats: dict[str, Any] = {
        "n_candidates": n_c,
        "n_demand": n_d,
        "nnz": int(a.nnz),
        "n_demand_kept": int(d_idx.size),
    }
    if d_idx.size == 0:  # nothing left to cover: no useful candidate
        stats.update(n_groups=0, n_candidates_kept=0, reduced_nnz=0, reduce_s=time.perf_counter() - t0)
        empty = sp.csr_array((0, 0), dtype=bool)
        return _Reduced(empty, np.zeros(0), np.zeros(0, dtype=np.int64), demand_group, stats)

    G, wg, codes = _merge_groups(sp.csr_array(at[d_idx]), w[d_idx])
    demand_group[d_idx] = codes

    # candidates: drop those covering nothing that remains
    B = sp.csr_array(G.T)
    B.sort_indices()
    cand = np.arange(n_c, dtype=np.int64)
    useful = np.diff(B.indptr) > 0
    B = sp.csr_array(B[useful])
    cand = cand[useful]
    stats["n_candidates_useful"] = int(cand.size)

    if dominance and B.shape[0] > 1:
        dom = _dominated_candidates(B)
        if dom is not None and dom.any():
            B = sp.csr_array(B[~dom])
            cand = cand[~dom]
            # groups may have become identical: merge again
            G2, wg, codes2 = _merge_groups(sp.csr_array(B.T), wg)
            demand_group[d_idx] = codes2[demand_group[d_idx]]
            B = sp.csr_array(G2.T)
        stats["dominance_checked"] = dom is not None
    B.sort_indices()
    B = sp.csr_array(B, dtype=bool)
    stats.update(
        n_groups=int(wg.size),
        n_candidates_kept=int(cand.size),
        reduced_nnz=int(B.nnz),
        reduce_s=time.perf_counter() - t0,
    )
    return _Reduced(B, wg, cand, demand_group, stats)


# --------------------------------------------------------------------------
# greedy
# --------------------------------------------------------------------------


def _lazy_greedy(
    B: sp.csr_array,
    wg: np.ndarray,
    k: int,
    *,
    need: float | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Lazy greedy on a (m x g) boolean CSR matrix.

    Picks up to ``k`` candidates (stopping early when no gain is left or, with
    ``need``, once the newly covered weight reaches ``need``). Ties are broken
    by the lowest candidate index. Returns (picked, gains, covered_groups).
    """
    m, g = B.shape
    indptr, indices = B.indptr, B.indices
    covered = np.zeros(g, dtype=bool)
    picked: list[int] = []
    gains: list[float] = []
    if m == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0), covered
    init = sp.csr_array(B, dtype=np.float64) @ wg
    cands = np.arange(m) if allowed is None else np.asarray(allowed, dtype=np.int64)
    heap = [(-float(init[j]), int(j)) for j in cands if init[j] > 0]
    heapq.heapify(heap)
    fresh = np.full(m, -1, dtype=np.int64)
    it = 0
    done = 0.0
    while heap and len(picked) < k:
        if need is not None and done >= need:
            break
        negg, j = heapq.heappop(heap)
        if fresh[j] == it:
            idx = indices[indptr[j] : indptr[j + 1]]
            covered[idx] = True
            picked.append(j)
            gains.append(-negg)
            done += -negg
            it += 1
            continue
        idx = indices[indptr[j] : indptr[j + 1]]
        gain = float(wg[idx][~covered[idx]].sum())
        if gain <= 0.0:
            continue
        fresh[j] = it
        heapq.heappush(heap, (-gain, j))
    return np.asarray(picked, dtype=np.int64), np.asarray(gains, dtype=np.float64), covered


def _online_bound(B: sp.csr_array, wg: np.ndarray, covered: np.ndarray, p: int) -> float:
    """Submodular bound: OPT_p <= f(S) + sum of the p largest marginal gains w.r.t. S."""
    if B.shape[0] == 0:
        return float(wg[covered].sum())
    return _lagrangian_bound(B, wg, p, np.where(covered, 0.0, wg))


def _swap_search(
    B: sp.csr_array,
    wg: np.ndarray,
    start: np.ndarray,
    *,
    deadline: float,
    max_swaps: int = 100_000,
) -> tuple[np.ndarray, float, int]:
    """
    Best-improvement 1-swap local search (vertex substitution) for MCLP.

    Swaps one chosen site for one unchosen candidate while that raises the
    covered weight. With ``cnt_g`` the number of chosen sites covering group
    g, the change of swapping out s and in c is
    ``gain0(c) + overlap1(c, s) - loss(s)`` where ``gain0`` counts groups with
    ``cnt == 0``, ``loss`` groups only s covers and ``overlap1`` groups in
    both c and s that only s covers -- all sparse products.
    Returns (picked, covered weight, number of swaps).
    """
    m, g = B.shape
    sel = np.zeros(m, dtype=bool)
    sel[start] = True
    if sel.sum() == 0 or sel.all():
        cnt = np.asarray(sp.csr_array(B[np.flatnonzero(sel)], dtype=np.int64).sum(axis=0)).ravel()
        return np.flatnonzero(sel), float(wg[cnt > 0].sum()), 0
    Bf = sp.csr_array(B, dtype=np.float64)
    cnt = np.zeros(g, dtype=np.int64)
    np.add.at(cnt, np.concatenate([B.indices[B.indptr[j] : B.indptr[j + 1]] for j in np.flatnonzero(sel)]), 1)
    tol = 1e-12 * float(wg.sum())
    swaps = 0
    while swaps < max_swaps and time.perf_counter() < deadline:
        chosen = np.flatnonzero(sel)
        w0 = np.where(cnt == 0, wg, 0.0)
        w1 = np.where(cnt == 1, wg, 0.0)
        gain0 = np.where(sel, -np.inf, Bf @ w0)
        BS = sp.csr_array(Bf[chosen])
        loss = BS @ w1
        c_best, s_best = int(np.argmax(gain0)), int(np.argmin(loss))
        best = gain0[c_best] - loss[s_best]
        M = sp.coo_array(Bf @ sp.csr_array(BS.multiply(w1[None, :])).T)  # (m, n_chosen)
        if M.nnz:
            d = gain0[M.row] + M.data - loss[M.col]
            k = int(np.argmax(d))
            if d[k] > best:
                best, c_best, s_best = d[k], int(M.row[k]), int(M.col[k])
        if not best > tol:
            break
        s_out = chosen[s_best]
        sel[s_out] = False
        sel[c_best] = True
        cnt[B.indices[B.indptr[s_out] : B.indptr[s_out + 1]]] -= 1
        cnt[B.indices[B.indptr[c_best] : B.indptr[c_best + 1]]] += 1
        swaps += 1
    return np.flatnonzero(sel), float(wg[cnt > 0].sum()), swaps


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
# HiGHS models
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


def _minsites_lp_bound(B: sp.csr_array, wg: np.ndarray, need: float, time_limit_s: float) -> float | None:
    """
    Lower bound (sites, not rounded) on the fewest sites covering ``need`` persons, from the LP relaxation.

    Solved by HiGHS (interior point on large models); the bound is recomputed
    from the LP duals as a Lagrangian bound, valid for any multipliers, so
    solver tolerances cannot make it too large: with ``lam_g >= 0`` on
    ``y_g <= sum_j a_gj x_j`` and ``mu >= 0`` on ``sum_g w_g y_g >= need``,
    ``sum_j min(0, 1 - (B lam)_j) + sum_g min(0, lam_g - mu w_g) + mu need``.
    None when HiGHS does not finish in time.
    """
    m, g, link = _mclp_parts(B, wg)
    cover = sp.csr_array(np.concatenate([np.zeros(m), -wg])[None, :])
    A = sp.vstack([link, cover], format="csr")
    b = np.concatenate([np.zeros(g), [-float(need)]])
    c = np.concatenate([np.ones(m), np.zeros(g)])
    res = linprog(
        c, A_ub=A, b_ub=b, bounds=(0.0, 1.0),
        method="highs-ipm" if g > _IPM_MIN_GROUPS else "highs",
        options={"time_limit": max(float(time_limit_s), 0.01), "disp": False},
    )
    if res.status != 0 or res.ineqlin is None:
        return None
    duals = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
    lam, mu = np.maximum(duals[:g], 0.0), max(float(duals[g]), 0.0)
    reduced = 1.0 - sp.csr_array(B, dtype=np.float64) @ lam
    return float(np.minimum(reduced, 0.0).sum() + np.minimum(lam - mu * wg, 0.0).sum() + mu * float(need))


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
    sub = sp.csr_array(B[support])
    G, wsub, _ = _merge_groups(sp.csr_array(sub.T), wg)
    nonempty = np.diff(G.indptr) > 0
    G, wsub = sp.csr_array(G[nonempty]), wsub[nonempty]
    Bk = sp.csr_array(G.T, dtype=bool)
    Bk.sort_indices()
    sol = _mclp_milp(Bk, wsub, p, time_limit_s, 0.0)
    details = {k: v for k, v in sol.items() if k not in ("x", "dual_bound")}
    details.update(n_candidates=int(support.size), n_groups=int(wsub.size))
    if sol["x"] is None:
        return None, details
    return support[sol["x"]], details


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


def _lns(
    B: sp.csr_array,
    wg: np.ndarray,
    start: np.ndarray,
    *,
    deadline: float,
    free_sites: int = 8,
    max_candidates: int = 150,
    sub_time_s: float = 2.0,
    seed: int = 0,
    stop_at: float | None = None,
) -> tuple[np.ndarray, float, dict[str, int]]:
    """
    Large-neighbourhood search: re-optimise a few nearby sites exactly.

    Repeatedly takes a chosen site, grows a neighbourhood of candidates that
    share demand with it (breadth first, chosen sites first, at most
    ``max_candidates``), frees the chosen sites inside it (at most
    ``free_sites``) and solves the small MCLP of placing that many sites
    among the neighbourhood's candidates by HiGHS, with all other sites
    fixed; the result replaces the freed sites when it covers more.
    Stops early once the covered weight reaches ``stop_at`` (persons), when
    given. Deterministic for a given ``seed`` and time. Returns (picked,
    covered weight, counters).
    """
    m, g = B.shape
    Bc = sp.csc_array(B)
    sel = np.zeros(m, dtype=bool)
    sel[np.asarray(start, dtype=np.int64)] = True
    p = int(sel.sum())
    cnt = np.zeros(g, dtype=np.int64)
    for j in np.flatnonzero(sel):
        cnt[B.indices[B.indptr[j] : B.indptr[j + 1]]] += 1
    value = float(wg[cnt > 0].sum())
    rng = np.random.default_rng(seed)
    stats = {"neighbourhoods": 0, "improvements": 0}
    stale = 0
    while p > 0 and stale < 2 * p and time.perf_counter() < deadline:
        if stop_at is not None and value >= stop_at:
            break
        s = int(rng.choice(np.flatnonzero(sel)))
        in_hood = np.zeros(m, dtype=bool)
        in_hood[s] = True
        frontier, n_hood = np.array([s]), 1
        while n_hood < max_candidates and (sel & in_hood).sum() < free_sites:
            groups = np.unique(sp.csr_array(B[frontier]).indices)
            new = np.unique(sp.csc_array(Bc[:, groups]).indices)
            new = new[~in_hood[new]]
            if new.size == 0:
                break
            new = np.concatenate([new[sel[new]], new[~sel[new]]])[: max_candidates - n_hood]
            in_hood[new] = True
            n_hood += new.size
            frontier = new
        hood = np.flatnonzero(in_hood)
        free = hood[sel[hood]][:free_sites]
        fixed_cnt = cnt.copy()
        for j in free:
            fixed_cnt[B.indices[B.indptr[j] : B.indptr[j + 1]]] -= 1
        w_open = np.where(fixed_cnt > 0, 0.0, wg)  # demand the fixed sites leave uncovered
        current = float(w_open[cnt > 0].sum())
        sub = sp.csr_array(B[hood])
        cols = np.unique(sub.indices)
        cols = cols[w_open[cols] > 0]
        stats["neighbourhoods"] += 1
        if cols.size == 0:
            stale += 1
            continue
        G, w_sub, _ = _merge_groups(sp.csr_array(sp.csr_array(sub[:, cols]).T), w_open[cols])
        nonempty = np.diff(G.indptr) > 0
        G, w_sub = sp.csr_array(G[nonempty]), w_sub[nonempty]
        Bk = sp.csr_array(G.T, dtype=bool)
        Bk.sort_indices()
        sol = _mclp_milp(Bk, w_sub, free.size, min(sub_time_s, max(deadline - time.perf_counter(), 0.05)), 0.0)
        if sol["x"] is None:
            stale += 1
            continue
        rows = sp.csr_array(Bk[sol["x"]])
        gain = float(w_sub[np.unique(rows.indices)].sum())
        if gain <= current * (1 + 1e-12) + 1e-9:
            stale += 1
            continue
        for j in free:
            cnt[B.indices[B.indptr[j] : B.indptr[j + 1]]] -= 1
            sel[j] = False
        for j in hood[sol["x"]]:
            cnt[B.indices[B.indptr[j] : B.indptr[j + 1]]] += 1
            sel[j] = True
        value = float(wg[cnt > 0].sum())
        stats["improvements"] += 1
        stale = 0
    return np.flatnonzero(sel), value, stats


# --------------------------------------------------------------------------
# assembling results
# --------------------------------------------------------------------------


def _order_and_gains(
    a: sp.csr_array, w: np.ndarray, base: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy re-ordering of ``chosen`` (original indices) by gain; zero-gain sites dropped."""
    chosen = np.unique(np.asarray(chosen, dtype=np.int64))
    covered = base.copy()
    if chosen.size == 0:
        return chosen, np.zeros(0), covered
    sub = sp.csr_array(a[chosen])
    sub.sort_indices()
    rem_w = np.where(base, 0.0, w)
    local, gains, _ = _lazy_greedy(sub, rem_w, chosen.size)
    order = chosen[local]
    if order.size:
        rows = sp.csr_array(a[order])
        covered[rows.indices] = True
    return order, gains, covered


def _marginal_frame(order: np.ndarray, gains: np.ndarray, base_w: float, total_w: float) -> pd.DataFrame:
    cum = base_w + np.cumsum(gains) if gains.size else np.zeros(0)
    share = cum / total_w if total_w > 0 else np.zeros_like(cum)
    return pd.DataFrame(
        {
            "rank": np.arange(1, order.size + 1, dtype=np.int64),
            "candidate": order.astype(np.int64),
            "gain": gains.astype(np.float64),
            "cumulative_covered": cum.astype(np.float64),
            "share": share.astype(np.float64),
        },
        columns=_MARGINAL_COLUMNS,
    )


def _build_result(
    a: sp.csr_array,
    w: np.ndarray,
    base: np.ndarray,
    chosen: np.ndarray,
    *,
    method: str,
    status: str,
    bound: float | None,
    bound_unit: str = "persons",
    target_share: float | None = None,
    info: dict[str, Any] | None = None,
) -> SitingResult:
    order, gains, covered = _order_and_gains(a, w, base, chosen)
    total = float(w.sum())
    base_w = float(w[base].sum())
    objective = float(w[covered & ~base].sum())
    after = base_w + objective
    if bound is None:
        gap = None
    elif bound_unit == "persons":
        bound = max(float(bound), objective)
        gap = (bound - objective) / bound if bound > 0 else 0.0
        if gap < 1e-9:
            gap = 0.0
            if status == "heuristic":
                status = "optimal"
    else:
        bound = float(min(bound, order.size))
        gap = (order.size - bound) / order.size if order.size > 0 else 0.0
    return SitingResult(
        selected=order,
        objective=objective,
        covered=covered,
        already_covered=base.copy(),
        base_covered_weight=base_w,
        total_weight=total,
        share_before=base_w / total if total > 0 else 0.0,
        share_after=after / total if total > 0 else 0.0,
        method=method,
        status=status,
        bound=bound,
        gap=gap,
        marginal=_marginal_frame(order, gains, base_w, total),
        bound_unit=bound_unit,
        target_share=target_share,
        info=dict(info or {}),
    )


def _reduced_value(red: _Reduced, picked_reduced: np.ndarray) -> float:
    if picked_reduced.size == 0:
        return 0.0
    rows = sp.csr_array(red.B[picked_reduced])
    cols = np.unique(rows.indices)
    return float(red.wg[cols].sum())


def _check_method(method: str) -> None:
    if method not in ("auto", "exact", "greedy"):
        raise ValueError(f"method must be 'auto', 'exact' or 'greedy', got {method!r}")


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------


def _gap(bound: float, value: float) -> float:
    return (bound - value) / bound if bound > 0 else 0.0


def solve_mclp(
    coverage: Any,
    weights: Any,
    p: int,
    *,
    already_covered: Any = None,
    method: Method = "auto",
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 0.0,
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
        MILP and the neighbourhood search; see the module docstring).
    time_limit_s
        Wall-clock budget (seconds) for the solve after the model reduction:
        the MILP (or the LP bound and the searches) get what the heuristics
        leave of it. HiGHS checks its clock between steps, so a large model
        may overrun it by a fraction.
    mip_rel_gap
        Relative gap at which to stop (0 = prove optimality).
    local_search
        Improve the greedy solution by 1-swaps (methods ``"greedy"`` and
        ``"auto"``).

    Returns
    -------
    SitingResult
        ``objective`` is the newly covered weight (persons); ``bound`` an
        upper bound on it (persons); ``gap = (bound - objective) / bound``.
        ``method`` says which solution was kept: ``"exact"`` (HiGHS),
        ``"greedy"``, ``"greedy+swap"``, ``"kernel"`` or ``"lns"``.
        ``info`` holds the sizes of the reduced model, each step's objective
        and bound, and timings.

    Notes
    -----
    The exact model has a binary ``x_j`` per surviving candidate, a
    continuous ``y_g`` in [0, 1] per group of merged demand points,
    ``y_g <= sum_j a_gj x_j`` and ``sum_j x_j <= p``; adding a site never
    lowers coverage, so "<= p" has the same optimum as "= p".
    Bounds reported for heuristic solutions are rigorous: the submodular
    online bound, Lagrangian bounds from subgradient steps and from the LP
    duals -- each is valid for any multipliers, so solver tolerances cannot
    make them too small.
    """
    _check_method(method)
    if int(p) != p or p < 0:
        raise ValueError(f"p must be a non-negative integer, got {p!r}")
    p = int(p)
    a, w, base = _check_inputs(coverage, weights, already_covered)
    red = _reduce(a, w, base)
    t_start = time.perf_counter()
    deadline = t_start + float(time_limit_s)
    info: dict[str, Any] = {"reduction": red.stats, "p": p}
    B, wg = red.B, red.wg
    m = B.shape[0]
    if p == 0 or m == 0:
        return _build_result(a, w, base, np.zeros(0, dtype=np.int64), method="none", status="optimal",
                             bound=0.0, info=info)
    if p >= m:
        # every useful candidate fits: all coverable demand is covered
        return _build_result(a, w, base, red.cand, method="exact", status="optimal",
                             bound=float(wg.sum()), info=info)

    stop_gap = max(float(mip_rel_gap), 1e-9)
    bound = float(wg.sum())
    inc_pick: np.ndarray | None = None
    inc_val, inc_method = -1.0, "greedy"

    def heuristics() -> None:
        nonlocal inc_pick, inc_val, inc_method, bound
        t0 = time.perf_counter()
        pick, _, cov = _lazy_greedy(B, wg, p)
        val = float(wg[cov].sum())
        bound = min(bound, _online_bound(B, wg, cov, p))
        info["greedy_s"] = time.perf_counter() - t0
        info["greedy_objective"] = val
        info["online_bound"] = bound
        inc_pick, inc_val, inc_method = pick, val, "greedy"
        if local_search and _gap(bound, inc_val) > stop_gap:
            t0 = time.perf_counter()
            ls_deadline = t0 + min(0.3 * float(time_limit_s), 120.0)
            pick2, val2, n_swaps = _swap_search(B, wg, pick, deadline=ls_deadline)
            info["swap_s"] = time.perf_counter() - t0
            info["swaps"] = n_swaps
            info["swap_objective"] = val2
            if val2 > inc_val:
                inc_pick, inc_val, inc_method = pick2, val2, "greedy+swap"

    def finish(pick_red: np.ndarray, meth: str, status: str) -> SitingResult:
        info["solve_s"] = time.perf_counter() - t_start
        return _build_result(a, w, base, red.cand[pick_red], method=meth, status=status, bound=bound, info=info)

    if method in ("greedy", "auto"):
        heuristics()
        if _gap(bound, inc_val) > stop_gap:
            t0 = time.perf_counter()
            lam0 = np.where(_covered_groups(B, inc_pick), 0.0, wg)
            sg = _subgradient_bound(B, wg, p, lam0, inc_val,
                                    deadline=t0 + min(0.1 * float(time_limit_s), 20.0))
            info["subgradient_s"] = time.perf_counter() - t0
            info["lagrangian_bound"] = sg
            bound = min(bound, sg)
        gap = _gap(bound, inc_val)
        if gap <= stop_gap:
            return finish(inc_pick, inc_method, "optimal" if gap <= 1e-9 else "gap_limit")

    run_milp = method == "exact" or (method == "auto" and wg.size <= _MILP_MAX_GROUPS and B.nnz <= _EXACT_MAX_NNZ)
    if run_milp:
        remaining = deadline - time.perf_counter() if method == "auto" else float(time_limit_s)
        sol = _mclp_milp(B, wg, p, max(remaining, 1.0), mip_rel_gap)
        info["milp"] = {k: v for k, v in sol.items() if k != "x"}
        if sol["dual_bound"] is not None:
            bound = min(bound, sol["dual_bound"])
        x = sol["x"]
        x_val = _reduced_value(red, x) if x is not None else -1.0
        if sol["status_code"] == 0 and x is not None:
            if x_val >= inc_val:
                inc_pick, inc_val, inc_method = x, x_val, "exact"
            gap = _gap(bound, inc_val)
            if gap <= 1e-9 or mip_rel_gap <= 0:
                bound = min(bound, max(inc_val, x_val))  # proved optimal by HiGHS
                return finish(inc_pick, inc_method, "optimal")
            return finish(inc_pick, inc_method, "gap_limit")
        # time limit or failure: keep the better of the incumbent and greedy
        if inc_pick is None:
            heuristics()
        if x is not None and x_val >= inc_val:
            inc_pick, inc_val, inc_method = x, x_val, "exact"
        return finish(inc_pick, inc_method, "time_limit" if sol["status_code"] == 1 else "heuristic")

    # heuristic solution: tighten the bound with the LP relaxation
    remaining = deadline - time.perf_counter()
    x_lp = None
    if remaining > 1.0:
        t0 = time.perf_counter()
        lp, x_lp = _mclp_lp_bound(B, wg, p, remaining)
        info["lp_s"] = time.perf_counter() - t0
        info["lp_bound"] = lp
        if lp is not None:
            bound = min(bound, lp)
    remaining = deadline - time.perf_counter()
    support = np.flatnonzero(x_lp > 1e-6) if x_lp is not None else np.zeros(0, dtype=np.int64)
    kernel_ok = 0 < support.size <= max(_KERNEL_PER_SITE * p, _KERNEL_MIN_CANDIDATES)
    info["lp_support"] = int(support.size)
    if method == "auto" and kernel_ok and _gap(bound, inc_val) > stop_gap and remaining > 1.0:
        # kernel search: the MILP over the LP's support and the incumbent,
        # then swaps from its solution over all candidates
        t0 = time.perf_counter()
        support = np.union1d(support, inc_pick)
        k_pick, details = _kernel_milp(B, wg, p, support, 0.5 * remaining)
        if k_pick is not None:
            k_pick, k_val, n_swaps = _swap_search(B, wg, k_pick, deadline=max(deadline, time.perf_counter() + 1.0))
            details.update(objective=k_val, swaps_after=n_swaps)
            if k_val > inc_val:
                inc_pick, inc_val, inc_method = k_pick, k_val, "kernel"
        details["total_s"] = time.perf_counter() - t0
        info["kernel"] = details
    remaining = deadline - time.perf_counter()
    if method == "auto" and x_lp is not None and not kernel_ok and _gap(bound, inc_val) > stop_gap and remaining > 2.0:
        # a very fractional LP: its p largest values, improved by swaps, are a second start
        t0 = time.perf_counter()
        rounded = np.argsort(-x_lp, kind="stable")[:p]
        r_pick, r_val, n_swaps = _swap_search(B, wg, rounded, deadline=t0 + 0.15 * remaining)
        info["lp_rounding"] = {"objective": r_val, "swaps": n_swaps, "seconds": time.perf_counter() - t0}
        if r_val > inc_val:
            inc_pick, inc_val, inc_method = r_pick, r_val, "lp rounding+swap"
    remaining = deadline - time.perf_counter()
    if method == "auto" and _gap(bound, inc_val) > stop_gap and remaining > 1.0:
        t0 = time.perf_counter()
        l_pick, l_val, stats = _lns(B, wg, inc_pick, deadline=deadline)
        stats.update(objective=l_val, seconds=time.perf_counter() - t0)
        info["lns"] = stats
        if l_val > inc_val:
            inc_pick, inc_val, inc_method = l_pick, l_val, "lns"
    gap = _gap(bound, inc_val)
    return finish(inc_pick, inc_method, "optimal" if gap <= 1e-9 else "heuristic")


def _covered_groups(B: sp.csr_array, picked: np.ndarray) -> np.ndarray:
    covered = np.zeros(B.shape[1], dtype=bool)
    if len(picked):
        covered[sp.csr_array(B[np.asarray(picked)]).indices] = True
    return covered


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
    """
    _check_method(method)
    t = float(target_share)
    if not np.isfinite(t) or not (0.0 <= t <= 1.0):
        raise ValueError(f"target_share must be within [0, 1], got {target_share!r}")
    a, w, base = _check_inputs(coverage, weights, already_covered)
    return _min_sites(a, w, base, t, method=method, time_limit_s=float(time_limit_s))


def _reaches(red: _Reduced, picked: np.ndarray, need: float) -> bool:
    return _reduced_value(red, np.asarray(picked, dtype=np.int64)) >= need


def _prune(red: _Reduced, picked: np.ndarray, need: float) -> np.ndarray:
    """Drop sites, last picked first, while the rest still reaches ``need``."""
    B, wg = red.B, red.wg
    keep = list(np.asarray(picked, dtype=np.int64))
    cnt = np.zeros(wg.size, dtype=np.int64)
    for j in keep:
        cnt[B.indices[B.indptr[j] : B.indptr[j + 1]]] += 1
    value = float(wg[cnt > 0].sum())
    for j in reversed(list(keep)):
        idx = B.indices[B.indptr[j] : B.indptr[j + 1]]
        loss = float(wg[idx][cnt[idx] == 1].sum())
        if value - loss >= need:
            cnt[idx] -= 1
            value -= loss
            keep.remove(j)
    return np.asarray(keep, dtype=np.int64)


def _min_sites(
    a: sp.csr_array,
    w: np.ndarray,
    base: np.ndarray,
    t: float,
    *,
    method: str,
    time_limit_s: float,
) -> SitingResult:
    total = float(w.sum())
    base_w = float(w[base].sum())
    need = t * total - base_w - _REL_TOL * total  # newly covered persons required
    info: dict[str, Any] = {"need_persons": max(need, 0.0)}
    if need <= 0:
        return _build_result(a, w, base, np.zeros(0, dtype=np.int64), method="none",
                             status="already_met", bound=0.0, bound_unit="sites", target_share=t, info=info)
    red = _reduce(a, w, base)
    t_start = time.perf_counter()
    deadline = t_start + time_limit_s
    info["reduction"] = red.stats
    B, wg = red.B, red.wg
    coverable = float(wg.sum())
    if coverable < need:
        best_share = (base_w + coverable) / total
        res = _min_sites(a, w, base, best_share, method=method, time_limit_s=time_limit_s)
        info.update(res.info)
        info["best_share_achievable"] = best_share
        return replace(res, status="unreachable", target_share=t, info=info)

    def finish(pick_red: np.ndarray, meth: str, status: str, lower: float) -> SitingResult:
        info["solve_s"] = time.perf_counter() - t_start
        return _build_result(a, w, base, red.cand[pick_red], method=meth, status=status, bound=lower,
                             bound_unit="sites", target_share=t, info=info)

    # greedy until reached, then drop redundant sites
    t0 = time.perf_counter()
    g_pick, _, _ = _lazy_greedy(B, wg, B.shape[0], need=need)
    info["greedy_sites"] = int(g_pick.size)
    pick, meth = _prune(red, g_pick, need), "greedy"
    info["greedy_s"] = time.perf_counter() - t0

    # lower bound: LP relaxation, rounded up
    lower = 1.0
    if pick.size > 1:
        t0 = time.perf_counter()
        lp = _minsites_lp_bound(B, wg, need, max(0.5 * (deadline - time.perf_counter()), 1.0))
        info["lp_s"] = time.perf_counter() - t0
        if lp is not None:
            info["lp_value"] = lp
            lower = max(lower, float(np.ceil(lp - 1e-9)))
    info["lp_lower_bound"] = lower
    if lower >= pick.size:
        return finish(pick, meth, "optimal", lower)

    run_milp = method == "exact" or (method == "auto" and wg.size <= _MILP_MAX_GROUPS and B.nnz <= _EXACT_MAX_NNZ)
    # one site fewer, by greedy + swaps on the MCLP with p = k - 1; on a model too large for the MILP the
    # neighbourhood search then gets the rest of the time to make k - 1 sites reach the target
    search_deadline = time.perf_counter() + min(0.3 * time_limit_s, 120.0) if run_milp or method == "greedy" \
        else deadline
    info["fewer_tries"] = 0
    while pick.size - 1 >= lower and time.perf_counter() < search_deadline:
        k = pick.size - 1
        info["fewer_tries"] += 1
        start, _, _ = _lazy_greedy(B, wg, k)
        cand, val, _ = _swap_search(B, wg, start, deadline=search_deadline)
        found = "greedy+swap"
        if val < need and not run_milp and method == "auto":
            cand, val, _ = _lns(B, wg, cand, deadline=search_deadline, stop_at=need)
            found = "lns"
        if val < need:
            break
        pick, meth = _prune(red, cand, need), found
    if lower >= pick.size:
        return finish(pick, meth, "optimal", lower)

    if not run_milp:
        return finish(pick, meth, "heuristic", lower)
    # MILP for a set with at most k - 1 sites: infeasible proves k minimal
    remaining = deadline - time.perf_counter() if method == "auto" else time_limit_s
    sol = _minsites_milp(B, wg, need, pick.size - 1, max(remaining, 1.0))
    info["milp"] = {k: v for k, v in sol.items() if k != "x"}
    if sol["status_code"] == 2:
        return finish(pick, meth, "optimal", float(pick.size))
    if sol["dual_bound"] is not None:
        lower = max(lower, float(np.ceil(sol["dual_bound"] - 1e-6)))
    x = sol["x"]
    if x is not None and x.size < pick.size:
        proved = sol["status_code"] == 0
        if not _reaches(red, x, need):  # solver tolerance: repair greedily
            x = _repair(red, x, need)
            info["repaired"] = True
            proved = False
        if x.size < pick.size or (x.size == pick.size and proved):
            pick, meth = x, "exact"
            if proved:
                lower = float(x.size)
    if lower >= pick.size:
        return finish(pick, meth, "optimal", float(pick.size))
    return finish(pick, meth, "time_limit" if sol["status_code"] == 1 else "heuristic", lower)


def _repair(red: _Reduced, x: np.ndarray, need: float) -> np.ndarray:
    covered = _covered_groups(red.B, x)
    rest = np.setdiff1d(np.arange(red.B.shape[0]), x)
    rem_w = np.where(covered, 0.0, red.wg)
    more, _, _ = _lazy_greedy(red.B, rem_w, rest.size, need=need - float(red.wg[covered].sum()), allowed=rest)
    return np.concatenate([x, more])


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
    uc = _as_bool_csr(unit_candidates)
    n_units = uc.shape[0]
    weights = np.ones(n_units) if unit_weights is None else unit_weights
    return min_sites_for_target(
        sp.csr_array(uc.T),
        weights,
        target_share,
        already_covered=units_already_covered,
        method=method,
        time_limit_s=time_limit_s,
    )


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
