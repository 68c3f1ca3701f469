"""The ``kling-async`` command (also ``python -m kling_async``).

Subcommands::

    kling-async demo [--jobs N] [--out DIR]          a real batch against the embedded fake
    kling-async batch JOBS.jsonl --out DIR [...]     run (and resume) a JSONL file of jobs
    kling-async create ENDPOINT --json BODY|@FILE    create one task, print it as JSON
    kling-async get ENDPOINT TASK_ID [--external]    query one task
    kling-async wait ENDPOINT TASK_ID [--external]   poll one task until it ends
    kling-async download ENDPOINT TASK_ID --out DIR  save a task's outputs
    kling-async fake-server [--port N] [...]         run the fake gateway standalone

Configuration comes from ``--api-key``, ``--endpoint-path``, ``--base-url`` and
``--turbo-base-url`` or from ``KLING_API_KEY``, ``KLING_ENDPOINT_PATH``,
``KLING_BASE_URL`` and ``KLING_TURBO_BASE_URL``. The key is never printed.

Exit status: 0 success; 1 a task (or some jobs of a batch) failed, or an API
error; 2 bad input or configuration; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from ._config import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_ENDPOINT_PATH,
    ENV_TURBO_BASE_URL,
    ClientConfig,
    PollPolicy,
)
from ._converter import request_from_payload
from ._endpoints import ENDPOINTS, Endpoint, endpoint_for
from ._errors import (
    ConfigurationError,
    KlingError,
    Problem,
    TaskFailedError,
    ValidationError,
    WaitTimeoutError,
)
from ._models import Request
from ._task import FaceSession, Task

if TYPE_CHECKING:
    from .batch import Batch

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "Job",
    "LineProblem",
    "amain",
    "build_parser",
    "load_jobs",
    "main",
    "task_to_json",
]

logger = logging.getLogger("kling_async.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

PROG = "kling-async"


# --- JSONL jobs ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Job:
    """One line of a jobs file, parsed and validated.

    Attributes:
        line: 1-based line number in the file.
        key: The job's stable key (given, or ``line-<n>``).
        endpoint: The endpoint family.
        request: The request model.
    """

    line: int
    key: str
    endpoint: Endpoint
    request: Request = attrs.field(repr=False)


@attrs.frozen(kw_only=True)
class LineProblem:
    """Why one line of a jobs file cannot run.

    Attributes:
        line: 1-based line number.
        field: Where (wire name), or ``(line)`` for the line as a whole.
        message: The rule that was broken.
    """

    line: int
    field: str
    message: str

    def format(self, source: str) -> str:
        """``source:line: field: message``, compiler-style.

        Args:
            source: The file name to show.

        Returns:
            The text.
        """
        return f"{source}:{self.line}: {self.field}: {self.message}"


def _key_of(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def parse_job_line(line_no: int, text: str) -> tuple[Job | None, list[LineProblem]]:
    """Parse and validate one JSONL line.

    Args:
        line_no: Its 1-based number.
        text: The line (not blank).

    Returns:
        The job (``None`` when it has problems) and every problem found.
    """

    def bad(field: str, message: str) -> tuple[None, list[LineProblem]]:
        return None, [LineProblem(line=line_no, field=field, message=message)]

    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return bad("(line)", f"malformed JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(obj, dict):
        return bad("(line)", f"must be a JSON object, got {type(obj).__name__}")
    fields = dict(obj)
    name = fields.pop("endpoint", None)
    if not isinstance(name, str) or not name.strip():
        return bad("endpoint", "required: the family's path under /kling/ (videos/text2video...)")
    try:
        endpoint = endpoint_for(name)
    except KeyError:
        valid = ", ".join(ep.path for ep in ENDPOINTS if ep.is_task)
        return bad("endpoint", f"unknown endpoint {name!r}; expected one of: {valid}")
    if not endpoint.is_task:
        return bad("endpoint", f"{endpoint.path} creates no task; it cannot run in a batch")
    problems: list[LineProblem] = []
    raw_key = fields.pop("key", None)
    key = _key_of(raw_key)
    if raw_key is not None and key is None:
        problems.append(
            LineProblem(line=line_no, field="key", message="must be a non-empty string")
        )
    # Every documented limit first (wire names, every problem at once); then the
    # strict model build, which also catches anything validation lets through.
    from ._validation import validate_payload, validate_request

    found: list[Problem] = validate_payload(endpoint, fields)
    request: Request | None = None
    if not found:
        try:
            request = request_from_payload(endpoint.request_type, fields)
        except ValidationError as exc:
            found = list(exc.problems)
        else:
            found = validate_request(request)
    problems.extend(LineProblem(line=line_no, field=p.path, message=p.message) for p in found)
    if problems or request is None:
        return None, problems
    return Job(line=line_no, key=key or f"line-{line_no}", endpoint=endpoint, request=request), []


def load_jobs(lines: Iterable[str]) -> tuple[list[Job], list[LineProblem]]:
    """Parse a whole jobs file; blank lines are skipped.

    Keys must be unique: a repeated key is reported on every line after the first.

    Args:
        lines: The file's lines.

    Returns:
        The valid jobs and every problem of every line, in line order.
    """
    jobs: list[Job] = []
    problems: list[LineProblem] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        job, found = parse_job_line(number, text)
        problems.extend(found)
        if job is None:
            continue
        first = seen.get(job.key)
        if first is not None:
            problems.append(
                LineProblem(
                    line=number, field="key", message=f"{job.key!r} is already used on line {first}"
                )
            )
            continue
        seen[job.key] = number
        jobs.append(job)
    return jobs, problems


# --- JSON output ----------------------------------------------------------------------


def task_to_json(task: Task) -> dict[str, Any]:
    """A task as a JSON-ready dict, for scripts.

    Args:
        task: The task.

    Returns:
        ``task_id``, ``endpoint``, ``status`` (``submitted``/``processing``/
        ``succeed``/``failed``/``unknown``), ``raw_status``, ``external_task_id``,
        ``message``, times, ``units``, ``outputs`` (kind, url, name), ``video_ids``
        and the raw ``data`` object.
    """
    return {
        "task_id": task.id,
        "endpoint": task.endpoint,
        "status": task.status.value,
        "raw_status": task.raw_status,
        "external_task_id": task.external_id,
        "message": task.message,
        "created_at": task.created_at.isoformat() if task.created_at else None,
        "updated_at": task.updated_at.isoformat() if task.updated_at else None,
        "units": task.units,
        "outputs": [{"kind": f.kind, "url": f.url, "name": f.name} for f in task.files],
        "video_ids": [v.id for v in task.videos if v.id],
        "data": dict(task.raw),
    }


def _face_to_json(face: FaceSession) -> dict[str, Any]:
    return {
        "session_id": face.session_id,
        "faces": [attrs.asdict(f) for f in face.faces],
        "data": dict(face.raw),
    }


def _print_json(value: Any, stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    out.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
    out.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# --- configuration ------------------------------------------------------------------


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (flags win over environment variables)")
    group.add_argument(
        "--api-key", metavar="KEY", help=f"access key (default: ${ENV_API_KEY}; never printed)"
    )
    group.add_argument(
        "--endpoint-path",
        metavar="PATH",
        help=f"your endpoint path (default: ${ENV_ENDPOINT_PATH})",
    )
    group.add_argument(
        "--base-url", metavar="URL", help=f"classic host (default: ${ENV_BASE_URL} or the gateway)"
    )
    group.add_argument(
        "--turbo-base-url",
        metavar="URL",
        help=f"turbo host (default: ${ENV_TURBO_BASE_URL}, else --base-url when given, else "
        "the gateway)",
    )


def _add_poll_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("polling (defaults suit real generation times of minutes)")
    group.add_argument(
        "--poll-initial-delay", type=float, metavar="S", help="seconds before a task's first poll"
    )
    group.add_argument(
        "--poll-interval", type=float, metavar="S", help="seconds between the first polls"
    )
    group.add_argument(
        "--poll-max-interval", type=float, metavar="S", help="longest wait between polls"
    )


def _poll_policy(args: argparse.Namespace, base: PollPolicy) -> PollPolicy:
    changes = {
        name: value
        for name, value in (
            ("initial_delay", getattr(args, "poll_initial_delay", None)),
            ("interval", getattr(args, "poll_interval", None)),
            ("max_interval", getattr(args, "poll_max_interval", None)),
        )
        if value is not None
    }
    if "interval" in changes and "max_interval" not in changes:
        changes["max_interval"] = max(base.max_interval, changes["interval"])
    if "max_interval" in changes and "interval" not in changes:
        changes["interval"] = min(base.interval, changes["max_interval"])
    return attrs.evolve(base, **changes) if changes else base


def config_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """Build the configuration from flags, then environment variables.

    A ``--base-url`` without a turbo URL serves both hosts (as a fake gateway does)
    unless ``KLING_TURBO_BASE_URL`` says otherwise.

    Args:
        args: Parsed arguments.
        environ: Environment (default ``os.environ``).

    Returns:
        The configuration.

    Raises:
        ConfigurationError: The key or endpoint path is missing, or a value is bad.
    """
    env = os.environ if environ is None else environ
    turbo = args.turbo_base_url
    if turbo is None and args.base_url and not env.get(ENV_TURBO_BASE_URL):
        turbo = args.base_url
    config = ClientConfig.from_env(
        env,
        api_key=args.api_key,
        endpoint_path=args.endpoint_path,
        base_url=args.base_url,
        turbo_base_url=turbo,
    )
    poll = _poll_policy(args, config.poll)
    return attrs.evolve(config, poll=poll) if poll is not config.poll else config


def _config_or_exit(args: argparse.Namespace) -> ClientConfig | None:
    try:
        return config_from_args(args)
    except ConfigurationError as exc:
        text = str(exc)
        if "api_key" in text:
            _error(
                f"no API key: pass --api-key or set {ENV_API_KEY} "
                f"(try `{PROG} demo` to see it work without one)"
            )
        elif "endpoint_path" in text:
            _error(f"no endpoint path: pass --endpoint-path or set {ENV_ENDPOINT_PATH}")
        else:
            _error(f"bad configuration: {text}")
        return None


def _read_body(value: str) -> Any:
    if value == "@-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        text = Path(value[1:]).read_text(encoding="utf-8")
    else:
        text = value
    return json.loads(text)


# --- single-task commands -------------------------------------------------------------


async def _cmd_create(args: argparse.Namespace) -> int:
    from ._session import KlingSession

    try:
        endpoint = endpoint_for(args.endpoint)
    except KeyError as exc:
        _error(str(exc.args[0]))
        return EXIT_BAD_INPUT
    try:
        body = _read_body(args.json)
    except (OSError, json.JSONDecodeError) as exc:
        _error(f"--json: cannot read a JSON object: {exc}")
        return EXIT_BAD_INPUT
    if not isinstance(body, dict):
        _error("--json: the body must be a JSON object")
        return EXIT_BAD_INPUT
    try:
        request: Request = request_from_payload(endpoint.request_type, body)
    except ValidationError as exc:
        _report_problems(exc.problems, endpoint.path)
        return EXIT_BAD_INPUT
    config = _config_or_exit(args)
    if config is None:
        return EXIT_BAD_INPUT
    async with KlingSession(config=config) as session:
        if not endpoint.is_task:
            face = await session.identify_face(request)  # type: ignore[arg-type]
            _print_json(_face_to_json(face))
            return EXIT_OK
        task = await session.create(request, external_task_id=args.external_task_id)
        if args.wait:
            task = await session.wait(task, raise_on_failure=False)
        _print_json(task_to_json(task))
        return EXIT_FAILED if task.failed else EXIT_OK


def _report_problems(problems: Iterable[Problem], where: str) -> None:
    for p in problems:
        _error(f"{where}: {p.path}: {p.message}")


async def _get_task(session: Any, args: argparse.Namespace) -> Task:
    endpoint = endpoint_for(args.endpoint)
    if args.external:
        task: Task = await session.get(endpoint, external_task_id=args.task_id)
    else:
        task = await session.get(endpoint, args.task_id)
    return task


async def _cmd_get(args: argparse.Namespace) -> int:
    from ._session import KlingSession

    config = _config_or_exit(args)
    if config is None:
        return EXIT_BAD_INPUT
    async with KlingSession(config=config) as session:
        task = await _get_task(session, args)
        _print_json(task_to_json(task))
        return EXIT_OK


async def _cmd_wait(args: argparse.Namespace) -> int:
    from ._session import KlingSession

    config = _config_or_exit(args)
    if config is None:
        return EXIT_BAD_INPUT
    async with KlingSession(config=config) as session:
        task = await _get_task(session, args)
        task = await session.wait(task, timeout=args.timeout, raise_on_failure=False)
        _print_json(task_to_json(task))
        return EXIT_FAILED if task.failed else EXIT_OK


async def _cmd_download(args: argparse.Namespace) -> int:
    from ._session import KlingSession

    config = _config_or_exit(args)
    if config is None:
        return EXIT_BAD_INPUT
    async with KlingSession(config=config) as session:
        task = await _get_task(session, args)
        if not task.is_terminal and args.wait:
            task = await session.wait(task, raise_on_failure=False)
        if not task.succeeded:
            _print_json(task_to_json(task))
            _error(f"task {task.id} is {task.status.value}: nothing to download")
            return EXIT_FAILED
        files = await session.download(task, args.out)
        result = task_to_json(task)
        result["files"] = [
            {"path": str(f.path), "size": f.size, "sha256": f.sha256, "skipped": f.skipped}
            for f in files
        ]
        _print_json(result)
        return EXIT_OK


# --- batch ------------------------------------------------------------------------------


class _Interrupts:
    """Ctrl-C (SIGINT) once: stop admitting. Twice: cancel at once. Three times: exit.

    SIGTERM (a service manager stopping us) skips the graceful step: cancel at once.
    """

    def __init__(self) -> None:
        self.count = 0
        self.on_first: Callable[[], None] | None = None
        self.on_second: Callable[[], None] | None = None

    def __call__(self) -> None:
        self.count += 1
        if self.count == 1 and self.on_first is not None:
            self.on_first()
        elif self.count == 2 and self.on_second is not None:
            self.on_second()
        elif self.count >= 3:
            # The journal commits each transition on its own; nothing is lost.
            os._exit(EXIT_INTERRUPTED)

    def terminate(self) -> None:
        self.count = max(self.count, 1)
        self()


@contextlib.contextmanager
def _signals(interrupts: _Interrupts, enabled: bool) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if enabled:
        for sig, handler in ((signal.SIGINT, interrupts), (signal.SIGTERM, interrupts.terminate)):
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, threads
                continue
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


@attrs.define(kw_only=True)
class BatchRun:
    """What :func:`run_batch` runs: jobs, a session, a progress display, batch options.

    Attributes:
        session: An open session.
        jobs: ``(key, request)`` pairs, in input order.
        reporter: The progress display.
        batch_options: Keyword arguments of :meth:`KlingSession.batch`.
        interrupts: Ctrl-C handling to wire up (``None``: leave signals alone).
    """

    session: Any
    jobs: Sequence[tuple[str, Request]]
    reporter: Any
    batch_options: dict[str, Any] = attrs.field(factory=dict)
    interrupts: _Interrupts | None = None


@attrs.define(kw_only=True)
class BatchOutcome:
    """How a batch run ended.

    Attributes:
        results: Result of every job that ended, by key.
        summary: The batch's figures (``None`` when it never opened).
        stopped: ``True`` after a first Ctrl-C (admissions stopped).
        cancelled: ``True`` after a second Ctrl-C (left at once).
        journal: The journal file, if any.
    """

    results: dict[str, Any] = attrs.field(factory=dict)
    summary: Any = None
    stopped: bool = False
    cancelled: bool = False
    journal: Path | None = None


_RESULT_STATES = {
    "succeed": "succeeded",
    "failed": "failed",
    "error": "error",
    "not_started": "not_started",
}


def _stop_admitting(batch: Batch) -> None:
    """Ask the batch to admit nothing more; queued jobs end ``not_started``."""
    batch.stop_admitting("interrupted")


async def run_batch(run: BatchRun) -> BatchOutcome:
    """Run jobs through the scheduler with progress and Ctrl-C handling.

    Args:
        run: What to run.

    Returns:
        The results and figures.

    Raises:
        JournalMismatchError: A key is in the journal with a different request
            (raised before anything is sent).
    """
    outcome = BatchOutcome(
        journal=Path(run.batch_options["journal"]) if run.batch_options.get("journal") else None
    )
    reporter = run.reporter
    host = asyncio.current_task()
    batch_ref: list[Any] = []

    def first() -> None:
        outcome.stopped = True
        reporter.note(
            "Stopping: no new jobs; finishing those in flight. "
            "Ctrl-C again to leave now (then re-run to resume)."
        )
        if batch_ref:
            _stop_admitting(batch_ref[0])

    def second() -> None:
        outcome.cancelled = True
        reporter.note("Leaving now; the journal is consistent: re-run the command to resume.")
        if host is not None:
            host.cancel()

    if run.interrupts is not None:
        run.interrupts.on_first = first
        run.interrupts.on_second = second
    options = dict(run.batch_options)
    options.setdefault("on_event", reporter.on_event)
    from ._journal import JournalMismatchError

    mismatch: JournalMismatchError | None = None
    try:
        async with reporter, run.session.batch(**options) as batch:
            batch_ref.append(batch)
            try:
                batch.submit_all(list(run.jobs))
            except JournalMismatchError as exc:
                # Raised before anything was submitted: leave the (empty) block
                # normally, then report it.
                mismatch = exc
            if outcome.stopped:
                _stop_admitting(batch)
            async for result in batch:
                outcome.results[result.key] = result
                reporter.set_state(result.key, _RESULT_STATES.get(result.status, "error"))
            outcome.summary = batch.summary()
        if mismatch is not None:
            raise mismatch
    except asyncio.CancelledError:
        if not outcome.cancelled:
            raise
        uncancel = getattr(host, "uncancel", None)
        if callable(uncancel):
            uncancel()
        if batch_ref:
            outcome.summary = batch_ref[0].summary()
    return outcome


def _job_record(job: Job, result: Any, entry: Any) -> dict[str, Any]:
    """One line of results.jsonl."""
    record: dict[str, Any] = {
        "key": job.key,
        "line": job.line,
        "endpoint": job.endpoint.path,
        "task_id": None,
        "external_task_id": None,
        "status": "not_started",
        "outputs": [],
        "files": [],
        "units": None,
        "error": None,
    }
    if result is not None:
        task = result.task
        record["status"] = result.status
        if task is not None:
            record["task_id"] = task.id or None
            record["external_task_id"] = task.external_id
            record["outputs"] = list(task.urls)
            record["units"] = task.units
        record["files"] = [str(f.path) for f in result.files]
        if result.error is not None and result.status != "succeed":
            record["error"] = str(result.error) or type(result.error).__name__
        if result.status == "error" and entry is not None and entry.task_id and not task:
            record["task_id"] = entry.task_id
    if entry is not None:
        record["external_task_id"] = record["external_task_id"] or entry.external_task_id
        state = entry.state.value
        if result is None and state == "failed":
            record.update(task_id=entry.task_id, status="failed", error=entry.message or "failed")
        elif result is None and state not in ("pending", "not_started"):
            # The run was left before this job ended: say what the journal knows.
            record["task_id"] = entry.task_id
            record["status"] = "error"
            record["units"] = entry.units
            if state == "succeed":
                reason = "interrupted while saving the outputs"
            elif entry.task_id:
                reason = "interrupted before the task ended; it keeps running on the server"
            else:
                reason = "interrupted while creating the task"
            record["error"] = f"{reason}; run the same command again to resume"
    return record


def _journal_entries(path: Path | None) -> dict[str, Any]:
    if path is None or not path.exists():
        return {}
    from ._journal import Journal

    try:
        journal = Journal(path)
    except (KlingError, OSError, ValueError):
        return {}
    try:
        return {entry.key: entry for entry in journal.entries()}
    finally:
        journal.close()


def write_results(path: Path, jobs: Sequence[Job], outcome: BatchOutcome) -> dict[str, int]:
    """Write ``results.jsonl``: one object per job, in input order (atomically).

    Args:
        path: The file to write.
        jobs: Every job of the input.
        outcome: What the run produced.

    Returns:
        Jobs per status.
    """
    entries = _journal_entries(outcome.journal) if outcome.cancelled else {}
    counts: dict[str, int] = {}
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for job in jobs:
            record = _job_record(job, outcome.results.get(job.key), entries.get(job.key))
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return counts


def _fmt_units(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def print_batch_summary(
    outcome: BatchOutcome,
    *,
    title: str,
    extra: Sequence[tuple[str, str]] = (),
    stream: TextIO | None = None,
) -> None:
    """Print the summary table of a batch run.

    Args:
        outcome: The run.
        title: Table title.
        extra: More ``(label, value)`` rows.
        stream: Where to print (default ``sys.stdout``).
    """
    from ._progress import print_summary

    s = outcome.summary
    results = outcome.results.values()
    files = sum(len(r.files) for r in results)
    rows: list[tuple[str, str]] = []
    if s is not None:
        rows += [
            ("Jobs", str(s.jobs)),
            ("Succeeded", str(s.succeeded)),
            ("Failed", str(s.failed)),
        ]
        if s.errors:
            rows.append(("Errors", str(s.errors)))
        if s.not_started:
            rows.append(("Not started", str(s.not_started)))
        if s.resumed:
            rows.append(("Resumed from journal", str(s.resumed)))
        rows += [
            ("Units charged", _fmt_units(s.units)),
            ("Polls per task", f"{s.polls_per_task:.1f}"),
            ("Requests (creates / status)", f"{s.creates} / {s.status_requests}"),
        ]
        if s.concurrency_limited or s.rate_limited:
            rows.append(("Throttled (1303 / 1302)", f"{s.concurrency_limited} / {s.rate_limited}"))
        if s.latency_p50 is not None:
            rows.append(
                (
                    "Task latency p50 / p95",
                    f"{s.latency_p50:.1f} s / {(s.latency_p95 or 0):.1f} s",
                )
            )
    rows.append(("Files downloaded", str(files)))
    if s is not None and not any(label == "Wall time" for label, _ in extra):
        rows.append(("Wall time", f"{s.wall_time:.1f} s"))
    rows += list(extra)
    print_summary(rows, title=title, stream=stream)


@attrs.frozen(kw_only=True)
class _BatchPlan:
    source: str
    jobs: list[Job]
    config: ClientConfig
    out: Path
    journal: Path


def _plan_batch(args: argparse.Namespace) -> _BatchPlan | int:
    """Read and check everything before the event loop sends anything."""
    source = "<stdin>" if args.jobs_file == "-" else args.jobs_file
    try:
        if args.jobs_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.jobs_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        _error(f"cannot read {source}: {exc}")
        return EXIT_BAD_INPUT
    jobs, problems = load_jobs(lines)
    if problems:
        for problem in problems:
            sys.stderr.write(problem.format(source) + "\n")
        bad = len({p.line for p in problems})
        _error(f"{bad} bad line(s) in {source}; nothing was sent")
        return EXIT_BAD_INPUT
    if not jobs:
        _error(f"{source} holds no jobs")
        return EXIT_BAD_INPUT
    config = _config_or_exit(args)
    if config is None:
        return EXIT_BAD_INPUT
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _error(f"cannot create {out}: {exc}")
        return EXIT_BAD_INPUT
    journal = Path(args.journal) if args.journal else out / "journal.sqlite"
    return _BatchPlan(source=source, jobs=jobs, config=config, out=out, journal=journal)


async def _cmd_batch(args: argparse.Namespace, *, handle_signals: bool = False) -> int:
    from ._progress import ProgressReporter
    from ._session import KlingSession

    plan = _plan_batch(args)
    if isinstance(plan, int):
        return plan
    jobs, config, out, journal, source = (
        plan.jobs,
        plan.config,
        plan.out,
        plan.journal,
        plan.source,
    )
    options: dict[str, Any] = {
        "max_running": args.max_running,
        "max_requests_per_second": args.max_rps,
        "journal": journal,
        "download_dir": None if args.no_download else out,
        "max_units": args.max_units,
    }
    reporter = ProgressReporter(
        len(jobs),
        title="batch",
        mode=args.progress,
        interval=args.progress_interval,
        downloads=not args.no_download,
    )
    interrupts = _Interrupts()
    with _signals(interrupts, handle_signals):
        async with KlingSession(config=config) as session:
            run = BatchRun(
                session=session,
                jobs=[(job.key, job.request) for job in jobs],
                reporter=reporter,
                batch_options=options,
                interrupts=interrupts,
            )
            from ._journal import JournalMismatchError

            try:
                outcome = await run_batch(run)
            except JournalMismatchError as exc:
                line = next((j.line for j in jobs if j.key == exc.key), 0)
                sys.stderr.write(f"{source}:{line}: key: {exc}\n")
                _error(f"the journal {journal} was written for other jobs; nothing was sent")
                return EXIT_BAD_INPUT
    counts = write_results(out / "results.jsonl", jobs, outcome)
    print_batch_summary(
        outcome,
        title="kling-async batch",
        extra=[("Results", str(out / "results.jsonl")), ("Journal", str(journal))],
    )
    if outcome.cancelled:
        _error("interrupted; run the same command again to resume")
        return EXIT_INTERRUPTED
    if counts.get("succeed", 0) == len(jobs):
        return EXIT_OK
    return EXIT_FAILED


# --- demo -------------------------------------------------------------------------------


async def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(
        jobs=args.jobs,
        out=Path(args.out),
        time_scale=args.time_scale,
        seed=args.seed,
        progress=args.progress,
    )


# --- parser -----------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line parser.

    Returns:
        The parser with every subcommand.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Kling video, image and audio generation from the shell: batches with "
        "resume, single tasks, and a zero-setup demo against the embedded fake gateway.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="run a mixed batch against the embedded fake gateway (no key, no network)",
        description="Start the fake gateway in-process with a compressed clock, run a mixed "
        "batch (text-to-video, image-to-video, image generation, text-to-audio) with live "
        "progress, download every output and print a summary.",
    )
    demo.add_argument("--jobs", type=_positive_int, default=24, help="jobs to run (default 24)")
    demo.add_argument(
        "--out", default="kling-demo", metavar="DIR", help="where outputs go (default ./kling-demo)"
    )
    demo.add_argument(
        "--time-scale",
        type=_positive_float,
        default=0.03,
        metavar="X",
        help="fake clock factor: 0.03 turns a 100 s generation into 3 s (default)",
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of the fake's random choices")
    demo.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="progress display (default: bars on a terminal, plain lines otherwise)",
    )

    batch = sub.add_parser(
        "batch",
        help="run a JSONL file of jobs (resumable)",
        description="Run every job of a JSONL file under the account's limits, download the "
        "outputs and write DIR/results.jsonl. Each line is "
        '{"endpoint": "videos/text2video", "key": "optional-id", ...request fields}. '
        "Every bad line is reported before anything is sent. Running the same command "
        "again resumes from the journal without creating anything twice. "
        "Ctrl-C once stops admitting new jobs and finishes those in flight; twice exits "
        "at once (re-run to resume). Exit status: 0 all succeeded, 1 some did not, "
        "2 bad input or configuration, 130 interrupted.",
    )
    batch.add_argument("jobs_file", metavar="JOBS.jsonl", help="one job per line ('-' for stdin)")
    batch.add_argument("--out", required=True, metavar="DIR", help="outputs and results.jsonl")
    batch.add_argument(
        "--journal", metavar="FILE", help="SQLite journal (default DIR/journal.sqlite)"
    )
    batch.add_argument(
        "--max-running",
        type=_positive_int,
        default=10,
        metavar="N",
        help="tasks running at once: your account's concurrency slots (default 10)",
    )
    batch.add_argument(
        "--max-rps",
        type=_positive_float,
        metavar="R",
        help="requests per second, all calls together (default: no limit)",
    )
    batch.add_argument(
        "--max-units",
        type=_positive_float,
        metavar="U",
        help="stop admitting jobs once this many units are spent or reserved",
    )
    batch.add_argument(
        "--no-download", action="store_true", help="record output URLs but do not download"
    )
    batch.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="progress display (default: bars on a terminal, plain lines otherwise)",
    )
    batch.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds between plain progress lines (default 5)",
    )
    _add_connection_arguments(batch)
    _add_poll_arguments(batch)

    create = sub.add_parser(
        "create",
        help="create one task and print it as JSON",
        description="Create a task. ENDPOINT is the family's path under /kling/ "
        "(videos/text2video, images/generations...) or its short name.",
    )
    create.add_argument("endpoint", metavar="ENDPOINT")
    create.add_argument(
        "--json",
        required=True,
        metavar="BODY|@FILE",
        help="the request body: inline JSON, @file.json, or @- for stdin",
    )
    create.add_argument("--external-task-id", metavar="ID", help="your id for the task")
    create.add_argument("--wait", action="store_true", help="wait until the task ends")
    _add_connection_arguments(create)
    _add_poll_arguments(create)

    for name, text in (
        ("get", "query one task and print it as JSON"),
        ("wait", "poll one task until it ends, then print it"),
        ("download", "save a task's outputs and print what was saved"),
    ):
        cmd = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        cmd.add_argument("endpoint", metavar="ENDPOINT")
        cmd.add_argument("task_id", metavar="TASK_ID")
        cmd.add_argument("--external", action="store_true", help="TASK_ID is your external_task_id")
        if name == "wait":
            cmd.add_argument(
                "--timeout", type=_positive_float, metavar="S", help="overall deadline, seconds"
            )
        if name == "download":
            cmd.add_argument("--out", required=True, metavar="DIR", help="where to save")
            cmd.add_argument("--wait", action="store_true", help="wait for the task first")
        _add_connection_arguments(cmd)
        if name in ("wait", "download"):
            _add_poll_arguments(cmd)

    fake = sub.add_parser(
        "fake-server",
        help="run the fake gateway standalone (for your own tests)",
        description="Serve the fake Kling gateway on loopback until interrupted.",
    )
    try:
        from .testing import add_fake_server_arguments
    except ImportError:  # pragma: no cover - the fake ships with the package
        pass
    else:
        add_fake_server_arguments(fake)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is *now*, so a live progress display that
    redirects it can print log lines above the bars instead of through them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        del value


@contextlib.contextmanager
def _logging_to_stderr(verbosity: int) -> Iterator[None]:
    """Show the SDK's warnings (more with -v) on stderr while the command runs."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("kling_async")
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


