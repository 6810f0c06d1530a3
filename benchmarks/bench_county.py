"""
The whole batch job on a county: Huangpi district of Wuhan (黄陂区, 420116), issue #14 item 6.

Builds a county-sized study from the real data in ``../shared/data`` and runs
it end to end at three sizes of window (1/16 and 1/4 of the county's
bounding box, around its centre, and the full county):

- demand: the real WorldPop 60+ rasters (ten age × sex bands, 100 m cells),
  read by the pipeline over the county outline and calibrated to the real
  2020 census 60+ total of 420116 (``target_counties_2020_age60plus.csv``;
  for a part window the county total times the window's share of the
  raster's 60+ people in the county, written to a one-row census table);
- units: the county outline (fastgeocn, EPSG:4490 ≈ WGS-84, cut to the
  window) plus the real 2016 town and village points of 420116 (vonng
  adcode, GCJ-02 converted to WGS-84): 82 units have a point; there are no
  public town or village polygons here;
- streets: generated, written as an .osm.pbf the pipeline parses: a jittered
  grid (~145 m blocks) over the window padded by 1.5 km, one in ten block
  sides missing, a few highway classes (trunk, primary, secondary, tertiary,
  residential) and some one-way residential ways;
- facilities: 1,494 × the window's share of the county's 60+ people, placed
  in populated cells with probability in proportion to their 60+ people, of
  the kinds a municipal registry lists, written as a registry CSV in GCJ-02.

Each run is its own process (``--worker``), started and ended as the
``eldercov`` command is (collector thresholds, exit without teardown where
the revision has them): ``coverage.pipeline.run_study``
with the written outputs and the map, per-stage seconds (``results.timings``),
peak RSS (``ru_maxrss`` of the worker), each output file's size. At the
full window ``site --add 20`` (``coverage.proposals.propose_sites``) is timed
too, and ``--target 0.6`` when it finishes within ``--target-budget``
seconds (it is killed otherwise), and ``catchment_matrix`` is timed on the
site command's candidates × homes against the version of
``coverage/reach.py`` at ``--before`` (read with ``git show``, read-only),
checking that both give the same matrix.

Run from the repository root (nice'd on a shared machine):

    nice -n 10 .venv/bin/python benchmarks/bench_county.py [--fractions 0.0625 0.25 1] [--out /tmp/bench_county]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
RASTERS = SHARED / "population" / "wuhan_worldpop_agesex"
CENSUS = SHARED / "census" / "leiii_census" / "target_counties_2020_age60plus.csv"
OUTLINES = SHARED / "admin" / "fastgeocn_county" / "target_counties_tianditu.geojson"
ADCODE = SHARED / "admin" / "vonng_adcode" / "adcode_targets_and_wuhan_2016.csv"
COUNTY = "420116"
#: facilities in the county, as issue #14 gives them
COUNTY_FACILITIES = 1494
#: registry types and their shares among the generated facilities
FACILITY_TYPES = {"互助幸福院": 0.45, "日间照料中心": 0.2, "幸福食堂": 0.15, "社区养老服务站": 0.1,
                  "敬老院": 0.05, "民生服务综合体": 0.04, "社会福利院": 0.01}
STEP_LON, STEP_LAT = 0.0015, 0.0013  # ~143 m × 144 m blocks at 31°N
PAD_DEG = 0.015


# ---------------------------------------------------------------- inputs


def county_outline():
    """The outline of 420116 (WGS-84 ≈ CGCS2000), a shapely geometry."""
    import geopandas as gpd

    outlines = gpd.read_file(OUTLINES)
    return outlines.loc[outlines["gb"] == "156" + COUNTY].geometry.iloc[0]


def window_box(outline, fraction: float):
    """A box of ``fraction`` of the outline's bounding box area, around its centre."""
    import shapely

    x0, y0, x1, y1 = outline.bounds
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, np.sqrt(fraction)
    hw, hh = (x1 - x0) * side / 2, (y1 - y0) * side / 2
    return shapely.box(cx - hw, cy - hh, cx + hw, cy + hh)


def raster_cells(bounds):
    """60+ persons per cell (sum of the ten bands) and the cell centres, over ``bounds`` (lon/lat)."""
    import rasterio
    from rasterio.windows import from_bounds

    total = None
    for path in sorted(RASTERS.glob("pop_*_wuhan.tif")):
        with rasterio.open(path) as src:
            window = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
            band = src.read(1, window=window).astype(float)
            band[band < 0] = 0.0
            transform = src.window_transform(window)
            total = band if total is None else total + band
    rows, cols = np.indices(total.shape)
    lon, lat = transform * (cols + 0.5, rows + 0.5)
    return total.ravel(), np.asarray(lon).ravel(), np.asarray(lat).ravel(), abs(transform.a)


