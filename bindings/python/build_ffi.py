"""Build-time helper: derive the cffi cdef from tollgate.h and make the builder.

The C declarations given to cffi are not written by hand: they are the
header itself with the preprocessor plumbing taken out, so the binding can
never drift from the C ABI it is compiled against.

* comments are removed and continued lines joined;
* the include guard is kept transparent, every other conditional block
  (``#if defined(_WIN32)``, ``#ifdef __cplusplus``) is dropped whole: in
  tollgate.h they only hold the export macro and ``extern "C"``;
* ``#include`` lines and the ``TG_API`` export macro are dropped;
* ``#define NAME <integer literal>`` is kept as it is (cffi needs literal
  values where they size arrays, e.g. ``TG_ERROR_MESSAGE_SIZE``), any other
  integer ``#define`` becomes ``#define NAME ...`` so the C compiler supplies
  the value; string and function-like macros are skipped.

In API mode cffi checks every declaration and every literal constant against
the real header when it compiles the extension, so a mistake here is a build
error, not a silent mismatch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, List

import cffi

HEADER_RELPATH = Path("include") / "tollgate" / "tollgate.h"

# The callbacks the breaker's, the price cache's and the risk checker's event
# hooks point at (see tollgate/breaker.py, price_cache.py, risk.py), and the
# binding's own C helpers (HELPERS_SOURCE).
EXTRA_CDEF = """
extern "Python" void _tollgate_breaker_event(void* user, const tg_breaker_event* ev);
extern "Python" void _tollgate_price_cache_event(void* user, const tg_eviction_event* ev);
int tgpy_route_table_match1(const tg_route_table* t, const char* method, size_t method_len,
                            const char* host, size_t host_len, const char* path,
                            size_t path_len, tg_route_match* out);
int tgpy_router_match1(const tg_router* r, const char* method, size_t method_len,
                       const char* host, size_t host_len, const char* path, size_t path_len,
                       tg_route_match* out);
extern "Python" void _tollgate_kill_event(void* user, const tg_kill_switch_event* ev);
int tgpy_risk_check1(tg_risk_checker* c, const char* account, size_t account_len,
                     const char* instrument, size_t instrument_len, const char* client_order_id,
                     size_t client_order_id_len, uint32_t side, double quantity,
                     double limit_price, uint64_t now_ns, tg_risk_decision* out);
int tgpy_risk_check_many(tg_risk_checker* c, const char* accounts, const uint32_t* account_lens,
                         const char* instruments, const uint32_t* instrument_lens,
                         const char* ids, const uint32_t* id_lens, const uint32_t* sides,
                         const double* quantities, const double* limit_prices, size_t n,
                         uint64_t now_ns, tg_risk_order* orders, tg_risk_decision* out);
"""

# cffi passes Python bytes to `const char*` parameters without a copy, but a
# struct field cannot hold them; these helpers build the tg_route_request of
# a request without headers (the tg_risk_order of an order) on the C stack,
# so a single match (risk check) from Python needs no cffi allocation at all.
HELPERS_SOURCE = """
static int tgpy_route_table_match1(const tg_route_table* t, const char* method,
                                   size_t method_len, const char* host, size_t host_len,
                                   const char* path, size_t path_len, tg_route_match* out) {
  tg_route_request r = {method, method_len, host, host_len, path, path_len, NULL, 0};
  return tg_route_table_match(t, &r, out);
}
static int tgpy_router_match1(const tg_router* rt, const char* method, size_t method_len,
                              const char* host, size_t host_len, const char* path,
                              size_t path_len, tg_route_match* out) {
  tg_route_request r = {method, method_len, host, host_len, path, path_len, NULL, 0};
  return tg_router_match(rt, &r, out);
}

/* The same for a risk check: the tg_risk_order of one order, on the C stack. */
static int tgpy_risk_check1(tg_risk_checker* c, const char* account, size_t account_len,
                            const char* instrument, size_t instrument_len,
                            const char* client_order_id, size_t client_order_id_len,
                            uint32_t side, double quantity, double limit_price,
                            uint64_t now_ns, tg_risk_decision* out) {
  tg_risk_order o;
  o.account = account;
  o.account_len = account_len;
  o.instrument = instrument;
  o.instrument_len = instrument_len;
  o.client_order_id = client_order_id;
  o.client_order_id_len = client_order_id_len;
  o.side = side;
  o.reserved = 0;
  o.quantity = quantity;
  o.limit_price = limit_price;
  return tg_risk_check(c, &o, now_ns, out);
}

/* A batch of orders from columns, filling the caller's orders[0..n) (one
 * allocation, by cffi) before the one tg_risk_check_many: the accounts are
 * laid end to end in `accounts`, account i being account_lens[i] bytes, and
 * likewise the instruments and client order ids (lengths are cheaper to
 * build in Python than offsets). NULL sides: all buy; NULL limit_prices:
 * all market orders. */
