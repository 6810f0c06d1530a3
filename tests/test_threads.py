"""Tests of a run's threads: how many it uses, and the work its two threads share."""

from __future__ import annotations

import threading

import pytest

from coverage import _threads


def test_a_dask_worker_keeps_to_one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what Dask's nanny sets in every worker
    assert _threads.default_threads() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert _threads.default_threads() >= 1


def test_shared_work_is_done_once_by_the_first_thread_to_claim_it():
    calls = []
    task = _threads.ClaimedTask(lambda: calls.append(threading.current_thread().name) or "streets")
    worker = threading.Thread(target=task.run_if_unclaimed, name="drawing")
    worker.start()
    worker.join()
    assert task.run_if_unclaimed() is False  # the drawing thread did it
    assert task.result() == "streets"
    assert calls == ["drawing"]


def test_the_main_thread_waits_for_work_another_thread_is_doing_rather_than_doing_it_again():
    started, release = threading.Event(), threading.Event()
    calls = []

    def work():
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(5)
        return 42

    task = _threads.ClaimedTask(work)
    worker = threading.Thread(target=task.run_if_unclaimed, name="drawing")
    worker.start()
    started.wait(5)
    assert task.run_if_unclaimed() is False
    threading.Timer(0.05, release.set).start()
    assert task.result() == 42  # waited for the drawing thread's result
    worker.join()
    assert calls == ["drawing"]


def test_unclaimed_work_is_done_by_whoever_asks_for_its_result():
    task = _threads.ClaimedTask(lambda: threading.current_thread().name)
    assert task.result() == threading.current_thread().name
    assert task.run_if_unclaimed() is False


def test_an_error_in_shared_work_reaches_the_thread_that_asks_for_the_result():
    def work():
        raise ValueError("no network")

    task = _threads.ClaimedTask(work)
    worker = threading.Thread(target=task.run_if_unclaimed)
    worker.start()
    worker.join()
    with pytest.raises(ValueError, match="no network"):
        task.result()
