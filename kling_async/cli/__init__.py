"""The ``kling-async`` command (also ``python -m kling_async``).

Commands, one module each::

    kling-async demo [--jobs N] [--out DIR]          a real batch against the embedded fake
    kling-async batch JOBS.jsonl --out DIR [...]     run (and resume) a JSONL file of jobs
    kling-async create ENDPOINT --json BODY|@FILE    create one task, print it as JSON
    kling-async get ENDPOINT TASK_ID [--external]    query one task
    kling-async wait ENDPOINT TASK_ID [--external]   poll one task until it ends
    kling-async download ENDPOINT TASK_ID --out DIR  save a task's outputs
    kling-async report OUT                           write OUT/report.html (merges shards)
    kling-async fake-server [--port N] [...]         run the fake gateway standalone

Shared pieces: ``_common`` (exit codes, messages, help layout, argument types),
``_settings`` (connection and poll flags, ``--time-scale``, settings errors in
words), ``_jobs`` (JSON bodies to checked requests), ``_results`` (results.jsonl
and the summary), ``_attempts`` (``--retry-failed``, ``--rerun-changed``),
``_shard`` (``--shard K/N``), ``_progress`` and ``_eta`` (the live display),
``_signals`` (Ctrl-C). The demo runs the batch command's :func:`~kling_async.cli.batch.run_batch`;
nothing in the package imports the demo but the dispatcher.

Configuration comes from ``--api-key``, ``--endpoint-path``, ``--base-url`` and
``--turbo-base-url`` or from ``KLING_API_KEY``, ``KLING_ENDPOINT_PATH``,
``KLING_BASE_URL`` and ``KLING_TURBO_BASE_URL``. The key is never printed.

Exit status:

* 0: every job (or the one task) succeeded;
* 1: some jobs failed or ended in error, or the task failed (an API error too);
* 2: usage, input, settings (a refused key, an unknown endpoint path, a base URL
  that is not the gateway) or journal problem; nothing more was sent;
* 130: interrupted (Ctrl-C or SIGTERM); run the same command again to resume.
"""

from __future__ import annotations

from ._common import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from ._main import amain, build_parser, main

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "amain",
    "build_parser",
    "main",
]
