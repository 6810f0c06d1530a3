"""Pieces of the interactive map that keep it light and readable offline: display geometry, streets, raster, panel."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.utilities import JsCode

#: display tolerance of each kind of geometry (metres in a local projected CRS): about one screen pixel
#: at the zoom the layer is read at (units and streets at street zoom 16-17, isochrones at 14-15)
DISPLAY_TOLERANCE_M: Mapping[str, float] = {"units": 2.0, "streets": 3.0, "isochrones": 5.0}
#: most coordinates a layer group sends to the browser (about 22 bytes each in the page): past it the
#: tolerance doubles until the group fits, so a county map stays a few megabytes (streets drop their
#: footpaths, then their minor streets, when even 12 m simplification leaves too many)
VERTEX_BUDGET: Mapping[str, int] = {"units": 60_000, "streets": 100_000, "isochrones": 90_000}
#: decimals kept for lines and polygons (5 decimals ≈ 1 m, what the eye sees at street zoom)
LINE_DECIMALS = 5
#: decimals kept for points (6 decimals ≈ 0.1 m: a facility stays on its doorstep)
POINT_DECIMALS = 6

#: street classes of the offline street layer → OSM ``highway`` values
STREET_CLASSES: Mapping[str, tuple[str, ...]] = {
    "major": ("motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link", "secondary",
              "secondary_link", "tertiary", "tertiary_link"),
    "minor": ("unclassified", "residential", "living_street", "road", "service", "busway", "other"),
    "path": ("pedestrian", "footway", "path", "steps", "cycleway", "bridleway", "track", "corridor", "elevator"),
    "ferry": ("ferry",),
}
#: drawing style of each street class (colour, width in pixels)
STREET_STYLE: Mapping[str, tuple[str, float]] = {
    "major": ("#e08e2b", 3.2), "minor": ("#8a8a8a", 1.3), "path": ("#a8a8a8", 0.8), "ferry": ("#3a7bd5", 1.5),
}


#: fill opacity of the units' shading and of the uncovered-elderly image (legend swatches use the same)
UNIT_OPACITY = 0.6
UNCOVERED_OPACITY = 0.75
#: fill of units without elderly, and outline of units that miss their target
NO_DATA_COLOUR = "#bdbdbd"
FAIL_OUTLINE = "#d7191c"


# --------------------------------------------------------------------------- display geometry


def local_metric_crs(gdf: gpd.GeoDataFrame):
    """The UTM zone of a WGS-84 layer's centre, for tolerances in metres."""
    from coverage import coords

    west, south, east, north = gdf.total_bounds
    return coords.utm_crs_for((west + east) / 2.0, (south + north) / 2.0)


def simplify_display(geoms: np.ndarray, tolerance_m: float, metric_crs, *, decimals: int = LINE_DECIMALS
                     ) -> np.ndarray:
    """
    WGS-84 geometries simplified in metres and rounded for the map, cheaply and without breaking rings.

    Polygons are simplified part by part with GEOS's topology-preserving
    simplifier (each part's shell and holes stay valid; one call over the
    array of parts, so a county's 15-minute area of thousands of parts takes
    about a second rather than minutes as one multipolygon); lines with
    plain Douglas–Peucker.

    Parameters
    ----------
    geoms
        shapely geometries in EPSG:4326.
    tolerance_m
        Largest shift of a vertex (metres).
    metric_crs
        Projected CRS the tolerance is measured in.
    decimals
        Decimals of the degrees kept.

    Returns
    -------
    numpy.ndarray
        EPSG:4326 geometries.
    """
    from pyproj import Transformer

    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0 or tolerance_m <= 0:
        return shapely.transform(geoms, lambda xy: np.round(xy, decimals))
    forward = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    back = Transformer.from_crs(metric_crs, "EPSG:4326", always_xy=True)
    projected = shapely.transform(geoms, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])))
    simple = _simplify_metric(projected, tolerance_m)
    return shapely.transform(simple, lambda xy: np.round(np.column_stack(back.transform(xy[:, 0], xy[:, 1])),
                                                         decimals))