static int tgpy_risk_check_many(tg_risk_checker* c, const char* accounts,
                                const uint32_t* account_lens, const char* instruments,
                                const uint32_t* instrument_lens, const char* ids,
                                const uint32_t* id_lens, const uint32_t* sides,
                                const double* quantities, const double* limit_prices, size_t n,
                                uint64_t now_ns, tg_risk_order* orders, tg_risk_decision* out) {
  size_t i;
  for (i = 0; i < n; ++i) {
    tg_risk_order* o = &orders[i];
    o->account = accounts;
    o->account_len = account_lens[i];
    accounts += account_lens[i];
    o->instrument = instruments;
    o->instrument_len = instrument_lens[i];
    instruments += instrument_lens[i];
    o->client_order_id = ids;
    o->client_order_id_len = id_lens[i];
    ids += id_lens[i];
    o->side = sides != NULL ? sides[i] : TG_SIDE_BUY;
    o->reserved = 0;
    o->quantity = quantities[i];
    o->limit_price = limit_prices != NULL ? limit_prices[i] : NAN;
  }
  return tg_risk_check_many(c, orders, n, now_ns, out);
}
"""

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_DEFINE = re.compile(r"^#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(\(?)\s*(.*)$")
_INT_LITERAL = re.compile(r"^-?(0[xX][0-9a-fA-F]+|[0-9]+)[uUlL]*$")
_SKIPPED_MACROS = {"TG_API"}


def _strip_comments(text: str) -> str:
    # The header has no string literal containing comment markers; keep the
    # newlines of multi-line comments so that error line numbers still mean
    # something when reading the result.
    return _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)


def _logical_lines(text: str) -> Iterable[str]:
    return text.replace("\\\n", " ").splitlines()


def cdef_from_header(header_text: str) -> str:
    """Return cffi cdef source equivalent to ``header_text`` (tollgate.h)."""
    out: List[str] = []
    depth_skipped = 0  # nesting depth inside a dropped conditional block
    depth_kept = 0  # nesting depth of transparent blocks (the include guard)
    guard: str | None = None
    for raw in _logical_lines(_strip_comments(header_text)):
        line = raw.strip()
        if not line.startswith("#"):
            if depth_skipped == 0 and line:
                out.append(raw)
            continue
        directive = line[1:].strip()
        word = directive.split(None, 1)[0] if directive else ""
        if word in ("if", "ifdef", "ifndef"):
            if depth_skipped:
                depth_skipped += 1
            elif word == "ifndef" and guard is None and not out:
                guard = directive.split(None, 1)[1].strip()
                depth_kept += 1
            else:
                depth_skipped = 1
            continue
        if word in ("elif", "else"):
            continue  # every branch of a dropped block is dropped
        if word == "endif":
            if depth_skipped:
                depth_skipped -= 1
            elif depth_kept:
                depth_kept -= 1
            else:
                raise ValueError("unbalanced #endif in tollgate.h")
            continue
        if depth_skipped:
            continue
        if word == "define":
            m = _DEFINE.match(line)
            if not m:
                raise ValueError(f"cannot parse: {line}")
            name, paren, value = m.group(1), m.group(2), m.group(3).strip()
            if paren or name == guard or name in _SKIPPED_MACROS or not value:
                continue
            if value.startswith('"'):
                continue  # string constants are not integers; cffi cannot take them
            if _INT_LITERAL.match(value):
                out.append(f"#define {name} {value}")
            else:
                out.append(f"#define {name} ...")
            continue
        if word in ("include", "pragma", "undef", "error", "warning"):
            continue
        raise ValueError(f"unexpected preprocessor directive in tollgate.h: {line}")
    if depth_skipped or depth_kept:
        raise ValueError("unbalanced conditional in tollgate.h")
    text = "\n".join(out)
    for macro in _SKIPPED_MACROS:
        text = re.sub(rf"\b{macro}\b\s*", "", text)
    return text + "\n" + EXTRA_CDEF


def make_ffibuilder(repo_root: Path, lib_dir: Path) -> cffi.FFI:
    """An API-mode builder for ``tollgate._native`` linked to libtollgate.

    ``lib_dir`` holds the freshly built ``libtollgate.so``; at run time the
    extension finds ``libtollgate.so.0`` beside itself through ``$ORIGIN``.
    """
    header = (repo_root / HEADER_RELPATH).read_text(encoding="utf-8")
    ffibuilder = cffi.FFI()
    ffibuilder.cdef(cdef_from_header(header))
    ffibuilder.set_source(
        "tollgate._native",
        '#include <math.h>\n#include "tollgate/tollgate.h"\n' + HELPERS_SOURCE,
        include_dirs=[str(repo_root / "include")],
        library_dirs=[str(lib_dir)],
        libraries=["tollgate"],
        # A literal $ORIGIN: no shell sees this argument, the dynamic loader
        # expands it to the directory of the extension module.
        extra_link_args=["-Wl,-rpath,$ORIGIN"],
    )
    return ffibuilder


if __name__ == "__main__":  # print the derived cdef, for inspection
    import sys

    root = Path(__file__).resolve().parents[2]
    sys.stdout.write(cdef_from_header((root / HEADER_RELPATH).read_text(encoding="utf-8")))
