"""Tests of the interactive coverage map, rendered in a real headless Chromium."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, Polygon, box

from coverage import coords, map_layers, maps
from coverage.config import KINDS

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT_DIR = ROOT / "outputs" / "test_maps"
#: the README's picture of the demo map is refreshed by the demo browser test
DOCS_IMAGES = ROOT / "docs" / "images"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

LON0, LAT0 = 113.9, 30.95
#: a facility of one kind only, near the middle of the area, clicked in the browser test
CLICK_NAME = "城关镇日间照料中心"
CLICK_LONLAT = (LON0 + 0.021, LAT0 + 0.019)
#: tile hosts of the four basemaps: their image loads fail without a network, which is expected
TILE_HOSTS = ("openstreetmap.org", "basemaps.cartocdn.com", "tianditu.gov.cn", "autonavi.com")


# --------------------------------------------------------------------------- data


def _wobble(k: np.ndarray | float) -> np.ndarray | float:
    """A ~10 m wiggle so that densified boundary vertices are not collinear (simplification keeps them)."""
    return 1e-4 * np.sin(k * 37.0)


def _units(n: int = 4, cell: float = 0.012, vertices_per_side: int = 2) -> gpd.GeoDataFrame:
    """An n × n grid of village polygons with coverage shares (one without elderly)."""
    rng = np.random.default_rng(8)
    rows = []
    for i in range(n):
        for j in range(n):
            x0, y0 = LON0 + i * cell, LAT0 + j * cell
            if vertices_per_side > 2:
                t = np.linspace(0, cell, vertices_per_side)
                ring = (
                    [(x0 + a, y0 + _wobble(a * 1e4)) for a in t]
                    + [(x0 + cell + _wobble(a * 1e4), y0 + a) for a in t[1:]]
                    + [(x0 + cell - a, y0 + cell + _wobble(a * 1e4)) for a in t[1:]]
                    + [(x0 + _wobble(a * 1e4), y0 + cell - a) for a in t[1:]]
                )
                geom = Polygon(ring)
            else:
                geom = box(x0, y0, x0 + cell, y0 + cell)
            k = i * n + j
            share = float(np.round(rng.uniform(0.2, 1.0), 3)) if k != 1 else math.nan
            rows.append(
                {
                    "code": f"4209810{k:05d}",
                    "name": f"测试村{k + 1}",
                    "level": "village",
                    "share": share,
                    "elderly": 0.0 if k == 1 else float(rng.integers(80, 900)),
                    "geometry": geom,
                }
            )
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def _facilities() -> gpd.GeoDataFrame:
    rows = [
        (CLICK_NAME, "day_care", 20, 450.0, 1234.0, CLICK_LONLAT),
        ("东街幸福食堂", "canteen", math.nan, 180.0, 640.0, (LON0 + 0.008, LAT0 + 0.030)),
        ("李家湾互助幸福院", "mutual_aid", 12, 300.0, 210.0, (LON0 + 0.040, LAT0 + 0.006)),
        ("城关镇敬老院", "nursing_home", 120, 5200.0, 880.0, (LON0 + 0.036, LAT0 + 0.040)),
        ("城南街道民生服务综合体", "comprehensive;day_care;canteen", 30, 1500.0, 2100.0, (LON0 + 0.012, LAT0 + 0.008)),
        ("<b>转义测试</b>食堂", "canteen", 0, math.nan, math.nan, (LON0 + 0.030, LAT0 + 0.026)),
    ]
    return gpd.GeoDataFrame(
        [
            {"name": n, "kinds": k, "beds": b, "floor_area_m2": a, "served_elderly": s, "geometry": Point(*xy)}
            for n, k, b, a, s, xy in rows
        ],
        crs="EPSG:4326",
    )


def _uncovered() -> gpd.GeoDataFrame:
    """100 m-ish cells in the north-east corner with persons beyond 15 minutes."""
    rng = np.random.default_rng(3)
    cells = []
    for i in range(6):
        for j in range(5):
            x0, y0 = LON0 + 0.03 + i * 0.001, LAT0 + 0.002 + j * 0.001
            cells.append({"elderly": float(rng.integers(1, 60)), "geometry": box(x0, y0, x0 + 0.001, y0 + 0.001)})
    return gpd.GeoDataFrame(cells, crs="EPSG:4326")


def _isochrones(facilities: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    utm = coords.utm_crs_for(LON0, LAT0)
    rows = []
    projected = facilities.to_crs(utm)
    for kind in KINDS:
        mask = projected["kinds"].str.split(";").apply(lambda ks, k=kind: k in ks)
        pts = projected.loc[mask]
        for minutes in (5, 10, 15):
            area = pts.buffer(minutes * 60 * 0.8).union_all()
            rows.append({"kind": kind, "minutes": minutes, "geometry": area})
    return gpd.GeoDataFrame(rows, crs=utm).to_crs("EPSG:4326")


def _sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        [
            {"rank": 1, "kind": "day_care", "gain": 512.0, "geometry": Point(LON0 + 0.033, LAT0 + 0.004)},
            {"rank": 2, "kind": "canteen", "gain": 230.0, "geometry": Point(LON0 + 0.045, LAT0 + 0.045)},
        ],
        crs="EPSG:4326",
    )


def _build(basemap: str = "osm", **kwargs) -> "maps.folium.Map":
    facilities = _facilities()
    return maps.coverage_map(
        _units(),
        facilities,
        uncovered=_uncovered(),
        isochrones=_isochrones(facilities),
        proposed_sites=_sites(),
        title="测试县15分钟养老服务圈覆盖",
        subtitle_lines=("数据日期：2024-06", "步行速度 0.8 m/s，阈值 15 分钟"),
        attribution_lines=(
            "© OpenStreetMap contributors (ODbL)",
            "WorldPop (CC BY 4.0)",
            "设施名录：测试县民政局",
        ),
        basemap=basemap,
        target_share=0.9,
        **kwargs,
    )


def _geojson_layers(m) -> list:
    """Every folium GeoJson element under the map, depth first."""
    found = []

    def walk(element):
        for child in element._children.values():
            if isinstance(child, maps.folium.GeoJson):
                found.append(child)
            walk(child)

    walk(m)
    return found


def _feature_lonlat(m, name: str) -> tuple[float, float]:
    for layer in _geojson_layers(m):
        for feature in layer.data["features"]:
            if feature["properties"].get("名称") == name and feature["geometry"]["type"] == "Point":
                lon, lat = feature["geometry"]["coordinates"]
                return lon, lat
    raise AssertionError(f"no point feature named {name}")


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320.0 * math.cos(lat)
    dy = (a[1] - b[1]) * 110_540.0
    return math.hypot(dx, dy)


# --------------------------------------------------------------------------- browser fixture


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through selenium, with the browser console log enabled."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "browser tests need /usr/bin/chromium and /usr/bin/chromedriver "
            "(run scripts/ensure_browser.sh as root, or apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _severe_errors(driver) -> list[str]:
    """SEVERE console entries other than failed basemap tile loads (there is no network)."""
    errors = []
    for entry in driver.get_log("browser"):
        if entry.get("level") != "SEVERE":
            continue
        message = entry.get("message", "")
        if "Failed to load resource" in message and any(host in message for host in TILE_HOSTS):
            continue
        errors.append(message)
    return errors


def _texts(driver, css: str, of_parent: bool = False) -> list[str]:
    """Text of every element matching `css` (or of its parent), read in one script.

    One round trip: the layer control rebuilds its list and Leaflet removes a closed popup 200 ms
    after its fade-out, so element references held across several WebDriver calls can go stale.
    """
    return driver.execute_script(
        "var ofParent = arguments[1];"
        "return Array.from(document.querySelectorAll(arguments[0]), function (el) {"
        "  return (ofParent ? el.parentNode : el).textContent.trim(); });",
        css, of_parent)


def _layer_labels(driver) -> list[str]:
    """Text of every entry in the Leaflet layer control."""
    return _texts(driver, ".leaflet-control-layers label")


def _checked_overlays(driver) -> set[str]:
    """Labels of the overlays switched on in the layer control."""
    return set(_texts(driver, ".leaflet-control-layers-overlays input:checked", of_parent=True))


def _shown_popup_text(driver) -> str:
    """Text of the popup that has finished fading in ('' while none has), read in one script."""
    return driver.execute_script(
        "var shown = Array.from(document.querySelectorAll('.leaflet-popup')).filter(function (p) {"
        "  return getComputedStyle(p).opacity === '1'; });"
        "return shown.length ? shown[shown.length - 1].querySelector('.leaflet-popup-content').innerText : '';")


def _wait_for_popup(driver, needle: str, seconds: float = 10) -> str:
    """Wait until a fully shown popup contains `needle`; return its text."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, seconds).until(lambda d: needle in _shown_popup_text(d))
    return _shown_popup_text(driver)


