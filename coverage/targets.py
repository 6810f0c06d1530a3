"""
Policy targets (政策指标): the catalogue shipped as ``targets.yaml`` and its evaluation on a study.

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
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
import yaml

from coverage import metrics
from coverage._errors import ConfigError
from coverage.config import KINDS
from coverage.report import KIND_ZH

__all__ = [
    "CATALOGUE_PATH",
    "METRICS",
    "RESULT_COLUMNS",
    "Catalogue",
    "Document",
    "Measure",
    "Target",
    "TargetInputs",
    "load_catalogue",
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

#: the catalogue shipped with the package
CATALOGUE_PATH = Path(__file__).with_name("targets.yaml")

#: "a facility of any kind"
ANY_KIND = "any"

STATUS_PASS = "pass"
STATUS_FAIL = "fail"
STATUS_NO_DATA = "no data"

#: unit levels a target may count; ``town`` is every 乡/镇/街道/苏木, ``street`` only 街道
LEVELS: tuple[str, ...] = ("study", "county", "town", "street", "village", "facility")
#: urban/rural filters of a denominator
AREAS: tuple[str, ...] = ("all", "urban", "rural")
#: comparison operators of ``required``
COMPARISONS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
)
#: facility tiers of :func:`size_tier`, smallest first
TIER_LEVELS: tuple[str, ...] = ("village", "town", "county")

#: columns of an evaluated-targets table, in order
RESULT_COLUMNS: tuple[str, ...] = (
    "target_id", "set", "locality", "document", "label_zh", "label_en", "metric", "kinds", "level", "scope",
    "threshold", "unit", "required", "comparison", "actual", "status", "gap", "gap_unit", "year", "quote",
    "detail_zh",
)

_FIELDS_REQUIRED = ("id", "set", "locality", "document", "label_zh", "label_en", "metric", "kinds", "level",
                    "required", "quote")
_FIELDS_KNOWN = frozenset(_FIELDS_REQUIRED) | {
    "area", "threshold", "threshold_unit", "fraction", "comparison", "year", "source", "confidence", "note_zh",
    "facility_filter", "tiers", "population_column",
}
_SHARE_TOLERANCE = 1e-9
_MAX_LISTED = 20

_LEVEL_ZH = {"county": "县（区）", "town": "乡镇（街道）", "street": "街道", "village": "村（社区）",
             "facility": "设施", "study": "全域"}
_AREA_ZH = {"all": "", "urban": "城镇", "rural": "乡村"}
_TOWN_AREA_ZH = {"all": "乡镇（街道）", "urban": "街道", "rural": "乡镇"}
_VILLAGE_AREA_ZH = {"all": "村（社区）", "urban": "城市社区", "rural": "行政村"}
_TIER_ZH = {"village": "社区/村级", "town": "街道/镇级", "county": "县区级"}

_CODE_COLUMN = {"village": "village_code", "town": "town_code", "street": "town_code", "county": "county_code"}
_RESIDENT_COLUMNS = ("residents", "population", "total_population")
_HOUSEHOLD_COLUMNS = ("households",)


@dataclass(frozen=True)
class MetricSpec:
    """
    What a metric kind needs and how its gap is expressed.

    Attributes
    ----------
    levels
        Levels a target of this metric may name.
    needs_threshold
        A walking time or distance is required.
    share
        ``required`` is a share in 0..1.
    gap
        ``"persons"``, ``"units"`` (rounded up to whole units) or ``"ratio"``.
    gap_unit
        Text of the ``gap_unit`` column.
    """

    levels: tuple[str, ...]
    needs_threshold: bool
    share: bool
    gap: str
    gap_unit: str


#: metric kind → what it needs
METRICS: Mapping[str, MetricSpec] = MappingProxyType(
    {
        "service_circle": MetricSpec(("study",), True, True, "persons", "人 / persons"),
        "unit_presence": MetricSpec(("village", "town", "street", "county"), False, True, "units", "个单位 / units"),
        "unit_reach": MetricSpec(("village", "town", "street"), True, True, "units", "个单位 / units"),
        "at_least_one": MetricSpec(("village", "town", "street", "county"), False, True, "units", "个单位 / units"),
        "beds_per_1000_elderly": MetricSpec(("study", "facility"), False, False, "ratio",
                                            "张/千名老人 / beds per 1,000 elderly"),
        "nursing_bed_share": MetricSpec(("study", "facility"), False, True, "ratio", "占比 / share of beds"),
        "floor_area_per_10000_residents": MetricSpec(("study", "facility"), False, False, "ratio",
                                                     "平方米/万名居民 / m² per 10,000 residents"),
        "caregivers_per_10000_elderly": MetricSpec(("study", "facility"), False, False, "ratio",
                                                   "人/万名老人 / caregivers per 10,000 elderly"),
        "land_area_per_resident": MetricSpec(("study", "facility"), False, False, "ratio",
                                             "平方米/人 / m² per resident"),
        "floor_area_per_bed": MetricSpec(("study", "facility"), False, False, "ratio", "平方米/床 / m² per bed"),
        "floor_area_per_100_households": MetricSpec(("study", "facility"), False, False, "ratio",
                                                    "平方米/百户 / m² per 100 households"),
        "size_tier": MetricSpec(("facility",), False, True, "units", "个设施 / facilities"),
    }
)


# =============================================================================================
# Catalogue
# =============================================================================================


@dataclass(frozen=True)
class Document:
    """A policy document or standard: file (seed file name or standard number), title, year."""

    file: str
    title: str
    year: int | None = None
    issuer: str = ""
    number: str = ""

    def label(self) -> str:
        """Title with year, as shown in the ``document`` column."""
        return f"{self.title}（{self.year}）" if self.year and str(self.year) not in self.title else self.title


@dataclass(frozen=True)
class Target:
    """
    One policy target of the catalogue.

    Attributes
    ----------
    id, set, locality, document, label_zh, label_en
        Identification (see ``targets.yaml``).
    metric
        Key of :data:`METRICS`.
    kinds
        Facility kinds (a facility of any of them counts), or ``("any",)``.
    level
        One of :data:`LEVELS`.
    area
        ``all``, ``urban`` or ``rural``: the denominator's urban/rural filter.
    required
        Share 0..1 or ratio value.
    comparison
        Key of :data:`COMPARISONS`.
    threshold, threshold_unit
        Walking time in minutes (``"min"``) or distance in metres (``"m"``), or None.
    fraction
        :func:`unit_reach`: share of a unit's elderly within the threshold for the unit to count.
    year
        Year by which the target is due.
    quote
        Short phrase of the document.
    source, confidence, note_zh
        Clause, confidence of the number (V / V2 / R), how the target is read.
    facility_filter
        ``(column, allowed values)`` pairs: only facilities matching all count.
    tiers
        :func:`size_tier`: ``(tier level, minimum floor area m²)`` pairs.
    population_column
        Column of residents / households in the demand points or units.
    origin
        The YAML file the entry came from.
    """

    id: str
    set: str
    locality: str
    document: Document
    label_zh: str
    label_en: str
    metric: str
    kinds: tuple[str, ...]
    level: str
    required: float
    quote: str
    area: str = "all"
    comparison: str = ">="
    threshold: float | None = None
    threshold_unit: str | None = None
    fraction: float = 0.5
    year: int | None = None
    source: str = ""
    confidence: str = ""
    note_zh: str = ""
    facility_filter: tuple[tuple[str, tuple[str, ...]], ...] = ()
    tiers: tuple[tuple[str, float], ...] = ()
    population_column: str | None = None
    origin: str = ""

    @property
    def spec(self) -> MetricSpec:
        """The :class:`MetricSpec` of this target's metric."""
        return METRICS[self.metric]


