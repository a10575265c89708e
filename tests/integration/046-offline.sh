#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Offline start: a kept copy mounts with the server stopped, using only
# the user's key; every cached byte reads back, an uncached block fails
# cleanly (EIO), and changes made offline go up by themselves once the
# server is back, as the next version.  A copy never mounted before
# cannot start offline (clear error).
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
port=$SERVER_PORT
make_image "$T/data/v1.raw" $((4 * 1024 * 1024)) 46
import_image disk "$T/data/v1.raw"
import_image other "$T/data/v1.raw"
cp "$T/data/v1.raw" "$T/data/model.raw"

# Online: a full local copy, then unmount (kept).
mount_image "$SERVER_URL/disk" "$T/mnt"
wait_hydrated 60
unmount "$T/mnt"

stop_server
# Offline: everything reads from the copy.
mount_image "$SERVER_URL/disk" "$T/mnt" --sync-interval 1 --check-interval 1
grep -q "mounting the local copy offline" "$T/logs/mount.log" || fail "no offline notice: $(cat "$T/logs/mount.log")"
[ "$(mount_status offline)" = True ] || fail "status does not say offline"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "offline read differs"
printf 'written-offline' | dd of="$T/mnt/disk.img" bs=1 seek=123456 conv=notrunc,fsync status=none ||
	fail "offline write"
printf 'written-offline' | dd of="$T/data/model.raw" bs=1 seek=123456 conv=notrunc status=none
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "offline write does not read back"
sleep 2 # a periodic sync or two fail meanwhile
[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "changes vanished while offline"

# The server comes back: the changes go up without being asked.
start_server "$T/srv" --listen "127.0.0.1:$port"
for ((i = 0; i < 300; i++)); do
	[ "$(mount_status blocks_dirty)" = 0 ] && break
	sleep 0.1
done
[ "$(mount_status blocks_dirty)" = 0 ] || fail "offline changes not synced 30 s after the server came back"
[ "$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = 2 ] ||
	fail "the server has no version 2"
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/2/data") "$T/data/model.raw" ||
	fail "version 2 is not the offline state"
unmount "$T/mnt"

# No copy of "other" yet: offline start is impossible, and says so.
stop_server
mkdir -p "$T/mnt2"
if "$VMFERRY" mount -f "$SERVER_URL/other" "$T/mnt2" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/nocopy.log" 2>&1; then
	fail "mounted offline without a local copy"
fi
grep -q "cannot be reached.*no local copy" "$T/logs/nocopy.log" || fail "message: $(cat "$T/logs/nocopy.log")"

# Partly cached copy offline: cached bytes read, uncached ones get EIO.
start_server "$T/srv" --listen "127.0.0.1:$port"
mount_image "$SERVER_URL/other" "$T/mnt2" --no-hydrate --read-only
dd if="$T/mnt2/other.img" bs=64K count=4 status=none | cmp - <(head -c $((256 * 1024)) "$T/data/v1.raw") || fail "first blocks"
unmount "$T/mnt2"
stop_server
mount_image "$SERVER_URL/other" "$T/mnt2" --no-hydrate --read-only --io-timeout 2
dd if="$T/mnt2/other.img" bs=64K count=4 iflag=direct status=none | cmp - <(head -c $((256 * 1024)) "$T/data/v1.raw") ||
	fail "cached blocks offline"
if dd if="$T/mnt2/other.img" bs=64K skip=40 count=1 iflag=direct status=none >/dev/null 2>"$T/logs/eio.err"; then
	# A zero block needs no fetch: only a data block must fail.
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read()[40*65536:41*65536]; sys.exit(0 if d.count(0)==len(d) else 1)' \
		"$T/data/v1.raw" || fail "an uncached data block read offline"
else
	grep -q "Input/output error" "$T/logs/eio.err" || fail "uncached read: $(cat "$T/logs/eio.err")"
fi
unmount "$T/mnt2"
