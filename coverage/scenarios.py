"""Named scenarios of a study (sites added, facilities closed, another speed, profile or population year) compared with the baseline."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import coords, ingest, pipeline, reach
from coverage._errors import ConfigError
from coverage.config import KINDS, StudyConfig, _expand_rasters, _kind_profiles
from coverage.results import ANY_KIND, StudyInputs, StudyResults

__all__ = ["SCENARIO_FIELDS", "Scenario", "ScenarioComparison", "ScenarioSite", "closed_mask", "compare_targets", "compare_towns",
           "difference_areas", "parse_scenarios", "run_scenarios", "scenario_config", "scenario_inputs"]

#: fields a scenario may have
SCENARIO_FIELDS = ("name", "add_sites", "close", "walk_speed_mps", "kind_profiles", "population_year",
                   "population_rasters")
#: fields of an added site
SITE_FIELDS = ("name", "lon", "lat", "kind", "kinds", "crs")


@dataclass(frozen=True)
class ScenarioSite:
    """A facility a scenario adds: name, position (degrees in ``crs``) and kinds."""

    name: str
    lon: float
    lat: float
    kinds: tuple[str, ...]
    crs: str = "wgs84"


@dataclass(frozen=True)
class Scenario:
    """
    One named variant of a study.

    Attributes
    ----------
    name
        Shown in the tables and the map.
    add_sites
        Facilities added.
    close
        Facilities closed: their names or ids (``site_id`` / ``facility_id``).
    walk_speed_mps
        Another walking speed (m/s) for the kinds without their own.
    kind_profiles
        Kinds with another travel profile (``{nursing_home: drive}``), merged into the study's.
    population_year
        Another population year (census totals of that year); with
        ``population_rasters`` also that year's rasters.
    """

    name: str
    add_sites: tuple[ScenarioSite, ...] = ()
    close: tuple[str, ...] = ()
    walk_speed_mps: float | None = None
    kind_profiles: Mapping[str, str] = field(default_factory=dict)
    population_year: int | None = None
    population_rasters: tuple = ()

    @property
    def changes_population(self) -> bool:
        """Whether the demand differs from the baseline's (then no per-cell difference map)."""
        return self.population_year is not None or bool(self.population_rasters)


def _number(value: Any, where: str, hint: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}; {hint}") from None
    if not np.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}; {hint}")
    return number


def _site(spec: Any, where: str) -> ScenarioSite:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: write each added site as {{name: 新建站点, lon: 113.9, lat: 30.9, kind: day_care, "
                          "crs: gcj02}} / 新增站点须写明名称、经纬度、类型")
    unknown = sorted(set(map(str, spec)) - set(SITE_FIELDS))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(SITE_FIELDS)}")
    lon = _number(spec.get("lon"), f"{where}.lon", "the longitude in degrees, e.g. 113.9 / 经度")
    lat = _number(spec.get("lat"), f"{where}.lat", "the latitude in degrees, e.g. 30.9 / 纬度")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ConfigError(f"{where}: lon {lon} / lat {lat} are not degrees (swapped, or projected metres?) / 经纬度有误")
    kinds = spec.get("kinds", spec.get("kind"))
    kinds = [kinds] if isinstance(kinds, str) else list(kinds or [])
    if not kinds or any(k not in KINDS for k in kinds):
        raise ConfigError(f"{where}.kind: give the kind(s) of the new facility, one of {', '.join(KINDS)}; got "
                          f"{spec.get('kinds', spec.get('kind'))!r} / 设施类型有误")
    crs = str(spec.get("crs", "wgs84")).lower()
    if crs not in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        raise ConfigError(f"{where}.crs: {crs!r}; use wgs84, cgcs2000, gcj02 (高德/腾讯) or bd09 (百度) / 坐标系有误")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise ConfigError(f"{where}.name: every added site needs a name (it is shown in the tables) / 请填写站点名称")
    return ScenarioSite(name, lon, lat, tuple(kinds), crs)


