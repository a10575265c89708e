#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Mount refusals: each gives one clear line, a non-zero exit and no mount.
# A wrong token, an unreachable server, a bad URL, a missing mountpoint,
# an unknown image, a certificate that does not verify.
source "$(dirname "$0")/../lib.sh"
requires_fuse

start_server "$T/srv"
make_image "$T/data/img.raw" $((1024 * 1024)) 31
import_image disk "$T/data/img.raw"
echo "vmf_not_a_real_token" >"$T/bad.token"

# expect_refusal PATTERN ARGS...: vmferry mount ARGS fails, stderr matches
expect_refusal() {
	local pat=$1
	shift
	if "$VMFERRY" mount "$@" >"$T/logs/refusal.out" 2>&1; then
		fail "mount $* succeeded"
	fi
	grep -qiE "$pat" "$T/logs/refusal.out" ||
		fail "mount $*: expected /$pat/, got: $(cat "$T/logs/refusal.out")"
	mountpoint -q "$T/mnt" && fail "mount $* left a mount"
	echo "ok: $(head -n1 "$T/logs/refusal.out")"
}
common=(--cache "$T/cache" --key-file "$T/user.key" --cacert "$CACERT")

expect_refusal "refused the token" "${common[@]}" --token-file "$T/bad.token" \
	"$SERVER_URL/disk" "$T/mnt"
# A closed port: bind one, learn it, close it.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
expect_refusal "cannot connect" "${common[@]}" --token-file "$ADMIN_TOKEN_FILE" \
	"https://127.0.0.1:$port/disk" "$T/mnt"
expect_refusal "bad URL" "${common[@]}" --token-file "$ADMIN_TOKEN_FILE" \
	"http://127.0.0.1:$SERVER_PORT/disk" "$T/mnt"
expect_refusal "bad URL" "${common[@]}" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/../etc" "$T/mnt"
expect_refusal "mountpoint .*No such file" "${common[@]}" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/disk" "$T/nonexistent"
expect_refusal "no such image" "${common[@]}" --token-file "$ADMIN_TOKEN_FILE" \
	"$SERVER_URL/nosuch" "$T/mnt"
expect_refusal "certificate does not verify" --cache "$T/cache" --key-file "$T/user.key" \
	--token-file "$ADMIN_TOKEN_FILE" "$SERVER_URL/disk" "$T/mnt"
expect_refusal "no token" "${common[@]}" "$SERVER_URL/disk" "$T/mnt"

# --insecure is the explicit way past verification: it mounts, loudly.
mount_image "$SERVER_URL/disk" "$T/mnt" --insecure --cacert /dev/null
grep -q "NOT verified" "$T/logs/mount.log" || fail "--insecure was not loud"
cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "content differs"
unmount "$T/mnt"
