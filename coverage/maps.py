"""Interactive coverage maps (folium/Leaflet) for meetings, self-contained for offline viewing."""

from __future__ import annotations

import html
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element
from folium.utilities import JsCode

from coverage._errors import ConfigError
from coverage._io import atomic_path
from coverage import coords
from coverage import kinds as kinds_registry
from coverage.config import BASEMAPS, KINDS, TIANDITU_KEY_ENV

#: Chinese display label of each facility kind (from the registry, coverage/kinds.yaml)
KIND_LABELS: Mapping[str, str] = kinds_registry.registry().labels("zh")

#: marker / isochrone colour of each facility kind (from the registry)
KIND_COLOURS: Mapping[str, str] = kinds_registry.registry().colours()

# BASEMAPS (the names coverage_map accepts) is defined in coverage.config, which checks the study file's
# outputs.basemap when it is read; it is imported above so maps.BASEMAPS keeps working

#: credit of the road network (every study walks on OpenStreetMap)
OSM_ATTRIBUTION = "道路 / roads: © OpenStreetMap contributors (ODbL)"
#: credit of the population rasters, only when a raster was used
WORLDPOP_ATTRIBUTION = "人口 / population: WorldPop (CC BY 4.0)"
#: what the population is when no raster was used
CENSUS_ATTRIBUTION = ("人口 / population: 普查数，按住宅建筑（OSM）或均匀分布 / census totals spread over "
                      "residential buildings (OSM) or evenly, no raster")


def data_attribution_lines(population_method: str = "raster") -> tuple[str, ...]:
    """
    Data credits for a map or figure: OpenStreetMap always, WorldPop only when a raster gave the population.

    Parameters
    ----------
    population_method
        How the demand was made, as :func:`coverage.pipeline.population_method`
        says it: ``raster``, ``raster, calibrated to census`` or ``census
        totals over buildings``/``uniform``.

    Returns
    -------
    tuple of str
        Lines for ``attribution_lines``.
    """
    if str(population_method).startswith("raster"):
        return (OSM_ATTRIBUTION, WORLDPOP_ATTRIBUTION)
    return (OSM_ATTRIBUTION, CENSUS_ATTRIBUTION)


#: attribution lines used when the caller passes none (a raster study)
DEFAULT_ATTRIBUTION_LINES: tuple[str, ...] = data_attribution_lines("raster")

#: display label of each administrative level
LEVEL_LABELS: dict[str, str] = {"county": "县(区)", "town": "乡镇(街道)", "village": "村(社区)"}

#: display tolerance for geometry simplification, degrees (≈ 1 m)
SIMPLIFY_TOLERANCE_DEG = 1e-5
#: decimals kept in map coordinates (6 decimals ≈ 0.1 m)
COORD_DECIMALS = 6
#: above this many uncovered cells, cells of the same grade are merged (keeps a county map small)
MAX_UNCOVERED_FEATURES = 3000

_NO_DATA_COLOUR = "#bdbdbd"
_FAIL_OUTLINE = "#d7191c"
_BELOW_RAMP = ("#b2182b", "#d6604d", "#f4a582", "#fddbc7")  # dark → light
_ABOVE_RAMP = ("#a6dba0", "#5aae61", "#1b7837", "#00441b")  # light → dark
_PLAIN_RAMP = ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")
_UNCOVERED_RAMP = ("#dadaeb", "#bcbddc", "#9e9ac8", "#756bb1", "#54278f")

_VENDORED = {"leaflet.js": "leaflet.js", "leaflet.css": "leaflet.css"}
_REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']((?:https?:)?//[^\"']+)[\"'][^>]*>\s*</script>", re.I)
_REMOTE_LINK = re.compile(r"<link[^>]*\bhref\s*=\s*[\"']((?:https?:)?//[^\"']+)[\"'][^>]*/?>", re.I)


