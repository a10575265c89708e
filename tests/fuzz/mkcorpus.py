#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpora tests/fuzz/corpus/{manifest,range,router,upload}/.
# Manifests
# are built here from the layout in lib/manifest.h and docs/protocol.md,
# not with manifest_encode(), so the seeds also check the encoder.
# Run from anywhere; rewrites the files it owns, leaves others (crash
# reproducers added by hand) alone.
import hashlib
import os
import struct

TOP = os.path.dirname(os.path.abspath(__file__))


def header(bs, size, nblocks=None, version=0, magic=b"VMFMANI1", fmt=1,
           reserved=bytes(24)):
    if nblocks is None:
        nblocks = (size + bs - 1) // bs
    return magic + struct.pack("<IIQQQ", fmt, bs, size, nblocks,
                               version) + reserved


def manifest(bs, size, version=0, zero=()):
    n = (size + bs - 1) // bs
    hashes = b"".join(bytes(32) if i in zero else
                      hashlib.sha256(b"block %d" % i).digest()
                      for i in range(n))
    return header(bs, size, version=version) + hashes


MANIFEST = {
    "valid-empty": manifest(65536, 0),
    "valid-3-blocks-zero": manifest(4096, 3 * 4096, version=3, zero={1}),
    "valid-short-last": manifest(4096, 2 * 4096 + 100),
    "valid-1-byte-4m": manifest(4 << 20, 1, version=2**64 - 1),
    "bad-magic": b"VMFMANI2" + manifest(65536, 0)[8:],
    "bad-format": header(65536, 0, fmt=2),
    "bad-reserved": header(65536, 0, reserved=bytes(23) + b"\1"),
    "bad-nblocks": header(4096, 4096, nblocks=2) + bytes(64),
    "bad-bs-not-pow2": header(3 * 4096, 3 * 4096, nblocks=1) + bytes(32),
    "bad-bs-small": header(2048, 2048) + bytes(32),
    "bad-too-big": header(4 << 20, (16 << 40) + 1),
    "bad-truncated": manifest(4096, 3 * 4096)[:-1],
    "bad-trailing": manifest(4096, 3 * 4096) + b"\0",
    "bad-header-only": header(4096, 3 * 4096),
    "bad-short": b"VMFMANI1\1\0\0\0",
}

RANGE = {
    "first-last": "bytes=0-0",
    "open-end": "bytes=5-",
    "suffix": "bytes=-10",
    "multi": "bytes=0-1,5-6",
    "empty-spec": "bytes=",
    "other-unit": "items=0-1",
    "reversed": "bytes=10-5",
    "suffix-zero": "bytes=-0",
    "dash-only": "bytes=-",
    "negative-last": "bytes=0--1",
    "upper-unit": "BYTES=1-2",
    "max-first": "bytes=18446744073709551615-",
    "overflow-last": "bytes=0-18446744073709551616",
    "overflow-suffix": "bytes=-99999999999999999999999",
    "space-after-eq": "bytes= 0-1",
    "space-trailing": "bytes=0-1 ",
    "space-before-eq": "bytes =0-1",
    "space-before-dash": "bytes=0 -1",
    "tab": "bytes=\t0-1",
    "plus-sign": "bytes=+1-2",
    "hex": "bytes=0x10-",
    "crlf": "bytes=1-2\r\n",
    "nul-inside": "bytes=0-1\0garbage",
}

