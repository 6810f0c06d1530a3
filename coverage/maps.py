"""Interactive coverage maps (folium/Leaflet) for meetings, self-contained for offline viewing."""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Mapping

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium.utilities import JsCode

from coverage._errors import ConfigError
from coverage._io import atomic_path
from coverage import coords
from coverage import kinds as kinds_registry
from coverage import map_images, map_layers
from coverage.map_classes import (  # noqa: F401  (maps.ShareClass / share_classes / classify_share kept)
    UNCOVERED_RAMP, ShareClass, classify_share, percent_label, pick_colours, share_classes,
)
from coverage.map_layers import inline_remote_assets  # noqa: F401  (public: coverage.maps.inline_remote_assets)
from coverage.map_layers import (
    FAIL_OUTLINE as _FAIL_OUTLINE,
    NO_DATA_COLOUR as _NO_DATA_COLOUR,
    UNCOVERED_OPACITY,
    UNIT_OPACITY,
    Headline,
    _feature_collection,
    _number,
    _raw,
    _text,
)
from coverage.config import BASEMAPS, KINDS, TIANDITU_KEY_ENV  # noqa: F401  (maps.TIANDITU_KEY_ENV kept)

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

#: decimals kept in map coordinates: points 6 (≈ 0.1 m), lines and polygons 5 (≈ 1 m)
COORD_DECIMALS = map_layers.POINT_DECIMALS
#: zoom from which unit names are shown as labels
LABEL_ZOOM = 14
#: zoom from which footpaths are drawn (below it they only clutter the county view)
STREET_ZOOM = 15
#: map panes, bottom to top (Leaflet's overlayPane, where facilities are drawn, is 400)
_PANES = (("cov-units", 350), ("cov-uncovered", 360), ("cov-isochrones", 370), ("cov-streets", 385))

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
    streets: gpd.GeoDataFrame | None = None,
    headline: Headline | None = None,
    uncovered_grid: Mapping[str, Any] | None = None,
    lang: str = "zh",
    isochrone_images: Mapping[tuple[str, float], map_images.RasterImage] | None = None,
) -> folium.Map:
    """
    Build the interactive coverage map for a study area.

    Layers are listed in a collapsed layer control, grouped by facility
    kind (the kind's sites, then its walking areas by threshold); at first
    only the units' shading, the facilities, the streets and the any-kind
    area at ``threshold_minutes`` are shown. Popups and tooltips are in
    Chinese. Geometries are simplified in metres to about a pixel at the
    zoom they are read at (:data:`coverage.map_layers.DISPLAY_TOLERANCE_M`)
    and lines rounded to 5 decimals, points to 6, so that a county map
    stays small; the uncovered elderly are one PNG image. On a GCJ-02
    basemap (``amap``) every overlay is converted from WGS-84 to GCJ-02 so
    that facilities sit on the right street.

    Parameters
    ----------
    units
        EPSG:4326 polygons (or points) with columns ``code``, ``name``,
        ``level``, ``share`` (coverage rate 0..1 of the headline measure,
        NaN = no elderly), ``elderly`` (persons), optional ``meets_target``
        and ``targets_html`` (the unit's own targets, 达标 / 未达标, see
        :func:`coverage.map_layers.unit_target_results`) for the popup.
    facilities
        EPSG:4326 points with ``name``, ``kinds`` (``;``-joined),
        ``beds``, ``floor_area_m2``, optional ``served_elderly``.
    uncovered
        Points or cell polygons with ``elderly``: persons beyond the threshold,
        drawn as one image (Web Mercator pixels) in up to four grades; hidden
        at first. Points with ``row``/``col`` and ``uncovered_grid`` are
        summed onto the population cells; other points become 100 m squares.
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
    streets
        The study's own streets (:func:`coverage.map_layers.street_layer`),
        drawn under the facilities so the map reads without any tile server.
    headline
        Figures for the headline panel (:class:`coverage.map_layers.Headline`).
    uncovered_grid
        The population grid (``demand.attrs["raster_grid"]``) that ``row``/``col`` of ``uncovered`` index.
    lang
        ``zh`` (default) or ``en`` for the headline panel.
    isochrone_images
        :func:`isochrone_images` of these isochrones, made ahead (the run
        makes them on the thread that drew the isochrones); the images not
        given are burnt here.

    Returns
    -------
    folium.Map
    """
    display_crs = display_crs_for(basemap)
    classes = share_classes(target_share)
    metric = map_layers.local_metric_crs(units if len(units) else facilities)
    tol = map_layers.DISPLAY_TOLERANCE_M
    units_d = _for_display(units, display_crs, metric, tol["units"], budget=map_layers.VERTEX_BUDGET["units"])
    facilities_d = _for_display(facilities, display_crs, metric, 0.0)
    isochrones_d = None
    if isochrones is not None and len(isochrones):
        isochrones_d, _ = _display_isochrones(isochrones, threshold_minutes, display_crs, metric)
    streets_d = _for_display(streets, display_crs, metric, 0.0) if streets is not None and len(streets) else None
    sites_d = _for_display(proposed_sites, display_crs, metric, 0.0) if proposed_sites is not None else None
    excluded_d = _for_display(excluded_candidates, display_crs, metric, 0.0) \
        if excluded_candidates is not None and len(excluded_candidates) else None
    uncovered_d = None
    if uncovered is not None and len(uncovered):
        if uncovered_grid is not None and {"row", "col"} <= set(uncovered.columns) \
                and uncovered["row"].notna().all():
            uncovered = map_images.cells_from_grid(uncovered, uncovered_grid)
        uncovered_d = _for_display(uncovered, display_crs, metric, 0.0)

    m = new_map(units_d, facilities_d, offline=offline, page_title=page_title(title, synthetic))
    for pane, z_index in _PANES:
        folium.map.CustomPane(pane, z_index=z_index, pointer_events=pane == "cov-units").add_to(m)
    _check_basemap(basemap)
    map_layers.add_basemap(m, basemap, tianditu_key)
    _add_units(m, units_d, classes, target_share)
    if streets_d is not None:
        map_layers.add_streets(m, streets_d)
    if isochrones_d is not None:
        _add_isochrones(m, isochrones_d[isochrones_d["kind"] == "any"], threshold_minutes, lang,
                        images=isochrone_images)
    uncovered_classes = _add_uncovered(m, uncovered_d, threshold_minutes, lang) if uncovered_d is not None else []
    kinds_present = _add_facilities(m, facilities_d, threshold_minutes, isochrones_d, lang,
                                    images=isochrone_images)
    if excluded_d is not None:
        _add_excluded_candidates(m, excluded_d)
    if sites_d is not None:
        _add_proposed_sites(m, sites_d)

    folium.LayerControl(collapsed=True, position="topright").add_to(m)
    root = m.get_root()
    root.html.add_child(
        _raw(map_layers.title_html(title, subtitle_lines, _credited(attribution_lines, population_method), synthetic)),
        name="coverage_title",
    )
    if headline is not None:
        root.html.add_child(_raw(map_layers.headline_html(headline, lang)), name="coverage_headline")
    root.html.add_child(
        _raw(
            map_layers.legend_html(
                classes,
                _units_layer_name(units_d) if not units_d.empty else None,
                kinds_present,
                uncovered_classes,
                has_sites=sites_d is not None and len(sites_d) > 0,
                threshold_minutes=threshold_minutes,
                has_streets=tuple(streets_d["street_class"].unique()) if streets_d is not None else (),
                outline_fail=any(c.meets_target is not None for c in classes) or "meets_target" in units_d,
                kind_labels=KIND_LABELS,
                kind_colours=KIND_COLOURS,
                lang=lang,
            )
        ),
        name="coverage_legend",
    )
    root.header.add_child(_raw(map_layers.BASE_CSS + map_layers.PAGE_CSS), name="coverage_css")
    root.html.add_child(_raw(map_layers.PAGE_JS % {"label_zoom": LABEL_ZOOM, "street_zoom": STREET_ZOOM}),
                        name="coverage_js")
    _fit(m, [units_d, facilities_d, sites_d])
    return m


