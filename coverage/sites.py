"""Merge duplicate and co-located facility records into sites, and find points a geocoder fell back to."""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from coverage import coords
from coverage._errors import InputDataError
from coverage.config import KINDS

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

#: columns of :attr:`SitesResult.merge_log`, in order
MERGE_LOG_COLUMNS: tuple[str, ...] = (
    "site_id", "facility_id", "source_file", "source_row", "name", "kinds", "merged_into_name", "reason",
    "distance_m", "name_similarity", "detail",
)
#: merge reason code → (Chinese, English) explanation
MERGE_REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "duplicate": ("同一设施被重复登记（名称相近或地址相同、类别相同），容量不重复计入",
                  "the same facility listed twice (similar name or same address, same kind); capacities not added"),
    "colocated": ("同一地点的另一项服务（类别不同），类别合并、容量相加",
                  "another service at the same place (different kind); kinds joined, capacities added"),
})
#: geocoder fallback reason code → (Chinese, English) explanation
FALLBACK_REASONS: Mapping[str, tuple[str, str]] = MappingProxyType({
    "shared_point": ("多条名称或所在地互不相关的记录落在同一坐标上，可能是地址解析失败后退回到区县或街道中心点",
                     "several records with unrelated names or places share one exact point; the geocoder probably "
                     "fell back to a district or town centre"),
    "admin_seat": ("坐标与行政区驻地点重合，但名称中没有该地名，可能只解析到了行政区一级",
                   "the point is the seat point of an administrative unit whose name the facility's name does not "
                   "mention; the address was probably resolved only to that unit"),
})
#: columns of :func:`fallback_report`, in order
FALLBACK_REPORT_COLUMNS: tuple[str, ...] = (
    "lon", "lat", "reason", "n_records", "example_names", "town_names", "seat_code", "seat_name", "seat_level",
    "source_rows", "detail",
)
#: administrative levels whose seat points count as geocoder fallbacks (village points are left out:
#: rural mutual-aid points really do sit at the village committee)
SEAT_LEVELS: tuple[str, ...] = ("city", "county", "town")

#: records with the same address farther apart than this (metres) are not merged by address alone
#: (short addresses such as "村委会" repeat from village to village)
ADDRESS_WITHIN_M = 1000.0
#: more differently named records than this at one exact point cannot be services of one building
MAX_SERVICES_PER_POINT = 20
#: names below this difflib ratio count as unrelated when judging a shared point
UNRELATED_NAME_RATIO = 0.5
#: coordinates equal after rounding to this many decimals (≈ 0.1 m) count as the same point
POINT_DECIMALS = 6

# capacity columns (summed over co-located services); meals_per_day is used when a table has it
_CAPACITY_COLUMNS: tuple[str, ...] = ("beds", "nursing_beds", "floor_area_m2", "caregivers", "meals_per_day")
_FILL_COLUMNS: tuple[str, ...] = ("address", "town_name", "village_name", "unit_code")
_REQUIRED_COLUMNS: tuple[str, ...] = ("facility_id", "name", "kinds", "source_file", "source_row")
# administrative suffixes removed to get the core of a place name ("一元街办事处" → "一元");
# longer suffixes first, applied repeatedly ("青山镇街道办事处" → "青山镇" → "青山")
_PLACE_SUFFIXES: tuple[str, ...] = (
    "街道办事处", "社区居民委员会", "村民委员会", "居民委员会", "管理委员会", "社区居委会", "民族乡", "民族镇",
    "自治州", "自治县", "自治旗", "办事处", "居委会", "村委会", "管委会", "街道", "社区", "地区", "苏木", "嘎查",
    "新区", "市", "区", "县", "旗", "镇", "乡", "街", "村",
)


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


def _bilingual(zh: str, en: str) -> str:
    return f"{en} / {zh}"


def _texts(frame: pd.DataFrame, column: str) -> list[str]:
    """A column as stripped text, '' for missing values (or when the column is absent)."""
    if column not in frame.columns:
        return [""] * len(frame)
    values = frame[column].astype(object)
    return values.where(values.notna(), "").astype(str).str.strip().tolist()


