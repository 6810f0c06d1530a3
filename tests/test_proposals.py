"""Where should the next canteens go, and how many do we need? Checked on the demo county."""

from __future__ import annotations

import numpy as np
import pytest

from coverage import ingest, pipeline, reach, siting
from coverage.config import load_study
from coverage.proposal_outputs import write_proposal
from coverage.proposals import network_candidates, propose_sites, propose_village_sites
from tests.conftest import REPO_ROOT

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_study(DEMO, output_root=tmp_path_factory.mktemp("siting"))


@pytest.fixture(scope="module")
def five_canteens(config):
    return propose_sites(config, kind="canteen", add=5)


@pytest.fixture(scope="module")
def five_canteens_written(five_canteens):
    return write_proposal(five_canteens)


def test_five_new_canteens_cover_more_elderly_and_say_where(five_canteens, five_canteens_written):
    result = five_canteens.result
    assert len(five_canteens.sites) == 5
    assert result.share_after > result.share_before
    # gains add up to the objective, and each site's gain is within what it reaches
    assert five_canteens.sites["new_persons"].sum() == pytest.approx(result.objective)
    assert (five_canteens.sites["new_persons"] <= five_canteens.sites["persons_in_reach"] + 1e-6).all()
    assert five_canteens.sites["village_name"].notna().all()
    assert {"siting_canteen_15min.xlsx", "siting_canteen_15min_map.html"} <= set(five_canteens_written)


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
    proposal = propose_sites(config, kind="day_care", target_share=0.55)
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
    table = propose_village_sites(config, kind="mutual_aid", target_share=0.6)
    info = table.attrs
    assert info["share_before"] < 0.6 <= info["share_after"]
    # 27 of 46 villages have one: 28 of 46 reach 60 %
    assert table["covered_now"].sum() == round(info["share_before"] * len(table))
    assert table["build"].sum() == int(np.ceil(0.6 * len(table))) - table["covered_now"].sum()
    assert not (table["build"] & table["covered_now"]).any()


def test_ordos_three_tier_plan_finds_the_township_without_a_nursing_home(config):
    from coverage.proposals import three_tier_plan

    plan = three_tier_plan(config, village_target_share=1.0)
    assert (plan["build"] == ~plan["has_now"]).all()
    townships = plan[plan["tier"] == 2]
    # streets (街道) are not townships; the demo's 石岭乡 has no 敬老院 and gets one at its seat
    assert not townships["name"].str.endswith("街道").any() and len(townships) == 4
    assert set(townships.loc[townships["build"], "name"]) == {"石岭乡"}
    assert townships.loc[townships["build"], "site"].iloc[0] == "石岭社区"
    villages = plan[plan["tier"] == 3]
    assert villages["build"].sum() == len(villages) - villages["has_now"].sum()


# --- where sites may not go -----------------------------------------------------


def test_no_candidate_site_stands_in_the_river(config, five_canteens):
    from coverage import exclusions

    water = exclusions.read_osm_water(config.network)
    assert len(water) == 1, "the demo maps the river's water surface"
    river = water.geometry.iloc[0]
    assert not five_canteens.candidates.within(river).any()
    assert not five_canteens.sites.within(river).any()


def test_street_nodes_in_a_no_build_area_are_dropped_before_thinning(config):
    """A riverside strip ruled out: no node in it, and grid squares half in it still get a node on the other half."""
    import geopandas as gpd

    from coverage import exclusions

    inputs = pipeline.prepare_inputs(config)
    strip = exclusions.read_osm_water(config.network).to_crs(inputs.working_crs).buffer(300.0)
    everywhere = network_candidates(inputs.net, inputs.demand, spacing_m=200.0)
    screened = network_candidates(inputs.net, inputs.demand, spacing_m=200.0, no_build=strip)
    zone = strip.iloc[0]
    assert everywhere.within(zone).sum() > 0
    assert not screened.within(zone).any()
    outside_before = everywhere[~everywhere.within(zone)]
    # every candidate outside the strip survives, and squares cut by the strip may gain a land node
    assert set(outside_before["candidate_id"]) <= set(screened["candidate_id"])
    assert len(screened) >= len(outside_before)
    assert isinstance(strip, gpd.GeoSeries)


