"""Elderly demand points: the entry points for raster demand and census calibration, and the units each point lies in."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

# the rasters and the calibration live in their own modules; their names stay reachable here
from coverage.calibration import PLAUSIBLE_FACTOR_RANGE, _normalise_code, calibrate_to_totals, zonal_totals
from coverage.rasters import (
    WORLDPOP_BAND_WIDTH, WORLDPOP_OLDEST_BAND, ElderlyRaster, check_lonlat_bounds, demand_points, read_elderly_raster,
)
from coverage.spatial import points_in_polygons

__all__ = [
    "PLAUSIBLE_FACTOR_RANGE",
    "WORLDPOP_BAND_WIDTH",
    "WORLDPOP_OLDEST_BAND",
    "ElderlyRaster",
    "read_elderly_raster",
    "demand_points",
    "zonal_totals",
    "calibrate_to_totals",
    "check_lonlat_bounds",
    "assign_units",
]



# ----------------------------------------------------------------------------------------------
# Administrative units of each demand point
# ----------------------------------------------------------------------------------------------

_LEVELS = ("county", "town", "village")


def _units_text(units: gpd.GeoDataFrame, column: str) -> pd.Series:
    if column not in units.columns:
        return pd.Series(pd.NA, index=units.index, dtype="string")
    return units[column].map(_normalise_code).astype("string")


def _polygon_join(points: np.ndarray, polygons: gpd.GeoDataFrame) -> np.ndarray:
    """Code of the first polygon containing each point (None where none does)."""
    codes = np.full(len(points), None, dtype=object)
    if len(polygons) == 0:
        return codes
    point_index, polygon_index = points_in_polygons(points, np.asarray(polygons.geometry.values))
    first = np.unique(point_index, return_index=True)[1]
    codes[point_index[first]] = polygons["code"].to_numpy(dtype=object)[polygon_index[first]]
    return codes


def _nearest_in_groups(
    points: np.ndarray, point_groups: np.ndarray, targets: gpd.GeoDataFrame, target_groups: np.ndarray
) -> np.ndarray:
    """Code of the nearest target point sharing the point's group (None where the group has no targets)."""
    from scipy.spatial import cKDTree

    codes = np.full(len(points), None, dtype=object)
    target_xy = shapely.get_coordinates(np.asarray(targets.geometry.values))
    point_xy = shapely.get_coordinates(points)
    target_codes = targets["code"].to_numpy(dtype=object)
    for group in pd.unique(point_groups):
        in_group = point_groups == group
        candidates = target_groups == group
        if group is None or not candidates.any():
            continue
        _, nearest = cKDTree(target_xy[candidates]).query(point_xy[in_group])
        codes[in_group] = target_codes[candidates][nearest]
    return codes


