"""Pipeline: chain endpoints, each step feeding the next.

    image generation  ->  image-to-video (the image as first frame)  ->  video-extend
    add --lip-sync:       ...image-to-video -> text-to-audio + identify-face -> lip-sync

Every step is a plain ``create`` + ``wait``; outputs of a step are inputs of the
next (an image URL, a video id, a face session). Against the real gateway set
KLING_API_KEY and KLING_ENDPOINT_PATH; to try it without a key:

    python examples/pipeline.py --fake
    python examples/pipeline.py --fake --lip-sync
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from kling_async import (
    FaceChoice,
    IdentifyFaceRequest,
    ImageGenerationRequest,
    ImageToVideoRequest,
    KlingSession,
    LipSyncRequest,
    Task,
    TextToAudioRequest,
    VideoExtendRequest,
)


@contextlib.asynccontextmanager
async def connect(use_fake: bool) -> AsyncIterator[KlingSession]:
    """A session for the real gateway (from KLING_* variables) or an in-process fake."""
    if not use_fake:
        async with KlingSession.from_env() as session:
            yield session
        return
    from kling_async.testing import FakeConfig, run_fake_gateway

    # The fake's clock runs 200x fast (a 100 s video takes 0.5 s).
    # fake.session() scales the SDK's delays to the fake's clock (ClientConfig.time_scaled).
    async with run_fake_gateway(FakeConfig(time_scale=0.005)) as fake, fake.session() as session:
        yield session


def step(name: str, task: Task) -> None:
    print(f"{name:<16} task {task.id}: {task.status.value}, {task.units or 0:g} units")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="pipeline-output", help="where to save the results")
    parser.add_argument("--lip-sync", action="store_true", help="end with lip-sync, not extend")
    parser.add_argument("--fake", action="store_true", help="use the embedded fake gateway")
    args = parser.parse_args(argv)

    async with connect(args.fake) as session:
        # 1. A still image from a prompt.
        image = await session.image_generation.run(
            ImageGenerationRequest(
                model_name="kling-v2-1",
                prompt="A lighthouse keeper on a cliff at dusk, portrait, cinematic light",
                aspect_ratio="16:9",
                n=1,
            )
        )
        step("image", image)

        # 2. Animate it: the image's URL is the first frame.
        video = await session.image_to_video.run(
            ImageToVideoRequest(
                model_name="kling-v2-6",
                image=image.images[0].url,
                prompt="The keeper turns to the camera and speaks as the lamp starts turning",
                mode="std",
                duration="5",
            )
        )
        step("image-to-video", video)
        video_id = video.videos[0].id
        if video_id is None:
            raise SystemExit("the video has no id; cannot continue it")

        if not args.lip_sync:
            # 3a. Continue the clip: video-extend takes the video's id (not the task id).
            final = await session.video_extend.run(
                VideoExtendRequest(video_id=video_id, prompt="The camera slowly pulls back")
            )
            step("video-extend", final)
        else:
            # 3b. A voice line and the face to put it on, side by side.
            speech, faces = await asyncio.gather(
                session.text_to_audio.run(
                    TextToAudioRequest(
                        prompt="A calm old voice says: the sea is quiet tonight", duration=5.0
                    )
                ),
                session.identify_face(IdentifyFaceRequest(video_id=video_id)),
            )
            step("text-to-audio", speech)
            print(f"{'identify-face':<16} session {faces.session_id}: {len(faces.faces)} face(s)")
            sound = speech.audios[0].url_mp3 or speech.audios[0].url
            if sound is None or not faces.faces:
                raise SystemExit("no audio URL or no face found; nothing to lip-sync")
            final = await session.lip_sync.run(
                LipSyncRequest(
                    session_id=faces.session_id,
                    face_choose=[
                        FaceChoice(
                            face_id=faces.faces[0].face_id,
                            sound_file=sound,
                            sound_start_time=0,
                            sound_end_time=5000,
                            sound_insert_time=0,
                        )
                    ],
                )
            )
            step("lip-sync", final)

        for file in await session.download(final, args.out):
            print(f"saved {file.path} ({file.size} bytes)")


if __name__ == "__main__":
    asyncio.run(main())