def people_inside(area, cells):
    """60+ persons of the cells whose centre is inside ``area``."""
    import shapely

    persons, lon, lat, _ = cells
    inside = shapely.contains_xy(area, lon, lat)
    return float(persons[inside].sum()), inside


def census_total() -> float:
    import pandas as pd

    table = pd.read_csv(CENSUS, dtype={"区划代码": str})
    row = table[table["区划代码"].str.startswith(COUNTY)]
    return float(row["pop60p"].iloc[0])


def write_units(path: Path, area, outline_code: str) -> int:
    """County polygon (cut to the window) + the real town/village points inside it; returns the unit count."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from coverage.coords import gcj02_to_wgs84

    table = pd.read_csv(ADCODE, dtype={"code": str, "parent": str})
    table = table[table["code"].str.startswith(COUNTY) & table["level"].isin(["town", "village"])]
    lon, lat = gcj02_to_wgs84(table["longitude"].to_numpy(float), table["latitude"].to_numpy(float))
    geometry = [shapely.Point(x, y) if np.isfinite(x) and np.isfinite(y) else None for x, y in zip(lon, lat)]
    points = gpd.GeoDataFrame({
        "code": table["code"].to_numpy(), "name": table["name"].to_numpy(), "level": table["level"].to_numpy(),
        "parent_code": table["parent"].to_numpy(), "ur_code": pd.to_numeric(table["ur_code"], errors="coerce"),
    }, geometry=geometry, crs="EPSG:4326")
    # units with a point inside the window, and towns holding them (a town without a point stays as a code)
    placed = points.geometry.notna() & points.geometry.within(area)
    towns = set(points.loc[placed, "parent_code"])
    keep = placed | ((points["level"] == "town") & points["code"].isin(towns))
    county = gpd.GeoDataFrame({"code": [outline_code], "name": ["黄陂区"], "level": ["county"], "parent_code": [None],
                               "ur_code": [np.nan]}, geometry=[area], crs="EPSG:4326")
    units = pd.concat([county, points[keep]], ignore_index=True)
    units["ur_code"] = units["ur_code"].astype("Int64")
    units.to_file(path, driver="GeoJSON")
    return len(units)


def write_network(path: Path, bounds, seed: int = 14) -> dict:
    """A jittered street grid over ``bounds`` (lon/lat) as an .osm.pbf; returns its counts."""
    import osmium

    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = bounds[0] - PAD_DEG, bounds[1] - PAD_DEG, bounds[2] + PAD_DEG, bounds[3] + PAD_DEG
    nx_, ny_ = int((x1 - x0) / STEP_LON) + 1, int((y1 - y0) / STEP_LAT) + 1
    ids = np.arange(nx_ * ny_, dtype=np.int64).reshape(ny_, nx_) + 1
    jitter = rng.uniform(-0.3, 0.3, size=(ny_, nx_, 2)) * (STEP_LON, STEP_LAT)
    lon = x0 + np.arange(nx_)[None, :] * STEP_LON + jitter[..., 0]
    lat = y0 + np.arange(ny_)[:, None] * STEP_LAT + jitter[..., 1]
    missing_h = rng.random((ny_, nx_ - 1)) < 0.1  # block sides left out
    missing_v = rng.random((ny_ - 1, nx_)) < 0.1
    if path.exists():
        path.unlink()
    ways = 0
    used = np.zeros((ny_, nx_), bool)
    way_list = []

    def highway(line: int) -> str:
        for every, name in ((40, "trunk"), (20, "primary"), (10, "secondary"), (5, "tertiary")):
            if line % every == 0:
                return name
        return "residential"

    for horizontal in (True, False):
        lines, length = (ny_, nx_) if horizontal else (nx_, ny_)
        for i in range(lines):
            cls = highway(i)
            refs: list[int] = []
            for j in range(length - 1):
                gone = missing_h[i, j] if horizontal else missing_v[j, i]
                if cls != "residential":
                    gone = False  # main roads run through
                a, b = ((i, j), (i, j + 1)) if horizontal else ((j, i), (j + 1, i))
                if gone or len(refs) >= 9:
                    if len(refs) >= 2:
                        way_list.append((refs, cls))
                    refs = []
                if gone:
                    continue
                if not refs:
                    refs = [int(ids[a])]
                refs.append(int(ids[b]))
                used[a] = used[b] = True
            if len(refs) >= 2:
                way_list.append((refs, cls))
    with osmium.SimpleWriter(str(path)) as writer:
        for r, c in zip(*np.nonzero(used)):
            writer.add_node(osmium.osm.mutable.Node(id=int(ids[r, c]), location=(float(lon[r, c]), float(lat[r, c]))))
        for wid, (refs, cls) in enumerate(way_list, start=1):
            tags = {"highway": cls}
            if cls == "residential" and rng.random() < 0.08:
                tags["oneway"] = "yes"
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=refs, tags=tags))
            ways += 1
    return {"junctions": int(used.sum()), "ways": ways, "mb": path.stat().st_size / 1e6}


def write_facilities(path: Path, count: int, area, cells, seed: int = 14) -> int:
    """``count`` facilities in populated cells inside ``area`` (chance ∝ 60+ people), registry CSV in GCJ-02."""
    import pandas as pd

    from coverage.coords import wgs84_to_gcj02

    persons, lon, lat, size = cells
    _, inside = people_inside(area, cells)
    weight = np.where(inside, persons, 0.0)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(weight), size=count, replace=True, p=weight / weight.sum())
    x = lon[pick] + rng.uniform(-0.45, 0.45, count) * size
    y = lat[pick] + rng.uniform(-0.45, 0.45, count) * size
    gx, gy = wgs84_to_gcj02(x, y)
    kinds = rng.choice(list(FACILITY_TYPES), size=count, p=np.array(list(FACILITY_TYPES.values())))
    beds = np.where(np.isin(kinds, ["敬老院", "社会福利院"]), rng.integers(40, 300, count), 0)
    table = pd.DataFrame({
        "序号": np.arange(1, count + 1), "名称": [f"黄陂区{k}{i + 1:04d}（生成）" for i, k in enumerate(kinds)],
        "类型": kinds, "地址": "湖北省武汉市黄陂区", "经度": np.round(gx, 6), "纬度": np.round(gy, 6),
        "坐标系": "GCJ-02", "床位数": beds,
    })
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return count


def build_study(folder: Path, fraction: float, outline, county_cells, county_people: float) -> dict:
    """Write the inputs and study.yaml of one window into ``folder``; returns what was written."""
    import shapely

    folder.mkdir(parents=True, exist_ok=True)
    box = window_box(outline, fraction)
    area = outline if fraction >= 1 else shapely.intersection(outline, box)
    share = people_inside(area, county_cells)[0] / county_people
    census = census_total() * share
    n_fac = max(1, round(COUNTY_FACILITIES * share))
    info = {"fraction": fraction, "area_km2": _area_km2(area), "share_of_county_60plus": share,
            "census_60plus": census}
    info["network"] = write_network(folder / "streets.osm.pbf", area.bounds)
    info["units"] = write_units(folder / "units.geojson", area, COUNTY + "000000")
    info["facilities"] = write_facilities(folder / "facilities.csv", n_fac, area, county_cells)
    (folder / "census.csv").write_text(f"区划代码,60岁及以上人口\n{COUNTY},{census:.0f}\n", encoding="utf-8")
    rasters = str(RASTERS / "pop_*_wuhan.tif")
    (folder / "study.yaml").write_text(f"""# generated by benchmarks/bench_county.py (window {fraction:g} of 黄陂区's bounding box)
