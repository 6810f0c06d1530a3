"""Facilities in time: opening and closing years, construction status, and which facilities are open in a year."""

from __future__ import annotations

import datetime as _dt
import math
import re
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "STATUS_OPEN", "STATUS_UNDER_CONSTRUCTION", "STATUS_PLANNED", "STATUS_CLOSED", "STATUS_UNKNOWN",
    "STATUS_LABELS", "TIME_COLUMNS", "parse_year", "parse_status", "open_mask", "as_of", "status_counts",
    "parse_years", "first_year_met",
]

#: built and in service (已建成 / 运营)
STATUS_OPEN = "open"
#: being built (在建): counts from its stated opening year, never without one
STATUS_UNDER_CONSTRUCTION = "under_construction"
#: planned (规划 / 拟建): counts from its stated opening year, never without one
STATUS_PLANNED = "planned"
#: closed (停业 / 撤销): counts up to its closing year when given, else never
STATUS_CLOSED = "closed"
#: no status given: treated as open (a registry of facilities in service)
STATUS_UNKNOWN = ""

#: status code → (Chinese, English) label
STATUS_LABELS: Mapping[str, tuple[str, str]] = MappingProxyType({
    STATUS_OPEN: ("已建成", "open"),
    STATUS_UNDER_CONSTRUCTION: ("在建", "under construction"),
    STATUS_PLANNED: ("规划", "planned"),
    STATUS_CLOSED: ("停业", "closed"),
    STATUS_UNKNOWN: ("未注明（按已建成）", "not stated (taken as open)"),
})

#: the time columns of facility records (``ingest.read_facilities``): opening year (float, NaN = not
#: given), closing year (float, NaN = not given), status code (one of the ``STATUS_*`` values)
TIME_COLUMNS: tuple[str, ...] = ("opened", "closed", "status")

# status words, longest first where one contains another (正常运营 before 运营, 已停业 before 停业)
_STATUS_WORDS: tuple[tuple[str, str], ...] = (
    ("未建成", STATUS_PLANNED), ("未开工", STATUS_PLANNED), ("建设中", STATUS_UNDER_CONSTRUCTION),
    ("在建", STATUS_UNDER_CONSTRUCTION), ("施工", STATUS_UNDER_CONSTRUCTION), ("装修", STATUS_UNDER_CONSTRUCTION),
    ("筹建", STATUS_UNDER_CONSTRUCTION), ("规划", STATUS_PLANNED), ("拟建", STATUS_PLANNED),
    ("计划", STATUS_PLANNED), ("待建", STATUS_PLANNED), ("新建", STATUS_PLANNED),
    ("停业", STATUS_CLOSED), ("停运", STATUS_CLOSED), ("关闭", STATUS_CLOSED), ("撤销", STATUS_CLOSED),
    ("注销", STATUS_CLOSED), ("关停", STATUS_CLOSED), ("歇业", STATUS_CLOSED), ("停办", STATUS_CLOSED),
    ("已建成", STATUS_OPEN), ("建成", STATUS_OPEN), ("正常运营", STATUS_OPEN), ("在运营", STATUS_OPEN),
    ("运营", STATUS_OPEN), ("已投用", STATUS_OPEN), ("投用", STATUS_OPEN), ("投入使用", STATUS_OPEN),
    ("开业", STATUS_OPEN), ("营业", STATUS_OPEN), ("正常", STATUS_OPEN), ("在用", STATUS_OPEN),
    ("使用中", STATUS_OPEN), ("已运行", STATUS_OPEN), ("运行", STATUS_OPEN),
)
_STATUS_ENGLISH: Mapping[str, str] = MappingProxyType({
    "open": STATUS_OPEN, "opened": STATUS_OPEN, "operating": STATUS_OPEN, "in service": STATUS_OPEN,
    "existing": STATUS_OPEN, "built": STATUS_OPEN, "active": STATUS_OPEN,
    "under construction": STATUS_UNDER_CONSTRUCTION, "under_construction": STATUS_UNDER_CONSTRUCTION,
    "construction": STATUS_UNDER_CONSTRUCTION, "building": STATUS_UNDER_CONSTRUCTION,
    "planned": STATUS_PLANNED, "proposed": STATUS_PLANNED, "plan": STATUS_PLANNED,
    "closed": STATUS_CLOSED, "close": STATUS_CLOSED, "inactive": STATUS_CLOSED, "demolished": STATUS_CLOSED,
})
_EMPTY = {"", "-", "—", "--", "/", "无", "暂无", "空", "nan", "none", "null", "n/a", "na", "未知", "不详"}

