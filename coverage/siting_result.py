"""The result of a siting model: chosen sites, objective, bound, gap, status and marginal curve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from coverage.siting_search import _lazy_greedy

_MARGINAL_COLUMNS = ["rank", "candidate", "gain", "cumulative_covered", "share"]


@dataclass(frozen=True, eq=False)
class SitingResult:
    """
    Proposed new sites and what they achieve.

    Attributes
    ----------
    selected
        Candidate indices (rows of the coverage matrix) of the new sites, in
        the order of the marginal curve: re-ordered greedily by gain among the
        chosen set, so ``selected[:k]`` is the best first-k subset of them.
        Sites that would add nobody are left out, so ``len(selected)`` can be
        smaller than the ``p`` asked for.
    objective
        Newly covered weight (persons): weight of demand covered by the new
        sites and not already covered.
    covered
        Boolean array (n_demand,): demand covered after the new sites,
        including ``already_covered``.
    already_covered
        Boolean array (n_demand,): demand covered before (existing facilities).
    base_covered_weight
        Weight (persons) covered before any new site.
    total_weight
        Total demand weight (persons), the denominator of the shares.
    share_before, share_after
        Covered share of the total weight before and after the new sites.
    method
        Which step produced ``selected``. From
        :class:`~coverage.siting_models.MaximalCoveringModel` (MCLP):

        * ``"none"`` -- nothing to decide (``p == 0`` or no candidate adds
          anybody);
        * ``"exact"`` -- the HiGHS MILP on the reduced model, or every useful
          candidate fits within ``p``;
        * ``"greedy"`` -- lazy greedy;
        * ``"greedy+swap"`` -- greedy improved by 1-swaps;
        * ``"kernel"`` -- the MILP over the LP relaxation's support and the
          incumbent, then 1-swaps over all candidates;
        * ``"lp rounding+swap"`` -- the ``p`` largest LP values, improved by
          1-swaps (tried when the LP is too fractional for the kernel);
        * ``"lns"`` -- large-neighbourhood search.

        From :class:`~coverage.siting_models.MinimumSitesModel` (fewest sites
        for a target): ``"none"`` (target met without new sites, or nothing
        coverable), ``"greedy"`` (greedy, redundant sites dropped),
        ``"greedy+swap"`` (a set one site smaller found by greedy and swaps),
        ``"lns"`` (found by the neighbourhood search) or ``"exact"`` (MILP).
    status
        * ``"optimal"`` -- proved: for MCLP ``bound == objective``; for
          minimum sites no set one site smaller reaches the target;
        * ``"gap_limit"`` -- MCLP stopped within ``mip_rel_gap`` (see ``gap``);
        * ``"time_limit"`` -- HiGHS stopped at the time limit; the better of
          its incumbent and the heuristic is kept, see ``gap``;
        * ``"heuristic"`` -- not proved optimal, quality given by ``gap``;
        * ``"already_met"`` -- minimum sites: the target is met without new
          sites;
        * ``"unreachable"`` -- minimum sites: the target is not reachable
          with all candidates; ``selected`` is the best found set reaching
          the highest achievable share (``info["best_share_achievable"]``).
    bound
        For MCLP results an upper bound on the achievable newly covered weight
        (persons); for minimum-sites results a lower bound on the number of
        sites. ``None`` when unknown.
    gap
        Relative gap: MCLP ``(bound - objective) / bound``; minimum sites
        ``(len(selected) - bound) / len(selected)``. 0 when proved optimal.
    marginal
        DataFrame with columns ``rank`` (1-based), ``candidate``, ``gain``
        (persons newly covered by this site given the earlier ones),
        ``cumulative_covered`` (persons covered in total, including the base)
        and ``share`` (``cumulative_covered / total_weight``).
    bound_unit
        ``"persons"`` (MCLP) or ``"sites"`` (minimum sites).
    target_share
        The target share of a minimum-sites model (:func:`min_sites_for_target`,
        :func:`unit_set_cover`), else ``None``.
    info
        Diagnostics: sizes of the reduced model, timings (seconds), solver
        messages.
    """

    selected: np.ndarray
    objective: float
    covered: np.ndarray
    already_covered: np.ndarray
    base_covered_weight: float
    total_weight: float
    share_before: float
    share_after: float
    method: str
    status: str
    bound: float | None
    gap: float | None
    marginal: pd.DataFrame
    bound_unit: str = "persons"
    target_share: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def sites(self) -> np.ndarray:
        """The chosen sites: candidate indices, the same array as ``selected``."""
        return self.selected

    @property
    def n_sites(self) -> int:
        """Number of proposed new sites."""
        return len(self.selected)

    def summary(self) -> str:
        """One line for logs: sites, persons and shares."""
        gap = "n/a" if self.gap is None else f"{100 * self.gap:.3f} %"
        return (
            f"{self.n_sites} new sites ({self.method}, {self.status}, gap {gap}): "
            f"+{self.objective:,.1f} persons, share {100 * self.share_before:.2f} % "
            f"-> {100 * self.share_after:.2f} %"
        )


def _order_and_gains(
    a: sp.csr_array, w: np.ndarray, base: np.ndarray, chosen: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy re-ordering of ``chosen`` (original indices) by gain; zero-gain sites dropped."""
    chosen = np.unique(np.asarray(chosen, dtype=np.int64))
    covered = base.copy()
    if chosen.size == 0:
        return chosen, np.zeros(0), covered
    sub = sp.csr_array(a[chosen])
    sub.sort_indices()
    rem_w = np.where(base, 0.0, w)
    local, gains, _ = _lazy_greedy(sub, rem_w, chosen.size)
    order = chosen[local]
    if order.size:
        rows = sp.csr_array(a[order])
        covered[rows.indices] = True
    return order, gains, covered


