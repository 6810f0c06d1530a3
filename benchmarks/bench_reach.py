"""Issue #5: benchmark the reach engine (snap + nearest facility) against networkx and pandana.

Run from the repository root with the benchmark environment (psutil, pandana)::

    .venv-bench/bin/python benchmarks/bench_reach.py            # full run, ~15 min
    .venv-bench/bin/python benchmarks/bench_reach.py --quick    # shanghai + 10k grid, ~2 min

Networks: the Shanghai centre extract (``../shared/data/osm/shanghai_center/
shanghai_center.osm.pbf``, the largest real one) and jittered grids of 10k,
100k and 1M nodes (~100 m spacing, node positions jittered ±25 m, built with
``network_arrays_from_edges``). Facilities: 50, 500 and 5,000. Walking limit
900 s at 0.8 m/s (720 m).

Part A, stages (ours only), one demand point per 100 m cell over the
network's extent, facilities uniformly at random: time and peak memory of
parse (OSM only) / generate (grids), build arrays, snap index, snap demand,
snap facilities, reach (``nearest_facility``) and polygons
(``isochrone_polygon``), plus the snapping of the previous release (STRtree
``query_nearest`` per point, loaded from git, ``--before``) with a check that
the answers did not change.

Part B, comparison, homes placed exactly on every node and facilities on
sampled nodes, so node-level times are comparable: ours vs the osmnx
isochrone tutorial as written (osmnx-examples notebook 13: one
``nx.ego_graph(G, centre, radius=trip_time, distance="time")`` per facility
and per trip time, 5 / 10 / 15 min, the subgraph's nodes taken as reached;
it answers "which nodes lie within each time of some facility", not which
facility or how long), vs the same approach tuned (one
``nx.single_source_dijkstra_path_length`` with ``cutoff`` = the longest
limit per facility, union of the reached nodes: the issue's "networkx
single-source search per facility"), vs one networkx
``multi_source_dijkstra``, vs pandana ``nearest_pois``; the networkx methods
find the nearest node per home through a KD-tree like
``ox.distance.nearest_nodes``. Answers are checked against ours (for the
ego_graph method: the reached sets at each trip time).

Every network x method runs in its own subprocess. Peak memory: the kernel's
peak-RSS mark (VmHWM, reset before each stage through /proc/self/clear_refs)
minus RSS at the stage start, the absolute peak, and the worker's ru_maxrss;
``--tracemalloc`` adds tracemalloc peaks (Python-visible allocations, NumPy
included; it slows networkx down a lot).

Results go to ``benchmarks/RESULTS_reach.md`` (``--out``; ``--no-write`` to
only print).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PBF = REPO.parent / "shared" / "data" / "osm" / "shanghai_center" / "shanghai_center.osm.pbf"
SPEED = 0.8  # m/s
LIMIT = 900.0  # s (720 m at 0.8 m/s)
SPACING = 100.0  # grid spacing and demand cell size, metres
JITTER = 25.0  # grid node jitter, ± metres
MAX_ACCESS = 500.0  # metres (the library default)
TIME_TOL = 1e-5  # s; ours carries a 1e-6 s minimum link cost from a facility's position
PANDANA_TOL = 2e-2  # s; pandana computes and returns single precision (float32)
BEFORE_REF = "3150f04"  # the commit whose reach.py snapped with STRtree.query_nearest
PER_FACILITY_BUDGET_S = 180.0  # per-facility networkx methods: beyond this, extrapolate from the first 50
TRIP_TIMES_S = (300.0, 600.0, 900.0)  # the tutorial's trip times, 5 / 10 / 15 min, as walking seconds
assert max(TRIP_TIMES_S) == LIMIT
FULL_NETWORKS = ["shanghai", "grid-10000", "grid-100000", "grid-1000000"]
QUICK_NETWORKS = ["shanghai", "grid-10000"]
FULL_FACILITIES = [50, 500, 5000]
QUICK_FACILITIES = [50, 500]
METHODS = ["ours", "nx_ego_graph", "nx_per_facility", "nx_multi_source", "pandana"]
PER_FACILITY_METHODS = ("nx_ego_graph", "nx_per_facility")
METHOD_LABEL = {
    "ours": "ours (snap + nearest_facility)",
    "nx_ego_graph": "osmnx tutorial as written (nx.ego_graph per facility and per threshold)",
    "nx_per_facility": "networkx per facility, one search to the longest limit (tutorial, tuned)",
    "nx_multi_source": "networkx multi_source_dijkstra",
    "pandana": "pandana nearest_pois",
}


# --------------------------------------------------------------------------- memory and timing


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class Recorder:
    """Times stages and records their peak memory (VmHWM reset per stage; tracemalloc optional)."""

    def __init__(self, use_tracemalloc: bool = False):
        self.stages: dict[str, dict] = {}
        self.use_tracemalloc = use_tracemalloc
        if use_tracemalloc:
            tracemalloc.start()

    @contextlib.contextmanager
    def stage(self, name: str):
        gc.collect()
        rss0 = _status_mb("VmRSS")
        resettable = _reset_peak()
        if self.use_tracemalloc:
            tracemalloc.reset_peak()
            traced0 = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        yield
        seconds = time.perf_counter() - t0
        peak = _status_mb("VmHWM") if resettable else float("nan")
        entry = {"s": seconds, "rss_start_mb": rss0, "peak_mb": peak, "delta_mb": peak - rss0}
        if self.use_tracemalloc:
            entry["traced_peak_mb"] = (tracemalloc.get_traced_memory()[1] - traced0) / 2**20
        self.stages[name] = entry


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- inputs


def grid_edges(n_nodes: int, seed: int = 0):
    """A jittered square grid: node x, y (metres), edge u, v and edge lengths (as GEOS computes them)."""
    side = round(float(np.sqrt(n_nodes)))
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    x = i.ravel() * SPACING + rng.uniform(-JITTER, JITTER, side * side)
    y = j.ravel() * SPACING + rng.uniform(-JITTER, JITTER, side * side)
    index = np.arange(side * side).reshape(side, side)
    u = np.concatenate([index[:-1, :].ravel(), index[:, :-1].ravel()])
    v = np.concatenate([index[1:, :].ravel(), index[:, 1:].ravel()])
    dx, dy = x[v] - x[u], y[v] - y[u]
    return x, y, u, v, np.sqrt(dx * dx + dy * dy)


def demand_cells(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One point per 100 m cell (its centre) over the extent of the nodes."""
    cx = np.arange(np.floor(x.min() / SPACING) * SPACING + SPACING / 2, x.max(), SPACING)
    cy = np.arange(np.floor(y.min() / SPACING) * SPACING + SPACING / 2, y.max(), SPACING)
    gx, gy = np.meshgrid(cx, cy, indexing="ij")
    return np.column_stack([gx.ravel(), gy.ravel()])


def random_facilities(x, y, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(x.min(), x.max(), count), rng.uniform(y.min(), y.max(), count)])


