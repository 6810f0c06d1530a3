"""
Benchmark: coverage.siting.solve_mclp against PySAL spopt's MCLP (PuLP/CBC).

Run with the benchmark virtualenv (spopt, pulp and psutil live there only)::

    /work/main/.venv-bench/bin/python benchmarks/bench_siting.py

Inputs (real data, no synthetic population):

* demand: WorldPop 2020 age/sex rasters of Wuhan, the 10 bands 60-64 ... 80+
  (both sexes) summed = persons aged 60+ per ~100 m cell; the ``n`` populated
  cells nearest to central Wuhan (114.30 E, 30.58 N), cell centres projected
  to UTM 50N (EPSG:32650);
* candidates: ``m`` random populated cells (seeded; with replacement when
  ``m > n``), jittered by up to +-50 m;
* coverage: straight-line (Euclidean) distance <= 720 m, i.e. 15 minutes at
  the elderly walking speed of 0.8 m/s, from ``scipy.spatial.cKDTree``;
* ``p = max(5, n // 500)`` new sites;
* scenario ``greenfield``: no existing facilities; scenario ``infill``
  (largest size only): 300 existing facilities at random populated cells,
  whose 720 m circles are ``already_covered``. spopt has no such notion, so
  it gets those demand weights set to zero (the same optimisation problem);
* scenario ``network`` (``--network``, on by default): a real walking
  network -- the OpenStreetMap extract ``shanghai_center`` (roads only, 12.5
  x 11 km) -- with the Wuhan 60+ cells of a window of the same size around
  central Wuhan transplanted onto it (Wuhan has no OSM extract here, Shanghai
  no age raster; the transplant keeps real population patterns and a real
  street pattern, not their true pairing). Coverage = walking time <= 900 s
  (15 min at 0.8 m/s) by :func:`coverage.reach.catchment_matrix`; spopt gets
  the same walking times as a dense cost matrix (inf beyond the limit).

Each solver runs in its own subprocess, timed from reading the inputs to the
answer (spopt: building the dense cost matrix with ``cdist``, the PuLP model
and the CBC solve), with peak memory sampled by psutil (resident set of the
process and its children, e.g. the CBC binary, every 0.1 s). spopt gets a
wall-clock limit (CBC ``timeLimit`` and a hard kill) and an RSS cap, and is
skipped where its dense cost matrix alone would exceed ``--dense-cap-gb``.
Objectives are compared to the person by evaluating each solver's chosen
sites on the same coverage matrix.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RASTERS = str(REPO.parent / "shared" / "data" / "population" / "wuhan_worldpop_agesex" / "pop_*_wuhan.tif")
RADIUS_M = 720.0
CENTRE = (114.30, 30.58)
SIZES = [(1_000, 500), (1_000, 5_000), (10_000, 500), (10_000, 5_000), (100_000, 500), (100_000, 5_000)]


# --------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------


def load_elderly() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Populated 60+ cells of Wuhan: x, y (UTM 50N metres) and persons."""
    import rasterio
    from pyproj import Transformer

    paths = sorted(glob.glob(RASTERS))
    if len(paths) != 10:
        raise SystemExit(f"expected 10 WorldPop 60+ rasters at {RASTERS}, found {len(paths)}")
    total = None
    for path in paths:
        with rasterio.open(path) as src:
            band = src.read(1).astype(np.float64)
            band[~np.isfinite(band) | (band < 0)] = 0.0
            total = band if total is None else total + band
            transform = src.transform
    rows, cols = np.nonzero(total > 0)
    lon, lat = rasterio.transform.xy(transform, rows, cols)
    x, y = Transformer.from_crs(4326, 32650, always_xy=True).transform(np.asarray(lon), np.asarray(lat))
    return np.asarray(x), np.asarray(y), total[rows, cols]