_NOT_WORD_RE = re.compile(r"[\s\W_]+")
_PEOPLES_RE = re.compile(r"^(.{2,}?)(?:[\u4e00-\u9fff]{1,3}族)+$")
# an address made only of administrative-area names ("武汉市江岸区", "一元街道仁义社区", "张湾村村委会")
_AREA_ONLY_RE = re.compile(
    r"(?:[^\d号路巷弄栋幢楼层室]{0,12}?(?:特别行政区|自治区|自治州|自治县|自治旗|街道办事处|办事处|街道|社区居委会|社区居民委员会|居委会|"
    r"村民委员会|村委会|省|市|地区|盟|区|县|旗|镇|乡|街|苏木|社区|村|嘎查))+"
)


def _name_key(text: str) -> str:
    """Text reduced for comparison: NFKC, lower case, no spaces or punctuation."""
    return _NOT_WORD_RE.sub("", unicodedata.normalize("NFKC", text).lower())


def _place_core(text: str) -> str:
    """A place name without its administrative suffixes, kept at two characters or more."""
    core = _name_key(text)
    changed = True
    while changed:
        changed = False
        for suffix in _PLACE_SUFFIXES:
            if core.endswith(suffix) and len(core) - len(suffix) >= 2:
                core = core[: -len(suffix)]
                changed = True
                break
    # autonomous counties name their peoples after the place: "双江拉祜族佤族布朗族傣族" → "双江"
    peoples = _PEOPLES_RE.match(core)
    if peoples is not None:
        core = peoples.group(1)
    return core


def _area_only(address_key: str) -> bool:
    """An address naming only administrative areas, no street, number or building (what a geocoder centres)."""
    return bool(address_key) and _AREA_ONLY_RE.fullmatch(address_key) is not None


#: the village/community a name is about ("解放路" of "城关街道解放路社区日间照料中心")
_UNIT_IN_NAME_RE = re.compile(r"([^\d街道镇乡县区市省]{2,6}?)(?:社区|村|嘎查|小区)")
_NUMBER_RE = re.compile(r"\d+")


def _distinct_places(a: str, b: str) -> bool:
    """
    Whether two similar names still name different facilities: different numbers or communities.

    "第12号日间照料中心" / "第13号日间照料中心" and "民族社区日间照料中心" /
    "满春社区日间照料中心" are alike to difflib (ratio 0.8 and more) but are two
    centres; names that differ only in words like 老年人 are not told apart.
    """
    numbers_a, numbers_b = _NUMBER_RE.findall(a), _NUMBER_RE.findall(b)
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return True
    units_a, units_b = set(_UNIT_IN_NAME_RE.findall(a)), set(_UNIT_IN_NAME_RE.findall(b))
    return bool(units_a and units_b and not units_a & units_b)


def _ratio(a: str, b: str, cache: dict[tuple[str, str], float] | None = None) -> float:
    """difflib similarity of two normalised names (0 when either is empty), remembered in ``cache``."""
    if not a or not b:
        return 0.0
    key = (a, b) if a <= b else (b, a)
    if cache is not None and key in cache:
        return cache[key]
    ratio = difflib.SequenceMatcher(None, key[0], key[1]).ratio()
    if cache is not None:
        cache[key] = ratio
    return ratio


def _contained(a: str, b: str) -> bool:
    """One text inside the other, the shorter having at least two characters."""
    return min(len(a), len(b)) >= 2 and (a in b or b in a)


# ----------------------------------------------------------------------------- frames and coordinates


def _in_wgs84(frame: gpd.GeoDataFrame, required: Sequence[str], *, what_zh: str, what_en: str, hint: str
              ) -> gpd.GeoDataFrame:
    """``frame`` in EPSG:4326 (no CRS taken as WGS-84), or an error naming the columns it lacks."""
    if not isinstance(frame, gpd.GeoDataFrame):
        raise InputDataError(f"{what_en} must be a GeoDataFrame, got {type(frame).__name__}", hint=hint)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputDataError(
            _bilingual(f"{what_zh}缺少列：{', '.join(missing)}", f"the {what_en} lack the column(s) {', '.join(missing)}"),
            hint=hint,
        )
    if frame.crs is None:
        return frame.set_crs(4326)
    return frame.to_crs(4326) if frame.crs.to_epsg() != 4326 else frame


