"""``kling-async fake-server``: the fake gateway as a standalone process."""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kling_async.testing import FakeConfig, add_fake_server_arguments, config_from_args

# Seed 000's text-to-video request example, exactly as the curl command sends it.
SEED_000_TEXT2VIDEO = (
    b'{\n    "model_name": "kling-v3",\n    "prompt": "Epic BBC natural history documentary '
    b"style, 4K ultra-high-definition quality. In the twilight of the African savannah, dust "
    b"swirls as a brutal struggle for survival unfolds. A massive lion with a disheveled mane "
    b"unleashes a thunderous roar, its powerful muscles rippling in the golden sunset light as "
    b"it swings its claws to fend off attackers. Surrounding it are a dozen cunning, relentless "
    b"spotted hyenas \xe2\x80\x94 snarling, eyes gleaming with greed \xe2\x80\x94 employing "
    b"encirclement tactics as they dart, feint, and bite with fluid agility. The scene pulses "
    b"with raw, untamed tension, capturing flying saliva, drifting dust, the authentic texture "
    b'of animal fur, and dramatically dramatic lighting and shadow.",\n    "mode": "pro",\n'
    b'    "sound": "on",\n    "aspect_ratio": "16:9",\n    "duration": "5"\n}'
)

RUN_SERVER = (
    "import argparse, sys\n"
    "from kling_async.testing import add_fake_server_arguments, run_fake_server_from_args\n"
    "parser = argparse.ArgumentParser()\n"
    "add_fake_server_arguments(parser)\n"
    "sys.exit(run_fake_server_from_args(parser.parse_args(sys.argv[1:])))\n"
)


class Server:
    """A fake-server child process and the URL it printed."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, lines: list[str]) -> None:
        self.process = process
        self.url = url
        self.lines = lines

    async def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), 30)
        self.lines.extend(rest.decode().splitlines())
        return await asyncio.wait_for(self.process.wait(), 30)


async def _start(*command: str) -> Server:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(process.stdout.readline(), 30)
        if not raw:
            await process.wait()
            pytest.fail(f"fake-server exited early: {lines}")
        lines.append(raw.decode().rstrip())
        match = re.search(r"listening on (http://\S+)", lines[-1])
        if match:
            return Server(process, match.group(1), lines)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    child = await _start(
        sys.executable, "-c", RUN_SERVER, "--port", "0", "--api-key", "KEY", "--endpoint-path", "EP"
    )
    try:
        yield child
    finally:
        if child.process.returncode is None:
            child.process.kill()
            await child.process.wait()


async def test_standalone_server_accepts_seed_example_and_counts_it(server: Server) -> None:
    """A POST of seed 000's text-to-video example gets code 0 and a task id; stats count it."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/ai/EP/kling/videos/text2video",
            data=SEED_000_TEXT2VIDEO,
            headers={"Authorization": "Bearer KEY", "Content-Type": "application/json"},
        ) as response:
            created = await response.json()
        async with http.get(f"{server.url}/__fake__/stats") as response:
            stats = await response.json()
    assert created["code"] == 0
    assert created["data"]["task_id"].isdigit()
    assert (stats["creates"], stats["create_requests"]) == (1, 1)
    assert stats["creates_by_family"]["text2video"] == 1
    assert await server.stop(signal.SIGINT) == 0
    assert "fake gateway stopped" in server.lines


async def test_standalone_server_checks_its_key(server: Server) -> None:
    """The standalone server only accepts the --api-key it was given, and stops on SIGTERM."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{server.url}/v1/ai/EP/kling/videos/text2video/1",
            headers={"Authorization": "Bearer test-key"},
        ) as response,
    ):
        body = await response.json()
    assert (response.status, body["code"]) == (401, 1002)
    assert await server.stop(signal.SIGTERM) == 0
    assert not any("KEY" in line for line in server.lines)


async def test_bad_option_exits_with_status_2() -> None:
    """An out-of-range option makes the server exit with status 2 and a message."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_SERVER,
        "--port",
        "0",
        "--fail-rate",
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert b"fail_rate" in err


async def test_kling_async_command_runs_the_fake() -> None:
    """The installed ``kling-async fake-server`` command serves the API until interrupted."""
    script = Path(sys.executable).with_name("kling-async")
    if not script.exists():
        pytest.skip("the kling-async console script is not installed")
    child = await _start(str(script), "fake-server", "--port", "0", "--api-key", "K")
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{child.url}/v1/ai/test-endpoint/kling/audio/text-to-audio",
                json={"prompt": "rain", "duration": 3},
                headers={"Authorization": "Bearer K"},
            ) as response,
        ):
            body = await response.json()
        assert body["code"] == 0
        assert await child.stop() == 0
    finally:
        if child.process.returncode is None:
            child.process.kill()
            await child.process.wait()


def test_options_map_to_the_config() -> None:
    """Every fake-server option lands in the FakeConfig it builds."""
    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    args = parser.parse_args(
        [
            "--port", "18089", "--api-key", "KEY", "--endpoint-path", "EP",
            "--time-scale", "0.5", "--max-running", "4", "--max-rps", "20",
            "--fault-rate", "0.1", "--fail-rate", "0.2", "--seed", "9",
            "--lookup-lag", "1.5", "--latency", "0.01", "--url-ttl", "60",
            "--webhook-secret", "whsec_c2VjcmV0", "--no-range",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert (args.host, args.port) == ("127.0.0.1", 18089)
    assert (config.api_key, config.endpoint_path, config.time_scale) == ("KEY", "EP", 0.5)
    assert (config.max_running, config.max_rps, config.seed) == (4, 20.0, 9)
    assert (config.fault_rate, config.fail_rate, config.lookup_lag) == (0.1, 0.2, 1.5)
    assert (config.latency, config.url_ttl, config.range_requests) == (0.01, 60.0, False)
    assert config.webhook_secret == "whsec_c2VjcmV0"


def test_fault_mix_scale_delays_and_huge_body_options() -> None:
    """--fault-mix, --scale-delays and --huge-body-bytes reach the config; defaults stay."""
    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    args = parser.parse_args(
        [
            "--fault-mix", "drop_after_store=2, 5xx_after_store,bad_code=0.5",
            "--scale-delays", "--huge-body-bytes", "1000",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert dict(config.fault_mix) == {
        "drop_after_store": 2.0,
        "5xx_after_store": 1.0,
        "bad_code": 0.5,
    }
    assert (config.scale_delays, config.huge_body_bytes) == (True, 1000)
    plain = config_from_args(parser.parse_args([]))
    assert plain.scale_delays is False
    assert dict(plain.fault_mix) == dict(FakeConfig().fault_mix)


@pytest.mark.parametrize(
    ("mix", "message"),
    [("meteor=1", "unknown faults"), ("http_500=lots", "not a weight"), (",", "names no fault")],
)
def test_bad_fault_mix_is_refused(mix: str, message: str) -> None:
    """A fault mix with an unknown name, a non-numeric weight or no name is a ValueError."""
    parser = argparse.ArgumentParser()
    add_fake_server_arguments(parser)
    with pytest.raises(ValueError, match=message):
        config_from_args(parser.parse_args(["--fault-mix", mix]))
