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


def _drawing_with_images(shared, n_images, seconds_each, *, fail_at=None):
    """A drawing thread whose last work is ``n_images`` images of ``seconds_each`` each, shared with the main thread."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    made = []

    def image(i):
        time.sleep(seconds_each)
        made.append((i, threading.current_thread().name))
        if i == fail_at:
            raise ValueError(f"image {i} failed")
        return f"image {i}"

    def drawing():
        time.sleep(0.05)  # the isochrones
        return shared.run_all([lambda i=i: image(i) for i in range(n_images)])

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="isochrones")
    future = pool.submit(drawing)
    pool.shutdown(wait=False)
    return future, made


def test_the_waiting_main_thread_makes_the_last_images_and_every_image_is_made_once_in_order():
    shared = _threads.SharedTasks()
    future, made = _drawing_with_images(shared, n_images=6, seconds_each=0.1)
    helped = shared.help_until(future)
    assert future.result() == [f"image {i}" for i in range(6)]  # in order, whoever made them
    assert sorted(i for i, _ in made) == list(range(6))  # each once
    by_main = [i for i, name in made if name == threading.current_thread().name]
    assert helped == len(by_main) >= 2  # the main thread did its share, from the end
    assert by_main == sorted(by_main, reverse=True) and by_main[0] == 5


def test_a_main_thread_arriving_after_the_drawing_has_nothing_to_do():
    shared = _threads.SharedTasks()
    future, made = _drawing_with_images(shared, n_images=3, seconds_each=0.01)
    future.result()
    assert shared.help_until(future) == 0
    assert {name for _, name in made} == {"isochrones_0"}


def test_an_image_failing_on_the_main_thread_fails_the_drawing():
    shared = _threads.SharedTasks()
    future, _ = _drawing_with_images(shared, n_images=4, seconds_each=0.1, fail_at=3)
    shared.help_until(future)  # the main thread takes image 3, the last, which fails
    with pytest.raises(ValueError, match="image 3 failed"):
        future.result()
