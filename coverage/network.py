"""Build projected walking networks from OpenStreetMap files (.osm, .osm.pbf, .osm.bz2, GraphML)."""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from coverage._errors import InputDataError
from coverage._io import atomic_pickle, file_sha256
from coverage.coords import utm_crs_for
from coverage.lengths import ground_lengths
from coverage.network_arrays import NetworkArrays, highway_code, network_arrays, node_components
from coverage.osm_ways import (
    ALL_EXCLUDED_HIGHWAY, DRIVE_EXCLUDED_HIGHWAY, DRIVE_EXCLUDED_SERVICE, EXCLUDED_HIGHWAY, ONEWAY_VALUES,
    RAW_OSM_SUFFIXES, REVERSED_ONEWAY_VALUES, WAY_SELECTIONS, _read_raw_osm, _read_walkable_osm, _way_filter,
    is_any_way, is_car_ferry, is_drivable, is_ferry, is_walkable, oneway_direction,
)

#: the network builders, and the way filters they re-export (coverage.osm_ways)
__all__ = [
    "ALL_EXCLUDED_HIGHWAY", "DRIVE_EXCLUDED_HIGHWAY", "DRIVE_EXCLUDED_SERVICE", "EXCLUDED_HIGHWAY",
    "NETWORK_BUILD_VERSION", "ONEWAY_VALUES", "RAW_OSM_SUFFIXES", "REVERSED_ONEWAY_VALUES", "WAY_SELECTIONS",
    "default_cache_dir", "edges_frame", "graph_summary", "is_any_way", "is_car_ferry", "is_drivable", "is_ferry",
    "is_walkable", "load_walk_arrays", "load_walk_network", "network_summary", "oneway_direction", "_read_raw_osm",
]

if TYPE_CHECKING:  # networkx and osmnx are imported where a graph is built or read: a run's arrays need neither
    import networkx as nx


def _osmnx_version() -> str:
    """osmnx's version (part of the cache keys: edge lengths follow it), without importing it."""
    from importlib import metadata

    return metadata.version("osmnx")


#: bump when the filter or the graph build changes, so cached graphs are rebuilt
NETWORK_BUILD_VERSION = "6"  # 5: ground lengths (coverage.lengths); 6: street names on the arrays

def _graph_from_ways(node_lonlat: dict, ways: list[tuple[int, list[int], dict]]) -> nx.MultiDiGraph:
    """Unsimplified osmnx-style MultiDiGraph, every way added in both directions (walking)."""
    import networkx as nx

    graph = nx.MultiDiGraph(crs="EPSG:4326", created_with=f"eldercare-coverage network {NETWORK_BUILD_VERSION}")
    used = sorted({n for _, refs, _ in ways for n in refs})
    graph.add_nodes_from((n, {"x": node_lonlat[n][0], "y": node_lonlat[n][1]}) for n in used)
    for way_id, refs, tags in ways:
        attrs = {"osmid": way_id, "oneway": False, "reversed": False, "ferry": bool(tags.get("ferry", False))}
        attrs.update({k: v for k, v in tags.items() if k != "ferry" and not k.startswith("_")})
        for u, v in zip(refs[:-1], refs[1:]):
            if u == v:
                continue
            graph.add_edge(u, v, **attrs)
            graph.add_edge(v, u, **{**attrs, "reversed": True})
    return graph


