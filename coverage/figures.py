"""Static PNG coverage map (matplotlib, Agg) with Chinese labels set in a CJK font."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from coverage._io import atomic_path
from coverage import kinds as kinds_registry
from coverage.config import KINDS
from coverage.maps import (
    DEFAULT_ATTRIBUTION_LINES,
    KIND_COLOURS,
    KIND_LABELS,
    LEVEL_LABELS,
    classify_share,
    share_classes,
)

#: font family names known to cover Chinese, in order of preference
CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Hiragino Sans GB",
    "Noto Sans CJK TC",
    "Noto Sans CJK JP",
    "Noto Serif CJK SC",
    "Source Han Serif SC",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Droid Sans Fallback",
)

#: substrings of a family name or file name that mark a CJK font
_CJK_HINT = re.compile(r"cjk|wenquanyi|wqy|source han|sourcehan|simhei|simsun|yahei|msyh|pingfang|hiragino|"
                       r"droid ?sans ?fallback|ar pl|ukai|uming|noto sans sc|noto serif sc", re.I)
#: characters a font must have to be used for the figure's labels
_PROBE = "养老服务覆盖率合成示例数据未达标村社区乡镇"
_KIND_MARKERS = kinds_registry.registry().markers()
_NO_DATA_COLOUR = "#bdbdbd"
_FAIL_OUTLINE = "#d7191c"
_UNCOVERED_COLOUR = "#54278f"
_DOT_SIZES = 8  # steps of the uncovered points' dot sizes in the figure


class CJKFontNotFoundError(RuntimeError):
    """No font with Chinese glyphs is installed, so labels would render as empty boxes."""


def find_cjk_font() -> Path | None:
    """
    Find an installed font file that has Chinese glyphs.

    Looks first among the fonts matplotlib knows by the family names in
    :data:`CJK_FAMILIES` (Noto Sans CJK SC preferred), then at font files on
    the system whose names suggest CJK (e.g. fonts-noto-cjk's
    ``/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc``). Every candidate is
    checked to really contain glyphs for a sample of Chinese characters.

    Returns
    -------
    pathlib.Path or None
        The font file, or None when no CJK font is installed.
    """
    found = _find_cjk_family()
    return found[0] if found else None


def cjk_font_family() -> str:
    """
    The family name of the CJK font used for figures.

    Returns
    -------
    str
        e.g. ``"Noto Sans CJK SC"``.

    Raises
    ------
    CJKFontNotFoundError
        With the command that installs one.
    """
    found = _find_cjk_family()
    if found is None:
        raise CJKFontNotFoundError(
            "no font with Chinese glyphs is installed, so the figure's Chinese labels would show as boxes; "
            "reinstall the package's dependencies (`pip install pylopdf-fonts-zh-cn`, Noto Sans SC, SIL OFL) or "
            "install a system font, e.g. `apt-get install fonts-noto-cjk`, then rerun. "
            "未找到中文字体：请安装 pylopdf-fonts-zh-cn 或 fonts-noto-cjk"
        )
    path, family = found
    if not any(entry.name == family for entry in font_manager.fontManager.ttflist):
        font_manager.fontManager.addfont(str(path))  # a font installed after matplotlib built its cache
    return family


def coverage_figure(
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    *,
    uncovered: gpd.GeoDataFrame | None = None,
    title: str,
    synthetic: bool = False,
    path: str | os.PathLike,
    subtitle_lines: Sequence[str] = (),
    attribution_lines: Sequence[str] = (),
    target_share: float | None = None,
    threshold_minutes: int = 15,
    dpi: int = 150,
) -> Path:
    """
    Draw the coverage map as a static PNG for reports and slides.

    Parameters
    ----------
    units
        EPSG:4326 units with ``share`` (0..1, NaN = no elderly), ``level``,
        optional ``meets_target``; shaded by the classes of
        :func:`coverage.maps.share_classes`, units failing the target outlined red.
    facilities
        EPSG:4326 points with ``kinds`` (``;``-joined); one marker shape and
        colour per kind.
    uncovered
        Points or cells with ``elderly``: persons beyond the threshold.
    title
        Figure title.
    synthetic
        Label the figure prominently as synthetic demo data (合成示例数据),
        on the image and in the PNG's ``Description`` text chunk.
    path
        Output ``.png``; written atomically, parent folders created.
    subtitle_lines, attribution_lines
        Lines under the title and data credits at the foot
        (:data:`coverage.maps.DEFAULT_ATTRIBUTION_LINES` if empty).
    target_share
        Policy target (0..1), a class boundary of the shading.
    threshold_minutes
        Walking-time threshold named in the legend.
    dpi
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    CJKFontNotFoundError
        When no CJK font is installed (rather than drawing empty boxes).
    """
    family = cjk_font_family()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rc = {
        "font.family": [family, "DejaVu Sans"],
        "axes.unicode_minus": False,
        "svg.fonttype": "none",
    }
    with matplotlib.rc_context(rc):
        fig = _draw(
            _to_wgs84(units),
            _to_wgs84(facilities),
            _to_wgs84(uncovered) if uncovered is not None else None,
            title=title,
            subtitle_lines=subtitle_lines,
            attribution_lines=attribution_lines or DEFAULT_ATTRIBUTION_LINES,
            synthetic=synthetic,
            target_share=target_share,
            threshold_minutes=threshold_minutes,
        )
        metadata = {
            "Title": title,
            "Software": "eldercare-coverage (coverage.figures)",
            "Description": "合成示例数据 / synthetic demo data" if synthetic else "coverage map",
        }
        _save_atomic(fig, path, dpi=dpi, metadata=metadata)
    return path


def trajectory_figure(
    years: Sequence[int],
    shares: dict[str, Sequence[float]],
    targets: dict[str, Sequence[float]],
    *,
    title: str,
    synthetic: bool = False,
    path: str | os.PathLike,
    minutes: float = 15,
    unit_targets: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    dpi: int = 150,
) -> Path:
    """
    Draw coverage by year against the target lines (the trajectory of a plan) as a PNG.

    Parameters
    ----------
    years
        Calendar years (x axis).
    shares
        Kind → share of the 60+ within ``minutes`` in each year (0..1): the left panel.
    targets
        Service-circle target label → required share of the 60+ in each year
        (NaN = not due), dashed steps on the left panel.
    title
        Figure title.
    synthetic
        Label the figure as synthetic demo data (合成示例数据) on the image and in the PNG metadata.
    path
        Output ``.png``, written atomically.
    minutes
        The walking threshold the shares use (for the axis label).
    unit_targets
        Other share targets (units with a facility …): label → (actual, required) per
        year, solid against dashed in one colour on the right panel; omitted when empty.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    family = cjk_font_family()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    palette = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
    with matplotlib.rc_context({"font.family": [family, "DejaVu Sans"], "axes.unicode_minus": False}):
        panels = 2 if unit_targets else 1
        fig = Figure(figsize=(7.5 * panels, 6.4))
        FigureCanvasAgg(fig)
        x = np.asarray(list(years), dtype=float)
        ax = fig.add_subplot(1, panels, 1)
        for kind, values in shares.items():
            label = KIND_LABELS.get(kind, kind) if kind != "any" else "任一设施 / any"
            ax.plot(x, np.asarray(values, float) * 100, marker="o", linewidth=2.4 if kind == "any" else 1.6,
                    color=KIND_COLOURS.get(kind, "#333333"), label=label)
        for i, (label, values) in enumerate(targets.items()):
            ax.step(x, np.asarray(values, float) * 100, where="post", linestyle="--", linewidth=1.4,
                    color=("#c0392b", "#8e44ad", "#d35400")[i % 3], label=f"目标 / target: {label}")
        ax.set_ylabel(f"{minutes:g} 分钟步行可达的老年人占比 (%) / share of 60+ within {minutes:g} min")
        ax.set_title("老年人步行覆盖率 / elderly within reach", fontsize=10)
        axes = [ax]
        if unit_targets:
            right = fig.add_subplot(1, 2, 2)
            for i, (label, (actual, required)) in enumerate(unit_targets.items()):
                colour = palette[i % len(palette)]
                right.plot(x, np.asarray(actual, float) * 100, marker="o", linewidth=1.6, color=colour, label=label)
                right.step(x, np.asarray(required, float) * 100, where="post", linestyle="--", linewidth=1.2,
                           color=colour)
            right.set_ylabel("实际值 (%)，虚线为目标值 / actual (%), dashed: required")
            right.set_title("指标逐年进展 / targets by year", fontsize=10)
            axes.append(right)
        for axis in axes:
            axis.set_xticks(x)
            axis.set_xticklabels([str(int(y)) for y in x])
            axis.set_ylim(0, 105)
            axis.set_xlabel("年份 / year")
            axis.grid(True, alpha=0.3)
            axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
        fig.suptitle(title, fontsize=11)
        if synthetic:
            fig.text(0.5, 0.005, "合成示例数据 / synthetic demo data", ha="center", va="bottom", fontsize=10,
                     color="#c0392b", fontweight="bold")
        fig.tight_layout(rect=(0, 0.03, 1, 0.96))
        metadata = {"Title": title, "Software": "eldercare-coverage (coverage.figures)",
                    "Description": "合成示例数据 / synthetic demo data" if synthetic else "coverage by year"}
        _save_atomic(fig, path, dpi=dpi, metadata=metadata)
    return path


