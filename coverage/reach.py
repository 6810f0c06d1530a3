"""Walking reach over a network: snap points to edges, multi-source Dijkstra, catchments, isochrones.

Everything here works on plain arrays built once from the graph
(:class:`NetworkArrays`): a CSR matrix of edge costs, the edge endpoints, the
edge lengths (metres) and geometries. Points (homes, facilities, candidate
sites) are attached to the nearest point on the nearest walkable edge, not to
the nearest node, and the straight-line access leg is walked at the same
speed. Costs are seconds (time mode) or metres (distance mode: speed 1 m/s,
ferries counted by their length).

The searches take either one walking speed (edge cost = length / speed, the
same both ways) or precomputed directed edge costs (``edge_seconds=(forward,
backward)``, e.g. from :func:`coverage.profiles.edge_costs`: per highway
class, one-way streets closed against their direction), as scipy's csgraph
takes a cost matrix; :func:`network_csgraph` gives that matrix itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from coverage.ferry import FerryPolicy
from coverage.network_arrays import (
    HIGHWAY_CLASSES, NetworkArrays, Snap, highway_code, network_arrays, network_arrays_from_edges, node_components,
    point_components,
)
from coverage.snapping import (
    STRAY_FRAGMENT_MAX_NODES, _points_xy, attach_off_fragments, nearest_named_street, snap_points,
    stray_fragment_edges,
)

#: the arrays (coverage.network_arrays) and snapping (coverage.snapping) stay reachable here
__all__ = [
    "HIGHWAY_CLASSES", "NetworkArrays", "Snap", "STRAY_FRAGMENT_MAX_NODES", "attach_off_fragments", "catchment_matrix",
    "edge_costs", "highway_code", "isochrone_polygon", "nearest_facility", "network_arrays",
    "network_arrays_from_edges", "network_csgraph", "node_components", "point_components", "reached_segments",
    "nearest_named_street", "snap_points", "stray_fragment_edges", "_points_xy",
]

# scipy's csgraph treats a stored 0 as "no edge" in some paths; give zero-cost
# links a negligible positive cost instead (1 microsecond or micrometre)
_MIN_COST = 1e-6


def edge_costs(
    net: NetworkArrays,
    *,
    walk_speed_mps: float | None,
    ferry: FerryPolicy | None = None,
) -> np.ndarray:
    """
    Cost of traversing each edge.

    Parameters
    ----------
    net
        The network arrays.
    walk_speed_mps
        Walking speed (metres per second); ``None`` for distance mode, where
        costs are metres.
    ferry
        Ferry policy; ``None`` or ``enabled=False`` excludes ferries (cost inf).
        In time mode a ferry costs boarding wait + crossing at the ferry's
        speed; in distance mode its length.

    Returns
    -------
    numpy.ndarray
        Seconds (time mode) or metres (distance mode) per edge.
    """
    speed = 1.0 if walk_speed_mps is None else float(walk_speed_mps)
    costs = net.edge_length_m / speed
    if net.edge_ferry.any():
        if ferry is None or not ferry.enabled:
            costs = np.where(net.edge_ferry, np.inf, costs)
        elif walk_speed_mps is not None:
            ferry_seconds = ferry.wait_seconds + net.edge_length_m / ferry.speed_mps
            costs = np.where(net.edge_ferry, ferry_seconds, costs)
    return costs


#: how many link tables (one per edge-cost array, e.g. per walking speed) stay cached on the arrays
_LINK_CACHE_SIZE = 4


def _sorted_links(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int, n_cols: int):
    """
    CSR arrays (indptr, indices, data) of the links, columns sorted within rows.

    Parallel links keep the cheapest (a CSR built from duplicates would sum
    them); costs are at least ``_MIN_COST``.
    """
    key = rows.astype(np.int64) * np.int64(n_cols) + cols
    weight = np.maximum(weights, _MIN_COST)
    order = np.argsort(key)
    key, weight = key[order], weight[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    if len(starts) < len(key):
        weight = np.minimum.reduceat(weight, starts)
        key = key[starts]
    row = key // n_cols
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=n_rows), out=indptr[1:])
    return indptr, key - row * n_cols, weight


@dataclass(frozen=True)
class _Costs:
    """
    Edge costs of one search.

    ``forward`` is the cost u → v of every edge, ``backward`` the cost v → u
    (``None``: the same as ``forward``, which is then length / ``speed``, the
    walking case, computed with the original operations). ``speed`` (metres
    per second, 1 in distance mode) prices the straight access legs and, when
    ``backward`` is None, the parts of edges.
    """

    forward: np.ndarray
    backward: np.ndarray | None
    speed: float


def _part(fraction: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """``fraction`` of an edge's cost; 0 for a zero fraction even where the edge is closed (inf)."""
    with np.errstate(invalid="ignore"):
        return np.where(fraction == 0.0, 0.0, fraction * cost)


