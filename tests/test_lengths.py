"""Is every length a run uses the same ground metre, and is it the WGS-84 geodesic?"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import CRS, Geod, Proj, Transformer

from coverage import reach
from coverage.lengths import ground_lengths, scale_factor
from coverage.network import load_walk_arrays
from tests.conftest import shared_data


@pytest.mark.parametrize("epsg, lon, lat", [(32650, 116.4, 39.9), (32649, 114.3, 30.6), (32647, 99.0, 22.0),
                                            (4547, 114.3, 30.6), (32750, 117.0, -31.9)])
def test_the_scale_factor_is_proj_s_own_across_a_zone(epsg, lon, lat):
    crs = CRS.from_epsg(epsg)
    rng = np.random.default_rng(1)
    lons, lats = rng.uniform(lon - 2.9, lon + 2.9, 2000), rng.uniform(lat - 3, lat + 3, 2000)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lons, lats)
    expected = np.asarray(Proj(crs).get_factors(lons, lats).meridional_scale)
    assert np.max(np.abs(scale_factor(crs, x, y) - expected)) < 1e-7


@pytest.mark.parametrize("extract", ["osm/jiangxi_guixi/mapofgx.osm", "osm/shenzhen_longgang_klein4c/map.osm"])
def test_edge_lengths_are_the_wgs84_geodesic_along_the_street(extract):
    net = load_walk_arrays(shared_data(extract), use_cache=False)
    xy = shapely.get_coordinates(net.edge_geometry)
    owner = np.repeat(np.arange(net.n_edges), shapely.get_num_coordinates(net.edge_geometry))
    lon, lat = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    _, _, step = Geod(ellps="WGS84").inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    same = owner[1:] == owner[:-1]
    geodesic = np.bincount(owner[1:][same], weights=step[same], minlength=net.n_edges)
    # a millimetre per kilometre at most; great-circle lengths were off by up to 4 m per km here
    assert np.max(np.abs(net.edge_length_m / geodesic - 1.0)) < 1e-6


def test_a_home_s_access_leg_is_in_the_same_ground_metres_as_the_street():
    net = load_walk_arrays(shared_data("osm/shenzhen_longgang_klein4c/map.osm"), use_cache=False)
    rng = np.random.default_rng(3)
    points = np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 300),
                              rng.uniform(net.node_y.min(), net.node_y.max(), 300)])
    snap = reach.snap_points(net, points, max_access_m=400.0)
    on = np.flatnonzero(snap.on_network)
    assert len(on) > 100
    # the foot of each access leg on its edge, and the geodesic from the home to it
    foot = shapely.line_interpolate_point(net.edge_geometry[snap.edge[on]], snap.fraction[on], normalized=True)
    to_lonlat = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_lonlat.transform(points[on, 0], points[on, 1])
    lon1, lat1 = to_lonlat.transform(shapely.get_x(foot), shapely.get_y(foot))
    _, _, geodesic = Geod(ellps="WGS84").inv(lon0, lat0, lon1, lat1)
    long = geodesic > 20.0
    assert np.max(np.abs(snap.access_m[on][long] / geodesic[long] - 1.0)) < 1e-5
    planar = shapely.distance(shapely.points(points[on]), foot)
    assert not np.allclose(snap.access_m[on], planar, rtol=1e-5, atol=0)  # not planar metres


def test_ground_lengths_of_a_segment_on_the_central_meridian_are_planar_over_k0():
    length = ground_lengths("EPSG:32650", [500_000.0], [4_400_000.0], [500_000.0], [4_401_000.0])
    assert length[0] == pytest.approx(1000.0 / 0.9996, rel=1e-9)
