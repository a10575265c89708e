#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `vmferry mount` without -f returns once the file is visible and keeps
# serving in the background; `vmferry status` and `vmferry umount` work.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
make_image "$T/data/img.raw" $((3 * 1024 * 1024)) 24
import_image disk "$T/data/img.raw"
"$VMFERRY" mount "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" \
	--key-file "$T/user.key" --cacert "$CACERT" \
	--token-file "$ADMIN_TOKEN_FILE" --log "$T/logs/daemon.log" ||
	fail "vmferry mount failed"
cleanup_fn "fusermount3 -uz $T/mnt 2>/dev/null || true"
# Visible at once, no waiting.
[ -f "$T/mnt/disk.img" ] || fail "file not visible when mount returned"
cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "content differs"
MOUNT_POINT="$T/mnt"
"$VMFERRY" status "$T/mnt" | tee "$T/logs/status" | grep -q "image:    disk (version 1)" ||
	fail "status: $(cat "$T/logs/status")"
"$VMFERRY" status --help | grep -q usage || fail "status --help"
"$VMFERRY" umount "$T/mnt" || fail "vmferry umount"
mountpoint -q "$T/mnt" && fail "still mounted"
"$VMFERRY" status "$T/mnt" 2>/dev/null && fail "status on a non-mount succeeded"
exit 0
