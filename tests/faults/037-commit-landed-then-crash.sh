#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The client dies after the server committed a sync but before the copy
# recorded it, and the guest wrote more meanwhile: the next mount sends
# the recorded commit again under the same id (the server answers the
# version it made), cleans the copy as the sync would have, and mounts
# with the later writes still unsynced; the next sync makes them the
# version after.  Nothing acknowledged is lost, no version is made twice.
# (Without the pending record the copy refused to mount: "made on version
# N, but the server is now at N+1".)
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 37
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
cycles=$(faults_count 3 20)
acked=0
for ((c = 1; c <= cycles; c++)); do
	VMFERRY_TEST_PAUSE_AFTER_COMMIT=4 mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
	w() { # w TEXT OFFSET: written through the mount, fsynced, and in the model
		printf '%s' "$1" | dd of="$T/mnt/disk.img" bs=1 seek="$2" conv=notrunc,fsync status=none ||
			fail "write $1"
		printf '%s' "$1" | dd of="$T/data/model.raw" bs=1 seek="$2" conv=notrunc status=none
		acked=$((acked + 1))
	}
	w "cycle $c before the sync" $((c * 70000))
	before=$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
	"$VMFERRY" sync "$T/mnt" >"$T/logs/sync-$c.out" 2>&1 &
	syncer=$!
	# The commit lands, then the client pauses before recording it.
	for ((i = 0; i < 100; i++)); do
		now=$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
		[ "$now" -gt "$before" ] && break
		sleep 0.05
	done
	[ "$now" = $((before + 1)) ] || fail "cycle $c: the commit did not land"
	w "cycle $c after the snapshot" $((c * 70000 + 300000))
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	wait "$syncer" 2>/dev/null || true
	fusermount3 -uz "$T/mnt"
	# The remount finishes the sync instead of refusing.
	mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
	grep -q "cut short by a crash) landed as version $now" "$T/logs/mount.log" ||
		fail "cycle $c: the remount did not finish the sync: $(cat "$T/logs/mount.log")"
	cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "cycle $c: acknowledged writes lost"
	[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "cycle $c: the write after the snapshot is not unsynced"
	out=$("$VMFERRY" sync "$T/mnt") || fail "cycle $c: sync: $out"
	echo "$out" | grep -q "version $((now + 1))" || fail "cycle $c: not version $((now + 1)): $out"
	unmount "$T/mnt"
	cmp <(scurl "$SERVER_URL/v1/images/disk/versions/$((now + 1))/data") "$T/data/model.raw" ||
		fail "cycle $c: the server's version differs from the client"
done
versions=$("$VMFERRY_SERVER" versions "$T/srv" disk | grep -c '^ *[0-9]')
[ "$versions" = $((1 + 2 * cycles)) ] || fail "$versions versions for $cycles cycles of two syncs each"
fault_result commit-landed-then-crash "$cycles" "$acked" 0 0
