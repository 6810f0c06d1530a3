"""Tests of the synthetic demo generator (coverage.demo) and of the committed demo files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pytest
import rasterio
import shapely
from pyproj import Transformer

from coverage import demo
from coverage.config import load_study
from coverage.coords import gcj02_to_wgs84

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- helpers -----------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """One fresh generation, shared by the tests of this module."""
    return demo.make_demo(tmp_path_factory.mktemp("demo_a"))


def _root_of(written: dict[str, Path]) -> Path:
    return written["study"].parent.parent


def _xlsx_content(path: Path) -> list:
    workbook = openpyxl.load_workbook(path)
    return [
        (sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)],
         sorted(str(r) for r in sheet.merged_cells.ranges))
        for sheet in workbook.worksheets
    ]


def _raster_content(path: Path) -> tuple:
    with rasterio.open(path) as src:
        return src.read(1), src.crs.to_epsg(), tuple(src.transform), src.nodata, src.tags(), src.descriptions


def _differences(first: dict[str, Path], second: dict[str, Path]) -> list[str]:
    """Keys whose files differ: bytes for text files, arrays for rasters, cell values for Excel."""
    assert sorted(first) == sorted(second)
    different = []
    for key in sorted(first):
        a, b = first[key], second[key]
        if a.suffix == ".tif":
            ra, rb = _raster_content(a), _raster_content(b)
            same = np.array_equal(ra[0], rb[0]) and ra[1:] == rb[1:]
        elif a.suffix == ".xlsx":
            same = _xlsx_content(a) == _xlsx_content(b)
        else:
            same = a.read_bytes() == b.read_bytes()
        if not same:
            different.append(key)
    return different


@pytest.fixture(scope="module")
def osm_content(generated) -> tuple[dict[int, tuple[float, float]], list[tuple[int, list[int], dict]], list[str]]:
    """Nodes, ways and the order of object types of the generated OSM file (read with pyosmium)."""
    import osmium

    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict]] = []
    order: list[str] = []
    for obj in osmium.FileProcessor(str(generated["network"])):
        if obj.is_node():
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
            order.append("n")
            assert obj.version == 1
        elif obj.is_way():
            ways.append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
            order.append("w")
            assert obj.version == 1
    return nodes, ways, order


def _walkable(tags: dict) -> bool:
    return tags.get("highway") in demo.WALKABLE_HIGHWAYS


def _components(ways: list[tuple[int, list[int], dict]], with_ferry: bool) -> dict[int, int]:
    """Union-find component root of every node on walkable ways (and ferries if asked)."""
    parent: dict[int, int] = {}

    def find(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for _, refs, tags in ways:
        if _walkable(tags) or (with_ferry and tags.get("route") == "ferry"):
            for u, v in zip(refs[:-1], refs[1:]):
                parent[find(u)] = find(v)
    return {node: find(node) for node in list(parent)}


# --- determinism and committed files -----------------------------------------


def test_generator_is_deterministic(generated, tmp_path):
    again = demo.make_demo(tmp_path)
    root_a, root_b = _root_of(generated), _root_of(again)
    assert {k: p.relative_to(root_a) for k, p in generated.items()} == {
        k: p.relative_to(root_b) for k, p in again.items()
    }
    assert _differences(generated, again) == []


def test_committed_files_equal_a_fresh_generation(generated):
    root = _root_of(generated)
    committed = {key: REPO_ROOT / path.relative_to(root) for key, path in generated.items()}
    missing = [str(p) for p in committed.values() if not p.exists()]
    assert not missing, f"demo files missing; run `python -m coverage.demo`: {missing}"
    assert _differences(generated, committed) == [], (
        "the committed demo files differ from coverage.demo's output: do not edit them by hand, "
        "change coverage/demo/ and run `python -m coverage.demo`"
    )


# --- walking network -----------------------------------------------------------


def test_osm_file_has_the_expected_structure_and_traps(generated, osm_content):
    import osmium

    nodes, ways, order = osm_content
    assert generated["network"].stat().st_size < 3_000_000
    box = osmium.io.Reader(str(generated["network"])).header().box()
    assert box.valid() and box.contains(osmium.osm.Location(demo.CENTRE_LON, demo.CENTRE_LAT))
    assert 1000 < len(nodes) < 6000
    assert order == sorted(order), "all nodes must come before the ways"
    assert min(nodes) > 0 and min(w[0] for w in ways) > 0
    # every way carries tags, except the rings of the river's water multipolygon (as OSM maps them)
    relations = [(dict(obj.tags), [(m.type, m.ref, m.role) for m in obj.members])
                 for obj in osmium.FileProcessor(str(generated["network"]), osmium.osm.RELATION)]
    assert [tags for tags, _ in relations] == [{"type": "multipolygon", "natural": "water", "water": "river",
                                                "name": demo.RIVER_NAME}]
    ring_ways = {ref for _, members in relations for kind, ref, _ in members if kind == "w"}
    assert sorted(role for _, members in relations for _, _, role in members) == ["inner", "outer"]
    assert {way_id for way_id, _, tags in ways if not tags} == ring_ways
    assert all(ref in nodes for _, refs, _ in ways for ref in refs)

    ferries = [tags for _, _, tags in ways if tags.get("route") == "ferry"]
    assert len(ferries) == 1 and "highway" not in ferries[0]
    assert any(tags.get("waterway") == "river" for _, _, tags in ways)
    walkable_bridges = [tags for _, _, tags in ways if tags.get("bridge") == "yes" and _walkable(tags)]
    assert 2 <= len(walkable_bridges) <= 3
    assert any(tags.get("highway") == "motorway" for _, _, tags in ways)
    assert any(tags.get("highway") == "construction" for _, _, tags in ways)
    assert sum(tags.get("building") == "yes" and refs[0] == refs[-1] for _, refs, tags in ways) > 100
    assert any(tags.get("landuse") == "residential" for _, _, tags in ways)
    highways = {tags.get("highway") for _, _, tags in ways}
    assert {"primary", "secondary", "residential", "footway", "living_street", "pedestrian",
            "unclassified", "track", "path"} <= highways


def test_river_is_crossed_on_foot_only_at_bridges(osm_content):
    nodes, ways, _ = osm_content
    river = next(refs for _, refs, tags in ways if tags.get("waterway") == "river")
    river_line = shapely.LineString([nodes[n] for n in river])
    for _, refs, tags in ways:
        if _walkable(tags) and shapely.LineString([nodes[n] for n in refs]).intersects(river_line):
            assert tags.get("bridge") == "yes", f"walkable way {tags} crosses the river without a bridge"
    # the motorway and the bridge under construction also cross, but are not walkable
    crossing_non_walkable = {
        tags.get("highway") for _, refs, tags in ways
        if tags.get("highway") and not _walkable(tags)
        and shapely.LineString([nodes[n] for n in refs]).intersects(river_line)
    }
    assert crossing_non_walkable == {"motorway", "construction"}


def test_island_is_reached_only_by_ferry(osm_content):
    _, ways, _ = osm_content
    on_foot = _components(ways, with_ferry=False)
    with_ferry = _components(ways, with_ferry=True)
    assert len(set(on_foot.values())) == 2
    assert len(set(with_ferry.values())) == 1
    ferry = next(refs for _, refs, tags in ways if tags.get("route") == "ferry")
    # both ends of the ferry lie on walkable ways, one on the island and one on the mainland
    assert ferry[0] in on_foot and ferry[-1] in on_foot
    assert on_foot[ferry[0]] != on_foot[ferry[-1]]


# --- administrative units ------------------------------------------------------


@pytest.fixture(scope="module")
def units(generated) -> gpd.GeoDataFrame:
    return gpd.read_file(generated["units"])


def test_units_are_valid_and_nest(units):
    assert units.crs.to_epsg() == 4326
    assert units.is_valid.all()
    assert set(units["level"]) == {"county", "town", "village"}
    assert (units["code"].str.len() == 12).all() and units["code"].is_unique
    assert (units["name"] == units["名称"]).all()
    county = units[units["level"] == "county"]
    assert county["code"].tolist() == ["429901000000"] and county["名称"].tolist() == ["示例县（合成）"]
    towns = units[units["level"] == "town"]
    assert set(towns["parent_code"]) == {"429901000000"}
    tolerance = 1e-9  # square degrees, ≈ 0.01 m²: rounding noise only
    county_geom = county.geometry.iloc[0]
    assert shapely.union_all(towns.geometry.values).symmetric_difference(county_geom).area < 1e-7 * county_geom.area
    for _, town in towns.iterrows():
        members = units[units["parent_code"] == town["code"]]
        for village in members.geometry:
            assert village.difference(town.geometry).area < tolerance
        union = shapely.union_all(members.geometry.values)
        assert union.symmetric_difference(town.geometry).area < 1e-7 * town.geometry.area
        overlap = float(shapely.area(members.geometry.values).sum()) - union.area
        assert overlap < 1e-7 * town.geometry.area


def test_units_have_the_intended_hierarchy(units):
    streets = units[units["name"].str.endswith("街道")]
    assert 3 <= len(streets) <= 4
    for code in streets["code"]:
        communities = units[units["parent_code"] == code]
        assert 3 <= len(communities) <= 5
        assert set(communities["ur_code"]) <= {111, 112}
    towns = units[(units["level"] == "town") & ~units["name"].str.endswith("街道")]
    assert len(towns) == 4
    villages = units[units["ur_code"].isin([210, 220])]
    assert len(villages) >= 40
    for code in towns["code"]:
        members = units[units["parent_code"] == code]
        assert (members["ur_code"] == 121).sum() == 1
        assert 10 <= members["ur_code"].isin([210, 220]).sum() <= 12


# --- population and census -------------------------------------------------------


def test_rasters_are_worldpop_like(generated):
    paths = [generated[f"pop_{age}_{sex}"] for age in demo.AGE_BANDS for sex in ("f", "m")]
    assert sorted(p.name for p in paths) == sorted(
        f"pop_{age}_{sex}_demo.tif" for age in (60, 65, 70, 75, 80) for sex in ("f", "m")
    )
    total = 0.0
    for path in paths:
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 4326
            assert src.res == pytest.approx((0.000833333333, 0.000833333333), abs=1e-9)
            assert src.nodata == -3.4028234663852886e38
            assert src.dtypes[0] == "float32"
            assert src.tags()["LABEL"] == demo.LABEL
            values = src.read(1, masked=True)
            assert values.mask[0, 0], "the corner lies outside the county: nodata"
            assert values.min() >= 0
            total += float(values.sum())
    assert 40_000 <= total <= 60_000


def test_census_totals_exceed_raster_sums(generated, units):
    raw = generated["census"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(rows[0])[:4] == ["区划代码", "名称", "60岁及以上人口", "65岁及以上人口"]
    totals = {row["区划代码"]: int(row["60岁及以上人口"]) for row in rows}
    county = totals.pop("429901000000")
    assert county == sum(totals.values())

    elderly = None
    for age in demo.AGE_BANDS:
        for sex in ("f", "m"):
            with rasterio.open(generated[f"pop_{age}_{sex}"]) as src:
                band = src.read(1, masked=True).filled(0.0).astype(float)
                transform = src.transform
            elderly = band if elderly is None else elderly + band
    rows_idx, cols_idx = np.nonzero(elderly)
    lon, lat = rasterio.transform.xy(transform, rows_idx, cols_idx)
    towns = units[units["level"] == "town"].set_index("code")
    for code, census_total in totals.items():
        inside = shapely.contains_xy(towns.loc[code, "geometry"], np.asarray(lon), np.asarray(lat))
        ratio = census_total / elderly[rows_idx[inside], cols_idx[inside]].sum()
        assert 1.09 <= ratio <= 1.26, (code, ratio)


# --- facilities -------------------------------------------------------------------


@pytest.fixture(scope="module")
def facility_rows(generated) -> list[tuple]:
    sheet = openpyxl.load_workbook(generated["facilities"])["设施名录"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == demo.FACILITY_TITLE
    assert "A1:Q1" in {str(r) for r in sheet.merged_cells.ranges}
    assert list(rows[1]) == list(demo.FACILITY_COLUMNS)
    return rows[2:]


def test_facility_list_has_the_kinds_gaps_and_bad_rows(facility_rows, units):
    # the 在建 / 规划 / 停业 rows come last (coverage.timeline); the gaps are those of the facilities in service
    assert [row[15] for row in facility_rows[-9:]].count("规划") == 5
    assert all(row[15] in ("在建", "规划", "停业") for row in facility_rows[-9:])
    facility_rows = facility_rows[:-9]
    assert all(row[15] in ("已建成", "正常运营", None) for row in facility_rows)
    types = [row[2] for row in facility_rows]
    assert set(types) == {"日间照料中心", "日间照料中心（含助餐）", "幸福食堂", "互助幸福院", "敬老院",
                          "民生服务综合体", "社会福利院", "老年大学"}
    assert all(row[6] == "GCJ-02" for row in facility_rows)
    # bad rows: empty coordinates, an exact duplicate, an unknown type
    assert sum(row[4] is None and row[5] is None for row in facility_rows) == 1
    assert len(facility_rows) - len(set(facility_rows)) == 1
    assert types.count("老年大学") == 1

    good = [row for row in dict.fromkeys(facility_rows) if row[4] is not None and row[2] != "老年大学"]
    by_street = {}
    for row in good:
        by_street.setdefault(row[11], []).append(row[2])
    assert not any(t.startswith("日间照料中心") for t in by_street["西城街道"])
    assert "民生服务综合体" not in by_street["东城街道"]
    assert "敬老院" not in by_street["石岭乡"]
    assert sum(t == "民生服务综合体" for t in types) == 3
    assert sum(t == "敬老院" for t in types) == 3
    villages = units[units["ur_code"].isin([210, 220])]
    with_mutual_aid = {row[13] for row in good if row[2] == "互助幸福院"}
    share = len(with_mutual_aid) / len(villages)
    assert 0.55 <= share < 0.60
    day_care_areas = [row[9] for row in good if row[2] == "日间照料中心"]
    assert min(day_care_areas) >= 150 and max(day_care_areas) <= 400
    assert any(area < 200 for area in day_care_areas)


def test_facilities_sit_near_streets_and_none_on_the_island(facility_rows, units, osm_content):
    nodes, ways, _ = osm_content
    to_utm = Transformer.from_crs("EPSG:4326", demo.WORK_CRS, always_xy=True)

    def utm(lonlat):
        x, y = to_utm.transform(*np.asarray(lonlat).T)
        return np.column_stack([x, y])

    streets = [shapely.LineString(utm([nodes[n] for n in refs])) for _, refs, tags in ways if _walkable(tags)]
    tree = shapely.STRtree(streets)
    island = units[units["role"] == "island"].geometry.iloc[0]
    county = units[units["level"] == "county"].geometry.iloc[0]
    for row in facility_rows:
        if row[4] is None:
            continue
        assert len(f"{row[4]}".split(".")[1]) <= 6
        lon, lat = gcj02_to_wgs84(row[4], row[5])
        assert county.contains(shapely.Point(lon, lat))
        assert not island.buffer(0.002).contains(shapely.Point(lon, lat)), row
        point = shapely.Point(utm([(lon, lat)])[0])
        distance = streets[int(tree.nearest(point))].distance(point)
        assert 9.0 <= distance <= 81.0, (row[1], distance)


def test_gbk_csv_repeats_the_excel_table(generated, facility_rows):
    text = generated["facilities_gbk"].read_bytes().decode("gbk")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == demo.FACILITY_TITLE
    assert rows[1] == list(demo.FACILITY_COLUMNS)
    assert len(rows) - 2 == len(facility_rows)
    for csv_row, excel_row in zip(rows[2:], facility_rows):
        assert csv_row[1] == excel_row[1] and csv_row[13] == excel_row[13]


# --- study file and labels ----------------------------------------------------------


def test_study_yaml_loads(generated):
    for path in (generated["study"], REPO_ROOT / "studies" / "demo.yaml"):
        config = load_study(path)
        assert config.name == "demo" and config.synthetic
        assert len(config.population.rasters) == 10
        assert config.population.census_level == "town"
        assert config.facilities[0].crs == "gcj02"
        assert config.parameters.ferry.enabled


def test_every_output_is_labelled_synthetic(generated):
    label = demo.LABEL
    for key in ("units", "network", "census", "study", "readme"):
        assert label in generated[key].read_text(encoding="utf-8-sig"), key
    assert label in generated["facilities_gbk"].read_bytes().decode("gbk")
    units = gpd.read_file(generated["units"])
    assert (units["note"] == label).all()
    with rasterio.open(generated["pop_60_f"]) as src:
        assert label in src.tags()["TIFFTAG_IMAGEDESCRIPTION"]
        assert label in src.descriptions[0]
    sheet = openpyxl.load_workbook(generated["facilities"])["设施名录"]
    assert label in sheet["A1"].value
    assert generated["census"].name.startswith("demo_")
