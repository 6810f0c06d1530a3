"""Elderly persons per zone (edge cells split by covered area) and calibration of demand points to census totals."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import CRS
from rasterio import features
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from rasterio.windows import transform as window_transform

from coverage._errors import InputDataError
from coverage.rasters import ElderlyRaster, _outward_window, _to_lonlat
from coverage.spatial import points_in_polygons

#: calibration factors outside this range get a warning in the factors table
PLAUSIBLE_FACTOR_RANGE = (0.67, 1.5)
_SHARE_TOLERANCE = 1e-9
# a cell counted more than 1.5 times over is nested zones (city + districts), not a sliver between neighbours
_NESTED_SHARE = 1.5
_NESTED_POINT_SHARE = 0.05


# ----------------------------------------------------------------------------------------------
# Partial-cell coverage and zonal totals
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coverage:
    """Cells of a grid covered by a polygon: whole cells have share 1, edge cells the covered area share."""

    rows: np.ndarray
    cols: np.ndarray
    share: np.ndarray
    pieces: np.ndarray | None  # cell ∩ polygon for partly covered cells, None for whole cells


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 × 3 binary dilation (a cell becomes True when it or a neighbour is)."""
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    wide = grown.copy()
    wide[:, 1:] |= grown[:, :-1]
    wide[:, :-1] |= grown[:, 1:]
    return wide


def _cell_boxes(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    x0 = transform.c + cols * transform.a
    x1 = x0 + transform.a
    y0 = transform.f + rows * transform.e
    y1 = y0 + transform.e
    return shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))


def _cell_coverage(geometry, transform: Affine, shape: tuple[int, int], *, with_pieces: bool = False) -> _Coverage:
    """
    Share of each grid cell's area inside ``geometry`` (same CRS as the grid).

    Cells away from the outline come from an ``all_touched`` rasterisation
    (share 1); cells within one cell of the outline get the exact area of
    cell ∩ polygon from shapely, so adjacent polygons split a shared cell
    between them and totals add up.
    """
    if transform.b != 0 or transform.d != 0:
        raise ValueError("rotated raster grids are not supported")
    empty = _Coverage(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), None)
    if geometry is None or geometry.is_empty:
        return empty
    height, width = shape
    window = _outward_window(window_from_bounds(*geometry.bounds, transform=transform), height, width)
    if window is None:
        return empty
    # one cell of margin so that the dilated outline is never cut at the window edge
    window = _outward_window(
        Window(window.col_off - 1, window.row_off - 1, window.width + 2, window.height + 2), height, width
    )
    sub_transform = window_transform(window, transform)
    out_shape = (int(window.height), int(window.width))
    burn = {"out_shape": out_shape, "transform": sub_transform, "fill": 0, "all_touched": True, "dtype": "uint8"}
    touched = features.rasterize([(geometry, 1)], **burn).astype(bool)
    outline = features.rasterize([(geometry.boundary, 1)], **burn).astype(bool)
    near_outline = _dilate(outline)
    inner_rows, inner_cols = np.nonzero(touched & ~near_outline)
    edge_rows, edge_cols = np.nonzero(near_outline)

    row_off, col_off = int(window.row_off), int(window.col_off)
    # boxes from the whole grid's transform and absolute cell indices, as _outside_pieces builds them: a box
    # from the window's transform differs in the last digit, and box minus pieces then keeps a sliver of the zone
    boxes = _cell_boxes(transform, edge_rows + row_off, edge_cols + col_off)
    shapely.prepare(geometry)
    touching = shapely.intersects(geometry, boxes)
    edge_rows, edge_cols, boxes = edge_rows[touching], edge_cols[touching], boxes[touching]
    whole = shapely.contains(geometry, boxes)  # cheap prepared test: exact areas only where the outline crosses
    pieces = np.full(len(boxes), None, dtype=object)
    edge_share = np.ones(len(boxes))
    pieces[~whole] = shapely.intersection(boxes[~whole], geometry)
    edge_share[~whole] = shapely.area(pieces[~whole]) / shapely.area(boxes[~whole])
    keep = edge_share > _SHARE_TOLERANCE
    edge_rows, edge_cols, edge_share, pieces = edge_rows[keep], edge_cols[keep], edge_share[keep], pieces[keep]
    whole = edge_share >= 1.0 - _SHARE_TOLERANCE
    edge_share[whole] = 1.0

    rows = np.concatenate([inner_rows, edge_rows]).astype(np.int64) + row_off
    cols = np.concatenate([inner_cols, edge_cols]).astype(np.int64) + col_off
    share = np.concatenate([np.ones(len(inner_rows)), edge_share])
    all_pieces = None
    if with_pieces:
        all_pieces = np.empty(len(rows), dtype=object)
        pieces[whole] = None
        all_pieces[len(inner_rows) :] = pieces
    return _Coverage(rows, cols, share, all_pieces)


