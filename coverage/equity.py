"""Equity of accessibility across the older population: Lorenz curve, Gini, Theil and its decomposition, location quotients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from coverage._io import atomic_path


def _prepare(values, weights) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, dtype=float)
    if values.shape != weights.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and weights {weights.shape} must be 1-D and of one length")
    if not (np.isfinite(values).all() and np.isfinite(weights).all()):
        raise ValueError("values and weights must be finite")
    if (values < 0).any() or (weights < 0).any():
        raise ValueError("values and weights must not be negative")
    keep = weights > 0
    return values[keep], weights[keep]


def lorenz_curve(values, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """
    The Lorenz curve of a measure across people.

    Parameters
    ----------
    values
        Accessibility per demand point (not negative).
    weights
        Older people per demand point (default 1 each).

    Returns
    -------
    (population_share, value_share) : tuple of numpy.ndarray
        Cumulative shares (0..1), starting at (0, 0), points ordered from the
        lowest access up; the curve is the straight lines between them.
    """
    values, weights = _prepare(values, weights)
    order = np.argsort(values, kind="stable")
    w = weights[order]
    wv = w * values[order]
    population = np.concatenate([[0.0], np.cumsum(w)])
    amount = np.concatenate([[0.0], np.cumsum(wv)])
    total_w = population[-1] if len(w) else 1.0
    total_v = amount[-1] if len(w) and amount[-1] > 0 else 1.0
    return population / total_w, amount / total_v


def gini(values, weights=None) -> float:
    """
    Gini coefficient (0 = everyone the same, → 1 = one person has it all), population-weighted.

    Computed from the Lorenz curve (1 − twice the area under it), which for
    weighted points equals Σ_i Σ_j w_i w_j |x_i − x_j| / (2 W² μ).

    Parameters
    ----------
    values, weights
        As in :func:`lorenz_curve`.
    """
    return _curve_gini(*lorenz_curve(values, weights))


def _curve_gini(population: np.ndarray, amount: np.ndarray) -> float:
    """:func:`gini` of a curve :func:`lorenz_curve` has drawn (1 − twice the area under it)."""
    if amount[-1] <= 0 or len(population) < 2:
        return 0.0
    area = float(np.sum(np.diff(population) * (amount[1:] + amount[:-1])) / 2.0)
    return 1.0 - 2.0 * area


def theil(values, weights=None) -> float:
    """
    Theil T index Σ s_i (x_i/μ) ln(x_i/μ) with s_i the population shares (0 = equal).

    People with zero access contribute 0 (the limit of x ln x); the index is 0
    when nobody has any access.
    """
    values, weights = _prepare(values, weights)
    total = weights.sum()
    if total <= 0:
        return 0.0
    mean = float(weights @ values) / total
    if mean <= 0:
        return 0.0
    ratio = values / mean
    terms = np.zeros_like(ratio)
    positive = ratio > 0
    terms[positive] = ratio[positive] * np.log(ratio[positive])
    return float((weights / total) @ terms)


@dataclass(frozen=True)
class TheilDecomposition:
    """
    Theil T split into between-group and within-group parts (total = between + within).

    Attributes
    ----------
    total, between, within : float
        The index and its two parts.
    groups : pandas.DataFrame
        Per group: ``population`` (weights), ``population_share``, ``mean``,
        ``value_share`` (share of all access), ``theil`` (within the group),
        ``within_contribution`` (value share × theil).
    """

    total: float
    between: float
    within: float
    groups: pd.DataFrame

    @property
    def between_share(self) -> float:
        """The part of the inequality that lies between groups (0..1)."""
        return self.between / self.total if self.total > 0 else 0.0


def theil_decomposition(values, weights, groups) -> TheilDecomposition:
    """
    Theil T decomposed into between and within groups (towns, urban / rural …).

    T = Σ_g S_g ln(μ_g / μ) + Σ_g S_g T_g, with S_g the group's share of all
    access (population share × μ_g / μ) and T_g the index within the group.

    Parameters
    ----------
    values, weights
        As in :func:`lorenz_curve`.
    groups
        Group label per demand point (e.g. ``demand["town_code"]``; missing
        labels are the group ``unknown``), or a ``pandas.Categorical``
        without missing labels, whose categories are the groups in their
        order (a table of several kinds groups its points once).
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if isinstance(groups, pd.Categorical) and not (groups.codes < 0).any():
        # its categories are the groups, in their order (access_tables._scopes: sorted strings, as factorize gives)
        codes, uniques = groups.codes.astype(np.int64), groups.categories.astype(str)
    else:
        labels = pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str).to_numpy()
        codes, uniques = pd.factorize(labels, sort=True)
    if len(codes) != len(values):
        raise ValueError(f"{len(codes)} group labels for {len(values)} values")
    _prepare(values, weights)
    total_w = weights.sum()
    mean = float(weights @ values) / total_w if total_w > 0 else 0.0
    rows = []
    # the points of each group in their own order (a stable sort of the group codes): the sums of a mask per group,
    # without comparing 124,000 labels once per town
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
    for g, label in enumerate(uniques):
        inside = order[bounds[g]:bounds[g + 1]]
        w_g = weights[inside]
        pop = float(w_g.sum())
        mean_g = float(w_g @ values[inside]) / pop if pop > 0 else 0.0
        rows.append((label, pop, mean_g, theil(values[inside], w_g)))
    frame = pd.DataFrame(rows, columns=["group", "population", "mean", "theil"]).set_index("group")
    frame["population_share"] = frame["population"] / total_w if total_w > 0 else 0.0
    frame["value_share"] = frame["population_share"] * frame["mean"] / mean if mean > 0 else 0.0
    frame["within_contribution"] = frame["value_share"] * frame["theil"]
    ratio = frame["mean"] / mean if mean > 0 else frame["mean"] * 0
    between_terms = np.where(frame["value_share"] > 0, frame["value_share"] * np.log(ratio.where(ratio > 0, 1.0)), 0.0)
    between = float(between_terms.sum())
    within = float(frame["within_contribution"].sum())
    frame = frame[["population", "population_share", "mean", "value_share", "theil", "within_contribution"]]
    return TheilDecomposition(total=theil(values, weights), between=between, within=within, groups=frame)


