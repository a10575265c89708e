#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A few thousand reads at random offsets and lengths, some of them
# concurrent, compare byte for byte with the original (cold cache).
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
size=$((16 * 1024 * 1024 + 777))
make_image "$T/data/img.raw" "$size" 21
import_image disk "$T/data/img.raw" --block-size 16K
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate

python3 - "$T/data/img.raw" "$T/mnt/disk.img" <<'PY' || fail "random reads differ"
import os, random, sys, threading
ref, mnt = sys.argv[1], sys.argv[2]
size = os.path.getsize(ref)
errors = []
def worker(seed, n):
    rng = random.Random(seed)
    a = os.open(ref, os.O_RDONLY)
    b = os.open(mnt, os.O_RDONLY)
    for _ in range(n):
        off = rng.randrange(0, size + 4096)
        ln = rng.choice([1, 511, 4096, 65536, 200000, 1 << 20])
        x, y = os.pread(a, ln, off), os.pread(b, ln, off)
        if x != y:
            errors.append((off, ln, len(x), len(y)))
    os.close(a); os.close(b)
ts = [threading.Thread(target=worker, args=(s, 500)) for s in range(6)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    print("mismatches:", len(errors), errors[:5]); sys.exit(1)
print("3000 reads ok")
PY
unmount "$T/mnt"
