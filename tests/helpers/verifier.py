#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Verifier workload and checker for the crash tests (tests/faults/04x).

  verifier.py write IMG LOG SEED [SECONDS]
      write records into IMG (the mounted disk image) at random offsets
      and sizes, in groups of 1-3 records, fsync after each group; LOG
      (outside the mount) gets "W seq off len" before each record is
      written and "A seq" once the fsync after it returned (everything
      up to seq is then acknowledged); LOG is fsynced after each "A".
      Stops after SECONDS (default: forever) or at the first I/O error
      (the mount was killed), exit 0 either way.
  verifier.py check BASE LOG IMG SEED local|server|exact
      BASE is the image before the workload ran, IMG the one to check.
      local:  IMG must hold every acknowledged record (the state after
              the last "A"), and any other byte may only come from a
              record written but not acknowledged (a write in flight
              at the crash, possibly torn).
      server: IMG must be the state at SOME point of the client: the
              state after group g (BASE plus the records of groups
              1..g, in order) for some g, where bytes may differ only
              inside records of group g+1 (in flight when the snapshot
              was taken) and then equal that record's bytes.
      exact:  IMG must equal the state after the whole log.
      Prints "RESULT acked=N lost=N wrong=N point=G" and exits 1 if
      lost or wrong is not 0.

