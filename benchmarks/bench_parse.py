"""
Time parsing a county-sized .osm.pbf into the walking network (issue #5: 50 MB under 60 s).

No 50 MB extract is in ../shared/data, so this writes two stand-ins with
pyosmium: a synthetic county-like PBF (a street grid whose ways carry shape
nodes between junctions, and building footprints: most nodes of a real
extract are buildings, which the walking filter drops), and a 50 MB PBF made
of the real extracts of ../shared/data laid side by side hundreds of times
(each copy with its own ids and place; real tags, buildings, land use and
multipolygon relations). It then times
``coverage.network.load_walk_network`` on it (no cache), split into the
pyosmium read, the graph build and the projection, and, on a smaller file of
the same kind, the same load with osmnx's ``simplify_graph`` for comparison.
Next to it, ``coverage.network.load_walk_arrays`` (no cache), which builds the
batch job's network arrays from the same ways without a networkx graph, and
the batch job's whole "network" stage both ways (graph: load +
``reach.network_arrays`` + ``graph_summary``; arrays: load +
``network_summary``). Every load runs in its own fresh (spawned) process, so
its peak RSS (``ru_maxrss``, including the ~0.2–0.3 GB of imported libraries)
is its own.

Run from the repository root:

    .venv-bench/bin/python benchmarks/bench_parse.py [--nodes 6e6] [--tiled-real-mb 50] [--out /tmp/bench_parse]
"""

from __future__ import annotations

import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np


def write_synthetic_pbf(path: Path, *, junctions_per_side: int, buildings: int, seed: int = 1) -> dict:
    """
    Write a synthetic extract: a jittered street grid (~90 m blocks, two shape
    nodes per block side, ways 8 blocks long) and square building footprints.
    """
    import osmium

    rng = np.random.default_rng(seed)
    lon0, lat0 = 113.5, 30.5
    step = 0.0009  # ~90 m
    n = junctions_per_side
    node_id = 1
    junction = np.arange(n * n, dtype=np.int64).reshape(n, n) + 1
    node_id = n * n + 1
    written_nodes = 0
    if path.exists():
        path.unlink()
    with osmium.SimpleWriter(str(path)) as writer:
        jitter = rng.uniform(-0.00015, 0.00015, size=(n, n, 2))
        for i in range(n):
            for j in range(n):
                writer.add_node(osmium.osm.mutable.Node(
                    id=int(junction[i, j]), location=(lon0 + j * step + jitter[i, j, 0],
                                                      lat0 + i * step + jitter[i, j, 1])))
                written_nodes += 1
        ways = []
        way_id = 1
        for horizontal in (True, False):
            for i in range(n):
                for start in range(0, n - 1, 8):
                    refs = []
                    for j in range(start, min(start + 8, n - 1)):
                        a = junction[i, j] if horizontal else junction[j, i]
                        b = junction[i, j + 1] if horizontal else junction[j + 1, i]
                        refs.append(int(a))
                        ia, ja = (i, j) if horizontal else (j, i)
                        ib, jb = (i, j + 1) if horizontal else (j + 1, i)
                        pa = (lon0 + ja * step + jitter[ia, ja, 0], lat0 + ia * step + jitter[ia, ja, 1])
                        pb = (lon0 + jb * step + jitter[ib, jb, 0], lat0 + ib * step + jitter[ib, jb, 1])
                        for t in (1 / 3, 2 / 3):  # shape nodes along the block side
                            writer.add_node(osmium.osm.mutable.Node(
                                id=node_id, location=(pa[0] + t * (pb[0] - pa[0]) + rng.normal(0, 2e-5),
                                                      pa[1] + t * (pb[1] - pa[1]) + rng.normal(0, 2e-5))))
                            refs.append(node_id)
                            node_id += 1
                            written_nodes += 1
                        refs.append(int(b))
                    highway = "residential" if (i % 5) else "secondary"
                    ways.append((way_id, refs, {"highway": highway}))
                    way_id += 1
        # building footprints inside blocks: 4 corner nodes, closed way
        building_ways = []
        size = step * 0.12
        for _ in range(buildings):
            x = lon0 + rng.uniform(0, (n - 1) * step)
            y = lat0 + rng.uniform(0, (n - 1) * step)
            corners = []
            for dx, dy in ((0, 0), (size, 0), (size, size), (0, size)):
                writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(x + dx, y + dy)))
                corners.append(node_id)
                node_id += 1
                written_nodes += 1
            building_ways.append((way_id, corners + [corners[0]], {"building": "yes"}))
            way_id += 1
        for wid, refs, tags in ways + building_ways:
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags))
    return {"nodes": written_nodes, "street_ways": len(ways), "building_ways": len(building_ways),
            "mb": path.stat().st_size / 1e6}


