"""Where older people live when there is no raster: residential buildings of the OSM file, census points' Voronoi cells."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage._errors import InputDataError
from coverage.coords import utm_crs_for
from coverage.calibration import _totals_by_code, _zones_with_codes

__all__ = [
    "read_osm_buildings",
    "distribute_to_buildings",
    "voronoi_zones",
    "census_units_error",
]


#: OSM building=* values that hold homes
RESIDENTIAL_BUILDINGS = frozenset(
    "residential apartments house detached semidetached_house terrace dormitory bungalow farm "
    "cabin static_caravan houseboat".split()
)
#: OSM building=* values that hold no homes
NON_RESIDENTIAL_BUILDINGS = frozenset(
    "commercial retail office industrial warehouse manufacture school university college kindergarten hospital "
    "church cathedral chapel temple mosque shrine synagogue religious monastery civic government public "
    "train_station transportation stadium sports_hall sports_centre grandstand hotel parking garage garages "
    "carport roof shed hangar service supermarket fire_station toilets bridge greenhouse barn cowshed stable "
    "sty farm_auxiliary kiosk gatehouse power transformer_tower water_tower pavilion ruins construction "
    "military bunker tower silo storage_tank mall department_store".split()
)
#: OSM amenity=* values that make a building=yes non-residential
NON_RESIDENTIAL_AMENITIES = frozenset(
    "school university college kindergarten hospital clinic place_of_worship townhall police fire_station "
    "library theatre cinema marketplace bank post_office parking community_centre".split()
)
#: OSM keys whose presence on a generic building (building=yes) says it is used for something other than homes
NON_RESIDENTIAL_KEYS = ("shop", "office", "amenity", "healthcare", "tourism", "craft", "leisure", "industrial",
                        "government", "public_transport", "railway", "aeroway", "military", "man_made")
#: shop=* values that make even a residential-tagged building a non-residential one
NON_RESIDENTIAL_SHOPS = frozenset({"mall", "department_store", "supermarket", "wholesale"})
#: OSM landuse=* values in which a generic building (building=yes) counts as holding homes
RESIDENTIAL_LANDUSE = frozenset({"residential"})
#: OSM landuse=* values that rule homes out for a generic building, even where residential land use overlaps
NON_RESIDENTIAL_LANDUSE = frozenset(
    "commercial retail industrial education institutional religious military railway construction "
    "garages port depot".split()
)


def _building_use(
    building: pd.Series,
    amenity: pd.Series,
    *,
    other_use: pd.Series | None = None,
    shop: pd.Series | None = None,
    landuse: pd.Series | None = None,
) -> np.ndarray:
    """
    'residential', 'non_residential' or 'unknown' per building, as homes are placed without a raster.

    Parameters
    ----------
    building, amenity
        ``building=*`` and ``amenity=*`` tag values (missing: NaN/None).
    other_use
        True where the footprint carries any of :data:`NON_RESIDENTIAL_KEYS`
        (shop, office, amenity …); such a generic building holds no homes.
    shop
        ``shop=*`` values; ``mall``, ``department_store``, ``supermarket`` or
        ``wholesale`` make even ``building=residential`` non-residential.
    landuse
        The ``landuse=*`` around each building: ``residential``, a value of
        :data:`NON_RESIDENTIAL_LANDUSE`, or missing (see :func:`read_osm_buildings`).

    Returns
    -------
    numpy.ndarray
        ``residential``: a home building (``building=residential``,
        ``apartments``, ``house`` …, or a generic ``building=yes`` with no
        shop/office/amenity tag inside ``landuse=residential``);
        ``non_residential``: shops, malls, offices, schools, hospitals …;
        ``unknown``: a generic building outside residential land use. Homes
        are placed only on ``residential`` ones.
    """
    values = building.fillna("yes").astype(str).str.lower().to_numpy()
    amenities = amenity.fillna("").astype(str).str.lower().to_numpy()
    n = len(values)
    other = np.zeros(n, bool) if other_use is None else other_use.fillna(False).to_numpy(bool)
    shops = np.full(n, "", dtype=object) if shop is None else shop.fillna("").astype(str).str.lower().to_numpy()
    land = np.full(n, "", dtype=object) if landuse is None else landuse.fillna("").astype(str).str.lower().to_numpy()
    use = np.full(n, "unknown", dtype=object)
    listed_home = np.isin(values, list(RESIDENTIAL_BUILDINGS))
    listed_other = np.isin(values, list(NON_RESIDENTIAL_BUILDINGS))
    generic = ~listed_home & ~listed_other
    # a generic building holds homes only inside residential land use, with no shop/office/amenity of its own
    use[generic & np.isin(land, list(RESIDENTIAL_LANDUSE)) & ~other] = "residential"
    use[listed_home] = "residential"
    non_residential = (
        listed_other
        | (generic & (other | np.isin(amenities, list(NON_RESIDENTIAL_AMENITIES))))
        | (generic & np.isin(land, list(NON_RESIDENTIAL_LANDUSE)))
        | np.isin(shops, list(NON_RESIDENTIAL_SHOPS))
    )
    use[non_residential] = "non_residential"
    return use


def read_osm_buildings(osm_path: str | Path) -> gpd.GeoDataFrame:
    """
    Building footprints from an OpenStreetMap file (.osm XML, .osm.pbf, .osm.bz2).

    Closed ways and multipolygon relations tagged ``building=*`` (other than
    ``building=no``) are assembled into polygons with pyosmium, together with
    the ``landuse=*`` areas and the shop/amenity points of the file, which
    decide whether a generic ``building=yes`` holds homes (see
    :func:`_building_use`): only inside ``landuse=residential``, and not when
    it carries, or holds a point of, a mall, department store, school,
    hospital and the like.

    Parameters
    ----------
    osm_path
        OSM file; the format is taken from the extension (``.osm.xml`` and
        ``.xml`` are read as XML).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``osm_type`` (``way``/``relation``), ``osm_id``,
        ``building`` (tag value), ``amenity``, ``shop``, ``name``, ``levels``
        (float, ``building:levels``), ``landuse`` (of the land-use area the
        building stands in, ``residential`` or a non-residential value, else
        missing), ``use`` (``residential``/``non_residential``/``unknown``),
        geometry (Polygon/MultiPolygon).
    """
    import osmium

    path = Path(osm_path)
    if not path.exists():
        raise InputDataError("OSM file not found", path=path)
    file_type = "xml" if path.name.lower().endswith((".osm.xml", ".xml")) else None
    source = osmium.io.File(str(path), file_type) if file_type else str(path)
    processor = (
        osmium.FileProcessor(source)
        .with_areas(osmium.filter.KeyFilter("building", "landuse"))
        .with_filter(osmium.filter.KeyFilter("building", "landuse", "shop", "amenity"))
    )
    factory = osmium.geom.WKBFactory()
    records, landuse_records, poi_xy = [], [], []
    for obj in processor:
        if obj.is_node():
            # a point of a whole-building use (mall, school, hospital …) inside a generic building
            shop, amenity = obj.tags.get("shop"), obj.tags.get("amenity")
            if shop in NON_RESIDENTIAL_SHOPS - {"supermarket"} or amenity in NON_RESIDENTIAL_AMENITIES:
                if obj.location.valid():
                    poi_xy.append((obj.location.lon, obj.location.lat))
            continue
        if not obj.is_area():
            continue
        area = obj
        building = area.tags.get("building")
        landuse = area.tags.get("landuse")
        if building is None or building == "no":
            if landuse in RESIDENTIAL_LANDUSE or landuse in NON_RESIDENTIAL_LANDUSE:
                try:
                    wkb = factory.create_multipolygon(area)
                except RuntimeError:
                    continue
                landuse_records.append((landuse, bytes.fromhex(wkb) if isinstance(wkb, str) else wkb))
            continue
        try:
            wkb = factory.create_multipolygon(area)
        except RuntimeError:
            continue  # broken ring: skip the building, as osmnx does
        levels = pd.to_numeric(area.tags.get("building:levels"), errors="coerce")
        records.append(
            {
                "osm_type": "way" if area.from_way() else "relation",
                "osm_id": int(area.orig_id()),
                "building": building,
                "amenity": area.tags.get("amenity"),
                "shop": area.tags.get("shop"),
                "name": area.tags.get("name"),
                "levels": float(levels) if levels is not None else np.nan,
                "other_use": any(key in area.tags for key in NON_RESIDENTIAL_KEYS),
                "wkb": bytes.fromhex(wkb) if isinstance(wkb, str) else wkb,
            }
        )
    columns = ["osm_type", "osm_id", "building", "amenity", "shop", "name", "levels"]
    frame = pd.DataFrame.from_records(records, columns=[*columns, "other_use", "wkb"])
    geometry = shapely.from_wkb(frame["wkb"].to_numpy()) if len(frame) else np.empty(0, dtype=object)
    single = shapely.get_num_geometries(geometry) == 1
    geometry = np.where(single, shapely.get_geometry(geometry, 0), geometry)  # one-ring buildings as Polygon
    buildings = gpd.GeoDataFrame(frame[columns], geometry=geometry, crs="EPSG:4326")
    anchors = shapely.point_on_surface(np.asarray(buildings.geometry.values)) if len(buildings) else geometry
    buildings["landuse"] = _landuse_at(anchors, landuse_records)
    other_use = frame["other_use"].astype(bool).to_numpy().copy()
    if poi_xy and len(buildings):
        points = shapely.points(np.asarray(poi_xy, float))
        hit_building, _ = shapely.STRtree(points).query(np.asarray(buildings.geometry.values), predicate="contains")
        other_use[np.unique(hit_building)] = True
    buildings["use"] = _building_use(buildings["building"], buildings["amenity"],
                                     other_use=pd.Series(other_use, index=buildings.index),
                                     shop=buildings["shop"], landuse=buildings["landuse"])
    return buildings


def _landuse_at(anchors: np.ndarray, landuse_records: list[tuple[str, bytes]]) -> np.ndarray:
    """
    The land use at each building's inside point: a non-residential value wins over ``residential``.

    Parameters
    ----------
    anchors
        One point per building (WGS-84).
    landuse_records
        ``(landuse value, WKB polygon)`` pairs of the OSM file.

    Returns
    -------
    numpy.ndarray
        Object array: ``residential``, a value of :data:`NON_RESIDENTIAL_LANDUSE` or None.
    """
    out = np.full(len(anchors), None, dtype=object)
    if not landuse_records or len(anchors) == 0:
        return out
    values = np.array([value for value, _ in landuse_records], dtype=object)
    polygons = shapely.make_valid(shapely.from_wkb([wkb for _, wkb in landuse_records]))
    point_index, area_index = shapely.STRtree(polygons).query(anchors, predicate="within")
    residential = point_index[np.isin(values[area_index], list(RESIDENTIAL_LANDUSE))]
    out[residential] = "residential"
    other = np.isin(values[area_index], list(NON_RESIDENTIAL_LANDUSE))
    out[point_index[other]] = values[area_index[other]]
    return out


def _uniform_grid_points(zone, spacing_m: float) -> np.ndarray:
    """Centres of a ``spacing_m`` grid inside a projected polygon (its representative point if none fall inside)."""
    minx, miny, maxx, maxy = zone.bounds
    xs = np.arange(math.floor(minx / spacing_m) * spacing_m + spacing_m / 2, maxx, spacing_m)
    ys = np.arange(math.floor(miny / spacing_m) * spacing_m + spacing_m / 2, maxy, spacing_m)
    grid_x, grid_y = np.meshgrid(xs, ys)
    candidates = shapely.points(grid_x.ravel(), grid_y.ravel())
    shapely.prepare(zone)
    inside = candidates[shapely.contains(zone, candidates)]
    if len(inside) == 0:
        inside = np.array([shapely.point_on_surface(zone)], dtype=object)
    return inside


def distribute_to_buildings(
    zones: gpd.GeoDataFrame,
    totals,
    buildings: gpd.GeoDataFrame | None,
    *,
    code_column: str = "code",
    total_column: str = "elderly",
    working_crs=None,
    grid_spacing_m: float = 100.0,
) -> gpd.GeoDataFrame:
    """
    Demand points without a raster: each zone's total spread over its homes.

    A zone's total goes to the residential building footprints inside it in
    proportion to footprint area, one point per building at a point inside
    its footprint. Residential means ``use == "residential"`` (see
    :func:`read_osm_buildings`: ``building=residential``/``apartments``/
    ``house`` …, or an untagged ``building=yes`` inside
    ``landuse=residential``); malls, shops, offices, schools, hospitals and
    generic buildings outside residential land never get homes. A zone
    without residential buildings gets its total spread evenly over a
    ``grid_spacing_m`` grid inside it, leaving out grid points that fall in a
    non-residential footprint.

    Parameters
    ----------
    zones
        Polygons with ``code_column``, any CRS.
    totals
        As for :func:`calibrate_to_totals`.
    buildings
        Footprint polygons (e.g. :func:`read_osm_buildings`), any CRS; with a
        ``use`` column only ``residential`` ones hold homes (without it every
        footprint does). None means no buildings (uniform grid everywhere).
    code_column, total_column
        Column names of the codes and of the totals.
    working_crs
        CRS of the output points; default the UTM zone of the zones' centre.
    grid_spacing_m
        Grid spacing (metres) for zones without buildings.

    Returns
    -------
    geopandas.GeoDataFrame
        ``demand_id``, ``elderly`` (persons), ``row``, ``col`` (NA: no
        raster cell), ``lon``, ``lat`` (degrees), ``method`` (``buildings``
        or ``uniform``), ``zone_code``, geometry in ``working_crs``. Each
        zone's points sum to its total; zones without a total get none.
    """
    clean_zones = _zones_with_codes(zones, code_column)
    census = _totals_by_code(totals, code_column, total_column)
    if working_crs is None:
        centre = clean_zones.to_crs("EPSG:4326").union_all().envelope.centroid
        working_crs = utm_crs_for(centre.x, centre.y)
    zones_m = clean_zones.to_crs(working_crs)

    homes = np.empty(0, dtype=object)
    not_homes = None  # footprints a uniform grid point must not fall in
    if buildings is not None and len(buildings):
        usable = buildings[buildings.geometry.notna() & ~buildings.geometry.is_empty]
        usable = usable[usable.geom_type.isin(["Polygon", "MultiPolygon"])]
        if "use" in usable.columns:
            candidates = usable[usable["use"] == "residential"]
            others = usable[usable["use"] == "non_residential"]
            if len(others):
                not_homes = shapely.STRtree(np.asarray(others.to_crs(working_crs).geometry.values))
        else:
            candidates = usable
        homes = np.asarray(candidates.to_crs(working_crs).geometry.values)
    anchors = shapely.point_on_surface(homes) if len(homes) else homes
    areas = shapely.area(homes) if len(homes) else np.empty(0)
    tree = shapely.STRtree(anchors) if len(anchors) else None

    frames = []
    claimed = np.zeros(len(anchors), dtype=bool)  # a building on a shared outline goes to the first zone
    for code, zone in zip(zones_m["code"], zones_m.geometry):
        total = census.get(code, np.nan)
        if not np.isfinite(total) or total <= 0 or zone is None or zone.is_empty:
            continue
        inside = tree.query(zone, predicate="intersects") if tree is not None else np.empty(0, dtype=np.int64)
        inside = np.sort(inside[~claimed[inside]])
        claimed[inside] = True
        if len(inside) and areas[inside].sum() > 0:
            points, weights, method = anchors[inside], areas[inside], "buildings"
        else:
            points = _uniform_grid_points(zone, grid_spacing_m)
            if not_homes is not None:
                # no one lives in a mall or a school: drop grid points inside such footprints (if any remain)
                in_other, _ = not_homes.query(points, predicate="within")
                keep = np.ones(len(points), bool)
                keep[in_other] = False
                if keep.any():
                    points = points[keep]
            weights, method = np.ones(len(points)), "uniform"
        frames.append(
            pd.DataFrame(
                {"elderly": total * weights / weights.sum(), "method": method, "zone_code": code, "geometry": points}
            )
        )
    if frames:
        table = pd.concat(frames, ignore_index=True)
    else:
        table = pd.DataFrame({"elderly": [], "method": [], "zone_code": [], "geometry": []})
    points = gpd.GeoDataFrame(table, geometry="geometry", crs=working_crs)
    lonlat = points.geometry.to_crs("EPSG:4326")
    points.insert(0, "demand_id", np.arange(len(points), dtype=np.int64))
    points.insert(2, "row", pd.array([pd.NA] * len(points), dtype="Int64"))
    points.insert(3, "col", pd.array([pd.NA] * len(points), dtype="Int64"))
    points.insert(4, "lon", lonlat.x.to_numpy())
    points.insert(5, "lat", lonlat.y.to_numpy())
    points["zone_code"] = points["zone_code"].astype("string")
    return points


def census_units_error(
    units: gpd.GeoDataFrame,
    census_codes: pd.Series,
    level: str,
    *,
    census_path: str | Path | None = None,
    units_path: str | Path | None = None,
) -> InputDataError:
    """
    The error to raise when no unit of the units file can carry the census totals, saying what is missing.

    Parameters
    ----------
    units
        Administrative units with ``code``, ``level``, geometry.
    census_codes
        Codes of the census table (normalised text).
    level
        ``inputs.population.census.level``.
    census_path, units_path
        The two files, for the message.

    Returns
    -------
    InputDataError
        Naming the census file and, in the message, the units file, the
        level, examples of both files' codes and what to do.
    """
    units_name = Path(units_path).name if units_path is not None else "the units file"
    levels = units["level"].dropna().astype(str)
    at_level = units[units["level"] == level]
    census_examples = ", ".join(pd.Series(census_codes).astype(str).head(3))
    if at_level.empty:
        present = ", ".join(f"{name} ({count})" for name, count in levels.value_counts().items()) or "none"
        return InputDataError(
            f"{units_name} has no units of level '{level}' (inputs.population.census.level); its levels: {present} "
            f"/ 行政区划文件中没有“{level}”级单位",
            path=census_path,
            hint="set inputs.population.census.level to the level of the census rows (county, town or village), "
                 "or add those units to the units file / 请将普查级别改为普查表对应的级别，或在行政区划文件中补充该级单位",
        )
    matched = at_level[at_level["code"].isin(pd.Series(census_codes).astype(str))]
    if matched.empty:
        unit_examples = ", ".join(at_level["code"].astype(str).head(3))
        return InputDataError(
            f"none of the {len(at_level)} {level} units of {units_name} has a code found in the census table "
            f"(census codes e.g. {census_examples}; unit codes e.g. {unit_examples}) / 普查表代码与行政区划代码对不上",
            path=census_path,
            hint="set inputs.population.census.code_column to the column of 12-digit division codes (统计用区划代码), "
                 "and check that both files use the same code year and length / 请核对普查表代码列及代码位数、年份",
        )
    return InputDataError(
        f"the {len(matched)} {level} units of {units_name} with census codes have neither a polygon nor a point "
        f"(no coordinates), so their totals cannot be placed / 对应的行政区划单位没有坐标或边界",
        path=census_path,
        hint="give the units file polygons (边界面) or community-office points (村/社区点位) for these units, "
             "or give inputs.population.rasters (WorldPop age bands) / 请补充单位边界或点位，或提供人口栅格",
    )


def voronoi_zones(
    points: gpd.GeoDataFrame,
    *,
    working_crs,
    parents: gpd.GeoDataFrame | None = None,
    area=None,
    exclude=None,
    code_column: str = "code",
    parent_column: str = "parent_code",
    min_cell_radius_m: float = 50.0,
) -> gpd.GeoDataFrame:
    """
    Zones for census totals given on points (community offices): the Voronoi cell of each point.

    Points whose parent unit has a polygon share out that polygon among
    themselves (cells of the points with the same parent, clipped to it);
    the other points share out ``area`` (the study area). Every point gets
    a non-empty zone, so no total is lost: a point whose cell misses its
    clip polygon altogether (e.g. an office outside its town's outline) gets
    a disc of ``min_cell_radius_m`` around itself. Points at one position
    (two committees in one office) share its cell.

    Parameters
    ----------
    points
        Census units as points (any CRS), with ``code_column`` and, for
        clipping to parents, ``parent_column``.
    working_crs
        Projected CRS (metres) of the output zones.
    parents
        Polygons (any CRS) with ``code`` that the points' ``parent_column``
        refers to (e.g. town polygons for village points); optional.
    area
        Shapely polygon in WGS-84 degrees (the study area) for points
        without a parent polygon; None when there is none.
    exclude
        Shapely polygon in WGS-84 degrees taken out of every clip area (the
        zones that already have their own polygon); optional.
    code_column, parent_column
        Column names.
    min_cell_radius_m
        Radius (metres) of the disc a point gets when its cell is empty.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code``, ``clip`` (``parent`` / ``study area`` / ``point``), polygon
        geometry in ``working_crs``; one row per distinct code.

    Raises
    ------
    InputDataError
        When some points have neither a parent polygon nor a study area to
        share out.
    """
    frame = points[points.geometry.notna() & ~points.geometry.is_empty].drop_duplicates(code_column)
    frame = frame.to_crs(working_crs)
    def projected(shape):
        if shape is None or shape.is_empty:
            return None
        return shapely.make_valid(gpd.GeoSeries([shape], crs="EPSG:4326").to_crs(working_crs).iloc[0])

    exclude_m, area_m = projected(exclude), projected(area)

    parent_shapes: dict[str, object] = {}
    if parents is not None and len(parents):
        polygons = parents[parents.geom_type.isin(["Polygon", "MultiPolygon"])].to_crs(working_crs)
        for code, shape in zip(polygons["code"].astype(str), shapely.make_valid(np.asarray(polygons.geometry.values))):
            parent_shapes.setdefault(code, shape)
    parent_codes = (frame[parent_column].astype("string").fillna("").to_numpy(str)
                    if parent_column in frame.columns else np.full(len(frame), "", dtype=object))
    has_parent = np.isin(parent_codes, list(parent_shapes))
    if (~has_parent).any() and area_m is None:
        missing = frame.loc[~has_parent, code_column].astype(str).tolist()
        raise InputDataError(
            f"{len(missing)} census unit(s) are points (e.g. {', '.join(missing[:5])}) with no parent polygon "
            "and no study-area outline to share out among them / 普查单位只有点位，没有上级边界或研究区边界",
            hint="add the town or county polygons (outline of the study area) to the units file, or give the "
                 "census units as polygons / 请在行政区划文件中加入乡镇或县边界面",
        )
    if len(parent_shapes) and area_m is not None:
        # points without a parent polygon share what the parent polygons leave of the study area
        rest = shapely.difference(area_m, shapely.union_all(list(parent_shapes.values())))
        area_rest = rest if not rest.is_empty else area_m
    else:
        area_rest = area_m

    codes = frame[code_column].astype(str).to_numpy()
    geometry = np.asarray(frame.geometry.values)
    cells = np.full(len(frame), None, dtype=object)
    clip_kind = np.full(len(frame), "", dtype=object)
    groups = [(np.flatnonzero(has_parent & (parent_codes == parent)), parent_shapes[parent], "parent")
              for parent in sorted(set(parent_codes[has_parent]))]
    if (~has_parent).any():
        groups.append((np.flatnonzero(~has_parent), area_rest, "study area"))
    for members, clip, kind in groups:
        if exclude_m is not None:
            trimmed = shapely.difference(clip, exclude_m)
            clip = trimmed if not trimmed.is_empty else clip
        if len(members) == 1:
            group_cells = np.array([clip], dtype=object)
        else:
            xy = shapely.get_coordinates(geometry[members])
            unique_xy, position = np.unique(xy, axis=0, return_inverse=True)
            if len(unique_xy) == 1:
                group_cells = np.array([clip] * len(members), dtype=object)
            else:
                # the cells of voronoi_polygons(ordered=True) follow the order of the input points
                diagram = shapely.voronoi_polygons(shapely.multipoints(unique_xy), extend_to=clip.envelope.buffer(1.0),
                                                   ordered=True)
                unique_cells = np.asarray(shapely.get_parts(diagram))
                group_cells = shapely.intersection(unique_cells[np.ravel(position)], clip)
        cells[members] = group_cells
        clip_kind[members] = kind
    empty = np.array([cell is None or cell.is_empty or cell.area <= 0 for cell in cells])
    if empty.any():
        cells[empty] = shapely.buffer(geometry[empty], min_cell_radius_m)
        clip_kind[empty] = "point"
    polygonal = [shapely.make_valid(cell) for cell in cells]
    polygonal = [cell if cell.geom_type in ("Polygon", "MultiPolygon")
                 else shapely.union_all([part for part in shapely.get_parts(cell)
                                         if part.geom_type in ("Polygon", "MultiPolygon")])
                 for cell in polygonal]
    return gpd.GeoDataFrame({"code": codes, "clip": clip_kind}, geometry=polygonal, crs=working_crs)

