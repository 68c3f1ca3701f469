"""The request models reproduce every seed request example, byte for byte in JSON terms.

Each example below is copied literally from the vendor documents in
``/work/shared/seeds/`` (the shell quoting of the ``curl --data '...'`` around it
removed, trailing spaces dropped). Three of them are not valid JSON as printed; the
smallest repair is applied and pinned in :data:`SEED_REPAIRS`:

* ``002-turbo-image2video``: a stray ``“”`` line inside ``options``;
* ``004-text2video`` and ``004-image2video``: the closing ``}`` is missing.

:mod:`test_validation` imports :data:`SEED_TEXTS` and :data:`SEED_MODELS` to check
that every example also passes validation.
"""

# The seeds' examples are long lines copied verbatim: keep them intact.
# ruff: noqa: E501

from __future__ import annotations

import inspect
import json
import pydoc
import re
from typing import Any

import attrs
import pytest

import kling_async._models as models_module
from kling_async._converter import request_from_payload, to_payload
from kling_async._endpoints import endpoint_for_request
from kling_async._errors import ValidationError
from kling_async._models import (
    AvatarRequest,
    CameraConfig,
    CameraControl,
    DynamicMask,
    Element,
    FaceChoice,
    IdentifyFaceRequest,
    ImageGenerationRequest,
    ImageRef,
    ImageToVideoRequest,
    LipSyncRequest,
    MultiImageToVideoRequest,
    OmniImageRequest,
    OmniVideoRequest,
    Request,
    Shot,
    TextToAudioRequest,
    TextToVideoRequest,
    TrajectoryPoint,
    TurboContent,
    TurboImageToVideoRequest,
    TurboOptions,
    TurboSettings,
    TurboTextToVideoRequest,
    VideoExtendRequest,
    WatermarkInfo,
)

