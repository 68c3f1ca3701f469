"""Backends as data: the gateway's and Kling's route tables, and choosing between them."""

from __future__ import annotations

import pytest

from kling_async import _config
from kling_async._auth import ApiKeyAuth, JwtAuth
from kling_async._backends import (
    BACKENDS,
    ENV_ACCESS_KEY,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_ENDPOINT_PATH,
    ENV_SECRET_KEY,
    ENV_TURBO_BASE_URL,
    GATEWAY,
    GATEWAY_BASE_URL,
    GATEWAY_TURBO_BASE_URL,
    KLING,
    KLING_HOSTS,
    KLING_PATHS,
    QueryBy,
    backend_named,
    kling_backend,
    resolve_backend,
)
from kling_async._endpoints import ENDPOINTS, Host
from kling_async._errors import ConfigurationError

AK, SK, KEY = "ak-canary-91", "sk-canary-92", "key-canary-93"
PAIR_ENV = {ENV_ACCESS_KEY: AK, ENV_SECRET_KEY: SK}
GATEWAY_ENV = {ENV_API_KEY: KEY, ENV_ENDPOINT_PATH: "ep-canary-94"}


def _no_secret(error: BaseException) -> None:
    text = str(error)
    for secret in (AK, SK, KEY, "ep-canary-94"):
        assert secret not in text


# --- the tables ---------------------------------------------------------------------------------


def test_the_gateway_table_mirrors_the_endpoint_table() -> None:
    """Each family keeps its gateway path and host; turbo is queried through GET tasks."""
    assert [route.endpoint for route in GATEWAY.routes] == list(ENDPOINTS)
    for route in GATEWAY.routes:
        ep = route.endpoint
        assert (route.path, route.host, route.list_path, route.api_key_only) == (
            ep.path,
            ep.host,
            None,
            False,
        )
        expected = (
            QueryBy.NONE if not ep.is_task else QueryBy.TASKS if ep.is_turbo else QueryBy.PATH
        )
        assert route.query_by is expected
    assert (GATEWAY.max_ids_per_query, GATEWAY.mixed_id_query) == (100, True)
    assert not GATEWAY.supports_list_query
    assert not GATEWAY.accepts_key_pair


def test_every_family_has_an_official_path() -> None:
    """KLING_PATHS covers the endpoint table exactly, so the official table is complete."""
    assert set(KLING_PATHS) == {ep.name for ep in ENDPOINTS}
    assert [route.endpoint for route in KLING.routes] == list(ENDPOINTS)


def test_official_rows_are_derived_from_the_gateway_rows() -> None:
    """Classic: v1/<gateway path>, queried by path, listed on it; turbo: new paths, API key."""
    for route in KLING.routes:
        ep = route.endpoint
        assert route.host is Host.CLASSIC
        assert route.path == KLING_PATHS[ep.name]
        if ep.is_turbo:
            assert route.path == ep.path.removeprefix("videos/")
            assert (route.query_by, route.list_path, route.api_key_only) == (
                QueryBy.TASKS,
                None,
                True,
            )
        else:
            assert route.path == f"v1/{ep.path}"
            assert route.api_key_only is False
        if ep.is_task and not ep.is_turbo:
            assert route.query_path == f"{route.path}/{{id}}"
            assert route.list_path == route.path
    face = KLING.route("identify-face")
    assert (face.query_by, face.query_path, face.list_path) == (QueryBy.NONE, None, None)
    assert KLING.route("turbo-text2video").path == "text-to-video/kling-3.0-turbo"
    assert KLING.route("turbo-image2video").path == "image-to-video/kling-3.0-turbo"


def test_official_settings_differ_where_the_api_does() -> None:
    """Kling's API: 20 ids per query, one id kind per query, API key only, lists of 500."""
    assert (KLING.max_ids_per_query, KLING.mixed_id_query, KLING.tasks_api_key_only) == (
        20,
        False,
        True,
    )
    assert (KLING.list_page_size, KLING.max_list_page) == (500, 1000)
    assert KLING.supports_list_query
    assert KLING.accepts_key_pair
    assert KLING.tasks_path == "tasks"
    assert kling_backend(max_ids_per_query=50).max_ids_per_query == 50


def test_a_family_without_an_official_path_cannot_be_built() -> None:
    """Dropping a family from the path map fails loudly instead of serving half a table."""
    partial = {k: v for k, v in KLING_PATHS.items() if k != "avatar"}
    with pytest.raises(KeyError, match="avatar"):
        kling_backend(paths=partial)


