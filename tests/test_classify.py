"""The one table that decides a failed request's fate (kling_async._classify)."""

from __future__ import annotations

import pytest

from kling_async._classify import Verdict, classify
from kling_async._errors import (
    ConnectError,
    CreateOutcomeUnknownError,
    RequestTimeoutError,
    ResponseDecodeError,
    ValidationError,
    make_api_error,
)


def _api(status: int, code: int | None) -> BaseException:
    return make_api_error(http_status=status, code=code, message="m", request_id=None)


@pytest.mark.parametrize(
    ("error", "create", "read"),
    [
        (ConnectError("refused"), Verdict.RETRY, Verdict.RETRY),
        (_api(429, 1302), Verdict.RATE_LIMITED, Verdict.RATE_LIMITED),
        (_api(429, None), Verdict.RATE_LIMITED, Verdict.RATE_LIMITED),
        (_api(429, 1303), Verdict.NO_SLOT, Verdict.NO_SLOT),
        (RequestTimeoutError("slow"), Verdict.UNCLEAR, Verdict.RETRY),
        (ResponseDecodeError("junk"), Verdict.UNCLEAR, Verdict.RETRY),
        (_api(500, 5000), Verdict.UNCLEAR, Verdict.RETRY),
        (_api(502, None), Verdict.UNCLEAR, Verdict.RETRY),
        (_api(401, 1002), Verdict.HALT_KEY, Verdict.HALT_KEY),
        (_api(401, None), Verdict.HALT_KEY, Verdict.HALT_KEY),
        (_api(403, 1101), Verdict.HALT_ACCOUNT, Verdict.HALT_ACCOUNT),
        (_api(404, 1202), Verdict.HALT_ROUTE, Verdict.HALT_ROUTE),
        (_api(404, None), Verdict.HALT_ROUTE, Verdict.NOT_FOUND),
        (_api(404, 1203), Verdict.REFUSED, Verdict.NOT_FOUND),
        (_api(400, 1201), Verdict.REFUSED, Verdict.REFUSED),
        (_api(400, 1301), Verdict.REFUSED, Verdict.REFUSED),
        (_api(403, 1103), Verdict.REFUSED, Verdict.REFUSED),
        (_api(418, 4242), Verdict.UNCLEAR, Verdict.RETRY),
        (ValidationError([]), Verdict.REFUSED, Verdict.REFUSED),
        (RuntimeError("bug"), Verdict.UNCLEAR, Verdict.RETRY),
    ],
)
def test_table(error: BaseException, create: Verdict, read: Verdict) -> None:
    """Each failure maps to one verdict per phase, as the module's table says."""
    assert classify(error, phase="create") is create
    assert classify(error, phase="read") is read


def test_invalid_after_a_possible_landing_means_exists() -> None:
    """A 1200/1201 after an attempt that may have landed is the collision with that task."""
    assert classify(_api(400, 1201), phase="create", sent_before=True) is Verdict.EXISTS
    assert classify(_api(400, 1200), phase="create", sent_before=True) is Verdict.EXISTS
    assert classify(_api(400, 1201), phase="read", sent_before=True) is Verdict.REFUSED


def test_unknown_outcome_is_unclear() -> None:
    """A create whose outcome could not be settled may exist: it is never REFUSED."""
    err = CreateOutcomeUnknownError("x", external_task_id="e", endpoint="text_to_video")
    verdict = classify(err, phase="create")
    assert verdict is Verdict.UNCLEAR
    assert verdict.may_exist
    assert not verdict.halts


def test_halts() -> None:
    """Only the three setting/account verdicts halt."""
    assert {v for v in Verdict if v.halts} == {
        Verdict.HALT_KEY,
        Verdict.HALT_ROUTE,
        Verdict.HALT_ACCOUNT,
    }
