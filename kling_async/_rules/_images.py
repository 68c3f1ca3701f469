"""Rule kinds for image fields: encoding, content limits, completeness, mask geometry.

URLs are never fetched. Base64 values are decoded only as far as needed: the
header (format and size), and the last few bytes (a PNG ends with its ``IEND``
chunk, a JPEG with its ``EOI`` marker; anything else was cut short).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

import attrs

from .._media import ImageInfo, check_image_value, is_url
from .._models import Tier
from ._base import Ctx, Hit, Rule, When
from ._kinds import BLOCKS, WARNS, custom

__all__ = ["image", "image_complete", "image_webp", "mask_geometry"]

_PNG_END = b"IEND\xaeB`\x82"
_JPEG_END = b"\xff\xd9"
_CONTENT = "jpg/jpeg/png, at most 10 MB"
_GEOMETRY = "sides of at least 300 px, aspect between 1:2.5 and 2.5:1"


def _prefix_problem(value: str) -> str | None:
    if value[:5].lower() == "data:":
        return (
            "base64 must not carry a 'data:' prefix (e.g. 'data:image/png;base64,'): "
            "send only the base64 part"
        )
    return None


def _decode_edge(value: str, *, tail: bool) -> bytes:
    text = value.rstrip("=")
    text += "=" * (-len(text) % 4)
    chunk = text[-24:] if tail else text[:24]
    if not tail:
        chunk = chunk[: len(chunk) - len(chunk) % 4]
    try:
        return base64.b64decode(chunk)
    except (binascii.Error, ValueError):
        return b""


def _is_webp(value: str) -> bool:
    head = _decode_edge(value, tail=False)
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


@attrs.frozen
class _Analysis:
    """What one base64 image value is: its encoding problem, or its info and problems."""

    encoding: str | None
    info: ImageInfo | None = None
    content: tuple[str, ...] = ()

    def messages(self, *, dimensions: bool) -> tuple[str, ...]:
        """Content problems; without ``dimensions``, the size/aspect ones are left out."""
        if dimensions:
            return self.content
        return tuple(m for m in self.content if " px" not in m)


def analyse(ctx: Ctx, path: str, value: str) -> _Analysis:
    """Decode as much of a base64 image as needed, once per field and run."""
    key = f"image:{path}"
    cached = ctx.cache.get(key)
    if isinstance(cached, _Analysis):
        return cached
    problem = _prefix_problem(value)
    if problem is not None:
        result = _Analysis(encoding=problem)
    else:
        problems, info = check_image_value(value, path, dimensions=True)
        if info is None:  # not base64 at all (URLs never get here)
            result = _Analysis(encoding=problems[0].message if problems else "not base64")
        else:
            messages = [p.message for p in problems]
            if info.format is None and _is_webp(value):
                messages = [m for m in messages if "JPG/JPEG or PNG" not in m]
            result = _Analysis(encoding=None, info=info, content=tuple(messages))
    ctx.cache[key] = result
    return result


def _base64_images(ctx: Ctx, field: str) -> Iterator[tuple[str, str]]:
    for path, value in ctx.each(field):
        if isinstance(value, str) and value.strip() and not is_url(value):
            yield path, value


def image(
    field: str,
    *,
    source: str,
    dimensions: bool = True,
    part: str = "all",
    tier: Tier = BLOCKS,
    when: When | None = None,
) -> Rule:
    """An image URL or plain base64 of a documented image within the limits.

    Args:
        field: The field's wire path.
        source: Where the limits come from.
        dimensions: Also check minimum sides and aspect (off for masks).
        part: ``encoding`` (data: prefix, well-formed base64), ``content`` (format,
            size, dimensions) or ``all``.
        tier: The tier of the findings.
        when: Condition.
    """
    says = {
        "encoding": "a URL or plain base64 without a data: prefix",
        "content": _CONTENT + (f", {_GEOMETRY}" if dimensions else ""),
    }
    text = says.get(part) or f"{says['encoding']}; {says['content']}"

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in _base64_images(ctx, field):
            found = analyse(ctx, path, value)
            if found.encoding is not None:
                if part in ("encoding", "all"):
                    yield Hit(path, None, found.encoding)
                continue
            if part in ("content", "all"):
                for message in found.messages(dimensions=dimensions):
                    yield Hit(path, None, message)

    return custom(field, "image", text, check, source=source, tier=tier, when=when)


def image_complete(field: str, *, source: str, tier: Tier = BLOCKS) -> Rule:
    """A base64 PNG ends with its IEND chunk and a JPEG with its EOI marker."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in _base64_images(ctx, field):
            info = analyse(ctx, path, value).info
            if info is None or info.format is None:
                continue
            end = _decode_edge(value, tail=True).rstrip(b"\x00\r\n ")
            marker = _PNG_END if info.format == "png" else _JPEG_END
            if not end.endswith(marker):
                yield Hit(
                    path,
                    None,
                    f"the {info.format.upper()} data is cut short (no end marker): "
                    "the image is incomplete",
                )

    return custom(
        field,
        "image_complete",
        "a complete PNG (IEND) or JPEG (EOI)",
        check,
        source=source,
        tier=tier,
    )


def image_webp(field: str) -> Rule:
    """WebP is not a documented format: sent, with a warning."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        for path, value in _base64_images(ctx, field):
            found = analyse(ctx, path, value)
            if found.encoding is None and found.info is not None and _is_webp(value):
                yield Hit(path, None, "is WebP, which the seeds do not list (jpg/jpeg/png)")

    return custom(
        field,
        "image_format",
        "jpg/jpeg/png (WebP is sent with a warning)",
        check,
        source="SDK inference: the seeds list jpg/jpeg/png only; Kling's own API also "
        "reads WebP, so it is not refused",
        tier=WARNS,
    )


def _same_aspect(a: ImageInfo, b: ImageInfo) -> bool:
    if not (a.width and a.height and b.width and b.height):
        return True
    return abs(a.width * b.height - b.width * a.height) <= 0.01 * a.width * b.height


def _info(ctx: Ctx, path: str, value: Any) -> ImageInfo | None:
    if not isinstance(value, str) or not value.strip() or is_url(value):
        return None
    info = analyse(ctx, path, value).info
    return info if info is not None and info.width and info.height else None


def mask_geometry(*, source: str) -> Rule:
    """Motion-brush masks: the image's aspect ratio, and one resolution for all."""

    def check(ctx: Ctx) -> Iterator[Hit]:
        image_info = _info(ctx, "image", ctx.get("image"))
        masks: list[tuple[str, ImageInfo]] = []
        static = _info(ctx, "static_mask", ctx.get("static_mask"))
        if static is not None:
            masks.append(("static_mask", static))
        for path, value in ctx.each("dynamic_masks[].mask"):
            info = _info(ctx, path, value)
            if info is not None:
                masks.append((path, info))
        first: tuple[str, ImageInfo] | None = None
        for path, info in masks:
            if image_info is not None and not _same_aspect(image_info, info):
                yield Hit(
                    path,
                    None,
                    f"mask is {info.width}x{info.height} px; its aspect ratio must match "
                    f"the image ({image_info.width}x{image_info.height} px)",
                )
            if first is None:
                first = (path, info)
            elif (info.width, info.height) != (first[1].width, first[1].height):
                yield Hit(
                    path,
                    None,
                    f"mask is {info.width}x{info.height} px; all masks must have the same "
                    f"resolution ({first[0]} is {first[1].width}x{first[1].height} px)",
                )

    return custom(
        "static_mask / dynamic_masks[].mask",
        "mask_geometry",
        "same aspect ratio as image; every mask the same resolution",
        check,
        source=source,
    )