def _click_for_popup(driver, element, needle: str, attempts: int = 3, seconds: float = 5) -> str:
    """
    Click ``element`` until its popup (containing ``needle``) is shown; return the popup's text.

    First as a user clicks (the pointer moved onto the marker), twice; then
    a click event sent to the marker's own element, which is what Leaflet
    opens the popup from. Under the full suite's load a pointer click now
    and then opens nothing (seen twice in 900 tests, never alone or under two
    CPU burners); the message then says what lay under the pointer.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.action_chains import ActionChains

    missed = []
    for attempt in range(attempts):
        if attempt < attempts - 1:
            ActionChains(driver).move_to_element(element).click().perform()
        else:
            driver.execute_script(
                "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window}));",
                element)
        try:
            return _wait_for_popup(driver, needle, seconds)
        except TimeoutException:
            missed.append(driver.execute_script(
                "var r = arguments[0].getBoundingClientRect();"
                "var e = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
                "return [e ? e.tagName + '.' + (e.getAttribute('class') || '') : null, Math.round(r.left),"
                " Math.round(r.top), Math.round(r.width), Math.round(r.height)];", element))
    raise AssertionError(f"no popup with {needle!r} after {attempts} clicks; shown popup: "
                         f"{_shown_popup_text(driver)!r}; under the marker at each click: {missed}")


def _open(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get_log("browser")  # drop entries from an earlier page
    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".leaflet-control-layers")))
    WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, "path.cov-facility")))


# --------------------------------------------------------------------------- tests without a browser


def test_display_crs_for():
    assert maps.display_crs_for("amap") == "gcj02"
    for name in ("osm", "cartodbpositron", "tianditu"):
        assert maps.display_crs_for(name) == "wgs84"
    with pytest.raises(ValueError, match="unknown basemap"):
        maps.display_crs_for("google")


def test_share_classes_have_target_as_boundary():
    for target in (0.5, 0.65, 0.8, 0.9, 1.0):
        classes = maps.share_classes(target)
        assert any(c.lower == pytest.approx(target) for c in classes)
        assert classes[0].lower == 0.0 and classes[-1].upper == 1.0
        assert all(c.meets_target == (c.lower >= target) for c in classes)
        # a share just below the target and one at it fall in classes on either side
        below = next(c for c in classes if c.contains(target - 1e-6))
        at = next(c for c in classes if c.contains(target))
        assert below.meets_target is False and at.meets_target is True
    with pytest.raises(ValueError, match="share"):
        maps.share_classes(90)


def test_offline_html_has_no_remote_scripts_or_styles(tmp_path):
    m = _build()
    out = maps.save_map(m, tmp_path / "map.html")
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=[\"'](https?:)?//", text, re.I)
    assert not re.search(r"<link[^>]+href=[\"'](https?:)?//", text, re.I)
    assert "Leaflet 1.9.4" in text  # the vendored copy is inlined
    assert "jquery" not in text.lower() and "bootstrap" not in text.lower()
    assert "合成示例数据" not in text
    # escaping: a facility name with markup is shown as text, not as HTML
    names = {f["properties"].get("名称") for layer in _geojson_layers(m) for f in layer.data["features"]}
    assert "&lt;b&gt;转义测试&lt;/b&gt;食堂" in names and "<b>转义测试</b>食堂" not in names
    # no temporary files left behind, and an ordinary readable file (not mkstemp's 0600)
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]
    assert out.stat().st_mode & 0o777 == 0o644


def test_online_map_links_only_leaflet_and_save_inlines_it(tmp_path):
    m = _build(offline=False)
    online = maps.save_map(m, tmp_path / "online.html", offline=False).read_text(encoding="utf-8")
    remote = re.findall(r"(?:src|href)=\"(https?://[^\"]+\.(?:js|css))\"", online)
    assert remote and all(re.search(r"/leaflet\.(js|css)$", url) for url in remote)
    offline = maps.save_map(m, tmp_path / "offline.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=\"http", offline) and "Leaflet 1.9.4" in offline


def test_save_refuses_unvendored_remote_library(tmp_path):
    page = '<html><head><script src="https://cdn.example.org/d3.min.js"></script></head></html>'
    with pytest.raises(ValueError, match="d3.min.js"):
        maps.inline_remote_assets(page)


def test_synthetic_label_and_title_block(tmp_path):
    text = maps.save_map(_build(synthetic=True), tmp_path / "m.html").read_text(encoding="utf-8")
    assert "合成示例数据 / synthetic demo data" in text
    for line in ("测试县15分钟养老服务圈覆盖", "数据日期：2024-06", "步行速度 0.8 m/s", "WorldPop (CC BY 4.0)",
                 "© OpenStreetMap contributors (ODbL)", "设施名录：测试县民政局"):
        assert line in text
    # the legend shows the target as a class boundary
    assert "90%–100%（达标）" in text and "75%–&lt;90%" in text


def _with_numbered_ids(page: str) -> str:
    """The page with branca's random element ids numbered in order of appearance."""
    ids: dict[str, str] = {}
    return re.sub(r"[0-9a-f]{32}", lambda m: ids.setdefault(m.group(0), f"id{len(ids)}"), page)


