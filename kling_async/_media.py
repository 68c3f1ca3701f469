"""Media helpers: local files and bytes to the base64 the API wants, and header checks.

The API takes images (and audio) either as an ``http(s)`` URL or as plain base64,
*without* a ``data:image/png;base64,`` prefix. :func:`encode_image` and
:func:`encode_file` produce that base64 from a path or from bytes.

Images must be JPG/JPEG or PNG, at most 10 MB, with width and height of at least
300 px and an aspect ratio between 1:2.5 and 2.5:1. :func:`image_info` reads format
and dimensions from the PNG ``IHDR`` chunk or the JPEG ``SOF`` segment with the
standard library only, and :func:`check_image` turns a violation into
:class:`~kling_async.Problem` values naming the field. URLs are never fetched: only
base64 values and local bytes can be inspected.

Nothing here ever puts base64 data into a message: problems describe the data
(format, size, dimensions), they do not quote it.
"""

from __future__ import annotations

import base64
import binascii
import os
import struct
from pathlib import Path
from typing import Literal, Union

import attrs

from ._errors import Problem, ValidationError

__all__ = [
    "IMAGE_MAX_ASPECT",
    "IMAGE_MAX_BYTES",
    "IMAGE_MIN_SIDE",
    "SOUND_FILE_MAX_BYTES",
    "ImageInfo",
    "MediaSource",
    "audio_format",
    "base64_decoded_size",
    "check_audio_value",
    "check_image",
    "check_image_value",
    "decode_base64",
    "encode_file",
    "encode_image",
    "image_info",
    "is_url",
    "looks_like_base64",
]

#: Largest image file the API accepts, in bytes ("10MB"; read as MiB, the lenient
#: reading: an image between 10,000,000 and 10,485,760 bytes is left to the server).
IMAGE_MAX_BYTES = 10 * 1024 * 1024
#: Smallest width and height of an input image, in pixels.
IMAGE_MIN_SIDE = 300
#: Largest ratio of the longer side to the shorter side (1:2.5 to 2.5:1).
IMAGE_MAX_ASPECT = 2.5
#: Largest lip-sync audio file (``sound_file``), in bytes ("5MB", read as MiB).
SOUND_FILE_MAX_BYTES = 5 * 1024 * 1024

#: A local file (path) or its content.
MediaSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

ImageFormat = Literal["png", "jpeg"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The standard alphabet. Validity is checked with bytes.translate, which deletes these
# in C: several times faster than a regex over a 13 MB string.
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
# How much base64 is decoded to find a JPEG's SOF segment before decoding it all:
# EXIF/ICC segments before SOF are usually far smaller than this.
_HEADER_CHARS = 64 * 1024
# JPEG SOFn markers: C0-CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM (01), RSTn (D0-D7), SOI (D8).
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".heic")


@attrs.frozen
class ImageInfo:
    """What an image's header says about it.

    Attributes:
        format: ``"png"``, ``"jpeg"``, or ``None`` when the data is neither.
        width: Width in pixels, ``None`` when unknown.
        height: Height in pixels, ``None`` when unknown.
        size: Size of the file in bytes.
    """

    format: ImageFormat | None
    width: int | None
    height: int | None
    size: int


def _read_source(source: MediaSource) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    return Path(source).read_bytes()


def encode_file(source: MediaSource) -> str:
    """Encode a local file or bytes as plain base64 (no ``data:`` prefix, no newlines).

    Use it for ``sound_file`` (audio) and anything else the API takes as base64.

    Args:
        source: A path (``str`` or path-like; a ``str`` is always a path, never
            base64) or the file's bytes.

    Returns:
        The base64 text.

    Raises:
        OSError: The file cannot be read.
    """
    return base64.b64encode(_read_source(source)).decode("ascii")


def encode_image(source: MediaSource, *, field: str = "image", check: bool = True) -> str:
    """Encode a local image or its bytes as the base64 the API wants.

    Args:
        source: A path (``str`` or path-like; a ``str`` is always a path, never
            base64) or the image's bytes.
        field: Field name used in problems when ``check`` fails.
        check: Check the documented limits first (JPG/PNG, at most 10 MB, sides of
            at least 300 px, aspect between 1:2.5 and 2.5:1).

    Returns:
        The base64 text, without a ``data:`` prefix.

    Raises:
        OSError: The file cannot be read.
        ValidationError: ``check`` is on and the image breaks a limit; every
            problem is listed.
    """
    data = _read_source(source)
    if check:
        problems = check_image(data, field=field)
        if problems:
            raise ValidationError(problems, endpoint="encode_image")
    return base64.b64encode(data).decode("ascii")


