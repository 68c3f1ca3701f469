"""Opening a session does a process's first-use work once, before any batch."""

from __future__ import annotations

import gc

import pytest

from kling_async import ClientConfig, HTTPResponse, KlingSession, _send
from kling_async.testing import MockTransport

CONFIG = ClientConfig(api_key="k", endpoint_path="p", base_url="http://kling.test")


def transport() -> MockTransport:
    return MockTransport(lambda request: HTTPResponse.from_json({"code": 0}, status=200))


async def test_the_first_session_of_a_process_collects_garbage_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection at the first open (not in a batch's first creates), none later."""
    collections: list[int] = []
    monkeypatch.setattr(_send._first_open, "done", False)
    monkeypatch.setattr(_send.gc, "collect", lambda *a: collections.append(1) or 0)
    async with KlingSession(config=CONFIG, transport=transport()):
        assert collections == [1]
    async with KlingSession(config=CONFIG, transport=transport()):
        pass
    assert collections == [1]


async def test_a_disabled_collector_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the collector off (the application's choice), opening collects nothing."""
    collections: list[int] = []
    monkeypatch.setattr(_send._first_open, "done", False)
    monkeypatch.setattr(_send.gc, "collect", lambda *a: collections.append(1) or 0)
    gc.disable()
    try:
        async with KlingSession(config=CONFIG, transport=transport()):
            pass
    finally:
        gc.enable()
    assert collections == []
    assert _send._first_open.done