A record is a pure function of (SEED, seq, off, len): a 28-byte header
(b"VMFR", seq, off, len), seeded random bytes, and an 8-byte BLAKE2b
checksum of the rest, so the checker rebuilds every state from the log
alone.  "lost" counts acknowledged records that a wrong byte belongs to
(the newest acknowledged record covering it), "wrong" counts bytes that
match no allowed state.
"""
import hashlib
import os
import random
import struct
import sys
import time

CHUNK = 4096
MINREC = 40


def record(seed, seq, off, length):
    hdr = b"VMFR" + struct.pack("<QQQ", seq, off, length)
    body = random.Random(seed * 1000003 + seq).randbytes(length - len(hdr) - 8)
    data = hdr + body
    return data + hashlib.blake2b(data, digest_size=8).digest()


def pick_len(rng, size):
    r = rng.random()
    if r < 0.4:
        n = rng.randint(MINREC, 4096)
    elif r < 0.8:
        n = rng.randint(4096, 70000)
    elif r < 0.95:
        n = rng.randint(70000, 200000)
    else:
        n = rng.randint(200000, 1 << 20)
    return min(n, size)


def cmd_write(img, log, seed, seconds):
    rng = random.Random(seed)
    end = time.monotonic() + seconds if seconds else None
    lf = open(log, "a")
    seq = 0
    try:
        fd = os.open(img, os.O_RDWR)
        size = os.fstat(fd).st_size
        while end is None or time.monotonic() < end:
            for _ in range(rng.randint(1, 3)):
                seq += 1
                n = pick_len(rng, size)
                off = rng.randrange(0, size - n + 1)
                lf.write("W %d %d %d\n" % (seq, off, n))
                lf.flush()
                data = record(seed, seq, off, n)
                if os.pwrite(fd, data, off) != n:
                    raise OSError("short write")
            os.fsync(fd)
            lf.write("A %d\n" % seq)
            lf.flush()
            os.fsync(lf.fileno())
    except OSError as e:
        lf.write("E %s\n" % e)
    lf.flush()
    os.fsync(lf.fileno())
    return 0


def parse_log(log):
    """Returns the groups: lists of (seq, off, len); every group but
    perhaps the last was acknowledged.  Also the number acknowledged."""
    groups, cur, nacked = [], [], 0
    with open(log) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "W":
                cur.append((int(p[1]), int(p[2]), int(p[3])))
            elif p[0] == "A":
                groups.append(cur)
                nacked += len(cur)
                cur = []
    acked_groups = len(groups)
    if cur:
        groups.append(cur)
    return groups, acked_groups, nacked


def chunks_of(recs):
    s = set()
    for _, off, n in recs:
        s.update(range(off // CHUNK, (off + n - 1) // CHUNK + 1))
    return s


def apply(model, recs, seed):
    for seq, off, n in recs:
        model[off:off + n] = record(seed, seq, off, n)


def chunk_ok(model, img, c, pending, seed):
    """Is chunk c of img model's, with bytes of pending records (any
    subset, any part) allowed over it?  Returns the unexplained byte
    positions."""
    lo, hi = c * CHUNK, min((c + 1) * CHUNK, len(model))
    over = [(off, record(seed, seq, off, n)) for seq, off, n in pending
            if off < hi and off + n > lo]
    # Fast path: the whole group applied over this chunk.
    trial = bytearray(model[lo:hi])
    for off, d in over:
        a, b = max(lo, off), min(hi, off + len(d))
        trial[a - lo:b - lo] = d[a - off:b - off]
    if trial == img[lo:hi]:
        return []
    bad = []
    for p in range(lo, hi):
        v = img[p]
        if v == model[p]:
            continue
        if any(off <= p < off + len(d) and d[p - off] == v for off, d in over):
            continue
        bad.append(p)
    return bad


def mismatches(model, img):
    n = (len(model) + CHUNK - 1) // CHUNK
    return {c for c in range(n)
            if model[c * CHUNK:(c + 1) * CHUNK] != img[c * CHUNK:(c + 1) * CHUNK]}


def newest_acked(groups, upto, p):
    for g in range(upto - 1, -1, -1):
        for seq, off, n in reversed(groups[g]):
            if off <= p < off + n:
                return seq
    return None


def check_at(model, img, diff, pending, seed):
    """Unexplained byte positions if img is model plus parts of pending."""
    if not diff <= chunks_of(pending):
        return None
    bad = []
    for c in sorted(diff):
        bad += chunk_ok(model, img, c, pending, seed)
    return bad


def cmd_check(base, log, imgpath, seed, mode):
    model = bytearray(open(base, "rb").read())
    img = open(imgpath, "rb").read()
    if len(img) != len(model):
        print("RESULT acked=0 lost=0 wrong=%d point=-1 (size %d, expected %d)"
              % (abs(len(img) - len(model)) or 1, len(img), len(model)))
        return 1
    groups, acked_groups, nacked = parse_log(log)
    if mode == "exact":
        for g in groups:
            apply(model, g, seed)
        diff = mismatches(model, img)
        wrong = sum(sum(1 for p in range(c * CHUNK, min((c + 1) * CHUNK, len(img)))
                        if img[p] != model[p]) for c in diff)
        nrec = sum(len(g) for g in groups)
        print("RESULT acked=%d lost=%d wrong=%d point=%d"
              % (nrec, 1 if wrong else 0, wrong, len(groups)))
        return 1 if wrong else 0
    if mode == "local":
        for g in groups[:acked_groups]:
            apply(model, g, seed)
        pending = groups[acked_groups] if acked_groups < len(groups) else []
        diff = mismatches(model, img)
        bad = []
        for c in sorted(diff):
            bad += chunk_ok(model, img, c, pending, seed)
        lost = {newest_acked(groups, acked_groups, p) for p in bad}
        lost.discard(None)
        if bad:
            print("wrong bytes at %s" % bad[:10])
        print("RESULT acked=%d lost=%d wrong=%d point=%d"
              % (nacked, len(lost), len(bad), acked_groups))
        return 1 if bad else 0
    # server: the newest point g that explains img.
    diff = mismatches(model, img)
    found, best = None, None
    for g in range(len(groups) + 1):
        if g > 0:
            touched = chunks_of(groups[g - 1])
            apply(model, groups[g - 1], seed)
            for c in touched:
                if model[c * CHUNK:(c + 1) * CHUNK] != img[c * CHUNK:(c + 1) * CHUNK]:
                    diff.add(c)
                else:
                    diff.discard(c)
        pending = groups[g] if g < len(groups) else []
        bad = check_at(model, img, diff, pending, seed)
        if bad == []:
            found = g
        elif best is None or len(diff) < best[1]:
            best = (g, len(diff))
    if found is None:
        print("no point of the client explains the image; closest: after"
              " group %d, %d chunks differ" % best)
        print("RESULT acked=0 lost=0 wrong=%d point=-1" % (best[1] * CHUNK))
        return 1
    nrec = sum(len(g) for g in groups[:found])
    print("RESULT acked=%d lost=0 wrong=0 point=%d" % (nrec, found))
    return 0


def main(argv):
    if len(argv) >= 4 and argv[1] == "write":
        return cmd_write(argv[2], argv[3], int(argv[4]),
                         float(argv[5]) if len(argv) > 5 else 0)
    if len(argv) == 7 and argv[1] == "check" and argv[6] in ("local", "server", "exact"):
        return cmd_check(argv[2], argv[3], argv[4], int(argv[5]), argv[6])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
