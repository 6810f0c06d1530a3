"""Polygons and cells burnt into one PNG on a Web Mercator grid: the map's uncovered elderly and large walking areas."""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: pixel of the uncovered-elderly image, as a share of the population cell (3 pixels a cell: crisp edges)
RASTER_PIXELS_PER_CELL = 3
#: longest side of the uncovered-elderly image (pixels); coarser pixels beyond it
RASTER_MAX_SIDE = 2400
#: Web Mercator sphere radius (metres)
_MERCATOR_R = 6378137.0



@dataclass(frozen=True)
class RasterImage:
    """
    A PNG drawn over the map in Web Mercator.

    Attributes
    ----------
    data_uri
        ``data:image/png;base64,…``.
    bounds
        ``[[south, west], [north, east]]`` (degrees) of the image's outer edges.
    shape
        Pixels ``(rows, columns)``.
    """

    data_uri: str
    bounds: list[list[float]]
    shape: tuple[int, int]


def _mercator_y(lat: np.ndarray) -> np.ndarray:
    return _MERCATOR_R * np.log(np.tan(np.pi / 4.0 + np.radians(lat) / 2.0))


def _mercator_lat(y: np.ndarray) -> np.ndarray:
    return np.degrees(2.0 * np.arctan(np.exp(y / _MERCATOR_R)) - np.pi / 2.0)


def cells_from_grid(points: pd.DataFrame, grid: Mapping[str, Any], value: str = "elderly") -> gpd.GeoDataFrame:
    """
    Population-grid cells (polygons in the grid's CRS) holding the sum of ``value`` of the points in each.

    Parameters
    ----------
    points
        Rows with integer ``row``/``col`` into the grid (split parts of a cell are added back together).
    grid
        ``{"transform": (a, b, c, d, e, f), "crs": …}`` as the demand grid's ``attrs["raster_grid"]``.
    """
    a, b, c, d, e, f = grid["transform"]
    summed = points.groupby(["row", "col"], sort=True)[value].sum().reset_index()
    col, row = summed["col"].to_numpy(float), summed["row"].to_numpy(float)
    x0, y0 = a * col + b * row + c, d * col + e * row + f
    x1, y1 = a * (col + 1) + b * (row + 1) + c, d * (col + 1) + e * (row + 1) + f
    boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    return gpd.GeoDataFrame({value: summed[value].to_numpy()}, geometry=boxes, crs=grid["crs"])


def burn_polygons(geoms: np.ndarray, values: np.ndarray, shape: tuple[int, int],
                  origin: tuple[float, float, float, float]) -> np.ndarray:
    """
    Burn (Multi)Polygons into a ``uint8`` grid: a pixel takes the value of the last polygon holding its centre.

    The rule of ``rasterio.features.rasterize`` without ``all_touched``,
    computed from the rings' coordinates in arrays: each edge's crossings
    of the pixel-centre rows, sorted along each row and filled pair by pair
    (even-odd, so holes stay empty), through a difference array per row.

    Parameters
    ----------
    geoms
        Polygons or MultiPolygons in the grid's CRS.
    values
        Value (1-255) of each.
    shape
        ``(rows, columns)``.
    origin
        ``(west, north, pixel width, pixel height)`` in the grid's CRS, rows running south.
    """
    out = np.zeros(shape, dtype=np.uint8)
    for geom, value in zip(geoms, np.asarray(values).tolist()):
        inside = _polygon_pixels(geom, shape, origin)
        if inside is not None:
            (r0, c0), block = inside
            out[r0:r0 + block.shape[0], c0:c0 + block.shape[1]][block] = value
    return out


