"""Settings in words (key, endpoint path, base URL), ``create`` checks, ``--time-scale``."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kling_async import (
    AuthenticationError,
    ConnectError,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    endpoint_for,
)
from kling_async import cli as _cli
from kling_async.cli import _jobs, create
from kling_async.cli._settings import config_from_args, settings_problem
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

SCALE = ["--time-scale", "0.002"]


def connection(fake: FakeGateway, **changes: str) -> list[str]:
    """Flags that point the command at ``fake``, with some values changed."""
    values = {
        "--api-key": fake.config.api_key,
        "--endpoint-path": fake.config.endpoint_path,
        "--base-url": fake.url,
    }
    values.update({f"--{name.replace('_', '-')}": value for name, value in changes.items()})
    return [part for pair in values.items() for part in pair]


def jobs_file(path: Path, count: int) -> Path:
    """``count`` text-to-video jobs keyed clip-NN."""
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "prompt": f"clip {i}", "key": f"clip-{i:02d}"})
            + "\n"
            for i in range(count)
        ),
        encoding="utf-8",
    )
    return path


# --- the mapping itself -----------------------------------------------------------------


def test_settings_problem_names_the_setting_for_each_error() -> None:
    """Auth names the key, 1202 or a bare 404 the endpoint path, a refused connection the URL."""
    classic = endpoint_for("text2video")
    turbo = endpoint_for("turbo-text2video")
    auth = settings_problem(AuthenticationError("bad", http_status=401, code=1002), classic)
    assert auth is not None
    assert auth.setting == "api_key"
    assert "KLING_API_KEY" in auth.message
    assert "--api-key" in auth.message
    route = settings_problem(NotFoundError("no", http_status=404, code=1202), classic)
    assert route is not None
    assert "KLING_ENDPOINT_PATH" in route.message
    assert "KLING_BASE_URL" in route.message
    bare = settings_problem(NotFoundError("Not Found", http_status=404), turbo)
    assert bare is not None
    assert bare.setting == "endpoint_path"
    assert "KLING_TURBO_BASE_URL" in bare.message
    refused = settings_problem(ConnectError("refused"), classic)
    assert refused is not None
    assert "--base-url / KLING_BASE_URL" in refused.message


def test_a_missing_task_is_not_a_settings_problem() -> None:
    """Code 1203 (no such task) is about the task: no advice about settings."""
    assert settings_problem(NotFoundError("Task not found", http_status=404, code=1203)) is None
    assert settings_problem(ValueError("x")) is None
    assert settings_problem(None) is None


# --- against the fake -------------------------------------------------------------------


async def test_batch_with_a_wrong_endpoint_path_stops_and_names_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong endpoint path: exit 2 at once, KLING_ENDPOINT_PATH named, no task created."""
    jobs = jobs_file(tmp_path / "jobs.jsonl", 30)
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        argv = ["batch", str(jobs), "--out", str(out), "--progress", "off", *SCALE]
        code = await _cli.amain([*argv, *connection(fake, endpoint_path="not-mine")])
        stats = fake.stats()
    err = capsys.readouterr().err
    assert code == 2
    assert "--endpoint-path / KLING_ENDPOINT_PATH" in err
    assert stats["creates"] == 0
    assert stats["create_requests"] <= 10  # the first wave only (--max-running 10)
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 30
    assert all(r["status"] in ("not_started", "error") for r in records)


