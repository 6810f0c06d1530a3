"""Isochrone polygons from one network search: reached edge pieces cut in arrays, buffered and unioned by grid cell."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shapely
from scipy.sparse.csgraph import dijkstra

from coverage import profiles, reach
from coverage.ferry import FerryPolicy

#: side (metres) of the grid cells whose pieces are buffered and unioned together before the cells are joined
GRID_CELL_M = 1000.0
#: pieces shorter than this fraction of their edge are dropped (a point, not a street)
_MIN_FRACTION = 1e-12


def _costs(net, walk_speed_mps, ferry, edge_seconds):
    """Directed edge seconds of the search (walking at one speed, or a profile's precomputed costs)."""
    costs = reach._search_costs(net, walk_speed_mps, ferry, edge_seconds)
    backward = costs.forward if costs.backward is None else costs.backward
    return costs, costs.forward, backward


def node_seconds(
    net: reach.NetworkArrays,
    sources: reach.Snap,
    *,
    limit: float,
    walk_speed_mps: float | None,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
    min_only: bool = True,
) -> np.ndarray:
    """
    Seconds from the sources to every node, bounded at ``limit`` (inf beyond).

    One multi-source Dijkstra (``min_only``: the nearest source; else one
    row per source), on the same graph as :func:`coverage.reach.nearest_facility`.
    """
    costs, _, _ = _costs(net, walk_speed_mps, ferry, edge_seconds)
    usable = np.flatnonzero(sources.on_network)
    graph = reach._node_graph(net, costs, sources)
    result = dijkstra(graph, directed=True, indices=net.n_nodes + usable, limit=limit, min_only=min_only)
    return result[..., : net.n_nodes]


def reached_pieces(
    net: reach.NetworkArrays,
    sources: reach.Snap,
    node_cost: np.ndarray,
    *,
    limit: float,
    walk_speed_mps: float | None,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
    group: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """
    Which stretch of which walkable edge is reached within ``limit``, as fractions along each edge.

    The same rule as :func:`coverage.reach.reached_segments` (whole edges
    where the two ends' remaining time together spans the edge, else a
    piece from each reached end cut at the exact remaining time, plus the
    stretch of each source's own edge around it), in arrays; the edge cost
    in each direction is its own (a profile's one-way streets and road
    speeds), so the cut follows the travel mode.

    Parameters
    ----------
    net, sources
        Network arrays and the snapped sources.
    node_cost
        :func:`node_seconds` (``(n_nodes,)``, or ``(n_sources, n_nodes)``
        with one row per on-network source when ``group`` is given).
    limit
        Seconds.
    walk_speed_mps, ferry, edge_seconds
        As in :func:`coverage.reach.nearest_facility` (the access legs are at ``walk_speed_mps``).
    group
        Group label per on-network source (e.g. the facility); then each
        piece carries the group it belongs to.

    Returns
    -------
    tuple
        ``edge``, ``start``, ``end`` (fractions 0..1 of the edge, from its u end) and ``group`` per piece.
    """
    costs, forward, backward = _costs(net, walk_speed_mps, ferry, edge_seconds)
    usable = np.flatnonzero(sources.on_network)
    node_cost = np.atleast_2d(node_cost)
    groups = np.zeros(len(node_cost), np.int64) if group is None else np.asarray(group, np.int64)
    walk = ~net.edge_ferry
    edges, starts, ends, labels = [], [], [], []
    with np.errstate(invalid="ignore", divide="ignore"):
        for row, label in zip(node_cost, groups):
            # fraction of each edge reachable from its u end (running u → v) and from its v end
            from_u = np.clip((limit - row[net.edge_u]) / forward, 0.0, 1.0)
            from_v = np.clip((limit - row[net.edge_v]) / backward, 0.0, 1.0)
            from_u = np.where(np.isfinite(from_u), from_u, 0.0)
            from_v = np.where(np.isfinite(from_v), from_v, 0.0)
            whole = walk & (from_u + from_v >= 1.0)
            part_u = walk & ~whole & (from_u > _MIN_FRACTION)
            part_v = walk & ~whole & (from_v > _MIN_FRACTION)
            for mask, s, t in ((whole, 0.0, 1.0), (part_u, 0.0, from_u), (part_v, 1.0 - from_v, 1.0)):
                e = np.flatnonzero(mask)
                edges.append(e)
                starts.append(np.broadcast_to(s, len(net.edge_u))[e] if np.ndim(s) else np.full(len(e), s))
                ends.append(np.broadcast_to(t, len(net.edge_u))[e] if np.ndim(t) else np.full(len(e), t))
                labels.append(np.full(len(e), label))
    # each source's own edge: from its position both ways, as far as the time left after the access leg
    e = sources.edge[usable]
    remaining = limit - sources.access_m[usable] / costs.speed
    with np.errstate(invalid="ignore", divide="ignore"):
        ahead = np.nan_to_num(np.clip(remaining / forward[e], 0.0, None), nan=0.0)
        behind = np.nan_to_num(np.clip(remaining / backward[e], 0.0, None), nan=0.0)
    centre = sources.fraction[usable]
    own = (remaining > 0) & walk[e]
    edges.append(e[own])
    starts.append(np.clip(centre - behind, 0.0, 1.0)[own])
    ends.append(np.clip(centre + ahead, 0.0, 1.0)[own])
    own_group = np.zeros(len(usable), np.int64) if group is None else np.asarray(group, np.int64)
    labels.append(own_group[own])
    edge = np.concatenate(edges).astype(np.int64)
    start, end = np.concatenate(starts).astype(float), np.concatenate(ends).astype(float)
    label = np.concatenate(labels).astype(np.int64)
    keep = end - start > _MIN_FRACTION
    return edge[keep], start[keep], end[keep], label[keep]


def cut_lines(geometries: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """
    The stretch of each line between two fractions of its length, for many lines at once.

    Equivalent to ``shapely.ops.substring(line, start, end, normalized=True)``
    per line (for ``start < end``), without a Python loop: the end points by
    ``shapely.line_interpolate_point``, the vertices in between by
    cumulative-length arithmetic on ``shapely.get_coordinates``.
    """
    n = len(geometries)
    if n == 0:
        return np.empty(0, dtype=object)
    coords, part = shapely.get_coordinates(geometries, return_index=True)
    # cumulative length of every vertex along its own line
    step = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    step = np.concatenate([[0.0], np.where(part[1:] == part[:-1], step, 0.0)])
    running = np.cumsum(step)
    first = np.searchsorted(part, np.arange(n))
    along = running - running[first][part]
    length = along[np.r_[first[1:], len(part)] - 1]
    a, b = start * length, end * length
    inside = (along > a[part]) & (along < b[part])
    head = shapely.get_coordinates(shapely.line_interpolate_point(geometries, start, normalized=True))
    tail = shapely.get_coordinates(shapely.line_interpolate_point(geometries, end, normalized=True))
    order_in_line = np.arange(len(part)) - first[part]
    xy = np.concatenate([head, coords[inside], tail])
    owner = np.concatenate([np.arange(n), part[inside], np.arange(n)])
    rank = np.concatenate([np.full(n, -1), order_in_line[inside], np.full(n, np.iinfo(np.int64).max)])
    order = np.lexsort((rank, owner))
    return shapely.linestrings(xy[order], indices=owner[order])


def _cell_keys(lines: np.ndarray, group: np.ndarray, origin: np.ndarray, shape: tuple[int, int],
               cell_m: float) -> np.ndarray:
    """Grid cell (``cell_m`` metres, by the piece's midpoint, from ``origin``) and group of each line, as one key."""
    middle = shapely.get_coordinates(shapely.line_interpolate_point(lines, 0.5, normalized=True))
    cell = np.floor((middle - origin) / cell_m).astype(np.int64)
    n_x, n_y = shape
    cell = np.clip(cell, 0, [n_x - 1, n_y - 1])
    return (group * n_y + cell[:, 1]) * n_x + cell[:, 0]


def _union_cells(buffers: np.ndarray, key: np.ndarray, prior: dict | None = None, *,
                 threads: int = 1) -> dict:
    """
    Per key, the union of its buffers (and of ``prior[key]``, an area already unioned there); other keys of ``prior`` kept.

    The cells go to GEOS in a few calls, not one per cell: cells holding a
    similar number of pieces (within a factor of two) form one table, a row
    per cell padded with None, unioned row by row in one
    ``shapely.union_all(table, axis=1)``, and each table is split over
    ``threads`` threads (GEOS releases the GIL). Few calls matter when the
    isochrones are drawn beside other work (:func:`coverage.pipeline.run_study`):
    each return to Python waits for the GIL. The result does not depend on
    ``threads``.
    """
    out = dict(prior or {})
    if len(buffers) == 0:
        return out
    buffers = np.asarray(buffers, dtype=object)
    key = np.asarray(key, np.int64)
    again = np.array([k for k in np.unique(key).tolist() if k in out], dtype=np.int64)
    if len(again):
        # a cell's area so far goes first in its row
        earlier = np.empty(len(again), dtype=object)
        earlier[:] = [out[k] for k in again.tolist()]
        key, buffers = np.concatenate([again, key]), np.concatenate([earlier, buffers])
    order = np.argsort(key, kind="stable")
    key, buffers = key[order], buffers[order]
    cells, first, counts = np.unique(key, return_index=True, return_counts=True)
    cell_of = np.repeat(np.arange(len(cells)), counts)
    rank = np.arange(len(key)) - first[cell_of]
    unions = np.empty(len(cells), dtype=object)
    single = counts == 1
    unions[single] = buffers[first[single]]
    size_class = np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    tasks = []
    for size in np.unique(size_class[~single]).tolist():
        members = np.flatnonzero(~single & (size_class == size))
        row = np.full(len(cells), -1, np.int64)
        row[members] = np.arange(len(members))
        table = np.full((len(members), int(counts[members].max())), None, dtype=object)
        pieces = np.flatnonzero(row[cell_of] >= 0)
        table[row[cell_of[pieces]], rank[pieces]] = buffers[pieces]
        for part in np.array_split(np.arange(len(members)), min(max(threads, 1), len(members))):
            tasks.append((members[part], table[part]))

    def union(task):
        members, table = task
        return members, shapely.union_all(table, axis=1)

    if threads > 1 and len(tasks) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            done = list(pool.map(union, tasks))
    else:
        done = [union(task) for task in tasks]
    for members, result in done:
        unions[members] = result
    out.update(zip(cells.tolist(), unions))
    return out


def _join_cells(cells: dict, n_cells: int, n_groups: int) -> np.ndarray:
    """One (Multi)Polygon per group from its cells' areas (:func:`_union`), empty Polygon where none."""
    out = np.array([shapely.Polygon() for _ in range(n_groups)], dtype=object)
    if not cells:
        return out
    keys = np.array(sorted(cells), dtype=np.int64)
    areas = np.array([cells[k] for k in keys], dtype=object)
    label = keys // n_cells
    bounds = np.r_[0, np.flatnonzero(np.diff(label)) + 1, len(label)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[label[a]] = areas[a] if b - a == 1 else _union(areas[a:b])
    return out


def _grid(lines: np.ndarray, cell_m: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Origin and (columns, rows) of the grid of ``cell_m`` metre cells over the lines."""
    low, high = shapely.bounds(lines)[:, :2].min(axis=0), shapely.bounds(lines)[:, 2:].max(axis=0)
    shape = np.floor((high - low) / cell_m).astype(np.int64) + 1
    return low, (int(shape[0]), int(shape[1]))


def buffered_union(lines: np.ndarray, buffer_m: float, *, group: np.ndarray | None = None,
                   cell_m: float = GRID_CELL_M, threads: int = 1) -> np.ndarray:
    """
    The union of the lines buffered by ``buffer_m`` metres, one geometry per group.

    The pieces are buffered in one vectorised call, gathered by group and by
    a coarse grid cell (``cell_m`` metres, by the piece's midpoint), unioned
    per cell (on ``threads`` threads), and the cells of a group are then
    unioned: many small unions of neighbours instead of one union over the
    whole study; the cells are joined by a disjoint-subset union
    (:func:`_union`: separate villages are unioned apart).

    Returns
    -------
    numpy.ndarray
        One (Multi)Polygon per group ``0 … group.max()`` (empty Polygon where none).
    """
    group = np.zeros(len(lines), np.int64) if group is None else np.asarray(group, np.int64)
    n_groups = int(group.max()) + 1 if len(group) else 1
    if len(lines) == 0:
        return _join_cells({}, 1, n_groups)
    origin, shape = _grid(lines, cell_m)
    key = _cell_keys(lines, group, origin, shape, cell_m)
    cells = _union_cells(shapely.buffer(lines, buffer_m, quad_segs=reach.ISOCHRONE_QUAD_SEGS), key, threads=threads)
    return _join_cells(cells, shape[0] * shape[1], n_groups)


def _union(parts: np.ndarray):
    """
    Union of polygons that fall into groups apart from each other (the villages of a county, the tiles of a town).

    GEOS's disjoint-subset union (shapely >= 2.1) unions each group of
    overlapping envelopes on its own: the same area as ``union_all``; joining
    the cells of a quarter of Huangpi's isochrones this way makes the whole
    buffered union about 1.25 times faster. Plain ``union_all`` on older shapely.
    """
    union = getattr(shapely, "disjoint_subset_union_all", None)
    return union(parts) if union is not None else shapely.union_all(parts)


def _lines(net: reach.NetworkArrays, edge: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The reached pieces as lines: whole edges as they are, the others cut (:func:`cut_lines`)."""
    lines = net.edge_geometry[edge].copy()
    partial = np.flatnonzero((start > 0.0) | (end < 1.0))
    lines[partial] = cut_lines(lines[partial], start[partial], end[partial])
    return lines


def isochrone(
    net: reach.NetworkArrays,
    sources: reach.Snap,
    *,
    limit: float,
    walk_speed_mps: float | None,
    buffer_m: float = 50.0,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
    node_cost: np.ndarray | None = None,
    threads: int = 1,
):
    """
    Area within ``limit`` seconds of any of the sources: reached street pieces buffered by ``buffer_m`` metres.

    The same area as :func:`coverage.reach.isochrone_polygon`, drawn in one
    vectorised pass; with ``edge_seconds`` (e.g. from
    :func:`coverage.profiles.edge_costs`) it follows a travel profile.
    ``node_cost`` may pass a :func:`node_seconds` searched to a longer
    limit, so several thresholds share one search (:func:`nested_isochrones`
    also shares the unions).

    Returns
    -------
    shapely geometry
        (Multi)Polygon in the working CRS, empty when nothing is reached.
    """
    return nested_isochrones(net, sources, [limit], walk_speed_mps=walk_speed_mps, buffer_m=buffer_m, ferry=ferry,
                             edge_seconds=edge_seconds, node_cost=node_cost, threads=threads)[0]


def nested_isochrones(
    net: reach.NetworkArrays,
    sources: reach.Snap,
    limits,
    *,
    walk_speed_mps: float | None,
    buffer_m: float = 50.0,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
    node_cost: np.ndarray | None = None,
    threads: int = 1,
    cell_m: float = GRID_CELL_M,
) -> list:
    """
    The areas within each of several limits of any of the sources, each built on the one before.

    The area within a longer limit holds the shorter one's: every piece of
    street reached sooner is part of a piece reached later. So each grid
    cell's area at a limit is the union of its area at the limit before and
    the buffers of the pieces not already whole streets then; the streets
    walked whole within 5 minutes are not buffered and unioned again for
    10 and 15. The same areas as :func:`isochrone` per limit.

    Parameters
    ----------
    net, sources, walk_speed_mps, buffer_m, ferry, edge_seconds
        As in :func:`isochrone`.
    limits
        Seconds.
    node_cost
        :func:`node_seconds` searched at least to the longest limit (default: searched here).
    threads
        Threads for the cells' unions (:func:`coverage._threads.default_threads`); the areas do not depend on it.
    cell_m
        Side of the grid cells (metres).

    Returns
    -------
    list
        One (Multi)Polygon per limit, in the order given (empty when nothing is reached).
    """
    limits = [float(limit) for limit in limits]
    out = [shapely.Polygon() for _ in limits]
    if not limits or not sources.on_network.any():
        return out
    if node_cost is None:
        node_cost = node_seconds(net, sources, limit=max(limits), walk_speed_mps=walk_speed_mps, ferry=ferry,
                                 edge_seconds=edge_seconds)
    order = np.argsort(limits, kind="stable")
    pieces = [reached_pieces(net, sources, node_cost, limit=limits[i], walk_speed_mps=walk_speed_mps, ferry=ferry,
                             edge_seconds=edge_seconds)[:3] for i in order]
    lines = [_lines(net, *piece) for piece in pieces]
    if len(lines[-1]) == 0:
        return out
    # one grid for every limit (the longest limit's pieces hold the others')
    origin, shape = _grid(lines[-1], cell_m)
    cells: dict = {}
    whole_before = np.zeros(net.n_edges, bool)
    for i, (edge, start, end), piece_lines in zip(order, pieces, lines):
        new = ~whole_before[edge]
        if new.any():
            key = _cell_keys(piece_lines[new], np.zeros(int(new.sum()), np.int64), origin, shape, cell_m)
            buffers = shapely.buffer(piece_lines[new], buffer_m, quad_segs=reach.ISOCHRONE_QUAD_SEGS)
            cells = _union_cells(buffers, key, cells, threads=threads)
        out[i] = _join_cells(cells, shape[0] * shape[1], 1)[0]
        whole_before[edge[(start <= 0.0) & (end >= 1.0)]] = True
    return out


def isochrones_by_source(
    net: reach.NetworkArrays,
    sources: reach.Snap,
    thresholds_s,
    *,
    walk_speed_mps: float | None,
    buffer_m: float = 50.0,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
    max_cells: int = 20_000_000,
    cell_m: float = GRID_CELL_M,
    threads: int = 1,
) -> dict[float, np.ndarray]:
    """
    One isochrone per source and threshold, from one bounded search per chunk of sources.

    Each threshold is drawn on its own: building one on the shorter one's,
    as :func:`nested_isochrones` does for a kind's union, was measured
    slower per source (a quarter of Huangpi, 461 facilities: 7.4 s against
    6.9 s), the areas of one source being small.

    Parameters
    ----------
    net, sources
        Network arrays and the snapped sources (e.g. every facility).
    thresholds_s
        Limits (seconds).
    walk_speed_mps, buffer_m, ferry, edge_seconds
        As in :func:`isochrone`.
    max_cells
        Upper bound on (sources in a chunk) × (nodes) costs held at once.
    cell_m, threads
        Side of the grid cells (metres) and threads for their unions (the areas do not depend on it).

    Returns
    -------
    dict
        Threshold → array of one (Multi)Polygon per source (empty for sources off the network).
    """
    thresholds_s = sorted(float(t) for t in thresholds_s)
    n = len(sources)
    out = {t: np.array([shapely.Polygon() for _ in range(n)], dtype=object) for t in thresholds_s}
    usable = np.flatnonzero(sources.on_network)
    per_chunk = max(1, int(max_cells // max(net.n_nodes, 1)))
    for begin in range(0, len(usable), per_chunk):
        chunk = usable[begin: begin + per_chunk]
        snap = sources.subset(chunk)
        costs = node_seconds(net, snap, limit=max(thresholds_s), walk_speed_mps=walk_speed_mps, ferry=ferry,
                             edge_seconds=edge_seconds, min_only=False)
        for limit in thresholds_s:
            edge, start, end, label = reached_pieces(
                net, snap, costs, limit=limit, walk_speed_mps=walk_speed_mps, ferry=ferry,
                edge_seconds=edge_seconds, group=np.arange(len(chunk)),
            )
            lines = _lines(net, edge, start, end)
            polygons = buffered_union(lines, buffer_m, group=label, cell_m=cell_m, threads=threads)
            out[limit][chunk[: len(polygons)]] = polygons[: len(chunk)]
    return out


def profile_network(config, profile, points, working_crs, loaded: dict | None = None):
    """
    A travel profile's usable network and ``points`` snapped to it, as :func:`coverage.pipeline.profile_networks` does.

    Parameters
    ----------
    config
        The study (network file, ``max_access_m``, ferry policy).
    profile
        A :class:`coverage.profiles.TravelProfile`.
    points
        Points in ``working_crs`` (GeoSeries or an (n, 2) array of x, y metres).
    working_crs
        The study's working CRS.
    loaded
        Way selection → loaded arrays, filled and reused across calls.

    Returns
    -------
    tuple
        (usable :class:`coverage.reach.NetworkArrays`, :class:`coverage.reach.Snap`, directed edge seconds).
    """
    params = config.parameters
    loaded = {} if loaded is None else loaded
    if profile.network not in loaded:
        loaded[profile.network] = profiles.load_profile_network(config.network, profile, to_crs=working_crs)
    usable = profiles.usable_network(loaded[profile.network], profile, ferry=params.ferry)
    snap = reach.snap_points(usable, points, max_access_m=params.max_access_m)
    return usable, snap, profiles.edge_costs(usable, profile, ferry=params.ferry)


def snapped_positions(net: reach.NetworkArrays, snap: reach.Snap) -> np.ndarray:
    """Where snapped points sit on their edges, (n, 2) metres; NaN for points off the network."""
    xy = np.full((len(snap), 2), np.nan)
    on = np.flatnonzero(snap.on_network)
    if len(on):
        points = shapely.line_interpolate_point(net.edge_geometry[snap.edge[on]], snap.fraction[on], normalized=True)
        xy[on] = shapely.get_coordinates(points)
    return xy
