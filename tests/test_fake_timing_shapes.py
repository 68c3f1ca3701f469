"""The fake's gateway-shape knobs: duration models, queue waits and jittered status timing.

The draws are checked on the fake's store directly (seeded, no clock involved) and
once end to end: a task in its queue wait holds its concurrency slot. Defaults are
pinned against the log-normal formula so that no knob changes an existing run.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from kling_async.testing import FakeConfig, run_fake_gateway
from kling_async.testing._config import DURATION_MODELS
from kling_async.testing._store import Store

PREFIX = "/v1/ai/test-endpoint/kling"
AUTH = {"Authorization": "Bearer test-key"}
BODY = {"model_name": "kling-v2-6", "prompt": "a lighthouse", "mode": "std", "duration": "5"}


def _store(**overrides: Any) -> Store:
    return Store(FakeConfig(**overrides), lambda: 0.0, 0.0)


def _timings(n: int, **overrides: Any) -> list[tuple[float, float]]:
    store = _store(**overrides)
    return [store.draw_timing("video", 1.0) for _ in range(n)]


def test_default_timing_is_the_lognormal_formula() -> None:
    """With every knob at its default, lives are median * exp(N(0, sigma)) and 10 % is queued."""
    rng = random.Random("7-life")
    for to_processing, to_end in _timings(50, seed=7, time_scale=0.5):
        expected = 100.0 * math.exp(rng.gauss(0.0, 0.25)) * 0.5
        assert to_end == expected
        assert to_processing == expected * 0.1


def test_queue_knobs_leave_lives_unchanged() -> None:
    """A queue wait and a jittered share draw from their own sequences: the lives stay put."""
    plain = _timings(40, seed=3)
    shaped = _timings(40, seed=3, queue_wait_median=30.0, queue_fraction_jitter=0.1)
    store = _store(seed=3)
    lives = [store.draw_life("video", 1.0) for _ in range(40)]
    assert [end for _, end in plain] == lives
    waits = [end - life for (_, end), life in zip(shaped, lives, strict=True)]
    assert all(w > 0 for w in waits)
    assert len({round(w, 9) for w in waits}) == len(waits)


def test_queue_wait_median_and_exponential_model() -> None:
    """The added wait has the configured median, log-normal or exponential."""
    store = _store(seed=1)
    lives = [store.draw_life("video", 1.0) for _ in range(4000)]
    for model in ("lognormal", "exponential"):
        timed = _timings(4000, seed=1, queue_wait_median=30.0, queue_wait_model=model)
        waits = [end - life for (_, end), life in zip(timed, lives, strict=True)]
        assert statistics.median(waits) == pytest.approx(30.0, rel=0.08), model
    exp_waits = [
        end - life
        for (_, end), life in zip(
            _timings(4000, seed=1, queue_wait_median=30.0, queue_wait_model="exponential"),
            lives,
            strict=False,
        )
    ]
    # An exponential of median 30 has mean 30 / ln 2.
    assert statistics.fmean(exp_waits) == pytest.approx(30.0 / math.log(2.0), rel=0.08)


def test_queue_wait_is_spent_submitted() -> None:
    """The wait comes before processing: the task starts processing after wait + share of life."""
    store = _store(seed=5)
    lives = [store.draw_life("video", 1.0) for _ in range(100)]
    for (to_processing, to_end), life in zip(
        _timings(100, seed=5, queue_wait_median=20.0), lives, strict=True
    ):
        wait = to_end - life
        assert to_processing == pytest.approx(wait + 0.1 * life)


def test_queue_fraction_jitter_spreads_the_submitted_share() -> None:
    """Each task's submitted share is drawn within queue_fraction ± jitter, clipped to [0, 1]."""
    shares = [
        p / e for p, e in _timings(2000, seed=2, queue_fraction=0.2, queue_fraction_jitter=0.15)
    ]
    assert min(shares) >= 0.05 - 1e-9
    assert max(shares) <= 0.35 + 1e-9
    assert statistics.pstdev(shares) > 0.05
    clipped = [
        p / e for p, e in _timings(500, seed=2, queue_fraction=0.05, queue_fraction_jitter=0.5)
    ]
    assert min(clipped) == 0.0
    assert max(clipped) <= 0.55 + 1e-9


