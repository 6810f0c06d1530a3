"""Read administrative units (division-code tables, outlines, points) and place facilities in them."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import coords
from coverage.tables import (
    _GEO_SUFFIXES, _alias_index, _cell_text, _file_error, _find_header, _is_empty, _map_columns, _nfkc,
    _normalise_crs, _normalise_header, _parse_degrees, _place_core, _read_csv_table, _read_geo_table, _text_or_none,
    _xls_sheets, _xlsx_sheets,
)

__all__ = ["UNIT_COLUMNS", "UNIT_LEVELS", "read_units", "assign_facilities_to_units"]

#: columns of the units GeoDataFrame
UNIT_COLUMNS: tuple[str, ...] = ("code", "name", "level", "parent_code", "ur_code", "urban", "geometry")
UNIT_LEVELS: tuple[str, ...] = ("county", "town", "village")

_UNIT_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "code": ("code", "区划代码", "统计用区划代码", "行政区划代码", "代码", "unit_code", "gb"),
    "name": ("name", "名称", "区划名称", "单位名称"),
    "level": ("level", "级别", "层级"),
    "parent_code": ("parent_code", "parent", "上级代码", "上级区划代码", "父级代码"),
    "ur_code": ("ur_code", "城乡分类代码", "城乡属性代码", "城乡分类"),
    "lon": ("longitude", "lon", "lng", "经度", "x"),
    "lat": ("latitude", "lat", "纬度", "y"),
    "virtual": ("virtual", "虚拟"),
})
# the header-less per-county CSV files of github.com/Vonng/adcode (data/adcode/<county>.csv)
_VONNG_COLUMNS: tuple[str, ...] = (
    "code", "parent", "name", "level", "rank", "adcode", "post_code", "area_code", "ur_code", "municipality",
    "virtual", "dummy", "longitude", "latitude", "center", "province", "city", "county", "town", "village",
)
_LEVEL_WORDS: Mapping[str, str] = MappingProxyType({
    "province": "province", "省": "province", "city": "city", "市": "city", "地级市": "city",
    "county": "county", "district": "county", "县": "county", "区": "county", "区县": "county", "县区": "county",
    "旗": "county", "县级": "county",
    "town": "town", "township": "town", "street": "town", "乡镇": "town", "乡": "town", "镇": "town",
    "街道": "town", "苏木": "town", "乡镇街道": "town", "乡级": "town",
    "village": "village", "community": "village", "村": "village", "社区": "village", "村社区": "village",
    "嘎查": "village", "村级": "village",
})


# ----------------------------------------------------------------------------- administrative units


def _normalise_code(text: Any, *, tianditu: bool = False) -> str | None:
    """
    A division code as a string; 6- and 9-digit codes padded to 12 digits.

    Codes are read by :func:`coverage.divisions.normalise_code` (``420116.0``,
    full-width digits, spaces, ``4.20116E+11``); ``tianditu`` strips the
    ``156`` country prefix of Tianditu-style codes (without it a ``156``
    prefix is kept, as written). Text that is no 6-, 9- or 12-digit code (a
    user's own unit ids) is returned as it is, a ``.0`` tail dropped.
    """
    from coverage import divisions

    value = _cell_text(text)
    if _is_empty(value):
        return None
    value = _nfkc(value)
    code = divisions.normalise_code(value, tianditu=tianditu)
    if code is not None:
        return code.ljust(12, "0")
    if re.fullmatch(r"\d+\.0+", value):
        value = value.split(".")[0]
    return value


def _level_from_code(code: str) -> str | None:
    """province / city / county / town / village from a 12-digit statistical code, else None."""
    if not re.fullmatch(r"\d{12}", code):
        return None
    if code[6:] == "000000":
        if code[2:6] == "0000":
            return "province"
        if code[4:6] == "00":
            return "city"
        return "county"
    if code[9:] == "000":
        return "town"
    return "village"


def _parent_from_code(code: str, level: str) -> str | None:
    if not re.fullmatch(r"\d{12}", code):
        return None
    if level == "village":
        return code[:9] + "000"
    if level == "town":
        return code[:6] + "000000"
    if level == "county":
        return code[:4] + "00000000"
    return None


def _level_word(text: str) -> str | None:
    key = _nfkc(text).lower()
    return _LEVEL_WORDS.get(key)


def _is_true(text: str) -> bool:
    return _nfkc(text).lower() in ("t", "true", "1", "yes", "y", "是")


def _read_unit_rows(path: Path) -> tuple[list[str], list[list[str]], bool]:
    """Header and rows of a unit code table; third value tells whether it is a Vonng adcode table."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        sheets = _xlsx_sheets(path) if suffix != ".xls" else _xls_sheets(path)
        rows = sheets[0][1] if sheets else []
    else:
        rows = _read_csv_table(path, None).rows
    rows = [r for r in rows if any(r)]
    if not rows:
        raise _file_error(path, "文件为空", "the file is empty", "check the file / 检查文件内容")
    if re.fullmatch(r"\d{12}", _nfkc(rows[0][0])):
        width = len(rows[0])
        if width == len(_VONNG_COLUMNS):
            return list(_VONNG_COLUMNS), rows, True
        if width == len(_VONNG_COLUMNS) - 1:
            return [c for c in _VONNG_COLUMNS if c != "center"], rows, True
        raise _file_error(path, "代码表没有表头且列数无法识别", f"code table has no header and {width} columns",
                          "add a header row with code, name, level, parent_code, ur_code, longitude, latitude "
                          "/ 添加表头行")
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    header_index, headers, data_start = _find_header(rows, index)
    headers = list(headers)
    vonng = {"rank", "adcode", "dummy", "municipality"} <= {_normalise_header(h) for h in headers}
    return headers, rows[data_start:], vonng


def _units_from_table(path: Path, crs: str) -> gpd.GeoDataFrame:
    headers, rows, vonng = _read_unit_rows(path)
    if vonng and crs == "wgs84":
        warnings.warn(
            f"{path.name}: this looks like a Vonng adcode table, whose coordinates are GCJ-02; pass crs='gcj02' "
            "/ 该代码表坐标为 GCJ-02，请指定 crs='gcj02'", UserWarning, stacklevel=3,
        )
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    column_of, _ = _map_columns(headers, index)
    if "code" not in column_of:
        raise _file_error(
            path, f"找不到区划代码列；表头为：{', '.join(headers)}", f"no division code column; headers: "
            f"{', '.join(headers)}", "name the column 区划代码 or code / 将代码列命名为“区划代码”或 code",
        )

    def cell(row: list[str], name: str) -> str:
        i = column_of.get(name)
        return row[i] if i is not None and i < len(row) else ""

    fields = {name: [cell(row, name) for row in rows]
              for name in ("code", "name", "level", "parent_code", "ur_code", "lon", "lat", "virtual")}
    lon = np.array([_parse_degrees(v) if v else None for v in fields["lon"]], dtype=float)
    lat = np.array([_parse_degrees(v) if v else None for v in fields["lat"]], dtype=float)
    has_point = np.isfinite(lon) & np.isfinite(lat) & ~((lon == 0) & (lat == 0))
    geometry = np.full(len(rows), None, dtype=object)
    if has_point.any():
        wlon, wlat = coords.to_wgs84(lon[has_point], lat[has_point], crs)
        geometry[has_point] = shapely.points(wlon, wlat)
    return _finish_units(fields, geometry, gb_codes=False)


def _units_from_layer(path: Path, crs: str, layer: str | int | None) -> gpd.GeoDataFrame:
    table, _ = _read_geo_table(path, layer=layer, encoding=None)
    index = _alias_index(_UNIT_ALIASES, None, path=path)
    column_of, _ = _map_columns(table.headers, index)
    if "code" not in column_of:
        raise _file_error(
            path, f"找不到区划代码属性；属性为：{', '.join(table.headers)}",
            f"no division code property; properties: {', '.join(table.headers)}",
            "add a property code (区划代码) with the 12-digit statistical code / 添加“区划代码”属性",
        )
    fields = {name: [(row[column_of[name]] if name in column_of else "") for row in table.rows]
              for name in ("code", "name", "level", "parent_code", "ur_code", "virtual")}
    series = gpd.GeoSeries(table.geometries, crs=4326)
    if crs in ("gcj02", "bd09"):
        series = coords.transform_geometries(series, crs, "wgs84")
    gb = _normalise_header(table.headers[column_of["code"]]) == "gb"
    return _finish_units(fields, np.asarray(series.values, dtype=object), gb_codes=gb)


def _finish_units(fields: Mapping[str, list[str]], geometry: np.ndarray, *, gb_codes: bool) -> gpd.GeoDataFrame:
    """Normalise codes, levels, parents and urban class; drop province/city and virtual rows."""
    codes = [_normalise_code(c, tianditu=gb_codes) for c in fields["code"]]
    levels, parents, keep = [], [], []
    for code, level_text, parent_text, virtual_text, name in zip(
            codes, fields["level"], fields["parent_code"], fields["virtual"], fields["name"]):
        level = _level_from_code(code) if code else None
        if level is None:
            level = _level_word(level_text) if level_text else None
        parent = _parent_from_code(code, level) if code and level else None
        if parent is None:
            parent = _normalise_code(parent_text, tianditu=gb_codes)
        virtual = _is_true(virtual_text) or (level == "county" and _nfkc(name) == "市辖区")
        keep.append(code is not None and level in UNIT_LEVELS and not virtual)
        levels.append(level)
        parents.append(parent)
    keep_mask = np.array(keep, dtype=bool)
    ur = pd.array([int(float(v)) if re.fullmatch(r"\d+(\.0+)?", _nfkc(v)) else pd.NA for v in fields["ur_code"]],
                  dtype="Int64")
    units = pd.DataFrame({
        "code": pd.Series(codes, dtype=object),
        "name": pd.Series([_text_or_none(n) for n in fields["name"]], dtype=object),
        "level": pd.Series(levels, dtype=object),
        "parent_code": pd.Series(parents, dtype=object),
        "ur_code": pd.Series(ur),
    })
    units["urban"] = pd.Series(units["ur_code"] < 200, dtype="boolean")
    result = gpd.GeoDataFrame(units, geometry=gpd.GeoSeries(geometry, crs=4326), crs=4326)
    result = result.loc[keep_mask].drop_duplicates(subset="code", keep="first").reset_index(drop=True)
    return result[list(UNIT_COLUMNS)]


def read_units(path: str | Path, *, crs: str = "wgs84", layer: str | int | None = None) -> gpd.GeoDataFrame:
    """
    Read administrative units (county → town → village) from polygons or a code table.

    Parameters
    ----------
    path
        (a) a GeoJSON/GPKG/SHP layer with properties ``code``, ``name``,
        ``level``, ``parent_code``, ``ur_code`` (or 区划代码, 名称, 级别,
        上级代码, 城乡分类代码; Tianditu-style ``gb`` codes ``156`` + code are
        understood), polygons or points; or (b) a statistical division code
        table (统计用区划代码), e.g. the Vonng adcode CSVs with or without
        header; or a folder of such CSVs. Table coordinates are points, rows
        without coordinates get geometry None.
    crs
        Coordinate system of the input lon/lat (``wgs84``, ``cgcs2000``,
        ``gcj02``, ``bd09``). The Vonng adcode tables are GCJ-02.
    layer
        Layer name or number for GPKG.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`UNIT_COLUMNS`, EPSG:4326: ``code`` (str, 6- and
        9-digit codes padded to 12), ``level`` (county/town/village, taken
        from a 12-digit code: ``xxxxxx000000`` county, ``xxxxxxxxx000``
        town, else village), ``parent_code`` (likewise from the code),
        ``ur_code`` (Int64), ``urban`` (boolean, ur_code < 200, NA unknown).
        Province and city rows and virtual units (市辖区) are dropped.
    """
    path = Path(path)
    crs = _normalise_crs(crs)
    if not path.exists():
        raise _file_error(path, "文件不存在", "file not found", "check the path / 检查路径")
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise _file_error(path, "文件夹中没有 CSV 代码表", "the folder holds no CSV code tables",
                              "point to a code table or polygon file / 请指定代码表或边界文件")
        frames = [_units_from_table(f, crs) for f in files]
        combined = pd.concat(frames, ignore_index=True).drop_duplicates(subset="code", keep="first")
        return gpd.GeoDataFrame(combined.reset_index(drop=True), geometry="geometry", crs=4326)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt", ".xlsx", ".xlsm", ".xls"):
        return _units_from_table(path, crs)
    if suffix in _GEO_SUFFIXES:
        return _units_from_layer(path, crs, layer)
    raise _file_error(path, f"不支持的文件类型 '{suffix}'", f"unsupported file type '{suffix}'",
                      "use .geojson, .gpkg, .shp or a .csv/.xlsx code table / 请使用上述格式之一")


def _ancestor_codes(code: str, level: str, parent_of: Mapping[str, str | None],
                    level_of: Mapping[str, str]) -> dict[str, str | None]:
    """village/town/county codes implied by one unit code (parents from the table, else from the code)."""
    chain: dict[str, str | None] = {"village": None, "town": None, "county": None}
    current: str | None = code
    current_level: str | None = level
    for _ in range(3):
        if current is None or current_level not in chain:
            break
        chain[current_level] = current
        parent = parent_of.get(current) or _parent_from_code(current, current_level)
        current = parent
        current_level = level_of.get(parent) if parent else None
        if current_level is None and parent is not None:
            current_level = _level_from_code(parent)
    return chain


def _match_town(name: str, county: str | None, towns: pd.DataFrame) -> str | None:
    """Code of the town whose name matches (exactly, else without suffix), within the county if known."""
    if _is_empty(name):
        return None
    if county is not None:
        in_county = towns[towns["parent_code"] == county]
        towns = in_county if len(in_county) else towns
    exact = towns[towns["name"].map(lambda n: _nfkc(str(n)) == _nfkc(name))]
    if len(exact) == 1:
        return exact["code"].iloc[0]
    core = _place_core(name)
    by_core = towns[towns["name"].map(lambda n: _place_core(str(n)) == core)]
    if len(by_core) == 1:
        return by_core["code"].iloc[0]
    return None


#: endings of village/community committee names in the statistical code tables ("XX村委会" → "XX村")
_COMMITTEE_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("村民委员会", "村"), ("居民委员会", ""), ("村委会", "村"), ("居委会", ""), ("委员会", ""),
)