def make_case(cells, n_dem: int, n_cand: int, seed: int = 0, n_existing: int = 0) -> dict:
    """Coverage matrix and coordinates of one benchmark case."""
    from pyproj import Transformer
    from scipy.spatial import cKDTree

    x, y, w = cells
    cx, cy = Transformer.from_crs(4326, 32650, always_xy=True).transform(*CENTRE)
    order = np.argsort(np.hypot(x - cx, y - cy), kind="stable")[:n_dem]
    demand = np.column_stack([x[order], y[order]])
    weights = w[order]
    rng = np.random.default_rng(seed)
    pick = rng.choice(n_dem, size=n_cand, replace=n_cand > n_dem)
    cand = demand[pick] + rng.uniform(-50.0, 50.0, size=(n_cand, 2))
    tree = cKDTree(demand)
    lists = tree.query_ball_point(cand, RADIUS_M)
    indptr = np.zeros(n_cand + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(item) for item in lists])
    indices = np.concatenate([np.asarray(item, dtype=np.int64) for item in lists])
    coverage = sp.csr_array((np.ones(indices.size, dtype=bool), indices, indptr), shape=(n_cand, n_dem))
    coverage.sort_indices()
    base = np.zeros(n_dem, dtype=bool)
    if n_existing:
        existing = demand[rng.choice(n_dem, size=n_existing, replace=False)]
        dist, _ = cKDTree(existing).query(demand)
        base = dist <= RADIUS_M
    return {"coverage": coverage, "weights": weights, "base": base, "demand": demand, "cand": cand,
            "radius": RADIUS_M}


def make_network_case(cells, n_cand: int, seed: int = 0) -> dict:
    """Walking-time coverage on the shanghai_center streets with transplanted Wuhan 60+ cells."""
    from pyproj import Transformer

    from coverage import network, reach

    osm = REPO.parent / "shared" / "data" / "osm" / "shanghai_center" / "shanghai_center.osm.pbf"
    graph = network.load_walk_network(osm, cache_dir=Path(tempfile.gettempdir()) / "bench_siting_netcache")
    net = reach.network_arrays(graph)
    x, y, w = cells
    cx, cy = Transformer.from_crs(4326, 32650, always_xy=True).transform(*CENTRE)
    width, height = np.ptp(net.node_x), np.ptp(net.node_y)
    inside = (np.abs(x - cx) <= width / 2) & (np.abs(y - cy) <= height / 2)
    demand = np.column_stack([x[inside] - (cx - width / 2) + net.node_x.min(),
                              y[inside] - (cy - height / 2) + net.node_y.min()])
    weights = w[inside]
    rng = np.random.default_rng(seed)
    cand = demand[rng.choice(len(demand), size=n_cand, replace=n_cand > len(demand))]
    cand = cand + rng.uniform(-50.0, 50.0, size=(n_cand, 2))
    demand_snap = reach.snap_points(net, demand, max_access_m=300.0)
    cand_snap = reach.snap_points(net, cand, max_access_m=300.0)
    seconds = sp.csr_array(reach.catchment_matrix(net, cand_snap, demand_snap, walk_speed_mps=0.8, limit=900.0))
    seconds.sort_indices()
    coverage = sp.csr_array((np.ones(seconds.nnz, dtype=bool), seconds.indices, seconds.indptr), shape=seconds.shape)
    return {"coverage": coverage, "weights": weights, "base": np.zeros(len(demand), dtype=bool), "demand": demand,
            "cand": cand, "cost_values": seconds.data, "radius": 900.0,
            "on_network_share": float(demand_snap.on_network.mean())}


def save_case(case: dict, path: Path) -> None:
    a = case["coverage"]
    extra = {"cost_values": case["cost_values"]} if "cost_values" in case else {}
    np.savez(path, indptr=a.indptr, indices=a.indices, shape=np.array(a.shape), weights=case["weights"],
             base=case["base"], demand=case["demand"], cand=case["cand"], radius=case["radius"], **extra)


def load_case(path: str) -> dict:
    z = np.load(path)
    n_c, n_d = z["shape"]
    a = sp.csr_array((np.ones(z["indices"].size, dtype=bool), z["indices"], z["indptr"]), shape=(n_c, n_d))
    case = {"coverage": a, "weights": z["weights"], "base": z["base"], "demand": z["demand"], "cand": z["cand"],
            "radius": float(z["radius"])}
    if "cost_values" in z.files:
        case["cost_values"] = z["cost_values"]
    return case


def new_weight(case: dict, sites) -> float:
    a, w, base = case["coverage"], case["weights"], case["base"]
    covered = np.zeros(a.shape[1], dtype=bool)
    if len(sites):
        covered[sp.csr_array(a[np.asarray(sites, dtype=np.int64)]).indices] = True
    return float(w[covered & ~base].sum())


