"""kling_async: an asyncio-first SDK for the Kling video, image and audio generation API."""
