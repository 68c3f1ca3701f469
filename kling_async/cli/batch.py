"""``kling-async batch JOBS.jsonl --out DIR``: run (and resume) a file of jobs.

Every line is checked before anything is sent. The run writes ``DIR/results.jsonl``
(one line per job) and prints a summary that names every job that did not succeed.
:func:`run_batch` is the library function under the command; the demo uses it too.

Ctrl-C once stops admitting jobs, lets the creates already sent settle (so the
journal knows every task id), prints the summary and exits 130; the tasks keep
running on the server and the same command picks them up. Ctrl-C twice leaves at
once (the journal stays consistent: a create cut off mid-way is looked up by its
external id on the next run).

One output folder, one run: the journal is locked for the life of the run, so a
second ``kling-async batch`` on the same folder exits 2 at once, naming the
process that holds it. A journal that is empty, truncated or corrupt, or missing
while the folder holds results of an earlier run, is refused (exit 2) before
anything is sent: starting afresh would pay for every job again. ``--shard K/N``
runs the part of the file whose keys hash to K (see :mod:`._shard`), with its own
journal and results file in the same folder.

``--coordinate redis://...`` (or ``KLING_COORDINATE``) makes several processes, on
one host or many, share the account's slots through Redis: checked before anything
is sent (unreachable: one line naming the URL, password hidden, exit 2); lost
mid-run, admissions wait for it while created tasks are still followed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._config import ClientConfig
from .._endpoints import Endpoint
from .._errors import ConfigurationError, KlingError
from .._journal import JournalCorruptError, JournalLockedError, JournalMismatchError
from .._session import KlingSession
from ..batch import Batch, Event, EventKind, JobResult
from ..coordination import CoordinationError, SlotStore
from ._attempts import prepare_attempts
from ._common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_STATUS_HELP,
    HelpFormatter,
    error,
    positive_float,
    positive_int,
)
from ._jobs import Job, load_jobs
from ._progress import Mode, ProgressReporter
from ._results import BatchOutcome, print_batch_summary, write_results
from ._settings import (
    add_connection_arguments,
    add_coordination_arguments,
    add_poll_arguments,
    config_from_args,
    configuration_message,
    coordination_message,
    coordination_url,
    open_coordination_store,
    settings_problem,
)
from ._shard import Shard, parse_shard
from ._signals import Interrupts, handle_signals
from .report import write_run_report

__all__ = ["BatchRun", "add_parser", "exit_status", "run", "run_batch"]

_RESULT_STATES = {
    "succeed": "succeeded",
    "failed": "failed",
    "error": "error",
    "not_started": "not_started",
}
#: Settings errors that stop a batch whenever they come: no job can succeed.
_ALWAYS_FATAL = ("api_key", "endpoint_path")


@attrs.define(kw_only=True)
class BatchRun:
    """What :func:`run_batch` runs.

    Attributes:
        session: An open session.
        jobs: The jobs, in input order.
        reporter: The progress display (entered by :func:`run_batch`).
        batch_options: Keyword arguments of :meth:`KlingSession.batch`
            (``on_event`` is set by :func:`run_batch`).
        interrupts: Ctrl-C handling to wire up (``None``: leave signals alone).
    """

    session: KlingSession
    jobs: Sequence[Job]
    reporter: ProgressReporter
    batch_options: dict[str, Any] = attrs.field(factory=dict)
    interrupts: Interrupts | None = None


class _Flight:
    """Which jobs could still send a create: queued, and neither created nor ended."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.created = 0

    def on_event(self, event: Event) -> None:
        if event.kind is EventKind.QUEUED:
            self.waiting.add(event.key)
        elif event.kind is EventKind.CREATED:
            self.waiting.discard(event.key)
            self.created += 1
        elif event.kind in (EventKind.FAILED, EventKind.NOT_STARTED, EventKind.SUCCEEDED):
            self.waiting.discard(event.key)

    @property
    def settled(self) -> bool:
        return not self.waiting


