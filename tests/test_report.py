"""The HTML report: one self-contained page per output folder, checked as text and in chromium."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import json
import logging
import os
import re
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kling_async._report import REPORT_FILENAME, write_report
from kling_async.testing._media import mp3_bytes, mp4_bytes, png_bytes, wav_bytes

logger = logging.getLogger(__name__)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">&amp; "q"'


def write_jsonl(path: Path, rows: list[Mapping[str, Any]]) -> Path:
    """Write rows as JSON Lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def row(key: str, status: str = "succeed", **fields: Any) -> dict[str, Any]:
    """A results row in the CLI's schema, with defaults for what a test does not care about."""
    base: dict[str, Any] = {
        "key": key,
        "status": status,
        "endpoint": "text_to_video",
        "prompt": f"prompt of {key}",
        "task_id": f"task-{key}",
        "external_task_id": f"ext-{key}",
        "files": [],
        "units": None,
        "error": None,
        "created_at": None,
        "finished_at": None,
    }
    base.update(fields)
    return base


def cards(page: str) -> list[str]:
    """The opening tag of every job card."""
    return re.findall(r'<article class="card[^"]*" data-status="[^"]*">', page)


def gallery(page: str) -> str:
    """The gallery's markup alone."""
    return page.split('<main id="gallery">', 1)[1].split("</main>", 1)[0]


# --- the page as text ---------------------------------------------------------------


def test_reads_results_jsonl_and_writes_one_card_per_job(tmp_path: Path) -> None:
    """With no results given, OUT/results.jsonl is read; every row becomes a card."""
    write_jsonl(
        tmp_path / "results.jsonl",
        [row("a"), row("b", "failed"), row("c", "not_started"), row("d", "error")],
    )
    target = write_report(tmp_path)
    assert target == tmp_path / REPORT_FILENAME
    page = target.read_text(encoding="utf-8")
    assert len(cards(page)) == 4
    for status, count in (("succeed", 1), ("failed", 1), ("not_started", 1), ("error", 1)):
        assert f'data-filter="{status}" aria-pressed="false">' in page
        assert f'data-status="{status}"><b>{count}</b>' in page
    assert "<b>4</b>jobs" in page


def test_missing_results_file_is_a_clear_error(tmp_path: Path) -> None:
    """An output folder without results says which file it looked for."""
    with pytest.raises(FileNotFoundError, match=r"results\*\.jsonl"):
        write_report(tmp_path)
    assert not (tmp_path / REPORT_FILENAME).exists()


def test_hostile_text_is_escaped_everywhere(tmp_path: Path) -> None:
    """Prompts, keys, statuses and error messages cannot add markup or script to the page."""
    rows = [
        row(
            HOSTILE,
            status='failed"><script>x()</script>',
            prompt=HOSTILE,
            endpoint=HOSTILE,
            error={"code": HOSTILE, "message": HOSTILE},
            files=[{"path": 'a"><script>y()</script>.png', "kind": "image"}],
        )
    ]
    page = write_report(tmp_path, results=rows).read_text(encoding="utf-8")
    assert page.count("<script") == 1  # the page's own
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&quot;window.__pwned = 2&quot;&gt;" in page
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    assert "&amp;amp;" in page


def test_file_paths_are_relative_and_percent_encoded(tmp_path: Path) -> None:
    """Players point at files relative to the page; a path cannot name a scheme or a host."""
    rows = [
        row(
            "k",
            files=[
                {"path": "clip one.mp4", "kind": "video"},
                {"path": "javascript:alert(1).png"},
                {"path": "//evil.example/x.wav"},
                "legacy-string-path.mp3",
            ],
        )
    ]
    page = write_report(tmp_path, results=rows).read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', gallery(page))
    assert 'src="clip%20one.mp4"' in page
    assert 'src="javascript%3Aalert%281%29.png"' in page
    assert re.search(r'src="(\.\./)+evil\.example/x\.wav"', page)  # an absolute path, rebased
    assert 'src="legacy-string-path.mp3"' in page
    for source in sources:
        assert ":" not in source
        assert not source.startswith("/")


