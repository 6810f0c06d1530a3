"""Walking-time rasters and dissolved gap areas on the population grid of a study."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np

from coverage._io import atomic_path
from coverage._threads import default_threads
from coverage.profiles import kind_modes

#: what a run says when its demand has no raster grid to write
POINTS_NOTE = ("no walking-time raster: the demand is points (buildings or a table), not a population raster "
               "/ 人口为点数据，未输出步行时间栅格")

#: nodata of every band of the walking-time raster (cells without demand, off the network, not reached)
NODATA = -9999.0
#: name of the elderly band and prefix of the uncovered band (followed by ``_<minutes>min``)
ELDERLY_BAND = "elderly"
UNCOVERED_BAND = "uncovered_elderly"


@dataclass(frozen=True)
class DemandGrid:
    """
    The populated cells of a study's population raster, cropped to their bounding window.

    Attributes
    ----------
    rows, cols : numpy.ndarray
        Row and column of each demand point in the cropped window.
    shape : tuple
        (rows, cols) of the cropped window.
    transform : affine.Affine
        Transform of the cropped window.
    crs : rasterio.crs.CRS
        CRS of the population raster.
    """

    rows: np.ndarray
    cols: np.ndarray
    shape: tuple[int, int]
    transform: object
    crs: object

    @property
    def flat(self) -> np.ndarray:
        """Row-major cell position of each demand point in the window."""
        return self.rows * self.shape[1] + self.cols

    def cell_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum of a value per demand point over each cell (float64, 0 where no demand)."""
        out = np.zeros(self.shape[0] * self.shape[1])
        np.add.at(out, self.flat, np.asarray(values, dtype=float))
        return out.reshape(self.shape)

    def cell_max(self, values: np.ndarray) -> np.ndarray:
        """Largest value per demand point over each cell (-inf where no demand)."""
        out = np.full(self.shape[0] * self.shape[1], -np.inf)
        np.maximum.at(out, self.flat, np.asarray(values, dtype=float))
        return out.reshape(self.shape)

    def has_demand(self) -> np.ndarray:
        """True on cells holding at least one demand point."""
        out = np.zeros(self.shape[0] * self.shape[1], bool)
        out[self.flat] = True
        return out.reshape(self.shape)

    def cell_areas_m2(self, crs) -> np.ndarray:
        """
        Area of every cell of the window in ``crs`` (a metric CRS; m²), shape :attr:`shape`.

        Each cell's four corners are projected (one transform of the
        (rows + 1) × (cols + 1) corner lattice) and its quadrilateral measured
        by the shoelace formula: the area the cell's square has once
        projected, so a region's area is the sum over its cells.
        """
        from pyproj import Transformer

        rows, cols = self.shape
        corner_cols, corner_rows = np.meshgrid(np.arange(cols + 1, dtype=float), np.arange(rows + 1, dtype=float))
        t = self.transform
        x = t.a * corner_cols + t.b * corner_rows + t.c
        y = t.d * corner_cols + t.e * corner_rows + t.f
        x, y = Transformer.from_crs(self.crs, crs, always_xy=True).transform(x, y)
        x, y = np.asarray(x), np.asarray(y)
        # corners of cell (r, c): top left, bottom left, bottom right, top right
        x0, y0, x1, y1 = x[:-1, :-1], y[:-1, :-1], x[1:, :-1], y[1:, :-1]
        x2, y2, x3, y3 = x[1:, 1:], y[1:, 1:], x[:-1, 1:], y[:-1, 1:]
        return 0.5 * np.abs((x0 * y1 - x1 * y0) + (x1 * y2 - x2 * y1) + (x2 * y3 - x3 * y2) + (x3 * y0 - x0 * y3))


