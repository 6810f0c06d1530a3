"""Check siting inputs and reduce a coverage matrix to a smaller model with the same optimum."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: candidate dominance is checked only when the pair count (sum over groups of candidates²) stays below this;
#: a county (44k candidates, 86k groups, 48M pairs) takes about half a second
_DOMINANCE_MAX_PAIRS = 500_000_000
#: candidate pairs formed at once (memory: about 16 bytes each)
_DOMINANCE_CHUNK_PAIRS = 8_000_000

_METHODS = ("auto", "exact", "greedy")


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be 'auto', 'exact' or 'greedy', got {method!r}")


def _check_p(p: Any) -> int:
    if int(p) != p or p < 0:
        raise ValueError(f"p must be a non-negative integer, got {p!r}")
    return int(p)


def _check_share(target_share: Any) -> float:
    t = float(target_share)
    if not np.isfinite(t) or not (0.0 <= t <= 1.0):
        raise ValueError(f"target_share must be within [0, 1], got {target_share!r}")
    return t


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
    would be too large. Identical candidates keep the lowest index. The
    overlaps ``B @ B.T`` are formed for a chunk of candidates at a time (at
    most about ``_DOMINANCE_CHUNK_PAIRS`` pairs), so memory stays bounded on
    a county.
    """
    Bt = sp.csc_array(B)  # columns = groups
    deg = np.diff(Bt.indptr).astype(np.int64)
    pairs = int(np.sum(deg ** 2))
    if pairs > _DOMINANCE_MAX_PAIRS:
        return None
    Bf = sp.csr_array(B, dtype=np.int32)
    BfT = sp.csr_array(Bf.T)
    size = np.diff(B.indptr)
    # pairs each candidate forms: the candidates of each of its groups
    done_before = np.concatenate([[0], np.cumsum(Bf @ deg)])  # pairs of the candidates before each one
    dom = np.zeros(B.shape[0], dtype=bool)
    start = 0
    while start < B.shape[0]:
        stop = int(np.searchsorted(done_before, done_before[start] + _DOMINANCE_CHUNK_PAIRS, side="right")) - 1
        stop = min(max(stop, start + 1), B.shape[0])
        O = sp.coo_array(Bf[start:stop] @ BfT)
        j, k, v = O.row.astype(np.int64) + start, O.col.astype(np.int64), O.data
        off = j != k
        j, k, v = j[off], k[off], v[off]
        sub = v == size[j]  # cover(j) is a subset of cover(k)
        strict = size[k] > size[j]
        tie = (size[k] == size[j]) & (k < j)
        dom[j[sub & (strict | tie)]] = True
        start = stop
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


def _reduced_value(red: _Reduced, picked_reduced: np.ndarray) -> float:
    """Weight (persons) of the groups covered by reduced candidates ``picked_reduced``."""
    if picked_reduced.size == 0:
        return 0.0
    rows = sp.csr_array(red.B[picked_reduced])
    cols = np.unique(rows.indices)
    return float(red.wg[cols].sum())


def _covered_groups(B: sp.csr_array, picked: np.ndarray) -> np.ndarray:
    covered = np.zeros(B.shape[1], dtype=bool)
    if len(picked):
        covered[sp.csr_array(B[np.asarray(picked)]).indices] = True
    return covered

