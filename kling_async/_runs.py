"""Paid calls of a session: a slot, a create, and (for runs) the wait.

Every paid call takes its slots from the session's :class:`~kling_async._slots.SlotPool`
before anything is sent, bounded by the caller's deadline, and ties them to the
task once it exists. What happens to the slots when the call fails depends on what
may exist: a typed refusal means nothing was created (slots given back); an
unknown outcome, or a cancellation after a create left, may have left a running
task (slots kept for it, until observed ending or for the pool's TTL).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from typing import Any

import anyio

from ._config import ClientConfig, PollPolicy, RetryPolicy
from ._create import Prepared, RefusedCreates, create_task, prepare
from ._errors import (
    ConcurrencyLimitedError,
    CreateOutcomeUnknownError,
    KlingError,
    SlotTimeoutError,
    TaskFailedError,
    WaitTimeoutError,
)
from ._handles import TaskHandle
from ._models import Request
from ._ratelimit import RateLimiter
from ._reads import Reader
from ._send import Sender
from ._slots import SlotLease, SlotPool
from ._task import Task

__all__ = ["PaidCalls"]


class PaidCalls:
    """Creates and runs for a session.

    Args:
        sender: The send chain.
        reader: Task queries (lookups, polling).
        slots: The slot pool.
        config: The session's configuration.
    """

    def __init__(
        self, sender: Sender, reader: Reader, slots: SlotPool, config: ClientConfig
    ) -> None:
        self.sender = sender
        self.reader = reader
        self.slots = slots
        self.config = config
        #: Creates refused for a slot, to be sent again as built (see RefusedCreates).
        self.refused = RefusedCreates()

    def __repr__(self) -> str:
        return f"PaidCalls({self.slots!r})"

    async def take_slot(self, prepared: Prepared, deadline: float) -> SlotLease:
        """Take the slots a create needs, waiting no later than ``deadline``.

        Args:
            prepared: The create.
            deadline: ``time.monotonic()`` limit.

        Returns:
            The lease.

        Raises:
            SlotTimeoutError: The pool stayed full until the deadline.
        """
        lease = self.slots.try_acquire(prepared.slots)
        if lease is not None:
            return lease  # free now: no deadline to set up
        remaining = max(0.0, deadline - time.monotonic())
        with anyio.move_on_after(remaining):
            return await self.slots.acquire(prepared.slots)
        raise SlotTimeoutError(
            f"no concurrency slot freed for {prepared.endpoint.name} in {remaining:g} s "
            f"(max_running={self.slots.limit}); nothing was created",
            timeout=remaining,
            endpoint=prepared.endpoint.name,
        )

    async def create_request(
        self,
        request: Request,
        *,
        external_task_id: str | None,
        extra_body: Mapping[str, Any] | None,
        deadline: float,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        hold_slot: bool = True,
    ) -> Task:
        """Prepare a request (or take its create kept after a 1303) and create the task.

        Args:
            request: The request model.
            external_task_id: The caller's id.
            extra_body: Fields merged into the body.
            deadline: ``time.monotonic()`` limit of every wait.
            limiter: A caller's request-rate limiter.
            retry: Retry policy (default: the session's).
            hold_slot: Take a slot from the pool.

        Returns:
            The task as created.

        Raises:
            ConcurrencyLimitedError: Refused for want of a slot and ``retry`` does not
                wait; the create is kept for the same request and id (nothing was
                created).
        """
        prepared = self.refused.take(request, external_task_id, extra_body)
        if prepared is None:
            prepared = prepare(
                request,
                external_task_id=external_task_id,
                validate=self.config.validate,
                extra_body=extra_body,
            )
        try:
            return await self.create(
                prepared, deadline=deadline, limiter=limiter, retry=retry, hold_slot=hold_slot
            )
        except ConcurrencyLimitedError:
            # Nothing was created: the same create, sent again, goes as it was built.
            self.refused.keep(request, external_task_id, extra_body, prepared)
            raise

    async def create(
        self,
        prepared: Prepared,
        *,
        deadline: float,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        hold_slot: bool = True,
        handle: TaskHandle | None = None,
    ) -> Task:
        """Take a slot (unless told not to) and create the task.

        Args:
            prepared: The create.
            deadline: ``time.monotonic()`` limit of every wait.
            limiter: A caller's request-rate limiter.
            retry: Retry policy (default: the session's).
            hold_slot: Take a slot from the pool.
            handle: The handle this create runs for (records that a create left).

        Returns:
            The task as created.

        Raises:
            ConfigurationError: The family's route takes an API key only and
                none is set (checked before a slot is taken; nothing is sent).
        """
        endpoint = prepared.endpoint
        self.reader.check_auth(endpoint)
        route = self.reader.route(endpoint)
        lease = await self.take_slot(prepared, deadline) if hold_slot else None
        sent = [handle is not None and handle.create_sent]

        def on_send() -> None:
            sent[0] = True
            if handle is not None:
                handle.create_sent = True

        try:
            task = await create_task(
                self.sender,
                prepared,
                url=self.reader.url(endpoint),
                parse=lambda answer, eid: self.reader.task_from(endpoint, answer, eid),
                lookup=lambda eid: self.reader.get_on(endpoint, None, eid, limiter),
                slots=self.slots,
                policy=retry or self.config.retry,
                limiter=limiter,
                deadline=deadline,
                sent_before=sent[0],
                on_send=on_send,
                label=route.path,
                api_key_only=route.api_key_only,
            )
        except BaseException as exc:
            if lease is not None:
                refused = isinstance(exc, KlingError) and not isinstance(
                    exc, CreateOutcomeUnknownError
                )
                if sent[0] and not refused:
                    self.slots.bind(lease, task_id=None, external_task_id=prepared.external_task_id)
                else:
                    self.slots.release(lease)
            raise
        if lease is not None:
            self.slots.bind(lease, task_id=task.id, external_task_id=task.external_id)
            if task.is_terminal:
                self.slots.release(lease)
        return task

    def handle(
        self,
        prepared: Prepared,
        *,
        poll: PollPolicy,
        budget: float | None,
        raise_on_failure: bool,
        on_created: Any,
    ) -> TaskHandle:
        """A handle that, awaited, runs ``prepared`` with these settings (see :meth:`drive`).

        Args:
            prepared: The create.
            poll: Poll policy.
            budget: Seconds for the whole run.
            raise_on_failure: Raise when the task failed.
            on_created: Called with the created task, or ``None``.

        Returns:
            The handle.
        """

        async def drive(handle: TaskHandle) -> Task:
            return await self.drive(
                handle,
                poll=poll,
                budget=budget,
                raise_on_failure=raise_on_failure,
                on_created=on_created,
            )

        return TaskHandle(prepared, drive)

    async def drive(
        self,
        handle: TaskHandle,
        *,
        poll: PollPolicy,
        budget: float | None,
        raise_on_failure: bool,
        on_created: Any,
    ) -> Task:
        """Run a handle: create (unless it exists already), report it, wait.

        Args:
            handle: The handle.
            poll: Poll policy.
            budget: Seconds for the whole run (default ``poll.timeout``).
            raise_on_failure: Raise when the task failed.
            on_created: Called with the created task (awaited when it returns an
                awaitable), or ``None``.

        Returns:
            The terminal task.
        """
        deadline = time.monotonic() + (budget if budget is not None else poll.timeout)
        task = handle.task
        if task is None:
            task = await self.create(handle.prepared, deadline=deadline, handle=handle)
            handle.set_task(task)
            if on_created is not None:
                outcome = on_created(task)
                if inspect.isawaitable(outcome):
                    await outcome
        try:
            task = await self.reader.wait(
                task,
                poll,
                budget=max(0.0, deadline - time.monotonic()),
                raise_on_failure=raise_on_failure,
                limiter=None,
            )
        except (TaskFailedError, WaitTimeoutError) as exc:
            if isinstance(exc.task, Task):
                handle.set_task(exc.task)
            raise
        handle.set_task(task)
        return task
