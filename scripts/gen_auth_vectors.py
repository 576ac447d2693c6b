#!/usr/bin/env python3
"""Writes tests/vectors/auth_vectors.txt: the shared request-signing vectors.

This is a second, independent implementation of the canonical request of
docs/auth.md, in plain Python (hashlib and hmac from the standard library,
no tollgate code), so that the committed vectors check the library against
the specification rather than against itself. Every language's tests read
the file; regenerate it only when the specification changes:

    python3 scripts/gen_auth_vectors.py > tests/vectors/auth_vectors.txt
"""
import hashlib
import hmac
import sys

SCHEME = "TG1-HMAC-SHA256"
PCHAR = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@")
UNRESERVED = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
ID = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class Malformed(Exception):
    pass


def unescape(raw, what):
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x25:  # %
            h = raw[i + 1:i + 3]
            if len(h) != 2 or not all(x in b"0123456789abcdefABCDEF" for x in h):
                raise Malformed(what)
            out.append(int(h, 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def normal_path(raw):
    if not raw.startswith(b"/") or b"\\" in raw:
        raise Malformed("bad_path")
    segments = []
    for seg in raw.split(b"/"):
        if not seg:
            continue
        if any(c < 0x20 or c == 0x7F for c in seg):
            raise Malformed("bad_path")
        d = unescape(seg, "bad_path")
        if b"/" in d or b"\\" in d or any(c < 0x20 or c == 0x7F for c in d):
            raise Malformed("bad_path")
        if d == b".":
            continue
        if d == b"..":
            if segments:
                segments.pop()
            continue
        segments.append(d)
    enc = lambda s: "".join(chr(c) if c in PCHAR else "%%%02X" % c for c in s)
    return "/" + "/".join(enc(s) for s in segments)


def canonical_query(raw):
    if not raw:
        return ""
    params = []
    for comp in raw.split(b"&"):
        if not comp:
            raise Malformed("bad_query")
        if any(c <= 0x20 or c == 0x7F for c in comp):
            raise Malformed("bad_query")
        key, eq, value = comp.partition(b"=")
        params.append((unescape(key, "bad_query"), bool(eq), unescape(value, "bad_query")))
    if len(params) > 64:
        raise Malformed("bad_query")
    params.sort()
    enc = lambda s: "".join(chr(c) if c in UNRESERVED else "%%%02X" % c for c in s)
    return "&".join(enc(k) + ("=" + enc(v) if has else "") for k, has, v in params)


def canonical(method, target, headers, body, key_id, token, ts, nonce, signed):
    if not (1 <= len(method) <= 16 and all("A" <= c <= "Z" for c in method)):
        raise Malformed("bad_method")
    if not (1 <= len(key_id) <= 64 and all(ord(c) in ID for c in key_id)):
        raise Malformed("bad_key_id")
    if token and not (len(token) <= 128 and all(ord(c) in ID for c in token)):
        raise Malformed("bad_token")
    if not (8 <= len(nonce) <= 64 and all(ord(c) in ID or c == "~" for c in nonce)):
        raise Malformed("bad_nonce")
    names = signed.split(";") if signed else []
    if (any(not n or not all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in n)
            for n in names) or names != sorted(set(names)) or len(names) > 16):
        raise Malformed("bad_signed_headers")
    if b"#" in target:
        raise Malformed("bad_path")
    path, _, query = target.partition(b"?")
    lines = [SCHEME, method, normal_path(path), canonical_query(query), signed]
    for n in names:
        found = [v for (hn, v) in headers if hn.lower() == n]
        if not found:
            raise Malformed("missing_header")
        if len(found) > 1:
            raise Malformed("repeated_header")
        v = found[0].strip(" \t")
        if len(v) > 8192 or any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in v):
            raise Malformed("bad_header_value")
        lines.append("%s:%s" % (n, v))
    lines += [key_id, token, str(ts), nonce, hashlib.sha256(body).hexdigest()]
    return "\n".join(lines)


def authorization(secret, canon, key_id, token, ts, nonce, signed):
    sig = hmac.new(secret, canon.encode("latin-1"), hashlib.sha256).hexdigest()
    parts = ["KeyId=" + key_id]
    if signed:
        parts.append("SignedHeaders=" + signed)
    parts += ["Timestamp=%d" % ts, "Nonce=" + nonce]
    if token:
        parts.append("Token=" + token)
    parts.append("Signature=" + sig)
    return SCHEME + " " + ", ".join(parts)


def hx(b):
    if isinstance(b, str):
        b = b.encode("latin-1")
    return b.hex() if b else "-"


def headers_field(headers):
    if not headers:
        return "-"
    return ",".join("%s:%s" % (n.encode("latin-1").hex(), v.encode("latin-1").hex())
                    for n, v in headers)


RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

T = 1700000000123456789
JSON_HEADERS = [("Host", "gw.example"), ("Content-Type", "application/json")]