def _outline_map(units: gpd.GeoDataFrame, points: gpd.GeoDataFrame, display_crs: str, metric, *, basemap: str,
                 title: str, synthetic: bool, offline: bool) -> tuple[folium.Map, gpd.GeoDataFrame]:
    """A plan map's start (years, scenarios): the page, the basemap and the units' outlines; the units as displayed."""
    tol = map_layers.DISPLAY_TOLERANCE_M
    units_d = _for_display(units, display_crs, metric, tol["units"], budget=map_layers.VERTEX_BUDGET["units"])
    m = new_map(units_d, points, offline=offline, page_title=page_title(title, synthetic))
    _check_basemap(basemap)
    map_layers.add_basemap(m, basemap, tianditu_key=None)
    if len(units_d):
        map_layers.GeoJsonLayer(_feature_collection(units_d, [{"名称": _text(n)} for n in units_d["name"]]),
                                name="行政区划 / units",
                                style_function=lambda _: {"color": "#555555", "weight": 1, "fillOpacity": 0.0},
                                tooltip=folium.GeoJsonTooltip(fields=["名称"])).add_to(m)
    return m, units_d


def _finish_page(m: folium.Map, title: str, subtitle_lines: Sequence[str], attribution_lines: Sequence[str],
                 synthetic: bool, fit_layers: Sequence[gpd.GeoDataFrame | None]) -> None:
    """A plan map's end: the layer control, the title block and page CSS, and the view fitted to ``fit_layers``."""
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    root = m.get_root()
    root.html.add_child(_raw(map_layers.title_html(title, subtitle_lines, _credited(attribution_lines, None),
                                                   synthetic)), name="coverage_title")
    root.header.add_child(_raw(map_layers.BASE_CSS + map_layers.PAGE_CSS), name="coverage_css")
    _fit(m, fit_layers)


