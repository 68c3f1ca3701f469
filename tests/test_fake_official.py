"""The fake speaks Kling's own API: official routes, token checks with PyJWT, API-key-only rows."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest

from kling_async._auth import JwtAuth, scaled_clock, sign_hs256
from kling_async._backends import KLING
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._routes import official_routes
from kling_async.testing._server import add_fake_server_arguments, config_from_args
from kling_async.testing._tokens import Caller, KeyPairAccount, TokenChecker

T2V = "/v1/videos/text2video"
TURBO = "/text-to-video/kling-3.0-turbo"
KEY = {"Authorization": "Bearer test-key"}


class Reply:
    """Status and decoded body of one answer."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body

    @property
    def code(self) -> Any:
        return self.body.get("code")

    @property
    def data(self) -> Any:
        return self.body.get("data")


async def call(
    http: aiohttp.ClientSession,
    fake: FakeGateway,
    method: str,
    path: str,
    headers: dict[str, str],
    **kwargs: Any,
) -> Reply:
    """One request to the fake at an absolute path."""
    async with http.request(method, f"{fake.url}{path}", headers=headers, **kwargs) as r:
        return Reply(r.status, json.loads(await r.read()))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    # Real-time tokens (advance() moves them), fast tasks.
    async with run_fake_gateway(time_scale=0.001, token_time_scale=1.0) as gateway:
        yield gateway


def token_of(fake: FakeGateway) -> str:
    """A token for the fake's first pair, signed now on its token clock."""
    return JwtAuth(fake.access_key, fake.secret_key, clock=fake.token_clock).token()


# --- routes -------------------------------------------------------------------------------------


def test_official_rows_come_from_the_sdk_table() -> None:
    """Each family's create, query and list rows sit on its official path; turbo is key-only."""
    rows = {(r.method, r.path): r for r in official_routes()}
    for family in KLING.routes:
        create = rows[("POST", family.path)]
        assert create.endpoint is family.endpoint
        assert create.api_key_only is family.api_key_only
        if family.query_path is not None:
            assert rows[("GET", family.query_path)].action == "query"
        if family.list_path is not None:
            assert rows[("GET", family.list_path)].action == "list"
    tasks = rows[("GET", "tasks")]
    assert (tasks.action, tasks.api_key_only) == ("tasks", True)
    assert rows[("POST", "text-to-video/kling-3.0-turbo")].api_key_only