def test_layers_placed_verbatim_make_the_same_page_as_folium_does(tmp_path, monkeypatch):
    from branca.element import MacroElement

    m = _build(synthetic=True)
    assert _image_overlays(m) and _geojson_layers(m)  # both kinds of verbatim layer are on the page
    ours = maps.save_map(m, tmp_path / "ours.html").read_text(encoding="utf-8")
    monkeypatch.setattr(map_layers._VerbatimMacro, "render", MacroElement.render)  # branca's own: a template each
    folium_page = maps.save_map(_build(synthetic=True), tmp_path / "folium.html").read_text(encoding="utf-8")
    assert _with_numbered_ids(ours) == _with_numbered_ids(folium_page)


def test_a_facility_name_that_looks_like_template_code_is_shown_as_it_is_written(tmp_path):
    facilities = _facilities()
    facilities.loc[1, "name"] = "Joy {{ 1 + 1 }} canteen {% raw %}"
    m = maps.coverage_map(_units(), facilities, title="测试县", subtitle_lines=(), attribution_lines=("OSM",))
    text = maps.save_map(m, tmp_path / "m.html").read_text(encoding="utf-8")
    assert "Joy {{ 1 + 1 }} canteen {% raw %}" in text


def test_amap_overlays_are_shifted_to_gcj02_and_osm_is_not():
    wgs = CLICK_LONLAT
    on_osm = _feature_lonlat(_build("osm"), CLICK_NAME)
    on_amap = _feature_lonlat(_build("amap"), CLICK_NAME)
    assert _metres(on_osm, wgs) < 0.5
    assert 300 <= _metres(on_amap, wgs) <= 600
    expected = coords.from_wgs84(*wgs, "gcj02")
    assert _metres(on_amap, expected) < 0.5
    # polygons move too: every unit vertex is offset by the same few hundred metres
    amap_units = next(layer for layer in _geojson_layers(_build("amap")) if "覆盖率" in layer.layer_name)
    feature = next(f for f in amap_units.data["features"] if f["properties"]["名称"] == "测试村1")
    ring = feature["geometry"]["coordinates"][0]
    corners = list(_units().geometry.iloc[0].exterior.coords)
    nearest = [min(_metres(tuple(v), c) for c in corners) for v in ring]
    assert all(300 <= d <= 600 for d in nearest)


def test_default_basemap_is_carto_positron(tmp_path, recwarn):
    facilities = _facilities()
    m = maps.coverage_map(_units(), facilities, title="默认底图")
    text = maps.save_map(m, tmp_path / "default.html").read_text(encoding="utf-8")
    assert "basemaps.cartocdn.com/light_all" in text
    assert "contributors \\u00a9 CARTO" in text  # the attribution, JSON-escaped in the page
    assert not [w for w in recwarn if "CartoDB" in str(w.message)]
    assert _metres(_feature_lonlat(m, CLICK_NAME), CLICK_LONLAT) < 0.5


def test_tianditu_needs_a_key(monkeypatch, tmp_path):
    monkeypatch.delenv("TIANDITU_KEY", raising=False)
    with pytest.raises(ValueError, match="TIANDITU_KEY"):
        _build("tianditu")
    monkeypatch.setenv("TIANDITU_KEY", "testkey123")
    text = maps.save_map(_build("tianditu"), tmp_path / "t.html").read_text(encoding="utf-8")
    assert "vec_w/wmts" in text and "cva_w/wmts" in text and "tk=testkey123" in text


def test_county_sized_map_is_small_and_rounded(tmp_path):
    """~50 densely digitised polygons: simplified to ~1 m, rounded to 6 decimals, well under 10 MB."""
    units = _units(n=7, cell=0.05, vertices_per_side=3000)
    assert len(units) == 49
    raw_vertices = sum(len(g.exterior.coords) for g in units.geometry)
    m = maps.coverage_map(units, _facilities(), title="县域测试", basemap="osm", target_share=0.8)
    out = maps.save_map(m, tmp_path / "county.html")
    size = out.stat().st_size
    assert size < 10 * 1024 * 1024
    raw_json = len(units.to_json())
    assert size < raw_json  # simplification and rounding pay for the inlined Leaflet too
    layer = next(layer for layer in _geojson_layers(m) if "覆盖率" in layer.layer_name)
    shown_vertices = sum(len(f["geometry"]["coordinates"][0]) for f in layer.data["features"])
    assert shown_vertices < raw_vertices
    for feature in layer.data["features"]:
        for x, y in feature["geometry"]["coordinates"][0]:
            assert round(x, 6) == x and round(y, 6) == y


def _image_overlays(m) -> list:
    found = []

    def walk(element):
        for child in element._children.values():
            if isinstance(child, maps.folium.raster_layers.ImageOverlay):
                found.append(child)
            walk(child)

    walk(m)
    return found


