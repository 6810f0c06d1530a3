"""The policy-target catalogue: targets.yaml and users' files of the same layout, parsed into Target values."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import yaml

from coverage._errors import ConfigError
from coverage.config import KINDS



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
        # parameters.accessibility (coverage.access_tables): capacity-aware coverage and 2SFCA equity
        "capacity_share": MetricSpec(("study",), True, True, "persons", "人 / persons"),
        "access_gini": MetricSpec(("study",), True, True, "ratio", "基尼系数 / Gini coefficient"),
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
    #: a yearly series ``((year, value), …)`` ascending when ``required`` was given per year
    #: (``required: {2024: 0.8, 2025: 0.9}``); ``required`` is then the last year's value
    required_by_year: tuple[tuple[int, float], ...] = ()

    @property
    def spec(self) -> MetricSpec:
        """The :class:`MetricSpec` of this target's metric."""
        return METRICS[self.metric]

    def required_in(self, year: int) -> float | None:
        """
        The value required in ``year``: the series' value of the latest year up to ``year``.

        A target without a series requires ``required`` in every year (it is
        due by ``year`` and checked before too); a series requires nothing
        before its first year (None).
        """
        if not self.required_by_year:
            return self.required
        value = None
        for step_year, step_value in self.required_by_year:
            if step_year <= year:
                value = step_value
        return value

    def for_year(self, year: int) -> Target:
        """This target as checked in ``year``: ``required`` is :meth:`required_in` (the first value before a series starts)."""
        if not self.required_by_year:
            return self
        value = self.required_in(year)
        return replace(self, required=self.required_by_year[0][1] if value is None else value)


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
    series = _parse_series(raw["required"], where)
    required = series[-1][1] if series else _number(raw["required"], where, "required")
    for value in ([v for _, v in series] or [required]):
        _check_required(value, spec, metric, where)
    if series and raw.get("year") is None:
        raw = {**raw, "year": series[-1][0]}  # due by the series' last year
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
    return _target_from(raw, documents=documents, where=where, origin=origin, metric=metric, level=level, area=area,
                        comparison=comparison, required=required, series=series, threshold=threshold, unit=unit)


def _parse_series(value: Any, where: str) -> tuple[tuple[int, float], ...]:
    """A yearly ``required`` series ``{2024: 0.8, 2025: 0.9}`` as ascending pairs; () for a single value."""
    if not isinstance(value, Mapping):
        return ()
    if not value:
        raise ConfigError(f"{where}: required is an empty mapping; give a number or {{year: value, …}} "
                          "such as {2024: 0.8, 2025: 0.9} / 分年度目标应写作 {2024: 0.8, 2025: 0.9}")
    pairs = []
    for year, number in value.items():
        text = str(year).strip()
        if isinstance(year, bool) or not text.isdigit() or not 1949 <= int(text) <= 2100:
            raise ConfigError(f"{where}: required series key {year!r} is not a year such as 2024 "
                              "/ 分年度目标的键应为年份")
        pairs.append((int(text), _number(number, where, f"required[{text}]")))
    return tuple(sorted(pairs))


def _check_required(required: float, spec: MetricSpec, metric: str, where: str) -> None:
    if spec.share and not 0.0 <= required <= 1.0:
        raise ConfigError(f"{where}: required of metric {metric} is a share between 0 and 1 (e.g. 0.9 for 90 %), "
                          f"got {required:g}")
    if not spec.share and required < 0:
        raise ConfigError(f"{where}: required must not be negative, got {required:g}")


def _target_from(raw: Mapping[str, Any], *, documents: Mapping[str, Document], where: str, origin: str, metric: str,
                 level: str, area: str, comparison: str, required: float, series: tuple[tuple[int, float], ...],
                 threshold: Any, unit: Any) -> Target:
    """The :class:`Target` of a checked entry (the remaining fields checked here)."""
    spec = METRICS[metric]
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
        origin=origin, required_by_year=series,
    )


#: PyYAML's safe loader, in C when PyYAML was built with libyaml
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"target file not found: {path}")
    try:
        # libyaml's loader where PyYAML has it: the same documents, a seventh of the time (a run reads the
        # shipped catalogue twice: to check the study's sets at the start, and to evaluate them)
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER) or {}
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

