"""ClientConfig picks the gateway or Kling's own API through one rule, and keeps the choice."""

from __future__ import annotations

import attrs
import pytest

from kling_async import ClientConfig, ConfigurationError, KlingSession
from kling_async._auth import SCALED_CLOCK_ANCHOR, JwtAuth
from kling_async._backends import (
    ENV_ACCESS_KEY,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_ENDPOINT_PATH,
    ENV_SECRET_KEY,
    GATEWAY_BASE_URL,
    KLING_HOSTS,
)
from kling_async._config import ENV_TIME_SCALE

AK, SK, KEY = "ak-canary-51", "sk-canary-52", "key-canary-53"
PAIR_ENV = {ENV_ACCESS_KEY: AK, ENV_SECRET_KEY: SK}


def _no_secret(text: str) -> None:
    for secret in (AK, SK, KEY):
        assert secret not in text


def test_from_env_picks_kling_when_the_pair_is_set_and_no_endpoint_path() -> None:
    """KLING_ACCESS_KEY and KLING_SECRET_KEY alone: Kling's own API on the global host."""
    config = ClientConfig.from_env(PAIR_ENV)
    assert (config.backend, config.base_url, config.turbo_base_url) == (
        "kling",
        KLING_HOSTS["global"],
        "",
    )
    assert (config.access_key, config.secret_key, config.endpoint_path) == (AK, SK, None)
    assert isinstance(config.credentials().key_pair, JwtAuth)


def test_from_env_keeps_the_gateway_by_default() -> None:
    """KLING_API_KEY with KLING_ENDPOINT_PATH: the gateway, its two default hosts."""
    config = ClientConfig.from_env({ENV_API_KEY: KEY, ENV_ENDPOINT_PATH: "ep"})
    assert (config.backend, config.base_url, config.endpoint_path) == (
        "gateway",
        GATEWAY_BASE_URL,
        "ep",
    )


def test_from_env_host_and_policy_overrides() -> None:
    """A host argument wins over KLING_BASE_URL; other fields pass straight through."""
    config = ClientConfig.from_env(
        {**PAIR_ENV, ENV_BASE_URL: "http://127.0.0.1:9"}, host="china", max_running=3
    )
    assert (config.base_url, config.host, config.max_running) == (
        KLING_HOSTS["china"],
        "china",
        3,
    )


def test_settings_of_both_backends_are_a_clear_error() -> None:
    """A key pair beside an endpoint path: the error names both sides and --backend."""
    with pytest.raises(ConfigurationError, match=r"endpoint_path.*access_key") as caught:
        ClientConfig(access_key=AK, secret_key=SK, endpoint_path="ep", api_key=KEY)
    _no_secret(str(caught.value))
    with pytest.raises(ConfigurationError) as from_env:
        ClientConfig.from_env({**PAIR_ENV, ENV_API_KEY: KEY, ENV_ENDPOINT_PATH: "ep"})
    for name in (ENV_ENDPOINT_PATH, ENV_ACCESS_KEY, "backend="):
        assert name in str(from_env.value)
    _no_secret(str(from_env.value))
    with pytest.raises(ConfigurationError, match="does not read endpoint_path"):
        ClientConfig(backend="kling", api_key=KEY, endpoint_path="ep")


def test_credentials_are_checked_by_name_never_shown() -> None:
    """A line break in a key of the pair names its variable, not its value."""
    with pytest.raises(ConfigurationError, match=ENV_SECRET_KEY) as caught:
        ClientConfig(access_key=AK, secret_key=SK + "\n")
    _no_secret(str(caught.value))
    with pytest.raises(ConfigurationError, match="secret_key is not set"):
        ClientConfig(access_key=AK)
    with pytest.raises(ConfigurationError, match="token_margin"):
        ClientConfig(access_key=AK, secret_key=SK, token_lifetime=60.0, token_margin=60.0)


def test_repr_and_equality_leave_out_keys_and_the_clock() -> None:
    """No key in repr; two configs differing only in token_clock are equal."""
    config = ClientConfig(access_key=AK, secret_key=SK, api_key=KEY, host="china")
    _no_secret(repr(config))
    assert "kling" in repr(config)
    assert "token_clock" not in repr(config)
    assert attrs.evolve(config, token_clock=lambda: 0.0) == config


def test_evolve_keeps_the_resolved_choice() -> None:
    """evolve passes resolved URLs back without a conflict; a new host needs base_url=''."""
    china = ClientConfig(access_key=AK, secret_key=SK, host="china")
    assert attrs.evolve(china, max_running=2).base_url == KLING_HOSTS["china"]
    assert attrs.evolve(china, host="global", base_url="").base_url == KLING_HOSTS["global"]
    plain = ClientConfig(access_key=AK, secret_key=SK)
    assert attrs.evolve(plain, host="china").base_url == KLING_HOSTS["china"]
    local = ClientConfig(backend="official", api_key=KEY, base_url="http://127.0.0.1:7/")
    assert (local.backend, attrs.evolve(local, validate=False).base_url) == (
        "kling",
        "http://127.0.0.1:7",
    )
    gateway = ClientConfig(api_key=KEY, endpoint_path="ep", base_url="http://127.0.0.1:8")
    assert attrs.evolve(gateway, max_running=1).turbo_base_url == gateway.turbo_base_url


def test_time_scaled_moves_the_token_clock_with_the_policies() -> None:
    """time_scaled(0.001) makes token time run 1000 times as fast around the shared anchor."""
    real = [SCALED_CLOCK_ANCHOR + 10.0]
    config = ClientConfig(access_key=AK, secret_key=SK, token_clock=lambda: real[0])
    fast = config.time_scaled(0.001)
    assert fast.token_clock is not None
    assert fast.token_clock() == pytest.approx(SCALED_CLOCK_ANCHOR + 10_000.0)
    real[0] += 1.8  # one token lifetime passes on the fast clock
    assert fast.token_clock() - SCALED_CLOCK_ANCHOR == pytest.approx(11_800.0)
    assert fast.poll.initial_delay == pytest.approx(0.02)
    assert fast.time_scaled(0.5).token_clock() == pytest.approx(SCALED_CLOCK_ANCHOR + 23_600.0)


def test_kling_time_scale_is_read_by_from_env() -> None:
    """KLING_TIME_SCALE applies time_scaled; a value that is not a positive number is named."""
    config = ClientConfig.from_env({**PAIR_ENV, ENV_TIME_SCALE: "0.001"})
    assert config.poll.initial_delay == pytest.approx(0.02)
    assert config.token_clock is not None
    for bad in ("fast", "0", "-1", "inf"):
        with pytest.raises(ConfigurationError, match=ENV_TIME_SCALE):
            ClientConfig.from_env({**PAIR_ENV, ENV_TIME_SCALE: bad})


async def test_a_session_built_from_a_key_pair_speaks_kling() -> None:
    """KlingSession(access_key=..., secret_key=...) needs no endpoint path; repr names the API."""
    async with KlingSession(access_key=AK, secret_key=SK, host="china") as session:
        assert session.backend.name == "kling"
        assert session.config.base_url == KLING_HOSTS["china"]
        text = repr(session)
    assert "kling" in text
    _no_secret(text)
    with pytest.raises(ConfigurationError, match=ENV_API_KEY):
        KlingSession()
