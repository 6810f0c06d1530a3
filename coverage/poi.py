"""POI exports of map services (Amap/高德, Baidu/百度, Tencent/腾讯): recognising the file, sub-points, category paths."""

from __future__ import annotations

import re
from typing import Sequence

from coverage.tables import _nfkc, _normalise_header


#: header sets that identify a POI export of a map service, with the coordinate system it writes
_POI_SIGNATURES: tuple[tuple[str, frozenset[str], str], ...] = (
    ("Amap / 高德", frozenset({"typecode", "pname", "cityname", "adname"}), "gcj02"),
    ("Amap / 高德", frozenset({"typecode", "location"}), "gcj02"),
    ("Baidu / 百度", frozenset({"uid", "detail_info.tag"}), "bd09"),
    ("Baidu / 百度", frozenset({"uid", "street_id"}), "bd09"),
    ("Baidu / 百度", frozenset({"uid", "province", "city", "area"}), "bd09"),
    ("Tencent / 腾讯", frozenset({"title", "category", "ad_info.adcode"}), "gcj02"),
    ("Tencent / 腾讯", frozenset({"title", "category", "adcode"}), "gcj02"),
)
#: names of the sub-points map services list beside a facility ("XX养老院(东门)", "XX养老院-停车场")
_SUB_POI_RE = re.compile(
    r"([(\-—·](东|南|西|北|正|侧|后|东南|东北|西南|西北)?(门|大门|出入口|入口|出口|停车场|地下停车场|停车库|公交站|充电站)\)?$)"
    r"|((东|南|西|北|正|侧|后)(门|大门)$)|((出入口|停车场|地下停车场|停车库)$)")

#: separators between the levels of a POI category path (Amap/Baidu ';', Tencent ':', others '>' '|')
_CATEGORY_PATH_RE = re.compile(r"[;；:：>|]+")


def _category_levels(type_text: str) -> list[str]:
    """The levels of a POI category path, most specific first ("生活服务;养老院" → ["养老院", "生活服务"])."""
    levels = [p for p in _CATEGORY_PATH_RE.split(_nfkc(type_text)) if p.strip()]
    return levels[::-1] if len(levels) > 1 else levels


def _poi_source(headers: Sequence[str]) -> tuple[str, str] | None:
    """(service name, coordinate system) when the headers are those of a map service's POI export."""
    present = {_normalise_header(h) for h in headers if h}
    for label, signature, system in _POI_SIGNATURES:
        if {_normalise_header(h) for h in signature} <= present:
            return label, system
    return None
