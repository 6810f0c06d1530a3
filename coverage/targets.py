"""
Policy targets (政策指标): evaluation of the catalogue's targets on a study (catalogue: coverage.catalogue, measures: coverage.measures).

A target is one number of a policy document or national standard ("60 % of
administrative villages have a 互助幸福院 by 2020"). The catalogue gives each
one a *metric*, a small function over plain inputs, so a study can say for
every target whether it is met, by how much it is missed, and which towns or
villages are short. Targets whose data are absent (beds, floor areas,
residents …) are reported as ``"no data"``, never as zero.

Public API
----------
- :func:`load_catalogue` — shipped catalogue plus user YAML files of the same layout.
- :func:`evaluate_target` — one target on a :class:`TargetInputs`.
- :func:`evaluate_targets` — several targets, one table.
- :func:`evaluate_study_targets` — what :mod:`coverage.pipeline` calls.
- metric functions over plain inputs: :func:`service_circle`, :func:`unit_presence`,
  :func:`unit_reach`, :func:`at_least_one`, :func:`beds_per_1000_elderly`,
  :func:`nursing_bed_share`, :func:`floor_area_per_10000_residents`,
  :func:`caregivers_per_10000_elderly`, :func:`land_area_per_resident`,
  :func:`floor_area_per_bed`, :func:`floor_area_per_100_households`, :func:`size_tier`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from coverage import metrics
from coverage.catalogue import (
    ANY_KIND, AREAS, CATALOGUE_PATH, COMPARISONS, METRICS, RESULT_COLUMNS, STATUS_FAIL, STATUS_NO_DATA, STATUS_PASS,
    Catalogue, Document, Target, _AREA_ZH, _CODE_COLUMN, _HOUSEHOLD_COLUMNS, _LEVEL_ZH, _RESIDENT_COLUMNS,
    _SHARE_TOLERANCE, _TOWN_AREA_ZH, _VILLAGE_AREA_ZH, catalogue_table, load_catalogue, parse_target,
)
from coverage.measures import (
    Measure, _fmt, _no_data, at_least_one, beds_per_1000_elderly, caregivers_per_10000_elderly,
    floor_area_per_10000_residents, floor_area_per_100_households, floor_area_per_bed, land_area_per_resident,
    nursing_bed_share, service_circle, size_tier, unit_presence, unit_reach,
)
from coverage.report import KIND_ZH

__all__ = [
    "AREAS",
    "CATALOGUE_PATH",
    "METRICS",
    "RESULT_COLUMNS",
    "Catalogue",
    "Document",
    "Measure",
    "Target",
    "TargetInputs",
    "load_catalogue",
    "measure_target",
    "parse_target",
    "select_study_targets",
    "evaluate_target",
    "evaluate_targets",
    "evaluate_study_targets",
    "catalogue_table",
    "service_circle",
    "unit_presence",
    "unit_reach",
    "at_least_one",
    "beds_per_1000_elderly",
    "nursing_bed_share",
    "floor_area_per_10000_residents",
    "caregivers_per_10000_elderly",
    "land_area_per_resident",
    "floor_area_per_bed",
    "floor_area_per_100_households",
    "size_tier",
    "facility_tier_levels",
    "select_units",
    "town_is_street",
]

# =============================================================================================
# Preparing plain inputs from study layers
# =============================================================================================


@dataclass(frozen=True)
class TargetInputs:
    """
    The study layers targets are evaluated on (see docs/architecture.md for the columns).

    Attributes
    ----------
    demand
        Demand points: ``elderly`` (persons), ``village_code``, ``town_code``,
        ``county_code``, ``urban``; optionally ``residents`` / ``population`` /
        ``households`` (persons / households per point).
    seconds_by_kind, metres_by_kind
        Kind (and ``"any"``) → walking seconds / metres per demand point,
        inf beyond the longest threshold.
    units
        Administrative units (``code``, ``name``, ``level``, ``parent_code``, ``urban``).
    facilities
        Facilities (``kinds``, ``village_code``, ``town_code``, ``county_code``,
        ``beds``, ``nursing_beds``, ``floor_area_m2``, ``caregivers`` …).
    villages
        The pipeline's village table (``code``, ``elderly``, ``share_<kind>``
        at the longest threshold), used when demand points carry no village codes.
    thresholds_min, distance_thresholds_m
        Thresholds the arrays were computed for; the longest bounds what can
        be evaluated (empty = no bound known).
    """

    demand: pd.DataFrame | None = None
    seconds_by_kind: Mapping[str, np.ndarray] = field(default_factory=dict)
    metres_by_kind: Mapping[str, np.ndarray] = field(default_factory=dict)
    units: pd.DataFrame | None = None
    facilities: pd.DataFrame | None = None
    villages: pd.DataFrame | None = None
    thresholds_min: tuple[float, ...] = ()
    distance_thresholds_m: tuple[float, ...] = ()
    #: ``StudyAccess.values_for_targets()``: ``minutes``, ``served`` and ``score`` (kind → per demand point),
    #: ``gini`` (kind → area → Gini of the score)
    accessibility: Mapping[str, Any] | None = None


def _text(series: pd.Series) -> pd.Series:
    """Codes/names as stripped text, NA kept."""
    return series.astype("string").str.strip()


def _kind_mask(facilities: pd.DataFrame, kinds: Sequence[str]) -> np.ndarray:
    if ANY_KIND in kinds:
        return np.ones(len(facilities), bool)
    if "kinds" not in facilities:
        return np.zeros(len(facilities), bool)
    lists = facilities["kinds"].astype("string").fillna("").str.split(";")
    wanted = set(kinds)
    return np.array([bool(wanted.intersection(k.strip() for k in ks)) for ks in lists], bool)


def _filter_mask(facilities: pd.DataFrame, pairs: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[np.ndarray, str]:
    mask = np.ones(len(facilities), bool)
    for column, allowed in pairs:
        if column not in facilities:
            return mask, f"设施表没有“{column}”列（筛选条件）/ facility table has no column '{column}'"
        values = facilities[column].astype("string").str.strip().str.lower().fillna("")
        mask &= values.isin(allowed).to_numpy()
    return mask, ""


def _unit_table(units: pd.DataFrame | None, level: str) -> pd.DataFrame:
    if units is None or len(units) == 0 or "level" not in units:
        return pd.DataFrame(columns=["code", "name", "parent_code", "urban"])
    table = units[units["level"].astype(str).str.lower() == level]
    return pd.DataFrame(
        {
            "code": _text(table["code"]).to_numpy(dtype=object),
            "name": (table["name"].astype("string").fillna(_text(table["code"])) if "name" in table
                     else _text(table["code"])).to_numpy(dtype=object),
            "parent_code": (_text(table["parent_code"]) if "parent_code" in table
                            else pd.Series(pd.NA, index=table.index, dtype="string")).to_numpy(dtype=object),
            "urban": (table["urban"].astype("boolean") if "urban" in table
                      else pd.Series(pd.NA, index=table.index, dtype="boolean")).to_numpy(dtype=object),
        }
    )


_STREET_NAME = re.compile(r"(街道|街道办事处|街道办|办事处)$")
_TOWNSHIP_NAME = re.compile(r"(镇|乡|苏木|蘇木|鎮|鄉)$")


def _street_by_code(code: Any) -> bool | None:
    """Street (True) or township (False) from digits 7–9 of a 12-digit division code; None otherwise."""
    text = "" if code is None or pd.isna(code) else str(code).strip()
    if len(text) != 12 or not text.isdigit():
        return None
    number = int(text[6:9])
    if 1 <= number <= 99:
        return True
    if 100 <= number <= 399:
        return False
    return None


def town_is_street(towns: pd.DataFrame, villages: pd.DataFrame | None = None) -> pd.Series:
    """
    Whether each town-level unit is a street (街道) rather than a township (乡/镇/苏木).

    Decided by the name (…街道 / …办事处 vs …镇 / …乡 / …苏木), else by the
    12-digit statistical division code (town digits 001–099 街道, 100–399
    镇/乡/苏木), else by the unit's own ``urban`` flag, else by the majority
    of its villages' ``urban`` flags; NA when nothing tells.

    Parameters
    ----------
    towns
        ``code``, ``name``, ``urban`` of town-level units.
    villages
        ``parent_code``, ``urban`` of village-level units (optional).

    Returns
    -------
    pandas.Series
        Boolean (nullable), indexed like ``towns``.
    """
    majority: dict[str, bool] = {}
    if villages is not None and len(villages):
        flags = pd.DataFrame({"parent": villages["parent_code"], "urban": pd.array(villages["urban"], "boolean")})
        flags = flags.dropna()
        if len(flags):
            majority = flags.groupby("parent")["urban"].mean().gt(0.5).to_dict()
    out = []
    for code, name, urban in zip(towns["code"], towns["name"], towns["urban"]):
        name = "" if name is None or pd.isna(name) else str(name).strip()
        if _STREET_NAME.search(name) or "街道" in name:
            out.append(True)
        elif _TOWNSHIP_NAME.search(name):
            out.append(False)
        elif _street_by_code(code) is not None:
            out.append(_street_by_code(code))
        elif urban is not None and not pd.isna(urban):
            out.append(bool(urban))
        elif code in majority:
            out.append(bool(majority[code]))
        else:
            out.append(pd.NA)
    return pd.Series(pd.array(out, dtype="boolean"), index=towns.index)


def select_units(units: pd.DataFrame | None, level: str, area: str = "all") -> tuple[pd.DataFrame, str, str]:
    """
    The units a target counts: one level, filtered urban/rural.

    Villages/communities are filtered by their ``urban`` flag; towns by being a
    street (urban) or a township (rural), see :func:`town_is_street`; level
    ``street`` is towns with area urban. Units whose urban/rural status is
    unknown are left out of a filtered denominator and counted in the note.

    Parameters
    ----------
    units
        Administrative units.
    level
        ``village``, ``town``, ``street`` or ``county``.
    area
        ``all``, ``urban`` or ``rural``.

    Returns
    -------
    tuple
        (units with ``code``, ``name``, ``label``; their Chinese name, e.g.
        ``城市社区``; a note, e.g. about units of unknown status).
    """
    base_level = "town" if level == "street" else level
    if level == "street":
        area = "urban"
    table = _unit_table(units, base_level)
    note = ""
    if base_level == "village":
        label_zh = _VILLAGE_AREA_ZH[area]
        flags = pd.array(table["urban"], dtype="boolean")
    elif base_level == "town":
        label_zh = _TOWN_AREA_ZH[area]
        flags = pd.array(town_is_street(table, _unit_table(units, "village")), dtype="boolean")
    else:
        label_zh = _LEVEL_ZH[base_level]
        flags = pd.array([pd.NA] * len(table), dtype="boolean")
    if area != "all":
        want = area == "urban"
        unknown = np.asarray(pd.isna(flags), bool)
        keep = ~unknown & (np.asarray(flags.fillna(not want), bool) == want)
        if unknown.any():
            note = f"另有{int(unknown.sum())}个{_LEVEL_ZH[base_level]}城乡属性不明，未计入"
        table = table[keep]
    names = dict(zip(_text(units["code"]), units["name"].astype("string"))) if units is not None and "name" in units \
        else {}
    if base_level == "village":
        labels = [f"{n}（{names[p]}）" if isinstance(p, str) and p in names and not pd.isna(names[p]) else str(n)
                  for n, p in zip(table["name"], table["parent_code"])]
    else:
        labels = [str(n) for n in table["name"]]
    table = table.assign(label=labels).reset_index(drop=True)
    return table, label_zh, note


def _demand_mask(demand: pd.DataFrame, area: str) -> tuple[np.ndarray | None, str]:
    if area == "all":
        return np.ones(len(demand), bool), ""
    if "urban" not in demand:
        return None, "人口点没有城乡属性（urban）/ demand points carry no urban/rural flag"
    flags = demand["urban"].astype("boolean")
    return (flags == (area == "urban")).fillna(False).to_numpy(bool), ""


def _elderly_total(inputs: TargetInputs, area: str) -> tuple[float | None, str]:
    demand = inputs.demand
    if demand is None or "elderly" not in demand:
        return None, "没有老年人口数据 / no elderly demand points"
    mask, reason = _demand_mask(demand, area)
    if mask is None:
        return None, reason
    return float(pd.to_numeric(demand["elderly"], errors="coerce").fillna(0.0).to_numpy(float)[mask].sum()), ""


def _population_total(inputs: TargetInputs, area: str, columns: Sequence[str]) -> tuple[float | None, str]:
    """Residents or households in scope from demand points, else from units; None when not available."""
    demand = inputs.demand
    if demand is not None:
        for column in columns:
            if column in demand:
                mask, reason = _demand_mask(demand, area)
                if mask is None:
                    return None, reason
                values = pd.to_numeric(demand[column], errors="coerce").to_numpy(float)[mask]
                if np.isfinite(values).any():
                    return float(np.nansum(values)), f"人口点 {column} 列"
    units = inputs.units
    if units is not None and "level" in units:
        for column in columns:
            if column not in units:
                continue
            values = pd.to_numeric(units[column], errors="coerce")
            levels = ("village",) if area != "all" else ("county", "town", "village")
            for level in levels:
                rows = (units["level"].astype(str) == level) & values.notna().to_numpy()
                if area != "all" and "urban" in units:
                    rows &= (units["urban"].astype("boolean") == (area == "urban")).fillna(False).to_numpy(bool)
                if rows.any():
                    return float(values[rows].sum()), f"行政单元 {column} 列（{_LEVEL_ZH[level]}）"
    return None, f"缺少 {'/'.join(columns)} 数据 / no {'/'.join(columns)} column in demand points or units"


def _facility_area_mask(inputs: TargetInputs, facilities: pd.DataFrame, area: str) -> tuple[np.ndarray | None, str]:
    if area == "all":
        return np.ones(len(facilities), bool), ""
    if "village_code" not in facilities or inputs.units is None:
        return None, "无法判断设施城乡属性（缺少 village_code 或行政单元）/ cannot tell urban from rural facilities"
    villages = _unit_table(inputs.units, "village")
    urban = dict(zip(villages["code"], villages["urban"]))
    flags = pd.array([urban.get(c) if isinstance(c, str) else pd.NA for c in _text(facilities["village_code"])],
                     dtype="boolean")
    return np.asarray((flags == (area == "urban")).fillna(False), bool), ""


def _target_facilities(target: Target, inputs: TargetInputs, columns: Sequence[str]) -> tuple[pd.DataFrame | None, str]:
    """Facilities of the target's kinds, filter and area, or None with the reason."""
    facilities = inputs.facilities
    if facilities is None:
        return None, "没有设施数据 / no facilities"
    absent = [c for c in columns if c not in facilities]
    if absent:
        names = "、".join(f"{c}" for c in absent)
        return None, f"设施表没有 {names} 列 / facility table has no {', '.join(absent)} column"
    mask = _kind_mask(facilities, target.kinds)
    filter_mask, reason = _filter_mask(facilities, target.facility_filter)
    if reason:
        return None, reason
    area_mask, reason = _facility_area_mask(inputs, facilities, target.area)
    if area_mask is None:
        return None, reason
    selected = facilities[mask & filter_mask & area_mask]
    if len(selected) == 0:
        return None, f"{_NO_FACILITY}：没有{_kinds_zh(target.kinds)}设施 / no facility of these kinds"
    return selected, ""