def _png_header(data: bytes) -> tuple[int | None, int | None]:
    # Signature (8), chunk length (4), b"IHDR" (4), width (4), height (4).
    if len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None, None


def _jpeg_header(data: bytes) -> tuple[int | None, int | None]:
    i, end = 2, len(data)
    while i + 1 < end:
        if data[i] != 0xFF:
            return None, None  # not at a marker: corrupt or not a JPEG we understand
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        i += 2
        if marker in _STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any SOF: no frame header
            return None, None
        if i + 2 > end:
            return None, None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _SOF_MARKERS:
            if i + 7 > end:
                return None, None
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            return width, height
        if length < 2:
            return None, None
        i += length
    return None, None


def _header(data: bytes) -> tuple[ImageFormat | None, int | None, int | None]:
    if data.startswith(_PNG_SIGNATURE):
        return ("png", *_png_header(data))
    if data.startswith(b"\xff\xd8\xff"):
        return ("jpeg", *_jpeg_header(data))
    return None, None, None


def image_info(data: bytes) -> ImageInfo:
    """Read format and dimensions from PNG or JPEG bytes (no third-party library).

    Args:
        data: The whole image file.

    Returns:
        Its :class:`ImageInfo`; ``format`` is ``None`` for anything but PNG/JPEG and
        ``width``/``height`` are ``None`` when the header cannot be read.
    """
    fmt, width, height = _header(data if isinstance(data, bytes) else bytes(data))
    return ImageInfo(format=fmt, width=width, height=height, size=len(data))


