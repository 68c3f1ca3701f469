"""Request models: plain frozen attrs classes whose field names are the API's own.

Every field defaults to ``None``, meaning "not sent": the converter drops ``None``
values, so a model unstructures to exactly the JSON body the user described.
Values are passed through as given (``duration="5"`` stays a string, ``duration=5``
stays a number) because the gateway's own examples use both; validation
normalises them when it checks limits.

Binary inputs (images, masks, audio) are strings: a URL or base64 without a
``data:`` prefix. :mod:`kling_async._media` turns files and bytes into that base64.
"""

from __future__ import annotations

from typing import Union

import attrs

__all__ = [
    "AvatarRequest",
    "CameraConfig",
    "CameraControl",
    "DynamicMask",
    "Element",
    "FaceChoice",
    "FloatLike",
    "IdentifyFaceRequest",
    "ImageGenerationRequest",
    "ImageRef",
    "ImageToVideoRequest",
    "IntLike",
    "LipSyncRequest",
    "MultiImageToVideoRequest",
    "OmniImageRef",
    "OmniImageRequest",
    "OmniVideoRequest",
    "Request",
    "Shot",
    "TextToAudioRequest",
    "TextToVideoRequest",
    "TrajectoryPoint",
    "TurboContent",
    "TurboImageToVideoRequest",
    "TurboOptions",
    "TurboSettings",
    "TurboTextToVideoRequest",
    "VideoExtendRequest",
    "VideoRef",
    "VoiceRef",
    "WatermarkInfo",
]

#: An integer the API accepts either as a JSON number or as a numeric string.
IntLike = Union[int, str]
#: A number the API accepts either as a JSON number or as a numeric string.
FloatLike = Union[float, int, str]


# --- nested types -------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class WatermarkInfo:
    """Whether to also produce a watermarked copy of each output.

    Attributes:
        enabled: ``True`` to generate the watermarked result as well.
    """

    enabled: bool | None = None


@attrs.frozen(kw_only=True)
class Shot:
    """One shot of a multi-shot video (an entry of ``multi_prompt``).

    Attributes:
        index: The shot's sequence number.
        prompt: What happens in this shot (at most 512 characters).
        duration: Seconds; at least 1; all shots add up to the task's duration.
    """

    index: IntLike | None = None
    prompt: str | None = None
    duration: IntLike | None = None


@attrs.frozen(kw_only=True)
class CameraConfig:
    """Movement amounts for a ``simple`` camera move: exactly one is non-zero.

    Attributes:
        horizontal: Move along x, in [-10, 10].
        vertical: Move along y, in [-10, 10].
        pan: Rotate around y, in [-10, 10].
        tilt: Rotate around x, in [-10, 10].
        roll: Rotate around z, in [-10, 10].
        zoom: Change the focal length, in [-10, 10].
    """

    horizontal: FloatLike | None = None
    vertical: FloatLike | None = None
    pan: FloatLike | None = None
    tilt: FloatLike | None = None
    roll: FloatLike | None = None
    zoom: FloatLike | None = None


@attrs.frozen(kw_only=True)
class CameraControl:
    """Camera movement for text-to-video and image-to-video (older models).

    Attributes:
        type: ``simple``, ``down_back``, ``forward_up``, ``right_turn_forward`` or
            ``left_turn_forward``.
        config: Required for ``simple`` and forbidden for the other types.
    """

    type: str | None = None
    config: CameraConfig | None = None


@attrs.frozen(kw_only=True)
class TrajectoryPoint:
    """One point of a motion-brush trajectory, origin at the image's bottom-left.

    Attributes:
        x: Pixel column.
        y: Pixel row, counted from the bottom.
    """

    x: int
    y: int


@attrs.frozen(kw_only=True)
class DynamicMask:
    """A motion-brush group: a painted area and the path it should follow.

    Attributes:
        mask: The painted area (URL or base64), same aspect as the input image.
        trajectories: 2 to 77 points.
    """

    mask: str | None = None
    trajectories: list[TrajectoryPoint] | None = None


@attrs.frozen(kw_only=True)
class Element:
    """A reference to a subject in the account's element library.

    Attributes:
        element_id: The subject's id (a number, or a numeric string).
    """

    element_id: IntLike