#: start of the reason given when a target's kinds have no facility at all (reported 0 / not met, not "no data")
_NO_FACILITY = "无设施"


def _without_facilities(reason: str) -> Measure:
    """
    The measure of a facility target when no facility of its kinds is there: 0, not met.

    A study with no 互助幸福院 (every urban district) does not lack data on
    them: it has none, so a target on them is simply not met. Any other reason
    (a missing column, a filter that cannot be applied) stays "no data".
    """
    if reason.startswith(_NO_FACILITY):
        return Measure(actual=0.0, numerator=0.0, denominator=0.0,
                       detail_zh=f"{reason}；按 0 计 / counted as 0")
    return _no_data(reason)


def _kinds_zh(kinds: Sequence[str]) -> str:
    return "/".join(KIND_ZH.get(k, k) for k in kinds)


def _combined_cost(target: Target, inputs: TargetInputs) -> tuple[np.ndarray | None, float, str, str]:
    """
    Elementwise minimum cost over the target's kinds, the limit in seconds/metres, its label, or a reason.
    """
    minutes = target.threshold_unit == "min"
    arrays = inputs.seconds_by_kind if minutes else inputs.metres_by_kind
    configured = inputs.thresholds_min if minutes else inputs.distance_thresholds_m
    label = f"{target.threshold:g}分钟" if minutes else f"{target.threshold:g}米"
    unit_zh = "分钟" if minutes else "米"
    if configured and target.threshold > max(configured) + _SHARE_TOLERANCE:
        setting = "thresholds_min" if minutes else "distance_thresholds_m"
        return None, math.nan, label, (
            f"阈值{label}超过本次计算的最长阈值{max(configured):g}{unit_zh}，更远处的步行"
            f"{'时间' if minutes else '距离'}未计算；"
            f"请在 parameters.{setting} 中加入 {target.threshold:g} / threshold beyond the longest computed one"
        )
    missing = [k for k in target.kinds if k not in arrays]
    if missing:
        return None, math.nan, label, (f"未计算{_kinds_zh(missing)}的步行{'时间' if minutes else '距离'}"
                                        f"（parameters.kinds）/ no walking costs for {', '.join(missing)}")
    cost = np.min(np.vstack([np.asarray(arrays[k], float) for k in target.kinds]), axis=0)
    limit = target.threshold * 60.0 if minutes else float(target.threshold)
    return cost, limit, label, ""


