"""The unified result model: one :class:`Task` for both of the gateway's response shapes."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import attrs

from ._filenames import safe_stem
from ._models import WatermarkInfo

__all__ = [
    "AudioOutput",
    "Charge",
    "Face",
    "FaceSession",
    "ImageOutput",
    "OutputFile",
    "ParentVideo",
    "Task",
    "TaskStatus",
    "VideoOutput",
]


class TaskStatus(str, enum.Enum):
    """Where a task is in its life. Both spellings of success map to ``SUCCEED``."""

    SUBMITTED = "submitted"
    PROCESSING = "processing"
    SUCCEED = "succeed"
    FAILED = "failed"
    #: A status string this version does not know; treated as still running.
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended (succeeded or failed)."""
        return self in _TERMINAL

    @classmethod
    def parse(cls, value: object) -> TaskStatus:
        """Map a wire status (classic or turbo spelling) to a member.

        Args:
            value: The raw ``task_status`` or ``status`` value.

        Returns:
            The member; ``UNKNOWN`` for anything unrecognised.
        """
        if type(value) is str:
            found = _STATUS_ALIASES.get(value)  # the wire's own spelling, as a rule
            if found is not None:
                return found
        text = value.strip().lower() if isinstance(value, str) else ""
        return _STATUS_ALIASES.get(text, cls.UNKNOWN)


_TERMINAL = frozenset({TaskStatus.SUCCEED, TaskStatus.FAILED})

_STATUS_ALIASES: dict[str, TaskStatus] = {
    "submitted": TaskStatus.SUBMITTED,
    "queued": TaskStatus.SUBMITTED,
    "pending": TaskStatus.SUBMITTED,
    "processing": TaskStatus.PROCESSING,
    "running": TaskStatus.PROCESSING,
    "in_progress": TaskStatus.PROCESSING,
    "succeed": TaskStatus.SUCCEED,
    "succeeded": TaskStatus.SUCCEED,
    "success": TaskStatus.SUCCEED,
    "failed": TaskStatus.FAILED,
    "fail": TaskStatus.FAILED,
    "failure": TaskStatus.FAILED,
    # Spellings no seed uses but other servers do: an end must not read as "running"
    # (the task would hold a slot in the batch's books until its timeout).
    "created": TaskStatus.SUBMITTED,
    "waiting": TaskStatus.SUBMITTED,
    "in_queue": TaskStatus.SUBMITTED,
    "completed": TaskStatus.SUCCEED,
    "complete": TaskStatus.SUCCEED,
    "finished": TaskStatus.SUCCEED,
    "done": TaskStatus.SUCCEED,
    "error": TaskStatus.FAILED,
    "errored": TaskStatus.FAILED,
    "cancelled": TaskStatus.FAILED,
    "canceled": TaskStatus.FAILED,
    "expired": TaskStatus.FAILED,
    "timeout": TaskStatus.FAILED,
    "timed_out": TaskStatus.FAILED,
}


@attrs.frozen(kw_only=True)
class VideoOutput:
    """A generated video.

    Attributes:
        id: The video's id (what video-extend and identify-face take).
        url: Download URL; valid for 30 days.
        duration: Seconds.
        watermark_url: URL of the watermarked copy, when one was asked for.
    """

    id: str | None = None
    url: str | None = None
    duration: float | None = None
    watermark_url: str | None = None


@attrs.frozen(kw_only=True)
class ImageOutput:
    """A generated image.

    Attributes:
        index: Position in the result.
        url: Download URL; valid for 30 days.
        watermark_url: URL of the watermarked copy, when one was asked for.
    """

    index: int | None = None
    url: str | None = None
    watermark_url: str | None = None


@attrs.frozen(kw_only=True)
class AudioOutput:
    """A generated sound.

    Attributes:
        id: The audio's id.
        url: Generic URL (often ``None``; see the format-specific ones).
        duration: Seconds, for ``url``.
        url_mp3: MP3 download URL.
        url_wav: WAV download URL.
        duration_mp3: Seconds of the MP3.
        duration_wav: Seconds of the WAV.
    """

    id: str | None = None
    url: str | None = None
    duration: float | None = None
    url_mp3: str | None = None
    url_wav: str | None = None
    duration_mp3: float | None = None
    duration_wav: float | None = None