def test_many_uncovered_cells_are_one_image_placed_in_web_mercator():
    """A county's 100 m grid has tens of thousands of uncovered cells: one PNG, not thousands of features."""
    import base64
    import io

    from PIL import Image

    rng = np.random.default_rng(5)
    cells = [box(LON0 + i * 0.001, LAT0 + j * 0.001, LON0 + (i + 1) * 0.001, LAT0 + (j + 1) * 0.001)
             for i in range(80) for j in range(50)]
    uncovered = gpd.GeoDataFrame({"elderly": rng.uniform(0.5, 40, len(cells))}, geometry=cells, crs="EPSG:4326")
    m = maps.coverage_map(_units(), _facilities(), uncovered=uncovered, title="栅格测试", basemap="osm")
    assert not [layer for layer in _geojson_layers(m) if "未覆盖" in layer.layer_name]
    (overlay,) = _image_overlays(m)
    assert "未覆盖" in overlay.layer_name and overlay.show is False
    (south, west), (north, east) = overlay.bounds
    assert west == pytest.approx(LON0, abs=2e-6) and east == pytest.approx(LON0 + 0.08, abs=1e-4)
    assert south == pytest.approx(LAT0, abs=1e-4) and north == pytest.approx(LAT0 + 0.05, abs=2e-6)
    image = Image.open(io.BytesIO(base64.b64decode(overlay.url.split(",", 1)[1])))
    burnt = np.asarray(image)
    assert (burnt > 0).mean() > 0.97  # every cell is drawn, edge to edge
    # Web Mercator placement: the row of a cell's centre follows the Mercator y, not the latitude
    lat = LAT0 + 0.0405  # centre of the cells in row j = 40 from the south
    y = lambda phi: math.log(math.tan(math.pi / 4 + math.radians(phi) / 2))  # noqa: E731
    row = (y(north) - y(lat)) / (y(north) - y(south)) * burnt.shape[0]
    assert burnt[int(row), 1] > 0
    # a cell taken out of the grid leaves a hole exactly where Web Mercator puts it
    holed = maps.coverage_map(_units(), _facilities(), uncovered=uncovered.drop(index=40), title="孔", basemap="osm")
    (overlay,) = _image_overlays(holed)
    holed_px = np.asarray(Image.open(io.BytesIO(base64.b64decode(overlay.url.split(",", 1)[1]))))
    assert holed_px[int(row), 1] == 0 and holed_px[int(row), 5] > 0
    # the map with many cells stays small: the image is a few kB
    assert len(overlay.url) < 60_000


def test_a_large_any_kind_area_is_one_image_burnt_from_the_kinds_areas():
    """Past the vector limit the any-kind area is the kinds' areas burnt in one colour: their union, pixel for pixel."""
    import base64
    import io

    import shapely
    from PIL import Image

    utm = coords.utm_crs_for(LON0, LAT0)
    centre = gpd.GeoSeries([Point(LON0 + 0.02, LAT0 + 0.02)], crs="EPSG:4326").to_crs(utm).iloc[0]
    # two overlapping round areas of 8,000+ coordinates each: together past ISOCHRONE_VECTOR_MAX_COORDS
    a = shapely.buffer(centre, 600.0, quad_segs=2100)
    b = shapely.buffer(shapely.Point(centre.x + 900.0, centre.y), 600.0, quad_segs=2100)
    assert shapely.get_num_coordinates(a) + shapely.get_num_coordinates(b) > maps.ISOCHRONE_VECTOR_MAX_COORDS
    areas = gpd.GeoDataFrame({"kind": ["day_care", "canteen"], "minutes": [15, 15]}, geometry=[a, b],
                             crs=utm).to_crs("EPSG:4326")
    m = maps.coverage_map(_units(), _facilities(), isochrones=areas, title="任一类", basemap="osm")
    (overlay,) = [layer for layer in _image_overlays(m) if "任一类设施" in layer.layer_name]
    burnt = np.asarray(Image.open(io.BytesIO(base64.b64decode(overlay.url.split(",", 1)[1]))))
    (south, west), (north, east) = overlay.bounds
    union = gpd.GeoSeries([shapely.union(a, b)], crs=utm).to_crs("EPSG:4326").iloc[0]
    # sample pixel centres: burnt exactly where the union is (1 pixel of slack at its edge)
    rows, cols = np.indices(burnt.shape)
    y = lambda phi: np.log(np.tan(np.pi / 4 + np.radians(phi) / 2))  # noqa: E731
    lat = np.degrees(2 * np.arctan(np.exp(y(north) - (rows + 0.5) / burnt.shape[0] * (y(north) - y(south))))
                     - np.pi / 2)
    lon = west + (cols + 0.5) / burnt.shape[1] * (east - west)
    pixel_deg = (east - west) / burnt.shape[1]
    inside = shapely.contains_xy(shapely.buffer(union, -1.5 * pixel_deg), lon, lat)
    outside = ~shapely.contains_xy(shapely.buffer(union, 1.5 * pixel_deg), lon, lat)
    assert inside.sum() > 1000 and (burnt[inside] > 0).all() and (burnt[outside] == 0).all()