@dataclass(frozen=True)
class LowestDecile:
    """
    The older people at the bottom of the access distribution.

    Attributes
    ----------
    threshold : float
        Access of the person at the 10th percentile (population-weighted).
    population_share : float
        Share of the older people with access ≤ the threshold (≥ 0.1; more
        when many share the lowest value, e.g. everyone with no access at all).
    value_share : float
        Their share of all access.
    zero_share : float
        Share of the older people with no access (value 0).
    """

    threshold: float
    population_share: float
    value_share: float
    zero_share: float


def lowest_decile_share(values, weights=None, *, fraction: float = 0.1) -> LowestDecile:
    """
    Who is in the lowest-access decile, and how much of the access they hold.

    Parameters
    ----------
    values, weights
        As in :func:`lorenz_curve`.
    fraction
        0.1 for the decile (0.2 for the quintile …).
    """
    values, weights = _prepare(values, weights)
    total = weights.sum()
    if total <= 0:
        return LowestDecile(0.0, 0.0, 0.0, 0.0)
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order]) / total
    # the first person at or past the fraction of the population
    threshold = float(values[order][min(np.searchsorted(cum, fraction - 1e-12, side="left"), len(cum) - 1)])
    low = values <= threshold
    amount = float(weights @ values)
    return LowestDecile(
        threshold=threshold,
        population_share=float(weights[low].sum() / total),
        value_share=float(weights[low] @ values[low]) / amount if amount > 0 else 0.0,
        zero_share=float(weights[values <= 0].sum() / total),
    )


