"""benchmarks/fake_server.py: the fake's throughput measurement runs and stops by itself."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fake_server.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fake_server_benchmark", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_measure_fake_reports_requests_without_errors() -> None:
    """A short bounded run answers every request and reports a positive rate."""
    module = _load()
    result = module.measure_fake(duration_s=0.3, concurrency=4)
    assert result["requests"] > 0
    assert result["errors"] == 0
    assert result["requests_per_s"] > 0
    assert callable(module.measure_fake_rps)  # the harness's entry point