def _add_ground_lengths(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """
    Set every edge's ``length`` to its ground length (metres) in the local UTM zone.

    The same definition as :func:`_walk_segments` (:mod:`coverage.lengths`),
    in place of osmnx's great-circle ``add_edge_lengths``.
    """
    import networkx as nx
    from pyproj import Transformer

    if graph.number_of_edges() == 0:
        return graph
    nodes = np.fromiter(graph.nodes, np.int64, graph.number_of_nodes())
    lon = np.array([graph.nodes[n]["x"] for n in nodes.tolist()], dtype=float)
    lat = np.array([graph.nodes[n]["y"] for n in nodes.tolist()], dtype=float)
    crs = utm_crs_for(float(np.median(lon)), float(np.median(lat)))
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    position = {n: i for i, n in enumerate(nodes.tolist())}
    edges = list(graph.edges(keys=True))
    u = np.fromiter((position[e[0]] for e in edges), np.int64, len(edges))
    v = np.fromiter((position[e[1]] for e in edges), np.int64, len(edges))
    length = ground_lengths(crs, x[u], y[u], x[v], y[v])
    nx.set_edge_attributes(graph, dict(zip(edges, length.tolist())), "length")
    return graph


def _rings_as_loops(graph: nx.MultiDiGraph, ways: list[tuple[int, list[int], dict]]) -> nx.MultiDiGraph:
    """
    Turn each isolated closed way osmnx left unsimplified into one loop edge at the way's first node.

    That is the edge :func:`_walk_segments` makes of it (cut at the way's
    ends only), so both simplification modes give the same nodes, lengths
    and walking times on rings that touch nothing.
    """
    for _, refs, _ in ways:
        if len(refs) < 4 or refs[0] != refs[-1] or refs[0] not in graph:
            continue
        ring = refs[:-1]
        if any(n not in graph or len(set(graph.predecessors(n)) | set(graph.successors(n))) != 2 for n in ring):
            continue
        if graph.degree(ring[0]) != 4 or graph.has_edge(ring[0], ring[0]):
            continue
        steps = list(zip(refs[:-1], refs[1:]))
        if not all(graph.has_edge(u, v) for u, v in steps) or len(set(ring)) != len(ring):
            continue
        first = graph.get_edge_data(*steps[0])
        attrs = {k: v for k, v in next(iter(first.values())).items() if k not in {"geometry", "length", "reversed"}}
        length = sum(min(d["length"] for d in graph.get_edge_data(u, v).values()) for u, v in steps)
        coords = [(graph.nodes[n]["x"], graph.nodes[n]["y"]) for n in refs]
        graph.remove_nodes_from(ring[1:])
        graph.remove_edges_from(list(graph.edges(ring[0], keys=True)))
        graph.add_edge(ring[0], ring[0], **attrs, length=length, geometry=shapely.LineString(coords), reversed=False)
        graph.add_edge(ring[0], ring[0], **attrs, length=length, geometry=shapely.LineString(coords[::-1]),
                       reversed=True)
    return graph


@dataclass(frozen=True)
class _WalkSegments:
    """
    The walking network cut at shared nodes, as arrays: what both the graph and the arrays are built from.

    Attributes
    ----------
    node_ids : numpy.ndarray
        OSM ids of the network nodes (way ends and nodes shared by ways), in
        the order they were first read; position = array index.
    node_x, node_y : numpy.ndarray
        Node coordinates in ``crs`` (metres).
    node_lon, node_lat : numpy.ndarray
        Node coordinates in WGS-84 (degrees).
    edge_u, edge_v : numpy.ndarray
        Edge end positions into the node arrays; the geometry runs from u to v.
    edge_length_m : numpy.ndarray
        Ground length of each stretch, summed over its vertices (metres, :mod:`coverage.lengths`).
    edge_ferry : numpy.ndarray
        True for ferry lines.
    edge_way : numpy.ndarray
        Position of the edge's way in the list of ways read.
    edge_geometry : numpy.ndarray
        shapely LineStrings in ``crs``, oriented u → v.
    edge_highway : numpy.ndarray
        OSM highway class code of the edge's way (:data:`coverage.reach.HIGHWAY_CLASSES`).
    edge_oneway : numpy.ndarray
        The way's one-way rule relative to the edge: 0 both ways, 1 only u → v, -1 only v → u.
    crs : pyproj.CRS
        The local UTM zone of the median node position.
    """

    node_ids: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    node_lon: np.ndarray
    node_lat: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_ferry: np.ndarray
    edge_way: np.ndarray
    edge_geometry: np.ndarray
    edge_highway: np.ndarray
    edge_oneway: np.ndarray
    crs: object
    edge_name: np.ndarray | None = None


def _walk_segments(
    node_lonlat: dict[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict]],
    *,
    low_end_first: bool = False,
) -> _WalkSegments:
    """
    Cut every way at its ends and at nodes it shares with a way (or with itself), projected, as arrays.

    Each stretch between two such nodes becomes one edge carrying the full
    geometry and the ground length of the vertices it replaces.
    Coordinates are projected once with pyproj (to the UTM zone of the
    median node) and all edge geometries are made in one shapely call.
    Stretches of length 0 are dropped, but their end nodes stay network
    nodes (as they stay graph nodes in :func:`_segments_graph`).

    Parameters
    ----------
    node_lonlat
        Node locations ``{OSM id: (lon, lat)}`` in degrees, from :func:`_read_raw_osm`.
    ways
        The kept ways ``(way id, node ids, tags)``, from :func:`_read_raw_osm`.
    low_end_first
        Orient every edge from its end with the lower node position to the
        other (u ≤ v; geometry reversed where the way runs the other way),
        as :func:`coverage.reach.network_arrays` stores an edge. Otherwise
        edges run in the way's direction. Lengths are the same either way.

    Returns
    -------
    _WalkSegments
        Nodes in order of their position among the nodes read; edges in the
        order of the ways and, within a way, along it.
    """
    from pyproj import Transformer

    node_ids = np.fromiter(node_lonlat.keys(), np.int64, len(node_lonlat))
    lonlat = np.array(list(node_lonlat.values()), dtype=float).reshape(-1, 2)
    # every way's nodes as positions into node_ids, all ways one after another
    way_size = np.fromiter((len(refs) for _, refs, _ in ways), np.int64, len(ways))
    refs_flat = np.fromiter(chain.from_iterable(refs for _, refs, _ in ways), np.int64, int(way_size.sum()))
    by_id = np.argsort(node_ids, kind="stable")
    node_of_ref = by_id[np.searchsorted(node_ids, refs_flat, sorter=by_id)]
    del refs_flat
    way_of_ref = np.repeat(np.arange(len(ways), dtype=np.int64), way_size)
    way_start = np.cumsum(way_size) - way_size
    way_end = way_start + way_size - 1

    # network nodes: way ends, and nodes used more than once
    uses = np.bincount(np.concatenate([node_of_ref, node_of_ref[way_start], node_of_ref[way_end]]),
                       minlength=len(node_ids))

    crs = utm_crs_for(float(np.median(lonlat[:, 0])), float(np.median(lonlat[:, 1])))
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])

    # every stretch between two consecutive cut points of one way becomes one edge
    cut = np.flatnonzero(uses[node_of_ref] >= 2)
    same_way = way_of_ref[cut[1:]] == way_of_ref[cut[:-1]]
    start, end = cut[:-1][same_way], cut[1:][same_way]
    edge_way = way_of_ref[start]
    del cut, same_way, way_of_ref
    n_edges = len(start)
    per_edge = end - start + 1
    owner = np.repeat(np.arange(n_edges, dtype=np.int64), per_edge)
    first = np.cumsum(per_edge) - per_edge
    ref_index = np.repeat(start - first, per_edge) + np.arange(len(owner), dtype=np.int64)
    vertices = node_of_ref[ref_index]
    del node_of_ref, ref_index
    # ground length of each stretch (coverage.lengths: UTM plane over the point scale factor)
    same_edge = owner[1:] == owner[:-1]
    step = ground_lengths(crs, x[vertices[:-1]], y[vertices[:-1]], x[vertices[1:]], y[vertices[1:]])
    length = np.bincount(owner[1:][same_edge], weights=step[same_edge], minlength=n_edges)
    del step, same_edge
    last = first + per_edge - 1
    u_pos, v_pos = vertices[first], vertices[last]
    ends = np.unique(np.concatenate([u_pos, v_pos]))

    # zero-length stretches are dropped; their ends stay nodes
    keep = np.flatnonzero(length > 0.0)
    if len(keep) < n_edges:
        kept_vertex = np.repeat(length > 0.0, per_edge)
        vertices = vertices[kept_vertex]
        per_edge = per_edge[keep]
        owner = np.repeat(np.arange(len(keep), dtype=np.int64), per_edge)
        first = np.cumsum(per_edge) - per_edge
        last = first + per_edge - 1
        u_pos, v_pos, length, edge_way = u_pos[keep], v_pos[keep], length[keep], edge_way[keep]
    # +1 where the edge runs in its way's direction, -1 where it was turned round
    direction = np.ones(len(u_pos), dtype=np.int8)
    if low_end_first:
        flip = u_pos > v_pos
        direction[flip] = -1
        u_pos, v_pos = np.where(flip, v_pos, u_pos), np.where(flip, u_pos, v_pos)
        # the vertices of a flipped edge are read from its end back to its start
        flipped_vertex = np.repeat(flip, per_edge)
        along = np.arange(len(vertices), dtype=np.int64)
        along[flipped_vertex] = (first + last)[owner[flipped_vertex]] - along[flipped_vertex]
        vertices = vertices[along]
        del flipped_vertex, along
    geometry = shapely.linestrings(np.column_stack([x[vertices], y[vertices]]), indices=owner)
    ferry_way = np.fromiter((bool(tags.get("ferry", False)) for _, _, tags in ways), bool, len(ways))
    highway_way = np.fromiter((highway_code(tags.get("highway")) for _, _, tags in ways), np.int8, len(ways))
    oneway_way = np.fromiter((tags.get("_oneway", 0) for _, _, tags in ways), np.int8, len(ways))
    name_way = np.array([str(tags.get("name", "")) for _, _, tags in ways], dtype=object)
    return _WalkSegments(
        node_ids=node_ids[ends],
        node_x=np.asarray(x, dtype=float)[ends],
        node_y=np.asarray(y, dtype=float)[ends],
        node_lon=lonlat[ends, 0],
        node_lat=lonlat[ends, 1],
        edge_u=np.searchsorted(ends, u_pos),
        edge_v=np.searchsorted(ends, v_pos),
        edge_length_m=length,
        edge_ferry=ferry_way[edge_way],
        edge_way=edge_way,
        edge_geometry=geometry,
        edge_highway=highway_way[edge_way],
        edge_oneway=oneway_way[edge_way] * direction,
        crs=crs,
        edge_name=name_way[edge_way],
    )


