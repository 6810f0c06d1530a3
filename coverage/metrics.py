"""Coverage measures: share of the elderly within a walking time or distance, and units with a facility."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

#: how scopes are labelled in the tables
SCOPE_STUDY = "study"
SCOPE_TOWN = "town"
SCOPE_URBAN_RURAL = "urban_rural"
SCOPE_VILLAGE = "village"


def _group_codes(group_keys: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each point's group as an integer code and the sorted group labels (one group ``all`` without keys)."""
    if group_keys is None:
        return np.zeros(n, np.int64), np.array(["all"], dtype=object)
    codes, labels = pd.factorize(group_keys.to_numpy(), sort=True)
    return codes, np.asarray(labels, dtype=object)


def _within_sums(elderly: np.ndarray, cost_by_kind: Mapping[str, np.ndarray], thresholds: list[float],
                 codes: np.ndarray) -> pd.DataFrame:
    """
    Per group code, the elderly and, per kind and threshold, the elderly within it: one grouped sum for all kinds.

    pandas' grouped sum (compensated, in row order) on every column at
    once: the same sums as one grouping per kind and threshold.
    """
    columns = {"elderly": elderly}
    for kind, cost in cost_by_kind.items():
        cost = np.asarray(cost, float)
        for i, threshold in enumerate(thresholds):
            columns[(kind, i)] = np.where(cost <= threshold, elderly, 0.0)
    frame = pd.DataFrame(columns)
    frame.columns = range(len(columns))
    sums = frame.groupby(codes, sort=True).sum()
    sums.columns = list(columns)
    return sums


