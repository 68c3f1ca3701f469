"""A single create that never pays twice: prepare, send, and reconcile unclear outcomes.

Every failure is judged by :func:`~kling_async._classify.classify`:

* ``RETRY`` / ``RATE_LIMITED`` (nothing left, or refused): pause, send again.
* ``NO_SLOT`` (1303, nothing created): wait until a slot of this session frees or a
  backoff passes, send again; bounded by the caller's deadline, not by the retry
  budget (refusals cost nothing). ``max_attempts=1`` (no retries at all) and
  ``retry_concurrency_limited=False`` raise it at once.
* ``UNCLEAR`` (timeout, dropped, 5xx, hostile answer): the task may exist. Look it
  up by its external id for ``reconcile_grace``; if still absent, send again *with
  the same external id* (a landed first attempt makes the gateway answer 1201).
  Where the API documents no external id, nothing is sent again: without an id
  (the SDK adds none there) :class:`CreateOutcomeUnknownError` comes at once, with
  the caller's own id only after the lookups.
* ``EXISTS`` (1200/1201 after an attempt that may have landed): the task exists and
  is paid; look it up with backoff until ``reconcile_deadline`` (lookups lag creates
  on real gateways) and adopt it.
* anything else (refused, halts): raise.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import anyio
import attrs

from ._backoff import backoff_delay, is_testing
from ._classify import Verdict, classify
from ._config import RetryPolicy
from ._converter import to_payload
from ._endpoints import Endpoint, body_with_external_id, endpoint_for_request, external_id_of
from ._errors import (
    ConcurrencyLimitedError,
    CreateOutcomeUnknownError,
    KlingError,
    SlotTimeoutError,
)
from ._models import Request
from ._ratelimit import RateLimiter
from ._send import Call, Sender
from ._slots import SlotPool
from ._task import Task
from ._validation import build_payload, merged_body

__all__ = [
    "Prepared",
    "RefusedCreates",
    "create_task",
    "new_external_task_id",
    "prepare",
    "reconcile_delays",
]

logger = logging.getLogger("kling_async")

#: Looks a task up by external id; raises the lookup's error.
Lookup = Callable[[str], Awaitable[Task]]
#: Builds a Task from a successful create answer.
ParseCreated = Callable[[Any, str | None], Task]

_KEEP_LOOKING = (Verdict.NOT_FOUND, Verdict.RETRY, Verdict.RATE_LIMITED, Verdict.NO_SLOT)


def new_external_task_id() -> str:
    """A fresh external task id the SDK uses when the caller gave none.

    Returns:
        ``ka-`` followed by 32 hex digits: 128 bits from the system's random
        source (fresh in every process, forked ones included).
    """
    return f"ka-{os.urandom(16).hex()}"


def accepts_external_id(endpoint: Endpoint) -> bool:
    """Whether the endpoint's seed documents ``external_task_id`` (default: yes)."""
    return bool(getattr(endpoint, "accepts_external_id", True))


@attrs.frozen(kw_only=True)
class Prepared:
    """A validated create, ready to send (no I/O was done to build it).

    Attributes:
        endpoint: Where it goes.
        body: The JSON bytes (never shown in ``repr``).
        external_task_id: The id it carries: the caller's, or one the SDK chose
            where the API documents it; ``None`` otherwise.
        resend_safe: Whether the API documents the id, so that a create sent again
            with it is refused as a duplicate (1201) rather than paid twice.
        slots: Concurrency slots the task will hold.
    """

    endpoint: Endpoint
    body: bytes = attrs.field(repr=False)
    external_task_id: str | None
    resend_safe: bool = True
    slots: int = 1


