"""Session behaviour at the transport seam, with a scripted MockTransport as the gateway."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import attrs
import pytest

import kling_async._session as session_module
from kling_async._config import ClientConfig, PollPolicy, RetryPolicy
from kling_async._errors import (
    AccountError,
    APIError,
    AuthenticationError,
    ConcurrencyLimitedError,
    ConfigurationError,
    ConnectError,
    ContentPolicyError,
    CreateOutcomeUnknownError,
    InvalidRequestError,
    KlingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseDecodeError,
    ServerError,
    TaskFailedError,
    TransportError,
    ValidationError,
    WaitTimeoutError,
)
from kling_async._models import (
    IdentifyFaceRequest,
    ImageToVideoRequest,
    TextToVideoRequest,
    TurboOptions,
    TurboTextToVideoRequest,
)
from kling_async._session import KlingSession
from kling_async._task import TaskStatus
from kling_async._transport import HTTPRequest, HTTPResponse
from kling_async.testing import MockTransport

BASE = "http://kling.test"
TURBO = "http://turbo.kling.test"
KEY = "canary-key-0123456789abcdef"
ROOT = f"{BASE}/v1/ai/ep-1/kling/"
T2V = ROOT + "videos/text2video"


@attrs.define
class _Route:
    method: str
    url: str | re.Pattern[str]
    response: HTTPResponse | None
    error: KlingError | None
    repeat: bool

    def matches(self, request: HTTPRequest) -> bool:
        if request.method != self.method:
            return False
        if isinstance(self.url, str):
            return request.url == self.url
        return self.url.fullmatch(request.url) is not None


class Gateway:
    """Scripted answers by method and URL (exact or regex), each used once unless repeated."""

    def __init__(self) -> None:
        self.routes: list[_Route] = []
        self.transport = MockTransport(self._handle)

    def add(
        self,
        method: str,
        url: str | re.Pattern[str],
        *,
        status: int = 200,
        payload: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        error: KlingError | None = None,
        repeat: bool = False,
    ) -> None:
        response = None
        if error is None:
            if body is None:
                response = HTTPResponse.from_json(payload, status=status, headers=headers)
            else:
                response = HTTPResponse(status=status, headers=dict(headers or {}), body=body)
        self.routes.append(_Route(method, url, response, error, repeat))

    def post(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add("POST", url, **kwargs)

    def get(self, url: str | re.Pattern[str], **kwargs: Any) -> None:
        self.add("GET", url, **kwargs)

    def _handle(self, request: HTTPRequest) -> HTTPResponse:
        for route in self.routes:
            if route.matches(request):
                if not route.repeat:
                    self.routes.remove(route)
                if route.error is not None:
                    raise route.error
                assert route.response is not None
                return route.response
        raise ConnectError(f"no scripted answer for {request.method} {request.label}")

    def calls(self, method: str, url: str | None = None) -> list[HTTPRequest]:
        return [
            r
            for r in self.transport.requests
            if r.method == method and (url is None or r.url == url)
        ]


@pytest.fixture
def gateway() -> Gateway:
    """A scripted gateway behind a MockTransport."""
    return Gateway()


def _dropped() -> TransportError:
    """What the aiohttp transport raises when the server drops the connection."""
    return TransportError(
        "connection failed: ServerDisconnectedError", foreign_type="ServerDisconnectedError"
    )


def _refused() -> ConnectError:
    """What the aiohttp transport raises when the connection is refused."""
    return ConnectError("cannot connect to kling.test:80 (Connection refused)")


def _envelope(data: Any, *, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    return {"code": code, "message": message, "request_id": "req-1", "data": data}


def _task(
    status: str = "submitted", task_id: str = "868602593017598033", **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task_id": task_id,
        "task_status": status,
        "created_at": 1775119514814,
        "updated_at": 1775119524744,
        "task_status_msg": "",
        "task_info": {"parent_video": None},
    }
    data.update(extra)
    return data


def _session(gateway: Gateway, **retry: Any) -> KlingSession:
    config = ClientConfig(
        api_key=KEY,
        endpoint_path="ep-1",
        base_url=BASE,
        turbo_base_url=TURBO,
        retry=RetryPolicy(reconcile_grace=0.0, **retry),
    )
    return KlingSession(config=config, transport=gateway.transport)


def _calls(gateway: Gateway, method: str, url: str) -> list[HTTPRequest]:
    return gateway.calls(method, url)


def _body(call: HTTPRequest) -> dict[str, Any]:
    assert call.body is not None
    return dict(json.loads(call.body))


async def test_create_sends_the_body_with_a_generated_external_id(gateway: Gateway) -> None:
    """A create POSTs the model's JSON plus an external_task_id and returns a normalised Task."""
    gateway.post(T2V, payload=_envelope(_task()))
    async with _session(gateway) as s:
        task = await s.text_to_video.create(TextToVideoRequest(prompt="a cat", duration="5"))
    (call,) = _calls(gateway, "POST", T2V)
    body = _body(call)
    assert body["prompt"] == "a cat"
    assert body["duration"] == "5"
    assert re.fullmatch(r"ka-[0-9a-f]{32}", body["external_task_id"])
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert task.id == "868602593017598033"
    assert task.status is TaskStatus.SUBMITTED
    assert task.external_id == body["external_task_id"]
    assert task.endpoint == "text2video"


