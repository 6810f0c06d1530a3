"""
Trajectory over 7 years against a single-year run (issue #17, benchmark): ``run_study(years=2020..2026)``.

Builds a county window with ``benchmarks/bench_county.py``'s inputs (real
Huangpi 60+ rasters and census total, real town/village points, a generated
street grid as .osm.pbf), then replaces its facility list by one with
opening years: ``--facilities`` facilities for the whole county scaled to
the window's share of its 60+ people, 70 % opened before 2020 (2005–2019),
26 % opening 2020–2026 (建成年份 written as "2021年" or 2021), 4 % closed
(停业) in 2021–2024, plus 2 % 规划 rows with a planned year.

Times, in one process, after a warm-up run that fills the network cache:

1. a single run as listed: ``run_study(config, write=False, make_map=False)``;
2. the same with ``years=2020..2026``: the added ``years`` stage is the
   trajectory; the ratio (run with years) / (single run) is the figure the
   issue bounds by 1.5;
3. a check that the trajectory's 2023 equals ``run_study(as_of=2023)``
   exactly (coverage table, every kind).

Run from the repository root (nice'd on a shared machine):

    nice -n 10 .venv/bin/python benchmarks/bench_trajectory.py [--fraction 0.25] [--out /tmp/bench_trajectory]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_county  # noqa: E402  (the county window's inputs)

YEARS = tuple(range(2020, 2027))


def write_facilities_with_years(path: Path, count: int, area, cells, seed: int = 17) -> dict:
    """The window's facility list with 建成年份 / 状态 / 停业年份 columns; returns counts by status."""
    import pandas as pd

    bench_county.write_facilities(path, count, area, cells, seed=seed)
    table = pd.read_csv(path, encoding="utf-8-sig")
    rng = np.random.default_rng(seed)
    n = len(table)
    draw = rng.random(n)
    opened = np.where(draw < 0.70, rng.integers(2005, 2020, n), rng.integers(2020, 2027, n))
    status = np.full(n, "已建成", dtype=object)
    closed = np.full(n, None, dtype=object)
    closing = (draw >= 0.70) & (draw < 0.74)
    opened[closing] = rng.integers(2005, 2015, int(closing.sum()))
    status[closing] = "停业"
    closed[closing] = rng.integers(2021, 2025, int(closing.sum()))
    planned = (draw >= 0.98)
    status[planned] = "规划"
    status[(opened >= 2025) & ~planned & ~closing] = "在建"
    as_text = rng.random(n) < 0.5
    table["建成年份"] = [f"{y}年" if t else int(y) for y, t in zip(opened, as_text)]
    table["状态"] = status
    table["停业年份"] = closed
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return {"facilities": n, "opening_2020_2026": int(((opened >= 2020) & ~closing).sum()),
            "closed": int(closing.sum()), "planned": int(planned.sum())}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=0.25, help="window of the county's bounding box")
    parser.add_argument("--facilities", type=int, default=5000, help="facilities in the whole county")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_trajectory"))
    args = parser.parse_args(argv)

    import shapely

    from coverage.config import load_study
    from coverage.pipeline import run_study

    outline = bench_county.county_outline()
    county_cells = bench_county.raster_cells(outline.bounds)
    county_people = bench_county.people_inside(outline, county_cells)[0]
    folder = args.out / f"window_{args.fraction:g}"
    bench_county.COUNTY_FACILITIES = args.facilities
    info = bench_county.build_study(folder, args.fraction, outline, county_cells, county_people)
    box = bench_county.window_box(outline, args.fraction)
    area = outline if args.fraction >= 1 else shapely.intersection(outline, box)
    info["facilities"] = write_facilities_with_years(folder / "facilities.csv", info["facilities"], area,
                                                     county_cells)
    config = load_study(folder / "study.yaml")
    config = dataclasses.replace(config, output_dir=args.out / "outputs")

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    run_study(config, write=False, make_map=False)  # warm-up: parses the network into its cache
    t0 = time.perf_counter()
    single = run_study(config, write=False, make_map=False)
    single_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with_years = run_study(config, write=False, make_map=False, years=YEARS)
    years_s = time.perf_counter() - t0
    trajectory = with_years.trajectory
    alone = run_study(config, write=False, make_map=False, as_of=2023)
    mine = trajectory.coverage[trajectory.coverage["year"] == 2023].drop(columns="year").reset_index(drop=True)
    import pandas.testing as pdt

    pdt.assert_frame_equal(mine, alone.coverage_long.reset_index(drop=True), check_exact=True)
    share_any = trajectory.coverage[(trajectory.coverage["kind"] == "any") & (trajectory.coverage["scope"] == "study")
                                    & (trajectory.coverage["threshold"] == 15) & (trajectory.coverage["unit"] == "min")]
    print(f"# bench_trajectory ({started}; {platform.node()}, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; machine shared with other jobs)")
    print(f"window {args.fraction:g}: network {info['network']}, facilities {info['facilities']}, "
          f"sites as listed {len(single.facilities)}, demand points {len(single.demand_projected)}, "
          f"graph {single.graph_summary.get('nodes')} nodes")
    print(f"single run (as listed): {single_s:.1f} s; stages {single.timings}")
    print(f"run with years {YEARS[0]}–{YEARS[-1]}: {years_s:.1f} s; years stage {with_years.timings['years']:.1f} s; "
          f"ratio {years_s / single_s:.2f} × the single run")
    print("trajectory 2023 == run_study(as_of=2023): exact")
    print("any facility within 15 min by year: " + ", ".join(
        f"{int(y)} {s:.1%}" for y, s in zip(share_any["year"], share_any["share"])))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print("notes:", [n for n in with_years.notes if "years" in n])


if __name__ == "__main__":
    main()