def prepare(
    request: Request,
    *,
    external_task_id: str | None,
    validate: bool,
    extra_body: Mapping[str, Any] | None = None,
) -> Prepared:
    """Choose the external id, build the body and validate it.

    The SDK adds an id of its own only where the API documents ``external_task_id``;
    a caller's own id is sent as written everywhere (and used for lookups).

    Args:
        request: A task-creating request model.
        external_task_id: The caller's id (wins over the request's own).
        validate: Whether to check documented limits (rules the SDK only infers
            warn with :class:`~kling_async.KlingWarning`; the request is still sent).
        extra_body: Fields merged into the body and sent even when the SDK does not
            know them (known ones are still checked).

    Returns:
        The prepared create.

    Raises:
        TypeError: ``request`` is not a task-creating request model.
        TypeError: An external id was given for a request model without one.
        ValidationError: The body breaks a documented limit.
    """
    endpoint = endpoint_for_request(request)
    if not endpoint.is_task:
        raise TypeError(f"{endpoint.name} creates no task; use identify_face()")
    documented = accepts_external_id(endpoint)
    # An empty id means "none" (the seeds send "" in their examples): choose one.
    eid = external_task_id or external_id_of(request) or None
    if eid is None and documented:
        eid = new_external_task_id()
    payload = to_payload(request)
    if eid is not None and eid != external_id_of(request):
        # Only where the caller gave one, or documented.
        payload = body_with_external_id(request, payload, eid)
    payload = merged_body(payload, extra_body)
    if validate:
        # One strict path for every entry point: refuses with every problem at once,
        # warns for inferred rules, and never changes a value.
        payload, _ = build_payload(endpoint, payload, allow_unknown=extra_body is not None)
    return Prepared(
        endpoint=endpoint,
        body=json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(),
        external_task_id=eid,
        resend_safe=documented,
        slots=endpoint.slots(payload),
    )


class RefusedCreates:
    """Creates refused for want of a slot (1303), kept to be sent again as they were built.

    A 1303 creates nothing, and a caller that retries on its own (the batch sends each
    create once and admits it again later) sends the same create again: the same
    request object with the same external id. Keeping the prepared create spares
    building and validating its body anew (about a third of a create's own CPU). Only
    creates with the caller's own external id are kept: without one, each call is a
    new task with an id of its own. A request whose lists were changed in place since
    (a frozen model's ``multi_prompt`` is still a list) is built anew: the request's
    body, as written, is compared with the one kept. The oldest go first past
    ``max_items`` creates or ``max_bytes`` of bodies.

    Args:
        max_items: Creates kept at most.
        max_bytes: Body bytes kept at most.
    """

    def __init__(self, *, max_items: int = 1024, max_bytes: int = 16 << 20) -> None:
        # id(request) -> (request, its body as written then, the create built from it)
        self._kept: OrderedDict[int, tuple[Request, str, Prepared]] = OrderedDict()
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._kept)

    def take(
        self,
        request: Request,
        external_task_id: str | None,
        extra_body: Mapping[str, Any] | None,
    ) -> Prepared | None:
        """The create kept for this very request and id, if any (it is no longer kept).

        Args:
            request: The request model (the same object, not an equal one).
            external_task_id: The caller's id.
            extra_body: The caller's extra fields (a create with them is never kept).

        Returns:
            The prepared create, or ``None``.
        """
        if not external_task_id or extra_body is not None:
            return None
        entry = self._kept.pop(id(request), None)
        if entry is None:
            return None
        kept, written, prepared = entry
        self._bytes -= len(prepared.body)
        if kept is not request or prepared.external_task_id != external_task_id:
            return None
        return prepared if _written(request) == written else None

    def keep(
        self,
        request: Request,
        external_task_id: str | None,
        extra_body: Mapping[str, Any] | None,
        prepared: Prepared,
    ) -> None:
        """Keep a create the gateway refused for want of a slot.

        Args:
            request: The request model it was built from.
            external_task_id: The caller's id.
            extra_body: The caller's extra fields.
            prepared: The create as sent.
        """
        if (
            not external_task_id
            or extra_body is not None
            or prepared.external_task_id != external_task_id
        ):
            return
        old = self._kept.pop(id(request), None)
        if old is not None:
            self._bytes -= len(old[2].body)
        written = _written(request)
        if written is None:
            return
        self._kept[id(request)] = (request, written, prepared)
        self._bytes += len(prepared.body)
        while self._kept and (len(self._kept) > self._max_items or self._bytes > self._max_bytes):
            _, (_, _, dropped) = self._kept.popitem(last=False)
            self._bytes -= len(dropped.body)


def _written(request: Request) -> str | None:
    """The request's body as written now, as text (``None`` when it is not JSON)."""
    try:
        return json.dumps(to_payload(request), allow_nan=False)
    except (TypeError, ValueError):
        return None


