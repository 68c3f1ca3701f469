"""The async session: one connection pool, every endpoint family, typed and safely retried.

The session only wires the pieces and holds what every call shares:

* the backend (:mod:`kling_async._backends`): the gateway or Kling's own API, chosen
  by the configuration, with its route table, hosts and credentials;
* the send chain (:mod:`kling_async._send`): credentials per route → rate limit →
  authorize → the transport seam → decode, caps and error mapping → log, with read
  retries;
* paid calls (:mod:`kling_async._runs`, :mod:`kling_async._create`): a slot from the
  session's one pool, validate, send, reconcile unclear outcomes by external id;
* reads (:mod:`kling_async._reads`, public methods in :mod:`kling_async._queries`):
  queries, batch queries, polling, identify-face;
* the families (:mod:`kling_async._families`), built from the endpoint table;
* handles (:mod:`kling_async._handles`): ids before waiting.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

from ._auth import Credentials
from ._backends import BackendSettings
from ._config import ClientConfig, PollPolicy, RetryPolicy
from ._converter import parse_task
from ._create import new_external_task_id, prepare
from ._download import DownloadedFile
from ._endpoints import ENDPOINTS, Host
from ._families import Family, OnCreated, TypedFamilies
from ._fetch import fetch_url
from ._handles import TaskHandle
from ._models import Request
from ._queries import QueryMethods
from ._ratelimit import RateLimiter
from ._reads import Reader
from ._redact import Redactor
from ._runs import PaidCalls
from ._send import Sender
from ._slots import CoordinatedSlotPool, SlotPool
from ._task import Task
from ._transport import AiohttpTransport, Transport

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._callbacks import CallbackReceiver
    from ._schedule import ScheduleTuning
    from .batch import Batch, Event

__all__ = ["Family", "KlingSession", "new_external_task_id", "parse_task"]


def _config_of(**settings: str | None) -> ClientConfig:
    """A configuration from the session's keyword arguments (``None``: not given)."""
    given: dict[str, Any] = {k: v for k, v in settings.items() if v}
    return ClientConfig(**given)


def _redactor(settings: BackendSettings, credentials: Credentials) -> Redactor:
    """Scrubs every credential, the endpoint path segment and (by shape) any token."""
    secrets = list(credentials.secrets())
    if settings.endpoint_path:
        segment = settings.endpoint_path.strip("/")
        secrets += [segment, quote(segment, safe="")]
    return Redactor(secrets)