@dataclass(frozen=True)
class Catalogue:
    """
    Targets, sets and documents read from the shipped catalogue and user files.

    Attributes
    ----------
    targets
        Every entry, in file order (shipped file first).
    sets
        Set id → ``{"title_zh", "title_en"}``.
    documents
        Document key → :class:`Document`.
    files
        The YAML files read, shipped one first.
    """

    targets: tuple[Target, ...]
    sets: Mapping[str, Mapping[str, str]]
    documents: Mapping[str, Document]
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.targets)

    def ids(self) -> tuple[str, ...]:
        """Target ids in catalogue order."""
        return tuple(t.id for t in self.targets)

    def get(self, target_id: str) -> Target:
        """The target with ``target_id`` (KeyError when absent)."""
        for target in self.targets:
            if target.id == target_id:
                return target
        raise KeyError(target_id)

    def select(self, sets: Iterable[str] = (), *, files: Iterable[str | Path] = ()) -> tuple[Target, ...]:
        """
        Targets of the named sets plus every target read from ``files``.

        Raises
        ------
        ConfigError
            A set name is unknown.
        """
        sets = tuple(sets)
        unknown = [s for s in sets if s not in self.sets]
        if unknown:
            raise ConfigError(
                f"targets.sets: unknown target set(s) {', '.join(unknown)}; known: {', '.join(self.sets)}"
                " / 未知指标组，请检查拼写或在 targets.files 中提供自定义指标文件"
            )
        origins = {str(Path(f).resolve()) for f in files}
        return tuple(t for t in self.targets if t.set in sets or t.origin in origins)