def _network_links(net: NetworkArrays, costs: _Costs | np.ndarray):
    """The links between nodes, both ways, as CSR arrays; cached on the arrays per cost array (pair)."""
    if not isinstance(costs, _Costs):
        costs = _Costs(np.asarray(costs, dtype=float), None, 1.0)
    forward = np.ascontiguousarray(costs.forward, dtype=float)
    hasher = hashlib.blake2b(forward.view(np.uint8), digest_size=16)
    if costs.backward is not None:
        hasher.update(b"backward")
        hasher.update(np.ascontiguousarray(costs.backward, dtype=float).view(np.uint8))
    digest = hasher.digest()
    cache = net.__dict__.setdefault("_link_cache", {})
    if digest in cache:
        return cache[digest]
    if costs.backward is None:
        usable = np.isfinite(forward)
        u, v, c = net.edge_u[usable], net.edge_v[usable], forward[usable]
        links = _sorted_links(np.concatenate([u, v]), np.concatenate([v, u]), np.concatenate([c, c]),
                              net.n_nodes, net.n_nodes)
    else:
        backward = np.asarray(costs.backward, dtype=float)
        ahead, back = np.isfinite(forward), np.isfinite(backward)
        links = _sorted_links(np.concatenate([net.edge_u[ahead], net.edge_v[back]]),
                              np.concatenate([net.edge_v[ahead], net.edge_u[back]]),
                              np.concatenate([forward[ahead], backward[back]]), net.n_nodes, net.n_nodes)
    # the run's isochrone thread shares the arrays: evict without assuming no one else just did
    while len(cache) >= _LINK_CACHE_SIZE:
        try:
            cache.pop(next(iter(cache)), None)
        except (StopIteration, RuntimeError):
            break
    cache[digest] = links
    return links


def network_csgraph(net: NetworkArrays, forward_seconds: np.ndarray, backward_seconds: np.ndarray) -> sparse.csr_matrix:
    """
    Directed node-to-node CSR matrix of per-edge costs, for ``scipy.sparse.csgraph``.

    Parameters
    ----------
    net
        The network arrays.
    forward_seconds, backward_seconds
        Cost of each edge u → v and v → u (seconds, or any additive unit);
        inf where the edge may not be used in that direction. Parallel
        edges keep the cheaper; costs are at least 1e-6.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (n_nodes, n_nodes); entry (i, j) is the cost of going from
        node position i to node position j.
    """
    indptr, indices, data = _network_links(
        net, _Costs(np.asarray(forward_seconds, float), np.asarray(backward_seconds, float), 1.0)
    )
    return sparse.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=(net.n_nodes, net.n_nodes))