def test_a_planners_list_of_vacant_buildings_is_screened_and_every_row_accounted_for(config, tmp_path):
    """Vacant buildings in GCJ-02 (as copied from Amap): one in the river, one outside the county, one unreadable."""
    import pandas as pd
    import shapely

    from coverage import coords, exclusions

    inputs = pipeline.prepare_inputs(config)
    river = exclusions.read_osm_water(config.network).geometry.iloc[0]
    county = inputs.study_area.to_crs("EPSG:4326").iloc[0]
    villages = inputs.units[inputs.units["level"] == "village"].sort_values("code")
    on_land = villages.geometry.representative_point().iloc[:2]
    in_river = shapely.Polygon(river.geoms[0].exterior).representative_point()
    assert river.contains(in_river)
    outside = shapely.Point(county.bounds[2] + 0.05, county.bounds[3] + 0.05)
    points = [*on_land, in_river, outside]
    lon, lat = coords.from_wgs84(np.array([p.x for p in points]), np.array([p.y for p in points]), "gcj02")
    table = pd.DataFrame({"名称": ["闲置小学", "村委会旧址", "河心码头", "邻县仓库", "坐标缺失的房子"],
                          "经度": [*np.round(lon, 6), None], "纬度": [*np.round(lat, 6), None]})
    path = tmp_path / "候选建筑.xlsx"
    table.to_excel(path, index=False)

    proposal = propose_sites(config, kind="canteen", add=2, candidates_file=path, candidates_crs="gcj02")
    written_files = write_proposal(proposal)

    excluded = proposal.excluded_candidates
    from_table = excluded[excluded["source"] == "candidate table"]
    kept_from_table = proposal.candidates[proposal.candidates["source"] == "candidate table"]
    assert len(kept_from_table) + len(from_table) == len(table)
    reasons = dict(zip(from_table["name"].fillna(""), from_table["reason"]))
    assert reasons["河心码头"] == exclusions.REASON_WATER
    assert reasons["邻县仓库"] == exclusions.REASON_OUTSIDE
    unreadable = from_table[from_table["reason"] == exclusions.REASON_TABLE]
    assert len(unreadable) == 1 and "候选建筑.xlsx row 6" in unreadable["detail"].iloc[0]
    assert set(kept_from_table["name"]) == {"闲置小学", "村委会旧址"}
    written = pd.read_excel(written_files["siting_canteen_15min.xlsx"], sheet_name="候选点剔除", header=None)
    assert written.astype(str).apply(lambda col: col.str.contains("河心码头")).any().any()
    # and on the proposal map, as a layer a planner can switch on
    import json

    page = written_files["siting_canteen_15min_map.html"].read_text(encoding="utf-8")
    located = int(excluded["lon"].notna().sum())
    assert located >= 2

    def on_page(text: str) -> bool:  # folium writes names and popups as JSON (non-ASCII escaped)
        return text in page or json.dumps(text)[1:-1] in page

    assert on_page(f"剔除的候选点（{located}处）") and on_page("河心码头")


def test_sites_stay_out_of_an_exclusion_layer(config, five_canteens, tmp_path):
    """The planner rules out the area of the best site (e.g. 生态保护红线): the proposal moves elsewhere."""
    import dataclasses

    import geopandas as gpd

    from coverage.config import ExclusionSource
    from coverage.coords import utm_crs_for

    best = five_canteens.sites.sort_values("rank").iloc[0]
    metric = utm_crs_for(best.geometry.x, best.geometry.y)
    area = gpd.GeoDataFrame({"名称": ["生态保护红线"]}, crs="EPSG:4326",
                            geometry=[gpd.GeoSeries([best.geometry], crs="EPSG:4326").to_crs(metric)
                                      .buffer(400.0).to_crs("EPSG:4326").iloc[0]])
    path = tmp_path / "redline.geojson"
    area.to_file(path)
    ruled_out = dataclasses.replace(config, exclusions=(ExclusionSource(path=path, label="生态保护红线"),))

    proposal = propose_sites(ruled_out, kind="canteen", add=5)

    zone = area.geometry.iloc[0]
    assert len(proposal.sites) == 5
    assert five_canteens.candidates.within(zone).sum() > 1, "the zone held candidates before"
    assert not proposal.sites.within(zone).any()
    assert not proposal.candidates.within(zone).any()
    assert proposal.result.objective <= five_canteens.result.objective + 1e-6


