"""Fidelity: every response example of the seeds has a twin from the fake with the same shape.

Each seed example is copied below (long URLs shortened; values do not matter, only
keys and value types). The fake's twin, produced under the same conditions, must
have the same keys and the same JSON types, recursively. Two extras are tolerated
where the seeds disagree with each other, and nowhere else:

- ``task_info.external_task_id`` when the request carried one (seeds 001 and 003
  echo it; seed 000's image-to-video example does not),
- ``final_unit_deduction`` on terminal tasks of the families whose seed omits it
  (multi-image, lip-sync, avatar: seed 003/001), because units drive budgets,
- ``task_info.parent_video`` on families whose seed 001 schema omits it while
  seed 000 shows it (``null``) for the same kind of task.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kling_async.testing import FakeConfig, FakeGateway, run_fake_gateway

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}

# --- seed 000 (MaaS_KL_v3) -------------------------------------------------------------

T2V_PROCESSING = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868602593017598033",
 "task_status": "processing", "created_at": 1775119514814, "updated_at": 1775119524744,
 "task_status_msg": "", "task_info": {"parent_video": null}, "task_result": {}},
 "request_id": "ea45fa79-c2bf-4545-922f-5647c5d5218d"}"""

T2V_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868890153925369900",
 "task_status": "succeed", "created_at": 1775188074674, "updated_at": 1775188152228,
 "task_status_msg": "", "task_info": {"parent_video": null}, "task_result": {"videos": [
 {"id": "868890154063794228", "url": "https://v1-fdl.kechuangai.com/ksc2/Z.mp4?cacheKey=C",
 "duration": "5.041", "watermark_url": null}]}, "final_unit_deduction": "6"},
 "request_id": "21ff9a73-562f-4b7e-9f9a-4e12994cc080"}"""

I2V_CREATE = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868890892747673686",
 "task_status": "submitted", "created_at": 1775188250826, "updated_at": 1775188250826,
 "task_info": {"parent_video": null}}, "request_id": "e9eb1aff-f64a-40bf-b9a5-b9ff45adaa8e"}"""

I2V_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868890892747673686",
 "task_status": "succeed", "created_at": 1775188250826, "updated_at": 1775188467595,
 "task_status_msg": "", "task_info": {"parent_video": null}, "task_result": {"videos": [
 {"id": "868890892911263836", "url": "https://v4-fdl.kechuangai.com/ksc2/5.mp4?cacheKey=C",
 "duration": "5.041", "watermark_url": null}]}, "final_unit_deduction": "6"},
 "request_id": "091dc51b-589d-4d5b-9c1a-430ab0ba4cce"}"""

IMAGES_CREATE = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868892585292099640",
 "task_status": "submitted", "created_at": 1775188654357, "updated_at": 1775188654357,
 "task_info": {"parent_video": null}}, "request_id": "68329d65-ee21-4013-9aa6-f0bc2cc07744"}"""

IMAGES_FAILED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868892585292099640",
 "task_status": "failed", "created_at": 1775188654357, "updated_at": 1775188656386,
 "task_status_msg": "Image format is invalid", "task_info": {"parent_video": null},
 "task_result": {"images": null, "result_type": null, "series_images": null},
 "final_unit_deduction": "0"}, "request_id": "a699ea31-8369-4b80-a796-7ca574d5ddf8"}"""

AUDIO_CREATE = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "871457979416604766",
 "task_status": "submitted", "created_at": 1775800291981, "updated_at": 1775800291981,
 "task_info": {}}, "request_id": "828f9782-d2e1-4550-a36d-e715ae2ae037"}"""

AUDIO_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "871457647223545935",
 "task_status": "succeed", "created_at": 1775800212780, "updated_at": 1775800228263,
 "task_status_msg": "", "task_info": {}, "task_result": {"audios": [{"id": "871457647265472604",
 "url": null, "duration": null, "url_mp3": "https://v1-fdl.kechuangai.com/ksc2/E.mp3?c=1",
 "url_wav": "https://v1-fdl.kechuangai.com/ksc2/a.wav?c=1", "duration_mp3": "3.056",
 "duration_wav": "3.0"}]}, "final_unit_deduction": "0.25"},
 "request_id": "5571ddf9-0c33-44cd-8087-300bb47688ab"}"""

# --- seed 001 (Omni; documented as annotated schemas, here with their example types) -

OMNI_VIDEO_CREATE = """{"code": 0, "message": "string", "request_id": "string", "data": {
 "task_id": "string", "task_info": {"external_task_id": "string"}, "task_status": "string",
 "created_at": 1722769557708, "updated_at": 1722769557708}}"""

OMNI_VIDEO_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "868616892989575248",
 "task_status": "succeed", "created_at": 1775122924191, "updated_at": 1775123026539,
 "task_status_msg": "", "task_info": {"parent_video": null}, "task_result": {"videos": [
 {"id": "868616893207679062", "url": "{video}", "duration": "5.041", "watermark_url": null}]},
 "final_unit_deduction": "5"}, "request_id": "7eee6cf0-4870-469c-ba6e-48df0fa5c396"}"""

