"""Which unit holds each older person's home: the same answer as GEOS's within, for real boundaries."""

import geopandas as gpd
import numpy as np
import shapely

from coverage.spatial import points_in_polygons
from tests.conftest import shared_data


def _reference(points, polygons):
    point_index, polygon_index = shapely.STRtree(polygons).query(points, predicate="within")
    order = np.lexsort((polygon_index, point_index))
    return point_index[order], polygon_index[order]


def test_homes_fall_in_the_same_real_county_fences_as_with_a_plain_within():
    fences = gpd.read_file(shared_data("admin/vonng_adcode/county_fences_gcj02.geojson"))
    fences = fences.to_crs(fences.estimate_utm_crs())
    polygons = np.asarray(fences.geometry.values)
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = fences.total_bounds
    random = shapely.points(rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000))
    # points on the boundaries (vertices of the fences): within neither side, as GEOS says
    vertices, fence_of_vertex = shapely.get_coordinates(polygons, return_index=True)
    on_boundary, own_fence = shapely.points(vertices[::97]), fence_of_vertex[::97]
    points = np.concatenate([random, on_boundary])
    mine = points_in_polygons(points, polygons)
    reference = _reference(points, polygons)
    assert len(reference[0]) > 1_000
    assert np.array_equal(mine[0], reference[0]) and np.array_equal(mine[1], reference[1])
    # a fence's own vertex is not within it (it may be within a neighbour the fence overlaps)
    pairs = set(zip(mine[0].tolist(), mine[1].tolist()))
    assert not any((len(random) + i, int(fence)) in pairs for i, fence in enumerate(own_fence))


def test_a_home_in_a_hole_or_in_two_overlapping_units_is_answered_as_within_answers():
    ring = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(4, 4), (6, 4), (6, 6), (4, 6)]])
    overlap = shapely.box(8, 8, 12, 12)
    parts = shapely.MultiPolygon([shapely.box(20, 0, 21, 1), shapely.box(22, 0, 23, 1)])
    polygons = np.array([ring, overlap, parts], dtype=object)
    points = shapely.points([(5, 5), (1, 1), (9, 9), (22.5, 0.5), (30, 30), (10, 5)])
    point_index, polygon_index = points_in_polygons(points, polygons)
    assert list(zip(point_index.tolist(), polygon_index.tolist())) == [(1, 0), (2, 0), (2, 1), (3, 2)]
    assert [len(a) for a in points_in_polygons(points[:0], polygons)] == [0, 0]