def _village_core(name: str) -> str:
    """A village/community name as addresses write it ("松林村村委会" → "松林村", "望江社区居委会" → "望江社区")."""
    text = re.sub(r"\s+", "", _nfkc(str(name)))
    for suffix, replacement in _COMMITTEE_SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix) + 1:
            text = text[: -len(suffix)]
            if replacement and not text.endswith(replacement) and not text.endswith("社区"):
                text += replacement
            break
    return text


class _UnitNameMatcher:
    """Find a village or town of the units table named inside a text (village column, address, name)."""

    def __init__(self, units: pd.DataFrame) -> None:
        villages = units[units["level"] == "village"]
        towns = units[units["level"] == "town"]
        self._villages = [(_village_core(n), str(c), p) for n, c, p in
                          zip(villages["name"], villages["code"], villages["parent_code"]) if len(_village_core(n)) >= 2]
        self._villages.sort(key=lambda item: -len(item[0]))  # the longest name first ("大松林村" before "松林村")
        # a town's own villages, so that a row whose town is known scans tens of names, not a province's
        self._villages_of: dict[str, list[tuple[str, str, str]]] = {}
        for entry in self._villages:
            self._villages_of.setdefault(entry[2], []).append(entry)
        self._towns = [(str(n), _place_core(str(n)), str(c)) for n, c in zip(towns["name"], towns["code"])]

    def town(self, pieces: Sequence[Any]) -> str | None:
        """The one town whose full name (or core, for the town column) appears in the texts, else None."""
        for position, piece in enumerate(pieces):
            if not isinstance(piece, str) or _is_empty(piece):
                continue
            text = _nfkc(piece)
            found = {code for name, core, code in self._towns
                     if _nfkc(name) in text or (position == 0 and len(core) >= 2 and core == _place_core(text))}
            if len(found) == 1:
                return found.pop()
        return None

    def village(self, pieces: Sequence[Any], *, town: str | None, town_text: Any = None) -> str | None:
        """
        The village named in the first text that names exactly one (within ``town`` when given).

        Without a known town, the town may be read from the same texts
        (addresses such as "示例县白沙镇松林村4组"); a village name that occurs in
        several towns and no town to tell them apart gives None.
        """
        if town is None:
            town = self.town([town_text, *pieces])
        for piece in pieces:
            if not isinstance(piece, str) or _is_empty(piece):
                continue
            text = re.sub(r"\s+", "", _nfkc(piece))
            candidates = self._villages if town is None else self._villages_of.get(town, [])
            hits = [(core, code) for core, code, _ in candidates if core in text]
            if not hits:
                continue
            longest = len(hits[0][0])
            codes = {code for core, code in hits if len(core) == longest}
            if len(codes) == 1:
                return codes.pop()
        return None


