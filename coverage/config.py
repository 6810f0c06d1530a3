"""Read and check a study configuration file (YAML) into plain dataclasses."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from coverage import profiles
from coverage._errors import ConfigError
from coverage.ferry import FerryPolicy
from coverage.kinds import kind_ids

#: facility kinds known to the package, in display order (the registry coverage/kinds.yaml)
KINDS: tuple[str, ...] = kind_ids()

#: coordinate systems a tabular input may use
COORDINATE_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09", "cgcs2000")

#: basemaps of the HTML map (``outputs.basemap``); tianditu needs a key in :data:`TIANDITU_KEY_ENV`
BASEMAPS: tuple[str, ...] = ("osm", "cartodbpositron", "tianditu", "amap")
#: environment variable holding the Tianditu (天地图) key
TIANDITU_KEY_ENV = "TIANDITU_KEY"

#: top-level sections of a study file
#: (``region:`` is read by :mod:`coverage.region` for ``eldercov region``; a plain run ignores it)
STUDY_SECTIONS: tuple[str, ...] = ("study", "inputs", "parameters", "targets", "outputs", "region", "scenarios")


@dataclass(frozen=True)
class FacilitySource:
    """
    One facility table: its path, the coordinate system of its lon/lat columns and how to read it.

    ``crs`` None: not stated (a POI export's own system, else WGS-84);
    ``sheet`` may be ``"all"`` or a tuple of sheet names; ``kinds`` is a
    YAML of extra type names (layout of ``coverage/kinds.yaml``).
    """

    path: Path
    crs: str | None = None
    sheet: str | int | tuple[str, ...] | None = None
    encoding: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    kinds: Path | None = None


@dataclass(frozen=True)
class ExclusionSource:
    """A polygon layer of areas where no new facility may be sited (生态保护红线, 基本农田, 水域 …)."""

    path: Path
    crs: str = "wgs84"
    layer: str | None = None
    label: str = ""


@dataclass(frozen=True)
class UnitSource:
    """Administrative units: polygons (GeoJSON/GPKG/SHP) or a division-code table (CSV)."""

    path: Path
    crs: str = "wgs84"
    layer: str | None = None


@dataclass(frozen=True)
class PopulationSource:
    """
    Elderly demand: age/sex band rasters, optionally calibrated to census totals.

    ``rasters`` is a list of GeoTIFF paths (globs already expanded). ``census``
    is an optional table with unit codes and totals of the chosen age group.
    """

    rasters: tuple[Path, ...] = ()
    age_group: str = "60+"
    year: int = 2020
    census: Path | None = None
    census_code_column: str = "code"
    census_total_column: str = "elderly"
    census_level: str = "county"


@dataclass(frozen=True)
class AccessibilitySettings:
    """
    ``parameters.accessibility``: the run's 2SFCA, capacity-aware coverage and equity tables.

    ``kinds`` empty = every kind of ``parameters.kinds`` that walks (kinds
    without a facility are left out with a note); ``minutes`` the catchment
    (minutes); ``m2_per_place`` the floor area (m²) counted as one place for
    kinds whose capacity is a floor area (:data:`coverage.access_tables.M2_PER_PLACE`).
    """

    enabled: bool = True
    kinds: tuple[str, ...] = ()
    minutes: float = 15.0
    m2_per_place: float = 35.0


def _accessibility(raw) -> AccessibilitySettings:
    """Check ``parameters.accessibility`` (``true`` / ``false`` or a mapping)."""
    if raw is None:
        return AccessibilitySettings()
    if isinstance(raw, bool):
        return AccessibilitySettings(enabled=raw)
    raw = dict(_mapping(raw, "parameters.accessibility", "{enabled: true, kinds: [canteen], minutes: 15}"))
    unknown = sorted(set(map(str, raw)) - {"enabled", "kinds", "minutes", "m2_per_place"})
    if unknown:
        raise ConfigError(f"parameters.accessibility: unknown field(s) {', '.join(unknown)}; "
                          "known: enabled, kinds, minutes, m2_per_place")
    kinds_raw = raw.get("kinds") or ()
    kinds = (kinds_raw,) if isinstance(kinds_raw, str) else tuple(kinds_raw)
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"parameters.accessibility.kinds: unknown facility kind '{kind}'; "
                              f"known: {', '.join(KINDS)}")
    defaults = AccessibilitySettings()
    return AccessibilitySettings(
        enabled=_flag(raw.get("enabled", True), "parameters.accessibility.enabled"),
        kinds=kinds,
        minutes=_positive(raw.get("minutes", defaults.minutes), "parameters.accessibility.minutes"),
        m2_per_place=_positive(raw.get("m2_per_place", defaults.m2_per_place),
                               "parameters.accessibility.m2_per_place"),
    )


#: ``isochrone_thresholds: auto`` draws every threshold's isochrones up to this many walking edges; a larger
#: network gets the headline threshold's only. The map draws every threshold as vectors only while their areas hold
#: at most 360,000 vertices (4 × ``map_layers.VERTEX_BUDGET["isochrones"]``), else the headline's as images: a
#: quarter of Huangpi (92,418 edges) holds 305,000 and keeps them all, the county (333,811) 938,000 and draws the
#: headline only, a third of the polygon work
ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES = 100_000


@dataclass(frozen=True)
class Parameters:
    """
    Walking parameters. Speeds in metres per second, thresholds in minutes or metres.

    ``kind_profiles`` maps a facility kind to a travel profile id of
    :mod:`coverage.profiles` (``drive``, ``ebike``, ``walk_frail`` …); a
    kind not named walks. ``kind_thresholds_min`` gives a kind its own time
    thresholds (minutes), default ``thresholds_min``.
    ``isochrone_thresholds`` says which thresholds get isochrone polygons:
    ``all``, ``headline`` (the headline threshold only, as a county's map
    shows them) or ``auto`` (every threshold on a network of at most
    :data:`ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES` edges, else the headline);
    the walking-minutes raster holds every threshold either way.
    """

    walk_speed_mps: float = 0.8
    thresholds_min: tuple[float, ...] = (5.0, 10.0, 15.0)
    distance_thresholds_m: tuple[float, ...] = (300.0, 500.0, 1000.0)
    max_access_m: float = 500.0
    sensitivity_speeds_mps: tuple[float, ...] = (0.75, 0.8, 1.0, 1.1)
    kind_walk_speed_mps: dict[str, float] = field(default_factory=dict)
    kinds: tuple[str, ...] = KINDS
    ferry: FerryPolicy = field(default_factory=FerryPolicy)
    isochrone_buffer_m: float = 50.0
    isochrones_per_facility: bool = False
    isochrone_thresholds: str = "auto"
    gap_cells: bool = False
    h3_resolution: int | None = None
    exclude_osm_water: bool = True
    crs_check: str = "error"
    kind_profiles: dict[str, str] = field(default_factory=dict)
    kind_thresholds_min: dict[str, tuple[float, ...]] = field(default_factory=dict)
    accessibility: AccessibilitySettings = field(default_factory=AccessibilitySettings)

    def speed_for(self, kind: str) -> float:
        """
        Walking speed (m/s) used for facilities of ``kind``.

        ``kind_walk_speed_mps`` first, then the speed of a walking profile
        named in ``kind_profiles``, else ``walk_speed_mps``. (A kind with a
        non-walking profile has no walking speed of its own; this is then
        the study's walking speed.)
        """
        if kind in self.kind_walk_speed_mps:
            return float(self.kind_walk_speed_mps[kind])
        profile_id = self.kind_profiles.get(kind)
        if profile_id is not None:
            profile = profiles.get_profile(profile_id)
            if profiles.is_walking(profile):
                return float(profile.speed_mps)
        return float(self.walk_speed_mps)

    def thresholds_for(self, kind: str) -> tuple[float, ...]:
        """Time thresholds (minutes) reported for ``kind``: ``kind_thresholds_min`` or the study's."""
        return tuple(self.kind_thresholds_min.get(kind, self.thresholds_min))

    @property
    def headline_minutes(self) -> float:
        """The service-circle threshold reported as the headline (minutes): 15 when configured, else the longest."""
        return 15.0 if 15.0 in self.thresholds_min else max(self.thresholds_min)

    def isochrone_minutes_for(self, kind: str, n_edges: int) -> tuple[float, ...]:
        """
        The thresholds (minutes) of ``kind`` drawn as isochrones on a walking network of ``n_edges`` edges.

        Every threshold of the kind (:meth:`thresholds_for`) with
        ``isochrone_thresholds: all``, or ``auto`` on a network of at most
        :data:`ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES` edges; else the headline
        threshold (:attr:`headline_minutes`), or the kind's longest when it
        has its own thresholds without the headline.
        """
        thresholds = self.thresholds_for(kind)
        if self.isochrone_thresholds == "all" or (
                self.isochrone_thresholds == "auto" and n_edges <= ISOCHRONE_ALL_THRESHOLDS_MAX_EDGES):
            return thresholds
        headline = self.headline_minutes
        return (headline,) if headline in thresholds else (max(thresholds),)

    def travel_profile(self, kind: str):
        """
        The non-walking :class:`coverage.profiles.TravelProfile` of ``kind``, or None when it walks.

        A kind walks (on the walking network, at :meth:`speed_for`) unless
        ``kind_profiles`` names a profile that is not a walking one
        (``drive``, ``ebike``).
        """
        profile_id = self.kind_profiles.get(kind)
        if profile_id is None:
            return None
        profile = profiles.get_profile(profile_id)
        return None if profiles.is_walking(profile) else profile


@dataclass(frozen=True)
class StudyConfig:
    """Everything one study run needs. Paths are absolute (resolved against the file's folder)."""

    name: str
    title: str
    config_path: Path
    network: Path
    facilities: tuple[FacilitySource, ...]
    units: UnitSource | None
    population: PopulationSource
    parameters: Parameters = field(default_factory=Parameters)
    exclusions: tuple[ExclusionSource, ...] = ()
    target_sets: tuple[str, ...] = ()
    target_files: tuple[Path, ...] = ()
    output_dir: Path = Path("outputs")
    synthetic: bool = False
    facility_source_note: str = ""
    basemap: str = "cartodbpositron"
    #: the raw ``scenarios:`` block (a list of mappings), parsed and checked by :mod:`coverage.scenarios`
    scenarios: tuple = ()
    #: facilities up to this many metres outside the study area are kept (a region run's cross-border
    #: facilities, :mod:`coverage.region`); 0 = only the study area's own
    facility_area_buffer_m: float = 0.0

    def to_record(self) -> dict[str, Any]:
        """A JSON-friendly dict of the configuration, for the run record."""

        def clean(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))


def _require(mapping: dict, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ConfigError(f"{where}: the field '{key}' is required")
    return mapping[key]


def _resolve(base: Path, value: str | Path, where: str, *, must_exist: bool = True) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = (base / path).resolve()
    if must_exist and not path.exists():
        raise ConfigError(
            f"{where}: file not found: {path}\n"
            "  what to do / 处理办法: check the path; relative paths are read from the "
            "folder of the configuration file / 相对路径以配置文件所在目录为准"
        )
    return path


def _check_crs(value: str, where: str) -> str:
    crs = str(value).lower().replace("-", "").replace("_", "")
    aliases = {"wgs84": "wgs84", "epsg4326": "wgs84", "gcj02": "gcj02", "bd09": "bd09",
               "cgcs2000": "cgcs2000", "epsg4490": "cgcs2000"}
    if crs not in aliases:
        raise ConfigError(
            f"{where}: unknown coordinate system '{value}'; use one of {', '.join(COORDINATE_SYSTEMS)} "
            "(高德/腾讯 = gcj02, 百度 = bd09, 天地图/国家2000 = cgcs2000, GPS/OSM = wgs84)"
        )
    return aliases[crs]


def _positive(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{where}: must be greater than 0, got {value!r}")
    return number


def _expand_rasters(base: Path, spec: Any, where: str) -> tuple[Path, ...]:
    patterns = [spec] if isinstance(spec, str) else list(spec or [])
    paths: list[Path] = []
    for pattern in patterns:
        pattern_path = Path(pattern)
        if not pattern_path.is_absolute():
            pattern_path = base / pattern_path
        if any(ch in str(pattern) for ch in "*?["):
            matches = sorted(pattern_path.parent.glob(pattern_path.name))
            if not matches:
                raise ConfigError(f"{where}: no file matches {pattern_path}")
            paths.extend(m.resolve() for m in matches)
        else:
            paths.append(_resolve(base, pattern_path, where))
    return tuple(paths)


def _choice(value: Any, where: str, allowed: tuple[str, ...]) -> str:
    if isinstance(value, bool) and "off" in allowed:
        # YAML 1.1 reads an unquoted `off` / `no` as false (and `on` / `yes` as true)
        value = "off" if not value else allowed[0]
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r} / 取值应为 {', '.join(allowed)}")
    return text


def _h3_resolution(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or not 0 <= value <= 15:
        raise ConfigError(f"parameters.h3_resolution must be a whole number 0–15 (9 ≈ 0.1 km² hexagons), got {value!r}")
    return value


def check_basemap(value: Any, where: str = "outputs.basemap", *, environ=None) -> str:
    """
    Check a basemap name (and, for Tianditu, that its key is set) when the study file is read.

    Parameters
    ----------
    value
        The basemap as written, one of :data:`BASEMAPS`.
    where
        Where it was written, for the message (file and field).
    environ
        Environment to look for :data:`TIANDITU_KEY_ENV` in; default ``os.environ``.

    Returns
    -------
    str
        The basemap name, lower case.

    Raises
    ------
    ConfigError
        For an unknown name, or ``tianditu`` without a key.
    """
    import os

    name = str(value).strip().lower()
    if name not in BASEMAPS:
        raise ConfigError(f"{where}: unknown basemap {value!r}; use one of {', '.join(BASEMAPS)} "
                          "(天地图 = tianditu, 高德 = amap) / 底图名称有误")
    environ = os.environ if environ is None else environ
    if name == "tianditu" and not str(environ.get(TIANDITU_KEY_ENV, "")).strip():
        raise ConfigError(
            f"{where}: the tianditu basemap needs a Tianditu key (天地图密钥), and the {TIANDITU_KEY_ENV} "
            "environment variable is not set\n"
            f"  what to do / 处理办法: apply for a browser key at console.tianditu.gov.cn and set it before the run "
            f"(export {TIANDITU_KEY_ENV}=… / set {TIANDITU_KEY_ENV}=…), or choose another basemap "
            "(cartodbpositron, osm, amap); 请申请天地图密钥并设置环境变量，或改用其他底图"
        )
    return name


def _known_fields(spec: dict, known: tuple[str, ...], where: str) -> None:
    """Stop on a misspelt field (``raster:`` for ``rasters:`` would otherwise silently mean "no raster")."""
    unknown = sorted(set(map(str, spec)) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(known)} "
                          "/ 未知字段，请检查拼写")


def _study_parameters(raw: Any, where: str) -> Parameters:
    """:func:`parse_parameters` with the study file named in its errors."""
    try:
        return parse_parameters(raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _positive_list(value: Any, where: str) -> tuple[float, ...]:
    """One positive number or a list of them (``15`` or ``[5, 10, 15]``), as floats."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ConfigError(f"{where}: give at least one number, e.g. [5, 10, 15] / 至少填写一个数值")
    return tuple(_positive(v, where) for v in values)


def _flag(value: Any, where: str) -> bool:
    """A yes/no option: YAML true/false only (a quoted "no" would otherwise count as true)."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{where}: expected true or false, got {value!r} / 请填写 true 或 false")


def _mapping(value: Any, where: str, example: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping such as {example}, got {value!r} / 格式应为“键: 值”")
    return dict(value)


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        raise ConfigError(f"{where}: must be 0 or more, got {value!r}")
    return number


def _kind_profiles(value: Any, kind_speeds: dict[str, float]) -> dict[str, str]:
    """
    Check ``parameters.kind_profiles`` (facility kind → travel profile id of :mod:`coverage.profiles`).

    A kind may have a walking speed (``kind_walk_speed_mps``) or a profile, not both.
    """
    # imported here: coverage.profiles imports this module (FerryPolicy)
    PROFILES = profiles.PROFILES
    known_ids = ", ".join(PROFILES)
    chosen = {}
    for kind, profile_id in _mapping(value, "parameters.kind_profiles",
                                     "{nursing_home: drive, mutual_aid: walk_elderly}").items():
        if kind not in KINDS:
            raise ConfigError(f"parameters.kind_profiles: unknown facility kind '{kind}'; known: {', '.join(KINDS)}")
        text = str(profile_id).strip()
        if text not in PROFILES:
            raise ConfigError(f"parameters.kind_profiles.{kind}: unknown travel profile {profile_id!r}; "
                              f"known: {known_ids} / 出行方式名称有误")
        if kind in kind_speeds:
            raise ConfigError(f"parameters.kind_profiles.{kind}: the kind also has parameters.kind_walk_speed_mps."
                              f"{kind}; give one of the two / 步速与出行方式只能设一个")
        chosen[str(kind)] = text
    return chosen


def parse_parameters(raw: dict | None) -> Parameters:
    """
    Check the ``parameters:`` block of a study file and fill defaults.

    Every field is checked for its type here, when the study file is read,
    so that a mistake stops the run before the long stages with a message
    naming the field (:class:`ConfigError`).
    """
    raw = _mapping(raw, "parameters", "{walk_speed_mps: 0.8, thresholds_min: [5, 10, 15]}")
    defaults = Parameters()
    ferry_raw = raw.pop("ferry", {}) or {}
    if isinstance(ferry_raw, bool):
        ferry_raw = {"enabled": ferry_raw}
    ferry_raw = _mapping(ferry_raw, "parameters.ferry", "{enabled: true, wait_seconds: 900, speed_mps: 4.0}")
    unknown_ferry = sorted(set(ferry_raw) - {"enabled", "wait_seconds", "speed_mps"})
    if unknown_ferry:
        raise ConfigError(f"parameters.ferry: unknown field(s) {', '.join(unknown_ferry)}; "
                          "known: enabled, wait_seconds, speed_mps")
    ferry = FerryPolicy(
        enabled=_flag(ferry_raw.get("enabled", True), "parameters.ferry.enabled"),
        wait_seconds=_number(ferry_raw.get("wait_seconds", FerryPolicy.wait_seconds), "parameters.ferry.wait_seconds"),
        speed_mps=_positive(ferry_raw.get("speed_mps", FerryPolicy.speed_mps), "parameters.ferry.speed_mps"),
    )
    kinds_raw = raw.pop("kinds", KINDS)
    kinds = (kinds_raw,) if isinstance(kinds_raw, str) else tuple(kinds_raw or ())
    if not kinds:
        raise ConfigError(f"parameters.kinds: give at least one facility kind; known: {', '.join(KINDS)}")
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"parameters.kinds: unknown facility kind '{kind}'; known: {', '.join(KINDS)}")
    kind_speeds = {}
    for kind, speed in _mapping(raw.pop("kind_walk_speed_mps", {}), "parameters.kind_walk_speed_mps",
                                "{nursing_home: 0.6}").items():
        if kind not in KINDS:
            raise ConfigError(f"parameters.kind_walk_speed_mps: unknown facility kind '{kind}'")
        kind_speeds[kind] = _positive(speed, f"parameters.kind_walk_speed_mps.{kind}")
    kind_profiles = _kind_profiles(raw.pop("kind_profiles", {}), kind_speeds)
    kind_thresholds = {}
    for kind, values in _mapping(raw.pop("kind_thresholds_min", {}), "parameters.kind_thresholds_min",
                                 "{nursing_home: [15, 30]}").items():
        if kind not in KINDS:
            raise ConfigError(f"parameters.kind_thresholds_min: unknown facility kind '{kind}'; "
                              f"known: {', '.join(KINDS)}")
        kind_thresholds[kind] = tuple(sorted(_positive_list(values, f"parameters.kind_thresholds_min.{kind}")))
    params = Parameters(
        walk_speed_mps=_positive(raw.pop("walk_speed_mps", defaults.walk_speed_mps), "parameters.walk_speed_mps"),
        thresholds_min=tuple(sorted(_positive_list(raw.pop("thresholds_min", defaults.thresholds_min),
                                                   "parameters.thresholds_min"))),
        distance_thresholds_m=tuple(sorted(_positive_list(raw.pop("distance_thresholds_m",
                                                                  defaults.distance_thresholds_m),
                                                          "parameters.distance_thresholds_m"))),
        max_access_m=_positive(raw.pop("max_access_m", defaults.max_access_m), "parameters.max_access_m"),
        sensitivity_speeds_mps=_positive_list(raw.pop("sensitivity_speeds_mps", defaults.sensitivity_speeds_mps),
                                              "parameters.sensitivity_speeds_mps"),
        kind_walk_speed_mps=kind_speeds,
        kinds=kinds,
        ferry=ferry,
        isochrone_buffer_m=_positive(raw.pop("isochrone_buffer_m", defaults.isochrone_buffer_m),
                                     "parameters.isochrone_buffer_m"),
        isochrones_per_facility=_flag(raw.pop("isochrones_per_facility", defaults.isochrones_per_facility),
                                      "parameters.isochrones_per_facility"),
        isochrone_thresholds=_choice(raw.pop("isochrone_thresholds", defaults.isochrone_thresholds),
                                     "parameters.isochrone_thresholds", ("auto", "all", "headline")),
        gap_cells=_flag(raw.pop("gap_cells", defaults.gap_cells), "parameters.gap_cells"),
        h3_resolution=_h3_resolution(raw.pop("h3_resolution", None)),
        exclude_osm_water=_flag(raw.pop("exclude_osm_water", defaults.exclude_osm_water),
                                "parameters.exclude_osm_water"),
        crs_check=_choice(raw.pop("crs_check", defaults.crs_check), "parameters.crs_check",
                          ("error", "warn", "off")),
        kind_profiles=kind_profiles,
        kind_thresholds_min=kind_thresholds,
        accessibility=_accessibility(raw.pop("accessibility", None)),
    )
    if raw:
        known = ", ".join(Parameters.__dataclass_fields__)
        raise ConfigError(f"parameters: unknown field(s) {', '.join(sorted(map(str, raw)))}; known: {known} "
                          "/ 未知参数，请检查拼写")
    return params


def _file_sources(specs: Any, field_name: str, where: str, base: Path,
                  default_crs: str | None = "wgs84") -> list[tuple[dict, Path, str | None]]:
    """
    A list of input files as written in the study file: one entry or a list, each a path or a mapping with ``path``.

    Returns ``(mapping, resolved path, coordinate system)`` per entry; a
    missing path or file and an unknown ``crs`` raise :class:`ConfigError`
    naming ``field_name[i]``.
    """
    if isinstance(specs, (str, dict)):
        specs = [specs]
    sources = []
    for i, spec in enumerate(specs):
        if isinstance(spec, str):
            spec = {"path": spec}
        label = f"{where}: {field_name}[{i}]"
        path = _resolve(base, _require(spec, "path", label), f"{label}.path")
        crs = spec.get("crs")
        sources.append((spec, path, _check_crs(crs, f"{label}.crs") if crs is not None else default_crs))
    return sources


def with_kinds_file(config: StudyConfig, kinds_file: str | Path) -> StudyConfig:
    """
    The study with a kinds file (extra type names) for every facility source that has none of its own.

    Parameters
    ----------
    config
        A loaded study.
    kinds_file
        YAML in the layout of ``coverage/kinds.yaml`` (e.g. from ``--kinds``).
    """
    path = Path(kinds_file).resolve()
    if not path.exists():
        raise ConfigError(f"--kinds: file not found: {path} / 类型对照文件不存在")
    sources = tuple(source if source.kinds is not None else replace(source, kinds=path)
                    for source in config.facilities)
    return replace(config, facilities=sources)


def _scenario_block(value: Any, where: str) -> tuple:
    """The raw ``scenarios:`` list, kept as it is (each item is checked by :mod:`coverage.scenarios`)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ConfigError(f"{where}: scenarios: expected a list of scenarios, each with a name, e.g. "
                          "[{name: 新建两处, add_sites: [...]}] / 情景应写成列表")
    return tuple(value)


def load_study(path: str | Path, *, output_root: str | Path | None = None) -> StudyConfig:
    """
    Read a study configuration file.

    Parameters
    ----------
    path
        The YAML file. Relative input paths inside it are read from its folder.
    output_root
        Folder under which ``<study name>/`` is written; default ``outputs`` in
        the current working directory, unless the file sets ``outputs.folder``.

    Returns
    -------
    StudyConfig
    """
    config_path = Path(path).resolve()
    if not config_path.exists():
        raise ConfigError(f"study configuration not found: {config_path}")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: not valid YAML: {exc}") from None
    base = config_path.parent
    where = str(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected sections study:, inputs:, parameters: … at the top, got {type(raw).__name__}")
    unknown_sections = sorted(set(map(str, raw)) - set(STUDY_SECTIONS))
    if unknown_sections:
        raise ConfigError(f"{where}: unknown section(s) {', '.join(unknown_sections)}; known: "
                          f"{', '.join(STUDY_SECTIONS)} / 未知配置节，请检查拼写（如 parameter → parameters）")

    study = _require(raw, "study", where)
    name = str(_require(study, "name", f"{where}: study"))
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"{where}: study.name '{name}' must be letters, digits, '-' or '_' (it names the output folder)")
    inputs = _require(raw, "inputs", where)

    network = _resolve(base, _require(inputs, "network", f"{where}: inputs"), f"{where}: inputs.network")

    shared_kinds = inputs.get("kinds")
    facilities = []
    for i, (spec, path, crs) in enumerate(_file_sources(_require(inputs, "facilities", f"{where}: inputs"),
                                                        "inputs.facilities", where, base, default_crs=None)):
        kinds_file = spec.get("kinds", shared_kinds)
        columns = spec.get("columns", {}) or {}
        if not isinstance(columns, dict):
            raise ConfigError(f"{where}: inputs.facilities[{i}].columns must map your headers to fields, "
                              "e.g. {站点名: name, X坐标: lon} / 列对照应写成“表头: 字段”")
        sheet = spec.get("sheet")
        facilities.append(FacilitySource(
            path=path, crs=crs, sheet=tuple(sheet) if isinstance(sheet, list) else sheet,
            encoding=spec.get("encoding"), columns=dict(columns),
            kinds=_resolve(base, kinds_file, f"{where}: inputs.facilities[{i}].kinds") if kinds_file else None,
        ))

    units = None
    if inputs.get("units"):
        spec = inputs["units"]
        if isinstance(spec, str):
            spec = {"path": spec}
        units = UnitSource(
            path=_resolve(base, _require(spec, "path", f"{where}: inputs.units"), f"{where}: inputs.units.path"),
            crs=_check_crs(spec.get("crs", "wgs84"), f"{where}: inputs.units.crs"),
            layer=spec.get("layer"),
        )

    pop_raw = _mapping(_require(inputs, "population", f"{where}: inputs"), f"{where}: inputs.population",
                       "{rasters: pop_*.tif, census: {path: census.csv, level: town}}")
    _known_fields(pop_raw, ("rasters", "age_group", "year", "census"), f"{where}: inputs.population")
    census = pop_raw.get("census")
    census_spec = census if isinstance(census, dict) else ({"path": census} if census else {})
    if census_spec:
        _known_fields(census_spec, ("path", "code_column", "total_column", "level"),
                      f"{where}: inputs.population.census")
        _require(census_spec, "path", f"{where}: inputs.population.census")
        if str(census_spec.get("level", "county")) not in ("county", "town", "village"):
            raise ConfigError(f"{where}: inputs.population.census.level must be county, town or village (the level "
                              f"of the census rows), got {census_spec.get('level')!r} / 普查级别应为 county/town/village")
    year = pop_raw.get("year", 2020)
    if isinstance(year, bool) or not str(year).strip().isdigit():
        raise ConfigError(f"{where}: inputs.population.year must be a year such as 2020, got {year!r} / 年份应为数字")
    population = PopulationSource(
        rasters=_expand_rasters(base, pop_raw.get("rasters") or [], f"{where}: inputs.population.rasters"),
        age_group=str(pop_raw.get("age_group", "60+")),
        year=int(str(year).strip()),
        census=_resolve(base, census_spec["path"], f"{where}: inputs.population.census") if census_spec else None,
        census_code_column=str(census_spec.get("code_column", "code")),
        census_total_column=str(census_spec.get("total_column", "elderly")),
        census_level=str(census_spec.get("level", "county")),
    )
    if population.age_group not in ("60+", "65+", "80+"):
        raise ConfigError(f"{where}: inputs.population.age_group must be 60+, 65+ or 80+, got {population.age_group!r}")

    exclusions = [
        ExclusionSource(path=path, crs=crs, layer=spec.get("layer"), label=str(spec.get("label", "")))
        for spec, path, crs in _file_sources(inputs.get("exclusions") or [], "inputs.exclusions", where, base)
    ]

    targets = raw.get("targets", {}) or {}
    if isinstance(targets, (list, str)):
        targets = {"sets": targets}
    targets = _mapping(targets, f"{where}: targets", "{sets: [national, panjin_2018]}")
    for key in ("sets", "files"):
        if isinstance(targets.get(key), str):  # one set or file written without brackets
            targets[key] = [targets[key]]
    outputs = _mapping(raw.get("outputs", {}), f"{where}: outputs", "{folder: ../outputs/demo, basemap: osm}")
    unknown_outputs = sorted(set(map(str, outputs)) - {"folder", "basemap"})
    if unknown_outputs:
        raise ConfigError(f"{where}: outputs: unknown field(s) {', '.join(unknown_outputs)}; known: folder, basemap "
                          "/ 未知输出设置，请检查拼写")
    basemap = check_basemap(outputs.get("basemap", "cartodbpositron"), f"{where}: outputs.basemap")
    if outputs.get("folder"):
        output_dir = _resolve(base, outputs["folder"], "outputs.folder", must_exist=False)
    else:
        output_dir = Path(output_root or Path.cwd() / "outputs").resolve() / name

    return StudyConfig(
        name=name,
        title=str(study.get("title", name)),
        config_path=config_path,
        network=network,
        facilities=tuple(facilities),
        units=units,
        population=population,
        parameters=_study_parameters(raw.get("parameters"), where),
        exclusions=tuple(exclusions),
        target_sets=tuple(str(s) for s in targets.get("sets", [])),
        target_files=tuple(_resolve(base, p, f"{where}: targets.files") for p in targets.get("files", [])),
        output_dir=output_dir,
        synthetic=bool(study.get("synthetic", False)),
        facility_source_note=str(study.get("facility_source", "")),
        basemap=basemap,
        scenarios=_scenario_block(raw.get("scenarios"), where),
    )
