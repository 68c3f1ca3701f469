"""Every script in examples/ runs to the end against the embedded fake gateway (``--fake``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> str:
    """Run ``examples/NAME`` with ``--fake`` in a fresh interpreter; return its stdout."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--fake", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_every_example_has_a_header_and_a_fake_switch() -> None:
    """Each example starts with a docstring that says how to run it, --fake included."""
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == ["batch_clips.py", "pipeline.py", "quickstart.py", "web_app.py"]
    for name in scripts:
        text = (EXAMPLES / name).read_text(encoding="utf-8")
        assert text.startswith('"""'), name
        assert "--fake" in text.split('"""')[1], name


def test_quickstart_creates_waits_and_downloads(tmp_path: Path) -> None:
    """quickstart.py saves one valid MP4."""
    out = run_example("quickstart.py", "a paper boat", "--out", "videos", cwd=tmp_path)
    assert "succeed" in out
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"


def test_batch_clips_runs_and_resumes_from_the_journal(tmp_path: Path) -> None:
    """batch_clips.py finishes a file of prompts; running it again reads every result back."""
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt number {i}\n" for i in range(60)), encoding="utf-8")
    first = run_example("batch_clips.py", str(prompts), "--out", "clips", cwd=tmp_path)
    assert "60/60 clips" in first
    assert len(list((tmp_path / "clips").glob("*.mp4"))) == 60
    again = run_example("batch_clips.py", str(prompts), "--out", "clips", cwd=tmp_path)
    assert "60/60 clips" in again
    assert again.count("(from journal)") == 60


def test_web_app_gets_its_result_through_callbacks(tmp_path: Path) -> None:
    """web_app.py serves /generate and /jobs, and its callback receiver hears the fake."""
    out = run_example("web_app.py", "--once", "a lighthouse", "--out", "web", cwd=tmp_path)
    answer = json.loads(out)
    assert answer["status"] == "succeed"
    assert answer["file_bytes"] > 0
    assert answer["callbacks_received"] > 0


@pytest.mark.parametrize("variant", [[], ["--lip-sync"]], ids=["extend", "lip-sync"])
def test_pipeline_chains_endpoints(tmp_path: Path, variant: list[str]) -> None:
    """pipeline.py goes image → image-to-video → extend (or audio + face → lip-sync)."""
    out = run_example("pipeline.py", "--out", "result", *variant, cwd=tmp_path)
    steps = ["image", "image-to-video"] + (
        ["text-to-audio", "identify-face", "lip-sync"] if variant else ["video-extend"]
    )
    lines = out.splitlines()
    for step, line in zip(steps, lines[: len(steps)], strict=True):
        assert line.startswith(step)
    assert "succeed" in lines[1]
    (video,) = (tmp_path / "result").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp"
