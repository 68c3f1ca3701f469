"""Rules of ``videos/advanced-lip-sync`` (seed 003)."""

from __future__ import annotations

from collections.abc import Iterator

from .._media import SOUND_FILE_MAX_BYTES
from .._models import LipSyncRequest
from ._base import INVALID, Ctx, Hit, RuleTable
from ._kinds import (
    as_int,
    audio,
    count_at_most,
    custom,
    exactly_one,
    number_range,
    required,
    seed,
)
from ._shared import common_rules

__all__ = ["RULES"]

_FACE = seed(
    "003",
    "Lip Sync, face_choose",
    "a single face for now; face_id required; one of audio_id and sound_file",
)
_TIMES = seed(
    "003", "Lip Sync, sound_*_time", "required, in ms from 0; the clipped audio lasts 2 to 60 s"
)
_AUDIO = seed("003", "Lip Sync, sound_file", "URL or base64 of mp3/wav/m4a, at most 5 MB")
_VOLUME = seed("003", "Lip Sync, sound_volume/original_audio_volume", "range [0, 2]")


def _need_face(ctx: Ctx) -> Iterator[Hit]:
    if ctx.get("face_choose") is not INVALID and ctx.count("face_choose") == 0:
        yield Hit("face_choose", None, "required: exactly one face")


def _clip_length(ctx: Ctx) -> Iterator[Hit]:
    for path, _ in ctx.entries("face_choose"):
        start = as_int(ctx.get(f"{path}.sound_start_time"))
        end = as_int(ctx.get(f"{path}.sound_end_time"))
        if start is None or end is None or start < 0 or end < 0:
            continue
        if not 2000 <= end - start <= 60000:
            yield Hit(
                f"{path}.sound_end_time",
                end,
                f"the clipped audio lasts {end - start} ms; it must last 2000 to 60000 ms",
            )


RULES = RuleTable(
    family="lip-sync",
    model=LipSyncRequest,
    seeds=("003",),
    rules=(
        required(
            "session_id",
            because=" (from identify-face)",
            source=seed("003", "Lip Sync, session_id", "required, from face recognition"),
        ),
        custom("face_choose", "required", "exactly one face", _need_face, source=_FACE),
        count_at_most(
            "face_choose",
            1,
            "faces",
            message="{count} {noun}; exactly one is supported",
            source=_FACE,
        ),
        required("face_choose[].face_id", because=" (from identify-face)", source=_FACE),
        exactly_one("audio_id", "sound_file", within="face_choose", source=_FACE),
        audio("face_choose[].sound_file", max_bytes=SOUND_FILE_MAX_BYTES, source=_AUDIO),
        required("face_choose[].sound_start_time", source=_TIMES),
        number_range("face_choose[].sound_start_time", 0, None, source=_TIMES),
        required("face_choose[].sound_end_time", source=_TIMES),
        number_range("face_choose[].sound_end_time", 0, None, source=_TIMES),
        required("face_choose[].sound_insert_time", source=_TIMES),
        number_range("face_choose[].sound_insert_time", 0, None, source=_TIMES),
        custom(
            "face_choose[].sound_end_time",
            "clip_length",
            "clip lasts 2 to 60 s",
            _clip_length,
            source=_TIMES,
        ),
        number_range("face_choose[].sound_volume", 0, 2, source=_VOLUME),
        number_range("face_choose[].original_audio_volume", 0, 2, source=_VOLUME),
        *common_rules("seed 003 documents external_task_id for lip-sync"),
    ),
)
