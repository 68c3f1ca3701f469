"""Endpoint families on the session, generated from the endpoint table.

The session builds one generic :class:`Family` per task-creating row of
:data:`~kling_async.ENDPOINTS`, in a loop. Editors and type checkers still see
``session.text_to_video`` as ``Family[TextToVideoRequest]``: :class:`TypedFamilies`
declares one typed accessor per family, one line each, and checks when the class is
built that the accessor's name and request type match a row of the table (and a
test checks that every row has one). Adding an endpoint means adding its row, its
request model and one accessor line; the behaviour is never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar, overload

from ._config import PollPolicy
from ._endpoints import ENDPOINTS, Endpoint, endpoint_for
from ._handles import TaskHandle
from ._models import (
    AvatarRequest,
    ImageGenerationRequest,
    ImageToVideoRequest,
    LipSyncRequest,
    MultiImageToVideoRequest,
    OmniImageRequest,
    OmniVideoRequest,
    Request,
    TextToAudioRequest,
    TextToVideoRequest,
    TurboImageToVideoRequest,
    TurboTextToVideoRequest,
    VideoExtendRequest,
)
from ._ratelimit import RateLimiter
from ._task import Task

__all__ = ["Family", "FamilyHost", "TypedFamilies", "attribute_name", "family_accessor"]

RequestT = TypeVar("RequestT", bound=Request)

#: Called with the task once it exists (before waiting); may be a coroutine function.
OnCreated = Callable[[Task], Any]


def attribute_name(endpoint: Endpoint) -> str:
    """The session attribute of a family: ``text2video`` → ``text_to_video``.

    Args:
        endpoint: A row of the endpoint table.

    Returns:
        The Python name.
    """
    return endpoint.name.replace("2", "_to_").replace("-", "_")


class FamilyHost(Protocol):
    """What a family needs from its session."""

    async def create(
        self,
        request: Request,
        *,
        external_task_id: str | None = ...,
        limiter: RateLimiter | None = ...,
    ) -> Task:
        """Create a task."""
        ...

    async def get(
        self,
        target: Any = ...,
        task_id: str | None = ...,
        *,
        external_task_id: str | None = ...,
        limiter: RateLimiter | None = ...,
    ) -> Task:
        """Query a task."""
        ...

    def submit(
        self,
        request: Request,
        *,
        external_task_id: str | None = ...,
        poll: PollPolicy | None = ...,
        timeout: float | None = ...,
        raise_on_failure: bool = ...,
        on_created: OnCreated | None = ...,
    ) -> TaskHandle:
        """Prepare a run; await the handle to do it."""
        ...


class Family(Generic[RequestT]):
    """The coroutines of one endpoint family: ``create``, ``get``, ``submit`` and ``run``.

    Obtained from the session (``session.text_to_video``...), never built by hand.
    """

    def __init__(self, session: FamilyHost, endpoint: Endpoint) -> None:
        self._session = session
        #: The endpoint row this family wraps.
        self.endpoint = endpoint

    def __repr__(self) -> str:
        return f"Family({self.endpoint.name!r})"

    async def create(
        self,
        request: RequestT,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Create a task. See :meth:`KlingSession.create`.

        Args:
            request: The request body.
            external_task_id: Your id for the task (one is generated when omitted).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task as created (usually ``submitted``).

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
            APIError: The gateway refused the request.
            CreateOutcomeUnknownError: The create failed unclearly and could not be
                reconciled.
        """
        return await self._session.create(
            request, external_task_id=external_task_id, limiter=limiter
        )

    async def get(
        self,
        task_id: str | None = None,
        *,
        external_task_id: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> Task:
        """Query a task of this family by task id or external task id.

        Args:
            task_id: The server's task id.
            external_task_id: Your external id (instead of ``task_id``).
            limiter: A request-rate limiter to share with other calls.

        Returns:
            The task's current state.

        Raises:
            NotFoundError: No such task.
            APIError: Any other refusal.
        """
        return await self._session.get(
            self.endpoint, task_id, external_task_id=external_task_id, limiter=limiter
        )

    def submit(
        self,
        request: RequestT,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> TaskHandle:
        """Validate a request and choose its external id now; await the handle to run it.

        See :meth:`KlingSession.submit`.

        Args:
            request: The request body.
            external_task_id: Your id for the task (one is generated when omitted).
            poll: Polling policy (default: the session's).
            timeout: Overall deadline of the run, seconds (slot wait, create, wait).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.
            on_created: Called with the task once it exists, before waiting.

        Returns:
            The handle: ``handle.external_task_id`` at once, ``await handle`` for the
            terminal task.

        Raises:
            ValidationError: The request breaks a documented limit (nothing sent).
        """
        return self._session.submit(
            request,
            external_task_id=external_task_id,
            poll=poll,
            timeout=timeout,
            raise_on_failure=raise_on_failure,
            on_created=on_created,
        )

    async def run(
        self,
        request: RequestT,
        *,
        external_task_id: str | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
        raise_on_failure: bool = True,
        on_created: OnCreated | None = None,
    ) -> Task:
        """Create a task and wait until it ends (``await self.submit(...)``).

        Args:
            request: The request body.
            external_task_id: Your id for the task (one is generated when omitted).
            poll: Polling policy (default: the session's).
            timeout: Overall deadline, seconds: waiting for a slot, creating and
                waiting for the task (default: ``poll.timeout``).
            raise_on_failure: Raise :class:`TaskFailedError` when the task fails.
            on_created: Called with the task once it exists (its ``id`` and
                ``external_id`` are then known), before waiting.

        Returns:
            The terminal task.

        Raises:
            ValidationError: The request breaks a documented limit.
            SlotTimeoutError: No concurrency slot freed before the deadline.
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


_BY_REQUEST_TYPE: Mapping[type[Any], Endpoint] = {ep.request_type: ep for ep in ENDPOINTS}


class family_accessor(Generic[RequestT]):  # lower case: read like a field declaration
    """A typed, read-only attribute returning the session's family for one endpoint.

    Args:
        request_type: The family's request model; it names the endpoint row.

    Raises:
        TypeError: At class creation, when the attribute name does not match the
            endpoint table's name for that row.
    """

    def __init__(self, request_type: type[RequestT]) -> None:
        self.endpoint = _BY_REQUEST_TYPE[request_type]

    def __set_name__(self, owner: type[Any], name: str) -> None:
        expected = attribute_name(self.endpoint)
        if name != expected:
            raise TypeError(f"the family of {self.endpoint.name} must be named {expected}")

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> family_accessor[RequestT]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any]) -> Family[RequestT]: ...

    def __get__(
        self, instance: object | None, owner: type[Any]
    ) -> Family[RequestT] | family_accessor[RequestT]:
        if instance is None:
            return self
        families: Mapping[str, Family[Any]] = instance.families  # type: ignore[attr-defined]
        return families[self.endpoint.name]


class TypedFamilies:
    """Typed access to the families a session builds from the endpoint table."""

    families: Mapping[str, Family[Any]]

    text_to_video = family_accessor(TextToVideoRequest)
    image_to_video = family_accessor(ImageToVideoRequest)
    omni_video = family_accessor(OmniVideoRequest)
    video_extend = family_accessor(VideoExtendRequest)
    multi_image_to_video = family_accessor(MultiImageToVideoRequest)
    lip_sync = family_accessor(LipSyncRequest)
    avatar = family_accessor(AvatarRequest)
    image_generation = family_accessor(ImageGenerationRequest)
    omni_image = family_accessor(OmniImageRequest)
    text_to_audio = family_accessor(TextToAudioRequest)
    turbo_text_to_video = family_accessor(TurboTextToVideoRequest)
    turbo_image_to_video = family_accessor(TurboImageToVideoRequest)

    def family(self, name: str | Endpoint) -> Family[Any]:
        """The family of an endpoint by name, alias, path or row.

        Args:
            name: ``"text2video"``, ``"videos/text2video"``... or an :class:`Endpoint`.

        Returns:
            The family.

        Raises:
            KeyError: No task-creating endpoint has that name.
        """
        return self.families[endpoint_for(name).name]