def assign_facilities_to_units(facilities: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """
    Attach village, town and county codes to each facility.

    The finest level is found, in order, (1) from the facility's
    ``unit_code`` when it is a known unit, (2) by polygon containment, and
    (3) for facilities still without a village, as the nearest village point
    within the same town (the town found by code, polygon or ``town_name``).
    Higher levels follow from the parent codes.

    Parameters
    ----------
    facilities
        Output of :func:`read_facilities` (EPSG:4326).
    units
        Output of :func:`read_units`.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``facilities`` with ``village_code``, ``town_code``,
        ``county_code`` (str or None) and ``unit_assignment``: ``code``,
        ``polygon``, ``nearest_village_point`` (also added to ``flags``),
        ``village_name`` (the village named in the village column, the
        address or the facility's name, within its town), ``town_name``
        (only the town was found, by its name) or ``none`` — the method that
        gave the finest level assigned. Rows without coordinates
        (presence-only) are placed by code and names only.
    """
    result = facilities.copy()
    count = len(result)
    parent_of = dict(zip(units["code"], units["parent_code"]))
    level_of = dict(zip(units["code"], units["level"]))
    chains: list[dict[str, str | None]] = [{"village": None, "town": None, "county": None} for _ in range(count)]
    method = ["none"] * count
    points = result.geometry.to_crs(4326) if result.crs is not None else result.geometry.set_crs(4326)

    unit_codes = result["unit_code"] if "unit_code" in result.columns else pd.Series([None] * count)
    for i, raw in enumerate(unit_codes):
        code = _normalise_code(raw)
        if code and code in level_of:
            chains[i] = _ancestor_codes(code, level_of[code], parent_of, level_of)
            method[i] = "code"

    polygons = units[units.geometry.notna() & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    todo = [i for i in range(count) if method[i] == "none"]
    if todo and len(polygons):
        probe = gpd.GeoDataFrame({"position": todo}, geometry=points.iloc[todo].values, crs=4326)
        for level in UNIT_LEVELS[::-1]:  # village first: the finest polygon decides
            layer = polygons[polygons["level"] == level][["code", "geometry"]]
            if layer.empty:
                continue
            joined = gpd.sjoin(probe, layer, how="inner", predicate="intersects")
            for position, code in zip(joined["position"], joined["code"]):
                if method[position] == "none":
                    chains[position] = _ancestor_codes(code, level, parent_of, level_of)
                    method[position] = "polygon"

    towns = units[units["level"] == "town"]
    villages = units[(units["level"] == "village") & units.geometry.notna()]
    villages = villages[villages.geom_type == "Point"]
    town_names = result["town_name"] if "town_name" in result.columns else pd.Series([None] * count)
    flags = [str(f) if isinstance(f, str) else "" for f in result["flags"]] if "flags" in result.columns \
        else [""] * count
    villages_by_town: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    points_m = None
    if len(villages) and count:
        valid = points[points.notna() & ~points.is_empty]
        centre_lon = float(valid.x.mean()) if len(valid) else float(villages.geometry.x.mean())
        centre_lat = float(valid.y.mean()) if len(valid) else float(villages.geometry.y.mean())
        utm = coords.utm_crs_for(centre_lon, centre_lat)
        points_m = np.asarray(points.to_crs(utm).values)
        villages_m = villages.geometry.to_crs(utm)
        for town_code, group in villages_m.groupby(villages["parent_code"].to_numpy()):
            villages_by_town[town_code] = (villages.loc[group.index, "code"].to_numpy(), np.asarray(group.values))
    for i in range(count):
        if chains[i]["village"] is not None:
            continue
        town = chains[i]["town"]
        if town is None and len(towns):
            name = town_names.iloc[i]
            town = _match_town(name, chains[i]["county"], towns) if isinstance(name, str) else None
            if town is not None:
                chains[i] = _ancestor_codes(town, "town", parent_of, level_of)
                method[i] = "town_name"
        if town is None or town not in villages_by_town or points_m is None:
            continue
        point_m = points_m[i]
        if point_m is None or point_m.is_empty:
            continue
        village_codes, village_points = villages_by_town[town]
        nearest = village_codes[int(np.argmin(shapely.distance(village_points, point_m)))]
        chains[i] = _ancestor_codes(nearest, "village", parent_of, level_of)
        method[i] = "nearest_village_point"
        flags[i] = ";".join([f for f in flags[i].split(";") if f] + ["nearest_village_point"])

    # rows still without a village (presence-only rows above all): the village named in the village
    # column, the address or the facility's own name ("…镇…村"), within the town when it is known
    todo = [i for i in range(count) if chains[i]["village"] is None]
    if todo:
        matcher = _UnitNameMatcher(units)
        texts = {key: (result[key] if key in result.columns else pd.Series([None] * count))
                 for key in ("village_name", "address", "name", "town_name")}
        for i in todo:
            pieces = [texts[key].iloc[i] for key in ("village_name", "address", "name")]
            found = matcher.village(pieces, town=chains[i]["town"], town_text=texts["town_name"].iloc[i])
            if found is None and chains[i]["town"] is None:
                town = matcher.town([texts["town_name"].iloc[i], texts["address"].iloc[i], texts["name"].iloc[i]])
                if town is not None:
                    chains[i] = _ancestor_codes(town, "town", parent_of, level_of)
                    method[i] = "town_name"
                continue
            if found is not None:
                chains[i] = _ancestor_codes(found, "village", parent_of, level_of)
                method[i] = "village_name"

    result["village_code"] = [c["village"] for c in chains]
    result["town_code"] = [c["town"] for c in chains]
    result["county_code"] = [c["county"] for c in chains]
    result["unit_assignment"] = method
    result["flags"] = flags
    return result