def years_map(
    units: gpd.GeoDataFrame,
    facilities_by_year: Mapping[int, gpd.GeoDataFrame],
    *,
    shares_by_year: Mapping[int, float] | None = None,
    title: str,
    subtitle_lines: Sequence[str] = (),
    attribution_lines: Sequence[str] = (),
    synthetic: bool = False,
    basemap: str = "cartodbpositron",
    offline: bool = True,
) -> folium.Map:
    """
    Map of the facilities open in each year of a trajectory: one toggleable layer per year.

    Each year's layer holds the facilities open that year (dark), the ones
    opening that year larger in green; only the last year is shown at
    first. The layer name gives the count and, with ``shares_by_year``,
    the share of the elderly within reach of any facility.

    Parameters
    ----------
    units
        EPSG:4326 unit polygons (``name``), drawn as outlines.
    facilities_by_year
        Year → EPSG:4326 points with ``facility_id``, ``name``, ``kinds``.
    shares_by_year
        Year → share (0..1) for the layer names.
    title, subtitle_lines, attribution_lines, synthetic, basemap, offline
        As for :func:`coverage_map`.
    """
    display_crs = display_crs_for(basemap)
    years = sorted(facilities_by_year)
    every = pd.concat([facilities_by_year[y] for y in years], ignore_index=True) if years else units.iloc[:0]
    metric = map_layers.local_metric_crs(units if len(units) else every)
    m, units_d = _outline_map(units, gpd.GeoDataFrame(every, geometry="geometry", crs=4326), display_crs, metric,
                              basemap=basemap, title=title, synthetic=synthetic, offline=offline)
    previous: set = set()
    for year in years:
        layer = _for_display(facilities_by_year[year], display_crs, metric, 0.0)
        ids = layer["facility_id"].astype(str)
        new = ~ids.isin(previous) if previous else pd.Series(False, index=layer.index)
        share = (shares_by_year or {}).get(year)
        name = f"{year} 年：{len(layer)} 处设施" + (f"，新增 {int(new.sum())} 处" if new.any() else "") + \
            (f"，覆盖率 {share:.1%}" if share is not None else "")
        group = folium.FeatureGroup(name=name, show=bool(year == years[-1]))
        for part, marker in ((layer[~new.to_numpy()], folium.CircleMarker(radius=4, color="#333333", fill=True,
                                                                        fill_opacity=0.8)),
                             (layer[new.to_numpy()], folium.CircleMarker(radius=8, color="#1a9850", weight=3,
                                                                      fill=True, fill_opacity=0.4))):
            if len(part):
                props = [{"年份": str(year), "名称": _text(n), "类型": "、".join(KIND_LABELS.get(k, k) for k in _kinds_of(ks))}
                         for n, ks in zip(part["name"], part["kinds"])]
                map_layers.GeoJsonLayer(
                    _feature_collection(part, props), marker=marker,
                    tooltip=folium.GeoJsonTooltip(fields=["年份", "名称", "类型"]),
                ).add_to(group)
        group.add_to(m)
        previous = set(ids)
    _finish_page(m, title, subtitle_lines, attribution_lines, synthetic, [units_d])
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


