"""Shared test configuration.

aioresponses 0.7.9 builds its mocked ``ClientResponse`` without the
``stream_writer`` argument that aiohttp 3.14 made mandatory. The ``mock_http``
fixture patches in a subclass that supplies a stand-in writer, so aioresponses
keeps working without pinning aiohttp below its security release.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses, core

from kling_async._backoff import set_testing


class _StreamWriterStandIn:
    """The little of ``AbstractStreamWriter`` a finished mocked response touches."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _StreamWriterStandIn())
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mock_http() -> Iterator[aioresponses]:
    """aioresponses, made to work with aiohttp 3.14."""
    with mock.patch.object(core, "ClientResponse", _CompatClientResponse), aioresponses() as m:
        yield m


@pytest.fixture
def no_delays() -> Iterator[None]:
    """Zero every SDK-internal retry and poll delay for the duration of a test."""
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)
