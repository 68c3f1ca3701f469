"""Receive task callbacks: an ``aiohttp.web`` handler to mount in your app, or run standalone.

The gateway POSTs the task object itself (not the envelope) to a task's
``callback_url`` on each status change, optionally signed the Standard Webhooks
way. A callback is a hint, never the only source: the batch refreshes the task
on an unsigned callback, and keeps a slow reconciliation poll for lost ones.

Mounted in your own application::

    receiver = CallbackReceiver(secret="whsec_...", public_url="https://app.example/kling/callback")
    app.router.add_post("/kling/callback", receiver.handle)

Standalone (tests, scripts, a machine reachable by the gateway)::

    async with receiver.serve(host="127.0.0.1", port=0) as url:
        async with session.batch(callbacks=receiver) as batch: ...

Several workers behind one public URL: a callback may land on a worker that does
not own its task. With a coordination store (a batch opened with ``coordinate=``,
or on a session configured with one), the receiver hands such a callback to the
owner's inbox in the store and answers 200 only once the store took it; the owner
checks it again with its own receiver (signature included) and acts on it exactly
as on one received directly. Without a store, or when nobody claimed the task, it
answers 503 with ``Retry-After`` so the sender delivers it again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import attrs
from aiohttp import web

from ._converter import parse_task
from ._endpoints import Endpoint, endpoint_for
from ._errors import WebhookVerificationError
from ._task import Task
from ._webhooks import DEFAULT_TOLERANCE, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, verify

if TYPE_CHECKING:
    from .coordination import SlotStore

__all__ = ["CallbackEvent", "CallbackReceiver"]

logger = logging.getLogger("kling_async")

#: Query parameter naming the endpoint in the callback URLs the batch hands out.
ENDPOINT_PARAM = "endpoint"
_SEEN_IDS = 10_000
#: First line of a callback handed over through a coordination store.
_RELAY_MAGIC = b"kling-callback/1"
#: Headers a handed-over callback keeps (what verifying and de-duplicating need).
_RELAY_HEADERS = (HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)


def pack_relay(headers: Mapping[str, str], body: bytes, endpoint: str | None) -> bytes:
    """Wrap a callback as received (raw body, signature headers) for another worker.

    Args:
        headers: The request headers.
        body: The raw body, byte for byte (its signature covers it).
        endpoint: The endpoint named in the callback URL, if any.

    Returns:
        The payload: a magic line, one JSON line of headers and endpoint, the body.
    """
    kept = {name: headers[name] for name in _RELAY_HEADERS if headers.get(name)}
    meta = json.dumps({"headers": kept, "endpoint": endpoint}, separators=(",", ":"))
    return b"\n".join((_RELAY_MAGIC, meta.encode(), body))


def unpack_relay(payload: bytes) -> tuple[dict[str, str], bytes, str | None]:
    """Undo :func:`pack_relay`.

    Args:
        payload: A payload from a store's inbox.

    Returns:
        The headers, the raw body and the endpoint name.

    Raises:
        ValueError: The payload is not a handed-over callback.
    """
    magic, _, rest = payload.partition(b"\n")
    meta_line, sep, body = rest.partition(b"\n")
    if magic != _RELAY_MAGIC or not sep:
        raise ValueError("not a handed-over callback")
    meta = json.loads(meta_line)
    raw_headers = meta.get("headers") if isinstance(meta, Mapping) else None
    if not isinstance(raw_headers, Mapping):
        raise ValueError("not a handed-over callback")  # noqa: TRY004  (a bad payload)
    headers = {str(k): str(v) for k, v in raw_headers.items() if k in _RELAY_HEADERS}
    endpoint = meta.get("endpoint")
    return headers, body, endpoint if isinstance(endpoint, str) else None


@attrs.frozen(kw_only=True)
class CallbackEvent:
    """One accepted callback.

    Attributes:
        task: The task as the callback described it.
        verified: Whether a Standard Webhooks signature was checked and matched.
        received_at: ``time.monotonic()`` on arrival.
        webhook_id: The ``webhook-id`` header, when sent.
    """

    task: Task
    verified: bool
    received_at: float
    webhook_id: str | None = None


class CallbackReceiver:
    """Accept task callbacks and tell subscribers (a batch) at once.

    Args:
        secret: The Standard Webhooks secret (``whsec_...``). When set, callbacks
            without a valid signature are refused with 401.
        public_url: The URL the gateway should call, when you mount
            :meth:`handle` in your own app (``serve`` sets it otherwise).
        tolerance: Seconds a signature's timestamp may be off.
        max_body: Largest body accepted, bytes.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_url: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body: int = 1 << 20,
    ) -> None:
        self._secret = secret
        self._public_url = public_url
        self._served_url: str | None = None
        self.tolerance = tolerance
        self.max_body = max_body
        self._subscribers: list[Callable[[CallbackEvent], object]] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        #: Callbacks accepted.
        self.received = 0
        #: Callbacks refused (bad signature, bad body).
        self.rejected = 0
        #: Redeliveries of a ``webhook-id`` already accepted (acknowledged, ignored).
        self.duplicates = 0
        #: Verified callbacks no subscriber claimed (answered 503: sent again later).
        self.unclaimed = 0
        #: Callbacks for another worker's task handed to it through a store (200).
        self.handed_over = 0
        #: Callbacks other workers handed to this one (checked again, then acted on).
        self.taken_over = 0
        self._warned_unsigned = False
        self._relays: list[SlotStore] = []

    def __repr__(self) -> str:
        return f"CallbackReceiver(url={self.url!r}, signed={self._secret is not None})"

    @property
    def url(self) -> str | None:
        """Where the gateway should POST: ``public_url``, or the served URL."""
        return self._public_url or self._served_url

    def callback_url_for(self, endpoint: Endpoint | str) -> str:
        """The callback URL to put in a request of ``endpoint``.

        The endpoint's name rides along as a query parameter, so the body is
        parsed with the right shape.

        Args:
            endpoint: The request's endpoint.

        Returns:
            The URL.

        Raises:
            RuntimeError: The receiver has no URL yet.
        """
        base = self.url
        if base is None:
            raise RuntimeError("the receiver has no URL: serve it or set public_url")
        name = endpoint_for(endpoint).name
        sep = "&" if "?" in base else "?"
        return f"{base}{sep}{ENDPOINT_PARAM}={quote(name, safe='')}"

    def subscribe(self, callback: Callable[[CallbackEvent], object]) -> Callable[[], None]:
        """Call ``callback`` with every accepted callback.

        It runs in the handler, on the event loop: it must not block. Exceptions
        it raises are logged and ignored. It returns ``False`` when the task is not
        one it knows (a batch does): when every subscriber says so, :meth:`handle`
        answers 503, so the gateway delivers it again later (to this worker, or,
        behind a load balancer, to the one that owns the task) instead of the
        callback being dropped with a 200. Any other return value claims it.

        Args:
            callback: The subscriber.

        Returns:
            A function that unsubscribes it.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def relay_through(self, store: SlotStore) -> Callable[[], None]:
        """Hand callbacks for tasks this process does not own to their owner via ``store``.

        A batch that coordinates through a store calls this for its receiver (once
        per store: calling it again with the same store changes nothing). The owner
        is whoever claimed the task in the store (``claim_task``); it reads its inbox
        and passes each payload to :meth:`take_over`. A store that has been closed
        is dropped at its next use.

        Args:
            store: The coordination store.

        Returns:
            A function that stops relaying through it.
        """
        if not any(known is store for known in self._relays):
            self._relays.append(store)

        def stop() -> None:
            with contextlib.suppress(ValueError):
                self._relays.remove(store)

        return stop

    async def _hand_over(
        self, event: CallbackEvent, headers: Mapping[str, str], body: bytes, endpoint: str | None
    ) -> bool:
        """Publish a callback nobody here claimed to its owner's inbox; ``True`` once stored."""
        task_id = event.task.id
        keys = [key for key in (task_id, event.task.external_id) if key]
        if not keys or not self._relays:
            return False
        from .coordination import CoordinationError

        payload = pack_relay(headers, body, endpoint)
        for store in list(self._relays):
            if getattr(store, "closed", False):
                with contextlib.suppress(ValueError):
                    self._relays.remove(store)
                continue
            try:
                for key in keys:  # claimed by task id, or by external id before creation
                    if await store.publish_callback(key, payload) is not None:
                        return True
            except CoordinationError as exc:
                logger.warning(
                    "callback for task %s not handed over: %s", task_id or "?", type(exc).__name__
                )
        return False

    def take_over(self, payload: bytes) -> bool:
        """Act on a callback another worker handed over, as if it had arrived here.

        The payload carries the raw body and its signature headers, so it is checked
        again with this receiver's secret: a body that would be refused here is
        refused (logged, dropped), and one accepted unsigned stays unverified.

        Args:
            payload: From the store's inbox (see :func:`pack_relay`).

        Returns:
            Whether a subscriber here claimed it.
        """
        try:
            headers, body, endpoint = unpack_relay(payload)
            event, claimed = self._accept(headers, body, endpoint=endpoint)
        except WebhookVerificationError as exc:
            self.rejected += 1
            logger.warning("handed-over callback refused: %s", exc)
            return False
        except (ValueError, UnicodeDecodeError):
            self.rejected += 1
            logger.warning("handed-over callback refused: not a callback this receiver reads")
            return False
        self.taken_over += 1
        if not claimed:
            task_id = event.task.id if event is not None else "?"
            logger.info("handed-over callback for task %s: no longer watched here", task_id)
        return claimed

    def _is_duplicate(self, webhook_id: str | None) -> bool:
        if not webhook_id:
            return False
        if webhook_id in self._seen:
            self._seen.move_to_end(webhook_id)
            return True
        self._seen[webhook_id] = None
        if len(self._seen) > _SEEN_IDS:
            self._seen.popitem(last=False)
        return False

    def accept(
        self, headers: Mapping[str, str], body: bytes, *, endpoint: str | None = None
    ) -> CallbackEvent | None:
        """Verify and parse one callback, then notify subscribers (framework-free core).

        Args:
            headers: The request headers.
            body: The raw body.
            endpoint: The endpoint name, when known (from the URL).

        Returns:
            The event, or ``None`` for a redelivery already seen.

        Raises:
            WebhookVerificationError: A secret is set and the signature does not verify.
            ValueError: The body is not a JSON task object.
        """
        event, _ = self._accept(headers, body, endpoint=endpoint)
        return event

    def _accept(
        self, headers: Mapping[str, str], body: bytes, *, endpoint: str | None = None
    ) -> tuple[CallbackEvent | None, bool]:
        """Verify, parse and deliver one callback.

        Args:
            headers: The request headers.
            body: The raw body.
            endpoint: The endpoint name, when known (from the URL).

        Returns:
            The event (``None`` for a redelivery already seen), and whether a
            subscriber claimed it (or nobody subscribed).

        Raises:
            WebhookVerificationError: A secret is set and the signature does not verify.
            ValueError: The body is not a JSON task object.
        """
        verified = False
        if self._secret is not None:
            verify(self._secret, headers, body, tolerance=self.tolerance)
            verified = True
        elif not self._warned_unsigned:
            self._warned_unsigned = True
            logger.warning(
                "callbacks are accepted unsigned (the receiver has no secret): anyone who "
                "knows the URL can post them; the batch then only treats them as hints"
            )
        data = json.loads(body)
        if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
            data = data["data"]  # tolerate an envelope
        if not isinstance(data, Mapping) or not (
            data.get("task_id") or data.get("id") or data.get("external_task_id")
        ):
            raise ValueError("callback body is not a task object")
        webhook_id = headers.get(HEADER_ID)
        if verified and self._is_duplicate(webhook_id):
            self.duplicates += 1
            return None, True
        name: Endpoint | str = "callback"
        if endpoint:
            try:
                name = endpoint_for(endpoint)
            except KeyError:
                name = "callback"
        event = CallbackEvent(
            task=parse_task(name, data),
            verified=verified,
            received_at=time.monotonic(),
            webhook_id=webhook_id,
        )
        self.received += 1
        subscribers = list(self._subscribers)
        claimed = not subscribers
        for subscriber in subscribers:
            try:
                claimed = subscriber(event) is not False or claimed
            except Exception:
                claimed = True  # it was someone's: a redelivery would fail the same way
                logger.exception("callback subscriber raised; ignored")
        if not claimed:
            self.unclaimed += 1
            self._forget(webhook_id)
        return event, claimed

    def _forget(self, webhook_id: str | None) -> None:
        """A callback nobody claimed may come again: do not count that as a redelivery."""
        if webhook_id:
            self._seen.pop(webhook_id, None)

    async def handle(self, request: web.Request) -> web.Response:
        """The ``aiohttp.web`` handler: ``app.router.add_post(path, receiver.handle)``.

        Args:
            request: The incoming POST.

        Returns:
            200 when accepted (or a known redelivery, or handed to the worker that
            owns the task through a coordination store), 503 when no subscriber knows
            the task and no owner took it (the sender should deliver it again
            later), 401 for a bad
            signature, 400 for a bad body, 413 for an oversized one.
        """
        if request.content_length is not None and request.content_length > self.max_body:
            self.rejected += 1
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        body = await request.read()
        if len(body) > self.max_body:
            self.rejected += 1
            return web.json_response({"ok": False, "error": "body too large"}, status=413)
        try:
            event, claimed = self._accept(
                request.headers, body, endpoint=request.query.get(ENDPOINT_PARAM)
            )
        except WebhookVerificationError as exc:
            self.rejected += 1
            logger.warning("callback refused: %s", exc)
            return web.json_response({"ok": False, "error": "signature"}, status=401)
        except (ValueError, UnicodeDecodeError):
            self.rejected += 1
            logger.warning("callback refused: body is not a JSON task object")
            return web.json_response({"ok": False, "error": "body"}, status=400)
        endpoint = request.query.get(ENDPOINT_PARAM)
        if (
            not claimed
            and event is not None
            and await self._hand_over(event, request.headers, body, endpoint)
        ):
            self.unclaimed -= 1
            self.handed_over += 1
            return web.json_response({"ok": True})
        if not claimed:
            task_id = event.task.id if event is not None else ""
            logger.warning(
                "callback for task %s is not one this process watches; answered 503 so the "
                "sender delivers it again",
                task_id or "?",
            )
            return web.json_response(
                {"ok": False, "error": "unknown task"}, status=503, headers={"Retry-After": "5"}
            )
        return web.json_response({"ok": True})

    @contextlib.asynccontextmanager
    async def serve(
        self, *, host: str = "127.0.0.1", port: int = 0, path: str = "/kling/callback"
    ) -> AsyncIterator[str]:
        """Run a small server for the receiver alone while the block runs.

        Args:
            host: Interface to listen on.
            port: Port (0: any free one).
            path: Path to serve the handler on.

        Yields:
            The callback URL (also in :attr:`url` meanwhile).

        Raises:
            RuntimeError: The receiver is already being served.
        """
        if self._served_url is not None:
            raise RuntimeError("the receiver is already being served")
        app = web.Application(client_max_size=self.max_body + 1024)
        app.router.add_post(path, self.handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound: Any = runner.addresses[0]
            bound_host, bound_port = str(bound[0]), int(bound[1])
            shown = f"[{bound_host}]" if ":" in bound_host else bound_host
            self._served_url = f"http://{shown}:{bound_port}{path}"
            yield self._served_url
        finally:
            self._served_url = None
            await runner.cleanup()