def test_a_proposal_is_a_value_and_writes_nothing_until_asked(tmp_path):
    config = load_study(DEMO, output_root=tmp_path)
    inputs = pipeline.prepare_inputs(config)
    proposal = propose_sites(config, kind="canteen", add=2, inputs=inputs)
    out = config.output_dir
    assert not out.exists() or not any(out.iterdir()), "propose_sites must not write"
    # the same study prepared once for a run and its siting gives the same answer as loading it again
    again = propose_sites(config, kind="canteen", add=2)
    assert np.array_equal(proposal.result.selected, again.result.selected)
    assert proposal.result.objective == pytest.approx(again.result.objective)
    files = write_proposal(proposal)
    assert all(path.exists() and path.parent == out for path in files.values())


def test_a_canteen_village_target_counts_communities_too_and_mutual_aid_only_villages(config):
    """助餐服务覆盖村(社区): urban communities count for canteens; 互助幸福院 targets count administrative villages."""
    inputs = pipeline.prepare_inputs(config)
    units = inputs.units[(inputs.units["level"] == "village") & inputs.units.geometry.notna()]
    rural = units["urban"].astype("boolean").fillna(False) == False  # noqa: E712
    canteens = propose_village_sites(config, kind="canteen", target_share=0.9, inputs=inputs)
    assert canteens.attrs["rural_only"] is False and canteens.attrs["villages"] == len(units)
    assert canteens.attrs["share_before"] > 0  # communities with a canteen count (it was 0.0 % before)
    homes = propose_village_sites(config, kind="mutual_aid", target_share=0.6, inputs=inputs)
    assert homes.attrs["rural_only"] is True and homes.attrs["villages"] == int(rural.sum())


def test_only_the_planners_own_buildings_are_chosen_with_only_candidates(config, tmp_path):
    import pandas as pd

    from coverage import coords

    inputs = pipeline.prepare_inputs(config)
    villages = inputs.units[inputs.units["level"] == "village"].sort_values("code")
    points = villages.geometry.representative_point().iloc[:6]
    lon, lat = coords.from_wgs84(points.x.to_numpy(), points.y.to_numpy(), "gcj02")
    path = tmp_path / "闲置建筑.csv"
    pd.DataFrame({"名称": [f"闲置建筑{i}" for i in range(6)], "经度": np.round(lon, 6),
                  "纬度": np.round(lat, 6)}).to_csv(path, index=False, encoding="utf-8-sig")
    proposal = propose_sites(config, kind="canteen", add=2, candidates_file=path, only_candidates=True,
                             inputs=inputs)
    assert set(proposal.candidates["source"]) == {"candidate table"}
    assert set(proposal.sites["source"]) == {"candidate table"} and len(proposal.sites) == 2


def test_the_method_is_said_in_plain_words():
    from coverage.proposal_outputs import method_words

    assert method_words("exact", "optimal", 0.0, lang="zh") == "精确求解（整数规划），已证明最优"
    assert "1.50% from the bound" in method_words("greedy+swap", "time_limit", 0.015, lang="en")
    assert "greedy" not in method_words("greedy", "heuristic", lang="zh")


def test_the_marginal_curve_names_its_sites_as_the_proposal_table_does(five_canteens):
    curve = five_canteens.marginal
    assert set(curve["candidate_id"]) <= set(five_canteens.candidates["candidate_id"])
    chosen = set(five_canteens.sites["candidate_id"])
    assert curve["in_proposal"].to_numpy().tolist() == [c in chosen for c in curve["candidate_id"]]


def test_each_proposed_site_names_the_street_a_planner_finds_it_on(five_canteens):
    from coverage.network import load_walk_arrays

    net = load_walk_arrays(five_canteens.config.network)
    names = {str(n) for n in net.edge_name if n}
    assert names, "the demo's streets carry OSM names"
    streets = five_canteens.sites["street"].tolist()
    assert all(s in names for s in streets if s) and sum(bool(s) for s in streets) >= 3


def test_a_planner_can_accept_a_stated_gap_and_gets_an_answer_within_it(config, five_canteens):
    # --gap 0.2: any answer proved within 20 % of the best will do; the bound stays honest
    prepared = pipeline.prepare_inputs(config)
    loose = propose_sites(config, kind="canteen", add=5, mip_rel_gap=0.2, inputs=prepared)
    result = loose.result
    assert result.status in ("optimal", "gap_limit")
    assert result.gap <= 0.2 + 1e-12
    assert result.objective <= result.bound + 1e-6
    # the proved optimum of the same question is no better than the loose answer's bound
    assert five_canteens.result.objective <= result.bound + 1e-6
    assert result.objective >= (1 - 0.2) * five_canteens.result.objective - 1e-6