def _node_graph(net: NetworkArrays, costs: _Costs, sources: Snap | None) -> sparse.csr_matrix:
    """
    Directed CSR over nodes plus one virtual node per source point.

    A virtual node links to both ends of its edge with the access leg plus the
    part of the edge to that end; links only leave it, so no path passes
    through a facility's position. The node-to-node rows are built once per
    cost array and reused; the virtual rows follow them.
    """
    indptr, indices, data = _network_links(net, costs)
    n_virtual = 0 if sources is None else len(sources)
    size = net.n_nodes + n_virtual
    if n_virtual:
        speed = costs.speed
        on = np.flatnonzero(sources.on_network)
        e = sources.edge[on]
        access_cost = sources.access_m[on] / speed
        if costs.backward is None:
            along = sources.fraction[on] * net.edge_length_m[e] / speed
            rest = (1.0 - sources.fraction[on]) * net.edge_length_m[e] / speed
        else:
            # from the point back to u runs against the edge, on to v along it
            along = _part(sources.fraction[on], costs.backward[e])
            rest = _part(1.0 - sources.fraction[on], costs.forward[e])
        rows = np.concatenate([on, on])
        cols = np.concatenate([net.edge_u[e], net.edge_v[e]])
        weights = np.concatenate([access_cost + along, access_cost + rest])
        open_ = np.isfinite(weights)
        v_indptr, v_indices, v_data = _sorted_links(rows[open_], cols[open_], weights[open_], n_virtual, size)
        indptr = np.concatenate([indptr, indptr[-1] + v_indptr[1:]])
        indices = np.concatenate([indices, v_indices])
        data = np.concatenate([data, v_data])
    else:  # never hand out the cached arrays themselves
        indptr, indices, data = indptr.copy(), indices.copy(), data.copy()
    return sparse.csr_matrix((data, indices, indptr), shape=(size, size))


def _point_costs_from_nodes(
    net: NetworkArrays, node_cost: np.ndarray, targets: Snap, costs: _Costs
) -> tuple[np.ndarray, np.ndarray]:
    """
    Cost to each target point given costs at nodes: via the u end or the v end of its edge.

    ``node_cost`` is (n_nodes,) or (k, n_nodes). Returns the cost (same leading
    shape, targets last) and which end (0 = u, 1 = v) gave it.
    """
    speed = costs.speed
    on = targets.on_network
    e = np.where(on, targets.edge, 0)
    if costs.backward is None:
        along = targets.fraction * net.edge_length_m[e] / speed
        rest = (1.0 - targets.fraction) * net.edge_length_m[e] / speed
    else:
        # from u onto the point runs along the edge, from v against it
        along = _part(targets.fraction, costs.forward[e])
        rest = _part(1.0 - targets.fraction, costs.backward[e])
    via_u = node_cost[..., net.edge_u[e]] + along
    via_v = node_cost[..., net.edge_v[e]] + rest
    use_v = via_v < via_u
    best = np.where(use_v, via_v, via_u) + targets.access_m / speed
    best = np.where(on, best, np.inf)
    return best, use_v


