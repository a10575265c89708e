#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Transport: verification is on by default (a server whose certificate
# is not trusted is refused), --cacert trusts it, --pin-sha256 pins the
# server's public key (the right pin mounts, a wrong one is refused with
# a clear message, also next to --insecure), and --insecure says so
# loudly.
source "$(dirname "$0")/../lib.sh"
requires_fuse
requires openssl

start_server "$T/srv"
make_image "$T/data/img.raw" $((1024 * 1024)) 49
import_image disk "$T/data/img.raw"
pin=$(openssl x509 -in "$CACERT" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64)
wrong=$(printf 'not the key' | openssl dgst -sha256 -binary | base64)
try() { # try LOG ARGS...: a foreground mount attempt that must fail
	local log=$1
	shift
	mkdir -p "$T/mnt"
	if "$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" \
		--key-file "$T/user.key" --token-file "$ADMIN_TOKEN_FILE" "$@" >"$T/logs/$log" 2>&1; then
		fail "mount $* succeeded"
	fi
}

try default.log
grep -q "certificate does not verify" "$T/logs/default.log" || fail "untrusted: $(cat "$T/logs/default.log")"
try wrongpin.log --cacert "$CACERT" --pin-sha256 "$wrong"
grep -qi "pin" "$T/logs/wrongpin.log" || fail "wrong pin: $(cat "$T/logs/wrongpin.log")"
try wrongpin-insecure.log --insecure --pin-sha256 "$wrong"
grep -qi "pin" "$T/logs/wrongpin-insecure.log" || fail "wrong pin with --insecure: $(cat "$T/logs/wrongpin-insecure.log")"
[ ! -e "$T/cache/127.0.0.1_$SERVER_PORT/disk/data.key" ] || fail "a refused mount left a copy"

mount_image "$SERVER_URL/disk" "$T/mnt" --pin-sha256 "$pin"
cmp "$T/mnt/disk.img" "$T/data/img.raw" || fail "pinned mount reads something else"
unmount "$T/mnt"

# --insecure works, and says so loudly.
mkdir -p "$T/mnt"
"$VMFERRY" mount -f "$SERVER_URL/disk" "$T/mnt" --cache "$T/cache" --key-file "$T/user.key" \
	--token-file "$ADMIN_TOKEN_FILE" --insecure >"$T/logs/insecure.log" 2>&1 &
MOUNT_PID=$!
MOUNT_POINT=$T/mnt
for ((i = 0; i < 100; i++)); do mountpoint -q "$T/mnt" && break; sleep 0.1; done
mountpoint -q "$T/mnt" || fail "--insecure mount did not appear: $(cat "$T/logs/insecure.log")"
grep -q "NOT verified" "$T/logs/insecure.log" || fail "--insecure not loud: $(cat "$T/logs/insecure.log")"
unmount "$T/mnt"

# The tools take the same pin: publish with a wrong one is refused and
# changes nothing; with the right one it commits.
printf 'pinned publish' | dd of="$T/data/img.raw" bs=1 seek=100 conv=notrunc status=none
pub() { "$VMFERRY" publish --cacert "$CACERT" --token-file "$ADMIN_TOKEN_FILE" "$@" \
	"$SERVER_URL/disk" "$T/data/img.raw"; }
if pub --pin-sha256 "$wrong" >"$T/logs/pub-wrong.log" 2>&1; then fail "publish with a wrong pin succeeded"; fi
grep -qi "pin" "$T/logs/pub-wrong.log" || fail "publish, wrong pin: $(cat "$T/logs/pub-wrong.log")"
if pub --pin-sha256 short >"$T/logs/pub-bad.log" 2>&1; then fail "publish with a malformed pin succeeded"; fi
grep -q "44-character base64" "$T/logs/pub-bad.log" || fail "malformed pin: $(cat "$T/logs/pub-bad.log")"
pub --pin-sha256 "$pin" >"$T/logs/pub-right.log" 2>&1 || fail "publish with the right pin: $(cat "$T/logs/pub-right.log")"
grep -q "version 2" "$T/logs/pub-right.log" || fail "not version 2: $(cat "$T/logs/pub-right.log")"