def _segments_graph(node_lonlat: dict, ways: list[tuple[int, list[int], dict]]) -> nx.MultiDiGraph:
    """
    Simplified, projected graph straight from the ways: each way is cut at its ends and at shared nodes.

    This is the topology osmnx's ``simplify_graph`` produces (edges carry the
    full geometry and ground length of the stretch they replace),
    except that two ways meeting end to end with nothing else at the joint
    stay two edges: every walking time is the same. The cutting, projection
    and geometries are :func:`_walk_segments`; only the graph is built here.

    Returns
    -------
    networkx.MultiDiGraph
        In the local UTM zone (graph attribute ``crs``); nodes carry ``x``,
        ``y`` (metres) and ``lon``, ``lat`` (degrees).
    """
    import networkx as nx

    segments = _walk_segments(node_lonlat, ways)
    graph = nx.MultiDiGraph(crs=segments.crs, created_with=f"eldercare-coverage network {NETWORK_BUILD_VERSION}",
                            simplified=True)
    graph.add_nodes_from(
        (node, {"x": x, "y": y, "lon": lon, "lat": lat})
        for node, x, y, lon, lat in zip(segments.node_ids.tolist(), segments.node_x.tolist(),
                                        segments.node_y.tolist(), segments.node_lon.tolist(),
                                        segments.node_lat.tolist())
    )
    way_attrs = []
    for way_id, _, tags in ways:
        attrs = {"osmid": way_id, "oneway": False, "ferry": bool(tags.get("ferry", False))}
        attrs.update({k: v for k, v in tags.items() if k != "ferry" and not k.startswith("_")})
        way_attrs.append(attrs)
    u_ids = segments.node_ids[segments.edge_u].tolist()
    v_ids = segments.node_ids[segments.edge_v].tolist()
    reverse = shapely.reverse(segments.edge_geometry)
    edges = []
    for e, (way, length) in enumerate(zip(segments.edge_way.tolist(), segments.edge_length_m.tolist())):
        attrs = way_attrs[way]
        edges.append((u_ids[e], v_ids[e], {**attrs, "length": length, "geometry": segments.edge_geometry[e],
                                           "reversed": False}))
        edges.append((v_ids[e], u_ids[e], {**attrs, "length": length, "geometry": reverse[e],
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
    given ground edge lengths (:mod:`coverage.lengths`) and simplified with osmnx. An osmnx GraphML
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
        key = f"{file_sha256(path)}-v{NETWORK_BUILD_VERSION}-{simplify}-ox{_osmnx_version()}"
        cache_file = cache_root / "networks" / f"{key}.pickle"
        if cache_file.exists():
            with open(cache_file, "rb") as handle:
                graph = pickle.load(handle)
            return _project(graph, to_crs)

    if name.endswith(".graphml"):
        import osmnx as ox

        graph = ox.load_graphml(path, edge_dtypes={"ferry": _to_bool})
        for _, _, data in graph.edges(data=True):
            data.setdefault("ferry", False)
        if "crs" in graph.graph and ox.projection.is_projected(graph.graph["crs"]):
            graph = ox.project_graph(graph, to_latlong=True)
    elif name.endswith(RAW_OSM_SUFFIXES):
        node_lonlat, ways = _read_walkable_osm(path)
        if simplify == "osmnx":
            graph = _add_ground_lengths(_graph_from_ways(node_lonlat, ways))
            # osmnx drops components that are one isolated ring; keep them, as one edge each, as the
            # segments build does (a closed footway in a courtyard is still somewhere people walk)
            import osmnx as ox

            graph = ox.simplify_graph(graph, edge_attrs_differ=["ferry"], remove_rings=False)
            graph = _rings_as_loops(graph, ways)
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
        atomic_pickle(graph, cache_file)
    return _project(graph, to_crs)


def load_walk_arrays(
    path: str | Path,
    *,
    to_crs=None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    ways: str = "walk",
) -> NetworkArrays:
    """
    Read a walking network from an OSM file straight into :class:`~coverage.reach.NetworkArrays`.

    For raw OSM (.osm XML, .osm.pbf, .osm.bz2, …) the ways are read and cut
    exactly as :func:`load_walk_network` does, but no networkx graph is
    built: the arrays come from the cut stretches directly, which is what a
    batch run needs and several times faster on a county extract. The result
    holds the same nodes (same order, same coordinates) and the same
    stretches, lengths, ferry flags and geometries, in the same order and
    orientation, as ``reach.network_arrays(load_walk_network(path))``, except
    that every stretch is one row: where two OSM ways run over the very same
    nodes (a duplicated way), both stay, while ``network_arrays`` keeps one
    (walking times are the same). Any other format (osmnx GraphML) is loaded
    as a graph and converted with :func:`coverage.reach.network_arrays`.

    Parameters
    ----------
    path
        The OSM or GraphML file.
    to_crs
        Target CRS; default the local UTM zone of the network's median node,
        as :func:`load_walk_network` picks it.
    cache_dir
        Where parsed networks are cached, keyed by the file's sha256; default
        :func:`default_cache_dir`. The arrays are cached in the local UTM zone
        beside (not instead of) the graphs of :func:`load_walk_network`.
    use_cache
        Read and write that cache.
    ways
        Which OSM ways make the network: ``"walk"`` (default: the walking
        network, exactly as before), ``"drive"`` (osmnx's ``drive`` filter:
        motorways and trunk roads in, paths and service roads out, car
        ferries) or ``"all"`` (every way in use, for profiles such as the
        e-bike that pick their highway classes from it). Each selection is
        cached separately. A GraphML file is used as it is, whatever ``ways``.

    Returns
    -------
    coverage.reach.NetworkArrays
        One row per undirected stretch, oriented from the lower node position
        to the higher; lengths are ground metres (:mod:`coverage.lengths`), coordinates metres in
        ``crs``. ``edge_highway`` holds each stretch's OSM highway class and
        ``edge_oneway`` its way's one-way rule relative to u → v (walking
        ignores it).

    Raises
    ------
    InputDataError
        The file is missing, unreadable, of an unknown format or has no walkable way.
    """
    _way_filter(ways)  # an unknown selection fails before any file is read
    path = Path(path)
    if not path.exists():
        raise InputDataError("network file not found", path=path, hint="check inputs.network in the study file")
    name = path.name.lower()
    if name.endswith(".graphml") or not name.endswith(RAW_OSM_SUFFIXES):
        return network_arrays(load_walk_network(path, to_crs=to_crs, cache_dir=cache_dir, use_cache=use_cache))
    cache_file = _arrays_cache_file(path, cache_dir, ways) if use_cache else None
    if cache_file is not None and cache_file.exists():
        with open(cache_file, "rb") as handle:
            net = _arrays_from_cache(pickle.load(handle))
        return _project_arrays(net, to_crs)
    node_lonlat, kept = _read_walkable_osm(path, ways)
    net = _arrays_from_segments(_walk_segments(node_lonlat, kept, low_end_first=True))
    del node_lonlat, kept
    if cache_file is not None:
        atomic_pickle(_arrays_to_cache(net), cache_file)
    return _project_arrays(net, to_crs)


def _arrays_cache_file(path: Path, cache_dir: str | Path | None, ways: str = "walk") -> Path:
    """Cache file of the arrays of ``path``: by content, way selection, build and osmnx version (edge lengths)."""
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    selection = "" if ways == "walk" else f"{ways}-"
    key = f"{file_sha256(path)}-v{NETWORK_BUILD_VERSION}-arrays-{selection}ox{_osmnx_version()}"
    return cache_root / "networks" / f"{key}.pickle"


def _graph_edge_order(edge_u: np.ndarray, edge_v: np.ndarray, n_nodes: int) -> np.ndarray:
    """
    Order in which :func:`coverage.reach.network_arrays` meets these edges in the graph of :func:`_segments_graph`.

    networkx walks the nodes in order, each node's neighbours in the order
    they were first linked to it and, per neighbour, the parallel edges in the
    order added; every edge is met first from its lower end (``edge_u``,
    edges oriented u ≤ v and listed in the order they were added).

    Returns
    -------
    numpy.ndarray
        Edge positions in that order.
    """
    n_edges = len(edge_u)
    if n_edges == 0:
        return np.empty(0, dtype=np.int64)
    pair = edge_u * np.int64(max(n_nodes, 1)) + edge_v
    _, first_of_pair, pair_of_edge = np.unique(pair, return_index=True, return_inverse=True)
    # stable: parallel edges of one pair keep the order they were added in
    return np.argsort(edge_u * np.int64(n_edges) + first_of_pair[pair_of_edge], kind="stable")


def _arrays_from_segments(segments: _WalkSegments) -> NetworkArrays:
    """The arrays of segments cut with ``low_end_first``, edges in the order ``network_arrays`` gives."""
    order = _graph_edge_order(segments.edge_u, segments.edge_v, len(segments.node_ids))
    return NetworkArrays(
        node_ids=segments.node_ids,
        node_x=segments.node_x,
        node_y=segments.node_y,
        edge_u=segments.edge_u[order],
        edge_v=segments.edge_v[order],
        edge_length_m=segments.edge_length_m[order],
        edge_ferry=segments.edge_ferry[order],
        edge_geometry=segments.edge_geometry[order],
        crs=segments.crs,
        edge_highway=segments.edge_highway[order],
        edge_oneway=segments.edge_oneway[order],
        edge_name=None if segments.edge_name is None else segments.edge_name[order],
    )


def _arrays_to_cache(net: NetworkArrays) -> dict:
    """Plain arrays to pickle: geometries as their vertices (exact) and vertex counts, no shapely objects."""
    payload = {field.name: getattr(net, field.name) for field in dataclasses.fields(net)}
    payload["edge_geometry"] = shapely.get_coordinates(net.edge_geometry)
    payload["edge_vertex_count"] = shapely.get_num_coordinates(net.edge_geometry)
    return payload


def _arrays_from_cache(payload: dict) -> NetworkArrays:
    """Inverse of :func:`_arrays_to_cache`."""
    payload = dict(payload)
    vertex_count = payload.pop("edge_vertex_count")
    owner = np.repeat(np.arange(len(vertex_count), dtype=np.int64), vertex_count)
    geometry = shapely.linestrings(payload["edge_geometry"], indices=owner) if len(owner) \
        else np.empty(0, dtype=object)
    payload["edge_geometry"] = geometry
    return NetworkArrays(**payload)


def _project_arrays(net: NetworkArrays, to_crs) -> NetworkArrays:
    """
    Network arrays in ``to_crs``; the arrays themselves when that is their CRS (or ``to_crs`` is None).

    Node coordinates and every geometry vertex are transformed from the
    arrays' CRS with one pyproj transformer, as osmnx's ``project_graph``
    transforms a graph's nodes and edges; lengths stay the ground metres of the build.
    """
    from pyproj import CRS, Transformer

    if to_crs is None:
        return net
    target = CRS.from_user_input(to_crs)
    current = CRS.from_user_input(net.crs)
    if target == current:
        return net
    transformer = Transformer.from_crs(current, target, always_xy=True)

    def transform_xy(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    node_x, node_y = transformer.transform(net.node_x, net.node_y)
    return dataclasses.replace(
        net,
        node_x=np.asarray(node_x, dtype=float),
        node_y=np.asarray(node_y, dtype=float),
        edge_geometry=shapely.transform(net.edge_geometry, transform_xy),
        crs=target,
    )


def _to_bool(value) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes"}


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
    import osmnx as ox

    return ox.project_graph(graph, to_crs=to_crs)


def graph_summary(graph: nx.MultiDiGraph) -> dict[str, int | float]:
    """
    Sizes a planner can check: nodes, edges, walkable length (km), ferry lines, components.

    Parameters
    ----------
    graph
        A graph from :func:`load_walk_network`.
    """
    import networkx as nx

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


def _round_like_python(values: np.ndarray, decimals: int) -> np.ndarray:
    """
    ``round(value, decimals)`` of each value, as Python rounds it (the exact decimal, half to even), in arrays.

    ``numpy.round`` scales by ``10**decimals`` first, which can land a value
    just short of or past a half; those few values (within 1e-6 of a half
    after scaling) are rounded by Python itself, so every result is the
    float Python gives.
    """
    values = np.asarray(values, dtype=float)
    scaled = values * 10.0 ** decimals
    out = np.round(values, decimals)
    near_half = np.flatnonzero(np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6)
    if len(near_half):
        out[near_half] = [round(value, decimals) for value in values[near_half].tolist()]
    return out


def network_summary(net: NetworkArrays) -> dict[str, int | float]:
    """
    :func:`graph_summary` from network arrays: nodes, edges, walkable length (km), ferry lines, components.

    For arrays from :func:`load_walk_arrays` on raw OSM every figure equals
    ``graph_summary(load_walk_network(path))``: ``edges`` counts each stretch
    once per walking direction (twice), as the graph stores it; ``walkable_km``
    sums the stretches that are not ferries, each rounded to the centimetre;
    ``components`` are weakly connected components with ferry lines as links,
    isolated nodes counted. Two cases differ: a single way that runs over the
    same stretch twice (out and back) counts twice here in ``walkable_km`` /
    ``ferry_edges`` and once in ``graph_summary`` (whose street key includes
    the way id); and for arrays from a GraphML whose one-way streets the
    graph stores once (and whose parallel edges ``network_arrays`` folds),
    ``edges`` and ``walkable_km`` differ from the graph's: walking uses every
    street both ways.

    Parameters
    ----------
    net
        The network arrays.

    Returns
    -------
    dict
        ``nodes``, ``edges`` (directed: two per undirected row), ``walkable_km``
        (kilometres, 3 decimals), ``ferry_edges`` (undirected rows),
        ``components``.
    """
    # the same rounding and summation order as graph_summary, which meets the streets in this order
    length_m = sum(_round_like_python(net.edge_length_m[~net.edge_ferry], 2).tolist())
    components = int(node_components(net, with_ferries=True).max()) + 1 if net.n_nodes else 0
    return {
        "nodes": net.n_nodes,
        "edges": 2 * net.n_edges,
        "walkable_km": round(length_m / 1000.0, 3),
        "ferry_edges": int(net.edge_ferry.sum()),
        "components": components,
    }


def edges_frame(graph: nx.MultiDiGraph) -> pd.DataFrame:
    """Edge attributes as a DataFrame (u, v, key, length, highway, ferry), for inspection."""
    rows: Iterable = ((u, v, k, d.get("length"), d.get("highway"), bool(d.get("ferry", False)))
                      for u, v, k, d in graph.edges(keys=True, data=True))
    return pd.DataFrame(rows, columns=["u", "v", "key", "length", "highway", "ferry"])
