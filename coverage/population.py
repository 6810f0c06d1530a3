"""Elderly demand points from WorldPop-style age rasters, calibrated to census totals, and the units they lie in."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.warp
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio import features
from rasterio.errors import WindowError
from rasterio.windows import Window
from rasterio.windows import from_bounds as window_from_bounds
from rasterio.windows import transform as window_transform

from coverage._errors import InputDataError

__all__ = [
    "ElderlyRaster",
    "read_elderly_raster",
    "demand_points",
    "zonal_totals",
    "calibrate_to_totals",
    "check_lonlat_bounds",
    "assign_units",
]

#: lower bound (years) of WorldPop's open-ended oldest band ("80 and over")
WORLDPOP_OLDEST_BAND = 80
#: WorldPop age bands are 5 years wide from 5 upwards
WORLDPOP_BAND_WIDTH = 5
#: calibration factors outside this range get a warning in the factors table
PLAUSIBLE_FACTOR_RANGE = (0.67, 1.5)

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
_SHARE_TOLERANCE = 1e-9
# a cell counted more than 1.5 times over is nested zones (city + districts), not a sliver between neighbours
_NESTED_SHARE = 1.5
_NESTED_POINT_SHARE = 0.05


# ----------------------------------------------------------------------------------------------
# 1. Raster demand
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
    with rasterio.open(bands[0].path) as reference:
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
            with rasterio.open(band.path) as source:
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


# ----------------------------------------------------------------------------------------------
# 3. Partial-cell coverage and zonal totals
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Coverage:
    """Cells of a grid covered by a polygon: whole cells have share 1, edge cells the covered area share."""

    rows: np.ndarray
    cols: np.ndarray
    share: np.ndarray
    pieces: np.ndarray | None  # cell ∩ polygon for partly covered cells, None for whole cells


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3 × 3 binary dilation (a cell becomes True when it or a neighbour is)."""
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    wide = grown.copy()
    wide[:, 1:] |= grown[:, :-1]
    wide[:, :-1] |= grown[:, 1:]
    return wide


def _cell_boxes(transform: Affine, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    x0 = transform.c + cols * transform.a
    x1 = x0 + transform.a
    y0 = transform.f + rows * transform.e
    y1 = y0 + transform.e
    return shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))


def _cell_coverage(geometry, transform: Affine, shape: tuple[int, int], *, with_pieces: bool = False) -> _Coverage:
    """
    Share of each grid cell's area inside ``geometry`` (same CRS as the grid).

    Cells away from the outline come from an ``all_touched`` rasterisation
    (share 1); cells within one cell of the outline get the exact area of
    cell ∩ polygon from shapely, so adjacent polygons split a shared cell
    between them and totals add up.
    """
    if transform.b != 0 or transform.d != 0:
        raise ValueError("rotated raster grids are not supported")
    empty = _Coverage(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), None)
    if geometry is None or geometry.is_empty:
        return empty
    height, width = shape
    window = _outward_window(window_from_bounds(*geometry.bounds, transform=transform), height, width)
    if window is None:
        return empty
    # one cell of margin so that the dilated outline is never cut at the window edge
    window = _outward_window(
        Window(window.col_off - 1, window.row_off - 1, window.width + 2, window.height + 2), height, width
    )
    sub_transform = window_transform(window, transform)
    out_shape = (int(window.height), int(window.width))
    burn = {"out_shape": out_shape, "transform": sub_transform, "fill": 0, "all_touched": True, "dtype": "uint8"}
    touched = features.rasterize([(geometry, 1)], **burn).astype(bool)
    outline = features.rasterize([(geometry.boundary, 1)], **burn).astype(bool)
    near_outline = _dilate(outline)
    inner_rows, inner_cols = np.nonzero(touched & ~near_outline)
    edge_rows, edge_cols = np.nonzero(near_outline)

    boxes = _cell_boxes(sub_transform, edge_rows, edge_cols)
    shapely.prepare(geometry)
    touching = shapely.intersects(geometry, boxes)
    edge_rows, edge_cols, boxes = edge_rows[touching], edge_cols[touching], boxes[touching]
    whole = shapely.contains(geometry, boxes)  # cheap prepared test: exact areas only where the outline crosses
    pieces = np.full(len(boxes), None, dtype=object)
    edge_share = np.ones(len(boxes))
    pieces[~whole] = shapely.intersection(boxes[~whole], geometry)
    edge_share[~whole] = shapely.area(pieces[~whole]) / shapely.area(boxes[~whole])
    keep = edge_share > _SHARE_TOLERANCE
    edge_rows, edge_cols, edge_share, pieces = edge_rows[keep], edge_cols[keep], edge_share[keep], pieces[keep]
    whole = edge_share >= 1.0 - _SHARE_TOLERANCE
    edge_share[whole] = 1.0

    row_off, col_off = int(window.row_off), int(window.col_off)
    rows = np.concatenate([inner_rows, edge_rows]).astype(np.int64) + row_off
    cols = np.concatenate([inner_cols, edge_cols]).astype(np.int64) + col_off
    share = np.concatenate([np.ones(len(inner_rows)), edge_share])
    all_pieces = None
    if with_pieces:
        all_pieces = np.empty(len(rows), dtype=object)
        pieces[whole] = None
        all_pieces[len(inner_rows) :] = pieces
    return _Coverage(rows, cols, share, all_pieces)