def test_players_follow_the_kind_of_each_file(tmp_path: Path) -> None:
    """Videos get <video controls>, images <img>, audio <audio controls>; others a link."""
    rows = [
        row(
            "k",
            files=[
                {"path": "a.mp4", "kind": "video"},
                {"path": "b.png", "kind": "image"},
                {"path": "c.wav"},
                {"path": "d.mp3", "kind": "audio"},
                {"path": "e.json"},
            ],
        )
    ]
    html_text = gallery(write_report(tmp_path, results=rows).read_text(encoding="utf-8"))
    assert html_text.count("<video controls") == 1
    assert html_text.count("<img ") == 1
    assert html_text.count("<audio controls") == 2
    assert '<a class="file" href="e.json">e.json</a>' in html_text


def test_a_long_page_loads_later_players_only_when_needed(tmp_path: Path) -> None:
    """Past the first cards, players load nothing up front and images load lazily."""
    files = [{"path": "v.mp4", "kind": "video"}, {"path": "i.png", "kind": "image"}]
    rows = [row(f"job-{i:03d}", files=files) for i in range(150)]
    page = gallery(write_report(tmp_path, results=rows).read_text(encoding="utf-8"))
    assert page.count('<video controls preload="metadata"') == 120
    assert page.count('<video controls preload="none"') == 30
    assert page.count('loading="lazy"') == 30


