"""Check that input coordinates are in the coordinate system declared for them, against the walking network's streets.

A facility list or a unit layer exported from Amap or Tencent is GCJ-02, from
Baidu BD-09; declared as WGS-84 every point lands 300–1,000 m away from where
it is, and every walking time is wrong without any error being raised. The
streets of the walking network (OpenStreetMap, WGS-84) are the reference:
points read in the right system lie near streets, read in a wrong system
they are scattered relative to them.

For each candidate system (:data:`CANDIDATE_SYSTEMS`) the points are
converted from that system to WGS-84 (:func:`coverage.coords.to_wgs84`) and
their straight-line distance to the nearest street is measured in metres (in
the street index's local UTM zone). A wrong declaration is reported only when
another system is *clearly* better (see :func:`crs_fit` for the rule, and the
module constants for its thresholds). Coordinates that are metres of a
projection rather than degrees are recognised on their magnitude and the
projection is guessed (UTM, CGCS2000 Gauss-Krüger with or without zone
prefix, Web Mercator).

How the rule was tuned (the 10 real OSM extracts in ``../shared/data/osm``;
80 random draws of 5, 10, 20 and 50 points per extract, each drawn set
written in WGS-84, GCJ-02 and BD-09 and checked under all three declarations;
"false alarm" = a correctly declared set flagged, "caught" = a wrongly
declared set flagged with the right system named):

- Points 15 m beside real streets: read in a wrong system their median
  distance is only 23–60 m in dense networks with footways (Nanjing Xuanwu,
  THU/PKU, Shanghai centre), 100–900 m in sparse ones (BUPT, Guixi), against
  15 m read right. The first rule tried, "best median < 0.5 × declared median
  and declared median > 60 m", caught 50 % of them (2 % in Shanghai centre).
- Building centroids (where facilities really stand: set back from the
  streets, median 14–77 m read right): in dense networks a wrong system often
  fits as well as the right one, and there is nothing to conclude.
- The spread says more than the middle: read wrongly, a quarter of the points
  land far from any street; read rightly, hardly any. The rule adopted works
  on the 75th percentile of the distances: best < :data:`RATIO_CLEARLY_BETTER`
  (0.5) × declared; declared above :data:`DECLARED_FLOOR_M` (90 m), or
  :data:`DENSE_DECLARED_FLOOR_M` (40 m) with at least
  :data:`DENSE_MIN_POINTS` (20) points; at least :data:`CLOSER_SHARE` (65 %)
  of the points nearer a street under the best system (90 % with fewer than
  10 points); at least :data:`MIN_POINTS` (5) points. False alarms: none on
  street points; on building centroids 0.6 % (5 points), 0.3 % (10), 0.4 %
  (20), 0.2 % (50), the worst extracts Guixi (few mapped streets) 1.5 % and
  Haidian CAU 1.1 %. Caught: street points 39 % (5 points), 67 % (10), 96 %
  (20), 99 % (50); building centroids 21 % (5) to 44 % (20). The median rule
  with floors 60 m / 25 m and a 75 % closer share had up to 4.9 % false alarms
  (Guixi) and caught 50–86 % of the street points.
- Unit outlines: the share of street length inside the outline does not tell
  the systems apart (THU/PKU, 0.9 km² of street blocks: 0.174 of the
  network's length inside the outline read as WGS-84, 0.168 read as the
  GCJ-02 it was); the distance from points along the outline to the streets
  does (0 m against 14–226 m for outlines that follow streets). Outlines are
  therefore sampled every :data:`OUTLINE_SPACING_M` metres and measured like
  points. The THU/PKU outline read wrongly is only 19 m off the streets in
  the median: hence a second branch for near-exact fits (best median below
  :data:`EXACT_FIT_M`, 5 m; declared median above
  :data:`EXACT_DECLARED_FLOOR_M`, 10 m; at least 20 points), which no
  building or street-offset sample ever reached.

The check cannot prove a declaration right: in dense networks a wrong one is
often missed (see the figures above). It is meant to stop the clear cases.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike
from pyproj import CRS, Transformer

from coverage import coords
from coverage._errors import InputDataError

#: lon/lat systems tried for every input
CANDIDATE_SYSTEMS = ("wgs84", "gcj02", "bd09")

#: the best system's 75th-percentile distance must be below this share of the declared system's ...
RATIO_CLEARLY_BETTER = 0.5
#: ... the declared system's 75th-percentile distance must exceed this (metres) ...
DECLARED_FLOOR_M = 90.0
#: ... or this (metres) when at least :data:`DENSE_MIN_POINTS` points are measured (dense networks) ...
DENSE_DECLARED_FLOOR_M = 40.0
#: points needed before the lower floor :data:`DENSE_DECLARED_FLOOR_M` applies
DENSE_MIN_POINTS = 20
#: ... and this share of the points must lie nearer a street under the best system than under the declared one
CLOSER_SHARE = 0.65
#: the share required instead with fewer than :data:`SMALL_SAMPLE` points
CLOSER_SHARE_SMALL = 0.9
#: below this many points :data:`CLOSER_SHARE_SMALL` applies
SMALL_SAMPLE = 10
#: near-exact fit (with :data:`DENSE_MIN_POINTS` points): a best median below this (metres: points on the
#: streets themselves, outlines traced along them) ...
EXACT_FIT_M = 5.0
#: ... against a declared median above this (metres) is enough
EXACT_DECLARED_FLOOR_M = 10.0
#: fewer measured points than this: no verdict ("inconclusive")
MIN_POINTS = 5
#: points farther than this (metres) from every street under every candidate system are left out:
#: they lie beyond the network's extent and say nothing about the system
MAX_USED_M = 1000.0
#: spacing (metres) of the points sampled along unit outlines
OUTLINE_SPACING_M = 25.0
#: at most this many points are measured (evenly thinned beyond)
MAX_SAMPLES = 5000

#: what to call each system in messages
SYSTEM_LABELS: Mapping[str, str] = {
    "wgs84": "WGS-84 (GPS, OpenStreetMap, 天地图/CGCS2000)",
    "cgcs2000": "CGCS2000 (天地图, ≈ WGS-84)",
    "gcj02": "GCJ-02 (高德/腾讯 Amap/Tencent)",
    "bd09": "BD-09 (百度 Baidu)",
}

__all__ = [
    "CANDIDATE_SYSTEMS",
    "CrsFit",
    "Streets",
    "check_facility_crs",
    "check_units_crs",
    "crs_fit",
    "raise_if_implausible",
    "streets_from",
]


# ----------------------------------------------------------------------------- streets


@dataclass(frozen=True)
class Streets:
    """
    Street geometry in a metric CRS with a spatial index, for distance look-ups.

    Attributes
    ----------
    geometry : numpy.ndarray
        shapely geometries (LineStrings, or Points for street points), metres in ``crs``.
    crs : pyproj.CRS
        A projected CRS (the network's working CRS, or the local UTM zone).
    tree : shapely.STRtree
        Index over ``geometry``.
    centre_lon, centre_lat : float
        Median vertex position in WGS-84 (degrees), to guess local projections.
    """

    geometry: np.ndarray
    crs: CRS
    tree: shapely.STRtree = field(repr=False)
    centre_lon: float
    centre_lat: float

    def distance_m(self, lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
        """
        Straight-line distance from WGS-84 points to the nearest street.

        Parameters
        ----------
        lon, lat
            WGS-84 degrees.

        Returns
        -------
        numpy.ndarray
            Metres per point; NaN where a coordinate is not finite.
        """
        lon = np.asarray(lon, dtype=float).ravel()
        lat = np.asarray(lat, dtype=float).ravel()
        x, y = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(lon, lat)
        return self._distance_xy(np.asarray(x, dtype=float), np.asarray(y, dtype=float))

    def _distance_xy(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (metres) from points given in ``crs`` to the nearest street."""
        out = np.full(len(x), np.nan)
        finite = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(finite) == 0:
            return out
        # one nearest street per point (ties: any one of them, same distance)
        found, distance = self.tree.query_nearest(shapely.points(x[finite], y[finite]), return_distance=True,
                                                  all_matches=False)
        out[finite[found[0]]] = distance
        return out


def streets_from(streets: Any, *, crs: Any = None) -> Streets:
    """
    Street geometry from whatever the caller has, indexed for distance look-ups.

    Parameters
    ----------
    streets
        One of: the network arrays of :func:`coverage.network.load_walk_arrays`
        (the batch job's ``net``: edge geometries in its working CRS, ferry
        lines left out); a GeoSeries or GeoDataFrame of street lines (its own
        CRS); a ``shapely.STRtree`` or a sequence/array of shapely geometries
        (CRS ``crs``, default WGS-84); an ``(n, 2)`` array of street points
        (lon, lat in ``crs``, default WGS-84); the path of an OSM file (read
        with :func:`coverage.network.load_walk_arrays`); or a :class:`Streets`.
    crs
        CRS of ``streets`` where they do not carry one (default EPSG:4326).

    Returns
    -------
    Streets
        Geometry in a projected CRS (a geographic input goes to its local UTM zone).

    Raises
    ------
    ValueError
        No street geometry, or a GeoSeries without CRS.
    """
    if isinstance(streets, Streets):
        return streets
    if isinstance(streets, (str, Path)):
        from coverage.network import load_walk_arrays

        streets = load_walk_arrays(streets)
    if hasattr(streets, "edge_geometry") and hasattr(streets, "edge_ferry"):
        # network arrays: ferry lines are no streets to stand beside
        geometry = np.asarray(streets.edge_geometry, dtype=object)[~np.asarray(streets.edge_ferry, dtype=bool)]
        source_crs = streets.crs
    elif hasattr(streets, "geometry") and hasattr(streets, "crs"):
        geometry = np.asarray(streets.geometry.values, dtype=object)
        source_crs = streets.crs if streets.crs is not None else crs
        if source_crs is None:
            raise ValueError("the street geometries have no CRS; set it (e.g. .set_crs('EPSG:4326')) or pass crs=")
    elif isinstance(streets, shapely.STRtree):
        geometry = np.asarray(streets.geometries, dtype=object)
        source_crs = crs if crs is not None else "EPSG:4326"
    else:
        array = np.asarray(streets)
        source_crs = crs if crs is not None else "EPSG:4326"
        if array.dtype != object and array.ndim == 2 and array.shape[1] == 2:
            geometry = shapely.points(array.astype(float))
        else:
            geometry = np.asarray(list(streets), dtype=object)
    geometry = geometry[~(shapely.is_missing(geometry) | shapely.is_empty(geometry))] if len(geometry) else geometry
    if len(geometry) == 0:
        raise ValueError("no street geometry to check coordinates against")
    source = CRS.from_user_input(source_crs)
    vertices = shapely.get_coordinates(geometry)
    if source.is_geographic:
        lon_c, lat_c = (float(v) for v in np.median(vertices, axis=0))
        target = coords.utm_crs_for(lon_c, lat_c)
        to_metres = Transformer.from_crs(source, target, always_xy=True)
        geometry = shapely.transform(geometry, lambda xy: np.column_stack(to_metres.transform(xy[:, 0], xy[:, 1])))
    else:
        target = source
        x_c, y_c = np.median(vertices, axis=0)
        lon_c, lat_c = Transformer.from_crs(source, "EPSG:4326", always_xy=True).transform(float(x_c), float(y_c))
    return Streets(geometry=geometry, crs=target, tree=shapely.STRtree(geometry), centre_lon=float(lon_c),
                   centre_lat=float(lat_c))


# ----------------------------------------------------------------------------- the fit


@dataclass(frozen=True)
class CrsFit:
    """
    How well points fit the streets under each coordinate system.

    Attributes
    ----------
    declared : str
        The system the input was declared in (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``).
    best : str
        The system with the smallest median distance; for projected input the
        guessed projection (e.g. ``EPSG:4527``), or ``""`` when nothing could be measured.
    medians_m : dict
        Median distance (metres) from the points to the nearest street per
        system tried (NaN where none could be measured).
    verdict : str
        ``ok`` (the declared system fits, or no other fits clearly better);
        ``other_system`` (``best`` is clearly better: the declaration is
        probably wrong); ``projected_metres`` (the values are metres of a
        projection, not degrees); ``inconclusive`` (fewer than
        :data:`MIN_POINTS` points lie near the network).
    n_points : int
        Points given (with finite coordinates).
    n_used : int
        Points measured (within :data:`MAX_USED_M` of a street under some system).
    closer_share : float
        Share of the measured points nearer a street under ``best`` than under
        the declared system (NaN when ``best`` is the declared system).
    detail : str
        For projected input, what the values look like and the projection guessed.
    p75_m : dict
        75th percentile of the distances (metres) per system: the figure the
        verdict rests on (see :func:`crs_fit`).
    n_own_system : int
        Rows left out because their own coordinate-system cell (坐标系)
        named the system they are in (:func:`check_facility_crs`).
    """

    declared: str
    best: str
    medians_m: dict[str, float]
    verdict: str
    n_points: int
    n_used: int
    closer_share: float = math.nan
    detail: str = ""
    p75_m: dict[str, float] = field(default_factory=dict)
    n_own_system: int = 0

    @property
    def plausible(self) -> bool:
        """Whether the declared system may stand (verdict ``ok`` or ``inconclusive``)."""
        return self.verdict in ("ok", "inconclusive")

    def figures(self) -> str:
        """
        The medians as a planner reads them.

        e.g. ``declared wgs84: median 412 m to the nearest street (75th percentile 530 m); gcj02: 9 m (14 m);
        bd09: 1,020 m (1,200 m)``.
        """
        declared_key = _system_key(self.declared) if self.verdict != "projected_metres" else None
        parts = []

        def upper(system: str) -> str:
            return _metres(self.p75_m.get(system, math.nan))

        if declared_key in self.medians_m:
            parts.append(f"declared {self.declared}: median {_metres(self.medians_m[declared_key])} to the nearest "
                         f"street (75th percentile {upper(declared_key)})")
        for system, median in self.medians_m.items():
            if system != declared_key:
                parts.append(f"{system}: {_metres(median)} ({upper(system)})")
        return "; ".join(parts)


def _metres(value: float) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:,.0f} m"


