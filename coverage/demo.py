"""Generate the synthetic demo county (合成示例数据 / synthetic demo data) in the real input formats.

The demo area is a fictional county, 示例县（合成）(code 429901), placed near
113.90E, 30.95N (UTM zone 49N). It is written in the same formats as real
inputs so that a demo run goes through the same loaders:

* administrative units (county → towns/streets → villages/communities) as
  GeoJSON polygons that tile each other;
* a walking network as OSM XML 0.6, with a river crossed only at bridges, an
  island reached only by ferry, and ways a walking filter must drop (motorway,
  construction, buildings, land use);
* WorldPop-style age × sex population rasters (persons per ~100 m cell);
* a census table of 60+ totals per town, deliberately higher than the raster
  sums, as WorldPop undercounts the urban elderly;
* a facility list as an Excel sheet with a title row and GCJ-02 coordinates
  (plus the same table as a GBK CSV), including three bad rows;
* the study configuration ``studies/demo.yaml`` and ``data/demo/README.md``.

Every file carries the label 合成示例数据 / synthetic demo data. All
randomness comes from ``numpy.random.default_rng(20240601)`` drawn in a fixed
order, so two runs write the same content. Geometry is built in local metres
(UTM 49N shifted to the county centre) and converted to WGS-84 on output.

Run ``python -m coverage.demo [ROOT]`` to regenerate the committed files into
the repository root (or into ROOT).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, mapping
from shapely.geometry.base import BaseGeometry

#: seed of the one random generator every random choice is drawn from
SEED = 20240601

#: the label every generated file carries
LABEL = "合成示例数据 / synthetic demo data"

COUNTY_CODE = "429901000000"
COUNTY_NAME = "示例县（合成）"
COUNTY_SHORT_NAME = "示例县"

#: county centre (WGS-84 degrees) and the metric CRS the geometry is built in
CENTRE_LON, CENTRE_LAT = 113.90, 30.95
WORK_CRS = "EPSG:32649"

#: WorldPop grid: 3 arc-seconds, the float32 nodata value of WorldPop files
CELL_DEG = 1.0 / 1200.0
WORLDPOP_NODATA = -3.4028234663852886e38

#: 5-year age bands of the rasters (80 = 80 and over)
AGE_BANDS: tuple[int, ...] = (60, 65, 70, 75, 80)
#: share of each band in the 60+ population (China, 2020 census, rounded)
AGE_BAND_SHARE = {60: 0.278, 65: 0.280, 70: 0.188, 75: 0.118, 80: 0.136}
#: female share within each band
FEMALE_SHARE = {60: 0.495, 65: 0.505, 70: 0.515, 75: 0.535, 80: 0.585}

#: walking ways use 7 decimals (≈1 cm) like OSM; facility tables 6 decimals
OSM_DECIMALS = 7
FACILITY_DECIMALS = 6

# --- layout of the demo county, local metres east/north of the centre -------
COUNTY_RADIUS_M = 7800.0
CORE_CENTRE = (-200.0, 650.0)
CORE_SEMI_AXES = (2100.0, 1700.0)
OLD_TOWN_CENTRE = (-300.0, 1000.0)
RIVER_HALF_WIDTH_M = 110.0
ISLAND_RIVER_X = 3800.0
WEST_BRIDGE_X = -5600.0
EAST_BRIDGE_X = 6000.0
CONSTRUCTION_BRIDGE_X = 1500.0
URBAN_GRID_SPACING = (165.0, 145.0)
URBAN_GRID_ROTATION_DEG = 7.0

#: streets of the urban core: name, seed (local m), number of communities
STREETS: tuple[tuple[str, tuple[float, float], int], ...] = (
    ("城关街道", (-300.0, 1250.0), 5),
    ("滨江街道", (100.0, -400.0), 4),
    ("东城街道", (1400.0, 1000.0), 4),
    ("西城街道", (-1800.0, 500.0), 3),
)
#: rural towns/townships: name, town code part, seat (local m), seat community name
TOWNS: tuple[tuple[str, str, tuple[float, float], str], ...] = (
    ("白沙镇", "100", (-3900.0, 3300.0), "白沙社区"),
    ("新店镇", "101", (3300.0, 3900.0), "新店社区"),
    ("河口镇", "102", (4000.0, -3900.0), "河口社区"),
    ("石岭乡", "200", (-3300.0, -4100.0), "石岭社区"),
)
ISLAND_VILLAGE_NAME = "江心洲村"
RIVER_NAME = "清溪河"

#: deliberate gaps of the demo facility list
STREET_WITHOUT_DAY_CARE = "西城街道"
STREET_WITHOUT_COMPREHENSIVE = "东城街道"
TOWN_WITHOUT_NURSING_HOME = "石岭乡"

COMMUNITY_NAMES: tuple[str, ...] = (
    "解放路社区", "府前社区", "文昌社区", "南门社区", "北门社区", "沿江社区", "码头社区",
    "江滨社区", "望江社区", "东门社区", "新华社区", "朝阳社区", "建设社区", "西湖社区",
    "育才社区", "友谊社区",
)
VILLAGE_NAMES: tuple[str, ...] = (
    "李家湾村", "王岗村", "石桥村", "张家畈村", "陈家冲村", "刘家河村", "黄土岗村", "杨家店村",
    "周家湾村", "何家垸村", "胡家大湾村", "熊家岗村", "孙家湾村", "朱家冲村", "高桥村", "柳树村",
    "枣林村", "桂花村", "新河村", "双塘村", "龙泉村", "松林村", "竹园村", "三合村",
    "团结村", "红星村", "光明村", "和平村", "长岭村", "泉水村", "檀树村", "沙河村",
    "马鞍村", "界牌村", "凤凰村", "金星村", "杨树村", "古城村", "大埠村", "邹岗村",
    "罗汉村", "余家湾村", "彭家店村", "汪家畈村", "程家冲村", "吴家墩村", "郑家咀村", "丁家塆村",
    "梅家岭村", "桃园村",
)
STREET_NAME_STEMS: tuple[str, ...] = (
    "文化", "建设", "胜利", "新华", "和平", "青年", "育才", "公园", "府前", "学府", "朝阳",
    "光明", "东风", "红旗", "交通", "健康", "团结", "友谊", "幸福", "民主", "长江", "振兴",
    "兴业", "创业", "工业", "教育", "商业", "滨河", "南湖", "北岭", "迎宾", "书院", "金桥",
    "鼓楼", "仓前", "桂园", "荷花", "银杏", "梧桐", "状元",
)


# =============================================================================
# Coordinate frame
# =============================================================================


class _Frame:
    """Local metric frame: UTM 49N shifted so the county centre is (0, 0)."""

    def __init__(self) -> None:
        from pyproj import Transformer

        self._to_utm = Transformer.from_crs("EPSG:4326", WORK_CRS, always_xy=True)
        self._to_lonlat = Transformer.from_crs(WORK_CRS, "EPSG:4326", always_xy=True)
        x0, y0 = self._to_utm.transform(CENTRE_LON, CENTRE_LAT)
        self.origin = (round(float(x0)), round(float(y0)))

    def to_lonlat(self, xy: np.ndarray) -> np.ndarray:
        """Local metres (n × 2) → WGS-84 degrees (n × 2)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        lon, lat = self._to_lonlat.transform(xy[:, 0] + self.origin[0], xy[:, 1] + self.origin[1])
        return np.column_stack([lon, lat])

    def to_local(self, lonlat: np.ndarray) -> np.ndarray:
        """WGS-84 degrees (n × 2) → local metres (n × 2)."""
        lonlat = np.asarray(lonlat, dtype=float).reshape(-1, 2)
        x, y = self._to_utm.transform(lonlat[:, 0], lonlat[:, 1])
        return np.column_stack([np.asarray(x) - self.origin[0], np.asarray(y) - self.origin[1]])

    def geometry_to_lonlat(self, geometry: BaseGeometry, decimals: int = OSM_DECIMALS) -> BaseGeometry:
        """A local-metre geometry in WGS-84 degrees, snapped to a ``10**-decimals`` grid."""
        converted = shapely.transform(geometry, self.to_lonlat)
        return shapely.set_precision(converted, 10.0**-decimals)


# =============================================================================
# Geometry helpers
# =============================================================================


def _ellipse(centre: tuple[float, float], semi_axes: tuple[float, float], angle_deg: float = 0.0) -> Polygon:
    """An ellipse polygon (64 vertices) rotated by ``angle_deg`` about its centre."""
    circle = Point(0.0, 0.0).buffer(1.0, quad_segs=16)
    shape = affinity.scale(circle, semi_axes[0], semi_axes[1], origin=(0.0, 0.0))
    shape = affinity.rotate(shape, angle_deg, origin=(0.0, 0.0))
    return affinity.translate(shape, centre[0], centre[1])


def _polygonal(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """The polygonal part of an overlay result (drops stray points and lines)."""
    if isinstance(geometry, (Polygon, MultiPolygon)):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, (Polygon, MultiPolygon))]
    return shapely.union_all(parts) if parts else Polygon()


def _largest_part(geometry: BaseGeometry) -> Polygon:
    """The largest polygon of a (multi)polygon."""
    geometry = _polygonal(geometry)
    if isinstance(geometry, Polygon):
        return geometry
    return max(geometry.geoms, key=lambda g: g.area)


def _tile(parent: Polygon | MultiPolygon, seeds: np.ndarray) -> list[Polygon | MultiPolygon]:
    """
    Split ``parent`` into one cell per seed (Voronoi cells clipped to the parent).

    A cell that falls apart into several pieces keeps the piece holding its
    seed; the other pieces go to the neighbouring cell they share the longest
    border with, so the cells still tile the parent.

    Parameters
    ----------
    parent
        The polygon to split (local metres).
    seeds
        Seed points, n × 2, all inside ``parent``.

    Returns
    -------
    list
        n polygons in the order of the seeds.
    """
    frame = shapely.box(*parent.bounds).buffer(5000.0)
    diagram = shapely.voronoi_polygons(shapely.MultiPoint(seeds), extend_to=frame, ordered=True)
    cells = [_polygonal(cell.intersection(parent)) for cell in diagram.geoms]
    for index in range(len(cells)):
        cell = cells[index]
        if not isinstance(cell, MultiPolygon):
            continue
        seed = Point(seeds[index])
        parts = sorted(cell.geoms, key=lambda g: (-g.area, g.bounds))
        keep = next((p for p in parts if p.buffer(1e-6).contains(seed)), parts[0])
        cells[index] = keep
        for piece in parts:
            if piece is keep:
                continue
            shared = [
                (piece.boundary.intersection(other).length, j) for j, other in enumerate(cells) if j != index
            ]
            _, best = max(shared)
            cells[best] = _polygonal(cells[best].union(piece))
    return cells


