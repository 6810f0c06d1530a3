"""Does the eldercov command tune the garbage collector for a batch run, and leave a notebook's alone?"""

from __future__ import annotations

import gc
import subprocess
import sys

from coverage.batch_gc import BATCH_THRESHOLDS, relax_collection_thresholds


def test_thresholds_are_raised_never_lowered_and_the_old_ones_returned():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        assert relax_collection_thresholds() == (700, 10, 10)
        assert gc.get_threshold() == BATCH_THRESHOLDS
        gc.set_threshold(100_000, 5, 50)
        relax_collection_thresholds()
        assert gc.get_threshold() == (100_000, 20, 50)
    finally:
        gc.set_threshold(*before)


def test_the_command_relaxes_the_collector_and_main_called_from_python_does_not():
    probe = ("import gc; from coverage import cli; print(gc.get_threshold()); "
             "cli.main = lambda argv=None: print(gc.get_threshold()) or 0; cli.{call}()")
    for call, expected in (("command", str(BATCH_THRESHOLDS)), ("main", None)):
        printed = subprocess.run([sys.executable, "-c", probe.format(call=call)], capture_output=True, text=True,
                                 check=True).stdout.split("\n")
        default, during = printed[0], printed[1]
        assert during == (expected or default), call
    assert default != str(BATCH_THRESHOLDS)
