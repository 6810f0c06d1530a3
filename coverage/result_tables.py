"""A run's results as the tables and layers people open: parameters, credits, workbook sheets, gap layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import coords, profiles
from coverage.ingest import _FACILITY_ALIASES
from coverage.lengths import LENGTH_DEFINITION
from coverage.profiles import kind_modes
from coverage.report import SYNTHETIC_LABEL
from coverage.results import ANY_KIND, population_method

ATTRIBUTION_LINES = (
    "路网 © OpenStreetMap contributors (ODbL 1.0)",
    "人口 WorldPop (CC BY 4.0, doi:10.1038/sdata.2017.4)",
)


def attribution_lines(results) -> tuple[str, ...]:
    """The data credits of a run: OpenStreetMap always, WorldPop only when a raster gave the population."""
    from coverage import maps  # folium: loaded when a map or its credits are made

    return maps.data_attribution_lines(population_method(results))


def headline_minutes(results) -> float:
    """The service-circle threshold reported as the headline: 15 min when configured, else the longest."""
    return results.config.parameters.headline_minutes


def parameters_table(results) -> pd.DataFrame:
    """The 参数 sheet: every assumption and data source of the run, one per row."""
    config = results.config
    params = config.parameters
    rows = [
        ("study / 研究", config.title),
        ("data / 数据说明", SYNTHETIC_LABEL if config.synthetic else "user data / 用户数据"),
        ("walking speed / 步行速度 (m/s)", params.walk_speed_mps),
        ("per-kind walking speed / 分类型步速", ", ".join(f"{k}={v}" for k, v in params.kind_walk_speed_mps.items())
         or "same for all kinds / 各类相同"),
        ("time thresholds / 时间阈值 (min)", ", ".join(f"{t:g}" for t in params.thresholds_min)),
        *_mode_rows(params),
        ("distance thresholds / 距离阈值 (m)", ", ".join(f"{t:g}" for t in params.distance_thresholds_m)),
        ("max access to network / 最大接入距离 (m)", params.max_access_m),
        ("lengths / 距离口径", LENGTH_DEFINITION),
        ("homes moved off stray fragments / 孤立短路段改接主路网",
         _moved_text(getattr(results, "access_summary", None) or {})),
        ("ferry / 轮渡", f"wait {params.ferry.wait_seconds:g} s + {params.ferry.speed_mps:g} m/s"
         if params.ferry.enabled else "excluded / 不计"),
        ("sensitivity speeds / 敏感性步速 (m/s)", ", ".join(f"{s:g}" for s in params.sensitivity_speeds_mps)),
        ("age group / 年龄组", config.population.age_group),
        ("population year / 人口年份", config.population.year),
        ("population method / 人口方法", population_method(results)),
        ("network file / 路网", str(config.network)),
        ("network size / 路网规模", ", ".join(f"{k}={v}" for k, v in results.graph_summary.items())),
    ]
    for source in config.facilities:
        rows.append(("facility file / 设施名录", f"{source.path} ({source.crs})"))
    if config.units:
        rows.append(("units file / 行政区划", f"{config.units.path} ({config.units.crs})"))
    for raster in config.population.rasters:
        rows.append(("population raster / 人口栅格", str(raster)))
    if config.population.census:
        rows.append(("census totals / 普查数", str(config.population.census)))
    rows += [("attribution / 数据来源", line) for line in attribution_lines(results)]
    if config.facility_source_note:
        rows.append(("facility source / 设施来源", config.facility_source_note))
    rows += [("note / 说明", note) for note in results.notes]
    return pd.DataFrame(rows, columns=["parameter", "value"]).astype({"value": str})


def _moved_text(summary: dict) -> str:
    """'12 homes / 处, 340 elderly / 人 (fragments of ≤ 5 nodes …)'; a dash when not recorded."""
    if not summary:
        return "—"
    return (f"{summary.get('homes_moved_off_stray_fragments', 0)} homes / 处, "
            f"{summary.get('elderly_moved_off_stray_fragments', 0):,.0f} elderly / 人 "
            f"(fragments of ≤ {summary.get('stray_fragment_max_nodes', '?')} nodes without a facility "
            "/ 不含设施的孤立路段)")


def _mode_rows(params) -> list[tuple[str, str]]:
    """
    Rows of the 参数 sheet naming each kind's travel mode and its speeds, when ``kind_profiles`` is set.

    One row per kind (and ``any``): profile id, labels, network, speeds
    (m/s, with km/h per road class for vehicles), whether one-way streets
    bind, and the kind's time thresholds (minutes) when they differ from the study's.
    """
    if not params.kind_profiles:
        return []
    modes = kind_modes(params, [*params.kinds, ANY_KIND])
    rows = []
    for kind in params.kinds:
        profile = params.travel_profile(kind)
        if profile is None:
            text = f"{modes[kind]}: walking / 步行 {params.speed_for(kind):g} m/s"
        else:
            row = profiles.describe(profile)
            text = (f"{row['profile']}: {row['label_en']} / {row['label_zh']}, network {row['network']}, "
                    f"speeds (m/s) {row['speed_mps']}, one-way binding {row['oneway']}, "
                    f"access legs walked at {profile.access_speed_mps:g} m/s")
        if kind in params.kind_thresholds_min:
            text += f"; thresholds {', '.join(f'{t:g}' for t in params.thresholds_for(kind))} min"
        rows.append((f"travel mode / 出行方式: {kind}", text))
    rows.append((f"travel mode / 出行方式: {ANY_KIND}", f"{modes[ANY_KIND]} (quickest of the modes / 各方式取最短)"))
    return rows


def village_layer(results) -> gpd.GeoDataFrame | None:
    """Village/community polygons with the headline coverage share, for GeoPackage and map (WGS-84)."""
    units = results.units
    if units is None or results.villages.empty:
        return None
    minutes = headline_minutes(results)
    polygons = units[(units["level"] == "village") & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        return None
    layer = polygons[["code", "level", "geometry"]].merge(results.villages, on="code", how="left")
    layer["share"] = layer["share_any"]
    layer["threshold_min"] = minutes
    return gpd.GeoDataFrame(layer, geometry="geometry", crs=units.crs)


def uncovered_cells(results) -> gpd.GeoDataFrame:
    """Demand cells beyond the headline threshold of any facility (WGS-84 points, persons)."""
    minutes = headline_minutes(results)
    demand = results.demand_projected
    beyond = results.seconds_by_kind["any"] > minutes * 60.0
    cells = demand.loc[beyond, ["demand_id", "elderly", "geometry"]]
    cells = cells.assign(walk_seconds=np.where(np.isfinite(results.seconds_by_kind["any"][beyond]),
                                                results.seconds_by_kind["any"][beyond], np.nan))
    return gpd.GeoDataFrame(cells, geometry="geometry", crs=demand.crs).to_crs("EPSG:4326")


def gap_cells(results, kind: str, minutes: float) -> gpd.GeoDataFrame:
    """
    Elderly beyond ``minutes`` of a facility of ``kind``, on the population grid (WGS-84).

    Raster demand gives one 100 m cell polygon per cell (split parts of a cell
    added back together); demand without a raster gives its points. Written
    to the GeoPackage only with ``parameters.gap_cells: true`` (layers
    ``gap_<kind>_<minutes>min_cells``); the default gap layers are the
    dissolved areas of :func:`coverage.gridded.gap_areas`.

    Parameters
    ----------
    results
        A :class:`coverage.results.StudyResults`.
    kind
        Facility kind or ``any``.
    minutes
        Walking threshold (minutes).

    Returns
    -------
    geopandas.GeoDataFrame
        ``elderly`` (persons uncovered), ``kind``, ``minutes``; cell polygons or points.
    """
    import shapely

    demand = results.demand_projected
    beyond = ~(results.seconds_by_kind[kind] <= minutes * 60.0)
    grid = demand.attrs.get("raster_grid")
    uncovered = demand[beyond]
    if grid is None or uncovered["row"].isna().any():
        cells = uncovered[["elderly", "geometry"]].to_crs("EPSG:4326")
    else:
        a, b, c, d, e, f = grid["transform"]
        summed = uncovered.groupby(["row", "col"], sort=True)["elderly"].sum().reset_index()
        col, row = summed["col"].to_numpy(float), summed["row"].to_numpy(float)
        x0, y0 = a * col + b * row + c, d * col + e * row + f
        x1, y1 = a * (col + 1) + b * (row + 1) + c, d * (col + 1) + e * (row + 1) + f
        polygons = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
        cells = gpd.GeoDataFrame({"elderly": summed["elderly"].to_numpy()}, geometry=polygons,
                                 crs=grid["crs"]).to_crs("EPSG:4326")
    return cells.assign(kind=kind, minutes=minutes).reset_index(drop=True)


def gap_hexagons(results, kind: str, minutes: float, resolution: int) -> gpd.GeoDataFrame:
    """
    Elderly beyond ``minutes`` of a facility of ``kind``, summed on H3 hexagons (WGS-84).

    Each demand point goes to the hexagon containing it. Needs the optional
    package ``h3`` (``pip install "eldercare-coverage[h3]"``).

    Parameters
    ----------
    results
        A :class:`coverage.results.StudyResults`.
    kind, minutes
        Facility kind (or ``any``) and walking threshold (minutes).
    resolution
        H3 resolution (9 ≈ 0.1 km², 8 ≈ 0.7 km²).
    """
    import h3
    import shapely

    demand = results.demand_projected
    beyond = ~(results.seconds_by_kind[kind] <= minutes * 60.0)
    points = demand.loc[beyond, ["elderly", "geometry"]].to_crs("EPSG:4326")
    cells = [h3.latlng_to_cell(lat, lon, resolution) for lon, lat in zip(points.geometry.x, points.geometry.y)]
    summed = pd.DataFrame({"h3": cells, "elderly": points["elderly"].to_numpy()}).groupby("h3", sort=True).sum()
    polygons = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)]) for cell in summed.index]
    return gpd.GeoDataFrame({"h3": summed.index, "elderly": summed["elderly"].to_numpy(), "kind": kind,
                             "minutes": minutes}, geometry=polygons, crs="EPSG:4326")


def place_tables(results) -> dict[str, pd.DataFrame]:
    """
    The run's tables that list places, with their WGS-84 points (the writers add GCJ-02 beside them).

    Made once per run for both the CSV files and the workbook: ``uncovered_units``,
    ``rejects`` and, when there are such rows, ``presence_only``.
    """
    places = {"uncovered_units": with_unit_points(results.uncovered_units, results, "code"),
              "rejects": reject_points(results.rejects, results)}
    presence = presence_only_table(results)
    if len(presence):
        places["presence_only"] = with_unit_points(presence, results, "village_code", fallback="town_code")
    return places


def workbook_sheets(results, places: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """The workbook's sheets, answer first; ``places`` as from :func:`place_tables` (made here when not given)."""
    places = place_tables(results) if places is None else places
    wide = results.coverage_wide
    if len(results.targets):
        overview = results.targets.copy()
        overview.attrs["role"] = "targets"
        overview.attrs["statuses"] = [str(s) for s in results.targets["status"]]
    else:
        overview = wide[wide["scope"] != "town"].copy()
    overview.attrs["headline"] = _headline(results)
    sheets = {
        "总览": overview,
        "覆盖率": wide[wide["scope"] != "town"],
        "乡镇街道": wide[wide["scope"] == "town"],
        "村社区": results.villages,
        "设施": results.facility_table,
        "未覆盖": places["uncovered_units"],
        "敏感性": results.sensitivity,
        "连通性": results.components,
        "人口校准": results.calibration,
        "剔除记录": places["rejects"],
        "参数": parameters_table(results),
    }
    if "presence_only" in places:
        sheets["仅计存在"] = places["presence_only"]
    merge_log = getattr(results, "merge_log", None)
    if merge_log is not None and len(merge_log):
        sheets["合并记录"] = merge_log
    fallbacks = getattr(results, "fallback_points", None)
    if fallbacks is not None and len(fallbacks):
        sheets["疑似默认坐标"] = fallbacks
    return sheets