# =============================================================================================
# Evaluating one target: adapters from study layers to the metric functions
# =============================================================================================


def _eval_service_circle(target: Target, inputs: TargetInputs) -> Measure:
    demand = inputs.demand
    if demand is None or "elderly" not in demand or len(demand) == 0:
        return _no_data("没有老年人口数据 / no elderly demand points")
    cost, limit, label, reason = _combined_cost(target, inputs)
    if cost is None:
        return _no_data(reason)
    if len(cost) != len(demand):
        return _no_data("步行时间与人口点数量不一致 / walking costs do not match the demand points")
    include, reason = _demand_mask(demand, target.area)
    if include is None:
        return _no_data(reason)
    elderly = pd.to_numeric(demand["elderly"], errors="coerce").fillna(0.0).to_numpy(float)
    measure = service_circle(elderly, cost, limit, include=include, cost_label_zh=f"{_AREA_ZH[target.area]}{label}")
    if measure.no_data or "town_code" not in demand:
        return measure
    lowest = _lowest_towns(demand, elderly, cost <= limit, include, inputs.units)
    if lowest:
        measure = replace(measure, detail_zh=f"{measure.detail_zh}；覆盖率最低的乡镇（街道）：{lowest}")
    return measure


def _lowest_towns(demand: pd.DataFrame, elderly: np.ndarray, within: np.ndarray, include: np.ndarray,
                  units: pd.DataFrame | None, n: int = 3) -> str:
    frame = pd.DataFrame({"town": _text(demand["town_code"]).to_numpy(dtype=object), "elderly": elderly,
                          "within": np.where(within, elderly, 0.0)})[include]
    frame = frame.dropna(subset=["town"])
    if frame.empty:
        return ""
    grouped = frame.groupby("town").sum()
    grouped = grouped[grouped["elderly"] > 0]
    if len(grouped) < 2:
        return ""
    share = (grouped["within"] / grouped["elderly"]).sort_values().head(n)
    names = dict(zip(_text(units["code"]), units["name"].astype("string"))) if units is not None and "name" in units \
        else {}
    return "、".join(f"{names.get(code, code)} {value:.0%}" for code, value in share.items())


