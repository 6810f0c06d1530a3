"""WorldPop-style age × sex rasters: band files, age groups, windowed reading, and one demand point per populated cell."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.errors import RasterioIOError, WindowError
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from rasterio.windows import transform as window_transform

from coverage._errors import InputDataError

#: lower bound (years) of WorldPop's open-ended oldest band ("80 and over")
WORLDPOP_OLDEST_BAND = 80
#: WorldPop age bands are 5 years wide from 5 upwards
WORLDPOP_BAND_WIDTH = 5

_SEX_NAMES = {"f": "female", "m": "male", "t": "both sexes"}
# pop_60_f_wuhan.tif (this project's convention) and chn_f_60_2020.tif (WorldPop's own)
_PROJECT_BAND_NAME = re.compile(r"^pop_(?P<age>\d{1,2})_(?P<sex>[fmt])(?:_(?P<area>.+?))?\.tiff?$", re.IGNORECASE)
_WORLDPOP_BAND_NAME = re.compile(
    r"^(?P<area>[a-z]{3})_(?P<sex>[fmt])_(?P<age>\d{1,2})_(?P<year>\d{4})(?:_.*)?\.tiff?$", re.IGNORECASE
)
_AGE_GROUP = re.compile(r"^\s*(?P<lower>\d{1,2})\s*\+\s*$")
# metres per degree of latitude at the equator (the smallest value: padding in degrees is then conservative)
_METRES_PER_DEGREE_LAT_MIN = 110_574.0
_METRES_PER_DEGREE_LON_EQUATOR = 111_320.0


# ----------------------------------------------------------------------------------------------
# Raster demand
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ElderlyRaster:
    """
    Elderly persons per raster cell for one age group, read from age × sex bands.

    Attributes
    ----------
    persons
        2-D float64 array, persons of ``age_group`` per cell; nodata and
        negative cells hold 0.
    transform
        Affine transform of ``persons`` (of the window read, not of the files).
    crs
        CRS of the grid (EPSG:4326 for WorldPop).
    age_group
        e.g. ``"60+"``.
    bands_used
        File names that were summed, in age then sex order.
    """

    persons: np.ndarray
    transform: Affine
    crs: CRS
    age_group: str
    bands_used: list[str]

    @property
    def shape(self) -> tuple[int, int]:
        """Rows and columns of the grid."""
        return self.persons.shape

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) of the grid in its CRS."""
        rows, cols = self.persons.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)

    @property
    def total(self) -> float:
        """Persons on the whole grid."""
        return float(self.persons.sum())


@dataclass(frozen=True)
class _BandFile:
    path: Path
    age: int
    sex: str
    area: str


def _parse_band_name(path: Path) -> _BandFile | None:
    """Age and sex of a WorldPop-style band file from its name, or None when the name does not say."""
    for pattern in (_PROJECT_BAND_NAME, _WORLDPOP_BAND_NAME):
        match = pattern.match(path.name)
        if match:
            return _BandFile(path, int(match["age"]), match["sex"].lower(), match["area"] or "")
    return None


def _parse_age_group(age_group: str) -> int:
    """Lower age (years) of an open-ended group such as ``"65+"``."""
    match = _AGE_GROUP.match(str(age_group))
    if not match:
        raise ValueError(f"age_group must look like '60+', '65+' or '80+', not {age_group!r}")
    lower = int(match["lower"])
    if lower % WORLDPOP_BAND_WIDTH or lower > WORLDPOP_OLDEST_BAND:
        raise ValueError(
            f"age_group {age_group!r} does not start at a WorldPop band boundary "
            f"(a multiple of {WORLDPOP_BAND_WIDTH} up to {WORLDPOP_OLDEST_BAND})"
        )
    return lower


def _band_candidates(paths: str | Path | Iterable[str | Path]) -> tuple[list[_BandFile], Path | None]:
    """Band files named by ``paths`` (a folder, a glob pattern or a list of files) and the folder searched."""
    if isinstance(paths, (str, Path)):
        single = Path(paths)
        if single.is_dir():
            found = [_parse_band_name(p) for p in sorted(single.iterdir()) if p.suffix.lower() in (".tif", ".tiff")]
            return [band for band in found if band is not None], single
        if any(ch in str(paths) for ch in "*?["):
            matched = sorted(single.parent.glob(single.name))
            found = [_parse_band_name(p) for p in matched]
            return [band for band in found if band is not None], single.parent
        paths = [single]
    bands = []
    for path in map(Path, paths):
        band = _parse_band_name(path)
        if band is None:
            raise InputDataError(
                "cannot tell the age and sex of this raster from its name",
                path=path,
                hint="name age-band rasters pop_<age>_<f|m>_<area>.tif (e.g. pop_60_f_wuhan.tif) "
                "or keep WorldPop's names (e.g. chn_f_60_2020.tif)",
            )
        bands.append(band)
    return bands, None


