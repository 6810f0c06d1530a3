"""Tests for coverage.siting: optima checked against brute-force enumeration."""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from coverage import siting_models
from coverage.siting import (
    MaximalCoveringModel,
    MinimumSitesModel,
    SitingResult,
    explain_sites,
    marginal_curve,
    min_sites_for_target,
    solve_mclp,
    unit_set_cover,
)
from coverage.siting_reduce import _check_inputs, _covered_groups, _reduce
from coverage.siting_search import _lazy_greedy, _lns

SEEDS = range(6)


def _instance(seed: int, n_cand: int = 8, n_dem: int = 22, density: float = 0.22, base_frac: float = 0.2):
    rng = np.random.default_rng(seed)
    dense = rng.random((n_cand, n_dem)) < density
    weights = np.round(rng.random(n_dem) * 40, 3)  # persons
    base = rng.random(n_dem) < base_frac
    return sp.csr_array(dense), dense, weights, base


def _new_weight(dense: np.ndarray, weights: np.ndarray, base: np.ndarray, sites) -> float:
    if len(sites) == 0:
        return 0.0
    cov = dense[list(sites)].any(axis=0) & ~base
    return float(weights[cov].sum())


def _brute_mclp(dense, weights, base, p) -> float:
    n = dense.shape[0]
    return max(_new_weight(dense, weights, base, c) for c in itertools.combinations(range(n), min(p, n)))


def _reaches(covered_w: float, total: float, target: float) -> bool:
    return covered_w >= target * total - 1e-9 * total


def _brute_min_sites(dense, weights, base, target) -> int | None:
    total = weights.sum()
    base_w = weights[base].sum()
    for k in range(dense.shape[0] + 1):
        for c in itertools.combinations(range(dense.shape[0]), k):
            if _reaches(base_w + _new_weight(dense, weights, base, c), total, target):
                return k
    return None