@attrs.frozen(kw_only=True)
class VoiceRef:
    """A voice referenced from the prompt as ``<<<voice_1>>>``.

    Attributes:
        voice_id: The voice's id.
    """

    voice_id: str


@attrs.frozen(kw_only=True)
class ImageRef:
    """An image of ``image_list`` (multi-image-to-video, omni-image).

    Attributes:
        image: URL or base64 without a ``data:`` prefix.
    """

    image: str


@attrs.frozen(kw_only=True)
class OmniImageRef:
    """An image of omni-video's ``image_list``.

    Attributes:
        image_url: URL or base64 without a ``data:`` prefix.
        type: ``first_frame`` or ``end_frame`` to use it as a frame; unset for a
            plain reference.
    """

    image_url: str
    type: str | None = None


@attrs.frozen(kw_only=True)
class VideoRef:
    """The reference video of omni-video's ``video_list`` (at most one).

    Attributes:
        video_url: URL of an MP4/MOV file.
        refer_type: ``feature`` (style reference) or ``base`` (video to edit).
        keep_original_sound: ``yes`` or ``no``.
    """

    video_url: str
    refer_type: str | None = None
    keep_original_sound: str | None = None


@attrs.frozen(kw_only=True)
class FaceChoice:
    """Which face to lip-sync and the audio to put on it.

    Attributes:
        face_id: A ``face_id`` returned by identify-face.
        audio_id: An audio id; exactly one of ``audio_id`` and ``sound_file``.
        sound_file: Audio URL or base64 (mp3/wav/m4a, at most 5 MB).
        sound_start_time: Clip start in the audio, milliseconds.
        sound_end_time: Clip end in the audio, milliseconds.
        sound_insert_time: Where the clip starts in the video, milliseconds.
        sound_volume: In [0, 2].
        original_audio_volume: In [0, 2].
    """

    face_id: str | None = None
    audio_id: str | None = None
    sound_file: str | None = None
    sound_start_time: IntLike | None = None
    sound_end_time: IntLike | None = None
    sound_insert_time: IntLike | None = None
    sound_volume: FloatLike | None = None
    original_audio_volume: FloatLike | None = None


@attrs.frozen(kw_only=True)
class TurboSettings:
    """Output settings of the turbo endpoints.

    Attributes:
        resolution: ``720p`` or ``1080p``.
        aspect_ratio: ``16:9``, ``9:16`` or ``1:1`` (text-to-video only).
        duration: Seconds.
    """

    resolution: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None


@attrs.frozen(kw_only=True)
class TurboOptions:
    """General options of the turbo endpoints.

    Attributes:
        callback_url: Where the server POSTs status changes.
        external_task_id: Your own id for the task, unique per account.
        watermark_info: Watermark switch.
    """

    callback_url: str | None = None
    external_task_id: str | None = None
    watermark_info: WatermarkInfo | None = None


@attrs.frozen(kw_only=True)
class TurboContent:
    """One entry of turbo image-to-video's ``contents``.

    Attributes:
        type: ``prompt`` or ``first_frame``.
        text: The prompt text, for ``type="prompt"``.
        url: The image URL or base64, for ``type="first_frame"``.
    """

    type: str
    text: str | None = None
    url: str | None = None