def _sample_points(
    rng: np.random.Generator,
    region: BaseGeometry,
    count: int,
    min_spacing: float,
    avoid: list[tuple[float, float]] = (),
) -> np.ndarray:
    """
    Draw ``count`` points inside ``region``, at least ``min_spacing`` apart.

    Rejection sampling; the spacing shrinks by 5 % after every 2000 failed
    draws so the function always returns.
    """
    xmin, ymin, xmax, ymax = region.bounds
    chosen: list[tuple[float, float]] = []
    others = list(avoid)
    spacing = min_spacing
    failures = 0
    while len(chosen) < count:
        x, y = rng.uniform(xmin, xmax), rng.uniform(ymin, ymax)
        ok = region.contains(Point(x, y)) and all(
            (x - px) ** 2 + (y - py) ** 2 >= spacing**2 for px, py in chosen + others
        )
        if ok:
            chosen.append((float(x), float(y)))
            continue
        failures += 1
        if failures % 2000 == 0:
            spacing *= 0.95
    return np.array(chosen)


# =============================================================================
# Landscape and administrative units
# =============================================================================


@dataclass
class Unit:
    """One administrative unit of the demo county (geometry in local metres)."""

    code: str
    name: str
    level: str
    parent_code: str | None
    ur_code: int | None
    geometry: Polygon | MultiPolygon
    anchor: tuple[float, float]
    role: str


@dataclass
class Landscape:
    """The physical layout: county outline, river, island, built-up core, motorway line."""

    county: Polygon
    river_line: LineString
    water: Polygon | MultiPolygon
    island: Polygon
    island_centre: tuple[float, float]
    river_normal_at_island: tuple[float, float]
    builtup: Polygon
    urban_district: Polygon
    motorway_line: LineString


def _river_y(x: np.ndarray | float) -> np.ndarray | float:
    """Centre line of the river: it flows west → east, south of the urban core."""
    return -1000.0 - 0.10 * np.asarray(x) + 450.0 * np.sin(2.0 * np.pi * np.asarray(x) / 6000.0)


