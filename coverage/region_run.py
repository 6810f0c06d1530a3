"""Run a region study: one task per area on a dask.distributed cluster, failures recorded, finished areas skipped."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import resource
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from coverage import __version__, ingest, targets
from coverage._errors import CoverageError
from coverage._io import atomic_path
from coverage.pipeline import run_study
from coverage.region import (
    AREA_COVERAGE, AREA_RECORD, AREA_TARGETS, FAILURE_COLUMNS, AreaSpec, RegionConfig, area_key, area_record_inputs, area_study, buffered_outline, cut_osm, read_osm_extract,
    region_input_checksums, write_area_units,
)

#: memory assumed per worker process when sizing a LocalCluster (bytes): a county-sized area peaks near 1.5 GB
WORKER_MEMORY_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class AreaTask:
    """Everything one area's task needs (sent to a worker; small: paths, the area and the region study)."""

    region: RegionConfig
    area: AreaSpec
    key: str
    lang: str = "zh"
    make_map: bool = True


@dataclass(frozen=True)
class AreaOutcome:
    """
    What one area's task returns.

    Attributes
    ----------
    code, name
        The area.
    status
        ``done``, ``skipped`` (outputs complete and current) or ``failed``.
    stage
        For a failure: the stage that raised (``cut``, a pipeline stage such as ``network``, or ``region tables``).
    message
        For a failure: the error message.
    seconds
        Wall time of the task (0 when skipped).
    peak_rss_mb
        Peak resident memory of the worker process so far (MiB; the process's high-water mark).
    worker_pid
        The process that ran it.
    extract_reads
        How many times that process has read the region's network extract (1 when it is read once per worker).
    record
        The area's ``area_record.json``.
    run_seconds
        Of ``seconds``, the time inside :func:`coverage.pipeline.run_study`; the rest is the region's own
        work (cutting the inputs, the region tables, the record).
    cpu_seconds
        CPU time of the task (user + system, this process), less sensitive than wall time to other jobs.
    """

    code: str
    name: str
    status: str
    stage: str = ""
    message: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = math.nan
    worker_pid: int = 0
    extract_reads: int = 0
    record: Path | None = None
    run_seconds: float = 0.0
    cpu_seconds: float = 0.0


# One region extract per worker process, keyed by path, size and modification time: every area a
# worker runs is cut from the same read. Module-level on purpose (a worker process's cache, never
# shared state between areas' results); cleared with _cached_extract.cache_clear().
@functools.lru_cache(maxsize=2)
def _cached_extract(path: str, size: int, mtime_ns: int):
    return read_osm_extract(path)


@functools.lru_cache(maxsize=2)
def _cached_units(path: str, crs: str, layer, size: int, mtime_ns: int):
    return ingest.read_units(path, crs=crs, layer=layer)