def test_prefixes_and_routes_by_name() -> None:
    """The gateway prefix escapes the segment and requires it; Kling's is the root."""
    assert GATEWAY.prefix("my seg") == "/v1/ai/my%20seg/kling/"
    with pytest.raises(ConfigurationError, match="endpoint_path"):
        GATEWAY.prefix(None)
    assert KLING.prefix() == "/"
    assert KLING.route("text-to-video").endpoint.name == "text2video"
    assert KLING.route(ENDPOINTS[0]) is KLING.routes[0]


def test_backends_by_name_and_alias() -> None:
    """gateway, kling and the alias official are known; anything else is refused."""
    assert backend_named("gateway") is GATEWAY
    assert backend_named(" Kling ") is KLING
    assert backend_named("official") is KLING
    assert backend_named(KLING) is KLING
    assert set(BACKENDS) == {"gateway", "kling"}
    with pytest.raises(ConfigurationError, match="gateway, kling"):
        backend_named("openai")


def test_names_and_defaults_agree_with_the_client_config() -> None:
    """Until _config imports them from here, both modules spell the same names and hosts."""
    assert (ENV_API_KEY, ENV_ENDPOINT_PATH, ENV_BASE_URL, ENV_TURBO_BASE_URL) == (
        _config.ENV_API_KEY,
        _config.ENV_ENDPOINT_PATH,
        _config.ENV_BASE_URL,
        _config.ENV_TURBO_BASE_URL,
    )
    assert (GATEWAY_BASE_URL, GATEWAY_TURBO_BASE_URL) == (
        _config.DEFAULT_BASE_URL,
        _config.DEFAULT_TURBO_BASE_URL,
    )


# --- choosing a backend -------------------------------------------------------------------------


def test_a_key_pair_without_an_endpoint_path_picks_kling() -> None:
    """KLING_ACCESS_KEY/KLING_SECRET_KEY alone: Kling's API on the global host, tokens."""
    settings = resolve_backend(PAIR_ENV)
    assert settings.backend is KLING
    assert settings.base_url == settings.turbo_base_url == KLING_HOSTS["global"]
    assert settings.uses_key_pair
    assert settings.root(Host.CLASSIC) == "https://api-singapore.klingai.com/"
    credentials = settings.credentials()
    assert isinstance(credentials.key_pair, JwtAuth)
    assert credentials.api_key is None
    route = KLING.route("turbo-text2video")
    with pytest.raises(ConfigurationError, match="API key only") as caught:
        credentials.pick(api_key_only=route.api_key_only, what=route.endpoint.name)
    _no_secret(caught.value)


def test_the_gateway_stays_the_default() -> None:
    """KLING_API_KEY and KLING_ENDPOINT_PATH pick the gateway, as before this change."""
    settings = resolve_backend({**GATEWAY_ENV, ENV_BASE_URL: "http://127.0.0.1:9/"})
    assert settings.backend is GATEWAY
    assert (settings.base_url, settings.turbo_base_url) == (
        "http://127.0.0.1:9",
        GATEWAY_TURBO_BASE_URL,
    )
    assert settings.root(Host.CLASSIC) == "http://127.0.0.1:9/v1/ai/ep-canary-94/kling/"
    assert isinstance(settings.credentials().api_key, ApiKeyAuth)


def test_environment_of_both_backends_is_a_clear_error() -> None:
    """A pair and an endpoint path in the environment: the error names both variables."""
    with pytest.raises(ConfigurationError) as caught:
        resolve_backend({**GATEWAY_ENV, **PAIR_ENV})
    message = str(caught.value)
    for name in (ENV_ENDPOINT_PATH, ENV_ACCESS_KEY, ENV_SECRET_KEY, "backend="):
        assert name in message
    _no_secret(caught.value)


def test_arguments_of_both_backends_are_a_clear_error() -> None:
    """access_key with endpoint_path as arguments: the error names both settings."""
    with pytest.raises(ConfigurationError, match=r"endpoint_path.*access_key") as caught:
        resolve_backend(access_key=AK, secret_key=SK, endpoint_path="ep-canary-94")
    _no_secret(caught.value)


def test_a_named_backend_refuses_the_other_ones_arguments() -> None:
    """backend='kling' with endpoint_path, or 'gateway' with a key pair, is refused."""
    with pytest.raises(ConfigurationError, match="does not read endpoint_path"):
        resolve_backend(backend="kling", api_key=KEY, endpoint_path="ep")
    with pytest.raises(ConfigurationError, match="does not read access_key, secret_key"):
        resolve_backend(backend="gateway", access_key=AK, secret_key=SK)