def _river_frame(x: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point on the river centre line at ``x``, unit tangent (eastward) and unit normal (northward)."""
    eps = 1.0
    point = np.array([x, float(_river_y(x))])
    tangent = np.array([2 * eps, float(_river_y(x + eps) - _river_y(x - eps))])
    tangent /= np.hypot(*tangent)
    normal = np.array([-tangent[1], tangent[0]])
    return point, tangent, normal


def _make_landscape(rng: np.random.Generator) -> Landscape:
    """County outline (irregular, ~15 × 15 km), river with an island, urban core, motorway."""
    angles = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=3)
    radius = COUNTY_RADIUS_M * (
        1.0 + 0.07 * np.sin(2 * angles + phases[0]) + 0.05 * np.sin(3 * angles + phases[1])
        + 0.025 * np.sin(5 * angles + phases[2])
    )
    county = Polygon(np.column_stack([radius * np.cos(angles), radius * np.sin(angles)]))

    river_x = np.arange(-9800.0, 9800.0 + 1.0, 200.0)
    river_line = LineString(np.column_stack([river_x, _river_y(river_x)]))
    centre, tangent, normal = _river_frame(ISLAND_RIVER_X)
    angle = float(np.degrees(np.arctan2(tangent[1], tangent[0])))
    island_centre = tuple(centre + 300.0 * normal)
    island = _ellipse(island_centre, (450.0, 150.0), angle)
    widening = _ellipse(island_centre, (640.0, 330.0), angle)
    channel = river_line.buffer(RIVER_HALF_WIDTH_M, cap_style="flat")
    water = channel.union(widening).difference(island)

    core = _ellipse(CORE_CENTRE, CORE_SEMI_AXES, 10.0)
    builtup = _largest_part(core.difference(water.buffer(80.0)).intersection(county.buffer(-500.0)))
    urban_district = _largest_part(builtup.buffer(500.0).intersection(county))

    motorway_line = LineString(
        [(-2600.0, -9600.0), (-3000.0, -4500.0), (-3700.0, -500.0), (-4600.0, 3000.0),
         (-5400.0, 6200.0), (-6600.0, 9600.0)]
    )
    return Landscape(
        county=county,
        river_line=river_line,
        water=water,
        island=island,
        island_centre=(float(island_centre[0]), float(island_centre[1])),
        river_normal_at_island=(float(normal[0]), float(normal[1])),
        builtup=builtup,
        urban_district=urban_district,
        motorway_line=motorway_line,
    )


def _make_units(rng: np.random.Generator, land: Landscape) -> list[Unit]:
    """
    County, streets with communities, towns with a seat community and villages.

    Streets tile the urban district, towns tile the rest of the county, and
    villages/communities tile their town/street. The island village is an
    enclave: the island with a strip of river around it.
    """
    units = [Unit(COUNTY_CODE, COUNTY_NAME, "county", None, None, land.county, (0.0, 0.0), "county")]

    street_seeds = np.array([seed for _, seed, _ in STREETS])
    street_cells = _tile(land.urban_district, street_seeds)
    community_names = list(COMMUNITY_NAMES)
    for number, ((name, seed, n_communities), cell) in enumerate(zip(STREETS, street_cells), start=1):
        code = f"{COUNTY_CODE[:6]}{number:03d}000"
        units.append(Unit(code, name, "town", COUNTY_CODE, None, cell, seed, "street"))
        region = cell.intersection(land.builtup).buffer(-120.0)
        seeds = _sample_points(rng, region, n_communities, 650.0)
        # number communities north → south, west → east, like a printed code list
        seeds = seeds[np.lexsort((seeds[:, 0], -seeds[:, 1]))]
        for k, (community_seed, community_cell) in enumerate(zip(seeds, _tile(cell, seeds)), start=1):
            distance = float(np.hypot(*(community_seed - np.array(OLD_TOWN_CENTRE))))
            units.append(
                Unit(
                    f"{code[:9]}{k:03d}", community_names.pop(0), "village", code,
                    111 if distance < 1500.0 else 112, community_cell,
                    (float(community_seed[0]), float(community_seed[1])), "community",
                )
            )

    rural = _polygonal(land.county.difference(land.urban_district))
    town_cells = _town_cells(rng, rural, np.array([seat for _, _, seat, _ in TOWNS]))
    village_names = list(VILLAGE_NAMES)
    rng.shuffle(village_names)
    village_counts = rng.integers(10, 13, size=len(TOWNS))
    for (name, part, seat, seat_name), cell, n_villages in zip(TOWNS, town_cells, village_counts):
        code = f"{COUNTY_CODE[:6]}{part}000"
        units.append(Unit(code, name, "town", COUNTY_CODE, None, cell, seat, "town"))
        units.extend(_town_villages(rng, land, code, name, cell, seat, seat_name, int(n_villages), village_names))
    return units


def _town_cells(rng: np.random.Generator, rural: Polygon, seats: np.ndarray) -> list[Polygon | MultiPolygon]:
    """
    Split the rural part of the county into towns with irregular borders.

    Random tract seeds are tiled together with the seats; each tract joins
    the town of its nearest seat, so borders follow tract edges instead of
    the straight bisectors of a plain Voronoi split.
    """
    tracts = _sample_points(rng, rural.buffer(-300.0), 28, 1500.0, avoid=[tuple(p) for p in seats])
    seeds = np.vstack([seats, tracts])
    cells = _tile(rural, seeds)
    owner = list(range(len(seats))) + [
        int(np.argmin(np.hypot(*(seats - tract).T))) for tract in tracts
    ]
    towns = []
    for k in range(len(seats)):
        merged = _polygonal(shapely.union_all([cells[m] for m in range(len(seeds)) if owner[m] == k]))
        towns.append(merged)
    # a town that falls apart keeps the part with its seat; the rest goes to a neighbour
    for k in range(len(seats)):
        if isinstance(towns[k], MultiPolygon):
            parts = sorted(towns[k].geoms, key=lambda g: (-g.area, g.bounds))
            keep = next(p for p in parts if p.buffer(1e-6).contains(Point(seats[k])))
            towns[k] = keep
            for piece in parts:
                if piece is not keep:
                    _, best = max((piece.boundary.intersection(t).length, j) for j, t in enumerate(towns) if j != k)
                    towns[best] = _polygonal(towns[best].union(piece))
    return towns


def _town_villages(
    rng: np.random.Generator,
    land: Landscape,
    town_code: str,
    town_name: str,
    town_cell: Polygon,
    seat: tuple[float, float],
    seat_name: str,
    n_villages: int,
    village_names: list[str],
) -> list[Unit]:
    """The seat community (ur 121) and the administrative villages of one town."""
    region = (
        town_cell.buffer(-350.0)
        .difference(land.water.buffer(450.0))
        .difference(land.motorway_line.buffer(300.0))
        .difference(land.builtup.buffer(800.0))
        .difference(Point(seat).buffer(1100.0))
    )
    seeds = _sample_points(rng, region, n_villages, 1000.0)
    seeds = seeds[np.lexsort((seeds[:, 0], -seeds[:, 1]))]
    all_seeds = np.vstack([np.array([seat]), seeds])
    cells = _tile(town_cell, all_seeds)

    has_island = town_cell.contains(Point(land.island_centre))
    enclave = land.island.buffer(100.0).intersection(town_cell) if has_island else None
    if enclave is not None:
        cells = [_polygonal(c.difference(enclave)) for c in cells]

    distance_to_seat = np.hypot(seeds[:, 0] - seat[0], seeds[:, 1] - seat[1])
    near_seat = set(np.argsort(distance_to_seat)[:2].tolist()) if town_name.endswith("乡") else set()
    villages = [
        Unit(f"{town_code[:9]}001", seat_name, "village", town_code, 121, cells[0], seat, "seat")
    ]
    for k, (village_seed, cell) in enumerate(zip(seeds, cells[1:])):
        villages.append(
            Unit(
                f"{town_code[:9]}{201 + k:03d}", village_names.pop(0), "village", town_code,
                210 if k in near_seat else 220, cell,
                (float(village_seed[0]), float(village_seed[1])), "village",
            )
        )
    if enclave is not None:
        villages.append(
            Unit(
                f"{town_code[:9]}{201 + len(seeds):03d}", ISLAND_VILLAGE_NAME, "village", town_code, 220,
                enclave, land.island_centre, "island",
            )
        )
    return villages


# =============================================================================
# Walking network (OSM XML)
# =============================================================================


@dataclass
class _Way:
    """One OSM way: node ids and tags."""

    nodes: list[int]
    tags: dict[str, str]


@dataclass
class _Relation:
    """One OSM relation: members as (type, id, role) and tags."""

    members: list[tuple[str, int, str]]
    tags: dict[str, str]


@dataclass
class OsmData:
    """Nodes (local metres, id = position + 1), tagged standalone nodes, ways and relations of the demo OSM file."""

    xy: list[tuple[float, float]] = field(default_factory=list)
    node_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    ways: list[_Way] = field(default_factory=list)
    relations: list[_Relation] = field(default_factory=list)

    def add_node(self, x: float, y: float, tags: dict[str, str] | None = None) -> int:
        """Add a node; returns its id (1-based)."""
        self.xy.append((float(x), float(y)))
        node_id = len(self.xy)
        if tags:
            self.node_tags[node_id] = tags
        return node_id

    def add_way(self, nodes: list[int], tags: dict[str, str]) -> None:
        """Add a way over existing node ids."""
        self.ways.append(_Way(list(nodes), dict(tags)))

    def position(self, node_id: int) -> np.ndarray:
        """Local metres of a node."""
        return np.array(self.xy[node_id - 1])

    def add_closed_polygon(self, polygon: Polygon, tags: dict[str, str]) -> None:
        """Add a closed way (area) with its own nodes, e.g. a building."""
        ring = list(polygon.exterior.coords)[:-1]
        ids = [self.add_node(x, y) for x, y in ring]
        self.add_way(ids + [ids[0]], tags)

    def add_multipolygon(self, geometry: Polygon | MultiPolygon, tags: dict[str, str]) -> None:
        """Add an area with holes as OSM maps it: untagged closed ways for the rings and a multipolygon relation."""
        members: list[tuple[str, int, str]] = []
        for polygon in getattr(geometry, "geoms", [geometry]):
            rings = [(polygon.exterior, "outer")] + [(ring, "inner") for ring in polygon.interiors]
            for ring, role in rings:
                ids = [self.add_node(x, y) for x, y in list(ring.coords)[:-1]]
                self.add_way(ids + [ids[0]], {})
                members.append(("way", len(self.ways), role))
        self.relations.append(_Relation(members, {"type": "multipolygon", **tags}))


#: highway values the demo uses for walkable ways
WALKABLE_HIGHWAYS = frozenset(
    {"primary", "secondary", "tertiary", "residential", "living_street", "pedestrian", "footway",
     "unclassified", "track", "path"}
)


@dataclass
class _NetworkState:
    """Book-keeping while the network is built: walkable segments and special nodes."""

    segments: list[tuple[int, int, str]] = field(default_factory=list)
    island_nodes: set[int] = field(default_factory=set)
    grid_nodes: dict[tuple[int, int], int] = field(default_factory=dict)
    gateways: list[int] = field(default_factory=list)
    anchors: dict[str, int] = field(default_factory=dict)
    seat_nodes: dict[str, list[int]] = field(default_factory=dict)
    rural_nodes: list[int] = field(default_factory=list)
    bridge_ends: list[tuple[int, int]] = field(default_factory=list)
    core_bridge_south: int = 0
    construction_south: int = 0
    ferry_landing: int = 0


def _add_walkable(osm: OsmData, state: _NetworkState, nodes: list[int], tags: dict[str, str]) -> None:
    """Add a walkable way and remember its segments (for facility placement and addresses)."""
    osm.add_way(nodes, tags)
    for u, v in zip(nodes[:-1], nodes[1:]):
        state.segments.append((u, v, tags.get("name", "")))


def _runs(keys: list[tuple], tags: dict) -> list[tuple[list[tuple], dict]]:
    """Split an ordered line of grid points into ways of consecutive edges with equal tags."""
    runs: list[tuple[list[tuple], dict]] = []
    for a, b in zip(keys[:-1], keys[1:]):
        edge_tags = tags.get((a, b))
        if edge_tags is None:
            continue
        if runs and runs[-1][0][-1] == a and runs[-1][1] == edge_tags:
            runs[-1][0].append(b)
        else:
            runs.append(([a, b], edge_tags))
    return runs


def _still_joined(a: tuple[int, int], b: tuple[int, int], edges: set) -> bool:
    """Whether grid points a and b are still joined through ``edges`` (breadth-first search)."""
    adjacency: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for u, v in sorted(edges):
        adjacency.setdefault(u, []).append(v)
        adjacency.setdefault(v, []).append(u)
    seen = {a}
    frontier = [a]
    while frontier:
        current = frontier.pop()
        if current == b:
            return True
        for nxt in adjacency.get(current, []):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False


def _largest_component(edges: set) -> set:
    """The grid points of the largest connected part of the grid."""
    remaining = sorted({p for edge in edges for p in edge})
    adjacency: dict[tuple[int, int], list[tuple[int, int]]] = {p: [] for p in remaining}
    for u, v in sorted(edges):
        adjacency[u].append(v)
        adjacency[v].append(u)
    best: set = set()
    seen: set = set()
    for start in remaining:
        if start in seen:
            continue
        component = {start}
        frontier = [start]
        while frontier:
            current = frontier.pop()
            for nxt in adjacency[current]:
                if nxt not in component:
                    component.add(nxt)
                    frontier.append(nxt)
        seen |= component
        if len(component) > len(best):
            best = component
    return best


def _build_urban_grid(rng: np.random.Generator, land: Landscape, osm: OsmData, state: _NetworkState) -> None:
    """
    Jittered street grid of the urban core with irregular blocks.

    Main lines are primary/secondary; about a fifth of the residential
    segments are removed (never disconnecting the grid), some are living
    streets, one stretch is a pedestrian street and some blocks get a
    diagonal footway. Buildings sit in the middle of some blocks.
    """
    sx, sy = URBAN_GRID_SPACING
    theta = np.radians(URBAN_GRID_ROTATION_DEG)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    cx, cy = CORE_CENTRE
    inner = land.builtup.buffer(5.0)
    positions: dict[tuple[int, int], np.ndarray] = {}
    for i in range(-16, 17):
        for j in range(-16, 17):
            base = rotation @ np.array([i * sx, j * sy]) + np.array([cx, cy])
            jitter = rng.uniform(-25.0, 25.0, size=2)
            if land.builtup.contains(Point(base)):
                positions[(i, j)] = base + jitter

    def line_class(i: int, j: int, vertical: bool) -> dict[str, str]:
        index = i if vertical else j
        if index == 0:
            return {"highway": "primary", "name": "人民路" if vertical else "解放大道"}
        if (vertical and index in (-6, 6)) or (not vertical and index in (-5, 5)):
            names = {(-6, True): "西环路", (6, True): "东环路", (-5, False): "滨江路", (5, False): "北环路"}
            return {"highway": "secondary", "name": names[(index, vertical)]}
        stem = STREET_NAME_STEMS[(index + 20) % len(STREET_NAME_STEMS)] if vertical else \
            STREET_NAME_STEMS[(index + 40) % len(STREET_NAME_STEMS)]
        return {"highway": "residential", "name": stem + ("路" if vertical else "街")}

    edge_tags: dict[tuple, dict[str, str]] = {}
    for i, j in sorted(positions):
        for di, dj, vertical in ((1, 0, False), (0, 1, True)):
            other = (i + di, j + dj)
            if other in positions and inner.contains(LineString([positions[(i, j)], positions[other]])):
                edge_tags[((i, j), other)] = line_class(i, j, vertical)
    # keep the connected grid only (a concave edge of the core may cut off a corner)
    kept = _largest_component(set(edge_tags))
    positions = {k: v for k, v in positions.items() if k in kept}
    edge_tags = {e: t for e, t in edge_tags.items() if e[0] in kept and e[1] in kept}
    keys = sorted(positions)

    # irregular blocks: drop residential segments unless that disconnects the grid
    present = set(edge_tags)
    candidates = [e for e in sorted(edge_tags) if edge_tags[e]["highway"] == "residential"]
    for index in rng.permutation(len(candidates)):
        edge = candidates[int(index)]
        if rng.random() < 0.22:
            trial = present - {edge}
            if _still_joined(edge[0], edge[1], trial):
                present = trial
    edge_tags = {e: t for e, t in edge_tags.items() if e in present}

    for edge in sorted(edge_tags):
        tags = edge_tags[edge]
        if tags["highway"] == "residential" and rng.random() < 0.08:
            edge_tags[edge] = {"highway": "living_street", "name": tags["name"]}
    for i in range(-2, 2):  # the old town's shopping street
        edge = ((i, 2), (i + 1, 2))
        if edge in edge_tags:
            edge_tags[edge] = {"highway": "pedestrian", "name": "中山步行街"}

    for (i, j), position in sorted(positions.items()):
        state.grid_nodes[(i, j)] = osm.add_node(*position)

    rows = sorted({j for _, j in keys})
    cols = sorted({i for i, _ in keys})
    for j in rows:
        line = [(i, j) for i in cols if (i, j) in positions]
        for run, tags in _runs(line, edge_tags):
            _add_walkable(osm, state, [state.grid_nodes[k] for k in run], tags)
    for i in cols:
        line = [(i, j) for j in rows if (i, j) in positions]
        for run, tags in _runs(line, edge_tags):
            _add_walkable(osm, state, [state.grid_nodes[k] for k in run], tags)

    _add_blocks(rng, osm, state, positions, edge_tags)
    _pick_gateways(state, positions)


def _add_blocks(
    rng: np.random.Generator,
    osm: OsmData,
    state: _NetworkState,
    positions: dict[tuple[int, int], np.ndarray],
    edge_tags: dict[tuple, dict[str, str]],
) -> None:
    """Diagonal footways through some blocks and a building in the middle of others."""
    for i, j in sorted(positions):
        corners = [(i, j), (i + 1, j), (i + 1, j + 1), (i, j + 1)]
        if not all(c in positions for c in corners):
            continue
        sides = [(corners[0], corners[1]), (corners[3], corners[2]), (corners[0], corners[3]),
                 (corners[1], corners[2])]
        closed = all(s in edge_tags for s in sides)
        centre = np.mean([positions[c] for c in corners], axis=0)
        draw = rng.random()
        if closed and draw < 0.10:
            middle = osm.add_node(*(centre + rng.uniform(-8.0, 8.0, size=2)))
            ends = [state.grid_nodes[corners[0]], middle, state.grid_nodes[corners[2]]]
            _add_walkable(osm, state, ends, {"highway": "footway"})
        elif draw < 0.45:
            offset = rng.uniform(-15.0, 15.0, size=2)
            size = rng.uniform(10.0, 16.0), rng.uniform(12.0, 22.0)
            building = affinity.rotate(
                shapely.box(-size[0] / 2, -size[1] / 2, size[0] / 2, size[1] / 2),
                URBAN_GRID_ROTATION_DEG, origin=(0.0, 0.0),
            )
            osm.add_closed_polygon(affinity.translate(building, *(centre + offset)), {"building": "yes"})


def _pick_gateways(state: _NetworkState, positions: dict[tuple[int, int], np.ndarray]) -> None:
    """Grid nodes at the edge of the core in eight directions, where rural roads join."""
    keys = sorted(positions)
    coords = np.array([positions[k] for k in keys])
    centre = coords.mean(axis=0)
    gateways: list[int] = []
    for angle in np.radians(np.arange(0.0, 360.0, 45.0)):
        direction = np.array([np.cos(angle), np.sin(angle)])
        best = int(np.argmax((coords - centre) @ direction))
        node = state.grid_nodes[keys[best]]
        if node not in gateways:
            gateways.append(node)
    state.gateways = gateways


def _bridge_points(x: float, half_length: float = 150.0) -> tuple[np.ndarray, np.ndarray]:
    """North and south ends of a bridge crossing the river centre line at ``x``."""
    point, _, normal = _river_frame(x)
    return point + half_length * normal, point - half_length * normal


def _build_bridges(land: Landscape, osm: OsmData, state: _NetworkState) -> None:
    """The core bridge (滨江大桥), the west and east rural bridges and a bridge under construction."""
    # core bridge: the primary 人民路 continues south across the river
    column = sorted((j, node) for (i, j), node in state.grid_nodes.items() if i == 0)
    south_grid_node = column[0][1]
    start = osm.position(south_grid_node)
    point, _, normal = _river_frame(float(start[0]))
    north_end = osm.add_node(*(point + 150.0 * normal))
    south_end = osm.add_node(*(point - 150.0 * normal))
    _add_walkable(osm, state, [south_grid_node, north_end], {"highway": "primary", "name": "人民路"})
    _add_walkable(osm, state, [north_end, south_end],
                  {"highway": "primary", "name": "滨江大桥", "bridge": "yes", "layer": "1"})
    state.core_bridge_south = south_end

    for x, name in ((WEST_BRIDGE_X, "西河桥"), (EAST_BRIDGE_X, "东河桥")):
        north, south = _bridge_points(x)
        north_id, south_id = osm.add_node(*north), osm.add_node(*south)
        _add_walkable(osm, state, [north_id, south_id],
                      {"highway": "unclassified", "name": name, "bridge": "yes", "layer": "1"})
        state.bridge_ends.append((north_id, south_id))

    # a bridge under construction: a trap for walking filters that keep highway=construction
    north, south = _bridge_points(CONSTRUCTION_BRIDGE_X)
    grid_ids = sorted(state.grid_nodes.values())
    nearest = min(grid_ids, key=lambda n: (float(np.hypot(*(osm.position(n) - north))), n))
    north_id, south_id = osm.add_node(*north), osm.add_node(*south)
    osm.add_way([nearest, north_id, south_id],
                {"highway": "construction", "construction": "secondary", "name": "东城大桥（在建）",
                 "bridge": "yes", "layer": "1"})
    state.construction_south = south_id


def _build_settlement_streets(
    rng: np.random.Generator, units: list[Unit], osm: OsmData, state: _NetworkState
) -> None:
    """Small street grids at the town seats and a street cross in every village."""
    for unit in units:
        if unit.role == "seat":
            _build_seat(rng, unit, osm, state)
        elif unit.role == "village":
            _build_village(rng, unit, osm, state)


def _build_seat(rng: np.random.Generator, unit: Unit, osm: OsmData, state: _NetworkState) -> None:
    """A 4 × 4 street grid around a town seat; the middle east–west street is tertiary."""
    ids: dict[tuple[int, int], int] = {}
    for i in range(4):
        for j in range(4):
            position = np.array(unit.anchor) + np.array([(i - 1.5) * 150.0, (j - 1.5) * 140.0])
            ids[(i, j)] = osm.add_node(*(position + rng.uniform(-15.0, 15.0, size=2)))
    stem = unit.name.removesuffix("社区")
    for j in range(4):
        highway = "tertiary" if j == 1 else "residential"
        _add_walkable(osm, state, [ids[(i, j)] for i in range(4)],
                      {"highway": highway, "name": f"{stem}{'正街' if j == 1 else f'{j + 1}巷'}"})
    for i in range(4):
        _add_walkable(osm, state, [ids[(i, j)] for j in range(4)],
                      {"highway": "residential", "name": f"{stem}{'东西'[i % 2]}{i + 1}路"})
    state.anchors[unit.code] = ids[(1, 1)]
    state.seat_nodes[unit.code] = [ids[k] for k in sorted(ids)]
    state.rural_nodes.extend(ids[k] for k in sorted(ids))
    for k in range(6):
        i, j = int(rng.integers(0, 3)), int(rng.integers(0, 3))
        corner = (osm.position(ids[(i, j)]) + osm.position(ids[(i + 1, j + 1)])) / 2.0
        _add_building(rng, osm, corner + rng.uniform(-20.0, 20.0, size=2))
    osm.add_closed_polygon(
        _ellipse(unit.anchor, (380.0, 340.0)).simplify(20.0), {"landuse": "residential", "name": unit.name}
    )
    osm.add_node(*(np.array(unit.anchor) + np.array([5.0, 5.0])), {"place": "town", "name": unit.name})


def _build_village(rng: np.random.Generator, unit: Unit, osm: OsmData, state: _NetworkState) -> None:
    """A village: two crossing residential streets, a field path and a few houses."""
    centre = np.array(unit.anchor)
    angle = rng.uniform(0.0, np.pi)
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    centre_id = osm.add_node(*centre)
    lengths = rng.uniform(90.0, 160.0, size=4)
    ends = [osm.add_node(*(centre + sign * length * axis))
            for sign, length, axis in zip((1, -1, 1, -1), lengths, (along, along, across, across))]
    _add_walkable(osm, state, [ends[1], centre_id, ends[0]], {"highway": "residential", "name": f"{unit.name}主街"})
    _add_walkable(osm, state, [ends[3], centre_id, ends[2]], {"highway": "residential"})
    field_end = osm.add_node(*(osm.position(ends[0]) + 200.0 * (along + 0.4 * across)))
    _add_walkable(osm, state, [ends[0], field_end], {"highway": "path"})
    state.anchors[unit.code] = centre_id
    state.rural_nodes.extend([centre_id, *ends, field_end])
    for k in range(4):
        quadrant = np.radians(45.0 + 90.0 * k + rng.uniform(-20.0, 20.0))
        distance = rng.uniform(45.0, 90.0)
        _add_building(rng, osm, centre + distance * np.array([np.cos(quadrant), np.sin(quadrant)]))
    octagon = Point(*centre).buffer(180.0, quad_segs=2)
    osm.add_closed_polygon(affinity.rotate(octagon, float(np.degrees(angle)), origin=tuple(centre)),
                           {"landuse": "residential", "name": unit.name})
    osm.add_node(*(centre + np.array([4.0, 4.0])), {"place": "village", "name": unit.name})


def _add_building(rng: np.random.Generator, osm: OsmData, centre: np.ndarray) -> None:
    """A rectangular house of 8–14 m × 10–16 m."""
    width, depth = rng.uniform(8.0, 14.0), rng.uniform(10.0, 16.0)
    house = affinity.rotate(shapely.box(-width / 2, -depth / 2, width / 2, depth / 2), rng.uniform(0.0, 90.0),
                            origin=(0.0, 0.0))
    osm.add_closed_polygon(affinity.translate(house, float(centre[0]), float(centre[1])), {"building": "yes"})


def _build_island(rng: np.random.Generator, land: Landscape, units: list[Unit], osm: OsmData,
                  state: _NetworkState) -> None:
    """The island village's own streets and the ferry line to the north bank."""
    centre = np.array(land.island_centre)
    normal = np.array(land.river_normal_at_island)
    tangent = np.array([normal[1], -normal[0]])
    street = [osm.add_node(*(centre + s * tangent + rng.uniform(-6.0, 6.0, size=2)))
              for s in (-320.0, -160.0, 0.0, 160.0, 320.0)]
    pier = osm.add_node(*(centre + 125.0 * normal))
    south = osm.add_node(*(centre - 110.0 * normal))
    island_unit = next(u for u in units if u.role == "island")
    tags_main = {"highway": "residential", "name": "洲心街"}
    _add_walkable(osm, state, street, tags_main)
    _add_walkable(osm, state, [south, street[2], pier], {"highway": "residential", "name": "渡口路"})
    loop = [street[1], osm.add_node(*(centre - 160.0 * tangent + 90.0 * normal)),
            osm.add_node(*(centre + 160.0 * tangent + 90.0 * normal)), street[3]]
    _add_walkable(osm, state, loop, {"highway": "path"})
    state.island_nodes.update([*street, pier, south, *loop])
    state.anchors[island_unit.code] = street[2]
    for s in (-240.0, -80.0, 80.0, 240.0):
        for side in (-1.0, 1.0):
            _add_building(rng, osm, centre + s * tangent + side * 45.0 * normal)
    osm.add_closed_polygon(
        _ellipse(tuple(centre), (300.0, 110.0), float(np.degrees(np.arctan2(tangent[1], tangent[0])))).simplify(15.0),
        {"landuse": "residential", "name": ISLAND_VILLAGE_NAME},
    )
    osm.add_node(*(centre + np.array([4.0, 4.0])), {"place": "hamlet", "name": ISLAND_VILLAGE_NAME})

    # ferry: island pier → across the north channel → a landing on the north bank
    landing_position = centre + 390.0 * normal
    middle = osm.add_node(*(centre + 255.0 * normal))
    landing = osm.add_node(*landing_position)
    osm.add_way([pier, middle, landing], {"route": "ferry", "name": "江心洲渡口", "foot": "yes", "motor_vehicle": "no"})
    state.ferry_landing = landing
    state.rural_nodes.append(landing)


def _road_nodes(rng: np.random.Generator, land: Landscape, osm: OsmData, start: int, end: int) -> list[int]:
    """Intermediate nodes of a gently bent road between two nodes (straight where a bend would touch water)."""
    a, b = osm.position(start), osm.position(end)
    length = float(np.hypot(*(b - a)))
    n_inner = int(length // 220.0)
    direction = (b - a) / max(length, 1e-9)
    normal = np.array([-direction[1], direction[0]])
    bend = rng.uniform(-0.05, 0.05)
    jitter = rng.uniform(-12.0, 12.0, size=n_inner)
    t = np.arange(1, n_inner + 1) / (n_inner + 1)
    points = a + np.outer(t, b - a) + np.outer(bend * length * np.sin(np.pi * t) + jitter, normal)
    if n_inner and LineString([a, *points, b]).intersects(land.water.buffer(25.0)):
        points = a + np.outer(t, b - a)
    return [start, *[osm.add_node(*p) for p in points], end]


def _build_rural_roads(rng: np.random.Generator, land: Landscape, units: list[Unit], osm: OsmData,
                       state: _NetworkState) -> None:
    """
    Roads joining villages, town seats, bridges and the core.

    Candidate links are the Delaunay edges between settlements that stay on
    one bank, inside the county and outside the core; a minimum spanning tree
    over them (bridges and the core count as already joined) plus about a
    quarter of the other short links make the rural network.
    """
    from scipy.spatial import Delaunay

    points: list[int] = []
    kinds: list[str] = []
    for unit in units:
        if unit.role in ("seat", "village"):
            points.append(state.anchors[unit.code])
            kinds.append(unit.role)
    for node in state.gateways:
        points.append(node)
        kinds.append("gateway")
    points.append(state.core_bridge_south)
    kinds.append("bridge")
    for north, south in state.bridge_ends:
        points.extend([north, south])
        kinds.extend(["bridge", "bridge"])
    points.append(state.construction_south)
    kinds.append("bridge")
    points.append(state.ferry_landing)
    kinds.append("landing")
    coords = np.array([osm.position(n) for n in points])

    parent = list(range(len(points)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> bool:
        ri, rj = find(i), find(j)
        if ri == rj:
            return False
        parent[max(ri, rj)] = min(ri, rj)
        return True

    core_group = [k for k, kind in enumerate(kinds) if kind == "gateway"] + [points.index(state.core_bridge_south)]
    for k in core_group[1:]:
        union(core_group[0], k)
    for north, south in state.bridge_ends:
        union(points.index(north), points.index(south))

    no_go = land.water.buffer(30.0)
    gateway_discs = shapely.union_all([Point(coords[k]).buffer(250.0) for k, kind in enumerate(kinds)
                                       if kind == "gateway"])
    core_inside = land.builtup.buffer(-40.0).difference(gateway_discs)
    allowed = land.county.buffer(200.0)

    def usable(i: int, j: int) -> bool:
        if kinds[i] == "gateway" and kinds[j] == "gateway":
            return False
        segment = LineString([coords[i], coords[j]])
        return (
            segment.length < 4200.0 and allowed.contains(segment) and not segment.intersects(no_go)
            and not segment.intersects(core_inside)
        )

    triangles = Delaunay(coords).simplices
    pairs = sorted({tuple(sorted((int(a), int(b)))) for tri in triangles for a, b in
                    ((tri[0], tri[1]), (tri[1], tri[2]), (tri[0], tri[2]))})
    candidates = sorted(
        (float(np.hypot(*(coords[i] - coords[j]))), i, j) for i, j in pairs if usable(i, j)
    )
    chosen: list[tuple[int, int, bool]] = []
    extras: list[tuple[float, int, int]] = []
    for length, i, j in candidates:
        if union(i, j):
            chosen.append((i, j, True))
        else:
            extras.append((length, i, j))
    # join whatever the Delaunay links left apart with the shortest usable straight link
    while len({find(k) for k in range(len(points))}) > 1:
        best = min(
            (float(np.hypot(*(coords[i] - coords[j]))), i, j)
            for i in range(len(points)) for j in range(i + 1, len(points))
            if find(i) != find(j) and usable(i, j)
        )
        union(best[1], best[2])
        chosen.append((best[1], best[2], True))
    # every bridge end, seat, village and the ferry landing needs a road of its own
    degree = [0] * len(points)
    for i, j, _ in chosen:
        degree[i] += 1
        degree[j] += 1
    for k, kind in enumerate(kinds):
        if kind != "gateway" and degree[k] == 0:
            length, i, j = min(
                (float(np.hypot(*(coords[k] - coords[m]))), min(k, m), max(k, m))
                for m in range(len(points)) if m != k and usable(k, m)
            )
            chosen.append((i, j, True))
            degree[i] += 1
            degree[j] += 1
    for length, i, j in extras:
        if length < 2500.0 and rng.random() < 0.25 and (i, j, True) not in chosen:
            chosen.append((i, j, False))

    for i, j, in_tree in chosen:
        start, end = _road_end(osm, state, points, kinds, i, j), _road_end(osm, state, points, kinds, j, i)
        nodes = _road_nodes(rng, land, osm, start, end)
        major = {kinds[i], kinds[j]} <= {"seat", "gateway", "bridge"}
        if major:
            tags = {"highway": "tertiary"}
        elif in_tree or "seat" in (kinds[i], kinds[j]):
            tags = {"highway": "unclassified"}
        else:
            tags = {"highway": "track" if rng.random() < 0.6 else "path"}
        if kinds[i] == "landing" or kinds[j] == "landing":
            tags = {"highway": "track", "name": "渡口路"}
        _add_walkable(osm, state, nodes, tags)
        state.rural_nodes.extend(nodes[1:-1])


def _road_end(osm: OsmData, state: _NetworkState, points: list[int], kinds: list[str], i: int, j: int) -> int:
    """Node where a road from point i towards point j starts (a seat's road leaves from its nearest edge node)."""
    if kinds[i] != "seat":
        return points[i]
    seat_code = next(code for code, node in state.anchors.items() if node == points[i])
    target = osm.position(points[j])
    return min(state.seat_nodes[seat_code], key=lambda n: (float(np.hypot(*(osm.position(n) - target))), n))


def _build_motorway(land: Landscape, osm: OsmData, state: _NetworkState) -> None:
    """A motorway across the county with a river bridge and two interchanges (not walkable)."""
    line = land.motorway_line
    distances = np.arange(0.0, line.length, 400.0).tolist() + [line.length]
    crossing = line.intersection(land.river_line)
    crossing_at = line.project(crossing if isinstance(crossing, Point) else crossing.geoms[0])
    bridge_from, bridge_to = crossing_at - 180.0, crossing_at + 180.0
    distances = sorted([d for d in distances if not bridge_from - 100.0 < d < bridge_to + 100.0]
                       + [bridge_from, bridge_to])
    ids = [osm.add_node(*line.interpolate(d).coords[0]) for d in distances]
    first, last = distances.index(bridge_from), distances.index(bridge_to)
    motorway = {"highway": "motorway", "name": "示例高速公路", "ref": "S99"}
    osm.add_way(ids[: first + 1], motorway)
    osm.add_way(ids[first: last + 1], {**motorway, "bridge": "yes", "layer": "1"})
    osm.add_way(ids[last:], motorway)
    # interchanges join the motorway to rural roads: a loader that keeps motorways
    # would let people walk onto it and across the river on its bridge
    for target_y in (3000.0, -5000.0):
        motorway_node = min(ids, key=lambda n: (abs(osm.position(n)[1] - target_y), n))
        anchor = osm.position(motorway_node)
        rural = min(state.rural_nodes, key=lambda n: (float(np.hypot(*(osm.position(n) - anchor))), n))
        middle = osm.add_node(*((osm.position(rural) + anchor) / 2.0 + np.array([40.0, 0.0])))
        osm.add_way([rural, middle, motorway_node], {"highway": "motorway_link"})


def _build_river(land: Landscape, osm: OsmData) -> None:
    """The river centre line (waterway=river: a barrier, not a path)."""
    ids = [osm.add_node(x, y) for x, y in land.river_line.coords]
    osm.add_way(ids, {"waterway": "river", "name": RIVER_NAME})


def _build_water_area(land: Landscape, osm: OsmData) -> None:
    """The river's water surface (natural=water multipolygon, the island a hole): no facility is sited in it."""
    osm.add_multipolygon(land.water.intersection(land.county.buffer(2000.0)).simplify(10.0),
                         {"natural": "water", "water": "river", "name": RIVER_NAME})


def _build_urban_landuse(land: Landscape, osm: OsmData) -> None:
    """Residential land use over the built-up core."""
    osm.add_closed_polygon(land.builtup.simplify(60.0), {"landuse": "residential", "name": "示例县城区"})


def _make_network(rng: np.random.Generator, land: Landscape, units: list[Unit]) -> tuple[OsmData, _NetworkState]:
    """Build every OSM node and way of the demo (local metres)."""
    osm = OsmData()
    state = _NetworkState()
    _build_urban_grid(rng, land, osm, state)
    _build_bridges(land, osm, state)
    _build_settlement_streets(rng, units, osm, state)
    _build_island(rng, land, units, osm, state)
    _build_rural_roads(rng, land, units, osm, state)
    _build_motorway(land, osm, state)
    _build_river(land, osm)
    _build_urban_landuse(land, osm)
    _build_water_area(land, osm)
    return osm, state


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
# Facilities
# =============================================================================

#: column headers of the facility table, in order
FACILITY_COLUMNS: tuple[str, ...] = (
    "序号", "名称", "类型", "地址", "经度", "纬度", "坐标系", "床位数", "护理型床位", "建筑面积(㎡)",
    "持证护理员人数", "所属乡镇(街道)", "所属村(社区)", "区划代码",
)
FACILITY_TITLE = f"示例县养老服务设施名录（{LABEL}）"


@dataclass
class FacilityRow:
    """One row of the facility table (coordinates in GCJ-02 degrees, None = blank)."""

    name: str
    type_text: str
    address: str
    lon: float | None
    lat: float | None
    beds: int | None
    nursing_beds: int | None
    floor_area: int | None
    caregivers: int | None
    town_name: str
    village_name: str | None
    code: str

    def cells(self, number: int) -> list:
        """The row as table cells, with its 序号."""
        return [
            number, self.name, self.type_text, self.address, self.lon, self.lat, "GCJ-02",
            self.beds, self.nursing_beds, self.floor_area,
            self.caregivers, self.town_name, self.village_name, self.code,
        ]


@dataclass
class _Placement:
    """What facility placement needs: walkable segments as lines, mainland nodes, road names."""

    lines: list[LineString]
    names: list[str]
    tree: shapely.STRtree
    node_ids: np.ndarray
    node_xy: np.ndarray


def _placement_index(osm: OsmData, state: _NetworkState) -> _Placement:
    """Index of walkable segments (for distance to street) and mainland walkable nodes (to place near)."""
    lines = [LineString([osm.position(u), osm.position(v)]) for u, v, _ in state.segments]
    names = [name for _, _, name in state.segments]
    nodes = sorted({n for u, v, _ in state.segments for n in (u, v)} - state.island_nodes)
    return _Placement(lines, names, shapely.STRtree(lines), np.array(nodes),
                      np.array([osm.position(n) for n in nodes]))


def _place_near_street(
    rng: np.random.Generator, placement: _Placement, land: Landscape, unit: Unit, rank: int
) -> tuple[np.ndarray, str]:
    """
    A point 10–80 m from a street, near the ``rank``-th closest network node to the unit's centre.

    Returns the point (local metres) and the name of the nearest named street.
    """
    distance_to_anchor = np.hypot(*(placement.node_xy - np.array(unit.anchor)).T)
    inside = shapely.contains_xy(unit.geometry, placement.node_xy[:, 0], placement.node_xy[:, 1])
    order = [int(k) for k in np.lexsort((placement.node_ids, distance_to_anchor)) if inside[k]]
    node_xy = placement.node_xy[order[min(rank, len(order) - 1)]]
    for _ in range(200):
        angle = rng.uniform(0.0, 2.0 * np.pi)
        offset = rng.uniform(15.0, 50.0)
        point = node_xy + offset * np.array([np.cos(angle), np.sin(angle)])
        candidate = Point(point)
        nearest = placement.tree.nearest(candidate)
        distance = placement.lines[int(nearest)].distance(candidate)
        if 10.0 <= distance <= 80.0 and unit.geometry.contains(candidate) and not land.water.contains(candidate):
            break
    else:  # pragma: no cover - the geometry always leaves room
        raise RuntimeError(f"no place for a facility in {unit.name}")
    named = [k for k in placement.tree.query(candidate.buffer(400.0)) if placement.names[int(k)]]
    street = min(named, key=lambda k: (placement.lines[int(k)].distance(candidate), int(k)))
    return point, placement.names[int(street)]


def _facility_plan(rng: np.random.Generator, units: list[Unit]) -> list[tuple[Unit, str, Unit]]:
    """
    Which facilities exist: (unit it belongs to, type text, unit it is placed in).

    Deliberate gaps: no day care in 西城街道 and in one more community, no
    民生服务综合体 in 东城街道, no 敬老院 in 石岭乡, 互助幸福院 in just under
    60 % of administrative villages, nothing at all on the island.
    """
    by_code = {u.code: u for u in units}
    streets = [u for u in units if u.role == "street"]
    towns = [u for u in units if u.role == "town"]
    communities = [u for u in units if u.role == "community"]
    villages = [u for u in units if u.role in ("village", "island")]
    plan: list[tuple[Unit, str, Unit]] = []

    def central_community(street: Unit) -> Unit:
        members = [c for c in communities if c.parent_code == street.code]
        return min(members, key=lambda c: (float(np.hypot(*(np.array(c.anchor) - np.array(street.anchor)))), c.code))

    day_care_candidates = [c for c in communities if by_code[c.parent_code].name != STREET_WITHOUT_DAY_CARE]
    skipped = day_care_candidates[int(rng.integers(len(day_care_candidates)))]
    with_day_care = [c for c in day_care_candidates if c is not skipped]
    combined = with_day_care[int(rng.integers(len(with_day_care)))]
    for community in with_day_care:
        plan.append((community, "日间照料中心（含助餐）" if community is combined else "日间照料中心", community))
    canteen_communities = sorted(rng.choice(len(communities), size=5, replace=False).tolist())
    for k in canteen_communities:
        if communities[k] is not combined:
            plan.append((communities[k], "幸福食堂", communities[k]))

    for street in streets:
        if street.name != STREET_WITHOUT_COMPREHENSIVE:
            plan.append((street, "民生服务综合体", central_community(street)))
    plan.append((by_code[COUNTY_CODE], "社会福利院", central_community(streets[0])))

    seats = {u.parent_code: u for u in units if u.role == "seat"}
    for town in towns:
        if town.name != TOWN_WITHOUT_NURSING_HOME:
            plan.append((town, "敬老院", seats[town.code]))
    for k in sorted(rng.choice(len(towns), size=2, replace=False).tolist()):
        plan.append((seats[towns[k].code], "幸福食堂", seats[towns[k].code]))

    mainland_villages = [v for v in villages if v.role == "village"]
    n_mutual_aid = int(np.ceil(0.60 * len(villages))) - 1
    mutual_aid = sorted(rng.choice(len(mainland_villages), size=n_mutual_aid, replace=False).tolist())
    for k in mutual_aid:
        plan.append((mainland_villages[k], "互助幸福院", mainland_villages[k]))
    for k in sorted(rng.choice(len(mainland_villages), size=6, replace=False).tolist()):
        plan.append((mainland_villages[k], "幸福食堂", mainland_villages[k]))
    return plan


def _capacity(rng: np.random.Generator, type_text: str) -> tuple[int | None, int | None, int | None, int | None]:
    """Beds, nursing beds, floor area (m²) and certified caregivers, blank where lists usually are."""
    def maybe(value: int, p_blank: float) -> int | None:
        return None if rng.random() < p_blank else value

    if type_text.startswith("日间照料中心"):
        area = int(rng.integers(150, 401)) if type_text == "日间照料中心" else 320
        return maybe(int(rng.integers(4, 13)), 0.3), None, area, maybe(int(rng.integers(1, 5)), 0.25)
    if type_text == "幸福食堂":
        return None, None, maybe(int(rng.integers(60, 201)), 0.3), None
    if type_text == "互助幸福院":
        return int(rng.integers(8, 31)), None, int(rng.integers(80, 401)), maybe(int(rng.integers(1, 3)), 0.6)
    if type_text == "敬老院":
        beds = int(rng.integers(40, 121))
        return beds, int(beds * rng.uniform(0.3, 0.6)), int(rng.integers(1500, 4001)), int(rng.integers(4, 13))
    if type_text == "社会福利院":
        return 200, 130, 9000, 30
    if type_text == "民生服务综合体":
        beds = int(rng.integers(20, 61))
        return beds, int(beds * rng.uniform(0.4, 0.7)), int(rng.integers(800, 2501)), int(rng.integers(5, 13))
    raise ValueError(type_text)


def _facility_name(owner: Unit, type_text: str, units_by_code: dict[str, Unit]) -> str:
    """A realistic facility name for the owning unit."""
    if type_text == "社会福利院":
        return f"{COUNTY_SHORT_NAME}社会福利院"
    if type_text == "敬老院":
        return f"{owner.name}中心敬老院" if owner.name.endswith("镇") else f"{owner.name}敬老院"
    if type_text == "民生服务综合体":
        return f"{owner.name}民生服务综合体"
    if type_text.startswith("日间照料中心"):
        street = units_by_code[owner.parent_code].name
        return f"{street}{owner.name}老年人日间照料中心"
    return f"{owner.name}{type_text}"


def _make_facilities(
    rng: np.random.Generator, frame: _Frame, land: Landscape, units: list[Unit], osm: OsmData, state: _NetworkState
) -> tuple[list[FacilityRow], list[FacilityRow]]:
    """
    The facility list and the rows the loader must reject.

    Returns
    -------
    tuple
        Good rows in list order, and the two bad rows that are not copies:
        one without coordinates and one of the unknown type 老年大学 (the
        third bad row, an exact duplicate, is made by :func:`_facility_table`).
    """
    by_code = {u.code: u for u in units}
    placement = _placement_index(osm, state)
    plan = _facility_plan(rng, units)
    # order like a printed list: by unit code, then by type
    type_order = ["民生服务综合体", "社会福利院", "敬老院", "日间照料中心", "日间照料中心（含助餐）", "幸福食堂", "互助幸福院"]
    plan.sort(key=lambda item: (item[0].code, type_order.index(item[1])))
    used_in_unit: dict[str, int] = {}
    rows: list[FacilityRow] = []
    for owner, type_text, host in plan:
        rank = used_in_unit.get(host.code, 0) * 2 + (3 if owner.level != "village" else 0)
        used_in_unit[host.code] = used_in_unit.get(host.code, 0) + 1
        point, street_name = _place_near_street(rng, placement, land, host, rank)
        beds, nursing, area, caregivers = _capacity(rng, type_text)
        rows.append(
            _row(frame, point, _facility_name(owner, type_text, by_code), type_text,
                 _address(rng, host, by_code, street_name), (beds, nursing, area, caregivers),
                 by_code[host.parent_code].name, owner.name if owner.level == "village" else None, owner.code)
        )

    # bad rows: a meal point without coordinates, and an unknown type (老年大学)
    binjiang = next(u for u in units if u.name == "滨江街道")
    host = [u for u in units if u.parent_code == binjiang.code][-1]
    no_coordinates = FacilityRow(
        name=f"{host.name}老年助餐点", type_text="幸福食堂", address=f"{COUNTY_SHORT_NAME}滨江街道{host.name}",
        lon=None, lat=None, beds=None, nursing_beds=None, floor_area=None, caregivers=None,
        town_name=binjiang.name, village_name=host.name, code=host.code,
    )
    chengguan = next(u for u in units if u.name == "城关街道")
    host = [u for u in units if u.parent_code == chengguan.code][0]
    point, street_name = _place_near_street(rng, placement, land, host, 7)
    unknown_type = _row(frame, point, f"{COUNTY_SHORT_NAME}老年大学", "老年大学",
                        f"{COUNTY_SHORT_NAME}城关街道{street_name}8号", (None, None, 1200, None),
                        chengguan.name, None, chengguan.code)
    return rows, [no_coordinates, unknown_type]


def _row(
    frame: _Frame, point: np.ndarray, name: str, type_text: str, address: str,
    capacity: tuple[int | None, int | None, int | None, int | None], town_name: str, village_name: str | None,
    code: str,
) -> FacilityRow:
    """A facility row at a local-metre point, its coordinates converted to GCJ-02."""
    from coverage.coords import wgs84_to_gcj02

    lon, lat = frame.to_lonlat(point)[0]
    gcj_lon, gcj_lat = wgs84_to_gcj02(float(lon), float(lat))
    beds, nursing, area, caregivers = capacity
    return FacilityRow(
        name=name, type_text=type_text, address=address,
        lon=round(float(gcj_lon), FACILITY_DECIMALS), lat=round(float(gcj_lat), FACILITY_DECIMALS),
        beds=beds, nursing_beds=nursing, floor_area=area, caregivers=caregivers,
        town_name=town_name, village_name=village_name, code=code,
    )


def _address(rng: np.random.Generator, host: Unit, by_code: dict[str, Unit], street_name: str) -> str:
    """A postal-style address: street number in towns, village group (组) in the countryside."""
    town = by_code[host.parent_code]
    if host.role in ("community", "seat"):
        return f"{COUNTY_SHORT_NAME}{town.name}{street_name}{int(rng.integers(1, 200))}号"
    return f"{COUNTY_SHORT_NAME}{town.name}{host.name}{int(rng.integers(1, 9))}组"


def _facility_table(rng: np.random.Generator, rows: list[FacilityRow], bad: list[FacilityRow]) -> list[list]:
    """
    Table body in file order, numbered by 序号.

    The row without coordinates goes a third of the way down, the unknown type
    last, and an exact copy (序号 included) of an earlier row two thirds down.
    """
    no_coordinates, unknown_type = bad
    ordered = list(rows)
    ordered.insert(len(rows) // 3, no_coordinates)
    ordered.append(unknown_type)
    body = [row.cells(number) for number, row in enumerate(ordered, start=1)]
    duplicate_position = 2 * len(rows) // 3
    source = int(rng.integers(len(rows) // 3 + 1, duplicate_position - 1))
    body.insert(duplicate_position, list(body[source]))
    return body


# =============================================================================
# Writers
# =============================================================================


def _json_number(value: float, decimals: int = OSM_DECIMALS) -> float:
    """A coordinate rounded for output (the shortest repr of the rounded value)."""
    return round(float(value), decimals) + 0.0


def _rounded_coordinates(coordinates):
    """Round nested GeoJSON coordinate sequences."""
    if isinstance(coordinates, (list, tuple)) and coordinates and isinstance(coordinates[0], (int, float)):
        return [_json_number(c) for c in coordinates]
    return [_rounded_coordinates(c) for c in coordinates]


def units_lonlat(units: list[Unit], frame: _Frame) -> list[BaseGeometry]:
    """
    Unit polygons in WGS-84 degrees, rounded to 7 decimals, tiling exactly.

    Every boundary first gets the vertices its neighbours have on it, so two
    units sharing a border share the same vertex list and stay gap-free after
    the (slightly curving) projection to degrees and the rounding.
    """
    vertices = shapely.MultiPoint(
        np.unique(np.vstack([shapely.get_coordinates(u.geometry) for u in units]), axis=0)
    )
    converted = []
    for unit in units:
        noded = shapely.snap(unit.geometry, vertices, 1e-3)
        geometry = frame.geometry_to_lonlat(noded)
        if not geometry.is_valid:
            geometry = shapely.make_valid(geometry)
        converted.append(geometry)
    return converted


def write_units_geojson(units: list[Unit], frame: _Frame, path: Path) -> Path:
    """
    Administrative units as a WGS-84 GeoJSON FeatureCollection.

    Properties: ``code``, ``name``, ``名称``, ``level``, ``parent_code``,
    ``ur_code``, ``role`` and ``note`` (the synthetic label).
    """
    features = []
    for unit, geometry in zip(units, units_lonlat(units, frame)):
        geometry_json = mapping(geometry)
        features.append({
            "type": "Feature",
            "properties": {
                "code": unit.code,
                "name": unit.name,
                "名称": unit.name,
                "level": unit.level,
                "parent_code": unit.parent_code,
                "ur_code": unit.ur_code,
                "role": unit.role,
                "note": LABEL,
            },
            "geometry": {"type": geometry_json["type"],
                         "coordinates": _rounded_coordinates(geometry_json["coordinates"])},
        })
    collection = {
        "type": "FeatureCollection",
        "name": f"示例县行政区划（{LABEL}）",
        "note": f"{LABEL}: fictional units of {COUNTY_NAME}, generated by coverage.demo",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}},
        "features": features,
    }
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    # one feature per line keeps the file diff-friendly
    text = text.replace(',{"type":"Feature"', ',\n{"type":"Feature"')
    text = text.replace('[{"type":"Feature"', '[\n{"type":"Feature"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _tags_xml(tags: dict[str, str]) -> str:
    return "".join(f'\n  <tag k={quoteattr(k)} v={quoteattr(v)}/>' for k, v in sorted(tags.items()))


def write_osm(osm: OsmData, frame: _Frame, path: Path) -> Path:
    """
    The network as OSM XML 0.6: <note>, <meta>, <bounds>, then nodes, ways and relations.

    Every element has a positive id and ``version="1"``; coordinates have 7
    decimals like OpenStreetMap.
    """
    lonlat = np.round(frame.to_lonlat(np.array(osm.xy)), OSM_DECIMALS)
    minlon, minlat = lonlat.min(axis=0)
    maxlon, maxlat = lonlat.max(axis=0)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<osm version="0.6" generator={quoteattr("coverage.demo (" + LABEL + ")")}>',
        f" <note>{escape(LABEL)}: a fictional county ({COUNTY_NAME}) generated by coverage.demo; "
        "not OpenStreetMap data.</note>",
        ' <meta osm_base="2024-06-01T00:00:00Z" synthetic="yes"/>',
        f' <bounds minlat="{minlat:.7f}" minlon="{minlon:.7f}" maxlat="{maxlat:.7f}" maxlon="{maxlon:.7f}"/>',
    ]
    for node_id, (lon, lat) in enumerate(lonlat, start=1):
        tags = osm.node_tags.get(node_id)
        if tags:
            lines.append(f' <node id="{node_id}" version="1" lat="{lat:.7f}" lon="{lon:.7f}">'
                         f"{_tags_xml(tags)}\n </node>")
        else:
            lines.append(f' <node id="{node_id}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for way_id, way in enumerate(osm.ways, start=1):
        refs = "".join(f'\n  <nd ref="{n}"/>' for n in way.nodes)
        lines.append(f' <way id="{way_id}" version="1">{refs}{_tags_xml(way.tags)}\n </way>')
    for relation_id, relation in enumerate(osm.relations, start=1):
        members = "".join(f'\n  <member type="{kind}" ref="{ref}" role="{role}"/>'
                          for kind, ref, role in relation.members)
        lines.append(f' <relation id="{relation_id}" version="1">{members}{_tags_xml(relation.tags)}\n </relation>')
    lines.append("</osm>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def _deterministic_xlsx(data: bytes) -> bytes:
    """Rewrite an .xlsx with fixed timestamps (zip entries and document properties)."""
    fixed_time = "2024-06-01T00:00:00Z"
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fixed_time.encode(), content)
            entry = zipfile.ZipInfo(info.filename, date_time=(2024, 6, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, content)
    return out.getvalue()


def write_facilities_xlsx(body: list[list], path: Path) -> Path:
    """
    The facility list as an Excel sheet 设施名录: merged title row, header row, data rows.

    区划代码 is stored as text; coordinates with 6 decimals.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "设施名录"
    sheet.append([FACILITY_TITLE])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(FACILITY_COLUMNS))
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet.append(list(FACILITY_COLUMNS))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in body:
        sheet.append(row)
    lon_col, lat_col, code_col = 5, 6, 14
    for row_cells in sheet.iter_rows(min_row=3):
        row_cells[lon_col - 1].number_format = "0.000000"
        row_cells[lat_col - 1].number_format = "0.000000"
        row_cells[code_col - 1].number_format = "@"
    widths = [6, 34, 20, 40, 12, 12, 8, 8, 10, 12, 14, 14, 14, 16]
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[chr(64 + index)].width = width
    sheet.freeze_panes = "A3"
    workbook.properties.creator = "coverage.demo"
    workbook.properties.title = FACILITY_TITLE
    workbook.properties.description = LABEL
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_deterministic_xlsx(buffer.getvalue()))
    return path


def write_facilities_gbk_csv(body: list[list], path: Path) -> Path:
    """The same table as a GBK-encoded CSV (title line, header, rows), as Excel on Chinese Windows saves it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([FACILITY_TITLE] + [""] * (len(FACILITY_COLUMNS) - 1))
    writer.writerow(FACILITY_COLUMNS)
    for row in body:
        cells = []
        for column, value in zip(FACILITY_COLUMNS, row):
            if value is None:
                cells.append("")
            elif column in ("经度", "纬度"):
                cells.append(f"{value:.6f}")
            else:
                cells.append(str(value))
        writer.writerow(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("gbk"))
    return path


STUDY_YAML = f"""\
# Study configuration of the synthetic demo county ({LABEL}).
# Generated by coverage.demo (python -m coverage.demo / eldercov make-demo); do not edit by hand.
study:
  name: demo
  title: 示例县养老服务设施步行覆盖评估（{LABEL}）
  synthetic: true
  facility_source: {LABEL} (coverage.demo)
inputs:
  network: ../data/demo/demo_walk.osm
  facilities:
    - path: ../data/facilities/demo_facilities.xlsx
      crs: gcj02
  units:
    path: ../data/boundaries/demo_units.geojson
    crs: wgs84
  population:
    rasters: ../data/demo/population/pop_*_demo.tif
    age_group: 60+
    year: 2020
    census: {{path: ../data/demo/demo_census_60plus.csv, code_column: 区划代码, total_column: 60岁及以上人口, level: town}}
parameters:
  walk_speed_mps: 0.8
  thresholds_min: [5, 10, 15]
  distance_thresholds_m: [300, 500, 1000]
  max_access_m: 500
  ferry: {{enabled: true, wait_seconds: 900, speed_mps: 4.0}}
targets:
  sets: [national, putuo_2024, panjin_2018]
"""


def write_study_yaml(path: Path) -> Path:
    """``studies/demo.yaml``: the study configuration the batch job reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STUDY_YAML, encoding="utf-8")
    return path


# =============================================================================
# Summary and README
# =============================================================================


def _summary(units: list[Unit], osm: OsmData, grid: PopulationGrid, census: dict[str, int],
             rows: list[FacilityRow], body: list[list]) -> dict:
    """Counts quoted in the README (and handy for a caller)."""
    walkable = sum(1 for w in osm.ways if w.tags.get("highway") in WALKABLE_HIGHWAYS)
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row.type_text] = by_type.get(row.type_text, 0) + 1
    admin_villages = [u for u in units if u.role in ("village", "island")]
    mutual_aid = by_type.get("互助幸福院", 0)
    return {
        "streets": sum(u.role == "street" for u in units),
        "communities": sum(u.role == "community" for u in units),
        "towns": sum(u.role == "town" for u in units),
        "seat_communities": sum(u.role == "seat" for u in units),
        "villages": len(admin_villages),
        "nodes": len(osm.xy),
        "ways": len(osm.ways),
        "walkable_ways": walkable,
        "buildings": sum(1 for w in osm.ways if "building" in w.tags),
        "raster_60plus": float(grid.elderly_60.sum()),
        "raster_65plus": float(grid.elderly_65.sum()),
        "island_60plus": float(grid.elderly_60[grid.on_island].sum()),
        "census_60plus": census[COUNTY_CODE],
        "facility_rows": len(body),
        "facilities": len(rows),
        "facilities_by_type": by_type,
        "mutual_aid_share": mutual_aid / len(admin_villages),
        "raster_shape": (grid.height, grid.width),
    }


def _readme(summary: dict) -> str:
    """Text of ``data/demo/README.md``."""
    types = "\n".join(f"| {name} | {count} |" for name, count in summary["facilities_by_type"].items())
    return f"""\
# Demo county 示例县（合成）— {LABEL}

**Everything in this folder, in `data/boundaries/demo_*.geojson`,
`data/facilities/demo_*` and `studies/demo.yaml` is {LABEL}.** The county,
its towns, villages, roads, river, people and facilities are invented. The
files exist so that a demo run (`eldercov run studies/demo.yaml`) exercises the
same loaders as real data. Do not read anything about a real place from them.

## How it was made

    python -m coverage.demo          # regenerate into the repository root
    eldercov make-demo               # the same, from the command line tool

`coverage.demo.make_demo(root)` draws every random choice from
`numpy.random.default_rng(20240601)` in a fixed order, so it always writes the
same content; `tests/test_demo.py` checks that the committed files equal a
fresh generation. **Do not edit these files by hand**: change
`coverage/demo.py` and regenerate.

## What is in it

Fictional county code 429901 (名称 示例县（合成）), placed near 113.90E,
30.95N (UTM 49N), about 15 × 15 km. Statistical codes follow the real
pattern: county 429901000000, streets 429901001000–004000, towns
429901100000–102000 and township 429901200000; communities 001…, villages
201… under each.

| file | content |
|---|---|
| `data/boundaries/demo_units.geojson` | WGS-84 polygons: 1 county, {summary['streets']} streets (街道) with {summary['communities']} communities (社区, ur_code 111/112), {summary['towns']} towns/townships (镇/乡) each with a seat community (ur_code 121) and {summary['villages']} administrative villages in all (行政村, ur_code 220/210). Villages tile their town, towns/streets tile the county. Properties `code, name, 名称, level, parent_code, ur_code, role, note`. |
| `data/demo/demo_walk.osm` | OSM XML 0.6, {summary['nodes']} nodes, {summary['ways']} ways ({summary['walkable_ways']} walkable, {summary['buildings']} buildings): jittered urban grid (primary/secondary/residential/living_street/pedestrian/footway), village roads (tertiary/unclassified/track/path), the river 清溪河 (`waterway=river`, its water surface a `natural=water` multipolygon with the island as a hole: no site is proposed on water) crossed on foot only at 3 bridges (`bridge=yes`: 西河桥, 滨江大桥, 东河桥), the island 江心洲 reached only by a ferry (`route=ferry`). Ways a walking filter must drop: the motorway S99 (with its own river bridge and two `motorway_link` interchanges), a bridge under construction (`highway=construction`), `building=yes` and `landuse=residential` areas. |
| `data/demo/population/pop_{{60,65,70,75,80}}_{{f,m}}_demo.tif` | WorldPop-style rasters: EPSG:4326, 0.000833333° cells, float32, nodata −3.4028234663852886e+38 outside the county and on the river; persons per cell by 5-year age band (80 = 80+) and sex. 60+ total {summary['raster_60plus']:,.0f} (65+: {summary['raster_65plus']:,.0f}). |
| `data/demo/demo_census_60plus.csv` | UTF-8-BOM census table (区划代码, 名称, 60岁及以上人口, 65岁及以上人口, 备注) for the county ({summary['census_60plus']:,} aged 60+) and each town/street: 18–25 % above the raster sums in streets and 10–16 % in towns, like WorldPop's urban undercount. |
| `data/facilities/demo_facilities.xlsx` | sheet 设施名录: merged title row, header row, {summary['facility_rows']} rows ({summary['facilities']} facilities + 3 bad rows). Coordinates in **GCJ-02** (column 坐标系). |
| `data/facilities/demo_facilities_gbk.csv` | the same table as a GBK-encoded CSV. |
| `studies/demo.yaml` | the study configuration (`synthetic: true`). |

Facilities by type (good rows):

| 类型 | rows |
|---|---|
{types}

## Deliberate gaps and traps

* **Island 江心洲村** (河口镇): {summary['island_60plus']:,.0f} people aged 60+ in the
  rasters, reachable only by the ferry 江心洲渡口 (`route=ferry`, no highway
  tag), and **no facility** on the island.
* **西城街道** has no 日间照料中心, and one more community elsewhere has none;
  **东城街道** has no 民生服务综合体; **石岭乡** has no 敬老院.
* 互助幸福院 in {summary['mutual_aid_share']:.1%} of administrative villages,
  just short of Panjin's 60 % target.
* Some day-care centres are under the 200 m² tier; capacity cells are blank
  where real lists usually are.
* Three rows the loader must reject: one without coordinates (滨江街道 助餐点),
  an exact duplicate of an earlier row, and an unknown type (老年大学).
* The census totals exceed the raster sums, so census calibration changes
  the results.
* The motorway and the bridge under construction share nodes with walkable
  roads: a walking filter that kept them would let people cross the river
  where they cannot.
"""


# =============================================================================
# Entry point
# =============================================================================


def make_demo(root: Path) -> dict[str, Path]:
    """
    Generate the synthetic demo county into a project root.

    Parameters
    ----------
    root
        Folder that receives ``data/boundaries``, ``data/demo``,
        ``data/facilities`` and ``studies`` (created when missing).

    Returns
    -------
    dict of str to pathlib.Path
        Written files: ``units``, ``network``, ``pop_<age>_<sex>`` (ten
        rasters), ``census``, ``facilities``, ``facilities_gbk``, ``study``
        and ``readme``.
    """
    root = Path(root)
    rng = np.random.default_rng(SEED)
    frame = _Frame()
    land = _make_landscape(rng)
    units = _make_units(rng, land)
    osm, state = _make_network(rng, land, units)
    grid = _make_population(rng, frame, land, units)
    rows, bad = _make_facilities(rng, frame, land, units, osm, state)
    body = _facility_table(rng, rows, bad)

    written: dict[str, Path] = {}
    written["units"] = write_units_geojson(units, frame, root / "data" / "boundaries" / "demo_units.geojson")
    written["network"] = write_osm(osm, frame, root / "data" / "demo" / "demo_walk.osm")
    written.update(write_population(grid, root / "data" / "demo" / "population"))
    written["census"], census = write_census(rng, grid, frame, units, root / "data" / "demo" / "demo_census_60plus.csv")
    written["facilities"] = write_facilities_xlsx(body, root / "data" / "facilities" / "demo_facilities.xlsx")
    written["facilities_gbk"] = write_facilities_gbk_csv(body, root / "data" / "facilities" / "demo_facilities_gbk.csv")
    written["study"] = write_study_yaml(root / "studies" / "demo.yaml")
    readme = root / "data" / "demo" / "README.md"
    readme.write_text(_readme(_summary(units, osm, grid, census, rows, body)), encoding="utf-8")
    written["readme"] = readme
    return written


def main(argv: list[str] | None = None) -> int:
    """Regenerate the demo into ``argv[0]`` or the repository root; print the files written."""
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    for key, path in make_demo(root).items():
        print(f"{key:16s} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