def _select_bands(bands: list[_BandFile], lower_age: int, age_group: str, folder: Path | None) -> list[_BandFile]:
    """The bands summing to ``age_group``: every 5-year band from ``lower_age`` to the open-ended oldest band."""
    wanted = [band for band in bands if band.age >= lower_age]
    by_key: dict[tuple[int, str], _BandFile] = {}
    for band in wanted:
        key = (band.age, band.sex)
        if key in by_key:
            raise InputDataError(
                f"two files for ages {band.age}+{WORLDPOP_BAND_WIDTH - 1}, {_SEX_NAMES[band.sex]}: "
                f"{by_key[key].path.name} and {band.path.name}",
                path=band.path,
                hint="keep one area's age rasters per folder, or pass the file list explicitly",
            )
        by_key[key] = band
    required_ages = range(lower_age, WORLDPOP_OLDEST_BAND + 1, WORLDPOP_BAND_WIDTH)
    selected: list[_BandFile] = []
    missing: list[str] = []
    example_area = next((band.area for band in bands if band.area), "<area>")
    ages_present = sorted({band.age for band in wanted} | set(required_ages))
    for age in ages_present:
        if (age, "f") in by_key or (age, "m") in by_key:
            for sex in ("f", "m"):
                if (age, sex) in by_key:
                    selected.append(by_key[(age, sex)])
                elif age in required_ages:
                    missing.append(f"pop_{age}_{sex}_{example_area}.tif")
        elif (age, "t") in by_key:
            selected.append(by_key[(age, "t")])
        elif age in required_ages:
            missing.extend(f"pop_{age}_{sex}_{example_area}.tif" for sex in ("f", "m"))
    if missing:
        raise InputDataError(
            f"age group {age_group} needs the band file(s) {', '.join(missing)}, which are missing",
            path=folder,
            hint=f"download the WorldPop age-sex rasters for ages {lower_age}-{WORLDPOP_OLDEST_BAND}+ "
            "(both sexes) and put them beside the others",
        )
    return selected


def _extent_text(bounds) -> str:
    """(minx, miny, maxx, maxy) as text with 5 decimals, for messages."""
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    return f"({minx:.5f}, {miny:.5f}) – ({maxx:.5f}, {maxy:.5f})"


def check_lonlat_bounds(bounds, *, source: str | Path | None = None, what: str = "study area") -> None:
    """
    Raise when bounds said to be WGS-84 degrees are not (projected metres declared as ``wgs84``).

    Parameters
    ----------
    bounds
        (minx, miny, maxx, maxy), supposed to be longitude/latitude degrees.
    source
        The file they come from (e.g. the units file), named in the message.
    what
        What the bounds are of, for the message.

    Raises
    ------
    InputDataError
        When a longitude is outside ±180° or a latitude outside ±90°, or a
        bound is not finite.
    """
    minx, miny, maxx, maxy = (float(v) for v in bounds)
    values = np.array([minx, miny, maxx, maxy])
    if np.isfinite(values).all() and -180.0 <= minx <= maxx <= 180.0 and -90.0 <= miny <= maxy <= 90.0:
        return
    looks_metres = np.isfinite(values).all() and (max(abs(minx), abs(maxx)) > 1000 or max(abs(miny), abs(maxy)) > 1000)
    problem = ("they look like projected metres (e.g. UTM or CGCS2000 Gauss-Krüger x/y), not longitude/latitude degrees"
               if looks_metres else "they are not valid longitude/latitude degrees")
    origin = "" if source is not None else " (from the units file, inputs.units)"
    raise InputDataError(
        f"the {what}{origin} bounds {_extent_text(bounds)} are said to be WGS-84 degrees, but {problem} "
        "/ 坐标像是投影坐标（米），不是经纬度",
        path=source,
        hint="declare the file's real coordinate system (reproject it to WGS-84 lon/lat, e.g. in QGIS "
             "“Export → Save Features As…, CRS EPSG:4326”, or ogr2ogr -t_srs EPSG:4326), then set "
             "inputs.units.crs to match / 请将行政区划文件转换为 WGS-84 经纬度 (EPSG:4326) 并核对 inputs.units.crs",
    )