async def test_batch_with_a_wrong_key_names_the_variable_and_hides_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused key: exit 2, KLING_API_KEY named, the key itself nowhere in the output."""
    jobs = jobs_file(tmp_path / "jobs.jsonl", 12)
    out = tmp_path / "out"
    secret = "sk-wrong-but-secret-123"
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        argv = ["batch", str(jobs), "--out", str(out), "--progress", "plain", *SCALE]
        code = await _cli.amain([*argv, *connection(fake, api_key=secret)])
        stats = fake.stats()
    captured = capsys.readouterr()
    assert code == 2
    assert "KLING_API_KEY" in captured.err
    assert stats["creates"] == 0
    written = (out / "results.jsonl").read_text() + captured.out + captured.err
    assert secret not in written


async def test_get_maps_a_wrong_route_to_exit_2_but_a_missing_task_to_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """get on a wrong endpoint path exits 2 naming it; get of an unknown task exits 1."""
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        wrong = await _cli.amain(
            ["get", "text2video", "123", *connection(fake, endpoint_path="nope")]
        )
        wrong_err = capsys.readouterr().err
        missing = await _cli.amain(["get", "text2video", "123", *connection(fake)])
        missing_err = capsys.readouterr().err
    assert wrong == 2
    assert "KLING_ENDPOINT_PATH" in wrong_err
    assert missing == 1
    assert "NotFoundError" in missing_err
    assert "KLING_ENDPOINT_PATH" not in missing_err


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_nothing_listening_at_the_base_url_names_the_base_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A base URL where nothing listens: exit 2 naming --base-url (retries time-scaled)."""
    argv = ["get", "text2video", "1", "--api-key", "k", "--endpoint-path", "ep"]
    url = f"http://127.0.0.1:{free_port()}"
    code = await _cli.amain([*argv, "--base-url", url, "--time-scale", "0.001"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--base-url / KLING_BASE_URL" in err


# --- create checks exactly like the batch --------------------------------------------------


async def test_create_checks_the_body_before_any_setting_or_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no key at all, a bad body still gets its problems named (nothing could be sent)."""
    monkeypatch.delenv("KLING_API_KEY", raising=False)
    monkeypatch.delenv("KLING_ENDPOINT_PATH", raising=False)
    body = {"prompt": "x" * 2501, "duration": "7", "promt": "typo"}
    code = await _cli.amain(["create", "text2video", "--json", json.dumps(body)])
    err = capsys.readouterr().err
    assert code == 2
    assert "API key" not in err
    _, problems = _jobs.load_jobs([json.dumps({"endpoint": "text2video", **body})])
    assert problems
    for problem in problems:
        assert f"videos/text2video: {problem.field}: {problem.message}" in err


def test_create_and_the_jobs_file_share_one_checking_function() -> None:
    """The create command and the JSONL parser call the same request_from_json."""
    assert create.request_from_json is _jobs.request_from_json


# --- --time-scale -------------------------------------------------------------------------


def parse(*argv: str) -> object:
    """Parse a batch command line."""
    return _cli.build_parser().parse_args(["batch", "j.jsonl", "--out", "o", *argv])


def test_time_scale_scales_poll_and_retry_delays() -> None:
    """--time-scale 0.01 shrinks the poll and retry delays; 1 leaves them alone."""
    env = {"KLING_API_KEY": "k", "KLING_ENDPOINT_PATH": "ep"}
    scaled = config_from_args(parse("--time-scale", "0.01"), env)  # type: ignore[arg-type]
    assert scaled.poll.initial_delay == pytest.approx(PollPolicy().initial_delay * 0.01)
    assert scaled.retry.initial_delay == pytest.approx(RetryPolicy().initial_delay * 0.01)
    assert scaled.retry.reconcile_grace == pytest.approx(RetryPolicy().reconcile_grace * 0.01)
    assert scaled.timeouts == config_from_args(parse(), env).timeouts  # type: ignore[arg-type]
    plain = config_from_args(parse(), env)  # type: ignore[arg-type]
    assert plain.poll == PollPolicy()
    assert plain.retry == RetryPolicy()


def test_explicit_poll_flags_win_over_the_time_scale() -> None:
    """An explicit --poll-initial-delay is used as given, whatever the scale."""
    env = {"KLING_API_KEY": "k", "KLING_ENDPOINT_PATH": "ep"}
    args = parse("--time-scale", "0.01", "--poll-initial-delay", "3")
    config = config_from_args(args, env)  # type: ignore[arg-type]
    assert config.poll.initial_delay == 3.0
    assert config.poll.interval == pytest.approx(max(PollPolicy().interval * 0.01, 0.01))
