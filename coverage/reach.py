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

import dataclasses
import hashlib
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage, sparse
from scipy.sparse.csgraph import connected_components, dijkstra

from coverage.ferry import FerryPolicy
from coverage.lengths import scale_factor

# scipy's csgraph treats a stored 0 as "no edge" in some paths; give zero-cost
# links a negligible positive cost instead (1 microsecond or micrometre)
_MIN_COST = 1e-6


#: OSM ``highway`` classes with a code of their own (code = position); any other value is code 0
HIGHWAY_CLASSES: tuple[str, ...] = (
    "other", "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential",
    "living_street", "service", "road", "track", "pedestrian", "footway", "path", "steps",
    "cycleway", "bridleway", "corridor", "elevator", "busway", "ferry",
)
_HIGHWAY_CODE = {name: code for code, name in enumerate(HIGHWAY_CLASSES)}


def highway_code(value) -> int:
    """
    Code in :data:`HIGHWAY_CLASSES` of an OSM ``highway`` value (0 for any other).

    A list (osmnx's simplification merges ways of several classes) takes its
    first element, as does a GraphML string such as ``"['residential', 'tertiary']"``.
    """
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, str) and value.startswith("["):
        value = value.strip("[]").split(",")[0].strip().strip("'\"")
    return _HIGHWAY_CODE.get(value, 0) if isinstance(value, str) else 0


@dataclass(frozen=True)
class NetworkArrays:
    """
    The walking network as arrays, one row per undirected edge.

    Attributes
    ----------
    node_ids : numpy.ndarray
        Graph node ids (e.g. OSM ids), position = array index.
    node_x, node_y : numpy.ndarray
        Node coordinates in the working CRS (metres).
    edge_u, edge_v : numpy.ndarray
        Edge end positions into the node arrays; the geometry runs from u to v.
    edge_length_m : numpy.ndarray
        Edge length (metres).
    edge_ferry : numpy.ndarray
        True for ferry lines (not walkable, not snappable).
    edge_geometry : numpy.ndarray
        shapely LineStrings in the working CRS, oriented u → v.
    crs : object
        The working CRS.
    edge_highway : numpy.ndarray or None
        OSM ``highway`` class of each edge as a small int code into
        :data:`HIGHWAY_CLASSES` (0 = any other value); ``None`` when unknown
        (every edge counts as class 0).
    edge_oneway : numpy.ndarray or None
        One-way rule of each edge as the OSM way sets it (for vehicles):
        0 both ways, 1 only u → v, -1 only v → u; ``None`` when unknown (all 0).
        Walking ignores it; profiles that honour one-way streets read it.
    """

    node_ids: np.ndarray
    node_x: np.ndarray
    node_y: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length_m: np.ndarray
    edge_ferry: np.ndarray
    edge_geometry: np.ndarray
    crs: object
    edge_highway: np.ndarray | None = None
    edge_oneway: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return len(self.edge_u)


@dataclass(frozen=True)
class Snap:
    """
    Where points attach to the network.

    Attributes
    ----------
    edge : numpy.ndarray
        Edge position per point (-1 when off the network).
    fraction : numpy.ndarray
        Position along the edge from its u end, 0..1.
    access_m : numpy.ndarray
        Straight-line distance from the point to the edge (metres); inf when off network.
    """

    edge: np.ndarray
    fraction: np.ndarray
    access_m: np.ndarray

    @property
    def on_network(self) -> np.ndarray:
        """True where the point attached to an edge within the access limit."""
        return self.edge >= 0

    def subset(self, mask_or_index) -> Snap:
        """The snaps of a subset of points (boolean mask or positions)."""
        return Snap(self.edge[mask_or_index], self.fraction[mask_or_index], self.access_m[mask_or_index])

    def __len__(self) -> int:
        return len(self.edge)


