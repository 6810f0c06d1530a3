"""Where should the next canteens go, and how many do we need? Checked on the demo county."""

from __future__ import annotations

import numpy as np
import pytest

from coverage import ingest, pipeline, reach, siting
from coverage.config import load_study
from coverage.proposals import network_candidates, propose_sites, propose_village_sites
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_study(DEMO, output_root=tmp_path_factory.mktemp("siting"))


@pytest.fixture(scope="module")
def five_canteens(config):
    return propose_sites(config, kind="canteen", add=5, write=True)


def test_five_new_canteens_cover_more_elderly_and_say_where(five_canteens):
    result = five_canteens.result
    assert len(five_canteens.sites) == 5
    assert result.share_after > result.share_before
    # gains add up to the objective, and each site's gain is within what it reaches
    assert five_canteens.sites["new_persons"].sum() == pytest.approx(result.objective)
    assert (five_canteens.sites["new_persons"] <= five_canteens.sites["persons_in_reach"] + 1e-6).all()
    assert five_canteens.sites["village_name"].notna().all()
    assert {"siting_canteen_15min.xlsx", "siting_canteen_15min_map.html"} <= set(five_canteens.output_files)


def test_coverage_after_the_proposal_is_what_a_recount_with_the_new_sites_gives(config, five_canteens):
    """Recount: existing canteens plus the proposed sites as facilities, one nearest-facility pass."""
    inputs = pipeline.prepare_inputs(config)
    existing = inputs.facilities[ingest.has_kind(inputs.facilities, "canteen")].to_crs(inputs.working_crs)
    new_sites = five_canteens.sites.to_crs(inputs.working_crs)
    xy = np.vstack([np.column_stack([existing.geometry.x, existing.geometry.y]),
                    np.column_stack([new_sites.geometry.x, new_sites.geometry.y])])
    snap = reach.snap_points(inputs.net, xy, max_access_m=config.parameters.max_access_m)
    seconds = reach.nearest_facility(inputs.net, snap, inputs.demand_snap, walk_speed_mps=0.8, limit=900,
                                     ferry=config.parameters.ferry)["cost"].to_numpy()
    elderly = inputs.demand["elderly"].to_numpy()
    assert elderly[seconds <= 900].sum() / elderly.sum() == pytest.approx(five_canteens.result.share_after, abs=1e-9)


def test_the_number_of_sites_for_a_target_is_the_minimum(config):
    proposal = propose_sites(config, kind="day_care", target_share=0.55, write=False)
    result = proposal.result
    assert result.share_after >= 0.55
    k = len(result.selected)
    assert k >= 1
    # one fewer site, placed optimally, falls short
    inputs = pipeline.prepare_inputs(config)
    candidates = network_candidates(inputs.net, inputs.demand, spacing_m=200.0,
                                    study_area=inputs.study_area.to_crs(inputs.working_crs).iloc[0])
    assert len(proposal.candidates) >= len(candidates)
    if result.method == "exact":
        weights = inputs.demand["elderly"].to_numpy()
        existing = reach.nearest_facility(
            inputs.net, inputs.facility_snap.subset(np.flatnonzero(ingest.has_kind(inputs.facilities, "day_care"))),
            inputs.demand_snap, walk_speed_mps=0.8, limit=900, ferry=config.parameters.ferry)["cost"] <= 900
        cand_snap = reach.snap_points(inputs.net, proposal.candidates.to_crs(inputs.working_crs).geometry)
        matrix = reach.catchment_matrix(inputs.net, cand_snap, inputs.demand_snap, walk_speed_mps=0.8, limit=900,
                                        ferry=config.parameters.ferry)
        fewer = siting.solve_mclp(matrix, weights, k - 1, already_covered=existing.to_numpy(), method="exact")
        assert fewer.share_after < 0.55


def test_panjin_60_percent_of_villages_needs_one_more_mutual_aid_home(config):
    table = propose_village_sites(config, kind="mutual_aid", target_share=0.6, write=False)
    info = table.attrs
    assert info["share_before"] < 0.6 <= info["share_after"]
    # 27 of 46 villages have one: 28 of 46 reach 60 %
    assert table["covered_now"].sum() == round(info["share_before"] * len(table))
    assert table["build"].sum() == int(np.ceil(0.6 * len(table))) - table["covered_now"].sum()
    assert not (table["build"] & table["covered_now"]).any()


def test_ordos_three_tier_plan_finds_the_township_without_a_nursing_home(config):
    from coverage.proposals import three_tier_plan

    plan = three_tier_plan(config, village_target_share=1.0, write=False)
    assert (plan["build"] == ~plan["has_now"]).all()
    townships = plan[plan["tier"] == 2]
    # streets (街道) are not townships; the demo's 石岭乡 has no 敬老院 and gets one at its seat
    assert not townships["name"].str.endswith("街道").any() and len(townships) == 4
    assert set(townships.loc[townships["build"], "name"]) == {"石岭乡"}
    assert townships.loc[townships["build"], "site"].iloc[0] == "石岭社区"
    villages = plan[plan["tier"] == 3]
    assert villages["build"].sum() == len(villages) - villages["has_now"].sum()
