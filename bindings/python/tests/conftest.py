"""Shared fixtures of the tollgate binding tests.

The tests run against the installed package (``pip install ./bindings/python``).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pytest

# `python -m pytest` run from bindings/python puts the source tree first on
# sys.path; unless the extension was built in place there, test the
# installed package instead.
_SOURCE_ROOT = Path(__file__).resolve().parents[1]
if not any((_SOURCE_ROOT / "tollgate").glob("_native*")):
    sys.path[:] = [
        p for p in sys.path if Path(os.path.abspath(p or os.curdir)) != _SOURCE_ROOT
    ]

try:
    import tollgate  # noqa: F401
except ImportError as exc:  # pragma: no cover - a setup problem, not a test
    raise pytest.UsageError(
        f"cannot import tollgate ({exc}); install it first with "
        "`pip install ./bindings/python` from the repository root, and run pytest "
        "from a directory where the source tree does not shadow the installed package"
    ) from exc

#: A monotonic time far from zero, so that tests can also step backwards.
T0 = 1_000_000_000_000
SECOND = 1_000_000_000


def emission_interval(rate: float, multiplier: float = 1.0) -> int:
    """T = round(1e9 / (rate * multiplier)) as the header defines it (half up)."""
    return max(1, math.floor(1e9 / (rate * multiplier) + 0.5))


@pytest.fixture
def t0() -> int:
    return T0
