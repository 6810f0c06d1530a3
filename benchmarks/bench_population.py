"""Benchmark windowed raster reads and partial-cell zonal totals on the Wuhan WorldPop age rasters.

Run from the repository root::

    .venv/bin/python benchmarks/bench_population.py

Compares
1. ``read_elderly_raster(bounds=..., pad_m=...)`` with the obvious alternative:
   read every band in full with rasterio, then crop to the study window;
2. ``zonal_totals`` (partial cells along outlines) with ``rasterio.mask`` per
   district over the 10 band files (whole cells by the centre rule, and with
   ``all_touched=True``), for time, peak memory, accuracy against a 10×
   supersampled rasterio.mask, and how well district totals add up to the
   study total.

Times are the best of ``--repeat`` runs (wall clock); peak memory is the
tracemalloc peak of Python-visible allocations (NumPy arrays included, GDAL's
block cache not).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.mask
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window, from_bounds

from coverage import population, rasters

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BANDS = DATA / "population" / "wuhan_worldpop_agesex"
COUNTIES = DATA / "admin" / "fastgeocn_county" / "target_counties_tianditu.geojson"
HANKOU = (114.275, 30.575)  # window centre, degrees
WALK_PAD_M = 1000.0  # the longest threshold walk added around the study window
SUPERSAMPLE = 10
CENTRAL_DISTRICTS = ("420102", "420103", "420104", "420105", "420106", "420107")


def _measure(run: Callable[[], object], repeat: int) -> tuple[float, int, object]:
    """Best wall time (s) over ``repeat`` runs and the tracemalloc peak (bytes) of one run."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return best, peak, result


def _band_files() -> list[Path]:
    return sorted(BANDS.glob("pop_*_[fm]_wuhan.tif"))


def _full_read_then_crop(bounds: tuple[float, float, float, float], pad_m: float) -> np.ndarray:
    """The obvious alternative: read each band in full, sum, then crop to the padded window."""
    total = None
    for path in _band_files():
        with rasterio.open(path) as source:
            values = source.read(1).astype(np.float64)
            values[(values < 0) | ~np.isfinite(values)] = 0.0
            transform, height, width = source.transform, source.height, source.width
        total = values if total is None else total + values
    # the same padded, outward-rounded window as read_elderly_raster, so that both return the same cells
    padded = rasters._pad_bounds_degrees(bounds, pad_m)
    window = rasters._outward_window(from_bounds(*padded, transform=transform), height, width)
    assert isinstance(window, Window)
    rows, cols = window.toslices()
    return total[rows, cols].copy()


def _mask_sum(geometry, all_touched: bool, supersample: int = 1) -> float:
    """60+ persons in ``geometry`` by rasterio.mask over the 10 band files.

    ``supersample`` k > 1 reads every cell as k × k sub-cells (nearest
    resampling through a WarpedVRT), approximating area shares at the edges.
    """
    total = 0.0
    for path in _band_files():
        with rasterio.open(path) as source:
            if supersample == 1:
                values, _ = rasterio.mask.mask(source, [geometry], crop=True, all_touched=all_touched, filled=False)
            else:
                with WarpedVRT(
                    source,
                    crs=source.crs,
                    transform=source.transform @ source.transform.scale(1 / supersample),
                    width=source.width * supersample,
                    height=source.height * supersample,
                    resampling=Resampling.nearest,
                ) as virtual:
                    values, _ = rasterio.mask.mask(virtual, [geometry], crop=True, filled=False)
        persons = values.astype(np.float64).filled(0.0)
        persons[persons < 0] = 0.0
        total += persons.sum() / supersample**2
    return total


def bench_windows(repeat: int) -> None:
    with rasterio.open(_band_files()[0]) as source:
        full_bytes = source.width * source.height * 8
        print(f"grid {source.width} × {source.height} cells, {len(_band_files())} band files; "
              f"float64 full grid = {full_bytes / 1e6:.1f} MB")
    print(f"\n1. windowed read vs full read then crop (60+, pad {WALK_PAD_M:.0f} m, best of {repeat})")
    print(f"{'window':>9} {'cells':>9} | {'ours s':>7} {'peak MB':>8} | {'full+crop s':>11} {'peak MB':>8} "
          f"| {'time ×':>6} {'memory ×':>8} | same sum")
    for side_deg in (0.02, 0.05, 0.2, 0.5):
        half = side_deg / 2
        bounds = (HANKOU[0] - half, HANKOU[1] - half, HANKOU[0] + half, HANKOU[1] + half)
        ours_s, ours_peak, ours = _measure(
            lambda: population.read_elderly_raster(BANDS, bounds=bounds, pad_m=WALK_PAD_M), repeat
        )
        full_s, full_peak, cropped = _measure(lambda: _full_read_then_crop(bounds, WALK_PAD_M), repeat)
        same = ours.persons.shape == cropped.shape and np.allclose(ours.persons, cropped, rtol=1e-12, atol=1e-9)
        print(
            f"{side_deg:>8.2f}° {ours.persons.size:>9d} | {ours_s:>7.3f} {ours_peak / 1e6:>8.2f} | "
            f"{full_s:>11.3f} {full_peak / 1e6:>8.2f} | {full_s / ours_s:>6.1f} {full_peak / ours_peak:>8.1f} | {same}"
        )