SIGN = [
    # name, secret, method, target, headers, body, key_id, token, ts, nonce, signed
    ("get-minimal", b"secret-1", "GET", b"/", [], b"", "k1", "", T, "nonce-000001", ""),
    ("post-order", b"s3cr3t-key-one-0123456789abcdef", "POST",
     b"/v1/orders?account=A1&symbol=ES", JSON_HEADERS, b'{"qty":10,"px":4500.25}', "k1", "",
     T, "n-7f3a9c2e", "content-type;host"),
    ("path-normalised", b"secret-1", "GET", b"/a//b/./c/../d/", [], b"", "k1", "", T,
     "nonce-000003", ""),
    ("path-escapes", b"secret-1", "GET", b"/caf%C3%A9/%7euser/%2e%2e/x%20y", [], b"", "k1", "",
     T, "nonce-000004", ""),
    ("query-canonical", b"secret-1", "GET",
     b"/q?z=last&a=2&a=1&flag&empty=&sp=a+b%20c&pct=%e2%82%ac&A=upper", [], b"", "k1", "", T,
     "nonce-000005", ""),
    ("query-empty", b"secret-1", "GET", b"/q?", [], b"", "k1", "", T, "nonce-000006", ""),
    ("token", b"secret-1", "DELETE", b"/v1/orders/42", [("Host", "gw.example")], b"", "key.2024-11",
     "session_9.x", T, "nonce.0007~x", "host"),
    ("header-trim-case", b"secret-1", "PUT", b"/h",
     [("X-Custom", " \t v a  l\t "), ("HOST", "Gw.Example"), ("x-other", "unsigned")],
     b"body", "k1", "", T, "nonce-000008", "host;x-custom"),
    ("long-body", b"secret-1", "POST", b"/bulk", [], bytes(range(256)) * 4, "k1", "", T,
     "nonce-000009", ""),
    ("long-secret", b"K" * 100, "GET", b"/k", [], b"", "k-long", "", 0, "nonce-000010", ""),
]

REJECT = [
    # name, method, target, headers, body, key_id, token, ts, nonce, signed, detail
    ("lower-method", "get", b"/", [], b"", "k1", "", T, "nonce-r00001", ""),
    ("encoded-slash", "GET", b"/a%2Fb", [], b"", "k1", "", T, "nonce-r00002", ""),
    ("backslash", "GET", b"/a\\b", [], b"", "k1", "", T, "nonce-r00003", ""),
    ("fragment", "GET", b"/a#b", [], b"", "k1", "", T, "nonce-r00004", ""),
    ("relative-path", "GET", b"a/b", [], b"", "k1", "", T, "nonce-r00005", ""),
    ("bad-escape", "GET", b"/q?a=%zz", [], b"", "k1", "", T, "nonce-r00006", ""),
    ("empty-param", "GET", b"/q?a=1&&b=2", [], b"", "k1", "", T, "nonce-r00007", ""),
    ("missing-header", "GET", b"/", [], b"", "k1", "", T, "nonce-r00008", "host"),
    ("repeated-header", "GET", b"/", [("Host", "a"), ("host", "b")], b"", "k1", "", T,
     "nonce-r00009", "host"),
    ("header-newline", "GET", b"/", [("Host", "a\nhost:b")], b"", "k1", "", T, "nonce-r00010",
     "host"),
    ("short-nonce", "GET", b"/", [], b"", "k1", "", T, "short", ""),
    ("unsorted-signed", "GET", b"/", [("a", "1"), ("b", "2")], b"", "k1", "", T, "nonce-r00012",
     "b;a"),
    ("bad-key-id", "GET", b"/", [], b"", "bad id", "", T, "nonce-r00013", ""),
]


def main():
    out = sys.stdout
    out.write("# tollgate request-signing vectors, format 1 (docs/auth.md). Generated by\n")
    out.write("# scripts/gen_auth_vectors.py, an implementation independent of the library.\n")
    out.write("# One case per line, fields separated by one space. Fields marked (hex) are the\n")
    out.write("# lower-case hex of their bytes, '-' when empty; headers are '-' or\n")
    out.write("# <name(hex)>:<value(hex)> pairs joined by ',' (an empty value is empty).\n")
    out.write("# hmac <key(hex)> <message(hex)> <mac(hex)>\n")
    out.write("# sign <name> <secret(hex)> <method> <target(hex)> <headers(hex)> <body(hex)>"
              " <key_id(hex)> <token(hex)> <timestamp_ns> <nonce(hex)> <signed_headers(hex)>"
              " <canonical(hex)> <authorization(hex)>\n")
    out.write("# reject <name> <method(hex)> <target(hex)> <headers(hex)> <body(hex)>"
              " <key_id(hex)> <token(hex)> <timestamp_ns> <nonce(hex)> <signed_headers(hex)>"
              " <detail>\n")
    for key, msg, mac in RFC4231:
        assert hmac.new(key, msg, hashlib.sha256).hexdigest() == mac
        out.write("hmac %s %s %s\n" % (hx(key), hx(msg), mac))
    for name, secret, method, target, headers, body, key_id, token, ts, nonce, signed in SIGN:
        canon = canonical(method, target, headers, body, key_id, token, ts, nonce, signed)
        auth = authorization(secret, canon, key_id, token, ts, nonce, signed)
        out.write("sign %s %s %s %s %s %s %s %s %d %s %s %s %s\n" % (
            name, hx(secret), method, hx(target), headers_field(headers), hx(body), hx(key_id),
            hx(token), ts, hx(nonce), hx(signed), hx(canon), hx(auth)))
    for name, method, target, headers, body, key_id, token, ts, nonce, signed in REJECT:
        try:
            canonical(method, target, headers, body, key_id, token, ts, nonce, signed)
        except Malformed as e:
            detail = str(e)
        else:
            raise SystemExit("reject case %s was accepted" % name)
        out.write("reject %s %s %s %s %s %s %s %d %s %s %s\n" % (
            name, hx(method), hx(target), headers_field(headers), hx(body), hx(key_id),
            hx(token), ts, hx(nonce), hx(signed), detail))


if __name__ == "__main__":
    main()
