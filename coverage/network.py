"""Build projected walking networks from OpenStreetMap files (.osm, .osm.pbf, .osm.bz2, GraphML)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterable
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely

from coverage._errors import InputDataError
from coverage._io import atomic_path, file_sha256
from coverage.coords import utm_crs_for

#: bump when the filter or the graph build changes, so cached graphs are rebuilt
NETWORK_BUILD_VERSION = "3"

#: highway values no pedestrian may use (osmnx's "walk" filter, plus trunk links:
#: ramps of China's urban expressways have no footway)
EXCLUDED_HIGHWAY = frozenset(
    {
        "abandoned", "bus_guideway", "construction", "cycleway", "motorway", "motorway_link",
        "trunk_link", "no", "planned", "platform", "proposed", "raceway", "razed", "rest_area",
        "services", "escape", "busway", "corridor_planned",
    }
)

#: file endings read as raw OSM by pyosmium
RAW_OSM_SUFFIXES = (".osm", ".osm.xml", ".xml", ".osm.pbf", ".pbf", ".osm.bz2", ".osm.gz")


def is_walkable(tags: dict[str, str]) -> bool:
    """
    Whether an OSM way with these tags belongs to the walking network.

    Mirrors osmnx's ``walk`` network filter: any ``highway=*`` way that is not
    an area, not private, not foot=no, not a motorway, cycleway or
    construction, and not mapped as a separate sidewalk.

    Parameters
    ----------
    tags
        The way's OSM tags.

    Returns
    -------
    bool
    """
    highway = tags.get("highway")
    if highway is None or highway in EXCLUDED_HIGHWAY or highway.startswith("motor"):
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private" or tags.get("foot") == "no":
        return False
    if tags.get("service") == "private":
        return False
    for key in ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right"):
        if tags.get(key) == "separate":
            return False
    return True


def is_ferry(tags: dict[str, str]) -> bool:
    """Whether an OSM way is a ferry line (``route=ferry``) that foot passengers may use."""
    return tags.get("route") == "ferry" and tags.get("foot") != "no"


def _read_raw_osm(path: Path) -> tuple[dict[int, tuple[float, float]], list[tuple[int, list[int], dict]]]:
    """
    Read nodes and walkable/ferry ways from an OSM file with pyosmium.

    Returns
    -------
    tuple
        node locations ``{id: (lon, lat)}`` (only nodes used by kept ways) and
        the kept ways as ``(way id, node ids, tags)``. Ways whose nodes are
        missing from the extract are split at the missing nodes.
    """
    import osmium

    node_lonlat: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict]] = []
    # nodes must be read for the location cache; only ways reach this loop
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        # buildings and land use never reach Python: most ways of a city extract
        .with_filter(osmium.filter.KeyFilter("highway", "route"))
    )
    for way in processor:
        tags = dict(way.tags)
        ferry = is_ferry(tags)
        if not (ferry or is_walkable(tags)):
            continue
        keep = {k: tags[k] for k in ("highway", "name", "bridge", "tunnel", "route", "foot", "service") if k in tags}
        if ferry:
            keep["ferry"] = True
            keep.setdefault("highway", "ferry")
        run: list[int] = []
        for node_ref in way.nodes:
            if node_ref.location.valid():
                node_lonlat[node_ref.ref] = (node_ref.location.lon, node_ref.location.lat)
                run.append(node_ref.ref)
            else:
                if len(run) >= 2:
                    ways.append((way.id, run, keep))
                run = []
        if len(run) >= 2:
            ways.append((way.id, run, keep))
    return node_lonlat, ways


def _graph_from_ways(node_lonlat: dict, ways: list[tuple[int, list[int], dict]]) -> nx.MultiDiGraph:
    """Unsimplified osmnx-style MultiDiGraph, every way added in both directions (walking)."""
    graph = nx.MultiDiGraph(crs="EPSG:4326", created_with=f"eldercare-coverage network {NETWORK_BUILD_VERSION}")
    used = sorted({n for _, refs, _ in ways for n in refs})
    graph.add_nodes_from((n, {"x": node_lonlat[n][0], "y": node_lonlat[n][1]}) for n in used)
    for way_id, refs, tags in ways:
        attrs = {"osmid": way_id, "oneway": False, "reversed": False, "ferry": bool(tags.get("ferry", False))}
        attrs.update({k: v for k, v in tags.items() if k != "ferry"})
        for u, v in zip(refs[:-1], refs[1:]):
            if u == v:
                continue
            graph.add_edge(u, v, **attrs)
            graph.add_edge(v, u, **{**attrs, "reversed": True})
    return graph


def _segments_graph(node_lonlat: dict, ways: list[tuple[int, list[int], dict]]) -> nx.MultiDiGraph:
    """
    Simplified, projected graph straight from the ways: each way is cut at its ends and at shared nodes.

    This is the topology osmnx's ``simplify_graph`` produces (edges carry the
    full geometry and great-circle length of the stretch they replace),
    except that two ways meeting end to end with nothing else at the joint
    stay two edges: every walking time is the same. Coordinates are projected
    once with pyproj and all edge geometries are made in one shapely call, so
    a county extract builds in seconds rather than minutes.

    Returns
    -------
    networkx.MultiDiGraph
        In the local UTM zone (graph attribute ``crs``); nodes carry ``x``,
        ``y`` (metres) and ``lon``, ``lat`` (degrees).
    """
    from pyproj import Transformer

    node_ids = np.fromiter(node_lonlat.keys(), np.int64, len(node_lonlat))
    lonlat = np.array(list(node_lonlat.values()), dtype=float).reshape(-1, 2)
    position = dict(zip(node_ids.tolist(), range(len(node_ids))))
    way_nodes = [np.fromiter((position[n] for n in refs), np.int64, len(refs)) for _, refs, _ in ways]

    # graph nodes: way ends, and nodes used more than once
    uses = np.bincount(np.concatenate(way_nodes + [np.array([n[0], n[-1]]) for n in way_nodes]),
                       minlength=len(node_ids))

    crs = utm_crs_for(float(np.median(lonlat[:, 0])), float(np.median(lonlat[:, 1])))
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])

    # every stretch between two graph nodes becomes one edge; vertices listed per edge
    vertex_chunks, edge_way = [], []
    for w, nodes in enumerate(way_nodes):
        cut = np.flatnonzero(uses[nodes] >= 2).tolist()
        for start, end in zip(cut[:-1], cut[1:]):
            vertex_chunks.append(nodes[start:end + 1])
            edge_way.append(w)
    n_edges = len(vertex_chunks)
    graph = nx.MultiDiGraph(crs=crs, created_with=f"eldercare-coverage network {NETWORK_BUILD_VERSION}",
                            simplified=True)
    if n_edges == 0:
        return graph
    vertices = np.concatenate(vertex_chunks)
    owner = np.repeat(np.arange(n_edges), [len(chunk) for chunk in vertex_chunks])
    # great-circle length of each stretch, as osmnx measures edges
    same_edge = owner[1:] == owner[:-1]
    step = ox.distance.great_circle(lonlat[vertices[:-1], 1], lonlat[vertices[:-1], 0],
                                    lonlat[vertices[1:], 1], lonlat[vertices[1:], 0])
    length = np.bincount(owner[1:][same_edge], weights=step[same_edge], minlength=n_edges)
    geometry = shapely.linestrings(np.column_stack([x[vertices], y[vertices]]), indices=owner)
    reverse = shapely.reverse(geometry)
    first = np.concatenate([[0], np.flatnonzero(~same_edge) + 1])
    last = np.concatenate([np.flatnonzero(~same_edge), [len(vertices) - 1]])
    u_pos, v_pos = vertices[first], vertices[last]

    ends = np.unique(np.concatenate([u_pos, v_pos]))
    graph.add_nodes_from(
        (int(node_ids[i]), {"x": float(x[i]), "y": float(y[i]), "lon": float(lonlat[i, 0]),
                            "lat": float(lonlat[i, 1])})
        for i in ends
    )
    way_attrs = []
    for way_id, _, tags in ways:
        attrs = {"osmid": way_id, "oneway": False, "ferry": bool(tags.get("ferry", False))}
        attrs.update({k: v for k, v in tags.items() if k != "ferry"})
        way_attrs.append(attrs)
    u_ids, v_ids = node_ids[u_pos].tolist(), node_ids[v_pos].tolist()
    edges = []
    for e in np.flatnonzero(length > 0.0).tolist():
        attrs = way_attrs[edge_way[e]]
        edges.append((u_ids[e], v_ids[e], {**attrs, "length": float(length[e]), "geometry": geometry[e],
                                           "reversed": False}))
        edges.append((v_ids[e], u_ids[e], {**attrs, "length": float(length[e]), "geometry": reverse[e],
                                           "reversed": True}))
    graph.add_edges_from(edges)
    return graph


def default_cache_dir() -> Path:
    """Folder for cached parsed networks: ``$ELDERCOV_CACHE`` or ``~/.cache/eldercare-coverage``."""
    return Path(os.environ.get("ELDERCOV_CACHE", Path.home() / ".cache" / "eldercare-coverage"))


def load_walk_network(
    path: str | Path,
    *,
    to_crs=None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    simplify: str = "segments",
) -> nx.MultiDiGraph:
    """
    Read a walking network from an OSM file and project it to a metric CRS.

    Raw OSM (.osm XML, .osm.pbf, .osm.bz2) is read with pyosmium, keeping only
    walkable ``highway=*`` ways and ``route=ferry`` lines (buildings, land use,
    rivers, motorways are dropped); the graph is built in both directions,
    given great-circle edge lengths and simplified with osmnx. An osmnx GraphML
    file is loaded as it is. Every connected component is kept: islands are
    reported downstream, never dropped.

    Parameters
    ----------
    path
        The OSM or GraphML file.
    to_crs
        Target CRS; default the local UTM zone of the network's centre.
    cache_dir
        Where parsed graphs are cached, keyed by the file's sha256; default
        :func:`default_cache_dir`.
    use_cache
        Read and write that cache.
    simplify
        ``"segments"`` (default): cut ways at shared nodes directly, fast;
        ``"osmnx"``: build the full node graph and run osmnx's
        ``simplify_graph`` (slower; also merges ways that meet end to end).
        Both give the same walking times.

    Returns
    -------
    networkx.MultiDiGraph
        Projected graph (graph attribute ``crs``), edge attributes ``length``
        (metres), ``highway``, ``ferry`` (bool) and ``geometry``.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError("network file not found", path=path, hint="check inputs.network in the study file")
    name = path.name.lower()
    cache_file = None
    if use_cache:
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        key = f"{file_sha256(path)}-v{NETWORK_BUILD_VERSION}-{simplify}-ox{ox.__version__}"
        cache_file = cache_root / "networks" / f"{key}.pickle"
        if cache_file.exists():
            with open(cache_file, "rb") as handle:
                graph = pickle.load(handle)
            return _project(graph, to_crs)

    if name.endswith(".graphml"):
        graph = ox.load_graphml(path, edge_dtypes={"ferry": _to_bool})
        for _, _, data in graph.edges(data=True):
            data.setdefault("ferry", False)
        if "crs" in graph.graph and ox.projection.is_projected(graph.graph["crs"]):
            graph = ox.project_graph(graph, to_latlong=True)
    elif name.endswith(RAW_OSM_SUFFIXES):
        try:
            node_lonlat, ways = _read_raw_osm(path)
        except RuntimeError as exc:
            raise InputDataError(
                f"cannot read as OpenStreetMap data: {exc}",
                path=path,
                hint="export the area again from OpenStreetMap as .osm or .osm.pbf / 请重新导出OSM文件",
            ) from None
        if not ways:
            raise InputDataError(
                "no walkable ways (highway=*) in the file",
                path=path,
                hint="the extract must contain streets and paths, not only buildings or land use",
            )
        if simplify == "osmnx":
            graph = _graph_from_ways(node_lonlat, ways)
            graph = ox.distance.add_edge_lengths(graph)
            graph = ox.simplify_graph(graph, edge_attrs_differ=["ferry"])
        elif simplify == "segments":
            graph = _segments_graph(node_lonlat, ways)
        else:
            raise ValueError(f"simplify must be 'segments' or 'osmnx', got {simplify!r}")
    else:
        raise InputDataError(
            "unknown network format",
            path=path,
            hint="use .osm, .osm.pbf, .osm.bz2 or an osmnx .graphml file",
        )

    if cache_file is not None:
        _atomic_pickle(graph, cache_file)
    return _project(graph, to_crs)


