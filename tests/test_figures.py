"""Tests of the static PNG coverage figure and its CJK font."""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from matplotlib import font_manager, ft2font
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from shapely.geometry import Point, box

from coverage import figures

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "outputs" / "test_figures"
LON0, LAT0 = 113.9, 30.95
CJK_NAME = re.compile(r"CJK|Source Han|WenQuanYi|SimHei|YaHei|PingFang|Hiragino|Droid Sans Fallback|AR PL|Noto Sans SC", re.I)

needs_cjk = pytest.mark.skipif(
    figures.find_cjk_font() is None,
    reason="no CJK font installed: run scripts/ensure_browser.sh as root or `apt-get install fonts-noto-cjk`",
)


def _units() -> gpd.GeoDataFrame:
    rows = []
    shares = [0.95, 0.40, math.nan, 0.72, 1.0, 0.10, 0.88, 0.91, 0.55]
    for k, share in enumerate(shares):
        i, j = divmod(k, 3)
        x0, y0 = LON0 + i * 0.01, LAT0 + j * 0.01
        rows.append(
            {
                "code": f"42098100{k:04d}",
                "name": f"测试村{k + 1}",
                "level": "village",
                "share": share,
                "elderly": 0.0 if math.isnan(share) else 100.0 + 30 * k,
                "geometry": box(x0, y0, x0 + 0.01, y0 + 0.01),
            }
        )
    return gpd.GeoDataFrame(rows, crs="EPSG:4326")


def _facilities() -> gpd.GeoDataFrame:
    kinds = ["day_care", "canteen", "mutual_aid", "nursing_home", "comprehensive;day_care"]
    return gpd.GeoDataFrame(
        {
            "name": [f"设施{i}" for i in range(len(kinds))],
            "kinds": kinds,
            "beds": [10, np.nan, 8, 100, 20],
            "floor_area_m2": [300, 150, 120, 4000, 1500],
        },
        geometry=[Point(LON0 + 0.004 + 0.005 * i, LAT0 + 0.005 + 0.005 * i) for i in range(len(kinds))],
        crs="EPSG:4326",
    )


def _uncovered_points() -> gpd.GeoDataFrame:
    rng = np.random.default_rng(1)
    pts = [Point(LON0 + 0.02 + rng.uniform(0, 0.009), LAT0 + rng.uniform(0, 0.009)) for _ in range(40)]
    return gpd.GeoDataFrame({"elderly": rng.uniform(1, 40, len(pts))}, geometry=pts, crs="EPSG:4326")


def _render_text(text: str, font_path: str) -> np.ndarray:
    """Grey-level image of ``text`` drawn with exactly one font file (no fallback)."""
    fig = Figure(figsize=(1.2, 1.2), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, fontproperties=font_manager.FontProperties(fname=font_path), fontsize=48,
             ha="center", va="center")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].mean(axis=2)


def _red_share(image: Image.Image, region: tuple[float, float, float, float]) -> float:
    w, h = image.size
    crop = image.crop((int(region[0] * w), int(region[1] * h), int(region[2] * w), int(region[3] * h)))
    px = np.asarray(crop.convert("RGB")).reshape(-1, 3).astype(int)
    red = (px[:, 0] > 170) & (px[:, 1] < 60) & (px[:, 2] < 60)
    return float(red.mean())


@needs_cjk
def test_find_cjk_font_is_a_cjk_font_with_chinese_glyphs():
    path = figures.find_cjk_font()
    assert path is not None and path.exists()
    font = ft2font.FT2Font(str(path))
    assert CJK_NAME.search(font.family_name), font.family_name
    family = figures.cjk_font_family()
    assert CJK_NAME.search(family), family
    for ch in "养老服务覆盖率合成示例数据":
        assert font.get_char_index(ord(ch)) != 0, ch


@needs_cjk
def test_cjk_font_draws_chinese_where_dejavu_draws_boxes():
    cjk = str(figures.find_cjk_font())
    dejavu = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=False)
    assert "DejaVuSans" in Path(dejavu).name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DejaVu Sans lacks the glyphs: that is the point
        dv_yang, dv_lao = _render_text("养", dejavu), _render_text("老", dejavu)
    cjk_yang, cjk_lao = _render_text("养", cjk), _render_text("老", cjk)
    # DejaVu Sans has no Chinese glyphs: both characters come out as the same box
    assert np.array_equal(dv_yang, dv_lao)
    # the CJK font draws two different characters, neither of them the box
    assert not np.array_equal(cjk_yang, cjk_lao)
    assert np.abs(cjk_yang - dv_yang).mean() > 1.0
    assert np.abs(cjk_lao - dv_lao).mean() > 1.0
    assert (cjk_yang < 128).sum() > 50  # ink on the page


