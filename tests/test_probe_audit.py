"""The slot probe's audit and back-off: probes past max_running stay sound and bounded."""

from __future__ import annotations

import time

from kling_async import ClientConfig, TextToVideoRequest
from kling_async._config import PollPolicy
from kling_async._endpoints import endpoint_for
from kling_async._schedule import PollPlanner, kind_of
from kling_async.batch._job import Job
from kling_async.batch._probe import ProbeAudit
from kling_async.batch._sums import expected_freed


def make_job(i: int, created_at: float) -> Job:
    request = TextToVideoRequest(prompt=f"clip {i}")
    endpoint = endpoint_for("text2video")
    job = Job(f"k{i}", request, endpoint, f"ext-{i}", kind_of("text2video", {}), 1)
    job.created_at = created_at
    return job


def test_a_probe_landing_while_every_task_is_seen_running_after_it_disproves_the_cap() -> None:
    """Accepted, then every task running when it left is seen running later: more slots."""
    running = {make_job(i, 0.0) for i in range(3)}
    audit = ProbeAudit(running)
    probe = make_job(9, 0.0)
    audit.sent(probe, 1.0)
    audit.landed(probe)
    later = time.monotonic() + 1.0
    for job in list(running):
        assert not audit.disproved
        audit.seen_running(job, later)
    assert audit.disproved


def test_a_probe_under_the_cap_restarts_the_credit_but_never_disproves_it() -> None:
    """Past the window only: a landing with every task running shows a small window."""
    jobs = [make_job(i, 0.0) for i in range(3)]
    audit = ProbeAudit(set(jobs))
    probe = make_job(9, 0.0)
    audit.sent(probe, 1.0, past_cap=False)
    audit.landed(probe)
    assert audit.credit_since == 1.0
    assert audit.unexplained() == 1
    later = time.monotonic() + 1.0
    for job in jobs:
        audit.seen_running(job, later)
    assert not audit.disproved
    assert audit.unexplained() == 0  # explained: the window was smaller than the quota


def test_a_witness_that_ends_explains_the_landing() -> None:
    """One of the tasks running when the probe left ends: the slot was ours; no disproof."""
    jobs = [make_job(i, 0.0) for i in range(3)]
    running = set(jobs)
    audit = ProbeAudit(running)
    probe = make_job(9, 0.0)
    audit.sent(probe, 1.0)
    audit.landed(probe)
    later = time.monotonic() + 1.0
    audit.seen_running(jobs[0], later)
    audit.ended(jobs[1])
    audit.seen_running(jobs[2], later)
    assert not audit.disproved


def test_sightings_before_the_acceptance_came_back_prove_nothing() -> None:
    """A task seen running before the probe's answer may still have ended before it landed."""
    jobs = [make_job(i, 0.0) for i in range(2)]
    audit = ProbeAudit(set(jobs))
    probe = make_job(9, 0.0)
    audit.sent(probe, 1.0)
    early = time.monotonic()
    audit.landed(probe)
    for job in jobs:
        audit.seen_running(job, early)
    assert not audit.disproved


def test_a_landed_probe_restarts_the_freed_slot_credit_of_its_witnesses() -> None:
    """After a landing the expected freed slots count from the probe's send, not from zero."""
    jobs = [make_job(i, 0.0) for i in range(2)]
    audit = ProbeAudit(set(jobs))
    probe = make_job(9, 0.0)
    audit.sent(probe, 50.0)
    audit.landed(probe)
    assert audit.credit_since == 50.0
    planner = PollPlanner(PollPolicy())
    for i in range(21):
        planner.observe(jobs[0].kind, (40.0, 60.0, 80.0)[i % 3])
    running = set(jobs)
    fresh = expected_freed(planner, running, 61.0).expected
    after = expected_freed(planner, running, 61.0, audit.credit_since).expected
    assert fresh > 0.8  # past the median life: each has more likely ended than not
    assert after < 0.8 * fresh  # a third of them end between 50 s and 61 s, not half


def test_time_scaled_config_remembers_its_factor() -> None:
    """time_scaled records the gateway's clock factor (batches count refusals on it)."""
    config = ClientConfig(api_key="k", endpoint_path="p")
    assert config.time_factor == 1.0
    assert config.time_scaled(0.01).time_scaled(0.5).time_factor == 0.005


def refuse_until_back_off(probe: object, expected: float, limit: int = 500) -> int:
    """Refuse probes sent at ``expected`` freed slots until one backs off; how many."""
    for count in range(1, limit + 1):
        probe._fire(expected)  # type: ignore[attr-defined]
        probe.go = False  # type: ignore[attr-defined]
        probe.refused()  # type: ignore[attr-defined]
        if probe._not_before > 0.0:  # type: ignore[attr-defined]
            return count
    return limit + 1


def bare_probe() -> object:
    from kling_async.batch._probe import SlotProbe

    gate = type("Gate", (), {"wake": type("W", (), {"set": lambda self: None})()})()
    return SlotProbe(gate=gate, running=None, results=None, probe_slots=None, threshold=0.2)  # type: ignore[arg-type]


def test_refused_probes_back_off_once_their_promised_landings_add_up_past_the_surprise() -> None:
    """At 0.2 expected each promises 1 - e^-0.2 = 0.18 landings: the 17th refusal passes 3."""
    from kling_async.batch._probe import _SURPRISE

    assert _SURPRISE == 3.0
    probe = bare_probe()
    assert refuse_until_back_off(probe, 0.2) == 17  # a fixed count of 6 backed off in normal runs
    first = probe._not_before - time.monotonic()  # type: ignore[attr-defined]
    refuse_until_back_off(probe, 0.2)
    second = probe._not_before - time.monotonic()  # type: ignore[attr-defined]
    assert 0 < first < second  # each refusal past the surprise doubles the wait
    probe.freed()  # type: ignore[attr-defined]
    assert probe._not_before == 0.0  # type: ignore[attr-defined]
    # A freed slot starts the count again, judged by a model now known to have
    # promised 3.3 landings that never came (calibration 4 / 7.3): it lasts longer.
    assert refuse_until_back_off(probe, 0.2) == 29


def test_probes_the_durations_did_not_send_promise_nothing_and_never_back_off() -> None:
    """The quota test and a landing's burst are refused at no cost to the model's credit."""
    assert refuse_until_back_off(bare_probe(), 0.0) == 501


def test_a_model_that_overpromises_is_calibrated_before_refusals_are_held_against_it() -> None:
    """Promised twice what came: a run of refusals is half as surprising, so it lasts longer."""
    probe = bare_probe()
    for i in range(200):
        probe._fire(0.5)  # type: ignore[attr-defined]
        if i % 2:
            probe.landed()  # type: ignore[attr-defined]
        else:
            probe.refused()  # type: ignore[attr-defined]
            probe.freed()  # type: ignore[attr-defined]
    # 0.5 promises 0.39 a landing; they came half the time: 104 kept of 82.7 promised.
    assert abs(probe.calibration - 104 / 82.7) < 0.01  # type: ignore[attr-defined]
    probe = bare_probe()
    for _ in range(200):
        probe._fire(0.5)  # type: ignore[attr-defined]
        probe.refused()  # type: ignore[attr-defined]
        probe.freed()  # type: ignore[attr-defined]
    assert probe.calibration == 0.25  # type: ignore[attr-defined]  # bounded below
    assert refuse_until_back_off(probe, 0.5) > 2 * refuse_until_back_off(bare_probe(), 0.5)
