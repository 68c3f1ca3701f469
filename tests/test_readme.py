"""The README's promises: two commands up front, the second being exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_section_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.split(r"\n## ", text, maxsplit=2)[1]
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", first, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_first_section_has_exactly_two_commands() -> None:
    """A fresh clone needs two commands: run the demo, run the tests."""
    commands = _first_section_commands()
    assert len(commands) == 2
    assert commands[0].endswith("kling-async demo")


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run executes the README's second command verbatim."""
    test_command = _first_section_commands()[1]
    ci_lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in [line.strip() for line in ci_lines]