# --------------------------------------------------------------------------- helpers


def _has_glyphs(fname: str, text: str = _PROBE) -> bool:
    try:
        font = ft2font.FT2Font(fname)
    except (OSError, RuntimeError, ValueError):
        return False
    return all(font.get_char_index(ord(ch)) != 0 for ch in text)


def _find_cjk_family() -> tuple[Path, str] | None:
    entries = font_manager.fontManager.ttflist
    by_name: dict[str, list] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    regular_first = lambda e: (e.style != "normal", abs(int(e.weight) - 400) if str(e.weight).isdigit() else 0)  # noqa: E731
    for family in CJK_FAMILIES:
        for entry in sorted(by_name.get(family, []), key=regular_first):
            if _has_glyphs(entry.fname):
                return Path(entry.fname), entry.name
    for entry in sorted((e for e in entries if _CJK_HINT.search(e.name)), key=regular_first):
        if _has_glyphs(entry.fname):
            return Path(entry.fname), entry.name
    # fonts installed after matplotlib's font cache was built: the regular face first, and every face of
    # its family registered (only a Black or Bold face makes matplotlib warn "findfont" at every label)
    system_fonts = sorted(font_manager.findSystemFonts(), key=lambda f: ("regular" not in Path(f).name.lower(), f))
    for fname in system_fonts:
        if _CJK_HINT.search(Path(fname).name) and _has_glyphs(fname):
            family = ft2font.FT2Font(fname).family_name
            for other in system_fonts:
                if Path(other).parent == Path(fname).parent and _CJK_HINT.search(Path(other).name):
                    try:
                        if ft2font.FT2Font(other).family_name == family:
                            font_manager.fontManager.addfont(other)
                    except (OSError, RuntimeError, ValueError):
                        continue
            return Path(fname), family
    return _packaged_cjk_font()