async def test_a_token_creates_queries_by_both_ids_and_lists(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """With a token: create on /v1/..., query by task id and external id, list the family."""
    auth = bearer(token_of(fake))
    created = await call(
        http, fake, "POST", T2V, auth, json={"prompt": "a cat", "external_task_id": "own-1"}
    )
    assert (created.status, created.code) == (200, 0)
    task_id = created.data["task_id"]
    by_id = await call(http, fake, "GET", f"{T2V}/{task_id}", auth)
    by_external = await call(http, fake, "GET", f"{T2V}/own-1", auth)
    assert by_id.data["task_id"] == by_external.data["task_id"] == task_id
    assert by_id.data["task_info"]["external_task_id"] == "own-1"
    fake.advance(1000.0)  # tasks end; a token on real time has 800 s left
    listed = await call(http, fake, "GET", f"{T2V}?pageNum=1&pageSize=500", auth)
    assert [item["task_status"] for item in listed.data] == ["succeed"]
    stats = fake.stats()
    assert (stats["creates"], stats["token_requests"], stats["tokens_seen"]) == (1, 4, 1)
    assert (stats["list_queries"], stats["list_query_tasks"], stats["auth_failures"]) == (1, 1, 0)


async def test_an_api_key_is_accepted_everywhere(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """The API key creates on legacy and new-standard routes and queries GET /tasks."""
    legacy = await call(http, fake, "POST", T2V, KEY, json={"prompt": "x"})
    turbo = await call(
        http, fake, "POST", TURBO, KEY, json={"prompt": "x", "options": {"external_task_id": "t1"}}
    )
    assert (legacy.code, turbo.code) == (0, 0)
    assert turbo.data["status"] == "submitted"
    fake.advance(1000.0)
    found = await call(http, fake, "GET", "/tasks?external_task_ids=t1", KEY)
    assert [(item["external_id"], item["status"]) for item in found.data] == [("t1", "succeeded")]


async def test_a_token_is_refused_where_only_api_keys_go(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """New-standard creates and GET /tasks answer a valid token with 401/1002."""
    auth = bearer(token_of(fake))
    created = await call(http, fake, "POST", TURBO, auth, json={"prompt": "x"})
    listed = await call(http, fake, "GET", "/tasks?task_ids=1", auth)
    for reply in (created, listed):
        assert (reply.status, reply.code) == (401, 1002)
        assert "API keys only" in reply.body["message"]
    stats = fake.stats()
    assert (stats["creates"], stats["auth_failures"]) == (0, 2)


# --- token checks -------------------------------------------------------------------------------


def _claims(fake: FakeGateway, **changes: Any) -> dict[str, Any]:
    now = int(fake.token_clock())
    claims: dict[str, Any] = {"iss": fake.access_key, "exp": now + 1800, "nbf": now - 5}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("expired", 1004),
        ("not_yet_valid", 1003),
        ("wrong_issuer", 1002),
        ("wrong_signature", 1002),
        ("malformed", 1002),
        ("no_exp", 1002),
        ("other_algorithm", 1002),
        ("unsigned", 1002),
        ("basic_scheme", 1002),
    ],
)
async def test_bad_tokens_get_the_documented_codes(
    http: aiohttp.ClientSession, fake: FakeGateway, case: str, code: int
) -> None:
    """Expired 1004, not yet valid 1003, issuer/signature/shape wrong 1002; never echoed."""
    now = int(fake.token_clock())
    secret = fake.secret_key
    tokens = {
        "expired": sign_hs256(_claims(fake, exp=now - 1, nbf=now - 1805), secret),
        "not_yet_valid": sign_hs256(_claims(fake, nbf=now + 60), secret),
        "wrong_issuer": sign_hs256(_claims(fake, iss="someone-else"), secret),
        "wrong_signature": sign_hs256(_claims(fake), "not-the-secret-key-of-this-pair!"),
        "malformed": "eyJhbGciOi.not-a-token",
        "no_exp": sign_hs256(_claims(fake, exp=None), secret),
        "other_algorithm": jwt.encode(_claims(fake), "x" * 64, algorithm="HS512"),
        "unsigned": jwt.encode(_claims(fake), None, algorithm="none"),
        "basic_scheme": "",
    }
    token = tokens[case]
    headers = {"Authorization": "Basic abc"} if case == "basic_scheme" else bearer(token)
    reply = await call(http, fake, "POST", T2V, headers, json={"prompt": "x"})
    assert (reply.status, reply.code) == (401, code)
    text = json.dumps(reply.body)
    for secret_text in (token, fake.secret_key, fake.access_key):
        if secret_text:
            assert secret_text not in text
    assert fake.stats()["creates"] == 0


async def test_an_empty_authorization_is_1001(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """No header, or Bearer with nothing after it, is 401/1001 on Kling's routes."""
    for headers in ({}, {"Authorization": "Bearer "}):
        reply = await call(http, fake, "GET", f"{T2V}?pageNum=1", headers)
        assert (reply.status, reply.code) == (401, 1001)


async def test_tokens_expire_on_the_fake_clock_and_a_renewing_client_keeps_going(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """advance() past exp expires a token (1004); JwtAuth on the token clock has renewed already."""
    auth = JwtAuth(fake.access_key, fake.secret_key, clock=fake.token_clock)
    first = (await auth.headers())["Authorization"]
    assert (await call(http, fake, "GET", T2V, {"Authorization": first})).code == 0
    fake.advance(1600.0)  # inside the 300 s margin: the client signs a new token
    second = (await auth.headers())["Authorization"]
    assert second != first
    assert (await call(http, fake, "GET", T2V, {"Authorization": second})).code == 0
    fake.advance(250.0)  # the first token is now past exp, the second is not
    stale = await call(http, fake, "GET", T2V, {"Authorization": first})
    assert (stale.status, stale.code) == (401, 1004)
    assert (await call(http, fake, "GET", T2V, {"Authorization": second})).code == 0
    assert fake.stats()["tokens_seen"] == 2


async def test_a_client_in_another_process_agrees_on_a_scaled_token_clock(
    http: aiohttp.ClientSession,
) -> None:
    """JwtAuth on scaled_clock(scale) is accepted by a fake on that token scale."""
    async with run_fake_gateway(time_scale=0.01) as fake:
        assert fake.config.token_scale == 0.01
        auth = JwtAuth(fake.access_key, fake.secret_key, clock=scaled_clock(0.01))
        reply = await call(http, fake, "GET", T2V, dict(await auth.headers()))
        assert (reply.status, reply.code) == (200, 0)


# --- accounts -----------------------------------------------------------------------------------


async def test_the_first_pair_shares_the_first_keys_account(http: aiohttp.ClientSession) -> None:
    """A task made with the gateway key is visible to the first pair; a third pair sees none."""
    config = FakeConfig(
        time_scale=0.001,
        token_time_scale=1.0,
        extra_api_keys=("second-key",),
        key_pairs={"ak-1": "sk-1", "ak-2": "sk-2", "ak-3": "sk-3"},
    )
    async with run_fake_gateway(config) as fake:
        gateway = f"/v1/ai/{fake.endpoint_path}/kling/videos/text2video"
        made = await call(http, fake, "POST", gateway, KEY, json={"prompt": "x"})
        task_id = made.data["task_id"]

        def pair(access: str, secret: str) -> dict[str, str]:
            return bearer(JwtAuth(access, secret, clock=fake.token_clock).token())

        assert (await call(http, fake, "GET", f"{T2V}/{task_id}", pair("ak-1", "sk-1"))).code == 0
        other = await call(http, fake, "GET", f"{T2V}/{task_id}", pair("ak-2", "sk-2"))
        assert (other.status, other.code) == (404, 1203)
        alone = await call(http, fake, "GET", T2V, pair("ak-3", "sk-3"))
        assert alone.data == []


# --- GET /tasks -------------------------------------------------------------------------------


async def test_tasks_query_takes_one_id_kind_and_at_most_twenty(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """Both id kinds or more than 20 ids are 400/1201; unknown ids are simply absent."""
    both = await call(http, fake, "GET", "/tasks?task_ids=1&external_task_ids=2", KEY)
    assert (both.status, both.code) == (400, 1201)
    many = ",".join(str(i) for i in range(21))
    capped = await call(http, fake, "GET", f"/tasks?task_ids={many}", KEY)
    assert (capped.status, capped.code) == (400, 1201)
    assert "at most 20" in capped.body["message"]
    twenty = ",".join(str(i) for i in range(20))
    unknown = await call(http, fake, "GET", f"/tasks?task_ids={twenty}", KEY)
    assert (unknown.status, unknown.data) == (200, [])
    none = await call(http, fake, "GET", "/tasks?task_ids=", KEY)
    assert (none.status, none.code) == (400, 1201)


# --- the list query ------------------------------------------------------------------------------


async def test_list_pages_newest_first_per_family(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """Pages of a family's tasks, newest first; other families never appear."""
    ids = []
    for i in range(5):
        made = await call(http, fake, "POST", T2V, KEY, json={"prompt": f"p{i}"})
        ids.append(made.data["task_id"])
    image = {"prompt": "x", "image": "https://example.invalid/a.png"}
    assert (await call(http, fake, "POST", "/v1/videos/image2video", KEY, json=image)).code == 0
    newest = ids[::-1]
    pages = []
    for number in (1, 2, 3, 4):
        page = await call(http, fake, "GET", f"{T2V}?pageNum={number}&pageSize=2", KEY)
        pages.append([item["task_id"] for item in page.data])
    assert pages == [newest[0:2], newest[2:4], newest[4:5], []]
    default = await call(http, fake, "GET", T2V, KEY)
    assert [item["task_id"] for item in default.data] == newest
    assert all("task_status" in item and "task_result" in item for item in default.data)


@pytest.mark.parametrize(
    "query", ["pageNum=0", "pageNum=1001", "pageSize=0", "pageSize=501", "pageSize=ten"]
)
async def test_list_refuses_pages_outside_the_documented_bounds(
    http: aiohttp.ClientSession, fake: FakeGateway, query: str
) -> None:
    """pageNum 1-1000 and pageSize 1-500, integers; anything else is 400/1201."""
    reply = await call(http, fake, "GET", f"{T2V}?{query}", KEY)
    assert (reply.status, reply.code) == (400, 1201)
    assert query.split("=")[0] in reply.body["message"]


async def test_list_hides_tasks_under_lookup_lag(http: aiohttp.ClientSession) -> None:
    """A task still under lookup lag is absent from the list until the lag has passed."""
    async with run_fake_gateway(time_scale=0.001, lookup_lag=30.0) as fake:
        await call(http, fake, "POST", T2V, KEY, json={"prompt": "x"})
        assert (await call(http, fake, "GET", T2V, KEY)).data == []
        fake.advance(30.0)
        assert len((await call(http, fake, "GET", T2V, KEY)).data) == 1


async def test_list_queries_can_be_struck_by_faults(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """inject(on='list') strikes the next list query and nothing else."""
    fake.inject("http_503", on="list")
    assert (await call(http, fake, "GET", f"{T2V}/404", KEY)).code == 1203
    struck = await call(http, fake, "GET", T2V, KEY)
    assert (struck.status, struck.code) == (503, 5001)
    assert (await call(http, fake, "GET", T2V, KEY)).code == 0


async def test_the_gateway_is_untouched_by_the_official_routes(
    http: aiohttp.ClientSession, fake: FakeGateway
) -> None:
    """The gateway still has no list query and refuses tokens (it takes API keys only)."""
    gateway = f"/v1/ai/{fake.endpoint_path}/kling/videos/text2video"
    listed = await call(http, fake, "GET", gateway, KEY)
    assert (listed.status, listed.code) == (404, 1202)
    refused = await call(http, fake, "GET", gateway + "/1", bearer(token_of(fake)))
    assert (refused.status, refused.code) == (401, 1002)


# --- configuration ------------------------------------------------------------------------------


def test_key_pairs_come_as_a_mapping_or_items_and_stay_out_of_the_repr() -> None:
    """key_pairs takes a mapping or pairs, refuses empty halves, and is not in repr."""
    config = FakeConfig(key_pairs={"ak": "sk-hidden-canary"})
    assert config.key_pairs == (("ak", "sk-hidden-canary"),)
    assert (config.access_key, config.secret_key) == ("ak", "sk-hidden-canary")
    assert "sk-hidden-canary" not in repr(config)
    assert FakeConfig(key_pairs=[("a", "b")]).key_pairs == (("a", "b"),)
    with pytest.raises(ValueError, match="key_pairs"):
        FakeConfig(key_pairs={"ak": " "})
    assert FakeConfig(time_scale=0.5).token_scale == 0.5
    assert FakeConfig(time_scale=0.5, token_time_scale=1.0).token_scale == 1.0


def test_fake_server_takes_a_key_pair_and_a_token_scale() -> None:
    """--access-key, --secret-key and --token-time-scale reach the fake's configuration."""
    import argparse

    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    args = parser.parse_args(
        ["--access-key", "AK", "--secret-key", "SK", "--token-time-scale", "0.5"]
    )
    config = config_from_args(args)
    assert (config.key_pairs, config.token_scale) == ((("AK", "SK"),), 0.5)
    assert config_from_args(parser.parse_args([])).key_pairs == FakeConfig().key_pairs


def test_a_remembered_token_still_has_its_times_checked() -> None:
    """The checker skips the signature of a known token, never its exp/nbf; memory is bounded."""
    now = [2_000_000_000.0]
    pairs = {"ak": KeyPairAccount("sk", "account")}
    check = TokenChecker(pairs, lambda: now[0], capacity=2)
    token = JwtAuth("ak", "sk", clock=lambda: now[0]).token()
    assert isinstance(check(token), Caller)
    now[0] -= 10  # before nbf (now - 5)
    assert check(token) == (1003, "Authorization is not yet valid")
    now[0] += 10 + 1800
    assert check(token) == (1004, "Authorization is expired")
    for offset in (1.0, 2.0, 3.0):
        other = JwtAuth("ak", "sk", clock=lambda offset=offset: now[0] + offset).token()
        assert isinstance(check(other), Caller)
    assert "remembered" in repr(check)
    assert len(check._known) <= 2