def network_arrays(graph: nx.MultiDiGraph) -> NetworkArrays:
    """
    Turn a projected walking graph into :class:`NetworkArrays`.

    Reciprocal directed edges become one undirected edge (walking ignores
    one-way rules); parallel edges between the same nodes are all kept, each
    with its own geometry and length.

    Parameters
    ----------
    graph
        Projected graph from :func:`coverage.network.load_walk_network`.
    """
    node_ids = np.array(list(graph.nodes), dtype=np.int64)
    position = {node: i for i, node in enumerate(node_ids.tolist())}
    node_x = np.array([graph.nodes[n]["x"] for n in node_ids.tolist()], dtype=float)
    node_y = np.array([graph.nodes[n]["y"] for n in node_ids.tolist()], dtype=float)

    seen: dict = {}
    edge_u, edge_v, lengths, ferries, geometries, highways, oneways = [], [], [], [], [], [], []
    for u, v, data in graph.edges(data=True):
        pu, pv = position[u], position[v]
        geometry = data.get("geometry")
        if geometry is None:
            geometry = shapely.LineString([(node_x[pu], node_y[pu]), (node_x[pv], node_y[pv])])
        length = float(data.get("length", geometry.length))
        # the same street stored in both directions is one walkable edge
        key = (min(pu, pv), max(pu, pv), round(length, 2), round(geometry.length, 1))
        if key in seen:
            # the street met again the other way round: it is not one-way
            if edge_u[seen[key]] != pu:
                oneways[seen[key]] = 0
            continue
        seen[key] = len(edge_u)
        # only this direction seen so far (a reciprocal edge makes it two-way above)
        oneways.append(0 if pu == pv else 1)
        highways.append(highway_code(data.get("highway")))
        edge_u.append(pu)
        edge_v.append(pv)
        lengths.append(length)
        ferry = data.get("ferry", False)
        ferries.append(bool(any(ferry) if isinstance(ferry, list) else ferry))
        geometries.append(geometry)
    return NetworkArrays(
        node_ids=node_ids,
        node_x=node_x,
        node_y=node_y,
        edge_u=np.array(edge_u, dtype=np.int64),
        edge_v=np.array(edge_v, dtype=np.int64),
        edge_length_m=np.array(lengths, dtype=float),
        edge_ferry=np.array(ferries, dtype=bool),
        edge_geometry=np.array(geometries, dtype=object),
        crs=graph.graph.get("crs"),
        edge_highway=np.array(highways, dtype=np.int8),
        edge_oneway=np.array(oneways, dtype=np.int8),
    )


def network_arrays_from_edges(
    node_x: np.ndarray,
    node_y: np.ndarray,
    edge_u: np.ndarray,
    edge_v: np.ndarray,
    *,
    edge_ferry: np.ndarray | None = None,
    crs=None,
    edge_highway: np.ndarray | None = None,
    edge_oneway: np.ndarray | None = None,
) -> NetworkArrays:
    """
    Build :class:`NetworkArrays` straight from arrays (straight edges).

    Used for generated test and benchmark networks, without a networkx graph.

    Parameters
    ----------
    node_x, node_y
        Node coordinates (metres).
    edge_u, edge_v
        Edge ends as node positions, one row per undirected edge.
    edge_ferry
        Optional ferry flags.
    crs
        The CRS of the coordinates.
    edge_highway
        Optional highway codes (:data:`HIGHWAY_CLASSES`); default 0 for every edge.
    edge_oneway
        Optional one-way rules (0, 1 = only u → v, -1 = only v → u); default 0.
    """
    edge_u = np.asarray(edge_u, dtype=np.int64)
    edge_v = np.asarray(edge_v, dtype=np.int64)
    coords = np.stack(
        [np.column_stack([node_x[edge_u], node_y[edge_u]]), np.column_stack([node_x[edge_v], node_y[edge_v]])],
        axis=1,
    )
    geometries = shapely.linestrings(coords)
    return NetworkArrays(
        node_ids=np.arange(len(node_x), dtype=np.int64),
        node_x=np.asarray(node_x, dtype=float),
        node_y=np.asarray(node_y, dtype=float),
        edge_u=edge_u,
        edge_v=edge_v,
        edge_length_m=shapely.length(geometries),
        edge_ferry=np.zeros(len(edge_u), bool) if edge_ferry is None else np.asarray(edge_ferry, bool),
        edge_geometry=geometries,
        crs=crs,
        edge_highway=np.zeros(len(edge_u), np.int8) if edge_highway is None else np.asarray(edge_highway, np.int8),
        edge_oneway=np.zeros(len(edge_u), np.int8) if edge_oneway is None else np.asarray(edge_oneway, np.int8),
    )


