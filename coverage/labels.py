"""Labels the table writers share: unit levels in Chinese and English, the coordinate columns of place tables."""

from __future__ import annotations

#: coordinate pairs (WGS-84 longitude, latitude columns) that get GCJ-02 columns beside them
COORDINATE_PAIRS: tuple[tuple[str, str], ...] = (("lon", "lat"), ("unit_lon", "unit_lat"))
#: decimals of every coordinate column (1e-6 degree ≈ 0.1 m)
COORDINATE_DECIMALS = 6


def coordinate_columns() -> set[str]:
    """Names of every WGS-84 and GCJ-02 coordinate column the writers know."""
    names = set()
    for lon, lat in COORDINATE_PAIRS:
        names |= {lon, lat, f"{lon}_gcj02", f"{lat}_gcj02"}
    return names


LEVEL_ZH: dict[str, str] = {"county": "县（区）", "town": "乡镇（街道）", "street": "街道", "village": "村（社区）",
                            "facility": "设施", "study": "全域"}
LEVEL_EN: dict[str, str] = {"county": "county", "town": "town/street", "street": "street", "village": "village/community",
                            "facility": "facility", "study": "whole study"}