SEED_TEXTS: dict[str, str] = {
    # 000_0d2b9854fbc682fe.txt, line 109
    "000-text2video": """{
    "model_name": "kling-v3",
    "prompt": "Epic BBC natural history documentary style, 4K ultra-high-definition quality. In the twilight of the African savannah, dust swirls as a brutal struggle for survival unfolds. A massive lion with a disheveled mane unleashes a thunderous roar, its powerful muscles rippling in the golden sunset light as it swings its claws to fend off attackers. Surrounding it are a dozen cunning, relentless spotted hyenas — snarling, eyes gleaming with greed — employing encirclement tactics as they dart, feint, and bite with fluid agility. The scene pulses with raw, untamed tension, capturing flying saliva, drifting dust, the authentic texture of animal fur, and dramatically dramatic lighting and shadow.",
    "mode": "pro",
    "sound": "on",
    "aspect_ratio": "16:9",
    "duration": "5"
}""",
    # 000_0d2b9854fbc682fe.txt, line 302
    "000-image2video": """{
    "model_name": "kling-v2.6",
    "prompt": "Hollywood blockbuster-level visual effects, 8K ultra-high resolution. In a neon-drenched, rain-soaked city nightscape, Kong and Godzilla erupt into an explosive death match. Kong roars as he hurls a massive punch, every muscle in his arm bulging with raw power, while Godzilla gapes its jaws and its dorsal fins blaze with searing atomic blue light, ready to fire. The moment of impact unleashes a staggering shockwave, shattering surrounding skyscraper windows and sending countless chunks of debris and cascading sparks flying through the air. Raindrops hitting the monsters’ skin instantly vaporize into mist. The scene is drenched in apocalyptic, earth-shattering tension and sheer destructive force.",
    "image": "https://img2.baidu.com/it/u=2688005144,1651821809&fm=253&fmt=auto&app=120&f=JPEG?w=666&h=500",
    "mode": "pro",
    "sound": "on",
    "aspect_ratio": "16:9",
    "duration": "5",
    "external_task_id": "external_task_id"
}""",
    # 000_0d2b9854fbc682fe.txt, line 468
    "000-image-generation": """{
    "model_name": "kling-v3",
    "prompt": "Generate images of the numbers 1 through 9",
    "element_list": [
        {
            "element_id": "160"
        },
        {
            "element_id": "161"
        },
        {
            "element_id": "159"
        }
    ],
    "image": "xxx",
    "resolution": "2k",
    "n": "9",
    "aspect_ratio": "3:2",
    "external_task_id": "",
    "callback_url": ""
}""",
    # 000_0d2b9854fbc682fe.txt, line 568
    "000-text-to-audio": """{
    "prompt": "The sound of fireworks during Spring Festival celebrations.",
    "duration": 3,
    "external_task_id": "",
    "callback_url": ""
  }""",
    # 001_718b746ffee45d17.txt, line 53
    "001-omni-video": """{
"multi_shot": true,
"shot_type": "customize",
"prompt": "",
"multi_prompt": [
{
"index": 1,
"prompt": "A person sitting on a park bench, sunlight filtering through trees. Simple composition, no dialogue.",
"duration": "2"
},
{
"index": 2,
"prompt": "A car speeding down a rainy street, headlights glowing. Dynamic angle, focus on motion.",
"duration": "3"
}
],
"image_list": [],
"video_list": [],
"mode": "pro",
"sound": "on",
"aspect_ratio": "16:9",
"duration": 5,
"external_task_id": "kling-v3-omni-video-test001"
}""",
    # 001_718b746ffee45d17.txt, line 165
    "001-omni-image-1": """{
"prompt": "Fuse the characters in all images into the <<<object_1>>> image",
"element_list": [
{
"element_id": 829836802793406551
}
],
"image_list": [
{
"image": "https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-4.png"
},
{
"image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/1.png"
},
{
"image": "https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/4.png"
}
],
"resolution": "2k",
"n": 1,
"aspect_ratio": "3:2"
}""",
    # 001_718b746ffee45d17.txt, line 191
    "001-omni-image-2": """{
"prompt": "Generate a recommended cover for each subject <<element_1>> based on the style of the reference image <<image_1>>",
"element_list": [
{
"element_id": "160"
},
{
"element_id": "161"
}
],
"image_list": [
{
"image": "xxx"
},
{
"image": "xxx"
}
],
"resolution": "2k",
"result_type": "series",
"series_amount": 2,
"aspect_ratio": "auto",
"external_task_id": "",
"callback_url": ""
}""",
    # 001_718b746ffee45d17.txt, line 280
    "001-text-to-audio": """{
"prompt": "The sound of firecrackers celebrating Christmas",
"duration": 3,
"external_task_id": "",
"callback_url": ""
}""",
    # 001_718b746ffee45d17.txt, line 366
    "001-avatar": """{
"prompt": "An ancient-style girl singing an ancient-style song",
"image": "https://p4-fdl.klingai.com/ksc2/TYBZGeCy2X-AlFG2BzHJ99DxeGPQbOjXamDu3v9Ecq_e1eVlu7H6D_7IaorVJr3aH2UyymnOb_3CRnbu2QnLT3C1hFoLUFPb3j6cJSPP_PIcVEtEEDaSrmRLy50znof-z86Vbg9peLFFbQd9aXFM4h3q3DjVzXP22cgxCkJKzJ-GxXn9qQOm8P_Qd-rVy_CbUL6j_X5lriXPkG9YE1WUaQ.png?cacheKey=ChtzZWN1cml0eS5rbGluZy5tZXRhX2VuY3J5cHQSsAEAMvnTk2zeXWfHeE0x9-pJh5qSzTyipQE_qi7aNWPgsddpyhPpG1XOFZN8VC6pYGtcInKWCqBjsY_Zl1MnQaGffyadf_kRG2g781a0d3ikEVHJeZiCt0gJrQCv6mWm8HgW53FZ1UXtupVe1FJnkLMa5JCneEIJbHkXnms2Y2UwuMl4n9fzbdM6MhKVFmIkwu2saYsguXLHUBAkSspuTQa2_S00cGfMA68qPJQeFlgp5BoSiLisQ3JW5QwpPz64VCCZ6-c0IiAUG1fwWBGOMfuSHLam2QirUp0YC0HTBFqFSZnYSqQIgSgFMAE&x-kcdn-pid=112757&pkey=AAX9eJQ7p7gVFmiSYauqc3rcObOQZTQe4Z-HxAnAq7xbot2_iV48hlKJKUvAsvHQVak75dca3mJ5SippG1VL4HWbOJmksckSyffvVHVKk-p-q19Vkc1JZ9sK2aaYeDFVLBI",
"sound_file":"https://cdn.mureka.ai/cos-prod/open/song/20251229/113366463152129-9DDrRrRu26n4iifY3Rgbyb.mp3"
}""",
    # 002_8b43c9a9d1cf2f98.txt, line 30
    "002-turbo-text2video": """{
"prompt": "A golden retriever running on a sunny beach, cinematic lighting, slow motion",
"settings": {
"resolution": "1080p",
"aspect_ratio": "16:9",
"duration": 5
},
"options": {
"watermark_info": {
"enabled": false
}
}
}""",
    # 002_8b43c9a9d1cf2f98.txt, line 86
    "002-turbo-image2video": """{
"contents": [
{
"type": "first_frame",
"url": "https://p0.ssl.img.360kuai.com/dmfd/__60/t018b8fd959340b4f00.jpg"
},
{
"type": "prompt",
"text": "A golden retriever running on a sunny beach, cinematic lighting, slow motion"
}
],
"settings": {
"resolution": "1080p",
"duration": 8
},
"options": {
“”
"watermark_info": {
"enabled": false
}
}
}""",
    # 003_ba64960c6b8e9a05.txt, line 57
    "003-text2video": """{ "model_name":"kling-v1",
"prompt":"A dog running on the grass"
}""",
    # 003_ba64960c6b8e9a05.txt, line 165
    "003-image2video": """{ "model_name":"kling-v1",
"image":"https://pic1.zhimg.com/v2-0cbb2efa5a55f2e716eebe2d6a6eef67_r.jpg?source=12a79843",
"prompt":"Nezha practicing martial arts"
}""",
    # 003_ba64960c6b8e9a05.txt, line 264
    "003-video-extend": """{
"video_id": "51bc9fb8-8068-44af-9e35-121212",
"prompt": "Nezha pulls out a red-marked spear from behind, standing on the wind-fire wheels"
}""",
    # 003_ba64960c6b8e9a05.txt, line 368
    "003-multi-image2video": """{
    "model_name": "MaaS_KeLing_V1.6",
    "image_list": [
        {
            "image": "${Your image1}"
        },
        {
            "image": "${Your image2}"
        },
        {
            "image": "${Your image3}"
        },
        {
            "image": "${Your image4}"
        }
    ],
    "prompt": "${Your prompt}",
    "negative_prompt": "No negative energy content",
    "mode": "std",
    "duration": "10",
    "aspect_ratio": "9:16",
    "external_task_id": "xiaosuvideo03013018412"
}""",
    # 003_ba64960c6b8e9a05.txt, line 481
    "003-identify-face": """{
    "video_id": "811673266024099926"
}""",
    # 003_ba64960c6b8e9a05.txt, line 571
    "003-lip-sync": """{
    "session_id": "811981745335054341",
    "face_choose": [{
        "face_id": "0",
        "audio_id": "811982203088818203",
        "sound_start_time": 0,
        "sound_end_time": 5000,
        "sound_insert_time": 0,
        "sound_volume": 1,
        "original_audio_volume": 1
    }]
    ,"external_task_id": "xiaosuvideo12315"
}""",
    # 004_ef6ef2c1671f71b8.txt, line 37
    "004-text2video": """{ "model_name":"kling-v1",
"prompt":"A dog running on the grass"
""",
    # 004_ef6ef2c1671f71b8.txt, line 125
    "004-image2video": """{ "model_name":"kling-v1",
"image":"https://pic1.zhimg.com/v2-0cbb2efa5a55f2e716eebe2d6a6eef67_r.jpg?source=12a79843",
"prompt":"Nezha practicing martial arts"
""",
    # 004_ef6ef2c1671f71b8.txt, line 197
    "004-video-extend": """{
"video_id": "51bc9fb8-8068-44af-9e35-121212",
"prompt": "Nezha pulls out a red-marked spear from behind, standing on the wind-fire wheels"
}""",
}