def _info_problems(info: ImageInfo, field: str, *, dimensions: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    if info.size > IMAGE_MAX_BYTES:
        problems.append(
            Problem(
                field,
                f"image is {info.size} bytes; "
                f"images must be at most 10 MB ({IMAGE_MAX_BYTES} bytes)",
            )
        )
    if info.format is None:
        problems.append(Problem(field, "image must be JPG/JPEG or PNG (its header is neither)"))
        return problems
    width, height = info.width, info.height
    if width is None or height is None:
        problems.append(
            Problem(
                field, f"cannot read the {info.format.upper()} image's dimensions (corrupt header?)"
            )
        )
        return problems
    if not dimensions:
        return problems
    if width < IMAGE_MIN_SIDE or height < IMAGE_MIN_SIDE:
        problems.append(
            Problem(
                field,
                f"image is {width}x{height} px; "
                f"width and height must be at least {IMAGE_MIN_SIDE} px",
            )
        )
    # 1:2.5 <= width:height <= 2.5:1, in integers: 2*w <= 5*h and 2*h <= 5*w.
    if width > 0 and height > 0 and (2 * width > 5 * height or 2 * height > 5 * width):
        problems.append(
            Problem(
                field,
                f"image is {width}x{height} px (aspect {width / height:.2f}); "
                "aspect ratio must be between 1:2.5 and 2.5:1",
            )
        )
    return problems


def check_image(data: bytes, *, field: str = "image") -> list[Problem]:
    """Check local image bytes against the documented input-image limits.

    Args:
        data: The whole image file.
        field: The field name the problems carry (``image``, ``image_list[1].image``...).

    Returns:
        Every problem found (format, size, dimensions, aspect), empty when valid.
    """
    return _info_problems(image_info(data), field)


def is_url(value: str) -> bool:
    """Whether ``value`` is an ``http://`` or ``https://`` URL (those are never fetched).

    Args:
        value: A field's value.

    Returns:
        ``True`` for an http(s) URL.
    """
    head = value[:8].lower()
    return head.startswith(("https://", "http://"))


def looks_like_base64(value: str) -> bool:
    """Whether ``value`` is well-formed standard base64 (optional ``=`` padding).

    Whitespace, ``data:`` prefixes and the URL-safe alphabet are refused: the API
    wants the plain standard encoding.

    Args:
        value: The text to inspect.

    Returns:
        ``True`` when it decodes as standard base64.
    """
    try:
        raw = value.encode("ascii")
    except UnicodeEncodeError:
        return False
    rest = raw.translate(None, _BASE64_ALPHABET)
    if rest not in (b"", b"=", b"==") or not raw.endswith(rest):
        return False  # foreign characters, or "=" anywhere but at the end
    data_chars = len(raw) - len(rest)
    return data_chars > 0 and data_chars % 4 != 1


def base64_decoded_size(value: str) -> int:
    """Size in bytes of the data a well-formed base64 string encodes, without decoding it.

    Args:
        value: Base64 text (see :func:`looks_like_base64`).

    Returns:
        The decoded length.
    """
    stripped = len(value.rstrip("="))
    return stripped * 3 // 4


def _pad(value: str) -> str:
    return value + "=" * (-len(value) % 4)


def decode_base64(value: str) -> bytes:
    """Decode standard base64 (padding optional).

    Args:
        value: Base64 text.

    Returns:
        The bytes.

    Raises:
        ValueError: ``value`` is not well-formed base64 (the message does not quote it).
    """
    if not looks_like_base64(value):
        raise ValueError("not well-formed base64")
    try:
        return base64.b64decode(_pad(value.rstrip("=")))
    except binascii.Error:
        raise ValueError("not well-formed base64") from None


def _decode_prefix(value: str, chars: int) -> bytes:
    # Whole groups of four only; padding can only sit in the final group.
    head = value[: chars - chars % 4] if len(value) > chars else value
    return base64.b64decode(_pad(head.rstrip("=")))


def _not_base64_problem(value: str, field: str, what: str) -> Problem:
    hint = ""
    if value.startswith("www."):
        hint = " (add the https:// scheme to a URL)"
    elif value.lower().endswith(_IMAGE_SUFFIXES) or value.startswith(("/", "./", "~")):
        hint = " (it looks like a file path: encode the file with kling_async.encode_image)"
    return Problem(field, f"must be an http(s) URL or plain base64 {what} data{hint}")


def _data_prefix_problem(field: str) -> Problem:
    return Problem(
        field,
        "base64 must not carry a 'data:' prefix (e.g. 'data:image/png;base64,'): "
        "send only the base64 part",
    )


def check_image_value(
    value: str, field: str, *, dimensions: bool = True
) -> tuple[list[Problem], ImageInfo | None]:
    """Check an image field's wire value: a URL, or base64 that is decoded and checked.

    URLs pass untouched (they are not fetched). A ``data:`` prefix is refused.
    Anything else must be standard base64 of a JPG/PNG within the documented limits.

    Args:
        value: The field's value (non-empty).
        field: Its path, for the problems.
        dimensions: Also check the minimum side and the aspect-ratio bounds (off for
            motion-brush masks, whose only documented geometry rule is to match the
            input image).

    Returns:
        The problems found, and the image's :class:`ImageInfo` when the value was
        base64 of a readable image (``None`` for URLs and undecodable values).
    """
    if is_url(value):
        return [], None
    if value[:5].lower() == "data:":
        return [_data_prefix_problem(field)], None
    if not looks_like_base64(value):
        return [_not_base64_problem(value, field, "image")], None
    size = base64_decoded_size(value)
    head = _decode_prefix(value, _HEADER_CHARS)
    fmt, width, height = _header(head)
    if fmt == "jpeg" and width is None and len(value) > _HEADER_CHARS:
        # The SOF segment sits after a large EXIF/ICC block: decode everything.
        fmt, width, height = _header(base64.b64decode(_pad(value.rstrip("="))))
    info = ImageInfo(format=fmt, width=width, height=height, size=size)
    return _info_problems(info, field, dimensions=dimensions), info


def audio_format(data: bytes) -> Literal["mp3", "wav", "m4a"] | None:
    """Guess an audio file's container from its first bytes.

    Args:
        data: The start of the file (12 bytes suffice).

    Returns:
        ``"mp3"`` (ID3 tag or MPEG frame sync), ``"wav"`` (RIFF/WAVE),
        ``"m4a"`` (ISO ``ftyp`` box), or ``None``.
    """
    if data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[4:8] == b"ftyp":
        return "m4a"
    return None


def check_audio_value(
    value: str, field: str, *, max_bytes: int | None = None, check_format: bool = True
) -> list[Problem]:
    """Check an audio field's wire value (``sound_file``): a URL, or base64 audio.

    Args:
        value: The field's value (non-empty).
        field: Its path, for the problems.
        max_bytes: Size limit of the decoded file; ``None`` for none.
        check_format: Require an MP3, WAV or M4A header.

    Returns:
        The problems found: ``data:`` prefix, malformed base64, a container other
        than MP3/WAV/M4A, or a file over ``max_bytes``.
    """
    if is_url(value):
        return []
    if value[:5].lower() == "data:":
        return [_data_prefix_problem(field)]
    if not looks_like_base64(value):
        return [_not_base64_problem(value, field, "audio")]
    problems: list[Problem] = []
    size = base64_decoded_size(value)
    if max_bytes is not None and size > max_bytes:
        problems.append(
            Problem(
                field,
                f"audio is {size} bytes; "
                f"at most {max_bytes // (1024 * 1024)} MB ({max_bytes} bytes)",
            )
        )
    if check_format and audio_format(_decode_prefix(value, 16)) is None:
        problems.append(
            Problem(field, "audio must be MP3, WAV or M4A (its header is none of these)")
        )
    return problems
