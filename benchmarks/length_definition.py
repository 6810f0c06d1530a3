"""
How much the ground-length definition (coverage.lengths) changes walking times, per real extract.

Before: edge lengths great-circle on a sphere (osmnx's convention) and access legs planar UTM metres.
After: both ground metres (UTM plane ÷ the point scale factor; the WGS-84 geodesic to < 1 mm/km).
Same network, same facilities, same homes; only the lengths differ. Homes: 20,000 random points
within the network's extent; facilities: 25 random network points (fixed seed).

Run: .venv/bin/python benchmarks/length_definition.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import osmnx as ox
import shapely
from pyproj import Transformer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coverage import reach  # noqa: E402
from coverage.lengths import scale_factor  # noqa: E402
from coverage.network import load_walk_arrays  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "osm"
EXTRACTS = [
    "beijing_bupt/map.osm.pbf", "beijing_haidian_cau/map.osm", "beijing_haidian_thu_pku/map.osm",
    "jiangxi_guixi/mapofgx.osm", "nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
    "shanghai_center/shanghai_center.osm.pbf", "shenzhen_longgang_klein4c/map.osm",
]
SPEED = 0.8
LIMIT = 3600.0


def great_circle_lengths(net: reach.NetworkArrays) -> np.ndarray:
    """The old definition: great-circle metres summed over each edge's vertices."""
    to_lonlat = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    xy = shapely.get_coordinates(net.edge_geometry)
    counts = shapely.get_num_coordinates(net.edge_geometry)
    owner = np.repeat(np.arange(net.n_edges), counts)
    lon, lat = to_lonlat.transform(xy[:, 0], xy[:, 1])
    step = ox.distance.great_circle(lat[:-1], lon[:-1], lat[1:], lon[1:])
    same = owner[1:] == owner[:-1]
    return np.bincount(owner[1:][same], weights=step[same], minlength=net.n_edges)


def main() -> None:
    rng = np.random.default_rng(7)
    print(f"{'extract':42s} {'edges':>7s} {'len max%':>9s} {'len min%':>9s} {'Δs max':>8s} {'Δs med':>8s} "
          f"{'class@15':>8s} {'homes≤15':>8s}")
    for extract in EXTRACTS:
        path = DATA / extract
        net = load_walk_arrays(path, use_cache=False)
        old_net = dataclasses.replace(net, edge_length_m=great_circle_lengths(net))
        x0, x1 = np.quantile(net.node_x, [0.05, 0.95])
        y0, y1 = np.quantile(net.node_y, [0.05, 0.95])
        homes = np.column_stack([rng.uniform(x0, x1, 20_000), rng.uniform(y0, y1, 20_000)])
        sites = np.column_stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)])
        home_snap = reach.snap_points(net, homes, max_access_m=500.0)
        site_snap = reach.snap_points(net, sites, max_access_m=500.0)
        # the old access legs: planar metres (the new ones are those ÷ the scale factor)
        old_home = dataclasses.replace(home_snap, access_m=home_snap.access_m * scale_factor(net.crs, *homes.T))
        old_site = dataclasses.replace(site_snap, access_m=site_snap.access_m * scale_factor(net.crs, *sites.T))
        new = reach.nearest_facility(net, site_snap, home_snap, walk_speed_mps=SPEED, limit=LIMIT)["cost"].to_numpy()
        old = reach.nearest_facility(old_net, old_site, old_home, walk_speed_mps=SPEED, limit=LIMIT)["cost"].to_numpy()
        both = np.isfinite(new) & np.isfinite(old)
        delta = np.abs(new[both] - old[both])
        changed = int(((new <= 900.0) != (old <= 900.0)).sum())
        rel = (net.edge_length_m / old_net.edge_length_m - 1.0) * 100.0
        print(f"{extract:42s} {net.n_edges:7d} {rel.max():9.3f} {rel.min():9.3f} {delta.max():8.2f} "
              f"{np.median(delta):8.3f} {changed:8d} {int((new <= 900).sum()):8d}")


if __name__ == "__main__":
    main()