#: (literal text, replacement) applied to the three examples that are not valid JSON.
SEED_REPAIRS: dict[str, tuple[str, str]] = {
    "002-turbo-image2video": ('"options": {\n“”\n', '"options": {\n'),
    "004-text2video": ('"prompt":"A dog running on the grass"', '"prompt":"A dog running on the grass"\n}'),
    "004-image2video": ('"prompt":"Nezha practicing martial arts"', '"prompt":"Nezha practicing martial arts"\n}'),
}

#: The path under ``/kling/`` each example was POSTed to, from its curl line.
SEED_PATHS: dict[str, str] = {
    "000-text2video": "videos/text2video",
    "000-image2video": "videos/image2video",
    "000-image-generation": "images/generations",
    "000-text-to-audio": "audio/text-to-audio",
    "001-omni-video": "videos/omni-video",
    "001-omni-image-1": "images/omni-image",
    "001-omni-image-2": "images/omni-image",
    "001-text-to-audio": "audio/text-to-audio",
    "001-avatar": "videos/avatar/image2video",
    "002-turbo-text2video": "videos/text-to-video/kling-3.0-turbo",
    "002-turbo-image2video": "videos/image-to-video/kling-3.0-turbo",
    "003-text2video": "videos/text2video",
    "003-image2video": "videos/image2video",
    "003-video-extend": "videos/video-extend",
    "003-multi-image2video": "videos/multi-image2video",
    "003-identify-face": "videos/identify-face",
    "003-lip-sync": "videos/advanced-lip-sync",
    "004-text2video": "videos/text2video",
    "004-image2video": "videos/image2video",
    "004-video-extend": "videos/video-extend",
}