@dataclass(frozen=True)
class ShareClass:
    """
    One class of the coverage-rate choropleth.

    Attributes
    ----------
    lower, upper
        Bounds as shares (0..1); the class holds ``lower <= share < upper``,
        or ``lower <= share <= upper`` when ``closed`` (the last class).
    colour
        Fill colour (hex).
    label
        Legend text, e.g. ``"75%–90%"``.
    meets_target
        Whether every share in the class meets the target (None when no target).
    """

    lower: float
    upper: float
    colour: str
    label: str
    closed: bool = False
    meets_target: bool | None = None

    def contains(self, share: float) -> bool:
        """Whether ``share`` falls in this class."""
        return self.lower <= share <= self.upper if self.closed else self.lower <= share < self.upper


def display_crs_for(basemap: str) -> str:
    """
    The coordinate system a basemap's tiles are drawn in.

    Parameters
    ----------
    basemap
        One of :data:`BASEMAPS`.

    Returns
    -------
    str
        ``"gcj02"`` for Amap (高德) tiles, ``"wgs84"`` for OpenStreetMap,
        CARTO and Tianditu (CGCS2000 ≈ WGS-84).
    """
    _check_basemap(basemap)
    return "gcj02" if basemap == "amap" else "wgs84"


def share_classes(target_share: float | None = None) -> list[ShareClass]:
    """
    Classes of the coverage-rate choropleth, with the target as a class boundary.

    Parameters
    ----------
    target_share
        Policy target as a share in (0, 1], e.g. 0.9; None for plain quartiles.

    Returns
    -------
    list of ShareClass
        Ordered from 0 to 100 %. With a target, classes below it are shaded
        red→orange and classes at or above it green, so "meets the target" is
        a colour change on the map and a line in the legend. A target of 1
        gives a class of its own for exactly 100 %.
    """
    base = [0.0, 0.25, 0.5, 0.75, 1.0]
    if target_share is None:
        return _classes_from_breaks(base, None)
    target = float(target_share)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target_share must be a share in (0, 1], e.g. 0.9 for 90 %; got {target_share!r}")
    if target == 1.0:
        return _classes_from_breaks(base, 1.0)
    breaks = sorted({b for b in base if b in (0.0, 1.0) or abs(b - target) >= 0.05} | {target})
    return _classes_from_breaks(breaks, target)


