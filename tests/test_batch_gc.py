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


def _ended(script: str) -> subprocess.CompletedProcess:
    # stdout to a pipe is block-buffered: what is printed stays in the buffer until the end is flushed
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_the_command_ends_with_its_exit_code_its_output_flushed_and_the_exit_handlers_run(tmp_path):
    marker = tmp_path / "handler_ran"
    done = _ended(
        "import atexit, pathlib, sys\n"
        f"atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('yes'))\n"
        "from coverage.batch_gc import exit_without_teardown\n"
        "print('outputs 输出: done'); print('note', file=sys.stderr)\n"
        "exit_without_teardown(2)\n"
        "print('never reached')\n"
    )
    assert done.returncode == 2
    assert done.stdout == "outputs 输出: done\n" and done.stderr == "note\n"
    assert marker.read_text() == "yes"


def test_a_thread_still_running_is_not_cut_short_by_the_early_end(tmp_path):
    finished = tmp_path / "thread_finished"
    done = _ended(
        "import pathlib, threading, time\n"
        "from coverage.batch_gc import exit_without_teardown\n"
        f"def work(): time.sleep(0.5); pathlib.Path({str(finished)!r}).write_text('yes')\n"
        "threading.Thread(target=work).start()\n"
        "raise SystemExit(exit_without_teardown(3))\n"
    )
    assert done.returncode == 3
    assert finished.read_text() == "yes"