def _eval_unit_presence(target: Target, inputs: TargetInputs, *, list_all: bool = False) -> Measure:
    if inputs.units is None:
        return _no_data("没有行政单元数据 / no administrative units")
    facilities = inputs.facilities
    column = _CODE_COLUMN[target.level]
    if facilities is None:
        return _no_data("没有设施数据 / no facilities")
    if column not in facilities:
        return _no_data(f"设施未分配到行政单元（缺少 {column}）/ facilities carry no {column}")
    units, label_zh, note = select_units(inputs.units, target.level, target.area)
    mask = _kind_mask(facilities, target.kinds)
    filter_mask, reason = _filter_mask(facilities, target.facility_filter)
    if reason:
        return _no_data(reason)
    codes = _text(facilities[column])[mask & filter_mask]
    function = at_least_one if list_all else unit_presence
    measure = function(units, codes.dropna().tolist(), unit_label_zh=label_zh)
    if note:
        measure = _with_note(measure, note)
    return measure


def _eval_at_least_one(target: Target, inputs: TargetInputs) -> Measure:
    return _eval_unit_presence(target, inputs, list_all=True)


def _with_note(measure: Measure, note: str) -> Measure:
    if measure.no_data:
        return Measure(no_data=f"{measure.no_data}；{note}")
    return replace(measure, detail_zh=f"{measure.detail_zh}；{note}")