def coverage_map(
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    uncovered: gpd.GeoDataFrame | None = None,
    isochrones: gpd.GeoDataFrame | None = None,
    proposed_sites: gpd.GeoDataFrame | None = None,
    excluded_candidates: gpd.GeoDataFrame | None = None,
    title: str,
    subtitle_lines: Sequence[str] = (),
    attribution_lines: Sequence[str] = (),
    synthetic: bool = False,
    basemap: str = "cartodbpositron",
    target_share: float | None = None,
    offline: bool = True,
    tianditu_key: str | None = None,
    threshold_minutes: int = 15,
    population_method: str | None = None,
) -> folium.Map:
    """
    Build the interactive coverage map for a study area.

    Every layer is a GeoJSON layer listed in the layer control; popups and
    tooltips are in Chinese. Geometries are simplified for display (about
    1 m) and coordinates rounded to 6 decimals so that a county map stays
    small. On a GCJ-02 basemap (``amap``) every overlay is converted from
    WGS-84 to GCJ-02 so that facilities sit on the right street.

    Parameters
    ----------
    units
        EPSG:4326 polygons (or points) with columns ``code``, ``name``,
        ``level``, ``share`` (coverage rate 0..1 of the headline measure,
        NaN = no elderly), ``elderly`` (persons), optional ``meets_target``.
    facilities
        EPSG:4326 points with ``name``, ``kinds`` (``;``-joined),
        ``beds``, ``floor_area_m2``, optional ``served_elderly``.
    uncovered
        Points or cell polygons with ``elderly``: persons beyond the threshold,
        shaded in up to four grades. More than :data:`MAX_UNCOVERED_FEATURES`
        cells are merged per grade (the tooltip then gives the grade's range).
    isochrones
        Polygons with ``kind`` and ``minutes``; one layer per kind and
        minutes, only ``threshold_minutes`` shown at first.
    proposed_sites
        Points with ``rank``, ``kind``, ``gain`` (persons newly covered).
    excluded_candidates
        Candidate sites left out before optimising, with ``name``,
        ``source``, ``reason``, ``detail`` (see
        :func:`coverage.exclusions.screen_candidates`): a layer, hidden at
        first, so a planner can see why a building on the list was not used.
    title
        Study title, shown in the title block and as the page title.
    subtitle_lines
        Lines under the title: data date, walking speed, threshold, ….
    attribution_lines
        Data sources and licences; :data:`DEFAULT_ATTRIBUTION_LINES` if empty.
    synthetic
        Label the map prominently as synthetic demo data (合成示例数据).
    basemap
        One of :data:`BASEMAPS`.
    target_share
        Policy target (0..1) made a class boundary of the choropleth; units
        below it (or with ``meets_target`` False) are outlined in red.
    offline
        Inline Leaflet's JS and CSS (vendored in ``coverage/data``) so the
        HTML needs no network except for basemap tiles.
    tianditu_key
        Tianditu (天地图) token; defaults to the ``TIANDITU_KEY`` environment
        variable. Note that the token ends up in the HTML file.
    threshold_minutes
        Walking-time threshold of the headline measure (labels, default layer).
    population_method
        How the population was made (:func:`coverage.pipeline.population_method`);
        when it was not a raster, WorldPop is not credited (lines naming it are
        dropped) and the census source is named instead. None: lines as given.

    Returns
    -------
    folium.Map
    """
    display_crs = display_crs_for(basemap)
    classes = share_classes(target_share)
    units_d = _for_display(units, display_crs)
    facilities_d = _for_display(facilities, display_crs)
    uncovered_d = _for_display(uncovered, display_crs) if uncovered is not None else None
    isochrones_d = _for_display(isochrones, display_crs) if isochrones is not None else None
    sites_d = _for_display(proposed_sites, display_crs) if proposed_sites is not None else None
    excluded_d = _for_display(excluded_candidates, display_crs) \
        if excluded_candidates is not None and len(excluded_candidates) else None

    m = _new_map(units_d, facilities_d, offline=offline, page_title=_page_title(title, synthetic))
    _add_basemap(m, basemap, tianditu_key)
    _add_units(m, units_d, classes, target_share)
    if isochrones_d is not None:
        _add_isochrones(m, isochrones_d, threshold_minutes)
    uncovered_classes = _add_uncovered(m, uncovered_d, threshold_minutes) if uncovered_d is not None else []
    kinds_present = _add_facilities(m, facilities_d, threshold_minutes)
    if excluded_d is not None:
        _add_excluded_candidates(m, excluded_d)
    if sites_d is not None:
        _add_proposed_sites(m, sites_d)

    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    root = m.get_root()
    root.html.add_child(
        _raw(_title_html(title, subtitle_lines, _credited(attribution_lines, population_method), synthetic)),
        name="coverage_title",
    )
    root.html.add_child(
        _raw(
            _legend_html(
                classes,
                units_d,
                kinds_present,
                uncovered_classes,
                has_sites=sites_d is not None and len(sites_d) > 0,
                threshold_minutes=threshold_minutes,
            )
        ),
        name="coverage_legend",
    )
    root.header.add_child(_raw(_PAGE_CSS), name="coverage_css")
    _fit(m, [units_d, facilities_d, uncovered_d, sites_d])
    return m


