"""Points a geocoder fell back to: shared by unrelated records, or on an administrative seat the record does not name."""

from __future__ import annotations

from typing import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.site_keys import (
    FALLBACK_REASONS, FALLBACK_REPORT_COLUMNS, MAX_SERVICES_PER_POINT, POINT_DECIMALS, SEAT_LEVELS,
    UNRELATED_NAME_RATIO, _aligned_reasons, _area_only, _bilingual, _checked, _contained, _in_wgs84, _lonlat,
    _name_key, _place_core, _point_keys, _project, _projector, _ratio, _texts,
)


# ----------------------------------------------------------------------------- geocoder fallbacks


def _disagree(values: Sequence[str]) -> bool:
    """Two non-empty texts of which neither contains the other."""
    distinct = list(dict.fromkeys(v for v in values if v))
    for a_index, a in enumerate(distinct):
        for b in distinct[a_index + 1:]:
            if a not in b and b not in a:
                return True
    return False


def _unrelated_names(keys: Sequence[str]) -> bool:
    """Every pair of names dissimilar (ratio below :data:`UNRELATED_NAME_RATIO`, neither inside the other)."""
    for a_index, a in enumerate(keys):
        for b in keys[a_index + 1:]:
            if a == b or _contained(a, b) or _ratio(a, b) >= UNRELATED_NAME_RATIO:
                return False
    return True


def _is_fallback_group(name_keys: list[str], address_keys: list[str], town_cores: list[str],
                       village_cores: list[str], min_shared: int) -> bool:
    """
    Whether records sharing one exact point were placed there by a geocoder, not by one building.

    Fallback when more than :data:`MAX_SERVICES_PER_POINT` differently named
    records are there, when at least ``min_shared`` of them give an address
    naming only an administrative area, when their towns, villages or
    addresses disagree, or when their names are pairwise unrelated and no
    two share an address.
    """
    distinct_names = list(dict.fromkeys(k for k in name_keys if k))
    if len(distinct_names) > MAX_SERVICES_PER_POINT:
        return True
    if sum(_area_only(a) for a in address_keys) >= min_shared:
        return True
    # an address naming only an area agrees with any address inside it, so only specific ones are compared
    specific = [a for a in address_keys if a and not _area_only(a)]
    if _disagree(town_cores) or _disagree(village_cores) or _disagree(specific):
        return True
    shares_address = len(specific) != len(set(specific))
    return not shares_address and _unrelated_names(name_keys)


def _shared_point_fallbacks(frame: gpd.GeoDataFrame, point_key: np.ndarray, min_shared: int) -> np.ndarray:
    """Per record, whether it sits on a shared point judged a fallback."""
    flagged = np.zeros(len(frame), dtype=bool)
    _, inverse, counts = np.unique(point_key, return_inverse=True, return_counts=True)
    crowded = np.flatnonzero(counts[inverse] >= max(int(min_shared), 2))
    if len(crowded) == 0:
        return flagged
    names = _texts(frame, "name")
    addresses = _texts(frame, "address")
    towns = _texts(frame, "town_name")
    villages = _texts(frame, "village_name")
    members_by_point = pd.Series(crowded).groupby(inverse[crowded], sort=True)
    for _, members in members_by_point:
        members = members.to_numpy()
        if _is_fallback_group(
            [_name_key(names[m]) for m in members],
            [_name_key(addresses[m]) for m in members],
            [_place_core(towns[m]) for m in members],
            [_place_core(villages[m]) for m in members],
            max(int(min_shared), 2),
        ):
            flagged[members] = True
    return flagged