def _simplify_metric(projected: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Simplify projected geometries: polygons part by part keeping topology, everything else plainly."""
    out = projected.copy()
    polygonal = np.isin(shapely.get_type_id(projected), (3, 6)) & ~shapely.is_empty(projected)
    if (~polygonal).any():
        out[~polygonal] = shapely.simplify(projected[~polygonal], tolerance_m, preserve_topology=False)
    if polygonal.any():
        rows = np.flatnonzero(polygonal)
        parts, owner = shapely.get_parts(projected[rows], return_index=True)
        simple = shapely.simplify(parts, tolerance_m, preserve_topology=True)
        keep = ~shapely.is_empty(simple)
        rebuilt = np.array([shapely.MultiPolygon() for _ in rows], dtype=object)
        if keep.any():  # rows whose every part vanished stay empty
            shapely.multipolygons(simple[keep], indices=owner[keep], out=rebuilt)
        # a Polygon stays a Polygon
        single = (shapely.get_type_id(projected[rows]) == 3) & (shapely.get_num_geometries(rebuilt) == 1)
        rebuilt[single] = shapely.get_geometry(rebuilt[single], 0)
        out[rows] = rebuilt
    return out


def simplify_to_budget(geoms: np.ndarray, tolerance_m: float, metric_crs, budget: int, *,
                       decimals: int = LINE_DECIMALS, max_tolerance_m: float = 160.0) -> tuple[np.ndarray, float]:
    """
    :func:`simplify_display` at ``tolerance_m``, doubled until the geometries hold at most ``budget`` coordinates.

    Returns
    -------
    (numpy.ndarray, float)
        The geometries and the tolerance used (metres; at most ``max_tolerance_m``).
    """
    from pyproj import Transformer

    geoms = np.asarray(geoms, dtype=object)
    if geoms.size == 0 or tolerance_m <= 0:
        return simplify_display(geoms, tolerance_m, metric_crs, decimals=decimals), tolerance_m
    forward = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True)
    back = Transformer.from_crs(metric_crs, "EPSG:4326", always_xy=True)
    projected = shapely.transform(geoms, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1])))
    out = _simplify_metric(projected, tolerance_m)
    # coarser from the coarse result: each pass works on fewer vertices (shifts add up to under 2x the last tolerance)
    while shapely.get_num_coordinates(out).sum() > budget and tolerance_m * 2 <= max_tolerance_m:
        tolerance_m *= 2
        out = _simplify_metric(out, tolerance_m)
    return shapely.transform(out, lambda xy: np.round(np.column_stack(back.transform(xy[:, 0], xy[:, 1])),
                                                      decimals)), tolerance_m


def _polygonal_part(geom):
    """The polygons of a repaired geometry (make_valid may return a collection with stray lines)."""
    if shapely.get_type_id(geom) != 7:
        return geom
    parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]
    return shapely.union_all(parts) if parts else geom


def union_isochrones(isochrones: gpd.GeoDataFrame, minutes: float) -> gpd.GeoDataFrame:
    """The area within ``minutes`` of a facility of any kind: the union of the kinds' isochrones (``kind="any"``)."""
    part = isochrones[pd.to_numeric(isochrones["minutes"], errors="coerce") == minutes]
    if part.empty:
        return gpd.GeoDataFrame({"kind": [], "minutes": []}, geometry=[], crs=isochrones.crs)
    union = shapely.union_all(np.asarray(part.geometry.values))
    return gpd.GeoDataFrame({"kind": ["any"], "minutes": [minutes]}, geometry=[union], crs=isochrones.crs)


# --------------------------------------------------------------------------- streets


def street_layer(net, *, tolerance_m: float = DISPLAY_TOLERANCE_M["streets"], names: Sequence[Any] | None = None,
                 budget: int = VERTEX_BUDGET["streets"]) -> gpd.GeoDataFrame:
    """
    The study's own network as a street layer: one multiline per street class (and name), simplified, WGS-84.

    Parameters
    ----------
    net
        :class:`coverage.reach.NetworkArrays` of the study.
    tolerance_m
        Simplification tolerance (metres, in the network's CRS).
    names
        Optional street name of each edge. The arrays do not keep OSM
        ``name`` tags; when given, major streets are dissolved per name so
        the map can show it.
    budget
        Most coordinates sent (:data:`VERTEX_BUDGET`): past it the tolerance
        grows to 12 m, then footpaths and then minor streets are left out
        (``attrs["omitted_classes"]`` says which).

    Returns
    -------
    geopandas.GeoDataFrame
        ``street_class`` (``major``/``minor``/``path``/``ferry``), ``name``
        (text or empty), geometry (MultiLineString) in EPSG:4326; major
        streets last, so that they are drawn on top.
    """
    from coverage import reach

    highway = np.zeros(net.n_edges, dtype=int) if net.edge_highway is None else np.asarray(net.edge_highway, int)
    code_class = {}
    for cls, values in STREET_CLASSES.items():
        for value in values:
            code_class[reach.highway_code(value)] = cls
    code_class[0] = "minor"
    edge_class = np.array([code_class.get(int(c), "minor") for c in range(len(reach.HIGHWAY_CLASSES))])[highway]
    edge_class[np.asarray(net.edge_ferry, bool)] = "ferry"
    edge_name = np.full(net.n_edges, "", dtype=object) if names is None else \
        np.array(["" if n is None or (isinstance(n, float) and math.isnan(n)) else str(n) for n in names], object)
    edge_name[edge_class != "major"] = ""  # only major streets are labelled
    frame = pd.DataFrame({"street_class": edge_class, "name": edge_name})
    groups = frame.groupby(["street_class", "name"], sort=False).indices
    # classes the budget is bound to leave out are not merged at all (line_merge of a county's minor streets
    # is seconds): their fewest coordinates after any simplification already break it (_fewest_coordinates)
    omitted = _classes_over_budget(net, edge_class, budget)
    rows, geoms = [], []
    for (cls, name), index in groups.items():
        if cls in omitted:
            continue
        lines = np.asarray(net.edge_geometry)[index]
        merged = shapely.line_merge(shapely.multilinestrings(lines))
        simple = shapely.simplify(merged, tolerance_m, preserve_topology=False)
        rows.append({"street_class": cls, "name": name})
        geoms.append(simple)
    order = {"ferry": 0, "path": 1, "minor": 2, "major": 3}
    layer = gpd.GeoDataFrame(rows, columns=["street_class", "name"], geometry=geoms, crs=net.crs)
    if omitted:
        # the loop below would have coarsened the whole layer step by step to 12 m before leaving any class out
        while tolerance_m < 12.0:
            tolerance_m = min(tolerance_m * 2, 12.0)
            layer["geometry"] = shapely.simplify(np.asarray(layer.geometry.values), tolerance_m, preserve_topology=False)
    # a county's streets: coarser, then without footpaths, then without minor streets, to stay in budget
    while shapely.get_num_coordinates(np.asarray(layer.geometry.values)).sum() > budget:
        if tolerance_m < 12.0:
            tolerance_m = min(tolerance_m * 2, 12.0)
            layer["geometry"] = shapely.simplify(np.asarray(layer.geometry.values), tolerance_m, preserve_topology=False)
            continue
        drop = next((c for c in ("path", "minor") if (layer["street_class"] == c).any()), None)
        if drop is None:
            break
        omitted.append(drop)
        layer = layer[layer["street_class"] != drop]
    layer = layer.to_crs("EPSG:4326")
    layer["geometry"] = shapely.transform(np.asarray(layer.geometry.values), lambda xy: np.round(xy, LINE_DECIMALS))
    layer = layer[~layer.geometry.is_empty]
    layer = layer.sort_values("street_class", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    layer.attrs["omitted_classes"] = omitted
    layer.attrs["tolerance_m"] = tolerance_m
    return layer


#: bump when :func:`street_layer` draws differently, so that cached street layers are drawn again
STREET_LAYER_VERSION = 1


def cached_street_layer(net, *, names: Sequence[Any] | None = None, cache_dir=None,
                        use_cache: bool = True) -> gpd.GeoDataFrame:
    """
    :func:`street_layer` at its default tolerance and budget, kept beside the parsed networks for the next run.

    A county's street layer (line merging and simplifying 330,000 edges)
    takes 0.4–0.7 s and is the same from run to run of one network, so it is
    cached by the network's content (edge vertices, highway classes, ferry
    flags, names and CRS), this drawing's version and the shapely and
    geopandas versions, in ``map_streets/`` of the network cache
    (:func:`coverage.network.default_cache_dir`, ``$ELDERCOV_CACHE``). A
    cache file that cannot be read is drawn again.

    Parameters
    ----------
    net, names
        As for :func:`street_layer`.
    cache_dir
        The cache's folder (default: the network cache's).
    use_cache
        Read and write the cache; False draws the layer.

    Returns
    -------
    geopandas.GeoDataFrame
        As :func:`street_layer` returns it.
    """
    import pickle

    from coverage import network
    from coverage._io import atomic_pickle

    if not use_cache:
        return street_layer(net, names=names)
    root = Path(cache_dir) if cache_dir is not None else network.default_cache_dir()
    path = root / "map_streets" / f"{_street_layer_key(net, names)}.pickle"
    if path.exists():
        try:
            with open(path, "rb") as handle:
                layer = pickle.load(handle)
            if isinstance(layer, gpd.GeoDataFrame):
                return layer
        except Exception:  # a damaged or foreign cache file: drawn again below
            pass
    layer = street_layer(net, names=names)
    try:
        atomic_pickle(layer, path)  # as the parsed networks are kept
    except OSError:  # a read-only cache folder: the map is drawn all the same
        pass
    return layer


def _street_layer_key(net, names) -> str:
    """sha256 of what :func:`street_layer` draws from: the edges' vertices, classes, ferry flags, names, CRS."""
    import hashlib

    digest = hashlib.sha256()
    digest.update(f"v{STREET_LAYER_VERSION}|shapely {shapely.__version__}|geopandas {gpd.__version__}|"
                  f"{DISPLAY_TOLERANCE_M['streets']}|{VERTEX_BUDGET['streets']}|{net.crs}".encode())
    geometry = np.asarray(net.edge_geometry)
    digest.update(np.ascontiguousarray(shapely.get_num_coordinates(geometry), dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(shapely.get_coordinates(geometry)).tobytes())
    highway = np.zeros(net.n_edges, dtype=np.int64) if net.edge_highway is None else net.edge_highway
    digest.update(np.ascontiguousarray(highway, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(net.edge_ferry, dtype=bool).tobytes())
    if names is not None:
        digest.update("\x1f".join("" if n is None else str(n) for n in names).encode())
    return digest.hexdigest()


def _fewest_coordinates(net, edges: np.ndarray) -> int:
    """
    A lower bound on the coordinates of the edges merged (``line_merge``) and simplified at any tolerance.

    A merged line runs between nodes not of degree 2 (among these edges)
    and keeps at least its two ends, so there are at least as many
    coordinates as line ends at such nodes; closed rings and loops count nothing.
    """
    u, v = np.asarray(net.edge_u)[edges], np.asarray(net.edge_v)[edges]
    u, v = u[u != v], v[u != v]  # a loop adds ends where it is (fewer without it: still a lower bound)
    if len(u) == 0:
        return 0
    ends = np.concatenate([u, v])
    degree = np.bincount(ends)
    return int(degree[degree != 2].sum())


def _classes_over_budget(net, edge_class: np.ndarray, budget: int) -> list[str]:
    """The classes :func:`street_layer`'s budget loop is sure to leave out (footpaths, then minor streets)."""
    present = {cls: np.flatnonzero(edge_class == cls) for cls in np.unique(edge_class)}
    fewest = {cls: _fewest_coordinates(net, edges) for cls, edges in present.items()}
    omitted: list[str] = []
    for cls in ("path", "minor"):
        if cls not in present:
            continue
        if sum(fewest[c] for c in present if c not in omitted) <= budget:
            break
        omitted.append(cls)
    return omitted


# --------------------------------------------------------------------------- headline panel

_TEXT = {
    "zh": {"share": "{m:g}分钟内可达养老服务设施的60岁以上老人", "targets": "政策指标", "met": "达标",
           "missed": "未达标", "no_data": "无数据", "date": "数据日期", "walk": "分钟步行",
           "facilities": "养老服务设施", "uncovered": "{m:g}分钟外的60岁以上老人", "streets": "道路（研究路网）"},
    "en": {"share": "60+ within {m:g} min of an elderly-care facility", "targets": "policy targets", "met": "met",
           "missed": "missed", "no_data": "no data", "date": "data date", "walk": " min walk",
           "facilities": "elderly-care facilities", "uncovered": "60+ beyond {m:g} min",
           "streets": "streets (study network)"},
}


@dataclass(frozen=True)
class Headline:
    """
    The figures a meeting asks first, shown in a panel on the map.

    Attributes
    ----------
    minutes
        Headline walking threshold (minutes).
    share_elderly
        Share (0..1) of the 60+ within it of any facility; None when unknown.
    elderly
        60+ persons in the study area.
    targets_met, targets_missed, targets_no_data
        Counts of policy targets by status.
    data_date
        When the data were taken (text).
    parameters
        Short parameter lines (walking speed, thresholds, …).
    """

    minutes: float
    share_elderly: float | None = None
    elderly: float | None = None
    targets_met: int = 0
    targets_missed: int = 0
    targets_no_data: int = 0
    data_date: str = ""
    parameters: Sequence[str] = field(default_factory=tuple)


def headline_html(headline: Headline, lang: str = "zh") -> str:
    """The headline panel (``div#coverage-headline``) as HTML."""
    text = _TEXT.get(lang, _TEXT["zh"])
    parts = ['<div class="cov-headline" id="coverage-headline">']
    share = "—" if headline.share_elderly is None or not np.isfinite(headline.share_elderly) \
        else f"{headline.share_elderly * 100:.1f}%"
    parts.append(f'<div class="cov-big">{share}</div>')
    persons = "" if headline.elderly is None else f"（{headline.elderly:,.0f}）"
    parts.append(f'<div class="cov-cap">{html.escape(text["share"].format(m=headline.minutes))}{persons}</div>')
    total = headline.targets_met + headline.targets_missed + headline.targets_no_data
    if total:
        parts.append(
            f'<div class="cov-targets">{text["targets"]}：'
            f'<span class="cov-met">{text["met"]} {headline.targets_met}</span> · '
            f'<span class="cov-missed">{text["missed"]} {headline.targets_missed}</span> · '
            f'<span class="cov-nodata">{text["no_data"]} {headline.targets_no_data}</span></div>'
        )
    if headline.data_date:
        parts.append(f'<div class="cov-small">{text["date"]}：{html.escape(headline.data_date)}</div>')
    for line in headline.parameters:
        parts.append(f'<div class="cov-small">{html.escape(str(line))}</div>')
    parts.append("</div>")
    return "".join(parts)


def headline_from_tables(targets: pd.DataFrame, coverage_wide: pd.DataFrame, minutes: float, *,
                         data_date: str = "", parameters: Sequence[str] = ()) -> Headline:
    """
    A :class:`Headline` from a run's target table and wide coverage table.

    Parameters
    ----------
    targets
        ``results.targets`` (``status`` ``pass``/``fail``/``no data``).
    coverage_wide
        ``results.coverage_wide``: the study-wide ``any`` row gives the share.
    minutes
        Headline threshold (minutes).
    """
    from coverage.targets import STATUS_FAIL, STATUS_NO_DATA, STATUS_PASS

    share = elderly = None
    column = f"share_{minutes:g}min"
    if len(coverage_wide) and column in coverage_wide:
        whole = coverage_wide[(coverage_wide["kind"] == "any") & (coverage_wide["code"].astype(str) == "all")]
        if len(whole):
            share = float(whole[column].iloc[0])
            elderly = float(whole["elderly"].iloc[0])
    status = targets["status"].astype(str) if len(targets) and "status" in targets else pd.Series(dtype=str)
    return Headline(minutes=minutes, share_elderly=share, elderly=elderly,
                    targets_met=int((status == STATUS_PASS).sum()), targets_missed=int((status == STATUS_FAIL).sum()),
                    targets_no_data=int((status == STATUS_NO_DATA).sum()), data_date=data_date,
                    parameters=tuple(parameters))


# --------------------------------------------------------------------------- folium layers

_LABEL_ICON_JS = """function(feature, layer) {
    layer.setIcon(L.divIcon({className: 'cov-unit-label', html: '<div>' + feature.properties.n + '</div>',
                             iconSize: null}));
}"""


def add_unit_labels(group: folium.FeatureGroup, units: gpd.GeoDataFrame) -> None:
    """Unit names at the units' inner points, shown from :data:`LABEL_ZOOM` (page CSS toggles them)."""
    points = shapely.point_on_surface(np.asarray(units.geometry.values))
    points = shapely.transform(points, lambda xy: np.round(xy, LINE_DECIMALS))
    labels = gpd.GeoDataFrame(geometry=points, crs="EPSG:4326")
    GeoJsonLayer(
        _feature_collection(labels, [{"n": _text(n)} for n in units["name"]]),
        name="单元名称",
        control=False,
        marker=folium.Marker(interactive=False, keyboard=False),
        on_each_feature=JsCode(_LABEL_ICON_JS),
    ).add_to(group)


def add_streets(m: folium.Map, streets: gpd.GeoDataFrame) -> None:
    """The study's network drawn as streets (major ones wider and orange), under the overlays."""
    named = "name" in streets and streets["name"].astype(str).str.len().gt(0).any()
    props = [{"c": str(c), "名称": _text(n, "") if named else ""}
             for c, n in zip(streets["street_class"], streets.get("name", pd.Series("", index=streets.index)))]

    def style(feature: dict) -> dict:
        colour, weight = STREET_STYLE.get(feature["properties"]["c"], ("#999999", 1.0))
        cls = feature["properties"]["c"]
        return {"color": colour, "weight": weight, "opacity": 0.9, "fill": False,
                "dashArray": "6 4" if cls == "ferry" else None,
                "className": f"cov-street cov-street-{cls}"}

    GeoJsonLayer(
        _feature_collection(streets, props),
        name='<span data-cov-group="底图 / basemap">道路（研究路网）</span>',
        show=True,
        style_function=style,
        interactive=bool(named),
        tooltip=folium.GeoJsonTooltip(fields=["名称"], labels=False, sticky=True, class_name="cov-street-tip")
        if named else None,
        pane="cov-streets",
        smooth_factor=1.5,
    ).add_to(m)


def add_basemap(m: folium.Map, basemap: str, tianditu_key: str | None) -> None:
    """Tiles of a basemap (``osm``, ``cartodbpositron``, ``tianditu``, ``amap``): an extra where the network reaches them."""
    import os

    from coverage._errors import ConfigError
    from coverage.config import TIANDITU_KEY_ENV

    if basemap == "osm":
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", max_zoom=19).add_to(m)
    elif basemap == "cartodbpositron":
        url = "https://{s}.basemaps.cartocdn.com/light_all/{z}/{x}/{y}{r}.png"
        attr = '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors © CARTO'
        folium.TileLayer(url, attr=attr, name="CARTO Positron (OpenStreetMap)", subdomains="abcd", max_zoom=20).add_to(m)
    elif basemap == "tianditu":
        key = tianditu_key or os.environ.get(TIANDITU_KEY_ENV)
        if not key:
            raise ConfigError(
                f"outputs.basemap: the tianditu basemap needs a key: pass tianditu_key= or set the "
                f"{TIANDITU_KEY_ENV} environment variable (apply at console.tianditu.gov.cn), or choose another "
                "basemap (cartodbpositron, osm, amap); 天地图底图需要密钥"
            )
        attr = "© 天地图 国家地理信息公共服务平台 (tianditu.gov.cn)"
        for layer, name, overlay in (("vec", "天地图 矢量底图", False), ("cva", "天地图 注记", True)):
            url = (
                f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                f"&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
            )
            folium.TileLayer(url, attr=attr, name=name, subdomains="01234567", max_zoom=18, overlay=overlay).add_to(m)
    else:  # amap, GCJ-02
        url = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
        attr = "© 高德地图 AutoNavi (GCJ-02)"
        folium.TileLayer(url, attr=attr, name="高德地图", subdomains="1234", max_zoom=18).add_to(m)



# --------------------------------------------------------------------------- unit popups: their own targets


def unit_target_results(targets: pd.DataFrame, units: pd.DataFrame | None, facilities: pd.DataFrame,
                        codes: Sequence[str]) -> list[str]:
    """
    For each unit code, the presence targets that apply to its level and area, each 达标 / 未达标, as HTML.

    A unit meets a presence target (``unit_presence``, ``at_least_one``)
    when a facility of the target's kinds lies in it or is assigned to it,
    as :mod:`coverage.targets` counts; targets measured over the whole
    study (shares, beds per 1,000 elderly) have no per-unit result and are
    left out. Facility filters of a target (size, type) are not applied here.

    Returns
    -------
    list of str
        One HTML fragment per code ("—" when no target applies).
    """
    from coverage.targets import select_units

    out = {str(code): [] for code in codes}
    if units is None or targets is None or not len(targets) or "kinds" not in facilities:
        return ["—" for _ in codes]
    column_of = {"village": "village_code", "town": "town_code", "county": "county_code"}
    for _, target in targets.iterrows():
        if target.get("metric") not in ("unit_presence", "at_least_one"):
            continue
        level = str(target.get("level"))
        column = column_of.get(level)
        if column is None or column not in facilities:
            continue
        try:
            applicable, _, _ = select_units(units, level, str(target.get("scope", "all")))
        except Exception:  # noqa: BLE001 - an area the units cannot tell: no per-unit result
            continue
        kinds = [k for k in str(target.get("kinds", "")).split(";") if k]
        has_kind = facilities["kinds"].astype(str).str.split(";").apply(
            lambda ks: any(k in ks for k in kinds) or "any" in kinds)
        served = set(facilities.loc[has_kind, column].dropna().astype(str))
        label = html.escape(str(target.get("label_zh") or target.get("target_id")))
        for code in applicable["code"].astype(str):
            if code in out:
                met = code in served
                out[code].append(f'<span class="{"cov-met" if met else "cov-missed"}">'
                                 f'{"达标" if met else "未达标"}</span> {label}')
    return ["<br>".join(out[str(code)]) or "—" for code in codes]


# --------------------------------------------------------------------------- page scripts and styles

#: groups the layer control's overlays by kind (a header row before each group) and shows unit names from a zoom
PAGE_JS = """<script>
document.addEventListener('DOMContentLoaded', function () {
  var list = document.querySelector('.leaflet-control-layers-overlays');
  if (list) {
    var seen = {};
    list.querySelectorAll('[data-cov-group]').forEach(function (el) {
      var group = el.getAttribute('data-cov-group');
      if (seen[group]) { return; }
      seen[group] = true;
      var label = el.closest('label');
      var head = document.createElement('div');
      head.className = 'cov-lc-group';
      head.textContent = group;
      label.parentNode.insertBefore(head, label);
    });
  }
  Object.keys(window).forEach(function (key) {
    var map = window[key];
    if (!(map instanceof L.Map)) { return; }
    var show = function () {
      map.getContainer().classList.toggle('cov-labels-on', map.getZoom() >= %(label_zoom)d);
      map.getContainer().classList.toggle('cov-street-zoom', map.getZoom() >= %(street_zoom)d);
    };
    map.on('zoomend', show);
    show();
  });
});
</script>"""

PAGE_CSS = """<style>
.cov-headline { position: fixed; bottom: 28px; right: 10px; z-index: 1000; max-width: 320px;
  background: rgba(255,255,255,0.95); padding: 8px 12px; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,0.4);
  font: 12px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.cov-headline .cov-big { font-size: 26px; font-weight: bold; color: #1b7837; line-height: 1.1; }
.cov-headline .cov-cap { color: #333; margin-bottom: 3px; }
.cov-headline .cov-small { color: #555; font-size: 11px; }
.cov-met { color: #1b7837; font-weight: bold; }
.cov-missed { color: #b2182b; font-weight: bold; }
.cov-nodata { color: #777; }
.cov-lc-group { font-weight: bold; margin: 5px 0 1px 0; border-top: 1px solid #ddd; padding-top: 3px; }
.cov-unit-label { display: none; font: 11px/1.2 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; color: #222;
  white-space: nowrap; text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff; pointer-events: none; }
.cov-unit-label div { transform: translate(-50%, -50%); display: inline-block; }
.cov-labels-on .cov-unit-label { display: block; }
.cov-street-tip { font-size: 11px; padding: 1px 4px; }
.cov-uncovered-image { image-rendering: pixelated; }
.leaflet-container:not(.cov-street-zoom) path.cov-street-path { display: none; }
</style>"""

BASE_CSS = """<style>
.cov-title { position: fixed; top: 10px; left: 56px; z-index: 1000; max-width: 420px;
  background: rgba(255,255,255,0.93); padding: 8px 12px; border-radius: 6px;
  box-shadow: 0 1px 5px rgba(0,0,0,0.4); font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.cov-title h1 { font-size: 18px; margin: 0 0 4px 0; }
.cov-title .cov-sub { color: #333; }
.cov-title .cov-attr { color: #666; font-size: 11px; margin-top: 4px; }
.cov-synthetic { background: #c00; color: #fff; font-weight: bold; font-size: 15px;
  padding: 3px 8px; margin: 0 0 6px 0; border-radius: 4px; letter-spacing: 1px; }
.cov-legend { position: fixed; bottom: 62px; left: 10px; z-index: 1000; max-height: 60vh; overflow-y: auto;
  background: rgba(255,255,255,0.93); padding: 8px 10px; border-radius: 6px; box-shadow: 0 1px 5px rgba(0,0,0,0.4);
  font: 12px/1.5 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.cov-legend h4 { margin: 4px 0 2px 0; font-size: 12px; }
.cov-legend .sw { display: inline-block; width: 16px; height: 11px; margin-right: 6px; vertical-align: middle;
  border: 1px solid #777; }
.cov-legend .dot { display: inline-block; width: 11px; height: 11px; margin-right: 6px; vertical-align: middle;
  border-radius: 50%; border: 1px solid #fff; box-shadow: 0 0 0 1px #999; }
.cov-legend .ln { display: inline-block; width: 18px; height: 0; margin-right: 6px; vertical-align: middle; }
.cov-site-icon { width: 24px; height: 24px; border-radius: 50%; background: #000; color: #fff; border: 2px solid #ffd400;
  font: bold 13px/24px sans-serif; text-align: center; box-sizing: content-box; margin: -1px; }
.leaflet-control-layers { font: 12px/1.4 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; max-width: 280px; }
.leaflet-popup-content, .leaflet-tooltip { font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.leaflet-popup-content table, .leaflet-tooltip table { font-size: 13px; border-collapse: collapse; }
.leaflet-popup-content th { text-align: left; color: #555; font-weight: normal; white-space: nowrap; padding-right: 10px; }
.leaflet-popup-content td { font-weight: bold; }
</style>"""


def title_html(title: str, subtitle_lines: Sequence[str], attribution_lines: Sequence[str], synthetic: bool) -> str:
    """The title block (``div#coverage-title``): synthetic label, title, subtitle lines, data credits."""
    parts = ['<div class="cov-title" id="coverage-title">']
    if synthetic:
        parts.append('<div class="cov-synthetic">合成示例数据 / synthetic demo data</div>')
    parts.append(f"<h1>{html.escape(title)}</h1>")
    for line in subtitle_lines:
        parts.append(f'<div class="cov-sub">{html.escape(str(line))}</div>')
    if attribution_lines:
        parts.append('<div class="cov-attr">' + "<br>".join(html.escape(str(a)) for a in attribution_lines) + "</div>")
    parts.append("</div>")
    return "".join(parts)


def legend_html(
    classes: Sequence[Any],
    units_title: str | None,
    kinds_present: Sequence[str],
    uncovered_classes: Sequence[tuple[str, str]],
    *,
    has_sites: bool,
    threshold_minutes: int,
    has_streets: Sequence[str] | bool = (),
    outline_fail: bool = False,
    kind_labels: Mapping[str, str] | None = None,
    kind_colours: Mapping[str, str] | None = None,
    lang: str = "zh",
) -> str:
    """
    The legend (``div#coverage-legend``): swatches drawn with the opacity of their layer.

    Parameters
    ----------
    classes
        :class:`coverage.map_classes.ShareClass` list of the choropleth.
    units_title
        Name of the units' layer; None when no units are drawn.
    kinds_present
        Facility kinds drawn.
    uncovered_classes
        ``(colour, label)`` of each class of the uncovered-elderly image.
    outline_fail
        Explain the red outline of units that miss their target.
    kind_labels, kind_colours
        Display label and colour of each kind (default: the kinds registry).
    """
    if kind_labels is None or kind_colours is None:
        from coverage import kinds as kinds_registry

        kind_labels, kind_colours = kinds_registry.registry().labels("zh"), kinds_registry.registry().colours()
    text = _TEXT.get(lang, _TEXT["zh"])
    parts = ['<div class="cov-legend" id="coverage-legend">']
    unit_alpha = f"opacity:{UNIT_OPACITY:g}"
    if units_title is not None:
        parts.append(f"<h4>{units_title}（{threshold_minutes:g}{text['walk']}）</h4>")
        for cls in reversed(classes):
            parts.append(f'<div><span class="sw" style="background:{cls.colour};{unit_alpha}"></span>'
                         f'{html.escape(cls.label)}</div>')
        parts.append(f'<div><span class="sw" style="background:{NO_DATA_COLOUR};{unit_alpha}"></span>无老年人口</div>')
        if outline_fail:
            parts.append(
                f'<div><span class="sw" style="background:#fff;border:2.5px solid {FAIL_OUTLINE}"></span>红框：未达标</div>'
            )
    if kinds_present:
        parts.append(f"<h4>{text['facilities']}</h4>")
        for kind in kinds_present:
            parts.append(f'<div><span class="dot" style="background:{kind_colours[kind]}"></span>{kind_labels[kind]}</div>')
    if uncovered_classes:
        parts.append(f"<h4>{text['uncovered'].format(m=threshold_minutes)}</h4>")
        for colour, label in reversed(list(uncovered_classes)):
            parts.append(f'<div><span class="sw" style="background:{colour};opacity:{UNCOVERED_OPACITY:g};'
                         f'border-color:{colour}"></span>{html.escape(label)}（每格）</div>')
    if has_streets:
        parts.append(f"<h4>{text['streets']}</h4>")
        drawn = set(STREET_STYLE) if has_streets is True else set(has_streets)
        for cls, text in (("major", "主干道（国道、省道、主次干路）"), ("minor", "一般道路"), ("path", "步行道")):
            if cls not in drawn:
                continue
            colour, weight = STREET_STYLE[cls]
            parts.append(f'<div><span class="ln" style="border-top:{max(weight, 1):g}px solid {colour}"></span>'
                         f"{text}</div>")
    if has_sites:
        parts.append(
            '<h4>建议新增选址</h4><div><span class="dot" style="background:#000;border-color:#ffd400"></span>'
            "按序号优先</div>"
        )
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- small helpers


def geojson_geometries(geometries) -> list:
    """
    GeoJSON geometry objects (dicts) of many shapely geometries, the same as ``shapely.geometry.mapping`` gives.

    GEOS writes the GeoJSON of all of them in one call (``shapely.to_geojson``,
    coordinates in their shortest round-trip form) and :func:`json.loads`
    reads it back: a county's street layer (one MultiLineString of 15,000
    lines) costs a few hundredths of a second, not the ~0.2 s of shapely's
    Python-level ``__geo_interface__``. Empty geometries (GEOS writes their
    rings differently) go through ``mapping``; missing ones are None.
    """
    geometries = np.asarray(geometries, dtype=object)
    texts = shapely.to_geojson(geometries)
    empty = shapely.is_empty(geometries)
    return [None if g is None else shapely.geometry.mapping(g) if e else json.loads(t)
            for g, t, e in zip(geometries.tolist(), np.atleast_1d(texts).tolist(), np.atleast_1d(empty).tolist())]


def _feature_collection(gdf: gpd.GeoDataFrame, properties: list[dict[str, Any]]) -> dict:
    """A GeoJSON FeatureCollection of a layer's geometries with the given properties."""
    features = [{"type": "Feature", "id": i, "properties": props, "geometry": geometry}
                for i, (geometry, props) in enumerate(zip(geojson_geometries(gdf.geometry.values), properties))]
    return {"type": "FeatureCollection", "features": features}


def _text(value: Any, default: str = "—") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return default
    return html.escape(str(value))


def _number(value: Any, unit: str = "", decimals: int = 0) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "—"
    if math.isnan(number):
        return "—"
    return f"{number:,.{decimals}f}{unit}"


def _raw(text: str) -> Element:
    """A branca element that renders ``text`` verbatim (no template parsing of it)."""
    element = Element("{{ this.data }}")
    element.data = text
    return element


def _as_template_text(text: str) -> str:
    """``text`` as Jinja prints a template made of it: line ends as ``\\n``, one trailing newline dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text[:-1] if text.endswith("\n") else text


class _VerbatimMacro(MacroElement):
    """
    A folium element whose rendered parts are placed in the page as they are.

    branca's :meth:`MacroElement.render` wraps each rendered part (header,
    html, script) in a new ``Element``, that is a new Jinja template: the
    inline GeoJSON and base64 images of a county map are parsed once more as
    templates (about a quarter of the map's render time), and a name holding
    ``{{`` or ``{%`` would be read as template code. This places each part
    verbatim, with the same text Jinja would have printed.
    Mixed in after the folium class: ``class X(folium.GeoJson, _VerbatimMacro)``.
    """

    def render(self, **kwargs) -> None:
        figure = self.get_root()
        macros = self._template.module.__dict__
        for part, target in (("header", figure.header), ("html", figure.html), ("script", figure.script)):
            macro = macros.get(part)
            if macro is not None:
                target.add_child(_raw(_as_template_text(str(macro(self, kwargs)))), name=self.get_name())
        for element in self._children.values():
            element.render(**kwargs)


class GeoJsonLayer(folium.GeoJson, _VerbatimMacro):
    """:class:`folium.GeoJson`, its data placed in the page verbatim (:class:`_VerbatimMacro`)."""


class ImageLayer(folium.raster_layers.ImageOverlay, _VerbatimMacro):
    """:class:`folium.raster_layers.ImageOverlay`, its image placed in the page verbatim (:class:`_VerbatimMacro`)."""


# --------------------------------------------------------------------------- a page that needs no network

_VENDORED = {"leaflet.js": "leaflet.js", "leaflet.css": "leaflet.css"}
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']((?:https?:)?//[^\"']+)[\"'][^>]*>\s*</script>", re.I)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref\s*=\s*[\"']((?:https?:)?//[^\"']+)[\"'][^>]*/?>", re.I)


def inline_remote_assets(page: str) -> str:
    """
    Replace remote script and stylesheet references with vendored content.

    Parameters
    ----------
    page
        HTML text.

    Returns
    -------
    str
        The page with ``<script>…</script>`` / ``<style>…</style>`` in place
        of the links.

    Raises
    ------
    ValueError
        When a referenced file is not among the vendored assets.
    """
    missing: list[str] = []

    def script(match: re.Match) -> str:
        content = _vendored_for(match.group(1), missing)
        return match.group(0) if content is None else f"<script>{_js_inline(content)}</script>"

    def link(match: re.Match) -> str:
        tag = match.group(0)
        if "stylesheet" not in tag.lower():
            return tag
        content = _vendored_for(match.group(1), missing)
        return tag if content is None else f"<style>{content}</style>"

    page = _REMOTE_SCRIPT.sub(script, page)
    page = _REMOTE_LINK.sub(link, page)
    if missing:
        raise ValueError(
            "cannot make the map self-contained: no vendored copy of "
            + ", ".join(sorted(set(missing)))
            + "; remove the element that needs it or save with offline=False"
        )
    return page


def _js_inline(content: str) -> str:
    content = re.sub(r"//# sourceMappingURL=\S+\s*$", "", content)
    return content.replace("</script", "<\\/script")


def _vendored_for(url: str, missing: list[str]) -> str | None:
    name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if name not in _VENDORED:
        missing.append(url)
        return None
    return _read_vendored(_VENDORED[name])


def _read_vendored(name: str) -> str:
    return resources.files("coverage").joinpath("data", name).read_text(encoding="utf-8")
