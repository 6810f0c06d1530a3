"""Heuristic searches for siting: lazy greedy, swap search, neighbourhood search, pruning."""

from __future__ import annotations

import heapq
import time

import numpy as np
import scipy.sparse as sp

from coverage.siting_bounds import _mclp_milp
from coverage.siting_reduce import _covered_groups, _merge_groups, _Reduced, _reduced_value


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


def _reaches(red: _Reduced, picked: np.ndarray, need: float) -> bool:
    """Whether reduced candidates ``picked`` newly cover at least ``need`` persons."""
    return _reduced_value(red, np.asarray(picked, dtype=np.int64)) >= need


def _repair(red: _Reduced, x: np.ndarray, need: float) -> np.ndarray:
    """Add greedy sites to ``x`` until it covers ``need`` persons (a MILP answer short by solver tolerance)."""
    covered = _covered_groups(red.B, x)
    rest = np.setdiff1d(np.arange(red.B.shape[0]), x)
    rem_w = np.where(covered, 0.0, red.wg)
    more, _, _ = _lazy_greedy(red.B, rem_w, rest.size, need=need - float(red.wg[covered].sum()), allowed=rest)
    return np.concatenate([x, more])