def _headline(results) -> list[dict]:
    """
    The headline block of 总览: the service-circle share of the elderly (any kind) and their number.

    Values are read from the study-wide row of ``coverage_wide``; the
    workbook adds targets met / missed / no data below.
    """
    minutes = headline_minutes(results)
    wide = results.coverage_wide
    row = wide[(wide["scope"] == "study") & (wide["kind"] == "any")]
    age = results.config.population.age_group
    items = []
    column = f"share_{minutes:g}min"
    if len(row) and column in row:
        items.append({"zh": f"{minutes:g}分钟步行覆盖率（{age}老年人口，任一类型设施）",
                      "en": f"{minutes:g}-minute walking coverage ({age} population, any kind)",
                      "value": float(row[column].iloc[0]), "kind": "share"})
    if len(row):
        items.append({"zh": f"{age}老年人口", "en": f"{age} population", "value": float(row["elderly"].iloc[0]),
                      "kind": "persons"})
    return items


def with_unit_points(table: pd.DataFrame, results, code_column: str, fallback: str | None = None) -> pd.DataFrame:
    """
    Add ``unit_lon`` / ``unit_lat``: a point inside the table's unit (WGS-84), to find the place in the field.

    Polygons give a representative point, seat points themselves; rows whose
    unit is unknown stay empty. The writer adds the GCJ-02 columns.
    """
    units = results.units
    if units is None or not len(table) or code_column not in table.columns:
        return table
    located = units[units.geometry.notna() & ~units.geometry.is_empty]
    points = located.geometry.to_crs("EPSG:4326").representative_point()
    lon_of = dict(zip(located["code"].astype(str), points.x.round(6)))
    lat_of = dict(zip(located["code"].astype(str), points.y.round(6)))
    codes = table[code_column].astype(object).where(table[code_column].notna(), None)
    if fallback is not None and fallback in table.columns:
        codes = codes.where(codes.map(lambda c: c is not None and str(c) in lon_of), table[fallback])
    keys = codes.map(lambda c: None if c is None or (isinstance(c, float) and np.isnan(c)) else str(c))
    out = table.copy()
    out["unit_lon"] = keys.map(lambda c: lon_of.get(c, np.nan)).astype(float)
    out["unit_lat"] = keys.map(lambda c: lat_of.get(c, np.nan)).astype(float)
    return out