async def test_callers_external_id_is_kept(gateway: Gateway) -> None:
    """An explicit external_task_id wins over the generated one."""
    gateway.post(T2V, payload=_envelope(_task()))
    async with _session(gateway) as s:
        await s.create(TextToVideoRequest(prompt="x"), external_task_id="mine-1")
    (call,) = _calls(gateway, "POST", T2V)
    assert _body(call)["external_task_id"] == "mine-1"


ERROR_TABLE = [
    (401, 1000, AuthenticationError),
    (401, 1004, AuthenticationError),
    (429, 1100, AccountError),
    (429, 1102, AccountError),
    (403, 1103, PermissionDeniedError),
    (400, 1200, InvalidRequestError),
    (400, 1201, InvalidRequestError),
    (404, 1202, NotFoundError),
    (404, 1203, NotFoundError),
    (400, 1300, ContentPolicyError),
    (400, 1301, ContentPolicyError),
    (429, 1302, RateLimitedError),
    (429, 1303, ConcurrencyLimitedError),
    (429, 1304, PermissionDeniedError),
    (500, 5000, ServerError),
    (503, 5001, ServerError),
    (504, 5002, ServerError),
    (200, 1201, InvalidRequestError),
]


@pytest.mark.parametrize(("http", "code", "cls"), ERROR_TABLE)
async def test_error_codes_map_to_typed_errors(
    gateway: Gateway, http: int, code: int, cls: type[APIError]
) -> None:
    """Each published code raises its class, carrying status, code, message and request_id."""
    url = T2V + "/t-1"
    gateway.get(url, status=http, payload=_envelope(None, code=code, message="boom"), repeat=True)
    async with _session(gateway, max_attempts=1) as s:
        with pytest.raises(cls) as info:
            await s.get("text2video", "t-1")
    err = info.value
    assert (err.http_status, err.code, err.message, err.request_id) == (http, code, "boom", "req-1")


@pytest.mark.parametrize(
    ("http", "cls"),
    [(401, AuthenticationError), (404, NotFoundError), (429, RateLimitedError), (502, ServerError)],
)
async def test_http_status_decides_when_the_body_has_no_code(
    gateway: Gateway, http: int, cls: type[APIError]
) -> None:
    """Without an envelope code the HTTP status picks the class."""
    gateway.get(T2V + "/t-1", status=http, body=b"<html>nope</html>")
    async with _session(gateway, max_attempts=1) as s:
        with pytest.raises(cls) as info:
            await s.get("text2video", "t-1")
    assert info.value.code is None


