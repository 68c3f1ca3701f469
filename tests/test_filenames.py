"""Output file names: readable when they can be, safe always, never shared by two keys."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kling_async._filenames import MAX_STEM, output_name, safe_stem

SAFE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _is_safe(stem: str) -> bool:
    return (
        bool(SAFE.fullmatch(stem))
        and len(stem) <= MAX_STEM
        and ".." not in stem
        and not stem.endswith(".")
    )


@pytest.mark.parametrize("key", ["clip-07", "a_b", "shot.1", "x" * MAX_STEM, "0"])
def test_plain_keys_are_kept_as_they_are(key: str) -> None:
    """A key that is already a safe lower-case stem is its own file name."""
    assert safe_stem(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "a/b",
        "..",
        ".",
        "",
        ".hidden",
        "-rf",
        "a..b",
        "tab\there",
        "nul\x00",
        "é",
        "x" * 1000,
        "trailing.",
        "Clip",
        "CON",
        "nul.txt",
        "abc-0123456789ab",
    ],
)
def test_other_keys_get_a_safe_prefix_and_a_hash(key: str) -> None:
    """Unsafe, too long, upper-case, device-like or hash-like keys are sanitized and hashed."""
    stem = safe_stem(key)
    assert stem != key
    assert _is_safe(stem)
    assert re.search(r"-[0-9a-f]{12}\Z", stem)
    assert stem.split(".", 1)[0].upper() not in {"CON", "NUL"}


def test_a_slash_and_an_underscore_never_meet() -> None:
    """'a/b' and 'a_b' map to different names, as do '..' and '_'."""
    assert safe_stem("a/b") != safe_stem("a_b")
    assert safe_stem("..") != safe_stem("_")
    assert safe_stem("Clip").lower() != safe_stem("clip").lower()


def test_a_thousand_character_key_is_cut_to_a_readable_prefix() -> None:
    """Long keys keep their start, so a person still recognises them."""
    stem = safe_stem("episode-" + "x" * 992)
    assert stem.startswith("episode-xxx")
    assert len(stem) == MAX_STEM


@given(st.lists(st.text(max_size=120), min_size=2, max_size=30, unique=True))
@settings(max_examples=300, deadline=None)
def test_distinct_keys_give_distinct_safe_names_even_ignoring_case(keys: list[str]) -> None:
    """Any set of distinct keys maps to distinct, safe, case-insensitively distinct stems."""
    stems = [safe_stem(key) for key in keys]
    assert all(_is_safe(stem) for stem in stems)
    assert len({stem.lower() for stem in stems}) == len(keys)


def test_output_names_follow_the_key() -> None:
    """One output is {key}.{ext}; several are {key}-{n}.{ext}, counted from 1."""
    assert output_name("clip-07", 0, 1, "mp4") == "clip-07.mp4"
    assert [output_name("cat", i, 3, ".PNG") for i in range(3)] == [
        "cat-1.png",
        "cat-2.png",
        "cat-3.png",
    ]
    assert output_name("a/b", 0, 1, "mp4") == safe_stem("a/b") + ".mp4"


def test_a_hostile_extension_becomes_bin() -> None:
    """An extension that is not 1-8 letters or digits cannot smuggle a path in."""
    assert output_name("k", 0, 1, "../../x") == "k.bin"
    assert output_name("k", 0, 1, "") == "k.bin"
    assert output_name("k", 0, 1, "mp4\n") == "k.mp4"


def test_an_index_outside_the_outputs_is_refused() -> None:
    """index must be within range(count)."""
    with pytest.raises(ValueError, match="range"):
        output_name("k", 1, 1, "mp4")
    with pytest.raises(ValueError, match="range"):
        output_name("k", -1, 2, "mp4")
