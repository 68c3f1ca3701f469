"""Tiny but valid media files, generated with the standard library only.

The fake gateway serves these as task outputs, so downloads, players and format
sniffers in a user's pipeline see real files:

- :func:`mp4_bytes`: an ISO-BMFF MP4 (``ftyp``, ``moov``, ``mdat``) holding one
  H.264 constrained-baseline frame (32x32, I_PCM macroblocks) lasting one second,
- :func:`png_bytes`: a 32x32 RGB PNG (zlib-compressed, correct CRCs),
- :func:`wav_bytes`: a quarter-second 8 kHz 16-bit mono PCM WAV tone,
- :func:`mp3_bytes`: MPEG-1 Layer III frames (valid headers, silent audio).

Each is built once and cached; each is a few kilobytes at most.
"""

from __future__ import annotations

import functools
import math
import struct
import zlib

__all__ = [
    "CONTENT_TYPES",
    "media_for_extension",
    "mp3_bytes",
    "mp4_bytes",
    "png_bytes",
    "wav_bytes",
]

#: MIME type of each extension the fake serves.
CONTENT_TYPES: dict[str, str] = {
    "mp4": "video/mp4",
    "png": "image/png",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}

# --- PNG ----------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@functools.lru_cache(maxsize=1)
def png_bytes() -> bytes:
    """A 32x32 8-bit RGB PNG with a soft gradient.

    Returns:
        The file's bytes.
    """
    width = height = 32
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        for x in range(width):
            rows += bytes((40 + x * 5, 80 + y * 4, 200 - x * 2))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _png_chunk(b"IEND", b"")
    )


# --- WAV ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def wav_bytes() -> bytes:
    """A 0.25 s, 8 kHz, 16-bit mono PCM WAV holding a quiet 440 Hz tone.

    Returns:
        The file's bytes.
    """
    rate, seconds, channels, bits = 8000, 0.25, 1, 16
    count = int(rate * seconds)
    samples = b"".join(
        struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(count)
    )
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- MP3 ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def mp3_bytes() -> bytes:
    """Ten MPEG-1 Layer III frames (32 kbit/s, 32 kHz, mono) of silence, about 0.36 s.

    Every frame has a valid header (sync ``0xFFF``, no CRC) and zeroed side
    information, which decoders play as silence.

    Returns:
        The file's bytes.
    """
    # FF FB: sync, MPEG-1, Layer III, no CRC. 0x18: 32 kbit/s, 32 kHz, no padding.
    # 0xC4: mono, original. Frame length = 144 * 32000 / 32000 = 144 bytes.
    header = bytes((0xFF, 0xFB, 0x18, 0xC4))
    frame = header + bytes(144 - len(header))
    return frame * 10


# --- MP4 / H.264 --------------------------------------------------------------------