@pytest.mark.parametrize(("quad_segs", "county"), [(2100, False), (11_000, True)])
def test_isochrone_images_made_ahead_are_the_pixels_the_map_burns_itself(quad_segs, county):
    """The run burns a county's area images on the drawing thread: the map must show the same pixels as in one go."""
    import shapely

    utm = coords.utm_crs_for(LON0, LAT0)
    centre = gpd.GeoSeries([Point(LON0 + 0.02, LAT0 + 0.02)], crs="EPSG:4326").to_crs(utm).iloc[0]
    rows = []
    for k, kind in enumerate(["day_care", "canteen", "mutual_aid"]):
        for minutes in (5, 10, 15):
            # round areas of 8,400 coordinates (the any-kind area past the vector limit) or 44,000 (past four
            # times the vertex budget all together: a county, each kind's area an image too)
            rows.append({"kind": kind, "minutes": minutes, "geometry": shapely.buffer(
                shapely.Point(centre.x + 700.0 * k, centre.y + 40.0 * minutes), 40.0 * minutes,
                quad_segs=quad_segs)})
    areas = gpd.GeoDataFrame(rows, crs=utm).to_crs("EPSG:4326")
    images = maps.isochrone_images(areas, threshold_minutes=15, basemap="osm")
    expected = {("any", 15.0)} | ({(kind, 15.0) for kind in ("day_care", "canteen", "mutual_aid")} if county
                                  else set())
    assert set(images) == expected
    ahead = maps.coverage_map(_units(), _facilities(), isochrones=areas, title="等时圈", basemap="osm",
                              isochrone_images=images)
    in_one_go = maps.coverage_map(_units(), _facilities(), isochrones=areas, title="等时圈", basemap="osm")
    drawn = {layer.layer_name: (layer.url, layer.bounds) for layer in _image_overlays(in_one_go)}
    assert len(drawn) == len(expected)
    assert {layer.layer_name: (layer.url, layer.bounds) for layer in _image_overlays(ahead)} == drawn
    assert {image.data_uri for image in images.values()} == {url for url, _ in drawn.values()}
    # and the map places the images it is given rather than burning them again
    from coverage.map_images import RasterImage

    given = RasterImage("data:image/png;base64,R0lGODlhAQABAAAAACw=", images[("any", 15.0)].bounds, (1, 1))
    placed = maps.coverage_map(_units(), _facilities(), isochrones=areas, title="等时圈", basemap="osm",
                               isochrone_images={**images, ("any", 15.0): given})
    assert given.data_uri in {layer.url for layer in _image_overlays(placed)}


def test_points_on_the_population_grid_are_summed_onto_its_cells():
    grid = {"transform": (0.001, 0.0, LON0, 0.0, -0.001, LAT0 + 0.01), "crs": "EPSG:4326"}
    points = gpd.GeoDataFrame({"elderly": [2.0, 3.0, 7.0], "row": [0, 0, 5], "col": [0, 0, 3]},
                              geometry=[Point(LON0 + 0.0005, LAT0 + 0.0095)] * 2 + [Point(LON0 + 0.0035, LAT0 + 0.0045)],
                              crs="EPSG:4326")
    from coverage import map_images

    cells = map_images.cells_from_grid(points, grid)
    assert sorted(cells["elderly"]) == [5.0, 7.0]
    assert cells.geometry.iloc[0].bounds == pytest.approx((LON0, LAT0 + 0.009, LON0 + 0.001, LAT0 + 0.01))
    m = maps.coverage_map(_units(), _facilities(), uncovered=points, uncovered_grid=grid, title="格网", basemap="osm")
    assert len(_image_overlays(m)) == 1


def test_streets_headline_and_grouped_layers(tmp_path):
    from shapely.geometry import LineString

    from coverage import map_layers, reach

    utm = coords.utm_crs_for(LON0, LAT0)
    xy = gpd.GeoSeries([Point(LON0, LAT0), Point(LON0 + 0.04, LAT0 + 0.04)], crs="EPSG:4326").to_crs(utm)
    (x0, y0), (x1, y1) = [(p.x, p.y) for p in xy]
    lines = [LineString([(x0, y0 + k * 400), (x1, y0 + k * 400)]) for k in range(5)]
    lines += [LineString([(x0 + k * 400, y0), (x0 + k * 400, y1)]) for k in range(5)]
    net = reach.NetworkArrays(
        node_ids=np.arange(2), node_x=np.zeros(2), node_y=np.zeros(2), edge_u=np.zeros(10, int),
        edge_v=np.ones(10, int), edge_length_m=np.full(10, 1000.0), edge_ferry=np.zeros(10, bool),
        edge_geometry=np.array(lines, dtype=object), crs=utm,
        edge_highway=np.array([reach.highway_code("primary")] * 2 + [reach.highway_code("residential")] * 8, np.int8),
    )
    streets = map_layers.street_layer(net)
    assert list(streets["street_class"]) == ["minor", "major"]  # major drawn last, on top
    headline = map_layers.Headline(minutes=15, share_elderly=0.4321, elderly=6000, targets_met=2, targets_missed=3,
                                   targets_no_data=1, data_date="2024-06", parameters=("步行 0.8 m/s",))
    m = maps.coverage_map(_units(), _facilities(), isochrones=_isochrones(_facilities()), streets=streets,
                          headline=headline, title="道路测试", basemap="osm")
    text = maps.save_map(m, tmp_path / "s.html").read_text(encoding="utf-8")
    assert "coverage-headline" in text and "43.2%" in text and "未达标 3" in text and "2024-06" in text
    street_layer = next(layer for layer in _geojson_layers(m) if "道路" in layer.layer_name)
    assert street_layer.show and len(street_layer.data["features"]) == 2
    any_kind = next(layer for layer in _geojson_layers(m) if "任一类设施 15分钟" in layer.layer_name)
    assert any_kind.show
    per_kind = [layer for layer in _geojson_layers(m) if "分钟步行范围" in layer.layer_name and layer is not any_kind]
    assert per_kind and not any(layer.show for layer in per_kind)
    english = maps.coverage_map(_units(), _facilities(), headline=headline, title="t", basemap="osm", lang="en")
    assert "60+ within 15 min" in english.get_root().render()


# --------------------------------------------------------------------------- browser tests