H = "ab" * 32  # 64 hex digits
ROUTER = {
    "images": "GET\n/v1/images",
    "image": "GET\n/v1/images/demo",
    "image-head": "HEAD\n/v1/images/demo.img_2-x",
    "history": "GET\n/v1/images/demo/versions",
    "commit": "POST\n/v1/images/demo/versions",
    "lease": "POST\n/v1/images/demo/lease",
    "lease-delete": "DELETE\n/v1/images/demo/lease",
    "pins": "POST\n/v1/images/demo/pins",
    "vm-start": "POST\n/v1/images/demo/vm",
    "vm-state": "GET\n/v1/images/demo/vm",
    "vm-stop": "DELETE\n/v1/images/demo/vm",
    "vm-put": "PUT\n/v1/images/demo/vm",
    "console": "GET\n/v1/images/demo/console",
    "console-input": "POST\n/v1/images/%64emo/console",
    "console-head": "HEAD\n/v1/images/demo/console",
    "access": "GET\n/v1/images/demo/access",
    "access-head": "HEAD\n/v1/images/%64emo/access",
    "version": "GET\n/v1/images/demo/versions/2",
    "manifest": "GET\n/v1/images/demo/versions/1/manifest",
    "data": "GET\n/v1/images/demo/versions/18446744073709551615/data",
    "data-escaped": "GET\n/v1/images/%64emo/versions/%31/data",
    "profile-put": "PUT\n/v1/images/demo/versions/3/profile",
    "profile-get": "GET\n/v1/images/demo/versions/3/profile",
    "missing": "POST\n/v1/blocks/missing",
    "block": "PUT\n/v1/blocks/" + H,
    "block-upper": "PUT\n/v1/blocks/" + H.upper(),
    "stats": "GET\n/v1/stats",
    "url-only": "/v1/images/demo",
    # 404
    "no-slash": "GET\nv1/images",
    "root": "GET\n/",
    "other-api": "GET\n/v2/images",
    "unknown": "GET\n/v1/nothing",
    "trailing-slash": "GET\n/v1/images/demo/",
    "literal-slash": "GET\n/v1/images/de/mo/versions/1/data",
    "too-deep": "GET\n/v1/images/a/versions/1/data/x/y/z",
    "double-slash": "GET\n//v1/images",
    "query": "GET\n/v1/images?x=1",
    # 405
    "delete-image": "DELETE\n/v1/images/demo",
    "post-data": "POST\n/v1/images/demo/versions/1/data",
    "post-profile": "POST\n/v1/images/demo/versions/1/profile",
    "post-access": "POST\n/v1/images/demo/access",
    "get-block": "GET\n/v1/blocks/" + H,
    "lower-get": "get\n/v1/images",
    "partial-method": "GE\n/v1/images",
    "list-as-method": "GET, HEAD\n/v1/images",
    # Regression: an empty method made the old method check (strstr
    # over "GET, HEAD") read past the end of the list.
    "empty-method": "\n/v1/images",
    "empty-method-block": "\n/v1/blocks/" + H,
    # 400
    "name-dotdot": "GET\n/v1/images/..",
    "name-dotdot-escaped": "GET\n/v1/images/%2e%2e/versions/1/data",
    "name-traversal": "POST\n/v1/images/..%2F..%2Fetc/versions",
    "name-slash": "GET\n/v1/images/a%2Fb",
    "name-hidden": "GET\n/v1/images/.hidden",
    "name-nul": "GET\n/v1/images/a%00b",
    "name-bad-escape": "GET\n/v1/images/a%zz",
    "name-short-escape": "GET\n/v1/images/a%4",
    "name-escape-at-slash": "GET\n/v1/images/a%4/versions/1/data",
    "name-65": "GET\n/v1/images/" + "x" * 65,
    "name-64": "GET\n/v1/images/" + "x" * 64,
    "name-64-escaped": "GET\n/v1/images/" + "%78" * 64,
    "name-empty": "GET\n/v1/images//versions/1/data",
    "name-high-byte": "GET\n/v1/images/caf%C3%A9",
    "version-zero": "GET\n/v1/images/demo/versions/0/data",
    "version-leading-zero": "GET\n/v1/images/demo/versions/01/data",
    "version-negative": "GET\n/v1/images/demo/versions/-1/data",
    "version-plus": "GET\n/v1/images/demo/versions/+1/data",
    "version-space": "GET\n/v1/images/demo/versions/%201/data",
    "version-overflow": "GET\n/v1/images/demo/versions/18446744073709551616/data",
    "version-long": "GET\n/v1/images/demo/versions/99999999999999999999999/data",
    "version-empty": "GET\n/v1/images/demo/versions//manifest",
    "version-escaped-zero": "GET\n/v1/images/demo/versions/%30%31/data",
    "hash-short": "PUT\n/v1/blocks/xyz",
    "hash-escaped": "PUT\n/v1/blocks/%61" + H[1:],
    "hash-65": "PUT\n/v1/blocks/" + H + "a",
}


def upload(route, body, chunks=(), max_=0xffff, length=None):
    """route 0 missing, 1 commit, 2 block, 3 lease; body cut at chunks."""
    out = bytes([route]) + max_.to_bytes(2, "big")
    out += (b"-" if length is None else str(length).encode()) + b"\n"
    cuts = [0] + [c for c in chunks if 0 <= c <= len(body)] + [len(body)]
    for a, b in zip(cuts, cuts[1:]):
        while b - a > 255:
            out += bytes([255]) + body[a:a + 255]
            a += 255
        out += bytes([b - a]) + body[a:b]
    return out


HASHES = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(3))
M3 = manifest(4096, 3 * 4096)
UPLOAD = {
    "missing-3": upload(0, HASHES, (10, 40), length=96),
    "missing-empty": upload(0, b"", length=0),
    "missing-odd": upload(0, HASHES[:50], length=50),
    "missing-odd-chunked": upload(0, HASHES[:50], (7,)),
    "missing-over-max": upload(0, HASHES, (32,), max_=64),
    "missing-length-over": upload(0, b"", max_=64, length=96),
    "length-garbage": upload(2, b"x", length="1x"),
    "length-sign": upload(2, b"x", length="+1"),
    "length-space": upload(2, b"x", length=" 1"),
    "length-empty": upload(2, b"x", length=""),
    "length-overflow": upload(2, b"x", length="18446744073709551616"),
    "length-max": upload(2, b"x", length="18446744073709551615"),
    "length-zeros": upload(2, b"x", length="0000000000000000000000001"),
    "block": upload(2, b"block data" * 30, (1, 200)),
    "block-at-max": upload(2, b"ab" * 50, max_=100, length=100),
    "block-over-max": upload(2, b"ab" * 50 + b"c", (100,), max_=100),
    "lease": upload(3, b'{"holder": "me", "where": "local"}', (5,)),
    "commit-3": upload(1, M3, (1, 63, 64, 65)),
    "commit-3-whole": upload(1, M3, length=len(M3)),
    "commit-empty-image": upload(1, manifest(65536, 0)),
    "commit-header-split": upload(1, M3, (30,)),
    "commit-truncated": upload(1, M3[:100], (64,)),
    "commit-overlong": upload(1, M3 + b"x", (len(M3),)),
    "commit-overlong-one-chunk": upload(1, manifest(65536, 0) + b"x"),
    "commit-bad-magic": upload(1, b"VMFMANI2" + M3[8:], (8,)),
    "commit-garbage": upload(1, b"block data" * 10),
    "commit-short": upload(1, b"VMFMANI1"),
    "commit-zero-chunks": upload(1, M3, (0, 0, 64)),
}

for sub, items in (("manifest", MANIFEST.items()),
                   ("range", ((k, v.encode()) for k, v in RANGE.items())),
                   ("router", ((k, v.encode()) for k, v in ROUTER.items())),
                   ("upload", UPLOAD.items())):
    d = os.path.join(TOP, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    for name, data in items:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