def _stat_key(path: Path) -> tuple[int, int]:
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def _peak_rss_mb() -> float:
    # Linux reports kilobytes
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def own_facilities(results) -> pd.DataFrame:
    """The area's own facilities (inside its study area, or placed in its units without a point)."""
    facilities = results.facilities
    if results.presence_only is not None and len(results.presence_only):
        facilities = pd.concat([facilities, results.presence_only], ignore_index=True)
    import geopandas as gpd

    facilities = gpd.GeoDataFrame(facilities, geometry="geometry", crs="EPSG:4326")
    units = results.units
    polygons = units[units.geometry.notna() & units.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        return facilities
    area = shapely.union_all(np.asarray(polygons.geometry.values))
    has_point = facilities.geometry.notna().to_numpy()
    inside = np.zeros(len(facilities), dtype=bool)
    inside[has_point] = shapely.covers(area, np.asarray(facilities.geometry.values)[has_point])
    return facilities[inside | ~has_point].reset_index(drop=True)


def target_parts(results) -> pd.DataFrame:
    """
    The area's targets table with each target's numerator and denominator (persons, units, beds …).

    The region's totals add these up (covered elderly over elderly, units met
    over units), never the areas' percentages. Reach comes from the area's
    run (cross-border facilities included when so configured); facility
    counts and capacities are the area's own facilities, so that a facility
    across a border is counted once in the region.
    """
    table = results.targets.copy()
    if table.empty:
        return table.assign(numerator=pd.Series(dtype=float), denominator=pd.Series(dtype=float))
    config = results.config
    params = config.parameters
    # the measure behind each row: the same evaluators the targets table came from
    inputs = targets.TargetInputs(
        demand=results.demand_projected, seconds_by_kind=results.seconds_by_kind,
        metres_by_kind=results.metres_by_kind, units=results.units, facilities=own_facilities(results),
        villages=results.villages, thresholds_min=tuple(params.thresholds_min),
        distance_thresholds_m=tuple(params.distance_thresholds_m),
    )
    numerators, denominators = {}, {}
    for target in targets.select_study_targets(config):
        measure = targets.measure_target(target, inputs)
        numerators[target.id] = math.nan if measure.no_data else float(measure.numerator)
        denominators[target.id] = math.nan if measure.no_data else float(measure.denominator)
    table["numerator"] = table["target_id"].map(numerators)
    table["denominator"] = table["target_id"].map(denominators)
    return table


def headline_coverage(results) -> pd.DataFrame:
    """The area's whole-study coverage rows (every kind and threshold) of its long coverage table."""
    table = results.coverage_long
    return table[table["scope"] == "study"].reset_index(drop=True)


def _write_table(table: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
    return path


def _relative(paths, root: Path) -> list[str]:
    out = []
    for path in paths:
        path = Path(path)
        out.append(str(path.relative_to(root)) if path.is_relative_to(root) else str(path))
    return sorted(out)


def run_area(task: AreaTask) -> AreaOutcome:
    """
    One area end to end, in a worker: cut its inputs, run its study, write its tables and record.

    Never raises: an error becomes a ``failed`` outcome naming the stage and
    the message (and a record saying so, so that a rerun tries it again).
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    run_seconds = 0.0
    region, area = task.region, task.area
    out_dir = region.area_dir(area.code)
    stage = ["cut"]

    def echo(line: str) -> None:
        # run_study says "  … <stage>" as each stage begins: the stage a failure happened in
        text = line.strip().lstrip("…").strip()
        if text:
            stage[0] = text

    record_path = out_dir / AREA_RECORD
    try:
        study = region.study
        extract = _cached_extract(str(study.network), *_stat_key(study.network))
        units = _cached_units(str(study.units.path), study.units.crs, study.units.layer,
                              *_stat_key(study.units.path))
        if not area.unit_codes:
            raise CoverageError(f"the area {area.code} ({area.name}) holds no unit of inputs.units "
                                "/ 该区域内没有行政单位")
        inputs_dir = out_dir / "_inputs"
        network_path, units_path = inputs_dir / "network.osm", inputs_dir / "units.geojson"
        counts = cut_osm(extract, buffered_outline(area.outline, region.buffer_m), network_path)
        if counts["ways"] == 0:
            raise CoverageError(f"no street of the network extract {study.network} lies within "
                                f"{region.buffer_m:g} m of the area / 区域内及缓冲区内没有道路")
        write_area_units(units, area, units_path)
        config = area_study(region, area, network_path, units_path)
        stage[0] = "units"
        run_start = time.perf_counter()
        results = run_study(config, lang=task.lang, write=True, make_map=task.make_map, echo=echo)
        run_seconds = round(time.perf_counter() - run_start, 3)
        stage[0] = "region tables"
        files = [Path(p) for p in results.output_files.values()]
        files.append(_write_table(target_parts(results), out_dir / AREA_TARGETS))
        files.append(_write_table(headline_coverage(results), out_dir / AREA_COVERAGE))
        seconds = round(time.perf_counter() - start, 3)
        record = {
            "area": {"code": area.code, "name": area.name, "level": area.level, "units": len(area.unit_codes)},
            "status": "done", "key": task.key, "package_version": __version__,
            "buffer_m": region.buffer_m, "cross_border_facilities": region.cross_border_facilities,
            "cut": counts, "inputs": area_record_inputs({"network": network_path, "units": units_path}),
            "outputs": _relative(files, out_dir), "seconds": seconds, "peak_rss_mb": round(_peak_rss_mb(), 1),
            "run_record": "run.json", "worker_pid": os.getpid(),
        }
        _write_json(record, record_path)
        return AreaOutcome(code=area.code, name=area.name, status="done", seconds=seconds,
                           peak_rss_mb=_peak_rss_mb(), worker_pid=os.getpid(),
                           extract_reads=_cached_extract.cache_info().misses, record=record_path,
                           run_seconds=run_seconds, cpu_seconds=round(time.process_time() - cpu_start, 3))
    except Exception as exc:  # noqa: BLE001 - one area's failure must never stop the others
        message = str(exc) or type(exc).__name__
        if not isinstance(exc, CoverageError):
            # an unexpected error: keep the last frames, so it can be reported
            message = f"{type(exc).__name__}: {message}\n" + "".join(traceback.format_exc(limit=-3))
        seconds = round(time.perf_counter() - start, 3)
        _write_json({"area": {"code": area.code, "name": area.name}, "status": "failed", "stage": stage[0],
                     "message": message, "key": task.key, "seconds": seconds}, record_path)
        return AreaOutcome(code=area.code, name=area.name, status="failed", stage=stage[0], message=message,
                           seconds=seconds, peak_rss_mb=_peak_rss_mb(), worker_pid=os.getpid(),
                           extract_reads=_cached_extract.cache_info().misses, record=record_path,
                           run_seconds=run_seconds, cpu_seconds=round(time.process_time() - cpu_start, 3))


def _write_json(record: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path


def area_is_current(region: RegionConfig, area: AreaSpec, key: str) -> bool:
    """Whether the area's record says ``done`` with this key and every output it lists exists."""
    out_dir = region.area_dir(area.code)
    try:
        record = json.loads((out_dir / AREA_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if record.get("status") != "done" or record.get("key") != key:
        return False
    return all((out_dir / name).exists() for name in record.get("outputs", [])) and bool(record.get("outputs"))


@dataclass(frozen=True)
class RegionResults:
    """
    A region run.

    Attributes
    ----------
    region
        The region study.
    outcomes
        One :class:`AreaOutcome` per area, in the region's order.
    failed
        The failed areas (:data:`FAILURE_COLUMNS`).
    output_files
        Name → path of the combined outputs.
    dashboard_link
        The Dask dashboard of the cluster, when there was one.
    n_workers
        Worker processes of the cluster (0 for a serial run).
    seconds
        Wall time of the whole run.
    """

    region: RegionConfig
    outcomes: tuple[AreaOutcome, ...]
    failed: pd.DataFrame
    output_files: dict[str, Path] = field(default_factory=dict)
    dashboard_link: str | None = None
    n_workers: int = 0
    seconds: float = 0.0

    @property
    def computed(self) -> tuple[str, ...]:
        """Codes of the areas computed in this run (done or failed, not skipped)."""
        return tuple(o.code for o in self.outcomes if o.status != "skipped")

    @property
    def skipped(self) -> tuple[str, ...]:
        """Codes of the areas whose outputs were complete and current."""
        return tuple(o.code for o in self.outcomes if o.status == "skipped")


def default_workers(n_areas: int, *, cores: int | None = None, memory_bytes: int | None = None) -> int:
    """
    Worker processes for a LocalCluster: one per core, as many as memory allows, at most one per area.

    Parameters
    ----------
    n_areas
        Areas to compute.
    cores
        Cores available; default those this process may use.
    memory_bytes
        Memory available; default the machine's total.
    """
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if memory_bytes is None:
        memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    by_memory = max(1, int(memory_bytes // WORKER_MEMORY_BYTES))
    return max(1, min(cores, by_memory, max(n_areas, 1)))


def local_cluster(n_workers: int):
    """
    A ``distributed.LocalCluster`` for a region run: ``n_workers`` processes of one thread, memory shared out.

    Parameters
    ----------
    n_workers
        Worker processes (:func:`default_workers`).
    """
    import dask
    from distributed import LocalCluster

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers; an explicit threshold also stops glibc from
    # raising its mmap threshold, so every large array is a fresh mmap: 4× the page faults and
    # 10–25 % more CPU for an area here. One area at a time per worker bounds memory anyway.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                            memory_limit=max(int(memory // n_workers), WORKER_MEMORY_BYTES // 2),
                            dashboard_address=":0")


def _connect(client, scheduler: str | None, n_workers: int):
    """A client: the one given, one on ``scheduler`` (or the Dask configuration's), else a new LocalCluster."""
    import dask
    from distributed import Client

    if client is not None:
        return client, None
    address = scheduler or dask.config.get("scheduler-address", None)
    if address:
        return Client(address), None
    cluster = local_cluster(n_workers)
    return Client(cluster), cluster


def run_region(
    region: RegionConfig,
    *,
    client=None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    force: bool = False,
    lang: str = "zh",
    make_map: bool = True,
    serial: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    write: bool = True,
) -> RegionResults:
    """
    Run every area of a region study, one task per area, and write the combined outputs.

    Parameters
    ----------
    region
        :func:`coverage.region.load_region`.
    client
        An existing ``distributed.Client``; it is left open.
    scheduler
        Address of an existing scheduler (``tcp://host:8786``); without it and
        without ``client``, the Dask configuration's ``scheduler-address``, else
        a LocalCluster of ``n_workers`` processes (one thread each).
    n_workers
        Workers of a new LocalCluster; default :func:`default_workers`.
    force
        Redo areas whose outputs are complete and current.
    lang, make_map
        As for :func:`coverage.pipeline.run_study` (each area's tables and map).
    serial
        Run the areas one after the other in this process (no Dask): the benchmark's reference.
    progress
        A progress bar over areas.
    echo
        Called with lines for the planner (dashboard link, skipped areas).
    write
        Write the combined outputs (:func:`coverage.region_outputs.write_region_outputs`).

    Returns
    -------
    RegionResults
    """
    from tqdm import tqdm

    start = time.perf_counter()
    say = echo or (lambda line: None)
    checksums = region_input_checksums(region.study)
    keys = {a.code: area_key(region, a, checksums, package_version=__version__, lang=lang, make_map=make_map)
            for a in region.areas}
    outcomes: dict[str, AreaOutcome] = {}
    todo = []
    for area in region.areas:
        if not force and area_is_current(region, area, keys[area.code]):
            outcomes[area.code] = AreaOutcome(code=area.code, name=area.name, status="skipped",
                                              record=region.area_dir(area.code) / AREA_RECORD)
        else:
            todo.append(area)
    if outcomes:
        say(f"{len(outcomes)} area(s) already complete and current, skipped (--force redoes them) "
            f"/ 已完成的区域跳过 {len(outcomes)} 个")
    # largest first: the long areas start at once, the small ones fill the gaps at the end
    todo.sort(key=lambda a: -a.size_m2)
    tasks = [AreaTask(region=region, area=a, key=keys[a.code], lang=lang, make_map=make_map) for a in todo]
    dashboard, workers = None, 0
    bar = tqdm(total=len(tasks), desc=region.study.name, unit="area", disable=None if progress else True)
    if serial or not tasks:
        for task in tasks:
            outcome = run_area(task)
            outcomes[outcome.code] = outcome
            bar.update(1)
    else:
        from distributed import as_completed

        own_client, cluster = _connect(client, scheduler, n_workers or default_workers(len(tasks)))
        try:
            dashboard = getattr(own_client, "dashboard_link", None)
            if dashboard:
                say(f"Dask dashboard / 任务面板: {dashboard}")
            workers = len(own_client.scheduler_info().get("workers", {}))
            futures = [own_client.submit(run_area, task, priority=len(tasks) - rank, pure=False,
                                         key=f"area-{task.area.code}-{task.key[:12]}-{time.time_ns()}")
                       for rank, task in enumerate(tasks)]
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker lost (killed, out of memory): the area failed
                    code = next(t.area for t in tasks if future.key.startswith(f"area-{t.area.code}-"))
                    outcome = AreaOutcome(code=code.code, name=code.name, status="failed", stage="worker",
                                          message=f"{type(exc).__name__}: {exc}")
                outcomes[outcome.code] = outcome
                bar.update(1)
                bar.set_postfix_str(outcome.name)
        finally:
            if client is None:
                own_client.close()
                if cluster is not None:
                    cluster.close()
    bar.close()
    ordered = tuple(outcomes[a.code] for a in region.areas)
    failed = pd.DataFrame([{"code": o.code, "name": o.name, "stage": o.stage, "message": o.message}
                           for o in ordered if o.status == "failed"], columns=list(FAILURE_COLUMNS))
    results = RegionResults(region=region, outcomes=ordered, failed=failed, dashboard_link=dashboard,
                            n_workers=workers, seconds=round(time.perf_counter() - start, 3))
    if write:
        from coverage.region_outputs import write_region_outputs

        files = write_region_outputs(results, lang=lang, make_map=make_map)
        results = dataclasses.replace(results, output_files=files)
    return results
