"""Validation as data: one declarative rule table per endpoint family.

Each family module (``text2video``, ``omni_video``, ``turbo``...) holds a
:class:`RuleTable`: the request model that is the body's schema, and the rules,
each naming its field, what it requires, its tier (``blocks`` when a seed states
it, ``warns`` when the SDK infers it) and its source. :mod:`._kinds` and
:mod:`._images` are the kinds of rule the tables are written in; :mod:`._base`
applies a table. The endpoint table (:mod:`kling_async._endpoints`) points each
endpoint at its table, and :mod:`kling_async._validation` is the entry point the
session, the CLI, the batch and the fake gateway call. ``docs/validation.md`` is
generated from these tables.
"""

from __future__ import annotations

from ._base import INVALID, MISSING, Ctx, Hit, KlingWarning, Rule, RuleTable, When, apply_table
from ._known_models import KNOWN_MODELS, KnownModel, known_model
from .avatar import RULES as AVATAR
from .identify_face import RULES as IDENTIFY_FACE
from .image2video import RULES as IMAGE2VIDEO
from .image_generation import RULES as IMAGE_GENERATION
from .lip_sync import RULES as LIP_SYNC
from .multi_image2video import RULES as MULTI_IMAGE2VIDEO
from .omni_image import RULES as OMNI_IMAGE
from .omni_video import RULES as OMNI_VIDEO
from .text2video import RULES as TEXT2VIDEO
from .text_to_audio import RULES as TEXT_TO_AUDIO
from .turbo import IMAGE_RULES as TURBO_IMAGE2VIDEO
from .turbo import TEXT_RULES as TURBO_TEXT2VIDEO
from .video_extend import RULES as VIDEO_EXTEND

__all__ = [
    "AVATAR",
    "IDENTIFY_FACE",
    "IMAGE2VIDEO",
    "IMAGE_GENERATION",
    "INVALID",
    "KNOWN_MODELS",
    "LIP_SYNC",
    "MISSING",
    "MULTI_IMAGE2VIDEO",
    "OMNI_IMAGE",
    "OMNI_VIDEO",
    "TEXT2VIDEO",
    "TEXT_TO_AUDIO",
    "TURBO_IMAGE2VIDEO",
    "TURBO_TEXT2VIDEO",
    "VIDEO_EXTEND",
    "Ctx",
    "Hit",
    "KlingWarning",
    "KnownModel",
    "Rule",
    "RuleTable",
    "When",
    "apply_table",
    "known_model",
]
