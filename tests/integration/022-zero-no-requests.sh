#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Zero blocks are never transferred: reading only the image's zero
# regions makes no data request (counted by the server).  Reads use
# O_DIRECT so kernel read-ahead cannot touch neighbouring data blocks.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((12 * 1024 * 1024)) 22
import_image disk "$T/data/img.raw"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --readahead 0
before=$(server_stat data_requests)
python3 - "$T/data/img.raw" "$T/mnt/disk.img" <<'PY' || fail "zero reads"
import mmap, os, sys
bs = 65536
ref = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECT)
buf = mmap.mmap(-1, bs)  # page-aligned, as O_DIRECT wants
n = 0
for off in range(0, len(ref), bs):
    if ref[off:off + bs].count(0) == len(ref[off:off + bs]):
        assert os.preadv(fd, [buf], off) == bs, off
        assert buf[:] == ref[off:off + bs], off
        n += 1
assert n >= 10, "image has too few zero blocks: %d" % n
print("read", n, "zero blocks")
PY
after=$(server_stat data_requests)
[ "$before" = "$after" ] || fail "zero reads made $((after - before)) data requests"
# And reading a data block does make one (so the counter really counts).
dd if="$T/mnt/disk.img" of=/dev/null bs=64K count=192 iflag=direct status=none
[ "$(server_stat data_requests)" -gt "$after" ] || fail "data reads were not counted"
unmount "$T/mnt"