study:
  name: huangpi_{str(fraction).replace('.', '_')}
  title: 黄陂区养老服务设施步行覆盖评估（基准测试：生成的路网与设施）
  synthetic: true
  facility_source: 生成的设施（按60岁以上人口分布放置）/ generated by benchmarks/bench_county.py
inputs:
  network: streets.osm.pbf
  facilities:
    - path: facilities.csv
      crs: gcj02
  units:
    path: units.geojson
    crs: wgs84
  population:
    rasters: {rasters}
    age_group: 60+
    year: 2020
    census: {{path: census.csv, code_column: 区划代码, total_column: 60岁及以上人口, level: county}}
parameters:
  walk_speed_mps: 0.8
  thresholds_min: [5, 10, 15]
  distance_thresholds_m: [300, 500, 1000]
  max_access_m: 500
targets:
  sets: [national]
""", encoding="utf-8")
    return info


def _area_km2(geometry) -> float:
    import geopandas as gpd

    series = gpd.GeoSeries([geometry], crs="EPSG:4326")
    return float(series.to_crs(series.estimate_utm_crs()).area.iloc[0] / 1e6)


# ---------------------------------------------------------------- workers (each in its own process)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_run(study: Path, out: Path) -> dict:
    from coverage.config import load_study
    from coverage.pipeline import run_study

    try:  # what `eldercov` does at its start (coverage.batch_gc); the code of an older --compare revision may not
        from coverage.batch_gc import relax_collection_thresholds
    except ImportError:
        pass
    else:
        relax_collection_thresholds()

    config = load_study(study)
    config = _with_output(config, out)
    start = time.perf_counter()
    map_error = None
    try:
        results = run_study(config, write=True, make_map=True)
    except Exception as exc:  # noqa: BLE001 - the map writer is being changed by others: run without it
        map_error = f"{type(exc).__name__}: {exc}"
        start = time.perf_counter()
        results = run_study(config, write=True, make_map=False)
    total = time.perf_counter() - start
    files = {name: Path(path).stat().st_size for name, path in results.output_files.items() if Path(path).exists()}
    demand = getattr(results, "demand_projected", None)
    return {"seconds": total, "timings": dict(results.timings), "peak_mb": _peak_mb(), "files": files,
            "demand_points": None if demand is None else len(demand),
            "elderly": None if demand is None else float(demand["elderly"].sum()),
            "written_at": time.strftime("%H:%M:%S UTC", time.gmtime()), "map_error": map_error}


def _with_output(config, out: Path):
    import dataclasses

    fields = {f.name for f in dataclasses.fields(config)}
    if "output_dir" in fields:
        return dataclasses.replace(config, output_dir=out)
    return dataclasses.replace(config, output_root=out)


def worker_site(study: Path, out: Path, mode: str) -> dict:
    from coverage.config import load_study
    from coverage.proposals import propose_sites

    config = _with_output(load_study(study), out)
    marks: list[tuple[str, float]] = []

    def echo(line: str) -> None:
        marks.append((line.strip().lstrip("…").strip(), time.perf_counter()))

    start = time.perf_counter()
    kwargs = {"add": {"add": 20}, "add_gap": {"add": 20, "mip_rel_gap": 0.005}}.get(mode, {"target_share": 0.6})
    proposal = propose_sites(config, kind="mutual_aid", echo=echo, **kwargs)
    end = time.perf_counter()
    stages = {}
    for (name, t), nxt in zip(marks, [m[1] for m in marks[1:]] + [end]):
        stages[name] = nxt - t
    result = proposal.result
    return {"seconds": end - start, "stages": stages, "peak_mb": _peak_mb(), "selected": len(result.selected),
            "status": getattr(result, "status", None), "method": getattr(result, "method", None),
            "gap": getattr(result, "gap", None),
            "share_after": getattr(result, "share_after", None), "candidates": len(proposal.candidates)}


def load_before_module(ref: str):
    """coverage/reach.py as of ``ref`` (read with ``git show``), as a module; None when unavailable."""
    try:
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{ref}:coverage/reach.py"],
                                check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("reach_before")
    module.__file__ = f"git:{ref}:coverage/reach.py"
    sys.modules["reach_before"] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - our own file at another commit
    return module


def worker_catchment(study: Path, out: Path, which: str, before: str) -> dict:
    """Time catchment_matrix on the site command's candidates × homes (``which``: now or before)."""
    from coverage import pipeline, reach
    from coverage.config import load_study
    from coverage.proposals import screened_candidates

    config = _with_output(load_study(study), out)
    inputs = pipeline.prepare_inputs(config, pipeline.StageTimer(), [])
    _, candidate_snap, _ = screened_candidates(config, inputs, spacing_m=200.0, candidates_file=None,
                                               candidates_crs="gcj02")
    module = reach if which == "now" else load_before_module(before)
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    matrix = module.catchment_matrix(inputs.net, candidate_snap, inputs.demand_snap, walk_speed_mps=0.8, limit=900.0,
                                     ferry=config.parameters.ferry)
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    np.savez(out / f"catchment_{which}.npz", indptr=matrix.indptr, indices=matrix.indices, data=matrix.data)
    return {"seconds": seconds, "page_faults": faults, "nnz": int(matrix.nnz), "shape": list(matrix.shape),
            "nodes": inputs.net.n_nodes, "edges": inputs.net.n_edges, "peak_mb": _peak_mb()}


