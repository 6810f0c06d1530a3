"""Read OpenStreetMap ways with pyosmium and choose them as osmnx's walk / drive / all filters do (one-way rules)."""

from __future__ import annotations

from pathlib import Path

from coverage._errors import InputDataError

#: highway values no pedestrian may use (osmnx's "walk" filter, plus trunk links:
#: ramps of China's urban expressways have no footway)
EXCLUDED_HIGHWAY = frozenset(
    {
        "abandoned", "bus_guideway", "construction", "cycleway", "motorway", "motorway_link",
        "trunk_link", "no", "planned", "platform", "proposed", "raceway", "razed", "rest_area",
        "services", "escape", "busway", "corridor_planned",
    }
)

#: highway values no car may use (osmnx's "drive" filter: no service roads, paths or tracks)
DRIVE_EXCLUDED_HIGHWAY = frozenset(
    {
        "abandoned", "bridleway", "bus_guideway", "construction", "corridor", "cycleway", "elevator",
        "escalator", "footway", "no", "path", "pedestrian", "planned", "platform", "proposed", "raceway",
        "razed", "rest_area", "service", "services", "steps", "track",
    }
)

#: service=* values osmnx's "drive" filter drops
DRIVE_EXCLUDED_SERVICE = frozenset({"alley", "driveway", "emergency_access", "parking", "parking_aisle", "private"})

#: highway values no traffic uses (osmnx's "all" filter)
ALL_EXCLUDED_HIGHWAY = frozenset(
    {"abandoned", "construction", "no", "planned", "platform", "proposed", "raceway", "razed", "rest_area",
     "services"}
)

#: the way selections a network can be loaded with (see :func:`load_walk_arrays`)
WAY_SELECTIONS = ("walk", "drive", "all")

#: OSM ``oneway`` values that make a way one-way, and those among them that run against its node order
#: (as osmnx reads them)
ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})
REVERSED_ONEWAY_VALUES = frozenset({"-1", "reverse", "T"})

#: file endings read as raw OSM by pyosmium
RAW_OSM_SUFFIXES = (".osm", ".osm.xml", ".xml", ".osm.pbf", ".pbf", ".osm.bz2", ".osm.gz")


def is_walkable(tags: dict[str, str]) -> bool:
    """
    Whether an OSM way with these tags belongs to the walking network.

    Mirrors osmnx's ``walk`` network filter: any ``highway=*`` way that is not
    an area, not private, not foot=no, not a motorway, cycleway or
    construction, and not mapped as a separate sidewalk.

    Parameters
    ----------
    tags
        The way's OSM tags.

    Returns
    -------
    bool
    """
    highway = tags.get("highway")
    if highway is None or highway in EXCLUDED_HIGHWAY or highway.startswith("motor"):
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private" or tags.get("foot") == "no":
        return False
    if tags.get("service") == "private":
        return False
    for key in ("sidewalk", "sidewalk:both", "sidewalk:left", "sidewalk:right"):
        if tags.get(key) == "separate":
            return False
    return True


def is_ferry(tags: dict[str, str]) -> bool:
    """Whether an OSM way is a ferry line (``route=ferry``) that foot passengers may use."""
    return tags.get("route") == "ferry" and tags.get("foot") != "no"


def is_drivable(tags: dict[str, str]) -> bool:
    """
    Whether an OSM way with these tags belongs to the driving network.

    Mirrors osmnx's ``drive`` network filter: any ``highway=*`` way that is
    not an area, not private, not closed to motor vehicles and not a path,
    track, service road or similar (motorways and trunk roads are in).

    Parameters
    ----------
    tags
        The way's OSM tags.

    Returns
    -------
    bool
    """
    highway = tags.get("highway")
    if highway is None or highway in DRIVE_EXCLUDED_HIGHWAY:
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private":
        return False
    if tags.get("motor_vehicle") == "no" or tags.get("motorcar") == "no":
        return False
    return tags.get("service") not in DRIVE_EXCLUDED_SERVICE


def is_any_way(tags: dict[str, str]) -> bool:
    """Whether an OSM way is in use by some traffic (osmnx's ``all`` filter): the union network of the profiles."""
    highway = tags.get("highway")
    if highway is None or highway in ALL_EXCLUDED_HIGHWAY:
        return False
    if tags.get("area") == "yes" or tags.get("access") == "private":
        return False
    return tags.get("service") != "private"


