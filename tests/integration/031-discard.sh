#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A local copy is used by one mount at a time; `vmferry discard` refuses
# a mounted copy, and otherwise destroys it (key first), unsynced changes
# included, so the next mount starts clean, and releases its lease.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires python3

start_server "$T/srv"
make_image "$T/data/img.raw" $((2 * 1024 * 1024)) 31
import_image disk "$T/data/img.raw"
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
printf 'unsynced' | dd of="$T/mnt/disk.img" bs=1 seek=100 conv=notrunc,fsync status=none

# The same copy cannot be mounted twice.
mkdir -p "$T/mnt2"
if "$VMFERRY" mount "$SERVER_URL/disk" "$T/mnt2" --cache "$T/cache" --key-file "$T/user.key" \
	--cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" --read-only >"$T/logs/twice.out" 2>&1; then
	fail "mounted the same copy twice"
fi
grep -q "in use by another mount" "$T/logs/twice.out" || fail "unclear: $(cat "$T/logs/twice.out")"

if "$VMFERRY" discard --cache "$T/cache" "$SERVER_URL/disk" 2>"$T/logs/busy.err"; then
	fail "discarded a mounted copy"
fi
grep -q "mounted" "$T/logs/busy.err" || fail "unclear: $(cat "$T/logs/busy.err")"
unmount "$T/mnt"

dir=$(ls -d "$T"/cache/*/disk)
held=$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lease"] is not None)')
[ "$held" = True ] || fail "the unsynced copy should still hold its lease"
"$VMFERRY" discard --cache "$T/cache" --key-file "$T/user.key" --cacert "$CACERT" \
	--token-file "$ADMIN_TOKEN_FILE" "$SERVER_URL/disk" || fail "discard"
held=$(scurl "$SERVER_URL/v1/images/disk" | python3 -c 'import json,sys; print(json.load(sys.stdin)["lease"] is not None)')
[ "$held" = False ] || fail "discard did not release the copy's lease"
[ ! -e "$dir" ] || fail "the copy is still there"
if "$VMFERRY" discard --cache "$T/cache" "$SERVER_URL/disk" 2>"$T/logs/none.err"; then
	fail "discarded a copy that does not exist"
fi
grep -q "no local copy" "$T/logs/none.err" || fail "unclear: $(cat "$T/logs/none.err")"

# A fresh mount reads the server's bytes.
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate
cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "the discarded changes are still visible"
unmount "$T/mnt"