class _Bits:
    """A most-significant-bit-first bit writer with Exp-Golomb codes."""

    def __init__(self) -> None:
        self._bits: list[int] = []

    def u(self, count: int, value: int) -> None:
        for shift in range(count - 1, -1, -1):
            self._bits.append((value >> shift) & 1)

    def ue(self, value: int) -> None:
        code = value + 1
        length = code.bit_length()
        self.u(length - 1, 0)
        self.u(length, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align_zero(self) -> None:
        while len(self._bits) % 8:
            self._bits.append(0)

    def raw(self, data: bytes) -> None:
        if len(self._bits) % 8:
            raise ValueError("raw bytes need byte alignment")
        for byte in data:
            self.u(8, byte)

    def trailing(self) -> None:
        self._bits.append(1)
        self.align_zero()

    def to_bytes(self) -> bytes:
        out = bytearray()
        for i in range(0, len(self._bits), 8):
            byte = 0
            for bit in self._bits[i : i + 8]:
                byte = (byte << 1) | bit
            out.append(byte)
        return bytes(out)


def _emulation_prevention(rbsp: bytes) -> bytes:
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


_WIDTH_MBS = 2
_HEIGHT_MBS = 2
_PROFILE, _COMPAT, _LEVEL = 66, 0xC0, 10


def _sps() -> bytes:
    b = _Bits()
    b.u(8, _PROFILE)
    b.u(8, _COMPAT)  # constraint_set0 and set1: constrained baseline
    b.u(8, _LEVEL)
    b.ue(0)  # seq_parameter_set_id
    b.ue(0)  # log2_max_frame_num_minus4
    b.ue(2)  # pic_order_cnt_type
    b.ue(1)  # max_num_ref_frames
    b.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    b.ue(_WIDTH_MBS - 1)
    b.ue(_HEIGHT_MBS - 1)
    b.u(1, 1)  # frame_mbs_only_flag
    b.u(1, 1)  # direct_8x8_inference_flag
    b.u(1, 0)  # frame_cropping_flag
    b.u(1, 0)  # vui_parameters_present_flag
    b.trailing()
    return b"\x67" + _emulation_prevention(b.to_bytes())


def _pps() -> bytes:
    b = _Bits()
    b.ue(0)  # pic_parameter_set_id
    b.ue(0)  # seq_parameter_set_id
    b.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    b.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    b.ue(0)  # num_slice_groups_minus1
    b.ue(0)  # num_ref_idx_l0_default_active_minus1
    b.ue(0)  # num_ref_idx_l1_default_active_minus1
    b.u(1, 0)  # weighted_pred_flag
    b.u(2, 0)  # weighted_bipred_idc
    b.se(0)  # pic_init_qp_minus26
    b.se(0)  # pic_init_qs_minus26
    b.se(0)  # chroma_qp_index_offset
    b.u(1, 1)  # deblocking_filter_control_present_flag
    b.u(1, 0)  # constrained_intra_pred_flag
    b.u(1, 0)  # redundant_pic_cnt_present_flag
    b.trailing()
    return b"\x68" + _emulation_prevention(b.to_bytes())


def _idr_slice() -> bytes:
    b = _Bits()
    b.ue(0)  # first_mb_in_slice
    b.ue(7)  # slice_type: I (all slices of the picture)
    b.ue(0)  # pic_parameter_set_id
    b.u(4, 0)  # frame_num
    b.ue(0)  # idr_pic_id
    b.u(1, 0)  # no_output_of_prior_pics_flag
    b.u(1, 0)  # long_term_reference_flag
    b.se(0)  # slice_qp_delta
    b.ue(1)  # disable_deblocking_filter_idc: off
    for index in range(_WIDTH_MBS * _HEIGHT_MBS):
        b.ue(25)  # mb_type: I_PCM
        b.align_zero()  # pcm_alignment_zero_bit
        luma = bytes((60 + 40 * index,)) * 256
        b.raw(luma + bytes((150,)) * 64 + bytes((110,)) * 64)
    b.trailing()
    return b"\x65" + _emulation_prevention(b.to_bytes())


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


@functools.lru_cache(maxsize=1)
def mp4_bytes() -> bytes:
    """A one-second MP4 holding a single 32x32 H.264 (constrained baseline) frame.

    Boxes: ``ftyp``, ``moov`` (``mvhd``, one video ``trak`` with an ``avc1``
    sample entry and its ``avcC``), then ``mdat`` with the frame.

    Returns:
        The file's bytes.
    """
    width, height = _WIDTH_MBS * 16, _HEIGHT_MBS * 16
    timescale, duration = 1000, 1000
    sps, pps, frame = _sps(), _pps(), _idr_slice()
    sample = struct.pack(">I", len(frame)) + frame

    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 512), b"isom", b"iso2", b"avc1", b"mp41")
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, duration),
        struct.pack(">IH", 0x00010000, 0x0100), bytes(10), _MATRIX, bytes(24),
        struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration), bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00")
    vmhd = _full_box(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    avcc = _box(
        b"avcC",
        bytes((1, _PROFILE, _COMPAT, _LEVEL, 0xFF, 0xE1)),
        struct.pack(">H", len(sps)), sps,
        bytes((1,)), struct.pack(">H", len(pps)), pps,
    )  # fmt: skip
    avc1 = _box(
        b"avc1",
        bytes(6), struct.pack(">H", 1), bytes(16),
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        bytes(32), struct.pack(">Hh", 0x0018, -1), avcc,
    )  # fmt: skip
    stsd = _full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1)
    stts = _full_box(b"stts", 0, 0, struct.pack(">III", 1, 1, duration))
    stss = _full_box(b"stss", 0, 0, struct.pack(">II", 1, 1))
    stsc = _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1))
    stsz = _full_box(b"stsz", 0, 0, struct.pack(">III", 0, 1, len(sample)))

    def moov_with(offset: int) -> bytes:
        stco = _full_box(b"stco", 0, 0, struct.pack(">II", 1, offset))
        stbl = _box(b"stbl", stsd, stts, stss, stsc, stsz, stco)
        minf = _box(b"minf", vmhd, dinf, stbl)
        mdia = _box(b"mdia", mdhd, hdlr, minf)
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))

    # The chunk offset does not change moov's size, so one trial build fixes it.
    offset = len(ftyp) + len(moov_with(0)) + 8
    return ftyp + moov_with(offset) + _box(b"mdat", sample)


def media_for_extension(extension: str) -> bytes:
    """The file served for an extension.

    Args:
        extension: ``mp4``, ``png``, ``wav`` or ``mp3`` (without the dot).

    Returns:
        The bytes.

    Raises:
        KeyError: Unknown extension.
    """
    makers = {"mp4": mp4_bytes, "png": png_bytes, "wav": wav_bytes, "mp3": mp3_bytes}
    return makers[extension.lower()]()
