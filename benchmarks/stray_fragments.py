"""
How many homes the stray-fragment rule (coverage.reach.attach_off_fragments) moves, per real extract.

Homes: 20,000 random points within the network's extent (5-95 % quantiles of node positions);
facilities: 25 random points (fixed seed); 0.8 m/s, access limit 500 m, fragments of ≤ 5 nodes.

Run: .venv/bin/python benchmarks/stray_fragments.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coverage import reach  # noqa: E402
from coverage.network import load_walk_arrays  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "osm"
EXTRACTS = [
    "beijing_bupt/map.osm.pbf", "beijing_haidian_cau/map.osm", "beijing_haidian_thu_pku/map.osm",
    "beijing_wangjing/map.osm.pbf", "jiangxi_guixi/mapofgx.osm", "nanjing_xuanwu_sumo/osm_bbox.osm.pbf",
    "shanghai_baoshan_shu/map.osm", "shanghai_center/shanghai_center.osm.pbf", "shenzhen_longgang_klein4c/map.osm",
]


def main() -> None:
    rng = np.random.default_rng(7)
    print(f"{'extract':40s} {'parts':>5s} {'≤5 nodes':>8s} {'moved':>6s} {'now ≤15':>7s} {'lost ≤15':>8s} {'others same':>11s}")
    for extract in EXTRACTS:
        path = DATA / extract
        if not path.exists():
            print(f"{extract:40s} missing")
            continue
        net = load_walk_arrays(path)
        sizes = np.bincount(reach.node_components(net, with_ferries=True))
        x0, x1 = np.quantile(net.node_x, [0.05, 0.95])
        y0, y1 = np.quantile(net.node_y, [0.05, 0.95])
        homes = np.column_stack([rng.uniform(x0, x1, 20_000), rng.uniform(y0, y1, 20_000)])
        sites = np.column_stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)])
        home_snap = reach.snap_points(net, homes, max_access_m=500.0)
        site_snap = reach.snap_points(net, sites, max_access_m=500.0)
        moved_snap, moved = reach.attach_off_fragments(net, homes, home_snap, max_access_m=500.0, keep=site_snap)
        before = reach.nearest_facility(net, site_snap, home_snap, walk_speed_mps=0.8, limit=3600.0)["cost"].to_numpy()
        after = reach.nearest_facility(net, site_snap, moved_snap, walk_speed_mps=0.8, limit=3600.0)["cost"].to_numpy()
        print(f"{extract:40s} {len(sizes):5d} {int((sizes <= 5).sum()):8d} {int(moved.sum()):6d} "
              f"{int(((after <= 900) & ~(before <= 900)).sum()):7d} {int(((before <= 900) & ~(after <= 900)).sum()):8d} "
              f"{str(bool(np.array_equal(before[~moved], after[~moved]))):>11s}")


if __name__ == "__main__":
    main()
