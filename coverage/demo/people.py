"""WorldPop-style age × sex population rasters of the demo county and the census table of 60+ totals.

The census totals are the raster sums raised by town, as WorldPop
undercounts the urban elderly, so that census calibration matters.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from coverage.demo.layout import (
    AGE_BAND_SHARE,
    AGE_BANDS,
    CELL_DEG,
    COUNTY_CODE,
    COUNTY_NAME,
    FEMALE_SHARE,
    LABEL,
    OLD_TOWN_CENTRE,
    WORLDPOP_NODATA,
    Landscape,
    Unit,
    _Frame,
    units_lonlat,
)

# =============================================================================
# Population rasters
# =============================================================================


@dataclass
class PopulationGrid:
    """WorldPop-style grid: transform origin (degrees), per-band arrays (persons, nodata outside)."""

    west: float
    north: float
    width: int
    height: int
    bands: dict[tuple[int, str], np.ndarray]
    valid: np.ndarray
    on_island: np.ndarray
    cell_lonlat: np.ndarray

    @property
    def elderly_60(self) -> np.ndarray:
        """Persons aged 60+ per cell (0 where nodata)."""
        return np.sum([np.where(self.valid, b, 0.0) for b in self.bands.values()], axis=0, dtype=np.float64)

    @property
    def elderly_65(self) -> np.ndarray:
        """Persons aged 65+ per cell (0 where nodata)."""
        return np.sum([np.where(self.valid, b, 0.0) for (age, _), b in self.bands.items() if age >= 65],
                      axis=0, dtype=np.float64)


def _make_population(rng: np.random.Generator, frame: _Frame, land: Landscape, units: list[Unit]) -> PopulationGrid:
    """
    Persons 60+ per ~100 m cell by age band and sex.

    Dense in the built-up core (tens per cell, thinning outwards), a blob at
    every town seat and village, some on the island, zero in the fields;
    nodata outside the county and on the river.
    """
    county_lonlat = frame.geometry_to_lonlat(land.county, 9)
    west_deg, south_deg, east_deg, north_deg = county_lonlat.bounds
    col0 = int(np.floor(west_deg * 1200.0)) - 2
    col1 = int(np.ceil(east_deg * 1200.0)) + 2
    row0 = int(np.ceil(north_deg * 1200.0)) + 2
    row1 = int(np.floor(south_deg * 1200.0)) - 2
    width, height = col1 - col0, row0 - row1
    lon = (col0 + 0.5 + np.arange(width)) / 1200.0
    lat = (row0 - 0.5 - np.arange(height)) / 1200.0
    lon_grid, lat_grid = np.meshgrid(lon, lat)
    cell_lonlat = np.column_stack([lon_grid.ravel(), lat_grid.ravel()])
    xy = frame.to_local(cell_lonlat)
    x, y = xy[:, 0], xy[:, 1]

    in_county = shapely.contains_xy(land.county, x, y)
    on_water = shapely.contains_xy(land.water, x, y)
    on_island = shapely.contains_xy(land.island, x, y)
    valid = in_county & ~on_water

    elderly = np.zeros(x.size)
    # urban core: denser towards the old town, about 27,000 people aged 60+
    urban = valid & shapely.contains_xy(land.builtup, x, y)
    distance = np.hypot(x - OLD_TOWN_CENTRE[0], y - OLD_TOWN_CENTRE[1])
    weight = np.where(urban, 0.35 + np.exp(-((distance / 1400.0) ** 2)), 0.0)
    elderly += 27000.0 * weight / weight.sum()
    for unit in units:
        if unit.role == "seat":
            target, sigma = rng.uniform(1300.0, 2000.0), 260.0
        elif unit.role == "village":
            target, sigma = rng.uniform(180.0, 520.0), 110.0
        elif unit.role == "island":
            target, sigma = 420.0, 400.0
        else:
            continue
        spread = np.hypot(x - unit.anchor[0], y - unit.anchor[1])
        kernel = np.where(valid & (spread < 2.5 * sigma), np.exp(-0.5 * (spread / sigma) ** 2), 0.0)
        if unit.role == "island":
            kernel = np.where(on_island, kernel, 0.0)
        elderly += target * kernel / kernel.sum()
    elderly *= rng.lognormal(0.0, 0.25, size=x.size)
    elderly = np.where(elderly < 0.05, 0.0, elderly)

    bands: dict[tuple[int, str], np.ndarray] = {}
    for age in AGE_BANDS:
        for sex in ("f", "m"):
            share = AGE_BAND_SHARE[age] * (FEMALE_SHARE[age] if sex == "f" else 1.0 - FEMALE_SHARE[age])
            values = elderly * share * rng.lognormal(0.0, 0.08, size=x.size)
            band = np.where(valid, values, WORLDPOP_NODATA).astype(np.float32)
            bands[(age, sex)] = band.reshape(height, width)
    return PopulationGrid(
        west=col0 / 1200.0, north=row0 / 1200.0, width=width, height=height, bands=bands,
        valid=valid.reshape(height, width), on_island=on_island.reshape(height, width), cell_lonlat=cell_lonlat,
    )


# =============================================================================
# Raster and census writers
# =============================================================================


def write_population(grid: PopulationGrid, folder: Path) -> dict[str, Path]:
    """
    One GeoTIFF per age band and sex, named like WorldPop's: ``pop_{age}_{sex}_demo.tif``.

    EPSG:4326, 3″ cells, float32, nodata −3.4028234663852886e+38, deflate.
    """
    import rasterio
    from affine import Affine

    folder.mkdir(parents=True, exist_ok=True)
    transform = Affine(CELL_DEG, 0.0, grid.west, 0.0, -CELL_DEG, grid.north)
    written: dict[str, Path] = {}
    for (age, sex), band in grid.bands.items():
        path = folder / f"pop_{age}_{sex}_demo.tif"
        age_text = "80 and over" if age == 80 else f"{age}-{age + 4}"
        sex_text = "female" if sex == "f" else "male"
        profile = {
            "driver": "GTiff", "dtype": "float32", "nodata": WORLDPOP_NODATA, "width": grid.width,
            "height": grid.height, "count": 1, "crs": "EPSG:4326", "transform": transform,
            "compress": "deflate",
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(band, 1)
            dst.update_tags(
                TIFFTAG_IMAGEDESCRIPTION=f"{LABEL}: persons aged {age_text}, {sex_text}, per cell ({COUNTY_NAME})",
                LABEL=LABEL,
                SYNTHETIC="yes",
                SOURCE="coverage.demo (fictional; not WorldPop data)",
                AGE_BAND=age_text,
                SEX=sex_text,
                UNITS="persons per cell",
            )
            dst.set_band_description(1, f"population {age_text} {sex_text} ({LABEL})")
        written[f"pop_{age}_{sex}"] = path
    return written


def _unit_sums(grid: PopulationGrid, frame: _Frame, units: list[Unit]) -> dict[str, tuple[float, float]]:
    """Raster sums of 60+ and 65+ per town/street (cells assigned by their centre)."""
    lon, lat = grid.cell_lonlat[:, 0], grid.cell_lonlat[:, 1]
    elderly_60, elderly_65 = grid.elderly_60.ravel(), grid.elderly_65.ravel()
    sums = {}
    for unit, geometry in zip(units, units_lonlat(units, frame)):
        if unit.level == "town":
            inside = shapely.contains_xy(geometry, lon, lat)
            sums[unit.code] = (float(elderly_60[inside].sum()), float(elderly_65[inside].sum()))
    return sums


def write_census(rng: np.random.Generator, grid: PopulationGrid, frame: _Frame, units: list[Unit],
                 path: Path) -> tuple[Path, dict[str, int]]:
    """
    Census 60+/65+ totals per town/street and for the county (UTF-8 with BOM).

    Totals are the raster sums raised by 18–25 % in streets and 10–16 % in
    towns (WorldPop undercounts the urban elderly), so calibration matters.
    """
    sums = _unit_sums(grid, frame, units)
    rows = []
    for unit in units:
        if unit.level != "town":
            continue
        low, high = (1.18, 1.25) if unit.role == "street" else (1.10, 1.16)
        factor = rng.uniform(low, high)
        rows.append([unit.code, unit.name, int(round(sums[unit.code][0] * factor)),
                     int(round(sums[unit.code][1] * factor)), LABEL])
    county = [COUNTY_CODE, COUNTY_NAME, sum(r[2] for r in rows), sum(r[3] for r in rows), LABEL]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["区划代码", "名称", "60岁及以上人口", "65岁及以上人口", "备注"])
    writer.writerows([county, *rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("utf-8-sig"))
    return path, {row[0]: row[2] for row in [county, *rows]}