OMNI_IMAGE_CREATE = OMNI_VIDEO_CREATE

OMNI_IMAGE_SUCCEED = """{"code": 0, "message": "string", "request_id": "string", "data": {
 "task_id": "string", "task_status": "string", "task_status_msg": "string",
 "task_info": {"external_task_id": "string"}, "task_result": {"result_type": "single",
 "images": [{"index": 0, "url": "string", "watermark_url": "string"}],
 "series_images": [{"index": 0, "url": "string", "watermark_url": "string"}]},
 "watermark_info": {"enabled": true}, "final_unit_deduction": "string",
 "created_at": 1722769557708, "updated_at": 1722769557708}}"""

AVATAR_CREATE = OMNI_VIDEO_CREATE

AVATAR_SUCCEED = """{"code": 0, "message": "string", "request_id": "string", "data": {
 "task_id": "string", "task_status": "string", "task_status_msg": "string",
 "task_info": {"external_task_id": "string"}, "task_result": {"videos": [{"id": "string",
 "url": "string", "duration": "string"}]}, "created_at": 1722769557708,
 "updated_at": 1722769557708}}"""

# --- seed 002 (turbo) -------------------------------------------------------------------

TURBO_CREATE = """{"code": 0, "message": "SUCCEED", "data": {"id": "901930004609634393",
 "status": "submitted", "message": "", "create_time": 1783065388949,
 "update_time": 1783065388949}, "request_id": "ed6ce13d-7c9b-48cc-ba5c-e4ba5c260a60"}"""

TURBO_TASKS = """{"code": 0, "message": "SUCCEED", "data": [{"id": "901930004609634393",
 "status": "succeeded", "message": "", "outputs": [{"type": "video", "id": "901930006506119262",
 "url": "https://v16-kling-fdl.klingai.com/bs2/x.mp4?cacheKey=C&ksTime=6a6ef86e",
 "duration": "5.041"}], "billing": [{"amount": "5", "charge_type": "unit",
 "package_type": "video"}], "create_time": 1783065388949, "update_time": 1783065455355}],
 "request_id": "e508ec0e-feb7-4d18-815d-47b52a57cad7"}"""

# --- seed 003 (V1.6-V2.6) ---------------------------------------------------------------

MULTI_IMAGE_CREATE = """{"code": 0, "message": "SUCCEED", "data": {
 "task_id": "xiaoshuvideo03013018412", "task_status": "submitted", "created_at": 1761532694501,
 "updated_at": 1761532694501, "task_info": {"external_task_id": "xiaoshuvideo03013018412"}},
 "request_id": "ba150df0-c007-4938-9a47-24ea2b561d6d"}"""

MULTI_IMAGE_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {
 "task_id": "xiaoshuvideo03013018412", "task_status": "succeed", "created_at": 1761532694501,
 "updated_at": 1761532868356, "task_status_msg": "",
 "task_info": {"external_task_id": "xiaoshuvideo03013018412"}, "task_result": {"videos": [
 {"id": "$videoId", "url": "$videoUrl", "duration": "10.433"}]}},
 "request_id": "7b9cf699-3f13-4727-93da-a64faf0e1ab4"}"""

IDENTIFY_FACE = """{"code": 0, "message": "SUCCEED", "data": {"session_id": "811680659520897082",
 "face_data": [{"face_id": "0", "face_image": "https://p2-kling.klingai.com/bs2/3d.jpg?x=1",
 "start_time": 0, "end_time": 5300}]}, "request_id": "91d74957-cdbc-4a85-b51a-c5da7d274203"}"""

LIP_SYNC_CREATE = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "xiaosuvideo12315",
 "task_status": "submitted", "created_at": 1761622385339, "updated_at": 1761622385339,
 "task_info": {"external_task_id": "xiaosuvideo12315"}},
 "request_id": "76edcdda-dfe0-496d-9e22-d52d59def11d"}"""

