"""Every answer field the seeds show reaches Task, and hostile answers raise only KlingError."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_async import KlingError, ResponseDecodeError, TaskStatus
from kling_async._converter import parse_face_session, parse_task
from kling_async._endpoints import endpoint_for
from kling_async._models import WatermarkInfo
from kling_async._task import Charge, ms_to_datetime

# Seed 003/004 query answers print the times inside task_result.
SEED_003_QUERY = {
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"task_id": "t-003", "external_task_id": "mine-1"},
    "task_result": {
        "videos": [{"id": "v1", "url": "https://cdn.example/v.mp4", "duration": "5.041"}],
        "created_at": 1722769557708,
        "updated_at": 1722769557709,
    },
}
# Seed 001 omni-image query answer.
SEED_001_OMNI_IMAGE = {
    "task_id": "t-001",
    "task_status": "succeed",
    "task_status_msg": "",
    "task_info": {"external_task_id": "mine-2"},
    "task_result": {
        "result_type": "series",
        "images": [
            {
                "index": 0,
                "url": "https://cdn.example/a.png",
                "watermark_url": "https://cdn.example/a_wm.png",
            }
        ],
        "series_images": [
            {
                "index": 0,
                "url": "https://cdn.example/s.png",
                "watermark_url": "https://cdn.example/s_wm.png",
            }
        ],
    },
    "watermark_info": {"enabled": True},
    "final_unit_deduction": "2",
    "created_at": 1722769557708,
    "updated_at": 1722769557708,
}
# Seed 002 turbo batch query entry.
SEED_002_TURBO = {
    "id": "901930004609634393",
    "status": "succeeded",
    "message": "",
    "outputs": [
        {
            "type": "video",
            "id": "901930006506119262",
            "url": "https://cdn.example/t.mp4",
            "duration": "5.041",
        }
    ],
    "billing": [
        {"amount": "5", "charge_type": "unit", "package_type": "video"},
        {"amount": "1.5", "charge_type": "unit", "package_type": "sound"},
    ],
    "create_time": 1783065388949,
    "update_time": 1783065455355,
}


def test_times_inside_task_result_are_read() -> None:
    """created_at/updated_at printed inside task_result (seeds 003/004) are not lost."""
    task = parse_task(endpoint_for("text2video"), SEED_003_QUERY)
    assert task.id == "t-003"
    assert task.created_at == datetime.fromtimestamp(1722769557.708, tz=timezone.utc)
    assert task.updated_at == datetime.fromtimestamp(1722769557.709, tz=timezone.utc)
    assert task.external_id == "mine-1"


def test_result_type_and_watermark_info_reach_the_task() -> None:
    """Omni-image's result_type and watermark_info are on Task."""
    task = parse_task(endpoint_for("omni-image"), SEED_001_OMNI_IMAGE, request_id="req-9")
    assert task.result_type == "series"
    assert task.watermark_info == WatermarkInfo(enabled=True)
    assert task.request_id == "req-9"
    assert task.units == 2.0


def test_watermarked_files_are_opt_in() -> None:
    """files lists originals; output_files(watermarked=True) adds each watermarked copy."""
    task = parse_task(endpoint_for("omni-image"), SEED_001_OMNI_IMAGE)
    assert [f.url for f in task.files] == ["https://cdn.example/a.png", "https://cdn.example/s.png"]
    marked = task.output_files(watermarked=True)
    assert [(f.url, f.watermarked) for f in marked] == [
        ("https://cdn.example/a.png", False),
        ("https://cdn.example/a_wm.png", True),
        ("https://cdn.example/s.png", False),
        ("https://cdn.example/s_wm.png", True),
    ]
    assert marked[1].name == "t-001_image_wm_0.png"
    assert len({f.name for f in marked}) == 4


def test_turbo_billing_lines_are_kept() -> None:
    """Turbo billing keeps charge_type and package_type per line; units is their sum."""
    task = parse_task(endpoint_for("turbo-text2video"), SEED_002_TURBO, external_id="mine-3")
    assert task.billing == (
        Charge(amount=5.0, charge_type="unit", package_type="video"),
        Charge(amount=1.5, charge_type="unit", package_type="sound"),
    )
    assert task.units == 6.5
    assert task.status is TaskStatus.SUCCEED
    assert task.external_id == "mine-3"
    assert task.created_at == ms_to_datetime(1783065388949)