_ASYNC_COMMANDS: dict[str, Callable[[argparse.Namespace], Any]] = {
    "create": _cmd_create,
    "get": _cmd_get,
    "wait": _cmd_wait,
    "download": _cmd_download,
    "demo": _cmd_demo,
}


async def _dispatch(args: argparse.Namespace, *, handle_signals: bool) -> int:
    try:
        if args.command == "batch":
            return await _cmd_batch(args, handle_signals=handle_signals)
        code: int = await _ASYNC_COMMANDS[args.command](args)
        return code
    except ValidationError as exc:
        _report_problems(exc.problems, exc.endpoint or "request")
        return EXIT_BAD_INPUT
    except ConfigurationError as exc:
        _error(f"bad configuration: {exc}")
        return EXIT_BAD_INPUT
    except (TaskFailedError, WaitTimeoutError) as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KlingError as exc:
        _error(f"{type(exc).__name__}: {exc}")
        return EXIT_FAILED
    except KeyError as exc:  # endpoint_for on a bad name
        _error(str(exc.args[0]) if exc.args else "unknown endpoint")
        return EXIT_BAD_INPUT


async def amain(argv: Sequence[str]) -> int:
    """Run the command in the current event loop (for tests and embedding).

    Signal handling is left to the caller; ``fake-server`` is not available here.

    Args:
        argv: Arguments, without the program name.

    Returns:
        The exit status.
    """
    args = build_parser().parse_args(list(argv))
    if args.command == "fake-server":
        raise ValueError("fake-server runs its own event loop; use main()")
    return await _dispatch(args, handle_signals=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kling-async`` console script.

    Args:
        argv: Arguments, without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    with _logging_to_stderr(args.verbose):
        if args.command == "fake-server":
            from .testing import run_fake_server_from_args

            try:
                return run_fake_server_from_args(args)
            except KeyboardInterrupt:
                return EXIT_OK
        try:
            return asyncio.run(_dispatch(args, handle_signals=True))
        except KeyboardInterrupt:
            _error("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # Output piped into `head` or similar: stop quietly, as Unix tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_FAILED