def _where(path: Path, index: int | None = None, target_id: str | None = None) -> str:
    text = str(path)
    if index is not None:
        text += f": targets[{index}]"
    if target_id:
        text += f" ({target_id})"
    return text


def _parse_document(value: Any, documents: Mapping[str, Document], where: str) -> Document:
    if isinstance(value, str):
        if value not in documents:
            raise ConfigError(f"{where}: document '{value}' is not defined under 'documents:' "
                              f"(known: {', '.join(documents)})")
        return documents[value]
    if isinstance(value, dict):
        for key in ("file", "title"):
            if not value.get(key):
                raise ConfigError(f"{where}: document needs '{key}'")
        year = value.get("year")
        return Document(file=str(value["file"]), title=str(value["title"]),
                        year=int(year) if year is not None else None,
                        issuer=str(value.get("issuer", "")), number=str(value.get("number", "")))
    raise ConfigError(f"{where}: document must be a key of 'documents:' or a mapping with file and title")


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where}: {name} must be finite, got {value!r}")
    return number


def _parse_kinds(value: Any, where: str) -> tuple[str, ...]:
    kinds = [value] if isinstance(value, str) else list(value or [])
    if not kinds:
        raise ConfigError(f"{where}: kinds must name at least one facility kind or 'any'")
    for kind in kinds:
        if kind != ANY_KIND and kind not in KINDS:
            raise ConfigError(f"{where}: unknown facility kind '{kind}'; known: {', '.join(KINDS)}, {ANY_KIND}")
    return (ANY_KIND,) if ANY_KIND in kinds else tuple(dict.fromkeys(kinds))


