"""The registry of facility kinds: ids, labels, colours, markers and the type names that identify them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from coverage._errors import InputDataError

__all__ = ["FacilityKind", "KindRegistry", "registry", "kind_ids", "label", "read_extension"]

#: the pseudo-kind "a facility of any kind" used by tables and targets
ANY_KIND = "any"


@dataclass(frozen=True)
class FacilityKind:
    """
    One facility kind of the registry (``coverage/kinds.yaml``).

    Attributes
    ----------
    id
        Identifier used in tables and study files (``day_care``).
    label_zh, label_en
        Display names.
    colour
        Hex colour for maps and figures.
    marker
        matplotlib marker for figures.
    capacity
        Capacity column that describes the kind best (``beds``, ``floor_area_m2`` …).
    types
        Type names matched exactly (after normalisation).
    keywords
        Words matched inside a type or a name.
    counts_for
        Catalogue target ids that count this kind (besides every target on ``any``).
    """

    id: str
    label_zh: str
    label_en: str
    colour: str
    marker: str
    capacity: str
    types: tuple[str, ...]
    keywords: tuple[str, ...]
    counts_for: tuple[str, ...] = ()

    def label(self, lang: str = "zh") -> str:
        """The display name in ``zh`` or ``en``."""
        return self.label_en if lang == "en" else self.label_zh


@dataclass(frozen=True)
class KindRegistry:
    """All facility kinds in display order, plus the type names too general to decide a kind."""

    kinds: tuple[FacilityKind, ...]
    generic_types: frozenset[str]
    not_facility_types: frozenset[str] = frozenset()

    @property
    def ids(self) -> tuple[str, ...]:
        """Kind ids in display order."""
        return tuple(kind.id for kind in self.kinds)

    def __getitem__(self, kind_id: str) -> FacilityKind:
        for kind in self.kinds:
            if kind.id == kind_id:
                return kind
        raise KeyError(kind_id)

    def __contains__(self, kind_id: object) -> bool:
        return any(kind.id == kind_id for kind in self.kinds)

    def labels(self, lang: str = "zh") -> Mapping[str, str]:
        """Kind id → display name, with ``any``."""
        names = {kind.id: kind.label(lang) for kind in self.kinds}
        names[ANY_KIND] = "any kind" if lang == "en" else "任一类型设施"
        return MappingProxyType(names)

    def colours(self) -> Mapping[str, str]:
        """Kind id → hex colour."""
        return MappingProxyType({kind.id: kind.colour for kind in self.kinds})

    def markers(self) -> Mapping[str, str]:
        """Kind id → matplotlib marker."""
        return MappingProxyType({kind.id: kind.marker for kind in self.kinds})


def normalise_pattern(text: str) -> str:
    """Type text as it is matched: NFKC (half-width), no white space."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", str(text)))


def _registry_file() -> Path:
    return Path(__file__).with_name("kinds.yaml")


def _as_list(value, *, path: Path, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise InputDataError(f"{where} must be a list of texts / {where} 应为文字列表", path=path,
                             hint="write one name per line starting with '- ' / 每行一个名称，以“- ”开头")
    return tuple(str(item) for item in value if item is not None and str(item).strip())


def _load_yaml(path: Path) -> dict:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise InputDataError("kind mapping file not found / 类型对照表文件不存在", path=path,
                             hint="check the kinds path in the study file or --kinds / 检查 kinds 路径") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputDataError(
            f"kind mapping is not valid YAML ({exc}) / 类型对照表不是有效的 YAML", path=path,
            hint="save it as UTF-8 YAML in the layout of coverage/kinds.yaml / 按 coverage/kinds.yaml 的格式保存为 UTF-8",
        ) from None
    if not isinstance(raw, dict):
        raise InputDataError("kind mapping must be a mapping of kind → lists / 类型对照表格式不对", path=path,
                             hint="top-level keys are kind ids (day_care: …) or 'kinds:' / 顶层键应为设施类别")
    return raw


@lru_cache(maxsize=1)
def registry() -> KindRegistry:
    """
    The package's kind registry, read once from ``coverage/kinds.yaml``.

    Returns
    -------
    KindRegistry
    """
    path = _registry_file()
    raw = _load_yaml(path)
    kinds = []
    for kind_id, entry in (raw.get("kinds") or {}).items():
        kinds.append(FacilityKind(
            id=str(kind_id), label_zh=str(entry["label_zh"]), label_en=str(entry["label_en"]),
            colour=str(entry["colour"]), marker=str(entry["marker"]), capacity=str(entry.get("capacity", "")),
            types=_as_list(entry.get("types"), path=path, where=f"{kind_id}.types"),
            keywords=_as_list(entry.get("keywords"), path=path, where=f"{kind_id}.keywords"),
            counts_for=_as_list(entry.get("counts_for"), path=path, where=f"{kind_id}.counts_for"),
        ))
    generic = frozenset(normalise_pattern(t).lower()
                        for t in _as_list(raw.get("generic_types"), path=path, where="generic_types"))
    not_facility = frozenset(normalise_pattern(t).lower() for t in
                             _as_list(raw.get("not_facility_types"), path=path, where="not_facility_types"))
    return KindRegistry(tuple(kinds), generic, not_facility)


def kind_ids() -> tuple[str, ...]:
    """Kind ids of the registry in display order."""
    return registry().ids


def label(kind_id: str, lang: str = "zh") -> str:
    """Display name of a kind (or of ``any``); the id itself for an unknown kind."""
    return registry().labels(lang).get(kind_id, kind_id)


def read_extension(path: str | Path) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """
    A user's kinds file: extra type names and keywords per existing kind, and extra generic types.

    Parameters
    ----------
    path
        YAML in the layout of ``coverage/kinds.yaml``: either ``kinds: {day_care: {types: […]}}``
        or the kinds at the top level (``day_care: {types: […], keywords: […]}``, or a plain
        list of type names per kind); an optional ``generic_types`` list.

    Returns
    -------
    patterns : dict
        Kind id → type names and keywords to add.
    generic : frozenset
        Normalised generic type names to add.

    Raises
    ------
    InputDataError
        When the file cannot be read or names a kind the registry does not know.
    """
    path = Path(path)
    raw = _load_yaml(path)
    known = kind_ids()
    generic = frozenset(normalise_pattern(t).lower()
                        for t in _as_list(raw.pop("generic_types", None), path=path, where="generic_types"))
    entries = raw.get("kinds") if isinstance(raw.get("kinds"), dict) else raw
    patterns: dict[str, tuple[str, ...]] = {}
    for kind_id, entry in entries.items():
        if kind_id not in known:
            raise InputDataError(
                f"unknown facility kind '{kind_id}' / 未知的设施类别 '{kind_id}'", path=path,
                hint=f"use one of / 可用类别: {', '.join(known)} (a new kind is one entry in coverage/kinds.yaml)",
            )
        entry = entry or {}
        if isinstance(entry, list):
            entry = {"types": entry}
        if not isinstance(entry, dict):
            raise InputDataError(f"{kind_id}: expected types/keywords lists / {kind_id} 应列出 types 和 keywords",
                                 path=path, hint="see coverage/kinds.yaml for the layout / 参照 coverage/kinds.yaml")
        patterns[kind_id] = (_as_list(entry.get("types"), path=path, where=f"{kind_id}.types")
                             + _as_list(entry.get("keywords"), path=path, where=f"{kind_id}.keywords"))
    return patterns, generic