def _marginal_frame(order: np.ndarray, gains: np.ndarray, base_w: float, total_w: float) -> pd.DataFrame:
    cum = base_w + np.cumsum(gains) if gains.size else np.zeros(0)
    share = cum / total_w if total_w > 0 else np.zeros_like(cum)
    return pd.DataFrame(
        {
            "rank": np.arange(1, order.size + 1, dtype=np.int64),
            "candidate": order.astype(np.int64),
            "gain": gains.astype(np.float64),
            "cumulative_covered": cum.astype(np.float64),
            "share": share.astype(np.float64),
        },
        columns=_MARGINAL_COLUMNS,
    )


def _build_result(
    a: sp.csr_array,
    w: np.ndarray,
    base: np.ndarray,
    chosen: np.ndarray,
    *,
    method: str,
    status: str,
    bound: float | None,
    bound_unit: str = "persons",
    target_share: float | None = None,
    info: dict[str, Any] | None = None,
) -> SitingResult:
    order, gains, covered = _order_and_gains(a, w, base, chosen)
    total = float(w.sum())
    base_w = float(w[base].sum())
    objective = float(w[covered & ~base].sum())
    after = base_w + objective
    if bound is None:
        gap = None
    elif bound_unit == "persons":
        bound = max(float(bound), objective)
        gap = (bound - objective) / bound if bound > 0 else 0.0
        if gap < 1e-9:
            gap = 0.0
            if status == "heuristic":
                status = "optimal"
    else:
        bound = float(min(bound, order.size))
        gap = (order.size - bound) / order.size if order.size > 0 else 0.0
    return SitingResult(
        selected=order,
        objective=objective,
        covered=covered,
        already_covered=base.copy(),
        base_covered_weight=base_w,
        total_weight=total,
        share_before=base_w / total if total > 0 else 0.0,
        share_after=after / total if total > 0 else 0.0,
        method=method,
        status=status,
        bound=bound,
        gap=gap,
        marginal=_marginal_frame(order, gains, base_w, total),
        bound_unit=bound_unit,
        target_share=target_share,
        info=dict(info or {}),
    )

