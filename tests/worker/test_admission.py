"""The admission rule in simulated time, and the retry marks, as pure units."""

from __future__ import annotations

import pytest

from tts_worker.admission import PRIOR_SECONDS, Admission, Refusal, Ticket
from tts_worker.retries import RetryTracker, attempt_number


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admission(slots: int = 2, queue: int = 4, rate: float = 100.0, slo: float = 1.0,
              max_wait: float | None = None) -> tuple[Admission, Clock]:
    clock = Clock()
    return Admission(slots, queue, rate, slo, max_wait, clock=clock), clock


def admitted(decision: Ticket | Refusal) -> Ticket:
    assert isinstance(decision, Ticket), decision
    return decision


def refused(decision: Ticket | Refusal) -> Refusal:
    assert isinstance(decision, Refusal), decision
    return decision


def test_a_free_slot_admits_at_once_whatever_the_slo() -> None:
    rule, _ = admission(slots=1, rate=1.0, slo=0.1)
    ticket = admitted(rule.try_admit(500))  # T = 500 s, far past the SLO
    assert ticket.granted


# label, SLO per 100 chars, characters in service, new request, expected outcome.
# 2 slots at 100 chars/s in all: W = backlog / 100, T = chars * 2 / 100,
# B = SLO * max(1, chars / 100).
CASES = [
    ("fits: W 0.5 + T 0.4 <= B 1", 1.0, [25, 25], 20, "queued"),
    ("misses: W 1 + T 0.4 > B 1", 1.0, [50, 50], 20, "slo"),
    ("long text misses: W 1 + T 4 > B 2", 1.0, [50, 50], 200, "slo"),
    ("a longer SLO fits it: W 1 + T 4 <= B 6", 3.0, [50, 50], 200, "queued"),
    ("short text, whole SLO: W 1 + T 0.2 <= B 3", 3.0, [50, 50], 10, "queued"),
]


@pytest.mark.parametrize(("label", "slo", "service", "chars", "outcome"), CASES,
                         ids=[c[0] for c in CASES])
def test_the_rule(label: str, slo: float, service: list[int], chars: int,
                  outcome: str) -> None:
    rule, _ = admission(slots=2, queue=4, rate=100.0, slo=slo)
    for c in service:
        assert admitted(rule.try_admit(c)).granted
    decision = rule.try_admit(chars)
    if outcome == "queued":
        assert not admitted(decision).granted
    else:
        assert refused(decision).reason == outcome


def test_retry_after_is_the_time_until_the_request_would_fit() -> None:
    rule, _ = admission(slots=1, queue=4, rate=100.0, max_wait=10.0)
    assert admitted(rule.try_admit(100)).granted  # in service: 1 s
    admitted(rule.try_admit(400))  # queued: W 1 + T 4 <= 10
    admitted(rule.try_admit(400))  # queued: W 5 + T 4 <= 10
    refusal = refused(rule.try_admit(300))  # W 9 + T 3 > 10: fits once W <= 7
    assert refusal.expected_wait == pytest.approx(9.0)
    assert refusal.service_time == pytest.approx(3.0)
    assert refusal.retry_after == 2


def test_a_full_queue_refuses_even_when_the_slo_would_hold() -> None:
    rule, _ = admission(slots=1, queue=1, rate=1000.0, slo=10.0)
    rule.try_admit(1)
    rule.try_admit(1)
    refusal = refused(rule.try_admit(1))
    assert (refusal.reason, refusal.retry_after) == ("queue_full", 1)


def test_max_wait_replaces_the_slo_budget() -> None:
    rule, _ = admission(slots=1, rate=100.0, slo=100.0, max_wait=0.5)
    rule.try_admit(100)
    refusal = refused(rule.try_admit(10))
    assert refusal.budget == 0.5 and refusal.reason == "slo"