def _packaged_cjk_font() -> tuple[Path, str] | None:
    """
    Noto Sans SC from the Python package ``pylopdf-fonts-zh-cn`` (SIL OFL 1.1), registered with matplotlib.

    The fallback of a fresh machine with no CJK system font: it installs with
    the project's dependencies, from the package registry, without apt.
    """
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    fname = str(pylopdf_fonts_zh_cn.sans_path())
    if not Path(fname).exists() or not _has_glyphs(fname):
        return None
    font_manager.fontManager.addfont(fname)
    return Path(fname), ft2font.FT2Font(fname).family_name


def _heavy_weight() -> str:
    """``bold`` when the figure's font family has a bold face, else ``normal`` (no "findfont" warning)."""
    family = matplotlib.rcParams["font.family"][0]
    weights = [entry.weight for entry in font_manager.fontManager.ttflist if entry.name == family]
    has_bold = any((int(w) if str(w).isdigit() else {"bold": 700, "heavy": 800, "black": 900}.get(str(w), 400)) >= 600
                   for w in weights)
    return "bold" if has_bold or not weights else "normal"


def _to_wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    return gdf.loc[gdf.geometry.notna() & ~gdf.geometry.is_empty]


def _failing(units: gpd.GeoDataFrame, target_share: float | None) -> np.ndarray:
    if "meets_target" in units:
        return (units["meets_target"].astype("boolean") == False).fillna(False).to_numpy(dtype=bool)  # noqa: E712
    if target_share is None:
        return np.zeros(len(units), dtype=bool)
    share = pd.to_numeric(units["share"], errors="coerce")
    return (share < target_share).fillna(False).to_numpy(dtype=bool)


