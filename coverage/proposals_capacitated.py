"""Siting new facilities of a given size (capacitated MCLP, fewest sites) or by average walking time (p-median) for a study."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from coverage import pipeline, reach
from coverage.access_tables import M2_PER_PLACE, existing_places, places_of
from coverage._errors import ConfigError
from coverage.config import StudyConfig, load_study
from coverage.proposals import (
    Proposal,
    _check_kind,
    _check_share,
    _population_method,
    _site_layer,
    _units_after,
    screened_candidates,
)
from coverage.results import StudyInputs
from coverage.siting_capacitated import (
    CapacitatedCoveringModel,
    CapacitatedMinimumSitesModel,
    CapacitatedSitingResult,
    PMedianModel,
)

__all__ = ["OBJECTIVES", "propose_capacitated_sites", "summary_lines", "write_capacitated_proposal"]

#: objectives of ``site --objective``
OBJECTIVES = ("coverage", "p-median")


def propose_capacitated_sites(
    config: StudyConfig | str | Path,
    *,
    kind: str,
    capacity: float | None = None,
    add: int | None = None,
    target_share: float | None = None,
    objective: str = "coverage",
    minutes: float = 15.0,
    candidate_spacing_m: float = 200.0,
    candidates_file: str | Path | None = None,
    candidates_crs: str = "gcj02",
    only_candidates: bool = False,
    time_limit_s: float = 60.0,
    m2_per_place: float = M2_PER_PLACE,
    method: str = "auto",
    echo: Callable[[str], None] | None = None,
    inputs: StudyInputs | None = None,
) -> Proposal:
    """
    New sites of one kind and size: the most older people served, the fewest sites for a share, or the shortest walks.

    Parameters
    ----------
    config
        Study (or its YAML path).
    kind
        Facility kind, e.g. ``canteen``.
    capacity
        Size of each new facility in the kind's capacity unit (meals a day,
        beds, m² …; ``coverage/kinds.yaml``); floor areas count one person
        per ``m2_per_place`` m². Needed for ``objective="coverage"``.
    add
        Number of new sites (capacitated MCLP or p-median).
    target_share
        Share of the older people to be served within ``minutes``, capacities
        respected (fewest sites of that size); coverage only.
    objective
        ``"coverage"`` (capacity-aware coverage) or ``"p-median"`` (total
        walking time of the older people to the nearest open facility, those
        beyond ``minutes`` counting ``minutes``; capacities play no part).
    minutes
        Walking threshold (minutes).
    candidate_spacing_m, candidates_file, candidates_crs, only_candidates
        Candidates, as for :func:`coverage.proposals.propose_sites`.
    time_limit_s
        Solver budget (seconds).
    m2_per_place
        Floor area per person served (m²) for kinds measured by floor area.
    method
        ``auto``, ``exact`` or ``greedy`` (see the models).
    echo
        Called with progress lines.
    inputs
        Inputs already prepared by :func:`coverage.pipeline.prepare_inputs`.

    Returns
    -------
    Proposal
        ``result`` is a :class:`coverage.siting_capacitated.CapacitatedSitingResult`;
        ``sites`` hold ``new_persons`` (persons served more by the site,
        p-median: persons for whom it becomes the nearest), ``assigned``,
        ``capacity`` and for p-median ``seconds_saved``; nothing is written
        (:func:`write_capacitated_proposal`).
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective: use one of {', '.join(OBJECTIVES)}, not {objective!r} "
                          "/ 目标应为 coverage 或 p-median")
    if (add is None) == (target_share is None):
        raise ConfigError("site: give exactly one of --add N or --target SHARE / 请指定新增数量或目标覆盖率之一")
    if add is not None and (isinstance(add, bool) or int(add) != add or add < 1):
        raise ConfigError(f"--add: the number of new sites must be a whole number of at least 1, got {add!r} "
                          "/ 新增数量应为正整数")
    if objective == "p-median" and add is None:
        raise ConfigError("--objective p-median needs --add N (the number of new sites); --target is for "
                          "coverage / 平均步行时间目标须指定新增数量 --add")
    if objective == "coverage":
        if capacity is None or not np.isfinite(capacity) or capacity <= 0:
            raise ConfigError(f"--capacity: the size of each new facility must be more than 0 (in the kind's "
                              f"capacity unit, e.g. 40 meals a day), got {capacity!r} / 新设施规模应大于 0")
    if target_share is not None:
        target_share = _check_share(target_share, "--target")
    if not minutes or minutes <= 0:
        raise ConfigError(f"--minutes: must be more than 0, got {minutes!r} / 步行分钟数应大于 0")
    if not m2_per_place > 0:
        raise ConfigError(f"m2_per_place: must be more than 0 m², got {m2_per_place!r}")
    _check_kind(kind)
    if not isinstance(config, StudyConfig):
        config = load_study(config)
    params = config.parameters
    timer = pipeline.StageTimer(echo=echo)
    notes: list[str] = []
    if inputs is None:
        inputs = pipeline.prepare_inputs(config, timer, notes)
    speed = params.speed_for(kind)
    limit_s = minutes * 60.0
    weights = inputs.demand["elderly"].to_numpy(float)

    with timer.stage("candidates"):
        candidates, candidate_snap, excluded = screened_candidates(
            config, inputs, spacing_m=candidate_spacing_m, candidates_file=candidates_file,
            candidates_crs=candidates_crs, only_candidates=only_candidates)
    with timer.stage("catchments"):
        supply, places = existing_places(inputs.facilities, kind, m2_per_place=m2_per_place)
        positions = supply.positions
        existing = reach.catchment_matrix(inputs.net, inputs.facility_snap.subset(positions), inputs.demand_snap,
                                          walk_speed_mps=speed, limit=limit_s, ferry=params.ferry)
        matrix = reach.catchment_matrix(inputs.net, candidate_snap, inputs.demand_snap, walk_speed_mps=speed,
                                        limit=limit_s, ferry=params.ferry)
    new_places = float(places_of(np.array([capacity if capacity is not None else 0.0]), supply.column,
                                 m2_per_place)[0])
    with timer.stage("optimise"):
        if objective == "p-median":
            result = PMedianModel(matrix, weights, add, existing=existing, limit_s=limit_s).solve(
                method, time_limit_s=time_limit_s)
        elif add is not None:
            result = CapacitatedCoveringModel(matrix, weights, new_places, add, existing=existing,
                                              existing_capacity=places, limit_s=limit_s).solve(
                method, time_limit_s=time_limit_s)
        else:
            result = CapacitatedMinimumSitesModel(matrix, weights, new_places, target_share, existing=existing,
                                                  existing_capacity=places, limit_s=limit_s).solve(
                method, time_limit_s=time_limit_s)
    explained = _explain(result, matrix, weights, candidates, objective, limit_s, new_places)
    existing_mask = np.zeros(len(inputs.facilities), bool)
    existing_mask[positions] = True
    sites = _site_layer(explained, candidates, inputs, existing_mask, kind)
    marginal = result.marginal.copy()
    marginal.insert(2, "candidate_id", candidates["candidate_id"].to_numpy()[marginal["candidate"].to_numpy(int)])
    # the curve's columns say what they count (the plain 'gain' header reads "persons newly covered")
    marginal = marginal.rename(columns={"gain": "seconds_saved", "cumulative": "total_person_seconds"}
                               if objective == "p-median" else
                               {"gain": "new_persons", "cumulative": "cumulative_served"})
    marginal = marginal.assign(kind=kind, minutes=minutes, objective=objective, unit=result.objective_unit)
    covered = _CoveredView(result, weights, limit_s, objective)
    proposal = Proposal(config, kind, minutes, result, sites, marginal, candidates.to_crs("EPSG:4326"),
                        existing=inputs.facilities[existing_mask], units_layer=_units_after(inputs, covered, kind),
                        excluded_candidates=excluded, population_method=_population_method(inputs))
    proposal.sites.attrs.update(
        objective=objective, capacity=capacity, places_per_site=new_places, capacity_column=supply.column,
        supply_note=supply.note, m2_per_place=m2_per_place, notes=notes)
    return proposal


