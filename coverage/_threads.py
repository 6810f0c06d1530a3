"""Threads of a run: how many to use, and work that whichever of two threads is free first does."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


def default_threads() -> int:
    """
    Threads for polygon unions and raster tiles: ``OMP_NUM_THREADS`` if set (Dask workers set 1), else the usable cores.

    GEOS releases the GIL, so the grid cells of an isochrone are unioned on
    several cores at once; a process that already runs one task per core
    (a Dask worker) keeps to one thread.
    """
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class ClaimedTask:
    """
    One piece of work that either of two threads may do: the first to claim it does it, the other gets its result.

    A run's drawing thread and its main thread finish their own work at
    times that depend on the study; work that neither needs early (the
    map's street layer) is done by whichever has time first, so neither
    waits idle for the other.

    Parameters
    ----------
    work
        Called with no arguments, at most once.
    """

    def __init__(self, work: Callable[[], Any]):
        self._work = work
        self._claim = threading.Lock()
        self._result: Future = Future()

    def run_if_unclaimed(self) -> bool:
        """Do the work here unless a thread has claimed it already; True when this call did it."""
        if not self._claim.acquire(blocking=False):
            return False
        try:
            self._result.set_result(self._work())
        except BaseException as error:  # handed to whoever asks for the result
            self._result.set_exception(error)
        return True

    def result(self) -> Any:
        """The work's result: done here if no thread has claimed it, else waited for."""
        self.run_if_unclaimed()
        return self._result.result()
