#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Finishing a sync that a crash cut short after its commit landed (037)
# resends the commit built on the base version's manifest, fetched
# whole: that manifest is checked against its manifest_sha256 first.
# With one byte of a block hash changed in the base's stored manifest
# (as a proxy or cache could change it), the remount commits nothing,
# says why, and keeps everything: restored, the next remount finishes
# the sync, the server's version equals the copy at the sync's snapshot
# and the copy equals every acknowledged write.  Twice:
#   A. the base is the version the copy mounted: its manifest_sha256 is
#      the one the copy recorded when that mount checked it;
#   B. the base is a version the copy made itself by an earlier sync of
#      the same session: the copy recorded none (it built that manifest,
#      never fetched it), so the value is the server's, from GET
#      /v1/images/NAME/versions/N.  The server's digest of a version is
#      computed once and kept (as for 068's ETag), so it still names the
#      manifest the server stored, as a proxy's altered copy would not.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 38
import_image disk "$T/data/img.raw"
cp "$T/data/img.raw" "$T/data/model.raw"
acked=0

ver() {
	image_field disk version
}
nversions() {
	"$VMFERRY_SERVER" versions "$T/srv" disk | grep -c '^ *[0-9]'
}
w() { # w TEXT OFFSET: written through the mount, fsynced, and in the model
	printf '%s' "$1" | dd of="$T/mnt/disk.img" bs=1 seek="$2" conv=notrunc,fsync status=none ||
		fail "write $1"
	printf '%s' "$1" | dd of="$T/data/model.raw" bs=1 seek="$2" conv=notrunc status=none
	acked=$((acked + 1))
}
# cut_short TAG OFFSET: with the copy mounted (and the test pause after
# a commit), write, sync, and once the commit landed write more and kill
# the client.  Sets $now (the version that landed); landed.raw is the
# model at the sync's snapshot.
cut_short() {
	local before syncer i
	w "$1 before the sync" "$2"
	cp "$T/data/model.raw" "$T/data/landed.raw"
	before=$(ver)
	"$VMFERRY" sync "$T/mnt" >"$T/logs/sync-$1.out" 2>&1 &
	syncer=$!
	for ((i = 0; i < 100; i++)); do
		now=$(ver)
		[ "$now" -gt "$before" ] && break
		sleep 0.05
	done
	[ "$now" = $((before + 1)) ] || fail "$1: the commit did not land"
	w "$1 after the snapshot" $(($2 + 300000))
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	wait "$syncer" 2>/dev/null || true
	fusermount3 -uz "$T/mnt"
}
# alter VERSION: one byte of block 20's hash (a block no write touches)
# flipped in the stored manifest; the original kept in VERSION.orig.
alter() {
	man=$(find "$T/srv" -name "$1.manifest" -path '*disk*' | head -1)
	[ -f "$man" ] || fail "no stored manifest for version $1"
	cp "$man" "$T/data/$1.orig"
	flip_manifest_entry "$man" 20
}
# refused TAG PREV SOURCE: the remount with the altered manifest of
# PREV does not mount, commits nothing and names the cause and SOURCE.
refused() {
	local st=0 n log="$T/logs/refused-$1.log"
	n=$(nversions)
	"$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" \
		"${MOUNT_KEY[@]}" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		--no-hydrate --sync-interval 0 >"$log" 2>&1 || st=$?
	[ "$st" = 1 ] || fail "$1: the remount exited $st, want 1: $(cat "$log")"
	! mountpoint -q "$T/mnt" || fail "$1: mounted anyway"
	[ "$(nversions)" = "$n" ] || fail "$1: the remount committed a version"
	grep -qE "the last sync \(cut short by a crash\) cannot be finished: version $2's manifest: its SHA-256 is [0-9a-f]{16}\.\.\., not the manifest_sha256 [0-9a-f]{16}\.\.\. the server gives for it: refused .*; nothing was committed \(that manifest_sha256 $3\)" "$log" ||
		fail "$1: no clear reason: $(cat "$log")"
	grep -q "not mounted: .* whose last sync landed on the server .* Nothing is lost" "$log" ||
		fail "$1: the refusal does not say the changes are kept: $(cat "$log")"
	! grep -q "landed as version" "$log" || fail "$1: finished anyway"
	echo "$1: the refused remount said:"
	cat "$log"
}
# finished TAG PREV: the manifest of PREV restored, the remount finishes
# the sync as $now; then the server's $now is the snapshot's model, the
# copy the whole model, and the next sync makes $now + 1 of it.
finished() {
	cp "$T/data/$2.orig" "$man"
	mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0 "${@:3}"
	grep -q "cut short by a crash) landed as version $now" "$T/logs/mount.log" ||
		fail "$1: the remount did not finish the sync: $(cat "$T/logs/mount.log")"
	cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "$1: acknowledged writes lost"
	cmp <(scurl "$SERVER_URL/v1/images/disk/versions/$now/data") "$T/data/landed.raw" ||
		fail "$1: the server's version $now is not the copy at the sync's snapshot"
	[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "$1: the write after the snapshot is not unsynced"
}

# A: the base (1) is the version this copy mounted.
VMFERRY_TEST_PAUSE_AFTER_COMMIT=6 mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
cut_short A 70000
[ "$now" = 2 ] || fail "A: landed as $now, want 2"
alter 1
refused A 1 "was recorded in this copy when a mount checked that version"
finished A 1
out=$("$VMFERRY" sync "$T/mnt") || fail "A: sync: $out"
unmount "$T/mnt"
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/3/data") "$T/data/model.raw" ||
	fail "A: the server's version 3 differs from the copy"

# B: the base (5) is a version this copy made by a sync in the same
# session, whose manifest_sha256 it never recorded.
VMFERRY_TEST_PAUSE_AFTER_COMMIT=6 mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
w "B synced whole" 140000
out=$("$VMFERRY" sync "$T/mnt") || fail "B: sync: $out"
echo "$out" | grep -q "version 4" || fail "B: not version 4: $out"
w "B synced whole again" 1500000
out=$("$VMFERRY" sync "$T/mnt") || fail "B: sync: $out"
echo "$out" | grep -q "version 5" || fail "B: not version 5: $out"
cut_short B 210000
[ "$now" = 6 ] || fail "B: landed as $now, want 6"
# The server's manifest_sha256 of 5 is its stored manifest's.
sha=$(scurl "$SERVER_URL/v1/images/disk/versions/5" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["manifest_sha256"])')
alter 5
[ "$(sha256sum <"$T/data/5.orig" | cut -d' ' -f1)" = "$sha" ] ||
	fail "B: the server's manifest_sha256 of version 5 is not its manifest's"
refused B 5 "is the server's: this copy recorded none"
finished B 5
out=$("$VMFERRY" sync "$T/mnt") || fail "B: sync: $out"
echo "$out" | grep -q "version 7" || fail "B: not version 7: $out"
unmount "$T/mnt"
cmp <(scurl "$SERVER_URL/v1/images/disk/versions/7/data") "$T/data/model.raw" ||
	fail "B: the server's version 7 differs from the copy"
[ "$(nversions)" = 7 ] || fail "$(nversions) versions, want 7"
fault_result pending-manifest-check 2 "$acked" 0 0