@pytest.mark.parametrize("model", [m for m in DURATION_MODELS if m != "lognormal"])
def test_duration_models_keep_the_median(model: str) -> None:
    """Every non-default duration model is centred on the configured median."""
    lives = [end for _, end in _timings(6000, seed=11, duration_model=model, video_sigma=0.3)]
    assert all(life > 0 for life in lives)
    if model == "bimodal":
        # Two modes at 50 and 150: the overall median lies between them.
        assert 50.0 < statistics.median(lives) < 150.0
    else:
        assert statistics.median(lives) == pytest.approx(100.0, rel=0.05)


def test_gamma_spread_follows_sigma() -> None:
    """The gamma model's coefficient of variation is sigma."""
    lives = [end for _, end in _timings(6000, seed=4, duration_model="gamma", video_sigma=0.4)]
    cv = statistics.pstdev(lives) / statistics.fmean(lives)
    assert cv == pytest.approx(0.4, rel=0.08)


def test_shifted_exponential_has_a_floor() -> None:
    """No life of the shifted exponential falls below median * (1 - sigma ln 2)."""
    lives = [
        end
        for _, end in _timings(3000, seed=8, duration_model="shifted_exponential", video_sigma=0.5)
    ]
    floor = 100.0 * (1.0 - 0.5 * math.log(2.0))
    assert min(lives) >= floor
    assert min(lives) < floor + 2.0


def test_bimodal_has_two_modes() -> None:
    """The bimodal model puts bimodal_share of the lives near the short mode, the rest long."""
    lives = [
        end
        for _, end in _timings(
            4000,
            seed=9,
            duration_model="bimodal",
            video_sigma=0.05,
            bimodal_share=0.3,
            bimodal_spread=0.6,
        )
    ]
    short = [life for life in lives if life < 100.0]
    assert len(short) / len(lives) == pytest.approx(0.3, abs=0.03)
    assert statistics.median(short) == pytest.approx(40.0, rel=0.03)
    long_ = [life for life in lives if life >= 100.0]
    assert statistics.median(long_) == pytest.approx(160.0, rel=0.03)


def test_zero_sigma_models_are_exact() -> None:
    """With sigma 0 every model except bimodal gives exactly the median."""
    for model in ("lognormal", "gamma", "shifted_exponential"):
        lives = {end for _, end in _timings(5, duration_model=model, video_sigma=0.0)}
        assert lives == {100.0}, model


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("duration_model", "weibull"),
        ("queue_wait_model", "uniform"),
        ("bimodal_share", 1.5),
        ("bimodal_spread", 1.0),
        ("bimodal_spread", -0.1),
        ("queue_fraction_jitter", -0.1),
        ("queue_fraction_jitter", 2.0),
        ("queue_wait_median", -1.0),
        ("queue_wait_sigma", -0.5),
    ],
)
def test_knobs_are_validated(field: str, value: Any) -> None:
    """An out-of-range or unknown knob value is refused when the config is built."""
    with pytest.raises(ValueError, match=field):
        FakeConfig(**{field: value})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_queue_wait_holds_the_slot(http: aiohttp.ClientSession) -> None:
    """A task waiting in the queue is submitted and holds its slot until its life ends."""
    config = FakeConfig(
        time_scale=1.0, max_running=1, queue_wait_median=1000.0, queue_wait_sigma=0.0
    )
    async with run_fake_gateway(config) as fake:
        url = f"{fake.url}{PREFIX}/videos/text2video"
        async with http.post(url, json=BODY, headers=AUTH) as resp:
            created = await resp.json()
        task_id = created["data"]["task_id"]
        fake.advance(900.0)
        async with http.get(f"{url}/{task_id}", headers=AUTH) as resp:
            assert (await resp.json())["data"]["task_status"] == "submitted"
        async with http.post(url, json=BODY, headers=AUTH) as resp:
            assert resp.status == 429
            assert (await resp.json())["code"] == 1303
        record = fake.task_records()[0]
        assert record["duration_s"] > 1000.0
        assert record["started"] - record["created"] > 1000.0
        fake.advance(record["duration_s"])
        async with http.get(f"{url}/{task_id}", headers=AUTH) as resp:
            assert (await resp.json())["data"]["task_status"] == "succeed"
        async with http.post(url, json=BODY, headers=AUTH) as resp:
            assert (await resp.json())["code"] == 0
