#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Writing through the mount: writes of any size and alignment (including
# partial writes into blocks never fetched, and zeros) read back exactly
# as a plain-file model of the disk, before and after a remount (the
# dirty set lives in LMDB); --read-only refuses writes; the image's size
# is fixed.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
size=$((8 * 1024 * 1024 + 333))
make_image "$T/data/img.raw" "$size" 28
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"

# --no-sync: this test is about the local copy (write-back is 029's).
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
python3 - "$T/mnt/disk.img" "$T/data/model.raw" <<'PY' || fail "writes"
import os, random, sys
rng = random.Random(28)
a = os.open(sys.argv[1], os.O_RDWR)
b = os.open(sys.argv[2], os.O_RDWR)
size = os.path.getsize(sys.argv[2])
for i in range(400):
    off = rng.randrange(0, size)
    ln = min(rng.choice([1, 17, 512, 4096, 65536, 65537, 300000]), size - off)
    d = rng.randbytes(ln) if rng.random() < 0.8 else bytes(ln)
    assert os.pwrite(a, d, off) == ln
    os.pwrite(b, d, off)
    if i % 40 == 0:
        os.fsync(a)
    if i % 7 == 0:  # interleaved reads see the writes at once
        o = rng.randrange(0, size)
        assert os.pread(a, 70000, o) == os.pread(b, 70000, o), ("read", o)
os.fsync(a)
print("400 writes ok")
PY
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "read back differs"
dirty=$(mount_status blocks_dirty)
[ "$dirty" -gt 0 ] || fail "no dirty blocks counted"
echo "dirty blocks: $dirty"

# dd as a user would, unaligned, and the size stays fixed.
head -c 100000 /dev/urandom >"$T/data/patch"
dd if="$T/data/patch" of="$T/mnt/disk.img" bs=1000 seek=4321 conv=notrunc,fsync status=none ||
	fail "dd write"
dd if="$T/data/patch" of="$T/data/model.raw" bs=1000 seek=4321 conv=notrunc status=none
if dd if="$T/data/patch" of="$T/mnt/disk.img" bs=1000 status=none 2>"$T/logs/trunc.err"; then
	fail "a truncating open succeeded"
fi
[ "$(stat -c %s "$T/mnt/disk.img")" = "$size" ] || fail "size changed"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "differs after dd"
unmount "$T/mnt"

# The dirty set survives a remount.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
[ "$(mount_status blocks_dirty)" = "$dirty" ] || [ "$(mount_status blocks_dirty)" -ge "$dirty" ] ||
	fail "dirty set not reloaded"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "differs after remount"
unmount "$T/mnt"

# --read-only: writes refused, data still readable.
mount_image "$SERVER_URL/disk" "$T/mnt" --read-only
if printf x | dd of="$T/mnt/disk.img" conv=notrunc status=none 2>"$T/logs/ro.err"; then
	fail "write on a --read-only mount succeeded"
fi
grep -q "Read-only file system" "$T/logs/ro.err" || fail "unclear: $(cat "$T/logs/ro.err")"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "differs read-only"
unmount "$T/mnt"