def _eval_unit_reach(target: Target, inputs: TargetInputs) -> Measure:
    if inputs.units is None:
        return _no_data("没有行政单元数据 / no administrative units")
    units, label_zh, note = select_units(inputs.units, target.level, target.area)
    if len(units) == 0:
        return _with_note(_no_data(f"研究区内没有{label_zh}"), note) if note else _no_data(f"研究区内没有{label_zh}")
    cost, limit, label, reason = _combined_cost(target, inputs)
    if cost is None:
        return _no_data(reason)
    column = _CODE_COLUMN[target.level]
    demand = inputs.demand
    if demand is not None and column in demand and "elderly" in demand and len(cost) == len(demand):
        shares = metrics.unit_reach_table(demand, {"target": cost}, limit, code_column=column)
        shares = shares.rename(columns={"share_target": "share"})
    else:
        shares = _village_table_shares(target, inputs, limit)
        if shares is None:
            return _no_data(f"人口点没有 {column}，村表也没有该阈值的覆盖率 / cannot aggregate reach to units")
    table = units.merge(shares[["code", "elderly", "share"]], on="code", how="left")
    table["elderly"] = table["elderly"].fillna(0.0)
    measure = unit_reach(table, fraction=target.fraction, unit_label_zh=label_zh, cost_label_zh=label)
    return _with_note(measure, note) if note else measure


def _village_table_shares(target: Target, inputs: TargetInputs, limit: float) -> pd.DataFrame | None:
    """Shares from the pipeline's village table (valid only at its threshold, one kind)."""
    villages = inputs.villages
    longest = max(inputs.thresholds_min) * 60.0 if inputs.thresholds_min else math.nan
    if (villages is None or len(villages) == 0 or target.level != "village" or target.threshold_unit != "min"
            or len(target.kinds) != 1 or not math.isclose(limit, longest)):
        return None
    column = f"share_{target.kinds[0]}"
    if column not in villages or "elderly" not in villages:
        return None
    return pd.DataFrame({"code": _text(villages["code"]).to_numpy(dtype=object),
                         "elderly": villages["elderly"].to_numpy(float), "share": villages[column].to_numpy(float)})