@attrs.frozen(kw_only=True)
class ParentVideo:
    """The video a video-extend or lip-sync task started from.

    Attributes:
        id: Its id.
        url: Its URL.
        duration: Seconds.
    """

    id: str | None = None
    url: str | None = None
    duration: float | None = None


@attrs.frozen(kw_only=True)
class Charge:
    """One line of a turbo task's ``billing``.

    Attributes:
        amount: Units charged, as a number (``None`` when absent or unreadable).
        charge_type: What the amount counts (``unit``...), as sent.
        package_type: Which resource pack paid (``video``...), as sent.
    """

    amount: float | None = None
    charge_type: str | None = None
    package_type: str | None = None


@attrs.frozen(kw_only=True)
class OutputFile:
    """One downloadable file of a task, whatever its kind.

    Attributes:
        kind: ``video``, ``image``, ``series_image``, ``audio_mp3``, ``audio_wav``
            or ``audio``.
        url: Download URL.
        name: A stable file name for it (task id, kind, index, extension).
        watermarked: Whether this is the watermarked copy (``watermark_url``).
    """

    kind: str
    url: str
    name: str
    watermarked: bool = False


@attrs.frozen(kw_only=True)
class Task:
    """A generation task, normalised from either response shape.

    Attributes:
        id: The server's task id.
        endpoint: Name of the endpoint family it was created on (``text2video``...).
        status: Normalised status.
        raw_status: The status string exactly as the server sent it.
        external_id: Your ``external_task_id``, when known.
        message: ``task_status_msg`` / ``message``: the failure reason, if any.
        created_at: Creation time (UTC).
        updated_at: Last update time (UTC).
        videos: Video outputs.
        images: Image outputs.
        series_images: Images of an omni-image series.
        audios: Audio outputs.
        units: Units charged (``final_unit_deduction``, or the turbo ``billing`` sum).
        parent_video: The source video of a video-extend or lip-sync task.
        request_id: The envelope's ``request_id`` of the answer this task came
            from (``None`` for callbacks and journal records).
        result_type: ``single`` or ``series`` (omni-image's ``task_result``).
        watermark_info: Whether watermarked copies were asked for, as the answer
            says (``data.watermark_info``).
        billing: Turbo's ``billing`` lines, each with its ``charge_type`` and
            ``package_type`` (``units`` is their sum).
        raw: The ``data`` object as received.
    """

    id: str
    endpoint: str
    status: TaskStatus
    raw_status: str = ""
    external_id: str | None = None
    message: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    videos: tuple[VideoOutput, ...] = ()
    images: tuple[ImageOutput, ...] = ()
    series_images: tuple[ImageOutput, ...] = ()
    audios: tuple[AudioOutput, ...] = ()
    units: float | None = None
    parent_video: ParentVideo | None = None
    request_id: str | None = None
    result_type: str | None = None
    watermark_info: WatermarkInfo | None = None
    billing: tuple[Charge, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the task has ended."""
        return self.status.is_terminal

    @property
    def succeeded(self) -> bool:
        """Whether the task ended successfully."""
        return self.status is TaskStatus.SUCCEED

    @property
    def failed(self) -> bool:
        """Whether the task ended in failure."""
        return self.status is TaskStatus.FAILED

    @property
    def files(self) -> tuple[OutputFile, ...]:
        """Every downloadable output, with a stable local file name each.

        Watermarked copies are left out; see :meth:`output_files`.
        """
        return self.output_files()

    def output_files(self, *, watermarked: bool = False) -> tuple[OutputFile, ...]:
        """Every downloadable output, optionally with the watermarked copies.

        Args:
            watermarked: Also list each output's ``watermark_url`` (asked for with
                ``watermark_info.enabled``), named ``..._wm`` beside the original.

        Returns:
            The files, outputs in answer order, each watermarked copy right after
            its original.
        """
        out: list[OutputFile] = []

        def add(
            kind: str, url: str | None, stem: str, index: int, ext: str, mark: str | None = None
        ) -> None:
            if url:
                out.append(
                    OutputFile(kind=kind, url=url, name=_name(self.id, stem, index, url, ext))
                )
            if watermarked and mark:
                out.append(
                    OutputFile(
                        kind=kind,
                        url=mark,
                        name=_name(self.id, f"{stem}_wm", index, mark, ext),
                        watermarked=True,
                    )
                )

        for i, v in enumerate(self.videos):
            add("video", v.url, "video", i, ".mp4", v.watermark_url)
        for i, im in enumerate(self.images):
            add("image", im.url, "image", i, ".png", im.watermark_url)
        for i, im in enumerate(self.series_images):
            add("series_image", im.url, "series", i, ".png", im.watermark_url)
        for i, a in enumerate(self.audios):
            add("audio_mp3", a.url_mp3, "audio", i, ".mp3")
            add("audio_wav", a.url_wav, "audio", i, ".wav")
            if not (a.url_mp3 or a.url_wav):
                add("audio", a.url, "audio", i, ".mp3")
        return tuple(out)

    @property
    def urls(self) -> tuple[str, ...]:
        """The URL of every output, in :attr:`files` order."""
        return tuple(f.url for f in self.files)


_KNOWN_EXTENSIONS = (".mp4", ".mov", ".png", ".jpg", ".jpeg", ".webp", ".mp3", ".wav", ".m4a")


def _name(task_id: str, kind: str, index: int, url: str, default_ext: str) -> str:
    path = url.split("?", 1)[0].lower()
    ext = next((e for e in _KNOWN_EXTENSIONS if path.endswith(e)), default_ext)
    # Hostile ids (``..``, ``/``, 1,000 characters) become safe, distinct stems.
    return f"{safe_stem(task_id)}_{kind}_{index}{ext}"


@attrs.frozen(kw_only=True)
class Face:
    """A face found by identify-face.

    Attributes:
        face_id: Pass this to lip-sync's ``face_choose``.
        face_image: URL of a crop of the face.
        start_time: When the face appears, milliseconds.
        end_time: When it leaves, milliseconds.
    """

    face_id: str
    face_image: str | None = None
    start_time: int | None = None
    end_time: int | None = None


@attrs.frozen(kw_only=True)
class FaceSession:
    """The answer of identify-face.

    Attributes:
        session_id: Pass this to lip-sync.
        faces: The faces found.
        raw: The ``data`` object as received.
    """

    session_id: str
    faces: tuple[Face, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


def ms_to_datetime(value: object) -> datetime | None:
    """Turn a millisecond Unix timestamp (number or numeric string) into a UTC datetime.

    Args:
        value: The raw value.

    Returns:
        The datetime, or ``None`` when absent or unparseable.
    """
    if type(value) is int:  # a JSON integer, as the seeds print it
        # A task's times repeat from poll to poll: each is converted once.
        cached = _MS_CACHE.get(value)
        if cached is not None:
            return cached
        number: float | int = value
    elif isinstance(value, bool) or not isinstance(value, (int, float, str)) or value == "":
        return None
    else:
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
    try:
        moment = datetime.fromtimestamp(number / 1000.0, tz=_UTC)
    except (ValueError, OverflowError, OSError):
        return None
    if type(value) is int:
        if len(_MS_CACHE) >= _MS_CACHE_SIZE:
            _MS_CACHE.clear()
        _MS_CACHE[value] = moment
    return moment


_UTC = timezone.utc
#: Recent integer timestamps and their (immutable) datetimes.
_MS_CACHE: dict[int, datetime] = {}
_MS_CACHE_SIZE = 8192


#: How many more times a "succeeded" answer without any output is asked again
#: before it is taken as it is (a server may store the result a moment late).
EARLY_SUCCESS_CHECKS = 3


def early_success(task: Task) -> bool:
    """Whether ``task`` says "succeeded" but carries no output yet.

    Args:
        task: A task as a query answered it.

    Returns:
        ``True`` when it should be asked again before it is taken as done.
    """
    return task.succeeded and not task.files
