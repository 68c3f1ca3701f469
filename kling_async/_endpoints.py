"""The endpoint table: the single source of truth for every family the API offers.

The session, the fake gateway, the validation, the scheduler and the CLI all read
this table, so an endpoint cannot be half-added. Each row says, for one family:

* where it lives on the gateway: ``path`` under ``/v1/ai/{endpoint_path}/kling/``
  on ``host``; a task is created with ``POST path`` and looked up with
  ``GET path/{id}`` (classic host) or ``GET tasks?task_ids=...`` (turbo host).
  Kling's own API moves each family to its official path (``v1/videos/...``, the
  new-standard turbo routes); :mod:`kling_async._backends` derives both route
  tables from this one, and the session reads its paths from there. The fake
  gateway (:mod:`kling_async.testing`) serves exactly those routes;
* the body: ``request_type``, the attrs model whose fields are the wire names;
* its rules: ``rules``, the family's declarative table in :mod:`kling_async._rules`
  (what each field allows, tier and seed source; ``docs/validation.md`` lists them);
* whether the seeds document ``external_task_id`` for it (``accepts_external_id``):
  the session only adds its own id, and only reconciles an unclear create by that
  id, where they do.

Adding a family means one row here, one request model and one rule table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from ._models import (
    AvatarRequest,
    IdentifyFaceRequest,
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
    TurboOptions,
    TurboTextToVideoRequest,
    VideoExtendRequest,
)
from ._rules import (
    AVATAR,
    IDENTIFY_FACE,
    IMAGE2VIDEO,
    IMAGE_GENERATION,
    LIP_SYNC,
    MULTI_IMAGE2VIDEO,
    OMNI_IMAGE,
    OMNI_VIDEO,
    TEXT2VIDEO,
    TEXT_TO_AUDIO,
    TURBO_IMAGE2VIDEO,
    TURBO_TEXT2VIDEO,
    VIDEO_EXTEND,
    RuleTable,
)

__all__ = [
    "ENDPOINTS",
    "TURBO_TASKS_PATH",
    "Endpoint",
    "Host",
    "Shape",
    "body_with_external_id",
    "callback_url_of",
    "endpoint_for",
    "endpoint_for_request",
    "external_id_of",
    "with_callback_url",
    "with_external_id",
]


class Host(enum.Enum):
    """Which of the gateway's two hosts serves an endpoint."""

    CLASSIC = "classic"
    TURBO = "turbo"


class Shape(enum.Enum):
    """How an endpoint's responses are shaped."""

    #: ``data.task_id`` / ``task_status`` / ``task_result``.
    CLASSIC = "classic"
    #: ``data.id`` / ``status`` / ``outputs`` / ``billing``.
    TURBO = "turbo"
    #: identify-face: ``data.session_id`` / ``face_data``, answered at once.
    FACE = "face"


@attrs.frozen(kw_only=True)
class Endpoint:
    """One endpoint family.

    Attributes:
        name: Short stable name, used in logs, journals and the CLI
            (``text2video``, ``turbo-text2video``...).
        path: Path under ``/v1/ai/{endpoint_path}/kling/``.
        host: Which base URL serves it.
        shape: Response shape.
        request_type: The attrs model of its body.
        kind: ``video``, ``image``, ``audio`` or ``face``.
        rules: The family's rule table (:mod:`kling_async._rules`).
        accepts_external_id: Whether the seeds document ``external_task_id`` for
            this family (``options.external_task_id`` on turbo). Where they do not
            (video-extend, identify-face), the SDK adds no id of its own and cannot
            look a task up by one.
        aliases: Other names accepted by :func:`endpoint_for`.
    """

    name: str
    path: str
    host: Host
    shape: Shape
    request_type: type[Any]
    kind: str
    rules: RuleTable = attrs.field(repr=False)
    accepts_external_id: bool = True
    aliases: tuple[str, ...] = ()

    @property
    def is_task(self) -> bool:
        """Whether a create returns a task to poll (all but identify-face)."""
        return self.shape is not Shape.FACE

    @property
    def is_turbo(self) -> bool:
        """Whether the endpoint lives on the turbo host."""
        return self.host is Host.TURBO

    def slots(self, payload: Mapping[str, Any]) -> int:
        """Concurrency slots a task of this endpoint holds while it runs.

        A video or audio task takes one slot; an image task takes one per image
        (``n``, or ``series_amount`` for an omni-image series).

        Args:
            payload: The request body as sent (wire names).

        Returns:
            The number of slots, at least 1.
        """
        if self.kind != "image":
            return 1
        key = "n"
        if payload.get("result_type") == "series":
            key = "series_amount"
        value = payload.get(key)
        try:
            count = int(str(value)) if value is not None else (4 if key == "series_amount" else 1)
        except ValueError:
            count = 1
        return max(1, count)