# --- request bodies -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TextToVideoRequest:
    """Body of ``POST videos/text2video``.

    Single-shot: set ``prompt``. Multi-shot: ``multi_shot=True`` with
    ``shot_type="customize"`` and ``multi_prompt`` (1 to 6 shots whose durations add
    up to ``duration``), or ``shot_type="intelligence"`` with a ``prompt``.
    """

    model_name: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Shot] | None = None
    voice_list: list[VoiceRef] | None = None
    sound: str | None = None
    cfg_scale: FloatLike | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None
    camera_control: CameraControl | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class ImageToVideoRequest:
    """Body of ``POST videos/image2video``.

    At least one of ``image`` (first frame) and ``image_tail`` (last frame). Motion
    brush through ``static_mask`` and ``dynamic_masks``; subjects through
    ``element_list``; voices through ``voice_list`` and ``<<<voice_1>>>`` in the
    prompt (``sound`` must then be ``on``).
    """

    model_name: str | None = None
    image: str | None = None
    image_tail: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    multi_shot: bool | None = None
    shot_type: str | None = None
    multi_prompt: list[Shot] | None = None
    element_list: list[Element] | None = None
    voice_list: list[VoiceRef] | None = None
    sound: str | None = None
    cfg_scale: FloatLike | None = None
    mode: str | None = None
    aspect_ratio: str | None = None
    duration: IntLike | None = None
    static_mask: str | None = None
    dynamic_masks: list[DynamicMask] | None = None
    camera_control: CameraControl | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class OmniVideoRequest:
    """Body of ``POST videos/omni-video``.

    References go in ``image_list`` (frames or references), ``element_list`` and
    ``video_list`` (at most one video; ``sound`` must be off with it), referred to
    from the prompt as ``<<<image_1>>>``, ``<<<element_1>>>``, ``<<<video_1>>>``.
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
class VideoExtendRequest:
    """Body of ``POST videos/video-extend``: continue a generated video.

    ``video_id`` is the ``id`` of a video output (not the task id).
    """

    video_id: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    cfg_scale: FloatLike | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class MultiImageToVideoRequest:
    """Body of ``POST videos/multi-image2video``: up to 4 images and a prompt."""

    model_name: str | None = None
    image_list: list[ImageRef] | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    mode: str | None = None
    duration: IntLike | None = None
    aspect_ratio: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class IdentifyFaceRequest:
    """Body of ``POST videos/identify-face`` (synchronous, no task).

    Exactly one of ``video_id`` (a Kling-generated video) and ``video_url``.
    """

    video_id: str | None = None
    video_url: str | None = None


@attrs.frozen(kw_only=True)
class LipSyncRequest:
    """Body of ``POST videos/advanced-lip-sync``.

    ``session_id`` comes from identify-face; ``face_choose`` names one face.
    """

    session_id: str | None = None
    face_choose: list[FaceChoice] | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class AvatarRequest:
    """Body of ``POST videos/avatar/image2video`` (digital human).

    ``image`` is required, with exactly one of ``audio_id`` and ``sound_file``.
    """

    image: str | None = None
    audio_id: str | None = None
    sound_file: str | None = None
    prompt: str | None = None
    mode: str | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class ImageGenerationRequest:
    """Body of ``POST images/generations``: ``n`` (1 to 9) images from a prompt."""

    model_name: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    image: str | None = None
    image_reference: str | None = None
    element_list: list[Element] | None = None
    resolution: str | None = None
    n: IntLike | None = None
    aspect_ratio: str | None = None
    watermark_info: WatermarkInfo | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class OmniImageRequest:
    """Body of ``POST images/omni-image``: single images or a series."""

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
class TextToAudioRequest:
    """Body of ``POST audio/text-to-audio``: a sound effect from a prompt.

    ``prompt`` at most 200 characters; ``duration`` 3.0 to 10.0 seconds, one decimal.
    """

    prompt: str | None = None
    duration: FloatLike | None = None
    callback_url: str | None = None
    external_task_id: str | None = None


@attrs.frozen(kw_only=True)
class TurboTextToVideoRequest:
    """Body of ``POST videos/text-to-video/kling-3.0-turbo`` (turbo host)."""

    prompt: str | None = None
    settings: TurboSettings | None = None
    options: TurboOptions | None = None


@attrs.frozen(kw_only=True)
class TurboImageToVideoRequest:
    """Body of ``POST videos/image-to-video/kling-3.0-turbo`` (turbo host).

    ``contents`` holds a ``first_frame`` image and optionally a ``prompt``.
    """

    contents: list[TurboContent] | None = None
    settings: TurboSettings | None = None
    options: TurboOptions | None = None


#: Any request body the session can send.
Request = Union[
    TextToVideoRequest,
    ImageToVideoRequest,
    OmniVideoRequest,
    VideoExtendRequest,
    MultiImageToVideoRequest,
    IdentifyFaceRequest,
    LipSyncRequest,
    AvatarRequest,
    ImageGenerationRequest,
    OmniImageRequest,
    TextToAudioRequest,
    TurboTextToVideoRequest,
    TurboImageToVideoRequest,
]
