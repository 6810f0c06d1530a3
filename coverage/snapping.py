"""Attach points to the nearest point of the nearest street, in ground metres; homes beside stray fragments."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from scipy import ndimage

from coverage.lengths import scale_factor
from coverage.network_arrays import NetworkArrays, Snap, node_components, point_components


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
        edge_name=None if net.edge_name is None else net.edge_name[main_edges],
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


def nearest_named_street(net: NetworkArrays, points, *, max_m: float = 300.0) -> np.ndarray:
    """
    Name of the nearest street that has one (OSM ``name``), within ``max_m`` metres, for planners to find a place.

    Parameters
    ----------
    net
        The network arrays (with ``edge_name``).
    points
        Points in the network's CRS (as for :func:`snap_points`).
    max_m
        Farthest a named street may be (metres).

    Returns
    -------
    numpy.ndarray
        One name per point; "" where no named street is that close or the arrays keep no names.
    """
    xy = _points_xy(points)
    names = np.full(len(xy), "", dtype=object)
    if net.edge_name is None or len(xy) == 0:
        return names
    named = np.flatnonzero(np.array([bool(n) for n in net.edge_name]) & ~np.asarray(net.edge_ferry, bool))
    if len(named) == 0:
        return names
    sub = dataclasses.replace(
        net, edge_u=net.edge_u[named], edge_v=net.edge_v[named], edge_length_m=net.edge_length_m[named],
        edge_ferry=net.edge_ferry[named], edge_geometry=net.edge_geometry[named],
        edge_highway=None if net.edge_highway is None else net.edge_highway[named],
        edge_oneway=None if net.edge_oneway is None else net.edge_oneway[named], edge_name=net.edge_name[named],
    )
    snap = snap_points(sub, xy, max_access_m=max_m)
    on = snap.on_network
    names[on] = net.edge_name[named[snap.edge[on]]]
    return names