def seed_payload(name: str) -> dict[str, Any]:
    """Parse one seed example (repaired where the seed's JSON is broken)."""
    text = SEED_TEXTS[name]
    if name in SEED_REPAIRS:
        old, new = SEED_REPAIRS[name]
        assert old in text
        text = text.replace(old, new)
    payload: dict[str, Any] = json.loads(text)
    return payload


def _long(name: str, key: str) -> Any:
    # Long prose and signed URLs are taken from the seed rather than typed twice.
    return seed_payload(name)[key]


_NEZHA_EXTEND = "Nezha pulls out a red-marked spear from behind, standing on the wind-fire wheels"
_DOG_TEXT2VIDEO = TextToVideoRequest(model_name="kling-v1", prompt="A dog running on the grass")
_NEZHA_IMAGE2VIDEO = ImageToVideoRequest(
    model_name="kling-v1",
    image="https://pic1.zhimg.com/v2-0cbb2efa5a55f2e716eebe2d6a6eef67_r.jpg?source=12a79843",
    prompt="Nezha practicing martial arts",
)

#: Every seed request example, built by hand from the models.
SEED_MODELS: dict[str, Request] = {
    "000-text2video": TextToVideoRequest(
        model_name="kling-v3",
        prompt=_long("000-text2video", "prompt"),
        mode="pro",
        sound="on",
        aspect_ratio="16:9",
        duration="5",
    ),
    "000-image2video": ImageToVideoRequest(
        model_name="kling-v2.6",
        prompt=_long("000-image2video", "prompt"),
        image="https://img2.baidu.com/it/u=2688005144,1651821809&fm=253&fmt=auto&app=120&f=JPEG?w=666&h=500",
        mode="pro",
        sound="on",
        aspect_ratio="16:9",
        duration="5",
        external_task_id="external_task_id",
    ),
    "000-image-generation": ImageGenerationRequest(
        model_name="kling-v3",
        prompt="Generate images of the numbers 1 through 9",
        element_list=[Element(element_id="160"), Element(element_id="161"), Element(element_id="159")],
        image="xxx",
        resolution="2k",
        n="9",
        aspect_ratio="3:2",
        external_task_id="",
        callback_url="",
    ),
    "000-text-to-audio": TextToAudioRequest(
        prompt="The sound of fireworks during Spring Festival celebrations.",
        duration=3,
        external_task_id="",
        callback_url="",
    ),
    "001-omni-video": OmniVideoRequest(
        multi_shot=True,
        shot_type="customize",
        prompt="",
        multi_prompt=[
            Shot(
                index=1,
                prompt="A person sitting on a park bench, sunlight filtering through trees. Simple composition, no dialogue.",
                duration="2",
            ),
            Shot(
                index=2,
                prompt="A car speeding down a rainy street, headlights glowing. Dynamic angle, focus on motion.",
                duration="3",
            ),
        ],
        image_list=[],
        video_list=[],
        mode="pro",
        sound="on",
        aspect_ratio="16:9",
        duration=5,
        external_task_id="kling-v3-omni-video-test001",
    ),
    "001-omni-image-1": OmniImageRequest(
        prompt="Fuse the characters in all images into the <<<object_1>>> image",
        element_list=[Element(element_id=829836802793406551)],
        image_list=[
            ImageRef(image="https://v1-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/multi-4.png"),
            ImageRef(image="https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/1.png"),
            ImageRef(image="https://p2-kling.klingai.com/kcdn/cdn-kcdn112452/kling-qa-test/video_effects/4.png"),
        ],
        resolution="2k",
        n=1,
        aspect_ratio="3:2",
    ),
    "001-omni-image-2": OmniImageRequest(
        prompt="Generate a recommended cover for each subject <<element_1>> based on the style of the reference image <<image_1>>",
        element_list=[Element(element_id="160"), Element(element_id="161")],
        image_list=[ImageRef(image="xxx"), ImageRef(image="xxx")],
        resolution="2k",
        result_type="series",
        series_amount=2,
        aspect_ratio="auto",
        external_task_id="",
        callback_url="",
    ),
    "001-text-to-audio": TextToAudioRequest(
        prompt="The sound of firecrackers celebrating Christmas",
        duration=3,
        external_task_id="",
        callback_url="",
    ),
    "001-avatar": AvatarRequest(
        prompt="An ancient-style girl singing an ancient-style song",
        image=_long("001-avatar", "image"),
        sound_file="https://cdn.mureka.ai/cos-prod/open/song/20251229/113366463152129-9DDrRrRu26n4iifY3Rgbyb.mp3",
    ),
    "002-turbo-text2video": TurboTextToVideoRequest(
        prompt="A golden retriever running on a sunny beach, cinematic lighting, slow motion",
        settings=TurboSettings(resolution="1080p", aspect_ratio="16:9", duration=5),
        options=TurboOptions(watermark_info=WatermarkInfo(enabled=False)),
    ),
    "002-turbo-image2video": TurboImageToVideoRequest(
        contents=[
            TurboContent(type="first_frame", url="https://p0.ssl.img.360kuai.com/dmfd/__60/t018b8fd959340b4f00.jpg"),
            TurboContent(
                type="prompt",
                text="A golden retriever running on a sunny beach, cinematic lighting, slow motion",
            ),
        ],
        settings=TurboSettings(resolution="1080p", duration=8),
        options=TurboOptions(watermark_info=WatermarkInfo(enabled=False)),
    ),
    "003-text2video": _DOG_TEXT2VIDEO,
    "003-image2video": _NEZHA_IMAGE2VIDEO,
    "003-video-extend": VideoExtendRequest(video_id="51bc9fb8-8068-44af-9e35-121212", prompt=_NEZHA_EXTEND),
    "003-multi-image2video": MultiImageToVideoRequest(
        model_name="MaaS_KeLing_V1.6",
        image_list=[ImageRef(image=f"${{Your image{i}}}") for i in range(1, 5)],
        prompt="${Your prompt}",
        negative_prompt="No negative energy content",
        mode="std",
        duration="10",
        aspect_ratio="9:16",
        external_task_id="xiaosuvideo03013018412",
    ),
    "003-identify-face": IdentifyFaceRequest(video_id="811673266024099926"),
    "003-lip-sync": LipSyncRequest(
        session_id="811981745335054341",
        face_choose=[
            FaceChoice(
                face_id="0",
                audio_id="811982203088818203",
                sound_start_time=0,
                sound_end_time=5000,
                sound_insert_time=0,
                sound_volume=1,
                original_audio_volume=1,
            )
        ],
        external_task_id="xiaosuvideo12315",
    ),
    "004-text2video": _DOG_TEXT2VIDEO,
    "004-image2video": _NEZHA_IMAGE2VIDEO,
    "004-video-extend": VideoExtendRequest(video_id="51bc9fb8-8068-44af-9e35-121212", prompt=_NEZHA_EXTEND),
}