def reconcile_delays(policy: RetryPolicy, window: float) -> Iterator[float]:
    """The pauses between lookups of an unclear create, covering ``window`` seconds.

    The first lookup is immediate; then pauses grow from ``reconcile_interval`` by
    1.5 each, capped at ``max_delay`` (at least the interval). The number of
    lookups is fixed by the schedule, so it stays finite when delays are zeroed.

    Args:
        policy: The retry policy.
        window: Seconds the lookups should cover.

    Yields:
        Seconds to pause before each further lookup.
    """
    cap = max(policy.max_delay, policy.reconcile_interval)
    delay, covered = policy.reconcile_interval, 0.0
    while covered < window:
        yield 0.0 if is_testing() else delay
        covered += delay
        delay = min(cap, delay * 1.5)


class _CreateRun:
    """The state of one create call (attempts, what may already exist)."""

    def __init__(
        self,
        sender: Sender,
        prepared: Prepared,
        call: Call,
        *,
        policy: RetryPolicy,
        limiter: RateLimiter | None,
        deadline: float,
        slots: SlotPool,
        lookup: Lookup,
        sent_before: bool,
        on_send: Callable[[], None] | None,
    ) -> None:
        self.sender = sender
        self.prepared = prepared
        self.call = call
        self.policy = policy
        self.limiter = limiter
        self.deadline = deadline
        self.slots = slots
        self.lookup = lookup
        self.sent = 0
        self.sent_before = sent_before
        self.on_send = on_send

    def _unknown(self, why: str, cause: BaseException) -> CreateOutcomeUnknownError:
        eid = self.prepared.external_task_id
        name = self.prepared.endpoint.name
        later = f"look it up by external_task_id {eid!r}" if eid else "check the gateway's tasks"
        return CreateOutcomeUnknownError(
            f"create on {name} may have landed ({type(cause).__name__}) and {why}; "
            f"{later} before creating it again",
            external_task_id=eid,
            endpoint=name,
            cause_type=type(cause).__name__,
            attempts=self.sent,
        )

    async def reconcile(self, eid: str, window: float, cause: KlingError) -> Task | None:
        """Look the task up by external id over ``window`` seconds (cut by the deadline)."""
        logger.warning(
            "create on %s failed unclearly (%s); looking the task up by its external id",
            self.prepared.endpoint.name,
            type(cause).__name__,
        )
        delays = reconcile_delays(self.policy, window)
        while True:
            error: KlingError | None = None
            try:
                task = await self.lookup(eid)
            except KlingError as exc:
                error = exc
            else:
                logger.info("found task %s by its external id; not creating it again", task.id)
                return task
            if classify(error, phase="read") not in _KEEP_LOOKING:
                raise self._unknown(
                    f"the lookup by external_task_id failed too ({type(error).__name__})", cause
                ) from error
            delay = next(delays, None)
            if delay is None:
                return None
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                return None
            await anyio.sleep(min(delay, remaining))

    def _give_up(self, error: KlingError) -> KlingError:
        """The error to raise when stopping: an earlier attempt may have landed."""
        if not self.sent_before:
            return error
        unknown = self._unknown("the create could not be confirmed before giving up", error)
        unknown.__cause__ = error
        return unknown

    async def no_slot(self, error: ConcurrencyLimitedError, rounds: int) -> None:
        """After a 1303: wait for one of our slots to free, or a backoff, then go on."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            if self.sent_before:
                raise self._give_up(error)
            raise SlotTimeoutError(
                f"no concurrency slot freed for {self.prepared.endpoint.name} before the "
                "deadline; nothing was created",
                timeout=0.0,
                endpoint=self.prepared.endpoint.name,
            ) from error
        delay = backoff_delay(
            rounds,
            initial=self.policy.initial_delay,
            maximum=self.policy.max_delay,
            multiplier=self.policy.multiplier,
        )
        if error.retry_after is not None and not is_testing():
            delay = max(delay, error.retry_after)
        logger.info(
            "%s refused for concurrency (1303); waiting up to %.2fs for a slot",
            self.prepared.endpoint.name,
            min(delay, remaining),
        )
        await self.slots.changed(timeout=min(delay, remaining))

    async def run(self, parse: ParseCreated) -> Task:
        attempt = 0
        slot_rounds = 0
        while True:
            attempt += 1
            self.sent += 1
            if self.on_send is not None:
                self.on_send()
            error: KlingError | None = None
            try:
                answer = await self.sender.send(self.call, limiter=self.limiter)
            except KlingError as exc:
                error = exc
            else:
                return parse(answer, self.prepared.external_task_id)
            verdict = classify(error, phase="create", sent_before=self.sent_before)
            if verdict is Verdict.NO_SLOT and isinstance(error, ConcurrencyLimitedError):
                if not self.policy.retry_concurrency_limited or self.policy.max_attempts == 1:
                    raise self._give_up(error)
                attempt -= 1  # refusals cost nothing: not counted in the retry budget
                slot_rounds += 1
                await self.no_slot(error, slot_rounds)
                continue
            if verdict in (Verdict.RETRY, Verdict.RATE_LIMITED):
                if attempt >= self.policy.max_attempts or not await self.sender.pause(
                    error, attempt, self.policy, limiter=self.limiter, deadline=self.deadline
                ):
                    raise self._give_up(error)
                continue
            if verdict is Verdict.UNCLEAR:
                self.sent_before = True
                found = await self._after_unclear(error, attempt)
                if found is not None:
                    return found
                continue
            eid = self.prepared.external_task_id
            if verdict is Verdict.EXISTS and eid is not None:
                found = await self.reconcile(eid, self.policy.reconcile_deadline, error)
                if found is not None:
                    return found
                raise self._unknown(
                    "the gateway says its external id is taken, but the lookup did not find "
                    "it in time",
                    error,
                ) from error
            raise error

    async def _after_unclear(self, error: KlingError, attempt: int) -> Task | None:
        eid = self.prepared.external_task_id
        if eid is None:
            raise self._unknown(
                "this endpoint takes no external id to look it up by", error
            ) from error
        found = await self.reconcile(eid, self.policy.reconcile_grace, error)
        if found is not None:
            return found
        if not self.prepared.resend_safe:
            raise self._unknown(
                "its API documents no external id, so sending it again could pay twice", error
            ) from error
        if attempt >= self.policy.max_attempts or not await self.sender.pause(
            error, attempt, self.policy, limiter=self.limiter, deadline=self.deadline
        ):
            raise self._unknown("the lookup has not found it yet", error) from error
        return None


async def create_task(
    sender: Sender,
    prepared: Prepared,
    *,
    url: str,
    parse: ParseCreated,
    lookup: Lookup,
    slots: SlotPool,
    policy: RetryPolicy,
    limiter: RateLimiter | None,
    deadline: float,
    sent_before: bool = False,
    on_send: Callable[[], None] | None = None,
    label: str | None = None,
    api_key_only: bool = False,
) -> Task:
    """Send a prepared create until it is created, refused, or provably unclear.

    Args:
        sender: The send chain.
        prepared: The create.
        url: The create URL.
        parse: Turns a successful answer into the Task.
        lookup: Finds a task by external id (used to reconcile).
        slots: The session's slot pool (woken on 1303).
        policy: Retry policy.
        limiter: A caller's request-rate limiter.
        deadline: ``time.monotonic()`` after which nothing more is waited for.
        sent_before: Whether an earlier call may already have sent this create (a
            resumed handle): a 1201 then means the task exists.
        on_send: Called just before each create request leaves.
        label: The route's path for logs and errors (default: the gateway's path).
        api_key_only: Whether the route refuses tokens (Kling's newer routes).

    Returns:
        The created (or found) task.

    Raises:
        CreateOutcomeUnknownError: The task may exist and could not be found in time.
        SlotTimeoutError: 1303 refusals lasted past the deadline (nothing created).
        KlingError: The create was refused, or the settings are wrong.
    """
    call = Call(
        method="POST",
        url=url,
        label=label if label is not None else prepared.endpoint.path,
        body=prepared.body,
        kind="create",
        phase="create",
        api_key_only=api_key_only,
    )
    state = _CreateRun(
        sender,
        prepared,
        call,
        policy=policy,
        limiter=limiter,
        deadline=deadline,
        slots=slots,
        lookup=lookup,
        sent_before=sent_before,
        on_send=on_send,
    )
    return await state.run(parse)