def _normalise_code(value) -> str | None:
    """Division code as text: '420103.0' → '420103', Tianditu '156420103' → '420103'."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    if len(text) == 9 and text.startswith("156") and text.isdigit():
        text = text[3:]
    return text or None


def _zones_with_codes(zones: gpd.GeoDataFrame, code_column: str) -> gpd.GeoDataFrame:
    """Zones with normalised text codes and valid polygon geometry, in their own CRS."""
    if code_column not in zones.columns:
        raise InputDataError(
            f"the zones have no '{code_column}' column (they have {', '.join(map(str, zones.columns))})",
            column=code_column,
            hint=f"rename the zone code column to '{code_column}' or pass code_column=",
        )
    if len(zones) == 0:
        raise InputDataError("no zones given", hint="pass at least one zone polygon")
    if zones.crs is None:
        raise InputDataError("the zones have no CRS", hint="set it, e.g. zones.set_crs('EPSG:4326')")
    codes = zones[code_column].map(_normalise_code)
    if codes.isna().any():
        first = int(np.flatnonzero(codes.isna().to_numpy())[0])
        raise InputDataError("a zone has no code", row=first + 1, column=code_column)
    clean = gpd.GeoDataFrame(
        {"code": codes.to_numpy(dtype=object)},
        geometry=shapely.make_valid(np.asarray(zones.geometry.values)),
        crs=zones.crs,
    )
    if "name" in zones.columns:
        clean.insert(1, "name", zones["name"].to_numpy())
    return clean.reset_index(drop=True)


def zonal_totals(raster: ElderlyRaster, zones: gpd.GeoDataFrame, *, code_column: str = "code") -> pd.DataFrame:
    """
    Elderly persons inside each zone, with edge cells split by covered area.

    A cell on a zone's outline counts with the share of its area inside the
    zone (exact cell ∩ polygon areas for the cells along the outline, whole
    cells elsewhere), so zones that tile an area add up to the area's total.
    Parts of a zone beyond the raster (or the window read) count as 0.

    Parameters
    ----------
    raster
        From :func:`read_elderly_raster`.
    zones
        Polygons with a ``code_column`` column, any CRS.
    code_column
        Column holding the zone codes.

    Returns
    -------
    pandas.DataFrame
        ``code`` (text, Tianditu '156' prefixes dropped), ``name`` when the
        zones have one, ``elderly`` (persons, float), in the zones' order.
    """
    clean = _zones_with_codes(zones, code_column).to_crs(raster.crs)
    totals = []
    for geometry in clean.geometry:
        coverage = _cell_coverage(geometry, raster.transform, raster.shape)
        totals.append(float(np.sum(raster.persons[coverage.rows, coverage.cols] * coverage.share)))
    result = pd.DataFrame(clean.drop(columns="geometry"))
    result["elderly"] = totals
    return result


# ----------------------------------------------------------------------------------------------
# 2. Calibration to census totals
# ----------------------------------------------------------------------------------------------


def _totals_by_code(totals, code_column: str, total_column: str) -> pd.Series:
    """Census totals as a float Series indexed by normalised code."""
    if isinstance(totals, pd.DataFrame):
        for column in (code_column, total_column):
            if column not in totals.columns:
                raise InputDataError(
                    f"the totals table has no '{column}' column",
                    column=column,
                    hint="pass code_column= / total_column= naming the code and the total",
                )
        codes = totals[code_column].map(_normalise_code)
        values = pd.to_numeric(totals[total_column], errors="coerce")
    elif isinstance(totals, (pd.Series, Mapping)):
        series = pd.Series(totals)
        codes = pd.Series(series.index, index=series.index).map(_normalise_code)
        values = pd.to_numeric(series, errors="coerce")
    else:
        raise TypeError("totals must be a DataFrame, a Series or a mapping code → persons")
    by_code = pd.Series(values.to_numpy(dtype=float), index=codes.to_numpy(dtype=object))
    by_code = by_code[by_code.index.notna()]
    duplicated = by_code.index[by_code.index.duplicated()].unique()
    if len(duplicated):
        raise InputDataError(
            f"the totals list code(s) {', '.join(map(str, duplicated[:5]))} more than once",
            column=code_column,
            hint="keep one row per zone code (e.g. the county rows of read_census_60plus, level == 'county')",
        )
    return by_code


def _grid_of(demand: gpd.GeoDataFrame, raster: ElderlyRaster | None) -> dict | None:
    if raster is not None:
        return {"transform": raster.transform, "crs": raster.crs, "shape": raster.shape}
    stored = demand.attrs.get("raster_grid")
    if not stored:
        return None
    return {"transform": Affine(*stored["transform"]), "crs": CRS.from_wkt(stored["crs"]), "shape": stored["shape"]}


def _cell_parts(
    demand: gpd.GeoDataFrame, positions: np.ndarray, zones_in_grid: gpd.GeoDataFrame, grid: dict
) -> pd.DataFrame:
    """Split raster demand points into (point, zone, share, piece) parts by the cells' covered area."""
    rows = demand["row"].to_numpy(dtype=np.int64)[positions]
    cols = demand["col"].to_numpy(dtype=np.int64)[positions]
    n_cols = int(max(grid["shape"][1], cols.max(initial=-1) + 1))
    n_rows = int(max(grid["shape"][0], rows.max(initial=-1) + 1))
    cell_keys = pd.Index(rows * n_cols + cols)
    if cell_keys.has_duplicates:
        raise InputDataError(
            "several demand points share one raster cell",
            hint="calibrate the output of demand_points(), not an already calibrated table",
        )
    frames = []
    for zone_index, geometry in enumerate(zones_in_grid.geometry):
        coverage = _cell_coverage(geometry, grid["transform"], (n_rows, n_cols), with_pieces=True)
        found = cell_keys.get_indexer(coverage.rows * n_cols + coverage.cols)
        hit = found >= 0
        frames.append(
            pd.DataFrame(
                {
                    "source": positions[found[hit]],
                    "zone": zone_index,
                    "share": coverage.share[hit],
                    "piece": coverage.pieces[hit],
                }
            )
        )
    parts = pd.concat(frames, ignore_index=True)
    parts = parts.astype({"source": np.int64, "zone": np.int64, "share": float})
    covered = parts.groupby("source")["share"].sum()
    nested = covered[covered > _NESTED_SHARE]
    if len(nested):
        source = nested.index[0]
        codes = zones_in_grid["code"].to_numpy()[parts.loc[parts["source"] == source, "zone"].to_numpy()]
        raise InputDataError(
            f"zones overlap: {len(nested)} populated cells lie wholly in more than one zone "
            f"(e.g. in {', '.join(map(str, codes))})",
            hint="pass zones of one level only (e.g. districts, not a city together with its districts)",
        )
    # slivers where neighbouring outlines overlap a little: share the cell out in proportion
    parts["share"] /= covered.clip(lower=1.0).reindex(parts["source"]).to_numpy()
    outside_share = 1.0 - covered.clip(upper=1.0).reindex(positions, fill_value=0.0)
    outside = outside_share[outside_share > _SHARE_TOLERANCE]
    outside_parts = pd.DataFrame(
        {"source": outside.index.to_numpy(np.int64), "zone": -1, "share": outside.to_numpy(), "piece": None}
    )
    partly = outside_parts["share"].to_numpy() < 1.0 - _SHARE_TOLERANCE
    if partly.any():
        outside_parts.loc[partly, "piece"] = _outside_pieces(
            outside_parts.loc[partly, "source"].to_numpy(), parts, demand, grid
        )
    return pd.concat([parts, outside_parts], ignore_index=True)