def test_map_in_browser(browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    m = _build("osm", synthetic=True)
    path = maps.save_map(m, tmp_path / "coverage_map.html")
    _open(browser, path)

    # 1. no JavaScript errors (failed tile loads are expected without a network)
    errors = _severe_errors(browser)
    assert not errors, errors

    # 2. every layer is in the layer control
    labels = _layer_labels(browser)
    expected = ["OpenStreetMap", "村(社区)覆盖率", "15分钟外的60岁以上老人（未覆盖）", "建议新增选址（2处）"]
    drawn = [k for k in KINDS if _facilities()["kinds"].str.split(";").apply(lambda ks, k=k: k in ks).any()]
    expected += [f"{maps.KIND_LABELS[k]}（" for k in drawn]
    expected += [f"{maps.KIND_LABELS[k]} {mins}分钟步行范围" for k in drawn for mins in (5, 10, 15)]
    for name in expected:
        assert any(label.startswith(name) for label in labels), (name, labels)
    checked = _checked_overlays(browser)
    # shown at first: the units, the facilities and the any-kind area; the per-kind areas and the gaps are not
    assert "任一类设施 15分钟步行范围" in checked and "村(社区)覆盖率" in checked
    assert "日间照料中心 15分钟步行范围" not in checked and "日间照料中心 5分钟步行范围" not in checked
    assert "15分钟外的60岁以上老人（未覆盖）" not in checked
    # the control is collapsed and grouped by kind
    assert browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers:not(.leaflet-control-layers-expanded)")
    groups = _texts(browser, ".cov-lc-group")
    assert maps.KIND_LABELS["day_care"] in groups and "任一类设施 / any kind" in groups

    # every data layer drew something; the uncovered elderly are one image once switched on
    for css in ("path.cov-unit", "path.cov-unit-fail", "path.cov-facility", "path.cov-isochrone", ".cov-site-icon"):
        assert browser.find_elements(By.CSS_SELECTOR, css), css
    assert not browser.find_elements(By.CSS_SELECTOR, "img.cov-uncovered-image")
    browser.execute_script("""
        document.querySelectorAll('.leaflet-control-layers-overlays label').forEach(function (label) {
            if (label.textContent.indexOf('未覆盖') >= 0) { label.querySelector('input').click(); }
        });""")
    assert len(browser.find_elements(By.CSS_SELECTOR, "img.cov-uncovered-image")) == 1
    assert not browser.find_elements(By.CSS_SELECTOR, "path.cov-uncovered")
    assert "合成示例数据" in browser.find_element(By.ID, "coverage-title").text

    # 3. a popup opens on clicking a facility marker
    markers = browser.find_elements(By.CSS_SELECTOR, "path.cov-facility-0")  # row 0 of the facilities: CLICK_NAME
    assert len(markers) == 1
    marker = markers[0]
    text = _click_for_popup(browser, marker, CLICK_NAME)  # shown: faded in before the screenshot
    assert CLICK_NAME in text
    for field in ("名称", "类型", "床位数", "建筑面积", "15分钟内服务60岁以上老人", "450 m²", "1,234 人"):
        assert field in text, (field, text)

    # 4. a screenshot that is not blank
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "coverage_map_osm.png"
    browser.save_screenshot(str(shot))
    image = Image.open(shot).convert("RGB")
    pixels = np.asarray(image).reshape(-1, 3).astype(int)
    assert len(np.unique(pixels, axis=0)) > 200
    saturated = (pixels.max(axis=1) - pixels.min(axis=1)) > 60  # coloured data, not grey background / white UI
    assert saturated.mean() > 0.05, saturated.mean()
    assert _severe_errors(browser) == []


def test_amap_map_in_browser(browser, tmp_path):
    """The GCJ-02 variant loads cleanly too and its markers sit at the shifted positions."""

    path = maps.save_map(_build("amap"), tmp_path / "coverage_map_amap.html")
    _open(browser, path)
    assert _severe_errors(browser) == []
    labels = _layer_labels(browser)
    assert "高德地图" in labels
    latlng = browser.execute_script(
        """
        var name = arguments[0], out = null;
        Object.keys(window).forEach(function (key) {
            var obj = window[key];
            if (obj instanceof L.GeoJSON) {
                obj.eachLayer(function (layer) {
                    if (layer.feature.properties['名称'] === name && layer.getLatLng) {
                        out = [layer.getLatLng().lng, layer.getLatLng().lat];
                    }
                });
            }
        });
        return out;
        """,
        CLICK_NAME,
    )
    assert latlng is not None
    assert 300 <= _metres(tuple(latlng), CLICK_LONLAT) <= 600
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT_DIR / "coverage_map_amap.png"))


def test_ensure_browser_script_is_idempotent():
    script = ROOT / "scripts" / "ensure_browser.sh"
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("fc-list")):
        pytest.skip("only checked where the browser is already installed (the script would run apt-get)")
    import subprocess

    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "present" in result.stdout and "installing" not in result.stdout


