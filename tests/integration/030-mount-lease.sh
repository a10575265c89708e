#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One writer at a time: a read-write mount holds the image's lease; a
# second read-write mount is refused naming the holder (a --read-only one
# works); a broken lease turns the first client's next sync into a
# conflict that loses nothing; unmount releases the lease; a token
# without the write grant mounts read-only.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 30
import_image disk "$T/data/img.raw"
lease_holder() {
	scurl "$SERVER_URL/v1/images/disk" |
		python3 -c 'import json,sys; l=json.load(sys.stdin)["lease"]; print(l["holder"] if l else "none")'
}
mount_b() { # mount_b [options]: a second client with its own cache
	mkdir -p "$T/b/mnt"
	"$VMFERRY" mount "$SERVER_URL/disk" "$T/b/mnt" --cache "$T/b/cache" \
		--key-file "$T/user.key" --cacert "$CACERT" \
		--token-file "${B_TOKEN:-$ADMIN_TOKEN_FILE}" --log "$T/logs/b.log" "$@"
}

mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --sync-interval 0
[ "$(lease_holder)" != none ] || fail "a read-write mount holds no lease"

if mount_b >"$T/logs/b.out" 2>&1; then fail "a second read-write mount was allowed"; fi
grep -q "leased to .* since" "$T/logs/b.out" || fail "unclear refusal: $(cat "$T/logs/b.out")"
echo "refused: $(cat "$T/logs/b.out")"
mount_b --read-only || fail "a --read-only mount was refused"
cmp "$T/b/mnt/disk.img" "$T/data/img.raw" || fail "read-only client reads wrong"
"$VMFERRY" umount "$T/b/mnt" || fail "umount b"

# The administrator breaks the lease: the next sync is a conflict and
# the changes stay.
printf 'precious' | dd of="$T/mnt/disk.img" bs=1 seek=5000 conv=notrunc status=none
"$VMFERRY_SERVER" lease break "$T/srv" disk >/dev/null || fail "lease break"
if "$VMFERRY" sync "$T/mnt" >"$T/logs/sync.out" 2>&1; then fail "sync with a broken lease succeeded"; fi
grep -q "conflict" "$T/logs/sync.out" || fail "unclear: $(cat "$T/logs/sync.out")"
echo "sync refused: $(cat "$T/logs/sync.out")"
[ "$(mount_status blocks_dirty)" -ge 1 ] || fail "changes lost"
[ "$(dd if="$T/mnt/disk.img" bs=1 skip=5000 count=8 status=none)" = precious ] || fail "data lost"
[ "$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')" = 1 ] ||
	fail "the server's version moved"
unmount "$T/mnt"

# The way out that keeps the work: push the copy as a new image, then
# discard it.
out=$("$VMFERRY" push --as rescued --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" "$SERVER_URL/disk") ||
	fail "push --as failed: $out"
echo "$out"
mkdir -p "$T/r/mnt"
"$VMFERRY" mount "$SERVER_URL/rescued" "$T/r/mnt" --cache "$T/r/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --read-only || fail "mount rescued"
[ "$(dd if="$T/r/mnt/rescued.img" bs=1 skip=5000 count=8 status=none)" = precious ] ||
	fail "the pushed image lacks the changes"
cmp <(dd if="$T/r/mnt/rescued.img" bs=4096 count=1 status=none) \
	<(dd if="$T/data/img.raw" bs=4096 count=1 status=none) || fail "the pushed image differs elsewhere"
"$VMFERRY" umount "$T/r/mnt" || fail "umount rescued"
"$VMFERRY" discard --cache "$T/cache" "$SERVER_URL/disk" || fail "discard"

# Unmounting a clean mount releases the lease.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
unmount "$T/mnt"
[ "$(lease_holder)" = none ] || fail "unmount did not release the lease"

# A read-only token mounts read-only.
"$VMFERRY_SERVER" token add "$T/srv" --name reader --read disk >"$T/reader.token" 2>/dev/null
B_TOKEN="$T/reader.token" mount_b 2>"$T/logs/b.err" || fail "mount with a read token"
grep -q "mounted read-only" "$T/logs/b.err" || fail "no read-only notice: $(cat "$T/logs/b.err")"
if printf x | dd of="$T/b/mnt/disk.img" conv=notrunc status=none 2>/dev/null; then
	fail "a read-token mount accepted a write"
fi
"$VMFERRY" umount "$T/b/mnt" || fail "umount b"