def save_map(m: folium.Map, path: str | os.PathLike, *, offline: bool = True) -> Path:
    """
    Write a map to an HTML file atomically (temporary file, then rename).

    Parameters
    ----------
    m
        A map from :func:`coverage_map` (or any folium map).
    path
        Target ``.html`` file; parent folders are created.
    offline
        Replace every ``<script src="http…">`` and stylesheet
        ``<link href="http…">`` with the vendored file's content, so the page
        opens with no network (basemap tiles excepted). A reference to a
        library that is not vendored raises ``ValueError`` rather than
        silently producing a page that needs the network.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = m.get_root().render()
    if offline:
        text = inline_remote_assets(text)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return path


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


# --------------------------------------------------------------------------- helpers


def _credited(lines: Sequence[str], population_method: str | None) -> tuple[str, ...]:
    """The attribution lines to show: WorldPop credited only when a raster gave the population."""
    if population_method is None:
        return tuple(lines or DEFAULT_ATTRIBUTION_LINES)
    if not lines:
        return data_attribution_lines(population_method)
    if str(population_method).startswith("raster"):
        return tuple(lines)
    kept = [line for line in lines if "worldpop" not in line.lower()]
    return tuple([*kept, CENSUS_ATTRIBUTION] if CENSUS_ATTRIBUTION not in kept else kept)


def _check_basemap(basemap: str) -> None:
    if basemap not in BASEMAPS:
        raise ConfigError(f"outputs.basemap: unknown basemap {basemap!r}; use one of {', '.join(BASEMAPS)} "
                          "/ 底图名称有误")


def _classes_from_breaks(breaks: list[float], target: float | None) -> list[ShareClass]:
    intervals = [(lo, hi) for lo, hi in zip(breaks[:-1], breaks[1:])]
    if target == 1.0:
        intervals.append((1.0, 1.0))
    if target is None:
        colours = _pick(_PLAIN_RAMP, len(intervals), from_end=False, spread=True)
    else:
        below = [iv for iv in intervals if iv[0] < target]
        above = [iv for iv in intervals if iv[0] >= target]
        colours = _pick(_BELOW_RAMP, len(below), from_end=False) + _pick(_ABOVE_RAMP, len(above), from_end=True)
    classes = []
    for i, ((lo, hi), colour) in enumerate(zip(intervals, colours)):
        last = i == len(intervals) - 1
        meets = None if target is None else lo >= target
        if lo == hi:
            label = f"{_pct(lo)}"
        elif last:
            label = f"{_pct(lo)}–{_pct(hi)}"
        else:
            label = f"{_pct(lo)}–<{_pct(hi)}"
        if meets and lo == target:
            label += "（达标）"
        classes.append(ShareClass(lo, hi, colour, label, closed=last, meets_target=meets))
    return classes


def _pick(ramp: Sequence[str], n: int, *, from_end: bool, spread: bool = False) -> list[str]:
    """n colours from a ramp: the n nearest one end, or spread over it."""
    if n <= 0:
        return []
    top = len(ramp) - 1
    if spread:
        idx = np.linspace(0, top, n)
    elif from_end:
        idx = np.linspace(1, top, n) if n <= top else np.linspace(0, top, n)
    else:
        idx = np.linspace(0, min(top, n - 1), n)
    return [ramp[int(round(i))] for i in idx]


def _pct(share: float) -> str:
    value = share * 100
    return f"{value:.0f}%" if abs(value - round(value)) < 1e-9 else f"{value:.1f}%"


def classify_share(share: Any, classes: Sequence[ShareClass]) -> ShareClass | None:
    """
    The class a coverage rate falls in.

    Parameters
    ----------
    share
        Coverage rate 0..1 (clipped); None or NaN for units without elderly.
    classes
        From :func:`share_classes`.

    Returns
    -------
    ShareClass or None
        None when there is no rate.
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return None
    share = min(max(float(share), 0.0), 1.0)
    for cls in classes:
        if cls.contains(share):
            return cls
    return classes[-1]


def _for_display(gdf: gpd.GeoDataFrame, display_crs: str) -> gpd.GeoDataFrame:
    """Copy of a layer in the display CRS, simplified (~1 m) and rounded, empty rows dropped."""
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
    out = gdf.loc[keep].copy()
    geoms = out.geometry
    if display_crs != "wgs84":
        geoms = coords.transform_geometries(geoms, "wgs84", display_crs)
    values = np.asarray(geoms.values)
    values = shapely.simplify(values, SIMPLIFY_TOLERANCE_DEG, preserve_topology=True)
    values = shapely.transform(values, lambda xy: np.round(xy, COORD_DECIMALS))
    return out.set_geometry(gpd.GeoSeries(values, index=out.index, crs="EPSG:4326"))


def _feature_collection(gdf: gpd.GeoDataFrame, properties: list[dict[str, Any]]) -> dict:
    features = []
    for i, (geom, props) in enumerate(zip(gdf.geometry.values, properties)):
        features.append(
            {"type": "Feature", "id": i, "properties": props, "geometry": shapely.geometry.mapping(geom)}
        )
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