LIP_SYNC_SUCCEED = """{"code": 0, "message": "SUCCEED", "data": {"task_id": "xiaosuvideo12315",
 "task_status": "succeed", "created_at": 1761622385339, "updated_at": 1761622537187,
 "task_status_msg": "", "task_info": {"external_task_id": "xiaosuvideo12315", "parent_video": {
 "id": "811980644103909440", "url": "https://v2-kling.kechuangai.com/bs2/o.mp4?x=1",
 "duration": "5.041"}}, "task_result": {"videos": [{"id": "811991528977109066",
 "url": "https://v1-kling.kechuangai.com/bs2/e.mp4?x=1", "duration": "4.966"}]}},
 "request_id": "2f4952ad-c67a-4828-89e1-094b1d7d368f"}"""

VIDEO_EXTEND_SUCCEED = """{"code": 0, "message": "string", "request_id": "string", "data": {
 "task_id": "string", "task_status": "string", "task_status_msg": "string", "task_info": {
 "parent_video": {"id": "string", "url": "string", "duration": "string"}}, "task_result": {
 "videos": [{"id": "string", "url": "string", "duration": "string"}]},
 "created_at": 1722769557708, "updated_at": 1722769557708}}"""

EXTRA_EXTERNAL_ID = frozenset({"external_task_id"})
EXTRA_UNITS = frozenset({"final_unit_deduction"})


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def assert_same_shape(
    seed: Any, twin: Any, path: str = "$", extra: frozenset[str] = frozenset()
) -> None:
    """Fail unless ``twin`` has ``seed``'s keys and JSON types, recursively."""
    assert _type_name(twin) == _type_name(seed), (
        f"{path}: fake has {_type_name(twin)}, seed has {_type_name(seed)}"
    )
    if isinstance(seed, dict):
        missing = set(seed) - set(twin)
        surplus = set(twin) - set(seed) - extra
        assert not missing, f"{path}: fake lacks {sorted(missing)}"
        assert not surplus, f"{path}: fake adds {sorted(surplus)}"
        for key in seed:
            assert_same_shape(seed[key], twin[key], f"{path}.{key}", extra)
    elif isinstance(seed, list) and seed:
        for index, item in enumerate(twin):
            assert_same_shape(seed[0], item, f"{path}[{index}]", extra)


class Api:
    """Raw HTTP calls to the fake, exactly as curl would make them."""

    def __init__(self, fake: FakeGateway, http: aiohttp.ClientSession) -> None:
        self.fake = fake
        self.http = http

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.fake.url}{PREFIX}/{path}", json=body, headers=AUTH
        ) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(f"{self.fake.url}{PREFIX}/{path}", headers=AUTH) as response:
            assert response.status == 200, await response.text()
            result: dict[str, Any] = await response.json()
            return result

    def finish_all(self) -> None:
        self.fake.advance(10_000.0)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with (
        # Real-scale lives: a snapshot changes only when a test calls advance().
        run_fake_gateway(FakeConfig(time_scale=1.0)) as fake,
        aiohttp.ClientSession() as http,
    ):
        yield Api(fake, http)


async def test_text2video_processing_twin(api: Api) -> None:
    """A text-to-video task seen while processing matches seed 000's snapshot shape."""
    created = await api.post(
        "videos/text2video", {"prompt": "lion", "mode": "pro", "duration": "5"}
    )
    record = api.fake.task_records()[0]
    api.fake.advance((record["started"] + record["completes_at"]) / 2 - api.fake.now())
    twin = await api.get(f"videos/text2video/{created['data']['task_id']}")
    assert twin["data"]["task_status"] == "processing"
    assert_same_shape(json.loads(T2V_PROCESSING), twin)


async def test_text2video_succeed_twin(api: Api) -> None:
    """seed 000's succeeded text-to-video query (pro, sound on, 5 s: 6 units) has a twin."""
    body = {"model_name": "kling-v3", "prompt": "lion", "mode": "pro", "sound": "on",
            "aspect_ratio": "16:9", "duration": "5"}  # fmt: skip
    created = await api.post("videos/text2video", body)
    api.finish_all()
    twin = await api.get(f"videos/text2video/{created['data']['task_id']}")
    assert_same_shape(json.loads(T2V_SUCCEED), twin)
    assert twin["data"]["final_unit_deduction"] == "6"


