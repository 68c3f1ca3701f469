"""Nested objects of the request bodies: shots, camera moves, masks, references, options.

Seeds are named by the first three digits of their file in ``/work/shared/seeds``:
000 (v3: text/image-to-video, image generation, audio), 001 (Omni: omni-video,
omni-image, avatar), 002 (3.0 turbo), 003 (V1.6-V2.6 incl. lip-sync), 004 (V1).
"""

from __future__ import annotations

import attrs

from ._json import CheckedModel, IntLike, NumberLike, media_repr

__all__ = [
    "CameraConfig",
    "CameraControl",
    "DynamicMask",
    "Element",
    "FaceChoice",
    "ImageRef",
    "OmniImageRef",
    "Shot",
    "TrajectoryPoint",
    "TurboContent",
    "TurboOptions",
    "TurboSettings",
    "VideoRef",
    "VoiceRef",
    "WatermarkInfo",
]


@attrs.frozen(kw_only=True)
class WatermarkInfo(CheckedModel):
    """Whether to also produce a watermarked copy of each output (``watermark_info``).

    Attributes:
        enabled: ``true`` to generate a watermarked result as well, ``false`` not to.
            A JSON boolean only (``"false"`` is refused: it would read as true).
            Default: unset (no watermarked copy). Custom watermarks are not
            supported. Seeds 000, 001, 002.
    """

    enabled: bool | None = None


@attrs.frozen(kw_only=True)
class Shot(CheckedModel):
    """One shot of a multi-shot video: an entry of ``multi_prompt``.

    Only read when ``multi_shot`` is true and ``shot_type`` is ``customize``.

    Attributes:
        index: The shot's number (integer). Seeds 000, 001.
        prompt: What happens in the shot; at most 512 characters. Seeds 000, 001.
        duration: The shot's length in seconds, a number or a decimal string as the
            seeds write it (``"2"``); at least 1, at most the task's duration; all
            shots add up to the task's ``duration``. Whole seconds are not required.
            Seeds 000, 001.
    """

    index: int | None = None
    prompt: str | None = None
    duration: NumberLike | None = None


@attrs.frozen(kw_only=True)
class CameraConfig(CheckedModel):
    """Movement amounts of a ``simple`` camera move: exactly one is non-zero.

    Every amount is a JSON number in [-10, 10]. Seeds 003, 004 (``camera_control``).

    Attributes:
        horizontal: Move along x; negative left, positive right.
        vertical: Move along y; negative down, positive up.
        pan: Rotate around y; negative left, positive right.
        tilt: Rotate around x; negative down, positive up.
        roll: Rotate around z; negative counter-clockwise, positive clockwise.
        zoom: Change the focal length; negative narrows the view, positive widens it.
    """

    horizontal: float | None = None
    vertical: float | None = None
    pan: float | None = None
    tilt: float | None = None
    roll: float | None = None
    zoom: float | None = None


@attrs.frozen(kw_only=True)
class CameraControl(CheckedModel):
    """Camera movement for text-to-video and image-to-video (seeds 003, 004).

    When unset, the model picks a movement from the prompt.

    Attributes:
        type: ``simple``, ``down_back``, ``forward_up``, ``right_turn_forward`` or
            ``left_turn_forward``. Seeds 003, 004.
        config: The amounts; required when ``type`` is ``simple``, left out for the
            other types. Seeds 003, 004.
    """

    type: str | None = None
    config: CameraConfig | None = None


@attrs.frozen(kw_only=True)
class TrajectoryPoint(CheckedModel):
    """One point of a motion-brush trajectory, in pixels from the image's bottom-left.

    Attributes:
        x: Pixel column, a JSON integer (``10.9`` is refused, never truncated).
            Seeds 003, 004.
        y: Pixel row counted from the bottom, a JSON integer. Seeds 003, 004.
    """

    x: int
    y: int


@attrs.frozen(kw_only=True)
class DynamicMask(CheckedModel):
    """A motion-brush group (``dynamic_masks`` entry): a painted area and its path.

    Attributes:
        mask: The painted area: an image URL or plain base64 (jpg/jpeg/png) with the
            same aspect ratio as ``image`` and the same resolution as every other
            mask. Seeds 003, 004.
        trajectories: The path, at least 2 points; at most 77 for a 5 s video.
            Seeds 003, 004.
    """

    mask: str | None = attrs.field(default=None, repr=media_repr)
    trajectories: list[TrajectoryPoint] | None = None


@attrs.frozen(kw_only=True)
class Element(CheckedModel):
    """A subject from the account's element library (``element_list`` entry).

    Attributes:
        element_id: The subject's id: a JSON integer (seed 001 sends
            ``829836802793406551``) or a string of digits (seeds 000 and 001 send
            ``"160"``). Seeds 000, 001.
    """

    element_id: IntLike