def _outside_pieces(sources: np.ndarray, parts: pd.DataFrame, demand, grid: dict) -> np.ndarray:
    """The part of each cell outside all zones (cell minus the union of its zone pieces)."""
    rows = demand["row"].to_numpy(dtype=np.int64)[sources]
    cols = demand["col"].to_numpy(dtype=np.int64)[sources]
    boxes = _cell_boxes(grid["transform"], rows, cols)
    inside = parts[parts["source"].isin(sources)]
    box_at = pd.Series(np.arange(len(sources)), index=sources).loc[inside["source"].to_numpy()].to_numpy()
    pieces = inside["piece"].to_numpy()
    pieces = np.where(pd.isna(pieces), boxes[box_at], pieces)
    order = np.argsort(box_at, kind="stable")
    cells, starts = np.unique(box_at[order], return_index=True)
    covered = np.full(len(sources), None, dtype=object)
    for cell, group in zip(cells, np.split(pieces[order], starts[1:])):
        covered[cell] = shapely.union_all(group)
    outside = boxes.copy()
    has_cover = pd.notna(covered)
    outside[has_cover] = shapely.difference(boxes[has_cover], covered[has_cover].astype(object))
    return outside


def _point_parts(demand: gpd.GeoDataFrame, positions: np.ndarray, zones: gpd.GeoDataFrame) -> pd.DataFrame:
    """Non-raster demand points (buildings, uniform grid) go wholly to the zone containing them."""
    points = demand.geometry.iloc[positions]
    zones_here = zones.to_crs(demand.crs)
    tree = shapely.STRtree(np.asarray(zones_here.geometry.values))
    point_index, zone_index = tree.query(np.asarray(points.values), predicate="within")
    order = np.lexsort((zone_index, point_index))
    point_index, zone_index = point_index[order], zone_index[order]
    first = np.unique(point_index, return_index=True)[1]
    if len(point_index) - len(first) > _NESTED_POINT_SHARE * max(len(first), 1):
        raise InputDataError(
            f"zones overlap: {len(point_index) - len(first)} demand points lie in more than one zone",
            hint="pass zones of one level only (e.g. districts, not a city together with its districts)",
        )
    zone_of_point = np.full(len(positions), -1, dtype=np.int64)
    zone_of_point[point_index[first]] = zone_index[first]  # points on a sliver of overlap: the first zone
    return pd.DataFrame({"source": positions, "zone": zone_of_point, "share": 1.0, "piece": None})