def _points_xy(points) -> np.ndarray:
    if isinstance(points, (gpd.GeoSeries, gpd.GeoDataFrame)):
        geoms = points.geometry.values if isinstance(points, gpd.GeoDataFrame) else points.values
        return shapely.get_coordinates(np.asarray(geoms))
    return np.asarray(points, dtype=float).reshape(-1, 2)


def snap_points(net: NetworkArrays, points, *, max_access_m: float = 500.0) -> Snap:
    """
    Attach points to the nearest point of the nearest walkable edge.

    The distance to an edge is the exact point-to-polyline distance that
    GEOS computes (``shapely.distance``), and the position along the edge is
    GEOS's ``line_locate_point``; both are evaluated in vectorised numpy over
    a uniform grid of the edges' straight segments (the same floating-point
    operations, so the same numbers as shapely gives, without building one
    shapely point per input point). A point equidistant from two edges
    attaches to the one with the lower edge position. The access leg is that
    planar distance in ground metres (divided by the projection's scale
    factor at the point, :mod:`coverage.lengths`), like the edge lengths.

    Parameters
    ----------
    net
        The network arrays.
    points
        GeoSeries/GeoDataFrame of points in the network's CRS, or an (n, 2)
        array of x, y (metres).
    max_access_m
        Points farther than this from every walkable edge are off the network
        (edge -1, access inf), never silently attached (metres).

    Returns
    -------
    Snap
    """
    xy = _points_xy(points)
    n = len(xy)
    edge = np.full(n, -1, dtype=np.int64)
    fraction = np.zeros(n, dtype=float)
    access = np.full(n, np.inf, dtype=float)
    if n == 0:
        return Snap(edge, fraction, access)
    index = _segment_index(net)
    px = np.ascontiguousarray(xy[:, 0])
    py = np.ascontiguousarray(xy[:, 1])
    best_d, best_e = _nearest_edges(index, px, py, float(max_access_m))
    on = np.flatnonzero(best_d <= max_access_m)
    edge[on] = best_e[on]
    # planar metres of the working CRS to ground metres, as the edge lengths are (coverage.lengths)
    access[on] = best_d[on] / scale_factor(net.crs, px[on], py[on])
    fraction[on] = _locate_on_edges(index, best_e[on], px[on], py[on])
    np.clip(fraction, 0.0, 1.0, out=fraction)
    return Snap(edge, fraction, access)



#: a walking component of at most this many nodes holding no facility is a stray fragment
STRAY_FRAGMENT_MAX_NODES = 5


def stray_fragment_edges(net: NetworkArrays, keep: Snap | None = None,
                         *, max_nodes: int = STRAY_FRAGMENT_MAX_NODES) -> np.ndarray:
    """
    Edges of stray fragments: walking components (ferries joining) of at most ``max_nodes`` nodes.

    A fragment some point of ``keep`` (e.g. the facilities) is attached to is
    not stray: its people walk to that facility.

    Returns
    -------
    numpy.ndarray
        Boolean mask over the edges.
    """
    labels = node_components(net, with_ferries=True)
    sizes = np.bincount(labels)
    small = sizes <= max_nodes
    if keep is not None and keep.on_network.any():
        small[point_components(net, keep, labels)[keep.on_network]] = False
    return small[labels[net.edge_u]]


