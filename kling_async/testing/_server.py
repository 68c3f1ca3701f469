"""``kling-async fake-server``: the fake gateway as a standalone process.

The CLI module wires these in::

    sub = subparsers.add_parser("fake-server", help="run the fake gateway")
    add_fake_server_arguments(sub)
    ...
    return run_fake_server_from_args(args)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any, TextIO

from ._app import run_fake_gateway
from ._config import FakeConfig

__all__ = [
    "DEFAULT_PORT",
    "add_fake_server_arguments",
    "config_from_args",
    "parse_fault_mix",
    "run_fake_server_from_args",
    "serve_forever",
]

#: Port of ``kling-async fake-server`` when ``--port`` is not given.
DEFAULT_PORT = 8089


def add_fake_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fake-server`` options to a parser.

    Args:
        parser: The (sub)parser of the ``fake-server`` command.
    """
    defaults = FakeConfig()
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    add("--port", type=int, default=DEFAULT_PORT, help="TCP port, 0 for any (default: %(default)s)")
    add("--api-key", default=defaults.api_key, help="accepted bearer key (default: %(default)s)")
    add(
        "--endpoint-path",
        default=defaults.endpoint_path,
        help="accepted /v1/ai/{endpoint_path}/kling segment (default: %(default)s)",
    )
    add(
        "--access-key",
        default=defaults.access_key,
        help="access key Kling's own API accepts tokens from (default: %(default)s)",
    )
    add(
        "--secret-key",
        default=defaults.secret_key,
        help="secret key of --access-key (default: %(default)s)",
    )
    add(
        "--token-time-scale",
        type=float,
        default=None,
        help="how fast token time runs for exp/nbf checks (default: --time-scale; 1: real time)",
    )
    add(
        "--time-scale",
        type=float,
        default=0.05,
        help="multiplies task durations (median video 100 s; default: %(default)s)",
    )
    add("--max-running", type=int, default=None, help="concurrency quota per key (429/1303)")
    add("--max-rps", type=float, default=None, help="request-rate limit per key (429/1302)")
    add("--fault-rate", type=float, default=0.0, help="probability of a random fault per request")
    add(
        "--fault-mix",
        default=None,
        metavar="NAME=WEIGHT,...",
        help="weights of the random faults, e.g. drop_after_store=1,5xx_after_store=1 "
        "(default: the transport faults, equally)",
    )
    add("--fail-rate", type=float, default=0.0, help="fraction of tasks that fail")
    add("--seed", type=int, default=0, help="seed of every random choice (default: %(default)s)")
    add("--lookup-lag", type=float, default=0.0, help="seconds a new task stays invisible")
    add("--latency", type=float, default=0.0, help="seconds added to every API response")
    add("--webhook-secret", default=None, help="sign callbacks with this whsec_... secret")
    add(
        "--url-ttl",
        type=float,
        default=defaults.url_ttl,
        help="seconds result URLs stay valid (default: %(default)s)",
    )
    add("--no-range", action="store_true", help="ignore Range headers on downloads")
    add(
        "--scale-delays",
        action="store_true",
        help="multiply lookup lag, URL lifetime and latencies by --time-scale too",
    )
    add(
        "--huge-body-bytes",
        type=int,
        default=defaults.huge_body_bytes,
        help="size of the huge_body fault's answers (default: %(default)s)",
    )


def parse_fault_mix(text: str) -> dict[str, float]:
    """Read ``name=weight,name=weight`` (a bare ``name`` weighs 1).

    Args:
        text: The option's value.

    Returns:
        Weights by fault name (names are checked by :class:`FakeConfig`).

    Raises:
        ValueError: A weight is not a number, or no fault is named.
    """
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition("=")
        if not name.strip():
            continue
        try:
            mix[name.strip()] = float(weight) if weight.strip() else 1.0
        except ValueError:
            raise ValueError(f"--fault-mix: {weight.strip()!r} is not a weight") from None
    if not mix:
        raise ValueError("--fault-mix names no fault")
    return mix


