"""Merge duplicate and co-located facility records into sites, and find points a geocoder fell back to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from coverage.config import KINDS
from coverage.fallbacks import detect_geocoder_fallbacks, fallback_report
from coverage.site_keys import (  # the reason codes are this module's public names too
    FALLBACK_REASONS, FALLBACK_REPORT_COLUMNS, MERGE_REASONS, SEAT_LEVELS,
    _CAPACITY_COLUMNS, _FILL_COLUMNS, _REQUIRED_COLUMNS, ADDRESS_WITHIN_M, MERGE_LOG_COLUMNS, _aligned_reasons,
    _bilingual, _blank_as_missing, _checked, _codes, _contained, _distinct_places, _kind_masks, _lonlat,
    _mask_text, _name_key, _project, _projector, _ratio, _specific_addresses, _texts,
)

__all__ = [
    "MERGE_LOG_COLUMNS",
    "MERGE_REASONS",
    "FALLBACK_REASONS",
    "FALLBACK_REPORT_COLUMNS",
    "SEAT_LEVELS",
    "SitesResult",
    "merge_sites",
    "detect_geocoder_fallbacks",
    "fallback_report",
]


@dataclass(frozen=True)
class SitesResult:
    """
    Sites after merging, and what was merged into what.

    Attributes
    ----------
    sites : geopandas.GeoDataFrame
        One row per site, EPSG:4326 points: ``site_id``, the input columns,
        ``n_records`` and ``source_rows`` (see :func:`merge_sites`).
    merge_log : pandas.DataFrame
        One row per record merged into another, columns :data:`MERGE_LOG_COLUMNS`.
    """

    sites: gpd.GeoDataFrame
    merge_log: pd.DataFrame


# ----------------------------------------------------------------------------- small text helpers


# ----------------------------------------------------------------------------- candidate pairs


def _pairs_within(xy: np.ndarray, positions: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of the given records closer than ``radius`` metres (STRtree ``dwithin``)."""
    if len(positions) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    points = shapely.points(xy[positions])
    tree = shapely.STRtree(points)
    a, b = tree.query(points, predicate="dwithin", distance=radius)
    a, b = positions[a], positions[b]
    keep = a < b
    return a[keep].astype(np.int64), b[keep].astype(np.int64)