def _kinds_of(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [k.strip() for k in value.split(";") if k.strip() in KIND_LABELS]


def _raw(text: str) -> Element:
    """A branca element that renders ``text`` verbatim (no template parsing of it)."""
    element = Element("{{ this.data }}")
    element.data = text
    return element


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


def _page_title(title: str, synthetic: bool) -> str:
    return f"{title}（合成示例数据）" if synthetic else title


def _new_map(units: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *, offline: bool, page_title: str) -> folium.Map:
    bounds = _bounds([units, facilities])
    centre = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [35.0, 105.0]
    m = folium.Map(location=centre, zoom_start=12, tiles=None, control_scale=True, prefer_canvas=False)
    # Only Leaflet itself is needed: no jQuery, Bootstrap or awesome-markers
    # (markers are CircleMarkers / DivIcons, popups are GeoJsonPopups).
    if offline:
        m.default_js = []
        m.default_css = []
        m.get_root().header.add_child(_raw(f"<style>{_read_vendored('leaflet.css')}</style>"), name="leaflet_css")
        m.get_root().header.add_child(_raw(f"<script>{_js_inline(_read_vendored('leaflet.js'))}</script>"), name="leaflet")
    else:
        m.default_js = [item for item in m.default_js if item[0] == "leaflet"]
        m.default_css = [item for item in m.default_css if item[0] == "leaflet_css"]
    m.get_root().title = html.escape(page_title)
    return m


def _bounds(layers: Sequence[gpd.GeoDataFrame | None]) -> tuple[float, float, float, float] | None:
    boxes = [layer.total_bounds for layer in layers if layer is not None and len(layer)]
    boxes = [b for b in boxes if np.all(np.isfinite(b))]
    if not boxes:
        return None
    arr = np.vstack(boxes)
    return float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 2].max()), float(arr[:, 3].max())


def _fit(m: folium.Map, layers: Sequence[gpd.GeoDataFrame | None]) -> None:
    bounds = _bounds(layers)
    if bounds is None:
        return
    west, south, east, north = (round(v, COORD_DECIMALS) for v in bounds)
    m.fit_bounds([[south, west], [north, east]], padding_top_left=(40, 40), padding_bottom_right=(300, 40))


def _add_basemap(m: folium.Map, basemap: str, tianditu_key: str | None) -> None:
    _check_basemap(basemap)
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


def _units_layer_name(units: gpd.GeoDataFrame) -> str:
    levels = set(units["level"].dropna().astype(str)) if "level" in units else set()
    if len(levels) == 1:
        return f"{LEVEL_LABELS.get(levels.pop(), '单元')}覆盖率"
    return "各单元覆盖率"


def _failing(units: gpd.GeoDataFrame, target_share: float | None) -> pd.Series:
    if "meets_target" in units:
        meets = units["meets_target"].astype("boolean")
        return (meets == False).fillna(False).astype(bool)  # noqa: E712  (NA = not judged)
    if target_share is None:
        return pd.Series(False, index=units.index)
    share = pd.to_numeric(units["share"], errors="coerce")
    return (share < target_share).fillna(False).astype(bool)


def _add_units(m: folium.Map, units: gpd.GeoDataFrame, classes: list[ShareClass], target_share: float | None) -> None:
    if units.empty:
        return
    failing = _failing(units, target_share)
    order = np.argsort(failing.to_numpy(), kind="stable")  # failing units drawn last: red outline on top
    units = units.iloc[order]
    failing = failing.iloc[order]
    level_labels = units["level"].map(LEVEL_LABELS) if "level" in units else pd.Series("—", index=units.index)
    props = []
    for (_, row), fail, level in zip(units.iterrows(), failing, level_labels):
        share = row.get("share")
        share = float(share) if share is not None and pd.notna(share) else None
        cls = classify_share(share, classes)
        meets = "—" if target_share is None and "meets_target" not in units else ("否" if fail else "是")
        if share is None:
            meets = "—"
        props.append(
            {
                "名称": _text(row.get("name")),
                "代码": _text(row.get("code")),
                "级别": _text(level),
                "覆盖率": _pct(share) if share is not None else "无老年人口",
                "60岁以上人口": _number(row.get("elderly"), " 人"),
                "是否达标": meets,
                "_fill": cls.colour if cls else _NO_DATA_COLOUR,
                "_fail": bool(fail),
            }
        )

    def style(feature: dict) -> dict:
        p = feature["properties"]
        return {
            "fillColor": p["_fill"],
            "fillOpacity": 0.6,
            "color": _FAIL_OUTLINE if p["_fail"] else "#636363",
            "weight": 2.5 if p["_fail"] else 0.7,
            "className": "cov-unit cov-unit-fail" if p["_fail"] else "cov-unit",
        }

    fields = ["名称", "覆盖率", "60岁以上人口"]
    folium.GeoJson(
        _feature_collection(units, props),
        name=_units_layer_name(units),
        style_function=style,
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.8},
        marker=folium.CircleMarker(radius=7, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[f"{f}：" for f in fields]),
        popup=folium.GeoJsonPopup(
            fields=["名称", "代码", "级别", "覆盖率", "60岁以上人口", "是否达标"], localize=False
        ),
    ).add_to(m)