def attach_off_fragments(net: NetworkArrays, points, snap: Snap, *, max_access_m: float = 500.0,
                         keep: Snap | None = None,
                         max_nodes: int = STRAY_FRAGMENT_MAX_NODES) -> tuple[Snap, np.ndarray]:
    """
    Re-attach points whose nearest street is a stray fragment to the nearest street of the rest.

    A home whose nearest edge belongs to a fragment of a few nodes (a footway
    drawn alone in a courtyard, a piece cut off by the extract's edge) reaches
    no facility from there; when a street of the main network lies within
    ``max_access_m`` it walks there instead. Points with no such street stay
    on their fragment.

    Parameters
    ----------
    net, points
        The network arrays and the points (as for :func:`snap_points`).
    snap
        The points' snaps from :func:`snap_points`.
    max_access_m
        Access limit (metres), as for :func:`snap_points`.
    keep
        Snaps (e.g. of the facilities) whose fragments are not stray.
    max_nodes
        Largest fragment (nodes) counted as stray.

    Returns
    -------
    (Snap, numpy.ndarray)
        The new snaps and a boolean mask of the points that moved.
    """
    stray = stray_fragment_edges(net, keep, max_nodes=max_nodes)
    on_stray = snap.on_network & stray[np.where(snap.on_network, snap.edge, 0)]
    moved = np.zeros(len(snap), dtype=bool)
    if not on_stray.any() or stray.all():
        return snap, moved
    main_edges = np.flatnonzero(~stray)
    main = dataclasses.replace(
        net, edge_u=net.edge_u[main_edges], edge_v=net.edge_v[main_edges],
        edge_length_m=net.edge_length_m[main_edges], edge_ferry=net.edge_ferry[main_edges],
        edge_geometry=net.edge_geometry[main_edges],
        edge_highway=None if net.edge_highway is None else net.edge_highway[main_edges],
        edge_oneway=None if net.edge_oneway is None else net.edge_oneway[main_edges],
    )
    which = np.flatnonzero(on_stray)
    again = snap_points(main, _points_xy(points)[which], max_access_m=max_access_m)
    found = again.on_network
    moved[which[found]] = True
    edge, fraction, access = snap.edge.copy(), snap.fraction.copy(), snap.access_m.copy()
    edge[which[found]] = main_edges[again.edge[found]]
    fraction[which[found]] = again.fraction[found]
    access[which[found]] = again.access_m[found]
    return Snap(edge, fraction, access), moved

#: grid cells of the snapping index are about this many mean segment spacings wide
#: (about half a block: a point's 3 x 3 cells then usually hold its nearest edge)
_CELL_FACTOR = 0.75
#: points handled per block while snapping (keeps the candidate arrays in cache)
_SNAP_BLOCK = 1 << 14
#: slack (metres) against floating-point rounding of grid cell positions
_GRID_EPS = 1e-6
#: segments spanning at most this many cells each way are registered offset by offset
_SHORT_SPAN = 3


@dataclass(frozen=True)
class _SegmentIndex:
    """
    The straight segments of the walkable edges and a uniform grid over them.

    ``ax, ay, bx, by`` are the segments in edge order (edge ``e`` owns
    ``first[e]:first[e + 1]``, none for ferries). For the search the same
    segments are kept again in grid order (``sx0 … sedge``) and every grid
    cell lists (``cell_start``, ``cell_segment``) the grid-ordered segments
    whose bounding box touches it.
    """

    ax: np.ndarray
    ay: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    first: np.ndarray
    sx0: np.ndarray
    sy0: np.ndarray
    sx1: np.ndarray
    sy1: np.ndarray
    sedge: np.ndarray
    x0: float
    y0: float
    cell: float
    nx: int
    ny: int
    cell_start: np.ndarray
    cell_segment: np.ndarray
    empty_rings: np.ndarray