SEED_NAMES = sorted(SEED_TEXTS)


def _canonical(payload: Any) -> str:
    # JSON text with sorted keys: unlike ==, tells "5" from 5, 1 from 1.0 and from true.
    return json.dumps(payload, sort_keys=True, ensure_ascii=False)


def test_every_seed_request_example_is_covered() -> None:
    """All 20 curl request bodies of the five seeds are in the table, each with a model."""
    assert len(SEED_TEXTS) == 20
    assert set(SEED_MODELS) == set(SEED_TEXTS) == set(SEED_PATHS)
    assert {name[:3] for name in SEED_TEXTS} == {"000", "001", "002", "003", "004"}
    assert len(set(SEED_PATHS.values())) == 13  # every family that has a request body


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_example_reproduced_by_models(name: str) -> None:
    """to_payload of the hand-built model is the seed's JSON body, types included."""
    payload = to_payload(SEED_MODELS[name])
    assert payload == seed_payload(name)
    assert _canonical(payload) == _canonical(seed_payload(name))


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_example_endpoint_matches_seed_path(name: str) -> None:
    """The endpoint table sends each model to the path its seed example used."""
    assert endpoint_for_request(SEED_MODELS[name]).path == SEED_PATHS[name]


@pytest.mark.parametrize("name", SEED_NAMES)
def test_seed_example_round_trips(name: str) -> None:
    """request_from_payload rebuilds the same model, which gives back the same body."""
    model = SEED_MODELS[name]
    rebuilt = request_from_payload(type(model), seed_payload(name))
    assert rebuilt == model
    assert _canonical(to_payload(rebuilt)) == _canonical(seed_payload(name))