async def test_image2video_create_and_succeed_twins(api: Api) -> None:
    """seed 000's image-to-video create and succeeded query have twins."""
    body = {"model_name": "kling-v2-6", "prompt": "kong", "image": "https://example.com/a.jpg",
            "mode": "pro", "sound": "on", "aspect_ratio": "16:9", "duration": "5",
            "external_task_id": "external_task_id"}  # fmt: skip
    created = await api.post("videos/image2video", body)
    assert_same_shape(json.loads(I2V_CREATE), created, extra=EXTRA_EXTERNAL_ID)
    api.finish_all()
    twin = await api.get("videos/image2video/external_task_id")
    assert_same_shape(json.loads(I2V_SUCCEED), twin, extra=EXTRA_EXTERNAL_ID)


async def test_image_generation_create_and_failed_twins() -> None:
    """seed 000's image-generation create and failed query ("0" units) have twins."""
    async with (
        run_fake_gateway(FakeConfig(time_scale=0.001, fail_rate=1.0)) as fake,
        aiohttp.ClientSession() as http,
    ):
        api = Api(fake, http)
        body = {"model_name": "kling-v3", "prompt": "digits",
                    "element_list": [{"element_id": "160"}], "resolution": "2k", "n": "9",
                    "aspect_ratio": "3:2", "external_task_id": "", "callback_url": ""}  # fmt: skip
        created = await api.post("images/generations", body)
        assert_same_shape(json.loads(IMAGES_CREATE), created)
        api.finish_all()
        twin = await api.get(f"images/generations/{created['data']['task_id']}")
    assert_same_shape(json.loads(IMAGES_FAILED), twin)
    assert twin["data"]["task_status_msg"]


async def test_text_to_audio_create_and_succeed_twins(api: Api) -> None:
    """seed 000's text-to-audio create and succeeded query (0.25 units) have twins."""
    body = {"prompt": "fireworks", "duration": 3, "external_task_id": "", "callback_url": ""}
    created = await api.post("audio/text-to-audio", body)
    assert_same_shape(json.loads(AUDIO_CREATE), created)
    api.finish_all()
    twin = await api.get(f"audio/text-to-audio/{created['data']['task_id']}")
    assert_same_shape(json.loads(AUDIO_SUCCEED), twin)
    assert twin["data"]["final_unit_deduction"] == "0.25"


async def test_omni_video_twins(api: Api) -> None:
    """seed 001's omni-video create (with external id) and succeeded query have twins."""
    body = {"multi_shot": True, "shot_type": "customize", "prompt": "",
            "multi_prompt": [{"index": 1, "prompt": "bench", "duration": "2"},
                             {"index": 2, "prompt": "car", "duration": "3"}],
            "image_list": [], "video_list": [], "mode": "pro", "sound": "on",
            "aspect_ratio": "16:9", "duration": 5,
            "external_task_id": "kling-v3-omni-video-test001"}  # fmt: skip
    created = await api.post("videos/omni-video", body)
    assert_same_shape(json.loads(OMNI_VIDEO_CREATE), created, extra=frozenset({"parent_video"}))
    api.finish_all()
    twin = await api.get("videos/omni-video/kling-v3-omni-video-test001")
    assert_same_shape(json.loads(OMNI_VIDEO_SUCCEED), twin, extra=EXTRA_EXTERNAL_ID)


async def test_omni_image_twins(api: Api) -> None:
    """seed 001's omni-image schema (series, watermark on) has a twin."""
    body = {"prompt": "covers", "image_list": [{"image": "https://example.com/a.png"}],
            "resolution": "2k", "result_type": "series", "series_amount": 2,
            "aspect_ratio": "auto", "watermark_info": {"enabled": True},
            "external_task_id": "omni-img-1"}  # fmt: skip
    created = await api.post("images/omni-image", body)
    assert_same_shape(json.loads(OMNI_IMAGE_CREATE), created, extra=frozenset({"parent_video"}))
    api.finish_all()
    twin = await api.get("images/omni-image/omni-img-1")
    assert_same_shape(json.loads(OMNI_IMAGE_SUCCEED), twin, extra=frozenset({"parent_video"}))
    assert len(twin["data"]["task_result"]["series_images"]) == 2


async def test_avatar_twins(api: Api) -> None:
    """seed 001's digital-human (avatar) create and query schemas have twins."""
    body = {"prompt": "singing", "image": "https://example.com/face.png",
            "sound_file": "https://example.com/song.mp3",
            "external_task_id": "avatar-1"}  # fmt: skip
    created = await api.post("videos/avatar/image2video", body)
    assert_same_shape(json.loads(AVATAR_CREATE), created)
    api.finish_all()
    twin = await api.get("videos/avatar/image2video/avatar-1")
    assert_same_shape(json.loads(AVATAR_SUCCEED), twin, extra=EXTRA_UNITS)


