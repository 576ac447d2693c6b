"""Loading of the native module and helpers shared by the wrappers."""

from __future__ import annotations

import math
import operator
from typing import Any, Optional, Union

from ._native import ffi, lib
from .errors import invalid

__all__ = ["ffi", "lib", "NULL", "U32_MAX", "U64_MAX", "now_ns", "Key"]

NULL = ffi.NULL
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

#: A key: bytes as they are, or a str (encoded as UTF-8).
Key = Union[bytes, bytearray, memoryview, str]


def version_compatible(header: int, loaded: int) -> bool:
    """Can a binding built against ``header`` use library version ``loaded``?

    Same major version and a library at least as new; before 1.0 a minor
    release may break the ABI, so the minor version must match too.
    """
    header_major, header_minor = header // 10000, header // 100 % 100
    loaded_major, loaded_minor = loaded // 10000, loaded // 100 % 100
    if loaded_major != header_major or loaded < header:
        return False
    return header_major != 0 or loaded_minor == header_minor


def _check_version() -> None:
    header = lib.TG_VERSION_NUMBER
    loaded = lib.tg_version_number()
    if not version_compatible(header, loaded):
        raise ImportError(
            f"tollgate: the loaded libtollgate is version {loaded} "
            f"({ffi.string(lib.tg_version_string()).decode()}) but the binding was built "
            f"against tollgate.h version {header}; reinstall the package"
        )


_check_version()

#: The library version string, e.g. "0.1.0".
LIBRARY_VERSION: str = ffi.string(lib.tg_version_string()).decode("ascii")



def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds, as the library reads it (tg_now_ns)."""
    return int(lib.tg_now_ns())


def coerce_key(key: Any) -> bytes:
    """``key`` as bytes: str is UTF-8 encoded, buffers are copied."""
    if isinstance(key, bytes):
        return bytes(key)
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"a key must be bytes or str, not {type(key).__name__}")


def check_uint(name: str, value: Any, maximum: int, minimum: int = 0) -> int:
    """Validate an integer argument, with an error that names it."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            if math.isnan(value):
                raise invalid(f"{name} must be an integer, not NaN")
            raise TypeError(f"{name} must be an int, not float ({value!r})")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None
    if value < minimum:
        if minimum == 1:
            raise invalid(f"{name} must be >= 1, got {value}")
        raise invalid(f"{name} must not be negative, got {value}")
    if value > maximum:
        raise invalid(f"{name} must be <= {maximum}, got {value}")
    return int(value)


def batch_index(index: Any, n: int, what: str) -> int:
    """A sequence index (negative counts from the end) checked against n."""
    i: int = index.__index__()
    if i < 0:
        i += n
    if not 0 <= i < n:
        raise IndexError(what + " index out of range")
    return i


def check_now(now: Optional[int]) -> int:
    if now is None:
        return int(lib.tg_now_ns())
    return check_uint("now_ns", now, U64_MAX)


def check_float(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    number = float(value)
    if math.isnan(number):
        raise invalid(f"{name} must be a number, not NaN")
    return number