def _polygon_pixels(geom, shape: tuple[int, int], origin) -> tuple[tuple[int, int], np.ndarray] | None:
    """The pixels whose centres lie in the polygon: ``((first row, first column), block mask)``, None when none."""
    height, width = shape
    west, north, pixel_x, pixel_y = origin
    rings = shapely.get_rings(shapely.get_parts(geom))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    col, row = (xy[:, 0] - west) / pixel_x, (north - xy[:, 1]) / pixel_y
    same = ring[1:] == ring[:-1]
    x0, x1, y0, y1 = col[:-1][same], col[1:][same], row[:-1][same], row[1:][same]
    # the pixel-centre rows r + 0.5 each edge crosses, half-open so that a vertex on a row counts once
    first = np.clip(np.ceil(np.minimum(y0, y1) - 0.5), 0, height).astype(np.int64)
    count = np.clip(np.ceil(np.maximum(y0, y1) - 0.5), 0, height).astype(np.int64) - first
    keep = count > 0
    if not keep.any():
        return None
    x0, x1, y0, y1, first, count = x0[keep], x1[keep], y0[keep], y1[keep], first[keep], count[keep]
    edge = np.repeat(np.arange(len(count)), count)
    ends = np.cumsum(count)
    r = np.arange(int(ends[-1])) - np.repeat(ends - count, count) + first[edge]
    x = x0[edge] + (r + 0.5 - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    order = np.lexsort((x, r))
    r, x = r[order], x[order]
    # along each row the crossings pair up: inside from the 1st to the 2nd, the 3rd to the 4th …
    row_start = np.r_[0, np.flatnonzero(np.diff(r)) + 1]
    rank = np.arange(len(r)) - np.repeat(row_start, np.diff(np.r_[row_start, len(r)]))
    opening = np.flatnonzero(rank % 2 == 0)
    rows = r[opening]
    start = np.clip(np.ceil(x[opening] - 0.5), 0, width).astype(np.int64)
    stop = np.clip(np.ceil(x[opening + 1] - 0.5), 0, width).astype(np.int64)
    r0, r1 = int(rows.min()), int(rows.max()) + 1
    c0, c1 = int(start.min()), int(stop.max())
    if c1 <= c0:
        return None
    span = c1 - c0 + 1
    size = (r1 - r0) * span
    flat = (rows - r0) * span
    diff = np.bincount(flat + start - c0, minlength=size) - np.bincount(flat + stop - c0, minlength=size)
    return (r0, c0), np.cumsum(diff.reshape(r1 - r0, span), axis=1)[:, : c1 - c0] > 0


def class_image(shapes: gpd.GeoDataFrame, grade: np.ndarray, colours: Sequence[str], *, opacity: float,
                cell_m: float | None = None) -> RasterImage | None:
    """
    Burn polygons (or points, as squares of ``cell_m``) coloured by class into one PNG on a Web Mercator grid.

    Leaflet stretches an image overlay linearly between its corners in Web
    Mercator, so the pixels are laid out in Web Mercator metres and every
    cell lands where its polygon is.

    Parameters
    ----------
    shapes
        Cell polygons or points, any CRS.
    grade
        Class index (0-based) of each row into ``colours``.
    colours
        Hex colour of each class.
    opacity
        Alpha of the coloured pixels (0..1), the same as the legend's.
    cell_m
        Side of a cell (metres); default the median side of the polygons, or 100 m for points.

    Returns
    -------
    RasterImage or None
        None when there is nothing to draw.
    """
    from PIL import Image
    from rasterio import features
    from rasterio.transform import from_origin

    if shapes.empty:
        return None
    merc = shapes.to_crs("EPSG:3857")
    geoms = np.asarray(merc.geometry.values)
    # the middle latitude of the extent, from the Web Mercator bounds (not reprojecting every vertex again)
    lat = float(np.mean(_mercator_lat(shapely.total_bounds(geoms)[[1, 3]])))
    scale = 1.0 / math.cos(math.radians(lat))  # Web Mercator metres per ground metre
    points = shapely.get_type_id(geoms) == 0
    if cell_m is None:
        sides = np.sqrt(shapely.area(geoms[~points])) / scale if (~points).any() else np.array([100.0])
        cell_m = float(np.median(sides))
    if points.any():
        half = cell_m * scale / 2.0
        x, y = shapely.get_x(geoms[points]), shapely.get_y(geoms[points])
        geoms = geoms.copy()
        geoms[points] = shapely.box(x - half, y - half, x + half, y + half)
    west, south, east, north = shapely.total_bounds(geoms)
    pixel = cell_m * scale / RASTER_PIXELS_PER_CELL
    pixel = max(pixel, max(east - west, north - south) / RASTER_MAX_SIDE)
    width, height = max(1, int(math.ceil((east - west) / pixel))), max(1, int(math.ceil((north - south) / pixel)))
    # pixels fit the extent exactly (a little off square), so the image's corners are the cells' corners
    pixel_x, pixel_y = max(east - west, pixel) / width, max(north - south, pixel) / height
    values = np.asarray(grade, int) + 1
    boxes = shapely.bounds(geoms)
    if np.allclose(shapely.area(geoms), (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), rtol=1e-6):
        # axis-aligned cells (a WGS-84 grid stays one in Web Mercator): fill pixel blocks, no polygon burning
        burnt = np.zeros((height, width), dtype="uint8")
        c0 = np.round((boxes[:, 0] - west) / pixel_x).astype(int)
        c1 = np.round((boxes[:, 2] - west) / pixel_x).astype(int)
        r0 = np.round((north - boxes[:, 3]) / pixel_y).astype(int)
        r1 = np.round((north - boxes[:, 1]) / pixel_y).astype(int)
        for a, b, c, d, v in zip(r0.tolist(), r1.tolist(), c0.tolist(), c1.tolist(), values.tolist()):
            burnt[a:b, c:d] = v
    elif np.isin(shapely.get_type_id(geoms), [3, 6]).all():
        # (multi)polygons: filled by scanlines in arrays, the same pixels as GDAL (rasterio's GeoJSON conversion of a
        # county's walking areas, a Python loop over every vertex, took 0.3 s an image)
        burnt = burn_polygons(geoms, values, (height, width), (west, north, pixel_x, pixel_y))
    else:
        burnt = features.rasterize(
            zip(geoms, values.tolist()), out_shape=(height, width),
            transform=from_origin(west, north, pixel_x, pixel_y), fill=0, dtype="uint8", all_touched=False,
        )
    palette = [0, 0, 0]
    for colour in colours:
        palette += [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    image = Image.fromarray(burnt, mode="P")
    image.putpalette(palette + [0, 0, 0] * (256 - len(palette) // 3))
    alpha = int(round(255 * opacity))
    image.info["transparency"] = bytes([0] + [alpha] * len(colours))
    buffer = io.BytesIO()
    # as few bits a pixel as the classes need (1 bit for one colour): smaller than 8 bits at zlib's maximum, and
    # about 20 times faster to encode at its default level
    bits = next(b for b in (1, 2, 4, 8) if len(colours) + 1 <= 2 ** b)
    image.save(buffer, format="PNG", compress_level=6, bits=bits, transparency=image.info["transparency"])
    top, bottom, right = north, north - height * pixel_y, west + width * pixel_x
    bounds = [[float(_mercator_lat(np.array(bottom))), float(np.degrees(west / _MERCATOR_R))],
              [float(_mercator_lat(np.array(top))), float(np.degrees(right / _MERCATOR_R))]]
    uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return RasterImage(uri, [[round(v, 7) for v in corner] for corner in bounds], (height, width))