def parse_scenarios(config: StudyConfig) -> tuple[Scenario, ...]:
    """
    The study's ``scenarios:`` block as :class:`Scenario` values.

    Raises
    ------
    ConfigError
        Naming the study file, the scenario (number and name) and the field to fix.
    """
    out, names = [], set()
    for i, spec in enumerate(config.scenarios):
        where = f"{config.config_path}: scenarios[{i}]"
        unknown = sorted(set(map(str, spec)) - set(SCENARIO_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(SCENARIO_FIELDS)} "
                              "/ 未知情景设置，请检查拼写")
        name = str(spec.get("name") or "").strip()
        if not name:
            raise ConfigError(f"{where}: every scenario needs a name / 每个情景须有名称")
        if name in names or name == "baseline":
            raise ConfigError(f"{where}: the scenario name {name!r} is used twice (or is 'baseline') / 情景名称重复")
        names.add(name)
        where = f"{where} ({name})"
        sites = spec.get("add_sites") or []
        if not isinstance(sites, list):
            raise ConfigError(f"{where}.add_sites: expected a list of sites / 新增站点应写成列表")
        close = spec.get("close") or []
        close = [close] if isinstance(close, str) else list(close)
        speed = spec.get("walk_speed_mps")
        if speed is not None:
            speed = _number(speed, f"{where}.walk_speed_mps", "metres per second, e.g. 1.0 / 步速(米/秒)")
            if not 0.1 <= speed <= 3.0:
                raise ConfigError(f"{where}.walk_speed_mps: {speed} m/s is not a walking speed (0.1-3 m/s) / 步速有误")
        profiles = _kind_profiles(spec.get("kind_profiles") or {}, config.parameters.kind_walk_speed_mps) \
            if spec.get("kind_profiles") else {}
        year = spec.get("population_year")
        if year is not None and (isinstance(year, bool) or not str(year).strip().isdigit()):
            raise ConfigError(f"{where}.population_year: a year such as 2025, got {year!r} / 人口年份应为数字")
        rasters = spec.get("population_rasters")
        raster_paths: tuple = ()
        if rasters:
            raster_paths = _expand_rasters(config.config_path.parent, rasters, f"{where}.population_rasters")
        out.append(Scenario(
            name=name, add_sites=tuple(_site(s, f"{where}.add_sites[{k}]") for k, s in enumerate(sites)),
            close=tuple(str(c) for c in close), walk_speed_mps=speed, kind_profiles=profiles,
            population_year=None if year is None else int(str(year).strip()), population_rasters=raster_paths,
        ))
    return tuple(out)


def scenario_config(config: StudyConfig, scenario: Scenario) -> StudyConfig:
    """The study's configuration with the scenario's parameters and population (facilities are changed on the inputs)."""
    params = config.parameters
    if scenario.walk_speed_mps is not None:
        params = dataclasses.replace(params, walk_speed_mps=scenario.walk_speed_mps,
                                     sensitivity_speeds_mps=tuple(sorted({*params.sensitivity_speeds_mps,
                                                                          scenario.walk_speed_mps})))
    if scenario.kind_profiles:
        params = dataclasses.replace(params, kind_profiles={**params.kind_profiles, **scenario.kind_profiles})
    population = config.population
    if scenario.population_year is not None:
        population = dataclasses.replace(population, year=scenario.population_year)
    if scenario.population_rasters:
        population = dataclasses.replace(population, rasters=tuple(scenario.population_rasters))
    return dataclasses.replace(config, parameters=params, population=population, scenarios=())


