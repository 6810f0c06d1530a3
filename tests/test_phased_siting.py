"""Phased siting: equal to an independent multi-period MILP, budgets kept, planned facilities enter in their year."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from coverage.phased_siting import PhasedCoveringModel

YEARS = [2025, 2026, 2027]


def _case(seed: int, n_cand: int = 12, n_dem: int = 40, radius: float = 0.22):
    """Random points in the unit square; a candidate covers demand within ``radius``."""
    rng = np.random.default_rng(seed)
    dem = rng.uniform(size=(n_dem, 2))
    cand = rng.uniform(size=(n_cand, 2))
    dense = np.hypot(*(cand[:, None, :] - dem[None, :, :]).transpose(2, 0, 1)) <= radius
    w = rng.integers(1, 60, size=n_dem).astype(float)
    return dense, w


def _dense_milp(dense: np.ndarray, w: np.ndarray, existing: np.ndarray, budgets, total=None) -> float:
    """
    The textbook multi-period MCLP, dense, with x[j, t] = "open j in year t" (not the model's z formulation).

    max sum_t sum_i w_i y[i, t] (newly covered only), sum_t x[j, t] <= 1,
    y[i, t] <= sum_{j covers i, tau <= t} x[j, tau], y[i, t] = 0 where existing covers i in t,
    sum_j x[j, t] <= budgets[t], sum x <= total.
    """
    m, n = dense.shape
    T = len(budgets)
    nx, ny = m * T, n * T
    xi = lambda j, t: t * m + j  # noqa: E731
    yi = lambda i, t: nx + t * n + i  # noqa: E731
    A, lo, hi = [], [], []
    for i in range(n):
        for t in range(T):
            row = np.zeros(nx + ny)
            row[yi(i, t)] = 1.0
            for j in np.flatnonzero(dense[:, i]):
                for tau in range(t + 1):
                    row[xi(j, tau)] = -1.0
            A.append(row), lo.append(-np.inf), hi.append(0.0)
    for j in range(m):
        row = np.zeros(nx + ny)
        row[[xi(j, t) for t in range(T)]] = 1.0
        A.append(row), lo.append(-np.inf), hi.append(1.0)
    for t in range(T):
        row = np.zeros(nx + ny)
        row[[xi(j, t) for j in range(m)]] = 1.0
        A.append(row), lo.append(-np.inf), hi.append(float(budgets[t]))
    if total is not None:
        row = np.zeros(nx + ny)
        row[:nx] = 1.0
        A.append(row), lo.append(-np.inf), hi.append(float(total))
    ub = np.ones(nx + ny)
    for t in range(T):
        ub[nx + t * n: nx + (t + 1) * n][existing[t]] = 0.0
    c = np.zeros(nx + ny)
    for t in range(T):
        c[nx + t * n: nx + (t + 1) * n] = -w
    res = milp(c, constraints=LinearConstraint(np.array(A), lo, hi),
               integrality=np.concatenate([np.ones(nx), np.zeros(ny)]), bounds=Bounds(0, ub),
               options={"mip_rel_gap": 0.0})
    assert res.status == 0
    return -float(res.fun)


def _existing(seed: int, n_dem: int) -> np.ndarray:
    """Existing coverage that grows: a planned facility enters in 2026, another in 2027."""
    rng = np.random.default_rng(seed + 100)
    e = np.zeros((3, n_dem), dtype=bool)
    e[:, rng.choice(n_dem, 5, replace=False)] = True
    e[1:, rng.choice(n_dem, 4, replace=False)] = True
    e[2:, rng.choice(n_dem, 4, replace=False)] = True
    return e


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_phased_siting_equals_an_independent_multi_period_milp(seed):
    dense, w = _case(seed)
    existing = _existing(seed, dense.shape[1])
    budgets = [2, 1, 2]
    expected = _dense_milp(dense, w, existing, budgets)
    model = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, budgets, existing_covered=existing)
    res = model.solve("exact")
    assert res.status == "optimal" and res.method == "exact"
    assert res.objective == pytest.approx(expected, rel=1e-9, abs=1e-6)
    # the objective is what the chosen sites really cover, year by year
    covered = existing.copy()
    for t, sites in enumerate(res.sites_by_year):
        assert len(sites) <= budgets[t]
        for later in range(t, 3):
            covered[later] |= dense[sites].any(axis=0) if len(sites) else False
    assert np.array_equal(covered, res.covered)
    assert float(((covered & ~existing).astype(float) @ w).sum()) == pytest.approx(expected)
    # "auto" picks the MILP on a model this small
    assert model.solve("auto").objective == pytest.approx(expected)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_total_with_yearly_caps_is_never_exceeded(seed):
    dense, w = _case(seed, n_cand=14, n_dem=45)
    existing = _existing(seed, dense.shape[1])
    model = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, 3, total=5, existing_covered=existing)
    expected = _dense_milp(dense, w, existing, [3, 3, 3], total=5)
    for method in ("exact", "greedy"):
        res = model.solve(method)
        counts = [len(s) for s in res.sites_by_year]
        assert all(c <= 3 for c in counts) and sum(counts) <= 5
        assert res.marginal.groupby("year").size().reindex(YEARS, fill_value=0).tolist() == counts
        # a site opens once
        opened = np.concatenate(res.sites_by_year)
        assert len(opened) == len(set(opened.tolist()))
    assert model.solve("exact").objective == pytest.approx(expected)
    # sites open as early as the caps allow: 3 in the first year, 2 in the second
    assert [len(s) for s in model.solve("exact").sites_by_year][:1] == [3]


@pytest.mark.parametrize("seed", [0, 3, 8, 9])
def test_greedy_gap_is_honest(seed):
    dense, w = _case(seed, n_cand=16, n_dem=60, radius=0.2)
    existing = _existing(seed, dense.shape[1])
    budgets = [2, 2, 2]
    optimum = _dense_milp(dense, w, existing, budgets)
    greedy = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, budgets, existing_covered=existing).solve("greedy")
    assert greedy.bound >= optimum - 1e-6 >= greedy.objective - 2e-6
    assert greedy.gap == pytest.approx((greedy.bound - greedy.objective) / greedy.bound)


def test_a_planned_facility_enters_in_its_year():
    # two candidates; a planned facility (规划, opening 2026) covers points 0-2 from 2026 on
    dense = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 0]], dtype=bool)
    w = np.array([10.0, 10.0, 10.0, 8.0, 8.0, 1.0])
    existing = np.zeros((3, 6), dtype=bool)
    existing[1:, :3] = True
    res = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, [1, 0, 0], existing_covered=existing).solve("exact")
    # 2025: site 0 covers 30 persons for one year (30 person-years) or site 1 covers 16 for three (48): site 1
    assert [list(s) for s in res.sites_by_year] == [[1], [], []]
    assert res.existing_weight.tolist() == [0.0, 30.0, 30.0]
    assert res.covered_weight.tolist() == [16.0, 46.0, 46.0]
    assert res.objective == pytest.approx(48.0)
    table = res.by_year()
    assert table["share"].tolist() == pytest.approx([16 / 47, 46 / 47, 46 / 47])
    assert table["gain"].tolist() == [16.0, 0.0, 0.0] and table["new_sites"].tolist() == [1, 0, 0]
    # without the planned facility the first site is the better one (30 x 3 = 90 person-years)
    res2 = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, [1, 0, 0]).solve("exact")
    assert [list(s) for s in res2.sites_by_year] == [[0], [], []]


def test_target_is_met_as_early_as_possible():
    # site 0: 30 persons; site 1: 25 persons + 25 already covered... target 50 % of 100 persons in the first year
    dense = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [1, 0, 0, 1, 0, 0]], dtype=bool)
    w = np.array([20.0, 20.0, 5.0, 20.0, 20.0, 15.0])
    model = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, [1, 1, 0], target_shares=[0.55, None, None])
    res = model.solve("exact")
    # only site 1 (55 persons) meets 55 % in 2025; site 0 (45) would not
    assert res.targets_met[0] is True
    assert list(res.sites_by_year[0]) == [1]
    assert res.by_year()["target_met"].tolist()[0] is True


def test_bad_budgets_are_refused():
    dense, w = _case(0)
    with pytest.raises(ValueError, match="budgets"):
        PhasedCoveringModel(sp.csr_array(dense), w, YEARS, [1, 2])
    with pytest.raises(ValueError, match="years"):
        PhasedCoveringModel(sp.csr_array(dense), w, [2026, 2025, 2027], 1)


def test_auto_without_the_full_milp_keeps_budgets_and_an_honest_bound(monkeypatch):
    # the kernel path of "auto" (taken on large models) on a small one: the full MILP is ruled out
    import coverage.phased_siting as phased

    monkeypatch.setattr(phased, "_MILP_MAX_PAIRS", 0)
    dense, w = _case(11, n_cand=16, n_dem=60, radius=0.2)
    existing = _existing(11, dense.shape[1])
    optimum = _dense_milp(dense, w, existing, [2, 2, 2])
    res = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, 2, existing_covered=existing).solve("auto")
    assert res.method in ("greedy", "kernel")
    assert [len(s) for s in res.sites_by_year] <= [2, 2, 2]
    assert res.bound >= optimum - 1e-6 >= res.objective - 2e-6
    assert "year_bounds" in res.info
    # the subgradient and LP-dual Lagrangian bounds are valid
    assert res.info["lagrangian_bound"] >= optimum - 1e-6
    assert res.info["lp_bound"] >= optimum - 1e-6


@pytest.mark.parametrize("seed", [12, 13, 14])
def test_lagrangian_bound_is_never_below_the_optimum(seed):
    from coverage.phased_milp import phased_lagrangian_bound, phased_lp_bound

    dense, w = _case(seed, n_cand=14, n_dem=50, radius=0.2)
    existing = _existing(seed, dense.shape[1])
    model = PhasedCoveringModel(sp.csr_array(dense), w, YEARS, [2, 1, 2], existing_covered=existing)
    optimum = _dense_milp(dense, w, existing, [2, 1, 2])
    red = model.reduced
    nothing = red.eg.copy()
    lag, used, _ = phased_lagrangian_bound(red.B, red.wg, red.eg, model.budgets, model.total, nothing, 0.0,
                                        deadline=float("inf"), max_iter=40)
    lp, _ = phased_lp_bound(red.B, red.wg, red.eg, model.budgets, model.total, time_limit_s=30)
    assert lag >= optimum - 1e-6 and lp >= optimum - 1e-6
    # the LP-dual bound is the LP relaxation's optimum: no higher than the subgradient's best here
    assert lp <= lag + 1e-6 * lag
    assert used.sum() > 0


# --------------------------------------------------------------------------
# the study: planned facilities from the table, the site command, the 分年度选址 sheet
# --------------------------------------------------------------------------

from tests.conftest import REPO_ROOT  # noqa: E402

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def planned_demo(tmp_path_factory):
    """The demo study with its facility table plus a planned (规划, 2026) day-care centre at an uncovered spot."""
    import dataclasses

    import pandas as pd

    from coverage import coords, pipeline
    from coverage.config import FacilitySource, load_study

    folder = tmp_path_factory.mktemp("phased")
    table = pd.read_csv(REPO_ROOT / "data" / "facilities" / "demo_facilities_gbk.csv", encoding="gbk", skiprows=1,
                        dtype=str)
    lon, lat = coords.wgs84_to_gcj02(113.88382, 30.95719)  # 西城街道·西湖社区, uncovered by day care
    planned = {c: "" for c in table.columns}
    planned.update({"序号": "99", "名称": "西湖社区老年人日间照料中心（规划）", "类型": "日间照料中心",
                    "经度": f"{lon:.6f}", "纬度": f"{lat:.6f}", "坐标系": "GCJ-02", "所属乡镇(街道)": "西城街道"})
    table = pd.concat([table, pd.DataFrame([planned])], ignore_index=True)
    table["状态"] = ["规划" if n.endswith("（规划）") else "" for n in table["名称"].fillna("")]
    table["建成年份"] = ["2026" if n.endswith("（规划）") else "" for n in table["名称"].fillna("")]
    path = folder / "facilities_with_plan.csv"
    table.to_csv(path, index=False, encoding="utf-8")
    config = load_study(DEMO, output_root=folder)
    config = dataclasses.replace(config, facilities=(FacilitySource(path=path, crs="gcj02"),))
    return config, pipeline.prepare_inputs(config)


def test_a_planned_facility_of_the_table_enters_in_its_year(planned_demo):
    from coverage import pipeline
    from coverage.phased_plan import propose_phased_sites

    config, inputs = planned_demo
    plan = propose_phased_sites(config, kind="day_care", years=[2025, 2026, 2027], budgets=1, inputs=inputs,
                                time_limit_s=60)
    res = plan.result
    assert plan.opened_existing[0] + 1 == plan.opened_existing[1] == plan.opened_existing[2]
    assert res.existing_weight[1] > res.existing_weight[0] + 1000  # the planned centre covers its neighbourhood
    # the existing coverage of each year is what a run of that year finds (coverage.timeline / run --as-of)
    for k, year in enumerate([2025, 2026]):
        run = pipeline.run_study(config, write=False, as_of=year)
        long = run.coverage_long
        within = long[(long["scope"] == "study") & (long["kind"] == "day_care") & (long["threshold"] == 15)
                      & (long["unit"] == "min")]["elderly_within"].iloc[0]
        assert res.existing_weight[k] == pytest.approx(float(within), rel=1e-9)
    assert [len(s) for s in res.sites_by_year] == [1, 1, 1]
    assert res.status == "optimal"


def test_one_year_of_phased_siting_is_the_site_figure(planned_demo):
    from coverage import proposals
    from coverage.phased_plan import propose_phased_sites

    config, inputs = planned_demo
    plan = propose_phased_sites(config, kind="canteen", years=[2025], budgets=3, inputs=inputs)
    proposal = proposals.propose_sites(config, kind="canteen", add=3, inputs=inputs)
    assert proposal.result.status == plan.result.status == "optimal"
    assert plan.result.objective == pytest.approx(proposal.result.objective, rel=1e-9)


def test_site_per_year_writes_the_phased_sheet(tmp_path, capsys):
    from openpyxl import load_workbook

    from coverage.cli import main

    code = main(["site", str(DEMO), "--kind", "day_care", "--per-year", "2", "--years", "2025-2027",
                 "--target", "0.5", "--out", str(tmp_path)])
    assert code == 0
    out = tmp_path / "demo"
    book = load_workbook(out / "phased_day_care_15min.xlsx", read_only=True)
    assert {"分年度选址", "年度覆盖", "参数"} <= set(book.sheetnames)
    rows = list(book["分年度选址"].iter_rows(values_only=True))
    header_row = next(i for i, r in enumerate(rows) if r and "建设年份" in r)
    header = rows[header_row]
    body = [dict(zip(header, r)) for r in rows[header_row + 1:] if r and r[header.index("建设年份")]]
    years = [int(r["建设年份"]) for r in body]
    assert all(years.count(y) <= 2 for y in (2025, 2026, 2027)) and len(years) == 6
    assert all(r["乡镇街道"] for r in body)  # each site is named by its town
    shares = [r["覆盖率"] for r in body]
    assert shares == sorted(shares)  # coverage after each site only grows
    text = capsys.readouterr().out
    assert "2026" in text and "合成示例数据" in text
    years_csv = (out / "phased_day_care_15min_years.csv").read_text(encoding="utf-8-sig")
    assert "当年新建(处)" in years_csv and "目标覆盖率" in years_csv


@pytest.mark.parametrize("argv, words", [
    (["--per-year", "2"], "--years"),
    (["--per-year", "2", "--years", "2027-2025"], "--years"),
    (["--budget", "2025:x"], "--budget"),
    (["--per-year", "-1", "--years", "2025-2026"], "per-year"),
])
def test_bad_phased_options_exit_2_and_say_what_to_write(argv, words, tmp_path, capsys):
    from coverage.cli import main

    assert main(["site", str(DEMO), "--kind", "day_care", *argv, "--out", str(tmp_path)]) == 2
    assert words in capsys.readouterr().err
