"""Project error types: one error a planner can act on, naming file, row and column."""

from __future__ import annotations

from pathlib import Path


class CoverageError(Exception):
    """Base class for errors raised by this package."""


class InputDataError(CoverageError, ValueError):
    """
    An input file cannot be used as it is.

    The message names the file, and where known the row and column, says what
    was wrong and what to do about it, in Chinese and English.

    Parameters
    ----------
    message
        What was wrong.
    path
        The input file.
    row
        1-based row number as a spreadsheet program shows it, if known.
    column
        Column header as it appears in the file, if known.
    hint
        What the user should do.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.row = row
        self.column = column
        self.hint = hint
        where = []
        if self.path is not None:
            where.append(f"file {self.path}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        text = message
        if where:
            text = f"{', '.join(where)}: {message}"
        if hint:
            text = f"{text}\n  what to do / 处理办法: {hint}"
        super().__init__(text)


class ConfigError(CoverageError, ValueError):
    """The study configuration file is missing a field or has a wrong value."""