def _add_isochrones(m: folium.Map, isochrones: gpd.GeoDataFrame, threshold_minutes: int) -> None:
    if isochrones.empty:
        return
    minutes = pd.to_numeric(isochrones["minutes"], errors="coerce")
    for kind in [k for k in KINDS if k in set(isochrones["kind"])]:
        for mins in sorted(minutes[isochrones["kind"] == kind].dropna().unique()):
            part = isochrones[(isochrones["kind"] == kind) & (minutes == mins)]
            label = f"{KIND_LABELS[kind]} {mins:g}分钟步行范围"
            colour = KIND_COLOURS[kind]
            props = [{"范围": label} for _ in range(len(part))]
            folium.GeoJson(
                _feature_collection(part, props),
                name=label,
                show=bool(mins == threshold_minutes),
                style_function=lambda f, c=colour: {
                    "fillColor": c,
                    "fillOpacity": 0.12,
                    "color": c,
                    "weight": 1.2,
                    "dashArray": "4 3",
                    "className": "cov-isochrone",
                },
                tooltip=folium.GeoJsonTooltip(fields=["范围"], labels=False),
            ).add_to(m)


def _elderly_breaks(values: np.ndarray) -> list[float]:
    """Upper bounds of up to four classes of persons, rounded to 2 significant digits."""
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return [1.0]
    qs = np.quantile(values, [0.5, 0.8, 0.95])
    nice = [float(f"{q:.2g}") for q in qs if q > 0]
    upper = float(values.max())
    breaks = sorted({b for b in nice if 0 < b < upper}) + [upper]
    return breaks


def _grade(values: np.ndarray, breaks: Sequence[float]) -> np.ndarray:
    """Class index (0-based) of each value given ascending upper bounds."""
    idx = np.searchsorted(np.asarray(breaks), np.nan_to_num(values, nan=0.0), side="left")
    return np.minimum(idx, len(breaks) - 1)


