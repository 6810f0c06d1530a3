"""
Benchmark: phased siting (coverage.phased_siting.PhasedCoveringModel) over 3 years at 100k demand x 5,000 candidates.

Run with the project's virtualenv::

    .venv/bin/python benchmarks/bench_phased.py [--per-year 20] [--time-limit 150] [--json out.json]

Inputs (the same construction as benchmarks/bench_siting.py):

* demand: the 100,000 populated WorldPop 2020 cells (~100 m) nearest central
  Wuhan, weight = persons aged 60+ (10 age/sex bands summed), in UTM 50N;
* candidates: 5,000 random populated cells jittered by +-50 m (seed 0);
* coverage: straight-line distance <= 720 m (15 min at 0.8 m/s), a sparse
  candidate x demand catchment from ``scipy.spatial.cKDTree``;
* existing facilities: 300 at random populated cells open in every year; 30
  planned ones opening in year 2 and 30 more in year 3 (their 720 m circles
  are the existing coverage of those years);
* budget: ``--per-year`` new sites in each of 2025, 2026, 2027.

One process, timed from the model's constructor (reduction) to the answer;
the gap is to the rigorous bound the model reports (sum over the years of
each year's maximal-covering bound with the sites allowed by then).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_siting import RADIUS_M, load_elderly, make_case  # noqa: E402


def existing_by_year(case: dict, seed: int = 1) -> np.ndarray:
    """(3, n_demand): 300 facilities from year 1, 30 planned more from year 2 and 30 more from year 3."""
    from scipy.spatial import cKDTree

    demand = case["demand"]
    n = len(demand)
    rng = np.random.default_rng(seed)
    picks = rng.choice(n, size=360, replace=False)
    tree = cKDTree(demand)
    out = np.zeros((3, n), dtype=bool)
    for first_year, chunk in ((0, picks[:300]), (1, picks[300:330]), (2, picks[330:])):
        for idx in tree.query_ball_point(demand[chunk], RADIUS_M):
            out[first_year:, np.asarray(idx, dtype=np.int64)] = True
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--demand", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=5_000)
    parser.add_argument("--per-year", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=150.0)
    parser.add_argument("--greenfield", action="store_true", help="no existing facilities")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    from coverage.phased_siting import PhasedCoveringModel

    t0 = time.perf_counter()
    case = make_case(load_elderly(), args.demand, args.candidates, seed=0)
    existing = None if args.greenfield else existing_by_year(case)
    t1 = time.perf_counter()
    years = [2025, 2026, 2027]
    model = PhasedCoveringModel(case["coverage"], case["weights"], years, args.per_year, existing_covered=existing)
    t2 = time.perf_counter()
    res = model.solve(time_limit_s=args.time_limit)
    t3 = time.perf_counter()
    info = res.info
    record = {
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average": os.getloadavg(),
        "demand": args.demand, "candidates": args.candidates, "nnz": int(case["coverage"].nnz),
        "per_year": args.per_year, "years": years, "greenfield": args.greenfield,
        "existing_share_by_year": [] if existing is None else
        [float(case["weights"][e].sum() / case["weights"].sum()) for e in existing],
        "method": res.method, "status": res.status, "objective_person_years": res.objective,
        "bound_person_years": res.bound, "gap": res.gap,
        "greedy_objective": info.get("greedy_objective"), "online_bounds": info.get("online_bounds"),
        "year_bounds": info.get("year_bounds"), "kernel_candidates": info.get("kernel_candidates"),
        "lagrangian_bound": info.get("lagrangian_bound"), "lagrangian_s": info.get("lagrangian_s"),
        "lp_bound": info.get("lp_bound"), "scheduled_objective": info.get("scheduled_objective"),
        "kernel_objective": info.get("kernel_objective"),
        "shares_by_year": res.shares.tolist(), "sites_by_year": [len(s) for s in res.sites_by_year],
        "reduction": info.get("reduction"), "inputs_s": t1 - t0, "reduce_s": t2 - t1, "solve_s": t3 - t2,
        "model_s": t3 - t1,
    }
    text = json.dumps(record, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
