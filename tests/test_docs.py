"""The docs site: it builds with ``mkdocs build --strict`` and documents every public name."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import kling_async
import kling_async.testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_MISSING = [
    name for name in ("mkdocs", "material", "mkdocstrings", "yaml")
    if importlib.util.find_spec(name) is None
]  # fmt: skip
needs_mkdocs = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"{', '.join(_MISSING)} not installed (pip install -e '.[docs]')",
)


def nav_pages() -> list[str]:
    """Every page the mkdocs.yml navigation names, in order."""
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            pages.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)

    walk(config["nav"])
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module with --strict (warnings fail the build)."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@needs_mkdocs
def test_site_builds_strictly(site: Path) -> None:
    """mkdocs build --strict succeeds and writes every page of the navigation."""
    for page in nav_pages():
        stem = page.removesuffix(".md")
        folder = stem.removesuffix("index").rstrip("/") if stem.endswith("index") else stem
        assert (site / folder / "index.html").is_file(), page


@needs_mkdocs
def test_every_public_name_has_a_reference_entry(site: Path) -> None:
    """Each name in kling_async.__all__ and kling_async.testing.__all__ is documented."""
    html = "".join(p.read_text(encoding="utf-8") for p in (site / "reference").rglob("*.html"))
    anchors = set(re.findall(r'id="(kling_async\.[A-Za-z0-9_.]+)"', html))
    missing = [f"kling_async.{n}" for n in kling_async.__all__ if f"kling_async.{n}" not in anchors]
    missing += [
        f"kling_async.testing.{n}"
        for n in kling_async.testing.__all__
        if f"kling_async.testing.{n}" not in anchors
    ]
    assert missing == []


@needs_mkdocs
def test_every_page_is_in_the_navigation() -> None:
    """No page under docs/ is left out of the navigation (so none is unreachable)."""
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - set(nav_pages()) == set()
    assert set(nav_pages()) - pages == set()


def test_guides_exist_for_every_topic() -> None:
    """Quickstart, batches, report, web apps, testing, journal, errors, validation."""
    for page in (
        "quickstart.md",
        "guides/batches.md",
        "guides/report.md",
        "guides/web-apps.md",
        "guides/testing.md",
        "guides/journal.md",
        "guides/errors.md",
        "validation.md",
    ):
        assert (DOCS / page).is_file(), page


def test_errors_guide_names_every_public_exception_and_exit_code() -> None:
    """The tree in the errors guide lists every exported exception; the exit codes are there."""
    text = (DOCS / "guides" / "errors.md").read_text(encoding="utf-8")
    tree = text.split("```text", 1)[1].split("```", 1)[0]
    exceptions = [
        name
        for name in kling_async.__all__
        if inspect.isclass(obj := getattr(kling_async, name))
        and issubclass(obj, Exception)
        and not issubclass(obj, Warning)
    ]
    assert exceptions
    assert [name for name in exceptions if not re.search(rf"\b{name}\b", tree)] == []
    table = text.split("## Exit codes", 1)[1]
    for code in ("0", "1", "2", "130"):
        assert re.search(rf"^\| {code} \|", table, flags=re.M), code


def test_journal_guide_says_what_it_keeps_and_who_may_open_it() -> None:
    """Where request bodies go, that the file is private, one journal per process, the lock."""
    text = (DOCS / "guides" / "journal.md").read_text(encoding="utf-8")
    for claim in ("Request bodies", "base64", "0600", "JournalLockedError", "own journal"):
        assert claim in text, claim