def _dissolve_cells(cells: gpd.GeoDataFrame, grade: np.ndarray) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Merge raster cells of the same grade into one (multi)polygon each: a county has tens of thousands."""
    merged, grades = [], []
    for g in np.unique(grade):
        geoms = np.asarray(cells.geometry.values)[grade == g]
        try:
            union = shapely.coverage_union_all(geoms)
        except shapely.errors.GEOSException:
            union = shapely.union_all(geoms)
        merged.append(union)
        grades.append(int(g))
    return gpd.GeoDataFrame(geometry=merged, crs=cells.crs), np.asarray(grades)


def _add_uncovered(m: folium.Map, uncovered: gpd.GeoDataFrame, threshold_minutes: int) -> list[tuple[str, str]]:
    if uncovered.empty:
        return []
    elderly = pd.to_numeric(uncovered["elderly"], errors="coerce").to_numpy(dtype=float)
    breaks = _elderly_breaks(elderly)
    colours = _pick(_UNCOVERED_RAMP, len(breaks), from_end=True)
    labels = []
    lower = 0.0
    for upper in breaks:
        labels.append(f"{_number(lower, decimals=0 if lower >= 10 or lower == 0 else 1)}–{_number(upper)} 人")
        lower = upper
    grade = _grade(elderly, breaks)
    polygons = uncovered.geometry.geom_type.isin(["Polygon", "MultiPolygon"]).to_numpy()
    if polygons.all() and len(uncovered) > MAX_UNCOVERED_FEATURES:
        shown, grade = _dissolve_cells(uncovered, grade)
        values = [f"{labels[g]}（每格）" for g in grade]
    else:
        shown = uncovered
        values = [_number(v, " 人", 1 if 0 < v < 10 else 0) for v in elderly]
    props = [{"n": value, "c": int(g)} for value, g in zip(values, grade)]

    def style(feature: dict) -> dict:
        idx = feature["properties"]["c"]
        return {
            "fillColor": colours[idx],
            "fillOpacity": 0.75,
            "color": colours[idx],
            "weight": 0,
            "radius": 3 + 1.5 * idx,
            "className": "cov-uncovered",
        }

    folium.GeoJson(
        _feature_collection(shown, props),
        name=f"{threshold_minutes:g}分钟外的60岁以上老人（未覆盖）",
        style_function=style,
        marker=folium.CircleMarker(radius=3, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=["n"], aliases=["未覆盖60岁以上老人："]),
    ).add_to(m)
    return list(zip(colours, labels))


def _add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame, threshold_minutes: int) -> list[str]:
    if facilities.empty:
        return []
    kinds_per_row = [_kinds_of(v) for v in facilities["kinds"]] if "kinds" in facilities else [[]] * len(facilities)
    served = facilities["served_elderly"] if "served_elderly" in facilities else pd.Series(np.nan, index=facilities.index)
    served_label = f"{threshold_minutes:g}分钟内服务60岁以上老人"
    present = []
    for kind in KINDS:
        rows = [i for i, ks in enumerate(kinds_per_row) if kind in ks]
        if not rows:
            continue
        present.append(kind)
        part = facilities.iloc[rows]
        props = []
        for (_, row), i in zip(part.iterrows(), rows):
            props.append(
                {
                    "名称": _text(row.get("name")),
                    "类型": "、".join(KIND_LABELS[k] for k in kinds_per_row[i]),
                    "床位数": _number(row.get("beds")),
                    "建筑面积": _number(row.get("floor_area_m2"), " m²"),
                    served_label: _number(served.iloc[i], " 人"),
                    "_i": i,
                }
            )
        colour = KIND_COLOURS[kind]
        group = folium.FeatureGroup(name=f"{KIND_LABELS[kind]}（{len(rows)}处）", show=True)
        folium.GeoJson(
            _feature_collection(part, props),
            name=KIND_LABELS[kind],
            control=False,
            style_function=lambda f, c=colour, k=kind: {
                "fillColor": c,
                "fillOpacity": 0.95,
                "color": "#ffffff",
                "weight": 1.5,
                "radius": 7,
                "className": f"cov-facility cov-kind-{k} cov-facility-{f['properties']['_i']}",
            },
            marker=folium.CircleMarker(radius=7, fill=True),
            tooltip=folium.GeoJsonTooltip(fields=["名称"], labels=False),
            popup=folium.GeoJsonPopup(
                fields=["名称", "类型", "床位数", "建筑面积", served_label], localize=False
            ),
        ).add_to(group)
        group.add_to(m)
    return present


def _add_excluded_candidates(m: folium.Map, excluded: gpd.GeoDataFrame) -> None:
    """Grey rings for candidate sites that were ruled out, with the reason in the popup; hidden at first."""
    fields = ["名称", "候选来源", "剔除原因", "说明"]
    props = [
        {"名称": _text(row.get("name")), "候选来源": _text(row.get("source")), "剔除原因": _text(row.get("reason")),
         "说明": _text(row.get("detail"))}
        for _, row in excluded.iterrows()
    ]
    folium.GeoJson(
        _feature_collection(excluded, props),
        name=f"剔除的候选点（{len(excluded)}处）",
        show=False,
        style_function=lambda f: {"fillColor": "#ffffff", "fillOpacity": 0.6, "color": "#666666", "weight": 2,
                                  "radius": 6, "className": "cov-excluded"},
        marker=folium.CircleMarker(radius=6, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=["名称", "剔除原因"]),
        popup=folium.GeoJsonPopup(fields=fields, localize=False),
    ).add_to(m)


_SITE_ICON_JS = """function(feature, layer) {
    var html = '<div class="cov-site-icon">' + feature.properties['序号'] + '</div>';
    layer.setIcon(L.divIcon({className: 'cov-site', html: html, iconSize: [26, 26], iconAnchor: [13, 13]}));
}"""


def _add_proposed_sites(m: folium.Map, sites: gpd.GeoDataFrame) -> None:
    if sites.empty:
        return
    sites = sites.sort_values("rank") if "rank" in sites else sites
    props = []
    for n, (_, row) in enumerate(sites.iterrows(), start=1):
        rank = row.get("rank", n)
        kind = row.get("kind")
        props.append(
            {
                "序号": _number(rank),
                "建议类型": KIND_LABELS.get(kind, _text(kind)),
                "新增覆盖60岁以上老人": _number(row.get("gain"), " 人"),
            }
        )
    folium.GeoJson(
        _feature_collection(sites, props),
        name=f"建议新增选址（{len(sites)}处）",
        marker=folium.Marker(),
        on_each_feature=JsCode(_SITE_ICON_JS),
        tooltip=folium.GeoJsonTooltip(fields=["序号", "建议类型", "新增覆盖60岁以上老人"]),
        popup=folium.GeoJsonPopup(fields=["序号", "建议类型", "新增覆盖60岁以上老人"], localize=False),
    ).add_to(m)


_PAGE_CSS = """<style>
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
.cov-site-icon { width: 24px; height: 24px; border-radius: 50%; background: #000; color: #fff; border: 2px solid #ffd400;
  font: bold 13px/24px sans-serif; text-align: center; box-sizing: content-box; margin: -1px; }
