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

    @property
    def claimed(self) -> bool:
        """Whether a thread has claimed the work (is doing it, or has done it)."""
        return self._claim.locked()

    def result(self) -> Any:
        """The work's result: done here if no thread has claimed it, else waited for."""
        self.run_if_unclaimed()
        return self._result.result()


class SharedTasks:
    """
    Work items that one thread publishes and does in order, and that a thread waiting for it takes from the end.

    The drawing thread of a run makes the map's images of the isochrones
    last; the main thread, done with its own work, would otherwise wait idle
    for them. :meth:`run_all` (the drawing thread) publishes the items and
    does each one no other thread has claimed; :meth:`help_until` (the main
    thread) does unclaimed items, the last first, until the drawing is done.
    Each item is done once (:class:`ClaimedTask`), so the results do not
    depend on which thread did which.
    """

    def __init__(self):
        self._tasks: list[ClaimedTask] = []
        self._lock = threading.Lock()
        self._published = threading.Condition(self._lock)

    def run_all(self, works: list[Callable[[], Any]]) -> list:
        """Publish ``works``, do the ones not taken meanwhile, and return every result in their order."""
        tasks = [ClaimedTask(work) for work in works]
        with self._published:
            self._tasks.extend(tasks)
            self._published.notify_all()
        for task in tasks:
            task.run_if_unclaimed()
        return [task.result() for task in tasks]

    def help_until(self, done: Future, poll_seconds: float = 0.05) -> int:
        """Do unclaimed items (the last published first) until ``done`` is done; returns how many this thread did."""
        helped = 0

        def wake(_):
            with self._published:
                self._published.notify_all()

        done.add_done_callback(wake)
        while not done.done():
            with self._published:
                free = [task for task in self._tasks if not task.claimed]
                if not free:
                    self._published.wait(poll_seconds)
                    continue
            helped += free[-1].run_if_unclaimed()
        return helped