def _same_address_pairs(xy: np.ndarray, address_code: np.ndarray, within_m: float) -> tuple[np.ndarray, np.ndarray]:
    """
    Pairs (i < j) with the same address code closer than ``within_m`` metres.

    Each address group is shifted far east of the others so that one STRtree
    query finds neighbours inside groups only (no quadratic loop over groups).
    """
    positions = np.flatnonzero(address_code >= 0)
    if len(positions) < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    x = xy[positions, 0]
    span = float(np.ptp(x)) + 10.0 * within_m + 1000.0
    shifted = np.column_stack([x - x.min() + address_code[positions] * span, xy[positions, 1]])
    points = shapely.points(shifted)
    tree = shapely.STRtree(points)
    a, b = tree.query(points, predicate="dwithin", distance=within_m)
    a, b = positions[a], positions[b]
    keep = (a < b) & (address_code[a] == address_code[b])
    return a[keep].astype(np.int64), b[keep].astype(np.int64)


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component label per record of the undirected pair graph."""
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels


def _first_member(labels: np.ndarray) -> np.ndarray:
    """Per record, the smallest position (first record in source order) carrying its label."""
    first = np.full(labels.max() + 1 if len(labels) else 0, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels), dtype=np.int64))
    return first[labels]


# ----------------------------------------------------------------------------- merging


def merge_sites(
    facilities: gpd.GeoDataFrame,
    *,
    distance_m: float = 30.0,
    name_ratio: float = 0.8,
    colocated_m: float = 10.0,
    address_within_m: float = ADDRESS_WITHIN_M,
    kind_order: Sequence[str] = KINDS,
    fallbacks: pd.Series | None = None,
) -> SitesResult:
    """
    Merge records of one facility (duplicates) and services sharing a building (co-located) into sites.

    Parameters
    ----------
    facilities
        Checked facility records (``ingest.read_facilities`` output, several
        files concatenated), EPSG:4326 points. Source order is the row order:
        put the preferred list first (e.g. the civil-affairs bureau list
        before an Amap export); the first record of a site is its main record.
    distance_m
        Records of a shared kind closer than this (metres, local UTM) with
        similar names are duplicates.
    name_ratio
        difflib ratio (0–1) of the normalised names (NFKC, lower case, no
        spaces or punctuation) from which names are similar; a name contained
        in the other (two characters or more) is similar too.
    colocated_m
        Records of different kinds closer than this (metres) are services of
        one building (co-located).
    address_within_m
        Records with the same normalised, non-empty address also merge
        (duplicate when they share a kind, else co-located) when they are
        closer than this (metres): short addresses such as "村委会" repeat
        between villages. Addresses naming only administrative areas
        ("江岸区一元街道") and addresses given for more than
        :data:`MAX_SERVICES_PER_POINT` differently named records do not
        identify a building and are not used.
    kind_order
        Order of kinds in the merged ``kinds`` text (default ``config.KINDS``);
        kinds missing from it follow in order of first appearance.
    fallbacks
        Geocoder-fallback reasons per record (:func:`detect_geocoder_fallbacks`),
        indexed like ``facilities``. The point of a record with a reason says
        nothing about where it is, so such a record merges only by address,
        never by distance. Default: the ``shared_point`` fallbacks found in
        ``facilities`` (pass an all-empty Series to switch this off).

    Returns
    -------
    SitesResult
        ``sites``: one row per site in order of its main record, with
        ``site_id`` (the main record's ``facility_id``), the input columns,
        ``n_records`` (int) and ``source_rows`` (";"-joined ``file:row`` of
        every record, in source order), EPSG:4326. ``kinds`` is the union of
        the records' kinds; ``flags`` the union of their flags; capacities
        (beds, nursing_beds, floor_area_m2 in m², caregivers in persons) are
        the main record's, gaps filled from its duplicates, then summed over
        the co-located services (NaN when no record gives a value);
        ``address``/``town_name``/``village_name``/``unit_code`` are the main
        record's, gaps filled from the other records; ``name`` and
        ``type_raw`` join the distinct services' texts with " / ". The point
        is the main record's, or the first record's whose point is not a
        geocoder fallback. Other columns are the main record's.
        ``merge_log``: columns :data:`MERGE_LOG_COLUMNS`, one row per record
        merged into another (reason ``duplicate`` or ``colocated``,
        ``distance_m`` in metres rounded to 0.1, ``name_similarity`` 0–1
        rounded to 0.01, measured to the record it was merged into).

    Notes
    -----
    Candidate pairs come from an STRtree ``dwithin`` query in the local UTM
    zone; a pair is a duplicate when the records share a kind and either lie
    within ``distance_m`` with similar names or have the same address
    (within ``address_within_m``); otherwise it is co-located when their kind
    sets differ and they lie within ``colocated_m`` or have the same address.
    Sites are the connected components of the pair graph (so chains merge
    consistently); duplicates form sub-groups whose capacities are not added.
    ``len(facilities) == sites.n_records.sum()`` and
    ``len(merge_log) == len(facilities) - len(sites)`` always hold.
    """
    frame = _checked(facilities, _REQUIRED_COLUMNS)
    n = len(frame)
    if n == 0:
        empty = frame.iloc[:0].copy()
        empty.insert(0, "site_id", pd.Series([], dtype=object))
        empty["n_records"] = pd.Series([], dtype="int64")
        empty["source_rows"] = pd.Series([], dtype=object)
        empty = empty[[c for c in empty.columns if c != empty.geometry.name] + [empty.geometry.name]]
        return SitesResult(empty.reset_index(drop=True), pd.DataFrame(columns=list(MERGE_LOG_COLUMNS)))

    if fallbacks is None:
        fallbacks = detect_geocoder_fallbacks(frame)
    fallback = _aligned_reasons(fallbacks, frame.index) != ""

    lon, lat = _lonlat(frame)
    xy = _project(_projector(lon, lat), lon, lat)
    names = _texts(frame, "name")
    name_keys = [_name_key(t) for t in names]
    addresses = _texts(frame, "address")
    address_keys = [_name_key(t) for t in addresses]
    address_code = _codes(_specific_addresses(address_keys, name_keys))
    masks, order = _kind_masks(_texts(frame, "kinds"), kind_order)

    # candidate pairs: near each other (points that are not fallbacks), or the same address
    near_i, near_j = _pairs_within(xy, np.flatnonzero(~fallback), max(distance_m, colocated_m))
    addr_i, addr_j = _same_address_pairs(xy, address_code, address_within_m)
    pair_code = np.unique(np.concatenate([near_i * n + near_j, addr_i * n + addr_j]))
    i, j = pair_code // n, pair_code % n

    distance = np.hypot(xy[i, 0] - xy[j, 0], xy[i, 1] - xy[j, 1])
    shared_kind = (masks[i] & masks[j]) != 0
    kinds_differ = masks[i] != masks[j]
    point_evidence = ~(fallback[i] | fallback[j])
    same_address = (address_code[i] >= 0) & (address_code[i] == address_code[j]) & (distance <= address_within_m)
    near = point_evidence & (distance <= distance_m)
    close = point_evidence & (distance <= colocated_m)

    # names are compared only where they decide (difflib is the slow step), each pair of texts once
    similar = np.zeros(len(i), dtype=bool)
    ratios: dict[tuple[str, str], float] = {}
    for p in np.flatnonzero(shared_kind & near & ~same_address):
        a, b = name_keys[i[p]], name_keys[j[p]]
        similar[p] = bool(a and b) and (_contained(a, b) or _ratio(a, b, ratios) >= name_ratio) \
            and not _distinct_places(a, b)
    duplicate = shared_kind & ((near & similar) | same_address)
    colocated = ~duplicate & kinds_differ & (close | same_address)

    # union-find by connected components: duplicate groups inside sites
    dup_main = _first_member(_components(n, i[duplicate], j[duplicate]))
    linked = duplicate | colocated
    site_main = _first_member(_components(n, i[linked], j[linked]))

    sites = _site_rows(frame, site_main, dup_main, masks, order, fallback)
    log = _merge_log(frame, site_main, dup_main, xy, names, name_keys, addresses, address_code, masks, order,
                     fallback, distance_m, colocated_m, address_within_m, ratios)
    assert int(sites["n_records"].sum()) == n, (int(sites["n_records"].sum()), n)
    assert len(log) == n - len(sites), (len(log), n, len(sites))
    return SitesResult(sites=sites, merge_log=log)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    """Positions of each label with more than one record, in source order (labels are first positions)."""
    counts = np.bincount(labels, minlength=len(labels))
    multi = np.flatnonzero(counts[labels] > 1)
    if len(multi) == 0:
        return []
    order = multi[np.argsort(labels[multi], kind="stable")]
    cuts = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, cuts)


def _distinct_join(texts: Sequence[str]) -> str:
    """Non-empty texts that differ after normalisation, joined with " / " in their order."""
    seen: dict[str, str] = {}
    for text in texts:
        key = _name_key(text)
        if text and key not in seen:
            seen[key] = text
    return " / ".join(seen.values())


def _site_rows(frame: gpd.GeoDataFrame, site_main: np.ndarray, dup_main: np.ndarray, masks: np.ndarray,
               order: list[str], fallback: np.ndarray) -> gpd.GeoDataFrame:
    """One row per site: the main record, with kinds, capacities, texts and provenance merged."""
    n = len(frame)
    mains = np.unique(site_main)  # sorted: sites in source order of their main record
    rank = np.searchsorted(mains, site_main)
    sites = frame.iloc[mains].copy()
    geometry_name = frame.geometry.name

    n_records = np.bincount(rank, minlength=len(mains)).astype(np.int64)
    site_masks = np.zeros(len(mains), dtype=np.uint64)
    np.bitwise_or.at(site_masks, rank, masks)
    mask_text = {int(m): _mask_text(int(m), order) for m in np.unique(site_masks)}
    sites["kinds"] = [mask_text[int(m)] for m in site_masks]

    # capacities: first value within a duplicate group (the main record's unless empty), summed over services
    capacity_columns = [c for c in _CAPACITY_COLUMNS if c in frame.columns]
    if capacity_columns:
        values = pd.DataFrame({c: pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
                               for c in capacity_columns})
        per_duplicate_group = values.groupby(dup_main, sort=True).first()
        service_site = rank[per_duplicate_group.index.to_numpy()]
        per_site = per_duplicate_group.groupby(service_site, sort=True).sum(min_count=1)
        for column in capacity_columns:
            sites[column] = per_site[column].reindex(np.arange(len(mains))).to_numpy(dtype=float)

    # address, town, village, code: the main record's, gaps filled from the others in source order
    for column in _FILL_COLUMNS:
        if column not in frame.columns:
            continue
        texts = _blank_as_missing(_texts(frame, column))
        first = texts.groupby(rank, sort=True).first().reindex(np.arange(len(mains)))
        main_values = frame[column].iloc[mains].to_numpy(dtype=object)
        filled = np.where(pd.isna(first.to_numpy(dtype=object)), main_values, first.to_numpy(dtype=object))
        sites[column] = filled

    refs = [f"{f}:{r}" for f, r in zip(_texts(frame, "source_file"), _texts(frame, "source_row"))]
    source_rows = list(refs[m] for m in mains)
    names = _texts(frame, "name")
    type_raw = _texts(frame, "type_raw")
    flags = _texts(frame, "flags")
    site_names = [names[m] for m in mains]
    site_types = sites["type_raw"].tolist() if "type_raw" in sites.columns else None
    site_flags = [flags[m] for m in mains]
    geometries = np.asarray(sites.geometry.values).copy()
    points = np.asarray(frame.geometry.values)
    first_type = None
    if site_types is not None:
        # a duplicate group's type text: its first non-empty one, stored at the group's first position
        by_group = _blank_as_missing(type_raw).groupby(dup_main, sort=True).first()
        first_type = np.full(n, "", dtype=object)
        first_type[by_group.index.to_numpy()] = by_group.fillna("").to_numpy(dtype=object)
    for members in _groups(site_main):
        s = int(rank[members[0]])
        source_rows[s] = ";".join(refs[m] for m in members)
        services = [m for m in members if dup_main[m] == m]
        if len(services) > 1:
            site_names[s] = _distinct_join([names[m] for m in services])
            if first_type is not None:
                site_types[s] = _distinct_join([first_type[m] for m in services]) or None
        elif first_type is not None and not type_raw[members[0]]:
            site_types[s] = first_type[members[0]] or None
        site_flags[s] = ";".join(dict.fromkeys(
            part for m in members for part in flags[m].split(";") if part))
        if fallback[members[0]]:
            # a fallback point says nothing; take the first record with a real point
            real = [m for m in members if not fallback[m]]
            if real:
                geometries[s] = points[real[0]]
    sites["name"] = site_names
    if site_types is not None:
        sites["type_raw"] = site_types
    if "flags" in sites.columns:
        sites["flags"] = site_flags
    sites = sites.set_geometry(gpd.GeoSeries(geometries, index=sites.index, crs=4326), crs=4326)
    if sites.geometry.name != geometry_name:
        sites = sites.rename_geometry(geometry_name)

    sites.insert(0, "site_id", frame["facility_id"].iloc[mains].astype(str).to_numpy())
    sites["n_records"] = n_records
    sites["source_rows"] = source_rows
    columns = [c for c in sites.columns if c != geometry_name] + [geometry_name]
    sites = sites[columns].reset_index(drop=True)
    assert int(n_records.sum()) == n
    return sites


def _merge_log(frame: gpd.GeoDataFrame, site_main: np.ndarray, dup_main: np.ndarray, xy: np.ndarray,
               names: list[str], name_keys: list[str], addresses: list[str], address_code: np.ndarray,
               masks: np.ndarray, order: list[str], fallback: np.ndarray, distance_m: float,
               colocated_m: float, address_within_m: float,
               ratios: dict[tuple[str, str], float]) -> pd.DataFrame:
    """One row per record merged into another: into its duplicate group's first record, or the site's main."""
    merged = np.flatnonzero(site_main != np.arange(len(frame)))
    if len(merged) == 0:
        return pd.DataFrame({c: pd.Series([], dtype=float if c in ("distance_m", "name_similarity") else object)
                             for c in MERGE_LOG_COLUMNS})
    site_ids = frame["facility_id"].astype(str).to_numpy()
    files = _texts(frame, "source_file")
    rows = frame["source_row"].to_numpy()
    records = []
    for k in merged:
        is_duplicate = dup_main[k] != k
        partner = int(dup_main[k] if is_duplicate else site_main[k])
        distance = float(np.hypot(*(xy[k] - xy[partner])))
        similarity = _ratio(name_keys[k], name_keys[partner], ratios)
        same_address = address_code[k] >= 0 and address_code[k] == address_code[partner] \
            and distance <= address_within_m
        by_point = not (fallback[k] or fallback[partner])
        where = f"{files[partner]}:{rows[partner]}"
        other = names[partner]
        if is_duplicate:
            shared = _mask_text(int(masks[k] & masks[partner]), order) or _mask_text(int(masks[k]), order)
            contained = _contained(name_keys[k], name_keys[partner])
            if same_address:
                zh_basis, en_basis = f"地址相同（{addresses[k]}）", f"same address ({addresses[k]})"
            elif by_point and distance <= distance_m:
                zh_basis = f"名称相似度 {similarity:.2f}" + ("（一个名称包含另一个）" if contained else "")
                en_basis = f"name similarity {similarity:.2f}"
                if contained:
                    en_basis += " (one name contains the other)"
            else:
                zh_basis, en_basis = "经同一站点的其他记录相连", "linked through other records of this site"
            detail = _bilingual(
                f"与“{other}”（{where}）为同一设施：相距 {distance:.0f} 米，{zh_basis}，同为 {shared}；容量不重复计入",
                f"same facility as '{other}' ({where}): {distance:.0f} m apart, {en_basis}, shared kind {shared}; "
                "capacities not added",
            )
        else:
            if same_address:
                zh_basis, en_basis = f"地址相同（{addresses[k]}）", f"same address ({addresses[k]})"
            elif by_point and distance <= colocated_m:
                zh_basis, en_basis = f"相距 {distance:.0f} 米", f"{distance:.0f} m apart"
            else:
                zh_basis, en_basis = "经同一站点的其他记录相连", "linked through other records of this site"
            kinds = _mask_text(int(masks[k]), order)
            detail = _bilingual(
                f"与“{other}”（{where}）同址的另一项服务（{zh_basis}）：类别 {kinds} 并入，容量相加",
                f"another service at the place of '{other}' ({where}, {en_basis}): kinds {kinds} joined, "
                "capacities added",
            )
        records.append({
            "site_id": site_ids[site_main[k]],
            "facility_id": site_ids[k],
            "source_file": files[k],
            "source_row": rows[k],
            "name": names[k],
            "kinds": _mask_text(int(masks[k]), order),
            "merged_into_name": other,
            "reason": "duplicate" if is_duplicate else "colocated",
            "distance_m": round(distance, 1),
            "name_similarity": round(similarity, 2),
            "detail": detail,
        })
    log = pd.DataFrame.from_records(records, columns=list(MERGE_LOG_COLUMNS))
    log["distance_m"] = log["distance_m"].astype(float)
    log["name_similarity"] = log["name_similarity"].astype(float)
    return log
