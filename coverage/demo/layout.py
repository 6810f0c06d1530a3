"""Constants, the local frame, geometry helpers, the landscape and the administrative units of the demo county.

Everything here is built in local metres (UTM 49N shifted to the county
centre, see :class:`_Frame`); :func:`units_lonlat` converts the units to
WGS-84 degrees for output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
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
# Units in WGS-84 degrees (for the GeoJSON and the census sums)
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