def location_quotient(values, weights, groups) -> pd.Series:
    """
    Location quotient per group: its share of all access over its share of the older people.

    LQ_g = (Σ_g w x / Σ w x) / (Σ_g w / Σ w) = μ_g / μ; above 1 the group's
    older people reach more than the average, below 1 less.

    Parameters
    ----------
    values, weights
        As in :func:`lorenz_curve` (for supply per town against the elderly
        per town, pass per-town supply per person as values and the elderly as weights).
    groups
        Group label per value (e.g. ``demand["town_code"]``).
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    frame = pd.DataFrame({"group": pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str),
                          "w": weights, "wv": weights * values})
    sums = frame.groupby("group", sort=True)[["w", "wv"]].sum()
    total_w, total_wv = sums["w"].sum(), sums["wv"].sum()
    if total_wv <= 0:
        return pd.Series(0.0, index=sums.index, name="location_quotient")
    share_value = sums["wv"] / total_wv
    share_pop = sums["w"] / total_w
    out = (share_value / share_pop.where(share_pop > 0)).fillna(0.0)
    out.name = "location_quotient"
    return out


def _drawn(x: np.ndarray, y: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """
    The curve's vertices nearest ``points`` even steps of the population share, ends kept: what a figure can show.

    A county's curve has a vertex per demand point (124,000); the figure is
    825 pixels wide. The curve is convex, so the chords between the kept
    vertices stay within one step's rise of it.
    """
    if len(x) <= points:
        return x, y
    keep = np.unique(np.concatenate([[0, len(x) - 1], np.searchsorted(x, np.linspace(0.0, 1.0, points))]))
    keep = keep[keep < len(x)]
    return x[keep], y[keep]


def lorenz_figure(values, weights, path: str | Path, *, groups=None, title: str | None = None,
                  lang: str = "zh", dpi: int = 150) -> Path:
    """
    Write a Lorenz-curve figure (PNG) of accessibility across the older population.

    Parameters
    ----------
    values, weights
        As in :func:`lorenz_curve`.
    path
        The PNG to write.
    groups
        Optional label per point (e.g. ``urban`` / ``rural``): one more curve per group.
    title
        Figure title; default names the Gini coefficient.
    lang
        ``zh`` (Chinese labels when a CJK font is installed, else English) or ``en``.
    dpi
        Resolution.

    Returns
    -------
    pathlib.Path
    """
    return lorenz_figures([(values, path, title)], weights, groups=groups, lang=lang, dpi=dpi)[0]


def lorenz_figures(curves, weights, *, groups=None, lang: str = "zh", dpi: int = 150) -> list[Path]:
    """
    Write one Lorenz-curve figure (PNG) per set of values of the same people, drawn on one reused figure.

    The figures of a run's kinds share their people (``weights``, ``groups``)
    and their frame: the axes, ticks and labels are made once and only the
    curves, legend and title change from one figure to the next.

    Parameters
    ----------
    curves
        ``(values, path, title)`` per figure: the values as in
        :func:`lorenz_curve`, the PNG to write, and the title (None: one
        naming the Gini coefficient; a callable: called with the Gini
        coefficient of the whole curve).
    weights
        As in :func:`lorenz_curve` (persons), the same for every figure.
    groups
        Optional label per point (e.g. ``urban`` / ``rural``): one more curve per group.
    lang
        ``zh`` (Chinese labels when a CJK font is installed, else English) or ``en``.
    dpi
        Resolution.

    Returns
    -------
    list of pathlib.Path
        The PNGs written, in the order of ``curves``.
    """
    # a Figure with its own Agg canvas, as coverage.figures does: no pyplot, no global backend switch
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # a CJK font in either language: English titles may carry the synthetic label (合成示例数据)
    try:
        from coverage.figures import cjk_font_family

        family = cjk_font_family()
    except Exception:  # no CJK font: English labels rather than boxes
        family = None
    zh = lang == "zh" and family is not None
    text = {
        "x": "老年人口累计占比" if zh else "cumulative share of the 60+ population",
        "y": "可达性累计占比" if zh else "cumulative share of accessibility",
        "equal": "绝对均等线" if zh else "line of equality",
        "all": "全部" if zh else "all",
        "title": "可达性洛伦兹曲线（基尼系数 {g:.3f}）" if zh else "Lorenz curve of accessibility (Gini {g:.3f})",
    }
    weights = np.asarray(weights, dtype=float)
    names = {"urban": "城镇", "rural": "农村", "unknown": "未知"} if zh else {}
    members = []  # per group: its label, colour and which points are in it
    if groups is not None:
        labels = pd.Series(np.asarray(groups, dtype=object)).fillna("unknown").astype(str).to_numpy()
        codes, uniques = pd.factorize(labels, sort=True)  # np.unique's order, without sorting 124,000 strings
        members = [(label, colour, codes == code)
                   for code, (label, colour) in enumerate(zip(uniques, ["#e31a1c", "#33a02c", "#ff7f00", "#6a3d9a",
                                                                        "#b15928"]))]
    rc = {"font.family": [family, "sans-serif"]} if family else {}
    written = []
    with matplotlib.rc_context(rc):
        # a fixed layout, wide enough for the longest title of two lines (a kind's name, the Gini, the synthetic
        # label): bbox_inches="tight" would draw every figure twice to find its extent
        fig = Figure(figsize=(6.2, 6.0))
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0.11, 0.08, 0.86, 0.80))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(text["x"])
        ax.set_ylabel(text["y"])
        ax.grid(True, linewidth=0.3)
        for values, path, title in curves:
            for line in list(ax.lines):
                line.remove()
            values = np.asarray(values, dtype=float)
            curve = lorenz_curve(values, weights)  # sorted once: the curve drawn and its Gini
            g = _curve_gini(*curve)
            ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1, label=text["equal"])
            x, y = _drawn(*curve)
            ax.plot(x, y, color="#1f78b4", linewidth=2, label=f"{text['all']} (G={g:.3f})")
            for label, colour, inside in members:
                group_curve = lorenz_curve(values[inside], weights[inside])
                ax.plot(*_drawn(*group_curve), color=colour, linewidth=1.3,
                        label=f"{names.get(label, label)} (G={_curve_gini(*group_curve):.3f})")
            ax.set_title(title(g) if callable(title) else title or text["title"].format(g=g), wrap=True)
            ax.legend(loc="upper left", fontsize=8)  # replaces the figure before's legend
            path = Path(path)
            with atomic_path(path) as tmp:  # a reader never sees half a figure
                fig.savefig(tmp, format="png", dpi=dpi)
            written.append(path)
    return written