def _for_display(gdf: gpd.GeoDataFrame, display_crs: str, metric_crs, tolerance_m: float,
                 budget: int | None = None) -> gpd.GeoDataFrame:
    """
    Copy of a layer in the display CRS, simplified (``tolerance_m`` metres) and rounded, empty rows dropped.

    With ``budget`` the tolerance doubles until the layer holds at most that many coordinates.
    """
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    raw = np.asarray(gdf.geometry.values)
    keep = ~(shapely.is_missing(raw) | shapely.is_empty(raw))
    out = gdf.loc[keep].copy()
    geoms = out.geometry
    if display_crs != "wgs84":
        geoms = coords.transform_geometries(geoms, "wgs84", display_crs)
    values = np.asarray(geoms.values)
    points = shapely.get_type_id(values) == 0
    values = values.copy()
    values[points] = shapely.transform(values[points], lambda xy: np.round(xy, map_layers.POINT_DECIMALS))
    if (~points).any() and budget is not None:
        values[~points], _ = map_layers.simplify_to_budget(values[~points], tolerance_m, metric_crs, budget)
    elif (~points).any():
        values[~points] = map_layers.simplify_display(values[~points], tolerance_m, metric_crs)
    return out.set_geometry(gpd.GeoSeries(values, index=out.index, crs="EPSG:4326"))


def _kinds_of(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [k.strip() for k in value.split(";") if k.strip() in KIND_LABELS]


def page_title(title: str, synthetic: bool) -> str:
    """The browser tab's title: the study's, labelled 合成示例数据 for the demo."""
    return f"{title}（合成示例数据）" if synthetic else title


def new_map(units: gpd.GeoDataFrame, facilities: gpd.GeoDataFrame, *, offline: bool, page_title: str) -> folium.Map:
    """
    An empty map centred on the layers, with only Leaflet itself (vendored inline when ``offline``).

    Parameters
    ----------
    units, facilities
        EPSG:4326 layers to centre on (either may be empty).
    offline
        Inline the vendored Leaflet so the page opens without a network.
    page_title
        The browser tab's title (:func:`page_title`).
    """
    bounds = _bounds([units, facilities])
    centre = [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2] if bounds else [35.0, 105.0]
    m = folium.Map(location=centre, zoom_start=12, tiles=None, control_scale=True, prefer_canvas=False)
    # Only Leaflet itself is needed: no jQuery, Bootstrap or awesome-markers
    # (markers are CircleMarkers / DivIcons, popups are GeoJsonPopups).
    if offline:
        m.default_js = []
        m.default_css = []
        m.get_root().header.add_child(_raw(f"<style>{map_layers._read_vendored('leaflet.css')}</style>"), name="leaflet_css")
        m.get_root().header.add_child(_raw(f"<script>{map_layers._js_inline(map_layers._read_vendored('leaflet.js'))}</script>"), name="leaflet")
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
    own_targets = units["targets_html"] if "targets_html" in units else None
    props = []
    for k, ((_, row), fail, level) in enumerate(zip(units.iterrows(), failing, level_labels)):
        share = row.get("share")
        share = float(share) if share is not None and pd.notna(share) else None
        cls = classify_share(share, classes)
        meets = "—" if target_share is None and "meets_target" not in units else ("否" if fail else "是")
        if share is None:
            meets = "—"
        item = {
            "名称": _text(row.get("name")),
            "代码": _text(row.get("code")),
            "级别": _text(level),
            "覆盖率": percent_label(share) if share is not None else "无老年人口",
            "60岁以上人口": _number(row.get("elderly"), " 人"),
            "是否达标": meets,
            "_fill": cls.colour if cls else _NO_DATA_COLOUR,
            "_fail": bool(fail),
        }
        if own_targets is not None:
            item["本单元指标"] = str(own_targets.iloc[k])  # HTML made by map_layers.unit_target_results
        props.append(item)

    def style(feature: dict) -> dict:
        p = feature["properties"]
        return {
            "fillColor": p["_fill"],
            "fillOpacity": UNIT_OPACITY,
            "color": _FAIL_OUTLINE if p["_fail"] else "#636363",
            "weight": 2.5 if p["_fail"] else 0.7,
            "className": "cov-unit cov-unit-fail" if p["_fail"] else "cov-unit",
        }

    fields = ["名称", "覆盖率", "60岁以上人口"]
    popup_fields = ["名称", "代码", "级别", "覆盖率", "60岁以上人口", "是否达标"]
    if own_targets is not None:
        if target_share is None and "meets_target" not in units:
            popup_fields.remove("是否达标")  # no single threshold to judge against: the unit's own targets say it
        popup_fields.append("本单元指标")
    name = _units_layer_name(units)
    group = folium.FeatureGroup(name=name, show=True)
    map_layers.GeoJsonLayer(
        _feature_collection(units, props),
        name=name,
        control=False,
        style_function=style,
        highlight_function=lambda f: {"weight": 3, "fillOpacity": 0.8},
        marker=folium.CircleMarker(radius=7, fill=True),
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[f"{f}：" for f in fields]),
        popup=folium.GeoJsonPopup(fields=popup_fields, localize=False),
        pane="cov-units",
    ).add_to(group)
    map_layers.add_unit_labels(group, units)
    group.add_to(m)