def service_circle_table(
    demand: pd.DataFrame,
    cost_by_kind: Mapping[str, np.ndarray],
    thresholds: Iterable[float],
    *,
    unit: str = "min",
    units_names: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """
    Share of the elderly within each threshold of a facility of each kind.

    Reported for the whole study, per town/street (``town_code``) and for
    urban vs rural (``urban``), as planners report it.

    Parameters
    ----------
    demand
        Demand points with ``elderly`` (persons) and, where known,
        ``town_code`` and ``urban``.
    cost_by_kind
        Walking cost per demand point for each kind: seconds when ``unit`` is
        ``"min"`` (thresholds in minutes), metres when ``unit`` is ``"m"``.
    thresholds
        Minutes or metres.
    unit
        ``"min"`` or ``"m"``.
    units_names
        Code → name, for the town rows.

    Returns
    -------
    pandas.DataFrame
        Long table: scope, code, name, kind, threshold, unit, elderly,
        elderly_within, share.
    """
    thresholds = list(thresholds)
    scale = 60.0 if unit == "min" else 1.0
    elderly = demand["elderly"].to_numpy(float)
    scopes: list[tuple[str, pd.Series | None]] = [(SCOPE_STUDY, None)]
    if "town_code" in demand:
        scopes.append((SCOPE_TOWN, demand["town_code"].astype("string").fillna("unassigned")))
    if "urban" in demand:
        urban = demand["urban"].astype("boolean")
        scopes.append((SCOPE_URBAN_RURAL, urban.map({True: "urban", False: "rural"}).astype("string").fillna("unknown")))
    # one grouping per scope for every kind and threshold (the groups' sums do not depend on the kind)
    sums_by_scope = []
    for scope, keys in scopes:
        codes, labels = _group_codes(keys, len(elderly))
        sums = _within_sums(elderly, cost_by_kind, [t * scale for t in thresholds], codes)
        sums_by_scope.append((scope, labels[sums.index.to_numpy()], sums))
    rows = []
    for kind in cost_by_kind:
        for scope, labels, sums in sums_by_scope:
            group_elderly = sums["elderly"].to_numpy()
            group_within = [sums[(kind, i)].to_numpy() for i in range(len(thresholds))]
            for position, code in enumerate(labels.tolist()):
                total = group_elderly[position]
                for i, threshold in enumerate(thresholds):
                    within = group_within[i][position]
                    share = within / total if total > 0 else np.nan
                    rows.append(
                        {
                            "scope": scope,
                            "code": code,
                            "name": (units_names or {}).get(code, _scope_label(scope, code)),
                            "kind": kind,
                            "threshold": threshold,
                            "unit": unit,
                            "elderly": total,
                            "elderly_within": within,
                            "share": share,
                        }
                    )
    return pd.DataFrame(rows)


def _scope_label(scope: str, code: str) -> str:
    labels = {"all": "全域 / whole study", "urban": "城镇 / urban", "rural": "乡村 / rural",
              "unknown": "未知 / unknown", "unassigned": "未落入任何乡镇 / outside all towns"}
    return labels.get(code, code)


def wide_coverage_table(long_table: pd.DataFrame) -> pd.DataFrame:
    """
    One row per scope × area × kind, one share column per threshold.

    Parameters
    ----------
    long_table
        Output of :func:`service_circle_table` (one or several, concatenated);
        a ``mode`` column (travel profile per kind), when present, is kept after ``kind``.
    """
    table = long_table.copy()
    table["column"] = table["threshold"].map(lambda t: f"{t:g}") + table["unit"]
    # the travel mode of each kind's figures, when the long table says it
    index = ["scope", "code", "name", "kind", "mode", "elderly"] if "mode" in table else \
        ["scope", "code", "name", "kind", "elderly"]
    wide = table.pivot_table(
        index=index, columns="column", values="share", aggfunc="first", sort=False
    )
    wide.columns = [f"share_{c}" for c in wide.columns]
    return wide.reset_index()


def unit_facility_counts(units: pd.DataFrame, facilities: pd.DataFrame, kinds: Iterable[str], *, code_column: str) -> pd.DataFrame:
    """
    Number of facilities of each kind assigned to each unit.

    Parameters
    ----------
    units
        Units with ``code``.
    facilities
        Facilities with ``kinds`` (``;``-joined) and ``code_column`` (the
        unit code each is assigned to, e.g. ``village_code``).
    kinds
        Kinds to count.
    code_column
        Facility column holding the unit code.

    Returns
    -------
    pandas.DataFrame
        ``code`` plus ``n_<kind>`` columns (integers, 0 where none).
    """
    counts = pd.DataFrame({"code": units["code"].astype(str).to_numpy()})
    kind_lists = facilities["kinds"].fillna("").str.split(";")
    assigned = facilities[code_column].astype("string")
    for kind in kinds:
        has = kind_lists.map(lambda ks, k=kind: k in ks)
        per_unit = assigned[has].value_counts()
        counts[f"n_{kind}"] = counts["code"].map(per_unit).fillna(0).astype(int)
    return counts


def unit_reach_table(
    demand: pd.DataFrame,
    cost_by_kind: Mapping[str, np.ndarray],
    threshold_s: float,
    *,
    code_column: str = "village_code",
) -> pd.DataFrame:
    """
    Per unit: elderly persons and the share of them within ``threshold_s`` of each kind.

    Parameters
    ----------
    demand
        Demand points with ``elderly`` and ``code_column``.
    cost_by_kind
        Seconds per demand point per kind.
    threshold_s
        Seconds.
    code_column
        The unit level to aggregate to.

    Returns
    -------
    pandas.DataFrame
        ``code``, ``elderly`` and ``share_<kind>`` (NaN where a unit has no elderly).
    """
    codes = demand[code_column].astype("string")
    frame = pd.DataFrame({"code": codes, "elderly": demand["elderly"].to_numpy(float)})
    for kind, cost in cost_by_kind.items():
        frame[f"within_{kind}"] = np.where(np.asarray(cost) <= threshold_s, frame["elderly"], 0.0)
    grouped = frame.dropna(subset=["code"]).groupby("code", sort=True).sum(numeric_only=True)
    out = pd.DataFrame({"code": grouped.index.astype(str), "elderly": grouped["elderly"].to_numpy()})
    for kind in cost_by_kind:
        within = grouped[f"within_{kind}"].to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"share_{kind}"] = np.where(out["elderly"] > 0, within / out["elderly"].to_numpy(), np.nan)
    return out


def share_of_units(flags: pd.Series) -> tuple[int, int, float]:
    """
    Count and share of units for which ``flags`` is true.

    Returns
    -------
    tuple
        (units meeting, units in total, share); share is NaN for no units.
    """
    flags = flags.astype("boolean").fillna(False)
    total = int(len(flags))
    meeting = int(flags.sum())
    return meeting, total, (meeting / total if total else float("nan"))