class KlingSession(TypedFamilies, QueryMethods):
    """An async session for the Kling API: every endpoint, typed, validated, safely retried.

    Use it as an async context manager and share one session across a whole
    application: it holds one connection pool and one pool of concurrency slots
    (``config.max_running``, :attr:`slots`) shared by every ``create``/``run``/``submit``.

    Args:
        api_key: The gateway's key, or an API key of Kling's own API (or use
            ``config`` / :meth:`from_env`; :class:`ClientConfig` tells the two
            backends apart).
        endpoint_path: Your per-customer endpoint path segment (the gateway).
        base_url: Classic host (default: the backend's).
        turbo_base_url: Turbo host (default: the public turbo gateway).
        access_key: Access key of Kling's own API.
        secret_key: Its secret key.
        backend: ``"gateway"`` or ``"kling"`` (default: implied by the settings).
        host: Kling's host by name (``"global"``, ``"china"``) or URL.
        config: A complete configuration (instead of the arguments above).
        http_session: An :class:`aiohttp.ClientSession` to borrow (not closed by us).
        transport: A custom transport (tests: :class:`kling_async.testing.MockTransport`).

    Raises:
        ConfigurationError: A required setting is missing, settings of both
            backends are mixed, or a URL is malformed.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        endpoint_path: str | None = None,
        base_url: str | None = None,
        turbo_base_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        backend: str | None = None,
        host: str | None = None,
        config: ClientConfig | None = None,
        http_session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
    ) -> None:
        if config is None:
            config = _config_of(
                api_key=api_key,
                endpoint_path=endpoint_path,
                base_url=base_url,
                turbo_base_url=turbo_base_url,
                access_key=access_key,
                secret_key=secret_key,
                backend=backend,
                host=host,
            )
        self.config: ClientConfig = config
        settings, credentials = config.backend_settings, config.credentials()
        self._sender = Sender(
            transport or AiohttpTransport(http_session, connect_timeout=config.timeouts.connect),
            config,
            _redactor(settings, credentials),
            credentials,
        )
        #: The concurrency slots shared by every paid call of this session.
        self.slots = SlotPool.for_session(config)
        roots = {host: settings.root(host) for host in Host}
        self._reader = Reader(self._sender, settings.backend, roots, self.slots)
        self._paid = PaidCalls(self._sender, self._reader, self.slots, config)
        #: One family per task-creating row of the endpoint table, by endpoint name.
        self.families: Mapping[str, Family[Any]] = {
            ep.name: Family(self, ep) for ep in ENDPOINTS if ep.is_task
        }

    @classmethod
    def from_env(
        cls,
        *,
        environ: Mapping[str, str] | None = None,
        http_session: aiohttp.ClientSession | None = None,
        transport: Transport | None = None,
        **overrides: Any,
    ) -> KlingSession:
        """Build a session from ``KLING_*`` variables (see :meth:`ClientConfig.from_env`).

        ``KLING_ACCESS_KEY`` and ``KLING_SECRET_KEY`` without ``KLING_ENDPOINT_PATH``
        pick Kling's own API; ``KLING_API_KEY`` with ``KLING_ENDPOINT_PATH`` the
        gateway.

        Args:
            environ: Where to read variables (default ``os.environ``).
            http_session: An aiohttp session to borrow.
            transport: A custom transport.
            **overrides: Any :class:`ClientConfig` field; wins over the environment.

        Returns:
            The session.

        Raises:
            ConfigurationError: A required variable is missing or a value is invalid.
        """
        config = ClientConfig.from_env(environ, **overrides)
        return cls(config=config, http_session=http_session, transport=transport)

    def __repr__(self) -> str:
        return (
            f"KlingSession(backend={self.backend.name!r}, base_url={self.config.base_url!r}, "
            f"turbo_base_url={self.config.turbo_base_url!r}, closed={self.closed})"
        )

    async def __aenter__(self) -> KlingSession:
        self._sender.check_open()
        self._sender.warm_up()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections this session owns (a borrowed aiohttp session stays open).

        Idempotent. Any later use raises :class:`SessionClosedError`; no new pool opens.
        """
        self._sender.closed = True
        try:
            await self.slots.aclose()
        finally:
            await self._sender.transport.aclose()

    # --- paid calls -----------------------------------------------------------------

    async def create(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        hold_slot: bool = True,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Task:
        """Create a task on the endpoint matching the request's type; never pay twice.

        The create carries an ``external_task_id`` (yours, or generated) unless its
        API documents none; unclear failures are reconciled by it (see
        :mod:`kling_async._create`), never re-sent blindly. The call first takes
        slots from :attr:`slots` (waiting while the pool is full; a 1303 waits and
        retries); the task holds them until observed ending (``wait``/``get``/
        ``refresh`` on this session) or for ``config.slot_ttl`` seconds. A create
        refused for want of a slot (1303, raised when ``retry`` does not wait) is sent
        as built when called again with the same request object, id and contents.

        Args:
            request: A request model.
            external_task_id: Your id for the task; wins over the request's own.
            limiter: A request-rate limiter to share with other calls.
            retry: Retry policy for this call (default: the session's).
            timeout: Seconds the call may wait in all (slot, pauses, lookups);
                default ``config.poll.timeout``.
            hold_slot: Take slots from :attr:`slots` (a batch admitting on its own
                passes ``False``).
            extra_body: Fields to send beside the model's (merged into the body),
                for API fields this SDK does not know yet; known fields in it are
                still checked.

        Returns:
            The task as created, with ``external_id`` set.

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            TypeError: ``request`` is not a task-creating request model.
            SlotTimeoutError: No slot freed in time (nothing created).
            APIError: The gateway refused (a wrong key or route names the setting).
            CreateOutcomeUnknownError: The task may exist and was not found in time.
            SessionClosedError: The session was closed.
        """
        self._sender.check_open()
        budget = timeout if timeout is not None else self.config.poll.timeout
        return await self._paid.create_request(
            request,
            external_task_id=external_task_id,
            extra_body=extra_body,
            deadline=time.monotonic() + budget,
            limiter=limiter,
            retry=retry,
            hold_slot=hold_slot,
        )

    def submit(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> TaskHandle:
        """Validate a request and choose its external id now; await the handle to run it.

        Nothing is sent until the handle is awaited, but ``handle.external_task_id``
        is known at once: store it, and the task can be found later
        (``get(external_task_id=...)``) even if the awaiting code is cancelled.

        Args:
            request: A task-creating request model.
            external_task_id: Your id for the task (one is generated when omitted).
            poll: Polling policy (default: the session's).
            timeout: Seconds for the whole run: slot, create and wait (default
                ``poll.timeout``).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.
            on_created: Called with the task once it exists, before waiting (an
                awaitable result is awaited).

        Returns:
            The handle, awaitable to the terminal task.

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            TypeError: ``request`` is not a task-creating request model.
            SessionClosedError: The session was closed.
        """
        self._sender.check_open()
        prepared = prepare(
            request, external_task_id=external_task_id, validate=self.config.validate
        )
        self._reader.check_auth(prepared.endpoint)
        return self._paid.handle(
            prepared,
            poll=poll or self.config.poll,
            budget=timeout,
            raise_on_failure=raise_on_failure,
            on_created=on_created,
        )

    async def run(
        self,
        request: Request,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> Task:
        """Create a task and wait until it ends: ``await self.submit(...)`` (same arguments).

        Returns:
            The terminal task.

        Raises:
            ValidationError: The request breaks a documented limit.
            SlotTimeoutError: No slot freed before the deadline (nothing created).
            TaskFailedError: The task failed (and ``raise_on_failure``).
            WaitTimeoutError: The deadline passed while the task ran.
            APIError: The gateway refused a request.
        """
        return await self.submit(
            request,
            external_task_id=external_task_id,
            poll=poll,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            on_created=on_created,
        )

    # --- downloading ------------------------------------------------------------------

    async def download_url(
        self,
        url: str,
        path: str | Path,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        within: str | Path | None = None,
    ) -> DownloadedFile:
        """Save one result URL to ``path`` (temporary file, checks, atomic rename).

        Args:
            url: The result URL.
            path: Destination file.
            expected_size: Bytes the file must have.
            expected_sha256: Hex digest it must have (also lets an existing
                identical file be kept without a request).
            within: A folder the file must land inside (refused otherwise).

        Returns:
            What was saved.

        Raises:
            URLExpiredError: The URL answered 403/404/410 (query the task again).
            DownloadError: Other HTTP errors, short bodies, integrity mismatches.
            TransportError: The connection failed.
            SessionClosedError: The session was closed.
        """
        self._sender.check_open()
        self.request_counts["download"] += 1
        return await fetch_url(
            self._sender.transport,
            self.config,
            url,
            path,
            expected_size=expected_size,
            expected_sha256=expected_sha256,
            within=within,
        )

    async def download(self, task: Task, directory: str | Path) -> list[DownloadedFile]:
        """Save every output of a task into ``directory``, one file per output.

        File names are stable (``{task_id}_{kind}_{index}.{ext}``, the id made safe
        for any file system), and every file must land inside ``directory``.

        Args:
            task: A succeeded task.
            directory: Where to put the files (created if missing).

        Returns:
            One entry per output, in :attr:`Task.files` order.

        Raises:
            URLExpiredError: A URL has expired.
            DownloadError: A download failed or was incomplete.
        """
        folder = Path(directory)
        return [await self.download_url(f.url, folder / f.name, within=folder) for f in task.files]

    def batch(
        self,
        *,
        max_running: int = 10,
        max_requests_per_second: float | None = None,
        journal: str | Path | None = None,
        batch_id: str | None = None,
        download_dir: str | Path | None = None,
        max_download_concurrency: int = 4,
        max_units: float | None = None,
        callbacks: CallbackReceiver | None = None,
        fail_fast: bool = False,
        on_event: Callable[[Event], object] | None = None,
        poll: PollPolicy | None = None,
        reconcile_interval: float | None = None,
        schedule: ScheduleTuning | None = None,
        probe_slots: bool | None = None,
        max_ids_per_query: int = 100,
        seed: int | None = None,
        lookup_patience: float | None = None,
        reconcile_deadline: float = 600.0,
        max_refusals_per_second: float = 10.0,
        coordinate: Any = None,
        resume_unfinished: bool = False,
        max_buffered_results: int | None = None,
    ) -> Batch:
        """Open a batch: fan many generations out under the account's limits.

        Every argument is the :class:`kling_async.BatchOptions` field of the same
        name (documented there), with the same default; ``coordinate=None`` on a
        session with ``max_running`` shares :attr:`slots` (``max_running``: a share).

        Returns:
            The batch, to use as ``async with session.batch(...) as batch``.

        Raises:
            ValueError: An option is out of range.
        """
        from .batch import Batch, BatchOptions

        if coordinate is None and isinstance(self.slots, CoordinatedSlotPool):
            coordinate = self.slots  # the batch takes its share of the session's slots
        options = BatchOptions(
            max_running=max_running,
            max_requests_per_second=max_requests_per_second,
            journal=journal,
            batch_id=batch_id,
            download_dir=download_dir,
            max_download_concurrency=max_download_concurrency,
            max_units=max_units,
            callbacks=callbacks,
            fail_fast=fail_fast,
            on_event=on_event,
            poll=poll,
            reconcile_interval=reconcile_interval,
            schedule=schedule,
            probe_slots=probe_slots,
            max_ids_per_query=max_ids_per_query,
            seed=seed,
            lookup_patience=lookup_patience,
            reconcile_deadline=reconcile_deadline,
            max_refusals_per_second=max_refusals_per_second,
            coordinate=coordinate,
            resume_unfinished=resume_unfinished,
            max_buffered_results=max_buffered_results,
        )
        return Batch(self, options)
