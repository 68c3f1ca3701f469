"""The Python snippets of the README and the docs run as written, against the fake gateway.

Each ```python block in README.md and docs/**/*.md carries a marker on the line
before it:

- ``<!-- test: run -->``: a whole program; it runs in a fresh interpreter with the
  ``KLING_*`` variables pointing at a fake gateway on loopback,
- ``<!-- test: pytest -->``: a test module; it runs under pytest with the
  configuration of the README's block marked ``<!-- test: pytest-config -->``, as a
  user would paste both,
- ``<!-- test: skip: REASON -->``: a fragment that cannot run alone, and why.

A block without a marker fails the suite, so a new snippet cannot go untested by
accident. The fake's clock runs 1,000 times fast; the snippet's session is told so
through :meth:`ClientConfig.time_scaled`, applied by a small bootstrap that wraps
``ClientConfig.from_env`` (the code of the snippet itself is untouched).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SOURCES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
TIME_SCALE = 0.001

_BLOCK = re.compile(
    r"(?:<!-- test: (?P<marker>[^>]*?) -->\n)?```(?P<lang>\w*)\n(?P<code>.*?)```", re.S
)

# Runs a snippet file as __main__ after telling ClientConfig.from_env about the fast clock.
_BOOTSTRAP = """
import os, runpy, sys
import attrs
from kling_async import _config

_scale = float(os.environ["KLING_SNIPPET_TIME_SCALE"])
_from_env = _config.ClientConfig.from_env.__func__

def _scaled(config):
    if hasattr(config, "time_scaled"):
        return config.time_scaled(_scale)
    poll = config.poll
    return attrs.evolve(config, poll=attrs.evolve(
        poll, initial_delay=poll.initial_delay * _scale, interval=poll.interval * _scale,
        max_interval=poll.max_interval * _scale))

_config.ClientConfig.from_env = classmethod(lambda cls, *a, **k: _scaled(_from_env(cls, *a, **k)))
runpy.run_path(sys.argv[1], run_name="__main__")
"""


def snippets(lang: str = "python", source: Path | None = None) -> list[tuple[str, str, str]]:
    """(marker, code, "file:line") of every fenced block of a language, in every source."""
    found = []
    for path in [source] if source is not None else SOURCES:
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT).as_posix()
        for match in _BLOCK.finditer(text):
            if match.group("lang") == lang:
                line = text.count("\n", 0, match.start("code"))
                marker = (match.group("marker") or "").strip()
                found.append((marker, match.group("code"), f"{where}:{line}"))
    return found


def marked(marker: str) -> list[tuple[str, str]]:
    """(code, "file:line") of the Python blocks with this marker."""
    return [(code, where) for m, code, where in snippets() if m == marker]


def pytest_config() -> str:
    """The pytest configuration the README tells users to add."""
    (config,) = [code for m, code, _ in snippets("toml", README) if m == "pytest-config"]
    return config


async def run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    """Run a command while this event loop keeps serving the fake; return its output."""
    process = await asyncio.create_subprocess_exec(
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode("utf-8", "replace")
    assert process.returncode == 0, text
    assert "Traceback" not in text, text
    return text


@pytest.fixture
async def fake() -> AsyncIterator[FakeGateway]:
    """A fake gateway on loopback whose clock runs 1,000 times fast."""
    async with run_fake_gateway(FakeConfig(time_scale=TIME_SCALE, max_running=10)) as gateway:
        yield gateway


def snippet_env(fake: FakeGateway) -> dict[str, str]:
    """The environment a user would set, pointed at the fake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLING_")}
    env.update(
        KLING_API_KEY=fake.config.api_key,
        KLING_ENDPOINT_PATH=fake.config.endpoint_path,
        KLING_BASE_URL=fake.url,
        KLING_TURBO_BASE_URL=fake.url,
        KLING_SNIPPET_TIME_SCALE=str(TIME_SCALE),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def test_every_python_block_is_marked() -> None:
    """Each Python snippet says whether it runs, runs under pytest, or why it cannot."""
    blocks = snippets()
    assert blocks
    for marker, _, where in blocks:
        assert marker in ("run", "pytest") or marker.startswith("skip: "), (
            f"{where}: mark the block run, pytest or 'skip: <reason>'"
        )
    readme = [m for m, _, _ in snippets(source=README)]
    assert readme.count("run") >= 4
    assert readme.count("pytest") == 1


def test_pytest_config_block_turns_on_auto_mode() -> None:
    """The README says how to configure pytest-asyncio for the fixtures' tests."""
    assert 'asyncio_mode = "auto"' in pytest_config()


@pytest.mark.parametrize(("code", "where"), marked("run"), ids=[w for _, w in marked("run")])
async def test_snippet_runs_against_the_fake(
    code: str, where: str, fake: FakeGateway, tmp_path: Path
) -> None:
    """A runnable snippet exits 0 against the fake, in an empty folder."""
    script = tmp_path / "snippet.py"
    script.write_text(code, encoding="utf-8")
    bootstrap = tmp_path / "bootstrap.py"
    bootstrap.write_text(_BOOTSTRAP, encoding="utf-8")
    await run(sys.executable, str(bootstrap), str(script), cwd=tmp_path, env=snippet_env(fake))


@pytest.mark.parametrize(("code", "where"), marked("pytest"), ids=[w for _, w in marked("pytest")])
async def test_pytest_snippet_passes_with_the_readme_config(
    code: str, where: str, tmp_path: Path
) -> None:
    """A pytest example passes in a project configured as the README says."""
    (tmp_path / "pyproject.toml").write_text(pytest_config(), encoding="utf-8")
    (tmp_path / "test_snippet.py").write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "PYTEST_"))}
    output = await run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path, env=env
    )
    tests = len(re.findall(r"^(?:async )?def test_", code, flags=re.M))
    assert re.search(rf"^{tests} passed in ", output, flags=re.M), output