def _system_key(system: str) -> str:
    """The candidate a declared system is measured as (CGCS2000 is WGS-84 here)."""
    key = str(system).lower().replace("-", "").replace("_", "")
    key = {"cgcs2000": "wgs84", "epsg4326": "wgs84", "epsg4490": "wgs84"}.get(key, key)
    if key not in CANDIDATE_SYSTEMS:
        raise ValueError(f"unknown coordinate system {system!r}; use wgs84, cgcs2000, gcj02 or bd09")
    return key


def _thin(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` positions out of ``n``, evenly spread."""
    if n <= limit:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def crs_fit(
    lon: ArrayLike,
    lat: ArrayLike,
    declared: str,
    streets: Any,
    *,
    systems: Sequence[str] = CANDIDATE_SYSTEMS,
) -> CrsFit:
    """
    Which coordinate system makes these points lie near the streets.

    Each candidate system in turn: the points are converted from it to WGS-84
    and their distance to the nearest street is measured (metres). Points
    farther than :data:`MAX_USED_M` from every street under every system are
    left out (they lie beyond the network). The best system is the one with
    the smallest median distance. The declaration is judged wrong
    (``other_system``) when the best system is another one and

    - at least :data:`MIN_POINTS` (5) points are measured;
    - at least :data:`CLOSER_SHARE` (65 %) of them lie nearer a street under
      the best system than under the declared one (:data:`CLOSER_SHARE_SMALL`,
      90 %, with fewer than :data:`SMALL_SAMPLE`, 10, points); and
    - the best system's 75th-percentile distance is below
      :data:`RATIO_CLEARLY_BETTER` (0.5) × the declared system's, which
      exceeds :data:`DECLARED_FLOOR_M` (90 m), or :data:`DENSE_DECLARED_FLOOR_M`
      (40 m) with at least :data:`DENSE_MIN_POINTS` (20) points — in dense
      networks a 300–600 m shift still leaves most points within 25–60 m of
      some street; or else, with at least 20 points, the best median is below
      :data:`EXACT_FIT_M` (5 m: points on the streets, outlines traced along
      them) and below half the declared median, which exceeds
      :data:`EXACT_DECLARED_FLOOR_M` (10 m).

    The module docstring gives the false-alarm and detection rates these
    thresholds had on the real extracts.

    Values outside ±180 / ±90, i.e. metres of a projection, give
    ``projected_metres`` with the projection guessed among UTM, CGCS2000
    Gauss-Krüger (3° and 6°, with and without zone prefix) and Web Mercator
    by the same distance measure.

    Parameters
    ----------
    lon, lat
        Coordinates as the file holds them: degrees in ``declared`` (or
        metres, which is what this detects).
    declared
        ``wgs84``, ``cgcs2000``, ``gcj02`` or ``bd09``.
    streets
        Street geometry, anything :func:`streets_from` accepts (e.g. the
        batch job's network arrays).
    systems
        Candidate systems to try.

    Returns
    -------
    CrsFit
    """
    declared_key = _system_key(declared)
    index = streets_from(streets)
    lon = np.asarray(lon, dtype=float).ravel()
    lat = np.asarray(lat, dtype=float).ravel()
    finite = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = lon[finite], lat[finite]
    n_points = len(lon)
    not_degrees = (np.abs(lon) > 180.0) | (np.abs(lat) > 90.0)
    if n_points and not_degrees.mean() >= 0.5:
        return _projected_fit(lon[not_degrees], lat[not_degrees], declared, index, n_points)
    # a few stray non-degree values are the ingest's rejects, not a system question
    lon, lat = lon[~not_degrees], lat[~not_degrees]
    keep = _thin(len(lon), MAX_SAMPLES)
    lon, lat = lon[keep], lat[keep]
    candidates = list(dict.fromkeys([declared_key, *(_system_key(s) for s in systems)]))
    distance = {}
    for system in candidates:
        wgs_lon, wgs_lat = coords.to_wgs84(lon, lat, system)
        distance[system] = index.distance_m(wgs_lon, wgs_lat)
    stacked = np.vstack([distance[s] for s in candidates]) if len(lon) else np.empty((len(candidates), 0))
    used = np.nanmin(stacked, axis=0, initial=np.inf) <= MAX_USED_M if len(lon) else np.zeros(0, dtype=bool)
    n_used = int(used.sum())
    medians = {s: (float(np.median(distance[s][used])) if n_used else math.nan) for s in candidates}
    upper = {s: (float(np.percentile(distance[s][used], 75)) if n_used else math.nan) for s in candidates}
    if n_used == 0:
        return CrsFit(declared, "", medians, "inconclusive", n_points, 0, p75_m=upper)
    best = min(candidates, key=lambda s: (medians[s], upper[s], s != declared_key))
    closer = math.nan
    if best != declared_key:
        closer = float(np.mean(distance[best][used] < distance[declared_key][used]))
    verdict = "inconclusive" if n_used < MIN_POINTS else "ok"
    if verdict == "ok" and best != declared_key and _clearly_better(
            (medians[best], upper[best]), (medians[declared_key], upper[declared_key]), closer, n_used):
        verdict = "other_system"
    return CrsFit(declared, best, medians, verdict, n_points, n_used, closer, p75_m=upper)


def _clearly_better(best_m: tuple[float, float], declared_m: tuple[float, float], closer: float,
                    n_used: int) -> bool:
    """
    The rule of :func:`crs_fit`: is the best system clearly better than the declared one.

    ``best_m`` and ``declared_m`` are (median, 75th percentile) distances in metres.
    """
    if n_used < MIN_POINTS:
        return False
    if closer < (CLOSER_SHARE_SMALL if n_used < SMALL_SAMPLE else CLOSER_SHARE):
        return False
    (best_median, best_upper), (declared_median, declared_upper) = best_m, declared_m
    floor = DENSE_DECLARED_FLOOR_M if n_used >= DENSE_MIN_POINTS else DECLARED_FLOOR_M
    if best_upper < RATIO_CLEARLY_BETTER * declared_upper and declared_upper > floor:
        return True
    # many points on the streets themselves (outlines traced along them): a small gap is telling
    return (n_used >= DENSE_MIN_POINTS and best_median < EXACT_FIT_M and declared_median > EXACT_DECLARED_FLOOR_M
            and best_median < RATIO_CLEARLY_BETTER * declared_median)


# ----------------------------------------------------------------------------- metres, not degrees


def _projection_candidates(x_med: float, centre_lon: float, centre_lat: float) -> list[tuple[str, str]]:
    """(EPSG code, name) of the projections whose eastings look like ``x_med`` near ``centre_lon``."""
    found: list[int] = []
    zone = int(abs(x_med) // 1_000_000)
    if 25 <= zone <= 45:
        found.append(4488 + zone)  # CGCS2000 / 3-degree Gauss-Kruger zone 25…45 (zone prefix)
    if 13 <= zone <= 23:
        found.append(4478 + zone)  # CGCS2000 / Gauss-Kruger zone 13…23 (6°, zone prefix)
    if 8.0e6 <= abs(x_med) <= 1.6e7:
        found.append(3857)  # Web Mercator (web map tiles)
    if 1.0e5 <= abs(x_med) <= 1.0e6:
        utm = coords.utm_crs_for(centre_lon, max(centre_lat, 0.0)).to_epsg()
        found.append(utm)
        meridian_3 = int(min(max(3 * round(centre_lon / 3.0), 75), 135))
        found.append(4534 + (meridian_3 - 75) // 3)  # CGCS2000 / 3-degree Gauss-Kruger CM 75E…135E
        meridian_6 = int(min(max(6 * math.floor(centre_lon / 6.0) + 3, 75), 135))
        found.append(4502 + (meridian_6 - 75) // 6)  # CGCS2000 / Gauss-Kruger CM 75E…135E
    return [(f"EPSG:{code}", CRS.from_epsg(code).name) for code in dict.fromkeys(found)]


def _projected_fit(x: np.ndarray, y: np.ndarray, declared: str, index: Streets, n_points: int) -> CrsFit:
    """Fit of coordinates that are metres: guess the projection by the distance to the streets."""
    keep = _thin(len(x), MAX_SAMPLES)
    x, y = x[keep], y[keep]
    x_med, y_med = float(np.median(x)), float(np.median(y))
    # northing first is a common slip: try both orders when the magnitudes allow
    orders = [("", x, y)]
    if 2.0e6 <= abs(x_med) <= 6.0e6 and not 2.0e6 <= abs(y_med) <= 6.0e6:
        orders = [(" (columns swapped)", y, x), *orders]
    medians: dict[str, float] = {}
    names: dict[str, str] = {}
    distances: dict[str, np.ndarray] = {}
    for suffix, east, north in orders:
        for code, name in _projection_candidates(float(np.median(east)), index.centre_lon, index.centre_lat):
            lon, lat = Transformer.from_crs(code, "EPSG:4326", always_xy=True).transform(east, north)
            label = code + suffix
            distances[label] = index.distance_m(lon, lat)
            medians[label] = float(np.nanmedian(distances[label])) if np.isfinite(distances[label]).any() \
                else math.nan
            names[label] = name
    looks = f"x ≈ {x_med:,.0f}, y ≈ {y_med:,.0f}"
    fitting = {k: v for k, v in medians.items() if np.isfinite(v) and v <= MAX_USED_M}
    if fitting:
        best = min(fitting, key=fitting.get)
        n_used = int(np.sum(distances[best] <= MAX_USED_M))
        # e.g. the 3° and 6° Gauss-Krüger zones on the same meridian are one projection
        same = [k for k, v in fitting.items() if k != best and abs(v - fitting[best]) < 1.0]
        detail = f"{looks}: probably {best} ({names[best]}), median {_metres(medians[best])} to the nearest street"
        if same:
            detail += f" ({', '.join(same)} fit equally)"
    else:
        best, n_used = "", 0
        detail = f"{looks}: not a projection recognised near the network (tried {', '.join(medians) or 'none'})"
    return CrsFit(declared, best, medians, "projected_metres", n_points, n_used, math.nan, detail)


# ----------------------------------------------------------------------------- facilities and units


def check_facility_crs(facilities, declared: str, streets: Any, *, converted: bool = True) -> CrsFit:
    """
    Coordinate-system fit of a facility list.

    Parameters
    ----------
    facilities
        GeoDataFrame of facility points, e.g. the accepted rows of
        :func:`coverage.ingest.read_facilities`. Rows without a point are
        skipped, and so are rows flagged ``crs_from_column`` (their own
        coordinate-system cell said which system they are in).
    declared
        The system the file was declared in (``inputs.facilities[].crs``).
    streets
        Street geometry, anything :func:`streets_from` accepts.
    converted
        True (default) when the points were already converted from
        ``declared`` to WGS-84, as ``read_facilities`` returns them: they are
        converted back to the file's values first. False when the geometry
        holds the file's values.

    Returns
    -------
    CrsFit
    """
    frame = facilities
    n_own_system = 0
    if "flags" in frame.columns:
        own_system = frame["flags"].fillna("").astype(str).str.contains("crs_from_column", regex=False).to_numpy()
        n_own_system = int(own_system.sum())
        frame = frame[~own_system]
    points = np.asarray(frame.geometry.values, dtype=object)
    points = points[~shapely.is_missing(points)] if len(points) else points
    points = points[shapely.get_type_id(points) == 0] if len(points) else points
    x = shapely.get_x(points) if len(points) else np.empty(0)
    y = shapely.get_y(points) if len(points) else np.empty(0)
    lon, lat = _file_values(x, y, declared, converted)
    return replace(crs_fit(lon, lat, declared, streets), n_own_system=n_own_system)


def check_units_crs(
    units,
    declared: str,
    streets: Any,
    *,
    converted: bool = True,
    spacing_m: float = OUTLINE_SPACING_M,
) -> CrsFit:
    """
    Coordinate-system fit of administrative units (points and/or polygons).

    Unit points (village/community points) are measured as they are. Of the
    polygons, the outlines of the finest level that has polygons (village,
    else town, else county: finer outlines follow streets more often) are
    sampled every ``spacing_m`` metres and the samples measured like points.
    Where outlines do not follow streets (rivers, fields) every system gives
    much the same distances and the verdict stays ``ok``.

    Parameters
    ----------
    units
        GeoDataFrame with a ``level`` column (county/town/village) when
        available, e.g. from :func:`coverage.ingest.read_units`.
    declared
        The system the unit file was declared in (``inputs.units.crs``).
    streets
        Street geometry, anything :func:`streets_from` accepts.
    converted
        True (default) when the geometries were already converted from
        ``declared`` to WGS-84 (as ``read_units`` returns them).
    spacing_m
        Sampling step along outlines (metres).

    Returns
    -------
    CrsFit
    """
    geometry = np.asarray(units.geometry.values, dtype=object)
    present = ~(shapely.is_missing(geometry) | shapely.is_empty(geometry)) if len(geometry) else np.zeros(0, bool)
    type_id = shapely.get_type_id(geometry)
    is_point = present & (type_id == 0)
    is_polygon = present & np.isin(type_id, (3, 6))
    levels = units["level"].astype(str).str.lower().to_numpy() if "level" in units.columns \
        else np.full(len(geometry), "", dtype=object)
    xs = [shapely.get_x(geometry[is_point])]
    ys = [shapely.get_y(geometry[is_point])]
    outline = geometry[is_polygon]
    for level in ("village", "town", "county"):
        chosen = is_polygon & (levels == level)
        if chosen.any():
            outline = geometry[chosen]
            break
    if len(outline):
        # degrees per metre of latitude; longitude steps come out a little shorter, which is harmless
        step_deg = spacing_m / 111_320.0
        rings = shapely.boundary(outline)
        ring_length = shapely.length(rings)
        n_total = float(np.sum(ring_length)) / step_deg
        if n_total > MAX_SAMPLES:
            step_deg *= n_total / MAX_SAMPLES
        for ring, length in zip(rings, ring_length):
            samples = shapely.line_interpolate_point(ring, np.arange(0.0, float(length), step_deg))
            xs.append(shapely.get_x(samples))
            ys.append(shapely.get_y(samples))
    lon, lat = _file_values(np.concatenate(xs), np.concatenate(ys), declared, converted)
    return crs_fit(lon, lat, declared, streets)


def _file_values(x: np.ndarray, y: np.ndarray, declared: str, converted: bool) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates as the file held them (undo the conversion from ``declared`` to WGS-84)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if not converted or len(x) == 0:
        return x, y
    lon, lat = coords.from_wgs84(x, y, _system_key(declared))
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


# ----------------------------------------------------------------------------- the decision

#: what the checked file holds, in the Chinese half of messages
_WHAT_ZH: Mapping[str, str] = {"facilities": "设施", "units": "行政区划单元", "demand": "需求点"}


def raise_if_implausible(fit: CrsFit, *, path: str | Path | None, what: str, allow: bool = False) -> str:
    """
    Stop on an implausible coordinate system, or say what was found.

    Parameters
    ----------
    fit
        From :func:`crs_fit`, :func:`check_facility_crs` or :func:`check_units_crs`.
    path
        The input file (named in the error).
    what
        What the file holds, e.g. ``"facilities"`` or ``"units"``.
    allow
        Go on (return a warning note) instead of raising
        (``parameters.crs_check: warn``).

    Returns
    -------
    str
        A note for the run record (the figures, and a warning when ``allow``
        let an implausible system through).

    Raises
    ------
    InputDataError
        The verdict is ``other_system`` or ``projected_metres`` and ``allow`` is False.
    """
    what_zh = _WHAT_ZH.get(what, what)
    # rows whose own 坐标系 cell governs them: said in each half of the note (English / 中文)
    own_en = own_zh = ""
    if fit.n_own_system:
        own_en = (f"; {fit.n_own_system} rows name their own system in their coordinate-system column (坐标系), "
                  "which governs them, and are not measured")
        own_zh = f"；另有 {fit.n_own_system} 行按本行“坐标系”列换算，未参与核对"
    if fit.verdict == "inconclusive" and fit.n_points == 0 and fit.n_own_system:
        return (f"{what}: coordinate system {fit.declared} applies to no row: all {fit.n_own_system} rows name their "
                f"own system in their coordinate-system column (坐标系), which governs them / 所有 "
                f"{fit.n_own_system} 行均按本行“坐标系”列换算，声明的坐标系 {fit.declared} 未用于任何一行")
    if fit.verdict == "inconclusive":
        return (f"{what}: coordinate system {fit.declared} not checked: only {fit.n_used} of {fit.n_points} points "
                f"lie within {MAX_USED_M:,.0f} m of a street of the network{own_en} / 靠近路网的点太少，未核对坐标系{own_zh}")
    if fit.verdict == "ok" and fit.medians_m.get(fit.declared, 0.0) > DECLARED_FLOOR_M:
        # far from the streets under every system (outlines along rivers and fields): nothing to tell
        return (f"{what}: coordinate system {fit.declared} not contradicted, but the points lie far from the streets "
                f"under every system, so the streets cannot confirm it ({fit.figures()}; {fit.n_used} points){own_en} "
                f"/ 各坐标系下均远离道路，无法据此确认坐标系{own_zh}")
    if fit.verdict == "ok":
        return (f"{what}: coordinate system {fit.declared} fits the streets ({fit.figures()}; {fit.n_used} points){own_en} "
                f"/ 坐标系与道路吻合{own_zh}")
    if fit.verdict == "projected_metres":
        message = (f"the {what} coordinates are metres of a map projection, not longitude/latitude degrees: "
                   f"{fit.detail} / {what_zh}坐标为投影平面坐标（米），不是经纬度")
        hint = ("convert the coordinates to longitude/latitude (e.g. in QGIS: Export → Save Features As, "
                f"CRS EPSG:4326{' from ' + fit.best if fit.best else ''}), or set parameters.crs_check: warn to go "
                "on / 请先转换为经纬度坐标（如在 QGIS 中另存为 EPSG:4326），或设置 parameters.crs_check: warn 继续")
    else:
        label = SYSTEM_LABELS.get(fit.best, fit.best)
        declared_m = fit.medians_m.get(_system_key(fit.declared), math.nan)
        message = (f"the {what} do not lie where the declared coordinate system puts them: {fit.figures()}; "
                   f"{fit.closer_share:.0%} of {fit.n_used} points are nearer a street read as {fit.best} "
                   f"/ 按声明的坐标系 {fit.declared}，{what_zh}距最近道路的中位距离为 {_metres(declared_m)}，"
                   f"按 {fit.best} 读取则为 {_metres(fit.medians_m[fit.best])}")
        hint = (f"the file is probably {label} — set crs: {fit.best}, or parameters.crs_check: warn to go on "
                f"/ 文件很可能是 {label} 坐标，请设置 crs: {fit.best}，或设置 parameters.crs_check: warn 继续")
    if not allow:
        raise InputDataError(message, path=path, hint=hint)
    return f"warning / 警告: {message} (crs_check: warn, the run went on with crs {fit.declared})"
