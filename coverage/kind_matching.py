"""Which facility kinds a type cell or a name indicates (registry type names and keywords, POI category paths)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import pandas as pd

from coverage import kinds as kinds_registry
from coverage.config import KINDS
from coverage.poi import _category_levels
from coverage.tables import _nfkc


_NEGATION_RE = re.compile(r"(不含|不包括|未设|暂无|没有)[^,;/、()\[\]]*")


@dataclass(frozen=True)
class _KindPatterns:
    """Normalised type names and keywords, each with the kind it indicates, and the generic type names."""

    patterns: tuple[tuple[str, str], ...]
    exact: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    generic: frozenset[str] = frozenset()
    not_facility: frozenset[str] = frozenset()


def _load_kind_patterns(kinds_file: str | Path | None = None) -> _KindPatterns:
    """The registry's type names and keywords (``coverage/kinds.yaml``), extended by ``kinds_file`` when given."""
    registry = kinds_registry.registry()
    merged: dict[str, set[str]] = {kind.id: set() for kind in registry.kinds}
    exact: dict[str, set[str]] = {}
    for kind in registry.kinds:
        for text in kind.types + kind.keywords:
            merged[kind.id].add(kinds_registry.normalise_pattern(text))
        for text in kind.types:
            exact.setdefault(kinds_registry.normalise_pattern(text).lower(), set()).add(kind.id)
    generic = set(registry.generic_types)
    if kinds_file is not None:
        extra, extra_generic = kinds_registry.read_extension(kinds_file)
        generic |= extra_generic
        for kind_id, texts in extra.items():
            for text in texts:
                pattern = kinds_registry.normalise_pattern(text)
                if pattern:
                    merged[kind_id].add(pattern)
                    exact.setdefault(pattern.lower(), set()).add(kind_id)
    order = registry.ids
    patterns = tuple((pattern, kind) for kind in order for pattern in sorted(merged[kind]) if pattern)
    exact_sorted = {text: tuple(k for k in order if k in found) for text, found in exact.items()}
    return _KindPatterns(patterns, MappingProxyType(exact_sorted), frozenset(generic), registry.not_facility_types)


def _kinds_in_text(text: str, kind_patterns: _KindPatterns) -> tuple[str, ...]:
    """Kinds named in a type or name text (exact type name, else keywords), in ``config.KINDS`` order."""
    compact = re.sub(r"\s+", "", _nfkc(text))
    if not compact:
        return ()
    parts = [p for p in re.split(r"[;,/、|+]+", compact.lower()) if p]
    if parts and all(p in KINDS for p in parts):
        return tuple(kind for kind in KINDS if kind in parts)
    if parts and all(p in kind_patterns.exact for p in parts):
        found_exact = {kind for p in parts for kind in kind_patterns.exact[p]}
        return tuple(kind for kind in KINDS if kind in found_exact)
    compact = _NEGATION_RE.sub("", compact)
    lowered = compact.lower()
    hits: list[tuple[int, int, str]] = []
    for pattern, kind in kind_patterns.patterns:
        needle = pattern.lower()
        start = lowered.find(needle)
        while start >= 0:
            hits.append((start, start + len(needle), kind))
            start = lowered.find(needle, start + 1)
    found = {
        kind for start, end, kind in hits
        if not any(s2 <= start and end <= e2 and (e2 - s2) > (end - start) and k2 != kind for s2, e2, k2 in hits)
    }
    return tuple(kind for kind in KINDS if kind in found)


def _is_generic(text: str, kind_patterns: _KindPatterns) -> bool:
    return re.sub(r"\s+", "", _nfkc(text)).lower() in kind_patterns.generic


def _kinds_of_type(type_text: str, kind_patterns: _KindPatterns) -> tuple[tuple[str, ...], str]:
    """
    Kinds from a type cell, and how the type read: ``named``, ``category``, ``generic``,
    ``unknown`` or ``not_facility``.

    A category path ("生活服务;社会福利;养老院") is read level by level from the
    most specific; levels that are generic words are passed over (``category``:
    the caller reads the facility's name first, which says more).
    """
    kinds = _kinds_in_text(type_text, kind_patterns)
    levels = _category_levels(type_text)
    if any(re.sub(r"\s+", "", _nfkc(level)).lower() in kind_patterns.not_facility for level in levels):
        return (), "not_facility"
    if len(levels) > 1:
        per_level = [_kinds_in_text(level, kind_patterns) for level in levels]
        if all(per_level) and not any(_is_generic(level, kind_patterns) for level in levels):
            return kinds, "named"  # a list of services ("日间照料中心;幸福食堂"), not a category path
        for level in levels:
            if _is_generic(level, kind_patterns):
                continue
            found = _kinds_in_text(level, kind_patterns)
            if found:
                return found, "category"
        return (), ("generic" if all(_is_generic(level, kind_patterns) for level in levels) else "unknown")
    if kinds:
        return kinds, "named"
    return (), ("generic" if _is_generic(type_text, kind_patterns) else "unknown")


def match_kinds(text: str, *, kinds_file: str | Path | None = None) -> tuple[str, ...]:
    """
    The facility kinds a type name (or facility name) indicates.

    Parameters
    ----------
    text
        A type cell such as ``"日间照料中心（含助餐）"`` or a name.
    kinds_file
        Optional YAML extending ``coverage/kinds.yaml``.

    Returns
    -------
    tuple of str
        Kinds from ``config.KINDS`` in their display order; empty when the
        text names none (the caller rejects such a row, never guesses).

    Examples
    --------
    >>> match_kinds("日间照料中心/幸福食堂")
    ('day_care', 'canteen')
    """
    return _kinds_in_text(text, _load_kind_patterns(kinds_file))


def has_kind(facilities: pd.DataFrame, kind: str) -> pd.Series:
    """
    Which facilities are of a kind (a facility may have several).

    Parameters
    ----------
    facilities
        Output of :func:`read_facilities` (uses the ``kinds`` column).
    kind
        One of ``config.KINDS``.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``facilities``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown facility kind {kind!r}; known: {', '.join(KINDS)}")
    kinds = facilities["kinds"].astype(object).where(facilities["kinds"].notna(), "")
    return kinds.map(lambda text: kind in str(text).split(";")).astype(bool)