def _same_edge_pairs(sources: Snap, targets: Snap) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (source position, target position) of points attached to the same edge."""
    s_on = np.flatnonzero(sources.on_network)
    t_on = np.flatnonzero(targets.on_network)
    if len(s_on) == 0 or len(t_on) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    left = pd.DataFrame({"edge": sources.edge[s_on], "source": s_on})
    right = pd.DataFrame({"edge": targets.edge[t_on], "target": t_on})
    pairs = left.merge(right, on="edge")
    return pairs["source"].to_numpy(np.int64), pairs["target"].to_numpy(np.int64)


def _direct_costs(net, sources: Snap, targets: Snap, s_idx, t_idx, costs: _Costs) -> np.ndarray:
    """Cost along a shared edge: access legs plus the stretch between the two positions."""
    speed = costs.speed
    if costs.backward is None:
        length = net.edge_length_m[sources.edge[s_idx]]
        stretch = np.abs(sources.fraction[s_idx] - targets.fraction[t_idx]) * length
        return (sources.access_m[s_idx] + stretch + targets.access_m[t_idx]) / speed
    e = sources.edge[s_idx]
    step = targets.fraction[t_idx] - sources.fraction[s_idx]
    # ahead of the source runs along the edge (u → v), behind it against it
    stretch = np.where(step >= 0.0, _part(np.abs(step), costs.forward[e]), _part(np.abs(step), costs.backward[e]))
    return (sources.access_m[s_idx] + targets.access_m[t_idx]) / speed + stretch


def _search_costs(
    net: NetworkArrays,
    walk_speed_mps: float | None,
    ferry: FerryPolicy | None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None,
) -> _Costs:
    """The costs of one search: walking at one speed, or precomputed directed edge costs."""
    speed = 1.0 if walk_speed_mps is None else float(walk_speed_mps)
    if edge_seconds is None:
        return _Costs(edge_costs(net, walk_speed_mps=walk_speed_mps, ferry=ferry), None, speed)
    forward, backward = (np.asarray(c, dtype=float) for c in edge_seconds)
    if forward.shape != (net.n_edges,) or backward.shape != (net.n_edges,):
        raise ValueError(f"edge_seconds must be two arrays of {net.n_edges} edge costs, "
                         f"got shapes {forward.shape} and {backward.shape}")
    return _Costs(forward, backward, speed)


def nearest_facility(
    net: NetworkArrays,
    facilities: Snap,
    demand: Snap,
    *,
    walk_speed_mps: float | None = 0.8,
    limit: float = 900.0,
    ferry: FerryPolicy | None = None,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """
    Walking cost from every demand point to its nearest facility, in one pass.

    One multi-source Dijkstra (scipy, ``min_only``) from all facilities at
    once, bounded at ``limit``; each demand point then takes the cheaper of
    its edge's two ends plus the exact part of the edge, plus its access leg.
    A facility on the same edge as the home is reached along the edge.

    Parameters
    ----------
    net
        The network arrays.
    facilities, demand
        Snaps of the facilities and the demand points.
    walk_speed_mps
        Metres per second; ``None`` for distance mode (costs in metres).
    limit
        Longest cost searched (seconds, or metres in distance mode); beyond it
        the cost is inf.
    ferry
        Ferry policy (see :func:`edge_costs`).
    edge_seconds
        Precomputed directed edge costs ``(forward, backward)``: seconds to
        travel each edge u → v and v → u, inf where not allowed, e.g. from
        :func:`coverage.profiles.edge_costs`. The search then uses them
        instead of ``length / walk_speed_mps`` (and ``ferry`` is not
        consulted: the costs already price ferries); ``walk_speed_mps``
        still prices the straight access legs between points and roads.

    Returns
    -------
    pandas.DataFrame
        One row per demand point: ``cost`` (seconds or metres, inf when not
        reached within the limit or off the network), ``facility_index``
        (position into ``facilities``, -1 when none), ``access_m``,
        ``on_network``.
    """
    costs = _search_costs(net, walk_speed_mps, ferry, edge_seconds)
    n_dem = len(demand)
    cost = np.full(n_dem, np.inf)
    facility_index = np.full(n_dem, -1, dtype=np.int64)
    usable = np.flatnonzero(facilities.on_network)
    if len(usable) and n_dem:
        graph = _node_graph(net, costs, facilities)
        node_cost, _, source = dijkstra(
            graph, directed=True, indices=net.n_nodes + usable, limit=limit,
            min_only=True, return_predecessors=True,
        )
        node_cost = node_cost[: net.n_nodes]
        node_source = source[: net.n_nodes] - net.n_nodes  # facility position, negative when none
        cost, use_v = _point_costs_from_nodes(net, node_cost, demand, costs)
        e = np.where(demand.on_network, demand.edge, 0)
        end_node = np.where(use_v, net.edge_v[e], net.edge_u[e])
        facility_index = np.where(np.isfinite(cost), node_source[end_node], -1)
        # a facility on the home's own edge: the walk along the edge may be shorter
        s_idx, t_idx = _same_edge_pairs(facilities, demand)
        if len(s_idx):
            direct = _direct_costs(net, facilities, demand, s_idx, t_idx, costs)
            pairs = pd.DataFrame({"t": t_idx, "s": s_idx, "c": direct}).sort_values(["t", "c", "s"])
            best = pairs.drop_duplicates("t")
            better = best["c"].to_numpy() < cost[best["t"].to_numpy()]
            targets = best["t"].to_numpy()[better]
            cost[targets] = best["c"].to_numpy()[better]
            facility_index[targets] = best["s"].to_numpy()[better]
        cost = np.where(cost <= limit, cost, np.inf)
        facility_index = np.where(np.isfinite(cost), facility_index, -1)
    return pd.DataFrame(
        {
            "cost": cost,
            "facility_index": facility_index,
            "access_m": demand.access_m,
            "on_network": demand.on_network,
        }
    )


def catchment_matrix(
    net: NetworkArrays,
    sites: Snap,
    demand: Snap,
    *,
    walk_speed_mps: float | None = 0.8,
    limit: float = 900.0,
    ferry: FerryPolicy | None = None,
    max_cells_per_chunk: int = 20_000_000,
    edge_seconds: tuple[np.ndarray, np.ndarray] | None = None,
) -> sparse.csr_matrix:
    """
    Which demand points each site reaches within ``limit``, and at what cost.

    Bounded Dijkstra from the sites in chunks (so memory stays bounded),
    exact positions on edges as in :func:`nearest_facility`. The work after
    the searches follows what they reach: from each search only the nodes
    within the limit, from each such node only the demand points on its
    edges (an index of the points by the ends of their edges), and only
    the entries within the limit are kept, so the cost grows with the
    matrix's non-zeros, not with sites × demand points.

    Parameters
    ----------
    net, sites, demand
        Network arrays and snaps of the sites (facilities or candidates) and demand.
    walk_speed_mps, limit, ferry
        As in :func:`nearest_facility`.
    max_cells_per_chunk
        Upper bound on (sites in a chunk) × (nodes) cells held at once.
    edge_seconds
        Precomputed directed edge costs, as in :func:`nearest_facility`.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (n_sites, n_demand); stored values are costs (seconds or metres,
        at least 1e-6), absent entries are beyond the limit.
    """
    costs = _search_costs(net, walk_speed_mps, ferry, edge_seconds)
    usable = np.flatnonzero(sites.on_network)
    n_sites, n_dem = len(sites), len(demand)
    rows, cols, vals = [], [], []
    by_node = _demand_by_node(net, demand, costs, limit)
    if len(usable) and len(by_node.point):
        graph = _node_graph(net, costs, sites)
        # rows of the searches' dense output held at once (at most _CATCHMENT_BLOCK_CELLS cells,
        # so the block's memory is reused from chunk to chunk instead of mapped afresh)
        cells = min(int(max_cells_per_chunk), _CATCHMENT_BLOCK_CELLS)
        lookup = np.full(graph.shape[0], -1, dtype=np.int64)
        for chunk, nodes in _search_tiles(net, sites, usable, _reach_radius_m(net, costs, limit), cells):
            if nodes is None:  # the whole network can be within reach (a fast mode): search it all
                node_cost = dijkstra(graph, directed=True, indices=net.n_nodes + chunk, limit=limit)
                r, c, v = _reached_points(node_cost, net.n_nodes, by_node, limit)
            else:
                # only the streets near the chunk's sites: every node a search reaches lies within the reach
                # radius of its site's edge, and so does every node on the way, so the costs are the same
                sub = _induced_graph(graph, np.concatenate([nodes, net.n_nodes + chunk]), lookup)
                node_cost = dijkstra(sub, directed=True, indices=len(nodes) + np.arange(len(chunk)), limit=limit)
                r, c, v = _reached_points(node_cost, len(nodes), by_node, limit, node_ids=nodes)
            rows.append(chunk[r])
            cols.append(c)
            vals.append(v)
    s_idx, t_idx = _same_edge_pairs(sites, demand)
    if len(s_idx):
        direct = _direct_costs(net, sites, demand, s_idx, t_idx, costs)
        keep = direct <= limit
        rows.append(s_idx[keep])
        cols.append(t_idx[keep])
        vals.append(direct[keep])
    if rows:
        row, col, val = np.concatenate(rows), np.concatenate(cols), np.maximum(np.concatenate(vals), _MIN_COST)
    else:
        row = col = np.empty(0, np.int64)
        val = np.empty(0, float)
    return _cheapest_csr(row, col, val, n_sites, n_dem)


#: cells (sites × nodes) of one block of the searches' dense output: 16 MB, under glibc's largest
#: mmap threshold, so each block reuses the previous one's memory instead of faulting in new pages
_CATCHMENT_BLOCK_CELLS = 2_000_000


@dataclass(frozen=True)
class _DemandByNode:
    """
    The demand points each node leads onto, CSR-like: node ``n`` owns ``start[n]:start[n + 1]``.

    Every on-network point appears under the u end of its edge with the cost
    from u onto it (``offset``) and under the v end with the cost from v;
    ``access`` is the cost of its straight access leg. Ends from which the
    point cannot be reached within the limit (closed directions) are left out.
    """

    start: np.ndarray
    point: np.ndarray
    offset: np.ndarray
    access: np.ndarray


def _demand_by_node(net: NetworkArrays, demand: Snap, costs: _Costs, limit: float) -> _DemandByNode:
    """Index the demand points by the nodes at the ends of their edges (as :func:`_point_costs_from_nodes` prices them)."""
    on = np.flatnonzero(demand.on_network)
    targets = demand.subset(on)
    speed = costs.speed
    e = targets.edge
    # the same operations as _point_costs_from_nodes, so the same numbers
    if costs.backward is None:
        along = targets.fraction * net.edge_length_m[e] / speed
        rest = (1.0 - targets.fraction) * net.edge_length_m[e] / speed
    else:
        # from u onto the point runs along the edge, from v against it
        along = _part(targets.fraction, costs.forward[e])
        rest = _part(1.0 - targets.fraction, costs.backward[e])
    access = targets.access_m / speed
    node = np.concatenate([net.edge_u[e], net.edge_v[e]])
    point = np.concatenate([on, on])
    offset = np.concatenate([along, rest])
    pair_access = np.concatenate([access, access])
    # a node reached at cost >= 0 cannot bring a point past the limit closer than offset + access
    open_ = offset + pair_access <= limit
    node, point, offset, pair_access = node[open_], point[open_], offset[open_], pair_access[open_]
    order = np.argsort(node, kind="stable")
    start = np.zeros(net.n_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(node, minlength=net.n_nodes), out=start[1:])
    return _DemandByNode(start, point[order], offset[order], pair_access[order])


def _reached_points(node_cost: np.ndarray, n_nodes: int, by_node: _DemandByNode, limit: float,
                    node_ids: np.ndarray | None = None):
    """
    (row, demand point, cost) of the points within ``limit``, from a block of bounded searches.

    Only the nodes each search reached are visited, and from each only the
    points on its edges; a point reached from both ends of its edge keeps
    both entries here (:func:`_cheapest_csr` keeps the cheaper). With
    ``node_ids`` the searches ran on part of the network: column ``i`` is
    street node ``node_ids[i]``.
    """
    # street nodes only: a search reaches its own site's virtual node (at 0) and no other site's
    flat = np.flatnonzero(node_cost[:, :n_nodes] <= limit)
    row, column = np.divmod(flat, n_nodes)
    reached = node_cost[row, column]
    node = column if node_ids is None else node_ids[column]
    first = by_node.start[node]
    count = by_node.start[node + 1] - first
    has = count > 0
    row, reached, first, count = row[has], reached[has], first[has], count[has]
    total = int(count.sum())
    # positions into by_node: first[i], first[i] + 1, ... for each reached node i
    ends = np.cumsum(count)
    entry = np.arange(total, dtype=np.int64) + np.repeat(first - (ends - count), count)
    # (node cost + part of the edge) + access leg, in the order _point_costs_from_nodes adds them
    cost = (np.repeat(reached, count) + by_node.offset[entry]) + by_node.access[entry]
    keep = cost <= limit
    return np.repeat(row, count)[keep], by_node.point[entry[keep]], cost[keep]


def _reach_radius_m(net: NetworkArrays, costs: _Costs, limit: float) -> float:
    """
    Metres (straight line, working CRS) beyond which no node is reached within ``limit`` from a site's edge ends.

    A route's straight-line span is at most its length, and each edge's
    length is at most its cost times its length per cost; so within
    ``limit`` nothing lies farther than ``limit`` times the largest length
    per cost of any edge. 1 % and 50 m are added for the working CRS's
    scale and geometry against the ground lengths. Infinite when an edge of
    some length costs nothing.
    """
    backward = costs.forward if costs.backward is None else costs.backward
    fastest = np.minimum(costs.forward, backward)
    length = np.asarray(net.edge_length_m, dtype=float)
    usable = np.isfinite(fastest) & (length > 0)
    if not usable.any():
        return 0.0
    if (fastest[usable] <= 0).any():
        return float("inf")
    return float(limit * np.max(length[usable] / fastest[usable]) * 1.01 + 50.0)


def _search_tiles(net: NetworkArrays, sites: Snap, usable: np.ndarray, radius_m: float, max_cells: int):
    """
    Chunks of sites close together, each with the street nodes within ``radius_m`` of its sites' edge ends.

    Sites are gathered by square tiles of twice the radius (by the u end of
    their edge); each tile's nodes are those in its sites' bounding box
    widened by the radius, and a tile is split so that sites × (nodes +
    sites) stays within ``max_cells``. Yields ``(sites, nodes)``; ``nodes``
    is None (search everything) when the radius is not finite or a tile's
    nodes would be more than half the network.
    """
    if not np.isfinite(radius_m):
        per_chunk = max(1, max_cells // max(net.n_nodes + len(sites), 1))
        for start in range(0, len(usable), per_chunk):
            yield usable[start: start + per_chunk], None
        return
    e = sites.edge[usable]
    ends_x = np.column_stack([net.node_x[net.edge_u[e]], net.node_x[net.edge_v[e]]])
    ends_y = np.column_stack([net.node_y[net.edge_u[e]], net.node_y[net.edge_v[e]]])
    side = max(2.0 * radius_m, 1.0)
    tile_x = np.floor((ends_x[:, 0] - net.node_x.min()) / side).astype(np.int64)
    tile_y = np.floor((ends_y[:, 0] - net.node_y.min()) / side).astype(np.int64)
    order = np.lexsort((tile_x, tile_y))
    key = tile_y[order] * (int(tile_x.max()) + 1) + tile_x[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(key)) + 1, len(order)]
    by_x = np.argsort(net.node_x, kind="stable")
    sorted_x = net.node_x[by_x]
    for a, b in zip(bounds[:-1], bounds[1:]):
        members = order[a:b]
        x0, x1 = ends_x[members].min() - radius_m, ends_x[members].max() + radius_m
        y0, y1 = ends_y[members].min() - radius_m, ends_y[members].max() + radius_m
        near = by_x[np.searchsorted(sorted_x, x0, side="left"): np.searchsorted(sorted_x, x1, side="right")]
        nodes = np.sort(near[(net.node_y[near] >= y0) & (net.node_y[near] <= y1)])
        if len(nodes) > net.n_nodes // 2:
            nodes, width = None, net.n_nodes + len(sites)
        else:
            width = len(nodes) + len(members)
        per_chunk = max(1, max_cells // max(width, 1))
        for start in range(0, len(members), per_chunk):
            yield usable[members[start: start + per_chunk]], nodes


def _induced_graph(graph: sparse.csr_matrix, keep: np.ndarray, lookup: np.ndarray) -> sparse.csr_matrix:
    """
    The links of ``graph`` among the nodes ``keep`` (renumbered 0 … len(keep) − 1 in that order), as CSR.

    Each kept row's links are gathered and those to kept nodes kept, with
    no summing of parallel links. ``lookup`` is an all −1 array of the
    graph's size, used as scratch and left as it was.
    """
    lookup[keep] = np.arange(len(keep))
    try:
        first, count = graph.indptr[keep], graph.indptr[keep + 1] - graph.indptr[keep]
        ends = np.cumsum(count)
        entry = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64) + np.repeat(first - (ends - count), count)
        column = lookup[graph.indices[entry]]
        inside = column >= 0
        row = np.repeat(np.arange(len(keep)), count)[inside]
        indptr = np.zeros(len(keep) + 1, dtype=np.int64)
        np.cumsum(np.bincount(row, minlength=len(keep)), out=indptr[1:])
        return sparse.csr_matrix((graph.data[entry[inside]], column[inside], indptr), shape=(len(keep), len(keep)))
    finally:
        lookup[keep] = -1


def _cheapest_csr(row: np.ndarray, col: np.ndarray, val: np.ndarray, n_rows: int, n_cols: int) -> sparse.csr_matrix:
    """CSR of the entries, columns sorted within rows; of duplicate (row, column) entries the cheapest."""
    key = row.astype(np.int64) * np.int64(n_cols) + col.astype(np.int64)
    # sorted by key alone, then the least value of each run of equal keys (a sort by key and value took 7 times
    # as long on a county's 6 million entries)
    order = np.argsort(key, kind="stable")
    key, val = key[order], val[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    val = np.minimum.reduceat(val, starts) if len(starts) else val
    key = key[first]
    row = key // max(n_cols, 1)
    return sparse.csr_matrix((val, (row, key - row * n_cols)), shape=(n_rows, n_cols))


def reached_segments(
    net: NetworkArrays,
    sources: Snap,
    *,
    walk_speed_mps: float | None,
    limit: float,
    ferry: FerryPolicy | None = None,
) -> np.ndarray:
    """
    The parts of walkable edges reachable within ``limit`` from any of the sources.

    The last edge of each route is cut at the exact remaining cost, so the
    result follows the streets (no convex hulls over unreachable land).

    Returns
    -------
    numpy.ndarray
        shapely LineStrings in the working CRS.
    """
    speed = 1.0 if walk_speed_mps is None else float(walk_speed_mps)
    usable = np.flatnonzero(sources.on_network)
    if len(usable) == 0:
        return np.empty(0, dtype=object)
    costs = _search_costs(net, walk_speed_mps, ferry, None)
    graph = _node_graph(net, costs, sources)
    node_cost = dijkstra(graph, directed=True, indices=net.n_nodes + usable, limit=limit, min_only=True)
    node_cost = node_cost[: net.n_nodes]
    length = net.edge_length_m
    # metres reachable into each edge from its u end and from its v end
    from_u = np.clip((limit - node_cost[net.edge_u]) * speed, 0.0, None)
    from_v = np.clip((limit - node_cost[net.edge_v]) * speed, 0.0, None)
    from_u = np.where(np.isfinite(from_u), from_u, 0.0)
    from_v = np.where(np.isfinite(from_v), from_v, 0.0)
    walk = ~net.edge_ferry
    pieces: list = []
    whole = walk & ((from_u >= length) | (from_v >= length) | (from_u + from_v >= length))
    pieces.extend(net.edge_geometry[whole])
    partial_u = np.flatnonzero(walk & ~whole & (from_u > 0))
    partial_v = np.flatnonzero(walk & ~whole & (from_v > 0))
    pieces.extend(_substrings(net.edge_geometry[partial_u], 0.0, from_u[partial_u] / length[partial_u]))
    pieces.extend(_substrings(net.edge_geometry[partial_v], 1.0 - from_v[partial_v] / length[partial_v], 1.0))
    # stretches of the sources' own edges, around each source position
    e = sources.edge[usable]
    remaining_m = np.clip((limit - sources.access_m[usable] / speed) * speed, 0.0, None)
    centre = sources.fraction[usable]
    half = remaining_m / length[e]
    reach_own = remaining_m > 0
    pieces.extend(
        _substrings(net.edge_geometry[e[reach_own]], np.clip(centre - half, 0, 1)[reach_own],
                    np.clip(centre + half, 0, 1)[reach_own])
    )
    return np.array([p for p in pieces if p is not None and not p.is_empty], dtype=object)


def _substrings(geometries: np.ndarray, start, end) -> list:
    from shapely.ops import substring

    start = np.broadcast_to(np.asarray(start, float), len(geometries))
    end = np.broadcast_to(np.asarray(end, float), len(geometries))
    return [substring(g, s, t, normalized=True) for g, s, t in zip(geometries, start, end)]


#: segments per quarter circle of the isochrones' buffers (street ends and bends): 3 draws a 12-gon, at most
#: 1.7 m inside the 50 m circle (r·(1 − cos 15°)), a third of the map's 5 m display tolerance; against 4
#: (16-gon, 1.0 m) the county's areas are 0.15 % smaller and their unions about 10 % faster
ISOCHRONE_QUAD_SEGS = 3


def isochrone_polygon(
    net: NetworkArrays,
    sources: Snap,
    *,
    walk_speed_mps: float | None,
    limit: float,
    buffer_m: float = 50.0,
    ferry: FerryPolicy | None = None,
):
    """
    Area within ``limit`` of the sources: reached street segments buffered by ``buffer_m`` metres.

    For maps and export only; coverage figures come from per-point costs.

    Returns
    -------
    shapely geometry
        (Multi)Polygon in the working CRS, empty when nothing is reached.
    """
    segments = reached_segments(net, sources, walk_speed_mps=walk_speed_mps, limit=limit, ferry=ferry)
    if len(segments) == 0:
        return shapely.Polygon()
    return shapely.union_all(shapely.buffer(segments, buffer_m, quad_segs=ISOCHRONE_QUAD_SEGS))


