"""``batch --shard K/N``: one jobs file split by a stable hash of each key; ``report`` merges."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from kling_async import cli as _cli
from kling_async.cli._shard import Shard, parse_shard, shard_of
from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway


def write_jobs(path: Path, count: int) -> list[str]:
    """``count`` text-to-video lines keyed ``clip-NN``; returns the keys."""
    keys = [f"clip-{i:02d}" for i in range(count)]
    path.write_text(
        "".join(
            json.dumps({"endpoint": "text2video", "key": key, "prompt": f"a fox, take {key}"})
            + "\n"
            for key in keys
        ),
        encoding="utf-8",
    )
    return keys


def argv(jobs: Path, out: Path, fake: FakeGateway, *extra: str) -> list[str]:
    """A quiet, fast batch command line against ``fake``."""
    return [
        "batch",
        str(jobs),
        "--out",
        str(out),
        "--progress",
        "off",
        "--time-scale",
        "0.002",
        "--api-key",
        fake.config.api_key,
        "--endpoint-path",
        fake.config.endpoint_path,
        "--base-url",
        fake.url,
        *extra,
    ]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The lines of a results file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_key_belongs_to_sha256_of_the_key_mod_n_plus_one() -> None:
    """The shard of a key is sha256(key) mod N, numbered from 1, the same on every host."""
    for key in ("clip-00", "ünïcode/κλειδί", "x" * 500):
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        for count in (1, 2, 3, 7):
            assert shard_of(key, count) == digest % count + 1
    assert Shard(2, 4).results_name == "results-2-of-4.jsonl"
    assert Shard(2, 4).journal_name == "journal-2-of-4.sqlite"


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/5", "", "2 of 3"])
def test_bad_shard_values_are_usage_errors(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--shard outside K/N with 1 <= K <= N exits 2 with a message that says the form."""
    with pytest.raises(SystemExit) as raised:
        _cli.build_parser().parse_args(["batch", "jobs.jsonl", "--out", "x", "--shard", text])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "--shard" in err
    assert "Traceback" not in err
    assert "parse_shard" not in err


def test_good_shard_values_parse() -> None:
    """K/N with spaces around the parts is read as shard K of N."""
    assert parse_shard("1/1") == Shard(1, 1)
    assert parse_shard(" 3 / 4 ") == Shard(3, 4)


async def test_three_shards_cover_every_key_once_and_report_merges_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three shards run at once in one OUT: each key created once, in its shard; one page."""
    jobs = tmp_path / "jobs.jsonl"
    keys = write_jobs(jobs, 30)
    out = tmp_path / "out"
    codes: dict[int, int] = {}
    async with run_fake_gateway(FakeConfig(time_scale=0.002, seed=3)) as fake:

        async def shard(index: int) -> None:
            args = argv(jobs, out, fake, "--shard", f"{index}/3", "--no-report")
            codes[index] = await _cli.amain(args)

        async with anyio.create_task_group() as tg:
            for index in (1, 2, 3):
                tg.start_soon(shard, index)
        stats = fake.stats()
    assert codes == {1: 0, 2: 0, 3: 0}
    assert stats["creates"] == 30
    assert stats["duplicate_external_ids"] == 0
    assert not (out / "results.jsonl").exists()
    seen: Counter[str] = Counter()
    for index in (1, 2, 3):
        assert (out / f"journal-{index}-of-3.sqlite").is_file()
        rows = read_rows(out / f"results-{index}-of-3.jsonl")
        assert rows, f"shard {index} got no job"  # 30 keys over 3 shards: none is empty
        for row in rows:
            assert shard_of(row["key"], 3) == index
            assert row["status"] == "succeed"
            for saved in row["files"]:
                assert (out / saved["path"]).is_file()
        seen.update(row["key"] for row in rows)
    assert seen == Counter(keys)

    capsys.readouterr()
    assert await _cli.amain(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "report.html")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('<article class="card') == 30
    assert all(key in page for key in keys)
    for index in (1, 2, 3):
        assert f"results-{index}-of-3.jsonl" in page


async def test_a_shard_that_owns_no_line_sends_nothing_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shard with no job of the file writes an empty results file and creates nothing."""
    jobs = tmp_path / "jobs.jsonl"
    (key,) = write_jobs(jobs, 1)
    other = 2 if shard_of(key, 2) == 1 else 1
    out = tmp_path / "out"
    async with run_fake_gateway(FakeConfig(time_scale=0.002)) as fake:
        code = await _cli.amain(argv(jobs, out, fake, "--shard", f"{other}/2"))
        stats = fake.stats()
    assert code == 0
    assert stats["api_requests"] == 0
    assert (out / f"results-{other}-of-2.jsonl").read_text(encoding="utf-8") == ""
    assert "no job" in capsys.readouterr().err
