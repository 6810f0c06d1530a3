"""The demo facility list (养老服务设施名录) and its files in real formats: an Excel sheet and a GBK CSV.

Facilities are placed near walkable streets, with deliberate gaps and three
rows the loader must reject; coordinates are written in GCJ-02.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import LineString, Point

from coverage.coords import wgs84_to_gcj02
from coverage.demo.layout import (
    COUNTY_CODE,
    COUNTY_SHORT_NAME,
    FACILITY_DECIMALS,
    LABEL,
    STREET_WITHOUT_COMPREHENSIVE,
    STREET_WITHOUT_DAY_CARE,
    TOWN_WITHOUT_NURSING_HOME,
    Landscape,
    Unit,
    _Frame,
)
from coverage.demo.streets import OsmData, _NetworkState

# =============================================================================
# Facilities
# =============================================================================

#: column headers of the facility table, in order
FACILITY_COLUMNS: tuple[str, ...] = (
    "序号", "名称", "类型", "地址", "经度", "纬度", "坐标系", "床位数", "护理型床位", "建筑面积(㎡)",
    "持证护理员人数", "所属乡镇(街道)", "所属村(社区)", "区划代码", "建成年份", "状态", "停业年份",
)
#: seed of the opening years and of the planned / closed rows, apart from the main stream so the
#: facilities, their places and capacities stay those of the list without years
TIME_SEED = 20240602
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
    opened: int | str | None = None  # 建成年份 as bureau lists write it: 2016, "2018年", "2019-06"
    status: str | None = None  # 状态: 已建成 / 正常运营 / 在建 / 规划 / 停业, None = blank
    closed: int | None = None  # 停业年份

    def cells(self, number: int) -> list:
        """The row as table cells, with its 序号."""
        return [
            number, self.name, self.type_text, self.address, self.lon, self.lat, "GCJ-02",
            self.beds, self.nursing_beds, self.floor_area,
            self.caregivers, self.town_name, self.village_name, self.code, self.opened, self.status, self.closed,
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


#: opening years by type (first, last): homes long-standing, canteens and 综合体 recent
_OPENING_YEARS = {"社会福利院": (2008, 2012), "敬老院": (2009, 2016), "民生服务综合体": (2019, 2023),
                  "日间照料中心": (2013, 2022), "日间照料中心（含助餐）": (2015, 2020), "幸福食堂": (2019, 2024),
                  "互助幸福院": (2013, 2022)}


def add_opening_years(rows: list[FacilityRow]) -> None:
    """
    Give every listed facility a 建成年份 and a 状态 as bureau lists write them (its own random stream).

    Years are mostly plain numbers, some "2018年" or "2019-06"; 状态 is
    已建成, 正常运营 or blank. Places, names and capacities do not change.
    """
    rng = np.random.default_rng(TIME_SEED)
    for row in rows:
        first, last = _OPENING_YEARS[row.type_text]
        year = int(rng.integers(first, last + 1))
        shape = rng.random()
        row.opened = f"{year}年" if shape < 0.2 else (f"{year}-{int(rng.integers(1, 13)):02d}" if shape < 0.3 else year)
        pick = rng.random()
        row.status = "已建成" if pick < 0.7 else ("正常运营" if pick < 0.8 else None)


def planned_rows(frame: _Frame, land: Landscape, units: list[Unit], osm: OsmData, state: _NetworkState,
                 rows: list[FacilityRow]) -> list[FacilityRow]:
    """
    Facilities under construction (在建) and planned (规划), one closed (停业) and one plan without a year.

    They fill the deliberate gaps in the years 2025–2027: a day-care
    centre in 西城街道 (2026), the 民生服务综合体 of 东城街道 (2025), the
    敬老院 of 石岭乡 (2027), three 互助幸福院 (2025–2026), a village canteen
    (2025); one canteen closed in 2022; one 规划 canteen says 待定 (never counted).
    Appended after the listed rows, so the plain (as listed) run is unchanged.
    """
    rng = np.random.default_rng(TIME_SEED + 1)
    by_code = {u.code: u for u in units}
    by_name = {u.name: u for u in units}
    placement = _placement_index(osm, state)
    out: list[FacilityRow] = []

    def add(host: Unit, owner: Unit, type_text: str, opened, status: str, closed: int | None = None,
            rank: int = 5) -> None:
        point, street_name = _place_near_street(rng, placement, land, host, rank)
        beds, nursing, area, caregivers = _capacity(rng, type_text)
        row = _row(frame, point, _facility_name(owner, type_text, by_code), type_text,
                   _address(rng, host, by_code, street_name), (beds, nursing, area, caregivers),
                   by_code[host.parent_code].name, owner.name if owner.level == "village" else None, owner.code)
        row.opened, row.status, row.closed = opened, status, closed
        out.append(row)

    west = by_name[STREET_WITHOUT_DAY_CARE]
    west_community = min((u for u in units if u.parent_code == west.code and u.role == "community"),
                         key=lambda u: u.code)
    add(west_community, west_community, "日间照料中心", 2026, "规划")
    east = by_name[STREET_WITHOUT_COMPREHENSIVE]
    east_community = min((u for u in units if u.parent_code == east.code and u.role == "community"),
                         key=lambda u: u.code)
    add(east_community, east, "民生服务综合体", "2025年6月", "在建")
    town = by_name[TOWN_WITHOUT_NURSING_HOME]
    seat = next(u for u in units if u.role == "seat" and u.parent_code == town.code)
    add(seat, town, "敬老院", "2027年", "规划")
    with_mutual_aid = {r.code for r in rows if r.type_text == "互助幸福院"}
    with_canteen = {r.code for r in rows if r.type_text == "幸福食堂"}
    villages = sorted((u for u in units if u.role == "village" and u.code not in with_mutual_aid), key=lambda u: u.code)
    for village, (opened, status) in zip(villages[::3], [(2025, "在建"), ("2026年", "规划"), (2026, "规划")]):
        add(village, village, "互助幸福院", opened, status)
    no_canteen = [u for u in units if u.role == "village" and u.code not in with_canteen and u.code not in
                  with_mutual_aid]
    add(no_canteen[-1], no_canteen[-1], "幸福食堂", "2025-03", "在建")
    community = max((u for u in units if u.role == "community" and u.code not in with_canteen), key=lambda u: u.code)
    add(community, community, "幸福食堂", 2016, "停业", closed=2022)
    add(no_canteen[len(no_canteen) // 2], no_canteen[len(no_canteen) // 2], "幸福食堂", "待定", "规划")
    return out


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
# Facility table writers
# =============================================================================


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
    widths = [6, 34, 20, 40, 12, 12, 8, 8, 10, 12, 14, 14, 14, 16, 10, 10, 10]
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