#: years a facility list can plausibly state (the PRC's first elderly homes onwards, a plan's horizon)
YEAR_RANGE = (1949, 2100)
# Excel serial day numbers of 1949-01-01 … 2100-12-31 (a date cell read as a number)
_EXCEL_SERIALS = (17899, 73415)
_EXCEL_EPOCH = _dt.date(1899, 12, 30)


def _plain(text: Any) -> str:
    import unicodedata

    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    return unicodedata.normalize("NFKC", str(text)).strip()


def parse_year(value: Any) -> tuple[float, bool]:
    """
    The year in a cell of 建成年份 / 开业时间 / 投用时间.

    Reads what bureau lists hold: ``2019``, ``2019.0``, ``"2019年"``,
    ``"2019-06"``, ``"2019/6/1"``, ``"2019年6月"``, ``"2019.06"``,
    ``"2019-06-01T00:00:00"`` (an Excel date cell), an Excel serial day
    number (``43617``), ``datetime`` / ``date`` values, full-width digits.

    Parameters
    ----------
    value
        Cell value (text, number or date).

    Returns
    -------
    tuple
        ``(year, readable)``: the year as a float and True; NaN and True for
        an empty cell or a placeholder such as "无"; NaN and False when the
        text holds no year of 1949–2100 (the row is kept and flagged).
    """
    if isinstance(value, (_dt.datetime, _dt.date)):
        return float(value.year), True
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isnan(value):
            return math.nan, True
        return _year_of_number(float(value))
    text = _plain(value)
    if text.lower() in _EMPTY:
        return math.nan, True
    text = re.sub(r"[ T]\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?$", "", text)  # a date cell's time of day
    compact = re.sub(r"\s+", "", text)
    if re.search(r"\d{1,2}[:：]\d{2}", compact) and not re.match(r"^\d{4}[-/.年]", compact):
        return math.nan, True  # opening hours (运营时间 08:00-17:00), not a year: as if empty
    try:
        return _year_of_number(float(compact))
    except ValueError:
        pass
    match = re.match(r"^(?:约|于|截至)?(\d{4})(?:年|[-/.](\d{1,2})(?:[-/.]\d{1,2})?(?:[T ].*)?|年\d{1,2}月(?:\d{1,2}日)?|"
                     r"年(?:底|末|初|中|上半年|下半年))?(?:前|底|末|建成|开业|投用|以前)?$", compact)
    if match is None:
        return math.nan, False
    year = int(match.group(1))
    if match.group(2) is not None and not 1 <= int(match.group(2)) <= 12:
        return math.nan, False
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        return math.nan, False
    return float(year), True


def _year_of_number(number: float) -> tuple[float, bool]:
    """A year from a number cell: 2019, 2019.0, 2019.06 (year.month), or an Excel serial day."""
    if YEAR_RANGE[0] <= number < YEAR_RANGE[1] + 1:
        whole = math.floor(number)
        # 2019.06 / 2019.6 is a year.month cell; 2019.0 the year itself
        return float(whole), True
    if _EXCEL_SERIALS[0] <= number <= _EXCEL_SERIALS[1] and float(number).is_integer():
        return float((_EXCEL_EPOCH + _dt.timedelta(days=int(number))).year), True
    return math.nan, False