def is_car_ferry(tags: dict[str, str]) -> bool:
    """Whether an OSM way is a ferry line (``route=ferry``) that carries cars (``motorcar``/``motor_vehicle=yes``)."""
    return tags.get("route") == "ferry" and "yes" in (tags.get("motorcar"), tags.get("motor_vehicle"))


def oneway_direction(tags: dict[str, str]) -> int:
    """
    One-way rule of an OSM way for vehicles, as osmnx reads it.

    Returns
    -------
    int
        0 both ways, 1 only in the way's node order, -1 only against it
        (``oneway=-1`` / ``reverse``). ``junction=roundabout`` is one-way.
    """
    oneway = tags.get("oneway")
    if oneway in ONEWAY_VALUES:
        return -1 if oneway in REVERSED_ONEWAY_VALUES else 1
    return 1 if tags.get("junction") == "roundabout" else 0


def _way_filter(ways: str):
    """The (way, ferry) predicates of a way selection: ``walk``, ``drive`` or ``all``."""
    if ways == "walk":
        return is_walkable, is_ferry
    if ways == "drive":
        return is_drivable, is_car_ferry
    if ways == "all":
        return is_any_way, lambda tags: is_ferry(tags) or is_car_ferry(tags)
    raise ValueError(f"ways must be one of {', '.join(WAY_SELECTIONS)}, got {ways!r}")


def _read_raw_osm(
    path: Path, ways: str = "walk"
) -> tuple[dict[int, tuple[float, float]], list[tuple[int, list[int], dict]]]:
    """
    Read nodes and walkable/ferry ways (or those of another way selection) from an OSM file with pyosmium.

    Parameters
    ----------
    path
        The OSM file.
    ways
        ``"walk"`` (walkable ways and foot ferries), ``"drive"`` (drivable
        ways and car ferries) or ``"all"`` (both, and every other way in use).

    Returns
    -------
    tuple
        node locations ``{id: (lon, lat)}`` (only nodes used by kept ways) and
        the kept ways as ``(way id, node ids, tags)``. Ways whose nodes are
        missing from the extract are split at the missing nodes.
    """
    import osmium

    keep_way, keep_ferry = _way_filter(ways)
    node_lonlat: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict]] = []
    # nodes must be read for the location cache; only ways reach this loop
    processor = (
        osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
        .with_locations()
        .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
        # buildings and land use never reach Python: most ways of a city extract
        .with_filter(osmium.filter.KeyFilter("highway", "route"))
    )
    for way in processor:
        tags = dict(way.tags)
        ferry = keep_ferry(tags)
        if not (ferry or keep_way(tags)):
            continue
        keep = {k: tags[k] for k in ("highway", "name", "bridge", "tunnel", "route", "foot", "service") if k in tags}
        # the vehicles' one-way rule, for the arrays only (the walking graph stays two-way)
        keep["_oneway"] = oneway_direction(tags)
        if ferry:
            keep["ferry"] = True
            keep.setdefault("highway", "ferry")
        run: list[int] = []
        for node_ref in way.nodes:
            if node_ref.location.valid():
                node_lonlat[node_ref.ref] = (node_ref.location.lon, node_ref.location.lat)
                run.append(node_ref.ref)
            else:
                if len(run) >= 2:
                    ways.append((way.id, run, keep))
                run = []
        if len(run) >= 2:
            ways.append((way.id, run, keep))
    return node_lonlat, ways


def _read_walkable_osm(
    path: Path, ways: str = "walk"
) -> tuple[dict[int, tuple[float, float]], list[tuple[int, list[int], dict]]]:
    """
    :func:`_read_raw_osm`, with the planner-facing errors for an unreadable file or one without streets.

    Raises
    ------
    InputDataError
        The file is not OpenStreetMap data, or holds no walkable way.
    """
    try:
        node_lonlat, kept = _read_raw_osm(path, ways)
    except RuntimeError as exc:
        raise InputDataError(
            f"cannot read as OpenStreetMap data: {exc}",
            path=path,
            hint="export the area again from OpenStreetMap as .osm or .osm.pbf / 请重新导出OSM文件",
        ) from None
    if not kept:
        raise InputDataError(
            "no walkable ways (highway=*) in the file" if ways == "walk" else f"no ways for '{ways}' in the file",
            path=path,
            hint="the extract must contain streets and paths, not only buildings or land use",
        )
    return node_lonlat, kept