def test_a_named_backend_ignores_the_other_ones_environment() -> None:
    """--backend picks one API; variables meant for the other stay unused, not an error."""
    both = {**GATEWAY_ENV, **PAIR_ENV}
    gateway = resolve_backend(both, backend="gateway")
    assert (gateway.backend, gateway.access_key) == (GATEWAY, None)
    kling = resolve_backend(both, backend="kling")
    assert (kling.backend, kling.endpoint_path, kling.api_key) == (KLING, None, KEY)
    assert kling.uses_key_pair


def test_arguments_win_over_the_environment() -> None:
    """An endpoint_path argument picks the gateway even with a pair in the environment."""
    settings = resolve_backend(PAIR_ENV, api_key=KEY, endpoint_path="ep")
    assert settings.backend is GATEWAY
    kling = resolve_backend(GATEWAY_ENV, access_key=AK, secret_key=SK)
    assert (kling.backend, kling.api_key) == (KLING, KEY)


def test_an_api_key_alone_never_travels_to_kling_by_itself() -> None:
    """Without an endpoint path a lone API key is an error that points at backend='kling'."""
    with pytest.raises(ConfigurationError, match="endpoint_path is not set") as caught:
        resolve_backend({ENV_API_KEY: KEY})
    assert "backend='kling'" in str(caught.value)
    settings = resolve_backend({ENV_API_KEY: KEY}, backend="kling")
    assert (settings.backend, settings.uses_key_pair) == (KLING, False)
    credentials = settings.credentials()
    assert credentials.pick(api_key_only=False, what="x") is credentials.api_key


@pytest.mark.parametrize("env", [{ENV_ACCESS_KEY: AK}, {ENV_SECRET_KEY: SK}])
def test_half_a_pair_names_the_missing_half(env: dict[str, str]) -> None:
    """An access key without its secret (or the reverse) names the missing variable."""
    missing = ENV_SECRET_KEY if ENV_ACCESS_KEY in env else ENV_ACCESS_KEY
    with pytest.raises(ConfigurationError, match=missing) as caught:
        resolve_backend(env)
    _no_secret(caught.value)


def test_kling_without_any_credentials_names_every_way_to_give_them() -> None:
    """backend='kling' with nothing set lists the pair and the API key variables."""
    with pytest.raises(ConfigurationError) as caught:
        resolve_backend({}, backend="kling")
    for name in (ENV_ACCESS_KEY, ENV_SECRET_KEY, ENV_API_KEY):
        assert name in str(caught.value)


def test_hosts_by_name_or_url() -> None:
    """host='china' is Beijing; a URL is taken as is; host wins over KLING_BASE_URL."""
    china = resolve_backend(PAIR_ENV, host="China")
    assert china.base_url == "https://api-beijing.klingai.com"
    local = resolve_backend({**PAIR_ENV, ENV_BASE_URL: "http://127.0.0.1:8/"})
    assert local.base_url == "http://127.0.0.1:8"
    assert (
        resolve_backend({**PAIR_ENV, ENV_BASE_URL: "http://x"}, host="global").base_url
        == (KLING_HOSTS["global"])
    )
    with pytest.raises(ConfigurationError, match="different hosts"):
        resolve_backend(PAIR_ENV, host="china", base_url="http://127.0.0.1:8")
    with pytest.raises(ConfigurationError, match="global, global-legacy, china"):
        resolve_backend(PAIR_ENV, host="mars")
    with pytest.raises(ConfigurationError, match="http"):
        resolve_backend(GATEWAY_ENV, base_url="china")


def test_settings_never_show_their_secrets() -> None:
    """The repr of chosen settings names the backend and hosts, never a key."""
    for settings in (
        resolve_backend(PAIR_ENV, api_key=KEY),
        resolve_backend(GATEWAY_ENV),
    ):
        _no_secret(Exception(repr(settings)))
        assert settings.backend.name in repr(settings)


def test_the_process_environment_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """resolve_backend reads only the mapping it is given."""
    monkeypatch.setenv(ENV_ACCESS_KEY, AK)
    monkeypatch.setenv(ENV_SECRET_KEY, SK)
    assert resolve_backend(None, api_key=KEY, endpoint_path="ep").backend is GATEWAY
    with pytest.raises(ConfigurationError, match="api_key is not set"):
        resolve_backend(None)
