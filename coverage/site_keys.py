"""What site merging and fallback detection share: reason codes, name and address keys, WGS-84 checks, projection."""

from __future__ import annotations

import difflib
import re
import unicodedata
from types import MappingProxyType
from typing import Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from coverage import coords
from coverage._errors import InputDataError

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
