#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The local copy's lifecycle at mount and unmount: --ephemeral (and the
# image's policy "local_copy": "ephemeral") destroy the copy after the
# final sync; an ephemeral copy whose final sync failed is kept with its
# changes and synced by the next mount; a policy expiry in the past
# refuses the mount; a max_offline that elapses while mounted stops the
# reads, unmounts and destroys the copy; an edited lifecycle record is
# treated as expired (destroyed), online and offline.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
port=$SERVER_PORT
make_image "$T/data/v1.raw" $((2 * 1024 * 1024)) 45
import_image disk "$T/data/v1.raw"
cp "$T/data/v1.raw" "$T/data/model.raw"
copy="$T/cache/127.0.0.1_$port/disk"
policy() { printf '%s\n' "$1" >"$T/srv/images/disk/policy.json"; }
write() { # write TEXT OFFSET: through the mount and into the model
	printf '%s' "$1" | dd of="$T/mnt/disk.img" bs=1 seek="$2" conv=notrunc status=none || fail "write $1"
	printf '%s' "$1" | dd of="$T/data/model.raw" bs=1 seek="$2" conv=notrunc status=none
}
fresh_cmp() { # the server's newest version, read by a client with no cache
	local c="$T/fresh-$1"
	mkdir -p "$c/mnt"
	"$VMFERRY" mount "$SERVER_URL/disk" "$c/mnt" --cache "$c/cache" \
		--key-file "$T/user.key" --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
		--read-only --log "$T/logs/fresh-$1.log" || fail "fresh mount $1"
	cmp "$c/mnt/disk.img" "$T/data/model.raw" || fail "fresh client $1 differs from the model"
	"$VMFERRY" umount "$c/mnt" >/dev/null || fail "fresh umount $1"
}

# --ephemeral: synced, then nothing left.
mount_image "$SERVER_URL/disk" "$T/mnt" --ephemeral --sync-interval 0
[ "$(mount_status ephemeral)" = True ] || fail "status does not say ephemeral"
"$VMFERRY" status "$T/mnt" | grep -q "ephemeral: destroyed at unmount" || fail "status text"
write "ephemeral-one" 1000
unmount "$T/mnt"
[ ! -e "$copy" ] || fail "the ephemeral copy survived: $(ls -la "$copy")"
grep -q "destroyed the local copy" "$T/logs/mount.log" || fail "no word of the destruction"
fresh_cmp 1

# Ephemeral, but the final sync fails: kept, with its changes; the next
# mount syncs them.
mount_image "$SERVER_URL/disk" "$T/mnt" --ephemeral --sync-interval 0 --no-hydrate
write "kept-unsynced" 5000
stop_server
unmount "$T/mnt"
[ -e "$copy/data.key" ] || fail "an ephemeral copy with unsynced changes was destroyed"
grep -q "keeps its unsynced changes" "$T/logs/mount.log" || fail "the user was not told: $(cat "$T/logs/mount.log")"
start_server "$T/srv" --listen "127.0.0.1:$port"
mount_image "$SERVER_URL/disk" "$T/mnt" --sync-interval 0
[ "$(mount_status blocks_dirty)" -gt 0 ] || fail "the kept changes were lost"
unmount "$T/mnt"
fresh_cmp 2

# The policy makes copies ephemeral; --keep cannot override it.
policy '{"local_copy": "ephemeral"}'
mount_image "$SERVER_URL/disk" "$T/mnt" --keep
grep -q "policy makes local copies ephemeral" "$T/logs/mount.log" || fail "--keep not warned about"
unmount "$T/mnt"
[ ! -e "$copy" ] || fail "a policy-ephemeral copy survived"

# A policy expiry in the past refuses the mount and leaves no copy.
policy '{"expires": "2020-01-01T00:00:00Z"}'
mkdir -p "$T/mnt"
if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/expired.log" 2>&1; then
	fail "mounted an expired image"
fi
grep -q "expired on 2020-01-01T00:00:00Z" "$T/logs/expired.log" || fail "message: $(cat "$T/logs/expired.log")"
[ ! -e "$copy/data.key" ] || fail "an expired copy kept its key"
policy '{"expires": "not a date"}'
if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/badpolicy.log" 2>&1; then
	fail "mounted with an invalid expiry policy"
fi
grep -q 'invalid "expires"' "$T/logs/badpolicy.log" || fail "message: $(cat "$T/logs/badpolicy.log")"

# An edited record: treated as expired, destroyed, and (online) a fresh
# copy takes its place.
policy '{"expires": 4000000000}'
mount_image "$SERVER_URL/disk" "$T/mnt"
wait_hydrated 60
unmount "$T/mnt"
python3 - "$copy/lifecycle.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["expires"] = 4100000000  # a later date, seal untouched
json.dump(d, open(p, "w"))
PY
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
grep -q "lifecycle record was edited" "$T/logs/mount.log" || fail "edit not detected: $(cat "$T/logs/mount.log")"
[ "$(mount_status blocks_cached)" = 0 ] || fail "the edited copy's blocks survived"
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "fresh copy differs"
unmount "$T/mnt"
# ... and offline: refused, destroyed.
python3 - "$copy/lifecycle.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["max_offline"] = 0 if d["max_offline"] else 999999999
json.dump(d, open(p, "w"))
PY
stop_server
if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" >"$T/logs/tampered-offline.log" 2>&1; then
	fail "mounted an edited copy offline"
fi
grep -q "lifecycle record was edited" "$T/logs/tampered-offline.log" || fail "message: $(cat "$T/logs/tampered-offline.log")"
[ ! -e "$copy/data.key" ] || fail "the edited copy kept its key"
start_server "$T/srv" --listen "127.0.0.1:$port"

# max_offline elapses while mounted: reads stop, the mount ends, the
# copy is destroyed.
policy '{"max_offline": 4}'
mount_image "$SERVER_URL/disk" "$T/mnt" --check-interval 1 --read-only
wait_hydrated 60
cmp "$T/mnt/disk.img" "$T/data/model.raw" || fail "read before going offline"
sleep 3 # still in contact: the clock is renewed
mountpoint -q "$T/mnt" || fail "unmounted while the server was up"
stop_server
for ((i = 0; i < 300; i++)); do
	kill -0 "$MOUNT_PID" 2>/dev/null || break
	sleep 0.1
done
! kill -0 "$MOUNT_PID" 2>/dev/null || fail "still mounted 30 s after going offline with max_offline 4 s"
wait "$MOUNT_PID" || true
MOUNT_PID=
grep -q "offline for longer than" "$T/logs/mount.log" || fail "no message: $(cat "$T/logs/mount.log")"
! mountpoint -q "$T/mnt" || fail "still a mountpoint"
[ ! -e "$copy" ] || fail "the copy survived its offline limit"