def bench_zonal(repeat: int) -> None:
    counties = gpd.read_file(COUNTIES)
    districts = counties[counties["gb"].astype(str).str.startswith("156420")].rename(columns={"gb": "code"})
    districts = districts.reset_index(drop=True)
    study = districts.union_all()
    print(f"\n2. zonal totals of the {len(districts)} Wuhan districts (60+, best of {repeat})")

    def ours() -> tuple[population.ElderlyRaster, object]:
        raster = population.read_elderly_raster(BANDS)
        return raster, population.zonal_totals(raster, districts)

    ours_s, ours_peak, (raster, ours_totals) = _measure(ours, repeat)
    zonal_only_s, _, _ = _measure(lambda: population.zonal_totals(raster, districts), repeat)
    centre_s, centre_peak, centre_totals = _measure(
        lambda: [_mask_sum(g, all_touched=False) for g in districts.geometry], repeat
    )
    touched_totals = [_mask_sum(g, all_touched=True) for g in districts.geometry]
    study_exact = population.zonal_totals(
        raster, gpd.GeoDataFrame({"code": ["wuhan"]}, geometry=[study], crs=districts.crs)
    )["elderly"].iloc[0]
    study_centre = _mask_sum(study, all_touched=False)

    print(f"ours (read 10 bands + zonal_totals)   {ours_s:7.3f} s  peak {ours_peak / 1e6:7.1f} MB")
    print(f"ours (zonal_totals on a read raster)  {zonal_only_s:7.3f} s")
    print(f"rasterio.mask per district × band     {centre_s:7.3f} s  peak {centre_peak / 1e6:7.1f} MB")
    print(f"time ratio mask / ours = {centre_s / ours_s:.2f} (incl. read), {centre_s / zonal_only_s:.2f} (zonal only); "
          f"memory ratio ours / mask = {ours_peak / centre_peak:.1f}")
    print(f"{'district':>8} {'ours':>11} {'mask centre':>12} {'diff %':>7} {'mask touched':>13} {'diff %':>7}")
    for code, mine, centre, touched in zip(ours_totals["code"], ours_totals["elderly"], centre_totals, touched_totals):
        print(f"{code:>8} {mine:>11.1f} {centre:>12.1f} {100 * (centre - mine) / mine:>7.3f} "
              f"{touched:>13.1f} {100 * (touched - mine) / mine:>7.3f}")
    print(f"accuracy against rasterio.mask on a {SUPERSAMPLE}× finer grid (area shares), central districts:")
    print(f"{'district':>8} {'reference':>11} {'ours %':>8} {'centre %':>9}")
    errors_ours, errors_centre = [], []
    for code, geometry, mine, centre in zip(
        ours_totals["code"], districts.geometry, ours_totals["elderly"], centre_totals
    ):
        if code not in CENTRAL_DISTRICTS:
            continue
        reference = _mask_sum(geometry, all_touched=False, supersample=SUPERSAMPLE)
        errors_ours.append(100 * (mine - reference) / reference)
        errors_centre.append(100 * (centre - reference) / reference)
        print(f"{code:>8} {reference:>11.1f} {errors_ours[-1]:>8.3f} {errors_centre[-1]:>9.3f}")
    print(f"  largest |error|: ours {max(map(abs, errors_ours)):.3f} %, "
          f"centre rule {max(map(abs, errors_centre)):.3f} %")
    print("sum of districts vs the study total (union of the districts):")
    print(f"  ours (partial cells)          {ours_totals['elderly'].sum():>12.1f} vs {study_exact:>12.1f}  "
          f"{100 * (ours_totals['elderly'].sum() / study_exact - 1):+.4f} %")
    print(f"  rasterio.mask centre rule     {sum(centre_totals):>12.1f} vs {study_centre:>12.1f}  "
          f"{100 * (sum(centre_totals) / study_centre - 1):+.4f} %")
    print(f"  rasterio.mask all_touched     {sum(touched_totals):>12.1f} vs {study_centre:>12.1f}  "
          f"{100 * (sum(touched_totals) / study_centre - 1):+.4f} %  (edge cells counted twice)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per case (best is reported)")
    args = parser.parse_args()
    if not BANDS.is_dir():
        raise SystemExit(f"reference data not found at {BANDS}")
    bench_windows(args.repeat)
    bench_zonal(args.repeat)


if __name__ == "__main__":
    main()