def run_worker(args: list[str], timeout: float | None = None, code: Path | None = None,
               cache: Path | None = None) -> dict:
    """
    Run one worker in a fresh process; its JSON answer, or {'error': …}.

    ``code``: a checkout whose ``coverage`` package the worker imports
    instead of this one's (the ``--compare`` runs). ``cache``: the parsed
    networks' cache folder (``ELDERCOV_CACHE``): an empty one makes the run
    cold. The answer's ``wall_seconds`` is the process's, imports included
    (what a planner waits for); ``seconds`` is the run's own.
    """
    command = [sys.executable, "-W", "ignore", str(Path(__file__).resolve()), "--worker", *args]
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    if cache is not None:
        env["ELDERCOV_CACHE"] = str(cache)
    start = time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=code or REPO, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {timeout:.0f} s", "seconds": time.perf_counter() - start}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr or done.stdout)[-2000:], "seconds": time.perf_counter() - start}
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the worker's CPU seconds (all its threads, its imports included)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {**json.loads(lines[-1]), "cpu_seconds": cpu, "wall_seconds": wall}


# ---------------------------------------------------------------- report


def speed_reference(repeats: int = 3) -> dict:
    """
    Seconds of two fixed workloads (best of ``repeats``): how fast this machine is today.

    The same VM type ran the same code 19–21 s one day and 24–30 s the
    next; these two figures, printed with every section, tell a slower
    machine from slower code. ``python``: a pure-Python loop of 5 million
    additions (what the GIL-bound writers do); ``geos``: the union of 4,000
    buffered random segments (what the isochrones do).
    """
    import shapely

    rng = np.random.default_rng(0)
    start = rng.uniform(0, 20_000, (4_000, 2))
    segments = shapely.linestrings(np.stack([start, start + rng.normal(0, 150, (4_000, 2))], axis=1))
    best = {"python": np.inf, "geos": np.inf}
    for _ in range(repeats):
        t = time.perf_counter()
        total = 0
        for i in range(5_000_000):
            total += i
        best["python"] = min(best["python"], time.perf_counter() - t)
        t = time.perf_counter()
        shapely.union_all(shapely.buffer(segments, 50.0, quad_segs=4))
        best["geos"] = min(best["geos"], time.perf_counter() - t)
    return best


