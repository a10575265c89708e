#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A guest writes, and the next client boots what it wrote.  Client A
# mounts the test image (tests/qemu/mkimage.sh) writable and boots it with
# a writable drive, first with cache=writeback, then cache=none: each time
# the guest writes a random token to last-boot on its ext4 partition,
# unmounts it cleanly and prints VMFERRY-WROTE <token>; the second boot
# reads the first token back.
# `vmferry sync` makes that version 2.  Client B, with an empty cache,
# boots version 2 read-only: the guest, after its sha256 check, prints
# VMFERRY-LAST <token> with A's token, and writes nothing.
source "$(dirname "$0")/../lib.sh"
requires_fuse
qemu_setup
size=$(stat -c %s "$img")
nblocks() { find "$T/srv/blocks" -type f | wc -l; }

start_server "$T/srv"
import_image testvm "$img"

# boot NAME [readonly [cache]]: boot the mounted image, console in
# logs/console-NAME.log.
boot() {
	VMFERRY_QEMU_READONLY=${2:-0} VMFERRY_QEMU_CACHE=${3:-writeback} \
		VMFERRY_BOOT_LOG="$T/logs/console-$1.log" \
		"$TOP/tests/qemu/boot.sh" "$T/mnt/testvm.img" >"$T/logs/boot-$1.out" 2>&1 ||
		fail "boot $1: $(tail -n 5 "$T/logs/boot-$1.out")"
	echo "boot $1: $(grep 'marker after' "$T/logs/boot-$1.out")"
}

# Client A: writable mount, writable drive.  Only explicit syncs.
mount_image "$SERVER_URL/testvm" "$T/mnt" --no-hydrate --sync-interval 0
boot a0 0 writeback
first=$(sed -n 's/^VMFERRY-WROTE \([0-9a-f]\{32\}\)$/\1/p' "$T/logs/console-a0.log")
[ -n "$first" ] || fail "guest A wrote no token (cache=writeback)"
! grep -q VMFERRY-LAST "$T/logs/console-a0.log" || fail "a fresh image had a last-boot"
# Again with cache=none (O_DIRECT writes): the guest reads its first
# token back through the mount, then writes another.
boot a 0 none
grep -qx "VMFERRY-LAST $first" "$T/logs/console-a.log" ||
	fail "guest A did not read back its own write"
token=$(sed -n 's/^VMFERRY-WROTE \([0-9a-f]\{32\}\)$/\1/p' "$T/logs/console-a.log")
[ -n "$token" ] || fail "guest A wrote no token (cache=none)"
[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "the guest's writes left no dirty blocks"
before=$(nblocks)
out=$("$VMFERRY" sync "$T/mnt") || fail "sync failed: $out"
echo "sync: $out"
echo "$out" | grep -q "version 2" || fail "not version 2: $out"
echo "guest A wrote $token; $(($(nblocks) - before)) new blocks in the server's store"
[ "$(mount_status blocks_dirty)" = 0 ] || fail "still dirty after sync"
unmount "$T/mnt"

# Client B: an empty cache, read-only, the drive too.
rm -rf "$T/cache"
mount_image "$SERVER_URL/testvm" "$T/mnt" --no-hydrate --read-only
boot b 1
grep -qx "VMFERRY-LAST $token" "$T/logs/console-b.log" ||
	fail "guest B did not read A's token: $(grep VMFERRY-LAST "$T/logs/console-b.log" || echo none)"
! grep -q VMFERRY-WROTE "$T/logs/console-b.log" || fail "guest B wrote to a read-only drive"
[ "$(mount_status version)" = 2 ] || fail "B mounted version $(mount_status version)"
fetched=$(mount_status bytes_fetched)
echo "B fetched $fetched of $size bytes"
[ "$fetched" -lt $((size / 4)) ] || fail "B fetched $fetched bytes, over a quarter of the image"
unmount "$T/mnt"
