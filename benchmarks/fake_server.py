"""How many requests per second the fake gateway sustains on loopback.

The fake and the load generator each run in a fresh process of their own, so
neither shares a GIL (or a heap to garbage-collect) with the other or with the
caller. The generator keeps ``concurrency`` keep-alive connections busy with the
cheapest realistic request, a single-task status query
(``GET .../videos/text2video/{id}`` of a finished task), for ``duration_s``
seconds, then stops by itself; the fake stops when its standard input closes
(or after a safety lifetime).

    python benchmarks/fake_server.py [--duration 3] [--concurrency 64] [--json]

The benchmark harness imports :func:`measure_fake_rps`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # running as a plain script from a clone
    sys.path.insert(0, str(_ROOT))

from kling_async.testing import FakeConfig, run_fake_gateway  # noqa: E402

__all__ = ["measure_fake", "measure_fake_rps"]

_KEY = "bench-key"
_ENDPOINT = "bench"


# --- the load generator (runs in the child process) ----------------------------------


def _content_length(head: bytes) -> int:
    """The Content-Length of a lower-cased response head (0 when absent)."""
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            return int(value)
    return 0


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the same request back to back."""

    def __init__(
        self, request: bytes, deadline: float, tally: dict[str, int], done: asyncio.Future[None]
    ) -> None:
        self._request = request
        self._deadline = deadline
        self._tally = tally
        self._done = done
        self._buffer = b""
        self._need = -1
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            if self._need < 0:
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = self._buffer[:end].lower()
                self._need = end + 4 + _content_length(head)
                if not head.startswith(b"http/1.1 200"):
                    self._tally["errors"] += 1
            if len(self._buffer) < self._need:
                return
            self._buffer = self._buffer[self._need :]
            self._need = -1
            self._tally["responses"] += 1
            if time.monotonic() >= self._deadline:
                self._finish()
                return
            assert self._transport is not None
            self._transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._done.done():
            self._tally["errors"] += 1
            self._done.set_result(None)

    def _finish(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if not self._done.done():
            self._done.set_result(None)


async def _load(
    host: str, port: int, path: str, duration_s: float, concurrency: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {_KEY}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    tally = {"responses": 0, "errors": 0}
    started = time.monotonic()
    deadline = started + duration_s
    waits: list[asyncio.Future[None]] = []
    for _ in range(concurrency):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            functools.partial(_Connection, request, deadline, tally, done), host, port
        )
        waits.append(done)
    await asyncio.wait_for(asyncio.gather(*waits), timeout=duration_s + 30)
    elapsed = time.monotonic() - started
    return {"requests": tally["responses"], "errors": tally["errors"], "elapsed_s": elapsed}


def _child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    result = asyncio.run(_load(args.host, args.port, args.path, args.duration, args.concurrency))
    print(json.dumps(result))
    return 0


# --- the fake (runs in a fresh process of its own) ---------------------------------


class _StdinClosed(asyncio.Protocol):
    """Sets an event when the parent closes our standard input (time to stop)."""

    def __init__(self, closed: asyncio.Event) -> None:
        self._closed = closed

    def eof_received(self) -> bool:
        self._closed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed.set()


async def _serve(lifetime_s: float) -> None:
    import aiohttp

    config = FakeConfig(api_key=_KEY, endpoint_path=_ENDPOINT, time_scale=0.0001)
    async with run_fake_gateway(config) as fake:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{fake.url}/v1/ai/{_ENDPOINT}/kling/videos/text2video",
                json={"prompt": "benchmark", "duration": "5"},
                headers={"Authorization": f"Bearer {_KEY}"},
            ) as response,
        ):
            body = await response.json()
        fake.advance(3600.0)  # the task is finished: queries return full results
        path = f"/v1/ai/{_ENDPOINT}/kling/videos/text2video/{body['data']['task_id']}"
        print(json.dumps({"url": fake.url, "path": path}), flush=True)
        closed = asyncio.Event()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: _StdinClosed(closed), sys.stdin)
        # Stop when the parent says so, or by ourselves if it never does.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(closed.wait(), lifetime_s)


def _serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lifetime", type=float, required=True)
    asyncio.run(_serve(parser.parse_args(argv).lifetime))
    return 0


def measure_fake(duration_s: float = 3.0, concurrency: int = 64) -> dict[str, Any]:
    """Measure the fake's throughput; every figure of the run.

    Two fresh processes: the fake gateway, and a load generator keeping
    ``concurrency`` keep-alive connections busy for ``duration_s`` seconds.

    Args:
        duration_s: Seconds of load (the generator stops by itself).
        concurrency: Keep-alive connections kept busy.

    Returns:
        ``requests``, ``errors``, ``elapsed_s``, ``requests_per_s``, ``duration_s``,
        ``concurrency``, ``request``.

    Raises:
        RuntimeError: The fake or the load generator failed.
    """
    script = str(Path(__file__).resolve())
    server = subprocess.Popen(
        [sys.executable, script, "--serve", "--lifetime", str(duration_s + 120)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError("the fake gateway process did not start")
        info = json.loads(line)
        host, _, port = str(info["url"]).removeprefix("http://").rpartition(":")
        command = [
            sys.executable, script, "--child", "--host", host, "--port", port,
            "--path", str(info["path"]), "--duration", str(duration_s),
            "--concurrency", str(concurrency),
        ]  # fmt: skip
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["requests_per_s"] = result["requests"] / result["elapsed_s"]
    result.update(duration_s=duration_s, concurrency=concurrency, request="GET single task query")
    return result


def measure_fake_rps(duration_s: float, concurrency: int) -> float:
    """Requests per second the fake sustains on loopback (see the module docstring).

    Args:
        duration_s: Seconds of load.
        concurrency: Keep-alive connections kept busy.

    Returns:
        Completed requests per second.

    Raises:
        RuntimeError: The fake or the load generator failed.
    """
    return float(measure_fake(duration_s, concurrency)["requests_per_s"])


def main(argv: list[str] | None = None) -> int:
    """Print the measured figure (or, with ``--json``, every figure)."""
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["--child"]:
        return _child_main(args_list[1:])
    if args_list[:1] == ["--serve"]:
        return _serve_main(args_list[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(args_list)
    result = measure_fake(args.duration, args.concurrency)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"fake gateway: {result['requests_per_s']:.0f} requests/s "
            f"({result['requests']} in {result['elapsed_s']:.2f} s, "
            f"{args.concurrency} connections, {result['errors']} errors)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
