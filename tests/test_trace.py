"""Are the gap areas traced in arrays the polygons GDAL's polygonize would draw, pinches and holes included?"""

import numpy as np
import pytest
import rasterio.features
import shapely
import shapely.geometry
from affine import Affine
from scipy import ndimage

from coverage import trace

TRANSFORM = Affine(100.0, 0.0, 500_000.0, 0.0, -100.0, 3_400_000.0)  # a 100 m grid in UTM


def _gdal(labels: np.ndarray, transform=TRANSFORM):
    shapes = rasterio.features.shapes(labels.astype(np.int32), mask=labels > 0, connectivity=4, transform=transform)
    traced = sorted(((int(v), shapely.geometry.shape(g)) for g, v in shapes), key=lambda item: item[0])
    return [v for v, _ in traced], [g for _, g in traced]


@pytest.mark.parametrize("seed", range(40))
def test_random_regions_are_traced_exactly_as_gdal_traces_them(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 60, 2)
    labels, n_regions = ndimage.label(rng.random((height, width)) > rng.uniform(0.2, 0.8))
    if n_regions == 0:
        pytest.skip("no region drawn")
    polygons, values = trace.region_polygons(labels, TRANSFORM)
    gdal_values, gdal_polygons = _gdal(labels)
    assert list(values) == gdal_values == list(range(1, n_regions + 1))
    # the same vertices in the same order: shell first, holes after, each ring from the same corner
    assert all(shapely.equals_exact(mine, theirs, 0.0) for mine, theirs in zip(polygons, gdal_polygons))
    assert shapely.is_valid(polygons).all()
    assert shapely.area(polygons).sum() == pytest.approx((labels > 0).sum() * 100.0 * 100.0)


def test_a_hole_touching_its_shell_at_a_corner_stays_a_ring_of_its_own():
    # a ring of cells around one empty cell, whose lower-left corner touches the outside diagonally
    labels = np.array([
        [1, 1, 1],
        [1, 0, 1],
        [0, 1, 1],
    ])
    polygons, values = trace.region_polygons(labels, TRANSFORM)
    assert list(values) == [1]
    polygon = polygons[0]
    assert shapely.is_valid(polygon)
    assert shapely.get_num_interior_rings(polygon) == 1  # the hole, not a shell folded back on itself
    assert polygon.area == pytest.approx(7 * 100.0 * 100.0)
    assert shapely.equals_exact(polygon, _gdal(labels)[1][0], 0.0)


def test_cells_of_two_regions_meeting_only_at_a_corner_give_two_polygons():
    labels, n_regions = ndimage.label(np.array([[1, 0], [0, 1]]))
    polygons, values = trace.region_polygons(labels, TRANSFORM)
    assert n_regions == 2 and list(values) == [1, 2]
    assert shapely.touches(polygons[0], polygons[1])
    assert shapely.get_num_coordinates(polygons).tolist() == [5, 5]  # squares: a vertex only where it turns


def test_a_long_straight_edge_has_no_vertex_between_its_ends():
    labels = np.zeros((5, 40), int)
    labels[1:4, 2:38] = 1
    polygon = trace.region_polygons(labels, TRANSFORM)[0][0]
    assert shapely.get_num_coordinates(polygon) == 5
    assert polygon.bounds == (500_200.0, 3_399_600.0, 503_800.0, 3_399_900.0)


def test_no_region_gives_no_polygon():
    polygons, values = trace.region_polygons(np.zeros((4, 4), int), TRANSFORM)
    assert len(polygons) == 0 and len(values) == 0