# --------------------------------------------------------------------------
# workers (run in subprocesses)
# --------------------------------------------------------------------------


def _emit(record: dict) -> None:
    print("RESULT " + json.dumps(record), flush=True)


def worker_ours(path: str, p: int, time_limit: float) -> None:
    t0 = time.perf_counter()
    from coverage.siting import solve_mclp

    case = load_case(path)
    t1 = time.perf_counter()
    res = solve_mclp(case["coverage"], case["weights"], p, already_covered=case["base"], time_limit_s=time_limit)
    t2 = time.perf_counter()
    red = res.info.get("reduction", {})
    _emit({
        "objective": res.objective, "check": new_weight(case, res.selected), "n_sites": res.n_sites,
        "status": res.status, "method": res.method, "bound": res.bound, "gap": res.gap,
        "solve_s": t2 - t1, "import_load_s": t1 - t0,
        "n_groups": red.get("n_groups"), "n_candidates_kept": red.get("n_candidates_kept"),
        "reduced_nnz": red.get("reduced_nnz"), "nnz": red.get("nnz"),
        "steps": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.info.items()
                  if k in ("greedy_objective", "swap_objective", "lagrangian_bound", "lp_bound", "lp_s", "lp_support")},
        "kernel": {k: res.info["kernel"].get(k) for k in ("n_candidates", "n_groups", "objective", "message")}
        if "kernel" in res.info else None,
        "lns": res.info.get("lns"),
        "milp": (res.info.get("milp") or {}).get("message"),
    })


def worker_ours_minsites(path: str, target_share: float, time_limit: float) -> None:
    """The fewest new sites so that ``target_share`` of all 60+ persons are covered (existing included)."""
    t0 = time.perf_counter()
    from coverage.siting import min_sites_for_target

    case = load_case(path)
    t1 = time.perf_counter()
    res = min_sites_for_target(case["coverage"], case["weights"], target_share, already_covered=case["base"],
                               time_limit_s=time_limit)
    t2 = time.perf_counter()
    covered = case["base"].copy()
    if res.n_sites:
        covered[sp.csr_array(case["coverage"][np.asarray(res.selected)]).indices] = True
    _emit({
        "n_sites": res.n_sites, "lower_bound_sites": res.bound, "gap": res.gap, "status": res.status,
        "method": res.method, "share_after": res.share_after,
        "check_share": float(case["weights"][covered].sum() / case["weights"].sum()),
        "solve_s": t2 - t1, "import_load_s": t1 - t0,
        "steps": {k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.info.items()
                  if k in ("greedy_sites", "lp_value", "lp_lower_bound", "lp_s", "lp_columns", "fewer_tries")},
    })


def worker_spopt(path: str, p: int, time_limit: float) -> None:
    t0 = time.perf_counter()
    import pulp
    from scipy.spatial.distance import cdist
    from spopt.locate import MCLP

    case = load_case(path)
    weights = np.where(case["base"], 0.0, case["weights"])
    t1 = time.perf_counter()
    if "cost_values" in case:  # walking seconds, dense, inf beyond the limit
        a = case["coverage"]
        cost = np.full((a.shape[1], a.shape[0]), np.inf)
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
        cost[a.indices, rows] = case["cost_values"]
    else:  # straight-line metres
        cost = cdist(case["demand"], case["cand"])
    t2 = time.perf_counter()
    print(f"STAGE cost matrix {t2 - t1:.1f}s", flush=True)
    model = MCLP.from_cost_matrix(cost, weights, service_radius=case["radius"], p_facilities=p)
    t3 = time.perf_counter()
    print(f"STAGE model built {t3 - t2:.1f}s", flush=True)
    # same coverage pairs as ours (count of pairs within the radius)
    mismatch = int(model.aij.sum()) - int(case["coverage"].nnz)
    remaining = max(1, int(time_limit - (t3 - t0)))
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=remaining)
    error = None
    try:
        model.solve(solver, results=False)
    except RuntimeError as exc:  # spopt raises when CBC has no optimal status
        error = str(exc)
    t4 = time.perf_counter()
    chosen = [j for j, var in enumerate(model.fac_vars) if var.value() is not None and var.value() > 0.5]
    _emit({
        "objective": new_weight(case, chosen) if chosen else None, "n_sites": len(chosen),
        "status": pulp.LpStatus.get(model.problem.status), "sol_status": model.problem.sol_status,
        "error": error, "cost_matrix_s": t2 - t1, "build_s": t3 - t2, "cbc_s": t4 - t3,
        "solve_s": t4 - t1, "coverage_mismatch": mismatch,
    })


