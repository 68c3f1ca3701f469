"""The public surface: a curated, sorted __all__ that matches what the root exports."""

from __future__ import annotations

import inspect

import kling_async


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists exactly the public names defined at the root, in sorted order."""
    public = {
        name
        for name, value in vars(kling_async).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("kling_async")
    }
    assert set(kling_async.__all__) >= public
    assert kling_async.__all__ == sorted(kling_async.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_name_is_documented() -> None:
    """Each exported class and function has a docstring."""
    missing = [
        name
        for name in kling_async.__all__
        if (inspect.isclass(obj := getattr(kling_async, name)) or inspect.isfunction(obj))
        and not (obj.__doc__ or "").strip()
    ]
    assert missing == []