def _facility_values(facilities: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(facilities[column], errors="coerce").to_numpy(float)


def _eval_beds_per_1000_elderly(target: Target, inputs: TargetInputs) -> Measure:
    facilities, reason = _target_facilities(target, inputs, ["beds"])
    if facilities is None:
        return _without_facilities(reason)
    elderly, reason = _elderly_total(inputs, target.area)
    if elderly is None:
        return _no_data(reason)
    return beds_per_1000_elderly(_facility_values(facilities, "beds"), elderly)


def _eval_caregivers_per_10000_elderly(target: Target, inputs: TargetInputs) -> Measure:
    facilities, reason = _target_facilities(target, inputs, ["caregivers"])
    if facilities is None:
        return _without_facilities(reason)
    elderly, reason = _elderly_total(inputs, target.area)
    if elderly is None:
        return _no_data(reason)
    return caregivers_per_10000_elderly(_facility_values(facilities, "caregivers"), elderly)


def _eval_nursing_bed_share(target: Target, inputs: TargetInputs) -> Measure:
    facilities, reason = _target_facilities(target, inputs, ["beds", "nursing_beds"])
    if facilities is None:
        return _without_facilities(reason)
    return nursing_bed_share(_facility_values(facilities, "beds"), _facility_values(facilities, "nursing_beds"))


def _eval_per_population(target: Target, inputs: TargetInputs, attribute: str, default_columns: Sequence[str],
                         function: Callable[[np.ndarray, float | None], Measure]) -> Measure:
    facilities, reason = _target_facilities(target, inputs, [attribute])
    if facilities is None:
        return _without_facilities(reason)
    columns = (target.population_column,) if target.population_column else tuple(default_columns)
    population, source = _population_total(inputs, target.area, columns)
    values = _facility_values(facilities, attribute)
    measure = function(values, population)
    if population is None and np.isfinite(values).any():
        return _no_data(source)
    if not measure.no_data and source:
        measure = _with_note(measure, f"人口来自{source}")
    return measure


def _eval_floor_area_per_10000_residents(target: Target, inputs: TargetInputs) -> Measure:
    return _eval_per_population(target, inputs, "floor_area_m2", _RESIDENT_COLUMNS, floor_area_per_10000_residents)


def _eval_land_area_per_resident(target: Target, inputs: TargetInputs) -> Measure:
    return _eval_per_population(target, inputs, "land_area_m2", _RESIDENT_COLUMNS, land_area_per_resident)


def _eval_floor_area_per_100_households(target: Target, inputs: TargetInputs) -> Measure:
    return _eval_per_population(target, inputs, "floor_area_m2", _HOUSEHOLD_COLUMNS, floor_area_per_100_households)


def _names(facilities: pd.DataFrame) -> list[str]:
    if "name" in facilities:
        return facilities["name"].astype("string").fillna("?").astype(str).tolist()
    return [str(i) for i in facilities.index]


def _eval_floor_area_per_bed(target: Target, inputs: TargetInputs) -> Measure:
    facilities, reason = _target_facilities(target, inputs, ["floor_area_m2", "beds"])
    if facilities is None:
        return _without_facilities(reason)
    return floor_area_per_bed(_facility_values(facilities, "floor_area_m2"), _facility_values(facilities, "beds"),
                              _names(facilities), minimum=target.required)


_TIER_WORDS = (
    ("county", re.compile(r"县区级|县级|区级|旗级|市级")),
    ("town", re.compile(r"街道级|镇级|乡级|苏木级")),
    ("village", re.compile(r"社区级|村级|嘎查级")),
    ("village", re.compile(r"社区|村|嘎查|居委会")),
    ("town", re.compile(r"街道|镇|乡|苏木")),
    ("county", re.compile(r"县|区|旗|市")),
)
_TIER_VALUES = {"county": "county", "县区级": "county", "县级": "county", "区级": "county", "town": "town",
                "street": "town", "街道级": "town", "镇级": "town", "village": "village", "community": "village",
                "社区级": "village", "村级": "village"}


def facility_tier_levels(facilities: pd.DataFrame) -> tuple[list[str], list[str]]:
    """
    Tier (``village`` / ``town`` / ``county``) of each facility, for :func:`size_tier`.

    Taken from a ``level`` column when it exists (county/town/street/village/
    community or 县区级/街道级/镇级/社区级/村级), else from the name: an
    explicit tier word (县区级, 街道级 …) first, then 社区/村/嘎查 → village,
    街道/镇/乡/苏木 → town, 县/区/旗/市 → county; otherwise the lowest tier.

    Returns
    -------
    tuple
        (tiers, sources) with sources ``column``, ``name`` or ``default``.
    """
    levels, sources = [], []
    column = facilities["level"].astype("string") if "level" in facilities else None
    names = _names(facilities)
    for i, name in enumerate(names):
        value = column.iloc[i] if column is not None else pd.NA
        if not pd.isna(value) and str(value).strip().lower() in _TIER_VALUES:
            levels.append(_TIER_VALUES[str(value).strip().lower()])
            sources.append("column")
            continue
        for tier, pattern in _TIER_WORDS:
            if pattern.search(name):
                levels.append(tier)
                sources.append("name")
                break
        else:
            levels.append("village")
            sources.append("default")
    return levels, sources


def _eval_size_tier(target: Target, inputs: TargetInputs) -> Measure:
    facilities, reason = _target_facilities(target, inputs, ["floor_area_m2"])
    if facilities is None:
        return _without_facilities(reason)
    levels, sources = facility_tier_levels(facilities)
    measure = size_tier(_facility_values(facilities, "floor_area_m2"), levels, dict(target.tiers), _names(facilities))
    defaulted = sources.count("default")
    if defaulted and not measure.no_data:
        measure = _with_note(measure, f"{defaulted} 个设施的级别无法从名称判断，按最低一级计")
    return measure


def _accessibility_values(target: Target, inputs: TargetInputs, key: str):
    """The per-point values of the target's one kind (``served`` or ``score``), the demand mask, or a reason."""
    values = inputs.accessibility
    demand = inputs.demand
    if demand is None or "elderly" not in demand or len(demand) == 0:
        return None, None, "没有老年人口数据 / no elderly demand points"
    if not values:
        return None, None, ("未计算可达性（parameters.accessibility.enabled 为 false）/ accessibility not computed: "
                            "set parameters.accessibility.enabled: true")
    if target.threshold_unit != "min" or not math.isclose(float(target.threshold), float(values["minutes"])):
        return None, None, (f"可达性按 {values['minutes']:g} 分钟计算；请将 parameters.accessibility.minutes 设为 "
                            f"{target.threshold:g} / accessibility was computed for {values['minutes']:g} min: set "
                            f"parameters.accessibility.minutes: {target.threshold:g}")
    if len(target.kinds) != 1 or target.kinds[0] not in values[key]:
        return None, None, (f"需为一种已计算可达性的设施类型（{_kinds_zh(target.kinds)}）/ needs one kind with "
                            "accessibility computed (parameters.accessibility.kinds)")
    include, reason = _demand_mask(demand, target.area)
    if include is None:
        return None, None, reason
    return np.asarray(values[key][target.kinds[0]], float), include, ""


def _eval_capacity_share(target: Target, inputs: TargetInputs) -> Measure:
    """Share of the older people served within the threshold with every facility's capacity respected."""
    served, include, reason = _accessibility_values(target, inputs, "served")
    if served is None:
        return _no_data(reason)
    elderly = pd.to_numeric(inputs.demand["elderly"], errors="coerce").fillna(0.0).to_numpy(float)
    total = float(elderly[include].sum())
    got = float(served[include].sum())
    if total <= 0:
        return _no_data("没有老年人口 / no elderly persons")
    return Measure(actual=got / total, numerator=got, denominator=total,
                   detail_zh=f"容量约束下{target.threshold:g}分钟内可获服务 {_fmt(got, 0)} / {_fmt(total, 0)} 人"
                             f"（{_kinds_zh(target.kinds)}，按设施服务能力分配）")


def _eval_access_gini(target: Target, inputs: TargetInputs) -> Measure:
    """Gini coefficient of the 2SFCA accessibility across the older people (0 = equal)."""
    score, include, reason = _accessibility_values(target, inputs, "score")
    if score is None:
        return _no_data(reason)
    # computed by coverage.access_tables per kind and area (all / urban / rural)
    value = inputs.accessibility.get("gini", {}).get(target.kinds[0], {}).get(target.area)
    if value is None or not np.isfinite(value):
        return _no_data(f"没有{_AREA_ZH[target.area]}老年人口的可达性 / no accessibility for area {target.area}")
    return Measure(actual=value, numerator=value, denominator=1.0,
                   detail_zh=f"{_kinds_zh(target.kinds)} 两步移动搜索法（2SFCA，{target.threshold:g}分钟）可达性的"
                             f"基尼系数 {value:.3f}（0 为完全均衡）")


_EVALUATORS: Mapping[str, Callable[[Target, TargetInputs], Measure]] = MappingProxyType(
    {
        "service_circle": _eval_service_circle,
        "unit_presence": _eval_unit_presence,
        "unit_reach": _eval_unit_reach,
        "at_least_one": _eval_at_least_one,
        "beds_per_1000_elderly": _eval_beds_per_1000_elderly,
        "nursing_bed_share": _eval_nursing_bed_share,
        "floor_area_per_10000_residents": _eval_floor_area_per_10000_residents,
        "caregivers_per_10000_elderly": _eval_caregivers_per_10000_elderly,
        "land_area_per_resident": _eval_land_area_per_resident,
        "floor_area_per_bed": _eval_floor_area_per_bed,
        "floor_area_per_100_households": _eval_floor_area_per_100_households,
        "size_tier": _eval_size_tier,
        "capacity_share": _eval_capacity_share,
        "access_gini": _eval_access_gini,
    }
)


def _status(actual: float, required: float, comparison: str) -> str:
    if actual is None or not np.isfinite(actual):
        return STATUS_NO_DATA
    if comparison in (">=", "<="):
        slack = _SHARE_TOLERANCE if comparison == ">=" else -_SHARE_TOLERANCE
        return STATUS_PASS if COMPARISONS[comparison](actual + slack, required) else STATUS_FAIL
    if comparison == "==":
        return STATUS_PASS if math.isclose(actual, required, rel_tol=1e-9, abs_tol=_SHARE_TOLERANCE) else STATUS_FAIL
    return STATUS_PASS if COMPARISONS[comparison](actual, required) else STATUS_FAIL


def _gap(target: Target, measure: Measure, status: str) -> float:
    """How far from the target: persons, whole units, or ratio units; 0 when passing."""
    if status == STATUS_NO_DATA:
        return math.nan
    if status == STATUS_PASS:
        return 0.0
    spec = target.spec
    if spec.gap == "ratio":
        return abs(target.required - measure.actual)
    needed = abs(target.required * measure.denominator - measure.numerator)
    if spec.gap == "units":
        return float(max(1, math.ceil(needed - _SHARE_TOLERANCE)))
    return round(float(needed), 1)  # persons


def measure_target(target: Target, inputs: TargetInputs) -> Measure:
    """
    The measure behind one target's row, before pass or fail: ``actual``, ``numerator`` and ``denominator``.

    A region adds areas' numerators and denominators up (persons, units) rather than averaging their shares
    (:mod:`coverage.region_run`).
    """
    return _EVALUATORS[target.metric](target, inputs)


def evaluate_target(target: Target, inputs: TargetInputs) -> dict[str, Any]:
    """
    Evaluate one target.

    Parameters
    ----------
    target
        A catalogue entry.
    inputs
        The study layers.

    Returns
    -------
    dict
        One row with the keys of :data:`RESULT_COLUMNS`: ``actual`` (share or
        ratio; NaN when there are no data), ``status`` (``pass`` / ``fail`` /
        ``no data``), ``gap`` (persons for service circles, whole units or
        facilities for unit and tier metrics, ratio units otherwise; 0 when
        passing, NaN without data) and ``detail_zh``.
    """
    measure = measure_target(target, inputs)
    status = STATUS_NO_DATA if measure.no_data else _status(measure.actual, target.required, target.comparison)
    gap = _gap(target, measure, status)
    detail = measure.no_data or measure.detail_zh
    facilities = inputs.facilities
    if (not measure.no_data and facilities is not None and not detail.startswith(_NO_FACILITY)
            and not _kind_mask(facilities, target.kinds).any()):
        # coverage and presence of a kind the study has none of: say so, not only "0 / 46"
        detail = f"{_NO_FACILITY}：研究区没有{_kinds_zh(target.kinds)} / no facility of these kinds；{detail}"
    if status == STATUS_FAIL and target.spec.gap == "ratio" and np.isfinite(measure.gap_scale):
        detail += f"；距目标还差约 {_fmt(gap * measure.gap_scale, 0)} {measure.need_unit_zh}"
    if target.note_zh:
        detail += f"；注：{target.note_zh}"
    return {
        "target_id": target.id,
        "set": target.set,
        "locality": target.locality,
        "document": target.document.label(),
        "label_zh": target.label_zh,
        "label_en": target.label_en,
        "metric": target.metric,
        "kinds": ";".join(target.kinds),
        "level": target.level,
        "scope": target.area,
        "threshold": target.threshold if target.threshold is not None else math.nan,
        "unit": target.threshold_unit or "",
        "required": float(target.required),
        "comparison": target.comparison,
        "actual": float(measure.actual) if not measure.no_data else math.nan,
        "status": status,
        "gap": gap,
        "gap_unit": target.spec.gap_unit,
        "year": target.year,
        "quote": target.quote,
        "detail_zh": detail,
    }


def evaluate_targets(targets: Iterable[Target], inputs: TargetInputs) -> pd.DataFrame:
    """
    Evaluate several targets into one table (columns :data:`RESULT_COLUMNS`).

    Parameters
    ----------
    targets
        Catalogue entries.
    inputs
        The study layers.
    """
    rows = [evaluate_target(target, inputs) for target in targets]
    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    table["year"] = table["year"].astype("Int64")
    return table


def select_study_targets(config) -> tuple[Target, ...]:
    """
    The targets a study selects: its ``targets.sets`` plus every entry of its ``targets.files``.

    Cheap (reads YAML only), so ``eldercov validate`` can call it to report a
    misspelt set or a malformed target file before a run.

    Parameters
    ----------
    config
        :class:`coverage.config.StudyConfig`.

    Raises
    ------
    ConfigError
        A target file is malformed or a set name is unknown.
    """
    catalogue = load_catalogue(config.target_files)
    return catalogue.select(config.target_sets, files=config.target_files)


def evaluate_study_targets(
    config,
    *,
    demand: pd.DataFrame | None,
    seconds_by_kind: Mapping[str, np.ndarray],
    metres_by_kind: Mapping[str, np.ndarray],
    units: pd.DataFrame | None,
    facilities: pd.DataFrame | None,
    villages: pd.DataFrame | None,
    year: int | None = None,
    accessibility: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """
    Evaluate the targets a study selects: its ``targets.sets`` plus every entry of its ``targets.files``.

    A target given per year (``required: {2024: 0.8, 2025: 0.9}``) is checked
    against its value of ``year`` (:meth:`coverage.catalogue.Target.for_year`);
    without ``year``, against the last (the value due at the end of the plan).

    Parameters
    ----------
    config
        :class:`coverage.config.StudyConfig` (``target_sets``, ``target_files``,
        ``parameters.thresholds_min`` / ``distance_thresholds_m``).
    demand, seconds_by_kind, metres_by_kind, units, facilities, villages
        The study layers, as in :class:`TargetInputs`.

    Returns
    -------
    pandas.DataFrame
        One row per selected target, columns :data:`RESULT_COLUMNS`.

    Raises
    ------
    ConfigError
        A target file is malformed or a set name is unknown.
    """
    selected = select_study_targets(config)
    if year is not None:
        selected = tuple(target.for_year(year) for target in selected)
    params = config.parameters
    inputs = TargetInputs(
        demand=demand, seconds_by_kind=seconds_by_kind or {}, metres_by_kind=metres_by_kind or {}, units=units,
        facilities=facilities, villages=villages, thresholds_min=tuple(params.thresholds_min),
        distance_thresholds_m=tuple(params.distance_thresholds_m), accessibility=accessibility,
    )
    return evaluate_targets(selected, inputs)
