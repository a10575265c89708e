#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A generated image (random data and zero runs, size not a multiple of
# the block size) reads back byte for byte through the mount, cold and
# then warm; the warm read makes no data requests.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3 curl

start_server "$T/srv"
size=$((20 * 1024 * 1024 + 12345))
make_image "$T/data/img.raw" "$size" 20
import_image disk "$T/data/img.raw"
want=$(sha256sum <"$T/data/img.raw" | cut -d' ' -f1)

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
[ "$(stat -c %s "$T/mnt/disk.img")" = "$size" ] || fail "size differs"
got=$(sha256sum <"$T/mnt/disk.img" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "cold sha256 $got != $want"
unmount "$T/mnt"

before=$(server_stat data_requests)
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
# Bypass the page cache so the daemon itself serves every byte.
got=$(dd if="$T/mnt/disk.img" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "warm sha256 $got != $want"
after=$(server_stat data_requests)
[ "$before" = "$after" ] || fail "warm read made $((after - before)) data requests"

# A read past the end gives end of file (0 bytes, no error); the mount
# keeps serving.
n=$(dd if="$T/mnt/disk.img" bs=4096 skip=$((size / 4096 + 10)) count=1 status=none | wc -c)
[ "$n" = 0 ] || fail "read past the end returned $n bytes"
n=$(python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); print(len(os.pread(fd, 65536, int(sys.argv[2]) - 100)))' "$T/mnt/disk.img" "$size")
[ "$n" = 100 ] || fail "read across the end returned $n bytes, want 100"
cmp <(tail -c 100 "$T/mnt/disk.img") <(tail -c 100 "$T/data/img.raw") || fail "tail differs"
unmount "$T/mnt"