def assign_units(demand: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """
    County, town and village code and urban flag of each demand point.

    Polygon units are joined point-in-polygon per level (in the demand
    points' CRS). Villages given only as points: each demand point takes the
    nearest village point of its own town (villages whose ``parent_code`` is
    the town, else those lying inside the town polygon); without town
    polygons, the nearest village point of its county, or overall. Missing
    town and county codes are then filled from the ``parent_code`` of the
    level below.

    Parameters
    ----------
    demand
        Demand points (projected CRS), e.g. from :func:`demand_points`.
    units
        Administrative units per the ``units`` contract (``code``, ``name``,
        ``level`` county/town/village, ``parent_code``, ``urban``, geometry
        Polygon/MultiPolygon, Point or None; EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``demand`` with ``village_code``, ``town_code``,
        ``county_code`` (text, NA when unassigned) and ``urban`` (boolean,
        NA when unknown, taken from the village).
    """
    result = demand.copy()
    table = units.to_crs(demand.crs) if units.crs is not None else units.set_crs(demand.crs)
    table = gpd.GeoDataFrame(
        {
            "code": _units_text(table, "code").to_numpy(dtype=object),
            "level": table["level"].astype(str).str.lower().to_numpy(),
            "parent_code": _units_text(table, "parent_code").to_numpy(dtype=object),
            "urban": (
                table["urban"].astype("boolean")
                if "urban" in table.columns
                else pd.array([pd.NA] * len(table), dtype="boolean")
            ),
        },
        geometry=table.geometry.values,
        crs=demand.crs,
    )
    has_geometry = table.geometry.notna() & ~table.geometry.is_empty
    is_polygon = has_geometry & table.geom_type.isin(["Polygon", "MultiPolygon"])
    is_point = has_geometry & (table.geom_type == "Point")
    points = np.asarray(result.geometry.values)

    assigned = {}
    for level in _LEVELS:
        assigned[level] = _polygon_join(points, table[is_polygon & (table["level"] == level)])

    village_points = table[is_point & (table["level"] == "village")]
    missing = pd.isna(assigned["village"])
    if len(village_points) and missing.any():
        assigned["village"][missing] = _nearest_village(
            points[missing], assigned, missing, village_points, table, is_polygon
        )

    parent_of = dict(zip(table["code"], table["parent_code"]))
    for lower, upper in (("village", "town"), ("town", "county")):
        fill = pd.isna(assigned[upper]) & pd.notna(assigned[lower])
        if fill.any():
            # the parent of each distinct code once, not once per point
            codes, inverse = np.unique(assigned[lower][fill].astype(str), return_inverse=True)
            parents = np.array([parent_of.get(code) for code in codes.tolist()], dtype=object)
            assigned[upper][fill] = parents[inverse]

    for level in _LEVELS:
        result[f"{level}_code"] = pd.array(assigned[level], dtype="string")
    village_urban = table[table["level"] == "village"].drop_duplicates("code").set_index("code")["urban"]
    result["urban"] = pd.array(
        village_urban.reindex(pd.Index(assigned["village"], dtype=object)).to_numpy(), dtype="boolean"
    )
    return result


def _county_of_division_code(code: str | None) -> str | None:
    """County part of a 12-digit statistical division code (digits 1–6), as a 12-digit code."""
    if code is not None and re.fullmatch(r"\d{12}", code):
        return code[:6] + "000000"
    return None


def _county_key(code: str | None) -> str | None:
    """Compare county codes whether written with 6 digits (adcode) or 12 (statistical code)."""
    if code is None or code is pd.NA:
        return None
    if re.fullmatch(r"\d{6}(?:000000)?", code):
        return code[:6]
    return code


def _nearest_village(
    points: np.ndarray,
    assigned: dict[str, np.ndarray],
    missing: np.ndarray,
    village_points: gpd.GeoDataFrame,
    table: gpd.GeoDataFrame,
    is_polygon: pd.Series,
) -> np.ndarray:
    """Nearest village point within the demand point's town (or county, or overall)."""
    village_parent = village_points["parent_code"].to_numpy(dtype=object)
    town_polygons = table[is_polygon & (table["level"] == "town")]
    if len(town_polygons):
        groups = village_parent.copy()
        # towns whose villages carry no usable parent code: take the village points inside the town polygon
        towns_with_villages = set(village_parent[pd.notna(village_parent)])
        orphan_towns = town_polygons[~town_polygons["code"].isin(towns_with_villages)]
        if len(orphan_towns):
            inside = _polygon_join(np.asarray(village_points.geometry.values), orphan_towns)
            groups = np.where(pd.isna(groups) | ~np.isin(groups, list(towns_with_villages)), inside, groups)
        return _nearest_in_groups(points, assigned["town"][missing], village_points, groups)
    parent_of = dict(zip(table["code"], table["parent_code"]))
    village_county = [
        parent_of.get(parent) or _county_of_division_code(code)
        for code, parent in zip(village_points["code"], village_parent)
    ]
    village_county = np.array([_county_key(code) for code in village_county], dtype=object)
    # the key of each distinct county code once, not once per demand point
    point_counties = assigned["county"][missing]
    known = pd.notna(point_counties)
    county_of_point = np.full(len(point_counties), None, dtype=object)
    if known.any():
        codes, inverse = np.unique(point_counties[known].astype(str), return_inverse=True)
        county_of_point[known] = np.array([_county_key(code) for code in codes.tolist()], dtype=object)[inverse]
    if pd.notna(county_of_point).any() and pd.notna(village_county).any():
        return _nearest_in_groups(points, county_of_point, village_points, village_county)
    everyone = np.full(len(points), "all", dtype=object)
    return _nearest_in_groups(points, everyone, village_points, np.full(len(village_points), "all", dtype=object))
