"""Does the coordinate-system check catch GCJ-02, BD-09 and projected files declared as WGS-84, on real OSM streets?"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from coverage import coords, crs_check, ingest
from coverage._errors import InputDataError
from coverage.network import load_walk_arrays
from tests.conftest import shared_data

EXTRACTS = {
    "nanjing_xuanwu_sumo": "osm/nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
    "beijing_haidian_thu_pku": "osm/beijing_haidian_thu_pku/map.osm.pbf",
}


@pytest.fixture(scope="module", params=sorted(EXTRACTS))
def extract(request):
    """(name, network arrays) of a real OSM extract."""
    return request.param, load_walk_arrays(shared_data(EXTRACTS[request.param]), use_cache=False)


def beside_streets(net, *, n: int = 40, offset_m: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """
    WGS-84 points ``offset_m`` beside the middle of real streets, as facilities stand.

    The streets are every k-th of the network's stretches longer than 60 m
    (deterministic), the offset perpendicular to the street, alternately left
    and right.
    """
    geometry = net.edge_geometry[~net.edge_ferry]
    long_enough = geometry[shapely.length(geometry) > 60.0]
    chosen = long_enough[np.linspace(0, len(long_enough) - 1, n).round().astype(int)]
    middle = shapely.line_interpolate_point(chosen, 0.5, normalized=True)
    ahead = shapely.line_interpolate_point(chosen, shapely.length(chosen) / 2.0 + 1.0)
    dx = shapely.get_x(ahead) - shapely.get_x(middle)
    dy = shapely.get_y(ahead) - shapely.get_y(middle)
    norm = np.hypot(dx, dy)
    side = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    x = shapely.get_x(middle) - side * dy / norm * offset_m
    y = shapely.get_y(middle) + side * dx / norm * offset_m
    lon, lat = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def street_blocks_outline(net, *, radius_m: float = 400.0) -> shapely.Geometry:
    """A community-like WGS-84 outline: the street blocks whose centre lies within ``radius_m`` of the middle."""
    geometry = net.edge_geometry[~net.edge_ferry]
    blocks = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(geometry))))
    middle = shapely.points(*np.median(shapely.get_coordinates(geometry), axis=0))
    outline = shapely.union_all(blocks[shapely.distance(shapely.centroid(blocks), middle) < radius_m])
    to_degrees = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    return shapely.transform(outline, lambda xy: np.column_stack(to_degrees.transform(xy[:, 0], xy[:, 1])))


# ----------------------------------------------------------------------------- lon/lat systems


@pytest.mark.parametrize("truth", ["gcj02", "bd09"])
def test_a_gcj02_or_bd09_file_declared_wgs84_is_caught_and_its_system_named(extract, truth):
    name, net = extract
    lon, lat = beside_streets(net)
    file_lon, file_lat = coords.from_wgs84(lon, lat, truth)
    fit = crs_check.crs_fit(file_lon, file_lat, "wgs84", net)
    assert fit.verdict == "other_system" and fit.best == truth, (name, fit)
    # read in the right system the points are the 15 m off the street they were placed at
    assert fit.medians_m[truth] == pytest.approx(15.0, abs=1.0)
    assert fit.medians_m["wgs84"] > 2 * fit.medians_m[truth]
    assert fit.n_used == fit.n_points == 40
    with pytest.raises(InputDataError) as caught:
        crs_check.raise_if_implausible(fit, path="养老设施.xlsx", what="facilities", allow=False)
    text = str(caught.value)
    assert "养老设施.xlsx" in text and f"crs: {truth}" in text and "declared wgs84: median" in text
    assert crs_check.SYSTEM_LABELS[truth] in text and "parameters.crs_check: warn" in text


def test_the_figures_in_the_message_are_the_medians(extract):
    _, net = extract
    fit = crs_check.crs_fit(*coords.from_wgs84(*beside_streets(net), "gcj02"), "wgs84", net)
    assert fit.figures().startswith(f"declared wgs84: median {fit.medians_m['wgs84']:,.0f} m to the nearest street")
    assert f"gcj02: {fit.medians_m['gcj02']:,.0f} m" in fit.figures()


@pytest.mark.parametrize("truth", ["wgs84", "gcj02", "bd09"])
def test_a_correctly_declared_file_passes_with_a_note(extract, truth):
    _, net = extract
    file_lon, file_lat = coords.from_wgs84(*beside_streets(net), truth)
    fit = crs_check.crs_fit(file_lon, file_lat, truth, net)
    assert fit.verdict == "ok" and fit.best == truth and fit.plausible
    note = crs_check.raise_if_implausible(fit, path="f.csv", what="facilities", allow=False)
    assert f"coordinate system {truth} fits the streets" in note


def test_cgcs2000_is_measured_as_wgs84(extract):
    _, net = extract
    fit = crs_check.crs_fit(*beside_streets(net), "cgcs2000", net)
    assert fit.verdict == "ok" and fit.best == "wgs84" and fit.declared == "cgcs2000"


def test_a_wgs84_file_declared_gcj02_is_caught_too(extract):
    _, net = extract
    fit = crs_check.crs_fit(*beside_streets(net), "gcj02", net)
    assert fit.verdict == "other_system" and fit.best == "wgs84"
    # THU/PKU: the campus footways are so dense that the median alone (28 m against 15 m) would not tell;
    # the 75th percentile does (70 m against 15 m)
    assert fit.p75_m["gcj02"] > 2 * fit.p75_m["wgs84"]


def test_allow_goes_on_with_a_warning_note(extract):
    _, net = extract
    fit = crs_check.crs_fit(*coords.from_wgs84(*beside_streets(net), "gcj02"), "wgs84", net)
    note = crs_check.raise_if_implausible(fit, path="f.csv", what="facilities", allow=True)
    assert note.startswith("warning") and "gcj02" in note


def test_points_beside_streets_but_set_back_further_still_pass(extract):
    # 40 m off the street (a home set back inside its compound): no false alarm
    _, net = extract
    fit = crs_check.crs_fit(*beside_streets(net, offset_m=40.0), "wgs84", net)
    assert fit.verdict == "ok"


def test_points_far_from_the_network_are_inconclusive_not_an_error(extract):
    _, net = extract
    lon, lat = beside_streets(net)
    # the same pattern 30 km away: nothing of the network is near
    fit = crs_check.crs_fit(lon + 0.3, lat, "wgs84", net)
    assert fit.verdict == "inconclusive" and fit.n_used == 0
    assert "not checked" in crs_check.raise_if_implausible(fit, path="f.csv", what="facilities")


def test_too_few_points_give_no_verdict(extract):
    _, net = extract
    lon, lat = beside_streets(net)
    fit = crs_check.crs_fit(*coords.from_wgs84(lon[:3], lat[:3], "gcj02"), "wgs84", net)
    assert fit.verdict == "inconclusive" and fit.n_used == 3


# ----------------------------------------------------------------------------- metres, not degrees


@pytest.mark.parametrize("projection", ["EPSG:32650", "EPSG:4527", "EPSG:3857"])
def test_projected_metres_are_named_as_such_with_the_projection(extract, projection):
    # EPSG:4527 = CGCS2000 / 3-degree Gauss-Kruger zone 39 with its zone prefix (x ≈ 3.9e7)
    _, net = extract
    x, y = Transformer.from_crs("EPSG:4326", projection, always_xy=True).transform(*beside_streets(net))
    fit = crs_check.crs_fit(x, y, "wgs84", net)
    assert fit.verdict == "projected_metres" and fit.best == projection, fit.detail
    assert fit.medians_m[projection] == pytest.approx(15.0, abs=1.0)
    with pytest.raises(InputDataError, match="metres of a map projection"):
        crs_check.raise_if_implausible(fit, path="f.xlsx", what="facilities")


def test_gauss_kruger_without_zone_prefix_is_recognised(extract):
    _, net = extract
    lon, lat = beside_streets(net)
    # CGCS2000 / 3-degree Gauss-Kruger on the meridian nearest the area (117°E for Beijing, 120°E for Nanjing)
    meridian = 3 * round(float(np.median(lon)) / 3)
    code = f"EPSG:{4534 + (meridian - 75) // 3}"
    x, y = Transformer.from_crs("EPSG:4326", code, always_xy=True).transform(lon, lat)
    fit = crs_check.crs_fit(x, y, "wgs84", net)
    assert fit.verdict == "projected_metres" and fit.medians_m[code] == pytest.approx(15.0, abs=1.0)
    assert code in fit.detail


# ----------------------------------------------------------------------------- streets as the pipeline may have them


def test_every_street_form_gives_the_same_medians(extract):
    _, net = extract
    lon, lat = coords.from_wgs84(*beside_streets(net), "gcj02")
    reference = crs_check.crs_fit(lon, lat, "wgs84", net).medians_m
    lines = gpd.GeoSeries(net.edge_geometry[~net.edge_ferry], crs=net.crs).to_crs("EPSG:4326")
    for streets in (lines, gpd.GeoDataFrame(geometry=lines), shapely.STRtree(np.asarray(lines.values)),
                    np.asarray(lines.values)):
        medians = crs_check.crs_fit(lon, lat, "wgs84", streets).medians_m
        for system, value in reference.items():
            assert medians[system] == pytest.approx(value, abs=0.5), (type(streets), system)


def test_street_points_are_enough_to_catch_the_shift(extract):
    _, net = extract
    # street points every 10 m as (lon, lat) pairs, as a user may have them instead of lines
    dense = shapely.segmentize(net.edge_geometry[~net.edge_ferry], 10.0)
    vertices = shapely.get_coordinates(gpd.GeoSeries(dense, crs=net.crs).to_crs("EPSG:4326").values)
    fit = crs_check.crs_fit(*coords.from_wgs84(*beside_streets(net), "gcj02"), "wgs84", vertices)
    assert fit.verdict == "other_system" and fit.best == "gcj02"


def test_a_geoseries_without_crs_is_refused():
    with pytest.raises(ValueError, match="no CRS"):
        crs_check.streets_from(gpd.GeoSeries([shapely.LineString([(0, 0), (1, 1)])]))


# ----------------------------------------------------------------------------- facilities and units as read


def test_facilities_read_from_a_gcj02_file_declared_wgs84(extract, tmp_path):
    _, net = extract
    lon, lat = coords.from_wgs84(*beside_streets(net), "gcj02")
    path = tmp_path / "facilities.csv"
    pd.DataFrame({"名称": [f"幸福院{i}" for i in range(len(lon))], "类型": "农村幸福院",
                  "经度": np.round(lon, 6), "纬度": np.round(lat, 6)}).to_csv(path, index=False, encoding="utf-8-sig")
    facilities, _, _ = ingest.read_facilities(path, crs="wgs84")
    assert len(facilities) == len(lon)
    fit = crs_check.check_facility_crs(facilities, "wgs84", net)
    assert fit.verdict == "other_system" and fit.best == "gcj02"
    right, _, _ = ingest.read_facilities(path, crs="gcj02")
    assert crs_check.check_facility_crs(right, "gcj02", net).verdict == "ok"


def test_rows_naming_their_own_system_are_said_to_govern_when_the_study_declares_another(extract, tmp_path):
    # a bureau list whose 坐标系 column says GCJ-02 on every row, declared bd09 in the study: the rows' own cells
    # govern, so nothing is measured against bd09, and the note says why rather than "0 of 0 points"
    _, net = extract
    lon, lat = coords.from_wgs84(*beside_streets(net), "gcj02")
    path = tmp_path / "facilities.csv"
    table = pd.DataFrame({"名称": [f"幸福院{i}" for i in range(len(lon))], "类型": "农村幸福院",
                          "经度": np.round(lon, 6), "纬度": np.round(lat, 6), "坐标系": "GCJ-02"})
    table.to_csv(path, index=False, encoding="utf-8-sig")
    facilities, _, _ = ingest.read_facilities(path, crs="bd09")
    fit = crs_check.check_facility_crs(facilities, "bd09", net)
    assert (fit.n_points, fit.n_own_system) == (0, len(lon))
    note = crs_check.raise_if_implausible(fit, path=path, what="facilities")
    assert f"applies to no row: all {len(lon)} rows" in note and "0 of 0" not in note
    # half the rows in WGS-84 without the cell: those are measured in the declared wgs84, the others counted apart
    half = len(lon) // 2
    wgs_lon, wgs_lat = beside_streets(net)
    table.loc[: half - 1, "经度"] = np.round(wgs_lon[:half], 6)
    table.loc[: half - 1, "纬度"] = np.round(wgs_lat[:half], 6)
    table.loc[: half - 1, "坐标系"] = ""
    table.to_csv(path, index=False, encoding="utf-8-sig")
    mixed, _, _ = ingest.read_facilities(path, crs="wgs84")
    fit = crs_check.check_facility_crs(mixed, "wgs84", net)
    assert (fit.n_points, fit.n_own_system, fit.verdict) == (half, len(lon) - half, "ok")
    assert f"{len(lon) - half} rows name their own system" in crs_check.raise_if_implausible(
        fit, path=path, what="facilities")


def test_a_units_outline_in_gcj02_declared_wgs84_is_caught(extract, tmp_path):
    _, net = extract
    outline = street_blocks_outline(net)
    in_gcj02 = coords.transform_geometries(gpd.GeoSeries([outline], crs="EPSG:4326"), "wgs84", "gcj02")
    path = tmp_path / "units.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": shapely.geometry.mapping(in_gcj02.iloc[0]),
        "properties": {"code": "320102001001", "name": "示例社区", "level": "village"}}]}), encoding="utf-8")
    units = ingest.read_units(path, crs="wgs84")
    fit = crs_check.check_units_crs(units, "wgs84", net)
    assert fit.verdict == "other_system" and fit.best == "gcj02", fit
    assert fit.medians_m["gcj02"] < 2.0 and fit.n_used >= 100
    with pytest.raises(InputDataError, match="crs: gcj02"):
        crs_check.raise_if_implausible(fit, path=path, what="units")
    # read as what it is, the outline lies on its streets
    fit = crs_check.check_units_crs(ingest.read_units(path, crs="gcj02"), "gcj02", net)
    assert fit.verdict == "ok" and fit.medians_m["gcj02"] < 2.0


def test_unit_points_are_measured_like_facilities(extract):
    _, net = extract
    lon, lat = beside_streets(net)
    # village points as ingest.read_units gives them from a BD-09 table declared WGS-84 (read unconverted)
    file_lon, file_lat = coords.from_wgs84(lon, lat, "bd09")
    units = gpd.GeoDataFrame({"level": ["village"] * len(file_lon)}, geometry=shapely.points(file_lon, file_lat),
                             crs="EPSG:4326")
    fit = crs_check.check_units_crs(units, "wgs84", net)
    assert fit.verdict == "other_system" and fit.best == "bd09"
