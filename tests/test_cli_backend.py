"""The CLI on Kling's own API: --backend/--host, the key pair from the environment, the demo."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from kling_async import AuthenticationError, ConfigurationError
from kling_async.cli import _main as _cli
from kling_async.cli._settings import config_from_args, configuration_message, settings_problem
from kling_async.testing import FakeConfig, run_fake_gateway

ACCESS, SECRET = "cli-access-key", "cli-secret-key-0123456789"
KLING_VARS = ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_BASE_URL", "KLING_TIME_SCALE")
ALL_VARS = (*KLING_VARS, "KLING_API_KEY", "KLING_ENDPOINT_PATH", "KLING_TURBO_BASE_URL")


def args(**given: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "backend": None,
        "host": None,
        "api_key": None,
        "endpoint_path": None,
        "base_url": None,
        "turbo_base_url": None,
        "time_scale": 1.0,
    }
    return argparse.Namespace(**{**base, **given})


def mixed_jobs(path: Path, count: int) -> Path:
    """Classic video, image-to-video, images and audio (no turbo: that needs an API key)."""
    lines = []
    for i in range(count):
        kind = i % 4
        if kind == 0:
            job: dict[str, Any] = {"endpoint": "videos/text2video", "prompt": f"clip {i}"}
        elif kind == 1:
            job = {
                "endpoint": "videos/image2video",
                "image": "https://example.com/frame.png",
                "prompt": f"pan {i}",
            }
        elif kind == 2:
            job = {"endpoint": "images/generations", "prompt": f"image {i}", "n": 2}
        else:
            job = {"endpoint": "audio/text-to-audio", "prompt": f"sound {i}", "duration": 5}
        lines.append(json.dumps(job))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_key_pair_in_the_environment_picks_kling_without_a_turbo_url() -> None:
    """Key pair + --base-url: Kling's backend, one host; the gateway still gets turbo = base."""
    env = {"KLING_ACCESS_KEY": ACCESS, "KLING_SECRET_KEY": SECRET}
    config = config_from_args(args(base_url="http://127.0.0.1:9"), env)
    assert config.backend == "kling"
    assert config.access_key == ACCESS
    gateway = config_from_args(
        args(api_key="k", endpoint_path="ep", base_url="http://127.0.0.1:9"), {}
    )
    assert gateway.backend == "gateway"
    assert gateway.turbo_base_url == "http://127.0.0.1:9"


def test_host_by_name_and_backend_flag() -> None:
    """--host china with --backend kling and an API key reaches the Beijing host."""
    config = config_from_args(args(backend="kling", host="china", api_key="k"), {})
    assert config.backend == "kling"
    assert config.base_url == "https://api-beijing.klingai.com"


def test_time_scale_flag_wins_over_the_variable_without_scaling_twice() -> None:
    """--time-scale 0.01 with KLING_TIME_SCALE=0.01 set scales the poll once, not twice."""
    env = {"KLING_ACCESS_KEY": ACCESS, "KLING_SECRET_KEY": SECRET, "KLING_TIME_SCALE": "0.01"}
    once = config_from_args(args(time_scale=0.01), env)
    plain = config_from_args(args(), {"KLING_ACCESS_KEY": ACCESS, "KLING_SECRET_KEY": SECRET})
    assert once.poll.interval == pytest.approx(plain.poll.interval * 0.01)


def test_configuration_messages_name_the_backend_settings() -> None:
    """Mixed backends and a missing key pair each get their own line naming what to set."""
    mixed = {"KLING_ACCESS_KEY": ACCESS, "KLING_SECRET_KEY": SECRET, "KLING_ENDPOINT_PATH": "e"}
    with pytest.raises(ConfigurationError) as both:
        config_from_args(args(), mixed)
    line = configuration_message(both.value)
    assert "two backends" in line
    assert "--backend" in line
    with pytest.raises(ConfigurationError) as nothing:
        config_from_args(args(backend="kling"), {})
    line = configuration_message(nothing.value)
    assert "KLING_ACCESS_KEY" in line
    assert "KLING_SECRET_KEY" in line
    assert "--host" in line
    assert ACCESS not in line
    assert SECRET not in line


def test_settings_problem_on_kling_never_says_gateway() -> None:
    """A refused token on Kling's API names the key pair's variables, not the gateway."""
    problem = settings_problem(
        AuthenticationError("bad token", http_status=401, code=1004), backend="kling"
    )
    assert problem is not None
    assert "gateway" not in problem.message
    assert "KLING_ACCESS_KEY" in problem.message


async def test_cli_batch_with_only_a_key_pair_runs_a_mixed_batch_on_kling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kling-async batch with KLING_ACCESS_KEY/SECRET_KEY only: each job created once, exit 0."""
    for name in ALL_VARS:
        monkeypatch.delenv(name, raising=False)
    jobs = mixed_jobs(tmp_path / "jobs.jsonl", 16)
    out = tmp_path / "out"
    config = FakeConfig(time_scale=0.001, max_running=6, key_pairs=[(ACCESS, SECRET)])
    async with run_fake_gateway(config) as fake:
        monkeypatch.setenv("KLING_ACCESS_KEY", ACCESS)
        monkeypatch.setenv("KLING_SECRET_KEY", SECRET)
        monkeypatch.setenv("KLING_BASE_URL", fake.url)
        code = await _cli.amain(
            [
                "batch",
                str(jobs),
                "--out",
                str(out),
                "--max-running",
                "6",
                "--progress",
                "off",
                "--time-scale",
                "0.001",
            ]
        )
        stats = fake.stats()
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert stats["creates"] == 16  # every job created once
    # Refused probes (1303) create nothing; every other create request made a task.
    assert stats["create_requests"] == 16 + stats["concurrency_limited"]
    assert stats["auth_failures"] == 0
    assert stats["list_queries"] > 0
    assert ACCESS not in printed.out + printed.err
    assert SECRET not in printed.out + printed.err
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 16
    assert all(json.loads(line)["status"] == "succeed" for line in lines)


async def test_demo_runs_on_kling_routes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kling-async demo --backend kling exits 0 on the fake's official routes."""
    code = await _cli.amain(
        [
            "demo",
            "--backend",
            "kling",
            "--jobs",
            "8",
            "--out",
            str(tmp_path / "demo"),
            "--time-scale",
            "0.002",
            "--progress",
            "off",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "Kling's own API" in printed
