"""Capacitated siting and p-median against brute force over every p-subset (dense, independent of the models)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import linprog

from coverage.siting_capacitated import (
    CapacitatedCoveringModel,
    CapacitatedMinimumSitesModel,
    PMedianModel,
)

LIMIT = 900.0


def _instance(seed: int, n_exist: int = 2, n_cand: int = 7, n_dem: int = 18, density: float = 0.35):
    """Random costs (seconds) within the limit on a random subset of pairs; demand and capacities in persons."""
    rng = np.random.default_rng(seed)
    def catchment(n):
        dense = rng.uniform(30.0, LIMIT, size=(n, n_dem))
        dense[rng.random((n, n_dem)) > density] = 0.0
        return sparse.csr_matrix(dense)
    demand = rng.integers(1, 40, size=n_dem).astype(float)
    demand[rng.integers(0, n_dem)] = 0.0  # a point with nobody
    existing = catchment(n_exist)
    existing_cap = rng.integers(10, 60, size=n_exist).astype(float)
    return catchment(n_cand), demand, existing, existing_cap


def _served_dense(matrices, caps, demand) -> float:
    """Most persons servable: the transportation LP on the dense pairs, solved by linprog (no shared code)."""
    a = np.vstack([m.toarray() for m in matrices]) if matrices else np.zeros((0, demand.size))
    cap = np.concatenate(caps) if caps else np.zeros(0)
    pairs = np.argwhere(a > 0)
    if len(pairs) == 0:
        return 0.0
    n = len(pairs)
    rows_i = np.zeros((demand.size, n))
    rows_j = np.zeros((a.shape[0], n))
    rows_i[pairs[:, 1], np.arange(n)] = 1
    rows_j[pairs[:, 0], np.arange(n)] = 1
    res = linprog(-np.ones(n), A_ub=np.vstack([rows_i, rows_j]), b_ub=np.concatenate([demand, cap]),
                  bounds=(0, None), method="highs")
    assert res.status == 0
    return -res.fun


def _brute_covering(cand, demand, existing, existing_cap, cap, p):
    best = -1.0
    for subset in itertools.combinations(range(cand.shape[0]), p):
        value = _served_dense([existing, cand[list(subset)]], [existing_cap, np.full(p, cap)], demand)
        best = max(best, value)
    return best


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_capacitated_mclp_equals_brute_force(seed, p):
    cand, demand, existing, existing_cap = _instance(seed)
    cap = 25.0
    optimum = _brute_covering(cand, demand, existing, existing_cap, cap, p)
    model = CapacitatedCoveringModel(cand, demand, cap, p, existing=existing, existing_capacity=existing_cap,
                                     limit_s=LIMIT)
    exact = model.solve("exact")
    assert exact.status == "optimal"
    assert exact.objective == pytest.approx(optimum, abs=1e-6)
    # the chosen sites, re-evaluated independently, serve what the result says
    again = _served_dense([existing, cand[exact.selected]], [existing_cap, np.full(exact.n_sites, cap)], demand)
    assert again == pytest.approx(exact.objective, abs=1e-6)
    greedy = model.solve("greedy")
    assert greedy.objective <= optimum + 1e-6
    assert greedy.bound >= optimum - 1e-6  # the LP relaxation bounds the optimum
    assert greedy.n_sites <= p
    # capacities are never exceeded, nobody is served twice
    assert (exact.assigned <= cap + 1e-6).all()
    assert (exact.served <= demand + 1e-6).all()
    assert exact.served.sum() == pytest.approx(exact.objective)
    base = _served_dense([existing], [existing_cap], demand)
    assert exact.base_objective == pytest.approx(base, abs=1e-6)
    assert exact.marginal["gain"].sum() == pytest.approx(exact.objective - base, abs=1e-6)


def test_capacitated_differs_from_uncapacitated_choice():
    """A crowd reachable from one candidate and a few people from another: capacity decides."""
    # candidate 0 reaches 100 people at one point; candidates 1 and 2 reach 30 people each, apart
    cand = sparse.csr_matrix(np.array([[60.0, 0, 0], [0, 60.0, 0], [0, 0, 60.0]]))
    demand = np.array([100.0, 30.0, 30.0])
    two = CapacitatedCoveringModel(cand, demand, 30.0, 2, limit_s=LIMIT).solve("exact")
    assert two.objective == pytest.approx(60.0)  # any two sites serve 30 each
    big = CapacitatedCoveringModel(cand, demand, 100.0, 1, limit_s=LIMIT).solve("exact")
    assert list(big.selected) == [0] and big.objective == pytest.approx(100.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_capacitated_minimum_sites_equals_brute_force(seed):
    cand, demand, existing, existing_cap = _instance(seed, n_cand=6)
    cap = 20.0
    total = demand.sum()
    everything = _served_dense([existing, cand], [existing_cap, np.full(cand.shape[0], cap)], demand)
    target = 0.9 * everything / total
    fewest = None
    for k in range(0, cand.shape[0] + 1):
        if _brute_covering(cand, demand, existing, existing_cap, cap, k) >= target * total - 1e-6:
            fewest = k
            break
    res = CapacitatedMinimumSitesModel(cand, demand, cap, target, existing=existing, existing_capacity=existing_cap,
                                       limit_s=LIMIT).solve("exact")
    if fewest == 0:
        assert res.status == "already_met"
        return
    assert res.status == "optimal"
    assert res.n_sites == fewest
    assert res.objective >= target * total - 1e-5
    greedy = CapacitatedMinimumSitesModel(cand, demand, cap, target, existing=existing,
                                          existing_capacity=existing_cap, limit_s=LIMIT).solve("greedy")
    assert greedy.n_sites >= fewest and greedy.bound <= fewest
    assert greedy.objective >= target * total - 1e-5


def test_minimum_sites_unreachable_says_so():
    cand = sparse.csr_matrix(np.array([[60.0, 0.0]]))
    demand = np.array([10.0, 10.0])
    res = CapacitatedMinimumSitesModel(cand, demand, 50.0, 0.9, limit_s=LIMIT).solve()
    assert res.status == "unreachable"
    assert res.share_after == pytest.approx(0.5)


def _brute_pmedian(cand, demand, existing, p):
    a_c, a_e = cand.toarray(), existing.toarray()
    a_c[a_c == 0] = np.inf
    a_e[a_e == 0] = np.inf
    fallback = np.minimum(a_e.min(axis=0), LIMIT) if a_e.size else np.full(demand.size, LIMIT)
    best = np.inf
    for subset in itertools.combinations(range(cand.shape[0]), p):
        seconds = np.minimum(fallback, a_c[list(subset)].min(axis=0))
        best = min(best, float(demand @ seconds))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("p", [1, 2, 3])
def test_pmedian_equals_brute_force(seed, p):
    cand, demand, existing, _ = _instance(seed, n_cand=8, density=0.5)
    optimum = _brute_pmedian(cand, demand, existing, p)
    model = PMedianModel(cand, demand, p, existing=existing, limit_s=LIMIT)
    exact = model.solve("exact")
    assert exact.status == "optimal"
    assert exact.objective == pytest.approx(optimum, rel=1e-9)
    greedy = model.solve("greedy")
    assert greedy.objective >= optimum - 1e-6
    assert greedy.bound <= optimum + 1e-6
    assert greedy.gap is not None and greedy.gap >= 0
    # the marginal savings add up to the drop in person-seconds
    assert exact.marginal["gain"].sum() == pytest.approx(exact.base_objective - exact.objective, rel=1e-9)
    # the per-point seconds are those of the objective, capped by the penalty
    assert float(demand @ exact.served) == pytest.approx(exact.objective)
    assert (exact.served <= LIMIT).all()


def test_pmedian_penalty_is_the_limit():
    """Nobody in reach: everyone costs the limit; one site in reach of one point saves its difference."""
    cand = sparse.csr_matrix(np.array([[100.0, 0.0]]))
    demand = np.array([3.0, 5.0])
    res = PMedianModel(cand, demand, 1, limit_s=LIMIT).solve()
    assert res.base_objective == pytest.approx(8 * LIMIT)
    assert res.objective == pytest.approx(3 * 100.0 + 5 * LIMIT)
    assert res.share_before == 0.0 and res.share_after == pytest.approx(3 / 8)


def test_bad_inputs_raise():
    cand = sparse.csr_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="demand"):
        CapacitatedCoveringModel(cand, np.ones(4), 10.0, 1)
    with pytest.raises(ValueError, match="p must"):
        PMedianModel(cand, np.ones(3), -1)
    with pytest.raises(ValueError, match="existing_capacity"):
        CapacitatedCoveringModel(cand, np.ones(3), 10.0, 1, existing=cand)


def test_site_capacity_on_the_demo_writes_explained_sites(tmp_path):
    """``eldercov site --capacity`` on the demo: sites with place names, capacities held, synthetic label."""
    import pandas as pd

    from coverage.cli import main
    from coverage.report import header
    from tests.conftest import REPO_ROOT

    study = str(REPO_ROOT / "studies" / "demo.yaml")
    code = main(["site", study, "--kind", "canteen", "--add", "3", "--capacity", "40", "--out", str(tmp_path)])
    assert code == 0
    table = pd.read_csv(tmp_path / "demo" / "siting_canteen_15min_cap40.csv", encoding="utf-8-sig")
    table = table.rename(columns={header(c, "zh"): c for c in ("assigned", "new_persons", "town_name", "seconds_saved")})
    assert len(table) == 3
    assert (table["assigned"] <= 40 + 1e-6).all()
    assert table["new_persons"].sum() > 0
    assert table["town_name"].notna().all()
    params = pd.read_excel(tmp_path / "demo" / "siting_canteen_15min_cap40.xlsx", sheet_name="参数", header=None)
    assert params.astype(str).apply(lambda col: col.str.contains("synthetic demo data")).any().any()
    # p-median writes its own files, and a capacity of 0 is the user's error (exit code 2)
    assert main(["site", study, "--kind", "canteen", "--add", "2", "--objective", "p-median",
                 "--out", str(tmp_path)]) == 0
    pm = pd.read_csv(tmp_path / "demo" / "siting_canteen_15min_pmedian.csv", encoding="utf-8-sig")
    pm = pm.rename(columns={header("seconds_saved", "zh"): "seconds_saved"})
    assert (pm["seconds_saved"] > 0).all()
    assert main(["site", study, "--kind", "canteen", "--add", "2", "--capacity", "0", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("seed", [10, 11])
def test_mid_size_greedy_below_exact_below_bound(seed):
    """40 candidates, 300 points: greedy <= MILP optimum <= LP bound, and auto keeps the MILP's answer."""
    cand, demand, existing, existing_cap = _instance(seed, n_exist=5, n_cand=40, n_dem=300, density=0.06)
    model = CapacitatedCoveringModel(cand, demand, 60.0, 6, existing=existing, existing_capacity=existing_cap,
                                     limit_s=LIMIT)
    exact, greedy, auto = model.solve("exact"), model.solve("greedy"), model.solve("auto")
    assert exact.status == "optimal"
    assert greedy.objective <= exact.objective + 1e-6 <= greedy.bound + 2e-6
    assert auto.objective == pytest.approx(exact.objective, abs=1e-6)
    # re-evaluated independently
    again = _served_dense([existing, cand[exact.selected]], [existing_cap, np.full(exact.n_sites, 60.0)], demand)
    assert again == pytest.approx(exact.objective, abs=1e-6)
    pm = PMedianModel(cand, demand, 6, existing=existing, limit_s=LIMIT)
    pm_exact, pm_greedy = pm.solve("exact"), pm.solve("greedy")
    assert pm_exact.status == "optimal"
    assert pm_greedy.bound - 1e-6 <= pm_exact.objective <= pm_greedy.objective + 1e-6
