"""Equity measures against hand-made cases and the direct formulas; the Lorenz figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coverage import equity


def _gini_direct(x, w):
    """Σ_i Σ_j w_i w_j |x_i − x_j| / (2 W² μ)."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    mean = (w @ x) / w.sum()
    return float((w[:, None] * w[None, :] * np.abs(x[:, None] - x[None, :])).sum() / (2 * w.sum() ** 2 * mean))


def _theil_direct(x, w):
    x, w = np.asarray(x, float), np.asarray(w, float)
    mean = (w @ x) / w.sum()
    return float(sum(wi / w.sum() * (xi / mean) * np.log(xi / mean) for xi, wi in zip(x, w) if xi > 0))


def test_gini_by_hand():
    assert equity.gini([1.0, 1.0, 1.0]) == pytest.approx(0.0)
    # half the people have nothing, the other half the same: G = 0.5
    assert equity.gini([0.0, 0.0, 1.0, 1.0]) == pytest.approx(0.5)
    # weights are people: one point of weight 2 is two points
    assert equity.gini([0.0, 1.0], [2.0, 2.0]) == pytest.approx(equity.gini([0.0, 0.0, 1.0, 1.0]))
    # one of n has everything: (n − 1) / n
    assert equity.gini([0.0, 0.0, 0.0, 4.0]) == pytest.approx(0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gini_and_theil_equal_the_direct_formulas(seed):
    rng = np.random.default_rng(seed)
    x = rng.gamma(1.5, 2.0, 300)
    x[rng.random(300) < 0.2] = 0.0
    w = rng.uniform(0.5, 50.0, 300)
    assert equity.gini(x, w) == pytest.approx(_gini_direct(x, w), rel=1e-12)
    assert equity.theil(x, w) == pytest.approx(_theil_direct(x, w), rel=1e-12)


def test_theil_by_hand():
    assert equity.theil([2.0, 2.0]) == 0.0
    # x = (1, 3), mean 2: ½ (½ ln ½) + ½ (3/2 ln 3/2)
    assert equity.theil([1.0, 3.0]) == pytest.approx(0.25 * np.log(0.5) + 0.75 * np.log(1.5))
    # all zero: no inequality to measure
    assert equity.theil([0.0, 0.0]) == 0.0


def test_theil_decomposition_adds_up_and_matches_the_direct_between_part():
    rng = np.random.default_rng(5)
    x = rng.gamma(2.0, 1.0, 400)
    w = rng.uniform(1.0, 20.0, 400)
    towns = rng.choice(["t1", "t2", "t3", "t4"], 400)
    parts = equity.theil_decomposition(x, w, towns)
    assert parts.total == pytest.approx(equity.theil(x, w), rel=1e-12)
    assert parts.between + parts.within == pytest.approx(parts.total, rel=1e-10)
    # between = the Theil index of everyone given their town's mean
    means = pd.Series(w * x).groupby(towns).sum() / pd.Series(w).groupby(towns).sum()
    assert parts.between == pytest.approx(_theil_direct(means.loc[towns].to_numpy(), w), rel=1e-10)
    assert parts.groups["population_share"].sum() == pytest.approx(1.0)
    assert parts.groups["value_share"].sum() == pytest.approx(1.0)
    assert 0.0 <= parts.between_share <= 1.0


def test_theil_decomposition_by_hand():
    # urban everyone 2, rural everyone 1 (equal numbers): all inequality is between groups
    parts = equity.theil_decomposition([2.0, 2.0, 1.0, 1.0], [1, 1, 1, 1], ["urban", "urban", "rural", "rural"])
    assert parts.within == pytest.approx(0.0)
    assert parts.between == pytest.approx((2 / 3) * np.log(4 / 3) + (1 / 3) * np.log(2 / 3))
    assert parts.between_share == pytest.approx(1.0)


def test_lorenz_curve_by_hand():
    x, y = equity.lorenz_curve([3.0, 0.0, 1.0], [1.0, 2.0, 1.0])
    np.testing.assert_allclose(x, [0.0, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(y, [0.0, 0.0, 0.25, 1.0])


def test_lowest_decile_share():
    # 30 % of the people have no access: the bottom decile holds all of them, and none of the access
    values = np.array([0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    low = equity.lowest_decile_share(values)
    assert (low.threshold, low.population_share, low.value_share, low.zero_share) == (0.0, 0.3, 0.0, 0.3)
    # no ties: the decile is the lowest tenth, holding 1 / 55 of the access
    low = equity.lowest_decile_share(np.arange(1.0, 11.0))
    assert low.threshold == 1.0 and low.population_share == pytest.approx(0.1)
    assert low.value_share == pytest.approx(1.0 / 55.0)


def test_location_quotient_by_hand():
    # town a: 10 people at 3; town b: 30 people at 1 → mean 1.5; LQ a = 2, b = 2/3
    lq = equity.location_quotient([3.0, 1.0, 1.0], [10.0, 10.0, 20.0], ["a", "b", "b"])
    assert lq["a"] == pytest.approx(2.0) and lq["b"] == pytest.approx(2.0 / 3.0)
    # LQ is the population-weighted mean ratio: Σ share_pop × LQ = 1
    assert (lq * pd.Series({"a": 0.25, "b": 0.75})).sum() == pytest.approx(1.0)


def test_negative_values_are_refused():
    with pytest.raises(ValueError, match="negative"):
        equity.gini([-1.0, 1.0])


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_lorenz_figure_writes_a_png(tmp_path, lang):
    rng = np.random.default_rng(1)
    values = rng.gamma(1.0, 1.0, 200)
    path = equity.lorenz_figure(values, rng.uniform(1, 10, 200), tmp_path / f"lorenz_{lang}.png",
                                groups=np.where(rng.random(200) < 0.5, "urban", "rural"), lang=lang)
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_kinds_figures_drawn_on_one_reused_figure_are_the_figures_drawn_alone(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(2)
    weights = rng.uniform(1, 10, 500)
    groups = np.where(rng.random(500) < 0.4, "urban", "rural")
    values = [rng.gamma(shape, 1.0, 500) for shape in (0.5, 1.0, 3.0)]
    together = equity.lorenz_figures([(v, tmp_path / f"together_{i}.png", None) for i, v in enumerate(values)],
                                     weights, groups=groups)
    for i, v in enumerate(values):
        alone = equity.lorenz_figure(v, weights, tmp_path / f"alone_{i}.png", groups=groups)
        assert np.array_equal(np.asarray(Image.open(together[i])), np.asarray(Image.open(alone)))
    # each figure its own curves: the first and the last differ
    assert not np.array_equal(np.asarray(Image.open(together[0])), np.asarray(Image.open(together[-1])))


def test_a_title_made_from_the_gini_names_the_gini_the_figure_draws(tmp_path):
    rng = np.random.default_rng(3)
    values, weights = rng.gamma(1.0, 1.0, 300), rng.uniform(1, 10, 300)
    seen = []
    equity.lorenz_figures([(values, tmp_path / "titled.png", lambda g: seen.append(g) or f"G {g:.3f}")], weights)
    assert seen == [pytest.approx(equity.gini(values, weights), abs=1e-12)]


def test_a_county_s_curve_is_drawn_from_fewer_vertices_that_stay_on_it():
    """124,000 demand points give a curve of 124,001 vertices; the figure draws 2,000 of them, within a pixel."""
    import shapely

    rng = np.random.default_rng(4)
    values = np.where(rng.random(20_000) < 0.3, 0.0, rng.gamma(0.6, 2.0, 20_000))
    x, y = equity.lorenz_curve(values, rng.uniform(1, 30, 20_000))
    dx, dy = equity._drawn(x, y)
    assert len(dx) <= 2002 and (dx[0], dy[0]) == (0.0, 0.0) and (dx[-1], dy[-1]) == (x[-1], y[-1])
    assert np.isin(dx, x).all()  # vertices of the curve itself
    full, drawn = shapely.LineString(np.column_stack([x, y])), shapely.LineString(np.column_stack([dx, dy]))
    assert shapely.hausdorff_distance(full, drawn) < 1.0 / 825  # under a pixel of the 825-pixel-wide figure
