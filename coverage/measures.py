"""Target measures over plain inputs: shares of persons and units, presence, capacity ratios, size tiers."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from coverage.catalogue import (
    TIER_LEVELS, _MAX_LISTED, _SHARE_TOLERANCE, _TIER_ZH,
)


# =============================================================================================
# Metric functions over plain inputs
# =============================================================================================


@dataclass(frozen=True)
class Measure:
    """
    What a metric function found.

    Attributes
    ----------
    actual
        The measured value (share 0..1 or ratio); NaN with ``no_data``.
    numerator, denominator
        Persons / units / facilities meeting and in total, or the ratio's parts.
    detail_zh
        Chinese explanation (which units are short …).
    no_data
        Why the target cannot be evaluated; empty when it can.
    gap_scale
        For ratios: the quantity one ratio unit stands for (e.g. elderly / 1000
        for beds per 1,000 elderly), so a gap can be said as "about N beds".
    need_unit_zh
        Name of that quantity (e.g. ``张床位``).
    """

    actual: float = math.nan
    numerator: float = math.nan
    denominator: float = math.nan
    detail_zh: str = ""
    no_data: str = ""
    gap_scale: float = math.nan
    need_unit_zh: str = ""


def _no_data(reason: str) -> Measure:
    return Measure(no_data=reason)


def _listing(names: Sequence[str], limit: int = _MAX_LISTED) -> str:
    names = [str(n) for n in names]
    if len(names) <= limit:
        return "、".join(names)
    return "、".join(names[:limit]) + f" 等（共{len(names)}个）"


def _fmt(value: float, digits: int | None = None) -> str:
    """Thousands-separated number; whole numbers without decimals unless ``digits`` is given."""
    if digits is None:
        digits = 0 if float(value).is_integer() else 1
    return f"{value:,.{digits}f}"


def service_circle(
    elderly: np.ndarray,
    cost: np.ndarray,
    limit: float,
    *,
    include: np.ndarray | None = None,
    cost_label_zh: str = "",
) -> Measure:
    """
    Share of the elderly within ``limit`` of a facility.

    Parameters
    ----------
    elderly
        Elderly persons per demand point.
    cost
        Walking seconds (or metres) from each demand point to the nearest
        facility of the kinds; inf = beyond the search limit.
    limit
        Seconds (or metres).
    include
        Demand points in the denominator (e.g. urban ones); all when None.
    cost_label_zh
        Text of the threshold for the explanation, e.g. ``15分钟``.

    Returns
    -------
    Measure
        actual = persons within / persons; numerator and denominator in persons.
    """
    elderly = np.asarray(elderly, float)
    cost = np.asarray(cost, float)
    keep = np.ones(len(elderly), bool) if include is None else np.asarray(include, bool)
    total = float(elderly[keep].sum())
    if not total > 0:
        return _no_data("统计范围内没有老年人口 / no elderly persons in scope")
    within = float(elderly[keep & (cost <= limit)].sum())
    detail = f"{cost_label_zh}内老年人 {_fmt(within, 0)} / {_fmt(total, 0)} 人"
    return Measure(actual=within / total, numerator=within, denominator=total, detail_zh=detail)


def unit_presence(
    units: pd.DataFrame,
    facility_codes: Iterable[str],
    *,
    unit_label_zh: str = "单位",
    list_limit: int = _MAX_LISTED,
) -> Measure:
    """
    Share of units with at least one facility inside or assigned to them.

    Parameters
    ----------
    units
        The denominator: ``code`` and ``name`` (optionally ``label``, shown
        instead of the name in the list of units without one).
    facility_codes
        The unit code of each facility of the kinds (repeats allowed).
    unit_label_zh
        What the units are called, e.g. ``城市社区``.
    list_limit
        Longest list of units without a facility in the explanation.

    Returns
    -------
    Measure
        actual = units with one / units; numerator and denominator in units.
    """
    if len(units) == 0:
        return _no_data(f"研究区内没有{unit_label_zh} / no units of this level and area")
    present = {str(c) for c in facility_codes if c is not None and not pd.isna(c)}
    codes = units["code"].astype(str)
    has = codes.isin(present).to_numpy()
    labels = units["label"] if "label" in units else units["name"]
    missing = labels[~has].astype(str).tolist()
    total, meeting = len(units), int(has.sum())
    detail = f"{meeting}/{total} 个{unit_label_zh}有设施"
    if missing:
        detail += f"；没有的{unit_label_zh}：{_listing(missing, list_limit)}"
    return Measure(actual=meeting / total, numerator=meeting, denominator=total, detail_zh=detail)


def at_least_one(units: pd.DataFrame, facility_codes: Iterable[str], *, unit_label_zh: str = "单位") -> Measure:
    """
    Whether every unit has at least one facility; lists every unit that has none.

    Parameters
    ----------
    units
        ``code`` and ``name`` of the streets / towns / counties.
    facility_codes
        Unit code of each facility of the kinds.
    unit_label_zh
        What the units are called, e.g. ``街道``.

    Returns
    -------
    Measure
        As :func:`unit_presence` (a share; the target requires 1), with all
        units lacking one named.
    """
    return unit_presence(units, facility_codes, unit_label_zh=unit_label_zh, list_limit=10**6)


def unit_reach(
    units: pd.DataFrame,
    *,
    fraction: float = 0.5,
    unit_label_zh: str = "单位",
    cost_label_zh: str = "",
) -> Measure:
    """
    Share of units whose elderly are mostly within reach of a facility.

    A unit counts as reached when at least ``fraction`` of its elderly live
    within the threshold. Units without elderly persons are left out of the
    denominator (no demand) and counted in the explanation.

    Parameters
    ----------
    units
        ``code``, ``name`` (or ``label``), ``elderly`` (persons) and ``share``
        (0..1 within the threshold, NaN without elderly).
    fraction
        Share of a unit's elderly that must be within reach.
    unit_label_zh, cost_label_zh
        Texts for the explanation, e.g. ``城市社区`` and ``15分钟``.

    Returns
    -------
    Measure
        actual = units reached / units with elderly; numerator and denominator in units.
    """
    elderly = pd.to_numeric(units["elderly"], errors="coerce").fillna(0.0).to_numpy(float)
    share = pd.to_numeric(units["share"], errors="coerce").to_numpy(float)
    with_demand = elderly > 0
    if not with_demand.any():
        return _no_data(f"没有有老年人口的{unit_label_zh} / no units with elderly persons")
    reached = with_demand & (np.nan_to_num(share, nan=0.0) >= fraction - _SHARE_TOLERANCE)
    total, meeting = int(with_demand.sum()), int(reached.sum())
    labels = (units["label"] if "label" in units else units["name"]).astype(str).to_numpy()
    detail = (f"{meeting}/{total} 个有老人的{unit_label_zh}中，{fraction:.0%}以上老年人步行{cost_label_zh}内可达")
    short = [f"{name} {s:.0%}" for name, s, d, r in zip(labels, share, with_demand, reached) if d and not r]
    if short:
        detail += f"；未达的{unit_label_zh}：{_listing(short)}"
    empty = int((~with_demand).sum())
    if empty:
        detail += f"；另有{empty}个{unit_label_zh}无老年人口，未计入"
    return Measure(actual=meeting / total, numerator=meeting, denominator=total, detail_zh=detail)


def _given(values: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray(pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce"), float)
    return values


def _missing_note(n_missing: int, n_total: int, what_zh: str) -> str:
    if not n_missing:
        return ""
    return f"；{n_missing}/{n_total} 个设施未填{what_zh}，实际值可能偏低"


def _per_population(
    amounts: Sequence[float] | np.ndarray,
    population: float | None,
    per: float,
    *,
    what_zh: str,
    population_zh: str,
    population_en: str,
    need_unit_zh: str,
) -> Measure:
    """Sum of a facility attribute per ``per`` persons (NaN attributes skipped, all-NaN = no data)."""
    values = _given(amounts)
    known = ~np.isnan(values)
    if not known.any():
        return _no_data(f"没有设施填写{what_zh} / no facility gives this attribute")
    if population is None or not np.isfinite(population) or population <= 0:
        return _no_data(f"缺少{population_zh}数 / {population_en} not available")
    total = float(values[known].sum())
    actual = total / population * per
    detail = (f"{what_zh}合计 {_fmt(total)}（{int(known.sum())}/{len(values)} 个设施填写）/ "
              f"{population_zh} {_fmt(population, 0)}")
    detail += _missing_note(int((~known).sum()), len(values), what_zh)
    return Measure(actual=actual, numerator=total, denominator=population, detail_zh=detail,
                   gap_scale=population / per, need_unit_zh=need_unit_zh)


def beds_per_1000_elderly(beds: Sequence[float] | np.ndarray, elderly: float | None) -> Measure:
    """
    Beds per 1,000 elderly persons.

    Parameters
    ----------
    beds
        Beds per facility (NaN = not given).
    elderly
        Elderly persons in scope.

    Returns
    -------
    Measure
        ``no data`` when no facility gives beds or there are no elderly.
    """
    return _per_population(beds, elderly, 1000.0, what_zh="床位数", population_zh="老年人口",
                           population_en="elderly persons", need_unit_zh="张床位")


def caregivers_per_10000_elderly(caregivers: Sequence[float] | np.ndarray, elderly: float | None) -> Measure:
    """
    Certified caregivers per 10,000 elderly persons.

    Parameters
    ----------
    caregivers
        Certified caregivers per facility (NaN = not given).
    elderly
        Elderly persons in scope.
    """
    return _per_population(caregivers, elderly, 10000.0, what_zh="持证护理员数", population_zh="老年人口",
                           population_en="elderly persons", need_unit_zh="名持证护理员")


def floor_area_per_10000_residents(floor_area_m2: Sequence[float] | np.ndarray, residents: float | None) -> Measure:
    """
    Facility floor area (m²) per 10,000 residents (all ages).

    Parameters
    ----------
    floor_area_m2
        Floor area per facility, m² (NaN = not given).
    residents
        Residents (persons, all ages) in scope; None when not available.
    """
    return _per_population(floor_area_m2, residents, 10000.0, what_zh="建筑面积(㎡)", population_zh="常住人口",
                           population_en="residents", need_unit_zh="平方米")


def land_area_per_resident(land_area_m2: Sequence[float] | np.ndarray, residents: float | None) -> Measure:
    """
    Facility land area (m²) per resident.

    Parameters
    ----------
    land_area_m2
        Land area per facility, m² (NaN = not given).
    residents
        Residents (persons, all ages) in scope; None when not available.
    """
    return _per_population(land_area_m2, residents, 1.0, what_zh="用地面积(㎡)", population_zh="常住人口",
                           population_en="residents", need_unit_zh="平方米用地")


def floor_area_per_100_households(floor_area_m2: Sequence[float] | np.ndarray, households: float | None) -> Measure:
    """
    Facility floor area (m²) per 100 households.

    Parameters
    ----------
    floor_area_m2
        Floor area per facility, m² (NaN = not given).
    households
        Households in scope; None when not available.
    """
    return _per_population(floor_area_m2, households, 100.0, what_zh="建筑面积(㎡)", population_zh="户数",
                           population_en="households", need_unit_zh="平方米")


def _pairs(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = _given(first), _given(second)
    both = ~np.isnan(a) & ~np.isnan(b)
    return a, b, both


def nursing_bed_share(beds: Sequence[float] | np.ndarray, nursing_beds: Sequence[float] | np.ndarray) -> Measure:
    """
    Nursing-type beds as a share of beds, over facilities giving both.

    Parameters
    ----------
    beds, nursing_beds
        Per facility (NaN = not given).

    Returns
    -------
    Measure
        actual = Σ nursing beds / Σ beds; ``no data`` when no facility gives both.
    """
    b, n, both = _pairs(beds, nursing_beds)
    both &= b > 0
    if not both.any():
        return _no_data("没有设施同时填写床位数和护理型床位数 / no facility gives both beds and nursing beds")
    total_b, total_n = float(b[both].sum()), float(n[both].sum())
    detail = f"护理型床位 {_fmt(total_n, 0)} / 床位 {_fmt(total_b, 0)} 张（{int(both.sum())}/{len(b)} 个设施填写）"
    if (~both).sum():
        detail += f"；{int((~both).sum())} 个设施未填写或无床位，未计入"
    return Measure(actual=total_n / total_b, numerator=total_n, denominator=total_b, detail_zh=detail,
                   gap_scale=total_b, need_unit_zh="张护理型床位")


def floor_area_per_bed(
    floor_area_m2: Sequence[float] | np.ndarray,
    beds: Sequence[float] | np.ndarray,
    names: Sequence[str] | None = None,
    *,
    minimum: float | None = None,
) -> Measure:
    """
    Floor area (m²) per bed of each institution: the lowest one, and those below ``minimum``.

    The standard (GB 50437 tab. 3.2.4) applies to each institution, so the
    measured value is the lowest floor area per bed among the facilities
    giving both attributes; the total over all of them is in the explanation.

    Parameters
    ----------
    floor_area_m2, beds
        Per facility (NaN = not given).
    names
        Facility names, for the list of facilities below ``minimum``.
    minimum
        m² per bed each facility should have, for that list and the floor
        area missing in total.

    Returns
    -------
    Measure
        actual = min over facilities of m² per bed; numerator and denominator
        are the totals (m², beds) of the facilities giving both.
    """
    area, b, both = _pairs(floor_area_m2, beds)
    both &= b > 0
    if not both.any():
        return _no_data("没有设施同时填写建筑面积和床位数 / no facility gives both floor area and beds")
    names = list(names) if names is not None else [str(i) for i in range(len(area))]
    per = np.where(both, area / np.where(b > 0, b, 1.0), np.nan)
    worst = int(np.nanargmin(per))
    total_a, total_b = float(area[both].sum()), float(b[both].sum())
    detail = (f"最低 {per[worst]:.1f}㎡/床（{names[worst]}）；合计 {_fmt(total_a)}㎡ / {_fmt(total_b)} 张床"
              f"（{int(both.sum())}/{len(b)} 个设施填写）")
    if minimum is not None:
        low = both & (per < minimum - _SHARE_TOLERANCE)
        if low.any():
            listed = [f"{n}（{p:.1f}㎡/床）" for n, p, k in zip(names, per, low) if k]
            shortfall = float((minimum * b[low] - area[low]).sum())
            detail += f"；低于{minimum:g}㎡/床的设施：{_listing(listed)}，共缺约 {_fmt(shortfall)} 平方米"
    return Measure(actual=float(per[worst]), numerator=total_a, denominator=total_b, detail_zh=detail)


def size_tier(
    floor_area_m2: Sequence[float] | np.ndarray,
    tier_levels: Sequence[str],
    tiers: Mapping[str, float],
    names: Sequence[str] | None = None,
) -> Measure:
    """
    Share of facilities whose floor area reaches the minimum of their tier.

    Parameters
    ----------
    floor_area_m2
        Floor area per facility, m² (NaN = not given: left out and counted).
    tier_levels
        Tier of each facility: ``village``, ``town`` or ``county``.
    tiers
        Tier → minimum floor area, m² (a tier missing here takes the nearest
        lower one that is given).
    names
        Facility names for the list of those below their tier.

    Returns
    -------
    Measure
        actual = facilities meeting / facilities with a floor area;
        numerator and denominator in facilities.
    """
    area = _given(floor_area_m2)
    names = list(names) if names is not None else [str(i) for i in range(len(area))]
    minimums = []
    for level in tier_levels:
        order = TIER_LEVELS.index(level) if level in TIER_LEVELS else 0
        given = [tiers[lv] for lv in TIER_LEVELS[: order + 1] if lv in tiers] or [min(tiers.values())]
        minimums.append(given[-1])
    minimums = np.asarray(minimums, float)
    known = ~np.isnan(area)
    if not known.any():
        return _no_data("没有设施填写建筑面积 / no facility gives its floor area")
    meets = known & (area >= minimums - _SHARE_TOLERANCE)
    total, meeting = int(known.sum()), int(meets.sum())
    detail = f"{meeting}/{total} 个设施达到所属级别面积"
    below = [f"{n}（{_TIER_ZH.get(lv, lv)} {a:g}㎡ < {m:g}㎡）"
             for n, lv, a, m, k, ok in zip(names, tier_levels, area, minimums, known, meets) if k and not ok]
    if below:
        detail += f"；未达标：{_listing(below)}"
    if (~known).sum():
        detail += f"；{int((~known).sum())} 个设施未填建筑面积，未计入"
    return Measure(actual=meeting / total, numerator=meeting, denominator=total, detail_zh=detail)

