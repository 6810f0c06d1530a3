"""Ground distances (metres): one definition for edge lengths, access legs and positions along edges."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from pyproj import CRS, Proj, Transformer

#: the definition every length of a run uses, as the run record states it
LENGTH_DEFINITION = (
    "ground metres: planar length in the local UTM zone divided by the zone's point scale factor at the "
    "segment's midpoint (the WGS-84 geodesic to within 1 mm per km on segments under 1 km) "
    "/ 地面距离：UTM 平面长度除以该处投影比例因子"
)

# WGS-84 ellipsoid
_A = 6_378_137.0
_F = 1.0 / 298.257223563
_E2 = _F * (2.0 - _F)
#: rectifying radius: metres of meridian arc per radian of latitude, on average
_RECTIFYING_RADIUS = 6_367_449.146


@lru_cache(maxsize=32)
def _transverse_mercator(crs: CRS) -> tuple[float, float, float] | None:
    """(k0, false easting, false northing) of a transverse Mercator (UTM, Gauss-Krüger) CRS, else None."""
    operation = crs.coordinate_operation
    if operation is None or operation.method_name != "Transverse Mercator":
        return None
    values = {p.name: float(p.value) for p in operation.params}
    if values.get("Latitude of natural origin", 0.0) != 0.0 or abs(crs.ellipsoid.semi_major_metre - _A) > 1.0:
        return None
    return (values.get("Scale factor at natural origin", 1.0), values.get("False easting", 0.0),
            values.get("False northing", 0.0))


def scale_factor(crs, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """
    The projection's point scale factor at projected positions (grid metres per ground metre).

    For transverse Mercator zones (UTM) the series k = k0 (1 + E²/2R² + E⁴/24R⁴)
    with E the distance from the central meridian on the ellipsoid and R the
    mean radius of curvature at the point's latitude (agrees with PROJ's
    factors to about 1e-8); for any other projected CRS PROJ's own factors;
    1 for a geographic CRS (no planar lengths are taken there) and for
    coordinates without a CRS (a local plane whose metres are ground metres).

    Parameters
    ----------
    crs
        CRS of ``x``, ``y``.
    x, y
        Projected coordinates (metres).

    Returns
    -------
    numpy.ndarray
        Scale factor per position (dimensionless, e.g. 0.9996 … 1.0008 in a UTM zone).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if crs is None or crs == "":
        return np.ones(np.broadcast(x, y).shape)  # a plane without a CRS: its metres are ground metres
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        return np.ones(np.broadcast(x, y).shape)
    tm = _transverse_mercator(crs)
    if tm is not None:
        k0, false_easting, false_northing = tm
        # latitude of the foot point, near enough for the radius of curvature
        phi = (y - false_northing) / k0 / _RECTIFYING_RADIUS
        s2 = np.sin(phi) ** 2
        meridional = _A * (1.0 - _E2) / (1.0 - _E2 * s2) ** 1.5
        normal = _A / np.sqrt(1.0 - _E2 * s2)
        e = (x - false_easting) / k0
        q = e * e / (meridional * normal)
        return k0 * (1.0 + q / 2.0 + q * q / 24.0)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(Proj(crs).get_factors(lon, lat).meridional_scale, dtype=float)


def ground_lengths(crs, x0, y0, x1, y1) -> np.ndarray:
    """
    Ground length of straight projected segments (metres).

    Parameters
    ----------
    crs
        CRS of the coordinates (projected, metres).
    x0, y0, x1, y1
        Segment ends.

    Returns
    -------
    numpy.ndarray
        Planar length divided by the scale factor at each segment's midpoint.
    """
    x0, y0, x1, y1 = (np.asarray(v, dtype=float) for v in (x0, y0, x1, y1))
    planar = np.hypot(x1 - x0, y1 - y0)
    return planar / scale_factor(crs, (x0 + x1) / 2.0, (y0 + y1) / 2.0)
