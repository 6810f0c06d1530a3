"""
Python's cyclic garbage collector tuned for a batch process (the ``eldercov`` command).

A county run holds a few million tracked objects (the libraries' modules,
tables, figures) and allocates many more: with CPython's default thresholds
(700, 10, 10) it collects about 4,500 times, 12 of them full collections
that walk every object, 1.5–1.9 s of a 15 s run (measured with
``gc.callbacks`` on the Huangpi county window of
``benchmarks/bench_county.py``), all of it holding the GIL, so the
isochrone thread waits too. Raising the thresholds, as long-running
Python applications do, leaves about 60 young collections and no full
one (0.3–0.4 s), with the same peak memory (0.93–0.96 GB either way):
reference counting frees nearly everything, the collector only finds
cycles.

This changes a setting of the whole process, so only the command's entry
point calls it (:func:`coverage.cli.command`), never :func:`coverage.cli.main`
or the library functions a notebook calls.
"""

from __future__ import annotations

import gc

#: allocations between young collections, and collections of each generation between the next one's
BATCH_THRESHOLDS = (50_000, 20, 20)


def relax_collection_thresholds(thresholds: tuple[int, int, int] = BATCH_THRESHOLDS) -> tuple[int, int, int]:
    """
    Raise the collector's thresholds to at least ``thresholds`` (never lowers one); returns the previous ones.

    Parameters
    ----------
    thresholds
        ``(threshold0, threshold1, threshold2)`` as for :func:`gc.set_threshold`.
    """
    before = gc.get_threshold()
    gc.set_threshold(*(max(int(old), int(new)) for old, new in zip(before, thresholds)))
    return before