def _pad_bounds_degrees(bounds: tuple[float, float, float, float], pad_m: float) -> tuple[float, float, float, float]:
    """Widen lon/lat bounds by at least ``pad_m`` metres on every side."""
    minx, miny, maxx, maxy = map(float, bounds)
    if minx > maxx or miny > maxy:
        raise ValueError(f"bounds must be (minx, miny, maxx, maxy), got {bounds!r}")
    if pad_m <= 0:
        return minx, miny, maxx, maxy
    pad_lat = pad_m / _METRES_PER_DEGREE_LAT_MIN
    far_lat = min(max(abs(miny), abs(maxy)) + pad_lat, 89.9)
    pad_lon = pad_m / (_METRES_PER_DEGREE_LON_EQUATOR * math.cos(math.radians(far_lat)))
    return minx - pad_lon, max(miny - pad_lat, -90.0), maxx + pad_lon, min(maxy + pad_lat, 90.0)


def _outward_window(window: Window, height: int, width: int) -> Window | None:
    """Round a fractional window outwards to whole cells and clip it to the grid (None when outside)."""
    row0 = max(math.floor(window.row_off), 0)
    col0 = max(math.floor(window.col_off), 0)
    row1 = min(math.ceil(window.row_off + window.height), height)
    col1 = min(math.ceil(window.col_off + window.width), width)
    if row1 <= row0 or col1 <= col0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _check_same_grid(reference: rasterio.DatasetReader, other: rasterio.DatasetReader, path: Path) -> None:
    if other.crs != reference.crs:
        problem = f"CRS {other.crs} differs from {reference.crs}"
    elif (other.width, other.height) != (reference.width, reference.height):
        problem = f"size {other.width}×{other.height} differs from {reference.width}×{reference.height}"
    elif not other.transform.almost_equals(reference.transform, precision=1e-9):
        problem = f"grid origin/cell size {tuple(other.transform)[:6]} differs from {tuple(reference.transform)[:6]}"
    else:
        return
    raise InputDataError(
        f"raster does not share the grid of {Path(reference.name).name}: {problem}",
        path=path,
        hint="use age bands from one WorldPop download (same area and resolution), or resample them to one grid",
    )


def _zero_invalid(values: np.ndarray, nodata: float | None) -> np.ndarray:
    """Set nodata, NaN, infinite and negative cells of a band to 0 persons (in place) and return it."""
    invalid = ~np.isfinite(values)
    invalid |= values < 0
    if nodata is not None and np.isfinite(nodata):
        invalid |= values == np.asarray(nodata).astype(values.dtype)
    values[invalid] = 0
    return values


def _open_raster(path: Path):
    """``rasterio.open`` of a population raster; a file GDAL cannot read is the planner's to replace (InputDataError)."""
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputDataError(
            f"the population raster cannot be read: {exc} / 人口栅格文件无法读取（文件损坏、下载不完整或不是 GeoTIFF）",
            path=path,
            hint="download the file again from WorldPop (an interrupted download leaves a file that is cut short) "
                 "or remove it from inputs.population.rasters / 请重新下载该文件",
        ) from None


