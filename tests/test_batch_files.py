"""The fetch stage names files by job key, inside the output folder, and never overwrites."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio

from kling_async import ImageGenerationRequest, KlingSession, TextToVideoRequest
from kling_async._filenames import safe_stem
from kling_async._journal import Journal
from kling_async.batch import JobResult
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway
from kling_async.testing._pytest_plugin import fast_session_options

SCALE = 0.001
HANG_GUARD = 60.0  # seconds; only to turn a hang into a failure, never a timing check


@contextlib.asynccontextmanager
async def fake_and_session(**config: Any) -> AsyncIterator[tuple[FakeGateway, KlingSession]]:
    async with (
        run_fake_gateway(FakeConfig(time_scale=SCALE, **config)) as fake,
        fake.session(**fast_session_options()) as session,
    ):
        yield fake, session


async def run(session: KlingSession, out: Path, jobs: list[Any], **options: Any) -> list[JobResult]:
    with anyio.fail_after(HANG_GUARD):
        async with session.batch(download_dir=out, **options) as batch:
            batch.submit_all(jobs)
            return [r async for r in batch]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_outputs_are_named_by_key(tmp_path: Path) -> None:
    """clip-07 -> clip-07.mp4; three images of 'cats' -> cats-1.png .. cats-3.png."""
    out = tmp_path / "out"
    jobs = [
        ("clip-07", TextToVideoRequest(prompt="a lighthouse")),
        ("cats", ImageGenerationRequest(prompt="three cats", n=3)),
    ]
    async with fake_and_session() as (_, session):
        results = {r.key: r for r in await run(session, out, jobs, journal=tmp_path / "j.db")}
    assert [f.path for f in results["clip-07"].files] == [out / "clip-07.mp4"]
    assert [f.path.name for f in results["cats"].files] == [
        "cats-1.png",
        "cats-2.png",
        "cats-3.png",
    ]
    assert sorted(p.name for p in out.iterdir()) == [
        "cats-1.png",
        "cats-2.png",
        "cats-3.png",
        "clip-07.mp4",
    ]
    for result in results.values():
        for saved in result.files:
            assert digest(saved.path) == saved.sha256


async def test_unsafe_keys_stay_inside_the_output_folder(tmp_path: Path) -> None:
    """A key like ../../etc/x is sanitized and hashed; the file lands inside OUT."""
    out = tmp_path / "out"
    key = "../../etc/Passwd"
    async with fake_and_session() as (_, session):
        (result,) = await run(session, out, [(key, TextToVideoRequest(prompt="a moth"))])
    (saved,) = result.files
    assert saved.path == out / f"{safe_stem(key)}.mp4"
    assert saved.path.resolve().parent == out.resolve()
    assert list(tmp_path.iterdir()) == [out]


async def test_a_name_taken_by_another_job_is_never_overwritten(tmp_path: Path) -> None:
    """Job 'a' (2 images) and job 'a-1' (1 image) both want a-1.png: one keeps its task name."""
    out = tmp_path / "out"
    jobs = [
        ("a", ImageGenerationRequest(prompt="two owls", n=2)),
        ("a-1", ImageGenerationRequest(prompt="one owl", n=1)),
    ]
    async with fake_and_session() as (_, session):
        results = await run(session, out, jobs)
    files = [f for r in results for f in r.files]
    assert len(files) == 3
    assert len({f.path for f in files}) == 3
    assert (out / "a-1.png").is_file()
    for saved in files:
        assert saved.path.parent == out
        assert digest(saved.path) == saved.sha256
    fallback = [f for r in results for f in r.files if not f.path.name.startswith(r.key)]
    assert len(fallback) == 1
    (task_named,) = fallback
    owner = next(r for r in results if task_named in r.files)
    assert owner.task is not None
    assert task_named.path.name.startswith(owner.task.id)


async def test_a_rerun_keeps_intact_files_without_downloading(tmp_path: Path) -> None:
    """Re-run on the journal: every recorded file's sha256 matches, nothing is fetched again."""
    out, journal = tmp_path / "out", tmp_path / "j.db"
    jobs = [(f"clip-{i}", TextToVideoRequest(prompt=f"a fern {i}")) for i in range(3)]
    async with fake_and_session() as (fake, session):
        await run(session, out, jobs, journal=journal)
        media = fake.stats()["media_requests"]
        again = await run(session, out, jobs, journal=journal)
        assert fake.stats()["media_requests"] == media
    assert all(r.resumed and r.ok for r in again)
    assert sorted(f.path.name for r in again for f in r.files) == [
        "clip-0.mp4",
        "clip-1.mp4",
        "clip-2.mp4",
    ]


async def test_a_file_recorded_under_an_older_name_is_kept_where_it_is(tmp_path: Path) -> None:
    """A journal of an earlier version recorded a task-id name: the file is found, not refetched."""
    out, journal = tmp_path / "out", tmp_path / "j.db"
    job = ("clip-9", TextToVideoRequest(prompt="a pike"))
    async with fake_and_session() as (fake, session):
        (first,) = await run(session, out, [job], journal=journal)
        (saved,) = first.files
        old = out / "868000000000000000_video_0.mp4"
        saved.path.rename(old)
        reader = Journal(journal)
        batch_id = reader.batch_id
        reader.close()
        with contextlib.closing(sqlite3.connect(journal)) as db, db:
            db.execute(
                "UPDATE files SET path = ? WHERE batch_id = ? AND key = ?",
                (str(old), batch_id, "clip-9"),
            )
            db.execute(
                "UPDATE jobs SET downloaded = 0 WHERE batch_id = ? AND key = ?",
                (batch_id, "clip-9"),
            )
        media = fake.stats()["media_requests"]
        (again,) = await run(session, out, [job], journal=journal)
        assert fake.stats()["media_requests"] == media
    assert again.ok
    assert [f.path for f in again.files] == [old]
    assert [f.skipped for f in again.files] == [True]
