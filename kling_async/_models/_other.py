"""Request bodies of the face, image, audio and turbo families."""

from __future__ import annotations

import attrs

from ._json import CheckedModel, IntLike, media_repr
from ._parts import (
    Element,
    FaceChoice,
    ImageRef,
    TurboContent,
    TurboOptions,
    TurboSettings,
    WatermarkInfo,
)

__all__ = [
    "AvatarRequest",
    "IdentifyFaceRequest",
    "ImageGenerationRequest",
    "LipSyncRequest",
    "OmniImageRequest",
    "TextToAudioRequest",
    "TurboImageToVideoRequest",
    "TurboTextToVideoRequest",
]


@attrs.frozen(kw_only=True)
class IdentifyFaceRequest(CheckedModel):
    """Body of ``POST videos/identify-face`` (answered at once, no task). Seed 003.

    Attributes:
        video_id: A Kling-generated video's id (under 30 days, at most 60 s).
            Exactly one of ``video_id`` and ``video_url``.
        video_url: URL of an mp4/mov video: at most 100 MB, 2-60 s, 720p or 1080p,
            sides 512-2160 px (checked by the server).
    """

    video_id: str | None = None
    video_url: str | None = None


@attrs.frozen(kw_only=True)
class LipSyncRequest(CheckedModel):
    """Body of ``POST videos/advanced-lip-sync``. Seed 003.

    Attributes:
        session_id: The ``session_id`` identify-face returned. Required.
        face_choose: The face to lip-sync; exactly one entry for now. Required.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task, unique in the account.
    """

    session_id: str | None = None
    face_choose: list[FaceChoice] | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class AvatarRequest(CheckedModel):
    """Body of ``POST videos/avatar/image2video`` (digital human). Seed 001.

    Seed 001's table for this family gives names and defaults only; limits the SDK
    carries over from other families are warnings here, not refusals.

    Attributes:
        image: The digital human's picture: image URL or plain base64 without a
            ``data:`` prefix. Required.
        audio_id: An audio id from the audition interface.
        sound_file: An audio file (URL or plain base64).
        prompt: Positive text prompt.
        mode: Video mode, e.g. ``std`` or ``pro``. Default ``std``.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task.
    """

    image: str | None = attrs.field(default=None, repr=media_repr)
    audio_id: str | None = None
    sound_file: str | None = attrs.field(default=None, repr=media_repr)
    prompt: str | None = None
    mode: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class ImageGenerationRequest(CheckedModel):
    """Body of ``POST images/generations``: ``n`` images from a prompt. Seed 000.

    Attributes:
        model_name: e.g. ``kling-v3``, ``kling-v2-1``, ``kling-v1``. Server default
            ``kling-v1``.
        prompt: At most 2500 characters. Required.
        negative_prompt: At most 2500 characters; not supported with ``image``.
        image: Reference image (image-to-image): URL or plain base64; jpg/jpeg/png,
            at most 10 MB, sides of at least 300 px, aspect 1:2.5 to 2.5:1.
        image_reference: Mentioned by seed 000 (``image`` is then required);
            not described further.
        element_list: Subjects; subjects plus images at most 10.
        resolution: ``1k`` or ``2k``. Default ``1k``.
        n: Number of images, 1 to 9: a JSON integer or a string of digits (seed 000
            sends ``"9"``). Default 1.
        aspect_ratio: ``16:9``, ``9:16``, ``1:1``, ``4:3``, ``3:4``, ``3:2``,
            ``2:3`` or ``21:9``. Default ``16:9``.
        watermark_info: Also produce a watermarked copy.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (``""`` counts as unset).
    """

    model_name: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    image: str | None = attrs.field(default=None, repr=media_repr)
    image_reference: str | None = None
    element_list: list[Element] | None = None
    resolution: str | None = None
    n: IntLike | None = None
    aspect_ratio: str | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class OmniImageRequest(CheckedModel):
    """Body of ``POST images/omni-image``: single images or a series. Seed 001.

    Attributes:
        model_name: Model name; seed 001 documents none for this family.
        prompt: At most 2500 characters. Required.
        image_list: Reference images; images plus subjects at most 10.
        element_list: Subjects; images plus subjects at most 10.
        resolution: ``1k``, ``2k`` or ``4k``. Default ``1k``.
        result_type: ``single`` or ``series``. Default ``single``.
        n: Number of images, 1 to 9 (JSON integer or string of digits). Ignored
            when ``result_type`` is ``series``. Default 1.
        series_amount: Images in the series, 2 to 9 (JSON integer or string of
            digits). Ignored when ``result_type`` is ``single``. Default 4.
        aspect_ratio: ``16:9``, ``9:16``, ``1:1``, ``4:3``, ``3:4``, ``3:2``,
            ``2:3``, ``21:9`` or ``auto``. Default ``auto``.
        watermark_info: Also produce a watermarked copy.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (``""`` counts as unset).
    """

    model_name: str | None = None
    prompt: str | None = None
    image_list: list[ImageRef] | None = None
    element_list: list[Element] | None = None
    resolution: str | None = None
    result_type: str | None = None
    n: IntLike | None = None
    series_amount: IntLike | None = None
    aspect_ratio: str | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class TextToAudioRequest(CheckedModel):
    """Body of ``POST audio/text-to-audio``: a sound effect from a prompt. Seeds 000, 001.

    Attributes:
        prompt: At most 200 characters. Required.
        duration: Seconds, a JSON number from 3.0 to 10.0 with at most one decimal
            (``3``, ``7.5``). Required.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (``""`` counts as unset).
    """

    prompt: str | None = None
    duration: float | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class TurboTextToVideoRequest(CheckedModel):
    """Body of ``POST videos/text-to-video/kling-3.0-turbo`` (turbo host). Seed 002.

    Attributes:
        prompt: What the video shows. Required.
        settings: Resolution, aspect ratio and duration.
        options: Callback URL, external task id and watermark switch.
    """

    prompt: str | None = None
    settings: TurboSettings | None = None
    options: TurboOptions | None = None


@attrs.frozen(kw_only=True)
class TurboImageToVideoRequest(CheckedModel):
    """Body of ``POST videos/image-to-video/kling-3.0-turbo`` (turbo host). Seed 002.

    Attributes:
        contents: A ``first_frame`` entry (required) and optionally a ``prompt``
            entry.
        settings: Resolution and duration.
        options: Callback URL, external task id and watermark switch.
    """

    contents: list[TurboContent] | None = None
    settings: TurboSettings | None = None
    options: TurboOptions | None = None