def _factor_warning(factor: float, raster_total: float, census_total: float) -> str:
    low, high = PLAUSIBLE_FACTOR_RANGE
    if np.isnan(census_total):
        return "no census total for this zone: left as it is / 无普查数, 未校准"
    if raster_total <= 0:
        return "no raster population in this zone: census total not placed / 栅格中该区无人口, 无法校准"
    if factor < low or factor > high:
        return (
            f"factor {factor:.2f} is outside {low}–{high}: check that the outline and the census unit match "
            f"(boundary changes, wrong code) / 校准系数异常, 请核对边界与普查单元"
        )
    return ""


def calibrate_to_totals(
    demand: gpd.GeoDataFrame,
    zones: gpd.GeoDataFrame,
    totals,
    *,
    code_column: str = "code",
    total_column: str = "elderly",
    raster: ElderlyRaster | None = None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """
    Scale demand points so that each zone's elderly total equals its census total.

    Raster demand points are split where their cell straddles a zone outline:
    each zone gets the part of the cell's persons given by the covered area
    share (the same weighting as :func:`zonal_totals`), placed at a point
    inside that part of the cell. Every part is then multiplied by its zone's
    factor ``census_total / raster_total``, so the calibrated persons with a
    given ``zone_code`` sum to the census total (to rounding). Points outside
    all zones (and zones without a census total) are left as they are.

    Parameters
    ----------
    demand
        From :func:`demand_points` (or :func:`distribute_to_buildings`:
        non-raster points go wholly to the zone containing them).
    zones
        Polygons with a ``code_column`` column, any CRS; one level only
        (nested zones such as a city with its districts are an error; thin
        slivers where neighbouring outlines overlap are shared out).
    totals
        DataFrame with ``code_column`` and ``total_column`` (e.g. from
        :func:`read_census_60plus`), or a Series/mapping code → persons.
        Codes match after normalisation (Tianditu '156' prefixes and '.0'
        suffixes dropped).
    code_column, total_column
        Column names of the codes (zones and totals) and of the totals.
    raster
        The raster the demand points came from; by default its grid is taken
        from ``demand.attrs["raster_grid"]``. Without either, raster points
        are treated as points (whole cell to the zone of its centre).

    Returns
    -------
    demand_calibrated : geopandas.GeoDataFrame
        Columns of ``demand`` with ``elderly`` calibrated, ``demand_id``
        renumbered 0…n−1 (row-major, then zone order), plus ``zone_code`` (NA outside all zones),
        ``cell_share`` (share of the cell this point holds, 1 for whole
        cells) and ``factor``.
    factors : pandas.DataFrame
        One row per zone plus a row ``code == "outside"``: ``code``, ``name``
        (when the zones have names), ``raster_total``, ``census_total``
        (persons), ``factor`` and ``warning`` (text when the factor is outside
        0.67–1.5 or the zone could not be calibrated).
    """
    clean_zones = _zones_with_codes(zones, code_column)
    census = _totals_by_code(totals, code_column, total_column)
    grid = _grid_of(demand, raster)
    if grid is None and "method" in demand.columns and demand["method"].eq("raster").any():
        warnings.warn(
            "the raster grid of the demand points is unknown (pass raster=): whole cells go to the zone "
            "containing their centre, so zone totals can differ from zonal_totals() at the edges",
            stacklevel=2,
        )
    positions = np.arange(len(demand), dtype=np.int64)
    if grid is not None and {"row", "col"} <= set(demand.columns):
        is_cell = (
            demand["method"].eq("raster").to_numpy(dtype=bool)
            if "method" in demand.columns
            else np.ones(len(demand), dtype=bool)
        )
    else:
        is_cell = np.zeros(len(demand), dtype=bool)
    frames = []
    if is_cell.any():
        frames.append(_cell_parts(demand, positions[is_cell], clean_zones.to_crs(grid["crs"]), grid))
    if (~is_cell).any():
        frames.append(_point_parts(demand, positions[~is_cell], clean_zones))
    parts = pd.concat(frames, ignore_index=True).sort_values(["source", "zone"], kind="stable", ignore_index=True)

    persons = demand["elderly"].to_numpy(dtype=float)[parts["source"].to_numpy()] * parts["share"].to_numpy()
    zone_of_part = parts["zone"].to_numpy()
    in_zone = zone_of_part >= 0
    raster_totals = np.bincount(zone_of_part[in_zone], weights=persons[in_zone], minlength=len(clean_zones))
    census_totals = census.reindex(clean_zones["code"]).to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = np.where((raster_totals > 0) & np.isfinite(census_totals), census_totals / raster_totals, np.nan)
    applied = np.where(np.isnan(factors), 1.0, factors)
    part_factor = np.where(zone_of_part >= 0, applied[np.maximum(zone_of_part, 0)], 1.0)

    calibrated = demand.iloc[parts["source"].to_numpy()].copy()
    calibrated["elderly"] = persons * part_factor
    calibrated["demand_id"] = np.arange(len(calibrated), dtype=np.int64)
    codes = clean_zones["code"].to_numpy(dtype=object)
    calibrated["zone_code"] = pd.array(
        np.where(zone_of_part >= 0, codes[np.maximum(zone_of_part, 0)], None), dtype="string"
    )
    calibrated["cell_share"] = parts["share"].to_numpy()
    calibrated["factor"] = part_factor
    _move_to_pieces(calibrated, parts["piece"].to_numpy(), grid)
    calibrated.index = pd.RangeIndex(len(calibrated))
    calibrated.attrs = dict(demand.attrs)

    table = pd.DataFrame(clean_zones.drop(columns="geometry"))
    table["raster_total"] = raster_totals
    table["census_total"] = census_totals
    table["factor"] = factors
    table["warning"] = [_factor_warning(f, r, c) for f, r, c in zip(factors, raster_totals, census_totals)]
    outside_total = float(persons[zone_of_part < 0].sum())
    outside_row = {"code": "outside", "raster_total": outside_total, "census_total": np.nan, "factor": 1.0}
    outside_row["warning"] = (
        f"{outside_total:.0f} persons outside all zones, left uncalibrated / 区外人口未校准"
        if outside_total > 0.5
        else ""
    )
    table = pd.concat([table, pd.DataFrame([outside_row])], ignore_index=True)
    return calibrated, table


def _move_to_pieces(calibrated: gpd.GeoDataFrame, pieces: np.ndarray, grid: dict | None) -> None:
    """Put split cell parts at a point inside their part of the cell (in place)."""
    has_piece = np.array([piece is not None and not piece.is_empty for piece in pieces], dtype=bool)
    if not has_piece.any() or grid is None:
        return
    anchors = shapely.point_on_surface(pieces[has_piece].astype(object))
    x, y = shapely.get_x(anchors), shapely.get_y(anchors)
    lon, lat = _to_lonlat(x, y, grid["crs"])
    moved = gpd.GeoSeries(gpd.points_from_xy(x, y), crs=grid["crs"]).to_crs(calibrated.crs)
    geometry = np.asarray(calibrated.geometry.values).copy()
    geometry[has_piece] = np.asarray(moved.values)
    calibrated.geometry = gpd.GeoSeries(geometry, index=calibrated.index, crs=calibrated.crs)
    if "lon" in calibrated.columns:
        calibrated.loc[has_piece, "lon"] = lon
        calibrated.loc[has_piece, "lat"] = lat


# ----------------------------------------------------------------------------------------------
# 5. Administrative units of each demand point
# ----------------------------------------------------------------------------------------------

_LEVELS = ("county", "town", "village")


def _units_text(units: gpd.GeoDataFrame, column: str) -> pd.Series:
    if column not in units.columns:
        return pd.Series(pd.NA, index=units.index, dtype="string")
    return units[column].map(_normalise_code).astype("string")


def _polygon_join(points: np.ndarray, polygons: gpd.GeoDataFrame) -> np.ndarray:
    """Code of the first polygon containing each point (None where none does)."""
    codes = np.full(len(points), None, dtype=object)
    if len(polygons) == 0:
        return codes
    tree = shapely.STRtree(np.asarray(polygons.geometry.values))
    point_index, polygon_index = tree.query(points, predicate="within")
    order = np.lexsort((polygon_index, point_index))
    point_index, polygon_index = point_index[order], polygon_index[order]
    first = np.unique(point_index, return_index=True)[1]
    codes[point_index[first]] = polygons["code"].to_numpy(dtype=object)[polygon_index[first]]
    return codes


def _nearest_in_groups(
    points: np.ndarray, point_groups: np.ndarray, targets: gpd.GeoDataFrame, target_groups: np.ndarray
) -> np.ndarray:
    """Code of the nearest target point sharing the point's group (None where the group has no targets)."""
    from scipy.spatial import cKDTree

    codes = np.full(len(points), None, dtype=object)
    target_xy = shapely.get_coordinates(np.asarray(targets.geometry.values))
    point_xy = shapely.get_coordinates(points)
    target_codes = targets["code"].to_numpy(dtype=object)
    for group in pd.unique(point_groups):
        in_group = point_groups == group
        candidates = target_groups == group
        if group is None or not candidates.any():
            continue
        _, nearest = cKDTree(target_xy[candidates]).query(point_xy[in_group])
        codes[in_group] = target_codes[candidates][nearest]
    return codes


def assign_units(demand: gpd.GeoDataFrame, units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """
    County, town and village code and urban flag of each demand point.

    Polygon units are joined point-in-polygon per level (in the demand
    points' CRS). Villages given only as points: each demand point takes the
    nearest village point of its own town (villages whose ``parent_code`` is
    the town, else those lying inside the town polygon); without town
    polygons, the nearest village point of its county, or overall. Missing
    town and county codes are then filled from the ``parent_code`` of the
    level below.

    Parameters
    ----------
    demand
        Demand points (projected CRS), e.g. from :func:`demand_points`.
    units
        Administrative units per the ``units`` contract (``code``, ``name``,
        ``level`` county/town/village, ``parent_code``, ``urban``, geometry
        Polygon/MultiPolygon, Point or None; EPSG:4326).

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``demand`` with ``village_code``, ``town_code``,
        ``county_code`` (text, NA when unassigned) and ``urban`` (boolean,
        NA when unknown, taken from the village).
    """
    result = demand.copy()
    table = units.to_crs(demand.crs) if units.crs is not None else units.set_crs(demand.crs)
    table = gpd.GeoDataFrame(
        {
            "code": _units_text(table, "code").to_numpy(dtype=object),
            "level": table["level"].astype(str).str.lower().to_numpy(),
            "parent_code": _units_text(table, "parent_code").to_numpy(dtype=object),
            "urban": (
                table["urban"].astype("boolean")
                if "urban" in table.columns
                else pd.array([pd.NA] * len(table), dtype="boolean")
            ),
        },
        geometry=table.geometry.values,
        crs=demand.crs,
    )
    has_geometry = table.geometry.notna() & ~table.geometry.is_empty
    is_polygon = has_geometry & table.geom_type.isin(["Polygon", "MultiPolygon"])
    is_point = has_geometry & (table.geom_type == "Point")
    points = np.asarray(result.geometry.values)

    assigned = {}
    for level in _LEVELS:
        assigned[level] = _polygon_join(points, table[is_polygon & (table["level"] == level)])

    village_points = table[is_point & (table["level"] == "village")]
    missing = np.array([code is None for code in assigned["village"]])
    if len(village_points) and missing.any():
        assigned["village"][missing] = _nearest_village(
            points[missing], assigned, missing, village_points, table, is_polygon
        )

    parent_of = dict(zip(table["code"], table["parent_code"]))
    for lower, upper in (("village", "town"), ("town", "county")):
        fill = np.array([u is None and l is not None for l, u in zip(assigned[lower], assigned[upper])], dtype=bool)
        assigned[upper][fill] = [parent_of.get(code) for code in assigned[lower][fill]]

    for level in _LEVELS:
        result[f"{level}_code"] = pd.array(assigned[level], dtype="string")
    village_urban = table[table["level"] == "village"].drop_duplicates("code").set_index("code")["urban"]
    result["urban"] = pd.array(
        village_urban.reindex(pd.Index(assigned["village"], dtype=object)).to_numpy(), dtype="boolean"
    )
    return result


def _county_of_division_code(code: str | None) -> str | None:
    """County part of a 12-digit statistical division code (digits 1–6), as a 12-digit code."""
    if code is not None and re.fullmatch(r"\d{12}", code):
        return code[:6] + "000000"
    return None


def _county_key(code: str | None) -> str | None:
    """Compare county codes whether written with 6 digits (adcode) or 12 (statistical code)."""
    if code is None or code is pd.NA:
        return None
    if re.fullmatch(r"\d{6}(?:000000)?", code):
        return code[:6]
    return code


def _nearest_village(
    points: np.ndarray,
    assigned: dict[str, np.ndarray],
    missing: np.ndarray,
    village_points: gpd.GeoDataFrame,
    table: gpd.GeoDataFrame,
    is_polygon: pd.Series,
) -> np.ndarray:
    """Nearest village point within the demand point's town (or county, or overall)."""
    village_parent = village_points["parent_code"].to_numpy(dtype=object)
    town_polygons = table[is_polygon & (table["level"] == "town")]
    if len(town_polygons):
        groups = village_parent.copy()
        # towns whose villages carry no usable parent code: take the village points inside the town polygon
        towns_with_villages = set(village_parent[pd.notna(village_parent)])
        orphan_towns = town_polygons[~town_polygons["code"].isin(towns_with_villages)]
        if len(orphan_towns):
            inside = _polygon_join(np.asarray(village_points.geometry.values), orphan_towns)
            groups = np.where(pd.isna(groups) | ~np.isin(groups, list(towns_with_villages)), inside, groups)
        return _nearest_in_groups(points, assigned["town"][missing], village_points, groups)
    parent_of = dict(zip(table["code"], table["parent_code"]))
    village_county = [
        parent_of.get(parent) or _county_of_division_code(code)
        for code, parent in zip(village_points["code"], village_parent)
    ]
    village_county = np.array([_county_key(code) for code in village_county], dtype=object)
    county_of_point = np.array([_county_key(code) for code in assigned["county"][missing]], dtype=object)
    if pd.notna(county_of_point).any() and pd.notna(village_county).any():
        return _nearest_in_groups(points, county_of_point, village_points, village_county)
    everyone = np.full(len(points), "all", dtype=object)
    return _nearest_in_groups(points, everyone, village_points, np.full(len(village_points), "all", dtype=object))