# --------------------------------------------------------------------------
# parent: run a worker with a time limit and an RSS watchdog
# --------------------------------------------------------------------------


def run_worker(kind: str, path: Path, p: float, time_limit: float, hard_timeout: float, rss_cap_gb: float) -> dict:
    import psutil

    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(path), str(p), str(time_limit)]
    env = dict(os.environ, OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=subprocess.STDOUT, text=True, env=env,
                                start_new_session=True, cwd=str(REPO))
        ps = psutil.Process(proc.pid)
        peak = 0
        killed = None
        while proc.poll() is None:
            try:
                rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            elapsed = time.perf_counter() - t0
            if elapsed > hard_timeout:
                killed = f"killed: no answer within {hard_timeout:.0f} s"
            elif peak > rss_cap_gb * 2**30:
                killed = f"killed: memory above {rss_cap_gb:g} GB RSS"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)  # the worker's own process group (it and its CBC child)
                proc.wait()
                break
            time.sleep(0.1)
        wall = time.perf_counter() - t0
        out_file.seek(0)
        text = out_file.read()
    record: dict = {}
    for line in text.splitlines():
        if line.startswith("RESULT "):
            record = json.loads(line[len("RESULT "):])
    if not record:
        stages = [line for line in text.splitlines() if line.startswith("STAGE")]
        tail = text.strip().splitlines()[-3:] if text.strip() else []
        record = {"error": killed or "no result", "stages": stages, "tail": tail if not killed else []}
    record["wall_s"] = wall
    record["peak_rss_gb"] = peak / 2**30
    if killed:
        record["killed"] = killed
    return record


def machine_info() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "uname_m": platform.machine(), "nproc": os.cpu_count(), "cpu": model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_at_start": os.getloadavg(), "python": platform.python_version(),
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def fmt(record: dict, key: str, spec: str = ".1f") -> str:
    value = record.get(key)
    return "-" if value is None else format(value, spec)