class _Runner:
    """One run: the batch, its cancel scope, and the reactions to events and signals."""

    def __init__(self, run: BatchRun, outcome: BatchOutcome) -> None:
        self.run = run
        self.outcome = outcome
        self.flight = _Flight()
        self.scope = anyio.CancelScope()
        self.batch: Batch | None = None
        self.endpoints: dict[str, Endpoint] = {job.key: job.endpoint for job in run.jobs}

    def on_event(self, event: Event) -> None:
        self.run.reporter.on_event(event)
        self.flight.on_event(event)
        if event.error is not None and self.outcome.settings is None:
            problem = settings_problem(
                event.error,
                self.endpoints.get(event.key),
                backend=self.run.session.config.backend,
            )
            # A refused connection once tasks exist is the network, not the settings.
            if problem is not None and (
                problem.setting in _ALWAYS_FATAL or self.flight.created == 0
            ):
                self.outcome.settings = problem
                self.run.reporter.note(f"Stopping: {problem.message}")
                if self.batch is not None:
                    self.batch.stop_admitting("settings")
        self._leave_if_settled()

    def first_interrupt(self) -> None:
        self.outcome.stopped = self.outcome.interrupted = True
        self.run.reporter.note(
            "Stopping: no new jobs; waiting for the creates already sent. "
            "Ctrl-C again to leave now (then re-run to resume)."
        )
        if self.batch is not None:
            self.batch.stop_admitting("interrupted")
        self._leave_if_settled()

    def second_interrupt(self) -> None:
        self.outcome.interrupted = True
        self.run.reporter.note("Leaving now; the journal is consistent: re-run to resume.")
        self.scope.cancel()

    def _leave_if_settled(self) -> None:
        if self.outcome.stopped and self.batch is not None and self.flight.settled:
            self.scope.cancel()

    def record(self, result: JobResult) -> None:
        self.outcome.results[result.key] = result
        self.run.reporter.set_state(result.key, _RESULT_STATES.get(result.status, "error"))


async def run_batch(run: BatchRun) -> BatchOutcome:
    """Run jobs through the batch with progress, Ctrl-C handling and settings checks.

    Args:
        run: What to run.

    Returns:
        The results and figures; ``left_early`` when a Ctrl-C ended the run
        before every job did, ``settings`` when the gateway refused the settings.

    Raises:
        JournalMismatchError: A key is in the journal with a different request
            (raised before anything is sent).
    """
    journal = run.batch_options.get("journal")
    outcome = BatchOutcome(journal=Path(journal) if journal else None)
    runner = _Runner(run, outcome)
    if run.interrupts is not None:
        run.interrupts.on_first = runner.first_interrupt
        run.interrupts.on_second = runner.second_interrupt
    options = dict(run.batch_options, on_event=runner.on_event)
    mismatch: JournalMismatchError | None = None
    async with run.reporter:
        with runner.scope:
            async with run.session.batch(**options) as batch:
                runner.batch = batch
                try:
                    batch.submit_all([(job.key, job.request) for job in run.jobs])
                except JournalMismatchError as exc:
                    # Raised before anything was submitted: leave the (empty) block
                    # normally, then report it.
                    mismatch = exc
                if outcome.stopped:
                    batch.stop_admitting("interrupted")
                runner._leave_if_settled()
                async for result in batch:
                    runner.record(result)
        outcome.left_early = runner.scope.cancelled_caught
        if runner.batch is not None:
            outcome.summary = runner.batch.summary()
    if mismatch is not None:
        raise mismatch
    return outcome


def exit_status(outcome: BatchOutcome, records: Sequence[dict[str, Any]]) -> int:
    """The exit status of a batch run.

    Args:
        outcome: The run.
        records: Its ``results.jsonl`` records.

    Returns:
        130 when interrupted, 2 when the settings were refused, 0 when every job
        succeeded, 1 otherwise.
    """
    if outcome.interrupted or outcome.left_early:
        return EXIT_INTERRUPTED
    if outcome.settings is not None:
        return EXIT_BAD_INPUT
    if outcome.summary is not None and outcome.summary.halted is not None:
        # The batch itself stopped for a setting the events did not name.
        return EXIT_BAD_INPUT
    return EXIT_OK if all(r["status"] == "succeed" for r in records) else EXIT_FAILED


@attrs.frozen(kw_only=True)
class _Plan:
    source: str
    jobs: list[Job]
    config: ClientConfig
    out: Path
    journal: Path
    results: Path
    shard: Shard | None = None

    @property
    def expect_existing(self) -> bool:
        """Results of an earlier run are here, so the journal must be too."""
        return self.results.exists()


def _select_shard(jobs: list[Job], shard: Shard | None) -> list[Job]:
    """The jobs this process runs: all, or those whose key hashes to its shard."""
    if shard is None:
        return jobs
    return shard.select(jobs, [job.key for job in jobs])