def _added_rows(facilities: gpd.GeoDataFrame, scenario: Scenario, units) -> gpd.GeoDataFrame:
    """The scenario's new facilities as rows of the facility table (WGS-84), placed in their units."""
    lon = np.array([s.lon for s in scenario.add_sites], dtype=float)
    lat = np.array([s.lat for s in scenario.add_sites], dtype=float)
    for k, site in enumerate(scenario.add_sites):
        lon[k], lat[k] = coords.to_wgs84(site.lon, site.lat, site.crs)
    ids = [f"scenario:{scenario.name}:{k + 1}" for k in range(len(scenario.add_sites))]
    rows = gpd.GeoDataFrame(
        {"site_id": ids, "facility_id": ids, "name": [s.name for s in scenario.add_sites],
         "kinds": [";".join(s.kinds) for s in scenario.add_sites], "type_raw": "情景新增 / scenario site",
         "source_file": "scenario", "source_row": np.arange(1, len(ids) + 1), "flags": "scenario_site",
         "n_records": 1, "source_rows": ids},
        geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    if units is not None:
        rows = ingest.assign_facilities_to_units(rows, units)
    return rows


def closed_mask(facilities: gpd.GeoDataFrame, scenario: Scenario, config: StudyConfig) -> np.ndarray:
    """
    Which facilities the scenario closes (by 名称, ``site_id`` or ``facility_id``).

    Raises ConfigError naming the study file, the scenario and the name not found.
    """
    names = facilities["name"].astype(str)
    ids = facilities["site_id"].astype(str) if "site_id" in facilities else names
    fids = facilities["facility_id"].astype(str) if "facility_id" in facilities else names
    drop = np.zeros(len(facilities), dtype=bool)
    for i, item in enumerate(scenario.close):
        hit = ((names == item) | (ids == item) | (fids == item)).to_numpy()
        if not hit.any():
            number = [s.name for s in parse_scenarios(config)].index(scenario.name) if config.scenarios else 0
            raise ConfigError(f"{config.config_path}: scenarios[{number}] ({scenario.name}).close[{i}]: no facility "
                              f"named or with id {item!r} among the located facilities; write its 名称 as in the "
                              "table or its id such as demo_facilities:12 / 未找到要关闭的设施")
        drop |= hit
    return drop


def scenario_inputs(inputs: StudyInputs, scenario: Scenario, config: StudyConfig) -> StudyInputs:
    """
    The baseline's inputs with the scenario's facilities: closed ones dropped, new ones added and snapped.

    The network, demand and demand snaps are shared with the baseline (not copied).
    """
    facilities = inputs.facilities
    if scenario.close:
        facilities = facilities[~closed_mask(facilities, scenario, config)]
    if scenario.add_sites:
        added = _added_rows(facilities, scenario, inputs.units)
        facilities = gpd.GeoDataFrame(pd.concat([facilities, added.to_crs(facilities.crs)], ignore_index=True),
                                      geometry="geometry", crs=facilities.crs)
    facilities = facilities.reset_index(drop=True)
    snap = reach.snap_points(inputs.net, facilities.to_crs(inputs.working_crs).geometry,
                             max_access_m=config.parameters.max_access_m)
    return dataclasses.replace(inputs, facilities=facilities, facility_snap=snap)


# --------------------------------------------------------------------------
# comparison tables
# --------------------------------------------------------------------------


def compare_targets(baseline: StudyResults, other: StudyResults, name: str) -> pd.DataFrame:
    """Per target: baseline and scenario value and status, their difference and the gap of each."""
    columns = ["scenario", "target_id", "label_zh", "kinds", "level", "unit", "required", "actual_baseline",
               "status_baseline", "actual_scenario", "status_scenario", "difference", "gap_baseline",
               "gap_scenario", "gap_unit"]
    if not len(baseline.targets):
        return pd.DataFrame(columns=columns)
    keep = ["target_id", "label_zh", "kinds", "level", "unit", "required", "actual", "status", "gap", "gap_unit"]
    b = baseline.targets[keep]
    s = other.targets[["target_id", "actual", "status", "gap"]]
    table = b.merge(s, on="target_id", how="left", suffixes=("_baseline", "_scenario"))
    table["difference"] = pd.to_numeric(table["actual_scenario"], errors="coerce") - pd.to_numeric(
        table["actual_baseline"], errors="coerce")
    table.insert(0, "scenario", name)
    return table[columns]


def _covered_persons(results: StudyResults, kind: str, minutes: float) -> np.ndarray:
    """Elderly of each demand point within ``minutes`` of the kind (persons; 0 beyond)."""
    seconds = results.seconds_by_kind[kind]
    return np.where(seconds <= minutes * 60.0, results.demand_projected["elderly"].to_numpy(float), 0.0)


def compare_towns(baseline: StudyResults, other: StudyResults, name: str, minutes: float,
                  kinds: tuple[str, ...], *, same_demand: bool = True) -> pd.DataFrame:
    """
    Per kind, for the whole study and each town: elderly covered within ``minutes`` and villages with a facility.

    ``gained`` / ``lost`` are the elderly of demand points newly covered /
    no longer covered (NaN when ``same_demand`` is False: another population has no
    point-by-point change);
    ``difference`` = scenario − baseline covered persons, and ``units_difference``
    the change in villages/communities with a facility of the kind inside.
    """
    same_demand = same_demand and len(baseline.demand_projected) == len(other.demand_projected)
    rows = []
    for kind in kinds:
        b = _covered_persons(baseline, kind, minutes)
        s = _covered_persons(other, kind, minutes)
        frames = []
        for label, res, cov in (("baseline", baseline, b), ("scenario", other, s)):
            d = res.demand_projected
            town = d["town_code"].astype("string").fillna("") if "town_code" in d else pd.Series("", index=d.index)
            frames.append(pd.DataFrame({"town_code": town.to_numpy(), "elderly": d["elderly"].to_numpy(float),
                                        "covered": cov}).assign(which=label))
        both = pd.concat(frames, ignore_index=True)
        persons = both.pivot_table(index="town_code", columns="which", values=["elderly", "covered"], aggfunc="sum",
                                   fill_value=0.0)
        gained = lost = None
        if same_demand:
            town = frames[0]["town_code"].to_numpy()
            gain_pts = np.where((s > 0) & (b == 0), s, 0.0)
            lost_pts = np.where((b > 0) & (s == 0), b, 0.0)
            gained = pd.Series(gain_pts).groupby(town).sum()
            lost = pd.Series(lost_pts).groupby(town).sum()
        units = _units_with_kind(baseline, other, kind)
        codes = sorted(set(persons.index))
        names = baseline.units.set_index("code")["name"].to_dict() if baseline.units is not None else {}
        for code in ["all", *codes]:
            sel = persons if code == "all" else persons.loc[[code]]
            row = {"scenario": name, "kind": kind, "minutes": minutes, "scope": "study" if code == "all" else "town",
                   "code": code, "name": "全域 / whole study" if code == "all" else names.get(code, code or "—"),
                   "elderly_baseline": float(sel[("elderly", "baseline")].sum()),
                   "covered_baseline": float(sel[("covered", "baseline")].sum()),
                   "covered_scenario": float(sel[("covered", "scenario")].sum())}
            row["difference"] = row["covered_scenario"] - row["covered_baseline"]
            row["gained"] = np.nan if gained is None else float(gained.sum() if code == "all" else gained.get(code, 0.0))
            row["lost"] = np.nan if lost is None else float(lost.sum() if code == "all" else lost.get(code, 0.0))
            elderly_s = float(sel[("elderly", "scenario")].sum())
            row["share_baseline"] = row["covered_baseline"] / row["elderly_baseline"] if row["elderly_baseline"] else np.nan
            row["share_scenario"] = row["covered_scenario"] / elderly_s if elderly_s else np.nan
            u = units if code == "all" else units[units["town_code"] == code]
            row["units_baseline"] = int(u["has_baseline"].sum())
            row["units_scenario"] = int(u["has_scenario"].sum())
            row["units_difference"] = row["units_scenario"] - row["units_baseline"]
            rows.append(row)
    return pd.DataFrame(rows)


def _units_with_kind(baseline: StudyResults, other: StudyResults, kind: str) -> pd.DataFrame:
    """Villages/communities and whether a facility of the kind is inside or assigned, before and after."""
    columns = ["code", "town_code", "has_baseline", "has_scenario"]
    vb, vs = baseline.villages, other.villages
    if vb is None or not len(vb) or kind == ANY_KIND or f"n_{kind}" not in vb:
        return pd.DataFrame(columns=columns)
    table = vb[["code", "town_code", f"n_{kind}"]].merge(vs[["code", f"n_{kind}"]], on="code", how="left",
                                                        suffixes=("_b", "_s"))
    return pd.DataFrame({"code": table["code"], "town_code": table["town_code"].astype(str),
                         "has_baseline": table[f"n_{kind}_b"].fillna(0) > 0,
                         "has_scenario": table[f"n_{kind}_s"].fillna(0) > 0})


def difference_areas(baseline: StudyResults, other: StudyResults, name: str, kind: str,
                     minutes: float) -> gpd.GeoDataFrame:
    """
    Gained and lost coverage of one kind as dissolved areas of the population grid (WGS-84).

    ``change`` is ``gained`` (within ``minutes`` in the scenario, not in the
    baseline) or ``lost``; ``elderly`` the persons of those demand points, so
    the gained areas' persons add up to the ``gained`` of :func:`compare_towns`.
    Demand without a raster gives points; a scenario with another population
    has no difference areas (empty).
    """
    import rasterio.features
    import shapely.geometry
    from scipy import ndimage

    from coverage.gridded import demand_grid

    columns = ["scenario", "kind", "minutes", "change", "elderly", "cells", "geometry"]
    empty = gpd.GeoDataFrame(columns=columns, geometry="geometry", crs="EPSG:4326")
    demand = baseline.demand_projected
    if len(demand) != len(other.demand_projected):
        return empty
    elderly = demand["elderly"].to_numpy(float)
    within_b = baseline.seconds_by_kind[kind] <= minutes * 60.0
    within_s = other.seconds_by_kind[kind] <= minutes * 60.0
    grid = demand_grid(demand)
    parts = []
    for change, mask_pts in (("gained", within_s & ~within_b), ("lost", within_b & ~within_s)):
        mask_pts = mask_pts & (elderly > 0)
        if not mask_pts.any():
            continue
        if grid is None:
            pts = demand.loc[mask_pts]
            parts.append(gpd.GeoDataFrame({"elderly": elderly[mask_pts], "cells": 0},
                                          geometry=pts.geometry.to_numpy(), crs=demand.crs).to_crs("EPSG:4326")
                         .assign(change=change))
            continue
        cells = grid.cell_sum(mask_pts) > 0
        persons = grid.cell_sum(np.where(mask_pts, elderly, 0.0))
        labels, n = ndimage.label(cells)
        geoms, values = [], []
        for geometry, value in rasterio.features.shapes(labels.astype(np.int32), mask=cells, connectivity=4,
                                                        transform=grid.transform):
            geoms.append(shapely.geometry.shape(geometry))
            values.append(int(value))
        frame = gpd.GeoDataFrame({"region": values}, geometry=np.asarray(geoms, dtype=object), crs=grid.crs)
        frame = frame.dissolve(by="region", as_index=False)
        region = frame["region"].to_numpy()
        frame["elderly"] = np.bincount(labels.ravel(), weights=persons.ravel(), minlength=n + 1)[region]
        frame["cells"] = np.bincount(labels.ravel(), minlength=n + 1)[region]
        parts.append(frame.drop(columns="region").to_crs("EPSG:4326").assign(change=change))
    if not parts:
        return empty
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    return out.assign(scenario=name, kind=kind, minutes=minutes)[columns]


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioComparison:
    """
    The baseline and every scenario of a study, compared.

    Attributes
    ----------
    config
        The study.
    scenarios
        The parsed scenarios.
    baseline
        Results of the study as configured.
    results
        Scenario name → its results.
    minutes
        The threshold compared (the study's headline minutes).
    targets
        :func:`compare_targets` of every scenario.
    towns
        :func:`compare_towns` of every scenario.
    difference
        :func:`difference_areas` of every scenario and kind that changed (WGS-84).
    added_sites, closed
        The sites added (WGS-84 points, with ``scenario``) and facilities closed per scenario.
    """

    config: StudyConfig
    scenarios: tuple[Scenario, ...]
    baseline: StudyResults
    results: dict[str, StudyResults]
    minutes: float
    targets: pd.DataFrame
    towns: pd.DataFrame
    difference: gpd.GeoDataFrame
    added_sites: gpd.GeoDataFrame
    closed: gpd.GeoDataFrame


def run_scenarios(
    config: StudyConfig,
    *,
    inputs: StudyInputs | None = None,
    baseline: StudyResults | None = None,
    kinds: tuple[str, ...] | None = None,
    as_of: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> ScenarioComparison:
    """
    Evaluate the baseline and every scenario of ``config.scenarios`` in one call.

    The network and the demand are prepared once and shared by every
    scenario that changes only facilities or speeds; a scenario with another
    population year prepares its own inputs.

    Parameters
    ----------
    config
        The study (with a ``scenarios:`` block).
    inputs
        The baseline's prepared inputs (:func:`coverage.pipeline.prepare_inputs`), if already loaded.
    baseline
        The baseline's results computed from ``inputs``, if already run.
    kinds
        Kinds compared per town (default: the study's kinds and ``any``).
    as_of
        Evaluate the facilities open in this calendar year (as ``run --as-of``),
        the baseline and every scenario alike; None = as listed.
    echo
        Called with progress lines.
    """
    from coverage.outputs import headline_minutes

    scenarios = parse_scenarios(config)
    if not scenarios:
        raise ConfigError(f"{config.config_path}: the study has no scenarios: block / 研究配置中没有情景")
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, pipeline.StageTimer(echo=echo), [], as_of=as_of)
    for scenario in scenarios:  # a facility to close that is not there stops here, before the long stages
        closed_mask(inputs.facilities, scenario, config)
    if baseline is None:
        baseline = pipeline.run_study(config, write=False, inputs=inputs, echo=echo, as_of=as_of)
    minutes = float(headline_minutes(baseline))
    kinds = tuple(kinds or (*config.parameters.kinds, ANY_KIND))
    results, target_parts, town_parts, diff_parts, added, closed = {}, [], [], [], [], []
    for scenario in scenarios:
        if echo:
            echo(f"scenario 情景: {scenario.name}")
        conf = scenario_config(config, scenario)
        base_inputs = pipeline.prepare_inputs(conf, pipeline.StageTimer(echo=echo), [], as_of=as_of) \
            if scenario.changes_population else inputs
        s_inputs = scenario_inputs(base_inputs, scenario, config)
        res = pipeline.run_study(conf, write=False, inputs=s_inputs, echo=echo, as_of=as_of)
        results[scenario.name] = res
        target_parts.append(compare_targets(baseline, res, scenario.name))
        same = not scenario.changes_population
        town_parts.append(compare_towns(baseline, res, scenario.name, minutes, kinds, same_demand=same))
        for kind in kinds if same else ():  # another population: no per-cell difference
            part = difference_areas(baseline, res, scenario.name, kind, minutes)
            if len(part):
                diff_parts.append(part)
        new = s_inputs.facilities[s_inputs.facilities["flags"].astype(str) == "scenario_site"]
        if len(new):
            added.append(new[["site_id", "name", "kinds", "geometry"]].assign(scenario=scenario.name))
        if scenario.close:
            gone = inputs.facilities[~inputs.facilities["site_id"].isin(s_inputs.facilities["site_id"])]
            closed.append(gone[["site_id", "name", "kinds", "geometry"]].assign(scenario=scenario.name))

    def frame(parts, columns):
        if not parts:
            return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry", crs="EPSG:4326")
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs="EPSG:4326")

    difference = frame(diff_parts, ["scenario", "kind", "minutes", "change", "elderly", "cells"])
    return ScenarioComparison(
        config=config, scenarios=scenarios, baseline=baseline, results=results, minutes=minutes,
        targets=pd.concat(target_parts, ignore_index=True), towns=pd.concat(town_parts, ignore_index=True),
        difference=difference, added_sites=frame(added, ["site_id", "name", "kinds", "scenario"]),
        closed=frame(closed, ["site_id", "name", "kinds", "scenario"]),
    )
