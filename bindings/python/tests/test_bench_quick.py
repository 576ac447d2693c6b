"""The comparison benchmark still runs (a few iterations; nothing about speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "python" / "bench_compare.py"


@pytest.mark.skipif(not SCRIPT.is_file(), reason="benchmarks/python/bench_compare.py not in this tree")
def test_bench_compare_quick_runs() -> None:
    pytest.importorskip("limits", reason="the benchmark's peer `limits` is not installed")
    pytest.importorskip("pybreaker", reason="the benchmark's peer `pybreaker` is not installed")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=str(SCRIPT.parent),
    )
    assert done.returncode == 0, done.stderr
    assert "| operation | tollgate" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| limiter") or line.startswith("| breaker")]
    assert len(rows) >= 8
    risk = [line for line in done.stdout.splitlines() if line.startswith("| risk")]
    assert len(risk) == 3, done.stdout
    auth = [line for line in done.stdout.splitlines() if line.startswith("| auth")]
    assert len(auth) == 3 and all("stdlib hmac" in line for line in auth), done.stdout