def _normalise_code(value) -> str | None:
    """Division code as text: '420103.0' → '420103', Tianditu '156420103' → '420103'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    if len(text) == 9 and text.startswith("156") and text.isdigit():
        text = text[3:]
    return text or None


def _zones_with_codes(zones: gpd.GeoDataFrame, code_column: str) -> gpd.GeoDataFrame:
    """Zones with normalised text codes and valid polygon geometry, in their own CRS."""
    if code_column not in zones.columns:
        raise InputDataError(
            f"the zones have no '{code_column}' column (they have {', '.join(map(str, zones.columns))})",
            column=code_column,
            hint=f"rename the zone code column to '{code_column}' or pass code_column=",
        )
    if len(zones) == 0:
        raise InputDataError("no zones given", hint="pass at least one zone polygon")
    if zones.crs is None:
        raise InputDataError("the zones have no CRS", hint="set it, e.g. zones.set_crs('EPSG:4326')")
    codes = zones[code_column].map(_normalise_code)
    if codes.isna().any():
        first = int(np.flatnonzero(codes.isna().to_numpy())[0])
        raise InputDataError("a zone has no code", row=first + 1, column=code_column)
    clean = gpd.GeoDataFrame(
        {"code": codes.to_numpy(dtype=object)},
        geometry=shapely.make_valid(np.asarray(zones.geometry.values)),
        crs=zones.crs,
    )
    if "name" in zones.columns:
        clean.insert(1, "name", zones["name"].to_numpy())
    return clean.reset_index(drop=True)


def zonal_totals(raster: ElderlyRaster, zones: gpd.GeoDataFrame, *, code_column: str = "code") -> pd.DataFrame:
    """
    Elderly persons inside each zone, with edge cells split by covered area.

    A cell on a zone's outline counts with the share of its area inside the
    zone (exact cell ∩ polygon areas for the cells along the outline, whole
    cells elsewhere), so zones that tile an area add up to the area's total.
    Parts of a zone beyond the raster (or the window read) count as 0.

    Parameters
    ----------
    raster
        From :func:`read_elderly_raster`.
    zones
        Polygons with a ``code_column`` column, any CRS.
    code_column
        Column holding the zone codes.

    Returns
    -------
    pandas.DataFrame
        ``code`` (text, Tianditu '156' prefixes dropped), ``name`` when the
        zones have one, ``elderly`` (persons, float), in the zones' order.
    """
    clean = _zones_with_codes(zones, code_column).to_crs(raster.crs)
    totals = []
    for geometry in clean.geometry:
        coverage = _cell_coverage(geometry, raster.transform, raster.shape)
        totals.append(float(np.sum(raster.persons[coverage.rows, coverage.cols] * coverage.share)))
    result = pd.DataFrame(clean.drop(columns="geometry"))
    result["elderly"] = totals
    return result


# ----------------------------------------------------------------------------------------------
# Calibration to census totals
# ----------------------------------------------------------------------------------------------


def _totals_by_code(totals, code_column: str, total_column: str) -> pd.Series:
    """Census totals as a float Series indexed by normalised code."""
    if isinstance(totals, pd.DataFrame):
        for column in (code_column, total_column):
            if column not in totals.columns:
                raise InputDataError(
                    f"the totals table has no '{column}' column",
                    column=column,
                    hint="pass code_column= / total_column= naming the code and the total",
                )
        codes = totals[code_column].map(_normalise_code)
        values = pd.to_numeric(totals[total_column], errors="coerce")
    elif isinstance(totals, (pd.Series, Mapping)):
        series = pd.Series(totals)
        codes = pd.Series(series.index, index=series.index).map(_normalise_code)
        values = pd.to_numeric(series, errors="coerce")
    else:
        raise TypeError("totals must be a DataFrame, a Series or a mapping code → persons")
    by_code = pd.Series(values.to_numpy(dtype=float), index=codes.to_numpy(dtype=object))
    by_code = by_code[by_code.index.notna()]
    duplicated = by_code.index[by_code.index.duplicated()].unique()
    if len(duplicated):
        raise InputDataError(
            f"the totals list code(s) {', '.join(map(str, duplicated[:5]))} more than once",
            column=code_column,
            hint="keep one row per zone code (e.g. the county rows of read_census_60plus, level == 'county')",
        )
    return by_code


def _grid_of(demand: gpd.GeoDataFrame, raster: ElderlyRaster | None) -> dict | None:
    if raster is not None:
        return {"transform": raster.transform, "crs": raster.crs, "shape": raster.shape}
    stored = demand.attrs.get("raster_grid")
    if not stored:
        return None
    return {"transform": Affine(*stored["transform"]), "crs": CRS.from_wkt(stored["crs"]), "shape": stored["shape"]}


def _cell_parts(
    demand: gpd.GeoDataFrame, positions: np.ndarray, zones_in_grid: gpd.GeoDataFrame, grid: dict
) -> pd.DataFrame:
    """Split raster demand points into (point, zone, share, piece) parts by the cells' covered area."""
    rows = demand["row"].to_numpy(dtype=np.int64)[positions]
    cols = demand["col"].to_numpy(dtype=np.int64)[positions]
    n_cols = int(max(grid["shape"][1], cols.max(initial=-1) + 1))
    n_rows = int(max(grid["shape"][0], rows.max(initial=-1) + 1))
    cell_keys = pd.Index(rows * n_cols + cols)
    if cell_keys.has_duplicates:
        raise InputDataError(
            "several demand points share one raster cell",
            hint="calibrate the output of demand_points(), not an already calibrated table",
        )
    frames = []
    for zone_index, geometry in enumerate(zones_in_grid.geometry):
        coverage = _cell_coverage(geometry, grid["transform"], (n_rows, n_cols), with_pieces=True)
        found = cell_keys.get_indexer(coverage.rows * n_cols + coverage.cols)
        hit = found >= 0
        frames.append(
            pd.DataFrame(
                {
                    "source": positions[found[hit]],
                    "zone": zone_index,
                    "share": coverage.share[hit],
                    "piece": coverage.pieces[hit],
                }
            )
        )
    parts = pd.concat(frames, ignore_index=True)
    parts = parts.astype({"source": np.int64, "zone": np.int64, "share": float})
    covered = parts.groupby("source")["share"].sum()
    nested = covered[covered > _NESTED_SHARE]
    if len(nested):
        source = nested.index[0]
        codes = zones_in_grid["code"].to_numpy()[parts.loc[parts["source"] == source, "zone"].to_numpy()]
        raise InputDataError(
            f"zones overlap: {len(nested)} populated cells lie wholly in more than one zone "
            f"(e.g. in {', '.join(map(str, codes))})",
            hint="pass zones of one level only (e.g. districts, not a city together with its districts)",
        )
    # slivers where neighbouring outlines overlap a little: share the cell out in proportion
    parts["share"] /= covered.clip(lower=1.0).reindex(parts["source"]).to_numpy()
    outside_share = 1.0 - covered.clip(upper=1.0).reindex(positions, fill_value=0.0)
    outside = outside_share[outside_share > _SHARE_TOLERANCE]
    outside_parts = pd.DataFrame(
        {"source": outside.index.to_numpy(np.int64), "zone": -1, "share": outside.to_numpy(), "piece": None}
    )
    partly = outside_parts["share"].to_numpy() < 1.0 - _SHARE_TOLERANCE
    if partly.any():
        outside_parts.loc[partly, "piece"] = _outside_pieces(
            outside_parts.loc[partly, "source"].to_numpy(), parts, demand, grid
        )
    return pd.concat([parts, outside_parts], ignore_index=True)


