"""Tests of coverage.population on the real WorldPop, census, boundary and OSM data in ../shared/data."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from coverage import census_tables, dwellings, population
from coverage._errors import InputDataError
from coverage.coords import gcj02_to_wgs84, utm_crs_for

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
WUHAN_BANDS = DATA / "population" / "wuhan_worldpop_agesex"
COUNTIES = DATA / "admin" / "fastgeocn_county" / "target_counties_tianditu.geojson"
CENSUS_2020 = DATA / "census" / "leiii_census" / "census_county_2020_v1.xlsx"
CENSUS_CHECK = DATA / "census" / "leiii_census" / "target_counties_2020_age60plus.csv"
ADMIN_POINTS = DATA / "admin" / "vonng_adcode" / "admin_points_gcj02.geojson"
NANJING_OSM = DATA / "osm" / "nanjing_xuanwu_sumo" / "osm_bbox.osm.xml"

pytestmark = [
    pytest.mark.skipif(
        not DATA.is_dir(), reason=f"reference data folder {DATA} is absent (it sits beside the checkout in CI)"
    ),
    # rasterio 1.4 still multiplies Affine objects with `*`, which affine 3 flags
    pytest.mark.filterwarnings("ignore:Use `@` matmul instead of `\\*` mul:PendingDeprecationWarning"),
]

JIANGHAN = "420103"
JIANGHAN_CENSUS_60PLUS = 127_952
SMALL_WINDOW = (114.25, 30.55, 114.30, 30.60)  # 0.05° square in Hankou, degrees
WUHAN_UTM = utm_crs_for(114.3, 30.6)


def _band_files() -> list[Path]:
    return sorted(WUHAN_BANDS.glob("pop_*_[fm]_wuhan.tif"))


@pytest.fixture(scope="module")
def raster_60() -> population.ElderlyRaster:
    return population.read_elderly_raster(WUHAN_BANDS)


@pytest.fixture(scope="module")
def districts() -> gpd.GeoDataFrame:
    counties = gpd.read_file(COUNTIES)
    wuhan = counties[counties["gb"].astype(str).str.startswith("156420")]
    return wuhan.rename(columns={"gb": "code"}).reset_index(drop=True)


@pytest.fixture(scope="module")
def jianghan(districts) -> gpd.GeoDataFrame:
    return districts[districts["code"].astype(str) == "156" + JIANGHAN].reset_index(drop=True)


@pytest.fixture(scope="module")
def census() -> pd.DataFrame:
    return census_tables.read_census_60plus(CENSUS_2020)


def _rasterio_mask_sum(geometry, *, supersample: int = 1) -> float:
    """60+ persons inside ``geometry`` by rasterio.mask over the 10 band files (cell centre rule).

    With ``supersample`` k > 1 every cell is read as k × k sub-cells (nearest
    resampling through a WarpedVRT, each holding 1/k² of the cell), so edge
    cells count with about the share of their area inside the outline.
    """
    total = 0.0
    for path in _band_files():
        with rasterio.open(path) as source:
            if supersample == 1:
                values, _ = rasterio.mask.mask(source, [geometry], crop=True, filled=False)
            else:
                fine = source.transform @ source.transform.scale(1 / supersample)
                with WarpedVRT(
                    source,
                    crs=source.crs,
                    transform=fine,
                    width=source.width * supersample,
                    height=source.height * supersample,
                    resampling=Resampling.nearest,
                ) as virtual:
                    values, _ = rasterio.mask.mask(virtual, [geometry], crop=True, filled=False)
            persons = values.astype(np.float64).filled(0.0)
            persons[persons < 0] = 0.0
            total += persons.sum() / supersample**2
    return total


# ------------------------------------------------------------------ reading bands


def test_age_groups_use_the_right_bands(raster_60):
    raster_65 = population.read_elderly_raster(WUHAN_BANDS, age_group="65+")
    raster_80 = population.read_elderly_raster(WUHAN_BANDS, age_group="80+")
    assert raster_60.bands_used == [p.name for p in _band_files()]
    assert len(raster_65.bands_used) == 8 and not any(name.startswith("pop_60_") for name in raster_65.bands_used)
    assert raster_80.bands_used == ["pop_80_f_wuhan.tif", "pop_80_m_wuhan.tif"]
    assert raster_80.total < raster_65.total < raster_60.total
    assert np.all(raster_65.persons <= raster_60.persons + 1e-9)
    assert raster_60.persons.dtype == np.float64 and raster_60.persons.min() >= 0.0  # nodata −3.4e38 → 0
    assert raster_60.shape == (1668, 1662) and raster_60.crs.to_epsg() == 4326


def test_full_read_equals_plain_rasterio_sum(raster_60):
    direct = 0.0
    for path in _band_files():
        with rasterio.open(path) as source:
            values = source.read(1, masked=True).astype(np.float64)
            direct += values[values >= 0].sum()
    assert raster_60.total == pytest.approx(direct, rel=1e-12)


def test_missing_band_is_named(tmp_path):
    for path in _band_files():
        if path.name != "pop_70_m_wuhan.tif":
            (tmp_path / path.name).symlink_to(path)
    with pytest.raises(InputDataError, match="pop_70_m_wuhan.tif"):
        population.read_elderly_raster(tmp_path)
    with pytest.raises(InputDataError, match="pop_70_m_wuhan.tif"):
        population.read_elderly_raster(sorted(tmp_path.iterdir()), age_group="65+")
    # 80+ does not need the 70–74 band
    assert population.read_elderly_raster(tmp_path, age_group="80+").total > 0


def test_worldpop_native_file_names(tmp_path, raster_60):
    for path in _band_files():
        _, age, sex, _ = path.stem.split("_")
        (tmp_path / f"chn_{sex}_{age}_2020.tif").symlink_to(path)
    native = population.read_elderly_raster(tmp_path)
    assert native.total == pytest.approx(raster_60.total, rel=1e-12)
    assert native.bands_used[0] == "chn_f_60_2020.tif"


def test_rasters_on_different_grids_are_rejected(tmp_path):
    for path in _band_files():
        if path.name != "pop_75_f_wuhan.tif":
            (tmp_path / path.name).symlink_to(path)
    with rasterio.open(WUHAN_BANDS / "pop_75_f_wuhan.tif") as source:
        profile = source.profile | {"width": source.width - 1}
        values = source.read(1)[:, :-1]
    with rasterio.open(tmp_path / "pop_75_f_wuhan.tif", "w", **profile) as shifted:
        shifted.write(values, 1)
    with pytest.raises(InputDataError, match="does not share the grid"):
        population.read_elderly_raster(tmp_path)


def test_unknown_file_name_in_a_list_is_an_error():
    with pytest.raises(InputDataError, match="age and sex"):
        population.read_elderly_raster([WUHAN_BANDS / "wuhan-boundary.shp"])
    with pytest.raises(ValueError, match="age_group"):
        population.read_elderly_raster(WUHAN_BANDS, age_group="62+")


# ------------------------------------------------------------------ windows


def test_small_window_sum_matches_rasterio():
    window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
    minx, miny, maxx, maxy = window.bounds
    cell = window.transform.a
    # rounded outwards: covers the request, by less than one cell on each side
    assert minx <= SMALL_WINDOW[0] < minx + cell and maxx - cell < SMALL_WINDOW[2] <= maxx
    assert miny <= SMALL_WINDOW[1] < miny + cell and maxy - cell < SMALL_WINDOW[3] <= maxy
    direct = _rasterio_mask_sum(shapely.box(*window.bounds).buffer(-cell / 4))
    assert window.total == pytest.approx(direct, rel=1e-9)
    assert window.total > 10_000  # central Hankou is dense


def test_windowed_read_memory_is_proportional_to_the_window(raster_60):
    tracemalloc.start()
    try:
        window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
        _, window_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_bytes = raster_60.persons.nbytes
    assert window.persons.nbytes < full_bytes / 500
    assert window_peak < full_bytes / 50, f"peak {window_peak} B for the window vs {full_bytes} B for the full grid"


def test_pad_widens_the_window_by_at_least_the_walk():
    pad_m = 1200.0
    padded = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW, pad_m=pad_m)
    to_metres = gpd.GeoSeries([shapely.box(*SMALL_WINDOW), shapely.box(*padded.bounds)], crs=4326).to_crs(WUHAN_UTM)
    request, read = to_metres.iloc[0].bounds, to_metres.iloc[1].bounds
    gaps = [request[0] - read[0], request[1] - read[1], read[2] - request[2], read[3] - request[3]]
    assert min(gaps) >= pad_m - 1.0 and max(gaps) < pad_m * 1.05 + 100.0


def test_window_outside_the_rasters_is_an_error():
    with pytest.raises(InputDataError, match="does not overlap"):
        population.read_elderly_raster(WUHAN_BANDS, bounds=(118.75, 32.03, 118.80, 32.06))


def test_demand_points_are_populated_cell_centres():
    window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
    points = population.demand_points(window, WUHAN_UTM)
    assert list(points.columns[:6]) == ["demand_id", "elderly", "row", "col", "lon", "lat"]
    assert points["demand_id"].tolist() == list(range(len(points)))
    assert np.all(np.diff(points["row"] * window.shape[1] + points["col"]) > 0)  # row-major
    assert len(points) == int((window.persons > 0).sum())
    assert points["elderly"].sum() == pytest.approx(window.total, rel=1e-12)
    lon, lat = window.transform @ (points["col"].to_numpy() + 0.5, points["row"].to_numpy() + 0.5)
    np.testing.assert_allclose(points["lon"], lon, atol=1e-12)
    np.testing.assert_allclose(points["lat"], lat, atol=1e-12)
    assert points.crs == WUHAN_UTM
    back = points.geometry.to_crs(4326)
    np.testing.assert_allclose(back.x, lon, atol=1e-8)
    assert set(points["method"]) == {"raster"}


# ------------------------------------------------------------------ zonal totals


def test_jianghan_zonal_total_matches_rasterio_mask(raster_60, jianghan):
    ours = population.zonal_totals(raster_60, jianghan)
    assert ours["code"].tolist() == [JIANGHAN]
    outline = jianghan.geometry.iloc[0]
    # same convention (share of cell area inside), computed by rasterio.mask on a 10× finer grid
    area_weighted = _rasterio_mask_sum(outline, supersample=10)
    assert ours["elderly"].iloc[0] == pytest.approx(area_weighted, rel=1e-3)
    # plain rasterio.mask (whole cell when its centre is inside) differs only by edge cells
    centre_rule = _rasterio_mask_sum(outline)
    assert ours["elderly"].iloc[0] == pytest.approx(centre_rule, rel=5e-3)
    assert 90_000 < centre_rule < 100_000  # README: WorldPop has 94.5k over-60s in Jianghan


def test_districts_add_up_to_the_study_total(raster_60, districts):
    per_district = population.zonal_totals(raster_60, districts)
    assert len(per_district) == 13 and per_district["code"].str.fullmatch(r"4201\d\d").all()
    study = gpd.GeoDataFrame({"code": ["wuhan"]}, geometry=[districts.union_all()], crs=districts.crs)
    study_total = population.zonal_totals(raster_60, study)["elderly"].iloc[0]
    assert per_district["elderly"].sum() == pytest.approx(study_total, rel=1e-3)
    assert per_district["elderly"].sum() == pytest.approx(raster_60.total, rel=5e-3)  # other outline of Wuhan


# ------------------------------------------------------------------ census and calibration


def test_census_reader_matches_the_published_subset(census):
    jianghan_row = census[census["code"] == JIANGHAN].iloc[0]
    assert jianghan_row["elderly"] == JIANGHAN_CENSUS_60PLUS and jianghan_row["level"] == "county"
    assert census.set_index("code").loc["420100", "level"] == "city"
    assert census.set_index("code").loc["420000", "level"] == "province"
    check = pd.read_csv(CENSUS_CHECK)
    check["code"] = check["区划代码"].astype(int).astype(str)
    merged = check.merge(census, on="code", how="left")
    np.testing.assert_array_equal(merged["elderly"], merged["pop60p"])
    # the city row is the sum of its districts: summing both levels would double count
    wuhan_districts = census[(census["code"].str.startswith("4201")) & (census["level"] == "county")]
    assert wuhan_districts["elderly"].sum() == census.set_index("code").loc["420100", "elderly"]


def test_census_65plus_matches_the_published_subset(census):
    census_65 = census_tables.read_census_60plus(CENSUS_2020, age_group="65+")
    check = pd.read_csv(CENSUS_CHECK)
    check["code"] = check["区划代码"].astype(int).astype(str)
    merged = check.merge(census_65, on="code")
    np.testing.assert_array_equal(merged["elderly"], merged["pop65p"])
    both = census.merge(census_65, on="code", suffixes=("_60", "_65")).dropna()
    assert (both["elderly_65"] < both["elderly_60"]).all()


def test_a_census_workbook_cut_short_by_a_download_is_named_with_what_to_do(tmp_path):
    from coverage._errors import InputDataError

    cut = tmp_path / "census_2020.xlsx"
    cut.write_bytes(Path(CENSUS_2020).read_bytes()[:4000])
    with pytest.raises(InputDataError, match="cannot be opened") as failure:
        census_tables.read_census_60plus(cut)
    assert "census_2020.xlsx" in str(failure.value)


def test_calibration_brings_every_district_to_its_census_total(raster_60, districts, census):
    demand = population.demand_points(raster_60, WUHAN_UTM)
    calibrated, factors = population.calibrate_to_totals(demand, districts, census[census["level"] == "county"])

    by_zone = calibrated.groupby("zone_code")["elderly"].sum()
    assert by_zone[JIANGHAN] == pytest.approx(JIANGHAN_CENSUS_60PLUS, abs=1.0)
    expected = census.set_index("code")["elderly"].reindex(by_zone.index)
    np.testing.assert_allclose(by_zone, expected, atol=1.0)

    table = factors.set_index("code")
    # the raster totals are the partial-cell zonal totals
    zonal = population.zonal_totals(raster_60, districts).set_index("code")["elderly"]
    np.testing.assert_allclose(table.loc[zonal.index, "raster_total"], zonal, rtol=1e-9)
    assert table.loc[JIANGHAN, "factor"] == pytest.approx(JIANGHAN_CENSUS_60PLUS / zonal[JIANGHAN])
    assert table.loc[JIANGHAN, "warning"] == ""
    assert "outside 0.67–1.5" in table.loc["420104", "warning"]  # Qiaokou: 144k census vs 86k raster
    # people outside all districts are untouched and reported
    outside = calibrated[calibrated["zone_code"].isna()]
    assert outside["elderly"].sum() == pytest.approx(table.loc["outside", "raster_total"])
    assert (outside["factor"] == 1.0).all()
    # splitting edge cells loses nobody: uncalibrated parts add up to the raster
    assert (calibrated["elderly"] / calibrated["factor"]).sum() == pytest.approx(raster_60.total, rel=1e-9)
    assert calibrated["demand_id"].tolist() == list(range(len(calibrated)))
    # split parts sit inside their own district
    jianghan_m = districts[districts["code"] == "156" + JIANGHAN].to_crs(WUHAN_UTM).geometry.iloc[0]
    parts = calibrated[(calibrated["zone_code"] == JIANGHAN) & (calibrated["cell_share"] < 1)]
    assert len(parts) > 100
    assert shapely.contains_xy(jianghan_m.buffer(0.5), parts.geometry.x, parts.geometry.y).all()


def test_calibrating_a_window_leaves_outside_cells_alone(jianghan):
    window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
    demand = population.demand_points(window, WUHAN_UTM)
    calibrated, factors = population.calibrate_to_totals(demand, jianghan, {JIANGHAN: JIANGHAN_CENSUS_60PLUS})
    inside = population.zonal_totals(window, jianghan)["elderly"].iloc[0]
    table = factors.set_index("code")
    assert table.loc[JIANGHAN, "raster_total"] == pytest.approx(inside, rel=1e-9)
    assert table.loc["outside", "raster_total"] == pytest.approx(window.total - inside, rel=1e-9)
    assert calibrated["elderly"].sum() == pytest.approx(JIANGHAN_CENSUS_60PLUS + window.total - inside, rel=1e-9)


def test_overlapping_zones_are_rejected(raster_60, districts):
    jiangan_jianghan = districts[districts["code"].isin(["156420102", "156" + JIANGHAN])]
    both = gpd.GeoDataFrame({"code": ["420199"]}, geometry=[jiangan_jianghan.union_all()], crs=districts.crs)
    zones = pd.concat([jiangan_jianghan[["code", "geometry"]], both], ignore_index=True)
    window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
    with pytest.raises(InputDataError, match="zones overlap"):
        population.calibrate_to_totals(population.demand_points(window, WUHAN_UTM), zones, {"420199": 1.0})


# ------------------------------------------------------------------ fallback without a raster


@pytest.fixture(scope="module")
def nanjing_buildings() -> gpd.GeoDataFrame:
    return dwellings.read_osm_buildings(NANJING_OSM)


def test_read_osm_buildings(nanjing_buildings):
    assert 1200 < len(nanjing_buildings) < 1400  # README: 1279 buildings
    assert nanjing_buildings.crs.to_epsg() == 4326
    assert set(nanjing_buildings.geom_type) <= {"Polygon", "MultiPolygon"}
    assert nanjing_buildings.is_valid.all()
    assert {"residential", "non_residential", "unknown"} == set(nanjing_buildings["use"])
    assert (nanjing_buildings.loc[nanjing_buildings["building"] == "school", "use"] == "non_residential").all()
    from_pbf = dwellings.read_osm_buildings(NANJING_OSM.with_suffix("").with_suffix(".osm.pbf"))
    assert sorted(from_pbf["osm_id"]) == sorted(nanjing_buildings["osm_id"])


def test_building_fallback_puts_everyone_on_a_home(nanjing_buildings):
    west = shapely.box(118.760, 32.034, 118.778, 32.053)
    east = shapely.box(118.778, 32.034, 118.797, 32.053)
    empty = shapely.box(118.805, 32.036, 118.815, 32.045)  # east of the OSM extract: no buildings
    zones = gpd.GeoDataFrame({"code": ["west", "east", "empty"]}, geometry=[west, east, empty], crs=4326)
    totals = {"west": 12_000.0, "east": 9_000.0, "empty": 500.0}
    points = dwellings.distribute_to_buildings(zones, totals, nanjing_buildings)

    per_zone = points.groupby("zone_code")["elderly"].sum()
    for code, total in totals.items():
        assert per_zone[code] == pytest.approx(total, rel=1e-12)
    assert set(points.loc[points["zone_code"] != "empty", "method"]) == {"buildings"}
    assert set(points.loc[points["zone_code"] == "empty", "method"]) == {"uniform"}

    on_buildings = points[points["method"] == "buildings"]
    homes = nanjing_buildings[nanjing_buildings["use"] == "residential"].to_crs(points.crs)
    tree = shapely.STRtree(np.asarray(homes.geometry.values))
    point_index, home_index = tree.query(np.asarray(on_buildings.geometry.values), predicate="within")
    assert np.unique(point_index).size == len(on_buildings)  # every person stands on a home
    # area weighting: each home of a zone holds the zone total × its share of the zone's footprint area
    west_m = zones.to_crs(points.crs).geometry.iloc[0]
    west_homes = homes[shapely.contains(west_m, shapely.point_on_surface(np.asarray(homes.geometry.values)))]
    expected = np.sort(totals["west"] * west_homes.area.to_numpy() / west_homes.area.sum())
    actual = np.sort(on_buildings.loc[on_buildings["zone_code"] == "west", "elderly"].to_numpy())
    np.testing.assert_allclose(actual, expected, rtol=1e-9)

    uniform = points[points["method"] == "uniform"]
    empty_m = zones.to_crs(points.crs).geometry.iloc[2]
    assert shapely.contains_xy(empty_m, uniform.geometry.x, uniform.geometry.y).all()
    assert 50 < len(uniform) < 120  # ≈ 940 m × 1 km at 100 m spacing
    assert points["demand_id"].tolist() == list(range(len(points)))
    assert points["row"].isna().all()


# ------------------------------------------------------------------ administrative units


@pytest.fixture(scope="module")
def wuhan_units(districts) -> gpd.GeoDataFrame:
    """County polygons (WGS-84) with town and village points (converted from GCJ-02), per the units contract."""
    counties = gpd.GeoDataFrame(
        {
            "code": districts["code"].astype(str).str[3:] + "000000",
            "name": districts["name"],
            "level": "county",
            "parent_code": "420100000000",
        },
        geometry=districts.geometry.to_crs(4326).values,
        crs=4326,
    )
    points = gpd.read_file(ADMIN_POINTS)
    points = points[points["code"].astype(str).str.startswith("4201") & points["level"].isin(["town", "village"])]
    lon, lat = gcj02_to_wgs84(points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    ur_code = pd.to_numeric(points["ur_code"], errors="coerce").astype("Int64")
    others = gpd.GeoDataFrame(
        {
            "code": points["code"].astype(str).to_numpy(),
            "name": points["name"].to_numpy(),
            "level": points["level"].to_numpy(),
            "parent_code": points["parent"].astype(str).to_numpy(),
            "ur_code": ur_code.to_numpy(),
            "urban": (ur_code < 200).to_numpy(),
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs=4326,
    )
    return pd.concat([counties, others], ignore_index=True)


def test_assign_units_with_county_polygons_and_village_points(wuhan_units):
    window = population.read_elderly_raster(WUHAN_BANDS, bounds=SMALL_WINDOW)
    demand = population.demand_points(window, WUHAN_UTM)
    assigned = population.assign_units(demand, wuhan_units)

    assert {"village_code", "town_code", "county_code", "urban"} <= set(assigned.columns)
    assert assigned["county_code"].notna().all()
    in_jianghan = assigned["county_code"] == JIANGHAN + "000000"
    assert 0.2 < in_jianghan.mean() < 0.9
    # villages come from the demand point's own county, and town codes from the village's parent
    villages = assigned.dropna(subset=["village_code"])
    assert len(villages) > 0.9 * len(assigned)
    assert (villages["village_code"].str[:6] == villages["county_code"].str[:6]).all()
    assert (villages["town_code"] == villages["village_code"].str[:9] + "000").all()
    # nearest village point of that county
    village_points = wuhan_units[wuhan_units["level"] == "village"].to_crs(WUHAN_UTM)
    sample = villages.iloc[:: max(len(villages) // 50, 1)]
    for point, county, village in zip(sample.geometry, sample["county_code"], sample["village_code"]):
        same_county = village_points[village_points["parent_code"].str[:6] == county[:6]]
        nearest = same_county.iloc[int(np.argmin(same_county.distance(point)))]["code"]
        assert village == nearest
    assert str(assigned["urban"].dtype) == "boolean"
    assert assigned.loc[villages.index, "urban"].notna().mean() > 0.9