def run_large_sweep(cells, args) -> list[dict]:
    """
    100k demand x 5,000 candidates, ours only: MCLP for several p and the fewest sites for target shares.

    spopt cannot hold these (its dense matrix alone is 3.7 GB), so only our
    solver runs; each solve is one subprocess timed from interpreter start to
    the answer (wall clock), against the issue's "under 2 minutes".
    """
    p_values = [int(v) for v in args.large_p.split(",") if v.strip()]
    targets = [(item.split(":")[0], float(item.split(":")[1])) for item in args.large_targets.split(",") if item.strip()]
    records: list[dict] = []
    print()
    print(f"### 100,000 × 5,000 across p and targets (ours only; time limit {args.large_time_limit:g} s per solve)")
    print()
    print("| scenario | question | answer | status (method) | bound | gap | wall s | peak GB | under 2 min and gap < 1 % |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench_siting_sweep_") as tmp:
        paths = {}
        for scenario, n_existing in (("greenfield", 0), ("infill", 300)):
            case = make_case(cells, 100_000, 5_000, seed=0, n_existing=n_existing)
            paths[scenario] = Path(tmp) / f"{scenario}.npz"
            save_case(case, paths[scenario])
        for scenario in ("greenfield", "infill"):
            for p in p_values:
                rec = run_worker("ours", paths[scenario], p, args.large_time_limit, args.large_time_limit * 2 + 60,
                                 args.rss_cap_gb)
                rec.update(scenario=scenario, question=f"p = {p}")
                records.append(rec)
                ok = rec.get("gap") is not None and rec["gap"] < 0.01 and rec["wall_s"] < 120
                print(f"| {scenario} | MCLP, p = {p} | {fmt(rec, 'objective', ',.1f')} persons "
                      f"| {rec.get('status')} ({rec.get('method')}) | {fmt(rec, 'bound', ',.1f')} "
                      f"| {100 * rec['gap']:.2f} % | {fmt(rec, 'wall_s')} | {fmt(rec, 'peak_rss_gb', '.2f')} "
                      f"| {'yes' if ok else 'no'} |" if rec.get("gap") is not None else
                      f"| {scenario} | MCLP, p = {p} | {rec.get('error')} | | | | {fmt(rec, 'wall_s')} | | no |",
                      flush=True)
        for scenario, share in targets:
            rec = run_worker("ours_minsites", paths[scenario], share, args.large_time_limit,
                             args.large_time_limit * 2 + 60, args.rss_cap_gb)
            rec.update(scenario=scenario, question=f"fewest sites for {share:.0%}")
            records.append(rec)
            if rec.get("n_sites") is None:
                print(f"| {scenario} | fewest sites for {share:.0%} | {rec.get('error')} | | | | "
                      f"{fmt(rec, 'wall_s')} | | no |", flush=True)
                continue
            ok = rec["gap"] < 0.01 and rec["wall_s"] < 120
            print(f"| {scenario} | fewest sites for {share:.0%} of the 60+ | {rec['n_sites']} sites "
                  f"(share {rec['check_share']:.4f}) | {rec['status']} ({rec['method']}) "
                  f"| ≥ {rec['lower_bound_sites']:.0f} sites | {100 * rec['gap']:.2f} % | {fmt(rec, 'wall_s')} "
                  f"| {fmt(rec, 'peak_rss_gb', '.2f')} | {'yes' if ok else 'no'} |", flush=True)
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=90.0, help="seconds per solve (both solvers)")
    parser.add_argument("--dense-cap-gb", type=float, default=2.0, help="skip spopt when its dense matrix exceeds this")
    parser.add_argument("--rss-cap-gb", type=float, default=6.0, help="kill a solver above this resident memory")
    parser.add_argument("--sizes", default=None, help="e.g. 1000x500,10000x500 (default: all six)")
    parser.add_argument("--json", default=None, help="also write the records to this JSON file")
    parser.add_argument("--no-network", action="store_true", help="leave out the walking-network cases")
    parser.add_argument("--large-p", default="20,50,100,200",
                        help="p values for the 100k x 5,000 sweep (ours only; '' to skip)")
    parser.add_argument("--large-targets", default="greenfield:0.5,greenfield:0.6,infill:0.7",
                        help="scenario:share pairs for the fewest-sites runs at 100k x 5,000 ('' to skip)")
    parser.add_argument("--large-time-limit", type=float, default=105.0,
                        help="seconds per solve in the 100k x 5,000 sweep (the target is < 2 min wall clock)")
    args = parser.parse_args()

    sizes = SIZES if not args.sizes else [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    info = machine_info()
    from coverage import reach

    network_available = hasattr(reach, "catchment_matrix")
    print(f"# bench_siting  {info['date']}")
    print(f"# machine: {info['uname_m']}, nproc {info['nproc']}, {info['cpu']}, {info['ram_gb']} GB RAM, "
          f"load average at start {info['load_avg_at_start']}")
    print(f"# coverage: greenfield/infill = Euclidean <= {RADIUS_M:g} m (cKDTree) on WorldPop Wuhan 60+ cells; "
          f"network = coverage.reach.catchment_matrix, walking <= 900 s at 0.8 m/s on OSM shanghai_center "
          f"with transplanted Wuhan 60+ cells (catchment_matrix available: {network_available})")
    print(f"# time limit {args.time_limit:g} s per solve; spopt skipped above a {args.dense_cap_gb:g} GB dense "
          f"matrix; RSS cap {args.rss_cap_gb:g} GB")
    t_start = time.perf_counter()
    cells = load_elderly()
    print(f"# {cells[2].size} populated cells, {cells[2].sum():,.0f} persons aged 60+ in the rasters")

    cases = [("greenfield", n, m, 0) for n, m in sizes]
    if (100_000, 5_000) in sizes:
        cases.append(("infill", 100_000, 5_000, 300))
    if network_available and not args.no_network:
        cases += [("network", None, 500, 0), ("network", None, 5_000, 0)]
    header = ("| scenario | demand × candidates | p | nnz | groups / cand. kept | ours: persons | status, gap | "
              "ours s | ours GB | spopt: persons | spopt status | spopt s | spopt GB | same optimum | speed-up |")
    print()
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    records = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_siting_") as tmp:
        for scenario, n, m, n_existing in cases:
            if scenario == "network":
                case = make_network_case(cells, m, seed=0)
                n = len(case["weights"])
                notes.append(f"network case {n}x{m}: {n} demand cells ({100 * case['on_network_share']:.0f} % "
                             f"within 300 m of a street), {case['weights'].sum():,.0f} persons, "
                             f"{case['coverage'].nnz} pairs within 900 s")
            else:
                case = make_case(cells, n, m, seed=0, n_existing=n_existing)
            p = max(5, n // 500)
            path = Path(tmp) / f"case_{scenario}_{n}_{m}.npz"
            save_case(case, path)
            base_share = case["weights"][case["base"]].sum() / case["weights"].sum()
            ours = run_worker("ours", path, p, args.time_limit, args.time_limit * 2 + 60, args.rss_cap_gb)
            dense_gb = n * m * 8 / 2**30
            if dense_gb > args.dense_cap_gb:
                spopt = {"skipped": f"skipped: dense matrix would need {dense_gb:.1f} GB"}
            else:
                spopt = run_worker("spopt", path, p, args.time_limit, args.time_limit + 10, args.rss_cap_gb)
            rec = {"scenario": scenario, "n_demand": n, "n_candidates": m, "p": p, "nnz": int(case["coverage"].nnz),
                   "base_share": base_share, "ours": ours, "spopt": spopt}
            records.append(rec)
            same = "-"
            speed = "-"
            if ours.get("objective") is not None and spopt.get("objective") is not None:
                diff = ours["objective"] - spopt["objective"]
                same = "yes" if abs(diff) < 0.5 else f"no ({diff:+,.1f})"
                if spopt.get("sol_status") == 1 and ours.get("status") == "optimal":
                    speed = f"{spopt['wall_s'] / ours['wall_s']:.0f}×"
            if spopt.get("objective") is None and "skipped" not in spopt:
                s_status = spopt.get("killed") or spopt.get("error") or spopt.get("status")
                if spopt.get("killed"):
                    built = any("model built" in line for line in spopt.get("stages", []))
                    s_status += " (in the CBC solve)" if built else " (while building the PuLP model)"
            else:
                s_status = spopt.get("skipped") or (
                    f"{spopt.get('status')} (sol_status {spopt.get('sol_status')})" if spopt.get("status") else "-")
            gap = ours.get("gap")
            o_status = f"{ours.get('status')} ({ours.get('method')}), gap {100 * gap:.2f} %" if gap is not None else (
                ours.get("error") or "-")
            print(f"| {scenario}{' (base %.0f %%)' % (100 * base_share) if n_existing else ''} | {n:,} × {m:,} | {p} "
                  f"| {rec['nnz']:,} | {ours.get('n_groups', '-')} / {ours.get('n_candidates_kept', '-')} "
                  f"| {fmt(ours, 'objective', ',.1f')} | {o_status} | {fmt(ours, 'wall_s')} "
                  f"| {fmt(ours, 'peak_rss_gb', '.2f')} | {fmt(spopt, 'objective', ',.1f')} | {s_status} "
                  f"| {fmt(spopt, 'wall_s')} | {fmt(spopt, 'peak_rss_gb', '.2f')} | {same} | {speed} |", flush=True)
    sweep = run_large_sweep(cells, args) if (args.large_p or args.large_targets) else []
    print()
    for note in notes:
        print("#", note)
    for rec in records:
        print(f"## {rec['scenario']} {rec['n_demand']}x{rec['n_candidates']} p={rec['p']}")
        print("ours :", json.dumps(rec["ours"], default=str))
        print("spopt:", json.dumps(rec["spopt"], default=str))
    print(f"\n# total benchmark time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "records": records, "sweep": sweep}, indent=1,
                                              default=str))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        kind, path, limit = sys.argv[2], sys.argv[3], float(sys.argv[5])
        if kind == "ours_minsites":
            worker_ours_minsites(path, float(sys.argv[4]), limit)
        else:
            (worker_ours if kind == "ours" else worker_spopt)(path, int(float(sys.argv[4])), limit)
    else:
        main()