#: full OpenStreetMap exports in ../shared/data (streets, buildings, land use, POIs, relations)
REAL_EXTRACTS = [
    "osm/beijing_bupt/map.osm.pbf", "osm/beijing_haidian_cau/map.osm.pbf",
    "osm/beijing_haidian_thu_pku/map.osm.pbf", "osm/beijing_wangjing/map.osm.pbf",
    "osm/jiangxi_guixi/mapofgx.osm.pbf", "osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
    "osm/shanghai_baoshan_shu/map_1.osm.pbf", "osm/shenzhen_longgang_klein4c/map.osm.pbf",
]


def write_tiled_real_pbf(path: Path, *, target_mb: float, shared: Path) -> dict:
    """
    Write a PBF of about ``target_mb`` MB made of the real extracts laid side by side, many times over.

    Each copy (tile) of an extract keeps its content (every node, way and
    relation with its tags: buildings, land use, POIs, multipolygons) and gets
    its own ids (offset per tile) and its own place (shifted on a grid of
    0.06 degree steps), so the file has the make-up of real city data at the
    size of a county extract. Written nodes, then ways, then relations, each
    sorted by id, as a real PBF.
    """
    import osmium

    sources = []
    for rel in REAL_EXTRACTS:
        nodes, ways, relations = [], [], []
        for obj in osmium.FileProcessor(str(shared / rel)):
            tags = dict(obj.tags)
            if obj.is_node():
                nodes.append((obj.id, obj.location.lon, obj.location.lat, tags))
            elif obj.is_way():
                ways.append((obj.id, [n.ref for n in obj.nodes], tags))
            elif obj.is_relation():
                relations.append((obj.id, [(m.type, m.ref, m.role) for m in obj.members], tags))
        lon0 = min(n[1] for n in nodes)
        lat0 = min(n[2] for n in nodes)
        sources.append((rel, nodes, ways, relations, lon0, lat0, (shared / rel).stat().st_size))
    per_round_mb = sum(src[6] for src in sources) / 1e6
    rounds = int(np.ceil(target_mb / per_round_mb))
    info = _write_tiles(path, sources, rounds)
    if info["mb"] < 0.97 * target_mb:  # one big file packs tighter than the small ones: scale up once
        info = _write_tiles(path, sources, int(np.ceil(rounds * target_mb / info["mb"])))
    return info