def config_from_args(args: argparse.Namespace) -> FakeConfig:
    """Build the fake's configuration from parsed ``fake-server`` options.

    Args:
        args: Parsed by a parser prepared with :func:`add_fake_server_arguments`.

    Returns:
        The configuration.

    Raises:
        ValueError: An option is out of range.
    """
    values: dict[str, Any] = {
        "api_key": args.api_key,
        "endpoint_path": args.endpoint_path,
        "time_scale": args.time_scale,
        "max_running": args.max_running,
        "max_rps": args.max_rps,
        "fault_rate": args.fault_rate,
        "fail_rate": args.fail_rate,
        "seed": args.seed,
        "lookup_lag": args.lookup_lag,
        "latency": getattr(args, "latency", 0.0),
        "webhook_secret": args.webhook_secret,
        "url_ttl": args.url_ttl,
        "range_requests": not getattr(args, "no_range", False),
        "scale_delays": getattr(args, "scale_delays", False),
    }
    defaults = FakeConfig()
    access = getattr(args, "access_key", None) or defaults.access_key
    secret = getattr(args, "secret_key", None) or defaults.secret_key
    values["key_pairs"] = ((access, secret),)
    token_scale = getattr(args, "token_time_scale", None)
    if token_scale is not None:
        values["token_time_scale"] = token_scale
    fault_mix = getattr(args, "fault_mix", None)
    if fault_mix:
        values["fault_mix"] = parse_fault_mix(fault_mix)
    huge = getattr(args, "huge_body_bytes", None)
    if huge is not None:
        values["huge_body_bytes"] = huge
    return FakeConfig(**values)


async def serve_forever(args: argparse.Namespace, *, out: TextIO | None = None) -> None:
    """Run the fake gateway until SIGINT or SIGTERM (or cancellation).

    Prints the URL and how to point the SDK at it, then serves.

    Args:
        args: Parsed ``fake-server`` options.
        out: Where to print (default: standard output).

    Raises:
        ValueError: An option is out of range.
        OSError: The port could not be bound.
    """
    stream = out if out is not None else sys.stdout
    config = config_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with run_fake_gateway(config, host=args.host, port=args.port) as fake:
            prefix = f"{fake.url}/v1/ai/{config.endpoint_path}/kling"
            print(f"kling-async fake gateway listening on {fake.url}", file=stream)
            print(f"  API:      {prefix}/...  (Authorization: Bearer <--api-key>)", file=stream)
            print(f"  stats:    {fake.url}/__fake__/stats", file=stream)
            print(
                f"  use it:   KLING_BASE_URL={fake.url} KLING_TURBO_BASE_URL={fake.url} "
                f"KLING_ENDPOINT_PATH={config.endpoint_path} "
                f"KLING_TIME_SCALE={config.time_scale:g}",
                file=stream,
            )
            print(
                f"  official: {fake.url}/v1/...  (tokens signed with <--access-key> and "
                f"<--secret-key>, or Bearer <--api-key>; token time runs "
                f"{1 / config.token_scale:g}x real time)",
                file=stream,
            )
            print(
                f"  use it:   KLING_BASE_URL={fake.url} KLING_TIME_SCALE={config.token_scale:g} "
                "and the access/secret pair variables, no endpoint path",
                file=stream,
            )
            print("Press Ctrl+C to stop.", file=stream, flush=True)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    print("fake gateway stopped", file=stream, flush=True)


def run_fake_server_from_args(args: argparse.Namespace) -> int:
    """Run :func:`serve_forever` in a fresh event loop; the CLI's entry point.

    Args:
        args: Parsed ``fake-server`` options.

    Returns:
        The exit status: 0 after a clean stop, 2 for bad options, 1 when the
        port could not be bound.
    """
    try:
        asyncio.run(serve_forever(args))
    except ValueError as exc:
        print(f"kling-async fake-server: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"kling-async fake-server: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0