@attrs.frozen(kw_only=True)
class VoiceRef(CheckedModel):
    """A voice used in the prompt as ``<<<voice_1>>>`` (``voice_list`` entry).

    Attributes:
        voice_id: The voice's id. At most 2 voices per task, and ``sound`` must be
            ``on``. Seed 000 (image-to-video prompt).
    """

    voice_id: str


@attrs.frozen(kw_only=True)
class ImageRef(CheckedModel):
    """An image of ``image_list`` (multi-image-to-video, omni-image).

    Attributes:
        image: An image URL or plain base64 without a ``data:`` prefix; jpg/jpeg/png,
            at most 10 MB, sides of at least 300 px, aspect between 1:2.5 and 2.5:1;
            must not be empty. Seeds 001, 003.
    """

    image: str = attrs.field(repr=media_repr)


@attrs.frozen(kw_only=True)
class OmniImageRef(CheckedModel):
    """An image of omni-video's ``image_list``.

    Attributes:
        image_url: An image URL or plain base64 (same limits as every input image);
            must not be empty. Seed 001.
        type: ``first_frame`` or ``end_frame`` to use the image as a frame; unset
            for a plain reference (subject, scene, style). An end frame needs a first
            frame, and is not allowed with more than 2 images. Seed 001.
    """

    image_url: str = attrs.field(repr=media_repr)
    type: str | None = None


@attrs.frozen(kw_only=True)
class VideoRef(CheckedModel):
    """The reference video of omni-video's ``video_list`` (at most one).

    Attributes:
        video_url: URL of an MP4/MOV file: at least 3 s, 720-2160 px sides,
            24-60 fps, at most 200 MB (checked by the server). Seed 001.
        refer_type: ``feature`` (a style/feature reference) or ``base`` (the video to
            edit). Default ``base``. Seed 001.
        keep_original_sound: ``yes`` or ``no``: keep the video's own sound. Seed 001.
    """

    video_url: str
    refer_type: str | None = None
    keep_original_sound: str | None = None


@attrs.frozen(kw_only=True)
class FaceChoice(CheckedModel):
    """The face to lip-sync and the audio to put on it (``face_choose`` entry).

    Times are JSON integers in milliseconds; volumes JSON numbers. Seed 003.

    Attributes:
        face_id: A ``face_id`` returned by identify-face. Required.
        audio_id: An audio id (audio made in the last 30 days, 2-60 s). Exactly one
            of ``audio_id`` and ``sound_file``.
        sound_file: Audio URL or plain base64: mp3/wav/m4a, at most 5 MB, 2-60 s.
        sound_start_time: Where the clip starts in the audio, ms from 0. Required.
        sound_end_time: Where the clip ends in the audio, ms; the clip lasts 2-60 s.
            Required.
        sound_insert_time: Where the clip starts in the video, ms. Required.
        sound_volume: Volume of the clip, in [0, 2]. Default 1.
        original_audio_volume: Volume of the video's own sound, in [0, 2].
            Default 1.
    """

    face_id: str | None = None
    audio_id: str | None = None
    sound_file: str | None = attrs.field(default=None, repr=media_repr)
    sound_start_time: int | None = None
    sound_end_time: int | None = None
    sound_insert_time: int | None = None
    sound_volume: float | None = None
    original_audio_volume: float | None = None


@attrs.frozen(kw_only=True)
class TurboSettings(CheckedModel):
    """Output settings of the turbo endpoints (``settings``). Seed 002.

    Seed 002 gives defaults but no list of allowed values: other values are sent,
    with a warning when they are not ones the SDK knows.

    Attributes:
        resolution: Output resolution, e.g. ``720p`` or ``1080p``. Default ``720p``.
        aspect_ratio: Width:height, e.g. ``16:9``, ``9:16``, ``1:1`` (text-to-video
            only). Default ``16:9``.
        duration: Seconds, a JSON integer (seed 002 types it ``int``). Default 5.
    """

    resolution: str | None = None
    aspect_ratio: str | None = None
    duration: int | None = None


@attrs.frozen(kw_only=True)
class TurboOptions(CheckedModel):
    """General options of the turbo endpoints (``options``). Seed 002.

    Attributes:
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task, unique in the account; the
            task can be queried by it (``tasks?external_task_ids=``).
        watermark_info: Whether to also produce a watermarked copy.
    """

    callback_url: str | None = None
    external_task_id: str | None = None
    watermark_info: WatermarkInfo | None = None


@attrs.frozen(kw_only=True)
class TurboContent(CheckedModel):
    """One entry of turbo image-to-video's ``contents``. Seed 002.

    Attributes:
        type: ``prompt`` or ``first_frame``; required. Exactly one ``first_frame``.
        text: The prompt text, for ``type="prompt"``.
        url: The first frame image (URL or plain base64), for
            ``type="first_frame"``.
    """

    type: str | None = None
    text: str | None = None
    url: str | None = attrs.field(default=None, repr=media_repr)