@pytest.mark.parametrize("name", sorted(SEED_REPAIRS))
def test_broken_seed_examples_need_their_repair(name: str) -> None:
    """The three seed bodies printed as invalid JSON really are invalid without the repair."""
    with pytest.raises(json.JSONDecodeError):
        json.loads(SEED_TEXTS[name])
    assert seed_payload(name)


def test_unset_fields_are_not_sent() -> None:
    """Fields left at None are absent from the body; nested models too."""
    request = TextToVideoRequest(
        prompt="a cat",
        camera_control=CameraControl(type="simple", config=CameraConfig(zoom=5)),
    )
    assert to_payload(request) == {
        "prompt": "a cat",
        "camera_control": {"type": "simple", "config": {"zoom": 5}},
    }


def test_values_are_sent_as_given() -> None:
    """Strings stay strings and numbers stay numbers: the seeds use both."""
    assert to_payload(TextToVideoRequest(prompt="p", duration="5"))["duration"] == "5"
    assert to_payload(TextToVideoRequest(prompt="p", duration=5))["duration"] == 5
    assert to_payload(ImageGenerationRequest(prompt="p", n="9"))["n"] == "9"


def test_motion_brush_round_trips() -> None:
    """Dynamic masks with trajectory points survive payload → model → payload."""
    request = ImageToVideoRequest(
        image="https://example.com/a.png",
        static_mask="https://example.com/s.png",
        dynamic_masks=[
            DynamicMask(
                mask="https://example.com/d.png",
                trajectories=[TrajectoryPoint(x=1, y=2), TrajectoryPoint(x=30, y=40)],
            )
        ],
    )
    payload = to_payload(request)
    assert payload["dynamic_masks"][0]["trajectories"] == [{"x": 1, "y": 2}, {"x": 30, "y": 40}]
    assert request_from_payload(ImageToVideoRequest, payload) == request


