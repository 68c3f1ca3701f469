"""Regenerate docs/validation.md from the rule tables (kling_async/_rules).

Usage: ``python scripts/gen_validation_doc.py`` (writes the file) or
``python scripts/gen_validation_doc.py --check`` (exit status 1 when it is stale).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kling_async._validation import render_rules_markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "validation.md"


def main(argv: list[str] | None = None) -> int:
    """Write (or check) docs/validation.md; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that it is current")
    args = parser.parse_args(argv)
    text = render_rules_markdown()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            sys.stderr.write(f"{DOC} is stale: run python scripts/gen_validation_doc.py\n")
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
