"""Test helpers: an embedded fake Kling gateway (work in progress)."""
