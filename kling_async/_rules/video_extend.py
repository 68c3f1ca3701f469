"""Rules of ``videos/video-extend`` (seeds 003, 004).

The seeds document ``video_id`` and ``prompt`` only; the model's other fields are
sent when set, each with a warning. The endpoint table marks the family as not
accepting ``external_task_id``, so the SDK never adds one here.
"""

from __future__ import annotations

from .._models import VideoExtendRequest
from ._base import RuleTable
from ._kinds import number_range, required, sdk, seed, undocumented
from ._shared import common_rules, prompt_rules

__all__ = ["RULES"]

_ONLY = sdk("seeds 003/004 document video_id and prompt only for video-extend")

RULES = RuleTable(
    family="video-extend",
    model=VideoExtendRequest,
    seeds=("003", "004"),
    rules=(
        required(
            "video_id",
            because=" (the id of a generated video)",
            source=seed("003", "Video Extension, video_id", "required"),
        ),
        *prompt_rules("003", "Video Extension"),
        number_range(
            "cfg_scale", 0, 1, source=seed("003", "Text/Image to Video, cfg_scale", "range [0, 1]")
        ),
        undocumented("negative_prompt", "video-extend", source=_ONLY),
        undocumented("cfg_scale", "video-extend", source=_ONLY),
        undocumented("callback_url", "video-extend", source=_ONLY),
        undocumented("external_task_id", "video-extend", source=_ONLY),
        *common_rules("seeds 003/004 do not document external_task_id for video-extend"),
    ),
)
