"""Read census age tables (七普/六普 county tables) into totals of the elderly per division code."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from coverage._errors import InputDataError
from coverage.calibration import _normalise_code
from coverage.rasters import _AGE_GROUP

__all__ = [
    "read_census_60plus",
]

_CENSUS_SHEETS = {2020: "七普", 2010: "六普"}
_SEX_TEXT = {"男": "m", "女": "f"}
_CENSUS_AGE_HEADERS = [
    re.compile(r"^(?P<sex>[男女])_(?P<lower>\d+)(?:到(?P<upper>\d+))?岁(?P<open>以上)?$"),
    re.compile(r"^(?P<lower>\d+)(?:-(?P<upper>\d+))?岁(?P<open>及以上)?\((?P<sex>[男女])\)$"),
]


def _census_age_column(header) -> tuple[str, int] | None:
    """(sex, lower age) of a census age-band column header such as '男_60到64岁' or '60-64岁（男）'."""
    if header is None:
        return None
    text = re.sub(r"\s+", "", str(header)).replace("（", "(").replace("）", ")")
    for pattern in _CENSUS_AGE_HEADERS:
        match = pattern.match(text)
        if match:
            return _SEX_TEXT[match["sex"]], int(match["lower"])
    return None


def _division_level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def _pick_census_sheet(workbook, year: int, path: Path):
    marker = _CENSUS_SHEETS.get(year)
    for sheet in workbook.worksheets:
        if marker and marker in sheet.title:
            return sheet
    other = [m for y, m in _CENSUS_SHEETS.items() if y != year]
    for sheet in workbook.worksheets:
        if any(m in sheet.title for m in other):
            raise InputDataError(
                f"sheet '{sheet.title}' holds another census than {year}", path=path, hint="pass the right year="
            )
    return workbook.worksheets[0]


def read_census_60plus(xlsx_path: str | Path, *, year: int = 2020, age_group: str = "60+") -> pd.DataFrame:
    """
    Elderly totals per division from a county-level census table (leiii/census layout).

    The table has male and female counts by 5-year age band (0 … 85+),
    headed '男_60到64岁' (2020 file) or '60-64岁（男）' (2010 file). It holds
    province, city (e.g. 420100 Wuhan) and county/district rows together:
    the ``level`` column tells them apart, and totals must never be summed
    across levels.

    Parameters
    ----------
    xlsx_path
        e.g. ``census_county_2020_v1.xlsx``.
    year
        Census year; selects the sheet ('七普' = 2020, '六普' = 2010) when
        the workbook says.
    age_group
        ``"60+"``, ``"65+"`` … ``"85+"``.

    Returns
    -------
    pandas.DataFrame
        ``code`` (6-digit text), ``name``, ``elderly`` (persons, float; NaN
        when an age cell is empty), ``level`` (``province``/``city``/
        ``county``), ``province``, ``city`` (names where the table has them).
        Rows without a division code (the national row, some islands and
        development zones) are left out.
    """
    import openpyxl

    path = Path(xlsx_path)
    match = _AGE_GROUP.match(str(age_group))
    if not match:
        raise ValueError(f"age_group must look like '60+', not {age_group!r}")
    lower_age = int(match["lower"])
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise InputDataError("census table not found", path=path) from None
    except Exception as exc:  # openpyxl raises many types for damaged files
        raise InputDataError(
            f"the census workbook cannot be opened ({type(exc).__name__}: {exc}) / 无法打开普查表", path=path,
            hint="open it in Excel/WPS and save it again as .xlsx / 用 Excel 或 WPS 打开后另存为 .xlsx",
        ) from None
    try:
        sheet = _pick_census_sheet(workbook, year, path)
        first_row = next(sheet.iter_rows(max_row=1, values_only=True))
        header = [re.sub(r"\s+", "", str(h)) if h is not None else "" for h in first_row]
        age_columns = {i: parsed for i, h in enumerate(header) if (parsed := _census_age_column(h))}
        lowers = sorted({age for _, age in age_columns.values()})
        if lower_age not in lowers:
            raise InputDataError(
                f"no age-band columns starting at {lower_age} (bands start at {lowers})",
                path=path,
                hint="use an age group starting at a 5-year band boundary, e.g. 60+ or 65+",
            )
        wanted = [i for i, (_, age) in age_columns.items() if age >= lower_age]
        code_at = _header_index(header, ("区划代码",), path)
        name_at = _header_index(header, ("区县", "地区"), path)
        province_at = header.index("省") if "省" in header else None
        city_at = header.index("市") if "市" in header else None
        used = [code_at, name_at, *wanted, *(i for i in (province_at, city_at) if i is not None)]
        records = []
        # cells right of the last used column are never parsed into Python objects (about twice as fast)
        for row in sheet.iter_rows(min_row=2, max_col=max(used) + 1, values_only=True):
            code = _normalise_code(row[code_at])
            if code is None or not re.fullmatch(r"\d{6}", code):
                continue
            counts = [_as_count(row[i]) for i in wanted]
            records.append(
                {
                    "code": code,
                    "name": row[name_at],
                    "elderly": float(sum(counts)),  # NaN when any band is not given
                    "level": _division_level(code),
                    "province": row[province_at] if province_at is not None else None,
                    "city": row[city_at] if city_at is not None else None,
                }
            )
    finally:
        workbook.close()
    table = pd.DataFrame.from_records(records, columns=["code", "name", "elderly", "level", "province", "city"])
    return table.drop_duplicates(ignore_index=True)


def _as_count(value) -> float:
    """A census cell as a number of persons (NaN for 'NA', blanks and text)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).replace(",", ""))
    except (TypeError, ValueError):
        return np.nan


def _header_index(header: list[str], names: tuple[str, ...], path: Path) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InputDataError(f"no column {' or '.join(names)} in the census table", path=path)