def _display_isochrones(isochrones: gpd.GeoDataFrame, threshold_minutes: float, display_crs: str,
                        metric) -> tuple[gpd.GeoDataFrame, set[tuple[str, float]]]:
    """
    The isochrones as the map draws them (display CRS, simplified, with the any-kind area), and which are exact.

    Returns
    -------
    (geopandas.GeoDataFrame, set)
        The layer, and the ``(kind, minutes)`` whose areas were kept unsimplified (drawn as images on a
        county), whose pixels therefore do not depend on ``metric``.
    """
    tol = map_layers.DISPLAY_TOLERANCE_M
    isochrones = isochrones.to_crs("EPSG:4326")
    budget = map_layers.VERTEX_BUDGET["isochrones"]
    exact: set[tuple[str, float]] = set()
    as_images = shapely.get_num_coordinates(np.asarray(isochrones.geometry.values)).sum() > 4 * budget
    if as_images:
        # a county: each kind's area at the headline threshold only (the GeoPackage has them all), drawn as
        # images (ISOCHRONE_VECTOR_MAX_COORDS), so no coarse simplification is needed
        isochrones = isochrones[pd.to_numeric(isochrones["minutes"], errors="coerce") == threshold_minutes]
    at_headline = isochrones[pd.to_numeric(isochrones["minutes"], errors="coerce") == threshold_minutes]
    if shapely.get_num_coordinates(np.asarray(at_headline.geometry.values)).sum() > ISOCHRONE_VECTOR_MAX_COORDS:
        # too many coordinates for vectors: the any-kind area is one image, and the kinds' areas burnt in one
        # colour are their union (no polygon union, no simplification before the 25 m pixels)
        any_d = _for_display(at_headline.assign(kind="any"), display_crs, metric, 0.0)
        exact.add(("any", float(threshold_minutes)))
        if as_images:
            # the kinds' areas drawn as images likewise; only the ones drawn as vectors are simplified
            large = shapely.get_num_coordinates(np.asarray(isochrones.geometry.values)) \
                > ISOCHRONE_VECTOR_MAX_COORDS
            kinds_d = pd.concat([_for_display(isochrones[large], display_crs, metric, 0.0),
                                 _for_display(isochrones[~large], display_crs, metric, tol["isochrones"])])
            small = set(zip(isochrones.loc[~large, "kind"], pd.to_numeric(isochrones.loc[~large, "minutes"])))
            exact |= {(kind, float(minutes)) for kind, minutes in
                      zip(isochrones.loc[large, "kind"], pd.to_numeric(isochrones.loc[large, "minutes"]))
                      if (kind, minutes) not in small}
        else:
            kinds_d = _for_display(isochrones, display_crs, metric, tol["isochrones"], budget=budget)
        frame = gpd.GeoDataFrame(pd.concat([any_d, kinds_d.sort_index()], ignore_index=True), crs="EPSG:4326")
    else:
        with_any = pd.concat([map_layers.union_isochrones(isochrones, threshold_minutes).to_crs("EPSG:4326"),
                              isochrones], ignore_index=True)
        frame = _for_display(gpd.GeoDataFrame(with_any, crs="EPSG:4326"), display_crs, metric,
                             tol["isochrones"], budget=None if as_images else budget)
    return frame, exact


def isochrone_images(isochrones: gpd.GeoDataFrame | None, *, threshold_minutes: float,
                     basemap: str = "cartodbpositron", run_all=None) -> dict[tuple[str, float], map_images.RasterImage]:
    """
    The isochrone layers a county map draws as images, made ahead of the map (:func:`coverage_map`'s ``isochrone_images``).

    The run makes them on the thread that drew the isochrones, while the
    main thread writes the tables; they are the images :func:`coverage_map`
    would burn itself (the same pixels: only areas kept unsimplified are
    made here). Empty when the map draws every area as vectors.
    ``run_all`` (e.g. :meth:`coverage._threads.SharedTasks.run_all`) is
    given the images to make, one callable each, and returns them in order;
    by default they are made here one after the other.

    Returns
    -------
    dict
        ``(kind, minutes)`` → :class:`coverage.map_images.RasterImage` (``kind`` ``any``: the any-kind area).
    """
    images: dict[tuple[str, float], map_images.RasterImage] = {}
    if isochrones is None or not len(isochrones):
        return images
    wgs84 = isochrones.to_crs("EPSG:4326")
    frame, exact = _display_isochrones(wgs84, threshold_minutes, display_crs_for(basemap),
                                       map_layers.local_metric_crs(wgs84))
    minutes = pd.to_numeric(frame["minutes"], errors="coerce")
    drawn, works = [], []
    for kind, mins in sorted(exact):
        part = frame[(frame["kind"] == kind) & (minutes == mins)]
        if shapely.get_num_coordinates(np.asarray(part.geometry.values)).sum() > ISOCHRONE_VECTOR_MAX_COORDS:
            drawn.append((kind, float(mins)))
            works.append(functools.partial(_isochrone_image, part, kind))
    made = run_all(works) if run_all is not None else [work() for work in works]
    images.update((key, image) for key, image in zip(drawn, made) if image is not None)
    return images