def test_external_id_in_the_answer_wins_over_the_callers() -> None:
    """The id the answer carries is kept; the caller's is only a fallback."""
    task = parse_task(
        "turbo-text2video", {**SEED_002_TURBO, "external_id": "theirs"}, external_id="mine"
    )
    assert task.external_id == "theirs"


@pytest.mark.parametrize(
    "data",
    [{}, {"task_status": "succeed"}, {"task_id": ["x"]}, {"task_id": 1.5}, {"task_id": True}],
)
def test_missing_or_ill_typed_task_id_is_a_decode_error(data: dict[str, Any]) -> None:
    """Without a usable id the answer cannot be a task: ResponseDecodeError, nothing else."""
    with pytest.raises(ResponseDecodeError):
        parse_task("text2video", data)


def test_non_object_task_is_a_decode_error() -> None:
    """A task that is not an object is refused with ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError):
        parse_task("text2video", ["task_id"])


def test_hostile_optional_fields_are_dropped() -> None:
    """Ill-typed optional fields never crash parsing; they are dropped and kept in raw."""
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    data = {
        "task_id": 10**5000,
        "task_status": ["succeed"],
        "created_at": "nan",
        "updated_at": 10**400,
        "task_info": deep,
        "task_result": {
            "images": [{"index": "nan", "url": 5}, {"index": 1e308}, "junk"],
            "videos": {"not": "a list"},
            "audios": [{"duration": "inf", "url_mp3": "https://cdn.example/a.mp3"}],
        },
        "final_unit_deduction": {"x": 1},
        "watermark_info": {"enabled": "yes"},
    }
    with pytest.raises(ResponseDecodeError):  # an id beyond Python's int-to-str limit
        parse_task("image-generation", data)
    data["task_id"] = 12345678901234567890
    task = parse_task("image-generation", data)
    assert task.id == "12345678901234567890"
    assert task.status is TaskStatus.UNKNOWN
    assert task.created_at is None
    assert task.updated_at is None
    assert [i.index for i in task.images] == [0, int(1e308)]
    assert task.images[0].url is None
    assert task.audios[0].duration is None
    assert task.units is None
    assert task.watermark_info == WatermarkInfo(enabled=None)
    assert task.raw is data


def test_face_session_needs_a_session_id() -> None:
    """identify-face answers without a session id raise ResponseDecodeError."""
    with pytest.raises(ResponseDecodeError):
        parse_face_session({"face_data": []})
    session = parse_face_session(
        {
            "session_id": 7,
            "face_data": [
                {"face_id": "0", "start_time": "0", "end_time": 5300},
                {"face_image": "no id"},
            ],
        }
    )
    assert session.session_id == "7"
    assert [(f.face_id, f.start_time, f.end_time) for f in session.faces] == [("0", 0, 5300)]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = [
    "task_id",
    "id",
    "task_status",
    "status",
    "task_status_msg",
    "message",
    "task_info",
    "task_result",
    "created_at",
    "updated_at",
    "create_time",
    "update_time",
    "outputs",
    "billing",
    "final_unit_deduction",
    "watermark_info",
    "external_id",
    "external_task_id",
]
_TASKISH = st.dictionaries(st.sampled_from(_KEYS), _JSON, max_size=8)


@settings(
    max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    data=st.one_of(_JSON, _TASKISH),
    endpoint=st.sampled_from(["text2video", "turbo-image2video", "omni-image", "callback"]),
)
def test_parse_task_raises_only_kling_errors(data: Any, endpoint: str) -> None:
    """Arbitrary JSON (as decoded) parses to a Task or raises a KlingError, never else."""
    target: Any = endpoint_for(endpoint) if endpoint != "callback" else endpoint
    try:
        task = parse_task(target, data)
    except KlingError:
        return
    assert isinstance(task.id, str)
    assert task.id
    json.dumps([f.url for f in task.output_files(watermarked=True)])