def test_unknown_top_level_field_is_named() -> None:
    """A misspelt field raises ValidationError whose problem names that field."""
    with pytest.raises(ValidationError) as info:
        request_from_payload(TextToVideoRequest, {"prompt": "x", "promt": "y"})
    assert [(p.path, p.message) for p in info.value.problems] == [("promt", "unknown field")]
    assert "promt" in str(info.value)


def test_unknown_nested_field_is_named_with_its_path() -> None:
    """Unknown fields inside lists and objects are named with their full path, all at once."""
    payload = {
        "prompt": "x",
        "multi_prompt": [{"index": 1, "prompt": "a", "duration": "5", "lenght": 3}],
        "camera_control": {"type": "simple", "confg": {}},
        "colour": "red",
    }
    with pytest.raises(ValidationError) as info:
        request_from_payload(TextToVideoRequest, payload)
    assert sorted(p.path for p in info.value.problems) == [
        "camera_control.confg",
        "colour",
        "multi_prompt[0].lenght",
    ]
    assert all(p.message == "unknown field" for p in info.value.problems)


def test_missing_required_nested_field_is_reported() -> None:
    """An element without element_id is refused with the element's path."""
    with pytest.raises(ValidationError) as info:
        request_from_payload(ImageGenerationRequest, {"prompt": "x", "element_list": [{}]})
    [problem] = info.value.problems
    assert problem.path.startswith("element_list[0]")


def _attribute_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` section of a class docstring, as {field: text}."""
    doc = inspect.getdoc(cls) or ""
    assert "Attributes:" in doc, cls.__name__
    section = doc.split("Attributes:", 1)[1]
    found: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            current = match.group(1)
            found[current] = match.group(2)
        elif current and line.startswith("        "):
            found[current] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return found


_MODEL_CLASSES = sorted(
    (
        obj
        for name in models_module.__all__
        if isinstance(obj := getattr(models_module, name), type)
        and issubclass(obj, models_module.CheckedModel)
        and obj is not models_module.CheckedModel
    ),
    key=lambda c: c.__name__,
)


@pytest.mark.parametrize("cls", _MODEL_CLASSES, ids=lambda c: c.__name__)
def test_every_request_field_is_documented(cls: type) -> None:
    """Each field has a description in the class's Attributes section, and help() shows it."""
    docs = _attribute_docs(cls)
    fields = [a.name for a in attrs.fields(cls)]
    assert sorted(docs) == sorted(fields)
    assert all(len(text) > 10 for text in docs.values()), docs
    assert re.search(r"[Ss]eeds? \d{3}", inspect.getdoc(cls) or ""), cls.__name__
    rendered = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert all(f"{name}:" in rendered for name in fields)


def test_media_fields_are_redacted_in_repr() -> None:
    """Base64 images and audio (or signed URLs) never appear in a model's repr."""
    data = "iVBORw0KGgo" + "A" * 4000
    request = ImageToVideoRequest(
        image=data,
        static_mask=data,
        dynamic_masks=[DynamicMask(mask=data, trajectories=[TrajectoryPoint(x=1, y=2)])],
    )
    shown = repr(request) + repr(FaceChoice(sound_file=data)) + repr(ImageRef(image=data))
    assert data[:40] not in shown
    assert "<4011 characters>" in shown