@needs_cjk
def test_coverage_figure_renders_chinese_without_missing_glyphs():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = figures.coverage_figure(
            _units(),
            _facilities(),
            uncovered=_uncovered_points(),
            title="测试县15分钟养老服务圈覆盖率",
            subtitle_lines=("数据日期：2024-06", "步行速度 0.8 m/s，阈值 15 分钟"),
            target_share=0.9,
            path=OUT_DIR / "coverage_figure.png",
        )
    missing = [str(w.message) for w in caught if "missing from" in str(w.message).lower()]
    assert not missing, missing
    assert path == OUT_DIR / "coverage_figure.png" and path.exists()
    assert not list(OUT_DIR.glob(".*.tmp*"))  # atomic write leaves no temporary file
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] >= 1200
    assert image.info.get("Title") == "测试县15分钟养老服务圈覆盖率"
    assert "synthetic" not in image.info.get("Description", "")
    colours = np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 100
    assert _red_share(image, (0.65, 0.88, 1.0, 1.0)) < 0.01  # no synthetic badge (bottom right)


@needs_cjk
def test_coverage_figure_labelled_synthetic(tmp_path):
    plain = figures.coverage_figure(_units(), _facilities(), title="示例", path=tmp_path / "plain.png")
    demo = figures.coverage_figure(
        _units(), _facilities(), title="示例", synthetic=True, path=OUT_DIR / "coverage_figure_synthetic.png"
    )
    demo_image, plain_image = Image.open(demo), Image.open(plain)
    assert demo_image.info["Description"] == "合成示例数据 / synthetic demo data"
    assert plain_image.info["Description"] != demo_image.info["Description"]
    # the red badge in the top-right corner is drawn only on the synthetic figure
    assert _red_share(demo_image, (0.65, 0.88, 1.0, 1.0)) > 0.03
    assert _red_share(plain_image, (0.65, 0.88, 1.0, 1.0)) < 0.01


@needs_cjk
def test_coverage_figure_accepts_projected_input(tmp_path):
    utm = "EPSG:32649"
    path = figures.coverage_figure(
        _units().to_crs(utm), _facilities().to_crs(utm), uncovered=_uncovered_points().to_crs(utm),
        title="投影坐标输入", path=tmp_path / "sub" / "projected.png",
    )
    assert path.exists() and Image.open(path).size[0] > 0


def test_each_uncovered_point_is_one_dot_and_more_persons_draw_a_larger_one():
    uncovered = _uncovered_points()
    fig = figures._draw(_units(), _facilities(), uncovered, title="未覆盖", subtitle_lines=(), attribution_lines=(),
                        synthetic=False, target_share=None, threshold_minutes=15)
    dots = [line for line in fig.axes[0].get_lines() if line.get_marker() == "o" and line.get_linestyle() == "None"]
    drawn = np.concatenate([np.column_stack(line.get_data()) for line in dots])
    # every point once, where it lies
    expected = np.column_stack([uncovered.geometry.x, uncovered.geometry.y])
    assert len(drawn) == len(uncovered)
    assert np.allclose(np.sort(drawn, axis=0), np.sort(expected, axis=0))
    size_of = {}
    for line in dots:
        for x, y in np.column_stack(line.get_data()):
            size_of[(round(x, 9), round(y, 9))] = line.get_markersize()
    sizes = np.array([size_of[(round(x, 9), round(y, 9))] for x, y in expected])
    elderly = uncovered["elderly"].to_numpy()
    most, fewest = int(np.argmax(elderly)), int(np.argmin(elderly))
    assert sizes[most] > sizes[fewest]
    # never smaller for more persons
    order = np.argsort(elderly)
    assert np.all(np.diff(sizes[order]) >= 0)


def test_missing_cjk_font_raises_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(figures, "_find_cjk_family", lambda: None)
    assert figures.find_cjk_font() is None
    with pytest.raises(figures.CJKFontNotFoundError, match="apt-get install fonts-noto-cjk"):
        figures.coverage_figure(_units(), _facilities(), title="无字体", path=tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_a_machine_without_system_cjk_fonts_still_draws_chinese_with_the_packaged_noto_sans_sc(tmp_path):
    # the fallback that installs with the dependencies (pylopdf-fonts-zh-cn, SIL OFL 1.1)
    from matplotlib import font_manager

    from coverage import figures

    found = figures._packaged_cjk_font()
    assert found is not None, "pylopdf-fonts-zh-cn is a dependency: its Noto Sans SC must be found"
    path, family = found
    assert family == "Noto Sans SC" and figures._has_glyphs(str(path), "养老服务覆盖率幸福院日间照料")
    assert any(entry.name == family for entry in font_manager.fontManager.ttflist)
    # draw with it and only it: every label's glyphs come from the packaged file
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"font.family": [family]}):
        fig = Figure(figsize=(3, 1))
        FigureCanvasAgg(fig)
        text = fig.text(0.1, 0.5, "一刻钟居家养老服务圈", fontweight=figures._heavy_weight())
        fig.canvas.draw()
        used = font_manager.findfont(text.get_fontproperties(), fallback_to_default=False)
    assert Path(used).resolve() == Path(path).resolve()
    assert figures._heavy_weight() in {"bold", "normal"}