#: a row's own coordinate-system text → system name (as in the facility lists: 高德 = GCJ-02, …)
_SYSTEM_WORDS: tuple[tuple[str, str], ...] = (
    ("gcj02", "gcj02"), ("高德", "gcj02"), ("腾讯", "gcj02"), ("火星", "gcj02"), ("bd09", "bd09"), ("百度", "bd09"),
    ("cgcs2000", "cgcs2000"), ("国家2000", "cgcs2000"), ("天地图", "cgcs2000"), ("epsg4490", "cgcs2000"),
    ("wgs84", "wgs84"), ("epsg4326", "wgs84"), ("gps", "wgs84"),
)


def reject_points(rejects: pd.DataFrame, results) -> pd.DataFrame:
    """
    Add ``lon`` / ``lat`` (WGS-84) to rejected rows whose raw text holds a coordinate pair, to find them in the field.

    The pair is read from the row as given (``经度=… | 纬度=…``) and converted
    from the row's own 坐标系 cell or else the file's declared system; rows
    without a readable pair stay empty. The writer adds the GCJ-02 columns.
    """
    if rejects is None or not len(rejects) or "raw" not in rejects.columns:
        return rejects

    def key(text: str) -> str:
        return str(text).strip().lower().replace(" ", "").replace("-", "").replace("_", "")

    names = {field: {key(alias) for alias in _FACILITY_ALIASES[field]} for field in ("lon", "lat", "crs")}
    declared = {Path(str(source.path)).name: source.crs for source in results.config.facilities}
    lon = np.full(len(rejects), np.nan)
    lat = np.full(len(rejects), np.nan)
    for i, (raw, source_file) in enumerate(zip(rejects["raw"], rejects.get("source_file", [None] * len(rejects)))):
        values = {}
        for part in str(raw if isinstance(raw, str) else "").split(" | "):
            name, _, value = part.partition("=")
            for field, aliases in names.items():
                if key(name) in aliases and field not in values:
                    values[field] = value.strip()
        try:
            x, y = float(values["lon"]), float(values["lat"])
        except (KeyError, ValueError):
            continue
        if not (np.isfinite(x) and np.isfinite(y) and -180 <= x <= 180 and -90 <= y <= 90):
            continue
        own = key(values.get("crs", ""))
        system = next((name for word, name in _SYSTEM_WORDS if own and word in own), None)
        system = system or declared.get(Path(str(source_file)).name)
        if system is None:
            continue
        wx, wy = coords.to_wgs84(x, y, system)
        lon[i], lat[i] = round(float(wx), 6), round(float(wy), 6)
    out = rejects.copy()
    out["lon"], out["lat"] = lon, lat
    return out


#: columns of the presence-only table (facilities without usable coordinates, placed in a unit)
PRESENCE_COLUMNS: tuple[str, ...] = (
    "facility_id", "name", "kinds", "type_raw", "address", "town_name", "village_name", "unit_code",
    "village_code", "town_code", "unit_assignment", "source_file", "source_row", "flags",
)


def presence_only_table(results) -> pd.DataFrame:
    """Facilities that count for their unit's presence targets but not for walking reach (no usable point)."""
    presence = getattr(results, "presence_only", None)
    if presence is None or presence.empty:
        return pd.DataFrame(columns=list(PRESENCE_COLUMNS))
    return pd.DataFrame({c: presence[c].to_numpy() for c in PRESENCE_COLUMNS if c in presence.columns})