def _segment_index(net: NetworkArrays) -> _SegmentIndex:
    """The snapping index of ``net``, built on first use and kept on the (immutable) arrays."""
    cached = net.__dict__.get("_segment_index")
    if cached is not None:
        return cached
    walkable = np.flatnonzero(~net.edge_ferry)
    coords, part = shapely.get_coordinates(net.edge_geometry[walkable], return_index=True)
    same = part[1:] == part[:-1]
    ax = np.ascontiguousarray(coords[:-1, 0][same])
    ay = np.ascontiguousarray(coords[:-1, 1][same])
    bx = np.ascontiguousarray(coords[1:, 0][same])
    by = np.ascontiguousarray(coords[1:, 1][same])
    del coords
    seg_edge = walkable[part[:-1][same]]
    del part, same
    first = np.zeros(net.n_edges + 1, dtype=np.int64)
    np.cumsum(np.bincount(seg_edge, minlength=net.n_edges), out=first[1:])
    n_seg = len(ax)
    x0 = y0 = 0.0
    cell, nx, ny = 1.0, 1, 1
    order = np.empty(0, dtype=np.int64)
    cell_start = np.zeros(2, dtype=np.int64)
    cell_segment = np.empty(0, dtype=np.int64)
    empty_rings = np.zeros(1, dtype=np.int32)
    if n_seg:
        lo_x, hi_x = np.minimum(ax, bx), np.maximum(ax, bx)
        lo_y, hi_y = np.minimum(ay, by), np.maximum(ay, by)
        x0, y0 = float(lo_x.min()), float(lo_y.min())
        width, height = float(hi_x.max()) - x0, float(hi_y.max()) - y0
        cell = float(max(_CELL_FACTOR * np.sqrt(max(width * height, 1.0) / n_seg), 1.0))
        nx, ny = int(width // cell) + 1, int(height // cell) + 1
        i0 = np.clip(np.floor((lo_x - _GRID_EPS - x0) / cell), 0, nx - 1).astype(np.int64)
        i1 = np.clip(np.floor((hi_x + _GRID_EPS - x0) / cell), 0, nx - 1).astype(np.int64)
        j0 = np.clip(np.floor((lo_y - _GRID_EPS - y0) / cell), 0, ny - 1).astype(np.int64)
        j1 = np.clip(np.floor((hi_y + _GRID_EPS - y0) / cell), 0, ny - 1).astype(np.int64)
        del lo_x, hi_x, lo_y, hi_y
        # grid order of the segments: by the first cell they touch (neighbours stay close in memory)
        order = np.argsort(i0 * ny + j0)
        i0, i1, j0, j1 = i0[order], i1[order], j0[order], j1[order]
        span_i, span_j = i1 - i0 + 1, j1 - j0 + 1
        id_type = np.int32 if n_seg < 2**31 else np.int64
        segment_ids = np.arange(n_seg, dtype=id_type)
        base = i0 * ny + j0
        owners, cell_ids = [], []
        # short segments (most of them) cell offset by cell offset; long ones expanded one by one
        short = (span_i <= _SHORT_SPAN) & (span_j <= _SHORT_SPAN)
        for di in range(_SHORT_SPAN):
            for dj in range(_SHORT_SPAN):
                pick = np.flatnonzero(short & (span_i > di) & (span_j > dj))
                owners.append(segment_ids[pick])
                cell_ids.append(base[pick] + (di * ny + dj))
        long_ = np.flatnonzero(~short)
        if len(long_):
            per_segment = span_i[long_] * span_j[long_]
            owner = np.repeat(long_, per_segment)
            local = np.arange(len(owner), dtype=np.int64) - np.repeat(np.cumsum(per_segment) - per_segment, per_segment)
            owners.append(segment_ids[owner])
            cell_ids.append(base[owner] + (local // span_j[owner]) * ny + local % span_j[owner])
        owner = np.concatenate(owners)
        cell_id = np.concatenate(cell_ids)
        del owners, cell_ids
        cell_segment = owner[np.argsort(cell_id)]
        cell_start = np.zeros(nx * ny + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell_id, minlength=nx * ny), out=cell_start[1:])
        # per cell: how many square rings around it hold no segment at all (0 when the cell has one)
        empty = (np.diff(cell_start) == 0).reshape(nx, ny)
        empty_rings = ndimage.distance_transform_cdt(empty, metric="chessboard").astype(np.int32).ravel()
    index = _SegmentIndex(
        ax, ay, bx, by, first,
        ax[order], ay[order], bx[order], by[order], seg_edge[order],
        x0, y0, cell, nx, ny, cell_start, cell_segment, empty_rings,
    )
    object.__setattr__(net, "_segment_index", index)
    return index


def _point_segment_distance(px, py, ax, ay, bx, by) -> np.ndarray:
    """GEOS ``Distance::pointToSegment``, operation for operation (so bit for bit)."""
    dx = bx - ax
    dy = by - ay
    len2 = dx * dx + dy * dy
    wx = px - ax
    wy = py - ay
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (wx * dx + wy * dy) / len2
        # GEOS: ((A.y - p.y) * dx - (A.x - p.x) * dy) / len2; negations are exact, so this is the same number
        s = (wx * dy - wy * dx) / len2
    to_a = np.sqrt(wx * wx + wy * wy)
    to_b = np.sqrt((px - bx) * (px - bx) + (py - by) * (py - by))
    perpendicular = np.abs(s) * np.sqrt(len2)
    degenerate = (dx == 0.0) & (dy == 0.0)
    return np.where(degenerate | (r <= 0.0), to_a, np.where(r >= 1.0, to_b, perpendicular))


def _ring_offsets(r: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell offsets (di, dj) at Chebyshev distance exactly ``r``; for ``r`` = 1 also the centre cell."""
    if r == 1:
        di, dj = np.meshgrid(np.arange(-1, 2, dtype=np.int64), np.arange(-1, 2, dtype=np.int64), indexing="ij")
        return di.ravel(), dj.ravel()
    span = np.arange(-r, r + 1, dtype=np.int64)
    inner = span[1:-1]
    di = np.concatenate([span, span, np.full(len(inner), -r), np.full(len(inner), r)])
    dj = np.concatenate([np.full(len(span), -r), np.full(len(span), r), inner, inner])
    return di, dj


def _nearest_edges(index: _SegmentIndex, px: np.ndarray, py: np.ndarray, max_access_m: float):
    """
    Distance to, and position of, the nearest walkable edge for each point.

    Grid cells are searched in growing square rings around each point (first
    its own cell and the 8 around it) until the best distance found is
    shorter than the distance to the border of the searched square (nothing
    outside can be nearer) or that border lies beyond ``max_access_m`` (the
    point is off the network). Ties go to the lower edge position. Points are
    handled in grid order, in blocks. Returns (distance, edge); inf and -1
    where nothing lies within ``max_access_m``.
    """
    n = len(px)
    best_d = np.full(n, np.inf)
    best_e = np.full(n, -1, dtype=np.int64)
    if len(index.sx0) == 0:
        return best_d, best_e
    no_edge = np.iinfo(np.int64).max
    todo = np.flatnonzero(np.isfinite(px) & np.isfinite(py))
    ci_all = np.floor((px[todo] - index.x0) / index.cell).astype(np.int64)
    cj_all = np.floor((py[todo] - index.y0) / index.cell).astype(np.int64)
    grid_order = np.argsort(ci_all * (index.ny + 1) + cj_all)
    todo, ci_all, cj_all = todo[grid_order], ci_all[grid_order], cj_all[grid_order]
    for start in range(0, len(todo), _SNAP_BLOCK):
        block = todo[start : start + _SNAP_BLOCK]
        ci = ci_all[start : start + _SNAP_BLOCK]
        cj = cj_all[start : start + _SNAP_BLOCK]
        x, y = px[block], py[block]
        d_best = np.full(len(block), np.inf)
        e_best = np.full(len(block), -1, dtype=np.int64)
        # rings known to be empty: the first ring that can hold a segment (points off the grid
        # are at least as far from every cell as from the nearest grid cell)
        ci_in = np.clip(ci, 0, index.nx - 1)
        cj_in = np.clip(cj, 0, index.ny - 1)
        outside = np.maximum(np.abs(ci - ci_in), np.abs(cj - cj_in))
        first_ring = np.maximum(outside, index.empty_rings[ci_in * index.ny + cj_in] - outside)
        # nothing within the empty rings: off the network when they alone reach past max_access_m
        clear = first_ring - 1
        border = np.minimum(
            np.minimum(x - (index.x0 + (ci - clear) * index.cell), index.x0 + (ci + clear + 1) * index.cell - x),
            np.minimum(y - (index.y0 + (cj - clear) * index.cell), index.y0 + (cj + clear + 1) * index.cell - y),
        ) - _GRID_EPS
        active = np.flatnonzero((first_ring <= 1) | (border <= max_access_m))
        first_ring = np.maximum(first_ring, 1)
        r = 1  # the first pass searches the point's cell and its 8 neighbours
        while len(active):
            waiting = first_ring[active] > r
            searching = active[~waiting]
            di, dj = _ring_offsets(r)
            ii = ci[searching, None] + di[None, :]
            jj = cj[searching, None] + dj[None, :]
            valid = (ii >= 0) & (ii < index.nx) & (jj >= 0) & (jj < index.ny)
            cell_id = np.where(valid, ii * index.ny + jj, 0)
            first = index.cell_start[cell_id]
            count = np.where(valid, index.cell_start[cell_id + 1] - first, 0)
            per_point = count.sum(axis=1)
            total = int(per_point.sum())
            if total:
                flat_first, flat_count = first.ravel(), count.ravel()
                position = np.repeat(flat_first - (np.cumsum(flat_count) - flat_count), flat_count)
                position += np.arange(total, dtype=np.int64)
                seg = index.cell_segment[position]
                owner = np.repeat(searching, per_point)
                d = _point_segment_distance(
                    x[owner], y[owner], index.sx0[seg], index.sy0[seg], index.sx1[seg], index.sy1[seg]
                )
                e = index.sedge[seg]
                has = per_point > 0
                group_start = (np.cumsum(per_point) - per_point)[has]
                d_min = np.minimum.reduceat(d, group_start)
                e_min = np.minimum.reduceat(np.where(d == np.repeat(d_min, per_point[has]), e, no_edge), group_start)
                target = searching[has]
                better = (d_min < d_best[target]) | ((d_min == d_best[target]) & (e_min < e_best[target]))
                d_best[target[better]] = d_min[better]
                e_best[target[better]] = e_min[better]
            # distance from each point to the border of the square searched so far
            xa, ya = x[searching], y[searching]
            left = index.x0 + (ci[searching] - r) * index.cell
            right = index.x0 + (ci[searching] + r + 1) * index.cell
            bottom = index.y0 + (cj[searching] - r) * index.cell
            top = index.y0 + (cj[searching] + r + 1) * index.cell
            border = np.minimum(np.minimum(xa - left, right - xa), np.minimum(ya - bottom, top - ya)) - _GRID_EPS
            done = (d_best[searching] < border) | (border > max_access_m)
            active = np.concatenate([active[waiting], searching[~done]])
            r += 1
        best_d[block] = d_best
        best_e[block] = e_best
    return best_d, best_e


def _locate_on_edges(index: _SegmentIndex, edges: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """
    GEOS ``line_locate_point(normalized=True)`` of each point on its edge.

    LengthIndexOfPoint: the measure of the projection onto the first nearest
    segment, divided by the line's length, with the same operations.
    """
    first = index.first[edges]
    count = index.first[edges + 1] - first
    start_measure = np.zeros(len(edges))
    min_distance = np.full(len(edges), np.finfo(float).max)
    measure = np.full(len(edges), -1.0)
    rows = np.arange(len(edges))
    k = 0
    while len(rows):
        rows = rows[count[rows] > k]
        if len(rows) == 0:
            break
        s = first[rows] + k
        ax, ay, bx, by = index.ax[s], index.ay[s], index.bx[s], index.by[s]
        x, y = px[rows], py[rows]
        distance = _point_segment_distance(x, y, ax, ay, bx, by)
        dx = bx - ax
        dy = by - ay
        len2 = dx * dx + dy * dy
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = ((x - ax) * dx + (y - ay) * dy) / len2
        factor = np.where((x == ax) & (y == ay), 0.0, np.where((x == bx) & (y == by), 1.0, factor))
        seg_length = np.sqrt(dx * dx + dy * dy)
        start = start_measure[rows]
        seg_measure = np.where(
            factor <= 0.0, start, np.where(factor <= 1.0, start + factor * seg_length, start + seg_length)
        )
        better = (distance < min_distance[rows]) & (seg_measure > -1.0)
        measure[rows[better]] = seg_measure[better]
        min_distance[rows[better]] = distance[better]
        start_measure[rows] = start + seg_length
        k += 1
    with np.errstate(divide="ignore", invalid="ignore"):
        return measure / start_measure


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
    while len(cache) >= _LINK_CACHE_SIZE:
        cache.pop(next(iter(cache)))
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
        width = graph.shape[0]
        # rows of the searches' dense output held at once (at most _CATCHMENT_BLOCK_CELLS cells,
        # so the block's memory is reused from chunk to chunk instead of mapped afresh)
        cells = min(int(max_cells_per_chunk), _CATCHMENT_BLOCK_CELLS)
        per_chunk = max(1, cells // max(width, 1))
        for start in range(0, len(usable), per_chunk):
            chunk = usable[start : start + per_chunk]
            node_cost = dijkstra(graph, directed=True, indices=net.n_nodes + chunk, limit=limit)
            r, c, v = _reached_points(node_cost, net.n_nodes, by_node, limit)
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


def _reached_points(node_cost: np.ndarray, n_nodes: int, by_node: _DemandByNode, limit: float):
    """
    (row, demand point, cost) of the points within ``limit``, from a block of bounded searches.

    Only the nodes each search reached are visited, and from each only the
    points on its edges; a point reached from both ends of its edge keeps
    both entries here (:func:`_cheapest_csr` keeps the cheaper).
    """
    # street nodes only: a search reaches its own site's virtual node (at 0) and no other site's
    flat = np.flatnonzero(node_cost[:, :n_nodes] <= limit)
    row, node = np.divmod(flat, n_nodes)
    reached = node_cost[row, node]
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


def _cheapest_csr(row: np.ndarray, col: np.ndarray, val: np.ndarray, n_rows: int, n_cols: int) -> sparse.csr_matrix:
    """CSR of the entries, columns sorted within rows; of duplicate (row, column) entries the cheapest."""
    key = row.astype(np.int64) * np.int64(n_cols) + col.astype(np.int64)
    order = np.lexsort((val, key))
    key, val = key[order], val[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, val = key[first], val[first]
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
    return shapely.union_all(shapely.buffer(segments, buffer_m, quad_segs=4))


def node_components(net: NetworkArrays, *, with_ferries: bool) -> np.ndarray:
    """
    Connected component label of every node.

    Parameters
    ----------
    net
        The network arrays.
    with_ferries
        Whether ferry lines join components.
    """
    keep = np.ones(net.n_edges, bool) if with_ferries else ~net.edge_ferry
    adjacency = sparse.coo_matrix(
        (np.ones(keep.sum()), (net.edge_u[keep], net.edge_v[keep])), shape=(net.n_nodes, net.n_nodes)
    )
    _, labels = connected_components(adjacency, directed=False)
    return labels


def point_components(net: NetworkArrays, snap: Snap, labels: np.ndarray) -> np.ndarray:
    """Component label of each snapped point (-1 when off the network)."""
    e = np.where(snap.on_network, snap.edge, 0)
    return np.where(snap.on_network, labels[net.edge_u[e]], -1)