def _to_bool(value) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes"}


def _atomic_pickle(obj, target: Path) -> None:
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _project(graph: nx.MultiDiGraph, to_crs) -> nx.MultiDiGraph:
    """Project to ``to_crs`` (default: the local UTM zone); a graph already there is returned as it is."""
    from pyproj import CRS

    current = CRS.from_user_input(graph.graph["crs"])
    if current.is_projected and (to_crs is None or CRS.from_user_input(to_crs) == current):
        return graph
    if to_crs is None:
        xs = np.fromiter((d["x"] for _, d in graph.nodes(data=True)), float)
        ys = np.fromiter((d["y"] for _, d in graph.nodes(data=True)), float)
        to_crs = utm_crs_for(float(np.median(xs)), float(np.median(ys)))
    return ox.project_graph(graph, to_crs=to_crs)


def graph_summary(graph: nx.MultiDiGraph) -> dict[str, int | float]:
    """
    Sizes a planner can check: nodes, edges, walkable length (km), ferry lines, components.

    Parameters
    ----------
    graph
        A graph from :func:`load_walk_network`.
    """
    # each street once, whichever direction(s) the graph stores it in
    streets: dict[tuple, bool] = {}
    for u, v, data in graph.edges(data=True):
        length = float(data.get("length", 0.0))
        osmid = data.get("osmid")
        ways = tuple(sorted(map(str, osmid))) if isinstance(osmid, list) else str(osmid)
        streets[(min(u, v), max(u, v), round(length, 2), ways)] = bool(data.get("ferry", False))
    length_m = sum(key[2] for key, ferry in streets.items() if not ferry)
    ferries = sum(streets.values())
    return {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "walkable_km": round(length_m / 1000.0, 3),
        "ferry_edges": ferries,
        "components": nx.number_weakly_connected_components(graph),
    }


def edges_frame(graph: nx.MultiDiGraph) -> pd.DataFrame:
    """Edge attributes as a DataFrame (u, v, key, length, highway, ferry), for inspection."""
    rows: Iterable = ((u, v, k, d.get("length"), d.get("highway"), bool(d.get("ferry", False)))
                      for u, v, k, d in graph.edges(keys=True, data=True))
    return pd.DataFrame(rows, columns=["u", "v", "key", "length", "highway", "ferry"])
