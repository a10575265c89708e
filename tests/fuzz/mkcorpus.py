#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpora tests/fuzz/corpus/{manifest,range}/.  Manifests
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

for sub, items in (("manifest", MANIFEST.items()),
                   ("range", ((k, v.encode()) for k, v in RANGE.items()))):
    d = os.path.join(TOP, "corpus", sub)
    os.makedirs(d, exist_ok=True)
    for name, data in items:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