def test_demo_map_opens_offline_in_a_browser_with_every_layer(browser, tmp_path):
    """The map `make demo` writes: no console errors, all layers listed, a popup on click, not blank."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    from coverage.config import load_study
    from coverage.pipeline import run_study

    results = run_study(load_study(ROOT / "studies" / "demo.yaml", output_root=tmp_path))
    path = results.output_files["map.html"]
    html = path.read_text(encoding="utf-8")
    assert "<script src=\"http" not in html and "合成示例数据" in html
    assert path.stat().st_size < 8 * 1024 * 1024
    _open(browser, path)
    assert not _severe_errors(browser)
    # the page's own scripts (every layer) have run; how fast is measured by benchmarks/bench_county.py, not here
    assert browser.execute_script("return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;") > 0
    labels = _layer_labels(browser)
    for name in ["村(社区)覆盖率", "15分钟外的60岁以上老人（未覆盖）", "道路（研究路网）", "任一类设施 15分钟步行范围",
                 *[f"{maps.KIND_LABELS[k]}（" for k in ("day_care", "canteen", "mutual_aid")]]:
        assert any(label.startswith(name) for label in labels), (name, labels)
    checked = _checked_overlays(browser)
    assert checked == {"村(社区)覆盖率", "道路（研究路网）", "任一类设施 15分钟步行范围",
                       *[label for label in labels if re.match(r".+（\d+处）$", label)]}, checked
    # the streets of the study's own network are drawn (no tile server needed), major ones apart
    assert browser.find_elements(By.CSS_SELECTOR, "path.cov-street-major")
    assert browser.find_elements(By.CSS_SELECTOR, "path.cov-street-minor")
    # the headline panel: the 15-minute share of the 60+ and the targets
    panel = browser.find_element(By.ID, "coverage-headline").text
    assert "%" in panel and "达标" in panel and "未达标" in panel and "数据日期" in panel
    # a village 互助幸福院 stands alone (town-centre markers overlap at this zoom)
    row = int(np.flatnonzero(results.facilities["kinds"].to_numpy() == "mutual_aid")[0])
    marker = browser.find_elements(By.CSS_SELECTOR, f"path.cov-facility-{row}")[0]
    name = results.facilities["name"].iloc[row]
    _click_for_popup(browser, marker, name)  # faded in, before the screenshot
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "demo_map.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    assert ((pixels.max(axis=1) - pixels.min(axis=1)) > 60).mean() > 0.05
    # a unit's popup lists its own targets, 达标 / 未达标; that view is the README's picture
    opened = browser.execute_script("""
        var text = null;
        Object.keys(window).forEach(function (key) {
            var obj = window[key];
            if (text === null && obj instanceof L.GeoJSON) {
                obj.eachLayer(function (layer) {
                    var p = layer.feature.properties;
                    if (text === null && p['本单元指标'] && p['本单元指标'].indexOf('未达标') >= 0) {
                        var map = layer._map;
                        map.setView(layer.getCenter(), 14, {animate: false});
                        layer.fire('click', {latlng: layer.getCenter()}, true); text = p['名称'];
                    }
                });
            }
        });
        return text;""")
    assert opened
    _wait_for_popup(browser, "未达标")  # the unit's popup is shown (the facility's, fading out, does not count)
    # no hover tooltip left over from the clicks in the README's picture
    browser.execute_script("document.querySelectorAll('.leaflet-tooltip').forEach(function (t) { t.remove(); });")
    DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(DOCS_IMAGES / "demo_map.png"))


def test_a_county_sized_map_keeps_its_streets_and_areas_within_the_vertex_budget():
    """Major streets always stay; footpaths, then minor streets, go first; areas coarsen to fit."""
    import numpy as np
    import shapely

    from coverage import map_layers
    from coverage.network import load_walk_arrays
    from tests.conftest import shared_data

    net = load_walk_arrays(shared_data("osm/shanghai_center/shanghai_center.osm.pbf"))
    full = map_layers.street_layer(net, budget=10**9)
    tight = map_layers.street_layer(net, budget=int(shapely.get_num_coordinates(
        np.asarray(full[full["street_class"] == "major"].geometry.values)).sum() * 1.2))
    assert "major" in set(tight["street_class"]) and tight.attrs["omitted_classes"]
    assert shapely.get_num_coordinates(np.asarray(tight.geometry.values)).sum() < \
        shapely.get_num_coordinates(np.asarray(full.geometry.values)).sum()
    # areas: the tolerance doubles until the budget holds, and never beyond 80 m
    # an isochrone-like area: buffered streets of the first 1,500 edges, in WGS-84
    from pyproj import Transformer

    to_wgs = Transformer.from_crs(net.crs, "EPSG:4326", always_xy=True)
    area = shapely.union_all(shapely.buffer(net.edge_geometry[:1500], 40.0, quad_segs=4))
    areas = np.array([shapely.transform(area, lambda xy: np.column_stack(to_wgs.transform(xy[:, 0], xy[:, 1])))])
    metric = map_layers.local_metric_crs(full)
    fitted, tolerance = map_layers.simplify_to_budget(areas, 5.0, metric, budget=2_000)
    assert tolerance > 5.0 and (shapely.get_num_coordinates(fitted).sum() <= 2_000 or tolerance == 160.0)
    # every simplified outline stays within the tolerances it went through (at most twice the last) of the original
    from pyproj import Transformer

    to_metric = Transformer.from_crs("EPSG:4326", metric, always_xy=True)
    in_metres = [shapely.transform(g, lambda xy: np.column_stack(to_metric.transform(xy[:, 0], xy[:, 1])))
                 for g in (areas[0], fitted[0])]
    assert shapely.hausdorff_distance(*in_metres) <= 2 * tolerance + 2.0


def test_each_area_says_its_minutes_and_travel_mode_in_the_map_language():
    assert maps._area_label("敬老院", 30, "drive", "zh") == "敬老院 30分钟驾车范围"
    assert maps._area_label("日间照料中心", 15, "walk_elderly", "zh") == "日间照料中心 15分钟步行范围"
    assert maps._area_label("township nursing home", 20, "ebike", "en") == "township nursing home, 20 min e-bike"
    assert maps._area_label("any kind", 15, None, "en") == "any kind, 15 min walk"


@pytest.mark.parametrize("extract", ["shanghai_center/shanghai_center.osm.pbf", "beijing_bupt/map.osm.pbf"])
def test_classes_left_out_unmerged_are_the_ones_merging_would_have_left_out(extract, monkeypatch):
    """A county's minor streets are not merged when the budget is bound to leave them out: the same layer as merging all."""
    import numpy as np
    import shapely

    from coverage import map_layers
    from coverage.network import load_walk_arrays
    from tests.conftest import shared_data

    net = load_walk_arrays(shared_data(f"osm/{extract}"))
    full = map_layers.street_layer(net, budget=10**9)
    # the lower bound holds for every class at the coarsest tolerance
    coarse = map_layers.street_layer(net, budget=10**9, tolerance_m=12.0)
    for cls in set(coarse["street_class"]):
        edges = np.flatnonzero(_edge_classes(net) == cls)
        kept = shapely.get_num_coordinates(np.asarray(coarse[coarse["street_class"] == cls].geometry.values)).sum()
        assert map_layers._fewest_coordinates(net, edges) <= kept, cls
    counts = {cls: int(shapely.get_num_coordinates(np.asarray(coarse[coarse["street_class"] == cls].geometry.values))
                       .sum()) for cls in set(coarse["street_class"])}
    left_out = []
    for budget in (counts.get("major", 0) + 10, sum(counts.values()) - 1, sum(counts.values()) // 2, 50):
        short_cut = map_layers.street_layer(net, budget=budget)
        left_out.append(map_layers._classes_over_budget(net, _edge_classes(net), budget))
        with monkeypatch.context() as plain:  # street_layer as it was: every class merged, then cut down
            plain.setattr(map_layers, "_classes_over_budget", lambda *args: [])
            merged = map_layers.street_layer(net, budget=budget)
        assert short_cut.attrs == merged.attrs, budget
        assert list(short_cut["street_class"]) == list(merged["street_class"])
        assert all(shapely.equals_exact(a, b, 0.0) for a, b in zip(short_cut.geometry, merged.geometry))
    assert len(full) >= len(short_cut)
    assert any(left_out), "no budget took the short cut"


def _edge_classes(net):
    import numpy as np

    from coverage import map_layers, reach

    code_class = {reach.highway_code(v): cls for cls, values in map_layers.STREET_CLASSES.items() for v in values}
    code_class[0] = "minor"
    edge_class = np.array([code_class.get(c, "minor") for c in range(len(reach.HIGHWAY_CLASSES))])[
        np.asarray(net.edge_highway, int)]
    edge_class[np.asarray(net.edge_ferry, bool)] = "ferry"
    return edge_class


def test_walking_areas_are_burnt_into_the_same_pixels_as_gdal():
    """The map's image of a county's walking areas: scanlines in arrays, pixel for pixel rasterio's (GDAL's) burn."""
    import math

    import numpy as np
    import shapely
    from rasterio import features
    from rasterio.transform import from_origin

    from coverage import isochrones, map_images, reach
    from coverage.config import FerryPolicy
    from coverage.network import load_walk_arrays
    from tests.conftest import shared_data

    net = load_walk_arrays(shared_data("osm/shanghai_center/shanghai_center.osm.pbf"))
    rng = np.random.default_rng(8)
    xy = np.column_stack([rng.uniform(net.node_x.min(), net.node_x.max(), 25),
                          rng.uniform(net.node_y.min(), net.node_y.max(), 25)])
    snap = reach.snap_points(net, xy, max_access_m=500)
    areas = isochrones.nested_isochrones(net, snap, [300.0, 900.0], walk_speed_mps=0.8, ferry=FerryPolicy())
    # walking areas with holes, a polygon across the grid's edge, a multipolygon and nested parts
    ring = shapely.Polygon([(0, 0), (900, 0), (900, 900), (0, 900)], [[(300, 300), (600, 300), (600, 600), (300, 600)]])
    island = shapely.box(400, 400, 500, 500)
    x0, y0 = float(net.node_x.min()), float(net.node_y.min())
    extra = [shapely.affinity.translate(g, x0 - 200, y0 - 200) for g in (shapely.MultiPolygon([ring, island]),)]
    geoms = np.array([*areas, *extra], dtype=object)
    west, south, east, north = shapely.total_bounds(np.array(areas, dtype=object))
    for side in (600, 1500):
        pixel = max(east - west, north - south) / side
        width, height = int(math.ceil((east - west) / pixel)), int(math.ceil((north - south) / pixel))
        px, py = (east - west) / width, (north - south) / height
        values = np.arange(1, len(geoms) + 1)
        gdal = features.rasterize(zip(geoms, values.tolist()), out_shape=(height, width),
                                  transform=from_origin(west, north, px, py), fill=0, dtype="uint8")
        mine = map_images.burn_polygons(geoms, values, (height, width), (west, north, px, py))
        assert (gdal > 0).sum() > 1000 and set(np.unique(mine)) == set(np.unique(gdal))
        assert (mine != gdal).sum() <= 1e-5 * mine.size  # a pixel centre exactly on an edge may fall either way


def test_map_layers_hold_the_same_geojson_as_shapely_gives_for_every_geometry():
    import json

    import shapely
    from shapely.geometry import mapping

    rng = np.random.default_rng(3)
    lines = shapely.multilinestrings(shapely.linestrings(np.round(rng.random((400, 3, 2)) + [114.0, 30.5], 6)))
    with_hole = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 1)]])
    geometries = [Point(114.1234567, 30.7654321), lines, with_hole, shapely.MultiPolygon([with_hole, box(9, 9, 10, 10)]),
                  Point(rng.random(), rng.random()), Polygon(), shapely.MultiLineString(), None]
    layer = gpd.GeoDataFrame({"n": range(len(geometries))}, geometry=geometries, crs="EPSG:4326")
    collection = map_layers._feature_collection(layer, [{"n": n} for n in layer["n"]])
    expected = [None if g is None else mapping(g) for g in geometries]
    assert json.dumps([f["geometry"] for f in collection["features"]]) == json.dumps(expected)
    assert [f["id"] for f in collection["features"]] == list(range(len(geometries)))


