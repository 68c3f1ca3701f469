"""Rules of ``videos/identify-face`` (seed 003)."""

from __future__ import annotations

from .._models import IdentifyFaceRequest
from ._base import RuleTable
from ._kinds import exactly_one, seed, url

__all__ = ["RULES"]

RULES = RuleTable(
    family="identify-face",
    model=IdentifyFaceRequest,
    seeds=("003",),
    rules=(
        exactly_one(
            "video_id",
            "video_url",
            source=seed(
                "003",
                "Face Recognition, video_id/video_url",
                "choose one; not both empty, not both set",
            ),
        ),
        url(
            "video_url",
            source=seed(
                "003", "Face Recognition, video_url", "the URL the uploaded video is fetched from"
            ),
        ),
    ),
)