def _units_label(units: gpd.GeoDataFrame) -> str:
    levels = set(units["level"].dropna().astype(str)) if "level" in units else set()
    return f"{LEVEL_LABELS.get(levels.pop(), '单元')}覆盖率" if len(levels) == 1 else "各单元覆盖率"


def _draw(
    units: gpd.GeoDataFrame,
    facilities: gpd.GeoDataFrame,
    uncovered: gpd.GeoDataFrame | None,
    *,
    title: str,
    subtitle_lines: Sequence[str],
    attribution_lines: Sequence[str],
    synthetic: bool,
    target_share: float | None,
    threshold_minutes: int,
) -> Figure:
    fig = Figure(figsize=(12, 9))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.09, 0.68, 0.76))
    ax.set_axis_off()
    handles: list = []

    classes = share_classes(target_share)
    if len(units):
        shares = pd.to_numeric(units["share"], errors="coerce") if "share" in units else pd.Series(np.nan, index=units.index)
        colours = []
        for value in shares:
            cls = classify_share(None if pd.isna(value) else float(value), classes)
            colours.append(cls.colour if cls else _NO_DATA_COLOUR)
        units.plot(ax=ax, color=colours, edgecolor="#636363", linewidth=0.5, alpha=0.85, markersize=60)
        failing = _failing(units, target_share)
        if failing.any():
            units.loc[failing].boundary.plot(ax=ax, color=_FAIL_OUTLINE, linewidth=1.8)
        heading = f"{_units_label(units)}（{threshold_minutes}分钟步行）"
        handles.append(Patch(facecolor="none", edgecolor="none", label=heading))
        handles += [Patch(facecolor=c.colour, edgecolor="#636363", label=c.label) for c in reversed(classes)]
        handles.append(Patch(facecolor=_NO_DATA_COLOUR, edgecolor="#636363", label="无老年人口"))
        if failing.any():
            handles.append(Patch(facecolor="white", edgecolor=_FAIL_OUTLINE, linewidth=1.8, label="红框：未达标"))

    if uncovered is not None and len(uncovered):
        elderly = pd.to_numeric(uncovered["elderly"], errors="coerce").fillna(0).to_numpy(dtype=float)
        points = uncovered.geometry.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
        scale = max(float(elderly.max()), 1.0)
        if (~points).any():
            grade = np.minimum((np.clip(elderly / scale, 0, 1) * 4).astype(int), 3)
            for g in range(4):
                cells = uncovered.loc[~points & (grade == g)]
                if len(cells):
                    cells.plot(ax=ax, color=_UNCOVERED_COLOUR, alpha=0.3 + 0.2 * g, linewidth=0, zorder=3)
        if points.any():
            pts = uncovered.loc[points].geometry.representative_point()
            x, y = pts.x.to_numpy(), pts.y.to_numpy()
            # a dot per point, its area growing with the square root of its persons, in _DOT_SIZES steps: one
            # marker stamped per step (Agg's draw_markers) rather than one path per point (a county's 40,000
            # uncovered points took 0.44 s as a scatter of sizes)
            step = np.minimum((np.sqrt(np.clip(elderly[points] / scale, 0, 1)) * _DOT_SIZES).astype(int),
                              _DOT_SIZES - 1)
            for k in range(_DOT_SIZES):
                inside = step == k
                if inside.any():
                    area_pt2 = 4 + 40 * (k + 0.5) / _DOT_SIZES
                    ax.plot(x[inside], y[inside], linestyle="none", marker="o", markersize=np.sqrt(area_pt2),
                            markerfacecolor=_UNCOVERED_COLOUR, markeredgewidth=0, alpha=0.6, zorder=3)
        handles.append(Patch(facecolor=_UNCOVERED_COLOUR, alpha=0.7,
                             label=f"{threshold_minutes}分钟外的60岁以上老人（颜色越深人越多）"))

    if len(facilities):
        kinds = facilities["kinds"].fillna("").astype(str).str.split(";") if "kinds" in facilities else None
        for kind in KINDS:
            if kinds is None:
                break
            mask = kinds.apply(lambda ks, k=kind: k in ks).to_numpy()
            if not mask.any():
                continue
            pts = facilities.loc[mask].geometry.representative_point()
            ax.scatter(pts.x, pts.y, marker=_KIND_MARKERS[kind], s=70, c=KIND_COLOURS[kind],
                       edgecolors="white", linewidths=1.0, zorder=5)
            handles.append(Line2D([], [], linestyle="none", marker=_KIND_MARKERS[kind], markersize=8,
                                  markerfacecolor=KIND_COLOURS[kind], markeredgecolor="white",
                                  label=f"{KIND_LABELS[kind]}（{int(mask.sum())}处）"))

    _frame(ax, [units, facilities, uncovered])
    _scale_bar(ax)
    _north_arrow(ax)
    if handles:
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.71, 0.85), frameon=False, fontsize=10,
                   title="图例", title_fontsize=11, alignment="left")

    heavy = _heavy_weight()
    fig.text(0.02, 0.955, title, fontsize=18, fontweight=heavy, va="top")
    for i, line in enumerate(subtitle_lines):
        fig.text(0.02, 0.915 - 0.027 * i, str(line), fontsize=11, va="top", color="#333333")
    fig.text(0.02, 0.02, "\n".join(str(a) for a in attribution_lines), fontsize=8, va="bottom", color="#555555")
    if synthetic:
        # bottom right, so a long title keeps the full width at the top
        fig.text(0.98, 0.02, "合成示例数据 / synthetic demo data", fontsize=15, fontweight=heavy, color="white",
                 ha="right", va="bottom", bbox={"boxstyle": "round,pad=0.4", "facecolor": "#cc0000", "edgecolor": "none"})
        ax.text(0.5, 0.5, "合成示例数据\nsynthetic demo data", transform=ax.transAxes, fontsize=40, color="#cc0000",
                alpha=0.13, ha="center", va="center", rotation=30, zorder=10)
    return fig