@dataclass(frozen=True)
class WalkMinutesRaster:
    """
    What :func:`write_walk_minutes` wrote.

    Attributes
    ----------
    path : pathlib.Path or None
        The GeoTIFF, or ``None`` when the demand has no population raster.
    bands : tuple
        Band descriptions, in band order (empty when nothing was written).
    driver : str
        ``COG``, ``GTiff`` (tiled, with overviews) or ``""`` when not written.
    note : str
        One sentence saying what was written, or why nothing was.
    """

    path: Path | None
    bands: tuple[str, ...]
    driver: str
    note: str

    @property
    def written(self) -> bool:
        """True when a raster file was written."""
        return self.path is not None


def demand_grid(demand: gpd.GeoDataFrame) -> DemandGrid | None:
    """
    The population grid of raster demand (``attrs["raster_grid"]`` and ``row``/``col``), or ``None``.

    Demand without a raster (buildings, points, uniform grid without a
    transform) has no grid: ``row``/``col`` are missing or empty.
    """
    from affine import Affine
    from rasterio.crs import CRS

    grid = demand.attrs.get("raster_grid")
    if not grid or not {"row", "col"} <= set(demand.columns) or len(demand) == 0:
        return None
    if demand["row"].isna().any() or demand["col"].isna().any():
        return None
    rows = demand["row"].to_numpy(dtype=np.int64)
    cols = demand["col"].to_numpy(dtype=np.int64)
    # crop to the populated window: a county in a province-wide raster stays county-sized
    r0, c0 = int(rows.min()), int(cols.min())
    shape = (int(rows.max()) - r0 + 1, int(cols.max()) - c0 + 1)
    transform = Affine(*grid["transform"]) @ Affine.translation(c0, r0)
    crs = grid["crs"] if isinstance(grid["crs"], CRS) else CRS.from_user_input(grid["crs"])
    return DemandGrid(rows - r0, cols - c0, shape, transform, crs)


def cell_minutes(grid: DemandGrid, seconds: np.ndarray) -> np.ndarray:
    """
    Minutes to the nearest facility per cell (float32, :data:`NODATA` where none).

    Where several demand points share a cell (a cell split by unit
    boundaries) the cell takes the *longest* of their times: the walk every
    resident of the cell is within. A cell is then within ``t`` minutes
    exactly when none of its elderly is beyond ``t`` — the same rule as the
    gap areas and the uncovered band. A part off the network or not reached
    within the search limit (inf) makes the whole cell nodata.
    """
    worst = grid.cell_max(np.asarray(seconds, dtype=float) / 60.0)
    out = np.where(np.isfinite(worst), worst, NODATA)
    return out.astype(np.float32)


def _cog_blocksize(shape: tuple[int, int]) -> int:
    """Tile size (128 … 512, GDAL's COG bounds) so that a small study still gets an overview level."""
    size = max(shape)
    for block in (512, 256):
        if size > 2 * block:
            return block
    return 128


