"""``kling-async --help``: every argument explained with its default, no internal names."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from kling_async import cli
from kling_async._endpoints import ENDPOINTS


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, by name."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no commands")


COMMANDS = subparsers(cli.build_parser())


def test_every_command_is_there() -> None:
    """The eight commands are registered."""
    assert set(COMMANDS) == {
        "demo",
        "batch",
        "create",
        "get",
        "wait",
        "download",
        "report",
        "fake-server",
    }


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_has_help_and_every_option_its_default(name: str) -> None:
    """Positionals have help; every optional option's help says its default."""
    for action in COMMANDS[name]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        label = "/".join(action.option_strings) or str(action.metavar or action.dest)
        assert action.help, f"{name} {label} has no help"
        assert action.help != argparse.SUPPRESS, f"{name} {label} is hidden"
        if action.option_strings and not action.required:
            assert "default" in action.help, f"{name} {label}: {action.help}"


@pytest.mark.parametrize("name", ["create", "get", "wait", "download"])
def test_endpoint_help_lists_every_endpoint_by_name(name: str) -> None:
    """ENDPOINT has help, and the command's help lists every family's name and path."""
    text = COMMANDS[name].format_help()
    assert "ENDPOINT" in text
    assert "endpoint family" in text
    for endpoint in ENDPOINTS:
        assert endpoint.name in text
        assert endpoint.path in text


def test_rendered_help_shows_defaults() -> None:
    """The rendered help of batch shows values, not argparse placeholders."""
    text = COMMANDS["batch"].format_help()
    assert "(default: 10)" in text  # --max-running
    assert "(default: 5.0)" in text  # --progress-interval
    assert "%(default)" not in text
    assert "--time-scale" in text


def test_exit_codes_are_documented_in_help_and_docstring() -> None:
    """batch --help and the package docstring both list 0, 1, 2 and 130."""
    text = COMMANDS["batch"].format_help()
    for code in ("0 ", "1 ", "2 ", "130"):
        assert f"  {code}" in text
    doc = cli.__doc__ or ""
    for code in ("* 0:", "* 1:", "* 2:", "* 130:"):
        assert code in doc


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["batch", "jobs.jsonl", "--out", "o", "--max-running", "ten"], "whole number >= 1"),
        (["batch", "jobs.jsonl", "--out", "o", "--max-running", "0"], "whole number >= 1"),
        (["batch", "jobs.jsonl", "--out", "o", "--max-rps", "-1"], "number > 0"),
        (["batch", "jobs.jsonl", "--out", "o", "--time-scale", "nan"], "number > 0"),
        (["demo", "--time-scale", "fast"], "number > 0"),
        (["wait", "text2video", "1", "--timeout", "x"], "number > 0"),
    ],
)
def test_bad_values_are_explained_without_internal_names(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad number exits 2 with a plain message; no function name leaks into it."""
    with pytest.raises(SystemExit) as exited:
        cli.build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert expected in err
    assert "_positive" not in err
    assert "positive_" not in err
    assert "invalid" not in err


def test_help_subprocess_shows_epilog_and_no_internal_names() -> None:
    """``python -m kling_async batch --help`` prints the exit codes and no private names."""
    done = subprocess.run(
        [sys.executable, "-m", "kling_async", "batch", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "exit status:" in done.stdout
    assert "130" in done.stdout
    assert "_positive" not in done.stdout
    assert "kling_async." not in done.stdout


def imported(path: Path) -> set[str]:
    """Every module and name a source file imports, at any depth (functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_demo_is_imported_by_the_dispatcher_only() -> None:
    """No module of the CLI but the dispatcher imports the demo; the demo runs the batch's."""
    package = Path(cli.__file__).parent
    for path in package.glob("*.py"):
        if path.name in ("_main.py", "demo.py"):
            continue
        names = imported(path)
        assert "demo" not in names, path.name
        assert not any(name.endswith(".demo") for name in names), path.name
    assert "batch" in imported(package / "demo.py")
    assert "run_batch" in imported(package / "demo.py")
