"""Run the fake gateway in a child process, so its CPU and memory are not the client's.

The parent talks to the child over its stdin/stdout, one JSON line per command
(``stats``, ``records``, ``reset``, ``stop``); the child answers with one JSON line.
Task records carry ``time.monotonic()`` readings taken in the child: on Linux that
is ``CLOCK_MONOTONIC``, one clock for every process, so the parent can compare them
with its own readings.

Run as a script it is the child: ``python _fakeproc.py '<FakeConfig kwargs as JSON>'``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

_HERE = Path(__file__).resolve().parent
_LINE_LIMIT = 1 << 28  # task records of 10,000 tasks arrive as one line


class FakeProcess:
    """A fake gateway running in a child process (``async with FakeProcess(cfg) as fake``).

    Args:
        config: Keyword arguments of :class:`kling_async.testing.FakeConfig`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = dict(config)
        self.url = ""
        self.pid = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> FakeProcess:
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(_HERE / "_fakeproc.py"),
            json.dumps(self.config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
            env=env,
        )
        self.pid = self._proc.pid
        try:
            ready = await asyncio.wait_for(self._read(), timeout=60)
        except BaseException:
            await self._kill()
            raise
        self.url = ready["url"]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.write(b'{"cmd": "stop"}\n')
                await proc.stdin.drain()
                proc.stdin.close()
            await asyncio.wait_for(proc.wait(), timeout=15)
        except (OSError, asyncio.TimeoutError, ConnectionError):
            await self._kill()
        self._proc = None

    async def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    async def _read(self) -> Any:
        assert self._proc is not None
        assert self._proc.stdout is not None
        line = await self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fake gateway process {self.pid} exited (see stderr)")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"fake gateway process: {answer['error']}")
        return answer

    async def _call(self, cmd: str) -> Any:
        assert self._proc is not None
        assert self._proc.stdin is not None
        async with self._lock:
            self._proc.stdin.write(json.dumps({"cmd": cmd}).encode() + b"\n")
            await self._proc.stdin.drain()
            return (await self._read())["result"]

    async def stats(self) -> dict[str, Any]:
        """The fake's counters (``FakeGateway.stats()``)."""
        return dict(await self._call("stats"))

    async def task_records(self) -> list[dict[str, Any]]:
        """One dict per task (``FakeGateway.task_records()``)."""
        return list(await self._call("records"))

    async def reset(self) -> None:
        """Clear the fake's tasks and counters."""
        await self._call("reset")

    async def cpu_seconds(self) -> float:
        """CPU seconds the fake process has used (user + system)."""
        return float(await self._call("cpu"))


class InProcessFake:
    """The same interface with the fake on this process's event loop (smoke runs).

    Starting a child interpreter costs most of a second of CPU; a smoke run does
    not need the separation (its figures are not read).

    Args:
        config: Keyword arguments of :class:`kling_async.testing.FakeConfig`.
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = dict(config)
        self.url = ""
        self.pid = os.getpid()
        self._cm: Any = None
        self._fake: Any = None

    async def __aenter__(self) -> InProcessFake:
        from kling_async.testing import FakeConfig, run_fake_gateway

        self._cm = run_fake_gateway(FakeConfig(**self.config))
        self._fake = await self._cm.__aenter__()
        self.url = str(self._fake.url).rstrip("/")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cm.__aexit__(exc_type, exc, tb)

    async def stats(self) -> dict[str, Any]:
        """The fake's counters."""
        return dict(_jsonable(self._fake.stats()))

    async def task_records(self) -> list[dict[str, Any]]:
        """One dict per task."""
        return list(_jsonable(self._fake.task_records()))

    async def reset(self) -> None:
        """Clear the fake's tasks and counters."""
        self._fake.reset()

    async def cpu_seconds(self) -> float:
        """Not separable in-process: always 0."""
        return 0.0


def start_fake(config: dict[str, Any], *, in_process: bool = False) -> FakeProcess | InProcessFake:
    """A fake gateway for one run: a child process, or (smoke runs) this process."""
    return InProcessFake(config) if in_process else FakeProcess(config)


# --- the child --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value"):  # enums
        return _jsonable(value.value)
    return str(value)


async def _child_main(config: dict[str, Any]) -> None:
    import time

    from kling_async.testing import FakeConfig, run_fake_gateway

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer

    def send(obj: Any) -> None:
        out.write(json.dumps(_jsonable(obj), separators=(",", ":")).encode() + b"\n")
        out.flush()

    async with run_fake_gateway(FakeConfig(**config)) as fake:
        send({"url": str(fake.url).rstrip("/")})
        while True:
            line = await reader.readline()
            if not line:
                break
            cmd = json.loads(line).get("cmd")
            try:
                if cmd == "stop":
                    break
                if cmd == "stats":
                    send({"result": fake.stats()})
                elif cmd == "records":
                    send({"result": fake.task_records()})
                elif cmd == "reset":
                    fake.reset()
                    send({"result": None})
                elif cmd == "cpu":
                    send({"result": time.process_time()})
                else:
                    send({"error": f"unknown command {cmd!r}"})
            except Exception as exc:
                send({"error": f"{type(exc).__name__}: {exc}"})


def _main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    asyncio.run(_child_main(config))


if __name__ == "__main__":
    _main()