#: Path of turbo's batch task query (``GET``, on the turbo host).
TURBO_TASKS_PATH = "tasks"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        name="text2video",
        path="videos/text2video",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=TextToVideoRequest,
        kind="video",
        rules=TEXT2VIDEO,
        aliases=("text-to-video",),
    ),
    Endpoint(
        name="image2video",
        path="videos/image2video",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=ImageToVideoRequest,
        kind="video",
        rules=IMAGE2VIDEO,
        aliases=("image-to-video",),
    ),
    Endpoint(
        name="omni-video",
        path="videos/omni-video",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=OmniVideoRequest,
        kind="video",
        rules=OMNI_VIDEO,
    ),
    Endpoint(
        name="video-extend",
        path="videos/video-extend",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=VideoExtendRequest,
        kind="video",
        rules=VIDEO_EXTEND,
        accepts_external_id=False,
    ),
    Endpoint(
        name="multi-image2video",
        path="videos/multi-image2video",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=MultiImageToVideoRequest,
        kind="video",
        rules=MULTI_IMAGE2VIDEO,
        aliases=("multi-image-to-video",),
    ),
    Endpoint(
        name="identify-face",
        path="videos/identify-face",
        host=Host.CLASSIC,
        shape=Shape.FACE,
        request_type=IdentifyFaceRequest,
        kind="face",
        rules=IDENTIFY_FACE,
        accepts_external_id=False,
    ),
    Endpoint(
        name="lip-sync",
        path="videos/advanced-lip-sync",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=LipSyncRequest,
        kind="video",
        rules=LIP_SYNC,
        aliases=("advanced-lip-sync",),
    ),
    Endpoint(
        name="avatar",
        path="videos/avatar/image2video",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=AvatarRequest,
        kind="video",
        rules=AVATAR,
    ),
    Endpoint(
        name="image-generation",
        path="images/generations",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=ImageGenerationRequest,
        kind="image",
        rules=IMAGE_GENERATION,
        aliases=("generations", "images"),
    ),
    Endpoint(
        name="omni-image",
        path="images/omni-image",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=OmniImageRequest,
        kind="image",
        rules=OMNI_IMAGE,
    ),
    Endpoint(
        name="text-to-audio",
        path="audio/text-to-audio",
        host=Host.CLASSIC,
        shape=Shape.CLASSIC,
        request_type=TextToAudioRequest,
        kind="audio",
        rules=TEXT_TO_AUDIO,
        aliases=("text2audio",),
    ),
    Endpoint(
        name="turbo-text2video",
        path="videos/text-to-video/kling-3.0-turbo",
        host=Host.TURBO,
        shape=Shape.TURBO,
        request_type=TurboTextToVideoRequest,
        kind="video",
        rules=TURBO_TEXT2VIDEO,
        aliases=("turbo-text-to-video",),
    ),
    Endpoint(
        name="turbo-image2video",
        path="videos/image-to-video/kling-3.0-turbo",
        host=Host.TURBO,
        shape=Shape.TURBO,
        request_type=TurboImageToVideoRequest,
        kind="video",
        rules=TURBO_IMAGE2VIDEO,
        aliases=("turbo-image-to-video",),
    ),
)

_BY_KEY: dict[str, Endpoint] = {}
for _ep in ENDPOINTS:
    for _key in (_ep.name, _ep.path, *_ep.aliases):
        _BY_KEY[_key] = _ep
_BY_TYPE: dict[type[Any], Endpoint] = {ep.request_type: ep for ep in ENDPOINTS}


