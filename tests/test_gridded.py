"""Walking-time rasters and dissolved gap areas: do they hold exactly what the per-point reach and the tables say?"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine

from coverage import gridded
from coverage._errors import ConfigError
from coverage.config import load_study, parse_parameters
from coverage.outputs import headline_minutes, write_study_outputs
from coverage.pipeline import run_study
from tests.conftest import REPO_ROOT, shared_data

DEMO = REPO_ROOT / "studies" / "demo.yaml"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    config = load_study(DEMO, output_root=tmp_path_factory.mktemp("gridded_demo"))
    return run_study(config, make_map=False)


def _raster_cells(results):
    """Each demand point's (row, col) in the written raster's window."""
    grid = results.demand_projected.attrs["raster_grid"]
    full = Affine(*grid["transform"])
    with rasterio.open(Path(results.output_files["walk_minutes.tif"])) as src:
        col0, row0 = ~src.transform @ (full.c, full.f)
    demand = results.demand_projected
    return (demand["row"].to_numpy(np.int64) + int(round(row0)), demand["col"].to_numpy(np.int64) + int(round(col0)))


def test_the_rasters_minutes_equal_the_per_point_reach_for_every_cell(demo_run):
    path = Path(demo_run.output_files["walk_minutes.tif"])
    assert path.name == "demo_walk_minutes.tif"
    rows, cols = _raster_cells(demo_run)
    with rasterio.open(path) as src:
        data = src.read()
        descriptions = src.descriptions
        nodata = src.nodata
    kinds = list(demo_run.seconds_by_kind)
    assert len(descriptions) == len(kinds) + 2
    cell = pd.Series(rows * 10**6 + cols)
    shared = cell.duplicated(keep=False).to_numpy()
    for band, kind in enumerate(kinds):
        assert descriptions[band].startswith(f"{kind}:")
        minutes = demo_run.seconds_by_kind[kind] / 60.0
        # several points in one cell: the longest of their times, nodata if any part is not reached
        frame = pd.DataFrame({"cell": cell, "minutes": minutes})
        worst = frame.groupby("cell")["minutes"].transform("max").to_numpy()
        expected = np.where(np.isfinite(worst), worst, nodata).astype(np.float32)
        assert np.array_equal(data[band][rows, cols], expected), kind
        single = ~shared & np.isfinite(minutes)
        assert np.array_equal(data[band][rows[single], cols[single]], minutes[single].astype(np.float32))
    # cells without demand are nodata in every band
    empty = np.ones(data.shape[1:], bool)
    empty[rows, cols] = False
    assert (data[:, empty] == nodata).all()
    # persons: the elderly band holds them all, the uncovered band those beyond the headline of any facility
    elderly = demo_run.demand_projected["elderly"].to_numpy()
    minutes = headline_minutes(demo_run)
    beyond = ~(demo_run.seconds_by_kind["any"] <= minutes * 60)
    assert descriptions[-2].startswith("elderly") and descriptions[-1].startswith(f"uncovered_elderly_{minutes:g}min")
    assert data[-2][~empty].sum(dtype=float) == pytest.approx(elderly.sum(), rel=1e-6)
    assert data[-1][~empty].sum(dtype=float) == pytest.approx(elderly[beyond].sum(), rel=1e-6)


def test_the_raster_is_a_valid_cloud_optimized_geotiff(demo_run):
    with rasterio.open(Path(demo_run.output_files["walk_minutes.tif"])) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.profile["tiled"] and src.block_shapes[0][0] % 16 == 0
        assert src.overviews(1), "no overviews"
        assert src.dtypes[0] == "float32" and src.nodata == gridded.NODATA
        assert src.crs.to_epsg() == 4326
        # the overviews come before the full-resolution data (what "cloud optimized" means for a reader)
        ovr = src.overviews(1)
        assert ovr == sorted(ovr)


def test_the_rasters_are_the_same_bytes_whether_compressed_on_one_core_or_several(demo_run, tmp_path, monkeypatch):
    from coverage import access_outputs

    written = {}
    for threads in ("1", "4"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)  # coverage._threads.default_threads: GDAL's threads
        minutes = gridded.write_walk_minutes(demo_run, tmp_path / f"minutes_{threads}.tif", minutes=15)
        access = access_outputs.write_access_raster(demo_run, tmp_path / f"access_{threads}.tif")
        assert minutes.written and access is not None
        written[threads] = (minutes.path.read_bytes(), access.read_bytes())
    assert written["1"] == written["4"]


def test_dissolved_gap_polygons_hold_exactly_the_uncovered_cells(demo_run):
    demand = demo_run.demand_projected
    grid = demand.attrs["raster_grid"]
    a, _, _, _, e, _ = grid["transform"]
    cell_area_deg2 = abs(a * e)
    elderly = demand["elderly"].to_numpy()
    study = demo_run.coverage_long[(demo_run.coverage_long["scope"] == "study")
                                   & (demo_run.coverage_long["unit"] == "min")]
    centres = shapely.points(np.column_stack([demand["lon"], demand["lat"]]))
    for kind in demo_run.seconds_by_kind:
        for minutes in demo_run.config.parameters.thresholds_for(kind):
            areas = gridded.gap_areas(demo_run, kind, minutes)
            beyond = ~(demo_run.seconds_by_kind[kind] <= minutes * 60)
            row = study[(study["kind"] == kind) & (study["threshold"] == minutes)].iloc[0]
            # the persons the coverage table reports as not covered
            assert areas["elderly"].sum() == pytest.approx(row["elderly"] - row["elderly_within"], rel=1e-9, abs=1e-6)
            assert areas["elderly"].sum() == pytest.approx(elderly[beyond].sum(), rel=1e-9, abs=1e-6)
            cells = pd.Series(list(zip(demand["row"], demand["col"])))[beyond].nunique()
            assert areas["cells"].sum() == cells
            if not len(areas):
                continue
            assert areas.geometry.is_valid.all() and set(areas.geom_type) == {"Polygon"}
            # merged cells: the area is that of the uncovered cells, to floating point
            assert shapely.area(areas.geometry.values).sum() == pytest.approx(cells * cell_area_deg2, rel=1e-9)
            # area_m2: the uncovered cells' projected areas, which are the polygons' own areas once projected
            window = gridded.demand_grid(demand)  # rows and columns within the cropped window
            uncovered_cells = sorted(set(zip(window.rows[beyond], window.cols[beyond])))
            grid_areas = window.cell_areas_m2(demand.crs)
            assert areas["area_m2"].sum() == pytest.approx(sum(grid_areas[r, c] for r, c in uncovered_cells), rel=1e-9)
            projected = areas.geometry.to_crs(demand.crs).area.to_numpy()
            assert np.allclose(areas["area_m2"].to_numpy(), projected, rtol=1e-4)
            union = shapely.union_all(areas.geometry.values)
            inside = shapely.contains(union, centres)
            assert inside[beyond].all()
            covered_cells = ~pd.Series(list(zip(demand["row"], demand["col"]))).isin(
                set(zip(demand["row"][beyond], demand["col"][beyond]))).to_numpy()
            assert not inside[covered_cells].any()
    # fewer features than cells: neighbouring cells merged
    areas = gridded.gap_areas(demo_run, "canteen", 15)
    assert len(areas) < areas["cells"].sum() / 5


def test_the_geopackage_holds_dissolved_gap_layers_and_cells_only_on_request(demo_run, tmp_path):
    gpkg = Path(demo_run.output_files["layers.gpkg"])
    layers = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert {"gap_canteen_15min", "gap_any_10min"} <= layers
    assert not any(name.startswith("gap_") and name.endswith("_cells") for name in layers)
    # the demo has no 养老院 (care_home): no gap layer that is the whole county; the uncovered points of a
    # raster run are the COG's band, not a layer
    assert not {"gap_care_home_15min", "uncovered_cells"} & layers
    written = pyogrio.read_dataframe(gpkg, layer="gap_canteen_15min")
    assert written["elderly"].sum() == pytest.approx(gridded.gap_areas(demo_run, "canteen", 15)["elderly"].sum())
    # the switch brings the per-cell layers back
    params = dataclasses.replace(demo_run.config.parameters, gap_cells=True)
    config = dataclasses.replace(demo_run.config, parameters=params, output_dir=tmp_path)
    files = write_study_outputs(dataclasses.replace(demo_run, config=config), make_map=False)
    layers = {name for name, _ in pyogrio.list_layers(files["layers.gpkg"])}
    assert {"gap_canteen_15min", "gap_canteen_15min_cells"} <= layers
    assert parse_parameters({"gap_cells": True}).gap_cells
    with pytest.raises(ConfigError, match="parameters.gap_cells"):
        parse_parameters({"gap_cells": "no"})


def test_the_geopackage_holds_each_village_boundary_once_with_its_coverage(demo_run):
    gpkg = Path(demo_run.output_files["layers.gpkg"])
    villages = pyogrio.read_dataframe(gpkg, layer="villages")
    units = pyogrio.read_dataframe(gpkg, layer="units")
    assert len(villages) and "share" in villages
    # the village outlines are in the villages layer only; the units layer keeps the towns (and the county)
    assert not set(villages["code"]) & set(units["code"])
    assert "town" in set(units["level"]) and "village" not in set(units.loc[units.geom_type.str.contains("Polygon"),
                                                                               "level"])
    # nothing lost: every unit with a geometry is in one of the two layers
    placed = demo_run.units[demo_run.units.geometry.notna()]
    assert sorted(placed["code"]) == sorted([*villages["code"], *units["code"]])


def test_point_demand_gives_no_raster_and_says_so(demo_run, tmp_path):
    demand = demo_run.demand_projected.copy()
    demand.attrs = {}
    demand["row"] = pd.array([pd.NA] * len(demand), dtype="Int64")
    demand["col"] = pd.array([pd.NA] * len(demand), dtype="Int64")
    demand["method"] = "buildings"
    points = dataclasses.replace(demo_run, demand_projected=demand)
    written = gridded.write_walk_minutes(points, tmp_path / "x.tif", minutes=15)
    assert not written.written and written.path is None
    assert "points" in written.note and "no walking-time raster" in written.note
    assert not (tmp_path / "x.tif").exists()
    # the run says so before it writes anything: the note is in the tables and run.json
    from coverage import outputs

    assert gridded.POINTS_NOTE in outputs.writing_notes(demo_run.config, demand, make_map=False)
    assert gridded.POINTS_NOTE not in outputs.writing_notes(demo_run.config, demo_run.demand_projected,
                                                             make_map=False)
    gaps = gridded.gap_areas(points, "canteen", 15)
    assert set(gaps.geom_type) == {"Point"}
    assert gaps["elderly"].sum() == pytest.approx(
        demand["elderly"].to_numpy()[~(demo_run.seconds_by_kind["canteen"] <= 900)].sum())


def test_a_real_worldpop_window_round_trips(demo_run, tmp_path):
    """Central Wuhan (WorldPop 60+), with walking times made up from five points: the file holds them exactly."""
    from coverage import coords, population

    bands = shared_data("population/wuhan_worldpop_agesex")
    raster = population.read_elderly_raster(bands, bounds=(114.2, 30.5, 114.45, 30.7))
    demand = population.demand_points(raster, coords.utm_crs_for(114.3, 30.58))
    xy = shapely.get_coordinates(demand.geometry.values)
    rng = np.random.default_rng(7)
    sites = xy[rng.choice(len(xy), 5, replace=False)]
    seconds = np.min(np.hypot(xy[:, None, 0] - sites[None, :, 0], xy[:, None, 1] - sites[None, :, 1]), axis=1) / 0.8
    seconds = np.where(seconds <= 900, seconds, np.inf)
    kinds = {kind: seconds for kind in demo_run.seconds_by_kind}
    results = dataclasses.replace(demo_run, demand_projected=demand, seconds_by_kind=kinds)
    written = gridded.write_walk_minutes(results, tmp_path / "wuhan.tif", minutes=15)
    with rasterio.open(written.path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.overviews(1)
        col0, row0 = ~src.transform @ (raster.transform.c, raster.transform.f)
        rows = demand["row"].to_numpy() + int(round(row0))
        cols = demand["col"].to_numpy() + int(round(col0))
        minutes = src.read(1)[rows, cols]
        persons = src.read(src.count - 1)[rows, cols]
    expected = np.where(np.isfinite(seconds), seconds / 60.0, gridded.NODATA).astype(np.float32)
    assert np.array_equal(minutes, expected)
    assert np.allclose(persons, demand["elderly"].to_numpy(), rtol=1e-6)
    areas = gridded.gap_areas(results, "any", 15)
    assert areas["elderly"].sum() == pytest.approx(demand["elderly"].to_numpy()[~np.isfinite(seconds)].sum())
    assert shapely.area(areas.geometry.values).sum() == pytest.approx(areas["cells"].sum() * abs(raster.transform.a * raster.transform.e))


def test_region_polygons_are_the_polygons_gdal_traces_with_their_holes():
    """The vectorised build gives exactly the rings ``rasterio.features.shapes`` traces, holes and labels kept."""
    import rasterio.features
    import shapely.geometry
    from scipy import ndimage

    rng = np.random.default_rng(14)
    mask = ndimage.binary_opening(rng.random((120, 160)) > 0.4)
    mask[40:60, 40:80] = True
    mask[48:52, 50:54] = False  # a hole
    labels, n_regions = ndimage.label(mask)
    transform = Affine(0.001, 0.0, 114.0, 0.0, -0.001, 31.0)
    mask[104:116, 100:140] = False
    mask[105:115:2, 101:139:3] = True  # lone cells, made as squares
    labels, n_regions = ndimage.label(mask)
    polygons, values = gridded._region_polygons(labels, mask, transform)
    traced = list(rasterio.features.shapes(labels.astype(np.int32), mask=mask, connectivity=4, transform=transform))
    assert len(polygons) == len(traced) >= n_regions > 20
    assert list(values) == sorted(int(v) for _, v in traced) == list(range(1, n_regions + 1))
    by_label = {int(v): shapely.geometry.shape(g) for g, v in traced}
    assert all(shapely.equals_exact(mine, by_label[label], 0.0) for mine, label in zip(polygons, values))
    lone = np.bincount(labels.ravel())[1:] == 1
    assert lone.sum() > 5  # both ways of making them are checked
    assert shapely.is_valid(polygons).all() and (shapely.get_num_interior_rings(polygons) > 0).any()
    # every cell of the mask is in exactly one polygon
    assert shapely.area(polygons).sum() == pytest.approx(mask.sum() * 1e-6)
    empty, none = gridded._region_polygons(np.zeros((3, 3), int), np.zeros((3, 3), bool), transform)
    assert len(empty) == 0 and len(none) == 0


def test_only_layers_large_enough_to_need_it_carry_a_spatial_index(tmp_path):
    # a county's dissolved gap areas (thousands of polygons) open at once without an R-tree; 60,000 cells do not
    import sqlite3

    import geopandas as gpd

    from coverage import report

    small = gpd.GeoDataFrame({"elderly": [1.0, 2.0]}, geometry=[shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)],
                             crs=32650)
    n = report.SPATIAL_INDEX_MIN_FEATURES
    large = gpd.GeoDataFrame({"elderly": np.ones(n)}, geometry=shapely.points(np.arange(n), np.zeros(n)), crs=32650)
    path = report.write_geopackage({"gap_small": small, "cells_large": large}, tmp_path / "layers.gpkg")
    with sqlite3.connect(path) as db:
        indexed = {row[0] for row in db.execute("SELECT table_name FROM gpkg_extensions "
                                                "WHERE extension_name = 'gpkg_rtree_index'")}
    assert indexed == {"cells_large"}
    assert len(pyogrio.read_dataframe(path, layer="gap_small")) == 2  # still a layer QGIS reads