def _checked(facilities: gpd.GeoDataFrame, required: Sequence[str]) -> gpd.GeoDataFrame:
    """The facilities in EPSG:4326 with point geometry, or an error naming what is missing."""
    facilities = _in_wgs84(facilities, required, what_zh="设施表", what_en="facilities",
                           hint="pass the output of ingest.read_facilities (concatenated for several files) "
                                "/ 请使用 ingest.read_facilities 的结果")
    if len(facilities):
        types = shapely.get_type_id(np.asarray(facilities.geometry.values))
        if (types != 0).any():  # 0 = Point
            position = int(np.flatnonzero(types != 0)[0])
            raise InputDataError(
                _bilingual("设施几何必须是点", f"facility geometries must be points (row {position} is not)"),
                column="geometry", hint="read the table with ingest.read_facilities, which makes points",
            )
    return facilities


def _lonlat(frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geoms = np.asarray(frame.geometry.values)
    return shapely.get_x(geoms).astype(float), shapely.get_y(geoms).astype(float)


def _projector(lon: np.ndarray, lat: np.ndarray) -> Transformer:
    """WGS-84 → the UTM zone of the data's median point (metres)."""
    utm = coords.utm_crs_for(float(np.median(lon)), float(np.median(lat)))
    return Transformer.from_crs(4326, utm, always_xy=True)


def _project(transformer: Transformer, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    x, y = transformer.transform(lon, lat)
    return np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])


def _point_keys(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """One integer per coordinate rounded to :data:`POINT_DECIMALS` decimals (equal key = same point)."""
    scale = 10.0 ** POINT_DECIMALS
    lon_key = np.round(lon * scale).astype(np.int64) + int(180 * scale)
    lat_key = np.round(lat * scale).astype(np.int64) + int(90 * scale)
    return lon_key * int(200 * scale) + lat_key


def _blank_as_missing(texts: list[str]) -> pd.Series:
    """Texts as an object Series (positional index) with '' as missing."""
    series = pd.Series(texts, dtype=object)
    return series.mask(series == "")


def _aligned_reasons(reasons: pd.Series, index: pd.Index) -> np.ndarray:
    """Fallback reason text per row of a frame with ``index`` ('' where none)."""
    if reasons.index.equals(index):
        values = reasons
    elif not index.has_duplicates and not reasons.index.has_duplicates:
        values = reasons.reindex(index)
    else:
        raise InputDataError("the fallback reasons are not indexed like the facilities",
                             hint="pass the Series returned by detect_geocoder_fallbacks for the same frame")
    return values.fillna("").astype(str).to_numpy(dtype=object)


def _specific_addresses(address_keys: list[str], name_keys: list[str]) -> list[str]:
    """
    The address keys that can identify a building, '' for the others.

    Left out: addresses naming only administrative areas ("江岸区一元街道"),
    and addresses given for more than :data:`MAX_SERVICES_PER_POINT`
    differently named records (placeholders such as the bureau's own address).
    """
    keys = ["" if _area_only(key) else key for key in address_keys]
    names_per_address = pd.DataFrame({"address": keys, "name": name_keys}).query("address != ''")
    crowded = names_per_address.groupby("address")["name"].nunique()
    crowded = set(crowded.index[crowded > MAX_SERVICES_PER_POINT])
    return ["" if key in crowded else key for key in keys] if crowded else keys


def _codes(keys: list[str]) -> np.ndarray:
    """Integer code per text, -1 for empty text (equal code = equal text)."""
    codes, _ = pd.factorize(_blank_as_missing(keys), use_na_sentinel=True)
    return codes.astype(np.int64)


def _kind_masks(kinds_text: list[str], kind_order: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """
    A bit mask of kinds per record, and the kind of each bit.

    Bits follow ``kind_order`` (first appearance counts); kinds found in the
    data but not in ``kind_order`` follow in the order they first appear.
    """
    order = list(dict.fromkeys(str(k) for k in kind_order))
    bit = {kind: i for i, kind in enumerate(order)}
    cache: dict[str, int] = {}
    masks = np.zeros(len(kinds_text), dtype=np.uint64)
    for position, text in enumerate(kinds_text):
        if text not in cache:
            mask = 0
            for kind in (part.strip() for part in text.split(";")):
                if not kind:
                    continue
                if kind not in bit:
                    bit[kind] = len(order)
                    order.append(kind)
                mask |= 1 << bit[kind]
            cache[text] = mask
        masks[position] = cache[text]
    if len(order) > 64:
        raise InputDataError(f"too many distinct facility kinds ({len(order)}; at most 64 are supported)",
                             column="kinds")
    return masks, order


def _mask_text(mask: int, order: Sequence[str]) -> str:
    return ";".join(kind for i, kind in enumerate(order) if (int(mask) >> i) & 1)


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