class _CoveredView:
    """What :func:`coverage.proposals._units_after` reads: ``covered`` per demand point after the proposal."""

    def __init__(self, result: CapacitatedSitingResult, weights: np.ndarray, limit_s: float, objective: str):
        if objective == "p-median":
            self.covered = result.served < limit_s
        else:
            # a point counts as covered when all of its older people have a place
            self.covered = (weights > 0) & (result.served >= weights * (1 - 1e-9))


def _explain(result: CapacitatedSitingResult, matrix, weights, candidates, objective: str, limit_s: float,
             new_places: float) -> pd.DataFrame:
    """One row per new site in rank order, the columns the siting writers and summary read."""
    m = result.marginal
    rows = m["candidate"].to_numpy(int)
    matrix = matrix.tocsr()
    reach_persons = np.array([float(weights[matrix[r].indices[matrix[r].data <= limit_s]].sum()) for r in rows])
    out = pd.DataFrame({
        "rank": m["rank"].to_numpy(int),
        "candidate": rows,
        "candidate_id": candidates["candidate_id"].to_numpy()[rows] if len(rows) else np.array([], dtype=object),
        "persons_in_reach": reach_persons,
    })
    if objective == "p-median":
        out["new_persons"] = result.assigned  # persons for whom the site becomes the nearest
        out["seconds_saved"] = m["gain"].to_numpy(float)
        out["mean_minutes_after"] = m["cumulative"].to_numpy(float) / max(result.total_demand, 1e-12) / 60.0
    else:
        out["new_persons"] = m["gain"].to_numpy(float)
        out["assigned"] = result.assigned
        out["capacity_places"] = new_places
        out["cumulative_served"] = m["cumulative"].to_numpy(float)
    out["share_after"] = m["share"].to_numpy(float)
    return out


