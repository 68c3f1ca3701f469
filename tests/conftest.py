"""Shared test configuration.

Tests that need a gateway without sockets use :class:`kling_async.testing.MockTransport`
at the session's transport seam; nothing patches aiohttp's internals.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kling_async._backoff import set_testing


@pytest.fixture
def no_delays() -> Iterator[None]:
    """Zero every SDK-internal retry and poll delay for the duration of a test."""
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)
