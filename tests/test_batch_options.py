"""BatchOptions: one frozen, checked object; session.batch() mirrors it with real types."""

from __future__ import annotations

import inspect
from pathlib import Path

import attrs
import pytest

from kling_async import KlingSession
from kling_async.batch import Batch, BatchOptions


def test_session_batch_takes_every_option_by_name_with_the_same_default() -> None:
    """session.batch's keyword arguments are exactly BatchOptions' fields and defaults."""
    parameters = inspect.signature(KlingSession.batch).parameters
    keywords = {name: p.default for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY}
    fields = {f.name: f.default for f in attrs.fields(BatchOptions)}
    assert keywords == fields


def test_session_batch_has_no_catch_all_keywords() -> None:
    """No **options: every option is typed and visible to editors and type checkers."""
    kinds = {p.kind for p in inspect.signature(KlingSession.batch).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds


def test_options_are_frozen_and_checked_by_field_name() -> None:
    """Out-of-range values raise ValueError naming the field; options cannot be mutated."""
    with pytest.raises(ValueError, match="reconcile_deadline"):
        BatchOptions(reconcile_deadline=0)
    with pytest.raises(ValueError, match="max_refusals_per_second"):
        BatchOptions(max_refusals_per_second=0)
    with pytest.raises(ValueError, match="lookup_patience"):
        BatchOptions(lookup_patience=-1)
    options = BatchOptions(journal="run.db", download_dir="out")
    assert options.journal == Path("run.db")
    assert options.download_dir == Path("out")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.max_running = 3  # type: ignore[misc]


async def test_a_batch_takes_options_and_keyword_changes_over_them() -> None:
    """Batch(session, options, **changes) applies the changes over the options object."""
    async with KlingSession.from_env(
        environ={"KLING_API_KEY": "k", "KLING_ENDPOINT_PATH": "p"}
    ) as s:
        batch = Batch(s, BatchOptions(max_running=3, seed=7), max_units=5.0)
        assert batch.options == BatchOptions(max_running=3, seed=7, max_units=5.0)
        assert batch.max_running == 3
        with pytest.raises(TypeError):
            Batch(s, no_such_option=1)
