"""Phased siting for a study: candidates, catchments and each year's existing coverage in, a plan by year out (values only)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import ingest, pipeline, reach, year_tables
from coverage._errors import ConfigError
from coverage.config import StudyConfig, load_study
from coverage.phased_siting import PhasedCoveringModel, PhasedSitingResult
from coverage.proposals import _add_location_names, _check_kind, _check_share, _population_method, screened_candidates
from coverage.results import StudyInputs

__all__ = ["PhasedPlan", "parse_budget", "parse_years", "propose_phased_sites"]


@dataclass(frozen=True)
class PhasedPlan:
    """
    Which sites of one kind open in which year, as values (:mod:`coverage.phased_outputs` writes them).

    Attributes
    ----------
    kind, minutes
        Facility kind and walking threshold (minutes).
    result
        The optimisation result (:class:`coverage.phased_siting.PhasedSitingResult`).
    sites
        One row per new site (WGS-84 points): year, rank within the year,
        candidate id, source, town / village / street names, lon, lat, gain
        (persons newly covered in its year), covered and share after it.
    years
        One row per year (:meth:`PhasedSitingResult.by_year`).
    candidates
        All candidate sites considered (WGS-84).
    opened_existing
        Per year the number of existing facilities of the kind open
        (planned / under-construction ones from their year).
    """

    config: StudyConfig
    kind: str
    minutes: float
    result: PhasedSitingResult
    sites: gpd.GeoDataFrame
    years: pd.DataFrame
    candidates: gpd.GeoDataFrame
    opened_existing: tuple[int, ...]
    population_method: str = "raster"


def parse_years(text: str) -> list[int]:
    """``"2025-2027"`` or ``"2025,2026,2027"`` → ``[2025, 2026, 2027]`` (ConfigError on anything else)."""
    text = str(text).strip()
    span = re.fullmatch(r"(\d{4})\s*[-–~至]\s*(\d{4})", text)
    try:
        years = list(range(int(span[1]), int(span[2]) + 1)) if span else [int(y) for y in re.split(r"[,，\s]+", text) if y]
    except ValueError:
        years = []
    if not years or years != sorted(set(years)) or not all(1900 <= y <= 2200 for y in years):
        raise ConfigError(f"--years: expected increasing years such as 2025-2027 or 2025,2026,2027, got {text!r} "
                          "/ 年份写成 2025-2027 或 2025,2026,2027")
    return years


def parse_budget(text: str, years: list[int] | None = None) -> tuple[list[int], list[int]]:
    """
    ``"2025:2,2026:3"`` → (years, sites per year); years not named get 0 when ``years`` is given.

    Raises ConfigError naming the item to fix.
    """
    budget: dict[int, int] = {}
    for item in re.split(r"[,，;；\s]+", str(text).strip()):
        if not item:
            continue
        year, sep, count = item.partition(":")
        if not sep:
            year, sep, count = item.partition("=")
        try:
            y, n = int(year), int(count)
        except ValueError:
            y = n = -1
        if not sep or n < 0 or not 1900 <= y <= 2200:
            raise ConfigError(f"--budget: item {item!r} should be YEAR:SITES, e.g. --budget \"2025:2,2026:3\" "
                              "/ 写成 年份:新增数量，如 2025:2,2026:3")
        budget[y] = n
    if not budget:
        raise ConfigError("--budget: give YEAR:SITES pairs, e.g. \"2025:2,2026:3\" / 请写明每年新增数量")
    all_years = sorted(set(budget) | set(years or []))
    return all_years, [budget.get(y, 0) for y in all_years]




def _existing_by_year(config: StudyConfig, inputs: StudyInputs, kind: str, years: list[int], speed: float,
                      limit_s: float) -> tuple[np.ndarray, list[int]]:
    """
    (n_years, n_demand): demand within the walk of the kind's facilities open in each year; and how many are open.

    A year's facilities are the records open then (:func:`coverage.timeline.open_mask`: planned and
    under-construction ones from their opening year, closed ones until their closing year), made
    into sites as a run of that year makes them (:func:`coverage.year_tables.year_facilities`).
    """
    records = pipeline.facility_records(config, inputs)
    out, counts, cache = [], [], {}
    for year in years:
        located = year_tables.year_facilities(records, year, inputs.units, pipeline.facility_sites).located
        located = located[ingest.has_kind(located, kind).to_numpy(bool)] if len(located) else located
        key = tuple(sorted(zip(located.geometry.x.round(7), located.geometry.y.round(7)))) if len(located) else ()
        if key not in cache:
            if len(located):
                snap = reach.snap_points(inputs.net, located.to_crs(inputs.working_crs).geometry,
                                         max_access_m=config.parameters.max_access_m)
                near = reach.nearest_facility(inputs.net, snap, inputs.demand_snap, walk_speed_mps=speed,
                                              limit=limit_s, ferry=config.parameters.ferry)
                cache[key] = near["cost"].to_numpy() <= limit_s
            else:
                cache[key] = np.zeros(len(inputs.demand), dtype=bool)
        out.append(cache[key])
        counts.append(len(located))
    return np.vstack(out), counts


def propose_phased_sites(
    config: StudyConfig | str | Path,
    *,
    kind: str,
    years: list[int],
    budgets: list[int] | int,
    total: int | None = None,
    target_share: float | list | None = None,
    minutes: float = 15.0,
    candidate_spacing_m: float = 200.0,
    candidates_file: str | Path | None = None,
    candidates_crs: str = "gcj02",
    only_candidates: bool = False,
    time_limit_s: float = 60.0,
    echo: Callable[[str], None] | None = None,
    inputs: StudyInputs | None = None,
) -> PhasedPlan:
    """
    Which new sites of one kind to open in which year, under a budget per year.

    Parameters
    ----------
    config
        Study (or its YAML path).
    kind
        Facility kind, e.g. ``day_care``.
    years
        Planning years, increasing.
    budgets
        New sites per year (one number for every year, or one per year).
    total
        Optional total over all years (then ``budgets`` are yearly caps).
    target_share
        Optional share of the elderly to reach as early as possible (one for
        every year, or one per year).
    minutes
        Walking threshold (minutes).
    candidate_spacing_m, candidates_file, candidates_crs, only_candidates
        As for :func:`coverage.proposals.propose_sites`.
    time_limit_s
        Solver time limit (seconds).
    echo
        Called with progress lines.
    inputs
        Inputs already loaded by :func:`coverage.pipeline.prepare_inputs`.

    Returns
    -------
    PhasedPlan
        Nothing is written: :func:`coverage.phased_outputs.write_phased_plan` writes it.
    """
    _check_kind(kind)
    if not minutes or minutes <= 0:
        raise ConfigError(f"--minutes / minutes=: must be more than 0, got {minutes!r} / 步行分钟数应大于 0")
    per_year = [budgets] * len(years) if np.isscalar(budgets) else list(budgets)
    if len(per_year) != len(years) or any(isinstance(b, bool) or int(b) != b or b < 0 for b in per_year):
        raise ConfigError(f"--per-year / --budget: a whole number of new sites (0 or more) for each of the years "
                          f"{years}, got {per_year} / 每年新增数量应为非负整数")
    if total is not None and (int(total) != total or total < 0):
        raise ConfigError(f"--total: a whole number of new sites, got {total!r} / 总数应为非负整数")
    if target_share is not None:
        target_share = ([_check_share(target_share, "--target / target_share=")] * len(years)
                        if np.isscalar(target_share) else
                        [None if t is None else _check_share(t, "--target / target_share=") for t in target_share])
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    params = config.parameters
    timer = pipeline.StageTimer(echo=echo)
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, timer, [])
    speed, limit_s = params.speed_for(kind), minutes * 60.0
    with timer.stage("candidates"):
        candidates, candidate_snap, _ = screened_candidates(
            config, inputs, spacing_m=candidate_spacing_m, candidates_file=candidates_file,
            candidates_crs=candidates_crs, only_candidates=only_candidates)
    with timer.stage("coverage matrix"):
        # planned (规划) and under-construction (在建) facilities of the table enter in their opening year
        existing, n_open = _existing_by_year(config, inputs, kind, years, speed, limit_s)
        matrix = reach.catchment_matrix(inputs.net, candidate_snap, inputs.demand_snap, walk_speed_mps=speed,
                                        limit=limit_s, ferry=params.ferry)
    weights = inputs.demand["elderly"].to_numpy(float)
    with timer.stage("optimise"):
        model = PhasedCoveringModel(matrix, weights, years, per_year, total=total, existing_covered=existing,
                                    target_shares=target_share)
        result = model.solve(time_limit_s=time_limit_s)
    sites = _phased_site_layer(result, candidates, inputs)
    return PhasedPlan(config, kind, minutes, result, sites, result.by_year(), candidates.to_crs("EPSG:4326"),
                      tuple(n_open), population_method=_population_method(inputs))


def _phased_site_layer(result: PhasedSitingResult, candidates: gpd.GeoDataFrame,
                       inputs: StudyInputs) -> gpd.GeoDataFrame:
    """The new sites by year with their place names (town, village, street) and WGS-84 position."""
    marginal = result.marginal
    rows = marginal["candidate"].to_numpy(dtype=np.int64)
    chosen = candidates.iloc[rows]
    layer = gpd.GeoDataFrame(
        {"year": marginal["year"].to_numpy(), "rank": marginal["rank"].to_numpy(),
         "candidate_id": chosen["candidate_id"].to_numpy(), "source": chosen["source"].to_numpy(),
         "name": chosen["name"].to_numpy() if "name" in chosen else None,
         "gain": marginal["gain"].round(1).to_numpy(), "covered": marginal["covered"].round(1).to_numpy(),
         "share": marginal["share"].round(6).to_numpy()},
        geometry=chosen.geometry.to_numpy(), crs=candidates.crs)
    layer["street"] = reach.nearest_named_street(inputs.net, layer.geometry) if len(layer) else []
    layer = _add_location_names(layer.to_crs("EPSG:4326"), inputs.units)
    layer["lon"] = layer.geometry.x.round(6)
    layer["lat"] = layer.geometry.y.round(6)
    return layer
