#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# --insecure is loud: every command that takes it (mount, in the
# foreground and the background, publish, push, discard) prints one
# "WARNING" line on stderr each time it is used, and none without it.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
make_image "$T/data/img.raw" $((1024 * 1024)) 38
import_image disk "$T/data/img.raw"
common=(--cache "$T/cache" --key-file "$T/user.key" --token-file "$ADMIN_TOKEN_FILE")
warning="vmferry: WARNING: --insecure: TLS verification is OFF"

# loud NAME: the stderr in $T/logs/NAME.err has the warning exactly once.
loud() {
	[ "$(grep -c "^$warning" "$T/logs/$1.err")" = 1 ] ||
		fail "$1: no single WARNING line: $(cat "$T/logs/$1.err")"
}
quiet() {
	! grep -q "WARNING" "$T/logs/$1.err" || fail "$1: a WARNING without --insecure"
}

# publish, with and without.
"$VMFERRY" publish --insecure --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/pub" "$T/data/img.raw" >/dev/null 2>"$T/logs/publish.err" ||
	fail "publish --insecure: $(cat "$T/logs/publish.err")"
loud publish
"$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/pub" "$T/data/img.raw" >/dev/null 2>"$T/logs/publish-ok.err" ||
	fail "publish: $(cat "$T/logs/publish-ok.err")"
quiet publish-ok

# mount in the background: the warning reaches the user's terminal
# (stderr before the daemon leaves it), not just the log.
"$VMFERRY" mount "$SERVER_URL/disk" "$T/mnt" "${common[@]}" --insecure \
	--no-hydrate --sync-interval 0 --log "$T/logs/daemon.log" 2>"$T/logs/bg.err" ||
	fail "mount --insecure: $(cat "$T/logs/bg.err")"
cleanup_fn "fusermount3 -uz $T/mnt 2>/dev/null || true"
loud bg
printf 'unsynced' | dd of="$T/mnt/disk.img" bs=1 seek=10 conv=notrunc,fsync status=none
"$VMFERRY" umount "$T/mnt" 2>/dev/null || fail "umount"

# mount in the foreground (its stderr is the log).
mount_image "$SERVER_URL/disk" "$T/mnt" --insecure --no-hydrate --no-sync
unmount "$T/mnt"
cp "$T/logs/mount.log" "$T/logs/fg.err"
loud fg
mount_image "$SERVER_URL/disk" "$T/mnt" --no-hydrate --no-sync
printf 'unsynced' | dd of="$T/mnt/disk.img" bs=1 seek=10 conv=notrunc,fsync status=none
unmount "$T/mnt"
cp "$T/logs/mount.log" "$T/logs/fg-ok.err"
quiet fg-ok

# push and discard.
"$VMFERRY" push --insecure --as pushed "${common[@]}" "$SERVER_URL/disk" \
	>/dev/null 2>"$T/logs/push.err" || fail "push --insecure: $(cat "$T/logs/push.err")"
loud push
"$VMFERRY" push --as pushed2 "${common[@]}" --cacert "$CACERT" "$SERVER_URL/disk" \
	>/dev/null 2>"$T/logs/push-ok.err" || fail "push: $(cat "$T/logs/push-ok.err")"
quiet push-ok
"$VMFERRY" discard --insecure "${common[@]}" "$SERVER_URL/disk" \
	>/dev/null 2>"$T/logs/discard.err" || fail "discard --insecure: $(cat "$T/logs/discard.err")"
loud discard
# Even when it fails early, a command given --insecure says so.
"$VMFERRY" discard --insecure "${common[@]}" "$SERVER_URL/disk" \
	>/dev/null 2>"$T/logs/discard-none.err" && fail "discarded a copy twice"
loud discard-none
exit 0
