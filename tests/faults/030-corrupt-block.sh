#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A block altered in the server's store gives EIO for its range and never
# the altered bytes; the rest of the image still reads correctly and the
# mount keeps serving.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((4 * 1024 * 1024)) 30
import_image disk "$T/data/img.raw"

# Pick a non-zero block and flip one byte of its stored object.
read -r blk hash < <(python3 - "$T/data/img.raw" <<'PY'
import hashlib, sys
bs = 65536
d = open(sys.argv[1], "rb").read()
for i in range(len(d) // bs):
    b = d[i * bs:(i + 1) * bs]
    if b.count(0) != len(b):
        print(i, hashlib.sha256(b).hexdigest()); break
PY
)
obj="$T/srv/blocks/${hash:0:2}/$hash"
[ -f "$obj" ] || fail "block object $obj not found"
chmod u+w "$obj"
printf '\xff' | dd of="$obj" bs=1 seek=100 conv=notrunc status=none

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --io-timeout 3 --readahead 0
if dd if="$T/mnt/disk.img" of="$T/data/out" bs=65536 skip="$blk" count=1 \
	iflag=direct status=none 2>"$T/logs/dd.err"; then
	fail "read of the altered block succeeded"
fi
grep -q "Input/output error" "$T/logs/dd.err" || fail "expected EIO: $(cat "$T/logs/dd.err")"
grep -q "failed verification" "$T/logs/mount.log" || fail "no verification message in the log"
# A different block still reads correctly and the mount is alive.
other=$(( blk == 0 ? 1 : 0 ))
cmp <(dd if="$T/mnt/disk.img" bs=65536 skip=$other count=1 iflag=direct status=none) \
	<(dd if="$T/data/img.raw" bs=65536 skip=$other count=1 status=none) ||
	fail "a good block reads wrong"
unmount "$T/mnt"