def test_the_unfinished_part_of_work_in_service_is_what_counts() -> None:
    rule, clock = admission(slots=1, rate=100.0, slo=1.0)
    rule.try_admit(150)  # 1.5 s of work
    assert rule.expected_wait() == pytest.approx(1.5)
    refused(rule.try_admit(40))  # W 1.5 + T 0.4 > 1
    clock.now += 1.0
    assert rule.expected_wait() == pytest.approx(0.5)
    admitted(rule.try_admit(40))  # now W 0.5 + T 0.4 fits


def test_slots_are_handed_on_in_arrival_order() -> None:
    rule, _ = admission(slots=1, queue=4, rate=1000.0, slo=10.0)
    first = admitted(rule.try_admit(1))
    second = admitted(rule.try_admit(1))
    third = admitted(rule.try_admit(1))
    assert first.granted and not second.granted and not third.granted
    first.done()
    assert second.granted and not third.granted
    second.done()
    second.done()  # idempotent: a stream's end and its close both call it
    assert third.granted


def test_a_request_that_gives_up_waiting_leaves_the_queue() -> None:
    rule, _ = admission(slots=1, queue=1, rate=1000.0, slo=10.0)
    first = admitted(rule.try_admit(1))
    waiting = admitted(rule.try_admit(1))
    assert not waiting.wait_for_slot(0.01)
    admitted(rule.try_admit(1))  # its place is free again
    first.done()


def test_the_throughput_follows_what_is_measured() -> None:
    rule, clock = admission(slots=1, rate=100.0)
    assert rule.throughput == pytest.approx(100.0)
    for _ in range(60):  # a minute of serving 400 chars a second, one slot busy
        ticket = admitted(rule.try_admit(400))
        clock.now += 1.0
        ticket.done()
    assert 350 < rule.throughput <= 400


def test_idle_time_is_not_counted_as_slow_serving() -> None:
    rule, clock = admission(slots=1, rate=100.0)
    ticket = admitted(rule.try_admit(100))
    clock.now += 1.0
    ticket.done()
    clock.now += 3600.0  # an idle hour
    ticket = admitted(rule.try_admit(100))
    clock.now += 1.0
    ticket.done()
    assert rule.throughput == pytest.approx(100.0)


def test_the_prior_weighs_a_few_busy_seconds() -> None:
    rule, clock = admission(slots=1, rate=100.0)
    ticket = admitted(rule.try_admit(1000))
    clock.now += PRIOR_SECONDS  # as long as the prior weighs: halfway to the new rate
    ticket.done()
    assert rule.throughput == pytest.approx((100 * PRIOR_SECONDS + 1000)
                                            / (2 * PRIOR_SECONDS), rel=0.15)


@pytest.mark.parametrize(("value", "number"), [
    (None, 0), ("0", 0), ("3", 3), (" 2 ", 2), ("-1", 0), ("1e3", 0), ("x", 0), ("", 0),
    ("9" * 40, 0), ("٣", 0),  # an Arabic-Indic three is a digit to str.isdigit()
])
def test_attempt_numbers(value: str | None, number: int) -> None:
    assert attempt_number(value) == number


def test_retry_marks_and_remembered_ids() -> None:
    clock = Clock()
    tracker = RetryTracker(ttl=60, max_ids=3, clock=clock)
    assert not tracker.is_retry({})
    assert tracker.is_retry({"X-Retry-Attempt": "1"})
    assert tracker.is_retry({"X-Stainless-Retry-Count": "2"})
    assert not tracker.is_retry({"X-Request-Id": "a"})
    assert tracker.is_retry({"X-Request-Id": "a"})
    clock.now += 61
    assert not tracker.is_retry({"X-Request-Id": "a"})  # forgotten after the ttl
    for name in "bcd":
        tracker.is_retry({"X-Request-Id": name})
    assert not tracker.is_retry({"X-Request-Id": "a"})  # pushed out: at most 3 kept
    assert not tracker.is_retry({"X-Request-Id": "x" * 201})  # too long to remember
    assert not tracker.is_retry({"X-Request-Id": "x" * 201})