def _outside_pieces(sources: np.ndarray, parts: pd.DataFrame, demand, grid: dict) -> np.ndarray:
    """The part of each cell outside all zones (cell minus the union of its zone pieces)."""
    rows = demand["row"].to_numpy(dtype=np.int64)[sources]
    cols = demand["col"].to_numpy(dtype=np.int64)[sources]
    boxes = _cell_boxes(grid["transform"], rows, cols)
    inside = parts[parts["source"].isin(sources)]
    box_at = pd.Series(np.arange(len(sources)), index=sources).loc[inside["source"].to_numpy()].to_numpy()
    pieces = inside["piece"].to_numpy()
    pieces = np.where(pd.isna(pieces), boxes[box_at], pieces)
    order = np.argsort(box_at, kind="stable")
    cells, starts = np.unique(box_at[order], return_index=True)
    covered = np.full(len(sources), None, dtype=object)
    for cell, group in zip(cells, np.split(pieces[order], starts[1:])):
        covered[cell] = shapely.union_all(group)
    outside = boxes.copy()
    has_cover = pd.notna(covered)
    outside[has_cover] = shapely.difference(boxes[has_cover], covered[has_cover].astype(object))
    return outside


def _point_parts(demand: gpd.GeoDataFrame, positions: np.ndarray, zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Non-raster demand points (buildings, uniform grid) go wholly to the zone containing them."""
    points = demand.geometry.iloc[positions]
    zones_here = zones.to_crs(demand.crs)
    point_index, zone_index = points_in_polygons(np.asarray(points.values), np.asarray(zones_here.geometry.values))
    first = np.unique(point_index, return_index=True)[1]
    if len(point_index) - len(first) > _NESTED_POINT_SHARE * max(len(first), 1):
        raise InputDataError(
            f"zones overlap: {len(point_index) - len(first)} demand points lie in more than one zone",
            hint="pass zones of one level only (e.g. districts, not a city together with its districts)",
        )
    zone_of_point = np.full(len(positions), -1, dtype=np.int64)
    zone_of_point[point_index[first]] = zone_index[first]  # points on a sliver of overlap: the first zone
    return pd.DataFrame({"source": positions, "zone": zone_of_point, "share": 1.0, "piece": None})


def _factor_warning(factor: float, raster_total: float, census_total: float) -> str:
    low, high = PLAUSIBLE_FACTOR_RANGE
    if np.isnan(census_total):
        return "no census total for this zone: left as it is / 无普查数, 未校准"
    if raster_total <= 0:
        return "no raster population in this zone: census total not placed / 栅格中该区无人口, 无法校准"
    if factor < low or factor > high:
        return (
            f"factor {factor:.2f} is outside {low}–{high}: check that the outline and the census unit match "
            f"(boundary changes, wrong code) / 校准系数异常, 请核对边界与普查单元"
        )
    return ""


def calibrate_to_totals(
    demand: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    totals,
    *,
    code_column: str = "code",
    total_column: str = "elderly",
    raster: ElderlyRaster | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """
    Scale demand points so that each zone's elderly total equals its census total.

    Raster demand points are split where their cell straddles a zone outline:
    each zone gets the part of the cell's persons given by the covered area
    share (the same weighting as :func:`zonal_totals`), placed at a point
    inside that part of the cell. Every part is then multiplied by its zone's
    factor ``census_total / raster_total``, so the calibrated persons with a
    given ``zone_code`` sum to the census total (to rounding). Points outside
    all zones (and zones without a census total) are left as they are.

    Parameters
    ----------
    demand
        From :func:`demand_points` (or :func:`distribute_to_buildings`:
        non-raster points go wholly to the zone containing them).
    zones
        Polygons with a ``code_column`` column, any CRS; one level only
        (nested zones such as a city with its districts are an error; thin
        slivers where neighbouring outlines overlap are shared out).
    totals
        DataFrame with ``code_column`` and ``total_column`` (e.g. from
        :func:`read_census_60plus`), or a Series/mapping code → persons.
        Codes match after normalisation (Tianditu '156' prefixes and '.0'
        suffixes dropped).
    code_column, total_column
        Column names of the codes (zones and totals) and of the totals.
    raster
        The raster the demand points came from; by default its grid is taken
        from ``demand.attrs["raster_grid"]``. Without either, raster points
        are treated as points (whole cell to the zone of its centre).

    Returns
    -------
    demand_calibrated : geopandas.GeoDataFrame
        Columns of ``demand`` with ``elderly`` calibrated, ``demand_id``
        renumbered 0…n−1 (row-major, then zone order), plus ``zone_code`` (NA outside all zones),
        ``cell_share`` (share of the cell this point holds, 1 for whole
        cells) and ``factor``.
    factors : pandas.DataFrame
        One row per zone plus a row ``code == "outside"``: ``code``, ``name``
        (when the zones have names), ``raster_total``, ``census_total``
        (persons), ``factor`` and ``warning`` (text when the factor is outside
        0.67–1.5 or the zone could not be calibrated).
    """
    clean_zones = _zones_with_codes(zones, code_column)
    census = _totals_by_code(totals, code_column, total_column)
    grid = _grid_of(demand, raster)
    if grid is None and "method" in demand.columns and demand["method"].eq("raster").any():
        warnings.warn(
            "the raster grid of the demand points is unknown (pass raster=): whole cells go to the zone "
            "containing their centre, so zone totals can differ from zonal_totals() at the edges",
            stacklevel=2,
        )
    positions = np.arange(len(demand), dtype=np.int64)
    if grid is not None and {"row", "col"} <= set(demand.columns):
        is_cell = (
            demand["method"].eq("raster").to_numpy(dtype=bool)
            if "method" in demand.columns
            else np.ones(len(demand), dtype=bool)
        )
    else:
        is_cell = np.zeros(len(demand), dtype=bool)
    frames = []
    if is_cell.any():
        frames.append(_cell_parts(demand, positions[is_cell], clean_zones.to_crs(grid["crs"]), grid))
    if (~is_cell).any():
        frames.append(_point_parts(demand, positions[~is_cell], clean_zones))
    parts = pd.concat(frames, ignore_index=True).sort_values(["source", "zone"], kind="stable", ignore_index=True)

    persons = demand["elderly"].to_numpy(dtype=float)[parts["source"].to_numpy()] * parts["share"].to_numpy()
    zone_of_part = parts["zone"].to_numpy()
    in_zone = zone_of_part >= 0
    raster_totals = np.bincount(zone_of_part[in_zone], weights=persons[in_zone], minlength=len(clean_zones))
    census_totals = census.reindex(clean_zones["code"]).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.where((raster_totals > 0) & np.isfinite(census_totals), census_totals / raster_totals, np.nan)
    applied = np.where(np.isnan(factors), 1.0, factors)
    part_factor = np.where(zone_of_part >= 0, applied[np.maximum(zone_of_part, 0)], 1.0)

    calibrated = demand.iloc[parts["source"].to_numpy()].copy()
    calibrated["elderly"] = persons * part_factor
    calibrated["demand_id"] = np.arange(len(calibrated), dtype=np.int64)
    codes = clean_zones["code"].to_numpy(dtype=object)
    calibrated["zone_code"] = pd.array(
        np.where(zone_of_part >= 0, codes[np.maximum(zone_of_part, 0)], None), dtype="string"
    )
    calibrated["cell_share"] = parts["share"].to_numpy()
    calibrated["factor"] = part_factor
    _move_to_pieces(calibrated, parts["piece"].to_numpy(), grid)
    calibrated.index = pd.RangeIndex(len(calibrated))
    calibrated.attrs = dict(demand.attrs)

    table = pd.DataFrame(clean_zones.drop(columns="geometry"))
    table["raster_total"] = raster_totals
    table["census_total"] = census_totals
    table["factor"] = factors
    table["warning"] = [_factor_warning(f, r, c) for f, r, c in zip(factors, raster_totals, census_totals)]
    outside_total = float(persons[zone_of_part < 0].sum())
    outside_row = {"code": "outside", "raster_total": outside_total, "census_total": np.nan, "factor": 1.0}
    outside_row["warning"] = (
        f"{outside_total:.0f} persons outside all zones, left uncalibrated / 区外人口未校准"
        if outside_total > 0.5
        else ""
    )
    table = pd.concat([table, pd.DataFrame([outside_row])], ignore_index=True)
    return calibrated, table


def _move_to_pieces(calibrated: gpd.GeoDataFrame, pieces: np.ndarray, grid: dict | None) -> None:
    """Put split cell parts at a point inside their part of the cell (in place)."""
    has_piece = np.array([piece is not None and not piece.is_empty for piece in pieces], dtype=bool)
    if not has_piece.any() or grid is None:
        return
    anchors = shapely.point_on_surface(pieces[has_piece].astype(object))
    x, y = shapely.get_x(anchors), shapely.get_y(anchors)
    lon, lat = _to_lonlat(x, y, grid["crs"])
    moved = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=grid["crs"]).to_crs(calibrated.crs)
    geometry = np.asarray(calibrated.geometry.values).copy()
    geometry[has_piece] = np.asarray(moved.values)
    calibrated.geometry = gpd.GeoSeries(geometry, index=calibrated.index, crs=calibrated.crs)
    if "lon" in calibrated.columns:
        calibrated.loc[has_piece, "lon"] = lon
        calibrated.loc[has_piece, "lat"] = lat
