#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Never mix versions: a cache holding version 1 remounted on version 2
# reads version 2's bytes, and fetches only the blocks that changed.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/data/v1.raw"
import_image disk "$T/data/v1.raw"
mount_image "$SERVER_URL/disk" "$T/mnt"
wait_hydrated 60
cmp "$T/mnt/disk.img" "$T/data/v1.raw" || fail "v1 differs"
unmount "$T/mnt"

# Version 2: three blocks change.
cp "$T/data/v1.raw" "$T/data/v2.raw"
for blk in 1 17 40; do
	head -c 100 /dev/urandom | dd of="$T/data/v2.raw" bs=1 seek=$((blk * 65536 + 5)) conv=notrunc status=none
done
import_image disk "$T/data/v2.raw"

mount_image "$SERVER_URL/disk" "$T/mnt"
wait_hydrated 60
[ "$(mount_status version)" = 2 ] || fail "not on version 2"
cmp "$T/mnt/disk.img" "$T/data/v2.raw" || fail "read a mixture of versions"
fetched=$(mount_status bytes_fetched)
reused=$(mount_status blocks_reused)
[ "$reused" = 61 ] || fail "status says $reused blocks reused, want 64 - 3 changed = 61"
"$VMFERRY" status "$T/mnt" | grep -q "reused:   61 blocks" || fail "status does not say what was reused"
echo "remount on version 2 fetched $fetched bytes"
# 3 blocks of data, the manifest (64 + 64 * 32 bytes) and the metadata
# JSON (under 1 KiB).
[ "$fetched" -le $((3 * 65536 + 64 + 64 * 32 + 1024)) ] || fail "fetched $fetched bytes for 3 changed blocks"
[ "$fetched" -ge $((3 * 65536)) ] || fail "fetched only $fetched bytes: changed blocks not fetched?"
unmount "$T/mnt"
