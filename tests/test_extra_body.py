"""One strict path for models too: extra_body sends fields the SDK does not know, warnings warn."""

from __future__ import annotations

import json

import pytest

from kling_async import (
    ClientConfig,
    HTTPRequest,
    HTTPResponse,
    KlingSession,
    KlingWarning,
    RetryPolicy,
    TextToVideoRequest,
    ValidationError,
)
from kling_async.testing import MockTransport

CONFIG = ClientConfig(
    api_key="mock-key",
    endpoint_path="ep",
    base_url="http://kling.test",
    retry=RetryPolicy(max_attempts=1),
)


def _created(request: HTTPRequest) -> HTTPResponse:
    data = {"task_id": "t-1", "task_status": "submitted", "task_info": {}}
    return HTTPResponse.from_json({"code": 0, "request_id": "r", "data": data})


async def test_extra_body_fields_are_sent_as_written() -> None:
    """A field the SDK does not know is sent, merged beside the model's own fields."""
    transport = MockTransport(_created)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        await session.create(
            TextToVideoRequest(prompt="a cat"), extra_body={"brand_new_field": {"x": 1.5}}
        )
    body = json.loads(transport.requests[0].body or b"")
    assert body["prompt"] == "a cat"
    assert body["brand_new_field"] == {"x": 1.5}


async def test_known_fields_in_extra_body_are_still_checked() -> None:
    """extra_body cannot smuggle a broken documented field past validation; nothing is sent."""
    transport = MockTransport(_created)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        with pytest.raises(ValidationError) as caught:
            await session.create(TextToVideoRequest(prompt="a cat"), extra_body={"duration": 5.0})
    assert "duration" in str(caught.value)
    assert transport.requests == []


async def test_inferred_rules_warn_on_the_session_path() -> None:
    """An unknown model name warns (KlingWarning) and the request is still sent."""
    transport = MockTransport(_created)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        with pytest.warns(KlingWarning):
            await session.create(TextToVideoRequest(prompt="a cat", model_name="kling-v9-future"))
    assert json.loads(transport.requests[0].body or b"")["model_name"] == "kling-v9-future"


async def test_an_empty_external_id_means_none_and_one_is_chosen() -> None:
    """The seeds send "" for "no id": the session chooses one, so an unclear create can be found."""
    transport = MockTransport(_created)
    async with KlingSession(config=CONFIG, transport=transport) as session:
        task = await session.create(TextToVideoRequest(prompt="a cat", external_task_id=""))
    sent = json.loads(transport.requests[0].body or b"")["external_task_id"]
    assert sent
    assert task.external_id == sent