def write_walk_minutes(results, path: str | Path, *, minutes: float,
                       attribution: Sequence[str] = ()) -> WalkMinutesRaster:
    """
    Write the walking-time raster of a study as a Cloud-Optimized GeoTIFF, atomically.

    One float32 band per facility kind and ``any`` (minutes to the nearest
    facility in the kind's travel mode; see :func:`cell_minutes`), then
    the elderly persons per cell and the elderly beyond ``minutes`` of any
    facility per cell. Cells without demand, off the network or not
    reached within the search limit are nodata (:data:`NODATA`) in the
    minutes bands; the two person bands are nodata only where no one lives.
    The grid is the population raster's, cropped to the populated window.

    Uses GDAL's ``COG`` driver when present, else a tiled GTiff with
    overviews copied in front (``copy_src_overviews``). Overviews are
    nearest-neighbour (a preview, not a resampled count).

    Parameters
    ----------
    results
        A :class:`coverage.results.StudyResults`.
    path
        Target ``.tif``.
    minutes
        The headline threshold of the uncovered band (minutes), e.g.
        :func:`coverage.outputs.headline_minutes`.
    attribution
        Data credits written into the file's tags.

    Returns
    -------
    WalkMinutesRaster
        The path (``None`` for demand without a raster, with a note saying so).
    """
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    demand = results.demand_projected
    grid = demand_grid(demand)
    if grid is None:
        return WalkMinutesRaster(None, (), "", POINTS_NOTE)
    modes = kind_modes(results.config.parameters, list(results.seconds_by_kind))
    has = grid.has_demand()
    elderly = demand["elderly"].to_numpy(dtype=float)
    any_seconds = results.seconds_by_kind["any"]
    beyond = ~(any_seconds <= minutes * 60.0)
    bands, names = [], []
    for kind, seconds in results.seconds_by_kind.items():
        bands.append(cell_minutes(grid, seconds))
        names.append(f"{kind}: minutes to the nearest facility ({modes.get(kind, 'walk')})")
    bands.append(np.where(has, grid.cell_sum(elderly), NODATA).astype(np.float32))
    names.append(f"{ELDERLY_BAND}: persons ({results.config.population.age_group})")
    bands.append(np.where(has, grid.cell_sum(np.where(beyond, elderly, 0.0)), NODATA).astype(np.float32))
    names.append(f"{UNCOVERED_BAND}_{minutes:g}min: persons beyond {minutes:g} min of any facility")

    profile = {
        "driver": "GTiff", "width": grid.shape[1], "height": grid.shape[0], "count": len(bands),
        "dtype": "float32", "crs": grid.crs, "transform": grid.transform, "nodata": NODATA,
    }
    blocksize = _cog_blocksize(grid.shape)
    with rasterio.Env() as env:
        has_cog = "COG" in env.drivers()
    path = Path(path)
    with MemoryFile() as memfile:
        with memfile.open(**profile) as mem:
            mem.write(np.stack(bands))
            for index, name in enumerate(names, start=1):
                mem.set_band_description(index, name)
            mem.update_tags(units="minutes (kind bands), persons (last two bands)", headline_minutes=f"{minutes:g}",
                            cell_rule="several demand points in a cell: the longest time of them",
                            attribution="; ".join(attribution))
        with memfile.open() as source, atomic_path(path) as tmp:
            if has_cog:
                # the tiles compressed on the usable cores (GDAL's threads; one in a Dask worker): the same bytes
                rasterio.shutil.copy(source, tmp, driver="COG", blocksize=blocksize, compress="DEFLATE",
                                     predictor="YES", overview_resampling="NEAREST", overviews="AUTO",
                                     num_threads=str(default_threads()))
                driver = "COG"
            else:
                _write_tiled_gtiff(source, tmp, blocksize)
                driver = "GTiff"
    note = (f"walking-time raster {path.name}: {len(bands)} bands ({', '.join(results.seconds_by_kind)}, "
            f"elderly, uncovered at {minutes:g} min), {grid.shape[0]} × {grid.shape[1]} cells, {driver}")
    return WalkMinutesRaster(path, tuple(names), driver, note)


def _write_tiled_gtiff(source, target: Path, blocksize: int) -> None:
    """Cloud-optimised layout without the COG driver: tiles, overviews, then a copy with overviews first."""
    import rasterio
    import rasterio.shutil
    from rasterio.enums import Resampling

    staging = target.with_name(target.stem + "-staging.tif")
    try:
        rasterio.shutil.copy(source, staging, driver="GTiff", tiled=True, blockxsize=blocksize,
                             blockysize=blocksize, compress="DEFLATE")
        with rasterio.open(staging, "r+") as dataset:
            factors, size = [], max(dataset.shape)
            while size > blocksize:
                factors.append(2 ** (len(factors) + 1))
                size //= 2
            if factors:
                dataset.build_overviews(factors, Resampling.nearest)
        rasterio.shutil.copy(staging, target, driver="GTiff", tiled=True, blockxsize=blocksize,
                             blockysize=blocksize, compress="DEFLATE", copy_src_overviews=True)
    finally:
        staging.unlink(missing_ok=True)