def _checked_seats(seats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Seat points in EPSG:4326 of the levels in :data:`SEAT_LEVELS` (all when there is no level column)."""
    seats = _in_wgs84(seats, ("code", "name"), what_zh="驻地点表", what_en="seats",
                      hint="seats need code, name, level and point geometry in WGS-84")
    seats = seats[seats.geometry.notna() & ~seats.geometry.is_empty]
    if "level" in seats.columns:
        seats = seats[seats["level"].astype(str).isin(SEAT_LEVELS)]
    seats = seats[shapely.get_type_id(np.asarray(seats.geometry.values)) == 0]
    return seats.reset_index(drop=True)


def _seat_matches(frame: gpd.GeoDataFrame, seats: gpd.GeoDataFrame, tolerance_m: float, *,
                  check_names: bool) -> tuple[np.ndarray, np.ndarray]:
    """
    Per record, the nearest seat within ``tolerance_m`` metres (-1 when none) and whether it counts as a fallback.

    A record counts when its name contains the core (name without
    administrative suffix) of none of the seats within tolerance.
    """
    n = len(frame)
    nearest = np.full(n, -1, dtype=np.int64)
    flagged = np.zeros(n, dtype=bool)
    seats = _checked_seats(seats)
    if n == 0 or len(seats) == 0:
        return nearest, flagged
    lon, lat = _lonlat(frame)
    transformer = _projector(lon, lat)
    record_xy = _project(transformer, lon, lat)
    seat_lon, seat_lat = _lonlat(seats)
    seat_xy = _project(transformer, seat_lon, seat_lat)
    tree = shapely.STRtree(shapely.points(seat_xy))
    rec, seat = tree.query(shapely.points(record_xy), predicate="dwithin", distance=tolerance_m)
    if len(rec) == 0:
        return nearest, flagged
    distance = np.hypot(*(record_xy[rec] - seat_xy[seat]).T)
    by_distance = np.lexsort((distance, rec))
    rec, seat = rec[by_distance], seat[by_distance]
    first = np.r_[True, rec[1:] != rec[:-1]]
    nearest[rec[first]] = seat[first]
    if not check_names:
        return nearest, nearest >= 0
    names = _texts(frame, "name")
    seat_cores = [_place_core(t) for t in _texts(seats, "name")]
    named = np.zeros(n, dtype=bool)
    for r, s in zip(rec, seat):
        core = seat_cores[s]
        if core and core in _name_key(names[r]):
            named[r] = True
    flagged = (nearest >= 0) & ~named
    return nearest, flagged


def detect_geocoder_fallbacks(
    facilities: gpd.GeoDataFrame,
    *,
    seats: gpd.GeoDataFrame | None = None,
    min_shared: int = 3,
    seat_tolerance_m: float = 30.0,
) -> pd.Series:
    """
    Find records whose point is probably where a geocoder fell back to, not where the facility is.

    Parameters
    ----------
    facilities
        Facility records, EPSG:4326 points (``ingest.read_facilities`` output).
    seats
        Optional seat points of administrative units, WGS-84, with columns
        ``code``, ``name`` and ``level``; only the levels in
        :data:`SEAT_LEVELS` are used. Division-code tables in GCJ-02 (such as
        Vonng/adcode) must be converted first with ``coords.to_wgs84``.
    min_shared
        Number of records at exactly the same point (coordinates equal to
        1e-6 degrees, about 0.1 m) from which the point is examined.
    seat_tolerance_m
        Distance (metres) within which a record counts as lying on a seat point.

    Returns
    -------
    pandas.Series of str
        Indexed like ``facilities``, named ``fallback``: ``""`` for records
        that look fine, else a code of :data:`FALLBACK_REASONS`:

        - ``shared_point``: at least ``min_shared`` records share the point
          and they are not services of one building: more than
          :data:`MAX_SERVICES_PER_POINT` differently named records, or at
          least ``min_shared`` of them give an address naming only an
          administrative area ("武汉市江岸区", "一元街道"), or their town,
          village or address texts disagree (neither contains the other),
          or their names are pairwise unrelated (difflib ratio below
          :data:`UNRELATED_NAME_RATIO`) and no two share an address.
        - ``admin_seat``: within ``seat_tolerance_m`` of a city, county or
          town seat point while the record's name contains the name core
          ("一元" of "一元街办事处") of none of the seats there. A record
          that is both is reported as ``shared_point``.
    """
    frame = _checked(facilities, ("name",))
    reasons = np.full(len(frame), "", dtype=object)
    if len(frame) == 0:
        return pd.Series(reasons, index=facilities.index, name="fallback", dtype=object)
    lon, lat = _lonlat(frame)
    shared = _shared_point_fallbacks(frame, _point_keys(lon, lat), min_shared)
    reasons[shared] = "shared_point"
    if seats is not None:
        _, on_seat = _seat_matches(frame, seats, seat_tolerance_m, check_names=True)
        reasons[on_seat & ~shared] = "admin_seat"
    return pd.Series(reasons, index=facilities.index, name="fallback", dtype=object)


def fallback_report(
    facilities: gpd.GeoDataFrame,
    reasons: pd.Series,
    *,
    seats: gpd.GeoDataFrame | None = None,
    seat_tolerance_m: float = 30.0,
) -> pd.DataFrame:
    """
    The suspected geocoder fallbacks, one row per point and reason, for the user to check.

    Parameters
    ----------
    facilities
        The records passed to :func:`detect_geocoder_fallbacks`.
    reasons
        Its result (indexed like ``facilities``).
    seats
        The seat points passed to :func:`detect_geocoder_fallbacks`, to name
        the seat a point lies on (WGS-84, columns ``code``, ``name``, ``level``).
    seat_tolerance_m
        Distance (metres) within which a point counts as lying on a seat.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`FALLBACK_REPORT_COLUMNS`: ``lon``/``lat`` (WGS-84
        degrees, rounded to 1e-6), ``reason``, ``n_records`` (records with
        that reason at the point), ``example_names`` (up to five names, "、"
        joined), ``town_names`` (distinct towns given), ``seat_code`` /
        ``seat_name`` / ``seat_level`` of the nearest seat within tolerance
        (empty when none or no seats given), ``source_rows`` (";"-joined
        ``file:row``) and a bilingual ``detail``. Most records first.
    """
    frame = _checked(facilities, ("name",))
    codes = _aligned_reasons(reasons, frame.index)
    flagged = np.flatnonzero(codes != "")
    if len(flagged) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=float if c in ("lon", "lat") else object)
                             for c in FALLBACK_REPORT_COLUMNS}).astype({"n_records": "int64"})
    lon, lat = _lonlat(frame)
    point_key = _point_keys(lon, lat)
    seat_index = np.full(len(frame), -1, dtype=np.int64)
    seat_table = None
    if seats is not None:
        seat_table = _checked_seats(seats)
        seat_index, _ = _seat_matches(frame, seat_table, seat_tolerance_m, check_names=False)
    names = _texts(frame, "name")
    towns = _texts(frame, "town_name")
    refs = [f"{f}:{r}" for f, r in zip(_texts(frame, "source_file"), _texts(frame, "source_row"))]
    rows = []
    grouped = pd.Series(flagged).groupby([point_key[flagged], codes[flagged]], sort=False)
    for (_, reason), members in grouped:
        members = members.to_numpy()
        first = int(members[0])
        seat_code = seat_name = seat_level = ""
        if seat_table is not None and seat_index[first] >= 0:
            seat = seat_table.iloc[int(seat_index[first])]
            seat_code, seat_name = str(seat["code"]), str(seat["name"])
            seat_level = str(seat["level"]) if "level" in seat_table.columns else ""
        n_records = len(members)
        example = "、".join(list(dict.fromkeys(names[m] for m in members))[:5])
        zh, en = FALLBACK_REASONS.get(reason, (reason, reason))
        on_seat = (f"；该点为{seat_name}驻地点" if seat_name else "", f"; the point is the seat of {seat_name}"
                   if seat_name else "")
        rows.append({
            "lon": round(float(lon[first]), POINT_DECIMALS),
            "lat": round(float(lat[first]), POINT_DECIMALS),
            "reason": reason,
            "n_records": n_records,
            "example_names": example,
            "town_names": "、".join(dict.fromkeys(t for t in (towns[m] for m in members) if t)),
            "seat_code": seat_code,
            "seat_name": seat_name,
            "seat_level": seat_level,
            "source_rows": ";".join(refs[m] for m in members),
            "detail": _bilingual(f"{n_records} 条记录：{zh}{on_seat[0]}；请核对地址后重新取点",
                                 f"{n_records} record(s): {en}{on_seat[1]}; check the addresses and geocode again"),
            "_first": first,
        })
    report = pd.DataFrame.from_records(rows)
    report = report.sort_values(["n_records", "_first"], ascending=[False, True], kind="stable")
    return report[list(FALLBACK_REPORT_COLUMNS)].reset_index(drop=True)