.leaflet-control-layers { font: 12px/1.4 "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; max-width: 280px; }
.leaflet-popup-content, .leaflet-tooltip { font: 13px/1.45 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; }
.leaflet-popup-content table, .leaflet-tooltip table { font-size: 13px; border-collapse: collapse; }
.leaflet-popup-content th { text-align: left; color: #555; font-weight: normal; white-space: nowrap; padding-right: 10px; }
.leaflet-popup-content td { font-weight: bold; }
</style>"""


def _title_html(title: str, subtitle_lines: Sequence[str], attribution_lines: Sequence[str], synthetic: bool) -> str:
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


def _legend_html(
    classes: Sequence[ShareClass],
    units: gpd.GeoDataFrame,
    kinds_present: Sequence[str],
    uncovered_classes: Sequence[tuple[str, str]],
    *,
    has_sites: bool,
    threshold_minutes: int,
) -> str:
    parts = ['<div class="cov-legend" id="coverage-legend">']
    if not units.empty:
        parts.append(f"<h4>{_units_layer_name(units)}（{threshold_minutes:g}分钟步行）</h4>")
        for cls in reversed(classes):
            parts.append(f'<div><span class="sw" style="background:{cls.colour}"></span>{html.escape(cls.label)}</div>')
        parts.append(f'<div><span class="sw" style="background:{_NO_DATA_COLOUR}"></span>无老年人口</div>')
        if any(c.meets_target is not None for c in classes) or "meets_target" in units:
            parts.append(
                f'<div><span class="sw" style="background:#fff;border:2.5px solid {_FAIL_OUTLINE}"></span>红框：未达标</div>'
            )
    if kinds_present:
        parts.append("<h4>养老服务设施</h4>")
        for kind in kinds_present:
            parts.append(f'<div><span class="dot" style="background:{KIND_COLOURS[kind]}"></span>{KIND_LABELS[kind]}</div>')
    if uncovered_classes:
        parts.append(f"<h4>{threshold_minutes:g}分钟外的60岁以上老人</h4>")
        for colour, label in reversed(list(uncovered_classes)):
            parts.append(f'<div><span class="dot" style="background:{colour}"></span>{html.escape(label)}</div>')
    if has_sites:
        parts.append(
            '<h4>建议新增选址</h4><div><span class="dot" style="background:#000;border-color:#ffd400"></span>'
            "按序号优先</div>"
        )
    parts.append("</div>")
    return "".join(parts)
