"""One way to scale time for a fast fake: ClientConfig.time_scaled, used by every fixture."""

from __future__ import annotations

from kling_async import ClientConfig, KlingSession, TextToVideoRequest
from kling_async.testing import FakeGateway
from kling_async.testing._pytest_plugin import FAST_TIME_SCALE, FakeFactory, fast_session_options


def _scaled(factor: float) -> ClientConfig:
    return ClientConfig(api_key="k", endpoint_path="e").time_scaled(factor)


def test_fast_session_options_are_the_time_scaled_defaults() -> None:
    """fast_session_options() is time_scaled(FAST_TIME_SCALE), not a hand-made copy."""
    expected = _scaled(FAST_TIME_SCALE)
    options = fast_session_options()
    assert (options["poll"], options["retry"], options["slot_ttl"]) == (
        expected.poll,
        expected.retry,
        expected.slot_ttl,
    )
    assert fast_session_options(0.01)["poll"] == _scaled(0.01).poll


async def test_the_kling_session_fixture_runs_on_the_fakes_clock(
    kling_fake: FakeGateway, kling_session: KlingSession
) -> None:
    """The fixture's session is time-scaled to its fake and finishes a video run."""
    assert kling_session.config.poll == _scaled(kling_fake.config.time_scale).poll
    task = await kling_session.run(TextToVideoRequest(prompt="a heron"))
    assert task.succeeded
    assert kling_fake.stats()["creates"] == 1


async def test_fake_sessions_follow_the_fakes_own_scale(kling_fake_factory: FakeFactory) -> None:
    """fake.session() scales by that fake's time_scale; explicit fields still win."""
    async with kling_fake_factory(time_scale=0.01) as fake:
        session = fake.session()
        assert session.config.poll == _scaled(0.01).poll
        assert session.config.retry == _scaled(0.01).retry
        own = fake.session(max_running=2, poll=_scaled(0.5).poll)
        assert (own.config.max_running, own.config.poll) == (2, _scaled(0.5).poll)
        official = fake.session(backend="kling")
        assert official.config.backend == "kling"
        assert official.config.token_clock == fake.token_clock
        assert official.config.poll == _scaled(0.01).poll
        for made in (session, own, official):
            await made.aclose()


async def test_the_quickstart_from_the_environment_returns_on_the_fakes_clock(
    kling_fake: FakeGateway,
) -> None:
    """KLING_TIME_SCALE in the environment: from_env's session polls within milliseconds."""
    environ = {
        "KLING_ACCESS_KEY": kling_fake.access_key,
        "KLING_SECRET_KEY": kling_fake.secret_key,
        "KLING_BASE_URL": kling_fake.url,
        "KLING_TIME_SCALE": str(kling_fake.config.time_scale),
    }
    async with KlingSession.from_env(environ=environ) as session:
        assert session.config.poll.initial_delay == _scaled(FAST_TIME_SCALE).poll.initial_delay
        task = await session.run(TextToVideoRequest(prompt="a quick one"))
    assert task.succeeded
    stats = kling_fake.stats()
    assert (stats["creates"], stats["auth_failures"]) == (1, 0)
    assert stats["token_requests"] == stats["api_requests"]
