"""Test helpers: an embedded fake Kling gateway for your own tests, demos and benchmarks.

Run it around a block of code::

    from kling_async.testing import FakeConfig, run_fake_gateway

    async with run_fake_gateway(FakeConfig(time_scale=0.001)) as fake:
        async with fake.session() as session:
            task = await session.text_to_video.run(TextToVideoRequest(prompt="a cat"))
        print(fake.stats()["creates"])

``fake.session(backend="kling")`` speaks Kling's own API to the same fake, with
tokens signed from its access/secret key pair on its clock. Or use the pytest
fixtures ``kling_fake``, ``kling_session`` and ``kling_fake_factory``
(registered automatically through the ``pytest11`` entry point), or the
``kling-async fake-server`` command.
"""

from __future__ import annotations

from ._app import FakeGateway, run_fake_gateway
from ._config import DEFAULT_FAULT_MIX, FAULT_SCOPES, FAULTS, FakeConfig
from ._mock import MockHandler, MockTransport
from ._server import (
    add_fake_server_arguments,
    config_from_args,
    run_fake_server_from_args,
    serve_forever,
)

__all__ = [
    "DEFAULT_FAULT_MIX",
    "FAULTS",
    "FAULT_SCOPES",
    "FakeConfig",
    "FakeGateway",
    "MockHandler",
    "MockTransport",
    "add_fake_server_arguments",
    "config_from_args",
    "run_fake_gateway",
    "run_fake_server_from_args",
    "serve_forever",
]
