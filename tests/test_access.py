"""Supply–demand accessibility: hand-made cases, and the same numbers as PySAL ``access`` on the demo and a real extract."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from coverage import access, reach
from coverage.network import load_walk_arrays
from tests.conftest import shared_data

LIMIT = 900.0


def _hand_case():
    """
    Two facilities, three demand points, known catchments (seconds).

    A (supply 10) reaches point 0 in 100 s and point 1 in 400 s; B (supply 20)
    reaches point 1 in 300 s and point 2 in 800 s. Demand 10, 20, 30.
    """
    catchment = sparse.csr_matrix(np.array([[100.0, 400.0, 0.0], [0.0, 300.0, 800.0]]))
    return catchment, np.array([10.0, 20.0]), np.array([10.0, 20.0, 30.0])


STEPS = {300.0: 1.0, 600.0: 0.5, 900.0: 0.25}


def test_two_step_fca_by_hand():
    c, s, d = _hand_case()
    # R_A = 10 / 30, R_B = 20 / 50
    np.testing.assert_allclose(access.two_step_fca(c, s, d), [1 / 3, 1 / 3 + 0.4, 0.4], rtol=1e-12)
    # every unit of supply is handed out once: Σ A_i D_i = Σ S_j
    assert access.two_step_fca(c, s, d) @ d == pytest.approx(30.0)


def test_limit_drops_far_pairs():
    c, s, d = _hand_case()
    # at 350 s only A–0 and B–1 remain: each facility's supply goes to one point
    np.testing.assert_allclose(access.two_step_fca(c, s, d, limit=350.0), [1.0, 1.0, 0.0])


def test_enhanced_2sfca_by_hand():
    c, s, d = _hand_case()
    # weights A0 1, A1 0.5, B1 1 (300 s is in the first step), B2 0.25
    r_a, r_b = 10 / (10 + 20 * 0.5), 20 / (20 + 30 * 0.25)
    expected = [r_a, 0.5 * r_a + r_b, 0.25 * r_b]
    np.testing.assert_allclose(access.enhanced_2sfca(c, s, d, steps=STEPS), expected, rtol=1e-12)


def test_default_steps_are_thirds_of_the_limit():
    assert access.default_steps(900.0) == {300.0: 1.0, 600.0: 0.68, 900.0: 0.22}
    np.testing.assert_array_equal(access.step_weights(np.array([1, 300, 301, 900, 901.0]), STEPS),
                                  [1.0, 1.0, 0.5, 0.25, 0.0])


def test_gaussian_2sfca_by_hand():
    c, s, d = _hand_case()
    sigma = 450.0
    w = {k: np.exp(-(v**2) / (2 * sigma**2)) for k, v in {"a0": 100, "a1": 400, "b1": 300, "b2": 800}.items()}
    r_a = 10 / (10 * w["a0"] + 20 * w["a1"])
    r_b = 20 / (20 * w["b1"] + 30 * w["b2"])
    expected = [w["a0"] * r_a, w["a1"] * r_a + w["b1"] * r_b, w["b2"] * r_b]
    np.testing.assert_allclose(access.gaussian_2sfca(c, s, d, sigma=sigma), expected, rtol=1e-12)


def test_three_step_fca_by_hand():
    c, s, d = _hand_case()
    # point 1 splits 1 : 2 between A (weight 0.5) and B (weight 1): G = 1/3, 2/3
    r_a = 10 / (10 * 1 + 20 * 0.5 / 3)
    r_b = 20 / (20 * 2 / 3 + 30 * 0.25)
    assert (r_a, r_b) == pytest.approx((0.75, 0.96))
    result = access.three_step_fca(c, s, d, steps=STEPS)
    np.testing.assert_allclose(result, [0.75, 0.125 + 0.64, 0.24], rtol=1e-12)
    assert result @ d == pytest.approx(30.0)


def test_gravity_by_hand():
    c, s, d = _hand_case()
    # w = 60 / cost: A0 0.6, A1 0.15, B1 0.2, B2 0.075
    np.testing.assert_allclose(access.gravity(c, s, d, competition=False), [6.0, 5.5, 1.5], rtol=1e-12)
    r_a, r_b = 10 / (0.6 * 10 + 0.15 * 20), 20 / (0.2 * 20 + 0.075 * 30)
    np.testing.assert_allclose(access.gravity(c, s, d), [0.6 * r_a, 0.15 * r_a + 0.2 * r_b, 0.075 * r_b], rtol=1e-12)


def test_normalise_gives_a_population_mean_of_one():
    c, s, d = _hand_case()
    assert access.two_step_fca(c, s, d, normalise=True) @ d / d.sum() == pytest.approx(1.0)


def test_unreached_points_and_facilities_get_zero():
    c = sparse.csr_matrix(np.array([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    values = access.two_step_fca(c, [10.0, 20.0], [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(values, [2.0, 0.0, 0.0])


def test_shapes_are_checked():
    c, s, d = _hand_case()
    with pytest.raises(ValueError, match="facilities"):
        access.two_step_fca(c, s[:1], d)
    with pytest.raises(ValueError, match="demand points"):
        access.two_step_fca(c, s, d[:2])


def test_facility_crowding_by_hand():
    c, s, d = _hand_case()
    table = access.facility_crowding(c, s, d, band=(0.8, 1.4))
    np.testing.assert_allclose(table["demand_in_reach"], [30.0, 50.0])
    np.testing.assert_allclose(table["supply_per_person"], [1 / 3, 0.4])
    np.testing.assert_allclose(table["persons_per_supply"], [3.0, 2.5])
    # 60 people reached over 30 units of supply: 2 per unit study-wide
    np.testing.assert_allclose(table["relative_load"], [1.5, 1.25])
    assert table["use"].tolist() == ["over", "balanced"]


def test_supply_of_picks_the_kind_column_and_fills_defaults():
    facilities = pd.DataFrame({
        "kinds": ["day_care", "day_care;canteen", "nursing_home", "canteen"],
        "beds": [np.nan, np.nan, 120.0, np.nan],
        "floor_area_m2": [350.0, np.nan, 5000.0, np.nan],
        "caregivers": [np.nan] * 4,
    })
    day = access.supply_of(facilities, "day_care")
    assert day.column == "floor_area_m2"
    np.testing.assert_array_equal(day.positions, [0, 1])
    np.testing.assert_array_equal(day.values, [350.0, 200.0])
    assert (day.n_given, day.n_default) == (1, 1)
    assert "200" in day.note and "Panjin" in day.note
    home = access.supply_of(facilities, "nursing_home")
    assert (home.column, home.values.tolist()) == ("beds", [120.0])
    # no meals_per_day column at all: the kind's default with a note
    canteen = access.supply_of(facilities, "canteen")
    assert canteen.column == "meals_per_day" and canteen.values.tolist() == [50.0, 50.0]
    assert canteen.n_default == 2 and "assumed" in canteen.note
    # a column chosen by hand that is not the kind's: the median fills the gaps
    beds = access.supply_of(facilities, None, column="beds")
    assert beds.values.tolist() == [120.0, 120.0, 120.0, 120.0] and beds.n_default == 3
    with pytest.raises(ValueError, match="unknown facility kind"):
        access.supply_of(facilities, "spa")


def test_aggregate_by_unit_is_population_weighted():
    demand = pd.DataFrame({"elderly": [10.0, 30.0, 20.0, 0.0],
                           "village_code": ["v1", "v1", "v2", "v2"], "town_code": ["t1", "t1", "t1", "t1"],
                           "urban": pd.array([True, True, False, pd.NA], dtype="boolean")})
    values = np.array([1.0, 3.0, 0.0, 9.0])
    village = access.aggregate_by_unit(values, demand, "village")
    assert village.loc["v1", "mean"] == pytest.approx((10 * 1 + 30 * 3) / 40)
    assert village.loc["v2", "mean"] == 0.0 and village.loc["v2", "zero_share"] == 1.0
    town = access.aggregate_by_unit(values, demand, "town")
    assert town.loc["t1", "mean"] == pytest.approx(100 / 60)
    urban = access.aggregate_by_unit(values, demand, "urban")
    assert set(urban.index) == {"urban", "rural", "unknown"}
    assert urban.loc["urban", "mean"] == pytest.approx(2.5)


# --- the same numbers as PySAL access ---------------------------------------------------------------

def _pysal_all(catchment, supply, demand, limit: float) -> dict[str, np.ndarray]:
    """Every measure from PySAL access on the same cost pairs (its NaN for 'nothing reached' read as 0)."""
    from access import Access, weights

    coo = sparse.csr_matrix(catchment).tocoo()
    costs = pd.DataFrame({"origin": coo.col, "dest": coo.row, "cost": coo.data})
    demand_df = pd.DataFrame({"geoid": np.arange(len(demand)), "pop": demand})
    supply_df = pd.DataFrame({"geoid": np.arange(len(supply)), "cap": supply})

    def model():
        return Access(demand_df=demand_df, demand_index="geoid", demand_value="pop", supply_df=supply_df,
                      supply_index="geoid", supply_value=["cap"], cost_df=costs.copy(), cost_origin="origin",
                      cost_dest="dest", cost_name="cost")

    def column(frame):
        return frame.iloc[:, 0].reindex(np.arange(len(demand))).fillna(0.0).to_numpy()

    steps = access.default_steps(limit)
    steps3 = access.default_steps(limit, access.THREE_STEP_WEIGHTS)
    gravity = weights.gravity(60.0, -1.0, 60.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "2sfca": column(model().two_stage_fca(name="x", max_cost=limit)),
            "gaussian": column(model().two_stage_fca(name="x", max_cost=limit, weight_fn=weights.gaussian(limit / 2))),
            "e2sfca": column(model().enhanced_two_stage_fca(name="x", max_cost=limit, weight_fn=weights.step_fn(steps))),
            "3sfca": column(model().three_stage_fca(name="x", max_cost=limit, weight_fn=weights.step_fn(steps3))),
            "gravity": column(model().two_stage_fca(name="x", max_cost=limit, weight_fn=gravity)),
            "hansen": column(model().weighted_catchment(name="x", max_cost=limit, weight_fn=gravity)),
            "2sfca_normalised": column(model().two_stage_fca(name="x", max_cost=limit, normalize=True)),
        }


def _ours_all(catchment, supply, demand, limit: float) -> dict[str, np.ndarray]:
    return {
        "2sfca": access.two_step_fca(catchment, supply, demand),
        "gaussian": access.gaussian_2sfca(catchment, supply, demand, sigma=limit / 2),
        "e2sfca": access.enhanced_2sfca(catchment, supply, demand, limit=limit),
        "3sfca": access.three_step_fca(catchment, supply, demand, limit=limit),
        "gravity": access.gravity(catchment, supply, demand),
        "hansen": access.gravity(catchment, supply, demand, competition=False),
        "2sfca_normalised": access.two_step_fca(catchment, supply, demand, normalise=True),
    }


def _assert_same(ours: dict, theirs: dict) -> None:
    for name, expected in theirs.items():
        np.testing.assert_allclose(ours[name], expected, rtol=1e-9, atol=1e-12, err_msg=name)


def test_hand_case_matches_pysal_access():
    pytest.importorskip("access")
    c, s, d = _hand_case()
    _assert_same(_ours_all(c, s, d, LIMIT), _pysal_all(c, s, d, LIMIT))


@pytest.fixture(scope="module")
def demo_inputs():
    from coverage import config, pipeline

    inputs = pipeline.prepare_inputs(config.load_study("studies/demo.yaml"))
    catchment = reach.catchment_matrix(inputs.net, inputs.facility_snap, inputs.demand_snap,
                                       walk_speed_mps=0.8, limit=LIMIT)
    return inputs, catchment


def test_demo_matches_pysal_access(demo_inputs):
    pytest.importorskip("access")
    inputs, catchment = demo_inputs
    supply = access.supply_of(inputs.facilities, None)
    assert supply.column == "beds" and len(supply.values) == catchment.shape[0]
    demand = inputs.demand["elderly"].to_numpy(float)
    assert catchment.nnz > 0
    ours = _ours_all(supply.catchment(catchment), supply.values, demand, LIMIT)
    _assert_same(ours, _pysal_all(supply.catchment(catchment), supply.values, demand, LIMIT))
    # per kind: the kind's rows of the catchment and its own capacity column
    day = access.supply_of(inputs.facilities, "day_care")
    assert day.column == "floor_area_m2"
    _assert_same(_ours_all(day.catchment(catchment), day.values, demand, LIMIT),
                 _pysal_all(day.catchment(catchment), day.values, demand, LIMIT))
    # and the units' means are population-weighted means of those values
    town = access.aggregate_by_unit(ours["2sfca"], inputs.demand, "town")
    assert town["elderly"].sum() == pytest.approx(demand.sum())


def _random_points(net: reach.NetworkArrays, count: int, rng) -> np.ndarray:
    return np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), count),
                            rng.uniform(net.node_y.min(), net.node_y.max(), count)])


def test_real_extract_matches_pysal_access():
    pytest.importorskip("access")
    net = load_walk_arrays(shared_data("osm/beijing_haidian_thu_pku/map.osm.pbf"), use_cache=False)
    rng = np.random.default_rng(16)
    sites = reach.snap_points(net, _random_points(net, 40, rng), max_access_m=300)
    homes = reach.snap_points(net, _random_points(net, 2000, rng), max_access_m=300)
    catchment = reach.catchment_matrix(net, sites, homes, walk_speed_mps=0.8, limit=LIMIT)
    assert catchment.nnz > 1000
    supply = rng.uniform(20.0, 300.0, catchment.shape[0])
    demand = rng.uniform(1.0, 40.0, catchment.shape[1])
    _assert_same(_ours_all(catchment, supply, demand, LIMIT), _pysal_all(catchment, supply, demand, LIMIT))
