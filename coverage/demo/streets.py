"""The walking network of the demo county, built in local metres and written as OSM XML 0.6.

A jittered urban grid, town and village streets, rural roads, bridges over
the river, the island with its ferry, and the ways a walking filter must drop
(motorway, a bridge under construction, buildings, land use, water).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from coverage.demo.layout import (
    CONSTRUCTION_BRIDGE_X,
    CORE_CENTRE,
    COUNTY_NAME,
    EAST_BRIDGE_X,
    ISLAND_VILLAGE_NAME,
    LABEL,
    OSM_DECIMALS,
    RIVER_NAME,
    STREET_NAME_STEMS,
    URBAN_GRID_ROTATION_DEG,
    URBAN_GRID_SPACING,
    WEST_BRIDGE_X,
    Landscape,
    Unit,
    _ellipse,
    _Frame,
    _river_frame,
)

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
# OSM XML writer
# =============================================================================


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
