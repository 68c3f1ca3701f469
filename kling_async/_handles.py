"""A paid generation whose ids are known before anything is awaited.

``family.submit(request)`` validates the request and chooses its external id at
once, and returns a :class:`TaskHandle`. Store ``handle.external_task_id`` (a
database row, a log line) *before* awaiting: if the caller is cancelled, crashes
or times out later, the task can still be found with
``session.get(external_task_id=...)``, from any process.

Awaiting the handle does the work in the awaiting task (structured: no hidden
background task): take a concurrency slot, create, report the task id
(``on_created``), wait until the task ends. Several awaiters share one run; a run
that was cancelled can be awaited again and resumes without paying twice (a create
already sent is looked up by its external id, never blindly re-sent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any

import anyio

from ._create import Prepared
from ._task import Task

__all__ = ["TaskHandle"]

#: Drives a handle to its terminal task (supplied by the session).
Driver = Callable[["TaskHandle"], Awaitable[Task]]


class TaskHandle:
    """A generation in flight: ``external_task_id`` now, ``task_id`` once created.

    Await it (``task = await handle``) to run it to the end; see the module notes.
    Obtained from ``session.submit`` or ``family.submit``, never built by hand.

    Attributes:
        endpoint: Name of the endpoint family.
        external_task_id: The external id the task is created with (``None`` for an
            endpoint that takes none).
        task: The latest state seen (``None`` before creation).
        create_sent: Whether a create request for it was ever sent (then it may exist
            even if ``task`` is ``None``).
    """

    def __init__(self, prepared: Prepared, driver: Driver) -> None:
        self._prepared = prepared
        self._driver = driver
        self.endpoint: str = prepared.endpoint.name
        self.external_task_id: str | None = prepared.external_task_id
        self.task: Task | None = None
        self.create_sent = False
        self._done = False
        self._driving = False
        self._result: Task | None = None
        self._error: BaseException | None = None
        self._progress: anyio.Event | None = None

    def __repr__(self) -> str:
        state = "done" if self._done else "created" if self.task else "pending"
        return (
            f"TaskHandle(endpoint={self.endpoint!r}, external_task_id={self.external_task_id!r}, "
            f"task_id={self.task_id!r}, {state})"
        )

    @property
    def prepared(self) -> Prepared:
        """The validated create this handle sends."""
        return self._prepared

    @property
    def task_id(self) -> str | None:
        """The gateway's task id, once created."""
        return self.task.id if self.task is not None else None

    @property
    def done(self) -> bool:
        """Whether the run finished (with a terminal task or an error)."""
        return self._done

    def _changed(self) -> anyio.Event:
        if self._progress is None:
            self._progress = anyio.Event()
        return self._progress

    def _notify(self) -> None:
        if self._progress is not None:
            self._progress.set()
            self._progress = None

    def set_task(self, task: Task) -> None:
        """Record the latest state (the session calls this; the first call marks creation).

        Args:
            task: The task as last seen.
        """
        self.task = task
        self._notify()

    async def wait_created(self) -> Task:
        """Wait until the task exists (while the handle is awaited elsewhere).

        Returns:
            The task as created.

        Raises:
            BaseException: Whatever ended the run before the task was created.
        """
        while self.task is None:
            if self._done:
                raise self._error or RuntimeError("the handle finished without a task")
            await self._changed().wait()
        return self.task

    def __await__(self) -> Generator[Any, None, Task]:
        return self._run().__await__()

    async def _run(self) -> Task:
        while not self._done:
            if self._driving:
                await self._changed().wait()  # another awaiter drives; share its outcome
                continue
            return await self._drive()
        return self._outcome()

    async def _drive(self) -> Task:
        self._driving = True
        try:
            result = await self._driver(self)
        except anyio.get_cancelled_exc_class():
            raise  # not an outcome: a later await resumes the run
        except BaseException as exc:
            self._error = exc
            self._done = True
            raise
        else:
            self._result = result
            self._done = True
            return result
        finally:
            self._driving = False
            self._notify()

    def _outcome(self) -> Task:
        if self._error is not None:
            raise self._error
        if self._result is None:  # pragma: no cover - _done implies one of them
            raise RuntimeError("the handle has no result")
        return self._result
