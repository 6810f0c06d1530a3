"""Polygons of labelled raster regions (4-connected), traced in arrays: the rings GDAL's polygonize draws."""

from __future__ import annotations

import numpy as np
import shapely
from scipy import sparse
from scipy.sparse import csgraph

#: direction codes of the boundary runs and their (column, row) steps
_RIGHT, _LEFT, _UP, _DOWN = 0, 1, 2, 3
_STEP = np.array([(1, 0), (-1, 0), (0, -1), (0, 1)], dtype=np.int64)


def region_polygons(labels: np.ndarray, transform) -> tuple[np.ndarray, np.ndarray]:
    """
    One polygon per labelled region of a raster (4-connected cells, label > 0), holes kept, in one pass of arrays.

    The boundary between a region's cells and the others is gathered as
    straight runs along the cell edges (a vertex only where the boundary
    turns), each run is linked to the run that goes on from its end, and the
    rings are read off in order by pointer jumping: no Python loop over
    rings or vertices (``rasterio.features.shapes`` builds a Python list of
    tuples per ring, most of the time of a county's 18 gap layers). The rings
    are those GDAL traces: the shell anticlockwise on the map (north up), the
    holes clockwise; where two cells of a region meet only at a corner, the
    boundary turns away from the cell it follows, so a hole touching its
    shell at a corner stays a ring of its own (valid polygons).

    Parameters
    ----------
    labels
        Integer raster (rows, columns): 0 outside every region, else the
        region's label; a label's cells must be 4-connected (as
        ``scipy.ndimage.label`` gives them).
    transform
        Affine transform of the raster (``affine.Affine``: ``a, b, c, d, e, f``).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Polygons (the transform's CRS) and the label of each, by label.
    """
    labels = np.asarray(labels)
    height, width = labels.shape
    padded = np.zeros((height + 2, width + 2), dtype=np.int64)
    padded[1:-1, 1:-1] = labels
    runs = [
        # along the corner rows: the bottom of the cell above (east), the top of the cell below (west)
        *_horizontal_runs(padded[:-1, 1:-1], padded[1:, 1:-1]),
        # along the corner columns: the east side of the cell to the left (north), the west side of the right one
        *_vertical_runs(padded[1:-1, :-1], padded[1:-1, 1:]),
    ]
    label = np.concatenate([r[0] for r in runs])
    if len(label) == 0:
        return np.empty(0, dtype=object), np.empty(0, dtype=np.int64)
    start = np.concatenate([r[1] for r in runs])  # (row, col) corner where the run starts
    end = np.concatenate([r[2] for r in runs])
    direction = np.concatenate([np.full(len(r[0]), code) for r, code in zip(runs, (_RIGHT, _LEFT, _UP, _DOWN))])
    n_corners = (height + 1) * (width + 1)
    start_key = label * n_corners + start[:, 0] * (width + 1) + start[:, 1]
    end_key = label * n_corners + end[:, 0] * (width + 1) + end[:, 1]
    following = _following_runs(start_key, end_key, direction)
    ring, position, ring_length = _ring_order(following, start_key)
    # the runs in ring order, each giving its start corner; the first corner again closes the ring
    ring_first = np.concatenate([[0], np.cumsum(ring_length)[:-1]])
    in_order = np.empty(len(label), dtype=np.int64)
    in_order[ring_first[ring] + position] = np.arange(len(label))
    ring_label = label[in_order[ring_first]]
    corners = start[in_order]
    # signed area (rows down, columns right): the shells and the holes turn opposite ways
    x, y = corners[:, 1].astype(float), corners[:, 0].astype(float)
    nxt = np.arange(len(x)) + 1
    last = ring_first + ring_length - 1
    nxt[last] = ring_first
    twice_area = np.add.reduceat(x * y[nxt] - x[nxt] * y, ring_first)
    is_hole = twice_area > 0  # anticlockwise on the map is clockwise on the rows-down grid: negative here
    # rings by label, the shell first, then the holes by their first corner
    ring_rank = np.lexsort((start_key[in_order[ring_first]], is_hole, ring_label))
    counts = ring_length[ring_rank] + 1
    along, first = _ranges(counts), np.repeat(ring_first[ring_rank], counts)
    grid_xy = corners[np.where(along == np.repeat(counts - 1, counts), first, first + along)]
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    col, row = grid_xy[:, 1].astype(float), grid_xy[:, 0].astype(float)
    xy = np.column_stack([a * col + b * row + c, d * col + e * row + f])
    ring_offsets = np.concatenate([[0], np.cumsum(counts)])
    values, rings_per_label = np.unique(ring_label[ring_rank], return_counts=True)
    polygon_offsets = np.concatenate([[0], np.cumsum(rings_per_label)])
    polygons = shapely.from_ragged_array(shapely.GeometryType.POLYGON, xy, (ring_offsets, polygon_offsets))
    return polygons, values.astype(np.int64)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """0 … n−1 for each n of ``counts``, concatenated."""
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs of one non-zero value along the rows of ``keys``: value, row, first and one-past-last column."""
    rows, cols = keys.shape
    # a zero after each row, so that no run goes on into the next row
    flat = np.zeros((rows, cols + 1), keys.dtype)
    flat[:, :cols] = keys
    flat = flat.ravel()
    change = flat[1:] != flat[:-1]
    first = np.flatnonzero(change & (flat[1:] != 0)) + 1
    if flat[0] != 0:
        first = np.concatenate([[0], first])
    last = np.flatnonzero(change & (flat[:-1] != 0))  # the last element is a row's zero: every run ends
    return flat[first], first // (cols + 1), first % (cols + 1), last % (cols + 1) + 1


def _horizontal_runs(above: np.ndarray, below: np.ndarray):
    """Runs along the corner rows: (label, start corner, end corner) east for the cell above, west for the one below."""
    boundary = above != below
    out = []
    value, row, first, stop = _runs(np.where(boundary, above, 0))
    out.append((value, np.column_stack([row, first]), np.column_stack([row, stop])))  # east
    value, row, first, stop = _runs(np.where(boundary, below, 0))
    out.append((value, np.column_stack([row, stop]), np.column_stack([row, first])))  # west
    return out


def _vertical_runs(left: np.ndarray, right: np.ndarray):
    """Runs along the corner columns: north for the cell to the left, south for the one to the right."""
    boundary = left != right
    out = []
    value, col, first, stop = _runs(np.where(boundary, left, 0).T)
    out.append((value, np.column_stack([stop, col]), np.column_stack([first, col])))  # north
    value, col, first, stop = _runs(np.where(boundary, right, 0).T)
    out.append((value, np.column_stack([first, col]), np.column_stack([stop, col])))  # south
    return out


def _following_runs(start_key: np.ndarray, end_key: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """
    The run that goes on from the end of each run: the region's one run starting there, or, where two cells of the
    region meet at that corner only, the one turning away from the cell the run follows.
    """
    order = np.argsort(start_key, kind="stable")
    sorted_keys = start_key[order]
    at = np.searchsorted(sorted_keys, end_key)
    following = order[at]
    second = at + 1 < len(order)
    second[second] = sorted_keys[np.minimum(at[second] + 1, len(order) - 1)] == end_key[second]
    if second.any():
        # at such a corner the boundary comes in twice and leaves twice; it turns right on the rows-down grid
        # (the cell traversal turns left), z = dx_in * dy_out - dy_in * dx_out = +1
        runs = np.flatnonzero(second)
        other = order[at[runs] + 1]
        step_in = _STEP[direction[runs]]
        step_out = _STEP[direction[following[runs]]]
        turn = step_in[:, 0] * step_out[:, 1] - step_in[:, 1] * step_out[:, 0]
        following[runs] = np.where(turn > 0, following[runs], other)
    return following


def _ring_order(following: np.ndarray, start_key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Ring of each run, its place along the ring from the ring's first run (the one with the smallest start key),
    and each ring's length; by pointer jumping (log₂ of the longest ring's runs steps of arrays).
    """
    n = len(following)
    graph = sparse.csr_matrix((np.ones(n, dtype=np.int8), (np.arange(n), following)), shape=(n, n))
    n_rings, ring = csgraph.connected_components(graph, directed=True, connection="weak")
    # each ring's first run: the smallest start key of the ring
    smallest = np.full(n_rings, np.iinfo(np.int64).max)
    np.minimum.at(smallest, ring, start_key)
    is_first = start_key == smallest[ring]
    # steps from each run forward to its ring's first run, for the runs still short of it
    jump = np.where(is_first, np.arange(n), following)
    steps = (~is_first).astype(np.int64)
    pending = np.flatnonzero(~is_first[jump])
    while len(pending):
        ahead = jump[pending]
        steps[pending] += steps[ahead]
        jump[pending] = jump[ahead]
        pending = pending[~is_first[jump[pending]]]
    length = np.bincount(ring, minlength=n_rings)
    position = (length[ring] - steps) % length[ring]
    return ring, position, length