def parse_status(value: Any) -> tuple[str, bool]:
    """
    The construction status code of a 状态 / 建设状态 / 运营状态 cell.

    已建成 / 建成 / 运营 / 正常运营 / 在运营 / 已投用 → ``open``; 在建 / 建设中 /
    施工 → ``under_construction``; 规划 / 拟建 / 计划 / 待建 → ``planned``;
    停业 / 停运 / 关闭 / 撤销 / 注销 → ``closed``; English words likewise.

    Returns
    -------
    tuple
        ``(status, readable)``: ``""`` (:data:`STATUS_UNKNOWN`) and True for
        an empty cell; ``""`` and False for words not understood (the row is
        kept, counted as open, and flagged ``unreadable_status``).
    """
    text = _plain(value)
    if text.lower() in _EMPTY:
        return STATUS_UNKNOWN, True
    lowered = text.lower()
    if lowered in _STATUS_ENGLISH:
        return _STATUS_ENGLISH[lowered], True
    for word, status in _STATUS_WORDS:
        if word in text:
            return status, True
    return STATUS_UNKNOWN, False


def _column(facilities: pd.DataFrame, name: str, default: Any) -> np.ndarray:
    if name in facilities.columns:
        return facilities[name].to_numpy()
    return np.full(len(facilities), default, dtype=object if isinstance(default, str) else float)


def open_mask(facilities: pd.DataFrame, year: int | None = None) -> np.ndarray:
    """
    Which facilities are open in ``year`` (boolean per row, in row order).

    The rules (columns :data:`TIME_COLUMNS`; missing columns mean "not given"):

    * ``status`` open or not stated: open from ``opened`` (every year when no
      opening year is given: most registries state none);
    * ``under_construction`` / ``planned``: open from ``opened`` only when it
      is given, else never (a plan without a year is not counted);
    * ``closed`` year given (any status): not open from that year on;
      status ``closed`` without a closing year: never open;
    * ``year`` None ("as listed", a plain run): open or not stated, and not
      closed — planned and under-construction facilities are not open today,
      whatever year they give.

    Parameters
    ----------
    facilities
        Facility records or sites with ``opened`` (year, float, NaN = not
        given), ``closed`` (year, float) and ``status`` (code) columns.
    year
        Calendar year of the evaluation, or None for "as listed".

    Returns
    -------
    numpy.ndarray
        Boolean array of ``len(facilities)``.

    Examples
    --------
    A facility with ``opened`` 2025 is False for 2024 and True for 2025.
    """
    n = len(facilities)
    opened = pd.to_numeric(pd.Series(_column(facilities, "opened", math.nan)), errors="coerce").to_numpy(float)
    closed = pd.to_numeric(pd.Series(_column(facilities, "closed", math.nan)), errors="coerce").to_numpy(float)
    status = pd.Series(_column(facilities, "status", "")).fillna("").astype(str).to_numpy()
    if n == 0:
        return np.zeros(0, bool)
    built = (status == STATUS_OPEN) | (status == STATUS_UNKNOWN)
    future = (status == STATUS_UNDER_CONSTRUCTION) | (status == STATUS_PLANNED)
    is_closed = status == STATUS_CLOSED
    if year is None:
        return built & ~is_closed
    year = int(year)
    with np.errstate(invalid="ignore"):
        # no opening year: built ones (and closed ones with a closing year) were open from the start
        started = np.where(np.isnan(opened), built | (is_closed & ~np.isnan(closed)), opened <= year)
        not_closed = np.where(np.isnan(closed), ~is_closed, year < closed)
    return (built | future | is_closed) & started & not_closed


def as_of(facilities: pd.DataFrame, year: int | None) -> pd.DataFrame:
    """
    The facilities open in ``year`` (:func:`open_mask`), index reset.

    Parameters
    ----------
    facilities
        Records or sites with the :data:`TIME_COLUMNS`.
    year
        Calendar year, or None for "as listed".
    """
    mask = open_mask(facilities, year)
    return facilities[mask].reset_index(drop=True)


def status_counts(facilities: pd.DataFrame) -> dict[str, int]:
    """Rows per status code (``open``, ``under_construction``, ``planned``, ``closed``, ``""``), zero counts left out."""
    status = pd.Series(_column(facilities, "status", "")).fillna("").astype(str)
    return {code: int((status == code).sum()) for code in STATUS_LABELS if int((status == code).sum())}


