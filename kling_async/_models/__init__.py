"""Request models: plain frozen attrs classes whose field names are the API's own.

Every field defaults to ``None``, meaning "not sent": the converter drops ``None``
values, so a model unstructures to exactly the JSON body the user described.
Values are sent as given and never coerced; a model refuses a value of the wrong
JSON type when it is built (:class:`~kling_async.ValidationError`, naming the
field), so ``duration=5.0``, ``multi_shot="false"`` or ``TrajectoryPoint(x=10.9)``
fail at once instead of being sent differently from what was written.

Binary inputs (images, masks, audio) are strings: a URL or base64 without a
``data:`` prefix. :mod:`kling_async._media` turns files and bytes into that base64.

Each class documents every field (meaning, units, allowed values, default and the
seed it comes from) in its ``Attributes:`` section, shown by ``help()``.
"""

from __future__ import annotations

from typing import Union

from ._json import CheckedModel, Finding, IntLike, NumberLike, Tier
from ._other import (
    AvatarRequest,
    IdentifyFaceRequest,
    ImageGenerationRequest,
    LipSyncRequest,
    OmniImageRequest,
    TextToAudioRequest,
    TurboImageToVideoRequest,
    TurboTextToVideoRequest,
)
from ._parts import (
    CameraConfig,
    CameraControl,
    DynamicMask,
    Element,
    FaceChoice,
    ImageRef,
    OmniImageRef,
    Shot,
    TrajectoryPoint,
    TurboContent,
    TurboOptions,
    TurboSettings,
    VideoRef,
    VoiceRef,
    WatermarkInfo,
)
from ._video import (
    ImageToVideoRequest,
    MultiImageToVideoRequest,
    OmniVideoRequest,
    TextToVideoRequest,
    VideoExtendRequest,
)

__all__ = [
    "AvatarRequest",
    "CameraConfig",
    "CameraControl",
    "CheckedModel",
    "DynamicMask",
    "Element",
    "FaceChoice",
    "Finding",
    "FloatLike",
    "IdentifyFaceRequest",
    "ImageGenerationRequest",
    "ImageRef",
    "ImageToVideoRequest",
    "IntLike",
    "LipSyncRequest",
    "MultiImageToVideoRequest",
    "NumberLike",
    "OmniImageRef",
    "OmniImageRequest",
    "OmniVideoRequest",
    "Request",
    "Shot",
    "TextToAudioRequest",
    "TextToVideoRequest",
    "Tier",
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

#: A JSON number (integer or float). Kept for code written against earlier
#: versions, where it also allowed numeric strings; those are now refused.
FloatLike = float

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