def _plan(args: argparse.Namespace) -> _Plan | int:
    """Read and check everything before the event loop sends anything."""
    source = "<stdin>" if args.jobs_file == "-" else args.jobs_file
    try:
        if args.jobs_file == "-":
            lines = sys.stdin.read().splitlines()
        else:
            lines = Path(args.jobs_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        error(f"cannot read {source}: {exc}")
        return EXIT_BAD_INPUT
    jobs, problems = load_jobs(lines)
    if problems:
        for problem in problems:
            sys.stderr.write(problem.format(source) + "\n")
        bad = len({p.line for p in problems})
        error(f"{bad} bad line(s) in {source}; nothing was sent")
        return EXIT_BAD_INPUT
    if not jobs:
        error(f"{source} holds no jobs")
        return EXIT_BAD_INPUT
    shard: Shard | None = args.shard
    jobs = _select_shard(jobs, shard)
    for job in jobs:
        for note in job.notes:
            sys.stderr.write("warning: " + note.format(source) + "\n")
    try:
        config = config_from_args(args)
    except ConfigurationError as exc:
        error(configuration_message(exc))
        return EXIT_BAD_INPUT
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error(f"cannot create {out}: {exc}")
        return EXIT_BAD_INPUT
    default_journal = shard.journal_name if shard is not None else "journal.sqlite"
    journal = Path(args.journal) if args.journal else out / default_journal
    results = out / (shard.results_name if shard is not None else "results.jsonl")
    return _Plan(
        source=source,
        jobs=jobs,
        config=config,
        out=out,
        journal=journal,
        results=results,
        shard=shard,
    )


def _journal_message(plan: _Plan, exc: JournalLockedError | JournalCorruptError) -> str:
    """One line on a journal that cannot be used, with the way forward."""
    if isinstance(exc, JournalCorruptError) and not plan.journal.exists():
        return (
            f"journal {plan.journal} is missing, but {plan.results} holds the results of an "
            "earlier run (was the journal deleted or moved?). Nothing was sent. Restore the "
            f"journal, or move {plan.results.name} aside to start a new batch (every job "
            "would then be created again)"
        )
    return str(exc)


def _start_attempts(args: argparse.Namespace, plan: _Plan) -> int | None:
    """Refuse changed lines, or start the attempts --retry-failed / --rerun-changed ask for."""
    try:
        attempts = prepare_attempts(
            plan.journal,
            plan.jobs,
            retry_failed=args.retry_failed,
            rerun_changed=args.rerun_changed,
            expect_existing=plan.expect_existing,
        )
    except (JournalLockedError, JournalCorruptError) as exc:
        error(_journal_message(plan, exc))
        return EXIT_BAD_INPUT
    except KlingError as exc:
        error(f"cannot use the journal {plan.journal}: {exc}")
        return EXIT_BAD_INPUT
    if attempts.refused:
        for changed in attempts.refused:
            sys.stderr.write(f"{plan.source}:{changed.line}: key: {changed.message()}\n")
        error(
            f"{len(attempts.refused)} job(s) changed since the journal recorded them; "
            "nothing was sent"
        )
        return EXIT_BAD_INPUT
    for flag, keys in (("--retry-failed", attempts.retried), ("--rerun-changed", attempts.rerun)):
        if keys:
            error(f"{flag}: {len(keys)} job(s) run again under new external ids")
    return None


async def run(args: argparse.Namespace, *, handle_interrupts: bool = False) -> int:
    """Run the ``batch`` command.

    Args:
        args: Parsed arguments.
        handle_interrupts: Route Ctrl-C and SIGTERM to the graceful stop.

    Returns:
        The exit status.
    """
    plan = _plan(args)
    if isinstance(plan, int):
        return plan
    if not plan.jobs:
        return _empty_shard(plan)
    url = coordination_url(args)
    store: SlotStore | None = None
    if url is not None:
        try:
            store = await open_coordination_store(
                url, config=plan.config, max_running=args.max_running, lease_ttl=args.lease_ttl
            )
        except (CoordinationError, ConfigurationError) as exc:
            error(coordination_message(url, exc))
            return EXIT_BAD_INPUT
    try:
        return await _run_plan(args, plan, store, handle_interrupts=handle_interrupts)
    finally:
        if store is not None:
            await store.aclose()


async def _run_plan(
    args: argparse.Namespace, plan: _Plan, store: SlotStore | None, *, handle_interrupts: bool
) -> int:
    """Run a checked plan (``store``: the open coordination store, if any)."""
    refused = _start_attempts(args, plan)
    if refused is not None:
        return refused
    mode: Mode = args.progress
    reporter = ProgressReporter(
        len(plan.jobs),
        title="batch" if plan.shard is None else f"batch {plan.shard}",
        mode=mode,
        interval=args.progress_interval,
        downloads=not args.no_download,
        families={job.key: job.endpoint.name for job in plan.jobs},
        slots=args.max_running,
    )
    options: dict[str, Any] = {
        "max_running": args.max_running,
        "max_requests_per_second": args.max_rps,
        "journal": plan.journal,
        "download_dir": None if args.no_download else plan.out,
        "max_units": args.max_units,
        "coordinate": store,
    }
    interrupts = Interrupts()
    with handle_signals(interrupts, enabled=handle_interrupts):
        async with KlingSession(config=plan.config) as session:
            work = BatchRun(
                session=session,
                jobs=plan.jobs,
                reporter=reporter,
                batch_options=options,
                interrupts=interrupts,
            )
            try:
                outcome = await run_batch(work)
            except JournalMismatchError as exc:
                line = next((j.line for j in plan.jobs if j.key == exc.key), 0)
                sys.stderr.write(f"{plan.source}:{line}: key: {exc}\n")
                error(f"the journal {plan.journal} was written for other jobs; nothing was sent")
                return EXIT_BAD_INPUT
            except (JournalLockedError, JournalCorruptError) as exc:
                # Another run took the journal (or damaged it) since the check above.
                error(_journal_message(plan, exc))
                return EXIT_BAD_INPUT
        results = plan.results
        records = write_results(results, plan.jobs, outcome)
        extra = [("Results", str(results)), ("Journal", str(plan.journal))]
        page = None if args.no_report else write_run_report(plan.out)
        if page is not None:
            extra.append(("Report", str(page)))
        title = "kling-async batch" if plan.shard is None else f"kling-async batch {plan.shard}"
        print_batch_summary(outcome, records, title=title, extra=extra, details=results)
    if outcome.settings is not None:
        error(outcome.settings.message)
    if outcome.interrupted or outcome.left_early:
        error("interrupted; run the same command again to resume")
    return exit_status(outcome, records)


def _empty_shard(plan: _Plan) -> int:
    """A shard that owns no line of the file: an empty results file, nothing sent."""
    plan.results.write_text("", encoding="utf-8")
    error(f"shard {plan.shard}: no job of {plan.source} falls in this shard; nothing to do")
    return EXIT_OK


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``batch`` command.

    Args:
        sub: The subparsers object of the main parser.

    Returns:
        The command's parser.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="run a JSONL file of jobs (resumable)",
        formatter_class=HelpFormatter,
        description="Run every job of a JSONL file under the account's limits, download the "
        "outputs and write DIR/results.jsonl (one line per job: key, status, task id, "
        "external id, files with size and sha256, units, error, times) and "
        "DIR/report.html (a gallery of every job).\n\n"
        "Each line is "
        '{"endpoint": "videos/text2video", "key": "optional-id", ...request fields}. '
        "Every bad line is reported before anything is sent. Running the same command "
        "again resumes from the journal without creating anything twice; jobs not started "
        "run then, --retry-failed runs failed ones again, and a changed line is refused "
        "unless --rerun-changed.\n\n"
        "Ctrl-C once stops admitting new jobs, waits for the creates already sent, prints "
        "the summary and exits 130 (tasks keep running on the server; re-run to collect "
        "them). Twice: leave at once.",
        epilog=EXIT_STATUS_HELP,
    )
    parser.add_argument("jobs_file", metavar="JOBS.jsonl", help="one job per line ('-': stdin)")
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="where outputs, results.jsonl and the journal go",
    )
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="SQLite journal (default: DIR/journal.sqlite, or DIR/journal-K-of-N.sqlite "
        "with --shard)",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="run only part K of N: the jobs whose key hashes (sha256 mod N) to K, with "
        "their own journal and DIR/results-K-of-N.jsonl, so N processes or hosts can share "
        "one jobs file and one DIR; `kling-async report DIR` merges the parts "
        "(default: run every job)",
    )
    parser.add_argument(
        "--max-running",
        type=positive_int,
        default=10,
        metavar="N",
        help="tasks running at once: your account's concurrency slots (default: %(default)s)",
    )
    parser.add_argument(
        "--max-rps",
        type=positive_float,
        metavar="R",
        help="requests per second, all calls together (default: no limit)",
    )
    parser.add_argument(
        "--max-units",
        type=positive_float,
        metavar="U",
        help="stop admitting jobs once this many units are spent or reserved (default: no budget)",
    )
    parser.add_argument(
        "--no-download",
        action="store_true",
        help="record the output URLs but do not download (default: download)",
    )
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="run jobs that failed or ended in error again, each under a new external id; "
        "the journal keeps every attempt (default: keep their recorded results)",
    )
    parser.add_argument(
        "--rerun-changed",
        action="store_true",
        help="run jobs whose line changed since they ran anew, under a new external id "
        "(default: refuse them, naming the fields that changed)",
    )
    parser.add_argument(
        "--no-report",
        action="store_true",
        help="do not write DIR/report.html at the end (default: write it)",
    )
    parser.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "off"),
        default="auto",
        help="progress display: auto is bars on a terminal, plain lines otherwise "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--progress-interval",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds between plain progress lines (default: %(default)s)",
    )
    add_connection_arguments(parser)
    add_coordination_arguments(parser)
    add_poll_arguments(parser)
    return parser
