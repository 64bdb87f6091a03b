"""ui.limits: a job's time budget, the fair queue of conversion slots, and who a request counts against."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from svc_core.cancel import ConversionCancelled, Watch
from svc_core.ui.limits import JobLimitError, JobLimits, JobSlots, client_key


def test_budget_scales_with_the_audio_and_stops_at_the_cap():
    limits = JobLimits(seconds_per_audio_second=4, allowance_seconds=15, max_job_seconds=300)
    short = limits.budget(20.0)
    assert short.seconds == 95 and short.explanation == "15 s + 4 s per second of audio for this 20.0 s clip"
    long = limits.budget(1200.0)
    assert long.seconds == 300 and long.explanation.startswith("the server's cap; 15 s + 4 s per second")
    assert JobLimits(max_job_seconds=0).budget(1e4).seconds > 1e4  # 0: no cap


def test_a_client_gets_its_share_and_a_clear_refusal_past_it():
    slots = JobSlots(JobLimits(concurrency=1, max_waiting=8, per_client=2))
    first = slots.admit("ip:a")
    slots.acquire(first, Watch())
    slots.admit("ip:a")  # waiting behind its own first job
    with pytest.raises(JobLimitError) as err:
        slots.admit("ip:a")
    assert str(err.value).startswith("You already have 2 conversions running or queued (1 running, 1 waiting); "
                                     "the limit is 2 per person")
    slots.admit("ip:b")  # someone else still gets in
    slots.release(first)
    assert slots.jobs_of("ip:a") == 1 and slots.running == 0 and slots.waiting == 2


def test_a_full_queue_is_refused():
    slots = JobSlots(JobLimits(concurrency=1, max_waiting=1, per_client=0))
    slots.acquire(slots.admit("a"), Watch())
    slots.admit("b")
    with pytest.raises(JobLimitError, match="The queue is full: 1 conversion is already waiting"):
        slots.admit("c")


def test_a_freed_slot_goes_to_the_client_with_fewest_running():
    """a holds one slot and queued another before b asked: the second slot frees, and b gets it first."""
    slots = JobSlots(JobLimits(concurrency=2, max_waiting=8, per_client=3))
    a1, a2 = slots.admit("a"), slots.admit("a")
    slots.acquire(a1, Watch())
    slots.acquire(a2, Watch())
    a3, b1 = slots.admit("a"), slots.admit("b")
    assert slots.ahead_of(b1) == 0 and slots.ahead_of(a3) == 1
    order: list[str] = []
    threads = [threading.Thread(target=lambda t=t, n=n: (slots.acquire(t, Watch()), order.append(n)))
               for t, n in ((a3, "a3"), (b1, "b1"))]
    for thread in threads:
        thread.start()
    slots.release(a2)
    threads[1].join(timeout=30)
    assert order == ["b1"]
    slots.release(a1)
    threads[0].join(timeout=30)
    assert order == ["b1", "a3"] and slots.running == 2


def test_cancelling_a_waiting_job_gives_up_its_place():
    slots = JobSlots(JobLimits(concurrency=1, max_waiting=8, per_client=2))
    slots.acquire(slots.admit("a"), Watch())
    watch = Watch()
    waiting = slots.admit("b", watch)
    failed: list[BaseException] = []
    thread = threading.Thread(target=lambda: _catch(failed, slots.acquire, waiting, watch))
    thread.start()
    assert slots.cancel_client("b", "stopped by b") == 1
    thread.join(timeout=30)
    assert isinstance(failed[0], ConversionCancelled) and str(failed[0]) == "stopped by b"
    assert slots.waiting == 0 and slots.jobs_of("b") == 0


def _catch(into, fn, *args):
    try:
        fn(*args)
    except BaseException as err:  # noqa: BLE001 (the test inspects it)
        into.append(err)


@pytest.mark.parametrize("request_, key", [
    (None, "local"),
    (SimpleNamespace(username="ann", client=SimpleNamespace(host="10.0.0.2"), headers={}, session_hash="s"),
     "user:ann"),
    (SimpleNamespace(username=None, client=SimpleNamespace(host="10.0.0.2"), headers={}, session_hash="s"),
     "ip:10.0.0.2"),
    (SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"),
                     headers={"x-forwarded-for": "203.0.113.9, 10.0.0.1"}, session_hash="s"), "ip:203.0.113.9"),
    (SimpleNamespace(username=None, client=SimpleNamespace(host="127.0.0.1"), headers={}, session_hash="s1"),
     "session:s1"),
])
def test_client_key(request_, key):
    assert client_key(request_) == key


def test_a_plan_far_over_the_budget_left_is_stopped_before_it_starts():
    import queue
    import time

    from svc_core.ui.eta import DEFAULT_RATES
    from svc_core.ui.jobs import _JobWatch

    watch = _JobWatch(queue.Queue())
    watch.tracking, watch.rates = True, dict(DEFAULT_RATES)
    watch.deadline = time.monotonic() + 900  # the server's cap
    watch.on_plan([(600.0, False), (5.0, True)])  # 10 minutes of singing: about 690 s expected
    assert not watch.cancelled
    watch.on_plan([(1200.0, False)])  # a 20-minute song: about 1380 s, over 1.5 x 900
    with pytest.raises(ConversionCancelled, match=r"^Stopped before converting: this clip has 1200 s of voice, "
                                                  r"which would take about 1380 s here"):
        watch.check()