def facility_nodes(n_nodes: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.choice(n_nodes, count, replace=count > n_nodes)


def load_shanghai_graph(cache_dir: str | None):
    from coverage.network import load_walk_network

    return load_walk_network(PBF, cache_dir=cache_dir, use_cache=cache_dir is not None)


def load_before_module(ref: str):
    """coverage/reach.py as of ``ref`` (read with ``git show``), as a module; None when unavailable."""
    try:
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{ref}:coverage/reach.py"],
            check=True, capture_output=True, text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("reach_before")
    module.__file__ = f"git:{ref}:coverage/reach.py"
    sys.modules["reach_before"] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own file at another commit
    return module


def _drop_caches(net) -> None:
    """Forget what reach caches on the arrays (snapping index, link tables), so a timing includes building it."""
    net.__dict__.pop("_segment_index", None)
    net.__dict__.pop("_link_cache", None)


# --------------------------------------------------------------------------- worker: stages (ours)


def worker_stages(args: dict) -> dict:
    import shapely

    from coverage import reach, snapping

    rec = Recorder(args.get("tracemalloc", False))
    spec = args["network"]
    out: dict = {"network": spec}
    if spec == "shanghai":
        import osmium
        import osmnx as ox

        from coverage import network as netmod

        # OSM element counts (untimed), for the parse rate
        counts = {"nodes": 0, "ways": 0, "relations": 0}
        for obj in osmium.FileProcessor(str(PBF)):
            counts["nodes" if obj.is_node() else "ways" if obj.is_way() else "relations"] += 1
        out["osm"] = {"file_mb": PBF.stat().st_size / 1e6, **counts}
        with rec.stage("parse"):
            graph = netmod.load_walk_network(PBF, use_cache=False)
        # the same steps one by one, for where the parse time goes (private helpers of
        # coverage.network; a step is left out when the module no longer has it)
        with rec.stage("parse: pyosmium read + filter"):
            node_lonlat, ways = netmod._read_raw_osm(PBF)
        out["osm"]["kept_ways"] = len(ways)
        if hasattr(netmod, "_segments_graph"):
            with rec.stage("parse: graph cut at shared nodes (default)"):
                raw = netmod._segments_graph(node_lonlat, ways)
            with rec.stage("parse: project to UTM"):
                netmod._project(raw, None)
        # the osmnx route (simplify="osmnx" where the loader offers it; the only route before)
        with rec.stage("parse: osmnx route: networkx graph"):
            raw = netmod._graph_from_ways(node_lonlat, ways)
        with rec.stage("parse: osmnx route: edge lengths"):
            raw = ox.distance.add_edge_lengths(raw)
        with rec.stage("parse: osmnx route: simplify_graph"):
            raw = ox.simplify_graph(raw, edge_attrs_differ=["ferry"])
        out["osm"]["osmnx_route_nodes"] = raw.number_of_nodes()
        del raw, node_lonlat, ways
        with rec.stage("build arrays"):
            net = reach.network_arrays(graph)
        del graph
    else:
        n = int(spec.split("-")[1])
        with rec.stage("generate grid"):
            x, y, u, v, _ = grid_edges(n)
        with rec.stage("build arrays"):
            net = reach.network_arrays_from_edges(x, y, u, v)
        del x, y, u, v
    out["nodes"], out["edges"] = net.n_nodes, net.n_edges
    demand_xy = demand_cells(net.node_x, net.node_y)
    out["demand"] = len(demand_xy)

    _drop_caches(net)
    with rec.stage("snap index"):
        snapping._segment_index(net)
    with rec.stage("snap demand"):
        demand = reach.snap_points(net, demand_xy)
    out["demand_on_network"] = int(demand.on_network.sum())

    before = load_before_module(args["before"]) if args.get("before") else None
    demand_before = None
    if before is not None:
        with rec.stage("snap demand (before)"):
            demand_before = before.snap_points(net, demand_xy)
        same_edge = demand_before.edge == demand.edge
        differ = np.flatnonzero(~same_edge)
        # where the chosen edges differ, both must be exactly as near (a tie)
        pts = shapely.points(demand_xy[differ])
        d_old = shapely.distance(net.edge_geometry[np.maximum(demand_before.edge[differ], 0)], pts)
        d_new = shapely.distance(net.edge_geometry[np.maximum(demand.edge[differ], 0)], pts)
        out["snap_check"] = {
            "edge_differs": len(differ),
            "edge_differs_only_at_exact_ties": bool(np.array_equal(d_old, d_new)),
            "access_identical": bool(np.array_equal(demand_before.access_m, demand.access_m)),
            "fraction_identical_where_same_edge": bool(
                np.array_equal(demand_before.fraction[same_edge], demand.fraction[same_edge])
            ),
        }

    out["per_f"] = {}
    poly_rate = None  # seconds per reached segment, from the runs so far
    for count in args["facilities"]:
        f_out: dict = {}
        fac_xy = random_facilities(net.node_x, net.node_y, count, seed=count)
        with rec.stage(f"snap facilities F={count}"):
            facilities = reach.snap_points(net, fac_xy)
        net.__dict__.pop("_link_cache", None)  # built again inside this stage (first call for a speed)
        with rec.stage(f"reach F={count}"):
            result = reach.nearest_facility(net, facilities, demand, walk_speed_mps=SPEED, limit=LIMIT)
        with rec.stage(f"reach F={count} (repeat call)"):
            reach.nearest_facility(net, facilities, demand, walk_speed_mps=SPEED, limit=LIMIT)
        cost = result["cost"].to_numpy()
        f_out["reached_share"] = float(np.isfinite(cost).mean())
        if before is not None:
            with rec.stage(f"snap facilities F={count} (before)"):
                fac_before = before.snap_points(net, fac_xy)
            with rec.stage(f"reach F={count} (before)"):
                old = before.nearest_facility(net, fac_before, demand_before, walk_speed_mps=SPEED, limit=LIMIT)
            old_cost = old["cost"].to_numpy()
            both = np.isfinite(old_cost) & np.isfinite(cost)
            f_out["answer_check"] = {
                "cost_identical": bool(np.array_equal(old_cost, cost)),
                "cost_differs": int((old_cost != cost).sum()),
                "reached_differs": int((np.isfinite(old_cost) != np.isfinite(cost)).sum()),
                "max_abs_cost_diff_s": float(np.max(np.abs(old_cost[both] - cost[both]), initial=0.0)),
                "facility_differs": int((old["facility_index"].to_numpy() != result["facility_index"].to_numpy()).sum()),
            }
        if args.get("polygons", True):
            segments = reach.reached_segments(net, facilities, walk_speed_mps=SPEED, limit=LIMIT)
            f_out["reached_segments"] = len(segments)
            estimate = None if poly_rate is None else poly_rate * len(segments)
            if estimate is not None and estimate > args["polygon_budget_s"]:
                f_out["polygons_extrapolated_s"] = estimate
            else:
                with rec.stage(f"polygons F={count}"):
                    polygon = reach.isochrone_polygon(net, facilities, walk_speed_mps=SPEED, limit=LIMIT)
                poly_rate = rec.stages[f"polygons F={count}"]["s"] / max(len(segments), 1)
                f_out["polygon_km2"] = polygon.area / 1e6
            del segments
        out["per_f"][str(count)] = f_out
    out["stages"] = rec.stages
    out["maxrss_mb"] = _maxrss_mb()
    return out


# --------------------------------------------------------------------------- worker: comparison


def _network_for_compare(spec: str, cache_dir: str | None, with_arrays: bool):
    """(node x, node y, edge u, v, seconds, graph or None, arrays or None) for a comparison worker."""
    from coverage import reach

    if spec == "shanghai":
        graph = load_shanghai_graph(cache_dir)
        net = reach.network_arrays(graph)
        walk = ~net.edge_ferry
        seconds = net.edge_length_m[walk] / SPEED
        return net.node_x, net.node_y, net.edge_u[walk], net.edge_v[walk], seconds, graph, net
    n = int(spec.split("-")[1])
    x, y, u, v, length = grid_edges(n)
    net = reach.network_arrays_from_edges(x, y, u, v) if with_arrays else None
    if net is not None:
        assert np.array_equal(net.edge_length_m, length)
    return x, y, u, v, length / SPEED, None, net


def _nx_graph(x, y, u, v, seconds, graph):
    """The networkx graph the tutorial approach walks on: the osmnx graph itself, or a Graph for grids."""
    import networkx as nx

    if graph is not None:
        for _, _, data in graph.edges(data=True):
            data["time"] = data["length"] / SPEED
        return graph, list(graph.nodes)
    g = nx.Graph()
    g.add_nodes_from(range(len(x)))
    g.add_weighted_edges_from(zip(u.tolist(), v.tolist(), seconds.tolist()), weight="time")
    return g, list(range(len(x)))


def worker_compare(args: dict) -> dict:
    rec = Recorder(args.get("tracemalloc", False))
    spec, method = args["network"], args["method"]
    out: dict = {"network": spec, "method": method, "per_f": {}}
    results_dir = Path(args["results_dir"])
    x, y, u, v, seconds, graph, net = _network_for_compare(spec, args.get("cache_dir"), method == "ours")
    n_nodes = len(x)
    out["nodes"] = n_nodes
    homes_xy = np.column_stack([x, y])  # one home exactly on every node

    if method == "ours":
        from coverage import reach

        for count in args["facilities"]:
            fac_nodes = facility_nodes(n_nodes, count, seed=1000 + count)
            _drop_caches(net)  # every run pays for the snapping index and the link table
            with rec.stage(f"reach F={count}"):
                homes = reach.snap_points(net, homes_xy)
                facilities = reach.snap_points(net, homes_xy[fac_nodes])
                t0 = time.perf_counter()
                result = reach.nearest_facility(net, facilities, homes, walk_speed_mps=SPEED, limit=LIMIT)
                search_s = time.perf_counter() - t0
            cost = result["cost"].to_numpy()
            index = result["facility_index"].to_numpy()
            out["per_f"][str(count)] = {"search_s": search_s}
            np.savez(results_dir / f"{spec}-{method}-{count}.npz", cost=cost,
                     facility_node=np.where(index >= 0, fac_nodes[np.maximum(index, 0)], -1))
    elif method in ("nx_ego_graph", "nx_per_facility", "nx_multi_source"):
        import networkx as nx
        from scipy.spatial import cKDTree

        with rec.stage("build graph"):
            g, node_list = _nx_graph(x, y, u, v, seconds, graph)
        position = {node: i for i, node in enumerate(node_list)}
        for count in args["facilities"]:
            fac_nodes = facility_nodes(n_nodes, count, seed=1000 + count)
            f_out: dict = {}
            with rec.stage(f"reach F={count}"):
                # nearest node per home, as ox.distance.nearest_nodes does for a projected graph
                t0 = time.perf_counter()
                _, home_node = cKDTree(np.column_stack([x, y])).query(homes_xy)
                f_out["nearest_node_s"] = time.perf_counter() - t0
                if method == "nx_ego_graph":
                    # reached[t] = the union over facilities of the nodes within t of that facility
                    reached = {t: np.zeros(n_nodes, dtype=bool) for t in TRIP_TIMES_S}
                else:
                    best_time = np.full(n_nodes, np.inf)
                    best_fac = np.full(n_nodes, -1, dtype=np.int64)
                t0 = time.perf_counter()
                if method in PER_FACILITY_METHODS:
                    done = 0
                    for k, node_pos in enumerate(fac_nodes):
                        if method == "nx_ego_graph":
                            # osmnx-examples notebook 13 ("isolines"), per centre node:
                            #   for trip_time in sorted(trip_times, reverse=True):
                            #       subgraph = nx.ego_graph(G, center_node, radius=trip_time, distance="time")
                            #       for node in subgraph.nodes(): ...
                            for trip_time in sorted(TRIP_TIMES_S, reverse=True):
                                subgraph = nx.ego_graph(g, node_list[node_pos], radius=trip_time, distance="time")
                                mask = reached[trip_time]
                                for node in subgraph.nodes():
                                    mask[position[node]] = True
                            del subgraph
                        else:
                            lengths = nx.single_source_dijkstra_path_length(
                                g, node_list[node_pos], cutoff=LIMIT, weight="time"
                            )
                            for node, t in lengths.items():  # union: the nearest facility per node
                                p = position[node]
                                if t < best_time[p]:
                                    best_time[p] = t
                                    best_fac[p] = node_pos
                        done = k + 1
                        # after the first 50 facilities: stop and extrapolate if the whole run would
                        # take longer than the budget
                        if done == min(50, count) and done < count:
                            elapsed = time.perf_counter() - t0
                            if elapsed / done * count > args["per_facility_budget_s"]:
                                break
                    search = time.perf_counter() - t0
                    if done < count:
                        f_out["extrapolated_from"] = done
                        search = search / done * count
                else:
                    sources = {node_list[p] for p in fac_nodes}
                    dist, paths = nx.multi_source_dijkstra(g, sources, cutoff=LIMIT, weight="time")
                    for node, t in dist.items():
                        p = position[node]
                        best_time[p] = t
                        best_fac[p] = position[paths[node][0]]
                    del dist, paths
                    search = time.perf_counter() - t0
                if method == "nx_ego_graph":
                    home_reached = {f"reached_{t:.0f}": reached[t][home_node] for t in TRIP_TIMES_S}
                else:
                    cost = best_time[home_node]
                    fac_of_home = best_fac[home_node]
            f_out["search_s"] = search
            if "extrapolated_from" in f_out:
                f_out["reach_s_extrapolated"] = f_out["nearest_node_s"] + search
            elif method == "nx_ego_graph":
                np.savez(results_dir / f"{spec}-{method}-{count}.npz", **home_reached)
            else:
                np.savez(results_dir / f"{spec}-{method}-{count}.npz", cost=cost, facility_node=fac_of_home)
            out["per_f"][str(count)] = f_out
    elif method == "pandana":
        import pandana
        import pandas as pd

        with rec.stage("build graph"):
            network = pandana.Network(
                pd.Series(x), pd.Series(y), pd.Series(u), pd.Series(v), pd.DataFrame({"time": seconds}),
                twoway=True,
            )
        for count in args["facilities"]:
            fac_nodes = facility_nodes(n_nodes, count, seed=1000 + count)
            with rec.stage(f"reach F={count}"):
                network.set_pois("facility", LIMIT, 1, pd.Series(x[fac_nodes]), pd.Series(y[fac_nodes]))
                t0 = time.perf_counter()
                found = network.nearest_pois(LIMIT, "facility", num_pois=1, include_poi_ids=True)
                search = time.perf_counter() - t0
                home_node = network.get_node_ids(pd.Series(homes_xy[:, 0]), pd.Series(homes_xy[:, 1])).to_numpy()
                node_time = found[1].reindex(range(n_nodes)).to_numpy(dtype=float)
                node_poi = found["poi1"].reindex(range(n_nodes)).to_numpy(dtype=float)
                # pandana reports the search radius itself where no facility was found
                reached = node_time < LIMIT
                cost = np.where(reached, node_time, np.inf)[home_node]
                poi = np.where(reached & np.isfinite(node_poi), node_poi, -1).astype(np.int64)[home_node]
            out["per_f"][str(count)] = {"search_s": search}
            np.savez(results_dir / f"{spec}-{method}-{count}.npz", cost=cost,
                     facility_node=np.where(poi >= 0, fac_nodes[np.maximum(poi, 0)], -1))
    else:
        raise ValueError(method)
    out["stages"] = rec.stages
    out["maxrss_mb"] = _maxrss_mb()
    return out


def worker_pandana_build(args: dict) -> dict:
    """Only pandana's contraction-hierarchy build on a grid (to see how it grows)."""
    import pandana
    import pandas as pd

    x, y, u, v, length = grid_edges(int(args["network"].split("-")[1]))
    rec = Recorder()
    with rec.stage("build graph"):
        pandana.Network(pd.Series(x), pd.Series(y), pd.Series(u), pd.Series(v),
                        pd.DataFrame({"time": length / SPEED}), twoway=True)
    return {"network": args["network"], "nodes": len(x), "stages": rec.stages, "maxrss_mb": _maxrss_mb()}


# --------------------------------------------------------------------------- parent


def run_worker(kind: str, args: dict, tmp: Path, timeout: float | None = None) -> dict:
    result_file = tmp / f"result-{kind}-{args.get('network')}-{args.get('method', '')}.json"
    payload = dict(args, kind=kind, result_file=str(result_file))
    label = f"{kind} {args.get('network')} {args.get('method', '')}".strip()
    print(f"[bench_reach] {label} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", str(Path(__file__).resolve()), "--worker", json.dumps(payload)],
            cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not result_file.exists():
        tail = (proc.stderr or "").strip().splitlines()[-5:]
        print(f"[bench_reach]   failed: {' | '.join(tail)}", file=sys.stderr, flush=True)
        return {"error": " | ".join(tail) or f"exit {proc.returncode}"}
    result = json.loads(result_file.read_text())
    result["wall_s"] = wall
    print(f"[bench_reach]   done in {wall:.1f} s", file=sys.stderr, flush=True)
    return result


def machine_info() -> dict:
    import psutil

    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib import metadata

    versions = {}
    for name in ("numpy", "scipy", "shapely", "networkx", "osmnx", "osmium", "pandas", "pandana", "psutil"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not available (not installed)"
    if not versions["pandana"].startswith("not available"):
        try:
            import pandana  # noqa: F401 - installed is not enough: it must import
        except Exception as exc:  # noqa: BLE001 - reported in the results, not fatal
            versions["pandana"] = f"not available (import failed: {type(exc).__name__}: {exc})"
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return {
        "date": subprocess.run(["date"], capture_output=True, text=True, check=False).stdout.strip(),
        "arch": platform.machine(),
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gb": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "load_start": os.getloadavg(),
    }


def compare_answers(tmp: Path, spec: str, count: int, method: str) -> dict | None:
    ours_file, other_file = tmp / f"{spec}-ours-{count}.npz", tmp / f"{spec}-{method}-{count}.npz"
    if method == "ours" or not ours_file.exists() or not other_file.exists():
        return None
    ours, other = np.load(ours_file), np.load(other_file)
    if method == "nx_ego_graph":
        # only reached sets per trip time: ours reaches a home within t when its cost is <= t
        cost = ours["cost"]
        per_t = {}
        for t in TRIP_TIMES_S:
            mine = np.isfinite(cost) & (cost <= t)
            mismatch = mine != other[f"reached_{t:.0f}"]
            per_t[f"{t:.0f}"] = {
                "mismatch": int(mismatch.sum()),
                # a home whose time lies within TIME_TOL of t (ours adds up to 1e-6 s at the facility)
                "at_threshold": int((mismatch & (np.abs(cost - t) <= TIME_TOL)).sum()),
                "reached": int(mine.sum()),
            }
        return {"reached_sets": per_t, "homes": len(cost)}
    a, b = ours["cost"], other["cost"]
    both = np.isfinite(a) & np.isfinite(b)
    gap = np.zeros(len(a))
    gap[both] = np.abs(a[both] - b[both])
    diff = gap[both]
    tol = PANDANA_TOL if method == "pandana" else TIME_TOL
    fac_differs = both & (ours["facility_node"] != other["facility_node"])
    # a different facility at (within tolerance) the same time is a tie, not an error
    fac_real = fac_differs & (gap > tol)
    return {
        "reached_mismatch": int((np.isfinite(a) != np.isfinite(b)).sum()),
        "max_abs_diff_s": float(diff.max(initial=0.0)),
        "within_tol": bool((diff <= tol).all()),
        "tol": tol,
        "facility_differs": int(fac_differs.sum()),
        "facility_differs_not_tie": int(fac_real.sum()),
        "homes": len(a),
    }


def fmt_s(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}" if value < 100 else f"{value:.0f}"


def fmt_mb(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return f"{value:,.0f}"


def network_label(spec: str) -> str:
    if spec == "shanghai":
        return "shanghai_center.osm.pbf"
    n = int(spec.split("-")[1])
    return f"grid {n // 1000}k" if n < 1_000_000 else f"grid {n // 1_000_000}M"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shanghai + 10k grid, 50 and 500 facilities")
    parser.add_argument("--networks", nargs="*", help=f"subset of {FULL_NETWORKS}")
    parser.add_argument("--facilities", nargs="*", type=int)
    parser.add_argument("--methods", nargs="*", default=METHODS, choices=METHODS)
    parser.add_argument("--before", default=BEFORE_REF,
                        help="git ref of the reach.py to compare against ('' to skip)")
    parser.add_argument("--no-polygons", action="store_true")
    parser.add_argument("--polygon-budget", type=float, default=150.0,
                        help="skip (and extrapolate) a polygon run estimated to take longer (s)")
    parser.add_argument("--per-facility-budget", type=float, default=PER_FACILITY_BUDGET_S)
    parser.add_argument("--pandana-max-nodes", type=int, default=10_000,
                        help="largest grid pandana builds (its CH build grows faster than linearly)")
    parser.add_argument("--nx-max-nodes", type=int, default=1_000_000)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "RESULTS_reach.md"))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)

    if opts.worker:
        args = json.loads(opts.worker)
        kind = args["kind"]
        worker = {"stages": worker_stages, "compare": worker_compare, "pandana_build": worker_pandana_build}[kind]
        result = worker(args)
        Path(args["result_file"]).write_text(json.dumps(result))
        return 0

    networks = opts.networks or (QUICK_NETWORKS if opts.quick else FULL_NETWORKS)
    facilities = opts.facilities or (QUICK_FACILITIES if opts.quick else FULL_FACILITIES)
    info = machine_info()
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench_reach-"))
    cache_dir = str(tmp / "network-cache")
    pandana_ok = not info["versions"]["pandana"].startswith("not available")

    stage_results, compare_results, pandana_builds = {}, {}, {}
    for spec in networks:
        stage_results[spec] = run_worker("stages", {
            "network": spec, "facilities": facilities, "before": opts.before,
            "polygons": not opts.no_polygons, "polygon_budget_s": opts.polygon_budget,
            "tracemalloc": opts.tracemalloc,
        }, tmp)
        n_nodes = stage_results[spec].get("nodes", 0)
        for method in opts.methods:
            skip = None
            if method.startswith("nx_") and n_nodes > opts.nx_max_nodes:
                skip = f"networkx graph not built above {opts.nx_max_nodes:,} nodes (--nx-max-nodes)"
            if method == "pandana":
                if not pandana_ok:
                    skip = f"pandana {info['versions']['pandana']}"
                elif spec != "shanghai" and n_nodes > opts.pandana_max_nodes:
                    skip = "CH build too slow on this grid (see the pandana build scaling)"
            if skip:
                compare_results[(spec, method)] = {"skipped": skip}
                continue
            compare_results[(spec, method)] = run_worker("compare", {
                "network": spec, "method": method, "facilities": facilities, "results_dir": str(tmp),
                "cache_dir": cache_dir, "per_facility_budget_s": opts.per_facility_budget,
                "tracemalloc": opts.tracemalloc,
            }, tmp)
    if pandana_ok and "pandana" in opts.methods and not opts.quick:
        # how the CH build grows with grid size (to extrapolate where it was skipped)
        if "stages" in compare_results.get(("grid-10000", "pandana"), {}):
            pandana_builds["grid-10000"] = compare_results[("grid-10000", "pandana")]
        for spec in ("grid-20000", "grid-40000"):
            pandana_builds[spec] = run_worker("pandana_build", {"network": spec}, tmp, timeout=600)
    info["load_end"] = os.getloadavg()
    info["total_s"] = time.perf_counter() - started

    report = render(info, networks, facilities, opts, stage_results, compare_results, pandana_builds, tmp)
    print(report)
    if not opts.no_write:
        Path(opts.out).write_text(report)
        print(f"[bench_reach] wrote {opts.out}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- report


def _stage(result: dict, name: str, key: str = "s"):
    entry = result.get("stages", {}).get(name)
    return None if entry is None else entry.get(key)


def _pandana_fit(builds: dict):
    """Exponent and constant of build_s = c * nodes^k (least squares in log-log) over the grid builds, or None."""
    points = [(b["nodes"], _stage(b, "build graph")) for b in builds.values() if b and "stages" in b]
    points = [(n, s) for n, s in points if s]
    if len(points) < 2:
        return None
    logn, logs = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    k, logc = np.polyfit(logn, logs, 1)
    return float(k), float(np.exp(logc))


def render(info, networks, facilities, opts, stages, compares, pandana_builds, tmp) -> str:
    lines: list[str] = []
    add = lines.append
    v = info["versions"]
    add("# Reach benchmark (`benchmarks/bench_reach.py`, issue #5)")
    add("")
    add(f"Run: `{' '.join(['.venv-bench/bin/python', 'benchmarks/bench_reach.py'] + (['--quick'] if opts.quick else []))}`"
        f" at commit {info['commit']} (+ working tree), {info['date']}; total {info['total_s'] / 60:.1f} min.")
    add("")
    add(f"Machine: {info['arch']}, {info['nproc']} CPUs ({info['cpu']}), {info['ram_gb']:.1f} GB RAM; "
        f"Python {info['python']}; numpy {v['numpy']}, scipy {v['scipy']}, shapely {v['shapely']}, "
        f"networkx {v['networkx']}, osmnx {v['osmnx']}, osmium {v['osmium']}, pandana {v['pandana']}.")
    add(f"Load average at start {', '.join(f'{x:.1f}' for x in info['load_start'])}; at end "
        f"{', '.join(f'{x:.1f}' for x in info['load_end'])} (the machine is shared: times are wall clock "
        "under that load).")
    add("")
    add(f"Walking limit {LIMIT:.0f} s at {SPEED} m/s ({LIMIT * SPEED:.0f} m); grids: ~{SPACING:.0f} m spacing, nodes "
        f"jittered ±{JITTER:.0f} m; demand: one point per {SPACING:.0f} m cell over the network's extent; "
        "memory: peak RSS during the stage (kernel VmHWM, reset per stage) — \"+MB\" is the rise over "
        "the RSS at the stage start, \"peak\" the process total.")
    add("")

    # ---- parse
    sh = stages.get("shanghai")
    if sh and "osm" in sh:
        osm = sh["osm"]
        parse_s = _stage(sh, "parse")
        add("## Parsing the Shanghai PBF (pyosmium → walking graph)")
        add("")
        add(f"{PBF.name}: {osm['file_mb']:.2f} MB, {osm['nodes']:,} OSM nodes, {osm['ways']:,} ways "
            f"({osm['kept_ways']:,} walkable kept) → walking graph {sh['nodes']:,} nodes / {sh['edges']:,} "
            f"undirected edges (the osmnx-simplified graph has {osm.get('osmnx_route_nodes', 0):,} nodes). The "
            "steps below repeat the parse one by one; the osmnx route is the alternative "
            "(`simplify=\"osmnx\"`), shown for comparison.")
        add("")
        add("| step | s | +MB |")
        add("|---|---:|---:|")
        for name in [n for n in sh["stages"] if n == "parse" or n.startswith("parse: ")]:
            label = "**load_walk_network (total, default, no cache)**" if name == "parse" else name.replace("parse: ", "")
            add(f"| {label} | {fmt_s(_stage(sh, name))} | {fmt_mb(_stage(sh, name, 'delta_mb'))} |")
        add("")
        mb_rate = osm["file_mb"] / parse_s
        node_rate = osm["nodes"] / parse_s
        add(f"Rate: {mb_rate:.3f} MB/s, {node_rate:,.0f} OSM nodes/s. **Extrapolated** to a 50 MB .osm.pbf: "
            f"{50 / mb_rate:,.0f} s by file size; by node count (a PBF holds roughly 8 bytes per node, so "
            f"~6M nodes in 50 MB) {6e6 / node_rate:,.0f} s. This extract is roads only, so every MB here is "
            "walkable street; a full city extract is mostly buildings and land use, which the pyosmium filter "
            "drops fast, so the real figure lies below these; the graph-building steps grow with the walkable "
            "network, not the file.")
        add("")

    # ---- stages
    add("## Stages as the network grows (ours; demand on 100 m cells, random facilities)")
    add("")
    add("| network | nodes | edges | demand pts | generate / parse s | build arrays s (+MB) | snap index s (+MB) "
        "| snap demand s (+MB) | snap demand, before s (+MB) |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for spec in networks:
        r = stages.get(spec, {})
        if "error" in r:
            add(f"| {network_label(spec)} | failed: {r['error']} |||||||| ")
            continue
        gen = _stage(r, "parse") if spec == "shanghai" else _stage(r, "generate grid")

        def cell(name, r=r):
            if _stage(r, name) is None:
                return "–"
            return f"{fmt_s(_stage(r, name))} ({fmt_mb(_stage(r, name, 'delta_mb'))})"

        add(f"| {network_label(spec)} | {r['nodes']:,} | {r['edges']:,} | {r['demand']:,} | {fmt_s(gen)} "
            f"| {cell('build arrays')} | {cell('snap index')} | {cell('snap demand')} | {cell('snap demand (before)')} |")
    add("")
    add("| network | F | snap facilities s | reach s (+MB) | reach, repeat call s | reach, before s "
        "| reach stage total s | reach stage total, before s | reach stage peak RSS MB | reached share "
        "| polygons s (+MB) | answers vs before |")
    add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for spec in networks:
        r = stages.get(spec, {})
        if "error" in r:
            continue
        for count in facilities:
            f = r["per_f"].get(str(count), {})
            snap_f = _stage(r, f"snap facilities F={count}")
            reach_s = _stage(r, f"reach F={count}")
            total = sum(s or 0.0 for s in (_stage(r, "snap index"), _stage(r, "snap demand"), snap_f, reach_s))
            peak = max(_stage(r, n, "peak_mb") or 0.0 for n in
                       ("snap index", "snap demand", f"snap facilities F={count}", f"reach F={count}"))
            if f"polygons F={count}" in r["stages"]:
                poly = f"{fmt_s(_stage(r, f'polygons F={count}'))} ({fmt_mb(_stage(r, f'polygons F={count}', 'delta_mb'))})"
            elif "polygons_extrapolated_s" in f:
                poly = f"~{fmt_s(f['polygons_extrapolated_s'])} extrapolated ({f['reached_segments']:,} segments)"
            else:
                poly = "–"
            check = f.get("answer_check")
            if check is None:
                answers = "–"
            elif check["cost_identical"] and check["facility_differs"] == 0:
                answers = "identical"
            else:
                answers = (f"{check['cost_differs']} costs differ (max {check['max_abs_cost_diff_s']:.1e} s), "
                           f"{check['facility_differs']} facilities differ, {check['reached_differs']} reached")
            before_parts = [_stage(r, n) for n in ("snap demand (before)", f"snap facilities F={count} (before)",
                                                    f"reach F={count} (before)")]
            before_total = sum(before_parts) if all(p is not None for p in before_parts) else None
            add(f"| {network_label(spec)} | {count:,} | {fmt_s(snap_f)} | {fmt_s(reach_s)} "
                f"({fmt_mb(_stage(r, f'reach F={count}', 'delta_mb'))}) | {fmt_s(_stage(r, f'reach F={count} (repeat call)'))} "
                f"| {fmt_s(_stage(r, f'reach F={count} (before)'))} | {fmt_s(total)} | {fmt_s(before_total)} "
                f"| {fmt_mb(peak)} | {f.get('reached_share', float('nan')):.1%} | {poly} | {answers} |")
    add("")
    add("\"reach stage total\" = snap index + snap demand + snap facilities + reach (`nearest_facility`, "
        "first call for this speed: it builds the node-to-node link table; \"repeat call\" reuses it), OSM "
        "parsing and array building excluded. \"before\" = reach.py of commit "
        f"{opts.before or '–'} (STRtree.query_nearest snapping, lexsort graph build on every call), same inputs.")
    for spec in networks:
        check = stages.get(spec, {}).get("snap_check")
        if check:
            add(f"- {network_label(spec)} snapping vs before: access distances identical: {check['access_identical']}; "
                f"positions identical where the edge is the same: {check['fraction_identical_where_same_edge']}; "
                f"{check['edge_differs']:,} points took another edge, all of them exact ties "
                f"(equally near): {check['edge_differs_only_at_exact_ties']}.")
    add("")

    # ---- comparison
    add("## Comparison (homes exactly on every node, facilities on sampled nodes)")
    add("")
    add("| network | F | method | graph build s (+MB) | reach s | search s | reach +MB | worker maxrss MB "
        "| ours faster by (reach) | (search) | answers vs ours |")
    add("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for spec in networks:
        for count in facilities:
            ours = compares.get((spec, "ours"), {})
            ours_reach = _stage(ours, f"reach F={count}")
            ours_search = ours.get("per_f", {}).get(str(count), {}).get("search_s")
            for method in opts.methods:
                r = compares.get((spec, method), {})
                if "skipped" in r or "error" in r:
                    if count == facilities[0]:
                        add(f"| {network_label(spec)} | all | {METHOD_LABEL[method]} | skipped: "
                            f"{r.get('skipped') or r.get('error')} |||||||| ")
                    continue
                f = r.get("per_f", {}).get(str(count), {})
                reach_s = _stage(r, f"reach F={count}")
                search_s = f.get("search_s")
                extrapolated = "extrapolated_from" in f
                if extrapolated:
                    reach_s = f["reach_s_extrapolated"]
                build = _stage(r, "build graph")
                build_txt = (f"{fmt_s(build)} ({fmt_mb(_stage(r, 'build graph', 'delta_mb'))})" if build is not None
                             else "arrays, see stages")
                approx = "~" if extrapolated else ""
                ratio = (f"{approx}{reach_s / ours_reach:.1f}×" if method != "ours" and ours_reach and reach_s
                         else "–")
                ratio_search = (f"{approx}{search_s / ours_search:.1f}×" if method != "ours" and ours_search
                                and search_s else "–")
                check = compare_answers(tmp, spec, count, method)
                if method == "ours":
                    answers = "reference"
                elif check is None:
                    answers = "not compared (extrapolated)" if extrapolated else "–"
                    if method == "nx_ego_graph":
                        answers += "; gives reached sets only, no nearest facility or time"
                elif method == "nx_ego_graph":
                    sets = check["reached_sets"]
                    bad = sum(c["mismatch"] - c["at_threshold"] for c in sets.values())
                    answers = (f"{'same' if bad == 0 else 'DIFFERENT'} reached sets at "
                               f"{' / '.join(sets)} s (reached mismatch "
                               f"{' / '.join(str(c['mismatch']) for c in sets.values())}"
                               + (f", of which {'/'.join(str(c['at_threshold']) for c in sets.values())} within "
                                  f"{TIME_TOL:.0e} s of the threshold"
                                  if any(c["at_threshold"] for c in sets.values()) else "")
                               + "); gives reached sets only, no nearest facility or time")
                else:
                    answers = (f"{'same' if check['within_tol'] and check['reached_mismatch'] == 0 else 'DIFFERENT'}"
                               f" (max {check['max_abs_diff_s']:.1e} s, tol {check['tol']:.0e}; "
                               f"reached mismatch {check['reached_mismatch']}; facility differs "
                               f"{check['facility_differs_not_tie']} + {check['facility_differs'] - check['facility_differs_not_tie']} ties)")
                mark = " (extrapolated from " + str(f["extrapolated_from"]) + " facilities)" if extrapolated else ""
                add(f"| {network_label(spec)} | {count:,} | {METHOD_LABEL[method]} | {build_txt} | {fmt_s(reach_s)}{mark} "
                    f"| {fmt_s(search_s)} | {fmt_mb(_stage(r, f'reach F={count}', 'delta_mb'))} "
                    f"| {fmt_mb(r.get('maxrss_mb'))} | {ratio} | {ratio_search} | {answers} |")
    add("")
    add("reach = everything from points to per-home answers on a built graph: ours = snap homes + snap "
        "facilities (building the snapping index each time) + `nearest_facility`; networkx = KD-tree nearest "
        "node per home + the Dijkstra(s) + union; pandana = set_pois + nearest_pois + get_node_ids. "
        "search = the Dijkstra part alone (ours: `nearest_facility`; networkx: the Dijkstra loop and union; "
        "pandana: nearest_pois). Graph build is not in either. Ours attaches homes to the exact point on the "
        "nearest edge; the others to the nearest node, a cheaper and coarser step (here every home sits on a "
        "node, so the answers are comparable).")
    add("")
    trip = " / ".join(f"{t:.0f}" for t in TRIP_TIMES_S)
    add(f"The osmnx isochrone tutorial (osmnx-examples notebook 13) as written calls, for each centre node and "
        f"each trip time, longest first, `nx.ego_graph(G, center_node, radius=trip_time, distance=\"time\")` "
        f"(a cutoff Dijkstra plus a copy of the reached subgraph) and takes the subgraph's nodes: here "
        f"{len(TRIP_TIMES_S)} calls per facility at {trip} s (5 / 10 / 15 min at {SPEED} m/s), the reached "
        "nodes united over facilities per trip time. It answers only which homes lie within each time of some "
        "facility, checked against ours (cost ≤ trip time); it gives neither the nearest facility nor the time. "
        "The tuned per-facility method runs one `single_source_dijkstra_path_length` per facility to the "
        "longest limit and keeps the nearest facility per node (the issue's \"single-source search per "
        f"facility, union of reached nodes\"). Both per-facility methods stop after 50 facilities when the "
        f"run would exceed the per-facility budget ({opts.per_facility_budget:g} s here, "
        "`--per-facility-budget`) and are then extrapolated linearly in facilities (the reach cell says so and "
        "the ratios carry a ~); their answers are then not compared.")
    fit = _pandana_fit(pandana_builds)
    if pandana_builds:
        parts = [f"{b['nodes']:,} nodes {fmt_s(_stage(b, 'build graph'))} s" if "stages" in b
                 else f"{spec}: {b.get('error')}" for spec, b in pandana_builds.items() if b]
        text = "pandana CH build on grids: " + ", ".join(parts)
        if fit:
            k, c = fit
            text += (f"; fitted ∝ nodes^{k:.2f}, **extrapolated**: 100k nodes ≈ {c * 1e5**k:,.0f} s, "
                     f"1M nodes ≈ {c * 1e6**k:,.0f} s")
        add("")
        add(text + ".")
    add("")
    add(targets_section(networks, facilities, stages, compares))
    add("")
    add(notes_section(networks, facilities, stages, compares, fit))
    return "\n".join(lines) + "\n"


def notes_section(networks, facilities, stages, compares, fit) -> str:
    out = ["## Notes", ""]
    largest = next((s for s in reversed(networks) if "stages" in stages.get(s, {})), None)
    if largest:
        r = stages[largest]
        after = (_stage(r, "snap index") or 0.0) + (_stage(r, "snap demand") or 0.0)
        before = _stage(r, "snap demand (before)")
        if before:
            out.append(
                f"- Snapping {r['demand']:,} demand points on {network_label(largest)}: {before:.2f} s before, "
                f"{after:.2f} s now (index build included), {before / after:.1f}× faster. `snap_points` no longer "
                "makes one shapely point per input and calls `STRtree.query_nearest`; it searches a uniform grid "
                "over the edges' straight segments in square rings (first the point's 3 × 3 cells; rings known to "
                "be empty are skipped; a point is done when its best distance is shorter than the distance to the "
                "border of the searched square) and evaluates GEOS's own point-to-segment distance and "
                "`line_locate_point` formulas in numpy, operation for operation, so access distances and "
                "positions are bit-identical to shapely's. The index is built once per network and kept on the "
                "arrays. Only ties change: a point exactly as near to two edges (in practice: nearest to a "
                "junction node shared by them) now takes the lower edge position, where the old code took "
                "whichever edge GEOS's tree visited first; the walking time is then the same route, equal to the "
                "old one within floating-point rounding (≤ ~1e-13 s), and the nearest facility the same.")
    out.append(
        "- `nearest_facility` (and `catchment_matrix`, `reached_segments`, `isochrone_polygon`) build the "
        "node-to-node part of the Dijkstra graph with one `argsort` instead of a three-key `lexsort`, and keep it "
        "on the arrays per edge-cost array (per walking speed / ferry policy), so later calls only add the "
        "facilities' own links (\"repeat call\" column). The CSR matrix is identical to before (data, indices, "
        "indptr).")
    ratios = _per_facility_ratios(networks, facilities, compares)
    if ratios:
        best = max(ratios, key=lambda r: r[3])
        out.append(
            "- Why the 100× target against the per-facility approach is not reached end to end: with a 720 m "
            "limit each per-facility Dijkstra visits only the ~100–150 nodes within 720 m (well under a "
            "millisecond in networkx), so that approach costs about facilities × that, whatever the network "
            "size, plus the per-home lookup. Ours runs one search over the whole network, so its cost follows "
            "nodes and homes, not facilities. The search alone reaches "
            f"{best[3]:.0f}× where facilities are many for the network ({network_label(best[0])}, "
            f"F={best[1]:,}) and falls to a few × or below on the big grids; end to end, ours also snaps every "
            "home exactly onto its edge, which costs more than the others' nearest-node lookup (a KD-tree "
            "query, ~1 s for 1M homes by itself). The per-facility cost grows with longer limits and denser "
            "networks (more nodes per search), ours hardly.")
    ego = _per_facility_ratios(networks, facilities, compares, "nx_ego_graph")
    if ego:
        best_ego = max(ego, key=lambda r: r[2])
        out.append(
            f"- The osmnx tutorial as written (`nx.ego_graph`, {len(TRIP_TIMES_S)} calls per facility, each a "
            "cutoff Dijkstra plus a copy of the reached subgraph) costs more than the tuned per-facility search "
            f"for the same reached sets; at 500+ facilities ours is {_span([r[2] for r in ego], '.1f')} faster "
            f"than it end to end (best {network_label(best_ego[0])}, F={best_ego[1]:,}"
            f"{', extrapolated' if best_ego[4] else ''}) and {_span([r[3] for r in ego], '.0f')} in the search "
            "alone. The ≥ 100× verdict above is judged against the tuned search, as the issue words it.")
    pandana_vs_ours = []
    for spec in networks:
        for count in facilities:
            mine = compares.get((spec, "ours"), {}).get("per_f", {}).get(str(count), {}).get("search_s")
            theirs = compares.get((spec, "pandana"), {}).get("per_f", {}).get(str(count), {}).get("search_s")
            if mine and theirs:
                pandana_vs_ours.append(theirs / mine)
    if fit:
        k, c = fit
        search_text = (f"its `nearest_pois` took {min(pandana_vs_ours):.1f}–{max(pandana_vs_ours):.1f}× as long "
                       "as our search" if pandana_vs_ours else "its search is in the table")
        out.append(
            f"- pandana: installs and runs (float32 results, within {PANDANA_TOL:g} s of ours); its contraction "
            f"hierarchy build grows about as nodes^{k:.2f} on these grids (a rough fit over three sizes on a "
            f"loaded machine: extrapolated ≈ {c * 1e5**k / 60:,.0f} min at 100k nodes, ≈ {c * 1e6**k / 3600:,.1f} h "
            f"at 1M), so it ran on Shanghai and the 10k grid only. Once built, {search_text}.")
    sh = stages.get("shanghai")
    if sh and _stage(sh, "parse"):
        steps = {n: e["s"] for n, e in sh["stages"].items() if n.startswith("parse: ")}
        read = steps.get("parse: pyosmium read + filter", 0.0)
        osmnx_route = sum(v for n, v in steps.items() if "osmnx route" in n)
        out.append(f"- Parsing: pyosmium reading and filtering takes {read:.2f} s of the {_stage(sh, 'parse'):.2f} s "
                   f"default `load_walk_network` on the Shanghai extract; the osmnx route's graph + lengths + "
                   f"`simplify_graph` alone take {osmnx_route:.2f} s.")
    return "\n".join(out)


def _per_facility_ratios(networks, facilities, compares, method: str = "nx_per_facility") -> list:
    """(network, F, reach ratio, search ratio, extrapolated) of a per-facility networkx method over ours,
    at 500+ facilities. ``method``: "nx_per_facility" (tuned: one search per facility to the longest limit,
    the issue's wording and the one the verdict is judged on) or "nx_ego_graph" (the tutorial as written)."""
    ratios = []
    for spec in networks:
        ours = compares.get((spec, "ours"), {})
        for count in facilities:
            if count < 500:
                continue
            r = compares.get((spec, method), {})
            f = r.get("per_f", {}).get(str(count), {})
            theirs = f.get("reach_s_extrapolated") or _stage(r, f"reach F={count}")
            mine = _stage(ours, f"reach F={count}")
            mine_search = ours.get("per_f", {}).get(str(count), {}).get("search_s")
            if theirs and mine and mine_search:
                ratios.append((spec, count, theirs / mine, (f.get("search_s") or 0.0) / mine_search,
                               "extrapolated_from" in f))
    return ratios


def _span(values, spec: str) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{spec}}×" if f"{lo:{spec}}" == f"{hi:{spec}}" else f"{lo:{spec}}–{hi:{spec}}×"


def _ratio_detail(ratios) -> str:
    return "; ".join(f"{network_label(s)} F={c:,}: {t:.1f}× (search alone {q:.1f}×)"
                     + (" (**extrapolated**)" if x else "") for s, c, t, q, x in ratios)


def targets_section(networks, facilities, stages, compares) -> str:
    out = ["## Targets of issue #5", ""]
    big = stages.get("grid-1000000")
    if big and "stages" in big and 5000 in facilities:
        names = ("snap index", "snap demand", "snap facilities F=5000", "reach F=5000")
        total = sum(_stage(big, n) or 0.0 for n in names)
        peak = max(_stage(big, n, "peak_mb") or 0.0 for n in names)
        verdict = "met" if total < 10 and peak < 4096 else "MISSED"
        out.append(f"- Reach stage on 1M nodes, {big['demand']:,} demand points, 5,000 facilities (< 10 s, < 4 GB): "
                   f"{total:.1f} s, peak RSS {peak:,.0f} MB → **{verdict}**"
                   + ("" if total < 10 else f" (time over by {total / 10:.1f}×)")
                   + ("" if peak < 4096 else f" (memory over by {peak / 4096:.1f}×)") + ".")
    else:
        out.append("- Reach stage on 1M nodes: not run (quick mode or 1M grid not selected).")
    ratios = _per_facility_ratios(networks, facilities, compares)
    if ratios:
        met = [r for r in ratios if r[2] >= 100]
        verdict = "met everywhere" if len(met) == len(ratios) else "met nowhere" if not met else "met in part"
        out.append(f"- ≥ 100× faster than networkx per facility at 500+ facilities (judged, as the issue words "
                   "it, against a networkx single-source search per facility with the union of reached nodes: "
                   f"one search to the longest limit, tuned): **{verdict}** — {_ratio_detail(ratios)}.")
    ego = _per_facility_ratios(networks, facilities, compares, "nx_ego_graph")
    if ego:
        at_100 = sum(r[2] >= 100 for r in ego)
        out.append(f"- For information, not the verdict: against the osmnx tutorial as written (`nx.ego_graph` per "
                   f"facility and per trip time, {len(TRIP_TIMES_S)} calls per facility; reached sets only), "
                   f"ours is ≥ 100× faster end to end in {at_100} of {len(ego)} cases at 500+ facilities — "
                   f"{_ratio_detail(ego)}.")
    sh = stages.get("shanghai")
    if sh and "osm" in sh and _stage(sh, "parse"):
        rate = sh["osm"]["file_mb"] / _stage(sh, "parse")
        verdict = "met" if 50 / rate < 60 else "MISSED"
        out.append(f"- Parse a 50 MB .osm.pbf in < 60 s: **{verdict} by this extrapolation** — {50 / rate:,.0f} s at "
                   f"the measured {rate:.3f} MB/s of `load_walk_network` on a 0.32 MB roads-only extract, i.e. as if "
                   "50 MB were all streets (see the parse section for why a real city file does better). Measured "
                   "directly instead (`bench_parse.py`, RESULTS.md): a 50.2 MB PBF of real OSM content (the real "
                   "extracts tiled) loads in 18.0 s for the batch job (`load_walk_arrays`), 42.8 s as a networkx "
                   "graph; a synthetic 6M-node county PBF in 20.8 s.")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
