"""After a halt nothing is sent again: a create in doubt is looked up, never re-sent."""

from __future__ import annotations

from pathlib import Path

import anyio
from test_stage_create import ScriptedSession, build, make_job, run

from kling_async import (
    ClientConfig,
    HTTPRequest,
    HTTPResponse,
    KlingSession,
    NotStartedError,
    RetryPolicy,
    ServerError,
    TextToVideoRequest,
)
from kling_async._journal import JobState, Journal
from kling_async.testing import MockTransport

GUARD = 10.0  # seconds; turns a hang into a failure, never a timing check


async def test_a_clean_miss_after_a_halt_does_not_resend_the_create() -> None:
    """An unclear create, a halt, then a clean miss: the job goes back to admission unsent."""
    session = ScriptedSession([ServerError("lost", http_status=502)])
    stop = NotStartedError("admissions stopped (test)", reason="stopped")
    halted: list[NotStartedError] = []
    create, gate, _, _ = build(session)
    create._halted = lambda: halted[0] if halted else None
    job = make_job()
    await run(create, job)
    assert job.may_exist
    assert session.create_calls == 1
    halted.append(stop)
    await run(create, job)  # the due lookup: a clean miss that would allow a resend
    assert session.lookups >= 1
    assert session.create_calls == 1
    assert gate.requeued == [job]


async def test_without_a_halt_the_same_miss_does_resend() -> None:
    """The control case: no halt, a clean miss after patience sends the create again."""
    session = ScriptedSession([ServerError("lost", http_status=502)])
    create, _, _, _ = build(session)
    job = make_job()
    await run(create, job)
    await run(create, job)
    assert session.create_calls == 2


async def test_a_first_send_after_a_halt_is_not_sent() -> None:
    """A job handed to a create worker after the halt is given back, not sent."""
    session = ScriptedSession([])
    stop = NotStartedError("admissions stopped (test)", reason="stopped")
    create, gate, _, _ = build(session)
    create._halted = lambda: stop
    job = make_job()
    await run(create, job)
    assert session.create_calls == 0
    assert gate.requeued == [job]


async def test_a_batch_halted_during_doubt_keeps_the_journal_row(tmp_path: Path) -> None:
    """Through a real batch: one create sent, halt while in doubt, row stays 'creating'."""
    creates: list[HTTPRequest] = []
    sent = anyio.Event()
    stopped = anyio.Event()

    def gateway(request: HTTPRequest) -> HTTPResponse:
        if request.method == "POST":
            creates.append(request)
            sent.set()
            return HTTPResponse.from_json({"code": 5000, "message": "lost"}, status=502)
        if stopped.is_set():
            return HTTPResponse.from_json({"code": 1203, "message": "no task"}, status=404)
        # Lookups before the halt fail unclearly, so the job stays in doubt.
        return HTTPResponse.from_json({"code": 5000, "message": "busy"}, status=503)

    config = ClientConfig(
        api_key="k",
        endpoint_path="p",
        base_url="http://kling.test",
        retry=RetryPolicy(
            max_attempts=1, initial_delay=0.0, max_delay=0.01, reconcile_interval=0.001
        ),
    )
    journal = tmp_path / "run.db"
    async with KlingSession(config=config, transport=MockTransport(gateway)) as session:
        with anyio.fail_after(GUARD):
            async with session.batch(max_running=1, journal=journal, lookup_patience=0.0) as batch:
                handle = batch.submit(TextToVideoRequest(prompt="a lighthouse"), key="lh")
                await sent.wait()
                batch.stop_admitting("test")
                stopped.set()
                result = await handle.wait()
    assert len(creates) == 1
    assert result.status == "not_started"
    entry = Journal(journal).get("lh")
    assert entry is not None
    assert entry.state in (JobState.CREATING, JobState.UNKNOWN)
