"""The rule tables are data a newcomer can trust: wired to the endpoint table, every
rule naming a real field, a tier and a source, and docs/validation.md generated from them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kling_async._endpoints import ENDPOINTS, endpoint_for
from kling_async._models import Tier
from kling_async._models._json import field_kinds
from kling_async._rules import KNOWN_MODELS, Rule, RuleTable
from kling_async._validation import render_rules_markdown

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "validation.md"

ALL_RULES = [(ep.name, rule) for ep in ENDPOINTS for rule in ep.rules.rules]


def _resolves(cls: type[Any], path: str) -> bool:
    """Whether a rule's wire path names a field of the model (``[]`` for list entries)."""
    current: type[Any] | None = cls
    for part in path.split("."):
        name = part.removesuffix("[]")
        if current is None or name not in field_kinds(current):
            return False
        kind, _ = field_kinds(current)[name]
        current = kind.model or (kind.item.model if kind.item is not None else None)
    return True


def test_every_endpoint_points_at_its_own_table() -> None:
    """Each row of the endpoint table carries the rule table of its family and model."""
    for ep in ENDPOINTS:
        assert isinstance(ep.rules, RuleTable)
        assert ep.rules.family == ep.name
        assert ep.rules.model is ep.request_type
        assert ep.rules.rules, ep.name


@pytest.mark.parametrize(("family", "rule"), ALL_RULES, ids=lambda v: getattr(v, "field", v))
def test_rule_names_real_fields(family: str, rule: Rule) -> None:
    """Every path a rule names exists in the family's request model (no typo in a table)."""
    model = endpoint_for(family).request_type
    tokens = [t for t in re.split(r" / | \+ ", rule.field) if t != "images"]
    assert tokens
    for token in tokens:
        assert _resolves(model, token), f"{family}: {rule.field!r} names no field"


@pytest.mark.parametrize(("family", "rule"), ALL_RULES, ids=lambda v: getattr(v, "field", v))
def test_rule_has_tier_and_source(family: str, rule: Rule) -> None:
    """A blocking rule cites the seeds; a warning rule cites a seed or says why it is a guess."""
    assert rule.says.strip()
    assert rule.kind.strip()
    if rule.tier is Tier.BLOCKS:
        assert re.match(r"seeds? \d{3}", rule.source), (family, rule.field, rule.source)
    else:
        assert rule.source.startswith(("seed ", "SDK inference: ")), (family, rule.source)


def test_accepts_external_id_follows_the_seeds() -> None:
    """Only video-extend and identify-face lack a documented external_task_id."""
    lacking = sorted(ep.name for ep in ENDPOINTS if not ep.accepts_external_id)
    assert lacking == ["identify-face", "video-extend"]


def test_known_models_cover_every_seed_example_model() -> None:
    """The model names used by the seeds' own examples are known (no warning on them)."""
    for name in ("kling-v3", "kling-v2.6", "kling-v1", "MaaS_KeLing_V1.6"):
        assert name in KNOWN_MODELS


def test_validation_doc_is_current() -> None:
    """docs/validation.md is exactly what the tables generate."""
    expected = render_rules_markdown()
    current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert current == expected, (
        "docs/validation.md is stale: regenerate it with `python scripts/gen_validation_doc.py`"
    )


def test_validation_doc_lists_every_rule() -> None:
    """Each rule's statement and source appear in the generated page."""
    text = render_rules_markdown()
    for _, rule in ALL_RULES:
        assert rule.source.replace("|", "\\|") in text
    for ep in ENDPOINTS:
        assert f"`POST {ep.path}`" in text


def test_generator_check_mode_reports_staleness(tmp_path: Path) -> None:
    """The generator's --check mode passes on the committed page."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_validation_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