def _parse_filter(value: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if value in (None, {}):
        return ()
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: facility_filter must map a facility column to a value or a list of values")
    pairs = []
    for column, allowed in value.items():
        allowed = allowed if isinstance(allowed, (list, tuple)) else [allowed]
        pairs.append((str(column), tuple(str(v).strip().lower() for v in allowed)))
    return tuple(pairs)


def _parse_tiers(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: size_tier needs tiers, e.g. {{village: 100, town: 300, county: 500}}")
    pairs = []
    for level, minimum in value.items():
        if level not in TIER_LEVELS:
            raise ConfigError(f"{where}: tier level '{level}' must be one of {', '.join(TIER_LEVELS)}")
        pairs.append((str(level), _number(minimum, where, f"tiers.{level}")))
    return tuple(sorted(pairs, key=lambda p: TIER_LEVELS.index(p[0])))


def parse_target(raw: Mapping[str, Any], *, documents: Mapping[str, Document], where: str,
                 origin: str = "") -> Target:
    """
    Check one catalogue entry and turn it into a :class:`Target`.

    Parameters
    ----------
    raw
        The entry as read from YAML.
    documents
        Known documents (key → :class:`Document`).
    where
        Location for error messages.
    origin
        File the entry came from.

    Raises
    ------
    ConfigError
        A field is missing or wrong; the message names the file and entry.
    """
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: each target must be a mapping of fields")
    missing = [name for name in _FIELDS_REQUIRED if raw.get(name) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(raw) - _FIELDS_KNOWN)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    metric = str(raw["metric"])
    if metric not in METRICS:
        raise ConfigError(f"{where}: unknown metric '{metric}'; known: {', '.join(METRICS)}")
    spec = METRICS[metric]
    level = str(raw["level"])
    if level not in spec.levels:
        raise ConfigError(f"{where}: level '{level}' does not fit metric {metric}; use one of {', '.join(spec.levels)}")
    area = str(raw.get("area", "all"))
    if area not in AREAS:
        raise ConfigError(f"{where}: area must be one of {', '.join(AREAS)}, got '{area}'")
    if level == "street" and area == "rural":
        raise ConfigError(f"{where}: streets (街道) are urban; level street cannot have area rural")
    if level == "county" and area != "all":
        raise ConfigError(f"{where}: counties are not split into urban and rural; use area all")
    comparison = str(raw.get("comparison", ">="))
    if comparison not in COMPARISONS:
        raise ConfigError(f"{where}: comparison must be one of {', '.join(COMPARISONS)}, got '{comparison}'")
    required = _number(raw["required"], where, "required")
    if spec.share and not 0.0 <= required <= 1.0:
        raise ConfigError(f"{where}: required of metric {metric} is a share between 0 and 1 (e.g. 0.9 for 90 %), "
                          f"got {required:g}")
    if not spec.share and required < 0:
        raise ConfigError(f"{where}: required must not be negative, got {required:g}")
    threshold, unit = raw.get("threshold"), raw.get("threshold_unit")
    if spec.needs_threshold:
        if threshold is None or unit not in ("min", "m"):
            raise ConfigError(f"{where}: metric {metric} needs threshold and threshold_unit (min or m)")
        threshold = _number(threshold, where, "threshold")
        if threshold <= 0:
            raise ConfigError(f"{where}: threshold must be greater than 0")
    elif threshold is not None:
        raise ConfigError(f"{where}: metric {metric} takes no threshold")
    else:
        unit = None
    fraction = _number(raw.get("fraction", 0.5), where, "fraction")
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"{where}: fraction must be in (0, 1], got {fraction:g}")
    tiers = _parse_tiers(raw.get("tiers"), where) if metric == "size_tier" else ()
    if metric != "size_tier" and raw.get("tiers") is not None:
        raise ConfigError(f"{where}: tiers only apply to metric size_tier")
    year = raw.get("year")
    return Target(
        id=str(raw["id"]), set=str(raw["set"]), locality=str(raw["locality"]),
        document=_parse_document(raw["document"], documents, where),
        label_zh=str(raw["label_zh"]), label_en=str(raw["label_en"]), metric=metric,
        kinds=_parse_kinds(raw["kinds"], where), level=level, area=area, required=required, comparison=comparison,
        threshold=threshold if spec.needs_threshold else None, threshold_unit=unit, fraction=fraction,
        year=int(year) if year is not None else None, quote=str(raw["quote"]), source=str(raw.get("source", "")),
        confidence=str(raw.get("confidence", "")), note_zh=str(raw.get("note_zh", "")),
        facility_filter=_parse_filter(raw.get("facility_filter"), where), tiers=tiers,
        population_column=str(raw["population_column"]) if raw.get("population_column") else None,
        origin=origin,
    )


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"target file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("targets", []), list):
        raise ConfigError(f"{path}: expected a mapping with a 'targets:' list (see coverage/targets.yaml)")
    return raw


def load_catalogue(extra_files: Iterable[str | Path] = ()) -> Catalogue:
    """
    Read the shipped target catalogue and any user files of the same layout.

    A user file may define its own ``documents:`` and ``sets:`` (or use the
    shipped ones) and adds its ``targets:``. A new set named only by its
    targets is registered with its id as title. Ids must be unique across all
    files: to change a shipped target, copy it under a new id.

    Parameters
    ----------
    extra_files
        User YAML files.

    Returns
    -------
    Catalogue

    Raises
    ------
    ConfigError
        A file is missing, not YAML, or an entry is malformed or duplicated.
    """
    files = (CATALOGUE_PATH, *(Path(f).resolve() for f in extra_files))
    documents: dict[str, Document] = {}
    sets: dict[str, dict[str, str]] = {}
    targets: list[Target] = []
    seen: dict[str, str] = {}
    for path in files:
        raw = _read_yaml(path)
        for key, value in (raw.get("documents") or {}).items():
            documents[str(key)] = _parse_document(value, documents, f"{path}: documents.{key}")
        for key, value in (raw.get("sets") or {}).items():
            value = value if isinstance(value, dict) else {"title_zh": str(value)}
            sets[str(key)] = {"title_zh": str(value.get("title_zh", key)), "title_en": str(value.get("title_en", key))}
        for index, entry in enumerate(raw.get("targets") or []):
            target_id = entry.get("id") if isinstance(entry, dict) else None
            target = parse_target(entry, documents=documents, where=_where(path, index, target_id),
                                  origin=str(path))
            if target.id in seen:
                raise ConfigError(f"{_where(path, index, target.id)}: target id '{target.id}' is already defined in "
                                  f"{seen[target.id]}; give your target a new id / 指标编号重复")
            seen[target.id] = str(path)
            sets.setdefault(target.set, {"title_zh": target.set, "title_en": target.set})
            targets.append(target)
    return Catalogue(targets=tuple(targets), sets=MappingProxyType(sets), documents=MappingProxyType(documents),
                     files=files)


def catalogue_table(catalogue: Catalogue) -> pd.DataFrame:
    """
    The catalogue as a table (one row per target), for review or a report appendix.

    Returns
    -------
    pandas.DataFrame
        target_id, set, locality, document, label_zh, label_en, metric, kinds,
        level, scope, threshold, unit, required, comparison, year, quote.
    """
    rows = [
        {"target_id": t.id, "set": t.set, "locality": t.locality, "document": t.document.label(),
         "label_zh": t.label_zh, "label_en": t.label_en, "metric": t.metric, "kinds": ";".join(t.kinds),
         "level": t.level, "scope": t.area, "threshold": t.threshold, "unit": t.threshold_unit or "",
         "required": t.required, "comparison": t.comparison, "year": t.year, "quote": t.quote}
        for t in catalogue.targets
    ]
    return pd.DataFrame(rows)


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
    measure = _EVALUATORS[target.metric](target, inputs)
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
) -> pd.DataFrame:
    """
    Evaluate the targets a study selects: its ``targets.sets`` plus every entry of its ``targets.files``.

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
    params = config.parameters
    inputs = TargetInputs(
        demand=demand, seconds_by_kind=seconds_by_kind or {}, metres_by_kind=metres_by_kind or {}, units=units,
        facilities=facilities, villages=villages, thresholds_min=tuple(params.thresholds_min),
        distance_thresholds_m=tuple(params.distance_thresholds_m),
    )
    return evaluate_targets(selected, inputs)
