"""A configuration's coordination store reaches the session's slot pool."""

from __future__ import annotations

from kling_async import ClientConfig, KlingSession
from kling_async._slots import CoordinatedSlotPool, SlotPool
from kling_async.coordination import InProcessSlotStore

ENV = {"KLING_API_KEY": "k", "KLING_ENDPOINT_PATH": "p", "KLING_BASE_URL": "http://127.0.0.1:9"}


def test_from_env_reads_kling_coordinate_and_hides_it() -> None:
    """KLING_COORDINATE sets coordination; a password in the URL never reaches repr."""
    config = ClientConfig.from_env({**ENV, "KLING_COORDINATE": "redis://:hunter2@127.0.0.1:1/0"})
    assert config.coordination == "redis://:hunter2@127.0.0.1:1/0"
    assert "hunter2" not in repr(config)
    assert ClientConfig.from_env(ENV).coordination is None


def test_an_argument_wins_over_the_environment() -> None:
    """An explicit coordination argument wins over KLING_COORDINATE."""
    store = InProcessSlotStore(max_capacity=3)
    config = ClientConfig.from_env({**ENV, "KLING_COORDINATE": "redis://x"}, coordination=store)
    assert config.coordination is store


async def test_session_slots_are_shared_when_coordinated() -> None:
    """With a store the session's pool is coordinated; without one it stays local."""
    store = InProcessSlotStore(max_capacity=3)
    async with KlingSession(config=ClientConfig.from_env(ENV, coordination=store)) as session:
        assert isinstance(session.slots, CoordinatedSlotPool)
    async with KlingSession(config=ClientConfig.from_env(ENV)) as session:
        assert type(session.slots) is SlotPool