def _write_tiles(path: Path, sources: list, rounds: int) -> dict:
    """Write ``rounds`` copies of every source extract, each tile with its own ids and place (see above)."""
    import osmium

    tiles = [(r, k) for r in range(rounds) for k in range(len(sources))]
    side = int(np.ceil(np.sqrt(len(tiles))))
    offset = 20_000_000_000  # per tile, above every real OSM id

    def place(t: int) -> tuple[float, float]:
        return 110.0 + (t % side) * 0.06, 28.0 + (t // side) * 0.06

    if path.exists():
        path.unlink()
    counts = {"nodes": 0, "ways": 0, "relations": 0}
    with osmium.SimpleWriter(str(path)) as writer:
        for t, (_, k) in enumerate(tiles):
            _, nodes, _, _, lon0, lat0, _ = sources[k]
            x0, y0 = place(t)
            base = (t + 1) * offset
            for node_id, lon, lat, tags in nodes:
                writer.add_node(osmium.osm.mutable.Node(id=base + node_id, location=(x0 + lon - lon0,
                                                                                       y0 + lat - lat0), tags=tags))
            counts["nodes"] += len(nodes)
        for t, (_, k) in enumerate(tiles):
            base = (t + 1) * offset
            for way_id, refs, tags in sources[k][2]:
                writer.add_way(osmium.osm.mutable.Way(id=base + way_id, nodes=[base + r for r in refs], tags=tags))
            counts["ways"] += len(sources[k][2])
        for t, (_, k) in enumerate(tiles):
            base = (t + 1) * offset
            for rel_id, members, tags in sources[k][3]:
                writer.add_relation(osmium.osm.mutable.Relation(
                    id=base + rel_id, members=[(kind, base + ref, role) for kind, ref, role in members], tags=tags))
            counts["relations"] += len(sources[k][3])
    return {**counts, "tiles": len(tiles), "rounds": rounds, "mb": path.stat().st_size / 1e6}


def _time_load(path: Path, simplify: str) -> dict:
    """
    Time one load of ``path`` (no cache), split into stages; run it in a fresh process.

    ``simplify`` is ``"segments"`` or ``"osmnx"`` (the graph of ``load_walk_network``,
    then ``network_arrays`` and ``graph_summary`` as the batch job used them) or
    ``"arrays"`` (``load_walk_arrays`` and ``network_summary``). Seconds; peak RSS in GB.
    """
    import osmnx as ox

    from coverage import network, reach

    baseline_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    start = time.perf_counter()
    node_lonlat, ways = network._read_raw_osm(path)
    t_read = time.perf_counter() - start
    start = time.perf_counter()
    if simplify == "arrays":
        built = network._arrays_from_segments(network._walk_segments(node_lonlat, ways, low_end_first=True))
    elif simplify == "segments":
        built = network._segments_graph(node_lonlat, ways)
    else:
        built = network._graph_from_ways(node_lonlat, ways)
        built = ox.distance.add_edge_lengths(built)
        built = ox.simplify_graph(built, edge_attrs_differ=["ferry"])
    del node_lonlat, ways
    t_build = time.perf_counter() - start
    start = time.perf_counter()
    projected = network._project_arrays(built, None) if simplify == "arrays" else network._project(built, None)
    t_project = time.perf_counter() - start
    start = time.perf_counter()
    if simplify == "arrays":
        summary = network.network_summary(projected)
        t_arrays, t_summary = 0.0, time.perf_counter() - start
    else:
        net = reach.network_arrays(projected)
        t_arrays = time.perf_counter() - start
        start = time.perf_counter()
        summary = network.graph_summary(projected)
        t_summary = time.perf_counter() - start
        del net
    load = t_read + t_build + t_project
    return {"read": t_read, "build": t_build, "project": t_project, "total": load,
            "to_arrays": t_arrays, "summary": t_summary, "stage": load + t_arrays + t_summary,
            "nodes": summary["nodes"], "edges": summary["edges"], "summary_figures": summary,
            "baseline_gb": baseline_gb, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def _time_load_in_fresh_process(path: Path, simplify: str) -> dict:
    """:func:`_time_load` in a spawned interpreter: nothing left over from earlier loads, its own peak RSS."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_time_load, (path, simplify))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=float, default=6e6,
                        help="OSM nodes to write; a real 50 MB .osm.pbf holds about 6 million")
    parser.add_argument("--out", default="/tmp/bench_parse")
    parser.add_argument("--tiled-real-mb", type=float, default=50.0,
                        help="also a PBF of this size tiled from the real extracts in ../shared/data (0: skip)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # a third of the nodes are streets (junctions + 4 shape nodes per junction), the rest buildings (4 each);
    # synthetic data packs tighter than real OSM, so the file is smaller than a real one with as many nodes
    side = int(round(np.sqrt(args.nodes / 3 / 5)))
    buildings = int(round(args.nodes * 2 / 3 / 4))
    print(f"machine: {platform.machine()}, python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    rows = []
    files = [("small (osmnx comparison)", max(60, side // 6), buildings // 36),
             (f"{args.nodes / 1e6:g}M nodes", side, buildings)]
    if args.tiled_real_mb > 0:
        files.append((f"real extracts tiled to {args.tiled_real_mb:g} MB", None, None))
    for label, n_side, n_buildings in files:
        start = time.perf_counter()
        if n_side is None:
            path = out / f"tiled_real_{args.tiled_real_mb:g}mb.osm.pbf"
            shared = Path(__file__).resolve().parents[2] / "shared" / "data"
            info = write_tiled_real_pbf(path, target_mb=args.tiled_real_mb, shared=shared)
            print(f"{label}: wrote {path.name}: {info['mb']:.1f} MB, {info['nodes']:,} nodes, {info['ways']:,} ways, "
                  f"{info['relations']:,} relations ({info['tiles']} tiles of the {len(REAL_EXTRACTS)} real "
                  f"extracts) in {time.perf_counter() - start:.0f} s")
        else:
            path = out / f"synthetic_{n_side}.osm.pbf"
            info = write_synthetic_pbf(path, junctions_per_side=n_side, buildings=n_buildings)
            print(f"{label}: wrote {path.name}: {info['mb']:.1f} MB, {info['nodes']:,} nodes, "
                  f"{info['street_ways']:,} street ways, {info['building_ways']:,} buildings "
                  f"in {time.perf_counter() - start:.0f} s")
        methods = ("segments", "arrays", "osmnx") if "small" in label else ("segments", "arrays")
        by_method = {}
        for method in methods:
            result = _time_load_in_fresh_process(path, method)
            by_method[method] = result
            rows.append((label, info["mb"], method, result))
            print(f"  {method:9s} read {result['read']:.1f} s, build {result['build']:.1f} s, "
                  f"project {result['project']:.1f} s, total {result['total']:.1f} s; "
                  f"network stage (+ arrays {result['to_arrays']:.1f} s, summary {result['summary']:.1f} s) "
                  f"{result['stage']:.1f} s; peak RSS {result['peak_gb']:.2f} GB "
                  f"→ {result['nodes']:,} nodes / {result['edges']:,} edges")
        graph, arrays = by_method["segments"], by_method["arrays"]
        same = "same" if graph["summary_figures"] == arrays["summary_figures"] else "DIFFERENT"
        print(f"  load_walk_network / load_walk_arrays: load {graph['total'] / arrays['total']:.1f}x, "
              f"network stage {graph['stage'] / arrays['stage']:.1f}x, "
              f"peak RSS {graph['peak_gb']:.2f} / {arrays['peak_gb']:.2f} GB; {same} network summary")
    peak_gb = max(r["peak_gb"] for *_, r in rows)
    print(f"highest peak RSS of one load: {peak_gb:.2f} GB "
          f"(a fresh process with the libraries imported: {rows[0][3]['baseline_gb']:.2f} GB)")
    print()
    print("| file | MB | build | read s | graph/arrays s | project s | load total s | network stage s "
          "| peak RSS GB | nodes / edges |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for label, mb, method, r in rows:
        print(f"| {label} | {mb:.1f} | {method} | {r['read']:.1f} | {r['build']:.1f} | {r['project']:.1f} | "
              f"{r['total']:.1f} | {r['stage']:.1f} | {r['peak_gb']:.2f} | {r['nodes']:,} / {r['edges']:,} |")


if __name__ == "__main__":
    main()
