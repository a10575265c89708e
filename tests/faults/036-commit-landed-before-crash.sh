#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A sync whose commit reached the server but whose local clean-up did not
# (a crash in between) leaves a copy with unsynced changes on version N
# while the server holds them as N+1.  The next mount sees that N+1
# already holds every one of them and adopts it instead of refusing.
# Simulated: unsynced changes, then the same bytes published as N+1.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 36
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
head -c 70000 /dev/urandom >"$T/data/patch"
dd if="$T/data/patch" of="$T/mnt/disk.img" bs=1000 seek=123 conv=notrunc,fsync status=none
dd if="$T/data/patch" of="$T/data/model.raw" bs=1000 seek=123 conv=notrunc status=none
[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "no unsynced changes"
unmount "$T/mnt"

# The server gets exactly those changes as version 2.
"$VMFERRY_SERVER" lease break "$T/srv" disk >/dev/null
"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/disk" "$T/data/model.raw" >"$T/logs/publish.out" 2>&1 || fail "publish"
grep -q "version 2" "$T/logs/publish.out" || fail "not version 2: $(cat "$T/logs/publish.out")"

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
grep -q "adopted" "$T/logs/mount.log" || fail "not adopted: $(cat "$T/logs/mount.log")"
[ "$(mount_status blocks_dirty)" = 0 ] || fail "still dirty after adopting"
[ "$(mount_status version)" = 2 ] || fail "not on version 2"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "contents differ after adopting"
unmount "$T/mnt"