def gap_areas(results, kind: str, minutes: float, *, cell_areas_m2: np.ndarray | None = None) -> gpd.GeoDataFrame:
    """
    Elderly beyond ``minutes`` of a facility of ``kind``, as dissolved areas of the population grid (WGS-84).

    Neighbouring uncovered cells (sharing an edge) merge into one polygon,
    holes kept. A cell is uncovered when any of its demand points is beyond
    ``minutes`` (or not reached); its ``elderly`` are those of these
    points only. Demand without a raster gives its uncovered points instead.

    Parameters
    ----------
    results
        A :class:`coverage.results.StudyResults`.
    kind
        Facility kind or ``any``.
    minutes
        Threshold (minutes).
    cell_areas_m2
        :meth:`DemandGrid.cell_areas_m2` in the working CRS, when the caller
        draws several layers of one run (computed here otherwise).

    Returns
    -------
    geopandas.GeoDataFrame
        ``elderly`` (persons uncovered), ``cells`` (grid cells), ``area_m2``
        (in the working CRS: the sum of the cells' projected areas), ``kind``,
        ``minutes``; polygons or points.
    """
    from scipy import ndimage

    demand = results.demand_projected
    beyond = ~(results.seconds_by_kind[kind] <= minutes * 60.0)
    grid = demand_grid(demand)
    if grid is None:
        points = demand.loc[beyond, ["elderly", "geometry"]]
        frame = gpd.GeoDataFrame({"elderly": points["elderly"].to_numpy(dtype=float), "cells": 0,
                                  "area_m2": 0.0}, geometry=points.geometry.to_numpy(), crs=demand.crs)
        return frame.to_crs("EPSG:4326").assign(kind=kind, minutes=minutes).reset_index(drop=True)
    elderly = demand["elderly"].to_numpy(dtype=float)
    mask = grid.cell_sum(beyond) > 0
    persons = grid.cell_sum(np.where(beyond, elderly, 0.0))
    # 4-connected regions: cells touching only at a corner stay separate polygons (valid, simple rings)
    labels, n_regions = ndimage.label(mask)
    columns = ["elderly", "cells", "area_m2", "kind", "minutes"]
    if n_regions == 0:
        return gpd.GeoDataFrame(columns=[*columns, "geometry"], geometry="geometry", crs="EPSG:4326")
    geometries, values = _region_polygons(labels, mask, grid.transform)
    elderly_by_region = np.bincount(labels.ravel(), weights=persons.ravel(), minlength=n_regions + 1)
    cells_by_region = np.bincount(labels.ravel(), minlength=n_regions + 1)
    if cell_areas_m2 is None:
        cell_areas_m2 = grid.cell_areas_m2(demand.crs)
    # the regions' areas from their cells (no reprojection of the polygons' vertices)
    area_by_region = np.bincount(labels.ravel(), weights=np.asarray(cell_areas_m2, float).ravel(),
                                 minlength=n_regions + 1)
    frame = gpd.GeoDataFrame({"region": values}, geometry=np.asarray(geometries, dtype=object), crs=grid.crs)
    # one region is one polygon with 4-connectivity; dissolve guards against a region split in pieces
    frame = frame.dissolve(by="region", as_index=False) if frame["region"].duplicated().any() else frame
    region = frame["region"].to_numpy()
    frame = frame.assign(elderly=elderly_by_region[region], cells=cells_by_region[region],
                         area_m2=area_by_region[region])
    frame = frame.to_crs("EPSG:4326").assign(kind=kind, minutes=minutes)
    return frame[[*columns, "geometry"]].sort_values("elderly", ascending=False).reset_index(drop=True)


def _region_polygons(labels: np.ndarray, mask: np.ndarray, transform) -> tuple[np.ndarray, np.ndarray]:
    """
    The polygons of the labelled regions within ``mask`` (4-connected), holes kept: GDAL polygonize's rings.

    Traced in arrays by :func:`coverage.trace.region_polygons` (the rings
    ``rasterio.features.shapes`` gives, without its Python list of tuples per
    ring: 18 gap layers of a county, 1.3 million vertices, took about a
    second that way).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Polygons (CRS of ``transform``) and the label of each, ordered by label.
    """
    from coverage import trace

    return trace.region_polygons(np.where(mask, labels, 0), transform)