async def test_query_retries_transient_failures(gateway: Gateway, no_delays: None) -> None:
    """A query survives a 503, a 1302 and a dropped connection, then succeeds."""
    url = T2V + "/t-1"
    gateway.get(url, status=503, payload=_envelope(None, code=5001))
    gateway.get(url, status=429, payload=_envelope(None, code=1302))
    gateway.get(url, error=_dropped())
    gateway.get(url, payload=_envelope(_task("succeed")))
    async with _session(gateway) as s:
        task = await s.get("text2video", "t-1")
    assert task.status is TaskStatus.SUCCEED
    assert len(_calls(gateway, "GET", url)) == 4


async def test_retry_budget_bounds_attempts(gateway: Gateway, no_delays: None) -> None:
    """After max_attempts the last error is raised."""
    url = T2V + "/t-1"
    gateway.get(url, status=500, payload=_envelope(None, code=5000), repeat=True)
    async with _session(gateway, max_attempts=3) as s:
        with pytest.raises(ServerError):
            await s.get("text2video", "t-1")
    assert len(_calls(gateway, "GET", url)) == 3


async def test_retry_after_is_honoured(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry-After header sets the minimum wait before the next attempt."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    url = T2V + "/t-1"
    gateway.get(url, status=429, payload=_envelope(None, code=1302), headers={"Retry-After": "7"})
    gateway.get(url, payload=_envelope(_task()))
    async with _session(gateway, initial_delay=0.01, max_delay=0.01) as s:
        await s.get("text2video", "t-1")
    assert slept == [7.0]


async def test_garbage_body_is_a_decode_error(gateway: Gateway) -> None:
    """An HTML page with status 200 raises ResponseDecodeError, not a crash."""
    gateway.get(T2V + "/t-1", status=200, body=b"<html>maintenance</html>")
    async with _session(gateway, max_attempts=1) as s:
        with pytest.raises(ResponseDecodeError):
            await s.get("text2video", "t-1")


async def test_create_after_dropped_connection_finds_the_task(
    gateway: Gateway, no_delays: None
) -> None:
    """A create whose connection drops is looked up by external id, never POSTed twice."""
    gateway.post(T2V, error=_dropped())
    gateway.get(re.compile(re.escape(T2V) + r"/ka-.*"), payload=_envelope(_task("processing")))
    async with _session(gateway) as s:
        task = await s.text_to_video.create(TextToVideoRequest(prompt="x"))
    assert len(_calls(gateway, "POST", T2V)) == 1
    assert task.status is TaskStatus.PROCESSING
    assert task.external_id is not None


async def test_create_recreates_only_after_confirmed_absence(
    gateway: Gateway, no_delays: None
) -> None:
    """After a 500 and a 'not found' lookup, the same external id is POSTed again."""
    gateway.post(T2V, status=500, payload=_envelope(None, code=5000))
    gateway.get(
        re.compile(re.escape(T2V) + r"/ka-.*"), status=404, payload=_envelope(None, code=1203)
    )
    gateway.post(T2V, payload=_envelope(_task()))
    async with _session(gateway) as s:
        await s.text_to_video.create(TextToVideoRequest(prompt="x"))
    first, second = _calls(gateway, "POST", T2V)
    assert _body(first)["external_task_id"] == _body(second)["external_task_id"]


async def test_unreconcilable_create_stops_instead_of_paying_twice(
    gateway: Gateway, no_delays: None
) -> None:
    """If the lookup itself keeps failing, CreateOutcomeUnknownError carries the external id."""
    gateway.post(T2V, error=_dropped())
    gateway.get(
        re.compile(re.escape(T2V) + r"/ka-.*"),
        status=403,
        payload=_envelope(None, code=1103),
        repeat=True,
    )
    async with _session(gateway) as s:
        with pytest.raises(CreateOutcomeUnknownError) as info:
            await s.text_to_video.create(TextToVideoRequest(prompt="x"))
    assert info.value.external_task_id.startswith("ka-")
    assert len(_calls(gateway, "POST", T2V)) == 1


async def test_connection_refused_create_is_simply_retried(
    gateway: Gateway, no_delays: None
) -> None:
    """A create that never left (connect error) is retried without a lookup."""
    gateway.post(T2V, error=_refused())
    gateway.post(T2V, payload=_envelope(_task()))
    async with _session(gateway) as s:
        await s.text_to_video.create(TextToVideoRequest(prompt="x"))
    assert len(_calls(gateway, "POST", T2V)) == 2
    assert not gateway.calls("GET")


async def test_connect_error_type(gateway: Gateway) -> None:
    """A refused connection surfaces as ConnectError with sent=False."""
    gateway.get(T2V + "/t", error=_refused())
    async with _session(gateway, max_attempts=1) as s:
        with pytest.raises(ConnectError) as info:
            await s.get("text2video", "t")
    assert info.value.sent is False


async def test_concurrency_limit_on_create_can_be_left_to_the_caller(
    gateway: Gateway,
) -> None:
    """With retry_concurrency_limited off, a 1303 is raised at once (the scheduler requeues)."""
    gateway.post(T2V, status=429, payload=_envelope(None, code=1303))
    async with _session(gateway) as s:
        with pytest.raises(ConcurrencyLimitedError):
            await s.create(
                TextToVideoRequest(prompt="x"), retry=RetryPolicy(retry_concurrency_limited=False)
            )
    assert len(_calls(gateway, "POST", T2V)) == 1


async def test_invalid_request_is_refused_before_sending(gateway: Gateway) -> None:
    """A request breaking documented limits raises ValidationError and sends nothing."""
    async with _session(gateway) as s:
        with pytest.raises(ValidationError) as info:
            await s.create(TextToVideoRequest(prompt="x" * 2501, cfg_scale=3))
    paths = {p.path for p in info.value.problems}
    assert {"prompt", "cfg_scale"} <= paths
    assert not gateway.transport.requests


async def test_validation_can_be_turned_off(gateway: Gateway) -> None:
    """validate=False sends what the server will judge itself."""
    gateway.post(T2V, payload=_envelope(_task()))
    config = ClientConfig(api_key=KEY, endpoint_path="ep-1", base_url=BASE, validate=False)
    async with KlingSession(config=config, transport=gateway.transport) as s:
        await s.create(TextToVideoRequest(prompt="x" * 2501))
    assert len(_calls(gateway, "POST", T2V)) == 1


async def test_turbo_create_and_batch_query(gateway: Gateway) -> None:
    """Turbo creates go to the turbo host and queries use GET tasks with many ids."""
    turbo_root = f"{TURBO}/v1/ai/ep-1/kling/"
    gateway.post(
        turbo_root + "videos/text-to-video/kling-3.0-turbo",
        payload=_envelope(
            {"id": "901", "status": "submitted", "message": "", "create_time": 1, "update_time": 1}
        ),
    )
    listing = [
        {
            "id": "901",
            "status": "succeeded",
            "message": "",
            "outputs": [
                {"type": "video", "id": "v1", "url": "http://x/v.mp4", "duration": "5.041"}
            ],
            "billing": [{"amount": "5", "charge_type": "unit", "package_type": "video"}],
            "create_time": 1783065388949,
            "update_time": 1783065455355,
        },
        {"id": "902", "status": "processing", "message": ""},
    ]
    gateway.get(re.compile(re.escape(turbo_root + "tasks") + r"\?.*"), payload=_envelope(listing))
    async with _session(gateway) as s:
        created = await s.turbo_text_to_video.create(
            TurboTextToVideoRequest(prompt="dog", options=TurboOptions(external_task_id="e1"))
        )
        tasks = await s.get_many(task_ids=["901", "902"])
    assert created.id == "901"
    assert created.external_id == "e1"
    assert [t.status for t in tasks] == [TaskStatus.SUCCEED, TaskStatus.PROCESSING]
    assert tasks[0].videos[0].duration == pytest.approx(5.041)
    assert tasks[0].units == 5.0
    (call,) = gateway.calls("GET")
    assert parse_qs(urlsplit(call.url).query)["task_ids"] == ["901,902"]
    assert call is not None


async def test_wait_polls_until_terminal(gateway: Gateway, no_delays: None) -> None:
    """wait() polls through processing to succeed and returns the outputs."""
    url = T2V + "/t-1"
    gateway.get(url, payload=_envelope(_task("processing", "t-1")))
    gateway.get(
        url,
        payload=_envelope(
            _task(
                "succeed",
                "t-1",
                task_result={"videos": [{"id": "v", "url": "http://x/v.mp4", "duration": "5.041"}]},
                final_unit_deduction="6",
            )
        ),
    )
    async with _session(gateway) as s:
        created = session_module.parse_task("text2video", _task("submitted", "t-1"))
        task = await s.wait(created)
    assert task.succeeded
    assert task.units == 6.0
    assert task.urls == ("http://x/v.mp4",)


async def test_wait_asks_again_when_success_comes_before_its_outputs(
    gateway: Gateway, no_delays: None
) -> None:
    """'succeed' with an empty result is asked again; a result that never comes is given up."""
    url = T2V + "/t-1"
    video = {"videos": [{"id": "v", "url": "http://x/v.mp4"}]}
    gateway.get(url, payload=_envelope(_task("succeed", "t-1", task_result={})))
    gateway.get(url, payload=_envelope(_task("succeed", "t-1")))
    gateway.get(url, payload=_envelope(_task("succeed", "t-1", task_result=video)))
    async with _session(gateway) as s:
        created = session_module.parse_task("text2video", _task("submitted", "t-1"))
        task = await s.wait(created)
        assert task.urls == ("http://x/v.mp4",)
        assert len(gateway.calls("GET")) == 3
        gateway.get(url, payload=_envelope(_task("succeed", "t-1")), repeat=True)
        task = await s.wait(created)
    assert task.succeeded
    assert task.urls == ()
    assert len(gateway.calls("GET")) == 3 + 4  # the first answer and three more


async def test_wait_raises_or_returns_failed_tasks(gateway: Gateway, no_delays: None) -> None:
    """A failed task raises TaskFailedError, or is returned when raise_on_failure=False."""
    url = T2V + "/t-1"
    failed = _envelope(_task("failed", "t-1", task_status_msg="Image format is invalid"))
    gateway.get(url, payload=failed, repeat=True)
    async with _session(gateway) as s:
        start = session_module.parse_task("text2video", _task("submitted", "t-1"))
        with pytest.raises(TaskFailedError) as info:
            await s.wait(start)
        assert info.value.task.message == "Image format is invalid"
        task = await s.wait(start, raise_on_failure=False)
    assert task.failed


async def test_wait_deadline(gateway: Gateway) -> None:
    """wait() raises WaitTimeoutError with the last state when its deadline passes."""
    gateway.get(T2V + "/t-1", payload=_envelope(_task("processing", "t-1")), repeat=True)
    policy = PollPolicy(initial_delay=0.0, interval=0.01, max_interval=0.01, jitter=0.0)
    async with _session(gateway) as s:
        start = session_module.parse_task("text2video", _task("submitted", "t-1"))
        with pytest.raises(WaitTimeoutError) as info:
            await s.wait(start, poll=policy, timeout=0.05)
    assert info.value.task.status is TaskStatus.PROCESSING


async def test_identify_face_is_synchronous(gateway: Gateway) -> None:
    """identify-face returns the session id and faces directly."""
    gateway.post(
        ROOT + "videos/identify-face",
        payload=_envelope(
            {
                "session_id": "811680659520897082",
                "face_data": [
                    {
                        "face_id": "0",
                        "face_image": "http://x/f.jpg",
                        "start_time": 0,
                        "end_time": 5300,
                    }
                ],
            }
        ),
    )
    async with _session(gateway) as s:
        result = await s.identify_face(IdentifyFaceRequest(video_id="811673266024099926"))
    assert result.session_id == "811680659520897082"
    assert result.faces[0].end_time == 5300


async def test_secrets_never_leak(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    """The key, the Authorization header and base64 payloads appear in no log, repr or error."""
    caplog.set_level(logging.DEBUG, logger="kling_async")
    b64 = "iVBORw0KGgoAAAANSUhEUgAAAAUAAAAFCAYAAACNbyblAAAAHElEQVQI12P4"
    seen: list[str] = []

    gateway.post(
        ROOT + "videos/image2video",
        status=400,
        payload=_envelope(None, code=1201, message="image invalid"),
    )
    gateway.get(T2V + "/t", status=401, payload=_envelope(None, code=1002, message="bad key"))
    config = ClientConfig(api_key=KEY, endpoint_path="ep-1", base_url=BASE, validate=False)
    async with KlingSession(config=config, transport=gateway.transport) as s:
        seen += [repr(s), repr(config), str(config)]
        with pytest.raises(InvalidRequestError) as e1:
            await s.create(ImageToVideoRequest(image=b64, prompt="p"))
        with pytest.raises(AuthenticationError) as e2:
            await s.get("text2video", "t")
        seen += [str(e1.value), repr(e1.value), str(e2.value), repr(e2.value)]
    seen.append(caplog.text)
    blob = "\n".join(seen)
    assert KEY not in blob
    assert "Bearer" not in blob
    assert b64 not in blob
    assert "ep-1" not in caplog.text


def test_configuration_from_env() -> None:
    """from_env reads the four variables; explicit arguments win; missing ones are named."""
    env = {
        "KLING_API_KEY": KEY,
        "KLING_ENDPOINT_PATH": "ep-9",
        "KLING_BASE_URL": "http://127.0.0.1:1/",
        "KLING_TURBO_BASE_URL": "http://127.0.0.1:2",
    }
    config = ClientConfig.from_env(env)
    assert (config.endpoint_path, config.base_url, config.turbo_base_url) == (
        "ep-9",
        "http://127.0.0.1:1",
        "http://127.0.0.1:2",
    )
    assert ClientConfig.from_env(env, endpoint_path="other").endpoint_path == "other"
    with pytest.raises(ConfigurationError, match="KLING_API_KEY"):
        ClientConfig.from_env({"KLING_ENDPOINT_PATH": "x"})
    with pytest.raises(ConfigurationError, match="base_url"):
        ClientConfig(api_key="k", endpoint_path="e", base_url="ftp://x")


async def test_a_refused_api_key_is_sent_once_and_a_refused_token_twice() -> None:
    """401 with an API key: no resend. 401 with a token: one fresh token, then the error."""
    seen: list[tuple[str, str]] = []

    def refuse(request: HTTPRequest) -> HTTPResponse:
        seen.append((urlsplit(request.url).path, request.headers["Authorization"]))
        return HTTPResponse.from_json({"code": 1004, "message": "expired"}, status=401)

    gateway = ClientConfig(api_key=KEY, endpoint_path="ep-1", base_url=BASE)
    kling = ClientConfig(access_key="ak-1", secret_key="sk-1", base_url=BASE)
    for config, sends in ((gateway, 1), (kling, 2)):
        seen.clear()
        async with KlingSession(config=config, transport=MockTransport(refuse)) as session:
            with pytest.raises(AuthenticationError):
                await session.create(TextToVideoRequest(prompt="p"))
        assert len(seen) == sends
    assert [path for path, _ in seen] == ["/v1/videos/text2video"] * 2
    assert all(auth.startswith("Bearer eyJ") for _, auth in seen)