def parse_years(text: str | int | None) -> tuple[int, ...]:
    """
    The years of ``--years``: ``2020-2026``, ``2020–2026``, ``2020,2023,2025`` or one year.

    Raises
    ------
    coverage._errors.ConfigError
        Not a year range or list of years in 1949–2100, or more than 50 years.
    """
    from coverage._errors import ConfigError

    if text is None:
        return ()
    raw = _plain(text).replace("–", "-").replace("—", "-").replace("~", "-").replace("至", "-")
    years: list[int] = []
    try:
        for part in [p for p in re.split(r"[,，;\s]+", raw) if p]:
            if "-" in part:
                first, last = (int(p) for p in part.split("-", 1))
                if last < first:
                    raise ValueError(part)
                years.extend(range(first, last + 1))
            else:
                years.append(int(part))
    except ValueError:
        raise ConfigError(f"--years: '{text}' is not a year range such as 2020-2026 or a list such as 2020,2023,2025 "
                          "/ 年份应写作 2020-2026 或 2020,2023,2025") from None
    years = sorted(set(years))
    if not years or years[0] < YEAR_RANGE[0] or years[-1] > YEAR_RANGE[1] or len(years) > 50:
        raise ConfigError(f"--years: '{text}' must name 1 to 50 years between {YEAR_RANGE[0]} and {YEAR_RANGE[1]} "
                          "/ 年份超出范围")
    return tuple(years)


def first_year_met(years: np.ndarray | list[int], met: np.ndarray | list[bool]) -> int | None:
    """
    The first year from which a target stays met to the last year, or None (never, or lost again).

    Parameters
    ----------
    years
        Ascending years.
    met
        Whether the target is met in each year.
    """
    years, met = list(years), [bool(m) for m in met]
    first = None
    for year, ok in zip(years, met):
        if ok and first is None:
            first = year
        elif not ok:
            first = None
    return first


def split_open(records: pd.DataFrame, year: int | None, notes: list[str] | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """
    Split facility records into those open in ``year`` (:func:`open_mask`) and the rest, each index reset.

    Parameters
    ----------
    records
        Facility records (``ingest.read_facilities``), any CRS.
    year
        Calendar year, or None for "as listed".
    notes
        Receives a note for the planner: how many records were set aside
        and why, and (for a year) how many state no opening year.

    Returns
    -------
    tuple
        ``(open, not_open)``; rows in = rows of both.
    """
    mask = open_mask(records, year)
    kept = records[mask].reset_index(drop=True)
    rest = records[~mask].reset_index(drop=True)
    if notes is not None:
        if len(rest):
            counts = status_counts(rest)
            parts = ", ".join(f"{n} {STATUS_LABELS[code][1]}" for code, n in counts.items())
            parts_zh = "、".join(f"{STATUS_LABELS[code][0]} {n} 处" for code, n in counts.items())
            when = f"in {year}" if year is not None else "today (as listed)"
            notes.append(
                f"{len(rest)} facility records are not open {when} ({parts}): they do not count for coverage "
                f"{'this year' if year is not None else 'now'}; planned and under-construction ones count from their "
                f"stated opening year in a run with --years / 未投用设施（{parts_zh}）不计入"
                f"{f'{year} 年' if year is not None else '现状'}覆盖，规划、在建设施自其建成年份起计入分年度进展"
            )
        if year is not None and len(kept):
            no_year = int(pd.to_numeric(kept.get("opened", pd.Series(np.nan, index=kept.index)),
                                        errors="coerce").isna().sum())
            if no_year:
                notes.append(
                    f"{no_year} open facility records state no opening year (建成年份): they count as open in every "
                    "year / 未注明建成年份的设施按各年均已建成计"
                )
    return kept, rest


def not_open_summary(not_open: pd.DataFrame, year: int | None) -> dict[str, Any]:
    """
    The counts of the records :func:`split_open` set aside, for the ingest summary and run.json.

    Rows in = located + presence-only + rejected + ``not_open``.
    """
    return {"evaluation_year": year, "not_open": len(not_open), "not_open_by_status": status_counts(not_open)}
