"""pytest plugin (entry point ``pytest11``): fixtures for testing code that uses kling_async.

Fixtures (async; they need pytest-asyncio, or anyio's plugin when pytest-asyncio
is absent):

- ``kling_fake``: a running :class:`~kling_async.testing.FakeGateway` with a
  compressed clock (``time_scale=0.001``: a 100 s video takes 0.1 s),
- ``kling_session``: a :class:`~kling_async.KlingSession` wired to ``kling_fake``,
  its configuration :meth:`~kling_async.ClientConfig.time_scaled` to the fake's
  clock (polling every few milliseconds),
- ``kling_fake_factory``: ``async with kling_fake_factory(max_running=2) as fake:``
  for fakes with other settings (any :class:`~kling_async.testing.FakeConfig` field).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from ._app import FakeGateway, run_fake_gateway
from ._config import FakeConfig

if TYPE_CHECKING:
    from .._session import KlingSession

__all__ = [
    "FAST_TIME_SCALE",
    "FakeFactory",
    "fast_session_options",
    "kling_fake",
    "kling_fake_factory",
    "kling_session",
]

#: ``time_scale`` of the fixtures' fakes.
FAST_TIME_SCALE = 0.001

_F = TypeVar("_F", bound=Callable[..., Any])

try:  # pytest-asyncio (any mode) when installed; otherwise plain async fixtures for anyio.
    import pytest_asyncio

    _fixture_impl: Any = pytest_asyncio.fixture
except ImportError:  # pragma: no cover - depends on the user's plugins
    _fixture_impl = pytest.fixture


def _async_fixture(fn: _F) -> _F:
    return cast(_F, _fixture_impl(fn))


#: A factory of running fakes: call it with FakeConfig fields, use it with ``async with``.
FakeFactory = Callable[..., contextlib.AbstractAsyncContextManager[FakeGateway]]


def fast_session_options(time_scale: float = FAST_TIME_SCALE) -> dict[str, Any]:
    """:class:`~kling_async.ClientConfig` fields that make a session quick against a fast fake.

    They are the default policies passed through
    :meth:`~kling_async.ClientConfig.time_scaled`, the one place time is scaled
    (:meth:`FakeGateway.session` applies the same scaling by itself).

    Args:
        time_scale: The fake's ``time_scale``.

    Returns:
        ``poll``, ``retry`` and ``slot_ttl`` on the fake's clock.
    """
    from .._config import ClientConfig

    scaled = ClientConfig(api_key="-", endpoint_path="-").time_scaled(time_scale)
    return {"poll": scaled.poll, "retry": scaled.retry, "slot_ttl": scaled.slot_ttl}


@_async_fixture
async def kling_fake_factory() -> AsyncIterator[FakeFactory]:
    """Start fakes with chosen settings: ``async with kling_fake_factory(fail_rate=0.5) as fake``.

    Any fake still running when the test ends is closed.
    """
    async with contextlib.AsyncExitStack() as stack:
        open_fakes: list[FakeGateway] = []

        def factory(
            config: FakeConfig | None = None, **overrides: Any
        ) -> contextlib.AbstractAsyncContextManager[FakeGateway]:
            base = config if config is not None else FakeConfig(time_scale=FAST_TIME_SCALE)

            @contextlib.asynccontextmanager
            async def running() -> AsyncIterator[FakeGateway]:
                async with run_fake_gateway(base, **overrides) as fake:
                    open_fakes.append(fake)
                    try:
                        yield fake
                    finally:
                        open_fakes.remove(fake)

            return running()

        async def close_leftovers() -> None:
            for fake in list(open_fakes):
                await fake.close()

        stack.push_async_callback(close_leftovers)
        yield factory


@_async_fixture
async def kling_fake() -> AsyncIterator[FakeGateway]:
    """A running fake gateway on loopback with a compressed clock (``time_scale=0.001``)."""
    async with run_fake_gateway(FakeConfig(time_scale=FAST_TIME_SCALE)) as fake:
        yield fake


@_async_fixture
async def kling_session(kling_fake: FakeGateway) -> AsyncIterator[KlingSession]:
    """A :class:`~kling_async.KlingSession` wired to ``kling_fake``, time-scaled to its clock."""
    async with kling_fake.session() as session:
        yield session