#: an area with more coordinates than this is drawn as one PNG (a county's 15-minute areas), not as vectors
ISOCHRONE_VECTOR_MAX_COORDS = 15_000


def _isochrone_image(part: gpd.GeoDataFrame, kind: str) -> map_images.RasterImage | None:
    """An area drawn as one PNG of 25 m pixels in the kind's colour."""
    return map_images.class_image(part, np.zeros(len(part), int), [KIND_COLOURS.get(kind, "#08306b")],
                                  opacity=0.3, cell_m=25.0)


def _isochrone_layer(part: gpd.GeoDataFrame, kind: str, minutes: float, label: str, *, show: bool,
                     images: Mapping[tuple[str, float], map_images.RasterImage] | None = None):
    colour = KIND_COLOURS.get(kind, "#08306b")
    weight = 2.2 if kind == "any" else 1.2  # the any-kind edge must read over the units' shading
    if shapely.get_num_coordinates(np.asarray(part.geometry.values)).sum() > ISOCHRONE_VECTOR_MAX_COORDS:
        image = (images or {}).get((kind, float(minutes)))
        if image is None:
            image = _isochrone_image(part, kind)
        if image is not None:
            return map_layers.ImageLayer(image.data_uri, bounds=image.bounds, name=label, show=show,
                                         interactive=False, zindex=2)
    return map_layers.GeoJsonLayer(
        _feature_collection(part, [{} for _ in range(len(part))]),
        name=label,
        show=show,
        style_function=lambda f, c=colour, w=weight: {
            "fillColor": c,
            "fillOpacity": 0.12,
            "color": c,
            "weight": w,
            "dashArray": "4 3",
            "className": "cov-isochrone",
        },
        interactive=False,  # clicks go through to the unit below
        pane="cov-isochrones",
    )


#: how an area's travel mode reads in a layer name (zh, en), by the start of the profile id
_MODE_WORDS = {"walk": ("步行", "walk"), "drive": ("驾车", "drive"), "ebike": ("电动车", "e-bike")}


def _area_label(kind_label: str, minutes: float, mode: str | None, lang: str) -> str:
    """'敬老院 30分钟驾车范围' / 'nursing home, 30 min drive': the kind, the minutes and the mode of an area."""
    words = next((w for key, w in _MODE_WORDS.items() if str(mode or "walk").startswith(key)), _MODE_WORDS["walk"])
    if lang == "en":
        return f"{kind_label}, {minutes:g} min {words[1]}"
    return f"{kind_label} {minutes:g}分钟{words[0]}范围"


def _add_isochrones(m: folium.Map, isochrones: gpd.GeoDataFrame, threshold_minutes: int, lang: str = "zh",
                    images: Mapping[tuple[str, float], map_images.RasterImage] | None = None) -> None:
    """The any-kind walking area at the headline threshold (per-kind areas sit with their kind's facilities)."""
    if isochrones.empty:
        return
    label = _area_label("任一类设施" if lang == "zh" else "any kind", threshold_minutes, "walk", lang)
    name = f'<span data-cov-group="任一类设施 / any kind">{label}</span>'
    _isochrone_layer(isochrones, "any", threshold_minutes, name, show=True, images=images).add_to(m)


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