def endpoint_for(name: str | Endpoint) -> Endpoint:
    """Find an endpoint by name, alias or path under ``/kling/``.

    Args:
        name: ``"text2video"``, ``"videos/text2video"``, ``"images/generations"``...
            or an :class:`Endpoint` (returned as is).

    Returns:
        The endpoint.

    Raises:
        KeyError: No endpoint has that name; the message lists the valid ones.
    """
    if isinstance(name, Endpoint):
        return name
    key = name.strip().strip("/")
    if key.startswith("kling/"):
        key = key[len("kling/") :]
    try:
        return _BY_KEY[key]
    except KeyError:
        valid = ", ".join(sorted(ep.path for ep in ENDPOINTS))
        raise KeyError(f"unknown endpoint {name!r}; expected one of: {valid}") from None


def endpoint_for_request(request: Request) -> Endpoint:
    """Return the endpoint whose body is ``request``'s type.

    Args:
        request: A request model instance.

    Returns:
        The endpoint.

    Raises:
        TypeError: ``request`` is not one of the request models.
    """
    try:
        return _BY_TYPE[type(request)]
    except KeyError:
        raise TypeError(f"{type(request).__name__} is not a Kling request model") from None


_TURBO_TYPES = (TurboTextToVideoRequest, TurboImageToVideoRequest)


def _option(request: Request, name: str) -> str | None:
    """Read a field that turbo bodies keep under ``options``."""
    holder: Any = request
    if isinstance(request, _TURBO_TYPES):
        holder = request.options
    value = getattr(holder, name, None) if holder is not None else None
    return value or None


def _with_option(request: Request, name: str, value: str) -> Request:
    """Copy ``request`` with a field that turbo bodies keep under ``options``."""
    changes: dict[str, Any] = {name: value}
    if isinstance(request, _TURBO_TYPES):
        options = request.options or TurboOptions()
        return attrs.evolve(request, options=attrs.evolve(options, **changes))
    if not hasattr(request, name):
        raise TypeError(f"{type(request).__name__} has no {name}")
    return attrs.evolve(request, **changes)


def external_id_of(request: Request) -> str | None:
    """Return the request's ``external_task_id`` (``options.external_task_id`` on turbo).

    Args:
        request: A request model instance.

    Returns:
        The id, or ``None`` when unset or empty.
    """
    return _option(request, "external_task_id")


def with_external_id(request: Request, external_task_id: str) -> Request:
    """Return a copy of ``request`` carrying ``external_task_id``.

    Args:
        request: A request model instance.
        external_task_id: The id to set.

    Returns:
        The new request.

    Raises:
        TypeError: The endpoint has no external id (identify-face).
    """
    return _with_option(request, "external_task_id", external_task_id)


def body_with_external_id(
    request: Request, body: dict[str, Any], external_task_id: str
) -> dict[str, Any]:
    """Return ``body`` (the request's own, as built) carrying ``external_task_id``.

    The same result as building the body of :func:`with_external_id`'s copy,
    without copying and re-checking the model.

    Args:
        request: The request model the body was built from.
        body: Its body, as built by the converter (not changed).
        external_task_id: The id to set.

    Returns:
        A new body.

    Raises:
        TypeError: The endpoint has no external id (identify-face).
    """
    out = dict(body)
    if isinstance(request, _TURBO_TYPES):
        options = out.get("options")
        out["options"] = {
            **(options if isinstance(options, dict) else {}),
            "external_task_id": external_task_id,
        }
        return out
    if not hasattr(request, "external_task_id"):
        raise TypeError(f"{type(request).__name__} has no external_task_id")
    out["external_task_id"] = external_task_id
    return out


def callback_url_of(request: Request) -> str | None:
    """Return the request's ``callback_url`` (``options.callback_url`` on turbo).

    Args:
        request: A request model instance.

    Returns:
        The URL, or ``None`` when unset or empty.
    """
    return _option(request, "callback_url")


def with_callback_url(request: Request, callback_url: str) -> Request:
    """Return a copy of ``request`` carrying ``callback_url``.

    Args:
        request: A request model instance.
        callback_url: Where the server should POST status changes.

    Returns:
        The new request.

    Raises:
        TypeError: The endpoint takes no callback (identify-face).
    """
    return _with_option(request, "callback_url", callback_url)