def machine() -> dict:
    lscpu = subprocess.run("lscpu | head -15", shell=True, capture_output=True, text=True).stdout
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"lscpu": lscpu.rstrip(), "nproc": os.cpu_count(), "ram_gb": mem_gb, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load": os.getloadavg(),
            "speed": speed_reference()}


def map_open_seconds(path: Path, loads: int = 3) -> dict:
    """
    How long the county map takes to open in headless Chromium (issue #14 item 3: under 3 s), best of ``loads``.

    ``domContentLoadedEventEnd`` of the page opened from ``file://`` (the
    page's own scripts, which add every layer, have run; the basemap tiles
    load after it and do not resolve here), and the layers the layer control
    lists. Needs Debian's chromium and chromium-driver (``scripts/ensure_browser.sh``).
    """

    chromium, driver_path = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
    if not (chromium.exists() and driver_path.exists()):
        return {"error": "no /usr/bin/chromium and /usr/bin/chromedriver (scripts/ensure_browser.sh)"}
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory(prefix="bench_chromium_") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(chromium)
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--no-first-run", "--window-size=1400,1000",
                    f"--user-data-dir={profile}"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(str(driver_path)), options=options)
        driver.set_page_load_timeout(120)
        try:
            seconds = []
            for _ in range(loads):
                driver.get(path.resolve().as_uri())
                WebDriverWait(driver, 60).until(
                    ec.presence_of_element_located((By.CSS_SELECTOR, ".leaflet-control-layers")))
                seconds.append(driver.execute_script(
                    "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;") / 1000.0)
            layers = len(driver.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers-overlays label"))
        finally:
            driver.quit()
    return {"seconds": seconds, "best": min(seconds), "layers": layers, "mb": path.stat().st_size / 1e6}


def compare_runs(study: Path, rev: str, repeats: int, out: Path) -> dict:
    """
    The full run with the code of ``rev`` and with this checkout's, alternately, ``repeats`` times each.

    The machine's speed drifts by tens of per cent within an hour; runs
    made one after the other in pairs see the same machine. Returns each
    side's seconds and the ratio (this / rev) per pair; the 14 CSV tables
    of the last pair are compared byte for byte.
    """

    pairs, cpus, walls = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench_rev_") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            for _ in range(repeats):
                before = run_worker(["run", str(study), str(out / "compare_before")], code=tree)
                now = run_worker(["run", str(study), str(out / "compare_now")])
                if "error" in before or "error" in now:
                    return {"error": (before.get("error") or now.get("error"))[-500:]}
                pairs.append((before["seconds"], now["seconds"]))
                cpus.append((before["cpu_seconds"], now["cpu_seconds"]))
                walls.append((before["wall_seconds"], now["wall_seconds"]))
                print(f"  compare {rev}: {before['seconds']:.1f} s ({before['cpu_seconds']:.1f} CPU s), "
                      f"now {now['seconds']:.1f} s ({now['cpu_seconds']:.1f} CPU s)", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    differing = [p.name for p in sorted((out / "compare_before").glob("*.csv"))
                 if not (out / "compare_now" / p.name).exists()
                 or p.read_bytes() != (out / "compare_now" / p.name).read_bytes()]
    return {"rev": rev, "pairs": pairs, "cpu": cpus, "walls": walls, "ratios": [n / b for b, n in pairs],
            "tables_differing": differing}


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def render(info: dict, studies: list[dict], runs: list[dict], site: dict, catch: dict) -> str:
    lines = ["## County batch job (`bench_county.py`, issue #14 item 6)", ""]
    m = info["machine"]
    lines += [f"Run of {m['date']} (load average at start {m['load'][0]:.1f}, at end {info['load_end'][0]:.1f}); "
              f"nproc {m['nproc']}, RAM {m['ram_gb']:.1f} GB, Python {m['python']}, nice -n 10. "
              + (f"Speed reference (`speed_reference`, best of 3): pure-Python loop {m['speed']['python']:.2f} s, "
                 f"GEOS union {m['speed']['geos']:.2f} s." if "speed" in m else ""), "",
              "```", m["lscpu"], "```", ""]
    stages = []
    for run in runs:
        for name in run.get("timings", {}):
            if name not in stages:
                stages.append(name)
    head = "| window | area km² | populated cells (demand points) | 60+ | facilities | admin units | street nodes | " \
           + " | ".join(f"{s} s" for s in stages) + " | total s | peak RSS | outputs |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for study, run in zip(studies, runs):
        if "error" in run:
            lines.append(f"| {study['fraction']:g} | failed: {run['error'][-300:]!r} |")
            continue
        t = run["timings"]
        lines.append(
            f"| {study['fraction']:g} | {study['area_km2']:,.0f} | {run['demand_points']:,} | {run['elderly']:,.0f} | "
            f"{study['facilities']:,} | {study['units']} | {study['network']['junctions']:,} | "
            + " | ".join(f"{t.get(s, 0):.1f}" for s in stages)
            + f" | {run['seconds']:.1f} | {run['peak_mb'] / 1024:.2f} GB | {fmt_bytes(sum(run['files'].values()))}"
            + (" (no map: the map writer failed)" if run.get("map_error") else "") + " |")
    lines += ["", "Cold (empty network cache: the street file parsed) and warm (the same run again), in the run and as "
              "the command's wall time (imports included: what a planner waits for):", "",
              "| window | cold run s | cold command s | warm run s | warm command s | warm CPU s (all threads) |",
              "|---|---:|---:|---:|---:|---:|"]
    for study, run in zip(studies, runs):
        cold = run.get("cold") or {}
        if "error" in run or not cold or cold.get("error"):
            continue
        lines.append(f"| {study['fraction']:g} | {cold['seconds']:.1f} | {cold['wall_seconds']:.1f} | "
                     f"{run['seconds']:.1f} | {run['wall_seconds']:.1f} | {run['cpu_seconds']:.1f} |")
    lines += ["", "Growth (full window against the smaller ones; exponent b in cost ∝ cells^b):", "",
              "| window | populated cells | total s | s per 1,000 cells | peak RSS GB | outputs MB | b (time, vs previous) |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    previous = None
    for study, run in zip(studies, runs):
        if "error" in run:
            continue
        cells = run["demand_points"]
        b = "" if previous is None else f"{np.log(run['seconds'] / previous[1]) / np.log(cells / previous[0]):.2f}"
        lines.append(f"| {study['fraction']:g} | {cells:,} | {run['seconds']:.1f} | {1000 * run['seconds'] / cells:.2f} | "
                     f"{run['peak_mb'] / 1024:.2f} | {sum(run['files'].values()) / 1e6:.1f} | {b} |")
        previous = (cells, run["seconds"])
    if runs and "files" in runs[-1]:
        lines += ["", f"Output files of the full window (measured {runs[-1]['written_at']}):", "",
                  "| file | size |", "|---|---:|"]
        for name, size in sorted(runs[-1]["files"].items(), key=lambda kv: -kv[1]):
            lines.append(f"| {name} | {fmt_bytes(size)} |")
        lines.append(f"| **total** | **{fmt_bytes(sum(runs[-1]['files'].values()))}** |")
    opened = info.get("map_open")
    if opened and "error" not in opened:
        lines += ["", f"The full window's map ({opened['mb']:.2f} MB) opened in headless Chromium (`file://`, "
                  f"`domContentLoadedEventEnd`, every layer added) in {', '.join(f'{x:.2f}' for x in opened['seconds'])} s "
                  f"(best {opened['best']:.2f} s; target 3 s); its layer control lists {opened['layers']} layers."]
    elif opened:
        lines += ["", f"Map not opened in a browser: {opened['error']}"]
    compare = info.get("compare")
    if compare and "error" not in compare:
        lines += ["", f"Full window, the code of `{compare['rev']}` and this checkout's run in pairs (one after the "
                  "other, same inputs, same machine):", "",
                  "| pair | before run s | now run s | now / before | before command s | now command s | "
                  "before CPU s | now CPU s |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        walls = compare.get("walls") or [(np.nan, np.nan)] * len(compare["pairs"])
        for i, ((before, now), ratio, (cpu_b, cpu_n), (wall_b, wall_n)) in enumerate(
                zip(compare["pairs"], compare["ratios"], compare["cpu"], walls), start=1):
            lines.append(f"| {i} | {before:.1f} | {now:.1f} | {ratio:.2f} | {wall_b:.1f} | {wall_n:.1f} | "
                         f"{cpu_b:.1f} | {cpu_n:.1f} |")
        differing = compare["tables_differing"]
        best_b, best_n = min(b for b, _ in compare["pairs"]), min(n for _, n in compare["pairs"])
        wall_ratio = np.median([n / b for b, n in walls])
        lines += ["", f"Median ratio {np.median(compare['ratios']):.2f} in the run, {wall_ratio:.2f} as the command "
                  f"(imports included: what a planner waits for); fastest of each side {best_b:.1f} / "
                  f"{best_n:.1f} s ({best_n / best_b:.2f}); CSV tables of the last pair: "
                  + ("byte-identical." if not differing else f"differ in {', '.join(differing)}.")]
    elif compare:
        lines += ["", f"Comparison failed: {compare['error']!r}"]
    lines += ["", "Siting at the full window (`propose_sites`, kind mutual_aid, 15 min, 200 m candidate spacing):", "",
              "| command | total s | stages (s) | peak RSS | result |", "|---|---:|---|---:|---|"]
    for mode, result in site.items():
        if "error" in result:
            lines.append(f"| site {mode} | {result['seconds']:.0f} | {result['error'][-200:]!r} | | |")
            continue
        stage_text = ", ".join(f"{k} {v:.1f}" for k, v in result["stages"].items())
        lines.append(f"| site {mode} | {result['seconds']:.1f} | {stage_text} | {result['peak_mb'] / 1024:.2f} GB | "
                     f"{result['selected']} sites, {result['status']}, gap {result.get('gap') or 0:.2%}, "
                     f"share after {result['share_after']:.3f}, "
                     f"{result['candidates']:,} candidates |")
    if catch:
        lines += ["", "`catchment_matrix` on the site command's candidates × homes (full window, 900 s at 0.8 m/s):", "",
                  "| version | seconds | minor page faults | nnz | peak RSS |", "|---|---:|---:|---:|---:|"]
        for which, result in catch.items():
            if which == "identical" or "error" in result:
                continue
            lines.append(f"| {which} | {result['seconds']:.1f} | {result['page_faults']:,} | {result['nnz']:,} | "
                         f"{result['peak_mb'] / 1024:.2f} GB |")
        if "identical" in catch:
            lines.append(f"\nSame matrix: {catch['identical']}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1 / 16, 1 / 4, 1.0])
    parser.add_argument("--out", default="/tmp/bench_county")
    parser.add_argument("--no-site", action="store_true", help="skip the siting runs")
    parser.add_argument("--target-budget", type=float, default=300.0, help="seconds allowed for --target 0.6")
    parser.add_argument("--before", default="HEAD", help="commit whose catchment_matrix is the 'before' ('' skips)")
    parser.add_argument("--write", default=None, help="append the section to this results file")
    parser.add_argument("--compare", default=None, metavar="REV",
                        help="also run the full window with the code of REV and with this checkout's, in pairs")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of --compare runs")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "run":
            answer = worker_run(Path(rest[0]), Path(rest[1]))
        elif kind == "site":
            answer = worker_site(Path(rest[0]), Path(rest[1]), rest[2])
        else:
            answer = worker_catchment(Path(rest[0]), Path(rest[1]), rest[2], rest[3])
        print(json.dumps(answer, default=str), flush=True)
        try:  # the process ends as `eldercov` ends (its wall time is the command's); an older revision's may not
            from coverage.batch_gc import exit_without_teardown
        except ImportError:
            return 0
        return exit_without_teardown(0)

    if not SHARED.is_dir():
        print(f"no reference data at {SHARED}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"machine": machine()}
    outline = county_outline()
    county_cells = raster_cells(outline.buffer(0.01).bounds)
    county_people = people_inside(outline, county_cells)[0]
    studies, runs = [], []
    for fraction in sorted(args.fractions):
        folder = out / f"window_{fraction:g}"
        study = build_study(folder, fraction, outline, county_cells, county_people)
        print(f"window {fraction:g}: {json.dumps(study, default=str)}", flush=True)
        # cold: an empty network cache (the street file parsed); warm: the same run again (the cache read)
        cache = Path(tempfile.mkdtemp(prefix="bench_cache_"))
        try:
            cold = run_worker(["run", str(folder / "study.yaml"), str(folder / "outputs")], cache=cache)
            run = run_worker(["run", str(folder / "study.yaml"), str(folder / "outputs")], cache=cache)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        run["cold"] = {k: cold.get(k) for k in ("seconds", "wall_seconds", "cpu_seconds", "timings", "error")}
        print(f"  run (warm): {json.dumps(run, default=str)[:1500]}", flush=True)
        studies.append(study)
        runs.append(run)
    site, catch = {}, {}
    full = out / f"window_{max(args.fractions):g}"
    if not args.no_site:
        site["--add 20"] = run_worker(["site", str(full / "study.yaml"), str(full / "outputs"), "add"])
        print(f"  site --add 20: {json.dumps(site['--add 20'], default=str)[:1500]}", flush=True)
        site["--add 20 --gap 0.005"] = run_worker(["site", str(full / "study.yaml"), str(full / "outputs"), "add_gap"])
        print(f"  site --add 20 --gap 0.005: {json.dumps(site['--add 20 --gap 0.005'], default=str)[:1500]}",
              flush=True)
        site["--target 0.6"] = run_worker(["site", str(full / "study.yaml"), str(full / "outputs"), "target"],
                                          timeout=args.target_budget)
        print(f"  site --target 0.6: {json.dumps(site['--target 0.6'], default=str)[:1500]}", flush=True)
        versions = ["now"] + ([f"before ({args.before})"] if args.before else [])
        for which in versions:
            key = "now" if which == "now" else "before"
            catch[which] = run_worker(["catchment", str(full / "study.yaml"), str(full / "outputs"), key,
                                       args.before or "HEAD"])
            print(f"  catchment {which}: {json.dumps(catch[which], default=str)}", flush=True)
        if len(versions) == 2 and all("error" not in catch[v] for v in versions):
            a, b = np.load(full / "outputs" / "catchment_now.npz"), np.load(full / "outputs" / "catchment_before.npz")
            same = all(np.array_equal(a[k], b[k]) for k in ("indptr", "indices"))
            diff = float(np.max(np.abs(a["data"] - b["data"]))) if same and len(a["data"]) else 0.0
            catch["identical"] = (f"sparsity pattern {'equal' if same else 'DIFFERENT'}, "
                                  f"nnz {len(a['data']):,} / {len(b['data']):,}, max abs diff {diff:.1e} s")
    maps = sorted((full / "outputs").glob("*_map.html"))
    if maps:
        info["map_open"] = map_open_seconds(maps[0])
        print(f"  map opened in Chromium: {json.dumps(info['map_open'])}", flush=True)
    if args.compare:
        info["compare"] = compare_runs(full / "study.yaml", args.compare, args.repeats, full)
    info["load_end"] = os.getloadavg()
    text = render(info, studies, runs, site, catch)
    print(text)
    (out / "results.json").write_text(json.dumps({"info": info, "studies": studies, "runs": runs, "site": site,
                                                  "catchment": catch}, default=str, indent=1))
    if args.write:
        with open(args.write, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
