"""Progress that informs: an ETA from learned durations, throttling, clean plain lines."""

from __future__ import annotations

import io

import pytest

from kling_async import ConcurrencyLimitedError, Event, EventKind, RateLimitedError
from kling_async.cli._eta import DurationModel, estimate_remaining
from kling_async.cli._progress import THROTTLE_WINDOW, ProgressReporter


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(kind: EventKind, key: str, at: float, error: BaseException | None = None) -> Event:
    """A batch event stamped ``at``."""
    return Event(kind=kind, key=key, time=at, error=error)


def test_estimate_plays_queued_jobs_through_the_slots() -> None:
    """Two slots, one task 4 s from its end, one overdue, three 10 s jobs waiting: 20 s."""
    remaining = estimate_remaining(
        running=[(6.0, 10.0), (12.0, 10.0)], queued=[10.0, 10.0, 10.0], slots=2
    )
    # Slot A frees at 0 (overdue), slot B at 4; jobs start at 0, 4, 10 and end by 20.
    assert remaining == pytest.approx(20.0)


def test_estimate_is_zero_when_nothing_is_left_and_uses_free_slots() -> None:
    """Nothing left: 0. Free slots take queued jobs at once."""
    assert estimate_remaining(running=[], queued=[], slots=4) == 0.0
    assert estimate_remaining(running=[], queued=[5.0, 5.0, 5.0], slots=4) == pytest.approx(5.0)


def test_duration_model_uses_the_family_then_every_task() -> None:
    """The median of a family's tasks; all tasks' median for a family not seen yet."""
    model = DurationModel()
    assert not model.learned
    assert model.expected("text2video") is None
    for seconds in (10.0, 30.0, 20.0):
        model.add("text2video", seconds)
    model.add("text-to-audio", 2.0)
    assert model.learned
    assert model.expected("text2video") == pytest.approx(20.0)
    assert model.expected("text-to-audio") == pytest.approx(2.0)
    assert model.expected("image-generation") == pytest.approx(15.0)


def test_eta_comes_from_learned_durations_once_a_task_ended() -> None:
    """After one 100 s task, two running for 40 s and one queued on 2 slots end in 160 s."""
    clock = Clock()
    keys = ["a", "b", "c", "d"]
    reporter = ProgressReporter(
        4,
        mode="off",
        families=dict.fromkeys(keys, "text2video"),
        slots=2,
        clock=clock,
        downloads=False,
    )
    t0 = clock.now
    reporter.on_event(event(EventKind.CREATED, "a", t0))
    reporter.on_event(event(EventKind.SUCCEEDED, "a", t0 + 100))
    reporter.set_state("a", "succeeded")
    reporter.on_event(event(EventKind.CREATED, "b", t0 + 100))
    reporter.on_event(event(EventKind.CREATED, "c", t0 + 100))
    reporter.on_event(event(EventKind.QUEUED, "d", t0 + 100))
    clock.now = t0 + 140
    # b and c end at +60 s; d starts then and takes 100 s.
    assert reporter.eta() == pytest.approx(160.0)
    assert "ETA 2:40" in reporter.plain_line()


def test_eta_is_unknown_before_anything_ended() -> None:
    """No task has ended: the ETA shows as --:--."""
    reporter = ProgressReporter(3, mode="off", clock=Clock())
    reporter.on_event(event(EventKind.CREATED, "a", 1000.0))
    assert reporter.eta() is None
    assert "ETA --:--" in reporter.plain_line()


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ConcurrencyLimitedError("busy", http_status=429, code=1303), "1303 slots full"),
        (RateLimitedError("slow down", http_status=429, code=1302), "1302 request rate"),
        (RateLimitedError("slow down", http_status=429), "1302 request rate"),
    ],
)
def test_throttle_indicator_shows_recent_refusals_only(error: BaseException, shown: str) -> None:
    """A 1302/1303 shows as 'throttled now' until THROTTLE_WINDOW seconds have passed."""
    clock = Clock()
    reporter = ProgressReporter(2, mode="off", clock=clock)
    reporter.on_event(event(EventKind.THROTTLED, "a", clock.now, error))
    assert f"throttled now ({shown})" in reporter.plain_line()
    assert "throttled 1" in reporter.plain_line()
    clock.now += THROTTLE_WINDOW + 1
    assert "throttled now" not in reporter.plain_line()
    assert "throttled 1" in reporter.plain_line()


def refused_once(jobs: int) -> tuple[Clock, ProgressReporter]:
    """A reporter of ``jobs`` jobs whose job "a" was just refused with a 1303."""
    clock = Clock()
    reporter = ProgressReporter(jobs, mode="off", clock=clock)
    busy = ConcurrencyLimitedError("busy", http_status=429, code=1303)
    reporter.on_event(event(EventKind.THROTTLED, "a", clock.now, busy))
    return clock, reporter


def test_throttle_indicator_is_gone_once_every_job_is_done() -> None:
    """A refusal seconds before the last job ended is not 'throttled now' on the last line."""
    _, reporter = refused_once(1)
    assert "throttled now" in reporter.plain_line()
    reporter.set_state("a", "succeeded")  # from its result, as the batch command does
    assert reporter.done == 1
    assert "throttled now" not in reporter.plain_line()
    assert "throttled 1" in reporter.plain_line()


def test_full_slots_are_not_throttling_once_no_job_waits() -> None:
    """A 1303 holds back only queued jobs: with none left it is not 'throttled now'; a 1302 is."""
    clock, reporter = refused_once(2)
    assert "throttled now (1303 slots full)" in reporter.plain_line()
    reporter.set_state("a", "processing")
    reporter.set_state("b", "processing")
    assert "throttled now" not in reporter.plain_line()
    assert "throttled 1" in reporter.plain_line()
    slow = RateLimitedError("slow down", http_status=429, code=1302)
    reporter.on_event(event(EventKind.THROTTLED, "b", clock.now, slow))
    reporter.set_state("b", "processing")
    assert "throttled now (1302 request rate)" in reporter.plain_line()


async def test_plain_lines_carry_no_control_characters() -> None:
    """Notes and titles with escapes or line breaks come out as one clean line each."""
    stream = io.StringIO()
    async with ProgressReporter(
        2, title="batch\r\x1b[2K", mode="plain", stream=stream, interval=3600
    ) as reporter:
        reporter.note("Stopping:\x1b[31m red\nnext line\r")
        reporter.set_state("a", "succeeded")
    text = stream.getvalue()
    assert text.count("\n") == len(text.splitlines())
    assert not any(ord(c) < 0x20 and c != "\n" for c in text)
    assert "\x1b" not in text
    assert len(text.splitlines()) == 2  # the note, then the last frame
