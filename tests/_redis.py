"""A real ``redis-server`` for tests, and the worker bodies run in child processes.

:class:`RedisServer` starts ``redis-server`` on a free loopback port in a temporary
directory, without persistence, and stops it; it can be stopped and started again on
the same port (a restart that loses every key, as in production without
persistence). :func:`redis_server_binary` says whether the binary is installed, for
skip marks.

The ``*_worker`` functions run in processes started with ``multiprocessing``'s
``spawn`` method: they are plain, importable functions that report through queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "RedisServer",
    "churn_worker",
    "hold_worker",
    "redis_server_binary",
    "running_redis",
    "steady_worker",
]


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or ``None`` when it is not installed."""
    return shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1, persistence off."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.password = password
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (with the password, when one is set)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self, *, ready_within: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
            "--daemonize",
            "no",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock,
            ):
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
                if reply.startswith((b"+PONG", b"-NOAUTH")):
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it; keys are lost."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Stop and start again on the same port, with an empty keyspace."""
        self.stop()
        self.start()


@contextlib.contextmanager
def running_redis(directory: Path, *, password: str | None = None) -> Iterator[RedisServer]:
    """Run a :class:`RedisServer` for the duration of a ``with`` block."""
    server = RedisServer(directory, password=password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- bodies of child processes ------------------------------------------------------------


def _store(url: str, account: str, options: dict[str, Any]) -> Any:
    from kling_async.coordination import RedisSlotStore

    return RedisSlotStore(url, account_key=account, **options)


def churn_worker(
    url: str,
    account: str,
    options: dict[str, Any],
    rounds: int,
    workers: int,
    hold: float,
    running: Any,
    peak: Any,
    lock: Any,
    done: Any,
) -> None:
    """Acquire, hold and release ``rounds`` times in each of ``workers`` tasks.

    ``running`` and ``peak`` (shared integers) count the slots held right now by
    every process together and the most seen at once: incremented after a lease is
    granted, decremented before it is released, so they never overstate the truth.
    """

    async def main() -> None:
        store = _store(url, account, options)
        holder = f"churn-{os.getpid()}"

        async def one() -> None:
            for _ in range(rounds):
                lease = await store.wait_acquire(holder, 1, timeout=30)
                assert lease is not None
                with lock:
                    running.value += 1
                    peak.value = max(peak.value, running.value)
                await asyncio.sleep(hold)
                with lock:
                    running.value -= 1
                await store.release(lease)
                with lock:
                    done.value += 1

        await asyncio.gather(*(one() for _ in range(workers)))
        await store.aclose()

    asyncio.run(main())


def hold_worker(url: str, account: str, options: dict[str, Any], slots: int, ready: Any) -> None:
    """Take ``slots`` one-slot leases, report ready, then hold them until killed."""

    async def main() -> None:
        store = _store(url, account, options)
        for _ in range(slots):
            lease = await store.wait_acquire("doomed", 1, timeout=30)
            assert lease is not None
        ready.set()
        while True:  # renew until SIGKILL: only expiry can free these slots
            await store.renew_all()
            await asyncio.sleep(0.05)

    asyncio.run(main())


def steady_worker(
    url: str,
    account: str,
    options: dict[str, Any],
    name: str,
    workers: int,
    hold: float,
    grants: Any,
    stop: Any,
) -> None:
    """Keep ``workers`` tasks asking for one slot each until ``stop`` is set.

    Every grant is reported to the ``grants`` queue as ``name``.
    """

    async def main() -> None:
        store = _store(url, account, options)

        async def one() -> None:
            while not stop.is_set():
                lease = await store.wait_acquire(name, 1, timeout=1.0)
                if lease is None:
                    continue
                grants.put(name)
                await asyncio.sleep(hold)
                await store.release(lease)

        await asyncio.gather(*(one() for _ in range(workers)))
        await store.aclose()

    asyncio.run(main())
