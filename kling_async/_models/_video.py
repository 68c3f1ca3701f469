"""Request bodies of the classic video families: text, image, omni, extend, multi-image."""

from __future__ import annotations

import attrs

from ._json import CheckedModel, IntLike, media_repr
from ._parts import (
    CameraControl,
    DynamicMask,
    Element,
    ImageRef,
    OmniImageRef,
    Shot,
    VideoRef,
    VoiceRef,
    WatermarkInfo,
)

__all__ = [
    "ImageToVideoRequest",
    "MultiImageToVideoRequest",
    "OmniVideoRequest",
    "TextToVideoRequest",
    "VideoExtendRequest",
]


@attrs.frozen(kw_only=True)
class TextToVideoRequest(CheckedModel):
    """Body of ``POST videos/text2video``.

    Single shot: set ``prompt``. Multi-shot: ``multi_shot=True`` with
    ``shot_type="customize"`` and ``multi_prompt`` (1 to 6 shots adding up to
    ``duration``), or ``shot_type="intelligence"`` with a ``prompt``.
    Every field defaults to ``None``: not sent, so the server's default applies.

    Attributes:
        model_name: Model, e.g. ``kling-v3``, ``kling-v2-6``, ``kling-v1``. Names the
            SDK has never seen are sent with a warning. Server default ``kling-v1``.
            Seeds 000, 003, 004.
        prompt: What the video shows, at most 2500 characters. Required unless
            ``multi_shot`` is true with ``shot_type`` ``customize`` (then it is
            ignored). Seeds 000, 003, 004.
        negative_prompt: What to avoid, at most 2500 characters. Seeds 000, 003, 004.
        multi_shot: JSON boolean: generate several shots. Default false. When false,
            ``shot_type`` and ``multi_prompt`` are ignored. Seed 000.
        shot_type: ``customize`` (you give the shots in ``multi_prompt``) or
            ``intelligence`` (the model splits ``prompt``). Needed when
            ``multi_shot`` is true. Seed 000.
        multi_prompt: The shots, 1 to 6, for ``shot_type`` ``customize``. Seed 000.
        voice_list: Voices referenced from the prompt as ``<<<voice_1>>>``; at most
            2, and ``sound`` must be ``on``. Seed 000.
        sound: ``on`` or ``off``: generate sound too (models 2.6 and later). Default
            ``off``. Seeds 000, 003.
        cfg_scale: How closely to follow the prompt, a JSON number in [0, 1].
            Default 0.5; ignored by 2.x models. Seeds 003, 004.
        mode: ``std`` (720p), ``pro`` (1080p) or ``4k`` (v3 models; version-1 models
            take ``std`` and ``pro`` only). Default ``std``. Seeds 000, 003, 004.
        aspect_ratio: ``16:9``, ``9:16`` or ``1:1``. Default ``16:9``. Seeds 000, 003.
        duration: Seconds: ``"3"`` to ``"15"`` (seed 000), ``"5"`` or ``"10"`` on
            version-1 models (seeds 003, 004). A string of digits, as the seeds
            send it, or a JSON integer; ``5.0`` is refused. Default 5.
        camera_control: A camera move (older models). Seeds 003, 004.
        watermark_info: Also produce a watermarked copy. Seed 000.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task, unique in the account; the task
            can be queried by it. Must not be ``.``/``..`` nor contain ``/`` or ``,``
            (the SDK puts it in a URL path and a comma-separated query).
            Seeds 000, 003, 004.
    """

    model_name: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Shot] | None = None
    voice_list: list[VoiceRef] | None = None
    sound: str | None = None
    cfg_scale: float | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None
    camera_control: CameraControl | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class ImageToVideoRequest(CheckedModel):
    """Body of ``POST videos/image2video``.

    At least one of ``image`` (first frame) and ``image_tail`` (last frame). Motion
    brush through ``static_mask`` and ``dynamic_masks``; subjects through
    ``element_list``; voices through ``voice_list``. Unset fields are not sent.

    Attributes:
        model_name: Model, e.g. ``kling-v2-6``, ``kling-v1-6``, ``kling-v3``; unknown
            names are sent with a warning. Server default ``kling-v1``.
            Seeds 000, 003, 004.
        image: First frame: an image URL or plain base64 without a ``data:`` prefix;
            jpg/jpeg/png, at most 10 MB, sides of at least 300 px, aspect between
            1:2.5 and 2.5:1. Seeds 000, 003, 004.
        image_tail: Last frame, same limits as ``image``. Seeds 000, 003, 004.
        prompt: What happens, at most 2500 characters; optional. Voices are
            referenced as ``<<<voice_1>>>``. Seeds 000, 003, 004.
        negative_prompt: What to avoid, at most 2500 characters. Seeds 000, 003, 004.
        multi_shot: JSON boolean; as for text-to-video. Seed 000.
        shot_type: ``customize`` or ``intelligence``; as for text-to-video. Seed 000.
        multi_prompt: 1 to 6 shots; as for text-to-video. Seed 000.
        element_list: Subjects; subjects plus images at most 10. Seed 000.
        voice_list: At most 2 voices; ``sound`` must be ``on``. Seed 000.
        sound: ``on`` or ``off`` (models 2.6 and later). Default ``off``.
            Seeds 000, 003.
        cfg_scale: JSON number in [0, 1]. Default 0.5. Seeds 003, 004.
        mode: ``std``, ``pro`` or ``4k`` (version-1 models: ``std``/``pro``).
            Default ``std``. Seeds 000, 003, 004.
        aspect_ratio: ``16:9``, ``9:16`` or ``1:1``. Default ``16:9``. Seed 000.
        duration: Seconds, ``"3"`` to ``"15"`` (``"5"``/``"10"`` on version-1
            models); a string of digits or a JSON integer. Default 5.
            Seeds 000, 003, 004.
        static_mask: Motion brush area that stays still: image URL or base64 with
            the aspect ratio of ``image``. Seeds 003, 004.
        dynamic_masks: Motion brush groups, at most 6. Seeds 003, 004.
        camera_control: A camera move. Seeds 003, 004.
        watermark_info: Also produce a watermarked copy. Seed 000.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (see text-to-video).
            Seeds 000, 003, 004.
    """

    model_name: str | None = None
    image: str | None = attrs.field(default=None, repr=media_repr)
    image_tail: str | None = attrs.field(default=None, repr=media_repr)
    prompt: str | None = None
    negative_prompt: str | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Shot] | None = None
    element_list: list[Element] | None = None
    voice_list: list[VoiceRef] | None = None
    sound: str | None = None
    cfg_scale: float | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None
    static_mask: str | None = attrs.field(default=None, repr=media_repr)
    dynamic_masks: list[DynamicMask] | None = None
    camera_control: CameraControl | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class OmniVideoRequest(CheckedModel):
    """Body of ``POST videos/omni-video`` (seed 001).

    References go in ``image_list`` (frames or references), ``element_list`` and
    ``video_list`` (at most one video; ``sound`` must be off with it), referred to
    from the prompt as ``<<<image_1>>>``, ``<<<element_1>>>``, ``<<<video_1>>>``.

    Attributes:
        model_name: Model name; seed 001 documents none for this family, so any
            value is sent (unknown names with a warning).
        prompt: At most 2500 characters; required unless ``multi_shot`` is true with
            ``shot_type`` ``customize`` (then ignored). Seed 001.
        multi_shot: JSON boolean. Default false; when false, ``shot_type`` and
            ``multi_prompt`` are ignored. Seed 001.
        shot_type: ``customize`` (seed 001 also mentions ``intelligence``); required
            when ``multi_shot`` is true. Seed 001.
        multi_prompt: 1 to 6 shots adding up to ``duration``. Seed 001.
        image_list: Reference images or first/end frames. Images plus subjects at
            most 7, or 4 with a reference video. Seed 001.
        element_list: Subjects; at most 3 with a first/end frame. Seed 001.
        video_list: At most one reference video. Seed 001.
        sound: ``on`` or ``off``; must be ``off`` with a reference video. Default
            ``off``. Seed 001.
        mode: ``std`` (720p) or ``pro`` (1080p). Default ``pro``. Seed 001.
        aspect_ratio: ``16:9``, ``9:16`` or ``1:1``; required unless a first frame
            or a video to edit is given. Seed 001.
        duration: Seconds, 3 to 15; a string of digits or a JSON integer. Ignored
            when editing a video (``refer_type`` ``base``): the output keeps the
            input's length. Default 5. Seed 001.
        watermark_info: Also produce a watermarked copy. Seed 001.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (see text-to-video). Seed 001.
    """

    model_name: str | None = None
    prompt: str | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Shot] | None = None
    image_list: list[OmniImageRef] | None = None
    element_list: list[Element] | None = None
    video_list: list[VideoRef] | None = None
    sound: str | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class VideoExtendRequest(CheckedModel):
    """Body of ``POST videos/video-extend``: continue a generated video.

    Seeds 003 and 004 document ``video_id`` and ``prompt`` only; the other fields
    are sent when set, with a warning that the seeds do not document them here.

    Attributes:
        video_id: The ``id`` of a generated video output (not the task id); the
            video must be under 30 days old and the chain under 3 minutes.
            Required. Seeds 003, 004.
        prompt: At most 2500 characters. Seeds 003, 004.
        negative_prompt: At most 2500 characters (not documented for this family).
        cfg_scale: JSON number in [0, 1] (not documented for this family).
        callback_url: Where the server POSTs the task (not documented here).
        external_task_id: Not documented for video-extend: the SDK does not add
            one, and one you set is sent with a warning (the gateway may ignore it).
    """

    video_id: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    cfg_scale: float | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class MultiImageToVideoRequest(CheckedModel):
    """Body of ``POST videos/multi-image2video``: up to 4 images and a prompt (seed 003).

    Attributes:
        model_name: ``MaaS_KeLing_V1.6`` (the only model seed 003 lists).
        image_list: 1 to 4 images (URL or plain base64; jpg/jpeg/png, at most 10 MB,
            sides of at least 300 px, aspect between 1:2.5 and 2.5:1). Required.
        prompt: At most 2500 characters. Required.
        negative_prompt: At most 2500 characters.
        mode: ``std`` or ``pro``. Default ``std``.
        duration: ``"5"`` or ``"10"`` seconds (string of digits or JSON integer).
            Default 5.
        aspect_ratio: ``16:9``, ``9:16`` or ``1:1``. Default ``16:9``.
        callback_url: Where the server POSTs the task on each status change.
        external_task_id: Your own id for the task (see text-to-video).
    """

    model_name: str | None = None
    image_list: list[ImageRef] | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    mode: str | None = None
    duration: IntLike | None = None
    aspect_ratio: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None
