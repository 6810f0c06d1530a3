"""How ferry lines count in travel times: a policy value read by the study file, profiles and reach."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FerryPolicy:
    """How ferry lines (``route=ferry``) count: excluded, or an edge costing wait + crossing time."""

    enabled: bool = True
    wait_seconds: float = 900.0
    speed_mps: float = 4.0
