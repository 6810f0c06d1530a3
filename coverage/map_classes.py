"""Classes of the coverage-rate choropleth: share bounds, colours and legend labels, the target as a boundary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: colour ramps: below the target (dark → light), at or above it (light → dark), without a target, uncovered persons
_BELOW_RAMP = ("#b2182b", "#d6604d", "#f4a582", "#fddbc7")  # dark → light
_ABOVE_RAMP = ("#a6dba0", "#5aae61", "#1b7837", "#00441b")  # light → dark
_PLAIN_RAMP = ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")
UNCOVERED_RAMP = ("#dadaeb", "#bcbddc", "#9e9ac8", "#756bb1", "#54278f")


@dataclass(frozen=True)
class ShareClass:
    """
    One class of the coverage-rate choropleth.

    Attributes
    ----------
    lower, upper
        Bounds as shares (0..1); the class holds ``lower <= share < upper``,
        or ``lower <= share <= upper`` when ``closed`` (the last class).
    colour
        Fill colour (hex).
    label
        Legend text, e.g. ``"75%–90%"``.
    meets_target
        Whether every share in the class meets the target (None when no target).
    """

    lower: float
    upper: float
    colour: str
    label: str
    closed: bool = False
    meets_target: bool | None = None

    def contains(self, share: float) -> bool:
        """Whether ``share`` falls in this class."""
        return self.lower <= share <= self.upper if self.closed else self.lower <= share < self.upper


def share_classes(target_share: float | None = None) -> list[ShareClass]:
    """
    Classes of the coverage-rate choropleth, with the target as a class boundary.

    Parameters
    ----------
    target_share
        Policy target as a share in (0, 1], e.g. 0.9; None for plain quartiles.

    Returns
    -------
    list of ShareClass
        Ordered from 0 to 100 %. With a target, classes below it are shaded
        red→orange and classes at or above it green, so "meets the target" is
        a colour change on the map and a line in the legend. A target of 1
        gives a class of its own for exactly 100 %.
    """
    base = [0.0, 0.25, 0.5, 0.75, 1.0]
    if target_share is None:
        return _classes_from_breaks(base, None)
    target = float(target_share)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target_share must be a share in (0, 1], e.g. 0.9 for 90 %; got {target_share!r}")
    if target == 1.0:
        return _classes_from_breaks(base, 1.0)
    breaks = sorted({b for b in base if b in (0.0, 1.0) or abs(b - target) >= 0.05} | {target})
    return _classes_from_breaks(breaks, target)


def _classes_from_breaks(breaks: list[float], target: float | None) -> list[ShareClass]:
    intervals = [(lo, hi) for lo, hi in zip(breaks[:-1], breaks[1:])]
    if target == 1.0:
        intervals.append((1.0, 1.0))
    if target is None:
        colours = pick_colours(_PLAIN_RAMP, len(intervals), from_end=False, spread=True)
    else:
        below = [iv for iv in intervals if iv[0] < target]
        above = [iv for iv in intervals if iv[0] >= target]
        colours = pick_colours(_BELOW_RAMP, len(below), from_end=False) + pick_colours(_ABOVE_RAMP, len(above), from_end=True)
    classes = []
    for i, ((lo, hi), colour) in enumerate(zip(intervals, colours)):
        last = i == len(intervals) - 1
        meets = None if target is None else lo >= target
        if lo == hi:
            label = f"{percent_label(lo)}"
        elif last:
            label = f"{percent_label(lo)}–{percent_label(hi)}"
        else:
            label = f"{percent_label(lo)}–<{percent_label(hi)}"
        if meets and lo == target:
            label += "（达标）"
        classes.append(ShareClass(lo, hi, colour, label, closed=last, meets_target=meets))
    return classes


def pick_colours(ramp: Sequence[str], n: int, *, from_end: bool, spread: bool = False) -> list[str]:
    """n colours from a ramp: the n nearest one end, or spread over it."""
    if n <= 0:
        return []
    top = len(ramp) - 1
    if spread:
        idx = np.linspace(0, top, n)
    elif from_end:
        idx = np.linspace(1, top, n) if n <= top else np.linspace(0, top, n)
    else:
        idx = np.linspace(0, min(top, n - 1), n)
    return [ramp[int(round(i))] for i in idx]


def percent_label(share: float) -> str:
    """A share as a legend percentage: whole percents without decimals (``75%``), else one (``62.5%``)."""
    value = share * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 1e-9 else f"{value:.1f}%"


def classify_share(share: Any, classes: Sequence[ShareClass]) -> ShareClass | None:
    """
    The class a coverage rate falls in.

    Parameters
    ----------
    share
        Coverage rate 0..1 (clipped); None or NaN for units without elderly.
    classes
        From :func:`share_classes`.

    Returns
    -------
    ShareClass or None
        None when there is no rate.
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return None
    share = min(max(float(share), 0.0), 1.0)
    for cls in classes:
        if cls.contains(share):
            return cls
    return classes[-1]
