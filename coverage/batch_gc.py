"""
Python's cyclic garbage collector and exit tuned for a batch process (the ``eldercov`` command).

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


def exit_without_teardown(code: int) -> int:
    """
    End the batch process with ``code`` now: the exit handlers run, the interpreter's teardown does not.

    At the end of a county run some 1,900 modules are loaded (numpy to
    matplotlib, folium, python-docx); the interpreter then clears every
    module and collects every object once more, 0.5–0.7 s of the command's
    wall time (Huangpi window of ``benchmarks/bench_county.py``: the
    command ended 0.64–0.76 s after its last exit handler, 0.26–0.29 s
    with this) that frees memory the operating system takes back anyway.
    The registered exit handlers (:mod:`atexit`: logging flushed,
    multiprocessing children ended, library caches removed) run first, then
    standard output and error are flushed. If a thread other than the main
    one is still running (none is, after a run; a caller's own thread
    could be), nothing is cut short: the code is returned for the normal
    exit instead. Only the command's entry point calls this
    (:func:`coverage.cli.command`), never the library a notebook imports.

    Returns
    -------
    int
        ``code``, only when the process cannot end early.
    """
    import atexit
    import os
    import sys
    import threading

    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    run_handlers = getattr(atexit, "_run_exitfuncs", None)
    if others or run_handlers is None:
        return code
    run_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be shown
            pass
    os._exit(code)