def test_page_is_self_contained_and_its_policy_allows_only_its_own_code(tmp_path: Path) -> None:
    """No URL of any host; the CSP names the hashes of the inline style and script."""
    write_jsonl(tmp_path / "results.jsonl", [row("a", files=[{"path": "a.mp4"}])])
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert "http:" not in page
    assert "https:" not in page
    assert not re.search(r'(?:src|href)="//', page)
    assert "@import" not in page
    found = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert found is not None
    policy = html.unescape(found.group(1))
    for tag in ("style", "script"):
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
        assert body is not None
        digest = base64.b64encode(hashlib.sha256(body.group(1).encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy


def test_reason_units_and_timings_are_shown(tmp_path: Path) -> None:
    """A card shows the error code and message, the units and created/finished/took."""
    rows = [
        row(
            "late",
            "failed",
            units="0.5",
            error={"code": 1301, "message": "content policy"},
            created_at="2025-01-02T03:04:05Z",
            finished_at="2025-01-02T03:06:05+00:00",
        )
    ]
    page = gallery(write_report(tmp_path, results=rows).read_text(encoding="utf-8"))
    assert '<span class="code">1301</span> content policy' in page
    assert "<dt>units</dt><dd>0.5</dd>" in page
    assert "<dd>2025-01-02 03:04:05 UTC</dd>" in page
    assert "<dt>took</dt><dd>2 min 00 s</dd>" in page


def test_reason_given_as_words_beside_a_code_and_a_class(tmp_path: Path) -> None:
    """``error`` in words with ``error_code``/``error_type`` beside it reads as one reason."""
    rows = [
        row("a", "failed", error="content policy", error_code=1301, error_type="TaskFailedError"),
        row("b", "not_started", error=None, error_type="NotStartedError"),
    ]
    page = gallery(write_report(tmp_path, results=rows).read_text(encoding="utf-8"))
    assert '<span class="code">1301</span> TaskFailedError: content policy' in page
    assert '<p class="reason">NotStartedError</p>' in page


def test_prompt_falls_back_to_the_request(tmp_path: Path) -> None:
    """Without a ``prompt`` field, the request's prompt (or turbo prompt content) is shown."""
    rows = [
        row("classic", prompt=None, request={"prompt": "from the request"}),
        row("turbo", prompt=None, request={"contents": [{"type": "prompt", "text": "turbo text"}]}),
    ]
    page = gallery(write_report(tmp_path, results=rows).read_text(encoding="utf-8"))
    assert '<p class="prompt">from the request</p>' in page
    assert '<p class="prompt">turbo text</p>' in page


def test_rows_are_read_tolerantly(tmp_path: Path) -> None:
    """Missing fields show blank, odd types are ignored, unreadable lines are counted."""
    results = tmp_path / "results.jsonl"
    results.write_text(
        "\n".join(
            [
                json.dumps({"key": "bare"}),
                json.dumps(
                    {
                        "key": "odd",
                        "status": 7,
                        "files": "x.mp4",
                        "units": "lots",
                        "error": "plain text reason",
                        "created_at": "not a date",
                        "finished_at": 1.7e12,
                    }
                ),
                "{not json",
                "[" * 100_000,
                json.dumps([1, 2]),
                "",
            ]
        ),
        encoding="utf-8",
    )
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert len(cards(page)) == 2
    assert 'data-status="unknown"' in page
    assert 'data-status="7"' in page
    assert "plain text reason" in page
    assert "3 line(s) could not be read" in page
    assert "no files" in page


def test_shards_in_the_folder_are_merged(tmp_path: Path) -> None:
    """results.jsonl and results-*.jsonl shards in OUT all feed one page."""
    write_jsonl(tmp_path / "results-1-of-2.jsonl", [row("a"), row("b")])
    write_jsonl(tmp_path / "results-2-of-2.jsonl", [row("c", "failed")])
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert len(cards(page)) == 3
    assert "results-1-of-2.jsonl, results-2-of-2.jsonl" in page


def test_shards_elsewhere_keep_their_file_paths_right(tmp_path: Path) -> None:
    """A shard in another folder names files relative to itself; the page rebases them."""
    out = tmp_path / "merged"
    one = write_jsonl(tmp_path / "shard-1" / "results.jsonl", [row("a", files=[{"path": "a.mp4"}])])
    two = write_jsonl(tmp_path / "shard-2" / "results.jsonl", [row("b", files=[{"path": "b.mp4"}])])
    page = write_report(out, results=[one, two]).read_text(encoding="utf-8")
    assert 'src="../shard-1/a.mp4"' in page
    assert 'src="../shard-2/b.mp4"' in page


def test_a_repeated_key_shows_its_latest_attempt(tmp_path: Path) -> None:
    """Of two rows with one key, the later finished one wins, wherever it was read."""
    write_jsonl(
        tmp_path / "results.jsonl",
        [row("a", "succeed", finished_at="2025-01-01T00:10:00Z"), row("b")],
    )
    write_jsonl(
        tmp_path / "results-old.jsonl",
        [row("a", "failed", finished_at="2025-01-01T00:05:00Z"), row("c", "not_started")],
    )
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert [re.search(r'data-status="([^"]*)"', c).group(1) for c in cards(page)] == [  # type: ignore[union-attr]
        "succeed",
        "succeed",
        "not_started",
    ]
    assert "1 repeated key(s) merged" in page


def test_rows_and_paths_cannot_be_mixed(tmp_path: Path) -> None:
    """results takes rows or paths, and says so when given both."""
    with pytest.raises(TypeError):
        write_report(tmp_path, results=[row("a"), "results.jsonl"])  # type: ignore[list-item]


def test_timeline_counts_jobs_running_at_once(tmp_path: Path) -> None:
    """Overlapping jobs raise the peak; a job that starts as another ends reuses its slot."""
    rows = [
        row("a", created_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:01:00Z"),
        row("b", created_at="2025-01-01T00:00:30Z", finished_at="2025-01-01T00:02:00Z"),
        row("c", created_at="2025-01-01T00:02:00Z", finished_at="2025-01-01T00:03:00Z"),
        row("d", "not_started"),
    ]
    page = write_report(tmp_path, results=rows).read_text(encoding="utf-8")
    assert 'data-peak="2"' in page
    assert "peak 2 at once, over 3 min 00 s" in page
    assert "<b>3 min 00 s</b>wall time" in page


def test_timeline_says_when_there_is_nothing_to_draw(tmp_path: Path) -> None:
    """Rows without created times give a sentence, not an empty chart."""
    page = write_report(tmp_path, results=[row("a")]).read_text(encoding="utf-8")
    assert "<svg" not in page
    assert "nothing to draw" in page


def test_writing_again_replaces_the_page_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The page is replaced atomically; only report.html remains beside the results."""
    write_jsonl(tmp_path / "results.jsonl", [row("a")])
    write_report(tmp_path, title="first")
    write_report(tmp_path, title="second")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "results.jsonl"]
    assert "<title>second</title>" in (tmp_path / REPORT_FILENAME).read_text(encoding="utf-8")


# --- the page in a real browser -----------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target over a websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            self.events.append(data)
            for waiter in self._waiters.pop(data.get("method", ""), []):
                if not waiter.done():
                    waiter.set_result(data)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command; return its result, or fail with the protocol's error."""
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._socket.send_json({"id": self._next_id, "method": method, "params": params})
        answer = await asyncio.wait_for(future, 60)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    def next_event(self, method: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event of this kind (ask before causing it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(future)
        return future

    async def until_console_error(self, needle: str) -> None:
        """Wait for a console error containing ``needle`` (at most a minute)."""

        async def seen() -> None:
            while not any(needle in error for error in self.console_errors()):
                await asyncio.wait(
                    [self.next_event(m) for m in ("Log.entryAdded", "Runtime.consoleAPICalled")],
                    return_when=asyncio.FIRST_COMPLETED,
                )

        await asyncio.wait_for(seen(), 60)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (awaiting a promise); return its JSON value."""
        answer = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def console_errors(self) -> list[str]:
        """Errors the page logged: console.error, uncaught exceptions, failed loads, CSP."""
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    async def close(self) -> None:
        """Close the websocket and stop reading."""
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page(profile: Path) -> AsyncIterator[DevTools]:
    """Start headless chromium on a loopback debugging port; yield a client for a blank page."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stderr is not None
        port = None
        while port is None:
            line = await asyncio.wait_for(process.stderr.readline(), 60)
            if not line:
                raise AssertionError("chromium exited before opening its debugging port")
            found = re.search(rb"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else None
        drain = asyncio.ensure_future(process.stderr.read())  # keep the pipe from filling
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            page = next(t for t in targets if t["type"] == "page")
            socket = await http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
            devtools = DevTools(socket)
            try:
                yield devtools
            finally:
                await devtools.close()
        drain.cancel()
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except asyncio.TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


def media_folder(out: Path) -> list[dict[str, Any]]:
    """Real MP4/PNG/WAV/MP3 files from the fake's media generator, and rows that name them."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "fox.mp4": mp4_bytes(),
        "poster-1.png": png_bytes(),
        "poster-2.png": png_bytes(),
        "rain.wav": wav_bytes(),
        "rain.mp3": mp3_bytes(),
        "sub dir/tram.mp4": mp4_bytes(),
    }
    for name, data in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(data)

    def listed(*names: str) -> list[dict[str, Any]]:
        return [
            {
                "path": n,
                "size": len(files[n]),
                "sha256": hashlib.sha256(files[n]).hexdigest(),
                "kind": {"mp4": "video", "png": "image"}.get(n.rsplit(".", 1)[1], "audio"),
            }
            for n in names
        ]

    t = "2025-03-01T10:{:02d}:{:02d}Z".format
    return [
        row("fox", files=listed("fox.mp4"), units=3, created_at=t(0, 0), finished_at=t(1, 40)),
        row(
            "posters",
            files=listed("poster-1.png", "poster-2.png"),
            units="0.5",
            endpoint="image_generation",
            created_at=t(0, 5),
            finished_at=t(0, 30),
        ),
        row(
            "rain",
            files=listed("rain.wav", "rain.mp3"),
            units=0.25,
            endpoint="text_to_audio",
            created_at=t(0, 10),
            finished_at=t(0, 28),
        ),
        row(
            "tram",
            files=listed("sub dir/tram.mp4"),
            units=3,
            created_at=t(1, 40),
            finished_at=t(3, 0),
        ),
        row(
            "refused",
            "failed",
            error={"code": 1301, "message": "content policy"},
            units="0",
            created_at=t(0, 20),
            finished_at=t(0, 50),
        ),
        row(
            "hostile",
            "error",
            prompt=HOSTILE,
            error={"code": None, "message": HOSTILE},
            created_at=t(0, 30),
        ),
        row("later", "not_started"),
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_report_in_headless_chromium(tmp_path: Path) -> None:
    """Every card renders, media load, filters work, hostile text stays text, no console errors."""
    out = tmp_path / "out"
    rows = media_folder(out)
    write_jsonl(out / "results.jsonl", rows)
    page_path = write_report(out, title="Browser check")

    with tempfile.TemporaryDirectory(prefix="kling-chromium-") as profile:
        async with chromium_page(Path(profile)) as page:
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                await page.call(domain)
            await page.call(
                "Emulation.setDeviceMetricsOverride",
                width=1280,
                height=900,
                deviceScaleFactor=1,
                mobile=False,
            )
            loaded = page.next_event("Page.loadEventFired")
            await page.call("Page.navigate", url=page_path.as_uri())
            await asyncio.wait_for(loaded, 60)

            keys = await page.evaluate(
                "Array.from(document.querySelectorAll('#gallery .card .key'), e => e.textContent)"
            )
            assert keys == [r["key"] for r in rows]

            media_states = await page.evaluate(
                """Promise.all(Array.from(
                    document.querySelectorAll('#gallery video, #gallery audio'),
                    m => m.readyState >= 1 ? m.readyState : new Promise(done => {
                      m.addEventListener('loadedmetadata', () => done(m.readyState));
                      m.addEventListener('error', () => done(-1));
                    })))"""
            )
            assert len(media_states) == 4
            assert all(state >= 1 for state in media_states), media_states
            durations = await page.evaluate(
                "Array.from(document.querySelectorAll('#gallery video'), v => v.duration)"
            )
            assert durations == [pytest.approx(1.0)] * 2
            images = await page.evaluate(
                """Promise.all(Array.from(document.querySelectorAll('#gallery img'),
                    i => i.decode().then(() => i.naturalWidth, () => -1)))"""
            )
            assert images == [32, 32]

            assert await page.evaluate("typeof window.__pwned") == "undefined"
            hostile = await page.evaluate(
                "document.querySelector('[data-status=error] .prompt').textContent"
            )
            assert hostile == HOSTILE

            visible = await page.evaluate(
                """(() => { document.querySelector('#filters [data-filter=failed]').click();
                    return Array.from(document.querySelectorAll('#gallery .card'))
                      .filter(c => !c.hidden).map(c => c.querySelector('.key').textContent); })()"""
            )
            assert visible == ["refused"]
            await page.evaluate("document.querySelector('#filters [data-filter=all]').click()")
            assert await page.evaluate("document.getElementById('shown').textContent") == "7"
            assert await page.evaluate("document.querySelectorAll('.missing').length") == 0
            peak = await page.evaluate(
                "document.getElementById('slot-timeline').getAttribute('data-peak')"
            )
            assert peak == "4"

            shot = await page.call(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            ARTIFACTS.mkdir(exist_ok=True)
            screenshot = ARTIFACTS / "report.png"
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            logger.info("report screenshot saved to %s", screenshot)
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            assert page.console_errors() == []


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_missing_file_and_injected_script_are_caught(tmp_path: Path) -> None:
    """A vanished file is marked on its card; the page's policy refuses script it did not ship.

    Both are reported as console errors, which shows the collector the other browser
    test relies on does see them.
    """
    rows = [row("gone", files=[{"path": "gone.mp4", "kind": "video"}])]
    page_path = write_report(tmp_path, results=rows)
    with tempfile.TemporaryDirectory(prefix="kling-chromium-") as profile:
        async with chromium_page(Path(profile)) as page:
            for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
                await page.call(domain)
            loaded = page.next_event("Page.loadEventFired")
            await page.call("Page.navigate", url=page_path.as_uri())
            await asyncio.wait_for(loaded, 60)
            state = await page.evaluate(
                """new Promise(done => { const v = document.querySelector('video');
                    if (v.error) { done('error'); } else {
                      v.addEventListener('error', () => done('error'));
                      v.addEventListener('loadedmetadata', () => done('loaded')); } })"""
            )
            assert state == "error"
            assert await page.evaluate("document.querySelectorAll('figure.missing').length") == 1

            injected = await page.evaluate(
                """(() => { const s = document.createElement('script');
                    s.textContent = 'window.__injected = 1';
                    document.body.appendChild(s); return typeof window.__injected; })()"""
            )
            assert injected == "undefined"
            await page.until_console_error("Content Security Policy")
            await page.until_console_error("ERR_FILE_NOT_FOUND")