def _add_uncovered(m: folium.Map, uncovered: gpd.GeoDataFrame, threshold_minutes: int,
                   lang: str = "zh") -> list[tuple[str, str]]:
    """The elderly beyond the threshold as ONE image (classes of persons per cell), hidden at first."""
    if uncovered.empty:
        return []
    elderly = pd.to_numeric(uncovered["elderly"], errors="coerce").to_numpy(dtype=float)
    breaks = _elderly_breaks(elderly)
    colours = pick_colours(UNCOVERED_RAMP, len(breaks), from_end=True)
    labels = []
    lower = 0.0
    for upper in breaks:
        labels.append(f"{_number(lower, decimals=0 if lower >= 10 or lower == 0 else 1)}–{_number(upper)} 人")
        lower = upper
    grade = _grade(elderly, breaks)
    image = map_images.class_image(uncovered, grade, colours, opacity=UNCOVERED_OPACITY)
    if image is None:
        return []
    label = (f"{threshold_minutes:g}分钟外的60岁以上老人（未覆盖）" if lang == "zh"
             else f"60+ beyond {threshold_minutes:g} min (not covered)")
    map_layers.ImageLayer(
        image.data_uri,
        bounds=image.bounds,
        name=f'<span data-cov-group="未覆盖 / not covered">{label}</span>',
        show=False,
        pixelated=True,
        interactive=False,
        className="cov-uncovered-image",
        pane="cov-uncovered",
    ).add_to(m)
    return list(zip(colours, labels))


def _add_facilities(m: folium.Map, facilities: gpd.GeoDataFrame, threshold_minutes: int,
                    isochrones: gpd.GeoDataFrame | None = None, lang: str = "zh",
                    images: Mapping[tuple[str, float], map_images.RasterImage] | None = None) -> list[str]:
    """One group per kind in the layer control: its sites (rows are sites), then its walking areas, hidden at first."""
    if facilities.empty:
        return []
    minutes = pd.to_numeric(isochrones["minutes"], errors="coerce") if isochrones is not None else None
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
        for row, i in zip(part.to_dict("records"), rows):
            props.append(
                {
                    "名称": _text(row.get("name")),
                    "类型": "、".join(KIND_LABELS[k] for k in kinds_per_row[i]),
                    "床位数": _number(row.get("beds")),
                    "建筑面积": _number(row.get("floor_area_m2"), " m²"),
                    served_label: _number(served.iloc[i], " 人"),
                    # facility crowding of coverage.access_tables (column load_<kind>), when the run has it
                    **({"服务负荷": _text(row.get(f"load_{kind}"))} if f"load_{kind}" in part else {}),
                    "_i": i,
                }
            )
        colour = KIND_COLOURS[kind]
        group_tag = f'data-cov-group="{KIND_LABELS[kind]}"'
        kind_label = kinds_registry.label(kind, lang)
        count = f"（{len(rows)}处）" if lang == "zh" else f" ({len(rows)} sites)"
        group = folium.FeatureGroup(name=f"<span {group_tag}>{kind_label}{count}</span>", show=True)
        map_layers.GeoJsonLayer(
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
                fields=["名称", "类型", "床位数", "建筑面积", served_label]
                + (["服务负荷"] if f"load_{kind}" in part else []), localize=False
            ),
        ).add_to(group)
        group.add_to(m)
        if minutes is None:
            continue
        for mins in sorted(minutes[isochrones["kind"] == kind].dropna().unique()):
            part = isochrones[(isochrones["kind"] == kind) & (minutes == mins)]
            mode = part["mode"].iloc[0] if "mode" in part and len(part) else None
            label = f"<span {group_tag}>{_area_label(kind_label, mins, mode, lang)}</span>"
            _isochrone_layer(part, kind, mins, label, show=False, images=images).add_to(m)
    return present