def _frame(ax, layers: Sequence[gpd.GeoDataFrame | None]) -> None:
    boxes = [layer.total_bounds for layer in layers if layer is not None and len(layer)]
    boxes = [b for b in boxes if np.all(np.isfinite(b))]
    if not boxes:
        return
    arr = np.vstack(boxes)
    west, south, east, north = arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max()
    pad_x = max((east - west) * 0.04, 0.002)
    pad_y = max((north - south) * 0.04, 0.002)
    ax.set_xlim(west - pad_x, east + pad_x)
    ax.set_ylim(south - pad_y, north + pad_y)
    ax.set_aspect(1.0 / math.cos(math.radians((south + north) / 2)))


def _scale_bar(ax) -> None:
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    metres_per_deg = 111_320.0 * math.cos(math.radians((y0 + y1) / 2))
    width_m = (x1 - x0) * metres_per_deg
    target = width_m / 5
    exponent = 10 ** math.floor(math.log10(target))
    length = max(n * exponent for n in (1, 2, 5) if n * exponent <= target)
    deg = length / metres_per_deg
    x = x0 + (x1 - x0) * 0.04
    y = y0 + (y1 - y0) * 0.04
    ax.plot([x, x + deg], [y, y], color="black", linewidth=3, solid_capstyle="butt", zorder=6)
    label = f"{length / 1000:g} 公里" if length >= 1000 else f"{length:g} 米"
    ax.text(x + deg / 2, y + (y1 - y0) * 0.012, label, ha="center", va="bottom", fontsize=9, zorder=6)


def _north_arrow(ax) -> None:
    ax.annotate("北", xy=(0.96, 0.97), xytext=(0.96, 0.88), xycoords="axes fraction", ha="center", va="center",
                fontsize=12, arrowprops={"arrowstyle": "-|>", "color": "black", "linewidth": 1.5})


def _save_atomic(fig: Figure, path: Path, *, dpi: int, metadata: dict[str, str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata=metadata, facecolor="white")