def read_elderly_raster(
    paths: str | Path | Iterable[str | Path],
    *,
    age_group: str = "60+",
    bounds: tuple[float, float, float, float] | None = None,
    pad_m: float = 0.0,
    bounds_source: str | Path | None = None,
) -> ElderlyRaster:
    """
    Sum WorldPop-style age × sex rasters into elderly persons per cell.

    Band identity comes from the file names: ``pop_{age}_{sex}_<area>.tif``
    (e.g. ``pop_60_f_wuhan.tif``) or WorldPop's own ``chn_f_60_2020.tif``.
    ``age_group="60+"`` sums the bands whose lower age is 60 or more, for both
    sexes (60–64 … 80+); ``"65+"`` from 65; ``"80+"`` only the 80+ bands.

    Parameters
    ----------
    paths
        A folder holding the band files, a glob pattern, or the files
        themselves. In a folder, files whose names do not name an age band are
        ignored; in an explicit list they are an error.
    age_group
        ``"60+"``, ``"65+"``, ``"70+"``, ``"75+"`` or ``"80+"``.
    bounds
        (minx, miny, maxx, maxy) in EPSG:4326 degrees. When given, only this
        window (rounded outwards to whole cells) is read, so memory grows with
        the window, not with the files.
    pad_m
        Metres added on every side of ``bounds`` (use the longest walk of the
        study, so that people just outside the area still reach facilities
        inside it).
    bounds_source
        The file the bounds come from (the units file), named in the error
        when they are not lon/lat degrees or miss the rasters.

    Returns
    -------
    ElderlyRaster
        ``persons`` (float64 persons per cell, nodata and negatives → 0),
        with the window's transform.

    Raises
    ------
    InputDataError
        When a needed band is missing (the message names the file), two files
        claim one band, the rasters are on different grids, ``bounds`` are not
        lon/lat degrees (e.g. projected metres declared as WGS-84), or they do
        not overlap the rasters (the message gives both extents).
    """
    lower_age = _parse_age_group(age_group)
    candidates, folder = _band_candidates(paths)
    bands = _select_bands(candidates, lower_age, age_group, folder)

    persons: np.ndarray | None = None
    with _open_raster(bands[0].path) as reference:
        window = Window(0, 0, reference.width, reference.height)
        if bounds is not None:
            check_lonlat_bounds(bounds, source=bounds_source, what="study area")
            padded = _pad_bounds_degrees(bounds, pad_m)
            if reference.crs is not None and not reference.crs.is_geographic:
                padded = rasterio.warp.transform_bounds("EPSG:4326", reference.crs, *padded, densify_pts=21)
            try:
                clipped = _outward_window(
                    window_from_bounds(*padded, transform=reference.transform), reference.height, reference.width
                )
            except WindowError:  # bounds the grid cannot hold (e.g. inverted): treat as no overlap
                clipped = None
            if clipped is None:
                source = f" (from {bounds_source})" if bounds_source is not None else " (from inputs.units)"
                raise InputDataError(
                    f"the study area{source} spans lon/lat {_extent_text(bounds)}, which does not overlap "
                    f"the population rasters: they cover {_extent_text(reference.bounds)} "
                    "/ 研究区与人口栅格范围不重叠",
                    path=bands[0].path,
                    hint="check that the units file and the rasters are of the same area and that the units "
                         "file's coordinate system (inputs.units.crs) is right; download the WorldPop rasters of "
                         "the study area / 请核对行政区划与人口栅格是否同一地区、坐标系是否正确",
                )
            window = clipped
        grid_transform = window_transform(window, reference.transform)
        grid_crs = CRS.from_user_input(reference.crs) if reference.crs is not None else CRS.from_epsg(4326)
        for band in bands:
            with _open_raster(band.path) as source:
                _check_same_grid(reference, source, band.path)
                values = _zero_invalid(source.read(1, window=window), source.nodata)
            if persons is None:
                persons = values.astype(np.float64)
            else:
                np.add(persons, values, out=persons)  # float32 → float64 on the fly, no temporary copy
            del values
    assert persons is not None
    return ElderlyRaster(
        persons=persons,
        transform=grid_transform,
        crs=grid_crs,
        age_group=f"{lower_age}+",
        bands_used=[band.path.name for band in bands],
    )


def _cell_centres(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre coordinates in the grid CRS."""
    x = transform.c + (cols + 0.5) * transform.a + (rows + 0.5) * transform.b
    y = transform.f + (cols + 0.5) * transform.d + (rows + 0.5) * transform.e
    return x, y


def _to_lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    wgs84_like = crs.is_geographic and crs.datum.name.startswith(("World Geodetic", "China"))  # CGCS2000 ≈ WGS-84
    if wgs84_like:
        return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def _grid_attrs(transform: Affine, crs: CRS, shape: tuple[int, int]) -> dict:
    """What calibrate_to_totals needs to rebuild cell footprints, stored in ``demand.attrs``."""
    return {"transform": tuple(transform)[:6], "crs": crs.to_wkt(), "shape": tuple(int(n) for n in shape)}


def demand_points(raster: ElderlyRaster, working_crs) -> gpd.GeoDataFrame:
    """
    One demand point per populated cell (persons > 0), at the cell centre.

    Parameters
    ----------
    raster
        From :func:`read_elderly_raster`.
    working_crs
        Projected CRS for computation (anything pyproj accepts), e.g.
        ``coords.utm_crs_for(lon, lat)``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``demand_id`` (0…n−1, row-major), ``elderly`` (persons),
        ``row``, ``col`` (cell of ``raster``), ``lon``, ``lat`` (cell centre,
        degrees), ``method`` (``"raster"``), geometry = cell centre in
        ``working_crs``. ``attrs["raster_grid"]`` records the grid for
        :func:`calibrate_to_totals`.
    """
    rows, cols = np.nonzero(raster.persons > 0)
    x, y = _cell_centres(raster.transform, rows, cols)
    lon, lat = _to_lonlat(x, y, raster.crs)
    points = gpd.GeoDataFrame(
        {
            "demand_id": np.arange(len(rows), dtype=np.int64),
            "elderly": raster.persons[rows, cols],
            "row": rows.astype(np.int64),
            "col": cols.astype(np.int64),
            "lon": lon,
            "lat": lat,
            "method": "raster",
        },
        geometry=gpd.points_from_xy(x, y, crs=raster.crs),
    ).to_crs(working_crs)
    points.attrs["raster_grid"] = _grid_attrs(raster.transform, raster.crs, raster.shape)
    return points