async def test_turbo_twins(api: Api) -> None:
    """seed 002's turbo creates (both families) and batch query have twins."""
    t2v = {"prompt": "golden retriever",
           "settings": {"resolution": "1080p", "aspect_ratio": "16:9", "duration": 5},
           "options": {"watermark_info": {"enabled": False}}}  # fmt: skip
    i2v = {"contents": [{"type": "first_frame", "url": "https://example.com/dog.jpg"},
                        {"type": "prompt", "text": "golden retriever"}],
           "settings": {"resolution": "1080p", "duration": 5},
           "options": {"watermark_info": {"enabled": False}}}  # fmt: skip
    first = await api.post("videos/text-to-video/kling-3.0-turbo", t2v)
    second = await api.post("videos/image-to-video/kling-3.0-turbo", i2v)
    assert_same_shape(json.loads(TURBO_CREATE), first)
    assert_same_shape(json.loads(TURBO_CREATE), second)
    api.finish_all()
    twin = await api.get(f"tasks?task_ids={first['data']['id']}&external_task_ids=")
    assert_same_shape(json.loads(TURBO_TASKS), twin)
    assert twin["data"][0]["billing"][0]["amount"] == "5"


async def test_multi_image_twins(api: Api) -> None:
    """seed 003's multi-image-to-video create and succeeded query have twins."""
    body = {"model_name": "MaaS_KeLing_V1.6",
            "image_list": [{"image": f"https://example.com/{i}.png"} for i in range(4)],
            "prompt": "a walk", "negative_prompt": "none", "mode": "std", "duration": "10",
            "aspect_ratio": "9:16", "external_task_id": "xiaosuvideo03013018412"}  # fmt: skip
    created = await api.post("videos/multi-image2video", body)
    assert_same_shape(json.loads(MULTI_IMAGE_CREATE), created)
    api.finish_all()
    twin = await api.get("videos/multi-image2video/xiaosuvideo03013018412")
    assert_same_shape(json.loads(MULTI_IMAGE_SUCCEED), twin, extra=EXTRA_UNITS)


async def test_identify_face_and_lip_sync_twins(api: Api) -> None:
    """seed 003's identify-face answer and lip-sync create/query have twins."""
    video = await api.post("videos/text2video", {"prompt": "speaker"})
    api.finish_all()
    done = await api.get(f"videos/text2video/{video['data']['task_id']}")
    video_id = done["data"]["task_result"]["videos"][0]["id"]
    face = await api.post("videos/identify-face", {"video_id": video_id})
    assert_same_shape(json.loads(IDENTIFY_FACE), face)
    body = {"session_id": face["data"]["session_id"],
            "face_choose": [{"face_id": "0", "audio_id": "811982203088818203",
                             "sound_start_time": 0, "sound_end_time": 5000,
                             "sound_insert_time": 0, "sound_volume": 1,
                             "original_audio_volume": 1}],
            "external_task_id": "xiaosuvideo12315"}  # fmt: skip
    created = await api.post("videos/advanced-lip-sync", body)
    assert_same_shape(json.loads(LIP_SYNC_CREATE), created, extra=frozenset({"parent_video"}))
    api.finish_all()
    twin = await api.get("videos/advanced-lip-sync/xiaosuvideo12315")
    assert_same_shape(json.loads(LIP_SYNC_SUCCEED), twin, extra=EXTRA_UNITS)


async def test_video_extend_twin(api: Api) -> None:
    """seed 003's video-extend query schema (parent_video filled) has a twin."""
    video = await api.post("videos/text2video", {"prompt": "nezha"})
    api.finish_all()
    done = await api.get(f"videos/text2video/{video['data']['task_id']}")
    video_id = done["data"]["task_result"]["videos"][0]["id"]
    created = await api.post("videos/video-extend", {"video_id": video_id, "prompt": "spear"})
    api.finish_all()
    twin = await api.get(f"videos/video-extend/{created['data']['task_id']}")
    assert_same_shape(json.loads(VIDEO_EXTEND_SUCCEED), twin, extra=EXTRA_UNITS)
    assert twin["data"]["task_info"]["parent_video"]["id"] == video_id


def test_assert_same_shape_catches_differences() -> None:
    """The shape comparison itself flags a wrong type, a missing key and an extra key."""
    with pytest.raises(AssertionError, match="fake has int"):
        assert_same_shape({"a": "5"}, {"a": 5})
    with pytest.raises(AssertionError, match="lacks"):
        assert_same_shape({"a": 1, "b": 2}, {"a": 1})
    with pytest.raises(AssertionError, match="adds"):
        assert_same_shape({"a": 1}, {"a": 1, "z": 2})