def _shanghai_streets_net():
    from coverage.network import load_walk_arrays
    from tests.conftest import shared_data

    return load_walk_arrays(shared_data("osm/shanghai_center/shanghai_center.osm.pbf"))


def test_a_second_map_of_the_same_network_takes_its_streets_from_the_cache(tmp_path):
    from coverage import map_layers

    net = _shanghai_streets_net()
    drawn = map_layers.cached_street_layer(net, names=net.edge_name, cache_dir=tmp_path)
    assert drawn.equals(map_layers.street_layer(net, names=net.edge_name))
    (cached,) = (tmp_path / "map_streets").glob("*.pickle")
    # what the cache holds is what the next run gets: a layer put there in its place comes back
    marked = drawn.iloc[:1].copy()
    marked.attrs = {**drawn.attrs, "tolerance_m": -1.0}
    pd.to_pickle(marked, cached)
    again = map_layers.cached_street_layer(net, names=net.edge_name, cache_dir=tmp_path)
    assert len(again) == 1 and again.attrs["tolerance_m"] == -1.0
    # without the cache the layer is drawn
    assert map_layers.cached_street_layer(net, names=net.edge_name, cache_dir=tmp_path, use_cache=False).equals(drawn)


def test_a_changed_network_or_a_damaged_cache_file_draws_the_streets_again(tmp_path):
    import dataclasses

    from coverage import map_layers

    net = _shanghai_streets_net()
    map_layers.cached_street_layer(net, names=net.edge_name, cache_dir=tmp_path)
    keep = np.arange(net.n_edges) % 2 == 0
    half = dataclasses.replace(
        net, edge_u=net.edge_u[keep], edge_v=net.edge_v[keep], edge_length_m=net.edge_length_m[keep],
        edge_ferry=net.edge_ferry[keep], edge_geometry=net.edge_geometry[keep],
        edge_highway=None if net.edge_highway is None else net.edge_highway[keep],
        edge_oneway=None if net.edge_oneway is None else net.edge_oneway[keep],
        edge_name=None if net.edge_name is None else net.edge_name[keep],
    )
    streets_of_half = map_layers.cached_street_layer(half, names=half.edge_name, cache_dir=tmp_path)
    assert streets_of_half.equals(map_layers.street_layer(half, names=half.edge_name))
    assert len(list((tmp_path / "map_streets").glob("*.pickle"))) == 2  # one per network
    for cached in (tmp_path / "map_streets").glob("*.pickle"):
        cached.write_bytes(b"not a pickle")
    assert map_layers.cached_street_layer(net, names=net.edge_name, cache_dir=tmp_path).equals(
        map_layers.street_layer(net, names=net.edge_name))
