"""Read Chinese administrative division codes as tables really hold them, and match codes across tables by level.

Statistical division codes (统计用区划代码) have 12 digits: province (2),
city (2), county (2), town (3), village (3); a county is often written with
its first 6 digits only (420116), a town with 9 (420116001), and
Tianditu-derived layers put the country code 156 in front (156420116).
Spreadsheets add their own damage: a code column read as numbers comes back
as ``420116.0``, and a 12-digit number in a narrow Excel column is saved to
CSV as ``4.20116E+11`` — the last six digits are gone. :func:`parse_code`
reads all of these and says how many digits were really given;
:func:`match_codes` matches two code lists exactly, once padded to 12
digits, or by prefix (a county against its towns, a town against its villages).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: digits that identify a division at each level, coarse to fine
LEVEL_DIGITS: Mapping[str, int] = {"province": 2, "city": 4, "county": 6, "town": 9, "village": 12}
#: levels from coarse to fine
LEVELS = tuple(LEVEL_DIGITS)
#: the lengths a normalised code has
CODE_LENGTHS = (6, 9, 12)

__all__ = [
    "CODE_LENGTHS",
    "LEVELS",
    "LEVEL_DIGITS",
    "ParsedCode",
    "code_level",
    "code_prefix",
    "full_code",
    "match_codes",
    "normalise_code",
    "parse_code",
]

_DIGITS_RE = re.compile(r"\d+")
_INTEGRAL_DECIMAL_RE = re.compile(r"(\d+)\.0*")
_THOUSANDS_RE = re.compile(r"\d{1,3}(,\d{3})+(\.0*)?")
_SCIENTIFIC_RE = re.compile(r"(\d+)(?:\.(\d*))?[eE]\+?(\d+)")
_COUNTRY_PREFIXED_RE = re.compile(r"156(\d{6}|\d{9}|\d{12})")
_EMPTY_WORDS = frozenset({"", "-", "--", "—", "/", "nan", "none", "null", "n/a", "na", "无"})


@dataclass(frozen=True)
class ParsedCode:
    """
    A division code as read from one cell.

    Attributes
    ----------
    code : str or None
        6, 9 or 12 digits; None when the value is no division code.
    exact : bool
        False when the cell held fewer digits than the code has (scientific
        notation, e.g. ``4.20116E+11``): the missing digits are filled with
        zeros and only the first ``known_digits`` can be trusted.
    known_digits : int
        How many leading digits of ``code`` the cell really gave.
    text : str
        The cell as text, after Unicode normalisation.
    """

    code: str | None
    exact: bool
    known_digits: int
    text: str


def _text_of(value: Any) -> str | None:
    """A cell as text; None for empty cells. Numbers as Python reads them (floats keep their '.0')."""
    if value is None or value is pd.NA or isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            return None
        # a float holds any integer up to 2**53 exactly, so integral floats are exact codes
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def parse_code(value: Any, *, tianditu: bool | None = None) -> ParsedCode:
    """
    Read a division code from a cell, however the table holds it.

    Accepted: integers and integral floats (``420116``, ``420116.0``);
    strings of digits, with a ``.0`` tail, thousands separators, spaces or a
    leading apostrophe (Excel's text marker); full-width digits
    (``４２０１１６``); scientific notation (``4.20116E+11``, ``4.20116e11``),
    where only the digits written are known; the country prefix ``156`` of
    Tianditu / fastgeocn codes (``156420116``).

    Parameters
    ----------
    value
        The cell value.
    tianditu
        ``True``: strip a ``156`` prefix from 9-, 12- and 15-digit codes;
        ``False``: never strip it; ``None`` (default): strip it, since no
        statistical code starts with 156 (province 15 has no city 6x).

    Returns
    -------
    ParsedCode
        ``code`` None when the value is empty, not a whole number, or does
        not have 6, 9 or 12 digits.
    """
    raw = _text_of(value)
    if raw is None:
        return ParsedCode(None, True, 0, "")
    text = unicodedata.normalize("NFKC", raw).strip()
    compact = re.sub(r"\s+", "", text).lstrip("'")
    if compact.lower() in _EMPTY_WORDS:
        return ParsedCode(None, True, 0, text)
    if _THOUSANDS_RE.fullmatch(compact):
        compact = compact.replace(",", "")
    digits, known = None, 0
    if _DIGITS_RE.fullmatch(compact):
        digits = compact
        known = len(digits)
    elif match := _INTEGRAL_DECIMAL_RE.fullmatch(compact):
        digits = match.group(1)
        known = len(digits)
    elif match := _SCIENTIFIC_RE.fullmatch(compact):
        whole, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3))
        # digits the exponent leaves after the decimal point must be zeros: a code is a whole number
        if not fraction[exponent:].strip("0"):
            written = whole + fraction[:exponent]
            # the digits not written (beyond the mantissa) are unknown; zeros stand in for them
            integer = (written + "0" * (exponent - len(fraction[:exponent]))).lstrip("0")
            if integer:
                digits = integer
                known = len(written.lstrip("0"))
    if digits is None:
        return ParsedCode(None, True, 0, text)
    strip_country = tianditu is not False
    if strip_country and _COUNTRY_PREFIXED_RE.fullmatch(digits):
        digits = digits[3:]
        known = max(known - 3, 0)
    if len(digits) not in CODE_LENGTHS:
        return ParsedCode(None, True, 0, text)
    known = min(known, len(digits))
    return ParsedCode(digits, known >= len(digits), known, text)


def normalise_code(value: Any, *, tianditu: bool | None = None) -> str | None:
    """
    A division code as its digit string (6, 9 or 12 digits), or None.

    ``420116.0`` → ``'420116'``; ``'４２０ １１６'`` → ``'420116'``;
    ``'156420116'`` → ``'420116'``; ``'4.20116E+11'`` → ``'420116000000'``
    (only 6 digits were given: :func:`parse_code` tells, in ``exact`` and
    ``known_digits``). Codes are not padded: a 6-digit county code stays 6
    digits (see :func:`full_code`).

    Parameters
    ----------
    value
        The cell value (int, float, str, …).
    tianditu
        As for :func:`parse_code`.
    """
    return parse_code(value, tianditu=tianditu).code


def full_code(code: Any) -> str | None:
    """The 12-digit form of a code (6- and 9-digit codes padded with zeros), or None."""
    digits = normalise_code(code)
    return None if digits is None else digits.ljust(12, "0")


def code_level(code: Any) -> str | None:
    """
    The level a code names: ``province``, ``city``, ``county``, ``town`` or ``village``.

    Trailing zero groups make a code coarser: ``420100`` is a city,
    ``420116000000`` a county, ``420116001000`` a town, ``420116001001`` a
    village; a 9-digit code is a town (``420116000`` a county).

    Parameters
    ----------
    code
        Anything :func:`normalise_code` reads.

    Returns
    -------
    str or None
        None when ``code`` is no division code.
    """
    digits = full_code(code)
    if digits is None:
        return None
    if digits[9:] != "000":
        return "village"
    if digits[6:9] != "000":
        return "town"
    if digits[4:6] != "00":
        return "county"
    if digits[2:4] != "00":
        return "city"
    return "province"


def code_prefix(code: Any, level: str) -> str | None:
    """
    The digits of a code that name its division at ``level``.

    ``code_prefix('420116001001', 'county')`` → ``'420116'``,
    ``code_prefix('420116001001', 'town')`` → ``'420116001'``.

    Parameters
    ----------
    code
        Anything :func:`normalise_code` reads.
    level
        One of :data:`LEVELS`.

    Returns
    -------
    str or None
        None when ``code`` is no division code or is coarser than ``level``
        (a county code has no town prefix).
    """
    if level not in LEVEL_DIGITS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
    own = code_level(code)
    if own is None or LEVELS.index(own) < LEVELS.index(level):
        return None
    return full_code(code)[: LEVEL_DIGITS[level]]


def match_codes(left_codes: Iterable[Any], right_codes: Iterable[Any], *, prefix: bool = True) -> pd.DataFrame:
    """
    Match each code of one list to the code(s) of another, exactly first, then by prefix.

    For each left code, in this order (the first that finds anything wins):

    1. ``exact``: the same normalised code (``420116.0`` and ``420116``);
    2. ``padded``: the same once both are written with 12 digits
       (``420116`` and ``420116000000``; ``420116001`` and ``420116001000``);
    3. ``prefix`` (when ``prefix``): the right codes of finer divisions
       inside the left one, e.g. a county's towns (a county total matches the
       aggregate of its towns), a town's villages. Where the right list holds
       several finer levels, only the coarsest is matched, so that the
       matches add up to the left division once.

    A left code written in scientific notation with digits lost
    (:attr:`ParsedCode.exact` False) matches the right codes whose first
    ``known_digits`` digits agree with it (the one equal to its zero-padded
    value when there is one), marked ``imprecise``.

    Parameters
    ----------
    left_codes, right_codes
        Code values as the tables hold them (anything :func:`parse_code` reads).
    prefix
        Also match by prefix (step 3).

    Returns
    -------
    pandas.DataFrame
        One row per match, left codes in their order (a left code without
        match gets one row with ``how == "none"``): ``left`` (as given),
        ``left_code`` (normalised, None when unreadable), ``right`` (as given,
        None without match), ``right_code`` (normalised), ``how``
        (``exact``, ``padded``, ``prefix``, ``imprecise`` or ``none``).
    """
    right_values = list(right_codes)
    right_parsed = [normalise_code(v) for v in right_values]
    by_code: dict[str, list[int]] = {}
    by_full: dict[str, list[int]] = {}
    by_prefix: dict[str, list[int]] = {}
    right_level: list[int] = []
    for i, code in enumerate(right_parsed):
        level = code_level(code) if code is not None else None
        right_level.append(LEVELS.index(level) if level else -1)
        if code is None:
            continue
        by_code.setdefault(code, []).append(i)
        by_full.setdefault(full_code(code), []).append(i)
        # every coarser division this code lies in
        for coarser in LEVELS[: LEVELS.index(level)]:
            by_prefix.setdefault(full_code(code)[: LEVEL_DIGITS[coarser]], []).append(i)
    right_full = np.array([full_code(c) or "" for c in right_parsed], dtype=object)

    rows: list[tuple[Any, str | None, Any, str | None, str]] = []
    for value in left_codes:
        parsed = parse_code(value)
        code = parsed.code
        found: list[int] = []
        how = "none"
        if code is not None and not parsed.exact:
            padded = full_code(code)
            found = by_full.get(padded, [])
            if not found and prefix:
                known = code[: parsed.known_digits]
                found = _coarsest([i for i, f in enumerate(right_full) if f and f.startswith(known)], right_level)
            how = "imprecise" if found else "none"
        elif code is not None:
            found = by_code.get(code, [])
            how = "exact"
            if not found:
                found = by_full.get(full_code(code), [])
                how = "padded"
            if not found and prefix:
                level = code_level(code)
                found = _coarsest([i for i in by_prefix.get(full_code(code)[: LEVEL_DIGITS[level]], [])
                                   if right_level[i] > LEVELS.index(level)], right_level)
                how = "prefix"
            if not found:
                how = "none"
        if not found:
            rows.append((value, code, None, None, "none"))
        for i in found:
            rows.append((value, code, right_values[i], right_parsed[i], how))
    return pd.DataFrame(rows, columns=["left", "left_code", "right", "right_code", "how"])


def _coarsest(positions: list[int], level_of: list[int]) -> list[int]:
    """The positions whose level is the coarsest among them."""
    if not positions:
        return []
    coarsest = min(level_of[i] for i in positions)
    return [i for i in positions if level_of[i] == coarsest]
