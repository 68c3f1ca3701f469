"""Clients that vanish mid-request: the fake counts them and stays quiet (no error logs)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
T2V = "videos/text2video"
#: Upper bound on waiting for the fake to reach a state (a hang guard, not a timing check).
HANG_GUARD = 30.0


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (bounded by HANG_GUARD)."""
    async with asyncio.timeout(HANG_GUARD):
        # The fake's counters have no change notification: look again after a short yield.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def _endless_body(sent: asyncio.Event) -> AsyncIterator[bytes]:
    """The start of a create body, then nothing until the sender is cancelled."""
    yield b'{"prompt": "'
    sent.set()
    await asyncio.Event().wait()
    yield b'"}'  # pragma: no cover - never reached


async def cancel_mid_create(fake: FakeGateway, clients: int) -> None:
    """Start ``clients`` creates, wait until the fake reads every body, cancel them all."""
    url = f"{fake.url}{PREFIX}/{T2V}"
    async with aiohttp.ClientSession() as http:

        async def one() -> None:
            sent = asyncio.Event()
            async with http.post(url, data=_endless_body(sent), headers=AUTH) as response:
                await response.read()  # pragma: no cover - cancelled first

        tasks = [asyncio.ensure_future(one()) for _ in range(clients)]
        await _until(lambda: fake.stats()["create_requests"] == clients)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await _until(lambda: fake.stats()["client_disconnects"] == clients)


async def test_fifty_cancelled_creates_log_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """50 clients cancelled while sending a create: 50 counted, no WARNING/ERROR record."""
    caplog.set_level(logging.DEBUG)
    async with run_fake_gateway(time_scale=0.001) as fake:
        await cancel_mid_create(fake, 50)
        async with aiohttp.ClientSession() as http:
            url = f"{fake.url}{PREFIX}/{T2V}"
            async with http.post(url, json={"prompt": "after"}, headers=AUTH) as response:
                assert response.status == 200
        stats = fake.stats()
    assert stats["client_disconnects"] == 50
    assert stats["creates"] == 1
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []
    quiet = [r for r in caplog.records if r.name == "kling_async.testing"]
    assert len(quiet) == 50
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in quiet)
    assert all("test-endpoint" not in r.getMessage() for r in quiet)


_CHILD = """
import asyncio, json, sys
sys.path.insert(0, {tests!r})
from test_fake_disconnects import cancel_mid_create
from kling_async.testing import run_fake_gateway

async def main():
    async with run_fake_gateway(time_scale=0.001) as fake:
        await cancel_mid_create(fake, 50)
        return fake.stats()

stats = asyncio.run(main())
print(json.dumps({{"disconnects": stats["client_disconnects"], "creates": stats["creates"]}}))
"""


def test_cancelled_creates_print_no_traceback_in_a_plain_process() -> None:
    """In a process without logging setup (as the fake-server command runs), stderr stays empty."""
    code = _CHILD.format(tests=str(Path(__file__).parent))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {"disconnects": 50, "creates": 0}


async def test_connection_faults_log_no_error(caplog: pytest.LogCaptureFixture) -> None:
    """Drops, truncations and huge answers the client abandons never log a warning or error."""
    caplog.set_level(logging.DEBUG)
    mix = {
        "drop_before_store": 1.0,
        "drop_after_store": 1.0,
        "truncated": 1.0,
        "huge_body_chunked": 1.0,
    }
    config = FakeConfig(time_scale=0.001, fault_rate=1.0, fault_mix=mix, seed=3)
    outcomes: dict[str, int] = {}
    async with run_fake_gateway(config) as fake, aiohttp.ClientSession() as http:
        url = f"{fake.url}{PREFIX}/{T2V}"
        for i in range(24):
            body: Any = {"prompt": f"p{i}"}
            try:
                async with http.post(url, json=body, headers=AUTH) as response:
                    await response.content.read(1024)
                    outcome = "read"
            except aiohttp.ClientError as exc:
                outcome = type(exc).__name__
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        stats = fake.stats()
    assert sum(stats["faults_by_kind"].values()) == 24
    assert set(stats["faults_by_kind"]) == set(mix)
    assert len(outcomes) >= 2
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
