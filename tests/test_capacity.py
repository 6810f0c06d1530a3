"""Capacity-aware coverage: hand-made cases, an independent dense LP, and capacities never exceeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from scipy.optimize import linprog

from coverage import capacity, reach
from coverage.network import load_walk_arrays
from tests.conftest import shared_data

LIMIT = 900.0


def _dense_lp_optimum(dense_costs: np.ndarray, demand: np.ndarray, cap: np.ndarray, limit: float) -> float:
    """The most persons servable, from a plain dense LP: one variable per (facility, point) cell."""
    n_sites, n_points = dense_costs.shape
    allowed = (dense_costs > 0) & (dense_costs <= limit)
    a_point = np.zeros((n_points, n_sites * n_points))
    a_site = np.zeros((n_sites, n_sites * n_points))
    for j in range(n_sites):
        for i in range(n_points):
            a_point[i, j * n_points + i] = 1.0
            a_site[j, j * n_points + i] = 1.0
    upper = np.where(allowed.ravel(), np.inf, 0.0)
    res = linprog(-np.ones(n_sites * n_points), A_ub=np.vstack([a_point, a_site]),
                  b_ub=np.concatenate([demand, cap]), bounds=list(zip(np.zeros(upper.size), upper)), method="highs")
    assert res.status == 0
    return -res.fun


def _check_feasible(result: capacity.CapacityResult, catchment, demand, cap, limit):
    tol = 1e-7
    assert (result.assigned <= cap + tol).all(), "a facility over capacity"
    assert (result.served <= demand + tol).all()
    np.testing.assert_allclose(result.served + result.unmet, demand)
    flow = result.flow.tocoo()
    assert (flow.data >= -tol).all()
    allowed = sparse.csr_matrix(catchment)
    # flow only on arcs of the catchment within the limit
    costs = np.asarray(allowed[flow.row, flow.col]).ravel()
    assert ((costs > 0) & (costs <= limit) | (flow.data <= tol)).all()
    np.testing.assert_allclose(np.bincount(flow.row, flow.data, minlength=len(cap)), result.assigned, atol=1e-9)


def test_hand_case():
    # A (15 places) reaches points 0 and 1; B (20 places) reaches 1 and 2; demand 10, 20, 30
    catchment = sparse.csr_matrix(np.array([[100.0, 400.0, 0.0], [0.0, 300.0, 800.0]]))
    demand, cap = np.array([10.0, 20.0, 30.0]), np.array([15.0, 20.0])
    result = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT)
    # all 35 places can be used (A: point 0 and 5 of point 1; B: 15 of point 1 and 5 of point 2)
    assert result.total_served == pytest.approx(35.0)
    assert result.share_served == pytest.approx(35.0 / 60.0)
    np.testing.assert_allclose(result.assigned, [15.0, 20.0])
    assert result.unmet.sum() == pytest.approx(25.0)
    _check_feasible(result, catchment, demand, cap, LIMIT)
    # the nearest of the optimal assignments
    near = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, prefer_near=True)
    np.testing.assert_allclose(near.flow.toarray(), [[10.0, 5.0, 0.0], [0.0, 15.0, 5.0]], atol=1e-9)
    assert near.mean_seconds == pytest.approx((10 * 100 + 5 * 400 + 15 * 300 + 5 * 800) / 35)
    # nearest first: A–0 (10), B–1 (20, B full), then A–1 finds point 1 served: 30
    greedy = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, method="greedy")
    assert greedy.total_served == pytest.approx(30.0) and greedy.status == "feasible"
    _check_feasible(greedy, catchment, demand, cap, LIMIT)
    # bound: each facility serves at most its reachable demand: min(15, 30) + min(20, 50) = 35
    assert greedy.bound == pytest.approx(35.0) and greedy.gap == pytest.approx(5.0 / 35.0)
    # at 350 s only A–0 and B–1 remain
    short = capacity.capacity_aware_coverage(catchment, demand, cap, 350.0)
    np.testing.assert_allclose(short.served, [10.0, 20.0, 0.0])
    np.testing.assert_allclose(short.unreachable, [0.0, 0.0, 30.0])


def test_greedy_gap_is_reported():
    # the nearest pair (A, point 1) takes A's 10 places, leaving point 0 with nothing: greedy 10, optimum 20
    catchment = sparse.csr_matrix(np.array([[100.0, 50.0], [0.0, 60.0]]))
    demand, cap = np.array([10.0, 10.0]), np.array([10.0, 10.0])
    greedy = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, method="greedy")
    exact = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, method="exact")
    assert greedy.total_served == pytest.approx(10.0)
    assert exact.total_served == pytest.approx(20.0) and exact.gap == 0.0 and exact.status == "optimal"
    assert greedy.bound == pytest.approx(20.0) and greedy.gap == pytest.approx(0.5)
    with_lp = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, method="greedy", lp_bound=True)
    assert with_lp.bound == pytest.approx(20.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_equals_an_independent_dense_lp(seed):
    rng = np.random.default_rng(seed)
    n_sites, n_points = 8, 30
    dense = rng.uniform(1.0, 1500.0, (n_sites, n_points))
    dense[rng.random((n_sites, n_points)) < 0.6] = 0.0
    demand = rng.uniform(0.5, 30.0, n_points)
    cap = rng.uniform(5.0, 80.0, n_sites)
    catchment = sparse.csr_matrix(dense)
    optimum = _dense_lp_optimum(dense, demand, cap, LIMIT)
    exact = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT)
    assert exact.total_served == pytest.approx(optimum, rel=1e-9, abs=1e-7)
    _check_feasible(exact, catchment, demand, cap, LIMIT)
    near = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, prefer_near=True)
    assert near.total_served == pytest.approx(optimum, rel=1e-8)
    assert near.mean_seconds <= exact.mean_seconds + 1e-6
    _check_feasible(near, catchment, demand, cap, LIMIT)
    greedy = capacity.capacity_aware_coverage(catchment, demand, cap, LIMIT, method="greedy")
    _check_feasible(greedy, catchment, demand, cap, LIMIT)
    assert greedy.total_served <= optimum + 1e-7
    assert greedy.bound >= optimum - 1e-7
    # a maximal assignment serves at least half the optimum
    assert greedy.total_served >= optimum / 2 - 1e-9


def test_real_extract_exact_is_optimal_and_within_capacity():
    net = load_walk_arrays(shared_data("osm/beijing_bupt/map.osm.pbf"), use_cache=False)
    rng = np.random.default_rng(7)

    def points(count):
        return np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), count),
                                rng.uniform(net.node_y.min(), net.node_y.max(), count)])

    sites = reach.snap_points(net, points(12), max_access_m=300)
    homes = reach.snap_points(net, points(60), max_access_m=300)
    catchment = reach.catchment_matrix(net, sites, homes, walk_speed_mps=0.8, limit=600.0)
    assert catchment.nnz > 50
    demand = rng.uniform(1.0, 30.0, catchment.shape[1])
    cap = rng.uniform(10.0, 60.0, catchment.shape[0])
    exact = capacity.capacity_aware_coverage(catchment, demand, cap, 600.0)
    _check_feasible(exact, catchment, demand, cap, 600.0)
    assert exact.total_served == pytest.approx(_dense_lp_optimum(catchment.toarray(), demand, cap, 600.0), rel=1e-9)


def test_unmet_by_unit():
    catchment = sparse.csr_matrix(np.array([[100.0, 400.0, 0.0], [0.0, 300.0, 800.0]]))
    demand, cap = np.array([10.0, 20.0, 30.0]), np.array([15.0, 20.0])
    result = capacity.capacity_aware_coverage(catchment, demand, cap, 350.0)
    points = pd.DataFrame({"elderly": demand, "village_code": ["v1", "v1", "v2"], "town_code": ["t", "t", "t"],
                           "urban": pd.array([True, True, False], dtype="boolean")})
    village = capacity.unmet_by_unit(result, points, "village")
    assert village.index.tolist() == ["v2", "v1"]
    assert village.loc["v2", "unmet"] == pytest.approx(30.0) and village.loc["v2", "unreachable"] == pytest.approx(30.0)
    assert village.loc["v1", "share_served"] == pytest.approx(1.0)
    assert capacity.unmet_by_unit(result, points, "urban").loc["rural", "share_served"] == 0.0


def test_bad_input_is_refused():
    catchment = sparse.csr_matrix(np.array([[100.0]]))
    with pytest.raises(ValueError, match="method"):
        capacity.capacity_aware_coverage(catchment, [1.0], [1.0], LIMIT, method="fast")
    with pytest.raises(ValueError, match="capacities"):
        capacity.capacity_aware_coverage(catchment, [1.0], [1.0, 2.0], LIMIT)


def test_demo_beds_are_never_exceeded():
    from coverage import access, config, pipeline

    inputs = pipeline.prepare_inputs(config.load_study("studies/demo.yaml"))
    catchment = reach.catchment_matrix(inputs.net, inputs.facility_snap, inputs.demand_snap,
                                       walk_speed_mps=0.8, limit=LIMIT)
    beds = access.supply_of(inputs.facilities, None, column="beds")
    demand = inputs.demand["elderly"].to_numpy(float)
    rows = beds.catchment(catchment)
    exact = capacity.capacity_aware_coverage(rows, demand, beds.values, LIMIT)
    greedy = capacity.capacity_aware_coverage(rows, demand, beds.values, LIMIT, method="greedy")
    for result in (exact, greedy):
        _check_feasible(result, rows, demand, beds.values, LIMIT)
    assert exact.status == "optimal"
    assert greedy.total_served <= exact.total_served + 1e-6 <= greedy.bound + 2e-6
    # nobody is served who lives beyond 15 minutes of every facility
    beyond = np.asarray(rows.sum(axis=0)).ravel() == 0
    assert (exact.served[beyond] == 0).all()
    table = capacity.unmet_by_unit(exact, inputs.demand, "village")
    assert table["unmet"].sum() == pytest.approx(exact.unmet.sum())