def write_capacitated_proposal(proposal: Proposal) -> dict[str, Path]:
    """
    Write a capacitated or p-median proposal beside the plain siting files (its own names).

    ``siting_<kind>_<minutes>min_cap<size>.{csv,xlsx,gpkg}`` (``_pmedian`` for
    p-median), the marginal curve, the excluded candidates and the map.
    """
    from coverage import report
    from coverage.proposal_outputs import proposal_map, siting_parameters

    config = proposal.config
    attrs = proposal.sites.attrs
    tag = "pmedian" if attrs.get("objective") == "p-median" else f"cap{attrs.get('capacity'):g}"
    stem = f"siting_{proposal.kind}_{proposal.minutes:g}min_{tag}"
    out = Path(config.output_dir)
    table = pd.DataFrame(proposal.sites.drop(columns="geometry"))
    excluded = proposal.excluded_candidates
    if excluded is None:
        excluded = pd.DataFrame(columns=["candidate_id", "source", "name", "reason", "detail", "lon", "lat"])
    params = siting_parameters(proposal)
    result = proposal.result
    extra = pd.DataFrame([
        ("objective / 目标", f"{attrs.get('objective')} ({result.objective_unit})"),
        ("objective now / 现状", result.base_objective),
        ("objective after / 新增后", result.objective),
        ("capacity of a new site / 新设施规模", attrs.get("capacity")),
        ("persons per new site / 新设施可服务人数", attrs.get("places_per_site")),
        ("existing capacity / 现有设施能力", attrs.get("supply_note")),
        ("m² per place / 每人面积 (m²)", attrs.get("m2_per_place")),
    ], columns=["parameter", "value"]).astype({"value": str})
    params = pd.concat([params, extra], ignore_index=True)
    files = {
        f"{stem}.csv": report.write_csv(table, out / f"{stem}.csv", synthetic=config.synthetic),
        f"{stem}_marginal.csv": report.write_csv(proposal.marginal, out / f"{stem}_marginal.csv",
                                                 synthetic=config.synthetic),
        f"{stem}.xlsx": report.write_excel(
            {"选址建议": table, "边际曲线": proposal.marginal, "候选点剔除": excluded, "参数": params},
            out / f"{stem}.xlsx", synthetic=config.synthetic, title=config.title),
        f"{stem}.gpkg": report.write_geopackage({"proposed_sites": proposal.sites}, out / f"{stem}.gpkg"),
    }
    if proposal.units_layer is not None:
        files[f"{stem}_map.html"] = proposal_map(proposal, out / f"{stem}_map.html")
    return files


def summary_lines(proposal: Proposal, files: dict[str, Path] | None = None) -> list[str]:
    """The ``site --capacity`` / ``--objective p-median`` screen."""
    from coverage.proposal_outputs import method_words

    result = proposal.result
    attrs = proposal.sites.attrs
    lines = ["", f"== {proposal.kind}, {proposal.minutes:g} min walk, objective {attrs.get('objective')}"]
    if attrs.get("objective") == "p-median":
        total = max(result.total_demand, 1e-12)
        lines.append(f"   mean walk 平均步行 (capped at {proposal.minutes:g} min): {result.base_objective / total / 60:.2f} "
                     f"→ {result.objective / total / 60:.2f} min with {result.n_sites} new sites")
    else:
        lines.append(f"   {attrs.get('supply_note')}")
        lines.append(f"   served within reach, capacities respected 容量约束下覆盖: {result.share_before:.1%} → "
                     f"{result.share_after:.1%} with {result.n_sites} new sites of {attrs.get('capacity'):g} "
                     f"({attrs.get('places_per_site'):g} persons each)")
    lines.append(f"   method 方法: {method_words(result.method, result.status, result.gap)}")
    for record in proposal.sites.head(20).to_dict("records"):
        place = "·".join(str(record[k]) for k in ("town_name", "village_name", "street")
                         if isinstance(record.get(k), str) and record.get(k))
        lines.append(f"   #{record['rank']:>2} {place or record['candidate_id']} ({record['lon']:.5f}, {record['lat']:.5f})"
                     f" +{record['new_persons']:,.0f} persons ({record['source']})")
    for name, path in (files or {}).items():
        lines.append(f"   {name}: {path}")
    if proposal.config.synthetic:
        lines.append("   合成示例数据 / synthetic demo data")
    return lines
