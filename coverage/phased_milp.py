"""The multi-period covering MILP of phased siting, solved by HiGHS (``scipy.optimize.milp``), and its bounds."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

__all__ = ["phased_lagrangian_bound", "phased_lp_bound", "phased_milp"]


def _coverage_rows(B: sp.csr_array, free_g: np.ndarray, free_t: np.ndarray, m: int, n_z: int) -> sp.csr_array:
    """Rows ``-sum_{j in N(g)} z_{j,t}`` of each free (group, year) pair, over the z columns (t * m + j)."""
    G = sp.csr_array(B.T)  # (groups, candidates)
    G.sort_indices()
    deg = np.diff(G.indptr)[free_g]
    starts = G.indptr[free_g]
    rows = np.repeat(np.arange(free_g.size, dtype=np.int64), deg)
    # positions of each row's candidates in G.indices
    offsets = np.arange(int(deg.sum()), dtype=np.int64) - np.repeat(np.cumsum(deg) - deg, deg)
    cols = G.indices[np.repeat(starts, deg) + offsets].astype(np.int64) + np.repeat(free_t, deg) * m
    return sp.csr_array((-np.ones(rows.size), (rows, cols)), shape=(free_g.size, n_z))


def _constraints(B: sp.csr_array, wg: np.ndarray, eg: np.ndarray, budgets: np.ndarray, total: int,
                 need: np.ndarray) -> dict[str, Any]:
    """The rows of the phased model (coverage, open for good, budgets, targets) over the columns z, y, u."""
    m, g = B.shape
    T = eg.shape[0]
    free_t, free_g = np.nonzero(~eg)  # (year, group) pairs that new sites can still cover
    n_z, n_y = m * T, free_g.size
    has_target = np.isfinite(need)
    trivially_met = has_target & (need <= 0)
    open_target = has_target & ~trivially_met
    n_u = int(open_target.sum())
    n_var = n_z + n_y + n_u

    blocks, lo, hi = [], [], []
    # coverage: y[g, t] - sum z[j, t] <= 0
    if n_y:
        cov = _coverage_rows(B, free_g, free_t, m, n_z)
        blocks.append(sp.hstack([cov, sp.eye_array(n_y, format="csr"), sp.csr_array((n_y, n_u))], format="csr"))
        lo.append(np.full(n_y, -np.inf))
        hi.append(np.zeros(n_y))
    # once open, open for good: z[j, t-1] - z[j, t] <= 0
    if T > 1:
        j = np.tile(np.arange(m), T - 1)
        t = np.repeat(np.arange(1, T), m)
        r = np.arange(j.size)
        mono = sp.csr_array((np.concatenate([np.ones(r.size), -np.ones(r.size)]),
                             (np.concatenate([r, r]), np.concatenate([(t - 1) * m + j, t * m + j]))),
                            shape=(r.size, n_var))
        blocks.append(mono)
        lo.append(np.full(r.size, -np.inf))
        hi.append(np.zeros(r.size))
    # budgets: sum_j z[j, t] - sum_j z[j, t-1] <= budgets[t]; sum_j z[j, T-1] <= total
    rows, cols, vals = [], [], []
    for t in range(T):
        rows += [np.full(m, t)]
        cols += [t * m + np.arange(m)]
        vals += [np.ones(m)]
        if t:
            rows += [np.full(m, t)]
            cols += [(t - 1) * m + np.arange(m)]
            vals += [-np.ones(m)]
    rows += [np.full(m, T)]
    cols += [(T - 1) * m + np.arange(m)]
    vals += [np.ones(m)]
    budget = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(T + 1, n_var))
    blocks.append(budget)
    lo.append(np.full(T + 1, -np.inf))
    hi.append(np.concatenate([np.asarray(budgets, float), [float(total)]]))
    # targets: sum_g w_g y[g, t] - need[t] u[t] >= 0
    u_years = np.flatnonzero(open_target)
    if n_u:
        tr, tc, tv = [], [], []
        for k, t in enumerate(u_years):
            sel = np.flatnonzero(free_t == t)
            tr += [np.full(sel.size, k), [k]]
            tc += [n_z + sel, [n_z + n_y + k]]
            tv += [wg[free_g[sel]], [-float(need[t])]]
        blocks.append(sp.csr_array((np.concatenate(tv), (np.concatenate(tr), np.concatenate(tc))), shape=(n_u, n_var)))
        lo.append(np.zeros(n_u))
        hi.append(np.full(n_u, np.inf))
    return {"A": sp.vstack(blocks, format="csr"), "lo": np.concatenate(lo), "hi": np.concatenate(hi), "n_z": n_z,
            "n_y": n_y, "n_u": n_u, "n_var": n_var, "free_g": free_g, "free_t": free_t, "u_years": u_years,
            "trivially_met": trivially_met}


def phased_milp(
    B: sp.csr_array,
    wg: np.ndarray,
    eg: np.ndarray,
    budgets: np.ndarray,
    total: int,
    need: np.ndarray,
    *,
    time_limit_s: float,
    mip_rel_gap: float = 0.0,
) -> dict[str, Any]:
    """
    Exact phased siting on a reduced model, lexicographic in (targets met earliest, cumulative coverage).

    Variables: ``z[j, t]`` = 1 when candidate j is open by year t (binary,
    ``z[j, t-1] <= z[j, t]``, so a site opens once and stays open);
    ``y[g, t]`` in [0, 1] for each (group, year) not already covered by an
    existing facility that year, ``y[g, t] <= sum_{j in N(g)} z[j, t]``;
    year t opens at most ``budgets[t]`` sites and all years together at most
    ``total``. With targets (``need[t]`` persons newly covered required in
    year t, ``nan`` for none) a first MILP maximises
    ``sum_t 2^(T-1-t) u[t]`` where ``u[t]`` = 1 means year t's target is met
    (so the earliest year's target comes first), and a second one maximises
    the cumulative newly covered weight ``sum_t sum_g w_g y[g, t]``
    (person-years) with those targets kept met.

    Parameters
    ----------
    B
        Boolean CSR (m candidates, g groups).
    wg
        Group weights (persons).
    eg
        Boolean (T, g): group already covered in year t by facilities open then.
    budgets
        Sites that may open in each year (T,).
    total
        Sites that may open over all years.
    need
        (T,) persons newly covered needed for each year's target, ``nan`` for no target.
    time_limit_s
        Wall-clock limit (seconds) of each HiGHS solve.
    mip_rel_gap
        Relative gap at which HiGHS stops the coverage MILP.

    Returns
    -------
    dict
        ``opened`` (m,) year index each candidate opens in (-1 = never), or
        None when HiGHS found no solution; ``status_code`` of the coverage
        MILP (0 optimal, 1 time limit); ``dual_bound`` (person-years, an upper
        bound on the cumulative objective under the kept targets);
        ``targets_met`` (T,) bool; ``seconds``; ``message``.
    """
    parts = _constraints(B, wg, eg, budgets, total, need)
    A, lo, hi = parts["A"], parts["lo"], parts["hi"]
    n_z, n_y, n_u, n_var = parts["n_z"], parts["n_y"], parts["n_u"], parts["n_var"]
    free_g, u_years, trivially_met = parts["free_g"], parts["u_years"], parts["trivially_met"]
    m, T = B.shape[0], eg.shape[0]
    cons = LinearConstraint(A, lo, hi)
    integrality = np.concatenate([np.ones(n_z), np.zeros(n_y), np.ones(n_u)])
    lb, ub = np.zeros(n_var), np.ones(n_var)
    t0 = time.perf_counter()
    out: dict[str, Any] = {"opened": None, "status_code": None, "dual_bound": None, "message": "",
                           "targets_met": trivially_met.copy(), "n_variables": int(n_var),
                           "n_constraints": int(A.shape[0]), "nnz": int(A.nnz)}

    if n_u:
        # stage 1: the targets, earliest year first (2^(T-1-t) outweighs all later years together)
        c1 = np.zeros(n_var)
        c1[n_z + n_y:] = -(2.0 ** (T - 1 - u_years))
        res1 = milp(c1, constraints=cons, integrality=integrality, bounds=Bounds(lb, ub),
                    options={"disp": False, "time_limit": max(float(time_limit_s), 0.01), "mip_rel_gap": 0.0})
        out["stage1_status_code"] = int(res1.status)
        if res1.x is not None:
            met = res1.x[n_z + n_y:] > 0.5
            lb[n_z + n_y:] = met.astype(float)  # keep those targets met
            out["targets_met"][u_years[met]] = True

    c = np.zeros(n_var)
    c[n_z:n_z + n_y] = -wg[free_g]
    res = milp(c, constraints=cons, integrality=integrality, bounds=Bounds(lb, ub),
               options={"disp": False, "time_limit": max(float(time_limit_s), 0.01),
                        "mip_rel_gap": float(mip_rel_gap)})
    out["seconds"] = time.perf_counter() - t0
    out["status_code"] = int(res.status)
    out["message"] = str(res.message)
    db = getattr(res, "mip_dual_bound", None)
    if db is not None and np.isfinite(db):
        out["dual_bound"] = -float(db)
    if res.x is not None:
        z = res.x[:n_z].reshape(T, m) > 0.5
        opened = np.full(m, -1, dtype=np.int64)
        for t in range(T - 1, -1, -1):
            opened[z[t]] = t
        out["opened"] = opened
    return out


def _best_schedule(value: np.ndarray, budgets: np.ndarray, total: int) -> tuple[float, np.ndarray]:
    """
    max sum V[j, tau] x[j, tau] with each j opening at most once, at most budgets[tau] per year, total at most ``total``.

    A transportation problem (candidates -> years -> sink), so its LP is
    integral; solved by HiGHS over the candidates among the ``total`` best of
    some year (any other can be swapped for an unused one of those without
    loss). Returns the value and the opening year of each candidate (-1 never).
    """
    m, T = value.shape
    opened = np.full(m, -1, dtype=np.int64)
    n = int(min(total, np.sum(budgets)))
    if n <= 0 or m == 0:
        return 0.0, opened
    kth = min(n, m)
    pool = np.unique(np.concatenate([np.argpartition(-value[:, t], kth - 1)[:kth] for t in range(T)]))
    pool = pool[value[pool].max(axis=1) > 0]
    k = pool.size
    if k == 0:
        return 0.0, opened
    v = value[pool]
    j = np.repeat(np.arange(k), T)
    t = np.tile(np.arange(T), k)
    col = np.arange(k * T)
    rows = sp.vstack([
        sp.csr_array((np.ones(k * T), (j, col)), shape=(k, k * T)),  # each candidate at most once
        sp.csr_array((np.ones(k * T), (t, col)), shape=(T, k * T)),  # each year's budget
        sp.csr_array(np.ones((1, k * T))),  # the total
    ], format="csr")
    b = np.concatenate([np.ones(k), np.asarray(budgets, float), [float(total)]])
    res = linprog(-v.ravel(), A_ub=rows, b_ub=b, bounds=(0.0, 1.0), method="highs")
    if res.status != 0:
        # always feasible (x = 0) and bounded, so only a solver failure: a trivially valid bound, no schedule
        return float(np.sort(v.max(axis=1))[::-1][:n].sum()), opened
    x = res.x.reshape(k, T) > 0.5
    for tau in range(T - 1, -1, -1):
        opened[pool[x[:, tau]]] = tau
    return float(-res.fun), opened


def _lagrangian_value(B: sp.csr_array, wg_pairs: np.ndarray, free_g: np.ndarray, free_t: np.ndarray, T: int,
                      lam: np.ndarray, budgets: np.ndarray, total: int) -> tuple[float, np.ndarray]:
    """L(lam) = sum max(0, w - lam) + the best schedule when opening j in year tau earns its multipliers from tau on."""
    m = B.shape[0]
    L = sp.csr_array((lam, (free_g, free_t)), shape=(B.shape[1], T))
    earn = np.asarray((sp.csr_array(B, dtype=np.float64) @ L).todense()).reshape(m, T)
    value = np.cumsum(earn[:, ::-1], axis=1)[:, ::-1]  # opening in year tau earns the years tau .. T-1
    best, opened = _best_schedule(value, budgets, total)
    return float(np.maximum(wg_pairs - lam, 0.0).sum()) + best, opened


def phased_lagrangian_bound(
    B: sp.csr_array,
    wg: np.ndarray,
    eg: np.ndarray,
    budgets: np.ndarray,
    total: int,
    covered: np.ndarray,
    incumbent: float,
    *,
    deadline: float,
    max_iter: int = 150,
    lam0: np.ndarray | None = None,
    theta0: float = 2.0,
    patience: int = 15,
) -> tuple[float, np.ndarray, np.ndarray]:
    """
    Upper bound (person-years) on the cumulative objective by subgradient steps on the Lagrangian.

    Relaxing ``y[g, t] <= sum_{j in N(g)} z[j, t]`` with ``0 <= lam[g, t] <= w_g``
    leaves ``sum max(0, w_g - lam[g, t])`` plus a schedule of sites
    (:func:`_best_schedule`, exact), so every iterate is a valid bound that
    sees the nesting of the years; the best is returned. Started from
    ``lam = w`` on the pairs the incumbent leaves uncovered (``covered``,
    (T, g)), Polyak steps towards ``incumbent``; it approaches the LP
    relaxation's bound from above. ``lam0`` (multipliers of the free
    (group, year) pairs in ``numpy.nonzero(~eg)`` order) warm-starts it;
    ``theta0`` is the first step factor, halved after ``patience`` steps
    without a better bound. Returns the bound, how often each candidate was
    scheduled (kernel seeds) and the best multipliers.
    """
    T = eg.shape[0]
    m = B.shape[0]
    free_t, free_g = np.nonzero(~eg)
    wg_pairs = wg[free_g]
    lam = np.where(covered[free_t, free_g], 0.0, wg_pairs) if lam0 is None else np.clip(lam0, 0.0, wg_pairs)
    Bt = sp.csr_array(sp.csr_array(B, dtype=np.float64).T)
    best, theta, stall = np.inf, float(theta0), 0
    best_lam = lam
    used = np.zeros(m)
    for _ in range(max_iter):
        val, opened = _lagrangian_value(B, wg_pairs, free_g, free_t, T, lam, budgets, total)
        used += opened >= 0
        if val < best * (1 - 1e-12):
            best, stall, best_lam = val, 0, lam
        else:
            stall += 1
            if stall >= patience:
                theta, stall = theta / 2, 0
        if best <= incumbent * (1 + 1e-9) or theta < 1e-4 or time.perf_counter() > deadline:
            break
        # subgradient: covered by the scheduled sites minus the y the relaxation takes
        z = np.zeros((m, T))
        for t in range(T):
            z[(opened >= 0) & (opened <= t), t] = 1.0
        cover = (Bt @ z)[free_g, free_t]
        sub = cover - (wg_pairs > lam)
        norm = float(sub @ sub)
        if norm == 0.0:
            break
        lam = np.clip(lam - theta * (val - incumbent) / norm * sub, 0.0, wg_pairs)
    return float(best), used, best_lam


def phased_lp_bound(
    B: sp.csr_array,
    wg: np.ndarray,
    eg: np.ndarray,
    budgets: np.ndarray,
    total: int,
    *,
    time_limit_s: float,
) -> tuple[float | None, np.ndarray | None]:
    """
    Upper bound (person-years) on the cumulative objective from the LP relaxation, and the LP's ``z[:, T-1]``.

    The LP (all variables in [0, 1]) is solved by HiGHS (interior point on
    large models); the bound is then recomputed from its duals as a
    Lagrangian bound, valid for any multipliers ``0 <= lam[g, t] <= w_g`` on
    ``y[g, t] <= sum_j z[j, t]``, so solver tolerances cannot make it too
    small: ``sum max(0, w_g - lam[g, t])`` plus the best schedule of sites
    when opening j in year tau earns ``sum_{t >= tau} sum_{g in N(j)} lam[g, t]``
    (a transportation problem, integral). (None, None) when HiGHS does not finish.
    """
    T = eg.shape[0]
    m = B.shape[0]
    parts = _constraints(B, wg, eg, budgets, total, np.full(T, np.nan))
    n_z, n_y = parts["n_z"], parts["n_y"]
    free_g, free_t = parts["free_g"], parts["free_t"]
    c = np.zeros(parts["n_var"])
    c[n_z:n_z + n_y] = -wg[free_g]
    res = linprog(c, A_ub=parts["A"], b_ub=parts["hi"], bounds=(0.0, 1.0),
                  method="highs-ipm" if n_y > 5_000 else "highs",
                  options={"time_limit": max(float(time_limit_s), 0.01), "disp": False})
    if res.status != 0 or res.ineqlin is None:
        return None, None
    lam = np.clip(-np.asarray(res.ineqlin.marginals[:n_y], dtype=np.float64), 0.0, wg[free_g])
    # what each candidate earns per year: the multipliers of the (group, year) pairs it covers
    value, _ = _lagrangian_value(B, wg[free_g], free_g, free_t, T, lam, np.asarray(budgets), int(total))
    return value, np.asarray(res.x[(T - 1) * m:T * m])