def _add_excluded_candidates(m: folium.Map, excluded: gpd.GeoDataFrame) -> None:
    """Grey rings for candidate sites that were ruled out, with the reason in the popup; hidden at first."""
    fields = ["名称", "候选来源", "剔除原因", "说明"]
    props = [
        {"名称": _text(row.get("name")), "候选来源": _text(row.get("source")), "剔除原因": _text(row.get("reason")),
         "说明": _text(row.get("detail"))}
        for _, row in excluded.iterrows()
    ]
    map_layers.GeoJsonLayer(
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
    map_layers.GeoJsonLayer(
        _feature_collection(sites, props),
        name=f"建议新增选址（{len(sites)}处）",
        marker=folium.Marker(),
        on_each_feature=JsCode(_SITE_ICON_JS),
        tooltip=folium.GeoJsonTooltip(fields=["序号", "建议类型", "新增覆盖60岁以上老人"]),
        popup=folium.GeoJsonPopup(fields=["序号", "建议类型", "新增覆盖60岁以上老人"], localize=False),
    ).add_to(m)




#: colours of the scenario difference layers: coverage gained / lost
SCENARIO_CHANGE_COLOURS = {"gained": "#1a9850", "lost": "#d73027"}


def scenario_map(
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    difference: gpd.GeoDataFrame,
    *,
    added_sites: gpd.GeoDataFrame | None = None,
    closed: gpd.GeoDataFrame | None = None,
    title: str,
    subtitle_lines: Sequence[str] = (),
    attribution_lines: Sequence[str] = (),
    synthetic: bool = False,
    basemap: str = "cartodbpositron",
    offline: bool = True,
    show_kind: str = "any",
) -> folium.Map:
    """
    Map of the scenarios' difference to the baseline: gained and lost coverage, sites added and closed.

    One toggleable layer per scenario, kind and change (gained green, lost
    red; the first scenario's ``show_kind`` layers shown at first), with the
    elderly of each area in its tooltip; the baseline facilities, the sites
    each scenario adds (green markers) and the facilities it closes (red).

    Parameters
    ----------
    units
        EPSG:4326 unit polygons (``name``), drawn as outlines.
    facilities
        The baseline facilities (EPSG:4326 points with ``name``, ``kinds``).
    difference
        :func:`coverage.scenarios.difference_areas` rows: ``scenario``,
        ``kind``, ``minutes``, ``change`` (``gained`` / ``lost``), ``elderly``.
    added_sites, closed
        Points with ``scenario``, ``name``, ``kinds``.
    title, subtitle_lines, attribution_lines, synthetic, basemap, offline
        As for :func:`coverage_map`.
    show_kind
        Kind whose layers are shown at first (default ``any``).
    """
    display_crs = display_crs_for(basemap)
    metric = map_layers.local_metric_crs(units if len(units) else facilities)
    facilities_d = _for_display(facilities, display_crs, metric, 0.0)
    m, units_d = _outline_map(units, facilities_d, display_crs, metric, basemap=basemap, title=title,
                              synthetic=synthetic, offline=offline)
    first = difference["scenario"].iloc[0] if len(difference) else None
    if len(difference):
        diff_d = _for_display(difference, display_crs, metric, 0.0)
        for (scenario, kind, change), part in diff_d.groupby(["scenario", "kind", "change"], sort=False):
            label = "增加覆盖 gained" if change == "gained" else "失去覆盖 lost"
            colour = SCENARIO_CHANGE_COLOURS.get(change, "#777777")
            props = [{"情景": _text(scenario), "类型": KIND_LABELS.get(kind, _text(kind)), "变化": label,
                      "老年人": _number(e, " 人")} for e in part["elderly"]]
            map_layers.GeoJsonLayer(
                _feature_collection(part, props),
                name=f"{scenario}：{KIND_LABELS.get(kind, kind)} {label}（{part['elderly'].sum():,.0f} 人）",
                show=bool(scenario == first and kind == show_kind),
                style_function=lambda _, c=colour: {"color": c, "weight": 0.5, "fillColor": c, "fillOpacity": 0.55},
                marker=folium.CircleMarker(radius=3, fill=True),
                tooltip=folium.GeoJsonTooltip(fields=["情景", "类型", "变化", "老年人"]),
            ).add_to(m)
    if len(facilities_d):
        props = [{"名称": _text(n), "类型": "、".join(KIND_LABELS.get(k, k) for k in _kinds_of(ks))}
                 for n, ks in zip(facilities_d["name"], facilities_d["kinds"])]
        map_layers.GeoJsonLayer(_feature_collection(facilities_d, props),
                                name=f"现有设施（{len(facilities_d)}处）",
                                marker=folium.CircleMarker(radius=4, color="#333333", fill=True, fill_opacity=0.8),
                                tooltip=folium.GeoJsonTooltip(fields=["名称", "类型"])).add_to(m)
    for layer, colour, word in ((added_sites, "#1a9850", "新增"), (closed, "#d73027", "关闭")):
        if layer is None or not len(layer):
            continue
        layer_d = _for_display(layer, display_crs, metric, 0.0)
        for scenario, part in layer_d.groupby("scenario", sort=False):
            props = [{"情景": _text(scenario), "名称": _text(n), "变化": word} for n in part["name"]]
            map_layers.GeoJsonLayer(
                _feature_collection(part, props), name=f"{scenario}：{word}设施（{len(part)}处）",
                show=bool(scenario == first),
                marker=folium.CircleMarker(radius=8, color=colour, weight=3, fill=True, fill_opacity=0.3),
                tooltip=folium.GeoJsonTooltip(fields=["情景", "名称", "变化"]),
            ).add_to(m)
    _finish_page(m, title, subtitle_lines, attribution_lines, synthetic, [units_d, facilities_d])
    return m