# --------------------------------------------------------------------------
# MCLP
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["exact", "auto"])
def test_mclp_matches_bruteforce(seed, method):
    a, dense, w, base = _instance(seed)
    for p in (1, 2, 3, 4):
        best = _brute_mclp(dense, w, base, p)
        res = solve_mclp(a, w, p, already_covered=base, method=method)
        assert isinstance(res, SitingResult)
        assert res.status == "optimal"
        assert res.objective == pytest.approx(best, abs=1e-6)
        assert len(res.selected) <= p
        # the reported objective is what the selected sites really cover
        assert _new_weight(dense, w, base, res.selected) == pytest.approx(res.objective, abs=1e-9)
        assert res.gap == 0.0
        assert res.bound == pytest.approx(res.objective, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("local_search", [False, True])
def test_greedy_bound_and_gap_are_honest(seed, local_search):
    a, dense, w, base = _instance(seed, n_cand=9, n_dem=30, density=0.25)
    for p in (2, 3, 4):
        opt = _brute_mclp(dense, w, base, p)
        res = solve_mclp(a, w, p, already_covered=base, method="greedy", local_search=local_search)
        assert res.method in ("greedy", "greedy+swap")
        assert res.objective <= opt + 1e-9
        assert res.objective >= (1 - 1 / np.e) * opt - 1e-9
        assert res.bound is not None and res.bound >= opt - 1e-9
        true_gap = (opt - res.objective) / opt
        assert res.gap >= true_gap - 1e-9
        if res.status == "optimal":
            assert res.objective == pytest.approx(opt, abs=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_already_covered_is_never_double_counted(seed):
    a, _, w, base = _instance(seed, base_frac=0.4)
    for p in (1, 3):
        with_base = solve_mclp(a, w, p, already_covered=base, method="exact")
        zeroed = solve_mclp(a, np.where(base, 0.0, w), p, method="exact")
        assert with_base.objective == pytest.approx(zeroed.objective, abs=1e-6)
        assert with_base.base_covered_weight == pytest.approx(w[base].sum())
        assert with_base.share_after == pytest.approx(
            (w[base].sum() + with_base.objective) / w.sum()
        )
        assert with_base.covered[base].all()
        assert with_base.marginal["gain"].sum() == pytest.approx(with_base.objective)


def test_site_covering_only_existing_coverage_gains_nothing():
    # candidate 0 covers a huge but already-covered population, candidate 1 a small new one
    dense = np.array([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=bool)
    w = np.array([1000.0, 500.0, 3.0, 2.0])
    base = np.array([True, True, False, False])
    res = solve_mclp(sp.csr_array(dense), w, 1, already_covered=base, method="exact")
    assert list(res.selected) == [1]
    assert res.objective == pytest.approx(3.0)
    curve = marginal_curve(sp.csr_array(dense), w, 3, already_covered=base)
    assert 0 not in set(curve["candidate"])  # adds nobody
    assert curve["gain"].tolist() == [3.0, 2.0]
    expl = explain_sites(res, sp.csr_array(dense), w)
    assert expl["new_persons"].tolist() == [3.0]
    assert expl["persons_in_reach"].tolist() == [3.0]


def test_selected_in_marginal_order_and_zero_gain_sites_dropped():
    a, dense, w, base = _instance(3, n_cand=8, n_dem=22)
    res = solve_mclp(a, w, 4, already_covered=base, method="exact")
    m = res.marginal
    assert list(m.columns) == ["rank", "candidate", "gain", "cumulative_covered", "share"]
    assert m["candidate"].tolist() == list(res.selected)
    assert (np.diff(m["gain"].to_numpy()) <= 1e-12).all()
    assert (m["gain"] > 0).all()
    assert m["cumulative_covered"].iloc[-1] == pytest.approx(res.base_covered_weight + res.objective)
    # p larger than the useful candidates: only useful sites are returned, all coverable demand covered
    big = solve_mclp(a, w, 8, already_covered=base)
    coverable = dense.any(axis=0) & ~base
    assert big.objective == pytest.approx(w[coverable].sum())
    assert (big.marginal["gain"] > 0).all()


def test_reduction_merges_duplicates_without_changing_optimum():
    a, dense, w, base = _instance(5, n_cand=7, n_dem=18)
    # duplicate every demand column with split weights and duplicate two candidates
    dense2 = np.concatenate([dense, dense], axis=1)
    dense2 = np.concatenate([dense2, dense2[[1, 4]]], axis=0)
    w2 = np.concatenate([w * 0.25, w * 0.75])
    base2 = np.concatenate([base, base])
    for p in (1, 2, 3):
        r1 = solve_mclp(a, w, p, already_covered=base, method="exact")
        r2 = solve_mclp(sp.csr_array(dense2), w2, p, already_covered=base2, method="exact")
        assert r2.objective == pytest.approx(r1.objective, abs=1e-6)
        assert r2.info["reduction"]["n_groups"] <= 18


def test_dense_and_weighted_input_types():
    a, dense, w, base = _instance(1)
    r_sparse = solve_mclp(a, w, 2, already_covered=base)
    r_dense = solve_mclp(dense.astype(float), list(w), 2, already_covered=list(base))
    r_coo = solve_mclp(sp.coo_matrix(dense.astype(np.int8)), w, 2, already_covered=base)
    assert r_dense.objective == pytest.approx(r_sparse.objective)
    assert r_coo.objective == pytest.approx(r_sparse.objective)


def test_trivial_cases():
    a, _, w, base = _instance(2)
    r0 = solve_mclp(a, w, 0, already_covered=base)
    assert r0.n_sites == 0 and r0.objective == 0.0 and r0.share_after == r0.share_before
    empty = sp.csr_array((4, 5), dtype=bool)
    r = solve_mclp(empty, np.ones(5), 2)
    assert r.n_sites == 0 and r.objective == 0.0 and r.status == "optimal"


def test_input_validation():
    a, _, w, base = _instance(0)
    with pytest.raises(ValueError):
        solve_mclp(a, w[:-1], 2)
    with pytest.raises(ValueError):
        solve_mclp(a, -w, 2)
    with pytest.raises(ValueError):
        solve_mclp(a, np.where(np.arange(w.size) == 0, np.nan, w), 2)
    with pytest.raises(ValueError):
        solve_mclp(a, w, -1)
    with pytest.raises(ValueError):
        solve_mclp(a, w, 2, method="magic")
    with pytest.raises(ValueError):
        solve_mclp(a, w, 2, already_covered=base[:-1])
    with pytest.raises(ValueError):
        min_sites_for_target(a, w, 1.5)


def test_time_limit_keeps_a_solution_and_reports_gap():
    rng = np.random.default_rng(11)
    # a clustered instance large enough that HiGHS cannot prove optimality in 0.05 s
    n_c, n_d = 300, 3000
    pts = rng.random((n_d, 2)) * 10_000
    cand = pts[rng.choice(n_d, n_c, replace=False)]
    d2 = ((cand[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    a = sp.csr_array(d2 <= 720.0**2)
    w = rng.gamma(2.0, 10.0, n_d)
    res = solve_mclp(a, w, 30, method="exact", time_limit_s=0.05)
    assert res.status in ("time_limit", "optimal")
    assert res.n_sites <= 30 and res.objective > 0
    assert res.bound is not None and res.bound >= res.objective
    if res.status == "time_limit":
        assert res.gap is not None and res.gap >= 0
    fast = solve_mclp(a, w, 30, method="auto", time_limit_s=5.0)
    assert fast.bound >= fast.objective and 0 <= fast.gap < 0.2


# --------------------------------------------------------------------------
# marginal curve
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_marginal_curve_consistent(seed):
    a, dense, w, base = _instance(seed)
    curve = marginal_curve(a, w, 6, already_covered=base)
    assert list(curve.columns) == ["rank", "candidate", "gain", "cumulative_covered", "share"]
    assert curve["rank"].tolist() == list(range(1, len(curve) + 1))
    gains = curve["gain"].to_numpy()
    assert (np.diff(gains) <= 1e-12).all() and (gains > 0).all()
    base_w = w[base].sum()
    assert np.allclose(curve["cumulative_covered"], base_w + np.cumsum(gains))
    assert np.allclose(curve["share"], curve["cumulative_covered"] / w.sum())
    # gains are the true marginal gains of the prefixes
    for k in range(1, len(curve) + 1):
        prefix = curve["candidate"].iloc[:k].tolist()
        assert _new_weight(dense, w, base, prefix) == pytest.approx(gains[:k].sum())
    # the first pick is the best single site
    assert gains[0] == pytest.approx(_brute_mclp(dense, w, base, 1))
    assert curve["candidate"].is_unique


# --------------------------------------------------------------------------
# minimum number of sites
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["exact", "auto"])
def test_min_sites_is_minimal_and_reaches_target(seed, method):
    a, dense, w, base = _instance(seed, n_cand=9, n_dem=26, density=0.2)
    total = w.sum()
    max_share = (w[base].sum() + w[dense.any(axis=0) & ~base].sum()) / total
    for target in (0.35, 0.6, 0.75, max_share - 1e-6):
        k = _brute_min_sites(dense, w, base, target)
        res = min_sites_for_target(a, w, target, already_covered=base, method=method)
        assert k is not None
        if k == 0:
            assert res.status == "already_met" and res.n_sites == 0
            continue
        assert res.status == "optimal", res.info
        assert res.n_sites == k
        covered_w = w[base].sum() + _new_weight(dense, w, base, res.selected)
        assert _reaches(covered_w, total, target)
        assert res.share_after >= target - 1e-9
        assert res.bound == k and res.bound_unit == "sites" and res.gap == 0.0
        assert res.target_share == target


@pytest.mark.parametrize("seed", SEEDS)
def test_min_sites_greedy_is_feasible_and_bound_valid(seed):
    a, dense, w, base = _instance(seed, n_cand=9, n_dem=26, density=0.2)
    for target in (0.5, 0.7):
        k = _brute_min_sites(dense, w, base, target)
        res = min_sites_for_target(a, w, target, already_covered=base, method="greedy")
        if k in (0, None):
            continue
        assert res.n_sites >= k
        assert res.bound <= k
        assert _reaches(w[base].sum() + _new_weight(dense, w, base, res.selected), w.sum(), target)


def test_min_sites_unreachable_and_already_met():
    a, dense, w, base = _instance(4)
    coverable = dense.any(axis=0) | base
    best_share = w[coverable].sum() / w.sum()
    assert best_share < 0.999
    res = min_sites_for_target(a, w, 0.999, already_covered=base)
    assert res.status == "unreachable"
    assert res.share_after == pytest.approx(best_share)
    assert res.info["best_share_achievable"] == pytest.approx(best_share)
    assert res.target_share == 0.999
    # the fewest sites reaching the best share
    assert res.n_sites == _brute_min_sites(dense, w, base, best_share - 1e-12)
    met = min_sites_for_target(a, w, w[base].sum() / w.sum() * 0.99, already_covered=base)
    assert met.status == "already_met" and met.n_sites == 0
    zero = min_sites_for_target(a, w, 0.0)
    assert zero.status == "already_met"


# --------------------------------------------------------------------------
# unit-count set cover (villages)
# --------------------------------------------------------------------------


def _brute_units(uc: np.ndarray, already: np.ndarray, weights: np.ndarray, target: float) -> int | None:
    total = weights.sum()
    for k in range(uc.shape[1] + 1):
        for c in itertools.combinations(range(uc.shape[1]), k):
            cov = already | (uc[:, list(c)].any(axis=1) if k else np.zeros(uc.shape[0], bool))
            if _reaches(weights[cov].sum(), total, target):
                return k
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_unit_set_cover_minimal(seed):
    rng = np.random.default_rng(100 + seed)
    n_units, n_cand = 10, 8
    uc = rng.random((n_units, n_cand)) < 0.25
    uc[np.arange(n_cand), np.arange(n_cand)] = True  # a village hosting a facility is covered
    already = rng.random(n_units) < 0.2
    for target in (0.6, 0.7, 0.9):  # 0.7 * 10 is 7.000000000000001 in floating point
        k = _brute_units(uc, already, np.ones(n_units), target)
        res = unit_set_cover(sp.csr_array(uc), target, units_already_covered=already)
        if k is None:
            assert res.status == "unreachable"
            continue
        assert res.n_sites == k
        assert res.status in ("optimal", "already_met")
        assert res.covered.sum() >= round(target * n_units)


def test_unit_set_cover_weighted_and_exact_counts():
    # 5 villages, candidate c covers village c and c+1; 60 % of 5 = 3 villages
    uc = np.zeros((5, 5), dtype=bool)
    for c in range(5):
        uc[c, c] = True
        if c + 1 < 5:
            uc[c + 1, c] = True
    res = unit_set_cover(uc, 0.6)
    assert res.n_sites == 2 and res.covered.sum() >= 3 and res.objective >= 3
    res = unit_set_cover(uc, 1.0)
    assert res.n_sites == 3
    weights = np.array([100.0, 1, 1, 1, 1])
    res = unit_set_cover(uc, 0.9, unit_weights=weights)
    assert res.n_sites == 1 and res.covered[0]


# --------------------------------------------------------------------------
# explanation table
# --------------------------------------------------------------------------


def test_explain_sites_sums_to_objective_and_lists_units():
    a, dense, w, base = _instance(2, n_cand=8, n_dem=22, density=0.3)
    res = solve_mclp(a, w, 3, already_covered=base, method="exact")
    ids = [f"site-{j}" for j in range(dense.shape[0])]
    codes = [f"4201{i % 4:02d}" for i in range(dense.shape[1])]
    table = explain_sites(res, a, w, candidate_ids=ids, demand_unit_codes=codes)
    assert isinstance(table, pd.DataFrame)
    assert table["rank"].tolist() == list(range(1, res.n_sites + 1))
    assert table["candidate"].tolist() == list(res.selected)
    assert table["candidate_id"].tolist() == [ids[j] for j in res.selected]
    assert table["new_persons"].sum() == pytest.approx(res.objective)
    assert np.allclose(table["new_persons"], res.marginal["gain"])
    assert table["share_after"].iloc[-1] == pytest.approx(res.share_after)
    covered = base.copy()
    for _, row in table.iterrows():
        new = dense[row["candidate"]] & ~covered & (w > 0)
        expect = sorted({codes[i] for i in np.flatnonzero(new)})
        assert row["new_unit_codes"] == ";".join(expect)
        assert row["n_new_units"] == len(expect)
        covered |= dense[row["candidate"]]


# --------------------------------------------------------------------------
# the large-model path of method="auto" (LP bound, kernel MILP, neighbourhood search)
# --------------------------------------------------------------------------


def _clustered(seed: int, n_c: int = 60, n_d: int = 600, radius: float = 900.0):
    rng = np.random.default_rng(seed)
    pts = rng.random((n_d, 2)) * 6_000
    cand = pts[rng.choice(n_d, n_c, replace=False)]
    d2 = ((cand[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    return sp.csr_array(d2 <= radius**2), rng.gamma(2.0, 10.0, n_d), rng.random(n_d) < 0.15


@pytest.mark.parametrize("seed", range(3))
def test_auto_large_model_path_is_valid(seed, monkeypatch):
    a, w, base = _clustered(seed)
    p = 8
    exact = solve_mclp(a, w, p, already_covered=base, method="exact", time_limit_s=30)
    assert exact.status == "optimal"
    monkeypatch.setattr(siting_models, "_EXACT_MAX_NNZ", 0)  # force the path used for large models
    res = solve_mclp(a, w, p, already_covered=base, method="auto", time_limit_s=5)
    assert res.method in ("greedy", "greedy+swap", "kernel", "lp rounding+swap", "lns")
    assert res.objective <= exact.objective + 1e-6
    assert res.bound >= exact.objective - 1e-6
    assert res.gap >= (exact.objective - res.objective) / exact.objective - 1e-9
    assert res.n_sites <= p
    covered = np.zeros(w.size, dtype=bool)
    covered[sp.csr_array(a[res.selected]).indices] = True
    assert w[covered & ~base].sum() == pytest.approx(res.objective)
    assert res.objective >= 0.97 * exact.objective


@pytest.mark.parametrize("seed", range(3))
def test_fewest_sites_on_a_model_too_large_for_the_milp_is_feasible_with_an_honest_lower_bound(seed, monkeypatch):
    a, w, base = _clustered(seed)
    target = 0.8
    exact = min_sites_for_target(a, w, target, already_covered=base, method="exact", time_limit_s=30)
    assert exact.status == "optimal"
    monkeypatch.setattr(siting_models, "_EXACT_MAX_NNZ", 0)  # force the path used for large models
    res = min_sites_for_target(a, w, target, already_covered=base, method="auto", time_limit_s=5)
    assert res.share_after >= target - 1e-9
    assert res.n_sites >= exact.n_sites
    assert res.bound <= exact.n_sites, "the LP lower bound never exceeds the true minimum"
    assert res.gap == pytest.approx((res.n_sites - res.bound) / res.n_sites)
    assert res.info["lp_lower_bound"] >= 1


def test_neighbourhood_search_never_worsens():
    a, w, base = _clustered(7)
    red = _reduce(*_check_inputs(a, w, base))
    start, _, cov = _lazy_greedy(red.B, red.wg, 6)
    start_val = float(red.wg[cov].sum())
    picked, value, stats = _lns(red.B, red.wg, start, deadline=time.perf_counter() + 3)
    assert picked.size == start.size
    assert value >= start_val - 1e-9
    assert value == pytest.approx(float(red.wg[_covered_groups(red.B, picked)].sum()))
    assert stats["neighbourhoods"] >= 1


# --------------------------------------------------------------------------
# the model classes (MaximalCoveringModel, MinimumSitesModel)
# --------------------------------------------------------------------------


def _catchment(seed: int, n_cand: int = 8, n_dem: int = 22, density: float = 0.3):
    """A catchment-like cost matrix: walking seconds in (0, 900] where a candidate reaches a demand point."""
    rng = np.random.default_rng(seed)
    seconds = np.where(rng.random((n_cand, n_dem)) < density, rng.uniform(30.0, 900.0, (n_cand, n_dem)), 0.0)
    weights = np.round(rng.random(n_dem) * 40, 3)  # persons
    base = rng.random(n_dem) < 0.2
    return sp.csr_matrix(seconds), seconds, weights, base


def _documented_values(section: str) -> set[str]:
    """The quoted values listed under ``section`` (``method`` or ``status``) in SitingResult's docstring."""
    lines = SitingResult.__doc__.split("\n")
    first = lines.index(f"    {section}") + 1
    body = []
    for line in lines[first:]:
        if line.strip() and not line.startswith("        "):  # the next attribute
            break
        body.append(line)
    return set(re.findall(r'``"([^"]+)"``', "\n".join(body)))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_model_built_from_a_catchment_matrix_proves_its_optimum_and_agrees_with_brute_force(seed):
    catchment, seconds, w, base = _catchment(seed)
    dense = seconds > 0
    for p in (1, 2, 3):
        res = MaximalCoveringModel.from_catchment(catchment, w, p, already_covered=base).solve(method="exact")
        best = _brute_mclp(dense, w, base, p)
        assert res.status == "optimal" and res.gap == 0.0
        assert res.objective == pytest.approx(best, abs=1e-6)
        assert res.bound == pytest.approx(best, abs=1e-6)
        assert _new_weight(dense, w, base, res.sites) == pytest.approx(res.objective, abs=1e-9)
        assert res.sites is res.selected and len(res.sites) <= p


@pytest.mark.parametrize("seed", SEEDS)
def test_a_shorter_walking_threshold_on_the_same_catchment_counts_only_demand_within_it(seed):
    catchment, seconds, w, base = _catchment(seed)
    within = (seconds > 0) & (seconds <= 600.0)
    for p in (1, 2):
        res = MaximalCoveringModel.from_catchment(catchment, w, p, already_covered=base, max_cost=600.0).solve()
        assert res.objective == pytest.approx(_brute_mclp(within, w, base, p), abs=1e-6)
        assert _new_weight(within, w, base, res.sites) == pytest.approx(res.objective, abs=1e-9)
        fewest = MinimumSitesModel.from_catchment(catchment, w, 0.5, already_covered=base, max_cost=600.0).solve()
        if fewest.status == "optimal":
            assert fewest.n_sites == _brute_min_sites(within, w, base, 0.5)
    with pytest.raises(ValueError, match="max_cost"):
        MaximalCoveringModel.from_catchment(catchment, w, 1, max_cost=-1.0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["exact", "auto", "greedy"])
def test_solve_on_the_class_gives_the_same_sites_as_solve_mclp(seed, method):
    a, _, w, base = _instance(seed, n_cand=10, n_dem=30)
    for p in (0, 2, 4, 12):
        by_class = MaximalCoveringModel(a, w, p, already_covered=base).solve(method)
        by_function = solve_mclp(a, w, p, already_covered=base, method=method)
        assert by_class.selected.tolist() == by_function.selected.tolist()
        assert by_class.objective == by_function.objective
        assert (by_class.method, by_class.status) == (by_function.method, by_function.status)
        assert by_class.bound == by_function.bound and by_class.gap == by_function.gap


def test_one_model_answers_several_p_and_methods_without_reducing_again_or_carrying_state():
    a, dense, w, base = _instance(4, n_cand=10, n_dem=30)
    model = MaximalCoveringModel(a, w, 2, already_covered=base)
    first = model.solve("greedy", local_search=False)
    model.solve("exact")
    again = model.solve("greedy", local_search=False)
    assert again.selected.tolist() == first.selected.tolist() and again.bound == first.bound
    for p in (1, 3, 5):
        other = model.with_p(p)
        assert other.reduced is model.reduced and model.p == 2
        res = other.solve("exact")
        assert res.objective == pytest.approx(_brute_mclp(dense, w, base, p), abs=1e-6)
        assert res.selected.tolist() == solve_mclp(a, w, p, already_covered=base, method="exact").selected.tolist()


@pytest.mark.parametrize("seed", SEEDS)
def test_minimum_sites_model_reaches_the_target_with_the_fewest_sites_found_by_brute_force(seed):
    a, dense, w, base = _instance(seed, n_cand=9, n_dem=26, density=0.2)
    model = MinimumSitesModel(a, w, 0.5, already_covered=base)
    for target in (0.5, 0.65, 0.8):
        k = _brute_min_sites(dense, w, base, target)
        res = model.with_target(target).solve("exact")
        assert model.target_share == 0.5
        if k is None:
            assert res.status == "unreachable"
            continue
        if k == 0:
            assert res.status == "already_met" and res.n_sites == 0
            continue
        assert res.status == "optimal" and res.n_sites == k and res.bound == k and res.gap == 0.0
        assert res.share_after >= target - 1e-9
        assert _reaches(w[base].sum() + _new_weight(dense, w, base, res.sites), w.sum(), target)
        same = min_sites_for_target(a, w, target, already_covered=base, method="exact")
        assert same.selected.tolist() == res.selected.tolist() and same.method == res.method


def test_village_target_model_from_unit_candidates_matches_unit_set_cover():
    rng = np.random.default_rng(7)
    uc = rng.random((12, 9)) < 0.25
    uc[np.arange(9), np.arange(9)] = True
    already = rng.random(12) < 0.2
    for target in (0.6, 0.8):
        model = MinimumSitesModel.from_unit_candidates(uc, target, units_already_covered=already)
        res = model.solve()
        assert res.n_sites == _brute_units(uc, already, np.ones(12), target)
        assert res.selected.tolist() == unit_set_cover(uc, target, units_already_covered=already).selected.tolist()


def test_models_check_their_inputs_when_built_and_the_method_when_solved():
    a, _, w, base = _instance(0)
    with pytest.raises(ValueError, match="p must be"):
        MaximalCoveringModel(a, w, -1)
    with pytest.raises(ValueError, match="weights"):
        MaximalCoveringModel(a, w[:-1], 2)
    with pytest.raises(ValueError, match="target_share"):
        MinimumSitesModel(a, w, 1.2)
    with pytest.raises(ValueError, match="target_share"):
        MinimumSitesModel(a, w, 0.5).with_target(-0.1)
    with pytest.raises(ValueError, match="method"):
        MaximalCoveringModel(a, w, 2).solve("magic")
    with pytest.raises(ValueError, match="method"):
        MinimumSitesModel(a, w, 0.5).solve("magic")


def test_every_method_and_status_a_result_carries_is_documented(monkeypatch):
    methods, statuses = _documented_values("method"), _documented_values("status")
    assert {"none", "exact", "greedy", "greedy+swap", "kernel", "lp rounding+swap", "lns"} <= methods
    assert {"optimal", "gap_limit", "time_limit", "heuristic", "already_met", "unreachable"} <= statuses
    seen = []
    for seed in SEEDS:
        a, _, w, base = _instance(seed, n_cand=9, n_dem=30, density=0.25)
        for method in ("exact", "auto", "greedy"):
            for p in (0, 2, 3, 4, 20):
                for local_search in (True, False):
                    model = MaximalCoveringModel(a, w, p, already_covered=base)
                    seen.append(model.solve(method, local_search=local_search))
            for target in (0.0, 0.5, 0.7, 0.999):
                seen.append(MinimumSitesModel(a, w, target, already_covered=base).solve(method))
    monkeypatch.setattr(siting_models, "_EXACT_MAX_NNZ", 0)  # the path used for large models
    a, w, base = _clustered(0)
    seen.append(MaximalCoveringModel(a, w, 8, already_covered=base).solve("auto", time_limit_s=3))
    seen.append(MinimumSitesModel(a, w, 0.8, already_covered=base).solve("auto", time_limit_s=3))
    for res in seen:
        assert res.method in methods, res.method
        assert res.status in statuses, res.status
        assert res.bound is not None and res.gap is not None and res.gap >= 0
    # the instances above do exercise the common paths
    assert {"none", "exact", "greedy", "greedy+swap"} <= {res.method for res in seen}
    assert {"optimal", "heuristic", "already_met", "unreachable"} <= {res.status for res in seen}


def test_dominance_in_chunks_is_the_brute_force_subset_check(monkeypatch):
    """Chunks of candidate pairs give exactly the subset rule checked pair by pair (ties keep the lowest index)."""
    import coverage.siting_reduce as siting_reduce

    rng = np.random.default_rng(21)
    n_cand, n_groups = 160, 90
    dense = rng.random((n_cand, n_groups)) < 0.06
    dense[10] = dense[3]  # identical pair: 10 is dropped, 3 kept
    dense[20] = dense[5] & (rng.random(n_groups) < 0.5)  # a subset of 5
    dense[dense.sum(axis=1) == 0, 0] = True
    B = sp.csr_array(dense)
    expected = np.zeros(n_cand, dtype=bool)
    sizes = dense.sum(axis=1)
    for j, k in itertools.permutations(range(n_cand), 2):
        if not (dense[j] & ~dense[k]).any() and (sizes[k] > sizes[j] or (sizes[k] == sizes[j] and k < j)):
            expected[j] = True
    assert expected[10] and not expected[3] and expected[20]
    for chunk in (1, 7, 50, 10**9):  # one candidate a chunk … everything at once
        monkeypatch.setattr(siting_reduce, "_DOMINANCE_CHUNK_PAIRS", chunk)
        np.testing.assert_array_equal(siting_reduce._dominated_candidates(B), expected)
    monkeypatch.setattr(siting_reduce, "_DOMINANCE_MAX_PAIRS", 10)
    assert siting_reduce._dominated_candidates(B) is None


def test_a_county_sized_model_stops_once_its_sites_are_proved_within_half_a_percent():
    """Too large for the exact MILP: by default the answer is proved within 0.5 %; a zero gap keeps searching."""
    import scipy.sparse as sp

    from coverage.siting_models import LARGE_MODEL_GAP, MaximalCoveringModel, _milp_fits

    from scipy.spatial import cKDTree

    rng = np.random.default_rng(14)
    # homes on a 250 x 250 grid of 100 m cells, sites anywhere, each reaching the homes within 700 m
    homes = np.stack(np.meshgrid(np.arange(250.0), np.arange(250.0)), axis=-1).reshape(-1, 2) * 100.0
    n_homes = len(homes)
    sites = rng.uniform(0, 25_000, (4000, 2))
    reached = cKDTree(sites).query_ball_tree(cKDTree(homes), 700.0)
    rows = np.repeat(np.arange(len(sites)), [len(r) for r in reached])
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in reached])
    coverage = sp.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=(len(sites), n_homes))
    weights = rng.gamma(2.0, 2.0, n_homes)
    model = MaximalCoveringModel(coverage, weights, 20)
    assert not _milp_fits("auto", model.reduced)
    default = model.solve(time_limit_s=30)
    assert default.status in ("gap_limit", "optimal") and default.gap <= LARGE_MODEL_GAP
    assert default.objective <= default.bound
    strict = model.solve(time_limit_s=5, mip_rel_gap=0.0)
    assert strict.status != "gap_limit" and strict.objective >= default.objective - 1e-9 * default.bound
    # a small model is still proved optimal by default
    small = MaximalCoveringModel(coverage[:40, :2000], weights[:2000], 3).solve()
    assert small.status == "optimal" and small.gap == 0.0


def test_a_county_sized_fewest_sites_model_searches_the_lp_support_and_reaches_the_target():
    """Too large for the MILP: the kernel over the LP's support gives a set no larger than greedy's that reaches it."""
    from scipy.spatial import cKDTree

    from coverage.siting_models import MinimumSitesModel, _milp_fits

    rng = np.random.default_rng(21)
    homes = np.stack(np.meshgrid(np.arange(250.0), np.arange(250.0)), axis=-1).reshape(-1, 2) * 100.0
    sites = rng.uniform(0, 25_000, (4000, 2))
    reached = cKDTree(sites).query_ball_tree(cKDTree(homes), 700.0)
    rows = np.repeat(np.arange(len(sites)), [len(r) for r in reached])
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in reached])
    coverage = sp.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=(len(sites), len(homes)))
    weights = rng.gamma(2.0, 2.0, len(homes))
    model = MinimumSitesModel(coverage, weights, 0.45)
    assert not _milp_fits("auto", model.reduced)
    res = model.solve(time_limit_s=60)
    # greedy and pruning leave 171; over the LP's support the kernel finds 170, which the LP bound proves fewest
    assert res.info["greedy_sites"] > res.n_sites == res.bound and res.method == "kernel" and res.status == "optimal"
    # the chosen sites themselves reach the target, counted on the original matrix
    covered = np.zeros(len(homes), bool)
    covered[coverage[np.asarray(res.selected)].indices] = True
    assert weights[covered].sum() >= 0.45 * weights.sum() * (1 - 1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_bound_left_when_the_lp_runs_out_of_time_never_exceeds_the_fewest_sites(seed):
    # a county on a slow machine: the LP relaxation may not finish; the sites' own sizes still bound the answer
    a, dense, w, base = _instance(seed, n_cand=9, n_dem=26, density=0.2)
    total = w.sum()
    above_one = 0
    for target in (0.4, 0.6, 0.75):
        k = _brute_min_sites(dense, w, base, target)
        if not k:
            continue
        res = min_sites_for_target(a, w, target, already_covered=base, method="auto")
        counting = res.info["counting_lower_bound"]
        assert 1 <= counting <= k <= res.n_sites
        assert counting <= res.bound  # the LP's bound, when it finishes, is at least as strong
        # at least the count from every candidate's own new persons (dominated candidates left out can only raise it)
        need = target * total - w[base].sum()
        own = np.sort([w[dense[j] & ~base].sum() for j in range(dense.shape[0])])[::-1]
        assert counting >= 1 + int(np.flatnonzero(np.cumsum(own) >= need - 1e-9 * total)[0])
        above_one += counting > 1
    assert above_one >= 1


def test_disjoint_sites_of_equal_size_are_bounded_exactly_by_their_sizes():
    from coverage.siting_bounds import _minsites_counting_bound

    # 30 sites, each the only one reaching its own 10 persons: 95 persons need 10 sites
    B = sp.csr_array(np.kron(np.eye(30, dtype=bool), np.ones((1, 10), dtype=bool)))
    assert _minsites_counting_bound(B, np.ones(300), 95.0) == 10
    assert _minsites_counting_bound(B, np.ones(300), 301.0) == float("inf")
    res = min_sites_for_target(B, np.ones(300), 95.0 / 300.0)
    assert res.n_sites == 10 and res.status == "optimal" and res.info["counting_lower_bound"] == 10


@pytest.mark.parametrize("seed", SEEDS)
def test_the_fewest_sites_lagrangian_bound_holds_for_any_multipliers(seed):
    # the column-generation bound rests on this: whatever the prices, the bound never exceeds the fewest sites
    from coverage.siting_bounds import _minsites_lagrangian

    a, dense, w, base = _instance(seed, n_cand=9, n_dem=26, density=0.2)
    red = _reduce(*_check_inputs(a, w, base))
    rng = np.random.default_rng(seed)
    for target in (0.4, 0.6, 0.75):
        k = _brute_min_sites(dense, w, base, target)
        if not k:
            continue
        need = target * w.sum() - w[base].sum()
        for _ in range(50):
            mu = rng.uniform(0.0, 3.0 / max(red.wg.min(), 1e-9))
            lam = rng.uniform(0.0, 1.0, red.wg.size) * mu * red.wg * rng.uniform(0.0, 1.5)
            bound, reduced_cost = _minsites_lagrangian(red.B, red.wg, need, lam, mu)
            assert bound <= k + 1e-9
            assert reduced_cost == pytest.approx(1.0 - sp.csr_array(red.B, dtype=float) @ lam)


def _streets_like_instance(seed: int, n_sites: int = 3000, side: int = 80, radius_m: float = 450.0):
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    homes = np.stack(np.meshgrid(np.arange(float(side)), np.arange(float(side))), axis=-1).reshape(-1, 2) * 100.0
    sites = rng.uniform(0, side * 100.0, (n_sites, 2))
    reached = cKDTree(sites).query_ball_tree(cKDTree(homes), radius_m)
    rows = np.repeat(np.arange(n_sites), [len(r) for r in reached])
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in reached])
    coverage = sp.csr_array((np.ones(len(rows), bool), (rows, cols)), shape=(n_sites, len(homes)))
    return coverage, rng.gamma(2.0, 2.0, len(homes))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("target", [0.5, 0.6])
def test_the_lp_bound_by_column_generation_rounds_to_the_whole_lps_bound(seed, target):
    """A county-sized model's LP is solved over a few candidates at a time: its rounded bound must be the whole LP's."""
    from coverage.siting_bounds import _minsites_lp_bound, _minsites_lp_bound_columns

    coverage, weights = _streets_like_instance(seed)
    red = _reduce(*_check_inputs(coverage, weights, None))
    need = target * weights.sum()
    whole, _ = _minsites_lp_bound(red.B, red.wg, need, 60.0)
    start, _, _ = _lazy_greedy(red.B, red.wg, red.B.shape[0], need=need)
    # started from a few greedy sites only, so that candidates must be priced in over several rounds
    bound, x, details = _minsites_lp_bound_columns(red.B, red.wg, need, start[:5], 60.0)
    assert details["rounds"] > 1 and details["n_candidates"] < red.B.shape[0]
    assert bound <= whole + 1e-6  # a valid bound on the whole LP ...
    assert np.ceil(bound - 1e-9) == np.ceil(whole - 1e-9)  # ... and as strong once rounded up
    # its x is a feasible LP solution of the whole model, within the tolerances of HiGHS
    reached = np.minimum(sp.csr_array(red.B.T, dtype=float) @ x, 1.0)
    assert reached @ red.wg >= need * (1 - 1e-7)
    assert whole - 1e-6 <= x.sum() == pytest.approx(details["restricted_value"])
    # and the model uses it: the same rounded bound, the whole LP's, under the fewest sites found
    model = MinimumSitesModel(coverage, weights, target)
    model_lp = _minsites_lp_bound(model.reduced.B, model.reduced.wg, need, 60.0)[0]
    res = model.solve(time_limit_s=60)
    assert res.bound >= np.ceil(model_lp - 1e-9) and res.bound <= res.n_sites


def test_the_lp_bound_by_column_generation_stops_once_the_sites_found_are_proved():
    from coverage.siting_bounds import _minsites_lp_bound_columns

    coverage, weights = _streets_like_instance(4)
    red = _reduce(*_check_inputs(coverage, weights, None))
    need = 0.6 * weights.sum()
    start, _, _ = _lazy_greedy(red.B, red.wg, red.B.shape[0], need=need)
    full = _minsites_lp_bound_columns(red.B, red.wg, need, start[:5], 60.0)
    running = np.ceil(np.maximum.accumulate(full[2]["bounds"]) - 1e-9)
    assert full[2]["rounds"] >= 2
    # told that a set as large as the next-to-last round's rounded bound is known, it stops once a round reaches it
    enough = float(running[-2])
    early = _minsites_lp_bound_columns(red.B, red.wg, need, start[:5], 60.0, enough=enough)
    first = int(np.flatnonzero(running >= enough)[0]) + 1
    assert first < full[2]["rounds"]
    assert early[2]["rounds"] == first and early[2]["stopped"] == "rounded bound reached"
    assert np.ceil(early[0] - 1e-9) >= enough


def test_a_fractional_lp_too_slow_for_column_generation_is_solved_whole(monkeypatch):
    # wide, overlapping catchments make the simplex rounds slow; the whole LP by interior point then gives the bound
    from coverage import siting_bounds
    from coverage.siting_bounds import _minsites_lp_bound, _minsites_lp_bound_columns

    coverage, weights = _streets_like_instance(1)
    red = _reduce(*_check_inputs(coverage, weights, None))
    need = 0.6 * weights.sum()
    whole, x_whole = _minsites_lp_bound(red.B, red.wg, need, 60.0)
    monkeypatch.setattr(siting_bounds, "_COLUMNS_MIN_ROUND_S", 0.0)  # no round may be slower than the one before
    bound, x, details = _minsites_lp_bound_columns(red.B, red.wg, need, np.arange(3), 60.0)
    assert details["stopped"] == "round too slow" and details["whole_lp"]
    assert bound == pytest.approx(whole) and x == pytest.approx(x_whole)
