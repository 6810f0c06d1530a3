"""Convert between WGS-84, GCJ-02 (Amap/Tencent) and BD-09 (Baidu), and pick a local UTM CRS.

GCJ-02 is WGS-84 plus a deliberate, position-dependent offset of 300–600 m
inside China (none outside). BD-09 is a further rotation/scaling of GCJ-02.
The forward transforms are the published formulas; the inverses have no
closed form, so they are solved by fixed-point iteration until the round trip
agrees to about 1e-9 degrees (≈ 0.1 mm). CGCS2000 (EPSG:4490) agrees with
WGS-84 to well under a metre at this purpose and is treated as WGS-84.

All functions take and return NumPy arrays (or scalars) of longitudes and
latitudes in degrees.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from pyproj import CRS

# Krasovsky 1940 ellipsoid parameters used by the GCJ-02 algorithm
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

#: rough outline of where GCJ-02 offsets apply (the usual bounding box test)
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)


def in_china(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """
    Whether points fall in the box where GCJ-02 offsets apply.

    Parameters
    ----------
    lon, lat
        Degrees.

    Returns
    -------
    numpy.ndarray of bool
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon >= CHINA_BBOX[0]) & (lon <= CHINA_BBOX[2]) & (lat >= CHINA_BBOX[1]) & (lat <= CHINA_BBOX[3])


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj02_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offset (degrees) that GCJ-02 adds to a WGS-84 position."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float), scalar


def _out(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike):
    """
    WGS-84 → GCJ-02 (the forward, closed-form transform).

    Parameters
    ----------
    lon, lat
        WGS-84 degrees (scalars or arrays).

    Returns
    -------
    tuple
        GCJ-02 longitude and latitude, degrees.
    """
    lon, lat, scalar = _as_arrays(lon, lat)
    dlon, dlat = _gcj02_offset(lon, lat)
    return _out(lon + dlon, lat + dlat, scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, *, tolerance_deg: float = 1e-9, max_iter: int = 30):
    """
    GCJ-02 → WGS-84 by fixed-point iteration of the forward transform.

    Each step corrects the estimate by the residual of the forward transform;
    the offset field is smooth, so this converges to ~1e-9 degrees within a
    handful of steps (the round-trip error is far below 0.5 m).

    Parameters
    ----------
    lon, lat
        GCJ-02 degrees.
    tolerance_deg
        Stop when every point's residual is below this (degrees).
    max_iter
        Upper bound on iterations.

    Returns
    -------
    tuple
        WGS-84 longitude and latitude, degrees.
    """
    lon, lat, scalar = _as_arrays(lon, lat)
    return _out(*_invert(wgs84_to_gcj02, lon, lat, lon.copy(), lat.copy(), tolerance_deg, max_iter), scalar)


def _invert(forward, lon, lat, est_lon, est_lat, tolerance_deg: float, max_iter: int):
    """
    Solve ``forward(x) = (lon, lat)`` by fixed-point iteration from an estimate.

    Each step corrects the estimate by the forward transform's residual; the
    offset fields are smooth, so a handful of steps reach ``tolerance_deg``.
    """
    for _ in range(max_iter):
        fwd_lon, fwd_lat = forward(est_lon, est_lat)
        res_lon = np.asarray(fwd_lon) - lon
        res_lat = np.asarray(fwd_lat) - lat
        est_lon = est_lon - res_lon
        est_lat = est_lat - res_lat
        if np.nanmax(np.abs(np.concatenate([np.ravel(res_lon), np.ravel(res_lat)])), initial=0.0) < tolerance_deg:
            break
    return est_lon, est_lat


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike):
    """GCJ-02 → BD-09 (closed form). Degrees in, degrees out."""
    lon, lat, scalar = _as_arrays(lon, lat)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return _out(z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006, scalar)


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, *, tolerance_deg: float = 1e-10, max_iter: int = 30):
    """
    BD-09 → GCJ-02: the closed-form approximation refined by fixed-point iteration.

    Parameters
    ----------
    lon, lat
        BD-09 degrees.

    Returns
    -------
    tuple
        GCJ-02 longitude and latitude, degrees.
    """
    lon, lat, scalar = _as_arrays(lon, lat)
    x = lon - 0.0065
    y = lat - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    # the closed-form approximation is the starting point of the iteration
    return _out(*_invert(gcj02_to_bd09, lon, lat, z * np.cos(theta), z * np.sin(theta), tolerance_deg, max_iter),
                scalar)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike):
    """BD-09 → WGS-84 (via GCJ-02, both steps iterative inverses)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike):
    """WGS-84 → BD-09 (via GCJ-02, closed form)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


_TO_WGS84 = {
    "wgs84": lambda lon, lat: (np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)),
    "cgcs2000": lambda lon, lat: (np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)),
    "gcj02": gcj02_to_wgs84,
    "bd09": bd09_to_wgs84,
}
_FROM_WGS84 = {
    "wgs84": lambda lon, lat: (np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)),
    "cgcs2000": lambda lon, lat: (np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)),
    "gcj02": wgs84_to_gcj02,
    "bd09": wgs84_to_bd09,
}


def to_wgs84(lon: ArrayLike, lat: ArrayLike, system: str):
    """
    Convert coordinates from a named system to WGS-84.

    Parameters
    ----------
    lon, lat
        Degrees in ``system``.
    system
        One of ``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``.
    """
    try:
        return _TO_WGS84[system](lon, lat)
    except KeyError:
        raise ValueError(f"unknown coordinate system {system!r}; use wgs84, cgcs2000, gcj02 or bd09") from None


def from_wgs84(lon: ArrayLike, lat: ArrayLike, system: str):
    """Convert WGS-84 coordinates to a named system (for display on GCJ-02/BD-09 basemaps)."""
    try:
        return _FROM_WGS84[system](lon, lat)
    except KeyError:
        raise ValueError(f"unknown coordinate system {system!r}; use wgs84, cgcs2000, gcj02 or bd09") from None


def transform_geometries(geoseries, system_from: str, system_to: str):
    """
    Convert every vertex of a GeoSeries between lon/lat systems.

    Parameters
    ----------
    geoseries
        geopandas.GeoSeries in degrees (any geometry type).
    system_from, system_to
        Names as in :func:`to_wgs84`.

    Returns
    -------
    geopandas.GeoSeries
        Same index; CRS EPSG:4326 (GCJ-02/BD-09 have no EPSG code, so the
        CRS label stays WGS-84 and the caller must know what it holds).
    """
    import shapely

    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1], system_from)
        lon, lat = from_wgs84(lon, lat, system_to)
        return np.column_stack([lon, lat])

    if system_from == system_to:
        return geoseries.copy()
    converted = shapely.transform(np.asarray(geoseries.values), convert)
    import geopandas as gpd

    return gpd.GeoSeries(converted, index=geoseries.index, crs="EPSG:4326")


def utm_crs_for(lon: float, lat: float) -> CRS:
    """
    The WGS-84 / UTM zone CRS containing a point, for metric work.

    Parameters
    ----------
    lon, lat
        Degrees.

    Returns
    -------
    pyproj.CRS
        e.g. EPSG:32650 for Beijing.
    """
    zone = int((lon + 180.0) // 6.0) + 1
    zone = min(max(zone, 1), 60)
    epsg = (32600 if lat >= 0 else 32700) + zone
    return CRS.from_epsg(epsg)
